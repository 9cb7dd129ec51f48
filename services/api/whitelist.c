/* SPDX-License-Identifier: Apache-2.0 */
/*
 * whitelist.c: the whitelist resources of cwpp-api (docs/api/parts/whitelist.yaml,
 * docs/whitelist.md):
 *
 *   GET    /api/v1/whitelist/rules              the rules of the caller's accounts, with
 *                                               hit counts and expiry (keyset pages)
 *   POST   /api/v1/whitelist/rules              create a rule (whitelist.rule_add)
 *   DELETE /api/v1/whitelist/rules/{id}         delete a rule (whitelist.rule_delete)
 *   POST   /api/v1/whitelist/rules/preview      impact preview and broad-rule warning
 *                                               (read-only, on the request's connection;
 *                                               analysts and admins, as the changes)
 *   POST   /api/v1/alerts/{id}/whitelist        whitelist an alert, with the rules made
 *                                               from it, in one all-or-nothing command
 *                                               (whitelist.add_alert with rules)
 *   POST   /api/v1/alerts/_bulk/unwhitelist     take alerts out of the whitelist, all or
 *                                               nothing, answering per item
 *
 * Reads are scoped to the caller's accounts: a rule or alert of another account is a 404,
 * exactly like a missing one. Rules are checked here as the whitelist-filter checks them
 * (libs/whitelist), so a bad field, operator, value or regex is a 400 naming it before any
 * command is sent; the filter still decides everything that needs its state (permission
 * on the rule's account, breadth, the alert's status) and its refusals come back as 422.
 * The preview window and the breadth limit are the environment's
 * CWPP_WHITELIST_PREVIEW_DAYS (30) and CWPP_WHITELIST_BROAD_PERCENT (20), as for the
 * filter's whitelist.preview.days and whitelist.broad.percent.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_whitelist.h"

#define MAX_BULK 1000   /* ids of one bulk unwhitelist (the filter's limit) */
#define MAX_RULES 20    /* rules given with one alert (the filter's limit) */

/* A timestamptz column as RFC 3339 UTC text (second precision), as cwppctl printed it. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The fields of a rule in a body; account_id and from_alert_id only where the rule does
 * not take them from an alert. */
#define RULE_FIELDS "alert_name", "field", "op", "value", "scope", "asset_id", "expires_at", \
                    "remark", "force"

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    char       *end;
    long        n;

    if (v == NULL || *v == '\0')
        return def;
    n = strtol(v, &end, 10);
    return *end == '\0' && n >= lo && n <= hi ? (int)n : def;
}

/* 1 when id is a rule id (1 to 18 digits, not 0) */
static int rule_id_ok(const char *id)
{
    size_t i, n = strlen(id);

    if (n == 0 || n > 18 || id[0] == '0')
        return 0;
    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)id[i]))
            return 0;
    return 1;
}

/* The keys of obj all in known (NULL-ended); else 0 after a 400 naming the key and where. */
static int keys_known(api_resp_t *rs, json_t *obj, const char *const *known, const char *where)
{
    const char *key;
    json_t     *v;

    json_object_foreach(obj, key, v) {
        size_t i;
        int    ok = 0;

        for (i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            api_problem(rs, 400, "unknown_field", "\"%.64s\" is not a field of %s.", key, where);
            return 0;
        }
    }
    return 1;
}

/*
 * Checks rule (a body object) as the filter will: fields, operator, value, regex, scope,
 * expiry (not in the past), lengths. An asset scope without an asset is fine when the rule
 * is made from an alert (the filter takes that alert's asset). 1 good; 0 after a 400.
 */
static int rule_valid(api_resp_t *rs, json_t *rule, const char *where)
{
    cwpp_wl_def_t d;
    json_t       *copy, *force = json_object_get(rule, "force");
    char          why[1024];
    int           rc;
    const char   *scope = json_string_value(json_object_get(rule, "scope"));

    if (force != NULL && !json_is_boolean(force))
        return api_problem(rs, 400, "bad_request", "%s: force must be true or false.", where);
    if ((copy = json_deep_copy(rule)) == NULL)
        return api_problem(rs, 503, "unavailable", "Out of memory; try again.");
    if (scope != NULL && strcmp(scope, "asset") == 0 &&
        json_object_get(copy, "asset_id") == NULL &&
        json_object_get(copy, "from_alert_id") != NULL)
        json_object_set_new(copy, "asset_id", json_string("(the alert's)"));
    rc = cwpp_wl_def_from_json(copy, &d, why, sizeof(why));
    json_decref(copy);
    if (rc != CWPP_OK)
        return api_problem(rs, 400, "bad_rule", "%s is not valid: %s.", where, why);
    if (d.def.expires_at_ms > 0 && d.def.expires_at_ms <= cwpp_now_ms()) {
        cwpp_wl_def_clear(&d);
        return api_problem(rs, 400, "bad_rule", "%s is not valid: expires_at is in the past.",
                            where);
    }
    cwpp_wl_def_clear(&d);
    return 1;
}

