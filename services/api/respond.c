/* SPDX-License-Identifier: Apache-2.0 */
/*
 * respond.c: the analysts' decisions on events and what came of them (docs/api/parts/
 * respond.yaml). Every change is a responder command (docs/commands.md) issued as the
 * authenticated user and answered from its CommandResult; the reads are the activity log,
 * the handling policies with their tasks and the recommendations, scoped to the caller's
 * accounts.
 *
 *   POST /api/v1/events/{id}/status|owner|level|remark|respond|playbook
 *        the command's payload without event_id (and never an actor: an unknown field);
 *        If-Match: the event's version (412 when it moved: checked here before the
 *        command is issued, and again by the responder, which holds the event's lock)
 *   POST /api/v1/events/_bulk/status|owner|level   {ids: [...] (1-500), ...}
 *        one command per event, answered item by item; an event the caller does not see
 *        is a not_found item and nothing is issued for it; once one goes unanswered in
 *        time (or cannot be sent), the rest are not sent (unavailable items)
 *   GET  /api/v1/events/{id}/log | policies | recommendations
 *   GET  /api/v1/policies, /api/v1/tasks        across events: filters, keyset paging
 *   POST /api/v1/policies/{id}/cancel           policies.cancel: the lease ends now
 *
 * An event outside the caller's accounts is a 404 whatever the route, before any command
 * is issued (the responder checks the actor's permission again when it applies it).
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_respond.h"

#define BULK_MAX 500
#define ID_MAX   128

/* A timestamptz as RFC 3339 UTC text (second precision), as cwppctl printed it. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ------------------------------------------------------------------ helpers */

/* 1 when id is an event id: "ev-" and 32 lowercase hex digits. */
static int event_id_ok(const char *id)
{
    return id != NULL && strlen(id) == 35 && strncmp(id, "ev-", 3) == 0 &&
           strspn(id + 3, "0123456789abcdef") == 32;
}

/* 1 when id may name a policy or a task (bounded, no '/'): anything else is not found. */
static int object_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    return n > 0 && n <= ID_MAX && strchr(id, '/') == NULL;
}

/*
 * The event id (scoped): 1 with *version (may be NULL) when the caller sees it; else 0
 * with rs set (404, or the database's problem).
 */
static int event_seen(api_req_t *rq, api_resp_t *rs, const char *id, json_int_t *version)
{
    const char *p[2] = {api_scope(rq), id};
    PGresult   *r = NULL;
    int         found;

    if (!event_id_ok(id)) {
        api_not_found(rs, "event", id != NULL && strlen(id) <= ID_MAX ? id : "(too long)");
        return 0;
    }
    if (api_sql(rq, rs, "SELECT e.version FROM events e WHERE " API_SCOPE("e.account_id", "1")
                " AND e.event_id = $2", 2, p, &r) != 0)
        return 0;
    found = PQntuples(r) == 1;
    if (found && version != NULL)
        *version = (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!found)
        api_not_found(rs, "event", id);
    return found;
}

/*
 * The If-Match header as a version: 1 with *want (-1: none, or "*"); 0 after a 400.
 * Accepted: 7, "7", W/"7" (the event's `version`, as GET /api/v1/events/{id} shows it).
 */
static int if_match(const api_req_t *rq, api_resp_t *rs, json_int_t *want)
{
    const char *h = api_req_header(rq, "If-Match");
    char        buf[32], *end;
    size_t      n;
    long long   v;

    *want = -1;
    if (h == NULL)
        return 1;
    while (*h == ' ')
        h++;
    if (strcmp(h, "*") == 0)
        return 1;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf) || strspn(h, "0123456789") < n)
        goto bad;
    memcpy(buf, h, n);
    buf[n] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        goto bad;
    *want = (json_int_t)v;
    return 1;
bad:
    api_problem(rs, 400, "bad_request", "If-Match must be the event's version (a whole "
                "number, as GET /api/v1/events/{id} shows it) or *.");
    return 0;
}

/* 1 when the body's key is absent or a string; else 0 after a 400 naming it. */
static int opt_string(const api_req_t *rq, api_resp_t *rs, const char *key, int required)
{
    const json_t *v = json_object_get(rq->body, key);

    if (v == NULL && !required)
        return 1;
    if (json_is_string(v))
        return 1;
    api_problem(rs, 400, "bad_request", "\"%s\" %s a text.", key,
                v == NULL ? "is missing: it must be" : "must be");
    return 0;
}

/* s cut to fit buf (size bytes) at a character boundary: for echoing a caller's value in
 * a problem's detail, which must stay valid UTF-8. Returns buf. */
