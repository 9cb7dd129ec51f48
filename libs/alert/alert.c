/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert.c: the CWPP contract validator and normalizer, entity extraction and the "same
 * alert" identity. Falco and Wazuh records are first mapped onto the contract's shape
 * (adapters.c) and then pass through the same validation, so one set of rules decides
 * what is accepted, whatever the source.
 */
#include "cwpp_alert.h"
#include "alert_internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const sev_names[] = {"critical", "high", "medium", "low"};
static const char *const def_names[] = {"none", "blocked", "failed", "precision_defense"};
static const char *const fmt_names[] = {"cwpp", "falco", "wazuh"};
/* The entity types, in enum order (docs/alert-format.md "Entities"; the Graphviz styles
 * of the provenance graph that cwppctl events chain --format dot draws). */
static const cwpp_entity_type_def_t ent_tab[CWPP_ENT__COUNT] = {
    {CWPP_ENT_HOST,         "host",         0, "Host",         "box3d",   "#4a6fa5"},
    {CWPP_ENT_FILE,         "file",         4, "File",         "note",    "#7f8c8d"},
    {CWPP_ENT_PROCESS,      "process",      3, "Process",      "box",     "#27ae60"},
    {CWPP_ENT_IP,           "ip",           1, "IP address",   "diamond", "#c0392b"},
    {CWPP_ENT_HOST_ACCOUNT, "host_account", 2, "Host account", "house",   "#8e44ad"},
};

/* The alert statuses, in enum order (docs/alert-format.md). */
static const cwpp_status_def_t st_tab[CWPP_ST__COUNT] = {
    {CWPP_ST_UNHANDLED,                 "unhandled",                 "Unhandled"},
    {CWPP_ST_HANDLING,                  "handling",                  "Handling"},
    {CWPP_ST_HANDLED,                   "handled",                   "Handled"},
    {CWPP_ST_MANUALLY_WHITELISTED,      "manually_whitelisted",      "Manually whitelisted"},
    {CWPP_ST_AUTOMATICALLY_WHITELISTED, "automatically_whitelisted", "Automatically whitelisted"},
};

const char *cwpp_severity_name(cwpp_severity_t s) { return sev_names[s]; }
const char *cwpp_defense_name(cwpp_defense_t d) { return def_names[d]; }
const char *cwpp_format_name(cwpp_format_t f) { return fmt_names[f]; }
const char *cwpp_entity_type_name(cwpp_entity_type_t t) { return cwpp_entity_type_def(t)->name; }
const char *cwpp_status_name(cwpp_alert_status_t s) { return cwpp_status_def(s)->name; }

const cwpp_entity_type_def_t *cwpp_entity_type_def(cwpp_entity_type_t t)
{
    assert((unsigned)t < CWPP_ENT__COUNT && ent_tab[t].type == t);
    return &ent_tab[t];
}

const cwpp_status_def_t *cwpp_status_def(cwpp_alert_status_t s)
{
    assert((unsigned)s < CWPP_ST__COUNT && st_tab[s].status == s);
    return &st_tab[s];
}

int cwpp_severity_parse(const char *s, cwpp_severity_t *out)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcasecmp(s, sev_names[i]) == 0) {
            *out = (cwpp_severity_t)i;
            return 0;
        }
    return -1;
}

int cwpp_status_parse(const char *s, cwpp_alert_status_t *out)
{
    int i;

    for (i = 0; s != NULL && i < CWPP_ST__COUNT; i++)
        if (strcmp(s, st_tab[i].name) == 0) {
            *out = st_tab[i].status;
            return 0;
        }
    return -1;
}

static const char *const tr_names[] = {"occurrence", "whitelisted", "restored"};

const char *cwpp_transition_name(cwpp_alert_transition_t t)
{
    return (unsigned)t < sizeof(tr_names) / sizeof(tr_names[0]) ? tr_names[t] : NULL;
}

