/* SPDX-License-Identifier: Apache-2.0 */
/*
 * whitelist.c: rule definitions from command payloads, loading live rules, the impact
 * preview and the broad-rule warning (cwpp_whitelist.h).
 */
#include "cwpp_whitelist.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"
#include "cwpp_util.h"

/* ----------------------------------------------------------- definitions */

static int opt_str(json_t *obj, const char *key, char **dst, int required, char *errstr,
                   size_t errstr_size)
{
    json_t *v = json_object_get(obj, key);

    *dst = NULL;
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        if (required)
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the rule needs a %s", key);
        return CWPP_OK;
    }
    if (!json_is_string(v))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the rule's %s must be a string",
                           key);
    if ((*dst = strdup(json_string_value(v))) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    return CWPP_OK;
}

/* One text of a rule against its limit (cwpp_alert_limits.h). */
static int fits(const char *what, const char *s, size_t max, const char *why, char *errstr,
                size_t errstr_size)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n <= max)
        return CWPP_OK;
    return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                       "the rule's %s is %zu bytes, longer than its limit of %zu bytes%s", what,
                       n, max, why);
}

/* Every text of a rule within its limit: nothing longer is stored, indexed or loaded into
 * every filter (a 10 KB alert_name could match no alert and stops no filter). */
static int check_lengths(const char *acct, const char *an, const char *field,
                         cwpp_rule_op_t op, const char *value, const char *asset,
                         const char *from, const char *remark, char *errstr,
                         size_t errstr_size)
{
    int rc;

    if ((rc = fits("account_id", acct, CWPP_ALERT_MAX_ACCOUNT, " (the longest account id)",
                   errstr, errstr_size)) != CWPP_OK ||
        (rc = fits("alert_name", an, CWPP_ALERT_MAX_NAME, " (the longest alert name)", errstr,
                   errstr_size)) != CWPP_OK ||
        (rc = fits("field", field, CWPP_CMD_MAX_RULE_FIELD, "", errstr, errstr_size)) !=
            CWPP_OK ||
        (rc = op == CWPP_OP_REGEX
                  ? fits("regex", value, CWPP_CMD_MAX_RULE_REGEX, "", errstr, errstr_size)
                  : fits("value", value, CWPP_CMD_MAX_RULE_VALUE, "", errstr, errstr_size)) !=
            CWPP_OK ||
        (rc = fits("asset_id", asset, CWPP_ALERT_MAX_ID, " (the longest asset id)", errstr,
                   errstr_size)) != CWPP_OK ||
        (rc = fits("from_alert_id", from, CWPP_CMD_MAX_ALERT_ID, " (an alert id)", errstr,
                   errstr_size)) != CWPP_OK ||
        (rc = fits("remark", remark, CWPP_CMD_MAX_REMARK, "", errstr, errstr_size)) != CWPP_OK)
        return rc;
    return CWPP_OK;
}

void cwpp_wl_def_clear(cwpp_wl_def_t *d)
{
    if (d == NULL)
        return;
    free((char *)d->def.account_id);
    free((char *)d->def.alert_name);
    free((char *)d->def.field);
    free((char *)d->def.value);
    free((char *)d->def.asset_id);
    free(d->from_alert_id);
    free(d->remark);
    memset(d, 0, sizeof(*d));
}