static const char *clip(char *buf, size_t size, const char *s)
{
    snprintf(buf, size, "%s", s != NULL ? s : "");
    cwpp_utf8_sanitize(buf);
    return buf;
}

/* 1 when s is one of the NULL-terminated words. */
static int in_list(const char *s, const char *const *words)
{
    size_t i;

    for (i = 0; words[i] != NULL; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    return 0;
}

/* 1 when s is one of the NULL-terminated words; else 0 after a 400 naming key and them. */
static int one_of(api_resp_t *rs, const char *key, const char *s, const char *const *words,
                  const char *list)
{
    size_t i;
    char   cut[41];

    for (i = 0; words[i] != NULL; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    api_problem(rs, 400, "bad_request", "\"%s\" must be %s, not \"%s\".", key, list,
                clip(cut, sizeof(cut), s));
    return 0;
}

static const char *const STATUSES[] = {"unhandled", "handling", "handled", NULL};
static const char *const LEVELS[] = {"critical", "high", "medium", "low", NULL};

/* Checks a simple change's own field (status, owner, level) in rq's body; 1 ok. */
static int check_field(const api_req_t *rq, api_resp_t *rs, const char *verb)
{
    const char *v;
    char        cut[41];

    if (!opt_string(rq, rs, verb, 1) || !opt_string(rq, rs, "remark", 0))
        return 0;
    v = json_string_value(json_object_get(rq->body, verb));
    /* the responder's own sentences: cwppctl users see the same whichever refuses */
    if (strcmp(verb, "status") == 0 && !in_list(v, STATUSES))
        return api_problem(rs, 400, "bad_request", "\"%s\" is not a status an analyst can "
                           "set (unhandled, handling or handled).", clip(cut, sizeof(cut), v)), 0;
    if (strcmp(verb, "level") == 0 && !in_list(v, LEVELS))
        return api_problem(rs, 400, "bad_request", "\"%s\" is not a level (critical, high, "
                           "medium or low).", clip(cut, sizeof(cut), v)), 0;
    if (strcmp(verb, "owner") == 0 && v[0] == '\0')
        return api_problem(rs, 400, "bad_request", "\"owner\" is empty: name a user."), 0;
    return 1;
}

/*
 * The answer of a change command into rs: a refusal because the event moved is a 412;
 * else api_answer's 200 or 422. answer stolen.
 */
static int change_answer(api_resp_t *rs, json_t *answer)
{
    const json_t *res = json_object_get(answer, "result");
    const char   *st = json_string_value(json_object_get(answer, "status"));
    const char   *cf = json_string_value(json_object_get(res, "conflict"));

    if (st != NULL && strcmp(st, "error") == 0 && cf != NULL && strcmp(cf, "version") == 0) {
        const char *eid = json_string_value(json_object_get(res, "event_id"));

        api_problem(rs, 412, "precondition_failed", "Event %.100s changed meanwhile: it is at "
                    "version %lld now; nothing was changed (read it again).",
                    eid != NULL ? eid : "?",
                    (long long)json_integer_value(json_object_get(res, "version")));
        json_decref(answer);
        return 0;
    }
    return api_answer(rs, answer);
}

/* ---------------------------------------------------------- one event changes */

/* The verb of a change route: the last segment of the path. */
static const char *verb_of(const api_req_t *rq)
{
    const char *s = strrchr(rq->path, '/');

    return s != NULL ? s + 1 : "";
}

static int bulk_change(api_req_t *rq, api_resp_t *rs);

static int event_change(api_req_t *rq, api_resp_t *rs)
{
    static const char *const k_status[] = {"status", "remark", NULL};
    static const char *const k_owner[] = {"owner", "remark", NULL};
    static const char *const k_level[] = {"level", "remark", NULL};
    static const char *const k_remark[] = {"remark", NULL};
    static const char *const k_respond[] = {"entities", "status", "validity_s", "account",
                                            "remark", NULL};
    static const char *const k_playbook[] = {"entity", "playbook", "validity_s", "account",
                                             "remark", NULL};
    static const char *const none[] = {NULL};
    const char *verb = verb_of(rq), *id = rq->ids[0];
    const char *const *known;
    json_int_t  version = 0, want;
    json_t     *payload, *answer = NULL;
    const json_t *v;
    char        type[32];

    if (id != NULL && strcmp(id, "_bulk") == 0)
        return bulk_change(rq, rs);
    known = strcmp(verb, "status") == 0    ? k_status
            : strcmp(verb, "owner") == 0   ? k_owner
            : strcmp(verb, "level") == 0   ? k_level
            : strcmp(verb, "remark") == 0  ? k_remark
            : strcmp(verb, "respond") == 0 ? k_respond
                                           : k_playbook;
    if (!api_args_known(rq, rs, none) || !api_body_known(rq, rs, known))
        return 0;
    /* the values, before anything is looked up */
    if (known == k_status || known == k_owner || known == k_level) {
        if (!check_field(rq, rs, verb))
            return 0;
    } else if (known == k_remark) {
        if (!opt_string(rq, rs, "remark", 1))
            return 0;
    } else {
        if (!opt_string(rq, rs, "remark", 0) || !opt_string(rq, rs, "account", 0))
            return 0;
        v = json_object_get(rq->body, "validity_s");
        if (v != NULL && !json_is_integer(v))
            return api_problem(rs, 400, "bad_request", "\"validity_s\" must be a whole number "
                               "of seconds.");
        if (known == k_respond) {
            v = json_object_get(rq->body, "entities");
            if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 50)
                return api_problem(rs, 400, "bad_request", "\"entities\" must list 1 to 50 "
                                   "entities (\"TYPE:VALUE\", or {\"entity\", \"validity_s\", "
                                   "\"account\"}).");
            if (!opt_string(rq, rs, "status", 1))
                return 0;
            if (!in_list(json_string_value(json_object_get(rq->body, "status")), STATUSES + 1))
                return api_problem(rs, 400, "bad_request", "Choose the status the event takes "
                                   "when the handling succeeds: handling or handled "
                                   "(\"status\").");
        } else if (!opt_string(rq, rs, "entity", 1) || !opt_string(rq, rs, "playbook", 0)) {
            return 0;
        }
    }
    if (!if_match(rq, rs, &want) || !event_seen(rq, rs, id, &version))
        return 0;
    if (want >= 0 && want != version)
        return api_problem(rs, 412, "precondition_failed", "Event %s is at version %lld, not "
                           "%lld: it changed meanwhile; nothing was changed (read it again).",
                           id, (long long)version, (long long)want);
    if ((payload = json_deep_copy(rq->body)) == NULL)
        return -1;
    json_object_set_new(payload, "event_id", json_string(id));
    if (want >= 0) /* the responder checks it again under the event's lock */
        json_object_set_new(payload, "version", json_integer(want));
    snprintf(type, sizeof(type), "event.%s", verb);
    if (!api_command(rq, rs, "responder", type, payload, &answer))
        return 0;
    return change_answer(rs, answer);
}

/* POST /api/v1/events/_bulk/status|owner|level {ids, <field>, remark} */
static int bulk_change(api_req_t *rq, api_resp_t *rs)
{
    static const char *const k_status[] = {"ids", "status", "remark", NULL};
    static const char *const k_owner[] = {"ids", "owner", "remark", NULL};
    static const char *const k_level[] = {"ids", "level", "remark", NULL};
    static const char *const none[] = {NULL};
    const char   *verb = verb_of(rq);
    const json_t *ids = json_object_get(rq->body, "ids");
    json_t       *items = NULL, *seen = NULL, *arr = NULL, *doc;
    cwpp_buf_t    lit;
    PGresult     *r = NULL;
    const char   *p[2];
    char          type[32];
    size_t        i, j, nok = 0;
    int           rc = -1;
    char          cut[101];
    const char   *stalled = NULL; /* the first item the responder did not answer in time */

    if (strcmp(verb, "status") != 0 && strcmp(verb, "owner") != 0 && strcmp(verb, "level") != 0)
        return api_problem(rs, 404, "not_found", "There is no bulk change \"%s\" (status, "
                           "owner, level).", clip(cut, sizeof(cut), verb));
    if (!api_args_known(rq, rs, none) ||
        !api_body_known(rq, rs, strcmp(verb, "status") == 0  ? k_status
                                : strcmp(verb, "owner") == 0 ? k_owner
                                                             : k_level) ||
        !check_field(rq, rs, verb))
        return 0;
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > BULK_MAX)
        return api_problem(rs, 400, "bad_request", "\"ids\" must list 1 to %d event ids.",
                           BULK_MAX);
    for (i = 0; i < json_array_size(ids); i++) {
        const char *a = json_string_value(json_array_get(ids, i));

        if (a == NULL)
            return api_problem(rs, 400, "bad_request", "\"ids\" item %zu is not a text.", i + 1);
        for (j = 0; j < i; j++)
            if (strcmp(a, json_string_value(json_array_get(ids, j))) == 0)
                return api_problem(rs, 400, "bad_request", "\"ids\" names %s twice.",
                                   clip(cut, sizeof(cut), a));
    }
    /* which of them the caller sees, in one query (ids are passed as a JSON array) */
    memset(&lit, 0, sizeof(lit));
    if ((arr = json_array()) == NULL)
        return -1;
    for (i = 0; i < json_array_size(ids); i++)
        if (event_id_ok(json_string_value(json_array_get(ids, i))))
            json_array_append(arr, json_array_get(ids, i));
    {
        char *a = json_dumps(arr, JSON_COMPACT);

        json_decref(arr);
        if (a == NULL)
            return -1;
        p[0] = api_scope(rq);
        p[1] = a;
        rc = api_sql(rq, rs, "SELECT e.event_id FROM events e WHERE "
                     API_SCOPE("e.account_id", "1") " AND e.event_id IN (SELECT "
                     "jsonb_array_elements_text($2::jsonb))", 2, p, &r);
        free(a);
        if (rc != 0)
            return 0;
    }
    rc = -1;
    if ((seen = json_object()) == NULL || (items = json_array()) == NULL)
        goto out;
    for (i = 0; i < (size_t)PQntuples(r); i++)
        json_object_set_new(seen, PQgetvalue(r, (int)i, 0), json_true());
    snprintf(type, sizeof(type), "event.%s", verb);
    for (i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        api_resp_t  one;
        json_t     *payload, *answer = NULL, *item;

        memset(&one, 0, sizeof(one));
        if (json_object_get(seen, id) == NULL) {
            api_not_found(&one, "event", strlen(id) <= ID_MAX ? id : "(too long)");
        } else if (stalled != NULL) {
            /* each would wait as long again: the caller sends the rest once it answers */
            api_problem(&one, 503, "unavailable", "Not sent: the responder did not answer "
                        "the change of %s in time; send this one again later.", stalled);
        } else {
            payload = json_pack("{s:s, s:O}", "event_id", id, verb,
                                json_object_get(rq->body, verb));
            if (payload != NULL && json_object_get(rq->body, "remark") != NULL)
                json_object_set(payload, "remark", json_object_get(rq->body, "remark"));
            if (payload == NULL)
                goto out;
            if (api_command(rq, &one, "responder", type, payload, &answer))
                api_answer(&one, answer);
            else if (one.status == 202 || one.status >= 500)
                stalled = id;
        }
        if (one.status == 200) {
            item = json_pack("{s:s, s:s, s:O?, s:O?, s:O?}", "id", id, "status", "ok",
                             "command_id", json_object_get(one.doc, "command_id"), "message",
                             json_object_get(one.doc, "message"), "result",
                             json_object_get(one.doc, "result"));
            nok++;
        } else if (one.status == 202) { /* no answer in time: GET /api/v1/commands/{id} */
            item = json_pack("{s:s, s:s, s:O?}", "id", id, "status", "pending", "command_id",
                             json_object_get(one.doc, "command_id"));
        } else {
            item = json_pack("{s:s, s:s, s:O?}", "id", id, "status", "error", "problem",
                             one.doc);
        }
        api_resp_clear(&one);
        if (item == NULL || json_array_append_new(items, item) != 0)
            goto out;
    }
    doc = json_pack("{s:o, s:I, s:I}", "items", items, "ok", (json_int_t)nok, "failed",
                    (json_int_t)(json_array_size(ids) - nok));
    items = NULL;
    if (doc == NULL)
        goto out;
    rc = api_json(rs, 200, doc);
out:
    PQclear(r);
    json_decref(seen);
    json_decref(items);
    return rc;
}

