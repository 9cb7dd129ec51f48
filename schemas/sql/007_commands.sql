-- SPDX-License-Identifier: Apache-2.0
-- The command protocol (libs/command, docs/commands.md) checks every command's actor the
-- same way in each service: a known, enabled user holding permission on the account of
-- what the command changes (an admin holds every account). whitelist-filter now makes
-- that check too, so its role reads the columns the check reads, and nothing else.
SET search_path = cwpp;
SET ROLE cwpp_owner;

GRANT SELECT (user_name, role, disabled_at) ON users TO cwpp_whitelist;
GRANT SELECT (user_name, account_id) ON user_accounts TO cwpp_whitelist;
