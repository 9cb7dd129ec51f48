/* SPDX-License-Identifier: Apache-2.0 */
/* respond.c: actions, built-in policies and playbooks (cwpp_respond.h). */
#include "cwpp_respond.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The actions, in enum order (docs/actions.md). */
static const cwpp_action_def_t actions[CWPP_ACT__COUNT] = {
    {"block_ip", "unblock_ip", "drop traffic from and to an IP address on the host (nftables)",
     CWPP_ACT_BLOCK_IP, "Block IP"},
    {"unblock_ip", NULL, "lift a block_ip", CWPP_ACT_UNBLOCK_IP, "Unblock IP"},
    {"isolate_host", "restore_host", "drop all traffic but the management addresses",
     CWPP_ACT_ISOLATE_HOST, "Isolate host"},
    {"restore_host", NULL, "lift an isolate_host", CWPP_ACT_RESTORE_HOST, "Restore host"},
    {"kill_process", NULL, "kill a process (its executable checked first)",
     CWPP_ACT_KILL_PROCESS, "Kill process"},
    {"quarantine_file", NULL, "move a file into quarantine, without permissions, with its SHA-256",
     CWPP_ACT_QUARANTINE_FILE, "Quarantine file"},
    {"disable_account", "enable_account", "lock a host account", CWPP_ACT_DISABLE_ACCOUNT,
     "Disable host account"},
    {"enable_account", NULL, "unlock a host account", CWPP_ACT_ENABLE_ACCOUNT,
     "Enable host account"},
    {"waf_block_ip", "waf_unblock_ip", "deny an IP address at the web application firewall",
     CWPP_ACT_WAF_BLOCK_IP, "Block IP at the WAF"},
    {"waf_unblock_ip", NULL, "lift a waf_block_ip", CWPP_ACT_WAF_UNBLOCK_IP,
     "Unblock IP at the WAF"},
    {"scan_file", NULL, "in-depth virus scan of a file or directory (quarantine what is infected)",
     CWPP_ACT_SCAN_FILE, "Scan file"},
};

/* The built-in policy of each entity type, indexed by type (docs/responder.md). The
 * action's name is the action table's, which test_respond checks. */
static const cwpp_policy_def_t policies[CWPP_ENT__COUNT] = {
    [CWPP_ENT_IP] = {"ip", "block_ip", "Block IP",
     "Drop all traffic from and to the IP address on the affected host until the policy "
     "expires.", CWPP_ENT_IP, CWPP_ACT_BLOCK_IP},
    [CWPP_ENT_FILE] = {"file", "quarantine_file", "Quarantine file",
     "Move the file into the agent's quarantine, without permissions, recording its SHA-256.",
     CWPP_ENT_FILE, CWPP_ACT_QUARANTINE_FILE},
    [CWPP_ENT_PROCESS] = {"process", "kill_process", "Kill process",
     "Kill the process (the agent checks its executable first, so a reused pid is spared).",
     CWPP_ENT_PROCESS, CWPP_ACT_KILL_PROCESS},
    [CWPP_ENT_HOST] = {"host", "isolate_host", "Isolate host",
     "Drop all traffic of the host except its management addresses until the policy expires.",
     CWPP_ENT_HOST, CWPP_ACT_ISOLATE_HOST},
    [CWPP_ENT_HOST_ACCOUNT] = {"host_account", "disable_account", "Disable host account",
     "Lock the account on the host until the policy expires.", CWPP_ENT_HOST_ACCOUNT,
     CWPP_ACT_DISABLE_ACCOUNT},
};

/* Built-in playbooks (docs/architecture.md "Playbooks"); a host, a file and an IP have one
 * each. */
static const char builtin_playbooks[] =
    "[{\"name\": \"offline-investigation\", \"entity_type\": \"host\", \"default\": true,"
    "  \"description\": \"Take the host offline for investigation: only its management "
    "addresses reach it until the validity period ends.\","
    "  \"steps\": [{\"action\": \"isolate_host\", \"params\": {}, \"timeout_s\": 60}]},"
    " {\"name\": \"deep-virus-scan\", \"entity_type\": \"file\", \"default\": true,"
    "  \"description\": \"In-depth virus scan of the file against the agent's signatures; "
    "an infected file is quarantined.\","
    "  \"steps\": [{\"action\": \"scan_file\", \"params\": {\"path\": \"{entity}\", "
    "\"quarantine_if_infected\": true}, \"timeout_s\": 600}]},"
    " {\"name\": \"waf-block-ip\", \"entity_type\": \"ip\", \"default\": true,"
    "  \"description\": \"Block the IP address at the web application firewall until the "
    "validity period ends.\","
    "  \"steps\": [{\"action\": \"waf_block_ip\", \"params\": {\"ip\": \"{entity}\"}, "
    "\"timeout_s\": 60}]}]";

