/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_service: the skeleton every service's main() hands its typed config table to
 * (Postfix's "single_server" idea). It parses the command line
 *
 *   cwpp-<svc> [--config FILE] [--help] [--print-config] [--print-env] [--config-doc]
 *
 * loads the configuration (defaults, file, environment), starts JSON logging, installs
 * SIGTERM/SIGINT handlers, starts the /healthz /readyz /metrics listener and calls the
 * service's run function. Exit codes: 0 clean stop, 1 bad configuration or arguments,
 * 2 a fatal runtime error.
 *
 * The properties every service shares are declared once by CWPP_COMMON_PROPS.
 */
#ifndef CWPP_SERVICE_H
#define CWPP_SERVICE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_avro.h"

#include "cwpp_config.h"
#include "cwpp_http.h"
#include "cwpp_kafka.h"

typedef struct cwpp_common_conf {
    char   *kafka_brokers;      /* bootstrap servers */
    char   *kafka_properties;   /* "k=v;k=v" librdkafka pass-through from the environment */
    char   *topic_prefix;       /* "cwpp." */
    char   *group_id;           /* consumer group */
    char   *pg_dsn;             /* libpq conninfo of the service's role */
    char   *http_address;       /* health/metrics listener address */
    int64_t http_port;          /* and port; -1 disables */
    char   *log_level;          /* debug, info, warn, error */
    int64_t batch_max_messages; /* records per batch at most */
    int64_t batch_max_ms;       /* wait for a batch to fill at most */
    int64_t batch_linger_ms;    /* a batch closes once no record came for this long */
    int64_t retry_max_ms;       /* longest backoff between retries of a failing batch */
    int64_t pg_statement_timeout_ms; /* a statement running longer fails (and is retried) */
    int64_t pg_idle_tx_timeout_ms;   /* the server ends a session idle in a transaction */
    int64_t pg_keepalives_idle_s;    /* TCP keepalive probes after this much silence */
    int64_t pg_tcp_user_timeout_ms;  /* unacknowledged data this long breaks the link */
    char   *pg_sslmode;              /* libpq sslmode of every connection, "" = default */
    char   *pg_sslrootcert;          /* CA file verifying the server, "" = default */
} cwpp_common_conf_t;

/* Table entries for the common properties; T is the service's config struct, M the name
 * of its cwpp_common_conf_t member, SVC the service name as a string literal, PORT its
 * default http port as a string literal. */
#define CWPP_COMMON_PROPS(T, M, SVC, PORT)                                                     \
    {"kafka.brokers", CWPP_CONF_STR, offsetof(T, M.kafka_brokers), "127.0.0.1:9092", 0, 0, 0, \
     "Kafka bootstrap servers, host:port[,host:port]."},                                      \
    {"kafka.properties", CWPP_CONF_STR, offsetof(T, M.kafka_properties), "", 0, 0,            \
     CWPP_CONF_SECRET,                                                                         \
     "Extra librdkafka properties \"name=value;name=value\" (prefix consumer. or producer. "  \
     "to address one client)."},                                                               \
    {"topic.prefix", CWPP_CONF_STR, offsetof(T, M.topic_prefix), "cwpp.", 0, 0, 0,            \
     "Prefix of every topic name (cwpp. gives cwpp.alerts.raw)."},                            \
    {"group.id", CWPP_CONF_STR, offsetof(T, M.group_id), "cwpp-" SVC, 0, 0, 0,               \
     "Kafka consumer group; run more members to scale out."},                                 \
    {"pg.dsn", CWPP_CONF_STR, offsetof(T, M.pg_dsn),                                          \
     "host=127.0.0.1 port=54329 dbname=cwpp user=cwpp_" SVC, 0, 0, CWPP_CONF_SECRET,          \
     "libpq connection string (or URI) of this service's own database role."},                \
    {"http.address", CWPP_CONF_STR, offsetof(T, M.http_address), "127.0.0.1", 0, 0, 0,       \
     "Address of the /healthz, /readyz and /metrics listener (0.0.0.0 in containers)."},      \
    {"http.port", CWPP_CONF_INT, offsetof(T, M.http_port), PORT, -1, 65535, 0,                \
     "Port of that listener; -1 disables it, 0 picks a free port."},                          \
    {"log.level", CWPP_CONF_STR, offsetof(T, M.log_level), "info", 0, 0, 0,                  \
     "Lowest level logged: debug, info, warn or error."},                                     \
    {"batch.max.messages", CWPP_CONF_INT, offsetof(T, M.batch_max_messages), "1000", 1,      \
     100000, 0, "Most records consumed into one batch (one transaction, one commit)."},       \
    {"batch.max.ms", CWPP_CONF_INT, offsetof(T, M.batch_max_ms), "50", 1, 60000, 0,          \
     "Longest wait for a batch to fill after its first record."},                             \
    {"batch.linger.ms", CWPP_CONF_INT, offsetof(T, M.batch_linger_ms), "0", 0, 60000, 0,      \
     "A batch closes once no further record came for this long: 0 closes it as soon as "     \
     "every record already fetched is in it, so a record never waits for others that are "   \
     "not there yet (records arriving meanwhile form the next batch); under a backlog "       \
     "batches still fill up to batch.max.messages."},                                        \
    {"retry.max.ms", CWPP_CONF_INT, offsetof(T, M.retry_max_ms), "5000", 10, 600000, 0,      \
     "Longest backoff between retries of a batch whose effect failed (database down)."},      \
    {"pg.statement.timeout.ms", CWPP_CONF_INT, offsetof(T, M.pg_statement_timeout_ms),        \
     "60000", 0, 86400000, 0,                                                                  \
     "A database statement running longer is cancelled and its batch retried (0: none)."},    \
    {"pg.idle.in.transaction.timeout.ms", CWPP_CONF_INT, offsetof(T, M.pg_idle_tx_timeout_ms), \
     "120000", 0, 86400000, 0,                                                                 \
     "The server ends a session of ours idle inside a transaction this long (a vanished "     \
     "client's locks are released); 0: never."},                                               \
    {"pg.keepalives.idle.s", CWPP_CONF_INT, offsetof(T, M.pg_keepalives_idle_s), "30", 1,    \
     86400, 0,                                                                                 \
     "TCP keepalive probes start after this much silence on a database connection (then "     \
     "every 10 s, 3 unanswered break it)."},                                                   \
    {"pg.tcp.user.timeout.ms", CWPP_CONF_INT, offsetof(T, M.pg_tcp_user_timeout_ms), "30000", \
     0, 3600000, 0,                                                                            \
     "Data sent to the database and not acknowledged this long breaks the connection (a "     \
     "network partition during a query); 0: the kernel's default."},                       \
    {"pg.sslmode", CWPP_CONF_STR, offsetof(T, M.pg_sslmode), "", 0, 0, 0,                     \
     "TLS to the database for every connection: disable, allow, prefer, require, verify-ca "  \
     "or verify-full (production: verify-full); empty: libpq's default. A pg.dsn naming "     \
     "another sslmode is refused."},                                                           \
    {"pg.sslrootcert", CWPP_CONF_STR, offsetof(T, M.pg_sslrootcert), "", 0, 0, 0,             \
     "File of the CA certificate(s) that verify the database server's certificate "          \
     "(verify-ca, verify-full); empty: libpq's default. A pg.dsn naming another is refused."}

typedef struct cwpp_service_env {
    cwpp_metrics_t      *metrics;      /* registry served on /metrics */
    const cwpp_kvlist_t *kafka_props;  /* file kafka.* keys + kafka.properties */
} cwpp_service_env_t;

typedef struct cwpp_service_def {
    const char             *name;          /* "ingest" */
    const char             *summary;       /* one line for --help */
    const cwpp_conf_prop_t *props;
    size_t                  nprops;
    size_t                  conf_size;     /* sizeof the service's config struct */
    size_t                  common_offset; /* offsetof(struct, common member) */
    /* Validates the loaded configuration beyond bounds; 0 or CWPP_ECONFIG + errstr. */
    int (*check)(const void *conf, char *errstr, size_t errstr_size);
    /* Runs the service until stopped. Returns 0 after a clean stop. */
    int (*run)(const void *conf, const cwpp_service_env_t *env);
} cwpp_service_def_t;

/* Parses argv, loads config and runs def->run. Returns the process exit code. */
int cwpp_service_main(const cwpp_service_def_t *def, int argc, char **argv);

/* Called by run(): the loop SIGTERM should stop (NULL to clear). */
void cwpp_service_set_loop(cwpp_loop_t *loop);
/* Called by run(): the readiness check /readyz uses (NULL = "starting"). */
void cwpp_service_set_ready(cwpp_ready_fn fn, void *opaque);
/* 1 once SIGTERM/SIGINT arrived (for waits before the loop exists). */
int cwpp_service_stopping(void);

/*
 * The rest of every service's run(): builds the shared loop from the common properties,
 * serves /readyz (not ready while *db_ok is 0, "PostgreSQL is not reachable"; then the
 * loop's own check), runs fn(opaque) on each batch until SIGTERM, and tears the loop
 * down. Returns the process exit code: 0 clean stop, 1 configuration refused by the Kafka
 * client, 2 fatal client error.
 */
int cwpp_service_run_loop(const char *service, const cwpp_common_conf_t *common,
                          const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                          size_t ninputs, cwpp_batch_fn fn, void *opaque, atomic_int *db_ok);

/* The same, with fn also called with no records (n = 0) every tick_ms between batches once
 * the input is read to its end (cwpp_loop_conf_t.tick_ms): the service's timers run in
 * the loop's transaction discipline. */
int cwpp_service_run_loop_tick(const char *service, const cwpp_common_conf_t *common,
                               const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                               size_t ninputs, cwpp_batch_fn fn, void *opaque,
                               atomic_int *db_ok, int tick_ms);
/* What a service adds to the shared loop (all optional: zero them). */
typedef struct cwpp_service_loop_opts {
    atomic_int   *db_ok;        /* 0 while the service's database work fails */
    int           tick_ms;      /* as cwpp_service_run_loop_tick */
    cwpp_ready_fn ready;        /* the service's own readiness, asked first (HTTP thread) */
    void         *ready_opaque;
} cwpp_service_loop_opts_t;

/* cwpp_service_run_loop with the options above. */
int cwpp_service_run_loop_opts(const char *service, const cwpp_common_conf_t *common,
                               const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                               size_t ninputs, cwpp_batch_fn fn, void *opaque,
                               const cwpp_service_loop_opts_t *o);
/* Sleeps *backoff_ms (or until SIGTERM is near: at most that long) and doubles it, up to
 * 5 s: the wait between attempts to reach a dependency at start-up. */
void cwpp_service_backoff(int *backoff_ms);

/* The most of an input's value and key a dead letter copies: past them it keeps a prefix
 * and says the original's length (and the value's SHA-256), so a dead letter always fits
 * the producer's message.max.bytes (1,000,000 by default) whatever came in. */
#define CWPP_DEAD_LETTER_VALUE_MAX 262144
#define CWPP_DEAD_LETTER_KEY_MAX   4096

/*
 * Queues the dead letter (schema rejected_record) for src on <prefix>alerts.rejected, its
 * value cut to value_max bytes (at most CWPP_DEAD_LETTER_VALUE_MAX) and its key to
 * CWPP_DEAD_LETTER_KEY_MAX, with the original lengths and the value's SHA-256. t and v
 * are that schema's type and a scratch value, buf scratch. Returns 0 or an error.
 */
int cwpp_service_reject(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                        const char *service, const cwpp_reject_src_t *src, const char *code,
                        const char *reason, size_t value_max, cwpp_outbox_t *out,
                        char *errstr, size_t errstr_size);

/*
 * Queues the dead-letter record (schema rejected_record: the service, a reason code and
 * sentence, where m came from and its bytes, within the budgets above) for m on
 * <prefix>alerts.rejected. t and v are that schema's type and a scratch value, buf
 * scratch. Returns 0 or an error with errstr.
 */
int cwpp_service_dead_letter(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                             const char *service, const rd_kafka_message_t *m,
                             const char *code, const char *reason, cwpp_outbox_t *out,
                             char *errstr, size_t errstr_size);

#endif /* CWPP_SERVICE_H */
