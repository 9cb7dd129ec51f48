/* SPDX-License-Identifier: Apache-2.0 */
/*
 * respond.c: the analysts' decisions on events (applied by the responder: docs/responder.md)
 * and the views of what they did:
 *
 *   events status|owner|level|remark|respond|playbook ...   commands
 *   events recommend|tasks|log ID                           reads
 *   playbooks list|add|delete, users list|add|grant|revoke|disable|enable,
 *   accounts list|add-member
 */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_correlate.h"
#include "cwpp_respond.h"

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

static int need_actor(const ctl_t *c)
{
    if (c->actor == NULL || c->actor[0] == '\0')
        return ctl_fail(CTL_USAGE, "who are you? Set CWPP_ACTOR or --actor: every change is "
                        "logged with its actor");
    return CTL_OK;
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

static int event_change(ctl_t *c, const char *verb, int argc, char **argv)
{
    const char *remark = NULL, *validity = NULL, *account = NULL, *status = NULL;
    const char *playbook = NULL;
    json_t     *ents = json_array(), *payload = json_object();
    char        type[32];
    int         rc;

    if ((rc = need_actor(c)) != CTL_OK)
        goto fail;
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
    snprintf(type, sizeof(type), "event.%s", verb);
    return ctl_command(c, "responder", type, payload);
fail:
    json_decref(ents);
    json_decref(payload);
    return rc != CTL_OK ? rc : CTL_USAGE;
}

/* -------------------------------------------------------------------- reads */

static PGresult *query(ctl_t *c, const char *sql, int n, const char *const *p, int *rc)
{
    PGconn   *pg = ctl_pg(c);
    PGresult *r;

    if (pg == NULL) {
        *rc = CTL_INFRA;
        return NULL;
    }
    r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        *rc = ctl_query_failed(pg, r);
        return NULL;
    }
    *rc = CTL_OK;
    return r;
}

/* Fails with "no event" when id is not an event. */
static int event_exists(ctl_t *c, const char *id)
{
    const char *p[1] = {id};
    int         rc;
    PGresult   *r = query(c, "SELECT 1 FROM events WHERE event_id = $1", 1, p, &rc);

    if (r == NULL)
        return rc;
    rc = PQntuples(r) == 1 ? CTL_OK
                           : ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list)",
                                      id);
    PQclear(r);
    return rc;
}