const cwpp_action_def_t *cwpp_action_table(size_t *n)
{
    *n = CWPP_ACT__COUNT;
    return actions;
}

const cwpp_action_def_t *cwpp_action_def(cwpp_action_t a)
{
    assert((unsigned)a < CWPP_ACT__COUNT && actions[a].action == a);
    return &actions[a];
}

const char *cwpp_action_name(cwpp_action_t a)
{
    return cwpp_action_def(a)->name;
}

int cwpp_action_parse(const char *s, cwpp_action_t *out)
{
    size_t i;

    for (i = 0; s != NULL && i < CWPP_ACT__COUNT; i++)
        if (strcmp(actions[i].name, s) == 0) {
            *out = actions[i].action;
            return 0;
        }
    return -1;
}

const cwpp_action_def_t *cwpp_action_find(const char *name)
{
    cwpp_action_t a;

    return cwpp_action_parse(name, &a) == 0 ? &actions[a] : NULL;
}

const cwpp_policy_def_t *cwpp_policy_for_type(cwpp_entity_type_t t)
{
    assert((unsigned)t < CWPP_ENT__COUNT);
    return policies[t].action != NULL ? &policies[t] : NULL;
}

const cwpp_policy_def_t *cwpp_policy_for(const char *entity_type)
{
    cwpp_entity_type_t t;

    return cwpp_entity_type_parse(entity_type, &t) == 0 ? cwpp_policy_for_type(t) : NULL;
}

int cwpp_entity_type_known(const char *s)
{
    cwpp_entity_type_t t;

    return cwpp_entity_type_parse(s, &t) == 0;
}

const char *cwpp_playbooks_builtin(void)
{
    return builtin_playbooks;
}

static int name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

#define WHY(...) (snprintf(why, why_size, __VA_ARGS__), -1)

/*
 * What a playbook step may put in each action's params. A step is stored once and run
 * against entities of attacked hosts, so what the action acts on (an address, a path, a
 * pid, a user, a hash) can only be a placeholder filled from the event's entity, never a
 * fixed value: a custom playbook cannot aim an agent at /etc/passwd, pid 1 or root. The
 * few options that only shape how the action works (an isolation's allow list, scanning's
 * quarantine switch) may be fixed. A param not listed for its action is refused.
 */
typedef enum { SP_TARGET, SP_BOOL, SP_ADDRESSES } step_param_kind_t;

static const struct step_param {
    cwpp_action_t      action;
    const char        *name;
    step_param_kind_t  kind;
    const char        *placeholder; /* SP_TARGET: the only value it may hold */
    cwpp_entity_type_t entity;      /* SP_TARGET: the entity type the placeholder needs */
} step_params[] = {
    {CWPP_ACT_BLOCK_IP, "ip", SP_TARGET, "{entity}", CWPP_ENT_IP},
    {CWPP_ACT_UNBLOCK_IP, "ip", SP_TARGET, "{entity}", CWPP_ENT_IP},
    {CWPP_ACT_WAF_BLOCK_IP, "ip", SP_TARGET, "{entity}", CWPP_ENT_IP},
    {CWPP_ACT_WAF_UNBLOCK_IP, "ip", SP_TARGET, "{entity}", CWPP_ENT_IP},
    {CWPP_ACT_ISOLATE_HOST, "allow", SP_ADDRESSES, NULL, CWPP_ENT__COUNT},
    {CWPP_ACT_KILL_PROCESS, "pid", SP_TARGET, "{pid}", CWPP_ENT_PROCESS},
    {CWPP_ACT_KILL_PROCESS, "path", SP_TARGET, "{path}", CWPP_ENT_PROCESS},
    {CWPP_ACT_QUARANTINE_FILE, "path", SP_TARGET, "{entity}", CWPP_ENT_FILE},
    {CWPP_ACT_QUARANTINE_FILE, "sha256", SP_TARGET, "{sha256}", CWPP_ENT_FILE},
    {CWPP_ACT_DISABLE_ACCOUNT, "user", SP_TARGET, "{entity}", CWPP_ENT_HOST_ACCOUNT},
    {CWPP_ACT_ENABLE_ACCOUNT, "user", SP_TARGET, "{entity}", CWPP_ENT_HOST_ACCOUNT},
    {CWPP_ACT_SCAN_FILE, "path", SP_TARGET, "{entity}", CWPP_ENT_FILE},
    {CWPP_ACT_SCAN_FILE, "quarantine_if_infected", SP_BOOL, NULL, CWPP_ENT__COUNT},
};

