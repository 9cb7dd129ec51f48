/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_respond: what the responder and cwppctl both need to know about handling
 * (docs/responder.md, docs/actions.md): the actions an enforcement agent understands and
 * their rollbacks, the built-in handling policy of each entity type, and the validation
 * of playbooks (built-in, from files, or custom).
 */
#ifndef CWPP_RESPOND_H
#define CWPP_RESPOND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_alert.h"

/*
 * The actions an enforcement agent understands (docs/actions.md), defined once in the
 * table of respond.c. The enforcer's dispatch table (services/enforcer) must know every
 * one, and schemas/action.avsc documents them: tests/unit/respond checks both.
 */
typedef enum {
    CWPP_ACT_BLOCK_IP = 0, CWPP_ACT_UNBLOCK_IP, CWPP_ACT_ISOLATE_HOST, CWPP_ACT_RESTORE_HOST,
    CWPP_ACT_KILL_PROCESS, CWPP_ACT_QUARANTINE_FILE, CWPP_ACT_DISABLE_ACCOUNT,
    CWPP_ACT_ENABLE_ACCOUNT, CWPP_ACT_WAF_BLOCK_IP, CWPP_ACT_WAF_UNBLOCK_IP, CWPP_ACT_SCAN_FILE,
    CWPP_ACT__COUNT /* not an action: the number of them */
} cwpp_action_t;

/* One action of docs/actions.md. rollback is the action that undoes it, or NULL. */
typedef struct cwpp_action_def {
    const char   *name;
    const char   *rollback;
    const char   *summary;
    cwpp_action_t action;
    const char   *display;  /* "Block IP" */
} cwpp_action_def_t;

/* The action named name, or NULL. */
const cwpp_action_def_t *cwpp_action_find(const char *name);
/* The table (n entries, in enum order). */
const cwpp_action_def_t *cwpp_action_table(size_t *n);
/* The row of a member (asserts on anything else). */
const cwpp_action_def_t *cwpp_action_def(cwpp_action_t a);
const char              *cwpp_action_name(cwpp_action_t a);
/* name to member: 0, or -1 for an unknown name (and NULL). */
int cwpp_action_parse(const char *s, cwpp_action_t *out);

/* The built-in handling policy of an entity type. */
typedef struct cwpp_policy_def {
    const char        *entity_type;
    const char        *action;      /* what it applies (a name of the action table) */
    const char        *title;       /* "Block IP" */
    const char        *description;
    cwpp_entity_type_t type;
    cwpp_action_t      action_id;   /* the same action as a member */
} cwpp_policy_def_t;

/* The built-in policy of entity_type, or NULL when it has none. */
const cwpp_policy_def_t *cwpp_policy_for(const char *entity_type);
/* The built-in policy of an entity type member, or NULL when it has none. */
const cwpp_policy_def_t *cwpp_policy_for_type(cwpp_entity_type_t t);
/* 1 when s names an entity type (the table of libs/alert). */
int cwpp_entity_type_known(const char *s);

/*
 * Validates a playbook definition
 *   {"name", "entity_type", "description", "default": bool,
 *    "steps": [{"action", "params": {...}, "timeout_s"}]}
 * A step's params are only those its action takes; what the action acts on (ip, path,
 * pid, user, sha256) must be the placeholder filled from the entity ("{entity}", "{pid}",
 * "{path}", "{sha256}") of the playbook's entity type, never a fixed value.
 * Returns 0, or -1 with a sentence naming the problem in why.
 */
int cwpp_playbook_check(const json_t *pb, char *why, size_t why_size);

/* The built-in playbooks as a JSON array text (each valid for cwpp_playbook_check). */
const char *cwpp_playbooks_builtin(void);

/*
 * Params of a step with the placeholders "{entity}", "{asset}", "{pid}", "{path}",
 * "{sha256}" (a whole string value) replaced by the values given (NULL ones leave the key
 * out). A new reference, or NULL on ENOMEM.
 */
json_t *cwpp_playbook_params(const json_t *params, const char *entity, const char *asset,
                             const char *pid, const char *path, const char *sha256);

/*
 * policy.c: the steps of the built-in handling policy of an entity (type:value, seen with
 * pid, path and sha256: "" when its alerts carry none): [{"action", "params"}], with
 * *action the policy's action. NULL with one sentence in why when it cannot be applied
 * (no policy for the type, a process without pid, a file without a path), or NULL with
 * why empty when out of memory. The result is the caller's (json_decref).
 */
json_t *cwpp_policy_steps(const char *type, const char *value, const char *pid,
                          const char *path, const char *sha256, const char **action, char *why,
                          size_t why_size);

/*
 * policy.c: the time the steps of a playbook or policy ([{"action", "params",
 * "timeout_s"?}]) need to run to their end, in ms: the sum of the steps' timeouts, a step's
 * "timeout_s" when it has one, else default_timeout_ms (one attempt each: a retried step
 * may need more, and a lease that ends first stops the run). The shortest validity period
 * a run of these steps is given (docs/responder.md "Validity"). 0 for no steps.
 */
int64_t cwpp_steps_need_ms(const json_t *steps, int64_t default_timeout_ms);

#endif /* CWPP_RESPOND_H */
