/* SPDX-License-Identifier: Apache-2.0 */
/*
 * correlator.c: the batch (correlator.h). One transaction per batch, three pipelined
 * round trips:
 *   1. BEGIN; this group's offset rows (created, locked); the events the batch's keys and
 *      alert ids point at (locked); their keys and memberships; notifications already
 *      sent for these offsets (a batch redelivered after a crash re-sends them);
 *   2. the decisions: events, their alerts, entities, graph edges and keys; the 30-day
 *      figures of the touched events' IPs;
 *   3. the assessments, new notifications, the offsets, COMMIT.
 * Snapshots and notifications are queued to the outbox only after the commit succeeded.
 */
#include "correlator.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cwpp_alert.h"
#include "cwpp_correlate.h"
#include "cwpp_log.h"
#include "cwpp_pg.h"

#define CORR_MAX_WORKERS 8

const cwpp_conf_prop_t corr_props[] = {
    CWPP_COMMON_PROPS(corr_conf_t, common, "correlator", "8083"),
    {"correlator.window.ms", CWPP_CONF_INT, offsetof(corr_conf_t, window_ms), "86400000", 60000,
     2592000000LL, 0,
     "A related alert joins an open event when it occurred within this time after the "
     "event's latest alert (or before its first)."},
    {"correlator.max.future.ms", CWPP_CONF_INT, offsetof(corr_conf_t, max_future_ms),
     "86400000", 0, 31536000000LL, 0,
     "An alert whose occurrence time is further than this in the future goes to the "
     "dead-letter topic."},
    {"correlator.workers", CWPP_CONF_INT, offsetof(corr_conf_t, workers), "2", 1,
     CORR_MAX_WORKERS, 0,
     "Transactions a batch runs in parallel, each with its own database connection and the "
     "records of its own partitions (events never span partitions: the topic is keyed by "
     "account). The same events as one worker, as with instances on one group."},
    {"correlator.max.message.bytes", CWPP_CONF_INT, offsetof(corr_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Input records larger than this go to the dead-letter topic as oversized."},
    {"assess.core.roles", CWPP_CONF_STR, offsetof(corr_conf_t, core_roles),
     "database,application", 0, 0, 0,
     "Asset roles that make an asset core (comma-separated): a core asset raises urgency."},
    {"assess.authoritative.sources", CWPP_CONF_STR, offsetof(corr_conf_t, authoritative_sources),
     "virus_scan,webshell_scan", 0, 0, 0,
     "Alert sources whose detections are authoritative (comma-separated)."},
    {"assess.probe.types", CWPP_CONF_STR, offsetof(corr_conf_t, probe_types),
     "brute_force,network_attack,port_scan,scan,abnormal_logon", 0, 0, 0,
     "Alert types that count as a probe when they open an event (as do medium and low "
     "severity alerts)."},
    {"assess.alerts.high", CWPP_CONF_INT, offsetof(corr_conf_t, alerts_high), "10", 1, 1000000,
     0, "An event with at least this many alerts, and growing, is more urgent."},
    {"assess.growth.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, growth_alerts), "3", 1,
     1000000, 0, "\"Growing\": at least this many new alerts within assess.recent.ms of the "
                 "latest one."},
    {"assess.recent.ms", CWPP_CONF_INT, offsetof(corr_conf_t, recent_ms), "3600000", 1000,
     2592000000LL, 0, "\"Recent activity\": the latest alert is at most this old."},
    {"assess.escalation.ms", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_ms), "1800000",
     1000, 2592000000LL, 0,
     "Escalation: related alerts within this time after the probe that opened the event."},
    {"assess.escalation.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_alerts), "3",
     1, 1000, 0, "Escalation: at least this many related alerts after the probe ..."},
    {"assess.escalation.types", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_types), "2", 1,
     100, 0, "... of at least this many types other than the probe's: act now."},
    {"assess.ip.block.events", CWPP_CONF_INT, offsetof(corr_conf_t, ip_block_events), "3", 1,
     1000000, 0, "Recommend blocking an IP that is in at least this many events over 30 days."},
    {"assess.ip.block.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, ip_block_alerts), "20", 1,
     1000000, 0, "... or in at least this many alerts over 30 days."},
    {"assess.ip.targeted.assets", CWPP_CONF_INT, offsetof(corr_conf_t, ip_targeted_assets), "3",
     2, 1000000, 0,
     "... or that attacked at least this many assets (a targeted attack)."},
};
const size_t corr_nprops = sizeof(corr_props) / sizeof(corr_props[0]);

/* ------------------------------------------------------------------ SQL */

static const char SQL_OFFSETS_ROWS[] =
    "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
    "SELECT $1, x.t, x.p, 0 FROM json_to_recordset($2::json) AS x(t text, p int, lo bigint, "
    "hi bigint) ORDER BY x.t, x.p ON CONFLICT DO NOTHING";
static const char SQL_OFFSETS_LOCK[] =
    "SELECT c.topic, c.partition, c.next_offset FROM consumer_offsets c "
    "JOIN json_to_recordset($2::json) AS x(t text, p int, lo bigint, hi bigint) "
    "ON c.topic = x.t AND c.partition = x.p WHERE c.consumer_group = $1 "
    "ORDER BY c.topic, c.partition FOR UPDATE OF c";
static const char SQL_OFFSETS_SET[] =
    "UPDATE consumer_offsets c SET next_offset = x.hi + 1, updated_at = now() "
    "FROM json_to_recordset($2::json) AS x(t text, p int, lo bigint, hi bigint) "
    "WHERE c.consumer_group = $1 AND c.topic = x.t AND c.partition = x.p "
    "AND c.next_offset < x.hi + 1";
static const char SQL_LOAD_EVENTS[] =
    "SELECT e.event_id, e.account_id, e.status, "
    "(extract(epoch FROM e.first_seen) * 1000)::bigint, "
    "(extract(epoch FROM e.last_seen) * 1000)::bigint, e.owner, e.predecessor, e.urgency, "
    "e.summary::text, e.version, e.level, e.assessment::text, "
    "e.level_source = 'analyst' FROM events e WHERE e.event_id IN ("
    "SELECT k.event_id FROM event_keys k WHERE k.key IN "
    "(SELECT json_array_elements_text($1::json)) UNION "
    "SELECT a.event_id FROM event_alerts a WHERE a.alert_id IN "
    "(SELECT json_array_elements_text($2::json))) ORDER BY e.event_id FOR UPDATE OF e";
static const char SQL_LOAD_KEYS[] =
    "SELECT k.key, k.event_id, k.alert_id FROM event_keys k WHERE k.key IN "
    "(SELECT json_array_elements_text($1::json))";
static const char SQL_LOAD_ALERTS[] =
    "SELECT a.alert_id, a.event_id FROM event_alerts a WHERE a.alert_id IN "
    "(SELECT json_array_elements_text($1::json))";
static const char SQL_LOAD_NOTES[] =
    "SELECT n.payload, n.event_id FROM notifications n "
    "JOIN json_to_recordset($1::json) AS x(t text, p int, lo bigint, hi bigint) "
    "ON n.source_topic = x.t AND n.source_part = x.p AND n.source_offset BETWEEN x.lo AND x.hi "
    "ORDER BY n.source_part, n.source_offset, n.notification_id";
/* The overview, urgency, assessment and running figures of each changed event: the one
 * write of an event per batch (its rows in the other tables need no event row first:
 * migration 004). */
static const char SQL_EVENTS_UPSERT[] =
    "INSERT INTO events (event_id, account_id, name, level, status, first_seen, last_seen, "
    "alert_count, occurrences, asset_count, stages, sources, predecessor, urgency, assessment, "
    "summary, version, updated_at) "
    "SELECT x.id, x.acc, x.name, x.level, 'unhandled', to_timestamp(x.f / 1000.0), "
    "to_timestamp(x.l / 1000.0), x.alerts, x.occ, x.assets, "
    "x.stages, x.sources, x.pred, x.u, x.a, x.s, 1, now() "
    "FROM json_to_recordset($1::json) AS x(id text, acc text, name text, level text, f bigint, "
    "l bigint, alerts int, occ bigint, assets int, stages text[], sources text[], pred text, "
    "u text, a jsonb, s json) "
    "ON CONFLICT (event_id) DO UPDATE SET name = EXCLUDED.name, level = CASE WHEN "
    "events.level_source = 'analyst' THEN events.level ELSE EXCLUDED.level END, "
    "first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, "
    "alert_count = EXCLUDED.alert_count, occurrences = EXCLUDED.occurrences, "
    "asset_count = EXCLUDED.asset_count, stages = EXCLUDED.stages, sources = EXCLUDED.sources, "
    "urgency = EXCLUDED.urgency, assessment = EXCLUDED.assessment, summary = EXCLUDED.summary, "
    "version = events.version + 1, updated_at = now()";
static const char SQL_ALERTS_UPSERT[] =
    "INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, last_seen, occurrences) "
    "SELECT x.e, x.a, (array_agg(x.r ORDER BY x.o))[1], to_timestamp(min(x.t) / 1000.0), "
    "to_timestamp(max(x.t) / 1000.0), count(*) "
    "FROM json_to_recordset($1::json) AS x(e text, a text, r text, t bigint, o int) "
    "GROUP BY x.e, x.a "
    "ON CONFLICT (event_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(event_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(event_alerts.last_seen, EXCLUDED.last_seen), "
    "occurrences = event_alerts.occurrences + EXCLUDED.occurrences";
