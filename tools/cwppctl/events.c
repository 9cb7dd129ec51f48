/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c: `cwppctl events list|show|alerts|entities|chain` and `cwppctl entities show`,
 * the analysts' read-only views of security events (docs/architecture.md "Security
 * events", "Entities", "Assessment", "Limits"; the reference's "Assess a security event").
 * What they read is written by the correlator (docs/correlator.md); docs/cwppctl.md
 * describes each verb, its output and its exit codes.
 *
 * This file holds the verbs (their arguments, the read-time settings, the dispatch); the
 * queries are in events_query.c, the text output with its one table printer in
 * events_render.c, the chain with DOT and SVG in events_chain.c (events.h). Every verb is
 * a few parameterised queries (PQexecParams only: nothing a user types is ever part of
 * SQL text) as the read-only role. The rows become one JSON document; --json
 * prints it, and the text output is rendered from the same document, so the two never
 * disagree. Alert names and entity values come from upstream producers and are hostile
 * input: text output shows control characters as escapes (a terminal must not be driven
 * by them), DOT output escapes them for Graphviz's quoted strings, and --format svg hands
 * that DOT text to `dot -Tsvg` through pipes (fork and exec, no shell).
 *
 * Two rules depend on the time of reading, so they are applied here and not stored:
 *   - retention (docs/architecture.md "Limits"): the event list, and the events an entity
 *     appears in, hold only events whose latest occurrence is within
 *     CWPP_EVENT_RETENTION_DAYS (180) days. `events show ID` still shows an older event,
 *     and says it is not listed.
 *   - quiet ("no new related alerts for a long time: lower priority"): once an event's
 *     latest alert is more than CWPP_CTL_QUIET_HOURS (24) hours old, the urgency shown is
 *     one step below the stored one and the reason "quiet" is added. 24 hours is the
 *     correlator's default joining window (correlator.window.ms): after it, a related
 *     alert occurring now opens a new event instead of joining this one.
 * Every comparison with "now" is made by the database server (its now()), so retention,
 * quiet and the 30-day entity view agree with each other.
 */
#include "events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_correlate.h"

#define RETENTION_DAYS_DEFAULT 180 /* docs/architecture.md "Limits": the list's 180 days */
#define QUIET_HOURS_DEFAULT    24  /* the correlator's default correlator.window.ms */
#define LIST_LIMIT_DEFAULT     "100"

/* The event statuses and the entity types are not listed here: their one home is
 * libs/correlate (cwpp_event_status_*) and libs/alert (cwpp_entity_type_*), which also
 * give the names for the messages below. */
static const char *const LEVELS[] = {"critical", "high", "medium", "low", NULL};

int ev_find(const char *const *list, const char *s)
{
    int i;

    for (i = 0; s != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return -1;
}

/* CTL_OK when the argument s is valid UTF-8 (what the database takes), else CTL_USAGE
 * after a sentence naming it. */
static int utf8_arg(const char *what, const char *s)
{
    if (s == NULL || cwpp_utf8_valid(s, strlen(s)))
        return CTL_OK;
    return ctl_fail(CTL_USAGE, "%s is not valid UTF-8", what);
}

/* Reads a whole-number environment variable within [lo, hi]. CTL_OK, or CTL_USAGE after
 * a sentence naming the variable. */
static int env_int(const char *name, int def, int lo, int hi, int *out)
{
    const char *v = getenv(name);
    char       *end;
    long        n;

    *out = def;
    if (v == NULL || *v == '\0')
        return CTL_OK;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        return ctl_fail(CTL_USAGE, "%s must be a whole number from %d to %d, not \"%s\"", name,
                        lo, hi, v);
    *out = (int)n;
    return CTL_OK;
}

static int settings_load(settings_t *s)
{
    int rc;

    if ((rc = env_int("CWPP_EVENT_RETENTION_DAYS", RETENTION_DAYS_DEFAULT, 1, 36500,
                      &s->retention_days)) != CTL_OK ||
        (rc = env_int("CWPP_CTL_QUIET_HOURS", QUIET_HOURS_DEFAULT, 1, 87600, &s->quiet_hours)) !=
            CTL_OK)
        return rc;
    snprintf(s->retention, sizeof(s->retention), "%d", s->retention_days);
    snprintf(s->quiet, sizeof(s->quiet), "%d", s->quiet_hours);
    return CTL_OK;
}

/* Parses a --limit value (1..100000). CTL_OK or CTL_USAGE (printed). */
static int parse_limit(const char *v)
{
    char *end;
    long  n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > 100000)
        return ctl_fail(CTL_USAGE, "--limit must be a number from 1 to 100000, not \"%s\"", v);
    return CTL_OK;
}

