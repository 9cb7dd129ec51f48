-- SPDX-License-Identifier: Apache-2.0
-- The exporter (issue 6): export jobs and their workbooks, the queue of handled events for
-- downstream consumers, and what retention needs. docs/exporter.md explains them.
SET search_path = cwpp;
SET ROLE cwpp_owner;

-- An event that became handled, in the order it did: written by the responder in the same
-- transaction as the status change, so none is missed; the exporter publishes each once
-- to <prefix>events.handled (its Kafka transactions carry seq, from which it resumes).
CREATE TABLE handled_events (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text        NOT NULL UNIQUE,
    handled_at timestamptz NOT NULL DEFAULT now()
);

-- Events handled before this migration are queued too, in the order they were handled.
INSERT INTO handled_events (event_id, handled_at)
SELECT event_id, COALESCE(handled_at, status_changed_at, updated_at) FROM events
 WHERE status = 'handled' ORDER BY COALESCE(handled_at, status_changed_at, updated_at), event_id;

-- Where each handled-event publisher (one per transactional id) is: written after each of
-- its Kafka transactions, a lower bound used with the position kept in Kafka itself.
CREATE TABLE exporter_state (
    transactional_id text        PRIMARY KEY,
    handled_seq      bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Export jobs (one per export command, job_id = the command id) and their workbooks.
CREATE TABLE export_jobs (
    job_id      text        PRIMARY KEY,
    actor       text        NOT NULL,
    filters     jsonb       NOT NULL,
    state       text        NOT NULL CHECK (state IN ('done', 'failed')),
    events      int         NOT NULL DEFAULT 0,
    message     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX export_jobs_created ON export_jobs (created_at DESC);
CREATE TABLE export_files (
    job_id     text        PRIMARY KEY,
    file_name  text        NOT NULL,
    bytes      bytea       NOT NULL,
    sha256     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Retention finds old events by their latest occurrence (events_last_seen exists); the
-- rows hanging off an event are found by event (these indexes exist already or are here).
CREATE INDEX IF NOT EXISTS event_edges_event ON event_edges (event_id);
CREATE INDEX IF NOT EXISTS entity_alerts_event ON entity_alerts (event_id);

RESET ROLE;
-- The responder records each handled event.
GRANT SELECT, INSERT ON handled_events TO cwpp_responder;
-- The exporter: reads everything an export and a handled record show, owns its tables, and
-- deletes what retention removes.
GRANT SELECT ON handled_events, export_jobs, export_files, exporter_state TO cwpp_reader;
GRANT SELECT ON events, alerts, event_alerts, entity_alerts, event_edges, event_keys,
                notifications, handling_policies, handling_tasks, activity_log, handled_events,
                entity_stats_30d, users, commands_applied TO cwpp_exporter;
GRANT SELECT, INSERT, UPDATE ON export_jobs, export_files, exporter_state TO cwpp_exporter;
-- who may export which accounts' events
GRANT SELECT ON user_accounts TO cwpp_exporter;
GRANT INSERT ON commands_applied TO cwpp_exporter;
-- (the clean-up locks the events it deletes, SKIP LOCKED, which needs an UPDATE right)
GRANT UPDATE (updated_at) ON events TO cwpp_exporter;
GRANT DELETE ON events, alerts, event_alerts, entity_alerts, event_edges, event_keys,
                notifications, handling_policies, handling_tasks, handled_events, activity_log
    TO cwpp_exporter;
