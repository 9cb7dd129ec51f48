-- SPDX-License-Identifier: Apache-2.0
-- Whitelist rules belong to an account (docs/whitelist.md "Rules belong to an account").
--
-- A rule applies only to alerts of its account: scope "all" is every asset of that
-- account, scope "asset" one asset of it. Who may create or delete a rule follows: a user
-- holding permission on its account (an admin holds every account). Before this, a rule
-- applied to the alerts of every account unless its condition was "account_id eq X".
--
-- Existing rules take an account, in this order of evidence:
--   1. the alert the rule was created from (from_alert_id);
--   2. the account its condition names (field account_id, operator eq);
--   3. an asset-scoped rule: the account of its asset's alerts, when they are all of one.
-- A live rule none of these gives an account to (a rule over every account's alerts, or
-- an asset seen in several accounts or none) can no longer apply: it is deleted here
-- (deleted_by '015_rule_accounts', so `whitelist rule list --all` shows why) and must be
-- created again per account. Deleted rules keep their history and may stay account-less.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE whitelist_rules ADD COLUMN account_id text;

UPDATE whitelist_rules r SET account_id = a.account_id
  FROM alerts a
 WHERE r.from_alert_id = a.alert_id AND r.account_id IS NULL;

UPDATE whitelist_rules SET account_id = value
 WHERE account_id IS NULL AND field = 'account_id' AND op = 'eq'
   AND length(value) BETWEEN 1 AND 128;

UPDATE whitelist_rules r SET account_id = s.account_id
  FROM (SELECT asset_id, min(account_id) AS account_id FROM alerts
         GROUP BY asset_id HAVING count(DISTINCT account_id) = 1) s
 WHERE r.account_id IS NULL AND r.scope = 'asset' AND r.asset_id = s.asset_id;

UPDATE whitelist_rules SET deleted_at = now(), deleted_by = '015_rule_accounts'
 WHERE account_id IS NULL AND deleted_at IS NULL;

-- Every live rule has an account, as long as an alert's account id may be (128 bytes).
ALTER TABLE whitelist_rules ADD CONSTRAINT whitelist_rules_account_check
    CHECK ((account_id IS NOT NULL OR deleted_at IS NOT NULL)
           AND (account_id IS NULL OR length(account_id) BETWEEN 1 AND 128));
CREATE INDEX whitelist_rules_account ON whitelist_rules (account_id, alert_name)
    WHERE deleted_at IS NULL;

-- Every filter instance reloads the rules.
UPDATE whitelist_state SET version = version + 1 WHERE id = 1;
