/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event.c: an event's running figures, its provenance-graph edges and its urgency
 * assessment (cwpp_correlate.h; docs/correlator.md).
 *
 * The figures ("summary") are one JSON object kept in events.summary:
 *   alerts, occurrences        distinct alerts, occurrences (recurrences included)
 *   first_ms, last_ms          occurrence times
 *   sev, name                  best severity rank (0 critical) and that alert's name
 *   assets {id: {name, role, ips[], alerts}}
 *   stages[], sources[], types[] in the order first seen
 *   defense {none|blocked|failed|precision_defense: n}
 *   ips {ip: [asset ids]}      remote and logon IPs and the assets they touched
 *   times[]                    first occurrence of the latest alerts (at most 32, sorted)
 *   probe {at, type, sev}      the first alert; after_probe {n, types[]}
 *   non_pd                     alerts that are not precision defence
 *   notified                   the urgency last notified ("" none)
 */
#include "cwpp_correlate.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TIMES_MAX 32

/* ------------------------------------------------------------------- edges */

static const char *json_str(const json_t *o, const char *k)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *entity(const cwpp_alert_t *a, cwpp_entity_type_t t, const char *want)
{
    size_t i;

    for (i = 0; i < a->n_entities; i++)
        if (a->entities[i].type == t &&
            (want == NULL || strcmp(a->entities[i].value, want) == 0))
            return a->entities[i].value;
    return NULL;
}

static int attacking_type(const char *type)
{
    static const char *const t[] = {"brute_force", "network_attack", "abnormal_logon",
                                    "port_scan", "scan"};
    size_t i;

    for (i = 0; type != NULL && i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(type, t[i]) == 0)
            return 1;
    return 0;
}

static void edge(cwpp_corr_edge_t *out, size_t *n, cwpp_entity_type_t st, const char *s,
                 const char *rel, cwpp_entity_type_t dt, const char *d)
{
    if (s == NULL || d == NULL || s[0] == '\0' || d[0] == '\0' || *n >= CWPP_CORR_MAX_EDGES)
        return;
    out[*n] = (cwpp_corr_edge_t){cwpp_entity_type_name(st), s, rel, cwpp_entity_type_name(dt),
                                 d};
    (*n)++;
}

size_t cwpp_corr_edges(const cwpp_alert_t *a, cwpp_corr_edge_t *out)
{
    const char *host = a->asset.id;
    const char *proc = entity(a, CWPP_ENT_PROCESS, NULL);
    const char *file = entity(a, CWPP_ENT_FILE, NULL);
    const char *lip = a->logon.ip, *rip = a->remote_ip;
    const char *parent = json_str(a->details, "parent_process");
    size_t      n = 0;

    if (parent == NULL)
        parent = json_str(json_object_get(a->details, "parent_process"), "path");
    edge(out, &n, CWPP_ENT_PROCESS, parent, "spawned", CWPP_ENT_PROCESS, proc);
    if (parent == NULL)
        edge(out, &n, CWPP_ENT_HOST, host, "ran", CWPP_ENT_PROCESS, proc);
    if (proc != NULL)
        edge(out, &n, CWPP_ENT_PROCESS, proc, "wrote", CWPP_ENT_FILE, file);
    else
        edge(out, &n, CWPP_ENT_HOST, host, "has_file", CWPP_ENT_FILE, file);
    edge(out, &n, CWPP_ENT_IP, lip, "logged_on_to", CWPP_ENT_HOST, host);
    edge(out, &n, CWPP_ENT_HOST_ACCOUNT, a->logon.user, "logged_on_to", CWPP_ENT_HOST, host);
    edge(out, &n, CWPP_ENT_IP, lip, "used_account", CWPP_ENT_HOST_ACCOUNT, a->logon.user);
    if (rip != NULL && (lip == NULL || strcmp(rip, lip) != 0)) {
        if (attacking_type(a->type))
            edge(out, &n, CWPP_ENT_IP, rip, "attacked", CWPP_ENT_HOST, host);
        else
            edge(out, &n, CWPP_ENT_HOST, host, "connected_to", CWPP_ENT_IP, rip);
    }
    if (proc != NULL)
        edge(out, &n, CWPP_ENT_PROCESS, proc, "ran_as", CWPP_ENT_HOST_ACCOUNT, a->process.user);
    return n;
}

