/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_alert: the alert model shared by every service.
 *
 * ingest turns upstream JSON into a cwpp_alert_t with cwpp_alert_from_json(): it detects
 * the shape (the CWPP contract of docs/alert-format.md, a Falco alert, a Wazuh alert),
 * maps Falco and Wazuh onto the contract, validates every field (required, type, RFC 3339
 * time, enumerations, IP addresses, hashes, ATT&CK ids, lengths), extracts entities and
 * computes the "same alert" key and the stable alert id derived from it. Every failure
 * comes back as a reason code plus one sentence naming the field, for the dead-letter
 * topic. Later services read the Avro form with cwpp_alert_from_avro().
 *
 * Strings in a cwpp_alert_t are owned by it (malloc'd); cwpp_alert_clear frees them.
 */
#ifndef CWPP_ALERT_H
#define CWPP_ALERT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_alert_limits.h"
#include "cwpp_avro.h"

typedef enum { CWPP_SEV_CRITICAL = 0, CWPP_SEV_HIGH, CWPP_SEV_MEDIUM, CWPP_SEV_LOW } cwpp_severity_t;
typedef enum { CWPP_DEF_NONE = 0, CWPP_DEF_BLOCKED, CWPP_DEF_FAILED, CWPP_DEF_PRECISION } cwpp_defense_t;
typedef enum { CWPP_FMT_CWPP = 0, CWPP_FMT_FALCO, CWPP_FMT_WAZUH } cwpp_format_t;
/*
 * The entity types and the alert statuses are defined once, in the tables of alert.c;
 * everything else (the Avro enums of schemas/alert.avsc, the CHECK constraints of
 * schemas/sql, the tools' help and queries) follows them, and tests/unit/alert checks
 * that the schema files agree. Adding a member: add it before the __COUNT sentinel and a
 * row to the table, then the schemas the test names.
 */
typedef enum {
    CWPP_ENT_HOST = 0, CWPP_ENT_FILE, CWPP_ENT_PROCESS, CWPP_ENT_IP, CWPP_ENT_HOST_ACCOUNT,
    CWPP_ENT__COUNT /* not a type: the number of them */
} cwpp_entity_type_t;
typedef enum {
    CWPP_ST_UNHANDLED = 0, CWPP_ST_HANDLING, CWPP_ST_HANDLED, CWPP_ST_MANUALLY_WHITELISTED,
    CWPP_ST_AUTOMATICALLY_WHITELISTED,
    CWPP_ST__COUNT /* not a status: the number of them */
} cwpp_alert_status_t;
/* Why an Alert record was sent (schemas/alert.avsc "transition"): an occurrence ingest
 * saw, or, on alerts.accepted, whitelist-filter's news that the alert was whitelisted
 * (it leaves its event) or removed from the whitelist (restored: Unhandled again, joins
 * under the normal rules, not an occurrence). */
typedef enum {
    CWPP_TR_OCCURRENCE = 0, CWPP_TR_WHITELISTED, CWPP_TR_RESTORED
} cwpp_alert_transition_t;

/* The schema's symbol of t, or NULL for a value outside the enum. */
const char *cwpp_transition_name(cwpp_alert_transition_t t);
/* Parses a symbol into *out; returns 0, or -1 (out unchanged) for an unknown one. */
int cwpp_transition_parse(const char *s, cwpp_alert_transition_t *out);

/* One entity type (docs/alert-format.md "Entities"). */
typedef struct cwpp_entity_type_def {
    cwpp_entity_type_t type;
    const char        *name;      /* the symbol of schemas/alert.avsc EntityType */
    int                order;     /* rank when an event's entities are listed (0 first):
                                     host, ip, host_account, process, file */
    const char        *display;   /* "Host account" */
    const char        *dot_shape; /* Graphviz node shape of the provenance graph */
    const char        *dot_color; /* and its colour */
} cwpp_entity_type_def_t;

/* One alert status. */
typedef struct cwpp_status_def {
    cwpp_alert_status_t status;
    const char         *name;    /* the symbol of schemas/alert.avsc AlertStatus */
    const char         *display; /* "Manually whitelisted" */
} cwpp_status_def_t;

/* Symbol names as in schemas/alert.avsc; *_parse return 0 or -1 for unknown names (and
 * NULL). The _def lookups return the table row of a member (never NULL for a member;
 * asserts on anything else). */
const char *cwpp_severity_name(cwpp_severity_t s);
const char *cwpp_defense_name(cwpp_defense_t d);
const char *cwpp_format_name(cwpp_format_t f);
const char *cwpp_entity_type_name(cwpp_entity_type_t t);
const char *cwpp_status_name(cwpp_alert_status_t s);
int cwpp_severity_parse(const char *s, cwpp_severity_t *out);
int cwpp_status_parse(const char *s, cwpp_alert_status_t *out);
int cwpp_entity_type_parse(const char *s, cwpp_entity_type_t *out);
const cwpp_entity_type_def_t *cwpp_entity_type_def(cwpp_entity_type_t t);
const cwpp_status_def_t      *cwpp_status_def(cwpp_alert_status_t s);

/*
 * The names of the entity types (or alert statuses) as one text for help and messages,
 * in table order, separated by sep with last before the last one:
 * (", ", " or ") gives "host, file, process, ip or host_account". Written into buf
 * (truncated to size); returns buf.
 */
const char *cwpp_entity_types_text(char *buf, size_t size, const char *sep, const char *last);
const char *cwpp_statuses_text(char *buf, size_t size, const char *sep, const char *last);

/* The entity type names in listing order as a PostgreSQL array literal
 * ("{host,ip,host_account,process,file}"), for array_position($n::text[], entity_type)
 * in ORDER BY. Written into buf; returns buf. */
const char *cwpp_entity_types_pg_order(char *buf, size_t size);

typedef struct cwpp_entity {
    cwpp_entity_type_t type;
    char              *value;    /* host: asset id; file: path (or md5); process: path or
                                    cmdline; ip: address; host_account: user name */
    char              *asset_id; /* the asset it lives on; NULL for IPs */
} cwpp_entity_t;

#define CWPP_ALERT_ID_LEN 35 /* "al-" + 32 hex digits */

/* 1 when s is "al-" followed by 32 lower-case hex digits, else 0 (NULL gives 0). */
int cwpp_alert_id_valid(const char *s);

typedef struct cwpp_alert {
    char            alert_id[CWPP_ALERT_ID_LEN + 1];
    char           *dedup_key;        /* compact JSON array of the key's parts */
    char           *source_alert_id;  /* producer's alert_id, or NULL */
    cwpp_format_t   format;
    char           *name;
    char           *type;
    cwpp_severity_t severity;
    int64_t         occurred_at_ms;
    char           *source;
    char           *account_id;
    struct {
        char *id, *name, *ip, *public_ip, *role;
    } asset;
    char           *tactic;           /* "TA0002" or NULL */
    char           *technique;        /* "T1059" / "T1059.004" or NULL */
    cwpp_defense_t  defense;
    struct {
        char *path, *md5, *sha256;    /* hashes lower-case hex */
    } file;
    struct {
        int64_t pid;
        int     has_pid;
        char   *path, *cmdline, *user;
    } process;
    char           *remote_ip;
    struct {
        char *ip, *user;
    } logon;
    json_t         *details;          /* object, owned (one reference) */
    cwpp_entity_t  *entities;
    size_t          n_entities;
    cwpp_alert_status_t status;
    int64_t         first_seen_ms, last_seen_ms, occurrences, ingested_at_ms;
    /* The occurred_at the producer gave when ingest replaced it by the time it received
     * the alert (older than max_age_ms, or later than max_future_ms ahead: a detector's
     * clock that is wrong); has_original_occurred_at 0 when the time was kept. On a
     * stored alert, that of its latest occurrence whose time was replaced. */
    int64_t         original_occurred_at_ms;
    int             has_original_occurred_at;
    cwpp_alert_transition_t transition; /* occurrence unless whitelist-filter says otherwise */
} cwpp_alert_t;

typedef struct cwpp_alert_opts {
    const char *adapter_account_id; /* account for Falco/Wazuh alerts that carry none; NULL or
                                       "" = such alerts are rejected */
    int64_t     now_ms;             /* when ingest received the record */
    int64_t     max_future_ms;      /* occurred_at beyond now + this ... */
    int64_t     max_age_ms;         /* ... or before now - this (0: no lower bound but 1970)
                                       is replaced by now_ms, the original kept */
} cwpp_alert_opts_t;

/*
 * Parses, maps, validates and normalizes one upstream record. On success fills out
 * (clear it with cwpp_alert_clear) with status unhandled (handled for precision
 * defence), first_seen = last_seen = occurred_at, occurrences 1, ingested_at = now.
 * An occurred_at outside [now - max_age, now + max_future] (before 1970 included) is not
 * refused: occurred_at becomes now and the given time is kept in original_occurred_at_ms
 * (docs/alert-format.md "occurred_at").
 * On failure returns CWPP_EINVAL, sets *code to a stable reason code (invalid_json,
 * invalid_utf8, unknown_shape, missing_field, wrong_type, invalid_value, too_long) and
 * writes one sentence into errstr; out is left cleared. CWPP_ENOMEM on allocation failure.
 */
int cwpp_alert_from_json(const void *buf, size_t len, const cwpp_alert_opts_t *opts,
                         cwpp_alert_t *out, const char **code, char *errstr,
                         size_t errstr_size);

/* Frees what a holds and zeroes it. Accepts NULL and a zeroed alert. */
void cwpp_alert_clear(cwpp_alert_t *a);

/* Appends the single-object Avro encoding of a (schema "alert") to out. v is a scratch
 * value of that type, reused across calls. Returns 0, CWPP_EINVAL or CWPP_ENOMEM. */
int cwpp_alert_to_avro(const cwpp_alert_t *a, const cwpp_avro_type_t *t, avro_value_t *v,
                       cwpp_buf_t *out, char *errstr, size_t errstr_size);

/* Decodes an Avro Alert message into out (cleared first). Returns 0 or CWPP_EINVAL with
 * the reason (bad Avro, or values that break the model). */
int cwpp_alert_from_avro(const cwpp_avro_type_t *t, const void *buf, size_t len,
                         avro_value_t *v, cwpp_alert_t *out, char *errstr,
                         size_t errstr_size);

/*
 * The select list that turns a row of cwpp.alerts (table alias "a") into the JSON text
 * cwpp_alert_from_row() reads. occurred_at of a stored alert is its last_seen; its
 * original_occurred_at (schemas/sql/010) that of its latest occurrence whose time ingest
 * replaced.
 */
#define CWPP_ALERT_ROW_SQL                                                                     \
    "jsonb_build_object('alert_id', a.alert_id, 'dedup_key', a.dedup_key, "                   \
    "'source_alert_id', a.source_alert_id, 'input_format', a.input_format, 'name', a.name, "  \
    "'type', a.type, 'severity', a.severity, 'source', a.source, 'account_id', a.account_id, " \
    "'asset', a.asset, 'attack_tactic', a.attack_tactic, "                                    \
    "'attack_technique', a.attack_technique, 'defense', a.defense, 'file', a.file, "          \
    "'process', a.process, 'remote_ip', a.remote_ip, 'logon', a.logon, 'details', a.details, " \
    "'entities', a.entities, 'status', a.status, "                                             \
    "'first_ms', (extract(epoch FROM a.first_seen) * 1000)::bigint, "                         \
    "'last_ms', (extract(epoch FROM a.last_seen) * 1000)::bigint, "                           \
    "'occurrences', a.occurrences, "                                                           \
    "'ingested_ms', (extract(epoch FROM a.ingested_at) * 1000)::bigint, "                     \
    "'original_ms', (extract(epoch FROM a.original_occurred_at) * 1000)::bigint)::text"

/* Reads one stored alert (the text CWPP_ALERT_ROW_SQL selects) into out (cleared first).
 * Returns 0, or CWPP_EINVAL with the reason. */
int cwpp_alert_from_row(const char *json, size_t len, cwpp_alert_t *out, char *errstr,
                        size_t errstr_size);

/* Computes dedup_key and alert_id from the alert's fields (cwpp_alert_from_json does
 * this). Returns 0 or CWPP_ENOMEM. */
int cwpp_alert_compute_identity(cwpp_alert_t *a);

/*
 * ATT&CK tactics (the enterprise matrix's fourteen): the name of the tactic whose id is id
 * ("TA0006" -> "Credential Access"), or NULL for an id the table does not hold. And the
 * id of the tactic named s, where s is an id, a name ("Credential Access") or a name
 * written in lower case with '-' or '_' for spaces ("credential-access"), compared
 * without regard to case; NULL when none is.
 */
const char *cwpp_alert_tactic_name(const char *id);
const char *cwpp_alert_tactic_find(const char *s);

#endif /* CWPP_ALERT_H */