static const char SQL_ENTITIES_UPSERT[] =
    "INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, event_id, alert_id, "
    "first_seen, last_seen) "
    "SELECT x.c, x.ty, x.v, x.s, x.e, x.a, to_timestamp(min(x.t) / 1000.0), "
    "to_timestamp(max(x.t) / 1000.0) "
    "FROM json_to_recordset($1::json) AS x(c text, ty text, v text, s text, e text, a text, "
    "t bigint) GROUP BY x.c, x.ty, x.v, x.s, x.e, x.a "
    "ON CONFLICT (event_id, entity_type, value, asset_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(entity_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(entity_alerts.last_seen, EXCLUDED.last_seen)";
static const char SQL_ENTITIES_TOUCH[] =
    "UPDATE entity_alerts e SET last_seen = to_timestamp(x.t / 1000.0) "
    "FROM (SELECT y.e, y.ty, y.v, y.s, y.a, max(y.t) AS t "
    "FROM json_to_recordset($1::json) AS y(ty text, v text, s text, e text, a text, t bigint) "
    "GROUP BY y.e, y.ty, y.v, y.s, y.a) x "
    "WHERE e.event_id = x.e AND e.entity_type = x.ty AND e.value = x.v AND e.asset_id = x.s "
    "AND e.alert_id = x.a AND e.last_seen < to_timestamp(x.t / 1000.0)";
static const char SQL_EDGES_UPSERT[] =
    "INSERT INTO event_edges (event_id, src_type, src, relation, dst_type, dst, alert_id, "
    "first_seen, last_seen, alerts) "
    "SELECT x.e, x.st, x.s, x.rel, x.dt, x.d, (array_agg(x.a ORDER BY x.o))[1], "
    "to_timestamp(min(x.t) / 1000.0), to_timestamp(max(x.t) / 1000.0), "
    "count(DISTINCT x.a) "
    "FROM json_to_recordset($1::json) AS x(e text, st text, s text, rel text, dt text, "
    "d text, a text, t bigint, o int) GROUP BY x.e, x.st, x.s, x.rel, x.dt, x.d "
    "ON CONFLICT (event_id, src_type, src, relation, dst_type, dst) DO UPDATE SET "
    "first_seen = LEAST(event_edges.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(event_edges.last_seen, EXCLUDED.last_seen), "
    "alerts = event_edges.alerts + EXCLUDED.alerts";
static const char SQL_KEYS_UPSERT[] =
    "INSERT INTO event_keys (key, account_id, event_id, alert_id) "
    "SELECT DISTINCT ON (x.k) x.k, x.c, x.e, x.a "
    "FROM json_to_recordset($1::json) AS x(k text, c text, e text, a text, o int) "
    "ORDER BY x.k, x.o DESC "
    "ON CONFLICT (key) DO UPDATE SET event_id = EXCLUDED.event_id, "
    "alert_id = EXCLUDED.alert_id, updated_at = now() "
    "WHERE event_keys.event_id <> EXCLUDED.event_id OR event_keys.alert_id <> EXCLUDED.alert_id";
static const char SQL_IP_STATS[] =
    "SELECT x.c, x.v, count(DISTINCT e.event_id), count(DISTINCT e.alert_id), "
    "count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') "
    "FROM (SELECT DISTINCT c, v FROM json_to_recordset($1::json) AS y(c text, v text)) x "
    "JOIN entity_alerts e ON e.account_id = x.c AND e.entity_type = 'ip' AND e.value = x.v "
    "AND e.last_seen > now() - interval '30 days' GROUP BY x.c, x.v";
static const char SQL_NOTES_INSERT[] =
    "INSERT INTO notifications (notification_id, event_id, kind, urgency, source_topic, "
    "source_part, source_offset, payload) "
    "SELECT x.id, x.e, x.k, x.u, x.t, x.p, x.o, decode(x.b, 'hex') "
    "FROM json_to_recordset($1::json) AS x(id text, e text, k text, u text, t text, p int, "
    "o bigint, b text) ON CONFLICT DO NOTHING";

/* ------------------------------------------------------------------ state */

typedef struct evs {
    char               id[CWPP_EVENT_ID_LEN + 1];
    char              *account, *owner, *predecessor;
    char               status[16];
    int                level;          /* stored level rank, or 4 when new */
    int                level_fixed;    /* an analyst set the level: alerts do not move it */
    int                is_new, changed, touched;
    int64_t            version;
    cwpp_urgency_t     urgency;        /* after this batch */
    json_t            *summary;
    json_t            *assessment;     /* {"reasons", "recommendations"} */
    char              *stored_assessment; /* as loaded, parsed only when a snapshot of an
                                           * unchanged event needs it */
    int                note_kind;      /* 0 none, 1 opened, 2 urgency raised */
    cwpp_urgency_t     note_prev;
    int64_t            note_at;
    const rd_kafka_message_t *src;     /* the latest fresh record that changed it */
} evs_t;

typedef struct item {
    rd_kafka_message_t  *m;
    int                  ok, fresh;
    cwpp_alert_t         alert;
    cwpp_corr_decision_t d;
    evs_t               *ev;
    const char          *code;
    char                 reason[300];
} item_t;

typedef struct part {
    const char *topic;
    int32_t     partition;
    int64_t     lo, hi, next;
} part_t;

/* A JSON array of row objects written straight into a buffer (no tree: these are the
 * batch's largest allocations). Errors stick; rw_text reports them. */
typedef struct rw {
    cwpp_buf_t b;
    size_t     n;      /* elements so far */
    int        fields; /* fields of the current row so far */
    int        err;
} rw_t;

static void rw_start(rw_t *w)
{
    cwpp_buf_reset(&w->b);
    w->n = 0;
    w->err = cwpp_buf_append(&w->b, "[", 1);
}

static void rw_sep(rw_t *w)
{
    if (w->n++ > 0)
        w->err |= cwpp_buf_append(&w->b, ",", 1);
}

static void rw_row(rw_t *w)
{
    rw_sep(w);
    w->err |= cwpp_buf_append(&w->b, "{", 1);
    w->fields = 0;
}

static void rw_end(rw_t *w)
{
    w->err |= cwpp_buf_append(&w->b, "}", 1);
}

static void rw_key(rw_t *w, const char *k)
{
    if (w->fields++ > 0)
        w->err |= cwpp_buf_append(&w->b, ",", 1);
    w->err |= cwpp_buf_append(&w->b, "\"", 1);
    w->err |= cwpp_buf_puts(&w->b, k); /* our own literal names: nothing to escape */
    w->err |= cwpp_buf_append(&w->b, "\":", 2);
}

static void rw_s(rw_t *w, const char *k, const char *v)
{
    rw_key(w, k);
    w->err |= cwpp_buf_json_str(&w->b, v);
}

static void rw_i(rw_t *w, const char *k, int64_t v)
{
    rw_key(w, k);
    w->err |= cwpp_buf_i64(&w->b, v);
}

static int rw_dump_cb(const char *p, size_t len, void *data)
{
    return cwpp_buf_append(data, p, len);
}

