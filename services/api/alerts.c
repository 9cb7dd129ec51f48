/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alerts.c: the alerts of the caller's accounts (docs/api/parts/alerts.yaml).
 *
 *   GET /api/v1/alerts                the list, newest first (latest occurrence), filtered
 *                                     and paged by a keyset cursor
 *   GET /api/v1/alerts/{id}           one alert: every stored field, the handling the
 *                                     responder added, the events it belongs to and its
 *                                     activity log (the document `cwppctl alerts show`
 *                                     prints)
 *   GET /api/v1/alerts/{id}/fields    the fields a whitelist rule may test (libs/rules) with
 *                                     this alert's value of each: what a rule made from
 *                                     this alert would compare
 *
 * Everything here reads; changes to alerts (the whitelist) are whitelist.c's commands.
 * Every query carries the caller's scope, so an alert of another tenant is a 404 exactly
 * like a missing one, and never appears in a list or a count.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_rules.h"

/* RFC 3339 UTC, second precision, of a timestamptz column. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define LIST_DEFAULT 100
#define LIST_MAX     500
#define TEXT_MAX     512  /* the longest name, type, asset, account or event id accepted */
#define ID_SHOWN     128  /* the longest id repeated in an answer */
#define FIELDS_MAX   500  /* details values listed by /fields at most */
#define DEPTH_MAX    8    /* and how deep into details */

/* The statuses an analyst counts as "handled" (the reference's "Handled or Not"): dealt
 * with, by handling or by the whitelist. The others (unhandled, handling) are "not". */
#define HANDLED_STATUSES "('handled', 'manually_whitelisted', 'automatically_whitelisted')"

/*
 * The filter of the list and its count. $1 scope, $2 since (ms), $3 until (ms), $4
 * statuses (JSON list), $5 handled ("yes"/"no"), $6 name, $7 type, $8 severities (JSON
 * list), $9 asset, $10 account, $11 event; each NULL when not given. An alert is in the
 * period [since, until] when it was active then: its latest occurrence is not before since
 * and its first not after until (as events are listed).
 */
#define FILTER                                                                                 \
    "FROM alerts a WHERE " API_SCOPE("a.account_id", "1") " "                                  \
    "AND ($2::bigint IS NULL OR a.last_seen >= to_timestamp($2::bigint / 1000.0)) "            \
    "AND ($3::bigint IS NULL OR a.first_seen <= to_timestamp($3::bigint / 1000.0)) "           \
    "AND ($4::json IS NULL OR a.status IN (SELECT json_array_elements_text($4::json))) "       \
    "AND ($5::text IS NULL OR (a.status IN " HANDLED_STATUSES ") = ($5::text = 'yes')) "       \
    "AND ($6::text IS NULL OR a.name = $6::text) "                                             \
    "AND ($7::text IS NULL OR a.type = $7::text) "                                             \
    "AND ($8::json IS NULL OR a.severity IN (SELECT json_array_elements_text($8::json))) "     \
    "AND ($9::text IS NULL OR a.asset_id = $9::text) "                                         \
    "AND ($10::text IS NULL OR a.account_id = $10::text) "                                     \
    "AND ($11::text IS NULL OR EXISTS (SELECT 1 FROM event_alerts ea "                         \
    "WHERE ea.event_id = $11::text AND ea.alert_id = a.alert_id)) "
#define NFILTER 11

static const char SQL_COUNT[] = "SELECT count(*) " FILTER;
/* $12 the cursor's last_seen (microseconds since 1970), $13 its alert id, $14 the limit */
static const char SQL_LIST[] =
    "SELECT a.alert_id, a.name, a.type, a.severity, a.status, a.account_id, a.asset_id, "
    "a.asset ->> 'name' AS asset_name, a.source, a.defense, " TS("a.first_seen") " AS first_seen, "
    TS("a.last_seen") " AS last_seen, a.occurrences, "
    "(extract(epoch FROM a.last_seen) * 1000000)::bigint AS k_us " FILTER
    "AND ($12::bigint IS NULL OR a.last_seen < timestamptz 'epoch' + $12::bigint * "
    "interval '1 microsecond' OR (a.last_seen = timestamptz 'epoch' + $12::bigint * "
    "interval '1 microsecond' AND a.alert_id > $13::text)) "
    "ORDER BY a.last_seen DESC, a.alert_id LIMIT $14::int";

