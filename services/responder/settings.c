/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.c: the responder's command on an account's settings (docs/commands.md):
 *
 *   notifications.set {account_id, enabled: bool, min_level: critical|high|medium|low}
 *
 * Switches the account's event notifications on or off and sets the lowest event level
 * that notifies (the reference: "enable event notifications under System Settings >
 * Notification Settings"). The row lives in notification_settings (migration 022; no
 * row: on, from low); the correlator reads it before it sends a notification
 * (docs/correlator.md "Notifications"). An admin, or a user holding the account, may set
 * it (viewers never act); every change is one activity-log entry (object "account",
 * action notifications.set) with the setting before and after and the command's remark.
 * Setting what is already set changes nothing, says so, and logs nothing.
 */
#include "rs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert_limits.h"

static const char *const LEVELS[] = {"critical", "high", "medium", "low", NULL};

/* The setting before (the default when the account has no row), locked for the change. */
static const char SQL_BEFORE[] =
    "SELECT COALESCE((SELECT json_build_object('enabled', enabled, 'min_level', min_level) "
    "FROM notification_settings WHERE account_id = $1 FOR UPDATE), "
    "json_build_object('enabled', true, 'min_level', 'low'))::text";
static const char SQL_SET[] =
    "INSERT INTO notification_settings (account_id, enabled, min_level, updated_by) "
    "VALUES ($1, $2::boolean, $3, $4) ON CONFLICT (account_id) DO UPDATE SET enabled = "
    "EXCLUDED.enabled, min_level = EXCLUDED.min_level, updated_by = EXCLUDED.updated_by, "
    "updated_at = now()";

static int is_level(const char *s)
{
    size_t i;

    for (i = 0; s != NULL && LEVELS[i] != NULL; i++)
        if (strcmp(s, LEVELS[i]) == 0)
            return 1;
    return 0;
}

int rs_cmd_notifications_set(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                             cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    rs_t         *r = svc;
    const json_t *en = json_object_get(c->payload, "enabled");
    const char   *acc = json_string_value(json_object_get(c->payload, "account_id"));
    const char   *lvl = json_string_value(json_object_get(c->payload, "min_level"));
    const char   *remark = json_string_value(json_object_get(c->payload, "remark"));
    const char   *p[4];
    json_t       *before = NULL, *after = NULL;
    json_error_t  jerr;
    PGresult     *res = NULL;
    int           rc = CWPP_OK;

    (void)out;
    if (!rs_texts_fit(c, rp))
        return CWPP_OK;
    if (acc == NULL || acc[0] == '\0' || strlen(acc) > CWPP_CMD_MAX_ACCOUNT)
        return cwpp_command_refuse(rp, "Name the account (\"account_id\", 1 to %d bytes).",
                                   CWPP_CMD_MAX_ACCOUNT);
    if (!json_is_boolean(en))
        return cwpp_command_refuse(rp, "Say whether notifications are on (\"enabled\": true "
                                   "or false).");
    if (json_object_get(c->payload, "min_level") != NULL && lvl == NULL)
        return cwpp_command_refuse(rp, "\"min_level\" is a level (critical, high, medium or "
                                   "low).");
    if (lvl == NULL)
        lvl = "low";
    if (!is_level(lvl))
        return cwpp_command_refuse(rp, "\"%.40s\" is not a level (critical, high, medium or "
                                   "low: \"min_level\").", lvl);
    if (!cwpp_commander_permit(r->cmd, c, acc, "account's notification setting", rp, &rc,
                               errstr, errstr_size))
        return rc;
    p[0] = acc;
    if ((rc = cwpp_pg_query(r->pg, SQL_BEFORE, 1, p, PGRES_TUPLES_OK, &res, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    before = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    PQclear(res);
    after = json_pack("{s:b, s:s}", "enabled", json_is_true(en), "min_level", lvl);
    if (before == NULL || after == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    rp->result = json_pack("{s:s, s:b, s:s, s:b}", "account_id", acc, "enabled",
                           json_is_true(en), "min_level", lvl, "changed",
                           !json_equal(before, after));
    if (rp->result == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    if (json_equal(before, after)) {
        snprintf(rp->msg, sizeof(rp->msg), "Notifications of account %.200s are already %s%s; "
                 "nothing changed.", acc, json_is_true(en) ? "on from level " : "off",
                 json_is_true(en) ? lvl : "");
        goto out;
    }
    p[1] = json_is_true(en) ? "true" : "false";
    p[2] = lvl;
    p[3] = c->actor;
    if ((rc = cwpp_pg_query(r->pg, SQL_SET, 4, p, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    rc = cwpp_command_log(r->pg, c->actor, c->id, "account", acc, NULL, c->type, before, after,
                          remark != NULL ? remark : "", errstr, errstr_size);
    before = after = NULL; /* taken by the log */
    if (rc == CWPP_OK)
        snprintf(rp->msg, sizeof(rp->msg), "Notifications of account %.200s are now %s%s.", acc,
                 json_is_true(en) ? "on from level " : "off", json_is_true(en) ? lvl : "");
out:
    json_decref(before);
    json_decref(after);
    return rc;
}
