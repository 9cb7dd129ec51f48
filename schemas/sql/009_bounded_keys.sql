-- SPDX-License-Identifier: Apache-2.0
-- Bounded index keys for entity values (docs/correlator.md "Bounded keys").
--
-- Entity values come from the attacked hosts: a process without a path is its command
-- line (up to 32 KiB), file paths run to 4 KiB. They were part of the btree keys of
-- entity_alerts and event_edges, and a value past PostgreSQL's index row limit (about
-- 2,700 bytes, SQLSTATE 54000) made the correlator's whole batch fail. From here on the
-- indexes hold a bounded key instead, computed by the database itself from the full
-- value (a generated column, so every writer and every old row get the same key):
--
--   cwpp.bounded_key(v) = v                                    when v has at most 512
--                                                              bytes and does not start
--                                                              with 'sha256:'
--                       = 'sha256:' || hex(SHA-256 of v's bytes) otherwise
--
-- The mapping is one-to-one (up to SHA-256 collisions): a short value that itself starts
-- with 'sha256:' is hashed too, so it can never pose as the key of a long one. The full
-- value stays in its column (value, src, dst), which is what every reader shows; only
-- the indexes use the key. Existing rows get their key when the column is added (the
-- table is rewritten once), and their old primary keys were unique on the full values,
-- so they stay unique on the keys.
SET search_path = cwpp;
SET ROLE cwpp_owner;

-- IMMUTABLE: convert_to is only STABLE because of the encoding argument, and the
-- database's encoding (UTF8) never changes under it.
CREATE FUNCTION bounded_key(v text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN pg_catalog.octet_length(v) <= 512 AND
                     pg_catalog.left(v, 7) OPERATOR(pg_catalog.<>) 'sha256:'
                THEN v
                ELSE 'sha256:' OPERATOR(pg_catalog.||)
                     pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(v, 'UTF8')),
                                       'hex')
           END;

-- Entities: the key replaces the value in the primary key and in the per-entity index.
ALTER TABLE entity_alerts
    ADD COLUMN value_key text GENERATED ALWAYS AS (bounded_key(value)) STORED;
ALTER TABLE entity_alerts DROP CONSTRAINT entity_alerts_pkey;
ALTER TABLE entity_alerts
    ADD PRIMARY KEY (event_id, entity_type, value_key, asset_id, alert_id);
DROP INDEX entity_alerts_entity;
CREATE INDEX entity_alerts_entity ON entity_alerts (account_id, entity_type, value_key,
                                                    last_seen);

-- The provenance graph: its nodes are entity values too.
ALTER TABLE event_edges
    ADD COLUMN src_key text GENERATED ALWAYS AS (bounded_key(src)) STORED,
    ADD COLUMN dst_key text GENERATED ALWAYS AS (bounded_key(dst)) STORED;
ALTER TABLE event_edges DROP CONSTRAINT event_edges_pkey;
ALTER TABLE event_edges
    ADD PRIMARY KEY (event_id, src_type, src_key, relation, dst_type, dst_key);

-- The 30-day figures: the same columns as before, grouped by the key as well (one key is
-- one value) and with the key last, so that readers can reach entity_alerts_entity with
-- value_key = cwpp.bounded_key(...) where a full value would not fit an index.
CREATE OR REPLACE VIEW entity_stats_30d AS
SELECT e.account_id, e.entity_type, e.value,
       count(DISTINCT e.event_id)  AS events,
       count(DISTINCT e.alert_id)  AS alerts,
       (SELECT count(*) FROM handling_tasks t
         WHERE t.account_id = e.account_id AND t.entity_type = e.entity_type
           AND t.entity_value = e.value AND t.created_at > now() - interval '30 days') AS tasks,
       count(DISTINCT e.asset_id) FILTER (WHERE e.asset_id <> '') AS assets,
       max(e.last_seen)            AS last_seen,
       e.value_key
  FROM entity_alerts e
 WHERE e.last_seen > now() - interval '30 days'
 GROUP BY e.account_id, e.entity_type, e.value_key, e.value;

RESET ROLE;