/* v as JSON (null when NULL). */
static void rw_j(rw_t *w, const char *k, const json_t *v)
{
    rw_key(w, k);
    if (v == NULL)
        w->err |= cwpp_buf_append(&w->b, "null", 4);
    else
        w->err |= json_dump_callback(v, rw_dump_cb, &w->b, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* One string element (for arrays of strings). */
static void rw_elem(rw_t *w, const char *v)
{
    rw_sep(w);
    w->err |= cwpp_buf_json_str(&w->b, v);
}

/* The array as a C string, or NULL after any error (out of memory). */
static const char *rw_text(rw_t *w)
{
    w->err |= cwpp_buf_append(&w->b, "]", 1);
    w->err |= cwpp_buf_cstr(&w->b);
    return w->err ? NULL : (const char *)w->b.data;
}

/* The rows the batch writes. */
typedef struct rows {
    rw_t events, alerts, entities, touch, edges, keys, ips, notes;
} rows_t;

static void rows_free(rows_t *w)
{
    cwpp_buf_free(&w->events.b);
    cwpp_buf_free(&w->alerts.b);
    cwpp_buf_free(&w->entities.b);
    cwpp_buf_free(&w->touch.b);
    cwpp_buf_free(&w->edges.b);
    cwpp_buf_free(&w->keys.b);
    cwpp_buf_free(&w->ips.b);
    cwpp_buf_free(&w->notes.b);
}

static void rows_start(rows_t *w)
{
    rw_start(&w->events);
    rw_start(&w->alerts);
    rw_start(&w->entities);
    rw_start(&w->touch);
    rw_start(&w->edges);
    rw_start(&w->keys);
    rw_start(&w->ips);
    rw_start(&w->notes);
}

typedef struct corr {
    const corr_conf_t  *conf;
    cwpp_assess_conf_t  ac;
    cwpp_pg_t          *pg;
    PGconn             *prepared_on;
    cwpp_avro_type_t   *t_alert, *t_rejected, *t_event, *t_note;
    avro_value_t        v_alert, v_rejected, v_event, v_note;
    int                 have_values;
    cwpp_buf_t          buf;
    rows_t              w;             /* the batch's row sets, buffers kept between batches */
    rw_t                j_parts, j_keys, j_ids;
    item_t             *items;
    size_t              items_cap;
    part_t             *parts;
    size_t              nparts, parts_cap;
    evs_t             **evs;           /* touched events, hash table by id */
    size_t              evs_cap, nevs;
    evs_t             **evlist;        /* the same, in the order first touched */
    cwpp_ip_stat_t     *ipstats;
    size_t              nipstats;
    char              **ipaccts;       /* account of each ipstats entry */
    atomic_int          db_ok;
    struct {
        int64_t alerts, recurrences, opened, joined, replayed;
    } n;                               /* this attempt's counts: metrics once committed */

    cwpp_metric_t *m_alerts, *m_recurrences, *m_opened, *m_joined, *m_dead, *m_db_errors;
    cwpp_metric_t *m_notes, *m_snapshots, *m_replayed, *m_db_seconds;
} corr_t;

/* ------------------------------------------------------------ life cycle */

static corr_t *corr_new(const corr_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                        size_t errstr_size)
{
    corr_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    c->conf = conf;
    cwpp_assess_conf_default(&c->ac);
    c->ac.core_roles = conf->core_roles;
    c->ac.authoritative_sources = conf->authoritative_sources;
    c->ac.probe_types = conf->probe_types;
    c->ac.alerts_high = conf->alerts_high;
    c->ac.growth_alerts = conf->growth_alerts;
    c->ac.recent_ms = conf->recent_ms;
    c->ac.escalation_ms = conf->escalation_ms;
    c->ac.escalation_alerts = conf->escalation_alerts;
    c->ac.escalation_types = conf->escalation_types;
    c->ac.ip_block_events = conf->ip_block_events;
    c->ac.ip_block_alerts = conf->ip_block_alerts;
    c->ac.ip_targeted_assets = conf->ip_targeted_assets;
    c->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-correlator");
    c->t_alert = cwpp_avro_type_builtin("alert", errstr, errstr_size);
    c->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size);
    c->t_event = cwpp_avro_type_builtin("event", errstr, errstr_size);
    c->t_note = cwpp_avro_type_builtin("notification", errstr, errstr_size);
    if (c->pg == NULL || c->t_alert == NULL || c->t_rejected == NULL || c->t_event == NULL ||
        c->t_note == NULL || cwpp_avro_value_new(c->t_alert, &c->v_alert) != CWPP_OK ||
        cwpp_avro_value_new(c->t_rejected, &c->v_rejected) != CWPP_OK ||
        cwpp_avro_value_new(c->t_event, &c->v_event) != CWPP_OK ||
        cwpp_avro_value_new(c->t_note, &c->v_note) != CWPP_OK) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot set up the Avro types");
        return c; /* corr_destroy frees; the caller checks have_values */
    }
    c->have_values = 1;
#define C(n, h) cwpp_counter(metrics, n, h)
    c->m_alerts = C("cwpp_correlator_alerts_total", "Alert records applied to events.");
    c->m_recurrences = C("cwpp_correlator_recurrences_total",
                         "Alert records that were recurrences of an alert already in its event.");
    c->m_opened = C("cwpp_correlator_events_opened_total", "Security events opened.");
    c->m_joined = C("cwpp_correlator_alerts_joined_total",
                    "New alerts that joined an existing open event.");
    c->m_dead = C("cwpp_correlator_dead_letters_total", "Records sent to the dead-letter topic.");
    c->m_db_errors = C("cwpp_correlator_db_errors_total", "Batches whose transaction failed.");
    c->m_notes = C("cwpp_correlator_notifications_total", "Notifications sent.");
    c->m_snapshots = C("cwpp_correlator_snapshots_total", "Event snapshots sent.");
    c->m_replayed = C("cwpp_correlator_replayed_total",
                      "Records already applied before (redelivered after a crash): skipped.");
#undef C
    {
        static const double b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
        c->m_db_seconds = cwpp_histogram(metrics, "cwpp_correlator_db_seconds",
                                         "Time of one batch's transaction.", b, 9);
    }
    return c;
}

static void evs_free(evs_t *e)
{
    if (e == NULL)
        return;
    free(e->account);
    free(e->owner);
    free(e->predecessor);
    json_decref(e->summary);
    json_decref(e->assessment);
    free(e->stored_assessment);
    free(e);
}

static void evs_reset(corr_t *c)
{
    size_t i;

    for (i = 0; i < c->nevs; i++)
        evs_free(c->evlist[i]);
    if (c->evs != NULL)
        memset(c->evs, 0, c->evs_cap * sizeof(*c->evs));
    c->nevs = 0;
    for (i = 0; i < c->nipstats; i++)
        free(c->ipaccts[i]);
    c->nipstats = 0;
}

static void corr_destroy(corr_t *c)
{
    size_t i;

    if (c == NULL)
        return;
    evs_reset(c);
    free(c->evs);
    free(c->evlist);
    for (i = 0; i < c->items_cap; i++)
        cwpp_alert_clear(&c->items[i].alert);
    free(c->items);
    free(c->parts);
    free(c->ipstats);
    free(c->ipaccts);
    if (c->have_values) {
        avro_value_decref(&c->v_alert);
        avro_value_decref(&c->v_rejected);
        avro_value_decref(&c->v_event);
        avro_value_decref(&c->v_note);
    }
    cwpp_avro_type_destroy(c->t_alert);
    cwpp_avro_type_destroy(c->t_rejected);
    cwpp_avro_type_destroy(c->t_event);
    cwpp_avro_type_destroy(c->t_note);
    cwpp_buf_free(&c->buf);
    rows_free(&c->w);
    cwpp_buf_free(&c->j_parts.b);
    cwpp_buf_free(&c->j_keys.b);
    cwpp_buf_free(&c->j_ids.b);
    cwpp_pg_destroy(c->pg);
    free(c);
}

static int prepare(corr_t *c, char *errstr, size_t errstr_size)
{
    PGconn *conn = cwpp_pg_conn(c->pg);
    static const struct { const char *name, *sql; } stmts[] = {
        {"offsets_rows", SQL_OFFSETS_ROWS},     {"offsets_lock", SQL_OFFSETS_LOCK},
        {"offsets_set", SQL_OFFSETS_SET},       {"load_events", SQL_LOAD_EVENTS},
        {"load_keys", SQL_LOAD_KEYS},           {"load_alerts", SQL_LOAD_ALERTS},
        {"load_notes", SQL_LOAD_NOTES},         {"events_upsert", SQL_EVENTS_UPSERT},
        {"alerts_upsert", SQL_ALERTS_UPSERT},   {"entities_upsert", SQL_ENTITIES_UPSERT},
        {"edges_upsert", SQL_EDGES_UPSERT},     {"entities_touch", SQL_ENTITIES_TOUCH},     {"keys_upsert", SQL_KEYS_UPSERT},
        {"ip_stats", SQL_IP_STATS},             {"notes_insert", SQL_NOTES_INSERT},
    };
    size_t i;

    if (c->prepared_on == conn)
        return CWPP_OK;
    for (i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *r = PQprepare(conn, stmts[i].name, stmts[i].sql, 0, NULL);
        int       rc = cwpp_pg_check(c->pg, r, PGRES_COMMAND_OK, stmts[i].name, errstr,
                                     errstr_size);

        PQclear(r);
        if (rc != CWPP_OK)
            return rc == CWPP_EDATA ? CWPP_ECONFIG : rc;
    }
    c->prepared_on = conn;
    return CWPP_OK;
}

/* ------------------------------------------------------------- the events */

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static evs_t *ev_find(corr_t *c, const char *id)
{
    size_t i;

    if (c->evs_cap == 0)
        return NULL;
    for (i = fnv(id) & (c->evs_cap - 1); c->evs[i] != NULL; i = (i + 1) & (c->evs_cap - 1))
        if (strcmp(c->evs[i]->id, id) == 0)
            return c->evs[i];
    return NULL;
}

/* Sizes the table for n more events (called once per batch with an upper bound). */
static int ev_reserve(corr_t *c, size_t n)
{
    size_t cap = 64;

    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap <= c->evs_cap)
        return CWPP_OK;
    free(c->evs);
    free(c->evlist);
    c->evs = calloc(cap, sizeof(*c->evs));
    c->evlist = calloc(cap, sizeof(*c->evlist));
    c->evs_cap = c->evs != NULL && c->evlist != NULL ? cap : 0;
    return c->evs_cap ? CWPP_OK : CWPP_ENOMEM;
}

