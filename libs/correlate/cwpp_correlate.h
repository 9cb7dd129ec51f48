/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_correlate: which security event an accepted alert joins, for the correlator
 * (docs/architecture.md "Security events"; docs/correlator.md).
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
#define CWPP_CORR_KEY_MAX  256 /* a key string with its NUL */

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

/*
 * An event's status (events.status; schemas/event.avsc EventStatus). Defined once, in
 * the table of correlate.c, because this lib owns what a status means for correlation
 * (which statuses still take alerts); the responder sets them, cwppctl and the exporter
 * filter on them. tests/unit/correlate checks the schema files agree.
 */
typedef enum {
    CWPP_EVS_UNHANDLED = 0, CWPP_EVS_HANDLING, CWPP_EVS_HANDLED, CWPP_EVS_FAILED,
    CWPP_EVS_MERGED, /* merged into another event (events.merged_into): takes no alerts */
    CWPP_EVS__COUNT /* not a status: the number of them */
} cwpp_event_status_t;

typedef struct cwpp_event_status_def {
    cwpp_event_status_t status;
    const char         *name;    /* as stored and in the Avro enum */
    const char         *display; /* "Handling" */
    cwpp_event_state_t  state;   /* open (takes alerts) or handled */
} cwpp_event_status_def_t;

/* The row of a member (asserts on anything else). */
const cwpp_event_status_def_t *cwpp_event_status_def(cwpp_event_status_t s);
const char *cwpp_event_status_name(cwpp_event_status_t s);
/* name to member: 0, or -1 for an unknown name (and NULL). */
int cwpp_event_status_parse(const char *s, cwpp_event_status_t *out);
/* The correlation state of a stored status text; an unknown text counts as open (the
 * event still takes alerts, as before a status is set). */
cwpp_event_state_t cwpp_event_status_state(const char *s);
/* The names as one text ("unhandled, handling, handled or failed"); returns buf. */
const char *cwpp_event_statuses_text(char *buf, size_t size, const char *sep,
                                     const char *last);

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

/* The event id an alert opening an event gets: "ev-" + 12 hex of its occurrence time (ms
 * since the epoch, clamped to 0..2^48-1) + the first 20 hex of SHA-256 over account,
 * alert id and occurrence time: derived (a replay gives the same id) and ordered by time
 * (ids of events opened later sort after). */
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

/* The key's string, unique per (account, kind, asset, value): the composed text when
 * short, else account, kind and a SHA-256 of it all. size must be >= CWPP_CORR_KEY_MAX.
 * Returns 0 or -1. */
int cwpp_corr_key_string(const char *account, const cwpp_corr_key_t *k, char *buf,
                         size_t size);

/*
 * Seeding: the correlator fills a fresh index per batch from PostgreSQL (the events its
 * alerts' keys and ids point at), so status changes made by others and partitions that
 * moved between instances are always seen. seed_event first; seed_key and seed_alert
 * return CWPP_ENOTFOUND for an event not seeded.
 */
int cwpp_corr_index_seed_event(cwpp_corr_index_t *ix, const char *event_id,
                               const char *account, cwpp_event_state_t st, int64_t first_ms,
                               int64_t last_ms);
int cwpp_corr_index_seed_key(cwpp_corr_index_t *ix, const char *key, const char *event_id,
                             const char *alert_id);
int cwpp_corr_index_seed_alert(cwpp_corr_index_t *ix, const char *alert_id,
                               const char *event_id);
/* The event that owns key now, and the first alert that brought it there. 0 or
 * CWPP_ENOTFOUND. */
int cwpp_corr_index_key_owner(const cwpp_corr_index_t *ix, const char *key,
                              const char **event_id, const char **alert_id);

/* Events and keys held (for metrics and tests). */
size_t cwpp_corr_index_events(const cwpp_corr_index_t *ix);
size_t cwpp_corr_index_keys(const cwpp_corr_index_t *ix);

/* --------------------------------------------------- event figures (event.c) */

/* One behaviour between two entities, for the provenance graph. */
typedef struct cwpp_corr_edge {
    const char *src_type, *src, *relation, *dst_type, *dst; /* point into the alert */
} cwpp_corr_edge_t;

#define CWPP_CORR_MAX_EDGES 10

/*
 * The behaviours an alert shows (docs/correlator.md "Provenance graph"): host ran process,
 * parent process spawned process (details.parent_process), process wrote file (else host
 * has file), IP logged on to host, host account logged on to host, IP used account, IP
 * attacked host (brute force, network attack, abnormal logon), host connected to IP (any
 * other remote IP), process ran as host account. Node values are the entity values
 * ingest extracted. Returns how many were written.
 */
size_t cwpp_corr_edges(const cwpp_alert_t *a, cwpp_corr_edge_t *out);

