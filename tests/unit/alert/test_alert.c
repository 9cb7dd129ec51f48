/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_alert: the upstream alert contract (docs/alert-format.md,
 * docs/alert-format.md), the Falco and Wazuh mappings, entity extraction, "the same
 * alert" (reference: virus - same asset, file path and MD5; abnormal logon - same asset
 * and logon IP), and the Avro round trip. The entity type and alert status tables are
 * the only definition: the schemas that restate them (schemas/alert.avsc, the CHECKs of
 * schemas/sql) must agree, or test_vocab_* fails naming the value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_alert.h"
#include "vocab_files.h"

#define NOW_MS 1795860000000LL /* 2026-11-28T10:00:00Z */

static const cwpp_alert_opts_t opts = {NULL, NOW_MS, 3600 * 1000, 180LL * 86400 * 1000};

static char *load(const char *rel, size_t *len)
{
    char  path[512];
    FILE *fp;
    char *buf;
    long  n;

    snprintf(path, sizeof(path), "%s/tests/data/%s", CWPP_SOURCE_DIR, rel);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static int parse(const char *json, const cwpp_alert_opts_t *o, cwpp_alert_t *a,
                 const char **code, char *err, size_t errsz)
{
    return cwpp_alert_from_json(json, strlen(json), o, a, code, err, errsz);
}

static const cwpp_entity_t *entity(const cwpp_alert_t *a, cwpp_entity_type_t t, const char *v)
{
    size_t i;

    for (i = 0; i < a->n_entities; i++)
        if (a->entities[i].type == t && strcmp(a->entities[i].value, v) == 0)
            return &a->entities[i];
    return NULL;
}

/* A full contract alert is normalized: enums, lower-case hashes, entities, extras kept
 * in details, status unhandled, occurrence 1. */
static void test_native_full(void **state)
{
    size_t       len;
    char        *json = load("cwpp/virus.json", &len);
    cwpp_alert_t a;
    const char  *code;
    char         err[256];

    (void)state;
    assert_int_equal(cwpp_alert_from_json(json, len, &opts, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_int_equal(a.format, CWPP_FMT_CWPP);
    assert_string_equal(a.name, "Trojan program");
    assert_string_equal(a.type, "virus");
    assert_int_equal(a.severity, CWPP_SEV_CRITICAL);
    assert_int_equal(a.occurred_at_ms, 1795852800000LL);
    assert_string_equal(a.asset.role, "database");
    assert_string_equal(a.file.md5, "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(a.tactic, "TA0002");
    assert_int_equal(a.defense, CWPP_DEF_FAILED);
    assert_int_equal(a.process.pid, 4242);
    assert_string_equal(a.source_alert_id, "vs-000187");
    assert_int_equal(a.status, CWPP_ST_UNHANDLED);
    assert_int_equal(a.occurrences, 1);
    assert_int_equal(a.first_seen_ms, a.occurred_at_ms);
    assert_int_equal(a.ingested_at_ms, NOW_MS);
    assert_string_equal(json_string_value(json_object_get(a.details, "sandbox_verdict")),
                        "malicious");
    assert_int_equal(json_integer_value(json_object_get(a.details, "file_size")), 48213);
    assert_non_null(entity(&a, CWPP_ENT_HOST, "i-db01"));
    assert_non_null(entity(&a, CWPP_ENT_FILE, "/tmp/.x/kworkerd"));
    assert_non_null(entity(&a, CWPP_ENT_PROCESS, "/tmp/.x/kworkerd"));
    assert_non_null(entity(&a, CWPP_ENT_IP, "203.0.113.9"));
    assert_null(entity(&a, CWPP_ENT_IP, "203.0.113.9")->asset_id);
    assert_non_null(entity(&a, CWPP_ENT_HOST_ACCOUNT, "mysql"));
    assert_int_equal(a.n_entities, 5);
    assert_memory_equal(a.alert_id, "al-", 3);
    assert_int_equal(strlen(a.alert_id), CWPP_ALERT_ID_LEN);
    assert_string_equal(a.dedup_key, "[\"virus\",\"acct-1001\",\"i-db01\",\"/tmp/.x/kworkerd\","
                                     "\"d41d8cd98f00b204e9800998ecf8427e\"]");
    cwpp_alert_clear(&a);
    free(json);
}

#define BASE "\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\"," \
             "\"occurred_at\":\"2026-11-28T08:00:00Z\",\"source\":\"virus_scan\"," \
             "\"account_id\":\"a1\",\"asset\":{\"id\":\"h1\"}"

static const struct {
    const char *json;
    const char *code;
    const char *mentions; /* a word the reason must contain */
} bad[] = {
    {"{" BASE, "invalid_json", "JSON"},
    {"", "invalid_json", "JSON"},
    {"[1,2]", "wrong_type", "object"},
    {"\"just a string\"", "invalid_json", "JSON"},
    {"{\"hello\":1}", "unknown_shape", "Falco"},
    {"{" BASE ",\"name\":\"dup\"}", "invalid_json", "duplicate"},
    {"{\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "missing_field", "\"name\""},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\"}", "missing_field", "asset"},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"name\":\"h\"}}", "missing_field", "asset.id"},
    {"{\"name\":42,\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "wrong_type", "name"},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"urgent\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "invalid_value", "severity"},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"28/11/2026\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "invalid_value", "RFC 3339"},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":1795852800,"
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "wrong_type", "occurred_at"},
    {"{\"name\":\"n\",\"type\":\"vi rus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":{\"id\":\"h\"}}", "invalid_value", "type"},
    {"{" BASE ",\"asset\":\"h1\"}", "invalid_json", "duplicate"},
    {"{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
     "\"source\":\"s\",\"account_id\":\"a\",\"asset\":\"h1\"}", "wrong_type", "asset"},
    {"{" BASE ",\"remote_ip\":\"not-an-ip\"}", "invalid_value", "remote_ip"},
    {"{" BASE ",\"logon\":{\"ip\":\"300.1.1.1\"}}", "invalid_value", "logon.ip"},
    {"{" BASE ",\"file\":{\"md5\":\"xyz\"}}", "invalid_value", "file.md5"},
    {"{" BASE ",\"file\":{\"sha256\":\"00\"}}", "invalid_value", "file.sha256"},
    {"{" BASE ",\"file\":[]}", "wrong_type", "file"},
    {"{" BASE ",\"process\":{\"pid\":\"12\"}}", "wrong_type", "process.pid"},
    {"{" BASE ",\"process\":{\"pid\":-1}}", "invalid_value", "process.pid"},
    {"{" BASE ",\"attack\":{\"tactic\":\"execution\"}}", "invalid_value", "attack.tactic"},
    {"{" BASE ",\"attack\":{\"technique\":\"T10\"}}", "invalid_value", "attack.technique"},
    {"{" BASE ",\"defense\":\"maybe\"}", "invalid_value", "defense"},
    {"{" BASE ",\"details\":\"text\"}", "wrong_type", "details"},
    {"{" BASE ",\"alert_id\":7}", "wrong_type", "alert_id"},
    {"{\"name\":\"n\xff\",\"type\":\"virus\"}", "invalid_utf8", "UTF-8"},
    {"{" BASE ",\"x\":\"\\u0000\"}", "invalid_json", "JSON"},
    {"{\"rule\":\"r\",\"priority\":\"Loud\",\"output\":\"o\",\"time\":\"2026-11-28T08:00:00Z\","
     "\"hostname\":\"h\",\"output_fields\":{\"account_id\":\"a\"}}", "invalid_value", "priority"},
    {"{\"rule\":\"r\",\"priority\":\"Notice\",\"output\":\"o\",\"time\":\"2026-11-28T08:00:00Z\","
     "\"hostname\":\"h\"}", "missing_field", "account"},
    {"{\"rule\":{\"level\":\"high\",\"description\":\"d\"},\"agent\":{\"name\":\"h\"},"
     "\"timestamp\":\"2026-11-28T08:00:00.000+0000\"}", "wrong_type", "rule.level"},
};

/* Every bad record is refused with its reason code and a sentence naming the field. */
static void test_rejections(void **state)
{
    size_t       i;
    cwpp_alert_t a;
    const char  *code;
    char         err[400];

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].json, &opts, &a, &code, err, sizeof(err));
        if (rc != CWPP_EINVAL || code == NULL || strcmp(code, bad[i].code) != 0 ||
            strstr(err, bad[i].mentions) == NULL)
            fail_msg("case %zu: rc=%d code=%s err=%s (wanted %s, \"%s\")", i, rc,
                     code ? code : "-", err, bad[i].code, bad[i].mentions);
        assert_null(a.name); /* left cleared */
    }
}

