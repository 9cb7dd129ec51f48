-- SPDX-License-Identifier: Apache-2.0
-- Exact occurrence counts under at-least-once delivery (docs/correlator.md "Repeats").
--
-- Every Alert record carries `occurrences`, ingest's running count of that alert: the
-- sequence number of the occurrence it reports (a record emitted again after a
-- redelivery carries the row's latest count). The correlator used to add one occurrence
-- per record it applied, so a record emitted twice upstream (ingest re-emits what it
-- cannot know was sent) counted twice. It now keeps the highest sequence it applied per
-- (event, alert) and adds to an event the occurrences since the highest one it has
-- applied for that alert anywhere: a repeat adds nothing, a record that stands for
-- several lost emissions adds them all. NULL: a row written before this migration
-- (its next record counts one, as before, and sets the sequence).
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE event_alerts ADD COLUMN seq bigint;

RESET ROLE;
