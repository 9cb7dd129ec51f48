/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c: error strings, the byte buffer, clocks, string helpers and fault points.
 * Everything here is small and re-entrant except the fault table, which tests arm
 * before any thread starts.
 */
#include "cwpp_util.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cwpp_strerror(int err)
{
    switch (err) {
    case CWPP_OK:         return "ok";
    case CWPP_EINVAL:     return "invalid";
    case CWPP_ENOMEM:     return "out of memory";
    case CWPP_ETRANSIENT: return "temporarily unavailable";
    case CWPP_ECONFIG:    return "bad configuration";
    case CWPP_EIO:        return "i/o error";
    case CWPP_ENOTFOUND:  return "not found";
    case CWPP_EDATA:      return "data refused";
    default:              return "unknown error";
    }
}

int cwpp_seterr(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
{
    va_list ap;

    if (errstr != NULL && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

int cwpp_buf_reserve(cwpp_buf_t *b, size_t extra)
{
    size_t         need, ncap;
    unsigned char *p;

    if (extra > SIZE_MAX - b->len)
        return CWPP_ENOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return CWPP_OK;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (cwpp_fault_hit("buf_alloc"))
        return CWPP_ENOMEM;
    p = realloc(b->data, ncap);
    if (p == NULL)
        return CWPP_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return CWPP_OK;
}

int cwpp_buf_append(cwpp_buf_t *b, const void *p, size_t len)
{
    if (len == 0)
        return CWPP_OK;
    if (cwpp_buf_reserve(b, len) != CWPP_OK)
        return CWPP_ENOMEM;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return CWPP_OK;
}

int cwpp_buf_puts(cwpp_buf_t *b, const char *s)
{
    return cwpp_buf_append(b, s, strlen(s));
}

int cwpp_buf_json_str(cwpp_buf_t *b, const char *s)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p, *run;

    if (s == NULL)
        return cwpp_buf_append(b, "null", 4);
    if (cwpp_buf_reserve(b, strlen(s) + 2) != CWPP_OK || cwpp_buf_append(b, "\"", 1) != 0)
        return CWPP_ENOMEM;
    for (p = run = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[6];
        int  n;

        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        if (cwpp_buf_append(b, run, (size_t)(p - run)) != CWPP_OK)
            return CWPP_ENOMEM;
        esc[0] = '\\';
        switch (*p) {
        case '"': esc[1] = '"'; n = 2; break;
        case '\\': esc[1] = '\\'; n = 2; break;
        case '\n': esc[1] = 'n'; n = 2; break;
        case '\r': esc[1] = 'r'; n = 2; break;
        case '\t': esc[1] = 't'; n = 2; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hexd[*p >> 4];
            esc[5] = hexd[*p & 15];
            n = 6;
        }
        if (cwpp_buf_append(b, esc, (size_t)n) != CWPP_OK)
            return CWPP_ENOMEM;
        run = p + 1;
    }
    return cwpp_buf_append(b, run, (size_t)(p - run)) == CWPP_OK && cwpp_buf_append(b, "\"", 1) == CWPP_OK
               ? CWPP_OK
               : CWPP_ENOMEM;
}

int cwpp_buf_i64(cwpp_buf_t *b, int64_t v)
{
    char d[24];
    int  n = snprintf(d, sizeof(d), "%" PRId64, v);

    return cwpp_buf_append(b, d, (size_t)n);
}

int cwpp_buf_hex(cwpp_buf_t *b, const void *p, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *s = p;
    size_t i;

    if (len > SIZE_MAX / 2 || cwpp_buf_reserve(b, 2 * len) != CWPP_OK)
        return CWPP_ENOMEM;
    for (i = 0; i < len; i++) {
        b->data[b->len++] = (unsigned char)hexd[s[i] >> 4];
        b->data[b->len++] = (unsigned char)hexd[s[i] & 15];
    }
    return CWPP_OK;
}

int cwpp_buf_cstr(cwpp_buf_t *b)
{
    if (cwpp_buf_reserve(b, 1) != CWPP_OK)
        return CWPP_ENOMEM;
    b->data[b->len] = '\0';
    return CWPP_OK;
}

void cwpp_buf_reset(cwpp_buf_t *b)
{
    b->len = 0;
}

void cwpp_buf_free(cwpp_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

unsigned char *cwpp_buf_detach(cwpp_buf_t *b, size_t *lenp)
{
    unsigned char *p = b->data;

    if (lenp != NULL)
        *lenp = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int64_t cwpp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cwpp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *cwpp_format_time_ms(int64_t ms, char *buf, size_t size)
{
    time_t    secs;
    int       frac;
    struct tm tm;

    secs = (time_t)(ms / 1000);
    frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    if (gmtime_r(&secs, &tm) == NULL) {
        cwpp_strlcpy(buf, "1970-01-01T00:00:00.000Z", size);
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t  era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int cwpp_parse_time_ms(const char *s, int lenient_offset, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int     y, mo, d, h, mi, se, oh = 0, om = 0, frac_ms = 0, nfrac = 0, leap, sign = 1;
    const char *p;
    int64_t days;

    if (s == NULL || strlen(s) < 20)
        return CWPP_EINVAL;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return CWPP_EINVAL;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 ||
        mi > 59 || se > 60)
        return CWPP_EINVAL;
    if (se == 60)
        se = 59;
    p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nfrac < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0 || nfrac > 9)
            return CWPP_EINVAL;
        while (nfrac < 3) {
            frac_ms *= 10;
            nfrac++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (digits(p, 2, &oh))
            return CWPP_EINVAL;
        p += 2;
        if (*p == ':')
            p++;
        else if (!lenient_offset)
            return CWPP_EINVAL;
        if (digits(p, 2, &om))
            return CWPP_EINVAL;
        p += 2;
        if (oh > 23 || om > 59)
            return CWPP_EINVAL;
    } else {
        return CWPP_EINVAL;
    }
    if (*p != '\0')
        return CWPP_EINVAL;
    days = days_from_civil(y, mo, d);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + se) - sign * (oh * 3600 + om * 60)) * 1000 +
          frac_ms;
    return CWPP_OK;
}

char *cwpp_strdup(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

char *cwpp_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

const char *cwpp_names_join(char *buf, size_t size, const char *const *names, size_t n,
                            const char *sep, const char *last)
{
    size_t i, len = 0;

    assert(size > 0);
    buf[0] = '\0';
    for (i = 0; i < n && len < size; i++) {
        const char *before = i == 0 ? "" : i + 1 == n ? last : sep;
        int         w = snprintf(buf + len, size - len, "%s%s", before, names[i]);

        if (w < 0)
            break;
        len += (size_t)w;
    }
    return buf;
}

size_t cwpp_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);

    if (dstsize > 0) {
        size_t c = n < dstsize - 1 ? n : dstsize - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

int cwpp_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t               i = 0;

    while (i < len) {
        unsigned char c = s[i];
        uint32_t      cp;
        size_t        n, k;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n > len - i - 1)
            return 0; /* truncated sequence */
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
            return 0; /* overlong */
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

size_t cwpp_utf8_sanitize(char *s)
{
    size_t len = strlen(s), i = 0, fixed = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t        n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                          : (c & 0xF8) == 0xF0 ? 4 : 0;

        if (n > 0 && n <= len - i && cwpp_utf8_valid(s + i, n)) {
            i += n;
        } else {
            s[i++] = '?';
            fixed++;
        }
    }
    return fixed;
}

/* Fault points: a tiny table, armed by tests only. */
#define CWPP_FAULT_MAX 8
static struct {
    char name[48];
    int  remaining; /* calls left before the failing one; 0 = disarmed */
} fault_tab[CWPP_FAULT_MAX];

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int      fault_armed; /* points armed: 0 keeps every check lock-free */

void cwpp_fault_arm(const char *point, int nth)
{
    int i;

    pthread_mutex_lock(&fault_lock);
    for (i = 0; i < CWPP_FAULT_MAX; i++) {
        if (fault_tab[i].remaining == 0) {
            cwpp_strlcpy(fault_tab[i].name, point, sizeof(fault_tab[i].name));
            fault_tab[i].remaining = nth;
            atomic_fetch_add(&fault_armed, 1);
            break;
        }
    }
    pthread_mutex_unlock(&fault_lock);
}

void cwpp_fault_disarm_all(void)
{
    pthread_mutex_lock(&fault_lock);
    memset(fault_tab, 0, sizeof(fault_tab));
    atomic_store(&fault_armed, 0);
    pthread_mutex_unlock(&fault_lock);
}

int cwpp_fault_hit(const char *point)
{
    int i, hit = 0;

    if (atomic_load(&fault_armed) == 0)
        return 0;
    pthread_mutex_lock(&fault_lock);
    for (i = 0; i < CWPP_FAULT_MAX; i++) {
        if (fault_tab[i].remaining > 0 && strcmp(fault_tab[i].name, point) == 0 &&
            --fault_tab[i].remaining == 0) {
            fault_tab[i].name[0] = '\0';
            atomic_fetch_sub(&fault_armed, 1);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return hit;
}

int cwpp_fault_arm_list(const char *spec)
{
    char  copy[512], *save = NULL, *item;
    int   armed = 0;

    if (spec == NULL || *spec == '\0')
        return 0;
    cwpp_strlcpy(copy, spec, sizeof(copy));
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        int   nth;

        if (colon == NULL || (nth = atoi(colon + 1)) < 1)
            return -1;
        *colon = '\0';
        cwpp_fault_arm(item, nth);
        armed++;
    }
    return armed;
}
