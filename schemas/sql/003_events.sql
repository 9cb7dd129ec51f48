-- SPDX-License-Identifier: Apache-2.0
-- Security events (correlator, issue 4): the overview columns, the urgency assessment,
-- the alerts with the reason each joined, entities, the provenance graph, the keys that
-- decide which event an alert joins, and notifications.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE events
    ADD COLUMN alert_count   int         NOT NULL DEFAULT 0,
    ADD COLUMN occurrences   bigint      NOT NULL DEFAULT 0,
    ADD COLUMN asset_count   int         NOT NULL DEFAULT 0,
    ADD COLUMN stages        text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN sources       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN owner         text,
    ADD COLUMN predecessor   text,
    ADD COLUMN urgency       text        NOT NULL DEFAULT 'low'
                             CHECK (urgency IN ('act_now', 'high', 'medium', 'low')),
    -- {"reasons": [{"code", "text"}], "recommendations": [{"action", "entity_type",
    --  "entity_value", "reason"}], "assessed_at": ms}
    ADD COLUMN assessment    jsonb       NOT NULL DEFAULT '{}',
    -- the correlator's running figures (assets, types, defences, IPs, pace); internal
    ADD COLUMN summary       jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN version       bigint      NOT NULL DEFAULT 0,
    ADD COLUMN created_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();
CREATE INDEX events_account_last_seen ON events (account_id, last_seen DESC);
CREATE INDEX events_last_seen ON events (last_seen DESC);

-- One row per (event, alert): why it joined, its occurrences within the event.
ALTER TABLE event_alerts
    ADD COLUMN reason      text        NOT NULL DEFAULT '',
    ADD COLUMN first_seen  timestamptz,
    ADD COLUMN last_seen   timestamptz,
    ADD COLUMN occurrences bigint      NOT NULL DEFAULT 1,
    ADD COLUMN joined_at   timestamptz NOT NULL DEFAULT now();

-- Correlation keys: the event that currently owns each key (account, kind, asset, value),
-- and the alert that brought it there.
CREATE TABLE event_keys (
    key        text        PRIMARY KEY,
    account_id text        NOT NULL,
    event_id   text        NOT NULL REFERENCES events ON DELETE CASCADE,
    alert_id   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_keys_event ON event_keys (event_id);

-- Entities seen in alerts, per event: the base of the entity views and the 30-day counts.
CREATE TABLE entity_alerts (
    account_id  text        NOT NULL,
    entity_type text        NOT NULL CHECK (entity_type IN ('host', 'file', 'process', 'ip',
                                                            'host_account')),
    value       text        NOT NULL,
    asset_id    text        NOT NULL DEFAULT '',
    event_id    text        NOT NULL REFERENCES events ON DELETE CASCADE,
    alert_id    text        NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (event_id, entity_type, value, asset_id, alert_id)
);
CREATE INDEX entity_alerts_entity ON entity_alerts (account_id, entity_type, value, last_seen);

-- The provenance graph: entities as nodes, behaviours as edges.
CREATE TABLE event_edges (
    event_id   text        NOT NULL REFERENCES events ON DELETE CASCADE,
    src_type   text        NOT NULL,
    src        text        NOT NULL,
    relation   text        NOT NULL,
    dst_type   text        NOT NULL,
    dst        text        NOT NULL,
    alert_id   text        NOT NULL,  -- the first alert that showed it
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    alerts     int         NOT NULL DEFAULT 1,
    PRIMARY KEY (event_id, src_type, src, relation, dst_type, dst)
);

-- Handling tasks (the responder's issue fills and extends it); entities count them.
CREATE TABLE handling_tasks (
    task_id      text        PRIMARY KEY,
    event_id     text        NOT NULL,
    account_id   text        NOT NULL,
    entity_type  text        NOT NULL,
    entity_value text        NOT NULL,
    state        text        NOT NULL DEFAULT 'pending',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handling_tasks_entity ON handling_tasks (account_id, entity_type, entity_value,
                                                      created_at);

-- Notifications as sent (Avro bytes), so a batch redelivered after a crash between the
-- commit and the send re-sends exactly the same records.
CREATE TABLE notifications (
    notification_id text        PRIMARY KEY,
    event_id        text        NOT NULL REFERENCES events ON DELETE CASCADE,
    kind            text        NOT NULL,
    urgency         text        NOT NULL,
    source_topic    text        NOT NULL,
    source_part     int         NOT NULL,
    source_offset   bigint      NOT NULL,
    payload         bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_source ON notifications (source_topic, source_part, source_offset);

-- Entity statistics over the last 30 days, always current (computed when read).
CREATE VIEW entity_stats_30d AS
SELECT e.account_id, e.entity_type, e.value,
       count(DISTINCT e.event_id)  AS events,
       count(DISTINCT e.alert_id)  AS alerts,
       (SELECT count(*) FROM handling_tasks t
         WHERE t.account_id = e.account_id AND t.entity_type = e.entity_type
           AND t.entity_value = e.value AND t.created_at > now() - interval '30 days') AS tasks,
       count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') AS assets,
       max(e.last_seen)            AS last_seen
  FROM entity_alerts e
 WHERE e.last_seen > now() - interval '30 days'
 GROUP BY e.account_id, e.entity_type, e.value;

RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON events, event_alerts, event_keys, entity_alerts, event_edges
    TO cwpp_correlator;
GRANT SELECT, INSERT ON notifications TO cwpp_correlator;
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO cwpp_correlator;
GRANT SELECT ON handling_tasks, entity_stats_30d TO cwpp_correlator;
GRANT SELECT ON event_keys, entity_alerts, event_edges, handling_tasks, notifications,
                entity_stats_30d TO cwpp_reader, cwpp_responder, cwpp_exporter;
GRANT SELECT ON event_keys, entity_alerts, event_edges TO cwpp_whitelist;