/* ------------------------------------------------------------------ the list */

static const char SQL_RULES[] =
    "SELECT r.rule_id, r.account_id, r.alert_name, r.field, r.op, r.value, r.scope, "
    "r.asset_id, " TS("r.expires_at") " AS expires_at, "
    "(r.expires_at IS NOT NULL AND r.expires_at <= now()) AS expired, r.hits, "
    TS("r.last_hit_at") " AS last_hit_at, r.created_by, " TS("r.created_at") " AS created_at, "
    TS("r.deleted_at") " AS deleted_at, r.deleted_by, r.remark, r.from_alert_id "
    "FROM whitelist_rules r WHERE " API_SCOPE("r.account_id", "1")
    " AND ($2::boolean OR r.deleted_at IS NULL) AND ($3::text IS NULL OR r.alert_name = $3)"
    " AND ($4::text IS NULL OR r.account_id = $4)"
    " AND ($5::text IS NULL OR (r.alert_name, r.rule_id) > ($5::text, $6::bigint))"
    " ORDER BY r.alert_name, r.rule_id LIMIT $7::int";
static const char SQL_RULES_TOTAL[] =
    "SELECT count(*) FROM whitelist_rules r WHERE " API_SCOPE("r.account_id", "1")
    " AND ($2::boolean OR r.deleted_at IS NULL) AND ($3::text IS NULL OR r.alert_name = $3)"
    " AND ($4::text IS NULL OR r.account_id = $4)";

static int rules_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"alert_name", "account", "all", "limit", "cursor", NULL};
    const char *all = api_arg(rq, "all"), *p[7];
    json_t     *state = NULL, *rows, *doc;
    PGresult   *r = NULL, *t = NULL;
    char        lim[16], last_id[32];
    char       *next = NULL;
    int         limit, n;

    if (!api_args_known(rq, rs, known) || !api_limit(rq, rs, 100, 500, &limit))
        return 0;
    if (all != NULL && strcmp(all, "true") != 0 && strcmp(all, "false") != 0)
        return api_problem(rs, 400, "bad_request",
                           "all must be true (deleted rules too) or false.");
    if (!api_cursor_take(rq, rs, &state))
        return 0;
    if (state != NULL && (!json_is_array(state) || json_array_size(state) != 2 ||
                          !json_is_string(json_array_get(state, 0)) ||
                          !json_is_integer(json_array_get(state, 1)))) {
        json_decref(state);
        return api_problem(rs, 400, "bad_cursor", "The cursor is not one this query gave.");
    }
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    if (state != NULL)
        snprintf(last_id, sizeof(last_id), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_array_get(state, 1)));
    p[0] = api_scope(rq);
    p[1] = all != NULL && strcmp(all, "true") == 0 ? "true" : "false";
    p[2] = api_arg(rq, "alert_name");
    p[3] = api_arg(rq, "account");
    p[4] = state != NULL ? json_string_value(json_array_get(state, 0)) : NULL;
    p[5] = state != NULL ? last_id : NULL;
    p[6] = lim;
    if (api_sql(rq, rs, SQL_RULES, 7, p, &r) != 0 ||
        api_sql(rq, rs, SQL_RULES_TOTAL, 4, p, &t) != 0) {
        PQclear(r);
        json_decref(state);
        return 0;
    }
    json_decref(state);
    n = PQntuples(r);
    if (n > limit) {
        json_t *key = json_pack("[s, I]", PQgetvalue(r, limit - 1, 2),
                                (json_int_t)strtoll(PQgetvalue(r, limit - 1, 0), NULL, 10));

        next = api_cursor_make(rq, key);
        json_decref(key);
    }
    rows = json_array();
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(rows, api_row(r, i));
    doc = json_pack("{s:o, s:I, s:s?}", "rules", rows, "total",
                    (json_int_t)strtoll(PQgetvalue(t, 0, 0), NULL, 10), "next_cursor", next);
    if (doc != NULL && next == NULL)
        json_object_set_new(doc, "next_cursor", json_null());
    free(next);
    PQclear(r);
    PQclear(t);
    if (doc == NULL)
        return -1;
    return api_json(rs, 200, doc);
}

