/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_snapshot: the one encoder of SecurityEvent snapshots (schemas/event.avsc), the
 * records on <prefix>events that say how a security event stands after a change.
 *
 * Two services send them: the correlator, after a batch changed or touched an event
 * (from its in-memory event and running figures), and the responder, after an analyst's
 * command or a task changed one (from the event's row). Both fill one cwpp_snapshot_t
 * from what they hold and call cwpp_snapshot_encode, so the record means the same
 * whoever sent it. The lib holds no state: the caller owns the Avro type and value
 * (cwpp_avro_type_builtin("event") and cwpp_avro_value_new), and may reuse them.
 */
#ifndef CWPP_SNAPSHOT_H
#define CWPP_SNAPSHOT_H

#include <avro.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_avro.h"
#include "cwpp_util.h"

/*
 * The size budget of a snapshot (docs/correlator.md "Snapshot size"). Lists that grow
 * with the input are cut at these counts, in their order (the first ones kept), and the
 * record's lists_truncated says a list was cut; every string is cut at its bound (at a
 * UTF-8 boundary, ending in "\u2026"). With every list and string at its bound a record
 * stays under CWPP_SNAPSHOT_MAX_BYTES (tests/unit/snapshot checks the worst case), well
 * inside a Kafka message. The events table keeps everything.
 */
#define CWPP_SNAPSHOT_MAX_ASSETS          100 /* affected_assets */
#define CWPP_SNAPSHOT_MAX_ASSET_IPS       4   /* ips of one affected asset */
#define CWPP_SNAPSHOT_MAX_NAMES           32  /* stages, sources */
#define CWPP_SNAPSHOT_MAX_REASONS         32  /* assessment reasons */
#define CWPP_SNAPSHOT_MAX_RECOMMENDATIONS 20  /* the assessment makes at most 20 */
#define CWPP_SNAPSHOT_MAX_ID              256 /* bytes of an id, user, asset name or role,
                                               * IP, stage, source, code, action, entity
                                               * type or value */
#define CWPP_SNAPSHOT_MAX_TEXT            512 /* bytes of a sentence: the event's name, a
                                               * reason's text or a recommendation's */
#define CWPP_SNAPSHOT_MAX_BYTES           (256 * 1024)

/*
 * One event as its snapshot tells it. Everything is borrowed: the encoder reads it and
 * keeps nothing. Required strings given as NULL are sent as "" (enums: the defaults
 * named below), optional ones as null.
 */
typedef struct cwpp_snapshot {
    const char   *event_id;       /* "ev-" + 32 hex */
    const char   *account_id;
    const char   *name;           /* the name of the event's most severe alert */
    const char   *level;          /* critical, high, medium, low (NULL: low) */
    const char   *status;         /* unhandled, handling, handled, failed, merged (NULL:
                                   * unhandled) */
    const char   *owner;          /* NULL: none */
    const char   *predecessor;    /* NULL: none */
    const json_t *stages;         /* array of strings (ATT&CK tactics); NULL: empty */
    const json_t *sources;        /* array of strings (alert sources); NULL: empty */
    int64_t       alert_count;    /* distinct alerts */
    int64_t       occurrences;    /* recurrences included */
    const json_t *assets;         /* {asset id: {"name", "role", "ips": [], "alerts"}} (the
                                   * running figures' "assets"); NULL: none */
    int64_t       first_seen_ms, last_seen_ms;
    const char   *urgency;        /* act_now, high, medium, low (NULL: low) */
    const json_t *assessment;     /* {"reasons": [{"code", "text"}], "recommendations":
                                   * [{"action", "entity_type", "entity_value", "reason"}]};
                                   * NULL: neither */
    int64_t       version;
    int64_t       updated_at_ms;
    const char   *merged_into;    /* status merged: the survivor; NULL: none */
} cwpp_snapshot_t;

/*
 * Encodes s as a SecurityEvent single-object record and appends it to out. t is the
 * "event" type, v a value of it (reset here; its content is undefined afterwards).
 * Non-string elements of stages, sources and an asset's ips are skipped. Lists and
 * strings are cut to the budget above (lists_truncated is true when a list was), so the
 * record appended is at most CWPP_SNAPSHOT_MAX_BYTES.
 * Returns 0, CWPP_EINVAL (a value the schema refuses, e.g. an unknown level symbol, or
 * t is not the event type) or CWPP_ENOMEM, with the reason in errstr.
 * Any thread, as long as v and out are its own.
 */
int cwpp_snapshot_encode(const cwpp_avro_type_t *t, avro_value_t *v, const cwpp_snapshot_t *s,
                         cwpp_buf_t *out, char *errstr, size_t errstr_size);

#endif /* CWPP_SNAPSHOT_H */
