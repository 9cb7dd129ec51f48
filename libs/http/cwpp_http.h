/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_http: the health and metrics listener every service runs (libmicrohttpd, its own
 * polling thread):
 *   GET /healthz  200 "ok" while the process runs its loop (liveness)
 *   GET /readyz   200 when the service says it is ready (its dependencies answer), else 503
 *   GET /metrics  Prometheus text exposition of the registry
 *
 * Metrics are counters, gauges and histograms registered by name (label pairs written
 * into the name, e.g. cwpp_ingest_rejected_total{reason="invalid_json"}). Updates are
 * lock-free atomics and may come from any thread; registration takes a mutex and returns
 * the same metric for the same name, so lazily registering per label value is cheap.
 */
#ifndef CWPP_HTTP_H
#define CWPP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_util.h"

typedef struct cwpp_metrics cwpp_metrics_t;
typedef struct cwpp_metric  cwpp_metric_t;

/* Returns NULL on allocation failure. */
cwpp_metrics_t *cwpp_metrics_new(void);
/* Accepts NULL. No metric of the registry may be used afterwards. */
void cwpp_metrics_destroy(cwpp_metrics_t *m);

/* Registration: name may carry labels ("x_total{reason=\"a\"}"); help is shared by the
 * family. Returns the metric, or NULL on allocation failure (updates on NULL are no-ops). */
cwpp_metric_t *cwpp_counter(cwpp_metrics_t *m, const char *name, const char *help);
cwpp_metric_t *cwpp_gauge(cwpp_metrics_t *m, const char *name, const char *help);
/* bounds: ascending upper bounds; copied. */
cwpp_metric_t *cwpp_histogram(cwpp_metrics_t *m, const char *name, const char *help,
                              const double *bounds, size_t nbounds);

void    cwpp_metric_add(cwpp_metric_t *c, int64_t n);   /* counter or gauge */
void    cwpp_metric_set(cwpp_metric_t *g, int64_t v);   /* gauge */
void    cwpp_metric_observe(cwpp_metric_t *h, double v); /* histogram */
int64_t cwpp_metric_value(const cwpp_metric_t *c);      /* counter/gauge value, for tests */

/* Renders the exposition text into out. Returns 0 or CWPP_ENOMEM. */
int cwpp_metrics_render(cwpp_metrics_t *m, cwpp_buf_t *out);

typedef struct cwpp_http cwpp_http_t;

/* Called from the HTTP thread for /readyz: return 1 when ready; may fill reason. */
typedef int (*cwpp_ready_fn)(void *opaque, char *reason, size_t reason_size);

/* Starts listening on address:port (port 0 = do not listen; returns a stopped server).
 * Returns NULL with errstr on failure (address in use, bad address). */
cwpp_http_t *cwpp_http_start(const char *address, int port, cwpp_metrics_t *metrics,
                             cwpp_ready_fn ready, void *opaque, char *errstr,
                             size_t errstr_size);
/* Port actually bound (useful with port 0 in tests: see cwpp_http_start_any). */
int cwpp_http_port(const cwpp_http_t *h);
/* Stops the listener and frees it. Accepts NULL. */
void cwpp_http_stop(cwpp_http_t *h);

#endif /* CWPP_HTTP_H */