typedef struct cwpp_assess_conf {
    const char *core_roles;            /* "database,application" */
    const char *authoritative_sources; /* "virus_scan,webshell_scan" */
    const char *probe_types;           /* alert types that count as a probe */
    int64_t     alerts_high;           /* this many alerts is "high" */
    int64_t     growth_alerts;         /* ... and growing: this many in recent_ms */
    int64_t     recent_ms;             /* "recent activity" */
    int64_t     escalation_ms;         /* after the probe, within this */
    int64_t     escalation_alerts;     /* at least this many related alerts */
    int64_t     escalation_types;      /* of at least this many other types */
    int64_t     ip_block_events;       /* 30-day events of one IP to recommend blocking */
    int64_t     ip_block_alerts;       /* or 30-day alerts */
    int64_t     ip_targeted_assets;    /* or assets it attacked (targeted attack) */
} cwpp_assess_conf_t;

/* Defaults as documented (docs/config-correlator.md). */
void cwpp_assess_conf_default(cwpp_assess_conf_t *c);

/*
 * Adds one occurrence of alert a to an event's running figures (a JSON object, {} for a
 * new event; see event.c for its members). new_alert is 1 when the alert is new to the
 * event, 0 for a recurrence (then only times and occurrences move). Returns 0 or
 * CWPP_ENOMEM.
 */
int cwpp_ev_summary_add(json_t *summary, const cwpp_alert_t *a, int new_alert,
                        const cwpp_assess_conf_t *c);
/* The same for a record that stands for n occurrences (n >= 1: the ones since the last
 * record of its alert applied, when emissions between were lost upstream). */
int cwpp_ev_summary_add_n(json_t *summary, const cwpp_alert_t *a, int new_alert, int64_t n,
                          const cwpp_assess_conf_t *c);

typedef enum {
    CWPP_URG_ACT_NOW = 0, CWPP_URG_HIGH, CWPP_URG_MEDIUM, CWPP_URG_LOW
} cwpp_urgency_t;
const char *cwpp_urgency_name(cwpp_urgency_t u);
int         cwpp_urgency_parse(const char *s, cwpp_urgency_t *out);

/*
 * The quiet rule, once for every reader ("no new related alerts for a long time: lower
 * priority"; docs/correlator.md "Assessment"). It depends on the time of reading, so it
 * is never stored: the stored urgency is as of the latest change, and whoever shows an
 * event (cwpp-api's event list and event, the export workbook, the handled-event stream,
 * the correlator's notifications) shows the urgency as of its reading time: one step
 * lower (act_now -> high -> medium -> low; low stays low) once the latest alert is more
 * than quiet_hours old. CWPP_QUIET_HOURS_DEFAULT is the correlator's default joining
 * window (correlator.window.ms): after it, a related alert opens a new event.
 */
#define CWPP_QUIET_HOURS_DEFAULT   24
#define CWPP_QUIET_HOURS_DEFAULT_S "24" /* the same, for SQL text */

/* 1 when an event whose latest alert occurred at last_seen_ms is quiet at now_ms: more
 * than quiet_hours hours (>= 1) passed since. A last_seen_ms <= 0 (none) is never quiet. */
int cwpp_urgency_quiet(int64_t last_seen_ms, int64_t now_ms, int64_t quiet_hours);

/* The urgency shown for a stored one: stored, or one step lower when quiet (a reader
 * that learnt "quiet" from CWPP_SQL_QUIET below). An unknown stored value is low. */
cwpp_urgency_t cwpp_urgency_shown(cwpp_urgency_t stored, int quiet);

/* The urgency shown at now_ms of an event with the stored urgency and latest alert at
 * last_seen_ms: stored, or one step lower when quiet (cwpp_urgency_quiet, into *quiet
 * when not NULL). Cannot fail. */
cwpp_urgency_t cwpp_urgency_as_of(cwpp_urgency_t stored, int64_t last_seen_ms, int64_t now_ms,
                                  int64_t quiet_hours, int *quiet);

/*
 * The same rule in SQL, for readers that select events: each macro takes SQL expressions
 * (a column, a parameter such as "$3", or a literal) and gives SQL text, so every reader
 * composes the one definition. urgency: the stored urgency text; last: the latest
 * occurrence (timestamptz); now: the reading time (timestamptz); hours: quiet hours (int).
 *   CWPP_SQL_QUIET        boolean: the event is quiet at now
 *   CWPP_SQL_URGENCY_RANK the urgency shown as its rank, 1 (act_now) .. 4 (low); an
 *                         unknown stored text counts as low
 *   CWPP_SQL_URGENCY_AS_OF the urgency shown, as text
 * tests/unit/correlate checks the ranks agree with cwpp_urgency_name.
 */
#define CWPP_SQL_URGENCIES "'{act_now,high,medium,low}'::text[]"
#define CWPP_SQL_QUIET(last, now, hours)                                                      \
    "((" last ") < (" now ")::timestamptz - make_interval(hours => (" hours ")::int))"
