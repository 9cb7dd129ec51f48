/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.c: the ingest service's batch.
 *
 * Workload: a steady stream of small JSON alerts (hundreds of bytes to a few KiB), in
 * bursts, with many recurrences of the same alert. One consumed batch becomes:
 *
 *   1. parse + validate + normalize every record (libs/alert); a bad record becomes a
 *      RejectedRecord with its original bytes and reason; an occurred_at older than
 *      ingest.max.age.s or later than ingest.max.future.s ahead is replaced by the batch's
 *      receive time, the given one kept (counted and logged once the batch is applied);
 *   2. one PostgreSQL transaction, sent in pipelined chunks (one round trip per chunk,
 *      not per alert): lock this group's consumer_offsets rows for the batch's
 *      partitions (libs/fence), upsert each alert not yet applied (offset >=
 *      next_offset), advance next_offset, commit. The upsert is keyed by the stable
 *      alert id, so a recurrence moves last_seen and adds one occurrence; the offsets
 *      rows make a redelivered record (after a crash before the Kafka commit) a no-op,
 *      so occurrences are counted exactly once;
 *   3. an Alert record per good record (carrying the row's status, first/last seen and
 *      occurrence count) to alerts.normalized keyed by account id, and the rejects to
 *      alerts.rejected. The loop then waits for acknowledgement and commits offsets.
 *
 * If the server refuses one record's data (it should not: validation comes first) the
 * batch is applied again one record at a time under savepoints and that record is
 * dead-lettered, so one poison record never stalls the partition.
 */
#include "ingest.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cwpp_alert.h"
#include "cwpp_avro.h"
#include "cwpp_fence.h"
#include "cwpp_log.h"
#include "cwpp_pg.h"

