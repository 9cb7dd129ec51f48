/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_whitelist: what whitelist-filter and cwppctl share (libs/whitelist) and the stored
 * alert reader (libs/alert/alert_row.c): rule definitions from command payloads (every
 * refusal is one sentence naming the problem, PCRE2's message and offset for a bad regex),
 * the broad-rule warning (conditions as broad as "path contains /data/", and shares above
 * the limit), and stored rows back into alerts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_whitelist.h"

static int def_from(const char *json, cwpp_wl_def_t *d, char *err, size_t errsz)
{
    json_error_t je;
    json_t      *o = json_loads(json, 0, &je);
    int          rc;

    assert_non_null(o);
    rc = cwpp_wl_def_from_json(o, d, err, errsz);
    json_decref(o);
    return rc;
}

static void test_def_valid(void **state)
{
    cwpp_wl_def_t d;
    char          err[512];

    (void)state;
    assert_int_equal(def_from("{\"alert_name\":\"Trojan\",\"field\":\"file.path\",\"op\":\"regex\","
                              "\"value\":\"^/data/app/logs/.*\",\"scope\":\"asset\",\"asset_id\":"
                              "\"i-1\",\"expires_at\":\"2030-01-01T00:00:00Z\",\"remark\":\"r\","
                              "\"force\":true,\"from_alert_id\":\"al-x\"}",
                              &d, err, sizeof(err)), CWPP_OK);
    assert_string_equal(d.def.alert_name, "Trojan");
    assert_int_equal(d.def.op, CWPP_OP_REGEX);
    assert_int_equal(d.def.scope, CWPP_SCOPE_ASSET);
    assert_string_equal(d.def.asset_id, "i-1");
    assert_int_equal(d.def.expires_at_ms, 1893456000000LL);
    assert_int_equal(d.force, 1);
    assert_string_equal(d.remark, "r");
    assert_string_equal(d.from_alert_id, "al-x");
    assert_null(d.def.account_id);
    {
        json_t *j = cwpp_wl_def_to_json(&d.def, 7);

        assert_int_equal(json_integer_value(json_object_get(j, "rule_id")), 7);
        assert_string_equal(json_string_value(json_object_get(j, "op")), "regex");
        assert_string_equal(json_string_value(json_object_get(j, "expires_at")),
                            "2030-01-01T00:00:00.000Z");
        json_decref(j);
    }
    cwpp_wl_def_clear(&d);
    /* a rule's account: read, and written back */
    assert_int_equal(def_from("{\"account_id\":\"acct-a\",\"alert_name\":\"A\",\"field\":"
                              "\"file.path\",\"op\":\"eq\",\"value\":\"/x\"}", &d, err,
                              sizeof(err)), CWPP_OK);
    assert_string_equal(d.def.account_id, "acct-a");
    {
        json_t *j = cwpp_wl_def_to_json(&d.def, 0);

        assert_string_equal(json_string_value(json_object_get(j, "account_id")), "acct-a");
        json_decref(j);
    }
    cwpp_wl_def_clear(&d);
    /* scope defaults to all; an empty value is allowed for eq */
    assert_int_equal(def_from("{\"alert_name\":\"A\",\"field\":\"details.x\",\"op\":\"eq\","
                              "\"value\":\"\"}", &d, err, sizeof(err)), CWPP_OK);
    assert_int_equal(d.def.scope, CWPP_SCOPE_ALL);
    assert_int_equal(d.force, 0);
    cwpp_wl_def_clear(&d);
    /* startswith: read from a payload and written back by its name */
    assert_int_equal(def_from("{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":"
                              "\"startswith\",\"value\":\"/opt/app/\"}", &d, err, sizeof(err)),
                     CWPP_OK);
    assert_int_equal(d.def.op, CWPP_OP_STARTSWITH);
    {
        json_t *j = cwpp_wl_def_to_json(&d.def, 0);

        assert_string_equal(json_string_value(json_object_get(j, "op")), "startswith");
        json_decref(j);
    }
    cwpp_wl_def_clear(&d);
}

static void test_def_refused(void **state)
{
    static const struct { const char *json, *says; } bad[] = {
        {"[]", "JSON object"},
        {"{\"field\":\"file.path\",\"op\":\"eq\",\"value\":\"x\"}", "alert_name"},
        {"{\"alert_name\":\"A\",\"op\":\"eq\",\"value\":\"x\"}", "field"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"value\":\"x\"}", "op"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\"}", "value"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\",\"value\":3}", "value"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"like\",\"value\":\"x\"}",
         "unknown operator \"like\""},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"like\",\"value\":\"x\"}",
         "contains or startswith"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"startswith\",\"value\":\"\"}",
         "match everything"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\",\"value\":\"x\","
         "\"scope\":\"planet\"}", "unknown scope"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\",\"value\":\"x\","
         "\"asset_id\":\"i-1\"}", "scope is \"all\""},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\",\"value\":\"x\","
         "\"scope\":\"asset\"}", "asset"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"eq\",\"value\":\"x\","
         "\"expires_at\":\"tomorrow\"}", "RFC 3339"},
        {"{\"alert_name\":\"A\",\"field\":\"no.such\",\"op\":\"eq\",\"value\":\"x\"}", "field"},
        {"{\"alert_name\":\"A\",\"field\":\"details.n\",\"op\":\"gt\",\"value\":\"many\"}",
         "number"},
        {"{\"alert_name\":\"A\",\"field\":\"file.path\",\"op\":\"regex\",\"value\":\"(ab[\"}",
         "offset 4"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cwpp_wl_def_t d;
        char          err[512] = "";

        if (def_from(bad[i].json, &d, err, sizeof(err)) != CWPP_EINVAL)
            fail_msg("case %zu accepted: %s", i, bad[i].json);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].says);
        assert_null(d.def.alert_name); /* nothing left to free */
    }
}