/*
 * A --since / --until value: an RFC 3339 time, a date (YYYY-MM-DD, 00:00 UTC), "now", or
 * how long ago (30m, 12h, 7d). Writes the RFC 3339 form into out (>= 32 bytes) and the
 * time into *ms. CTL_OK, or CTL_USAGE after a sentence naming the option.
 */
int ctl_parse_when(const char *opt, const char *v, char *out, size_t size, int64_t *ms)
{
    int64_t now = cwpp_now_ms();
    char    date[40], *end;
    double  n;

    if (strcmp(v, "now") == 0) {
        *ms = now;
    } else if ((n = strtod(v, &end)) > 0 && end != v && n <= 36500.0 * 24 * 60 &&
               (strcmp(end, "d") == 0 || strcmp(end, "h") == 0 || strcmp(end, "m") == 0) &&
               v[0] >= '0' && v[0] <= '9') {
        *ms = now - (int64_t)(n * (end[0] == 'd' ? 86400000.0
                                   : end[0] == 'h' ? 3600000.0 : 60000.0));
    } else if (strlen(v) == 10 && v[4] == '-' && v[7] == '-' &&
               snprintf(date, sizeof(date), "%sT00:00:00Z", v) > 0 &&
               cwpp_parse_time_ms(date, 0, ms) == 0) {
        /* a date: midnight UTC */
    } else if (cwpp_parse_time_ms(v, 0, ms) != 0) {
        return ctl_fail(CTL_USAGE, "%s must be a time (2026-05-01T08:00:00Z), a date "
                        "(2026-05-01), \"now\" or how long ago (30m, 12h, 7d); not \"%s\"",
                        opt, v);
    }
    cwpp_format_time_ms(*ms, out, size);
    return CTL_OK;
}

/* ------------------------------------------------------------------ the verbs */

