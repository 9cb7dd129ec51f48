/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.h: shared by the files of the read-only event views (events.c has the essay):
 *   events.c         the verbs: arguments, read-time settings, dispatch;
 *   events_query.c   the queries, each giving one JSON document (what --json prints);
 *   events_render.c  the text output, drawn from those documents with one table printer;
 *   events_chain.c   the event chain: its document, its text, DOT and SVG (Graphviz).
 */
#ifndef CWPPCTL_EVENTS_H
#define CWPPCTL_EVENTS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "cwpp_util.h"

/* The read-time settings (events.c, "Two rules depend on the time of reading"). */
typedef struct settings {
    int  retention_days; /* CWPP_EVENT_RETENTION_DAYS */
    int  quiet_hours;    /* CWPP_CTL_QUIET_HOURS */
    char retention[16];  /* the same two as query parameters */
    char quiet[16];
} settings_t;

/* ---------------------------------------------------------------- events.c */

/* Index of s in the NULL-terminated list, or -1. */
int ev_find(const char *const *list, const char *s);

/* ---------------------------------------------------------- events_query.c */

/* How a column becomes a JSON member: a string, an integer, a boolean, JSON text; SQL
 * NULL is null whatever the kind. */
typedef enum { COL_STR, COL_INT, COL_BOOL, COL_JSON } col_kind_t;

typedef struct col {
    const char *key;  /* member name; NULL: not copied (used by the caller) */
    col_kind_t  kind;
} col_t;

/* The cell (row, col) of r as JSON of the kind. */
json_t *ev_cell_json(const PGresult *r, int row, int col, col_kind_t kind);
/* Row `row` of r as an object of the columns in cols (ncols of them, from column 0). */
json_t *ev_row_object(const PGresult *r, int row, const col_t *cols, int ncols);
#define EV_NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A string / integer member of o (NULL / 0 when absent). */
const char *ev_jstr(const json_t *o, const char *key);
json_int_t  ev_jint(const json_t *o, const char *key);

/* The filters of `events list` (NULL: not filtered); limit is a checked number. */
typedef struct ev_list_query {
    const char *status, *level, *account, *since, *until, *limit;
} ev_list_query_t;

/* Each query returns CTL_OK with the document in *out (the caller's), or the exit code
 * after printing why (CTL_REFUSED: no such event; CTL_INFRA: the database). */
int ev_query_list(PGconn *pg, const settings_t *st, const ev_list_query_t *q, json_t **out);
/* `events show`: the event with its assessment as read now (quiet applied). */
int ev_query_show(PGconn *pg, const settings_t *st, const char *id, json_t **out);
/* The event exists: CTL_OK, else CTL_REFUSED / CTL_INFRA after a sentence. */
int ev_query_exists(PGconn *pg, const char *id);
/* The event's alerts in the order of their first occurrence, each with "first_seen_ms". */
int ev_query_alerts(PGconn *pg, const char *id, json_t **out);
/* The event's entities (affected: hosts only) with their 30-day figures. */
int ev_query_entities(PGconn *pg, const char *id, int affected, json_t **out);
/* An entity's 30-day figures per account and its events (newest first). CTL_REFUSED
 * after a sentence when neither has any row. */
int ev_query_entity(PGconn *pg, const settings_t *st, const char *type, const char *value,
                    const char *account, const char *limit, json_t **stats, json_t **events);

/* --------------------------------------------------------- events_render.c */

/*
 * Prints s as one table cell: control characters (C0, DEL, C1) as visible escapes (\n,
 * \t, \x1b, \u009b), at most width characters (longer: cut, ending in "..."), padded to
 * width. width 0: the whole text, no padding. NULL prints "-".
 */
void        ev_cell(const char *s, int width);
/* "45s", "3m 12s", "2h 05m", "3d 4h": a duration in seconds, for people, into buf. */
const char *ev_human_secs(int64_t s, char *buf, size_t size);

/* One column of a text table. */
typedef struct ev_col {
    const char *title;  /* its header */
    int         width;  /* characters; 0: the whole text, unpadded */
    int         right;  /* right-aligned and never cut (numbers) */
    const char *before; /* printed before it; NULL: two spaces (the first column: none) */
} ev_col_t;

/* A text table: its columns and what starts each line. */
typedef struct ev_table {
    const ev_col_t *cols;
    int             ncols;
    const char     *indent; /* NULL: none */
} ev_table_t;

/* The one table printer: the header line (the titles) / one row (ncols cells, printed
 * with ev_cell's escapes; NULL cells print "-"). Each ends the line. */
void ev_table_head(const ev_table_t *t);
void ev_table_row(const ev_table_t *t, const char *const *cells);

void ev_render_list(const json_t *events, const settings_t *st);
void ev_render_show(const json_t *doc, const settings_t *st);
void ev_render_alerts(const json_t *alerts);
void ev_render_entities(const json_t *entities, int affected);
void ev_render_entity(const char *type, const char *value, const json_t *stats,
                      const json_t *events, const settings_t *st);

/* ---------------------------------------------------------- events_chain.c */

/* `events chain ID [--format text|json|dot|svg]`. */
int ev_chain(ctl_t *c, const char *id, const char *format);

#endif /* CWPPCTL_EVENTS_H */
