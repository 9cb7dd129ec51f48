/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_views.c: an event's alerts, entities and chain, and the entity view, for
 * cwpp-api (events.c has the essay: scope, parameters, the read-time rules). Each answer
 * is the document cwppctl prints with --json; cwppctl draws its text, DOT and SVG output
 * from them. The chain is also served as the picture itself (?format=dot|svg), drawn by
 * libs/graph exactly as cwppctl draws it.
 */
#include "api_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h" /* api.dot.path */
#include "cwpp_alert.h"
#include "cwpp_correlate.h"
#include "cwpp_graph.h"
#include "cwpp_log.h"

/* The SVG of a chain: dot gets this long, and may write this much (a graph of thousands
 * of entities stays far below; a stuck or runaway dot costs a request thread no more). */
#define CHAIN_SVG_TIMEOUT_MS 5000
#define CHAIN_SVG_MAX        ((size_t)8 << 20)
#define CHAIN_SVG_CSP        "default-src 'none'; style-src 'unsafe-inline'"

/* The ms-since-epoch of a timestamptz column, in SQL text. */
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* ------------------------------------------------------------ events/{id}/alerts */

/* The event's alerts in the order of their first occurrence within it. */
static const api_ev_key_t ALERT_KEYS[] = {
    {"COALESCE(ea.first_seen, a.first_seen)", "timestamptz", 0},
    {"a.alert_id", "text", 0},
};
#define ALERT_NKEYS 2

static const char ALERT_SELECT[] =
    "SELECT a.alert_id, a.name, a.type, a.severity, a.status, a.defense, ea.occurrences, "
    API_EV_TS("COALESCE(ea.first_seen, a.first_seen)") " AS first_seen, "
    API_EV_TS("COALESCE(ea.last_seen, a.last_seen)") " AS last_seen, ea.reason, a.asset_id, "
    "a.source, a.attack_tactic, " MS("COALESCE(ea.first_seen, a.first_seen)") " AS _ms";
static const char ALERT_FROM[] =
    " FROM event_alerts ea JOIN alerts a USING (alert_id) WHERE ea.event_id = $1 ";

/* The event's alerts, rows [after the keyset $3.. when paged] up to limit + 1 ($2; NULL:
 * all). Returns 0 with *res, or -1 with rs set. */
static int alert_rows(api_req_t *rq, api_resp_t *rs, const char *const *p, int paged,
                      PGresult **res)
{
    cwpp_buf_t sql = {0};
    int        rc;

    if (cwpp_buf_puts(&sql, ALERT_SELECT) != 0 ||
        api_ev_keyset(&sql, ALERT_KEYS, ALERT_NKEYS, 0, 2) != 0 ||
        cwpp_buf_puts(&sql, ALERT_FROM) != 0 ||
        (paged && (cwpp_buf_puts(&sql, "AND ") != 0 ||
                   api_ev_keyset(&sql, ALERT_KEYS, ALERT_NKEYS, 3, 0) != 0)) ||
        cwpp_buf_puts(&sql, " ORDER BY ") != 0 ||
        api_ev_keyset(&sql, ALERT_KEYS, ALERT_NKEYS, 0, 1) != 0 ||
        cwpp_buf_puts(&sql, " LIMIT $2::int") != 0 || cwpp_buf_cstr(&sql) != 0) {
        cwpp_buf_free(&sql);
        api_problem(rs, 503, "unavailable", "Out of memory.");
        return -1;
    }
    rc = api_sql(rq, rs, (const char *)sql.data, paged ? 2 + ALERT_NKEYS : 2, p, res);
    cwpp_buf_free(&sql);
    return rc;
}

