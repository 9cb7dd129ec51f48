/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd.c: the command transport of cwpp-api. A change is a Command record on
 * <prefix>commands, keyed by its id, whose actor is the authenticated user; the owning
 * service answers on <prefix>command-results.
 *
 * One idempotent producer (acks=all) sends for every request thread. One consumer,
 * outside any group's assignment logic (it assigns itself every partition of the results
 * topic, at the end as of start-up, and commits nothing), reads every answer; a thread
 * polls both clients. A request registers its command id as a waiter BEFORE producing,
 * so the answer cannot pass unseen; the answer (the first "ok" or "error"; "progress"
 * records only update what GET /api/v1/commands/{id} shows) wakes it. Answers of the last
 * RECENT commands are remembered for that route; other replicas' answers are read and
 * dropped.
 */
#include "api_internal.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cwpp_avro.h"
#include "cwpp_kafka.h"
#include "cwpp_log.h"

#define RECENT 512

typedef struct waiter {
    char           id[48];
    json_t        *answer;    /* set by the poller */
    int            delivered; /* 0 waiting, 1 acknowledged, -1 failed */
    rd_kafka_resp_err_t err;
    struct waiter *next;
} waiter_t;

typedef struct recent {
    char    id[48];
    json_t *doc;
} recent_t;

struct api_cmd {
    rd_kafka_t       *prod, *cons;
    char              cmd_topic[256], res_topic[256];
    cwpp_avro_type_t *tc, *tr;
    pthread_mutex_t   lock; /* waiters, recent, the encoder */
    pthread_cond_t    cond;
    waiter_t         *waiters;
    recent_t          recent[RECENT];
    size_t            next_recent;
    avro_value_t      vc, vr;
    int               have_vc, have_vr;
    pthread_t         thread;
    int               have_thread;
    atomic_int        stop, assigned, fatal;
    int               timeout_ms;
    cwpp_metric_t    *m_sent, *m_answered, *m_timeouts;
};

static rd_kafka_conf_t *client_conf(const cwpp_common_conf_t *common, const cwpp_kvlist_t *props,
                                    char *errstr, size_t errstr_size)
{
    return cwpp_kafka_conf(common->kafka_brokers, props, errstr, errstr_size);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    api_cmd_t *c = opaque;
    waiter_t  *w = m->_private;

    (void)rk;
    if (w == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    w->err = m->err;
    w->delivered = m->err == 0 ? 1 : -1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Assigns every partition of the results topic at its end. 0, or -1 (retried later). */
static int assign_end(api_cmd_t *c)
{
    const rd_kafka_metadata_t       *md = NULL;
    rd_kafka_topic_t                *rkt = rd_kafka_topic_new(c->cons, c->res_topic, NULL);
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t              err;
    int                              i, np;

    err = rd_kafka_metadata(c->cons, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    if (err != 0 || md->topic_cnt != 1 || md->topics[0].err != 0 ||
        md->topics[0].partition_cnt == 0) {
        cwpp_log(CWPP_LOG_WARN, "api_results_unavailable", "cannot read topic %s: %s",
                 c->res_topic, err != 0 ? rd_kafka_err2str(err) : "not there yet");
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    l = rd_kafka_topic_partition_list_new(np);
    for (i = 0; i < np; i++) {
        int64_t lo = 0, hi = 0;

        err = rd_kafka_query_watermark_offsets(c->cons, c->res_topic, i, &lo, &hi, 5000);
        if (err != 0) {
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        rd_kafka_topic_partition_list_add(l, c->res_topic, i)->offset = hi;
    }
    err = rd_kafka_assign(c->cons, l);
    rd_kafka_topic_partition_list_destroy(l);
    return err == 0 ? 0 : -1;
}

static void remember(api_cmd_t *c, const char *id, json_t *doc)
{
    size_t i;

    for (i = 0; i < RECENT; i++) {
        if (c->recent[i].doc != NULL && strcmp(c->recent[i].id, id) == 0) {
            json_decref(c->recent[i].doc);
            c->recent[i].doc = json_incref(doc);
            return;
        }
    }
    i = c->next_recent++ % RECENT;
    json_decref(c->recent[i].doc);
    snprintf(c->recent[i].id, sizeof(c->recent[i].id), "%s", id);
    c->recent[i].doc = json_incref(doc);
}

/* One CommandResult record: wake its waiter, remember it. */
static void on_result(api_cmd_t *c, const rd_kafka_message_t *m)
{
    char        errstr[256];
    const char *id = NULL, *st = NULL, *msg = NULL, *rj = NULL, *svc = NULL, *type = NULL;
    const char *actor = NULL;
    json_t     *doc, *result;
    waiter_t   *w;

    if (m->key_len == 0 || m->key_len >= sizeof(w->id))
        return;
    pthread_mutex_lock(&c->lock);
    if (cwpp_avro_decode(c->tr, m->payload, m->len, &c->vr, errstr, sizeof(errstr)) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "command_id", &id) != CWPP_OK ||
        cwpp_avro_get_enum(&c->vr, "status", &st) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "message", &msg) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "result_json", &rj) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "service", &svc) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "type", &type) != CWPP_OK ||
        cwpp_avro_get_str(&c->vr, "actor", &actor) != CWPP_OK || strlen(id) >= sizeof(w->id)) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    result = json_loads(rj, 0, NULL);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "command_id", id, "service", svc,
                    "type", type, "actor", actor, "status", st, "message", msg, "result",
                    json_is_object(result) ? result : json_object());
    if (!json_is_object(result))
        json_decref(result);
    if (doc != NULL) {
        remember(c, id, doc);
        if (strcmp(st, "progress") != 0) {
            for (w = c->waiters; w != NULL; w = w->next) {
                if (w->answer == NULL && strcmp(w->id, id) == 0) {
                    w->answer = json_incref(doc);
                    pthread_cond_broadcast(&c->cond);
                }
            }
        }
        json_decref(doc);
    }
    pthread_mutex_unlock(&c->lock);
}

