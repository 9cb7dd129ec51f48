/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.c: topic table, client configuration, topic creation, the outbox and the loop.
 *
 * The outbox owns its records' bytes until the producer has acknowledged them, so a
 * failed record can be produced again without copying; librdkafka is given the bytes
 * without RD_KAFKA_MSG_F_FREE/F_COPY and a pointer to the entry as the message opaque,
 * and the delivery report writes the entry's result.
 */
#include "cwpp_kafka.h"
#include "cwpp_log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const cwpp_topic_def_t topic_defs[CWPP_TOPIC__COUNT] = {
    [CWPP_TOPIC_ALERTS_RAW]        = {"alerts.raw", 0, "upstream alerts, JSON"},
    [CWPP_TOPIC_ALERTS_REJECTED]   = {"alerts.rejected", 0, "dead letter: rejected records with reasons"},
    [CWPP_TOPIC_ALERTS_NORMALIZED] = {"alerts.normalized", 0, "normalized alerts (Avro Alert)"},
    [CWPP_TOPIC_ALERTS_SUPPRESSED] = {"alerts.suppressed", 0, "whitelisted alerts"},
    [CWPP_TOPIC_ALERTS_ACCEPTED]   = {"alerts.accepted", 0, "alerts that passed the whitelist"},
    [CWPP_TOPIC_EVENTS]            = {"events", 1, "security event snapshots, keyed by event id"},
    [CWPP_TOPIC_EVENTS_HANDLED]    = {"events.handled", 0, "handled events for downstream consumers"},
    [CWPP_TOPIC_EVENTS_HANDLED_OCSF] = {"events.handled.ocsf", 0, "handled events as OCSF JSON"},
    [CWPP_TOPIC_COMMANDS]          = {"commands", 0, "analyst commands"},
    [CWPP_TOPIC_COMMAND_RESULTS]   = {"command-results", 0, "answers to commands"},
    [CWPP_TOPIC_ACTIONS]           = {"actions", 0, "response actions for enforcement agents"},
    [CWPP_TOPIC_ACTION_RESULTS]    = {"action-results", 0, "results of response actions"},
    [CWPP_TOPIC_NOTIFICATIONS]     = {"notifications", 0, "event notifications"},
};

/* Who reads and writes what (cwpp_kafka.h; docs/kafka-security.md shows it as a table,
 * tests/static checks that the two agree). Every service that dead-letters writes
 * alerts.rejected. Services that answer commands (whitelist, responder, exporter) read
 * commands and write command-results; only cwpp-api writes commands, only the responder
 * writes actions. */
#define T_(p, t, o)  {p, CWPP_ACL_TOPIC, CWPP_TOPIC_##t, NULL, 0, o}
#define G_(p, g, px) {p, CWPP_ACL_GROUP, CWPP_TOPIC_ALERTS_RAW, g, px, CWPP_ACL_READ}
#define R CWPP_ACL_READ
#define W CWPP_ACL_WRITE
static const cwpp_acl_def_t acl_defs[] = {
    T_("cwpp-ingest", ALERTS_RAW, R),
    T_("cwpp-ingest", ALERTS_NORMALIZED, W),
    T_("cwpp-ingest", ALERTS_REJECTED, W),
    G_("cwpp-ingest", "cwpp-ingest", 0),

    T_("cwpp-whitelist", ALERTS_NORMALIZED, R),
    T_("cwpp-whitelist", COMMANDS, R),
    T_("cwpp-whitelist", ALERTS_SUPPRESSED, W),
    T_("cwpp-whitelist", ALERTS_ACCEPTED, W),
    T_("cwpp-whitelist", COMMAND_RESULTS, W),
    T_("cwpp-whitelist", ALERTS_REJECTED, W),
    G_("cwpp-whitelist", "cwpp-whitelist", 0),

    T_("cwpp-correlator", ALERTS_ACCEPTED, R),
    T_("cwpp-correlator", COMMANDS, R),
    T_("cwpp-correlator", EVENTS, W),
    T_("cwpp-correlator", NOTIFICATIONS, W),
    T_("cwpp-correlator", COMMAND_RESULTS, W),
    T_("cwpp-correlator", ALERTS_REJECTED, W),
    G_("cwpp-correlator", "cwpp-correlator", 0),

    T_("cwpp-responder", COMMANDS, R),
    T_("cwpp-responder", ACTION_RESULTS, R),
    T_("cwpp-responder", EVENTS, W),
    T_("cwpp-responder", ACTIONS, W),
    T_("cwpp-responder", COMMAND_RESULTS, W),
    T_("cwpp-responder", ALERTS_REJECTED, W),
    G_("cwpp-responder", "cwpp-responder", 0),

    T_("cwpp-exporter", COMMANDS, R),
    T_("cwpp-exporter", EVENTS_HANDLED, R | W),
    T_("cwpp-exporter", EVENTS_HANDLED_OCSF, W),
    T_("cwpp-exporter", COMMAND_RESULTS, W),
    T_("cwpp-exporter", ALERTS_REJECTED, W),
    G_("cwpp-exporter", "cwpp-exporter", 0),
    G_("cwpp-exporter", "cwpp-exporter-tail", 0),
    /* the handled publisher: transactional id handled.transactional.id and its position
     * group "<id>.position"; PREFIXED so that several deployments (and tests) sharing a
     * broker name theirs cwpp-exporter-handled<something> */
    G_("cwpp-exporter", "cwpp-exporter-handled", 1),
    {"cwpp-exporter", CWPP_ACL_TXN, CWPP_TOPIC_ALERTS_RAW, "cwpp-exporter-handled", 1, W},

    T_("cwpp-api", COMMANDS, W),
    T_("cwpp-api", COMMAND_RESULTS, R),
    G_("cwpp-api", "cwpp-api-results-", 1), /* one group per API process */

    T_("cwpp-enforcer", ACTIONS, R),
    T_("cwpp-enforcer", ACTION_RESULTS, W),
    T_("cwpp-enforcer", ALERTS_REJECTED, W),
    G_("cwpp-enforcer", "cwpp-enforcer-", 1), /* one group per agent */
};
#undef T_
#undef G_
#undef R
#undef W

const cwpp_acl_def_t *cwpp_kafka_acls(size_t *n)
{
    *n = sizeof(acl_defs) / sizeof(acl_defs[0]);
    return acl_defs;
}

const char *cwpp_kafka_acl_resource(const cwpp_acl_def_t *d, const char *prefix, char *buf,
                                    size_t size)
{
    if (d->res == CWPP_ACL_TOPIC)
        cwpp_topic_name(prefix, d->topic, buf, size);
    else
        snprintf(buf, size, "%s", d->name);
    return buf;
}

const cwpp_topic_def_t *cwpp_topic_def(cwpp_topic_id_t id)
{
    return (unsigned)id < CWPP_TOPIC__COUNT ? &topic_defs[id] : NULL;
}

