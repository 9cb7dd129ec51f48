/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands.c: the responder's commands (docs/commands.md) on events, and the table of
 * all its commands. libs/command runs the protocol: each command in its own savepoint of
 * the batch's transaction, answered once on command-results and recorded in
 * commands_applied; a redelivered command gets the stored answer again and the actions
 * of its still running tasks are sent again (same action ids; the hook below). Every
 * change is appended to activity_log. The admins' commands are in admin.c.
 *
 * A handled event may be reopened (event.status unhandled or handling). A response or
 * playbook acts on every asset the entity was seen on (one policy each): the event's
 * assets on its own account, the member account's own assets on a member account, and
 * for an IP the destination account's perimeter agents when an admin declared some; its
 * validity must cover the sum of its steps' timeouts (docs/responder.md "Targets",
 * "Validity").
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
 *   policies.cancel {policy_id, remark}              (tasks.c)
 */
#include "rs_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_command.h"
#include "cwpp_correlate.h"
#include "cwpp_log.h"
#include "cwpp_respond.h"
#include "cwpp_util.h"

typedef struct ev {
    char id[256], account[1024], status[16], owner[128], level[16], level_source[16];
    char merged_into[256];
    int  has_owner;
} ev_t;

static const char SQL_EVENT[] =
    "SELECT event_id, account_id, status, owner, level, level_source, version, "
    "coalesce(merged_into, '') FROM events WHERE event_id = $1 FOR UPDATE";
static const char SQL_STATUS[] =
    "UPDATE events SET status = $2, status_changed_at = now(), handled_at = CASE WHEN $2 = "
    "'handled' THEN now() END, version = version + 1, updated_at = now() WHERE event_id = $1 "
    "AND status <> 'merged'";
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
/* One row per handling: an event reopened and handled again is queued again, with a new
 * seq (migration 021). */
static const char SQL_HANDLED_QUEUE[] = "INSERT INTO handled_events (event_id) VALUES ($1)";
static const char SQL_OWNER[] =
    "UPDATE events SET owner = $2, version = version + 1, updated_at = now() "
    "WHERE event_id = $1";
static const char SQL_LEVEL[] =
    "UPDATE events SET level = $2, level_source = 'analyst', version = version + 1, "
    "updated_at = now() WHERE event_id = $1";
static const char SQL_DEST_OK[] =
    "SELECT 1 FROM managed_accounts WHERE account_id = $1 AND manager_account_id = $2";
/* Where an entity was seen: each asset once, with what its latest alert there carries,
 * the most recently seen asset first. SQL_ENTITY: among the event's alerts (the event's
 * own account); SQL_ENTITY_MEMBER: among every alert of a member account ($1). */
#define ENTITY_TARGETS(FROM_WHERE)                                                          \
    "SELECT x.asset_id, x.pid, x.sha256, x.path FROM (SELECT DISTINCT ON (a.asset_id) "    \
    "a.asset_id, a.process ->> 'pid' AS pid, a.file ->> 'sha256' AS sha256, "             \
    "a.process ->> 'path' AS path, e.last_seen FROM entity_alerts e JOIN alerts a ON "    \
    "a.alert_id = e.alert_id " FROM_WHERE " ORDER BY a.asset_id, e.last_seen DESC, "      \
    "a.alert_id) x ORDER BY x.last_seen DESC, x.asset_id LIMIT $4::int"
static const char SQL_ENTITY[] =
    ENTITY_TARGETS("WHERE e.event_id = $1 AND e.entity_type = $2 AND e.value = $3");
static const char SQL_ENTITY_MEMBER[] =
    ENTITY_TARGETS("WHERE e.account_id = $1 AND e.entity_type = $2 AND "
                   "e.value_key = bounded_key($3) AND e.value = $3");
/* The perimeter agents an admin declared for an account (accounts.perimeter): an IP of
 * that account is blocked there rather than on each asset it touched. */
static const char SQL_PERIMETER[] =
    "SELECT asset_id, '', '', '' FROM perimeter_agents WHERE account_id = $1 "
    "ORDER BY asset_id LIMIT $2::int";
static const char SQL_PLAYBOOK[] =
    "SELECT name, entity_type, steps::text FROM playbooks WHERE "
    "CASE WHEN $1 = '' THEN entity_type = $2 AND is_default ELSE name = $1 END "
    "ORDER BY origin = 'builtin' DESC, name LIMIT 1";

/* ------------------------------------------------------------------ helpers */

/* The limit of every text a responder command carries (cwpp_alert_limits.h; the table of
 * docs/commands.md "Limits"); a text not named takes its parent member's limit, else
 * CWPP_CMD_MAX_DEFAULT (statuses, levels, roles: then one of a few words). */
