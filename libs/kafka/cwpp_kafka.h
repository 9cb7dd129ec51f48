/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_kafka: the topics, client set-up and the one consume -> effect -> produce ->
 * commit loop that all five services share.
 *
 * The loop's contract, which gives "no lost record":
 *   1. poll up to batch.max.messages records or batch.max.ms after the first one;
 *   2. call the service's batch function, which makes the effect durable (a database
 *      transaction) and queues output records in an outbox;
 *   3. produce the outbox with an idempotent producer (acks=all) and wait until every
 *      record is acknowledged, re-producing any that failed;
 *   4. only then commit the batch's offsets (synchronously).
 * A crash anywhere before 4 redelivers the batch; services make their effects idempotent
 * (keyed by stable ids and the consumer_offsets table), so redelivery is harmless and
 * output topics are at-least-once with stable keys. If the batch function reports a
 * transient failure (database down) the same batch is retried with backoff, never
 * skipped; on SIGTERM an unfinished batch is left uncommitted for the next start.
 *
 * While a batch waits to be retried (or for room among the in-flight batches) the
 * consumer stays a live member of its group: its partitions are paused and it keeps
 * polling, so an outage longer than max.poll.interval.ms does not get it evicted. A
 * record polled meanwhile is not consumed: its partition is rewound to it. If a
 * rebalance takes partitions away during the wait, the unapplied batch is abandoned
 * (the new owner reads it from the committed offsets).
 *
 * Threads: cwpp_loop_run runs on the caller's thread. cwpp_loop_stop is async-signal
 * safe. cwpp_loop_ready may be called from the HTTP thread.
 */
#ifndef CWPP_KAFKA_H
#define CWPP_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_config.h"
#include "cwpp_http.h"
#include "cwpp_util.h"

typedef enum {
    CWPP_TOPIC_ALERTS_RAW = 0,
    CWPP_TOPIC_ALERTS_REJECTED,
    CWPP_TOPIC_ALERTS_NORMALIZED,
    CWPP_TOPIC_ALERTS_SUPPRESSED,
    CWPP_TOPIC_ALERTS_ACCEPTED,
    CWPP_TOPIC_EVENTS,
    CWPP_TOPIC_EVENTS_HANDLED,
    CWPP_TOPIC_EVENTS_HANDLED_OCSF,
    CWPP_TOPIC_COMMANDS,
    CWPP_TOPIC_COMMAND_RESULTS,
    CWPP_TOPIC_ACTIONS,
    CWPP_TOPIC_ACTION_RESULTS,
    CWPP_TOPIC_NOTIFICATIONS,
    CWPP_TOPIC__COUNT
} cwpp_topic_id_t;

typedef struct cwpp_topic_def {
    const char *suffix;    /* name after the prefix: "alerts.raw" */
    int         compacted; /* cleanup.policy=compact */
    const char *desc;
} cwpp_topic_def_t;

/* The definition of topic id (cannot fail for a valid id). */
const cwpp_topic_def_t *cwpp_topic_def(cwpp_topic_id_t id);
/* prefix + suffix into buf. */
void cwpp_topic_name(const char *prefix, cwpp_topic_id_t id, char *buf, size_t size);

/* ------------------------------------------------------------------- ACLs */

/*
 * Who may do what on the broker: one principal (SASL/SCRAM user) per service, mirroring
 * the PostgreSQL roles. Kafka's StandardAuthorizer denies whatever no binding allows
 * (allow.everyone.if.no.acl.found=false); cwpp-admin is a super user and needs none.
 * Topic bindings are LITERAL on <prefix><suffix>. Group and transactional-id bindings
 * name the ids the services form (libs/service: group.id "cwpp-<service>"); PREFIXED
 * only where a service forms a family of ids at run time (the enforcer's
 * "cwpp-enforcer-<agent>", the API's "cwpp-api-results-<random>"). An idempotent
 * producer needs only WRITE on its topics (Kafka >= 2.8); the exporter's transactional
 * publisher needs WRITE on its transactional id. READ on a topic or group implies
 * DESCRIBE (metadata, committed offsets).
 */
