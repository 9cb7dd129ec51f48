/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert_row.c: an alert as PostgreSQL stores it (one row of cwpp.alerts, selected as JSON
 * by CWPP_ALERT_ROW_SQL) back into a cwpp_alert_t, for the services and cwppctl that
 * evaluate stored alerts (whitelist removal, rule previews).
 */
#include "cwpp_alert.h"

#include <stdlib.h>
#include <string.h>

typedef struct rctx {
    int bad;
} rctx_t;

static char *dup_key(rctx_t *c, json_t *obj, const char *key, int required)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;
    char   *s;

    if (v == NULL || json_is_null(v)) {
        if (required)
            c->bad = 1;
        return NULL;
    }
    if (!json_is_string(v)) {
        c->bad = 1;
        return NULL;
    }
    if ((s = strdup(json_string_value(v))) == NULL)
        c->bad = 1;
    return s;
}

static int64_t int_key(rctx_t *c, json_t *obj, const char *key, int *present)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;

    if (present != NULL)
        *present = 0;
    if (v == NULL || json_is_null(v)) {
        if (present == NULL)
            c->bad = 1;
        return 0;
    }
    if (json_is_integer(v)) {
        if (present != NULL)
            *present = 1;
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        if (present != NULL)
            *present = 1;
        return (int64_t)json_real_value(v);
    }
    c->bad = 1;
    return 0;
}

/* The enumerations' names live in alert.c; these index them for sym(). */
static const char *sev_name(int i) { return cwpp_severity_name((cwpp_severity_t)i); }
static const char *def_name(int i) { return cwpp_defense_name((cwpp_defense_t)i); }
static const char *fmt_name(int i) { return cwpp_format_name((cwpp_format_t)i); }
static const char *ent_name(int i) { return cwpp_entity_type_name((cwpp_entity_type_t)i); }
static const char *st_name(int i) { return cwpp_status_name((cwpp_alert_status_t)i); }

/* The index of obj[key] among the n names of an enumeration, or 0 after marking c bad. */
static int sym(rctx_t *c, json_t *obj, const char *key, const char *(*name)(int), int n)
{
    const char *s = json_string_value(json_object_get(obj, key));
    int         i;

    for (i = 0; s != NULL && i < n; i++)
        if (strcmp(s, name(i)) == 0)
            return i;
    c->bad = 1;
    return 0;
}

int cwpp_alert_from_row(const char *json, size_t len, cwpp_alert_t *a, char *errstr,
                        size_t errstr_size)
{
    json_error_t jerr;
    json_t      *root, *sub, *arr, *d;
    const char  *id;
    rctx_t       c = {0};
    size_t       i;

    cwpp_alert_clear(a);
    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "stored alert is not a JSON object");
    }
    id = json_string_value(json_object_get(root, "alert_id"));
    if (!cwpp_alert_id_valid(id)) {
        json_decref(root);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "stored alert has no alert id");
    }
    memcpy(a->alert_id, id, CWPP_ALERT_ID_LEN + 1);
    a->dedup_key = dup_key(&c, root, "dedup_key", 1);
    a->source_alert_id = dup_key(&c, root, "source_alert_id", 0);
    a->format = (cwpp_format_t)sym(&c, root, "input_format", fmt_name, 3);
    a->name = dup_key(&c, root, "name", 1);
    a->type = dup_key(&c, root, "type", 1);
    a->severity = (cwpp_severity_t)sym(&c, root, "severity", sev_name, 4);
    a->source = dup_key(&c, root, "source", 1);
    a->account_id = dup_key(&c, root, "account_id", 1);
    sub = json_object_get(root, "asset");
    a->asset.id = dup_key(&c, sub, "id", 1);
    a->asset.name = dup_key(&c, sub, "name", 0);
    a->asset.ip = dup_key(&c, sub, "ip", 0);
    a->asset.public_ip = dup_key(&c, sub, "public_ip", 0);
    a->asset.role = dup_key(&c, sub, "role", 0);
    a->tactic = dup_key(&c, root, "attack_tactic", 0);
    a->technique = dup_key(&c, root, "attack_technique", 0);
    a->defense = (cwpp_defense_t)sym(&c, root, "defense", def_name, 4);
    sub = json_object_get(root, "file");
    a->file.path = dup_key(&c, sub, "path", 0);
    a->file.md5 = dup_key(&c, sub, "md5", 0);
    a->file.sha256 = dup_key(&c, sub, "sha256", 0);
    sub = json_object_get(root, "process");
    a->process.pid = int_key(&c, sub, "pid", &a->process.has_pid);
    a->process.path = dup_key(&c, sub, "path", 0);
    a->process.cmdline = dup_key(&c, sub, "cmdline", 0);
    a->process.user = dup_key(&c, sub, "user", 0);
    a->remote_ip = dup_key(&c, root, "remote_ip", 0);
    sub = json_object_get(root, "logon");
    a->logon.ip = dup_key(&c, sub, "ip", 0);
    a->logon.user = dup_key(&c, sub, "user", 0);
    d = json_object_get(root, "details");
    a->details = json_is_object(d) ? json_incref(d) : json_object();
    if (a->details == NULL)
        c.bad = 1;
    arr = json_object_get(root, "entities");
    if (json_is_array(arr) && json_array_size(arr) > 0) {
        a->entities = calloc(json_array_size(arr), sizeof(*a->entities));
        if (a->entities == NULL)
            c.bad = 1;
        for (i = 0; a->entities != NULL && i < json_array_size(arr); i++) {
            json_t *e = json_array_get(arr, i);

            a->n_entities++;
            a->entities[i].type =
                (cwpp_entity_type_t)sym(&c, e, "type", ent_name, CWPP_ENT__COUNT);
            a->entities[i].value = dup_key(&c, e, "value", 1);
            a->entities[i].asset_id = dup_key(&c, e, "asset_id", 0);
        }
    }
    a->status = (cwpp_alert_status_t)sym(&c, root, "status", st_name, CWPP_ST__COUNT);
    a->first_seen_ms = int_key(&c, root, "first_ms", NULL);
    a->last_seen_ms = int_key(&c, root, "last_ms", NULL);
    a->occurred_at_ms = a->last_seen_ms;
    a->occurrences = int_key(&c, root, "occurrences", NULL);
    a->ingested_at_ms = int_key(&c, root, "ingested_ms", NULL);
    a->original_occurred_at_ms = int_key(&c, root, "original_ms", &a->has_original_occurred_at);
    json_decref(root);
    if (c.bad) {
        char copy[CWPP_ALERT_ID_LEN + 1];

        memcpy(copy, a->alert_id, sizeof(copy));
        cwpp_alert_clear(a);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "stored alert %s is incomplete or has unknown values",
                           copy);
    }
    return CWPP_OK;
}