static evs_t *ev_add(corr_t *c, const char *id, const char *account)
{
    evs_t *e;
    size_t i;

    if (c->nevs + 1 > c->evs_cap / 2 || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->account = strdup(account);
    e->summary = json_object();
    e->level = 4;
    e->urgency = CWPP_URG_LOW;
    snprintf(e->status, sizeof(e->status), "unhandled");
    if (e->account == NULL || e->summary == NULL) {
        evs_free(e);
        return NULL;
    }
    for (i = fnv(id) & (c->evs_cap - 1); c->evs[i] != NULL; i = (i + 1) & (c->evs_cap - 1))
        ;
    c->evs[i] = e;
    c->evlist[c->nevs++] = e;
    return e;
}

static int level_rank(const char *s)
{
    cwpp_severity_t v;

    return s != NULL && cwpp_severity_parse(s, &v) == 0 ? (int)v : 4;
}

/* ------------------------------------------------------------ the batch */

static int ensure_items(corr_t *c, size_t n)
{
    item_t *ni;

    if (n <= c->items_cap)
        return CWPP_OK;
    ni = realloc(c->items, n * sizeof(*ni));
    if (ni == NULL)
        return CWPP_ENOMEM;
    memset(ni + c->items_cap, 0, (n - c->items_cap) * sizeof(*ni));
    c->items = ni;
    c->items_cap = n;
    return CWPP_OK;
}

static int collect_parts(corr_t *c, rd_kafka_message_t **msgs, size_t n)
{
    size_t i, p;

    c->nparts = 0;
    for (i = 0; i < n; i++) {
        const char *t = rd_kafka_topic_name(msgs[i]->rkt);

        for (p = 0; p < c->nparts; p++)
            if (c->parts[p].partition == msgs[i]->partition && strcmp(c->parts[p].topic, t) == 0)
                break;
        if (p == c->nparts) {
            if (c->nparts == c->parts_cap) {
                size_t  nc = c->parts_cap ? c->parts_cap * 2 : 32;
                part_t *np = realloc(c->parts, nc * sizeof(*np));

                if (np == NULL)
                    return CWPP_ENOMEM;
                c->parts = np;
                c->parts_cap = nc;
            }
            c->parts[p] = (part_t){t, msgs[i]->partition, msgs[i]->offset, msgs[i]->offset, 0};
            c->nparts++;
        }
        if (msgs[i]->offset > c->parts[p].hi)
            c->parts[p].hi = msgs[i]->offset;
        if (msgs[i]->offset < c->parts[p].lo)
            c->parts[p].lo = msgs[i]->offset;
    }
    return CWPP_OK;
}

static part_t *part_of(corr_t *c, const rd_kafka_message_t *m)
{
    const char *t = rd_kafka_topic_name(m->rkt);
    size_t      p;

    for (p = 0; p < c->nparts; p++)
        if (c->parts[p].partition == m->partition && strcmp(c->parts[p].topic, t) == 0)
            return &c->parts[p];
    return NULL;
}

/* Validates one record into it (decoded alert or a dead-letter reason). */
static void take(corr_t *c, item_t *it, rd_kafka_message_t *m, int64_t now)
{
    char why[256];

    cwpp_alert_clear(&it->alert);
    memset(it, 0, sizeof(*it));
    it->m = m;
    if (m->len > (size_t)c->conf->max_message_bytes) {
        it->code = "oversized";
        snprintf(it->reason, sizeof(it->reason),
                 "the record has %zu bytes, more than correlator.max.message.bytes (%lld)",
                 m->len, (long long)c->conf->max_message_bytes);
        return;
    }
    if (cwpp_alert_from_avro(c->t_alert, m->payload, m->len, &c->v_alert, &it->alert, why,
                             sizeof(why)) != CWPP_OK) {
        it->code = "bad_avro";
        snprintf(it->reason, sizeof(it->reason), "not a valid Alert record: %s", why);
        return;
    }
    if (!cwpp_alert_id_valid(it->alert.alert_id)) {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason),
                 "the alert id is not \"al-\" and 32 hex digits");
    } else if (it->alert.account_id == NULL || it->alert.account_id[0] == '\0' ||
               it->alert.asset.id == NULL || it->alert.asset.id[0] == '\0') {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason), "the alert has no account or no asset id");
    } else if (it->alert.occurred_at_ms > now + c->conf->max_future_ms) {
        it->code = "future_time";
        snprintf(it->reason, sizeof(it->reason),
                 "the alert occurred %lld s in the future, more than correlator.max.future.ms",
                 (long long)((it->alert.occurred_at_ms - now) / 1000));
    } else if (it->alert.status == CWPP_ST_MANUALLY_WHITELISTED ||
               it->alert.status == CWPP_ST_AUTOMATICALLY_WHITELISTED) {
        it->code = "whitelisted";
        snprintf(it->reason, sizeof(it->reason),
                 "a %s alert on the accepted topic: whitelisted alerts never join events",
                 cwpp_status_name(it->alert.status));
    } else {
        it->ok = 1;
        return;
    }
    cwpp_alert_clear(&it->alert);
}

/* The batch's partitions with their offset ranges, as JSON; NULL on ENOMEM. */
static const char *parts_json(corr_t *c)
{
    rw_t  *w = &c->j_parts;
    size_t i;

    rw_start(w);
    for (i = 0; i < c->nparts; i++) {
        rw_row(w);
        rw_s(w, "t", c->parts[i].topic);
        rw_i(w, "p", c->parts[i].partition);
        rw_i(w, "lo", c->parts[i].lo);
        rw_i(w, "hi", c->parts[i].hi);
        rw_end(w);
    }
    return rw_text(w);
}

/* The batch's keys and alert ids as JSON arrays. */
static int lookup_json(corr_t *c, size_t n, const char **keys, const char **ids)
{
    size_t i, j;

    rw_start(&c->j_keys);
    rw_start(&c->j_ids);
    for (i = 0; i < n; i++) {
        const cwpp_alert_t *al = &c->items[i].alert;
        cwpp_corr_key_t     ks[CWPP_CORR_MAX_KEYS];
        size_t              nk;
        char                s[CWPP_CORR_KEY_MAX];

        if (!c->items[i].ok)
            continue;
        rw_elem(&c->j_ids, al->alert_id);
        nk = cwpp_corr_keys(al, ks);
        for (j = 0; j < nk; j++)
            if (cwpp_corr_key_string(al->account_id, &ks[j], s, sizeof(s)) == 0)
                rw_elem(&c->j_keys, s);
    }
    *keys = rw_text(&c->j_keys);
    *ids = rw_text(&c->j_ids);
    return *keys != NULL && *ids != NULL ? CWPP_OK : CWPP_ENOMEM;
}

/* Loads the locked events, their keys and memberships into ix and the touched table. */
static int seed(corr_t *c, cwpp_corr_index_t *ix, PGresult *r_ev, PGresult *r_keys,
                PGresult *r_alerts)
{
    int i;

    for (i = 0; i < PQntuples(r_ev); i++) {
        const char        *id = PQgetvalue(r_ev, i, 0), *st = PQgetvalue(r_ev, i, 2);
        evs_t             *e = ev_add(c, id, PQgetvalue(r_ev, i, 1));
        json_error_t       jerr;
        cwpp_event_state_t state = strcmp(st, "handled") == 0 ? CWPP_EV_HANDLED : CWPP_EV_OPEN;

        if (e == NULL)
            return CWPP_ENOMEM;
        snprintf(e->status, sizeof(e->status), "%s", st);
        if (!PQgetisnull(r_ev, i, 5) && (e->owner = strdup(PQgetvalue(r_ev, i, 5))) == NULL)
            return CWPP_ENOMEM;
        if (!PQgetisnull(r_ev, i, 6) &&
            (e->predecessor = strdup(PQgetvalue(r_ev, i, 6))) == NULL)
            return CWPP_ENOMEM;
        if (cwpp_urgency_parse(PQgetvalue(r_ev, i, 7), &e->urgency) != 0)
            e->urgency = CWPP_URG_LOW;
        json_decref(e->summary);
        e->summary = json_loads(PQgetvalue(r_ev, i, 8), 0, &jerr);
        if (!json_is_object(e->summary)) {
            json_decref(e->summary);
            e->summary = json_object();
            if (e->summary == NULL)
                return CWPP_ENOMEM;
        }
        e->version = strtoll(PQgetvalue(r_ev, i, 9), NULL, 10);
        if ((e->stored_assessment = strdup(PQgetvalue(r_ev, i, 11))) == NULL)
            return CWPP_ENOMEM;
        e->level = level_rank(PQgetvalue(r_ev, i, 10));
        e->level_fixed = PQgetvalue(r_ev, i, 12)[0] == 't';
        if (cwpp_corr_index_seed_event(ix, id, e->account, state,
                                       strtoll(PQgetvalue(r_ev, i, 3), NULL, 10),
                                       strtoll(PQgetvalue(r_ev, i, 4), NULL, 10)) == CWPP_ENOMEM)
            return CWPP_ENOMEM;
    }
    for (i = 0; i < PQntuples(r_keys); i++)
        if (cwpp_corr_index_seed_key(ix, PQgetvalue(r_keys, i, 0), PQgetvalue(r_keys, i, 1),
                                     PQgetvalue(r_keys, i, 2)) == CWPP_ENOMEM)
            return CWPP_ENOMEM;
    for (i = 0; i < PQntuples(r_alerts); i++)
        if (cwpp_corr_index_seed_alert(ix, PQgetvalue(r_alerts, i, 0),
                                       PQgetvalue(r_alerts, i, 1)) == CWPP_ENOMEM)
            return CWPP_ENOMEM;
    return CWPP_OK;
}

