/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_avro: the single-object encoding contract (docs/architecture.md "Topics": marker,
 * CRC-64-AVRO fingerprint of the Parsing Canonical Form, binary datum).
 *  - canonical forms and fingerprints equal the Avro specification's published test
 *    vectors (share/test/data/schema-tests.txt of the Avro project);
 *  - encode/decode round trip of every compiled-in schema;
 *  - the decoder refuses hostile bytes with a reason instead of crashing: wrong marker,
 *    another schema's fingerprint, truncation, trailing bytes, huge lengths, unknown
 *    enum indexes and union branches, invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cwpp_avro.h"

static const struct {
    const char *input;
    const char *canonical;
    int64_t     fingerprint; /* 0 = the vector gives none */
} vectors[] = {
    {"\"null\"", "\"null\"", 7195948357588979594LL},
    {"{\"type\":\"null\"}", "\"null\"", 0},
    {"\"boolean\"", "\"boolean\"", -6970731678124411036LL},
    {"\"int\"", "\"int\"", 8247732601305521295LL},
    {"\"long\"", "\"long\"", -3434872931120570953LL},
    {"{\"type\":\"long\"}", "\"long\"", 0},
    {"\"float\"", "\"float\"", 5583340709985441680LL},
    {"\"double\"", "\"double\"", -8181574048448539266LL},
    {"\"bytes\"", "\"bytes\"", 5746618253357095269LL},
    {"\"string\"", "\"string\"", -8142146995180207161LL},
    {"[  ]", "[]", -1241056759729112623LL},
    {"[ \"int\"  ]", "[\"int\"]", -5232228896498058493LL},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 5392556393470105090LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 5916914534497305771LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", -4616218487480524110LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", -4824392279771201922LL},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     7843277075252814651LL},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":\"true\"},"
     "{\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],"
     "\"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}", -4860222112080293046LL},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", -6342190197741309591LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     -4448647247586288245LL},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1756455273707447556LL},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", -3064184465700546786LL},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", -589620603366471059LL},
    {"{ \"values\":\"string\", \"type\":\"map\"}",
     "{\"type\":\"map\",\"values\":\"string\"}", -8732877298790414990LL},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\", \"type\":"
     "[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}", -1759257747318642341LL},
};

/* Canonical form and CRC-64-AVRO fingerprint match the specification's vectors. */
static void test_spec_vectors(void **state)
{
    size_t i;
    char   err[256];

    (void)state;
    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char *pcf = NULL;
        int   rc = cwpp_avro_canonical(vectors[i].input, strlen(vectors[i].input), &pcf, err,
                                       sizeof(err));
        assert_int_equal(rc, CWPP_OK);
        assert_string_equal(pcf, vectors[i].canonical);
        if (vectors[i].fingerprint != 0)
            assert_int_equal((int64_t)cwpp_avro_crc64(pcf, strlen(pcf)), vectors[i].fingerprint);
        free(pcf);
    }
}

/* Named types referenced by name become full names in the namespace they were used in. */
static void test_canonical_fullnames_of_references(void **state)
{
    const char *s = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"org.cwpp\",\"fields\":["
                    "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
                    "{\"name\":\"b\",\"type\":\"E\"},"
                    "{\"name\":\"c\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}";
    char *pcf = NULL;

    (void)state;
    assert_int_equal(cwpp_avro_canonical(s, strlen(s), &pcf, NULL, 0), CWPP_OK);
    assert_string_equal(pcf, "{\"name\":\"org.cwpp.R\",\"type\":\"record\",\"fields\":["
                             "{\"name\":\"a\",\"type\":{\"name\":\"org.cwpp.E\",\"type\":\"enum\","
                             "\"symbols\":[\"X\"]}},{\"name\":\"b\",\"type\":\"org.cwpp.E\"},"
                             "{\"name\":\"c\",\"type\":\"long\"}]}");
    free(pcf);
}

static void test_canonical_rejects_garbage(void **state)
{
    static const char *bad[] = {"{", "42", "{\"type\":\"record\"}", "{\"type\":\"enum\",\"name\":\"e\"}",
                                "{\"name\":\"x\"}"};
    size_t i;
    char  *pcf;
    char   err[128];

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pcf = NULL;
        assert_int_equal(cwpp_avro_canonical(bad[i], strlen(bad[i]), &pcf, err, sizeof(err)),
                         CWPP_EINVAL);
        assert_null(pcf);
        assert_true(strlen(err) > 0);
    }
}

