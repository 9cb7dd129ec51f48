/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_playbook: playbook validation and the step parameters' placeholders on arbitrary
 * bytes (playbook files and playbooks.add commands come from operators and analysts).
 * Properties checked beyond "no crash, no leak, no UB":
 *  - every refusal carries a sentence;
 *  - every step of an accepted playbook names a known action, and its bound parameters
 *    have only keys of its own parameters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_respond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t      *pb = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    char         why[300];
    size_t       i;

    if (pb == NULL)
        return 0;
    why[0] = '\0';
    if (cwpp_playbook_check(pb, why, sizeof(why)) != 0) {
        if (why[0] == '\0')
            abort();
        json_decref(pb);
        return 0;
    }
    for (i = 0; i < json_array_size(json_object_get(pb, "steps")); i++) {
        json_t     *st = json_array_get(json_object_get(pb, "steps"), i);
        json_t     *params = json_object_get(st, "params"), *bound, *v;
        const char *k;

        if (cwpp_action_find(json_string_value(json_object_get(st, "action"))) == NULL)
            abort();
        bound = cwpp_playbook_params(params, "203.0.113.1", "web1", size % 2 ? "42" : NULL,
                                     size % 3 ? "/usr/bin/x" : NULL, "ab");
        if (bound == NULL)
            continue; /* out of memory */
        json_object_foreach(bound, k, v) {
            if (json_object_get(params, k) == NULL)
                abort();
        }
        json_decref(bound);
    }
    json_decref(pb);
    return 0;
}
