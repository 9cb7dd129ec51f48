/* SPDX-License-Identifier: Apache-2.0 */
/*
 * command.c: the command protocol (cwpp_command.h): decoding a Command, the checks every
 * command passes (issue time, payload, actor, staleness, a known type; a known, enabled
 * user, an admin where the type says so), apply-once through commands_applied, the
 * savepoint around the service's handler, and the answer (commands_applied, the
 * CommandResult on the outbox, a log line, a metric).
 *
 * Assumes the commands_applied, activity_log, users and user_accounts tables of
 * schemas/sql (002_whitelist.sql, 005_responder.sql) and that the service's role may
 * read users and user_accounts and insert into the other two.
 */
#include "cwpp_command.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_util.h"

/* A command issued this far ahead of the receiver's clock is refused. */
#define FUTURE_MS 300000
/* A user name's most bytes (the users table's check): a longer actor is nobody. */
#define ACTOR_MAX 64

static const char SQL_LOCK[] = "SELECT pg_advisory_xact_lock(hashtext($1))";
static const char SQL_APPLIED[] =
    "SELECT status, message, result::text FROM commands_applied WHERE command_id = $1";
static const char SQL_RECORD[] =
    "INSERT INTO commands_applied (command_id, service, type, actor, status, message, result) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING";
static const char SQL_ACTOR[] =
    "SELECT u.role, u.disabled_at IS NOT NULL, EXISTS (SELECT 1 FROM user_accounts ua "
    "WHERE ua.user_name = u.user_name AND ua.account_id = $2) FROM users u "
    "WHERE u.user_name = $1";
static const char SQL_LOG[] =
    "INSERT INTO activity_log (actor, command_id, object_type, object_id, event_id, action, "
    "before, after, remark) VALUES ($1, $2, $3, $4, COALESCE($5, CASE WHEN $3 = 'alert' THEN "
    "(SELECT ea.event_id FROM event_alerts ea JOIN events e USING (event_id) "
    "WHERE ea.alert_id = $4 ORDER BY e.last_seen DESC LIMIT 1) END), $6, $7::jsonb, $8::jsonb, "
    "$9) ON CONFLICT DO NOTHING";

struct cwpp_commander {
    cwpp_command_conf_t conf;     /* as given (borrowed table, strings, svc) */
    cwpp_pg_t          *pg;       /* the service's connection (borrowed) */
    cwpp_metrics_t     *metrics;  /* the service's registry (borrowed) */
    cwpp_avro_type_t   *t_cmd;    /* command schema */
    cwpp_avro_type_t   *t_result; /* command_result schema */
    avro_value_t        v_cmd;    /* scratch: the record being applied */
    avro_value_t        v_result; /* scratch: the answer being encoded */
    int                 nvalues;  /* how many of the two values exist (for destroy) */
    cwpp_buf_t          buf;      /* the encoded answer */
};

/* ------------------------------------------------------------- the record */

int cwpp_command_decode(const cwpp_avro_type_t *t, avro_value_t *v, const void *p, size_t len,
                        size_t max_id, cwpp_command_t *c, char *why, size_t why_size)
{
    const char  *pj;
    json_error_t jerr;

    memset(c, 0, sizeof(*c));
    if (cwpp_avro_decode(t, p, len, v, why, why_size) != CWPP_OK)
        return -1;
    if (cwpp_avro_get_str(v, "command_id", &c->id) != CWPP_OK ||
        cwpp_avro_get_str(v, "service", &c->service) != CWPP_OK ||
        cwpp_avro_get_str(v, "type", &c->type) != CWPP_OK ||
        cwpp_avro_get_str(v, "actor", &c->actor) != CWPP_OK ||
        cwpp_avro_get_long(v, "issued_at_ms", &c->issued_at_ms) != CWPP_OK ||
        cwpp_avro_get_str(v, "payload_json", &pj) != CWPP_OK) {
        snprintf(why, why_size, "the Command record is incomplete");
        return -1;
    }
    if (c->id[0] == '\0' || strlen(c->id) > max_id) {
        snprintf(why, why_size, "the command id is empty or longer than %zu characters", max_id);
        return -1;
    }
    c->payload = json_loads(pj, JSON_REJECT_DUPLICATES, &jerr);
    if (c->payload != NULL && !json_is_object(c->payload)) {
        json_decref(c->payload);
        c->payload = NULL;
    }
    return 0;
}

