/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handled.c: the handled-event stream (docs/exporter.md "Handled events").
 *
 * The responder adds a row to handled_events (seq, event_id) in the transaction that makes
 * an event handled. One exporter, the one holding a PostgreSQL advisory lock, publishes the
 * rows in seq order: for each, the HandledEvent record (Avro) on <prefix>events.handled and
 * its OCSF Incident Finding (JSON) on <prefix>events.handled.ocsf, in Kafka transactions.
 *
 * Exactly once: at start (and whenever it takes the lock) the publisher initialises its
 * transactional producer, which aborts whatever a killed predecessor left open, then reads
 * the committed tail of <prefix>events.handled to learn the highest seq published. It then
 * publishes from the next seq. A crash before a commit leaves nothing visible to
 * read_committed consumers; a crash after it is seen at the next start. A seq that is
 * missing (a responder transaction not committed yet) is waited for handled.gap.wait.ms.
 */
#include "ex_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_correlate.h"
#include "cwpp_log.h"
#include "cwpp_util.h"

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* one publisher per transactional id (a deployment); the two-key form, a key space of its
 * own (commands lock single-key ids) */
static const char SQL_LOCK[] = "SELECT pg_try_advisory_lock(5005, hashtext($1))";
static const char SQL_HINT_GET[] =
    "SELECT handled_seq FROM exporter_state WHERE transactional_id = $1";
static const char SQL_HINT_SET[] =
    "INSERT INTO exporter_state (transactional_id, handled_seq) VALUES ($1, $2::bigint) "
    "ON CONFLICT (transactional_id) DO UPDATE SET handled_seq = GREATEST("
    "exporter_state.handled_seq, EXCLUDED.handled_seq), updated_at = now()";
static const char SQL_SNAP_XMAX[] = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text";
static const char SQL_SNAP_PASSED[] =
    "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8";
