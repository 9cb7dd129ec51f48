/* SPDX-License-Identifier: Apache-2.0 */
/*
 * respond.c: the analysts' decisions on events (applied by the responder: docs/responder.md)
 * and the views of what they did:
 *
 *   events status|owner|level|remark|respond|playbook ...   commands
 *   events recommend|tasks|log ID                           reads
 *   playbooks list|add|delete, users list|add|grant|revoke|disable|enable|role,
 *   accounts list|add-member|perimeter
 *
 * Everything goes through cwpp-api (docs/api/parts/respond.yaml, admin.yaml): the changes
 * are answered from the responder's command answer (ctl_api_change), the reads are its
 * documents, rendered here as text (or printed as they are with --json).
 */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_correlate.h"
#include "cwpp_respond.h"
#include "cwpp_util.h"

/* Takes "--name VALUE" out of argv (every occurrence when list != NULL, appended to it;
 * else the last one into *out). CTL_OK or CTL_USAGE. */
static int take_opt(int *argc, char **argv, const char *name, const char **out, json_t *list)
{
    int i, j;

    for (i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], name) != 0)
            continue;
        if (i + 1 >= *argc)
            return ctl_fail(CTL_USAGE, "%s needs a value", name);
        if (list != NULL)
            json_array_append_new(list, json_string(argv[i + 1]));
        else
            *out = argv[i + 1];
        for (j = i; j + 2 < *argc; j++)
            argv[j] = argv[j + 2];
        *argc -= 2;
        i--;
    }
    return CTL_OK;
}

/* Drops a leading "--" (values that start with a dash). */
static void drop_dashes(int *argc, char **argv)
{
    int i, j;

    for (i = 0; i < *argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            for (j = i; j + 1 < *argc; j++)
                argv[j] = argv[j + 1];
            (*argc)--;
            return;
        }
}

static int no_extra_options(int argc, char **argv)
{
    int i;

    for (i = 0; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0)
            return ctl_fail(CTL_USAGE, "unknown option \"%s\"", argv[i]);
    return CTL_OK;
}

/* "90", "90s", "30m", "12h", "7d" as seconds; -1 when not one. */
static long long parse_duration(const char *s)
{
    char     *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v <= 0 || v > 10LL * 365 * 86400)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    if (strcmp(end, "d") == 0)
        return v * 86400;
    return -1;
}

static int valid_event_id(const char *id)
{
    if (strncmp(id, "ev-", 3) != 0 || strlen(id) != 35 ||
        strspn(id + 3, "0123456789abcdef") != 32)
        return ctl_fail(CTL_USAGE, "\"%s\" is not an event id (ev- and 32 hex digits; cwppctl "
                        "events list shows them)", id);
    return CTL_OK;
}

/* ------------------------------------------------------------------ changes */

/*
 * respond's --entity, --validity and --account, in order: --validity and --account before
 * the first --entity apply to every entity; after an --entity, to that entity only (the
 * analyst edits each policy). Takes them out of argv; ents gets a "TYPE:VALUE" text per
 * entity, or {"entity", "validity_s"?, "account"?} when it has its own.
 */
static int respond_entities(int *argc, char **argv, json_t *ents, const char **validity,
                            const char **account)
{
    json_t *cur = NULL;
    int     i, k = 0;

    for (i = 0; i < *argc; i++) {
        const char *o = argv[i];
        int         is_ent = strcmp(o, "--entity") == 0, is_val = strcmp(o, "--validity") == 0;
        int         is_acc = strcmp(o, "--account") == 0;

        if (strcmp(o, "--") == 0) {
            for (; i < *argc; i++)
                argv[k++] = argv[i];
            break;
        }
        if (!is_ent && !is_val && !is_acc) {
            argv[k++] = argv[i];
            continue;
        }
        if (i + 1 >= *argc)
            return ctl_fail(CTL_USAGE, "%s needs a value", o);
        i++;
        if (is_ent) {
            cur = json_pack("{s:s}", "entity", argv[i]);
            json_array_append_new(ents, cur);
        } else if (cur == NULL) {
            *(is_val ? validity : account) = argv[i];
        } else if (is_acc) {
            json_object_set_new(cur, "account", json_string(argv[i]));
        } else {
            long long secs = parse_duration(argv[i]);

            if (secs < 0)
                return ctl_fail(CTL_USAGE, "--validity \"%s\" is not a duration (e.g. 3600, "
                                "90s, 30m, 12h, 7d)", argv[i]);
            json_object_set_new(cur, "validity_s", json_integer(secs));
        }
    }
    *argc = k;
    for (i = 0; i < (int)json_array_size(ents); i++) {
        json_t *it = json_array_get(ents, i);

        if (json_object_size(it) == 1) /* no overrides: the plain text */
            json_array_set(ents, (size_t)i, json_object_get(it, "entity"));
    }
    return CTL_OK;
}