static int events_list(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char         *status = NULL, *level = NULL, *account = NULL;
    const char         *limit = LIST_LIMIT_DEFAULT, *since = NULL, *until = NULL;
    char                since_s[40], until_s[40], names[128];
    cwpp_event_status_t evs;
    int64_t             since_ms = 0, until_ms = 0;
    ev_list_query_t     q;
    PGconn             *pg;
    json_t             *arr;
    int                 i, rc;

    for (i = 0; i < argc; i++) {
        const char *v;

        if (strcmp(argv[i], "--status") == 0) {
            if ((status = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (cwpp_event_status_parse(status, &evs) != 0)
                return ctl_fail(CTL_USAGE, "unknown event status \"%s\" (use %s)", status,
                                cwpp_event_statuses_text(names, sizeof(names), ", ", " or "));
        } else if (strcmp(argv[i], "--level") == 0) {
            if ((level = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (ev_find(LEVELS, level) < 0)
                return ctl_fail(CTL_USAGE, "unknown level \"%s\" (use critical, high, medium "
                                "or low)", level);
        } else if (strcmp(argv[i], "--account") == 0) {
            if ((account = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = utf8_arg("--account", account)) != CTL_OK)
                return rc;
        } else if (strcmp(argv[i], "--limit") == 0) {
            if ((limit = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = parse_limit(limit)) != CTL_OK)
                return rc;
        } else if (strcmp(argv[i], "--since") == 0 || strcmp(argv[i], "--until") == 0) {
            int is_since = argv[i][2] == 's';

            if ((v = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = ctl_parse_when(is_since ? "--since" : "--until", v,
                                 is_since ? since_s : until_s, sizeof(since_s),
                                 is_since ? &since_ms : &until_ms)) != CTL_OK)
                return rc;
            if (is_since)
                since = since_s;
            else
                until = until_s;
        } else {
            return ctl_fail(CTL_USAGE, "events list: unknown option \"%s\"", argv[i]);
        }
    }
    if (since != NULL && until != NULL && until_ms < since_ms)
        return ctl_fail(CTL_USAGE, "--until %s is before --since %s: nothing can match",
                        until_s, since_s);
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    q = (ev_list_query_t){status, level, account, since, until, limit};
    if ((rc = ev_query_list(pg, st, &q, &arr)) != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(json_pack("{s:o, s:i, s:i}", "events", arr, "retention_days",
                                 st->retention_days, "quiet_after_hours", st->quiet_hours));
        return CTL_OK;
    }
    ev_render_list(arr, st);
    json_decref(arr);
    return CTL_OK;
}

static int events_show(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    PGconn *pg;
    json_t *doc;
    int     rc;

    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events show EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((rc = ev_query_show(pg, st, argv[0], &doc)) != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    ev_render_show(doc, st);
    json_decref(doc);
    return CTL_OK;
}

static int events_alerts(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    PGconn *pg;
    json_t *arr;
    size_t  k;
    int     rc;

    (void)st; /* checked by ctl_events, not needed here */
    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events alerts EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((rc = ev_query_exists(pg, argv[0])) != CTL_OK ||
        (rc = ev_query_alerts(pg, argv[0], &arr)) != CTL_OK)
        return rc;
    for (k = 0; k < json_array_size(arr); k++)
        json_object_del(json_array_get(arr, k), "first_seen_ms");
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:o}", "event_id", argv[0], "alerts", arr));
        return CTL_OK;
    }
    ev_render_alerts(arr);
    json_decref(arr);
    return CTL_OK;
}

static int events_entities(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char *id = NULL;
    PGconn     *pg;
    json_t     *arr;
    int         i, rc, affected = 0;

    (void)st; /* checked by ctl_events, not needed here */
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--affected") == 0)
            affected = 1;
        else if (argv[i][0] == '-' || id != NULL)
            return ctl_fail(CTL_USAGE, "usage: cwppctl events entities EVENT_ID [--affected] "
                            "[--json]");
        else
            id = argv[i];
    }
    if (id == NULL)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events entities EVENT_ID [--affected] "
                        "[--json]");
    if ((rc = utf8_arg("EVENT_ID", id)) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((rc = ev_query_exists(pg, id)) != CTL_OK ||
        (rc = ev_query_entities(pg, id, affected, &arr)) != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:b, s:o}", "event_id", id, "affected_only",
                                 affected, "entities", arr));
        return CTL_OK;
    }
    ev_render_entities(arr, affected);
    json_decref(arr);
    return CTL_OK;
}

static int events_chain(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    static const char *const FORMATS[] = {"text", "json", "dot", "svg", NULL};
    const char *id = NULL, *format = NULL;
    int         i, rc = CTL_OK;

    (void)st; /* checked by ctl_events, not needed here */
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0) {
            if ((format = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (ev_find(FORMATS, format) < 0)
                return ctl_fail(CTL_USAGE, "unknown format \"%s\" (use text, json, dot or svg)",
                                format);
        } else if (argv[i][0] == '-' || id != NULL) {
            return ctl_fail(CTL_USAGE, "usage: cwppctl events chain EVENT_ID "
                            "[--format text|json|dot|svg]");
        } else {
            id = argv[i];
        }
    }
    if (id == NULL)
        return ctl_fail(CTL_USAGE, "usage: cwppctl events chain EVENT_ID "
                        "[--format text|json|dot|svg]");
    if ((rc = utf8_arg("EVENT_ID", id)) != CTL_OK)
        return rc;
    if (c->json && format != NULL && strcmp(format, "json") != 0)
        return ctl_fail(CTL_USAGE, "--json and --format %s disagree: pick one", format);
    if (format == NULL)
        format = c->json ? "json" : "text";
    return ev_chain(c, id, format);
}

