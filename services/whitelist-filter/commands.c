/* SPDX-License-Identifier: Apache-2.0 */
/*
 * commands.c: the whitelist commands (docs/commands.md), applied inside the batch's
 * transaction, each in its own savepoint so a refused or failing command never takes the
 * batch with it:
 *
 *   whitelist.add_alert      {alert_id, remark}       -> manually whitelisted
 *   whitelist.remove_alerts  {alert_ids: [...], remark} -> unhandled, evaluated again
 *   whitelist.rule_add       {alert_name, field, op, value, scope, asset_id, from_alert_id,
 *                             expires_at, remark, force}
 *   whitelist.rule_delete    {rule_id, remark}
 *
 * Every command is answered once on command-results and recorded in commands_applied; a
 * redelivered command (same command_id) gets the stored answer again and re-emits the
 * alerts it changed, as they are stored now, so a crash between commit and produce loses
 * nothing. Every change is appended to activity_log.
 */
#include "filter_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_service.h"
#include "cwpp_whitelist.h"

typedef cwpp_command_t cmd_t;

#define MAX_REMOVE 1000

static const char SQL_APPLIED[] =
    "SELECT status, message, result::text FROM commands_applied WHERE command_id = $1";
static const char SQL_RECORD[] =
    "INSERT INTO commands_applied (command_id, service, type, actor, status, message, result) "
    "VALUES ($1, 'whitelist', $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING";
static const char SQL_LOG[] =
    "INSERT INTO activity_log (actor, command_id, object_type, object_id, event_id, action, "
    "before, after, remark) VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'alert' THEN "
    "(SELECT ea.event_id FROM event_alerts ea JOIN events e USING (event_id) "
    "WHERE ea.alert_id = $4 ORDER BY e.last_seen DESC LIMIT 1) END, $5, $6::jsonb, $7::jsonb, $8) "
    "ON CONFLICT DO NOTHING";
static const char SQL_ALERT_ROWS[] =
    "SELECT " CWPP_ALERT_ROW_SQL " FROM alerts a WHERE a.alert_id = ANY($1::text[]) "
    "ORDER BY a.alert_id FOR UPDATE";
static const char SQL_ALERT_ROWS_IDS[] =
    "SELECT " CWPP_ALERT_ROW_SQL ", a.alert_id FROM alerts a WHERE a.alert_id = ANY($1::text[]) "
    "ORDER BY a.alert_id COLLATE \"C\" FOR UPDATE";
static const char SQL_ALERT_STATUS[] =
    "UPDATE alerts SET status = $2, updated_at = now() WHERE alert_id = $1";
static const char SQL_HIT[] =
    "UPDATE whitelist_rules SET hits = hits + 1, last_hit_at = now() WHERE rule_id = $1";
static const char SQL_BUMP[] = "UPDATE whitelist_state SET version = version + 1 WHERE id = 1";
static const char SQL_RULE_ADD[] =
    "INSERT INTO whitelist_rules (alert_name, field, op, value, scope, asset_id, from_alert_id, "
    "expires_at, remark, created_by, command_id) VALUES ($1, $2, $3, $4, $5, $6, $7, "
    "CASE WHEN $8::bigint > 0 THEN to_timestamp($8::bigint / 1000.0) END, $9, $10, $11) "
    "RETURNING rule_id";
static const char SQL_RULE_GET[] =
    "SELECT rule_id, alert_name, field, op, value, scope, asset_id, "
    "COALESCE((extract(epoch FROM expires_at) * 1000)::bigint, 0), deleted_at, deleted_by "
    "FROM whitelist_rules WHERE rule_id = $1 FOR UPDATE";
static const char SQL_RULE_DEL[] =
    "UPDATE whitelist_rules SET deleted_at = now(), deleted_by = $2 WHERE rule_id = $1";

/* ------------------------------------------------------------------ helpers */