/*
 * `events status|owner|level ID,ID,... VALUE [--remark R]`: the bulk form (POST
 * /api/v1/events/_bulk/VERB), one line per event: ok, or why not. Exit 0 when every one
 * changed, 1 when some did not. Takes payload (an empty object).
 */
static int bulk_change(ctl_t *c, const char *verb, const char *list, const char *value,
                       const char *remark, json_t *payload)
{
    json_t     *ids = json_array(), *doc = NULL, *item;
    char       *copy = strdup(list), *save = NULL, *id, path[96];
    size_t      i;
    int         rc;

    for (id = copy != NULL ? strtok_r(copy, ",", &save) : NULL; id != NULL;
         id = strtok_r(NULL, ",", &save)) {
        if (valid_event_id(id) != CTL_OK) {
            free(copy);
            json_decref(ids);
            json_decref(payload);
            return CTL_USAGE;
        }
        json_array_append_new(ids, json_string(id));
    }
    free(copy);
    json_object_set_new(payload, "ids", ids);
    json_object_set_new(payload, verb, json_string(value));
    if (remark != NULL)
        json_object_set_new(payload, "remark", json_string(remark));
    snprintf(path, sizeof(path), "/api/v1/events/_bulk/%s", verb);
    rc = ctl_api(c, "POST", path, payload, &doc);
    json_decref(payload);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        rc = json_integer_value(json_object_get(doc, "failed")) > 0 ? CTL_REFUSED : CTL_OK;
        ctl_print_json(doc);
        return rc;
    }
    json_array_foreach(json_object_get(doc, "items"), i, item) {
        const char *st = json_string_value(json_object_get(item, "status"));

        if (st != NULL && strcmp(st, "ok") == 0)
            printf("%s: %s\n", ctl_safe(json_string_value(json_object_get(item, "id"))),
                   ctl_safe(json_string_value(json_object_get(item, "message"))));
        else
            printf("%s: not changed: %s\n",
                   ctl_safe(json_string_value(json_object_get(item, "id"))),
                   ctl_safe(json_string_value(json_object_get(json_object_get(item, "problem"),
                                                              "detail")) != NULL
                                ? json_string_value(json_object_get(
                                      json_object_get(item, "problem"), "detail"))
                                : st));
    }
    rc = json_integer_value(json_object_get(doc, "failed")) > 0 ? CTL_REFUSED : CTL_OK;
    printf("%lld changed, %lld not\n", (long long)json_integer_value(json_object_get(doc, "ok")),
           (long long)json_integer_value(json_object_get(doc, "failed")));
    json_decref(doc);
    return rc;
}

