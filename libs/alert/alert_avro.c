/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert_avro.c: cwpp_alert_t <-> Avro "Alert" (schemas/alert.avsc). Field names here
 * must match the schema; the round-trip unit test holds the two together.
 */
#include "cwpp_alert.h"

#include <stdlib.h>
#include <string.h>

int cwpp_alert_to_avro(const cwpp_alert_t *a, const cwpp_avro_type_t *t, avro_value_t *v,
                       cwpp_buf_t *out, char *errstr, size_t errstr_size)
{
    avro_value_t sub, arr, ent;
    char        *details = NULL;
    size_t       i;
    int          rc = 0;

    avro_value_reset(v);
    details = json_dumps(a->details != NULL ? a->details : json_object(), JSON_COMPACT);
    if (details == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    rc |= cwpp_avro_set_str(v, "alert_id", a->alert_id);
    rc |= cwpp_avro_set_str(v, "dedup_key", a->dedup_key);
    rc |= cwpp_avro_set_opt_str(v, "source_alert_id", a->source_alert_id);
    rc |= cwpp_avro_set_enum(v, "input_format", cwpp_format_name(a->format));
    rc |= cwpp_avro_set_str(v, "name", a->name);
    rc |= cwpp_avro_set_str(v, "type", a->type);
    rc |= cwpp_avro_set_enum(v, "severity", cwpp_severity_name(a->severity));
    rc |= cwpp_avro_set_long(v, "occurred_at_ms", a->occurred_at_ms);
    rc |= cwpp_avro_set_str(v, "source", a->source);
    rc |= cwpp_avro_set_str(v, "account_id", a->account_id);
    if (avro_value_get_by_name(v, "asset", &sub, NULL) == 0) {
        rc |= cwpp_avro_set_str(&sub, "id", a->asset.id);
        rc |= cwpp_avro_set_opt_str(&sub, "name", a->asset.name);
        rc |= cwpp_avro_set_opt_str(&sub, "ip", a->asset.ip);
        rc |= cwpp_avro_set_opt_str(&sub, "public_ip", a->asset.public_ip);
        rc |= cwpp_avro_set_opt_str(&sub, "role", a->asset.role);
    } else {
        rc = 1;
    }
    rc |= cwpp_avro_opt_record(v, "attack", a->tactic || a->technique, &sub);
    if (a->tactic || a->technique) {
        rc |= cwpp_avro_set_opt_str(&sub, "tactic", a->tactic);
        rc |= cwpp_avro_set_opt_str(&sub, "technique", a->technique);
    }
    rc |= cwpp_avro_set_enum(v, "defense", cwpp_defense_name(a->defense));
    if (a->file.path || a->file.md5 || a->file.sha256) {
        rc |= cwpp_avro_opt_record(v, "file", 1, &sub);
        rc |= cwpp_avro_set_opt_str(&sub, "path", a->file.path);
        rc |= cwpp_avro_set_opt_str(&sub, "md5", a->file.md5);
        rc |= cwpp_avro_set_opt_str(&sub, "sha256", a->file.sha256);
    } else {
        rc |= cwpp_avro_opt_record(v, "file", 0, NULL);
    }
    if (a->process.has_pid || a->process.path || a->process.cmdline || a->process.user) {
        rc |= cwpp_avro_opt_record(v, "process", 1, &sub);
        rc |= cwpp_avro_set_opt_long(&sub, "pid", a->process.has_pid ? &a->process.pid : NULL);
        rc |= cwpp_avro_set_opt_str(&sub, "path", a->process.path);
        rc |= cwpp_avro_set_opt_str(&sub, "cmdline", a->process.cmdline);
        rc |= cwpp_avro_set_opt_str(&sub, "user", a->process.user);
    } else {
        rc |= cwpp_avro_opt_record(v, "process", 0, NULL);
    }
    rc |= cwpp_avro_set_opt_str(v, "remote_ip", a->remote_ip);
    if (a->logon.ip || a->logon.user) {
        rc |= cwpp_avro_opt_record(v, "logon", 1, &sub);
        rc |= cwpp_avro_set_opt_str(&sub, "ip", a->logon.ip);
        rc |= cwpp_avro_set_opt_str(&sub, "user", a->logon.user);
    } else {
        rc |= cwpp_avro_opt_record(v, "logon", 0, NULL);
    }
    rc |= cwpp_avro_set_str(v, "details_json", details);
    if (avro_value_get_by_name(v, "entities", &arr, NULL) == 0) {
        for (i = 0; i < a->n_entities; i++) {
            if (avro_value_append(&arr, &ent, NULL) != 0) {
                rc = 1;
                break;
            }
            rc |= cwpp_avro_set_enum(&ent, "type", cwpp_entity_type_name(a->entities[i].type));
            rc |= cwpp_avro_set_str(&ent, "value", a->entities[i].value);
            rc |= cwpp_avro_set_opt_str(&ent, "asset_id", a->entities[i].asset_id);
        }
    } else {
        rc = 1;
    }
    rc |= cwpp_avro_set_enum(v, "status", cwpp_status_name(a->status));
    rc |= cwpp_avro_set_long(v, "first_seen_ms", a->first_seen_ms);
    rc |= cwpp_avro_set_long(v, "last_seen_ms", a->last_seen_ms);
    rc |= cwpp_avro_set_long(v, "occurrences", a->occurrences);
    rc |= cwpp_avro_set_long(v, "ingested_at_ms", a->ingested_at_ms);
    rc |= cwpp_avro_set_opt_long(v, "original_occurred_at_ms",
                                 a->has_original_occurred_at ? &a->original_occurred_at_ms
                                                             : NULL);
    rc |= cwpp_avro_set_enum(v, "transition", cwpp_transition_name(a->transition));
    free(details);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "alert %s does not fit schema Alert", a->alert_id);
    return cwpp_avro_encode(t, v, out, errstr, errstr_size);
}

