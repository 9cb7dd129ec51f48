/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_internal.h: shared by the correlator's files (correlator.h says what it does):
 *   correlator.c    the configuration table and the life cycle (corr_new, corr_run);
 *   corr_sql.c      the SQL statements and, next to them, the JSON row sets they read
 *                   (json_to_recordset), the consumer-offset fence;
 *   corr_batch.c    one batch as one transaction: load, decide, write, commit, emit;
 *   corr_workers.c  the batch split between workers and their threads.
 * Nothing here is for other services or tests beyond the correlator's own unit tests.
 */
#ifndef CWPP_CORR_INTERNAL_H
#define CWPP_CORR_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "correlator.h"
#include "cwpp_alert.h"
#include "cwpp_avro.h"
#include "cwpp_correlate.h"
#include "cwpp_fence.h"
#include "cwpp_pg.h"
#include "cwpp_service.h"
#include "cwpp_util.h"

#define CORR_MAX_WORKERS 8
/* The alert contract's bounds on the ids that are index keys as they are
 * (docs/alert-format.md): longer ones are dead-lettered as invalid_alert. */
#define CORR_MAX_ACCOUNT_BYTES 128
#define CORR_MAX_ASSET_BYTES   256

/* ------------------------------------------------------------------ state */

/* An event the batch touched: loaded (locked) from PostgreSQL or opened by the batch. */
typedef struct evs {
    char               id[CWPP_EVENT_ID_LEN + 1];
    char              *account, *owner, *predecessor;
    char              *merged_into;    /* status merged: the survivor (commands) */
    char               status[16];
    int                level;          /* stored level rank, or 4 when new */
    int                level_fixed;    /* an analyst set the level: alerts do not move it */
    int                is_new, changed, touched;
    int                rebuild;        /* its members changed: figures rebuilt from them */
    int64_t            version;
    cwpp_urgency_t     urgency;        /* after this batch */
    json_t            *summary;
    json_t            *assessment;     /* {"reasons", "recommendations"} */
    char              *stored_assessment; /* as loaded, parsed only when a snapshot of an
                                           * unchanged event needs it */
    int                note_kind;      /* 0 none, 1 opened, 2 urgency raised */
    cwpp_urgency_t     note_prev;
    cwpp_urgency_t     note_urgency;   /* the urgency notified: as of now (the quiet rule) */
    int64_t            note_at;
    const rd_kafka_message_t *src;     /* the latest fresh record that changed it */
} evs_t;

/* One record of the batch. */
typedef struct item {
    rd_kafka_message_t  *m;
    int                  ok, fresh;    /* a valid alert; not applied before (the fence) */
    int                  leave;        /* transition whitelisted: it leaves its events */
    int                  cmd;          /* a record of the commands topic */
    cwpp_alert_t         alert;
    cwpp_corr_decision_t d;
    evs_t               *ev;
    const char          *code;         /* dead-letter code, or NULL */
    char                 reason[300];
} item_t;

/* A JSON array of row objects written straight into a buffer (no tree: these are the
 * batch's largest allocations). Errors stick; corr_rw_text reports them. */
typedef struct rw {
    cwpp_buf_t b;
    size_t     n;      /* elements so far */
    int        fields; /* fields of the current row so far */
    int        err;
} rw_t;

/* The rows the batch writes, one set per statement of corr_sql.c. */
typedef struct rows {
    rw_t events, alerts, entities, touch, edges, keys, ips, notes;
    rw_t leave;   /* (event, alert) memberships that end: whitelisted alerts */
    rw_t reopen;  /* handled alerts that recurred into a successor: unhandled again */
    rw_t rebuilt; /* ids of the events rebuilt from their members */
    rw_t dropkeys;/* keys no member of their rebuilt owner holds any more */
} rows_t;

/* The highest occurrence sequence (an Alert's `occurrences`) applied for one alert:
 * seq -1 when only rows from before sequences were kept exist (count one per record). */
typedef struct seqent {
    char    id[CWPP_ALERT_ID_LEN + 1];
    int64_t seq;
    int     used;
} seqent_t;

