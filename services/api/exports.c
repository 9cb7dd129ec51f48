/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exports.c: Excel exports of security events (docs/exporter.md; docs/api/parts/
 * exports.yaml).
 *
 *   POST /api/v1/exports             checks the filters and issues the exporter's
 *                                    export.create command as the caller; the answer
 *                                    names the job (job id = command id)
 *   GET  /api/v1/exports             the caller's jobs, newest first (all=yes: every job
 *                                    the caller may see)
 *   GET  /api/v1/exports/{id}        one job: its state, figures, filters
 *   GET  /api/v1/exports/{id}/file   the workbook (.xlsx bytes)
 *
 * A workbook holds the events of the accounts export_jobs.accounts names (the exporter
 * records them with the job), so a caller sees a job, and may download it, only when it
 * holds every one of those accounts; admins hold all. Any other job is "not found",
 * whoever made it. An export that the exporter refused stored no workbook: it shows as a
 * failed job to its own actor only (commands_applied). A job still running is in neither
 * table yet: its actor sees it "running" with the percent of the exporter's latest
 * progress record, as long as this replica saw it (GET /api/v1/commands/{id} likewise).
 */
#include "api.h"
#include "api_internal.h" /* api_cmd_seen: a running job's progress */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert_limits.h"
#include "cwpp_correlate.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define LIST_DEFAULT 50
#define LIST_MAX     500
#define JOB_ID_MAX   64   /* the exporter's command ids (they name the workbook file) */
#define IDS_MAX      1000 /* event ids one export may name (an export holds 1,000 events) */
#define XLSX_TYPE    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

/* "j may be seen by the caller": $1 is the caller's scope (NULL: an admin, every job). A
 * job from before the accounts were recorded (NULL) is shown to admins only. */
#define JOB_SCOPE "($1::text[] IS NULL OR (j.accounts IS NOT NULL AND j.accounts <@ $1::text[]))"

#define JOB_COLS                                                                               \
    "j.job_id, j.actor, j.state, CASE WHEN j.state = 'done' THEN 100 ELSE 0 END AS progress, " \
    "j.events, j.message, " TS("j.created_at") " AS created_at, "                              \
    TS("j.finished_at") " AS finished_at, j.filters, to_jsonb(j.accounts) AS accounts, "       \
    "f.file_name, COALESCE(octet_length(f.bytes), 0) AS bytes, f.sha256"

/* $1 scope, $2 the caller, $3 all jobs ("yes") or only the caller's; $4 $5 the cursor
 * (created_at in microseconds since 1970, job id); $6 the limit */
static const char SQL_LIST[] =
    "SELECT " JOB_COLS ", (extract(epoch FROM j.created_at) * 1000000)::bigint AS k_us "
    "FROM export_jobs j LEFT JOIN export_files f USING (job_id) "
    "WHERE " JOB_SCOPE " AND ($3::text = 'yes' OR j.actor = $2::text) "
    "AND ($4::bigint IS NULL OR j.created_at < timestamptz 'epoch' + $4::bigint * "
    "interval '1 microsecond' OR (j.created_at = timestamptz 'epoch' + $4::bigint * "
    "interval '1 microsecond' AND j.job_id > $5::text)) "
    "ORDER BY j.created_at DESC, j.job_id LIMIT $6::int";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM export_jobs j WHERE " JOB_SCOPE
    " AND ($3::text = 'yes' OR j.actor = $2::text)";
/* $1 scope, $2 the job id */
static const char SQL_JOB[] =
    "SELECT " JOB_COLS " FROM export_jobs j LEFT JOIN export_files f USING (job_id) "
    "WHERE " JOB_SCOPE " AND j.job_id = $2";
/* an export the exporter refused: only its actor ($2; or an admin, $3 'yes') sees it */
static const char SQL_REFUSED[] =
    "SELECT c.command_id AS job_id, c.actor, 'failed' AS state, 0 AS progress, 0 AS events, "
    "c.message, " TS("c.applied_at") " AS created_at, " TS("c.applied_at") " AS finished_at "
    "FROM commands_applied c WHERE c.command_id = $1 AND c.service = 'exporter' "
    "AND c.type = 'export.create' AND c.status = 'error' "
    "AND (c.actor = $2 OR $3::text = 'yes') "
    "AND NOT EXISTS (SELECT 1 FROM export_jobs j WHERE j.job_id = c.command_id)";