/* strdup of an optional string field of rec into *dst; 0 or 1 on failure. */
static int dup_opt(avro_value_t *rec, const char *name, char **dst)
{
    const char *s;

    if (cwpp_avro_get_opt_str(rec, name, &s) != CWPP_OK)
        return 1;
    *dst = cwpp_strdup(s);
    return s != NULL && *dst == NULL;
}

static int dup_req(avro_value_t *rec, const char *name, char **dst)
{
    const char *s;

    if (cwpp_avro_get_str(rec, name, &s) != CWPP_OK)
        return 1;
    *dst = strdup(s);
    return *dst == NULL;
}

int cwpp_alert_from_avro(const cwpp_avro_type_t *t, const void *buf, size_t len,
                         avro_value_t *v, cwpp_alert_t *a, char *errstr, size_t errstr_size)
{
    avro_value_t sub, arr, ent;
    const char  *sym, *s;
    size_t       i, n;
    int          rc = 0, present;
    json_error_t jerr;

    cwpp_alert_clear(a);
    if ((rc = cwpp_avro_decode(t, buf, len, v, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (cwpp_avro_get_str(v, "alert_id", &s) != CWPP_OK || !cwpp_alert_id_valid(s))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "alert_id is not \"al-\" followed by 32 lower-case hex digits");
    memcpy(a->alert_id, s, CWPP_ALERT_ID_LEN + 1);
    rc |= dup_req(v, "dedup_key", &a->dedup_key);
    rc |= dup_opt(v, "source_alert_id", &a->source_alert_id);
    rc |= cwpp_avro_get_enum(v, "input_format", &sym);
    if (rc == 0)
        a->format = !strcmp(sym, "falco") ? CWPP_FMT_FALCO : !strcmp(sym, "wazuh") ? CWPP_FMT_WAZUH
                                                                                   : CWPP_FMT_CWPP;
    rc |= dup_req(v, "name", &a->name);
    rc |= dup_req(v, "type", &a->type);
    if (cwpp_avro_get_enum(v, "severity", &sym) != CWPP_OK || cwpp_severity_parse(sym, &a->severity))
        rc = 1;
    rc |= cwpp_avro_get_long(v, "occurred_at_ms", &a->occurred_at_ms);
    rc |= dup_req(v, "source", &a->source);
    rc |= dup_req(v, "account_id", &a->account_id);
    if (avro_value_get_by_name(v, "asset", &sub, NULL) == 0) {
        rc |= dup_req(&sub, "id", &a->asset.id);
        rc |= dup_opt(&sub, "name", &a->asset.name);
        rc |= dup_opt(&sub, "ip", &a->asset.ip);
        rc |= dup_opt(&sub, "public_ip", &a->asset.public_ip);
        rc |= dup_opt(&sub, "role", &a->asset.role);
    }
    if (cwpp_avro_get_opt_record(v, "attack", &present, &sub) == CWPP_OK && present) {
        rc |= dup_opt(&sub, "tactic", &a->tactic);
        rc |= dup_opt(&sub, "technique", &a->technique);
    }
    rc |= cwpp_avro_get_enum(v, "defense", &sym);
    if (rc == 0)
        a->defense = !strcmp(sym, "blocked") ? CWPP_DEF_BLOCKED : !strcmp(sym, "failed")
                     ? CWPP_DEF_FAILED : !strcmp(sym, "precision_defense") ? CWPP_DEF_PRECISION
                     : CWPP_DEF_NONE;
    if (cwpp_avro_get_opt_record(v, "file", &present, &sub) == CWPP_OK && present) {
        rc |= dup_opt(&sub, "path", &a->file.path);
        rc |= dup_opt(&sub, "md5", &a->file.md5);
        rc |= dup_opt(&sub, "sha256", &a->file.sha256);
    }
    if (cwpp_avro_get_opt_record(v, "process", &present, &sub) == CWPP_OK && present) {
        rc |= cwpp_avro_get_opt_long(&sub, "pid", &a->process.pid, &a->process.has_pid);
        rc |= dup_opt(&sub, "path", &a->process.path);
        rc |= dup_opt(&sub, "cmdline", &a->process.cmdline);
        rc |= dup_opt(&sub, "user", &a->process.user);
    }
    rc |= dup_opt(v, "remote_ip", &a->remote_ip);
    if (cwpp_avro_get_opt_record(v, "logon", &present, &sub) == CWPP_OK && present) {
        rc |= dup_opt(&sub, "ip", &a->logon.ip);
        rc |= dup_opt(&sub, "user", &a->logon.user);
    }
    if (cwpp_avro_get_str(v, "details_json", &s) == CWPP_OK) {
        a->details = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
        if (a->details == NULL || !json_is_object(a->details)) {
            cwpp_alert_clear(a);
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                               "details_json is not a JSON object");
        }
    } else {
        rc = 1;
    }
    if (avro_value_get_by_name(v, "entities", &arr, NULL) == 0 &&
        avro_value_get_size(&arr, &n) == 0) {
        a->entities = n > 0 ? calloc(n, sizeof(*a->entities)) : NULL;
        if (n > 0 && a->entities == NULL)
            rc = 1;
        for (i = 0; rc == 0 && i < n; i++) {
            cwpp_entity_t *e = &a->entities[i];

            avro_value_get_by_index(&arr, i, &ent, NULL);
            a->n_entities++;
            rc |= cwpp_avro_get_enum(&ent, "type", &sym);
            if (rc == 0 && cwpp_entity_type_parse(sym, &e->type) != 0)
                e->type = CWPP_ENT_HOST;
            rc |= dup_req(&ent, "value", &e->value);
            rc |= dup_opt(&ent, "asset_id", &e->asset_id);
        }
    } else {
        rc = 1;
    }
    if (cwpp_avro_get_enum(v, "status", &sym) != CWPP_OK || cwpp_status_parse(sym, &a->status))
        rc = 1;
    rc |= cwpp_avro_get_long(v, "first_seen_ms", &a->first_seen_ms);
    rc |= cwpp_avro_get_long(v, "last_seen_ms", &a->last_seen_ms);
    rc |= cwpp_avro_get_long(v, "occurrences", &a->occurrences);
    rc |= cwpp_avro_get_long(v, "ingested_at_ms", &a->ingested_at_ms);
    rc |= cwpp_avro_get_opt_long(v, "original_occurred_at_ms", &a->original_occurred_at_ms,
                                 &a->has_original_occurred_at);
    if (cwpp_avro_get_enum(v, "transition", &sym) != CWPP_OK ||
        cwpp_transition_parse(sym, &a->transition) != 0)
        rc = 1;
    if (rc != 0) {
        cwpp_alert_clear(a);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "Alert record is incomplete");
    }
    if (a->occurrences < 1 || a->first_seen_ms > a->last_seen_ms) {
        cwpp_alert_clear(a);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "Alert record is inconsistent (occurrences < 1 or first > last seen)");
    }
    return CWPP_OK;
}