static int event_change(ctl_t *c, const char *verb, int argc, char **argv)
{
    const char *remark = NULL, *validity = NULL, *account = NULL, *status = NULL;
    const char *playbook = NULL;
    json_t     *ents = json_array(), *payload = json_object();
    char        path[128];
    int         rc;

    if (strcmp(verb, "respond") == 0 &&
        (rc = respond_entities(&argc, argv, ents, &validity, &account)) != CTL_OK)
        goto fail;
    if ((rc = take_opt(&argc, argv, "--remark", &remark, NULL)) != CTL_OK ||
        (rc = take_opt(&argc, argv, "--validity", &validity, NULL)) != CTL_OK ||
        (rc = take_opt(&argc, argv, "--account", &account, NULL)) != CTL_OK ||
        (rc = take_opt(&argc, argv, "--status", &status, NULL)) != CTL_OK ||
        (rc = take_opt(&argc, argv, "--playbook", &playbook, NULL)) != CTL_OK ||
        (rc = take_opt(&argc, argv, "--entity", NULL, ents)) != CTL_OK)
        goto fail;
    drop_dashes(&argc, argv);
    rc = CTL_USAGE;
    if (strcmp(verb, "status") == 0 || strcmp(verb, "owner") == 0 ||
        strcmp(verb, "level") == 0 || strcmp(verb, "remark") == 0) {
        if (argc != 2 || validity || account || status || playbook || json_array_size(ents)) {
            ctl_fail(CTL_USAGE, "usage: cwppctl events %s EVENT_ID %s", verb,
                     strcmp(verb, "status") == 0   ? "unhandled|handling|handled [--remark R]"
                     : strcmp(verb, "owner") == 0  ? "USER [--remark R]"
                     : strcmp(verb, "level") == 0  ? "critical|high|medium|low [--remark R]"
                                                   : "TEXT");
            goto fail;
        }
        if (strcmp(verb, "remark") == 0 && remark != NULL) {
            ctl_fail(CTL_USAGE, "usage: cwppctl events remark EVENT_ID TEXT");
            goto fail;
        }
        if (strchr(argv[0], ',') != NULL && strcmp(verb, "remark") != 0) {
            json_decref(ents);
            return bulk_change(c, verb, argv[0], argv[1], remark, payload);
        }
        if (valid_event_id(argv[0]) != CTL_OK)
            goto fail;
        json_object_set_new(payload, "event_id", json_string(argv[0]));
        json_object_set_new(payload, strcmp(verb, "remark") == 0 ? "remark" : verb,
                            json_string(argv[1]));
    } else {
        int respond = strcmp(verb, "respond") == 0;

        if (argc != 1 || (respond && playbook != NULL) ||
            (respond ? json_array_size(ents) == 0 || status == NULL
                     : json_array_size(ents) != 1 || status != NULL)) {
            ctl_fail(CTL_USAGE, respond
                     ? "usage: cwppctl events respond EVENT_ID --entity TYPE:VALUE... "
                       "--status handling|handled [--validity D] [--account A] [--remark R]"
                     : "usage: cwppctl events playbook EVENT_ID --entity TYPE:VALUE "
                       "[--playbook NAME] [--validity D] [--account A] [--remark R]");
            goto fail;
        }
        if (valid_event_id(argv[0]) != CTL_OK)
            goto fail;
        json_object_set_new(payload, "event_id", json_string(argv[0]));
        if (respond) {
            cwpp_event_status_t ts;

            /* the statuses a handling policy may leave the event in */
            if (cwpp_event_status_parse(status, &ts) != 0 ||
                (ts != CWPP_EVS_HANDLING && ts != CWPP_EVS_HANDLED)) {
                ctl_fail(CTL_USAGE, "--status must be handling or handled (the status the "
                         "event takes when every task succeeds)");
                goto fail;
            }
            json_object_set_new(payload, "status", json_string(status));
            json_object_set_new(payload, "entities", json_incref(ents));
        } else {
            json_object_set(payload, "entity", json_array_get(ents, 0));
            if (playbook != NULL)
                json_object_set_new(payload, "playbook", json_string(playbook));
        }
        if (validity != NULL) {
            long long s = parse_duration(validity);

            if (s < 0) {
                ctl_fail(CTL_USAGE, "--validity \"%s\" is not a duration (e.g. 3600, 90s, 30m, "
                         "12h, 7d)", validity);
                goto fail;
            }
            json_object_set_new(payload, "validity_s", json_integer(s));
        }
        if (account != NULL)
            json_object_set_new(payload, "account", json_string(account));
    }
    if (remark != NULL)
        json_object_set_new(payload, "remark", json_string(remark));
    json_decref(ents);
    /* the event is the path's; the API takes the rest of the command's payload */
    snprintf(path, sizeof(path), "/api/v1/events/%s/%s",
             json_string_value(json_object_get(payload, "event_id")), verb);
    json_object_del(payload, "event_id");
    return ctl_api_change(c, path, payload);
fail:
    json_decref(ents);
    json_decref(payload);
    return rc != CTL_OK ? rc : CTL_USAGE;
}

/* -------------------------------------------------------------------- reads */

/* Member k of object o as text safe for a terminal (ctl_safe: at most 4 in one call). */
#define JS(o, k) ctl_safe(json_string_value(json_object_get((o), (k))))

/* GET /api/v1/events/ID/what into *doc (a 404 said "there is no event"). */
static int event_get(ctl_t *c, const char *id, const char *what, json_t **doc)
{
    char path[160];

    snprintf(path, sizeof(path), "/api/v1/events/%s/%s", id, what);
    return ctl_api(c, "GET", path, NULL, doc);
}