/* Every compiled-in schema loads, and its fingerprint is the CRC of its canonical form. */
static void test_builtin_schemas_load(void **state)
{
    static const char *names[] = {"alert", "rejected_record"};
    size_t i;
    char   err[256];

    (void)state;
    for (i = 0; i < 2; i++) {
        cwpp_avro_type_t *t = cwpp_avro_type_builtin(names[i], err, sizeof(err));
        assert_non_null(t);
        assert_int_equal(cwpp_avro_type_fingerprint(t),
                         cwpp_avro_crc64(cwpp_avro_type_canonical(t),
                                         strlen(cwpp_avro_type_canonical(t))));
        cwpp_avro_type_destroy(t);
    }
    assert_null(cwpp_avro_type_builtin("nope", err, sizeof(err)));
}

static cwpp_avro_type_t *rejected_type(void)
{
    char              err[256];
    cwpp_avro_type_t *t = cwpp_avro_type_builtin("rejected_record", err, sizeof(err));

    assert_non_null(t);
    return t;
}

static void fill_rejected(avro_value_t *v)
{
    int64_t ts = 1700000000000LL;

    assert_int_equal(cwpp_avro_set_str(v, "service", "ingest"), 0);
    assert_int_equal(cwpp_avro_set_str(v, "reason_code", "invalid_json"), 0);
    assert_int_equal(cwpp_avro_set_str(v, "reason", "record is not valid JSON"), 0);
    assert_int_equal(cwpp_avro_set_str(v, "source_topic", "cwpp.alerts.raw"), 0);
    assert_int_equal(cwpp_avro_set_int(v, "source_partition", 3), 0);
    assert_int_equal(cwpp_avro_set_long(v, "source_offset", 12345), 0);
    assert_int_equal(cwpp_avro_set_opt_long(v, "source_timestamp_ms", &ts), 0);
    assert_int_equal(cwpp_avro_set_opt_bytes(v, "key", "k1", 2), 0);
    assert_int_equal(cwpp_avro_set_bytes(v, "value", "{not json\x00\xff", 12), 0);
    assert_int_equal(cwpp_avro_set_long(v, "rejected_at_ms", ts + 5), 0);
    assert_int_equal(cwpp_avro_set_opt_long(v, "value_length", NULL), 0);
    assert_int_equal(cwpp_avro_set_opt_str(v, "value_sha256", NULL), 0);
    assert_int_equal(cwpp_avro_set_opt_long(v, "key_length", NULL), 0);
}

