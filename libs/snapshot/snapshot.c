/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapshot.c: a cwpp_snapshot_t into a SecurityEvent record (cwpp_snapshot.h). Field by
 * field in the order of schemas/event.avsc; the JSON parts (stages, sources, assets and
 * the assessment) are read as the correlator's running figures and assessment hold them
 * (libs/correlate/event.c), which is also what the events table stores.
 *
 * Those figures grow with the input (an asset per attacked host, a source per detecting
 * module, ...) and their strings come from the attacked hosts: the encoder keeps the
 * record inside its budget (cwpp_snapshot.h) by cutting each list at its count and each
 * string at its bound, and says when a list was cut (lists_truncated).
 */
#include "cwpp_snapshot.h"

#include <assert.h>
#include <string.h>

/* What one encoding carries along: whether a list was cut, and room for a cut string. */
typedef struct enc {
    int  truncated;
    char cut[CWPP_SNAPSHOT_MAX_TEXT + 1];
} enc_t;

static const char *or_else(const char *s, const char *def)
{
    return s != NULL ? s : def;
}

/* s, or, when it has more than max bytes (max <= CWPP_SNAPSHOT_MAX_TEXT), its longest
 * prefix ending at a UTF-8 boundary followed by U+2026 within max bytes, in e->cut (valid
 * until the next call). NULL stays NULL. */
static const char *cut(enc_t *e, const char *s, size_t max)
{
    size_t n;

    assert(max >= 4 && max <= CWPP_SNAPSHOT_MAX_TEXT);
    if (s == NULL || strnlen(s, max + 1) <= max)
        return s;
    n = max - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* s[n] continues a character */
        n--;
    memcpy(e->cut, s, n);
    memcpy(e->cut + n, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
    return e->cut;
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

/* A required string field, cut at max bytes. */
static int set_str(enc_t *e, avro_value_t *rec, const char *field, const char *s, size_t max)
{
    return cwpp_avro_set_str(rec, field, cut(e, s, max));
}

/* An optional string field, cut at max bytes. */
static int set_opt_str(enc_t *e, avro_value_t *rec, const char *field, const char *s,
                       size_t max)
{
    return cwpp_avro_set_opt_str(rec, field, cut(e, s, max));
}

/* The strings of arr (non-strings skipped), at most max of them, each cut at
 * CWPP_SNAPSHOT_MAX_ID bytes, into the array field of rec. */
static int set_str_array(enc_t *e, avro_value_t *rec, const char *field, const json_t *arr,
                         size_t max)
{
    avro_value_t a, x;
    size_t       i, n = 0;

    if (avro_value_get_by_name(rec, field, &a, NULL) != 0)
        return -1;
    for (i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));

        if (s == NULL)
            continue;
        if (n++ == max) {
            e->truncated = 1;
            break;
        }
        s = cut(e, s, CWPP_SNAPSHOT_MAX_ID);
        if (avro_value_append(&a, &x, NULL) != 0 || avro_value_set_string(&x, s) != 0)
            return -1;
    }
    return 0;
}

/* affected_assets: one AffectedAsset per member of assets, in the object's order, the
 * first CWPP_SNAPSHOT_MAX_ASSETS. */