void cwpp_topic_name(const char *prefix, cwpp_topic_id_t id, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", prefix != NULL ? prefix : "", topic_defs[id].suffix);
}

/* librdkafka log lines (syslog levels) into our JSON log. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cwpp_log_level_t lvl = level <= 3 ? CWPP_LOG_ERROR : level <= 4 ? CWPP_LOG_WARN
                         : level <= 6 ? CWPP_LOG_INFO : CWPP_LOG_DEBUG;

    cwpp_logj(lvl, "rdkafka", json_pack("{s:s,s:s}", "client", rd_kafka_name(rk), "facility", fac),
              "%s", buf);
}

/*
 * Applies the pass-through properties to a client's configuration: plain names and
 * "<role>.NAME" apply (as NAME), the other role's prefixed names are skipped. strict: a
 * property librdkafka refuses is an error naming it; otherwise it is ignored (one list
 * serves both clients, and a consumer-only name means nothing to a producer).
 */
static int apply_props(rd_kafka_conf_t *conf, const cwpp_kvlist_t *props, const char *role,
                       int strict, char *errstr, size_t errstr_size)
{
    const char *other = strcmp(role, "consumer") == 0 ? "producer." : "consumer.";
    size_t      i, rlen = strlen(role);
    char        rderr[512];

    for (i = 0; props != NULL && i < props->n; i++) {
        const char *k = props->items[i].key;

        if (strncmp(k, other, 9) == 0)
            continue;
        if (strncmp(k, role, rlen) == 0 && k[rlen] == '.')
            k += rlen + 1;
        if (rd_kafka_conf_set(conf, k, props->items[i].value, rderr, sizeof(rderr)) !=
                RD_KAFKA_CONF_OK && strict)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka.%s: %s",
                               props->items[i].key, rderr);
    }
    return CWPP_OK;
}

rd_kafka_conf_t *cwpp_kafka_conf(const char *brokers, const cwpp_kvlist_t *props,
                                 char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char             rderr[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, rderr, sizeof(rderr)) !=
        RD_KAFKA_CONF_OK) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka.brokers: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "log.connection.close", "false", NULL, 0);
    /* This client is a producer or admin handle: plain and "producer.X" properties. */
    if (apply_props(conf, props, "producer", 1, errstr, errstr_size) != CWPP_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

int cwpp_kafka_create_topics(const char *brokers, const cwpp_kvlist_t *props,
                             const char *prefix, int partitions, int replication,
                             int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t           *conf;
    rd_kafka_t                *rk = NULL;
    rd_kafka_NewTopic_t       *nt[CWPP_TOPIC__COUNT] = {0};
    rd_kafka_AdminOptions_t   *opts = NULL;
    rd_kafka_queue_t          *q = NULL;
    rd_kafka_event_t          *ev = NULL;
    const rd_kafka_topic_result_t **res;
    size_t                     i, nres;
    char                       name[256], rderr[512];
    int                        rc = CWPP_OK;

    conf = cwpp_kafka_conf(brokers, props, errstr, errstr_size);
    if (conf == NULL)
        return CWPP_ECONFIG;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka client: %s", rderr);
    }
    conf = NULL; /* owned by rk */
    for (i = 0; i < CWPP_TOPIC__COUNT; i++) {
        cwpp_topic_name(prefix, (cwpp_topic_id_t)i, name, sizeof(name));
        nt[i] = rd_kafka_NewTopic_new(name, partitions, replication, rderr, sizeof(rderr));
        if (nt[i] == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "topic %s: %s", name, rderr);
            goto out;
        }
        if (topic_defs[i].compacted)
            rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", "compact");
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, rderr, sizeof(rderr));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rderr, sizeof(rderr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, CWPP_TOPIC__COUNT, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                         "no answer from the brokers at %s within %d ms", brokers, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "creating topics: %s",
                         rd_kafka_event_error_string(ev));
        goto out;
    }
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
    for (i = 0; i < nres; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            cwpp_info("topic_created", "created topic %s", rd_kafka_topic_result_name(res[i]));
        } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "topic %s: %s",
                             rd_kafka_topic_result_name(res[i]),
                             rd_kafka_topic_result_error_string(res[i]));
            goto out;
        }
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (i = 0; i < CWPP_TOPIC__COUNT; i++)
        if (nt[i] != NULL)
            rd_kafka_NewTopic_destroy(nt[i]);
    rd_kafka_destroy(rk);
    return rc;
}

/* ----------------------------------------------------------------------- outbox */

struct inflight;

typedef struct ob_entry {
    struct inflight    *batch; /* the in-flight batch it belongs to (set when produced) */
    cwpp_topic_id_t     topic;
    unsigned char      *key;   /* owned; NULL when klen == 0 */
    size_t              klen;
    unsigned char      *value; /* owned */
    size_t              vlen;
    rd_kafka_resp_err_t err;   /* delivery result */
    int                 done;  /* delivery report received */
    int                 wraps; /* times it was replaced by its own dead letter */
} ob_entry_t;

struct cwpp_outbox {
    ob_entry_t *e;
    size_t      n, cap;
};

int cwpp_outbox_add(cwpp_outbox_t *ob, cwpp_topic_id_t topic, const void *key, size_t klen,
                    const void *value, size_t vlen)
{
    ob_entry_t *x;

    if (ob->n == ob->cap) {
        size_t      ncap = ob->cap ? ob->cap * 2 : 256;
        ob_entry_t *ne = realloc(ob->e, ncap * sizeof(*ne));
        if (ne == NULL)
            return CWPP_ENOMEM;
        ob->e = ne;
        ob->cap = ncap;
    }
    x = &ob->e[ob->n];
    memset(x, 0, sizeof(*x));
    x->topic = topic;
    if (klen > 0) {
        x->key = malloc(klen);
        if (x->key == NULL)
            return CWPP_ENOMEM;
        memcpy(x->key, key, klen);
        x->klen = klen;
    }
    x->value = malloc(vlen ? vlen : 1);
    if (x->value == NULL) {
        free(x->key);
        return CWPP_ENOMEM;
    }
    if (vlen > 0)
        memcpy(x->value, value, vlen);
    x->vlen = vlen;
    ob->n++;
    return CWPP_OK;
}

size_t cwpp_outbox_count(const cwpp_outbox_t *ob)
{
    return ob->n;
}

void cwpp_outbox_truncate(cwpp_outbox_t *ob, size_t n)
{
    while (ob->n > n) {
        ob->n--;
        free(ob->e[ob->n].key);
        free(ob->e[ob->n].value);
    }
}

static void outbox_clear(cwpp_outbox_t *ob)
{
    size_t i;

    for (i = 0; i < ob->n; i++) {
        free(ob->e[i].key);
        free(ob->e[i].value);
    }
    ob->n = 0;
}

cwpp_outbox_t *cwpp_outbox_new(void)
{
    return calloc(1, sizeof(cwpp_outbox_t));
}

