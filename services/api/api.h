/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-api: the analysts' API (docs/api.md, docs/api/openapi.yaml). The only way people
 * act on the desk: every request is authenticated (a bearer token or a browser session),
 * every read is scoped to the caller's accounts, and every change is a Command record on
 * <prefix>commands whose actor is the authenticated user, answered on
 * <prefix>command-results.
 *
 * The parts:
 *   server.c   libmicrohttpd (TLS through GnuTLS when a certificate is configured): the
 *              route table, bodies (bounded: 413), authentication, CSRF, metrics per route
 *   auth.c     login/logout/me, sessions and API tokens, Argon2id passwords, throttling
 *              and lockout
 *   pool.c     the PostgreSQL connections (one per request thread, the cwpp_api role)
 *   cmd.c      the command transport: produce a Command, await its CommandResult
 *   util.c     problem details, query arguments, cursors, JSON helpers (below)
 *   events.c, respond.c, alerts.c, whitelist.c, exports.c, admin.c, merge.c (event.merge,
 *              event.detach), notify.c (an account's notification setting): the resources, each
 *              a route table (api_<area>_routes) of handlers written against this header
 *
 * A handler runs on a request thread with rq filled in and fills rs. It returns 0 after
 * setting rs (an answer or a problem); a non-zero return is an internal error the server
 * answers with a 500 problem and logs (the handler logs nothing itself).
 */
#ifndef CWPP_API_H
#define CWPP_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_pg.h"
#include "cwpp_util.h"

typedef struct api api_t;

/* The authenticated caller. */
typedef struct api_user {
    char        name[72];
    char        role[16];     /* "admin", "analyst" or "viewer" */
    int         is_admin;     /* role admin: every account */
    /* the accounts granted (user_accounts), as a JSON array of strings */
    json_t     *accounts;
    /* the same as a PostgreSQL text[] literal for a `$n::text[]` parameter; NULL for an
     * admin (every account): use API_SCOPE below */
    const char *scope;
    char        token_id[40]; /* the token or session this request came with */
    int         via_session;  /* 1: the session cookie (changes need the CSRF header) */
    char        csrf[72];     /* the CSRF token that session's changes must carry */
    char       *scope_buf;    /* owns scope */
} api_user_t;

/*
 * SQL for "col is an account the caller holds", with $n the parameter given
 * api_scope(rq) (NULL for admins). Example:
 *   "... WHERE " API_SCOPE("e.account_id", "1") " AND e.event_id = $2"
 */
#define API_SCOPE(col, n) "($" n "::text[] IS NULL OR " col " = ANY($" n "::text[]))"

typedef struct api_req {
    api_t            *api;
    const char       *method;   /* "GET", "POST", "DELETE" */
    const char       *path;     /* the URL path, decoded */
    const char       *route;    /* the route's pattern, for metrics ("/api/v1/events/{id}") */
    const char       *ids[4];   /* the path's {…} segments in order (URL-decoded) */
    const api_user_t *user;     /* NULL only on API_PUBLIC routes */
    json_t           *body;     /* the JSON body when one was sent (an object); else NULL */
    cwpp_pg_t        *pg;       /* this thread's database connection (role cwpp_api) */
    const char       *client;   /* the client's address as text */
    void             *conn;     /* the libmicrohttpd connection (server.c only) */
} api_req_t;

#define API_HEADER_MAX 8
typedef struct api_resp {
    int         status;       /* HTTP status */
    json_t     *doc;          /* a JSON body (owned), or ... */
    char       *raw;          /* ... raw bytes (malloc'd, owned) of type ctype */
    size_t      raw_len;
    const char *ctype;        /* static string */
    /* extra headers: names static, values malloc'd (owned) */
    const char *hname[API_HEADER_MAX];
    char       *hvalue[API_HEADER_MAX];
    size_t      nheaders;
} api_resp_t;

typedef int (*api_handler_fn)(api_req_t *rq, api_resp_t *rs);

enum {
    API_PUBLIC = 1 << 0, /* no authentication (login, health, the OpenAPI document) */
    API_CHANGE = 1 << 1, /* changes something: viewers get 403, sessions need X-CSRF-Token */
    API_ADMIN  = 1 << 2, /* admins only: others get 403 */
    API_SELF   = 1 << 3  /* a change to the caller's own credentials: allowed to viewers */
};

typedef struct api_route {
    const char     *method;  /* "GET", "POST", "DELETE" */
    const char     *pattern; /* "/api/v1/events/{id}/alerts": {…} matches one segment */
    api_handler_fn  fn;
    unsigned        flags;
} api_route_t;

/* The route tables of the resource files (a NULL-pattern entry ends each). */
extern const api_route_t api_auth_routes[];
extern const api_route_t api_events_routes[];
extern const api_route_t api_respond_routes[];
extern const api_route_t api_alerts_routes[];
extern const api_route_t api_whitelist_routes[];
extern const api_route_t api_exports_routes[];
extern const api_route_t api_admin_routes[];
extern const api_route_t api_merge_routes[];
extern const api_route_t api_notify_routes[];

/* ------------------------------------------------------------- answers (util.c) */

/* A JSON answer (doc stolen). Returns 0. */
int api_json(api_resp_t *rs, int status, json_t *doc);

/*
 * An RFC 9457 problem: {"type", "title", "status", "detail", "code"}, content type
 * application/problem+json. code is the stable machine-readable name ("not_found",
 * "bad_request", "bad_filter", "refused", "conflict", "precondition_failed",
 * "too_large", "unauthorized", "forbidden", "unavailable", ...); detail one sentence.
 * Returns 0, so a handler may `return api_problem(...)`.
 */
int api_problem(api_resp_t *rs, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The 404 for an object the caller does not see (missing, or another tenant's: the same
 * answer, never a 403 that confirms it exists). what: "event", "alert", ... Returns 0. */
int api_not_found(api_resp_t *rs, const char *what, const char *id);

/* Adds a header to rs (value copied). */
void api_header(api_resp_t *rs, const char *name, const char *value);

/* Frees what rs holds (body, raw bytes, header values) and zeroes it for reuse. */
void api_resp_clear(api_resp_t *rs);

/* --------------------------------------------------------- the request (util.c) */

/* The query argument name, or NULL. */
const char *api_arg(const api_req_t *rq, const char *name);
/* A request header, or NULL. */
const char *api_req_header(const api_req_t *rq, const char *name);

/*
 * 1 when every query argument of rq is in known (NULL-terminated); else 0 after a 400
 * problem "unknown_parameter" naming it.
 */
int api_args_known(const api_req_t *rq, api_resp_t *rs, const char *const *known);
/* 1 when rq has a JSON object body whose keys are all in known; else 0 after a 400
 * problem ("bad_request": no body / not an object; "unknown_field" naming the key). */
int api_body_known(const api_req_t *rq, api_resp_t *rs, const char *const *known);

/* The "limit" argument: def when absent; 1..max; else 0 after a 400 "bad_limit". */
int api_limit(const api_req_t *rq, api_resp_t *rs, int def, int max, int *out);

/*
 * Keyset cursors: an opaque token carrying a JSON array of the last row's sort key, bound
 * to the query it pages (the route and its filters, so a cursor of another query is
 * refused). api_cursor_make returns a malloc'd token (state borrowed) or NULL;
 * api_cursor_take returns 1 with *state (owned; NULL when there is no "cursor"
 * argument), or 0 after a 400 "bad_cursor".
 */
char *api_cursor_make(const api_req_t *rq, const json_t *state);
int   api_cursor_take(const api_req_t *rq, api_resp_t *rs, json_t **state);

/* The caller's scope parameter for API_SCOPE: NULL for admins, else the text[] literal. */
const char *api_scope(const api_req_t *rq);
/* 1 when the caller holds account (admins hold every account). */
int api_holds(const api_req_t *rq, const char *account);

/* ------------------------------------------------------------ SQL (util.c) */

/*
 * Runs sql (n text parameters, NULL for SQL NULL) on the request's connection and
 * expects rows. Returns 0 with *res (PQclear it); else -1 after a 503 "unavailable"
 * problem (database unreachable) or a 400 "bad_request" (the server refused a value:
 * classes 22/23) in rs.
 */
int api_sql(api_req_t *rq, api_resp_t *rs, const char *sql, int n, const char *const *p,
            PGresult **res);

/* The rows of r as a JSON array of objects, column name -> value. Column types: bool
 * and integers become JSON true/false/numbers, json/jsonb columns are parsed, NULL is
 * null, the rest strings. NULL on allocation failure. */
json_t *api_rows(const PGresult *r);
/* Row i of r as such an object. */
json_t *api_row(const PGresult *r, int i);

/* ---------------------------------------------------------- commands (cmd.c) */

/*
 * Issues a command to service ("responder", "whitelist", "exporter", "correlator") of
 * type with payload (stolen) as the authenticated user, and waits for its answer
 * (api.command.timeout.ms). Returns 1 with *answer (owned): {"command_id", "status": "ok"|"error",
 * "message", "result": {...}}; or 0 with rs set: 202 {"command_id", "status":"pending"}
 * when no answer came in time (GET /api/v1/commands/{id} tells it later), 503 when the
 * command could not be sent.
 */
int api_command(api_req_t *rq, api_resp_t *rs, const char *service, const char *type,
                json_t *payload, json_t **answer);

/*
 * The usual answer to a command's answer (stolen): "ok" -> 200 with the answer;
 * "error" -> 422 problem "refused" with the service's sentence as detail and the
 * command_id. Returns 0.
 */
int api_answer(api_resp_t *rs, json_t *answer);

#endif /* CWPP_API_H */