/* Decides and applies one fresh alert: index, event figures, rows. */
static int apply(corr_t *c, cwpp_corr_index_t *ix, item_t *it, size_t ord, rows_t *w)
{
    cwpp_alert_t     *a = &it->alert;
    cwpp_corr_edge_t  edges[CWPP_CORR_MAX_EDGES];
    cwpp_corr_key_t   keys[CWPP_CORR_MAX_KEYS];
    evs_t            *e;
    size_t            i, n;
    int64_t           t = a->occurred_at_ms;

    char              ks[CWPP_CORR_MAX_KEYS][CWPP_CORR_KEY_MAX];
    const char       *before[CWPP_CORR_MAX_KEYS], *by;
    size_t            nk = cwpp_corr_keys(a, keys);

    for (i = 0; i < nk; i++) { /* who owned each key before: only changes are written */
        before[i] = NULL;
        if (cwpp_corr_key_string(a->account_id, &keys[i], ks[i], sizeof(ks[i])) != 0)
            ks[i][0] = '\0';
        else if (cwpp_corr_index_key_owner(ix, ks[i], &before[i], &by) != CWPP_OK)
            before[i] = NULL;
    }
    if (cwpp_corr_decide(ix, a, &it->d) != CWPP_OK)
        return CWPP_EINVAL;
    if (cwpp_corr_index_apply(ix, a, &it->d) != CWPP_OK)
        return CWPP_ENOMEM;
    e = ev_find(c, it->d.event_id);
    if (e == NULL) {
        if ((e = ev_add(c, it->d.event_id, a->account_id)) == NULL)
            return CWPP_ENOMEM;
        e->is_new = 1;
        if (it->d.predecessor[0] && (e->predecessor = strdup(it->d.predecessor)) == NULL)
            return CWPP_ENOMEM;
        c->n.opened++;
    } else if (!it->d.recurrence) {
        c->n.joined++;
    }
    it->ev = e;
    e->changed = e->touched = 1;
    e->src = it->m;
    if (a->defense != CWPP_DEF_PRECISION && a->occurred_at_ms > e->note_at)
        e->note_at = a->occurred_at_ms;
    if (it->d.recurrence)
        c->n.recurrences++;
    if (cwpp_ev_summary_add(e->summary, a, !it->d.recurrence, &c->ac) != CWPP_OK)
        return CWPP_ENOMEM;

    rw_row(&w->alerts);
    rw_s(&w->alerts, "e", e->id);
    rw_s(&w->alerts, "a", a->alert_id);
    rw_s(&w->alerts, "r", it->d.reason);
    rw_i(&w->alerts, "t", t);
    rw_i(&w->alerts, "o", (int64_t)ord);
    rw_end(&w->alerts);
    /* a new alert's entities; a recurrence moves the last_seen of the entities its alert
     * already has (so an alert that keeps recurring stays in their 30-day figures), but
     * adds none: fields outside "the same alert" key may differ between occurrences */
    for (i = 0; i < a->n_entities; i++) {
        const cwpp_entity_t *x = &a->entities[i];
        const char          *asset = x->type == CWPP_ENT_IP ? a->asset.id : x->asset_id;
        rw_t                *r = it->d.recurrence ? &w->touch : &w->entities;

        rw_row(r);
        if (!it->d.recurrence)
            rw_s(r, "c", a->account_id);
        rw_s(r, "ty", cwpp_entity_type_name(x->type));
        rw_s(r, "v", x->value);
        rw_s(r, "s", asset != NULL ? asset : "");
        rw_s(r, "e", e->id);
        rw_s(r, "a", a->alert_id);
        rw_i(r, "t", t);
        rw_end(r);
    }
    n = it->d.recurrence ? 0 : cwpp_corr_edges(a, edges); /* the graph: distinct alerts */
    for (i = 0; i < n; i++) {
        rw_row(&w->edges);
        rw_s(&w->edges, "e", e->id);
        rw_s(&w->edges, "st", edges[i].src_type);
        rw_s(&w->edges, "s", edges[i].src);
        rw_s(&w->edges, "rel", edges[i].relation);
        rw_s(&w->edges, "dt", edges[i].dst_type);
        rw_s(&w->edges, "d", edges[i].dst);
        rw_s(&w->edges, "a", a->alert_id);
        rw_i(&w->edges, "t", t);
        rw_i(&w->edges, "o", (int64_t)ord);
        rw_end(&w->edges);
    }
    for (i = 0; i < nk; i++) {
        const char *owner;

        if (ks[i][0] == '\0' || cwpp_corr_index_key_owner(ix, ks[i], &owner, &by) != CWPP_OK ||
            (before[i] != NULL && strcmp(before[i], owner) == 0))
            continue; /* unchanged */
        /* the owner after this alert; the last row of a key (by o) is its final owner */
        rw_row(&w->keys);
        rw_s(&w->keys, "k", ks[i]);
        rw_s(&w->keys, "c", a->account_id);
        rw_s(&w->keys, "e", owner);
        rw_s(&w->keys, "a", by);
        rw_i(&w->keys, "o", (int64_t)ord);
        rw_end(&w->keys);
    }
    c->n.alerts++;
    return CWPP_OK;
}

static int64_t sgeti(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* The changed events' level and version after this batch, and the IPs whose 30-day
 * figures the assessment needs. The events rows themselves are written by assess(). */
static int event_prep(corr_t *c, rows_t *w)
{
    size_t i;

    for (i = 0; i < c->nevs; i++) {
        evs_t      *e = c->evlist[i];
        json_t     *s = e->summary, *ips = json_object_get(s, "ips"), *v;
        const char *ip;
        int         sev;

        if (!e->changed)
            continue;
        if ((json_object_get(s, "stages") == NULL &&
             json_object_set_new(s, "stages", json_array()) != 0) ||
            (json_object_get(s, "sources") == NULL &&
             json_object_set_new(s, "sources", json_array()) != 0))
            return CWPP_ENOMEM;
        sev = (int)sgeti(s, "sev");
        if (sev < e->level && !e->level_fixed)
            e->level = sev;
        e->version++;
        json_object_foreach(ips, ip, v) {
            rw_row(&w->ips);
            rw_s(&w->ips, "c", e->account);
            rw_s(&w->ips, "v", ip);
            rw_end(&w->ips);
        }
    }
    return w->ips.err ? CWPP_ENOMEM : CWPP_OK;
}

/* The events row of a changed event (after its assessment). */
static void event_row(rw_t *w, const evs_t *e)
{
    const json_t *s = e->summary;
    const char   *name = json_string_value(json_object_get(s, "name"));

    rw_row(w);
    rw_s(w, "id", e->id);
    rw_s(w, "acc", e->account);
    rw_s(w, "name", name != NULL ? name : "");
    rw_s(w, "level", cwpp_severity_name((cwpp_severity_t)e->level));
    rw_i(w, "f", sgeti(s, "first_ms"));
    rw_i(w, "l", sgeti(s, "last_ms"));
    rw_i(w, "alerts", sgeti(s, "alerts"));
    rw_i(w, "occ", sgeti(s, "occurrences"));
    rw_i(w, "assets", (int64_t)json_object_size(json_object_get(s, "assets")));
    rw_j(w, "stages", json_object_get(s, "stages"));
    rw_j(w, "sources", json_object_get(s, "sources"));
    rw_s(w, "pred", e->predecessor);
    rw_s(w, "u", cwpp_urgency_name(e->urgency));
    rw_j(w, "a", e->assessment);
    rw_j(w, "s", s);
    rw_end(w);
}

static int read_ipstats(corr_t *c, const PGresult *r)
{
    int i, n = PQntuples(r);

    if ((size_t)n > 0) {
        cwpp_ip_stat_t *ns = realloc(c->ipstats, (size_t)n * sizeof(*ns));
        char          **na;

        if (ns == NULL)
            return CWPP_ENOMEM;
        c->ipstats = ns;
        if ((na = realloc(c->ipaccts, (size_t)n * sizeof(*na))) == NULL)
            return CWPP_ENOMEM;
        c->ipaccts = na;
    }
    for (i = 0; i < n; i++) {
        char *acct = strdup(PQgetvalue(r, i, 0));
        char *ip = acct != NULL ? strdup(PQgetvalue(r, i, 1)) : NULL;
        char *both;

        if (ip == NULL) {
            free(acct);
            return CWPP_ENOMEM;
        }
        /* one allocation holds account and ip: "acct\0ip" */
        both = realloc(acct, strlen(acct) + strlen(ip) + 2);
        if (both == NULL) {
            free(acct);
            free(ip);
            return CWPP_ENOMEM;
        }
        strcpy(both + strlen(both) + 1, ip);
        free(ip);
        c->ipaccts[c->nipstats] = both;
        c->ipstats[c->nipstats] = (cwpp_ip_stat_t){both + strlen(both) + 1,
                                                   strtoll(PQgetvalue(r, i, 2), NULL, 10),
                                                   strtoll(PQgetvalue(r, i, 3), NULL, 10),
                                                   strtoll(PQgetvalue(r, i, 4), NULL, 10)};
        c->nipstats++;
    }
    return CWPP_OK;
}

static int set_str_array(avro_value_t *rec, const char *field, const json_t *arr)
{
    avro_value_t a, x;
    size_t       i;

    if (avro_value_get_by_name(rec, field, &a, NULL) != 0)
        return -1;
    for (i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));

        if (s == NULL)
            continue;
        if (avro_value_append(&a, &x, NULL) != 0 || avro_value_set_string(&x, s) != 0)
            return -1;
    }
    return 0;
}

/* The notification record of e (kind 1 opened, 2 urgency raised) into c->buf. */
static int build_note(corr_t *c, const evs_t *e, char *errstr, size_t errstr_size)
{
    avro_value_t *v = &c->v_note, arr, x;
    const json_t *reasons = json_object_get(e->assessment, "reasons");
    char          id[128];
    size_t        i;
    int           rc = 0;

    avro_value_reset(v);
    snprintf(id, sizeof(id), "%s:%s:%s", e->id, e->note_kind == 1 ? "opened" : "raised",
             cwpp_urgency_name(e->urgency));
    rc |= cwpp_avro_set_str(v, "notification_id", id);
    rc |= cwpp_avro_set_enum(v, "kind", e->note_kind == 1 ? "event_opened" : "urgency_raised");
    rc |= cwpp_avro_set_str(v, "event_id", e->id);
    rc |= cwpp_avro_set_str(v, "account_id", e->account);
    rc |= cwpp_avro_set_str(v, "name", json_string_value(json_object_get(e->summary, "name"))
                                           ? json_string_value(json_object_get(e->summary, "name"))
                                           : "");
    rc |= cwpp_avro_set_enum(v, "level", cwpp_severity_name((cwpp_severity_t)e->level));
    rc |= cwpp_avro_set_enum(v, "urgency", cwpp_urgency_name(e->urgency));
    if (avro_value_get_by_name(v, "previous_urgency", &x, NULL) != 0)
        rc = -1;
    else if (e->note_kind == 2) {
        avro_value_t b;

        rc |= avro_value_set_branch(&x, 1, &b);
        rc |= avro_value_set_enum(&b, (int)e->note_prev);
    } else {
        avro_value_t b;

        rc |= avro_value_set_branch(&x, 0, &b);
        rc |= avro_value_set_null(&b);
    }
    if (avro_value_get_by_name(v, "reasons", &arr, NULL) != 0)
        rc = -1;
    for (i = 0; rc == 0 && i < json_array_size(reasons); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(reasons, i), "text"));

        if (avro_value_append(&arr, &x, NULL) != 0 || avro_value_set_string(&x, t ? t : "") != 0)
            rc = -1;
    }
    rc |= cwpp_avro_set_int(v, "alert_count", (int32_t)sgeti(e->summary, "alerts"));
    rc |= cwpp_avro_set_long(v, "at_ms", e->note_at);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot build Notification");
    cwpp_buf_reset(&c->buf);
    return cwpp_avro_encode(c->t_note, v, &c->buf, errstr, errstr_size);
}

