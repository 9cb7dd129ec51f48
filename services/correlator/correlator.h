/* SPDX-License-Identifier: Apache-2.0 */
/*
 * correlator: aggregates accepted alerts into security events (docs/architecture.md
 * "Security events", "Entities", "Assessment"; docs/correlator.md).
 *
 *   <prefix>alerts.accepted --> [correlator] --> PostgreSQL (events, their alerts,
 *                                                entities, graph, keys)
 *                                           \--> <prefix>events        (snapshots, compacted)
 *                                           \--> <prefix>notifications (opened, urgency rose)
 *                                           \--> <prefix>alerts.rejected (dead letters)
 *
 * Each batch is one transaction: the events the batch's alerts can join are read and
 * locked from PostgreSQL (so status changes by the responder and partitions that moved
 * between instances are always seen), the alerts are decided in order (libs/correlate),
 * and the effect and this group's offsets are written together: a batch redelivered
 * after a crash changes nothing twice.
 */
#ifndef CWPP_CORRELATOR_H
#define CWPP_CORRELATOR_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_service.h"

typedef struct corr_conf {
    cwpp_common_conf_t common;
    int64_t            window_ms;
    int64_t            max_future_ms;
    int64_t            max_message_bytes;
    char              *core_roles;
    char              *authoritative_sources;
    char              *probe_types;
    int64_t            alerts_high, growth_alerts, recent_ms;
    int64_t            escalation_ms, escalation_alerts, escalation_types;
    int64_t            ip_block_events, ip_block_alerts, ip_targeted_assets;
    int64_t            workers;
    int64_t            command_max_age_ms;
} corr_conf_t;

extern const cwpp_conf_prop_t corr_props[];
extern const size_t           corr_nprops;

int corr_run(const void *conf, const cwpp_service_env_t *env);

#endif /* CWPP_CORRELATOR_H */