const cwpp_conf_prop_t ingest_props[] = {
    CWPP_COMMON_PROPS(ingest_conf_t, common, "ingest", "8081"),
    {"ingest.max.message.bytes", CWPP_CONF_INT, offsetof(ingest_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0, "Records larger than this are rejected as oversized."},
    {"ingest.adapter.account.id", CWPP_CONF_STR, offsetof(ingest_conf_t, adapter_account_id),
     "", 0, 0, 0,
     "Account for Falco/Wazuh alerts that carry none (empty: such alerts are rejected)."},
    {"ingest.max.future.s", CWPP_CONF_INT, offsetof(ingest_conf_t, max_future_s), "3600", 0,
     31536000, 0, "occurred_at later than now plus this many seconds is replaced by the time "
     "ingest received the alert; the given time is kept as original_occurred_at."},
    {"ingest.max.age.s", CWPP_CONF_INT, offsetof(ingest_conf_t, max_age_s), "15552000", 0,
     3153600000LL, 0, "occurred_at older than this many seconds (default 180 days, the events' "
     "retention.days) is replaced by the time ingest received the alert, so its event is "
     "listed and not deleted by retention at once; the given time is kept as "
     "original_occurred_at. 0: only times before 1970 are."},
    {"ingest.chunk", CWPP_CONF_INT, offsetof(ingest_conf_t, chunk), "250", 1, 100000, 0,
     "Records parsed and sent to the database per statement; the server applies one chunk "
     "while the next is parsed."},
};
const size_t ingest_nprops = sizeof(ingest_props) / sizeof(ingest_props[0]);

/* One consumed record and what became of it. */
typedef struct item {
    rd_kafka_message_t *m;
    int                 ok;          /* parsed and valid */
    int                 apply;       /* its effect is not in the database yet */
    size_t              next_same;   /* next applied item of the same alert, or SIZE_MAX */
    size_t              rank;        /* 0-based position among this batch's same alerts */
    size_t              group_size;  /* applied items of this alert in the batch (on the first) */
    cwpp_alert_t        alert;
    const char         *code;        /* reject reason code */
    char                reason[400]; /* reject sentence */
} item_t;

struct ingest {
    const ingest_conf_t *conf;
    cwpp_pg_t           *pg;
    PGconn              *prepared_on; /* connection the statements are prepared on */
    cwpp_avro_type_t    *t_alert, *t_rejected;
    avro_value_t         v_alert, v_rejected;
    int                  have_values;
    cwpp_buf_t           buf;
    item_t              *items;
    size_t               items_cap;
    size_t               batch_n;     /* items in the current batch */
    cwpp_buf_t           rows;        /* the batch's rows as JSON text */
    size_t              *firsts;      /* scratch: first item of each alert */
    cwpp_fence_t        *fence;       /* the batch's partitions and their offsets */
    atomic_int           db_ok;
    cwpp_metrics_t      *metrics;
    cwpp_metric_t       *m_new, *m_recur, *m_redelivered, *m_db_seconds, *m_db_errors;
    cwpp_metric_t       *m_adj_old, *m_adj_future; /* occurred_at replaced */
};

/* One statement per batch: the rows arrive as one JSON array (no per-row round trip,
 * no per-row executor start-up); duplicates of an alert within the batch are folded
 * into one row with its count before sending, since ON CONFLICT may touch a row once. */
static const char SQL_UPSERT_BATCH[] =
    "INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, severity, source, "
    "input_format, source_alert_id, asset_id, asset, attack_tactic, attack_technique, defense, "
    "file, process, remote_ip, logon, details, entities, status, first_seen, last_seen, "
    "occurrences, ingested_at, updated_at, original_occurred_at) "
    "SELECT alert_id, dedup_key, account_id, name, type, severity, source, input_format, "
    "source_alert_id, asset_id, asset, attack_tactic, attack_technique, defense, file, process, "
    "remote_ip, logon, details, entities, status, to_timestamp(first_ms / 1000.0), "
    "to_timestamp(last_ms / 1000.0), n, to_timestamp(ingested_ms / 1000.0), now(), "
    "to_timestamp(original_ms / 1000.0) "
    "FROM jsonb_to_recordset($1::jsonb) AS x(alert_id text, dedup_key text, account_id text, "
    "name text, type text, severity text, source text, input_format text, source_alert_id text, "
    "asset_id text, asset jsonb, attack_tactic text, attack_technique text, defense text, "
    "file jsonb, process jsonb, remote_ip text, logon jsonb, details jsonb, entities jsonb, "
    "status text, first_ms bigint, last_ms bigint, n bigint, ingested_ms bigint, "
    "original_ms bigint) "
    "ON CONFLICT (alert_id) DO UPDATE SET "
    "first_seen = LEAST(alerts.first_seen, EXCLUDED.first_seen), "
    "last_seen = GREATEST(alerts.last_seen, EXCLUDED.last_seen), "
    "occurrences = alerts.occurrences + EXCLUDED.occurrences, updated_at = now(), "
    "original_occurred_at = COALESCE(EXCLUDED.original_occurred_at, "
    "alerts.original_occurred_at) "
    "RETURNING alert_id, status, (extract(epoch FROM first_seen) * 1000)::bigint, "
    "(extract(epoch FROM last_seen) * 1000)::bigint, occurrences";
static const char SQL_STATE[] =
    "SELECT status, (extract(epoch FROM first_seen) * 1000)::bigint, "
    "(extract(epoch FROM last_seen) * 1000)::bigint, occurrences "
    "FROM alerts WHERE alert_id = $1";

ingest_t *ingest_new(const ingest_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                     size_t errstr_size)
{
    ingest_t *in = calloc(1, sizeof(*in));

    if (in == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    in->conf = conf;
    in->metrics = metrics;
    in->t_alert = cwpp_avro_type_builtin("alert", errstr, errstr_size);
    if (in->t_alert == NULL)
        goto fail;
    in->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size);
    if (in->t_rejected == NULL)
        goto fail;
    if (cwpp_avro_value_new(in->t_alert, &in->v_alert) != CWPP_OK)
        goto oom;
    if (cwpp_avro_value_new(in->t_rejected, &in->v_rejected) != CWPP_OK) {
        avro_value_decref(&in->v_alert);
        goto oom;
    }
    in->have_values = 1;
    in->fence = cwpp_fence_new(conf->common.group_id, errstr, errstr_size);
    if (in->fence == NULL)
        goto fail;
    in->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-ingest");
    if (in->pg == NULL)
        goto oom;
    in->m_new = cwpp_counter(metrics, "cwpp_ingest_alerts_total{result=\"new\"}",
                             "Valid alerts by effect: a new alert or a recurrence of one.");
    in->m_recur = cwpp_counter(metrics, "cwpp_ingest_alerts_total{result=\"recurrence\"}",
                               "Valid alerts by effect: a new alert or a recurrence of one.");
    in->m_redelivered = cwpp_counter(metrics, "cwpp_ingest_redelivered_total",
                                     "Records redelivered after a restart whose effect was "
                                     "already stored (not applied twice).");
    in->m_adj_old = cwpp_counter(metrics,
                                 "cwpp_ingest_occurred_at_adjusted_total{reason=\"too_old\"}",
                                 "Alerts whose occurred_at was replaced by the time ingest "
                                 "received them (docs/alert-format.md), by reason.");
    in->m_adj_future = cwpp_counter(metrics,
                                    "cwpp_ingest_occurred_at_adjusted_total{reason=\"future\"}",
                                    "Alerts whose occurred_at was replaced by the time ingest "
                                    "received them (docs/alert-format.md), by reason.");
    in->m_db_errors = cwpp_counter(metrics, "cwpp_ingest_db_errors_total",
                                   "Batch transactions that failed and were retried.");
    {
        static const double b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
        in->m_db_seconds = cwpp_histogram(metrics, "cwpp_ingest_db_seconds",
                                          "Time of one batch's database transaction.", b,
                                          sizeof(b) / sizeof(b[0]));
    }
    return in;
oom:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
fail:
    ingest_destroy(in);
    return NULL;
}

void ingest_destroy(ingest_t *in)
{
    size_t i;

    if (in == NULL)
        return;
    for (i = 0; i < in->items_cap; i++)
        cwpp_alert_clear(&in->items[i].alert);
    free(in->items);
    free(in->firsts);
    if (in->have_values) {
        avro_value_decref(&in->v_alert);
        avro_value_decref(&in->v_rejected);
    }
    cwpp_avro_type_destroy(in->t_alert);
    cwpp_avro_type_destroy(in->t_rejected);
    cwpp_pg_destroy(in->pg);
    cwpp_fence_destroy(in->fence);
    cwpp_buf_free(&in->buf);
    cwpp_buf_free(&in->rows);
    free(in);
}

/* ------------------------------------------------------------------ rejection */

static void reject(ingest_t *in, item_t *it, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reject(ingest_t *in, item_t *it, const char *code, const char *fmt, ...)
{
    va_list ap;

    (void)in;
    it->ok = 0;
    it->apply = 0;
    it->code = code;
    va_start(ap, fmt);
    vsnprintf(it->reason, sizeof(it->reason), fmt, ap);
    va_end(ap);
}

/* Counts a rejection once its batch is applied (a retried batch is not counted twice). */
static void count_reject(ingest_t *in, const char *code)
{
    char name[160];

    snprintf(name, sizeof(name), "cwpp_ingest_rejected_total{reason=\"%s\"}", code);
    cwpp_metric_add(cwpp_counter(in->metrics, name, "Records rejected to the dead-letter topic, "
                                 "by reason."), 1);
}

/* Counts and logs an alert whose occurred_at was replaced (once its batch is applied). */
static void note_adjusted(ingest_t *in, const item_t *it)
{
    const cwpp_alert_t *a = &it->alert;
    char                orig[40], now[40];
    int                 future = a->original_occurred_at_ms > a->occurred_at_ms;

    cwpp_metric_add(future ? in->m_adj_future : in->m_adj_old, 1);
    cwpp_warn("occurred_at_adjusted", "alert %s (account %.128s, asset %.256s, source %.128s) at "
              "%s[%d]@%lld: occurred_at %s is %s; stored with the receive time %s, the given "
              "time kept as original_occurred_at", a->alert_id, a->account_id, a->asset.id,
              a->source, rd_kafka_topic_name(it->m->rkt), (int)it->m->partition,
              (long long)it->m->offset,
              a->original_occurred_at_ms < 0 ? "before 1970"
                  : cwpp_format_time_ms(a->original_occurred_at_ms, orig, sizeof(orig)),
              future ? "further in the future than ingest.max.future.s"
                     : "older than ingest.max.age.s",
              cwpp_format_time_ms(a->occurred_at_ms, now, sizeof(now)));
}

/* ------------------------------------------------------------------- database */

static int prepare(ingest_t *in, char *errstr, size_t errstr_size)
{
    PGconn   *c = cwpp_pg_conn(in->pg);
    static const cwpp_pg_named_t stmts[] = {
        {"state", SQL_STATE}, {"upsert_batch", SQL_UPSERT_BATCH},
    };
    int       rc;

    if (in->prepared_on == c)
        return CWPP_OK;
    if ((rc = cwpp_fence_prepare(in->pg, errstr, errstr_size)) != CWPP_OK)
        return rc == CWPP_EDATA ? CWPP_ETRANSIENT : rc;
    rc = cwpp_pg_prepare(in->pg, stmts, sizeof(stmts) / sizeof(stmts[0]), errstr, errstr_size);
    if (rc != CWPP_OK)
        return rc == CWPP_EDATA ? CWPP_ETRANSIENT : rc;
    in->prepared_on = c;
    return CWPP_OK;
}

/* Reads the row state (status, first, last, occurrences) of a RETURNING/SELECT result. */
static void read_state(const PGresult *r, cwpp_alert_t *a)
{
    cwpp_alert_status_t st;

    if (PQntuples(r) < 1)
        return;
    if (cwpp_status_parse(PQgetvalue(r, 0, 0), &st) == 0)
        a->status = st;
    a->first_seen_ms = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    a->last_seen_ms = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    a->occurrences = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
}

/* A pipelined statement whose result the reader must route. */
typedef enum { Q_CMD, Q_LOCK, Q_BATCH } qkind_t;
typedef struct qref {
    qkind_t kind;
    size_t  idx; /* chunk start (Q_BATCH) */
    size_t  end; /* chunk end (Q_BATCH) */
} qref_t;

/* Links the applied items of each alert (same alert_id) in batch order and ranks them.
 * Returns the number of distinct alerts. O(n^2) worst case over at most
 * batch.max.messages items, but the inner loop stops at the first match per group. */
static size_t group_items(ingest_t *in, size_t from, size_t to, size_t *firsts)
{
    size_t i, g, ngroups = 0;

    for (i = from; i < to; i++) {
        item_t *it = &in->items[i];

        it->next_same = SIZE_MAX;
        if (!it->apply)
            continue;
        for (g = 0; g < ngroups; g++)
            if (strcmp(in->items[firsts[g]].alert.alert_id, it->alert.alert_id) == 0)
                break;
        if (g == ngroups) {
            firsts[ngroups++] = i;
            it->rank = 0;
            it->group_size = 1;
        } else {
            item_t *head = &in->items[firsts[g]], *last = head;
            while (last->next_same != SIZE_MAX)
                last = &in->items[last->next_same];
            last->next_same = i;
            it->rank = head->group_size++;
        }
    }
    return ngroups;
}

/* JSON text writers for batch_rows: direct appends, no intermediate trees (the string
 * escaping and numbers are libs/util's, shared with the correlator). */
static void jstr(cwpp_buf_t *b, const char *s)
{
    cwpp_buf_json_str(b, s);
}

static void jkey(cwpp_buf_t *b, const char *k, int first)
{
    if (!first)
        cwpp_buf_append(b, ",", 1);
    cwpp_buf_append(b, "\"", 1);
    cwpp_buf_append(b, k, strlen(k));
    cwpp_buf_append(b, "\":", 2);
}

static void jkv(cwpp_buf_t *b, const char *k, const char *v)
{
    jkey(b, k, 0);
    jstr(b, v);
}

static void jint(cwpp_buf_t *b, const char *k, int64_t v)
{
    jkey(b, k, 0);
    cwpp_buf_i64(b, v);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return cwpp_buf_append(data, buffer, size) == CWPP_OK ? 0 : -1;
}

/* The batch's rows as one JSON array for jsonb_to_recordset, one row per alert, in
 * in->rows (NUL-terminated). Returns 0 or CWPP_ENOMEM. */
static int batch_rows(ingest_t *in, const size_t *firsts, size_t ngroups)
{
    cwpp_buf_t *b = &in->rows;
    size_t      g, e;

    cwpp_buf_reset(b);
    cwpp_buf_append(b, "[", 1);
    for (g = 0; g < ngroups; g++) {
        item_t             *head = &in->items[firsts[g]], *x;
        const cwpp_alert_t *a = &head->alert;
        int64_t             first = a->occurred_at_ms, last = a->occurred_at_ms;
        const cwpp_alert_t *orig = a->has_original_occurred_at ? a : NULL;

        for (x = head; x->next_same != SIZE_MAX; ) {
            x = &in->items[x->next_same];
            if (x->alert.occurred_at_ms < first)
                first = x->alert.occurred_at_ms;
            if (x->alert.occurred_at_ms > last)
                last = x->alert.occurred_at_ms;
            if (x->alert.has_original_occurred_at)
                orig = &x->alert; /* the latest replaced one of the batch */
        }
        cwpp_buf_append(b, g == 0 ? "{" : ",{", g == 0 ? 1 : 2);
        jkey(b, "alert_id", 1);
        jstr(b, a->alert_id);
        jkv(b, "dedup_key", a->dedup_key);
        jkv(b, "account_id", a->account_id);
        jkv(b, "name", a->name);
        jkv(b, "type", a->type);
        jkv(b, "severity", cwpp_severity_name(a->severity));
        jkv(b, "source", a->source);
        jkv(b, "input_format", cwpp_format_name(a->format));
        jkv(b, "source_alert_id", a->source_alert_id);
        jkv(b, "asset_id", a->asset.id);
        jkey(b, "asset", 0);
        cwpp_buf_append(b, "{", 1);
        jkey(b, "id", 1);
        jstr(b, a->asset.id);
        if (a->asset.name)
            jkv(b, "name", a->asset.name);
        if (a->asset.ip)
            jkv(b, "ip", a->asset.ip);
        if (a->asset.public_ip)
            jkv(b, "public_ip", a->asset.public_ip);
        if (a->asset.role)
            jkv(b, "role", a->asset.role);
        cwpp_buf_append(b, "}", 1);
        jkv(b, "attack_tactic", a->tactic);
        jkv(b, "attack_technique", a->technique);
        jkv(b, "defense", cwpp_defense_name(a->defense));
        if (a->file.path || a->file.md5 || a->file.sha256) {
            jkey(b, "file", 0);
            cwpp_buf_append(b, "{", 1);
            jkey(b, "path", 1);
            jstr(b, a->file.path);
            jkv(b, "md5", a->file.md5);
            jkv(b, "sha256", a->file.sha256);
            cwpp_buf_append(b, "}", 1);
        }
        if (a->process.has_pid || a->process.path || a->process.cmdline || a->process.user) {
            jkey(b, "process", 0);
            cwpp_buf_append(b, "{", 1);
            jkey(b, "path", 1);
            jstr(b, a->process.path);
            if (a->process.has_pid)
                jint(b, "pid", a->process.pid);
            jkv(b, "cmdline", a->process.cmdline);
            jkv(b, "user", a->process.user);
            cwpp_buf_append(b, "}", 1);
        }
        jkv(b, "remote_ip", a->remote_ip);
        if (a->logon.ip || a->logon.user) {
            jkey(b, "logon", 0);
            cwpp_buf_append(b, "{", 1);
            jkey(b, "ip", 1);
            jstr(b, a->logon.ip);
            jkv(b, "user", a->logon.user);
            cwpp_buf_append(b, "}", 1);
        }
        jkey(b, "details", 0);
        if (json_dump_callback(a->details, dump_cb, b, JSON_COMPACT) != 0)
            return CWPP_ENOMEM;
        jkey(b, "entities", 0);
        cwpp_buf_append(b, "[", 1);
        for (e = 0; e < a->n_entities; e++) {
            cwpp_buf_append(b, e == 0 ? "{" : ",{", e == 0 ? 1 : 2);
            jkey(b, "type", 1);
            jstr(b, cwpp_entity_type_name(a->entities[e].type));
            jkv(b, "value", a->entities[e].value);
            if (a->entities[e].asset_id)
                jkv(b, "asset_id", a->entities[e].asset_id);
            cwpp_buf_append(b, "}", 1);
        }
        cwpp_buf_append(b, "]", 1);
        jkv(b, "status", cwpp_status_name(a->status));
        jint(b, "first_ms", first);
        jint(b, "last_ms", last);
        jint(b, "n", (int64_t)head->group_size);
        jint(b, "ingested_ms", a->ingested_at_ms);
        if (orig != NULL)
            jint(b, "original_ms", orig->original_occurred_at_ms);
        cwpp_buf_append(b, "}", 1);
    }
    cwpp_buf_append(b, "]", 2); /* with the terminating NUL */
    /* An append can only fail for memory; check once: the buffer must end as written. */
    if (b->len < 2 || b->data[b->len - 2] != ']')
        return CWPP_ENOMEM;
    return CWPP_OK;
}

/* Spreads the RETURNING rows over the items: every occurrence carries the row's state,
 * and its own running count (the k-th of c in this batch has final - (c - 1 - k)). */
static void batch_states(ingest_t *in, const PGresult *r, size_t from, size_t to)
{
    int    row;
    size_t i;

    for (row = 0; row < PQntuples(r); row++) {
        const char         *id = PQgetvalue(r, row, 0);
        cwpp_alert_status_t st = CWPP_ST_UNHANDLED;
        int64_t             first = strtoll(PQgetvalue(r, row, 2), NULL, 10);
        int64_t             last = strtoll(PQgetvalue(r, row, 3), NULL, 10);
        int64_t             occ = strtoll(PQgetvalue(r, row, 4), NULL, 10);

        cwpp_status_parse(PQgetvalue(r, row, 1), &st);
        for (i = from; i < to; i++) {
            item_t *head = &in->items[i], *x;

            if (!head->apply || head->rank != 0 || strcmp(head->alert.alert_id, id) != 0)
                continue;
            for (x = head;; x = &in->items[x->next_same]) {
                x->alert.status = st;
                x->alert.first_seen_ms = first;
                x->alert.last_seen_ms = last;
                x->alert.occurrences = occ - (int64_t)(head->group_size - 1 - x->rank);
                if (x->next_same == SIZE_MAX)
                    break;
            }
            break;
        }
    }
}

/* Sends the queued statements' sync and reads every result in order. */
static int pipeline_read(ingest_t *in, const qref_t *q, size_t nq, char *errstr,
                         size_t errstr_size)
{
    PGconn   *c = cwpp_pg_conn(in->pg);
    PGresult *r;
    size_t    i;
    int       rc = CWPP_OK;

    if (PQpipelineSync(c) != 1)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "pipeline sync: %s",
                           PQerrorMessage(c));
    for (i = 0; i < nq; i++) {
        ExecStatusType want = q[i].kind == Q_CMD ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
        int            qrc;

        r = PQgetResult(c);
        if (r == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "pipeline ended early: %s",
                               PQerrorMessage(c));
        qrc = PQresultStatus(r) == PGRES_PIPELINE_ABORTED ? CWPP_ETRANSIENT
              : cwpp_pg_check(in->pg, r, want, q[i].kind == Q_BATCH ? "upsert alerts"
                                                : q[i].kind == Q_LOCK ? "lock offsets"
                                                                      : "statement",
                              rc == CWPP_OK ? errstr : NULL, errstr_size);
        if (qrc == CWPP_OK && q[i].kind == Q_LOCK)
            qrc = cwpp_fence_read(in->fence, r, rc == CWPP_OK ? errstr : NULL, errstr_size);
        else if (qrc == CWPP_OK && q[i].kind == Q_BATCH)
            batch_states(in, r, q[i].idx, q[i].end);
        if (qrc != CWPP_OK && (rc == CWPP_OK || qrc == CWPP_EDATA))
            rc = qrc; /* a data error outranks the aborts it causes */
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL) /* the NULL that ends each query */
            PQclear(r);
    }
    r = PQgetResult(c); /* PGRES_PIPELINE_SYNC */
    if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return rc != CWPP_OK ? rc : cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                                                "pipeline lost its sync");
    }
    PQclear(r);
    return rc;
}

