/* SPDX-License-Identifier: Apache-2.0 */
/*
 * whitelist-filter: decides for every normalized alert whether the whitelist suppresses it
 * (docs/architecture.md "Whitelist"), and applies the whitelist commands analysts send
 * with cwppctl.
 *
 *   <prefix>alerts.normalized --> [filter] --> <prefix>alerts.accepted   (keyed by account)
 *                                         \--> <prefix>alerts.suppressed (keyed by account)
 *   <prefix>commands (service "whitelist") --> [filter] --> <prefix>command-results
 *
 * Decision, in order: a precision-defence alert passes as handled; an alert an analyst
 * whitelisted by hand stays suppressed (manually whitelisted); an alert a live rule of its
 * name matches is suppressed (automatically whitelisted); any other alert passes, an
 * automatically whitelisted one whose rule is gone returning to unhandled. The stored
 * status (PostgreSQL) is the truth, read in the batch's transaction.
 *
 * Records on accepted carry a transition: `occurrence` for what ingest sent; `whitelisted`
 * when an alert that may be in an event became whitelisted (by hand, by a new rule over
 * the stored alerts, or when a rule suppresses its recurrence), so the correlator takes it
 * out; `restored` when it was taken out of the whitelist (unhandled, no occurrence).
 */
#ifndef CWPP_WHITELIST_FILTER_H
#define CWPP_WHITELIST_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_service.h"

typedef struct wl_conf {
    cwpp_common_conf_t common;
    int64_t            refresh_ms;
    int64_t            broad_percent;
    int64_t            preview_days;
    int64_t            regex_match_limit;
    int64_t            regex_depth_limit;
    int64_t            regex_jit_stack_kb;
    int64_t            max_message_bytes;
    int64_t            command_max_age_ms;
} wl_conf_t;

extern const cwpp_conf_prop_t wl_props[];
extern const size_t           wl_nprops;

int wl_run(const void *conf, const cwpp_service_env_t *env);

#endif /* CWPP_WHITELIST_FILTER_H */