static const char SQL_DUE[] =
    "SELECT h.seq, e.event_id IS NOT NULL, json_build_object("
    "'seq', h.seq, 'event_id', e.event_id, 'account_id', e.account_id, 'name', e.name, "
    "'level', e.level, 'owner', e.owner, 'predecessor', e.predecessor, "
    "'stages', to_json(e.stages), 'sources', to_json(e.sources), "
    "'alert_count', e.alert_count, 'occurrences', e.occurrences, "
    "'first_seen_ms', " MS("e.first_seen") ", 'last_seen_ms', " MS("e.last_seen") ", "
    "'handled_at_ms', " MS("h.handled_at") ", 'urgency', "
    /* the urgency as of the handling (the quiet rule, libs/correlate): stable on replay */
    CWPP_SQL_URGENCY_AS_OF("e.urgency", "e.last_seen", "h.handled_at",
                           CWPP_QUIET_HOURS_DEFAULT_S) ", "
    "'affected_assets', (SELECT COALESCE(json_agg(json_build_object('asset_id', a.key, 'name', "
    "a.value ->> 'name', 'role', a.value ->> 'role', 'ips', COALESCE(a.value -> 'ips', "
    "'[]'::json), 'alerts', CASE WHEN a.value ->> 'alerts' ~ '^[0-9]{1,9}$' THEN "
    "(a.value ->> 'alerts')::int ELSE 0 END) ORDER BY a.key), "
    "'[]'::json) FROM json_each(COALESCE(e.summary -> 'assets', '{}'::json)) a), "
    "'reasons', COALESCE(e.assessment -> 'reasons', '[]'::jsonb), "
    "'recommendations', COALESCE(e.assessment -> 'recommendations', '[]'::jsonb), "
    "'alerts', (SELECT COALESCE(json_agg(json_build_object('alert_id', a.alert_id, 'name', "
    "a.name, 'type', a.type, 'severity', a.severity, 'source', a.source, 'asset_id', "
    "a.asset_id, 'defense', a.defense, 'status', a.status, 'attack_tactic', a.attack_tactic, "
    "'attack_technique', a.attack_technique, 'first_seen_ms', " MS("a.first_seen") ", "
    "'last_seen_ms', " MS("a.last_seen") ", 'occurrences', a.occurrences, 'join_reason', "
    "ea.reason) ORDER BY a.first_seen, a.alert_id), '[]'::json) FROM (SELECT * FROM "
    "event_alerts WHERE event_id = e.event_id ORDER BY first_seen, alert_id LIMIT 500) ea "
    "JOIN alerts a ON a.alert_id = ea.alert_id), "
    "'entities', (SELECT COALESCE(json_agg(json_build_object('entity_type', x.entity_type, "
    "'value', x.value, 'assets', x.assets, 'alerts', x.alerts) ORDER BY x.entity_type, "
    "x.value), '[]'::json) FROM (SELECT entity_type, value, to_json(array_remove(array_agg("
    "DISTINCT asset_id), '')) AS assets, count(DISTINCT alert_id)::int AS alerts FROM "
    "entity_alerts WHERE event_id = e.event_id GROUP BY entity_type, value "
    "ORDER BY entity_type, value LIMIT 1000) x), "
    "'policies', (SELECT COALESCE(json_agg(json_build_object('policy_id', p.policy_id, 'kind', "
    "p.kind, 'name', p.name, 'entity_type', p.entity_type, 'entity_value', p.entity_value, "
    "'asset_id', p.asset_id, 'dest_account', p.dest_account, 'state', p.state, "
    "'valid_until_ms', " MS("p.valid_until") ", 'created_by', p.created_by, 'tasks', "
    "(SELECT COALESCE(json_agg(json_build_object('task_id', t.task_id, 'kind', t.kind, "
    "'step', t.step, 'action', t.action, 'state', t.state, 'attempt', t.attempt, 'reason', "
    "t.reason) ORDER BY t.created_at, t.kind, t.step, t.task_id), '[]'::json) FROM "
    "handling_tasks t WHERE t.policy_id = p.policy_id)) ORDER BY p.created_at, p.policy_id), "
    "'[]'::json) FROM (SELECT * FROM handling_policies WHERE event_id = e.event_id "
    "ORDER BY created_at, policy_id LIMIT 100) p), "
    "'activity', (SELECT COALESCE(json_agg(json_build_object('at_ms', " MS("l.at") ", "
    "'actor', l.actor, 'action', l.action, 'object_type', l.object_type, 'object_id', "
    "l.object_id, 'before_json', l.before::text, 'after_json', l.after::text, 'remark', "
    "l.remark) ORDER BY l.at, l.log_id), '[]'::json) FROM (SELECT * FROM activity_log WHERE "
    "event_id = e.event_id ORDER BY at, log_id LIMIT 1000) l), "
    "'lists_truncated', e.alert_count > 500 OR (SELECT count(*) > 1000 FROM activity_log WHERE "
    "event_id = e.event_id) OR (SELECT count(*) > 100 FROM handling_policies WHERE event_id = "
    "e.event_id) OR (SELECT count(DISTINCT (entity_type, value)) > 1000 FROM entity_alerts "
    "WHERE event_id = e.event_id), 'published_at_ms', " MS("now()") ")::text "
    "FROM handled_events h LEFT JOIN events e ON e.event_id = h.event_id "
    "WHERE h.seq > $1 ORDER BY h.seq LIMIT $2";

void ex_publisher_close(ex_t *x)
{
    if (x->txp != NULL) {
        rd_kafka_destroy(x->txp);
        x->txp = NULL;
    }
    x->is_publisher = 0;
    cwpp_metric_set(x->m_publisher, 0);
}

