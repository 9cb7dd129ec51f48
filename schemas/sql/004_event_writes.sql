-- SPDX-License-Identifier: Apache-2.0
-- The correlator's write path (issue 4, throughput).
--
-- The tables below hang off an event and are written only by the correlator, in the
-- same transaction as the event row itself (docs/correlator.md, "Transactions"). Their
-- foreign keys to events checked every one of roughly ten rows written per alert with a
-- trigger query and a row lock on the event: a fifth of the database's time per batch.
-- They are dropped; an event and its rows are made and (by retention, issue 6) removed
-- together by the one service that owns them, which deletes the rows of an event
-- explicitly (no ON DELETE CASCADE any more). tests/integration/test_correlator.py checks
-- that no row points at a missing event.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE event_alerts  DROP CONSTRAINT IF EXISTS event_alerts_event_id_fkey;
ALTER TABLE event_keys    DROP CONSTRAINT IF EXISTS event_keys_event_id_fkey;
ALTER TABLE entity_alerts DROP CONSTRAINT IF EXISTS entity_alerts_event_id_fkey;
ALTER TABLE event_edges   DROP CONSTRAINT IF EXISTS event_edges_event_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_event_id_fkey;

-- The running figures are the correlator's own (read back whole, never queried into):
-- kept as the JSON text it wrote instead of being converted to jsonb on every write,
-- a third of the events upsert's time.
ALTER TABLE events ALTER COLUMN summary DROP DEFAULT,
                   ALTER COLUMN summary TYPE json USING summary::json,
                   ALTER COLUMN summary SET DEFAULT '{}';

-- The events of a notification are found by event (cwppctl, the exporter).
CREATE INDEX IF NOT EXISTS notifications_event ON notifications (event_id);

RESET ROLE;