/* ------------------------------------------------------------------- reads */

static const char SQL_LOG[] =
    "SELECT log_id, " TS("at") " AS at, actor, action, object_type, object_id, before, after, "
    "remark, command_id FROM activity_log WHERE event_id = $1 ORDER BY at, log_id";

/* GET /api/v1/events/{id}/log: {event_id, log: [...]} (cwppctl events log --json) */
static int event_log(api_req_t *rq, api_resp_t *rs)
{
    static const char *const none[] = {NULL};
    const char *p[1] = {rq->ids[0]};
    PGresult   *r = NULL;
    json_t     *rows;

    if (!api_args_known(rq, rs, none) || !event_seen(rq, rs, rq->ids[0], NULL))
        return 0;
    if (api_sql(rq, rs, SQL_LOG, 1, p, &r) != 0)
        return 0;
    rows = api_rows(r);
    PQclear(r);
    if (rows == NULL)
        return -1;
    return api_json(rs, 200, json_pack("{s:s, s:o}", "event_id", rq->ids[0], "log", rows));
}

#define POLICY_COLS                                                                           \
    "p.policy_id, p.event_id, p.account_id, p.kind, p.name, p.entity_type, p.entity_value, "  \
    "p.asset_id, p.dest_account, p.state, p.target_status, p.reason, " TS("p.valid_until")    \
    " AS valid_until, p.created_by, " TS("p.created_at") " AS created_at"