/* Over-long fields are refused, not truncated. */
static void test_too_long(void **state)
{
    char        *json = malloc(9000);
    cwpp_alert_t a;
    const char  *code;
    char         err[256];

    (void)state;
    snprintf(json, 9000, "{" BASE ",\"file\":{\"path\":\"/%05000d\"}}", 0);
    assert_int_equal(parse(json, &opts, &a, &code, err, sizeof(err)), CWPP_EINVAL);
    assert_string_equal(code, "too_long");
    free(json);
}

/* Every text field of the contract has its limit (cwpp_alert_limits.h, the table of
 * docs/alert-format.md): one byte more is refused as too_long with a sentence naming the
 * field and the limit; the limit itself is accepted. */
static const struct {
    const char *obj;   /* NULL: top level */
    const char *field;
    size_t      max;
} limits[] = {
    {NULL, "name", CWPP_ALERT_MAX_NAME},          {NULL, "source", CWPP_ALERT_MAX_SOURCE},
    {NULL, "account_id", CWPP_ALERT_MAX_ACCOUNT}, {NULL, "alert_id", CWPP_ALERT_MAX_ID},
    {"asset", "id", CWPP_ALERT_MAX_ID},           {"asset", "name", CWPP_ALERT_MAX_LABEL},
    {"asset", "role", CWPP_ALERT_MAX_ROLE},       {"file", "path", CWPP_ALERT_MAX_PATH},
    {"process", "path", CWPP_ALERT_MAX_PATH},     {"process", "cmdline", CWPP_ALERT_MAX_CMDLINE},
    {"process", "user", CWPP_ALERT_MAX_LABEL},    {"logon", "user", CWPP_ALERT_MAX_LABEL},
};