/* The params an action takes in a step, "a, b" or "none", for error sentences. */
static const char *step_param_names(cwpp_action_t a, char *buf, size_t size)
{
    size_t i, used = 0;

    buf[0] = '\0';
    for (i = 0; i < sizeof(step_params) / sizeof(step_params[0]); i++) {
        if (step_params[i].action == a && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s\"%s\"", used ? ", " : "",
                                     step_params[i].name);
    }
    return buf[0] != '\0' ? buf : "none";
}

/* An allow-list entry: an IPv4/IPv6 address or CIDR, by its characters and length (the
 * agent parses it fully when it applies the isolation). */
static int address_like(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t      n;

    if (s == NULL || (n = strlen(s)) == 0 || n > 49)
        return 0;
    return strspn(s, "0123456789abcdefABCDEF.:/") == n;
}

/* Checks the params of step i (1-based) of playbook name, of entity type type. */
static int step_params_check(const char *name, const char *type, size_t i, cwpp_action_t a,
                             const json_t *params, char *why, size_t why_size)
{
    const char *key;
    json_t     *v;
    char        names[128];

    json_object_foreach((json_t *)params, key, v) {
        const struct step_param *sp = NULL;
        size_t                   k;

        for (k = 0; k < sizeof(step_params) / sizeof(step_params[0]); k++)
            if (step_params[k].action == a && strcmp(step_params[k].name, key) == 0)
                sp = &step_params[k];
        if (sp == NULL)
            return WHY("playbook %s: step %zu: %s takes no parameter \"%.40s\" (it takes %s)",
                       name, i, cwpp_action_name(a), key, step_param_names(a, names,
                                                                          sizeof(names)));
        switch (sp->kind) {
        case SP_TARGET:
            if (!json_is_string(v) || strcmp(json_string_value(v), sp->placeholder) != 0)
                return WHY("playbook %s: step %zu: \"%s\" of %s must be the placeholder "
                           "\"%s\", filled from the event's entity; a playbook may not fix "
                           "what an agent acts on", name, i, key, cwpp_action_name(a),
                           sp->placeholder);
            if (strcmp(type, cwpp_entity_type_name(sp->entity)) != 0)
                return WHY("playbook %s: step %zu: \"%s\" of %s needs a %s entity, and the "
                           "playbook is for %s entities", name, i, key, cwpp_action_name(a),
                           cwpp_entity_type_name(sp->entity), type);
            break;
        case SP_BOOL:
            if (!json_is_boolean(v))
                return WHY("playbook %s: step %zu: \"%s\" of %s must be true or false", name,
                           i, key, cwpp_action_name(a));
            break;
        case SP_ADDRESSES: {
            size_t  j;
            json_t *e;

            if (!json_is_array(v) || json_array_size(v) > 256)
                return WHY("playbook %s: step %zu: \"%s\" of %s must be a list of at most "
                           "256 addresses or CIDRs", name, i, key, cwpp_action_name(a));
            json_array_foreach(v, j, e) {
                if (!address_like(e))
                    return WHY("playbook %s: step %zu: \"%s\"[%zu] of %s is not an address "
                               "or CIDR", name, i, key, j + 1, cwpp_action_name(a));
            }
            break;
        }
        }
    }
    return 0;
}