static int send_params(PGconn *c, const char *stmt, int n, const char *const *v)
{
    return PQsendQueryPrepared(c, stmt, n, v, NULL, NULL, 0);
}

/* Queues the set-based upsert of in->rows. Test hook: when the fault point
 * "pg_upsert_data" fires, a statement the server really refuses with a data error
 * (division by zero, SQLSTATE 22012) goes instead, so the transaction aborts exactly as
 * it would for a refused row. */
static void send_upsert(ingest_t *in, PGconn *c)
{
    const char *v[1] = {(const char *)in->rows.data};

    if (cwpp_fault_hit("pg_upsert_data"))
        PQsendQueryParams(c, "SELECT 1 / 0", 0, NULL, NULL, NULL, NULL, 0);
    else
        send_params(c, "upsert_batch", 1, v);
}

/* Validates and normalizes items [from, to) of the batch (libs/alert). */
static int parse_range(ingest_t *in, size_t from, size_t to, const cwpp_alert_opts_t *opts)
{
    size_t i;
    char   reason[400];
    int    rc;

    for (i = from; i < to; i++) {
        item_t             *it = &in->items[i];
        rd_kafka_message_t *m = it->m;

        cwpp_alert_clear(&it->alert);
        it->ok = 0;
        it->apply = 0;
        it->code = NULL;
        it->reason[0] = '\0';
        if (m->len > (size_t)in->conf->max_message_bytes) {
            reject(in, it, "oversized", "record is %zu bytes, larger than "
                   "ingest.max.message.bytes (%lld)", m->len,
                   (long long)in->conf->max_message_bytes);
            continue;
        }
        if (m->len == 0 || m->payload == NULL) {
            reject(in, it, "invalid_json", "record is empty");
            continue;
        }
        rc = cwpp_alert_from_json(m->payload, m->len, opts, &it->alert, &it->code, reason,
                                  sizeof(reason));
        if (rc == CWPP_ENOMEM)
            return CWPP_ENOMEM;
        if (rc != CWPP_OK) {
            reject(in, it, it->code != NULL ? it->code : "invalid", "%s", reason);
            continue;
        }
        it->ok = 1;
    }
    return CWPP_OK;
}

