/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c: `cwppctl events list|show|alerts|entities|chain` and `cwppctl entities show`,
 * the analysts' read-only views of security events (DESIGN.md "Security events",
 * "Entities", "Assessment", "Limits"; the reference's "Assess a security event"). What
 * they read is written by the correlator (docs/correlator.md); docs/cwppctl.md describes
 * each verb, its output and its exit codes.
 *
 * Every verb is a few parameterised queries (PQexecParams only: nothing a user types is
 * ever part of SQL text) as the read-only role. The rows become one JSON document; --json
 * prints it, and the text output is rendered from the same document, so the two never
 * disagree. Alert names and entity values come from upstream producers and are hostile
 * input: text output shows control characters as escapes (a terminal must not be driven
 * by them), DOT output escapes them for Graphviz's quoted strings, and --format svg hands
 * that DOT text to `dot -Tsvg` through pipes (fork and exec, no shell).
 *
 * Two rules depend on the time of reading, so they are applied here and not stored:
 *   - retention (DESIGN.md "Limits"): the event list, and the events an entity appears
 *     in, hold only events whose latest occurrence is within CWPP_EVENT_RETENTION_DAYS
 *     (180) days. `events show ID` still shows an older event, and says it is not listed.
 *   - quiet ("no new related alerts for a long time: lower priority"): once an event's
 *     latest alert is more than CWPP_CTL_QUIET_HOURS (24) hours old, the urgency shown is
 *     one step below the stored one and the reason "quiet" is added. 24 hours is the
 *     correlator's default joining window (correlator.window.ms): after it, a related
 *     alert occurring now opens a new event instead of joining this one.
 * Every comparison with "now" is made by the database server (its now()), so retention,
 * quiet and the 30-day entity view agree with each other.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cwpp_util.h"

#define RETENTION_DAYS_DEFAULT 180 /* DESIGN.md "Limits": the event list's 180 days */
#define QUIET_HOURS_DEFAULT    24  /* the correlator's default correlator.window.ms */
#define LIST_LIMIT_DEFAULT     "100"

/* The ms-since-epoch of a timestamptz column, in SQL text. */
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

static const char *const EVENT_STATUSES[] = {"unhandled", "handling", "handled", "failed", NULL};
static const char *const LEVELS[] = {"critical", "high", "medium", "low", NULL};
/* most urgent first: "one step lower" is the next one */
static const char *const URGENCIES[] = {"act_now", "high", "medium", "low", NULL};
static const char *const ENTITY_TYPES[] = {"host", "file", "process", "ip", "host_account",
                                           NULL};

/* Index of s in the NULL-terminated list, or -1. */
static int find(const char *const *list, const char *s)
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

/* The read-time settings: the limits named at the top of the file. */
typedef struct settings {
    int  retention_days; /* CWPP_EVENT_RETENTION_DAYS */
    int  quiet_hours;    /* CWPP_CTL_QUIET_HOURS */
    char retention[16];  /* the same two as query parameters */
    char quiet[16];
} settings_t;

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

/* ------------------------------------------------------------ rows as JSON */

/* How a column becomes a JSON member: a string, an integer, a boolean, JSON text; SQL
 * NULL is null whatever the kind. */
typedef enum { COL_STR, COL_INT, COL_BOOL, COL_JSON } col_kind_t;

typedef struct col {
    const char *key;  /* member name; NULL: not copied (used by the caller) */
    col_kind_t  kind;
} col_t;

static json_t *cell_json(const PGresult *r, int row, int col, col_kind_t kind)
{
    const char  *v;
    json_t      *j;
    json_error_t jerr;

    if (PQgetisnull(r, row, col))
        return json_null();
    v = PQgetvalue(r, row, col);
    switch (kind) {
    case COL_INT:
        return json_integer((json_int_t)strtoll(v, NULL, 10));
    case COL_BOOL:
        return json_boolean(v[0] == 't');
    case COL_JSON:
        j = json_loads(v, JSON_DECODE_ANY, &jerr);
        return j != NULL ? j : json_null();
    case COL_STR:
    default:
        /* the connection's client encoding is UTF-8; fall back on invalid bytes anyway */
        j = json_string(v);
        return j != NULL ? j : json_string("(not UTF-8)");
    }
}

/* Row `row` of r as an object of the columns in cols (ncols of them, from column 0). */
static json_t *row_object(const PGresult *r, int row, const col_t *cols, int ncols)
{
    json_t *o = json_object();
    int     k;

    for (k = 0; k < ncols && k < PQnfields(r); k++)
        if (cols[k].key != NULL)
            json_object_set_new(o, cols[k].key, cell_json(r, row, k, cols[k].kind));
    return o;
}

#define NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* -------------------------------------------------------------- text output */

/*
 * Prints s as one table cell: control characters (C0, DEL, C1) as visible escapes (\n,
 * \t, \x1b, \u009b), at most width characters (longer: cut, ending in "..."), padded to
 * width. width 0: the whole text, no padding. NULL prints "-".
 */
static void cell(const char *s, int width)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-");
    char                 out[4096];
    size_t               n = 0, k, cut_at = 0;
    int                  chars = 0, longer = 0;

    /* 1. the escaped text; every escape is ASCII, so a character is a byte that does not
     * continue a UTF-8 sequence */
    for (; *p != '\0'; p++) {
        if (n + 16 >= sizeof(out)) {
            longer = 1;
            break;
        }
        if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(out + n, sizeof(out) - n, *p == '\n' ? "\\n"
                                  : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\\u%04x", *++p);
        else
            out[n++] = (char)*p;
    }
    /* 2. cut to width characters, the last three of them "..." */
    for (k = 0; k < n; k++)
        if (((unsigned char)out[k] & 0xc0) != 0x80 && ++chars == width - 2)
            cut_at = k;
    if (width > 0 && (chars > width || longer)) {
        n = width > 3 ? cut_at : 0;
        memcpy(out + n, "...", 3);
        n += 3;
        chars = width > 3 ? width : 3;
    } else if (longer) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    fwrite(out, 1, n, stdout);
    for (; width > 0 && chars < width; chars++)
        putchar(' ');
}

/* "45s", "3m 12s", "2h 05m", "3d 4h": a duration in seconds, for people. */
static const char *human_secs(int64_t s, char *buf, size_t size)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, size, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, size, "%" PRId64 "m %02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, size, "%" PRId64 "h %02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
    return buf;
}

/* The array of strings arr joined with sep, into buf. */
static const char *joined(const json_t *arr, const char *sep, char *buf, size_t size)
{
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < json_array_size(arr) && n < size; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        int         w = snprintf(buf + n, size - n, "%s%s", i ? sep : "", s ? s : "");

        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n >= size)
        cwpp_utf8_sanitize(buf); /* cut mid-character */
    return json_array_size(arr) ? buf : "-";
}

/* -------------------------------------------------------------- the event */

