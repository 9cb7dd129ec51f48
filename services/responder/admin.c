/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c: the responder's admin commands (docs/commands.md), handlers of the table in
 * commands.c, which libs/command runs only for an enabled admin:
 *
 *   users.add       {user, role, display_name}      users.grant / users.revoke {user, account}
 *   users.disable / users.enable {user}              accounts.add_member {account, manager, name}
 *   users.role      {user, role}                    accounts.perimeter {account, asset, remove?}
 *   playbooks.add   {playbook: {...}}                playbooks.delete {name}
 *
 * Each is one statement whose effect (a row changed, or none: refused with a sentence)
 * is appended to activity_log.
 */
#include "rs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_command.h"
#include "cwpp_respond.h"
#include "cwpp_util.h"

static const char *pstr(const cwpp_command_t *c, const char *k)
{
    return json_string_value(json_object_get(c->payload, k));
}

/* 1 when s is a user name: 1 to max of A-Z a-z 0-9 . _ @ -, starting with a letter or
 * digit. */
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

/* Runs sql (n params): when it changed a row, the result is after (taken) and the change
 * is logged; else the command is refused with refusal. */
static int change(rs_t *r, const cwpp_command_t *c, cwpp_command_reply_t *rp, const char *sql,
                  int n, const char *const *p, const char *otype, const char *oid,
                  json_t *after, const char *refusal, char *errstr, size_t errstr_size)
{
    PGresult *res = NULL;
    int       rc, changed;

    rc = cwpp_pg_query(r->pg, sql, n, p, PGRES_COMMAND_OK, &res, errstr, errstr_size);
    if (rc != CWPP_OK) {
        json_decref(after);
        return rc;
    }
    changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (!changed) {
        json_decref(after);
        return cwpp_command_refuse(rp, "%s", refusal);
    }
    rp->result = json_incref(after);
    return cwpp_command_log(r->pg, c->actor, c->id, otype, oid, NULL, c->type, NULL, after,
                            pstr(c, "remark"), errstr, errstr_size);
}

/* The payload's "user", a user name; NULL when refused. */
static const char *user_of(const cwpp_command_t *c, cwpp_command_reply_t *rp)
{
    const char *user = pstr(c, "user");

    if (name_ok(user, CWPP_CMD_MAX_USER))
        return user;
    cwpp_command_refuse(rp, "\"%.64s\" is not a user name (1 to %d of A-Z a-z 0-9 . _ @ -, "
                        "starting with a letter or digit).", user != NULL ? user : "",
                        CWPP_CMD_MAX_USER);
    return NULL;
}

int rs_cmd_users_add(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *user = user_of(c, rp), *role = pstr(c, "role"), *dn = pstr(c, "display_name");
    const char *p[4] = {user, dn != NULL ? dn : "", role != NULL ? role : "analyst", c->actor};
    char        refusal[400];
    int         rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (user == NULL)
        return CWPP_OK;
    if (strcmp(p[2], "admin") != 0 && strcmp(p[2], "analyst") != 0 &&
        strcmp(p[2], "viewer") != 0)
        return cwpp_command_refuse(rp, "\"%.40s\" is not a role (admin, analyst or viewer).",
                                   p[2]);
    snprintf(refusal, sizeof(refusal), "User %s exists already.", user);
    rc = change(r, c, rp, "INSERT INTO users (user_name, display_name, role, created_by) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, "user", user,
                json_pack("{s:s, s:s}", "user", user, "role", p[2]), refusal, errstr,
                errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "User %s added as %s.", user, p[2]);
    return rc;
}

/* users.grant and users.revoke */
int rs_cmd_users_grant(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                       cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *user = user_of(c, rp), *acc = pstr(c, "account");
    const char *p[3] = {user, acc, c->actor};
    int         grant = strcmp(c->type, "users.grant") == 0, rc;
    char        refusal[400];

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (user == NULL)
        return CWPP_OK;
    if (acc == NULL || acc[0] == '\0' || strlen(acc) > CWPP_CMD_MAX_ACCOUNT)
        return cwpp_command_refuse(rp, "Name the account (\"account\").");
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
                3, p, "user", user, json_pack("{s:s, s:s}", "user", user, "account", acc),
                refusal, errstr, errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "User %s %s account %.200s.", user,
                 grant ? "may now act on" : "may no longer act on", acc);
    return rc;
}

