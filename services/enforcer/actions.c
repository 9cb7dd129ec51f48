/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.c: the action vocabulary (docs/actions.md) and what each does on this host.
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

extern char **environ;

#define MAX_ALLOW   256  /* isolate_host allow list items */
#define PID_LIMIT   4194304 /* PID_MAX_LIMIT */

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

/* ---------------------------------------------------------------- addresses */

int enf_net_parse(const char *s, int allow_prefix, enf_net_t *n)
{
    char        buf[64];
    const char *slash;
    size_t      len;
    long        prefix = -1;

    if (s == NULL || (len = strlen(s)) == 0 || len >= sizeof(buf))
        return CWPP_EINVAL;
    memset(n, 0, sizeof(*n));
    memcpy(buf, s, len + 1);
    if ((slash = strchr(s, '/')) != NULL) {
        const char *d = slash + 1;
        char       *end;

        if (!allow_prefix || *d < '0' || *d > '9' || strlen(d) > 3)
            return CWPP_EINVAL;
        prefix = strtol(d, &end, 10);
        if (*end != '\0')
            return CWPP_EINVAL;
        buf[slash - s] = '\0';
    }
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = AF_INET;
        n->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = AF_INET6;
        n->prefix = 128;
        if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)(void *)n->addr)) {
            if (prefix >= 0 && prefix < 96)
                return CWPP_EINVAL;
            memmove(n->addr, n->addr + 12, 4);
            memset(n->addr + 4, 0, 12);
            n->family = AF_INET;
            n->prefix = 32;
            if (prefix >= 0)
                prefix -= 96;
        }
    } else {
        return CWPP_EINVAL;
    }
    if (prefix >= 0) {
        int i;

        if (prefix > n->prefix)
            return CWPP_EINVAL;
        n->prefix = (int)prefix;
        for (i = 0; i < (n->family == AF_INET ? 4 : 16); i++) {
            int keep = (int)prefix - 8 * i;

            if (keep <= 0)
                n->addr[i] = 0;
            else if (keep < 8)
                n->addr[i] &= (unsigned char)(0xff << (8 - keep));
        }
    }
    return CWPP_OK;
}

int enf_net_contains(const enf_net_t *net, const enf_net_t *a)
{
    int full = net->prefix / 8, rest = net->prefix % 8;

    if (net->family != a->family)
        return 0;
    if (memcmp(net->addr, a->addr, (size_t)full) != 0)
        return 0;
    return rest == 0 ||
           ((net->addr[full] ^ a->addr[full]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

void enf_net_format(const enf_net_t *n, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN];

    if (inet_ntop(n->family, n->addr, a, sizeof(a)) == NULL)
        snprintf(a, sizeof(a), "?");
    if (n->prefix < (n->family == AF_INET ? 32 : 128))
        snprintf(buf, size, "%s/%d", a, n->prefix);
    else
        snprintf(buf, size, "%s", a);
}

int enf_net_is_local(const enf_net_t *n)
{
    static const unsigned char zero[16], one6[16] = {[15] = 1};

    if (n->family == AF_INET)
        return n->addr[0] == 127 || memcmp(n->addr, zero, 4) == 0;
    return memcmp(n->addr, zero, 16) == 0 || memcmp(n->addr, one6, 16) == 0;
}

int enf_net_list_parse(const char *csv, enf_net_t **out, size_t *n, char *errstr,
                       size_t errstr_size)
{
    const char *p = csv != NULL ? csv : "";
    enf_net_t  *v = NULL;
    size_t      cnt = 0;

    *out = NULL;
    *n = 0;
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t      len = e != NULL ? (size_t)(e - p) : strlen(p);
        char        item[64];
        const char *b = p;
        void       *nv;

        while (len > 0 && (*b == ' ' || *b == '\t')) {
            b++;
            len--;
        }
        while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t'))
            len--;
        p = e != NULL ? e + 1 : p + strlen(p);
        if (len == 0)
            continue;
        if (len >= sizeof(item)) {
            free(v);
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                               "\"%.40s...\" is not an IPv4/IPv6 address or CIDR", b);
        }
        memcpy(item, b, len);
        item[len] = '\0';
        if ((nv = realloc(v, (cnt + 1) * sizeof(*v))) == NULL) {
            free(v);
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        }
        v = nv;
        if (enf_net_parse(item, 1, &v[cnt]) != CWPP_OK) {
            free(v);
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                               "\"%s\" is not an IPv4/IPv6 address or CIDR", item);
        }
        cnt++;
    }
    *out = v;
    *n = cnt;
    return CWPP_OK;
}

