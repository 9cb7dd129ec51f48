/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c: an account's notification setting (docs/api/parts/notify.yaml; the reference:
 * "enable event notifications under System Settings > Notification Settings").
 *
 *   GET /api/v1/accounts/{id}/notifications   {account_id, enabled, min_level, default,
 *                                             updated_by, updated_at}
 *   PUT /api/v1/accounts/{id}/notifications   {enabled, min_level?, remark?}: the
 *        responder's notifications.set (docs/commands.md), issued as the authenticated
 *        user and answered from its CommandResult; without min_level the level set
 *        before stays (low when none was)
 *
 * An account without a stored setting has the default: on, from level low (default:
 * true). The correlator reads the setting before it sends a notification. A caller sees
 * and sets only the accounts they hold (admins every account): another account is a 404
 * like one that does not exist, and nothing is issued.
 */
#include "api.h"

#include <stdio.h>
#include <string.h>

#include "cwpp_alert_limits.h"

/* 1 when the caller may see account id (a sane id they hold); else 0 after the 404. */
static int account_seen(const api_req_t *rq, api_resp_t *rs, const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    if (n == 0 || n > CWPP_CMD_MAX_ACCOUNT || !cwpp_utf8_valid(id, n) || !api_holds(rq, id))
        return api_not_found(rs, "account", n > 0 && n <= CWPP_CMD_MAX_ACCOUNT &&
                                                    cwpp_utf8_valid(id, n) ? id : "(not an id)"),
               0;
    return 1;
}

static int settings_get(api_req_t *rq, api_resp_t *rs)
{
    static const char *const none[] = {NULL};
    const char *id = rq->ids[0], *p[1] = {id};
    PGresult   *r = NULL;
    json_t     *doc;

    if (!api_args_known(rq, rs, none) || !account_seen(rq, rs, id))
        return 0;
    if (api_sql(rq, rs, "SELECT $1::text AS account_id, COALESCE(s.enabled, true) AS enabled, "
                "COALESCE(s.min_level, 'low') AS min_level, s.account_id IS NULL AS default, "
                "s.updated_by, to_char(s.updated_at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS updated_at "
                "FROM (SELECT 1) x LEFT JOIN notification_settings s ON s.account_id = $1",
                1, p, &r) != 0)
        return 0;
    doc = api_row(r, 0);
    PQclear(r);
    if (doc == NULL)
        return -1;
    return api_json(rs, 200, doc);
}

static int settings_put(api_req_t *rq, api_resp_t *rs)
{
    static const char *const known[] = {"enabled", "min_level", "remark", NULL};
    static const char *const none[] = {NULL};
    static const char *const levels[] = {"critical", "high", "medium", "low", NULL};
    const char   *id = rq->ids[0];
    const json_t *en, *lvl, *rm;
    json_t       *payload, *answer = NULL;
    size_t        i;

    if (!api_args_known(rq, rs, none) || !api_body_known(rq, rs, known))
        return 0;
    en = json_object_get(rq->body, "enabled");
    lvl = json_object_get(rq->body, "min_level");
    rm = json_object_get(rq->body, "remark");
    if (!json_is_boolean(en))
        return api_problem(rs, 400, "bad_request", "\"enabled\" must be true or false.");
    for (i = 0; lvl != NULL && levels[i] != NULL; i++)
        if (json_is_string(lvl) && strcmp(json_string_value(lvl), levels[i]) == 0)
            break;
    if (lvl != NULL && levels[i] == NULL)
        return api_problem(rs, 400, "bad_request", "\"min_level\" must be critical, high, "
                           "medium or low.");
    if (rm != NULL && (!json_is_string(rm) || json_string_length(rm) > CWPP_CMD_MAX_REMARK))
        return api_problem(rs, 400, "bad_request", "\"remark\" must be a text of at most %d "
                           "bytes.", CWPP_CMD_MAX_REMARK);
    if (!account_seen(rq, rs, id))
        return 0;
    if (lvl == NULL) { /* keep the level set before (switching off and on keeps it) */
        const char *p[1] = {id};
        PGresult   *r = NULL;

        if (api_sql(rq, rs, "SELECT COALESCE((SELECT min_level FROM notification_settings "
                    "WHERE account_id = $1), 'low')", 1, p, &r) != 0)
            return 0;
        payload = json_pack("{s:s, s:O, s:s}", "account_id", id, "enabled", en, "min_level",
                            PQgetvalue(r, 0, 0));
        PQclear(r);
    } else {
        payload = json_pack("{s:s, s:O, s:O}", "account_id", id, "enabled", en, "min_level",
                            lvl);
    }
    if (payload == NULL)
        return -1;
    if (rm != NULL)
        json_object_set(payload, "remark", (json_t *)rm);
    if (!api_command(rq, rs, "responder", "notifications.set", payload, &answer))
        return 0;
    return api_answer(rs, answer);
}

const api_route_t api_notify_routes[] = {
    {"GET", "/api/v1/accounts/{id}/notifications", settings_get, 0},
    {"PUT", "/api/v1/accounts/{id}/notifications", settings_put, API_CHANGE},
    {NULL, NULL, NULL, 0},
};
