/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_render.c: the text output of the read-only event views, drawn from the JSON
 * documents of events_query.c (so text and --json never disagree). Every table goes
 * through one printer (ev_table_head / ev_table_row) that takes its columns (title,
 * width, alignment, what comes before) and the cells of a row. Alert names and entity
 * values come from upstream producers and are hostile input: cells show control
 * characters and bidi controls as escapes, so a terminal is never driven by them.
 */
#include "events.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------------- cells */

void ev_cell(const char *s, int width)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-");
    char                 out[4096] = ""; /* set: gcc cannot see that n == 0 reads none */
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
        else if (*p == 0xe2 && ((p[1] == 0x80 && ((p[2] >= 0xaa && p[2] <= 0xae) ||
                                                  p[2] == 0x8e || p[2] == 0x8f)) ||
                                (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
            /* bidi controls (U+200E-200F, U+202A-202E, U+2066-2069) would reorder the
             * line a terminal shows: visible escapes too */
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\\u%04x",
                                  0x2000u + ((unsigned)(p[1] & 0x3f) << 6) + (p[2] & 0x3f));
            p += 2;
        } else
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

const char *ev_human_secs(int64_t s, char *buf, size_t size)
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


/* ------------------------------------------------------------ the printer */

/* One line of t: the titles (head) or a row's cells. Titles are ours: printed as they
 * are; a row's left-aligned cells go through ev_cell (escaped, cut, padded); right-aligned
 * ones are numbers we formatted: padded on the left, never cut. */
static void table_line(const ev_table_t *t, const char *const *cells, int head)
{
    int k;

    if (t->indent != NULL)
        fputs(t->indent, stdout);
    for (k = 0; k < t->ncols; k++) {
        const ev_col_t *c = &t->cols[k];
        const char     *s = cells[k] != NULL ? cells[k] : "-";

        fputs(c->before != NULL ? c->before : k > 0 ? "  " : "", stdout);
        if (c->right)
            printf("%*s", c->width, s);
        else if (head)
            printf("%-*s", c->width, s);
        else
            ev_cell(cells[k], c->width);
    }
    putchar('\n');
}

void ev_table_head(const ev_table_t *t)
{
    const char *titles[16];
    int         k;

    assert(t->ncols <= 16);
    for (k = 0; k < t->ncols; k++)
        titles[k] = t->cols[k].title;
    table_line(t, titles, 1);
}

void ev_table_row(const ev_table_t *t, const char *const *cells)
{
    table_line(t, cells, 0);
}

/* An integer member as a cell (into buf). */
static const char *num(const json_t *o, const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%" JSON_INTEGER_FORMAT, ev_jint(o, key));
    return buf;
}

/* ------------------------------------------------------------- events list */

static const ev_col_t LIST_TABLE_COLS[] = {
    {"EVENT", 35, 0, NULL},  {"LEVEL", 8, 0, NULL},     {"STATUS", 9, 0, NULL},
    {"URGENCY", 8, 0, NULL}, {"ALERTS", 6, 1, NULL},    {"ASSETS", 6, 1, NULL},
    {"STAGES", 20, 0, NULL}, {"LAST SEEN", 20, 0, NULL}, {"NAME", 0, 0, NULL},
};
static const ev_table_t LIST_TABLE = {LIST_TABLE_COLS, NCOLS(LIST_TABLE_COLS), NULL};

void ev_render_list(const json_t *arr, const settings_t *st)
{
    size_t k;
    int    lowered = 0;
    char   stages[256], n[32], alerts[32], assets[32];

    ev_table_head(&LIST_TABLE);
    for (k = 0; k < json_array_size(arr); k++) {
        json_t *o = json_array_get(arr, k);
        int     q = json_is_true(json_object_get(o, "quiet")) &&
                strcmp(ev_jstr(o, "urgency"), ev_jstr(o, "assessed_urgency")) != 0;

        snprintf(n, sizeof(n), "%s%s", ev_jstr(o, "urgency"), q ? "*" : "");
        {
            const char *cells[] = {
                ev_jstr(o, "event_id"), ev_jstr(o, "level"), ev_jstr(o, "status"), n,
                num(o, "alert_count", alerts, sizeof(alerts)),
                num(o, "asset_count", assets, sizeof(assets)),
                joined(json_object_get(o, "stages"), ",", stages, sizeof(stages)),
                ev_jstr(o, "last_seen"), ev_jstr(o, "name"),
            };

            ev_table_row(&LIST_TABLE, cells);
        }
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

/* ------------------------------------------------------------- events show */

static const ev_col_t FIELD_COLS[] = {{"FIELD", 13, 0, NULL}, {"VALUE", 0, 0, " "}};
static const ev_table_t FIELD_TABLE = {FIELD_COLS, NCOLS(FIELD_COLS), NULL};

static const ev_col_t REASON_COLS[] = {{"CODE", 21, 0, NULL}, {"TEXT", 0, 0, " "}};
static const ev_table_t REASON_TABLE = {REASON_COLS, NCOLS(REASON_COLS), "  "};

static const ev_col_t REC_COLS[] = {
    {"ACTION", 0, 0, NULL}, {"TYPE", 0, 0, " "}, {"VALUE", 0, 0, " "}, {"REASON", 0, 0, ": "},
};
static const ev_table_t REC_TABLE = {REC_COLS, NCOLS(REC_COLS), "  "};

/* One "Label         value" line of the event's overview. */
static void field(const char *label, const char *value)
{
    const char *cells[] = {label, value};

    ev_table_row(&FIELD_TABLE, cells);
}

void ev_render_show(const json_t *doc, const settings_t *st)
{
    static const struct { const char *label, *key; } rows[] = {
        {"Event", "event_id"}, {"Name", "name"},     {"Account", "account_id"},
        {"Level", "level"},    {"Status", "status"}, {"Owner", "owner"},
    };
    const json_t *assessment = json_object_get(doc, "assessment");
    const json_t *reasons = json_object_get(assessment, "reasons");
    const json_t *recs = json_object_get(assessment, "recommendations");
    char          buf[1024], age[32];
    size_t        k;

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++)
        field(rows[k].label,
              ev_jstr(doc, rows[k].key) != NULL ? ev_jstr(doc, rows[k].key) : "(none)");
    field("Stages", joined(json_object_get(doc, "stages"), " > ", buf, sizeof(buf)));
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT " affected", ev_jint(doc, "asset_count"));
    field("Assets", buf);
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
             " occurrences)", ev_jint(doc, "alert_count"), ev_jint(doc, "occurrences"));
    field("Alerts", buf);
    field("First seen", ev_jstr(doc, "first_seen"));
    snprintf(buf, sizeof(buf), "%s (%s ago)", ev_jstr(doc, "last_seen"),
             ev_human_secs(ev_jint(doc, "quiet_for_s"), age, sizeof(age)));
    field("Last seen", buf);
    field("Sources", joined(json_object_get(doc, "sources"), ", ", buf, sizeof(buf)));
    field("Predecessor", ev_jstr(doc, "predecessor") != NULL ? ev_jstr(doc, "predecessor")
                                                             : "(none)");
    if (ev_jstr(doc, "merged_into") != NULL) /* status merged (event.merge) */
        field("Merged into", ev_jstr(doc, "merged_into"));
    if (!json_is_true(json_object_get(doc, "in_event_list")))
        printf("(older than %d days: no longer in the event list)\n", st->retention_days);
    printf("\nUrgency: %s", ev_jstr(doc, "urgency"));
    if (strcmp(ev_jstr(doc, "urgency"), ev_jstr(doc, "assessed_urgency")) != 0)
        printf(" (assessed %s; lowered one step: quiet for over %d hours)",
               ev_jstr(doc, "assessed_urgency"), st->quiet_hours);
    printf("\nReasons%s%s%s:\n", ev_jstr(assessment, "assessed_at") ? " (assessed at " : "",
           ev_jstr(assessment, "assessed_at") ? ev_jstr(assessment, "assessed_at") : "",
           ev_jstr(assessment, "assessed_at") ? ")" : "");
    for (k = 0; k < json_array_size(reasons); k++) {
        json_t     *x = json_array_get(reasons, k);
        const char *cells[] = {ev_jstr(x, "code"), ev_jstr(x, "text")};

        ev_table_row(&REASON_TABLE, cells);
    }
    if (json_array_size(reasons) == 0)
        printf("  (none)\n");
    printf("Recommendations:\n");
    for (k = 0; k < json_array_size(recs); k++) {
        json_t     *x = json_array_get(recs, k);
        const char *cells[] = {ev_jstr(x, "action"), ev_jstr(x, "entity_type"),
                               ev_jstr(x, "entity_value"), ev_jstr(x, "reason")};

        ev_table_row(&REC_TABLE, cells);
    }
    if (json_array_size(recs) == 0)
        printf("  (none)\n");
}

