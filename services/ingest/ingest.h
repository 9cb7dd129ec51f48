/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest: validates and normalizes upstream alerts, de-duplicates "the same alert",
 * persists alerts in PostgreSQL and emits Avro Alert records; rejects bad records to
 * the dead-letter topic with their bytes and a reason. See ingest.c for the design.
 */
#ifndef CWPP_INGEST_H
#define CWPP_INGEST_H

#include "cwpp_service.h"

typedef struct ingest_conf {
    cwpp_common_conf_t common;
    int64_t            max_message_bytes;  /* larger records are rejected */
    char              *adapter_account_id; /* account for Falco/Wazuh alerts without one */
    int64_t            max_future_s;       /* occurred_at tolerance into the future */
    int64_t            max_age_s;          /* and into the past (0: back to 1970) */
    int64_t            chunk;              /* records per upsert statement */
} ingest_conf_t;

extern const cwpp_conf_prop_t ingest_props[];
extern const size_t           ingest_nprops;

/* The service's run function (cwpp_service_def_t.run). */
int ingest_run(const void *conf, const cwpp_service_env_t *env);

/* ---- the batch core, exposed for tests ---- */
typedef struct ingest ingest_t;

/* Creates the core: Avro types, database handle (not yet connected), metrics.
 * NULL with errstr on failure. */
ingest_t *ingest_new(const ingest_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                     size_t errstr_size);
void      ingest_destroy(ingest_t *in);
/* The cwpp_batch_fn of the loop (opaque = ingest_t). */
int ingest_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                 char *errstr, size_t errstr_size);

#endif
