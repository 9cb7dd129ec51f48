-- SPDX-License-Identifier: Apache-2.0
-- Export jobs through cwpp-api: a workbook holds the events of some accounts, and only a
-- caller holding every one of them may see the job or download its file (another
-- tenant's job is "not found", like any object outside the caller's accounts). The
-- exporter records those accounts with each job: the distinct accounts of the events the
-- workbook holds, from the job's own snapshot.
--
-- Jobs stored before this migration have accounts NULL: what their workbooks hold is not
-- known any more (the actor's grants may have changed since), so only admins, who hold
-- every account, see them.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE export_jobs ADD COLUMN accounts text[];
-- a caller's own jobs, newest first (GET /api/v1/exports)
CREATE INDEX export_jobs_actor ON export_jobs (actor, created_at DESC);