int cwpp_command_result(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                        const char *service, const cwpp_command_t *c, const char *status,
                        const char *message, const char *result_json, char *errstr,
                        size_t errstr_size)
{
    int rc;

    avro_value_reset(v);
    rc = cwpp_avro_set_str(v, "command_id", c->id);
    rc |= cwpp_avro_set_str(v, "service", service);
    rc |= cwpp_avro_set_str(v, "type", c->type);
    rc |= cwpp_avro_set_str(v, "actor", c->actor);
    rc |= cwpp_avro_set_enum(v, "status", status);
    rc |= cwpp_avro_set_str(v, "message", message);
    rc |= cwpp_avro_set_str(v, "result_json", result_json);
    rc |= cwpp_avro_set_long(v, "answered_at_ms", cwpp_now_ms());
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot build CommandResult");
    cwpp_buf_reset(buf);
    return cwpp_avro_encode(t, v, buf, errstr, errstr_size);
}

/* ------------------------------------------------------------ pure checks */

int cwpp_command_refuse(cwpp_command_reply_t *rp, const char *fmt, ...)
{
    va_list ap;

    rp->status = "error";
    va_start(ap, fmt);
    vsnprintf(rp->msg, sizeof(rp->msg), fmt, ap);
    va_end(ap);
    return CWPP_OK;
}

const cwpp_command_def_t *cwpp_command_find(const cwpp_command_def_t *table, size_t n,
                                            const char *type)
{
    size_t i;

    for (i = 0; type != NULL && i < n; i++)
        if (strcmp(table[i].type, type) == 0)
            return &table[i];
    return NULL;
}

const cwpp_command_def_t *cwpp_command_precheck(const cwpp_command_t *c, const char *service,
                                                const cwpp_command_def_t *table, size_t n,
                                                int64_t now_ms, int64_t max_age_ms,
                                                const char *max_age_key, char *why,
                                                size_t why_size)
{
    const cwpp_command_def_t *def;
    int64_t                   age;
    size_t                    i, used;

    if (c->issued_at_ms <= 0 || c->issued_at_ms > now_ms + FUTURE_MS) {
        snprintf(why, why_size, "The command's issue time (%" PRId64 " ms) is not a time of "
                 "the last years or the next 5 minutes; check the sender's clock.",
                 c->issued_at_ms);
        return NULL;
    }
    if (c->payload == NULL) {
        snprintf(why, why_size, "The command's payload is not a JSON object.");
        return NULL;
    }
    if (c->actor == NULL || c->actor[0] == '\0') {
        snprintf(why, why_size, "The command names no actor; every change must say who "
                 "makes it.");
        return NULL;
    }
    if (strlen(c->actor) > ACTOR_MAX) {
        snprintf(why, why_size, "The command's actor is %zu bytes, longer than a user name "
                 "can be (%d bytes); nothing was changed.", strlen(c->actor), ACTOR_MAX);
        return NULL;
    }
    age = now_ms - c->issued_at_ms;
    if (age > max_age_ms) {
        snprintf(why, why_size, "Stale command: issued %" PRId64 " s ago, longer than %s "
                 "allows (%" PRId64 " s). Nothing was changed; decide again on things as "
                 "they are now.", age / 1000, max_age_key, max_age_ms / 1000);
        return NULL;
    }
    if ((def = cwpp_command_find(table, n, c->type)) != NULL)
        return def;
    used = (size_t)snprintf(why, why_size, "Unknown %s command \"%.60s\" (", service, c->type);
    for (i = 0; i < n && used < why_size; i++)
        used += (size_t)snprintf(why + used, why_size - used, "%s%s", i > 0 ? ", " : "",
                                 table[i].type);
    if (used < why_size)
        snprintf(why + used, why_size - used, ").");
    cwpp_utf8_sanitize(why); /* the type was cut at 60 bytes */
    return NULL;
}

/* -------------------------------------------------------------- lifecycle */

