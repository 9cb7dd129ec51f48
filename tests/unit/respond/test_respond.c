/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of libs/respond: the action table and rollbacks, the built-in policies, the
 * built-in playbooks, playbook validation and the parameter placeholders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cwpp_respond.h"
#include "vocab_files.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t      *j = json_loads(s, 0, &e);

    assert_non_null(j);
    return j;
}

static void test_actions_and_rollbacks(void **state)
{
    size_t                   n, i;
    const cwpp_action_def_t *t = cwpp_action_table(&n);

    (void)state;
    assert_true(n >= 11);
    assert_string_equal(cwpp_action_find("block_ip")->rollback, "unblock_ip");
    assert_string_equal(cwpp_action_find("isolate_host")->rollback, "restore_host");
    assert_string_equal(cwpp_action_find("disable_account")->rollback, "enable_account");
    assert_string_equal(cwpp_action_find("waf_block_ip")->rollback, "waf_unblock_ip");
    assert_null(cwpp_action_find("kill_process")->rollback);
    assert_null(cwpp_action_find("quarantine_file")->rollback);
    assert_null(cwpp_action_find("format_disk"));
    assert_null(cwpp_action_find(NULL));
    for (i = 0; i < n; i++) /* every rollback is itself an action, and has none */
        if (t[i].rollback != NULL) {
            assert_non_null(cwpp_action_find(t[i].rollback));
            assert_null(cwpp_action_find(t[i].rollback)->rollback);
        }
}

static void test_policies_per_entity_type(void **state)
{
    (void)state;
    assert_string_equal(cwpp_policy_for("ip")->action, "block_ip");
    assert_string_equal(cwpp_policy_for("file")->action, "quarantine_file");
    assert_string_equal(cwpp_policy_for("process")->action, "kill_process");
    assert_string_equal(cwpp_policy_for("host")->action, "isolate_host");
    assert_string_equal(cwpp_policy_for("host_account")->action, "disable_account");
    assert_null(cwpp_policy_for("printer"));
    assert_true(cwpp_entity_type_known("host_account"));
    assert_false(cwpp_entity_type_known("hostaccount"));
}

static void test_builtin_playbooks_are_valid_one_default_per_type(void **state)
{
    json_t *pbs = parse(cwpp_playbooks_builtin());
    char    why[300];
    size_t  i;
    int     host = 0, file = 0, ip = 0;

    (void)state;
    assert_int_equal(json_array_size(pbs), 3);
    for (i = 0; i < json_array_size(pbs); i++) {
        json_t     *pb = json_array_get(pbs, i);
        const char *t = json_string_value(json_object_get(pb, "entity_type"));

        assert_int_equal(cwpp_playbook_check(pb, why, sizeof(why)), 0);
        assert_true(json_is_true(json_object_get(pb, "default")));
        host += strcmp(t, "host") == 0;
        file += strcmp(t, "file") == 0;
        ip += strcmp(t, "ip") == 0;
    }
    assert_int_equal(host + file * 10 + ip * 100, 111);
    json_decref(pbs);
}

static void expect_refused(const char *doc, const char *says)
{
    json_t *pb = parse(doc);
    char    why[300] = "";

    assert_int_equal(cwpp_playbook_check(pb, why, sizeof(why)), -1);
    if (strstr(why, says) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", why, says);
    json_decref(pb);
}

static void test_playbook_check_names_the_problem(void **state)
{
    (void)state;
    expect_refused("[]", "JSON object");
    expect_refused("{\"name\": \"Bad Name\", \"entity_type\": \"ip\", \"steps\": []}", "name");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"printer\", \"steps\": []}",
                   "entity_type");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": []}", "1 to 20");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": [{\"action\": "
                   "\"rm\"}]}", "unknown action \"rm\"");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": [{\"action\": "
                   "\"block_ip\", \"params\": []}]}", "params");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": [{\"action\": "
                   "\"block_ip\", \"timeout_s\": 0}]}", "timeout_s");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": [{\"action\": "
                   "\"block_ip\", \"retry\": 1}]}", "unknown field \"retry\"");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"owner\": 1, \"steps\": "
                   "[{\"action\": \"block_ip\"}]}", "unknown playbook field");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"default\": 1, \"steps\": "
                   "[{\"action\": \"block_ip\"}]}", "default");
}

static void expect_valid(const char *doc)
{
    json_t *pb = parse(doc);
    char    why[300] = "";

    if (cwpp_playbook_check(pb, why, sizeof(why)) != 0)
        fail_msg("refused: %s", why);
    json_decref(pb);
}

/* What a step acts on comes only from the entity: a fixed address, path, pid, user or
 * hash is refused, as is a placeholder of another entity type and a param the action does
 * not take; the options that only shape an action may be fixed. */
