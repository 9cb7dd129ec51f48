-- SPDX-License-Identifier: Apache-2.0
-- The activity log is an audit trail: append-only for every role that runs the desk.
--
-- Until now the exporter held DELETE on activity_log, for its retention option
-- retention.keep.activity.log = false (which deleted the log of the events it deleted;
-- the default kept it). An audit trail the audited services can erase is no audit trail,
-- so that right goes and the exporter no longer offers the option (it refuses the value
-- false at start-up). Nobody ever needed UPDATE or TRUNCATE.
--
-- Two layers:
--  1. Rights: UPDATE, DELETE and TRUNCATE on activity_log are revoked from every role that
--     holds them, whoever it is (service roles named here, and any other found in the
--     catalog), PUBLIC included. Roles keep SELECT and INSERT as granted before.
--  2. A trigger, which also binds the table's owner and superusers (they pass the rights
--     check, not the trigger): UPDATE and TRUNCATE are refused to everyone; DELETE is
--     refused unless the current role is cwpp_retention.
--
-- cwpp_retention is the one way to remove old entries (log retention, when a site's policy
-- wants it): a NOLOGIN role holding SELECT and DELETE on activity_log. An operator grants
-- it to a login of theirs for the occasion, then in a session
--     SET ROLE cwpp_retention;
--     DELETE FROM cwpp.activity_log WHERE at < now() - interval '2 years';
-- (docs/architecture.md, "Database tables and their writers"). Disabling the trigger
-- needs the table's owner (cwpp_owner, which never logs in) or a superuser, and leaves a
-- trace in the server's DDL log.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cwpp_retention') THEN
        CREATE ROLE cwpp_retention NOLOGIN;
    END IF;
END
$$;
ALTER ROLE cwpp_retention SET search_path = cwpp;
SET search_path = cwpp;

-- 1. The rights, by name for the roles of this repository ...
REVOKE UPDATE, DELETE, TRUNCATE ON activity_log
    FROM cwpp_ingest, cwpp_whitelist, cwpp_correlator, cwpp_responder, cwpp_exporter,
         cwpp_reader, cwpp_api, PUBLIC;
-- ... and from any other holder the catalog knows, table or column grant (the owner's own
-- rights aside: the trigger binds it).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT a.grantee::regrole::text AS grantee
          FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.oid = 'cwpp.activity_log'::regclass AND a.grantee <> 0
           AND a.grantee <> c.relowner
           AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
        UNION
        SELECT DISTINCT a.grantee::regrole::text
          FROM pg_attribute t, aclexplode(t.attacl) a
         WHERE t.attrelid = 'cwpp.activity_log'::regclass AND a.grantee <> 0
           AND a.privilege_type = 'UPDATE'
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON cwpp.activity_log FROM %s',
                       r.grantee);
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA cwpp TO cwpp_retention;
GRANT SELECT, DELETE ON activity_log TO cwpp_retention;

-- 2. The trigger (owned by cwpp_owner, as the table).
SET ROLE cwpp_owner;
CREATE FUNCTION activity_log_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'cwpp_retention' THEN
        RETURN NULL; -- a statement-level BEFORE trigger: the statement goes on
    END IF;
    RAISE EXCEPTION 'activity_log is append-only: % refused for role %', TG_OP, current_user
        USING ERRCODE = 'insufficient_privilege',
              HINT = CASE WHEN TG_OP = 'DELETE'
                          THEN 'log retention deletes as the role cwpp_retention'
                          ELSE 'entries are never changed; append a new one' END;
END
$$;
CREATE TRIGGER activity_log_append_only
    BEFORE UPDATE OR DELETE ON activity_log
    FOR EACH STATEMENT EXECUTE FUNCTION activity_log_append_only();
CREATE TRIGGER activity_log_no_truncate
    BEFORE TRUNCATE ON activity_log
    FOR EACH STATEMENT EXECUTE FUNCTION activity_log_append_only();
RESET ROLE;