int cwpp_playbook_check(const json_t *pb, char *why, size_t why_size)
{
    const json_t *steps, *desc, *def, *k;
    const char   *name, *type, *key;
    size_t        i;

    if (!json_is_object(pb))
        return WHY("a playbook must be a JSON object");
    json_object_foreach((json_t *)pb, key, k) {
        if (strcmp(key, "name") != 0 && strcmp(key, "entity_type") != 0 &&
            strcmp(key, "description") != 0 && strcmp(key, "default") != 0 &&
            strcmp(key, "steps") != 0)
            return WHY("unknown playbook field \"%.40s\" (name, entity_type, description, "
                       "default, steps)", key);
    }
    name = json_string_value(json_object_get(pb, "name"));
    if (name == NULL || !name_ok(name))
        return WHY("the playbook's \"name\" must be 1 to 64 characters of a-z, 0-9, '.', '_' "
                   "or '-', starting with a letter or digit");
    type = json_string_value(json_object_get(pb, "entity_type"));
    if (!cwpp_entity_type_known(type)) {
        char types[128];

        return WHY("playbook %s: \"entity_type\" must be %s", name,
                   cwpp_entity_types_text(types, sizeof(types), ", ", " or "));
    }
    desc = json_object_get(pb, "description");
    if (desc != NULL && (!json_is_string(desc) || json_string_length(desc) > 1000))
        return WHY("playbook %s: \"description\" must be a text of at most 1000 bytes", name);
    def = json_object_get(pb, "default");
    if (def != NULL && !json_is_boolean(def))
        return WHY("playbook %s: \"default\" must be true or false", name);
    steps = json_object_get(pb, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 || json_array_size(steps) > 20)
        return WHY("playbook %s: \"steps\" must be a list of 1 to 20 steps", name);
    for (i = 0; i < json_array_size(steps); i++) {
        const json_t *st = json_array_get(steps, i), *p, *to, *v;
        const char   *act;

        if (!json_is_object(st))
            return WHY("playbook %s: step %zu is not an object", name, i + 1);
        json_object_foreach((json_t *)st, key, v) {
            if (strcmp(key, "action") != 0 && strcmp(key, "params") != 0 &&
                strcmp(key, "timeout_s") != 0)
                return WHY("playbook %s: step %zu has unknown field \"%.40s\" (action, params, "
                           "timeout_s)", name, i + 1, key);
        }
        act = json_string_value(json_object_get(st, "action"));
        if (cwpp_action_find(act) == NULL)
            return WHY("playbook %s: step %zu: unknown action \"%.40s\" (docs/actions.md)", name,
                       i + 1, act != NULL ? act : "");
        p = json_object_get(st, "params");
        if (p != NULL && !json_is_object(p))
            return WHY("playbook %s: step %zu: \"params\" must be an object", name, i + 1);
        if (p != NULL && step_params_check(name, type, i + 1, cwpp_action_find(act)->action, p,
                                           why, why_size) != 0)
            return -1;
        to = json_object_get(st, "timeout_s");
        if (to != NULL && (!json_is_integer(to) || json_integer_value(to) < 1 ||
                           json_integer_value(to) > 86400))
            return WHY("playbook %s: step %zu: \"timeout_s\" must be a whole number of seconds "
                       "from 1 to 86400", name, i + 1);
    }
    return 0;
}

json_t *cwpp_playbook_params(const json_t *params, const char *entity, const char *asset,
                             const char *pid, const char *path, const char *sha256)
{
    json_t     *out = json_object(), *v;
    const char *key;

    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)params, key, v) {
        const char *s = json_string_value(v), *sub = NULL;
        int         is_tok = 1;

        if (s != NULL && strcmp(s, "{entity}") == 0)
            sub = entity;
        else if (s != NULL && strcmp(s, "{asset}") == 0)
            sub = asset;
        else if (s != NULL && strcmp(s, "{pid}") == 0)
            sub = pid;
        else if (s != NULL && strcmp(s, "{sha256}") == 0)
            sub = sha256;
        else if (s != NULL && strcmp(s, "{path}") == 0)
            sub = path;
        else
            is_tok = 0;
        if (!is_tok) {
            if (json_object_set(out, key, v) != 0)
                goto fail;
        } else if (sub != NULL) {
            json_t *nv = (s[1] == 'p') ? json_integer(strtoll(sub, NULL, 10)) : json_string(sub);

            if (nv == NULL || json_object_set_new(out, key, nv) != 0)
                goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}
