/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tasks.c: handling policies as leases, their tasks, the actions sent to agents and the
 * results that come back, and the timer (docs/responder.md "Policies and tasks").
 *
 * A policy (one built-in policy on one entity, or one playbook run) has ordered steps;
 * each step is an apply task, sent as an Action when the step before it succeeded. A task
 * is running from the moment its action is queued; its result (succeeded or failed)
 * arrives on action-results, keyed by action_id = task_id.attempt. A failed attempt, or one
 * with no result by its deadline, is retried while attempts remain; then the task is
 * failed (or timed_out) and so are its policy and its event. When every step succeeded the
 * policy is active until valid_until; the timer then sends the rollback of every applied
 * step that has one and the policy is expired once they are done. A run whose validity
 * ends while it is still applying starts no more steps: its unfinished tasks are cancelled,
 * it fails (and its event), and what may be in force is rolled back. A result for an
 * attempt that is over (a duplicate, or one that came after its retry) changes nothing.
 */
#include "rs_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_log.h"
#include "cwpp_respond.h"
#include "cwpp_util.h"

#define TASK_COLS                                                                              \
    "t.task_id, t.policy_id, t.event_id, t.dest_account, t.asset_id, t.action, t.params::text, " \
    "t.attempt, (extract(epoch FROM t.deadline) * 1000)::bigint, t.kind, t.max_attempts, "     \
    "t.rollback_of, t.state"
enum { TC_ID, TC_POLICY, TC_EVENT, TC_DEST, TC_ASSET, TC_ACTION, TC_PARAMS, TC_ATTEMPT,
       TC_DEADLINE, TC_KIND, TC_MAX, TC_ROLLBACK_OF, TC_STATE };

static const char SQL_POLICY_ADD[] =
    "INSERT INTO handling_policies (policy_id, response_id, event_id, account_id, dest_account, "
    "kind, name, entity_type, entity_value, asset_id, steps, target_status, valid_until, state, "
    "created_by) VALUES ('pol-' || md5($1 || ':' || $2), $1, $3, $4, $5, $6, $7, $8, $9, $10, "
    "$11::jsonb, $12, now() + $13::bigint * interval '1 second', 'applying', $14) "
    "RETURNING policy_id, (extract(epoch FROM valid_until) * 1000)::bigint";
/* Every step's task of a new policy: the first running (sent), the others pending. */
static const char SQL_TASKS_ADD[] =
    "INSERT INTO handling_tasks AS t (task_id, event_id, account_id, entity_type, entity_value, "
    "state, policy_id, kind, step, action, dest_account, asset_id, params, attempt, "
    "max_attempts, timeout_ms, deadline) "
    "SELECT 'task-' || md5(p.policy_id || ':apply:' || g.i), p.event_id, p.account_id, "
    "p.entity_type, p.entity_value, CASE WHEN g.i = 0 THEN 'running' ELSE 'pending' END, "
    "p.policy_id, 'apply', g.i, p.steps -> g.i ->> 'action', p.dest_account, p.asset_id, "
    "COALESCE(p.steps -> g.i -> 'params', '{}'), CASE WHEN g.i = 0 THEN 1 ELSE 0 END, "
    "$2::int, x.ms, CASE WHEN g.i = 0 THEN now() + x.ms * interval '1 millisecond' END "
    "FROM handling_policies p, generate_series(0, jsonb_array_length(p.steps) - 1) AS g(i), "
    "LATERAL (SELECT COALESCE((p.steps -> g.i ->> 'timeout_s')::bigint * 1000, $3::bigint) "
    "AS ms) x WHERE p.policy_id = $1 ON CONFLICT (task_id) DO NOTHING RETURNING " TASK_COLS;
/* The pending task of a later step starts. */
static const char SQL_TASK_START[] =
    "UPDATE handling_tasks t SET state = 'running', attempt = 1, updated_at = now(), "
    "deadline = now() + t.timeout_ms * interval '1 millisecond' WHERE t.policy_id = $1 "
    "AND t.kind = 'apply' AND t.step = $2::int AND t.state = 'pending' RETURNING " TASK_COLS;
static const char SQL_ROLLBACK_ADD[] =
    "INSERT INTO handling_tasks AS t (task_id, event_id, account_id, entity_type, entity_value, "
    "state, policy_id, kind, step, action, dest_account, asset_id, params, attempt, "
    "max_attempts, timeout_ms, deadline, rollback_of) "
    "SELECT 'task-' || md5(a.task_id || ':rollback'), a.event_id, a.account_id, a.entity_type, "
    "a.entity_value, 'running', a.policy_id, 'rollback', a.step, $2, a.dest_account, "
    "a.asset_id, a.params, 1, a.max_attempts, a.timeout_ms, "
    "now() + a.timeout_ms * interval '1 millisecond', a.task_id FROM handling_tasks a "
    "WHERE a.task_id = $1 ON CONFLICT (task_id) DO NOTHING RETURNING " TASK_COLS;
static const char SQL_TASK_GET[] =
    "SELECT " TASK_COLS " FROM handling_tasks t WHERE t.task_id = $1 FOR UPDATE";
static const char SQL_TASK_DONE[] =
    "UPDATE handling_tasks SET state = $2, reason = $3, result = $4::jsonb, finished_at = now(), "
    "updated_at = now() WHERE task_id = $1";
static const char SQL_TASK_RETRY[] =
    "UPDATE handling_tasks t SET attempt = attempt + 1, reason = $2, updated_at = now(), "
    "deadline = now() + timeout_ms * interval '1 millisecond' WHERE task_id = $1 "
    "RETURNING " TASK_COLS;
static const char SQL_ROLLED_BACK[] =
    "UPDATE handling_tasks SET state = 'rolled_back', updated_at = now() "
    "WHERE task_id = $1 AND state = 'succeeded'";
static const char SQL_POLICY_REASON[] =
    "UPDATE handling_policies SET reason = $2, updated_at = now() WHERE policy_id = $1";