int ctl_events(ctl_t *c, int argc, char **argv)
{
    static const struct {
        const char *verb;
        int (*fn)(ctl_t *, const settings_t *, int, char **);
    } verbs[] = {
        {"list", events_list},         {"show", events_show},   {"alerts", events_alerts},
        {"entities", events_entities}, {"chain", events_chain},
    };
    settings_t st;
    size_t     k;
    int        rc;

    /* the settings are checked for every verb, used or not: a bad one is a bad setup */
    if ((rc = settings_load(&st)) != CTL_OK)
        return rc;
    for (k = 0; argc >= 1 && k < sizeof(verbs) / sizeof(verbs[0]); k++)
        if (strcmp(argv[0], verbs[k].verb) == 0)
            return verbs[k].fn(c, &st, argc - 1, argv + 1);
    if ((rc = ctl_events_respond(c, argc, argv)) >= 0)
        return rc;
    return ctl_fail(CTL_USAGE, "usage: cwppctl events list [OPTIONS] | show ID | alerts ID | "
                    "entities ID [--affected] | chain ID [--format text|json|dot|svg] | "
                    "status|owner|level|remark|recommend|respond|playbook|tasks|log ID ... "
                    "(cwppctl --help)");
}

/* ---------------------------------------------------------- entities show */

static int entities_show(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char        *pos[2] = {NULL, NULL}, *account = NULL, *limit = LIST_LIMIT_DEFAULT;
    char               names[128];
    cwpp_entity_type_t et;
    PGconn            *pg;
    json_t            *stats, *events;
    int                i, npos = 0, rc, opts = 1;

    for (i = 0; i < argc; i++) {
        if (opts && strcmp(argv[i], "--") == 0) {
            opts = 0; /* a value that starts with "--" follows */
        } else if (opts && strcmp(argv[i], "--account") == 0) {
            if ((account = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = utf8_arg("--account", account)) != CTL_OK)
                return rc;
        } else if (opts && strcmp(argv[i], "--limit") == 0) {
            if ((limit = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = parse_limit(limit)) != CTL_OK)
                return rc;
        } else if (opts && argv[i][0] == '-' && argv[i][1] == '-') {
            return ctl_fail(CTL_USAGE, "entities show: unknown option \"%s\" (a VALUE that "
                            "starts with -- goes after --)", argv[i]);
        } else if (npos < 2) {
            pos[npos++] = argv[i];
        } else {
            npos++;
        }
    }
    if (npos != 2)
        return ctl_fail(CTL_USAGE, "usage: cwppctl entities show TYPE VALUE [--account A] "
                        "[--limit N]");
    if (cwpp_entity_type_parse(pos[0], &et) != 0)
        return ctl_fail(CTL_USAGE, "unknown entity type \"%s\" (use %s)", pos[0],
                        cwpp_entity_types_text(names, sizeof(names), ", ", " or "));
    if ((rc = utf8_arg("VALUE", pos[1])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((rc = ev_query_entity(pg, st, pos[0], pos[1], account, limit, &stats, &events)) !=
        CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:s, s:o, s:o, s:i}", "entity_type", pos[0], "value",
                                 pos[1], "stats_30d", stats, "events", events,
                                 "retention_days", st->retention_days));
        return CTL_OK;
    }
    ev_render_entity(pos[0], pos[1], stats, events, st);
    json_decref(stats);
    json_decref(events);
    return CTL_OK;
}

int ctl_entities(ctl_t *c, int argc, char **argv)
{
    settings_t st;
    int        rc;

    if ((rc = settings_load(&st)) != CTL_OK)
        return rc;
    if (argc >= 1 && strcmp(argv[0], "show") == 0)
        return entities_show(c, &st, argc - 1, argv + 1);
    return ctl_fail(CTL_USAGE, "usage: cwppctl entities show TYPE VALUE [--account A] "
                    "[--limit N]");
}
