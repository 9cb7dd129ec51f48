/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_events.h: shared by the two files of the security-event read resources of
 * cwpp-api (events.c has the essay):
 *   events.c        the route table, GET /api/v1/events (filters, sorts, keyset paging)
 *                   and GET /api/v1/events/{id}, with the helpers below;
 *   events_views.c  an event's alerts, entities and chain, and the entity view
 *                   GET /api/v1/entities/{type}?value=...
 * Internal to services/api: nothing outside these two files includes it.
 */
#ifndef CWPP_API_EVENTS_H
#define CWPP_API_EVENTS_H

#include "api.h"

/* Defaults of the two read-time rules (events.c, "Two rules depend on the time of
 * reading"); a request may set them with retention_days / quiet_hours. */
#define API_EV_RETENTION_DAYS 180
#define API_EV_QUIET_HOURS    24
#define API_EV_LIMIT_DEFAULT  100
#define API_EV_LIMIT_MAX      500

/* A timestamptz column as RFC 3339 UTC in SQL text (second precision): the shape every
 * cwppctl document has always had. */
#define API_EV_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The read-time rules of one request, with the two numbers as query parameters too. */
typedef struct api_ev_rules {
    int  retention_days;
    int  quiet_hours;
    char retention[16];
    char quiet[16];
} api_ev_rules_t;

/* One key of a keyset order: a SQL expression of ours (never user text), the type its
 * cursor value is cast back to, and its direction. */
typedef struct api_ev_key {
    const char *expr;
    const char *type;
    int         desc;
} api_ev_key_t;

/* Reads retention_days (1..36500) and quiet_hours (1..87600) into r (defaults above).
 * Returns 1, or 0 after a 400 "bad_filter" naming the argument. */
int api_ev_rules(const api_req_t *rq, api_resp_t *rs, api_ev_rules_t *r);

/* Reads the whole-number query argument name within [lo, hi] (def when absent). Returns
 * 1, or 0 after a 400 "bad_filter" naming it. */
int api_ev_int_arg(const api_req_t *rq, api_resp_t *rs, const char *name, int def, int lo,
                   int hi, int *out);

/* 1 when the text argument v (NULL: absent) is valid UTF-8 of at most max bytes; else 0
 * after a 400 "bad_filter" naming it. */
int api_ev_text_arg(api_resp_t *rs, const char *name, const char *v, size_t max);

/* 1 when an event id from the path can name an event at all (1..128 bytes of UTF-8,
 * no '/', no control character), else 0. */
int api_ev_id_ok(const char *id);

/* The 404 for an event the caller does not see (missing, or another tenant's: the same
 * sentence, which says "no event ID" as cwppctl always has). id NULL: not an id at all.
 * Returns 0. */
int api_ev_not_found(api_resp_t *rs, const char *id);

/* 1 when the event id exists in one of the caller's accounts; else 0 with rs set (404
 * "not_found", the same for another tenant's event, or the database's problem). */
int api_ev_visible(api_req_t *rq, api_resp_t *rs, const char *id);

/*
 * The reading time of a paged query: the cursor's first member when state (a taken
 * cursor) is given, else the database's now(). Written into out (timestamptz text).
 * Returns 1, or 0 with rs set (a bad cursor, or the database's problem).
 */
int api_ev_as_of(api_req_t *rq, api_resp_t *rs, const json_t *state, char *out, size_t size);

/*
 * Keyset paging over keys[0..n): appends to b the ORDER BY list (order != 0) or the
 * condition "after the row whose keys are $first..$first+n-1" (order == 0), or the select
 * list "(k0)::text AS _k0, ..." (order == 2). Returns 0 or CWPP_ENOMEM.
 */
int api_ev_keyset(cwpp_buf_t *b, const api_ev_key_t *keys, int n, int first, int order);

/*
 * Checks a taken cursor state: an array of 1 + nkeys strings (the reading time, then the
 * keys), each at most 4096 bytes; the key strings go into p[0..nkeys). Returns 1, or 0
 * after a 400 "bad_cursor".
 */
int api_ev_cursor_keys(api_resp_t *rs, const json_t *state, int nkeys, const char **p);

/* The cursor that continues after row i of r (its "_k0".. columns and as_of), stored as
 * "next_cursor" in doc (a string, or null on allocation failure). */
void api_ev_next_cursor(const api_req_t *rq, const PGresult *r, int i, int nkeys,
                        const char *as_of, json_t *doc);

/*
 * Applies the quiet rule to an event object o with its stored "urgency": sets "urgency"
 * to the urgency shown (one step lower when quiet), "assessed_urgency" to the stored one
 * and "quiet". Also adds "tactics" [{id, name}] from "stages" when it has them.
 */
void api_ev_apply_quiet(json_t *o, int quiet);

/* Removes the members whose names start with '_' (helper columns) from o. */
void api_ev_strip(json_t *o);

/* events_views.c's handlers. */
int api_ev_alerts(api_req_t *rq, api_resp_t *rs);
int api_ev_entities(api_req_t *rq, api_resp_t *rs);
int api_ev_chain(api_req_t *rq, api_resp_t *rs);
int api_ev_entity(api_req_t *rq, api_resp_t *rs);

#endif /* CWPP_API_EVENTS_H */
