/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.c: the action vocabulary (docs/actions.md): its dispatch table, the parameter
 * checks every action shares, and enf_apply(). What each action does on this host lives
 * in act_net.c and act_host.c:
 *
 *   block_ip / unblock_ip          {ip}            nftables table inet cwpp_enforcer
 *   isolate_host / restore_host    {allow?} / {}   nftables table inet cwpp_isolation
 *   kill_process                   {pid, path?}    pidfd, SIGKILL
 *   quarantine_file                {path, sha256?} files.c
 *   disable_account / enable_account {user}        usermod (posix_spawn, no shell)
 *   waf_block_ip / waf_unblock_ip  {ip}            "deny IP;" lines of the deny file
 *   scan_file                      {path, quarantine_if_infected?} files.c
 *
 * Parameters are checked strictly before anything is done: a missing, malformed or
 * unknown parameter fails the action with a sentence naming it. Every action is
 * idempotent: doing it again when it is already done succeeds and says so.
 */
#include "enf_internal.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cwpp_log.h"

int enf_fail(enf_outcome_t *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
    va_end(ap);
    o->ok = 0;
    return 0;
}

int enf_ok(enf_outcome_t *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
    va_end(ap);
    o->ok = 1;
    return 0;
}

/* ------------------------------------------------------------------ clocks */

int enf_check_window(int64_t now, int64_t issued_at_ms, int64_t deadline_ms, int64_t skew,
                     enf_outcome_t *o)
{
    char t_now[40], t_from[40], t_to[40];

    if (!(issued_at_ms > 0 && issued_at_ms - skew > now) &&
        !(deadline_ms > 0 && now - skew > deadline_ms))
        return 0;
    cwpp_format_time_ms(now, t_now, sizeof(t_now));
    cwpp_format_time_ms(issued_at_ms, t_from, sizeof(t_from));
    if (deadline_ms > 0)
        cwpp_format_time_ms(deadline_ms, t_to, sizeof(t_to));
    else
        cwpp_strlcpy(t_to, "no deadline", sizeof(t_to));
    if (issued_at_ms > 0 && issued_at_ms - skew > now)
        enf_fail(o, "refused: the action is not valid yet by this agent's clock: it was "
                 "issued at %s, %lld ms ahead of this agent's clock (%s), more than the %lld "
                 "ms enforcer.clock.skew.max.ms tolerates (its window: %s to %s); not applied. "
                 "Check the clocks (NTP) of this host and of the responder.",
                 t_from, (long long)(issued_at_ms - now), t_now, (long long)skew, t_from,
                 t_to);
    else
        enf_fail(o, "arrived after its deadline: by this agent's clock (%s) its window (%s to "
                 "%s) ended %lld ms ago, more than the %lld ms enforcer.clock.skew.max.ms "
                 "tolerates; not applied. If the action was sent just now, check the clocks "
                 "(NTP) of this host and of the responder.",
                 t_now, t_from, t_to, (long long)(now - deadline_ms), (long long)skew);
    return -1;
}

/* ------------------------------------------------------------ management */

const enf_net_t *enf_mgmt_match(const enf_ctx_t *c, const enf_net_t *a)
{
    size_t i;

    for (i = 0; i < c->nmgmt; i++)
        if (enf_net_contains(&c->mgmt[i], a))
            return &c->mgmt[i];
    return NULL;
}

/* --------------------------------------------------------------- parameters */

/* Fails o unless every key of p is one of allowed (NULL-terminated). */
int enf_only_keys(json_t *p, const char *action, const char *const *allowed,
                     enf_outcome_t *o)
{
    const char *k;
    json_t     *v;
    size_t      i;

    json_object_foreach(p, k, v) {
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], k) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            char key[80];

            snprintf(key, sizeof(key), "%s", k);
            cwpp_utf8_sanitize(key);
            return enf_fail(o, "%s has no parameter \"%s\".", action, key), -1;
        }
    }
    return 0;
}

