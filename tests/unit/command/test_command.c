/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_command.c: the pure parts of libs/command (docs/commands.md): decoding a Command
 * record, the checks every command passes before a database is asked (issue time,
 * payload, actor, staleness, a known type, in that order), the dispatch-table lookup, the
 * refusal of an unknown type (naming the known ones), and the CommandResult encoding.
 * Table-driven where cases repeat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cwpp_command.h"
#include "cwpp_util.h"

#define NOW    1780000000000LL /* a fixed "now" */
#define MAXAGE 600000LL

static int h_a(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
               cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    (void)svc, (void)c, (void)rp, (void)out, (void)errstr, (void)errstr_size;
    return CWPP_OK;
}

static int h_b(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
               cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    (void)svc, (void)c, (void)rp, (void)out, (void)errstr, (void)errstr_size;
    return CWPP_OK;
}

static const cwpp_command_def_t TABLE[] = {
    {"demo.change", h_a, CWPP_COMMAND_ACCOUNT},
    {"demo.users_add", h_b, CWPP_COMMAND_ADMIN},
    {"demo.export", h_a, CWPP_COMMAND_USER},
};
#define NTABLE (sizeof(TABLE) / sizeof(TABLE[0]))

/* Encodes a Command record from its fields. */
static void encode_command(const cwpp_avro_type_t *t, cwpp_buf_t *buf, const char *id,
                           const char *service, const char *type, const char *actor,
                           int64_t issued, const char *payload)
{
    avro_value_t v;
    char         errstr[256];

    assert_int_equal(cwpp_avro_value_new(t, &v), CWPP_OK);
    assert_int_equal(cwpp_avro_set_str(&v, "command_id", id), CWPP_OK);
    assert_int_equal(cwpp_avro_set_str(&v, "service", service), CWPP_OK);
    assert_int_equal(cwpp_avro_set_str(&v, "type", type), CWPP_OK);
    assert_int_equal(cwpp_avro_set_str(&v, "actor", actor), CWPP_OK);
    assert_int_equal(cwpp_avro_set_long(&v, "issued_at_ms", issued), CWPP_OK);
    assert_int_equal(cwpp_avro_set_str(&v, "payload_json", payload), CWPP_OK);
    cwpp_buf_reset(buf);
    assert_int_equal(cwpp_avro_encode(t, &v, buf, errstr, sizeof(errstr)), CWPP_OK);
    avro_value_decref(&v);
}

/* 1. A Command decodes into its fields; a payload that is not a JSON object is NULL; an
 * empty or too long id, and bytes that are no Command, are refused with a reason. */
static void test_decode(void **state)
{
    static const struct {
        const char *id, *payload;
        size_t      max_id;
        int         ok, has_payload;
        const char *why;
    } cases[] = {
        {"cmd-1", "{\"alert_id\": \"al-1\"}", 200, 1, 1, NULL},
        {"cmd-2", "[1, 2]", 200, 1, 0, NULL},                 /* not an object */
        {"cmd-3", "{not json", 200, 1, 0, NULL},              /* not JSON */
        {"cmd-4", "{\"a\": 1, \"a\": 2}", 200, 1, 0, NULL},   /* duplicate keys */
        {"", "{}", 200, 0, 0, "empty or longer than 200"},
        {"cmd-0123456789", "{}", 8, 0, 0, "empty or longer than 8"},
    };
    cwpp_avro_type_t *t;
    avro_value_t      v;
    cwpp_buf_t        buf = {0};
    char              errstr[256], why[300];
    size_t            i;

    (void)state;
    t = cwpp_avro_type_builtin("command", errstr, sizeof(errstr));
    assert_non_null(t);
    assert_int_equal(cwpp_avro_value_new(t, &v), CWPP_OK);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cwpp_command_t c;

        encode_command(t, &buf, cases[i].id, "whitelist", "whitelist.add_alert", "ana", NOW,
                       cases[i].payload);
        why[0] = '\0';
        assert_int_equal(cwpp_command_decode(t, &v, buf.data, buf.len, cases[i].max_id, &c, why,
                                             sizeof(why)),
                         cases[i].ok ? 0 : -1);
        if (!cases[i].ok) {
            assert_non_null(strstr(why, cases[i].why));
            continue;
        }
        assert_string_equal(c.id, cases[i].id);
        assert_string_equal(c.service, "whitelist");
        assert_string_equal(c.type, "whitelist.add_alert");
        assert_string_equal(c.actor, "ana");
        assert_int_equal(c.issued_at_ms, NOW);
        assert_int_equal(c.payload != NULL, cases[i].has_payload);
        json_decref(c.payload);
    }
    {
        cwpp_command_t c;

        assert_int_equal(cwpp_command_decode(t, &v, "\xc3\x01garbage", 9, 200, &c, why,
                                             sizeof(why)),
                         -1);
        assert_true(why[0] != '\0');
    }
    avro_value_decref(&v);
    cwpp_avro_type_destroy(t);
    cwpp_buf_free(&buf);
}

