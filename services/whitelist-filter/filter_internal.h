/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between filter.c (alerts, the batch) and commands.c (whitelist commands). */
#ifndef CWPP_WHITELIST_FILTER_INTERNAL_H
#define CWPP_WHITELIST_FILTER_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cwpp_alert.h"
#include "cwpp_avro.h"
#include "cwpp_command.h"
#include "cwpp_fence.h"
#include "cwpp_http.h"
#include "cwpp_kafka.h"
#include "cwpp_pg.h"
#include "cwpp_rules.h"
#include "filter.h"

typedef enum { D_NONE = 0, D_ACCEPT, D_SUPPRESS } decision_t;

typedef struct item {
    rd_kafka_message_t *m;
    int                 is_cmd;      /* from the commands topic */
    int                 ok;          /* an alert that decoded */
    int                 fresh;       /* offset not applied before (count hits) */
    int                 in_db;       /* its row was found */
    cwpp_alert_status_t db_status;   /* the stored status, when in_db */
    int                 db_seq_known;  /* the row's filtered_seq is not NULL */
    int64_t             db_seq;        /* the row's filtered_seq, when db_seq_known */
    int64_t             nhits;         /* rule hits it adds (occurrences it newly decides) */
    int64_t             rule_id;     /* live rule that matches, or 0 */
    decision_t          decision;
    cwpp_alert_status_t status;      /* status it leaves with */
    cwpp_alert_t        alert;
    const char         *code;        /* dead-letter reason code */
    char                reason[300];
} item_t;

/* One rule's fresh hits in a batch. */
typedef struct wl_hit {
    int64_t rule_id, n;
} wl_hit_t;

typedef struct wl {
    const wl_conf_t    *conf;
    cwpp_pg_t          *pg;
    PGconn             *prepared_on;
    cwpp_avro_type_t   *t_alert, *t_rejected;
    avro_value_t        v_alert, v_rejected;
    int                 nvalues;    /* how many of v_alert, v_rejected exist (destroy) */
    cwpp_commander_t   *cmd;        /* the command protocol (commands.c) */
    cwpp_buf_t          buf, sql;
    cwpp_buf_t          b_ids, b_status, b_seq, b_hit_ids, b_hit_counts;
    item_t             *items;
    size_t              items_cap;
    size_t             *order;      /* items sorted by alert id (lookups) */
    cwpp_fence_t       *fence;      /* the batch's partitions and their offsets */
    cwpp_rules_limits_t limits;
    cwpp_ruleset_t     *rs;         /* the loop thread's rules */
    int64_t             rs_version;
    int                 rs_in_tx;   /* rs was loaded inside the open batch's transaction */
    cwpp_ruleset_t     *rs_prev;    /* the rules before that load, back in force if the
                                     * transaction rolls back (NULL otherwise) */
    cwpp_rules_stats_t  stats;
    int                 rules_changed; /* a command of this batch changed rules */
    int                 cmd_rules_changed; /* rules_changed before the current command */
    size_t              cmd_hits_mark;     /* pending_hits_n before the current command */
    char                cmd_topic[256];
#define WL_PENDING_HITS_MAX 1000
    int64_t             pending_hits[WL_PENDING_HITS_MAX]; /* command hits for /metrics */
    size_t              pending_hits_n;                    /* counted after the commit */
    wl_hit_t           *hits;     /* the batch's fresh hits by rule id, sorted (/metrics) */
    size_t              hits_n, hits_cap;
    int64_t             repeats_n; /* the batch's repeated occurrences (/metrics) */

    /* refresher thread: polls the rules version, builds and hands over new rulesets */
    pthread_t           thr;
    int                 thr_started;
    pthread_mutex_t     mu;
    pthread_cond_t      cv;
    int                 stop, wake;
    cwpp_ruleset_t     *pending;
    int64_t             pending_version;
    atomic_llong        loaded_version;
    atomic_int          db_ok;

    cwpp_metrics_t     *metrics;
    cwpp_metric_t      *m_accepted, *m_suppressed_auto, *m_suppressed_manual, *m_precision;
    cwpp_metric_t      *m_dead, *m_db_errors, *m_rules, *m_version, *m_aborted, *m_reloads;
    cwpp_metric_t      *m_db_seconds, *m_repeats;
} wl_t;

/* commands.c: the commander of the whitelist commands for w (w->pg, w->conf, w->metrics
 * set). NULL with errstr. */
cwpp_commander_t *wl_commander_new(wl_t *w, char *errstr, size_t errstr_size);
/* commands.c: applies one command record inside the batch's open transaction, adding its
 * answer (and any alert it re-emits) to out. Returns 0, or CWPP_ETRANSIENT (database)
 * to fail the whole batch; a refused command is answered, not an error. */
int wl_apply_command(wl_t *w, item_t *it, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size);

/* filter.c helpers used by commands.c */
int  wl_emit_alert(wl_t *w, cwpp_alert_t *a, int suppressed, cwpp_outbox_t *out,
                   char *errstr, size_t errstr_size);
/* Publishes a change of alert a's stored status that is no occurrence of it (a command):
 * a whitelisted status on suppressed and on accepted with transition `whitelisted` (the
 * correlator takes it out of its event); any other on accepted with transition `restored`
 * (it was taken out of the whitelist; the correlator joins it without counting an
 * occurrence). Sets a->transition. Returns 0 or an error (ENOMEM, encoding). */
int  wl_emit_change(wl_t *w, cwpp_alert_t *a, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size);
int  wl_dead_letter(wl_t *w, rd_kafka_message_t *m, const char *code, const char *reason,
                    cwpp_outbox_t *out, char *errstr, size_t errstr_size);

#endif
