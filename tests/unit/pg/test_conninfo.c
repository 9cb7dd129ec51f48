/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_conninfo: the parameters every database connection is opened with
 * (cwpp_pg_conninfo): the tuning before the DSN so the DSN may override it, pg.sslmode and
 * pg.sslrootcert added to every connection, a DSN contradicting either refused as a
 * configuration error naming both, an unknown sslmode refused, a malformed DSN refused.
 * No server is needed: nothing connects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cwpp_pg.h"

/* The value of key in ci, or NULL; asserts it appears at most once. */
static const char *val(const cwpp_pg_conninfo_t *ci, const char *key)
{
    const char *v = NULL;

    for (int i = 0; ci->keys[i] != NULL; i++)
        if (strcmp(ci->keys[i], key) == 0) {
            assert_null(v);
            v = ci->vals[i];
        }
    return v;
}

static int pos(const cwpp_pg_conninfo_t *ci, const char *key)
{
    for (int i = 0; ci->keys[i] != NULL; i++)
        if (strcmp(ci->keys[i], key) == 0)
            return i;
    return -1;
}

static void tls(const char *mode, const char *ca)
{
    cwpp_pg_tuning_t t = {5, 60000, 120000, 30, 10, 3, 30000, mode, ca};

    cwpp_pg_set_tuning(&t);
}

/* Empty TLS settings add nothing: libpq's default (PGSSLMODE, else prefer) stands; the
 * tuning comes before dbname (the DSN may override it), application_name after. */
static void test_defaults_add_no_tls(void **state)
{
    cwpp_pg_conninfo_t ci;
    char               err[256];

    (void)state;
    tls("", NULL);
    assert_int_equal(cwpp_pg_conninfo(&ci, "host=h dbname=cwpp", "svc", err, sizeof(err)), 0);
    assert_null(val(&ci, "sslmode"));
    assert_null(val(&ci, "sslrootcert"));
    assert_string_equal(val(&ci, "dbname"), "host=h dbname=cwpp");
    assert_string_equal(val(&ci, "application_name"), "svc");
    assert_string_equal(val(&ci, "connect_timeout"), "5");
    assert_string_equal(val(&ci, "keepalives"), "1");
    assert_true(pos(&ci, "connect_timeout") < pos(&ci, "dbname"));
    assert_true(pos(&ci, "options") < pos(&ci, "dbname"));
    assert_true(pos(&ci, "dbname") < pos(&ci, "application_name"));
    assert_string_equal(val(&ci, "options"),
                        "-c statement_timeout=60000 -c idle_in_transaction_session_timeout=120000");
}

/* pg.sslmode and pg.sslrootcert reach every connection, whatever its DSN (string or URI). */
static void test_tls_settings_added(void **state)
{
    static const char *const dsns[] = {"host=h dbname=cwpp user=u", "postgresql://u@h/cwpp",
                                       ""};
    cwpp_pg_conninfo_t       ci;
    char                     err[256];

    (void)state;
    tls("verify-full", "/etc/cwpp/pg/ca.crt");
    for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
        assert_int_equal(cwpp_pg_conninfo(&ci, dsns[i], NULL, err, sizeof(err)), 0);
        assert_string_equal(val(&ci, "sslmode"), "verify-full");
        assert_string_equal(val(&ci, "sslrootcert"), "/etc/cwpp/pg/ca.crt");
        assert_string_equal(val(&ci, "application_name"), "cwpp");
        assert_true(pos(&ci, "sslmode") < pos(&ci, "dbname"));
    }
    tls("require", "");
    assert_int_equal(cwpp_pg_conninfo(&ci, "dbname=cwpp", "x", err, sizeof(err)), 0);
    assert_string_equal(val(&ci, "sslmode"), "require");
    assert_null(val(&ci, "sslrootcert"));
}

/* The strings are copied: the configuration may be freed after cwpp_pg_set_tuning. */
static void test_tls_settings_copied(void **state)
{
    cwpp_pg_conninfo_t ci;
    char               mode[16] = "verify-ca", ca[32] = "/ca.pem", err[256];

    (void)state;
    tls(mode, ca);
    memset(mode, 'x', sizeof(mode) - 1);
    memset(ca, 'y', sizeof(ca) - 1);
    assert_int_equal(cwpp_pg_conninfo(&ci, "dbname=cwpp", "x", err, sizeof(err)), 0);
    assert_string_equal(val(&ci, "sslmode"), "verify-ca");
    assert_string_equal(val(&ci, "sslrootcert"), "/ca.pem");
}

