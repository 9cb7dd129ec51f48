/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c: users, member accounts and playbooks (docs/api/parts/admin.yaml). The changes
 * are the responder's admin commands (docs/commands.md: users.*, accounts.add_member,
 * accounts.perimeter, playbooks.*) issued as the authenticated admin; the responder checks again that the
 * actor is an admin. Passwords and tokens are auth.c's.
 *
 *   GET    /api/v1/users                          admins: {users}
 *   POST   /api/v1/users                          {user, role?, display_name?}
 *   POST   /api/v1/users/{name}/disable|enable    {remark?}
 *   POST   /api/v1/users/{name}/grant|revoke      {account, remark?}
 *   POST   /api/v1/users/{name}/role              {role, remark?}
 *   GET    /api/v1/accounts                       {accounts, member_accounts,
 *                                                  perimeter_agents} (scoped)
 *   POST   /api/v1/accounts/members               {account, manager, name?}
 *   POST   /api/v1/accounts/perimeter             {account, asset, remove?, remark?}
 *   GET    /api/v1/playbooks                      anyone: {playbooks} (?entity_type=)
 *   POST   /api/v1/playbooks                      the playbook itself (validated here first)
 *   DELETE /api/v1/playbooks/{name}
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_respond.h"

#define NAME_MAX_BYTES 64

static const char *const NONE[] = {NULL};

/* 1 when s may be a user or playbook name in a path (bounded, no '/'). */
static int path_name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    return n > 0 && n <= NAME_MAX_BYTES && strchr(s, '/') == NULL;
}

/* 1 when the body's key is absent (and not required) or a text; else 0 after a 400. */
static int text_field(const api_req_t *rq, api_resp_t *rs, const char *key, int required)
{
    const json_t *v = json_object_get(rq->body, key);

    if ((v == NULL && !required) || json_is_string(v))
        return 1;
    api_problem(rs, 400, "bad_request", "\"%s\" %s a text.", key,
                v == NULL ? "is missing: it must be" : "must be");
    return 0;
}

