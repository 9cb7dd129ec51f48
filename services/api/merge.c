/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merge.c: the changes of an event's membership (docs/api/parts/merge.yaml), which the
 * correlator applies: it is the single writer of which alerts an event holds
 * (docs/correlator.md), so these are commands of service "correlator" on
 * <prefix>commands (docs/commands.md), issued as the authenticated user and answered
 * from their CommandResult like every change of the API.
 *
 *   POST /api/v1/events/merge         {event_ids: [2..20 event ids], remark?}
 *        event.merge: two or more open events of one account become one; the survivor
 *        is the oldest, the others become "merged" with merged_into = the survivor.
 *   POST /api/v1/events/{id}/detach   {alert_ids: [1..1000 alert ids], remark?}
 *        event.detach: the alerts leave the event into a new event.
 *
 * Checked here, before any command is issued: the body's fields and their shapes (an
 * event id is "ev-" and 32 hex digits, an alert id "al-" and 32), no id twice, and that
 * the caller sees every event named (another tenant's event is a 404 like a missing
 * one, and nothing is issued). What the correlator decides (one account, all open, the
 * alerts members of the event, the actor's permission) it refuses itself: a 422
 * "refused" with its sentence.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_alert_limits.h"

#define MERGE_MIN  2
#define MERGE_MAX  20
#define DETACH_MAX 1000

/* 1 when id is an event id: "ev-" and 32 lowercase hex digits. */
static int event_id_ok(const char *id)
{
    return id != NULL && strlen(id) == 35 && strncmp(id, "ev-", 3) == 0 &&
           strspn(id + 3, "0123456789abcdef") == 32;
}

/* The optional "remark": 1 when absent or a text within the commands' limit; else 0
 * after a 400. */
static int remark_ok(const api_req_t *rq, api_resp_t *rs)
{
    const json_t *v = json_object_get(rq->body, "remark");

    if (v == NULL)
        return 1;
    if (!json_is_string(v) || json_string_length(v) > CWPP_CMD_MAX_REMARK)
        return api_problem(rs, 400, "bad_request", "\"remark\" must be a text of at most %d "
                           "bytes.", CWPP_CMD_MAX_REMARK), 0;
    return 1;
}

/*
 * The array body[key] of ids: min..max strings, each passing ok, none twice. Returns 1,
 * or 0 after a 400 naming the key (what: "event ids", "alert ids").
 */
static int id_list(const api_req_t *rq, api_resp_t *rs, const char *key, size_t min,
                   size_t max, int (*ok)(const char *), const char *what)
{
    const json_t *arr = json_object_get(rq->body, key);
    size_t        i, j, n = json_array_size(arr);

    if (!json_is_array(arr) || n < min || n > max)
        return api_problem(rs, 400, "bad_request", "\"%s\" must list %zu to %zu %s.", key, min,
                           max, what), 0;
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));

        if (s == NULL || !ok(s))
            return api_problem(rs, 400, "bad_request", "\"%s\" item %zu is not one of the %s "
                               "(\"%s\" and 32 hex digits).", key, i + 1, what,
                               strcmp(key, "event_ids") == 0 ? "ev-" : "al-"), 0;
        for (j = 0; j < i; j++)
            if (strcmp(s, json_string_value(json_array_get(arr, j))) == 0)
                return api_problem(rs, 400, "bad_request", "\"%s\" names %s twice.", key, s), 0;
    }
    return 1;
}

static int alert_id_ok(const char *id)
{
    return cwpp_alert_id_valid(id);
}

/*
 * 1 when the caller sees every event of the JSON array ids; else 0 with rs set: 404
 * naming the first one not seen (missing or another tenant's: the same answer), or the
 * database's problem.
 */
static int events_seen(api_req_t *rq, api_resp_t *rs, const json_t *ids)
{
    char       *text = json_dumps(ids, JSON_COMPACT);
    const char *p[2] = {text, api_scope(rq)};
    PGresult   *r = NULL;
    int         ok;

    if (text == NULL)
        return api_problem(rs, 503, "unavailable", "Out of memory."), 0;
    ok = api_sql(rq, rs, "SELECT i.id FROM json_array_elements_text($1::json) WITH ORDINALITY "
                 "AS i(id, n) WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = i.id "
                 "AND " API_SCOPE("e.account_id", "2") ") ORDER BY i.n LIMIT 1", 2, p, &r) == 0;
    free(text);
    if (!ok)
        return 0;
    if (PQntuples(r) > 0) {
        api_not_found(rs, "event", PQgetvalue(r, 0, 0));
        PQclear(r);
        return 0;
    }
    PQclear(r);
    return 1;
}

/* POST /api/v1/events/merge {event_ids, remark?} */
static int events_merge(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"event_ids", "remark", NULL};
    static const char *const none[] = {NULL};
    json_t *payload, *answer = NULL;

    if (!api_args_known(rq, rs, none) || !api_body_known(rq, rs, known) ||
        !id_list(rq, rs, "event_ids", MERGE_MIN, MERGE_MAX, event_id_ok, "event ids") ||
        !remark_ok(rq, rs) || !events_seen(rq, rs, json_object_get(rq->body, "event_ids")))
        return 0;
    if ((payload = json_deep_copy(rq->body)) == NULL)
        return -1;
    if (!api_command(rq, rs, "correlator", "event.merge", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

/* POST /api/v1/events/{id}/detach {alert_ids, remark?} */
static int event_detach(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"alert_ids", "remark", NULL};
    static const char *const none[] = {NULL};
    const char *id = rq->ids[0];
    json_t     *payload, *answer = NULL, *one;

    if (!api_args_known(rq, rs, none) || !api_body_known(rq, rs, known) ||
        !id_list(rq, rs, "alert_ids", 1, DETACH_MAX, alert_id_ok, "alert ids") ||
        !remark_ok(rq, rs))
        return 0;
    if (!event_id_ok(id))
        return api_not_found(rs, "event", strlen(id) <= 128 ? id : "(too long)");
    if ((one = json_pack("[s]", id)) == NULL)
        return -1;
    if (!events_seen(rq, rs, one)) {
        json_decref(one);
        return 0;
    }
    json_decref(one);
    if ((payload = json_deep_copy(rq->body)) == NULL)
        return -1;
    json_object_set_new(payload, "event_id", json_string(id));
    if (!api_command(rq, rs, "correlator", "event.detach", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

const api_route_t api_merge_routes[] = {
    {"POST", "/api/v1/events/merge", events_merge, API_CHANGE},
    {"POST", "/api/v1/events/{id}/detach", event_detach, API_CHANGE},
    {NULL, NULL, NULL, 0},
};
