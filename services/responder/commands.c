/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands.c: the responder's commands (docs/commands.md), each applied in its own
 * savepoint of the batch's transaction, answered once on command-results and recorded in
 * commands_applied; a redelivered command gets the stored answer again and the actions
 * of its still running tasks are sent again (same action ids). Every change is appended
 * to activity_log.
 *
 *   event.status    {event_id, status, remark}
 *   event.owner     {event_id, owner, remark}
 *   event.level     {event_id, level, remark}
 *   event.remark    {event_id, remark}
 *   event.respond   {event_id, entities: ["type:value"...], validity_s, account, status,
 *                    remark}
 *   event.playbook  {event_id, entity: "type:value", playbook, validity_s, account, remark}
 *   users.add       {user, role, display_name}      users.grant / users.revoke {user, account}
 *   users.disable / users.enable {user}              accounts.add_member {account, manager, name}
 *   playbooks.add   {playbook: {...}}                playbooks.delete {name}
 */
#include "rs_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_respond.h"
#include "cwpp_util.h"

typedef struct ev {
    char id[256], account[1024], status[16], owner[128], level[16], level_source[16];
    int  has_owner;
} ev_t;

static const char SQL_COMMAND_LOCK[] = "SELECT pg_advisory_xact_lock(hashtext($1))";
static const char SQL_APPLIED[] =
    "SELECT status, message, result::text FROM commands_applied WHERE command_id = $1";
static const char SQL_RECORD[] =
    "INSERT INTO commands_applied (command_id, service, type, actor, status, message, result) "
    "VALUES ($1, 'responder', $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING";
static const char SQL_EVENT[] =
    "SELECT event_id, account_id, status, owner, level, level_source FROM events "
    "WHERE event_id = $1 FOR UPDATE";
static const char SQL_ACTOR[] =
    "SELECT u.role, u.disabled_at IS NOT NULL, EXISTS (SELECT 1 FROM user_accounts ua "
    "WHERE ua.user_name = u.user_name AND ua.account_id = $2) FROM users u "
    "WHERE u.user_name = $1";
static const char SQL_STATUS[] =
    "UPDATE events SET status = $2, status_changed_at = now(), handled_at = CASE WHEN $2 = "
    "'handled' THEN now() END, version = version + 1, updated_at = now() WHERE event_id = $1";
/* Handled: every associated unhandled alert becomes handled, precision defence never
 * touched (those are handled from the start anyway); one log entry per alert. */
static const char SQL_CASCADE[] =
    "WITH h AS (UPDATE alerts a SET status = 'handled', handling = $2::jsonb, updated_at = now() "
    "FROM (SELECT x.alert_id FROM alerts x JOIN event_alerts ea ON ea.alert_id = x.alert_id "
    "WHERE ea.event_id = $1 AND x.status = 'unhandled' AND x.defense <> 'precision_defense' "
    "ORDER BY x.alert_id FOR UPDATE OF x) l WHERE a.alert_id = l.alert_id "
    "RETURNING a.alert_id), "
    "l AS (INSERT INTO activity_log (actor, command_id, object_type, object_id, event_id, "
    "action, before, after, remark) SELECT $3, $4, 'alert', h.alert_id, $1, 'alert.status', "
    "'{\"status\": \"unhandled\"}', jsonb_build_object('status', 'handled', 'handling', "
    "$2::jsonb), $5 FROM h ON CONFLICT DO NOTHING) SELECT count(*) FROM h";
static const char SQL_HANDLED_QUEUE[] =
    "INSERT INTO handled_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING";
static const char SQL_OWNER[] =
    "UPDATE events SET owner = $2, version = version + 1, updated_at = now() "
    "WHERE event_id = $1";
static const char SQL_LEVEL[] =
    "UPDATE events SET level = $2, level_source = 'analyst', version = version + 1, "
    "updated_at = now() WHERE event_id = $1";
static const char SQL_DEST_OK[] =
    "SELECT 1 FROM managed_accounts WHERE account_id = $1 AND manager_account_id = $2";
static const char SQL_ENTITY[] =
    "SELECT a.asset_id, a.process ->> 'pid', a.file ->> 'sha256', a.process ->> 'path' "
    "FROM entity_alerts e JOIN alerts a ON a.alert_id = e.alert_id "
    "WHERE e.event_id = $1 AND e.entity_type = $2 AND e.value = $3 "
    "ORDER BY e.last_seen DESC, a.alert_id LIMIT 1";
static const char SQL_PLAYBOOK[] =
    "SELECT name, entity_type, steps::text FROM playbooks WHERE "
    "CASE WHEN $1 = '' THEN entity_type = $2 AND is_default ELSE name = $1 END "
    "ORDER BY origin = 'builtin' DESC, name LIMIT 1";

/* ------------------------------------------------------------------ helpers */

static const char *pstr(const rs_cmd_t *c, const char *k)
{
    return json_string_value(json_object_get(c->payload, k));
}

static const char *remark_of(const rs_cmd_t *c)
{
    const char *s = pstr(c, "remark");

    return s != NULL ? s : "";
}