int cwpp_wl_def_from_json(json_t *obj, cwpp_wl_def_t *out, char *errstr, size_t errstr_size)
{
    char *an = NULL, *field = NULL, *op = NULL, *value = NULL, *scope = NULL, *asset = NULL;
    char *expires = NULL, *acct = NULL;
    json_t *f;
    int   rc;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the rule must be a JSON object");
    if ((rc = opt_str(obj, "alert_name", &an, 1, errstr, errstr_size)) ||
        (rc = opt_str(obj, "field", &field, 1, errstr, errstr_size)) ||
        (rc = opt_str(obj, "op", &op, 1, errstr, errstr_size)) ||
        (rc = opt_str(obj, "scope", &scope, 0, errstr, errstr_size)) ||
        (rc = opt_str(obj, "asset_id", &asset, 0, errstr, errstr_size)) ||
        (rc = opt_str(obj, "from_alert_id", &out->from_alert_id, 0, errstr, errstr_size)) ||
        (rc = opt_str(obj, "expires_at", &expires, 0, errstr, errstr_size)) ||
        (rc = opt_str(obj, "remark", &out->remark, 0, errstr, errstr_size)) ||
        (rc = opt_str(obj, "account_id", &acct, 0, errstr, errstr_size)))
        goto done;
    /* The value may be empty for "eq" (an empty field); it must be a string. */
    f = json_object_get(obj, "value");
    if (!json_is_string(f)) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the rule needs a value (a string)");
        goto done;
    }
    if ((value = strdup(json_string_value(f))) == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto done;
    }
    if (cwpp_rule_op_parse(op, &out->def.op) != 0) {
        char ops[128];

        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "unknown operator \"%.64s\" (use %s)",
                         op, cwpp_rule_ops_text(ops, sizeof(ops), ", ", " or "));
        goto done;
    }
    if (scope == NULL || strcmp(scope, "all") == 0) {
        out->def.scope = CWPP_SCOPE_ALL;
        if (asset != NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                             "an asset is given but the scope is \"all\" (use scope asset)");
            goto done;
        }
    } else if (strcmp(scope, "asset") == 0) {
        out->def.scope = CWPP_SCOPE_ASSET;
    } else {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "unknown scope \"%.64s\" (use all or asset)", scope);
        goto done;
    }
    if (expires != NULL && cwpp_parse_time_ms(expires, 0, &out->def.expires_at_ms) != 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "expires_at \"%.64s\" is not an RFC 3339 time", expires);
        goto done;
    }
    if ((rc = check_lengths(acct, an, field, out->def.op, value, asset, out->from_alert_id,
                            out->remark, errstr, errstr_size)) != CWPP_OK)
        goto done;
    f = json_object_get(obj, "force");
    out->force = json_is_true(f);
    out->def.account_id = acct;
    out->def.alert_name = an;
    out->def.field = field;
    out->def.value = value;
    out->def.asset_id = asset;
    acct = an = field = value = asset = NULL;
    rc = cwpp_rule_check(&out->def, errstr, errstr_size);
done:
    free(acct);
    free(an);
    free(field);
    free(op);
    free(value);
    free(scope);
    free(asset);
    free(expires);
    if (rc != CWPP_OK)
        cwpp_wl_def_clear(out);
    return rc;
}

json_t *cwpp_wl_def_to_json(const cwpp_rule_def_t *d, int64_t rule_id)
{
    char    t[40];
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "alert_name", d->alert_name, "field",
                          d->field, "op", cwpp_rule_op_name(d->op), "value", d->value, "scope",
                          d->scope == CWPP_SCOPE_ASSET ? "asset" : "all");

    if (o == NULL)
        return NULL;
    if (rule_id > 0)
        json_object_set_new(o, "rule_id", json_integer(rule_id));
    if (d->account_id != NULL)
        json_object_set_new(o, "account_id", json_string(d->account_id));
    if (d->asset_id != NULL)
        json_object_set_new(o, "asset_id", json_string(d->asset_id));
    if (d->expires_at_ms > 0)
        json_object_set_new(o, "expires_at", json_string(cwpp_format_time_ms(d->expires_at_ms, t,
                                                                              sizeof(t))));
    return o;
}

/* ----------------------------------------------------------------- loading */

static int res_check(PGresult *r, ExecStatusType want, const char *what, char *errstr,
                     size_t errstr_size)
{
    if (r != NULL && PQresultStatus(r) == want)
        return CWPP_OK;
    return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s: %s", what,
                       r != NULL ? PQresultErrorMessage(r) : "no result");
}

static const char SQL_LOAD[] =
    "SELECT rule_id, alert_name, field, op, value, scope, asset_id, "
    "COALESCE((extract(epoch FROM expires_at) * 1000)::bigint, 0), account_id "
    "FROM whitelist_rules WHERE deleted_at IS NULL AND account_id IS NOT NULL "
    "AND (expires_at IS NULL OR expires_at > now()) ORDER BY rule_id";

