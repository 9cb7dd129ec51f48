-- SPDX-License-Identifier: Apache-2.0
-- An index for cwpp-api's event list (GET /api/v1/events, services/api/events.c).
--
-- The analysts' usual list is their open work: a status filter (unhandled, handling), a
-- level filter (high, critical) and a time window, within the accounts they hold. The
-- only indexes were by account and time (events_account_last_seen) and by time
-- (events_last_seen), so the list read every event of the caller's accounts in the
-- window from the table and dropped most of them (an analyst with 20 of 200 accounts and
-- a 30-day window: about 2,100 rows read from as many table pages for 280 kept; an
-- admin, who holds every account: 17,500 read), twice per request (the total, then the
-- page). bench/run-api measured 5 ms of database time per list request, and a p99 of
-- 330 ms at 200 requests/s where the database was the bottleneck.
--
-- With status, level and account leading (each an equality or an IN list in the list's
-- statement) and the time last, every combination of the three lists is one index range
-- bounded by the window: the index yields exactly the matching events. An admin's list
-- (no account list) walks the (status, level) ranges and tests the time in the index.
-- A list without a status filter keeps using events_account_last_seen as before.
--
-- The statement takes a SHARE lock on events while the index is built (seconds for
-- 100,000 events): the correlator's writes wait meanwhile. On a large table, build it
-- first by hand with CREATE INDEX CONCURRENTLY under this name; IF NOT EXISTS then keeps
-- this file a no-op.
SET search_path = cwpp;
SET ROLE cwpp_owner;

CREATE INDEX IF NOT EXISTS events_status_level_account
    ON events (status, level, account_id, last_seen DESC);

RESET ROLE;