static char *with_field(const char *obj, const char *field, size_t len)
{
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "name", "n", "type",
                             "virus", "severity", "high", "occurred_at", "2026-11-28T08:00:00Z",
                             "source", "s", "account_id", "a1", "asset", "id", "h1");
    char   *v = malloc(len + 1), *out;

    memset(v, 'x', len);
    v[len] = '\0';
    if (obj == NULL) {
        json_object_set_new(root, field, json_string(v));
    } else {
        if (json_object_get(root, obj) == NULL)
            json_object_set_new(root, obj, json_object());
        json_object_set_new(json_object_get(root, obj), field, json_string(v));
    }
    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    free(v);
    return out;
}

static void test_field_limits(void **state)
{
    size_t       i;
    cwpp_alert_t a;
    const char  *code;
    char         err[400], want[160], *json;

    (void)state;
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        json = with_field(limits[i].obj, limits[i].field, limits[i].max);
        if (parse(json, &opts, &a, &code, err, sizeof(err)) != CWPP_OK)
            fail_msg("%s.%s at its limit %zu: %s", limits[i].obj ? limits[i].obj : "",
                     limits[i].field, limits[i].max, err);
        cwpp_alert_clear(&a);
        free(json);
        json = with_field(limits[i].obj, limits[i].field, limits[i].max + 1);
        assert_int_equal(parse(json, &opts, &a, &code, err, sizeof(err)), CWPP_EINVAL);
        assert_string_equal(code, "too_long");
        snprintf(want, sizeof(want), "field \"%s%s%s\" is %zu bytes, longer than %zu",
                 limits[i].obj ? limits[i].obj : "", limits[i].obj ? "." : "", limits[i].field,
                 limits[i].max + 1, limits[i].max);
        if (strstr(err, want) == NULL)
            fail_msg("wanted \"%s\" in \"%s\"", want, err);
        free(json);
    }
}

/* details (the unknown top-level fields included) is bounded as JSON: over the limit the
 * alert is refused naming "details" and the limit. */
