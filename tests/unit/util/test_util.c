/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_util: RFC 3339 parsing (the contract's occurred_at), UTF-8 validation (invalid
 * UTF-8 is rejected, docs/architecture.md "Guarantees and where each is kept"), the byte
 * buffer and fault points.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "cwpp_util.h"

static const struct {
    const char *s;
    int         lenient;
    int         ok;
    int64_t     ms;
} times[] = {
    {"1970-01-01T00:00:00Z", 0, 1, 0},
    {"2026-11-28T07:55:38Z", 0, 1, 1795852538000LL},
    {"2026-11-28T07:55:38.123Z", 0, 1, 1795852538123LL},
    {"2026-11-28t07:55:38.1z", 0, 1, 1795852538100LL},
    {"2026-11-28T15:55:38.123456789+08:00", 0, 1, 1795852538123LL},
    {"2026-11-28T02:55:38-05:00", 0, 1, 1795852538000LL},
    {"2024-02-29T00:00:00Z", 0, 1, 1709164800000LL},
    {"2016-12-31T23:59:60Z", 0, 1, 1483228799000LL},
    {"2026-11-28T07:55:38.123+0000", 1, 1, 1795852538123LL},
    {"2026-11-28T07:55:38.123+0000", 0, 0, 0},
    {"2023-02-29T00:00:00Z", 0, 0, 0},
    {"2026-13-01T00:00:00Z", 0, 0, 0},
    {"2026-11-28T24:00:00Z", 0, 0, 0},
    {"2026-11-28 07:55:38Z", 0, 0, 0},
    {"2026-11-28T07:55:38", 0, 0, 0},
    {"2026-11-28T07:55:38.Z", 0, 0, 0},
    {"2026-11-28T07:55:38.1234567890Z", 0, 0, 0},
    {"2026-11-28T07:55:38Zjunk", 0, 0, 0},
    {"yesterday", 0, 0, 0},
    {"", 0, 0, 0},
};

static void test_rfc3339(void **state)
{
    size_t  i;
    int64_t ms;

    (void)state;
    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int rc = cwpp_parse_time_ms(times[i].s, times[i].lenient, &ms);
        if (times[i].ok) {
            assert_int_equal(rc, CWPP_OK);
            assert_int_equal(ms, times[i].ms);
        } else {
            assert_int_equal(rc, CWPP_EINVAL);
        }
    }
}

static void test_format_time(void **state)
{
    char buf[32];

    (void)state;
    assert_string_equal(cwpp_format_time_ms(1795852538123LL, buf, sizeof(buf)),
                        "2026-11-28T07:55:38.123Z");
}

static const struct {
    const char *s;
    size_t      len;
    int         ok;
} utf8[] = {
    {"plain ascii", 11, 1},
    {"caf\xc3\xa9", 5, 1},
    {"\xe6\x97\xa5\xe6\x9c\xac", 6, 1},
    {"\xf0\x9f\x98\x80", 4, 1},
    {"\xc3\x28", 2, 0},             /* bad continuation */
    {"\xc0\xaf", 2, 0},             /* overlong '/' */
    {"\xed\xa0\x80", 3, 0},         /* surrogate */
    {"\xf4\x90\x80\x80", 4, 0},     /* above U+10FFFF */
    {"\xe6\x97", 2, 0},             /* truncated */
    {"a\x00" "b", 3, 0},            /* NUL */
    {"\xff", 1, 0},
};

static void test_utf8(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
        assert_int_equal(cwpp_utf8_valid(utf8[i].s, utf8[i].len), utf8[i].ok);
}

static void test_buf_and_faults(void **state)
{
    cwpp_buf_t     b = {0};
    unsigned char *p;
    size_t         len;
    int            i;

    (void)state;
    for (i = 0; i < 1000; i++)
        assert_int_equal(cwpp_buf_append(&b, "abc", 3), CWPP_OK);
    assert_int_equal(b.len, 3000);
    /* the armed fault fails exactly the Nth growth, then appends work again */
    cwpp_buf_reset(&b);
    cwpp_buf_free(&b);
    cwpp_fault_arm("buf_alloc", 1);
    assert_int_equal(cwpp_buf_append(&b, "x", 1), CWPP_ENOMEM);
    assert_int_equal(b.len, 0);
    assert_int_equal(cwpp_buf_append(&b, "x", 1), CWPP_OK);
    p = cwpp_buf_detach(&b, &len);
    assert_int_equal(len, 1);
    assert_null(b.data);
    free(p);
    cwpp_fault_arm("nth", 3);
    assert_false(cwpp_fault_hit("nth"));
    assert_false(cwpp_fault_hit("nth"));
    assert_true(cwpp_fault_hit("nth"));
    assert_false(cwpp_fault_hit("nth"));
    /* a point armed twice fails at each count; lists come from CWPP_FAULTS */
    assert_int_equal(cwpp_fault_arm_list("twice:1,twice:3,other:2"), 3);
    assert_true(cwpp_fault_hit("twice"));
    assert_false(cwpp_fault_hit("twice"));
    assert_true(cwpp_fault_hit("twice"));
    assert_false(cwpp_fault_hit("twice"));
    assert_false(cwpp_fault_hit("other"));
    assert_true(cwpp_fault_hit("other"));
    assert_int_equal(cwpp_fault_arm_list("no-count"), -1);
    assert_int_equal(cwpp_fault_arm_list("zero:0"), -1);
    cwpp_fault_disarm_all();
}