static const cwpp_alert_text_limit_t LIMITS[] = {
    {"remark", CWPP_CMD_MAX_REMARK},          {"event_id", CWPP_CMD_MAX_EVENT_ID},
    {"owner", CWPP_CMD_MAX_USER},             {"user", CWPP_CMD_MAX_USER},
    {"account", CWPP_CMD_MAX_ACCOUNT},        {"manager", CWPP_CMD_MAX_ACCOUNT},
    {"display_name", CWPP_CMD_MAX_DISPLAY},   {"name", CWPP_CMD_MAX_DISPLAY},
    {"entities", CWPP_CMD_MAX_ENTITY},        {"entity", CWPP_CMD_MAX_ENTITY},
    {"playbook", CWPP_CMD_MAX_PLAYBOOK_NAME}, {"description", CWPP_CMD_MAX_PLAYBOOK_DESC},
    {"params", CWPP_CMD_MAX_PARAM},
};

int rs_texts_fit(const cwpp_command_t *c, cwpp_command_reply_t *rp)
{
    char why[300];

    if (cwpp_alert_texts_fit(c->payload, LIMITS, sizeof(LIMITS) / sizeof(LIMITS[0]),
                             CWPP_CMD_MAX_DEFAULT, why, sizeof(why)))
        return 1;
    cwpp_command_refuse(rp, "Refused: %s; nothing was changed.", why);
    return 0;
}

static const char *pstr(const cwpp_command_t *c, const char *k)
{
    return json_string_value(json_object_get(c->payload, k));
}

