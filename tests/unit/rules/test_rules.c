/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rules: whitelist rule evaluation (docs/architecture.md "Whitelist"; reference "Add an
 * alert to the whitelist"): every operator on numbers, strings, times, missing fields and
 * details.* paths; scope (all assets / only one asset); rules OR-ed; a rule applies only
 * to alerts with its alert name; expiry; invalid regexes refused with PCRE2's message and
 * offset; a catastrophic regex gives up within its limits instead of stalling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cwpp_rules.h"
#include "vocab_files.h"

#define NOW 1795860000000LL

static const char *ALERT_JSON =
    "{\"name\":\"Suspicious process\",\"type\":\"malicious_process\",\"severity\":\"high\","
    "\"occurred_at\":\"2026-11-27T10:00:00Z\",\"source\":\"process_monitor\",\"account_id\":\"a1\","
    "\"asset\":{\"id\":\"i-app01\",\"ip\":\"10.0.0.6\",\"role\":\"application\"},"
    "\"file\":{\"path\":\"/data/app/logs/rotate.sh\",\"md5\":\"d41d8cd98f00b204e9800998ecf8427e\"},"
    "\"process\":{\"pid\":4242,\"path\":\"D:\\\\programs\\\\test\\\\run.exe\",\"cmdline\":\"run.exe -q\"},"
    "\"remote_ip\":\"203.0.113.9\","
    "\"details\":{\"port\":8443,\"ratio\":0.75,\"signed\":true,\"vendor\":\"Acme\","
    "\"nested\":{\"depth\":{\"level\":3}},"
    "\"output_fields\":{\"k8s.ns.name\":\"shop\",\"k8s\":{\"pod\":\"p1\"}},\"list\":[1,2],\"none\":null,\"numstr\":\"42\"}}";

static cwpp_alert_t alert;

static int setup(void **state)
{
    cwpp_alert_opts_t o = {NULL, NOW, 3600000, 0};
    const char       *code;
    char              err[256];

    (void)state;
    if (cwpp_alert_from_json(ALERT_JSON, strlen(ALERT_JSON), &o, &alert, &code, err,
                             sizeof(err)) != CWPP_OK) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cwpp_alert_clear(&alert);
    return 0;
}

static const struct {
    const char *field, *op, *value;
    int         match;
} cases[] = {
    /* regex (the reference's example), anchored and not */
    {"file.path", "regex", "^/data/app/logs/.*", 1},
    {"file.path", "regex", "^/data/app/tmp/.*", 0},
    {"process.cmdline", "regex", "-q$", 1},
    {"details.vendor", "regex", "(?i)^acme$", 1},
    /* contains (the reference's Windows example) */
    {"process.path", "contains", "D:\\programs\\test\\", 1},
    {"process.path", "contains", "D:\\programs\\prod\\", 0},
    {"file.path", "contains", "/data/", 1},
    /* startswith: a prefix, case-sensitive like contains and eq (paths) */
    {"file.path", "startswith", "/data/app/logs/", 1},
    {"file.path", "startswith", "/data/app/logs/rotate.sh", 1},
    {"file.path", "startswith", "/data/app/tmp/", 0},
    {"file.path", "startswith", "/DATA/app/", 0},
    {"file.path", "startswith", "app/logs/", 0},
    {"file.path", "startswith", "/data/app/logs/rotate.sh.bak", 0},
    {"process.path", "startswith", "D:\\programs\\test\\", 1},
    {"details.vendor", "StartsWith", "Ac", 1},
    {"details.missing", "startswith", "x", 0},
    /* equal: strings exactly, numbers numerically */
    {"asset.role", "eq", "application", 1},
    {"asset.role", "eq", "Application", 0},
    {"severity", "eq", "high", 1},
    {"process.pid", "eq", "4242", 1},
    {"details.port", "eq", "8443.0", 1},
    {"details.numstr", "eq", "42", 1},
    {"details.signed", "eq", "true", 1},
    {"details.nested.depth.level", "eq", "3", 1},
    /* keys with dots in them (Falco output_fields), next to plain nesting */
    {"details.output_fields.k8s.ns.name", "eq", "shop", 1},
    {"details.output_fields.k8s.pod", "eq", "p1", 1},
    {"details.output_fields.k8s.ns", "eq", "shop", 0},
    /* greater / less than: numbers */
    {"details.port", "gt", "1024", 1},
    {"details.port", "lt", "1024", 0},
    {"details.ratio", "lt", "0.8", 1},
    {"details.ratio", "gt", "0.8", 0},
    {"process.pid", "gt", "4241", 1},
    {"process.pid", "lt", "4242", 0},
    /* greater / less than: times */
    {"occurred_at", "gt", "2026-11-27T09:59:59Z", 1},
    {"occurred_at", "lt", "2026-11-27T09:59:59Z", 0},
    {"occurred_at", "lt", "2026-11-27T11:00:00+01:00", 0},
    {"occurred_at", "lt", "2026-11-27T11:00:01+01:00", 1},
    /* a string field compared as a number never matches */
    {"details.vendor", "gt", "1", 0},
    /* missing fields never match, whatever the operator */
    {"logon.ip", "eq", "203.0.113.9", 0},
    {"details.missing", "contains", "x", 0},
    {"details.nested.nope", "eq", "3", 0},
    {"details.list", "eq", "1", 0},
    {"details.none", "regex", ".*", 0},
    {"details.vendor.deeper", "eq", "Acme", 0},
};

/* Every operator on numbers, strings, times, missing fields and details.* paths. */
static void test_operators(void **state)
{
    size_t i;
    char   err[256];

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
        cwpp_rule_def_t d = {1, "Suspicious process", cases[i].field, 0, cases[i].value,
                             CWPP_SCOPE_ALL, NULL, 0, NULL};
        int64_t got;

        assert_int_equal(cwpp_rule_op_parse(cases[i].op, &d.op), 0);
        if (cwpp_ruleset_add(rs, &d, err, sizeof(err)) != CWPP_OK)
            fail_msg("case %zu (%s %s %s): %s", i, cases[i].field, cases[i].op, cases[i].value,
                     err);
        got = cwpp_ruleset_match(rs, &alert, NOW, NULL);
        if ((got == 1) != cases[i].match)
            fail_msg("case %zu: %s %s %s gave %lld, wanted %d", i, cases[i].field, cases[i].op,
                     cases[i].value, (long long)got, cases[i].match);
        cwpp_ruleset_destroy(rs);
    }
}