/* ------------------------------------------------------------ events alerts */

static const ev_col_t ALERT_TABLE_COLS[] = {
    {"FIRST SEEN", 20, 0, NULL}, {"LAST SEEN", 20, 0, NULL}, {"ALERT", 25, 0, NULL},
    {"TYPE", 17, 0, NULL},       {"STATUS", 9, 0, NULL},     {"DEFENCE", 10, 0, NULL},
    {"COUNT", 5, 1, NULL},       {"ASSET", 0, 0, NULL},
};
static const ev_table_t ALERT_TABLE = {ALERT_TABLE_COLS, NCOLS(ALERT_TABLE_COLS), NULL};
/* under each alert: its id and why it joined the event */
static const ev_col_t ALERT_WHY_COLS[] = {{"ALERT ID", 0, 0, NULL},
                                          {"REASON", 0, 0, "  joined: "}};
static const ev_table_t ALERT_WHY = {ALERT_WHY_COLS, NCOLS(ALERT_WHY_COLS), "    "};

void ev_render_alerts(const json_t *arr)
{
    size_t k;
    char   count[32];

    ev_table_head(&ALERT_TABLE);
    for (k = 0; k < json_array_size(arr); k++) {
        json_t     *o = json_array_get(arr, k);
        const char *cells[] = {
            ev_jstr(o, "first_seen"), ev_jstr(o, "last_seen"), ev_jstr(o, "name"),
            ev_jstr(o, "type"),       ev_jstr(o, "status"),    ev_jstr(o, "defense"),
            num(o, "occurrences", count, sizeof(count)),        ev_jstr(o, "asset_id"),
        };
        const char *why[] = {ev_jstr(o, "alert_id"), ev_jstr(o, "reason")};

        ev_table_row(&ALERT_TABLE, cells);
        ev_table_row(&ALERT_WHY, why);
    }
    if (json_array_size(arr) == 0)
        printf("(the event has no alerts)\n");
}