#define TASK_COLS                                                                             \
    "t.task_id, t.policy_id, t.event_id, t.account_id, t.kind, t.step, t.action, t.asset_id, " \
    "t.dest_account, t.entity_type, t.entity_value, t.state, t.attempt, t.max_attempts, "     \
    "t.reason, t.result, " TS("t.created_at") " AS created_at, " TS("t.finished_at")          \
    " AS finished_at"

/* Adds to each policy of pols its tasks (rows of tasks with its policy_id). */
static void attach_tasks(json_t *pols, const json_t *tasks)
{
    size_t i, j;

    for (i = 0; i < json_array_size(pols); i++) {
        json_t     *pol = json_array_get(pols, i), *mine = json_array();
        const char *pid = json_string_value(json_object_get(pol, "policy_id"));

        for (j = 0; mine != NULL && j < json_array_size(tasks); j++) {
            json_t     *tk = json_array_get(tasks, j);
            const char *tp = json_string_value(json_object_get(tk, "policy_id"));

            if (tp != NULL && pid != NULL && strcmp(tp, pid) == 0)
                json_array_append(mine, tk);
        }
        json_object_set_new(pol, "tasks", mine != NULL ? mine : json_array());
    }
}

/* GET /api/v1/events/{id}/policies: {event_id, policies: [{..., tasks: [...]}]} */
static int event_policies(api_req_t *rq, api_resp_t *rs)
{
    static const char *const none[] = {NULL};
    const char *p[1] = {rq->ids[0]};
    PGresult   *rp = NULL, *rt = NULL;
    json_t     *pols, *tasks;

    if (!api_args_known(rq, rs, none) || !event_seen(rq, rs, rq->ids[0], NULL))
        return 0;
    if (api_sql(rq, rs, "SELECT " POLICY_COLS " FROM handling_policies p WHERE p.event_id = $1 "
                "ORDER BY p.created_at, p.policy_id", 1, p, &rp) != 0)
        return 0;
    if (api_sql(rq, rs, "SELECT " TASK_COLS " FROM handling_tasks t WHERE t.event_id = $1 "
                "ORDER BY t.created_at, t.kind, t.step, t.task_id", 1, p, &rt) != 0) {
        PQclear(rp);
        return 0;
    }
    pols = api_rows(rp);
    tasks = api_rows(rt);
    PQclear(rp);
    PQclear(rt);
    if (pols == NULL || tasks == NULL) {
        json_decref(pols);
        json_decref(tasks);
        return -1;
    }
    attach_tasks(pols, tasks);
    json_decref(tasks);
    return api_json(rs, 200, json_pack("{s:s, s:o}", "event_id", rq->ids[0], "policies", pols));
}

