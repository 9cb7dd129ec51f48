-- SPDX-License-Identifier: Apache-2.0
-- Whitelist rules, applied commands, the activity log, and the first columns of events.
-- Written by whitelist-filter (rules, commands, activity, alert status); read by cwppctl
-- through cwpp_reader.
SET search_path = cwpp;
SET ROLE cwpp_owner;

-- One row per rule. A whitelist entry is the set of live rules of one alert name; its
-- rules are OR-ed. Deleting a rule marks it (deleted_at): it stops applying to future
-- alerts, and its history (hits, who made it) stays readable.
CREATE TABLE whitelist_rules (
    rule_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_name    text        NOT NULL,
    field         text        NOT NULL,
    op            text        NOT NULL CHECK (op IN ('regex', 'gt', 'eq', 'lt', 'contains')),
    value         text        NOT NULL,
    scope         text        NOT NULL CHECK (scope IN ('all', 'asset')),
    asset_id      text,
    from_alert_id text,
    expires_at    timestamptz,
    remark        text,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    command_id    text        NOT NULL UNIQUE,
    deleted_at    timestamptz,
    deleted_by    text,
    hits          bigint      NOT NULL DEFAULT 0,
    last_hit_at   timestamptz,
    CHECK ((scope = 'asset') = (asset_id IS NOT NULL))
);
CREATE INDEX whitelist_rules_live ON whitelist_rules (alert_name) WHERE deleted_at IS NULL;

-- Bumped in the transaction of every rule change; filter instances poll it and reload.
CREATE TABLE whitelist_state (
    id      int    PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO whitelist_state VALUES (1, 1);

-- Commands applied, with the answer given: a redelivered command is answered again,
-- never applied twice.
CREATE TABLE commands_applied (
    command_id text        PRIMARY KEY,
    service    text        NOT NULL,
    type       text        NOT NULL,
    actor      text        NOT NULL,
    status     text        NOT NULL CHECK (status IN ('ok', 'error')),
    message    text        NOT NULL,
    result     jsonb       NOT NULL DEFAULT '{}',
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Every change, append-only: who, when, what before and after, why.
CREATE TABLE activity_log (
    log_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    command_id  text,
    object_type text        NOT NULL,
    object_id   text        NOT NULL,
    event_id    text,
    action      text        NOT NULL,
    before      jsonb,
    after       jsonb,
    remark      text,
    UNIQUE (command_id, object_type, object_id, action)
);
CREATE INDEX activity_log_object ON activity_log (object_type, object_id, at);
CREATE INDEX activity_log_event ON activity_log (event_id, at) WHERE event_id IS NOT NULL;

-- Security events: the columns the whitelist preview reads (which open events would lose
-- alerts). The correlator's migration adds the rest.
CREATE TABLE events (
    event_id   text        PRIMARY KEY,
    account_id text        NOT NULL,
    name       text        NOT NULL,
    level      text        NOT NULL CHECK (level IN ('critical', 'high', 'medium', 'low')),
    status     text        NOT NULL CHECK (status IN ('unhandled', 'handling', 'handled', 'failed')),
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL
);
CREATE TABLE event_alerts (
    event_id text NOT NULL REFERENCES events ON DELETE CASCADE,
    alert_id text NOT NULL,
    PRIMARY KEY (event_id, alert_id)
);
CREATE INDEX event_alerts_alert ON event_alerts (alert_id);

RESET ROLE;
GRANT SELECT, UPDATE (status, updated_at) ON alerts TO cwpp_whitelist;
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO cwpp_whitelist;
GRANT SELECT, INSERT, UPDATE ON whitelist_rules, whitelist_state TO cwpp_whitelist;
GRANT SELECT, INSERT ON commands_applied, activity_log TO cwpp_whitelist;
GRANT SELECT ON events, event_alerts TO cwpp_whitelist;
GRANT SELECT ON alerts, consumer_offsets, whitelist_rules, whitelist_state, commands_applied,
                activity_log, events, event_alerts TO cwpp_reader;
GRANT SELECT ON whitelist_rules, commands_applied, activity_log, events, event_alerts
    TO cwpp_correlator, cwpp_responder, cwpp_exporter;