int cwpp_wl_load(PGconn *c, const cwpp_rules_limits_t *limits, cwpp_ruleset_t **out,
                 int64_t *version, size_t *skipped, char *errstr, size_t errstr_size)
{
    PGresult       *r;
    cwpp_ruleset_t *rs;
    int             i, n, rc;

    *out = NULL;
    *skipped = 0;
    /* The version first, then the rules: a change committed in between gives rules newer
     * than the version, which only costs one more reload; never the other way round. */
    r = PQexecParams(c, "SELECT version FROM whitelist_state WHERE id = 1", 0, NULL, NULL,
                     NULL, NULL, 0);
    if ((rc = res_check(r, PGRES_TUPLES_OK, "reading the rules version", errstr,
                        errstr_size)) != CWPP_OK || PQntuples(r) != 1) {
        PQclear(r);
        return rc != CWPP_OK ? rc : cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                                                "whitelist_state has no row");
    }
    *version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = PQexecParams(c, SQL_LOAD, 0, NULL, NULL, NULL, NULL, 0);
    if ((rc = res_check(r, PGRES_TUPLES_OK, "loading whitelist rules", errstr, errstr_size))) {
        PQclear(r);
        return rc;
    }
    if ((rs = cwpp_ruleset_new(limits)) == NULL) {
        PQclear(r);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    n = PQntuples(r);
    for (i = 0; i < n; i++) {
        cwpp_rule_def_t d;
        char            why[300];

        memset(&d, 0, sizeof(d));
        d.id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        d.alert_name = PQgetvalue(r, i, 1);
        d.field = PQgetvalue(r, i, 2);
        if (cwpp_rule_op_parse(PQgetvalue(r, i, 3), &d.op) != 0) {
            (*skipped)++;
            continue;
        }
        d.value = PQgetvalue(r, i, 4);
        d.scope = strcmp(PQgetvalue(r, i, 5), "asset") == 0 ? CWPP_SCOPE_ASSET : CWPP_SCOPE_ALL;
        d.asset_id = PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6);
        d.expires_at_ms = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        d.account_id = PQgetvalue(r, i, 8);
        rc = cwpp_ruleset_add(rs, &d, why, sizeof(why));
        if (rc == CWPP_ENOMEM) {
            cwpp_ruleset_destroy(rs);
            PQclear(r);
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        }
        if (rc != CWPP_OK)
            (*skipped)++;
    }
    PQclear(r);
    *out = rs;
    return CWPP_OK;
}

/* ----------------------------------------------------------------- preview */