/* One worker's correlator: its connection, Avro values, buffers and the batch's state. */
typedef struct corr {
    const corr_conf_t  *conf;
    cwpp_assess_conf_t  ac;
    cwpp_pg_t          *pg;
    PGconn             *prepared_on;   /* the connection the statements are prepared on */
    int                 load_moved;    /* a key or membership the load read points at an
                                        * event it did not lock: moved meanwhile (a merge or
                                        * a detach committed between its statements) */
    cwpp_avro_type_t   *t_alert, *t_rejected, *t_event, *t_note;
    avro_value_t        v_alert, v_rejected, v_event, v_note;
    int                 nvalues;       /* of v_alert, v_rejected, v_event, v_note created */
    cwpp_buf_t          buf;           /* the record being encoded */
    rows_t              w;             /* the batch's row sets, buffers kept between batches */
    rw_t                j_keys, j_ids;
    item_t             *items;
    size_t              items_cap;
    seqent_t           *seqs;          /* the batch's alerts' sequences, hash table by id */
    size_t              seqs_cap;
    cwpp_fence_t       *fence;         /* this worker's share's partitions (libs/fence) */
    evs_t             **evs;           /* touched events, hash table by id */
    size_t              evs_cap, nevs;
    evs_t             **evlist;        /* the same, in the order first touched */
    cwpp_ip_stat_t     *ipstats;
    size_t              nipstats;
    char              **ipaccts;       /* account of each ipstats entry */
    atomic_int          db_ok;
    struct {
        int64_t alerts, recurrences, opened, joined, replayed, repeats, left, reopened;
    } n;                               /* this attempt's counts: metrics once committed */

    cwpp_metric_t *m_alerts, *m_recurrences, *m_opened, *m_joined, *m_dead, *m_db_errors;
    cwpp_metric_t *m_notes, *m_snapshots, *m_replayed, *m_db_seconds, *m_repeats;
    cwpp_metric_t *m_left, *m_reopened;

    struct cwpp_commander    *cmd;      /* event.merge, event.detach (corr_commands.c) */
    const rd_kafka_message_t *cmd_msg;  /* the command record being applied */
    char                      cmd_topic[256];
} corr_t;

/* --------------------------------------------------------- correlator.c */

/* A worker's correlator, with its metrics registered (shared by name between workers).
 * NULL on failure, with errstr filled; nothing half-built is returned. */
corr_t *corr_new(const corr_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                 size_t errstr_size);
/* Frees c and everything it holds; accepts NULL. */
void    corr_destroy(corr_t *c);

/* ----------------------------------------------------------- corr_sql.c */

/* Prepares the statements on c's current connection (once per connection). Returns 0,
 * CWPP_ECONFIG (the schema does not fit: fatal) or a connection error. */
int         corr_prepare(corr_t *c, char *errstr, size_t errstr_size);
/* The two statements over entity_alerts planned for every batch (sent unprepared): a
 * generic plan, cached after five executions, does not see how many rows the batch
 * brings nor, until the next ANALYZE, how big the table has grown, and the one made while
 * the table was small (a new desk, a fresh database) scanned it whole for every batch
 * (200k alerts into a fresh database took 65 s instead of 43). Planning them costs well
 * under a millisecond. */
extern const char CORR_SQL_ENTITIES_TOUCH[];
extern const char CORR_SQL_IP_STATS[];

void        corr_rows_start(rows_t *w);
/* Empties one row set (a statement's rows sent, the set is filled again). */
void        corr_rw_start(rw_t *w);
void        corr_rows_free(rows_t *w);
/* The array as a C string (the statement's parameter), or NULL after any error (out of
 * memory). */
const char *corr_rw_text(rw_t *w);

/* The batch's partitions with their offset ranges as JSON into w; NULL on ENOMEM. */
/* The valid alerts' correlation keys and ids as JSON arrays; 0 or CWPP_ENOMEM. */
int         corr_json_lookup(rw_t *wkeys, rw_t *wids, const item_t *items, size_t n,
                             const char **keys, const char **ids);

/* The rows of one applied alert of event event_id: its membership, its entities (a
 * recurrence: their last_seen only) and, for a new alert, its graph edges. ord is its
 * place in the batch. */
void corr_row_alert(rows_t *w, const char *event_id, const cwpp_alert_t *a,
                    const cwpp_corr_decision_t *d, size_t ord, int64_t occurrences);
/* A key's new owner (event, and the alert that brought it there). */
void corr_row_key(rows_t *w, const char *key, const char *account, const char *event_id,
                  const char *alert_id, size_t ord);
/* A membership that ends (a whitelisted alert leaves event_id). */
void corr_row_leave(rows_t *w, const char *event_id, const char *alert_id);
/* A handled alert that recurred into event_id after its event prev was handled. */
void corr_row_reopen(rows_t *w, const char *alert_id, const char *event_id,
                     const char *prev);
/* The graph edges of one member of a rebuilt event (all its behaviours, new rows). */
void corr_row_member_edges(rows_t *w, const char *event_id, const cwpp_alert_t *a,
                           int64_t first_ms, int64_t last_ms, size_t ord);
/* A string element of a plain array (rebuilt, dropkeys). */
void corr_row_str(rw_t *w, const char *s);
/* An IP whose 30-day figures the assessment needs. */
void corr_row_ip(rows_t *w, const char *account, const char *ip);
/* The events row of a changed event (after its assessment). */
void corr_row_event(rows_t *w, const evs_t *e);
/* A notification, with its encoded record (len bytes at payload). */
void corr_row_note(rows_t *w, const char *note_id, const evs_t *e, const void *payload,
                   size_t len);
/* An integer member of a JSON object, 0 when absent. */
int64_t corr_sgeti(const json_t *o, const char *k);


/* --------------------------------------------------------- corr_batch.c */

/* One batch of one worker (cwpp_service batch callback): one transaction, rolled back
 * whole on any failure. Returns 0, CWPP_EDATA when PostgreSQL refused the batch's data
 * (cwpp_pg_check's classes: retrying the same records cannot succeed, the loop applies
 * them one by one and dead-letters the one refused alone), or CWPP_ETRANSIENT for
 * everything else (connection lost, out of memory, ...: the batch is retried). */
