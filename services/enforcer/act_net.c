/* SPDX-License-Identifier: Apache-2.0 */
/*
 * act_net.c: the network actions - block_ip / unblock_ip (nftables table inet
 * cwpp_enforcer) and isolate_host / restore_host (table inet cwpp_isolation, the
 * management addresses and an allow list kept reachable). Made through nft.c.
 */
#include "enf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cwpp_log.h"

#define MAX_ALLOW   256  /* isolate_host allow list items */

/* ------------------------------------------------------------- block_ip */

/* The table, its sets and chains, rules rewritten in the same transaction: running it
 * again changes nothing but the rules' handles. */
static const char NFT_BLOCK_ENSURE[] =
    "table inet cwpp_enforcer {\n"
    "  set blocked4 { type ipv4_addr; }\n"
    "  set blocked6 { type ipv6_addr; }\n"
    "  chain input { type filter hook input priority -10; policy accept; }\n"
    "  chain output { type filter hook output priority -10; policy accept; }\n"
    "  chain forward { type filter hook forward priority -10; policy accept; }\n"
    "}\n"
    "flush chain inet cwpp_enforcer input\n"
    "flush chain inet cwpp_enforcer output\n"
    "flush chain inet cwpp_enforcer forward\n"
    "add rule inet cwpp_enforcer input ip saddr @blocked4 drop\n"
    "add rule inet cwpp_enforcer input ip6 saddr @blocked6 drop\n"
    "add rule inet cwpp_enforcer output ip daddr @blocked4 drop\n"
    "add rule inet cwpp_enforcer output ip6 daddr @blocked6 drop\n"
    "add rule inet cwpp_enforcer forward ip saddr @blocked4 drop\n"
    "add rule inet cwpp_enforcer forward ip daddr @blocked4 drop\n"
    "add rule inet cwpp_enforcer forward ip6 saddr @blocked6 drop\n"
    "add rule inet cwpp_enforcer forward ip6 daddr @blocked6 drop\n";

static const char *where(const enf_ctx_t *c)
{
    return c->netns[0] != '\0' ? c->netns : "this host";
}