/* $1 scope, $2 the job id: the workbook */
static const char SQL_FILE[] =
    "SELECT f.file_name, f.bytes, f.sha256 FROM export_jobs j JOIN export_files f "
    "USING (job_id) WHERE " JOB_SCOPE " AND j.job_id = $2";

/* 1 when id may be a job id (1 to JOB_ID_MAX printable ASCII bytes, no '/'); else 0 after
 * the 404 any unknown job gets. */
static int job_id_ok(api_resp_t *rs, const char *id)
{
    size_t i, n = id != NULL ? strlen(id) : 0;

    for (i = 0; i < n && n <= JOB_ID_MAX; i++)
        if (id[i] <= ' ' || id[i] > '~' || id[i] == '/')
            break;
    if (n == 0 || n > JOB_ID_MAX || i < n) {
        api_not_found(rs, "export job", "(not a job id)");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ create */

/* A list body field of 1..max strings (each one of ok[0..nok), or with nok 0 any text of
 * 1 to CWPP_CMD_MAX_EVENT_ID bytes) copied into payload; 1, or 0 after a 400. */
static int list_field(const json_t *body, api_resp_t *rs, json_t *payload, const char *key,
                      const char *const *ok, size_t nok, size_t max, const char *what)
{
    const json_t *a = json_object_get(body, key);
    char          names[160];
    size_t        i, k;

    if (a == NULL || json_is_null(a))
        return 1;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > max) {
        api_problem(rs, 400, "bad_filter", "\"%s\" must be a list of 1 to %zu %ss.", key, max,
                    what);
        return 0;
    }
    for (i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        int         found = 0;

        if (nok == 0)
            found = s != NULL && s[0] != '\0' &&
                    json_string_length(json_array_get(a, i)) <= CWPP_CMD_MAX_EVENT_ID &&
                    strlen(s) == json_string_length(json_array_get(a, i));
        for (k = 0; s != NULL && k < nok; k++)
            found |= strcmp(s, ok[k]) == 0;
        if (!found) {
            if (nok == 0)
                api_problem(rs, 400, "bad_filter", "Event id %zu of \"%s\" is not a text of 1 "
                            "to %d bytes.", i + 1, key, CWPP_CMD_MAX_EVENT_ID);
            else
                api_problem(rs, 400, "bad_filter", "\"%.40s\" is not a %s (%s).",
                            s != NULL ? s : "(not a text)", what,
                            cwpp_names_join(names, sizeof(names), ok, nok, ", ", ", "));
            return 0;
        }
    }
    json_object_set_new(payload, key, json_deep_copy(a));
    return 1;
}

/* A time body field (RFC 3339, or a date meaning 00:00 UTC) as payload[ms_key]. */
static int time_field(const json_t *body, api_resp_t *rs, json_t *payload, const char *key,
                      const char *ms_key, int *has, int64_t *ms)
{
    const json_t *v = json_object_get(body, key);
    const char   *s = json_string_value(v);
    char          date[40];

    *has = 0;
    if (v == NULL || json_is_null(v))
        return 1;
    if (s == NULL ||
        (!(strlen(s) == 10 && s[4] == '-' && s[7] == '-' &&
           snprintf(date, sizeof(date), "%sT00:00:00Z", s) > 0 &&
           cwpp_parse_time_ms(date, 0, ms) == 0) &&
         (strlen(s) > 64 || cwpp_parse_time_ms(s, 0, ms) != 0)) ||
        *ms < 0) {
        api_problem(rs, 400, "bad_filter", "\"%s\" must be an RFC 3339 time "
                    "(2026-05-01T08:00:00Z) or a date (2026-05-01).", key);
        return 0;
    }
    json_object_set_new(payload, ms_key, json_integer(*ms));
    *has = 1;
    return 1;
}

static int export_create(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"levels", "statuses", "since", "until", "ids", NULL};
    static const char *const levels[] = {"critical", "high", "medium", "low"};
    const char              *statuses[CWPP_EVS__COUNT];
    json_t                  *payload, *answer = NULL;
    int64_t                  since = 0, until = 0;
    int                      has_since, has_until, i;
    char                     loc[128] = "";
    const char              *job;

    if (!api_body_known(rq, rs, known))
        return 0;
    for (i = 0; i < CWPP_EVS__COUNT; i++)
        statuses[i] = cwpp_event_status_name((cwpp_event_status_t)i);
    if ((payload = json_object()) == NULL)
        return -1;
    if (!list_field(rq->body, rs, payload, "levels", levels, 4, 4, "level") ||
        !list_field(rq->body, rs, payload, "statuses", statuses, CWPP_EVS__COUNT,
                    CWPP_EVS__COUNT, "status") ||
        !list_field(rq->body, rs, payload, "ids", NULL, 0, IDS_MAX, "event id") ||
        !time_field(rq->body, rs, payload, "since", "since_ms", &has_since, &since) ||
        !time_field(rq->body, rs, payload, "until", "until_ms", &has_until, &until)) {
        json_decref(payload);
        return 0;
    }
    if (has_since && has_until && until < since) {
        json_decref(payload);
        return api_problem(rs, 400, "bad_filter", "\"until\" is before \"since\": nothing "
                           "can match.");
    }
    if (!api_command(rq, rs, "exporter", "export.create", payload, &answer))
        return 0; /* 202 pending (GET /api/v1/commands/{id}) or 503, set by api_command */
    job = json_string_value(json_object_get(json_object_get(answer, "result"), "job_id"));
    if (job != NULL && strlen(job) <= JOB_ID_MAX)
        snprintf(loc, sizeof(loc), "/api/v1/exports/%s", job);
    api_answer(rs, answer);
    if (loc[0] != '\0' && rs->status == 200)
        api_header(rs, "Location", loc);
    return 0;
}