int corr_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
               char *errstr, size_t errstr_size);
/* What corr_batch returns for a failed attempt whose first failure was rc: CWPP_EDATA
 * stays, anything else becomes CWPP_ETRANSIENT. Pure. */
int corr_failure_rc(int rc);
void corr_evs_reset(corr_t *c);
/* The batch's touched events (corr_ev_reserve sizes the table for n more; corr_ev_add:
 * NULL on ENOMEM). */
int    corr_ev_reserve(corr_t *c, size_t n);
evs_t *corr_ev_find(corr_t *c, const char *id);
evs_t *corr_ev_add(corr_t *c, const char *id, const char *account);
/* The events rows r_ev (load_events' columns) into the touched table and ix. 0 or
 * CWPP_ENOMEM. */
int corr_seed_events(corr_t *c, cwpp_corr_index_t *ix, const PGresult *r_ev);
/* The changed events' level and version, and the IPs the assessment needs into w. */
int corr_event_prep(corr_t *c, rows_t *w);
/* The rows of ip_stats into c's IP figures. 0 or CWPP_ENOMEM. */
int corr_read_ipstats(corr_t *c, const PGresult *r);
/* Assessments and notifications of the changed events; their events rows into w. */
int corr_assess(corr_t *c, rows_t *w, int64_t now, char *errstr, size_t errstr_size);
/* Sends m to the dead-letter topic with code and reason (counted and logged): the one
 * path for the alert batches and the commands. CWPP_OK, or the outbox's error. */
int corr_dead_letter(corr_t *c, const rd_kafka_message_t *m, const char *code,
                     const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size);
/* The snapshot / notification record of e into c->buf. */
int corr_build_snapshot(corr_t *c, evs_t *e, int64_t now, char *errstr, size_t errstr_size);
int corr_build_note(corr_t *c, const evs_t *e, char *errstr, size_t errstr_size);

/* ------------------------------------------------------- corr_members.c */

/* The batch's events marked rebuild, rebuilt from their members as they are now in the
 * transaction (figures, level, graph, keys); before assess. Two round trips, none when
 * no event is marked. Returns 0 or an error (CWPP_EDATA: a member cannot be read back). */
int corr_rebuild(corr_t *c, char *errstr, size_t errstr_size);

/* ------------------------------------------------------ corr_commands.c */

/* cr's commander (event.merge, event.detach) on its connection. 0 or an error. */
int corr_commander_new(corr_t *cr, cwpp_metrics_t *metrics, char *errstr,
                       size_t errstr_size);
/* Applies the command record m in a transaction of its own (libs/command), its answer
 * and snapshots into out. Returns as cwpp_commander_apply. */
int corr_apply_command(corr_t *cr, rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size);

/* ------------------------------------------------------- corr_workers.c */

/* The topic-partition of one record of a batch. */
typedef struct corr_rec_key {
    const char *topic;
    int32_t     partition;
} corr_rec_key_t;

/* One partition of a batch and the worker it went to. */
typedef struct corr_share {
    const char *topic;
    int32_t     partition;
    size_t      count;     /* its records in the batch */
    int         worker;
} corr_share_t;

/*
 * The batch split: n records (keys[i] their topic-partition) between nworkers (1 ..
 * CORR_MAX_WORKERS). Each partition goes whole to one worker (events never span
 * partitions), the largest partition first (on a tie, the one seen first) to the least
 * loaded worker (on a tie, the lowest). Fills shares (room for n; returns how many
 * partitions), worker_of[i] for each record and load[w] for each worker. Pure: depends
 * only on its inputs; cannot fail.
 */
size_t corr_split_batch(const corr_rec_key_t *keys, size_t n, int nworkers,
                        corr_share_t *shares, int *worker_of, size_t *load);

typedef struct corr_set corr_set_t;

/* The workers of one instance (conf->workers), each with its correlator and outbox.
 * NULL on failure with errstr filled. */
corr_set_t *corr_set_new(const corr_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                         size_t errstr_size);
void        corr_set_destroy(corr_set_t *s);
int         corr_set_nworkers(const corr_set_t *s);
corr_t     *corr_set_worker(corr_set_t *s, int w);
atomic_int *corr_set_db_ok(corr_set_t *s);
/* What a batch split between workers returns, from the n shares' codes: 0 when every
 * share committed; CWPP_ETRANSIENT when any share failed otherwise than CWPP_EDATA (the
 * whole batch is retried first); else CWPP_EDATA. *which is the share whose code and
 * message stand for the batch (-1 when 0 is returned). Pure. */
int corr_combine_rc(const int *rcs, size_t n, int *which);
/* The loop's batch callback: splits the batch between the workers and runs the shares
 * at once; the outputs reach out only when every share committed. Returns as
 * corr_combine_rc (a share that committed stays committed: a retry finds its records
 * applied, the fence). */
int         corr_set_batch(void *opaque, rd_kafka_message_t **msgs, size_t n,
                           cwpp_outbox_t *out, char *errstr, size_t errstr_size);

#endif /* CWPP_CORR_INTERNAL_H */