static void *poller(void *arg)
{
    api_cmd_t *c = arg;
    int64_t    next_try = 0;

    while (!atomic_load(&c->stop)) {
        rd_kafka_message_t *m;

        rd_kafka_poll(c->prod, 0);
        if (!atomic_load(&c->assigned)) {
            if (cwpp_mono_ms() >= next_try) {
                if (assign_end(c) == 0)
                    atomic_store(&c->assigned, 1);
                else
                    next_try = cwpp_mono_ms() + 2000;
            }
            usleep(20 * 1000);
            continue;
        }
        m = rd_kafka_consumer_poll(c->cons, 20);
        if (m == NULL)
            continue;
        if (m->err == 0)
            on_result(c, m);
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            cwpp_log(CWPP_LOG_WARN, "api_results_error", "%s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

void api_cmd_destroy(api_cmd_t *c)
{
    size_t i;

    if (c == NULL)
        return;
    atomic_store(&c->stop, 1);
    if (c->have_thread)
        pthread_join(c->thread, NULL);
    if (c->prod != NULL) {
        rd_kafka_flush(c->prod, 5000);
        rd_kafka_destroy(c->prod);
    }
    if (c->cons != NULL) {
        rd_kafka_consumer_close(c->cons);
        rd_kafka_destroy(c->cons);
    }
    if (c->have_vc)
        avro_value_decref(&c->vc);
    if (c->have_vr)
        avro_value_decref(&c->vr);
    cwpp_avro_type_destroy(c->tc);
    cwpp_avro_type_destroy(c->tr);
    for (i = 0; i < RECENT; i++)
        json_decref(c->recent[i].doc);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

api_cmd_t *api_cmd_new(const cwpp_common_conf_t *common, const cwpp_kvlist_t *props,
                       int timeout_ms, cwpp_metrics_t *metrics, char *errstr,
                       size_t errstr_size)
{
    api_cmd_t       *c = calloc(1, sizeof(*c));
    rd_kafka_conf_t *pc = NULL, *cc = NULL;
    char             group[64], hex[17];

    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->timeout_ms = timeout_ms;
    cwpp_topic_name(common->topic_prefix, CWPP_TOPIC_COMMANDS, c->cmd_topic, sizeof(c->cmd_topic));
    cwpp_topic_name(common->topic_prefix, CWPP_TOPIC_COMMAND_RESULTS, c->res_topic,
                    sizeof(c->res_topic));
    if ((c->tc = cwpp_avro_type_builtin("command", errstr, errstr_size)) == NULL ||
        (c->tr = cwpp_avro_type_builtin("command_result", errstr, errstr_size)) == NULL)
        goto fail;
    if (cwpp_avro_value_new(c->tc, &c->vc) != CWPP_OK || !(c->have_vc = 1) ||
        cwpp_avro_value_new(c->tr, &c->vr) != CWPP_OK || !(c->have_vr = 1)) {
        snprintf(errstr, errstr_size, "cannot make Avro values");
        goto fail;
    }
    if ((pc = client_conf(common, props, errstr, errstr_size)) == NULL)
        goto fail;
    rd_kafka_conf_set(pc, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(pc, "acks", "all", NULL, 0);
    rd_kafka_conf_set(pc, "linger.ms", "0", NULL, 0);
    /* a broker that takes nothing fails the request in bounded time */
    rd_kafka_conf_set(pc, "message.timeout.ms", "30000", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, c);
    if ((c->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, errstr_size)) == NULL)
        goto fail;
    pc = NULL;
    if ((cc = client_conf(common, props, errstr, errstr_size)) == NULL)
        goto fail;
    api_random_hex(hex, 8);
    snprintf(group, sizeof(group), "cwpp-api-results-%s", hex);
    rd_kafka_conf_set(cc, "group.id", group, NULL, 0);
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(cc, "enable.partition.eof", "false", NULL, 0);
    if ((c->cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, errstr_size)) == NULL)
        goto fail;
    cc = NULL;
    c->m_sent = cwpp_counter(metrics, "cwpp_api_commands_sent_total", "Commands sent.");
    c->m_answered = cwpp_counter(metrics, "cwpp_api_commands_answered_total",
                                 "Commands answered in time.");
    c->m_timeouts = cwpp_counter(metrics, "cwpp_api_commands_pending_total",
                                 "Commands not answered within api.command.timeout.ms (202).");
    if (assign_end(c) == 0)
        atomic_store(&c->assigned, 1);
    if (pthread_create(&c->thread, NULL, poller, c) != 0) {
        snprintf(errstr, errstr_size, "cannot start the results thread");
        goto fail;
    }
    c->have_thread = 1;
    return c;
fail:
    if (pc != NULL)
        rd_kafka_conf_destroy(pc);
    if (cc != NULL)
        rd_kafka_conf_destroy(cc);
    api_cmd_destroy(c);
    return NULL;
}

int api_cmd_ready(api_cmd_t *c, char *why, size_t why_size)
{
    if (!atomic_load(&c->assigned)) {
        snprintf(why, why_size, "not reading %s yet", c->res_topic);
        return 0;
    }
    return 1;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void unlink_waiter(api_cmd_t *c, waiter_t *w)
{
    waiter_t **pp;

    for (pp = &c->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
}

int api_cmd_send(api_cmd_t *c, const char *service, const char *type, const char *actor,
                 json_t *payload, char *id, size_t id_size, json_t **answer, char *errstr,
                 size_t errstr_size)
{
    waiter_t            w;
    cwpp_buf_t          buf = {0};
    char               *pj = json_dumps(payload, JSON_COMPACT), hex[33];
    rd_kafka_resp_err_t err;
    struct timespec     ts;
    int                 rc = -1, erc;

    *answer = NULL;
    memset(&w, 0, sizeof(w));
    api_random_hex(hex, 16);
    snprintf(w.id, sizeof(w.id), "api-%s", hex);
    snprintf(id, id_size, "%s", w.id);
    if (pj == NULL) {
        snprintf(errstr, errstr_size, "cannot encode the payload");
        return -1;
    }
    pthread_mutex_lock(&c->lock);
    if (cwpp_avro_set_str(&c->vc, "command_id", w.id) != CWPP_OK ||
        cwpp_avro_set_str(&c->vc, "service", service) != CWPP_OK ||
        cwpp_avro_set_str(&c->vc, "type", type) != CWPP_OK ||
        cwpp_avro_set_str(&c->vc, "actor", actor) != CWPP_OK ||
        cwpp_avro_set_long(&c->vc, "issued_at_ms", cwpp_now_ms()) != CWPP_OK ||
        cwpp_avro_set_str(&c->vc, "payload_json", pj) != CWPP_OK ||
        cwpp_avro_encode(c->tc, &c->vc, &buf, errstr, errstr_size) != CWPP_OK) {
        pthread_mutex_unlock(&c->lock);
        free(pj);
        cwpp_buf_free(&buf);
        snprintf(errstr, errstr_size, "cannot encode the command");
        return -1;
    }
    free(pj);
    w.next = c->waiters;
    c->waiters = &w;
    pthread_mutex_unlock(&c->lock);

    err = rd_kafka_producev(c->prod, RD_KAFKA_V_TOPIC(c->cmd_topic),
                            RD_KAFKA_V_KEY(w.id, strlen(w.id)),
                            RD_KAFKA_V_VALUE(buf.data, buf.len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&w),
                            RD_KAFKA_V_END);
    cwpp_buf_free(&buf);
    pthread_mutex_lock(&c->lock);
    if (err != 0) {
        snprintf(errstr, errstr_size, "cannot send the command: %s", rd_kafka_err2str(err));
        goto out;
    }
    cwpp_metric_add(c->m_sent, 1);
    deadline_in(&ts, c->timeout_ms);
    /* the delivery report first: it holds a pointer to w, which must outlive it */
    erc = 0;
    while (w.delivered == 0 && erc != ETIMEDOUT)
        erc = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    while (w.delivered == 0) /* the producer's message.timeout.ms ends this wait */
        pthread_cond_wait(&c->cond, &c->lock);
    if (w.delivered < 0) {
        snprintf(errstr, errstr_size, "the broker did not take the command: %s",
                 rd_kafka_err2str(w.err));
        goto out;
    }
    while (w.answer == NULL && erc != ETIMEDOUT)
        erc = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    if (w.answer != NULL) {
        *answer = w.answer;
        w.answer = NULL;
        cwpp_metric_add(c->m_answered, 1);
        rc = 1;
    } else {
        cwpp_metric_add(c->m_timeouts, 1);
        rc = 0;
    }
out:
    unlink_waiter(c, &w);
    pthread_mutex_unlock(&c->lock);
    json_decref(w.answer);
    return rc;
}

json_t *api_cmd_seen(api_cmd_t *c, const char *id)
{
    json_t *doc = NULL;
    size_t  i;

    pthread_mutex_lock(&c->lock);
    for (i = 0; i < RECENT && doc == NULL; i++)
        if (c->recent[i].doc != NULL && strcmp(c->recent[i].id, id) == 0)
            doc = json_deep_copy(c->recent[i].doc);
    pthread_mutex_unlock(&c->lock);
    return doc;
}