/* ------------------------------------------------------------ create, delete */

static int rules_create(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"account_id", "from_alert_id", RULE_FIELDS, NULL};
    json_t *answer = NULL;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}) ||
        !api_body_known(rq, rs, known))
        return 0;
    if (!json_is_string(json_object_get(rq->body, "account_id")) ||
        json_string_length(json_object_get(rq->body, "account_id")) == 0)
        return api_problem(rs, 400, "bad_rule", "A rule needs account_id: a rule applies to "
                           "the alerts of one account.");
    if (!rule_valid(rs, rq->body, "The rule"))
        return 0;
    /* The filter decides the actor's permission on the account (a 422 naming it: the
     * caller named the account) and on the alert it is made from (answered as if a
     * missing alert, so another account's alert does not leak). */
    if (!api_command(rq, rs, "whitelist", "whitelist.rule_add", json_deep_copy(rq->body),
                     &answer))
        return 0;
    return api_answer(rs, answer);
}

static const char SQL_RULE_SEEN[] =
    "SELECT 1 FROM whitelist_rules r WHERE " API_SCOPE("r.account_id", "1")
    " AND r.rule_id = $2::bigint";

static int rules_delete(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"remark", NULL};
    const char *id = rq->ids[0], *p[2];
    json_t     *payload, *answer = NULL;
    PGresult   *r = NULL;
    int         seen;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}))
        return 0;
    if (rq->body != NULL && !api_body_known(rq, rs, known))
        return 0;
    if (!rule_id_ok(id))
        return api_not_found(rs, "whitelist rule", id);
    p[0] = api_scope(rq);
    p[1] = id;
    if (api_sql(rq, rs, SQL_RULE_SEEN, 2, p, &r) != 0)
        return 0;
    seen = PQntuples(r) == 1;
    PQclear(r);
    if (!seen)
        return api_not_found(rs, "whitelist rule", id);
    payload = json_pack("{s:I}", "rule_id", (json_int_t)strtoll(id, NULL, 10));
    if (payload == NULL)
        return -1;
    if (json_is_string(json_object_get(rq->body, "remark")))
        json_object_set(payload, "remark", json_object_get(rq->body, "remark"));
    else if (json_object_get(rq->body, "remark") != NULL &&
             !json_is_null(json_object_get(rq->body, "remark"))) {
        json_decref(payload);
        return api_problem(rs, 400, "bad_request", "remark must be a string.");
    }
    if (!api_command(rq, rs, "whitelist", "whitelist.rule_delete", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

/* ------------------------------------------------------------------ preview */

static const char SQL_ALERT_SEEN[] =
    "SELECT a.account_id, a.name, a.asset_id, a.status FROM alerts a WHERE "
    API_SCOPE("a.account_id", "1") " AND a.alert_id = $2";

static int rules_preview(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"account_id", "from_alert_id", RULE_FIELDS, NULL};
    const char       *acct, *from, *scope;
    json_t           *body, *doc;
    cwpp_wl_def_t     d;
    cwpp_wl_preview_t pv;
    char              why[1024], errstr[512];
    int               rc, broad;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}) ||
        !api_body_known(rq, rs, known))
        return 0;
    acct = json_string_value(json_object_get(rq->body, "account_id"));
    if (acct == NULL || *acct == '\0')
        return api_problem(rs, 400, "bad_rule", "A rule needs account_id: a rule applies to "
                           "the alerts of one account, and its preview counts them.");
    if (!rule_valid(rs, rq->body, "The rule"))
        return 0;
    if (!api_holds(rq, acct))
        return api_not_found(rs, "account", acct);
    if ((body = json_deep_copy(rq->body)) == NULL)
        return -1;
    from = json_string_value(json_object_get(body, "from_alert_id"));
    scope = json_string_value(json_object_get(body, "scope"));
    if (from != NULL) {
        const char *p[2] = {api_scope(rq), from};
        PGresult   *r = NULL;

        if (api_sql(rq, rs, SQL_ALERT_SEEN, 2, p, &r) != 0) {
            json_decref(body);
            return 0;
        }
        if (PQntuples(r) != 1) {
            PQclear(r);
            rc = api_not_found(rs, "alert", from);
            json_decref(body);
            return rc;
        }
        if (scope != NULL && strcmp(scope, "asset") == 0 &&
            json_object_get(body, "asset_id") == NULL)
            json_object_set_new(body, "asset_id", json_string(PQgetvalue(r, 0, 2)));
        PQclear(r);
    }
    rc = cwpp_wl_def_from_json(body, &d, why, sizeof(why));
    json_decref(body);
    if (rc != CWPP_OK)
        return api_problem(rs, 400, "bad_rule", "The rule is not valid: %s.", why);
    if (cwpp_pg_ensure(rq->pg, errstr, sizeof(errstr)) != CWPP_OK ||
        (rc = cwpp_wl_preview(cwpp_pg_conn(rq->pg), &d.def, NULL,
                              env_int("CWPP_WHITELIST_PREVIEW_DAYS", 30, 1, 3650),
                              cwpp_now_ms(), &pv, errstr, sizeof(errstr))) != CWPP_OK) {
        cwpp_wl_def_clear(&d);
        cwpp_pg_reset(rq->pg);
        return api_problem(rs, 503, "unavailable", "The preview could not read the alerts; "
                           "try again shortly.");
    }
    broad = cwpp_wl_broad(&d.def, &pv,
                          env_int("CWPP_WHITELIST_BROAD_PERCENT", 20, 0, 100) / 100.0, why,
                          sizeof(why));
    doc = cwpp_wl_preview_to_json(&pv);
    if (doc != NULL) {
        json_object_set_new(doc, "rule", cwpp_wl_def_to_json(&d.def, 0));
        json_object_set_new(doc, "needs_force", json_boolean(broad));
        json_object_set_new(doc, "broad", broad ? json_string(why) : json_null());
    }
    cwpp_wl_preview_clear(&pv);
    cwpp_wl_def_clear(&d);
    if (doc == NULL)
        return -1;
    return api_json(rs, 200, doc);
}