static const char SQL_POLICY_GET[] =
    "SELECT policy_id, event_id, response_id, kind, step, jsonb_array_length(steps), state, "
    "target_status, name, created_by, valid_until <= now() FROM handling_policies "
    "WHERE policy_id = $1 FOR UPDATE";
enum { PC_ID, PC_EVENT, PC_RESPONSE, PC_KIND, PC_STEP, PC_NSTEPS, PC_STATE, PC_TARGET, PC_NAME,
       PC_BY, PC_ENDED };
static const char SQL_POLICY_STEP[] =
    "UPDATE handling_policies SET step = $2::int, updated_at = now() WHERE policy_id = $1";
static const char SQL_POLICY_STATE[] =
    "UPDATE handling_policies SET state = $2, reason = CASE WHEN $3 = '' THEN reason ELSE $3 END, "
    "updated_at = now() WHERE policy_id = $1";
static const char SQL_RESPONSE_LEFT[] =
    "SELECT count(*) FILTER (WHERE state = 'applying'), count(*) FILTER (WHERE state = 'failed') "
    "FROM handling_policies WHERE response_id = $1";
static const char SQL_EVENT_STATUS[] =
    "SELECT status FROM events WHERE event_id = $1 FOR UPDATE";
static const char SQL_RESEND_RESPONSE[] =
    "SELECT " TASK_COLS " FROM handling_tasks t JOIN handling_policies p "
    "ON p.policy_id = t.policy_id WHERE p.response_id = $1 AND t.state = 'running' "
    "ORDER BY t.task_id";
/* At start: every running attempt is sent again, and its clock starts again with it. */
static const char SQL_RUNNING[] =
    "UPDATE handling_tasks t SET deadline = GREATEST(t.deadline, now() + t.timeout_ms * "
    "interval '1 millisecond') WHERE t.state = 'running' RETURNING " TASK_COLS;
static const char SQL_OVERDUE[] =
    "SELECT " TASK_COLS " FROM handling_tasks t WHERE t.state = 'running' AND t.deadline < now() "
    "ORDER BY t.deadline LIMIT 200 FOR UPDATE SKIP LOCKED";
/* Leases that ended: of policies in force, and of runs still applying (stopped). */
static const char SQL_LEASES_ENDED[] =
    "SELECT policy_id, state, event_id, kind, step, jsonb_array_length(steps) "
    "FROM handling_policies WHERE state IN ('applying', 'active', 'failed') "
    "AND NOT rolled_back AND valid_until <= now() ORDER BY valid_until LIMIT 100 "
    "FOR UPDATE SKIP LOCKED";
/* What may be in force: the applied steps, and the failed, timed-out or cancelled ones
 * whose action was sent and whose agent may have acted without its result arriving
 * (rollbacks are idempotent). */
static const char SQL_APPLIED_TASKS[] =
    "SELECT task_id, action FROM handling_tasks WHERE policy_id = $1 AND kind = 'apply' "
    "AND (state IN ('succeeded', 'failed', 'timed_out') OR (state = 'cancelled' AND "
    "attempt > 0)) ORDER BY step DESC";
/* A run whose validity ended while it was applying: its steps not finished are cancelled
 * (the pending ones never start; the running one's result is no longer awaited). */
static const char SQL_TASKS_CANCEL[] =
    "UPDATE handling_tasks t SET state = 'cancelled', finished_at = now(), updated_at = now(), "
    "reason = CASE WHEN t.state = 'running' THEN 'the validity period ended before its result "
    "came' ELSE 'the validity period ended before this step started' END "
    "WHERE t.policy_id = $1 AND t.kind = 'apply' AND t.state IN ('pending', 'running') "
    "RETURNING " TASK_COLS;
static const char SQL_LEASE_END[] =
    "UPDATE handling_policies SET rolled_back = true, updated_at = now(), state = CASE WHEN "
    "state = 'active' THEN CASE WHEN $2::int > 0 THEN 'expiring' ELSE 'expired' END ELSE state "
    "END WHERE policy_id = $1 RETURNING state";
static const char SQL_ROLLBACKS_LEFT[] =
    "SELECT count(*) FROM handling_tasks WHERE policy_id = $1 AND kind = 'rollback' "
    "AND state = 'running'";

/* ------------------------------------------------------------------ actions */