/* --------------------------------------------------------------- parameters */

/* Fails o unless every key of p is one of allowed (NULL-terminated). */
static int only_keys(json_t *p, const char *action, const char *const *allowed,
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
static int p_str(json_t *p, const char *action, const char *key, int required, const char **s,
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
static int p_ip(json_t *p, const char *action, enf_net_t *n, char txt[64], enf_outcome_t *o)
{
    const char *ip;

    if (p_str(p, action, "ip", 1, &ip, o) != 0)
        return -1;
    if (enf_net_parse(ip, 0, n) != CWPP_OK)
        return enf_fail(o, "the parameter \"ip\" of %s, \"%.60s\", is not an IPv4 or IPv6 "
                        "address.", action, ip), -1;
    enf_net_format(n, txt, 64);
    return 0;
}

/* An absolute path without NUL bytes, at most PATH_MAX - 1 bytes. */
static int p_path(json_t *p, const char *action, const char *key, int required,
                  const char **s, enf_outcome_t *o)
{
    if (p_str(p, action, key, required, s, o) != 0)
        return -1;
    if (*s != NULL && ((*s)[0] != '/' || strlen(*s) >= PATH_MAX))
        return enf_fail(o, "the parameter \"%s\" of %s must be an absolute path.", key,
                        action), -1;
    return 0;
}

int enf_user_valid(const char *u)
{
    size_t i;

    if (u == NULL || !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
        return 0;
    for (i = 1; u[i] != '\0'; i++)
        if (i > 31 || !((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') ||
                        u[i] == '_' || u[i] == '-'))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- spawning */

int enf_spawn(char *const argv[], int timeout_ms, char *out, size_t out_size, int *status,
              char *errstr, size_t errstr_size)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          at;
    sigset_t                   none, def;
    size_t                     got = 0;
    int                        p[2], rc, timed_out = 0;
    int64_t                    until = cwpp_mono_ms() + timeout_ms;
    pid_t                      pid;

    if (out_size > 0)
        out[0] = '\0';
    if (pipe2(p, O_CLOEXEC) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE); /* the agent ignores it; the command should not */
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = strchr(argv[0], '/') != NULL ? posix_spawn(&pid, argv[0], &fa, &at, argv, environ)
                                      : posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot run %s: %s", argv[0],
                           strerror(rc));
    }
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int64_t       left = until - cwpp_mono_ms();
        char          sink[512];
        ssize_t       r;

        if (left <= 0) {
            timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            break;
        if (pfd.revents == 0)
            continue;
        if (got + 1 < out_size)
            r = read(p[0], out + got, out_size - 1 - got);
        else
            r = read(p[0], sink, sizeof(sink));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (got + 1 < out_size) {
            got += (size_t)r;
            out[got] = '\0';
        }
    }
    close(p[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "%s did not finish within %d s",
                           argv[0], timeout_ms / 1000);
    return CWPP_OK;
}

/* The first line of a command's output, sanitized, into buf. */
static const char *first_line(const char *s, char *buf, size_t size)
{
    size_t n = strcspn(s, "\n");

    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), s);
    cwpp_utf8_sanitize(buf);
    return buf;
}

/* Describes a waitpid status: "exited with status 3" / "was killed by signal 9". */
static const char *status_text(int st, char *buf, size_t size)
{
    if (WIFEXITED(st))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "was killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "ended with wait status %d", st);
    return buf;
}

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

static const enf_net_t *mgmt_match(const enf_ctx_t *c, const enf_net_t *a)
{
    size_t i;

    for (i = 0; i < c->nmgmt; i++)
        if (enf_net_contains(&c->mgmt[i], a))
            return &c->mgmt[i];
    return NULL;
}

static const char *where(const enf_ctx_t *c)
{
    return c->netns[0] != '\0' ? c->netns : "this host";
}

static void act_block_ip(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                         int block)
{
    const char      *action = block ? "block_ip" : "unblock_ip";
    enf_net_t        n;
    const enf_net_t *m;
    char             ip[64], mt[64], get[200], change[200], why[600];
    const char      *set;
    enf_nft_cmd_t    cmds[3];

    (void)id;
    if (p_ip(p, action, &n, ip, o) != 0)
        return;
    set = n.family == AF_INET ? "blocked4" : "blocked6";
    if (block && enf_net_is_local(&n)) {
        enf_fail(o, "refusing to block %s: it is a loopback or unspecified address.", ip);
        return;
    }
    if (block && (m = mgmt_match(c, &n)) != NULL) {
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
        if (enf_nft_run(c->netns, cmds, 3, why, sizeof(why)) != CWPP_OK) {
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
    if (enf_nft_run(c->netns, cmds, 1, why, sizeof(why)) != CWPP_OK) {
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
    if (enf_nft_run(c->netns, cmds, 1, why, sizeof(why)) != CWPP_OK) {
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

static void act_isolate(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"allow", NULL};
    json_t                  *al = json_object_get(p, "allow"), *dl;
    enf_net_t               *allow = NULL;
    size_t                   nallow = 0, i;
    cwpp_buf_t               b = {0};
    enf_nft_cmd_t            cmds[2];
    char                     why[600];

    (void)id;
    if (only_keys(p, "isolate_host", keys, o) != 0)
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
    if (enf_nft_run(c->netns, cmds, 2, why, sizeof(why)) != CWPP_OK) {
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

static void act_restore(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {NULL};
    enf_nft_cmd_t            cmds[2];
    char                     why[600];

    (void)id;
    if (only_keys(p, "restore_host", keys, o) != 0)
        return;
    memset(cmds, 0, sizeof(cmds));
    cmds[0].text = "list table inet cwpp_isolation";
    cmds[0].probe = 1;
    cmds[1].text = "table inet cwpp_isolation {}\ndelete table inet cwpp_isolation\n";
    if (enf_nft_run(c->netns, cmds, 2, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not restore the host's network: %s.", why);
        return;
    }
    o->details = json_pack("{s:b}", "already", cmds[0].rc != 0);
    enf_ok(o, cmds[0].rc != 0 ? "%s was not isolated." : "Restored the network of %s: the "
                                                         "isolation table is gone.",
           where(c));
}

/* ---------------------------------------------------------- kill_process */

/* Process state letter from /proc/PID/stat, or 0. */
static char proc_state(long pid)
{
    char  path[64], buf[512], *rp;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "re")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')'); /* the command name may contain anything */
    return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

static void act_kill(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"pid", "path", NULL};
    json_t                  *jp = json_object_get(p, "pid");
    const char              *want;
    char                     link[64], exe[PATH_MAX + 16], shown[PATH_MAX + 16];
    long                     pid;
    int                      pfd;
    ssize_t                  n;
    struct pollfd            pl;

    (void)c;
    (void)id;
    if (only_keys(p, "kill_process", keys, o) != 0 ||
        p_path(p, "kill_process", "path", 0, &want, o) != 0)
        return;
    if (jp == NULL) {
        enf_fail(o, "kill_process needs the parameter \"pid\".");
        return;
    }
    if (!json_is_integer(jp) || json_integer_value(jp) < 1 ||
        json_integer_value(jp) > PID_LIMIT) {
        enf_fail(o, "the parameter \"pid\" of kill_process must be a process id (an integer "
                 "from 2 to %d).", PID_LIMIT);
        return;
    }
    pid = (long)json_integer_value(jp);
    if (pid <= 1) {
        enf_fail(o, "refusing to kill pid %ld (init).", pid);
        return;
    }
    if (pid == (long)getpid()) {
        enf_fail(o, "refusing to kill pid %ld: it is this agent.", pid);
        return;
    }
    /* a pidfd names this process, not whatever reuses the number later */
    pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (pfd < 0 && errno == ESRCH) {
        o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
        enf_ok(o, "pid %ld is not running.", pid);
        return;
    }
    if (pfd < 0 && errno != ENOSYS) {
        enf_fail(o, "cannot open pid %ld: %s.", pid, strerror(errno));
        return;
    }
    snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
    n = readlink(link, exe, sizeof(exe) - 1);
    if (n < 0) {
        int  err = errno;
        char st = proc_state(pid);

        if (pfd >= 0)
            close(pfd);
        if (st == 0 || st == 'Z' || st == 'X') {
            o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
            enf_ok(o, "pid %ld is not running%s.", pid, st != 0 ? " (it has exited)" : "");
        } else {
            enf_fail(o, "pid %ld has no executable to check (%s): a kernel thread is not "
                     "killed.", pid, strerror(err));
        }
        return;
    }
    exe[n] = '\0';
    snprintf(shown, sizeof(shown), "%s", exe);
    cwpp_utf8_sanitize(shown);
    if (want != NULL) {
        size_t wl = strlen(want);
        int    same = strcmp(exe, want) == 0 ||
                   ((size_t)n == wl + 10 && strncmp(exe, want, wl) == 0 &&
                    strcmp(exe + wl, " (deleted)") == 0);

        if (!same) {
            if (pfd >= 0)
                close(pfd);
            o->details = json_pack("{s:I, s:s}", "pid", (json_int_t)pid, "exe", shown);
            enf_fail(o, "pid %ld is now %s, not %s: not killed.", pid, shown, want);
            return;
        }
    }
    if ((pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0)
                  : kill((pid_t)pid, SIGKILL)) != 0) {
        int err = errno;

        if (pfd >= 0)
            close(pfd);
        if (err == ESRCH) {
            o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
            enf_ok(o, "pid %ld is not running.", pid);
        } else {
            enf_fail(o, "cannot kill pid %ld (%s): %s.", pid, shown, strerror(err));
        }
        return;
    }
    /* a pidfd becomes readable when the process has exited */
    pl.fd = pfd;
    pl.events = POLLIN;
    pl.revents = 0;
    o->details = json_pack("{s:I, s:s, s:b}", "pid", (json_int_t)pid, "exe", shown, "killed", 1);
    if (pfd >= 0 && poll(&pl, 1, 2000) == 0)
        enf_ok(o, "Sent SIGKILL to pid %ld (%s); it has not exited yet.", pid, shown);
    else
        enf_ok(o, "Killed pid %ld (%s).", pid, shown);
    if (pfd >= 0)
        close(pfd);
}

/* ------------------------------------------------------------- accounts */

static void act_account(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                        int disable)
{
    static const char *const keys[] = {"user", NULL};
    const char              *action = disable ? "disable_account" : "enable_account";
    const char              *user;
    char                    *argv[10];
    char                     out[2048], why[600], line[300], st[64];
    int                      status = 0, k = 0;

    (void)id;
    if (only_keys(p, action, keys, o) != 0 || p_str(p, action, "user", 1, &user, o) != 0)
        return;
    if (!enf_user_valid(user)) {
        enf_fail(o, "the parameter \"user\" of %s, \"%.40s\", is not an account name "
                 "([a-z_][a-z0-9_-]{0,31}).", action, user);
        return;
    }
    if (disable && strcmp(user, "root") == 0) {
        enf_fail(o, "refusing to disable the root account.");
        return;
    }
    argv[k++] = (char *)c->usermod_path;
    if (c->usermod_root[0] != '\0') {
        argv[k++] = "--root";
        argv[k++] = (char *)c->usermod_root;
    }
    argv[k++] = disable ? "--lock" : "--unlock";
    argv[k++] = "--expiredate";
    argv[k++] = disable ? "1" : "";
    argv[k++] = (char *)user;
    argv[k] = NULL;
    if (enf_spawn(argv, ENF_SPAWN_MS, out, sizeof(out), &status, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not %s the account %s: %s.", disable ? "disable" : "enable", user,
                 why);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 6) {
        enf_fail(o, "there is no account %s%s%s.", user,
                 c->usermod_root[0] != '\0' ? " under " : "", c->usermod_root);
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        enf_fail(o, "usermod %s %s: %s.", status_text(status, st, sizeof(st)),
                 disable ? "locking the account" : "unlocking the account",
                 out[0] != '\0' ? first_line(out, line, sizeof(line)) : "no message");
        return;
    }
    o->details = json_pack("{s:s}", "user", user);
    if (disable)
        enf_ok(o, "Disabled the account %s: password locked and the account expired "
               "(usermod --lock --expiredate 1).", user);
    else
        enf_ok(o, "Enabled the account %s: password unlocked and no expiry date (usermod "
               "--unlock --expiredate '').", user);
}

/* ------------------------------------------------------------------ WAF */

int enf_waf_edit(const char *file, const char *ip, int add, int *changed, char *errstr,
                 size_t errstr_size)
{
    FILE       *fp = fopen(file, "re");
    cwpp_buf_t  b = {0};
    char       *line = NULL, want[80], tmp[PATH_MAX + 32];
    size_t      cap = 0;
    ssize_t     len;
    int         found = 0, fd, rc = CWPP_OK, last_nl = 1;
    mode_t      mode = 0644;
    struct stat st;

    *changed = 0;
    snprintf(want, sizeof(want), "deny %s;", ip);
    if (fp == NULL && errno != ENOENT)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot read %s: %s", file,
                           strerror(errno));
    if (fp != NULL && fstat(fileno(fp), &st) == 0)
        mode = st.st_mode & 07777;
    while (fp != NULL && (len = getline(&line, &cap, fp)) >= 0) {
        char  *s = line;
        size_t n = (size_t)len;

        last_nl = n > 0 && line[n - 1] == '\n';
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                         s[n - 1] == '\t'))
            n--;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n == strlen(want) && memcmp(s, want, n) == 0) {
            found = 1;
            if (!add)
                continue; /* drop it */
        }
        rc |= cwpp_buf_append(&b, line, (size_t)len);
    }
    free(line);
    if (fp != NULL)
        fclose(fp);
    if ((add && found) || (!add && !found)) {
        cwpp_buf_free(&b);
        return CWPP_OK;
    }
    if (add) {
        if (!last_nl)
            rc |= cwpp_buf_append(&b, "\n", 1);
        rc |= cwpp_buf_puts(&b, want);
        rc |= cwpp_buf_append(&b, "\n", 1);
    }
    if (rc != CWPP_OK) {
        cwpp_buf_free(&b);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    snprintf(tmp, sizeof(tmp), "%s.cwpp-tmp", file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || (b.len > 0 && write(fd, b.data, b.len) != (ssize_t)b.len) ||
        fchmod(fd, mode) != 0 || fsync(fd) != 0 || rename(tmp, file) != 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot rewrite %s: %s", file,
                         strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        cwpp_buf_free(&b);
        return rc;
    }
    close(fd);
    cwpp_buf_free(&b);
    *changed = 1;
    return CWPP_OK;
}

static void act_waf(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o, int add)
{
    static const char *const keys[] = {"ip", NULL};
    const char              *action = add ? "waf_block_ip" : "waf_unblock_ip";
    enf_net_t                n;
    char                     ip[64], why[600];
    int                      changed = 0;

    (void)id;
    if (only_keys(p, action, keys, o) != 0 || p_ip(p, action, &n, ip, o) != 0)
        return;
    if (c->waf_deny_file[0] == '\0') {
        enf_fail(o, "no WAF deny file is configured (enforcer.waf.deny_file).");
        return;
    }
    if (add && enf_net_is_local(&n)) {
        enf_fail(o, "refusing to deny %s at the WAF: it is a loopback or unspecified "
                 "address.", ip);
        return;
    }
    if (add && mgmt_match(c, &n) != NULL) {
        enf_fail(o, "refusing to deny %s at the WAF: it is a management address.", ip);
        return;
    }
    if (enf_waf_edit(c->waf_deny_file, ip, add, &changed, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "%s.", why);
        return;
    }
    /* reload even when the file was already right: a retry after a failed reload must
     * still get the WAF to read it */
    if (c->waf_reload[0] != '\0') {
        char *argv[33], *copy = strdup(c->waf_reload), *save = NULL, *tok, out[2048];
        char  line[300], st[64];
        int   k = 0, status = 0, rc;

        if (copy == NULL) {
            enf_fail(o, "out of memory.");
            return;
        }
        for (tok = strtok_r(copy, " ", &save); tok != NULL && k < 32;
             tok = strtok_r(NULL, " ", &save))
            argv[k++] = tok;
        argv[k] = NULL;
        rc = k > 0 ? enf_spawn(argv, ENF_SPAWN_MS, out, sizeof(out), &status, why, sizeof(why))
                   : cwpp_seterr(why, sizeof(why), CWPP_EIO, "the command is empty");
        free(copy);
        if (rc != CWPP_OK) {
            enf_fail(o, "%s the deny file %s, but the WAF reload failed: %s.",
                     changed ? "updated" : "did not need to change", c->waf_deny_file, why);
            return;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            enf_fail(o, "%s the deny file %s, but the WAF reload command %s: %s.",
                     changed ? "updated" : "did not need to change", c->waf_deny_file,
                     status_text(status, st, sizeof(st)),
                     out[0] != '\0' ? first_line(out, line, sizeof(line)) : "no message");
            return;
        }
    }
    o->details = json_pack("{s:s, s:s, s:b, s:b}", "ip", ip, "deny_file", c->waf_deny_file,
                           "changed", changed, "reloaded", c->waf_reload[0] != '\0');
    if (add)
        enf_ok(o, changed ? "Denied %s at the WAF (%s)%s." : "%s was already denied at the WAF "
                                                             "(%s)%s.",
               ip, c->waf_deny_file, c->waf_reload[0] != '\0' ? "; reloaded" : "");
    else
        enf_ok(o, changed ? "Removed the WAF deny of %s (%s)%s." : "%s was not denied at the WAF "
                                                                   "(%s)%s.",
               ip, c->waf_deny_file, c->waf_reload[0] != '\0' ? "; reloaded" : "");
}

/* ---------------------------------------------------------- files (glue) */

static void act_quarantine(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"path", "sha256", NULL};
    const char              *path, *sha;
    char                     want[65];
    size_t                   i;

    if (only_keys(p, "quarantine_file", keys, o) != 0 ||
        p_path(p, "quarantine_file", "path", 1, &path, o) != 0 ||
        p_str(p, "quarantine_file", "sha256", 0, &sha, o) != 0)
        return;
    if (sha != NULL) {
        for (i = 0; i < 64 && sha[i] != '\0'; i++) {
            char ch = sha[i];

            if (ch >= 'A' && ch <= 'F')
                ch = (char)(ch - 'A' + 'a');
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                break;
            want[i] = ch;
        }
        if (i != 64 || sha[64] != '\0') {
            enf_fail(o, "the parameter \"sha256\" of quarantine_file must be 64 hex digits.");
            return;
        }
        want[64] = '\0';
    }
    enf_quarantine(c, id, path, sha != NULL ? want : NULL, o);
}

static void act_scan(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"path", "quarantine_if_infected", NULL};
    json_t                  *q = json_object_get(p, "quarantine_if_infected");
    const char              *path;

    if (only_keys(p, "scan_file", keys, o) != 0 ||
        p_path(p, "scan_file", "path", 1, &path, o) != 0)
        return;
    if (q != NULL && !json_is_null(q) && !json_is_boolean(q)) {
        enf_fail(o, "the parameter \"quarantine_if_infected\" of scan_file must be true or "
                 "false.");
        return;
    }
    enf_scan(c, id, path, json_is_true(q), o);
}

/* ----------------------------------------------------------------- dispatch */

static void act_block(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"ip", NULL};

    if (only_keys(p, "block_ip", keys, o) == 0)
        act_block_ip(c, id, p, o, 1);
}
static void act_unblock(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"ip", NULL};

    if (only_keys(p, "unblock_ip", keys, o) == 0)
        act_block_ip(c, id, p, o, 0);
}
static void act_disable(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    act_account(c, id, p, o, 1);
}
static void act_enable(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    act_account(c, id, p, o, 0);
}
static void act_waf_block(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    act_waf(c, id, p, o, 1);
}
static void act_waf_unblock(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    act_waf(c, id, p, o, 0);
}

static const struct action_def {
    const char *name;
    void (*fn)(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
} ACTIONS[] = {
    {"block_ip", act_block},
    {"unblock_ip", act_unblock},
    {"isolate_host", act_isolate},
    {"restore_host", act_restore},
    {"kill_process", act_kill},
    {"quarantine_file", act_quarantine},
    {"disable_account", act_disable},
    {"enable_account", act_enable},
    {"waf_block_ip", act_waf_block},
    {"waf_unblock_ip", act_waf_unblock},
    {"scan_file", act_scan},
};

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