/*
 * Looks the event up. CTL_OK with *account set (free it), CTL_REFUSED after "there is no
 * event ID", CTL_INFRA after printing why.
 */
static int event_account(PGconn *pg, const char *id, char **account)
{
    const char *p[1] = {id};
    PGresult   *r = PQexecParams(pg, "SELECT account_id FROM events WHERE event_id = $1", 1,
                                 NULL, p, NULL, NULL, 0);

    *account = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list shows them)",
                        id);
    }
    *account = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return *account != NULL ? CTL_OK : ctl_fail(CTL_INFRA, "out of memory");
}

/* The urgency shown: the stored one, one step lower when the event is quiet. Sets the
 * members urgency, assessed_urgency and quiet of o from its stored "urgency". */
static void apply_quiet(json_t *o, int quiet)
{
    const char *stored = jstr(o, "urgency");
    int         u = find(URGENCIES, stored);
    json_t     *s = json_string(stored != NULL ? stored : "low");

    if (u < 0)
        u = 3;
    if (quiet && URGENCIES[u + 1] != NULL)
        u++;
    json_object_set_new(o, "assessed_urgency", s);
    json_object_set_new(o, "urgency", json_string(URGENCIES[u]));
    json_object_set_new(o, "quiet", json_boolean(quiet));
}

/* ------------------------------------------------------------- events list */

static const col_t LIST_COLS[] = {
    {"event_id", COL_STR},    {"account_id", COL_STR},  {"name", COL_STR},
    {"level", COL_STR},       {"status", COL_STR},      {"urgency", COL_STR},
    {"alert_count", COL_INT}, {"asset_count", COL_INT}, {"occurrences", COL_INT},
    {"stages", COL_JSON},     {"first_seen", COL_STR},  {"last_seen", COL_STR},
    {"owner", COL_STR},       {NULL, COL_BOOL} /* quiet */,
};

