/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c: cwpp-api's HTTP side on libmicrohttpd (a pool of api.threads request
 * threads; TLS through its GnuTLS support when api.tls.cert.file is set).
 *
 * Each request: the body is read up to api.body.max.bytes (a longer one is answered 413
 * as soon as its length is known), must be JSON (415 otherwise) and parse (400); the path
 * is matched against the route tables of the resource files ({…} matches one segment; a
 * path that matches with another method is 405, none 404); every route but the public
 * ones authenticates (auth.c: 401), an admin route refuses non-admins (403), a change
 * refuses viewers (403) and, when authenticated by the session cookie, a request without
 * the session's X-CSRF-Token (403). The handler then runs with a pooled database
 * connection; its answer goes out with Cache-Control: no-store. Every request is counted
 * per route, method and status, timed per route, and logged as one JSON line without its
 * body (passwords never reach a log).
 *
 * The same listener answers /healthz, /readyz, /metrics and the OpenAPI document, and,
 * unauthenticated, the analysts' console: / and /console/<path> (console.c); those
 * answers set their own Cache-Control (no-cache, with ETag and 304) instead of no-store.
 */
#include "api_internal.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "cwpp_log.h"

extern const unsigned char cwpp_openapi_yaml[];
extern const size_t        cwpp_openapi_yaml_len;

typedef struct conn_ctx {
    char  *body;
    size_t len, cap;
    int    too_large;
    int64_t t0;
} conn_ctx_t;

static const api_route_t *const TABLES[] = {
    api_auth_routes, api_events_routes, api_respond_routes, api_alerts_routes,
    api_whitelist_routes, api_exports_routes, api_admin_routes, api_merge_routes,
    api_notify_routes,
};