/* Every text of a rule has its limit (cwpp_alert_limits.h): one byte over is refused with
 * a sentence naming the field and the limit, the limit itself is accepted. A regex value
 * has a lower limit than other values. alert_name's is the longest alert name: a 10 KB
 * one (indexed, loaded into every filter) is refused. */
static void test_def_limits(void **state)
{
    static const struct {
        const char *key, *op, *says;
        size_t      max;
    } cases[] = {
        {"alert_name", "eq", "alert_name", CWPP_ALERT_MAX_NAME},
        {"value", "eq", "value", CWPP_CMD_MAX_RULE_VALUE},
        {"value", "contains", "value", CWPP_CMD_MAX_RULE_VALUE},
        {"value", "regex", "regex", CWPP_CMD_MAX_RULE_REGEX},
        {"asset_id", "eq", "asset_id", CWPP_ALERT_MAX_ID},
        {"remark", "eq", "remark", CWPP_CMD_MAX_REMARK},
        {"account_id", "eq", "account_id", CWPP_ALERT_MAX_ACCOUNT},
        {"alert_name", "eq", "alert_name", 10240},
    };
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (k = 0; k < 2; k++) {
            size_t        len = cases[i].max + k;
            char         *v = malloc(len + 1), err[512] = "", want[120];
            json_t       *o = json_pack("{s:s, s:s, s:s, s:s}", "alert_name", "A", "field",
                                        "file.path", "op", cases[i].op, "value", "x");
            cwpp_wl_def_t d;
            int           rc;

            memset(v, 'a', len);
            v[len] = '\0';
            json_object_set_new(o, cases[i].key, json_string(v));
            if (strcmp(cases[i].key, "asset_id") == 0)
                json_object_set_new(o, "scope", json_string("asset"));
            rc = cwpp_wl_def_from_json(o, &d, err, sizeof(err));
            if (cases[i].max == 10240 || k == 1) {
                snprintf(want, sizeof(want), "the rule's %s is %zu bytes, longer than its limit "
                         "of %zu bytes", cases[i].says, len,
                         cases[i].max == 10240 ? (size_t)CWPP_ALERT_MAX_NAME : cases[i].max);
                if (rc != CWPP_EINVAL || strstr(err, want) == NULL)
                    fail_msg("case %zu+%zu: rc %d, \"%s\" (wanted \"%s\")", i, k, rc, err,
                             want);
                assert_null(d.def.alert_name);
            } else {
                if (rc != CWPP_OK)
                    fail_msg("case %zu at its limit refused: %s", i, err);
                cwpp_wl_def_clear(&d);
            }
            json_decref(o);
            free(v);
        }
    }
}

static int broad(const char *field, cwpp_rule_op_t op, const char *value,
                 const cwpp_wl_preview_t *p, char *why, size_t whysz)
{
    cwpp_rule_def_t d = {0, "Trojan", field, op, value, CWPP_SCOPE_ALL, NULL, 0, NULL};

    return cwpp_wl_broad(&d, p, 0.20, why, whysz);
}

