/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy.c: the parameters of an entity's built-in handling policy (docs/responder.md
 * "Recommended handling policy"): an IP is blocked by address, a host isolated, a host
 * account disabled by user name, a process killed by pid (with its path when known, so
 * the agent can check it is still that program), a file quarantined by path (with its
 * hash when known); and the time a run of steps needs (the shortest validity it may be
 * given). Pure: no I/O; the caller found the entity and what its alerts carry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_respond.h"

json_t *cwpp_policy_steps(const char *type, const char *value, const char *pid,
                          const char *path, const char *sha256, const char **action, char *why,
                          size_t why_size)
{
    const cwpp_policy_def_t *pd = NULL;
    cwpp_entity_type_t       et = CWPP_ENT__COUNT;
    json_t                  *params = NULL;

    why[0] = '\0';
    if (type != NULL && cwpp_entity_type_parse(type, &et) == 0)
        pd = cwpp_policy_for_type(et);
    if (pd == NULL) {
        snprintf(why, why_size, "Entity %s:%.200s: no built-in handling policy for entity "
                 "type %s.", type != NULL ? type : "", value, type != NULL ? type : "");
        return NULL;
    }
    *action = pd->action;
    /* a switch over the enum: -Wswitch names an entity type added without its parameters */
    switch (et) {
    case CWPP_ENT_IP:
        params = json_pack("{s:s}", "ip", value);
        break;
    case CWPP_ENT_HOST:
        params = json_object();
        break;
    case CWPP_ENT_HOST_ACCOUNT:
        params = json_pack("{s:s}", "user", value);
        break;
    case CWPP_ENT_PROCESS:
        if (pid == NULL || pid[0] == '\0') {
            snprintf(why, why_size, "Process %.200s: its alerts carry no process id, so it "
                     "cannot be killed safely.", value);
            return NULL;
        }
        params = json_pack("{s:I, s:s?}", "pid", (json_int_t)strtoll(pid, NULL, 10), "path",
                           path != NULL && path[0] == '/' ? path : NULL);
        break;
    case CWPP_ENT_FILE:
        if (value[0] != '/') {
            snprintf(why, why_size, "File %.200s: its alerts carry no path (only a hash), so "
                     "it cannot be quarantined.", value);
            return NULL;
        }
        params = json_pack("{s:s, s:s?}", "path", value, "sha256",
                           sha256 != NULL && sha256[0] != '\0' ? sha256 : NULL);
        break;
    case CWPP_ENT__COUNT:
        snprintf(why, why_size, "Entity %s:%.200s: the built-in policy of entity type %s "
                 "takes no parameters this version knows.", type, value, type);
        return NULL;
    }
    if (params == NULL)
        return NULL;
    return json_pack("[{s:s, s:o}]", "action", pd->action, "params", params);
}

int64_t cwpp_steps_need_ms(const json_t *steps, int64_t default_timeout_ms)
{
    int64_t need = 0;
    size_t  i;

    for (i = 0; i < json_array_size(steps); i++) {
        const json_t *to = json_object_get(json_array_get(steps, i), "timeout_s");

        need += json_is_integer(to) && json_integer_value(to) > 0
                    ? (int64_t)json_integer_value(to) * 1000
                    : default_timeout_ms;
    }
    return need;
}
