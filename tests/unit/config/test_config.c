/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config: docs/style.md convention 5 and the operability bar: defaults, then the file,
 * then the environment; kafka.* pass-through; bad configuration names the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cwpp_config.h"
#include "cwpp_util.h"

typedef struct tconf {
    char   *brokers;
    int64_t port;
    int     flag;
    char   *dsn;
} tconf_t;

static const cwpp_conf_prop_t props[] = {
    {"kafka.brokers", CWPP_CONF_STR, offsetof(tconf_t, brokers), "127.0.0.1:9092", 0, 0, 0, "b"},
    {"http.port", CWPP_CONF_INT, offsetof(tconf_t, port), "8081", -1, 65535, 0, "p"},
    {"feature.flag", CWPP_CONF_BOOL, offsetof(tconf_t, flag), "false", 0, 0, 0, "f"},
    {"pg.dsn", CWPP_CONF_STR, offsetof(tconf_t, dsn), "", 0, 0, CWPP_CONF_SECRET, "d"},
};
#define NPROPS (sizeof(props) / sizeof(props[0]))

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/cwpp-test-config-XXXXXX");
    int   fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");

    fputs(text, fp);
    fclose(fp);
    return path;
}

static void clear_env(void)
{
    unsetenv("CWPP_KAFKA_BROKERS");
    unsetenv("CWPP_HTTP_PORT");
    unsetenv("CWPP_FEATURE_FLAG");
}

static void test_defaults(void **state)
{
    tconf_t       c = {0};
    cwpp_kvlist_t kv = {0};
    char          err[256];

    (void)state;
    clear_env();
    assert_int_equal(cwpp_conf_load(props, NPROPS, &c, NULL, &kv, err, sizeof(err)), CWPP_OK);
    assert_string_equal(c.brokers, "127.0.0.1:9092");
    assert_int_equal(c.port, 8081);
    assert_int_equal(c.flag, 0);
    cwpp_conf_free(props, NPROPS, &c);
    cwpp_kvlist_free(&kv);
}

/* File overrides defaults, environment overrides the file; kafka.X passes through. */
static void test_file_env_precedence_and_passthrough(void **state)
{
    tconf_t       c = {0};
    cwpp_kvlist_t kv = {0};
    char          err[256];
    char         *path = write_file("# comment\n\nkafka.brokers = file:9092\nhttp.port=9000\n"
                                    "feature.flag = yes\nkafka.socket.timeout.ms = \"1234\"\n");

    (void)state;
    clear_env();
    setenv("CWPP_HTTP_PORT", "9100", 1);
    assert_int_equal(cwpp_conf_load(props, NPROPS, &c, path, &kv, err, sizeof(err)), CWPP_OK);
    assert_string_equal(c.brokers, "file:9092");
    assert_int_equal(c.port, 9100);
    assert_int_equal(c.flag, 1);
    assert_int_equal(kv.n, 1);
    assert_string_equal(kv.items[0].key, "socket.timeout.ms");
    assert_string_equal(kv.items[0].value, "1234");
    cwpp_conf_free(props, NPROPS, &c);
    cwpp_kvlist_free(&kv);
    unlink(path);
    free(path);
    clear_env();
}

/* The broker credentials' own environment names override the file's kafka.* keys, and
 * --print-config (cwpp_conf_dump) never shows the password. */
