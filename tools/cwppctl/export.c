/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c: Excel exports, run as jobs by cwpp-exporter (docs/exporter.md), through
 * cwpp-api's /api/v1/exports:
 *
 *   export [--level L...] [--status S...] [--since T] [--until T] [--ids ID...] --out FILE
 *   export download JOB --out FILE
 *   export list [--all] [--limit N]
 *
 * The filters are checked here first (a sentence naming the problem, exit 2), then POSTed;
 * the API issues the exporter's export.create command as the token's user and answers
 * when the job is done; the workbook is then downloaded from the API.
 */
#include "ctl.h"
#include "cwpp_correlate.h"
#include "cwpp_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int known(const char *v, const char *const *ok, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(v, ok[i]) == 0)
            return 1;
    return 0;
}

/* Appends the comma-separated words of v to list, each one of ok. */
static int add_words(json_t *list, const char *opt, const char *v, const char *const *ok,
                     size_t n, const char *what)
{
    char *copy = strdup(v), *save = NULL, *w, names[160];
    int   rc = CTL_OK;

    if (copy == NULL)
        return ctl_fail(CTL_INFRA, "out of memory");
    if (strspn(v, ",") == strlen(v))
        rc = ctl_fail(CTL_USAGE, "%s needs a value", opt);
    for (w = strtok_r(copy, ",", &save); w != NULL && rc == CTL_OK;
         w = strtok_r(NULL, ",", &save)) {
        if (!known(w, ok, n))
            rc = ctl_fail(CTL_USAGE, "%s: \"%s\" is not a %s (%s)", opt, w, what,
                          cwpp_names_join(names, sizeof(names), ok, n, ", ", ", "));
        else
            json_array_append_new(list, json_string(w));
    }
    free(copy);
    return rc;
}

/* Writes len bytes to path (atomically: a temporary file renamed). */
static int write_file(const char *path, const char *data, size_t len)
{
    char  tmp[4200];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.part", path);
    if ((fp = fopen(tmp, "wb")) == NULL)
        return ctl_fail(CTL_INFRA, "cannot write %s: %s", tmp, strerror(errno));
    if (fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
        remove(tmp);
        return ctl_fail(CTL_INFRA, "cannot write %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return ctl_fail(CTL_INFRA, "cannot write %s: %s", path, strerror(errno));
    }
    return CTL_OK;
}

/* Appends s to b percent-encoded as one path segment (a job id). */
static void put_segment(cwpp_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            cwpp_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

            cwpp_buf_append(b, e, 3);
        }
    }
}

/* "/api/v1/exports/<job><suffix>" into b (NUL-terminated). */
static const char *job_path(cwpp_buf_t *b, const char *job, const char *suffix)
{
    cwpp_buf_reset(b);
    cwpp_buf_puts(b, "/api/v1/exports/");
    put_segment(b, job);
    cwpp_buf_puts(b, suffix);
    return cwpp_buf_cstr(b) == 0 ? (const char *)b->data : "";
}

/* Fetches the job's workbook into out; with !quiet prints what was written. */
static int download(ctl_t *c, const char *job, const char *out, int quiet)
{
    cwpp_buf_t b = {0};
    json_t    *doc = NULL;
    char      *data = NULL;
    size_t     len = 0;
    int        rc;

    rc = ctl_api(c, "GET", job_path(&b, job, ""), NULL, &doc);
    if (rc == CTL_OK)
        rc = ctl_api_raw(c, job_path(&b, job, "/file"), &data, &len);
    cwpp_buf_free(&b);
    if (rc == CTL_OK)
        rc = write_file(out, data, len);
    if (rc == CTL_OK && !quiet) {
        const char *sha = json_string_value(json_object_get(doc, "sha256"));

        if (c->json)
            ctl_print_json(json_pack("{s:s, s:s, s:I, s:s}", "job_id", job, "file", out, "bytes",
                                     (json_int_t)len, "sha256", sha != NULL ? sha : ""));
        else
            printf("%s: %zu bytes (sha256 %s)\n", out, len, sha != NULL ? sha : "");
    }
    free(data);
    json_decref(doc);
    return rc;
}

static int export_list(ctl_t *c, int argc, char **argv)
{
    json_t *jobs;
    long    limit = 50;
    int     i, all = 0, rc = CTL_OK;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            const char *v = argv[++i];

            if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 6 || atol(v) < 1 ||
                atol(v) > 10000)
                return ctl_fail(CTL_USAGE, "--limit must be 1 to 10000");
            limit = atol(v);
        } else {
            return ctl_fail(CTL_USAGE, "usage: cwppctl export list [--all] [--limit N]");
        }
    }
    {
        cwpp_buf_t b = {0};
        json_t    *doc = NULL;

        cwpp_buf_puts(&b, "/api/v1/exports");
        if (all)
            ctl_q(&b, "all", "yes");
        cwpp_buf_cstr(&b);
        rc = ctl_api_pages(c, (const char *)b.data, "exports", limit, &doc);
        cwpp_buf_free(&b);
        if (rc != CTL_OK)
            return rc;
        jobs = json_incref(json_object_get(doc, "exports"));
        json_decref(doc);
    }
    if (c->json) {
        ctl_print_json(json_pack("{s:o}", "exports", jobs));
        return CTL_OK;
    }
    if (json_array_size(jobs) == 0)
        printf("No exports yet.\n");
    for (i = 0; i < (int)json_array_size(jobs); i++) {
        json_t *j = json_array_get(jobs, (size_t)i);
        char   *f = json_dumps(json_object_get(j, "filters"), JSON_COMPACT);

        printf("%s  %s  %-12s %5lld events %8lld bytes  %s\n",
               json_string_value(json_object_get(j, "created_at")),
               json_string_value(json_object_get(j, "job_id")),
               json_string_value(json_object_get(j, "actor")),
               (long long)json_integer_value(json_object_get(j, "events")),
               (long long)json_integer_value(json_object_get(j, "bytes")), f != NULL ? f : "");
        free(f);
    }
    json_decref(jobs);
    return CTL_OK;
}

