-- SPDX-License-Identifier: Apache-2.0
-- Notification settings per account (the reference: "enable event notifications under
-- System Settings > Notification Settings"). One row per account that changed its
-- setting; an account without a row has the default: notifications on, from level low
-- (every event notifies, as before this migration).
--
-- The responder writes it, applying the command notifications.set (docs/commands.md) for
-- an admin or a user holding the account, with an activity-log entry. The correlator
-- reads it before it sends a notification: it sends one only when the account's setting
-- is enabled and the event's level is at least min_level. cwpp-api reads it for
-- GET /api/v1/accounts/{id}/notifications.
SET search_path = cwpp;
SET ROLE cwpp_owner;

CREATE TABLE notification_settings (
    account_id text        PRIMARY KEY CHECK (length(account_id) BETWEEN 1 AND 200),
    enabled    boolean     NOT NULL DEFAULT true,
    min_level  text        NOT NULL DEFAULT 'low'
                           CHECK (min_level IN ('critical', 'high', 'medium', 'low')),
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON notification_settings TO cwpp_responder;
GRANT SELECT ON notification_settings TO cwpp_correlator, cwpp_api, cwpp_reader;

RESET ROLE;