int api_ev_alerts(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"limit", "cursor", NULL};
    const char *id = rq->ids[0], *p[2 + ALERT_NKEYS] = {NULL};
    char        lim[16];
    json_t     *state = NULL, *doc, *arr;
    PGresult   *r;
    int         limit, i, n;

    if (!api_args_known(rq, rs, known) ||
        !api_limit(rq, rs, API_EV_LIMIT_DEFAULT, API_EV_LIMIT_MAX, &limit) ||
        !api_cursor_take(rq, rs, &state))
        return 0;
    /* no read-time rule here: the cursor's first member (a reading time elsewhere) is
     * only carried along */
    if ((state != NULL && !api_ev_cursor_keys(rs, state, ALERT_NKEYS, p + 2)) ||
        !api_ev_visible(rq, rs, id)) {
        json_decref(state);
        return 0;
    }
    p[0] = id;
    p[1] = NULL;
    if (api_sql(rq, rs, "SELECT count(*) FROM event_alerts WHERE event_id = $1", 1, p, &r) !=
        0) {
        json_decref(state);
        return 0;
    }
    doc = json_pack("{s:s, s:I}", "event_id", id, "total",
                    (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    p[1] = lim;
    if (alert_rows(rq, rs, p, state != NULL, &r) != 0) {
        json_decref(state);
        json_decref(doc);
        return 0;
    }
    json_decref(state);
    arr = json_array();
    json_object_set_new(doc, "alerts", arr);
    n = PQntuples(r);
    for (i = 0; i < n && i < limit; i++) {
        json_t *o = api_row(r, i);

        api_ev_strip(o);
        json_array_append_new(arr, o);
    }
    if (n > limit)
        api_ev_next_cursor(rq, r, limit - 1, ALERT_NKEYS, "-", doc);
    else
        json_object_set_new(doc, "next_cursor", json_null());
    PQclear(r);
    return api_json(rs, 200, doc);
}

/* ---------------------------------------------------------- events/{id}/entities */

/* 1 when v is a boolean argument's "true" (1, true, yes), 0 for false (0, false, no, or
 * absent); -1 otherwise. */
static int bool_arg(const char *v)
{
    if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
        return 0;
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
        return 1;
    return -1;
}

/* per entity: its assets and alerts within the event; its 30-day figures in the account
 * (entity_stats_30d, the lateral quals reach the view's index through the value's bounded
 * key, migration 009: values themselves may be too long to index); for a host, what the
 * event's latest alert on it says about the asset */
static const char ENTITIES_SQL[] =
    "WITH ent AS (SELECT x.account_id, x.entity_type, x.value, x.value_key, "
    "array_agg(DISTINCT x.asset_id) FILTER (WHERE x.asset_id <> '') AS assets, "
    "count(DISTINCT x.alert_id) AS n, min(x.first_seen) AS f, "
    "max(x.last_seen) AS l FROM entity_alerts x WHERE x.event_id = $1 "
    "AND (NOT $2::boolean OR x.entity_type = 'host') "
    "GROUP BY x.account_id, x.entity_type, x.value_key, x.value) "
    "SELECT ent.entity_type, ent.value, "
    "array_to_json(COALESCE(ent.assets, '{}')) AS assets, ent.n AS event_alerts, "
    API_EV_TS("ent.f") " AS first_seen, " API_EV_TS("ent.l") " AS last_seen, "
    "COALESCE(s.events, 0) AS _events, COALESCE(s.alerts, 0) AS _alerts, "
    "COALESCE(s.tasks, 0) AS _tasks, COALESCE(s.assets, 0) AS _assets, "
    API_EV_TS("s.last_seen") " AS _last_seen, "
    "CASE WHEN ent.entity_type = 'host' THEN (SELECT a.asset "
    "FROM event_alerts ea JOIN alerts a USING (alert_id) "
    "WHERE ea.event_id = $1 AND a.asset_id = ent.value "
    "ORDER BY a.last_seen DESC, a.alert_id LIMIT 1) END AS _asset "
    "FROM ent LEFT JOIN LATERAL (SELECT v.events, v.alerts, v.tasks, v.assets, "
    "v.last_seen FROM entity_stats_30d v WHERE v.account_id = ent.account_id "
    "AND v.entity_type = ent.entity_type AND v.value_key = ent.value_key "
    "AND v.value = ent.value) s ON true "
    "ORDER BY array_position($3::text[], ent.entity_type), ent.value";

int api_ev_entities(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"affected", NULL};
    static const char *const figures[] = {"events", "alerts", "tasks", "assets", "last_seen"};
    const char *id = rq->ids[0], *p[3];
    char        order[128], key[16];
    int         affected = bool_arg(api_arg(rq, "affected")), i;
    PGresult   *r;
    json_t     *arr;

    if (!api_args_known(rq, rs, known))
        return 0;
    if (affected < 0)
        return api_problem(rs, 400, "bad_filter", "affected must be 1 or 0 (true or false).");
    if (!api_ev_visible(rq, rs, id))
        return 0;
    p[0] = id;
    p[1] = affected ? "true" : "false";
    p[2] = cwpp_entity_types_pg_order(order, sizeof(order)); /* listing order, libs/alert */
    if (api_sql(rq, rs, ENTITIES_SQL, 3, p, &r) != 0)
        return 0;
    arr = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = api_row(r, i), *s = json_object(), *asset;
        size_t  k;

        if (o == NULL || s == NULL) {
            json_decref(o);
            json_decref(s);
            json_decref(arr);
            PQclear(r);
            return -1;
        }
        for (k = 0; k < sizeof(figures) / sizeof(figures[0]); k++) {
            snprintf(key, sizeof(key), "_%s", figures[k]);
            json_object_set(s, figures[k], json_object_get(o, key));
        }
        json_object_set_new(o, "stats_30d", s);
        asset = json_object_get(o, "_asset");
        if (asset != NULL && !json_is_null(asset))
            json_object_set(o, "asset", asset);
        api_ev_strip(o);
        json_array_append_new(arr, o);
    }
    PQclear(r);
    return api_json(rs, 200, json_pack("{s:s, s:b, s:o}", "event_id", id, "affected_only",
                                       affected, "entities", arr));
}

