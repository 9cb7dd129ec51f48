-- SPDX-License-Identifier: Apache-2.0
-- Perimeter agents: an account's agents that guard its network edge (a gateway or
-- firewall host running cwpp-enforcer). An admin declares one for an account with the
-- responder's accounts.perimeter command; blocking an IP of that account then acts on
-- its perimeter agents instead of on every asset the IP touched (docs/responder.md
-- "Targets").
SET search_path = cwpp;
SET ROLE cwpp_owner;

CREATE TABLE perimeter_agents (
    account_id  text        NOT NULL,
    asset_id    text        NOT NULL,
    declared_by text        NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, asset_id)
);

GRANT SELECT, INSERT, DELETE ON perimeter_agents TO cwpp_responder;
GRANT SELECT ON perimeter_agents TO cwpp_reader, cwpp_api;
RESET ROLE;
