/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder: applies analysts' decisions on security events (docs/architecture.md "Status",
 * "Recommended handling policy", "Playbooks", "Owner and level", "Activity log";
 * docs/responder.md).
 *
 *   <prefix>commands       --> [responder] --> PostgreSQL (events, alerts, users, policies,
 *   <prefix>action-results -->                 tasks, playbooks, activity log)
 *                                         \--> <prefix>command-results (one answer each)
 *                                         \--> <prefix>actions         (to enforcement agents)
 *                                         \--> <prefix>events          (snapshots after a change)
 *                                         \--> <prefix>alerts.rejected (dead letters)
 *
 * Each batch is one transaction, each record in its own savepoint. A timer (the loop's
 * tick) retries or times out tasks whose agent did not answer and rolls back policies
 * whose lease ended. Commands are applied once (commands_applied, keyed by command id);
 * results once (a task takes the result of its current attempt only); actions are sent
 * at least once with stable ids, which agents apply once.
 */
#ifndef CWPP_RESPONDER_H
#define CWPP_RESPONDER_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_service.h"

typedef struct rs_conf {
    cwpp_common_conf_t common;
    int64_t            max_message_bytes;
    int64_t            command_max_age_ms;
    int64_t            validity_default_s, validity_min_s, validity_max_s;
    int64_t            task_timeout_ms;
    int64_t            task_attempts;
    int64_t            tick_ms;
    char              *playbooks_dir;
    char              *signing_key_file; /* Ed25519 seed that signs every Action */
} rs_conf_t;

extern const cwpp_conf_prop_t rs_props[];
extern const size_t           rs_nprops;

int rs_run(const void *conf, const cwpp_service_env_t *env);

#endif /* CWPP_RESPONDER_H */