void cwpp_outbox_destroy(cwpp_outbox_t *ob)
{
    if (ob == NULL)
        return;
    outbox_clear(ob);
    free(ob->e);
    free(ob);
}

int cwpp_outbox_move(cwpp_outbox_t *dst, cwpp_outbox_t *src)
{
    if (src->n == 0)
        return CWPP_OK;
    if (dst->n + src->n > dst->cap) {
        size_t      ncap = dst->cap ? dst->cap : 256;
        ob_entry_t *ne;

        while (ncap < dst->n + src->n)
            ncap *= 2;
        if ((ne = realloc(dst->e, ncap * sizeof(*ne))) == NULL)
            return CWPP_ENOMEM;
        dst->e = ne;
        dst->cap = ncap;
    }
    memcpy(dst->e + dst->n, src->e, src->n * sizeof(*src->e));
    dst->n += src->n;
    src->n = 0; /* the keys and values now belong to dst */
    return CWPP_OK;
}

/* ------------------------------------------------------------------------- loop */

/* A batch whose effect is durable and whose outputs are on their way. Its offsets are
 * committed when every output is acknowledged; batches complete in FIFO order. */
typedef struct inflight {
    cwpp_outbox_t                    ob;       /* outputs, owned until acknowledged */
    rd_kafka_topic_partition_list_t *offsets;  /* to commit when done */
    size_t                           pending;  /* delivery reports outstanding */
    size_t                           nfailed;  /* outputs that failed delivery */
    int64_t                          started;  /* monotonic ms of the first record */
    size_t                           records;  /* input records */
} inflight_t;

#define CWPP_MAX_INFLIGHT 4

struct cwpp_loop {
    cwpp_loop_conf_t     conf;
    char                *topics[CWPP_TOPIC__COUNT]; /* full names */
    rd_kafka_t          *consumer;
    rd_kafka_t          *producer;
    rd_kafka_topic_t    *probe;     /* the first input, whose metadata /readyz asks for */
    cwpp_outbox_t        outbox;
    inflight_t           ring[CWPP_MAX_INFLIGHT]; /* FIFO of in-flight batches */
    size_t               head, count;
    rd_kafka_topic_partition_list_t *done;        /* highest completed offsets of the
                                                     assigned partitions */
    atomic_int           recommit;                /* the last commit failed: send again */
    rd_kafka_message_t **msgs;
    volatile sig_atomic_t stop;
    atomic_int           failing;      /* the batch function is failing right now */
    atomic_int           fatal;        /* a fatal client error was raised */
    char                 group[256];
    /* holding: partitions paused while the loop waits, the consumer still polled */
    int                  paused;
    int64_t              held_since, held_ms; /* for the held-seconds counter */
    unsigned             revokes;      /* rebalances that took partitions away */
    rd_kafka_topic_partition_list_t *rewind; /* records polled while paused: seek back */
    cwpp_outbox_t        one;          /* outputs of one record (record-by-record mode) */
    cwpp_outbox_t        conv;         /* a dead letter replacing an undeliverable output */
    /* metrics */
    cwpp_metric_t       *m_consumed, *m_produced, *m_batches, *m_retries, *m_commit_err,
                        *m_delivery_err, *m_batch_size, *m_batch_seconds, *m_lag, *m_assigned,
                        *m_dead_letters, *m_held, *m_rebalances;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    ob_entry_t *e = m->_private;

    (void)rk;
    (void)opaque;
    if (e != NULL) {
        e->err = m->err;
        e->done = 1;
        if (e->batch != NULL) {
            e->batch->pending--;
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                e->batch->nfailed++;
        }
    }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    cwpp_loop_t *l = opaque;

    (void)rk;
    (void)offsets;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        atomic_store(&l->recommit, 1);
        cwpp_metric_add(l->m_commit_err, 1);
        cwpp_warn("commit_failed", "offset commit failed (%s); it is sent again (records "
                  "redelivered meanwhile are recognised as already applied)",
                  rd_kafka_err2str(err));
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    cwpp_loop_t *l = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        cwpp_error("kafka_fatal", "%s: fatal error: %s", rd_kafka_name(rk), fatal);
        atomic_store(&l->fatal, 1);
        l->stop = 1;
        return;
    }
    cwpp_warn("kafka_error", "%s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    cwpp_loop_t *l = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        cwpp_info("partitions_assigned", "assigned %d partition(s)", parts->cnt);
        rd_kafka_assign(rk, parts);
        if (l->paused) /* the loop is holding: nothing is fetched until it resumes */
            rd_kafka_pause_partitions(rk, parts);
        cwpp_metric_set(l->m_assigned, parts->cnt);
    } else {
        cwpp_info("partitions_revoked", "revoked %d partition(s)", parts->cnt);
        l->revokes++;
        cwpp_metric_add(l->m_rebalances, 1);
        rd_kafka_assign(rk, NULL);
        cwpp_metric_set(l->m_assigned, 0);
        /* Positions restart at the committed offsets: rewinding to a record polled
         * before would skip the records before it. */
        if (l->rewind != NULL)
            l->rewind->cnt = 0;
        /* Never re-commit offsets of partitions another member may own now. */
        if (l->done != NULL)
            rd_kafka_topic_partition_list_destroy(l->done);
        l->done = rd_kafka_topic_partition_list_new(16);
        atomic_store(&l->recommit, 0);
    }
}

static int set_or_fail(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
                       size_t errstr_size)
{
    char rderr[256];

    if (rd_kafka_conf_set(conf, k, v, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "%s: %s", k, rderr);
    return CWPP_OK;
}

static const double batch_size_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000};
static const double batch_sec_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                          2.5, 5, 10};

static void loop_metrics(cwpp_loop_t *l)
{
    char n[256];
    const char *s = l->conf.service;
    cwpp_metrics_t *m = l->conf.metrics;

#define MNAME(suffix) (snprintf(n, sizeof(n), "cwpp_%s_%s", s, suffix), n)
    l->m_consumed = cwpp_counter(m, MNAME("consumed_total"), "Records consumed from input topics.");
    l->m_produced = cwpp_counter(m, MNAME("produced_total"), "Records produced and acknowledged.");
    l->m_batches = cwpp_counter(m, MNAME("batches_total"), "Batches committed.");
    l->m_retries = cwpp_counter(m, MNAME("batch_retries_total"),
                                "Batch attempts that failed transiently and were retried.");
    l->m_commit_err = cwpp_counter(m, MNAME("commit_errors_total"),
                                   "Offset commits that failed (the batch is redelivered).");
    l->m_delivery_err = cwpp_counter(m, MNAME("delivery_errors_total"),
                                     "Produced records that failed delivery and were re-sent.");
    l->m_batch_size = cwpp_histogram(m, MNAME("batch_size"), "Records per consumed batch.",
                                     batch_size_bounds,
                                     sizeof(batch_size_bounds) / sizeof(batch_size_bounds[0]));
    l->m_batch_seconds = cwpp_histogram(m, MNAME("batch_seconds"),
                                        "Time from a batch's first record to its commit.",
                                        batch_sec_bounds,
                                        sizeof(batch_sec_bounds) / sizeof(batch_sec_bounds[0]));
    l->m_assigned = cwpp_gauge(m, MNAME("assigned_partitions"),
                               "Input partitions this member of the group holds.");
    l->m_lag = cwpp_gauge(m, MNAME("consumer_lag"),
                          "Records behind the high watermark on the partitions of the last batch.");
    l->m_dead_letters = cwpp_counter(m, MNAME("loop_dead_letters_total"),
                                     "Records the database refused and outputs the broker "
                                     "refused as too large, sent to the dead-letter topic.");
    l->m_rebalances = cwpp_counter(m, MNAME("rebalances_total"),
                                   "Rebalances that took this member's partitions away.");
    l->m_held = cwpp_counter(m, MNAME("held_seconds_total"),
                             "Seconds spent with the input paused, waiting for a dependency "
                             "while staying in the consumer group.");
#undef MNAME
}

