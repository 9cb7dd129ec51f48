/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter.c: configuration, export jobs (the export.create command), retention, and the
 * batch and timer that run them (exporter.h).
 */
#include "ex_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_correlate.h"
#include "cwpp_log.h"
#include "cwpp_util.h"

const cwpp_conf_prop_t ex_props[] = {
    CWPP_COMMON_PROPS(ex_conf_t, common, "exporter", "8085"),
    {"exporter.max.message.bytes", CWPP_CONF_INT, offsetof(ex_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Command records larger than this go to the dead-letter topic as oversized."},
    {"export.max.events", CWPP_CONF_INT, offsetof(ex_conf_t, max_events), "1000", 1, 1000, 0,
     "Most events one export holds (docs/architecture.md \"Limits\": 1,000); an export "
     "matching more is refused with the count."},
    {"export.tmp.dir", CWPP_CONF_STR, offsetof(ex_conf_t, tmp_dir), "/tmp", 0, 0, 0,
     "Where a workbook is written before it is stored in PostgreSQL (and removed)."},
    {"exporter.tick.ms", CWPP_CONF_INT, offsetof(ex_conf_t, tick_ms), "500", 50, 60000, 0,
     "How often handled events are looked for (and retention is considered)."},
    {"handled.transactional.id", CWPP_CONF_STR, offsetof(ex_conf_t, transactional_id),
     "cwpp-exporter-handled", 0, 0, 0,
     "Kafka transactional.id of the handled-event publisher (one per deployment; the "
     "exporter holding the publisher lock uses it)."},
    {"handled.batch", CWPP_CONF_INT, offsetof(ex_conf_t, handled_batch), "200", 1, 10000, 0,
     "Handled events published in one Kafka transaction at most."},
    {"retention.days", CWPP_CONF_INT, offsetof(ex_conf_t, retention_days), "180", 1, 36500, 0,
     "Events whose latest occurrence is older than this are deleted with their alerts, "
     "chains, entities, policies and tasks (docs/architecture.md \"Limits\")."},
    {"retention.batch", CWPP_CONF_INT, offsetof(ex_conf_t, retention_batch), "500", 1, 100000,
     0, "Events deleted in one transaction (small, so the pipeline never waits long)."},
    {"retention.interval.ms", CWPP_CONF_INT, offsetof(ex_conf_t, retention_interval_ms),
     "3600000", 1000, 604800000LL, 0,
     "How often the clean-up runs; a run deletes a batch per tick until none is left."},
    {"retention.keep.activity.log", CWPP_CONF_BOOL, offsetof(ex_conf_t, retention_keep_log),
     "true", 0, 0, 0,
     "Keep the activity log of deleted events (audit). Only true is accepted: the log is "
     "append-only, its own retention is the role cwpp_retention's (docs/exporter.md)."},
    {"exporter.command.max.age.ms", CWPP_CONF_INT, offsetof(ex_conf_t, command_max_age_ms),
     "600000", 1000, 604800000LL, 0, "An export command issued longer ago than this is refused "
     "as stale."},
};
const size_t ex_nprops = sizeof(ex_props) / sizeof(ex_props[0]);

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* $1 retention days, $2 levels, $3 statuses (json lists or null), $4 since ms, $5 until ms
 * (or null), $6 ids (json list or null), $7 the accounts the actor may see (null: all);
 * $8 the most events */
#define FILTER                                                                                 \
    "FROM events e WHERE e.last_seen > now() - $1::int * interval '1 day' "                    \
    "AND ($2::json IS NULL OR e.level IN (SELECT json_array_elements_text($2::json))) "        \
    "AND ($3::json IS NULL OR e.status IN (SELECT json_array_elements_text($3::json))) "       \
    "AND ($4::bigint IS NULL OR e.last_seen >= to_timestamp($4::bigint / 1000.0)) "            \
    "AND ($5::bigint IS NULL OR e.first_seen <= to_timestamp($5::bigint / 1000.0)) "           \
    "AND ($6::json IS NULL OR e.event_id IN (SELECT json_array_elements_text($6::json))) "     \
    "AND ($7::json IS NULL OR e.account_id IN (SELECT json_array_elements_text($7::json)))"
static const char SQL_COUNT[] = "SELECT count(*) " FILTER;
static const char SQL_EVENTS[] =
    "SELECT json_build_object('event_id', e.event_id, 'account_id', e.account_id, "
    "'name', e.name, 'level', e.level, "
    "'status', e.status, 'owner', e.owner, 'stages', array_to_string(e.stages, ', '), "
    "'assets', e.asset_count, 'alerts', e.alert_count, 'first_ms', " MS("e.first_seen") ", "
    "'last_ms', " MS("e.last_seen") ", 'sources', array_to_string(e.sources, ', '), "
    "'urgency', " CWPP_SQL_URGENCY_AS_OF("e.urgency", "e.last_seen", "now()",
                                         CWPP_QUIET_HOURS_DEFAULT_S) ", "
    "'assessed_urgency', e.urgency, 'reasons', concat_ws('; ', (SELECT string_agg(r ->> "
    "'text', '; ') FROM jsonb_array_elements(e.assessment -> 'reasons') r), CASE WHEN "
    CWPP_SQL_QUIET("e.last_seen", "now()", CWPP_QUIET_HOURS_DEFAULT_S) " THEN 'no new "
    "related alerts for over " CWPP_QUIET_HOURS_DEFAULT_S " hours: lower priority' END), "
    "'handling', concat_ws('; ', "
    "(SELECT string_agg(p.name || ' ' || p.entity_type || ':' || p.entity_value || ' (' || "
    "p.state || ')', '; ' ORDER BY p.created_at) FROM handling_policies p WHERE p.event_id = "
    "e.event_id), CASE WHEN e.handled_at IS NOT NULL THEN 'handled ' || to_char(e.handled_at "
    "AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' END))::text " FILTER
    " ORDER BY e.last_seen DESC, e.event_id LIMIT $8";
static const char SQL_ASSETS[] =
    "SELECT json_build_object('event_id', e.event_id, 'asset_id', a.key, 'name', "
    "a.value ->> 'name', 'ips', (SELECT string_agg(i, ', ') FROM json_array_elements_text("
    "COALESCE(a.value -> 'ips', '[]')) i), 'role', a.value ->> 'role', 'alerts', "
    "CASE WHEN a.value ->> 'alerts' ~ '^[0-9]{1,9}$' THEN (a.value ->> 'alerts')::int "
    "ELSE 0 END)::text FROM (SELECT e.event_id, e.summary, "
    "e.last_seen " FILTER " ORDER BY e.last_seen DESC, e.event_id LIMIT $8) e, "
    "json_each(COALESCE(e.summary -> 'assets', '{}'::json)) a "
    "ORDER BY e.last_seen DESC, e.event_id, a.key";
/* The alerts of the exported events with their handling info (alerts.handling: the
 * event that handled it, how, by whom, when, the remark), in order of first occurrence. */
static const char SQL_ALERTS[] =
    "SELECT json_build_object('event_id', e.event_id, 'alert_id', a.alert_id, 'name', a.name, "
    "'type', a.type, 'severity', a.severity, 'status', a.status, 'defense', a.defense, "
    "'asset_id', a.asset_id, 'first_ms', " MS("a.first_seen") ", 'last_ms', "
    MS("a.last_seen") ", 'occurrences', a.occurrences, "
    "'handled_event', a.handling ->> 'event_id', 'handled_via', a.handling ->> 'via', "
    "'handled_by', a.handling ->> 'by', 'handled_ms', CASE WHEN a.handling ->> 'at_ms' ~ "
    "'^[0-9]{1,15}$' THEN (a.handling ->> 'at_ms')::bigint END, 'handling_remark', "
    "a.handling ->> 'remark')::text FROM (SELECT e.event_id, e.last_seen " FILTER
    " ORDER BY e.last_seen DESC, e.event_id LIMIT $8) e "
    "JOIN event_alerts ea ON ea.event_id = e.event_id JOIN alerts a ON a.alert_id = ea.alert_id "
    "ORDER BY e.last_seen DESC, e.event_id, a.first_seen, a.alert_id";
/* The 30-day figures of each entity, as entity_stats_30d defines them, looked up per
 * entity (the view aggregates every entity of every account). */
static const char SQL_ENTITIES[] =
    "SELECT json_build_object('event_id', x.event_id, 'type', x.entity_type, 'value', x.value, "
    "'events', s.events, 'alerts', s.alerts, 'tasks', k.tasks)::text FROM (SELECT DISTINCT "
    "en.event_id, en.account_id, en.entity_type, en.value, e.last_seen FROM entity_alerts en "
    "JOIN (SELECT e.event_id, e.last_seen " FILTER " ORDER BY e.last_seen DESC, e.event_id "
    "LIMIT $8) e ON e.event_id = en.event_id) x, "
    "LATERAL (SELECT count(DISTINCT y.event_id) AS events, count(DISTINCT y.alert_id) AS alerts "
    "FROM entity_alerts y WHERE y.account_id = x.account_id AND y.entity_type = x.entity_type "
    "AND y.value = x.value AND y.last_seen > now() - interval '30 days') s, "
    "LATERAL (SELECT count(*) AS tasks FROM handling_tasks t WHERE t.account_id = x.account_id "
    "AND t.entity_type = x.entity_type AND t.entity_value = x.value "
    "AND t.created_at > now() - interval '30 days') k "
    "ORDER BY x.last_seen DESC, x.event_id, x.entity_type, x.value";
/* the actor: role, disabled, and the accounts granted */
static const char SQL_ACTOR[] =
    "SELECT u.role, u.disabled_at IS NOT NULL, COALESCE((SELECT json_agg(a.account_id) FROM "
    "user_accounts a WHERE a.user_name = u.user_name), '[]')::text FROM users u "
    "WHERE u.user_name = $1";
/* $6 the accounts of the exported events (a JSON list): who may see the job */
static const char SQL_JOB[] =
    "INSERT INTO export_jobs (job_id, actor, filters, state, events, message, finished_at, "
    "accounts) VALUES ($1, $2, $3::jsonb, 'done', $4::int, $5, now(), "
    "ARRAY(SELECT DISTINCT a FROM json_array_elements_text($6::json) a ORDER BY a))";
static const char SQL_FILE[] =
    "INSERT INTO export_files (job_id, file_name, bytes, sha256) VALUES ($1, $2, $3, "
    "encode(sha256($3), 'hex')) RETURNING sha256";
static const char SQL_RETENTION[] =
    "WITH old AS (SELECT ev.event_id FROM events ev WHERE ev.last_seen < now() - $1::int * "
    "interval '1 day' AND NOT EXISTS (SELECT 1 FROM handling_policies lp WHERE "
    "lp.event_id = ev.event_id AND NOT lp.rolled_back AND lp.state IN ('applying', 'active', "
    "'expiring')) ORDER BY ev.last_seen LIMIT $2 FOR UPDATE OF ev SKIP LOCKED), "
    "ea AS (DELETE FROM event_alerts x USING old WHERE x.event_id = old.event_id "
    "RETURNING x.alert_id), "
    "k AS (DELETE FROM event_keys x USING old WHERE x.event_id = old.event_id), "
    "en AS (DELETE FROM entity_alerts x USING old WHERE x.event_id = old.event_id), "
    "ed AS (DELETE FROM event_edges x USING old WHERE x.event_id = old.event_id), "
    "n AS (DELETE FROM notifications x USING old WHERE x.event_id = old.event_id), "
    "t AS (DELETE FROM handling_tasks x USING old WHERE x.event_id = old.event_id), "
    "p AS (DELETE FROM handling_policies x USING old WHERE x.event_id = old.event_id), "
    "h AS (DELETE FROM handled_events x USING old WHERE x.event_id = old.event_id AND "
    "x.seq <= (SELECT COALESCE(min(handled_seq), 0) FROM exporter_state)), "
    "e AS (DELETE FROM events x USING old WHERE x.event_id = old.event_id RETURNING 1), "
    "a AS (DELETE FROM alerts x WHERE x.alert_id IN (SELECT alert_id FROM ea) AND NOT EXISTS "
    "(SELECT 1 FROM event_alerts y WHERE y.alert_id = x.alert_id AND y.event_id NOT IN "
    "(SELECT event_id FROM old)) RETURNING 1) "
    "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM a)";

/* ------------------------------------------------------------------ helpers */

typedef cwpp_command_t       cmd_t;
typedef cwpp_command_reply_t reply_t;

/* A progress record, sent at once (not with the batch): the job is still running. */
static void progress(ex_t *x, const cmd_t *c, int percent, const char *what)
{
    char              errstr[256], msg[200], rj[64];
    const cwpp_buf_t *b;

    if (x->progress == NULL)
        return;
    snprintf(msg, sizeof(msg), "%s", what);
    snprintf(rj, sizeof(rj), "{\"percent\": %d}", percent);
    if ((b = cwpp_commander_encode(x->cmd, c, "progress", msg, rj, errstr, sizeof(errstr))) ==
        NULL)
        return;
    rd_kafka_producev(x->progress, RD_KAFKA_V_TOPIC(x->results_topic),
                      RD_KAFKA_V_KEY(c->id, strlen(c->id)), RD_KAFKA_V_VALUE(b->data, b->len),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    rd_kafka_poll(x->progress, 0);
}

/* ------------------------------------------------------------- export jobs */

typedef struct filt {
    char *levels, *statuses, *ids; /* JSON lists or NULL */
    char  since[32], until[32];
    int   has_since, has_until;
} filt_t;

static void filt_free(filt_t *f)
{
    free(f->levels);
    free(f->statuses);
    free(f->ids);
}

/* A list of allowed words (or NULL when absent); else why in msg. */
static int word_list(const json_t *p, const char *key, const char *const *ok, size_t nok,
                     char **out, char *msg, size_t msgsz)
{
    const json_t *a = json_object_get(p, key);
    size_t        i, k;

    *out = NULL;
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 10000) {
        snprintf(msg, msgsz, "\"%s\" must be a list of 1 to 10000 values.", key);
        return -1;
    }
    for (i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        int         found = nok == 0 && s != NULL && s[0] != '\0' &&
                        strlen(s) <= CWPP_CMD_MAX_EVENT_ID;

        for (k = 0; s != NULL && k < nok; k++)
            found |= strcmp(s, ok[k]) == 0;
        if (!found) {
            if (nok == 4 && strcmp(key, "levels") == 0)
                snprintf(msg, msgsz, "\"%.40s\" is not a level (critical, high, medium, low).",
                         s != NULL ? s : "");
            else if (nok > 0)
                snprintf(msg, msgsz, "\"%.40s\" is not a status (unhandled, handling, handled, "
                         "failed).", s != NULL ? s : "");
            else
                snprintf(msg, msgsz, "Event id %zu is not a text of 1 to %d bytes.", i + 1,
                         CWPP_CMD_MAX_EVENT_ID);
            return -1;
        }
    }
    *out = json_dumps(a, JSON_COMPACT);
    return *out != NULL ? 0 : -1;
}

static int time_of(const json_t *p, const char *key, char *out, size_t size, int *has,
                   int64_t *ms, char *msg, size_t msgsz)
{
    const json_t *v = json_object_get(p, key);

    *has = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 253402300799999LL) {
        snprintf(msg, msgsz, "\"%s\" must be a time in milliseconds since 1970.", key);
        return -1;
    }
    *ms = json_integer_value(v);
    snprintf(out, size, "%" PRId64, *ms);
    *has = 1;
    return 0;
}

static int parse_filters(const json_t *p, filt_t *f, char *msg, size_t msgsz)
{
    static const char *const levels[] = {"critical", "high", "medium", "low"};
    const char              *statuses[CWPP_EVS__COUNT];
    int64_t                  since = 0, until = 0;
    const char              *key;
    json_t                  *v;

    memset(f, 0, sizeof(*f));
    for (int k = 0; k < CWPP_EVS__COUNT; k++)
        statuses[k] = cwpp_event_status_name((cwpp_event_status_t)k);
    json_object_foreach((json_t *)p, key, v) {
        if (strcmp(key, "levels") != 0 && strcmp(key, "statuses") != 0 &&
            strcmp(key, "since_ms") != 0 && strcmp(key, "until_ms") != 0 &&
            strcmp(key, "ids") != 0) {
            snprintf(msg, msgsz, "Unknown filter \"%.40s\" (levels, statuses, since_ms, "
                     "until_ms, ids).", key);
            return -1;
        }
    }
    if (word_list(p, "levels", levels, 4, &f->levels, msg, msgsz) != 0 ||
        word_list(p, "statuses", statuses, CWPP_EVS__COUNT, &f->statuses, msg, msgsz) != 0 ||
        word_list(p, "ids", NULL, 0, &f->ids, msg, msgsz) != 0 ||
        time_of(p, "since_ms", f->since, sizeof(f->since), &f->has_since, &since, msg,
                msgsz) != 0 ||
        time_of(p, "until_ms", f->until, sizeof(f->until), &f->has_until, &until, msg,
                msgsz) != 0)
        return -1;
    if (f->has_since && f->has_until && until < since) {
        snprintf(msg, msgsz, "The end of the period (until) is before its start (since).");
        return -1;
    }
    return 0;
}

/* Rows of a one-column JSON text query as a JSON array (NULL on bad rows). */
static json_t *rows(PGresult *r)
{
    json_t *a = json_array();
    int     i;

    for (i = 0; a != NULL && i < PQntuples(r); i++) {
        json_error_t jerr;
        json_t      *o = json_loads(PQgetvalue(r, i, 0), 0, &jerr);

        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The accounts c's actor may export, a JSON list text (*accounts, malloc'd), or NULL for
 * an admin (every account): an export shows alerts, assets and IPs. libs/command checked
 * that the actor is a known, enabled user. */
static int actor_accounts(ex_t *x, const cmd_t *c, char **accounts, char *errstr,
                          size_t errstr_size)
{
    const char *pa[1] = {c->actor};
    PGresult   *r = NULL;
    int         rc;

    *accounts = NULL;
    if ((rc = cwpp_pg_query(x->pg, SQL_ACTOR, 1, pa, PGRES_TUPLES_OK, &r, errstr,
                            errstr_size)) != CWPP_OK)
        return rc;
    if (PQntuples(r) == 1 && PQgetvalue(r, 0, 1)[0] != 't' &&
        strcmp(PQgetvalue(r, 0, 0), "admin") == 0) {
        PQclear(r);
        return CWPP_OK;
    }
    /* checked again here, as the export's own guard: no row (removed since the check) or
     * a disabled user holds no account at all */
    *accounts = strdup(PQntuples(r) == 1 && PQgetvalue(r, 0, 1)[0] != 't' ?
                       PQgetvalue(r, 0, 2) : "[]");
    PQclear(r);
    return *accounts != NULL ? CWPP_OK : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM,
                                                     "out of memory");
}

/* The four sheets {"events", "assets", "entities", "alerts"} of the filter p, in this
 * transaction's snapshot, into *doc. */
static int read_doc(ex_t *x, const cmd_t *c, const char *const *p, json_t **doc, char *errstr,
                    size_t errstr_size)
{
    PGresult *re = NULL, *ra = NULL, *rn = NULL, *rl = NULL;
    json_t   *je, *ja, *jn, *jl;
    int       rc;

    *doc = NULL;
    progress(x, c, 20, "reading events");
    if ((rc = cwpp_pg_query(x->pg, SQL_EVENTS, 8, p, PGRES_TUPLES_OK, &re, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    progress(x, c, 40, "reading affected assets");
    if ((rc = cwpp_pg_query(x->pg, SQL_ASSETS, 8, p, PGRES_TUPLES_OK, &ra, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    progress(x, c, 60, "reading entities and their 30-day counts");
    if ((rc = cwpp_pg_query(x->pg, SQL_ENTITIES, 8, p, PGRES_TUPLES_OK, &rn, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    progress(x, c, 70, "reading alerts and their handling");
    if ((rc = cwpp_pg_query(x->pg, SQL_ALERTS, 8, p, PGRES_TUPLES_OK, &rl, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    je = rows(re);
    ja = rows(ra);
    jn = rows(rn);
    jl = rows(rl);
    if (je != NULL && ja != NULL && jn != NULL && jl != NULL)
        *doc = json_pack("{s:o, s:o, s:o, s:o}", "events", je, "assets", ja, "entities", jn,
                         "alerts", jl);
    else {
        json_decref(je);
        json_decref(ja);
        json_decref(jn);
        json_decref(jl);
    }
    if (*doc == NULL)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot read the rows");
out:
    PQclear(re);
    PQclear(ra);
    PQclear(rn);
    PQclear(rl);
    return rc;
}

/* Stores the job and its workbook (len bytes); *result is the answer's result. */
static int store_job(ex_t *x, const cmd_t *c, int64_t count, const json_t *doc,
                     const unsigned char *bytes, size_t len, int64_t t0, json_t **result,
                     char *errstr, size_t errstr_size)
{
    char       *fj = json_dumps(c->payload, JSON_COMPACT), *aj = NULL;
    char        fname[96], nbuf[24];
    const char *pj[6] = {c->id, c->actor, fj, nbuf, "", NULL};
    json_t     *accounts = json_array();
    json_t     *evs = json_object_get(doc, "events");
    size_t      i;
    const char *pf[3] = {c->id, fname, (const char *)bytes};
    int         lens[3] = {0, 0, (int)len}, fmts[3] = {0, 0, 1}, rc;
    PGresult   *rf;

    snprintf(nbuf, sizeof(nbuf), "%" PRId64, count);
    snprintf(fname, sizeof(fname), "cwpp-events-%s.xlsx", c->id);
    /* the accounts whose events the workbook holds (SQL_JOB makes them distinct) */
    for (i = 0; accounts != NULL && i < json_array_size(evs); i++)
        json_array_append(accounts, json_object_get(json_array_get(evs, i), "account_id"));
    if (accounts != NULL)
        aj = json_dumps(accounts, JSON_COMPACT);
    json_decref(accounts);
    pj[5] = aj;
    rc = fj != NULL && aj != NULL
             ? cwpp_pg_query(x->pg, SQL_JOB, 6, pj, PGRES_COMMAND_OK, NULL, errstr, errstr_size)
             : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    free(fj);
    free(aj);
    if (rc != CWPP_OK)
        return rc;
    /* the workbook as binary: not cwpp_pg_query, whose parameters are texts */
    rf = PQexecParams(cwpp_pg_conn(x->pg), SQL_FILE, 3, NULL, pf, lens, fmts, 0);
    if ((rc = cwpp_pg_check(x->pg, rf, PGRES_TUPLES_OK, "exporter", errstr, errstr_size))) {
        PQclear(rf);
        return rc;
    }
    *result = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:I}", "job_id", c->id,
                        "file_name", fname, "events", (json_int_t)count, "assets",
                        (json_int_t)json_array_size(json_object_get(doc, "assets")), "entities",
                        (json_int_t)json_array_size(json_object_get(doc, "entities")), "bytes",
                        (json_int_t)len, "sha256", PQgetvalue(rf, 0, 0), "millis",
                        (json_int_t)(cwpp_mono_ms() - t0));
    PQclear(rf);
    return *result != NULL ? CWPP_OK : cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM,
                                                   "out of memory");
}

/* The limit of every text of an export command (cwpp_alert_limits.h; docs/commands.md
 * "Limits"): event ids; levels and statuses are then one of a few words. */
static const cwpp_alert_text_limit_t LIMITS[] = {
    {"ids", CWPP_CMD_MAX_EVENT_ID},
};

/* export.create: counts, reads the three sheets in this transaction's snapshot, builds and
 * stores the workbook. */
static int cmd_export(void *svc, const cwpp_command_t *c, reply_t *rp, cwpp_outbox_t *out,
                      char *errstr, size_t errstr_size)
{
    ex_t          *x = svc;
    filt_t         f;
    char           days[16], lim[16], *accounts = NULL, why[300];
    const char    *p[8];
    PGresult      *r = NULL;
    json_t        *doc = NULL;
    unsigned char *bytes = NULL;
    size_t         len = 0;
    int64_t        count, t0 = cwpp_mono_ms();
    int            rc = CWPP_OK;

    (void)out;
    memset(&f, 0, sizeof(f));
    if (!cwpp_alert_texts_fit(c->payload, LIMITS, sizeof(LIMITS) / sizeof(LIMITS[0]),
                              CWPP_CMD_MAX_DEFAULT, why, sizeof(why))) {
        rc = cwpp_command_refuse(rp, "Refused: %s; nothing was exported.", why);
        goto out;
    }
    if (parse_filters(c->payload, &f, rp->msg, sizeof(rp->msg)) != 0) {
        rp->status = "error";
        goto out;
    }
    if ((rc = actor_accounts(x, c, &accounts, errstr, errstr_size)) != CWPP_OK)
        goto out;
    snprintf(days, sizeof(days), "%lld", (long long)x->conf->retention_days);
    snprintf(lim, sizeof(lim), "%lld", (long long)x->conf->max_events);
    p[0] = days;
    p[1] = f.levels;
    p[2] = f.statuses;
    p[3] = f.has_since ? f.since : NULL;
    p[4] = f.has_until ? f.until : NULL;
    p[5] = f.ids;
    p[6] = accounts;
    p[7] = lim;
    progress(x, c, 5, "counting the events that match");
    if ((rc = cwpp_pg_query(x->pg, SQL_COUNT, 7, p, PGRES_TUPLES_OK, &r, errstr,
                            errstr_size)) != CWPP_OK)
        goto out;
    count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if (count > x->conf->max_events) {
        rc = cwpp_command_refuse(rp, "%" PRId64 " events match, more than the %lld an export "
                                 "may hold; narrow the filters (level, status, time, ids).",
                                 count, (long long)x->conf->max_events);
        goto out;
    }
    if (count == 0) {
        rc = cwpp_command_refuse(rp, "No event matches the filters (events of the last %lld "
                                 "days, of the accounts you may act on, only).",
                                 (long long)x->conf->retention_days);
        goto out;
    }
    if ((rc = read_doc(x, c, p, &doc, errstr, errstr_size)) != CWPP_OK)
        goto out;
    progress(x, c, 80, "writing the workbook");
    if (ex_workbook(x->conf, doc, &bytes, &len, errstr, errstr_size) != CWPP_OK) {
        rc = cwpp_command_refuse(rp, "The workbook could not be written: %s", errstr);
        goto out;
    }
    if ((rc = store_job(x, c, count, doc, bytes, len, t0, &rp->result, errstr,
                        errstr_size)) != CWPP_OK)
        goto out;
    snprintf(rp->msg, sizeof(rp->msg), "Export %s: %" PRId64 " events, %zu affected assets, %zu "
             "entities; %zu bytes (cwppctl export download %s --out FILE.xlsx).", c->id, count,
             json_array_size(json_object_get(doc, "assets")),
             json_array_size(json_object_get(doc, "entities")), len, c->id);
    cwpp_metric_observe(x->m_export_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    progress(x, c, 95, "storing the workbook"); /* the answer, after the commit, ends it */
out:
    PQclear(r);
    json_decref(doc);
    free(bytes);
    free(accounts);
    filt_free(&f);
    return rc;
}

static int dead_letter(void *svc, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    ex_t *x = svc;

    cwpp_warn("dead_letter", "%s at %s[%" PRId32 "]@%" PRId64 ": %s", code,
              rd_kafka_topic_name(m->rkt), m->partition, m->offset, reason);
    cwpp_metric_add(x->m_dead, 1);
    return cwpp_service_dead_letter(x->t_rejected, &x->v_rejected, &x->buf, "exporter", m, code,
                                    reason, out, errstr, errstr_size);
}

static const cwpp_command_def_t COMMANDS[] = {
    {"export.create", cmd_export, CWPP_COMMAND_USER},
};

static cwpp_commander_t *commander_new(ex_t *x, char *errstr, size_t errstr_size)
{
    cwpp_command_conf_t cc;

    memset(&cc, 0, sizeof(cc));
    cc.service = "exporter";
    cc.table = COMMANDS;
    cc.ntable = sizeof(COMMANDS) / sizeof(COMMANDS[0]);
    cc.max_id = 64; /* ids name the workbook file */
    cc.max_age_ms = x->conf->command_max_age_ms;
    cc.max_age_key = "exporter.command.max.age.ms";
    cc.metric = "cwpp_exporter_exports_total";
    cc.begin_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"; /* one snapshot for the sheets */
    cc.svc = x;
    cc.dead_letter = dead_letter;
    return cwpp_commander_new(&cc, x->pg, x->metrics, errstr, errstr_size);
}

/* One command in its own transaction. */
static int apply_command(ex_t *x, const rd_kafka_message_t *m, cwpp_outbox_t *out,
                         char *errstr, size_t errstr_size)
{
    if (m->len > (size_t)x->conf->max_message_bytes)
        return dead_letter(x, m, "oversized", "the command record is larger than "
                           "exporter.max.message.bytes", out, errstr, errstr_size);
    return cwpp_commander_apply(x->cmd, m, out, errstr, errstr_size);
}

/* ---------------------------------------------------------------- retention */

static int retention(ex_t *x, int *more, char *errstr, size_t errstr_size)
{
    char        days[16], batch[16];
    const char *p[2] = {days, batch};
    int         round, rc = CWPP_OK;
    int64_t     total = 0;

    snprintf(days, sizeof(days), "%lld", (long long)x->conf->retention_days);
    snprintf(batch, sizeof(batch), "%lld", (long long)x->conf->retention_batch);
    *more = 0;
    for (round = 0; round < 1 && !cwpp_service_stopping(); round++) { /* a batch per tick */
        PGresult *r = NULL;
        int64_t   ne, na;

        if ((rc = cwpp_pg_query(x->pg, SQL_RETENTION, 2, p, PGRES_TUPLES_OK, &r, errstr,
                       errstr_size)) != CWPP_OK)
            break;
        ne = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        na = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        cwpp_metric_add(x->m_retention_events, ne);
        cwpp_metric_add(x->m_retention_alerts, na);
        total += ne;
        *more = ne >= x->conf->retention_batch;
    }
    if (total > 0)
        cwpp_info("retention", "deleted %" PRId64 " event(s) last seen more than %lld days ago",
                  total, (long long)x->conf->retention_days);
    return rc;
}

/* -------------------------------------------------------------------- batch */

static int ex_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                    char *errstr, size_t errstr_size)
{
    ex_t  *x = opaque;
    size_t i;
    int    rc = cwpp_pg_ensure(x->pg, errstr, errstr_size);

    for (i = 0; rc == CWPP_OK && i < n; i++)
        rc = apply_command(x, msgs[i], out, errstr, errstr_size);
    if (rc == CWPP_OK && n == 0) {
        /* the timer: the handled-event stream, and retention when due */
        if (ex_publish_handled(x, errstr, errstr_size) != CWPP_OK)
            cwpp_warn("handled_publish", "%s; trying again at the next tick", errstr);
        if (cwpp_mono_ms() >= x->next_retention_ms) {
            /* a failing clean-up must not hold up exports: it is tried again in a minute */
            int more = 0;

            if (retention(x, &more, errstr, errstr_size) == CWPP_OK) {
                /* the next batch at the next tick while old events are left */
                x->next_retention_ms = more ? 0 : cwpp_mono_ms() + x->conf->retention_interval_ms;
            } else {
                cwpp_warn("retention_failed", "%s; trying again in 60 s", errstr);
                cwpp_metric_add(x->m_db_errors, 1);
                x->next_retention_ms = cwpp_mono_ms() + 60000;
                if (PQstatus(cwpp_pg_conn(x->pg)) != CONNECTION_OK)
                    cwpp_pg_reset(x->pg);
            }
        }
    }
    if (rc != CWPP_OK) {
        if (rc != CWPP_EDATA) /* refused data is no outage */
            atomic_store(&x->db_ok, 0);
        cwpp_metric_add(x->m_db_errors, 1);
        if (PQstatus(cwpp_pg_conn(x->pg)) != CONNECTION_OK)
            cwpp_pg_reset(x->pg);
        /* the loop applies a refused batch record by record and dead-letters the record
         * the database refuses on its own */
        return rc == CWPP_EDATA && n > 0 ? CWPP_EDATA : CWPP_ETRANSIENT;
    }
    atomic_store(&x->db_ok, 1);
    return CWPP_OK;
}

/* ---------------------------------------------------------------- lifecycle */

static void ex_destroy(ex_t *x)
{
    if (x == NULL)
        return;
    ex_publisher_close(x);
    if (x->progress != NULL) {
        rd_kafka_flush(x->progress, 2000);
        rd_kafka_destroy(x->progress);
    }
    if (x->nvalues > 1)
        avro_value_decref(&x->v_handled);
    if (x->nvalues > 0)
        avro_value_decref(&x->v_rejected);
    cwpp_commander_destroy(x->cmd);
    cwpp_avro_type_destroy(x->t_rejected);
    cwpp_avro_type_destroy(x->t_handled);
    cwpp_pg_destroy(x->pg);
    cwpp_pg_destroy(x->pub_pg);
    cwpp_buf_free(&x->buf);
    free(x);
}

/* An exporter ready to run, or NULL with errstr: one cleanup path (ex_destroy of the
 * half-built object, which undoes exactly what was made). */
static ex_t *ex_new(const ex_conf_t *conf, const cwpp_service_env_t *env, char *errstr,
                    size_t errstr_size)
{
    ex_t            *x = calloc(1, sizeof(*x));
    rd_kafka_conf_t *kc;

    if (x == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    x->conf = conf;
    x->metrics = env->metrics;
    x->kafka_props = env->kafka_props;
    if ((x->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-exporter")) == NULL ||
        (x->pub_pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-exporter-publisher")) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((x->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size)) ==
            NULL ||
        (x->t_handled = cwpp_avro_type_builtin("handled_event", errstr, errstr_size)) == NULL ||
        (x->cmd = commander_new(x, errstr, errstr_size)) == NULL)
        goto fail;
    if (cwpp_avro_value_new(x->t_rejected, &x->v_rejected) != 0)
        goto fail_values;
    x->nvalues = 1;
    if (cwpp_avro_value_new(x->t_handled, &x->v_handled) != 0)
        goto fail_values;
    x->nvalues = 2;
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_COMMAND_RESULTS, x->results_topic,
                    sizeof(x->results_topic));
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_EVENTS_HANDLED, x->handled_topic,
                    sizeof(x->handled_topic));
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_EVENTS_HANDLED_OCSF, x->ocsf_topic,
                    sizeof(x->ocsf_topic));
    if ((kc = cwpp_kafka_conf(conf->common.kafka_brokers, env->kafka_props, errstr,
                              errstr_size)) == NULL)
        goto fail;
    rd_kafka_conf_set(kc, "linger.ms", "5", NULL, 0);
    if ((x->progress = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, errstr_size)) == NULL) {
        rd_kafka_conf_destroy(kc);
        goto fail;
    }
#define C(n, h) cwpp_counter(env->metrics, n, h)
    x->m_dead = C("cwpp_exporter_dead_letters_total", "Records sent to the dead-letter topic.");
    x->m_db_errors = C("cwpp_exporter_db_errors_total", "Batches or ticks whose database work "
                       "failed.");
    x->m_handled = C("cwpp_exporter_handled_published_total",
                     "Handled events published (each once, in Kafka transactions).");
    x->m_txn_aborts = C("cwpp_exporter_handled_transactions_aborted_total",
                        "Publisher transactions aborted (published again later).");
    x->m_gaps_skipped = C("cwpp_exporter_handled_gaps_skipped_total",
                          "Missing seqs passed over: their transactions rolled back.");
    x->m_unpublishable = C("cwpp_exporter_handled_unpublishable_total",
                           "Handled events that can never be published as they are (too "
                           "large, or not fitting the schema): logged and passed over.");
    x->m_retention_events = C("cwpp_exporter_retention_events_deleted_total",
                              "Events deleted by retention.");
    x->m_retention_alerts = C("cwpp_exporter_retention_alerts_deleted_total",
                              "Alerts deleted with them.");
#undef C
    x->m_handled_seq = cwpp_gauge(env->metrics, "cwpp_exporter_handled_seq",
                                  "Highest seq published to events.handled.");
    x->m_publisher = cwpp_gauge(env->metrics, "cwpp_exporter_is_publisher",
                                "1 when this exporter holds the publisher lock.");
    {
        static const double b[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10};

        x->m_export_seconds = cwpp_histogram(env->metrics, "cwpp_exporter_export_seconds",
                                             "Time of one export job.", b, 8);
    }
    return x;
fail_values:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot make the Avro values");
fail:
    ex_destroy(x);
    return NULL;
}

int ex_check(const void *confp, char *errstr, size_t errstr_size)
{
    const ex_conf_t *conf = confp;

    /* Migration 019 took the exporter's DELETE right on activity_log away (an audit trail
     * the audited services can erase is none): the old "false" would only fail every
     * clean-up run, so it is refused here, once, with the reason. */
    if (!conf->retention_keep_log)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "retention.keep.activity.log = false is no longer supported: the "
                           "activity log is append-only; its retention is done as the role "
                           "cwpp_retention (docs/exporter.md, \"Retention\")");
    return CWPP_OK;
}

int ex_run(const void *confp, const cwpp_service_env_t *env)
{
    const ex_conf_t              *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_COMMANDS};
    char                          errstr[512] = "out of memory";
    ex_t                         *x = ex_new(conf, env, errstr, sizeof(errstr));
    int                           rc, backoff = 200;

    if (x == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 2;
    }
    while (!cwpp_service_stopping() &&
           (rc = cwpp_pg_ensure(x->pg, errstr, sizeof(errstr))) != CWPP_OK) {
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_pg_reset(x->pg);
        cwpp_service_backoff(&backoff);
    }
    if (cwpp_service_stopping()) {
        ex_destroy(x);
        return 0;
    }
    atomic_store(&x->db_ok, 1);
    x->next_retention_ms = cwpp_mono_ms();
    rc = cwpp_service_run_loop_tick("exporter", &conf->common, env, inputs, 1, ex_batch, x,
                                    &x->db_ok, (int)conf->tick_ms);
    ex_destroy(x);
    return rc;
}