/* A DSN naming the same value agrees; naming another is refused, naming both sides; with
 * nothing configured the DSN's own sslmode stands untouched. */
static void test_dsn_conflict(void **state)
{
    static const struct {
        const char *mode, *ca, *dsn;
        int         rc;
        const char *words; /* in errstr when refused */
    } cases[] = {
        {"verify-full", "", "host=h sslmode=verify-full", 0, NULL},
        {"verify-full", "", "host=h sslmode=disable", CWPP_ECONFIG,
         "pg.dsn says sslmode=disable but pg.sslmode is \"verify-full\""},
        {"require", "", "postgresql://h/cwpp?sslmode=prefer", CWPP_ECONFIG,
         "sslmode=prefer but pg.sslmode"},
        {"", "/a.crt", "host=h sslrootcert=/b.crt", CWPP_ECONFIG,
         "sslrootcert=/b.crt but pg.sslrootcert is \"/a.crt\""},
        {"", "/a.crt", "host=h sslrootcert=/a.crt", 0, NULL},
        {"", "", "host=h sslmode=disable", 0, NULL},
        {"verify-full", "/a.crt", "host=h user=u", 0, NULL},
    };
    cwpp_pg_conninfo_t ci;
    char               err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        tls(cases[i].mode, cases[i].ca);
        assert_int_equal(cwpp_pg_conninfo(&ci, cases[i].dsn, "x", err, sizeof(err)),
                         cases[i].rc);
        if (cases[i].words != NULL && strstr(err, cases[i].words) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].words);
    }
    tls("", "");
    assert_int_equal(cwpp_pg_conninfo(&ci, "host=h sslmode=disable", "x", err, sizeof(err)), 0);
    assert_null(val(&ci, "sslmode")); /* only inside the DSN, which libpq expands */
}

/* An sslmode libpq does not know, and a malformed DSN, are configuration errors. */
static void test_refused(void **state)
{
    cwpp_pg_conninfo_t ci;
    char               err[256];

    (void)state;
    tls("verify_full", "");
    assert_int_equal(cwpp_pg_conninfo(&ci, "host=h", "x", err, sizeof(err)), CWPP_ECONFIG);
    assert_non_null(strstr(err, "pg.sslmode \"verify_full\""));
    tls("", "");
    assert_int_equal(cwpp_pg_conninfo(&ci, "host=h nonsense", "x", err, sizeof(err)),
                     CWPP_ECONFIG);
    assert_non_null(strstr(err, "pg.dsn is malformed"));
    assert_int_equal(cwpp_pg_conninfo(&ci, "host=h nosuchkey=1", "x", err, sizeof(err)),
                     CWPP_ECONFIG);
}

/* A tuning of zeros leaves libpq's defaults: only keepalives, TLS, dbname, name. */
static void test_zero_tuning(void **state)
{
    cwpp_pg_tuning_t   t = {0};
    cwpp_pg_conninfo_t ci;
    char               err[256];

    (void)state;
    t.sslmode = "require";
    cwpp_pg_set_tuning(&t);
    assert_int_equal(cwpp_pg_conninfo(&ci, "dbname=x", "n", err, sizeof(err)), 0);
    assert_null(val(&ci, "connect_timeout"));
    assert_null(val(&ci, "options"));
    assert_string_equal(ci.keys[0], "keepalives");
    assert_string_equal(ci.keys[1], "sslmode");
    assert_string_equal(ci.keys[2], "dbname");
    assert_string_equal(ci.keys[3], "application_name");
    assert_null(ci.keys[4]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_add_no_tls), cmocka_unit_test(test_tls_settings_added),
        cmocka_unit_test(test_tls_settings_copied), cmocka_unit_test(test_dsn_conflict),
        cmocka_unit_test(test_refused),             cmocka_unit_test(test_zero_tuning),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
