/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter: Excel export jobs, the handled-event stream for downstream consumers, and
 * retention (docs/architecture.md "Export", "Limits"; docs/exporter.md).
 *
 *   <prefix>commands --> [exporter] --> PostgreSQL (export_jobs, export_files)
 *                                  \--> <prefix>command-results   progress, then the answer
 *   PostgreSQL handled_events  --> \--> <prefix>events.handled      Avro, one per event
 *                                  \--> <prefix>events.handled.ocsf OCSF Incident Finding JSON
 *   retention (timer)          --> deletes events older than retention.days, in batches
 *
 * Export commands run as jobs in their own REPEATABLE READ transaction (one snapshot for
 * the three sheets); the workbook is stored in PostgreSQL with the answer. Handled events
 * are published in Kafka transactions by the one exporter holding the publisher lock; the
 * highest published seq is read back from the topic at start, so a restart after a crash
 * neither skips nor repeats a record.
 */
#ifndef CWPP_EXPORTER_H
#define CWPP_EXPORTER_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_service.h"

typedef struct ex_conf {
    cwpp_common_conf_t common;
    int64_t            max_message_bytes;
    int64_t            max_events;
    char              *tmp_dir;
    int64_t            tick_ms;
    char              *transactional_id;
    int64_t            handled_batch;
    int64_t            retention_days;
    int64_t            retention_batch;
    int64_t            retention_interval_ms;
    int                retention_keep_log; /* must be 1: the activity log is append-only */
    int64_t            command_max_age_ms;
} ex_conf_t;

extern const cwpp_conf_prop_t ex_props[];
extern const size_t           ex_nprops;

int ex_run(const void *conf, const cwpp_service_env_t *env);
/* The configuration beyond bounds: 0, or CWPP_ECONFIG naming the key. */
int ex_check(const void *conf, char *errstr, size_t errstr_size);

#endif /* CWPP_EXPORTER_H */