static int events_recommend(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL, *ents, *pbs;
    int     rc, i;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events recommend EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK ||
        (rc = event_get(c, argv[0], "recommendations", &doc)) != CTL_OK)
        return rc;
    ents = json_object_get(doc, "entities");
    pbs = json_object_get(doc, "playbooks");
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    printf("Recommended handling for %s (cwppctl events respond %s --entity TYPE:VALUE... "
           "--status handling|handled)\n\n", argv[0], argv[0]);
    printf("%-44s %-22s %s\n", "ENTITY", "POLICY", "NOTE");
    for (i = 0; i < (int)json_array_size(ents); i++) {
        json_t     *o = json_array_get(ents, i), *pol = json_object_get(o, "policy");
        const char *ent = json_string_value(json_object_get(o, "entity"));

        printf("%-44.200s %-22s %s\n", ctl_safe(ent),
               pol != NULL && !json_is_null(pol) ? JS(pol, "title") : "-",
               pol == NULL || json_is_null(pol) ? "no built-in handling policy"
               : json_is_true(json_object_get(o, "recommended"))
                   ? "recommended by the assessment"
                   : "");
    }
    printf("\nPlaybooks (cwppctl events playbook %s --entity TYPE:VALUE [--playbook NAME]):\n",
           argv[0]);
    for (i = 0; i < (int)json_array_size(pbs); i++) {
        json_t *o = json_array_get(pbs, i);

        printf("  %-24s %-13s %s%s\n", JS(o, "name"), JS(o, "entity_type"),
               json_is_true(json_object_get(o, "is_default")) ? "(default) " : "",
               JS(o, "description"));
    }
    json_decref(doc);
    return CTL_OK;
}

static int events_tasks(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL, *pols;
    int     rc;
    size_t  i, j;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events tasks EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK ||
        (rc = event_get(c, argv[0], "policies", &doc)) != CTL_OK)
        return rc;
    pols = json_object_get(doc, "policies");
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    if (json_array_size(pols) == 0)
        printf("No handling policies or playbooks on %s yet.\n", argv[0]);
    for (i = 0; i < json_array_size(pols); i++) {
        json_t *pol = json_array_get(pols, i), *ts = json_object_get(pol, "tasks");

        printf("%s %-8s %-22s %s:", JS(pol, "policy_id"), JS(pol, "kind"), JS(pol, "name"),
               JS(pol, "entity_type"));
        printf("%.200s on %s (account %s): %s, ", JS(pol, "entity_value"), JS(pol, "asset_id"),
               JS(pol, "dest_account"), JS(pol, "state"));
        printf("valid until %s%s%s\n", JS(pol, "valid_until"),
               json_string_length(json_object_get(pol, "reason")) ? ": " : "",
               json_string_length(json_object_get(pol, "reason")) ? JS(pol, "reason") : "");
        for (j = 0; j < json_array_size(ts); j++) {
            json_t *t = json_array_get(ts, j);

            printf("    %s %-8s step %lld %-16s ", JS(t, "task_id"), JS(t, "kind"),
                   (long long)json_integer_value(json_object_get(t, "step")) + 1,
                   JS(t, "action"));
            printf("%-11s attempt %lld/%lld %.300s\n", JS(t, "state"),
                   (long long)json_integer_value(json_object_get(t, "attempt")),
                   (long long)json_integer_value(json_object_get(t, "max_attempts")),
                   json_string_length(json_object_get(t, "reason")) ? JS(t, "reason") : "");
        }
    }
    json_decref(doc);
    return CTL_OK;
}

static int events_log(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL, *rows;
    int     rc;
    size_t  i;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events log EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK ||
        (rc = event_get(c, argv[0], "log", &doc)) != CTL_OK)
        return rc;
    rows = json_object_get(doc, "log");
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    if (json_array_size(rows) == 0)
        printf("Nothing has been done on %s yet.\n", argv[0]);
    for (i = 0; i < json_array_size(rows); i++) {
        json_t     *o = json_array_get(rows, i);
        char       *b = json_dumps(json_object_get(o, "before"), JSON_COMPACT | JSON_ENCODE_ANY);
        char       *a = json_dumps(json_object_get(o, "after"), JSON_COMPACT | JSON_ENCODE_ANY);
        const char *rem = json_string_value(json_object_get(o, "remark"));

        printf("%s  %-12.64s %-18s %s ", JS(o, "at"), JS(o, "actor"), JS(o, "action"),
               JS(o, "object_type"));
        printf("%.120s  %s -> %s", JS(o, "object_id"), ctl_safe(b ? b : "null"),
               ctl_safe(a ? a : "null"));
        printf("%s%.300s%s\n", rem ? "  (\"" : "", rem ? ctl_safe(rem) : "", rem ? "\")" : "");
        free(b);
        free(a);
    }
    json_decref(doc);
    return CTL_OK;
}

