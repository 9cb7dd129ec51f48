/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_commands.c: the analysts' commands on event membership, which the correlator
 * applies because it is the single writer of event_alerts, entity_alerts, event_edges
 * and event_keys (docs/commands.md "service correlator"; docs/correlator.md "Leaving,
 * merging and detaching"):
 *   event.merge   two to twenty open events of one account become one: the oldest (first
 *                 seen, then smallest id) survives; the others' alerts, entities and keys
 *                 move to it and they become "merged" with merged_into = the survivor;
 *   event.detach  alerts of an open event leave it into a new event.
 * Both go through libs/command (each command in a transaction of its own, applied once,
 * answered on command-results, logged with actor and remark). A command locks the events
 * it names with the statement and in the order alert batches lock them (by id, FOR
 * UPDATE), so it and a batch of another worker never lose each other's update; then the
 * touched events are rebuilt from their members (corr_members.c), assessed and written
 * as a batch writes them, and their snapshots sent once the command committed.
 */
#include "corr_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_command.h"
#include "cwpp_log.h"

#define MERGE_MIN   2
#define MERGE_MAX   20
#define DETACH_MAX  1000

/* ------------------------------------------------------------------ helpers */

/* The limit of every text of a correlator command (cwpp_alert_limits.h; docs/commands.md
 * "Limits"). */
static const cwpp_alert_text_limit_t LIMITS[] = {
    {"event_ids", CWPP_CMD_MAX_EVENT_ID},
    {"event_id", CWPP_CMD_MAX_EVENT_ID},
    {"alert_ids", CWPP_CMD_MAX_ALERT_ID},
    {"remark", CWPP_CMD_MAX_REMARK},
};

/* 1 when every text of the payload keeps its limit; else 0 with the refusal in rp. */
static int texts_fit(const cwpp_command_t *c, cwpp_command_reply_t *rp)
{
    char why[300];

    if (cwpp_alert_texts_fit(c->payload, LIMITS, sizeof(LIMITS) / sizeof(LIMITS[0]),
                             CWPP_CMD_MAX_DEFAULT, why, sizeof(why)))
        return 1;
    cwpp_command_refuse(rp, "Refused: %s; nothing was changed.", why);
    return 0;
}

/* The string members of a JSON array as a JSON text (owned), after checking: an array of
 * min..max distinct non-empty strings of at most 64 bytes. NULL with the refusal in rp. */
static char *id_list(const json_t *arr, const char *field, size_t min, size_t max,
                     cwpp_command_reply_t *rp)
{
    size_t i, j;

    if (!json_is_array(arr) || json_array_size(arr) < min || json_array_size(arr) > max) {
        cwpp_command_refuse(rp, "Refused: \"%s\" must be a list of %zu to %zu ids.", field,
                            min, max);
        return NULL;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);

        if (!json_is_string(v) || json_string_length(v) == 0) {
            cwpp_command_refuse(rp, "Refused: \"%s\" holds a value that is not an id.",
                                field);
            return NULL;
        }
        for (j = 0; j < i; j++)
            if (strcmp(json_string_value(v), json_string_value(json_array_get(arr, j))) == 0) {
                cwpp_command_refuse(rp, "Refused: \"%s\" names %.64s twice.", field,
                                    json_string_value(v));
                return NULL;
            }
    }
    return json_dumps(arr, JSON_COMPACT);
}

/* The remark of the payload ("" when none); NULL with the refusal when not a string. */
static const char *remark_of(const json_t *payload, cwpp_command_reply_t *rp)
{
    const json_t *r = json_object_get(payload, "remark");

    if (r == NULL || json_is_null(r))
        return "";
    if (!json_is_string(r)) {
        cwpp_command_refuse(rp, "Refused: \"remark\" must be a text.");
        return NULL;
    }
    return json_string_value(r);
}

/* Starts a command's work on the worker's batch state: touched events emptied, rows
 * started, the events of ids_json loaded and locked into the table (and ix). */