static void test_kafka_credential_env(void **state)
{
    tconf_t       c = {0};
    cwpp_kvlist_t kv = {0};
    char          err[256], *dump = NULL;
    size_t        i, dlen = 0, found = 0;
    FILE         *fp;
    char         *path = write_file("kafka.sasl.username = from-file\n");

    (void)state;
    clear_env();
    setenv("CWPP_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", 1);
    setenv("CWPP_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", 1);
    setenv("CWPP_KAFKA_SASL_USERNAME", "cwpp-ingest", 1);
    setenv("CWPP_KAFKA_SASL_PASSWORD", "s3cret-pw", 1);
    setenv("CWPP_KAFKA_SSL_CA_LOCATION", "/ca.pem", 1);
    assert_int_equal(cwpp_conf_load(props, NPROPS, &c, path, &kv, err, sizeof(err)), CWPP_OK);
    for (i = 0; i < kv.n; i++) {
        const char *k = kv.items[i].key, *v = kv.items[i].value;

        found += !strcmp(k, "security.protocol") && !strcmp(v, "SASL_PLAINTEXT");
        found += !strcmp(k, "sasl.mechanisms") && !strcmp(v, "SCRAM-SHA-512");
        found += !strcmp(k, "sasl.username") && !strcmp(v, "cwpp-ingest");
        found += !strcmp(k, "sasl.password") && !strcmp(v, "s3cret-pw");
        found += !strcmp(k, "ssl.ca.location") && !strcmp(v, "/ca.pem");
    }
    assert_int_equal(kv.n, 5);
    assert_int_equal(found, 5);
    fp = open_memstream(&dump, &dlen);
    assert_non_null(fp);
    cwpp_conf_dump(fp, props, NPROPS, &c);
    fclose(fp);
    assert_null(strstr(dump, "s3cret-pw"));
    free(dump);
    unsetenv("CWPP_KAFKA_SECURITY_PROTOCOL");
    unsetenv("CWPP_KAFKA_SASL_MECHANISM");
    unsetenv("CWPP_KAFKA_SASL_USERNAME");
    unsetenv("CWPP_KAFKA_SASL_PASSWORD");
    unsetenv("CWPP_KAFKA_SSL_CA_LOCATION");
    cwpp_conf_free(props, NPROPS, &c);
    cwpp_kvlist_free(&kv);
    unlink(path);
    free(path);
    clear_env();
}

static const struct {
    const char *file;
    const char *env_name, *env_value;
    const char *must_mention;
} bad[] = {
    {"nonsense.key = 1\n", NULL, NULL, "nonsense.key"},
    {"http.port = 70000\n", NULL, NULL, "http.port"},
    {"http.port = eighty\n", NULL, NULL, "http.port"},
    {"feature.flag = maybe\n", NULL, NULL, "feature.flag"},
    {"just words\n", NULL, NULL, "key = value"},
    {"", "CWPP_HTTP_PORT", "-5", "CWPP_HTTP_PORT"},
};

/* Bad configuration stops start-up with a sentence naming the key. */
static void test_bad_config_names_key(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tconf_t       c = {0};
        cwpp_kvlist_t kv = {0};
        char          err[256] = "";
        char         *path = write_file(bad[i].file);

        clear_env();
        if (bad[i].env_name != NULL)
            setenv(bad[i].env_name, bad[i].env_value, 1);
        assert_int_equal(cwpp_conf_load(props, NPROPS, &c, path, &kv, err, sizeof(err)),
                         CWPP_ECONFIG);
        assert_non_null(strstr(err, bad[i].must_mention));
        cwpp_conf_free(props, NPROPS, &c);
        cwpp_kvlist_free(&kv);
        unlink(path);
        free(path);
    }
    clear_env();
}

static void test_kvlist_parse(void **state)
{
    cwpp_kvlist_t kv = {0};
    char          err[128];

    (void)state;
    assert_int_equal(cwpp_kvlist_parse(&kv, " a=1 ; b = two;;c=x=y ", err, sizeof(err)), CWPP_OK);
    assert_int_equal(kv.n, 3);
    assert_string_equal(kv.items[1].value, "two");
    assert_string_equal(kv.items[2].value, "x=y");
    assert_int_equal(cwpp_kvlist_parse(&kv, "novalue", err, sizeof(err)), CWPP_ECONFIG);
    cwpp_kvlist_free(&kv);
}

static void test_env_names(void **state)
{
    char buf[64];

    (void)state;
    cwpp_conf_env_name("kafka.brokers", buf, sizeof(buf));
    assert_string_equal(buf, "CWPP_KAFKA_BROKERS");
    cwpp_conf_env_name("ingest.max.message.bytes", buf, sizeof(buf));
    assert_string_equal(buf, "CWPP_INGEST_MAX_MESSAGE_BYTES");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_env_precedence_and_passthrough),
        cmocka_unit_test(test_kafka_credential_env),
        cmocka_unit_test(test_bad_config_names_key),
        cmocka_unit_test(test_kvlist_parse),
        cmocka_unit_test(test_env_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