/* $1 the alert id, $2 scope */
static const char SQL_ALERT[] =
    "SELECT " CWPP_ALERT_ROW_SQL ", " TS("a.first_seen") ", " TS("a.last_seen") ", "
    "COALESCE(a.handling::text, 'null') FROM alerts a "
    "WHERE a.alert_id = $1 AND " API_SCOPE("a.account_id", "2");
/* the events it joined (the event is of the alert's account: no further scope needed) */
static const char SQL_EVENTS[] =
    "SELECT e.event_id, e.name, e.level, e.status, e.owner, ea.reason, "
    TS("ea.joined_at") " AS joined_at, " TS("e.handled_at") " AS handled_at "
    "FROM event_alerts ea JOIN events e ON e.event_id = ea.event_id "
    "WHERE ea.alert_id = $1 ORDER BY ea.joined_at, e.event_id";
static const char SQL_LOG[] =
    "SELECT " TS("at") ", actor, action, COALESCE(before::text, 'null'), "
    "COALESCE(after::text, 'null'), COALESCE(remark, '') FROM activity_log "
    "WHERE object_type = 'alert' AND object_id = $1 ORDER BY at, log_id";

/* ------------------------------------------------------------------ checking */

/* 1 when s is a text an exact-match filter may carry; else 0 after a 400 naming arg. */
static int text_ok(api_resp_t *rs, const char *arg, const char *s)
{
    if (s[0] == '\0' || strlen(s) > TEXT_MAX || !cwpp_utf8_valid(s, strlen(s))) {
        api_problem(rs, 400, "bad_filter", "\"%s\" must be a text of 1 to %d UTF-8 bytes.",
                    arg, TEXT_MAX);
        return 0;
    }
    return 1;
}

/* A time argument (RFC 3339, or a date YYYY-MM-DD meaning 00:00 UTC) into *ms. 1, or 0
 * after a 400. */
static int time_arg(const api_req_t *rq, api_resp_t *rs, const char *name, int *has,
                    int64_t *ms, char *out, size_t size)
{
    const char *v = api_arg(rq, name);
    char        date[40];

    *has = 0;
    if (v == NULL)
        return 1;
    if (!(strlen(v) == 10 && v[4] == '-' && v[7] == '-' &&
          snprintf(date, sizeof(date), "%sT00:00:00Z", v) > 0 &&
          cwpp_parse_time_ms(date, 0, ms) == 0) &&
        (strlen(v) > 64 || cwpp_parse_time_ms(v, 0, ms) != 0)) {
        api_problem(rs, 400, "bad_filter", "\"%s\" must be an RFC 3339 time "
                    "(2026-05-01T08:00:00Z) or a date (2026-05-01).", name);
        return 0;
    }
    snprintf(out, size, "%lld", (long long)*ms);
    *has = 1;
    return 1;
}

typedef int (*word_check_fn)(const char *w);

static int is_status(const char *w)
{
    cwpp_alert_status_t st;

    return cwpp_status_parse(w, &st) == 0;
}

static int is_severity(const char *w)
{
    cwpp_severity_t sv;

    return cwpp_severity_parse(w, &sv) == 0;
}

/*
 * A comma-separated list of words (each passing ok) as a JSON list text in *out
 * (malloc'd; NULL when the argument is absent). 1, or 0 after a 400 naming the word and
 * the words allowed (allowed).
 */
static int word_arg(const api_req_t *rq, api_resp_t *rs, const char *name, word_check_fn ok,
                    const char *allowed, char **out)
{
    const char *v = api_arg(rq, name), *p;
    json_t     *list;

    *out = NULL;
    if (v == NULL)
        return 1;
    if ((list = json_array()) == NULL)
        return -1;
    for (p = v;;) {
        const char *end = strchr(p, ',');
        size_t      n = end != NULL ? (size_t)(end - p) : strlen(p);
        char        w[40];

        if (n == 0 || n >= sizeof(w)) {
            json_decref(list);
            api_problem(rs, 400, "bad_filter", "\"%s\" must be one or more of %s, separated "
                        "by commas.", name, allowed);
            return 0;
        }
        memcpy(w, p, n);
        w[n] = '\0';
        if (!ok(w)) {
            json_decref(list);
            api_problem(rs, 400, "bad_filter", "\"%s\" is not a %s (%s).", w,
                        strcmp(name, "status") == 0 ? "status" : "severity", allowed);
            return 0;
        }
        json_array_append_new(list, json_string(w));
        if (end == NULL)
            break;
        p = end + 1;
    }
    *out = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return *out != NULL ? 1 : -1;
}

