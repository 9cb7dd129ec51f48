-- SPDX-License-Identifier: Apache-2.0
-- Event membership changes made by the correlator, the single writer of event_alerts,
-- entity_alerts, event_edges and event_keys (docs/correlator.md "Leaving, merging and
-- detaching"):
--  * a whitelisted alert leaves its events: its rows there are deleted and the events'
--    graph and keys are written again from the members left;
--  * a handled alert that recurs after its event was handled is unhandled in the
--    successor event: the correlator sets its status and clears its handling info, and
--    logs that in activity_log;
--  * analysts merge events (event.merge: the others become 'merged', merged_into names
--    the survivor) and detach alerts into a new event (event.detach), as commands the
--    correlator applies through the command protocol (commands_applied, activity_log,
--    the actor's permission on the account).
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE events DROP CONSTRAINT events_status_check;
ALTER TABLE events ADD CONSTRAINT events_status_check
    CHECK (status IN ('unhandled', 'handling', 'handled', 'failed', 'merged'));
ALTER TABLE events ADD COLUMN merged_into text;
ALTER TABLE events ADD CONSTRAINT events_merged_into_check
    CHECK ((status = 'merged') = (merged_into IS NOT NULL));

RESET ROLE;
GRANT DELETE ON event_alerts, entity_alerts, event_edges, event_keys TO cwpp_correlator;
GRANT UPDATE (status, handling, updated_at) ON alerts TO cwpp_correlator;
GRANT INSERT ON commands_applied, activity_log TO cwpp_correlator;
GRANT SELECT (user_name, role, disabled_at) ON users TO cwpp_correlator;
GRANT SELECT (user_name, account_id) ON user_accounts TO cwpp_correlator;