static int answer(rs_t *r, const rs_cmd_t *c, const char *status, const char *message,
                  json_t *result, int record, cwpp_outbox_t *out, char *errstr,
                  size_t errstr_size)
{
    avro_value_t *v = &r->v_result;
    char         *rj = result != NULL ? json_dumps(result, JSON_COMPACT) : strdup("{}");
    char          msg[1200];
    int           rc;

    if (rj == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    snprintf(msg, sizeof(msg), "%s", message);
    cwpp_utf8_sanitize(msg); /* a bounded format may have cut a character in two */
    if (record) {
        const char *p[6] = {c->id, c->type, c->actor, status, msg, rj};

        if ((rc = rs_q(r, SQL_RECORD, 6, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size))) {
            free(rj);
            return rc;
        }
    }
    rc = cwpp_command_result(r->t_result, v, &r->buf, "responder", c, status, msg, rj, errstr,
                             errstr_size);
    free(rj);
    if (rc != CWPP_OK)
        return rc;
    rc = cwpp_outbox_add(out, CWPP_TOPIC_COMMAND_RESULTS, c->id, strlen(c->id), r->buf.data,
                         r->buf.len);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    if (strcmp(status, "ok") == 0)
        cwpp_info("command", "%s %s by %s: ok: %s", c->type, c->id, c->actor, msg);
    else
        cwpp_warn("command_refused", "%s %s by %s: %s", c->type, c->id, c->actor, msg);
    {
        char name[160];

        snprintf(name, sizeof(name), "cwpp_responder_commands_total{status=\"%s\"}", status);
        cwpp_metric_add(cwpp_counter(r->metrics, name, "Commands answered, by outcome."), 1);
    }
    return CWPP_OK;
}

static void copy(char *dst, size_t size, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Loads and locks the event. 0 found, 1 not found (refused), else a database error. */
static int load_event(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, ev_t *ev, char *errstr,
                      size_t errstr_size)
{
    const char *id = pstr(c, "event_id");
    PGresult   *res = NULL;
    const char *p[1];
    int         rc;

    if (id == NULL || id[0] == '\0') {
        rs_refuse(rp, "The command names no event (\"event_id\").");
        return 1;
    }
    p[0] = id;
    if ((rc = rs_q(r, SQL_EVENT, 1, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        rs_refuse(rp, "There is no event \"%.100s\" (cwppctl events list shows them).", id);
        return 1;
    }
    if (strlen(PQgetvalue(res, 0, 0)) >= sizeof(ev->id) ||
        strlen(PQgetvalue(res, 0, 1)) >= sizeof(ev->account)) {
        PQclear(res);
        rs_refuse(rp, "The event's id or account is longer than the responder handles (%zu, "
                  "%zu bytes).", sizeof(ev->id) - 1, sizeof(ev->account) - 1);
        return 1;
    }
    memset(ev, 0, sizeof(*ev));
    copy(ev->id, sizeof(ev->id), PQgetvalue(res, 0, 0));
    copy(ev->account, sizeof(ev->account), PQgetvalue(res, 0, 1));
    copy(ev->status, sizeof(ev->status), PQgetvalue(res, 0, 2));
    ev->has_owner = !PQgetisnull(res, 0, 3);
    copy(ev->owner, sizeof(ev->owner), PQgetvalue(res, 0, 3));
    copy(ev->level, sizeof(ev->level), PQgetvalue(res, 0, 4));
    copy(ev->level_source, sizeof(ev->level_source), PQgetvalue(res, 0, 5));
    PQclear(res);
    return 0;
}

/* Whether user may act on account: 1 yes; 0 no, with why; < 0 a database error (-rc). */
static int may_act(rs_t *r, const char *user, const char *account, int *is_admin, char *why,
                   size_t why_size, char *errstr, size_t errstr_size)
{
    PGresult   *res = NULL;
    const char *p[2] = {user, account};
    int         rc, ok = 0;

    if ((rc = rs_q(r, SQL_ACTOR, 2, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) != CWPP_OK)
        return -rc;
    if (is_admin != NULL)
        *is_admin = 0;
    if (PQntuples(res) == 0) {
        snprintf(why, why_size, "\"%.64s\" is not a known user (cwppctl users list)", user);
    } else if (PQgetvalue(res, 0, 1)[0] == 't') {
        snprintf(why, why_size, "user \"%.64s\" is disabled", user);
    } else if (strcmp(PQgetvalue(res, 0, 0), "admin") == 0) {
        ok = 1;
        if (is_admin != NULL)
            *is_admin = 1;
    } else if (account != NULL && PQgetvalue(res, 0, 2)[0] == 't') {
        ok = 1;
    } else {
        snprintf(why, why_size, "user \"%.64s\" holds no permission on account \"%.100s\"",
                 user, account != NULL ? account : "");
    }
    PQclear(res);
    return ok;
}

/* The actor may act on the event's account, else the command is refused. 1 allowed. */
static int actor_allowed(rs_t *r, const rs_cmd_t *c, const char *account, rs_reply_t *rp,
                         int *rc, char *errstr, size_t errstr_size)
{
    char why[300];
    int  ok = may_act(r, c->actor, account, NULL, why, sizeof(why), errstr, errstr_size);

    if (ok < 0) {
        *rc = -ok;
        return 0;
    }
    *rc = CWPP_OK;
    if (!ok)
        rs_refuse(rp, "Refused: %s, so it cannot change this event.", why);
    return ok;
}

static int actor_admin(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, int *rc, char *errstr,
                       size_t errstr_size)
{
    char why[300];
    int  admin = 0, ok = may_act(r, c->actor, NULL, &admin, why, sizeof(why), errstr,
                                 errstr_size);

    if (ok < 0) {
        *rc = -ok;
        return 0;
    }
    *rc = CWPP_OK;
    if (!admin) {
        if (ok || strstr(why, "holds no permission") != NULL)
            snprintf(why, sizeof(why), "user \"%.64s\" is not an admin", c->actor);
        rs_refuse(rp, "Refused: %s; only admins manage users, accounts and playbooks.", why);
        return 0;
    }
    return 1;
}

static json_t *obj1(const char *k, const char *v)
{
    return json_pack("{s:s?}", k, v);
}

/* ------------------------------------------------------------------- status */

int rs_set_status(rs_t *r, const char *event_id, const char *from, const char *to,
                  const char *actor, const char *command_id, const char *remark,
                  const char *via, int64_t *alerts_handled, char *errstr, size_t errstr_size)
{
    const char *p[2] = {event_id, to};
    json_t     *after;
    int64_t     n = 0;
    int         rc;

    if ((rc = rs_q(r, SQL_STATUS, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (strcmp(to, "handled") == 0) {
        json_t     *h = json_pack("{s:s, s:s, s:s, s:I, s:s?}", "event_id", event_id, "via", via,
                                  "by", actor, "at_ms", (json_int_t)cwpp_now_ms(), "remark",
                                  remark != NULL && remark[0] ? remark : NULL);
        char       *hj = h != NULL ? json_dumps(h, JSON_COMPACT) : NULL;
        const char *pc[5] = {event_id, hj, actor, command_id,
                             remark != NULL && remark[0] ? remark : NULL};
        PGresult   *res = NULL;

        json_decref(h);
        if (hj == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        rc = rs_q(r, SQL_CASCADE, 5, pc, PGRES_TUPLES_OK, &res, errstr, errstr_size);
        free(hj);
        if (rc != CWPP_OK)
            return rc;
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        /* queued for the exporter's handled-event stream, in the same transaction */
        if ((rc = rs_q(r, SQL_HANDLED_QUEUE, 1, p, PGRES_COMMAND_OK, NULL, errstr,
                       errstr_size)) != CWPP_OK)
            return rc;
    }
    if (alerts_handled != NULL)
        *alerts_handled = n;
    after = json_pack("{s:s, s:s}", "status", to, "via", via);
    if (after != NULL && strcmp(to, "handled") == 0)
        json_object_set_new(after, "alerts_handled", json_integer(n));
    rc = rs_log(r, actor, command_id, "event", event_id, event_id, "event.status",
                obj1("status", from), after, remark, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = rs_touch(r, event_id, errstr, errstr_size);
    return rc;
}

static int cmd_status(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                      size_t errstr_size)
{
    static const char *const ok[] = {"unhandled", "handling", "handled"};
    const char *to = pstr(c, "status");
    ev_t        ev;
    int64_t     n = 0;
    int         rc, i, known = 0;

    for (i = 0; to != NULL && i < 3; i++)
        known |= strcmp(to, ok[i]) == 0;
    if (!known)
        return rs_refuse(rp, "\"%.40s\" is not a status an analyst can set (unhandled, "
                         "handling or handled).", to != NULL ? to : "");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    if (strcmp(ev.status, "handled") == 0)
        return rs_refuse(rp, "Event %s is handled: it is closed, takes no more alerts and its "
                         "status cannot change (a related new alert opens a new event).", ev.id);
    if (strcmp(ev.status, to) == 0)
        return rs_refuse(rp, "Event %s is %s already.", ev.id, to);
    if ((rc = rs_set_status(r, ev.id, ev.status, to, c->actor, c->id, remark_of(c), "status",
                            &n, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s, s:s, s:s, s:I}", "event_id", ev.id, "before", ev.status,
                           "status", to, "alerts_handled", (json_int_t)n);
    if (strcmp(to, "handled") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %s -> handled; %" PRId64 " associated "
                 "alert%s handled with it. The event takes no more alerts.", ev.id, ev.status,
                 n, n == 1 ? "" : "s");
    else
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %s -> %s.", ev.id, ev.status, to);
    return CWPP_OK;
}

/* -------------------------------------------------------------- owner, level */

static int cmd_owner(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                     size_t errstr_size)
{
    const char *owner = pstr(c, "owner");
    const char *p[2];
    char        why[300];
    ev_t        ev;
    int         rc, ok;

    if (owner == NULL || owner[0] == '\0')
        return rs_refuse(rp, "The command names no owner (\"owner\").");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    ok = may_act(r, owner, ev.account, NULL, why, sizeof(why), errstr, errstr_size);
    if (ok < 0)
        return -ok;
    if (!ok)
        return rs_refuse(rp, "Refused: %s; the owner must be a known user holding permission "
                         "on the event's account.", why);
    if (ev.has_owner && strcmp(ev.owner, owner) == 0)
        return rs_refuse(rp, "Event %s is owned by %s already.", ev.id, owner);
    p[0] = ev.id;
    p[1] = owner;
    if ((rc = rs_q(r, SQL_OWNER, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size)) != CWPP_OK ||
        (rc = rs_log(r, c->actor, c->id, "event", ev.id, ev.id, "event.owner",
                     obj1("owner", ev.has_owner ? ev.owner : NULL), obj1("owner", owner),
                     remark_of(c), errstr, errstr_size)) != CWPP_OK ||
        (rc = rs_touch(r, ev.id, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s, s:s?, s:s}", "event_id", ev.id, "before",
                           ev.has_owner ? ev.owner : NULL, "owner", owner);
    snprintf(rp->msg, sizeof(rp->msg), "Event %s: owner %s -> %s.", ev.id,
             ev.has_owner ? ev.owner : "(none)", owner);
    return CWPP_OK;
}

static int cmd_level(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                     size_t errstr_size)
{
    static const char *const ok[] = {"critical", "high", "medium", "low"};
    const char *to = pstr(c, "level");
    const char *p[2];
    ev_t        ev;
    int         rc, i, known = 0;

    for (i = 0; to != NULL && i < 4; i++)
        known |= strcmp(to, ok[i]) == 0;
    if (!known)
        return rs_refuse(rp, "\"%.40s\" is not a level (critical, high, medium or low).",
                         to != NULL ? to : "");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    if (strcmp(ev.level, to) == 0 && strcmp(ev.level_source, "analyst") == 0)
        return rs_refuse(rp, "Event %s is at level %s already.", ev.id, to);
    p[0] = ev.id;
    p[1] = to;
    if ((rc = rs_q(r, SQL_LEVEL, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size)) != CWPP_OK ||
        (rc = rs_log(r, c->actor, c->id, "event", ev.id, ev.id, "event.level",
                     obj1("level", ev.level), obj1("level", to), remark_of(c), errstr,
                     errstr_size)) != CWPP_OK ||
        (rc = rs_touch(r, ev.id, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s, s:s, s:s}", "event_id", ev.id, "before", ev.level, "level", to);
    snprintf(rp->msg, sizeof(rp->msg), "Event %s: level %s -> %s (kept: new alerts no longer "
             "change it).", ev.id, ev.level, to);
    return CWPP_OK;
}

static int cmd_remark(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                      size_t errstr_size)
{
    ev_t ev;
    int  rc;

    if (remark_of(c)[0] == '\0')
        return rs_refuse(rp, "The remark is empty.");
    if (strlen(remark_of(c)) > 4000)
        return rs_refuse(rp, "The remark is longer than 4000 bytes.");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    if ((rc = rs_log(r, c->actor, c->id, "event", ev.id, ev.id, "event.remark", NULL, NULL,
                     remark_of(c), errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s}", "event_id", ev.id);
    snprintf(rp->msg, sizeof(rp->msg), "Remark added to event %s.", ev.id);
    return CWPP_OK;
}

/* --------------------------------------------------------- respond, playbook */

/* validity_s of obj (the payload, or one entity's overrides), else def, within bounds;
 * -1 refused. */
static int64_t validity_in(rs_t *r, const json_t *obj, int64_t def, rs_reply_t *rp)
{
    json_t *v = json_object_get(obj, "validity_s");
    int64_t s = def;

    if (v != NULL) {
        if (!json_is_integer(v)) {
            rs_refuse(rp, "\"validity_s\" must be a whole number of seconds.");
            return -1;
        }
        s = json_integer_value(v);
    }
    if (s < r->conf->validity_min_s || s > r->conf->validity_max_s) {
        rs_refuse(rp, "A validity period of %" PRId64 " s is outside %" PRId64 " s to %" PRId64
                  " s (responder.validity.min.s, responder.validity.max.s).", s,
                  r->conf->validity_min_s, r->conf->validity_max_s);
        return -1;
    }
    return s;
}

static int64_t validity_of(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp)
{
    return validity_in(r, c->payload, r->conf->validity_default_s, rp);
}

/* The destination account d (NULL or empty: the event's own), which must be the event's
 * own or a member account it manages. 1 ok. */
static int dest_ok(rs_t *r, const char *d, const ev_t *ev, const char **dest, rs_reply_t *rp,
                   int *rc, char *errstr, size_t errstr_size)
{
    PGresult   *res = NULL;
    const char *p[2];
    int         found;

    *rc = CWPP_OK;
    *dest = d != NULL && d[0] != '\0' ? d : ev->account;
    if (strcmp(*dest, ev->account) == 0)
        return 1;
    p[0] = *dest;
    p[1] = ev->account;
    if ((*rc = rs_q(r, SQL_DEST_OK, 2, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) != CWPP_OK)
        return 0;
    found = PQntuples(res) > 0;
    PQclear(res);
    if (!found)
        rs_refuse(rp, "Account \"%.100s\" is neither the event's account (%.100s) nor a member "
                  "account it manages (cwppctl accounts list).", *dest, ev->account);
    return found;
}

static int dest_of(rs_t *r, const rs_cmd_t *c, const ev_t *ev, const char **dest,
                   rs_reply_t *rp, int *rc, char *errstr, size_t errstr_size)
{
    return dest_ok(r, pstr(c, "account"), ev, dest, rp, rc, errstr, errstr_size);
}

typedef struct ent {
    char type[16], value[1024], asset[1024], pid[32], sha256[80], path[1024];
} ent_t;

/* "type:value" of the event, with where it was seen. 1 found; 0 refused. */
static int entity_of(rs_t *r, const ev_t *ev, const char *spec, ent_t *e, rs_reply_t *rp,
                     int *rc, char *errstr, size_t errstr_size)
{
    const char *colon = spec != NULL ? strchr(spec, ':') : NULL;
    PGresult   *res = NULL;
    const char *p[3];

    *rc = CWPP_OK;
    memset(e, 0, sizeof(*e));
    if (colon == NULL || colon == spec || colon[1] == '\0' || (size_t)(colon - spec) >= 16 ||
        strlen(colon + 1) >= sizeof(e->value)) {
        rs_refuse(rp, "\"%.200s\" is not an entity: write TYPE:VALUE, e.g. ip:203.0.113.7 "
                  "(cwppctl events entities %s lists them).", spec != NULL ? spec : "", ev->id);
        return 0;
    }
    memcpy(e->type, spec, (size_t)(colon - spec));
    copy(e->value, sizeof(e->value), colon + 1);
    if (!cwpp_entity_type_known(e->type)) {
        rs_refuse(rp, "\"%.20s\" is not an entity type (host, file, process, ip, host_account).",
                  e->type);
        return 0;
    }
    p[0] = ev->id;
    p[1] = e->type;
    p[2] = e->value;
    if ((*rc = rs_q(r, SQL_ENTITY, 3, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) != CWPP_OK)
        return 0;
    if (PQntuples(res) == 0) {
        PQclear(res);
        rs_refuse(rp, "Event %s has no entity %s:%.200s (cwppctl events entities %s lists "
                  "them).", ev->id, e->type, e->value, ev->id);
        return 0;
    }
    if (strlen(PQgetvalue(res, 0, 0)) >= sizeof(e->asset) ||
        strlen(PQgetvalue(res, 0, 1)) >= sizeof(e->pid) ||
        strlen(PQgetvalue(res, 0, 2)) >= sizeof(e->sha256) ||
        strlen(PQgetvalue(res, 0, 3)) >= sizeof(e->path)) {
        PQclear(res);
        rs_refuse(rp, "Entity %s:%.200s: its asset id, pid, hash or path is too long to act on "
                  "safely.", e->type, e->value);
        return 0;
    }
    copy(e->asset, sizeof(e->asset), PQgetvalue(res, 0, 0));
    copy(e->pid, sizeof(e->pid), PQgetvalue(res, 0, 1));
    copy(e->sha256, sizeof(e->sha256), PQgetvalue(res, 0, 2));
    copy(e->path, sizeof(e->path), PQgetvalue(res, 0, 3));
    PQclear(res);
    if (strcmp(e->type, "host") == 0)
        copy(e->asset, sizeof(e->asset), e->value);
    return 1;
}

/* The steps of the built-in policy for e: [{"action", "params"}], or NULL with the refusal
 * (no policy for the type, or what it needs is unknown). */
static json_t *policy_steps(const ent_t *e, const char **action, rs_reply_t *rp)
{
    const cwpp_policy_def_t *pd = cwpp_policy_for(e->type);
    json_t                  *params = NULL;

    if (pd == NULL) {
        rs_refuse(rp, "Entity %s:%.200s: no built-in handling policy for entity type %s.",
                  e->type, e->value, e->type);
        return NULL;
    }
    *action = pd->action;
    if (strcmp(e->type, "ip") == 0) {
        params = json_pack("{s:s}", "ip", e->value);
    } else if (strcmp(e->type, "host") == 0) {
        params = json_object();
    } else if (strcmp(e->type, "host_account") == 0) {
        params = json_pack("{s:s}", "user", e->value);
    } else if (strcmp(e->type, "process") == 0) {
        if (e->pid[0] == '\0') {
            rs_refuse(rp, "Process %.200s: its alerts carry no process id, so it cannot be "
                      "killed safely.", e->value);
            return NULL;
        }
        params = json_pack("{s:I, s:s?}", "pid", (json_int_t)strtoll(e->pid, NULL, 10), "path",
                           e->path[0] == '/' ? e->path : NULL);
    } else if (strcmp(e->type, "file") == 0) {
        if (e->value[0] != '/') {
            rs_refuse(rp, "File %.200s: its alerts carry no path (only a hash), so it cannot "
                      "be quarantined.", e->value);
            return NULL;
        }
        params = json_pack("{s:s, s:s?}", "path", e->value, "sha256",
                           e->sha256[0] != '\0' ? e->sha256 : NULL);
    }
    if (params == NULL)
        return NULL;
    return json_pack("[{s:s, s:o}]", "action", pd->action, "params", params);
}

/* The spec "TYPE:VALUE" of entities item i: a text, or {"entity", "validity_s"?,
 * "account"?} (that entity's own validity and destination). NULL when neither. */
static const char *entity_spec(const json_t *item)
{
    if (json_is_string(item))
        return json_string_value(item);
    return json_string_value(json_object_get(item, "entity"));
}

static int cmd_respond(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, cwpp_outbox_t *out,
                       char *errstr, size_t errstr_size)
{
    const json_t *ents = json_object_get(c->payload, "entities");
    const char   *target = pstr(c, "status"), *dest;
    json_t       *pols;
    int64_t       validity;
    ev_t          ev;
    size_t        i, j;
    int           rc, same = 1;

    if (target == NULL || (strcmp(target, "handling") != 0 && strcmp(target, "handled") != 0))
        return rs_refuse(rp, "Choose the status the event takes when the handling succeeds: "
                         "handling or handled (\"status\").");
    if (!json_is_array(ents) || json_array_size(ents) == 0 || json_array_size(ents) > 50)
        return rs_refuse(rp, "Select 1 to 50 entities (\"entities\": [\"TYPE:VALUE\", ...]).");
    if ((validity = validity_of(r, c, rp)) < 0)
        return CWPP_OK;
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    if (strcmp(ev.status, "handled") == 0)
        return rs_refuse(rp, "Event %s is handled already; it takes no new handling.", ev.id);
    if (!dest_of(r, c, &ev, &dest, rp, &rc, errstr, errstr_size))
        return rc;
    for (i = 0; i < json_array_size(ents); i++) {
        const json_t *it = json_array_get(ents, i), *k;
        const char   *key;

        if (entity_spec(it) == NULL)
            return rs_refuse(rp, "Entity %zu is neither a text \"TYPE:VALUE\" nor {\"entity\": "
                             "\"TYPE:VALUE\", \"validity_s\", \"account\"}.", i + 1);
        json_object_foreach((json_t *)it, key, k) {
            if (strcmp(key, "entity") != 0 && strcmp(key, "validity_s") != 0 &&
                strcmp(key, "account") != 0)
                return rs_refuse(rp, "Entity %zu has an unknown field \"%.40s\" (entity, "
                                 "validity_s, account).", i + 1, key);
            if (strcmp(key, "account") == 0 && !json_is_string(k))
                return rs_refuse(rp, "Entity %zu: \"account\" must be a text.", i + 1);
        }
    }
    for (i = 0; i < json_array_size(ents); i++)
        for (j = 0; j < i; j++)
            if (strcmp(entity_spec(json_array_get(ents, i)),
                       entity_spec(json_array_get(ents, j))) == 0)
                return rs_refuse(rp, "Entity %.200s is selected twice.",
                                 entity_spec(json_array_get(ents, i)));
    if ((pols = json_array()) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    for (i = 0; i < json_array_size(ents); i++) {
        const json_t *it = json_array_get(ents, i);
        ent_t         e;
        const char   *action = NULL, *edest = dest;
        json_t       *steps;
        int64_t       ev_validity = validity;

        if (json_is_object(it)) {
            /* this entity's own validity period and destination account */
            if ((ev_validity = validity_in(r, it, validity, rp)) < 0 ||
                (json_object_get(it, "account") != NULL &&
                 !dest_ok(r, json_string_value(json_object_get(it, "account")), &ev, &edest,
                          rp, &rc, errstr, errstr_size))) {
                json_decref(pols);
                return ev_validity < 0 ? CWPP_OK : rc;
            }
            same &= ev_validity == validity && strcmp(edest, dest) == 0;
        }
        if (!entity_of(r, &ev, entity_spec(it), &e, rp, &rc, errstr, errstr_size)) {
            json_decref(pols);
            return rc;
        }
        if ((steps = policy_steps(&e, &action, rp)) == NULL) {
            json_decref(pols);
            return strcmp(rp->status, "error") == 0
                       ? CWPP_OK : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        }
        rc = rs_start_policy(r, c->id, (int)i, ev.id, ev.account, edest, "policy", action,
                             e.type, e.value, e.asset, steps, target, ev_validity, c->actor,
                             remark_of(c), pols, out, errstr, errstr_size);
        json_decref(steps);
        if (rc != CWPP_OK) {
            json_decref(pols);
            return rc;
        }
    }
    if (strcmp(ev.status, "handling") != 0 &&
        (rc = rs_set_status(r, ev.id, ev.status, "handling", c->actor, c->id, remark_of(c),
                            "policy", NULL, errstr, errstr_size)) != CWPP_OK) {
        json_decref(pols);
        return rc;
    }
    rp->result = json_pack("{s:s, s:s, s:o}", "event_id", ev.id, "status_on_success", target,
                           "policies", pols);
    if (same)
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %zu handling polic%s created, valid for %"
                 PRId64 " s on account %s; the event is handling until the tasks finish, then "
                 "%s (failed if a task fails).", ev.id, json_array_size(ents),
                 json_array_size(ents) == 1 ? "y" : "ies", validity, dest, target);
    else
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %zu handling policies created, each with "
                 "its own validity and account (cwppctl events tasks %s); the event is handling "
                 "until the tasks finish, then %s (failed if a task fails).", ev.id,
                 json_array_size(ents), ev.id, target);
    return CWPP_OK;
}

static int cmd_playbook(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, cwpp_outbox_t *out,
                        char *errstr, size_t errstr_size)
{
    const char  *name = pstr(c, "playbook"), *dest;
    const char  *p[2];
    PGresult    *res = NULL;
    json_t      *steps, *pols, *bound;
    json_error_t jerr;
    int64_t      validity;
    ev_t         ev;
    ent_t        e;
    size_t       i;
    int          rc;

    if ((validity = validity_of(r, c, rp)) < 0)
        return CWPP_OK;
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!actor_allowed(r, c, ev.account, rp, &rc, errstr, errstr_size))
        return rc;
    if (strcmp(ev.status, "handled") == 0)
        return rs_refuse(rp, "Event %s is handled already; it takes no new playbook.", ev.id);
    if (!dest_of(r, c, &ev, &dest, rp, &rc, errstr, errstr_size))
        return rc;
    if (!entity_of(r, &ev, pstr(c, "entity"), &e, rp, &rc, errstr, errstr_size))
        return rc;
    p[0] = name != NULL ? name : "";
    p[1] = e.type;
    if ((rc = rs_q(r, SQL_PLAYBOOK, 2, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (name != NULL && name[0] != '\0')
            return rs_refuse(rp, "There is no playbook \"%.64s\" (cwppctl playbooks list).",
                             name);
        return rs_refuse(rp, "No built-in playbook for entity type %s (cwppctl playbooks list).",
                         e.type);
    }
    if (strcmp(PQgetvalue(res, 0, 1), e.type) != 0) {
        rs_refuse(rp, "Playbook %.64s is for %s entities, not %s.", PQgetvalue(res, 0, 0),
                  PQgetvalue(res, 0, 1), e.type);
        PQclear(res);
        return CWPP_OK;
    }
    steps = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    bound = json_array();
    for (i = 0; steps != NULL && bound != NULL && i < json_array_size(steps); i++) {
        json_t *st = json_array_get(steps, i);
        json_t *pr = cwpp_playbook_params(json_object_get(st, "params"), e.value, e.asset,
                                          e.pid[0] ? e.pid : NULL, e.sha256[0] ? e.sha256 : NULL);
        json_t *nst = json_deep_copy(st);

        if (pr == NULL || nst == NULL) {
            json_decref(pr);
            json_decref(nst);
            json_decref(bound);
            bound = NULL;
        } else if (json_object_set_new(nst, "params", pr) != 0 ||
                   json_array_append_new(bound, nst) != 0) {
            json_decref(bound); /* nst and pr were taken, and freed on failure */
            bound = NULL;
        }
    }
    json_decref(steps);
    if (bound == NULL || (pols = json_array()) == NULL) {
        PQclear(res);
        json_decref(bound);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    rc = rs_start_policy(r, c->id, 0, ev.id, ev.account, dest, "playbook", PQgetvalue(res, 0, 0),
                         e.type, e.value, e.asset, bound, "handled", validity, c->actor,
                         remark_of(c), pols, out, errstr, errstr_size);
    json_decref(bound);
    if (rc == CWPP_OK && strcmp(ev.status, "handling") != 0)
        rc = rs_set_status(r, ev.id, ev.status, "handling", c->actor, c->id, remark_of(c),
                           "playbook", NULL, errstr, errstr_size);
    if (rc != CWPP_OK) {
        PQclear(res);
        json_decref(pols);
        return rc;
    }
    rp->result = json_pack("{s:s, s:s, s:o}", "event_id", ev.id, "playbook",
                           PQgetvalue(res, 0, 0), "policies", pols);
    snprintf(rp->msg, sizeof(rp->msg), "Event %s: playbook %s started on %s:%.200s (account %s, "
             "valid for %" PRId64 " s); the event becomes handled when it completes.", ev.id,
             PQgetvalue(res, 0, 0), e.type, e.value, dest, validity);
    PQclear(res);
    return CWPP_OK;
}

/* ---------------------------------------------------- users, accounts, playbooks */

static int name_ok(const char *s, size_t max)
{
    size_t i, n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (i > 0 && (ch == '.' || ch == '_' || ch == '@' || ch == '-'))))
            return 0;
    }
    return 1;
}

/* Runs sql (n params) and answers with msg when it changed a row, else with refusal. */
static int change(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, const char *sql, int n,
                  const char *const *p, const char *otype, const char *oid, const char *action,
                  json_t *after, const char *refusal, char *errstr, size_t errstr_size)
{
    PGresult *res = NULL;
    int       rc = rs_q(r, sql, n, p, PGRES_COMMAND_OK, &res, errstr, errstr_size), changed;

    if (rc != CWPP_OK) {
        json_decref(after);
        return rc;
    }
    changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!changed) {
        json_decref(after);
        return rs_refuse(rp, "%s", refusal);
    }
    rp->result = json_incref(after);
    return rs_log(r, c->actor, c->id, otype, oid, NULL, action, NULL, after, remark_of(c),
                  errstr, errstr_size);
}

static int cmd_users(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                     size_t errstr_size)
{
    const char *user = pstr(c, "user"), *acc = pstr(c, "account");
    const char *t = c->type + 6; /* after "users." */
    char        refusal[400];
    int         rc;

    if (!actor_admin(r, c, rp, &rc, errstr, errstr_size))
        return rc;
    if (!name_ok(user, 64))
        return rs_refuse(rp, "\"%.64s\" is not a user name (1 to 64 of A-Z a-z 0-9 . _ @ -, "
                         "starting with a letter or digit).", user != NULL ? user : "");
    if (strcmp(t, "add") == 0) {
        const char *role = pstr(c, "role"), *dn = pstr(c, "display_name");
        const char *p[4] = {user, dn != NULL ? dn : "", role != NULL ? role : "analyst",
                            c->actor};

        if (strcmp(p[2], "admin") != 0 && strcmp(p[2], "analyst") != 0)
            return rs_refuse(rp, "\"%.40s\" is not a role (admin or analyst).", p[2]);
        snprintf(refusal, sizeof(refusal), "User %s exists already.", user);
        rc = change(r, c, rp,
                    "INSERT INTO users (user_name, display_name, role, created_by) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, "user", user,
                    "users.add", json_pack("{s:s, s:s}", "user", user, "role", p[2]), refusal,
                    errstr, errstr_size);
        if (strcmp(rp->status, "ok") == 0)
            snprintf(rp->msg, sizeof(rp->msg), "User %s added as %s.", user, p[2]);
    } else if (strcmp(t, "grant") == 0 || strcmp(t, "revoke") == 0) {
        const char *p[3] = {user, acc, c->actor};
        int         grant = strcmp(t, "grant") == 0;

        if (acc == NULL || acc[0] == '\0' || strlen(acc) > 200)
            return rs_refuse(rp, "Name the account (\"account\").");
        if (grant)
            snprintf(refusal, sizeof(refusal), "User %s is unknown or holds account %.200s "
                     "already.", user, acc);
        else
            snprintf(refusal, sizeof(refusal), "User %s holds no permission on account %.200s.",
                     user, acc);
        rc = change(r, c, rp,
                    grant ? "INSERT INTO user_accounts (user_name, account_id, granted_by) "
                            "SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE "
                            "user_name = $1) ON CONFLICT DO NOTHING"
                          : "DELETE FROM user_accounts WHERE user_name = $1 AND account_id = $2 "
                            "AND $3::text IS NOT NULL",
                    3, p, "user", user, grant ? "users.grant" : "users.revoke",
                    json_pack("{s:s, s:s}", "user", user, "account", acc), refusal, errstr,
                    errstr_size);
        if (strcmp(rp->status, "ok") == 0)
            snprintf(rp->msg, sizeof(rp->msg), "User %s %s account %.200s.", user,
                 grant ? "may now act on" : "may no longer act on", acc);
    } else if (strcmp(t, "disable") == 0 || strcmp(t, "enable") == 0) {
        const char *p[1] = {user};
        int         dis = strcmp(t, "disable") == 0;

        if (dis && strcmp(user, c->actor) == 0)
            return rs_refuse(rp, "You cannot disable yourself.");
        snprintf(refusal, sizeof(refusal), "User %s is unknown or %s already.", user,
                 dis ? "disabled" : "enabled");
        rc = change(r, c, rp,
                    dis ? "UPDATE users SET disabled_at = now() WHERE user_name = $1 AND "
                          "disabled_at IS NULL"
                        : "UPDATE users SET disabled_at = NULL WHERE user_name = $1 AND "
                          "disabled_at IS NOT NULL",
                    1, p, "user", user, dis ? "users.disable" : "users.enable",
                    json_pack("{s:s, s:b}", "user", user, "disabled", dis), refusal, errstr,
                    errstr_size);
        if (strcmp(rp->status, "ok") == 0)
            snprintf(rp->msg, sizeof(rp->msg), "User %s %s.", user, dis ? "disabled" : "enabled");
    } else {
        return rs_refuse(rp, "Unknown command \"%.60s\" (users.add, users.grant, users.revoke, "
                         "users.disable, users.enable).", c->type);
    }
    return rc;
}

static int cmd_accounts(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                        size_t errstr_size)
{
    const char *acc = pstr(c, "account"), *mgr = pstr(c, "manager"), *nm = pstr(c, "name");
    const char *p[4] = {acc, mgr, nm != NULL ? nm : "", c->actor};
    char        refusal[400];
    int         rc;

    if (strcmp(c->type, "accounts.add_member") != 0)
        return rs_refuse(rp, "Unknown command \"%.60s\" (accounts.add_member).", c->type);
    if (!actor_admin(r, c, rp, &rc, errstr, errstr_size))
        return rc;
    if (acc == NULL || mgr == NULL || acc[0] == '\0' || mgr[0] == '\0' || strlen(acc) > 200 ||
        strlen(mgr) > 200 || strcmp(acc, mgr) == 0)
        return rs_refuse(rp, "Name the member account and a different manager account "
                         "(\"account\", \"manager\").");
    snprintf(refusal, sizeof(refusal), "Account %.200s is a member account already.", acc);
    rc = change(r, c, rp,
                "INSERT INTO managed_accounts (account_id, manager_account_id, name, created_by) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, "account", acc,
                "accounts.add_member", json_pack("{s:s, s:s}", "account", acc, "manager", mgr),
                refusal, errstr, errstr_size);
    if (strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Account %.200s is now a member account managed by "
             "%.200s.", acc, mgr);
    return rc;
}

static int cmd_playbooks(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, char *errstr,
                         size_t errstr_size)
{
    char refusal[400], why[300];
    int  rc;

    if (!actor_admin(r, c, rp, &rc, errstr, errstr_size))
        return rc;
    if (strcmp(c->type, "playbooks.add") == 0) {
        json_t     *pb = json_object_get(c->payload, "playbook");
        char       *steps;
        const char *name, *p[6];

        if (cwpp_playbook_check(pb, why, sizeof(why)) != 0)
            return rs_refuse(rp, "The playbook is not valid: %s.", why);
        name = json_string_value(json_object_get(pb, "name"));
        if ((steps = json_dumps(json_object_get(pb, "steps"), JSON_COMPACT)) == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        p[0] = name;
        p[1] = json_string_value(json_object_get(pb, "entity_type"));
        p[2] = json_string_value(json_object_get(pb, "description"));
        p[3] = steps;
        p[4] = json_is_true(json_object_get(pb, "default")) ? "true" : "false";
        p[5] = c->actor;
        if (p[2] == NULL)
            p[2] = "";
        snprintf(refusal, sizeof(refusal), "Playbook %s is built in or loaded from a file; add "
                 "yours under another name.", name);
        rc = change(r, c, rp,
                    "INSERT INTO playbooks (name, entity_type, description, steps, origin, "
                    "is_default, updated_by) VALUES ($1, $2, $3, $4::jsonb, 'custom', "
                    "$5::boolean AND NOT EXISTS (SELECT 1 FROM playbooks WHERE entity_type = $2 "
                    "AND is_default AND name <> $1), $6) "
                    "ON CONFLICT (name) DO UPDATE SET entity_type = EXCLUDED.entity_type, "
                    "description = EXCLUDED.description, steps = EXCLUDED.steps, "
                    "is_default = EXCLUDED.is_default, updated_by = EXCLUDED.updated_by, "
                    "updated_at = now() WHERE playbooks.origin = 'custom'", 6, p, "playbook",
                    name, "playbooks.add", json_pack("{s:s, s:s}", "name", name, "entity_type",
                                                     p[1]), refusal, errstr, errstr_size);
        free(steps);
        if (strcmp(rp->status, "ok") == 0)
            snprintf(rp->msg, sizeof(rp->msg), "Playbook %s saved (%zu step%s)%s.", name,
                     json_array_size(json_object_get(pb, "steps")),
                     json_array_size(json_object_get(pb, "steps")) == 1 ? "" : "s",
                     json_is_true(json_object_get(pb, "default"))
                         ? "; it is the default of its entity type unless another one is "
                           "already (cwppctl playbooks list shows which)"
                         : "");
        return rc;
    }
    if (strcmp(c->type, "playbooks.delete") == 0) {
        const char *name = pstr(c, "name"), *p[1] = {name};

        if (name == NULL || name[0] == '\0')
            return rs_refuse(rp, "Name the playbook (\"name\").");
        snprintf(refusal, sizeof(refusal), "There is no custom playbook \"%.64s\" (built-in "
                 "and file playbooks cannot be deleted).", name);
        rc = change(r, c, rp, "DELETE FROM playbooks WHERE name = $1 AND origin = 'custom'", 1, p,
                    "playbook", name, "playbooks.delete", json_pack("{s:s}", "name", name),
                    refusal, errstr, errstr_size);
        if (strcmp(rp->status, "ok") == 0)
            snprintf(rp->msg, sizeof(rp->msg), "Playbook %.64s deleted.", name);
        return rc;
    }
    return rs_refuse(rp, "Unknown command \"%.60s\" (playbooks.add, playbooks.delete).",
                     c->type);
}

/* -------------------------------------------------------------------- entry */

static int dispatch(rs_t *r, const rs_cmd_t *c, rs_reply_t *rp, cwpp_outbox_t *out,
                    char *errstr, size_t errstr_size)
{
    int64_t now = cwpp_now_ms(), age;

    if (c->issued_at_ms <= 0 || c->issued_at_ms > now + 300000)
        return rs_refuse(rp, "The command's issue time (%" PRId64 " ms) is not a time of the "
                         "last years or the next 5 minutes; check the sender's clock.",
                         c->issued_at_ms);
    age = now - c->issued_at_ms;
    if (c->payload == NULL)
        return rs_refuse(rp, "The command's payload is not a JSON object.");
    if (c->actor[0] == '\0')
        return rs_refuse(rp, "The command names no actor; every change must say who makes it.");
    if (age > r->conf->command_max_age_ms)
        return rs_refuse(rp, "Stale command: issued %" PRId64 " s ago, longer than "
                         "responder.command.max.age.ms allows (%" PRId64 " s). Nothing was "
                         "changed; decide again on the event as it is now.", age / 1000,
                         r->conf->command_max_age_ms / 1000);
    if (strcmp(c->type, "event.status") == 0)
        return cmd_status(r, c, rp, errstr, errstr_size);
    if (strcmp(c->type, "event.owner") == 0)
        return cmd_owner(r, c, rp, errstr, errstr_size);
    if (strcmp(c->type, "event.level") == 0)
        return cmd_level(r, c, rp, errstr, errstr_size);
    if (strcmp(c->type, "event.remark") == 0)
        return cmd_remark(r, c, rp, errstr, errstr_size);
    if (strcmp(c->type, "event.respond") == 0)
        return cmd_respond(r, c, rp, out, errstr, errstr_size);
    if (strcmp(c->type, "event.playbook") == 0)
        return cmd_playbook(r, c, rp, out, errstr, errstr_size);
    if (strncmp(c->type, "users.", 6) == 0)
        return cmd_users(r, c, rp, errstr, errstr_size);
    if (strncmp(c->type, "accounts.", 9) == 0)
        return cmd_accounts(r, c, rp, errstr, errstr_size);
    if (strncmp(c->type, "playbooks.", 10) == 0)
        return cmd_playbooks(r, c, rp, errstr, errstr_size);
    return rs_refuse(rp, "Unknown responder command \"%.60s\" (docs/commands.md).", c->type);
}

int rs_apply_command(rs_t *r, const rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    rs_cmd_t    c = {0};
    rs_reply_t  rp;
    char        why[300];
    PGresult   *res = NULL;
    size_t      out_mark, touched_mark;
    int         rc;

    if (cwpp_command_decode(r->t_cmd, &r->v_cmd, m->payload, m->len, 200, &c, why,
                            sizeof(why)) != 0)
        return rs_dead_letter(r, m, "bad_command", why, out, errstr, errstr_size);
    if (strcmp(c.service, "responder") != 0) {
        rc = CWPP_OK; /* another service's command */
        goto done;
    }
    {
        const char *p[1] = {c.id};

        /* two members of the group during a rebalance: one applies, the other then finds
         * the record (the lock is held until the batch's transaction ends) */
        if ((rc = rs_q(r, SQL_COMMAND_LOCK, 1, p, PGRES_TUPLES_OK, NULL, errstr,
                       errstr_size)) != CWPP_OK ||
            (rc = rs_q(r, SQL_APPLIED, 1, p, PGRES_TUPLES_OK, &res, errstr, errstr_size)) !=
            CWPP_OK)
            goto done;
        if (PQntuples(res) == 1) {
            /* applied before: the same answer, and its running actions again */
            json_error_t jerr;
            json_t      *result = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
            const char  *eid = json_string_value(json_object_get(result, "event_id"));

            rc = rs_resend_for_response(r, c.id, out, errstr, errstr_size);
            if (rc == CWPP_OK && eid != NULL)
                rc = rs_touch(r, eid, errstr, errstr_size); /* the snapshot again: it may not have been sent */
            if (rc == CWPP_OK)
                rc = answer(r, &c, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), result, 0, out,
                            errstr, errstr_size);
            json_decref(result);
            PQclear(res);
            goto done;
        }
        PQclear(res);
    }
    memset(&rp, 0, sizeof(rp));
    rp.status = "ok";
    out_mark = cwpp_outbox_count(out);
    touched_mark = r->ntouched;
    if ((rc = cwpp_pg_command(r->pg, "SAVEPOINT cmd", errstr, errstr_size)) != CWPP_OK)
        goto done;
    rc = dispatch(r, &c, &rp, out, errstr, errstr_size);
    if (rc == CWPP_EDATA || (rc == CWPP_OK && strcmp(rp.status, "error") == 0)) {
        /* undo whatever the command did before it was refused */
        if (rc == CWPP_EDATA) {
            json_decref(rp.result);
            rp.result = NULL;
            rs_refuse(&rp, "The database refused the change: %s", errstr);
        }
        cwpp_outbox_truncate(out, out_mark);
        while (r->ntouched > touched_mark)
            free(r->touched[--r->ntouched]);
        rc = cwpp_pg_command(r->pg, "ROLLBACK TO SAVEPOINT cmd", errstr, errstr_size);
    }
    if (rc == CWPP_OK)
        rc = answer(r, &c, rp.status, rp.msg, rp.result, 1, out, errstr, errstr_size);
    if (rc == CWPP_EDATA) {
        /* the answer itself could not be stored: undo the command, answer plainly */
        cwpp_warn("command_unrecordable", "%s %s: %s", c.type, c.id, errstr);
        cwpp_outbox_truncate(out, out_mark);
        while (r->ntouched > touched_mark)
            free(r->touched[--r->ntouched]);
        rc = cwpp_pg_command(r->pg, "ROLLBACK TO SAVEPOINT cmd", errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = answer(r, &c, "error", "The command was not applied: the database refused to "
                        "record it (its text is not valid).", NULL, 1, out, errstr,
                        errstr_size);
    }
    if (rc == CWPP_OK)
        rc = cwpp_pg_command(r->pg, "RELEASE SAVEPOINT cmd", errstr, errstr_size);
    json_decref(rp.result);
done:
    json_decref(c.payload);
    return rc == CWPP_EDATA ? CWPP_ETRANSIENT : rc;
}
