/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_query.c: the queries of the read-only event views (events.h). Each is
 * parameterised (PQexecParams only: nothing a user types is ever part of SQL text), runs
 * as the read-only role, and turns its rows into one JSON document: --json prints it and
 * the text output is rendered from it (events_render.c), so the two never disagree.
 * The read-time rules (retention, quiet) are applied here, with the database's now().
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"

/* The ms-since-epoch of a timestamptz column, in SQL text. */
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* most urgent first: "one step lower" is the next one */
static const char *const URGENCIES[] = {"act_now", "high", "medium", "low", NULL};

/* ------------------------------------------------------------ rows as JSON */

json_t *ev_cell_json(const PGresult *r, int row, int col, col_kind_t kind)
{
    const char  *v;
    json_t      *j;
    json_error_t jerr;

    if (PQgetisnull(r, row, col))
        return json_null();
    v = PQgetvalue(r, row, col);
    switch (kind) {
    case COL_INT:
        return json_integer((json_int_t)strtoll(v, NULL, 10));
    case COL_BOOL:
        return json_boolean(v[0] == 't');
    case COL_JSON:
        j = json_loads(v, JSON_DECODE_ANY, &jerr);
        return j != NULL ? j : json_null();
    case COL_STR:
    default:
        /* the connection's client encoding is UTF-8; fall back on invalid bytes anyway */
        j = json_string(v);
        return j != NULL ? j : json_string("(not UTF-8)");
    }
}

json_t *ev_row_object(const PGresult *r, int row, const col_t *cols, int ncols)
{
    json_t *o = json_object();
    int     k;

    for (k = 0; k < ncols && k < PQnfields(r); k++)
        if (cols[k].key != NULL)
            json_object_set_new(o, cols[k].key, ev_cell_json(r, row, k, cols[k].kind));
    return o;
}

const char *ev_jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_int_t ev_jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* ---------------------------------------------------------------- the event */

int ev_query_exists(PGconn *pg, const char *id)
{
    const char *p[1] = {id};
    PGresult   *r = PQexecParams(pg, "SELECT account_id FROM events WHERE event_id = $1", 1,
                                 NULL, p, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list shows them)",
                        id);
    }
    PQclear(r);
    return CTL_OK;
}

/* The urgency shown: the stored one, one step lower when the event is quiet. Sets the
 * members urgency, assessed_urgency and quiet of o from its stored "urgency". */
static void apply_quiet(json_t *o, int quiet)
{
    const char *stored = ev_jstr(o, "urgency");
    int         u = ev_find(URGENCIES, stored);
    json_t     *s = json_string(stored != NULL ? stored : "low");

    if (u < 0)
        u = 3;
    if (quiet && URGENCIES[u + 1] != NULL)
        u++;
    json_object_set_new(o, "assessed_urgency", s);
    json_object_set_new(o, "urgency", json_string(URGENCIES[u]));
    json_object_set_new(o, "quiet", json_boolean(quiet));
}

/* ------------------------------------------------------------- events list */

static const col_t LIST_COLS[] = {
    {"event_id", COL_STR},    {"account_id", COL_STR},  {"name", COL_STR},
    {"level", COL_STR},       {"status", COL_STR},      {"urgency", COL_STR},
    {"alert_count", COL_INT}, {"asset_count", COL_INT}, {"occurrences", COL_INT},
    {"stages", COL_JSON},     {"first_seen", COL_STR},  {"last_seen", COL_STR},
    {"owner", COL_STR},       {NULL, COL_BOOL} /* quiet */,
};

int ev_query_list(PGconn *pg, const settings_t *st, const ev_list_query_t *q, json_t **out)
{
    const char *p[8];
    PGresult   *r;
    json_t     *arr;
    int         i;

    *out = NULL;
    p[0] = st->retention;
    p[1] = q->status;
    p[2] = q->level;
    p[3] = q->account;
    p[4] = q->since;
    p[5] = q->until;
    p[6] = q->limit;
    p[7] = st->quiet;
    /* an event is in [since, until] when it was active then: its first occurrence is not
     * after until and its latest not before since */
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
                     "e.alert_count, e.asset_count, e.occurrences, array_to_json(e.stages), "
                     CTL_TS("e.first_seen") ", " CTL_TS("e.last_seen") ", e.owner, "
                     "e.last_seen < now() - make_interval(hours => $8::int) "
                     "FROM events e "
                     "WHERE e.last_seen > now() - make_interval(days => $1::int) "
                     "AND ($2::text IS NULL OR e.status = $2) "
                     "AND ($3::text IS NULL OR e.level = $3) "
                     "AND ($4::text IS NULL OR e.account_id = $4) "
                     "AND ($5::timestamptz IS NULL OR e.last_seen >= $5::timestamptz) "
                     "AND ($6::timestamptz IS NULL OR e.first_seen <= $6::timestamptz) "
                     "ORDER BY e.last_seen DESC, e.event_id LIMIT $7::int",
                     8, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    arr = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = ev_row_object(r, i, LIST_COLS, EV_NCOLS(LIST_COLS));

        apply_quiet(o, PQgetvalue(r, i, 13)[0] == 't');
        json_array_append_new(arr, o);
    }
    PQclear(r);
    *out = arr;
    return CTL_OK;
}

