-- SPDX-License-Identifier: Apache-2.0
-- The responder: a handled event can be reopened, a playbook stops when its validity
-- ends, and the 30-day figures count the tasks that handled an entity
-- (docs/responder.md "Status", "Policies and tasks", "Targets").
--
--  1. handled_events, the exporter's queue of handled events, holds one row per
--     handling: an event handled, reopened and handled again is queued again with a new
--     seq (its second handling is published too). event_id is no longer unique; an
--     index keeps the exporter's retention (which deletes by event_id) fast.
--  2. A task of a playbook or policy whose validity ended while it was still applying is
--     cancelled: the pending steps never start, and the running one is no longer awaited
--     (its rollback is sent, as for any step that may be in force). The timer looks for
--     ended leases among applying runs too, so the index of leases covers them.
--  3. entity_stats_30d counts the tasks that handled the entity (apply tasks): the
--     automatic rollback at the end of a lease is not a handling of its own, so a block
--     and its unblock count 1.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE handled_events DROP CONSTRAINT handled_events_event_id_key;
CREATE INDEX handled_events_event ON handled_events (event_id);

ALTER TABLE handling_tasks DROP CONSTRAINT handling_tasks_state;
ALTER TABLE handling_tasks
    ADD CONSTRAINT handling_tasks_state CHECK (state IN ('pending', 'running', 'succeeded',
                                                         'failed', 'timed_out', 'rolled_back',
                                                         'cancelled'));
DROP INDEX handling_policies_lease;
CREATE INDEX handling_policies_lease ON handling_policies (valid_until)
    WHERE state IN ('applying', 'active', 'failed') AND NOT rolled_back;

CREATE OR REPLACE VIEW entity_stats_30d AS
SELECT e.account_id, e.entity_type, e.value,
       count(DISTINCT e.event_id)  AS events,
       count(DISTINCT e.alert_id)  AS alerts,
       (SELECT count(*) FROM handling_tasks t
         WHERE t.account_id = e.account_id AND t.entity_type = e.entity_type
           AND t.entity_key = e.value_key AND t.kind = 'apply'
           AND t.created_at > now() - interval '30 days') AS tasks,
       count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') AS assets,
       max(e.last_seen)            AS last_seen,
       e.value_key
  FROM entity_alerts e
 WHERE e.last_seen > now() - interval '30 days'
 GROUP BY e.account_id, e.entity_type, e.value_key, e.value;

RESET ROLE;