/* Rows of r as a JSON array (every column a string or null; json columns parsed). */
static json_t *rows_json(PGresult *r)
{
    json_t *arr = json_array();
    int     i, j;

    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();

        for (j = 0; j < PQnfields(r); j++) {
            json_t *v = json_null();

            if (!PQgetisnull(r, i, j)) {
                const char *s = PQgetvalue(r, i, j);
                Oid         t = PQftype(r, j);

                if (t == 114 || t == 3802) { /* json, jsonb */
                    json_error_t jerr;

                    v = json_loads(s, JSON_DECODE_ANY, &jerr);
                    if (v == NULL)
                        v = json_string(s);
                } else if (t == 20 || t == 23) { /* int8, int4 */
                    v = json_integer(strtoll(s, NULL, 10));
                } else if (t == 16) {
                    v = json_boolean(s[0] == 't');
                } else {
                    v = json_string(s);
                }
            }
            json_object_set_new(o, PQfname(r, j), v);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static const char SQL_RECOMMEND[] =
    "SELECT e.entity_type, e.value, count(DISTINCT e.alert_id)::int AS alerts, "
    "string_agg(DISTINCT a.asset_id, ',') AS assets, "
    "EXISTS (SELECT 1 FROM jsonb_array_elements(ev.assessment -> 'recommendations') r "
    "WHERE r ->> 'entity_type' = e.entity_type AND r ->> 'entity_value' = e.value) AS recommended "
    "FROM entity_alerts e JOIN alerts a ON a.alert_id = e.alert_id "
    "JOIN events ev ON ev.event_id = e.event_id WHERE e.event_id = $1 "
    "GROUP BY e.entity_type, e.value, ev.assessment ORDER BY e.entity_type, e.value";

static int events_recommend(ctl_t *c, int argc, char **argv)
{
    const char *p[1];
    PGresult   *r, *pb;
    json_t     *doc, *ents, *pbs;
    int         rc, i;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events recommend EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK || (rc = event_exists(c, argv[0])) != CTL_OK)
        return rc;
    p[0] = argv[0];
    if ((r = query(c, SQL_RECOMMEND, 1, p, &rc)) == NULL)
        return rc;
    if ((pb = query(c, "SELECT name, entity_type, description, origin, is_default FROM playbooks "
                    "ORDER BY entity_type, NOT is_default, name", 0, NULL, &rc)) == NULL) {
        PQclear(r);
        return rc;
    }
    ents = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        const char              *t = PQgetvalue(r, i, 0), *v = PQgetvalue(r, i, 1);
        const cwpp_policy_def_t *pd = cwpp_policy_for(t);
        json_t                  *o = json_pack("{s:s++, s:s, s:s, s:i, s:s, s:b}", "entity", t,
                                               ":", v, "type", t, "value", v, "alerts",
                                               atoi(PQgetvalue(r, i, 2)), "assets",
                                               PQgetvalue(r, i, 3), "recommended",
                                               PQgetvalue(r, i, 4)[0] == 't');

        if (pd != NULL)
            json_object_set_new(o, "policy", json_pack("{s:s, s:s, s:s}", "action", pd->action,
                                                       "title", pd->title, "description",
                                                       pd->description));
        else
            json_object_set_new(o, "policy", json_null());
        json_array_append_new(ents, o);
    }
    pbs = rows_json(pb);
    doc = json_pack("{s:s, s:o, s:o}", "event_id", argv[0], "entities", ents, "playbooks", pbs);
    PQclear(r);
    PQclear(pb);
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

        printf("%-44.200s %-22s %s\n", ent,
               pol != NULL && !json_is_null(pol)
                   ? json_string_value(json_object_get(pol, "title"))
                   : "-",
               pol == NULL || json_is_null(pol) ? "no built-in handling policy"
               : json_is_true(json_object_get(o, "recommended"))
                   ? "recommended by the assessment"
                   : "");
    }
    printf("\nPlaybooks (cwppctl events playbook %s --entity TYPE:VALUE [--playbook NAME]):\n",
           argv[0]);
    for (i = 0; i < (int)json_array_size(pbs); i++) {
        json_t *o = json_array_get(pbs, i);

        printf("  %-24s %-13s %s%s\n", json_string_value(json_object_get(o, "name")),
               json_string_value(json_object_get(o, "entity_type")),
               json_is_true(json_object_get(o, "is_default")) ? "(default) " : "",
               json_string_value(json_object_get(o, "description")));
    }
    json_decref(doc);
    return CTL_OK;
}

static const char SQL_POLICIES[] =
    "SELECT policy_id, kind, name, entity_type, entity_value, asset_id, dest_account, state, "
    "target_status, reason, " CTL_TS("valid_until") " AS valid_until, created_by, "
    CTL_TS("created_at") " AS created_at FROM handling_policies WHERE event_id = $1 "
    "ORDER BY created_at, policy_id";
static const char SQL_TASKS[] =
    "SELECT task_id, policy_id, kind, step, action, asset_id, state, attempt, max_attempts, "
    "reason, result, " CTL_TS("created_at") " AS created_at, " CTL_TS("finished_at")
    " AS finished_at FROM handling_tasks WHERE event_id = $1 ORDER BY created_at, kind, step, "
    "task_id";

