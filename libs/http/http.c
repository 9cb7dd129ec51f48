/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c: a metric registry (a mutex-guarded list, atomics for values) and a three-route
 * libmicrohttpd server. Rendering groups metrics of one family (name before '{') under
 * one HELP/TYPE header, in registration order.
 */
#include "cwpp_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype_t;

struct cwpp_metric {
    char           *name;    /* full name with labels */
    char           *family;  /* name without labels */
    char           *labels;  /* "reason=\"a\"" or "" */
    char           *help;
    mtype_t         type;
    atomic_llong    value;   /* counter/gauge */
    double         *bounds;  /* histogram upper bounds */
    size_t          nbounds;
    atomic_llong   *buckets; /* nbounds + 1 (the +Inf bucket), non-cumulative */
    atomic_llong    count;
    _Atomic double  sum;
    cwpp_metric_t  *next;
};

struct cwpp_metrics {
    pthread_mutex_t lock;
    cwpp_metric_t  *head, *tail;
};

cwpp_metrics_t *cwpp_metrics_new(void)
{
    cwpp_metrics_t *m = calloc(1, sizeof(*m));

    if (m != NULL)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void metric_free(cwpp_metric_t *x)
{
    free(x->name);
    free(x->family);
    free(x->labels);
    free(x->help);
    free(x->bounds);
    free(x->buckets);
    free(x);
}

void cwpp_metrics_destroy(cwpp_metrics_t *m)
{
    cwpp_metric_t *x, *n;

    if (m == NULL)
        return;
    for (x = m->head; x != NULL; x = n) {
        n = x->next;
        metric_free(x);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static cwpp_metric_t *reg(cwpp_metrics_t *m, const char *name, const char *help, mtype_t t,
                          const double *bounds, size_t nbounds)
{
    cwpp_metric_t *x;
    const char    *brace;

    if (m == NULL)
        return NULL;
    pthread_mutex_lock(&m->lock);
    for (x = m->head; x != NULL; x = x->next) {
        if (strcmp(x->name, name) == 0) {
            pthread_mutex_unlock(&m->lock);
            return x;
        }
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        goto out;
    brace = strchr(name, '{');
    x->name = strdup(name);
    x->family = brace != NULL ? strndup(name, (size_t)(brace - name)) : strdup(name);
    if (brace != NULL) {
        size_t l = strlen(brace);
        x->labels = l >= 2 ? strndup(brace + 1, l - 2) : strdup("");
    } else {
        x->labels = strdup("");
    }
    x->help = strdup(help != NULL ? help : "");
    x->type = t;
    if (t == M_HISTOGRAM) {
        x->bounds = malloc(sizeof(double) * (nbounds ? nbounds : 1));
        x->buckets = calloc(nbounds + 1, sizeof(atomic_llong));
        x->nbounds = nbounds;
        if (x->bounds != NULL && nbounds > 0)
            memcpy(x->bounds, bounds, sizeof(double) * nbounds);
    }
    if (x->name == NULL || x->family == NULL || x->labels == NULL || x->help == NULL ||
        (t == M_HISTOGRAM && (x->bounds == NULL || x->buckets == NULL))) {
        metric_free(x);
        x = NULL;
        goto out;
    }
    if (m->tail != NULL)
        m->tail->next = x;
    else
        m->head = x;
    m->tail = x;
out:
    pthread_mutex_unlock(&m->lock);
    return x;
}

cwpp_metric_t *cwpp_counter(cwpp_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, M_COUNTER, NULL, 0);
}

cwpp_metric_t *cwpp_gauge(cwpp_metrics_t *m, const char *name, const char *help)
{
    return reg(m, name, help, M_GAUGE, NULL, 0);
}

cwpp_metric_t *cwpp_histogram(cwpp_metrics_t *m, const char *name, const char *help,
                              const double *bounds, size_t nbounds)
{
    return reg(m, name, help, M_HISTOGRAM, bounds, nbounds);
}

void cwpp_metric_add(cwpp_metric_t *c, int64_t n)
{
    if (c != NULL)
        atomic_fetch_add(&c->value, n);
}

void cwpp_metric_set(cwpp_metric_t *g, int64_t v)
{
    if (g != NULL)
        atomic_store(&g->value, v);
}

void cwpp_metric_observe(cwpp_metric_t *h, double v)
{
    size_t i;
    double old;

    if (h == NULL || h->type != M_HISTOGRAM)
        return;
    for (i = 0; i < h->nbounds && v > h->bounds[i]; i++)
        ;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->count, 1);
    old = atomic_load(&h->sum);
    while (!atomic_compare_exchange_weak(&h->sum, &old, old + v))
        ;
}

int64_t cwpp_metric_value(const cwpp_metric_t *c)
{
    return c != NULL ? atomic_load(&((cwpp_metric_t *)c)->value) : 0;
}

static int appendf(cwpp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(cwpp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || cwpp_buf_reserve(b, (size_t)n + 1) != CWPP_OK)
        return CWPP_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CWPP_OK;
}

static const char *type_name(mtype_t t)
{
    return t == M_COUNTER ? "counter" : t == M_GAUGE ? "gauge" : "histogram";
}

int cwpp_metrics_render(cwpp_metrics_t *m, cwpp_buf_t *out)
{
    cwpp_metric_t *x, *y;
    int            rc = CWPP_OK;

    pthread_mutex_lock(&m->lock);
    for (x = m->head; x != NULL && rc == CWPP_OK; x = x->next) {
        int seen = 0;

        /* Print each family once, at its first member, then all its members. */
        for (y = m->head; y != x; y = y->next)
            if (strcmp(y->family, x->family) == 0)
                seen = 1;
        if (seen)
            continue;
        rc |= appendf(out, "# HELP %s %s\n# TYPE %s %s\n", x->family, x->help, x->family,
                      type_name(x->type));
        for (y = x; y != NULL && rc == CWPP_OK; y = y->next) {
            if (strcmp(y->family, x->family) != 0)
                continue;
            if (y->type != M_HISTOGRAM) {
                rc |= appendf(out, "%s %lld\n", y->name, (long long)atomic_load(&y->value));
            } else {
                long long cum = 0;
                size_t    i;
                const char *sep = y->labels[0] ? "," : "";

                for (i = 0; i <= y->nbounds; i++) {
                    cum += atomic_load(&y->buckets[i]);
                    if (i < y->nbounds)
                        rc |= appendf(out, "%s_bucket{%s%sle=\"%g\"} %lld\n", y->family,
                                      y->labels, sep, y->bounds[i], cum);
                    else
                        rc |= appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", y->family,
                                      y->labels, sep, cum);
                }
                if (y->labels[0]) {
                    rc |= appendf(out, "%s_sum{%s} %g\n", y->family, y->labels,
                                  atomic_load(&y->sum));
                    rc |= appendf(out, "%s_count{%s} %lld\n", y->family, y->labels,
                                  (long long)atomic_load(&y->count));
                } else {
                    rc |= appendf(out, "%s_sum %g\n", y->family, atomic_load(&y->sum));
                    rc |= appendf(out, "%s_count %lld\n", y->family,
                                  (long long)atomic_load(&y->count));
                }
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc == CWPP_OK ? CWPP_OK : CWPP_ENOMEM;
}

/* ---------------------------------------------------------------------- server */

struct cwpp_http {
    struct MHD_Daemon *d;
    cwpp_metrics_t    *metrics;
    cwpp_ready_fn      ready;
    void              *opaque;
    int                port;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r;
    enum MHD_Result      ret;

    r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    cwpp_http_t *h = cls;

    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n", 19,
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/healthz") == 0)
        return reply(c, MHD_HTTP_OK, "text/plain", "ok\n", 3, MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/readyz") == 0) {
        char reason[256] = "not ready";
        char body[300];
        int  ok = h->ready != NULL ? h->ready(h->opaque, reason, sizeof(reason)) : 1;

        if (ok)
            return reply(c, MHD_HTTP_OK, "text/plain", "ready\n", 6, MHD_RESPMEM_PERSISTENT);
        snprintf(body, sizeof(body), "%s\n", reason);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body, strlen(body),
                     MHD_RESPMEM_MUST_COPY);
    }
    if (strcmp(url, "/metrics") == 0) {
        cwpp_buf_t     b = {0};
        unsigned char *p;
        size_t         len;

        if (cwpp_metrics_render(h->metrics, &b) != CWPP_OK) {
            cwpp_buf_free(&b);
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n",
                         14, MHD_RESPMEM_PERSISTENT);
        }
        p = cwpp_buf_detach(&b, &len);
        if (p == NULL)
            return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", "", 0,
                         MHD_RESPMEM_PERSISTENT);
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", p, len,
                     MHD_RESPMEM_MUST_FREE);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

cwpp_http_t *cwpp_http_start(const char *address, int port, cwpp_metrics_t *metrics,
                             cwpp_ready_fn ready, void *opaque, char *errstr,
                             size_t errstr_size)
{
    cwpp_http_t       *h;
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    h->metrics = metrics;
    h->ready = ready;
    h->opaque = opaque;
    if (port < 0)
        return h; /* disabled */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address != NULL && *address ? address : "127.0.0.1",
                  &sa.sin_addr) != 1) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                    "http.address \"%s\" is not an IPv4 address", address);
        free(h);
        return NULL;
    }
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                            NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
    if (h->d == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                    "cannot listen on %s:%d for health and metrics (port in use?)",
                    address, port);
        free(h);
        return NULL;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? info->port : port;
    return h;
}

int cwpp_http_port(const cwpp_http_t *h)
{
    return h != NULL ? h->port : -1;
}

void cwpp_http_stop(cwpp_http_t *h)
{
    if (h == NULL)
        return;
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    free(h);
}
