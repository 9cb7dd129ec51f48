-- SPDX-License-Identifier: Apache-2.0
-- The occurred_at rule (docs/alert-format.md "occurred_at"): an alert whose occurred_at is
-- older than ingest.max.age.s or later than ingest.max.future.s ahead (a detector's clock
-- that is wrong) is stored with the time ingest received it, so its event stays listed
-- and retention does not delete it at once; the time the producer gave is kept here.
-- For a row holding several occurrences: that of the latest occurrence whose time was
-- replaced; NULL when no occurrence's time was. Written by ingest (its table-wide INSERT
-- and UPDATE rights cover the new column).
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE alerts ADD COLUMN original_occurred_at timestamptz;
