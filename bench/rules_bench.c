/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_bench: per-alert cost of whitelist rule evaluation (libs/rules) with 10 rules
 * and with 10,000 rules spread over 1,000 alert names (10 of them for the alert's own
 * name), the workload with a target: 10,000 rules cost at most 2x of 10 rules.
 * The rules are a mix of operators that do not match, so every rule of the alert's name
 * is evaluated (the worst case). Prints ns/alert for both and their ratio.
 *
 *   build/bin/cwpp-bench-rules [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cwpp_rules.h"

static const char *ALERT =
    "{\"name\":\"Suspicious process\",\"type\":\"malicious_process\",\"severity\":\"high\","
    "\"occurred_at\":\"2026-11-27T10:00:00Z\",\"source\":\"process_monitor\",\"account_id\":\"a1\","
    "\"asset\":{\"id\":\"i-app01\"},\"file\":{\"path\":\"/data/app/logs/rotate.sh\"},"
    "\"process\":{\"pid\":4242,\"cmdline\":\"/usr/bin/python3 /opt/app/worker.py --queue q1\"},"
    "\"remote_ip\":\"203.0.113.9\",\"details\":{\"port\":8443,\"vendor\":\"Acme\"}}";

static void add_rules_for(cwpp_ruleset_t *rs, const char *name, int first_id)
{
    static const struct { const char *field; cwpp_rule_op_t op; const char *value; } mix[10] = {
        {"file.path", CWPP_OP_REGEX, "^/data/app/tmp/.*\\.sh$"},
        {"process.cmdline", CWPP_OP_REGEX, "--queue (q7|q8|q9)\\b"},
        {"file.path", CWPP_OP_CONTAINS, "/srv/backup/"},
        {"process.cmdline", CWPP_OP_CONTAINS, "cron.daily"},
        {"remote_ip", CWPP_OP_EQ, "198.51.100.1"},
        {"details.vendor", CWPP_OP_EQ, "Initech"},
        {"details.port", CWPP_OP_GT, "60000"},
        {"details.port", CWPP_OP_LT, "80"},
        {"occurred_at", CWPP_OP_LT, "2020-01-01T00:00:00Z"},
        {"asset.id", CWPP_OP_REGEX, "^i-db[0-9]+$"},
    };
    char err[256];
    int  i;

    for (i = 0; i < 10; i++) {
        cwpp_rule_def_t d = {first_id + i, name, mix[i].field, mix[i].op, mix[i].value,
                             CWPP_SCOPE_ALL, NULL, 0, NULL};
        if (cwpp_ruleset_add(rs, &d, err, sizeof(err)) != CWPP_OK) {
            fprintf(stderr, "rules_bench: %s\n", err);
            exit(2);
        }
    }
}

static double ns_per_alert(cwpp_ruleset_t *rs, const cwpp_alert_t *a, long iters)
{
    struct timespec t0, t1;
    long            i;
    int64_t         hits = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < iters; i++)
        hits += cwpp_ruleset_match(rs, a, 1795860000000LL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (hits != 0)
        fprintf(stderr, "rules_bench: unexpected match\n");
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
}

int main(int argc, char **argv)
{
    long              iters = argc > 1 ? atol(argv[1]) : 1000000;
    cwpp_alert_opts_t o = {NULL, 1795860000000LL, 3600000, 0};
    cwpp_alert_t      a;
    const char       *code;
    char              err[256], name[64];
    cwpp_ruleset_t   *small = cwpp_ruleset_new(NULL), *big = cwpp_ruleset_new(NULL);
    double            ns_small, ns_big;
    int               n;

    if (cwpp_alert_from_json(ALERT, strlen(ALERT), &o, &a, &code, err, sizeof(err)) != CWPP_OK) {
        fprintf(stderr, "rules_bench: %s\n", err);
        return 2;
    }
    add_rules_for(small, "Suspicious process", 1);
    for (n = 0; n < 999; n++) {
        snprintf(name, sizeof(name), "Alert name %d", n);
        add_rules_for(big, name, 100 + n * 10);
    }
    add_rules_for(big, "Suspicious process", 1);
    ns_small = ns_per_alert(small, &a, iters);
    ns_big = ns_per_alert(big, &a, iters);
    printf("rules_bench: %zu rules %.0f ns/alert, %zu rules %.0f ns/alert, ratio %.2f "
           "(target <= 2.0)\n", cwpp_ruleset_size(small), ns_small, cwpp_ruleset_size(big),
           ns_big, ns_big / ns_small);
    cwpp_ruleset_destroy(small);
    cwpp_ruleset_destroy(big);
    cwpp_alert_clear(&a);
    return 0;
}
