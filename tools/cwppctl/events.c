/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c: `cwppctl events list|show|alerts|entities|chain` and `cwppctl entities show`,
 * the analysts' read-only views of security events (docs/architecture.md "Security
 * events", "Entities", "Assessment", "Limits"; the reference's "Assess a security event").
 * What they read is written by the correlator (docs/correlator.md); docs/cwppctl.md
 * describes each verb, its output and its exit codes.
 *
 * This file holds the verbs (their arguments, the read-time settings, the dispatch); the
 * fetches are in events_query.c, the text output with its one table printer in
 * events_render.c, the chain with DOT and SVG in events_chain.c (events.h). Every verb
 * reads one document from cwpp-api (GET /api/v1/events..., /api/v1/entities/...), which
 * answers only about the accounts the caller holds: another account's event is "no
 * event", exactly like a missing one. --json prints the document, and the text output is
 * rendered from the same document, so the two never disagree. Arguments are checked here
 * first (a bad one is exit code 2 before anything is sent). Alert names and entity
 * values come from upstream producers and are hostile input: text output shows control
 * characters as escapes (a terminal must not be driven by them), DOT output escapes them
 * for Graphviz's quoted strings, and --format svg hands that DOT text to `dot -Tsvg`
 * through pipes (no shell), here on the analyst's machine; both come from libs/graph,
 * which the API also draws its ?format=dot|svg answers with.
 *
 * Two rules depend on the time of reading, so they are applied when read, not stored:
 *   - retention (docs/architecture.md "Limits"): the event list, and the events an entity
 *     appears in, hold only events whose latest occurrence is within
 *     CWPP_EVENT_RETENTION_DAYS (180) days. `events show ID` still shows an older event,
 *     and says it is not listed.
 *   - quiet ("no new related alerts for a long time: lower priority"): once an event's
 *     latest alert is more than CWPP_CTL_QUIET_HOURS (24) hours old, the urgency shown is
 *     one step below the stored one and the reason "quiet" is added. 24 hours is the
 *     correlator's default joining window (correlator.window.ms): after it, a related
 *     alert occurring now opens a new event instead of joining this one.
 * The API applies both, with the same defaults; cwppctl sends the two settings
 * (retention_days, quiet_hours) only when they are set, and prints what the API says it
 * applied. Every comparison with "now" is made by the database server (its now()), so
 * retention, quiet and the 30-day entity view agree with each other.
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
#define LIST_LIMIT_DEFAULT     100

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
    s->retention_set = getenv("CWPP_EVENT_RETENTION_DAYS") != NULL &&
                       *getenv("CWPP_EVENT_RETENTION_DAYS") != '\0';
    s->quiet_set = getenv("CWPP_CTL_QUIET_HOURS") != NULL &&
                   *getenv("CWPP_CTL_QUIET_HOURS") != '\0';
    return CTL_OK;
}

/* Parses a --limit value (1..100000) into *out. CTL_OK or CTL_USAGE (printed). */
static int parse_limit(const char *v, long *out)
{
    char *end;
    long  n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > 100000)
        return ctl_fail(CTL_USAGE, "--limit must be a number from 1 to 100000, not \"%s\"", v);
    *out = n;
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

/* The path /api/v1/events/ID[/what] with the id percent-encoded, into b (NUL-ended).
 * CTL_OK or CTL_INFRA (out of memory, printed). */
static int event_path(cwpp_buf_t *b, const char *id, const char *what)
{
    if (cwpp_buf_puts(b, "/api/v1/events/") != 0 || ev_path_segment(b, id) != 0 ||
        (what != NULL && (cwpp_buf_puts(b, "/") != 0 || cwpp_buf_puts(b, what) != 0)) ||
        cwpp_buf_cstr(b) != 0)
        return ctl_fail(CTL_INFRA, "out of memory");
    return CTL_OK;
}