/* Issues the admin command type with payload (stolen) and answers with its answer. */
static int issue(api_req_t *rq, api_resp_t *rs, const char *type, json_t *payload)
{
    json_t *answer = NULL;

    if (payload == NULL)
        return -1;
    if (!api_command(rq, rs, "responder", type, payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

/* 1 when user {name} of the path exists; else 0 after a 404. */
static int user_exists(api_req_t *rq, api_resp_t *rs, const char *name)
{
    const char *p[1] = {name};
    PGresult   *r = NULL;
    int         found;

    if (!path_name_ok(name)) {
        api_not_found(rs, "user", name != NULL && strlen(name) <= 128 ? name : "(too long)");
        return 0;
    }
    if (api_sql(rq, rs, "SELECT 1 FROM users WHERE user_name = $1", 1, p, &r) != 0)
        return 0;
    found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        api_not_found(rs, "user", name);
    return found;
}

/* ------------------------------------------------------------------- users */

static int users_list(api_req_t *rq, api_resp_t *rs)
{
    PGresult *r = NULL;
    json_t   *rows;

    if (!api_args_known(rq, rs, NONE))
        return 0;
    if (api_sql(rq, rs, "SELECT u.user_name AS user, u.role, u.display_name, "
                "CASE WHEN u.disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END AS state, "
                "COALESCE(string_agg(a.account_id, ',' ORDER BY a.account_id), "
                "CASE WHEN u.role = 'admin' THEN '(all)' ELSE '' END) AS accounts "
                "FROM users u LEFT JOIN user_accounts a USING (user_name) "
                "GROUP BY u.user_name ORDER BY u.user_name", 0, NULL, &r) != 0)
        return 0;
    rows = api_rows(r);
    PQclear(r);
    if (rows == NULL)
        return -1;
    return api_json(rs, 200, json_pack("{s:o}", "users", rows));
}

static int users_add(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"user", "role", "display_name", NULL};
    const char *role;
    json_t     *p;
    char        cut[41];

    if (!api_args_known(rq, rs, NONE) || !api_body_known(rq, rs, known) ||
        !text_field(rq, rs, "user", 1) || !text_field(rq, rs, "role", 0) ||
        !text_field(rq, rs, "display_name", 0))
        return 0;
    role = json_string_value(json_object_get(rq->body, "role"));
    if (role == NULL)
        role = "analyst";
    if (strcmp(role, "admin") != 0 && strcmp(role, "analyst") != 0 &&
        strcmp(role, "viewer") != 0) {
        snprintf(cut, sizeof(cut), "%s", role);
        cwpp_utf8_sanitize(cut);
        return api_problem(rs, 400, "bad_request", "\"role\" must be admin, analyst or viewer, "
                           "not \"%s\".", cut);
    }
    p = json_pack("{s:O, s:s}", "user", json_object_get(rq->body, "user"), "role", role);
    if (p != NULL && json_object_get(rq->body, "display_name") != NULL)
        json_object_set(p, "display_name", json_object_get(rq->body, "display_name"));
    return issue(rq, rs, "users.add", p);
}

/* POST /api/v1/users/{name}/disable|enable|grant|revoke|role */
static int users_change(api_req_t *rq, api_resp_t *rs)
{
    static const char *const k_plain[] = {"remark", NULL};
    static const char *const k_account[] = {"account", "remark", NULL};
    static const char *const k_role[] = {"role", "remark", NULL};
    const char *verb = strrchr(rq->path, '/'), *name = rq->ids[0];
    int         acc, role;
    char        type[32];
    json_t     *p;

    verb = verb != NULL ? verb + 1 : "";
    acc = strcmp(verb, "grant") == 0 || strcmp(verb, "revoke") == 0;
    role = strcmp(verb, "role") == 0;
    if (!api_args_known(rq, rs, NONE))
        return 0;
    if ((acc || role || rq->body != NULL) &&
        !api_body_known(rq, rs, acc ? k_account : role ? k_role : k_plain))
        return 0;
    if (!text_field(rq, rs, "remark", 0) || (acc && !text_field(rq, rs, "account", 1)) ||
        (role && !text_field(rq, rs, "role", 1)))
        return 0;
    if (!user_exists(rq, rs, name))
        return 0;
    p = json_pack("{s:s}", "user", name);
    if (p != NULL && rq->body != NULL) {
        const char *k;
        json_t     *v;

        json_object_foreach(rq->body, k, v)
            json_object_set(p, k, v);
    }
    snprintf(type, sizeof(type), "users.%s", verb);
    return issue(rq, rs, type, p);
}

/* ---------------------------------------------------------------- accounts */

static int accounts_list(api_req_t *rq, api_resp_t *rs)
{
    const char *p[1] = {api_scope(rq)};
    PGresult   *rm = NULL, *ra = NULL, *rp = NULL;
    json_t     *members, *accounts, *perimeter;

    if (!api_args_known(rq, rs, NONE))
        return 0;
    /* a member account is seen by who holds it or its manager */
    if (api_sql(rq, rs, "SELECT account_id AS member, manager_account_id AS manager, name, "
                "created_by FROM managed_accounts m WHERE ($1::text[] IS NULL OR "
                "m.account_id = ANY($1::text[]) OR m.manager_account_id = ANY($1::text[])) "
                "ORDER BY manager_account_id, account_id", 1, p, &rm) != 0)
        return 0;
    if (api_sql(rq, rs, "SELECT DISTINCT a AS account FROM (SELECT account_id FROM user_accounts "
                "UNION SELECT account_id FROM managed_accounts UNION SELECT manager_account_id "
                "FROM managed_accounts) x(a) WHERE " API_SCOPE("a", "1") " ORDER BY a", 1, p,
                &ra) != 0) {
        PQclear(rm);
        return 0;
    }
    /* perimeter agents of the accounts the caller holds */
    if (api_sql(rq, rs, "SELECT account_id AS account, asset_id AS asset, declared_by, "
                "declared_at FROM perimeter_agents WHERE " API_SCOPE("account_id", "1")
                " ORDER BY account_id, asset_id", 1, p, &rp) != 0) {
        PQclear(rm);
        PQclear(ra);
        return 0;
    }
    members = api_rows(rm);
    perimeter = api_rows(rp);
    PQclear(rp);
    accounts = json_array();
    {
        int i;

        for (i = 0; accounts != NULL && i < PQntuples(ra); i++)
            json_array_append_new(accounts, json_string(PQgetvalue(ra, i, 0)));
    }
    PQclear(rm);
    PQclear(ra);
    if (members == NULL || accounts == NULL || perimeter == NULL) {
        json_decref(members);
        json_decref(accounts);
        json_decref(perimeter);
        return -1;
    }
    return api_json(rs, 200, json_pack("{s:o, s:o, s:o}", "accounts", accounts,
                                       "member_accounts", members, "perimeter_agents",
                                       perimeter));
}

static int accounts_add_member(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"account", "manager", "name", "remark", NULL};

    if (!api_args_known(rq, rs, NONE) || !api_body_known(rq, rs, known) ||
        !text_field(rq, rs, "account", 1) || !text_field(rq, rs, "manager", 1) ||
        !text_field(rq, rs, "name", 0) || !text_field(rq, rs, "remark", 0))
        return 0;
    return issue(rq, rs, "accounts.add_member", json_deep_copy(rq->body));
}

/* accounts.perimeter: {account, asset, remove?, remark?} */
static int accounts_perimeter(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"account", "asset", "remove", "remark", NULL};
    const json_t *rm = json_object_get(rq->body, "remove");

    if (!api_args_known(rq, rs, NONE) || !api_body_known(rq, rs, known) ||
        !text_field(rq, rs, "account", 1) || !text_field(rq, rs, "asset", 1) ||
        !text_field(rq, rs, "remark", 0))
        return 0;
    if (rm != NULL && !json_is_boolean(rm))
        return api_problem(rs, 400, "bad_request", "\"remove\" must be true or false.");
    return issue(rq, rs, "accounts.perimeter", json_deep_copy(rq->body));
}