static const char SQL_RECOMMEND[] =
    "SELECT e.entity_type, e.value, count(DISTINCT e.alert_id)::int AS alerts, "
    "string_agg(DISTINCT a.asset_id, ',') AS assets, "
    "EXISTS (SELECT 1 FROM jsonb_array_elements(ev.assessment -> 'recommendations') r "
    "WHERE r ->> 'entity_type' = e.entity_type AND r ->> 'entity_value' = e.value) "
    "AS recommended FROM entity_alerts e JOIN alerts a ON a.alert_id = e.alert_id "
    "JOIN events ev ON ev.event_id = e.event_id WHERE e.event_id = $1 "
    "GROUP BY e.entity_type, e.value, ev.assessment ORDER BY e.entity_type, e.value";
static const char SQL_PLAYBOOKS[] =
    "SELECT name, entity_type, description, origin, is_default FROM playbooks "
    "ORDER BY entity_type, NOT is_default, name";

/* GET /api/v1/events/{id}/recommendations: {event_id, entities: [{entity, type, value,
 * alerts, assets, recommended, policy}], playbooks} (cwppctl events recommend --json) */
static int event_recommendations(api_req_t *rq, api_resp_t *rs)
{
    static const char *const none[] = {NULL};
    const char *p[1] = {rq->ids[0]};
    PGresult   *r = NULL, *pb = NULL;
    json_t     *ents, *pbs;
    int         i;

    if (!api_args_known(rq, rs, none) || !event_seen(rq, rs, rq->ids[0], NULL))
        return 0;
    if (api_sql(rq, rs, SQL_RECOMMEND, 1, p, &r) != 0)
        return 0;
    if (api_sql(rq, rs, SQL_PLAYBOOKS, 0, NULL, &pb) != 0) {
        PQclear(r);
        return 0;
    }
    ents = json_array();
    for (i = 0; ents != NULL && i < PQntuples(r); i++) {
        const char              *t = PQgetvalue(r, i, 0), *v = PQgetvalue(r, i, 1);
        const cwpp_policy_def_t *pd = cwpp_policy_for(t);
        json_t *o = json_pack("{s:s++, s:s, s:s, s:i, s:s, s:b, s:o}", "entity", t, ":", v,
                              "type", t, "value", v, "alerts", atoi(PQgetvalue(r, i, 2)),
                              "assets", PQgetvalue(r, i, 3), "recommended",
                              PQgetvalue(r, i, 4)[0] == 't',
                              "policy", pd == NULL ? json_null()
                                                   : json_pack("{s:s, s:s, s:s}", "action",
                                                               pd->action, "title", pd->title,
                                                               "description", pd->description));

        if (o == NULL || json_array_append_new(ents, o) != 0) {
            json_decref(ents);
            ents = NULL;
        }
    }
    pbs = api_rows(pb);
    PQclear(r);
    PQclear(pb);
    if (ents == NULL || pbs == NULL) {
        json_decref(ents);
        json_decref(pbs);
        return -1;
    }
    return api_json(rs, 200, json_pack("{s:s, s:o, s:o}", "event_id", rq->ids[0], "entities",
                                       ents, "playbooks", pbs));
}