/* Queues the Action of the task in row i of res (TASK_COLS). */
static int send_action(rs_t *r, PGresult *res, int i, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    avro_value_t      *v = &r->v_action;
    char               action_id[160], key[600];
    unsigned char      sig[CWPP_SIGN_BYTES];
    cwpp_sign_action_t s;
    int                rc;

    snprintf(action_id, sizeof(action_id), "%s.%s", PQgetvalue(res, i, TC_ID),
             PQgetvalue(res, i, TC_ATTEMPT));
    snprintf(key, sizeof(key), "%s/%s", PQgetvalue(res, i, TC_DEST), PQgetvalue(res, i, TC_ASSET));
    avro_value_reset(v);
    rc = cwpp_avro_set_str(v, "action_id", action_id);
    rc |= cwpp_avro_set_str(v, "task_id", PQgetvalue(res, i, TC_ID));
    rc |= cwpp_avro_set_str(v, "policy_id", PQgetvalue(res, i, TC_POLICY));
    rc |= cwpp_avro_set_str(v, "event_id", PQgetvalue(res, i, TC_EVENT));
    rc |= cwpp_avro_set_str(v, "account_id", PQgetvalue(res, i, TC_DEST));
    rc |= cwpp_avro_set_str(v, "asset_id", PQgetvalue(res, i, TC_ASSET));
    rc |= cwpp_avro_set_str(v, "action", PQgetvalue(res, i, TC_ACTION));
    rc |= cwpp_avro_set_str(v, "params_json", PQgetvalue(res, i, TC_PARAMS));
    rc |= cwpp_avro_set_int(v, "attempt", (int32_t)strtol(PQgetvalue(res, i, TC_ATTEMPT), NULL,
                                                          10));
    /* signed over exactly the values encoded (docs/actions.md "Signatures") */
    s.action_id = action_id;
    s.task_id = PQgetvalue(res, i, TC_ID);
    s.policy_id = PQgetvalue(res, i, TC_POLICY);
    s.event_id = PQgetvalue(res, i, TC_EVENT);
    s.account_id = PQgetvalue(res, i, TC_DEST);
    s.asset_id = PQgetvalue(res, i, TC_ASSET);
    s.action = PQgetvalue(res, i, TC_ACTION);
    s.params_json = PQgetvalue(res, i, TC_PARAMS);
    s.key_id = cwpp_sign_key_id(r->signer);
    s.attempt = (int32_t)strtol(PQgetvalue(res, i, TC_ATTEMPT), NULL, 10);
    s.issued_at_ms = cwpp_now_ms();
    s.deadline_ms = strtoll(PQgetvalue(res, i, TC_DEADLINE), NULL, 10);
    rc |= cwpp_avro_set_long(v, "issued_at_ms", s.issued_at_ms);
    rc |= cwpp_avro_set_long(v, "deadline_ms", s.deadline_ms);
    rc |= cwpp_avro_set_str(v, "key_id", s.key_id);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot build Action");
    if ((rc = cwpp_sign_action(r->signer, &s, sig, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (cwpp_avro_set_bytes(v, "signature", sig, sizeof(sig)) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot build Action");
    cwpp_buf_reset(&r->buf);
    if ((rc = cwpp_avro_encode(r->t_action, v, &r->buf, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((rc = cwpp_outbox_add(out, CWPP_TOPIC_ACTIONS, key, strlen(key), r->buf.data,
                              r->buf.len)) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    cwpp_metric_add(r->m_actions, 1);
    cwpp_debug("action_sent", "%s %s to %s", action_id, PQgetvalue(res, i, TC_ACTION), key);
    return CWPP_OK;
}

/* Queues the actions of the running tasks among the rows of res. */
static int send_all(rs_t *r, PGresult *res, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size)
{
    int i, rc = CWPP_OK;

    for (i = 0; rc == CWPP_OK && i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, TC_STATE), "running") == 0)
            rc = send_action(r, res, i, out, errstr, errstr_size);
    return rc;
}

static int log_task(rs_t *r, PGresult *res, int i, const char *actor, const char *cmd,
                    const char *action, const char *reason, char *errstr, size_t errstr_size)
{
    json_t *after = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "task_id",
                              PQgetvalue(res, i, TC_ID), "policy_id",
                              PQgetvalue(res, i, TC_POLICY), "kind", PQgetvalue(res, i, TC_KIND),
                              "action", PQgetvalue(res, i, TC_ACTION), "asset_id",
                              PQgetvalue(res, i, TC_ASSET), "attempt",
                              atoi(PQgetvalue(res, i, TC_ATTEMPT)));

    if (after != NULL && reason != NULL)
        json_object_set_new(after, "reason", json_string(reason));
    return cwpp_command_log(r->pg, actor, cmd, "task", PQgetvalue(res, i, TC_ID), PQgetvalue(res,
                            i, TC_EVENT),
                            action, NULL, after, NULL, errstr, errstr_size);
}

/* Creates the tasks of a new policy (step 0 running, sent), or starts the pending task of
 * a later step. */
static int start_step(rs_t *r, const char *policy_id, int step, const char *actor,
                      const char *cmd, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    char        s[16], att[16], to[32];
    const char *p[3] = {policy_id, NULL, NULL};
    PGresult   *res = NULL;
    int         rc, i;

    snprintf(s, sizeof(s), "%d", step);
    snprintf(att, sizeof(att), "%lld", (long long)r->conf->task_attempts);
    snprintf(to, sizeof(to), "%lld", (long long)r->conf->task_timeout_ms);
    if (step == 0) {
        p[1] = att;
        p[2] = to;
        rc = cwpp_pg_query(r->pg, SQL_TASKS_ADD, 3, p, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    } else {
        p[1] = s;
        rc = cwpp_pg_query(r->pg, SQL_TASK_START, 2, p, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    }
    if (rc != CWPP_OK)
        return rc;
    rc = send_all(r, res, out, errstr, errstr_size);
    for (i = 0; rc == CWPP_OK && i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, TC_STATE), "running") == 0)
            rc = log_task(r, res, i, actor, cmd, "task.started", NULL, errstr, errstr_size);
    PQclear(res);
    return rc;
}

int rs_start_policy(rs_t *r, const char *response_id, int index, const char *event_id,
                    const char *account, const char *dest, const char *kind, const char *name,
                    const char *etype, const char *evalue, const char *asset, json_t *steps,
                    const char *target_status, int64_t validity_s, const char *actor,
                    const char *remark, json_t *out_policies, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size)
{
    char       *sj = json_dumps(steps, JSON_COMPACT);
    char        idx[16], val[32];
    const char *p[14] = {response_id, idx, event_id, account, dest, kind, name, etype, evalue,
                         asset, sj, target_status, val, actor};
    PGresult   *res = NULL;
    json_t     *pol;
    int         rc;

    if (sj == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    snprintf(idx, sizeof(idx), "%d", index);
    snprintf(val, sizeof(val), "%" PRId64, validity_s);
    rc = cwpp_pg_query(r->pg, SQL_POLICY_ADD, 14, p, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    free(sj);
    if (rc != CWPP_OK)
        return rc;
    pol = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "policy_id",
                    PQgetvalue(res, 0, 0), "kind", kind, "name", name, "entity_type", etype,
                    "entity_value", evalue, "asset_id", asset, "account", dest, "valid_until_ms",
                    (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10));
    rc = cwpp_command_log(r->pg, actor, response_id, "policy", PQgetvalue(res, 0, 0), event_id,
                          strcmp(kind, "playbook") == 0 ? "playbook.started" : "policy.created",
                          NULL,
                          json_incref(pol), remark, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = start_step(r, PQgetvalue(res, 0, 0), 0, actor, response_id, out, errstr,
                        errstr_size);
    if (rc == CWPP_OK && json_array_append_new(out_policies, pol) != 0)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    else if (rc != CWPP_OK)
        json_decref(pol);
    PQclear(res);
    return rc;
}

int rs_resend_for_response(rs_t *r, const char *response_id, cwpp_outbox_t *out, char *errstr,
                           size_t errstr_size)
{
    const char *p[1] = {response_id};
    PGresult   *res = NULL;
    int         rc = cwpp_pg_query(r->pg, SQL_RESEND_RESPONSE, 1, p, PGRES_TUPLES_OK, &res, errstr,
                                   errstr_size);

    if (rc != CWPP_OK)
        return rc;
    rc = send_all(r, res, out, errstr, errstr_size);
    PQclear(res);
    return rc;
}

/* -------------------------------------------------------------- progression */

/* The event of a response whose policies all finished: the chosen status, unless an
 * analyst moved it meanwhile (only a handling event is moved on). */
static int finish_response(rs_t *r, const char *response_id, const char *event_id,
                           const char *target, const char *cmd, char *errstr,
                           size_t errstr_size)
{
    const char *p[1] = {response_id};
    PGresult   *res = NULL;
    int         rc, done;
    char        remark[300];

    if ((rc = cwpp_pg_query(r->pg, SQL_RESPONSE_LEFT, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    done = strcmp(PQgetvalue(res, 0, 0), "0") == 0 && strcmp(PQgetvalue(res, 0, 1), "0") == 0;
    PQclear(res);
    if (!done || strcmp(target, "handling") == 0)
        return CWPP_OK;
    p[0] = event_id;
    if ((rc = cwpp_pg_query(r->pg, SQL_EVENT_STATUS, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "handling") == 0) {
        snprintf(remark, sizeof(remark), "every task of %.200s succeeded", response_id);
        rc = rs_set_status(r, event_id, "handling", target, "responder", cmd, remark, "policy",
                           NULL, errstr, errstr_size);
    }
    PQclear(res);
    return rc;
}

static int stop_run(rs_t *r, const char *pid, const char *event_id, const char *kind, int step,
                    int nsteps, const char *cmd, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size);

/* The task of its step succeeded: the next step, or the policy is applied; but a run whose
 * validity ended meanwhile starts no more steps and stops (stop_run). */
static int advance(rs_t *r, const char *policy_id, const char *cmd, cwpp_outbox_t *out,
                   char *errstr, size_t errstr_size)
{
    const char *p[3] = {policy_id, NULL, NULL};
    PGresult   *res = NULL;
    int         rc, step, nsteps;
    char        s[16];

    if ((rc = cwpp_pg_query(r->pg, SQL_POLICY_GET, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, PC_STATE), "applying") != 0) {
        PQclear(res);
        return CWPP_OK;
    }
    step = atoi(PQgetvalue(res, 0, PC_STEP));
    nsteps = atoi(PQgetvalue(res, 0, PC_NSTEPS));
    if (PQgetvalue(res, 0, PC_ENDED)[0] == 't') {
        rc = stop_run(r, policy_id, PQgetvalue(res, 0, PC_EVENT), PQgetvalue(res, 0, PC_KIND),
                      step, nsteps, cmd, out, errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    if (step + 1 < nsteps) {
        snprintf(s, sizeof(s), "%d", step + 1);
        p[1] = s;
        rc = cwpp_pg_query(r->pg, SQL_POLICY_STEP, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                           errstr_size);
        if (rc == CWPP_OK)
            rc = start_step(r, policy_id, step + 1, "responder", cmd, out, errstr, errstr_size);
        PQclear(res);
        return rc;
    }
    p[1] = "active";
    p[2] = "";
    rc = cwpp_pg_query(r->pg, SQL_POLICY_STATE, 3, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = cwpp_command_log(r->pg, "responder", cmd, "policy", policy_id, PQgetvalue(res, 0,
                              PC_EVENT),
                              strcmp(PQgetvalue(res, 0, PC_KIND),
                              "playbook") == 0 ? "playbook.completed"
                              : "policy.active",
                              json_pack("{s:s}", "state", "applying"), json_pack("{s:s}", "state",
                              "active"),
                              NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = finish_response(r, PQgetvalue(res, 0, PC_RESPONSE), PQgetvalue(res, 0, PC_EVENT),
                             PQgetvalue(res, 0, PC_TARGET), cmd, errstr, errstr_size);
    PQclear(res);
    return rc;
}

/* A task of the policy failed for good: the policy and its event fail. */
static int fail_policy(rs_t *r, const char *policy_id, const char *why, const char *cmd,
                       char *errstr, size_t errstr_size)
{
    const char *p[3] = {policy_id, "failed", why};
    PGresult   *res = NULL, *ev = NULL;
    int         rc;

    if ((rc = cwpp_pg_query(r->pg, SQL_POLICY_GET, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, PC_STATE), "applying") != 0) {
        PQclear(res);
        return CWPP_OK;
    }
    rc = cwpp_pg_query(r->pg, SQL_POLICY_STATE, 3, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = cwpp_command_log(r->pg, "responder", cmd, "policy", policy_id, PQgetvalue(res, 0,
                              PC_EVENT),
                              strcmp(PQgetvalue(res, 0, PC_KIND),
                              "playbook") == 0 ? "playbook.failed"
                              : "policy.failed",
                              json_pack("{s:s}", "state", "applying"),
                              json_pack("{s:s, s:s}", "state", "failed", "reason", why), NULL,
                              errstr,
                              errstr_size);
    if (rc == CWPP_OK) {
        const char *pe[1] = {PQgetvalue(res, 0, PC_EVENT)};

        rc = cwpp_pg_query(r->pg, SQL_EVENT_STATUS, 1, pe, PGRES_TUPLES_OK, &ev, errstr,
                           errstr_size);
        if (rc == CWPP_OK && PQntuples(ev) == 1 && strcmp(PQgetvalue(ev, 0, 0), "handled") != 0 &&
            strcmp(PQgetvalue(ev, 0, 0), "failed") != 0)
            rc = rs_set_status(r, pe[0], PQgetvalue(ev, 0, 0), "failed", "responder", cmd, why,
                               PQgetvalue(res, 0, PC_KIND), NULL, errstr, errstr_size);
        PQclear(ev);
    }
    PQclear(res);
    return rc;
}

/* A rollback task ended: the policy is expired once none is running. */
static int finish_expiry(rs_t *r, const char *policy_id, const char *cmd, char *errstr,
                         size_t errstr_size)
{
    const char *p[3] = {policy_id, "expired", ""};
    PGresult   *res = NULL, *left = NULL;
    int         rc;

    if ((rc = cwpp_pg_query(r->pg, SQL_POLICY_GET, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, PC_STATE), "expiring") != 0) {
        PQclear(res);
        return CWPP_OK;
    }
    rc = cwpp_pg_query(r->pg, SQL_ROLLBACKS_LEFT, 1, p, PGRES_TUPLES_OK, &left, errstr,
                       errstr_size);
    if (rc == CWPP_OK && strcmp(PQgetvalue(left, 0, 0), "0") == 0) {
        rc = cwpp_pg_query(r->pg, SQL_POLICY_STATE, 3, p, PGRES_COMMAND_OK, NULL, errstr,
                           errstr_size);
        if (rc == CWPP_OK)
            rc = cwpp_command_log(r->pg, "responder", cmd, "policy", policy_id, PQgetvalue(res, 0,
                                  PC_EVENT),
                                  "policy.expired", json_pack("{s:s}", "state", "expiring"),
                                  json_pack("{s:s}", "state", "expired"), NULL, errstr,
                                  errstr_size);
    }
    PQclear(left);
    PQclear(res);
    return rc;
}

/* Another attempt of the task in row i of t (locked), or its end when none is left. */
static int retry_or_fail(rs_t *r, PGresult *t, int i, const char *final_state,
                         const char *why, const char *details, const char *cmd,
                         cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    const char *id = PQgetvalue(t, i, TC_ID);
    int         attempt = atoi(PQgetvalue(t, i, TC_ATTEMPT));
    int         rc;

    if (attempt < atoi(PQgetvalue(t, i, TC_MAX))) {
        char        reason[700];
        const char *p[2] = {id, reason};
        PGresult   *res = NULL;

        snprintf(reason, sizeof(reason), "attempt %d: %s", attempt, why);
        cwpp_utf8_sanitize(reason);
        if ((rc = cwpp_pg_query(r->pg, SQL_TASK_RETRY, 2, p, PGRES_TUPLES_OK, &res, errstr,
                                errstr_size)))
            return rc;
        rc = send_all(r, res, out, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = log_task(r, res, 0, "responder", cmd, "task.retry", reason, errstr, errstr_size);
        PQclear(res);
        cwpp_metric_add(r->m_retries, 1);
        return rc;
    }
    {
        const char *p[4] = {id, final_state, why, details};

        rc = cwpp_pg_query(r->pg, SQL_TASK_DONE, 4, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    }
    if (rc == CWPP_OK)
        rc = log_task(r, t, i, "responder", cmd,
                      strcmp(final_state, "timed_out") == 0 ? "task.timed_out" : "task.failed",
                      why, errstr, errstr_size);
    if (rc != CWPP_OK)
        return rc;
    if (strcmp(PQgetvalue(t, i, TC_KIND), "apply") == 0) {
        char msg[800];

        snprintf(msg, sizeof(msg), "%s of task %s %s: %s", PQgetvalue(t, i, TC_ACTION), id,
                 strcmp(final_state, "timed_out") == 0 ? "timed out" : "failed", why);
        cwpp_utf8_sanitize(msg);
        return fail_policy(r, PQgetvalue(t, i, TC_POLICY), msg, cmd, errstr, errstr_size);
    }
    {
        char        msg[800];
        const char *p[2] = {PQgetvalue(t, i, TC_POLICY), msg};

        snprintf(msg, sizeof(msg), "rollback %s of task %s %s: %s; the effect may still be in "
                 "place", PQgetvalue(t, i, TC_ACTION), PQgetvalue(t, i, TC_ROLLBACK_OF),
                 strcmp(final_state, "timed_out") == 0 ? "timed out" : "failed", why);
        cwpp_utf8_sanitize(msg);
        cwpp_warn("rollback_failed", "policy %s: %s", p[0], msg);
        cwpp_metric_add(r->m_rollbacks_failed, 1);
        rc = cwpp_pg_query(r->pg, SQL_POLICY_REASON, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                           errstr_size);
    }
    return rc == CWPP_OK ? finish_expiry(r, PQgetvalue(t, i, TC_POLICY), cmd, errstr,
                                         errstr_size)
                         : rc;
}

/* ------------------------------------------------------------------ results */

/* The first at most max bytes of s into dst (max + 1 bytes), cut at a character boundary
 * (s is valid UTF-8: the Avro decoder checked it). */
static void text_prefix(char *dst, const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

int rs_apply_result(rs_t *r, const rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size)
{
    const char  *action_id, *task_id, *status, *reason, *details, *agent;
    const char  *dot;
    char         why[300], att[16], rbuf[CWPP_RESULT_MAX_REASON + 1];
    PGresult    *t = NULL;
    json_t      *dj;
    json_error_t jerr;
    char        *dtext = NULL;
    int          rc;

    if (cwpp_avro_decode(r->t_aresult, m->payload, m->len, &r->v_aresult, why, sizeof(why)) !=
        CWPP_OK)
        return rs_dead_letter(r, m, "bad_avro", why, out, errstr, errstr_size);
    if (cwpp_avro_get_str(&r->v_aresult, "action_id", &action_id) != CWPP_OK ||
        cwpp_avro_get_str(&r->v_aresult, "task_id", &task_id) != CWPP_OK ||
        cwpp_avro_get_enum(&r->v_aresult, "status", &status) != CWPP_OK ||
        cwpp_avro_get_str(&r->v_aresult, "reason", &reason) != CWPP_OK ||
        cwpp_avro_get_str(&r->v_aresult, "agent", &agent) != CWPP_OK ||
        cwpp_avro_get_str(&r->v_aresult, "details_json", &details) != CWPP_OK)
        return rs_dead_letter(r, m, "bad_avro", "the ActionResult record is incomplete", out,
                              errstr, errstr_size);
    dot = strrchr(action_id, '.');
    if (dot == NULL || (size_t)(dot - action_id) != strlen(task_id) ||
        strncmp(action_id, task_id, strlen(task_id)) != 0 || strlen(dot + 1) == 0 ||
        strlen(dot + 1) >= sizeof(att) || strspn(dot + 1, "0123456789") != strlen(dot + 1))
        return rs_dead_letter(r, m, "invalid_result",
                              "the action id is not the task id, a dot and the attempt", out,
                              errstr, errstr_size);
    snprintf(att, sizeof(att), "%s", dot + 1);
    {
        const char *p[1] = {task_id};

        if ((rc = cwpp_pg_query(r->pg, SQL_TASK_GET, 1, p, PGRES_TUPLES_OK, &t, errstr,
                                errstr_size)))
            return rc;
    }
    if (PQntuples(t) == 1) {
        const char *acc, *asset, *act;

        if (cwpp_avro_get_str(&r->v_aresult, "account_id", &acc) != CWPP_OK ||
            cwpp_avro_get_str(&r->v_aresult, "asset_id", &asset) != CWPP_OK ||
            cwpp_avro_get_str(&r->v_aresult, "action", &act) != CWPP_OK ||
            strcmp(acc, PQgetvalue(t, 0, TC_DEST)) != 0 ||
            strcmp(asset, PQgetvalue(t, 0, TC_ASSET)) != 0 ||
            strcmp(act, PQgetvalue(t, 0, TC_ACTION)) != 0) {
            PQclear(t);
            return rs_dead_letter(r, m, "invalid_result",
                                  "the result's account, asset or action is not its task's "
                                  "(an agent answered for another host)", out, errstr,
                                  errstr_size);
        }
    }
    /* The running attempt's result; or a success of an earlier attempt that came late (its
     * effect happened: the retry would only find it done, or fail on it). */
    if (PQntuples(t) == 0 || strcmp(PQgetvalue(t, 0, TC_STATE), "running") != 0 ||
        (strcmp(PQgetvalue(t, 0, TC_ATTEMPT), att) != 0 &&
         !(strcmp(status, "succeeded") == 0 &&
           strtol(att, NULL, 10) < strtol(PQgetvalue(t, 0, TC_ATTEMPT), NULL, 10)))) {
        cwpp_metric_add(r->m_stale_results, 1);
        cwpp_info("result_stale", "result %s (%s) ignored: %s", action_id, status,
                  PQntuples(t) == 0 ? "no such task" : "that attempt is over");
        PQclear(t);
        return CWPP_OK;
    }
    /* An agent's reason and details are kept, cut to their limits (cwpp_alert_limits.h):
     * the result itself (the task's outcome) must not be lost to an over-long text. */
    if (strlen(reason) > CWPP_RESULT_MAX_REASON) {
        text_prefix(rbuf, reason, CWPP_RESULT_MAX_REASON);
        reason = rbuf;
    }
    /* an agent's details are kept as JSON when they are an object, else as text */
    if (strlen(details) > CWPP_RESULT_MAX_DETAILS) {
        char *head = malloc(CWPP_RESULT_MAX_REASON + 1);

        if (head == NULL) {
            PQclear(t);
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        }
        text_prefix(head, details, CWPP_RESULT_MAX_REASON);
        dj = json_pack("{s:s, s:b, s:I}", "text", head, "truncated", 1, "length",
                       (json_int_t)strlen(details));
        free(head);
    } else {
        dj = json_loads(details, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(dj)) {
            json_decref(dj);
            dj = json_pack("{s:s}", "text", details);
        }
    }
    if (dj != NULL)
        json_object_set_new(dj, "agent", json_string(agent));
    dtext = dj != NULL ? json_dumps(dj, JSON_COMPACT) : NULL;
    json_decref(dj);
    if (dtext == NULL) {
        PQclear(t);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    cwpp_metric_add(r->m_results, 1);
    if (strcmp(status, "succeeded") == 0) {
        const char *p[4] = {task_id, "succeeded", reason, dtext};

        rc = cwpp_pg_query(r->pg, SQL_TASK_DONE, 4, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = log_task(r, t, 0, "responder", action_id, "task.succeeded", reason, errstr,
                          errstr_size);
        if (rc == CWPP_OK && strcmp(PQgetvalue(t, 0, TC_KIND), "apply") == 0) {
            rc = advance(r, PQgetvalue(t, 0, TC_POLICY), action_id, out, errstr, errstr_size);
        } else if (rc == CWPP_OK) {
            const char *pr[1] = {PQgetvalue(t, 0, TC_ROLLBACK_OF)};

            rc = cwpp_pg_query(r->pg, SQL_ROLLED_BACK, 1, pr, PGRES_COMMAND_OK, NULL, errstr,
                               errstr_size);
            if (rc == CWPP_OK)
                rc = cwpp_command_log(r->pg, "responder", action_id, "task", pr[0], PQgetvalue(t,
                                      0, TC_EVENT),
                                      "task.rolled_back", json_pack("{s:s}", "state", "succeeded"),
                                      json_pack("{s:s, s:s}", "state", "rolled_back", "by",
                                      PQgetvalue(t, 0, TC_ID)), NULL, errstr, errstr_size);
            if (rc == CWPP_OK)
                rc = finish_expiry(r, PQgetvalue(t, 0, TC_POLICY), action_id, errstr,
                                   errstr_size);
        }
    } else {
        rc = retry_or_fail(r, t, 0, "failed", reason, dtext, action_id, out, errstr, errstr_size);
    }
    free(dtext);
    PQclear(t);
    return rc;
}

/* -------------------------------------------------------------------- timer */

/* Ends the lease of policy pid (locked by the caller; its state was from): the rollback of
 * every step that may be in force is sent (as actor, for command cmd: NULL for the timer)
 * and the policy is expiring, expired, or stays failed. *state_out (may be NULL) gets the
 * new state (static), *nrollbacks the rollbacks sent. */
static int lease_end(rs_t *r, const char *pid, const char *from, const char *event_id,
                     const char *actor, const char *cmd, const char *action,
                     const char *remark, const char **state_out, int *nrollbacks,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    const char *p[2] = {pid, NULL};
    PGresult   *tasks = NULL, *res = NULL;
    int         rc, j, n = 0;
    char        ns[16];
    const char *st;

    if ((rc = cwpp_pg_query(r->pg, SQL_APPLIED_TASKS, 1, p, PGRES_TUPLES_OK, &tasks, errstr,
                            errstr_size)))
        return rc;
    for (j = 0; rc == CWPP_OK && j < PQntuples(tasks); j++) {
        const cwpp_action_def_t *a = cwpp_action_find(PQgetvalue(tasks, j, 1));
        const char              *pr[2] = {PQgetvalue(tasks, j, 0), NULL};

        if (a == NULL || a->rollback == NULL)
            continue;
        pr[1] = a->rollback;
        rc = cwpp_pg_query(r->pg, SQL_ROLLBACK_ADD, 2, pr, PGRES_TUPLES_OK, &res, errstr,
                           errstr_size);
        if (rc == CWPP_OK)
            rc = send_all(r, res, out, errstr, errstr_size);
        if (rc == CWPP_OK && PQntuples(res) == 1)
            rc = log_task(r, res, 0, actor, cmd, "task.started", remark, errstr, errstr_size);
        PQclear(res);
        res = NULL;
        n++;
    }
    PQclear(tasks);
    if (rc != CWPP_OK)
        return rc;
    snprintf(ns, sizeof(ns), "%d", n);
    p[1] = ns;
    if ((rc = cwpp_pg_query(r->pg, SQL_LEASE_END, 2, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    st = strcmp(PQgetvalue(res, 0, 0), "expiring") == 0  ? "expiring"
         : strcmp(PQgetvalue(res, 0, 0), "expired") == 0 ? "expired"
                                                          : "failed";
    PQclear(res);
    if (action == NULL)
        action = strcmp(st, "expiring") == 0  ? "policy.expiring"
                 : strcmp(st, "expired") == 0 ? "policy.expired"
                                              : "policy.lease_ended";
    rc = cwpp_command_log(r->pg, actor, cmd, "policy", pid, event_id, action,
                          json_pack("{s:s}", "state", from),
                          json_pack("{s:s, s:i}", "state", st, "rollbacks", n), remark, errstr,
                          errstr_size);
    if (state_out != NULL)
        *state_out = st;
    if (nrollbacks != NULL)
        *nrollbacks = n;
    cwpp_metric_add(r->m_expired, 1);
    return rc;
}

static int end_lease(rs_t *r, PGresult *pol, int i, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    return lease_end(r, PQgetvalue(pol, i, 0), PQgetvalue(pol, i, 1), PQgetvalue(pol, i, 2),
                     "responder", NULL, NULL, "the validity period ended", NULL, NULL, out,
                     errstr, errstr_size);
}

/* The validity of policy pid (locked; kind "policy" or "playbook") ended while it was still
 * applying, at step (0-based) of nsteps: it starts no more steps (those not finished are
 * cancelled), fails with that reason (and so does its event, as for a failed step), and
 * what may be in force is rolled back (docs/responder.md "Validity"). */
static int stop_run(rs_t *r, const char *pid, const char *event_id, const char *kind, int step,
                    int nsteps, const char *cmd, cwpp_outbox_t *out, char *errstr,
                    size_t errstr_size)
{
    const char *p[1] = {pid};
    PGresult   *res = NULL;
    char        why[300];
    int         rc, i;

    if ((rc = cwpp_pg_query(r->pg, SQL_TASKS_CANCEL, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    for (i = 0; rc == CWPP_OK && i < PQntuples(res); i++)
        rc = log_task(r, res, i, "responder", cmd, "task.cancelled",
                      "the validity period ended", errstr, errstr_size);
    PQclear(res);
    if (rc != CWPP_OK)
        return rc;
    snprintf(why, sizeof(why), "the validity period ended at step %d of %d, before the %s "
             "completed", step + 1, nsteps, strcmp(kind, "playbook") == 0 ? "playbook"
                                                                          : "policy");
    cwpp_info("run_stopped", "policy %s: %s", pid, why);
    if ((rc = fail_policy(r, pid, why, cmd, errstr, errstr_size)) != CWPP_OK)
        return rc;
    return lease_end(r, pid, "failed", event_id, "responder", cmd, NULL,
                     "the validity period ended", NULL, NULL, out, errstr, errstr_size);
}

/* ------------------------------------------------------------------- cancel */

static const char SQL_POLICY_CANCEL_GET[] =
    "SELECT policy_id, event_id, account_id, state, rolled_back, kind, step, "
    "jsonb_array_length(steps) FROM handling_policies WHERE policy_id = $1 FOR UPDATE";
static const char SQL_POLICY_CUT[] =
    "UPDATE handling_policies SET valid_until = LEAST(valid_until, now()), updated_at = now() "
    "WHERE policy_id = $1 RETURNING " "to_char(valid_until AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
static const char SQL_ROLLBACKS_RUNNING[] =
    "SELECT " TASK_COLS " FROM handling_tasks t WHERE t.policy_id = $1 AND t.kind = 'rollback' "
    "AND t.state = 'running' ORDER BY t.task_id";

int rs_cmd_policies_cancel(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                           cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *pid = json_string_value(json_object_get(c->payload, "policy_id"));
    const char *remark = json_string_value(json_object_get(c->payload, "remark"));
    const char *p[1] = {pid}, *st = NULL;
    PGresult   *res = NULL, *cut = NULL;
    char        from[16], event_id[256], note[4200];
    int         rc, n = 0;

    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (pid == NULL || pid[0] == '\0')
        return cwpp_command_refuse(rp, "The command names no policy (\"policy_id\").");
    if ((rc = cwpp_pg_query(r->pg, SQL_POLICY_CANCEL_GET, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return cwpp_command_refuse(rp, "There is no policy \"%.100s\" (cwppctl events tasks "
                                   "EVENT_ID shows an event's policies).", pid);
    }
    if (!cwpp_commander_permit(r->cmd, c, PQgetvalue(res, 0, 2), "policy", rp, &rc, errstr,
                               errstr_size)) {
        PQclear(res);
        return rc;
    }
    snprintf(from, sizeof(from), "%s", PQgetvalue(res, 0, 3));
    snprintf(event_id, sizeof(event_id), "%s", PQgetvalue(res, 0, 1));
    if (strcmp(from, "applying") == 0) {
        cwpp_command_refuse(rp, "Policy %.100s is still applying (step %d of %s): its result is "
                            "awaited; cancel it once it is active or failed.", pid,
                            atoi(PQgetvalue(res, 0, 6)) + 1, PQgetvalue(res, 0, 7));
        PQclear(res);
        return CWPP_OK;
    }
    if (PQgetvalue(res, 0, 4)[0] == 't' || (strcmp(from, "active") != 0 &&
                                            strcmp(from, "failed") != 0)) {
        cwpp_command_refuse(rp, "Policy %.100s has ended already (%s%s): there is nothing "
                            "to cancel.", pid, from,
                            PQgetvalue(res, 0, 4)[0] == 't' ? ", rolled back" : "");
        PQclear(res);
        return CWPP_OK;
    }
    PQclear(res);
    if ((rc = cwpp_pg_query(r->pg, SQL_POLICY_CUT, 1, p, PGRES_TUPLES_OK, &cut, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    snprintf(note, sizeof(note), "cancelled by %.64s%s%.4000s", c->actor,
             remark != NULL && remark[0] ? ": " : "", remark != NULL ? remark : "");
    cwpp_utf8_sanitize(note);
    rc = lease_end(r, pid, from, event_id, c->actor, c->id, "policy.cancelled", note, &st, &n,
                   out, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = rs_touch(r, event_id, errstr, errstr_size);
    if (rc == CWPP_OK) {
        rp->result = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s}", "policy_id", pid, "event_id",
                               event_id, "before", from, "state", st, "rollbacks", n,
                               "valid_until", PQgetvalue(cut, 0, 0));
        if (rp->result == NULL)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    PQclear(cut);
    if (rc != CWPP_OK)
        return rc;
    if (n == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Policy %.100s cancelled: no step had anything to "
                 "roll back; it is %s.", pid, st);
    else
        snprintf(rp->msg, sizeof(rp->msg), "Policy %.100s cancelled: %d rollback%s sent; %s.",
                 pid, n, n == 1 ? "" : "s",
                 strcmp(st, "expiring") == 0 ? "it is expired once they are done"
                                             : "it stays failed");
    return CWPP_OK;
}

int rs_resend_rollbacks(rs_t *r, const char *policy_id, cwpp_outbox_t *out, char *errstr,
                        size_t errstr_size)
{
    const char *p[1] = {policy_id};
    PGresult   *res = NULL;
    int         rc = cwpp_pg_query(r->pg, SQL_ROLLBACKS_RUNNING, 1, p, PGRES_TUPLES_OK, &res,
                                   errstr, errstr_size);

    if (rc != CWPP_OK)
        return rc;
    rc = send_all(r, res, out, errstr, errstr_size);
    PQclear(res);
    return rc;
}

int rs_tick(rs_t *r, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    PGresult *res = NULL;
    int       rc, i;

    if (r->resent == 0) {
        /* after a start: what was queued when the last run stopped may never have left */
        if ((rc = cwpp_pg_query(r->pg, SQL_RUNNING, 0, NULL, PGRES_TUPLES_OK, &res, errstr,
                                errstr_size)))
            return rc;
        rc = send_all(r, res, out, errstr, errstr_size);
        if (rc == CWPP_OK && PQntuples(res) > 0)
            cwpp_info("actions_resent", "%d running task(s) sent again after start",
                      PQntuples(res));
        PQclear(res);
        if (rc != CWPP_OK)
            return rc;
        r->resent = -1;
    }
    if ((rc = cwpp_pg_query(r->pg, SQL_OVERDUE, 0, NULL, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    for (i = 0; rc == CWPP_OK && i < PQntuples(res); i++) {
        char why[200];

        snprintf(why, sizeof(why), "no result from the agent of %s within its timeout",
                 PQgetvalue(res, i, TC_ASSET));
        cwpp_metric_add(r->m_timeouts, 1);
        rc = retry_or_fail(r, res, i, "timed_out", why, "{}", NULL, out, errstr, errstr_size);
    }
    PQclear(res);
    if (rc != CWPP_OK)
        return rc;
    if ((rc = cwpp_pg_query(r->pg, SQL_LEASES_ENDED, 0, NULL, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)))
        return rc;
    for (i = 0; rc == CWPP_OK && i < PQntuples(res); i++)
        rc = strcmp(PQgetvalue(res, i, 1), "applying") == 0
                 ? stop_run(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 2),
                            PQgetvalue(res, i, 3), atoi(PQgetvalue(res, i, 4)),
                            atoi(PQgetvalue(res, i, 5)), NULL, out, errstr, errstr_size)
                 : end_lease(r, res, i, out, errstr, errstr_size);
    PQclear(res);
    return rc;
}