int cwpp_transition_parse(const char *s, cwpp_alert_transition_t *out)
{
    size_t i;

    for (i = 0; s != NULL && i < sizeof(tr_names) / sizeof(tr_names[0]); i++)
        if (strcmp(s, tr_names[i]) == 0) {
            *out = (cwpp_alert_transition_t)i;
            return 0;
        }
    return -1;
}

int cwpp_entity_type_parse(const char *s, cwpp_entity_type_t *out)
{
    int i;

    for (i = 0; s != NULL && i < CWPP_ENT__COUNT; i++)
        if (strcmp(s, ent_tab[i].name) == 0) {
            *out = ent_tab[i].type;
            return 0;
        }
    return -1;
}

const char *cwpp_entity_types_text(char *buf, size_t size, const char *sep, const char *last)
{
    const char *names[CWPP_ENT__COUNT];
    int         i;

    for (i = 0; i < CWPP_ENT__COUNT; i++)
        names[i] = ent_tab[i].name;
    return cwpp_names_join(buf, size, names, CWPP_ENT__COUNT, sep, last);
}

const char *cwpp_statuses_text(char *buf, size_t size, const char *sep, const char *last)
{
    const char *names[CWPP_ST__COUNT];
    int         i;

    for (i = 0; i < CWPP_ST__COUNT; i++)
        names[i] = st_tab[i].name;
    return cwpp_names_join(buf, size, names, CWPP_ST__COUNT, sep, last);
}

const char *cwpp_entity_types_pg_order(char *buf, size_t size)
{
    const char *names[CWPP_ENT__COUNT];
    int         i;

    for (i = 0; i < CWPP_ENT__COUNT; i++) {
        assert(ent_tab[i].order >= 0 && ent_tab[i].order < CWPP_ENT__COUNT);
        names[ent_tab[i].order] = ent_tab[i].name;
    }
    assert(size > 2);
    buf[0] = '{';
    cwpp_names_join(buf + 1, size - 2, names, CWPP_ENT__COUNT, ",", ",");
    cwpp_strlcpy(buf + strlen(buf), "}", size - strlen(buf));
    return buf;
}

int cwpp_alert_id_valid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != CWPP_ALERT_ID_LEN || strncmp(s, "al-", 3) != 0)
        return 0;
    for (i = 3; i < CWPP_ALERT_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void cwpp_alert_clear(cwpp_alert_t *a)
{
    size_t i;

    if (a == NULL)
        return;
    free(a->dedup_key);
    free(a->source_alert_id);
    free(a->name);
    free(a->type);
    free(a->source);
    free(a->account_id);
    free(a->asset.id);
    free(a->asset.name);
    free(a->asset.ip);
    free(a->asset.public_ip);
    free(a->asset.role);
    free(a->tactic);
    free(a->technique);
    free(a->file.path);
    free(a->file.md5);
    free(a->file.sha256);
    free(a->process.path);
    free(a->process.cmdline);
    free(a->process.user);
    free(a->remote_ip);
    free(a->logon.ip);
    free(a->logon.user);
    json_decref(a->details);
    for (i = 0; i < a->n_entities; i++) {
        free(a->entities[i].value);
        free(a->entities[i].asset_id);
    }
    free(a->entities);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------ validation ctx */

int cwpp_alert__bad(nctx_t *c, const char *code, const char *fmt, ...)
{
    va_list ap;

    *c->code = code;
    if (c->errstr != NULL && c->errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(c->errstr, c->errstr_size, fmt, ap);
        va_end(ap);
    }
    return CWPP_EINVAL;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "an object";
    case JSON_ARRAY:   return "an array";
    case JSON_STRING:  return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL:    return "a number";
    case JSON_TRUE:
    case JSON_FALSE:   return "a boolean";
    case JSON_NULL:    return "null";
    }
    return "unknown";
}

/* Reads obj[key] as a string of at most maxlen bytes into *out (malloc'd; NULL when
 * absent or null and not required). */
static int get_str(nctx_t *c, json_t *obj, const char *prefix, const char *key, int required,
                   size_t maxlen, char **out)
{
    json_t *v = json_object_get(obj, key);
    size_t  len;

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return cwpp_alert__bad(c, "missing_field", "required field \"%s%s\" is missing",
                                   prefix, key);
        return CWPP_OK;
    }
    if (!json_is_string(v))
        return cwpp_alert__bad(c, "wrong_type", "field \"%s%s\" must be a string, not %s",
                               prefix, key, json_type_name(v));
    len = json_string_length(v);
    if (len == 0) {
        if (required)
            return cwpp_alert__bad(c, "missing_field", "required field \"%s%s\" is empty",
                                   prefix, key);
        return CWPP_OK;
    }
    if (len > maxlen)
        return cwpp_alert__bad(c, "too_long", "field \"%s%s\" is %zu bytes, longer than %zu",
                               prefix, key, len, maxlen);
    *out = cwpp_strndup(json_string_value(v), len);
    if (*out == NULL)
        return CWPP_ENOMEM;
    return CWPP_OK;
}