static int events_tasks(ctl_t *c, int argc, char **argv)
{
    const char *p[1];
    PGresult   *rp, *rt;
    json_t     *pols, *tasks;
    int         rc;
    size_t      i, j;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events tasks EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK || (rc = event_exists(c, argv[0])) != CTL_OK)
        return rc;
    p[0] = argv[0];
    if ((rp = query(c, SQL_POLICIES, 1, p, &rc)) == NULL)
        return rc;
    if ((rt = query(c, SQL_TASKS, 1, p, &rc)) == NULL) {
        PQclear(rp);
        return rc;
    }
    pols = rows_json(rp);
    tasks = rows_json(rt);
    PQclear(rp);
    PQclear(rt);
    for (i = 0; i < json_array_size(pols); i++) {
        json_t     *pol = json_array_get(pols, i), *mine = json_array();
        const char *pid = json_string_value(json_object_get(pol, "policy_id"));

        for (j = 0; j < json_array_size(tasks); j++) {
            json_t *t = json_array_get(tasks, j);

            const char *tp = json_string_value(json_object_get(t, "policy_id"));

            if (tp != NULL && pid != NULL && strcmp(tp, pid) == 0)
                json_array_append(mine, t);
        }
        json_object_set_new(pol, "tasks", mine);
    }
    json_decref(tasks);
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:o}", "event_id", argv[0], "policies", pols));
        return CTL_OK;
    }
    if (json_array_size(pols) == 0)
        printf("No handling policies or playbooks on %s yet.\n", argv[0]);
    for (i = 0; i < json_array_size(pols); i++) {
        json_t *pol = json_array_get(pols, i), *ts = json_object_get(pol, "tasks");

        printf("%s %-8s %-22s %s:%.200s on %s (account %s): %s, valid until %s%s%s\n",
               json_string_value(json_object_get(pol, "policy_id")),
               json_string_value(json_object_get(pol, "kind")),
               json_string_value(json_object_get(pol, "name")),
               json_string_value(json_object_get(pol, "entity_type")),
               json_string_value(json_object_get(pol, "entity_value")),
               json_string_value(json_object_get(pol, "asset_id")),
               json_string_value(json_object_get(pol, "dest_account")),
               json_string_value(json_object_get(pol, "state")),
               json_string_value(json_object_get(pol, "valid_until")),
               json_string_length(json_object_get(pol, "reason")) ? ": " : "",
               json_string_value(json_object_get(pol, "reason")));
        for (j = 0; j < json_array_size(ts); j++) {
            json_t *t = json_array_get(ts, j);

            printf("    %s %-8s step %lld %-16s %-11s attempt %lld/%lld %.300s\n",
                   json_string_value(json_object_get(t, "task_id")),
                   json_string_value(json_object_get(t, "kind")),
                   (long long)json_integer_value(json_object_get(t, "step")) + 1,
                   json_string_value(json_object_get(t, "action")),
                   json_string_value(json_object_get(t, "state")),
                   (long long)json_integer_value(json_object_get(t, "attempt")),
                   (long long)json_integer_value(json_object_get(t, "max_attempts")),
                   json_string_value(json_object_get(t, "reason")));
        }
    }
    json_decref(pols);
    return CTL_OK;
}

static const char SQL_LOG[] =
    "SELECT log_id, " CTL_TS("at") " AS at, actor, action, object_type, object_id, before, "
    "after, remark, command_id FROM activity_log WHERE event_id = $1 ORDER BY at, log_id";