int ctl_events_respond(ctl_t *c, int argc, char **argv)
{
    static const char *const changes[] = {"status", "owner", "level", "remark", "respond",
                                          "playbook"};
    size_t k;

    if (argc < 1)
        return -1;
    for (k = 0; k < sizeof(changes) / sizeof(changes[0]); k++)
        if (strcmp(argv[0], changes[k]) == 0)
            return event_change(c, changes[k], argc - 1, argv + 1);
    if (strcmp(argv[0], "recommend") == 0)
        return events_recommend(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "tasks") == 0)
        return events_tasks(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "log") == 0)
        return events_log(c, argc - 1, argv + 1);
    return -1;
}

/* ------------------------------------------------ playbooks, users, accounts */

/* A JSON value as table text: strings as they are, null "-", booleans t/f, the rest as
 * JSON. Returns a malloc'd string (NULL on allocation failure). */
static char *cell(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "t" : "f");
    return json_dumps(v, JSON_ENCODE_ANY);
}

/* Prints doc's array key as a table of cols (the API's columns, in order) or, with --json,
 * doc itself. Takes doc. */
static int print_table(ctl_t *c, json_t *doc, const char *key, const char *const *cols,
                       const char *empty)
{
    json_t *rows = json_object_get(doc, key);
    size_t  i, j, n = 0;

    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    while (cols[n] != NULL)
        n++;
    if (json_array_size(rows) == 0)
        printf("%s\n", empty);
    for (j = 0; j < n; j++)
        printf(j + 1 < n ? "%-22s " : "%s\n", cols[j]);
    for (i = 0; i < json_array_size(rows); i++)
        for (j = 0; j < n; j++) {
            char *v = cell(json_object_get(json_array_get(rows, i), cols[j]));

            printf(j + 1 < n ? "%-22.200s " : "%.400s\n", ctl_safe(v != NULL ? v : "-"));
            free(v);
        }
    json_decref(doc);
    return CTL_OK;
}

/* A change the API answers with a document (a DELETE): printed as a command's answer. */
static int print_answer(ctl_t *c, json_t *doc)
{
    const char *msg = json_string_value(json_object_get(doc, "message"));

    if (c->json)
        ctl_print_json(json_pack("{s:s, s:s, s:o}", "status", "ok", "message",
                                 msg != NULL ? msg : "", "result",
                                 json_object_get(doc, "result") != NULL
                                     ? json_incref(json_object_get(doc, "result"))
                                     : json_object()));
    else
        printf("%s\n", msg != NULL ? msg : "done");
    json_decref(doc);
    return CTL_OK;
}

/* Appends the percent-encoded segment s to b (a path). */
static void seg(cwpp_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '@') {
            cwpp_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

            cwpp_buf_append(b, e, 3);
        }
    }
}

/* "/api/v1/<coll>/<name percent-encoded><tail>" as a malloc'd string (NULL: out of
 * memory). */
static char *object_path(const char *coll, const char *name, const char *tail)
{
    cwpp_buf_t b;
    char      *out;

    memset(&b, 0, sizeof(b));
    cwpp_buf_append(&b, "/api/v1/", 8);
    cwpp_buf_append(&b, coll, strlen(coll));
    cwpp_buf_append(&b, "/", 1);
    seg(&b, name);
    cwpp_buf_append(&b, tail, strlen(tail));
    /* the buffer is not NUL-terminated: copy its bytes, then end them */
    out = malloc(b.len + 1);
    if (out != NULL) {
        if (b.len > 0)
            memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    }
    cwpp_buf_free(&b);
    return out;
}