static int events_list(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char         *status = NULL, *level = NULL, *account = NULL, *limit_s = NULL;
    const char         *since = NULL, *until = NULL;
    char                since_s[40], until_s[40], names[128];
    cwpp_event_status_t evs;
    int64_t             since_ms = 0, until_ms = 0;
    long                limit = LIST_LIMIT_DEFAULT;
    settings_t          applied = *st;
    cwpp_buf_t          path = {0};
    json_t             *doc;
    int                 i, k, rc;
    /* the API's other filters and its sort, passed as they are */
    static const char *const PASS[] = {"urgency", "owner", "q", "asset", "entity", "source",
                                       "stage", "sort", "name", NULL};
    const char *pass[sizeof(PASS) / sizeof(PASS[0])] = {0};

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
            if ((limit_s = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = parse_limit(limit_s, &limit)) != CTL_OK)
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
        } else if (strcmp(argv[i], "--keyword") == 0) {
            /* the API's q: the event's name, its id, or one of its alerts' names */
            if ((v = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = utf8_arg("--keyword", v)) != CTL_OK)
                return rc;
            pass[ev_find(PASS, "q")] = v;
        } else if ((k = ev_find(PASS, argv[i] + (argv[i][0] == '-' && argv[i][1] == '-' ? 2 : 0)))
                       >= 0 && argv[i][0] == '-') {
            /* filters the API checks itself (its refusal is printed, exit 1) */
            if ((v = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = utf8_arg(argv[i - 1], v)) != CTL_OK)
                return rc;
            pass[k] = v;
        } else {
            return ctl_fail(CTL_USAGE, "events list: unknown option \"%s\"", argv[i]);
        }
    }
    if (since != NULL && until != NULL && until_ms < since_ms)
        return ctl_fail(CTL_USAGE, "--until %s is before --since %s: nothing can match",
                        until_s, since_s);
    if (cwpp_buf_puts(&path, "/api/v1/events") != 0)
        return ctl_fail(CTL_INFRA, "out of memory");
    if (status != NULL)
        ctl_q(&path, "status", status);
    if (level != NULL)
        ctl_q(&path, "level", level);
    if (account != NULL)
        ctl_q(&path, "account", account);
    if (since != NULL)
        ctl_q(&path, "since", since);
    if (until != NULL)
        ctl_q(&path, "until", until);
    for (k = 0; PASS[k] != NULL; k++)
        if (pass[k] != NULL)
            ctl_q(&path, PASS[k], pass[k]);
    ev_rules_query(&path, st);
    if (cwpp_buf_cstr(&path) != 0) {
        cwpp_buf_free(&path);
        return ctl_fail(CTL_INFRA, "out of memory");
    }
    rc = ctl_api_pages(c, (const char *)path.data, "events", limit, &doc);
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    ev_rules_from(doc, &applied);
    ev_render_list(json_object_get(doc, "events"), &applied);
    json_decref(doc);
    return CTL_OK;
}

static int events_show(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    settings_t applied = *st;
    cwpp_buf_t path = {0};
    json_t    *doc;
    int        rc;

    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events show EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((rc = event_path(&path, argv[0], NULL)) == CTL_OK) {
        ev_rules_query(&path, st); /* the NUL is not part of path.len */
        rc = cwpp_buf_cstr(&path) != 0 ? ctl_fail(CTL_INFRA, "out of memory")
                                       : ev_get(c, (const char *)path.data, &doc);
    }
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    ev_rules_from(doc, &applied);
    ev_render_show(doc, &applied);
    json_decref(doc);
    return CTL_OK;
}

static int events_alerts(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    cwpp_buf_t path = {0};
    json_t    *doc;
    int        rc;

    (void)st; /* checked by ctl_events, not needed here */
    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events alerts EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((rc = event_path(&path, argv[0], "alerts")) == CTL_OK)
        rc = ctl_api_pages(c, (const char *)path.data, "alerts", 1L << 40, &doc);
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:O}", "event_id", argv[0], "alerts",
                                 json_object_get(doc, "alerts")));
        json_decref(doc);
        return CTL_OK;
    }
    ev_render_alerts(json_object_get(doc, "alerts"));
    json_decref(doc);
    return CTL_OK;
}

static int events_entities(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char *id = NULL;
    cwpp_buf_t  path = {0};
    json_t     *doc;
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
    if ((rc = event_path(&path, id, affected ? "entities?affected=1" : "entities")) == CTL_OK)
        rc = ev_get(c, (const char *)path.data, &doc);
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:b, s:O}", "event_id", id, "affected_only", affected,
                                 "entities", json_object_get(doc, "entities")));
        json_decref(doc);
        return CTL_OK;
    }
    ev_render_entities(json_object_get(doc, "entities"), affected);
    json_decref(doc);
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
    if ((rc = ctl_events_membership(c, argc, argv)) >= 0)
        return rc;
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
    const char        *pos[2] = {NULL, NULL}, *account = NULL, *limit_s;
    char               names[128];
    cwpp_entity_type_t et;
    settings_t         applied = *st;
    cwpp_buf_t         path = {0};
    json_t            *doc;
    long               limit = LIST_LIMIT_DEFAULT;
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
            if ((limit_s = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if ((rc = parse_limit(limit_s, &limit)) != CTL_OK)
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
    if (cwpp_buf_puts(&path, "/api/v1/entities/") != 0 || ev_path_segment(&path, pos[0]) != 0)
        return ctl_fail(CTL_INFRA, "out of memory");
    ctl_q(&path, "value", pos[1]);
    if (account != NULL)
        ctl_q(&path, "account", account);
    ev_rules_query(&path, st);
    if (cwpp_buf_cstr(&path) != 0) {
        cwpp_buf_free(&path);
        return ctl_fail(CTL_INFRA, "out of memory");
    }
    rc = ctl_api_pages(c, (const char *)path.data, "events", limit, &doc);
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    ev_rules_from(doc, &applied);
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:s, s:O, s:O, s:i}", "entity_type", pos[0], "value",
                                 pos[1], "stats_30d", json_object_get(doc, "stats_30d"),
                                 "events", json_object_get(doc, "events"), "retention_days",
                                 applied.retention_days));
        json_decref(doc);
        return CTL_OK;
    }
    ev_render_entity(pos[0], pos[1], json_object_get(doc, "stats_30d"),
                     json_object_get(doc, "events"), &applied);
    json_decref(doc);
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