int ctl_export(ctl_t *c, int argc, char **argv)
{
    static const char *const levels[] = {"critical", "high", "medium", "low"};
    const char *statuses[CWPP_EVS__COUNT];
    json_t     *lv, *st, *ids, *body, *answer = NULL, *result;
    const char *out = NULL, *status, *job;
    char        since_s[40], until_s[40];
    int64_t     since = 0, until = 0;
    int         i, rc = CTL_OK, has_since = 0, has_until = 0;

    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return export_list(c, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "download") == 0) {
        if (argc != 4 || strcmp(argv[2], "--out") != 0)
            return ctl_fail(CTL_USAGE, "usage: cwppctl export download JOB --out FILE.xlsx");
        return download(c, argv[1], argv[3], 0);
    }
    for (i = 0; i < CWPP_EVS__COUNT; i++)
        statuses[i] = cwpp_event_status_name((cwpp_event_status_t)i);
    lv = json_array();
    st = json_array();
    ids = json_array();
    for (i = 0; i < argc && rc == CTL_OK; i++) {
        const char *o = argv[i];

        if (strcmp(o, "--ids") == 0) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                rc = ctl_fail(CTL_USAGE, "--ids needs at least one event id");
            while (rc == CTL_OK && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                json_array_append_new(ids, json_string(argv[++i]));
            continue;
        }
        if (i + 1 >= argc) {
            rc = ctl_fail(CTL_USAGE, "%s needs a value", o);
            break;
        }
        if (strcmp(o, "--level") == 0) {
            rc = add_words(lv, o, argv[++i], levels, 4, "level");
        } else if (strcmp(o, "--status") == 0) {
            rc = add_words(st, o, argv[++i], statuses, CWPP_EVS__COUNT, "status");
        } else if (strcmp(o, "--since") == 0) {
            rc = ctl_parse_when(o, argv[++i], since_s, sizeof(since_s), &since);
            has_since = 1;
        } else if (strcmp(o, "--until") == 0) {
            rc = ctl_parse_when(o, argv[++i], until_s, sizeof(until_s), &until);
            has_until = 1;
        } else if (strcmp(o, "--out") == 0) {
            out = argv[++i];
        } else {
            rc = ctl_fail(CTL_USAGE, "unknown option \"%s\" (cwppctl --help)", o);
        }
    }
    if (rc == CTL_OK && has_since && has_until && until < since)
        rc = ctl_fail(CTL_USAGE, "--until is before --since");
    if (rc == CTL_OK && out == NULL)
        rc = ctl_fail(CTL_USAGE, "usage: cwppctl export [--level L...] [--status S...] "
                      "[--since T] [--until T] [--ids ID...] --out FILE.xlsx");
    if (rc != CTL_OK) {
        json_decref(lv);
        json_decref(st);
        json_decref(ids);
        return rc;
    }
    body = json_object();
    if (json_array_size(lv) > 0)
        json_object_set(body, "levels", lv);
    if (json_array_size(st) > 0)
        json_object_set(body, "statuses", st);
    if (json_array_size(ids) > 0)
        json_object_set(body, "ids", ids);
    if (has_since)
        json_object_set_new(body, "since", json_string(since_s));
    if (has_until)
        json_object_set_new(body, "until", json_string(until_s));
    json_decref(lv);
    json_decref(st);
    json_decref(ids);
    /* 200: the job is done (a 202, no answer in time, is CTL_INFRA naming the command) */
    rc = ctl_api(c, "POST", "/api/v1/exports", body, &answer);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    status = json_string_value(json_object_get(answer, "status"));
    result = json_object_get(answer, "result");
    job = json_string_value(json_object_get(result, "job_id"));
    if (status == NULL || strcmp(status, "ok") != 0 || job == NULL) {
        rc = ctl_fail(CTL_INFRA, "the API's answer names no export job");
    } else if ((rc = download(c, job, out, 1)) == CTL_OK) {
        const char *message = json_string_value(json_object_get(answer, "message"));

        if (c->json) {
            json_object_set_new(result, "file", json_string(out));
            ctl_print_json(json_pack("{s:s, s:s, s:O}", "status", status, "message",
                                     message != NULL ? message : "", "result", result));
        } else {
            printf("%s\n%s written.\n", message != NULL ? message : "", out);
        }
    }
    json_decref(answer);
    return rc;
}