/* ------------------------------------------------------------------ the list */

static int alerts_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"since", "until", "status", "handled", "name",
                                        "type", "severity", "asset", "account", "event",
                                        "limit", "cursor", NULL};
    static const char *const texts[] = {"name", "type", "asset", "account", "event"};
    char          since[24], until[24], lim[16], key_us[24], names[200];
    char         *statuses = NULL, *severities = NULL, *next = NULL;
    const char   *p[14], *handled;
    int64_t       since_ms = 0, until_ms = 0;
    int           has_since, has_until, limit, rc = 0, ok, i, n;
    json_t       *cursor = NULL, *arr = NULL, *state = NULL;
    PGresult     *rcount = NULL, *rl = NULL;
    size_t        k;

    memset(p, 0, sizeof(p));
    if (!api_args_known(rq, rs, known) || !api_limit(rq, rs, LIST_DEFAULT, LIST_MAX, &limit))
        return 0;
    if (!time_arg(rq, rs, "since", &has_since, &since_ms, since, sizeof(since)) ||
        !time_arg(rq, rs, "until", &has_until, &until_ms, until, sizeof(until)))
        return 0;
    if (has_since && has_until && until_ms < since_ms)
        return api_problem(rs, 400, "bad_filter", "\"until\" is before \"since\": nothing "
                           "can match.");
    handled = api_arg(rq, "handled");
    if (handled != NULL && strcmp(handled, "yes") != 0 && strcmp(handled, "no") != 0)
        return api_problem(rs, 400, "bad_filter", "\"handled\" must be yes or no.");
    for (k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        const char *v = api_arg(rq, texts[k]);

        if (v != NULL && !text_ok(rs, texts[k], v))
            return 0;
    }
    ok = word_arg(rq, rs, "status", is_status,
                  cwpp_statuses_text(names, sizeof(names), ", ", " or "), &statuses);
    if (ok == 1)
        ok = word_arg(rq, rs, "severity", is_severity, "critical, high, medium or low",
                      &severities);
    if (ok == 1)
        ok = api_cursor_take(rq, rs, &cursor);
    if (ok != 1) {
        rc = ok < 0 ? -1 : 0;
        goto out;
    }
    if (cursor != NULL) {
        json_t *t = json_array_get(cursor, 0), *id = json_array_get(cursor, 1);

        if (!json_is_array(cursor) || json_array_size(cursor) != 2 || !json_is_integer(t) ||
            !json_is_string(id) || json_string_length(id) > TEXT_MAX) {
            api_problem(rs, 400, "bad_cursor", "The cursor does not belong to this list.");
            goto out;
        }
        snprintf(key_us, sizeof(key_us), "%" JSON_INTEGER_FORMAT, json_integer_value(t));
        p[11] = key_us;
        p[12] = json_string_value(id);
    }
    p[0] = api_scope(rq);
    p[1] = has_since ? since : NULL;
    p[2] = has_until ? until : NULL;
    p[3] = statuses;
    p[4] = handled;
    p[5] = api_arg(rq, "name");
    p[6] = api_arg(rq, "type");
    p[7] = severities;
    p[8] = api_arg(rq, "asset");
    p[9] = api_arg(rq, "account");
    p[10] = api_arg(rq, "event");
    snprintf(lim, sizeof(lim), "%d", limit + 1); /* one more: is there a next page? */
    p[13] = lim;
    if (api_sql(rq, rs, SQL_COUNT, NFILTER, p, &rcount) != 0 ||
        api_sql(rq, rs, SQL_LIST, 14, p, &rl) != 0)
        goto out;
    n = PQntuples(rl);
    if ((arr = json_array()) == NULL) {
        rc = -1;
        goto out;
    }
    for (i = 0; i < n && i < limit; i++) {
        json_t *row = api_row(rl, i);

        if (row == NULL) {
            rc = -1;
            goto out;
        }
        json_object_del(row, "k_us");
        json_array_append_new(arr, row);
    }
    if (n > limit) {
        int last = limit - 1;

        state = json_pack("[I, s]",
                          (json_int_t)strtoll(PQgetvalue(rl, last, PQfnumber(rl, "k_us")),
                                              NULL, 10),
                          PQgetvalue(rl, last, 0));
        if (state == NULL || (next = api_cursor_make(rq, state)) == NULL) {
            rc = -1;
            goto out;
        }
    }
    rc = api_json(rs, 200, json_pack("{s:o, s:I, s:s?}", "alerts", arr, "total",
                                     (json_int_t)strtoll(PQgetvalue(rcount, 0, 0), NULL, 10),
                                     "next_cursor", next));
    arr = NULL;