/* Runs sql with text params; CWPP_EDATA for a refusal because of the data. */
static int q(wl_t *w, const char *sql, int n, const char *const *v, ExecStatusType want,
             PGresult **res, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexecParams(cwpp_pg_conn(w->pg), sql, n, NULL, v, NULL, NULL, 0);
    int       rc = cwpp_pg_check(w->pg, r, want, "command", errstr, errstr_size);

    if (rc != CWPP_OK || res == NULL)
        PQclear(r);
    else
        *res = r;
    return rc;
}

static int answer(wl_t *w, const cmd_t *c, const char *status, const char *message,
                  json_t *result, int record, cwpp_outbox_t *out, char *errstr,
                  size_t errstr_size)
{
    avro_value_t *v = &w->v_result;
    char         *rj = result != NULL ? json_dumps(result, JSON_COMPACT) : strdup("{}");
    char          msg[4096];
    int           rc;

    if (rj == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    /* bounded formats may have cut a character in two: the answer must be valid UTF-8 */
    snprintf(msg, sizeof(msg), "%s", message);
    cwpp_utf8_sanitize(msg);
    message = msg;
    if (record) {
        const char *p[6] = {c->id, c->type, c->actor, status, message, rj};

        if ((rc = q(w, SQL_RECORD, 6, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size))) {
            free(rj);
            return rc;
        }
    }
    rc = cwpp_command_result(w->t_result, v, &w->buf, "whitelist", c, status, message, rj,
                             errstr, errstr_size);
    free(rj);
    if (rc != CWPP_OK)
        return rc;
    rc = cwpp_outbox_add(out, CWPP_TOPIC_COMMAND_RESULTS, c->id, strlen(c->id), w->buf.data,
                         w->buf.len);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    cwpp_info("command", "%s %s by %s: %s: %s", c->type, c->id, c->actor, status, message);
    {
        char name[160];

        snprintf(name, sizeof(name), "cwpp_whitelist_commands_total{status=\"%s\"}", status);
        cwpp_metric_add(cwpp_counter(w->metrics, name, "Commands answered, by outcome."), 1);
    }
    return CWPP_OK;
}

static int log_change(wl_t *w, const cmd_t *c, const char *otype, const char *oid,
                      json_t *before, json_t *after, const char *remark, char *errstr,
                      size_t errstr_size)
{
    char       *b = before != NULL ? json_dumps(before, JSON_COMPACT) : NULL;
    char       *a = after != NULL ? json_dumps(after, JSON_COMPACT) : NULL;
    const char *p[8] = {c->actor, c->id, otype, oid, c->type, b, a, remark};
    int         rc = q(w, SQL_LOG, 8, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);

    free(b);
    free(a);
    return rc;
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

/* Emits the stored alerts of ids as they are now: whitelisted ones to suppressed, the rest
 * to accepted (redelivery of an applied command). */
static int reemit(wl_t *w, json_t *ids, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    char       *arr = id_array(ids);
    const char *p[1] = {arr};
    PGresult   *r = NULL;
    int         rc, i;

    if (arr == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    rc = q(w, SQL_ALERT_ROWS, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    free(arr);
    for (i = 0; rc == CWPP_OK && i < PQntuples(r); i++) {
        cwpp_alert_t a = {0};
        char         why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue;
        rc = wl_emit_alert(w, &a, a.status == CWPP_ST_MANUALLY_WHITELISTED ||
                                      a.status == CWPP_ST_AUTOMATICALLY_WHITELISTED,
                           out, errstr, errstr_size);
        cwpp_alert_clear(&a);
    }
    PQclear(r);
    return rc;
}

/* -------------------------------------------------------------- the commands */

/* Each returns 0 with *status/"msg"/result set (ok or a refusal), or an error code for a
 * database failure (EDATA: refused by the data; others fail the batch). */
typedef struct reply {
    const char *status;
    char        msg[4096];
    json_t     *result;
    json_t     *emit_ids; /* alert ids to emit as stored after the change */
} reply_t;

static int refuse(reply_t *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(reply_t *rp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rp->msg, sizeof(rp->msg), fmt, ap);
    va_end(ap);
    rp->status = "error";
    return CWPP_OK;
}

/* Refuses a removal, naming up to five of the nbad offending ids collected in bad. */
static int refuse_list(reply_t *rp, cwpp_buf_t *bad, size_t nbad, const char *what)
{
    cwpp_buf_append(bad, "", 1);
    refuse(rp, "No alert was removed: %zu %s (%s%s).", nbad, what,
           bad->data != NULL ? (char *)bad->data : "", nbad > 5 ? ", ..." : "");
    cwpp_buf_free(bad);
    return CWPP_OK;
}

static int cmd_add_alert(wl_t *w, const cmd_t *c, reply_t *rp, char *errstr, size_t errstr_size)
{
    const char *id = json_string_value(json_object_get(c->payload, "alert_id"));
    json_t     *ids;
    char       *arr;
    const char *p[2];
    PGresult   *r = NULL;
    cwpp_alert_t a = {0};
    char        why[200];
    int         rc;

    if (!cwpp_alert_id_valid(id))
        return refuse(rp, "\"%.60s\" is not an alert id (al- followed by 32 hex digits).",
                      id != NULL ? id : "");
    ids = json_pack("[s]", id);
    arr = ids != NULL ? id_array(ids) : NULL;
    json_decref(ids);
    if (arr == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    p[0] = arr;
    rc = q(w, SQL_ALERT_ROWS, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    free(arr);
    if (rc != CWPP_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return refuse(rp, "There is no alert %s.", id);
    }
    rc = cwpp_alert_from_row(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &a, why,
                             sizeof(why));
    PQclear(r);
    if (rc != CWPP_OK)
        return refuse(rp, "Alert %s cannot be read: %s.", id, why);
    if (a.defense == CWPP_DEF_PRECISION) {
        cwpp_alert_clear(&a);
        return refuse(rp, "Alert %s is a precision-defence alert: it was defended, is handled "
                      "and sends no notification, so there is nothing to whitelist.", id);
    }
    if (a.status == CWPP_ST_MANUALLY_WHITELISTED) {
        snprintf(rp->msg, sizeof(rp->msg), "Alert %s is already manually whitelisted.", id);
        rp->result = json_pack("{s:s, s:s, s:s}", "alert_id", id, "before",
                               "manually_whitelisted", "after", "manually_whitelisted");
        cwpp_alert_clear(&a);
        return CWPP_OK;
    }
    p[0] = id;
    p[1] = "manually_whitelisted";
    if ((rc = q(w, SQL_ALERT_STATUS, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size)) ==
        CWPP_OK) {
        json_t *before = json_pack("{s:s}", "status", cwpp_status_name(a.status));
        json_t *after = json_pack("{s:s}", "status", "manually_whitelisted");

        rc = log_change(w, c, "alert", id, before, after, remark_of(c), errstr, errstr_size);
        json_decref(before);
        json_decref(after);
    }
    if (rc == CWPP_OK) {
        snprintf(rp->msg, sizeof(rp->msg),
                 "Alert %s (\"%s\" on asset %s) is now manually whitelisted (was %s); its "
                 "recurrences stay suppressed.",
                 id, a.name, a.asset.id, cwpp_status_name(a.status));
        rp->result = json_pack("{s:s, s:s, s:s}", "alert_id", id, "before",
                               cwpp_status_name(a.status), "after", "manually_whitelisted");
        rp->emit_ids = json_pack("[s]", id);
    }
    cwpp_alert_clear(&a);
    return rc;
}

static int cmd_remove_alerts(wl_t *w, const cmd_t *c, reply_t *rp, char *errstr,
                             size_t errstr_size)
{
    json_t     *ids = json_object_get(c->payload, "alert_ids");
    cwpp_buf_t  bad = {0};
    size_t      i, nbad = 0, nunhandled = 0, nauto = 0;
    char       *arr;
    const char *p[2];
    PGresult   *r = NULL;
    json_t     *list;
    int         rc, k;

    if (!json_is_array(ids) || json_array_size(ids) == 0)
        return refuse(rp, "Name at least one alert to remove from the whitelist.");
    if (json_array_size(ids) > MAX_REMOVE)
        return refuse(rp, "At most %d alerts can be removed from the whitelist at once; %zu "
                      "were given.", MAX_REMOVE, json_array_size(ids));
    for (i = 0; i < json_array_size(ids); i++)
        if (!cwpp_alert_id_valid(json_string_value(json_array_get(ids, i))))
            return refuse(rp, "\"%.60s\" is not an alert id (al- followed by 32 hex digits).",
                          json_is_string(json_array_get(ids, i))
                              ? json_string_value(json_array_get(ids, i)) : "(not a string)");
    if ((arr = id_array(ids)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    p[0] = arr;
    rc = q(w, SQL_ALERT_ROWS_IDS, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    free(arr);
    if (rc != CWPP_OK)
        return rc;
    /* All or nothing: every id must name a whitelisted alert (rows come sorted by id). */
    for (i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        int         lo = 0, hi = PQntuples(r), found = 0;

        while (lo < hi && !found) {
            int mid = (lo + hi) / 2, cmp = strcmp(PQgetvalue(r, mid, 1), id);

            if (cmp == 0)
                found = 1;
            else if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!found && nbad++ < 5) {
            cwpp_buf_append(&bad, nbad > 1 ? ", " : "", nbad > 1 ? 2 : 0);
            cwpp_buf_append(&bad, id, strlen(id));
        }
    }
    if (nbad > 0) {
        PQclear(r);
        return refuse_list(rp, &bad, nbad, "of the ids name no alert");
    }
    for (k = 0; k < PQntuples(r); k++) {
        cwpp_alert_t        a = {0};
        char                why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK) {
            PQclear(r);
            cwpp_buf_free(&bad);
            return refuse(rp, "No alert was removed: alert %.40s cannot be read (%s).",
                          PQgetvalue(r, k, 1), why);
        }
        if (a.status != CWPP_ST_MANUALLY_WHITELISTED &&
            a.status != CWPP_ST_AUTOMATICALLY_WHITELISTED) {
            if (nbad++ < 5) {
                char one[120];

                snprintf(one, sizeof(one), "%s%s is %s", nbad > 1 ? ", " : "", a.alert_id,
                         cwpp_status_name(a.status));
                cwpp_buf_append(&bad, one, strlen(one));
            }
        }
        cwpp_alert_clear(&a);
    }
    if (nbad > 0) {
        cwpp_buf_append(&bad, "", 1);
        PQclear(r);
        refuse(rp, "No alert was removed: %zu of them are not whitelisted (%s%s).", nbad,
               bad.data != NULL ? (char *)bad.data : "", nbad > 5 ? ", ..." : "");
        cwpp_buf_free(&bad);
        return CWPP_OK;
    }
    list = json_array();
    rp->emit_ids = json_array();
    for (k = 0; k < PQntuples(r); k++) {
        cwpp_alert_t        a = {0};
        char                why[200];

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue;
        if (a.status != CWPP_ST_MANUALLY_WHITELISTED &&
            a.status != CWPP_ST_AUTOMATICALLY_WHITELISTED) {
            if (nbad++ < 5) {
                char one[120];

                snprintf(one, sizeof(one), "%s%s is %s", nbad > 1 ? ", " : "", a.alert_id,
                         cwpp_status_name(a.status));
                cwpp_buf_append(&bad, one, strlen(one));
            }
        }
        cwpp_alert_clear(&a);
    }
    if (nbad > 0) {
        PQclear(r);
        return refuse_list(rp, &bad, nbad, "of them are not whitelisted");
    }
    for (k = 0; rc == CWPP_OK && k < PQntuples(r); k++) {
        cwpp_alert_t        a = {0};
        char                why[200];
        cwpp_alert_status_t before;
        int64_t             rule = 0;
        json_t             *jb, *ja;

        if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                sizeof(why)) != CWPP_OK)
            continue;
        before = a.status;
        /* Back to unhandled, then evaluated again like a new alert. */
        a.status = CWPP_ST_UNHANDLED;
        if (w->rs != NULL)
            rule = cwpp_ruleset_match(w->rs, &a, cwpp_now_ms(), &w->stats);
        if (rule > 0)
            a.status = CWPP_ST_AUTOMATICALLY_WHITELISTED;
        p[0] = a.alert_id;
        p[1] = cwpp_status_name(a.status);
        rc = q(w, SQL_ALERT_STATUS, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
        if (rc == CWPP_OK && rule > 0) {
            char num[32];

            snprintf(num, sizeof(num), "%" PRId64, rule);
            p[0] = num;
            rc = q(w, SQL_HIT, 1, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
            if (rc == CWPP_OK && w->pending_hits_n < WL_PENDING_HITS_MAX)
                w->pending_hits[w->pending_hits_n++] = rule; /* /metrics after the commit */
        }
        jb = json_pack("{s:s}", "status", cwpp_status_name(before));
        ja = rule > 0 ? json_pack("{s:s, s:I}", "status", cwpp_status_name(a.status), "rule_id",
                                  (json_int_t)rule)
                      : json_pack("{s:s}", "status", cwpp_status_name(a.status));
        if (rc == CWPP_OK)
            rc = log_change(w, c, "alert", a.alert_id, jb, ja, remark_of(c), errstr, errstr_size);
        json_decref(jb);
        json_decref(ja);
        json_array_append_new(list, rule > 0
            ? json_pack("{s:s, s:s, s:s, s:I}", "alert_id", a.alert_id, "before",
                        cwpp_status_name(before), "after", cwpp_status_name(a.status), "rule_id",
                        (json_int_t)rule)
            : json_pack("{s:s, s:s, s:s}", "alert_id", a.alert_id, "before",
                        cwpp_status_name(before), "after", cwpp_status_name(a.status)));
        json_array_append_new(rp->emit_ids, json_string(a.alert_id));
        if (rule > 0)
            nauto++;
        else
            nunhandled++;
        cwpp_alert_clear(&a);
    }
    PQclear(r);
    cwpp_buf_free(&bad);
    if (rc != CWPP_OK) {
        json_decref(list);
        return rc;
    }
    snprintf(rp->msg, sizeof(rp->msg),
             "Removed %zu alert%s from the whitelist: %zu back to unhandled and evaluated again"
             "%s%zu matched a live rule and %s automatically whitelisted.",
             nunhandled + nauto, nunhandled + nauto == 1 ? "" : "s", nunhandled,
             nauto > 0 ? "; " : "; ", nauto, nauto == 1 ? "is" : "are");
    rp->result = json_pack("{s:o}", "alerts", list);
    return CWPP_OK;
}

static int cmd_rule_add(wl_t *w, const cmd_t *c, reply_t *rp, char *errstr, size_t errstr_size)
{
    cwpp_wl_def_t     d;
    cwpp_wl_preview_t pv;
    char              why[1024], num[32], idbuf[32];
    const char       *p[11];
    PGresult         *r = NULL;
    int               rc, broad;
    json_t           *def;

    /* asset scope without an asset: the asset of the alert it is created from */
    {
        json_t     *pl = c->payload, *copy = NULL;
        const char *scope = json_string_value(json_object_get(pl, "scope"));
        const char *aid = json_string_value(json_object_get(pl, "from_alert_id"));

        if (scope != NULL && strcmp(scope, "asset") == 0 && aid != NULL &&
            json_object_get(pl, "asset_id") == NULL) {
            const char *pp[1] = {aid};

            if ((rc = q(w, "SELECT asset_id FROM alerts WHERE alert_id = $1", 1, pp,
                        PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK)
                return rc;
            if (PQntuples(r) == 1 && (copy = json_deep_copy(pl)) != NULL) {
                json_object_set_new(copy, "asset_id", json_string(PQgetvalue(r, 0, 0)));
                pl = copy;
            }
            PQclear(r);
            r = NULL;
        }
        rc = cwpp_wl_def_from_json(pl, &d, why, sizeof(why));
        json_decref(copy);
        if (rc == CWPP_ENOMEM)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        if (rc != CWPP_OK)
            return refuse(rp, "The rule was not created: %s.", why);
    }
    if (d.from_alert_id != NULL) {
        const char *pp[1] = {d.from_alert_id};

        if ((rc = q(w, "SELECT name, asset_id FROM alerts WHERE alert_id = $1", 1, pp,
                    PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK) {
            cwpp_wl_def_clear(&d);
            return rc;
        }
        if (PQntuples(r) != 1) {
            PQclear(r);
            refuse(rp, "The rule was not created: there is no alert %s to create it from.",
                   d.from_alert_id);
            cwpp_wl_def_clear(&d);
            return CWPP_OK;
        }
        if (strcmp(PQgetvalue(r, 0, 0), d.def.alert_name) != 0) {
            refuse(rp, "The rule was not created: it is for alerts named \"%s\" but alert %s is "
                   "named \"%s\".", d.def.alert_name, d.from_alert_id, PQgetvalue(r, 0, 0));
            PQclear(r);
            cwpp_wl_def_clear(&d);
            return CWPP_OK;
        }
        PQclear(r);
        r = NULL;
    }
    rc = cwpp_wl_preview(cwpp_pg_conn(w->pg), &d.def, &w->limits, (int)w->conf->preview_days,
                         cwpp_now_ms(), &pv, errstr, errstr_size);
    if (rc != CWPP_OK) {
        cwpp_wl_def_clear(&d);
        return rc == CWPP_EINVAL ? refuse(rp, "The rule was not created: %s.", errstr) : rc;
    }
    broad = cwpp_wl_broad(&d.def, &pv, (double)w->conf->broad_percent / 100.0, why, sizeof(why));
    if (broad && !d.force) {
        refuse(rp, "The rule was not created: it is too broad. %s Check it with cwppctl "
               "whitelist preview, narrow it, or add --force to create it anyway.", why);
        rp->result = json_pack("{s:o, s:s}", "preview", cwpp_wl_preview_to_json(&pv), "broad",
                               why);
        cwpp_wl_preview_clear(&pv);
        cwpp_wl_def_clear(&d);
        return CWPP_OK;
    }
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
    p[10] = c->id;
    rc = q(w, SQL_RULE_ADD, 11, p, PGRES_TUPLES_OK, &r, errstr, errstr_size);
    if (rc == CWPP_OK) {
        d.def.id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        rc = q(w, SQL_BUMP, 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    }
    def = cwpp_wl_def_to_json(&d.def, d.def.id);
    if (rc == CWPP_OK) {
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, d.def.id);
        rc = log_change(w, c, "whitelist_rule", idbuf, NULL, def, d.remark, errstr, errstr_size);
    }
    if (rc == CWPP_OK) {
        w->rules_changed = 1;
        snprintf(rp->msg, sizeof(rp->msg),
                 "Created rule %" PRId64 " for \"%s\" alerts: %s %s \"%s\" on %s. Over the last "
                 "%d days it would have suppressed %lld of %lld such alerts on %lld asset%s.%s%s",
                 d.def.id, d.def.alert_name, d.def.field, cwpp_rule_op_name(d.def.op),
                 d.def.value, d.def.scope == CWPP_SCOPE_ASSET ? d.def.asset_id : "all assets",
                 pv.days, (long long)pv.matched, (long long)pv.considered, (long long)pv.assets,
                 pv.assets == 1 ? "" : "s", broad ? " Created with --force although: " : "",
                 broad ? why : "");
        rp->result = json_pack("{s:I, s:O, s:o}", "rule_id", (json_int_t)d.def.id, "rule", def,
                               "preview", cwpp_wl_preview_to_json(&pv));
    }
    json_decref(def);
    cwpp_wl_preview_clear(&pv);
    cwpp_wl_def_clear(&d);
    return rc;
}

static int cmd_rule_delete(wl_t *w, const cmd_t *c, reply_t *rp, char *errstr,
                           size_t errstr_size)
{
    json_t         *jid = json_object_get(c->payload, "rule_id");
    char            num[32];
    const char     *p[2];
    PGresult       *r = NULL;
    cwpp_rule_def_t d;
    json_t         *before, *after;
    int             rc;

    if (!json_is_integer(jid) || json_integer_value(jid) <= 0)
        return refuse(rp, "Name the rule to delete by its id (a positive number; cwppctl "
                      "whitelist rule list shows them).");
    snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
    p[0] = num;
    if ((rc = q(w, SQL_RULE_GET, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return refuse(rp, "There is no whitelist rule %s.", num);
    }
    if (!PQgetisnull(r, 0, 8)) {
        refuse(rp, "Rule %s was already deleted, at %s by %s.", num, PQgetvalue(r, 0, 8),
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
    before = cwpp_wl_def_to_json(&d, strtoll(num, NULL, 10));
    PQclear(r);
    p[1] = c->actor;
    rc = q(w, SQL_RULE_DEL, 2, p, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = q(w, SQL_BUMP, 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    after = json_pack("{s:b}", "deleted", 1);
    if (rc == CWPP_OK)
        rc = log_change(w, c, "whitelist_rule", num, before, after, remark_of(c), errstr,
                        errstr_size);
    if (rc == CWPP_OK) {
        w->rules_changed = 1;
        snprintf(rp->msg, sizeof(rp->msg),
                 "Deleted rule %s. It no longer applies to new alerts; alerts it already "
                 "suppressed keep their status.", num);
        rp->result = json_pack("{s:I, s:O}", "rule_id", (json_int_t)strtoll(num, NULL, 10),
                               "rule", before);
    }
    json_decref(before);
    json_decref(after);
    return rc;
}

/* ------------------------------------------------------------------- entry */

int wl_apply_command(wl_t *w, item_t *it, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cmd_t     c = {0};
    reply_t   rp;
    char      why[300];
    PGresult *r = NULL;
    int       rc, changed_before = w->rules_changed;
    size_t    out_mark = 0, hits_mark = 0;

    if (cwpp_command_decode(w->t_cmd, &w->v_cmd, it->m->payload, it->m->len, 200, &c, why,
                            sizeof(why)) != 0)
        return wl_dead_letter(w, it->m, "bad_command", why, out, errstr, errstr_size);
    if (strcmp(c.service, "whitelist") != 0) {
        rc = CWPP_OK; /* another service's command */
        goto out;
    }

    /* Applied before: answer again, re-emit what it changed. */
    {
        const char *p[1] = {c.id};

        if ((rc = q(w, SQL_APPLIED, 1, p, PGRES_TUPLES_OK, &r, errstr, errstr_size)) != CWPP_OK)
            goto out;
        if (PQntuples(r) == 1) {
            json_error_t jerr;
            json_t      *res = json_loads(PQgetvalue(r, 0, 2), 0, &jerr);
            json_t      *ids = json_array(), *alerts = json_object_get(res, "alerts");
            size_t       i;
            const char  *aid = json_string_value(json_object_get(res, "alert_id"));
            int          ok = strcmp(PQgetvalue(r, 0, 0), "ok") == 0;

            if (ok && aid != NULL)
                json_array_append_new(ids, json_string(aid));
            for (i = 0; ok && i < json_array_size(alerts); i++)
                json_array_append(ids, json_object_get(json_array_get(alerts, i), "alert_id"));
            rc = json_array_size(ids) > 0 ? reemit(w, ids, out, errstr, errstr_size) : CWPP_OK;
            if (rc == CWPP_OK)
                rc = answer(w, &c, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), res, 0, out,
                            errstr, errstr_size);
            json_decref(ids);
            json_decref(res);
            PQclear(r);
            goto out;
        }
        PQclear(r);
    }

    memset(&rp, 0, sizeof(rp));
    rp.status = "ok";
    out_mark = cwpp_outbox_count(out);
    w->pending_hits_n = hits_mark = w->pending_hits_n;
    if ((rc = cwpp_pg_command(w->pg, "SAVEPOINT cmd", errstr, errstr_size)) != CWPP_OK)
        goto out;
    if (c.payload == NULL)
        rc = refuse(&rp, "The command's payload is not a JSON object.");
    else if (c.actor[0] == '\0')
        rc = refuse(&rp, "The command names no actor; every change must say who makes it.");
    else if (strcmp(c.type, "whitelist.add_alert") == 0)
        rc = cmd_add_alert(w, &c, &rp, errstr, errstr_size);
    else if (strcmp(c.type, "whitelist.remove_alerts") == 0)
        rc = cmd_remove_alerts(w, &c, &rp, errstr, errstr_size);
    else if (strcmp(c.type, "whitelist.rule_add") == 0)
        rc = cmd_rule_add(w, &c, &rp, errstr, errstr_size);
    else if (strcmp(c.type, "whitelist.rule_delete") == 0)
        rc = cmd_rule_delete(w, &c, &rp, errstr, errstr_size);
    else
        rc = refuse(&rp, "Unknown whitelist command \"%s\" (whitelist.add_alert, "
                    "whitelist.remove_alerts, whitelist.rule_add, whitelist.rule_delete).",
                    c.type);
    if (rc == CWPP_EDATA || (rc == CWPP_OK && strcmp(rp.status, "error") == 0)) {
        /* undo whatever the command did before it was refused */
        if (rc == CWPP_EDATA) {
            json_decref(rp.result);
            rp.result = NULL;
            refuse(&rp, "The database refused the change: %s", errstr);
        }
        json_decref(rp.emit_ids);
        rp.emit_ids = NULL;
        rc = cwpp_pg_command(w->pg, "ROLLBACK TO SAVEPOINT cmd", errstr, errstr_size);
        w->rules_changed = changed_before;
        w->pending_hits_n = hits_mark;
    }
    if (rc == CWPP_OK && rp.emit_ids != NULL)
        rc = reemit(w, rp.emit_ids, out, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = answer(w, &c, rp.status, rp.msg, rp.result, 1, out, errstr, errstr_size);
    if (rc == CWPP_EDATA) {
        /* the answer itself could not be stored: undo the command, answer plainly */
        cwpp_warn("command_unrecordable", "%s %s: %s", c.type, c.id, errstr);
        cwpp_outbox_truncate(out, out_mark);
        w->rules_changed = changed_before;
        w->pending_hits_n = hits_mark;
        rc = cwpp_pg_command(w->pg, "ROLLBACK TO SAVEPOINT cmd", errstr, errstr_size);
        if (rc == CWPP_OK)
            rc = answer(w, &c, "error", "The command was not applied: the database refused "
                        "to record it (its text is not valid).", NULL, 1, out, errstr,
                        errstr_size);
    }
    if (rc == CWPP_OK)
        rc = cwpp_pg_command(w->pg, "RELEASE SAVEPOINT cmd", errstr, errstr_size);
    json_decref(rp.result);
    json_decref(rp.emit_ids);
out:
    json_decref(c.payload);
    return rc == CWPP_EDATA ? CWPP_ETRANSIENT : rc;
}