static int events_list(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char *status = NULL, *level = NULL, *account = NULL, *limit = LIST_LIMIT_DEFAULT;
    const char *since = NULL, *until = NULL, *p[8];
    char        since_s[40], until_s[40];
    int64_t     since_ms = 0, until_ms = 0;
    PGresult   *r;
    PGconn     *pg;
    json_t     *arr;
    int         i, rc;

    for (i = 0; i < argc; i++) {
        const char *v;

        if (strcmp(argv[i], "--status") == 0) {
            if ((status = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (find(EVENT_STATUSES, status) < 0)
                return ctl_fail(CTL_USAGE, "unknown event status \"%s\" (use unhandled, "
                                "handling, handled or failed)", status);
        } else if (strcmp(argv[i], "--level") == 0) {
            if ((level = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (find(LEVELS, level) < 0)
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
    p[0] = st->retention;
    p[1] = status;
    p[2] = level;
    p[3] = account;
    p[4] = since;
    p[5] = until;
    p[6] = limit;
    p[7] = st->quiet;
    /* an event is in [since, until] when it was active then: its first occurrence is not
     * after until and its latest not before since */
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
                     "e.alert_count, e.asset_count, e.occurrences, array_to_json(e.stages), "
                     CTL_TS("e.first_seen") ", " CTL_TS("e.last_seen") ", e.owner, "
                     "e.last_seen < now() - make_interval(hours => $8::int) "
                     "FROM events e "
                     "WHERE e.last_seen > now() - make_interval(days => $1::int) "
                     "AND ($2::text IS NULL OR e.status = $2) "
                     "AND ($3::text IS NULL OR e.level = $3) "
                     "AND ($4::text IS NULL OR e.account_id = $4) "
                     "AND ($5::timestamptz IS NULL OR e.last_seen >= $5::timestamptz) "
                     "AND ($6::timestamptz IS NULL OR e.first_seen <= $6::timestamptz) "
                     "ORDER BY e.last_seen DESC, e.event_id LIMIT $7::int",
                     8, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    arr = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = row_object(r, i, LIST_COLS, NCOLS(LIST_COLS));

        apply_quiet(o, PQgetvalue(r, i, 13)[0] == 't');
        json_array_append_new(arr, o);
    }
    PQclear(r);
    if (c->json) {
        ctl_print_json(json_pack("{s:o, s:i, s:i}", "events", arr, "retention_days",
                                 st->retention_days, "quiet_after_hours", st->quiet_hours));
        return CTL_OK;
    }
    {
        size_t k;
        int    lowered = 0;
        char   stages[256], n[32];

        printf("%-35s  %-8s  %-9s  %-8s  %6s  %6s  %-20s  %-20s  %s\n", "EVENT", "LEVEL",
               "STATUS", "URGENCY", "ALERTS", "ASSETS", "STAGES", "LAST SEEN", "NAME");
        for (k = 0; k < json_array_size(arr); k++) {
            json_t *o = json_array_get(arr, k);
            int     q = json_is_true(json_object_get(o, "quiet")) &&
                    strcmp(jstr(o, "urgency"), jstr(o, "assessed_urgency")) != 0;

            cell(jstr(o, "event_id"), 35);
            fputs("  ", stdout);
            cell(jstr(o, "level"), 8);
            fputs("  ", stdout);
            cell(jstr(o, "status"), 9);
            fputs("  ", stdout);
            snprintf(n, sizeof(n), "%s%s", jstr(o, "urgency"), q ? "*" : "");
            cell(n, 8);
            printf("  %6" JSON_INTEGER_FORMAT "  %6" JSON_INTEGER_FORMAT "  ",
                   jint(o, "alert_count"), jint(o, "asset_count"));
            cell(joined(json_object_get(o, "stages"), ",", stages, sizeof(stages)), 20);
            fputs("  ", stdout);
            cell(jstr(o, "last_seen"), 20);
            fputs("  ", stdout);
            cell(jstr(o, "name"), 0);
            putchar('\n');
            lowered |= q;
        }
        if (json_array_size(arr) == 0)
            printf("(no events match)\n");
        printf("%zu event%s; newest first; only events seen in the last %d days.\n",
               json_array_size(arr), json_array_size(arr) == 1 ? "" : "s", st->retention_days);
        if (lowered)
            printf("* one step below the assessment: no new alerts for over %d hours.\n",
                   st->quiet_hours);
    }
    json_decref(arr);
    return CTL_OK;
}

/* ------------------------------------------------------------- events show */

static const col_t SHOW_COLS[] = {
    {"event_id", COL_STR},    {"account_id", COL_STR},   {"name", COL_STR},
    {"level", COL_STR},       {"status", COL_STR},       {"owner", COL_STR},
    {"stages", COL_JSON},     {"asset_count", COL_INT},  {"alert_count", COL_INT},
    {"occurrences", COL_INT}, {"first_seen", COL_STR},   {"last_seen", COL_STR},
    {"sources", COL_JSON},    {"predecessor", COL_STR},  {"urgency", COL_STR},
    {NULL, COL_JSON} /* 15 assessment */, {NULL, COL_BOOL} /* 16 quiet */,
    {"quiet_for_s", COL_INT}, {"in_event_list", COL_BOOL}, {"updated_at", COL_STR},
};

static int events_show(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char  *p[3];
    PGresult    *r;
    PGconn      *pg;
    json_t      *doc, *stored, *assessment, *reasons, *recs;
    json_error_t jerr;
    int          rc, quiet;

    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events show EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    p[0] = argv[0];
    p[1] = st->quiet;
    p[2] = st->retention;
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.owner, "
                     "array_to_json(e.stages), e.asset_count, e.alert_count, e.occurrences, "
                     CTL_TS("e.first_seen") ", " CTL_TS("e.last_seen") ", "
                     "array_to_json(e.sources), e.predecessor, e.urgency, e.assessment::text, "
                     "e.last_seen < now() - make_interval(hours => $2::int), "
                     "greatest(0, extract(epoch FROM now() - e.last_seen))::bigint, "
                     "e.last_seen > now() - make_interval(days => $3::int), "
                     CTL_TS("e.updated_at") " FROM events e WHERE e.event_id = $1",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list shows them)",
                        argv[0]);
    }
    doc = row_object(r, 0, SHOW_COLS, NCOLS(SHOW_COLS));
    quiet = PQgetvalue(r, 0, 16)[0] == 't';
    stored = json_loads(PQgetvalue(r, 0, 15), 0, &jerr);
    PQclear(r);
    if (!json_is_object(stored)) {
        json_decref(stored);
        stored = json_object();
    }
    apply_quiet(doc, quiet);
    reasons = json_object_get(stored, "reasons");
    reasons = json_is_array(reasons) ? json_deep_copy(reasons) : json_array();
    recs = json_object_get(stored, "recommendations");
    recs = json_is_array(recs) ? json_deep_copy(recs) : json_array();
    if (quiet) {
        char        age[32], text[512];
        const char *was = jstr(doc, "assessed_urgency"), *now = jstr(doc, "urgency");

        human_secs(jint(doc, "quiet_for_s"), age, sizeof(age));
        if (strcmp(was, now) != 0)
            snprintf(text, sizeof(text), "no new related alerts for %s (over %d hours): lower "
                     "priority, shown as %s instead of the assessed %s", age, st->quiet_hours,
                     now, was);
        else
            snprintf(text, sizeof(text), "no new related alerts for %s (over %d hours): lower "
                     "priority (already %s)", age, st->quiet_hours, now);
        json_array_append_new(reasons, json_pack("{s:s, s:s, s:b}", "code", "quiet", "text",
                                                 text, "at_read", 1));
    }
    assessment = json_pack("{s:o, s:o}", "reasons", reasons, "recommendations", recs);
    if (json_is_integer(json_object_get(stored, "assessed_at"))) {
        char t[40];

        json_object_set_new(assessment, "assessed_at",
                            json_string(cwpp_format_time_ms(
                                json_integer_value(json_object_get(stored, "assessed_at")), t,
                                sizeof(t))));
    } else {
        json_object_set_new(assessment, "assessed_at", json_null());
    }
    json_decref(stored);
    json_object_set_new(doc, "assessment", assessment);
    json_object_set_new(doc, "quiet_after_hours", json_integer(st->quiet_hours));
    json_object_set_new(doc, "retention_days", json_integer(st->retention_days));
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    {
        static const struct { const char *label, *key; } rows[] = {
            {"Event", "event_id"}, {"Name", "name"},     {"Account", "account_id"},
            {"Level", "level"},    {"Status", "status"}, {"Owner", "owner"},
        };
        char   buf[1024], age[32];
        size_t k;

        for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
            printf("%-13s ", rows[k].label);
            cell(jstr(doc, rows[k].key) != NULL ? jstr(doc, rows[k].key) : "(none)", 0);
            putchar('\n');
        }
        printf("%-13s ", "Stages");
        cell(joined(json_object_get(doc, "stages"), " > ", buf, sizeof(buf)), 0);
        printf("\n%-13s %" JSON_INTEGER_FORMAT " affected\n", "Assets", jint(doc, "asset_count"));
        printf("%-13s %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " occurrences)\n",
               "Alerts", jint(doc, "alert_count"), jint(doc, "occurrences"));
        printf("%-13s %s\n", "First seen", jstr(doc, "first_seen"));
        printf("%-13s %s (%s ago)\n", "Last seen", jstr(doc, "last_seen"),
               human_secs(jint(doc, "quiet_for_s"), age, sizeof(age)));
        printf("%-13s ", "Sources");
        cell(joined(json_object_get(doc, "sources"), ", ", buf, sizeof(buf)), 0);
        printf("\n%-13s %s\n", "Predecessor",
               jstr(doc, "predecessor") != NULL ? jstr(doc, "predecessor") : "(none)");
        if (!json_is_true(json_object_get(doc, "in_event_list")))
            printf("(older than %d days: no longer in the event list)\n", st->retention_days);
        printf("\nUrgency: %s", jstr(doc, "urgency"));
        if (strcmp(jstr(doc, "urgency"), jstr(doc, "assessed_urgency")) != 0)
            printf(" (assessed %s; lowered one step: quiet for over %d hours)",
                   jstr(doc, "assessed_urgency"), st->quiet_hours);
        printf("\nReasons%s%s%s:\n", jstr(assessment, "assessed_at") ? " (assessed at " : "",
               jstr(assessment, "assessed_at") ? jstr(assessment, "assessed_at") : "",
               jstr(assessment, "assessed_at") ? ")" : "");
        for (k = 0; k < json_array_size(reasons); k++) {
            json_t *x = json_array_get(reasons, k);

            fputs("  ", stdout);
            cell(jstr(x, "code"), 21);
            fputs(" ", stdout);
            cell(jstr(x, "text"), 0);
            putchar('\n');
        }
        if (json_array_size(reasons) == 0)
            printf("  (none)\n");
        printf("Recommendations:\n");
        for (k = 0; k < json_array_size(recs); k++) {
            json_t *x = json_array_get(recs, k);

            fputs("  ", stdout);
            cell(jstr(x, "action"), 0);
            fputs(" ", stdout);
            cell(jstr(x, "entity_type"), 0);
            fputs(" ", stdout);
            cell(jstr(x, "entity_value"), 0);
            fputs(": ", stdout);
            cell(jstr(x, "reason"), 0);
            putchar('\n');
        }
        if (json_array_size(recs) == 0)
            printf("  (none)\n");
    }
    json_decref(doc);
    return CTL_OK;
}

/* ------------------------------------------------------------ events alerts */

static const col_t ALERT_COLS[] = {
    {"alert_id", COL_STR},   {"name", COL_STR},        {"type", COL_STR},
    {"severity", COL_STR},   {"status", COL_STR},      {"defense", COL_STR},
    {"occurrences", COL_INT}, {"first_seen", COL_STR}, {"last_seen", COL_STR},
    {"reason", COL_STR},     {"asset_id", COL_STR},    {"source", COL_STR},
    {"attack_tactic", COL_STR}, {NULL, COL_INT} /* 13 first_seen ms */,
};