out:
    PQclear(rcount);
    PQclear(rl);
    json_decref(arr);
    json_decref(cursor);
    json_decref(state);
    free(statuses);
    free(severities);
    free(next);
    return rc;
}

/* ------------------------------------------------------------------- one alert */

/* api_not_found's 404, worded "there is no alert" as cwppctl always said it. */
static void not_found(api_resp_t *rs, const char *id)
{
    api_problem(rs, 404, "not_found", "There is no alert \"%.128s\" among the accounts you "
                "hold.", id);
}

/* The alert {id} of the caller's accounts: 1 with *r (its SQL_ALERT row); else 0 after a
 * 404 (or the problem api_sql set). An id that cannot be one is a 404 without a query. */
static int alert_row(api_req_t *rq, api_resp_t *rs, PGresult **r)
{
    const char *id = rq->ids[0];
    const char *p[2];
    char        shown[ID_SHOWN + 1];

    *r = NULL;
    if (id == NULL || !cwpp_alert_id_valid(id)) {
        cwpp_strlcpy(shown, id != NULL ? id : "", sizeof(shown));
        cwpp_utf8_sanitize(shown);
        not_found(rs, shown);
        return 0;
    }
    p[0] = id;
    p[1] = api_scope(rq);
    if (api_sql(rq, rs, SQL_ALERT, 2, p, r) != 0)
        return 0;
    if (PQntuples(*r) != 1) {
        PQclear(*r);
        *r = NULL;
        not_found(rs, id);
        return 0;
    }
    return 1;
}

/* A json/jsonb text column (never NULL: COALESCE'd to 'null'), or JSON null. */
static json_t *json_col(const PGresult *r, int i, int col)
{
    json_error_t jerr;
    json_t      *v = json_loads(PQgetvalue(r, i, col), JSON_DECODE_ANY, &jerr);

    return v != NULL ? v : json_null();
}

static int alert_show(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {NULL};
    const char *p[1];
    PGresult   *r = NULL, *re = NULL, *lg = NULL;
    json_t     *doc = NULL, *log = NULL, *events = NULL;
    json_error_t jerr;
    int          i, rc = 0;

    if (!api_args_known(rq, rs, known) || !alert_row(rq, rs, &r))
        return 0;
    p[0] = rq->ids[0];
    if (api_sql(rq, rs, SQL_EVENTS, 1, p, &re) != 0 || api_sql(rq, rs, SQL_LOG, 1, p, &lg) != 0)
        goto out;
    doc = json_loads(PQgetvalue(r, 0, 0), 0, &jerr);
    events = api_rows(re);
    log = json_array();
    if (doc == NULL || events == NULL || log == NULL) {
        rc = -1;
        goto out;
    }
    json_object_set_new(doc, "first_seen", json_string(PQgetvalue(r, 0, 1)));
    json_object_set_new(doc, "last_seen", json_string(PQgetvalue(r, 0, 2)));
    json_object_set_new(doc, "handling", json_col(r, 0, 3));
    json_object_set_new(doc, "events", events);
    events = NULL;
    for (i = 0; i < PQntuples(lg); i++)
        json_array_append_new(
            log, json_pack("{s:s, s:s, s:s, s:o, s:o, s:s}", "at", PQgetvalue(lg, i, 0), "actor",
                           PQgetvalue(lg, i, 1), "action", PQgetvalue(lg, i, 2), "before",
                           json_col(lg, i, 3), "after", json_col(lg, i, 4), "remark",
                           PQgetvalue(lg, i, 5)));
    json_object_set_new(doc, "activity", log);
    log = NULL;
    rc = api_json(rs, 200, doc);
    doc = NULL;
out:
    PQclear(r);
    PQclear(re);
    PQclear(lg);
    json_decref(doc);
    json_decref(log);
    json_decref(events);
    return rc;
}