/* The contract's fields are identifiers and names: eq compares them as text, never as
 * numbers. An account-scoped rule (account_id eq 1000) must not whitelist account
 * "1e3", "1000.0" or "01000", and two all-digit ids beyond a double's precision are two
 * ids, not one. */
static void test_identifiers_compare_as_text(void **state)
{
    static const char *json =
        "{\"name\":\"N\",\"type\":\"virus\",\"severity\":\"high\","
        "\"occurred_at\":\"2026-11-27T10:00:00Z\",\"source\":\"virus_scan\","
        "\"account_id\":\"1000\",\"asset\":{\"id\":\"9123456789012345\"}}";
    static const struct {
        const char *field, *value;
        int         match;
    } ids[] = {
        {"account_id", "1000", 1},
        {"account_id", "1e3", 0},
        {"account_id", "1000.0", 0},
        {"account_id", "01000", 0},
        {"asset.id", "9123456789012345", 1},
        {"asset.id", "9123456789012344", 0},
    };
    cwpp_alert_opts_t o = {NULL, NOW, 3600000, 0};
    cwpp_alert_t      a;
    const char       *code;
    char              err[256];
    size_t            i;

    (void)state;
    assert_int_equal(cwpp_alert_from_json(json, strlen(json), &o, &a, &code, err, sizeof(err)),
                     CWPP_OK);
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
        cwpp_rule_def_t d = {1, "N", ids[i].field, CWPP_OP_EQ, ids[i].value,
                             CWPP_SCOPE_ALL, NULL, 0, NULL};

        assert_int_equal(cwpp_ruleset_add(rs, &d, err, sizeof(err)), CWPP_OK);
        if ((cwpp_ruleset_match(rs, &a, NOW, NULL) == 1) != ids[i].match)
            fail_msg("%s eq %s: wanted %s", ids[i].field, ids[i].value,
                     ids[i].match ? "a match" : "no match");
        cwpp_ruleset_destroy(rs);
    }
    cwpp_alert_clear(&a);
}

