/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kafka: the shared loop's guarantees (docs/style.md convention 8; docs/architecture.md
 * "Guarantees and where each is kept"), under fault injection with librdkafka's mock
 * cluster (the real broker runs in the integration tests):
 *  - a batch whose effect fails transiently is retried with the same records, never
 *    skipped, and its offsets are not committed before it succeeds;
 *  - produce errors from the broker are retried until every output is acknowledged;
 *  - offsets are committed for every consumed record after the outputs are delivered;
 *  - a stop finishes and commits the current batch.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_kafka.h"
#include <librdkafka/rdkafka_mock.h>
#include "cwpp_log.h"

#define N_RECORDS 200

typedef struct harness {
    rd_kafka_t              *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char                     brokers[256];
} harness_t;

static void harness_start(harness_t *h)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char             err[256];

    assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof(err)), 0);
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    h->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(h->mock_rk);
    h->mc = rd_kafka_handle_mock_cluster(h->mock_rk);
    assert_non_null(h->mc);
    snprintf(h->brokers, sizeof(h->brokers), "%s", rd_kafka_mock_cluster_bootstraps(h->mc));
    assert_int_equal(rd_kafka_mock_topic_create(h->mc, "t.alerts.raw", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(h->mc, "t.alerts.normalized", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(h->mc, "t.alerts.rejected", 2, 1), 0);
}

static void harness_produce_inputs(harness_t *h, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "rec-%d", i);
        assert_int_equal(rd_kafka_producev(h->mock_rk, RD_KAFKA_V_TOPIC("t.alerts.raw"),
                                           RD_KAFKA_V_KEY(v, strlen(v)),
                                           RD_KAFKA_V_VALUE(v, strlen(v)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END), 0);
    }
    assert_int_equal(rd_kafka_flush(h->mock_rk, 10000), 0);
}

typedef struct svc {
    cwpp_loop_t *loop;
    int          seen;          /* records applied (successful attempts) */
    int          attempts;      /* batch function calls */
    int          fail_first;    /* fail this many attempts first */
    int          retried_same;  /* a retried attempt saw the same first record */
    char         last_failed_first[32];
    int          target;
    const char  *refused;       /* a batch holding this record is refused (CWPP_EDATA) */
    const char  *too_large;     /* this record's output is larger than the broker takes */
    int64_t      fail_for_ms;   /* fail transiently this long from the first call */
    int64_t      fail_until_ms;
    int          rejects;       /* reject hook calls */
    char         reject_code[32];
    int64_t      reject_offset;
    size_t       reject_vlen;
} svc_t;

/* The reject hook a service installs: a small record on alerts.rejected naming the code. */
static int reject_fn(void *opaque, const cwpp_reject_src_t *src, const char *code,
                     const char *reason, size_t value_max, cwpp_outbox_t *out)
{
    svc_t *s = opaque;
    char   v[128];

    (void)value_max;
    assert_non_null(reason);
    s->rejects++;
    snprintf(s->reject_code, sizeof(s->reject_code), "%s", code);
    s->reject_offset = src->offset;
    s->reject_vlen = src->vlen;
    snprintf(v, sizeof(v), "%s:%s:%zu", code, src->topic, src->vlen);
    return cwpp_outbox_add(out, CWPP_TOPIC_ALERTS_REJECTED, src->key, src->klen, v, strlen(v));
}