/* JSON strings written into a buffer read back (by jansson) as exactly the input, for
 * every ASCII byte and UTF-8 text; integers, hex and the C-string terminator. */
static void test_buf_json(void **state)
{
    cwpp_buf_t   b = {0};
    char         in[160];
    json_t      *v;
    json_error_t e;
    int          i, n = 0;

    (void)state;
    for (i = 1; i < 128; i++)
        in[n++] = (char)i;
    memcpy(in + n, "\xc3\xa9\xe2\x82\xac", 5); /* é€ */
    in[n + 5] = '\0';
    assert_int_equal(cwpp_buf_append(&b, "[", 1), CWPP_OK);
    assert_int_equal(cwpp_buf_json_str(&b, in), CWPP_OK);
    assert_int_equal(cwpp_buf_append(&b, ",", 1), CWPP_OK);
    assert_int_equal(cwpp_buf_json_str(&b, NULL), CWPP_OK);
    assert_int_equal(cwpp_buf_append(&b, ",", 1), CWPP_OK);
    assert_int_equal(cwpp_buf_i64(&b, INT64_MIN), CWPP_OK);
    assert_int_equal(cwpp_buf_append(&b, ",\"", 2), CWPP_OK);
    assert_int_equal(cwpp_buf_hex(&b, "\x00\xff\x10", 3), CWPP_OK);
    assert_int_equal(cwpp_buf_append(&b, "\"]", 2), CWPP_OK);
    assert_int_equal(cwpp_buf_cstr(&b), CWPP_OK);
    assert_int_equal(strlen((char *)b.data), b.len); /* the NUL is not counted */
    v = json_loads((char *)b.data, 0, &e);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_array_get(v, 0)), in);
    assert_true(json_is_null(json_array_get(v, 1)));
    assert_true(json_integer_value(json_array_get(v, 2)) == INT64_MIN);
    assert_string_equal(json_string_value(json_array_get(v, 3)), "00ff10");
    json_decref(v);
    /* control characters are escaped, never written raw */
    for (i = 0; i < (int)b.len; i++)
        assert_true(b.data[i] >= 0x20);
    cwpp_buf_reset(&b);
    cwpp_fault_arm("buf_alloc", 1);
    cwpp_buf_free(&b);
    assert_int_equal(cwpp_buf_json_str(&b, "x"), CWPP_ENOMEM);
    assert_int_equal(b.len, 0);
    cwpp_fault_disarm_all();
    cwpp_buf_free(&b);
}

/* A text cut mid-character becomes valid UTF-8 again; valid text is left alone. */
static void test_utf8_sanitize(void **state)
{
    char cut[] = "price \xe2\x82\xac 5 \xe2\x82"; /* "€" then a cut "€" */
    char bad[] = "a\xff" "b\xc0\x80" "c";          /* invalid and overlong */
    char ok[] = "caf\xc3\xa9 " "\xf0\x9f\x98\x80";

    (void)state;
    assert_int_equal(cwpp_utf8_sanitize(cut), 2);
    assert_string_equal(cut, "price \xe2\x82\xac 5 ??");
    assert_int_equal(cwpp_utf8_sanitize(bad), 3);
    assert_string_equal(bad, "a?b??c");
    assert_int_equal(cwpp_utf8_sanitize(ok), 0);
    assert_string_equal(ok, "caf\xc3\xa9 " "\xf0\x9f\x98\x80");
    assert_true(cwpp_utf8_valid(cut, strlen(cut)) && cwpp_utf8_valid(bad, strlen(bad)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_sanitize),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_buf_and_faults),
        cmocka_unit_test(test_buf_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