static void test_playbook_steps_take_only_placeholders_for_targets(void **state)
{
    (void)state;
    expect_refused("{\"name\": \"a\", \"entity_type\": \"file\", \"steps\": [{\"action\": "
                   "\"quarantine_file\", \"params\": {\"path\": \"/etc/passwd\"}}]}",
                   "\"path\" of quarantine_file must be the placeholder \"{entity}\"");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"file\", \"steps\": [{\"action\": "
                   "\"scan_file\", \"params\": {\"path\": \"{entity}/../../etc\"}}]}",
                   "must be the placeholder");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"process\", \"steps\": [{\"action\": "
                   "\"kill_process\", \"params\": {\"pid\": 1}}]}",
                   "\"pid\" of kill_process must be the placeholder \"{pid}\"");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"host_account\", \"steps\": "
                   "[{\"action\": \"disable_account\", \"params\": {\"user\": \"root\"}}]}",
                   "\"user\" of disable_account must be the placeholder");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"ip\", \"steps\": [{\"action\": "
                   "\"block_ip\", \"params\": {\"ip\": \"10.0.0.1\"}}]}", "placeholder");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"file\", \"steps\": [{\"action\": "
                   "\"quarantine_file\", \"params\": {\"path\": \"{entity}\", \"sha256\": "
                   "\"00\"}}]}", "\"sha256\" of quarantine_file must be the placeholder");
    /* {entity} of a host playbook is a host name, not a user */
    expect_refused("{\"name\": \"a\", \"entity_type\": \"host\", \"steps\": [{\"action\": "
                   "\"disable_account\", \"params\": {\"user\": \"{entity}\"}}]}",
                   "needs a host_account entity, and the playbook is for host entities");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"host\", \"steps\": [{\"action\": "
                   "\"restore_host\", \"params\": {\"path\": \"{entity}\"}}]}",
                   "restore_host takes no parameter \"path\" (it takes none)");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"host\", \"steps\": [{\"action\": "
                   "\"isolate_host\", \"params\": {\"allow\": [\"10.0.0.0/8\", \"$(id)\"]}}]}",
                   "\"allow\"[2] of isolate_host is not an address");
    expect_refused("{\"name\": \"a\", \"entity_type\": \"file\", \"steps\": [{\"action\": "
                   "\"scan_file\", \"params\": {\"path\": \"{entity}\", "
                   "\"quarantine_if_infected\": \"yes\"}}]}", "true or false");
    expect_valid("{\"name\": \"a\", \"entity_type\": \"process\", \"steps\": [{\"action\": "
                 "\"kill_process\", \"params\": {\"pid\": \"{pid}\", \"path\": \"{path}\"}}]}");
    expect_valid("{\"name\": \"a\", \"entity_type\": \"host\", \"steps\": [{\"action\": "
                 "\"isolate_host\", \"params\": {\"allow\": [\"198.51.100.0/24\", "
                 "\"2001:db8::5\"]}}]}");
    expect_valid("{\"name\": \"a\", \"entity_type\": \"host_account\", \"steps\": "
                 "[{\"action\": \"disable_account\", \"params\": {\"user\": \"{entity}\"}}]}");
}

static void test_params_placeholders(void **state)
{
    json_t *p = parse("{\"ip\": \"{entity}\", \"host\": \"{asset}\", \"pid\": \"{pid}\", "
                      "\"sha256\": \"{sha256}\", \"keep\": \"{entity} x\", \"n\": 3}");
    json_t *out = cwpp_playbook_params(p, "203.0.113.1", "web1", "4242", NULL, NULL);

    (void)state;
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "ip")), "203.0.113.1");
    assert_string_equal(json_string_value(json_object_get(out, "host")), "web1");
    assert_int_equal(json_integer_value(json_object_get(out, "pid")), 4242);
    assert_null(json_object_get(out, "sha256")); /* unknown: left out */
    assert_string_equal(json_string_value(json_object_get(out, "keep")), "{entity} x");
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 3);
    json_decref(out);
    json_decref(p);
}

/* The action table (libs/respond) is the only definition: every member has its row and
 * parses back, and the "action" field of schemas/action.avsc documents exactly its
 * actions. Every entity type has a built-in policy whose action is in the table. */
static void test_vocab_actions(void **state)
{
    const char *want[CWPP_ACT__COUNT];
    vf_list_t   got;
    int         t;

    (void)state;
    for (t = 0; t < CWPP_ACT__COUNT; t++) {
        cwpp_action_t back;

        assert_int_equal(cwpp_action_def((cwpp_action_t)t)->action, t);
        want[t] = cwpp_action_name((cwpp_action_t)t);
        assert_int_equal(cwpp_action_parse(want[t], &back), 0);
        assert_int_equal(back, t);
    }
    for (t = 0; t < CWPP_ENT__COUNT; t++) {
        const cwpp_policy_def_t *pd = cwpp_policy_for_type((cwpp_entity_type_t)t);

        assert_non_null(pd);
        assert_int_equal(pd->type, t);
        assert_string_equal(pd->entity_type, cwpp_entity_type_name((cwpp_entity_type_t)t));
        assert_string_equal(pd->action, cwpp_action_name(pd->action_id));
    }
    if (vf_diff("the action table (libs/respond)", want, CWPP_ACT__COUNT, &got,
                vf_avro_doc("schemas/action.avsc", "action", &got) == 0) != 0)
        fail_msg("schemas/action.avsc disagrees with libs/respond's action table (lines above)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_and_rollbacks),
        cmocka_unit_test(test_policies_per_entity_type),
        cmocka_unit_test(test_builtin_playbooks_are_valid_one_default_per_type),
        cmocka_unit_test(test_playbook_check_names_the_problem),
        cmocka_unit_test(test_playbook_steps_take_only_placeholders_for_targets),
        cmocka_unit_test(test_params_placeholders),
        cmocka_unit_test(test_vocab_actions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