/* 2. The checks before the database, in order: issue time (not <= 0, not more than 5 min
 * ahead), payload an object, an actor, not stale, a known type. Each refusal is one
 * sentence naming the problem; an unknown type lists the known ones. */
static void test_precheck(void **state)
{
    json_t *obj = json_object();
    static const struct {
        const char *type, *actor;
        int64_t     issued;
        int         payload;
        const char *want_type; /* the entry found, or NULL: refused with why */
        const char *why;
    } cases[] = {
        {"demo.change", "ana", NOW - 1000, 1, "demo.change", NULL},
        {"demo.users_add", "ana", NOW, 1, "demo.users_add", NULL},
        {"demo.export", "ana", NOW + 299999, 1, "demo.export", NULL},   /* clock skew */
        {"demo.change", "ana", NOW - MAXAGE, 1, "demo.change", NULL},   /* at the limit */
        {"demo.change", "ana", 0, 1, NULL, "issue time (0 ms)"},
        {"demo.change", "ana", -5, 1, NULL, "check the sender's clock"},
        {"demo.change", "ana", NOW + 300001, 1, NULL, "next 5 minutes"},
        {"demo.change", "ana", 0, 0, NULL, "issue time"},               /* time first */
        {"demo.change", "ana", NOW, 0, NULL, "payload is not a JSON object"},
        {"demo.change", "", NOW, 1, NULL, "names no actor"},
        {"demo.change", "a123456789012345678901234567890123456789012345678901234567890123",
         NOW, 1, "demo.change", NULL},                                   /* 64 bytes */
        {"demo.change", "a1234567890123456789012345678901234567890123456789012345678901234",
         NOW, 1, NULL, "actor is 65 bytes, longer than a user name can be (64 bytes)"},
        {"demo.change", "", NOW, 0, NULL, "payload is not a JSON object"},
        {"demo.change", "ana", NOW - MAXAGE - 1000, 1, NULL,
         "Stale command: issued 601 s ago, longer than demo.max.age allows (600 s)"},
        {"demo.explode", "ana", NOW - MAXAGE - 1000, 1, NULL, "Stale command"},
        {"demo.explode", "ana", NOW, 1, NULL,
         "Unknown demo command \"demo.explode\" (demo.change, demo.users_add, demo.export)."},
        {"", "ana", NOW, 1, NULL, "Unknown demo command \"\""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cwpp_command_t            c = {"cmd-1", "demo", cases[i].type, cases[i].actor,
                                       cases[i].issued, cases[i].payload ? obj : NULL};
        char                      why[CWPP_COMMAND_MSG_MAX] = "";
        const cwpp_command_def_t *d;

        d = cwpp_command_precheck(&c, "demo", TABLE, NTABLE, NOW, MAXAGE, "demo.max.age", why,
                                  sizeof(why));
        if (cases[i].want_type != NULL) {
            assert_non_null(d);
            assert_string_equal(d->type, cases[i].want_type);
        } else {
            assert_null(d);
            if (strstr(why, cases[i].why) == NULL)
                fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, cases[i].why);
            assert_int_equal(why[strlen(why) - 1], '.'); /* a sentence */
        }
    }
    json_decref(obj);
}