/* ----------------------------------------------------------------- config */

void cwpp_assess_conf_default(cwpp_assess_conf_t *c)
{
    *c = (cwpp_assess_conf_t){
        .core_roles = "database,application",
        .authoritative_sources = "virus_scan,webshell_scan",
        .probe_types = "brute_force,network_attack,port_scan,scan,abnormal_logon",
        .alerts_high = 10,
        .growth_alerts = 3,
        .recent_ms = 3600000,
        .escalation_ms = 1800000,
        .escalation_alerts = 3,
        .escalation_types = 2,
        .ip_block_events = 3,
        .ip_block_alerts = 20,
        .ip_targeted_assets = 3,
    };
}

/* 1 when word is one of the comma-separated items of list. */
static int in_list(const char *list, const char *word)
{
    size_t      wl;
    const char *p = list;

    if (list == NULL || word == NULL || (wl = strlen(word)) == 0)
        return 0;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t      l = e ? (size_t)(e - p) : strlen(p);

        while (l > 0 && *p == ' ')
            p++, l--;
        while (l > 0 && p[l - 1] == ' ')
            l--;
        if (l == wl && strncmp(p, word, l) == 0)
            return 1;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return 0;
}

/* --------------------------------------------------------------- summary */

static int64_t geti(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static int seti(json_t *o, const char *k, int64_t v)
{
    return json_object_set_new(o, k, json_integer(v));
}

/* Appends s to the array o[k] unless present. */
static int set_add(json_t *o, const char *k, const char *s)
{
    json_t *arr = json_object_get(o, k);
    size_t  i;

    if (s == NULL || s[0] == '\0')
        return 0;
    if (!json_is_array(arr)) {
        if ((arr = json_array()) == NULL || json_object_set_new(o, k, arr) != 0)
            return -1;
    }
    for (i = 0; i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            return 0;
    return json_array_append_new(arr, json_string(s));
}

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);

    if (!json_is_object(x)) {
        x = json_object();
        if (x == NULL || json_object_set_new(o, k, x) != 0)
            return NULL;
    }
    return x;
}

static int add_time(json_t *s, int64_t t)
{
    json_t *arr = json_object_get(s, "times");
    size_t  i, n;

    if (!json_is_array(arr)) {
        if ((arr = json_array()) == NULL || json_object_set_new(s, "times", arr) != 0)
            return -1;
    }
    n = json_array_size(arr);
    for (i = n; i > 0 && json_integer_value(json_array_get(arr, i - 1)) > t; i--)
        ;
    if (json_array_insert_new(arr, i, json_integer(t)) != 0)
        return -1;
    while (json_array_size(arr) > TIMES_MAX)
        json_array_remove(arr, 0);
    return 0;
}

static int ip_asset(json_t *s, const char *ip, const char *asset)
{
    json_t *ips = obj_at(s, "ips");

    return ips == NULL ? -1 : set_add(ips, ip, asset);
}

int cwpp_ev_summary_add(json_t *s, const cwpp_alert_t *a, int new_alert,
                        const cwpp_assess_conf_t *c)
{
    return cwpp_ev_summary_add_n(s, a, new_alert, 1, c);
}