static int load(corr_t *cr, cwpp_corr_index_t *ix, const char *ids_json, char *errstr,
                size_t errstr_size)
{
    PGresult      *r = NULL;
    cwpp_pg_stmt_t q[1];
    int            rc;

    corr_evs_reset(cr);
    corr_rows_start(&cr->w);
    if (corr_ev_reserve(cr, 2 * MERGE_MAX + 4) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[0] = (cwpp_pg_stmt_t){"cmd_events", 1, {ids_json}, PGRES_TUPLES_OK, &r};
    if ((rc = cwpp_pg_pipeline(cr->pg, q, 1, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = corr_seed_events(cr, ix, r);
    PQclear(r);
    return rc == CWPP_OK ? CWPP_OK : cwpp_seterr(errstr, errstr_size, rc, "out of memory");
}

/* One statement with up to 3 text parameters, no rows. */
static int exec3(corr_t *cr, const char *name, int n, const char *a, const char *b,
                 const char *c3, char *errstr, size_t errstr_size)
{
    cwpp_pg_stmt_t q[1] = {{name, n, {a, b, c3}, PGRES_COMMAND_OK, NULL}};

    return cwpp_pg_pipeline(cr->pg, q, 1, errstr, errstr_size);
}

/* The touched events (marked rebuild) rebuilt, assessed and written as a batch writes
 * them; their snapshots (and notifications) queued on out. */
static int finish(corr_t *cr, int64_t now, cwpp_outbox_t *out, char *errstr,
                  size_t errstr_size)
{
    rows_t        *w = &cr->w;
    PGresult      *r_ips = NULL;
    cwpp_pg_stmt_t q[2];
    const char    *j;
    size_t         i, nq = 0;
    int            rc;

    if ((rc = corr_rebuild(cr, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (corr_event_prep(cr, w) != CWPP_OK || (j = corr_rw_text(&w->ips)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[0] = (cwpp_pg_stmt_t){CORR_SQL_IP_STATS, 1 | CWPP_PG_UNPREPARED, {j}, PGRES_TUPLES_OK, &r_ips};
    if ((rc = cwpp_pg_pipeline(cr->pg, q, 1, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = corr_read_ipstats(cr, r_ips);
    PQclear(r_ips);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    if ((rc = corr_assess(cr, w, now, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((j = corr_rw_text(&w->events)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[nq++] = (cwpp_pg_stmt_t){"events_upsert", 1, {j}, PGRES_COMMAND_OK, NULL};
    if (w->notes.n > 0) {
        const char *jn = corr_rw_text(&w->notes);

        if (jn == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        q[nq++] = (cwpp_pg_stmt_t){"notes_insert", 1, {jn}, PGRES_COMMAND_OK, NULL};
    }
    if ((rc = cwpp_pg_pipeline(cr->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        return rc;
    for (i = 0; i < cr->nevs; i++) {
        evs_t *e = cr->evlist[i];

        if (!e->touched)
            continue;
        /* the status a command gives is written after the events rows (mark_merged) */
        if ((rc = corr_build_snapshot(cr, e, now, errstr, errstr_size)) != CWPP_OK ||
            (rc = cwpp_outbox_add(out, CWPP_TOPIC_EVENTS, e->id, strlen(e->id),
                                  cr->buf.data, cr->buf.len)) != CWPP_OK)
            return rc;
        cwpp_metric_add(cr->m_snapshots, 1);
        if (e->note_kind) {
            if ((rc = corr_build_note(cr, e, errstr, errstr_size)) != CWPP_OK ||
                (rc = cwpp_outbox_add(out, CWPP_TOPIC_NOTIFICATIONS, e->id, strlen(e->id),
                                      cr->buf.data, cr->buf.len)) != CWPP_OK)
                return rc;
            cwpp_metric_add(cr->m_notes, 1);
        }
    }
    return CWPP_OK;
}

static void touch(corr_t *cr, evs_t *e)
{
    e->rebuild = e->changed = e->touched = 1;
    e->src = cr->cmd_msg;
}

/* A test hook: the process dies (as by kill -9) with the command's changes written but
 * not committed. */
static void crash_point(const char *point)
{
    if (cwpp_fault_hit(point))
        raise(SIGKILL);
}

/* ------------------------------------------------------------ event.merge */

static int cmd_merge(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                     cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    corr_t            *cr = svc;
    const json_t      *arr = json_object_get(c->payload, "event_ids");
    const char        *remark, *account;
    char              *ids = NULL, *others = NULL;
    cwpp_corr_index_t *ix = NULL;
    evs_t             *surv = NULL;
    json_t            *merged = NULL, *prior = NULL;
    size_t             i, n;
    int64_t            before_alerts, now = cwpp_now_ms();
    int                rc = CWPP_OK;

    if (!texts_fit(c, rp) || (remark = remark_of(c->payload, rp)) == NULL ||
        (ids = id_list(arr, "event_ids", MERGE_MIN, MERGE_MAX, rp)) == NULL)
        return CWPP_OK;
    n = json_array_size(arr);
    if ((ix = cwpp_corr_index_new(cr->conf->window_ms)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load(cr, ix, ids, errstr, errstr_size)) != CWPP_OK)
        goto out;
    for (i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(arr, i));

        if (corr_ev_find(cr, id) == NULL) {
            cwpp_command_refuse(rp, "Refused: event %.64s does not exist.", id);
            goto out;
        }
    }
    /* the actor's permission on every account named comes first: whether events of two
     * accounts were named is said only to whom may act on both */
    account = cr->evlist[0]->account;
    for (i = 0; i < cr->nevs; i++)
        if ((i == 0 || strcmp(cr->evlist[i]->account, account) != 0) &&
            !cwpp_commander_permit(cr->cmd, c, cr->evlist[i]->account, "event", rp, &rc,
                                   errstr, errstr_size))
            goto out;
    for (i = 1; i < cr->nevs; i++)
        if (strcmp(cr->evlist[i]->account, account) != 0) {
            cwpp_command_refuse(rp, "Refused: events %s and %s belong to different accounts; "
                                "only events of one account are merged.", cr->evlist[0]->id,
                                cr->evlist[i]->id);
            goto out;
        }
    for (i = 0; i < cr->nevs; i++) {
        evs_t *e = cr->evlist[i];

        if (cwpp_event_status_state(e->status) != CWPP_EV_OPEN) {
            cwpp_command_refuse(rp, "Refused: event %s is %s; only open events (unhandled, "
                                "handling or failed) are merged.", e->id, e->status);
            goto out;
        }
        /* the survivor: the oldest (first seen), then the smallest id */
        if (surv == NULL || corr_sgeti(e->summary, "first_ms") < corr_sgeti(surv->summary,
                                                                             "first_ms") ||
            (corr_sgeti(e->summary, "first_ms") == corr_sgeti(surv->summary, "first_ms") &&
             strcmp(e->id, surv->id) < 0))
            surv = e;
    }
    before_alerts = corr_sgeti(surv->summary, "alerts");
    if ((merged = json_array()) == NULL || (prior = json_object()) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < cr->nevs; i++)
        if (cr->evlist[i] != surv &&
            json_array_append_new(merged, json_string(cr->evlist[i]->id)) != 0) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
    if ((others = json_dumps(merged, JSON_COMPACT)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = exec3(cr, "merge_alerts", 2, surv->id, others, NULL, errstr, errstr_size)) ||
        (rc = exec3(cr, "merge_alerts_del", 1, others, NULL, NULL, errstr, errstr_size)) ||
        (rc = exec3(cr, "merge_entities", 2, surv->id, others, NULL, errstr, errstr_size)) ||
        (rc = exec3(cr, "merge_entities_del", 1, others, NULL, NULL, errstr, errstr_size)) ||
        (rc = exec3(cr, "merge_keys", 2, surv->id, others, NULL, errstr, errstr_size)))
        goto out;
    for (i = 0; i < cr->nevs; i++) {
        evs_t *e = cr->evlist[i];

        touch(cr, e);
        if (e == surv)
            continue;
        /* its status before, for the log */
        if (json_object_set_new(prior, e->id, json_string(e->status)) != 0) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(e->status, sizeof(e->status), "%s", cwpp_event_status_name(CWPP_EVS_MERGED));
        free(e->merged_into);
        if ((e->merged_into = strdup(surv->id)) == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
    }
    if ((rc = finish(cr, now, out, errstr, errstr_size)) != CWPP_OK ||
        (rc = exec3(cr, "mark_merged", 2, surv->id, others, NULL, errstr, errstr_size)))
        goto out;
    rc = cwpp_command_log(cr->pg, c->actor, c->id, "event", surv->id, surv->id, "event.merge",
                          json_pack("{s:I}", "alerts", (json_int_t)before_alerts),
                          json_pack("{s:O, s:I}", "merged", merged, "alerts",
                                    (json_int_t)corr_sgeti(surv->summary, "alerts")),
                          remark, errstr, errstr_size);
    for (i = 0; rc == CWPP_OK && i < cr->nevs; i++) {
        evs_t *e = cr->evlist[i];

        if (e == surv)
            continue;
        rc = cwpp_command_log(cr->pg, c->actor, c->id, "event", e->id, e->id, "event.merge",
                              json_pack("{s:O}", "status", json_object_get(prior, e->id)),
                              json_pack("{s:s, s:s}", "status", "merged", "merged_into",
                                        surv->id),
                              remark, errstr, errstr_size);
    }
    if (rc != CWPP_OK)
        goto out;
    crash_point("correlator_merge_kill");
    rp->result = json_pack("{s:s, s:O, s:I}", "event_id", surv->id, "merged", merged, "alerts",
                           (json_int_t)corr_sgeti(surv->summary, "alerts"));
    snprintf(rp->msg, sizeof(rp->msg), "%zu events merged into %s, which holds %lld alerts.",
             n - 1, surv->id, (long long)corr_sgeti(surv->summary, "alerts"));
    if (rp->result == NULL)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
out:
    json_decref(merged);
    json_decref(prior);
    free(ids);
    free(others);
    cwpp_corr_index_destroy(ix);
    return rc;
}

/* ----------------------------------------------------------- event.detach */

static int cmd_detach(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                      cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    corr_t            *cr = svc;
    const json_t      *jev = json_object_get(c->payload, "event_id");
    const json_t      *arr = json_object_get(c->payload, "alert_ids");
    const char        *remark;
    char              *alerts = NULL, *one = NULL, nid[CWPP_EVENT_ID_LEN + 1];
    cwpp_corr_index_t *ix = NULL;
    evs_t             *src, *dst;
    PGresult          *r_mem = NULL, *r_ex = NULL, *r_cnt = NULL;
    cwpp_pg_stmt_t     q[3];
    json_t            *jone = NULL;
    size_t             n;
    int64_t            before_alerts, now = cwpp_now_ms();
    int                rc = CWPP_OK, i;

    if (!texts_fit(c, rp) || (remark = remark_of(c->payload, rp)) == NULL)
        return CWPP_OK;
    if (!json_is_string(jev) || json_string_length(jev) == 0)
        return cwpp_command_refuse(rp, "Refused: \"event_id\" must name an event.");
    if ((alerts = id_list(arr, "alert_ids", 1, DETACH_MAX, rp)) == NULL)
        return CWPP_OK;
    n = json_array_size(arr);
    if ((jone = json_pack("[s]", json_string_value(jev))) == NULL ||
        (one = json_dumps(jone, JSON_COMPACT)) == NULL ||
        (ix = cwpp_corr_index_new(cr->conf->window_ms)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load(cr, ix, one, errstr, errstr_size)) != CWPP_OK)
        goto out;
    if ((src = corr_ev_find(cr, json_string_value(jev))) == NULL) {
        cwpp_command_refuse(rp, "Refused: event %.64s does not exist.", json_string_value(jev));
        goto out;
    }
    if (!cwpp_commander_permit(cr->cmd, c, src->account, "event", rp, &rc, errstr,
                               errstr_size))
        goto out;
    if (cwpp_event_status_state(src->status) != CWPP_EV_OPEN) {
        cwpp_command_refuse(rp, "Refused: event %s is %s; alerts are detached from open "
                            "events only (unhandled, handling or failed).", src->id,
                            src->status);
        goto out;
    }
    cwpp_corr_detach_event_id(src->account, src->id, c->id, nid);
    q[0] = (cwpp_pg_stmt_t){"detach_members", 2, {src->id, alerts}, PGRES_TUPLES_OK, &r_mem};
    q[1] = (cwpp_pg_stmt_t){"event_exists", 1, {nid}, PGRES_TUPLES_OK, &r_ex};
    q[2] = (cwpp_pg_stmt_t){"member_count", 1, {src->id}, PGRES_TUPLES_OK, &r_cnt};
    if ((rc = cwpp_pg_pipeline(cr->pg, q, 3, errstr, errstr_size)) != CWPP_OK)
        goto out;
    if ((size_t)PQntuples(r_mem) != n) {
        size_t k;

        for (k = 0; k < n; k++) {
            const char *a = json_string_value(json_array_get(arr, k));

            for (i = 0; i < PQntuples(r_mem) && strcmp(PQgetvalue(r_mem, i, 0), a) != 0; i++)
                ;
            if (i == PQntuples(r_mem))
                break;
        }
        cwpp_command_refuse(rp, "Refused: alert %.64s is not in event %s.",
                            k < n ? json_string_value(json_array_get(arr, k)) : "?", src->id);
        goto out;
    }
    if (strtoll(PQgetvalue(r_cnt, 0, 0), NULL, 10) <= (long long)n) {
        cwpp_command_refuse(rp, "Refused: these are all the alerts of event %s; at least one "
                            "must stay.", src->id);
        goto out;
    }
    if (PQntuples(r_ex) > 0) {
        cwpp_command_refuse(rp, "Refused: event %s, which these alerts would form, exists "
                            "already (status %s).", nid, PQgetvalue(r_ex, 0, 0));
        goto out;
    }
    before_alerts = corr_sgeti(src->summary, "alerts");
    if ((dst = corr_ev_add(cr, nid, src->account)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    dst->is_new = 1;
    if ((rc = exec3(cr, "detach_alerts", 3, src->id, nid, alerts, errstr, errstr_size)) ||
        (rc = exec3(cr, "detach_entities", 3, src->id, nid, alerts, errstr, errstr_size)))
        goto out;
    touch(cr, src);
    touch(cr, dst);
    if ((rc = finish(cr, now, out, errstr, errstr_size)) != CWPP_OK)
        goto out;
    rc = cwpp_command_log(cr->pg, c->actor, c->id, "event", src->id, src->id, "event.detach",
                          json_pack("{s:I}", "alerts", (json_int_t)before_alerts),
                          json_pack("{s:I, s:s, s:O}", "alerts",
                                    (json_int_t)corr_sgeti(src->summary, "alerts"),
                                    "new_event_id", nid, "alert_ids", arr),
                          remark, errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = cwpp_command_log(cr->pg, c->actor, c->id, "event", nid, nid, "event.detach", NULL,
                              json_pack("{s:s, s:O}", "detached_from", src->id, "alert_ids",
                                        arr),
                              remark, errstr, errstr_size);
    if (rc != CWPP_OK)
        goto out;
    crash_point("correlator_detach_kill");
    rp->result = json_pack("{s:s, s:s, s:I}", "event_id", src->id, "new_event_id", nid,
                           "alerts", (json_int_t)n);
    snprintf(rp->msg, sizeof(rp->msg), "%zu alerts detached from %s into the new event %s.", n,
             src->id, nid);
    if (rp->result == NULL)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
out:
    json_decref(jone);
    free(one);
    PQclear(r_mem);
    PQclear(r_ex);
    PQclear(r_cnt);
    free(alerts);
    cwpp_corr_index_destroy(ix);
    return rc;
}

/* -------------------------------------------------------------- the service */

static const cwpp_command_def_t COMMANDS[] = {
    {"event.merge", cmd_merge, CWPP_COMMAND_ACCOUNT},
    {"event.detach", cmd_detach, CWPP_COMMAND_ACCOUNT},
};

/* A command answered again (applied before, its answer stored): the snapshots of the
 * events it changed are sent again, as they stand (a crash may have come between the
 * commit and the send). */
static int redeliver(void *svc, const cwpp_command_t *c, const char *status,
                     const json_t *result, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size)
{
    corr_t            *cr = svc;
    json_t            *ids = json_array();
    cwpp_corr_index_t *ix = NULL;
    char              *j = NULL;
    const json_t      *v;
    size_t             i;
    int                rc = CWPP_OK;

    (void)c;
    if (ids == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    if (strcmp(status, "ok") != 0)
        goto out;
    if (json_is_string(v = json_object_get(result, "event_id")))
        json_array_append_new(ids, json_string(json_string_value(v)));
    if (json_is_string(v = json_object_get(result, "new_event_id")))
        json_array_append_new(ids, json_string(json_string_value(v)));
    for (i = 0; i < json_array_size(json_object_get(result, "merged")); i++)
        if (json_is_string(v = json_array_get(json_object_get(result, "merged"), i)))
            json_array_append_new(ids, json_string(json_string_value(v)));
    if (json_array_size(ids) == 0)
        goto out;
    if ((j = json_dumps(ids, JSON_COMPACT)) == NULL ||
        (ix = cwpp_corr_index_new(cr->conf->window_ms)) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = load(cr, ix, j, errstr, errstr_size)) != CWPP_OK)
        goto out;
    for (i = 0; i < cr->nevs && rc == CWPP_OK; i++) {
        evs_t *e = cr->evlist[i];

        if ((rc = corr_build_snapshot(cr, e, cwpp_now_ms(), errstr, errstr_size)) == CWPP_OK)
            rc = cwpp_outbox_add(out, CWPP_TOPIC_EVENTS, e->id, strlen(e->id), cr->buf.data,
                                 cr->buf.len);
    }
out:
    free(j);
    json_decref(ids);
    cwpp_corr_index_destroy(ix);
    return rc;
}

static int dead_letter(void *svc, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    return corr_dead_letter(svc, m, code, reason, out, errstr, errstr_size);
}

int corr_commander_new(corr_t *cr, cwpp_metrics_t *metrics, char *errstr, size_t errstr_size)
{
    cwpp_command_conf_t cc;

    memset(&cc, 0, sizeof(cc));
    cc.service = "correlator";
    cc.table = COMMANDS;
    cc.ntable = sizeof(COMMANDS) / sizeof(COMMANDS[0]);
    cc.max_id = 200;
    cc.max_age_ms = cr->conf->command_max_age_ms;
    cc.max_age_key = "correlator.command.max.age.ms";
    cc.metric = "cwpp_correlator_commands_total";
    cc.begin_sql = "BEGIN";
    cc.svc = cr;
    cc.dead_letter = dead_letter;
    cc.redeliver = redeliver;
    cr->cmd = cwpp_commander_new(&cc, cr->pg, metrics, errstr, errstr_size);
    return cr->cmd != NULL ? CWPP_OK : CWPP_ENOMEM;
}

int corr_apply_command(corr_t *cr, rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    int rc;

    if (m->len > (size_t)cr->conf->max_message_bytes)
        return dead_letter(cr, m, "oversized", "the command record is larger than "
                           "correlator.max.message.bytes", out, errstr, errstr_size);
    cr->cmd_msg = m;
    rc = cwpp_commander_apply(cr->cmd, m, out, errstr, errstr_size);
    cr->cmd_msg = NULL;
    corr_evs_reset(cr);
    return rc;
}
