-- SPDX-License-Identifier: Apache-2.0
-- Exact whitelist rule hits under redelivery (docs/whitelist.md "Rule hits under redelivery").
--
-- Output topics are at-least-once: after a rebalance or a failed offset commit ingest
-- emits a batch's alerts again, at new offsets of cwpp.alerts.normalized, where
-- whitelist-filter's offset fence cannot recognise them. Every Alert record carries the
-- alert's running occurrence count, so whitelist-filter keeps, per alert, the highest
-- count it has decided (filtered_seq) and counts a rule hit only for occurrences beyond
-- it. NULL: no record of the alert decided since this migration (rows from before).
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE alerts ADD COLUMN filtered_seq bigint;
GRANT UPDATE (filtered_seq) ON alerts TO cwpp_whitelist;