static int batch_fn(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                    char *errstr, size_t errstr_size)
{
    svc_t *s = opaque;
    size_t i;
    char   first[32];

    s->attempts++;
    snprintf(first, sizeof(first), "%.*s", (int)msgs[0]->len, (const char *)msgs[0]->payload);
    if (s->last_failed_first[0] != '\0') {
        if (strcmp(first, s->last_failed_first) == 0)
            s->retried_same++;
        s->last_failed_first[0] = '\0';
    }
    if (s->fail_for_ms > 0 && s->fail_until_ms == 0)
        s->fail_until_ms = cwpp_mono_ms() + s->fail_for_ms;
    if (s->fail_until_ms > 0 && cwpp_mono_ms() < s->fail_until_ms) {
        snprintf(errstr, errstr_size, "database is down (injected)");
        return CWPP_ETRANSIENT;
    }
    if (s->refused != NULL)
        for (i = 0; i < n; i++)
            if (msgs[i]->len == strlen(s->refused) &&
                memcmp(msgs[i]->payload, s->refused, msgs[i]->len) == 0) {
                snprintf(errstr, errstr_size, "value too long for type (SQLSTATE 22001)");
                return CWPP_EDATA;
            }
    if (s->fail_first > 0) {
        s->fail_first--;
        snprintf(s->last_failed_first, sizeof(s->last_failed_first), "%s", first);
        snprintf(errstr, errstr_size, "database is down (injected)");
        return CWPP_ETRANSIENT;
    }
    for (i = 0; i < n; i++) {
        if (s->too_large != NULL && msgs[i]->len == strlen(s->too_large) &&
            memcmp(msgs[i]->payload, s->too_large, msgs[i]->len) == 0) {
            size_t big = 1100000; /* over librdkafka's message.max.bytes (1,000,000) */
            char  *v = calloc(1, big);

            assert_non_null(v);
            assert_int_equal(cwpp_outbox_add(out, CWPP_TOPIC_ALERTS_NORMALIZED, msgs[i]->key,
                                             msgs[i]->key_len, v, big), 0);
            free(v);
            continue;
        }
        assert_int_equal(cwpp_outbox_add(out, CWPP_TOPIC_ALERTS_NORMALIZED, msgs[i]->key,
                                         msgs[i]->key_len, msgs[i]->payload, msgs[i]->len), 0);
    }
    s->seen += (int)n;
    if (s->seen >= s->target)
        cwpp_loop_stop(s->loop);
    return CWPP_OK;
}

static int64_t committed_total(harness_t *h, const char *group)
{
    rd_kafka_conf_t                 *conf;
    rd_kafka_t                      *c;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    char                             err[256];
    int64_t                          total = 0;
    int                              i;

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_add(l, "t.alerts.raw", 0);
    rd_kafka_topic_partition_list_add(l, "t.alerts.raw", 1);
    assert_int_equal(rd_kafka_committed(c, l, 10000), 0);
    for (i = 0; i < l->cnt; i++)
        if (l->elems[i].offset > 0)
            total += l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return total;
}

static int64_t topic_total(harness_t *h, const char *topic)
{
    int64_t lo, hi, total = 0;
    int     p;

    for (p = 0; p < 2; p++) {
        assert_int_equal(rd_kafka_query_watermark_offsets(h->mock_rk, topic, p, &lo, &hi, 5000), 0);
        total += hi - lo;
    }
    return total;
}

/* The loop under test, batches closing after max_ms at most, or once no record came for
 * linger_ms; s non-NULL: with the reject hook a service installs, its dead letters counted
 * in s. */
static cwpp_loop_t *make_loop_timed(harness_t *h, const char *group, cwpp_metrics_t *m,
                                    const cwpp_kvlist_t *props, svc_t *s, int max_ms,
                                    int linger_ms)
{
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ALERTS_RAW};
    cwpp_loop_conf_t lc;
    char             err[256];
    cwpp_loop_t     *l;

    memset(&lc, 0, sizeof(lc));
    lc.service = "test";
    lc.brokers = h->brokers;
    lc.group_id = group;
    lc.prefix = "t.";
    lc.inputs = inputs;
    lc.ninputs = 1;
    lc.batch_max_messages = 50;
    lc.batch_max_ms = max_ms;
    lc.batch_linger_ms = linger_ms;
    lc.retry_max_ms = 50;
    lc.metrics = m;
    lc.props = props;
    if (s != NULL) { /* the reject hook a service installs */
        lc.retry_max_ms = 200;
        lc.reject = reject_fn;
        lc.reject_opaque = s;
    }
    l = cwpp_loop_new(&lc, err, sizeof(err));
    if (l == NULL)
        fail_msg("%s", err);
    return l;
}