/* obj[key] as an optional object (NULL when absent/null). */
static int get_obj(nctx_t *c, json_t *obj, const char *key, int required, json_t **out)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return cwpp_alert__bad(c, "missing_field", "required field \"%s\" is missing", key);
        return CWPP_OK;
    }
    if (!json_is_object(v))
        return cwpp_alert__bad(c, "wrong_type", "field \"%s\" must be an object, not %s", key,
                               json_type_name(v));
    *out = v;
    return CWPP_OK;
}

static int check_ip(nctx_t *c, const char *field, char *ip)
{
    unsigned char buf[16];

    if (ip == NULL)
        return CWPP_OK;
    if (inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1)
        return CWPP_OK;
    return cwpp_alert__bad(c, "invalid_value", "field \"%s\" is not an IP address: \"%.64s\"",
                           field, ip);
}

static int check_hex(nctx_t *c, const char *field, char *s, size_t want)
{
    size_t i;

    if (s == NULL)
        return CWPP_OK;
    if (strlen(s) != want)
        goto bad;
    for (i = 0; i < want; i++) {
        if (!isxdigit((unsigned char)s[i]))
            goto bad;
        s[i] = (char)tolower((unsigned char)s[i]);
    }
    return CWPP_OK;
bad:
    return cwpp_alert__bad(c, "invalid_value", "field \"%s\" must be %zu hex digits: \"%.80s\"",
                           field, want, s);
}

static int check_attack_id(nctx_t *c, const char *field, char *s, int tactic)
{
    size_t i, n;

    if (s == NULL)
        return CWPP_OK;
    for (i = 0; s[i] != '\0'; i++)
        s[i] = (char)toupper((unsigned char)s[i]);
    n = strlen(s);
    if (tactic) {
        if (n == 6 && s[0] == 'T' && s[1] == 'A' && isdigit((unsigned char)s[2]) &&
            isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4]) &&
            isdigit((unsigned char)s[5]))
            return CWPP_OK;
        return cwpp_alert__bad(c, "invalid_value",
                               "field \"%s\" must be an ATT&CK tactic id like TA0002: \"%.32s\"",
                               field, s);
    }
    if ((n == 5 || n == 9) && s[0] == 'T') {
        for (i = 1; i < 5 && isdigit((unsigned char)s[i]); i++)
            ;
        if (i == 5 && (n == 5 || (s[5] == '.' && isdigit((unsigned char)s[6]) &&
                                  isdigit((unsigned char)s[7]) && isdigit((unsigned char)s[8]))))
            return CWPP_OK;
    }
    return cwpp_alert__bad(c, "invalid_value",
                           "field \"%s\" must be an ATT&CK technique id like T1059 or "
                           "T1059.004: \"%.32s\"", field, s);
}