/* The consumer's configuration: manual commits after the effect, a bounded prefetch,
 * then the operator's pass-through properties. NULL (errstr filled) on a refused value. */
static rd_kafka_conf_t *consumer_conf(const cwpp_loop_conf_t *conf, char *errstr,
                                      size_t errstr_size)
{
    rd_kafka_conf_t *cc;
    char             name[256];

    cc = cwpp_kafka_conf(conf->brokers, NULL, errstr, errstr_size);
    if (cc == NULL)
        return NULL;
    if (set_or_fail(cc, "group.id", conf->group_id, errstr, errstr_size) ||
        set_or_fail(cc, "enable.auto.commit", "false", errstr, errstr_size) ||
        set_or_fail(cc, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        set_or_fail(cc, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        set_or_fail(cc, "enable.partition.eof", "false", errstr, errstr_size) ||
        /* Bound the prefetch queue (librdkafka's default is 64 MiB) and each fetch
         * response (50 MiB): a service's memory should not scale with the backlog. A
         * record larger than the fetch limit is still returned whole. Measured on the
         * correlator with a backlog (bench/correlator.py): a 2 MiB fetch takes peak RSS
         * from 70 to 59 MiB at the same throughput; a 2 MiB queue starves it (-30 %).
         * Operators may raise both. */
        set_or_fail(cc, "queued.max.messages.kbytes", "8192", errstr, errstr_size) ||
        set_or_fail(cc, "fetch.max.bytes", "2097152", errstr, errstr_size))
        goto fail;
    snprintf(name, sizeof(name), "cwpp-%s-consumer", conf->service);
    set_or_fail(cc, "client.id", name, NULL, 0);
    /* Pass-through properties last, so operators can tune anything above. */
    if (apply_props(cc, conf->props, "consumer", 1, errstr, errstr_size) != CWPP_OK)
        goto fail;
    {
        /* librdkafka refuses a consumer whose fetch.max.bytes is below message.max.bytes:
         * an operator who raised only the latter (for large records) gets both raised */
        char   fv[32] = "", mv[32] = "";
        size_t fl = sizeof(fv), ml = sizeof(mv);

        if (rd_kafka_conf_get(cc, "fetch.max.bytes", fv, &fl) == RD_KAFKA_CONF_OK &&
            rd_kafka_conf_get(cc, "message.max.bytes", mv, &ml) == RD_KAFKA_CONF_OK &&
            atoll(fv) < atoll(mv) && set_or_fail(cc, "fetch.max.bytes", mv, errstr, errstr_size))
            goto fail;
    }
    return cc;
fail:
    rd_kafka_conf_destroy(cc);
    return NULL;
}

cwpp_loop_t *cwpp_loop_new(const cwpp_loop_conf_t *conf, char *errstr, size_t errstr_size)
{
    cwpp_loop_t                     *l;
    rd_kafka_conf_t                 *cc = NULL, *pc = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    char                             rderr[512], name[256];
    size_t                           i;
    rd_kafka_resp_err_t              err;

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    l->conf = *conf;
    l->done = rd_kafka_topic_partition_list_new(16);
    l->rewind = rd_kafka_topic_partition_list_new(4);
    cwpp_strlcpy(l->group, conf->group_id, sizeof(l->group));
    l->conf.group_id = l->group;
    for (i = 0; i < CWPP_TOPIC__COUNT; i++) {
        cwpp_topic_name(conf->prefix, (cwpp_topic_id_t)i, name, sizeof(name));
        if ((l->topics[i] = strdup(name)) == NULL)
            goto oom;
    }
    l->msgs = calloc((size_t)conf->batch_max_messages, sizeof(*l->msgs));
    if (l->msgs == NULL)
        goto oom;
    loop_metrics(l);

    /* consumer */
    if ((cc = consumer_conf(conf, errstr, errstr_size)) == NULL)
        goto fail;
    rd_kafka_conf_set_opaque(cc, l);
    rd_kafka_conf_set_error_cb(cc, error_cb);
    rd_kafka_conf_set_offset_commit_cb(cc, commit_cb);
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    l->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, rderr, sizeof(rderr));
    if (l->consumer == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka consumer: %s", rderr);
        goto fail;
    }
    cc = NULL; /* owned by the consumer now */
    rd_kafka_poll_set_consumer(l->consumer);

    /* producer */
    pc = cwpp_kafka_conf(conf->brokers, NULL, errstr, errstr_size);
    if (pc == NULL)
        goto fail;
    if (set_or_fail(pc, "enable.idempotence", "true", errstr, errstr_size) ||
        set_or_fail(pc, "acks", "all", errstr, errstr_size) ||
        set_or_fail(pc, "linger.ms", "1", errstr, errstr_size) ||
        set_or_fail(pc, "compression.type", "lz4", errstr, errstr_size))
        goto fail;
    snprintf(name, sizeof(name), "cwpp-%s-producer", conf->service);
    set_or_fail(pc, "client.id", name, NULL, 0);
    apply_props(pc, conf->props, "producer", 0, NULL, 0);
    rd_kafka_conf_set_opaque(pc, l);
    rd_kafka_conf_set_error_cb(pc, error_cb);
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    l->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, rderr, sizeof(rderr));
    if (l->producer == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka producer: %s", rderr);
        goto fail;
    }
    pc = NULL;
    /* /readyz asks the brokers for one topic's metadata, never for all topics: on a
     * cluster with thousands of partitions that answer takes longer than the probe waits */
    if (conf->ninputs > 0 &&
        (l->probe = rd_kafka_topic_new(l->producer, l->topics[conf->inputs[0]], NULL)) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "kafka topic %s: %s",
                    l->topics[conf->inputs[0]], rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }

    subs = rd_kafka_topic_partition_list_new((int)conf->ninputs);
    for (i = 0; i < conf->ninputs; i++)
        rd_kafka_topic_partition_list_add(subs, l->topics[conf->inputs[i]],
                                          RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(l->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    return l;
oom:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
fail:
    if (cc != NULL)
        rd_kafka_conf_destroy(cc);
    if (pc != NULL)
        rd_kafka_conf_destroy(pc);
    cwpp_loop_destroy(l);
    return NULL;
}

const char *cwpp_loop_topic(const cwpp_loop_t *l, cwpp_topic_id_t id)
{
    return l->topics[id];
}

void cwpp_loop_stop(cwpp_loop_t *l)
{
    if (l != NULL)
        l->stop = 1;
}

int cwpp_loop_ready(cwpp_loop_t *l, char *reason, size_t reason_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t             err;

    if (atomic_load(&l->failing)) {
        cwpp_seterr(reason, reason_size, 0, "batches are failing (database or broker down)");
        return 0;
    }
    err = rd_kafka_metadata(l->producer, 0, l->probe, &md, 1000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cwpp_seterr(reason, reason_size, 0, "kafka brokers do not answer: %s",
                    rd_kafka_err2str(err));
        return 0;
    }
    rd_kafka_metadata_destroy(md);
    return 1;
}


cwpp_reject_src_t cwpp_reject_src_of(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tt;
    cwpp_reject_src_t         src;

    src.topic = rd_kafka_topic_name(m->rkt);
    src.partition = m->partition;
    src.offset = m->offset;
    src.timestamp_ms = rd_kafka_message_timestamp(m, &tt);
    src.key = m->key;
    src.klen = m->key_len;
    src.value = m->payload;
    src.vlen = m->len;
    return src;
}

/* Errors that producing the same record again can never cure. */
static int permanent_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

/*
 * Replaces an output the broker can never accept by its dead letter (a prefix, its
 * length and SHA-256). A dead letter that is itself refused is replaced once more by one
 * that keeps no bytes at all; past that the record is given up, loudly. Returns 1 when e
 * now holds something to send, 0 when it was given up, -1 when no dead letter can be
 * made (no hook, out of memory): e is sent again as it is.
 */
static int replace_by_dead_letter(cwpp_loop_t *l, ob_entry_t *e, rd_kafka_resp_err_t err)
{
    cwpp_reject_src_t src;
    char              reason[512];
    ob_entry_t       *d;

    if (l->conf.reject == NULL)
        return -1;
    if (e->wraps >= 2) {
        e->wraps = 3; /* given up for good */
        cwpp_error("output_dropped", "a record of %zu bytes for %s cannot be delivered (%s) "
                   "and no dead letter of it fits either: it is dropped", e->vlen,
                   l->topics[e->topic], rd_kafka_err2str(err));
        return 0;
    }
    snprintf(reason, sizeof(reason), "the record for %s is %zu bytes (key %zu bytes) and "
             "the broker cannot accept it (%s); it was not delivered", l->topics[e->topic],
             e->vlen, e->klen, rd_kafka_err2str(err));
    src.topic = l->topics[e->topic];
    src.partition = -1;
    src.offset = -1;
    src.timestamp_ms = -1;
    src.key = e->key;
    src.klen = e->klen;
    src.value = e->value;
    src.vlen = e->vlen;
    outbox_clear(&l->conv);
    if (l->conf.reject(l->conf.reject_opaque, &src, "output_too_large", reason,
                       e->wraps == 0 ? SIZE_MAX : 0, &l->conv) != CWPP_OK ||
        l->conv.n != 1) {
        outbox_clear(&l->conv);
        return -1;
    }
    cwpp_error("output_dead_lettered", "%s", reason);
    cwpp_metric_add(l->m_dead_letters, 1);
    d = &l->conv.e[0];
    free(e->key);
    free(e->value);
    e->topic = d->topic;
    e->key = d->key;
    e->klen = d->klen;
    e->value = d->value;
    e->vlen = d->vlen;
    e->wraps++;
    l->conv.n = 0; /* the bytes are e's now */
    return 1;
}

/* Produces the entries of b that are not delivered yet (all of them the first time). */
static void produce_entries(cwpp_loop_t *l, inflight_t *b)
{
    size_t i;

    for (i = 0; i < b->ob.n; i++) {
        ob_entry_t         *e = &b->ob.e[i];
        rd_kafka_resp_err_t err;

        if ((e->done && e->err == RD_KAFKA_RESP_ERR_NO_ERROR) || e->wraps > 2)
            continue;
        if (e->done && permanent_error(e->err) && replace_by_dead_letter(l, e, e->err) == 0)
            continue; /* given up: stays done with its error */
        e->batch = b;
        e->done = 0;
        e->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        b->pending++;
        for (;;) {
            err = rd_kafka_producev(l->producer, RD_KAFKA_V_TOPIC(l->topics[e->topic]),
                                    RD_KAFKA_V_KEY(e->key, e->klen),
                                    RD_KAFKA_V_VALUE(e->value, e->vlen),
                                    RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(l->producer, 50);
                continue;
            }
            /* refused before sending (larger than message.max.bytes): send its dead
             * letter instead, at once */
            if (permanent_error(err)) {
                int r = replace_by_dead_letter(l, e, err);

                if (r == 1)
                    continue;
                if (r == 0) { /* given up */
                    e->done = 1;
                    e->err = err;
                    b->pending--;
                    err = RD_KAFKA_RESP_ERR_NO_ERROR;
                    goto next;
                }
            }
            break;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) { /* not queued: counts as a failed delivery */
            e->done = 1;
            e->err = err;
            b->pending--;
            b->nfailed++;
        }
    next:;
    }
}

static void inflight_free(inflight_t *b)
{
    outbox_clear(&b->ob);
    if (b->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(b->offsets);
    b->offsets = NULL;
    b->pending = b->nfailed = b->records = 0;
}

/*
 * Serves delivery reports (waiting up to wait_ms for the first) and completes finished
 * batches in FIFO order: failed outputs are produced again; a batch with all outputs
 * acknowledged has its offsets committed (asynchronously: a lost commit only means a
 * redelivery, which the services recognise) and is released.
 */
static void drain(cwpp_loop_t *l, int wait_ms)
{
    rd_kafka_poll(l->producer, wait_ms);
    if (atomic_exchange(&l->recommit, 0) && l->done->cnt > 0)
        rd_kafka_commit(l->consumer, l->done, l->stop ? 0 : 1);
    while (l->count > 0) {
        inflight_t *b = &l->ring[l->head];
        size_t      i;
        int64_t     lag = 0;

        if (b->pending > 0)
            break;
        if (b->nfailed > 0) {
            size_t failed = b->nfailed;

            for (i = 0; i < b->ob.n; i++)
                if (b->ob.e[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    cwpp_warn("delivery_failed", "record to %s not delivered (%s); sending it "
                              "again", l->topics[b->ob.e[i].topic],
                              rd_kafka_err2str(b->ob.e[i].err));
                    break;
                }
            cwpp_metric_add(l->m_delivery_err, (int64_t)failed);
            atomic_store(&l->failing, 1);
            b->nfailed = 0;
            produce_entries(l, b);
            break;
        }
        /* Asynchronous while running; synchronous once stopping, so the last commits
         * land before the consumer leaves the group. Never commit positions: only the
         * offsets of batches whose effect and outputs are done. */
        for (i = 0; i < (size_t)b->offsets->cnt; i++) {
            rd_kafka_topic_partition_t *d = rd_kafka_topic_partition_list_find(
                l->done, b->offsets->elems[i].topic, b->offsets->elems[i].partition);
            if (d == NULL)
                d = rd_kafka_topic_partition_list_add(l->done, b->offsets->elems[i].topic,
                                                      b->offsets->elems[i].partition);
            if (b->offsets->elems[i].offset > d->offset)
                d->offset = b->offsets->elems[i].offset;
        }
        atomic_store(&l->recommit, 0);
        if (b->offsets->cnt > 0) /* a tick consumed nothing: nothing to commit */
            rd_kafka_commit(l->consumer, l->done, l->stop ? 0 : 1);
        for (i = 0; i < (size_t)b->offsets->cnt; i++) {
            int64_t lo, hi;
            if (rd_kafka_get_watermark_offsets(l->consumer, b->offsets->elems[i].topic,
                                               b->offsets->elems[i].partition, &lo, &hi) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR && hi >= b->offsets->elems[i].offset)
                lag += hi - b->offsets->elems[i].offset;
        }
        cwpp_metric_set(l->m_lag, lag);
        cwpp_metric_add(l->m_produced, (int64_t)b->ob.n);
        cwpp_metric_add(l->m_batches, 1);
        cwpp_metric_observe(l->m_batch_seconds, (double)(cwpp_mono_ms() - b->started) / 1000.0);
        inflight_free(b);
        l->head = (l->head + 1) % CWPP_MAX_INFLIGHT;
        l->count--;
        if (l->count == 0)
            atomic_store(&l->failing, 0);
    }
}

/* Waits until every in-flight batch is committed. On stop, gives brokers that do not
 * acknowledge 10 s, then purges: those batches stay uncommitted and are redelivered. */
static int drain_all(cwpp_loop_t *l)
{
    int64_t deadline = 0;

    while (l->count > 0) {
        drain(l, 100);
        if (l->stop) {
            if (deadline == 0)
                deadline = cwpp_mono_ms() + 10000;
            if (cwpp_mono_ms() > deadline) {
                rd_kafka_purge(l->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                while (rd_kafka_outq_len(l->producer) > 0)
                    rd_kafka_poll(l->producer, 100);
                while (l->count > 0) {
                    inflight_free(&l->ring[l->head]);
                    l->head = (l->head + 1) % CWPP_MAX_INFLIGHT;
                    l->count--;
                }
                return CWPP_ETRANSIENT;
            }
        }
    }
    return CWPP_OK;
}

/* 1 when the consumer holds partitions and has read each of them to its end (cached
 * watermarks, no broker round trip), 0 when it holds some but is behind, -1 when it holds
 * none: timers must not decide "no answer came" while answers wait unread, e.g. during a
 * rebalance after a restart. */
static int caught_up(cwpp_loop_t *l)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    int                              i, ok;

    if (rd_kafka_assignment(l->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || a == NULL)
        return -1;
    if (a->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(a);
        return -1;
    }
    ok = rd_kafka_position(l->consumer, a) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok) {
        /* nothing consumed yet since the assignment: the position is unknown, and where
         * the group resumes (its committed offset) says whether records wait */
        int unknown = 0;

        for (i = 0; i < a->cnt; i++)
            unknown |= a->elems[i].offset < 0;
        if (unknown) {
            rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(a);

            if (rd_kafka_committed(l->consumer, c, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR)
                ok = 0;
            for (i = 0; ok && i < a->cnt; i++)
                if (a->elems[i].offset < 0)
                    a->elems[i].offset = c->elems[i].offset;
            rd_kafka_topic_partition_list_destroy(c);
        }
    }
    for (i = 0; ok && i < a->cnt; i++) {
        int64_t lo = -1, hi = -1;

        if (rd_kafka_get_watermark_offsets(l->consumer, a->elems[i].topic, a->elems[i].partition,
                                           &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
            ok = 0;
        else if (hi > lo && a->elems[i].offset < hi)
            ok = 0; /* unread records (no committed offset counts as unread too) */
    }
    rd_kafka_topic_partition_list_destroy(a);
    return ok;
}

/* The offsets after the batch's last record of each partition. */
static rd_kafka_topic_partition_list_t *batch_offsets(cwpp_loop_t *l, size_t n)
{
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(16);
    size_t                           i;

    for (i = 0; i < n; i++) {
        rd_kafka_message_t         *m = l->msgs[i];
        const char                 *t = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(offs, t, m->partition);

        if (p == NULL)
            p = rd_kafka_topic_partition_list_add(offs, t, m->partition);
        if (m->offset + 1 > p->offset)
            p->offset = m->offset + 1;
    }
    return offs;
}

/* ------------------------------------------------------------------ holding */

/* run_batch's answer when a rebalance took partitions away while its batch waited: the
 * batch is dropped unapplied and unconsumed (the partitions' new owner reads it). */
#define LOOP_ABANDONED (-2)

/* Pauses the assigned partitions, once: the loop is about to wait (for a dependency, or
 * for room among in-flight batches) and must keep polling without consuming. */
static void hold_begin(cwpp_loop_t *l)
{
    rd_kafka_topic_partition_list_t *a = NULL;

    if (l->paused)
        return;
    l->paused = 1;
    l->held_since = cwpp_mono_ms();
    if (rd_kafka_assignment(l->consumer, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a != NULL) {
        if (a->cnt > 0)
            rd_kafka_pause_partitions(l->consumer, a);
        rd_kafka_topic_partition_list_destroy(a);
    }
}

/* Polls the consumer up to ms while paused: heartbeats, max.poll.interval and
 * rebalances are served. A record that still arrives (fetched before the pause) is not
 * consumed: its partition is rewound to it when the hold ends. */
static void hold_poll(cwpp_loop_t *l, int ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(l->consumer, ms);

    if (m == NULL)
        return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char                 *t = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p =
            rd_kafka_topic_partition_list_find(l->rewind, t, m->partition);

        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(l->rewind, t, m->partition);
            p->offset = m->offset;
        } else if (m->offset < p->offset) {
            p->offset = m->offset;
        }
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        cwpp_warn("consume_error", "%s", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
}

/* Ends the hold: rewinds the partitions that returned records meanwhile and resumes the
 * whole assignment. */
static void hold_end(cwpp_loop_t *l)
{
    rd_kafka_topic_partition_list_t *a = NULL, *seek;
    int64_t                          held;
    int                              i;

    if (!l->paused)
        return;
    l->paused = 0;
    held = cwpp_mono_ms() - l->held_since + l->held_ms;
    cwpp_metric_add(l->m_held, held / 1000);
    l->held_ms = held % 1000;
    if (rd_kafka_assignment(l->consumer, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || a == NULL) {
        l->rewind->cnt = 0;
        return;
    }
    seek = rd_kafka_topic_partition_list_new(l->rewind->cnt > 0 ? l->rewind->cnt : 1);
    for (i = 0; i < l->rewind->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &l->rewind->elems[i];

        if (rd_kafka_topic_partition_list_find(a, r->topic, r->partition) != NULL)
            rd_kafka_topic_partition_list_add(seek, r->topic, r->partition)->offset = r->offset;
    }
    if (seek->cnt > 0) {
        rd_kafka_error_t *err = rd_kafka_seek_partitions(l->consumer, seek, 5000);

        if (err != NULL) {
            cwpp_warn("seek_failed", "rewinding %d partition(s): %s", seek->cnt,
                      rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
        }
    }
    rd_kafka_topic_partition_list_destroy(seek);
    l->rewind->cnt = 0;
    if (a->cnt > 0)
        rd_kafka_resume_partitions(l->consumer, a);
    rd_kafka_topic_partition_list_destroy(a);
}

/* Waits ms (less if stopped) holding the input, earlier batches completing meanwhile. */
static void hold_wait(cwpp_loop_t *l, int ms)
{
    int64_t until = cwpp_mono_ms() + ms;

    hold_begin(l);
    while (!l->stop) {
        int64_t left = until - cwpp_mono_ms();

        if (left <= 0)
            break;
        drain(l, 0);
        hold_poll(l, left > 100 ? 100 : (int)left);
    }
}

/* The backoff after a failed attempt: CWPP_OK to try again, CWPP_ETRANSIENT when
 * stopping, LOOP_ABANDONED when a rebalance took partitions away meanwhile. */
static int retry_wait(cwpp_loop_t *l, int *backoff, unsigned revokes0)
{
    if (!l->stop)
        hold_wait(l, *backoff);
    if (l->stop)
        return CWPP_ETRANSIENT;
    if (l->revokes != revokes0) {
        cwpp_warn("batch_abandoned", "partitions were reassigned while the batch waited; its "
                  "records go to their new owner unapplied");
        return LOOP_ABANDONED;
    }
    *backoff = *backoff * 2 > l->conf.retry_max_ms ? l->conf.retry_max_ms : *backoff * 2;
    return CWPP_OK;
}

/*
 * Produces the records of ob now and waits for their acknowledgement (SIGTERM ends the
 * wait). Returns 0 when all are acknowledged, else CWPP_ETRANSIENT with errstr.
 */
static int deliver_now(cwpp_loop_t *l, cwpp_outbox_t *ob, char *errstr, size_t errstr_size)
{
    size_t i, left = 0;

    for (i = 0; i < ob->n; i++) {
        ob_entry_t         *e = &ob->e[i];
        rd_kafka_resp_err_t err;

        e->batch = NULL;
        e->done = 0;
        e->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        while ((err = rd_kafka_producev(l->producer, RD_KAFKA_V_TOPIC(l->topics[e->topic]),
                                        RD_KAFKA_V_KEY(e->key, e->klen),
                                        RD_KAFKA_V_VALUE(e->value, e->vlen),
                                        RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(l->producer, 50);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            e->done = 1;
            e->err = err;
        }
    }
    for (;;) {
        left = 0;
        for (i = 0; i < ob->n; i++)
            left += !ob->e[i].done;
        if (left == 0 || l->stop)
            break;
        rd_kafka_poll(l->producer, 100);
    }
    if (left > 0) {
        /* stopping: the records may still be delivered; their entries must outlive it */
        rd_kafka_purge(l->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        while (rd_kafka_outq_len(l->producer) > 0)
            rd_kafka_poll(l->producer, 100);
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "stopping");
    }
    for (i = 0; i < ob->n; i++)
        if (ob->e[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "dead letter to %s not "
                               "delivered: %s", l->topics[ob->e[i].topic],
                               rd_kafka_err2str(ob->e[i].err));
    return CWPP_OK;
}

/*
 * The batch function refused some record's data: applies the batch one record at a
 * time, each record its own call (its own transaction), into l->outbox; a record whose
 * own call is refused too is dead-lettered ("db_refused") and the rest goes on. Transient
 * failures are retried as for a batch. The dead letter is delivered before the next
 * record is applied: once a later record of its partition is applied, the service's
 * fence treats the refused one as done, and a crash must not lose its dead letter.
 */
static int run_singly(cwpp_loop_t *l, size_t n, cwpp_batch_fn fn, void *opaque,
                      unsigned revokes0)
{
    char   errstr[512];
    size_t i;
    int    rc;

    outbox_clear(&l->outbox);
    for (i = 0; i < n; i++) {
        rd_kafka_message_t *m = l->msgs[i];
        int                 backoff = 100;

        for (;;) {
            outbox_clear(&l->one);
            errstr[0] = '\0';
            rc = fn(opaque, &l->msgs[i], 1, &l->one, errstr, sizeof(errstr));
            if (rc == CWPP_OK) {
                rc = cwpp_outbox_move(&l->outbox, &l->one);
            } else if (rc == CWPP_EDATA) {
                cwpp_reject_src_t src = cwpp_reject_src_of(m);
                char              reason[700];

                outbox_clear(&l->one);
                snprintf(reason, sizeof(reason), "the database refused the record: %s",
                         errstr);
                rc = l->conf.reject(l->conf.reject_opaque, &src, "db_refused", reason, SIZE_MAX,
                                    &l->one);
                if (rc == CWPP_OK)
                    rc = deliver_now(l, &l->one, errstr, sizeof(errstr));
                outbox_clear(&l->one);
                if (rc == CWPP_OK) {
                    cwpp_error("record_dead_lettered", "%s [%d] offset %lld: %s", src.topic,
                               (int)src.partition, (long long)src.offset, reason);
                    cwpp_metric_add(l->m_dead_letters, 1);
                }
            }
            if (rc == CWPP_OK)
                break;
            atomic_store(&l->failing, 1);
            cwpp_metric_add(l->m_retries, 1);
            cwpp_warn("batch_retry", "record %zu of %zu not applied (%s: %s); retrying in %d ms",
                      i + 1, n, cwpp_strerror(rc), errstr, backoff);
            if ((rc = retry_wait(l, &backoff, revokes0)) != CWPP_OK)
                return rc;
        }
    }
    return CWPP_OK;
}

/* Applies the batch's effect (retrying while it fails), then hands its outputs and
 * offsets to the in-flight FIFO. Returns CWPP_ETRANSIENT when stopped first,
 * LOOP_ABANDONED when its partitions went to another member meanwhile. */
static int run_batch(cwpp_loop_t *l, size_t n, int64_t started, cwpp_batch_fn fn, void *opaque)
{
    char          errstr[512];
    int           backoff = 100, rc;
    unsigned      revokes0 = l->revokes;
    int64_t       full_since = 0;
    inflight_t   *b;
    cwpp_outbox_t tmp;

    cwpp_metric_add(l->m_consumed, (int64_t)n);
    if (n > 0)
        cwpp_metric_observe(l->m_batch_size, (double)n);
    for (;;) {
        outbox_clear(&l->outbox);
        errstr[0] = '\0';
        rc = fn(opaque, l->msgs, n, &l->outbox, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            break;
        if (rc == CWPP_EDATA && n > 0 && l->conf.reject != NULL) {
            cwpp_warn("db_data_error", "the database refused a record of the batch of %zu (%s); "
                      "applying it record by record", n, errstr);
            rc = run_singly(l, n, fn, opaque, revokes0);
            if (rc == CWPP_OK)
                break;
            hold_end(l);
            return rc;
        }
        atomic_store(&l->failing, 1);
        cwpp_metric_add(l->m_retries, 1);
        cwpp_warn("batch_retry", "batch of %zu not applied (%s: %s); retrying in %d ms", n,
                  cwpp_strerror(rc), errstr, backoff);
        if ((rc = retry_wait(l, &backoff, revokes0)) != CWPP_OK) {
            hold_end(l);
            return rc;
        }
    }
    hold_end(l);
    atomic_store(&l->failing, 0);
    /* Room among the in-flight batches: after a second of waiting (brokers slow or
     * down) the input is held so the group membership survives. The effect is durable
     * now: a rebalance meanwhile does not undo it (redelivered records are recognised). */
    while (l->count == CWPP_MAX_INFLIGHT) {
        if (full_since == 0)
            full_since = cwpp_mono_ms();
        if (cwpp_mono_ms() - full_since < 1000) {
            drain(l, 100);
            continue;
        }
        if (l->stop && cwpp_mono_ms() - full_since > 10000) {
            hold_end(l);
            return CWPP_ETRANSIENT; /* outputs unsent, offsets uncommitted: redelivered */
        }
        hold_begin(l);
        drain(l, 50);
        hold_poll(l, 10);
    }
    hold_end(l);
    b = &l->ring[(l->head + l->count) % CWPP_MAX_INFLIGHT];
    /* the filled outbox becomes the batch's; the batch's empty one is reused */
    tmp = b->ob;
    b->ob = l->outbox;
    l->outbox = tmp;
    b->offsets = batch_offsets(l, n);
    b->started = started;
    b->records = n;
    l->count++;
    produce_entries(l, b);
    drain(l, 0);
    return CWPP_OK;
}

int cwpp_loop_run(cwpp_loop_t *l, cwpp_batch_fn fn, void *opaque)
{
    size_t i, n;
    int    rc = CWPP_OK;

    int64_t next_tick = l->conf.tick_ms > 0 ? cwpp_mono_ms() : INT64_MAX;
    int64_t last_tick = cwpp_mono_ms();

    cwpp_info("loop_start", "consuming as group %s", l->conf.group_id);
    while (!l->stop) {
        int64_t started = 0, deadline = 0;
        int     tick = 0, lingering = 0;

        n = 0;
        while (n < (size_t)l->conf.batch_max_messages && !l->stop) {
            int                 timeout;
            rd_kafka_message_t *m;

            if (n == 0) {
                int64_t now = cwpp_mono_ms();

                if (now >= next_tick) {
                    int cu = caught_up(l);

                    /* under input that never lets up, the timers still run (later) */
                    if (cu == 1 || (cu == 0 && now - last_tick >= 10000 &&
                                    now - last_tick >= 10 * (int64_t)l->conf.tick_ms)) {
                        tick = 1;
                        break;
                    }
                    next_tick = now + 100; /* look again soon */
                }
                timeout = l->count > 0 ? 10 : 200;
                if (next_tick - now < timeout)
                    timeout = (int)(next_tick - now);
            } else {
                int64_t left = deadline - cwpp_mono_ms();
                if (left <= 0)
                    break;
                timeout = (int)left;
                /* Once the input is read to the end (no record for batch_linger_ms;
                 * 0: none already fetched), the batch closes: at everyday rates a
                 * record does not wait out batch_max_ms for others that are not there
                 * yet. Under a backlog the poll keeps answering at once and the batch
                 * fills up. */
                lingering = l->conf.batch_linger_ms < timeout;
                if (lingering)
                    timeout = l->conf.batch_linger_ms;
            }
            m = rd_kafka_consumer_poll(l->consumer, timeout);
            if (m == NULL) {
                /* Idle: complete in-flight batches (their commits must not wait for
                 * the next record). */
                drain(l, 0);
                if (lingering)
                    break;
                continue;
            }
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    cwpp_warn("consume_error", "%s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            if (n == 0) {
                started = cwpp_mono_ms();
                deadline = started + l->conf.batch_max_ms;
            }
            l->msgs[n++] = m;
        }
        if (n > 0) {
            rc = run_batch(l, n, started, fn, opaque);
        } else if (tick) {
            /* the timer: fn with no records, its outputs produced like a batch's */
            next_tick = cwpp_mono_ms() + l->conf.tick_ms;
            last_tick = cwpp_mono_ms();
            rc = run_batch(l, 0, cwpp_mono_ms(), fn, opaque);
        } else {
            drain(l, 0);
        }
        for (i = 0; i < n; i++)
            rd_kafka_message_destroy(l->msgs[i]);
        if (rc == LOOP_ABANDONED)
            rc = CWPP_OK;
        if (rc != CWPP_OK)
            break;
    }
    if (drain_all(l) != CWPP_OK)
        rc = CWPP_ETRANSIENT;
    if (atomic_load(&l->fatal))
        return CWPP_EIO;
    cwpp_info("loop_stop", "stopped%s", rc == CWPP_OK ? " after committing the last batch"
                                                      : "; the unfinished batch will be redelivered");
    return CWPP_OK;
}

void cwpp_loop_destroy(cwpp_loop_t *l)
{
    size_t i;

    if (l == NULL)
        return;
    if (l->consumer != NULL) {
        rd_kafka_consumer_close(l->consumer);
        rd_kafka_destroy(l->consumer);
    }
    if (l->probe != NULL)
        rd_kafka_topic_destroy(l->probe);
    if (l->producer != NULL) {
        rd_kafka_flush(l->producer, 5000);
        rd_kafka_destroy(l->producer);
    }
    outbox_clear(&l->outbox);
    free(l->outbox.e);
    outbox_clear(&l->one);
    free(l->one.e);
    outbox_clear(&l->conv);
    free(l->conv.e);
    if (l->rewind != NULL)
        rd_kafka_topic_partition_list_destroy(l->rewind);
    for (i = 0; i < CWPP_MAX_INFLIGHT; i++) {
        inflight_free(&l->ring[i]);
        free(l->ring[i].ob.e);
    }
    free(l->msgs);
    if (l->done != NULL)
        rd_kafka_topic_partition_list_destroy(l->done);
    for (i = 0; i < CWPP_TOPIC__COUNT; i++)
        free(l->topics[i]);
    free(l);
}
