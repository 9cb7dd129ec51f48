/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policies.c: the Incident Response views and the one change on them, through cwpp-api:
 *
 *   cwppctl policies list [--state S] [--event ID] [--entity TYPE:VALUE] [--account A]
 *                         [--limit N]        handling policies and playbook runs, newest first
 *   cwppctl tasks list    (the same options)  their tasks
 *   cwppctl policies cancel POLICY_ID [--remark R]
 *                                            ends the lease now; its actions are rolled back
 *
 * Lists page through the API's keyset cursor (ctl_api_pages) until --limit rows (default
 * 50). Text output escapes every value (ctl_safe): policy names and entity values come
 * from alerts.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int list(ctl_t *c, const char *what, int argc, char **argv)
{
    static const char *const OPTS[] = {"--state", "--event", "--entity", "--account", NULL};
    cwpp_buf_t  base = {0};
    json_t     *all = NULL, *doc = NULL;
    long        limit = 50;
    int         i, k, rc = CTL_OK;
    size_t      j;
    json_t     *row;

    cwpp_buf_append(&base, "/api/v1/", 8);
    cwpp_buf_append(&base, what, strlen(what));
    for (i = 0; i < argc; i++) {
        const char *v;
        int         known = 0;

        if (strcmp(argv[i], "--limit") == 0) {
            if ((v = ctl_value_of(argc, argv, &i)) == NULL) {
                rc = CTL_USAGE;
                goto out;
            }
            limit = strtol(v, NULL, 10);
            if (limit < 1 || limit > 100000) {
                rc = ctl_fail(CTL_USAGE, "--limit must be 1 to 100000");
                goto out;
            }
            continue;
        }
        for (k = 0; OPTS[k] != NULL && !known; k++) {
            if (strcmp(argv[i], OPTS[k]) == 0) {
                if ((v = ctl_value_of(argc, argv, &i)) == NULL) {
                    rc = CTL_USAGE;
                    goto out;
                }
                ctl_q(&base, OPTS[k] + 2, v);
                known = 1;
            }
        }
        if (!known) {
            rc = ctl_fail(CTL_USAGE, "unknown option \"%s\" (see cwppctl --help)", argv[i]);
            goto out;
        }
    }
    cwpp_buf_cstr(&base);
    rc = ctl_api_pages(c, (const char *)base.data, what, limit, &doc);
    if (rc != CTL_OK)
        goto out;
    all = json_incref(json_object_get(doc, what));
    if (c->json) {
        ctl_print_json(json_pack("{s:O, s:O}", what, all, "total",
                                 json_object_get(doc, "total")));
        goto out;
    }
    if (json_array_size(all) == 0) {
        printf("no %s\n", what);
        goto out;
    }
    json_array_foreach(all, j, row) {
        if (strcmp(what, "policies") == 0)
            printf("%s  %-9s %-8s %s  %s:%s  event %s  until %s\n",
                   ctl_safe(json_string_value(json_object_get(row, "policy_id"))),
                   ctl_safe(json_string_value(json_object_get(row, "state"))),
                   ctl_safe(json_string_value(json_object_get(row, "kind"))),
                   ctl_safe(json_string_value(json_object_get(row, "name"))),
                   ctl_safe(json_string_value(json_object_get(row, "entity_type"))),
                   ctl_safe(json_string_value(json_object_get(row, "entity_value"))),
                   ctl_safe(json_string_value(json_object_get(row, "event_id"))),
                   ctl_safe(json_string_value(json_object_get(row, "valid_until"))));
        else
            printf("%s  %-11s %s on %s  policy %s  attempt %lld\n",
                   ctl_safe(json_string_value(json_object_get(row, "task_id"))),
                   ctl_safe(json_string_value(json_object_get(row, "state"))),
                   ctl_safe(json_string_value(json_object_get(row, "action"))),
                   ctl_safe(json_string_value(json_object_get(row, "asset_id"))),
                   ctl_safe(json_string_value(json_object_get(row, "policy_id"))),
                   (long long)json_integer_value(json_object_get(row, "attempt")));
    }
    printf("(%zu of %lld)\n", json_array_size(all),
           (long long)json_integer_value(json_object_get(doc, "total")));
out:
    json_decref(doc);
    json_decref(all);
    cwpp_buf_free(&base);
    return rc;
}

static int cancel(ctl_t *c, int argc, char **argv)
{
    cwpp_buf_t  path = {0};
    json_t     *body;
    const char *remark = NULL;
    int         i, rc;

    if (argc < 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl policies cancel POLICY_ID [--remark R]");
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--remark") == 0) {
            if ((remark = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
        } else {
            return ctl_fail(CTL_USAGE, "unknown option \"%s\"", argv[i]);
        }
    }
    if (strlen(argv[0]) > 128 || strchr(argv[0], '/') != NULL || strchr(argv[0], '?') != NULL)
        return ctl_fail(CTL_REFUSED, "no policy \"%s\"", ctl_safe(argv[0]));
    body = remark != NULL ? json_pack("{s:s}", "remark", remark) : json_object();
    cwpp_buf_append(&path, "/api/v1/policies/", 17);
    cwpp_buf_append(&path, argv[0], strlen(argv[0]));
    cwpp_buf_append(&path, "/cancel", 8); /* with its NUL */
    rc = ctl_api_change(c, (const char *)path.data, body);
    cwpp_buf_free(&path);
    return rc;
}

int ctl_policies(ctl_t *c, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return list(c, "policies", argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "cancel") == 0)
        return cancel(c, argc - 1, argv + 1);
    return ctl_fail(CTL_USAGE, "usage: cwppctl policies list [...] | cancel POLICY_ID [--remark R]");
}

int ctl_tasks(ctl_t *c, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return list(c, "tasks", argc - 1, argv + 1);
    return ctl_fail(CTL_USAGE, "usage: cwppctl tasks list [--state S] [--event ID] "
                    "[--entity TYPE:VALUE] [--account A] [--limit N]");
}
