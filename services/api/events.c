/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.c: the security-event read resources of cwpp-api (docs/api/openapi.yaml, tag
 * "events"; docs/architecture.md "Security events", "Entities", "Assessment", "Limits").
 * What they read is written by the correlator (docs/correlator.md); cwppctl's
 * `events list|show|alerts|entities|chain` and `entities show` print these documents
 * (--json as they are, the text output drawn from them).
 *
 *   GET /api/v1/events                  the event list: filters, four sort orders, keyset
 *                                       paging (limit <= 500, an opaque cursor), total
 *   GET /api/v1/events/{id}             one event: overview, ATT&CK tactics with their
 *                                       names, the assessment with its reasons and
 *                                       recommendations
 *   GET /api/v1/events/{id}/alerts      its alerts in order of first occurrence (paged)
 *   GET /api/v1/events/{id}/entities    its entities with 30-day figures (?affected=1:
 *                                       the affected assets)
 *   GET /api/v1/events/{id}/chain       its timeline and provenance graph (JSON;
 *                                       ?format=dot|svg: the provenance graph as Graphviz
 *                                       text or as the SVG picture, libs/graph, the same
 *                                       drawing as cwppctl's --format dot|svg)
 *   GET /api/v1/entities/{type}?value=  an entity's 30-day figures per account and the
 *                                       events it appears in (paged)
 * (events_views.c has the last four.)
 *
 * Every read is scoped to the caller's accounts (API_SCOPE): another tenant's event is a
 * 404 exactly like a missing one, and never appears in a list or a count. Every query is
 * parameterised: what a caller types is only ever a parameter; the SQL text is built
 * from our constants alone (the sort's expressions, the keyset condition). Every query
 * argument is checked before any query runs (unknown -> 400 "unknown_parameter", a bad
 * value -> 400 "bad_filter" with a sentence naming it).
 *
 * Two rules depend on the time of reading, so they are applied here and not stored:
 *   - retention (docs/architecture.md "Limits"): the event list, and the events an entity
 *     appears in, hold only events whose latest occurrence is within retention_days (180)
 *     days. GET /events/{id} still shows an older event, with in_event_list false.
 *   - quiet ("no new related alerts for a long time: lower priority"): once an event's
 *     latest alert is more than quiet_hours (24) hours old, the urgency shown is one step
 *     below the stored one and the reason "quiet" is added. 24 hours is the correlator's
 *     default joining window (correlator.window.ms). The rule is libs/correlate's
 *     (CWPP_SQL_QUIET, CWPP_SQL_URGENCY_RANK, cwpp_urgency_shown), which the export
 *     workbook and the handled-event stream apply too.
 * Both are query arguments with those defaults (cwppctl passes its CWPP_EVENT_RETENTION_
 * DAYS and CWPP_CTL_QUIET_HOURS). Every comparison with "now" is made by the database
 * server: a paged query reads its "now" once, on its first page, and carries it in the
 * cursor, so that the rules (and the urgency order, which depends on quiet) stay the same
 * from one page to the next and walking the cursor returns every event exactly once.
 */
#include "api_events.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_correlate.h"

static const char *const LEVELS[] = {"critical", "high", "medium", "low", NULL};
/* most urgent first: "one step lower" is the next one */
static const char *const URGENCIES[] = {"act_now", "high", "medium", "low", NULL};

/* Index of s in the NULL-terminated list, or -1. */
static int find(const char *const *list, const char *s)
{
    int i;

    for (i = 0; s != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ shared helpers */

int api_ev_int_arg(const api_req_t *rq, api_resp_t *rs, const char *name, int def, int lo,
                   int hi, int *out)
{
    const char *v = api_arg(rq, name);
    char       *end;
    long        n;

    *out = def;
    if (v == NULL)
        return 1;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi || v[0] == ' ') {
        api_problem(rs, 400, "bad_filter", "%s must be a whole number from %d to %d.", name, lo,
                    hi);
        return 0;
    }
    *out = (int)n;
    return 1;
}

int api_ev_rules(const api_req_t *rq, api_resp_t *rs, api_ev_rules_t *r)
{
    if (!api_ev_int_arg(rq, rs, "retention_days", API_EV_RETENTION_DAYS, 1, 36500,
                        &r->retention_days) ||
        !api_ev_int_arg(rq, rs, "quiet_hours", API_EV_QUIET_HOURS, 1, 87600, &r->quiet_hours))
        return 0;
    snprintf(r->retention, sizeof(r->retention), "%d", r->retention_days);
    snprintf(r->quiet, sizeof(r->quiet), "%d", r->quiet_hours);
    return 1;
}

int api_ev_text_arg(api_resp_t *rs, const char *name, const char *v, size_t max)
{
    size_t n;

    if (v == NULL)
        return 1;
    n = strlen(v);
    if (n == 0 || n > max || !cwpp_utf8_valid(v, n)) {
        api_problem(rs, 400, "bad_filter", "%s must be 1 to %zu bytes of UTF-8 text.", name,
                    max);
        return 0;
    }
    return 1;
}

int api_ev_id_ok(const char *id)
{
    size_t n, i;

    if (id == NULL || (n = strlen(id)) == 0 || n > 128 || !cwpp_utf8_valid(id, n))
        return 0;
    for (i = 0; i < n; i++)
        if (id[i] == '/' || (unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return 0;
    return 1;
}

int api_ev_not_found(api_resp_t *rs, const char *id)
{
    if (id == NULL)
        return api_problem(rs, 404, "not_found", "There is no event with such an id (1 to 128 "
                           "characters of UTF-8 without '/' or control characters).");
    return api_problem(rs, 404, "not_found", "There is no event %.128s among the accounts "
                       "you hold.", id);
}

int api_ev_visible(api_req_t *rq, api_resp_t *rs, const char *id)
{
    const char *p[2] = {id, api_scope(rq)};
    PGresult   *r;
    int         n;

    if (!api_ev_id_ok(id)) {
        api_ev_not_found(rs, NULL);
        return 0;
    }
    if (api_sql(rq, rs, "SELECT 1 FROM events e WHERE e.event_id = $1 AND "
                API_SCOPE("e.account_id", "2"), 2, p, &r) != 0)
        return 0;
    n = PQntuples(r);
    PQclear(r);
    if (n != 1) {
        api_ev_not_found(rs, id);
        return 0;
    }
    return 1;
}

int api_ev_as_of(api_req_t *rq, api_resp_t *rs, const json_t *state, char *out, size_t size)
{
    PGresult *r;

    if (state != NULL) {
        const char *s = json_string_value(json_array_get(state, 0));

        if (s == NULL || strlen(s) >= size) {
            api_problem(rs, 400, "bad_cursor", "The cursor is not one this query gave.");
            return 0;
        }
        snprintf(out, size, "%s", s);
        return 1;
    }
    if (api_sql(rq, rs, "SELECT now()::text", 0, NULL, &r) != 0)
        return 0;
    snprintf(out, size, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "now");
    PQclear(r);
    return 1;
}

int api_ev_keyset(cwpp_buf_t *b, const api_ev_key_t *keys, int n, int first, int order)
{
    char num[16];
    int  i, j, rc = 0;

    if (order == 1) {
        for (i = 0; i < n; i++) {
            rc |= cwpp_buf_puts(b, i > 0 ? ", " : "");
            rc |= cwpp_buf_puts(b, keys[i].expr);
            rc |= cwpp_buf_puts(b, keys[i].desc ? " DESC" : " ASC");
        }
        return rc != 0 ? CWPP_ENOMEM : 0;
    }
    if (order == 2) {
        for (i = 0; i < n; i++) {
            snprintf(num, sizeof(num), "%d", i);
            rc |= cwpp_buf_puts(b, ", (");
            rc |= cwpp_buf_puts(b, keys[i].expr);
            rc |= cwpp_buf_puts(b, ")::text AS _k");
            rc |= cwpp_buf_puts(b, num);
        }
        return rc != 0 ? CWPP_ENOMEM : 0;
    }
    /* (k0 > $a) OR (k0 = $a AND k1 > $b) OR ...; "<" for a descending key */
    rc |= cwpp_buf_puts(b, "(");
    for (i = 0; i < n; i++) {
        rc |= cwpp_buf_puts(b, i > 0 ? " OR (" : "(");
        for (j = 0; j <= i; j++) {
            snprintf(num, sizeof(num), "$%d::", first + j);
            rc |= cwpp_buf_puts(b, j > 0 ? " AND " : "");
            rc |= cwpp_buf_puts(b, keys[j].expr);
            rc |= cwpp_buf_puts(b, j < i ? " = " : keys[j].desc ? " < " : " > ");
            rc |= cwpp_buf_puts(b, num);
            rc |= cwpp_buf_puts(b, keys[j].type);
        }
        rc |= cwpp_buf_puts(b, ")");
    }
    rc |= cwpp_buf_puts(b, ")");
    return rc != 0 ? CWPP_ENOMEM : 0;
}

int api_ev_cursor_keys(api_resp_t *rs, const json_t *state, int nkeys, const char **p)
{
    int i;

    if (!json_is_array(state) || json_array_size(state) != (size_t)nkeys + 1)
        goto bad;
    for (i = 0; i <= nkeys; i++) {
        const char *s = json_string_value(json_array_get(state, (size_t)i));

        if (s == NULL || strlen(s) > 4096 || !cwpp_utf8_valid(s, strlen(s)))
            goto bad;
        if (i > 0)
            p[i - 1] = s;
    }
    return 1;
bad:
    api_problem(rs, 400, "bad_cursor", "The cursor is not one this query gave.");
    return 0;
}

void api_ev_next_cursor(const api_req_t *rq, const PGresult *r, int i, int nkeys,
                        const char *as_of, json_t *doc)
{
    json_t *state = json_array();
    char   *token = NULL, name[16];
    int     k;

    json_array_append_new(state, json_string(as_of));
    for (k = 0; k < nkeys; k++) {
        int col;

        snprintf(name, sizeof(name), "_k%d", k);
        col = PQfnumber(r, name);
        assert(col >= 0);
        json_array_append_new(state, json_string(PQgetvalue(r, i, col)));
    }
    token = api_cursor_make(rq, state);
    json_decref(state);
    json_object_set_new(doc, "next_cursor", token != NULL ? json_string(token) : json_null());
    free(token);
}

void api_ev_apply_quiet(json_t *o, int quiet)
{
    const char    *stored = json_string_value(json_object_get(o, "urgency"));
    const json_t  *stages = json_object_get(o, "stages");
    cwpp_urgency_t u = CWPP_URG_LOW;
    json_t        *s = json_string(stored != NULL ? stored : "low");

    /* the quiet rule is libs/correlate's (cwpp_urgency_shown; the SQL gave "quiet") */
    if (cwpp_urgency_parse(stored, &u) != 0)
        u = CWPP_URG_LOW;
    json_object_set_new(o, "assessed_urgency", s);
    json_object_set_new(o, "urgency",
                        json_string(cwpp_urgency_name(cwpp_urgency_shown(u, quiet))));
    json_object_set_new(o, "quiet", json_boolean(quiet));
    if (json_is_array(stages)) {
        json_t *tactics = json_array();
        size_t  k;

        for (k = 0; k < json_array_size(stages); k++) {
            const char *id = json_string_value(json_array_get(stages, k));
            const char *name = cwpp_alert_tactic_name(id);

            if (id != NULL)
                json_array_append_new(tactics, json_pack("{s:s, s:o}", "id", id, "name",
                                                         name != NULL ? json_string(name)
                                                                      : json_null()));
        }
        json_object_set_new(o, "tactics", tactics);
    }
}

void api_ev_strip(json_t *o)
{
    const char *key;
    json_t     *v;
    void       *tmp;

    json_object_foreach_safe(o, tmp, key, v) {
        (void)v;
        if (key[0] == '_')
            json_object_del(o, key);
    }
}

/* ---------------------------------------------------------------- the list */

/* The urgency shown, as its rank 1 (act_now) .. 4 (low): the stored one, one step lower
 * when the event is quiet at the reading time $1 (quiet_hours $3). */
#define URANK CWPP_SQL_URGENCY_RANK("e.urgency", "e.last_seen", "$1", "$3")
#define LRANK "COALESCE(array_position('{critical,high,medium,low}'::text[], e.level), 5)"

/* The sort orders; each ends in the event id, so the order is total. */
static const struct {
    const char  *name;
    int          nkeys;
    api_ev_key_t keys[3];
} SORTS[] = {
    {"last_seen", 2, {{"e.last_seen", "timestamptz", 1}, {"e.event_id", "text", 0}}},
    {"level", 3, {{LRANK, "int", 0}, {"e.last_seen", "timestamptz", 1},
                  {"e.event_id", "text", 0}}},
    {"urgency", 3, {{URANK, "int", 0}, {"e.last_seen", "timestamptz", 1},
                    {"e.event_id", "text", 0}}},
    {"alerts", 3, {{"e.alert_count", "int", 1}, {"e.last_seen", "timestamptz", 1},
                   {"e.event_id", "text", 0}}},
};
#define NSORTS (sizeof(SORTS) / sizeof(SORTS[0]))

/* The filters, $1..$19 (events.c's essay; the openapi part describes each). q is a keyword
 * (the event's name, its id, or one of its alerts' names); name only the event's name. */
static const char LIST_WHERE[] =
    " FROM events e WHERE e.last_seen > $1::timestamptz - make_interval(days => $2::int) "
    "AND " API_SCOPE("e.account_id", "4") " "
    "AND ($5::text[] IS NULL OR e.status = ANY($5::text[])) "
    "AND ($6::text[] IS NULL OR e.level = ANY($6::text[])) "
    "AND ($7::int[] IS NULL OR " URANK " = ANY($7::int[])) "
    "AND ($8::text IS NULL OR e.account_id = $8) "
    "AND ($9::timestamptz IS NULL OR e.last_seen >= $9::timestamptz) "
    "AND ($10::timestamptz IS NULL OR e.first_seen <= $10::timestamptz) "
    "AND ($11::text IS NULL OR e.owner = $11) "
    "AND (NOT $12::boolean OR COALESCE(e.owner, '') = '') "
    "AND ($13::text IS NULL OR strpos(lower(e.name), lower($13)) > 0 OR e.event_id = $13 "
    "  OR EXISTS (SELECT 1 FROM event_alerts ea JOIN alerts a USING (alert_id) "
    "  WHERE ea.event_id = e.event_id AND strpos(lower(a.name), lower($13)) > 0)) "
    "AND ($14::text IS NULL OR EXISTS (SELECT 1 FROM entity_alerts x "
    "  WHERE x.event_id = e.event_id AND x.entity_type = 'host' "
    "  AND x.value_key = bounded_key($14) AND x.value = $14)) "
    "AND ($15::text IS NULL OR EXISTS (SELECT 1 FROM entity_alerts x "
    "  WHERE x.event_id = e.event_id AND x.entity_type = $15 "
    "  AND x.value_key = bounded_key($16::text) AND x.value = $16::text)) "
    "AND ($17::text IS NULL OR $17 = ANY(e.sources)) "
    "AND ($18::text IS NULL OR $18 = ANY(e.stages)) "
    "AND ($19::text IS NULL OR strpos(lower(e.name), lower($19)) > 0) ";
#define LIST_NPARAMS 19

/* The event an event was merged into (status "merged"), or null (migration 020). */
#define MERGED_INTO "e.merged_into AS merged_into"

static const char LIST_SELECT[] =
    "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
    "e.alert_count, e.asset_count, e.occurrences, array_to_json(e.stages) AS stages, "
    API_EV_TS("e.first_seen") " AS first_seen, " API_EV_TS("e.last_seen") " AS last_seen, "
    "e.owner, " MERGED_INTO ", " CWPP_SQL_QUIET("e.last_seen", "$1", "$3") " AS _quiet";

/* The parsed filters: their text, and the buffers the multi-valued ones are built in. */
typedef struct list_filters {
    char        status[128], level[64], urgency[32];
    char        since[40], until[40];
    const char *owner;
    int         owner_none;
    const char *entity_type;
    char       *entity_value; /* malloc'd */
    const char *stage;
} list_filters_t;

/*
 * A comma-separated list of words, each in allowed (or, when allowed is NULL, an event
 * status), as a PostgreSQL array literal in out: of the words (ranks == 0) or of their
 * 1-based positions in allowed (ranks == 1). "" when the argument is absent. Returns 1, or
 * 0 after a 400 "bad_filter" naming the word and what is allowed.
 */
static int word_list(const api_req_t *rq, api_resp_t *rs, const char *name,
                     const char *const *allowed, int ranks, char *out, size_t size)
{
    const char         *v = api_arg(rq, name), *p, *end;
    char                word[32], names[160];
    size_t              n = 0;
    cwpp_event_status_t st;

    out[0] = '\0';
    if (v == NULL)
        return 1;
    n = (size_t)snprintf(out, size, "{");
    for (p = v;; p = end + 1) {
        size_t len;
        int    ix = -1;

        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (len == 0 || len >= sizeof(word))
            goto bad;
        memcpy(word, p, len);
        word[len] = '\0';
        if (allowed != NULL ? (ix = find(allowed, word)) < 0
                            : cwpp_event_status_parse(word, &st) != 0)
            goto bad;
        if (n + len + 4 >= size) {
            api_problem(rs, 400, "bad_filter", "%s names too many values.", name);
            return 0;
        }
        if (ranks)
            n += (size_t)snprintf(out + n, size - n, "%s%d", n > 1 ? "," : "", ix + 1);
        else
            n += (size_t)snprintf(out + n, size - n, "%s%s", n > 1 ? "," : "", word);
        if (*end == '\0')
            break;
    }
    snprintf(out + n, size - n, "}");
    return 1;
bad:
    if (allowed != NULL) {
        size_t k = 0;

        while (allowed[k] != NULL)
            k++;
        cwpp_names_join(names, sizeof(names), allowed, k, ", ", " or ");
    } else {
        cwpp_event_statuses_text(names, sizeof(names), ", ", " or ");
    }
    api_problem(rs, 400, "bad_filter", "%s must be one or more of %s, separated by commas.",
                name, names);
    return 0;
}

/* A since / until argument: an RFC 3339 time or a date (00:00 UTC), as RFC 3339 in out
 * ("" when absent) and *ms. Returns 1, or 0 after a 400 "bad_filter". */
static int time_arg(const api_req_t *rq, api_resp_t *rs, const char *name, char *out,
                    size_t size, int64_t *ms)
{
    const char *v = api_arg(rq, name);
    char        date[40];

    out[0] = '\0';
    if (v == NULL)
        return 1;
    if (strlen(v) == 10 && v[4] == '-' && v[7] == '-') {
        snprintf(date, sizeof(date), "%sT00:00:00Z", v);
        v = date;
    }
    if (strlen(v) > 40 || cwpp_parse_time_ms(v, 0, ms) != 0) {
        api_problem(rs, 400, "bad_filter", "%s must be an RFC 3339 time "
                    "(2026-05-01T08:00:00Z) or a date (2026-05-01).", name);
        return 0;
    }
    cwpp_format_time_ms(*ms, out, size);
    return 1;
}

/* Reads and checks every filter of the list into f and p[4..17]. Returns 1, or 0 after a
 * 400 problem. f->entity_value is malloc'd (the caller frees it). */
static int list_filters(const api_req_t *rq, api_resp_t *rs, list_filters_t *f,
                        const char **p)
{
    int64_t            since_ms = 0, until_ms = 0;
    const char        *v;
    char               names[128];
    cwpp_entity_type_t et;

    if (!word_list(rq, rs, "status", NULL, 0, f->status, sizeof(f->status)) ||
        !word_list(rq, rs, "level", LEVELS, 0, f->level, sizeof(f->level)) ||
        !word_list(rq, rs, "urgency", URGENCIES, 1, f->urgency, sizeof(f->urgency)) ||
        !time_arg(rq, rs, "since", f->since, sizeof(f->since), &since_ms) ||
        !time_arg(rq, rs, "until", f->until, sizeof(f->until), &until_ms))
        return 0;
    if (f->since[0] != '\0' && f->until[0] != '\0' && until_ms < since_ms)
        return api_problem(rs, 400, "bad_filter", "until %s is before since %s: nothing can "
                           "match.", f->until, f->since), 0;
    if (!api_ev_text_arg(rs, "account", api_arg(rq, "account"), 128) ||
        !api_ev_text_arg(rs, "owner", api_arg(rq, "owner"), 64) ||
        !api_ev_text_arg(rs, "q", api_arg(rq, "q"), 256) ||
        !api_ev_text_arg(rs, "name", api_arg(rq, "name"), 256) ||
        !api_ev_text_arg(rs, "asset", api_arg(rq, "asset"), 4096) ||
        !api_ev_text_arg(rs, "source", api_arg(rq, "source"), 128) ||
        !api_ev_text_arg(rs, "entity", api_arg(rq, "entity"), 40000) ||
        !api_ev_text_arg(rs, "stage", api_arg(rq, "stage"), 64))
        return 0;
    f->owner = api_arg(rq, "owner");
    if (f->owner != NULL && strcmp(f->owner, "none") == 0) {
        f->owner = NULL;
        f->owner_none = 1;
    } else if (f->owner != NULL && strcmp(f->owner, "me") == 0) {
        f->owner = rq->user->name;
    }
    if ((v = api_arg(rq, "entity")) != NULL) {
        const char *colon = strchr(v, ':');
        char        type[32];

        if (colon == NULL || colon == v || (size_t)(colon - v) >= sizeof(type) ||
            colon[1] == '\0')
            return api_problem(rs, 400, "bad_filter", "entity must be TYPE:VALUE "
                               "(ip:203.0.113.9, file:/tmp/x)."), 0;
        memcpy(type, v, (size_t)(colon - v));
        type[colon - v] = '\0';
        if (cwpp_entity_type_parse(type, &et) != 0)
            return api_problem(rs, 400, "bad_filter", "entity: unknown entity type \"%s\" "
                               "(use %s).", type,
                               cwpp_entity_types_text(names, sizeof(names), ", ", " or ")), 0;
        f->entity_type = cwpp_entity_type_name(et);
        if ((f->entity_value = cwpp_strdup(colon + 1)) == NULL)
            return api_problem(rs, 503, "unavailable", "Out of memory."), 0;
    }
    if ((v = api_arg(rq, "stage")) != NULL && (f->stage = cwpp_alert_tactic_find(v)) == NULL)
        return api_problem(rs, 400, "bad_filter", "stage must be an ATT&CK tactic: its id "
                           "(TA0006) or its name (credential-access)."), 0;
    p[4] = f->status[0] != '\0' ? f->status : NULL;
    p[5] = f->level[0] != '\0' ? f->level : NULL;
    p[6] = f->urgency[0] != '\0' ? f->urgency : NULL;
    p[7] = api_arg(rq, "account");
    p[8] = f->since[0] != '\0' ? f->since : NULL;
    p[9] = f->until[0] != '\0' ? f->until : NULL;
    p[10] = f->owner;
    p[11] = f->owner_none ? "true" : "false";
    p[12] = api_arg(rq, "q");
    p[13] = api_arg(rq, "asset");
    p[14] = f->entity_type;
    p[15] = f->entity_value;
    p[16] = api_arg(rq, "source");
    p[17] = f->stage;
    p[18] = api_arg(rq, "name");
    return 1;
}

static int events_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {
        "since", "until", "status", "level", "urgency", "account", "owner", "q", "asset",
        "entity", "source", "stage", "name", "sort", "limit", "cursor", "retention_days",
        "quiet_hours", NULL};
    list_filters_t  f;
    api_ev_rules_t  rules;
    const char     *p[LIST_NPARAMS + 1 + 3], *sort = api_arg(rq, "sort");
    char            as_of[64], lim[16];
    cwpp_buf_t      sql = {0};
    json_t         *state = NULL, *doc = NULL, *arr;
    PGresult       *r = NULL;
    size_t          s;
    int             limit, i, n, np, rc = 0;

    memset(&f, 0, sizeof(f));
    memset(p, 0, sizeof(p));
    if (!api_args_known(rq, rs, known) || !api_ev_rules(rq, rs, &rules) ||
        !api_limit(rq, rs, API_EV_LIMIT_DEFAULT, API_EV_LIMIT_MAX, &limit) ||
        !list_filters(rq, rs, &f, p))
        goto out;
    for (s = 0; s < NSORTS && sort != NULL && strcmp(SORTS[s].name, sort) != 0; s++)
        ;
    if (sort == NULL) {
        s = 0;
    } else if (s == NSORTS) {
        api_problem(rs, 400, "bad_filter", "sort must be last_seen, level, urgency or alerts.");
        goto out;
    }
    if (!api_cursor_take(rq, rs, &state) ||
        (state != NULL && !api_ev_cursor_keys(rs, state, SORTS[s].nkeys, p + LIST_NPARAMS + 1)) ||
        !api_ev_as_of(rq, rs, state, as_of, sizeof(as_of)))
        goto out;
    p[0] = as_of;
    p[1] = rules.retention;
    p[2] = rules.quiet;
    p[3] = api_scope(rq);

    /* the total: the filters without the page */
    if (cwpp_buf_puts(&sql, "SELECT count(*)") != 0 || cwpp_buf_puts(&sql, LIST_WHERE) != 0 ||
        cwpp_buf_cstr(&sql) != 0)
        goto oom;
    if (api_sql(rq, rs, (const char *)sql.data, LIST_NPARAMS, p, &r) != 0)
        goto out;
    doc = json_pack("{s:I, s:i, s:i}", "total", (json_int_t)strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                    "retention_days", rules.retention_days, "quiet_after_hours",
                    rules.quiet_hours);
    PQclear(r);
    r = NULL;

    /* the page: one row more than asked tells whether another page follows */
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    p[LIST_NPARAMS] = lim;
    cwpp_buf_reset(&sql);
    if (cwpp_buf_puts(&sql, LIST_SELECT) != 0 ||
        api_ev_keyset(&sql, SORTS[s].keys, SORTS[s].nkeys, 0, 2) != 0 ||
        cwpp_buf_puts(&sql, LIST_WHERE) != 0 ||
        (state != NULL && (cwpp_buf_puts(&sql, "AND ") != 0 ||
                           api_ev_keyset(&sql, SORTS[s].keys, SORTS[s].nkeys,
                                         LIST_NPARAMS + 2, 0) != 0)) ||
        cwpp_buf_puts(&sql, " ORDER BY ") != 0 ||
        api_ev_keyset(&sql, SORTS[s].keys, SORTS[s].nkeys, 0, 1) != 0 ||
        cwpp_buf_puts(&sql, " LIMIT $20::int") != 0 || cwpp_buf_cstr(&sql) != 0)
        goto oom;
    np = LIST_NPARAMS + 1 + (state != NULL ? SORTS[s].nkeys : 0);
    if (api_sql(rq, rs, (const char *)sql.data, np, p, &r) != 0)
        goto out;
    arr = json_array();
    json_object_set_new(doc, "events", arr);
    n = PQntuples(r);
    for (i = 0; i < n && i < limit; i++) {
        json_t *o = api_row(r, i);

        if (o == NULL)
            goto oom;
        api_ev_apply_quiet(o, json_is_true(json_object_get(o, "_quiet")));
        api_ev_strip(o);
        json_array_append_new(arr, o);
    }
    if (n > limit)
        api_ev_next_cursor(rq, r, limit - 1, SORTS[s].nkeys, as_of, doc);
    else
        json_object_set_new(doc, "next_cursor", json_null());
    rc = api_json(rs, 200, doc);
    doc = NULL;
    goto out;
oom:
    rc = -1;
out:
    PQclear(r);
    cwpp_buf_free(&sql);
    json_decref(state);
    json_decref(doc);
    free(f.entity_value);
    return rc;
}

/* ---------------------------------------------------------------- one event */

static const char SHOW_SQL[] =
    "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.owner, "
    "array_to_json(e.stages) AS stages, e.asset_count, e.alert_count, e.occurrences, "
    API_EV_TS("e.first_seen") " AS first_seen, " API_EV_TS("e.last_seen") " AS last_seen, "
    "array_to_json(e.sources) AS sources, e.predecessor, " MERGED_INTO ", e.urgency, "
    "e.assessment::text AS _assessment, "
    CWPP_SQL_QUIET("e.last_seen", "now()", "$2") " AS _quiet, "
    "greatest(0, extract(epoch FROM now() - e.last_seen))::bigint AS quiet_for_s, "
    "e.last_seen > now() - make_interval(days => $3::int) AS in_event_list, "
    API_EV_TS("e.updated_at") " AS updated_at, e.version "
    "FROM events e WHERE e.event_id = $1 AND " API_SCOPE("e.account_id", "4");

/* The event's assessment as read now: the stored reasons (with "quiet" added when the
 * event is quiet) and recommendations, and when it was assessed. */
static json_t *assessment_doc(const char *text, json_t *doc, const api_ev_rules_t *rules)
{
    json_error_t jerr;
    json_t      *stored = json_loads(text != NULL ? text : "{}", 0, &jerr);
    json_t      *reasons, *recs, *assessment;
    const json_t *at;

    if (!json_is_object(stored)) {
        json_decref(stored);
        stored = json_object();
    }
    reasons = json_object_get(stored, "reasons");
    reasons = json_is_array(reasons) ? json_deep_copy(reasons) : json_array();
    recs = json_object_get(stored, "recommendations");
    recs = json_is_array(recs) ? json_deep_copy(recs) : json_array();
    if (json_is_true(json_object_get(doc, "quiet"))) {
        char        age[32], reason[512];
        const char *was = json_string_value(json_object_get(doc, "assessed_urgency"));
        const char *now = json_string_value(json_object_get(doc, "urgency"));
        json_int_t  s = json_integer_value(json_object_get(doc, "quiet_for_s"));

        if (s < 60)
            snprintf(age, sizeof(age), "%llds", (long long)s);
        else if (s < 3600)
            snprintf(age, sizeof(age), "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
        else if (s < 86400)
            snprintf(age, sizeof(age), "%lldh %02lldm", (long long)(s / 3600),
                     (long long)(s % 3600 / 60));
        else
            snprintf(age, sizeof(age), "%lldd %lldh", (long long)(s / 86400),
                     (long long)(s % 86400 / 3600));
        if (strcmp(was, now) != 0)
            snprintf(reason, sizeof(reason), "no new related alerts for %s (over %d hours): "
                     "lower priority, shown as %s instead of the assessed %s", age,
                     rules->quiet_hours, now, was);
        else
            snprintf(reason, sizeof(reason), "no new related alerts for %s (over %d hours): "
                     "lower priority (already %s)", age, rules->quiet_hours, now);
        json_array_append_new(reasons, json_pack("{s:s, s:s, s:b}", "code", "quiet", "text",
                                                 reason, "at_read", 1));
    }
    assessment = json_pack("{s:o, s:o}", "reasons", reasons, "recommendations", recs);
    at = json_object_get(stored, "assessed_at");
    if (json_is_integer(at)) {
        char t[40];

        json_object_set_new(assessment, "assessed_at",
                            json_string(cwpp_format_time_ms(json_integer_value(at), t,
                                                            sizeof(t))));
    } else {
        json_object_set_new(assessment, "assessed_at", json_null());
    }
    json_decref(stored);
    return assessment;
}

static int events_show(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"retention_days", "quiet_hours", NULL};
    const char     *id = rq->ids[0], *p[4];
    api_ev_rules_t  rules;
    PGresult       *r;
    json_t         *doc, *assessment;
    char           *stored;

    if (!api_args_known(rq, rs, known) || !api_ev_rules(rq, rs, &rules))
        return 0;
    if (!api_ev_id_ok(id))
        return api_ev_not_found(rs, NULL);
    p[0] = id;
    p[1] = rules.quiet;
    p[2] = rules.retention;
    p[3] = api_scope(rq);
    if (api_sql(rq, rs, SHOW_SQL, 4, p, &r) != 0)
        return 0;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return api_ev_not_found(rs, id);
    }
    doc = api_row(r, 0);
    stored = cwpp_strdup(PQgetvalue(r, 0, PQfnumber(r, "_assessment")));
    PQclear(r);
    if (doc == NULL || stored == NULL) {
        json_decref(doc);
        free(stored);
        return -1;
    }
    api_ev_apply_quiet(doc, json_is_true(json_object_get(doc, "_quiet")));
    api_ev_strip(doc);
    assessment = assessment_doc(stored, doc, &rules);
    free(stored);
    json_object_set_new(doc, "assessment", assessment);
    json_object_set_new(doc, "quiet_after_hours", json_integer(rules.quiet_hours));
    json_object_set_new(doc, "retention_days", json_integer(rules.retention_days));
    {
        /* the version a change's If-Match names (docs/api/parts/respond.yaml) */
        char etag[32];

        snprintf(etag, sizeof(etag), "\"%lld\"",
                 (long long)json_integer_value(json_object_get(doc, "version")));
        api_header(rs, "ETag", etag);
    }
    return api_json(rs, 200, doc);
}

const api_route_t api_events_routes[] = {
    {"GET", "/api/v1/events", events_list, 0},
    {"GET", "/api/v1/events/{id}", events_show, 0},
    {"GET", "/api/v1/events/{id}/alerts", api_ev_alerts, 0},
    {"GET", "/api/v1/events/{id}/entities", api_ev_entities, 0},
    {"GET", "/api/v1/events/{id}/chain", api_ev_chain, 0},
    {"GET", "/api/v1/entities/{type}", api_ev_entity, 0},
    {NULL, NULL, NULL, 0},
};