/* Assessments and notifications of the changed events. */
static int assess(corr_t *c, rows_t *w, int64_t now, char *errstr, size_t errstr_size)
{
    size_t i, j;
    int    rc = 0;

    for (i = 0; i < c->nevs; i++) {
        evs_t            *e = c->evlist[i];
        cwpp_assessment_t as;
        cwpp_ip_stat_t    mine[64];
        size_t            nm = 0;
        const char       *notified;
        cwpp_urgency_t    prev;

        if (!e->changed)
            continue;
        for (j = 0; j < c->nipstats && nm < 64; j++)
            if (strcmp(c->ipaccts[j], e->account) == 0)
                mine[nm++] = c->ipstats[j];
        if (cwpp_ev_assess(e->summary, &c->ac, now, mine, nm, &as) != CWPP_OK)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        e->urgency = as.urgency;
        json_decref(e->assessment);
        e->assessment = json_pack("{s:o, s:o, s:I}", "reasons", as.reasons, "recommendations",
                                  as.recommendations, "assessed_at", (json_int_t)now);
        if (e->assessment == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        /* notifications: once the event holds an alert that is not precision defence,
         * then whenever the urgency rises above the one last notified */
        notified = json_string_value(json_object_get(e->summary, "notified"));
        if (e->note_at > 0 && sgeti(e->summary, "non_pd") > 0) {
            if (notified == NULL || notified[0] == '\0')
                e->note_kind = 1;
            else if (cwpp_urgency_parse(notified, &prev) == 0 && e->urgency < prev) {
                e->note_kind = 2;
                e->note_prev = prev;
            }
        }
        if (e->note_kind) {
            char id[128];

            if (json_object_set_new(e->summary, "notified",
                                    json_string(cwpp_urgency_name(e->urgency))) != 0)
                return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            if ((rc = build_note(c, e, errstr, errstr_size)) != CWPP_OK)
                return rc;
            snprintf(id, sizeof(id), "%s:%s:%s", e->id, e->note_kind == 1 ? "opened" : "raised",
                     cwpp_urgency_name(e->urgency));
            rw_row(&w->notes);
            rw_s(&w->notes, "id", id);
            rw_s(&w->notes, "e", e->id);
            rw_s(&w->notes, "k", e->note_kind == 1 ? "event_opened" : "urgency_raised");
            rw_s(&w->notes, "u", cwpp_urgency_name(e->urgency));
            rw_s(&w->notes, "t", rd_kafka_topic_name(e->src->rkt));
            rw_i(&w->notes, "p", e->src->partition);
            rw_i(&w->notes, "o", e->src->offset);
            rw_key(&w->notes, "b");
            w->notes.err |= cwpp_buf_append(&w->notes.b, "\"", 1);
            w->notes.err |= cwpp_buf_hex(&w->notes.b, c->buf.data, c->buf.len);
            w->notes.err |= cwpp_buf_append(&w->notes.b, "\"", 1);
            rw_end(&w->notes);
        }
        event_row(&w->events, e);
    }
    if (w->notes.err || w->events.err)
        rc = -1;
    return rc ? cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory") : CWPP_OK;
}

/* The snapshot record of e into c->buf. */
static int build_snapshot(corr_t *c, evs_t *e, int64_t now, char *errstr, size_t errstr_size)
{
    avro_value_t *v = &c->v_event, arr, x;
    const json_t *s = e->summary, *assets = json_object_get(s, "assets"), *jv;
    const json_t *reasons, *recs;
    const char   *k;
    size_t        i;
    int           rc = 0;

    if (e->assessment == NULL && e->stored_assessment != NULL) {
        json_error_t jerr;

        e->assessment = json_loads(e->stored_assessment, 0, &jerr); /* NULL: no reasons */
    }
    reasons = json_object_get(e->assessment, "reasons");
    recs = json_object_get(e->assessment, "recommendations");
    avro_value_reset(v);
    rc |= cwpp_avro_set_str(v, "event_id", e->id);
    rc |= cwpp_avro_set_str(v, "account_id", e->account);
    rc |= cwpp_avro_set_str(v, "name", json_string_value(json_object_get(s, "name"))
                                           ? json_string_value(json_object_get(s, "name"))
                                           : "");
    rc |= cwpp_avro_set_enum(v, "level", cwpp_severity_name((cwpp_severity_t)(e->level < 4
                                                                                  ? e->level
                                                                                  : 3)));
    rc |= cwpp_avro_set_enum(v, "status", e->status);
    rc |= cwpp_avro_set_opt_str(v, "owner", e->owner);
    rc |= cwpp_avro_set_opt_str(v, "predecessor", e->predecessor);
    rc |= set_str_array(v, "stages", json_object_get(s, "stages"));
    rc |= set_str_array(v, "sources", json_object_get(s, "sources"));
    rc |= cwpp_avro_set_int(v, "alert_count", (int32_t)sgeti(s, "alerts"));
    rc |= cwpp_avro_set_long(v, "occurrences", sgeti(s, "occurrences"));
    if (avro_value_get_by_name(v, "affected_assets", &arr, NULL) != 0)
        rc = -1;
    json_object_foreach((json_t *)assets, k, jv) {
        if (rc != 0)
            break;
        if (avro_value_append(&arr, &x, NULL) != 0) {
            rc = -1;
            break;
        }
        rc |= cwpp_avro_set_str(&x, "asset_id", k);
        rc |= cwpp_avro_set_opt_str(&x, "name", json_string_value(json_object_get(jv, "name")));
        rc |= cwpp_avro_set_opt_str(&x, "role", json_string_value(json_object_get(jv, "role")));
        rc |= set_str_array(&x, "ips", json_object_get(jv, "ips"));
        rc |= cwpp_avro_set_int(&x, "alerts", (int32_t)sgeti(jv, "alerts"));
    }
    rc |= cwpp_avro_set_long(v, "first_seen_ms", sgeti(s, "first_ms"));
    rc |= cwpp_avro_set_long(v, "last_seen_ms", sgeti(s, "last_ms"));
    rc |= cwpp_avro_set_enum(v, "urgency", cwpp_urgency_name(e->urgency));
    if (avro_value_get_by_name(v, "reasons", &arr, NULL) != 0)
        rc = -1;
    for (i = 0; rc == 0 && i < json_array_size(reasons); i++) {
        const json_t *r = json_array_get(reasons, i);

        if (avro_value_append(&arr, &x, NULL) != 0) {
            rc = -1;
            break;
        }
        rc |= cwpp_avro_set_str(&x, "code", json_string_value(json_object_get(r, "code")));
        rc |= cwpp_avro_set_str(&x, "text", json_string_value(json_object_get(r, "text")));
    }
    if (avro_value_get_by_name(v, "recommendations", &arr, NULL) != 0)
        rc = -1;
    for (i = 0; rc == 0 && i < json_array_size(recs); i++) {
        const json_t *r = json_array_get(recs, i);

        if (avro_value_append(&arr, &x, NULL) != 0) {
            rc = -1;
            break;
        }
        rc |= cwpp_avro_set_str(&x, "action", json_string_value(json_object_get(r, "action")));
        rc |= cwpp_avro_set_str(&x, "entity_type",
                                json_string_value(json_object_get(r, "entity_type")));
        rc |= cwpp_avro_set_str(&x, "entity_value",
                                json_string_value(json_object_get(r, "entity_value")));
        rc |= cwpp_avro_set_str(&x, "reason", json_string_value(json_object_get(r, "reason")));
    }
    rc |= cwpp_avro_set_long(v, "version", e->version);
    rc |= cwpp_avro_set_long(v, "updated_at_ms", now);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot build SecurityEvent %s",
                           e->id);
    cwpp_buf_reset(&c->buf);
    return cwpp_avro_encode(c->t_event, v, &c->buf, errstr, errstr_size);
}