/* ---------------------------------------------------------- events entities */

#define STATS_30D_COLS                                                                      \
    {"ALERTS", 6, 1, NULL}, {"EVENTS 30D", 10, 1, NULL}, {"ALERTS 30D", 10, 1, NULL},       \
        {"TASKS 30D", 9, 1, NULL}

static const ev_col_t HOST_COLS[] = {
    {"ASSET", 24, 0, NULL}, {"NAME", 20, 0, NULL}, {"IP", 16, 0, NULL}, {"ROLE", 12, 0, NULL},
    STATS_30D_COLS,
};
static const ev_table_t HOST_TABLE = {HOST_COLS, NCOLS(HOST_COLS), NULL};
static const ev_col_t ENTITY_TABLE_COLS[] = {
    {"TYPE", 12, 0, NULL}, {"VALUE", 40, 0, NULL}, {"ASSETS", 20, 0, NULL}, STATS_30D_COLS,
};
static const ev_table_t ENTITY_TABLE = {ENTITY_TABLE_COLS, NCOLS(ENTITY_TABLE_COLS), NULL};

void ev_render_entities(const json_t *arr, int affected)
{
    const ev_table_t *t = affected ? &HOST_TABLE : &ENTITY_TABLE;
    size_t            k;
    char              buf[512], n[4][32];

    ev_table_head(t);
    for (k = 0; k < json_array_size(arr); k++) {
        json_t     *o = json_array_get(arr, k), *s = json_object_get(o, "stats_30d");
        json_t     *a = json_object_get(o, "asset");
        const char *cells[8];

        if (affected) {
            cells[0] = ev_jstr(o, "value");
            cells[1] = ev_jstr(a, "name");
            cells[2] = ev_jstr(a, "ip");
            cells[3] = ev_jstr(a, "role");
        } else {
            cells[0] = ev_jstr(o, "entity_type");
            cells[1] = ev_jstr(o, "value");
            cells[2] = joined(json_object_get(o, "assets"), ",", buf, sizeof(buf));
            cells[3] = NULL; /* three columns before the figures */
        }
        {
            const char *figures[] = {num(o, "event_alerts", n[0], sizeof(n[0])),
                                     num(s, "events", n[1], sizeof(n[1])),
                                     num(s, "alerts", n[2], sizeof(n[2])),
                                     num(s, "tasks", n[3], sizeof(n[3]))};
            int         first = affected ? 4 : 3;

            memcpy(cells + first, figures, sizeof(figures));
        }
        ev_table_row(t, cells);
    }
    if (json_array_size(arr) == 0)
        printf("(no %s)\n", affected ? "affected assets" : "entities");
    printf("ALERTS: this event's alerts that show it; 30D: the account's events, alerts "
           "and handling tasks with it over the last 30 days.\n");
}

