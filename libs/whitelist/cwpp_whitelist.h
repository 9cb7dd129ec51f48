/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_whitelist: what whitelist-filter and cwppctl share about whitelist rules stored in
 * PostgreSQL (schemas/sql/002_whitelist.sql): reading a rule definition from a command
 * payload, loading the live rules into a cwpp_ruleset_t, the impact preview (replay one
 * rule over the stored alerts of the last days) and the broad-rule warning.
 */
#ifndef CWPP_WHITELIST_H
#define CWPP_WHITELIST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_rules.h"

/* A rule definition with its strings owned (free with cwpp_wl_def_clear). */
typedef struct cwpp_wl_def {
    cwpp_rule_def_t def;
    char           *from_alert_id; /* the alert it was created from, or NULL */
    char           *remark;        /* or NULL */
    int             force;         /* create even when broad */
} cwpp_wl_def_t;

/*
 * Reads {"account_id", "alert_name", "field", "op", "value", "scope": "all"|"asset", "asset_id",
 * "from_alert_id", "expires_at" (RFC 3339), "remark", "force"} into out and checks it with
 * cwpp_rule_check. account_id may be absent here (previews over every account); the
 * whitelist-filter refuses to store a rule without one. Returns 0, or CWPP_EINVAL with one
 * sentence (CWPP_ENOMEM).
 */
int  cwpp_wl_def_from_json(json_t *obj, cwpp_wl_def_t *out, char *errstr, size_t errstr_size);
void cwpp_wl_def_clear(cwpp_wl_def_t *d);
/* The definition as a JSON object (for the activity log and answers); NULL on ENOMEM. */
json_t *cwpp_wl_def_to_json(const cwpp_rule_def_t *d, int64_t rule_id);

/*
 * Loads every live rule (not deleted, not expired at the database's now; each with its
 * account, so it matches only that account's alerts) into a new
 * ruleset and reads the rules version. A stored rule that no longer compiles is skipped
 * and counted in *skipped. Returns 0 or CWPP_ETRANSIENT/CWPP_EIO/CWPP_ENOMEM with errstr.
 */
int cwpp_wl_load(PGconn *c, const cwpp_rules_limits_t *limits, cwpp_ruleset_t **out,
                 int64_t *version, size_t *skipped, char *errstr, size_t errstr_size);

#define CWPP_WL_SAMPLE_MAX 10

typedef struct cwpp_wl_preview {
    int     days;              /* the window replayed */
    int64_t considered;        /* alerts of that name in the window (precision defence aside) */
    int64_t matched;           /* of which the rule would suppress */
    int64_t assets;            /* distinct assets among the matched */
    double  share;             /* matched / considered (0 when none) */
    int64_t regex_aborted;     /* evaluations a regex limit stopped (counted as no match) */
    json_t *events;            /* array of {event_id, name, status, alerts}: open events
                                  that would lose alerts */
    json_t *sample;            /* array of up to CWPP_WL_SAMPLE_MAX matched alerts */
} cwpp_wl_preview_t;

/*
 * Replays rule d (as if live now, ignoring its expiry; regexes run with limits, NULL for
 * the defaults) over the stored alerts of its account (d->account_id; NULL: every
 * account) whose name is d->alert_name and whose last occurrence is within the last days
 * days, so the share and the open events are the account's. Read-only.
 * Returns 0 (fill out; free with cwpp_wl_preview_clear), CWPP_EINVAL for a rule that
 * does not check, or CWPP_ETRANSIENT/CWPP_EIO/CWPP_ENOMEM with errstr.
 */
int  cwpp_wl_preview(PGconn *c, const cwpp_rule_def_t *d, const cwpp_rules_limits_t *limits,
                     int days, int64_t now_ms, cwpp_wl_preview_t *out, char *errstr,
                     size_t errstr_size);
void cwpp_wl_preview_clear(cwpp_wl_preview_t *p);
json_t *cwpp_wl_preview_to_json(const cwpp_wl_preview_t *p);

/*
 * Why rule d is too broad to create without --force, in one or two sentences in why, or
 * 0 when it is not: its condition is as broad as "path contains /data/" (a contains,
 * startswith or regex on a top-level directory, a very short substring or prefix, a regex
 * matching the empty string), or
 * the preview p (may be NULL) shows it would suppress more than max_share of its alert
 * name's alerts. Returns 1 when broad.
 */
int cwpp_wl_broad(const cwpp_rule_def_t *d, const cwpp_wl_preview_t *p, double max_share,
                  char *why, size_t why_size);

#endif /* CWPP_WHITELIST_H */
