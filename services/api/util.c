/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c: the helpers every handler of cwpp-api uses (api.h): answers and RFC 9457
 * problems, query arguments and bodies checked against the names a route knows, limits,
 * keyset cursors, the caller's account scope, SQL on the request's connection and rows as
 * JSON.
 *
 * A cursor is base64url(JSON [route, filter digest, state]): the digest is a BLAKE2b of
 * the route and every query argument except cursor and limit, so a cursor replayed on
 * another query (or with other filters) is refused rather than giving a wrong page. It
 * carries nothing the caller could not see: the sort key of the last row they were
 * shown; scope is applied again on every page.
 */
#include "api_internal.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"

int api_json(api_resp_t *rs, int status, json_t *doc)
{
    json_decref(rs->doc);
    rs->status = status;
    rs->doc = doc;
    rs->ctype = "application/json";
    return 0;
}

static const char *title_of(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return "Error";
    }
}

int api_problem(api_resp_t *rs, int status, const char *code, const char *fmt, ...)
{
    char    detail[1024];
    char    type[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    /* a caller's value echoed and cut (%.128s) may end mid-character: JSON needs UTF-8 */
    cwpp_utf8_sanitize(detail);
    snprintf(type, sizeof(type), "/api/v1/problems/%s", code);
    api_json(rs, status,
             json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", title_of(status),
                       "status", status, "detail", detail, "code", code));
    rs->ctype = "application/problem+json";
    return 0;
}

int api_not_found(api_resp_t *rs, const char *what, const char *id)
{
    return api_problem(rs, 404, "not_found", "No %s \"%.128s\" exists among the accounts you hold.",
                       what, id);
}

void api_header(api_resp_t *rs, const char *name, const char *value)
{
    if (rs->nheaders >= API_HEADER_MAX)
        return;
    rs->hname[rs->nheaders] = name;
    rs->hvalue[rs->nheaders] = strdup(value);
    if (rs->hvalue[rs->nheaders] != NULL)
        rs->nheaders++;
}

void api_resp_clear(api_resp_t *rs)
{
    size_t i;

    json_decref(rs->doc);
    free(rs->raw);
    for (i = 0; i < rs->nheaders; i++)
        free(rs->hvalue[i]);
    memset(rs, 0, sizeof(*rs));
}

const char *api_arg(const api_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_req_header(const api_req_t *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

typedef struct arg_walk {
    const char *const *known;
    const char        *bad;
    json_t            *all; /* when collecting: name -> value */
} arg_walk_t;

static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    arg_walk_t *w = cls;
    size_t      i;

    (void)kind;
    if (w->all != NULL) {
        if (strcmp(key, "cursor") != 0 && strcmp(key, "limit") != 0)
            json_object_set_new(w->all, key, json_string(value != NULL ? value : ""));
        return MHD_YES;
    }
    for (i = 0; w->known != NULL && w->known[i] != NULL; i++)
        if (strcmp(w->known[i], key) == 0)
            return MHD_YES;
    w->bad = key;
    return MHD_NO;
}

int api_args_known(const api_req_t *rq, api_resp_t *rs, const char *const *known)
{
    arg_walk_t w = {known, NULL, NULL};

    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    if (w.bad == NULL)
        return 1;
    api_problem(rs, 400, "unknown_parameter", "\"%.64s\" is not a parameter of %s %s.", w.bad,
                rq->method, rq->route);
    return 0;
}

int api_body_known(const api_req_t *rq, api_resp_t *rs, const char *const *known)
{
    const char *key;
    json_t     *v;

    if (!json_is_object(rq->body)) {
        api_problem(rs, 400, "bad_request", "%s %s needs a JSON object as its body.", rq->method,
                    rq->route);
        return 0;
    }
    json_object_foreach(rq->body, key, v) {
        size_t i;
        int    ok = 0;

        for (i = 0; known[i] != NULL && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            api_problem(rs, 400, "unknown_field", "\"%.64s\" is not a field of %s %s.", key,
                        rq->method, rq->route);
            return 0;
        }
    }
    return 1;
}

int api_limit(const api_req_t *rq, api_resp_t *rs, int def, int max, int *out)
{
    const char *v = api_arg(rq, "limit");
    char       *end;
    long        n;

    if (v == NULL) {
        *out = def;
        return 1;
    }
    n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || n < 1 || n > max) {
        api_problem(rs, 400, "bad_limit", "limit must be a whole number from 1 to %d.", max);
        return 0;
    }
    *out = (int)n;
    return 1;
}

/* The digest binding a cursor to its query, as hex. */
static void query_digest(const api_req_t *rq, char out[33])
{
    arg_walk_t    w = {NULL, NULL, json_object()};
    unsigned char h[16];
    char         *s;

    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    json_object_set_new(w.all, "\x01route", json_string(rq->route));
    s = json_dumps(w.all, JSON_COMPACT | JSON_SORT_KEYS);
    crypto_generichash(h, sizeof(h), (const unsigned char *)(s != NULL ? s : ""),
                       s != NULL ? strlen(s) : 0, NULL, 0);
    sodium_bin2hex(out, 33, h, sizeof(h));
    free(s);
    json_decref(w.all);
}