/* The event's alerts in the order of their first occurrence (within the event). */
static const char SQL_EVENT_ALERTS[] =
    "SELECT a.alert_id, a.name, a.type, a.severity, a.status, a.defense, ea.occurrences, "
    CTL_TS("COALESCE(ea.first_seen, a.first_seen)") ", "
    CTL_TS("COALESCE(ea.last_seen, a.last_seen)") ", ea.reason, a.asset_id, a.source, "
    "a.attack_tactic, " MS("COALESCE(ea.first_seen, a.first_seen)") " "
    "FROM event_alerts ea JOIN alerts a USING (alert_id) WHERE ea.event_id = $1 "
    "ORDER BY COALESCE(ea.first_seen, a.first_seen), a.alert_id";

/* The alerts as a JSON array (CTL_OK), or CTL_INFRA after printing why. */
static int load_alerts(PGconn *pg, const char *id, json_t **out)
{
    const char *p[1] = {id};
    PGresult   *r = PQexecParams(pg, SQL_EVENT_ALERTS, 1, NULL, p, NULL, NULL, 0);
    int         i;

    *out = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    *out = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = row_object(r, i, ALERT_COLS, NCOLS(ALERT_COLS));

        json_object_set_new(o, "first_seen_ms", cell_json(r, i, 13, COL_INT));
        json_array_append_new(*out, o);
    }
    PQclear(r);
    return CTL_OK;
}

static int events_alerts(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    PGconn *pg;
    json_t *arr;
    char   *account;
    size_t  k;
    int     rc;

    (void)st; /* checked by ctl_events, not needed here */
    if (argc != 1 || argv[0][0] == '-')
        return ctl_fail(CTL_USAGE, "usage: cwppctl events alerts EVENT_ID [--json]");
    if ((rc = utf8_arg("EVENT_ID", argv[0])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((rc = event_account(pg, argv[0], &account)) != CTL_OK)
        return rc;
    free(account);
    if ((rc = load_alerts(pg, argv[0], &arr)) != CTL_OK)
        return rc;
    for (k = 0; k < json_array_size(arr); k++)
        json_object_del(json_array_get(arr, k), "first_seen_ms");
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:o}", "event_id", argv[0], "alerts", arr));
        return CTL_OK;
    }
    printf("%-20s  %-20s  %-25s  %-17s  %-9s  %-10s  %5s  %s\n", "FIRST SEEN", "LAST SEEN",
           "ALERT", "TYPE", "STATUS", "DEFENCE", "COUNT", "ASSET");
    for (k = 0; k < json_array_size(arr); k++) {
        json_t *o = json_array_get(arr, k);

        cell(jstr(o, "first_seen"), 20);
        fputs("  ", stdout);
        cell(jstr(o, "last_seen"), 20);
        fputs("  ", stdout);
        cell(jstr(o, "name"), 25);
        fputs("  ", stdout);
        cell(jstr(o, "type"), 17);
        fputs("  ", stdout);
        cell(jstr(o, "status"), 9);
        fputs("  ", stdout);
        cell(jstr(o, "defense"), 10);
        printf("  %5" JSON_INTEGER_FORMAT "  ", jint(o, "occurrences"));
        cell(jstr(o, "asset_id"), 0);
        printf("\n    %s  joined: ", jstr(o, "alert_id"));
        cell(jstr(o, "reason"), 0);
        putchar('\n');
    }
    if (json_array_size(arr) == 0)
        printf("(the event has no alerts)\n");
    json_decref(arr);
    return CTL_OK;
}

/* ---------------------------------------------------------- events entities */

static const col_t ENTITY_COLS[] = {
    {"entity_type", COL_STR}, {"value", COL_STR},      {"assets", COL_JSON},
    {"event_alerts", COL_INT}, {"first_seen", COL_STR}, {"last_seen", COL_STR},
    {NULL, COL_INT} /* 6.. the 30-day figures */,
};

static const col_t STATS_COLS[] = {
    {"events", COL_INT}, {"alerts", COL_INT}, {"tasks", COL_INT}, {"assets", COL_INT},
    {"last_seen", COL_STR},
};

static int events_entities(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char *id = NULL, *affected = "false", *p[2];
    PGresult   *r;
    PGconn     *pg;
    json_t     *arr;
    char       *account;
    int         i, rc;

    (void)st; /* checked by ctl_events, not needed here */
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--affected") == 0)
            affected = "true";
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
    if ((rc = event_account(pg, id, &account)) != CTL_OK)
        return rc;
    free(account);
    p[0] = id;
    p[1] = affected;
    /* per entity: its assets and alerts within the event; its 30-day figures in the
     * account (entity_stats_30d, the lateral quals reach the view's index); for a host,
     * what the event's latest alert on it says about the asset */
    r = PQexecParams(pg,
                     "WITH ent AS (SELECT x.account_id, x.entity_type, x.value, "
                     "array_agg(DISTINCT x.asset_id) FILTER (WHERE x.asset_id <> '') AS assets, "
                     "count(DISTINCT x.alert_id) AS n, min(x.first_seen) AS f, "
                     "max(x.last_seen) AS l FROM entity_alerts x WHERE x.event_id = $1 "
                     "AND (NOT $2::boolean OR x.entity_type = 'host') "
                     "GROUP BY x.account_id, x.entity_type, x.value) "
                     "SELECT ent.entity_type, ent.value, "
                     "array_to_json(COALESCE(ent.assets, '{}')), ent.n, " CTL_TS("ent.f") ", "
                     CTL_TS("ent.l") ", COALESCE(s.events, 0), COALESCE(s.alerts, 0), "
                     "COALESCE(s.tasks, 0), COALESCE(s.assets, 0), " CTL_TS("s.last_seen") ", "
                     "CASE WHEN ent.entity_type = 'host' THEN (SELECT a.asset::text "
                     "FROM event_alerts ea JOIN alerts a USING (alert_id) "
                     "WHERE ea.event_id = $1 AND a.asset_id = ent.value "
                     "ORDER BY a.last_seen DESC, a.alert_id LIMIT 1) END "
                     "FROM ent LEFT JOIN LATERAL (SELECT v.events, v.alerts, v.tasks, v.assets, "
                     "v.last_seen FROM entity_stats_30d v WHERE v.account_id = ent.account_id "
                     "AND v.entity_type = ent.entity_type AND v.value = ent.value) s ON true "
                     "ORDER BY array_position(ARRAY['host', 'ip', 'host_account', 'process', "
                     "'file'], ent.entity_type), ent.value",
                     2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    arr = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = row_object(r, i, ENTITY_COLS, 6), *s = json_object();
        int     k;

        for (k = 0; k < NCOLS(STATS_COLS); k++)
            json_object_set_new(s, STATS_COLS[k].key, cell_json(r, i, 6 + k, STATS_COLS[k].kind));
        json_object_set_new(o, "stats_30d", s);
        if (!PQgetisnull(r, i, 11))
            json_object_set_new(o, "asset", cell_json(r, i, 11, COL_JSON));
        json_array_append_new(arr, o);
    }
    PQclear(r);
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:b, s:o}", "event_id", id, "affected_only",
                                 affected[0] == 't', "entities", arr));
        return CTL_OK;
    }
    {
        size_t k;
        char   buf[512];

        if (affected[0] == 't')
            printf("%-24s  %-20s  %-16s  %-12s", "ASSET", "NAME", "IP", "ROLE");
        else
            printf("%-12s  %-40s  %-20s", "TYPE", "VALUE", "ASSETS");
        printf("  %6s  %10s  %10s  %9s\n", "ALERTS", "EVENTS 30D", "ALERTS 30D", "TASKS 30D");
        for (k = 0; k < json_array_size(arr); k++) {
            json_t *o = json_array_get(arr, k), *s = json_object_get(o, "stats_30d");
            json_t *a = json_object_get(o, "asset");

            if (affected[0] == 't') {
                cell(jstr(o, "value"), 24);
                fputs("  ", stdout);
                cell(jstr(a, "name"), 20);
                fputs("  ", stdout);
                cell(jstr(a, "ip"), 16);
                fputs("  ", stdout);
                cell(jstr(a, "role"), 12);
            } else {
                cell(jstr(o, "entity_type"), 12);
                fputs("  ", stdout);
                cell(jstr(o, "value"), 40);
                fputs("  ", stdout);
                cell(joined(json_object_get(o, "assets"), ",", buf, sizeof(buf)), 20);
            }
            printf("  %6" JSON_INTEGER_FORMAT "  %10" JSON_INTEGER_FORMAT "  %10"
                   JSON_INTEGER_FORMAT "  %9" JSON_INTEGER_FORMAT "\n",
                   jint(o, "event_alerts"), jint(s, "events"), jint(s, "alerts"),
                   jint(s, "tasks"));
        }
        if (json_array_size(arr) == 0)
            printf("(no %s)\n", affected[0] == 't' ? "affected assets" : "entities");
        printf("ALERTS: this event's alerts that show it; 30D: the account's events, alerts "
               "and handling tasks with it over the last 30 days.\n");
    }
    json_decref(arr);
    return CTL_OK;
}

