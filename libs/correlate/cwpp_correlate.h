/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_correlate: which security event an accepted alert joins (groundwork for the
 * correlator, issue 4; DESIGN.md "Security events").
 *
 * An alert joins an open event (unhandled, handling, failed) of its own account when it
 * shares a correlation key with it and its occurrence time is within the window after
 * the event's latest alert. Keys: the same file hash, the same process on the same asset,
 * the same attacker IP (remote or logon IP), the same asset. Otherwise it opens a new
 * event; when the latest event sharing a key is handled (it takes no more alerts), the
 * new event names it as its predecessor. A recurrence of an alert already in an event
 * (same alert_id) stays in that event.
 *
 * Decisions depend only on the alerts of one account in their order and their occurrence
 * times (never the wall clock), and event ids are derived from the alert that opens the
 * event, so replaying an account's alerts into an empty index gives the same events.
 *
 * The index is memory only: the correlator fills it from PostgreSQL at start and after
 * rebalances, and keeps it in step with what it writes. One index serves one thread.
 */
#ifndef CWPP_CORRELATE_H
#define CWPP_CORRELATE_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_alert.h"

typedef enum {
    CWPP_CK_HASH = 0, /* file MD5 or SHA-256 */
    CWPP_CK_PROCESS,  /* process path on one asset */
    CWPP_CK_IP,       /* remote IP or logon IP */
    CWPP_CK_ASSET,    /* asset id */
} cwpp_corr_kind_t;

#define CWPP_CORR_MAX_KEYS 6
#define CWPP_EVENT_ID_LEN  35 /* "ev-" + 32 hex digits */

typedef struct cwpp_corr_key {
    cwpp_corr_kind_t kind;
    const char      *value;   /* points into the alert */
    const char      *asset;   /* CWPP_CK_PROCESS: the asset it runs on */
} cwpp_corr_key_t;

/* The alert's keys, strongest first (hash, process, IP, asset), without duplicates.
 * Returns how many were written (at most CWPP_CORR_MAX_KEYS). */
size_t cwpp_corr_keys(const cwpp_alert_t *a, cwpp_corr_key_t *out);

typedef enum {
    CWPP_EV_OPEN = 0,   /* unhandled, handling or failed: takes alerts */
    CWPP_EV_HANDLED,    /* takes no more alerts */
} cwpp_event_state_t;

typedef struct cwpp_corr_decision {
    int  join;                                 /* 1: joins event_id; 0: opens event_id */
    int  recurrence;                           /* the alert is already in event_id */
    char event_id[CWPP_EVENT_ID_LEN + 1];
    char predecessor[CWPP_EVENT_ID_LEN + 1];   /* "" or the handled event it follows */
    char reason[512];                          /* one sentence for analysts */
} cwpp_corr_decision_t;

typedef struct cwpp_corr_index cwpp_corr_index_t;

/* window_ms: how long after an event's latest alert a related alert still joins it. */
cwpp_corr_index_t *cwpp_corr_index_new(int64_t window_ms);
void               cwpp_corr_index_destroy(cwpp_corr_index_t *ix);

/* The event id an alert opening an event gets: "ev-" + 32 hex of SHA-256 over account,
 * alert id and occurrence time. */
void cwpp_corr_event_id(const cwpp_alert_t *a, char out[CWPP_EVENT_ID_LEN + 1]);

/* Decides for alert a (read-only: call cwpp_corr_index_apply to record it). Returns 0 or
 * CWPP_EINVAL for an alert without account or id. */
int cwpp_corr_decide(const cwpp_corr_index_t *ix, const cwpp_alert_t *a,
                     cwpp_corr_decision_t *d);

/* Records a decided alert: the event's latest time, its keys and the alert. Returns 0 or
 * CWPP_ENOMEM. */
int cwpp_corr_index_apply(cwpp_corr_index_t *ix, const cwpp_alert_t *a,
                          const cwpp_corr_decision_t *d);

/* An event's state changed (responder: handled, or back to unhandled). Returns 0, or
 * CWPP_ENOTFOUND for an event the index does not hold. */
int cwpp_corr_index_set_state(cwpp_corr_index_t *ix, const char *event_id,
                              cwpp_event_state_t st);

/* Forgets the keys of events whose window closed before before_ms (latest alert + window):
 * no alert from then on can join them by key. Alert ids are kept for recurrences. Returns
 * how many keys were dropped. */
size_t cwpp_corr_index_expire(cwpp_corr_index_t *ix, int64_t before_ms);

/* Events and keys held (for metrics and tests). */
size_t cwpp_corr_index_events(const cwpp_corr_index_t *ix);
size_t cwpp_corr_index_keys(const cwpp_corr_index_t *ix);

#endif /* CWPP_CORRELATE_H */