static int set_assets(enc_t *e, avro_value_t *v, const json_t *assets)
{
    avro_value_t  arr, x;
    const char   *k;
    const json_t *jv;
    size_t        n = 0;
    int           rc = 0;

    if (avro_value_get_by_name(v, "affected_assets", &arr, NULL) != 0)
        return -1;
    json_object_foreach((json_t *)assets, k, jv) {
        if (n++ == CWPP_SNAPSHOT_MAX_ASSETS) {
            e->truncated = 1;
            break;
        }
        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= set_str(e, &x, "asset_id", k, CWPP_SNAPSHOT_MAX_ID);
        rc |= set_opt_str(e, &x, "name", member(jv, "name", NULL), CWPP_SNAPSHOT_MAX_ID);
        rc |= set_opt_str(e, &x, "role", member(jv, "role", NULL), CWPP_SNAPSHOT_MAX_ID);
        rc |= set_str_array(e, &x, "ips", json_object_get(jv, "ips"),
                            CWPP_SNAPSHOT_MAX_ASSET_IPS);
        rc |= cwpp_avro_set_int(&x, "alerts", (int32_t)member_int(jv, "alerts"));
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* reasons and recommendations from the assessment (both empty when it is NULL), the
 * first CWPP_SNAPSHOT_MAX_REASONS and CWPP_SNAPSHOT_MAX_RECOMMENDATIONS. */
static int set_assessment(enc_t *e, avro_value_t *v, const json_t *as)
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

        if (i == CWPP_SNAPSHOT_MAX_REASONS) {
            e->truncated = 1;
            break;
        }
        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= set_str(e, &x, "code", member(o, "code", ""), CWPP_SNAPSHOT_MAX_ID);
        rc |= set_str(e, &x, "text", member(o, "text", ""), CWPP_SNAPSHOT_MAX_TEXT);
    }
    if (rc != 0 || avro_value_get_by_name(v, "recommendations", &arr, NULL) != 0)
        return -1;
    for (i = 0; rc == 0 && i < json_array_size(recs); i++) {
        const json_t *o = json_array_get(recs, i);

        if (i == CWPP_SNAPSHOT_MAX_RECOMMENDATIONS) {
            e->truncated = 1;
            break;
        }
        if (avro_value_append(&arr, &x, NULL) != 0)
            return -1;
        rc |= set_str(e, &x, "action", member(o, "action", ""), CWPP_SNAPSHOT_MAX_ID);
        rc |= set_str(e, &x, "entity_type", member(o, "entity_type", ""), CWPP_SNAPSHOT_MAX_ID);
        rc |= set_str(e, &x, "entity_value", member(o, "entity_value", ""),
                      CWPP_SNAPSHOT_MAX_ID);
        rc |= set_str(e, &x, "reason", member(o, "reason", ""), CWPP_SNAPSHOT_MAX_TEXT);
    }
    return rc == 0 ? 0 : -1;
}

int cwpp_snapshot_encode(const cwpp_avro_type_t *t, avro_value_t *v, const cwpp_snapshot_t *s,
                         cwpp_buf_t *out, char *errstr, size_t errstr_size)
{
    enc_t        e = {0};
    avro_value_t f;
    size_t       before = out->len;
    int          rc = 0;

    assert(t != NULL && v != NULL && s != NULL && out != NULL);
    avro_value_reset(v);
    rc |= set_str(&e, v, "event_id", or_else(s->event_id, ""), CWPP_SNAPSHOT_MAX_ID);
    rc |= set_str(&e, v, "account_id", or_else(s->account_id, ""), CWPP_SNAPSHOT_MAX_ID);
    rc |= set_str(&e, v, "name", or_else(s->name, ""), CWPP_SNAPSHOT_MAX_TEXT);
    rc |= cwpp_avro_set_enum(v, "level", or_else(s->level, "low"));
    rc |= cwpp_avro_set_enum(v, "status", or_else(s->status, "unhandled"));
    rc |= set_opt_str(&e, v, "owner", s->owner, CWPP_SNAPSHOT_MAX_ID);
    rc |= set_opt_str(&e, v, "predecessor", s->predecessor, CWPP_SNAPSHOT_MAX_ID);
    rc |= set_str_array(&e, v, "stages", s->stages, CWPP_SNAPSHOT_MAX_NAMES);
    rc |= set_str_array(&e, v, "sources", s->sources, CWPP_SNAPSHOT_MAX_NAMES);
    rc |= cwpp_avro_set_int(v, "alert_count", (int32_t)s->alert_count);
    rc |= cwpp_avro_set_long(v, "occurrences", s->occurrences);
    rc |= rc == 0 ? set_assets(&e, v, s->assets) : 0;
    rc |= cwpp_avro_set_long(v, "first_seen_ms", s->first_seen_ms);
    rc |= cwpp_avro_set_long(v, "last_seen_ms", s->last_seen_ms);
    rc |= cwpp_avro_set_enum(v, "urgency", or_else(s->urgency, "low"));
    rc |= rc == 0 ? set_assessment(&e, v, s->assessment) : 0;
    rc |= cwpp_avro_set_long(v, "version", s->version);
    rc |= cwpp_avro_set_long(v, "updated_at_ms", s->updated_at_ms);
    if (rc == 0 && (avro_value_get_by_name(v, "lists_truncated", &f, NULL) != 0 ||
                    avro_value_set_boolean(&f, e.truncated) != 0))
        rc = -1;
    rc |= set_opt_str(&e, v, "merged_into", s->merged_into, CWPP_SNAPSHOT_MAX_ID);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot build SecurityEvent %.64s",
                           or_else(s->event_id, "(no id)"));
    if ((rc = cwpp_avro_encode(t, v, out, errstr, errstr_size)) != CWPP_OK)
        return rc;
    assert(out->len - before <= CWPP_SNAPSHOT_MAX_BYTES); /* the budget's arithmetic */
    (void)before;
    return CWPP_OK;
}
