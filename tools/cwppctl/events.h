/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events.h: shared by the files of the read-only event views (events.c has the essay):
 *   events.c         the verbs: arguments, read-time settings, dispatch;
 *   events_query.c   the fetches from cwpp-api, each giving one JSON document (what
 *                    --json prints);
 *   events_render.c  the text output, drawn from those documents with one table printer;
 *   events_chain.c   the event chain: its document, its text, DOT and SVG (Graphviz).
 */
#ifndef CWPPCTL_EVENTS_H
#define CWPPCTL_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "cwpp_util.h"

/* The read-time settings (events.c, "Two rules depend on the time of reading"): checked
 * here, applied by the API (which has the same defaults); sent only when set. */
typedef struct settings {
    int  retention_days; /* CWPP_EVENT_RETENTION_DAYS */
    int  quiet_hours;    /* CWPP_CTL_QUIET_HOURS */
    int  retention_set;  /* the variable is set: sent as retention_days */
    int  quiet_set;      /* the variable is set: sent as quiet_hours */
} settings_t;

/* ---------------------------------------------------------------- events.c */

/* Index of s in the NULL-terminated list, or -1. */
int ev_find(const char *const *list, const char *s);

/* ---------------------------------------------------------- events_query.c */

#define EV_NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* A string / integer member of o (NULL / 0 when absent). */
const char *ev_jstr(const json_t *o, const char *key);
json_int_t  ev_jint(const json_t *o, const char *key);

/* Appends s to the path in b as one path segment, percent-encoded (every byte but
 * the unreserved ones). Returns 0, or non-zero when out of memory. */
int ev_path_segment(cwpp_buf_t *b, const char *s);

/* Appends the read-time settings that are set (retention_days, quiet_hours) to the path
 * in b as query arguments. */
void ev_rules_query(cwpp_buf_t *b, const settings_t *st);

/* The settings the API applied (its answer's retention_days and quiet_after_hours) into
 * st, for the text output. */
void ev_rules_from(const json_t *doc, settings_t *st);

/* GETs path (query included): the document in *out. CTL_OK or ctl_api's exit code;
 * CTL_USAGE (printed) for a path too long for the transport. */
int ev_get(ctl_t *c, const char *path, json_t **out);

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
