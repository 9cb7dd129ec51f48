/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_util: the project's error codes and the few small helpers every module needs
 * (a growable byte buffer, clocks, bounded string copies, fault injection).
 *
 * Error convention (docs/style.md): a function that can fail returns int, 0 on success or a
 * CWPP_E* code, and writes one sentence into (errstr, errstr_size). Constructors return
 * NULL and fill errstr. Nothing here allocates behind the caller's back except the
 * buffer, whose memory the caller frees with cwpp_buf_free().
 */
#ifndef CWPP_UTIL_H
#define CWPP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CWPP_OK = 0,
    CWPP_EINVAL,     /* bad input record or argument: reject it, keep going */
    CWPP_ENOMEM,     /* allocation failed */
    CWPP_ETRANSIENT, /* a dependency is unavailable right now: retry the same work */
    CWPP_ECONFIG,    /* bad configuration: stop start-up */
    CWPP_EIO,        /* an I/O or library call failed */
    CWPP_ENOTFOUND,  /* the named thing does not exist */
    CWPP_EDATA = 100 /* a dependency refused this record's data (a database constraint,
                      * a value out of range): retrying the same record cannot succeed;
                      * the loop isolates the record and dead-letters it */
};

/* Returns a static name for a CWPP_E* code ("ok", "invalid", ...). Cannot fail. */
const char *cwpp_strerror(int err);

/* Formats into errstr (always NUL-terminated if errstr_size > 0) and returns err. */
int cwpp_seterr(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A growable byte buffer. Zero-initialise it ({0}) before first use. */
typedef struct cwpp_buf {
    unsigned char *data; /* NULL until the first append */
    size_t         len;  /* bytes in use */
    size_t         cap;  /* bytes allocated */
} cwpp_buf_t;

/* Ensures room for extra more bytes. Returns 0 or CWPP_ENOMEM (buffer unchanged). */
int  cwpp_buf_reserve(cwpp_buf_t *b, size_t extra);
/* Appends len bytes. Returns 0 or CWPP_ENOMEM (buffer unchanged). */
int  cwpp_buf_append(cwpp_buf_t *b, const void *p, size_t len);
/* Empties the buffer and keeps its memory. */
void cwpp_buf_reset(cwpp_buf_t *b);
/* Frees the memory; the buffer is empty and reusable afterwards. Accepts NULL. */
void cwpp_buf_free(cwpp_buf_t *b);
/* Hands the bytes to the caller (free() them) and empties the buffer. */
unsigned char *cwpp_buf_detach(cwpp_buf_t *b, size_t *lenp);
/* Appends the NUL-terminated string s (without its NUL). 0 or CWPP_ENOMEM. */
int  cwpp_buf_puts(cwpp_buf_t *b, const char *s);
/* Appends s as a JSON string: quoted, with '"', '\\' and control characters escaped
 * (\u00XX); other bytes (UTF-8) as they are. NULL appends null. 0 or CWPP_ENOMEM. */
int  cwpp_buf_json_str(cwpp_buf_t *b, const char *s);
/* Appends v in decimal. 0 or CWPP_ENOMEM. */
int  cwpp_buf_i64(cwpp_buf_t *b, int64_t v);
/* Appends len bytes of p as lower-case hex. 0 or CWPP_ENOMEM. */
int  cwpp_buf_hex(cwpp_buf_t *b, const void *p, size_t len);
/* Terminates the bytes with a NUL that len does not count, so data is a C string.
 * 0 or CWPP_ENOMEM. */
int  cwpp_buf_cstr(cwpp_buf_t *b);

/* Milliseconds since the Unix epoch (wall clock) / since an arbitrary start (monotonic). */
int64_t cwpp_now_ms(void);
int64_t cwpp_mono_ms(void);
/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds ("2026-11-28T07:55:38.123Z").
 * buf needs at least 25 bytes. Returns buf. */
char *cwpp_format_time_ms(int64_t ms, char *buf, size_t size);

/*
 * Parses an RFC 3339 date-time ("2026-11-28T07:55:38Z", "...38.123456+08:00"; 't'/'z'
 * accepted, up to 9 fraction digits, leap second 60 read as 59) into epoch milliseconds.
 * With lenient_offset, "+0800" (no colon, as Wazuh writes it) is accepted too.
 * Returns 0 or CWPP_EINVAL.
 */
int cwpp_parse_time_ms(const char *s, int lenient_offset, int64_t *ms);

/* strdup that accepts NULL (returns NULL). */
char *cwpp_strdup(const char *s);
/* strdup of the first n bytes, NUL-terminated. Returns NULL on allocation failure. */
char *cwpp_strndup(const char *s, size_t n);
/* Copies src into dst of size dstsize, always NUL-terminating; returns strlen(src). */
size_t cwpp_strlcpy(char *dst, const char *src, size_t dstsize);
/* Writes names[0..n) into buf (size > 0) as one text, separated by sep with last before
 * the last name: (", ", " or ") gives "a, b or c". Truncated to size, always
 * NUL-terminated; the join every vocabulary's help text shares. Returns buf. */
const char *cwpp_names_join(char *buf, size_t size, const char *const *names, size_t n,
                            const char *sep, const char *last);
/* 1 when the len bytes at p are well-formed UTF-8 (no overlongs, no surrogates, no NUL). */
int cwpp_utf8_valid(const void *p, size_t len);
/* Replaces every byte of s that is not part of a valid UTF-8 sequence with '?' (a text cut
 * mid-character by a bounded format, say), in place. Returns how many were replaced. */
size_t cwpp_utf8_sanitize(char *s);

/*
 * Fault injection for tests (docs/style.md convention 10). A named fault point fails on its
 * Nth call after cwpp_fault_arm(name, n) and then keeps succeeding. Production builds
 * carry the checks but nothing arms them (then a check is one atomic load). Thread-safe.
 */
void cwpp_fault_arm(const char *point, int nth);
void cwpp_fault_disarm_all(void);
/* Returns 1 when this call at point is the one to fail. A point may be armed several
 * times; each arming counts on its own. */
int  cwpp_fault_hit(const char *point);
/* Arms "point:N,point:N,..." (the services read it from CWPP_FAULTS, for tests only).
 * Returns how many were armed, or -1 for a malformed list. */
int  cwpp_fault_arm_list(const char *spec);

#endif /* CWPP_UTIL_H */
