-- SPDX-License-Identifier: Apache-2.0
-- A lighter write path for the correlator and the whitelist-filter.
-- entity_alerts and event_edges are found by event through their primary keys, which
-- lead with event_id: the single-column (event_id) indexes added with the exporter's
-- retention were a second index entry for every row written (about five entity rows per
-- alert) and serve no lookup the primary key does not.
-- Tables whose rows are updated soon after they are written keep free room on their new
-- pages, so an update that changes no indexed column (the filter's marks on an alert, a
-- membership's occurrences, an edge's count) stays on its page and adds no index entry.
SET search_path = cwpp;
SET ROLE cwpp_owner;

DROP INDEX IF EXISTS entity_alerts_event;
DROP INDEX IF EXISTS event_edges_event;

ALTER TABLE alerts SET (fillfactor = 85);
ALTER TABLE event_alerts SET (fillfactor = 85);
ALTER TABLE event_edges SET (fillfactor = 85);

RESET ROLE;
