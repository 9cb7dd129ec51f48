/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_policy.c: cwpp_policy_steps, the built-in handling policy of an entity
 * (docs/responder.md "Recommended handling policy"): which action and parameters each
 * entity type gets from what its alerts carry, and the refusals when something needed is
 * missing. Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cwpp_respond.h"

static void test_steps(void **state)
{
    static const struct {
        const char *type, *value, *pid, *path, *sha256;
        const char *steps; /* the JSON expected, or NULL: refused */
        const char *why;
    } cases[] = {
        {"ip", "203.0.113.7", "", "", "", NULL, NULL},
        {"host", "i-1", "", "", "", NULL, NULL},
        {"host_account", "root", "", "", "", NULL, NULL},
        {"process", "/usr/bin/nc", "4242", "/usr/bin/nc", "", NULL, NULL},
        {"process", "nc", "4242", "nc", "", NULL, NULL}, /* no absolute path: null */
        {"process", "/usr/bin/nc", "", "/usr/bin/nc", "", NULL, "no process id"},
        {"file", "/tmp/x", "", "", "abc", NULL, NULL},
        {"file", "/tmp/x", "", "", "", NULL, NULL},
        {"file", "d41d8cd98f00b204e9800998ecf8427e", "", "", "", NULL, "no path"},
        {"unicorn", "x", "", "", "", NULL, "no built-in handling policy for entity type"},
    };
    static const char *const want[] = {
        "[{\"action\": \"block_ip\", \"params\": {\"ip\": \"203.0.113.7\"}}]",
        "[{\"action\": \"isolate_host\", \"params\": {}}]",
        "[{\"action\": \"disable_account\", \"params\": {\"user\": \"root\"}}]",
        "[{\"action\": \"kill_process\", \"params\": {\"pid\": 4242, \"path\": \"/usr/bin/nc\"}}]",
        "[{\"action\": \"kill_process\", \"params\": {\"pid\": 4242, \"path\": null}}]",
        NULL,
        "[{\"action\": \"quarantine_file\", \"params\": {\"path\": \"/tmp/x\", \"sha256\": \"abc\"}}]",
        "[{\"action\": \"quarantine_file\", \"params\": {\"path\": \"/tmp/x\", \"sha256\": null}}]",
        NULL,
        NULL,
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *action = NULL;
        char        why[400];
        json_t     *steps = cwpp_policy_steps(cases[i].type, cases[i].value, cases[i].pid,
                                              cases[i].path, cases[i].sha256, &action, why,
                                              sizeof(why));

        if (want[i] == NULL) {
            assert_null(steps);
            if (strstr(why, cases[i].why) == NULL)
                fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, cases[i].why);
            continue;
        }
        {
            json_error_t jerr;
            json_t      *w = json_loads(want[i], 0, &jerr);

            assert_non_null(w);
            assert_non_null(steps);
            if (!json_equal(steps, w)) {
                char *got = json_dumps(steps, JSON_COMPACT);

                fail_msg("case %zu: got %s", i, got);
            }
            assert_string_equal(action, json_string_value(json_object_get(
                                            json_array_get(w, 0), "action")));
            assert_non_null(cwpp_action_find(action)); /* an action agents understand */
            json_decref(w);
        }
        json_decref(steps);
    }
}

/* The time a run needs: the sum of its steps' timeouts, a step's own timeout_s winning
 * over the default; the built-in deep-virus-scan needs its 600 s step. */
static void test_steps_need(void **state)
{
    json_t      *steps, *pbs;
    json_error_t jerr;
    size_t       i;
    int          seen = 0;

    (void)state;
    assert_int_equal(cwpp_steps_need_ms(NULL, 1000), 0);
    steps = json_loads("[{\"action\": \"block_ip\"}, {\"action\": \"waf_block_ip\", "
                       "\"timeout_s\": 10}, {\"action\": \"block_ip\", \"timeout_s\": 0}]", 0,
                       &jerr);
    assert_non_null(steps);
    assert_int_equal(cwpp_steps_need_ms(steps, 2500), 2500 + 10000 + 2500);
    json_decref(steps);
    pbs = json_loads(cwpp_playbooks_builtin(), 0, &jerr);
    assert_non_null(pbs);
    for (i = 0; i < json_array_size(pbs); i++) {
        const json_t *pb = json_array_get(pbs, i);

        if (strcmp(json_string_value(json_object_get(pb, "name")), "deep-virus-scan") == 0) {
            assert_true(cwpp_steps_need_ms(json_object_get(pb, "steps"), 60000) >= 600000);
            seen = 1;
        }
    }
    assert_true(seen);
    json_decref(pbs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_steps_need),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
