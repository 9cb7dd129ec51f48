/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_snapshot: the one SecurityEvent encoder (libs/snapshot) that the correlator and
 * the responder both send with. Each case encodes a cwpp_snapshot_t, decodes the bytes
 * with avro-c against schemas/event.avsc and checks the fields:
 *  - every field of a full event lands where the schema puts it, in order (assets in
 *    the object's order, reasons and recommendations in the assessment's order);
 *  - NULL parts give the documented defaults (null owner and predecessor, empty arrays,
 *    level and urgency "low", status "unhandled") and non-string array elements are
 *    skipped;
 *  - a value the schema refuses (an unknown level) is CWPP_EINVAL with the event's id,
 *    and the encoder appends nothing;
 *  - the size budget (docs/correlator.md "Snapshot size"): an event with more affected
 *    assets than CWPP_SNAPSHOT_MAX_ASSETS carries the first ones and says
 *    lists_truncated; exactly at the caps nothing is said; with every list past its cap
 *    and every string past its bound (multi-byte characters at the cut) the record
 *    stays within CWPP_SNAPSHOT_MAX_BYTES, its strings cut at a UTF-8 boundary and
 *    ending in U+2026.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cwpp_snapshot.h"

#define ELLIPSIS "\xe2\x80\xa6"

typedef struct fx {
    cwpp_avro_type_t *t;
    avro_value_t      enc, dec;
    cwpp_buf_t        buf;
} fx_t;