void cwpp_commander_destroy(cwpp_commander_t *cm)
{
    if (cm == NULL)
        return;
    if (cm->nvalues > 1)
        avro_value_decref(&cm->v_result);
    if (cm->nvalues > 0)
        avro_value_decref(&cm->v_cmd);
    cwpp_avro_type_destroy(cm->t_cmd);
    cwpp_avro_type_destroy(cm->t_result);
    cwpp_buf_free(&cm->buf);
    free(cm);
}

cwpp_commander_t *cwpp_commander_new(const cwpp_command_conf_t *conf, cwpp_pg_t *pg,
                                     cwpp_metrics_t *metrics, char *errstr,
                                     size_t errstr_size)
{
    cwpp_commander_t *cm = calloc(1, sizeof(*cm));

    assert(conf->service != NULL && conf->table != NULL && conf->metric != NULL &&
           conf->dead_letter != NULL && conf->max_age_key != NULL);
    if (cm == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    cm->conf = *conf;
    cm->pg = pg;
    cm->metrics = metrics;
    if ((cm->t_cmd = cwpp_avro_type_builtin("command", errstr, errstr_size)) == NULL ||
        (cm->t_result = cwpp_avro_type_builtin("command_result", errstr, errstr_size)) == NULL)
        goto fail;
    if (cwpp_avro_value_new(cm->t_cmd, &cm->v_cmd) != CWPP_OK)
        goto fail_values;
    cm->nvalues = 1;
    if (cwpp_avro_value_new(cm->t_result, &cm->v_result) != CWPP_OK)
        goto fail_values;
    cm->nvalues = 2;
    {
        /* both outcomes' series exist from the start (dashboards, absent() alerts) */
        static const char *const outcomes[] = {"ok", "error"};
        char                     name[200];
        size_t                   i;

        for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
            snprintf(name, sizeof(name), "%s{status=\"%s\"}", cm->conf.metric, outcomes[i]);
            cwpp_counter(cm->metrics, name, "Commands answered, by outcome.");
        }
    }
    return cm;
fail_values:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot make the command Avro values");
fail:
    cwpp_commander_destroy(cm);
    return NULL;
}

/* ----------------------------------------------------------------- actors */

/* What the database says of an actor and an account. */
typedef enum actor_state {
    ACTOR_UNKNOWN = 0,   /* no such user */
    ACTOR_DISABLED,      /* a disabled user */
    ACTOR_VIEWER,        /* an enabled viewer: reads, never acts (whatever the command) */
    ACTOR_ADMIN,         /* an enabled admin: every account */
    ACTOR_NOT_ADMIN,     /* an enabled user, and only an admin may (account NULL) */
    ACTOR_PERMITTED,     /* an enabled user holding the account */
    ACTOR_NO_PERMISSION  /* an enabled user not holding the account */
} actor_state_t;

/* Looks user up (and whether they hold account; NULL: only an admin may). Returns 0 with
 * *st, or a project code with errstr on a database error. */