typedef enum {
    CWPP_ACL_TOPIC = 0, /* topic cwpp_acl_def_t.topic under the prefix, LITERAL */
    CWPP_ACL_GROUP,     /* consumer group .name */
    CWPP_ACL_TXN,       /* transactional id .name */
} cwpp_acl_res_t;

#define CWPP_ACL_READ  0x1
#define CWPP_ACL_WRITE 0x2

typedef struct cwpp_acl_def {
    const char     *principal; /* SASL user name, without "User:" */
    cwpp_acl_res_t  res;
    cwpp_topic_id_t topic;     /* CWPP_ACL_TOPIC only */
    const char     *name;      /* group / transactional id; NULL for a topic */
    int             prefixed;  /* 1: PREFIXED pattern on name, else LITERAL */
    int             ops;       /* CWPP_ACL_READ | CWPP_ACL_WRITE */
} cwpp_acl_def_t;

/* The principal cwpp-admin (super user: topics, ACLs, operators and tests). */
#define CWPP_KAFKA_ADMIN_PRINCIPAL "cwpp-admin"

/* The binding table; *n gets its length. Static storage, never fails. */
const cwpp_acl_def_t *cwpp_kafka_acls(size_t *n);

/*
 * The resource name of binding d under topic prefix: the topic's full name, or d->name.
 * Returns buf.
 */
const char *cwpp_kafka_acl_resource(const cwpp_acl_def_t *d, const char *prefix, char *buf,
                                    size_t size);

/*
 * A librdkafka configuration with bootstrap.servers = brokers, the pass-through
 * properties applied, and logs routed to cwpp_log. Returns NULL with errstr naming the
 * property librdkafka refused. "consumer.X" properties are skipped and "producer.X" ones
 * applied as X (this is a producer or admin client). The caller owns the result until it hands it to
 * rd_kafka_new (then sets its pointer to NULL).
 */
rd_kafka_conf_t *cwpp_kafka_conf(const char *brokers, const cwpp_kvlist_t *props,
                                 char *errstr, size_t errstr_size);

/*
 * Creates every topic of the table under prefix (idempotent: existing topics are left as
 * they are). Returns 0, or CWPP_ETRANSIENT / CWPP_EIO with the broker's reason.
 */