static void test_broad_conditions(void **state)
{
    char why[1024];

    (void)state;
    /* the reference's own examples */
    assert_int_equal(broad("file.path", CWPP_OP_CONTAINS, "/data/", NULL, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "top-level directory"));
    assert_int_equal(broad("file.path", CWPP_OP_REGEX, "^/data/app/logs/.*", NULL, why,
                           sizeof(why)), 0);
    assert_string_equal(why, "");
    assert_int_equal(broad("process.path", CWPP_OP_CONTAINS, "D:\\programs\\test\\", NULL, why,
                           sizeof(why)), 0);
    /* as broad as /data/ */
    assert_int_equal(broad("process.path", CWPP_OP_CONTAINS, "C:\\", NULL, why, sizeof(why)), 1);
    assert_int_equal(broad("file.path", CWPP_OP_CONTAINS, "/tmp", NULL, why, sizeof(why)), 1);
    assert_int_equal(broad("details.path", CWPP_OP_REGEX, "^/data/.*", NULL, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "whole directory /data/"));
    assert_int_equal(broad("file.path", CWPP_OP_REGEX, "^/data/", NULL, why, sizeof(why)), 1);
    assert_int_equal(broad("file.path", CWPP_OP_REGEX, "^/data/app/", NULL, why, sizeof(why)), 0);
    /* matches anything */
    assert_int_equal(broad("name", CWPP_OP_REGEX, ".*", NULL, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "matches anything"));
    assert_int_equal(broad("details.cmd", CWPP_OP_CONTAINS, "a", NULL, why, sizeof(why)), 1);
    /* startswith: a one-character prefix ("/": every absolute path) matches almost
     * anything; a prefix naming a top-level directory is as broad as contains /data/ */
    assert_int_equal(broad("file.path", CWPP_OP_STARTSWITH, "/", NULL, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "file.path startswith /\" matches almost anything"));
    assert_int_equal(broad("details.cmd", CWPP_OP_STARTSWITH, "a", NULL, why, sizeof(why)), 1);
    assert_int_equal(broad("file.path", CWPP_OP_STARTSWITH, "", NULL, why, sizeof(why)), 1);
    assert_int_equal(broad("file.path", CWPP_OP_STARTSWITH, "/data/", NULL, why, sizeof(why)),
                     1);
    assert_non_null(strstr(why, "whole top-level directory"));
    assert_int_equal(broad("process.path", CWPP_OP_STARTSWITH, "C:\\", NULL, why, sizeof(why)),
                     1);
    assert_int_equal(broad("file.path", CWPP_OP_STARTSWITH, "/data/app/logs/", NULL, why,
                           sizeof(why)), 0);
    assert_int_equal(broad("asset.name", CWPP_OP_STARTSWITH, "db", NULL, why, sizeof(why)), 0);
    /* precise conditions on other fields are fine */
    assert_int_equal(broad("asset.id", CWPP_OP_EQ, "i-1", NULL, why, sizeof(why)), 0);
    assert_int_equal(broad("details.port", CWPP_OP_GT, "1024", NULL, why, sizeof(why)), 0);
    /* a regex that does not compile is no business of this check */
    assert_int_equal(broad("file.path", CWPP_OP_REGEX, "(ab[", NULL, why, sizeof(why)), 0);
}

static void test_broad_share(void **state)
{
    cwpp_wl_preview_t p;
    char              why[1024];

    (void)state;
    memset(&p, 0, sizeof(p));
    p.days = 30;
    p.considered = 10;
    p.matched = 2; /* 20 %: not more than the limit */
    p.share = 0.2;
    assert_int_equal(broad("asset.id", CWPP_OP_EQ, "i-1", &p, why, sizeof(why)), 0);
    p.matched = 3;
    p.share = 0.3;
    assert_int_equal(broad("asset.id", CWPP_OP_EQ, "i-1", &p, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "3 of 10"));
    assert_non_null(strstr(why, "(30 %)"));
    assert_non_null(strstr(why, "20 %"));
    assert_true(why[0] == 'I'); /* a sentence */
    /* both reasons at once */
    assert_int_equal(broad("file.path", CWPP_OP_CONTAINS, "/data/", &p, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "top-level"));
    assert_non_null(strstr(why, "3 of 10"));
    /* no alerts of that name: no share to speak of */
    p.considered = p.matched = 0;
    p.share = 0;
    assert_int_equal(broad("asset.id", CWPP_OP_EQ, "i-1", &p, why, sizeof(why)), 0);
}

