/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c: a cwpp_snapshot_t into a SecurityEvent record (cwpp_snapshot.h). Field by
 * field in the order of schemas/event.avsc; the JSON parts (stages, sources, assets and
 * the assessment) are read as the correlator's running figures and assessment hold them
 * (libs/correlate/event.c), which is also what the events table stores.
 */
#include "cwpp_snapshot.h"

#include <assert.h>
#include <string.h>

static const char *or_else(const char *s, const char *def)
{
    return s != NULL ? s : def;
}

static const char *member(const json_t *o, const char *k, const char *def)
{
    return or_else(json_string_value(json_object_get(o, k)), def);
}

static int64_t member_int(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* The strings of arr (non-strings skipped) into the array field of rec. */
static int set_str_array(avro_value_t *rec, const char *field, const json_t *arr)
{
    avro_value_t a, x;
    size_t       i;

    if (avro_value_get_by_name(rec, field, &a, NULL) != 0)
        return -1;
    for (i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));

        if (s == NULL)
            continue;
        if (avro_value_append(&a, &x, NULL) != 0 || avro_value_set_string(&x, s) != 0)
            return -1;
    }
    return 0;
}

/* affected_assets: one AffectedAsset per member of assets, in the object's order. */
static int set_assets(avro_value_t *v, const json_t *assets)
{
    avro_value_t  arr, x;
    const char   *k;
    const json_t *jv;
    int           rc = 0;

    if (avro_value_get_by_name(v, "affected_assets", &arr, NULL) != 0)
        return -1;
    json_object_foreach((json_t *)assets, k, jv) {
        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= cwpp_avro_set_str(&x, "asset_id", k);
        rc |= cwpp_avro_set_opt_str(&x, "name", member(jv, "name", NULL));
        rc |= cwpp_avro_set_opt_str(&x, "role", member(jv, "role", NULL));
        rc |= set_str_array(&x, "ips", json_object_get(jv, "ips"));
        rc |= cwpp_avro_set_int(&x, "alerts", (int32_t)member_int(jv, "alerts"));
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* reasons and recommendations from the assessment (both empty when it is NULL). */
static int set_assessment(avro_value_t *v, const json_t *as)
{
    const json_t *reasons = json_object_get(as, "reasons");
    const json_t *recs = json_object_get(as, "recommendations");
    avro_value_t  arr, x;
    size_t        i;
    int           rc = 0;

    if (avro_value_get_by_name(v, "reasons", &arr, NULL) != 0)
        return -1;
    for (i = 0; rc == 0 && i < json_array_size(reasons); i++) {
        const json_t *o = json_array_get(reasons, i);

        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= cwpp_avro_set_str(&x, "code", member(o, "code", ""));
        rc |= cwpp_avro_set_str(&x, "text", member(o, "text", ""));
    }
    if (rc != 0 || avro_value_get_by_name(v, "recommendations", &arr, NULL) != 0)
        return -1;
    for (i = 0; rc == 0 && i < json_array_size(recs); i++) {
        const json_t *o = json_array_get(recs, i);

        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= cwpp_avro_set_str(&x, "action", member(o, "action", ""));
        rc |= cwpp_avro_set_str(&x, "entity_type", member(o, "entity_type", ""));
        rc |= cwpp_avro_set_str(&x, "entity_value", member(o, "entity_value", ""));
        rc |= cwpp_avro_set_str(&x, "reason", member(o, "reason", ""));
    }
    return rc == 0 ? 0 : -1;
}

int cwpp_snapshot_encode(const cwpp_avro_type_t *t, avro_value_t *v, const cwpp_snapshot_t *s,
                         cwpp_buf_t *out, char *errstr, size_t errstr_size)
{
    int rc = 0;

    assert(t != NULL && v != NULL && s != NULL && out != NULL);
    avro_value_reset(v);
    rc |= cwpp_avro_set_str(v, "event_id", or_else(s->event_id, ""));
    rc |= cwpp_avro_set_str(v, "account_id", or_else(s->account_id, ""));
    rc |= cwpp_avro_set_str(v, "name", or_else(s->name, ""));
    rc |= cwpp_avro_set_enum(v, "level", or_else(s->level, "low"));
    rc |= cwpp_avro_set_enum(v, "status", or_else(s->status, "unhandled"));
    rc |= cwpp_avro_set_opt_str(v, "owner", s->owner);
    rc |= cwpp_avro_set_opt_str(v, "predecessor", s->predecessor);
    rc |= set_str_array(v, "stages", s->stages);
    rc |= set_str_array(v, "sources", s->sources);
    rc |= cwpp_avro_set_int(v, "alert_count", (int32_t)s->alert_count);
    rc |= cwpp_avro_set_long(v, "occurrences", s->occurrences);
    rc |= rc == 0 ? set_assets(v, s->assets) : 0;
    rc |= cwpp_avro_set_long(v, "first_seen_ms", s->first_seen_ms);
    rc |= cwpp_avro_set_long(v, "last_seen_ms", s->last_seen_ms);
    rc |= cwpp_avro_set_enum(v, "urgency", or_else(s->urgency, "low"));
    rc |= rc == 0 ? set_assessment(v, s->assessment) : 0;
    rc |= cwpp_avro_set_long(v, "version", s->version);
    rc |= cwpp_avro_set_long(v, "updated_at_ms", s->updated_at_ms);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot build SecurityEvent %s",
                           or_else(s->event_id, "(no id)"));
    return cwpp_avro_encode(t, v, out, errstr, errstr_size);
}