int cwpp_ev_summary_add_n(json_t *s, const cwpp_alert_t *a, int new_alert, int64_t n,
                          const cwpp_assess_conf_t *c)
{
    int     rc = 0;
    int64_t t = a->occurred_at_ms;

    if (!json_is_object(s) || n < 1)
        return CWPP_EINVAL;
    rc |= seti(s, "occurrences", geti(s, "occurrences") + n);
    if (json_object_get(s, "first_ms") == NULL || t < geti(s, "first_ms"))
        rc |= seti(s, "first_ms", t);
    if (json_object_get(s, "last_ms") == NULL || t > geti(s, "last_ms"))
        rc |= seti(s, "last_ms", t);
    if (!new_alert)
        return rc ? CWPP_ENOMEM : CWPP_OK;

    rc |= seti(s, "alerts", geti(s, "alerts") + 1);
    if (a->defense != CWPP_DEF_PRECISION)
        rc |= seti(s, "non_pd", geti(s, "non_pd") + 1);
    if (json_object_get(s, "sev") == NULL || (int64_t)a->severity < geti(s, "sev")) {
        rc |= seti(s, "sev", (int64_t)a->severity);
        rc |= json_object_set_new(s, "name", json_string(a->name));
    }
    {
        json_t *assets = obj_at(s, "assets"), *as;

        if (assets == NULL)
            return CWPP_ENOMEM;
        if ((as = obj_at(assets, a->asset.id)) == NULL)
            return CWPP_ENOMEM;
        if (a->asset.name != NULL)
            rc |= json_object_set_new(as, "name", json_string(a->asset.name));
        if (a->asset.role != NULL)
            rc |= json_object_set_new(as, "role", json_string(a->asset.role));
        rc |= set_add(as, "ips", a->asset.ip);
        rc |= set_add(as, "ips", a->asset.public_ip);
        rc |= seti(as, "alerts", geti(as, "alerts") + 1);
    }
    rc |= set_add(s, "stages", a->tactic);
    rc |= set_add(s, "sources", a->source);
    rc |= set_add(s, "types", a->type);
    {
        json_t *d = obj_at(s, "defense");

        if (d == NULL)
            return CWPP_ENOMEM;
        rc |= seti(d, cwpp_defense_name(a->defense),
                   geti(d, cwpp_defense_name(a->defense)) + 1);
    }
    if (a->remote_ip != NULL)
        rc |= ip_asset(s, a->remote_ip, a->asset.id);
    if (a->logon.ip != NULL)
        rc |= ip_asset(s, a->logon.ip, a->asset.id);
    rc |= add_time(s, t);
    {
        json_t *probe = json_object_get(s, "probe");

        if (probe == NULL) {
            probe = json_pack("{s:I, s:s, s:I}", "at", (json_int_t)t, "type", a->type, "sev",
                              (json_int_t)a->severity);
            if (probe == NULL || json_object_set_new(s, "probe", probe) != 0)
                return CWPP_ENOMEM;
        } else if (t >= geti(probe, "at") && t - geti(probe, "at") <= c->escalation_ms &&
                   strcmp(a->type, json_str(probe, "type") ? json_str(probe, "type") : "") !=
                       0) {
            json_t *ap = obj_at(s, "after_probe");

            if (ap == NULL)
                return CWPP_ENOMEM;
            rc |= seti(ap, "n", geti(ap, "n") + 1);
            rc |= set_add(ap, "types", a->type);
        }
    }
    return rc ? CWPP_ENOMEM : CWPP_OK;
}

/* -------------------------------------------------------------- assessment */

const char *cwpp_urgency_name(cwpp_urgency_t u)
{
    static const char *const n[] = {"act_now", "high", "medium", "low"};

    return (unsigned)u < 4 ? n[u] : "low";
}

int cwpp_urgency_parse(const char *s, cwpp_urgency_t *out)
{
    int i;

    for (i = 0; s != NULL && i < 4; i++)
        if (strcmp(s, cwpp_urgency_name((cwpp_urgency_t)i)) == 0) {
            *out = (cwpp_urgency_t)i;
            return 0;
        }
    return -1;
}

int cwpp_urgency_quiet(int64_t last_seen_ms, int64_t now_ms, int64_t quiet_hours)
{
    assert(quiet_hours >= 1);
    return last_seen_ms > 0 && now_ms - last_seen_ms > quiet_hours * 3600000;
}

cwpp_urgency_t cwpp_urgency_as_of(cwpp_urgency_t stored, int64_t last_seen_ms, int64_t now_ms,
                                  int64_t quiet_hours, int *quiet)
{
    int q = cwpp_urgency_quiet(last_seen_ms, now_ms, quiet_hours);

    if (quiet != NULL)
        *quiet = q;
    return cwpp_urgency_shown(stored, q);
}

cwpp_urgency_t cwpp_urgency_shown(cwpp_urgency_t stored, int quiet)
{
    if ((unsigned)stored > CWPP_URG_LOW)
        stored = CWPP_URG_LOW;
    return quiet && stored < CWPP_URG_LOW ? (cwpp_urgency_t)(stored + 1) : stored;
}

void cwpp_assessment_clear(cwpp_assessment_t *a)
{
    if (a == NULL)
        return;
    json_decref(a->reasons);
    json_decref(a->recommendations);
    memset(a, 0, sizeof(*a));
}

