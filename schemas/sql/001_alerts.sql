-- SPDX-License-Identifier: Apache-2.0
-- Alerts as ingest stores them. One row per distinct alert ("the same alert" shares a
-- row): alert_id is derived from the de-duplication key, so a recurrence is an upsert
-- that moves last_seen and counts occurrences. Written by ingest only.
SET search_path = cwpp;
SET ROLE cwpp_owner;

CREATE TABLE alerts (
    alert_id         text        PRIMARY KEY,
    dedup_key        text        NOT NULL,
    account_id       text        NOT NULL,
    name             text        NOT NULL,
    type             text        NOT NULL,
    severity         text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    source           text        NOT NULL,
    input_format     text        NOT NULL CHECK (input_format IN ('cwpp', 'falco', 'wazuh')),
    source_alert_id  text,
    asset_id         text        NOT NULL,
    asset            jsonb       NOT NULL,
    attack_tactic    text,
    attack_technique text,
    defense          text        NOT NULL CHECK (defense IN ('none', 'blocked', 'failed', 'precision_defense')),
    file             jsonb,
    process          jsonb,
    remote_ip        text,
    logon            jsonb,
    details          jsonb       NOT NULL DEFAULT '{}',
    entities         jsonb       NOT NULL DEFAULT '[]',
    status           text        NOT NULL CHECK (status IN ('unhandled', 'handling', 'handled',
                                                           'manually_whitelisted',
                                                           'automatically_whitelisted')),
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    occurrences      bigint      NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_account_last_seen ON alerts (account_id, last_seen DESC);
CREATE INDEX alerts_name_last_seen ON alerts (name, last_seen DESC);
CREATE INDEX alerts_asset ON alerts (account_id, asset_id);

-- Exactly-once effects: the next offset of each input partition whose effect is in this
-- database, written in the same transaction as the effect. A redelivered message below
-- it has already been applied and is not applied again.
CREATE TABLE consumer_offsets (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    next_offset    bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON alerts TO cwpp_ingest;
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO cwpp_ingest;
GRANT SELECT ON alerts TO cwpp_reader, cwpp_whitelist, cwpp_correlator, cwpp_responder, cwpp_exporter;
