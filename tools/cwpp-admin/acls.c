/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acls.c: `cwpp-admin acls [--brokers B] [--prefix P] [--group-prefix G] [--timeout-ms T]`
 * creates on the broker the ACL bindings of the project's table (libs/kafka,
 * cwpp_kafka_acls): for every service principal, ALLOW of each operation on its topics
 * (LITERAL <prefix><suffix>), consumer groups and transactional ids. CreateAcls is
 * idempotent (a binding that exists is not added twice), so deployment scripts run it at
 * every start, after `topics create`; it returns once the broker applies them.
 * --group-prefix G adds, for every principal that
 * consumes, READ on the groups whose names start with G (PREFIXED): the integration
 * tests name their groups after their topic prefix. The transactional-id binding needs
 * librdkafka >= 2.4 (Debian's 2.0.2 has no such resource type): without it a warning
 * says what to run, and deploy/local/kafka.sh creates it with Kafka's own AclCommand. It runs as the admin principal (a super
 * user): credentials from CWPP_KAFKA_SECURITY_PROTOCOL, CWPP_KAFKA_SASL_* (libs/config)
 * and CWPP_KAFKA_PROPERTIES.
 *
 * `cwpp-admin acls --print [--prefix P]` prints the table as the Markdown rows of
 * docs/kafka-security.md (tests/static compares the two) and talks to no broker.
 * Exit 0 on success, 1 on bad arguments, 2 when the broker refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "cwpp_kafka.h"

/* The operations one binding allows, in table order; n gets their count. */
static int acl_ops(const cwpp_acl_def_t *d, rd_kafka_AclOperation_t ops[2])
{
    int n = 0;

    if (d->ops & CWPP_ACL_READ)
        ops[n++] = RD_KAFKA_ACL_OPERATION_READ;
    if (d->ops & CWPP_ACL_WRITE)
        ops[n++] = RD_KAFKA_ACL_OPERATION_WRITE;
    return n;
}

static const char *res_name(cwpp_acl_res_t r)
{
    return r == CWPP_ACL_TOPIC ? "topic" : r == CWPP_ACL_GROUP ? "group" : "transactional-id";
}

static void print_table(const char *prefix)
{
    size_t                n, i;
    const cwpp_acl_def_t *d = cwpp_kafka_acls(&n);
    char                  name[256];

    printf("| principal | resource | name | pattern | operations |\n");
    printf("| --- | --- | --- | --- | --- |\n");
    for (i = 0; i < n; i++) {
        printf("| %s | %s | `%s` | %s | %s%s%s |\n", d[i].principal, res_name(d[i].res),
               cwpp_kafka_acl_resource(&d[i], prefix, name, sizeof(name)),
               d[i].prefixed ? "PREFIXED" : "LITERAL", (d[i].ops & CWPP_ACL_READ) ? "READ" : "",
               (d[i].ops & CWPP_ACL_READ) && (d[i].ops & CWPP_ACL_WRITE) ? ", " : "",
               (d[i].ops & CWPP_ACL_WRITE) ? "WRITE" : "");
    }
}

/* Appends one ALLOW binding to b[*nb] (capacity cap). Returns 0 or -1 with errstr. */
static int add_binding(rd_kafka_AclBinding_t **b, size_t *nb, size_t cap,
                       rd_kafka_ResourceType_t rt, const char *name, int prefixed,
                       const char *principal, rd_kafka_AclOperation_t op, char *errstr,
                       size_t errstr_size)
{
    char who[128];

    if (*nb >= cap) {
        snprintf(errstr, errstr_size, "more than %zu bindings", cap);
        return -1;
    }
    snprintf(who, sizeof(who), "User:%s", principal);
    b[*nb] = rd_kafka_AclBinding_new(rt, name,
                                     prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED
                                              : RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                     who, "*", op, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, errstr,
                                     errstr_size);
    if (b[*nb] == NULL)
        return -1;
    (*nb)++;
    return 0;
}

#define MAX_BINDINGS 256

/* Kafka's resource type TRANSACTIONAL_ID (5 in the protocol); librdkafka before 2.4 has no
 * name for it and refuses it: main() reports what to run instead. */
#define TXN_RESOURCE ((rd_kafka_ResourceType_t)5)

/* Builds every binding for prefix (and group_prefix, may be NULL). Returns the count, or
 * -1 with errstr (the built ones are in b and must be destroyed by the caller). */
static int build(rd_kafka_AclBinding_t **b, size_t *nb, const char *prefix,
                 const char *group_prefix, char *errstr, size_t errstr_size)
{
    size_t                n, i, j;
    const cwpp_acl_def_t *d = cwpp_kafka_acls(&n);
    char                  name[256];

    for (i = 0; i < n; i++) {
        rd_kafka_AclOperation_t ops[2];
        int                     nops = acl_ops(&d[i], ops), k;
        rd_kafka_ResourceType_t rt = d[i].res == CWPP_ACL_TOPIC   ? RD_KAFKA_RESOURCE_TOPIC
                                     : d[i].res == CWPP_ACL_GROUP ? RD_KAFKA_RESOURCE_GROUP
                                                                  : TXN_RESOURCE;

        cwpp_kafka_acl_resource(&d[i], prefix, name, sizeof(name));
        for (k = 0; k < nops; k++) {
            if (add_binding(b, nb, MAX_BINDINGS, rt, name, d[i].prefixed, d[i].principal,
                            ops[k], errstr, errstr_size) == 0)
                continue;
            if (d[i].res != CWPP_ACL_TXN)
                return -1;
            /* librdkafka < 2.4 cannot name the resource: say what to run instead */
            fprintf(stderr, "cwpp-admin: warning: this librdkafka cannot create the "
                            "transactional-id binding (%s); create it with kafka-acls.sh "
                            "--add --allow-principal User:%s --operation Write "
                            "--transactional-id %s%s (deploy/local/kafka.sh does)\n",
                    errstr, d[i].principal, name,
                    d[i].prefixed ? " --resource-pattern-type prefixed" : "");
        }
        if (group_prefix == NULL || d[i].res != CWPP_ACL_GROUP)
            continue;
        /* one PREFIXED binding per principal and resource kind: skip repeats */
        for (j = 0; j < i; j++)
            if (d[j].res == d[i].res && strcmp(d[j].principal, d[i].principal) == 0)
                break;
        if (j < i)
            continue;
        for (k = 0; k < nops; k++)
            if (add_binding(b, nb, MAX_BINDINGS, rt, group_prefix, 1, d[i].principal, ops[k],
                            errstr, errstr_size) != 0)
                return -1;
    }
    return (int)*nb;
}

