-- SPDX-License-Identifier: Apache-2.0
-- The whitelist operator startswith: the field's value starts with the rule's value
-- (docs/whitelist.md). The op CHECK follows the operator table of libs/rules, which
-- tests/unit/rules compares with the latest migration that sets it: this one.
SET search_path = cwpp;
SET ROLE cwpp_owner;

ALTER TABLE whitelist_rules DROP CONSTRAINT whitelist_rules_op_check;
ALTER TABLE whitelist_rules ADD CONSTRAINT whitelist_rules_op_check
    CHECK (op IN ('regex', 'gt', 'eq', 'lt', 'contains', 'startswith'));
