/* SPDX-License-Identifier: Apache-2.0 */
/*
 * membership.c: `cwppctl events merge|detach` and `cwppctl notifications show|set`, clients
 * of cwpp-api (docs/cwppctl.md):
 *
 *   events merge EVENT_ID EVENT_ID... [--remark R]
 *        POST /api/v1/events/merge: the correlator merges two to twenty open events of one
 *        account into the oldest; the others become "merged" (merged_into the survivor)
 *   events detach EVENT_ID --alerts ALERT_ID... [--remark R]
 *        POST /api/v1/events/{id}/detach: the alerts leave the event into a new event
 *   notifications show ACCOUNT
 *   notifications set ACCOUNT on|off [--min-level critical|high|medium|low] [--remark R]
 *        GET / PUT /api/v1/accounts/{id}/notifications (the responder's notifications.set)
 *
 * Ids are checked here first (a bad one is exit code 2, nothing sent); what the services
 * decide (one account, open events, the alerts' membership, permission) comes back as
 * their refusal (exit 1, the reason on stderr). The answer prints as every change's does.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_util.h"

static int event_id_ok(const char *id)
{
    if (strncmp(id, "ev-", 3) == 0 && strlen(id) == 35 && strspn(id + 3, "0123456789abcdef") == 32)
        return CTL_OK;
    return ctl_fail(CTL_USAGE, "\"%s\" is not an event id (ev- and 32 hex digits; cwppctl "
                    "events list shows them)", ctl_safe(id));
}

/* Appends the ids of one argument (commas separate several) to arr; each must pass ok.
 * CTL_OK or CTL_USAGE. */
static int add_ids(json_t *arr, const char *arg, int is_event)
{
    const char *p = arg, *end;
    char        id[64];

    for (;; p = end + 1) {
        size_t n;

        end = strchr(p, ',');
        n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == 0 && end != NULL)
            continue;
        if (n == 0 || n >= sizeof(id))
            return ctl_fail(CTL_USAGE, "\"%s\" is not %s id", ctl_safe(arg),
                            is_event ? "an event" : "an alert");
        memcpy(id, p, n);
        id[n] = '\0';
        if (is_event) {
            int rc = event_id_ok(id);

            if (rc != CTL_OK)
                return rc;
        } else if (!cwpp_alert_id_valid(id)) {
            return ctl_fail(CTL_USAGE, "\"%s\" is not an alert id (al- and 32 hex digits; "
                            "cwppctl events alerts shows them)", ctl_safe(id));
        }
        json_array_append_new(arr, json_string(id));
        if (end == NULL)
            return CTL_OK;
    }
}

static int events_merge(ctl_t *c, int argc, char **argv)
{
    json_t     *ids = json_array(), *body;
    const char *remark = NULL;
    int         i, rc = CTL_OK;

    if (ids == NULL)
        return ctl_fail(CTL_INFRA, "out of memory");
    for (i = 0; i < argc && rc == CTL_OK; i++) {
        if (strcmp(argv[i], "--remark") == 0) {
            if ((remark = ctl_value_of(argc, argv, &i)) == NULL)
                rc = CTL_USAGE;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            rc = ctl_fail(CTL_USAGE, "events merge: unknown option \"%s\"", ctl_safe(argv[i]));
        } else {
            rc = add_ids(ids, argv[i], 1);
        }
    }
    if (rc == CTL_OK && json_array_size(ids) < 2)
        rc = ctl_fail(CTL_USAGE, "usage: cwppctl events merge EVENT_ID EVENT_ID... "
                      "[--remark R] (two to twenty events of one account)");
    if (rc != CTL_OK) {
        json_decref(ids);
        return rc;
    }
    body = json_pack("{s:o}", "event_ids", ids);
    if (remark != NULL)
        json_object_set_new(body, "remark", json_string(remark));
    return ctl_api_change(c, "/api/v1/events/merge", body);
}

static int events_detach(ctl_t *c, int argc, char **argv)
{
    json_t     *ids = json_array(), *body;
    const char *remark = NULL, *event = NULL;
    char        path[96];
    int         i, in_alerts = 0, rc = CTL_OK;

    if (ids == NULL)
        return ctl_fail(CTL_INFRA, "out of memory");
    for (i = 0; i < argc && rc == CTL_OK; i++) {
        if (strcmp(argv[i], "--remark") == 0) {
            in_alerts = 0;
            if ((remark = ctl_value_of(argc, argv, &i)) == NULL)
                rc = CTL_USAGE;
        } else if (strcmp(argv[i], "--alerts") == 0) {
            in_alerts = 1;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            rc = ctl_fail(CTL_USAGE, "events detach: unknown option \"%s\"", ctl_safe(argv[i]));
        } else if (in_alerts) {
            rc = add_ids(ids, argv[i], 0);
        } else if (event == NULL) {
            event = argv[i];
            rc = event_id_ok(event);
        } else {
            rc = ctl_fail(CTL_USAGE, "events detach: one event at a time (\"%s\"); name the "
                          "alerts after --alerts", ctl_safe(argv[i]));
        }
    }
    if (rc == CTL_OK && (event == NULL || json_array_size(ids) == 0))
        rc = ctl_fail(CTL_USAGE, "usage: cwppctl events detach EVENT_ID --alerts ALERT_ID... "
                      "[--remark R]");
    if (rc != CTL_OK) {
        json_decref(ids);
        return rc;
    }
    body = json_pack("{s:o}", "alert_ids", ids);
    if (remark != NULL)
        json_object_set_new(body, "remark", json_string(remark));
    snprintf(path, sizeof(path), "/api/v1/events/%s/detach", event);
    return ctl_api_change(c, path, body);
}