/* The string parameter key of p into *s (NULL when optional and absent). */
int enf_p_str(json_t *p, const char *action, const char *key, int required, const char **s,
                 enf_outcome_t *o)
{
    json_t *v = json_object_get(p, key);

    *s = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return enf_fail(o, "%s needs the parameter \"%s\".", action, key), -1;
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return enf_fail(o, "the parameter \"%s\" of %s must be a non-empty string.", key,
                        action), -1;
    *s = json_string_value(v);
    return 0;
}

/* The ip parameter: one IPv4 or IPv6 address, canonical text into txt[64]. */
int enf_p_ip(json_t *p, const char *action, enf_net_t *n, char txt[64], enf_outcome_t *o)
{
    const char *ip;

    if (enf_p_str(p, action, "ip", 1, &ip, o) != 0)
        return -1;
    if (enf_net_parse(ip, 0, n) != CWPP_OK)
        return enf_fail(o, "the parameter \"ip\" of %s, \"%.60s\", is not an IPv4 or IPv6 "
                        "address.", action, ip), -1;
    enf_net_format(n, txt, 64);
    return 0;
}

/* An absolute path without NUL bytes, at most PATH_MAX - 1 bytes. */
int enf_p_path(json_t *p, const char *action, const char *key, int required,
                  const char **s, enf_outcome_t *o)
{
    if (enf_p_str(p, action, key, required, s, o) != 0)
        return -1;
    if (*s != NULL && ((*s)[0] != '/' || strlen(*s) >= PATH_MAX))
        return enf_fail(o, "the parameter \"%s\" of %s must be an absolute path.", key,
                        action), -1;
    return 0;
}

/* ----------------------------------------------------------------- dispatch */

static void act_block(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"ip", NULL};

    if (enf_only_keys(p, "block_ip", keys, o) == 0)
        enf_act_block_ip(c, id, p, o, 1);
}
static void act_unblock(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"ip", NULL};

    if (enf_only_keys(p, "unblock_ip", keys, o) == 0)
        enf_act_block_ip(c, id, p, o, 0);
}
static void act_disable(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    enf_act_account(c, id, p, o, 1);
}
static void act_enable(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    enf_act_account(c, id, p, o, 0);
}
static void act_waf_block(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    enf_act_waf(c, id, p, o, 1);
}
static void act_waf_unblock(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    enf_act_waf(c, id, p, o, 0);
}

static const struct action_def {
    const char *name;
    void (*fn)(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
} ACTIONS[] = {
    {"block_ip", act_block},
    {"unblock_ip", act_unblock},
    {"isolate_host", enf_act_isolate},
    {"restore_host", enf_act_restore},
    {"kill_process", enf_act_kill},
    {"quarantine_file", enf_act_quarantine},
    {"disable_account", act_disable},
    {"enable_account", act_enable},
    {"waf_block_ip", act_waf_block},
    {"waf_unblock_ip", act_waf_unblock},
    {"scan_file", enf_act_scan},
};

size_t enf_action_count(void)
{
    return sizeof(ACTIONS) / sizeof(ACTIONS[0]);
}

const char *enf_action_name(size_t i)
{
    assert(i < enf_action_count());
    return ACTIONS[i].name;
}

int enf_action_known(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(ACTIONS) / sizeof(ACTIONS[0]); i++)
        if (strcmp(ACTIONS[i].name, name) == 0)
            return 1;
    return 0;
}

void enf_apply(const enf_ctx_t *c, const char *action_id, const char *action,
               const char *params_json, enf_outcome_t *o)
{
    json_error_t jerr;
    json_t      *p;
    size_t       i;

    for (i = 0; i < sizeof(ACTIONS) / sizeof(ACTIONS[0]); i++)
        if (strcmp(ACTIONS[i].name, action) == 0)
            break;
    if (i == sizeof(ACTIONS) / sizeof(ACTIONS[0])) {
        char name[80];

        snprintf(name, sizeof(name), "%s", action);
        cwpp_utf8_sanitize(name);
        enf_fail(o, "unknown action %s.", name);
        return;
    }
    p = json_loads(params_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(p)) {
        json_decref(p);
        enf_fail(o, "the parameters of %s are not a JSON object%s%s.", action,
                 p == NULL ? ": " : "", p == NULL ? jerr.text : "");
        return;
    }
    ACTIONS[i].fn(c, action_id, p, o);
    json_decref(p);
}