/* ---------------------------------------------------------- entities show */

static const ev_col_t ENT_STATS_TABLE_COLS[] = {
    {"ACCOUNT", 24, 0, NULL}, {"EVENTS", 6, 1, NULL}, {"ALERTS", 6, 1, NULL},
    {"TASKS", 5, 1, NULL},    {"ASSETS", 6, 1, NULL}, {"LAST SEEN", 0, 0, NULL},
};
static const ev_table_t ENT_STATS_TABLE = {ENT_STATS_TABLE_COLS, NCOLS(ENT_STATS_TABLE_COLS),
                                           "  "};
static const ev_col_t ENT_EVENTS_TABLE_COLS[] = {
    {"EVENT", 35, 0, NULL},  {"LEVEL", 8, 0, NULL},      {"STATUS", 9, 0, NULL},
    {"URGENCY", 7, 0, NULL}, {"LAST SEEN", 20, 0, NULL}, {"NAME", 0, 0, NULL},
};
static const ev_table_t ENT_EVENTS_TABLE = {ENT_EVENTS_TABLE_COLS,
                                            NCOLS(ENT_EVENTS_TABLE_COLS), "  "};

void ev_render_entity(const char *type, const char *value, const json_t *stats,
                      const json_t *events, const settings_t *st)
{
    size_t k;
    char   n[4][32];

    printf("%s ", type);
    ev_cell(value, 0);
    printf("\n\nLast 30 days:\n");
    ev_table_head(&ENT_STATS_TABLE);
    for (k = 0; k < json_array_size(stats); k++) {
        json_t     *o = json_array_get(stats, k);
        const char *cells[] = {
            ev_jstr(o, "account_id"),           num(o, "events", n[0], sizeof(n[0])),
            num(o, "alerts", n[1], sizeof(n[1])), num(o, "tasks", n[2], sizeof(n[2])),
            num(o, "assets", n[3], sizeof(n[3])), ev_jstr(o, "last_seen"),
        };

        ev_table_row(&ENT_STATS_TABLE, cells);
    }
    if (json_array_size(stats) == 0)
        printf("  (not seen in the last 30 days)\n");
    printf("\nEvents (last %d days, newest first):\n", st->retention_days);
    for (k = 0; k < json_array_size(events); k++) {
        json_t     *o = json_array_get(events, k);
        const char *cells[] = {ev_jstr(o, "event_id"), ev_jstr(o, "level"),
                               ev_jstr(o, "status"),   ev_jstr(o, "urgency"),
                               ev_jstr(o, "last_seen"), ev_jstr(o, "name")};

        ev_table_row(&ENT_EVENTS_TABLE, cells);
    }
    if (json_array_size(events) == 0)
        printf("  (none)\n");
}