int ctl_events_membership(ctl_t *c, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "merge") == 0)
        return events_merge(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "detach") == 0)
        return events_detach(c, argc - 1, argv + 1);
    return -1;
}

/* ------------------------------------------------------------ notifications */

/* "/api/v1/accounts/<account percent-encoded>/notifications" into b. */
static int settings_path(cwpp_buf_t *b, const char *account)
{
    static const char hex[] = "0123456789ABCDEF";
    const char       *s;
    int               rc = cwpp_buf_puts(b, "/api/v1/accounts/");

    for (s = account; rc == 0 && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            rc = cwpp_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

            rc = cwpp_buf_append(b, e, 3);
        }
    }
    if (rc == 0)
        rc = cwpp_buf_puts(b, "/notifications");
    if (rc == 0)
        rc = cwpp_buf_cstr(b);
    return rc == 0 ? CTL_OK : ctl_fail(CTL_INFRA, "out of memory");
}

static int notifications_show(ctl_t *c, const char *account)
{
    cwpp_buf_t b = {0};
    json_t    *doc = NULL;
    int        rc;

    if ((rc = settings_path(&b, account)) == CTL_OK)
        rc = ctl_api(c, "GET", (const char *)b.data, NULL, &doc);
    cwpp_buf_free(&b);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    if (json_is_true(json_object_get(doc, "enabled")))
        printf("Notifications of account %s: on, from level %s", ctl_safe(account),
               json_string_value(json_object_get(doc, "min_level")));
    else
        printf("Notifications of account %s: off", ctl_safe(account));
    if (json_is_true(json_object_get(doc, "default")))
        printf(" (the default)\n");
    else
        printf(" (set by %s at %s)\n",
               ctl_safe(json_string_value(json_object_get(doc, "updated_by"))),
               ctl_safe(json_string_value(json_object_get(doc, "updated_at"))));
    json_decref(doc);
    return CTL_OK;
}

int ctl_notifications(ctl_t *c, int argc, char **argv)
{
    static const char usage[] = "usage: cwppctl notifications show ACCOUNT | set ACCOUNT on|off "
                                "[--min-level critical|high|medium|low] [--remark R]";
    const char *level = NULL, *remark = NULL, *onoff = NULL, *account = NULL;
    cwpp_buf_t  b = {0};
    json_t     *body;
    int         i, rc;

    if (argc == 2 && strcmp(argv[0], "show") == 0)
        return notifications_show(c, argv[1]);
    if (argc < 3 || strcmp(argv[0], "set") != 0)
        return ctl_fail(CTL_USAGE, "%s", usage);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--min-level") == 0) {
            if ((level = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (strcmp(level, "critical") != 0 && strcmp(level, "high") != 0 &&
                strcmp(level, "medium") != 0 && strcmp(level, "low") != 0)
                return ctl_fail(CTL_USAGE, "unknown level \"%s\" (use critical, high, medium "
                                "or low)", ctl_safe(level));
        } else if (strcmp(argv[i], "--remark") == 0) {
            if ((remark = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            return ctl_fail(CTL_USAGE, "notifications set: unknown option \"%s\"",
                            ctl_safe(argv[i]));
        } else if (account == NULL) {
            account = argv[i];
        } else if (onoff == NULL) {
            onoff = argv[i];
        } else {
            return ctl_fail(CTL_USAGE, "%s", usage);
        }
    }
    if (account == NULL || onoff == NULL || (strcmp(onoff, "on") != 0 && strcmp(onoff, "off") != 0))
        return ctl_fail(CTL_USAGE, "%s", usage);
    if (!cwpp_utf8_valid(account, strlen(account)))
        return ctl_fail(CTL_USAGE, "ACCOUNT is not valid UTF-8");
    body = json_pack("{s:b}", "enabled", strcmp(onoff, "on") == 0);
    if (level != NULL)
        json_object_set_new(body, "min_level", json_string(level));
    if (remark != NULL)
        json_object_set_new(body, "remark", json_string(remark));
    if ((rc = settings_path(&b, account)) != CTL_OK) {
        json_decref(body);
        return rc;
    }
    rc = ctl_api_send(c, "PUT", (const char *)b.data, body);
    cwpp_buf_free(&b);
    return rc;
}