/* ------------------------------------------------------------- events show */

static const col_t SHOW_COLS[] = {
    {"event_id", COL_STR},    {"account_id", COL_STR},   {"name", COL_STR},
    {"level", COL_STR},       {"status", COL_STR},       {"owner", COL_STR},
    {"stages", COL_JSON},     {"asset_count", COL_INT},  {"alert_count", COL_INT},
    {"occurrences", COL_INT}, {"first_seen", COL_STR},   {"last_seen", COL_STR},
    {"sources", COL_JSON},    {"predecessor", COL_STR},  {"urgency", COL_STR},
    {NULL, COL_JSON} /* 15 assessment */, {NULL, COL_BOOL} /* 16 quiet */,
    {"quiet_for_s", COL_INT}, {"in_event_list", COL_BOOL}, {"updated_at", COL_STR},
};

int ev_query_show(PGconn *pg, const settings_t *st, const char *id, json_t **out)
{
    const char  *p[3];
    PGresult    *r;
    json_t      *doc, *stored, *assessment, *reasons, *recs;
    json_error_t jerr;
    int          quiet;

    *out = NULL;
    p[0] = id;
    p[1] = st->quiet;
    p[2] = st->retention;
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.owner, "
                     "array_to_json(e.stages), e.asset_count, e.alert_count, e.occurrences, "
                     CTL_TS("e.first_seen") ", " CTL_TS("e.last_seen") ", "
                     "array_to_json(e.sources), e.predecessor, e.urgency, e.assessment::text, "
                     "e.last_seen < now() - make_interval(hours => $2::int), "
                     "greatest(0, extract(epoch FROM now() - e.last_seen))::bigint, "
                     "e.last_seen > now() - make_interval(days => $3::int), "
                     CTL_TS("e.updated_at") " FROM events e WHERE e.event_id = $1",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list shows them)",
                        id);
    }
    doc = ev_row_object(r, 0, SHOW_COLS, EV_NCOLS(SHOW_COLS));
    quiet = PQgetvalue(r, 0, 16)[0] == 't';
    stored = json_loads(PQgetvalue(r, 0, 15), 0, &jerr);
    PQclear(r);
    if (!json_is_object(stored)) {
        json_decref(stored);
        stored = json_object();
    }
    apply_quiet(doc, quiet);
    reasons = json_object_get(stored, "reasons");
    reasons = json_is_array(reasons) ? json_deep_copy(reasons) : json_array();
    recs = json_object_get(stored, "recommendations");
    recs = json_is_array(recs) ? json_deep_copy(recs) : json_array();
    if (quiet) {
        char        age[32], text[512];
        const char *was = ev_jstr(doc, "assessed_urgency"), *now = ev_jstr(doc, "urgency");

        ev_human_secs(ev_jint(doc, "quiet_for_s"), age, sizeof(age));
        if (strcmp(was, now) != 0)
            snprintf(text, sizeof(text), "no new related alerts for %s (over %d hours): lower "
                     "priority, shown as %s instead of the assessed %s", age, st->quiet_hours,
                     now, was);
        else
            snprintf(text, sizeof(text), "no new related alerts for %s (over %d hours): lower "
                     "priority (already %s)", age, st->quiet_hours, now);
        json_array_append_new(reasons, json_pack("{s:s, s:s, s:b}", "code", "quiet", "text",
                                                 text, "at_read", 1));
    }
    assessment = json_pack("{s:o, s:o}", "reasons", reasons, "recommendations", recs);
    if (json_is_integer(json_object_get(stored, "assessed_at"))) {
        char t[40];

        json_object_set_new(assessment, "assessed_at",
                            json_string(cwpp_format_time_ms(
                                json_integer_value(json_object_get(stored, "assessed_at")), t,
                                sizeof(t))));
    } else {
        json_object_set_new(assessment, "assessed_at", json_null());
    }
    json_decref(stored);
    json_object_set_new(doc, "assessment", assessment);
    json_object_set_new(doc, "quiet_after_hours", json_integer(st->quiet_hours));
    json_object_set_new(doc, "retention_days", json_integer(st->retention_days));
    *out = doc;
    return CTL_OK;
}