static int events_log(ctl_t *c, int argc, char **argv)
{
    const char *p[1];
    PGresult   *r;
    json_t     *rows;
    int         rc;
    size_t      i;

    if (argc != 1)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events log EVENT_ID");
    if ((rc = valid_event_id(argv[0])) != CTL_OK || (rc = event_exists(c, argv[0])) != CTL_OK)
        return rc;
    p[0] = argv[0];
    if ((r = query(c, SQL_LOG, 1, p, &rc)) == NULL)
        return rc;
    rows = rows_json(r);
    PQclear(r);
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:o}", "event_id", argv[0], "log", rows));
        return CTL_OK;
    }
    if (json_array_size(rows) == 0)
        printf("Nothing has been done on %s yet.\n", argv[0]);
    for (i = 0; i < json_array_size(rows); i++) {
        json_t     *o = json_array_get(rows, i);
        char       *b = json_dumps(json_object_get(o, "before"), JSON_COMPACT | JSON_ENCODE_ANY);
        char       *a = json_dumps(json_object_get(o, "after"), JSON_COMPACT | JSON_ENCODE_ANY);
        const char *rem = json_string_value(json_object_get(o, "remark"));

        printf("%s  %-12.64s %-18s %s %.120s  %s -> %s%s%.300s%s\n",
               json_string_value(json_object_get(o, "at")),
               json_string_value(json_object_get(o, "actor")),
               json_string_value(json_object_get(o, "action")),
               json_string_value(json_object_get(o, "object_type")),
               json_string_value(json_object_get(o, "object_id")), b ? b : "null",
               a ? a : "null", rem ? "  (\"" : "", rem ? rem : "", rem ? "\")" : "");
        free(b);
        free(a);
    }
    json_decref(rows);
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

static int print_rows(ctl_t *c, PGresult *r, const char *key, const char *empty)
{
    json_t *rows = rows_json(r);
    size_t  i;
    int     j;

    if (c->json) {
        ctl_print_json(json_pack("{s:o}", key, rows));
        return CTL_OK;
    }
    if (json_array_size(rows) == 0)
        printf("%s\n", empty);
    for (j = 0; j < PQnfields(r); j++)
        printf(j + 1 < PQnfields(r) ? "%-22s " : "%s\n", PQfname(r, j));
    for (i = 0; i < (size_t)PQntuples(r); i++)
        for (j = 0; j < PQnfields(r); j++)
            printf(j + 1 < PQnfields(r) ? "%-22.200s " : "%.400s\n",
                   PQgetisnull(r, (int)i, j) ? "-" : PQgetvalue(r, (int)i, j));
    json_decref(rows);
    return CTL_OK;
}

int ctl_playbooks(ctl_t *c, int argc, char **argv)
{
    int rc;

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        const char *type = NULL, *p[1];
        PGresult   *r;

        argc--;
        argv++;
        if ((rc = take_opt(&argc, argv, "--entity-type", &type, NULL)) != CTL_OK)
            return rc;
        if (argc != 0)
            return ctl_fail(CTL_USAGE, "usage: cwppctl playbooks list [--entity-type T]");
        p[0] = type;
        r = query(c, "SELECT name, entity_type, origin, is_default AS \"default\", "
                  "jsonb_array_length(steps) AS steps, description, steps AS step_list "
                  "FROM playbooks WHERE $1::text IS NULL OR entity_type = $1 "
                  "ORDER BY entity_type, NOT is_default, name", 1, p, &rc);
        if (r == NULL)
            return rc;
        if (!c->json) {
            int i;

            for (i = 0; i < PQntuples(r); i++)
                printf("%-24s %-13s %-8s %s%s step(s): %s\n    %s\n", PQgetvalue(r, i, 0),
                       PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                       PQgetvalue(r, i, 3)[0] == 't' ? "default, " : "", PQgetvalue(r, i, 4),
                       PQgetvalue(r, i, 6), PQgetvalue(r, i, 5));
            if (PQntuples(r) == 0)
                printf("No playbooks (the responder writes the built-in ones when it starts).\n");
            PQclear(r);
            return CTL_OK;
        }
        rc = print_rows(c, r, "playbooks", "");
        PQclear(r);
        return rc;
    }
    if ((rc = need_actor(c)) != CTL_OK)
        return rc;
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
        return ctl_command(c, "responder", "playbooks.add", json_pack("{s:o}", "playbook", pb));
    }
    if (argc == 2 && strcmp(argv[0], "delete") == 0)
        return ctl_command(c, "responder", "playbooks.delete",
                           json_pack("{s:s}", "name", argv[1]));
    return ctl_fail(CTL_USAGE, "usage: cwppctl playbooks list [--entity-type T] | add FILE.json | "
                    "delete NAME");
}