/* ------------------------------------------------------------------ reading */

static int exports_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"limit", "cursor", "all", NULL};
    const char *p[6], *all = api_arg(rq, "all");
    char        lim[16], key_us[24], *next = NULL;
    json_t     *cursor = NULL, *arr = NULL, *state = NULL;
    PGresult   *rl = NULL, *rcount = NULL;
    int         limit, n, i, rc = 0;

    if (!api_args_known(rq, rs, known) || !api_limit(rq, rs, LIST_DEFAULT, LIST_MAX, &limit))
        return 0;
    if (all != NULL && strcmp(all, "yes") != 0 && strcmp(all, "no") != 0)
        return api_problem(rs, 400, "bad_filter", "\"all\" must be yes or no.");
    if (!api_cursor_take(rq, rs, &cursor))
        return 0;
    memset(p, 0, sizeof(p));
    if (cursor != NULL) {
        json_t *t = json_array_get(cursor, 0), *id = json_array_get(cursor, 1);

        if (!json_is_array(cursor) || json_array_size(cursor) != 2 || !json_is_integer(t) ||
            !json_is_string(id) || json_string_length(id) > JOB_ID_MAX) {
            api_problem(rs, 400, "bad_cursor", "The cursor does not belong to this list.");
            goto out;
        }
        snprintf(key_us, sizeof(key_us), "%" JSON_INTEGER_FORMAT, json_integer_value(t));
        p[3] = key_us;
        p[4] = json_string_value(id);
    }
    p[0] = api_scope(rq);
    p[1] = rq->user->name;
    p[2] = all != NULL ? all : "no";
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    p[5] = lim;
    if (api_sql(rq, rs, SQL_COUNT, 3, p, &rcount) != 0 ||
        api_sql(rq, rs, SQL_LIST, 6, p, &rl) != 0)
        goto out;
    if ((arr = json_array()) == NULL) {
        rc = -1;
        goto out;
    }
    n = PQntuples(rl);
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
        int col = PQfnumber(rl, "k_us");

        state = json_pack("[I, s]", (json_int_t)strtoll(PQgetvalue(rl, limit - 1, col), NULL, 10),
                          PQgetvalue(rl, limit - 1, 0));
        if (state == NULL || (next = api_cursor_make(rq, state)) == NULL) {
            rc = -1;
            goto out;
        }
    }
    rc = api_json(rs, 200, json_pack("{s:o, s:I, s:s?}", "exports", arr, "total",
                                     (json_int_t)strtoll(PQgetvalue(rcount, 0, 0), NULL, 10),
                                     "next_cursor", next));
    arr = NULL;
out:
    PQclear(rl);
    PQclear(rcount);
    json_decref(arr);
    json_decref(cursor);
    json_decref(state);
    free(next);
    return rc;
}

/* The text at key of o, or "" (never NULL). */
static const char *text_of(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    return v != NULL ? v : "";
}