/* ------------------------------------------------------------- events chain */

/*
 * Appends s as the inside of a DOT quoted string meant for a label: " and \ escaped (a
 * backslash would otherwise start a Graphviz escape such as \N or \G), & as &amp; (dot
 * reads entities in labels), control characters as visible escapes (\\n shows "\n"), at
 * most max characters (then "..."). Returns 0, or non-zero when out of memory.
 */
static int put_dot(cwpp_buf_t *b, const char *s, int max)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    int                  chars = 0, rc = 0;

    for (; *p != '\0' && rc == 0; chars++) {
        char esc[16];

        if (max > 0 && chars >= max) {
            rc |= cwpp_buf_puts(b, "...");
            break;
        }
        if (*p == '"' || *p == '\\') {
            snprintf(esc, sizeof(esc), "\\%c", *p);
        } else if (*p == '&') {
            snprintf(esc, sizeof(esc), "&amp;");
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), *p == '\n' ? "\\\\n" : *p == '\t' ? "\\\\t"
                                       : *p == '\r' ? "\\\\r" : "\\\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            snprintf(esc, sizeof(esc), "\\\\u%04x", p[1]);
            p++;
        } else {
            size_t len = 1;

            while (p[len] != '\0' && (p[len] & 0xc0) == 0x80 && len < 4)
                len++;
            rc |= cwpp_buf_append(b, p, len) == CWPP_OK ? 0 : -1;
            p += len;
            continue;
        }
        rc |= cwpp_buf_puts(b, esc);
        p++;
    }
    return rc;
}

/* The event's entities and the ends of its edges as nodes, each once: "type:value" -> the
 * node's index in nodes. Returns 0 or -1. */
static int add_node(json_t *index, json_t *nodes, const char *type, const char *value)
{
    char   *key;
    size_t  n = strlen(type) + strlen(value) + 2;
    int     rc = 0;

    if ((key = malloc(n)) == NULL)
        return -1;
    snprintf(key, n, "%s:%s", type, value);
    if (json_object_get(index, key) == NULL) {
        char id[24];

        snprintf(id, sizeof(id), "n%zu", json_array_size(nodes) + 1);
        rc |= json_object_set_new(index, key, json_integer((json_int_t)json_array_size(nodes)));
        rc |= json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "id", id, "type", type,
                                                     "value", value));
    }
    free(key);
    return rc != 0 ? -1 : 0;
}

static const char *node_id(json_t *index, json_t *nodes, const char *type, const char *value)
{
    size_t n = strlen(type) + strlen(value) + 2;
    char  *key = malloc(n);
    json_t *ix;

    if (key == NULL)
        return "n0";
    snprintf(key, n, "%s:%s", type, value);
    ix = json_object_get(index, key);
    free(key);
    return jstr(json_array_get(nodes, (size_t)json_integer_value(ix)), "id");
}

static const col_t EDGE_COLS[] = {
    {"src_type", COL_STR},  {"src", COL_STR},        {"relation", COL_STR},
    {"dst_type", COL_STR},  {"dst", COL_STR},        {"alert_id", COL_STR},
    {"alerts", COL_INT},    {"first_seen", COL_STR}, {"last_seen", COL_STR},
};

/* The chain document: {event_id, name, timeline, graph {nodes, edges}}; NULL after
 * printing why (*rc says which exit). */