/* 3. An unknown type of 60+ multi-byte characters is cut without leaving half a
 * character: the refusal stays valid UTF-8. */
static void test_unknown_type_is_cut_cleanly(void **state)
{
    char           type[400] = "x", why[CWPP_COMMAND_MSG_MAX];
    json_t        *obj = json_object();
    cwpp_command_t c = {"cmd-1", "demo", type, "ana", NOW, obj};
    size_t         i;

    (void)state;
    for (i = 0; i < 100; i++)
        strcat(type, "\xe2\x82\xac"); /* the euro sign, 3 bytes */
    assert_null(cwpp_command_precheck(&c, "demo", TABLE, NTABLE, NOW, MAXAGE, "k", why,
                                      sizeof(why)));
    assert_true(cwpp_utf8_valid(why, strlen(why)));
    json_decref(obj);
}

/* 4. The table lookup: exact names only; NULL for unknown ones and for no name. */
static void test_find(void **state)
{
    (void)state;
    assert_ptr_equal(cwpp_command_find(TABLE, NTABLE, "demo.change"), &TABLE[0]);
    assert_ptr_equal(cwpp_command_find(TABLE, NTABLE, "demo.export"), &TABLE[2]);
    assert_int_equal(cwpp_command_find(TABLE, NTABLE, "demo.users_add")->who,
                     CWPP_COMMAND_ADMIN);
    assert_null(cwpp_command_find(TABLE, NTABLE, "demo.chang"));
    assert_null(cwpp_command_find(TABLE, NTABLE, "demo.change "));
    assert_null(cwpp_command_find(TABLE, NTABLE, "DEMO.CHANGE"));
    assert_null(cwpp_command_find(TABLE, NTABLE, NULL));
    assert_null(cwpp_command_find(TABLE, 0, "demo.change"));
}

/* 5. cwpp_command_refuse makes an error answer and returns 0 (a handler returns it). */
static void test_refuse(void **state)
{
    cwpp_command_reply_t rp = {"ok", "", NULL};

    (void)state;
    assert_int_equal(cwpp_command_refuse(&rp, "There is no alert %s.", "al-1"), CWPP_OK);
    assert_string_equal(rp.status, "error");
    assert_string_equal(rp.msg, "There is no alert al-1.");
}

/* 6. A CommandResult encodes and decodes back with the command's id, type and actor. */
static void test_result(void **state)
{
    cwpp_avro_type_t *t;
    avro_value_t      v;
    cwpp_buf_t        buf = {0};
    cwpp_command_t    c = {"cmd-9", "exporter", "export.create", "ana", NOW, NULL};
    const char       *s;
    char              errstr[256];

    (void)state;
    t = cwpp_avro_type_builtin("command_result", errstr, sizeof(errstr));
    assert_non_null(t);
    assert_int_equal(cwpp_avro_value_new(t, &v), CWPP_OK);
    assert_int_equal(cwpp_command_result(t, &v, &buf, "exporter", &c, "error", "No.", "{}",
                                         errstr, sizeof(errstr)),
                     CWPP_OK);
    assert_int_equal(cwpp_avro_decode(t, buf.data, buf.len, &v, errstr, sizeof(errstr)),
                     CWPP_OK);
    assert_int_equal(cwpp_avro_get_str(&v, "command_id", &s), CWPP_OK);
    assert_string_equal(s, "cmd-9");
    assert_int_equal(cwpp_avro_get_enum(&v, "status", &s), CWPP_OK);
    assert_string_equal(s, "error");
    assert_int_equal(cwpp_avro_get_str(&v, "message", &s), CWPP_OK);
    assert_string_equal(s, "No.");
    /* a status outside the schema's enum is refused */
    assert_int_not_equal(cwpp_command_result(t, &v, &buf, "exporter", &c, "maybe", "x", "{}",
                                             errstr, sizeof(errstr)),
                         CWPP_OK);
    avro_value_decref(&v);
    cwpp_avro_type_destroy(t);
    cwpp_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_precheck),
        cmocka_unit_test(test_unknown_type_is_cut_cleanly),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_refuse),
        cmocka_unit_test(test_result),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