/* A job not stored yet: "running" with its progress when this replica saw a progress
 * record of the caller's (or, for an admin, anyone's) export.create id; else a 404. */
static int running(api_req_t *rq, api_resp_t *rs, const char *id)
{
    json_t       *seen = api_cmd_seen(rq->api->cmd, id);
    const json_t *pct = json_object_get(json_object_get(seen, "result"), "percent");
    int           rc;

    if (seen == NULL || strcmp(text_of(seen, "service"), "exporter") != 0 ||
        strcmp(text_of(seen, "type"), "export.create") != 0 ||
        strcmp(text_of(seen, "status"), "progress") != 0 ||
        (strcmp(text_of(seen, "actor"), rq->user->name) != 0 && !rq->user->is_admin)) {
        json_decref(seen);
        return api_not_found(rs, "export job", id);
    }
    rc = api_json(rs, 200, json_pack("{s:s, s:s, s:s, s:I, s:s}", "job_id", id, "actor",
                                     text_of(seen, "actor"), "state", "running", "progress",
                                     json_is_integer(pct) ? json_integer_value(pct) : 0,
                                     "message", text_of(seen, "message")));
    json_decref(seen);
    return rc;
}

static int export_show(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {NULL};
    const char *id = rq->ids[0], *p[3];
    PGresult   *r = NULL;
    int         rc = 0;

    if (!api_args_known(rq, rs, known) || !job_id_ok(rs, id))
        return 0;
    p[0] = api_scope(rq);
    p[1] = id;
    if (api_sql(rq, rs, SQL_JOB, 2, p, &r) != 0)
        return 0;
    if (PQntuples(r) == 0) {
        PQclear(r);
        p[0] = id;
        p[1] = rq->user->name;
        p[2] = rq->user->is_admin ? "yes" : "no";
        if (api_sql(rq, rs, SQL_REFUSED, 3, p, &r) != 0)
            return 0;
    }
    if (PQntuples(r) == 1) {
        json_t *doc = api_row(r, 0);

        rc = doc != NULL ? api_json(rs, 200, doc) : -1;
    } else {
        rc = running(rq, rs, id);
    }
    PQclear(r);
    return rc;
}

/* The file name for Content-Disposition: the stored one, with anything but letters,
 * digits, '.', '-' and '_' replaced. */
static void disposition(const char *name, char *out, size_t size)
{
    char   clean[96];
    size_t i;

    for (i = 0; name[i] != '\0' && i + 1 < sizeof(clean); i++)
        clean[i] = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                           (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
                           name[i] == '-' || name[i] == '_'
                       ? name[i]
                       : '_';
    clean[i] = '\0';
    snprintf(out, size, "attachment; filename=\"%s\"", i > 0 ? clean : "export.xlsx");
}

static int export_file(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {NULL};
    const char    *id = rq->ids[0], *p[2];
    PGresult      *r = NULL;
    unsigned char *bytes;
    size_t         len;
    char           cd[160], etag[80];

    if (!api_args_known(rq, rs, known) || !job_id_ok(rs, id))
        return 0;
    p[0] = api_scope(rq);
    p[1] = id;
    if (api_sql(rq, rs, SQL_FILE, 2, p, &r) != 0)
        return 0;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return api_not_found(rs, "export job", id);
    }
    /* text results: the bytea comes hex-escaped */
    bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &len);
    if (bytes == NULL || (rs->raw = malloc(len > 0 ? len : 1)) == NULL) {
        PQfreemem(bytes);
        PQclear(r);
        return -1;
    }
    memcpy(rs->raw, bytes, len);
    PQfreemem(bytes);
    rs->raw_len = len;
    rs->ctype = XLSX_TYPE;
    rs->status = 200;
    disposition(PQgetvalue(r, 0, 0), cd, sizeof(cd));
    api_header(rs, "Content-Disposition", cd);
    snprintf(etag, sizeof(etag), "\"%.64s\"", PQgetvalue(r, 0, 2));
    api_header(rs, "ETag", etag);
    PQclear(r);
    return 0;
}

const api_route_t api_exports_routes[] = {
    {"POST", "/api/v1/exports", export_create, API_CHANGE},
    {"GET", "/api/v1/exports", exports_list, 0},
    {"GET", "/api/v1/exports/{id}", export_show, 0},
    {"GET", "/api/v1/exports/{id}/file", export_file, 0},
    {NULL, NULL, NULL, 0},
};