/* users.disable and users.enable */
int rs_cmd_users_disable(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                         cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *user = user_of(c, rp), *p[1] = {user};
    int         dis = strcmp(c->type, "users.disable") == 0, rc;
    char        refusal[400];

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (user == NULL)
        return CWPP_OK;
    if (dis && strcmp(user, c->actor) == 0)
        return cwpp_command_refuse(rp, "You cannot disable yourself.");
    snprintf(refusal, sizeof(refusal), "User %s is unknown or %s already.", user,
             dis ? "disabled" : "enabled");
    rc = change(r, c, rp,
                dis ? "UPDATE users SET disabled_at = now() WHERE user_name = $1 AND "
                      "disabled_at IS NULL"
                    : "UPDATE users SET disabled_at = NULL WHERE user_name = $1 AND "
                      "disabled_at IS NOT NULL",
                1, p, "user", user, json_pack("{s:s, s:b}", "user", user, "disabled", dis),
                refusal, errstr, errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "User %s %s.", user, dis ? "disabled" : "enabled");
    return rc;
}

/* users.role {user, role} */
int rs_cmd_users_role(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *user = user_of(c, rp), *role = pstr(c, "role");
    const char *p[2] = {user, role};
    char        refusal[400];
    int         rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (user == NULL)
        return CWPP_OK;
    if (role == NULL || (strcmp(role, "admin") != 0 && strcmp(role, "analyst") != 0 &&
                         strcmp(role, "viewer") != 0))
        return cwpp_command_refuse(rp, "\"%.40s\" is not a role (admin, analyst or viewer).",
                                   role != NULL ? role : "");
    /* an admin who demotes themselves may leave nobody to manage users */
    if (strcmp(user, c->actor) == 0)
        return cwpp_command_refuse(rp, "You cannot change your own role.");
    snprintf(refusal, sizeof(refusal), "User %s is unknown or %s already.", user, role);
    rc = change(r, c, rp, "UPDATE users SET role = $2 WHERE user_name = $1 AND role <> $2", 2,
                p, "user", user, json_pack("{s:s, s:s}", "user", user, "role", role), refusal,
                errstr, errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "User %s is now %s %s.", user,
                 strcmp(role, "viewer") == 0 ? "a" : "an", role);
    return rc;
}

int rs_cmd_accounts_add_member(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                               cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *acc = pstr(c, "account"), *mgr = pstr(c, "manager"), *nm = pstr(c, "name");
    const char *p[4] = {acc, mgr, nm != NULL ? nm : "", c->actor};
    char        refusal[400];
    int         rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (acc == NULL || mgr == NULL || acc[0] == '\0' || mgr[0] == '\0' || strlen(acc) > CWPP_CMD_MAX_ACCOUNT ||
        strlen(mgr) > CWPP_CMD_MAX_ACCOUNT || strcmp(acc, mgr) == 0)
        return cwpp_command_refuse(rp, "Name the member account and a different manager "
                                   "account (\"account\", \"manager\").");
    snprintf(refusal, sizeof(refusal), "Account %.200s is a member account already.", acc);
    rc = change(r, c, rp,
                "INSERT INTO managed_accounts (account_id, manager_account_id, name, created_by) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, "account", acc,
                json_pack("{s:s, s:s}", "account", acc, "manager", mgr), refusal, errstr,
                errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Account %.200s is now a member account managed by "
                 "%.200s.", acc, mgr);
    return rc;
}

/* accounts.perimeter: declares (or with "remove": true, withdraws) the agent of an asset
 * as the perimeter of an account; blocking an IP of that account then acts there
 * (commands.c entity_of). */
