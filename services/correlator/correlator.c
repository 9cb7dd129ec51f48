/* SPDX-License-Identifier: Apache-2.0 */
/*
 * correlator.c: the correlator's configuration table and life cycle (correlator.h says
 * what the service does). corr_run builds the workers (corr_workers.c), waits for the
 * database, prepares the statements (corr_sql.c) and hands the batch callback to the
 * shared loop; each batch is one transaction per worker (corr_batch.c).
 */
#include "corr_internal.h"

#include "cwpp_command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"

const cwpp_conf_prop_t corr_props[] = {
    CWPP_COMMON_PROPS(corr_conf_t, common, "correlator", "8083"),
    {"correlator.window.ms", CWPP_CONF_INT, offsetof(corr_conf_t, window_ms), "86400000", 60000,
     2592000000LL, 0,
     "A related alert joins an open event when it occurred within this time after the "
     "event's latest alert (or before its first)."},
    {"correlator.max.future.ms", CWPP_CONF_INT, offsetof(corr_conf_t, max_future_ms),
     "86400000", 0, 31536000000LL, 0,
     "An alert whose occurrence time is further than this in the future goes to the "
     "dead-letter topic."},
    {"correlator.workers", CWPP_CONF_INT, offsetof(corr_conf_t, workers), "2", 1,
     CORR_MAX_WORKERS, 0,
     "Transactions a batch runs in parallel, each with its own database connection and the "
     "records of its own partitions (events never span partitions: the topic is keyed by "
     "account). The same events as one worker, as with instances on one group."},
    {"correlator.max.message.bytes", CWPP_CONF_INT, offsetof(corr_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Input records larger than this go to the dead-letter topic as oversized."},
    {"correlator.command.max.age.ms", CWPP_CONF_INT,
     offsetof(corr_conf_t, command_max_age_ms), "600000", 1000, 604800000LL, 0,
     "An event.merge or event.detach command issued longer ago than this is refused as "
     "stale."},
    {"assess.core.roles", CWPP_CONF_STR, offsetof(corr_conf_t, core_roles),
     "database,application", 0, 0, 0,
     "Asset roles that make an asset core (comma-separated): a core asset raises urgency."},
    {"assess.authoritative.sources", CWPP_CONF_STR, offsetof(corr_conf_t, authoritative_sources),
     "virus_scan,webshell_scan", 0, 0, 0,
     "Alert sources whose detections are authoritative (comma-separated)."},
    {"assess.probe.types", CWPP_CONF_STR, offsetof(corr_conf_t, probe_types),
     "brute_force,network_attack,port_scan,scan,abnormal_logon", 0, 0, 0,
     "Alert types that count as a probe when they open an event (as do medium and low "
     "severity alerts)."},
    {"assess.alerts.high", CWPP_CONF_INT, offsetof(corr_conf_t, alerts_high), "10", 1, 1000000,
     0, "An event with at least this many alerts, and growing, is more urgent."},
    {"assess.growth.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, growth_alerts), "3", 1,
     1000000, 0, "\"Growing\": at least this many new alerts within assess.recent.ms of the "
                 "latest one."},
    {"assess.recent.ms", CWPP_CONF_INT, offsetof(corr_conf_t, recent_ms), "3600000", 1000,
     2592000000LL, 0, "\"Recent activity\": the latest alert is at most this old."},
    {"assess.escalation.ms", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_ms), "1800000",
     1000, 2592000000LL, 0,
     "Escalation: related alerts within this time after the probe that opened the event."},
    {"assess.escalation.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_alerts), "3",
     1, 1000, 0, "Escalation: at least this many related alerts after the probe ..."},
    {"assess.escalation.types", CWPP_CONF_INT, offsetof(corr_conf_t, escalation_types), "2", 1,
     100, 0, "... of at least this many types other than the probe's: act now."},
    {"assess.ip.block.events", CWPP_CONF_INT, offsetof(corr_conf_t, ip_block_events), "3", 1,
     1000000, 0, "Recommend blocking an IP that is in at least this many events over 30 days."},
    {"assess.ip.block.alerts", CWPP_CONF_INT, offsetof(corr_conf_t, ip_block_alerts), "20", 1,
     1000000, 0, "... or in at least this many alerts over 30 days."},
    {"assess.ip.targeted.assets", CWPP_CONF_INT, offsetof(corr_conf_t, ip_targeted_assets), "3",
     2, 1000000, 0,
     "... or that attacked at least this many assets (a targeted attack)."},
};
const size_t corr_nprops = sizeof(corr_props) / sizeof(corr_props[0]);

/* ------------------------------------------------------------ life cycle */

/* One cleanup path: whatever fails, corr_destroy frees what was built (it accepts a
 * partly filled object: nvalues says which Avro values exist) and NULL is returned. */
corr_t *corr_new(const corr_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                 size_t errstr_size)
{
    static const double b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    static const char  *names[4] = {"alert", "rejected_record", "event", "notification"};
    corr_t             *c = calloc(1, sizeof(*c));
    cwpp_avro_type_t  **types[4];   /* each type and its value, in the order created */
    avro_value_t       *values[4];
    int                 i;

    if (c == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    types[0] = &c->t_alert, types[1] = &c->t_rejected, types[2] = &c->t_event;
    types[3] = &c->t_note;
    values[0] = &c->v_alert, values[1] = &c->v_rejected, values[2] = &c->v_event;
    values[3] = &c->v_note;
    c->conf = conf;
    cwpp_assess_conf_default(&c->ac);
    c->ac.core_roles = conf->core_roles;
    c->ac.authoritative_sources = conf->authoritative_sources;
    c->ac.probe_types = conf->probe_types;
    c->ac.alerts_high = conf->alerts_high;
    c->ac.growth_alerts = conf->growth_alerts;
    c->ac.recent_ms = conf->recent_ms;
    c->ac.escalation_ms = conf->escalation_ms;
    c->ac.escalation_alerts = conf->escalation_alerts;
    c->ac.escalation_types = conf->escalation_types;
    c->ac.ip_block_events = conf->ip_block_events;
    c->ac.ip_block_alerts = conf->ip_block_alerts;
    c->ac.ip_targeted_assets = conf->ip_targeted_assets;
    if ((c->pg = cwpp_pg_new(conf->common.pg_dsn, "cwpp-correlator")) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((c->fence = cwpp_fence_new(conf->common.group_id, errstr, errstr_size)) == NULL)
        goto fail;
    for (i = 0; i < 4; i++) {
        if ((*types[i] = cwpp_avro_type_builtin(names[i], errstr, errstr_size)) == NULL)
            goto fail;
        if (cwpp_avro_value_new(*types[i], values[i]) != CWPP_OK) {
            cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot set up the Avro types");
            goto fail;
        }
        c->nvalues++;
    }
#define C(n, h) cwpp_counter(metrics, n, h)
    c->m_alerts = C("cwpp_correlator_alerts_total", "Alert records applied to events.");
    c->m_recurrences = C("cwpp_correlator_recurrences_total",
                         "Alert records that were recurrences of an alert already in its event.");
    c->m_opened = C("cwpp_correlator_events_opened_total", "Security events opened.");
    c->m_joined = C("cwpp_correlator_alerts_joined_total",
                    "New alerts that joined an existing open event.");
    c->m_dead = C("cwpp_correlator_dead_letters_total", "Records sent to the dead-letter topic.");
    c->m_db_errors = C("cwpp_correlator_db_errors_total", "Batches whose transaction failed.");
    c->m_notes = C("cwpp_correlator_notifications_total", "Notifications sent.");
    c->m_snapshots = C("cwpp_correlator_snapshots_total", "Event snapshots sent.");
    c->m_replayed = C("cwpp_correlator_replayed_total",
                      "Records already applied before (redelivered after a crash): skipped.");
    c->m_repeats = C("cwpp_correlator_repeats_total",
                     "Alert records whose occurrence was applied before (emitted again "
                     "upstream): skipped.");
    c->m_left = C("cwpp_correlator_alerts_left_total",
                  "Whitelisted alerts that left their events (figures rebuilt).");
    c->m_reopened = C("cwpp_correlator_alerts_reopened_total",
                      "Handled alerts that recurred into a successor event: unhandled again.");
#undef C
    c->m_db_seconds = cwpp_histogram(metrics, "cwpp_correlator_db_seconds",
                                     "Time of one batch's transaction.", b, 9);
    cwpp_topic_name(conf->common.topic_prefix, CWPP_TOPIC_COMMANDS, c->cmd_topic,
                    sizeof(c->cmd_topic));
    if (corr_commander_new(c, metrics, errstr, errstr_size) != CWPP_OK)
        goto fail;
    return c;
fail:
    corr_destroy(c);
    return NULL;
}

void corr_destroy(corr_t *c)
{
    avro_value_t *values[4];
    size_t        i;

    if (c == NULL)
        return;
    values[0] = &c->v_alert, values[1] = &c->v_rejected, values[2] = &c->v_event;
    values[3] = &c->v_note;
    cwpp_commander_destroy(c->cmd);
    corr_evs_reset(c);
    free(c->evs);
    free(c->evlist);
    for (i = 0; i < c->items_cap; i++)
        cwpp_alert_clear(&c->items[i].alert);
    free(c->items);
    free(c->seqs);
    cwpp_fence_destroy(c->fence);
    free(c->ipstats);
    free(c->ipaccts);
    for (i = 0; i < (size_t)c->nvalues; i++)
        avro_value_decref(values[i]);
    cwpp_avro_type_destroy(c->t_alert);
    cwpp_avro_type_destroy(c->t_rejected);
    cwpp_avro_type_destroy(c->t_event);
    cwpp_avro_type_destroy(c->t_note);
    cwpp_buf_free(&c->buf);
    corr_rows_free(&c->w);
    cwpp_buf_free(&c->j_keys.b);
    cwpp_buf_free(&c->j_ids.b);
    cwpp_pg_destroy(c->pg);
    free(c);
}

/* Connects every worker and prepares its statements, retrying while the database is
 * away. 0 (ready, or stopping), or 1 after logging a configuration error. */
static int wait_database(corr_set_t *s)
{
    char errstr[512];
    int  rc, backoff = 200, w;

    for (w = 0; w < corr_set_nworkers(s) && !cwpp_service_stopping();) {
        corr_t *c = corr_set_worker(s, w);

        rc = cwpp_pg_ensure(c->pg, errstr, sizeof(errstr));
        if (rc == CWPP_OK)
            rc = corr_prepare(c, errstr, sizeof(errstr));
        if (rc == CWPP_OK) {
            atomic_store(&c->db_ok, 1);
            w++;
            continue;
        }
        if (rc == CWPP_ECONFIG) {
            cwpp_error("config_error", "%s", errstr);
            return 1;
        }
        cwpp_warn("db_wait", "%s; retrying in %d ms", errstr, backoff);
        cwpp_pg_reset(c->pg);
        c->prepared_on = NULL;
        cwpp_service_backoff(&backoff);
    }
    return 0;
}

int corr_run(const void *confp, const cwpp_service_env_t *env)
{
    const corr_conf_t            *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ALERTS_ACCEPTED, CWPP_TOPIC_COMMANDS};
    char                         errstr[512] = "out of memory";
    corr_set_t                   *s = corr_set_new(conf, env->metrics, errstr, sizeof(errstr));
    cwpp_kvlist_t                 props = {0};
    cwpp_service_env_t            e = *env;
    size_t                        i;
    int                           rc;

    if (s == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 2;
    }
    if (wait_database(s) != 0) {
        corr_set_destroy(s);
        return 1;
    }
    if (cwpp_service_stopping()) {
        corr_set_destroy(s);
        return 0;
    }
    atomic_store(corr_set_db_ok(s), 1);
    /* librdkafka queues each partition's fetch as one chunk (1 MiB by default, about
     * 1,800 alerts): a batch would hold one partition and one worker would do it all.
     * 64 KiB chunks interleave the partitions within a batch (bench/correlator.py, 2
     * workers, new incidents: 5,500 -> 6,000-7,400 alerts/s across runs; no change
     * with one worker). First in the list, so an operator's own kafka properties
     * still win. */
    rc = corr_set_nworkers(s) > 1
             ? cwpp_kvlist_set(&props, "consumer.fetch.message.max.bytes", "65536")
             : CWPP_OK;
    for (i = 0; rc == CWPP_OK && env->kafka_props != NULL && i < env->kafka_props->n; i++)
        rc = cwpp_kvlist_set(&props, env->kafka_props->items[i].key,
                             env->kafka_props->items[i].value);
    e.kafka_props = &props;
    rc = rc == CWPP_OK ? cwpp_service_run_loop("correlator", &conf->common, &e, inputs, 2,
                                               corr_set_batch, s, corr_set_db_ok(s))
                       : 2;
    cwpp_kvlist_free(&props);
    corr_set_destroy(s);
    return rc;
}