void enf_act_block_ip(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                         int block)
{
    const char      *action = block ? "block_ip" : "unblock_ip";
    enf_net_t        n;
    const enf_net_t *m;
    char             ip[64], mt[64], get[200], change[200], why[600];
    const char      *set;
    enf_nft_cmd_t    cmds[3];

    (void)id;
    if (enf_p_ip(p, action, &n, ip, o) != 0)
        return;
    set = n.family == AF_INET ? "blocked4" : "blocked6";
    if (block && enf_net_is_local(&n)) {
        enf_fail(o, "refusing to block %s: it is a loopback or unspecified address.", ip);
        return;
    }
    if (block && (m = enf_mgmt_match(c, &n)) != NULL) {
        enf_net_format(m, mt, sizeof(mt));
        enf_fail(o, "refusing to block %s: it is a management address (%s in "
                 "enforcer.management).", ip, mt);
        return;
    }
    snprintf(get, sizeof(get), "get element inet cwpp_enforcer %s { %s }", set, ip);
    snprintf(change, sizeof(change), "%s element inet cwpp_enforcer %s { %s }",
             block ? "add" : "delete", set, ip);
    memset(cmds, 0, sizeof(cmds));
    if (block) {
        cmds[0].text = NFT_BLOCK_ENSURE;
        cmds[1].text = get;
        cmds[1].probe = 1;
        cmds[2].text = change;
        if (enf_nft_run(c->netns, c->nft_ms, cmds, 3, why, sizeof(why)) != CWPP_OK) {
            enf_fail(o, "could not block %s: %s.", ip, why);
            return;
        }
        o->details = json_pack("{s:s, s:s, s:b}", "ip", ip, "set", set, "already",
                               cmds[1].rc == 0);
        enf_ok(o, cmds[1].rc == 0 ? "%s was already blocked on %s (nftables inet "
                                    "cwpp_enforcer %s)."
                                  : "Blocked %s on %s (nftables inet cwpp_enforcer %s): its "
                                    "traffic in, out and forwarded is dropped.",
               ip, where(c), set);
        return;
    }
    cmds[0].text = get;
    cmds[0].probe = 1;
    if (enf_nft_run(c->netns, c->nft_ms, cmds, 1, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not unblock %s: %s.", ip, why);
        return;
    }
    if (cmds[0].rc != 0) {
        o->details = json_pack("{s:s, s:s, s:b}", "ip", ip, "set", set, "already", 1);
        enf_ok(o, "%s was not blocked on %s.", ip, where(c));
        return;
    }
    memset(cmds, 0, sizeof(cmds));
    cmds[0].text = change;
    if (enf_nft_run(c->netns, c->nft_ms, cmds, 1, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not unblock %s: %s.", ip, why);
        return;
    }
    o->details = json_pack("{s:s, s:s, s:b}", "ip", ip, "set", set, "already", 0);
    enf_ok(o, "Unblocked %s on %s.", ip, where(c));
}

/* ---------------------------------------------------------- isolate_host */

/* Appends "ip saddr { a, b } accept" style rules for the addresses of one family. */
static int rules_for(cwpp_buf_t *b, const char *chain, const enf_net_t *v, size_t n, int fam,
                     const char *dir)
{
    size_t i, k = 0;
    int    rc = CWPP_OK;

    for (i = 0; i < n; i++) {
        char t[64];

        if (v[i].family != fam)
            continue;
        if (k++ == 0) {
            rc |= cwpp_buf_puts(b, "add rule inet cwpp_isolation ");
            rc |= cwpp_buf_puts(b, chain);
            rc |= cwpp_buf_puts(b, fam == AF_INET ? " ip " : " ip6 ");
            rc |= cwpp_buf_puts(b, dir);
            rc |= cwpp_buf_puts(b, " { ");
        } else {
            rc |= cwpp_buf_puts(b, ", ");
        }
        enf_net_format(&v[i], t, sizeof(t));
        rc |= cwpp_buf_puts(b, t);
    }
    if (k > 0)
        rc |= cwpp_buf_puts(b, " } accept\n");
    return rc;
}

static int isolation_script(const enf_ctx_t *c, const enf_net_t *allow, size_t nallow,
                            cwpp_buf_t *b)
{
    static const struct {
        const char *chain, *dirs[2];
    } ch[] = {{"input", {"saddr", NULL}}, {"output", {"daddr", NULL}},
              {"forward", {"saddr", "daddr"}}};
    size_t i, d;
    int    rc;

    /* replace atomically: create (if absent), delete, create anew in one transaction */
    rc = cwpp_buf_puts(b,
        "table inet cwpp_isolation {}\n"
        "delete table inet cwpp_isolation\n"
        "table inet cwpp_isolation {\n"
        "  chain input { type filter hook input priority -150; policy drop; }\n"
        "  chain output { type filter hook output priority -150; policy drop; }\n"
        "  chain forward { type filter hook forward priority -150; policy drop; }\n"
        "}\n"
        "add rule inet cwpp_isolation input iif lo accept\n"
        "add rule inet cwpp_isolation output oif lo accept\n"
        "add rule inet cwpp_isolation input icmpv6 type { nd-neighbor-solicit, "
        "nd-neighbor-advert, nd-router-advert } accept\n"
        "add rule inet cwpp_isolation output icmpv6 type { nd-neighbor-solicit, "
        "nd-neighbor-advert, nd-router-solicit } accept\n");
    for (i = 0; i < sizeof(ch) / sizeof(ch[0]); i++)
        for (d = 0; d < 2 && ch[i].dirs[d] != NULL; d++) {
            rc |= rules_for(b, ch[i].chain, c->mgmt, c->nmgmt, AF_INET, ch[i].dirs[d]);
            rc |= rules_for(b, ch[i].chain, c->mgmt, c->nmgmt, AF_INET6, ch[i].dirs[d]);
            rc |= rules_for(b, ch[i].chain, allow, nallow, AF_INET, ch[i].dirs[d]);
            rc |= rules_for(b, ch[i].chain, allow, nallow, AF_INET6, ch[i].dirs[d]);
        }
    rc |= cwpp_buf_cstr(b);
    return rc;
}

void enf_act_isolate(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"allow", NULL};
    json_t                  *al = json_object_get(p, "allow"), *dl;
    enf_net_t               *allow = NULL;
    size_t                   nallow = 0, i;
    cwpp_buf_t               b = {0};
    enf_nft_cmd_t            cmds[2];
    char                     why[600];

    (void)id;
    if (enf_only_keys(p, "isolate_host", keys, o) != 0)
        return;
    if (c->nmgmt == 0) {
        enf_fail(o, "refusing to isolate the host: no management address is configured "
                 "(enforcer.management), so nothing would stay reachable.");
        return;
    }
    if (al != NULL && !json_is_null(al)) {
        if (!json_is_array(al) || json_array_size(al) > MAX_ALLOW) {
            enf_fail(o, "the parameter \"allow\" of isolate_host must be a list of at most "
                     "%d addresses or CIDRs.", MAX_ALLOW);
            return;
        }
        nallow = json_array_size(al);
        if (nallow > 0 && (allow = calloc(nallow, sizeof(*allow))) == NULL) {
            enf_fail(o, "out of memory.");
            return;
        }
        for (i = 0; i < nallow; i++) {
            const char *s = json_string_value(json_array_get(al, i));

            if (s == NULL || enf_net_parse(s, 1, &allow[i]) != CWPP_OK) {
                enf_fail(o, "item %zu of the parameter \"allow\" of isolate_host, \"%.60s\", "
                         "is not an IPv4/IPv6 address or CIDR.", i + 1,
                         s != NULL ? s : "(not a string)");
                free(allow);
                return;
            }
        }
    }
    if (isolation_script(c, allow, nallow, &b) != CWPP_OK) {
        enf_fail(o, "out of memory.");
        free(allow);
        cwpp_buf_free(&b);
        return;
    }
    memset(cmds, 0, sizeof(cmds));
    cmds[0].text = "list table inet cwpp_isolation";
    cmds[0].probe = 1;
    cmds[1].text = (const char *)b.data;
    if (enf_nft_run(c->netns, c->nft_ms, cmds, 2, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not isolate the host: %s.", why);
    } else {
        json_t *ml = json_array();

        dl = json_array();
        for (i = 0; i < nallow; i++) {
            char t[64];

            enf_net_format(&allow[i], t, sizeof(t));
            json_array_append_new(dl, json_string(t));
        }
        for (i = 0; i < c->nmgmt; i++) {
            char t[64];

            enf_net_format(&c->mgmt[i], t, sizeof(t));
            json_array_append_new(ml, json_string(t));
        }
        o->details = json_pack("{s:o, s:o, s:b}", "management", ml, "allow", dl, "already",
                               cmds[0].rc == 0);
        enf_ok(o, "%s %s: only loopback, the %zu management address%s%s%s stay reachable "
               "(nftables inet cwpp_isolation).",
               cmds[0].rc == 0 ? "Isolation renewed on" : "Isolated", where(c), c->nmgmt,
               c->nmgmt == 1 ? "" : "es", nallow > 0 ? " and the allow list" : "",
               cmds[0].rc == 0 ? " (it was already isolated; the rules were replaced)" : "");
    }
    free(allow);
    cwpp_buf_free(&b);
}

void enf_act_restore(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {NULL};
    enf_nft_cmd_t            cmds[2];
    char                     why[600];

    (void)id;
    if (enf_only_keys(p, "restore_host", keys, o) != 0)
        return;
    memset(cmds, 0, sizeof(cmds));
    cmds[0].text = "list table inet cwpp_isolation";
    cmds[0].probe = 1;
    cmds[1].text = "table inet cwpp_isolation {}\ndelete table inet cwpp_isolation\n";
    if (enf_nft_run(c->netns, c->nft_ms, cmds, 2, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not restore the host's network: %s.", why);
        return;
    }
    o->details = json_pack("{s:b}", "already", cmds[0].rc != 0);
    enf_ok(o, cmds[0].rc != 0 ? "%s was not isolated." : "Restored the network of %s: the "
                                                         "isolation table is gone.",
           where(c));
}