void cwpp_wl_preview_clear(cwpp_wl_preview_t *p)
{
    if (p == NULL)
        return;
    json_decref(p->events);
    json_decref(p->sample);
    memset(p, 0, sizeof(*p));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char SQL_PREVIEW[] =
    "DECLARE cwpp_preview NO SCROLL CURSOR FOR SELECT " CWPP_ALERT_ROW_SQL
    " FROM alerts a WHERE a.name = $1 AND a.last_seen >= now() - make_interval(days => $2::int)"
    " AND a.defense <> 'precision_defense' AND ($3::text IS NULL OR a.account_id = $3)";
static const char SQL_EVENTS[] =
    "SELECT e.event_id, e.name, e.status, count(*) FROM event_alerts ea "
    "JOIN events e USING (event_id) WHERE ea.alert_id = ANY($1::text[]) "
    "AND e.status <> 'handled' GROUP BY e.event_id, e.name, e.status ORDER BY count(*) DESC, "
    "e.event_id LIMIT 100";

int cwpp_wl_preview(PGconn *c, const cwpp_rule_def_t *d, const cwpp_rules_limits_t *limits,
                    int days, int64_t now_ms, cwpp_wl_preview_t *out, char *errstr,
                    size_t errstr_size)
{
    cwpp_ruleset_t    *rs;
    cwpp_rule_def_t    one = *d;
    cwpp_rules_stats_t st = {0};
    cwpp_alert_t       a;
    cwpp_buf_t         ids = {0};
    char             **assets = NULL;
    size_t             nassets = 0, capassets = 0, i;
    char               daysbuf[16];
    const char        *params[3];
    PGresult          *r = NULL;
    int                rc = CWPP_OK, in_tx = 0;

    memset(out, 0, sizeof(*out));
    memset(&a, 0, sizeof(a));
    out->days = days;
    out->events = json_array();
    out->sample = json_array();
    one.id = 1;
    one.expires_at_ms = 0;
    if ((rs = cwpp_ruleset_new(limits)) == NULL || out->events == NULL || out->sample == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = cwpp_ruleset_add(rs, &one, errstr, errstr_size)) != CWPP_OK)
        goto done;
    cwpp_buf_append(&ids, "{", 1);

    /* Inside the caller's transaction (the service creating a rule) or in a read-only
     * one of its own (cwppctl). */
    if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
        r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        if ((rc = res_check(r, PGRES_COMMAND_OK, "preview", errstr, errstr_size)))
            goto done;
        PQclear(r);
        in_tx = 1;
    }
    snprintf(daysbuf, sizeof(daysbuf), "%d", days);
    params[0] = d->alert_name;
    params[1] = daysbuf;
    params[2] = d->account_id;
    r = PQexecParams(c, SQL_PREVIEW, 3, NULL, params, NULL, NULL, 0);
    if ((rc = res_check(r, PGRES_COMMAND_OK, "preview", errstr, errstr_size)))
        goto done;
    for (;;) {
        int n, k;

        PQclear(r);
        r = PQexec(c, "FETCH 2000 FROM cwpp_preview");
        if ((rc = res_check(r, PGRES_TUPLES_OK, "preview", errstr, errstr_size)))
            goto done;
        if ((n = PQntuples(r)) == 0)
            break;
        for (k = 0; k < n; k++) {
            char why[200];

            if (cwpp_alert_from_row(PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0), &a, why,
                                    sizeof(why)) != CWPP_OK)
                continue;
            out->considered++;
            if (cwpp_rule_matches(rs, 1, &a, now_ms, &st) == 1) {
                out->matched++;
                if (ids.len > 1)
                    cwpp_buf_append(&ids, ",", 1);
                cwpp_buf_append(&ids, a.alert_id, strlen(a.alert_id));
                if (nassets == capassets) {
                    size_t nc = capassets ? capassets * 2 : 64;
                    char **na = realloc(assets, nc * sizeof(*na));

                    if (na == NULL) {
                        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
                        goto done;
                    }
                    assets = na;
                    capassets = nc;
                }
                if ((assets[nassets] = strdup(a.asset.id)) != NULL)
                    nassets++;
                if (json_array_size(out->sample) < CWPP_WL_SAMPLE_MAX) {
                    char t[40];

                    json_array_append_new(
                        out->sample,
                        json_pack("{s:s, s:s, s:s, s:s, s:I}", "alert_id", a.alert_id,
                                  "asset_id", a.asset.id, "status", cwpp_status_name(a.status),
                                  "last_seen", cwpp_format_time_ms(a.last_seen_ms, t, sizeof(t)),
                                  "occurrences", (json_int_t)a.occurrences));
                }
            }
            cwpp_alert_clear(&a);
        }
    }
    PQclear(r);
    r = PQexec(c, "CLOSE cwpp_preview");
    if ((rc = res_check(r, PGRES_COMMAND_OK, "preview", errstr, errstr_size)))
        goto done;
    PQclear(r);
    r = NULL;
    cwpp_buf_append(&ids, "}", 2);
    if (ids.data == NULL || ids.data[ids.len - 2] != '}') {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto done;
    }
    if (out->matched > 0) {
        const char *p1[1] = {(const char *)ids.data};
        int         k;

        r = PQexecParams(c, SQL_EVENTS, 1, NULL, p1, NULL, NULL, 0);
        if ((rc = res_check(r, PGRES_TUPLES_OK, "preview (events)", errstr, errstr_size)))
            goto done;
        for (k = 0; k < PQntuples(r); k++)
            json_array_append_new(out->events,
                                  json_pack("{s:s, s:s, s:s, s:I}", "event_id",
                                            PQgetvalue(r, k, 0), "name", PQgetvalue(r, k, 1),
                                            "status", PQgetvalue(r, k, 2), "alerts",
                                            (json_int_t)strtoll(PQgetvalue(r, k, 3), NULL, 10)));
    }
    if (nassets > 0) {
        qsort(assets, nassets, sizeof(*assets), cmp_str);
        out->assets = 1;
        for (i = 1; i < nassets; i++)
            if (strcmp(assets[i], assets[i - 1]) != 0)
                out->assets++;
    }
    out->share = out->considered > 0 ? (double)out->matched / (double)out->considered : 0.0;
    out->regex_aborted = (int64_t)st.regex_aborted;
done:
    PQclear(r);
    if (in_tx) {
        r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    cwpp_alert_clear(&a);
    for (i = 0; i < nassets; i++)
        free(assets[i]);
    free(assets);
    cwpp_buf_free(&ids);
    cwpp_ruleset_destroy(rs);
    if (rc != CWPP_OK)
        cwpp_wl_preview_clear(out);
    return rc;
}

json_t *cwpp_wl_preview_to_json(const cwpp_wl_preview_t *p)
{
    return json_pack("{s:i, s:I, s:I, s:I, s:f, s:I, s:O, s:O}", "days", p->days, "considered",
                     (json_int_t)p->considered, "matched", (json_int_t)p->matched, "assets",
                     (json_int_t)p->assets, "share", p->share, "regex_aborted",
                     (json_int_t)p->regex_aborted, "open_events", p->events, "sample",
                     p->sample);
}

/* ------------------------------------------------------------ broad rules */

static int is_path_field(const char *f)
{
    return strcmp(f, "file.path") == 0 || strcmp(f, "process.path") == 0 ||
           strcmp(f, "process.cmdline") == 0 || strncmp(f, "details.", 8) == 0;
}

