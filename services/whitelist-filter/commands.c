/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands.c: the whitelist commands (docs/commands.md), applied inside the batch's
 * transaction, each in its own savepoint so a refused or failing command never takes the
 * batch with it:
 *
 *   whitelist.add_alert      {alert_id, remark, rules?: [rule, ...]} -> manually
 *                            whitelisted, and the rules (made from that alert, of its
 *                            account) created with it: all or nothing
 *   whitelist.remove_alerts  {alert_ids: [...], remark} -> unhandled (not evaluated
 *                            again: only their future occurrences meet the rules)
 *   whitelist.rule_add       {account_id, alert_name, field, op, value, scope, asset_id,
 *                             from_alert_id, expires_at, remark, force} -> the rule, and
 *                            the stored unhandled or handling alerts it matches (at most
 *                            MAX_SWEEP per command) automatically whitelisted
 *   whitelist.rule_delete    {rule_id, remark}
 *
 * libs/command runs the protocol (checks, apply once, savepoint, answer); this file holds
 * the handlers and their table. The actor must be a known, enabled user permitted on the
 * account of what the command changes: the alert's account, or the rule's (every rule
 * belongs to one account and applies only to its alerts).
 * Every change of an alert's status is published without being an occurrence of it
 * (wl_emit_change): a whitelisted alert on suppressed and, with transition `whitelisted`,
 * on accepted, so the correlator takes it out of its event; an alert taken out of the
 * whitelist on accepted, unhandled, with transition `restored`, so the correlator joins it
 * without counting an occurrence. Every change is appended to activity_log (one entry per
 * alert, under the command's id). A redelivered command (same command_id) gets the stored
 * answer again and publishes again the alerts its log entries name whose stored status is
 * still the one it set, so a crash between commit and produce loses nothing; an alert
 * changed since by another command is left to that command's records.
 */
#include "filter_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_command.h"
#include "cwpp_log.h"
#include "cwpp_whitelist.h"

typedef cwpp_command_t       cmd_t;
typedef cwpp_command_reply_t reply_t;

#define MAX_REMOVE 1000
#define MAX_ALERT_RULES 20 /* rules created with one add_alert */
#define MAX_SWEEP 1000     /* stored alerts one command's new rules whitelist */

static const char SQL_ALERT_ROWS[] =
    "SELECT " CWPP_ALERT_ROW_SQL " FROM alerts a WHERE a.alert_id = ANY($1::text[]) "
    "ORDER BY a.alert_id FOR UPDATE";
/* The alerts a command changed (its activity_log entries) whose stored status is still
 * the one it set (redelivery). */
static const char SQL_CHANGED_ROWS[] =
    "SELECT " CWPP_ALERT_ROW_SQL " FROM activity_log l JOIN alerts a ON a.alert_id = "
    "l.object_id WHERE l.command_id = $1 AND l.object_type = 'alert' "
    "AND a.status = l.after->>'status' ORDER BY a.alert_id COLLATE \"C\"";
/* A new rule's candidates among the stored alerts: of its account and name, unhandled or
 * handling (in an open event, or in none), seen within the preview window, the most
 * recently seen first; $4 an alert left out (the one add_alert whitelists by hand). */
static const char SQL_SWEEP_CURSOR[] =
    "DECLARE cwpp_sweep NO SCROLL CURSOR FOR SELECT " CWPP_ALERT_ROW_SQL " FROM alerts a "
    "WHERE a.account_id = $1 AND a.name = $2 AND a.status IN ('unhandled', 'handling') "
    "AND a.defense <> 'precision_defense' "
    "AND a.last_seen >= now() - make_interval(days => $3::int) "
    "AND ($4::text IS NULL OR a.alert_id <> $4) ORDER BY a.last_seen DESC, a.alert_id";
/* Guarded: an alert whose status changed since the scan (a concurrent command, the
 * responder) is left alone. Returns the new rows and the status each had. */
static const char SQL_SWEEP_SET[] =
    "UPDATE alerts a SET status = 'automatically_whitelisted', updated_at = now() "
    "FROM (SELECT alert_id, status FROM alerts WHERE alert_id IN "
    "(SELECT json_array_elements_text($1::json)) AND account_id = $2 "
    "AND status IN ('unhandled', 'handling') ORDER BY alert_id COLLATE \"C\" FOR UPDATE) o "
    "WHERE a.alert_id = o.alert_id RETURNING " CWPP_ALERT_ROW_SQL ", o.status";
static const char SQL_ALERT_ROWS_IDS[] =
    "SELECT " CWPP_ALERT_ROW_SQL ", a.alert_id FROM alerts a WHERE a.alert_id = ANY($1::text[]) "
    "ORDER BY a.alert_id COLLATE \"C\" FOR UPDATE";
static const char SQL_ALERT_STATUS[] =
    "UPDATE alerts SET status = $2, updated_at = now() WHERE alert_id = $1";
static const char SQL_BUMP[] = "UPDATE whitelist_state SET version = version + 1 WHERE id = 1";
static const char SQL_RULE_ADD[] =
    "INSERT INTO whitelist_rules (alert_name, field, op, value, scope, asset_id, from_alert_id, "
    "expires_at, remark, created_by, command_id, account_id) VALUES ($1, $2, $3, $4, $5, $6, "
    "$7, CASE WHEN $8::bigint > 0 THEN to_timestamp($8::bigint / 1000.0) END, $9, $10, $11, "
    "$12) RETURNING rule_id";
static const char SQL_RULE_GET[] =
    "SELECT rule_id, alert_name, field, op, value, scope, asset_id, "
    "COALESCE((extract(epoch FROM expires_at) * 1000)::bigint, 0), deleted_at, deleted_by, "
    "account_id FROM whitelist_rules WHERE rule_id = $1 FOR UPDATE";
static const char SQL_RULE_DEL[] =
    "UPDATE whitelist_rules SET deleted_at = now(), deleted_by = $2 WHERE rule_id = $1";

/* ------------------------------------------------------------------ helpers */

/* The limit of every text a whitelist command carries (cwpp_alert_limits.h; the table of
 * docs/commands.md "Limits"). A regex value has a lower one, checked with the rule.
 * alert_id and alert_ids are exactly "al-" + 32 hex digits, checked as that by their
 * handlers ("... is not an alert id"), so they need no length entry here. */
static const cwpp_alert_text_limit_t LIMITS[] = {
    {"alert_name", CWPP_ALERT_MAX_NAME},       {"field", CWPP_CMD_MAX_RULE_FIELD},
    {"value", CWPP_CMD_MAX_RULE_VALUE},        {"asset_id", CWPP_ALERT_MAX_ID},
    {"from_alert_id", CWPP_CMD_MAX_ALERT_ID},  {"alert_id", SIZE_MAX},
    {"alert_ids", SIZE_MAX},                   {"expires_at", CWPP_ALERT_MAX_TIME},
    {"remark", CWPP_CMD_MAX_REMARK},           {"account_id", CWPP_ALERT_MAX_ACCOUNT},
};

/* Every text of the payload within its limit, checked before anything is read or
 * written; else the command is refused naming the field and the limit. 1 fits. */
static int texts_fit(const cmd_t *c, reply_t *rp)
{
    char why[300];

    if (cwpp_alert_texts_fit(c->payload, LIMITS, sizeof(LIMITS) / sizeof(LIMITS[0]),
                             CWPP_CMD_MAX_DEFAULT, why, sizeof(why)))
        return 1;
    cwpp_command_refuse(rp, "Refused: %s; nothing was changed.", why);
    return 0;
}

/* Appends the activity_log entry of a change; takes before and after. */
static int log_change(wl_t *w, const cmd_t *c, const char *otype, const char *oid,
                      json_t *before, json_t *after, const char *remark, char *errstr,
                      size_t errstr_size)
{
    return cwpp_command_log(w->pg, c->actor, c->id, otype, oid, NULL, c->type, before, after,
                            remark, errstr, errstr_size);
}

static const char *remark_of(const cmd_t *c)
{
    const char *r = json_string_value(json_object_get(c->payload, "remark"));

    return r != NULL && r[0] != '\0' ? r : NULL;
}

/* "{a,b}" of alert ids (ids are checked to be plain "al-" + hex before). */
static char *id_array(json_t *ids)
{
    cwpp_buf_t b = {0};
    size_t     i;

    cwpp_buf_append(&b, "{", 1);
    for (i = 0; i < json_array_size(ids); i++) {
        const char *s = json_string_value(json_array_get(ids, i));

        if (i > 0)
            cwpp_buf_append(&b, ",", 1);
        cwpp_buf_append(&b, s, strlen(s));
    }
    cwpp_buf_append(&b, "}", 2);
    if (b.data == NULL || b.data[b.len - 2] != '}') {
        cwpp_buf_free(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* Publishes again the alerts command c changed whose stored status is still the one it
 * set (a redelivered command), each as its change was published (wl_emit_change). */
static int republish(wl_t *w, const cmd_t *c, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    const char *p[1] = {c->id};
    PGresult   *r = NULL;
    int         rc, i;

    rc = cwpp_pg_query(w->pg, SQL_CHANGED_ROWS, 1, p, PGRES_TUPLES_OK, &r, errstr,
                       errstr_size);
    for (i = 0; rc == CWPP_OK && i < PQntuples(r); i++) {
        cwpp_alert_t a = {0};
        char         why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue;
        rc = wl_emit_change(w, &a, out, errstr, errstr_size);
        cwpp_alert_clear(&a);
    }
    PQclear(r);
    return rc;
}

/* -------------------------------------------------------------- the commands */

static int rule_create(wl_t *w, const cmd_t *c, json_t *pl, int n, const char *except,
                       size_t *budget, reply_t *rp, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size);

/* add_alert's rules (checked: an array of objects): each made from alert a and of its
 * account, created in order as the command's rules 1, 2, ...; their answers appended to
 * list. The stored alerts they match are whitelisted (a aside: it is whitelisted by hand),
 * at most MAX_SWEEP for all of them. The first refusal refuses the whole command in rp,
 * naming the rule; the commander then rolls everything back (the alert's status, the
 * records queued, too). Returns 0 or an error. */
static int alert_rules(wl_t *w, const cmd_t *c, const cwpp_alert_t *a, json_t *rules,
                       json_t *list, reply_t *rp, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    size_t i, n = json_array_size(rules), budget = MAX_SWEEP;
    int    rc = CWPP_OK;

    for (i = 0; i < n && rc == CWPP_OK; i++) {
        json_t     *one = json_deep_copy(json_array_get(rules, i));
        const char *from = json_string_value(json_object_get(one, "from_alert_id"));
        reply_t     sub;

        if (one == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        memset(&sub, 0, sizeof(sub));
        sub.status = "ok";
        if (from != NULL && strcmp(from, a->alert_id) != 0) {
            json_decref(one);
            return cwpp_command_refuse(rp, "Alert %s was not whitelisted and no rule was "
                                       "created: rule %zu of %zu names another alert (%.40s); "
                                       "the rules given with an alert are made from it.",
                                       a->alert_id, i + 1, n, from);
        }
        json_object_set_new(one, "from_alert_id", json_string(a->alert_id));
        if (json_object_get(one, "account_id") == NULL)
            json_object_set_new(one, "account_id", json_string(a->account_id));
        rc = rule_create(w, c, one, (int)i + 1, a->alert_id, &budget, &sub, out, errstr,
                         errstr_size);
        json_decref(one);
        if (rc == CWPP_OK && strcmp(sub.status, "ok") != 0) {
            cwpp_command_refuse(rp, "Alert %s was not whitelisted and no rule was created: "
                                "rule %zu of %zu: %.3500s", a->alert_id, i + 1, n, sub.msg);
            rp->result = sub.result != NULL ? sub.result : json_object();
            json_object_set_new(rp->result, "rule_index", json_integer((json_int_t)i + 1));
            return CWPP_OK;
        }
        if (rc == CWPP_OK && json_array_append(list, sub.result) != 0)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        json_decref(sub.result);
    }
    return rc;
}

/* Refuses a removal, naming up to five of the nbad offending ids collected in bad. */
static int refuse_list(reply_t *rp, cwpp_buf_t *bad, size_t nbad, const char *what)
{
    cwpp_buf_append(bad, "", 1);
    cwpp_command_refuse(rp, "No alert was removed: %zu %s (%s%s).", nbad, what,
                        bad->data != NULL ? (char *)bad->data : "", nbad > 5 ? ", ..." : "");
    cwpp_buf_free(bad);
    return CWPP_OK;
}

static int cmd_add_alert(void *svc, const cmd_t *c, reply_t *rp, cwpp_outbox_t *out,
                         char *errstr, size_t errstr_size)
{
    wl_t        *w = svc;
    const char  *id = json_string_value(json_object_get(c->payload, "alert_id"));
    json_t      *rules = json_object_get(c->payload, "rules"), *made = NULL;
    json_t      *ids;
    char        *arr;
    const char  *p[2];
    PGresult    *r = NULL;
    cwpp_alert_t a = {0};
    char         why[200];
    int          rc;
    size_t       i;

    if (!texts_fit(c, rp))
        return CWPP_OK;
    if (!cwpp_alert_id_valid(id))
        return cwpp_command_refuse(rp, "\"%.60s\" is not an alert id (al- followed by 32 hex "
                                   "digits).", id != NULL ? id : "");
    if (json_is_null(rules))
        rules = NULL;
    if (rules != NULL && (!json_is_array(rules) || json_array_size(rules) > MAX_ALERT_RULES))
        return cwpp_command_refuse(rp, "\"rules\" must be a list of at most %d rules; nothing "
                                   "was changed.", MAX_ALERT_RULES);
    for (i = 0; i < json_array_size(rules); i++)
        if (!json_is_object(json_array_get(rules, i)))
            return cwpp_command_refuse(rp, "Rule %zu of \"rules\" is not an object; nothing was "
                                       "changed.", i + 1);
    if ((ids = json_pack("[s]", id)) == NULL || (arr = id_array(ids)) == NULL) {
        json_decref(ids);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    p[0] = arr;
    rc = cwpp_pg_query(w->pg, SQL_ALERT_ROWS, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    free(arr);
    if (rc != CWPP_OK)
        goto out;
    if (PQntuples(r) != 1) {
        rc = cwpp_command_refuse(rp, "There is no alert %s.", id);
        goto out;
    }
    if (cwpp_alert_from_row(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &a, why,
                            sizeof(why)) != CWPP_OK) {
        rc = cwpp_command_refuse(rp, "Alert %s cannot be read: %s.", id, why);
        goto out;
    }
    if (!cwpp_commander_permit(w->cmd, c, a.account_id, "alert", rp, &rc, errstr, errstr_size))
        goto out;
    if (a.defense == CWPP_DEF_PRECISION) {
        rc = cwpp_command_refuse(rp, "Alert %s is a precision-defence alert: it was defended, is "
                                 "handled and sends no notification, so there is nothing to "
                                 "whitelist.", id);
        goto out;
    }
    if (rules != NULL) {
        if ((made = json_array()) == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = alert_rules(w, c, &a, rules, made, rp, out, errstr, errstr_size)) != CWPP_OK ||
            strcmp(rp->status, "ok") != 0)
            goto out;
    }
    if (a.status == CWPP_ST_MANUALLY_WHITELISTED) {
        snprintf(rp->msg, sizeof(rp->msg), "Alert %s is already manually whitelisted.%s", id,
                 json_array_size(made) > 0 ? " Its rules were created." : "");
        rp->result = json_pack("{s:s, s:s, s:s}", "alert_id", id, "before",
                               cwpp_status_name(CWPP_ST_MANUALLY_WHITELISTED), "after", cwpp_status_name(CWPP_ST_MANUALLY_WHITELISTED));
        if (made != NULL && rp->result != NULL)
            json_object_set(rp->result, "rules", made);
        goto out;
    }
    p[0] = id;
    p[1] = cwpp_status_name(CWPP_ST_MANUALLY_WHITELISTED);
    if ((rc = cwpp_pg_query(w->pg, SQL_ALERT_STATUS, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK ||
        (rc = log_change(w, c, "alert", id, json_pack("{s:s}", "status",
                                                       cwpp_status_name(a.status)),
                         json_pack("{s:s}", "status", cwpp_status_name(CWPP_ST_MANUALLY_WHITELISTED)), remark_of(c),
                         errstr, errstr_size)) != CWPP_OK)
        goto out;
    snprintf(rp->msg, sizeof(rp->msg),
             "Alert %s (\"%s\" on asset %s) is now manually whitelisted (was %s): it leaves "
             "its event and its recurrences stay suppressed.%s", id, a.name, a.asset.id,
             cwpp_status_name(a.status),
             json_array_size(made) > 0 ? " Its rules were created." : "");
    rp->result = json_pack("{s:s, s:s, s:s}", "alert_id", id, "before",
                           cwpp_status_name(a.status), "after", cwpp_status_name(CWPP_ST_MANUALLY_WHITELISTED));
    if (made != NULL && rp->result != NULL)
        json_object_set(rp->result, "rules", made);
    a.status = CWPP_ST_MANUALLY_WHITELISTED;
    rc = wl_emit_change(w, &a, out, errstr, errstr_size);
out:
    PQclear(r);
    json_decref(made);
    json_decref(ids);
    cwpp_alert_clear(&a);
    return rc;
}

/* Appends ", " (after the first) and text to the list of offending ids, up to five. */
static void note_bad(cwpp_buf_t *bad, size_t *nbad, const char *text)
{
    if ((*nbad)++ >= 5)
        return;
    if (*nbad > 1)
        cwpp_buf_append(bad, ", ", 2);
    cwpp_buf_append(bad, text, strlen(text));
}

/* Whether r (alert rows with their id in column 1, sorted by id) holds id. */
static int rows_hold(const PGresult *r, const char *id)
{
    int lo = 0, hi = PQntuples(r);

    while (lo < hi) {
        int mid = (lo + hi) / 2, cmp = strcmp(PQgetvalue(r, mid, 1), id);

        if (cmp == 0)
            return 1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* All or nothing: every id names an alert that reads, is whitelisted and whose account the
 * actor may act on. 1 when so; 0 refused (*rc 0) or a database error (*rc). */
static int removable(wl_t *w, const cmd_t *c, json_t *ids, const PGresult *r, reply_t *rp,
                     int *rc, char *errstr, size_t errstr_size)
{
    cwpp_buf_t bad = {0};
    size_t     i, nbad = 0;
    json_t    *permitted = json_object(); /* accounts checked already */
    int        k, ok = 1;

    *rc = CWPP_OK;
    for (i = 0; i < json_array_size(ids); i++)
        if (!rows_hold(r, json_string_value(json_array_get(ids, i))))
            note_bad(&bad, &nbad, json_string_value(json_array_get(ids, i)));
    if (nbad > 0) {
        refuse_list(rp, &bad, nbad, "of the ids name no alert");
        ok = 0;
    }
    for (k = 0; ok && k < PQntuples(r); k++) {
        cwpp_alert_t a = {0};
        char         why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK) {
            cwpp_command_refuse(rp, "No alert was removed: alert %.40s cannot be read (%s).",
                                PQgetvalue(r, k, 1), why);
            ok = 0;
        } else if (json_object_get(permitted, a.account_id) == NULL) {
            ok = cwpp_commander_permit(w->cmd, c, a.account_id, "alert", rp, rc, errstr,
                                       errstr_size);
            if (ok)
                json_object_set_new(permitted, a.account_id, json_true());
        }
        if (ok && a.status != CWPP_ST_MANUALLY_WHITELISTED &&
            a.status != CWPP_ST_AUTOMATICALLY_WHITELISTED) {
            char one[120];

            snprintf(one, sizeof(one), "%s is %s", a.alert_id, cwpp_status_name(a.status));
            note_bad(&bad, &nbad, one);
        }
        cwpp_alert_clear(&a);
    }
    if (ok && nbad > 0) {
        refuse_list(rp, &bad, nbad, "of them are not whitelisted");
        ok = 0;
    }
    cwpp_buf_free(&bad);
    json_decref(permitted);
    return ok;
}

/* Takes alert a (whitelisted) out of the whitelist: back to unhandled, and not evaluated
 * against the rules again (only its future occurrences meet them); published as restored.
 * Its entry goes to list. */
static int remove_one(wl_t *w, const cmd_t *c, cwpp_alert_t *a, json_t *list,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cwpp_alert_status_t before = a->status;
    const char         *p[2];
    json_t             *entry;
    int                 rc;

    a->status = CWPP_ST_UNHANDLED;
    p[0] = a->alert_id;
    p[1] = cwpp_status_name(a->status);
    rc = cwpp_pg_query(w->pg, SQL_ALERT_STATUS, 2, p, PGRES_COMMAND_OK, NULL, errstr,
                       errstr_size);
    if (rc == CWPP_OK)
        rc = log_change(w, c, "alert", a->alert_id,
                        json_pack("{s:s}", "status", cwpp_status_name(before)),
                        json_pack("{s:s}", "status", cwpp_status_name(a->status)),
                        remark_of(c), errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = wl_emit_change(w, a, out, errstr, errstr_size);
    entry = json_pack("{s:s, s:s, s:s}", "alert_id", a->alert_id, "before",
                      cwpp_status_name(before), "after", cwpp_status_name(a->status));
    if (entry == NULL || json_array_append_new(list, entry) != 0)
        return rc != CWPP_OK ? rc : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM,
                                                "out of memory");
    return rc;
}

static int cmd_remove_alerts(void *svc, const cmd_t *c, reply_t *rp, cwpp_outbox_t *out,
                             char *errstr, size_t errstr_size)
{
    wl_t       *w = svc;
    json_t     *ids = json_object_get(c->payload, "alert_ids"), *list = NULL;
    size_t      i, n = 0;
    char       *arr;
    const char *p[1];
    PGresult   *r = NULL;
    int         rc, k;

    if (!texts_fit(c, rp))
        return CWPP_OK;
    if (!json_is_array(ids) || json_array_size(ids) == 0)
        return cwpp_command_refuse(rp, "Name at least one alert to remove from the whitelist.");
    if (json_array_size(ids) > MAX_REMOVE)
        return cwpp_command_refuse(rp, "At most %d alerts can be removed from the whitelist at "
                                   "once; %zu were given.", MAX_REMOVE, json_array_size(ids));
    for (i = 0; i < json_array_size(ids); i++)
        if (!cwpp_alert_id_valid(json_string_value(json_array_get(ids, i))))
            return cwpp_command_refuse(rp, "\"%.60s\" is not an alert id (al- followed by 32 "
                                       "hex digits).", json_is_string(json_array_get(ids, i))
                                       ? json_string_value(json_array_get(ids, i))
                                       : "(not a string)");
    if ((arr = id_array(ids)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    p[0] = arr;
    rc = cwpp_pg_query(w->pg, SQL_ALERT_ROWS_IDS, 1, p, PGRES_TUPLES_OK, &r, errstr,
                       errstr_size);
    free(arr);
    if (rc != CWPP_OK || !removable(w, c, ids, r, rp, &rc, errstr, errstr_size))
        goto out;
    if ((list = json_array()) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    for (k = 0; rc == CWPP_OK && k < PQntuples(r); k++) {
        cwpp_alert_t a = {0};
        char         why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue; /* read by removable() already */
        rc = remove_one(w, c, &a, list, out, errstr, errstr_size);
        n++;
        cwpp_alert_clear(&a);
    }
    if (rc != CWPP_OK)
        goto out;
    snprintf(rp->msg, sizeof(rp->msg), "Removed %zu alert%s from the whitelist: back to "
             "unhandled, to be evaluated and handled again; only %s future occurrences meet "
             "the whitelist rules.", n, n == 1 ? "" : "s", n == 1 ? "its" : "their");
    rp->result = json_pack("{s:O}", "alerts", list);
    if (rp->result == NULL)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
out:
    PQclear(r);
    json_decref(list);
    return rc;
}

/* The rule of payload pl (an asset scope without an asset takes the asset of the alert it
 * is created from). 1 read; 0 refused (*rc 0) or an error (*rc). */
static int rule_def_of(wl_t *w, json_t *pl, cwpp_wl_def_t *d, reply_t *rp, int *rc,
                       char *errstr, size_t errstr_size)
{
    json_t     *copy = NULL;
    const char *scope = json_string_value(json_object_get(pl, "scope"));
    const char *aid = json_string_value(json_object_get(pl, "from_alert_id"));
    char        why[1024];
    PGresult   *r = NULL;

    if (scope != NULL && strcmp(scope, "asset") == 0 && aid != NULL &&
        json_object_get(pl, "asset_id") == NULL) {
        const char *pp[1] = {aid};

        if ((*rc = cwpp_pg_query(w->pg, "SELECT asset_id FROM alerts WHERE alert_id = $1", 1, pp,
                                 PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK)
            return 0;
        if (PQntuples(r) == 1 && (copy = json_deep_copy(pl)) != NULL) {
            json_object_set_new(copy, "asset_id", json_string(PQgetvalue(r, 0, 0)));
            pl = copy;
        }
        PQclear(r);
    }
    *rc = cwpp_wl_def_from_json(pl, d, why, sizeof(why));
    json_decref(copy);
    if (*rc == CWPP_ENOMEM) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return 0;
    }
    if (*rc != CWPP_OK) {
        *rc = cwpp_command_refuse(rp, "The rule was not created: %s.", why);
        return 0;
    }
    return 1;
}

/* The alert a rule is created from: it exists, the actor may act on its account, it has
 * the rule's alert name and is of the rule's account. An alert the actor may not act on
 * is answered exactly as a missing one, and its name and account are told only after the
 * permission: neither its existence nor its name leaks to another account's user. 1 so;
 * 0 refused (*rc 0) or an error (*rc). */
static int from_alert_ok(wl_t *w, const cmd_t *c, const cwpp_wl_def_t *d, reply_t *rp, int *rc,
                         char *errstr, size_t errstr_size)
{
    const char *pp[1] = {d->from_alert_id};
    PGresult   *r = NULL;
    char        why[300];
    int         ok = 0, may = 0;

    if ((*rc = cwpp_pg_query(w->pg, "SELECT name, account_id FROM alerts WHERE alert_id = $1",
                             1, pp, PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK)
        return 0;
    if (PQntuples(r) == 1 &&
        (may = cwpp_commander_may_act(w->cmd, c->actor, PQgetvalue(r, 0, 1), NULL, why,
                                      sizeof(why), errstr, errstr_size)) < 0) {
        *rc = -may;
        PQclear(r);
        return 0;
    }
    if (may != 1)
        cwpp_command_refuse(rp, "The rule was not created: there is no alert %s that user "
                            "\"%.64s\" may act on to create it from.", d->from_alert_id,
                            c->actor);
    else if (strcmp(PQgetvalue(r, 0, 0), d->def.alert_name) != 0)
        cwpp_command_refuse(rp, "The rule was not created: it is for alerts named \"%s\" but "
                            "alert %s is named \"%s\".", d->def.alert_name, d->from_alert_id,
                            PQgetvalue(r, 0, 0));
    else if (strcmp(PQgetvalue(r, 0, 1), d->def.account_id) != 0)
        cwpp_command_refuse(rp, "The rule was not created: it is for account \"%s\" but "
                            "alert %s is of account \"%s\".", d->def.account_id,
                            d->from_alert_id, PQgetvalue(r, 0, 1));
    else
        ok = 1;
    PQclear(r);
    return ok;
}

/*
 * The stored alerts a rule just created (d, its id set) matches leave their events: of the
 * rule's account and name, unhandled or handling, seen within the preview window
 * (whitelist.preview.days), precision-defence alerts and except (NULL: none) aside, the
 * most recently seen first, at most *budget of them (the command's bound, MAX_SWEEP,
 * shared by the rules of one add_alert; lowered by the alerts whitelisted). Each becomes
 * automatically whitelisted with an activity_log entry naming the rule, and is published
 * (wl_emit_change). Handled and whitelisted alerts keep their status; matching alerts
 * beyond the bound keep theirs until they recur. Sets *done to the alerts whitelisted and
 * *more when more matched than the bound allowed. Returns 0 or an error.
 */
static int sweep(wl_t *w, const cmd_t *c, const cwpp_wl_def_t *d, const char *except,
                 size_t *budget, cwpp_outbox_t *out, int64_t *done, int *more, char *errstr,
                 size_t errstr_size)
{
    cwpp_ruleset_t    *rs = NULL;
    cwpp_rule_def_t    one = d->def;
    cwpp_rules_stats_t st;
    json_t            *ids = json_array();
    char              *ids_text = NULL;
    size_t             nids = 0;
    char               days[16];
    const char        *p[4];
    PGresult          *r = NULL;
    int64_t            now = cwpp_now_ms();
    int                rc, k;

    *done = 0;
    *more = 0;
    memset(&st, 0, sizeof(st));
    if (ids == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    one.expires_at_ms = 0; /* live now: it was just created */
    if ((rs = cwpp_ruleset_new(&w->limits)) == NULL) {
        json_decref(ids);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    if ((rc = cwpp_ruleset_add(rs, &one, errstr, errstr_size)) != CWPP_OK)
        goto out;
    snprintf(days, sizeof(days), "%d", (int)w->conf->preview_days);
    p[0] = d->def.account_id;
    p[1] = d->def.alert_name;
    p[2] = days;
    p[3] = except;
    if ((rc = cwpp_pg_query(w->pg, SQL_SWEEP_CURSOR, 4, p, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    while (!*more) {
        int n;

        PQclear(r);
        r = NULL;
        if ((rc = cwpp_pg_query(w->pg, "FETCH 1000 FROM cwpp_sweep", 0, NULL, PGRES_TUPLES_OK,
                                &r, errstr, errstr_size)) != CWPP_OK)
            goto out;
        if ((n = PQntuples(r)) == 0)
            break;
        for (k = 0; k < n && !*more; k++) {
            cwpp_alert_t a = {0};
            char         why[200];

            if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                    sizeof(why)) != CWPP_OK)
                continue;
            if (cwpp_rule_matches(rs, one.id, &a, now, &st) == 1) {
                if (nids >= *budget) {
                    *more = 1;
                } else if (json_array_append_new(ids, json_string(a.alert_id)) == 0) {
                    nids++;
                } else {
                    cwpp_alert_clear(&a);
                    rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
                    goto out;
                }
            }
            cwpp_alert_clear(&a);
        }
    }
    PQclear(r);
    r = NULL;
    if ((rc = cwpp_pg_query(w->pg, "CLOSE cwpp_sweep", 0, NULL, PGRES_COMMAND_OK, NULL, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    if (nids == 0)
        goto out;
    if ((ids_text = json_dumps(ids, JSON_COMPACT)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    p[0] = ids_text;
    p[1] = d->def.account_id;
    if ((rc = cwpp_pg_query(w->pg, SQL_SWEEP_SET, 2, p, PGRES_TUPLES_OK, &r, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    for (k = 0; rc == CWPP_OK && k < PQntuples(r); k++) {
        cwpp_alert_t a = {0};
        char         why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue;
        rc = log_change(w, c, "alert", a.alert_id, json_pack("{s:s}", "status",
                                                              PQgetvalue(r, k, 1)),
                        json_pack("{s:s, s:I}", "status", cwpp_status_name(a.status),
                                  "rule_id", (json_int_t)d->def.id),
                        d->remark, errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = wl_emit_change(w, &a, out, errstr, errstr_size);
        if (rc == CWPP_OK)
            (*done)++;
        cwpp_alert_clear(&a);
    }
    *budget -= (size_t)*done <= *budget ? (size_t)*done : *budget;
out: /* a cursor an error left open goes with the batch's rollback */
    PQclear(r);
    json_decref(ids);
    free(ids_text);
    cwpp_ruleset_destroy(rs);
    return rc;
}

/*
 * Creates the rule of payload pl as command c's n-th rule (n 0: the command's only rule,
 * stored under the command's id; n > 0: one of several, stored under "<id>#<n>"): the
 * checks (definition, the alert it is made from, the actor's permission on the rule's
 * account), the impact preview over that account's alerts and the broad-rule check, then
 * the row, the version bump and the activity log, and the stored alerts it matches
 * whitelisted (sweep: except aside, at most *budget). Sets rp (ok with the message and
 * {rule_id, rule, preview, whitelisted, whitelisted_more}, or a refusal). Returns 0 or an
 * error that fails the batch.
 */
static int rule_create(wl_t *w, const cmd_t *c, json_t *pl, int n, const char *except,
                       size_t *budget, reply_t *rp, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    cwpp_wl_def_t     d;
    cwpp_wl_preview_t pv;
    char              why[1024], num[32], idbuf[32], cid[256];
    const char       *p[12];
    PGresult         *r = NULL;
    int               rc, broad, more = 0;
    int64_t           swept = 0;
    json_t           *def;

    if (!rule_def_of(w, pl, &d, rp, &rc, errstr, errstr_size))
        return rc;
    if (d.def.account_id == NULL) {
        cwpp_wl_def_clear(&d);
        return cwpp_command_refuse(rp, "The rule was not created: it needs an account_id (a "
                                   "rule applies to the alerts of one account).");
    }
    if ((d.from_alert_id != NULL && !from_alert_ok(w, c, &d, rp, &rc, errstr, errstr_size)) ||
        !cwpp_commander_permit(w->cmd, c, d.def.account_id, "account's whitelist rules", rp,
                               &rc, errstr, errstr_size)) {
        cwpp_wl_def_clear(&d);
        return rc;
    }
    rc = cwpp_wl_preview(cwpp_pg_conn(w->pg), &d.def, &w->limits, (int)w->conf->preview_days,
                         cwpp_now_ms(), &pv, errstr, errstr_size);
    if (rc != CWPP_OK) {
        cwpp_wl_def_clear(&d);
        return rc == CWPP_EINVAL ? cwpp_command_refuse(rp, "The rule was not created: %s.",
                                                       errstr) : rc;
    }
    broad = cwpp_wl_broad(&d.def, &pv, (double)w->conf->broad_percent / 100.0, why, sizeof(why));
    if (broad && !d.force) {
        cwpp_command_refuse(rp,
                            "The rule was not created: it is too broad. %s Check it with cwppctl "
                            "whitelist preview, narrow it, or add --force to create it anyway.",
                            why);
        rp->result = json_pack("{s:o, s:s}", "preview", cwpp_wl_preview_to_json(&pv), "broad",
                               why);
        cwpp_wl_preview_clear(&pv);
        cwpp_wl_def_clear(&d);
        return CWPP_OK;
    }
    if (n > 0)
        snprintf(cid, sizeof(cid), "%s#%d", c->id, n);
    else
        snprintf(cid, sizeof(cid), "%s", c->id);
    snprintf(num, sizeof(num), "%" PRId64, d.def.expires_at_ms);
    p[0] = d.def.alert_name;
    p[1] = d.def.field;
    p[2] = cwpp_rule_op_name(d.def.op);
    p[3] = d.def.value;
    p[4] = d.def.scope == CWPP_SCOPE_ASSET ? "asset" : "all";
    p[5] = d.def.asset_id;
    p[6] = d.from_alert_id;
    p[7] = num;
    p[8] = d.remark;
    p[9] = c->actor;
    p[10] = cid;
    p[11] = d.def.account_id;
    rc = cwpp_pg_query(w->pg, SQL_RULE_ADD, 12, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    if (rc == CWPP_OK) {
        d.def.id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        rc = cwpp_pg_query(w->pg, SQL_BUMP, 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    }
    def = cwpp_wl_def_to_json(&d.def, d.def.id);
    if (rc == CWPP_OK) {
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, d.def.id);
        rc = log_change(w, c, "whitelist_rule", idbuf, NULL, json_incref(def), d.remark, errstr,
                        errstr_size);
    }
    if (rc == CWPP_OK)
        rc = sweep(w, c, &d, except, budget, out, &swept, &more, errstr, errstr_size);
    if (rc == CWPP_OK) {
        char   left[300] = "";
        size_t len;

        w->rules_changed = 1;
        if (swept > 0 || more)
            snprintf(left, sizeof(left), " It whitelisted %lld stored alert%s it matches "
                     "(unhandled or handling), which leave their events.", (long long)swept,
                     swept == 1 ? "" : "s");
        if (more) {
            len = strlen(left);
            snprintf(left + len, sizeof(left) - len, " More match, beyond the %d a command "
                     "whitelists: they are whitelisted when they recur.", MAX_SWEEP);
        }
        snprintf(rp->msg, sizeof(rp->msg),
                 "Created rule %" PRId64 " for \"%s\" alerts of account %s: %s %s \"%s\" on %s. "
                 "Over the last %d days it would have suppressed %lld of %lld such alerts on "
                 "%lld asset%s.%s%s",
                 d.def.id, d.def.alert_name, d.def.account_id, d.def.field,
                 cwpp_rule_op_name(d.def.op), d.def.value,
                 d.def.scope == CWPP_SCOPE_ASSET ? d.def.asset_id : "all its assets", pv.days,
                 (long long)pv.matched, (long long)pv.considered, (long long)pv.assets,
                 pv.assets == 1 ? "" : "s", broad ? " Created with --force although: " : "",
                 broad ? why : "");
        len = strlen(rp->msg);
        snprintf(rp->msg + len, sizeof(rp->msg) - len, "%s", left);
        rp->result = json_pack("{s:I, s:O, s:o, s:I, s:b}", "rule_id", (json_int_t)d.def.id,
                               "rule", def, "preview", cwpp_wl_preview_to_json(&pv),
                               "whitelisted", (json_int_t)swept, "whitelisted_more", more);
    }
    json_decref(def);
    cwpp_wl_preview_clear(&pv);
    cwpp_wl_def_clear(&d);
    return rc;
}

static int cmd_rule_add(void *svc, const cmd_t *c, reply_t *rp, cwpp_outbox_t *out,
                        char *errstr, size_t errstr_size)
{
    size_t budget = MAX_SWEEP;

    if (!texts_fit(c, rp))
        return CWPP_OK;
    return rule_create(svc, c, c->payload, 0, NULL, &budget, rp, out, errstr, errstr_size);
}

static int cmd_rule_delete(void *svc, const cmd_t *c, reply_t *rp, cwpp_outbox_t *out,
                           char *errstr, size_t errstr_size)
{
    wl_t           *w = svc;
    json_t         *jid = json_object_get(c->payload, "rule_id");
    char            num[32];
    const char     *p[2];
    PGresult       *r = NULL;
    cwpp_rule_def_t d;
    json_t         *before;
    int             rc;

    (void)out;
    if (!texts_fit(c, rp))
        return CWPP_OK;
    if (!json_is_integer(jid) || json_integer_value(jid) <= 0)
        return cwpp_command_refuse(rp,
                                   "Name the rule to delete by its id (a positive number; cwppctl "
                                   "whitelist rule list shows them).");
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
    p[0] = num;
    if ((rc = cwpp_pg_query(w->pg, SQL_RULE_GET, 1, p, PGRES_TUPLES_OK, &r, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return cwpp_command_refuse(rp, "There is no whitelist rule %s.", num);
    }
    /* A rule of no account (deleted by migration 015): admins only. */
    if (!cwpp_commander_permit(w->cmd, c, PQgetisnull(r, 0, 10) ? NULL : PQgetvalue(r, 0, 10),
                               "account's whitelist rules", rp, &rc, errstr, errstr_size)) {
        PQclear(r);
        return rc;
    }
    if (!PQgetisnull(r, 0, 8)) {
        cwpp_command_refuse(rp, "Rule %s was already deleted, at %s by %s.", num, PQgetvalue(r, 0,
                            8),
                            PQgetvalue(r, 0, 9));
        PQclear(r);
        return CWPP_OK;
    }
    memset(&d, 0, sizeof(d));
    d.alert_name = PQgetvalue(r, 0, 1);
    d.field = PQgetvalue(r, 0, 2);
    cwpp_rule_op_parse(PQgetvalue(r, 0, 3), &d.op);
    d.value = PQgetvalue(r, 0, 4);
    d.scope = strcmp(PQgetvalue(r, 0, 5), "asset") == 0 ? CWPP_SCOPE_ASSET : CWPP_SCOPE_ALL;
    d.asset_id = PQgetisnull(r, 0, 6) ? NULL : PQgetvalue(r, 0, 6);
    d.expires_at_ms = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
    d.account_id = PQgetisnull(r, 0, 10) ? NULL : PQgetvalue(r, 0, 10);
    before = cwpp_wl_def_to_json(&d, strtoll(num, NULL, 10));
    PQclear(r);
    p[1] = c->actor;
    rc = cwpp_pg_query(w->pg, SQL_RULE_DEL, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = cwpp_pg_query(w->pg, SQL_BUMP, 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = log_change(w, c, "whitelist_rule", num, json_incref(before),
                        json_pack("{s:b}", "deleted", 1), remark_of(c), errstr, errstr_size);
    if (rc == CWPP_OK) {
        w->rules_changed = 1;
        snprintf(rp->msg, sizeof(rp->msg),
                 "Deleted rule %s. It no longer applies to new alerts; alerts it already "
                 "suppressed keep their status.", num);
        rp->result = json_pack("{s:I, s:O}", "rule_id", (json_int_t)strtoll(num, NULL, 10),
                               "rule", before);
    }
    json_decref(before);
    return rc;
}

/* ------------------------------------------------------------------- entry */

static const cwpp_command_def_t COMMANDS[] = {
    {"whitelist.add_alert", cmd_add_alert, CWPP_COMMAND_ACCOUNT},
    {"whitelist.remove_alerts", cmd_remove_alerts, CWPP_COMMAND_ACCOUNT},
    {"whitelist.rule_add", cmd_rule_add, CWPP_COMMAND_ACCOUNT},
    {"whitelist.rule_delete", cmd_rule_delete, CWPP_COMMAND_ACCOUNT},
};

/* A command applied before: publish again the alerts it changed that are still as it left
 * them (its activity_log entries; a refused command changed nothing). */
static int redeliver(void *svc, const cmd_t *c, const char *status, const json_t *result,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    (void)result;
    if (strcmp(status, "ok") != 0)
        return CWPP_OK;
    return republish(svc, c, out, errstr, errstr_size);
}

/* What a rolled-back command must not leave behind: a rules change, hits to count. */
static void mark(void *svc)
{
    wl_t *w = svc;

    w->cmd_rules_changed = w->rules_changed;
    w->cmd_hits_mark = w->pending_hits_n;
}

static void undo(void *svc)
{
    wl_t *w = svc;

    w->rules_changed = w->cmd_rules_changed;
    w->pending_hits_n = w->cmd_hits_mark;
}

static int dead_letter(void *svc, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    return wl_dead_letter(svc, (rd_kafka_message_t *)m, code, reason, out, errstr, errstr_size);
}

cwpp_commander_t *wl_commander_new(wl_t *w, char *errstr, size_t errstr_size)
{
    cwpp_command_conf_t cc;

    memset(&cc, 0, sizeof(cc));
    cc.service = "whitelist";
    cc.table = COMMANDS;
    cc.ntable = sizeof(COMMANDS) / sizeof(COMMANDS[0]);
    cc.max_id = 200;
    cc.max_age_ms = w->conf->command_max_age_ms;
    cc.max_age_key = "whitelist.command.max.age.ms";
    cc.metric = "cwpp_whitelist_commands_total";
    cc.svc = w;
    cc.dead_letter = dead_letter;
    cc.redeliver = redeliver;
    cc.mark = mark;
    cc.undo = undo;
    return cwpp_commander_new(&cc, w->pg, w->metrics, errstr, errstr_size);
}

int wl_apply_command(wl_t *w, item_t *it, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    return cwpp_commander_apply(w->cmd, it->m, out, errstr, errstr_size);
}