/* Scope: all assets (existing and future) or only the alert's asset. */
static void test_scope(void **state)
{
    cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
    cwpp_rule_def_t only_other = {7, "Suspicious process", "file.path", CWPP_OP_CONTAINS, "/data/",
                                  CWPP_SCOPE_ASSET, "i-db01", 0, NULL};
    cwpp_rule_def_t only_this = {8, "Suspicious process", "file.path", CWPP_OP_CONTAINS, "/data/",
                                 CWPP_SCOPE_ASSET, "i-app01", 0, NULL};
    char err[256];

    (void)state;
    assert_int_equal(cwpp_ruleset_add(rs, &only_other, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 0);
    assert_int_equal(cwpp_ruleset_add(rs, &only_this, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 8);
    cwpp_ruleset_destroy(rs);
}

/* A rule belongs to an account: scope all is every asset of that account, scope asset one
 * asset of it; neither matches the same alert in another account. */
static void test_account(void **state)
{
    cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
    cwpp_rule_def_t other_all = {9, "Suspicious process", "file.path", CWPP_OP_CONTAINS, "/data/",
                                 CWPP_SCOPE_ALL, NULL, 0, "acct-other"};
    cwpp_rule_def_t other_asset = {10, "Suspicious process", "file.path", CWPP_OP_CONTAINS,
                                   "/data/", CWPP_SCOPE_ASSET, "i-app01", 0, "acct-other"};
    cwpp_rule_def_t own = {11, "Suspicious process", "file.path", CWPP_OP_CONTAINS, "/data/",
                           CWPP_SCOPE_ALL, NULL, 0, NULL};
    cwpp_alert_t    a = alert;
    char            err[256];

    (void)state;
    assert_int_equal(cwpp_ruleset_add(rs, &other_all, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_add(rs, &other_asset, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &a, NOW, NULL), 0);
    assert_int_equal(cwpp_rule_matches(rs, 9, &a, NOW, NULL), 0);
    a.account_id = "acct-other";
    assert_int_equal(cwpp_ruleset_match(rs, &a, NOW, NULL), 9);
    a.account_id = (char *)alert.account_id;
    own.account_id = alert.account_id;
    assert_int_equal(cwpp_ruleset_add(rs, &own, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &a, NOW, NULL), 11);
    own.account_id = "";
    assert_int_equal(cwpp_ruleset_add(rs, &own, err, sizeof(err)), CWPP_EINVAL);
    cwpp_ruleset_destroy(rs);
}

/* Several rules are OR-ed; the first match (in order added) is reported. */
static void test_or_and_name_restriction(void **state)
{
    cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
    cwpp_rule_def_t other_name = {1, "Another alert", "file.path", CWPP_OP_CONTAINS, "/data/",
                                  CWPP_SCOPE_ALL, NULL, 0, NULL};
    cwpp_rule_def_t miss = {2, "Suspicious process", "remote_ip", CWPP_OP_EQ, "198.51.100.1",
                            CWPP_SCOPE_ALL, NULL, 0, NULL};
    cwpp_rule_def_t hit = {3, "Suspicious process", "remote_ip", CWPP_OP_EQ, "203.0.113.9",
                           CWPP_SCOPE_ALL, NULL, 0, NULL};
    cwpp_rule_def_t hit2 = {4, "Suspicious process", "severity", CWPP_OP_EQ, "high",
                            CWPP_SCOPE_ALL, NULL, 0, NULL};
    char err[256];

    (void)state;
    /* a rule of another alert name never applies, however well its condition fits */
    assert_int_equal(cwpp_ruleset_add(rs, &other_name, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 0);
    assert_int_equal(cwpp_ruleset_add(rs, &miss, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 0);
    assert_int_equal(cwpp_ruleset_add(rs, &hit, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_add(rs, &hit2, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 3);
    assert_true(cwpp_rule_matches(rs, 4, &alert, NOW, NULL));
    assert_false(cwpp_rule_matches(rs, 1, &alert, NOW, NULL));
    assert_false(cwpp_rule_matches(rs, 99, &alert, NOW, NULL));
    cwpp_ruleset_destroy(rs);
}

/* A rule with an expiry stops applying at that time. */
static void test_expiry(void **state)
{
    cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
    cwpp_rule_def_t d = {5, "Suspicious process", "severity", CWPP_OP_EQ, "high", CWPP_SCOPE_ALL,
                         NULL, NOW + 1000, NULL};
    char err[256];

    (void)state;
    assert_int_equal(cwpp_ruleset_add(rs, &d, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, NULL), 5);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW + 999, NULL), 5);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW + 1000, NULL), 0);
    cwpp_ruleset_destroy(rs);
}

static const struct {
    cwpp_rule_def_t def;
    const char     *mentions;
} invalid[] = {
    {{1, "n", "file.path", CWPP_OP_REGEX, "^/data/(unclosed", CWPP_SCOPE_ALL, NULL, 0, NULL}, "offset 16"},
    {{1, "n", "file.path", CWPP_OP_REGEX, "a{2,1}", CWPP_SCOPE_ALL, NULL, 0, NULL}, "offset"},
    {{1, "n", "no.such.field", CWPP_OP_EQ, "x", CWPP_SCOPE_ALL, NULL, 0, NULL}, "unknown alert field"},
    {{1, "n", "details.", CWPP_OP_EQ, "x", CWPP_SCOPE_ALL, NULL, 0, NULL}, "unknown alert field"},
    {{1, "n", "details.a..b", CWPP_OP_EQ, "x", CWPP_SCOPE_ALL, NULL, 0, NULL}, "unknown alert field"},
    {{1, "n", "details.port", CWPP_OP_GT, "many", CWPP_SCOPE_ALL, NULL, 0, NULL}, "number or an RFC 3339"},
    {{1, "n", "file.path", CWPP_OP_CONTAINS, "", CWPP_SCOPE_ALL, NULL, 0, NULL}, "match everything"},
    {{1, "n", "file.path", CWPP_OP_STARTSWITH, "", CWPP_SCOPE_ALL, NULL, 0, NULL},
     "match everything"},
    {{1, "n", "file.path", CWPP_OP_EQ, "x", CWPP_SCOPE_ASSET, NULL, 0, NULL}, "asset id"},
    {{1, "", "file.path", CWPP_OP_EQ, "x", CWPP_SCOPE_ALL, NULL, 0, NULL}, "alert name"},
    {{1, "n", "file.path", CWPP_OP_EQ, "\xff", CWPP_SCOPE_ALL, NULL, 0, NULL}, "UTF-8"},
};

/* Invalid rules are refused when created, with a sentence; invalid regexes with
 * PCRE2's message and the offset. */
static void test_invalid_rules_refused(void **state)
{
    size_t i;
    char   err[256];

    (void)state;
    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        cwpp_ruleset_t *rs = cwpp_ruleset_new(NULL);
        err[0] = '\0';
        assert_int_equal(cwpp_rule_check(&invalid[i].def, err, sizeof(err)), CWPP_EINVAL);
        if (strstr(err, invalid[i].mentions) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, invalid[i].mentions);
        assert_int_equal(cwpp_ruleset_add(rs, &invalid[i].def, err, sizeof(err)), CWPP_EINVAL);
        assert_int_equal(cwpp_ruleset_size(rs), 0);
        cwpp_ruleset_destroy(rs);
    }
}

/* A catastrophic-backtracking pattern on a long subject gives up within its limits:
 * no match, counted, and quickly - it cannot stall the service. */
static void test_hostile_regex(void **state)
{
    cwpp_ruleset_t    *rs = cwpp_ruleset_new(NULL);
    cwpp_rule_def_t    d = {9, "Suspicious process", "details.vendor", CWPP_OP_REGEX,
                            "^(a+)+$", CWPP_SCOPE_ALL, NULL, 0, NULL};
    cwpp_rules_stats_t st = {0, 0};
    char               subject[64], err[256];
    struct timespec    t0, t1;
    double             ms;

    (void)state;
    memset(subject, 'a', 40);
    strcpy(subject + 40, "!");
    json_object_set_new(alert.details, "vendor", json_string(subject));
    assert_int_equal(cwpp_ruleset_add(rs, &d, err, sizeof(err)), CWPP_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, &st), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_int_equal(st.regex_aborted, 1);
    assert_true(ms < 1000.0); /* 2^40 steps without the limit */
    json_object_set_new(alert.details, "vendor", json_string("Acme"));
    cwpp_ruleset_destroy(rs);
}

/* 10,000 rules over 1,000 names: an alert meets only its own name's rules. */
static void test_index_by_name(void **state)
{
    cwpp_ruleset_t    *rs = cwpp_ruleset_new(NULL);
    cwpp_rules_stats_t st = {0, 0};
    char               name[64], value[64], err[256];
    int                i;

    (void)state;
    for (i = 0; i < 10000; i++) {
        cwpp_rule_def_t d = {i + 1, name, "file.path", CWPP_OP_EQ, value, CWPP_SCOPE_ALL, NULL, 0, NULL};
        snprintf(name, sizeof(name), "alert-%d", i % 1000);
        snprintf(value, sizeof(value), "/nowhere/%d", i);
        assert_int_equal(cwpp_ruleset_add(rs, &d, err, sizeof(err)), CWPP_OK);
    }
    assert_int_equal(cwpp_ruleset_size(rs), 10000);
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, &st), 0);
    assert_int_equal(st.evaluated, 0); /* "Suspicious process" has no rules */
    free(alert.name);
    alert.name = strdup("alert-7");
    assert_int_equal(cwpp_ruleset_match(rs, &alert, NOW, &st), 0);
    assert_int_equal(st.evaluated, 10); /* only alert-7's ten rules */
    free(alert.name);
    alert.name = strdup("Suspicious process");
    cwpp_ruleset_destroy(rs);
}

