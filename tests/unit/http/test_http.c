/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http: the operability endpoints every service exposes (docs/architecture.md
 * "Guarantees and where each is kept"):
 * /healthz, /readyz following the service's readiness, Prometheus /metrics text with
 * counters, labelled families and histograms. A real libmicrohttpd server on a free
 * loopback port is queried over a socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cwpp_http.h"

static int ready_flag;

static int ready_fn(void *opaque, char *reason, size_t size)
{
    (void)opaque;
    if (!ready_flag)
        snprintf(reason, size, "PostgreSQL is not reachable");
    return ready_flag;
}

/* GETs path and returns the whole response (status line, headers, body). */
static char *get(int port, const char *path)
{
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    char               req[256];
    char              *resp = calloc(1, 65536);
    size_t             got = 0;
    ssize_t            n;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while ((n = read(fd, resp + got, 65535 - got)) > 0)
        got += (size_t)n;
    close(fd);
    return resp;
}

static void test_endpoints(void **state)
{
    cwpp_metrics_t *m = cwpp_metrics_new();
    char            err[256];
    cwpp_http_t    *h;
    char           *r;
    static const double b[] = {0.1, 1};
    cwpp_metric_t  *c, *hist;

    (void)state;
    c = cwpp_counter(m, "cwpp_test_consumed_total", "Records consumed.");
    cwpp_metric_add(c, 41);
    cwpp_metric_add(cwpp_counter(m, "cwpp_test_consumed_total", "Records consumed."), 1);
    cwpp_metric_add(cwpp_counter(m, "cwpp_test_rejected_total{reason=\"invalid_json\"}", "Rejected."), 2);
    cwpp_metric_add(cwpp_counter(m, "cwpp_test_rejected_total{reason=\"oversized\"}", "Rejected."), 1);
    hist = cwpp_histogram(m, "cwpp_test_batch_seconds", "Batch time.", b, 2);
    cwpp_metric_observe(hist, 0.05);
    cwpp_metric_observe(hist, 0.5);
    cwpp_metric_observe(hist, 5);

    h = cwpp_http_start("127.0.0.1", 0, m, ready_fn, NULL, err, sizeof(err));
    assert_non_null(h);
    assert_true(cwpp_http_port(h) > 0);

    r = get(cwpp_http_port(h), "/healthz");
    assert_non_null(strstr(r, "200 OK"));
    free(r);

    ready_flag = 0;
    r = get(cwpp_http_port(h), "/readyz");
    assert_non_null(strstr(r, "503"));
    assert_non_null(strstr(r, "PostgreSQL is not reachable"));
    free(r);
    ready_flag = 1;
    r = get(cwpp_http_port(h), "/readyz");
    assert_non_null(strstr(r, "200 OK"));
    free(r);

    r = get(cwpp_http_port(h), "/metrics");
    assert_non_null(strstr(r, "# TYPE cwpp_test_consumed_total counter\ncwpp_test_consumed_total 42\n"));
    /* one HELP/TYPE header for the labelled family, both members under it */
    assert_non_null(strstr(r, "# TYPE cwpp_test_rejected_total counter\n"
                              "cwpp_test_rejected_total{reason=\"invalid_json\"} 2\n"
                              "cwpp_test_rejected_total{reason=\"oversized\"} 1\n"));
    assert_non_null(strstr(r, "cwpp_test_batch_seconds_bucket{le=\"0.1\"} 1\n"
                              "cwpp_test_batch_seconds_bucket{le=\"1\"} 2\n"
                              "cwpp_test_batch_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(r, "cwpp_test_batch_seconds_count 3\n"));
    free(r);

    r = get(cwpp_http_port(h), "/nope");
    assert_non_null(strstr(r, "404"));
    free(r);
    cwpp_http_stop(h);
    cwpp_metrics_destroy(m);
}

/* A port already taken is a configuration error with a sentence, not a crash. */
static void test_port_in_use(void **state)
{
    cwpp_metrics_t *m = cwpp_metrics_new();
    char            err[256];
    cwpp_http_t    *a = cwpp_http_start("127.0.0.1", 0, m, NULL, NULL, err, sizeof(err));
    cwpp_http_t    *b;

    (void)state;
    assert_non_null(a);
    b = cwpp_http_start("127.0.0.1", cwpp_http_port(a), m, NULL, NULL, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "cannot listen"));
    assert_null(cwpp_http_start("not-an-ip", 0, m, NULL, NULL, err, sizeof(err)));
    cwpp_http_stop(a);
    cwpp_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