/* ------------------------------------------------------------ events/{id}/chain */

/* The event's entities and the ends of its edges as nodes, each once: "type\nvalue" ->
 * the node's index in nodes. Returns the node's id ("n1", ...), or NULL when out of
 * memory. */
static const char *node(json_t *index, json_t *nodes, const char *type, const char *value)
{
    size_t      n = strlen(type) + strlen(value) + 2;
    char       *key = malloc(n);
    json_t     *ix;
    const char *id = NULL;

    if (key == NULL)
        return NULL;
    snprintf(key, n, "%s\n%s", type, value); /* a type never holds a newline */
    ix = json_object_get(index, key);
    if (ix == NULL) {
        char nid[24];

        snprintf(nid, sizeof(nid), "n%zu", json_array_size(nodes) + 1);
        if (json_object_set_new(index, key, json_integer((json_int_t)json_array_size(nodes))) ||
            json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "id", nid, "type", type,
                                                   "value", value))) {
            free(key);
            return NULL;
        }
        ix = json_object_get(index, key);
    }
    free(key);
    id = json_string_value(json_object_get(
        json_array_get(nodes, (size_t)json_integer_value(ix)), "id"));
    return id;
}

/* The timeline: the alerts in order with the gap to the previous one and whether the
 * pace quickened. Sets span_s and timeline in doc; takes arr. */
static void timeline(json_t *doc, json_t *arr)
{
    int64_t prev_ms = 0, prev_gap = -1, first_ms = 0;
    size_t  k;

    for (k = 0; k < json_array_size(arr); k++) {
        json_t *o = json_array_get(arr, k);
        int64_t t = (int64_t)json_integer_value(json_object_get(o, "_ms"));

        if (k == 0) {
            first_ms = t;
            json_object_set_new(o, "gap_s", json_null());
            json_object_set_new(o, "pace", json_string("start"));
        } else {
            int64_t gap = (t - prev_ms) / 1000;

            json_object_set_new(o, "gap_s", json_integer(gap));
            json_object_set_new(o, "pace", json_string(prev_gap < 0    ? "first gap"
                                                       : gap < prev_gap ? "faster"
                                                       : gap > prev_gap ? "slower" : "steady"));
            prev_gap = gap;
        }
        prev_ms = t;
        json_object_del(o, "reason");
        api_ev_strip(o);
    }
    json_object_set_new(doc, "span_s", json_integer(json_array_size(arr) > 0
                                                        ? (prev_ms - first_ms) / 1000 : 0));
    json_object_set_new(doc, "timeline", arr);
}

/*
 * Answers the chain document doc (borrowed) as format "dot" (text/vnd.graphviz) or "svg"
 * (image/svg+xml, run through api.dot.path, with a Content-Security-Policy that lets the
 * picture run nothing when opened on its own). dot missing, failing, too slow or too
 * talkative: 503 "unavailable" with a sentence, the cause logged. Returns 0, or -1 when
 * out of memory.
 */