static json_t *load_chain(PGconn *pg, const char *id, int *rc)
{
    const char *p[1] = {id};
    PGresult   *r;
    json_t     *timeline = NULL, *nodes, *edges, *index, *doc;
    int64_t     prev_ms = 0, prev_gap = -1, first_ms = 0;
    size_t      k;
    int         i;

    r = PQexecParams(pg, "SELECT name, account_id, asset_count FROM events WHERE event_id = $1",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        *rc = ctl_query_failed(pg, r);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        *rc = ctl_fail(CTL_REFUSED, "there is no event %s (cwppctl events list shows them)",
                       id);
        return NULL;
    }
    doc = json_pack("{s:s, s:o, s:o}", "event_id", id, "name", cell_json(r, 0, 0, COL_STR),
                    "asset_count", cell_json(r, 0, 2, COL_INT));
    PQclear(r);
    if ((*rc = load_alerts(pg, id, &timeline)) != CTL_OK) {
        json_decref(doc);
        return NULL;
    }
    /* the pace: the gap to the previous alert, and whether it shrank (faster) or grew */
    for (k = 0; k < json_array_size(timeline); k++) {
        json_t *o = json_array_get(timeline, k);
        int64_t t = jint(o, "first_seen_ms");

        if (k == 0) {
            first_ms = t;
            json_object_set_new(o, "gap_s", json_null());
            json_object_set_new(o, "pace", json_string("start"));
        } else {
            int64_t gap = (t - prev_ms) / 1000;

            json_object_set_new(o, "gap_s", json_integer(gap));
            json_object_set_new(o, "pace", json_string(prev_gap < 0    ? "first gap"
                                                       : gap < prev_gap ? "faster"
                                                       : gap > prev_gap ? "slower" : "steady"));
            prev_gap = gap;
        }
        prev_ms = t;
        json_object_del(o, "first_seen_ms");
        json_object_del(o, "reason");
    }
    json_object_set_new(doc, "span_s", json_integer(json_array_size(timeline) > 0
                                                        ? (prev_ms - first_ms) / 1000 : 0));
    json_object_set_new(doc, "timeline", timeline);

    nodes = json_array();
    edges = json_array();
    index = json_object();
    json_object_set_new(doc, "graph", json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges));
    r = PQexecParams(pg, "SELECT entity_type, value FROM entity_alerts WHERE event_id = $1 "
                     "GROUP BY entity_type, value ORDER BY min(first_seen), "
                     "array_position(ARRAY['host', 'ip', 'host_account', 'process', 'file'], "
                     "entity_type), value", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto failed;
    for (i = 0; i < PQntuples(r); i++)
        if (add_node(index, nodes, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)) != 0)
            goto oom;
    PQclear(r);
    r = PQexecParams(pg, "SELECT src_type, src, relation, dst_type, dst, alert_id, alerts, "
                     CTL_TS("first_seen") ", " CTL_TS("last_seen") " FROM event_edges "
                     "WHERE event_id = $1 ORDER BY first_seen, src_type, src, relation, "
                     "dst_type, dst", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto failed;
    for (i = 0; i < PQntuples(r); i++) {
        json_t *e = row_object(r, i, EDGE_COLS, NCOLS(EDGE_COLS));

        if (add_node(index, nodes, jstr(e, "src_type"), jstr(e, "src")) != 0 ||
            add_node(index, nodes, jstr(e, "dst_type"), jstr(e, "dst")) != 0) {
            json_decref(e);
            goto oom;
        }
        json_object_set_new(e, "from", json_string(node_id(index, nodes, jstr(e, "src_type"),
                                                           jstr(e, "src"))));
        json_object_set_new(e, "to", json_string(node_id(index, nodes, jstr(e, "dst_type"),
                                                         jstr(e, "dst"))));
        json_array_append_new(edges, e);
    }
    PQclear(r);
    json_decref(index);
    return doc;
failed:
    *rc = ctl_query_failed(pg, r);
    json_decref(index);
    json_decref(doc);
    return NULL;
oom:
    PQclear(r);
    json_decref(index);
    json_decref(doc);
    *rc = ctl_fail(CTL_INFRA, "out of memory");
    return NULL;
}