static int actor_state(cwpp_commander_t *cm, const char *user, const char *account,
                       actor_state_t *st, char *errstr, size_t errstr_size)
{
    PGresult   *res = NULL;
    const char *p[2] = {user, account != NULL ? account : ""};
    int         rc;

    if ((rc = cwpp_pg_query(cm->pg, SQL_ACTOR, 2, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(res) == 0)
        *st = ACTOR_UNKNOWN;
    else if (PQgetvalue(res, 0, 1)[0] == 't')
        *st = ACTOR_DISABLED;
    else if (strcmp(PQgetvalue(res, 0, 0), "admin") == 0)
        *st = ACTOR_ADMIN;
    else if (strcmp(PQgetvalue(res, 0, 0), "analyst") != 0)
        *st = ACTOR_VIEWER; /* a viewer, or any role that is not known to act */
    else if (account == NULL)
        *st = ACTOR_NOT_ADMIN;
    else
        *st = PQgetvalue(res, 0, 2)[0] == 't' ? ACTOR_PERMITTED : ACTOR_NO_PERMISSION;
    PQclear(res);
    return CWPP_OK;
}

/* The sentence for a state that refuses (why is "" for the ones that allow). */
static void actor_why(actor_state_t st, const char *user, const char *account, char *why,
                      size_t why_size)
{
    why[0] = '\0';
    switch (st) {
    case ACTOR_UNKNOWN:
        snprintf(why, why_size, "\"%.64s\" is not a known user (cwppctl users list)", user);
        break;
    case ACTOR_DISABLED:
        snprintf(why, why_size, "user \"%.64s\" is disabled", user);
        break;
    case ACTOR_VIEWER:
        snprintf(why, why_size, "user \"%.64s\" is a viewer (viewers read and never act)",
                 user);
        break;
    case ACTOR_NOT_ADMIN:
        snprintf(why, why_size, "user \"%.64s\" is not an admin", user);
        break;
    case ACTOR_NO_PERMISSION:
        snprintf(why, why_size, "user \"%.64s\" holds no permission on account \"%.100s\"",
                 user, account != NULL ? account : "");
        break;
    case ACTOR_ADMIN:
    case ACTOR_PERMITTED:
        break;
    }
    cwpp_utf8_sanitize(why);
}

int cwpp_commander_may_act(cwpp_commander_t *cm, const char *user, const char *account,
                           int *is_admin, char *why, size_t why_size, char *errstr,
                           size_t errstr_size)
{
    actor_state_t st;
    int           rc;

    if ((rc = actor_state(cm, user, account, &st, errstr, errstr_size)) != CWPP_OK)
        return -rc;
    if (is_admin != NULL)
        *is_admin = st == ACTOR_ADMIN;
    actor_why(st, user, account, why, why_size);
    return st == ACTOR_ADMIN || st == ACTOR_PERMITTED;
}

int cwpp_commander_permit(cwpp_commander_t *cm, const cwpp_command_t *c, const char *account,
                          const char *what, cwpp_command_reply_t *rp, int *rc, char *errstr,
                          size_t errstr_size)
{
    char why[300] = "";
    int  ok = cwpp_commander_may_act(cm, c->actor, account, NULL, why, sizeof(why), errstr,
                                     errstr_size);

    if (ok < 0) {
        *rc = -ok;
        return 0;
    }
    *rc = CWPP_OK;
    if (!ok)
        cwpp_command_refuse(rp, "Refused: %s, so they cannot change this %s.", why, what);
    return ok;
}

/* Who-may-issue, before the handler: any known, enabled user; an admin for ADMIN types.
 * Decided on the actor's state, never on the text of a sentence that holds their name.
 * 1 allowed; 0 refused in rp (*rc 0) or a database error (*rc). */
static int actor_may_issue(cwpp_commander_t *cm, const cwpp_command_t *c,
                           const cwpp_command_def_t *def, cwpp_command_reply_t *rp, int *rc,
                           char *errstr, size_t errstr_size)
{
    char          why[300];
    actor_state_t st;

    if ((*rc = actor_state(cm, c->actor, NULL, &st, errstr, errstr_size)) != CWPP_OK)
        return 0;
    switch (st) {
    case ACTOR_ADMIN:
        return 1;
    case ACTOR_UNKNOWN:
    case ACTOR_DISABLED:
        actor_why(st, c->actor, NULL, why, sizeof(why));
        cwpp_command_refuse(rp, "Refused: %s; only known, enabled users issue commands.", why);
        return 0;
    case ACTOR_VIEWER: /* whatever the command: the API refuses them first, this is the
                        * service's own check */
        actor_why(st, c->actor, NULL, why, sizeof(why));
        cwpp_command_refuse(rp, "Refused: %s; only analysts and admins issue commands.", why);
        return 0;
    case ACTOR_NOT_ADMIN: /* an enabled user who is not an admin */
    case ACTOR_PERMITTED:
    case ACTOR_NO_PERMISSION:
        break;
    }
    if (def->who == CWPP_COMMAND_ADMIN) {
        cwpp_command_refuse(rp, "Refused: user \"%.64s\" is not an admin; only admins issue "
                            "%s.", c->actor, def->type);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------- the answer */

const cwpp_buf_t *cwpp_commander_encode(cwpp_commander_t *cm, const cwpp_command_t *c,
                                        const char *status, const char *message,
                                        const char *result_json, char *errstr,
                                        size_t errstr_size)
{
    if (cwpp_command_result(cm->t_result, &cm->v_result, &cm->buf, cm->conf.service, c, status,
                            message, result_json, errstr, errstr_size) != CWPP_OK)
        return NULL;
    return &cm->buf;
}

/* Records (when record), queues the CommandResult, logs and counts. */
static int answer(cwpp_commander_t *cm, const cwpp_command_t *c, const char *status,
                  const char *message, const json_t *result, int record, cwpp_outbox_t *out,
                  char *errstr, size_t errstr_size)
{
    char *rj = result != NULL ? json_dumps(result, JSON_COMPACT) : strdup("{}");
    char  msg[CWPP_COMMAND_MSG_MAX], name[200];
    int   rc;

    if (rj == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    /* bounded formats may have cut a character in two: the answer must be valid UTF-8 */
    snprintf(msg, sizeof(msg), "%s", message);
    cwpp_utf8_sanitize(msg);
    if (record) {
        const char *p[7] = {c->id, cm->conf.service, c->type, c->actor, status, msg, rj};

        if ((rc = cwpp_pg_query(cm->pg, SQL_RECORD, 7, p, PGRES_COMMAND_OK, NULL, errstr,
                                errstr_size)) != CWPP_OK) {
            free(rj);
            return rc;
        }
    }
    rc = cwpp_command_result(cm->t_result, &cm->v_result, &cm->buf, cm->conf.service, c, status,
                             msg, rj, errstr, errstr_size);
    free(rj);
    if (rc != CWPP_OK)
        return rc;
    rc = cwpp_outbox_add(out, CWPP_TOPIC_COMMAND_RESULTS, c->id, strlen(c->id), cm->buf.data,
                         cm->buf.len);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    if (strcmp(status, "ok") == 0)
        cwpp_info("command", "%s %s by %s: ok: %s", c->type, c->id, c->actor, msg);
    else
        cwpp_warn("command_refused", "%s %s by %s: %s", c->type, c->id, c->actor, msg);
    snprintf(name, sizeof(name), "%s{status=\"%s\"}", cm->conf.metric, status);
    cwpp_metric_add(cwpp_counter(cm->metrics, name, "Commands answered, by outcome."), 1);
    return CWPP_OK;
}

/* The stored answer of a command applied before, again (1), or 0 when it is new. */
static int answer_again(cwpp_commander_t *cm, const cwpp_command_t *c, cwpp_outbox_t *out,
                        int *rc, char *errstr, size_t errstr_size)
{
    const char  *p[1] = {c->id};
    PGresult    *res = NULL;
    json_error_t jerr;
    json_t      *result;

    if ((*rc = cwpp_pg_query(cm->pg, SQL_LOCK, 1, p, PGRES_TUPLES_OK, NULL, errstr,
                             errstr_size)) != CWPP_OK ||
        (*rc = cwpp_pg_query(cm->pg, SQL_APPLIED, 1, p, PGRES_TUPLES_OK, &res, errstr,
                             errstr_size)) != CWPP_OK)
        return 1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    result = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    *rc = CWPP_OK;
    if (cm->conf.redeliver != NULL)
        *rc = cm->conf.redeliver(cm->conf.svc, c, PQgetvalue(res, 0, 0), result, out, errstr,
                                 errstr_size);
    if (*rc == CWPP_OK)
        *rc = answer(cm, c, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), result, 0, out,
                     errstr, errstr_size);
    json_decref(result);
    PQclear(res);
    return 1;
}

/* Drops what the command did: its queued records, the service's state, the savepoint. */
static int roll_back(cwpp_commander_t *cm, cwpp_outbox_t *out, size_t out_mark, char *errstr,
                     size_t errstr_size)
{
    cwpp_outbox_truncate(out, out_mark);
    if (cm->conf.undo != NULL)
        cm->conf.undo(cm->conf.svc);
    return cwpp_pg_command(cm->pg, "ROLLBACK TO SAVEPOINT cmd", errstr, errstr_size);
}

/* A new command, in the savepoint: checks, handler, answer. */
static int apply_new(cwpp_commander_t *cm, const cwpp_command_t *c, cwpp_outbox_t *out,
                     char *errstr, size_t errstr_size)
{
    const cwpp_command_def_t *def;
    cwpp_command_reply_t      rp;
    size_t                    out_mark = cwpp_outbox_count(out);
    int                       rc;

    memset(&rp, 0, sizeof(rp));
    rp.status = "ok";
    if (cm->conf.mark != NULL)
        cm->conf.mark(cm->conf.svc);
    if ((rc = cwpp_pg_command(cm->pg, "SAVEPOINT cmd", errstr, errstr_size)) != CWPP_OK)
        return rc;
    def = cwpp_command_precheck(c, cm->conf.service, cm->conf.table, cm->conf.ntable,
                                cwpp_now_ms(), cm->conf.max_age_ms, cm->conf.max_age_key,
                                rp.msg, sizeof(rp.msg));
    if (def == NULL)
        rp.status = "error";
    else if (actor_may_issue(cm, c, def, &rp, &rc, errstr, errstr_size))
        rc = def->fn(cm->conf.svc, c, &rp, out, errstr, errstr_size);
    if (rc == CWPP_EDATA || (rc == CWPP_OK && strcmp(rp.status, "error") == 0)) {
        /* undo whatever the command did before it was refused */
        if (rc == CWPP_EDATA) {
            json_decref(rp.result);
            rp.result = NULL;
            cwpp_command_refuse(&rp, "The database refused the change: %s", errstr);
        }
        rc = roll_back(cm, out, out_mark, errstr, errstr_size);
    }
    if (rc == CWPP_OK)
        rc = answer(cm, c, rp.status, rp.msg, rp.result, 1, out, errstr, errstr_size);
    if (rc == CWPP_EDATA) {
        /* the answer itself could not be stored: undo the command, answer plainly */
        cwpp_warn("command_unrecordable", "%s %s: %s", c->type, c->id, errstr);
        rc = roll_back(cm, out, out_mark, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = answer(cm, c, "error", "The command was not applied: the database refused "
                        "to record it (its text is not valid).", NULL, 1, out, errstr,
                        errstr_size);
    }
    if (rc == CWPP_OK)
        rc = cwpp_pg_command(cm->pg, "RELEASE SAVEPOINT cmd", errstr, errstr_size);
    json_decref(rp.result);
    return rc;
}

int cwpp_commander_apply(cwpp_commander_t *cm, const rd_kafka_message_t *m, cwpp_outbox_t *out,
                         char *errstr, size_t errstr_size)
{
    cwpp_command_t c;
    char           why[300];
    int            rc = CWPP_OK;

    if (cwpp_command_decode(cm->t_cmd, &cm->v_cmd, m->payload, m->len, cm->conf.max_id, &c, why,
                            sizeof(why)) != 0)
        return cm->conf.dead_letter(cm->conf.svc, m, "bad_command", why, out, errstr,
                                    errstr_size);
    if (strcmp(c.service, cm->conf.service) != 0)
        goto out; /* another service's command */
    if (cm->conf.begin_sql != NULL &&
        (rc = cwpp_pg_command(cm->pg, cm->conf.begin_sql, errstr, errstr_size)) != CWPP_OK)
        goto out;
    if (!answer_again(cm, &c, out, &rc, errstr, errstr_size))
        rc = apply_new(cm, &c, out, errstr, errstr_size);
    if (cm->conf.begin_sql != NULL) {
        char ignore[64];

        if (rc == CWPP_OK)
            rc = cwpp_pg_command(cm->pg, "COMMIT", errstr, errstr_size);
        else
            cwpp_pg_command(cm->pg, "ROLLBACK", ignore, sizeof(ignore));
    }
out:
    json_decref(c.payload);
    return rc;
}

/* ------------------------------------------------------------ activity log */

int cwpp_command_log(cwpp_pg_t *pg, const char *actor, const char *command_id,
                     const char *otype, const char *oid, const char *event_id,
                     const char *action, json_t *before, json_t *after, const char *remark,
                     char *errstr, size_t errstr_size)
{
    char       *b = before != NULL ? json_dumps(before, JSON_COMPACT) : NULL;
    char       *a = after != NULL ? json_dumps(after, JSON_COMPACT) : NULL;
    const char *p[9] = {actor, command_id, otype, oid, event_id, action, b, a,
                        remark != NULL && remark[0] != '\0' ? remark : NULL};
    int         rc;

    if ((before != NULL && b == NULL) || (after != NULL && a == NULL))
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    else
        rc = cwpp_pg_query(pg, SQL_LOG, 9, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    free(b);
    free(a);
    json_decref(before);
    json_decref(after);
    return rc;
}
