-- SPDX-License-Identifier: Apache-2.0
-- Bounded index keys for the responder's tasks (docs/correlator.md "Bounded keys").
--
-- A handling task names the entity it acts on; its value (a process known only by its
-- command line, a long file path) was part of the btree key of handling_tasks_entity, so
-- a task on such an entity failed its INSERT (SQLSTATE 54000: index row too large). The
-- index now holds cwpp.bounded_key(entity_value) (migration 009), the full value stays
-- in entity_value, and the 30-day figures match tasks to entities by their keys.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE handling_tasks
    ADD COLUMN entity_key text GENERATED ALWAYS AS (bounded_key(entity_value)) STORED;
DROP INDEX handling_tasks_entity;
CREATE INDEX handling_tasks_entity ON handling_tasks (account_id, entity_type, entity_key,
                                                      created_at);

CREATE OR REPLACE VIEW entity_stats_30d AS
SELECT e.account_id, e.entity_type, e.value,
       count(DISTINCT e.event_id)  AS events,
       count(DISTINCT e.alert_id)  AS alerts,
       (SELECT count(*) FROM handling_tasks t
         WHERE t.account_id = e.account_id AND t.entity_type = e.entity_type
           AND t.entity_key = e.value_key AND t.created_at > now() - interval '30 days') AS tasks,
       count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') AS assets,
       max(e.last_seen)            AS last_seen,
       e.value_key
  FROM entity_alerts e
 WHERE e.last_seen > now() - interval '30 days'
 GROUP BY e.account_id, e.entity_type, e.value_key, e.value;

RESET ROLE;
