/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netaddr.c: IPv4 and IPv6 addresses and networks as the actions take them: parsing,
 * containment (the management addresses), canonical text, comma lists.
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
