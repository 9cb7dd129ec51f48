/* SPDX-License-Identifier: Apache-2.0 */
/*
 * export.c: Excel exports, run as jobs by cwpp-exporter (docs/exporter.md):
 *
 *   export [--level L...] [--status S...] [--since T] [--until T] [--ids ID...] --out FILE
 *   export download JOB --out FILE
 *   export list [--limit N]
 *
 * The filters are checked here first (a sentence naming the problem, exit 2), then sent
 * as an export.create command; the exporter's progress records are shown as a bar and the
 * finished workbook is read from PostgreSQL, wherever the exporter runs.
 */
#include "ctl.h"
#include "cwpp_correlate.h"

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

static int download(ctl_t *c, const char *job, const char *out, int quiet)
{
    PGconn     *pg = ctl_pg(c);
    const char *p[1] = {job};
    PGresult   *r;
    int         rc;

    if (pg == NULL)
        return CTL_INFRA;
    /* binary results: the bytea as it is (and the text column's bytes, NUL-ended) */
    r = PQexecParams(pg, "SELECT f.bytes, f.sha256 FROM export_files f WHERE f.job_id = $1", 1,
                     NULL, p, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return ctl_fail(CTL_REFUSED, "there is no finished export %s (cwppctl export list)",
                        job);
    }
    rc = write_file(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    if (rc == CTL_OK && !quiet) {
        if (c->json)
            ctl_print_json(json_pack("{s:s, s:s, s:I, s:s}", "job_id", job, "file", out, "bytes",
                                     (json_int_t)PQgetlength(r, 0, 0), "sha256",
                                     PQgetvalue(r, 0, 1)));
        else
            printf("%s: %d bytes (sha256 %s)\n", out, PQgetlength(r, 0, 0), PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return rc;
}

static int export_list(ctl_t *c, int argc, char **argv)
{
    PGconn     *pg;
    PGresult   *r;
    const char *p[1] = {"50"};
    json_t     *jobs;
    int         i;

    if (argc == 2 && strcmp(argv[0], "--limit") == 0)
        p[0] = argv[1];
    else if (argc != 0)
        return ctl_fail(CTL_USAGE, "usage: cwppctl export list [--limit N]");
    if (strspn(p[0], "0123456789") != strlen(p[0]) || atoi(p[0]) < 1 || atoi(p[0]) > 10000)
        return ctl_fail(CTL_USAGE, "--limit must be 1 to 10000");
    if ((pg = ctl_pg(c)) == NULL)
        return CTL_INFRA;
    r = PQexecParams(pg, "SELECT j.job_id, j.actor, j.events, " CTL_TS("j.created_at")
                     ", j.filters::text, COALESCE(octet_length(f.bytes), 0) FROM export_jobs j "
                     "LEFT JOIN export_files f USING (job_id) ORDER BY j.created_at DESC "
                     "LIMIT $1::int", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ctl_query_failed(pg, r);
    jobs = json_array();
    for (i = 0; i < PQntuples(r); i++) {
        json_error_t jerr;

        json_array_append_new(jobs, json_pack("{s:s, s:s, s:i, s:s, s:o?, s:i}", "job_id",
                                              PQgetvalue(r, i, 0), "actor", PQgetvalue(r, i, 1),
                                              "events", atoi(PQgetvalue(r, i, 2)), "created_at",
                                              PQgetvalue(r, i, 3), "filters",
                                              json_loads(PQgetvalue(r, i, 4), 0, &jerr), "bytes",
                                              atoi(PQgetvalue(r, i, 5))));
    }
    PQclear(r);
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
    json_t     *lv, *st, *ids, *payload, *result;
    const char *out = NULL;
    char       *status = NULL, *message = NULL, when[40];
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
            rc = ctl_parse_when(o, argv[++i], when, sizeof(when), &since);
            has_since = 1;
        } else if (strcmp(o, "--until") == 0) {
            rc = ctl_parse_when(o, argv[++i], when, sizeof(when), &until);
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
    if (rc == CTL_OK && (c->actor == NULL || c->actor[0] == '\0'))
        rc = ctl_fail(CTL_USAGE, "who are you? Set CWPP_ACTOR or --actor: every export is "
                      "logged with its actor");
    if (rc != CTL_OK) {
        json_decref(lv);
        json_decref(st);
        json_decref(ids);
        return rc;
    }
    payload = json_object();
    if (json_array_size(lv) > 0)
        json_object_set(payload, "levels", lv);
    if (json_array_size(st) > 0)
        json_object_set(payload, "statuses", st);
    if (json_array_size(ids) > 0)
        json_object_set(payload, "ids", ids);
    if (has_since)
        json_object_set_new(payload, "since_ms", json_integer(since));
    if (has_until)
        json_object_set_new(payload, "until_ms", json_integer(until));
    json_decref(lv);
    json_decref(st);
    json_decref(ids);
    rc = ctl_send(c, "exporter", "export.create", payload, &status, &message, &result);
    json_decref(payload);
    if (rc != CTL_OK)
        return rc;
    if (strcmp(status, "ok") != 0) {
        fprintf(stderr, "cwppctl: %s\n", message);
        rc = CTL_REFUSED;
    } else {
        const char *job = json_string_value(json_object_get(result, "job_id"));

        rc = job != NULL ? download(c, job, out, 1)
                         : ctl_fail(CTL_INFRA, "the exporter's answer names no job");
        if (rc == CTL_OK) {
            if (c->json) {
                json_object_set_new(result, "file", json_string(out));
                ctl_print_json(json_pack("{s:s, s:s, s:O}", "status", status, "message",
                                         message, "result", result));
            } else {
                printf("%s\n%s written.\n", message, out);
            }
        }
    }
    free(status);
    free(message);
    json_decref(result);
    return rc;
}