static cwpp_loop_t *make_loop_conf(harness_t *h, const char *group, cwpp_metrics_t *m,
                                   const cwpp_kvlist_t *props, svc_t *s)
{
    return make_loop_timed(h, group, m, props, s, 20, 20);
}

static cwpp_loop_t *make_loop_props(harness_t *h, const char *group, cwpp_metrics_t *m,
                                    const cwpp_kvlist_t *props)
{
    return make_loop_conf(h, group, m, props, NULL);
}

static cwpp_loop_t *make_loop(harness_t *h, const char *group, cwpp_metrics_t *m)
{
    return make_loop_props(h, group, m, NULL);
}

/* A few records and a batch cap of a minute: the batch closes once its input is read to
 * the end (no record for batch_linger_ms; 0, the default: none already fetched), not
 * when the cap runs out; every record is applied and committed. */
static void test_a_batch_closes_once_its_input_is_drained(void **state)
{
    static const int lingers[] = {5, 0};
    size_t           i;

    (void)state;
    for (i = 0; i < sizeof(lingers) / sizeof(lingers[0]); i++) {
        harness_t       h;
        svc_t           s;
        cwpp_metrics_t *m = cwpp_metrics_new();
        int64_t         t0;

        harness_start(&h);
        harness_produce_inputs(&h, 5);
        memset(&s, 0, sizeof(s));
        s.target = 5;
        s.loop = make_loop_timed(&h, "g-linger", m, NULL, NULL, 60000, lingers[i]);
        t0 = cwpp_mono_ms();
        assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
        /* joining the group and fetching take seconds; waiting out the cap would take 60 */
        assert_true(cwpp_mono_ms() - t0 < 30000);
        cwpp_loop_destroy(s.loop);
        assert_int_equal(s.seen, 5);
        assert_int_equal(committed_total(&h, "g-linger"), 5);
        cwpp_metrics_destroy(m);
        rd_kafka_destroy(h.mock_rk);
    }
}

/* One record the database refuses (CWPP_EDATA) in a batch: the batch is applied record
 * by record, that record alone is dead-lettered, every other record is applied and the
 * offsets reach the end. */
static void test_refused_record_is_dead_lettered(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();

    (void)state;
    harness_start(&h);
    harness_produce_inputs(&h, N_RECORDS);
    memset(&s, 0, sizeof(s));
    s.refused = "rec-7";
    s.target = N_RECORDS - 1;
    s.loop = make_loop_conf(&h, "g-refused", m, NULL, &s);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, N_RECORDS - 1);
    assert_int_equal(s.rejects, 1);
    assert_string_equal(s.reject_code, "db_refused");
    assert_int_equal(s.reject_vlen, strlen("rec-7"));
    assert_int_equal(committed_total(&h, "g-refused"), N_RECORDS);
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), N_RECORDS - 1);
    assert_int_equal(topic_total(&h, "t.alerts.rejected"), 1);
    assert_int_equal(cwpp_metric_value(cwpp_counter(m, "cwpp_test_loop_dead_letters_total", "")), 1);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

/* An output larger than the producer's message.max.bytes is never retried for ever: its
 * dead letter (output_too_large) goes to alerts.rejected and the loop goes on. */
static void test_output_too_large_is_dead_lettered(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();

    (void)state;
    harness_start(&h);
    harness_produce_inputs(&h, N_RECORDS);
    memset(&s, 0, sizeof(s));
    s.too_large = "rec-3";
    s.target = N_RECORDS;
    s.loop = make_loop_conf(&h, "g-large", m, NULL, &s);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, N_RECORDS);
    assert_int_equal(s.rejects, 1);
    assert_string_equal(s.reject_code, "output_too_large");
    assert_int_equal(s.reject_offset, -1);
    assert_int_equal(s.reject_vlen, 1100000);
    assert_int_equal(committed_total(&h, "g-large"), N_RECORDS);
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), N_RECORDS - 1);
    assert_int_equal(topic_total(&h, "t.alerts.rejected"), 1);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