int ctl_playbooks(ctl_t *c, int argc, char **argv)
{
    int rc;

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        static const char *const cols[] = {"name", "entity_type", "origin", "default",
                                           "steps", "description", "step_list", NULL};
        const char *type = NULL;
        cwpp_buf_t  path;
        json_t     *doc = NULL, *rows;
        size_t      i;

        argc--;
        argv++;
        if ((rc = take_opt(&argc, argv, "--entity-type", &type, NULL)) != CTL_OK)
            return rc;
        if (argc != 0)
            return ctl_fail(CTL_USAGE, "usage: cwppctl playbooks list [--entity-type T]");
        memset(&path, 0, sizeof(path));
        cwpp_buf_append(&path, "/api/v1/playbooks", 17);
        if (type != NULL)
            ctl_q(&path, "entity_type", type);
        cwpp_buf_append(&path, "", 1);
        rc = ctl_api(c, "GET", (const char *)path.data, NULL, &doc);
        cwpp_buf_free(&path);
        if (rc != CTL_OK)
            return rc;
        if (c->json)
            return print_table(c, doc, "playbooks", cols, "");
        rows = json_object_get(doc, "playbooks");
        for (i = 0; i < json_array_size(rows); i++) {
            json_t *o = json_array_get(rows, i);
            char   *steps = json_dumps(json_object_get(o, "step_list"), JSON_ENCODE_ANY);

            printf("%-24s %-13s %-8s %s%lld step(s): ", JS(o, "name"), JS(o, "entity_type"),
                   JS(o, "origin"), json_is_true(json_object_get(o, "default")) ? "default, " : "",
                   (long long)json_integer_value(json_object_get(o, "steps")));
            printf("%s\n    %s\n", ctl_safe(steps != NULL ? steps : "[]"),
                   JS(o, "description"));
            free(steps);
        }
        if (json_array_size(rows) == 0)
            printf("No playbooks (the responder writes the built-in ones when it starts).\n");
        json_decref(doc);
        return CTL_OK;
    }
    if (argc == 2 && strcmp(argv[0], "add") == 0) {
        json_error_t jerr;
        json_t      *pb = json_load_file(argv[1], JSON_REJECT_DUPLICATES, &jerr);
        char         why[300];

        if (pb == NULL)
            return ctl_fail(CTL_USAGE, "%s: not a JSON playbook (line %d: %s)", argv[1],
                            jerr.line, jerr.text);
        if (cwpp_playbook_check(pb, why, sizeof(why)) != 0) {
            json_decref(pb);
            return ctl_fail(CTL_USAGE, "%s: %s", argv[1], why);
        }
        return ctl_api_change(c, "/api/v1/playbooks", pb);
    }
    if (argc == 2 && strcmp(argv[0], "delete") == 0) {
        char   *path = object_path("playbooks", argv[1], "");
        json_t *doc = NULL;

        if (path == NULL)
            return ctl_fail(CTL_INFRA, "out of memory");
        rc = ctl_api(c, "DELETE", path, NULL, &doc);
        free(path);
        return rc != CTL_OK ? rc : print_answer(c, doc);
    }
    return ctl_fail(CTL_USAGE, "usage: cwppctl playbooks list [--entity-type T] | add FILE.json | "
                    "delete NAME");
}

/* POST /api/v1/users/USER/verb with body (stolen). */
static int user_change(ctl_t *c, const char *user, const char *verb, json_t *body)
{
    char  tail[32];
    char *path;
    int   rc;

    snprintf(tail, sizeof(tail), "/%s", verb);
    if ((path = object_path("users", user, tail)) == NULL) {
        json_decref(body);
        return ctl_fail(CTL_INFRA, "out of memory");
    }
    rc = ctl_api_change(c, path, body);
    free(path);
    return rc;
}