static void lower(char *s)
{
    for (; s != NULL && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int count_cb(const char *buffer, size_t size, void *data)
{
    (void)buffer;
    *(size_t *)data += size;
    return 0;
}

/* details (with the unknown top-level fields) as compact JSON is at most
 * CWPP_ALERT_MAX_DETAILS bytes: it is stored, sent on every Alert record and read by
 * whitelist rules. */
static int check_details(nctx_t *c, const json_t *details)
{
    size_t n = 0;

    if (json_dump_callback(details, count_cb, &n, JSON_COMPACT) != 0)
        return CWPP_ENOMEM;
    if (n > CWPP_ALERT_MAX_DETAILS)
        return cwpp_alert__bad(c, "too_long", "field \"details\" (with the unknown top-level "
                               "fields kept in it) is %zu bytes as JSON, longer than %d", n,
                               CWPP_ALERT_MAX_DETAILS);
    return CWPP_OK;
}

/* ------------------------------------------------------------------- entities */

static int add_entity(cwpp_alert_t *a, cwpp_entity_type_t t, const char *value,
                      const char *asset_id)
{
    size_t         i;
    cwpp_entity_t *e;

    if (value == NULL || *value == '\0')
        return CWPP_OK;
    for (i = 0; i < a->n_entities; i++)
        if (a->entities[i].type == t && strcmp(a->entities[i].value, value) == 0)
            return CWPP_OK;
    e = realloc(a->entities, (a->n_entities + 1) * sizeof(*e));
    if (e == NULL)
        return CWPP_ENOMEM;
    a->entities = e;
    e = &a->entities[a->n_entities];
    e->type = t;
    e->value = strdup(value);
    e->asset_id = cwpp_strdup(asset_id);
    if (e->value == NULL || (asset_id != NULL && e->asset_id == NULL)) {
        free(e->value);
        free(e->asset_id);
        return CWPP_ENOMEM;
    }
    a->n_entities++;
    return CWPP_OK;
}

static int extract_entities(cwpp_alert_t *a)
{
    const char *aid = a->asset.id;
    int         rc = CWPP_OK;

    rc |= add_entity(a, CWPP_ENT_HOST, aid, aid);
    rc |= add_entity(a, CWPP_ENT_FILE,
                     a->file.path ? a->file.path : a->file.md5 ? a->file.md5 : a->file.sha256, aid);
    rc |= add_entity(a, CWPP_ENT_PROCESS, a->process.path ? a->process.path : a->process.cmdline,
                     aid);
    rc |= add_entity(a, CWPP_ENT_IP, a->remote_ip, NULL);
    rc |= add_entity(a, CWPP_ENT_IP, a->logon.ip, NULL);
    rc |= add_entity(a, CWPP_ENT_HOST_ACCOUNT, a->logon.user, aid);
    rc |= add_entity(a, CWPP_ENT_HOST_ACCOUNT, a->process.user, aid);
    return rc ? CWPP_ENOMEM : CWPP_OK;
}

/* ------------------------------------------------------------------- identity */

/* The parts of the "same alert" key for the alert's type (docs/alert-format.md). */
int cwpp_alert_compute_identity(cwpp_alert_t *a)
{
    json_t       *k = json_array();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    int           i;
    const char   *t = a->type;

#define PART(s) json_array_append_new(k, (s) != NULL ? json_string(s) : json_null())
    if (k == NULL)
        return CWPP_ENOMEM;
    PART(t);
    PART(a->account_id);
    PART(a->asset.id);
    if (strcmp(t, "virus") == 0 || strcmp(t, "webshell") == 0) {
        PART(a->file.path);
        PART(a->file.md5);
    } else if (strcmp(t, "abnormal_logon") == 0) {
        PART(a->logon.ip);
    } else if (strcmp(t, "malicious_process") == 0) {
        PART(a->process.path);
        PART(a->process.cmdline);
    } else if (strcmp(t, "brute_force") == 0) {
        PART(a->remote_ip != NULL ? a->remote_ip : a->logon.ip);
        PART(a->logon.user);
    } else if (strcmp(t, "network_attack") == 0) {
        PART(a->name);
        PART(a->remote_ip);
    } else {
        PART(a->name);
        PART(a->file.path);
        PART(a->file.md5);
        PART(a->process.path);
        PART(a->remote_ip);
        PART(a->logon.ip);
    }
#undef PART
    free(a->dedup_key);
    a->dedup_key = json_dumps(k, JSON_COMPACT);
    json_decref(k);
    if (a->dedup_key == NULL)
        return CWPP_ENOMEM;
    if (EVP_Digest(a->dedup_key, strlen(a->dedup_key), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen < 16)
        return CWPP_ENOMEM;
    memcpy(a->alert_id, "al-", 3);
    for (i = 0; i < 16; i++) {
        a->alert_id[3 + 2 * i] = hex[md[i] >> 4];
        a->alert_id[4 + 2 * i] = hex[md[i] & 15];
    }
    a->alert_id[CWPP_ALERT_ID_LEN] = '\0';
    return CWPP_OK;
}

/* ----------------------------------------------------------------- normalizer */

static const char *const known_keys[] = {"name", "type", "severity", "occurred_at", "source",
                                         "account_id", "asset", "attack", "defense", "file",
                                         "process", "remote_ip", "logon", "details", "alert_id",
                                         NULL};

static int is_known_key(const char *k)
{
    int i;

    for (i = 0; known_keys[i] != NULL; i++)
        if (strcmp(known_keys[i], k) == 0)
            return 1;
    return 0;
}

int cwpp_alert__normalize(nctx_t *c, json_t *root, cwpp_format_t fmt,
                          const cwpp_alert_opts_t *opts, cwpp_alert_t *a)
{
    json_t     *o, *v, *details;
    char       *s = NULL;
    const char *key;
    int         rc;
    size_t      i;

    memset(a, 0, sizeof(*a));
    a->format = fmt;
    if ((rc = get_str(c, root, "", "name", 1, CWPP_ALERT_MAX_NAME, &a->name)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, root, "", "type", 1, CWPP_ALERT_MAX_TYPE, &a->type)) != CWPP_OK)
        goto fail;
    lower(a->type);
    for (i = 0; a->type[i] != '\0'; i++) {
        if (!isalnum((unsigned char)a->type[i]) && a->type[i] != '_' && a->type[i] != '-') {
            rc = cwpp_alert__bad(c, "invalid_value",
                                 "field \"type\" may hold letters, digits, '_' and '-' only: "
                                 "\"%.64s\"", a->type);
            goto fail;
        }
    }
    if ((rc = get_str(c, root, "", "severity", 1, CWPP_ALERT_MAX_SEVERITY, &s)) != CWPP_OK)
        goto fail;
    if (cwpp_severity_parse(s, &a->severity) != 0) {
        rc = cwpp_alert__bad(c, "invalid_value", "field \"severity\" has unknown value \"%.32s\" "
                             "(expected critical, high, medium or low)", s);
        goto fail;
    }
    free(s);
    s = NULL;
    if ((rc = get_str(c, root, "", "occurred_at", 1, CWPP_ALERT_MAX_TIME, &s)) != CWPP_OK)
        goto fail;
    if (cwpp_parse_time_ms(s, fmt == CWPP_FMT_WAZUH, &a->occurred_at_ms) != CWPP_OK) {
        rc = cwpp_alert__bad(c, "invalid_value", "field \"occurred_at\" is not an RFC 3339 "
                             "date-time: \"%.64s\"", s);
        goto fail;
    }
    /* A detector whose clock is wrong still saw something: a time too far in the future,
     * or so old that the event would be hidden from the list and deleted by retention at
     * once, is replaced by the time ingest received the alert and the given one kept. */
    if (a->occurred_at_ms > opts->now_ms + opts->max_future_ms || a->occurred_at_ms < 0 ||
        (opts->max_age_ms > 0 && a->occurred_at_ms < opts->now_ms - opts->max_age_ms)) {
        a->original_occurred_at_ms = a->occurred_at_ms;
        a->has_original_occurred_at = 1;
        a->occurred_at_ms = opts->now_ms;
    }
    free(s);
    s = NULL;
    if ((rc = get_str(c, root, "", "source", 1, CWPP_ALERT_MAX_SOURCE, &a->source)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, root, "", "account_id", 1, CWPP_ALERT_MAX_ACCOUNT,
                      &a->account_id)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, root, "", "alert_id", 0, CWPP_ALERT_MAX_ID,
                      &a->source_alert_id)) != CWPP_OK)
        goto fail;

    if ((rc = get_obj(c, root, "asset", 1, &o)) != CWPP_OK)

        goto fail;
    if ((rc = get_str(c, o, "asset.", "id", 1, CWPP_ALERT_MAX_ID, &a->asset.id)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, o, "asset.", "name", 0, CWPP_ALERT_MAX_LABEL, &a->asset.name)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, o, "asset.", "ip", 0, CWPP_ALERT_MAX_IP, &a->asset.ip)) != CWPP_OK)
        goto fail;
    if ((rc = check_ip(c, "asset.ip", a->asset.ip)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, o, "asset.", "public_ip", 0, CWPP_ALERT_MAX_IP,
                      &a->asset.public_ip)) != CWPP_OK)
        goto fail;
    if ((rc = check_ip(c, "asset.public_ip", a->asset.public_ip)) != CWPP_OK)
        goto fail;
    if ((rc = get_str(c, o, "asset.", "role", 0, CWPP_ALERT_MAX_ROLE, &a->asset.role)) != CWPP_OK)
        goto fail;
    lower(a->asset.role);

    if ((rc = get_obj(c, root, "attack", 0, &o)) != CWPP_OK)

        goto fail;
    if (o != NULL) {
        if ((rc = get_str(c, o, "attack.", "tactic", 0, CWPP_ALERT_MAX_ATTACK,
                          &a->tactic)) != CWPP_OK)
            goto fail;
        if ((rc = check_attack_id(c, "attack.tactic", a->tactic, 1)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "attack.", "technique", 0, CWPP_ALERT_MAX_ATTACK,
                          &a->technique)) != CWPP_OK)
            goto fail;
        if ((rc = check_attack_id(c, "attack.technique", a->technique, 0)) != CWPP_OK)
            goto fail;
    }

    if ((rc = get_str(c, root, "", "defense", 0, CWPP_ALERT_MAX_DEFENSE, &s)) != CWPP_OK)

        goto fail;
    a->defense = CWPP_DEF_NONE;
    if (s != NULL) {
        if (strcasecmp(s, "none") == 0)
            a->defense = CWPP_DEF_NONE;
        else if (strcasecmp(s, "blocked") == 0)
            a->defense = CWPP_DEF_BLOCKED;
        else if (strcasecmp(s, "failed") == 0)
            a->defense = CWPP_DEF_FAILED;
        else if (strcasecmp(s, "precision_defense") == 0 || strcasecmp(s, "precision_defence") == 0)
            a->defense = CWPP_DEF_PRECISION;
        else {
            rc = cwpp_alert__bad(c, "invalid_value", "field \"defense\" has unknown value "
                                 "\"%.32s\" (expected blocked, failed, none or precision_defense)",
                                 s);
            goto fail;
        }
        free(s);
        s = NULL;
    }

    if ((rc = get_obj(c, root, "file", 0, &o)) != CWPP_OK)

        goto fail;
    if (o != NULL) {
        if ((rc = get_str(c, o, "file.", "path", 0, CWPP_ALERT_MAX_PATH, &a->file.path)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "file.", "md5", 0, CWPP_ALERT_MAX_MD5, &a->file.md5)) != CWPP_OK)
            goto fail;
        if ((rc = check_hex(c, "file.md5", a->file.md5, 32)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "file.", "sha256", 0, CWPP_ALERT_MAX_SHA256,
                          &a->file.sha256)) != CWPP_OK)
            goto fail;
        if ((rc = check_hex(c, "file.sha256", a->file.sha256, 64)) != CWPP_OK)
            goto fail;
    }

    if ((rc = get_obj(c, root, "process", 0, &o)) != CWPP_OK)

        goto fail;
    if (o != NULL) {
        v = json_object_get(o, "pid");
        if (v != NULL && !json_is_null(v)) {
            if (!json_is_integer(v)) {
                rc = cwpp_alert__bad(c, "wrong_type", "field \"process.pid\" must be an integer, "
                                     "not %s", json_type_name(v));
                goto fail;
            }
            if (json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
                rc = cwpp_alert__bad(c, "invalid_value", "field \"process.pid\" is out of range: "
                                     "%lld", (long long)json_integer_value(v));
                goto fail;
            }
            a->process.pid = json_integer_value(v);
            a->process.has_pid = 1;
        }
        if ((rc = get_str(c, o, "process.", "path", 0, CWPP_ALERT_MAX_PATH,
                          &a->process.path)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "process.", "cmdline", 0, CWPP_ALERT_MAX_CMDLINE,
                          &a->process.cmdline)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "process.", "user", 0, CWPP_ALERT_MAX_LABEL,
                          &a->process.user)) != CWPP_OK)
            goto fail;
    }

    if ((rc = get_str(c, root, "", "remote_ip", 0, CWPP_ALERT_MAX_IP, &a->remote_ip)) != CWPP_OK)

        goto fail;
    if ((rc = check_ip(c, "remote_ip", a->remote_ip)) != CWPP_OK)
        goto fail;

    if ((rc = get_obj(c, root, "logon", 0, &o)) != CWPP_OK)

        goto fail;
    if (o != NULL) {
        if ((rc = get_str(c, o, "logon.", "ip", 0, CWPP_ALERT_MAX_IP, &a->logon.ip)) != CWPP_OK)
            goto fail;
        if ((rc = check_ip(c, "logon.ip", a->logon.ip)) != CWPP_OK)
            goto fail;
        if ((rc = get_str(c, o, "logon.", "user", 0, CWPP_ALERT_MAX_LABEL,
                          &a->logon.user)) != CWPP_OK)
            goto fail;
    }

    if ((rc = get_obj(c, root, "details", 0, &details)) != CWPP_OK)

        goto fail;
    a->details = details != NULL ? json_deep_copy(details) : json_object();
    if (a->details == NULL) {
        rc = CWPP_ENOMEM;
        goto fail;
    }
    /* "Anything else is kept in details." */
    json_object_foreach(root, key, v) {
        if (!is_known_key(key) && json_object_get(a->details, key) == NULL)
            json_object_set(a->details, key, v);
    }
    if ((rc = check_details(c, a->details)) != CWPP_OK)
        goto fail;

    a->status = a->defense == CWPP_DEF_PRECISION ? CWPP_ST_HANDLED : CWPP_ST_UNHANDLED;
    a->first_seen_ms = a->last_seen_ms = a->occurred_at_ms;
    a->occurrences = 1;
    a->ingested_at_ms = opts->now_ms;
    if ((rc = extract_entities(a)) != CWPP_OK)
        goto fail;
    if ((rc = cwpp_alert_compute_identity(a)) != CWPP_OK)
        goto fail;
    return CWPP_OK;
fail:
    free(s);
    cwpp_alert_clear(a);
    return rc;
}

int cwpp_alert_from_json(const void *buf, size_t len, const cwpp_alert_opts_t *opts,
                         cwpp_alert_t *out, const char **code, char *errstr,
                         size_t errstr_size)
{
    nctx_t       c = {code, errstr, errstr_size};
    json_error_t jerr;
    json_t      *root;
    int          rc;

    memset(out, 0, sizeof(*out));
    *code = NULL;
    if (!cwpp_utf8_valid(buf, len))
        return cwpp_alert__bad(&c, "invalid_utf8", "record is not valid UTF-8 text");
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return cwpp_alert__bad(&c, "invalid_json", "record is not valid JSON: %s (line %d, "
                               "column %d)", jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root)) {
        rc = cwpp_alert__bad(&c, "wrong_type", "record must be a JSON object, not %s",
                             json_type_name(root));
        json_decref(root);
        return rc;
    }
    rc = cwpp_alert__dispatch(&c, root, opts, out);
    json_decref(root);
    return rc;
}