/* Encoding writes C3 01, the little-endian fingerprint, then a datum that decodes back. */
static void test_roundtrip_and_header(void **state)
{
    cwpp_avro_type_t *t = rejected_type();
    avro_value_t      v, w;
    cwpp_buf_t        b = {0};
    uint64_t          fp = 0;
    int               i;
    const char       *s;
    const void       *p;
    size_t            len;
    int32_t           part;
    char              err[256];

    (void)state;
    assert_int_equal(cwpp_avro_value_new(t, &v), 0);
    assert_int_equal(cwpp_avro_value_new(t, &w), 0);
    fill_rejected(&v);
    assert_int_equal(cwpp_avro_encode(t, &v, &b, err, sizeof(err)), CWPP_OK);
    assert_true(b.len > CWPP_AVRO_HEADER_LEN);
    assert_int_equal(b.data[0], 0xC3);
    assert_int_equal(b.data[1], 0x01);
    for (i = 0; i < 8; i++)
        fp |= (uint64_t)b.data[2 + i] << (8 * i);
    assert_int_equal(fp, cwpp_avro_type_fingerprint(t));
    assert_int_equal(cwpp_avro_decode(t, b.data, b.len, &w, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_avro_get_str(&w, "reason", &s), 0);
    assert_string_equal(s, "record is not valid JSON");
    assert_int_equal(cwpp_avro_get_int(&w, "source_partition", &part), 0);
    assert_int_equal(part, 3);
    assert_int_equal(cwpp_avro_get_bytes(&w, "value", &p, &len), 0);
    assert_int_equal(len, 12);
    assert_memory_equal(p, "{not json\x00\xff", 12);
    avro_value_decref(&v);
    avro_value_decref(&w);
    cwpp_buf_free(&b);
    cwpp_avro_type_destroy(t);
}

/* Hostile bytes are refused with a reason, never read out of bounds (ASan watches). */
static void test_decoder_refuses_hostile_input(void **state)
{
    cwpp_avro_type_t *t = rejected_type();
    avro_value_t      v, w;
    cwpp_buf_t        b = {0};
    unsigned char    *m;
    size_t            i;
    char              err[256];

    (void)state;
    assert_int_equal(cwpp_avro_value_new(t, &v), 0);
    assert_int_equal(cwpp_avro_value_new(t, &w), 0);
    fill_rejected(&v);
    assert_int_equal(cwpp_avro_encode(t, &v, &b, err, sizeof(err)), CWPP_OK);
    m = malloc(b.len + 16);
    assert_non_null(m);

    /* every truncation */
    for (i = 0; i < b.len; i++) {
        memcpy(m, b.data, i);
        assert_int_equal(cwpp_avro_decode(t, m, i, &w, err, sizeof(err)), CWPP_EINVAL);
    }
    /* trailing byte */
    memcpy(m, b.data, b.len);
    m[b.len] = 0;
    assert_int_equal(cwpp_avro_decode(t, m, b.len + 1, &w, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "trailing"));
    /* wrong marker */
    memcpy(m, b.data, b.len);
    m[0] = 0xC4;
    assert_int_equal(cwpp_avro_decode(t, m, b.len, &w, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "marker"));
    /* another schema's fingerprint */
    memcpy(m, b.data, b.len);
    m[5] ^= 0x55;
    assert_int_equal(cwpp_avro_decode(t, m, b.len, &w, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "fingerprint"));
    /* a huge string length right after the header (service field) */
    memcpy(m, b.data, CWPP_AVRO_HEADER_LEN);
    memcpy(m + CWPP_AVRO_HEADER_LEN, "\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", 9);
    assert_int_equal(cwpp_avro_decode(t, m, CWPP_AVRO_HEADER_LEN + 9, &w, err, sizeof(err)),
                     CWPP_EINVAL);
    /* a varint longer than 10 bytes */
    memcpy(m + CWPP_AVRO_HEADER_LEN, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
    assert_int_equal(cwpp_avro_decode(t, m, CWPP_AVRO_HEADER_LEN + 12, &w, err, sizeof(err)),
                     CWPP_EINVAL);
    /* invalid UTF-8 in the first string */
    memcpy(m + CWPP_AVRO_HEADER_LEN, "\x04\xc3\x28", 3);
    assert_int_equal(cwpp_avro_decode(t, m, b.len, &w, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "UTF-8"));
    free(m);
    avro_value_decref(&v);
    avro_value_decref(&w);
    cwpp_buf_free(&b);
    cwpp_avro_type_destroy(t);
}

/* Unknown enum symbols and union branches are refused by the validator. */
static void test_validator_enum_union_bounds(void **state)
{
    const char   *js = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                       "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
                       "{\"name\":\"u\",\"type\":[\"null\",\"long\"]},"
                       "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}]}";
    char          err[256];
    cwpp_avro_type_t *t = cwpp_avro_type_new(js, strlen(js), err, sizeof(err));
    avro_schema_t s;

    (void)state;
    assert_non_null(t);
    s = cwpp_avro_type_schema(t);
    assert_int_equal(cwpp_avro_validate(s, "\x02\x02\x04\x00", 4, err, sizeof(err)), CWPP_OK);
    /* enum index 2 of 2 symbols */
    assert_int_equal(cwpp_avro_validate(s, "\x04\x00\x00", 3, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "enum"));
    /* union branch 2 of 2 */
    assert_int_equal(cwpp_avro_validate(s, "\x00\x04\x00", 3, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "union"));
    /* an array of a billion nulls costs no bytes: capped */
    assert_int_equal(cwpp_avro_validate(s, "\x00\x00\x80\xa8\xd6\xb9\x07\x00", 8, err,
                                        sizeof(err)), CWPP_EINVAL);
    cwpp_avro_type_destroy(t);
}

/* cwpp_avro_from_json: a document shaped like the schema fills a value that encodes and
 * decodes back to the same fields; wrong types are refused naming the field. */
static void test_from_json(void **state)
{
    char              err[256];
    cwpp_avro_type_t *t = cwpp_avro_type_builtin("handled_event", err, sizeof(err));
    avro_value_t      v, w, f, x;
    cwpp_buf_t        b = {0};
    json_error_t      jerr;
    json_t           *doc;
    const char       *s;
    size_t            n;
    int64_t           l;

    (void)state;
    assert_non_null(t);
    assert_int_equal(cwpp_avro_value_new(t, &v), 0);
    assert_int_equal(cwpp_avro_value_new(t, &w), 0);
    doc = json_loads("{\"seq\": 7, \"event_id\": \"ev-1\", \"account_id\": \"a\", "
                     "\"name\": \"n\", \"level\": \"high\", \"owner\": \"olga\", "
                     "\"stages\": [\"TA0001\", \"TA0002\"], \"sources\": [], "
                     "\"alert_count\": 2, \"occurrences\": 3, \"first_seen_ms\": 1, "
                     "\"last_seen_ms\": 2, \"handled_at_ms\": 3, \"urgency\": \"high\", "
                     "\"affected_assets\": [{\"asset_id\": \"h\", \"name\": null, "
                     "\"ips\": [\"10.0.0.1\"], \"alerts\": 2}], \"policies\": [], "
                     "\"published_at_ms\": 4}", 0, &jerr);
    assert_non_null(doc);
    assert_int_equal(cwpp_avro_from_json(&v, doc, err, sizeof(err)), 0);
    assert_int_equal(cwpp_avro_encode(t, &v, &b, err, sizeof(err)), 0);
    assert_int_equal(cwpp_avro_decode(t, b.data, b.len, &w, err, sizeof(err)), 0);
    assert_int_equal(cwpp_avro_get_long(&w, "seq", &l), 0);
    assert_int_equal(l, 7);
    assert_int_equal(cwpp_avro_get_opt_str(&w, "owner", &s), 0);
    assert_string_equal(s, "olga");
    assert_int_equal(cwpp_avro_get_opt_str(&w, "predecessor", &s), 0);
    assert_null(s); /* missing: null */
    assert_int_equal(avro_value_get_by_name(&w, "stages", &f, NULL), 0);
    assert_int_equal(avro_value_get_size(&f, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(avro_value_get_by_name(&w, "affected_assets", &f, NULL), 0);
    assert_int_equal(avro_value_get_by_index(&f, 0, &x, NULL), 0);
    assert_int_equal(cwpp_avro_get_str(&x, "asset_id", &s), 0);
    assert_string_equal(s, "h");
    assert_int_equal(avro_value_get_by_name(&w, "alerts", &f, NULL), 0);
    assert_int_equal(avro_value_get_size(&f, &n), 0);
    assert_int_equal(n, 0); /* missing list: empty */
    {
        int tr = 1;

        assert_int_equal(avro_value_get_by_name(&w, "lists_truncated", &f, NULL), 0);
        assert_int_equal(avro_value_get_boolean(&f, &tr), 0);
        assert_int_equal(tr, 0); /* missing boolean: false */
    }
    /* wrong types and symbols are refused with the field */
    json_object_set_new(doc, "level", json_string("severe"));
    assert_int_equal(cwpp_avro_from_json(&v, doc, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "level"));
    json_object_set_new(doc, "level", json_string("low"));
    json_object_set_new(doc, "alert_count", json_string("2"));
    assert_int_equal(cwpp_avro_from_json(&v, doc, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "alert_count"));
    json_object_set_new(doc, "alert_count", json_integer(4294967296LL));
    assert_int_equal(cwpp_avro_from_json(&v, doc, err, sizeof(err)), CWPP_EINVAL);
    json_decref(doc);
    cwpp_buf_free(&b);
    avro_value_decref(&v);
    avro_value_decref(&w);
    cwpp_avro_type_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vectors),
        cmocka_unit_test(test_canonical_fullnames_of_references),
        cmocka_unit_test(test_canonical_rejects_garbage),
        cmocka_unit_test(test_builtin_schemas_load),
        cmocka_unit_test(test_roundtrip_and_header),
        cmocka_unit_test(test_decoder_refuses_hostile_input),
        cmocka_unit_test(test_validator_enum_union_bounds),
        cmocka_unit_test(test_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