static int chain_picture(api_req_t *rq, api_resp_t *rs, const json_t *doc, const char *format)
{
    cwpp_buf_t  dot = {0}, svg = {0};
    cwpp_buf_t *answer = &dot;
    const char *why = NULL;
    char        errstr[512];
    int         err;

    if (cwpp_graph_dot(doc, &dot) != CWPP_OK) {
        cwpp_buf_free(&dot);
        return -1;
    }
    if (strcmp(format, "svg") == 0) {
        err = cwpp_graph_svg(rq->api->conf->dot_path, &dot, &svg, CHAIN_SVG_TIMEOUT_MS,
                             CHAIN_SVG_MAX, errstr, sizeof(errstr));
        cwpp_buf_free(&dot);
        answer = &svg;
        switch (err) {
        case CWPP_OK:
            break;
        case CWPP_ENOMEM:
            cwpp_buf_free(&svg);
            return -1;
        case CWPP_ENOTFOUND:
            why = "Graphviz (dot) is not installed on the server";
            break;
        case CWPP_ETRANSIENT:
            why = "Graphviz (dot) did not finish in time";
            break;
        case CWPP_EINVAL:
            why = "the picture is larger than the server serves";
            break;
        default:
            why = "Graphviz (dot) failed";
        }
        if (why != NULL) {
            cwpp_log(CWPP_LOG_WARN, "api_chain_svg_failed", "%s", errstr);
            cwpp_buf_free(&svg);
            return api_problem(rs, 503, "unavailable", "The chain cannot be drawn as SVG: %s; "
                               "format=dot or format=json still answer.", why);
        }
        api_header(rs, "Content-Security-Policy", CHAIN_SVG_CSP);
        rs->ctype = "image/svg+xml";
    } else {
        rs->ctype = "text/vnd.graphviz; charset=utf-8";
    }
    rs->status = 200;
    rs->raw = (char *)cwpp_buf_detach(answer, &rs->raw_len);
    if (rs->raw == NULL) { /* nothing to detach: DOT text is never empty, a successful dot's SVG neither */
        cwpp_buf_free(answer);
        return -1;
    }
    return 0;
}

