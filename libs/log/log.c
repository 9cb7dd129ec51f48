/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c: builds each line as a jansson object, dumps it compactly and writes it with a
 * single fwrite + fflush under a mutex so lines from librdkafka's threads never
 * interleave. If a line cannot be built (out of memory) a fixed fallback line is written.
 */
#include "cwpp_log.h"
#include "cwpp_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char            log_service[64] = "cwpp";
static atomic_int      log_min = CWPP_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cwpp_log_init(const char *service, cwpp_log_level_t min_level)
{
    pthread_mutex_lock(&log_lock);
    cwpp_strlcpy(log_service, service != NULL ? service : "cwpp", sizeof(log_service));
    pthread_mutex_unlock(&log_lock);
    atomic_store(&log_min, (int)min_level);
}

int cwpp_log_level_parse(const char *s, cwpp_log_level_t *out)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "debug") == 0)
        *out = CWPP_LOG_DEBUG;
    else if (strcasecmp(s, "info") == 0)
        *out = CWPP_LOG_INFO;
    else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
        *out = CWPP_LOG_WARN;
    else if (strcasecmp(s, "error") == 0)
        *out = CWPP_LOG_ERROR;
    else
        return -1;
    return 0;
}

int cwpp_log_enabled(cwpp_log_level_t lvl)
{
    return (int)lvl >= atomic_load(&log_min);
}

static void log_emit(cwpp_log_level_t lvl, const char *event, json_t *fields,
                     const char *fmt, va_list ap)
{
    char    msg[2048];
    char    ts[32];
    json_t *o;
    char   *line;

    if (!cwpp_log_enabled(lvl)) {
        json_decref(fields);
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cwpp_format_time_ms(cwpp_now_ms(), ts, sizeof(ts));

    o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[lvl]));
        pthread_mutex_lock(&log_lock);
        json_object_set_new(o, "service", json_string(log_service));
        pthread_mutex_unlock(&log_lock);
        json_object_set_new(o, "event", json_string(event != NULL ? event : "log"));
        /* A message may carry bytes from bad input: never let it break the line. */
        if (cwpp_utf8_valid(msg, strlen(msg)))
            json_object_set_new(o, "msg", json_string(msg));
        else
            json_object_set_new(o, "msg", json_string("(message not valid UTF-8)"));
        if (fields != NULL && json_is_object(fields))
            json_object_update_missing(o, fields);
    }
    json_decref(fields);
    line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);

    pthread_mutex_lock(&log_lock);
    if (line != NULL) {
        fputs(line, stdout);
        fputc('\n', stdout);
    } else {
        fputs("{\"level\":\"error\",\"event\":\"log_failed\",\"msg\":\"out of memory\"}\n", stdout);
    }
    fflush(stdout);
    pthread_mutex_unlock(&log_lock);
    free(line);
}

void cwpp_log(cwpp_log_level_t lvl, const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(lvl, event, NULL, fmt, ap);
    va_end(ap);
}

void cwpp_logj(cwpp_log_level_t lvl, const char *event, json_t *fields, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_emit(lvl, event, fields, fmt, ap);
    va_end(ap);
}