/* ------------------------------------------------ policies and tasks, listed */

/* 1 when s is an RFC 3339 time (or a date) PostgreSQL reads as timestamptz the same way
 * whatever its settings: YYYY-MM-DD[THH:MM[:SS[.frac]](Z|+HH:MM|-HH:MM)]. */
static int rfc3339_ok(const char *s)
{
    static const char date[] = "dddd-dd-dd", tm[] = "Tdd:dd";
    size_t            i;

    for (i = 0; date[i] != '\0'; i++)
        if (date[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != date[i])
            return 0;
    s += i;
    if (*s == '\0')
        return 1;
    for (i = 0; tm[i] != '\0'; i++)
        if (tm[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9')
                         : !(s[i] == tm[i] || (tm[i] == 'T' && s[i] == 't')))
            return 0;
    s += i;
    if (s[0] == ':') {
        if (!(s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
            return 0;
        s += 3;
        if (*s == '.') {
            s++;
            if (strspn(s, "0123456789") == 0 || strspn(s, "0123456789") > 9)
                return 0;
            s += strspn(s, "0123456789");
        }
    }
    if (strcmp(s, "Z") == 0 || strcmp(s, "z") == 0)
        return 1;
    return (s[0] == '+' || s[0] == '-') && strlen(s) == 6 && s[3] == ':' &&
           strspn(s + 1, "0123456789") == 2 && strspn(s + 4, "0123456789") == 2;
}

typedef struct list_spec {
    const char        *what;     /* "policies", "tasks": the answer's key */
    const char        *alias;    /* "p", "t" */
    const char        *id_col;   /* "p.policy_id" */
    const char        *table;    /* "handling_policies p" */
    const char        *cols;
    const char *const *states;   /* the states a filter may name */
    const char        *states_text;
} list_spec_t;

static const char *const POLICY_STATES[] = {"applying", "active", "failed", "expiring",
                                            "expired", NULL};
static const char *const TASK_STATES[] = {"pending", "running", "succeeded", "failed",
                                          "timed_out", "rolled_back", "cancelled", NULL};

/*
 * GET /api/v1/policies | /api/v1/tasks: newest first (created_at, id), filtered by state,
 * event, entity (TYPE:VALUE), account, since/until (created_at); limit (<= 500, 50) and
 * cursor; {<what>: [...], total, next_cursor}.
 */
static int list_objects(api_req_t *rq, api_resp_t *rs, const list_spec_t *ls)
{
    static const char *const known[] = {"state", "event", "entity", "account", "since",
                                        "until", "limit", "cursor", NULL};
    const char *state = api_arg(rq, "state"), *event = api_arg(rq, "event");
    const char *entity = api_arg(rq, "entity"), *account = api_arg(rq, "account");
    const char *since = api_arg(rq, "since"), *until = api_arg(rq, "until");
    const char *p[11];
    char        etype[64] = "", lim[16], where[2048], sql[4096];
    const char *evalue = NULL, *ck_at = NULL, *ck_id = NULL;
    json_t     *cur = NULL, *rows = NULL, *doc;
    PGresult   *r = NULL, *rt = NULL;
    char       *next = NULL;
    int         limit, n, rc = -1;

    if (!api_args_known(rq, rs, known) || !api_limit(rq, rs, 50, 500, &limit))
        return 0;
    if (state != NULL && !one_of(rs, "state", state, ls->states, ls->states_text))
        return 0;
    if (event != NULL && !event_id_ok(event))
        return api_problem(rs, 400, "bad_filter", "\"event\" must be an event id (ev- and 32 "
                           "hex digits).");
    if (entity != NULL) {
        const char *colon = strchr(entity, ':');

        if (colon == NULL || colon == entity || (size_t)(colon - entity) >= sizeof(etype) ||
            colon[1] == '\0' || strlen(colon + 1) > 1023)
            return api_problem(rs, 400, "bad_filter", "\"entity\" must be TYPE:VALUE (e.g. "
                               "ip:203.0.113.7).");
        memcpy(etype, entity, (size_t)(colon - entity));
        etype[colon - entity] = '\0';
        evalue = colon + 1;
    }
    if (account != NULL && (account[0] == '\0' || strlen(account) > 200))
        return api_problem(rs, 400, "bad_filter", "\"account\" must be an account id (1 to "
                           "200 bytes).");
    if (since != NULL && !rfc3339_ok(since))
        return api_problem(rs, 400, "bad_filter", "\"since\" must be an RFC 3339 time (e.g. "
                           "2026-11-27T10:00:00Z) or a date.");
    if (until != NULL && !rfc3339_ok(until))
        return api_problem(rs, 400, "bad_filter", "\"until\" must be an RFC 3339 time (e.g. "
                           "2026-11-27T10:00:00Z) or a date.");
    if (!api_cursor_take(rq, rs, &cur))
        return 0;
    if (cur != NULL) {
        ck_at = json_string_value(json_array_get(cur, 0));
        ck_id = json_string_value(json_array_get(cur, 1));
        if (ck_at == NULL || ck_id == NULL) {
            json_decref(cur);
            return api_problem(rs, 400, "bad_cursor", "The cursor is not one of this list.");
        }
    }
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    p[0] = api_scope(rq);
    p[1] = state;
    p[2] = event;
    p[3] = entity != NULL ? etype : NULL;
    p[4] = evalue;
    p[5] = account;
    p[6] = since;
    p[7] = until;
    p[8] = ck_at;
    p[9] = ck_id;
    p[10] = lim;
    snprintf(where, sizeof(where),
             "WHERE " "($1::text[] IS NULL OR %1$s.account_id = ANY($1::text[])) "
             "AND ($2::text IS NULL OR %1$s.state = $2) "
             "AND ($3::text IS NULL OR %1$s.event_id = $3) "
             "AND ($4::text IS NULL OR (%1$s.entity_type = $4 AND %1$s.entity_value = $5)) "
             "AND ($6::text IS NULL OR %1$s.account_id = $6 OR %1$s.dest_account = $6) "
             "AND ($7::timestamptz IS NULL OR %1$s.created_at >= $7::timestamptz) "
             "AND ($8::timestamptz IS NULL OR %1$s.created_at < $8::timestamptz)",
             ls->alias);
    /* the page: the cursor's key (the created_at at full precision, the id) below */
    snprintf(sql, sizeof(sql),
             "SELECT %s, %s.created_at::text AS _ck_at FROM %s %s "
             "AND ($9::timestamptz IS NULL OR (%s.created_at, %s) < ($9::timestamptz, $10)) "
             "AND $11::int > 0 ORDER BY %s.created_at DESC, %s DESC LIMIT $11::int",
             ls->cols, ls->alias, ls->table, where, ls->alias, ls->id_col, ls->alias,
             ls->id_col);
    if (api_sql(rq, rs, sql, 11, p, &r) != 0) {
        rc = 0;
        goto out;
    }
    /* the total of the filters, whatever the page ($9..$11 unused but typed) */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s %s AND ($9::text IS NULL OR true) "
             "AND ($10::text IS NULL OR true) AND ($11::int IS NULL OR true)", ls->table,
             where);
    if (api_sql(rq, rs, sql, 11, p, &rt) != 0) {
        rc = 0;
        goto out;
    }
    n = PQntuples(r);
    if ((rows = json_array()) == NULL)
        goto out;
    {
        int i;

        for (i = 0; i < n && i < limit; i++) {
            json_t *o = api_row(r, i);

            if (o == NULL)
                goto out;
            json_object_del(o, "_ck_at");
            json_array_append_new(rows, o);
        }
    }
    if (n > limit) {
        int     last = limit - 1;
        json_t *st = json_pack("[s, s]", PQgetvalue(r, last, PQfnumber(r, "_ck_at")),
                               PQgetvalue(r, last, 0));

        next = st != NULL ? api_cursor_make(rq, st) : NULL;
        json_decref(st);
        if (next == NULL)
            goto out;
    }
    doc = json_pack("{s:O, s:I, s:s?}", ls->what, rows, "total",
                    (json_int_t)strtoll(PQgetvalue(rt, 0, 0), NULL, 10), "next_cursor", next);
    if (doc == NULL)
        goto out;
    if (next == NULL)
        json_object_set_new(doc, "next_cursor", json_null());
    rc = api_json(rs, 200, doc);
out:
    free(next);
    json_decref(rows);
    json_decref(cur);
    PQclear(r);
    PQclear(rt);
    return rc;
}

static int policies_list(api_req_t *rq, api_resp_t *rs)
{
    static const list_spec_t ls = {"policies", "p", "p.policy_id", "handling_policies p",
                                   POLICY_COLS, POLICY_STATES,
                                   "applying, active, failed, expiring or expired"};

    return list_objects(rq, rs, &ls);
}

static int tasks_list(api_req_t *rq, api_resp_t *rs)
{
    static const list_spec_t ls = {"tasks", "t", "t.task_id", "handling_tasks t", TASK_COLS,
                                   TASK_STATES,
                                   "pending, running, succeeded, failed, timed_out, "
                                   "rolled_back or cancelled"};

    return list_objects(rq, rs, &ls);
}

/* POST /api/v1/policies/{id}/cancel {remark?}: policies.cancel */
static int policy_cancel(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"remark", NULL};
    static const char *const none[] = {NULL};
    const char *id = rq->ids[0], *p[2];
    PGresult   *r = NULL;
    json_t     *payload, *answer = NULL;
    int         found;

    if (!api_args_known(rq, rs, none))
        return 0;
    /* an empty body is allowed: there is nothing to say but a remark */
    if (rq->body != NULL && (!api_body_known(rq, rs, known) || !opt_string(rq, rs, "remark", 0)))
        return 0;
    if (!object_id_ok(id))
        return api_not_found(rs, "policy", id != NULL && strlen(id) <= ID_MAX ? id
                                                                             : "(too long)");
    p[0] = api_scope(rq);
    p[1] = id;
    if (api_sql(rq, rs, "SELECT 1 FROM handling_policies p WHERE "
                API_SCOPE("p.account_id", "1") " AND p.policy_id = $2", 2, p, &r) != 0)
        return 0;
    found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return api_not_found(rs, "policy", id);
    payload = json_pack("{s:s}", "policy_id", id);
    if (payload == NULL)
        return -1;
    if (rq->body != NULL && json_object_get(rq->body, "remark") != NULL)
        json_object_set(payload, "remark", json_object_get(rq->body, "remark"));
    if (!api_command(rq, rs, "responder", "policies.cancel", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

const api_route_t api_respond_routes[] = {
    {"POST", "/api/v1/events/_bulk/status", bulk_change, API_CHANGE},
    {"POST", "/api/v1/events/_bulk/owner", bulk_change, API_CHANGE},
    {"POST", "/api/v1/events/_bulk/level", bulk_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/status", event_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/owner", event_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/level", event_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/remark", event_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/respond", event_change, API_CHANGE},
    {"POST", "/api/v1/events/{id}/playbook", event_change, API_CHANGE},
    {"GET", "/api/v1/events/{id}/log", event_log, 0},
    {"GET", "/api/v1/events/{id}/policies", event_policies, 0},
    {"GET", "/api/v1/events/{id}/recommendations", event_recommendations, 0},
    {"GET", "/api/v1/policies", policies_list, 0},
    {"GET", "/api/v1/tasks", tasks_list, 0},
    {"POST", "/api/v1/policies/{id}/cancel", policy_cancel, API_CHANGE},
    {NULL, NULL, NULL, 0},
};