static void test_details_limit(void **state)
{
    size_t       n = CWPP_ALERT_MAX_DETAILS + 100;
    char        *json = malloc(n + 400);
    cwpp_alert_t a;
    const char  *code;
    char         err[400], want[40];
    int          k;

    (void)state;
    /* in details */
    k = snprintf(json, n + 400, "{" BASE ",\"details\":{\"blob\":\"");
    memset(json + k, 'y', n);
    strcpy(json + k + n, "\"}}");
    assert_int_equal(parse(json, &opts, &a, &code, err, sizeof(err)), CWPP_EINVAL);
    assert_string_equal(code, "too_long");
    snprintf(want, sizeof(want), "%d", CWPP_ALERT_MAX_DETAILS);
    assert_non_null(strstr(err, "\"details\""));
    assert_non_null(strstr(err, want));
    /* as an unknown top-level field, kept in details */
    k = snprintf(json, n + 400, "{" BASE ",\"extra\":\"");
    memset(json + k, 'y', n);
    strcpy(json + k + n, "\"}");
    assert_int_equal(parse(json, &opts, &a, &code, err, sizeof(err)), CWPP_EINVAL);
    assert_string_equal(code, "too_long");
    assert_non_null(strstr(err, "\"details\""));
    /* a large one under the limit is kept whole */
    k = snprintf(json, n + 400, "{" BASE ",\"details\":{\"blob\":\"");
    memset(json + k, 'y', CWPP_ALERT_MAX_DETAILS - 100);
    strcpy(json + k + CWPP_ALERT_MAX_DETAILS - 100, "\"}}");
    assert_int_equal(parse(json, &opts, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_int_equal(json_string_length(json_object_get(a.details, "blob")),
                     CWPP_ALERT_MAX_DETAILS - 100);
    cwpp_alert_clear(&a);
    free(json);
}

/* The occurred_at rule (docs/alert-format.md "occurred_at"): a time older than max_age,
 * before 1970, or later than max_future ahead is replaced by the receive time (now) and
 * the given one kept; a time within the window is kept as given. */
static void test_occurred_at_rule(void **state)
{
    static const struct {
        const char *when;
        int64_t     given_ms;
        int         replaced;
    } cases[] = {
        {"2001-01-01T00:00:00Z", 978307200000LL, 1},        /* a reset clock */
        {"1969-12-31T23:59:59Z", -1000LL, 1},               /* before 1970 */
        {"2036-11-28T08:00:00Z", 2111472000000LL, 1},       /* far future */
        {"2026-11-28T11:00:01Z", NOW_MS + 3601000LL, 1},    /* just past max_future */
        {"2026-11-28T11:00:00Z", NOW_MS + 3600000LL, 0},    /* at max_future: kept */
        {"2026-06-01T10:00:00Z", 1780308000000LL, 0},       /* 180 days old: kept */
        {"2026-05-31T10:00:00Z", 1780221600000LL, 1},       /* 181 days old */
    };
    size_t       i;
    cwpp_alert_t a;
    const char  *code;
    char         err[400], json[600];

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json), "{\"name\":\"n\",\"type\":\"virus\",\"severity\":\"high\","
                 "\"occurred_at\":\"%s\",\"source\":\"s\",\"account_id\":\"a1\","
                 "\"asset\":{\"id\":\"h1\"}}", cases[i].when);
        if (parse(json, &opts, &a, &code, err, sizeof(err)) != CWPP_OK)
            fail_msg("case %zu (%s): %s", i, cases[i].when, err);
        if (cases[i].replaced) {
            assert_int_equal(a.occurred_at_ms, NOW_MS);
            assert_int_equal(a.first_seen_ms, NOW_MS);
            assert_int_equal(a.last_seen_ms, NOW_MS);
            assert_true(a.has_original_occurred_at);
            assert_int_equal(a.original_occurred_at_ms, cases[i].given_ms);
        } else {
            assert_int_equal(a.occurred_at_ms, cases[i].given_ms);
            assert_false(a.has_original_occurred_at);
        }
        cwpp_alert_clear(&a);
    }
}

/* A command payload's texts against a limits table: named members their own limit,
 * others (and member names) the default; nested objects and arrays too. */