int ctl_users(ctl_t *c, int argc, char **argv)
{
    const char *role = NULL, *dn = NULL;
    int         rc;

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        static const char *const cols[] = {"user", "role", "display_name", "state", "accounts",
                                           NULL};
        json_t *doc = NULL;

        if (argc != 1)
            return ctl_fail(CTL_USAGE, "usage: cwppctl users list");
        if ((rc = ctl_api(c, "GET", "/api/v1/users", NULL, &doc)) != CTL_OK)
            return rc;
        return print_table(c, doc, "users", cols, "No users.");
    }
    if (argc >= 2 && strcmp(argv[0], "add") == 0) {
        json_t *p;

        argc--;
        argv++;
        if ((rc = take_opt(&argc, argv, "--role", &role, NULL)) != CTL_OK ||
            (rc = take_opt(&argc, argv, "--display-name", &dn, NULL)) != CTL_OK)
            return rc;
        if (argc != 1 || no_extra_options(argc, argv) != CTL_OK)
            return ctl_fail(CTL_USAGE, "usage: cwppctl users add USER [--role "
                            "analyst|admin|viewer] [--display-name N]");
        p = json_pack("{s:s, s:s}", "user", argv[0], "role", role != NULL ? role : "analyst");
        if (dn != NULL)
            json_object_set_new(p, "display_name", json_string(dn));
        return ctl_api_change(c, "/api/v1/users", p);
    }
    if (argc == 3 && (strcmp(argv[0], "grant") == 0 || strcmp(argv[0], "revoke") == 0))
        return user_change(c, argv[1], argv[0], json_pack("{s:s}", "account", argv[2]));
    if (argc == 3 && strcmp(argv[0], "role") == 0)
        return user_change(c, argv[1], "role", json_pack("{s:s}", "role", argv[2]));
    if (argc == 2 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0))
        return user_change(c, argv[1], argv[0], json_object());
    return ctl_fail(CTL_USAGE, "usage: cwppctl users list | add USER [--role "
                    "analyst|admin|viewer] [--display-name N] | grant USER ACCOUNT | revoke "
                    "USER ACCOUNT | role USER analyst|admin|viewer | disable USER | enable USER");
}

int ctl_accounts(ctl_t *c, int argc, char **argv)
{
    const char *mgr = NULL, *name = NULL;
    int         rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0) {
        static const char *const cols[] = {"member", "manager", "name", "created_by", NULL};
        json_t *doc = NULL;

        if ((rc = ctl_api(c, "GET", "/api/v1/accounts", NULL, &doc)) != CTL_OK)
            return rc;
        return print_table(c, doc, "member_accounts", cols, "No member accounts.");
    }
    if (argc >= 2 && strcmp(argv[0], "add-member") == 0) {
        json_t *p;

        argc--;
        argv++;
        if ((rc = take_opt(&argc, argv, "--manager", &mgr, NULL)) != CTL_OK ||
            (rc = take_opt(&argc, argv, "--name", &name, NULL)) != CTL_OK)
            return rc;
        if (argc != 1 || mgr == NULL || no_extra_options(argc, argv) != CTL_OK)
            return ctl_fail(CTL_USAGE, "usage: cwppctl accounts add-member ACCOUNT --manager "
                            "ACCOUNT [--name N]");
        p = json_pack("{s:s, s:s}", "account", argv[0], "manager", mgr);
        if (name != NULL)
            json_object_set_new(p, "name", json_string(name));
        return ctl_api_change(c, "/api/v1/accounts/members", p);
    }
    if (argc == 2 && strcmp(argv[0], "perimeter") == 0 && strcmp(argv[1], "list") == 0) {
        static const char *const cols[] = {"account", "asset", "declared_by", "declared_at",
                                           NULL};
        json_t *doc = NULL;

        if ((rc = ctl_api(c, "GET", "/api/v1/accounts", NULL, &doc)) != CTL_OK)
            return rc;
        return print_table(c, doc, "perimeter_agents", cols, "No perimeter agents.");
    }
    if (argc >= 3 && strcmp(argv[0], "perimeter") == 0) {
        int remove = 0, i, j;

        for (i = j = 1; i < argc; i++) {
            if (strcmp(argv[i], "--remove") == 0)
                remove = 1;
            else
                argv[j++] = argv[i];
        }
        argc = j;
        if (argc != 3 || no_extra_options(argc - 1, argv + 1) != CTL_OK)
            return ctl_fail(CTL_USAGE, "usage: cwppctl accounts perimeter ACCOUNT ASSET "
                            "[--remove] | perimeter list");
        return ctl_api_change(c, "/api/v1/accounts/perimeter",
                              json_pack("{s:s, s:s, s:b}", "account", argv[1], "asset",
                                        argv[2], "remove", remove));
    }
    return ctl_fail(CTL_USAGE, "usage: cwppctl accounts list | add-member ACCOUNT --manager "
                    "ACCOUNT [--name N] | perimeter ACCOUNT ASSET [--remove] | perimeter list");
}
