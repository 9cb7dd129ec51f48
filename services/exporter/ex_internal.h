/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the exporter's files: exporter.c (config, the batch, export jobs, retention),
 * xlsx.c (the workbook), handled.c (the handled-event stream). */
#ifndef CWPP_EX_INTERNAL_H
#define CWPP_EX_INTERNAL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>

#include "cwpp_avro.h"
#include "cwpp_command.h"
#include "cwpp_http.h"
#include "cwpp_kafka.h"
#include "cwpp_pg.h"
#include "exporter.h"

typedef struct ex {
    const ex_conf_t     *conf;
    const cwpp_kvlist_t *kafka_props;
    cwpp_pg_t           *pg;      /* commands and retention */
    cwpp_pg_t           *pub_pg;  /* the publisher: holds its advisory lock */
    cwpp_avro_type_t    *t_rejected, *t_handled;
    avro_value_t         v_rejected, v_handled;
    int                  nvalues;   /* how many of the two values exist (destroy) */
    cwpp_commander_t    *cmd;       /* the command protocol: export.create */
    cwpp_buf_t           buf;
    rd_kafka_t          *progress;  /* progress records: plain, fire and forget */
    char                 results_topic[256], handled_topic[256], ocsf_topic[256];
    int64_t              next_retention_ms;
    atomic_int           db_ok;

    /* handled-event publisher */
    rd_kafka_t          *txp;       /* transactional producer, NULL until it has the lock */
    int                  is_publisher;
    int64_t              published_seq;
    int64_t              gap_seq;       /* a missing seq waited for, */
    char                 gap_xmax[32];  /* until transactions open then have ended */
    int                  gap_reread;    /* they have: the rows are read once more first */

    cwpp_metrics_t      *metrics;
    cwpp_metric_t       *m_dead, *m_db_errors, *m_handled;
    cwpp_metric_t       *m_handled_seq, *m_publisher, *m_retention_events, *m_retention_alerts;
    cwpp_metric_t       *m_gaps_skipped, *m_export_seconds, *m_txn_aborts, *m_unpublishable;
} ex_t;

/* xlsx.c: the workbook of doc {"events", "assets", "entities", "alerts": [...]} into
 * *out (malloc'd, *len bytes). 0, or an error with errstr. */
int ex_workbook(const ex_conf_t *conf, const json_t *doc, unsigned char **out, size_t *len,
                char *errstr, size_t errstr_size);

/* handled.c: publishes what is due; 0 or an error (retried at the next tick). */
int ex_publish_handled(ex_t *x, char *errstr, size_t errstr_size);
/* The OCSF Incident Finding of a handled-event document (docs/exporter.md "OCSF"). */
json_t *ex_ocsf(const json_t *ev);
void ex_publisher_close(ex_t *x);

#endif /* CWPP_EX_INTERNAL_H */