/* A dependency down for longer than max.poll.interval.ms: the loop holds the input
 * (paused, still polling) instead of being evicted from its group; no rebalance, every
 * record applied once. */
static void test_outage_keeps_group_membership(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();
    cwpp_kvlist_t   props = {0};
    char            err[256];

    (void)state;
    assert_int_equal(cwpp_kvlist_parse(&props, "consumer.session.timeout.ms=6000;"
                                       "consumer.heartbeat.interval.ms=500;"
                                       "consumer.max.poll.interval.ms=6000", err, sizeof(err)), 0);
    harness_start(&h);
    harness_produce_inputs(&h, N_RECORDS);
    memset(&s, 0, sizeof(s));
    s.target = N_RECORDS;
    s.fail_for_ms = 13000; /* more than two poll intervals */
    s.loop = make_loop_conf(&h, "g-hold", m, &props, &s);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    /* (leaving the group on destroy revokes too: count before it) */
    assert_int_equal(cwpp_metric_value(cwpp_counter(m, "cwpp_test_rebalances_total", "")), 0);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, N_RECORDS);
    assert_true(cwpp_metric_value(cwpp_counter(m, "cwpp_test_held_seconds_total", "")) >= 12);
    assert_int_equal(committed_total(&h, "g-hold"), N_RECORDS);
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), N_RECORDS);
    cwpp_kvlist_free(&props);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

/* Effects failing transiently: the same batch is retried, nothing skipped, offsets and
 * outputs complete afterwards. */
static void test_retry_without_loss(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();

    (void)state;
    harness_start(&h);
    harness_produce_inputs(&h, N_RECORDS);
    memset(&s, 0, sizeof(s));
    s.fail_first = 3;
    s.target = N_RECORDS;
    s.loop = make_loop(&h, "g-retry", m);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, N_RECORDS);
    assert_int_equal(s.retried_same, 3);
    assert_int_equal(cwpp_metric_value(cwpp_counter(m, "cwpp_test_batch_retries_total", "")), 3);
    assert_int_equal(committed_total(&h, "g-retry"), N_RECORDS);
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), N_RECORDS);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

/* Produce errors (leader not available, then a retriable timeout) do not lose outputs:
 * every record reaches the output topic and offsets are committed only after. */
static void test_produce_errors_are_retried(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();

    (void)state;
    harness_start(&h);
    harness_produce_inputs(&h, N_RECORDS);
    rd_kafka_mock_push_request_errors(h.mc, 0 /* Produce */, 4,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    memset(&s, 0, sizeof(s));
    s.target = N_RECORDS;
    s.loop = make_loop(&h, "g-produce", m);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, N_RECORDS);
    assert_int_equal(committed_total(&h, "g-produce"), N_RECORDS);
    /* idempotent producer: retries add no duplicates */
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), N_RECORDS);
    assert_int_equal(cwpp_metric_value(cwpp_counter(m, "cwpp_test_produced_total", "")), N_RECORDS);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

/* A stop while the effect keeps failing leaves the batch uncommitted: nothing is
 * acknowledged that was not applied, and a restarted loop applies it. */