/* "/data/", "data", "C:\\", "/": a path naming at most one directory level. */
static int shallow_path(const char *s)
{
    size_t      len = strlen(s), i, seps = 0;
    const char *p = s;

    while (*p == '/' || *p == '\\')
        p++;
    if (len >= 2 && s[1] == ':') /* drive letter */
        p = s + 2;
    while (*p == '/' || *p == '\\')
        p++;
    len = strlen(p);
    while (len > 0 && (p[len - 1] == '/' || p[len - 1] == '\\'))
        len--;
    for (i = 0; i < len; i++)
        if (p[i] == '/' || p[i] == '\\')
            seps++;
    return seps == 0;
}

static int regex_matches_empty(const char *pattern)
{
    int                 err, rc = 0;
    PCRE2_SIZE          off;
    pcre2_code         *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                           &err, &off, NULL);
    pcre2_match_data   *md;
    pcre2_match_context *mc;

    if (re == NULL)
        return 0;
    md = pcre2_match_data_create_from_pattern(re, NULL);
    mc = pcre2_match_context_create(NULL);
    if (md != NULL && mc != NULL) {
        pcre2_set_match_limit(mc, 10000);
        rc = pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, mc) >= 0;
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

/* "^/data/" or "^/data/.*": a literal prefix then nothing or only a match-anything tail. */
static int regex_shallow_prefix(const char *pattern, char *lit, size_t litsz)
{
    const char *p = pattern;
    size_t      n = 0;

    if (*p != '^')
        return 0;
    p++;
    while (*p != '\0' && strchr(".*+?[](){}|$^", *p) == NULL && n + 1 < litsz) {
        if (*p == '\\') {
            if (p[1] == '/' || p[1] == '\\' || p[1] == '.') {
                lit[n++] = p[1];
                p += 2;
                continue;
            }
            break;
        }
        lit[n++] = *p++;
    }
    lit[n] = '\0';
    if (n == 0)
        return 0;
    if (!(*p == '\0' || strcmp(p, ".*") == 0 || strcmp(p, ".+") == 0 || strcmp(p, ".*$") == 0))
        return 0;
    return shallow_path(lit) && strpbrk(lit, "/\\") != NULL;
}

int cwpp_wl_broad(const cwpp_rule_def_t *d, const cwpp_wl_preview_t *p, double max_share,
                  char *why, size_t why_size)
{
    char lit[256];
    int  n = 0;

    why[0] = '\0';
    if ((d->op == CWPP_OP_CONTAINS && strlen(d->value) < 3) ||
        (d->op == CWPP_OP_STARTSWITH && strlen(d->value) < 2)) {
        n += snprintf(why, why_size, "\"%s %s %s\" matches almost anything. ", d->field,
                      cwpp_rule_op_name(d->op), d->value);
    } else if ((d->op == CWPP_OP_CONTAINS || d->op == CWPP_OP_STARTSWITH) &&
               is_path_field(d->field) && strpbrk(d->value, "/\\") != NULL &&
               shallow_path(d->value)) {
        n += snprintf(why, why_size,
                      "\"%s %s %s\" names a whole top-level directory and may whitelist "
                      "sensitive subdirectories; name the exact directory instead. ",
                      d->field, cwpp_rule_op_name(d->op), d->value);
    } else if (d->op == CWPP_OP_REGEX && regex_matches_empty(d->value)) {
        n += snprintf(why, why_size, "the regex /%s/ matches an empty %s, so it matches "
                      "anything. ", d->value, d->field);
    } else if (d->op == CWPP_OP_REGEX && is_path_field(d->field) &&
               regex_shallow_prefix(d->value, lit, sizeof(lit))) {
        n += snprintf(why, why_size,
                      "the regex /%s/ covers the whole directory %s and may whitelist sensitive "
                      "subdirectories; name the exact directory instead. ", d->value, lit);
    }
    if (p != NULL && p->considered > 0 && p->share > max_share && (size_t)n < why_size) {
        n += snprintf(why + n, why_size - (size_t)n,
                      "It would have suppressed %lld of %lld \"%s\" alerts of the last %d days "
                      "(%.0f %%), more than the %.0f %% allowed without --force. ",
                      (long long)p->matched, (long long)p->considered, d->alert_name, p->days,
                      p->share * 100.0, max_share * 100.0);
    }
    if (n > 0 && (size_t)n <= why_size && why[n - 1] == ' ')
        why[n - 1] = '\0';
    if (why[0] >= 'a' && why[0] <= 'z' && why[0] != '\0')
        why[0] = (char)(why[0] - 'a' + 'A');
    return n > 0;
}