static int setup(void **state)
{
    char  err[256];
    fx_t *f = calloc(1, sizeof(*f));

    if (f == NULL || (f->t = cwpp_avro_type_builtin("event", err, sizeof(err))) == NULL ||
        cwpp_avro_value_new(f->t, &f->enc) != 0 || cwpp_avro_value_new(f->t, &f->dec) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;

    avro_value_decref(&f->enc);
    avro_value_decref(&f->dec);
    cwpp_avro_type_destroy(f->t);
    cwpp_buf_free(&f->buf);
    free(f);
    return 0;
}

/* Encodes s and decodes it into f->dec. */
static void round_trip(fx_t *f, const cwpp_snapshot_t *s)
{
    char err[256];

    cwpp_buf_reset(&f->buf);
    assert_int_equal(cwpp_snapshot_encode(f->t, &f->enc, s, &f->buf, err, sizeof(err)), 0);
    assert_true(f->buf.len > 10);
    assert_int_equal(cwpp_avro_decode(f->t, f->buf.data, f->buf.len, &f->dec, err, sizeof(err)),
                     0);
}

static void assert_field_str(avro_value_t *rec, const char *field, const char *want)
{
    const char *got = NULL;

    assert_int_equal(cwpp_avro_get_str(rec, field, &got), 0);
    assert_string_equal(got, want);
}

static void assert_enum(avro_value_t *rec, const char *field, const char *want)
{
    const char *got = NULL;

    assert_int_equal(cwpp_avro_get_enum(rec, field, &got), 0);
    assert_string_equal(got, want);
}

static void assert_long(avro_value_t *rec, const char *field, int64_t want)
{
    int64_t got = -1;

    assert_int_equal(cwpp_avro_get_long(rec, field, &got), 0);
    assert_int_equal(got, want);
}

/* The array field's size, and its element i in *x when i < size. */
static size_t array_at(avro_value_t *rec, const char *field, size_t i, avro_value_t *x)
{
    avro_value_t a;
    size_t       n = 0;

    assert_int_equal(avro_value_get_by_name(rec, field, &a, NULL), 0);
    assert_int_equal(avro_value_get_size(&a, &n), 0);
    if (i < n)
        assert_int_equal(avro_value_get_by_index(&a, i, x, NULL), 0);
    return n;
}

static void assert_strings(avro_value_t *rec, const char *field, const char *const *want,
                           size_t nwant)
{
    avro_value_t x;
    size_t       i, len;
    const char  *s;

    assert_int_equal(array_at(rec, field, 0, &x), nwant);
    for (i = 0; i < nwant; i++) {
        array_at(rec, field, i, &x);
        assert_int_equal(avro_value_get_string(&x, &s, &len), 0);
        assert_string_equal(s, want[i]);
    }
}

static int truncated(avro_value_t *rec)
{
    avro_value_t f;
    int          b = -1;

    assert_int_equal(avro_value_get_by_name(rec, "lists_truncated", &f, NULL), 0);
    assert_int_equal(avro_value_get_boolean(&f, &b), 0);
    return b;
}

static void test_full_event_round_trips(void **state)
{
    fx_t         *f = *state;
    json_error_t  jerr;
    json_t       *stages = json_loads("[\"initial_access\", \"execution\"]", 0, &jerr);
    json_t       *sources = json_loads("[\"ids\", 7, \"virus_scan\"]", 0, &jerr);
    json_t       *assets = json_loads(
        "{\"h2\": {\"name\": \"db-1\", \"role\": \"database\", \"ips\": [\"10.0.0.2\"],"
        " \"alerts\": 3},"
        " \"h1\": {\"ips\": [\"10.0.0.1\", \"10.0.0.9\"], \"alerts\": 1}}", 0, &jerr);
    json_t       *as = json_loads(
        "{\"reasons\": [{\"code\": \"core_asset\", \"text\": \"A core asset.\"},"
        " {\"code\": \"block_ip\", \"text\": \"Block it.\"}],"
        " \"recommendations\": [{\"action\": \"block_ip\", \"entity_type\": \"ip\","
        " \"entity_value\": \"203.0.113.9\", \"reason\": \"3 events\"}],"
        " \"assessed_at\": 5}", 0, &jerr);
    cwpp_snapshot_t s = {
        .event_id = "ev-0123456789abcdef0123456789abcdef", .account_id = "acct-1",
        .name = "Brute force", .level = "high", .status = "handling", .owner = "alice",
        .predecessor = "ev-ffffffffffffffffffffffffffffffff", .stages = stages,
        .sources = sources, .alert_count = 4, .occurrences = 9, .assets = assets,
        .first_seen_ms = 1795860000000LL, .last_seen_ms = 1795860600000LL,
        .urgency = "act_now", .assessment = as, .version = 12,
        .updated_at_ms = 1795860700000LL,
    };
    static const char *const want_stages[] = {"initial_access", "execution"};
    static const char *const want_sources[] = {"ids", "virus_scan"}; /* 7 skipped */
    static const char *const want_ips1[] = {"10.0.0.1", "10.0.0.9"};
    avro_value_t x;
    const char  *o;
    int32_t      i32;

    assert_non_null(stages);
    assert_non_null(sources);
    assert_non_null(assets);
    assert_non_null(as);
    round_trip(f, &s);
    assert_field_str(&f->dec, "event_id", "ev-0123456789abcdef0123456789abcdef");
    assert_field_str(&f->dec, "account_id", "acct-1");
    assert_field_str(&f->dec, "name", "Brute force");
    assert_enum(&f->dec, "level", "high");
    assert_enum(&f->dec, "status", "handling");
    assert_int_equal(cwpp_avro_get_opt_str(&f->dec, "owner", &o), 0);
    assert_string_equal(o, "alice");
    assert_int_equal(cwpp_avro_get_opt_str(&f->dec, "predecessor", &o), 0);
    assert_string_equal(o, "ev-ffffffffffffffffffffffffffffffff");
    assert_strings(&f->dec, "stages", want_stages, 2);
    assert_strings(&f->dec, "sources", want_sources, 2);
    assert_int_equal(cwpp_avro_get_int(&f->dec, "alert_count", &i32), 0);
    assert_int_equal(i32, 4);
    assert_long(&f->dec, "occurrences", 9);

    assert_int_equal(array_at(&f->dec, "affected_assets", 0, &x), 2);
    assert_field_str(&x, "asset_id", "h2"); /* the object's order */
    assert_int_equal(cwpp_avro_get_opt_str(&x, "name", &o), 0);
    assert_string_equal(o, "db-1");
    assert_int_equal(cwpp_avro_get_opt_str(&x, "role", &o), 0);
    assert_string_equal(o, "database");
    assert_int_equal(cwpp_avro_get_int(&x, "alerts", &i32), 0);
    assert_int_equal(i32, 3);
    array_at(&f->dec, "affected_assets", 1, &x);
    assert_field_str(&x, "asset_id", "h1");
    assert_int_equal(cwpp_avro_get_opt_str(&x, "name", &o), 0);
    assert_null(o);
    assert_int_equal(cwpp_avro_get_opt_str(&x, "role", &o), 0);
    assert_null(o);
    assert_strings(&x, "ips", want_ips1, 2);

    assert_long(&f->dec, "first_seen_ms", 1795860000000LL);
    assert_long(&f->dec, "last_seen_ms", 1795860600000LL);
    assert_enum(&f->dec, "urgency", "act_now");
    assert_int_equal(array_at(&f->dec, "reasons", 1, &x), 2);
    assert_field_str(&x, "code", "block_ip");
    assert_field_str(&x, "text", "Block it.");
    assert_int_equal(array_at(&f->dec, "recommendations", 0, &x), 1);
    assert_field_str(&x, "action", "block_ip");
    assert_field_str(&x, "entity_type", "ip");
    assert_field_str(&x, "entity_value", "203.0.113.9");
    assert_field_str(&x, "reason", "3 events");
    assert_long(&f->dec, "version", 12);
    assert_long(&f->dec, "updated_at_ms", 1795860700000LL);
    assert_false(truncated(&f->dec));

    json_decref(stages);
    json_decref(sources);
    json_decref(assets);
    json_decref(as);
}

static void test_missing_parts_take_the_defaults(void **state)
{
    fx_t           *f = *state;
    json_error_t    jerr;
    json_t         *as = json_loads("{\"reasons\": [{\"code\": \"recent_activity\"}]}", 0,
                                    &jerr);
    cwpp_snapshot_t s = {.event_id = "ev-1", .account_id = "a", .assessment = as};
    avro_value_t    x;
    const char     *o = "x";

    assert_non_null(as);
    round_trip(f, &s);
    assert_field_str(&f->dec, "name", "");
    assert_enum(&f->dec, "level", "low");
    assert_enum(&f->dec, "status", "unhandled");
    assert_enum(&f->dec, "urgency", "low");
    assert_int_equal(cwpp_avro_get_opt_str(&f->dec, "owner", &o), 0);
    assert_null(o);
    assert_int_equal(cwpp_avro_get_opt_str(&f->dec, "predecessor", &o), 0);
    assert_null(o);
    assert_int_equal(array_at(&f->dec, "stages", 0, &x), 0);
    assert_int_equal(array_at(&f->dec, "sources", 0, &x), 0);
    assert_int_equal(array_at(&f->dec, "affected_assets", 0, &x), 0);
    assert_int_equal(array_at(&f->dec, "recommendations", 0, &x), 0);
    assert_int_equal(array_at(&f->dec, "reasons", 0, &x), 1);
    assert_field_str(&x, "code", "recent_activity");
    assert_field_str(&x, "text", ""); /* a reason without text: an empty one */
    json_decref(as);

    /* the value is reused: nothing of the first event stays in the second */
    s = (cwpp_snapshot_t){.event_id = "ev-2", .account_id = "b", .level = "critical"};
    round_trip(f, &s);
    assert_field_str(&f->dec, "event_id", "ev-2");
    assert_enum(&f->dec, "level", "critical");
    assert_int_equal(array_at(&f->dec, "reasons", 0, &x), 0);
}

static void test_a_value_the_schema_refuses_is_einval(void **state)
{
    fx_t           *f = *state;
    char            err[256] = "";
    cwpp_snapshot_t s = {.event_id = "ev-bad", .account_id = "a", .level = "severe"};

    cwpp_buf_reset(&f->buf);
    assert_int_equal(cwpp_snapshot_encode(f->t, &f->enc, &s, &f->buf, err, sizeof(err)),
                     CWPP_EINVAL);
    assert_non_null(strstr(err, "ev-bad"));
    assert_int_equal(f->buf.len, 0);
    s.level = NULL;
    s.status = "closed";
    assert_int_equal(cwpp_snapshot_encode(f->t, &f->enc, &s, &f->buf, err, sizeof(err)),
                     CWPP_EINVAL);
    assert_int_equal(f->buf.len, 0);
}

/* {"a0000": {"name": "n0000", "role": "web", "ips": ["10.0.0.1", "10.0.0.2"],
 *  "alerts": 1}, ...}: n assets in that order. */
static json_t *many_assets(size_t n)
{
    json_t *o = json_object();
    size_t  i;

    assert_non_null(o);
    for (i = 0; i < n; i++) {
        char id[32], name[32];

        snprintf(id, sizeof(id), "a%04zu", i);
        snprintf(name, sizeof(name), "n%04zu", i);
        assert_int_equal(json_object_set_new(o, id,
                                             json_pack("{s:s, s:s, s:[s, s], s:i}", "name",
                                                       name, "role", "web", "ips",
                                                       "10.0.0.1", "10.0.0.2", "alerts", 1)),
                         0);
    }
    return o;
}

static void test_more_assets_than_the_cap_are_cut_and_said(void **state)
{
    fx_t           *f = *state;
    json_t         *assets = many_assets(1000);
    cwpp_snapshot_t s = {.event_id = "ev-many", .account_id = "a", .assets = assets,
                         .alert_count = 1000};
    avro_value_t    x;
    const char     *o;

    round_trip(f, &s);
    assert_true(f->buf.len <= CWPP_SNAPSHOT_MAX_BYTES);
    assert_true(truncated(&f->dec));
    assert_int_equal(array_at(&f->dec, "affected_assets", 0, &x), CWPP_SNAPSHOT_MAX_ASSETS);
    array_at(&f->dec, "affected_assets", 0, &x); /* the first ones, in order */
    assert_field_str(&x, "asset_id", "a0000");
    array_at(&f->dec, "affected_assets", CWPP_SNAPSHOT_MAX_ASSETS - 1, &x);
    assert_field_str(&x, "asset_id", "a0099");
    assert_int_equal(cwpp_avro_get_opt_str(&x, "name", &o), 0);
    assert_string_equal(o, "n0099");
    json_decref(assets);

    /* exactly at the cap: all of them, nothing said */
    assets = many_assets(CWPP_SNAPSHOT_MAX_ASSETS);
    s.assets = assets;
    round_trip(f, &s);
    assert_false(truncated(&f->dec));
    assert_int_equal(array_at(&f->dec, "affected_assets", 0, &x), CWPP_SNAPSHOT_MAX_ASSETS);
    json_decref(assets);
}

/* A string of n bytes: "é" (2 bytes) repeated, so that a cut can fall inside one. */
static char *long_str(size_t n)
{
    char  *p = malloc(n + 1);
    size_t i;

    assert_non_null(p);
    for (i = 0; i + 1 < n; i += 2)
        memcpy(p + i, "\xc3\xa9", 2);
    if (i < n)
        p[i++] = 'x';
    p[n] = '\0';
    return p;
}

/* A string field cut to max bytes: valid UTF-8, at most max, ending in U+2026. */
static void assert_cut(avro_value_t *rec, const char *field, size_t max)
{
    const char *got = NULL;
    size_t      n;

    assert_int_equal(cwpp_avro_get_str(rec, field, &got), 0);
    n = strlen(got);
    assert_true(n <= max && n > max - 5);
    assert_true(cwpp_utf8_valid(got, n));
    assert_string_equal(got + n - 3, ELLIPSIS);
}

static void test_the_worst_case_stays_within_the_budget(void **state)
{
    fx_t           *f = *state;
    char           *big = long_str(3001), *odd = long_str(CWPP_SNAPSHOT_MAX_ID + 1);
    json_t         *names = json_array(), *assets = json_object(), *as, *reasons, *recs;
    cwpp_snapshot_t s;
    avro_value_t    x, y;
    const char     *o;
    size_t          i;
    int             fits;

    assert_non_null(names);
    assert_non_null(assets);
    for (i = 0; i < 3 * CWPP_SNAPSHOT_MAX_NAMES; i++)
        json_array_append_new(names, json_string(big));
    for (i = 0; i < 3 * CWPP_SNAPSHOT_MAX_ASSETS; i++) {
        char  *id = long_str(700 + i); /* distinct ids, every one past the bound */
        json_t *ips = json_array();
        size_t k;

        for (k = 0; k < 3 * CWPP_SNAPSHOT_MAX_ASSET_IPS; k++)
            json_array_append_new(ips, json_string(big));
        json_object_set_new(assets, id, json_pack("{s:s, s:s, s:o, s:i}", "name", big, "role",
                                                  big, "ips", ips, "alerts", 7));
        free(id);
    }
    reasons = json_array();
    recs = json_array();
    for (i = 0; i < 3 * CWPP_SNAPSHOT_MAX_REASONS; i++)
        json_array_append_new(reasons, json_pack("{s:s, s:s}", "code", big, "text", big));
    for (i = 0; i < 3 * CWPP_SNAPSHOT_MAX_RECOMMENDATIONS; i++)
        json_array_append_new(recs, json_pack("{s:s, s:s, s:s, s:s}", "action", big,
                                              "entity_type", big, "entity_value", big,
                                              "reason", big));
    as = json_pack("{s:o, s:o}", "reasons", reasons, "recommendations", recs);
    assert_non_null(as);
    s = (cwpp_snapshot_t){.event_id = odd, .account_id = big, .name = big, .owner = big,
                          .predecessor = big, .stages = names, .sources = names,
                          .assets = assets, .assessment = as};
    round_trip(f, &s);
    fits = f->buf.len <= CWPP_SNAPSHOT_MAX_BYTES;
    print_message("worst case: %zu bytes (budget %d)\n", f->buf.len, CWPP_SNAPSHOT_MAX_BYTES);
    assert_true(fits);
    assert_true(truncated(&f->dec));
    assert_cut(&f->dec, "event_id", CWPP_SNAPSHOT_MAX_ID); /* one byte past: cut too */
    assert_cut(&f->dec, "account_id", CWPP_SNAPSHOT_MAX_ID);
    assert_cut(&f->dec, "name", CWPP_SNAPSHOT_MAX_TEXT);
    assert_int_equal(cwpp_avro_get_opt_str(&f->dec, "owner", &o), 0);
    assert_true(strlen(o) <= CWPP_SNAPSHOT_MAX_ID);
    assert_int_equal(array_at(&f->dec, "stages", 0, &x), CWPP_SNAPSHOT_MAX_NAMES);
    assert_int_equal(array_at(&f->dec, "sources", 0, &x), CWPP_SNAPSHOT_MAX_NAMES);
    assert_int_equal(array_at(&f->dec, "affected_assets", 0, &x), CWPP_SNAPSHOT_MAX_ASSETS);
    assert_cut(&x, "asset_id", CWPP_SNAPSHOT_MAX_ID);
    assert_int_equal(array_at(&x, "ips", 0, &y), CWPP_SNAPSHOT_MAX_ASSET_IPS);
    assert_int_equal(array_at(&f->dec, "reasons", 0, &x), CWPP_SNAPSHOT_MAX_REASONS);
    assert_cut(&x, "code", CWPP_SNAPSHOT_MAX_ID);
    assert_cut(&x, "text", CWPP_SNAPSHOT_MAX_TEXT);
    assert_int_equal(array_at(&f->dec, "recommendations", 0, &x),
                     CWPP_SNAPSHOT_MAX_RECOMMENDATIONS);
    assert_cut(&x, "entity_value", CWPP_SNAPSHOT_MAX_ID);
    assert_cut(&x, "reason", CWPP_SNAPSHOT_MAX_TEXT);
    json_decref(names);
    json_decref(assets);
    json_decref(as);
    free(big);
    free(odd);
}

/* One list past its cap is enough: a third IP list entry past 4, or a 33rd source. */
static void test_any_list_past_its_cap_is_said(void **state)
{
    fx_t           *f = *state;
    json_error_t    jerr;
    json_t         *assets = json_loads("{\"h1\": {\"ips\": [\"10.0.0.1\", \"10.0.0.2\","
                                        " \"10.0.0.3\", \"10.0.0.4\", \"10.0.0.5\"]}}", 0,
                                        &jerr);
    json_t         *sources = json_array();
    cwpp_snapshot_t s = {.event_id = "ev-ips", .account_id = "a", .assets = assets};
    avro_value_t    x, y;
    size_t          i;

    assert_non_null(assets);
    round_trip(f, &s);
    assert_true(truncated(&f->dec));
    array_at(&f->dec, "affected_assets", 0, &x);
    assert_int_equal(array_at(&x, "ips", 0, &y), CWPP_SNAPSHOT_MAX_ASSET_IPS);
    json_decref(assets);
    for (i = 0; i < CWPP_SNAPSHOT_MAX_NAMES; i++)
        json_array_append_new(sources, json_string("src"));
    s = (cwpp_snapshot_t){.event_id = "ev-src", .account_id = "a", .sources = sources};
    round_trip(f, &s);
    assert_false(truncated(&f->dec));
    json_array_append_new(sources, json_string("one more"));
    round_trip(f, &s);
    assert_true(truncated(&f->dec));
    assert_int_equal(array_at(&f->dec, "sources", 0, &x), CWPP_SNAPSHOT_MAX_NAMES);
    json_decref(sources);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_event_round_trips),
        cmocka_unit_test(test_missing_parts_take_the_defaults),
        cmocka_unit_test(test_a_value_the_schema_refuses_is_einval),
        cmocka_unit_test(test_more_assets_than_the_cap_are_cut_and_said),
        cmocka_unit_test(test_the_worst_case_stays_within_the_budget),
        cmocka_unit_test(test_any_list_past_its_cap_is_said),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