static int reason(json_t *arr, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reason(json_t *arr, const char *code, const char *fmt, ...)
{
    char    text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return json_array_append_new(arr, json_pack("{s:s, s:s}", "code", code, "text", text));
}

static void dur(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        ms = 0;
    if (ms < 60000)
        snprintf(out, size, "%" PRId64 " s", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, size, "%" PRId64 " min", ms / 60000);
    else if (ms < 172800000)
        snprintf(out, size, "%" PRId64 " h", ms / 3600000);
    else
        snprintf(out, size, "%" PRId64 " d", ms / 86400000);
}

/* Alerts in times[] within window ms of the latest. */
static int64_t recent_count(const json_t *times, int64_t last, int64_t window)
{
    size_t  i;
    int64_t n = 0;

    for (i = 0; i < json_array_size(times); i++)
        if (last - (int64_t)json_integer_value(json_array_get(times, i)) <= window)
            n++;
    return n;
}

/* 1 when the pace accelerates: the mean of the last two gaps is under half the mean of
 * the gaps before them (at least two of those). */
static int accelerating(const json_t *times)
{
    size_t  n = json_array_size(times), i;
    int64_t early = 0, late;

    if (n < 5)
        return 0;
    for (i = 1; i + 2 < n; i++)
        early += json_integer_value(json_array_get(times, i)) -
                 json_integer_value(json_array_get(times, i - 1));
    early /= (int64_t)(n - 3);
    late = (json_integer_value(json_array_get(times, n - 1)) -
            json_integer_value(json_array_get(times, n - 3))) / 2;
    return early > 0 && late * 2 < early;
}

int cwpp_ev_assess(const json_t *s, const cwpp_assess_conf_t *c, int64_t now_ms,
                   const cwpp_ip_stat_t *ips, size_t nips, cwpp_assessment_t *out)
{
    json_t       *r, *rec;
    const json_t *assets = json_object_get(s, "assets"), *def = json_object_get(s, "defense");
    const json_t *probe = json_object_get(s, "probe"), *ap = json_object_get(s, "after_probe");
    const json_t *ipmap = json_object_get(s, "ips"), *times = json_object_get(s, "times");
    const char   *k;
    json_t       *v;
    int64_t       alerts = geti(s, "alerts"), last = geti(s, "last_ms"), score = 0, n;
    int           core = 0, escalation = 0, act_now = 0, rc = 0;
    char          d1[32], cores[256] = "";
    size_t        i;

    memset(out, 0, sizeof(*out));
    out->reasons = r = json_array();
    out->recommendations = rec = json_array();
    out->urgency = CWPP_URG_LOW;
    if (r == NULL || rec == NULL) {
        cwpp_assessment_clear(out);
        return CWPP_ENOMEM;
    }

    json_object_foreach((json_t *)assets, k, v) {
        const char *role = json_str(v, "role");

        if (in_list(c->core_roles, role)) {
            size_t l = strlen(cores);

            if (core++ < 3)
                snprintf(cores + l, sizeof(cores) - l, "%s%s (%s)", l ? ", " : "", k, role);
        }
    }
    /* the reference's "when to act immediately": a core asset involved, an alert count
     * high and growing, recent activity that may be ongoing, an authoritative source */
    if (core) {
        rc |= reason(r, "core_asset", "core asset%s involved: %s%s: act now", core > 1 ? "s" : "",
                     cores, core > 3 ? ", ..." : "");
        score += 2;
        act_now = 1;
    }
    n = recent_count(times, last, c->recent_ms);
    if (alerts >= c->alerts_high && n >= c->growth_alerts) {
        dur(c->recent_ms, d1, sizeof(d1));
        rc |= reason(r, "alerts_growing",
                     "%" PRId64 " associated alerts and growing: %" PRId64 " new in the last %s: "
                     "act now", alerts, n, d1);
        score += 2;
        act_now = 1;
    }
    if (last > 0 && now_ms - last <= c->recent_ms) {
        char d2[32];

        dur(now_ms - last, d1, sizeof(d1));
        dur(c->recent_ms, d2, sizeof(d2));
        /* ongoing: the latest alerts cluster in the recent period, not one late alert */
        if (n >= c->growth_alerts) {
            rc |= reason(r, "recent_activity",
                         "latest alert %s ago and %" PRId64 " alerts within %s: the attack "
                         "may be ongoing: act now", d1, n, d2);
            act_now = 1;
        } else {
            rc |= reason(r, "recent_activity",
                         "latest alert %s ago: the attack may still be going on", d1);
        }
        score += 1;
    }
    {
        const json_t *src = json_object_get(s, "sources");
        char          list[256] = "";

        for (i = 0; i < json_array_size(src); i++) {
            const char *x = json_string_value(json_array_get(src, i));

            if (in_list(c->authoritative_sources, x)) {
                size_t l = strlen(list);

                snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "", x);
            }
        }
        if (list[0]) {
            rc |= reason(r, "authoritative_source",
                         "alerts from an authoritative source: %s: act now", list);
            score += 1;
            act_now = 1;
        }
    }
    if ((n = geti(def, "failed")) > 0) {
        rc |= reason(r, "defense_failed", "%" PRId64 " alert%s where the defence failed", n,
                     n > 1 ? "s" : "");
        score += 2;
    }
    if ((n = geti(def, "none")) > 0) {
        rc |= reason(r, "defense_missing", "%" PRId64 " alert%s with no defence in place", n,
                     n > 1 ? "s" : "");
        score += 1;
    }
    if (probe != NULL && ap != NULL &&
        (geti(probe, "sev") >= CWPP_SEV_MEDIUM || in_list(c->probe_types, json_str(probe, "type"))) &&
        geti(ap, "n") >= c->escalation_alerts &&
        (int64_t)json_array_size(json_object_get(ap, "types")) >= c->escalation_types) {
        dur(c->escalation_ms, d1, sizeof(d1));
        rc |= reason(r, "escalation",
                     "escalation: a %s probe was followed within %s by %" PRId64
                     " related alerts of %zu other types: act now",
                     json_str(probe, "type") ? json_str(probe, "type") : "first", d1,
                     geti(ap, "n"), json_array_size(json_object_get(ap, "types")));
        escalation = 1;
    }
    if (accelerating(times)) {
        rc |= reason(r, "accelerating", "the pace of alerts is accelerating");
        score += 1;
    }
    if (json_object_size(assets) > 1 && escalation) {
        rc |= reason(r, "widening_scope", "the attack widened to %zu assets",
                     json_object_size(assets));
        score += 1;
    }

    /* IPs: high 30-day counts, or one IP against several assets (a targeted attack) */
    json_object_foreach((json_t *)ipmap, k, v) {
        int64_t ev30 = 0, al30 = 0, as30 = 0, here = (int64_t)json_array_size(v);
        char    why[300] = "";

        for (i = 0; i < nips; i++)
            if (strcmp(ips[i].ip, k) == 0) {
                ev30 = ips[i].events;
                al30 = ips[i].alerts;
                as30 = ips[i].assets;
            }
        if (as30 < here)
            as30 = here;
        if (as30 >= c->ip_targeted_assets)
            snprintf(why, sizeof(why),
                     "targeted attack: %s attacked %" PRId64 " assets; block this IP", k, as30);
        else if (ev30 >= c->ip_block_events || al30 >= c->ip_block_alerts)
            snprintf(why, sizeof(why),
                     "%s is in %" PRId64 " events and %" PRId64
                     " alerts over the last 30 days; block this IP", k, ev30, al30);
        if (why[0] && json_array_size(rec) < 20) {
            rc |= reason(r, "block_ip", "%s", why);
            rc |= json_array_append_new(rec, json_pack("{s:s, s:s, s:s, s:s}", "action",
                                                       "block_ip", "entity_type",
                                                       cwpp_entity_type_name(CWPP_ENT_IP),
                                                       "entity_value", k, "reason", why));
            score += 1;
        }
    }

    if (geti(s, "non_pd") == 0 && alerts > 0) {
        json_array_clear(r);
        json_array_clear(rec);
        rc |= reason(r, "precision_defense",
                     "every alert was stopped by precision defence: nothing to do");
        out->urgency = CWPP_URG_LOW;
    } else if (escalation || act_now) {
        out->urgency = CWPP_URG_ACT_NOW;
    } else if (score >= 4) {
        out->urgency = CWPP_URG_HIGH;
    } else if (score >= 2) {
        out->urgency = CWPP_URG_MEDIUM;
    }
    if (rc) {
        cwpp_assessment_clear(out);
        return CWPP_ENOMEM;
    }
    return CWPP_OK;
}