int api_ev_chain(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"format", NULL};
    const char *id = rq->ids[0], *p[3] = {id, NULL, NULL};
    const char *format = api_arg(rq, "format");
    char        order[128];
    PGresult   *r = NULL;
    json_t     *doc = NULL, *nodes, *edges, *index = NULL;
    int         i, rc = 0;

    if (!api_args_known(rq, rs, known))
        return 0;
    if (format == NULL)
        format = "json";
    if (strcmp(format, "json") != 0 && strcmp(format, "dot") != 0 &&
        strcmp(format, "svg") != 0)
        return api_problem(rs, 400, "bad_filter", "format must be json, dot or svg.");
    if (!api_ev_id_ok(id))
        return api_ev_not_found(rs, NULL);
    p[1] = api_scope(rq);
    if (api_sql(rq, rs, "SELECT e.event_id, e.name, e.asset_count FROM events e "
                "WHERE e.event_id = $1 AND " API_SCOPE("e.account_id", "2"), 2, p, &r) != 0)
        return 0;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return api_ev_not_found(rs, id);
    }
    doc = api_row(r, 0);
    PQclear(r);
    r = NULL;
    if (doc == NULL)
        return -1;
    /* the timeline: every alert of the event */
    p[1] = NULL;
    if (alert_rows(rq, rs, p, 0, &r) != 0)
        goto out;
    timeline(doc, api_rows(r));
    PQclear(r);
    r = NULL;

    nodes = json_array();
    edges = json_array();
    index = json_object();
    json_object_set_new(doc, "graph", json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges));
    /* $2: the entity types in listing order, from libs/alert (host first, file last) */
    p[1] = cwpp_entity_types_pg_order(order, sizeof(order));
    if (api_sql(rq, rs, "SELECT entity_type, value FROM entity_alerts WHERE event_id = $1 "
                "GROUP BY entity_type, value ORDER BY min(first_seen), "
                "array_position($2::text[], entity_type), value", 2, p, &r) != 0)
        goto out;
    for (i = 0; i < PQntuples(r); i++)
        if (node(index, nodes, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)) == NULL)
            goto oom;
    PQclear(r);
    r = NULL;
    if (api_sql(rq, rs, "SELECT src_type, src, relation, dst_type, dst, alert_id, alerts, "
                API_EV_TS("first_seen") " AS first_seen, " API_EV_TS("last_seen")
                " AS last_seen FROM event_edges WHERE event_id = $1 ORDER BY first_seen, "
                "src_type, src, relation, dst_type, dst", 1, p, &r) != 0)
        goto out;
    for (i = 0; i < PQntuples(r); i++) {
        json_t     *e = api_row(r, i);
        const char *from, *to;

        if (e == NULL)
            goto oom;
        from = node(index, nodes, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        to = node(index, nodes, PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
        if (from == NULL || to == NULL) {
            json_decref(e);
            goto oom;
        }
        json_object_set_new(e, "from", json_string(from));
        json_object_set_new(e, "to", json_string(to));
        json_array_append_new(edges, e);
    }
    if (strcmp(format, "json") != 0) {
        rc = chain_picture(rq, rs, doc, format);
        goto out;
    }
    rc = api_json(rs, 200, doc);
    doc = NULL;
    goto out;
oom:
    rc = -1;
out:
    PQclear(r);
    json_decref(index);
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------- entities/{type}?value= */

static const api_ev_key_t ENTITY_EVENT_KEYS[] = {
    {"e.last_seen", "timestamptz", 1},
    {"e.event_id", "text", 0},
};
#define ENTITY_NKEYS 2

/* $1 type, $2 value, $3 account (NULL: all), $4 scope, $5 as_of, $6 retention, $7 quiet,
 * $8 limit + 1, then the keyset */
static const char ENTITY_EVENTS_FROM[] =
    " FROM entity_alerts x JOIN events e USING (event_id) "
    "WHERE x.entity_type = $1 AND x.value_key = bounded_key($2) AND x.value = $2 "
    "AND ($3::text IS NULL OR x.account_id = $3) AND " API_SCOPE("x.account_id", "4") " "
    "AND e.last_seen > $5::timestamptz - make_interval(days => $6::int) ";

int api_ev_entity(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"value", "account", "limit", "cursor",
                                        "retention_days", "quiet_hours", NULL};
    const char        *p[8 + ENTITY_NKEYS] = {NULL}, *value = api_arg(rq, "value");
    const char        *account = api_arg(rq, "account");
    char               names[128], lim[16], as_of[64];
    cwpp_entity_type_t et;
    api_ev_rules_t     rules;
    cwpp_buf_t         sql = {0};
    json_t            *state = NULL, *doc = NULL, *stats, *events;
    PGresult          *r = NULL;
    int                limit, i, n, rc = 0;

    if (!api_args_known(rq, rs, known) || !api_ev_rules(rq, rs, &rules) ||
        !api_limit(rq, rs, API_EV_LIMIT_DEFAULT, API_EV_LIMIT_MAX, &limit))
        return 0;
    if (rq->ids[0] == NULL || cwpp_entity_type_parse(rq->ids[0], &et) != 0)
        return api_problem(rs, 400, "bad_filter", "Unknown entity type (use %s).",
                           cwpp_entity_types_text(names, sizeof(names), ", ", " or "));
    if (value == NULL)
        return api_problem(rs, 400, "bad_filter", "value is required: the entity's value.");
    if (!api_ev_text_arg(rs, "value", value, 40000) ||
        !api_ev_text_arg(rs, "account", account, 128) || !api_cursor_take(rq, rs, &state))
        return 0;
    if ((state != NULL && !api_ev_cursor_keys(rs, state, ENTITY_NKEYS, p + 8)) ||
        !api_ev_as_of(rq, rs, state, as_of, sizeof(as_of)))
        goto out;
    p[0] = cwpp_entity_type_name(et);
    p[1] = value;
    p[2] = account;
    p[3] = api_scope(rq);
    p[4] = as_of;
    p[5] = rules.retention;
    p[6] = rules.quiet;
    /* the 30-day figures per account, on every page */
    if (api_sql(rq, rs, "SELECT account_id, events, alerts, tasks, assets, "
                API_EV_TS("last_seen") " AS last_seen FROM entity_stats_30d "
                "WHERE entity_type = $1 AND value_key = bounded_key($2) AND value = $2 "
                "AND ($3::text IS NULL OR account_id = $3) AND "
                API_SCOPE("account_id", "4") " ORDER BY account_id", 4, p, &r) != 0)
        goto out;
    stats = api_rows(r);
    PQclear(r);
    r = NULL;
    doc = json_pack("{s:s, s:s, s:o, s:i, s:i}", "entity_type", p[0], "value", value,
                    "stats_30d", stats, "retention_days", rules.retention_days,
                    "quiet_after_hours", rules.quiet_hours);
    if (doc == NULL)
        goto oom;
    if (cwpp_buf_puts(&sql, "SELECT count(DISTINCT e.event_id)") != 0 ||
        cwpp_buf_puts(&sql, ENTITY_EVENTS_FROM) != 0 || cwpp_buf_cstr(&sql) != 0)
        goto oom;
    if (api_sql(rq, rs, (const char *)sql.data, 6, p, &r) != 0)
        goto out;
    json_object_set_new(doc, "total", json_integer(strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
    PQclear(r);
    r = NULL;

    snprintf(lim, sizeof(lim), "%d", limit + 1);
    p[7] = lim;
    cwpp_buf_reset(&sql);
    if (cwpp_buf_puts(&sql, "SELECT e.event_id, e.account_id, e.name, e.level, e.status, "
                      "e.urgency, " API_EV_TS("e.last_seen") " AS last_seen, "
                      "count(DISTINCT x.alert_id) AS entity_alerts, "
                      "COALESCE(array_to_json(array_agg(DISTINCT x.asset_id) FILTER "
                      "(WHERE x.asset_id <> '')), '[]') AS assets, "
                      CWPP_SQL_QUIET("e.last_seen", "$5", "$7") " AS _quiet") != 0 ||
        api_ev_keyset(&sql, ENTITY_EVENT_KEYS, ENTITY_NKEYS, 0, 2) != 0 ||
        cwpp_buf_puts(&sql, ENTITY_EVENTS_FROM) != 0 ||
        (state != NULL && (cwpp_buf_puts(&sql, "AND ") != 0 ||
                           api_ev_keyset(&sql, ENTITY_EVENT_KEYS, ENTITY_NKEYS, 9, 0) != 0)) ||
        cwpp_buf_puts(&sql, " GROUP BY e.event_id ORDER BY ") != 0 ||
        api_ev_keyset(&sql, ENTITY_EVENT_KEYS, ENTITY_NKEYS, 0, 1) != 0 ||
        cwpp_buf_puts(&sql, " LIMIT $8::int") != 0 || cwpp_buf_cstr(&sql) != 0)
        goto oom;
    if (api_sql(rq, rs, (const char *)sql.data, 8 + (state != NULL ? ENTITY_NKEYS : 0), p,
                &r) != 0)
        goto out;
    events = json_array();
    json_object_set_new(doc, "events", events);
    n = PQntuples(r);
    for (i = 0; i < n && i < limit; i++) {
        json_t *o = api_row(r, i);

        if (o == NULL)
            goto oom;
        api_ev_apply_quiet(o, json_is_true(json_object_get(o, "_quiet")));
        json_object_del(o, "tactics"); /* no stages here */
        api_ev_strip(o);
        json_array_append_new(events, o);
    }
    if (n > limit)
        api_ev_next_cursor(rq, r, limit - 1, ENTITY_NKEYS, as_of, doc);
    else
        json_object_set_new(doc, "next_cursor", json_null());
    if (state == NULL && json_array_size(stats) == 0 && n == 0) {
        rc = api_problem(rs, 404, "not_found", "There is no %s entity \"%.256s\"%s%.128s in "
                         "the last %d days among the accounts you hold.",
                         p[0], value, account != NULL ? " in account " : "",
                         account != NULL ? account : "", rules.retention_days);
        goto out;
    }
    rc = api_json(rs, 200, doc);
    doc = NULL;
    goto out;
oom:
    rc = -1;
out:
    PQclear(r);
    cwpp_buf_free(&sql);
    json_decref(state);
    json_decref(doc);
    return rc;
}