static const char *remark_of(const cwpp_command_t *c)
{
    const char *s = pstr(c, "remark");

    return s != NULL ? s : "";
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

/* Loads and locks the event. 0 found, 1 not found or not at the version the payload
 * expects ("version", optional: the API's If-Match; refused with result {event_id,
 * version, expected, conflict: "version"}), else a database error. The version is checked
 * before the actor's permission is: its refusal says only a number, and the API has
 * checked that the caller sees the event before it issued the command. */
static int load_event(rs_t *r, const cwpp_command_t *c, cwpp_command_reply_t *rp, ev_t *ev,
                      char *errstr, size_t errstr_size)
{
    const char *id = pstr(c, "event_id");
    PGresult   *res = NULL;
    const char *p[1];
    int         rc;

    if (id == NULL || id[0] == '\0') {
        cwpp_command_refuse(rp, "The command names no event (\"event_id\").");
        return 1;
    }
    p[0] = id;
    if ((rc = cwpp_pg_query(r->pg, SQL_EVENT, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        cwpp_command_refuse(rp, "There is no event \"%.100s\" (cwppctl events list shows them).",
                            id);
        return 1;
    }
    if (strlen(PQgetvalue(res, 0, 0)) >= sizeof(ev->id) ||
        strlen(PQgetvalue(res, 0, 1)) >= sizeof(ev->account)) {
        PQclear(res);
        cwpp_command_refuse(rp,
                            "The event's id or account is longer than the responder handles (%zu, "
                            "%zu bytes).", sizeof(ev->id) - 1, sizeof(ev->account) - 1);
        return 1;
    }
    if (json_object_get(c->payload, "version") != NULL) {
        const json_t *want = json_object_get(c->payload, "version");
        json_int_t    now = (json_int_t)strtoll(PQgetvalue(res, 0, 6), NULL, 10);

        if (!json_is_integer(want)) {
            PQclear(res);
            cwpp_command_refuse(rp, "\"version\" must be a whole number (the event's version "
                                "the change was decided on).");
            return 1;
        }
        if (json_integer_value(want) != now) {
            rp->result = json_pack("{s:s, s:I, s:I, s:s}", "event_id", PQgetvalue(res, 0, 0),
                                   "version", now, "expected", json_integer_value(want),
                                   "conflict", "version");
            cwpp_command_refuse(rp, "Event %.100s changed meanwhile (version %" PRId64 ", not %"
                                PRId64 "); nothing was changed: look at it again.",
                                PQgetvalue(res, 0, 0), (int64_t)now,
                                (int64_t)json_integer_value(want));
            PQclear(res);
            return 1;
        }
    }
    memset(ev, 0, sizeof(*ev));
    copy(ev->id, sizeof(ev->id), PQgetvalue(res, 0, 0));
    copy(ev->account, sizeof(ev->account), PQgetvalue(res, 0, 1));
    copy(ev->status, sizeof(ev->status), PQgetvalue(res, 0, 2));
    ev->has_owner = !PQgetisnull(res, 0, 3);
    copy(ev->owner, sizeof(ev->owner), PQgetvalue(res, 0, 3));
    copy(ev->level, sizeof(ev->level), PQgetvalue(res, 0, 4));
    copy(ev->level_source, sizeof(ev->level_source), PQgetvalue(res, 0, 5));
    copy(ev->merged_into, sizeof(ev->merged_into), PQgetvalue(res, 0, 7));
    PQclear(res);
    return 0;
}

/* 1 when ev was merged into another event (the correlator's event.merge), refused in rp:
 * the survivor is where analysts act; only a remark is still taken. */
static int merged_refused(const ev_t *ev, cwpp_command_reply_t *rp)
{
    if (strcmp(ev->status, "merged") != 0)
        return 0;
    cwpp_command_refuse(rp, "Event %s was merged into %s; act on %s.", ev->id, ev->merged_into,
                        ev->merged_into);
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
    int         rc, changed;
    PGresult   *st = NULL;

    if ((rc = cwpp_pg_query(r->pg, SQL_STATUS, 2, p, PGRES_COMMAND_OK, &st, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    changed = strcmp(PQcmdTuples(st), "0") != 0;
    PQclear(st);
    if (!changed) {
        /* merged meanwhile (a policy that finishes on an event the correlator merged):
         * the survivor's status is the analysts' to set */
        if (alerts_handled != NULL)
            *alerts_handled = 0;
        return CWPP_OK;
    }
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
        rc = cwpp_pg_query(r->pg, SQL_CASCADE, 5, pc, PGRES_TUPLES_OK, &res, errstr, errstr_size);
        free(hj);
        if (rc != CWPP_OK)
            return rc;
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        /* queued for the exporter's handled-event stream, in the same transaction */
        if ((rc = cwpp_pg_query(r->pg, SQL_HANDLED_QUEUE, 1, p, PGRES_COMMAND_OK, NULL, errstr,
                                errstr_size)) != CWPP_OK)
            return rc;
    }
    if (alerts_handled != NULL)
        *alerts_handled = n;
    after = json_pack("{s:s, s:s}", "status", to, "via", via);
    if (after != NULL && strcmp(to, "handled") == 0)
        json_object_set_new(after, "alerts_handled", json_integer(n));
    if (after != NULL && strcmp(from, "handled") == 0)
        json_object_set_new(after, "reopened", json_true());
    rc = cwpp_command_log(r->pg, actor, command_id, "event", event_id, event_id, "event.status",
                          obj1("status", from), after, remark, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = rs_touch(r, event_id, errstr, errstr_size);
    return rc;
}

static int cmd_status(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    const char         *to = pstr(c, "status");
    cwpp_event_status_t es;
    ev_t                ev;
    int64_t             n = 0;
    int                 rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    /* every status but failed, which only a failed task sets */
    if (to == NULL || cwpp_event_status_parse(to, &es) != 0 || es == CWPP_EVS_FAILED)
        return cwpp_command_refuse(rp, "\"%.40s\" is not a status an analyst can set (unhandled, "
                                   "handling or handled).", to != NULL ? to : "");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if (merged_refused(&ev, rp))
        return CWPP_OK;
    /* A handled event may be reopened (unhandled or handling): it takes related alerts
     * again until it is handled again; its alerts handled before keep their status and
     * handling information (docs/responder.md "Reopening a handled event"). */
    if (strcmp(ev.status, to) == 0)
        return cwpp_command_refuse(rp, "Event %s is %s already.", ev.id, to);
    if ((rc = rs_set_status(r, ev.id, ev.status, to, c->actor, c->id, remark_of(c), "status",
                            &n, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s, s:s, s:s, s:I}", "event_id", ev.id, "before", ev.status,
                           "status", to, "alerts_handled", (json_int_t)n);
    if (strcmp(to, "handled") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %s -> handled; %" PRId64 " associated "
                 "alert%s handled with it. The event takes no more alerts.", ev.id, ev.status,
                 n, n == 1 ? "" : "s");
    else if (strcmp(ev.status, "handled") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: handled -> %s (reopened): it takes "
                 "related alerts again until it is handled again; the alerts handled with it "
                 "keep their status and handling.", ev.id, to);
    else
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %s -> %s.", ev.id, ev.status, to);
    return CWPP_OK;
}

/* -------------------------------------------------------------- owner, level */

static int cmd_owner(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    const char *owner = pstr(c, "owner");
    const char *p[2];
    char        why[300];
    ev_t        ev;
    int         rc, ok;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (owner == NULL || owner[0] == '\0')
        return cwpp_command_refuse(rp, "The command names no owner (\"owner\").");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if (merged_refused(&ev, rp))
        return CWPP_OK;
    ok = cwpp_commander_may_act(r->cmd, owner, ev.account, NULL, why, sizeof(why), errstr,
                                errstr_size);
    if (ok < 0)
        return -ok;
    if (!ok)
        return cwpp_command_refuse(rp,
                                   "Refused: %s; the owner must be a known user holding permission "
                                   "on the event's account.", why);
    if (ev.has_owner && strcmp(ev.owner, owner) == 0)
        return cwpp_command_refuse(rp, "Event %s is owned by %s already.", ev.id, owner);
    p[0] = ev.id;
    p[1] = owner;
    if ((rc = cwpp_pg_query(r->pg, SQL_OWNER, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK ||
        (rc = cwpp_command_log(r->pg, c->actor, c->id, "event", ev.id, ev.id, "event.owner",
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

static int cmd_level(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    static const char *const ok[] = {"critical", "high", "medium", "low"};
    const char *to = pstr(c, "level");
    const char *p[2];
    ev_t        ev;
    int         rc, i, known = 0;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    for (i = 0; to != NULL && i < 4; i++)
        known |= strcmp(to, ok[i]) == 0;
    if (!known)
        return cwpp_command_refuse(rp, "\"%.40s\" is not a level (critical, high, medium or low).",
                                   to != NULL ? to : "");
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if (merged_refused(&ev, rp))
        return CWPP_OK;
    if (strcmp(ev.level, to) == 0 && strcmp(ev.level_source, "analyst") == 0)
        return cwpp_command_refuse(rp, "Event %s is at level %s already.", ev.id, to);
    p[0] = ev.id;
    p[1] = to;
    if ((rc = cwpp_pg_query(r->pg, SQL_LEVEL, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK ||
        (rc = cwpp_command_log(r->pg, c->actor, c->id, "event", ev.id, ev.id, "event.level",
                               obj1("level", ev.level), obj1("level", to), remark_of(c), errstr,
                               errstr_size)) != CWPP_OK ||
        (rc = rs_touch(r, ev.id, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s, s:s, s:s}", "event_id", ev.id, "before", ev.level, "level", to);
    snprintf(rp->msg, sizeof(rp->msg), "Event %s: level %s -> %s (kept: new alerts no longer "
             "change it).", ev.id, ev.level, to);
    return CWPP_OK;
}

static int cmd_remark(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    ev_t ev;
    int  rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (remark_of(c)[0] == '\0')
        return cwpp_command_refuse(rp, "The remark is empty.");
    if (strlen(remark_of(c)) > CWPP_CMD_MAX_REMARK)
        return cwpp_command_refuse(rp, "The remark is longer than %d bytes.",
                                   CWPP_CMD_MAX_REMARK);
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if ((rc = cwpp_command_log(r->pg, c->actor, c->id, "event", ev.id, ev.id, "event.remark", NULL,
                               NULL,
                               remark_of(c), errstr, errstr_size)) != CWPP_OK)
        return rc;
    rp->result = json_pack("{s:s}", "event_id", ev.id);
    snprintf(rp->msg, sizeof(rp->msg), "Remark added to event %s.", ev.id);
    return CWPP_OK;
}

/* --------------------------------------------------------- respond, playbook */

/* validity_s of obj (the payload, or one entity's overrides), else def, within bounds;
 * -1 refused. */
static int64_t validity_in(rs_t *r, const json_t *obj, int64_t def, cwpp_command_reply_t *rp)
{
    json_t *v = json_object_get(obj, "validity_s");
    int64_t s = def;

    if (v != NULL) {
        if (!json_is_integer(v)) {
            cwpp_command_refuse(rp, "\"validity_s\" must be a whole number of seconds.");
            return -1;
        }
        s = json_integer_value(v);
    }
    if (s < r->conf->validity_min_s || s > r->conf->validity_max_s) {
        cwpp_command_refuse(rp,
                            "A validity period of %" PRId64 " s is outside %" PRId64 " s to "
                            "%" PRId64
                            " s (responder.validity.min.s, responder.validity.max.s).", s,
                            r->conf->validity_min_s, r->conf->validity_max_s);
        return -1;
    }
    return s;
}

static int64_t validity_of(rs_t *r, const cwpp_command_t *c, cwpp_command_reply_t *rp)
{
    return validity_in(r, c->payload, r->conf->validity_default_s, rp);
}

/* The destination account d (NULL or empty: the event's own), which must be the event's
 * own or a member account it manages. 1 ok. */
static int dest_ok(rs_t *r, const char *d, const ev_t *ev, const char **dest,
                   cwpp_command_reply_t *rp,
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
    if ((*rc = cwpp_pg_query(r->pg, SQL_DEST_OK, 2, p, PGRES_TUPLES_OK, &res, errstr,
                             errstr_size)) != CWPP_OK)
        return 0;
    found = PQntuples(res) > 0;
    PQclear(res);
    if (!found)
        cwpp_command_refuse(rp, "Account \"%.100s\" is neither the event's account (%.100s) "
                            "nor a member account it manages (cwppctl accounts list).", *dest,
                            ev->account);
    return found;
}

static int dest_of(rs_t *r, const cwpp_command_t *c, const ev_t *ev, const char **dest,
                   cwpp_command_reply_t *rp, int *rc, char *errstr, size_t errstr_size)
{
    return dest_ok(r, pstr(c, "account"), ev, dest, rp, rc, errstr, errstr_size);
}

/* The most assets one entity's handling acts on (one policy each). */
#define MAX_TARGETS 100

/* One asset an entity's handling acts on, with what its latest alert there carries. */
typedef struct target {
    char asset[1024], pid[32], sha256[80], path[1024];
} target_t;

/* An entity of the event and its targets (t: n of them, malloc'd; ent_free). */
typedef struct ent {
    char      type[16], value[1024];
    target_t *t;
    size_t    n;
} ent_t;

static void ent_free(ent_t *e)
{
    free(e->t);
    e->t = NULL;
    e->n = 0;
}

/* The targets of e from res (SQL_ENTITY's columns): at most MAX_TARGETS. 1 taken, 0
 * refused in rp, -1 out of memory. A host is acted on as itself, once. */
static int targets_of(PGresult *res, ent_t *e, cwpp_command_reply_t *rp)
{
    int i, n = PQntuples(res);

    if (n > MAX_TARGETS) {
        cwpp_command_refuse(rp, "Entity %s:%.200s was seen on more than %d assets; handle it "
                            "on fewer at a time (a member account's, or another event's).",
                            e->type, e->value, MAX_TARGETS);
        return 0;
    }
    if (strcmp(e->type, "host") == 0)
        n = n > 0 ? 1 : 0;
    if ((e->t = calloc((size_t)(n > 0 ? n : 1), sizeof(*e->t))) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        target_t *t = &e->t[i];

        if (strlen(PQgetvalue(res, i, 0)) >= sizeof(t->asset) ||
            strlen(PQgetvalue(res, i, 1)) >= sizeof(t->pid) ||
            strlen(PQgetvalue(res, i, 2)) >= sizeof(t->sha256) ||
            strlen(PQgetvalue(res, i, 3)) >= sizeof(t->path)) {
            cwpp_command_refuse(rp, "Entity %s:%.200s: its asset id, pid, hash or path is too "
                                "long to act on safely.", e->type, e->value);
            return 0;
        }
        copy(t->asset, sizeof(t->asset), PQgetvalue(res, i, 0));
        copy(t->pid, sizeof(t->pid), PQgetvalue(res, i, 1));
        copy(t->sha256, sizeof(t->sha256), PQgetvalue(res, i, 2));
        copy(t->path, sizeof(t->path), PQgetvalue(res, i, 3));
        if (strcmp(e->type, "host") == 0)
            copy(t->asset, sizeof(t->asset), e->value);
    }
    e->n = (size_t)n;
    return 1;
}

/* "type:value" of the event, and where its handling acts (docs/responder.md "Targets"):
 * on the event's own account (dest), every asset of the event where it was seen; on a
 * member account, every asset of that account whose alerts carry it. 1 found (e->t to be
 * freed with ent_free, also after 0); 0 refused, or a database error in *rc. */
static int entity_of(rs_t *r, const ev_t *ev, const char *spec, const char *dest, ent_t *e,
                     cwpp_command_reply_t *rp, int *rc, char *errstr, size_t errstr_size)
{
    const char *colon = spec != NULL ? strchr(spec, ':') : NULL;
    PGresult   *res = NULL;
    const char *p[4];
    char        lim[16];
    int         ok;

    *rc = CWPP_OK;
    memset(e, 0, sizeof(*e));
    if (colon == NULL || colon == spec || colon[1] == '\0' || (size_t)(colon - spec) >= 16 ||
        strlen(colon + 1) >= sizeof(e->value)) {
        cwpp_command_refuse(rp,
                            "\"%.200s\" is not an entity: write TYPE:VALUE, e.g. ip:203.0.113.7 "
                            "(cwppctl events entities %s lists them).", spec != NULL ? spec : "",
                            ev->id);
        return 0;
    }
    memcpy(e->type, spec, (size_t)(colon - spec));
    copy(e->value, sizeof(e->value), colon + 1);
    if (!cwpp_entity_type_known(e->type)) {
        char names[96];

        cwpp_command_refuse(rp, "\"%.20s\" is not an entity type (%s).", e->type,
                            cwpp_entity_types_text(names, sizeof(names), ", ", ", "));
        return 0;
    }
    snprintf(lim, sizeof(lim), "%d", MAX_TARGETS + 1);
    p[0] = ev->id;
    p[1] = e->type;
    p[2] = e->value;
    p[3] = lim;
    if ((*rc = cwpp_pg_query(r->pg, SQL_ENTITY, 4, p, PGRES_TUPLES_OK, &res, errstr,
                             errstr_size)) != CWPP_OK)
        return 0;
    if (PQntuples(res) == 0) {
        PQclear(res);
        cwpp_command_refuse(rp,
                            "Event %s has no entity %s:%.200s (cwppctl events entities %s lists "
                            "them).", ev->id, e->type, e->value, ev->id);
        return 0;
    }
    if (strcmp(e->type, "ip") == 0) {
        /* an account with perimeter agents blocks an IP there, whoever it touched */
        const char *q[2] = {dest, lim};
        PGresult   *per = NULL;

        if ((*rc = cwpp_pg_query(r->pg, SQL_PERIMETER, 2, q, PGRES_TUPLES_OK, &per, errstr,
                                 errstr_size)) != CWPP_OK) {
            PQclear(res);
            return 0;
        }
        if (PQntuples(per) > 0) {
            PQclear(res);
            res = per;
            goto found;
        }
        PQclear(per);
    }
    if (strcmp(dest, ev->account) != 0) {
        /* a member account: its own assets that hold the entity, never the event's */
        PQclear(res);
        res = NULL;
        p[0] = dest;
        if ((*rc = cwpp_pg_query(r->pg, SQL_ENTITY_MEMBER, 4, p, PGRES_TUPLES_OK, &res, errstr,
                                 errstr_size)) != CWPP_OK)
            return 0;
        if (PQntuples(res) == 0) {
            PQclear(res);
            cwpp_command_refuse(rp, "Member account %.100s has no asset where %s:%.200s was "
                                "seen (none of its alerts carries it), so there is nothing to "
                                "act on there; choose the event's account (%.100s) or a member "
                                "account whose assets saw it.", dest, e->type, e->value,
                                ev->account);
            return 0;
        }
    }
found:
    ok = targets_of(res, e, rp);
    PQclear(res);
    if (ok < 0)
        *rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    return ok > 0;
}

/* The steps of the built-in policy for e on its target t (cwpp_policy_steps), or NULL with
 * the refusal in rp (status "error") or, rp untouched, out of memory. */
static json_t *policy_steps(const ent_t *e, const target_t *t, const char **action,
                            cwpp_command_reply_t *rp)
{
    char    why[600];
    json_t *steps = cwpp_policy_steps(e->type, e->value, t->pid, t->path, t->sha256, action,
                                      why, sizeof(why));

    if (steps == NULL && why[0] != '\0')
        cwpp_command_refuse(rp, "%s", why);
    return steps;
}

/* 1 when validity_s leaves the steps the time they need (cwpp_steps_need_ms: the sum of
 * their timeouts), else 0 refused in rp naming what (a playbook's name, or the policy's
 * action) and the shortest validity it accepts. */
static int validity_fits(rs_t *r, const json_t *steps, const char *what, int64_t validity_s,
                         cwpp_command_reply_t *rp)
{
    int64_t need = cwpp_steps_need_ms(steps, r->conf->task_timeout_ms);
    int64_t need_s = (need + 999) / 1000;

    if (validity_s * 1000 >= need)
        return 1;
    cwpp_command_refuse(rp, "A validity period of %" PRId64 " s is shorter than %s needs: its "
                        "steps may take %" PRId64 " s (the sum of their timeouts), and the "
                        "run stops when the validity ends; give %" PRId64 " s or more.",
                        validity_s, what, need_s, need_s);
    return 0;
}

/* The spec "TYPE:VALUE" of entities item i: a text, or {"entity", "validity_s"?,
 * "account"?} (that entity's own validity and destination). NULL when neither. */
static const char *entity_spec(const json_t *item)
{
    if (json_is_string(item))
        return json_string_value(item);
    return json_string_value(json_object_get(item, "entity"));
}

static int cmd_respond(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                       cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    const json_t *ents = json_object_get(c->payload, "entities");
    const char   *target = pstr(c, "status"), *dest;
    json_t       *pols;
    int64_t       validity;
    ev_t          ev;
    size_t        i, j;
    int           rc, same = 1;

    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (target == NULL || (strcmp(target, "handling") != 0 && strcmp(target, "handled") != 0))
        return cwpp_command_refuse(rp,
                                   "Choose the status the event takes when the handling succeeds: "
                                   "handling or handled (\"status\").");
    if (!json_is_array(ents) || json_array_size(ents) == 0 || json_array_size(ents) > 50)
        return cwpp_command_refuse(rp,
                                   "Select 1 to 50 entities (\"entities\": [\"TYPE:VALUE\", "
                                   "...]).");
    if ((validity = validity_of(r, c, rp)) < 0)
        return CWPP_OK;
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if (merged_refused(&ev, rp))
        return CWPP_OK;
    if (strcmp(ev.status, "handled") == 0)
        return cwpp_command_refuse(rp, "Event %s is handled already; it takes no new handling "
                                   "(reopen it first: status unhandled or handling).", ev.id);
    if (!dest_of(r, c, &ev, &dest, rp, &rc, errstr, errstr_size))
        return rc;
    for (i = 0; i < json_array_size(ents); i++) {
        const json_t *it = json_array_get(ents, i), *k;
        const char   *key;

        if (entity_spec(it) == NULL)
            return cwpp_command_refuse(rp,
                                       "Entity %zu is neither a text \"TYPE:VALUE\" nor "
                                       "{\"entity\": "
                                       "\"TYPE:VALUE\", \"validity_s\", \"account\"}.", i + 1);
        json_object_foreach((json_t *)it, key, k) {
            if (strcmp(key, "entity") != 0 && strcmp(key, "validity_s") != 0 &&
                strcmp(key, "account") != 0)
                return cwpp_command_refuse(rp, "Entity %zu has an unknown field \"%.40s\" (entity, "
                                           "validity_s, account).", i + 1, key);
            if (strcmp(key, "account") == 0 && !json_is_string(k))
                return cwpp_command_refuse(rp, "Entity %zu: \"account\" must be a text.", i + 1);
        }
    }
    for (i = 0; i < json_array_size(ents); i++)
        for (j = 0; j < i; j++)
            if (strcmp(entity_spec(json_array_get(ents, i)),
                       entity_spec(json_array_get(ents, j))) == 0)
                return cwpp_command_refuse(rp, "Entity %.200s is selected twice.",
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
        if (!entity_of(r, &ev, entity_spec(it), edest, &e, rp, &rc, errstr, errstr_size)) {
            ent_free(&e);
            json_decref(pols);
            return rc;
        }
        /* one policy per target asset, each with its own tasks, result and rollback; the
         * first target keeps the policy id an entity had when it had one target */
        for (j = 0; j < e.n; j++) {
            if ((steps = policy_steps(&e, &e.t[j], &action, rp)) == NULL) {
                ent_free(&e);
                json_decref(pols);
                return strcmp(rp->status, "error") == 0
                           ? CWPP_OK
                           : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            }
            if (j == 0 && !validity_fits(r, steps, action, ev_validity, rp)) {
                json_decref(steps);
                ent_free(&e);
                json_decref(pols);
                return CWPP_OK;
            }
            rc = rs_start_policy(r, c->id, (int)(i + 1000 * j), ev.id, ev.account, edest,
                                 "policy", action, e.type, e.value, e.t[j].asset, steps, target,
                                 ev_validity, c->actor, remark_of(c), pols, out, errstr,
                                 errstr_size);
            json_decref(steps);
            if (rc != CWPP_OK) {
                ent_free(&e);
                json_decref(pols);
                return rc;
            }
        }
        ent_free(&e);
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
                 "%s (failed if a task fails).", ev.id, json_array_size(pols),
                 json_array_size(pols) == 1 ? "y" : "ies", validity, dest, target);
    else
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: %zu handling policies created, each with "
                 "its own validity and account (cwppctl events tasks %s); the event is handling "
                 "until the tasks finish, then %s (failed if a task fails).", ev.id,
                 json_array_size(pols), ev.id, target);
    return CWPP_OK;
}

/* The steps of a playbook with their placeholders bound to e on its target t: a new
 * reference, or NULL out of memory. */
static json_t *bind_steps(const json_t *steps, const ent_t *e, const target_t *t)
{
    json_t *bound = json_array();
    size_t  i;

    for (i = 0; bound != NULL && i < json_array_size(steps); i++) {
        json_t *st = json_array_get(steps, i);
        json_t *pr = cwpp_playbook_params(json_object_get(st, "params"), e->value, t->asset,
                                          t->pid[0] ? t->pid : NULL,
                                          t->path[0] == '/' ? t->path : NULL,
                                          t->sha256[0] ? t->sha256 : NULL);
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
    return bound;
}

static int cmd_playbook(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                        cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t *r = svc;
    const char  *name = pstr(c, "playbook"), *dest;
    const char  *p[2];
    PGresult    *res = NULL;
    json_t      *steps = NULL, *pols = NULL, *bound;
    json_error_t jerr;
    int64_t      validity;
    ev_t         ev;
    ent_t        e;
    char         what[100];
    size_t       j;
    int          rc;

    memset(&e, 0, sizeof(e));
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if ((validity = validity_of(r, c, rp)) < 0)
        return CWPP_OK;
    if ((rc = load_event(r, c, rp, &ev, errstr, errstr_size)) != 0)
        return rc == 1 ? CWPP_OK : rc;
    if (!cwpp_commander_permit(r->cmd, c, ev.account, "event", rp, &rc, errstr, errstr_size))
        return rc;
    if (merged_refused(&ev, rp))
        return CWPP_OK;
    if (strcmp(ev.status, "handled") == 0)
        return cwpp_command_refuse(rp, "Event %s is handled already; it takes no new playbook "
                                   "(reopen it first: status unhandled or handling).", ev.id);
    if (!dest_of(r, c, &ev, &dest, rp, &rc, errstr, errstr_size))
        return rc;
    if (!entity_of(r, &ev, pstr(c, "entity"), dest, &e, rp, &rc, errstr, errstr_size))
        goto out;
    p[0] = name != NULL ? name : "";
    p[1] = e.type;
    if ((rc = cwpp_pg_query(r->pg, SQL_PLAYBOOK, 2, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    if (PQntuples(res) == 0) {
        if (name != NULL && name[0] != '\0')
            cwpp_command_refuse(rp, "There is no playbook \"%.64s\" (cwppctl playbooks list).",
                                name);
        else
            cwpp_command_refuse(rp, "No built-in playbook for entity type %s (cwppctl "
                                "playbooks list).", e.type);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), e.type) != 0) {
        cwpp_command_refuse(rp, "Playbook %.64s is for %s entities, not %s.", PQgetvalue(res, 0, 0),
                            PQgetvalue(res, 0, 1), e.type);
        goto out;
    }
    steps = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    if (steps == NULL || (pols = json_array()) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(what, sizeof(what), "playbook %.64s", PQgetvalue(res, 0, 0));
    if (!validity_fits(r, steps, what, validity, rp))
        goto out;
    /* one run per target asset, each with its own tasks, results and rollbacks */
    for (j = 0; rc == CWPP_OK && j < e.n; j++) {
        if ((bound = bind_steps(steps, &e, &e.t[j])) == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            break;
        }
        rc = rs_start_policy(r, c->id, (int)j, ev.id, ev.account, dest, "playbook",
                             PQgetvalue(res, 0, 0), e.type, e.value, e.t[j].asset, bound,
                             "handled", validity, c->actor, remark_of(c), pols, out, errstr,
                             errstr_size);
        json_decref(bound);
    }
    if (rc == CWPP_OK && strcmp(ev.status, "handling") != 0)
        rc = rs_set_status(r, ev.id, ev.status, "handling", c->actor, c->id, remark_of(c),
                           "playbook", NULL, errstr, errstr_size);
    if (rc != CWPP_OK)
        goto out;
    rp->result = json_pack("{s:s, s:s, s:O}", "event_id", ev.id, "playbook",
                           PQgetvalue(res, 0, 0), "policies", pols);
    if (e.n == 1)
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: playbook %s started on %s:%.200s "
                 "(account %s, asset %.200s, valid for %" PRId64 " s); the event becomes "
                 "handled when it completes.", ev.id, PQgetvalue(res, 0, 0), e.type, e.value,
                 dest, e.t[0].asset, validity);
    else
        snprintf(rp->msg, sizeof(rp->msg), "Event %s: playbook %s started on %s:%.200s on "
                 "%zu assets (account %s, valid for %" PRId64 " s); the event becomes handled "
                 "when every run completes.", ev.id, PQgetvalue(res, 0, 0), e.type, e.value,
                 e.n, dest, validity);
out:
    PQclear(res);
    json_decref(steps);
    json_decref(pols);
    ent_free(&e);
    return rc;
}

/* -------------------------------------------------------------------- entry */

/* Every responder command: who may issue it, and its handler. */
static const cwpp_command_def_t COMMANDS[] = {
    {"event.status", cmd_status, CWPP_COMMAND_ACCOUNT},
    {"event.owner", cmd_owner, CWPP_COMMAND_ACCOUNT},
    {"event.level", cmd_level, CWPP_COMMAND_ACCOUNT},
    {"event.remark", cmd_remark, CWPP_COMMAND_ACCOUNT},
    {"event.respond", cmd_respond, CWPP_COMMAND_ACCOUNT},
    {"event.playbook", cmd_playbook, CWPP_COMMAND_ACCOUNT},
    {"users.add", rs_cmd_users_add, CWPP_COMMAND_ADMIN},
    {"users.grant", rs_cmd_users_grant, CWPP_COMMAND_ADMIN},
    {"users.revoke", rs_cmd_users_grant, CWPP_COMMAND_ADMIN},
    {"users.disable", rs_cmd_users_disable, CWPP_COMMAND_ADMIN},
    {"users.enable", rs_cmd_users_disable, CWPP_COMMAND_ADMIN},
    {"users.role", rs_cmd_users_role, CWPP_COMMAND_ADMIN},
    {"accounts.add_member", rs_cmd_accounts_add_member, CWPP_COMMAND_ADMIN},
    {"accounts.perimeter", rs_cmd_accounts_perimeter, CWPP_COMMAND_ADMIN},
    {"playbooks.add", rs_cmd_playbooks_add, CWPP_COMMAND_ADMIN},
    {"playbooks.delete", rs_cmd_playbooks_delete, CWPP_COMMAND_ADMIN},
    {"policies.cancel", rs_cmd_policies_cancel, CWPP_COMMAND_ACCOUNT},
    {"notifications.set", rs_cmd_notifications_set, CWPP_COMMAND_ACCOUNT},
};

/* A command applied before: its running actions again, and the event's snapshot (it may
 * not have been sent). */
static int redeliver(void *svc, const cwpp_command_t *c, const char *status,
                     const json_t *result, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    rs_t       *r = svc;
    const char *eid = json_string_value(json_object_get(result, "event_id"));
    int         rc;

    (void)status;
    rc = rs_resend_for_response(r, c->id, out, errstr, errstr_size);
    if (rc == CWPP_OK && strcmp(c->type, "policies.cancel") == 0 &&
        json_string_value(json_object_get(result, "policy_id")) != NULL)
        rc = rs_resend_rollbacks(r, json_string_value(json_object_get(result, "policy_id")),
                                 out, errstr, errstr_size);
    if (rc == CWPP_OK && eid != NULL)
        rc = rs_touch(r, eid, errstr, errstr_size);
    return rc;
}

/* A rolled-back command leaves no event to snapshot. */
static void mark(void *svc)
{
    rs_t *r = svc;

    r->cmd_touched = r->ntouched;
}

static void undo(void *svc)
{
    rs_t *r = svc;

    while (r->ntouched > r->cmd_touched)
        free(r->touched[--r->ntouched]);
}

static int dead_letter(void *svc, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    return rs_dead_letter(svc, m, code, reason, out, errstr, errstr_size);
}

cwpp_commander_t *rs_commander_new(rs_t *r, char *errstr, size_t errstr_size)
{
    cwpp_command_conf_t cc;

    memset(&cc, 0, sizeof(cc));
    cc.service = "responder";
    cc.table = COMMANDS;
    cc.ntable = sizeof(COMMANDS) / sizeof(COMMANDS[0]);
    cc.max_id = 200;
    cc.max_age_ms = r->conf->command_max_age_ms;
    cc.max_age_key = "responder.command.max.age.ms";
    cc.metric = "cwpp_responder_commands_total";
    cc.svc = r;
    cc.dead_letter = dead_letter;
    cc.redeliver = redeliver;
    cc.mark = mark;
    cc.undo = undo;
    return cwpp_commander_new(&cc, r->pg, r->metrics, errstr, errstr_size);
}

int rs_apply_command(rs_t *r, const rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    return cwpp_commander_apply(r->cmd, m, out, errstr, errstr_size);
}