char *api_cursor_make(const api_req_t *rq, const json_t *state)
{
    char    dig[33], *text, *out;
    json_t *doc;
    size_t  n, cap;

    query_digest(rq, dig);
    doc = json_pack("[s, O]", dig, state);
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return NULL;
    n = strlen(text);
    cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = malloc(cap);
    if (out != NULL)
        sodium_bin2base64(out, cap, (const unsigned char *)text, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(text);
    return out;
}

int api_cursor_take(const api_req_t *rq, api_resp_t *rs, json_t **state)
{
    const char   *v = api_arg(rq, "cursor");
    unsigned char buf[4096];
    size_t        n = 0;
    json_t       *doc;
    char          dig[33];

    *state = NULL;
    if (v == NULL)
        return 1;
    if (strlen(v) > 5000 ||
        sodium_base642bin(buf, sizeof(buf) - 1, v, strlen(v), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        goto bad;
    doc = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    query_digest(rq, dig);
    if (!json_is_array(doc) || json_array_size(doc) != 2 ||
        !json_is_string(json_array_get(doc, 0)) ||
        strcmp(json_string_value(json_array_get(doc, 0)), dig) != 0 ||
        !json_is_array(json_array_get(doc, 1))) {
        json_decref(doc);
        goto bad;
    }
    *state = json_incref(json_array_get(doc, 1));
    json_decref(doc);
    return 1;
bad:
    api_problem(rs, 400, "bad_cursor",
                "The cursor is not one this query gave (cursors are bound to their query's "
                "filters and sort).");
    return 0;
}

const char *api_scope(const api_req_t *rq)
{
    return rq->user != NULL ? rq->user->scope : "{}";
}

int api_holds(const api_req_t *rq, const char *account)
{
    size_t  i;
    json_t *a;

    if (rq->user == NULL || account == NULL)
        return 0;
    if (rq->user->is_admin)
        return 1;
    json_array_foreach(rq->user->accounts, i, a) {
        if (strcmp(json_string_value(a), account) == 0)
            return 1;
    }
    return 0;
}

int api_sql(api_req_t *rq, api_resp_t *rs, const char *sql, int n, const char *const *p,
            PGresult **res)
{
    char errstr[512];
    int  rc;

    *res = NULL;
    rc = cwpp_pg_ensure(rq->pg, errstr, sizeof(errstr));
    if (rc == CWPP_OK)
        rc = cwpp_pg_query(rq->pg, sql, n, p, PGRES_TUPLES_OK, res, errstr, sizeof(errstr));
    if (rc == CWPP_OK)
        return 0;
    if (rc == CWPP_EDATA) {
        api_problem(rs, 400, "bad_request", "The database refused a value of this request: %s",
                    errstr);
        return -1;
    }
    cwpp_log(CWPP_LOG_WARN, "api_sql_failed", "%s %s: %s", rq->method, rq->route, errstr);
    cwpp_pg_reset(rq->pg);
    api_problem(rs, 503, "unavailable", "The database is not answering; try again shortly.");
    return -1;
}

static json_t *cell(const PGresult *r, int i, int j)
{
    const char *v;
    Oid         t;

    if (PQgetisnull(r, i, j))
        return json_null();
    v = PQgetvalue(r, i, j);
    t = PQftype(r, j);
    switch (t) {
    case 16: /* bool */
        return json_boolean(v[0] == 't');
    case 20: case 21: case 23: /* int8, int2, int4 */
        return json_integer(strtoll(v, NULL, 10));
    case 700: case 701: case 1700: /* float4, float8, numeric */
        return json_real(strtod(v, NULL));
    case 114: case 3802: { /* json, jsonb */
        json_t *doc = json_loads(v, JSON_DECODE_ANY, NULL);

        return doc != NULL ? doc : json_string(v);
    }
    default:
        return json_string(v);
    }
}

json_t *api_row(const PGresult *r, int i)
{
    json_t *o = json_object();
    int     j;

    for (j = 0; o != NULL && j < PQnfields(r); j++)
        json_object_set_new(o, PQfname(r, j), cell(r, i, j));
    return o;
}

json_t *api_rows(const PGresult *r)
{
    json_t *a = json_array();
    int     i;

    for (i = 0; a != NULL && i < PQntuples(r); i++)
        json_array_append_new(a, api_row(r, i));
    return a;
}

int api_answer(api_resp_t *rs, json_t *answer)
{
    const char *st = json_string_value(json_object_get(answer, "status"));

    if (st != NULL && strcmp(st, "ok") == 0)
        return api_json(rs, 200, answer);
    api_problem(rs, 422, "refused", "%s",
                json_string_value(json_object_get(answer, "message")) != NULL
                    ? json_string_value(json_object_get(answer, "message"))
                    : "The service refused the change.");
    json_object_set(rs->doc, "command_id", json_object_get(answer, "command_id"));
    json_object_set(rs->doc, "result", json_object_get(answer, "result"));
    json_decref(answer);
    return 0;
}

void api_sha256(const char *s, unsigned char out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)s, strlen(s));
}

void api_random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];

    if (nbytes > sizeof(b))
        nbytes = sizeof(b);
    randombytes_buf(b, nbytes);
    sodium_bin2hex(out, 2 * nbytes + 1, b, nbytes);
}

void api_bytea_hex(const unsigned char in[32], char out[67])
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 65, in, 32);
}
