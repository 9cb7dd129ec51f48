/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_sql.c: every statement the correlator runs, and next to them the JSON row sets
 * they read. Each write is one statement over a JSON array of row objects
 * (json_to_recordset), so a batch writes each table once whatever its size; the row
 * builders below write exactly the members (short names) the statement declares in its
 * AS x(...) list. The statements are prepared once per connection (corr_prepare).
 *
 * Entity values and graph nodes are written whole; the tables' keys are their bounded
 * forms, which the database generates (value_key, src_key, dst_key = bounded_key(...),
 * migration 009; docs/correlator.md "Bounded keys"), so the conflict targets and the
 * lookups below name those, and a value of any length fits the indexes.
 *
 * The consumer-offset fence (this group's next offset per partition, locked and moved in
 * the batch's own transaction) is libs/fence's; corr_prepare prepares its statements too.
 */
#include "corr_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- the statements */

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
    "SELECT a.alert_id, a.event_id, a.seq FROM event_alerts a WHERE a.alert_id IN "
    "(SELECT json_array_elements_text($1::json))";
/* One index range per partition of the batch, whatever the planner guesses for the
 * JSON rows (OFFSET 0 keeps the lateral subquery apart: joined as a whole, a growing
 * notifications table was scanned whole for every batch, 30-100 ms). */
static const char SQL_LOAD_NOTES[] =
    "SELECT n.payload, n.event_id "
    "FROM json_to_recordset($1::json) AS x(t text, p int, lo bigint, hi bigint) "
    "CROSS JOIN LATERAL (SELECT m.payload, m.event_id, m.source_part, m.source_offset, "
    "m.notification_id FROM notifications m WHERE m.source_topic = x.t "
    "AND m.source_part = x.p AND m.source_offset BETWEEN x.lo AND x.hi OFFSET 0) n "
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
    "INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, last_seen, occurrences, "
    "seq) "
    "SELECT x.e, x.a, (array_agg(x.r ORDER BY x.o))[1], to_timestamp(min(x.t) / 1000.0), "
    "to_timestamp(max(x.t) / 1000.0), sum(x.n), max(x.q) "
    "FROM json_to_recordset($1::json) AS x(e text, a text, r text, t bigint, o int, n bigint, "
    "q bigint) "
    "GROUP BY x.e, x.a "
    "ON CONFLICT (event_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(event_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(event_alerts.last_seen, EXCLUDED.last_seen), "
    "occurrences = event_alerts.occurrences + EXCLUDED.occurrences, "
    "seq = GREATEST(event_alerts.seq, EXCLUDED.seq)";
static const char SQL_ENTITIES_UPSERT[] =
    "INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, event_id, alert_id, "
    "first_seen, last_seen) "
    "SELECT x.c, x.ty, x.v, x.s, x.e, x.a, to_timestamp(min(x.t) / 1000.0), "
    "to_timestamp(max(x.t) / 1000.0) "
    "FROM json_to_recordset($1::json) AS x(c text, ty text, v text, s text, e text, a text, "
    "t bigint) GROUP BY x.c, x.ty, x.v, x.s, x.e, x.a "
    "ON CONFLICT (event_id, entity_type, value_key, asset_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(entity_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(entity_alerts.last_seen, EXCLUDED.last_seen)";
/* Sent unprepared, planned per batch (see corr_internal.h). */
const char CORR_SQL_ENTITIES_TOUCH[] =
    "UPDATE entity_alerts e SET last_seen = to_timestamp(x.t / 1000.0) "
    "FROM (SELECT y.e, y.ty, y.v, y.s, y.a, max(y.t) AS t "
    "FROM json_to_recordset($1::json) AS y(ty text, v text, s text, e text, a text, t bigint) "
    "GROUP BY y.e, y.ty, y.v, y.s, y.a) x "
    "WHERE e.event_id = x.e AND e.entity_type = x.ty AND e.value_key = bounded_key(x.v) "
    "AND e.value = x.v AND e.asset_id = x.s "
    "AND e.alert_id = x.a AND e.last_seen < to_timestamp(x.t / 1000.0)";
static const char SQL_EDGES_UPSERT[] =
    "INSERT INTO event_edges (event_id, src_type, src, relation, dst_type, dst, alert_id, "
    "first_seen, last_seen, alerts) "
    "SELECT x.e, x.st, x.s, x.rel, x.dt, x.d, (array_agg(x.a ORDER BY x.o))[1], "
    "to_timestamp(min(x.t) / 1000.0), to_timestamp(max(x.t) / 1000.0), "
    "count(DISTINCT x.a) "
    "FROM json_to_recordset($1::json) AS x(e text, st text, s text, rel text, dt text, "
    "d text, a text, t bigint, o int) GROUP BY x.e, x.st, x.s, x.rel, x.dt, x.d "
    "ON CONFLICT (event_id, src_type, src_key, relation, dst_type, dst_key) DO UPDATE SET "
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
/* Sent unprepared, planned per batch (see corr_internal.h). */
const char CORR_SQL_IP_STATS[] =
    "SELECT x.c, x.v, count(DISTINCT e.event_id), count(DISTINCT e.alert_id), "
    "count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') "
    "FROM (SELECT DISTINCT c, v FROM json_to_recordset($1::json) AS y(c text, v text)) x "
    "JOIN entity_alerts e ON e.account_id = x.c AND e.entity_type = 'ip' "
    "AND e.value_key = bounded_key(x.v) AND e.value = x.v "
    "AND e.last_seen > now() - interval '30 days' GROUP BY x.c, x.v";
static const char SQL_NOTES_INSERT[] =
    "INSERT INTO notifications (notification_id, event_id, kind, urgency, source_topic, "
    "source_part, source_offset, payload) "
    "SELECT x.id, x.e, x.k, x.u, x.t, x.p, x.o, decode(x.b, 'hex') "
    "FROM json_to_recordset($1::json) AS x(id text, e text, k text, u text, t text, p int, "
    "o bigint, b text) ON CONFLICT DO NOTHING";

/* Memberships that end (whitelisted alerts leave): the alert's rows of the event. */
static const char SQL_LEAVE[] =
    "WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(e text, a text)), "
    "d AS (DELETE FROM entity_alerts en USING x WHERE en.event_id = x.e AND en.alert_id = x.a) "
    "DELETE FROM event_alerts ea USING x WHERE ea.event_id = x.e AND ea.alert_id = x.a";
/* The members of the rebuilt events, in the order they joined, with their stored alert. */
static const char SQL_MEMBERS[] =
    "SELECT ea.event_id, (extract(epoch FROM ea.first_seen) * 1000)::bigint, "
    "(extract(epoch FROM ea.last_seen) * 1000)::bigint, ea.occurrences, " CWPP_ALERT_ROW_SQL " "
    "FROM event_alerts ea JOIN alerts a ON a.alert_id = ea.alert_id "
    "WHERE ea.event_id IN (SELECT json_array_elements_text($1::json)) "
    "ORDER BY ea.event_id, ea.joined_at, ea.first_seen, ea.alert_id";
/* The keys the rebuilt events own. */
static const char SQL_OWNED_KEYS[] =
    "SELECT k.key, k.event_id, k.alert_id FROM event_keys k "
    "WHERE k.event_id IN (SELECT json_array_elements_text($1::json)) ORDER BY k.key";
/* A rebuilt event's graph is written again from its members. */
static const char SQL_EDGES_CLEAR[] =
    "DELETE FROM event_edges WHERE event_id IN (SELECT json_array_elements_text($1::json))";
/* Keys owned by a rebuilt event that none of the rebuilt events' members hold any more. */
static const char SQL_KEYS_DROP[] =
    "DELETE FROM event_keys WHERE key IN (SELECT json_array_elements_text($1::json)) "
    "AND event_id IN (SELECT json_array_elements_text($2::json))";
/* A handled alert that recurred after its event was handled is unhandled in the
 * successor (its handling info cleared; the entry logged keeps what it was). */
static const char SQL_REOPEN[] =
    "WITH x AS (SELECT DISTINCT ON (y.a) y.a, y.e, y.p "
    "FROM json_to_recordset($1::json) AS y(a text, e text, p text) ORDER BY y.a), "
    "u AS (UPDATE alerts al SET status = 'unhandled', handling = NULL, updated_at = now() "
    "FROM x, alerts o WHERE al.alert_id = x.a AND o.alert_id = x.a AND al.status = 'handled' "
    "RETURNING al.alert_id, x.e, x.p, o.handling) "
    "INSERT INTO activity_log (actor, object_type, object_id, event_id, action, before, after, "
    "remark) SELECT 'correlator', 'alert', u.alert_id, u.e, 'alert.status', "
    "jsonb_build_object('status', 'handled', 'handling', u.handling), "
    "jsonb_build_object('status', 'unhandled'), "
    "'recurred after its event ' || u.p || ' was handled: unhandled in event ' || u.e FROM u";

/* Commands (corr_commands.c): the events named, locked in the order the batches lock
 * them (load_events' columns, then merged_into). */
static const char SQL_CMD_EVENTS[] =
    "SELECT e.event_id, e.account_id, e.status, "
    "(extract(epoch FROM e.first_seen) * 1000)::bigint, "
    "(extract(epoch FROM e.last_seen) * 1000)::bigint, e.owner, e.predecessor, e.urgency, "
    "e.summary::text, e.version, e.level, e.assessment::text, "
    "e.level_source = 'analyst', e.merged_into FROM events e WHERE e.event_id IN ("
    "SELECT json_array_elements_text($1::json)) ORDER BY e.event_id FOR UPDATE OF e";
/* event.merge: the merged events' memberships and entities move to the survivor $1 (an
 * alert in two of them is one member, its figures combined), and their keys. */
static const char SQL_MERGE_ALERTS[] =
    "INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, last_seen, occurrences, "
    "joined_at, seq) SELECT $1, a.alert_id, (array_agg(a.reason ORDER BY a.joined_at))[1], "
    "min(a.first_seen), max(a.last_seen), sum(a.occurrences), min(a.joined_at), max(a.seq) "
    "FROM event_alerts a WHERE a.event_id IN (SELECT json_array_elements_text($2::json)) "
    "GROUP BY a.alert_id ON CONFLICT (event_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(event_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(event_alerts.last_seen, EXCLUDED.last_seen), "
    "occurrences = event_alerts.occurrences + EXCLUDED.occurrences, "
    "seq = GREATEST(event_alerts.seq, EXCLUDED.seq)";
static const char SQL_MERGE_ALERTS_DEL[] =
    "DELETE FROM event_alerts WHERE event_id IN (SELECT json_array_elements_text($1::json))";
static const char SQL_MERGE_ENTITIES[] =
    "INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, event_id, alert_id, "
    "first_seen, last_seen) SELECT x.account_id, x.entity_type, x.value, x.asset_id, $1, "
    "x.alert_id, min(x.first_seen), max(x.last_seen) FROM entity_alerts x "
    "WHERE x.event_id IN (SELECT json_array_elements_text($2::json)) "
    "GROUP BY x.account_id, x.entity_type, x.value, x.asset_id, x.alert_id "
    "ON CONFLICT (event_id, entity_type, value_key, asset_id, alert_id) DO UPDATE SET "
    "first_seen = LEAST(entity_alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(entity_alerts.last_seen, EXCLUDED.last_seen)";
static const char SQL_MERGE_ENTITIES_DEL[] =
    "DELETE FROM entity_alerts WHERE event_id IN (SELECT json_array_elements_text($1::json))";
static const char SQL_MERGE_KEYS[] =
    "UPDATE event_keys SET event_id = $1, updated_at = now() "
    "WHERE event_id IN (SELECT json_array_elements_text($2::json))";
static const char SQL_MARK_MERGED[] =
    "UPDATE events SET status = 'merged', merged_into = $1, status_changed_at = now() "
    "WHERE event_id IN (SELECT json_array_elements_text($2::json))";
/* event.detach: which of the alerts $2 are members of event $1; an event id taken. */
static const char SQL_DETACH_MEMBERS[] =
    "SELECT ea.alert_id FROM event_alerts ea WHERE ea.event_id = $1 AND ea.alert_id IN "
    "(SELECT json_array_elements_text($2::json)) ORDER BY ea.alert_id";
static const char SQL_EVENT_EXISTS[] = "SELECT status FROM events WHERE event_id = $1";
static const char SQL_MEMBER_COUNT[] = "SELECT count(*) FROM event_alerts WHERE event_id = $1";
/* The detached alerts' memberships and entities move from $1 to the new event $2. */
static const char SQL_DETACH_ALERTS[] =
    "UPDATE event_alerts SET event_id = $2 WHERE event_id = $1 AND alert_id IN "
    "(SELECT json_array_elements_text($3::json))";
static const char SQL_DETACH_ENTITIES[] =
    "UPDATE entity_alerts SET event_id = $2 WHERE event_id = $1 AND alert_id IN "
    "(SELECT json_array_elements_text($3::json))";

int corr_prepare(corr_t *c, char *errstr, size_t errstr_size)
{
    PGconn *conn = cwpp_pg_conn(c->pg);
    static const cwpp_pg_named_t stmts[] = {
        {"load_events", SQL_LOAD_EVENTS},
        {"load_keys", SQL_LOAD_KEYS},           {"load_alerts", SQL_LOAD_ALERTS},
        {"load_notes", SQL_LOAD_NOTES},         {"events_upsert", SQL_EVENTS_UPSERT},
        {"alerts_upsert", SQL_ALERTS_UPSERT},   {"entities_upsert", SQL_ENTITIES_UPSERT},
        {"edges_upsert", SQL_EDGES_UPSERT},
        {"keys_upsert", SQL_KEYS_UPSERT},
        {"notes_insert", SQL_NOTES_INSERT},
        {"leave", SQL_LEAVE},                   {"members", SQL_MEMBERS},
        {"owned_keys", SQL_OWNED_KEYS},         {"edges_clear", SQL_EDGES_CLEAR},
        {"keys_drop", SQL_KEYS_DROP},           {"reopen", SQL_REOPEN},
        {"cmd_events", SQL_CMD_EVENTS},         {"merge_alerts", SQL_MERGE_ALERTS},
        {"merge_alerts_del", SQL_MERGE_ALERTS_DEL},
        {"merge_entities", SQL_MERGE_ENTITIES},
        {"merge_entities_del", SQL_MERGE_ENTITIES_DEL},
        {"merge_keys", SQL_MERGE_KEYS},         {"mark_merged", SQL_MARK_MERGED},
        {"detach_members", SQL_DETACH_MEMBERS}, {"event_exists", SQL_EVENT_EXISTS},
        {"member_count", SQL_MEMBER_COUNT},     {"detach_alerts", SQL_DETACH_ALERTS},
        {"detach_entities", SQL_DETACH_ENTITIES},
    };
    int    rc;

    if (c->prepared_on == conn)
        return CWPP_OK;
    if ((rc = cwpp_fence_prepare(c->pg, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = cwpp_pg_prepare(c->pg, stmts, sizeof(stmts) / sizeof(stmts[0]), errstr, errstr_size);
    if (rc != CWPP_OK)
        return rc == CWPP_EDATA ? CWPP_ECONFIG : rc;
    c->prepared_on = conn;
    return CWPP_OK;
}

/* ------------------------------------------------------------ row sets */

void corr_rw_start(rw_t *w)
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

const char *corr_rw_text(rw_t *w)
{
    w->err |= cwpp_buf_append(&w->b, "]", 1);
    w->err |= cwpp_buf_cstr(&w->b);
    return w->err ? NULL : (const char *)w->b.data;
}

void corr_rows_free(rows_t *w)
{
    cwpp_buf_free(&w->events.b);
    cwpp_buf_free(&w->alerts.b);
    cwpp_buf_free(&w->entities.b);
    cwpp_buf_free(&w->touch.b);
    cwpp_buf_free(&w->edges.b);
    cwpp_buf_free(&w->keys.b);
    cwpp_buf_free(&w->ips.b);
    cwpp_buf_free(&w->notes.b);
    cwpp_buf_free(&w->leave.b);
    cwpp_buf_free(&w->reopen.b);
    cwpp_buf_free(&w->rebuilt.b);
    cwpp_buf_free(&w->dropkeys.b);
}

void corr_rows_start(rows_t *w)
{
    corr_rw_start(&w->events);
    corr_rw_start(&w->alerts);
    corr_rw_start(&w->entities);
    corr_rw_start(&w->touch);
    corr_rw_start(&w->edges);
    corr_rw_start(&w->keys);
    corr_rw_start(&w->ips);
    corr_rw_start(&w->notes);
    corr_rw_start(&w->leave);
    corr_rw_start(&w->reopen);
    corr_rw_start(&w->rebuilt);
    corr_rw_start(&w->dropkeys);
}

int64_t corr_sgeti(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* ---------------------------------------------------------- the lookups */

/* load_events, load_keys, load_alerts: arrays of strings. */
int corr_json_lookup(rw_t *wkeys, rw_t *wids, const item_t *items, size_t n,
                     const char **keys, const char **ids)
{
    size_t i, j;

    corr_rw_start(wkeys);
    corr_rw_start(wids);
    for (i = 0; i < n; i++) {
        const cwpp_alert_t *al = &items[i].alert;
        cwpp_corr_key_t     ks[CWPP_CORR_MAX_KEYS];
        size_t              nk;
        char                s[CWPP_CORR_KEY_MAX];

        if (!items[i].ok)
            continue;
        rw_elem(wids, al->alert_id);
        if (items[i].leave)
            continue; /* it leaves the events holding it: it joins none */
        nk = cwpp_corr_keys(al, ks);
        for (j = 0; j < nk; j++)
            if (cwpp_corr_key_string(al->account_id, &ks[j], s, sizeof(s)) == 0)
                rw_elem(wkeys, s);
    }
    *keys = corr_rw_text(wkeys);
    *ids = corr_rw_text(wids);
    return *keys != NULL && *ids != NULL ? CWPP_OK : CWPP_ENOMEM;
}

/* ----------------------------------------------------------- the writes */

/* alerts_upsert x(e, a, r, t, o); entities_upsert x(c, ty, v, s, e, a, t);
 * entities_touch y(ty, v, s, e, a, t); edges_upsert x(e, st, s, rel, dt, d, a, t, o). */
void corr_row_alert(rows_t *w, const char *event_id, const cwpp_alert_t *a,
                    const cwpp_corr_decision_t *d, size_t ord, int64_t occurrences)
{
    cwpp_corr_edge_t edges[CWPP_CORR_MAX_EDGES];
    int64_t          t = a->occurred_at_ms;
    size_t           i, n;

    rw_row(&w->alerts);
    rw_s(&w->alerts, "e", event_id);
    rw_s(&w->alerts, "a", a->alert_id);
    rw_s(&w->alerts, "r", d->reason);
    rw_i(&w->alerts, "t", t);
    rw_i(&w->alerts, "o", (int64_t)ord);
    rw_i(&w->alerts, "n", occurrences);
    rw_i(&w->alerts, "q", a->occurrences);
    rw_end(&w->alerts);
    /* a new alert's entities; a recurrence moves the last_seen of the entities its alert
     * already has (so an alert that keeps recurring stays in their 30-day figures), but
     * adds none: fields outside "the same alert" key may differ between occurrences */
    for (i = 0; i < a->n_entities; i++) {
        const cwpp_entity_t *x = &a->entities[i];
        const char          *asset = x->type == CWPP_ENT_IP ? a->asset.id : x->asset_id;
        rw_t                *r = d->recurrence ? &w->touch : &w->entities;

        rw_row(r);
        if (!d->recurrence)
            rw_s(r, "c", a->account_id);
        rw_s(r, "ty", cwpp_entity_type_name(x->type));
        rw_s(r, "v", x->value);
        rw_s(r, "s", asset != NULL ? asset : "");
        rw_s(r, "e", event_id);
        rw_s(r, "a", a->alert_id);
        rw_i(r, "t", t);
        rw_end(r);
    }
    n = d->recurrence ? 0 : cwpp_corr_edges(a, edges); /* the graph: distinct alerts */
    for (i = 0; i < n; i++) {
        rw_row(&w->edges);
        rw_s(&w->edges, "e", event_id);
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
}

/* keys_upsert x(k, c, e, a, o): the last row of a key (by o) is its final owner. */
void corr_row_key(rows_t *w, const char *key, const char *account, const char *event_id,
                  const char *alert_id, size_t ord)
{
    rw_row(&w->keys);
    rw_s(&w->keys, "k", key);
    rw_s(&w->keys, "c", account);
    rw_s(&w->keys, "e", event_id);
    rw_s(&w->keys, "a", alert_id);
    rw_i(&w->keys, "o", (int64_t)ord);
    rw_end(&w->keys);
}

/* leave x(e, a). */
void corr_row_leave(rows_t *w, const char *event_id, const char *alert_id)
{
    rw_row(&w->leave);
    rw_s(&w->leave, "e", event_id);
    rw_s(&w->leave, "a", alert_id);
    rw_end(&w->leave);
}

/* reopen y(a, e, p). */
void corr_row_reopen(rows_t *w, const char *alert_id, const char *event_id, const char *prev)
{
    rw_row(&w->reopen);
    rw_s(&w->reopen, "a", alert_id);
    rw_s(&w->reopen, "e", event_id);
    rw_s(&w->reopen, "p", prev);
    rw_end(&w->reopen);
}

/* edges_upsert x(e, st, s, rel, dt, d, a, t, o): a member's edges at its first and last
 * occurrence (the upsert keeps the earliest and latest time). */
void corr_row_member_edges(rows_t *w, const char *event_id, const cwpp_alert_t *a,
                           int64_t first_ms, int64_t last_ms, size_t ord)
{
    cwpp_corr_edge_t edges[CWPP_CORR_MAX_EDGES];
    size_t           i, n = cwpp_corr_edges(a, edges);
    int              k;

    for (i = 0; i < n; i++)
        for (k = 0; k < (last_ms > first_ms ? 2 : 1); k++) {
            rw_row(&w->edges);
            rw_s(&w->edges, "e", event_id);
            rw_s(&w->edges, "st", edges[i].src_type);
            rw_s(&w->edges, "s", edges[i].src);
            rw_s(&w->edges, "rel", edges[i].relation);
            rw_s(&w->edges, "dt", edges[i].dst_type);
            rw_s(&w->edges, "d", edges[i].dst);
            rw_s(&w->edges, "a", a->alert_id);
            rw_i(&w->edges, "t", k == 0 ? first_ms : last_ms);
            rw_i(&w->edges, "o", (int64_t)ord);
            rw_end(&w->edges);
        }
}

void corr_row_str(rw_t *w, const char *s)
{
    rw_elem(w, s);
}

/* ip_stats y(c, v). */
void corr_row_ip(rows_t *w, const char *account, const char *ip)
{
    rw_row(&w->ips);
    rw_s(&w->ips, "c", account);
    rw_s(&w->ips, "v", ip);
    rw_end(&w->ips);
}

/* events_upsert x(id, acc, name, level, f, l, alerts, occ, assets, stages, sources, pred,
 * u, a, s). */
void corr_row_event(rows_t *rows, const evs_t *e)
{
    rw_t         *w = &rows->events;
    const json_t *s = e->summary;
    const char   *name = json_string_value(json_object_get(s, "name"));

    rw_row(w);
    rw_s(w, "id", e->id);
    rw_s(w, "acc", e->account);
    rw_s(w, "name", name != NULL ? name : "");
    rw_s(w, "level", cwpp_severity_name((cwpp_severity_t)e->level));
    rw_i(w, "f", corr_sgeti(s, "first_ms"));
    rw_i(w, "l", corr_sgeti(s, "last_ms"));
    rw_i(w, "alerts", corr_sgeti(s, "alerts"));
    rw_i(w, "occ", corr_sgeti(s, "occurrences"));
    rw_i(w, "assets", (int64_t)json_object_size(json_object_get(s, "assets")));
    rw_j(w, "stages", json_object_get(s, "stages"));
    rw_j(w, "sources", json_object_get(s, "sources"));
    rw_s(w, "pred", e->predecessor);
    rw_s(w, "u", cwpp_urgency_name(e->urgency));
    rw_j(w, "a", e->assessment);
    rw_j(w, "s", s);
    rw_end(w);
}

/* notes_insert x(id, e, k, u, t, p, o, b): b the record in hex, t/p/o the record that
 * caused it (a redelivered batch finds and re-sends it: load_notes). */
void corr_row_note(rows_t *rows, const char *note_id, const evs_t *e, const void *payload,
                   size_t len)
{
    rw_t *w = &rows->notes;

    rw_row(w);
    rw_s(w, "id", note_id);
    rw_s(w, "e", e->id);
    rw_s(w, "k", e->note_kind == 1 ? "event_opened" : "urgency_raised");
    rw_s(w, "u", cwpp_urgency_name(e->note_urgency));
    rw_s(w, "t", rd_kafka_topic_name(e->src->rkt));
    rw_i(w, "p", e->src->partition);
    rw_i(w, "o", e->src->offset);
    rw_key(w, "b");
    w->err |= cwpp_buf_append(&w->b, "\"", 1);
    w->err |= cwpp_buf_hex(&w->b, payload, len);
    w->err |= cwpp_buf_append(&w->b, "\"", 1);
    rw_end(w);
}