/* The operator table (libs/rules) is the only definition: every member has its row and
 * parses back, and the CHECK on whitelist_rules.op that the latest migration sets lists
 * exactly its operators (a new operator needs a migration, else rule creation fails only
 * at run time). */
static void test_vocab_operators(void **state)
{
    const char *want[CWPP_OP__COUNT];
    vf_list_t   got;
    int         t;

    (void)state;
    for (t = 0; t < CWPP_OP__COUNT; t++) {
        cwpp_rule_op_t back;

        assert_int_equal(cwpp_rule_op_def((cwpp_rule_op_t)t)->op, t);
        want[t] = cwpp_rule_op_name((cwpp_rule_op_t)t);
        assert_int_equal(cwpp_rule_op_parse(want[t], &back), 0);
        assert_int_equal(back, t);
    }
    if (vf_diff("the operator table (libs/rules)", want, CWPP_OP__COUNT, &got,
                vf_sql_check("whitelist_rules", "op", &got) == 0) != 0)
        fail_msg("whitelist_rules.op disagrees with libs/rules's operator table (lines above)");
}

/* cwpp_rule_fields lists the normalized fields a rule may name (cwpp-api's
 * GET /api/v1/alerts/{id}/fields shows them): each one checks as a rule's field and is
 * never an unknown field to cwpp_alert_field; it names no details path. */
static void test_rule_fields_listed(void **state)
{
    const char *const *f = cwpp_rule_fields();
    cwpp_alert_t       a;
    size_t             n;

    (void)state;
    memset(&a, 0, sizeof(a));
    for (n = 0; f[n] != NULL; n++) {
        cwpp_rule_def_t d = {1, "n", f[n], CWPP_OP_EQ, "1", CWPP_SCOPE_ALL, NULL, 0, NULL};
        char            err[256], buf[64];
        const char     *v;
        double          num;
        int             is_num;

        assert_int_equal(cwpp_rule_check(&d, err, sizeof(err)), 0);
        assert_int_not_equal(cwpp_alert_field(&a, f[n], buf, sizeof(buf), &v, &num, &is_num),
                             CWPP_EINVAL);
        assert_true(strncmp(f[n], "details.", 8) != 0);
    }
    assert_true(n >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_identifiers_compare_as_text),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_account),
        cmocka_unit_test(test_or_and_name_restriction),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_invalid_rules_refused),
        cmocka_unit_test(test_hostile_regex),
        cmocka_unit_test(test_index_by_name),
        cmocka_unit_test(test_vocab_operators),
        cmocka_unit_test(test_rule_fields_listed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