/* 1 when path matches pattern; fills ids with copies of the {…} segments into buf. */
static int match(const char *pattern, const char *path, char *buf, size_t size,
                 const char *ids[4])
{
    const char *p = pattern, *s = path;
    size_t      used = 0;
    int         n = 0;

    while (*p != '\0' && *s != '\0') {
        if (*p == '{') {
            const char *end = strchr(s, '/');
            size_t      len = end != NULL ? (size_t)(end - s) : strlen(s);

            if (len == 0 || n >= 4 || used + len + 1 > size)
                return 0;
            memcpy(buf + used, s, len);
            buf[used + len] = '\0';
            ids[n++] = buf + used;
            used += len + 1;
            s += len;
            p = strchr(p, '}');
            if (p == NULL)
                return 0;
            p++;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, api_resp_t *rs)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;
    char                *text = NULL;
    size_t               len = 0, i;

    if (rs->doc != NULL) {
        text = json_dumps(rs->doc, JSON_COMPACT);
        len = text != NULL ? strlen(text) : 0;
    } else if (rs->raw != NULL) {
        text = rs->raw;
        len = rs->raw_len;
        rs->raw = NULL;
    }
    r = MHD_create_response_from_buffer(len, text != NULL ? text : (char *)"",
                                        text != NULL ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            rs->ctype != NULL ? rs->ctype : "application/json");
    for (i = 0; i < rs->nheaders; i++)
        if (strcasecmp(rs->hname[i], "Cache-Control") == 0)
            break;
    if (i == rs->nheaders)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    for (i = 0; i < rs->nheaders; i++)
        MHD_add_response_header(r, rs->hname[i], rs->hvalue[i]);
    ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void client_of(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

    snprintf(out, size, "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static void count(api_t *a, const char *method, const char *route, int status, double secs)
{
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                    1, 2.5, 5, 10};
    char name[512];

    snprintf(name, sizeof(name),
             "cwpp_api_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"}", route, method,
             status);
    cwpp_metric_add(cwpp_counter(a->metrics, name, "Requests answered, per route and status."),
                    1);
    snprintf(name, sizeof(name), "cwpp_api_request_seconds{route=\"%s\"}", route);
    cwpp_metric_observe(cwpp_histogram(a->metrics, name, "Time to answer, per route.", bounds,
                                       sizeof(bounds) / sizeof(bounds[0])),
                        secs);
}

/* The built-in routes of every service on the API's own listener. */
static int builtin(api_t *a, const char *method, const char *path, api_resp_t *rs)
{
    if (strcmp(method, "GET") != 0)
        return 0;
    if (strcmp(path, "/healthz") == 0) {
        rs->status = 200;
        rs->raw = strdup("ok\n");
        rs->raw_len = 3;
        rs->ctype = "text/plain";
        return 1;
    }
    if (strcmp(path, "/readyz") == 0) {
        char why[256] = "";
        int  ok = api_cmd_ready(a->cmd, why, sizeof(why)) &&
                 cwpp_pg_ping(a->conf->common.pg_dsn, 2);

        if (ok)
            snprintf(why, sizeof(why), "ready");
        else if (why[0] == '\0')
            snprintf(why, sizeof(why), "PostgreSQL is not reachable");
        rs->status = ok ? 200 : 503;
        rs->raw = malloc(strlen(why) + 2);
        if (rs->raw != NULL)
            rs->raw_len = (size_t)sprintf(rs->raw, "%s\n", why);
        rs->ctype = "text/plain";
        return 1;
    }
    if (strcmp(path, "/metrics") == 0) {
        cwpp_buf_t b = {0};

        if (cwpp_metrics_render(a->metrics, &b) != CWPP_OK) {
            cwpp_buf_free(&b);
            return api_problem(rs, 500, "internal", "cannot render metrics"), 1;
        }
        rs->status = 200;
        rs->raw = (char *)b.data;
        rs->raw_len = b.len;
        rs->ctype = "text/plain; version=0.0.4";
        return 1;
    }
    if (strcmp(path, "/api/v1/openapi.yaml") == 0) {
        rs->status = 200;
        rs->raw = malloc(cwpp_openapi_yaml_len);
        if (rs->raw != NULL) {
            memcpy(rs->raw, cwpp_openapi_yaml, cwpp_openapi_yaml_len);
            rs->raw_len = cwpp_openapi_yaml_len;
        }
        rs->ctype = "application/yaml";
        return 1;
    }
    return 0;
}

/* Finds the route of method+path; *wrong_method set when only another method matches. */
static const api_route_t *route_of(const char *method, const char *path, char *buf,
                                   size_t size, const char *ids[4], int *wrong_method)
{
    size_t t;

    *wrong_method = 0;
    for (t = 0; t < sizeof(TABLES) / sizeof(TABLES[0]); t++) {
        const api_route_t *r;

        for (r = TABLES[t]; r->pattern != NULL; r++) {
            const char *tmp[4] = {0};

            if (!match(r->pattern, path, buf, size, tmp))
                continue;
            if (strcmp(r->method, method) != 0) {
                *wrong_method = 1;
                continue;
            }
            memcpy(ids, tmp, sizeof(tmp));
            return r;
        }
    }
    return NULL;
}

static void handle(api_t *a, struct MHD_Connection *conn, const char *method, const char *url,
                   conn_ctx_t *cx, api_resp_t *rs, const char **route_name, char *who, size_t who_size)
{
    char               segs[2048], client[64];
    const char        *ids[4] = {0};
    const api_route_t *r;
    api_req_t          rq;
    api_user_t         u;
    int                wrong = 0, rc;

    memset(&u, 0, sizeof(u));
    *route_name = "unmatched";
    if (builtin(a, method, url, rs)) {
        *route_name = url;
        return;
    }
    if (api_console_answer(a->console, method, url,
                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match"),
                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       "If-Modified-Since"),
                           rs)) {
        *route_name = strcmp(url, "/") == 0 ? "/" : "/console/{path}";
        return;
    }
    if (strlen(url) > 1024 || (r = route_of(method, url, segs, sizeof(segs), ids, &wrong)) == NULL) {
        if (wrong)
            api_problem(rs, 405, "method_not_allowed", "%s is not allowed on this path.", method);
        else
            api_problem(rs, 404, "not_found", "There is no such resource.");
        return;
    }
    *route_name = r->pattern;
    if (cx->too_large) {
        api_problem(rs, 413, "too_large", "The body is larger than %lld bytes.",
                    (long long)a->conf->body_max);
        return;
    }
    memset(&rq, 0, sizeof(rq));
    rq.api = a;
    rq.method = method;
    rq.path = url;
    rq.route = r->pattern;
    memcpy(rq.ids, ids, sizeof(ids));
    rq.conn = conn;
    client_of(conn, client, sizeof(client));
    rq.client = client;
    if (cx->len > 0) {
        const char  *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        json_error_t jerr;

        if (ct == NULL || strncmp(ct, "application/json", 16) != 0) {
            api_problem(rs, 415, "unsupported_media_type",
                        "Send the body as application/json.");
            return;
        }
        rq.body = json_loadb(cx->body, cx->len, JSON_REJECT_DUPLICATES, &jerr);
        if (rq.body == NULL) {
            api_problem(rs, 400, "bad_json", "The body is not valid JSON: %s (line %d).",
                        jerr.text, jerr.line);
            return;
        }
        if (!json_is_object(rq.body)) {
            json_decref(rq.body);
            api_problem(rs, 400, "bad_request", "The body must be a JSON object.");
            return;
        }
    }
    rq.pg = api_pool_get(a->pool);
    if (!(r->flags & API_PUBLIC)) {
        rc = api_authenticate(&rq, rs, &u);
        if (rc != 1)
            goto out;
        rq.user = &u;
        snprintf(who, who_size, "%s", u.name);
        if ((r->flags & API_ADMIN) && !u.is_admin) {
            api_problem(rs, 403, "forbidden", "Only an admin may do this.");
            goto out;
        }
        if ((r->flags & API_CHANGE) && !(r->flags & API_SELF) && strcmp(u.role, "viewer") == 0) {
            api_problem(rs, 403, "forbidden", "A viewer may read but not change anything.");
            goto out;
        }
        if (u.via_session && strcmp(method, "GET") != 0) {
            const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");

            if (t == NULL || strlen(t) != strlen(u.csrf) || sodium_memcmp(t, u.csrf, strlen(t)) != 0) {
                api_problem(rs, 403, "csrf", "A change made with the session cookie needs the "
                            "session's X-CSRF-Token header.");
                goto out;
            }
        }
    }
    if (r->fn(&rq, rs) != 0 || rs->status == 0) {
        api_resp_clear(rs);
        cwpp_log(CWPP_LOG_ERROR, "api_handler_failed", "%s %s failed", method, r->pattern);
        api_problem(rs, 500, "internal", "The request failed inside the server.");
    }
out:
    api_pool_put(a->pool, rq.pg);
    json_decref(rq.body);
    api_user_clear(&u);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    api_t      *a = cls;
    conn_ctx_t *cx = *con_cls;
    api_resp_t  rs;
    const char *route = "unmatched";
    char        who[72] = "";
    enum MHD_Result ret;

    (void)version;
    if (cx == NULL) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

        cx = calloc(1, sizeof(*cx));
        if (cx == NULL)
            return MHD_NO;
        cx->t0 = cwpp_mono_ms();
        if (cl != NULL && strtoll(cl, NULL, 10) > a->conf->body_max)
            cx->too_large = 1;
        *con_cls = cx;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!cx->too_large && cx->len + *upload_size <= (size_t)a->conf->body_max) {
            if (cx->len + *upload_size > cx->cap) {
                size_t cap = (cx->len + *upload_size) * 2;
                char  *nb;

                if (cap > (size_t)a->conf->body_max)
                    cap = (size_t)a->conf->body_max;
                nb = realloc(cx->body, cap);
                if (nb == NULL)
                    return MHD_NO;
                cx->body = nb;
                cx->cap = cap;
            }
            memcpy(cx->body + cx->len, upload_data, *upload_size);
            cx->len += *upload_size;
        } else {
            cx->too_large = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&rs, 0, sizeof(rs));
    handle(a, conn, method, url, cx, &rs, &route, who, sizeof(who));
    ret = send_resp(conn, &rs);
    count(a, method, route, rs.status, (double)(cwpp_mono_ms() - cx->t0) / 1000.0);
    cwpp_log(rs.status >= 500 ? CWPP_LOG_WARN : CWPP_LOG_INFO, "api_request",
             "%s %s -> %d in %lld ms%s%s", method, route, rs.status,
             (long long)(cwpp_mono_ms() - cx->t0), who[0] != '\0' ? " by " : "", who);
    api_resp_clear(&rs);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    conn_ctx_t *cx = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (cx != NULL) {
        free(cx->body);
        free(cx);
        *con_cls = NULL;
    }
}