/* The highest seq in the committed tail of the handled topic (0 when empty). */
static int committed_seq(ex_t *x, int64_t *seq, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t                 *kc;
    rd_kafka_t                      *c;
    const rd_kafka_metadata_t       *md = NULL;
    rd_kafka_topic_partition_list_t *as;
    int                              i, rc = CWPP_OK, left;
    int64_t                          deadline;

    *seq = 0;
    kc = cwpp_kafka_conf(x->conf->common.kafka_brokers, x->kafka_props, errstr, errstr_size);
    if (kc == NULL)
        return CWPP_ECONFIG;
    rd_kafka_conf_set(kc, "group.id", "cwpp-exporter-tail", NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(kc, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(kc, "enable.partition.eof", "true", NULL, 0);
    if ((c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(kc);
        return CWPP_ETRANSIENT;
    }
    {
        rd_kafka_topic_t *t = rd_kafka_topic_new(c, x->handled_topic, NULL);

        if (rd_kafka_metadata(c, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "no metadata for %s",
                             x->handled_topic);
            if (md != NULL)
                rd_kafka_metadata_destroy(md);
            rd_kafka_topic_destroy(t);
            rd_kafka_destroy(c);
            return rc;
        }
        rd_kafka_topic_destroy(t);
    }
    as = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    left = 0;
    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo, hi;

        if (rd_kafka_query_watermark_offsets(c, x->handled_topic, p, &lo, &hi, 10000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "no offsets for %s[%d]",
                             x->handled_topic, p);
            break;
        }
        if (hi > lo) {
            /* the last records: data, and the commit and abort markers after them */
            rd_kafka_topic_partition_list_add(as, x->handled_topic, p)->offset =
                hi - 64 > lo ? hi - 64 : lo;
            left++;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (rc == CWPP_OK && left > 0 && rd_kafka_assign(c, as) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot read %s",
                         x->handled_topic);
    deadline = cwpp_mono_ms() + 20000;
    while (rc == CWPP_OK && left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        char                why[200];

        if (cwpp_mono_ms() > deadline) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "reading the tail of %s "
                             "timed out", x->handled_topic);
            break;
        }
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            left--;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                   cwpp_avro_decode(x->t_handled, m->payload, m->len, &x->v_handled, why,
                                    sizeof(why)) == CWPP_OK) {
            int64_t s = 0;

            if (cwpp_avro_get_long(&x->v_handled, "seq", &s) == CWPP_OK && s > *seq)
                *seq = s;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(as);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return rc;
}

/* The position kept in Kafka: committed, in each transaction, as the "offset" of
 * <handled topic>[0] for the group <transactional id>.position (atomic with the records). */
static void position_group(const ex_t *x, char *buf, size_t size)
{
    snprintf(buf, size, "%s.position", x->conf->transactional_id);
}

static int kafka_position(ex_t *x, int64_t *seq, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t                 *kc;
    rd_kafka_t                      *c;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t              e;
    char                             group[300];

    *seq = 0;
    position_group(x, group, sizeof(group));
    kc = cwpp_kafka_conf(x->conf->common.kafka_brokers, x->kafka_props, errstr, errstr_size);
    if (kc == NULL)
        return CWPP_ECONFIG;
    rd_kafka_conf_set(kc, "group.id", group, NULL, 0);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", NULL, 0);
    if ((c = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(kc);
        return CWPP_ETRANSIENT;
    }
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, x->handled_topic, 0);
    e = rd_kafka_committed(c, l, 10000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        l->elems[0].offset > 0)
        *seq = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR
               ? CWPP_OK
               : cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "reading the position: %s",
                             rd_kafka_err2str(e));
}

/* Drops the publisher role and the lock (another exporter may take over). */
static void give_up(ex_t *x)
{
    ex_publisher_close(x);
    cwpp_pg_reset(x->pub_pg);
}

/* Becomes the publisher when the lock is free: the producer (which fences and aborts what a
 * predecessor left open), then where to resume: the highest of the position committed in
 * Kafka with the records, the seqs in the committed tail of the topic, and the hint in
 * PostgreSQL. Each is at most what was really published. */
static int take_over(ex_t *x, char *errstr, size_t errstr_size)
{
    PGresult         *r = NULL;
    rd_kafka_conf_t  *kc;
    rd_kafka_error_t *err;
    int               rc, got;
    int64_t           pos = 0, tail = 0, hint = 0;
    const char       *p[1] = {x->conf->transactional_id};

    if ((rc = cwpp_pg_ensure(x->pub_pg, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((rc = cwpp_pg_query(x->pub_pg, SQL_LOCK, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size)))
        return rc;
    got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!got)
        return CWPP_OK; /* another exporter publishes */
    kc = cwpp_kafka_conf(x->conf->common.kafka_brokers, x->kafka_props, errstr, errstr_size);
    if (kc == NULL ||
        rd_kafka_conf_set(kc, "transactional.id", x->conf->transactional_id, errstr,
                          errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "transaction.timeout.ms", "60000", errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
        if (kc != NULL)
            rd_kafka_conf_destroy(kc);
        give_up(x);
        return CWPP_ECONFIG;
    }
    if ((x->txp = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(kc);
        give_up(x);
        return CWPP_ETRANSIENT;
    }
    if ((err = rd_kafka_init_transactions(x->txp, 30000)) != NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "init_transactions: %s",
                         rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
        give_up(x);
        return rc;
    }
    if ((rc = kafka_position(x, &pos, errstr, errstr_size)) != CWPP_OK ||
        (rc = committed_seq(x, &tail, errstr, errstr_size)) != CWPP_OK ||
        (rc = cwpp_pg_query(x->pub_pg, SQL_HINT_GET, 1, p, PGRES_TUPLES_OK, &r, errstr,
                   errstr_size)) != CWPP_OK) {
        give_up(x);
        return rc;
    }
    if (PQntuples(r) == 1)
        hint = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    x->published_seq = pos > tail ? pos : tail;
    x->published_seq = hint > x->published_seq ? hint : x->published_seq;
    x->is_publisher = 1;
    x->gap_seq = 0;
    x->gap_xmax[0] = '\0';
    cwpp_metric_set(x->m_publisher, 1);
    cwpp_metric_set(x->m_handled_seq, x->published_seq);
    cwpp_info("handled_publisher", "publishing handled events after seq %" PRId64 " as %s "
              "(position %" PRId64 ", topic tail %" PRId64 ", hint %" PRId64 ")",
              x->published_seq, x->conf->transactional_id, pos, tail, hint);
    return CWPP_OK;
}

/* 0 queued; CWPP_EINVAL when this record can never be sent (too large); else transient. */
static int produce(ex_t *x, const char *topic, const char *key, const void *val, size_t len,
                   char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(
        x->txp, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);

    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CWPP_OK;
    return cwpp_seterr(errstr, errstr_size,
                       e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? CWPP_EINVAL : CWPP_ETRANSIENT,
                       "produce: %s", rd_kafka_err2str(e));
}

/* Ends the open transaction, with the new position: commit (retried while retriable), or
 * abort on failure (nothing becomes visible). */
static int finish(ex_t *x, int ok, int64_t last, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *err = NULL;
    int               rc = CWPP_OK, tries;

    if (ok) {
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
        rd_kafka_consumer_group_metadata_t *gm;
        char                                group[300];

        position_group(x, group, sizeof(group));
        gm = rd_kafka_consumer_group_metadata_new(group);
        rd_kafka_topic_partition_list_add(offs, x->handled_topic, 0)->offset = last;
        err = rd_kafka_send_offsets_to_transaction(x->txp, offs, gm, 30000);
        rd_kafka_consumer_group_metadata_destroy(gm);
        rd_kafka_topic_partition_list_destroy(offs);
        for (tries = 0; err == NULL && tries < 3; tries++) {
            err = rd_kafka_commit_transaction(x->txp, 30000);
            if (err == NULL)
                return CWPP_OK;
            if (!rd_kafka_error_is_retriable(err))
                break;
            rd_kafka_error_destroy(err);
            err = NULL;
        }
    }
    if (err != NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "commit_transaction: %s",
                         rd_kafka_error_string(err));
        if (rd_kafka_error_is_fatal(err) || !rd_kafka_error_txn_requires_abort(err)) {
            rd_kafka_error_destroy(err);
            give_up(x); /* init_transactions at the next take-over resolves it */
            return rc;
        }
        rd_kafka_error_destroy(err);
    } else if (ok) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "commit_transaction retried "
                         "without success");
        give_up(x);
        return rc;
    } else {
        rc = CWPP_ETRANSIENT;
    }
    cwpp_metric_add(x->m_txn_aborts, 1);
    if ((err = rd_kafka_abort_transaction(x->txp, 30000)) != NULL) {
        rd_kafka_error_destroy(err);
        give_up(x);
    }
    return rc;
}

/* Whether the missing seq `expect` may be passed over: every transaction that was open when
 * it was first missed has ended since, and rows read after they ended still lack it, so
 * it was rolled back. 1 yes, 0 wait (or read again), < 0 error. The rows in hand were read
 * before this check: a transaction that committed between the two would be passed over
 * though its seq is there, so the first "ended" only asks for one more read. */
static int gap_over(ex_t *x, int64_t expect, char *errstr, size_t errstr_size)
{
    PGresult *r = NULL;
    int       rc, over;

    if (x->gap_seq != expect) {
        if ((rc = cwpp_pg_query(x->pub_pg, SQL_SNAP_XMAX, 0, NULL, PGRES_TUPLES_OK, &r, errstr,
                       errstr_size)) != CWPP_OK)
            return -rc;
        snprintf(x->gap_xmax, sizeof(x->gap_xmax), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        x->gap_seq = expect;
        x->gap_reread = 0;
        return 0;
    }
    {
        const char *p[1] = {x->gap_xmax};

        if ((rc = cwpp_pg_query(x->pub_pg, SQL_SNAP_PASSED, 1, p, PGRES_TUPLES_OK, &r, errstr,
                       errstr_size)) != CWPP_OK)
            return -rc;
    }
    over = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (over && !x->gap_reread) {
        x->gap_reread = 1;
        return 0;
    }
    return over;
}

int ex_publish_handled(ex_t *x, char *errstr, size_t errstr_size)
{
    PGresult         *r = NULL;
    char              after[24], lim[16];
    const char       *p[2] = {after, lim};
    rd_kafka_error_t *err;
    int               rc, i, n, open = 0;
    int64_t           expect, last = 0, count = 0;

    if (x->is_publisher && PQstatus(cwpp_pg_conn(x->pub_pg)) != CONNECTION_OK) {
        cwpp_warn("handled_publisher", "lost the publisher lock's connection; taking over "
                  "again");
        ex_publisher_close(x);
    }
    if (!x->is_publisher) {
        if ((rc = take_over(x, errstr, errstr_size)) != CWPP_OK || !x->is_publisher)
            return rc;
    }
    snprintf(after, sizeof(after), "%" PRId64, x->published_seq);
    snprintf(lim, sizeof(lim), "%lld", (long long)x->conf->handled_batch);
    if ((rc = cwpp_pg_query(x->pub_pg, SQL_DUE, 2, p, PGRES_TUPLES_OK, &r, errstr, errstr_size))) {
        give_up(x);
        return rc;
    }
    n = PQntuples(r);
    expect = x->published_seq + 1;
    for (i = 0; rc == CWPP_OK && i < n; i++) {
        int64_t      seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        json_error_t jerr;
        json_t      *doc, *ocsf;
        char        *oj;
        const char  *id;
        int          g;

        if (seq != expect) {
            /* a seq not visible yet: its transaction may still commit */
            if ((g = gap_over(x, expect, errstr, errstr_size)) < 0) {
                rc = -g;
                break;
            }
            if (g == 0)
                break;
            cwpp_warn("handled_gap", "seq %" PRId64 "..%" PRId64 " never committed: passed "
                      "over (rolled back)", expect, seq - 1);
            cwpp_metric_add(x->m_gaps_skipped, seq - expect);
        }
        expect = seq + 1;
        last = seq;
        if (PQgetvalue(r, i, 1)[0] != 't')
            continue; /* the event was deleted by retention before it was published */
        doc = json_loads(PQgetvalue(r, i, 2), 0, &jerr);
        id = json_string_value(json_object_get(doc, "event_id"));
        if (doc == NULL || id == NULL) {
            json_decref(doc);
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "seq %" PRId64 ": bad row", seq);
            break;
        }
        if (!open) {
            if ((err = rd_kafka_begin_transaction(x->txp)) != NULL) {
                rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "begin_transaction: %s",
                                 rd_kafka_error_string(err));
                rd_kafka_error_destroy(err);
                json_decref(doc);
                PQclear(r);
                give_up(x);
                return rc;
            }
            open = 1;
        }
        cwpp_buf_reset(&x->buf);
        rc = cwpp_avro_from_json(&x->v_handled, doc, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = cwpp_avro_encode(x->t_handled, &x->v_handled, &x->buf, errstr, errstr_size);
        ocsf = rc == CWPP_OK ? ex_ocsf(doc) : NULL;
        oj = ocsf != NULL ? json_dumps(ocsf, JSON_COMPACT) : NULL;
        if (rc == CWPP_OK && oj == NULL)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "no OCSF document");
        if (rc == CWPP_OK && (x->buf.len > 1000000 || strlen(oj) > 1000000))
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the record would be %zu bytes, "
                             "more than the topic takes", x->buf.len);
        if (rc == CWPP_OK)
            rc = produce(x, x->handled_topic, id, x->buf.data, x->buf.len, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = produce(x, x->ocsf_topic, id, oj, strlen(oj), errstr, errstr_size);
        if (rc == CWPP_EINVAL) {
            /* this event can never be sent as it is: say so loudly and go on, rather than
             * stop the stream for every event after it */
            cwpp_error("handled_unpublishable", "event %s (seq %" PRId64 ") not published: %s",
                       id, seq, errstr);
            cwpp_metric_add(x->m_unpublishable, 1);
            rc = CWPP_OK;
        } else if (rc == CWPP_OK) {
            count++;
        }
        free(oj);
        json_decref(ocsf);
        json_decref(doc);
    }
    PQclear(r);
    if (open && (rc = finish(x, rc == CWPP_OK, last, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (rc == CWPP_OK && last > x->published_seq) {
        /* committed (or only passed-over and deleted seqs) */
        char        ls[24];
        const char *ph[2] = {x->conf->transactional_id, ls};

        x->published_seq = last;
        cwpp_metric_set(x->m_handled_seq, last);
        cwpp_metric_add(x->m_handled, count);
        if (count > 0)
            cwpp_info("handled_published", "%" PRId64 " handled event(s), up to seq %" PRId64,
                      count, last);
        snprintf(ls, sizeof(ls), "%" PRId64, last);
        if (cwpp_pg_query(x->pub_pg, SQL_HINT_SET, 2, ph, PGRES_COMMAND_OK, NULL, errstr,
                 errstr_size) != CWPP_OK)
            cwpp_warn("handled_hint", "%s (the position in Kafka is kept)", errstr);
    }
    return rc;
}

/* ----------------------------------------------------------------- OCSF */

static int severity_id(const char *level)
{
    return strcmp(level, "critical") == 0 ? 5 : strcmp(level, "high") == 0 ? 4
           : strcmp(level, "medium") == 0 ? 3 : 2;
}

static int priority_id(const char *urgency)
{
    return strcmp(urgency, "act_now") == 0 ? 4 : strcmp(urgency, "high") == 0 ? 3
           : strcmp(urgency, "medium") == 0 ? 2 : 1;
}

json_t *ex_ocsf(const json_t *ev)
{
    static const char *const sev_names[] = {"Unknown", "Informational", "Low", "Medium", "High",
                                            "Critical"};
    static const char *const pri_names[] = {"Unknown", "Low", "Medium", "High", "Critical"};
    const char *level = json_string_value(json_object_get(ev, "level"));
    const char *urg = json_string_value(json_object_get(ev, "urgency"));
    const char *owner = json_string_value(json_object_get(ev, "owner"));
    json_t     *o, *attacks = json_array(), *resources = json_array(), *reasons;
    cwpp_buf_t  desc = {0};
    size_t      i;
    int         sev = severity_id(level != NULL ? level : "low");
    int         pri = priority_id(urg != NULL ? urg : "low");
    char        uid[128];

    for (i = 0; i < json_array_size(json_object_get(ev, "stages")); i++)
        json_array_append_new(attacks, json_pack("{s:{s:O}}", "tactic", "uid", json_array_get(
                                                     json_object_get(ev, "stages"), i)));
    for (i = 0; i < json_array_size(json_object_get(ev, "affected_assets")); i++) {
        const json_t *a = json_array_get(json_object_get(ev, "affected_assets"), i);

        json_array_append_new(resources, json_pack("{s:O, s:O, s:s, s:O}", "uid",
                                                   json_object_get(a, "asset_id"), "name",
                                                   json_object_get(a, "name"), "type", "host",
                                                   "labels", json_object_get(a, "ips")));
    }
    reasons = json_object_get(ev, "reasons");
    for (i = 0; i < json_array_size(reasons); i++) {
        const char *txt = json_string_value(json_object_get(json_array_get(reasons, i), "text"));

        if (txt == NULL)
            continue;
        cwpp_buf_puts(&desc, desc.len > 0 ? " " : "");
        cwpp_buf_puts(&desc, txt);
    }
    cwpp_buf_append(&desc, "", 1);
    snprintf(uid, sizeof(uid), "%s.%lld", json_string_value(json_object_get(ev, "event_id")),
             (long long)json_integer_value(json_object_get(ev, "seq")));
    o = json_pack(
        "{s:i, s:s, s:i, s:s, s:i, s:s, s:i, s:s, s:O, s:O, s:O, s:i, s:s, s:i, s:s,"
        " s:i, s:s, s:i, s:s, s:s,"
        " s:[{s:O, s:O, s:O, s:O, s:O, s:[s], s:O}],"
        " s:{s:s, s:[s, s], s:{s:s, s:s}, s:s, s:O, s:O},"
        " s:{s:s, s:{s:O}},"
        " s:{s:{s:O, s:O, s:O, s:O, s:O, s:O, s:o, s:o}}}",
        "activity_id", 3, "activity_name", "Close", "category_uid", 2, "category_name",
        "Findings", "class_uid", 2005, "class_name", "Incident Finding", "type_uid", 200503,
        "type_name", "Incident Finding: Close", "time", json_object_get(ev, "handled_at_ms"),
        "start_time", json_object_get(ev, "first_seen_ms"), "end_time",
        json_object_get(ev, "last_seen_ms"), "severity_id", sev, "severity", sev_names[sev],
        "status_id", 5, "status", "Closed", "priority_id", pri, "priority", pri_names[pri],
        "urgency_id", pri, "urgency", pri_names[pri],
        "desc", desc.data != NULL ? (const char *)desc.data : "",
        "finding_info_list", "uid", json_object_get(ev, "event_id"), "title",
        json_object_get(ev, "name"), "created_time", json_object_get(ev, "first_seen_ms"),
        "first_seen_time", json_object_get(ev, "first_seen_ms"), "last_seen_time",
        json_object_get(ev, "last_seen_ms"), "types", "security_event", "related_events_count",
        json_object_get(ev, "alert_count"),
        "metadata", "version", "1.1.0", "profiles", "incident", "cloud", "product", "name",
        "CWPP event pipeline", "vendor_name", "cwpp", "uid", uid, "correlation_uid",
        json_object_get(ev, "event_id"), "logged_time", json_object_get(ev, "published_at_ms"),
        "cloud", "provider", "cwpp", "account", "uid", json_object_get(ev, "account_id"),
        "unmapped", "cwpp", "alerts", json_object_get(ev, "alerts"), "entities",
        json_object_get(ev, "entities"), "policies", json_object_get(ev, "policies"),
        "recommendations", json_object_get(ev, "recommendations"), "predecessor",
        json_object_get(ev, "predecessor"), "activity", json_object_get(ev, "activity"),
        "attacks", attacks, "resources", resources);
    if (o != NULL && owner != NULL)
        json_object_set_new(o, "assignee", json_pack("{s:s}", "name", owner));
    cwpp_buf_free(&desc);
    return o;
}
