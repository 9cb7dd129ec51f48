/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-admin: operator tasks that are not a service.
 *
 *   cwpp-admin topics create [--brokers B] [--prefix P] [--partitions N]
 *                            [--replication-factor R] [--timeout-ms T]
 *   cwpp-admin topics list   [--prefix P]
 *   cwpp-admin acls [--prefix P] [--group-prefix G] [--print]   (acls.c)
 *   cwpp-admin users bootstrap NAME [--pg-dsn DSN]   (users.c)
 *   cwpp-admin users password NAME  [--pg-dsn DSN]   (the password on standard input)
 *   cwpp-admin keys generate --out DIR               (keys.c)
 *   cwpp-admin pg-verifier ROLE     [--pg-dsn DSN]   (users.c; the password on stdin,
 *                                                     prints its SCRAM-SHA-256 verifier)
 *
 * "topics create" creates every topic of the project's table (libs/kafka) under the
 * prefix; it is idempotent, so deployment scripts and the compose/k8s init steps run it
 * on every start. Defaults come from CWPP_KAFKA_BROKERS, CWPP_TOPIC_PREFIX,
 * CWPP_TOPIC_PARTITIONS and CWPP_TOPIC_REPLICATION (1, for a one-broker local stack; a
 * production cluster sets 3). Exit 0 on success, 1 on bad arguments, 2 when the brokers fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cwpp_kafka.h"
#include "cwpp_log.h"

static void usage(FILE *fp)
{
    fprintf(fp, "usage: cwpp-admin topics create [--brokers B] [--prefix P] [--partitions N]\n"
                "                                [--replication-factor R] [--timeout-ms T]\n"
                "       cwpp-admin topics list [--prefix P]\n"
                "       cwpp-admin acls [--brokers B] [--prefix P] [--group-prefix G] [--print]\n"
                "       cwpp-admin users bootstrap NAME [--pg-dsn DSN]\n"
                "       cwpp-admin users password NAME [--pg-dsn DSN]   (password on stdin)\n"
                "       cwpp-admin keys generate --out DIR\n"
                "       cwpp-admin pg-verifier ROLE [--pg-dsn DSN]      (password on stdin)\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : def;
}

int admin_parse_int(const char *s, const char *what, int min, int max, int *out)
{
    char *end;
    long  v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "cwpp-admin: %s must be an integer in %d..%d, not \"%s\"\n", what, min,
                max, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char   *brokers = env_or("CWPP_KAFKA_BROKERS", "127.0.0.1:9092");
    const char   *prefix = env_or("CWPP_TOPIC_PREFIX", "cwpp.");
    int           partitions = 6, replication = 1, timeout_ms = 30000, i, rc;
    char          errstr[512], name[256];
    cwpp_kvlist_t props = {0};

    cwpp_log_init("admin", CWPP_LOG_WARN);
    if (argc >= 2 && strcmp(argv[1], "users") == 0)
        return admin_users(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "keys") == 0)
        return admin_keys(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "pg-verifier") == 0)
        return admin_pg_verifier(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "acls") == 0) {
        if (cwpp_conf_kafka_env(&props) != CWPP_OK ||
            cwpp_kvlist_parse(&props, getenv("CWPP_KAFKA_PROPERTIES"), errstr,
                              sizeof(errstr)) != CWPP_OK) {
            fprintf(stderr, "cwpp-admin: CWPP_KAFKA_PROPERTIES: %s\n", errstr);
            cwpp_kvlist_free(&props);
            return 1;
        }
        rc = admin_acls(argc, argv, brokers, prefix, &props);
        cwpp_kvlist_free(&props);
        return rc;
    }
    if (admin_parse_int(env_or("CWPP_TOPIC_PARTITIONS", "6"), "CWPP_TOPIC_PARTITIONS", 1, 10000,
                        &partitions) != 0)
        return 1;
    if (admin_parse_int(env_or("CWPP_TOPIC_REPLICATION", "1"), "CWPP_TOPIC_REPLICATION", 1, 100,
                        &replication) != 0)
        return 1;
    if (argc < 3 || strcmp(argv[1], "topics") != 0 ||
        (strcmp(argv[2], "create") != 0 && strcmp(argv[2], "list") != 0)) {
        usage(stderr);
        return 1;
    }
    for (i = 3; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "cwpp-admin: %s needs a value\n", argv[i]);
            return 1;
        }
        if (!strcmp(argv[i], "--brokers"))
            brokers = argv[++i];
        else if (!strcmp(argv[i], "--prefix"))
            prefix = argv[++i];
        else if (!strcmp(argv[i], "--partitions")) {
            if (admin_parse_int(argv[++i], "--partitions", 1, 10000, &partitions) != 0)
                return 1;
        } else if (!strcmp(argv[i], "--replication-factor")) {
            if (admin_parse_int(argv[++i], "--replication-factor", 1, 100, &replication) != 0)
                return 1;
        } else if (!strcmp(argv[i], "--timeout-ms")) {
            if (admin_parse_int(argv[++i], "--timeout-ms", 100, 600000, &timeout_ms) != 0)
                return 1;
        } else {
            fprintf(stderr, "cwpp-admin: unknown option %s\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    if (strcmp(argv[2], "list") == 0) {
        for (i = 0; i < CWPP_TOPIC__COUNT; i++) {
            cwpp_topic_name(prefix, (cwpp_topic_id_t)i, name, sizeof(name));
            printf("%s\t%s\n", name, cwpp_topic_def((cwpp_topic_id_t)i)->desc);
        }
        return 0;
    }
    if (cwpp_conf_kafka_env(&props) != CWPP_OK ||
        cwpp_kvlist_parse(&props, getenv("CWPP_KAFKA_PROPERTIES"), errstr, sizeof(errstr)) !=
        CWPP_OK) {
        fprintf(stderr, "cwpp-admin: CWPP_KAFKA_PROPERTIES: %s\n", errstr);
        return 1;
    }
    rc = cwpp_kafka_create_topics(brokers, &props, prefix, partitions, replication, timeout_ms,
                                  errstr, sizeof(errstr));
    cwpp_kvlist_free(&props);
    if (rc != CWPP_OK) {
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        return rc == CWPP_ECONFIG ? 1 : 2;
    }
    printf("cwpp-admin: %d topics with prefix \"%s\" present on %s\n", CWPP_TOPIC__COUNT, prefix,
           brokers);
    return 0;
}