/* ------------------------------------------------------------ alerts */

/* A malformed alert id is a 400 naming it (cwppctl's "not an alert id"). 1 good. */
static int alert_id_ok(api_resp_t *rs, const char *id)
{
    if (cwpp_alert_id_valid(id))
        return 1;
    api_problem(rs, 400, "bad_request", "\"%.60s\" is not an alert id (al- followed by 32 hex "
                "digits).", id);
    return 0;
}

static int alert_whitelist(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"remark", "rules", NULL};
    static const char *const rule_known[] = {RULE_FIELDS, NULL};
    const char *id = rq->ids[0], *p[2];
    json_t     *rules = json_object_get(rq->body, "rules"), *payload, *answer = NULL;
    json_t     *remark = json_object_get(rq->body, "remark");
    PGresult   *r = NULL;
    size_t      i;
    int         seen;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}))
        return 0;
    if (rq->body != NULL && !api_body_known(rq, rs, known))
        return 0;
    if (!alert_id_ok(rs, id))
        return 0;
    if (remark != NULL && !json_is_null(remark) && !json_is_string(remark))
        return api_problem(rs, 400, "bad_request", "remark must be a string.");
    if (json_is_null(rules))
        rules = NULL;
    if (rules != NULL && (!json_is_array(rules) || json_array_size(rules) > MAX_RULES))
        return api_problem(rs, 400, "bad_request", "rules must be a list of at most %d rules.",
                           MAX_RULES);
    p[0] = api_scope(rq);
    p[1] = id;
    if (api_sql(rq, rs, SQL_ALERT_SEEN, 2, p, &r) != 0)
        return 0;
    seen = PQntuples(r) == 1;
    PQclear(r);
    if (!seen)
        return api_not_found(rs, "alert", id);
    for (i = 0; i < json_array_size(rules); i++) {
        json_t *one = json_array_get(rules, i), *copy;
        char    where[64];
        int     ok;

        snprintf(where, sizeof(where), "rule %zu of rules", i + 1);
        if (!json_is_object(one))
            return api_problem(rs, 400, "bad_rule", "Rule %zu of rules is not an object.",
                               i + 1);
        if (!keys_known(rs, one, rule_known, where))
            return 0;
        /* made from the alert (its account and, for an asset scope, its asset) */
        if ((copy = json_deep_copy(one)) == NULL)
            return -1;
        json_object_set_new(copy, "from_alert_id", json_string(id));
        ok = rule_valid(rs, copy, where);
        json_decref(copy);
        if (!ok)
            return 0;
    }
    payload = json_pack("{s:s}", "alert_id", id);
    if (payload == NULL)
        return -1;
    if (json_is_string(remark))
        json_object_set(payload, "remark", remark);
    if (rules != NULL)
        json_object_set(payload, "rules", rules);
    if (!api_command(rq, rs, "whitelist", "whitelist.add_alert", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

/* Marks bulk item i as one that cannot be taken out. */
static void item_fail(json_t *items, size_t i, int status, const char *code, const char *detail)
{
    json_t *it = json_array_get(items, i);

    json_object_set_new(it, "status", json_integer(status));
    json_object_set_new(it, "code", json_string(code));
    json_object_set_new(it, "detail", json_string(detail));
}

static const char SQL_BULK_SEEN[] =
    "SELECT a.alert_id, a.status FROM alerts a WHERE " API_SCOPE("a.account_id", "1")
    " AND a.alert_id = ANY($2::text[])";

/*
 * Classifies every item (all or nothing, like the filter's whitelist.remove_alerts): 400
 * not an alert id, 404 no alert the caller sees (missing, or another account's: the
 * same), 409 not whitelisted. Returns the worst status found (0: all can be taken out)
 * and the sentence's list of up to five ids of that kind in bad (NUL-ended).
 */
static int bulk_classify(json_t *ids, json_t *items, const PGresult *r, cwpp_buf_t *bad,
                         size_t *nbad)
{
    static const int order[] = {400, 404, 409};
    size_t i, o;
    int    worst = 0;

    for (i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i)), *st = NULL;
        char        d[200];
        int         k;

        if (!cwpp_alert_id_valid(id)) {
            item_fail(items, i, 400, "bad_request",
                      "Not an alert id (al- followed by 32 hex digits).");
            continue;
        }
        for (k = 0; r != NULL && k < PQntuples(r) && st == NULL; k++)
            if (strcmp(PQgetvalue(r, k, 0), id) == 0)
                st = PQgetvalue(r, k, 1);
        if (st == NULL) {
            snprintf(d, sizeof(d), "No alert \"%s\" exists among the accounts you hold.", id);
            item_fail(items, i, 404, "not_found", d);
        } else if (strcmp(st, "manually_whitelisted") != 0 &&
                   strcmp(st, "automatically_whitelisted") != 0) {
            snprintf(d, sizeof(d), "Alert %s is %s, not whitelisted.", id, st);
            item_fail(items, i, 409, "conflict", d);
        }
    }
    for (o = 0; o < sizeof(order) / sizeof(order[0]) && worst == 0; o++)
        for (i = 0; i < json_array_size(items); i++) {
            json_t     *it = json_array_get(items, i);
            const char *id = json_string_value(json_object_get(it, "id"));

            if (json_integer_value(json_object_get(it, "status")) != order[o])
                continue;
            worst = order[o];
            if ((*nbad)++ >= 5 || worst == 400)
                continue;
            if (*nbad > 1)
                cwpp_buf_append(bad, ", ", 2);
            cwpp_buf_append(bad, id, strlen(id));
            if (worst == 409) {
                const char *d = json_string_value(json_object_get(it, "detail"));
                const char *is = strstr(d, " is ");
                const char *comma = strchr(d, ',');

                if (is != NULL && comma != NULL && comma > is)
                    cwpp_buf_append(bad, is, (size_t)(comma - is));
            }
        }
    cwpp_buf_append(bad, "", 1);
    return worst;
}

