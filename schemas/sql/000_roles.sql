-- SPDX-License-Identifier: Apache-2.0
-- Roles. Each service connects as its own role holding only the rights it needs;
-- cwpp_owner owns the tables and never logs in. deploy/migrate gives a role LOGIN and
-- a password when CWPP_PG_PASSWORD_<ROLE> is set; here they are created NOLOGIN.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cwpp_owner', 'cwpp_ingest', 'cwpp_whitelist', 'cwpp_correlator',
                             'cwpp_responder', 'cwpp_exporter', 'cwpp_reader']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA IF NOT EXISTS cwpp AUTHORIZATION cwpp_owner;
GRANT USAGE ON SCHEMA cwpp TO cwpp_ingest, cwpp_whitelist, cwpp_correlator,
                               cwpp_responder, cwpp_exporter, cwpp_reader;
-- Every role finds our tables without qualifying them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cwpp_owner', 'cwpp_ingest', 'cwpp_whitelist', 'cwpp_correlator',
                             'cwpp_responder', 'cwpp_exporter', 'cwpp_reader']
    LOOP
        EXECUTE format('ALTER ROLE %I SET search_path = cwpp', r);
    END LOOP;
END
$$;
