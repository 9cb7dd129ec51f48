/* SPDX-License-Identifier: Apache-2.0 */
/*
 * playbooks.c: at start, the built-in playbooks and those of responder.playbooks.dir are
 * validated (cwpp_playbook_check) and written to the playbooks table, where commands and
 * cwppctl find them. A file that is not valid is refused with its reason in the log and
 * the metric cwpp_responder_playbooks_invalid_total; the others still load. Custom
 * playbooks (playbooks.add) are never overwritten by a file of the same name.
 */
#include "rs_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_respond.h"

static const char SQL_UPSERT[] =
    "INSERT INTO playbooks (name, entity_type, description, steps, origin, is_default, "
    "updated_by) VALUES ($1, $2, $3, $4::jsonb, $5, $6::boolean, 'responder') "
    "ON CONFLICT (name) DO UPDATE SET entity_type = EXCLUDED.entity_type, "
    "description = EXCLUDED.description, steps = EXCLUDED.steps, origin = EXCLUDED.origin, "
    "is_default = EXCLUDED.is_default, updated_at = now() "
    "WHERE playbooks.origin = EXCLUDED.origin AND (playbooks.steps, playbooks.description, "
    "playbooks.is_default) IS DISTINCT FROM (EXCLUDED.steps, EXCLUDED.description, "
    "EXCLUDED.is_default) RETURNING name";
static const char SQL_TAKEN[] = "SELECT origin FROM playbooks WHERE name = $1";
/* The files' playbooks are what the directory holds now: one removed is gone. */
static const char SQL_DROP_FILES[] = "DELETE FROM playbooks WHERE origin = 'file'";

static int store(rs_t *r, const json_t *pb, const char *origin, char *errstr,
                 size_t errstr_size)
{
    char       *steps = json_dumps(json_object_get(pb, "steps"), JSON_COMPACT);
    const char *desc = json_string_value(json_object_get(pb, "description"));
    const char *p[6] = {json_string_value(json_object_get(pb, "name")),
                        json_string_value(json_object_get(pb, "entity_type")),
                        desc != NULL ? desc : "", steps, origin,
                        json_is_true(json_object_get(pb, "default")) ? "true" : "false"};
    int         rc;

    PGresult   *res = NULL;

    if (steps == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    rc = cwpp_pg_query(r->pg, SQL_UPSERT, 6, p, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    free(steps);
    if (rc == CWPP_OK && PQntuples(res) == 0) {
        PGresult *o = NULL;

        PQclear(res);
        res = NULL;
        rc = cwpp_pg_query(r->pg, SQL_TAKEN, 1, p, PGRES_TUPLES_OK, &o, errstr, errstr_size);
        if (rc == CWPP_OK && PQntuples(o) == 1 && strcmp(PQgetvalue(o, 0, 0), origin) != 0) {
            cwpp_error("playbook_invalid", "%s: not loaded: the name is taken by a %s playbook",
                       p[0], PQgetvalue(o, 0, 0));
            cwpp_metric_add(r->m_playbooks_invalid, 1);
            rc = 1; /* not stored */
        }
        PQclear(o);
    }
    PQclear(res);
    return rc;
}

/* A file's playbook holds texts within the limits playbooks.add has (cwpp_alert_limits.h):
 * checked as that command's payload would be. 1 fits; else logged. */
static int texts_fit(const json_t *pb, const char *where)
{
    cwpp_command_t       c;
    cwpp_command_reply_t rp;
    int                  ok;

    memset(&c, 0, sizeof(c));
    memset(&rp, 0, sizeof(rp));
    c.payload = json_pack("{s:O}", "playbook", (json_t *)pb);
    if (c.payload == NULL)
        return 1; /* out of memory: the store that follows says so */
    ok = rs_texts_fit(&c, &rp);
    if (!ok)
        cwpp_error("playbook_invalid", "%s: not loaded: %s", where, rp.msg);
    json_decref(c.payload);
    return ok;
}

/* Every playbook of doc (an object or a list of them), each checked. */
static int load_doc(rs_t *r, json_t *doc, const char *origin, const char *where, char *errstr,
                    size_t errstr_size)
{
    size_t i, n = json_is_array(doc) ? json_array_size(doc) : 1;
    char   why[300];
    int    rc;

    for (i = 0; i < n; i++) {
        json_t *pb = json_is_array(doc) ? json_array_get(doc, i) : doc;

        if (cwpp_playbook_check(pb, why, sizeof(why)) != 0) {
            cwpp_error("playbook_invalid", "%s: not loaded: %s", where, why);
            cwpp_metric_add(r->m_playbooks_invalid, 1);
            continue;
        }
        if (!texts_fit(pb, where)) {
            cwpp_metric_add(r->m_playbooks_invalid, 1);
            continue;
        }
        if ((rc = store(r, pb, origin, errstr, errstr_size)) == 1)
            continue;
        if (rc != CWPP_OK)
            return rc;
        cwpp_info("playbook_loaded", "%s from %s",
                  json_string_value(json_object_get(pb, "name")), where);
    }
    return CWPP_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(rs_t *r, char *errstr, size_t errstr_size);

int rs_load_playbooks(rs_t *r, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t      *doc = json_loads(cwpp_playbooks_builtin(), 0, &jerr);
    int          rc;

    if (doc == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "built-in playbooks: %s",
                           jerr.text);
    /* one transaction: commands never see the file playbooks half loaded */
    rc = cwpp_pg_command(r->pg, "BEGIN", errstr, errstr_size);
    if (rc == CWPP_OK)
        rc = load_doc(r, doc, "builtin", "built-in playbooks", errstr, errstr_size);
    json_decref(doc);
    if (rc == CWPP_OK)
        rc = cwpp_pg_query(r->pg, SQL_DROP_FILES, 0, NULL, PGRES_COMMAND_OK, NULL, errstr,
                           errstr_size);
    if (rc == CWPP_OK && r->conf->playbooks_dir[0] != '\0')
        rc = load_dir(r, errstr, errstr_size);
    if (rc == CWPP_OK)
        return cwpp_pg_command(r->pg, "COMMIT", errstr, errstr_size);
    {
        char ignore[64];

        cwpp_pg_command(r->pg, "ROLLBACK", ignore, sizeof(ignore));
    }
    return rc;
}

static int load_dir(rs_t *r, char *errstr, size_t errstr_size)
{
    json_error_t   jerr;
    json_t        *doc;
    DIR           *d;
    struct dirent *de;
    char         **names = NULL;
    size_t         n = 0, cap = 0, i;
    int            rc = CWPP_OK;

    if ((d = opendir(r->conf->playbooks_dir)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "responder.playbooks.dir %s cannot be read", r->conf->playbooks_dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap ? cap * 2 : 16) * sizeof(*names));

            if (nn == NULL)
                break;
            names = nn;
            cap = cap ? cap * 2 : 16;
        }
        if ((names[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name); /* a stable order: the log reads the same */
    for (i = 0; i < n; i++) {
        char path[4096];

        if (rc == CWPP_OK) {
            snprintf(path, sizeof(path), "%s/%s", r->conf->playbooks_dir, names[i]);
            doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
            if (doc == NULL) {
                cwpp_error("playbook_invalid", "%s: not loaded: not JSON (line %d: %s)", path,
                           jerr.line, jerr.text);
                cwpp_metric_add(r->m_playbooks_invalid, 1);
            } else {
                rc = load_doc(r, doc, "file", path, errstr, errstr_size);
                json_decref(doc);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}
