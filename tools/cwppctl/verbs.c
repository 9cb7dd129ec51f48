/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verbs.c: `cwppctl alerts ...` and `cwppctl whitelist ...`, clients of cwpp-api; the
 * whitelist changes are commands answered by whitelist-filter.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_util.h"
#include "cwpp_whitelist.h"

static int is_flag(const char *a, const char *name)
{
    return strcmp(a, name) == 0;
}

/* -------------------------------------------------------------------- alerts */


static int alerts_list(ctl_t *c, int argc, char **argv)
{
    /* options passed on as the API's query arguments (checked there too) */
    static const struct { const char *opt, *arg; } pass[] = {
        {"--status", "status"}, {"--name", "name"},   {"--account", "account"},
        {"--type", "type"},     {"--severity", "severity"}, {"--asset", "asset"},
        {"--event", "event"},   {"--handled", "handled"},   {"--since", "since"},
        {"--until", "until"}};
    enum { NPASS = sizeof(pass) / sizeof(pass[0]) };
    const char *val[NPASS] = {NULL};
    char        since_s[40], until_s[40];
    json_t     *arr;
    long        limit = 100;
    int64_t     ms;
    int         i, rc = CTL_OK;
    size_t      k;

    for (i = 0; i < argc; i++) {
        for (k = 0; k < NPASS && !is_flag(argv[i], pass[k].opt); k++)
            ;
        if (k < NPASS) {
            if ((val[k] = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
        } else if (is_flag(argv[i], "--limit")) {
            const char *v;
            char       *end;

            if ((v = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            limit = strtol(v, &end, 10);
            if (*end != '\0' || limit < 1 || limit > 100000)
                return ctl_fail(CTL_USAGE, "--limit must be a number from 1 to 100000");
        } else {
            return ctl_fail(CTL_USAGE, "alerts list: unknown option \"%s\"", argv[i]);
        }
    }
    if (val[0] != NULL) { /* every status of a comma-separated list */
        const char *p = val[0];

        for (;;) {
            const char         *end = strchr(p, ',');
            char                w[64], names[160];
            cwpp_alert_status_t st;

            snprintf(w, sizeof(w), "%.*s", (int)(end != NULL ? end - p : (long)strlen(p)), p);
            if (cwpp_status_parse(w, &st) != 0)
                return ctl_fail(CTL_USAGE, "unknown status \"%s\" (use %s)", w,
                                cwpp_statuses_text(names, sizeof(names), ", ", " or "));
            if (end == NULL)
                break;
            p = end + 1;
        }
    }
    if (val[8] != NULL) {
        if ((rc = ctl_parse_when("--since", val[8], since_s, sizeof(since_s), &ms)) != CTL_OK)
            return rc;
        val[8] = since_s;
    }
    if (val[9] != NULL) {
        if ((rc = ctl_parse_when("--until", val[9], until_s, sizeof(until_s), &ms)) != CTL_OK)
            return rc;
        val[9] = until_s;
    }
    {
        cwpp_buf_t b = {0};
        json_t    *doc = NULL;

        cwpp_buf_puts(&b, "/api/v1/alerts");
        for (k = 0; k < NPASS; k++)
            if (val[k] != NULL)
                ctl_q(&b, pass[k].arg, val[k]);
        cwpp_buf_cstr(&b);
        rc = ctl_api_pages(c, (const char *)b.data, "alerts", limit, &doc);
        cwpp_buf_free(&b);
        if (rc != CTL_OK)
            return rc;
        arr = json_incref(json_object_get(doc, "alerts"));
        json_decref(doc);
    }
    if (c->json) {
        ctl_print_json(json_pack("{s:o}", "alerts", arr));
        return CTL_OK;
    }
    printf("%-35s  %-26s  %-8s  %-25s  %-20s  %-20s  %s\n", "ALERT", "STATUS", "SEVERITY",
           "NAME", "ASSET", "LAST SEEN", "COUNT");
    for (k = 0; k < json_array_size(arr); k++) {
        json_t *a = json_array_get(arr, k);

        printf("%-35s  %-26s  %-8s  %-25.25s  %-20.20s  %-20s  %" JSON_INTEGER_FORMAT "\n",
               json_string_value(json_object_get(a, "alert_id")),
               json_string_value(json_object_get(a, "status")),
               json_string_value(json_object_get(a, "severity")),
               ctl_safe(json_string_value(json_object_get(a, "name"))),
               ctl_safe(json_string_value(json_object_get(a, "asset_id"))),
               json_string_value(json_object_get(a, "last_seen")),
               json_integer_value(json_object_get(a, "occurrences")));
    }
    if (json_array_size(arr) == 0)
        printf("(no alerts match)\n");
    json_decref(arr);
    return CTL_OK;
}

static int alerts_show(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL, *log;
    char    path[64];
    int     rc;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl alerts show ALERT_ID [--json]");
    /* an alert id is "al-" and 32 hex digits: nothing else can name one (nor needs
     * escaping in the path) */
    if (!cwpp_alert_id_valid(argv[0]))
        return ctl_fail(CTL_REFUSED, "there is no alert %s", ctl_safe(argv[0]));
    snprintf(path, sizeof(path), "/api/v1/alerts/%s", argv[0]);
    if ((rc = ctl_api(c, "GET", path, NULL, &doc)) != CTL_OK)
        return rc;
    log = json_object_get(doc, "activity");
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    {
        static const char *const keys[] = {"alert_id", "name", "type", "severity", "status",
                                           "defense", "source", "account_id", "first_seen",
                                           "last_seen", "occurrences", "attack_tactic",
                                           "attack_technique", "remote_ip"};
        static const char *const objs[] = {"asset", "file", "process", "logon", "details"};
        /* the handling info its event's handling added (alerts.handling), one line each */
        static const char *const handling[][2] = {{"event_id", "handled with"},
                                                  {"via", "handled via"},
                                                  {"by", "handled by"},
                                                  {"at_ms", "handled at"},
                                                  {"remark", "handling remark"}};
        const json_t *h = json_object_get(doc, "handling");
        size_t k;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            json_t *v = json_object_get(doc, keys[k]);

            if (json_is_string(v))
                printf("%-17s %s\n", keys[k], ctl_safe(json_string_value(v)));
            else if (json_is_integer(v))
                printf("%-17s %" JSON_INTEGER_FORMAT "\n", keys[k], json_integer_value(v));
        }
        for (k = 0; k < sizeof(objs) / sizeof(objs[0]); k++) {
            json_t *v = json_object_get(doc, objs[k]);
            char   *s;

            if (v == NULL || json_is_null(v))
                continue;
            s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
            printf("%-17s %s\n", objs[k], s != NULL ? s : "");
            free(s);
        }
        for (k = 0; json_is_object(h) && k < sizeof(handling) / sizeof(handling[0]); k++) {
            const json_t *v = json_object_get(h, handling[k][0]);
            char          t[40];

            if (json_is_string(v))
                printf("%-17s %s\n", handling[k][1], ctl_safe(json_string_value(v)));
            else if (json_is_integer(v))
                printf("%-17s %s\n", handling[k][1],
                       cwpp_format_time_ms(json_integer_value(v), t, sizeof(t)));
        }
        printf("activity:\n");
        for (k = 0; k < json_array_size(log); k++) {
            json_t *e = json_array_get(log, k);
            char   *b = json_dumps(json_object_get(e, "before"), JSON_COMPACT | JSON_ENCODE_ANY);
            char   *a = json_dumps(json_object_get(e, "after"), JSON_COMPACT | JSON_ENCODE_ANY);

            printf("  %s  %-12s %-26s %s -> %s%s%s\n",
                   json_string_value(json_object_get(e, "at")),
                   ctl_safe(json_string_value(json_object_get(e, "actor"))),
                   json_string_value(json_object_get(e, "action")), b ? b : "", a ? a : "",
                   json_string_length(json_object_get(e, "remark")) ? "  remark: " : "",
                   json_string_length(json_object_get(e, "remark"))
                       ? ctl_safe(json_string_value(json_object_get(e, "remark"))) : "");
            free(b);
            free(a);
        }
        if (json_array_size(log) == 0)
            printf("  (no changes recorded)\n");
    }
    json_decref(doc);
    return CTL_OK;
}

int ctl_alerts(ctl_t *c, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return alerts_list(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return alerts_show(c, argc - 1, argv + 1);
    return ctl_fail(CTL_USAGE, "usage: cwppctl alerts list [--status S,...] [--handled "
                    "yes|no] [--name N] [--type T] [--severity S,...] [--asset A] [--account A] "
                    "[--event E] [--since T] [--until T] [--limit N] | alerts show ALERT_ID");
}

/* ----------------------------------------------------------------- whitelist */
/*
 * The whitelist verbs are clients of cwpp-api (docs/api/parts/whitelist.yaml): reads GET
 * the caller's rules or POST a preview, changes POST or DELETE and print the command's
 * answer as every change prints it. Rule options are checked here first, as the API and
 * the filter check them, so a typo is told before anything is sent.
 */

/* Reads rule options into a payload object. Returns CTL_OK or CTL_USAGE (printed). */
static int rule_options(int argc, char **argv, json_t *payload, int allow_force)
{
    int i;

    for (i = 0; i < argc; i++) {
        static const struct { const char *opt, *key; } map[] = {
            {"--alert-name", "alert_name"}, {"--field", "field"},   {"--op", "op"},
            {"--value", "value"},           {"--scope", "scope"},   {"--asset", "asset_id"},
            {"--from-alert", "from_alert_id"}, {"--remark", "remark"},
            {"--account", "account_id"},
        };
        size_t k;
        int    done = 0;

        for (k = 0; k < sizeof(map) / sizeof(map[0]) && !done; k++) {
            if (is_flag(argv[i], map[k].opt)) {
                const char *v;

                /* a value may legitimately start with "--" only via --value=... */
                if (i + 1 >= argc)
                    return ctl_fail(CTL_USAGE, "%s needs a value", argv[i]);
                v = argv[++i];
                json_object_set_new(payload, map[k].key, json_string(v));
                done = 1;
            }
        }
        if (done)
            continue;
        if (is_flag(argv[i], "--expires")) {
            const char *v;
            int64_t     ms, now = cwpp_now_ms();
            char        t[40], *end;
            double      n;

            if ((v = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            n = strtod(v, &end);
            if (end != v && n > 0 && n <= 36500.0 * 24 * 60 && (strcmp(end, "d") == 0 || strcmp(end, "h") == 0 ||
                                      strcmp(end, "m") == 0)) {
                ms = now + (int64_t)(n * (end[0] == 'd' ? 86400000.0 : end[0] == 'h'
                                                                        ? 3600000.0 : 60000.0));
            } else if (cwpp_parse_time_ms(v, 0, &ms) != 0) {
                return ctl_fail(CTL_USAGE, "--expires must be an RFC 3339 time "
                                "(2026-12-31T00:00:00Z) or a duration like 30d, 12h, 90m; "
                                "not \"%s\"", v);
            }
            if (ms <= now)
                return ctl_fail(CTL_USAGE, "--expires %s is in the past", v);
            json_object_set_new(payload, "expires_at",
                                json_string(cwpp_format_time_ms(ms, t, sizeof(t))));
        } else if (allow_force && is_flag(argv[i], "--force")) {
            json_object_set_new(payload, "force", json_true());
        } else {
            return ctl_fail(CTL_USAGE, "unknown option \"%s\"", argv[i]);
        }
    }
    return CTL_OK;
}

static int scope_is_asset(json_t *payload)
{
    const char *sc = json_string_value(json_object_get(payload, "scope"));

    return sc != NULL && strcmp(sc, "asset") == 0;
}

/* Checks the definition the way the service will (field, operator, value, regex). */
static int check_rule(json_t *payload)
{
    cwpp_wl_def_t d;
    char          why[600], ops[128];
    json_t       *copy;
    int           rc;

    if (json_object_get(payload, "account_id") == NULL)
        return ctl_fail(CTL_USAGE, "--account is required (a rule applies to the alerts of one "
                        "account)");
    if (json_object_get(payload, "alert_name") == NULL)
        return ctl_fail(CTL_USAGE, "--alert-name is required");
    if (json_object_get(payload, "field") == NULL)
        return ctl_fail(CTL_USAGE, "--field is required");
    if (json_object_get(payload, "op") == NULL)
        return ctl_fail(CTL_USAGE, "--op is required (%s)",
                        cwpp_rule_ops_text(ops, sizeof(ops), ", ", " or "));
    if (json_object_get(payload, "value") == NULL)
        return ctl_fail(CTL_USAGE, "--value is required");
    copy = json_deep_copy(payload);
    /* asset scope with --from-alert: the service takes the alert's asset */
    if (json_object_get(copy, "asset_id") == NULL &&
        json_object_get(copy, "from_alert_id") != NULL && scope_is_asset(copy))
        json_object_set_new(copy, "asset_id", json_string("(from the alert)"));
    rc = cwpp_wl_def_from_json(copy, &d, why, sizeof(why));
    json_decref(copy);
    cwpp_wl_def_clear(&d);
    if (rc != CWPP_OK)
        return ctl_fail(CTL_REFUSED, "the rule is not valid: %s", why);
    return CTL_OK;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

static int whitelist_preview(ctl_t *c, int argc, char **argv)
{
    json_t *payload = json_object(), *doc = NULL, *rule, *events, *sample;
    int     rc;
    size_t  i;

    if ((rc = rule_options(argc, argv, payload, 1)) != CTL_OK ||
        (rc = check_rule(payload)) != CTL_OK) {
        json_decref(payload);
        return rc;
    }
    rc = ctl_api(c, "POST", "/api/v1/whitelist/rules/preview", payload, &doc);
    json_decref(payload);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    rule = json_object_get(doc, "rule");
    events = json_object_get(doc, "open_events");
    sample = json_object_get(doc, "sample");
    printf("Rule: \"%s\" alerts of account %s where %s %s \"%s\" on %s\n",
           ctl_safe(str_of(rule, "alert_name")), ctl_safe(str_of(rule, "account_id")),
           ctl_safe(str_of(rule, "field")), str_of(rule, "op"), ctl_safe(str_of(rule, "value")),
           json_object_get(rule, "asset_id") != NULL ? ctl_safe(str_of(rule, "asset_id"))
                                                     : "all its assets");
    printf("Over the last %" JSON_INTEGER_FORMAT " days it would have suppressed %"
           JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " \"%s\" alerts (%.1f %%) on %"
           JSON_INTEGER_FORMAT " asset%s.\n", json_integer_value(json_object_get(doc, "days")),
           json_integer_value(json_object_get(doc, "matched")),
           json_integer_value(json_object_get(doc, "considered")),
           ctl_safe(str_of(rule, "alert_name")),
           json_number_value(json_object_get(doc, "share")) * 100.0,
           json_integer_value(json_object_get(doc, "assets")),
           json_integer_value(json_object_get(doc, "assets")) == 1 ? "" : "s");
    if (json_integer_value(json_object_get(doc, "regex_aborted")) > 0)
        printf("The regex gave up on %" JSON_INTEGER_FORMAT " alerts (too much backtracking); "
               "those count as no match.\n",
               json_integer_value(json_object_get(doc, "regex_aborted")));
    printf("Open events that would lose alerts: %zu\n", json_array_size(events));
    for (i = 0; i < json_array_size(events); i++) {
        json_t *e = json_array_get(events, i);

        printf("  %s  %-10s %s (%" JSON_INTEGER_FORMAT " alert%s)\n",
               ctl_safe(str_of(e, "event_id")), str_of(e, "status"), ctl_safe(str_of(e, "name")),
               json_integer_value(json_object_get(e, "alerts")),
               json_integer_value(json_object_get(e, "alerts")) == 1 ? "" : "s");
    }
    if (json_array_size(sample) > 0)
        printf("Sample of matched alerts:\n");
    for (i = 0; i < json_array_size(sample); i++) {
        json_t *e = json_array_get(sample, i);

        printf("  %s  %-20s %-26s last seen %s\n", str_of(e, "alert_id"),
               ctl_safe(str_of(e, "asset_id")), str_of(e, "status"), str_of(e, "last_seen"));
    }
    if (json_is_true(json_object_get(doc, "needs_force")))
        printf("Warning: %s Creating it needs --force.\n", ctl_safe(str_of(doc, "broad")));
    json_decref(doc);
    return CTL_OK;
}

/* A text column of the list: "" for null. */
static const char *col(json_t *r, const char *key)
{
    return json_is_string(json_object_get(r, key)) ? json_string_value(json_object_get(r, key))
                                                   : "";
}

static int rule_list(ctl_t *c, int argc, char **argv)
{
    const char *name = NULL, *account = NULL, *all = "false", *last = NULL;
    json_t     *rules = json_array(), *doc = NULL;
    char       *cursor = NULL;
    int         i, rc = CTL_OK;
    size_t      k;

    for (i = 0; i < argc; i++) {
        if (is_flag(argv[i], "--all"))
            all = "true";
        else if (is_flag(argv[i], "--alert-name")) {
            if ((name = ctl_value_of(argc, argv, &i)) == NULL)
                rc = CTL_USAGE;
        } else if (is_flag(argv[i], "--account")) {
            if ((account = ctl_value_of(argc, argv, &i)) == NULL)
                rc = CTL_USAGE;
        } else {
            rc = ctl_fail(CTL_USAGE, "whitelist rule list: unknown option \"%s\"", argv[i]);
        }
        if (rc != CTL_OK) {
            json_decref(rules);
            return rc;
        }
    }
    /* every page: the list is what cwppctl prints whole */
    do {
        cwpp_buf_t path = {0};

        cwpp_buf_append(&path, "/api/v1/whitelist/rules", 23);
        ctl_q(&path, "limit", "500");
        ctl_q(&path, "all", all);
        if (name != NULL)
            ctl_q(&path, "alert_name", name);
        if (account != NULL)
            ctl_q(&path, "account", account);
        if (cursor != NULL)
            ctl_q(&path, "cursor", cursor);
        cwpp_buf_append(&path, "", 1);
        free(cursor);
        cursor = NULL;
        rc = path.data != NULL ? ctl_api(c, "GET", (const char *)path.data, NULL, &doc)
                               : ctl_fail(CTL_INFRA, "out of memory");
        cwpp_buf_free(&path);
        if (rc != CTL_OK)
            break;
        json_array_extend(rules, json_object_get(doc, "rules"));
        if (json_is_string(json_object_get(doc, "next_cursor")))
            cursor = strdup(json_string_value(json_object_get(doc, "next_cursor")));
        json_decref(doc);
        doc = NULL;
    } while (cursor != NULL);
    if (rc != CTL_OK) {
        json_decref(rules);
        return rc;
    }
    if (c->json) {
        ctl_print_json(json_pack("{s:o}", "rules", rules));
        return CTL_OK;
    }
    for (k = 0; k < json_array_size(rules); k++) {
        json_t *r = json_array_get(rules, k);

        if (last == NULL || strcmp(last, col(r, "alert_name")) != 0)
            printf("%s\"%s\" (rules are OR-ed)\n", last ? "\n" : "",
                   ctl_safe(col(r, "alert_name")));
        last = col(r, "alert_name");
        printf("  rule %-6" JSON_INTEGER_FORMAT " account %s  %s %s \"%s\" on %s  hits %"
               JSON_INTEGER_FORMAT, json_integer_value(json_object_get(r, "rule_id")),
               ctl_safe(col(r, "account_id")), ctl_safe(col(r, "field")), col(r, "op"),
               ctl_safe(col(r, "value")),
               col(r, "asset_id")[0] ? ctl_safe(col(r, "asset_id")) : "all assets",
               json_integer_value(json_object_get(r, "hits")));
        if (col(r, "expires_at")[0])
            printf("  expires %s%s", col(r, "expires_at"),
                   json_is_true(json_object_get(r, "expired")) ? " (expired)" : "");
        if (col(r, "deleted_at")[0])
            printf("  deleted %s by %s", col(r, "deleted_at"), ctl_safe(col(r, "deleted_by")));
        putchar('\n');
    }
    if (json_array_size(rules) == 0)
        printf("(no whitelist rules)\n");
    json_decref(rules);
    return CTL_OK;
}

static int take_remark(int *argc, char **argv, json_t *payload)
{
    int i, j;

    for (i = 0; i < *argc; i++) {
        if (is_flag(argv[i], "--remark")) {
            if (i + 1 >= *argc)
                return ctl_fail(CTL_USAGE, "--remark needs a value");
            json_object_set_new(payload, "remark", json_string(argv[i + 1]));
            for (j = i; j + 2 < *argc; j++)
                argv[j] = argv[j + 2];
            *argc -= 2;
            i--;
        }
    }
    return CTL_OK;
}

/* prefix + the percent-encoded id + suffix, as a path (malloc'd), or NULL. */
static char *id_path(const char *prefix, const char *id, const char *suffix)
{
    cwpp_buf_t b = {0};
    cwpp_buf_t q = {0};
    char      *out;

    /* ctl_q encodes a value; take its text after "?x=" */
    cwpp_buf_append(&q, "/", 1);
    ctl_q(&q, "x", id);
    cwpp_buf_append(&b, prefix, strlen(prefix));
    if (q.data != NULL && q.len > 4)
        cwpp_buf_append(&b, (const char *)q.data + 4, q.len - 4);
    cwpp_buf_append(&b, suffix, strlen(suffix) + 1);
    cwpp_buf_free(&q);
    out = (char *)b.data;
    return out;
}

int ctl_whitelist(ctl_t *c, int argc, char **argv)
{
    json_t *payload;
    char   *path;
    int     rc, i;

    if (argc >= 1 && strcmp(argv[0], "preview") == 0)
        return whitelist_preview(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[0], "rule") == 0 && strcmp(argv[1], "list") == 0)
        return rule_list(c, argc - 2, argv + 2);
    payload = json_object();
    if (argc >= 2 && strcmp(argv[0], "rule") == 0 && strcmp(argv[1], "add") == 0) {
        if ((rc = rule_options(argc - 2, argv + 2, payload, 1)) != CTL_OK ||
            (rc = check_rule(payload)) != CTL_OK) {
            json_decref(payload);
            return rc;
        }
        return ctl_api_change(c, "/api/v1/whitelist/rules", payload);
    }
    if (argc >= 2 && strcmp(argv[0], "rule") == 0 && strcmp(argv[1], "delete") == 0) {
        char     *end;
        long long id;

        argc -= 2;
        argv += 2;
        if ((rc = take_remark(&argc, argv, payload)) != CTL_OK || argc != 1) {
            json_decref(payload);
            return rc != CTL_OK ? rc : ctl_fail(CTL_USAGE, "usage: cwppctl whitelist rule "
                                                "delete RULE_ID [--remark R]");
        }
        id = strtoll(argv[0], &end, 10);
        if (*end != '\0' || id <= 0) {
            json_decref(payload);
            return ctl_fail(CTL_USAGE, "\"%s\" is not a rule id (cwppctl whitelist rule list "
                            "shows them)", argv[0]);
        }
        if ((path = id_path("/api/v1/whitelist/rules/", argv[0], "")) == NULL) {
            json_decref(payload);
            return ctl_fail(CTL_INFRA, "out of memory");
        }
        rc = ctl_api_send(c, "DELETE", path, payload);
        free(path);
        return rc;
    }
    if (argc >= 1 && strcmp(argv[0], "add-alert") == 0) {
        argc -= 1;
        argv += 1;
        if ((rc = take_remark(&argc, argv, payload)) != CTL_OK || argc != 1) {
            json_decref(payload);
            return rc != CTL_OK ? rc : ctl_fail(CTL_USAGE, "usage: cwppctl whitelist add-alert "
                                                "ALERT_ID [--remark R]");
        }
        if ((path = id_path("/api/v1/alerts/", argv[0], "/whitelist")) == NULL) {
            json_decref(payload);
            return ctl_fail(CTL_INFRA, "out of memory");
        }
        rc = ctl_api_change(c, path, payload);
        free(path);
        return rc;
    }
    if (argc >= 1 && strcmp(argv[0], "remove") == 0) {
        json_t *ids = json_array();

        argc -= 1;
        argv += 1;
        if ((rc = take_remark(&argc, argv, payload)) != CTL_OK || argc < 1) {
            json_decref(payload);
            json_decref(ids);
            return rc != CTL_OK ? rc : ctl_fail(CTL_USAGE, "usage: cwppctl whitelist remove "
                                                "ALERT_ID... [--remark R]");
        }
        for (i = 0; i < argc; i++)
            json_array_append_new(ids, json_string(argv[i]));
        json_object_set_new(payload, "ids", ids);
        return ctl_api_change(c, "/api/v1/alerts/_bulk/unwhitelist", payload);
    }
    json_decref(payload);
    return ctl_fail(CTL_USAGE,
                    "usage: cwppctl whitelist add-alert ID | remove ID... | rule add OPTIONS | "
                    "rule list | rule delete RULE_ID | preview OPTIONS (cwppctl --help)");
}
