/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filter.c: the batch (decode, decide, one transaction, emit), the rules refresher thread
 * and the service's run function. Commands are applied by commands.c.
 *
 * One batch is one transaction: lock this group's consumer_offsets rows of the batch's
 * partitions (libs/fence), read the stored status of the batch's alerts, write status
 * changes, add rule hits (only for records not applied before: exactly-once counts),
 * apply commands, record the highest occurrence decided per alert, move the offsets,
 * commit. Outputs are produced after the commit and the Kafka offsets committed after
 * they are acknowledged (the shared loop), so a crash anywhere redelivers the batch and
 * the redelivery re-emits the same decisions without counting twice. Ingest re-emits alerts too (at new offsets, which the fence cannot
 * recognise); every Alert record carries its occurrence number, and alerts.filtered_seq
 * the highest this service has decided, so a repeated occurrence adds no hit and a record
 * standing for several lost emissions adds them all.
 *
 * Rule changes: every change bumps whitelist_state.version in its transaction. A thread
 * with its own connection polls the version every whitelist.refresh.ms, builds the new
 * ruleset off the loop thread and hands it over; the loop picks it up at its next batch.
 */
#include "filter_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cwpp_log.h"
#include "cwpp_whitelist.h"

const cwpp_conf_prop_t wl_props[] = {
    CWPP_COMMON_PROPS(wl_conf_t, common, "whitelist", "8082"),
    {"whitelist.refresh.ms", CWPP_CONF_INT, offsetof(wl_conf_t, refresh_ms), "250", 10, 60000,
     0, "How often the rules version is checked; a rule change reaches this instance within "
        "about this time plus the time to load the rules."},
    {"whitelist.broad.percent", CWPP_CONF_INT, offsetof(wl_conf_t, broad_percent), "20", 0,
     100, 0, "A new rule that would have suppressed more than this share (percent) of its "
             "alert name's alerts in the preview window needs force."},
    {"whitelist.preview.days", CWPP_CONF_INT, offsetof(wl_conf_t, preview_days), "30", 1, 3650,
     0, "Days of stored alerts a new rule is replayed over before it is created."},
    {"whitelist.regex.match.limit", CWPP_CONF_INT, offsetof(wl_conf_t, regex_match_limit),
     "100000", 1000, 100000000, 0,
     "PCRE2 match limit per regex evaluation; a pattern that needs more gives up (no match)."},
    {"whitelist.regex.depth.limit", CWPP_CONF_INT, offsetof(wl_conf_t, regex_depth_limit),
     "1000", 10, 1000000, 0, "PCRE2 depth limit (backtracking depth) per regex evaluation."},
    {"whitelist.regex.jit.stack.kb", CWPP_CONF_INT, offsetof(wl_conf_t, regex_jit_stack_kb),
     "256", 32, 65536, 0, "Largest JIT stack a regex evaluation may use, in KiB."},
    {"whitelist.max.message.bytes", CWPP_CONF_INT, offsetof(wl_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Input records larger than this go to the dead-letter topic as oversized."},
    {"whitelist.command.max.age.ms", CWPP_CONF_INT, offsetof(wl_conf_t, command_max_age_ms),
     "600000", 1000, 604800000LL, 0, "A whitelist command issued longer ago than this is "
     "refused as stale."},
};
const size_t wl_nprops = sizeof(wl_props) / sizeof(wl_props[0]);

/* ------------------------------------------------------------------ SQL */

static const char SQL_STATUS_READ[] =
    "SELECT alert_id, status, filtered_seq FROM alerts WHERE alert_id = ANY($1::text[])";
/* Guarded by the status read: a concurrent command's change is never overwritten. */
static const char SQL_STATUS_SET[] =
    "UPDATE alerts a SET status = x.st, updated_at = now() "
    "FROM jsonb_to_recordset($1::jsonb) AS x(id text, old text, st text) "
    "WHERE a.alert_id = x.id AND a.status = x.old";
/* Never backwards: a stale or repeated record leaves a higher mark alone. */
static const char SQL_SEQ_SET[] =
    "UPDATE alerts a SET filtered_seq = x.seq "
    "FROM jsonb_to_recordset($1::jsonb) AS x(id text, seq bigint) "
    "WHERE a.alert_id = x.id AND (a.filtered_seq IS NULL OR a.filtered_seq < x.seq)";
static const char SQL_HITS[] =
    "UPDATE whitelist_rules r SET hits = r.hits + u.n, "
    "last_hit_at = GREATEST(r.last_hit_at, now()) "
    "FROM unnest($1::bigint[], $2::bigint[]) AS u(id, n) WHERE r.rule_id = u.id";

static int prepare(wl_t *w, char *errstr, size_t errstr_size)
{
    PGconn *c = cwpp_pg_conn(w->pg);
    static const cwpp_pg_named_t stmts[] = {
        {"status_read", SQL_STATUS_READ}, {"status_set", SQL_STATUS_SET},
        {"seq_set", SQL_SEQ_SET},         {"hits", SQL_HITS},
    };
    int    rc;

    if (w->prepared_on == c)
        return CWPP_OK;
    if ((rc = cwpp_fence_prepare(w->pg, errstr, errstr_size)) != CWPP_OK)
        return rc == CWPP_EDATA ? CWPP_ECONFIG : rc;
    rc = cwpp_pg_prepare(w->pg, stmts, sizeof(stmts) / sizeof(stmts[0]), errstr, errstr_size);
    if (rc != CWPP_OK)
        return rc == CWPP_EDATA ? CWPP_ECONFIG : rc;
    w->prepared_on = c;
    return CWPP_OK;
}

static int exec_prepared(wl_t *w, const char *stmt, int n, const char *const *v,
                         ExecStatusType want, PGresult **res, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexecPrepared(cwpp_pg_conn(w->pg), stmt, n, v, NULL, NULL, 0);
    int       rc = cwpp_pg_check(w->pg, r, want, stmt, errstr, errstr_size);

    if (rc != CWPP_OK || res == NULL)
        PQclear(r);
    else
        *res = r;
    return rc;
}

/* ------------------------------------------------------------- life cycle */

static void *refresher(void *arg);
static void  wl_destroy(wl_t *w);

static wl_t *wl_new(const wl_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                    size_t errstr_size)
{
    wl_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    w->conf = conf;
    w->metrics = metrics;
    pthread_mutex_init(&w->mu, NULL);
    {
        pthread_condattr_t ca; /* the refresher's waits must not follow wall-clock steps */

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    w->limits.match_limit = (uint32_t)conf->regex_match_limit;
    w->limits.depth_limit = (uint32_t)conf->regex_depth_limit;
    w->limits.jit_stack_max = (size_t)conf->regex_jit_stack_kb * 1024;
    if ((w->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-whitelist-filter")) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((w->fence = cwpp_fence_new(conf->common.group_id, errstr, errstr_size)) == NULL)
        goto fail;
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_COMMANDS, w->cmd_topic,
                    sizeof(w->cmd_topic));
    if ((w->t_alert = cwpp_avro_type_builtin("alert", errstr, errstr_size)) == NULL ||
        (w->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size)) ==
            NULL ||
        (w->cmd = wl_commander_new(w, errstr, errstr_size)) == NULL)
        goto fail;
    if (cwpp_avro_value_new(w->t_alert, &w->v_alert) != CWPP_OK)
        goto fail_values;
    w->nvalues = 1;
    if (cwpp_avro_value_new(w->t_rejected, &w->v_rejected) != CWPP_OK)
        goto fail_values;
    w->nvalues = 2;
#define C(n, h) cwpp_counter(metrics, n, h)
    w->m_accepted = C("cwpp_whitelist_alerts_total{decision=\"accepted\"}",
                      "Alerts decided, by decision.");
    w->m_suppressed_auto = C("cwpp_whitelist_alerts_total{decision=\"automatically_whitelisted\"}",
                             "Alerts decided, by decision.");
    w->m_suppressed_manual = C("cwpp_whitelist_alerts_total{decision=\"manually_whitelisted\"}",
                               "Alerts decided, by decision.");
    w->m_precision = C("cwpp_whitelist_alerts_total{decision=\"precision_defense\"}",
                       "Alerts decided, by decision.");
    w->m_dead = C("cwpp_whitelist_dead_letters_total", "Records sent to the dead-letter topic.");
    w->m_db_errors = C("cwpp_whitelist_db_errors_total", "Batches whose transaction failed.");
    w->m_aborted = C("cwpp_whitelist_regex_aborted_total",
                     "Regex evaluations stopped by the match, depth or JIT stack limit "
                     "(treated as no match).");
    w->m_reloads = C("cwpp_whitelist_rule_reloads_total", "Rulesets loaded.");
    w->m_repeats = C("cwpp_whitelist_repeats_total",
                     "Alert records whose occurrence was decided before (re-emitted upstream "
                     "at a new offset): they add no rule hit.");
#undef C
    w->m_rules = cwpp_gauge(metrics, "cwpp_whitelist_rules", "Live rules loaded.");
    w->m_version = cwpp_gauge(metrics, "cwpp_whitelist_rules_version",
                              "Version of the rules in use (whitelist_state.version).");
    {
        static const double b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
        w->m_db_seconds = cwpp_histogram(metrics, "cwpp_whitelist_db_seconds",
                                         "Time of one batch's transaction.", b, 9);
    }
    return w;
fail_values:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot set up the Avro values");
fail:
    wl_destroy(w);
    return NULL;
}

static void wl_destroy(wl_t *w)
{
    size_t i;

    if (w == NULL)
        return;
    if (w->thr_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thr, NULL);
    }
    for (i = 0; i < w->items_cap; i++)
        cwpp_alert_clear(&w->items[i].alert);
    free(w->items);
    free(w->order);
    cwpp_fence_destroy(w->fence);
    free(w->hits);
    cwpp_ruleset_destroy(w->rs_prev);
    cwpp_ruleset_destroy(w->rs);
    cwpp_ruleset_destroy(w->pending);
    if (w->nvalues > 1)
        avro_value_decref(&w->v_rejected);
    if (w->nvalues > 0)
        avro_value_decref(&w->v_alert);
    cwpp_commander_destroy(w->cmd);
    cwpp_avro_type_destroy(w->t_alert);
    cwpp_avro_type_destroy(w->t_rejected);
    cwpp_buf_free(&w->buf);
    cwpp_buf_free(&w->sql);
    cwpp_buf_free(&w->b_ids);
    cwpp_buf_free(&w->b_status);
    cwpp_buf_free(&w->b_seq);
    cwpp_buf_free(&w->b_hit_ids);
    cwpp_buf_free(&w->b_hit_counts);
    cwpp_pg_destroy(w->pg);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* ---------------------------------------------------------------- refresher */

static void publish(wl_t *w, cwpp_ruleset_t *rs, int64_t version, size_t skipped)
{
    pthread_mutex_lock(&w->mu);
    cwpp_ruleset_destroy(w->pending);
    w->pending = rs;
    w->pending_version = version;
    pthread_mutex_unlock(&w->mu);
    atomic_store(&w->loaded_version, version);
    /* in force from the next batch on: the loop takes it before deciding anything */
    cwpp_metric_set(w->m_rules, (int64_t)cwpp_ruleset_size(rs));
    cwpp_metric_set(w->m_version, version);
    cwpp_metric_add(w->m_reloads, 1);
    cwpp_info("rules_loaded", "loaded %zu live whitelist rules (version %" PRId64 ")%s",
              cwpp_ruleset_size(rs), version,
              skipped > 0 ? "; some stored rules no longer compile and were skipped" : "");
}

static void *refresher(void *arg)
{
    wl_t      *w = arg;
    cwpp_pg_t *pg = cwpp_pg_new(w->conf->common.pg_dsn, "cwpp-whitelist-filter-rules");
    char       errstr[512];

    for (;;) {
        struct timespec ts;
        int64_t         ms = w->conf->refresh_ms;
        int             stop;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        while (!w->stop && !w->wake)
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
                break;
        w->wake = 0;
        stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop || pg == NULL)
            break;
        if (cwpp_pg_ensure(pg, errstr, sizeof(errstr)) == CWPP_OK) {
            PGresult *r = PQexec(cwpp_pg_conn(pg), "SELECT version FROM whitelist_state WHERE id = 1");

            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);

                PQclear(r);
                if (v != atomic_load(&w->loaded_version)) {
                    cwpp_ruleset_t *rs = NULL;
                    int64_t         ver = v;
                    size_t          skipped = 0;

                    if (cwpp_wl_load(cwpp_pg_conn(pg), &w->limits, &rs, &ver, &skipped, errstr,
                                     sizeof(errstr)) == CWPP_OK)
                        publish(w, rs, ver, skipped);
                    else
                        cwpp_warn("rules_load_failed", "%s", errstr);
                }
            } else {
                cwpp_warn("rules_poll_failed", "%s", PQresultErrorMessage(r));
                PQclear(r);
                cwpp_pg_reset(pg);
            }
        }
    }
    cwpp_pg_destroy(pg);
    return NULL;
}