/* Runs the batch's transaction; on success the outbox holds its records. */
static int run_tx(corr_t *c, size_t n, int64_t now, cwpp_outbox_t *out, char *errstr,
                  size_t errstr_size)
{
    PGresult          *r_lock = NULL, *r_ev = NULL, *r_keys = NULL, *r_al = NULL, *r_notes = NULL;
    PGresult          *r_ips = NULL;
    cwpp_pg_stmt_t     q[8];
    cwpp_corr_index_t *ix = NULL;
    rows_t            *w = &c->w;
    const char        *parts, *keys = NULL, *ids = NULL;
    const char        *j_ev, *j_al, *j_ent, *j_touch, *j_edge, *j_keys, *j_ips, *j_notes;
    const char        *grp = c->conf->common.group_id;
    size_t             i, nq = 0, changed = 0;
    int                rc, k;

    evs_reset(c);
    rows_start(w);
    memset(&c->n, 0, sizeof(c->n));
    if ((parts = parts_json(c)) == NULL || lookup_json(c, n, &keys, &ids) != CWPP_OK ||
        /* each alert may point at an event per key and one by membership, and open one */
        ev_reserve(c, (CWPP_CORR_MAX_KEYS + 2) * n + 16) != CWPP_OK ||
        (ix = cwpp_corr_index_new(c->conf->window_ms)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto done;
    }
    q[nq++] = (cwpp_pg_stmt_t){"BEGIN", -1, {0}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"offsets_rows", 2, {grp, parts}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"offsets_lock", 2, {grp, parts}, PGRES_TUPLES_OK, &r_lock};
    q[nq++] = (cwpp_pg_stmt_t){"load_events", 2, {keys, ids}, PGRES_TUPLES_OK, &r_ev};
    q[nq++] = (cwpp_pg_stmt_t){"load_keys", 1, {keys}, PGRES_TUPLES_OK, &r_keys};
    q[nq++] = (cwpp_pg_stmt_t){"load_alerts", 1, {ids}, PGRES_TUPLES_OK, &r_al};
    q[nq++] = (cwpp_pg_stmt_t){"load_notes", 1, {parts}, PGRES_TUPLES_OK, &r_notes};
    if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        goto done;
    for (k = 0; k < PQntuples(r_lock); k++)
        for (i = 0; i < c->nparts; i++)
            if (strcmp(c->parts[i].topic, PQgetvalue(r_lock, k, 0)) == 0 &&
                c->parts[i].partition == atoi(PQgetvalue(r_lock, k, 1)))
                c->parts[i].next = strtoll(PQgetvalue(r_lock, k, 2), NULL, 10);
    rc = seed(c, ix, r_ev, r_keys, r_al);
    PQclear(r_ev); /* copied into the index and the touched events: free them early */
    PQclear(r_keys);
    PQclear(r_al);
    r_ev = r_keys = r_al = NULL;
    if (rc != CWPP_OK) {
        rc = cwpp_seterr(errstr, errstr_size, rc, "out of memory");
        goto done;
    }

    /* the decisions, in the batch's order (per partition: the order of the topic) */
    for (i = 0; i < n; i++) {
        item_t *it = &c->items[i];
        part_t *p = part_of(c, it->m);

        it->fresh = p == NULL || it->m->offset >= p->next;
        if (!it->fresh)
            c->n.replayed++;
        if (!it->ok)
            continue;
        if (!it->fresh) {
            /* applied before: re-send the snapshot of the event it is in */
            if (cwpp_corr_decide(ix, &it->alert, &it->d) == CWPP_OK && it->d.recurrence &&
                (it->ev = ev_find(c, it->d.event_id)) != NULL)
                it->ev->touched = 1;
            continue;
        }
        if ((rc = apply(c, ix, it, i, w)) != CWPP_OK) {
            rc = cwpp_seterr(errstr, errstr_size, rc, "cannot apply alert %s",
                             it->alert.alert_id);
            goto done;
        }
    }
    for (i = 0; i < n; i++) /* decided: the rest of the batch needs only the events */
        cwpp_alert_clear(&c->items[i].alert);
    for (i = 0; i < c->nevs; i++)
        changed += c->evlist[i]->changed;
    if ((rc = event_prep(c, w)) != CWPP_OK) {
        rc = cwpp_seterr(errstr, errstr_size, rc, "out of memory");
        goto done;
    }

    nq = 0;
    if (changed > 0) {
        /* the rows of the events (they need no event row first: migration 004), then
         * the 30-day figures of their IPs, which count these rows */
        if ((j_al = rw_text(&w->alerts)) == NULL || (j_ent = rw_text(&w->entities)) == NULL ||
            (j_touch = rw_text(&w->touch)) == NULL ||
            (j_edge = rw_text(&w->edges)) == NULL || (j_keys = rw_text(&w->keys)) == NULL ||
            (j_ips = rw_text(&w->ips)) == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto done;
        }
        q[nq++] = (cwpp_pg_stmt_t){"alerts_upsert", 1, {j_al}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"entities_upsert", 1, {j_ent}, PGRES_COMMAND_OK, NULL};
        if (w->touch.n > 0)
            q[nq++] = (cwpp_pg_stmt_t){"entities_touch", 1, {j_touch}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"edges_upsert", 1, {j_edge}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"keys_upsert", 1, {j_keys}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"ip_stats", 1, {j_ips}, PGRES_TUPLES_OK, &r_ips};
        if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
            goto done;
        if ((rc = read_ipstats(c, r_ips)) != CWPP_OK) {
            rc = cwpp_seterr(errstr, errstr_size, rc, "out of memory");
            goto done;
        }
        if ((rc = assess(c, w, now, errstr, errstr_size)) != CWPP_OK)
            goto done;
    }
    nq = 0;
    if (changed > 0) {
        if ((j_ev = rw_text(&w->events)) == NULL || (j_notes = rw_text(&w->notes)) == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto done;
        }
        q[nq++] = (cwpp_pg_stmt_t){"events_upsert", 1, {j_ev}, PGRES_COMMAND_OK, NULL};
        if (w->notes.n > 0)
            q[nq++] = (cwpp_pg_stmt_t){"notes_insert", 1, {j_notes}, PGRES_COMMAND_OK, NULL};
    }
    q[nq++] = (cwpp_pg_stmt_t){"offsets_set", 2, {grp, parts}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"COMMIT", -1, {0}, PGRES_COMMAND_OK, NULL};
    if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        goto done;

    /* durable: count it, queue what it produced */
    cwpp_metric_add(c->m_alerts, c->n.alerts);
    cwpp_metric_add(c->m_recurrences, c->n.recurrences);
    cwpp_metric_add(c->m_opened, c->n.opened);
    cwpp_metric_add(c->m_joined, c->n.joined);
    cwpp_metric_add(c->m_replayed, c->n.replayed);
    for (k = 0; k < PQntuples(r_notes); k++) { /* sent before a crash: send them again */
        size_t         len = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r_notes, k, 0),
                                           &len);
        const char    *ev = PQgetvalue(r_notes, k, 1);

        if (b == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto done;
        }
        rc = cwpp_outbox_add(out, CWPP_TOPIC_NOTIFICATIONS, ev, strlen(ev), b, len);
        PQfreemem(b);
        if (rc != CWPP_OK)
            goto done;
    }
    for (i = 0; i < c->nevs; i++) {
        evs_t *e = c->evlist[i];

        if (!e->touched)
            continue;
        if ((rc = build_snapshot(c, e, now, errstr, errstr_size)) != CWPP_OK ||
            (rc = cwpp_outbox_add(out, CWPP_TOPIC_EVENTS, e->id, strlen(e->id), c->buf.data,
                                  c->buf.len)) != CWPP_OK)
            goto done;
        cwpp_metric_add(c->m_snapshots, 1);
        if (e->note_kind) {
            if ((rc = build_note(c, e, errstr, errstr_size)) != CWPP_OK ||
                (rc = cwpp_outbox_add(out, CWPP_TOPIC_NOTIFICATIONS, e->id, strlen(e->id),
                                      c->buf.data, c->buf.len)) != CWPP_OK)
                goto done;
            cwpp_metric_add(c->m_notes, 1);
        }
    }
    rc = CWPP_OK;
done:
    PQclear(r_lock);
    PQclear(r_ev);
    PQclear(r_keys);
    PQclear(r_al);
    PQclear(r_notes);
    PQclear(r_ips);
    cwpp_corr_index_destroy(ix);
    return rc;
}

