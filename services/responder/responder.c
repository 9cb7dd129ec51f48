/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder.c: configuration, the batch (one transaction, a savepoint per record), the
 * event snapshots sent after a change, and the helpers the other files share.
 */
#include "rs_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_snapshot.h"
#include "cwpp_util.h"

const cwpp_conf_prop_t rs_props[] = {
    CWPP_COMMON_PROPS(rs_conf_t, common, "responder", "8084"),
    {"responder.max.message.bytes", CWPP_CONF_INT, offsetof(rs_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Input records larger than this go to the dead-letter topic as oversized."},
    {"responder.command.max.age.ms", CWPP_CONF_INT, offsetof(rs_conf_t, command_max_age_ms),
     "600000", 1000, 604800000LL, 0,
     "A command issued longer ago than this is refused as stale (it waited in the topic, "
     "e.g. while the responder was down; the analyst decides again)."},
    {"responder.validity.default.s", CWPP_CONF_INT, offsetof(rs_conf_t, validity_default_s),
     "86400", 1, 31536000, 0,
     "Validity period of a handling policy or playbook when the analyst gives none."},
    {"responder.validity.min.s", CWPP_CONF_INT, offsetof(rs_conf_t, validity_min_s), "60", 1,
     31536000, 0, "Shortest validity period accepted."},
    {"responder.validity.max.s", CWPP_CONF_INT, offsetof(rs_conf_t, validity_max_s), "7776000",
     1, 31536000, 0, "Longest validity period accepted (90 days by default)."},
    {"responder.task.timeout.ms", CWPP_CONF_INT, offsetof(rs_conf_t, task_timeout_ms), "60000",
     100, 86400000, 0,
     "An attempt of a task with no result from its agent within this time is retried, or "
     "times out when its attempts are spent (a playbook step's timeout_s wins)."},
    {"responder.task.attempts", CWPP_CONF_INT, offsetof(rs_conf_t, task_attempts), "3", 1, 20,
     0, "Attempts a task gets (its retry budget is this minus one)."},
    {"responder.tick.ms", CWPP_CONF_INT, offsetof(rs_conf_t, tick_ms), "1000", 50, 60000, 0,
     "How often timed-out tasks and ended leases are looked for."},
    {"responder.playbooks.dir", CWPP_CONF_STR, offsetof(rs_conf_t, playbooks_dir), "", 0, 0, 0,
     "Directory of custom playbooks (*.json, one playbook or a list each), validated and "
     "loaded at start; empty for none."},
    {"responder.signing.key.file", CWPP_CONF_STR, offsetof(rs_conf_t, signing_key_file), "", 0,
     0, 0,
     "Required: file of the Ed25519 key that signs every Action (one base64 line, the 32-byte "
     "seed; mode 0600: refused when group or other may read it). Agents verify with its "
     "public key (docs/actions.md \"Signatures\"); make a pair with cwpp-admin keys generate."},
};
const size_t rs_nprops = sizeof(rs_props) / sizeof(rs_props[0]);

static const char SQL_SNAPSHOTS[] =
    "SELECT json_build_object('event_id', e.event_id, 'account_id', e.account_id, 'name', "
    "e.name, 'level', e.level, 'status', e.status, 'owner', e.owner, 'predecessor', "
    "e.predecessor, 'stages', e.stages, 'sources', e.sources, 'alert_count', e.alert_count, "
    "'occurrences', e.occurrences, 'assets', e.summary -> 'assets', 'first_seen_ms', "
    "(extract(epoch FROM e.first_seen) * 1000)::bigint, 'last_seen_ms', "
    "(extract(epoch FROM e.last_seen) * 1000)::bigint, 'urgency', e.urgency, 'assessment', "
    "e.assessment, 'version', e.version)::text FROM events e "
    "WHERE e.event_id IN (SELECT json_array_elements_text($1::json)) ORDER BY e.event_id";

/* ------------------------------------------------------------------ helpers */

int rs_touch(rs_t *r, const char *event_id, char *errstr, size_t errstr_size)
{
    size_t i;

    for (i = 0; i < r->ntouched; i++)
        if (strcmp(r->touched[i], event_id) == 0)
            return CWPP_OK;
    if (r->ntouched == RS_MAX_TOUCHED)
        return CWPP_OK; /* bounded; the rest get their snapshot on their next change */
    if ((r->touched[r->ntouched] = strdup(event_id)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    r->ntouched++;
    return CWPP_OK;
}

static void untouch_all(rs_t *r)
{
    while (r->ntouched > 0)
        free(r->touched[--r->ntouched]);
}

int rs_dead_letter(rs_t *r, const rd_kafka_message_t *m, const char *code, const char *reason,
                   cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cwpp_warn("dead_letter", "%s at %s[%" PRId32 "]@%" PRId64 ": %s", code,
              rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
    cwpp_metric_add(r->m_dead, 1);
    return cwpp_service_dead_letter(r->t_rejected, &r->v_rejected, &r->buf, "responder", m, code,
                                    reason, out, errstr, errstr_size);
}

/* ---------------------------------------------------------------- snapshots */

static const char *jstr(const json_t *o, const char *k, const char *def)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s != NULL ? s : def;
}

/* The SecurityEvent record of one row of SQL_SNAPSHOTS (libs/snapshot) into r->buf. */
static int encode_snapshot(rs_t *r, const json_t *e, char *errstr, size_t errstr_size)
{
    cwpp_snapshot_t s = {
        .event_id = jstr(e, "event_id", ""),
        .account_id = jstr(e, "account_id", ""),
        .name = jstr(e, "name", ""),
        .level = jstr(e, "level", "low"),
        .status = jstr(e, "status", "unhandled"),
        .owner = jstr(e, "owner", NULL),
        .predecessor = jstr(e, "predecessor", NULL),
        .stages = json_object_get(e, "stages"),
        .sources = json_object_get(e, "sources"),
        .alert_count = json_integer_value(json_object_get(e, "alert_count")),
        .occurrences = json_integer_value(json_object_get(e, "occurrences")),
        .assets = json_object_get(e, "assets"),
        .first_seen_ms = json_integer_value(json_object_get(e, "first_seen_ms")),
        .last_seen_ms = json_integer_value(json_object_get(e, "last_seen_ms")),
        .urgency = jstr(e, "urgency", "low"),
        .assessment = json_object_get(e, "assessment"),
        .version = json_integer_value(json_object_get(e, "version")),
        .updated_at_ms = cwpp_now_ms(),
    };

    cwpp_buf_reset(&r->buf);
    return cwpp_snapshot_encode(r->t_event, &r->v_event, &s, &r->buf, errstr, errstr_size);
}

/* The snapshots of the events this batch changed, as they stand in the transaction. */
static int send_snapshots(rs_t *r, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cwpp_buf_t  arr = {0};
    PGresult   *res = NULL;
    const char *p[1];
    size_t      i;
    int         rc = CWPP_OK;

    if (r->ntouched == 0)
        return CWPP_OK;
    rc = cwpp_buf_puts(&arr, "[");
    for (i = 0; rc == CWPP_OK && i < r->ntouched; i++) {
        rc = cwpp_buf_puts(&arr, i > 0 ? "," : "");
        rc |= cwpp_buf_json_str(&arr, r->touched[i]);
    }
    rc |= cwpp_buf_puts(&arr, "]");
    rc |= cwpp_buf_append(&arr, "", 1);
    if (rc != CWPP_OK) {
        cwpp_buf_free(&arr);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    p[0] = (const char *)arr.data;
    rc = cwpp_pg_query(r->pg, SQL_SNAPSHOTS, 1, p, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    cwpp_buf_free(&arr);
    for (i = 0; rc == CWPP_OK && i < (size_t)PQntuples(res); i++) {
        json_error_t jerr;
        json_t      *e = json_loads(PQgetvalue(res, (int)i, 0), 0, &jerr);
        const char  *id = jstr(e, "event_id", "");

        if (e == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot read an event row");
            break;
        }
        rc = encode_snapshot(r, e, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = cwpp_outbox_add(out, CWPP_TOPIC_EVENTS, id, strlen(id), r->buf.data,
                                 r->buf.len);
        if (rc == CWPP_OK)
            cwpp_metric_add(r->m_snapshots, 1);
        json_decref(e);
    }
    PQclear(res);
    return rc;
}

/* -------------------------------------------------------------------- batch */

static int run_tx(rs_t *r, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                  char *errstr, size_t errstr_size)
{
    size_t i;
    int    rc;

    if ((rc = cwpp_pg_command(r->pg, "BEGIN", errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (n == 0)
        rc = rs_tick(r, out, errstr, errstr_size);
    for (i = 0; rc == CWPP_OK && i < n; i++) {
        rd_kafka_message_t *m = msgs[i];

        if (m->len > (size_t)r->conf->max_message_bytes) {
            char why[160];

            snprintf(why, sizeof(why),
                     "the record has %zu bytes, more than responder.max.message.bytes (%lld)",
                     m->len, (long long)r->conf->max_message_bytes);
            rc = rs_dead_letter(r, m, "oversized", why, out, errstr, errstr_size);
        } else if (strcmp(rd_kafka_topic_name(m->rkt), r->cmd_topic) == 0) {
            rc = rs_apply_command(r, m, out, errstr, errstr_size);
        } else {
            rc = rs_apply_result(r, m, out, errstr, errstr_size);
        }
    }
    if (rc == CWPP_OK)
        rc = send_snapshots(r, out, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = cwpp_pg_command(r->pg, "COMMIT", errstr, errstr_size);
    return rc;
}

static int rs_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                    char *errstr, size_t errstr_size)
{
    rs_t   *r = opaque;
    int64_t t0 = cwpp_mono_ms();
    int     rc;

    untouch_all(r);
    if ((rc = cwpp_pg_ensure(r->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = run_tx(r, msgs, n, out, errstr, errstr_size)) != CWPP_OK) {
        char ignore[64];

        untouch_all(r);
        cwpp_metric_add(r->m_db_errors, 1);
        if (rc != CWPP_EDATA) /* refused data is no outage */
            atomic_store(&r->db_ok, 0);
        if (PQstatus(cwpp_pg_conn(r->pg)) == CONNECTION_OK)
            cwpp_pg_command(r->pg, "ROLLBACK", ignore, sizeof(ignore));
        else
            cwpp_pg_reset(r->pg);
        r->resent = r->resent < 0 ? 0 : r->resent;
        /* the loop applies a refused batch record by record and dead-letters the record
         * the database refuses on its own */
        return rc == CWPP_EDATA && n > 0 ? CWPP_EDATA : CWPP_ETRANSIENT;
    }
    if (r->resent < 0)
        r->resent = 1; /* the resend of the first tick is committed and queued */
    untouch_all(r);
    atomic_store(&r->db_ok, 1);
    cwpp_metric_observe(r->m_db_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    return CWPP_OK;
}

/* ---------------------------------------------------------------- lifecycle */

static void rs_destroy(rs_t *r)
{
    avro_value_t *values[4];
    int           i;

    if (r == NULL)
        return;
    values[0] = &r->v_action;
    values[1] = &r->v_aresult;
    values[2] = &r->v_event;
    values[3] = &r->v_rejected;
    for (i = 0; i < r->nvalues; i++)
        avro_value_decref(values[i]);
    cwpp_commander_destroy(r->cmd);
    cwpp_avro_type_destroy(r->t_action);
    cwpp_sign_key_destroy(r->signer);
    cwpp_avro_type_destroy(r->t_aresult);
    cwpp_avro_type_destroy(r->t_event);
    cwpp_avro_type_destroy(r->t_rejected);
    cwpp_pg_destroy(r->pg);
    cwpp_buf_free(&r->buf);
    untouch_all(r);
    free(r->touched);
    free(r);
}

/* A responder ready to run, or NULL with errstr: one cleanup path (rs_destroy of the
 * half-built object, which undoes exactly what was made). */
static rs_t *rs_new(const rs_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                    size_t errstr_size)
{
    rs_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    r->conf = conf;
    r->metrics = metrics;
    if (conf->signing_key_file[0] == '\0') {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                    "responder.signing.key.file (CWPP_RESPONDER_SIGNING_KEY_FILE) is required: "
                    "the key that signs every action (cwpp-admin keys generate --out DIR)");
        goto fail;
    }
    if ((r->signer = cwpp_sign_load_secret(conf->signing_key_file, errstr, errstr_size)) ==
        NULL) {
        char why[400];

        cwpp_strlcpy(why, errstr, sizeof(why));
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "responder.signing.key.file: %s", why);
        goto fail;
    }
    if ((r->touched = calloc(RS_MAX_TOUCHED, sizeof(*r->touched))) == NULL ||
        (r->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-responder")) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((r->t_action = cwpp_avro_type_builtin("action", errstr, errstr_size)) == NULL ||
        (r->t_aresult = cwpp_avro_type_builtin("action_result", errstr, errstr_size)) == NULL ||
        (r->t_event = cwpp_avro_type_builtin("event", errstr, errstr_size)) == NULL ||
        (r->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size)) ==
            NULL ||
        (r->cmd = rs_commander_new(r, errstr, errstr_size)) == NULL)
        goto fail;
    {
        cwpp_avro_type_t *types[4] = {r->t_action, r->t_aresult, r->t_event, r->t_rejected};
        avro_value_t     *values[4] = {&r->v_action, &r->v_aresult, &r->v_event, &r->v_rejected};

        for (r->nvalues = 0; r->nvalues < 4; r->nvalues++)
            if (cwpp_avro_value_new(types[r->nvalues], values[r->nvalues]) != CWPP_OK) {
                cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot make the Avro values");
                goto fail;
            }
    }
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_COMMANDS, r->cmd_topic,
                    sizeof(r->cmd_topic));
#define C(n, h) cwpp_counter(metrics, n, h)
    r->m_dead = C("cwpp_responder_dead_letters_total", "Records sent to the dead-letter topic.");
    r->m_db_errors = C("cwpp_responder_db_errors_total", "Batches whose transaction failed.");
    r->m_actions = C("cwpp_responder_actions_sent_total",
                     "Actions sent to agents (first attempts, retries, rollbacks, resends).");
    r->m_results = C("cwpp_responder_action_results_total", "Action results applied.");
    r->m_stale_results = C("cwpp_responder_action_results_stale_total",
                           "Action results ignored: their task's attempt was over already.");
    r->m_retries = C("cwpp_responder_task_retries_total", "Task attempts retried.");
    r->m_timeouts = C("cwpp_responder_task_timeouts_total", "Attempts with no result in time.");
    r->m_expired = C("cwpp_responder_policies_expired_total", "Leases that ended.");
    r->m_snapshots = C("cwpp_responder_event_snapshots_total", "Event snapshots sent.");
    r->m_playbooks_invalid = C("cwpp_responder_playbooks_invalid_total",
                               "Playbook files refused at start.");
    r->m_rollbacks_failed = C("cwpp_responder_rollbacks_failed_total",
                              "Rollbacks that failed or timed out for good: an effect may "
                              "still be in place (the policy's reason says which).");
#undef C
    {
        static const double b[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};

        r->m_db_seconds = cwpp_histogram(metrics, "cwpp_responder_db_seconds",
                                         "Time of a batch's transaction.", b, 8);
    }
    return r;
fail:
    rs_destroy(r);
    return NULL;
}

int rs_run(const void *confp, const cwpp_service_env_t *env)
{
    const rs_conf_t              *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_COMMANDS, CWPP_TOPIC_ACTION_RESULTS};
    char                          errstr[512] = "out of memory";
    rs_t                         *r = rs_new(conf, env->metrics, errstr, sizeof(errstr));
    int                           rc, backoff = 200;

    if (r == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 2;
    }
    while (!cwpp_service_stopping()) {
        rc = cwpp_pg_ensure(r->pg, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = rs_load_playbooks(r, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            break;
        if (rc == CWPP_ECONFIG) {
            cwpp_error("config_error", "%s", errstr);
            rs_destroy(r);
            return 1;
        }
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_pg_reset(r->pg);
        cwpp_service_backoff(&backoff);
    }
    if (cwpp_service_stopping()) {
        rs_destroy(r);
        return 0;
    }
    atomic_store(&r->db_ok, 1);
    rc = cwpp_service_run_loop_tick("responder", &conf->common, env, inputs, 2, rs_batch, r,
                                    &r->db_ok, (int)conf->tick_ms);
    rs_destroy(r);
    return rc;
}
