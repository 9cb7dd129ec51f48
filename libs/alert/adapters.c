/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adapters.c: shape detection and the Falco and Wazuh mappings onto the CWPP contract
 * (the mapping tables are documented in docs/alert-format.md; keep the two in step).
 *
 * A mapping builds a new JSON object in the contract's shape and hands it to the one
 * normalizer, so Falco and Wazuh alerts are validated by exactly the same rules. The
 * adapters are lenient only where the detector's own format is: a Wazuh timestamp's
 * "+0000" offset, a source IP that is a host name (kept in details, not an entity).
 */
#include "alert_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

static int is_ip(const char *s)
{
    unsigned char buf[16];

    return s != NULL && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static const char *str_at(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int has_tag(json_t *tags, const char *tag)
{
    size_t  i;
    json_t *t;

    json_array_foreach(tags, i, t) {
        if (json_is_string(t) && strcasecmp(json_string_value(t), tag) == 0)
            return 1;
    }
    return 0;
}

/* ATT&CK tactics by name (Wazuh "Credential Access") and Falco tag ("mitre_credential_access"). */
static const struct {
    const char *id, *name, *falco;
} tactics[] = {
    {"TA0043", "Reconnaissance", "mitre_reconnaissance"},
    {"TA0042", "Resource Development", "mitre_resource_development"},
    {"TA0001", "Initial Access", "mitre_initial_access"},
    {"TA0002", "Execution", "mitre_execution"},
    {"TA0003", "Persistence", "mitre_persistence"},
    {"TA0004", "Privilege Escalation", "mitre_privilege_escalation"},
    {"TA0005", "Defense Evasion", "mitre_defense_evasion"},
    {"TA0006", "Credential Access", "mitre_credential_access"},
    {"TA0007", "Discovery", "mitre_discovery"},
    {"TA0008", "Lateral Movement", "mitre_lateral_movement"},
    {"TA0009", "Collection", "mitre_collection"},
    {"TA0011", "Command and Control", "mitre_command_and_control"},
    {"TA0010", "Exfiltration", "mitre_exfiltration"},
    {"TA0040", "Impact", "mitre_impact"},
};
#define NTACTICS (sizeof(tactics) / sizeof(tactics[0]))

const char *cwpp_alert_tactic_name(const char *id)
{
    size_t i;

    for (i = 0; id != NULL && i < NTACTICS; i++)
        if (strcmp(tactics[i].id, id) == 0)
            return tactics[i].name;
    return NULL;
}

/* 1 when s names the tactic name: case aside, '-' and '_' stand for spaces. */
static int tactic_name_is(const char *s, const char *name)
{
    for (; *s != '\0' && *name != '\0'; s++, name++) {
        int c = (*s == '-' || *s == '_') ? ' ' : tolower((unsigned char)*s);

        if (c != tolower((unsigned char)*name))
            return 0;
    }
    return *s == '\0' && *name == '\0';
}

const char *cwpp_alert_tactic_find(const char *s)
{
    size_t i;

    for (i = 0; s != NULL && i < NTACTICS; i++)
        if (strcasecmp(tactics[i].id, s) == 0 || tactic_name_is(s, tactics[i].name))
            return tactics[i].id;
    return NULL;
}

static int looks_like_technique(const char *s)
{
    size_t n = strlen(s), i;

    if ((n != 5 && n != 9) || (s[0] != 'T' && s[0] != 't'))
        return 0;
    for (i = 1; i < 5; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return n == 5 || (s[5] == '.' && isdigit((unsigned char)s[6]) &&
                      isdigit((unsigned char)s[7]) && isdigit((unsigned char)s[8]));
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL && *v != '\0')
        json_object_set_new(o, k, json_string(v));
}

/* ---------------------------------------------------------------------- Falco */

static const char *falco_severity(const char *p)
{
    if (p == NULL)
        return NULL;
    if (!strcasecmp(p, "emergency") || !strcasecmp(p, "alert") || !strcasecmp(p, "critical"))
        return "critical";
    if (!strcasecmp(p, "error"))
        return "high";
    if (!strcasecmp(p, "warning"))
        return "medium";
    if (!strcasecmp(p, "notice") || !strcasecmp(p, "informational") ||
        !strcasecmp(p, "info") || !strcasecmp(p, "debug"))
        return "low";
    return NULL;
}

static int map_falco(nctx_t *c, json_t *in, const cwpp_alert_opts_t *opts, json_t **outp)
{
    json_t     *out = json_object(), *of, *tags, *details, *attack, *proc, *v;
    const char *pri, *sev, *host, *acct, *type, *fd_name, *fd_type, *rip;
    size_t      i;

    *outp = out;
    of = json_object_get(in, "output_fields");
    if (of != NULL && !json_is_object(of))
        return cwpp_alert__bad(c, "wrong_type", "Falco field \"output_fields\" must be an object");
    tags = json_object_get(in, "tags");
    if (tags != NULL && !json_is_array(tags))
        return cwpp_alert__bad(c, "wrong_type", "Falco field \"tags\" must be an array");

    json_object_set(out, "name", json_object_get(in, "rule"));
    pri = str_at(in, "priority");
    sev = falco_severity(pri);
    if (sev == NULL)
        return cwpp_alert__bad(c, "invalid_value", "Falco priority \"%.32s\" is not one of "
                               "Emergency, Alert, Critical, Error, Warning, Notice, "
                               "Informational, Debug", pri != NULL ? pri : "");
    json_object_set_new(out, "severity", json_string(sev));
    if ((v = json_object_get(in, "time")) != NULL)
        json_object_set(out, "occurred_at", v);
    json_object_set_new(out, "source", json_string("falco"));

    acct = of != NULL ? str_at(of, "account_id") : NULL;
    if (acct == NULL && of != NULL)
        acct = str_at(of, "cloud.account_id");
    if (acct == NULL)
        acct = opts->adapter_account_id;
    if (acct == NULL || *acct == '\0')
        return cwpp_alert__bad(c, "missing_field", "Falco alert carries no account "
                               "(output_fields.account_id) and ingest.adapter_account_id is "
                               "not set");
    json_object_set_new(out, "account_id", json_string(acct));

    host = str_at(in, "hostname");
    if (host == NULL && of != NULL)
        host = str_at(of, "hostname");
    if (host == NULL)
        return cwpp_alert__bad(c, "missing_field", "Falco alert has no \"hostname\" to name "
                               "the asset");
    json_object_set_new(out, "asset", json_pack("{s:s,s:s}", "id", host, "name", host));

    /* type from the rule's tags */
    if (has_tag(tags, "network"))
        type = "network_attack";
    else if (has_tag(tags, "filesystem") && !has_tag(tags, "process"))
        type = "file_tamper";
    else
        type = "malicious_process";
    json_object_set_new(out, "type", json_string(type));

    attack = json_object();
    for (i = 0; i < NTACTICS; i++)
        if (has_tag(tags, tactics[i].falco)) {
            json_object_set_new(attack, "tactic", json_string(tactics[i].id));
            break;
        }
    json_array_foreach(tags, i, v) {
        if (json_is_string(v) && looks_like_technique(json_string_value(v))) {
            json_object_set_new(attack, "technique", json_string(json_string_value(v)));
            break;
        }
    }
    if (json_object_size(attack) > 0)
        json_object_set_new(out, "attack", attack);
    else
        json_decref(attack);

    if (of != NULL) {
        proc = json_object();
        v = json_object_get(of, "proc.pid");
        if (json_is_integer(v))
            json_object_set(proc, "pid", v);
        set_str(proc, "path", str_at(of, "proc.exepath") ? str_at(of, "proc.exepath")
                              : str_at(of, "proc.exe"));
        set_str(proc, "cmdline", str_at(of, "proc.cmdline"));
        set_str(proc, "user", str_at(of, "user.name"));
        if (json_object_size(proc) > 0)
            json_object_set_new(out, "process", proc);
        else
            json_decref(proc);

        fd_name = str_at(of, "fd.name");
        fd_type = str_at(of, "fd.type");
        if (fd_name != NULL && fd_name[0] == '/' && (fd_type == NULL || !strcmp(fd_type, "file")))
            json_object_set_new(out, "file", json_pack("{s:s}", "path", fd_name));
        rip = str_at(of, "fd.rip");
        if (is_ip(rip))
            json_object_set_new(out, "remote_ip", json_string(rip));
    }

    details = json_object();
    set_str(details, "falco_output", str_at(in, "output"));
    set_str(details, "falco_source", str_at(in, "source"));
    set_str(details, "falco_priority", pri);
    if (tags != NULL)
        json_object_set(details, "falco_tags", tags);
    if (of != NULL)
        json_object_set(details, "output_fields", of);
    json_object_set_new(out, "details", details);
    if ((v = json_object_get(in, "uuid")) != NULL && json_is_string(v))
        json_object_set(out, "alert_id", v);
    return CWPP_OK;
}

/* ---------------------------------------------------------------------- Wazuh */

static const char *wazuh_type(json_t *groups)
{
    if (has_tag(groups, "virus") || has_tag(groups, "malware") || has_tag(groups, "virustotal") ||
        has_tag(groups, "yara") || has_tag(groups, "clamd") || has_tag(groups, "rootkit") ||
        has_tag(groups, "rootcheck"))
        return "virus";
    if (has_tag(groups, "web_shell") || has_tag(groups, "webshell"))
        return "webshell";
    if (has_tag(groups, "authentication_failures") || has_tag(groups, "brute_force"))
        return "brute_force";
    if (has_tag(groups, "authentication_failed") || has_tag(groups, "authentication_success") ||
        has_tag(groups, "invalid_login") || has_tag(groups, "sshd"))
        return "abnormal_logon";
    if (has_tag(groups, "attack") || has_tag(groups, "web") || has_tag(groups, "ids") ||
        has_tag(groups, "sql_injection") || has_tag(groups, "web_scan"))
        return "network_attack";
    if (has_tag(groups, "syscheck"))
        return "file_tamper";
    if (has_tag(groups, "audit_command") || has_tag(groups, "process"))
        return "malicious_process";
    return "host_anomaly";
}

static const char *wazuh_severity(json_int_t level)
{
    if (level >= 15)
        return "critical";
    if (level >= 12)
        return "high";
    if (level >= 7)
        return "medium";
    return "low";
}

/* One function on purpose (about 125 lines): it reads the Wazuh record top to bottom in
 * the order of the mapping table in docs/alert-format.md, field by field, so the code and
 * the table can be compared line by line; each step is a few lines with its own check. */
static int map_wazuh(nctx_t *c, json_t *in, const cwpp_alert_opts_t *opts, json_t **outp)
{
    json_t     *out = json_object(), *rule, *agent, *data, *mitre, *groups, *v, *details,
               *attack, *sys, *labels;
    const char *acct, *asset_id, *srcip, *user, *type;
    size_t      i, j;

    *outp = out;
    rule = json_object_get(in, "rule");
    agent = json_object_get(in, "agent");
    data = json_object_get(in, "data");
    if (data != NULL && !json_is_object(data))
        data = NULL;
    groups = json_object_get(rule, "groups");
    if (groups != NULL && !json_is_array(groups))
        return cwpp_alert__bad(c, "wrong_type", "Wazuh field \"rule.groups\" must be an array");

    if (!json_is_string(json_object_get(rule, "description")))
        return cwpp_alert__bad(c, "missing_field", "required Wazuh field \"rule.description\" "
                               "is missing or not a string");
    json_object_set(out, "name", json_object_get(rule, "description"));
    v = json_object_get(rule, "level");
    if (v == NULL)
        return cwpp_alert__bad(c, "missing_field", "required Wazuh field \"rule.level\" is missing");
    if (!json_is_integer(v))
        return cwpp_alert__bad(c, "wrong_type", "Wazuh field \"rule.level\" must be an integer");
    json_object_set_new(out, "severity", json_string(wazuh_severity(json_integer_value(v))));
    if ((v = json_object_get(in, "timestamp")) != NULL)
        json_object_set(out, "occurred_at", v);
    json_object_set_new(out, "source", json_string("wazuh"));
    type = wazuh_type(groups);
    json_object_set_new(out, "type", json_string(type));

    labels = json_object_get(agent, "labels");
    acct = json_is_object(labels) ? str_at(labels, "account_id") : NULL;
    if (acct == NULL && data != NULL)
        acct = str_at(data, "account_id");
    if (acct == NULL)
        acct = opts->adapter_account_id;
    if (acct == NULL || *acct == '\0')
        return cwpp_alert__bad(c, "missing_field", "Wazuh alert carries no account "
                               "(agent.labels.account_id) and ingest.adapter_account_id is "
                               "not set");
    json_object_set_new(out, "account_id", json_string(acct));

    asset_id = str_at(agent, "name") ? str_at(agent, "name") : str_at(agent, "id");
    if (asset_id == NULL)
        return cwpp_alert__bad(c, "missing_field", "Wazuh alert has no \"agent.name\" or "
                               "\"agent.id\" to name the asset");
    v = json_pack("{s:s}", "id", asset_id);
    set_str(v, "name", str_at(agent, "name"));
    if (is_ip(str_at(agent, "ip")))
        set_str(v, "ip", str_at(agent, "ip"));
    json_object_set_new(out, "asset", v);

    mitre = json_object_get(rule, "mitre");
    if (json_is_object(mitre)) {
        json_t *ids = json_object_get(mitre, "id"), *tac = json_object_get(mitre, "tactic");
        attack = json_object();
        json_array_foreach(ids, i, v) {
            if (json_is_string(v) && looks_like_technique(json_string_value(v))) {
                json_object_set_new(attack, "technique", json_string(json_string_value(v)));
                break;
            }
        }
        json_array_foreach(tac, i, v) {
            for (j = 0; json_is_string(v) && j < NTACTICS; j++)
                if (strcasecmp(json_string_value(v), tactics[j].name) == 0)
                    break;
            if (json_is_string(v) && j < NTACTICS) {
                json_object_set_new(attack, "tactic", json_string(tactics[j].id));
                break;
            }
        }
        if (json_object_size(attack) > 0)
            json_object_set_new(out, "attack", attack);
        else
            json_decref(attack);
    }

    srcip = data != NULL ? str_at(data, "srcip") : NULL;
    user = data != NULL ? (str_at(data, "srcuser") ? str_at(data, "srcuser")
                           : str_at(data, "dstuser")) : NULL;
    if (is_ip(srcip))
        json_object_set_new(out, "remote_ip", json_string(srcip));
    if (!strcmp(type, "abnormal_logon") || !strcmp(type, "brute_force")) {
        v = json_object();
        if (is_ip(srcip))
            set_str(v, "ip", srcip);
        set_str(v, "user", user);
        if (json_object_size(v) > 0)
            json_object_set_new(out, "logon", v);
        else
            json_decref(v);
    }

    sys = json_object_get(in, "syscheck");
    if (json_is_object(sys) && str_at(sys, "path") != NULL) {
        v = json_pack("{s:s}", "path", str_at(sys, "path"));
        set_str(v, "md5", str_at(sys, "md5_after"));
        set_str(v, "sha256", str_at(sys, "sha256_after"));
        json_object_set_new(out, "file", v);
    }

    details = json_object();
    set_str(details, "wazuh_rule_id", str_at(rule, "id"));
    json_object_set(details, "wazuh_rule_level", json_object_get(rule, "level"));
    if (groups != NULL)
        json_object_set(details, "wazuh_groups", groups);
    set_str(details, "full_log", str_at(in, "full_log"));
    set_str(details, "location", str_at(in, "location"));
    if (json_is_object(json_object_get(in, "decoder")))
        set_str(details, "decoder", str_at(json_object_get(in, "decoder"), "name"));
    if (json_is_object(json_object_get(in, "manager")))
        set_str(details, "manager", str_at(json_object_get(in, "manager"), "name"));
    set_str(details, "agent_id", str_at(agent, "id"));
    if (data != NULL)
        json_object_set(details, "data", data);
    if (srcip != NULL && !is_ip(srcip))
        set_str(details, "srcip", srcip);
    json_object_set_new(out, "details", details);
    if ((v = json_object_get(in, "id")) != NULL && json_is_string(v))
        json_object_set(out, "alert_id", v);
    return CWPP_OK;
}

/* ------------------------------------------------------------------- dispatch */

int cwpp_alert__dispatch(nctx_t *c, json_t *root, const cwpp_alert_opts_t *opts,
                         cwpp_alert_t *a)
{
    json_t *rule = json_object_get(root, "rule"), *mapped = NULL;
    int     rc;

    if (json_is_string(rule) && json_object_get(root, "priority") != NULL &&
        json_object_get(root, "output") != NULL) {
        rc = map_falco(c, root, opts, &mapped);
        if (rc == CWPP_OK)
            rc = cwpp_alert__normalize(c, mapped, CWPP_FMT_FALCO, opts, a);
    } else if (json_is_object(rule) && json_is_object(json_object_get(root, "agent"))) {
        rc = map_wazuh(c, root, opts, &mapped);
        if (rc == CWPP_OK)
            rc = cwpp_alert__normalize(c, mapped, CWPP_FMT_WAZUH, opts, a);
    } else if (json_object_get(root, "name") == NULL && json_object_get(root, "type") == NULL &&
               json_object_get(root, "account_id") == NULL) {
        rc = cwpp_alert__bad(c, "unknown_shape", "record is neither a CWPP alert (no name, type "
                             "or account_id), a Falco alert (rule, priority, output) nor a Wazuh "
                             "alert (rule{}, agent{})");
    } else {
        rc = cwpp_alert__normalize(c, root, CWPP_FMT_CWPP, opts, a);
    }
    json_decref(mapped);
    return rc;
}