static void test_stop_during_failure_commits_nothing(void **state)
{
    harness_t       h;
    svc_t           s;
    cwpp_metrics_t *m = cwpp_metrics_new();

    (void)state;
    harness_start(&h);
    harness_produce_inputs(&h, 10);
    memset(&s, 0, sizeof(s));
    s.fail_first = 1000000;
    s.target = 10;
    s.loop = make_loop(&h, "g-stop", m);
    /* batch_fn keeps failing; stop the loop from "outside" after a few attempts */
    cwpp_loop_stop(s.loop);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(committed_total(&h, "g-stop"), 0);
    assert_int_equal(topic_total(&h, "t.alerts.normalized"), 0);

    memset(&s, 0, sizeof(s));
    s.target = 10;
    s.loop = make_loop(&h, "g-stop", m);
    assert_int_equal(cwpp_loop_run(s.loop, batch_fn, &s), CWPP_OK);
    cwpp_loop_destroy(s.loop);
    assert_int_equal(s.seen, 10);
    assert_int_equal(committed_total(&h, "g-stop"), 10);
    cwpp_metrics_destroy(m);
    rd_kafka_destroy(h.mock_rk);
}

static void test_topic_table(void **state)
{
    char buf[128];

    (void)state;
    cwpp_topic_name("cwpp.", CWPP_TOPIC_ALERTS_RAW, buf, sizeof(buf));
    assert_string_equal(buf, "cwpp.alerts.raw");
    cwpp_topic_name("cwpp.", CWPP_TOPIC_COMMAND_RESULTS, buf, sizeof(buf));
    assert_string_equal(buf, "cwpp.command-results");
    assert_true(cwpp_topic_def(CWPP_TOPIC_EVENTS)->compacted);
    assert_false(cwpp_topic_def(CWPP_TOPIC_ALERTS_RAW)->compacted);
}

/* Raising only message.max.bytes (for large records) raises the bounded fetch size with
 * it: librdkafka refuses a consumer whose fetch.max.bytes is below message.max.bytes. */
static void test_large_message_max_bytes_still_starts(void **state)
{
    cwpp_kvlist_t props = {0};
    harness_t     h;

    (void)state;
    harness_start(&h);
    assert_int_equal(cwpp_kvlist_set(&props, "message.max.bytes", "10000000"), CWPP_OK);
    cwpp_loop_destroy(make_loop_props(&h, "g-large", NULL, &props)); /* fails if refused */
    cwpp_kvlist_free(&props);
    rd_kafka_destroy(h.mock_rk);
}

/* A service's own outboxes: records move to the batch's outbox in order, uncopied. */
static void test_outbox_move(void **state)
{
    cwpp_outbox_t *a = cwpp_outbox_new(), *b = cwpp_outbox_new();
    int            i;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    for (i = 0; i < 300; i++)
        assert_int_equal(cwpp_outbox_add(a, CWPP_TOPIC_EVENTS, "k", 1, &i, sizeof(i)), CWPP_OK);
    assert_int_equal(cwpp_outbox_add(b, CWPP_TOPIC_NOTIFICATIONS, NULL, 0, "x", 1), CWPP_OK);
    assert_int_equal(cwpp_outbox_move(b, a), CWPP_OK);
    assert_int_equal(cwpp_outbox_count(b), 301);
    assert_int_equal(cwpp_outbox_count(a), 0);
    assert_int_equal(cwpp_outbox_move(b, a), CWPP_OK); /* empty: nothing changes */
    assert_int_equal(cwpp_outbox_count(b), 301);
    cwpp_outbox_truncate(b, 1);
    assert_int_equal(cwpp_outbox_count(b), 1);
    cwpp_outbox_destroy(a); /* nothing left in a: no double free of the moved records */
    cwpp_outbox_destroy(b);
    cwpp_outbox_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_table),
        cmocka_unit_test(test_outbox_move),
        cmocka_unit_test(test_large_message_max_bytes_still_starts),
        cmocka_unit_test(test_retry_without_loss),
        cmocka_unit_test(test_produce_errors_are_retried),
        cmocka_unit_test(test_stop_during_failure_commits_nothing),
        cmocka_unit_test(test_a_batch_closes_once_its_input_is_drained),
        cmocka_unit_test(test_refused_record_is_dead_lettered),
        cmocka_unit_test(test_output_too_large_is_dead_lettered),
        cmocka_unit_test(test_outage_keeps_group_membership),
    };
    cwpp_log_init("test", CWPP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