static const char *ROW =
    "{\"alert_id\":\"al-0123456789abcdef0123456789abcdef\",\"dedup_key\":\"[\\\"v\\\"]\","
    "\"source_alert_id\":null,\"input_format\":\"falco\",\"name\":\"Write below etc\","
    "\"type\":\"malicious_process\",\"severity\":\"high\",\"source\":\"falco\","
    "\"account_id\":\"acct-1\",\"asset\":{\"id\":\"i-1\",\"name\":\"web\",\"ip\":\"10.0.0.5\"},"
    "\"attack_tactic\":\"TA0003\",\"attack_technique\":null,\"defense\":\"none\","
    "\"file\":{\"md5\":null,\"path\":\"/etc/x\",\"sha256\":null},"
    "\"process\":{\"pid\":42,\"path\":\"/bin/sh\",\"cmdline\":\"sh -c x\",\"user\":\"root\"},"
    "\"remote_ip\":null,\"logon\":null,\"details\":{\"rule\":\"Write below etc\",\"n\":3},"
    "\"entities\":[{\"type\":\"host\",\"value\":\"i-1\",\"asset_id\":\"i-1\"},"
    "{\"type\":\"file\",\"value\":\"/etc/x\",\"asset_id\":\"i-1\"}],"
    "\"status\":\"manually_whitelisted\",\"first_ms\":1795860000000,\"last_ms\":1795860060000,"
    "\"occurrences\":2,\"ingested_ms\":1795860000500}";

static void test_alert_from_row(void **state)
{
    cwpp_alert_t a;
    char         err[256], *bad;
    const char  *out;
    double       num;
    int          is_num;
    char         buf[64];

    (void)state;
    memset(&a, 0, sizeof(a));
    assert_int_equal(cwpp_alert_from_row(ROW, strlen(ROW), &a, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.alert_id, "al-0123456789abcdef0123456789abcdef");
    assert_int_equal(a.format, CWPP_FMT_FALCO);
    assert_int_equal(a.severity, CWPP_SEV_HIGH);
    assert_string_equal(a.asset.ip, "10.0.0.5");
    assert_null(a.asset.role);
    assert_string_equal(a.tactic, "TA0003");
    assert_null(a.technique);
    assert_string_equal(a.file.path, "/etc/x");
    assert_null(a.file.md5);
    assert_int_equal(a.process.has_pid, 1);
    assert_int_equal(a.process.pid, 42);
    assert_null(a.logon.ip);
    assert_int_equal(a.n_entities, 2);
    assert_int_equal(a.entities[1].type, CWPP_ENT_FILE);
    assert_int_equal(a.status, CWPP_ST_MANUALLY_WHITELISTED);
    assert_int_equal(a.occurrences, 2);
    assert_int_equal(a.occurred_at_ms, 1795860060000LL); /* a stored alert's time: last seen */
    /* rules see it like a live alert */
    assert_int_equal(cwpp_alert_field(&a, "details.n", buf, sizeof(buf), &out, &num, &is_num), 0);
    assert_true(is_num && num == 3.0);
    cwpp_alert_clear(&a);

    /* an unknown status, a missing required field, not JSON: refused, nothing leaks */
    bad = strdup(ROW);
    memcpy(strstr(bad, "manually_whitelisted"), "manually_whitelistex", 20);
    assert_int_equal(cwpp_alert_from_row(bad, strlen(bad), &a, err, sizeof(err)), CWPP_EINVAL);
    free(bad);
    bad = strdup(ROW);
    memcpy(strstr(bad, "\"name\":"), "\"nime\":", 7);
    assert_int_equal(cwpp_alert_from_row(bad, strlen(bad), &a, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "incomplete"));
    free(bad);
    assert_int_equal(cwpp_alert_from_row("{", 1, &a, err, sizeof(err)), CWPP_EINVAL);
    assert_int_equal(cwpp_alert_from_row(ROW, 40, &a, err, sizeof(err)), CWPP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_def_valid),
        cmocka_unit_test(test_def_refused),
        cmocka_unit_test(test_def_limits),
        cmocka_unit_test(test_broad_conditions),
        cmocka_unit_test(test_broad_share),
        cmocka_unit_test(test_alert_from_row),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