static int bulk_unwhitelist(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"ids", "remark", NULL};
    json_t     *ids, *remark, *items = NULL, *payload = NULL, *answer = NULL, *alerts;
    cwpp_buf_t  arr = {0}, bad = {0};
    PGresult   *r = NULL;
    const char *p[2];
    size_t      i, nbad = 0;
    int         rc = 0, worst;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}) || !api_body_known(rq, rs, known))
        return 0;
    ids = json_object_get(rq->body, "ids");
    remark = json_object_get(rq->body, "remark");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > MAX_BULK)
        return api_problem(rs, 400, "bad_request", "ids must be a list of 1 to %d alert ids.",
                           MAX_BULK);
    if (remark != NULL && !json_is_null(remark) && !json_is_string(remark))
        return api_problem(rs, 400, "bad_request", "remark must be a string.");
    if ((items = json_array()) == NULL)
        return -1;
    /* the well-formed ids as a text[] literal (plain "al-" + hex: nothing to quote) */
    cwpp_buf_append(&arr, "{", 1);
    for (i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));

        json_array_append_new(items, json_pack("{s:O}", "id", json_array_get(ids, i)));
        if (!cwpp_alert_id_valid(id))
            continue;
        if (arr.len > 1)
            cwpp_buf_append(&arr, ",", 1);
        cwpp_buf_append(&arr, id, strlen(id));
    }
    cwpp_buf_append(&arr, "}", 2);
    if (arr.data == NULL) {
        rc = -1;
        goto out;
    }
    p[0] = api_scope(rq);
    p[1] = (const char *)arr.data;
    if (api_sql(rq, rs, SQL_BULK_SEEN, 2, p, &r) != 0)
        goto out;
    if ((worst = bulk_classify(ids, items, r, &bad, &nbad)) != 0) {
        /* all or nothing: nothing is sent; each item says what it is */
        if (worst == 400)
            api_problem(rs, 400, "bad_request", "No alert was removed: %zu of the ids are not "
                        "alert ids (al- followed by 32 hex digits).", nbad);
        else
            api_problem(rs, 422, "refused", "No alert was removed: %zu %s (%s%s).", nbad,
                        worst == 404 ? "of the ids name no alert" : "of them are not whitelisted",
                        bad.data != NULL ? (const char *)bad.data : "", nbad > 5 ? ", ..." : "");
        json_object_set(rs->doc, "items", items);
        goto out;
    }
    payload = json_pack("{s:O}", "alert_ids", ids);
    if (payload == NULL) {
        rc = -1;
        goto out;
    }
    if (json_is_string(remark))
        json_object_set(payload, "remark", remark);
    if (!api_command(rq, rs, "whitelist", "whitelist.remove_alerts", payload, &answer))
        goto out;
    /* per item: its entry of the answer, or the service's refusal (then of every item) */
    alerts = json_object_get(json_object_get(answer, "result"), "alerts");
    for (i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        size_t  j;

        if (!json_is_string(json_object_get(answer, "status")) ||
            strcmp(json_string_value(json_object_get(answer, "status")), "ok") != 0) {
            const char *m = json_string_value(json_object_get(answer, "message"));

            item_fail(items, i, 422, "refused", m != NULL ? m : "Refused.");
            continue;
        }
        json_object_set_new(it, "status", json_integer(200));
        for (j = 0; j < json_array_size(alerts); j++) {
            json_t *e = json_array_get(alerts, j);

            if (json_equal(json_object_get(e, "alert_id"), json_object_get(it, "id"))) {
                json_object_set(it, "before", json_object_get(e, "before"));
                json_object_set(it, "after", json_object_get(e, "after"));
            }
        }
    }
    rc = api_answer(rs, answer);
    json_object_set(rs->doc, "items", items);
out:
    PQclear(r);
    cwpp_buf_free(&arr);
    cwpp_buf_free(&bad);
    json_decref(items);
    return rc;
}

const api_route_t api_whitelist_routes[] = {
    {"GET", "/api/v1/whitelist/rules", rules_list, 0},
    {"POST", "/api/v1/whitelist/rules", rules_create, API_CHANGE},
    /* read-only, but a step of creating a rule: analysts' (a POST, like every change) */
    {"POST", "/api/v1/whitelist/rules/preview", rules_preview, API_CHANGE},
    {"DELETE", "/api/v1/whitelist/rules/{id}", rules_delete, API_CHANGE},
    {"POST", "/api/v1/alerts/_bulk/unwhitelist", bulk_unwhitelist, API_CHANGE},
    {"POST", "/api/v1/alerts/{id}/whitelist", alert_whitelist, API_CHANGE},
    {NULL, NULL, NULL, 0},
};