static void wake_refresher(wl_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->wake = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Takes the newest ruleset the refresher built, if any. Loop thread only. */
static void take_rules(wl_t *w)
{
    cwpp_ruleset_t *rs;
    int64_t         v;

    pthread_mutex_lock(&w->mu);
    rs = w->pending;
    v = w->pending_version;
    w->pending = NULL;
    pthread_mutex_unlock(&w->mu);
    if (rs == NULL)
        return;
    if (v < w->rs_version) { /* older than the rules a batch of this instance loaded */
        cwpp_ruleset_destroy(rs);
        return;
    }
    cwpp_ruleset_destroy(w->rs);
    w->rs = rs;
    w->rs_version = v;
}

/*
 * A command of the batch changed the rules: load them again inside the batch's
 * transaction (which sees the change) and match the batch's alerts against them, so an
 * alert a new rule has just whitelisted (commands.c sweep) and that recurs in the same
 * batch stays whitelisted instead of returning to unhandled. The refresher is told to load
 * again after the commit (loaded_version -1), and a rolled-back batch makes way for what
 * it loads (rs_version 0 in wl_batch), so rules of a transaction that did not commit
 * never stay in force.
 */
static int reload_in_tx(wl_t *w, size_t n, char *errstr, size_t errstr_size)
{
    cwpp_ruleset_t *rs = NULL;
    int64_t         ver = 0, now = cwpp_now_ms();
    size_t          skipped = 0, i;
    int             rc;

    rc = cwpp_wl_load(cwpp_pg_conn(w->pg), &w->limits, &rs, &ver, &skipped, errstr,
                      errstr_size);
    if (rc != CWPP_OK)
        return rc;
    if (w->rs_prev == NULL)
        w->rs_prev = w->rs; /* committed rules, restored if this transaction rolls back */
    else
        cwpp_ruleset_destroy(w->rs);
    w->rs = rs;
    w->rs_version = ver;
    w->rs_in_tx = 1;
    atomic_store(&w->loaded_version, -1);
    for (i = 0; i < n; i++) {
        item_t *it = &w->items[i];

        if (it->ok && it->alert.defense != CWPP_DEF_PRECISION)
            it->rule_id = cwpp_ruleset_match(w->rs, &it->alert, now, &w->stats);
    }
    return CWPP_OK;
}

/* ------------------------------------------------------------------ output */

int wl_emit_alert(wl_t *w, cwpp_alert_t *a, int suppressed, cwpp_outbox_t *out, char *errstr,
                  size_t errstr_size)
{
    int rc;

    cwpp_buf_reset(&w->buf);
    rc = cwpp_alert_to_avro(a, w->t_alert, &w->v_alert, &w->buf, errstr, errstr_size);
    if (rc != CWPP_OK)
        return rc;
    rc = cwpp_outbox_add(out, suppressed ? CWPP_TOPIC_ALERTS_SUPPRESSED : CWPP_TOPIC_ALERTS_ACCEPTED,
                         a->account_id, strlen(a->account_id), w->buf.data, w->buf.len);
    return rc != CWPP_OK ? cwpp_seterr(errstr, errstr_size, rc, "out of memory") : CWPP_OK;
}

int wl_emit_change(wl_t *w, cwpp_alert_t *a, cwpp_outbox_t *out, char *errstr,
                   size_t errstr_size)
{
    int rc = CWPP_OK;

    if (a->status == CWPP_ST_MANUALLY_WHITELISTED ||
        a->status == CWPP_ST_AUTOMATICALLY_WHITELISTED) {
        a->transition = CWPP_TR_WHITELISTED;
        rc = wl_emit_alert(w, a, 1, out, errstr, errstr_size);
    } else {
        a->transition = CWPP_TR_RESTORED;
    }
    if (rc == CWPP_OK)
        rc = wl_emit_alert(w, a, 0, out, errstr, errstr_size);
    return rc;
}

int wl_dead_letter(wl_t *w, rd_kafka_message_t *m, const char *code, const char *reason,
                   cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cwpp_metric_add(w->m_dead, 1);
    cwpp_warn("dead_letter", "%s[%d]@%lld: %s (%s)", rd_kafka_topic_name(m->rkt), m->partition,
              (long long)m->offset, reason, code);
    return cwpp_service_dead_letter(w->t_rejected, &w->v_rejected, &w->buf, "whitelist-filter",
                                    m, code, reason, out, errstr, errstr_size);
}

/* Adds n hits of a rule to /metrics (the counter is found by name: once per rule and
 * batch, not per alert). */
static void count_hits(wl_t *w, int64_t rule_id, int64_t n)
{
    char name[96];

    snprintf(name, sizeof(name), "cwpp_whitelist_rule_hits_total{rule_id=\"%" PRId64 "\"}",
             rule_id);
    cwpp_metric_add(cwpp_counter(w->metrics, name,
                                 "Alerts each whitelist rule suppressed (this instance)."),
                    n);
}

/* ------------------------------------------------------------------- batch */

static int ensure_items(wl_t *w, size_t n)
{
    item_t *ni;
    size_t *no;

    if (n <= w->items_cap)
        return CWPP_OK;
    ni = realloc(w->items, n * sizeof(*ni));
    if (ni == NULL)
        return CWPP_ENOMEM;
    memset(ni + w->items_cap, 0, (n - w->items_cap) * sizeof(*ni));
    w->items = ni;
    no = realloc(w->order, n * sizeof(*no));
    if (no == NULL)
        return CWPP_ENOMEM;
    w->order = no;
    w->items_cap = n;
    return CWPP_OK;
}

static wl_t *g_sort_w; /* qsort context (loop thread only) */

/* By alert id, then by position in the batch: occurrences of one alert stay in order. */
static int cmp_order(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int    c = strcmp(g_sort_w->items[x].alert.alert_id, g_sort_w->items[y].alert.alert_id);

    return c != 0 ? c : (x > y) - (x < y);
}

/* The batch's alert ids as "{a,b}" in w->b_ids, and w->order sorted by id. Returns the
 * number of alerts, or (size_t)-1 for lack of memory. */
static size_t id_array(wl_t *w, size_t n)
{
    cwpp_buf_t *b = &w->b_ids;
    size_t      i, k = 0;

    cwpp_buf_reset(b);
    cwpp_buf_append(b, "{", 1);
    for (i = 0; i < n; i++) {
        if (!w->items[i].ok)
            continue;
        if (k > 0)
            cwpp_buf_append(b, ",", 1);
        cwpp_buf_append(b, w->items[i].alert.alert_id, CWPP_ALERT_ID_LEN);
        w->order[k++] = i;
    }
    cwpp_buf_append(b, "}", 2);
    if (b->data == NULL || b->data[b->len - 2] != '}')
        return (size_t)-1;
    g_sort_w = w;
    qsort(w->order, k, sizeof(*w->order), cmp_order);
    return k;
}

/* Spreads the stored status and filtered_seq (rows of status_read) over the items (all
 * occurrences). */
static void read_status(wl_t *w, size_t k, const PGresult *r)
{
    int row;

    for (row = 0; row < PQntuples(r); row++) {
        const char         *id = PQgetvalue(r, row, 0);
        cwpp_alert_status_t st;
        size_t              lo = 0, hi = k;

        if (cwpp_status_parse(PQgetvalue(r, row, 1), &st) != 0)
            continue;
        while (lo < hi) { /* first occurrence of id */
            size_t mid = (lo + hi) / 2;

            if (strcmp(w->items[w->order[mid]].alert.alert_id, id) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < k && strcmp(w->items[w->order[lo]].alert.alert_id, id) == 0; lo++) {
            item_t *it = &w->items[w->order[lo]];

            it->in_db = 1;
            it->db_status = st;
            it->db_seq_known = !PQgetisnull(r, row, 2);
            it->db_seq = it->db_seq_known ? strtoll(PQgetvalue(r, row, 2), NULL, 10) : 0;
        }
    }
}

static void decide(wl_t *w, item_t *it)
{
    cwpp_alert_t       *a = &it->alert;
    cwpp_alert_status_t cur = it->in_db ? it->db_status : a->status;

    if (a->defense == CWPP_DEF_PRECISION) {
        it->decision = D_ACCEPT;
        it->status = CWPP_ST_HANDLED;
    } else if (cur == CWPP_ST_MANUALLY_WHITELISTED) {
        it->decision = D_SUPPRESS;
        it->status = CWPP_ST_MANUALLY_WHITELISTED;
    } else if (it->rule_id > 0) {
        it->decision = D_SUPPRESS;
        it->status = CWPP_ST_AUTOMATICALLY_WHITELISTED;
    } else {
        it->decision = D_ACCEPT;
        it->status = cur == CWPP_ST_AUTOMATICALLY_WHITELISTED ? CWPP_ST_UNHANDLED : cur;
    }
    (void)w;
}

/* The status changes of the batch as JSON rows in w->b_status (the last occurrence of
 * each alert decides; occurrences are adjacent in w->order). Returns the row count, or
 * (size_t)-1 for lack of memory. */
static size_t status_rows(wl_t *w, size_t k)
{
    cwpp_buf_t *b = &w->b_status;
    size_t      j, rows = 0;

    cwpp_buf_reset(b);
    cwpp_buf_append(b, "[", 1);
    for (j = 0; j < k; j++) {
        item_t *it = &w->items[w->order[j]];
        char    row[160];

        if (j + 1 < k && strcmp(w->items[w->order[j + 1]].alert.alert_id, it->alert.alert_id) == 0)
            continue; /* the batch's last occurrence of the alert decides */
        if (!it->in_db || it->status == it->db_status)
            continue;
        snprintf(row, sizeof(row), "%s{\"id\":\"%s\",\"old\":\"%s\",\"st\":\"%s\"}",
                 rows > 0 ? "," : "", it->alert.alert_id, cwpp_status_name(it->db_status),
                 cwpp_status_name(it->status));
        cwpp_buf_append(b, row, strlen(row));
        rows++;
    }
    cwpp_buf_append(b, "]", 2);
    if (b->data == NULL || b->data[b->len - 2] != ']')
        return (size_t)-1;
    return rows;
}

/*
 * Occurrences, after decide(): walks each alert's records in batch order (adjacent in
 * w->order) from the stored filtered_seq, the highest occurrence suppressed. A fresh
 * automatically whitelisted record whose occurrence is not above the highest known
 * (stored, or seen earlier in the batch) is a repeat and adds no hit; otherwise it adds
 * one hit per occurrence since that mark (one when there is none yet). Accepted records
 * neither count nor move the mark, so nothing is written for them. Sets it->nhits and
 * w->repeats_n, and the new marks as JSON rows in w->b_seq. Returns the row count, or
 * (size_t)-1 for lack of memory.
 */
static size_t seq_rows(wl_t *w, size_t k)
{
    cwpp_buf_t *b = &w->b_seq;
    size_t      j, rows = 0;
    int         known_set = 0, moved = 0;
    int64_t     known = 0;

    w->repeats_n = 0;
    cwpp_buf_reset(b);
    cwpp_buf_append(b, "[", 1);
    for (j = 0; j < k; j++) {
        item_t *it = &w->items[w->order[j]];
        int64_t o = it->alert.occurrences;
        int     supp = it->decision == D_SUPPRESS &&
                       it->status == CWPP_ST_AUTOMATICALLY_WHITELISTED;
        char    row[128];

        assert(it->ok);
        if (j == 0 || strcmp(w->items[w->order[j - 1]].alert.alert_id, it->alert.alert_id) != 0) {
            known_set = it->db_seq_known;
            known = it->db_seq;
            moved = 0;
        }
        it->nhits = 0;
        /* only suppressed records count hits and move the mark: an accepted alert's
         * records are not written for (they are most of the stream, and their rows are
         * ingest's to update) */
        if (supp && it->fresh) {
            if (known_set && o <= known)
                w->repeats_n++;
            else
                it->nhits = known_set ? o - known : 1;
        }
        if (supp && (!known_set || o > known)) {
            known = o;
            known_set = 1;
            moved = 1;
        }
        if (j + 1 < k && strcmp(w->items[w->order[j + 1]].alert.alert_id, it->alert.alert_id) == 0)
            continue; /* the alert's last record: known is the batch's mark */
        if (!moved || !it->in_db || (it->db_seq_known && known <= it->db_seq))
            continue;
        snprintf(row, sizeof(row), "%s{\"id\":\"%s\",\"seq\":%lld}", rows > 0 ? "," : "",
                 it->alert.alert_id, (long long)known);
        cwpp_buf_append(b, row, strlen(row));
        rows++;
    }
    cwpp_buf_append(b, "]", 2);
    if (b->data == NULL || b->data[b->len - 2] != ']')
        return (size_t)-1;
    return rows;
}

static int cmp_hit(const void *a, const void *b)
{
    int64_t x = ((const wl_hit_t *)a)->rule_id, y = ((const wl_hit_t *)b)->rule_id;

    return x < y ? -1 : x > y;
}

/* The batch's fresh hits per rule (it->nhits, set by seq_rows) as "{ids}" and "{counts}"
 * in w->b_hit_ids and w->b_hit_counts (sorted ids: no lock-order cycles), and one entry
 * per rule in w->hits for /metrics. Returns the number of rules, or (size_t)-1 for lack
 * of memory. */
static size_t hit_arrays(wl_t *w, size_t n)
{
    wl_hit_t   *ids;
    cwpp_buf_t *a = &w->b_hit_ids, *c = &w->b_hit_counts;
    size_t      i, k = 0, j, rules = 0;
    char        num[32];

    if (n + 1 > w->hits_cap) {
        wl_hit_t *nh = realloc(w->hits, (n + 1) * sizeof(*nh));

        if (nh == NULL)
            return (size_t)-1;
        w->hits = nh;
        w->hits_cap = n + 1;
    }
    ids = w->hits;
    for (i = 0; i < n; i++)
        if (w->items[i].ok && w->items[i].fresh && w->items[i].nhits > 0) {
            assert(w->items[i].rule_id > 0);
            ids[k].rule_id = w->items[i].rule_id;
            ids[k++].n = w->items[i].nhits;
        }
    qsort(ids, k, sizeof(*ids), cmp_hit);
    cwpp_buf_reset(a);
    cwpp_buf_reset(c);
    cwpp_buf_append(a, "{", 1);
    cwpp_buf_append(c, "{", 1);
    for (i = 0; i < k; i = j) {
        int64_t sum = 0;

        for (j = i; j < k && ids[j].rule_id == ids[i].rule_id; j++)
            sum += ids[j].n;
        snprintf(num, sizeof(num), "%s%lld", rules > 0 ? "," : "", (long long)ids[i].rule_id);
        cwpp_buf_append(a, num, strlen(num));
        snprintf(num, sizeof(num), "%s%lld", rules > 0 ? "," : "", (long long)sum);
        cwpp_buf_append(c, num, strlen(num));
        ids[rules].rule_id = ids[i].rule_id; /* compacted in place: rules <= i */
        ids[rules++].n = sum;
    }
    cwpp_buf_append(a, "}", 2);
    cwpp_buf_append(c, "}", 2);
    w->hits_n = rules;
    if (a->data == NULL || c->data == NULL || a->data[a->len - 2] != '}' ||
        c->data[c->len - 2] != '}')
        return (size_t)-1;
    return rules;
}

typedef cwpp_pg_stmt_t pstmt_t;

static int pipeline(wl_t *w, pstmt_t *q, size_t nq, char *errstr, size_t errstr_size)
{
    return cwpp_pg_pipeline(w->pg, q, nq, errstr, errstr_size);
}

/*
 * The batch's transaction in two round trips when it holds no commands:
 *   1. BEGIN; make sure this group's offset rows exist and lock them; read the stored
 *      status of the batch's alerts;
 *   2. status changes, occurrence marks, rule hits, the new offsets, COMMIT.
 * Commands go between them, one by one (each in its own savepoint, see commands.c),
 * before the alerts are decided, so the batch's alerts see the status they leave behind:
 * a recurrence next to "whitelist this alert" is suppressed. The status is then read
 * after them.
 */
static int run_tx(wl_t *w, size_t n, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    PGresult *r_lock = NULL, *r_status = NULL;
    pstmt_t   q[6];
    size_t    i, k, nq = 0, rows, seqs, rules;
    int       rc, cmds = 0;

    for (i = 0; i < n; i++)
        cmds += w->items[i].is_cmd && w->items[i].code == NULL;
    if ((k = id_array(w, n)) == (size_t)-1)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");

    q[nq++] = (pstmt_t){"BEGIN", -1, {0}, PGRES_COMMAND_OK, NULL};
    if ((rc = cwpp_fence_lock_stmts(w->fence, &q[nq], &r_lock, errstr, errstr_size)) != CWPP_OK)
        return rc;
    nq += CWPP_FENCE_LOCK_NSTMTS;
    if (!cmds && k > 0)
        q[nq++] = (pstmt_t){"status_read", 1, {(char *)w->b_ids.data}, PGRES_TUPLES_OK,
                            &r_status};
    if ((rc = pipeline(w, q, nq, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = cwpp_fence_read(w->fence, r_lock, errstr, errstr_size);
    PQclear(r_lock);
    if (rc != CWPP_OK) {
        PQclear(r_status);
        return rc;
    }
    for (i = 0; i < n; i++)
        w->items[i].fresh = !cwpp_fence_applied(w->fence, i);
    if (cmds) {
        for (i = 0; i < n; i++)
            if (w->items[i].is_cmd && w->items[i].code == NULL &&
                (rc = wl_apply_command(w, &w->items[i], out, errstr, errstr_size)) != CWPP_OK)
                return rc;
        if (w->rules_changed && (rc = reload_in_tx(w, n, errstr, errstr_size)) != CWPP_OK)
            return rc;
        if (k > 0) {
            const char *v[1] = {(char *)w->b_ids.data};

            if ((rc = exec_prepared(w, "status_read", 1, v, PGRES_TUPLES_OK, &r_status, errstr,
                                    errstr_size)) != CWPP_OK)
                return rc;
        }
    }
    if (r_status != NULL) {
        read_status(w, k, r_status);
        PQclear(r_status);
    }
    for (i = 0; i < n; i++)
        if (w->items[i].ok)
            decide(w, &w->items[i]);

    if ((rows = status_rows(w, k)) == (size_t)-1 || (seqs = seq_rows(w, k)) == (size_t)-1 ||
        (rules = hit_arrays(w, n)) == (size_t)-1)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    nq = 0;
    if (rows > 0)
        q[nq++] = (pstmt_t){"status_set", 1, {(char *)w->b_status.data}, PGRES_COMMAND_OK, NULL};
    if (seqs > 0)
        q[nq++] = (pstmt_t){"seq_set", 1, {(char *)w->b_seq.data}, PGRES_COMMAND_OK, NULL};
    if (rules > 0)
        q[nq++] = (pstmt_t){"hits", 2, {(char *)w->b_hit_ids.data, (char *)w->b_hit_counts.data},
                            PGRES_COMMAND_OK, NULL};
    cwpp_fence_advance_stmt(w->fence, &q[nq++]);
    q[nq++] = (pstmt_t){"COMMIT", -1, {0}, PGRES_COMMAND_OK, NULL};
    return pipeline(w, q, nq, errstr, errstr_size);
}

/*
 * Whether the record of item it, suppressed by a rule, also tells the correlator that the
 * alert leaves its event (a `whitelisted` record on accepted, next to the suppressed
 * occurrence): the alert occurred before (occurrences above 1) and was stored with a
 * status it is accepted with (unhandled, handling, handled), so it may be a member of an
 * event. A redelivered record (not fresh) cannot tell the status it found the first
 * time, which its batch's commit changed: it says so again, and the correlator, which
 * finds the alert in no event by then, does nothing. A new alert suppressed at its first
 * occurrence was never accepted: nothing.
 */
static int leaves_event(const item_t *it)
{
    if (it->decision != D_SUPPRESS || it->status != CWPP_ST_AUTOMATICALLY_WHITELISTED ||
        !it->in_db || it->alert.occurrences <= 1)
        return 0;
    if (!it->fresh)
        return 1;
    return it->db_status == CWPP_ST_UNHANDLED || it->db_status == CWPP_ST_HANDLING ||
           it->db_status == CWPP_ST_HANDLED;
}

static int wl_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                    char *errstr, size_t errstr_size)
{
    wl_t       *w = opaque;
    size_t      i;
    int         rc;
    int64_t     now = cwpp_now_ms(), t0;

    take_rules(w);
    if (ensure_items(w, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    if (cwpp_fence_batch(w->fence, msgs, n, errstr, errstr_size) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    w->rules_changed = 0;
    w->rs_in_tx = 0;
    w->pending_hits_n = 0;
    w->hits_n = 0;
    w->repeats_n = 0;
    memset(&w->stats, 0, sizeof(w->stats));
    for (i = 0; i < n; i++) {
        item_t             *it = &w->items[i];
        rd_kafka_message_t *m = msgs[i];
        char                why[256];

        cwpp_alert_clear(&it->alert);
        memset(it, 0, sizeof(*it));
        it->m = m;
        it->is_cmd = strcmp(rd_kafka_topic_name(m->rkt), w->cmd_topic) == 0;
        if (m->len > (size_t)w->conf->max_message_bytes) {
            it->code = "oversized";
            snprintf(it->reason, sizeof(it->reason),
                     "the record has %zu bytes, more than whitelist.max.message.bytes (%lld)",
                     m->len, (long long)w->conf->max_message_bytes);
            continue;
        }
        if (it->is_cmd)
            continue; /* decoded in commands.c */
        if (cwpp_alert_from_avro(w->t_alert, m->payload, m->len, &w->v_alert, &it->alert, why,
                                 sizeof(why)) != CWPP_OK) {
            it->code = "bad_avro";
            snprintf(it->reason, sizeof(it->reason), "not a valid Alert record: %s", why);
            continue;
        }
        it->ok = 1;
        if (it->alert.defense != CWPP_DEF_PRECISION && w->rs != NULL)
            it->rule_id = cwpp_ruleset_match(w->rs, &it->alert, now, &w->stats);
    }

    t0 = cwpp_mono_ms();
    if ((rc = cwpp_pg_ensure(w->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = prepare(w, errstr, errstr_size)) != CWPP_OK ||
        (rc = run_tx(w, n, out, errstr, errstr_size)) != CWPP_OK) {
        char ignore[64];

        if (rc != CWPP_EDATA) /* refused data is no outage */
            atomic_store(&w->db_ok, 0);
        if (w->rs_in_tx) {
            /* its rules may not have committed: the ones before are back in force until
             * the refresher's replace them, so a retry never matches an uncommitted rule */
            cwpp_ruleset_destroy(w->rs);
            w->rs = w->rs_prev;
            w->rs_prev = NULL;
            w->rs_version = 0;
        }
        cwpp_metric_add(w->m_db_errors, 1);
        if (PQstatus(cwpp_pg_conn(w->pg)) == CONNECTION_OK)
            cwpp_pg_command(w->pg, "ROLLBACK", ignore, sizeof(ignore));
        if (PQstatus(cwpp_pg_conn(w->pg)) != CONNECTION_OK || rc == CWPP_ETRANSIENT) {
            cwpp_pg_reset(w->pg);
            w->prepared_on = NULL;
        }
        /* the loop applies a refused batch record by record and dead-letters the record
         * the database refuses on its own */
        return rc == CWPP_EDATA && n > 0 ? CWPP_EDATA : CWPP_ETRANSIENT;
    }
    atomic_store(&w->db_ok, 1);
    cwpp_ruleset_destroy(w->rs_prev); /* the rules loaded in the transaction committed */
    w->rs_prev = NULL;
    /* Tests only (CWPP_FAULTS "whitelist_after_commit:N"): the Nth batch holding commands
     * dies like kill -9 after its commit and before any of its records is produced; the
     * redelivered commands publish their records then. */
    for (i = 0; i < n && !w->items[i].is_cmd; i++)
        ;
    if (i < n && cwpp_fault_hit("whitelist_after_commit"))
        raise(SIGKILL);
    cwpp_metric_observe(w->m_db_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    if (w->rules_changed)
        wake_refresher(w);
    for (i = 0; i < w->pending_hits_n; i++)
        count_hits(w, w->pending_hits[i], 1);
    w->pending_hits_n = 0;
    for (i = 0; i < w->hits_n; i++) /* one entry per rule */
        count_hits(w, w->hits[i].rule_id, w->hits[i].n);
    cwpp_metric_add(w->m_repeats, w->repeats_n);

    for (i = 0; i < n; i++) {
        item_t *it = &w->items[i];

        if (it->is_cmd && it->code == NULL)
            continue; /* answered by commands.c */
        if (it->code != NULL) {
            if ((rc = wl_dead_letter(w, it->m, it->code, it->reason, out, errstr,
                                     errstr_size)) != CWPP_OK)
                return CWPP_ETRANSIENT;
            continue;
        }
        if (it->alert.status == it->status && it->alert.transition == CWPP_TR_OCCURRENCE) {
            /* unchanged: forward the record as it came (same schema, checked on decode) */
            rc = cwpp_outbox_add(out, it->decision == D_SUPPRESS ? CWPP_TOPIC_ALERTS_SUPPRESSED
                                                                 : CWPP_TOPIC_ALERTS_ACCEPTED,
                                 it->alert.account_id, strlen(it->alert.account_id),
                                 it->m->payload, it->m->len);
        } else {
            it->alert.status = it->status;
            it->alert.transition = CWPP_TR_OCCURRENCE; /* what ingest sends is an occurrence */
            rc = wl_emit_alert(w, &it->alert, it->decision == D_SUPPRESS, out, errstr,
                               errstr_size);
        }
        if (rc == CWPP_OK && leaves_event(it)) {
            it->alert.status = it->status;
            it->alert.transition = CWPP_TR_WHITELISTED;
            rc = wl_emit_alert(w, &it->alert, 0, out, errstr, errstr_size);
        }
        if (rc != CWPP_OK)
            return CWPP_ETRANSIENT;
        if (it->alert.defense == CWPP_DEF_PRECISION)
            cwpp_metric_add(w->m_precision, 1);
        else if (it->decision == D_ACCEPT)
            cwpp_metric_add(w->m_accepted, 1);
        else if (it->status == CWPP_ST_MANUALLY_WHITELISTED)
            cwpp_metric_add(w->m_suppressed_manual, 1);
        else
            cwpp_metric_add(w->m_suppressed_auto, 1);
    }
    cwpp_metric_add(w->m_aborted, (int64_t)w->stats.regex_aborted);
    return CWPP_OK;
}

/* --------------------------------------------------------------------- run */

int wl_run(const void *confp, const cwpp_service_env_t *env)
{
    const wl_conf_t              *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ALERTS_NORMALIZED, CWPP_TOPIC_COMMANDS};
    wl_t                         *w;
    char                         errstr[512];
    int                          rc, backoff = 200;

    w = wl_new(conf, env->metrics, errstr, sizeof(errstr));
    if (w == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 2;
    }
    /* The rules before the first alert: wait for the database, load them. */
    while (!cwpp_service_stopping()) {
        size_t          skipped = 0;
        cwpp_ruleset_t *rs = NULL;
        int64_t         ver = 0;

        rc = cwpp_pg_ensure(w->pg, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = prepare(w, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = cwpp_wl_load(cwpp_pg_conn(w->pg), &w->limits, &rs, &ver, &skipped, errstr,
                              sizeof(errstr));
        if (rc == CWPP_OK) {
            publish(w, rs, ver, skipped);
            take_rules(w);
            break;
        }
        if (rc == CWPP_ECONFIG) {
            cwpp_error("config_error", "%s", errstr);
            wl_destroy(w);
            return 1;
        }
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_pg_reset(w->pg);
        w->prepared_on = NULL;
        cwpp_service_backoff(&backoff);
    }
    if (cwpp_service_stopping()) {
        wl_destroy(w);
        return 0;
    }
    atomic_store(&w->db_ok, 1);
    if (pthread_create(&w->thr, NULL, refresher, w) != 0) {
        cwpp_error("start_failed", "cannot start the rules refresher thread");
        wl_destroy(w);
        return 2;
    }
    w->thr_started = 1;

    rc = cwpp_service_run_loop("whitelist", &conf->common, env, inputs, 2, wl_batch, w,
                               &w->db_ok);
    wl_destroy(w);
    return rc;
}