/* ------------------------------------------------------------ events alerts */

static const col_t ALERT_COLS[] = {
    {"alert_id", COL_STR},   {"name", COL_STR},        {"type", COL_STR},
    {"severity", COL_STR},   {"status", COL_STR},      {"defense", COL_STR},
    {"occurrences", COL_INT}, {"first_seen", COL_STR}, {"last_seen", COL_STR},
    {"reason", COL_STR},     {"asset_id", COL_STR},    {"source", COL_STR},
    {"attack_tactic", COL_STR}, {NULL, COL_INT} /* 13 first_seen ms */,
};

/* The event's alerts in the order of their first occurrence (within the event). */
static const char SQL_EVENT_ALERTS[] =
    "SELECT a.alert_id, a.name, a.type, a.severity, a.status, a.defense, ea.occurrences, "
    CTL_TS("COALESCE(ea.first_seen, a.first_seen)") ", "
    CTL_TS("COALESCE(ea.last_seen, a.last_seen)") ", ea.reason, a.asset_id, a.source, "
    "a.attack_tactic, " MS("COALESCE(ea.first_seen, a.first_seen)") " "
    "FROM event_alerts ea JOIN alerts a USING (alert_id) WHERE ea.event_id = $1 "
    "ORDER BY COALESCE(ea.first_seen, a.first_seen), a.alert_id";

int ev_query_alerts(PGconn *pg, const char *id, json_t **out)
{
    const char *p[1] = {id};
    PGresult   *r = PQexecParams(pg, SQL_EVENT_ALERTS, 1, NULL, p, NULL, NULL, 0);
    int         i;

    *out = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    *out = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = ev_row_object(r, i, ALERT_COLS, EV_NCOLS(ALERT_COLS));

        json_object_set_new(o, "first_seen_ms", ev_cell_json(r, i, 13, COL_INT));
        json_array_append_new(*out, o);
    }
    PQclear(r);
    return CTL_OK;
}

/* ---------------------------------------------------------- events entities */

static const col_t ENTITY_COLS[] = {
    {"entity_type", COL_STR}, {"value", COL_STR},      {"assets", COL_JSON},
    {"event_alerts", COL_INT}, {"first_seen", COL_STR}, {"last_seen", COL_STR},
    {NULL, COL_INT} /* 6.. the 30-day figures */,
};

static const col_t STATS_COLS[] = {
    {"events", COL_INT}, {"alerts", COL_INT}, {"tasks", COL_INT}, {"assets", COL_INT},
    {"last_seen", COL_STR},
};

int ev_query_entities(PGconn *pg, const char *id, int affected, json_t **out)
{
    const char *p[3];
    char        order[128];
    PGresult   *r;
    json_t     *arr;
    int         i;

    *out = NULL;
    p[0] = id;
    p[1] = affected ? "true" : "false";
    p[2] = cwpp_entity_types_pg_order(order, sizeof(order)); /* listing order, libs/alert */
    /* per entity: its assets and alerts within the event; its 30-day figures in the
     * account (entity_stats_30d, the lateral quals reach the view's index through the
     * value's bounded key, migration 009: values themselves may be too long to index);
     * for a host, what the event's latest alert on it says about the asset */
    r = PQexecParams(pg,
                     "WITH ent AS (SELECT x.account_id, x.entity_type, x.value, x.value_key, "
                     "array_agg(DISTINCT x.asset_id) FILTER (WHERE x.asset_id <> '') AS assets, "
                     "count(DISTINCT x.alert_id) AS n, min(x.first_seen) AS f, "
                     "max(x.last_seen) AS l FROM entity_alerts x WHERE x.event_id = $1 "
                     "AND (NOT $2::boolean OR x.entity_type = 'host') "
                     "GROUP BY x.account_id, x.entity_type, x.value_key, x.value) "
                     "SELECT ent.entity_type, ent.value, "
                     "array_to_json(COALESCE(ent.assets, '{}')), ent.n, " CTL_TS("ent.f") ", "
                     CTL_TS("ent.l") ", COALESCE(s.events, 0), COALESCE(s.alerts, 0), "
                     "COALESCE(s.tasks, 0), COALESCE(s.assets, 0), " CTL_TS("s.last_seen") ", "
                     "CASE WHEN ent.entity_type = 'host' THEN (SELECT a.asset::text "
                     "FROM event_alerts ea JOIN alerts a USING (alert_id) "
                     "WHERE ea.event_id = $1 AND a.asset_id = ent.value "
                     "ORDER BY a.last_seen DESC, a.alert_id LIMIT 1) END "
                     "FROM ent LEFT JOIN LATERAL (SELECT v.events, v.alerts, v.tasks, v.assets, "
                     "v.last_seen FROM entity_stats_30d v WHERE v.account_id = ent.account_id "
                     "AND v.entity_type = ent.entity_type AND v.value_key = ent.value_key "
                     "AND v.value = ent.value) s ON true "
                     "ORDER BY array_position($3::text[], ent.entity_type), ent.value",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    arr = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = ev_row_object(r, i, ENTITY_COLS, 6), *s = json_object();
        int     k;

        for (k = 0; k < EV_NCOLS(STATS_COLS); k++)
            json_object_set_new(s, STATS_COLS[k].key,
                                ev_cell_json(r, i, 6 + k, STATS_COLS[k].kind));
        json_object_set_new(o, "stats_30d", s);
        if (!PQgetisnull(r, i, 11))
            json_object_set_new(o, "asset", ev_cell_json(r, i, 11, COL_JSON));
        json_array_append_new(arr, o);
    }
    PQclear(r);
    *out = arr;
    return CTL_OK;
}