/* ------------------------------------------------------------- rule fields */

/* Appends {"field", "value", "number"} for field of a when the alert has it. */
static int add_field(json_t *list, const cwpp_alert_t *a, const char *field)
{
    char        buf[64];
    const char *v;
    double      num;
    int         is_num;
    json_t     *o;

    if (cwpp_alert_field(a, field, buf, sizeof(buf), &v, &num, &is_num) != CWPP_OK)
        return 0;
    o = json_pack("{s:s, s:s, s:b}", "field", field, "value", v, "number", is_num);
    return o != NULL && json_array_append_new(list, o) == 0 ? 0 : -1;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Every scalar below details as "details.<key>[.<key>...]" (what rules address), in key
 * order, at most FIELDS_MAX of them and DEPTH_MAX levels deep. */
static int add_details(json_t *list, const cwpp_alert_t *a, const json_t *obj, cwpp_buf_t *path,
                       int depth, size_t *count)
{
    const char **keys;
    const char  *key;
    json_t      *v;
    size_t       n = 0, i, len = path->len;
    int          rc = 0;

    if (!json_is_object(obj) || depth > DEPTH_MAX)
        return 0;
    if ((keys = calloc(json_object_size(obj) + 1, sizeof(*keys))) == NULL)
        return -1;
    json_object_foreach((json_t *)obj, key, v)
        keys[n++] = key;
    qsort(keys, n, sizeof(*keys), by_name);
    for (i = 0; i < n && rc == 0 && *count < FIELDS_MAX; i++) {
        v = json_object_get(obj, keys[i]);
        path->len = len;
        if (keys[i][0] == '\0')
            continue; /* no rule can name an empty key */
        if (cwpp_buf_puts(path, len > 0 ? "." : "details.") != 0 ||
            cwpp_buf_puts(path, keys[i]) != 0 || cwpp_buf_cstr(path) != 0) {
            rc = -1;
            break;
        }
        if (json_is_object(v)) {
            rc = add_details(list, a, v, path, depth + 1, count);
        } else if (json_is_string(v) || json_is_number(v) || json_is_boolean(v)) {
            size_t before = json_array_size(list);

            rc = add_field(list, a, (const char *)path->data);
            *count += json_array_size(list) - before;
        }
    }
    path->len = len;
    free(keys);
    return rc;
}

static int alert_fields(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {NULL};
    const char *const       *fields = cwpp_rule_fields();
    PGresult                *r = NULL;
    cwpp_alert_t             a;
    cwpp_buf_t               path = {0};
    json_t                  *list = NULL;
    char                     why[256];
    size_t                   k, count = 0;
    int                      rc = -1;

    memset(&a, 0, sizeof(a));
    if (!api_args_known(rq, rs, known) || !alert_row(rq, rs, &r))
        return 0;
    if (cwpp_alert_from_row(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &a, why,
                            sizeof(why)) != CWPP_OK)
        goto out;
    if ((list = json_array()) == NULL)
        goto out;
    for (k = 0; fields[k] != NULL; k++)
        if (add_field(list, &a, fields[k]) != 0)
            goto out;
    if (add_details(list, &a, a.details, &path, 0, &count) != 0)
        goto out;
    rc = api_json(rs, 200, json_pack("{s:s, s:s, s:s, s:s, s:o}", "alert_id", a.alert_id,
                                     "alert_name", a.name, "account_id", a.account_id,
                                     "asset_id", a.asset.id, "fields", list));
    list = NULL;
out:
    PQclear(r);
    cwpp_alert_clear(&a);
    cwpp_buf_free(&path);
    json_decref(list);
    return rc;
}

const api_route_t api_alerts_routes[] = {
    {"GET", "/api/v1/alerts", alerts_list, 0},
    {"GET", "/api/v1/alerts/{id}", alert_show, 0},
    {"GET", "/api/v1/alerts/{id}/fields", alert_fields, 0},
    {NULL, NULL, NULL, 0},
};