/*
 * Waits until the broker's authorizer holds the bindings just created: the controller
 * commits them before the broker applies them, and a client that meets the old state
 * in that moment gets a denial it caches. DescribeAcls is answered from the broker's own
 * authorizer; the bindings come in one batch, so the table's first one stands for all.
 * Returns 0, or -1 after timeout_ms.
 */
static int wait_applied(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *prefix,
                        int timeout_ms)
{
    size_t                       n;
    const cwpp_acl_def_t        *d = cwpp_kafka_acls(&n);
    char                         name[256], who[128], err[256];
    int                          waited;

    cwpp_kafka_acl_resource(&d[0], prefix, name, sizeof(name));
    snprintf(who, sizeof(who), "User:%s", d[0].principal);
    for (waited = 0; waited < timeout_ms; waited += 100) {
        rd_kafka_AclBindingFilter_t *f = rd_kafka_AclBindingFilter_new(
            RD_KAFKA_RESOURCE_TOPIC, name, RD_KAFKA_RESOURCE_PATTERN_LITERAL, who, NULL,
            RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, err, sizeof(err));
        rd_kafka_event_t *ev;
        size_t            found = 0;

        if (f == NULL)
            return -1;
        rd_kafka_DescribeAcls(rk, f, NULL, q);
        ev = rd_kafka_queue_poll(q, 10000);
        rd_kafka_AclBinding_destroy(f);
        if (ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &found);
        if (ev != NULL)
            rd_kafka_event_destroy(ev);
        if (found > 0)
            return 0;
        rd_kafka_poll(rk, 100);
    }
    return -1;
}

int admin_acls(int argc, char **argv, const char *brokers, const char *prefix,
               const cwpp_kvlist_t *props)
{
    const char            *group_prefix = NULL;
    int                    print = 0, timeout_ms = 30000, i, rc = 2;
    size_t                 nb = 0, k;
    rd_kafka_AclBinding_t *b[MAX_BINDINGS];
    rd_kafka_conf_t       *conf;
    rd_kafka_t            *rk = NULL;
    rd_kafka_queue_t      *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t      *ev = NULL;
    char                   errstr[512];

    for (i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--print")) {
            print = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cwpp-admin: %s needs a value\n", argv[i]);
            return 1;
        }
        if (!strcmp(argv[i], "--brokers"))
            brokers = argv[++i];
        else if (!strcmp(argv[i], "--prefix"))
            prefix = argv[++i];
        else if (!strcmp(argv[i], "--group-prefix"))
            group_prefix = argv[++i];
        else if (!strcmp(argv[i], "--timeout-ms")) {
            if (admin_parse_int(argv[++i], "--timeout-ms", 100, 600000, &timeout_ms) != 0)
                return 1;
        } else {
            fprintf(stderr, "cwpp-admin: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (group_prefix != NULL && *group_prefix == '\0') {
        fprintf(stderr, "cwpp-admin: --group-prefix must not be empty\n");
        return 1;
    }
    if (print) {
        print_table(prefix);
        return 0;
    }
    if (build(b, &nb, prefix, group_prefix, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if ((conf = cwpp_kafka_conf(brokers, props, errstr, sizeof(errstr))) == NULL) {
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_CreateAcls(rk, b, nb, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL) {
        fprintf(stderr, "cwpp-admin: no answer from %s within %d ms\n", brokers, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "cwpp-admin: creating ACLs: %s\n", rd_kafka_event_error_string(ev));
        goto out;
    }
    {
        const rd_kafka_CreateAcls_result_t *res = rd_kafka_event_CreateAcls_result(ev);
        size_t                              nr = 0;
        const rd_kafka_acl_result_t       **rs = rd_kafka_CreateAcls_result_acls(res, &nr);

        rc = 0;
        for (k = 0; k < nr; k++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(rs[k]);

            if (e != NULL && rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "cwpp-admin: ACL %zu: %s\n", k, rd_kafka_error_string(e));
                rc = 2;
            }
        }
    }
    if (rc == 0 && wait_applied(rk, q, prefix, timeout_ms) != 0) {
        fprintf(stderr, "cwpp-admin: the ACLs were created but the broker did not apply them "
                        "within %d ms\n", timeout_ms);
        rc = 2;
    }
    if (rc == 0)
        printf("cwpp-admin: %zu ACL bindings for prefix \"%s\"%s%s%s present on %s\n", nb,
               prefix, group_prefix != NULL ? " (groups \"" : "",
               group_prefix != NULL ? group_prefix : "", group_prefix != NULL ? "*\")" : "",
               brokers);
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    for (k = 0; k < nb; k++)
        rd_kafka_AclBinding_destroy(b[k]);
    return rc;
}
