/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_log: JSON log lines on stdout, one object per line:
 *   {"ts":"2026-11-28T07:55:38.123Z","level":"info","service":"ingest",
 *    "event":"batch_done","msg":"...", <extra fields>}
 * "event" is a stable machine-readable name; "msg" a readable sentence. Any thread may
 * log: a line is built in memory and written with one call under a mutex.
 */
#ifndef CWPP_LOG_H
#define CWPP_LOG_H

#include <jansson.h>

typedef enum {
    CWPP_LOG_DEBUG = 0,
    CWPP_LOG_INFO,
    CWPP_LOG_WARN,
    CWPP_LOG_ERROR,
} cwpp_log_level_t;

/* Sets the service name and minimum level. Call once at start-up; may be called again. */
void cwpp_log_init(const char *service, cwpp_log_level_t min_level);
/* Parses "debug", "info", "warn"/"warning", "error". Returns 0 or -1 if unknown. */
int  cwpp_log_level_parse(const char *s, cwpp_log_level_t *out);
/* 1 when a line at lvl would be written. */
int  cwpp_log_enabled(cwpp_log_level_t lvl);

/* Writes one line. */
void cwpp_log(cwpp_log_level_t lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes one line with extra fields; takes ownership of fields (a JSON object, or NULL). */
void cwpp_logj(cwpp_log_level_t lvl, const char *event, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define cwpp_debug(ev, ...) \
    do { if (cwpp_log_enabled(CWPP_LOG_DEBUG)) cwpp_log(CWPP_LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define cwpp_info(ev, ...)  cwpp_log(CWPP_LOG_INFO, ev, __VA_ARGS__)
#define cwpp_warn(ev, ...)  cwpp_log(CWPP_LOG_WARN, ev, __VA_ARGS__)
#define cwpp_error(ev, ...) cwpp_log(CWPP_LOG_ERROR, ev, __VA_ARGS__)

#endif /* CWPP_LOG_H */