/* The provenance graph as a Graphviz digraph. Returns 0, or non-zero when out of memory. */
static int chain_dot(const json_t *doc, cwpp_buf_t *b)
{
    static const struct { const char *type, *shape, *color; } style[] = {
        {"host", "box3d", "#4a6fa5"},      {"ip", "diamond", "#c0392b"},
        {"host_account", "house", "#8e44ad"}, {"process", "box", "#27ae60"},
        {"file", "note", "#7f8c8d"},
    };
    const json_t *g = json_object_get(doc, "graph");
    const json_t *nodes = json_object_get(g, "nodes"), *edges = json_object_get(g, "edges");
    size_t        k, s;
    int           rc = 0;
    char          num[64];

    rc |= cwpp_buf_puts(b, "digraph \"");
    rc |= put_dot(b, jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, "\" {\n  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label=\"");
    rc |= put_dot(b, jstr(doc, "name"), 80);
    rc |= cwpp_buf_puts(b, " (");
    rc |= put_dot(b, jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, ")\"];\n  node [fontname=\"Helvetica\", fontsize=10];\n"
                 "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (k = 0; k < json_array_size(nodes); k++) {
        const json_t *n = json_array_get(nodes, k);
        const char   *type = jstr(n, "type"), *shape = "ellipse", *color = "black";

        for (s = 0; s < sizeof(style) / sizeof(style[0]); s++)
            if (type != NULL && strcmp(style[s].type, type) == 0) {
                shape = style[s].shape;
                color = style[s].color;
            }
        rc |= cwpp_buf_puts(b, "  ");
        rc |= cwpp_buf_puts(b, jstr(n, "id"));
        rc |= cwpp_buf_puts(b, " [shape=");
        rc |= cwpp_buf_puts(b, shape);
        rc |= cwpp_buf_puts(b, ", color=\"");
        rc |= cwpp_buf_puts(b, color);
        rc |= cwpp_buf_puts(b, "\", label=\"");
        rc |= put_dot(b, type, 0);
        rc |= cwpp_buf_puts(b, "\\n");
        rc |= put_dot(b, jstr(n, "value"), 60);
        rc |= cwpp_buf_puts(b, "\", tooltip=\"");
        rc |= put_dot(b, jstr(n, "value"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    for (k = 0; k < json_array_size(edges); k++) {
        const json_t *e = json_array_get(edges, k);

        rc |= cwpp_buf_puts(b, "  ");
        rc |= cwpp_buf_puts(b, jstr(e, "from"));
        rc |= cwpp_buf_puts(b, " -> ");
        rc |= cwpp_buf_puts(b, jstr(e, "to"));
        rc |= cwpp_buf_puts(b, " [label=\"");
        rc |= put_dot(b, jstr(e, "relation"), 0);
        if (jint(e, "alerts") > 1) {
            snprintf(num, sizeof(num), " (x%" JSON_INTEGER_FORMAT ")", jint(e, "alerts"));
            rc |= cwpp_buf_puts(b, num);
        }
        rc |= cwpp_buf_puts(b, "\", tooltip=\"first shown by ");
        rc |= put_dot(b, jstr(e, "alert_id"), 0);
        rc |= cwpp_buf_puts(b, " at ");
        rc |= put_dot(b, jstr(e, "first_seen"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    rc |= cwpp_buf_puts(b, "}\n");
    return rc;
}

/*
 * Runs `dot -Tsvg` (found on PATH; no shell) with in as its input, collecting its output
 * in out. Gives up after timeout_s seconds (the child is killed). Returns CTL_OK, or
 * CTL_INFRA after printing why (dot missing, failed, too slow). dot's own messages go to
 * our stderr.
 */
static int run_dot_svg(const cwpp_buf_t *in, cwpp_buf_t *out, int timeout_s)
{
    int     to_child[2] = {-1, -1}, from_child[2] = {-1, -1}, report[2] = {-1, -1};
    int     rc = CTL_INFRA, status, exec_errno = 0, killed = 0, poll_errno = 0;
    size_t  written = 0;
    int64_t deadline = cwpp_mono_ms() + (int64_t)timeout_s * 1000;
    pid_t   pid;
    void  (*old_pipe)(int) = SIG_DFL;

    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0 ||
        pipe2(report, O_CLOEXEC) != 0) {
        ctl_fail(CTL_INFRA, "cannot run dot: %s", strerror(errno));
        goto out;
    }
    /* dot exiting early must not kill us with SIGPIPE: a write then fails with EPIPE */
    old_pipe = signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        signal(SIGPIPE, old_pipe);
        ctl_fail(CTL_INFRA, "cannot run dot: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        char *const args[] = {"dot", "-Tsvg", NULL};
        int         e;

        signal(SIGPIPE, SIG_DFL);
        /* dup2 onto itself would keep close-on-exec (a caller started with 0 or 1 closed) */
        if ((to_child[0] == 0 ? fcntl(0, F_SETFD, 0) : dup2(to_child[0], 0)) < 0 ||
            (from_child[1] == 1 ? fcntl(1, F_SETFD, 0) : dup2(from_child[1], 1)) < 0)
            _exit(127);
        execvp("dot", args);
        e = errno;
        if (write(report[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    close(report[1]);
    to_child[0] = from_child[1] = report[1] = -1;
    /* the report pipe closes on a successful exec, or brings exec's errno */
    while (read(report[0], &exec_errno, sizeof(exec_errno)) < 0 && errno == EINTR)
        ;
    if (exec_errno != 0) {
        waitpid(pid, &status, 0);
        signal(SIGPIPE, old_pipe);
        ctl_fail(CTL_INFRA, "cannot run dot (Graphviz) for --format svg: %s; install the "
                 "graphviz package, or use --format dot", strerror(exec_errno));
        goto out;
    }
    fcntl(to_child[1], F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd pf[2];
        int           n = 0, wait_ms = (int)(deadline - cwpp_mono_ms());
        char          buf[65536];
        ssize_t       got;

        if (from_child[0] < 0)
            break;
        if (wait_ms <= 0) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        if (to_child[1] >= 0 && written == in->len) {
            close(to_child[1]);
            to_child[1] = -1;
        }
        pf[n].fd = from_child[0];
        pf[n++].events = POLLIN;
        if (to_child[1] >= 0) {
            pf[n].fd = to_child[1];
            pf[n++].events = POLLOUT;
        }
        if (poll(pf, (nfds_t)n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            poll_errno = errno;
            kill(pid, SIGKILL); /* nobody reads its output any more: it must not hang us */
            killed = 2;
            break;
        }
        if (n == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t w = write(to_child[1], in->data + written, in->len - written);

            if (w > 0) {
                written += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(to_child[1]); /* dot stopped reading; its exit status tells why */
                to_child[1] = -1;
                written = in->len;
            }
        }
        if ((pf[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            got = read(from_child[0], buf, sizeof(buf));
            if (got > 0) {
                if (cwpp_buf_append(out, buf, (size_t)got) != CWPP_OK) {
                    kill(pid, SIGKILL);
                    waitpid(pid, &status, 0);
                    signal(SIGPIPE, old_pipe);
                    ctl_fail(CTL_INFRA, "out of memory");
                    goto out;
                }
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(from_child[0]);
                from_child[0] = -1;
            }
        }
    }
    if (to_child[1] >= 0) {
        close(to_child[1]);
        to_child[1] = -1;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    signal(SIGPIPE, old_pipe);
    if (killed == 2)
        ctl_fail(CTL_INFRA, "cannot wait for dot: %s", strerror(poll_errno));
    else if (killed)
        ctl_fail(CTL_INFRA, "dot did not finish within %d s (--timeout)", timeout_s);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        ctl_fail(CTL_INFRA, "dot -Tsvg failed (%s %d)", WIFEXITED(status) ? "exit status"
                                                                        : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else
        rc = CTL_OK;
out:
    if (to_child[0] >= 0)
        close(to_child[0]);
    if (to_child[1] >= 0)
        close(to_child[1]);
    if (from_child[0] >= 0)
        close(from_child[0]);
    if (from_child[1] >= 0)
        close(from_child[1]);
    if (report[0] >= 0)
        close(report[0]);
    if (report[1] >= 0)
        close(report[1]);
    return rc;
}

static void chain_text(const json_t *doc)
{
    const json_t *timeline = json_object_get(doc, "timeline");
    const json_t *g = json_object_get(doc, "graph");
    const json_t *nodes = json_object_get(g, "nodes"), *edges = json_object_get(g, "edges");
    char          span[32], gap[40];
    size_t        k;

    printf("Event %s \"", jstr(doc, "event_id"));
    cell(jstr(doc, "name"), 0);
    printf("\": %zu alert%s over %s on %" JSON_INTEGER_FORMAT " asset%s\n\nTimeline\n",
           json_array_size(timeline), json_array_size(timeline) == 1 ? "" : "s",
           human_secs(jint(doc, "span_s"), span, sizeof(span)), jint(doc, "asset_count"),
           jint(doc, "asset_count") == 1 ? "" : "s");
    for (k = 0; k < json_array_size(timeline); k++) {
        const json_t *o = json_array_get(timeline, k);

        if (json_is_integer(json_object_get(o, "gap_s"))) {
            gap[0] = '+';
            human_secs(jint(o, "gap_s"), gap + 1, sizeof(gap) - 1);
        } else {
            snprintf(gap, sizeof(gap), "start");
        }
        printf("  %s  %-9s  %-9s  ", jstr(o, "first_seen"), gap, k > 0 ? jstr(o, "pace") : "");
        cell(jstr(o, "name"), 30);
        printf("  ");
        cell(jstr(o, "type"), 17);
        printf("  ");
        cell(jstr(o, "severity"), 8);
        printf("  on ");
        cell(jstr(o, "asset_id"), 0);
        putchar('\n');
    }
    if (json_array_size(timeline) == 0)
        printf("  (no alerts)\n");
    printf("\nProvenance graph: %zu entities, %zu relations\n", json_array_size(nodes),
           json_array_size(edges));
    for (k = 0; k < json_array_size(edges); k++) {
        const json_t *e = json_array_get(edges, k);

        printf("  %s ", jstr(e, "src_type"));
        cell(jstr(e, "src"), 0);
        printf("  --%s-->  %s ", jstr(e, "relation"), jstr(e, "dst_type"));
        cell(jstr(e, "dst"), 0);
        printf("  (%" JSON_INTEGER_FORMAT " alert%s, first %s)\n", jint(e, "alerts"),
               jint(e, "alerts") == 1 ? "" : "s", jstr(e, "alert_id"));
    }
    if (json_array_size(edges) == 0)
        printf("  (no relations between entities)\n");
}

static int events_chain(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    static const char *const FORMATS[] = {"text", "json", "dot", "svg", NULL};
    const char *id = NULL, *format = NULL;
    cwpp_buf_t  dot = {0}, svg = {0};
    PGconn     *pg;
    json_t     *doc;
    int         i, rc = CTL_OK;

    (void)st; /* checked by ctl_events, not needed here */
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0) {
            if ((format = ctl_value_of(argc, argv, &i)) == NULL)
                return CTL_USAGE;
            if (find(FORMATS, format) < 0)
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
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    if ((doc = load_chain(pg, id, &rc)) == NULL)
        return rc;
    if (strcmp(format, "json") == 0) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    if (strcmp(format, "text") == 0) {
        chain_text(doc);
        json_decref(doc);
        return CTL_OK;
    }
    if (chain_dot(doc, &dot) != 0) {
        rc = ctl_fail(CTL_INFRA, "out of memory");
    } else if (strcmp(format, "dot") == 0) {
        fwrite(dot.data, 1, dot.len, stdout);
    } else if ((rc = run_dot_svg(&dot, &svg, c->timeout_s)) == CTL_OK) {
        fwrite(svg.data, 1, svg.len, stdout);
    }
    cwpp_buf_free(&dot);
    cwpp_buf_free(&svg);
    json_decref(doc);
    return rc;
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

static const col_t ENT_STATS_COLS[] = {
    {"account_id", COL_STR}, {"events", COL_INT}, {"alerts", COL_INT}, {"tasks", COL_INT},
    {"assets", COL_INT},     {"last_seen", COL_STR},
};

static const col_t ENT_EVENT_COLS[] = {
    {"event_id", COL_STR},  {"account_id", COL_STR}, {"name", COL_STR},
    {"level", COL_STR},     {"status", COL_STR},     {"urgency", COL_STR},
    {"last_seen", COL_STR}, {"entity_alerts", COL_INT}, {"assets", COL_JSON},
    {NULL, COL_BOOL} /* quiet */,
};

static int entities_show(ctl_t *c, const settings_t *st, int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL}, *account = NULL, *limit = LIST_LIMIT_DEFAULT, *p[6];
    PGresult   *r;
    PGconn     *pg;
    json_t     *stats, *events;
    int         i, npos = 0, rc, opts = 1;

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
    if (find(ENTITY_TYPES, pos[0]) < 0)
        return ctl_fail(CTL_USAGE, "unknown entity type \"%s\" (use host, file, process, ip or "
                        "host_account)", pos[0]);
    if ((rc = utf8_arg("VALUE", pos[1])) != CTL_OK)
        return rc;
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    p[0] = pos[0];
    p[1] = pos[1];
    p[2] = account;
    p[3] = st->retention;
    p[4] = limit;
    p[5] = st->quiet;
    r = PQexecParams(pg,
                     "SELECT account_id, events, alerts, tasks, assets, " CTL_TS("last_seen")
                     " FROM entity_stats_30d WHERE entity_type = $1 AND value = $2 "
                     "AND ($3::text IS NULL OR account_id = $3) ORDER BY account_id",
                     3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    stats = json_array();
    for (i = 0; i < PQntuples(r); i++)
        json_array_append_new(stats, row_object(r, i, ENT_STATS_COLS, NCOLS(ENT_STATS_COLS)));
    PQclear(r);
    r = PQexecParams(pg,
                     "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
                     CTL_TS("e.last_seen") ", count(DISTINCT x.alert_id), "
                     "array_to_json(array_agg(DISTINCT x.asset_id) FILTER "
                     "(WHERE x.asset_id <> '')), "
                     "e.last_seen < now() - make_interval(hours => $6::int) "
                     "FROM entity_alerts x JOIN events e USING (event_id) "
                     "WHERE x.entity_type = $1 AND x.value = $2 "
                     "AND ($3::text IS NULL OR x.account_id = $3) "
                     "AND e.last_seen > now() - make_interval(days => $4::int) "
                     "GROUP BY e.event_id ORDER BY e.last_seen DESC, e.event_id LIMIT $5::int",
                     6, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        json_decref(stats);
        return ctl_query_failed(pg, r);
    }
    events = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_t *o = row_object(r, i, ENT_EVENT_COLS, NCOLS(ENT_EVENT_COLS));

        if (json_is_null(json_object_get(o, "assets")))
            json_object_set_new(o, "assets", json_array());
        apply_quiet(o, PQgetvalue(r, i, 9)[0] == 't');
        json_array_append_new(events, o);
    }
    PQclear(r);
    if (json_array_size(stats) == 0 && json_array_size(events) == 0) {
        json_decref(stats);
        json_decref(events);
        return ctl_fail(CTL_REFUSED, "no %s entity \"%s\"%s%s in the last %d days", pos[0],
                        pos[1], account != NULL ? " in account " : "",
                        account != NULL ? account : "", st->retention_days);
    }
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:s, s:o, s:o, s:i}", "entity_type", pos[0], "value",
                                 pos[1], "stats_30d", stats, "events", events,
                                 "retention_days", st->retention_days));
        return CTL_OK;
    }
    {
        size_t k;

        printf("%s ", pos[0]);
        cell(pos[1], 0);
        printf("\n\nLast 30 days:\n");
        printf("  %-24s  %6s  %6s  %5s  %6s  %s\n", "ACCOUNT", "EVENTS", "ALERTS", "TASKS",
               "ASSETS", "LAST SEEN");
        for (k = 0; k < json_array_size(stats); k++) {
            json_t *o = json_array_get(stats, k);

            fputs("  ", stdout);
            cell(jstr(o, "account_id"), 24);
            printf("  %6" JSON_INTEGER_FORMAT "  %6" JSON_INTEGER_FORMAT "  %5"
                   JSON_INTEGER_FORMAT "  %6" JSON_INTEGER_FORMAT "  %s\n", jint(o, "events"),
                   jint(o, "alerts"), jint(o, "tasks"), jint(o, "assets"),
                   jstr(o, "last_seen"));
        }
        if (json_array_size(stats) == 0)
            printf("  (not seen in the last 30 days)\n");
        printf("\nEvents (last %d days, newest first):\n", st->retention_days);
        for (k = 0; k < json_array_size(events); k++) {
            json_t *o = json_array_get(events, k);

            fputs("  ", stdout);
            cell(jstr(o, "event_id"), 35);
            fputs("  ", stdout);
            cell(jstr(o, "level"), 8);
            fputs("  ", stdout);
            cell(jstr(o, "status"), 9);
            fputs("  ", stdout);
            cell(jstr(o, "urgency"), 7);
            fputs("  ", stdout);
            cell(jstr(o, "last_seen"), 20);
            fputs("  ", stdout);
            cell(jstr(o, "name"), 0);
            putchar('\n');
        }
        if (json_array_size(events) == 0)
            printf("  (none)\n");
    }
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