#define CWPP_SQL_URGENCY_RANK(urgency, last, now, hours)                                      \
    "LEAST(COALESCE(array_position(" CWPP_SQL_URGENCIES ", " urgency "), 4) + "              \
    "(" CWPP_SQL_QUIET(last, now, hours) ")::int, 4)"
#define CWPP_SQL_URGENCY_AS_OF(urgency, last, now, hours)                                     \
    "(" CWPP_SQL_URGENCIES ")[" CWPP_SQL_URGENCY_RANK(urgency, last, now, hours) "]"

/* The 30-day figures of one IP of the event's account (entity_stats_30d). */
typedef struct cwpp_ip_stat {
    const char *ip;
    int64_t     events, alerts, assets;
} cwpp_ip_stat_t;

typedef struct cwpp_assessment {
    cwpp_urgency_t urgency;
    json_t        *reasons;         /* [{"code", "text"}] (owned) */
    json_t        *recommendations; /* [{"action", "entity_type", "entity_value", "reason"}] */
} cwpp_assessment_t;

/*
 * The urgency assessment of an event from its figures, now_ms (recent activity) and the
 * 30-day figures of its IPs. Fills out (free with cwpp_assessment_clear). Returns 0 or
 * CWPP_ENOMEM.
 */
int  cwpp_ev_assess(const json_t *summary, const cwpp_assess_conf_t *c, int64_t now_ms,
                    const cwpp_ip_stat_t *ips, size_t nips, cwpp_assessment_t *out);
void cwpp_assessment_clear(cwpp_assessment_t *a);

/* ------------------------------------- membership changes (membership.c, correlate.c) */

/*
 * The event an alert is a member of in the index (the open one, else the latest: as
 * seeded), and that event's state. 0, or CWPP_ENOTFOUND when the alert is in no event the
 * index holds. event_id points into the index (valid until it changes).
 */
int cwpp_corr_index_alert_event(const cwpp_corr_index_t *ix, const char *alert_id,
                                const char **event_id, cwpp_event_state_t *st);

/* The alert is no longer a member of any event (it left: whitelisted, or moved by a
 * command); the keys stay with their owners. Returns 0 or CWPP_ENOTFOUND. */
int cwpp_corr_index_forget_alert(cwpp_corr_index_t *ix, const char *alert_id);

/* One member of an event as stored: its alert (a stored row, cwpp_alert_from_row) and its
 * figures within the event (event_alerts: first and last occurrence, occurrences). */
typedef struct cwpp_corr_member {
    const cwpp_alert_t *alert;
    int64_t             first_ms, last_ms, occurrences;
} cwpp_corr_member_t;

/*
 * Rebuilds an event's running figures from its members, in the order given (the order
 * they joined): each member is added as a new alert at its first occurrence, then its
 * further occurrences at its last one, through cwpp_ev_summary_add_n, so the figures are
 * those the event would have had with only these alerts. From old (the figures before,
 * may be NULL) it keeps what is not made of alerts: "notified" (notifications are not
 * sent twice), and, when no member is left, the times, name and severity (the event
 * stays readable with 0 alerts). *out is a new object (the caller owns it). Returns 0,
 * CWPP_ENOMEM, or CWPP_EINVAL for a member without alert.
 */
int cwpp_ev_rebuild(const cwpp_corr_member_t *m, size_t n, const json_t *old,
                    const cwpp_assess_conf_t *c, json_t **out);

/*
 * Where each correlation key goes when events are rebuilt from new member lists. The
 * caller gives the keys the rebuilt events own now (key, owner, alert that brought it)
 * and every (key, rebuilt event, member alert) its new members hold, in member order.
 * For each owned key: the owner keeps it when one
 * of its members still holds it (its alert is the old one if still a holder, else the
 * first holder); otherwise the first rebuilt event (in ids order) whose members hold it
 * takes it; otherwise it is dropped. Fills out_event/out_alert per key (pointers into the
 * inputs; NULL: dropped). Pure.
 */
typedef struct cwpp_corr_keyref {
    const char *key, *event_id, *alert_id;
} cwpp_corr_keyref_t;

/* The id of the event that alerts detached from event_id by command command_id form:
 * "ev-" + 32 hex of SHA-256 over account, event_id, the command id and a "detach" marker
 * (the same on a replay of the command; another detach, of the same alerts too, gets
 * another id). */
void cwpp_corr_detach_event_id(const char *account, const char *event_id,
                               const char *command_id, char out[CWPP_EVENT_ID_LEN + 1]);

void cwpp_corr_keys_reassign(const cwpp_corr_keyref_t *owned, size_t nowned,
                             const cwpp_corr_keyref_t *held, size_t nheld,
                             const char *const *ids, size_t nids, const char **out_event,
                             const char **out_alert);

#endif /* CWPP_CORRELATE_H */