static int corr_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                      char *errstr, size_t errstr_size)
{
    corr_t *c = opaque;
    size_t  i;
    int     rc;
    int64_t now = cwpp_now_ms(), t0;

    if (ensure_items(c, n) != CWPP_OK || collect_parts(c, msgs, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    for (i = 0; i < n; i++)
        take(c, &c->items[i], msgs[i], now);

    t0 = cwpp_mono_ms();
    if ((rc = cwpp_pg_ensure(c->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = prepare(c, errstr, errstr_size)) != CWPP_OK ||
        (rc = run_tx(c, n, now, out, errstr, errstr_size)) != CWPP_OK) {
        char ignore[64];

        atomic_store(&c->db_ok, 0);
        cwpp_metric_add(c->m_db_errors, 1);
        if (PQstatus(cwpp_pg_conn(c->pg)) == CONNECTION_OK)
            cwpp_pg_command(c->pg, "ROLLBACK", ignore, sizeof(ignore));
        if (PQstatus(cwpp_pg_conn(c->pg)) != CONNECTION_OK || rc == CWPP_ETRANSIENT) {
            cwpp_pg_reset(c->pg);
            c->prepared_on = NULL;
        }
        return CWPP_ETRANSIENT;
    }
    atomic_store(&c->db_ok, 1);
    cwpp_metric_observe(c->m_db_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    if (n >= 256)
        malloc_trim(0); /* a large batch's trees are freed: give the pages back, so that
                         * fragmentation does not ratchet the peak up batch after batch */

    for (i = 0; i < n; i++) {
        item_t *it = &c->items[i];

        if (it->code == NULL)
            continue;
        cwpp_metric_add(c->m_dead, 1);
        cwpp_warn("dead_letter", "%s[%d]@%lld: %s (%s)", rd_kafka_topic_name(it->m->rkt),
                  it->m->partition, (long long)it->m->offset, it->reason, it->code);
        if (cwpp_service_dead_letter(c->t_rejected, &c->v_rejected, &c->buf, "correlator", it->m,
                                     it->code, it->reason, out, errstr,
                                     errstr_size) != CWPP_OK)
            return CWPP_ETRANSIENT;
    }
    return CWPP_OK;
}

/* ------------------------------------------------------------- the workers */

/* One worker's share of a batch. */
typedef struct wjob {
    corr_t              *c;
    rd_kafka_message_t **msgs;
    size_t               n;
    cwpp_outbox_t       *ob;
    int                  rc;
    char                 err[512];
} wjob_t;

/* The workers: a batch's records are split by partition, each share one transaction on
 * the worker's own connection, all at once; their outputs reach the loop's outbox only
 * when every share committed. A share that failed makes the whole batch retried: the
 * shares that had committed find their records applied (consumer_offsets) and change
 * nothing twice, exactly as after a crash. */
typedef struct corr_set {
    corr_t              *w[CORR_MAX_WORKERS];
    wjob_t               jobs[CORR_MAX_WORKERS];
    int                  n;
    rd_kafka_message_t **split;    /* the batch, regrouped by worker */
    size_t              *sp_at;    /* each record's partition (index into sp) */
    size_t               split_cap;
    struct sp {
        const char *topic;
        int32_t     partition;
        size_t      count;
        int         worker;    /* -1 until assigned */
    }                   *sp;       /* the batch's partitions */
    size_t               nsp, sp_cap;
    atomic_int           db_ok;
} corr_set_t;

static void *wjob_run(void *p)
{
    wjob_t *j = p;

    j->rc = corr_batch(j->c, j->msgs, j->n, j->ob, j->err, sizeof(j->err));
    return NULL;
}

static struct sp *sp_of(corr_set_t *s, const rd_kafka_message_t *m)
{
    const char *t = rd_kafka_topic_name(m->rkt);
    size_t      i;

    for (i = 0; i < s->nsp; i++)
        if (s->sp[i].partition == m->partition && strcmp(s->sp[i].topic, t) == 0)
            return &s->sp[i];
    if (s->nsp == s->sp_cap) {
        size_t     nc = s->sp_cap ? 2 * s->sp_cap : 32;
        struct sp *np = realloc(s->sp, nc * sizeof(*np));

        if (np == NULL)
            return NULL;
        s->sp = np;
        s->sp_cap = nc;
    }
    s->sp[s->nsp] = (struct sp){t, m->partition, 0, -1};
    return &s->sp[s->nsp++];
}

/* Gives each partition to the least loaded worker, largest first; fills the jobs. */
static int split_batch(corr_set_t *s, rd_kafka_message_t **msgs, size_t n)
{
    size_t load[CORR_MAX_WORKERS] = {0}, at[CORR_MAX_WORKERS], i, k;
    int    w;

    if (n > s->split_cap) {
        rd_kafka_message_t **ns = realloc(s->split, n * sizeof(*ns));
        size_t              *na = ns != NULL ? realloc(s->sp_at, n * sizeof(*na)) : NULL;

        if (ns != NULL)
            s->split = ns;
        if (na == NULL)
            return CWPP_ENOMEM;
        s->sp_at = na;
        s->split_cap = n;
    }
    s->nsp = 0;
    for (i = 0; i < n; i++) {
        struct sp *p = sp_of(s, msgs[i]);

        if (p == NULL)
            return CWPP_ENOMEM;
        p->count++;
        s->sp_at[i] = (size_t)(p - s->sp);
    }
    for (k = 0; k < s->nsp; k++) { /* a few partitions: the largest unassigned each time */
        size_t big = SIZE_MAX, j;
        int    least = 0;

        for (j = 0; j < s->nsp; j++)
            if (s->sp[j].worker < 0 && (big == SIZE_MAX || s->sp[j].count > s->sp[big].count))
                big = j;
        for (w = 1; w < s->n; w++)
            if (load[w] < load[least])
                least = w;
        s->sp[big].worker = least;
        load[least] += s->sp[big].count;
    }
    for (w = 0, k = 0; w < s->n; w++) {
        at[w] = k;
        s->jobs[w].msgs = s->split + k;
        s->jobs[w].n = load[w];
        k += load[w];
    }
    for (i = 0; i < n; i++) /* each worker's records in batch order */
        s->split[at[s->sp[s->sp_at[i]].worker]++] = msgs[i];
    return CWPP_OK;
}

static int set_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                     char *errstr, size_t errstr_size)
{
    corr_set_t *s = opaque;
    pthread_t   th[CORR_MAX_WORKERS];
    int         started[CORR_MAX_WORKERS] = {0}, skip[CORR_MAX_WORKERS] = {0};
    int         w, first = -1, rc = CWPP_OK, ok = 1;

    if (s->n == 1) {
        rc = corr_batch(s->w[0], msgs, n, out, errstr, errstr_size);
        atomic_store(&s->db_ok, atomic_load(&s->w[0]->db_ok));
        return rc;
    }
    if (split_batch(s, msgs, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "out of memory");
    for (w = 0; w < s->n; w++) {
        wjob_t *j = &s->jobs[w];

        cwpp_outbox_truncate(j->ob, 0);
        j->rc = CWPP_OK;
        j->err[0] = '\0';
        skip[w] = 0;
        if (j->n == 0)
            continue;
        if (first < 0) {
            first = w; /* runs on this thread */
        } else if (cwpp_fault_hit("correlator_share")) {
            /* tests: this share fails while the first one commits */
            skip[w] = 1;
            j->rc = cwpp_seterr(j->err, sizeof(j->err), CWPP_ETRANSIENT,
                                "injected fault (correlator_share)");
        } else {
            started[w] = pthread_create(&th[w], NULL, wjob_run, j) == 0;
        }
    }
    for (w = 0; w < s->n; w++) /* this thread: the first share and any not started */
        if (s->jobs[w].n > 0 && !skip[w] && (w == first || !started[w]))
            wjob_run(&s->jobs[w]);
    for (w = 0; w < s->n; w++)
        if (started[w])
            pthread_join(th[w], NULL);
    for (w = 0; w < s->n; w++) {
        ok &= atomic_load(&s->w[w]->db_ok);
        if (s->jobs[w].n > 0 && s->jobs[w].rc != CWPP_OK && rc == CWPP_OK) {
            rc = CWPP_ETRANSIENT;
            cwpp_seterr(errstr, errstr_size, rc, "%s", s->jobs[w].err);
        }
    }
    atomic_store(&s->db_ok, ok);
    for (w = 0; rc == CWPP_OK && w < s->n; w++)
        if (cwpp_outbox_move(out, s->jobs[w].ob) != CWPP_OK)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "out of memory");
    for (w = 0; w < s->n; w++)
        cwpp_outbox_truncate(s->jobs[w].ob, 0);
    return rc;
}

static void set_destroy(corr_set_t *s)
{
    int w;

    if (s == NULL)
        return;
    for (w = 0; w < s->n; w++) {
        corr_destroy(s->w[w]);
        cwpp_outbox_destroy(s->jobs[w].ob);
    }
    free(s->split);
    free(s->sp_at);
    free(s->sp);
    free(s);
}

int corr_run(const void *confp, const cwpp_service_env_t *env)
{
    const corr_conf_t            *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ALERTS_ACCEPTED};
    corr_set_t                   *s = calloc(1, sizeof(*s));
    char                         errstr[512] = "out of memory";
    int                          rc, backoff = 200, w;

    for (w = 0; s != NULL && w < (int)conf->workers; w++) {
        corr_t *c = corr_new(conf, env->metrics, errstr, sizeof(errstr));

        if (c != NULL)
            s->w[s->n++] = c; /* metrics of the same name are shared */
        if (c == NULL || !c->have_values || (s->jobs[w].ob = cwpp_outbox_new()) == NULL)
            break;
        s->jobs[w].c = c;
    }
    if (s == NULL || s->n < (int)conf->workers || !s->w[s->n - 1]->have_values ||
        s->jobs[s->n - 1].ob == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        set_destroy(s);
        return 2;
    }
    for (w = 0; w < s->n && !cwpp_service_stopping();) {
        corr_t *c = s->w[w];

        rc = cwpp_pg_ensure(c->pg, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = prepare(c, errstr, sizeof(errstr));
        if (rc == CWPP_OK) {
            atomic_store(&c->db_ok, 1);
            w++;
            continue;
        }
        if (rc == CWPP_ECONFIG) {
            cwpp_error("config_error", "%s", errstr);
            set_destroy(s);
            return 1;
        }
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_pg_reset(c->pg);
        c->prepared_on = NULL;
        cwpp_service_backoff(&backoff);
    }
    if (cwpp_service_stopping()) {
        set_destroy(s);
        return 0;
    }
    atomic_store(&s->db_ok, 1);
    {
        /* librdkafka queues each partition's fetch as one chunk (1 MiB by default, about
         * 1,800 alerts): a batch would hold one partition and one worker would do it all.
         * 64 KiB chunks interleave the partitions within a batch (bench/correlator.py, 2
         * workers, new incidents: 5,500 -> 6,000-7,400 alerts/s across runs; no change
         * with one worker). First in the list, so an operator's own kafka properties
         * still win. */
        cwpp_kvlist_t      props = {0};
        cwpp_service_env_t e = *env;
        size_t             i;

        rc = s->n > 1 ? cwpp_kvlist_set(&props, "consumer.fetch.message.max.bytes", "65536")
                      : CWPP_OK;
        for (i = 0; rc == CWPP_OK && env->kafka_props != NULL && i < env->kafka_props->n; i++)
            rc = cwpp_kvlist_set(&props, env->kafka_props->items[i].key,
                                 env->kafka_props->items[i].value);
        e.kafka_props = &props;
        rc = rc == CWPP_OK ? cwpp_service_run_loop("correlator", &conf->common, &e, inputs, 1,
                                                   set_batch, s, &s->db_ok)
                           : 2;
        cwpp_kvlist_free(&props);
    }
    set_destroy(s);
    return rc;
}