/* Marks the valid items [from, to) whose offset is not yet applied in the database. */
static void decide_apply(ingest_t *in, size_t from, size_t to)
{
    size_t i;

    for (i = from; i < to; i++)
        in->items[i].apply = in->items[i].ok && !cwpp_fence_applied(in->fence, i);
}

/* Applies the batch in one transaction. With opts, records are parsed chunk by chunk as
 * they are sent (else they were parsed before). isolate = one record at a time under
 * savepoints, dead-lettering records the server refuses. */
static int apply_batch(ingest_t *in, size_t n, int isolate, const cwpp_alert_opts_t *opts,
                       char *errstr, size_t errstr_size)
{
    PGconn        *c = cwpp_pg_conn(in->pg);
    qref_t        *q = NULL;
    size_t         nq = 0, i;
    int            rc;
    cwpp_pg_stmt_t fq[CWPP_FENCE_LOCK_NSTMTS];

    /* at most: the chunks, then the offsets and COMMIT (other round trips hold fewer) */
    q = malloc(sizeof(*q) * (8 + n / (size_t)in->conf->chunk + 1));
    if (q == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    if ((rc = cwpp_fence_lock_stmts(in->fence, fq, NULL, errstr, errstr_size)) != CWPP_OK) {
        free(q);
        return rc;
    }
    if (PQenterPipelineMode(c) != 1) {
        free(q);
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot enter pipeline mode");
    }
    /* Round trip 1: BEGIN, make sure offset rows exist, lock them and read next_offset. */
    PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    q[nq++] = (qref_t){Q_CMD, 0, 0};
    send_params(c, fq[0].stmt, fq[0].n, fq[0].v);
    q[nq++] = (qref_t){Q_CMD, 0, 0};
    send_params(c, fq[1].stmt, fq[1].n, fq[1].v);
    q[nq++] = (qref_t){Q_LOCK, 0, 0};
    rc = pipeline_read(in, q, nq, errstr, errstr_size);
    nq = 0;
    if (rc != CWPP_OK)
        goto out;

    /* Normal case: parse a chunk, send its set-based upsert down the pipeline, and parse
     * the next chunk while the server applies it; replies are drained as they arrive so
     * neither side can block the other on a full socket. Then offsets and COMMIT. */
    if (!isolate) {
        size_t from, to, chunk = (size_t)in->conf->chunk;

        for (from = 0; from < n; from = to) {
            size_t ngroups;

            to = from + chunk < n ? from + chunk : n;
            if (opts != NULL && parse_range(in, from, to, opts) != CWPP_OK) {
                rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
                goto out;
            }
            decide_apply(in, from, to);
            ngroups = group_items(in, from, to, in->firsts);
            if (ngroups == 0)
                continue;
            if (batch_rows(in, in->firsts, ngroups) != CWPP_OK) {
                rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
                goto out;
            }
            send_upsert(in, c);
            q[nq++] = (qref_t){Q_BATCH, from, to};
            if (PQflush(c) != 0 || PQconsumeInput(c) != 1) {
                rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "sending rows: %s",
                                 PQerrorMessage(c));
                goto out;
            }
        }
        goto offsets;
    }
    decide_apply(in, 0, n);

    /* Isolation: one record at a time under a savepoint (the same statement with a
     * one-row document), dead-lettering the records the server refuses. */
    for (i = 0; i < n; i++) {
        item_t *it = &in->items[i];

        if (!it->apply)
            continue;
        if (group_items(in, i, i + 1, in->firsts) != 1 ||
            batch_rows(in, in->firsts, 1) != CWPP_OK) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
        PQsendQueryParams(c, "SAVEPOINT one", 0, NULL, NULL, NULL, NULL, 0);
        q[nq++] = (qref_t){Q_CMD, i, 0};
        send_upsert(in, c);
        q[nq++] = (qref_t){Q_BATCH, i, i + 1};
        rc = pipeline_read(in, q, nq, errstr, errstr_size);
        nq = 0;
        if (rc == CWPP_EDATA) {
            reject(in, it, "db_refused", "the database refused the alert: %s", errstr);
            PQsendQueryParams(c, "ROLLBACK TO SAVEPOINT one", 0, NULL, NULL, NULL, NULL, 0);
            q[nq++] = (qref_t){Q_CMD, 0, 0};
            rc = pipeline_read(in, q, nq, errstr, errstr_size);
            nq = 0;
        }
        if (rc != CWPP_OK)
            goto out;
    }

offsets:
    /* Last round trip: advance the offsets, commit. */
    cwpp_fence_advance_stmt(in->fence, &fq[0]);
    send_params(c, fq[0].stmt, fq[0].n, fq[0].v);
    q[nq++] = (qref_t){Q_CMD, 0, 0};
    PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    q[nq++] = (qref_t){Q_CMD, 0, 0};
    rc = pipeline_read(in, q, nq, errstr, errstr_size);
    nq = 0;
out:
    if (rc != CWPP_OK && PQstatus(c) == CONNECTION_OK) {
        /* Leave the connection clean: roll back whatever is open. */
        PQsendQueryParams(c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
        q[0] = (qref_t){Q_CMD, 0, 0};
        pipeline_read(in, q, 1, NULL, 0);
    }
    PQexitPipelineMode(c);
    free(q);
    return rc;
}

/* Reads the stored state of alerts whose record was a redelivery (not applied now). */
static int read_skipped_states(ingest_t *in, size_t n, char *errstr, size_t errstr_size)
{
    PGconn *c = cwpp_pg_conn(in->pg);
    size_t  i;

    for (i = 0; i < n; i++) {
        item_t     *it = &in->items[i];
        const char *v[1];
        PGresult   *r;
        int         rc;

        if (!it->ok || it->apply)
            continue;
        cwpp_metric_add(in->m_redelivered, 1);
        v[0] = it->alert.alert_id;
        r = PQexecPrepared(c, "state", 1, v, NULL, NULL, 0);
        rc = cwpp_pg_check(in->pg, r, PGRES_TUPLES_OK, "read alert", errstr, errstr_size);
        if (rc == CWPP_OK)
            read_state(r, &it->alert);
        PQclear(r);
        if (rc != CWPP_OK)
            return rc == CWPP_EDATA ? CWPP_ETRANSIENT : rc;
    }
    return CWPP_OK;
}

/* ---------------------------------------------------------------------- batch */

static int ensure_items(ingest_t *in, size_t n)
{
    item_t *ni;

    if (n <= in->items_cap)
        return CWPP_OK;
    ni = realloc(in->items, n * sizeof(*ni));
    if (ni == NULL)
        return CWPP_ENOMEM;
    free(in->firsts);
    in->firsts = malloc(n * sizeof(*in->firsts));
    if (in->firsts == NULL) {
        in->items = ni;
        return CWPP_ENOMEM;
    }
    memset(ni + in->items_cap, 0, (n - in->items_cap) * sizeof(*ni));
    in->items = ni;
    in->items_cap = n;
    return CWPP_OK;
}

static int emit(ingest_t *in, size_t n, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    size_t i;
    int    rc;

    for (i = 0; i < n; i++) {
        item_t *it = &in->items[i];

        cwpp_buf_reset(&in->buf);
        if (it->ok) {
            rc = cwpp_alert_to_avro(&it->alert, in->t_alert, &in->v_alert, &in->buf, errstr,
                                    errstr_size);
            if (rc != CWPP_OK)
                return rc == CWPP_EINVAL ? CWPP_ETRANSIENT : rc;
            rc = cwpp_outbox_add(out, CWPP_TOPIC_ALERTS_NORMALIZED, it->alert.account_id,
                                 strlen(it->alert.account_id), in->buf.data, in->buf.len);
        } else {
            rc = cwpp_service_dead_letter(in->t_rejected, &in->v_rejected, &in->buf, "ingest",
                                          it->m, it->code != NULL ? it->code : "invalid",
                                          it->reason, out, errstr, errstr_size);
            if (rc != CWPP_OK)
                return rc;
        }
        if (rc != CWPP_OK)
            return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    }
    return CWPP_OK;
}

int ingest_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                 char *errstr, size_t errstr_size)
{
    ingest_t         *in = opaque;
    cwpp_alert_opts_t opts;
    size_t            i;
    int               rc;
    int64_t           t0, t_db;

    if (ensure_items(in, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    opts.adapter_account_id = in->conf->adapter_account_id;
    opts.now_ms = cwpp_now_ms();
    opts.max_future_ms = in->conf->max_future_s * 1000;
    opts.max_age_ms = in->conf->max_age_s * 1000;

    in->batch_n = n;
    for (i = 0; i < n; i++) {
        cwpp_alert_clear(&in->items[i].alert);
        in->items[i].m = msgs[i];
        in->items[i].ok = 0;
    }
    if ((rc = cwpp_fence_batch(in->fence, msgs, n, errstr, errstr_size)) != CWPP_OK)
        return rc;

    /* 2. one transaction */
    t0 = cwpp_mono_ms();
    if ((rc = cwpp_pg_ensure(in->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = prepare(in, errstr, errstr_size)) != CWPP_OK)
        goto db_fail;
    /* 1 + 2. validate and normalize, chunk by chunk, overlapping the transaction */
    rc = apply_batch(in, n, 0, &opts, errstr, errstr_size);
    if (rc == CWPP_EDATA) {
        cwpp_warn("db_data_error", "the database refused a record (%s); applying the batch "
                  "record by record to dead-letter it", errstr);
        rc = apply_batch(in, n, 1, NULL, errstr, errstr_size);
    }
    if (rc == CWPP_OK)
        rc = read_skipped_states(in, n, errstr, errstr_size);
    if (rc != CWPP_OK)
        goto db_fail;
    atomic_store(&in->db_ok, 1);
    cwpp_metric_observe(in->m_db_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    for (i = 0; i < n; i++) {
        if (in->items[i].ok && in->items[i].apply) {
            cwpp_metric_add(in->items[i].alert.occurrences > 1 ? in->m_recur : in->m_new, 1);
            if (in->items[i].alert.has_original_occurred_at)
                note_adjusted(in, &in->items[i]);
        } else if (!in->items[i].ok) {
            count_reject(in, in->items[i].code != NULL ? in->items[i].code : "invalid");
        }
    }

    /* 3. outputs */
    t_db = cwpp_mono_ms() - t0;
    rc = emit(in, n, out, errstr, errstr_size);
    cwpp_debug("batch_applied", "batch of %zu: parse and database %lld ms, encode %lld ms", n,
               (long long)t_db, (long long)(cwpp_mono_ms() - t0 - t_db));
    return rc;
db_fail:
    atomic_store(&in->db_ok, 0);
    cwpp_metric_add(in->m_db_errors, 1);
    if (PQstatus(cwpp_pg_conn(in->pg)) != CONNECTION_OK || rc == CWPP_ETRANSIENT)
        cwpp_pg_reset(in->pg);
    in->prepared_on = NULL;
    return rc == CWPP_ECONFIG ? CWPP_ETRANSIENT : rc;
}

/* ---------------------------------------------------------------------- run */

int ingest_run(const void *confp, const cwpp_service_env_t *env)
{
    const ingest_conf_t  *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ALERTS_RAW};
    ingest_t             *in;
    char                  errstr[512];
    int                   rc, backoff = 200;

    in = ingest_new(conf, env->metrics, errstr, sizeof(errstr));
    if (in == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 2;
    }
    /* Wait for the database before consuming anything (a bad DSN stops start-up). */
    while (!cwpp_service_stopping()) {
        rc = cwpp_pg_ensure(in->pg, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = prepare(in, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            break;
        if (rc == CWPP_ECONFIG) {
            cwpp_error("config_error", "%s", errstr);
            ingest_destroy(in);
            return 1;
        }
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_service_backoff(&backoff);
    }
    atomic_store(&in->db_ok, 1);

    rc = cwpp_service_run_loop("ingest", &conf->common, env, inputs, 1, ingest_batch, in,
                               &in->db_ok);
    ingest_destroy(in);
    return rc;
}