int rs_cmd_accounts_perimeter(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                              cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *acc = pstr(c, "account"), *asset = pstr(c, "asset");
    json_t     *rm = json_object_get(c->payload, "remove");
    const char *p[3] = {acc, asset, c->actor};
    char        refusal[600];
    int         rc, remove = json_is_true(rm);

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (acc == NULL || asset == NULL || acc[0] == '\0' || asset[0] == '\0' ||
        strlen(acc) > CWPP_CMD_MAX_ACCOUNT || strlen(asset) > CWPP_ALERT_MAX_ID)
        return cwpp_command_refuse(rp, "Name the account and the asset whose agent is its "
                                   "perimeter (\"account\", \"asset\").");
    if (rm != NULL && !json_is_boolean(rm))
        return cwpp_command_refuse(rp, "\"remove\" is true or false.");
    if (remove)
        snprintf(refusal, sizeof(refusal), "Asset %.200s is not a perimeter agent of account "
                 "%.200s.", asset, acc);
    else
        snprintf(refusal, sizeof(refusal), "Asset %.200s is a perimeter agent of account "
                 "%.200s already.", asset, acc);
    rc = change(r, c, rp,
                remove ? "DELETE FROM perimeter_agents WHERE account_id = $1 AND asset_id = $2 "
                         "AND $3::text IS NOT NULL"
                       : "INSERT INTO perimeter_agents (account_id, asset_id, declared_by) "
                         "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                3, p, "account", acc,
                json_pack("{s:s, s:s, s:b}", "account", acc, "perimeter_asset", asset,
                          "perimeter", !remove),
                refusal, errstr, errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), remove
                     ? "Asset %.200s is no longer a perimeter agent of account %.200s."
                     : "Asset %.200s is a perimeter agent of account %.200s: blocking an IP "
                       "of that account acts there.", asset, acc);
    return rc;
}

int rs_cmd_playbooks_add(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                         cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    json_t     *pb = json_object_get(c->payload, "playbook");
    size_t      nsteps = json_array_size(json_object_get(pb, "steps"));
    char        refusal[400], why[300], *steps;
    const char *name, *p[6];
    int         rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (cwpp_playbook_check(pb, why, sizeof(why)) != 0)
        return cwpp_command_refuse(rp, "The playbook is not valid: %s.", why);
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
                name, json_pack("{s:s, s:s}", "name", name, "entity_type", p[1]), refusal,
                errstr, errstr_size);
    free(steps);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Playbook %s saved (%zu step%s)%s.", name, nsteps,
                 nsteps == 1 ? "" : "s",
                 json_is_true(json_object_get(pb, "default"))
                     ? "; it is the default of its entity type unless another one is "
                       "already (cwppctl playbooks list shows which)"
                     : "");
    return rc;
}

int rs_cmd_playbooks_delete(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                            cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t       *r = svc;
    const char *name = pstr(c, "name"), *p[1] = {name};
    char        refusal[400];
    int         rc;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (name == NULL || name[0] == '\0')
        return cwpp_command_refuse(rp, "Name the playbook (\"name\").");
    if (strlen(name) > CWPP_CMD_MAX_PLAYBOOK_NAME)
        return cwpp_command_refuse(rp, "Refused: \"name\" is %zu bytes, longer than its limit "
                                   "of %d bytes (a playbook name); nothing was changed.",
                                   strlen(name), CWPP_CMD_MAX_PLAYBOOK_NAME);
    snprintf(refusal, sizeof(refusal), "There is no custom playbook \"%.64s\" (built-in "
             "and file playbooks cannot be deleted).", name);
    rc = change(r, c, rp, "DELETE FROM playbooks WHERE name = $1 AND origin = 'custom'", 1, p,
                "playbook", name, json_pack("{s:s}", "name", name), refusal, errstr,
                errstr_size);
    if (rc == CWPP_OK && strcmp(rp->status, "ok") == 0)
        snprintf(rp->msg, sizeof(rp->msg), "Playbook %.64s deleted.", name);
    return rc;
}