int ctl_users(ctl_t *c, int argc, char **argv)
{
    const char *role = NULL, *dn = NULL;
    int         rc;

    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        PGresult *r;

        if (argc != 1)
            return ctl_fail(CTL_USAGE, "usage: cwppctl users list");
        r = query(c, "SELECT u.user_name AS user, u.role, u.display_name, "
                  "CASE WHEN u.disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END AS state, "
                  "COALESCE(string_agg(a.account_id, ',' ORDER BY a.account_id), "
                  "CASE WHEN u.role = 'admin' THEN '(all)' ELSE '' END) AS accounts "
                  "FROM users u LEFT JOIN user_accounts a USING (user_name) "
                  "GROUP BY u.user_name ORDER BY u.user_name", 0, NULL, &rc);
        if (r == NULL)
            return rc;
        rc = print_rows(c, r, "users", "No users.");
        PQclear(r);
        return rc;
    }
    if ((rc = need_actor(c)) != CTL_OK)
        return rc;
    if (argc >= 2 && strcmp(argv[0], "add") == 0) {
        json_t *p;

        argc--;
        argv++;
        if ((rc = take_opt(&argc, argv, "--role", &role, NULL)) != CTL_OK ||
            (rc = take_opt(&argc, argv, "--display-name", &dn, NULL)) != CTL_OK)
            return rc;
        if (argc != 1 || no_extra_options(argc, argv) != CTL_OK)
            return ctl_fail(CTL_USAGE, "usage: cwppctl users add USER [--role analyst|admin] "
                            "[--display-name N]");
        p = json_pack("{s:s, s:s}", "user", argv[0], "role", role != NULL ? role : "analyst");
        if (dn != NULL)
            json_object_set_new(p, "display_name", json_string(dn));
        return ctl_command(c, "responder", "users.add", p);
    }
    if (argc == 3 && (strcmp(argv[0], "grant") == 0 || strcmp(argv[0], "revoke") == 0)) {
        char type[32];

        snprintf(type, sizeof(type), "users.%s", argv[0]);
        return ctl_command(c, "responder", type,
                           json_pack("{s:s, s:s}", "user", argv[1], "account", argv[2]));
    }
    if (argc == 2 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0)) {
        char type[32];

        snprintf(type, sizeof(type), "users.%s", argv[0]);
        return ctl_command(c, "responder", type, json_pack("{s:s}", "user", argv[1]));
    }
    return ctl_fail(CTL_USAGE, "usage: cwppctl users list | add USER [--role analyst|admin] "
                    "[--display-name N] | grant USER ACCOUNT | revoke USER ACCOUNT | "
                    "disable USER | enable USER");
}

int ctl_accounts(ctl_t *c, int argc, char **argv)
{
    const char *mgr = NULL, *name = NULL;
    int         rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0) {
        PGresult *r = query(c, "SELECT account_id AS member, manager_account_id AS manager, name, "
                            "created_by FROM managed_accounts ORDER BY manager_account_id, "
                            "account_id", 0, NULL, &rc);

        if (r == NULL)
            return rc;
        rc = print_rows(c, r, "member_accounts", "No member accounts.");
        PQclear(r);
        return rc;
    }
    if (argc >= 2 && strcmp(argv[0], "add-member") == 0) {
        json_t *p;

        if ((rc = need_actor(c)) != CTL_OK)
            return rc;
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
        return ctl_command(c, "responder", "accounts.add_member", p);
    }
    return ctl_fail(CTL_USAGE, "usage: cwppctl accounts list | add-member ACCOUNT --manager "
                    "ACCOUNT [--name N]");
}