/* ---------------------------------------------------------- entities show */

static const col_t ENT_STATS_COLS[] = {
    {"account_id", COL_STR}, {"events", COL_INT}, {"alerts", COL_INT}, {"tasks", COL_INT},
    {"assets", COL_INT},     {"last_seen", COL_STR},
};

static const col_t ENT_EVENT_COLS[] = {
    {"event_id", COL_STR},  {"account_id", COL_STR}, {"name", COL_STR},
    {"level", COL_STR},     {"status", COL_STR},     {"urgency", COL_STR},
    {"last_seen", COL_STR}, {"entity_alerts", COL_INT}, {"assets", COL_JSON},
    {NULL, COL_BOOL} /* quiet */,
};

int ev_query_entity(PGconn *pg, const settings_t *st, const char *type, const char *value,
                    const char *account, const char *limit, json_t **stats_out,
                    json_t **events_out)
{
    const char *p[6];
    PGresult   *r;
    json_t     *stats, *events;
    int         i;

    *stats_out = *events_out = NULL;
    p[0] = type;
    p[1] = value;
    p[2] = account;
    p[3] = st->retention;
    p[4] = limit;
    p[5] = st->quiet;
    r = PQexecParams(pg,
                     "SELECT account_id, events, alerts, tasks, assets, " CTL_TS("last_seen")
                     " FROM entity_stats_30d WHERE entity_type = $1 "
                     "AND value_key = bounded_key($2) AND value = $2 "
                     "AND ($3::text IS NULL OR account_id = $3) ORDER BY account_id",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    stats = json_array();
    for (i = 0; i < PQntuples(r); i++)
        json_array_append_new(stats, ev_row_object(r, i, ENT_STATS_COLS, EV_NCOLS(ENT_STATS_COLS)));
    PQclear(r);
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
                     CTL_TS("e.last_seen") ", count(DISTINCT x.alert_id), "
                     "array_to_json(array_agg(DISTINCT x.asset_id) FILTER "
                     "(WHERE x.asset_id <> '')), "
                     "e.last_seen < now() - make_interval(hours => $6::int) "
                     "FROM entity_alerts x JOIN events e USING (event_id) "
                     "WHERE x.entity_type = $1 AND x.value_key = bounded_key($2) AND x.value = $2 "
                     "AND ($3::text IS NULL OR x.account_id = $3) "
                     "AND e.last_seen > now() - make_interval(days => $4::int) "
                     "GROUP BY e.event_id ORDER BY e.last_seen DESC, e.event_id LIMIT $5::int",
                     6, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        json_decref(stats);
        return ctl_query_failed(pg, r);
    }
    events = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = ev_row_object(r, i, ENT_EVENT_COLS, EV_NCOLS(ENT_EVENT_COLS));

        if (json_is_null(json_object_get(o, "assets")))
            json_object_set_new(o, "assets", json_array());
        apply_quiet(o, PQgetvalue(r, i, 9)[0] == 't');
        json_array_append_new(events, o);
    }
    PQclear(r);
    if (json_array_size(stats) == 0 && json_array_size(events) == 0) {
        json_decref(stats);
        json_decref(events);
        return ctl_fail(CTL_REFUSED, "no %s entity \"%s\"%s%s in the last %d days", type,
                        value, account != NULL ? " in account " : "",
                        account != NULL ? account : "", st->retention_days);
    }
    *stats_out = stats;
    *events_out = events;
    return CTL_OK;
}
