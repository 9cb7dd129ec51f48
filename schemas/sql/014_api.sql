-- SPDX-License-Identifier: Apache-2.0
-- cwpp-api: the analysts' API. It authenticates people and reads on their behalf, scoped
-- to the accounts they hold; every change it makes to the desk's objects is a command
-- applied by the owning service. What it writes itself is who may log in: password
-- hashes (Argon2id, libsodium's crypto_pwhash_str), failed-login counts and lockouts,
-- and the sessions and API tokens it issues (stored as SHA-256 of their secret only),
-- each logged in activity_log.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cwpp_api') THEN
        CREATE ROLE cwpp_api NOLOGIN;
    END IF;
END
$$;
ALTER ROLE cwpp_api SET search_path = cwpp;
SET search_path = cwpp;
SET ROLE cwpp_owner;
GRANT USAGE ON SCHEMA cwpp TO cwpp_api;

-- A viewer reads the accounts granted and changes nothing.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'analyst', 'viewer'));

CREATE TABLE user_credentials (
    user_name     text        PRIMARY KEY REFERENCES users,
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    failed_logins integer     NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    changed_by    text        NOT NULL
);

-- Sessions (kind 'session', from a login) and API tokens (kind 'token'). The bearer
-- string is "cwpp_<token_id>_<secret>"; only SHA-256(secret) is stored.
CREATE TABLE api_tokens (
    token_id     text        PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{16}$'),
    user_name    text        NOT NULL REFERENCES users,
    kind         text        NOT NULL CHECK (kind IN ('session', 'token')),
    name         text        NOT NULL DEFAULT '' CHECK (length(name) <= 128),
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    revoked_by   text,
    last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_name, kind);

GRANT SELECT, INSERT, UPDATE ON user_credentials, api_tokens TO cwpp_api;
GRANT INSERT ON activity_log TO cwpp_api;
GRANT SELECT ON alerts, whitelist_rules, whitelist_state, activity_log, events,
                event_alerts, event_keys, entity_alerts, event_edges, entity_stats_30d,
                users, user_accounts, managed_accounts, playbooks, handling_policies,
                handling_tasks, handled_events, export_jobs, export_files,
                commands_applied
    TO cwpp_api;