int cwpp_kafka_create_topics(const char *brokers, const cwpp_kvlist_t *props,
                             const char *prefix, int partitions, int replication,
                             int timeout_ms, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ outbox */

typedef struct cwpp_outbox cwpp_outbox_t;

/* Queues one output record; key and value are copied. Returns 0 or CWPP_ENOMEM. */
int cwpp_outbox_add(cwpp_outbox_t *ob, cwpp_topic_id_t topic, const void *key, size_t klen,
                    const void *value, size_t vlen);
/* Number of queued records. */
size_t cwpp_outbox_count(const cwpp_outbox_t *ob);
/* Drops the records queued after the first n (undoing a step whose effect was rolled back). */
void cwpp_outbox_truncate(cwpp_outbox_t *ob, size_t n);
/* A service's own outbox (the loop hands one to each batch function): for work split
 * across threads, each filling its own, then moved into the batch's. NULL on ENOMEM. */
cwpp_outbox_t *cwpp_outbox_new(void);
/* Frees it and its records. Accepts NULL. */
void cwpp_outbox_destroy(cwpp_outbox_t *ob);
/* Appends every record of src to dst, in order, and empties src (no copies). Returns 0,
 * or CWPP_ENOMEM with both unchanged. */
int cwpp_outbox_move(cwpp_outbox_t *dst, cwpp_outbox_t *src);

/* ------------------------------------------------------------------- loop */

/* What a dead letter describes: an input record, or an output the broker refused. */
typedef struct cwpp_reject_src {
    const char *topic;        /* where it came from (or was going) */
    int32_t     partition;    /* -1 for an output */
    int64_t     offset;       /* -1 for an output */
    int64_t     timestamp_ms; /* -1 when unknown */
    const void *key;          /* may be NULL */
    size_t      klen;
    const void *value;
    size_t      vlen;
} cwpp_reject_src_t;

/* What a dead letter of the consumed record m describes (pointers into m). */
cwpp_reject_src_t cwpp_reject_src_of(const rd_kafka_message_t *m);

/*
 * Queues on out the dead letter for src (reason code and sentence), its value cut to
 * value_max bytes. The loop calls it for a record whose one-record batch the service
 * reports as refused data (CWPP_EDATA, code "db_refused") and for an output the broker
 * can never accept (too large: code "output_too_large"). Returns 0 or an error.
 */
typedef int (*cwpp_reject_fn)(void *opaque, const cwpp_reject_src_t *src, const char *code,
                              const char *reason, size_t value_max, cwpp_outbox_t *out);

/*
 * The service's batch function. msgs are the batch in poll order (never error
 * messages); they stay owned by the loop. Return 0 when the effect is durable and the
 * outbox filled; CWPP_ETRANSIENT to have the same batch retried later (the outbox is
 * emptied before each attempt). CWPP_EDATA (nothing applied: the database refused some
 * record's data) makes the loop apply the batch again one record at a time, each its own
 * call with n = 1, and dead-letter (cwpp_reject_fn) each record whose own call still
 * says CWPP_EDATA: one record the database cannot store never stops a partition. Any
 * other code is treated as transient too, after logging: a batch is never dropped.
 */
typedef int (*cwpp_batch_fn)(void *opaque, rd_kafka_message_t **msgs, size_t n,
                             cwpp_outbox_t *out, char *errstr, size_t errstr_size);

typedef struct cwpp_loop_conf {
    const char            *service;        /* metric names: cwpp_<service>_... */
    const char            *brokers;
    const cwpp_kvlist_t   *props;          /* librdkafka pass-through, may be NULL */
    const char            *group_id;
    const char            *prefix;         /* topic prefix */
    const cwpp_topic_id_t *inputs;         /* topics to consume */
    size_t                 ninputs;
    int                    batch_max_messages;
    int                    batch_max_ms;
    int                    batch_linger_ms; /* close a batch once no record came for this
                                             * long (>= batch_max_ms: only the cap) */
    int                    retry_max_ms;   /* longest backoff between retries */
    int                    tick_ms;        /* > 0: fn is also called with n = 0 every
                                            * tick_ms between batches, once the consumer
                                            * holds partitions and has read them to their
                                            * end, or (input that never lets up) after 10
                                            * ticks' time and at least 10 s without one:
                                            * timers; its outbox is produced like a
                                            * batch's */
    cwpp_metrics_t        *metrics;        /* may be NULL */
    cwpp_reject_fn         reject;         /* dead letters the loop itself writes; NULL:
                                            * CWPP_EDATA is retried like a transient
                                            * failure and an output too large for the
                                            * broker is retried for ever (tests only) */
    void                  *reject_opaque;
} cwpp_loop_conf_t;

typedef struct cwpp_loop cwpp_loop_t;

/* Creates the consumer (subscribed) and the producer. NULL with errstr on failure. */
cwpp_loop_t *cwpp_loop_new(const cwpp_loop_conf_t *conf, char *errstr, size_t errstr_size);
/* Runs until cwpp_loop_stop; returns 0 after a clean stop (last batch committed or left
 * for redelivery), CWPP_EIO on a fatal client error. */
int cwpp_loop_run(cwpp_loop_t *l, cwpp_batch_fn fn, void *opaque);
/* Asks the loop to finish its current batch and return. Async-signal safe. */
void cwpp_loop_stop(cwpp_loop_t *l);
/* 1 when brokers answer and batches are not failing; else 0 with a reason. */
int cwpp_loop_ready(cwpp_loop_t *l, char *reason, size_t reason_size);
/* Full name of a topic under this loop's prefix. */
const char *cwpp_loop_topic(const cwpp_loop_t *l, cwpp_topic_id_t id);
/* Leaves the group, flushes the producer, frees. Accepts NULL. */
void cwpp_loop_destroy(cwpp_loop_t *l);

#endif /* CWPP_KAFKA_H */