static void test_texts_fit(void **state)
{
    static const cwpp_alert_text_limit_t lim[] = {{"alert_name", 20}, {"ids", 3}};
    json_t *p;
    char    why[200];

    (void)state;
    p = json_pack("{s:s, s:[s, s], s:{s:s}}", "alert_name", "12345678901234567890", "ids",
                  "abc", "de", "o", "k", "1234567890123456");
    assert_true(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    json_object_set_new(p, "alert_name", json_string("123456789012345678901"));
    assert_false(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    assert_string_equal(why, "\"alert_name\" is 21 bytes, longer than its limit of 20 bytes");
    json_object_set_new(p, "alert_name", json_string("1"));
    json_array_append_new(json_object_get(p, "ids"), json_string("abcd"));
    assert_false(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    assert_string_equal(why, "\"ids[3]\" is 4 bytes, longer than its limit of 3 bytes");
    json_array_remove(json_object_get(p, "ids"), 2);
    json_object_set_new(json_object_get(p, "o"), "k", json_string("12345678901234567"));
    assert_false(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    assert_string_equal(why, "\"o.k\" is 17 bytes, longer than its limit of 16 bytes");
    json_object_set_new(json_object_get(p, "o"), "k", json_string("1"));
    assert_true(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    json_object_set_new(p, "a_member_name_too_long", json_integer(1));
    assert_false(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    assert_non_null(strstr(why, "member name"));
    assert_true(cwpp_alert_texts_fit(NULL, lim, 2, 16, why, sizeof(why)));
    json_decref(p);
    /* texts below a member without an entry of their own take its limit */
    p = json_pack("{s:{s:{s:s}}}", "alert_name", "deep", "x", "123456789012345678901");
    assert_false(cwpp_alert_texts_fit(p, lim, 2, 16, why, sizeof(why)));
    assert_string_equal(why, "\"alert_name.deep.x\" is 21 bytes, longer than its limit of "
                        "20 bytes");
    json_decref(p);
}

/* Precision-defence alerts are handled from the start (docs/architecture.md "Status"). */
static void test_precision_defense_is_handled(void **state)
{
    cwpp_alert_t a;
    const char  *code;
    char         err[256];

    (void)state;
    assert_int_equal(parse("{" BASE ",\"defense\":\"precision_defense\"}", &opts, &a, &code, err,
                           sizeof(err)), CWPP_OK);
    assert_int_equal(a.defense, CWPP_DEF_PRECISION);
    assert_int_equal(a.status, CWPP_ST_HANDLED);
    cwpp_alert_clear(&a);
}

static void id_of(const char *json, char out[CWPP_ALERT_ID_LEN + 1])
{
    cwpp_alert_t a;
    const char  *code;
    char         err[256];

    if (parse(json, &opts, &a, &code, err, sizeof(err)) != CWPP_OK)
        fail_msg("%s", err);
    memcpy(out, a.alert_id, CWPP_ALERT_ID_LEN + 1);
    cwpp_alert_clear(&a);
}

#define HDR(type) "{\"type\":\"" type "\",\"severity\":\"high\",\"source\":\"s\",\"account_id\":\"a1\","

/* "The same alert": virus = asset + path + MD5; abnormal logon = asset + logon IP. Names,
 * times and other fields do not matter; a different key part gives a different alert. */
static void test_same_alert_identity(void **state)
{
    char a[40], b[40], c[40], d[40];

    (void)state;
    id_of(HDR("virus") "\"name\":\"Trojan\",\"occurred_at\":\"2026-11-28T08:00:00Z\",\"asset\":{\"id\":\"h1\"},"
          "\"file\":{\"path\":\"/tmp/x\",\"md5\":\"d41d8cd98f00b204e9800998ecf8427e\"}}", a);
    id_of(HDR("virus") "\"name\":\"Renamed\",\"occurred_at\":\"2026-11-28T09:00:00Z\",\"asset\":{\"id\":\"h1\"},"
          "\"file\":{\"path\":\"/tmp/x\",\"md5\":\"D41D8CD98F00B204E9800998ECF8427E\"},\"remote_ip\":\"192.0.2.1\"}", b);
    id_of(HDR("virus") "\"name\":\"Trojan\",\"occurred_at\":\"2026-11-28T08:00:00Z\",\"asset\":{\"id\":\"h1\"},"
          "\"file\":{\"path\":\"/tmp/x\",\"md5\":\"00000000000000000000000000000000\"}}", c);
    id_of(HDR("virus") "\"name\":\"Trojan\",\"occurred_at\":\"2026-11-28T08:00:00Z\",\"asset\":{\"id\":\"h2\"},"
          "\"file\":{\"path\":\"/tmp/x\",\"md5\":\"d41d8cd98f00b204e9800998ecf8427e\"}}", d);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);

    id_of(HDR("abnormal_logon") "\"name\":\"Unusual logon\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
          "\"asset\":{\"id\":\"h1\"},\"logon\":{\"ip\":\"198.51.100.7\",\"user\":\"root\"}}", a);
    id_of(HDR("abnormal_logon") "\"name\":\"Unusual logon\",\"occurred_at\":\"2026-11-28T08:30:00Z\","
          "\"asset\":{\"id\":\"h1\"},\"logon\":{\"ip\":\"198.51.100.7\",\"user\":\"admin\"}}", b);
    id_of(HDR("abnormal_logon") "\"name\":\"Unusual logon\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
          "\"asset\":{\"id\":\"h1\"},\"logon\":{\"ip\":\"198.51.100.8\"}}", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    /* accounts never share an alert */
    id_of("{\"type\":\"abnormal_logon\",\"severity\":\"high\",\"source\":\"s\",\"account_id\":\"a2\","
          "\"name\":\"Unusual logon\",\"occurred_at\":\"2026-11-28T08:00:00Z\","
          "\"asset\":{\"id\":\"h1\"},\"logon\":{\"ip\":\"198.51.100.7\"}}", d);
    assert_string_not_equal(a, d);
}

/* Falco's json_output maps onto the contract (docs/alert-format.md "Falco"). */
static void test_falco_samples(void **state)
{
    size_t       len;
    char        *json;
    cwpp_alert_t a;
    const char  *code;
    char         err[256];
    cwpp_alert_opts_t o = opts;

    (void)state;
    json = load("falco/terminal_shell.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_int_equal(a.format, CWPP_FMT_FALCO);
    assert_string_equal(a.name, "Terminal shell in container");
    assert_string_equal(a.type, "malicious_process");
    assert_int_equal(a.severity, CWPP_SEV_LOW);
    assert_string_equal(a.source, "falco");
    assert_string_equal(a.account_id, "acct-1001");
    assert_string_equal(a.asset.id, "web-01");
    assert_string_equal(a.tactic, "TA0002");
    assert_string_equal(a.technique, "T1059");
    assert_int_equal(a.process.pid, 41237);
    assert_string_equal(a.process.path, "/usr/bin/bash");
    assert_string_equal(a.process.user, "root");
    assert_string_equal(a.source_alert_id, "4bc4a6f4-1b5e-4c5f-9a3a-3c2f2f5f8e11");
    assert_int_equal(a.occurred_at_ms, 1795852872123LL);
    assert_non_null(json_object_get(a.details, "falco_output"));
    cwpp_alert_clear(&a);
    free(json);

    /* no account in the record: rejected unless the adapter account is configured */
    json = load("falco/outbound_connection.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_EINVAL);
    assert_string_equal(code, "missing_field");
    o.adapter_account_id = "acct-default";
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.account_id, "acct-default");
    assert_string_equal(a.type, "network_attack");
    assert_int_equal(a.severity, CWPP_SEV_MEDIUM);
    assert_string_equal(a.remote_ip, "203.0.113.9");
    assert_string_equal(a.tactic, "TA0011");
    assert_non_null(entity(&a, CWPP_ENT_IP, "203.0.113.9"));
    assert_null(a.file.path); /* fd.name of a socket is not a file */
    cwpp_alert_clear(&a);
    free(json);

    json = load("falco/write_below_etc.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &opts, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.type, "file_tamper");
    assert_int_equal(a.severity, CWPP_SEV_HIGH);
    assert_string_equal(a.file.path, "/etc/ld.so.preload");
    assert_string_equal(a.technique, "T1574.006");
    assert_string_equal(a.tactic, "TA0003");
    cwpp_alert_clear(&a);
    free(json);
}

/* Wazuh's alerts.json maps onto the contract (docs/alert-format.md "Wazuh"). */
static void test_wazuh_samples(void **state)
{
    size_t       len;
    char        *json;
    cwpp_alert_t a;
    const char  *code;
    char         err[256];
    cwpp_alert_opts_t o = opts;

    (void)state;
    json = load("wazuh/sshd_brute_force.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_int_equal(a.format, CWPP_FMT_WAZUH);
    assert_string_equal(a.type, "brute_force");
    assert_int_equal(a.severity, CWPP_SEV_MEDIUM);
    assert_string_equal(a.account_id, "acct-1001");
    assert_string_equal(a.asset.id, "db-01");
    assert_string_equal(a.asset.ip, "10.0.0.7");
    assert_string_equal(a.remote_ip, "198.51.100.23");
    assert_string_equal(a.logon.ip, "198.51.100.23");
    assert_string_equal(a.logon.user, "oracle");
    assert_string_equal(a.tactic, "TA0006");
    assert_string_equal(a.technique, "T1110");
    assert_int_equal(a.occurred_at_ms, 1795853400512LL);
    assert_string_equal(a.source_alert_id, "1795853400.1207");
    assert_string_equal(json_string_value(json_object_get(a.details, "wazuh_rule_id")), "5712");
    assert_non_null(entity(&a, CWPP_ENT_HOST_ACCOUNT, "oracle"));
    cwpp_alert_clear(&a);
    free(json);

    json = load("wazuh/syscheck_modified.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_EINVAL);
    assert_string_equal(code, "missing_field"); /* no account label, no default */
    o.adapter_account_id = "acct-1001";
    assert_int_equal(cwpp_alert_from_json(json, len, &o, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.type, "file_tamper");
    assert_string_equal(a.file.path, "/usr/local/bin/backup.sh");
    assert_string_equal(a.file.md5, "9f86d081884c7d659a2feaa0c55ad015");
    assert_string_equal(a.tactic, "TA0040");
    assert_string_equal(a.technique, "T1565.001");
    cwpp_alert_clear(&a);
    free(json);

    json = load("wazuh/rootcheck_trojan.json", &len);
    assert_int_equal(cwpp_alert_from_json(json, len, &opts, &a, &code, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.type, "virus");
    assert_int_equal(a.severity, CWPP_SEV_HIGH);
    cwpp_alert_clear(&a);
    free(json);
}

/* Alert -> Avro -> Alert keeps every field (schemas/alert.avsc and the model agree). */
static void test_avro_roundtrip(void **state)
{
    size_t            len;
    char             *json = load("cwpp/virus.json", &len);
    cwpp_alert_t      a, b;
    const char       *code;
    char              err[256];
    cwpp_avro_type_t *t = cwpp_avro_type_builtin("alert", err, sizeof(err));
    avro_value_t      v;
    cwpp_buf_t        buf = {0};
    size_t            i;

    (void)state;
    memset(&b, 0, sizeof(b));
    assert_non_null(t);
    assert_int_equal(cwpp_avro_value_new(t, &v), 0);
    assert_int_equal(cwpp_alert_from_json(json, len, &opts, &a, &code, err, sizeof(err)), CWPP_OK);
    a.occurrences = 3;
    a.last_seen_ms += 5000;
    assert_int_equal(cwpp_alert_to_avro(&a, t, &v, &buf, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_alert_from_avro(t, buf.data, buf.len, &v, &b, err, sizeof(err)), CWPP_OK);
    assert_string_equal(a.alert_id, b.alert_id);
    assert_string_equal(a.dedup_key, b.dedup_key);
    assert_string_equal(a.name, b.name);
    assert_int_equal(a.severity, b.severity);
    assert_int_equal(a.defense, b.defense);
    assert_string_equal(a.asset.public_ip, b.asset.public_ip);
    assert_string_equal(a.file.sha256, b.file.sha256);
    assert_int_equal(a.process.pid, b.process.pid);
    assert_string_equal(a.process.cmdline, b.process.cmdline);
    assert_null(b.logon.ip);
    assert_int_equal(b.occurrences, 3);
    assert_int_equal(b.last_seen_ms, a.last_seen_ms);
    assert_false(b.has_original_occurred_at);
    assert_true(json_equal(a.details, b.details));
    assert_int_equal(a.n_entities, b.n_entities);
    for (i = 0; i < a.n_entities; i++) {
        assert_int_equal(a.entities[i].type, b.entities[i].type);
        assert_string_equal(a.entities[i].value, b.entities[i].value);
    }
    /* a replaced occurred_at travels with the alert */
    a.has_original_occurred_at = 1;
    a.original_occurred_at_ms = 978307200000LL;
    cwpp_buf_reset(&buf);
    assert_int_equal(cwpp_alert_to_avro(&a, t, &v, &buf, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_alert_from_avro(t, buf.data, buf.len, &v, &b, err, sizeof(err)), CWPP_OK);
    assert_true(b.has_original_occurred_at);
    assert_int_equal(b.original_occurred_at_ms, 978307200000LL);
    /* a single flipped byte anywhere is either refused or decodes to a valid alert */
    for (i = CWPP_AVRO_HEADER_LEN; i < buf.len; i += 7) {
        buf.data[i] ^= 0x80;
        if (cwpp_alert_from_avro(t, buf.data, buf.len, &v, &b, err, sizeof(err)) == CWPP_OK)
            assert_true(b.occurrences >= 1);
        buf.data[i] ^= 0x80;
    }
    cwpp_alert_clear(&a);
    cwpp_alert_clear(&b);
    avro_value_decref(&v);
    cwpp_buf_free(&buf);
    cwpp_avro_type_destroy(t);
    free(json);
}

/* The entity type table: every member has its row, names parse back, the listing order
 * is a permutation, every type has a Graphviz shape and a display text. */
static void test_vocab_entity_table(void **state)
{
    int  seen[CWPP_ENT__COUNT] = {0}, t;
    char buf[128];

    (void)state;
    for (t = 0; t < CWPP_ENT__COUNT; t++) {
        const cwpp_entity_type_def_t *d = cwpp_entity_type_def((cwpp_entity_type_t)t);
        cwpp_entity_type_t            back;

        assert_int_equal(d->type, t);
        assert_int_equal(cwpp_entity_type_parse(d->name, &back), 0);
        assert_int_equal(back, t);
        assert_true(d->order >= 0 && d->order < CWPP_ENT__COUNT);
        assert_int_equal(seen[d->order]++, 0);
        assert_non_null(d->display);
        assert_non_null(d->dot_shape);
        assert_non_null(d->dot_color);
    }
    assert_int_equal(cwpp_entity_type_parse("printer", (cwpp_entity_type_t *)&t), -1);
    assert_int_equal(cwpp_entity_type_parse(NULL, (cwpp_entity_type_t *)&t), -1);
    assert_string_equal(cwpp_entity_types_text(buf, sizeof(buf), ", ", " or "),
                        "host, file, process, ip or host_account");
    assert_string_equal(cwpp_entity_types_pg_order(buf, sizeof(buf)),
                        "{host,ip,host_account,process,file}");
    for (t = 0; t < CWPP_ST__COUNT; t++) {
        cwpp_alert_status_t back;

        assert_int_equal(cwpp_status_def((cwpp_alert_status_t)t)->status, t);
        assert_int_equal(cwpp_status_parse(cwpp_status_name((cwpp_alert_status_t)t), &back), 0);
        assert_int_equal(back, t);
    }
}

/* schemas/alert.avsc EntityType and the entity_type CHECKs of schemas/sql (latest
 * migration of each) list exactly the table's entity types. */
static void test_vocab_entity_types_in_schemas(void **state)
{
    static const struct { const char *table, *column; } checks[] = {
        {"entity_alerts", "entity_type"}, {"playbooks", "entity_type"},
    };
    const char *want[CWPP_ENT__COUNT];
    vf_list_t   got;
    int         t, nbad = 0;
    size_t      i;

    (void)state;
    for (t = 0; t < CWPP_ENT__COUNT; t++)
        want[t] = cwpp_entity_type_name((cwpp_entity_type_t)t);
    nbad += vf_diff("the entity type table (libs/alert)", want, CWPP_ENT__COUNT, &got,
                   vf_avro_enum("schemas/alert.avsc", "EntityType", &got) == 0);
    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        nbad += vf_diff("the entity type table (libs/alert)", want, CWPP_ENT__COUNT, &got,
                       vf_sql_check(checks[i].table, checks[i].column, &got) == 0);
    if (nbad != 0)
        fail_msg("%d entity type(s) disagree with libs/alert's table (lines above)", nbad);
}

/* schemas/alert.avsc AlertStatus and the CHECK on alerts.status list exactly the
 * table's alert statuses. */
static void test_vocab_alert_statuses_in_schemas(void **state)
{
    const char *want[CWPP_ST__COUNT];
    vf_list_t   got;
    int         t, nbad = 0;

    (void)state;
    for (t = 0; t < CWPP_ST__COUNT; t++)
        want[t] = cwpp_status_name((cwpp_alert_status_t)t);
    nbad += vf_diff("the alert status table (libs/alert)", want, CWPP_ST__COUNT, &got,
                   vf_avro_enum("schemas/alert.avsc", "AlertStatus", &got) == 0);
    nbad += vf_diff("the alert status table (libs/alert)", want, CWPP_ST__COUNT, &got,
                   vf_sql_check("alerts", "status", &got) == 0);
    if (nbad != 0)
        fail_msg("%d alert status(es) disagree with libs/alert's table (lines above)", nbad);
}

/* ATT&CK tactics by id and by name (the API shows stages with their names and filters on
 * either): a table of cases, ids and names both ways, case and separators aside. */
static void test_tactic_names(void **state)
{
    static const struct {
        const char *in, *id;
    } finds[] = {
        {"TA0006", "TA0006"},           {"ta0006", "TA0006"},
        {"Credential Access", "TA0006"}, {"credential-access", "TA0006"},
        {"CREDENTIAL_ACCESS", "TA0006"}, {"command-and-control", "TA0011"},
        {"Impact", "TA0040"},           {"TA9999", NULL},
        {"credential", NULL},           {"credential-access-x", NULL},
        {"", NULL},                     {"' OR 1=1 --", NULL},
    };
    size_t i;

    (void)state;
    assert_string_equal(cwpp_alert_tactic_name("TA0006"), "Credential Access");
    assert_string_equal(cwpp_alert_tactic_name("TA0043"), "Reconnaissance");
    assert_null(cwpp_alert_tactic_name("ta0006")); /* ids as stored: upper case */
    assert_null(cwpp_alert_tactic_name("TA9999"));
    assert_null(cwpp_alert_tactic_name(NULL));
    assert_null(cwpp_alert_tactic_find(NULL));
    for (i = 0; i < sizeof(finds) / sizeof(finds[0]); i++) {
        const char *got = cwpp_alert_tactic_find(finds[i].in);

        if (finds[i].id == NULL) {
            if (got != NULL)
                fail_msg("\"%s\" found %s", finds[i].in, got);
        } else if (got == NULL || strcmp(got, finds[i].id) != 0) {
            fail_msg("\"%s\" found %s, not %s", finds[i].in, got ? got : "nothing",
                     finds[i].id);
        }
        if (got != NULL)
            assert_non_null(cwpp_alert_tactic_name(got));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_full),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_field_limits),
        cmocka_unit_test(test_details_limit),
        cmocka_unit_test(test_occurred_at_rule),
        cmocka_unit_test(test_texts_fit),
        cmocka_unit_test(test_precision_defense_is_handled),
        cmocka_unit_test(test_same_alert_identity),
        cmocka_unit_test(test_falco_samples),
        cmocka_unit_test(test_wazuh_samples),
        cmocka_unit_test(test_avro_roundtrip),
        cmocka_unit_test(test_vocab_entity_table),
        cmocka_unit_test(test_vocab_entity_types_in_schemas),
        cmocka_unit_test(test_vocab_alert_statuses_in_schemas),
        cmocka_unit_test(test_tactic_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