/* --------------------------------------------------------------- playbooks */

static int playbooks_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"entity_type", NULL};
    const char *p[1];
    PGresult   *r = NULL;
    json_t     *rows;

    if (!api_args_known(rq, rs, known))
        return 0;
    p[0] = api_arg(rq, "entity_type");
    if (p[0] != NULL && (p[0][0] == '\0' || strlen(p[0]) > 64))
        return api_problem(rs, 400, "bad_filter", "\"entity_type\" must be an entity type.");
    if (api_sql(rq, rs, "SELECT name, entity_type, origin, is_default AS \"default\", "
                "jsonb_array_length(steps) AS steps, description, steps AS step_list "
                "FROM playbooks WHERE $1::text IS NULL OR entity_type = $1 "
                "ORDER BY entity_type, NOT is_default, name", 1, p, &r) != 0)
        return 0;
    rows = api_rows(r);
    PQclear(r);
    if (rows == NULL)
        return -1;
    return api_json(rs, 200, json_pack("{s:o}", "playbooks", rows));
}

static int playbooks_add(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"name", "entity_type", "description", "default",
                                        "steps", NULL};
    char why[300];

    if (!api_args_known(rq, rs, NONE) || !api_body_known(rq, rs, known))
        return 0;
    if (cwpp_playbook_check(rq->body, why, sizeof(why)) != 0)
        return api_problem(rs, 400, "bad_request", "The playbook is not valid: %s.", why);
    return issue(rq, rs, "playbooks.add", json_pack("{s:O}", "playbook", rq->body));
}

static int playbooks_delete(api_req_t *rq, api_resp_t *rs)
{
    const char *name = rq->ids[0];

    if (!api_args_known(rq, rs, NONE))
        return 0;
    if (!path_name_ok(name))
        return api_not_found(rs, "playbook", name != NULL && strlen(name) <= 128 ? name
                                                                                 : "(too long)");
    return issue(rq, rs, "playbooks.delete", json_pack("{s:s}", "name", name));
}

const api_route_t api_admin_routes[] = {
    {"GET", "/api/v1/users", users_list, API_ADMIN},
    {"POST", "/api/v1/users", users_add, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/users/{name}/disable", users_change, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/users/{name}/enable", users_change, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/users/{name}/grant", users_change, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/users/{name}/revoke", users_change, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/users/{name}/role", users_change, API_ADMIN | API_CHANGE},
    {"GET", "/api/v1/accounts", accounts_list, 0},
    {"POST", "/api/v1/accounts/members", accounts_add_member, API_ADMIN | API_CHANGE},
    {"POST", "/api/v1/accounts/perimeter", accounts_perimeter, API_ADMIN | API_CHANGE},
    {"GET", "/api/v1/playbooks", playbooks_list, 0},
    {"POST", "/api/v1/playbooks", playbooks_add, API_ADMIN | API_CHANGE},
    {"DELETE", "/api/v1/playbooks/{name}", playbooks_delete, API_ADMIN | API_CHANGE},
    {NULL, NULL, NULL, 0},
};