static char *read_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE  *f = fopen(path, "rb");
    char  *s;
    long   n;

    if (f == NULL) {
        snprintf(errstr, errstr_size, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = n >= 0 && n < 1024 * 1024 ? malloc((size_t)n + 1) : NULL;
    if (s == NULL || fread(s, 1, (size_t)n, f) != (size_t)n) {
        snprintf(errstr, errstr_size, "cannot read %s", path);
        free(s);
        fclose(f);
        return NULL;
    }
    s[n] = '\0';
    fclose(f);
    return s;
}

int api_server_start(api_t *a, char *errstr, size_t errstr_size)
{
    struct sockaddr_in sin;
    unsigned int       flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_USE_ERROR_LOG;
    int                tls = a->conf->tls_cert_file[0] != '\0';

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)a->conf->port);
    if (inet_pton(AF_INET, a->conf->address, &sin.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "api.address \"%s\" is not an IPv4 address",
                 a->conf->address);
        return CWPP_ECONFIG;
    }
    if (tls) {
        if ((a->tls_cert = read_file(a->conf->tls_cert_file, errstr, errstr_size)) == NULL ||
            (a->tls_key = read_file(a->conf->tls_key_file, errstr, errstr_size)) == NULL)
            return CWPP_ECONFIG;
        flags |= MHD_USE_TLS;
    }
    a->daemon = tls
        ? MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, &sin,
                           MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->conf->threads,
                           MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)a->conf->idle_s,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->conf->max_conns,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                           MHD_OPTION_HTTPS_MEM_CERT, a->tls_cert,
                           MHD_OPTION_HTTPS_MEM_KEY, a->tls_key,
                           MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                           MHD_OPTION_END)
        : MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, &sin,
                           MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->conf->threads,
                           MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)a->conf->idle_s,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->conf->max_conns,
                           MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                           MHD_OPTION_END);
    if (a->daemon == NULL) {
        snprintf(errstr, errstr_size, "cannot listen on %s:%lld%s (in use?)", a->conf->address,
                 (long long)a->conf->port, tls ? " with TLS (certificate and key valid?)" : "");
        return CWPP_ECONFIG;
    }
    return CWPP_OK;
}

void api_server_stop(api_t *a)
{
    if (a->daemon != NULL)
        MHD_stop_daemon(a->daemon);
    a->daemon = NULL;
    free(a->tls_cert);
    free(a->tls_key);
    a->tls_cert = a->tls_key = NULL;
}
