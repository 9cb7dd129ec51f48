-- SPDX-License-Identifier: Apache-2.0
-- The responder (issue 5): users and their permissions, managed member accounts,
-- handling policies (leases) with their tasks, playbooks, and the columns of events and
-- alerts the analysts' decisions change. docs/responder.md explains every state.
SET search_path = cwpp;
SET ROLE cwpp_owner;

-- Analysts. An admin manages users and may act on every account; an analyst acts only on
-- the accounts granted to them. Written by the responder (users.* commands) only.
CREATE TABLE users (
    user_name    text        PRIMARY KEY CHECK (user_name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    display_name text        NOT NULL DEFAULT '',
    role         text        NOT NULL CHECK (role IN ('admin', 'analyst')),
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
CREATE TABLE user_accounts (
    user_name  text        NOT NULL REFERENCES users,
    account_id text        NOT NULL,
    granted_by text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_name, account_id)
);
-- Member accounts a (manager) account manages: a handling policy's destination account
-- is the event's own account or one of these.
CREATE TABLE managed_accounts (
    account_id         text        PRIMARY KEY,
    manager_account_id text        NOT NULL CHECK (manager_account_id <> account_id),
    name               text        NOT NULL DEFAULT '',
    created_by         text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX managed_accounts_manager ON managed_accounts (manager_account_id);

-- The level an analyst set is kept: the correlator no longer derives it from alerts.
ALTER TABLE events
    ADD COLUMN level_source      text NOT NULL DEFAULT 'correlator'
                                 CHECK (level_source IN ('correlator', 'analyst')),
    ADD COLUMN status_changed_at timestamptz,
    ADD COLUMN handled_at        timestamptz;

-- The handling information a handled event adds to each of its unhandled alerts.
ALTER TABLE alerts ADD COLUMN handling jsonb;

-- Playbooks: the built-in ones and those loaded from files are written by the responder
-- at start; custom ones by playbooks.add. steps: [{"action", "params", "timeout_s"}].
CREATE TABLE playbooks (
    name        text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    entity_type text        NOT NULL CHECK (entity_type IN ('host', 'file', 'process', 'ip',
                                                            'host_account')),
    description text        NOT NULL DEFAULT '',
    steps       jsonb       NOT NULL,
    origin      text        NOT NULL CHECK (origin IN ('builtin', 'file', 'custom')),
    is_default  boolean     NOT NULL DEFAULT false,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A handling policy (kind 'policy': one built-in policy on one entity) or a playbook run
-- (kind 'playbook'), with its lease: at valid_until its effects are rolled back.
--   applying -> active -> expiring -> expired        (lease ran out, rolled back)
--   applying -> failed   (at valid_until what may be in force is rolled back; it stays failed)
CREATE TABLE handling_policies (
    policy_id     text        PRIMARY KEY,
    response_id   text        NOT NULL,     -- the command that created it
    event_id      text        NOT NULL,
    account_id    text        NOT NULL,     -- the event's account
    dest_account  text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('policy', 'playbook')),
    name          text        NOT NULL,     -- the policy's action, or the playbook's name
    entity_type   text        NOT NULL,
    entity_value  text        NOT NULL,
    asset_id      text        NOT NULL,
    steps         jsonb       NOT NULL,     -- [{"action", "params", "timeout_s", "rollback"}]
    step          int         NOT NULL DEFAULT 0,
    target_status text        NOT NULL CHECK (target_status IN ('handling', 'handled')),
    valid_until   timestamptz NOT NULL,
    state         text        NOT NULL CHECK (state IN ('applying', 'active', 'failed',
                                                        'expiring', 'expired')),
    reason        text        NOT NULL DEFAULT '',
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    rolled_back   boolean     NOT NULL DEFAULT false
);
CREATE INDEX handling_policies_event ON handling_policies (event_id, created_at);
CREATE INDEX handling_policies_lease ON handling_policies (valid_until)
    WHERE state IN ('active', 'failed') AND NOT rolled_back;

-- A task is one action on one asset: an apply task per step, a rollback task per applied
-- task at the lease's end. action_id = task_id || '.' || attempt.
ALTER TABLE handling_tasks
    ADD COLUMN policy_id    text,
    ADD COLUMN kind         text        NOT NULL DEFAULT 'apply' CHECK (kind IN ('apply', 'rollback')),
    ADD COLUMN step         int         NOT NULL DEFAULT 0,
    ADD COLUMN action       text        NOT NULL DEFAULT '',
    ADD COLUMN dest_account text        NOT NULL DEFAULT '',
    ADD COLUMN asset_id     text        NOT NULL DEFAULT '',
    ADD COLUMN params       jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN attempt      int         NOT NULL DEFAULT 0,
    ADD COLUMN max_attempts int         NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    ADD COLUMN timeout_ms   bigint      NOT NULL DEFAULT 60000,
    ADD COLUMN deadline     timestamptz,
    ADD COLUMN reason       text        NOT NULL DEFAULT '',
    ADD COLUMN result       jsonb,
    ADD COLUMN rollback_of  text,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN finished_at  timestamptz,
    ADD CONSTRAINT handling_tasks_state CHECK (state IN ('pending', 'running', 'succeeded',
                                                         'failed', 'timed_out', 'rolled_back'));
CREATE INDEX handling_tasks_event ON handling_tasks (event_id, created_at);
CREATE INDEX handling_tasks_policy ON handling_tasks (policy_id, step);
CREATE INDEX handling_tasks_deadline ON handling_tasks (deadline) WHERE state = 'running';

RESET ROLE;
GRANT SELECT ON users, user_accounts, managed_accounts, playbooks, handling_policies
    TO cwpp_reader, cwpp_exporter, cwpp_correlator;
GRANT SELECT, INSERT, UPDATE ON users, managed_accounts, playbooks TO cwpp_responder;
GRANT SELECT, INSERT, DELETE ON user_accounts TO cwpp_responder;
GRANT DELETE ON playbooks TO cwpp_responder;
GRANT SELECT, INSERT, UPDATE ON handling_policies, handling_tasks TO cwpp_responder;
GRANT SELECT, INSERT ON commands_applied, activity_log TO cwpp_responder;
GRANT SELECT, UPDATE (status, owner, level, level_source, status_changed_at, handled_at,
                      version, updated_at) ON events TO cwpp_responder;
GRANT SELECT, UPDATE (status, handling, updated_at) ON alerts TO cwpp_responder;
GRANT SELECT ON event_alerts, entity_alerts, event_edges, entity_stats_30d, alerts
    TO cwpp_responder;
