/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c: rule checking, the name index and evaluation.
 *
 * The index is an open-addressing hash table from alert name to a list of rule indexes,
 * sized to twice the number of distinct names; evaluation hashes the alert's name once
 * and visits only that list. Regexes are compiled once per rule; one match-data block and
 * one match context (with the limits and a bounded JIT stack) serve every evaluation.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "cwpp_rules.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct rule {
    cwpp_rule_def_t def;      /* strings owned */
    pcre2_code     *re;       /* CWPP_OP_REGEX */
    double          num;      /* numeric value (gt/lt/eq) */
    int             is_num;
    int64_t         time_ms;  /* RFC 3339 value (gt/lt) */
    int             is_time;
} rule_t;

typedef struct bucket {
    char   *name;   /* NULL = empty slot */
    size_t *idx;    /* rule indexes, in the order added */
    size_t  n, cap;
} bucket_t;

struct cwpp_ruleset {
    rule_t              *rules;
    size_t               n, cap;
    bucket_t            *tab;
    size_t               tabsize;  /* power of two */
    size_t               names;
    pcre2_match_data    *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack     *jit;
    cwpp_rules_limits_t  lim;
};

/* The operators, in enum order (docs/whitelist.md "Rules"). */
static const cwpp_rule_op_def_t op_tab[CWPP_OP__COUNT] = {
    {CWPP_OP_REGEX,      "regex",      "matches the regex"},
    {CWPP_OP_GT,         "gt",         "is greater than"},
    {CWPP_OP_EQ,         "eq",         "equals"},
    {CWPP_OP_LT,         "lt",         "is less than"},
    {CWPP_OP_CONTAINS,   "contains",   "contains"},
    {CWPP_OP_STARTSWITH, "startswith", "starts with"},
};

const cwpp_rule_op_def_t *cwpp_rule_op_def(cwpp_rule_op_t op)
{
    assert((unsigned)op < CWPP_OP__COUNT && op_tab[op].op == op);
    return &op_tab[op];
}

const char *cwpp_rule_op_name(cwpp_rule_op_t op)
{
    return cwpp_rule_op_def(op)->name;
}

const char *cwpp_rule_ops_text(char *buf, size_t size, const char *sep, const char *last)
{
    const char *names[CWPP_OP__COUNT];
    int         i;

    for (i = 0; i < CWPP_OP__COUNT; i++)
        names[i] = op_tab[i].name;
    return cwpp_names_join(buf, size, names, CWPP_OP__COUNT, sep, last);
}

int cwpp_rule_op_parse(const char *s, cwpp_rule_op_t *op)
{
    int i;

    if (s == NULL)
        return -1;
    for (i = 0; i < CWPP_OP__COUNT; i++)
        if (strcasecmp(s, op_tab[i].name) == 0) {
            *op = op_tab[i].op;
            return 0;
        }
    if (!strcmp(s, ">"))
        *op = CWPP_OP_GT;
    else if (!strcmp(s, "=") || !strcmp(s, "=="))
        *op = CWPP_OP_EQ;
    else if (!strcmp(s, "<"))
        *op = CWPP_OP_LT;
    else
        return -1;
    return 0;
}

/* ------------------------------------------------------------------- fields */

static int parse_number(const char *s, double *out)
{
    char  *end;
    double v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || isnan(v) || isinf(v))
        return -1;
    *out = v;
    return 0;
}

static const char *const plain_fields[] = {
    "name", "type", "severity", "source", "account_id", "asset.id", "asset.name", "asset.ip",
    "asset.public_ip", "asset.role", "attack.tactic", "attack.technique", "defense",
    "file.path", "file.md5", "file.sha256", "process.pid", "process.path", "process.cmdline",
    "process.user", "remote_ip", "logon.ip", "logon.user", "occurred_at", NULL};

const char *const *cwpp_rule_fields(void)
{
    return plain_fields;
}

static int known_field(const char *f)
{
    int i;

    if (strncmp(f, "details.", 8) == 0) {
        const char *p = f + 8;
        /* non-empty keys separated by single dots */
        if (*p == '\0' || *p == '.' || p[strlen(p) - 1] == '.' || strstr(p, "..") != NULL)
            return 0;
        return 1;
    }
    for (i = 0; plain_fields[i] != NULL; i++)
        if (strcmp(plain_fields[i], f) == 0)
            return 1;
    return 0;
}

static const char *plain_value(const cwpp_alert_t *a, const char *f, char *buf, size_t bufsz)
{
    if (!strcmp(f, "name")) return a->name;
    if (!strcmp(f, "type")) return a->type;
    if (!strcmp(f, "severity")) return cwpp_severity_name(a->severity);
    if (!strcmp(f, "source")) return a->source;
    if (!strcmp(f, "account_id")) return a->account_id;
    if (!strcmp(f, "asset.id")) return a->asset.id;
    if (!strcmp(f, "asset.name")) return a->asset.name;
    if (!strcmp(f, "asset.ip")) return a->asset.ip;
    if (!strcmp(f, "asset.public_ip")) return a->asset.public_ip;
    if (!strcmp(f, "asset.role")) return a->asset.role;
    if (!strcmp(f, "attack.tactic")) return a->tactic;
    if (!strcmp(f, "attack.technique")) return a->technique;
    if (!strcmp(f, "defense")) return cwpp_defense_name(a->defense);
    if (!strcmp(f, "file.path")) return a->file.path;
    if (!strcmp(f, "file.md5")) return a->file.md5;
    if (!strcmp(f, "file.sha256")) return a->file.sha256;
    if (!strcmp(f, "process.path")) return a->process.path;
    if (!strcmp(f, "process.cmdline")) return a->process.cmdline;
    if (!strcmp(f, "process.user")) return a->process.user;
    if (!strcmp(f, "remote_ip")) return a->remote_ip;
    if (!strcmp(f, "logon.ip")) return a->logon.ip;
    if (!strcmp(f, "logon.user")) return a->logon.user;
    if (!strcmp(f, "process.pid")) {
        if (!a->process.has_pid)
            return NULL;
        snprintf(buf, bufsz, "%lld", (long long)a->process.pid);
        return buf;
    }
    if (!strcmp(f, "occurred_at"))
        return cwpp_format_time_ms(a->occurred_at_ms, buf, bufsz);
    return NULL;
}

/*
 * The value at a dotted path below obj. Keys may contain dots themselves (Falco's
 * output_fields: "k8s.ns.name"), so at each level the longest run of path segments that
 * names a key wins: "output_fields.k8s.ns.name" finds details["output_fields"]
 * ["k8s.ns.name"], and "nested.depth.level" finds details["nested"]["depth"]["level"].
 */
static json_t *details_get(json_t *obj, const char *path)
{
    size_t len = strlen(path), klen;
    char   key[256];

    if (!json_is_object(obj) || len == 0)
        return NULL;
    for (klen = len; klen > 0; klen--) {
        json_t *v;

        if (klen < len && path[klen] != '.')
            continue;
        if (klen >= sizeof(key))
            continue;
        memcpy(key, path, klen);
        key[klen] = '\0';
        if ((v = json_object_get(obj, key)) == NULL)
            continue;
        if (klen == len)
            return v;
        if ((v = details_get(v, path + klen + 1)) != NULL)
            return v;
    }
    return NULL;
}

int cwpp_alert_field(const cwpp_alert_t *a, const char *field, char *buf, size_t bufsz,
                     const char **out, double *num, int *is_num)
{
    *out = NULL;
    *is_num = 0;
    if (!known_field(field))
        return CWPP_EINVAL;
    if (strncmp(field, "details.", 8) == 0) {
        json_t *v = details_get(a->details, field + 8);

        if (v == NULL)
            return CWPP_ENOTFOUND;
        if (json_is_string(v)) {
            *out = json_string_value(v);
        } else if (json_is_integer(v)) {
            snprintf(buf, bufsz, "%lld", (long long)json_integer_value(v));
            *out = buf;
            *num = (double)json_integer_value(v);
            *is_num = 1;
            return CWPP_OK;
        } else if (json_is_real(v)) {
            snprintf(buf, bufsz, "%.17g", json_real_value(v));
            *out = buf;
            *num = json_real_value(v);
            *is_num = 1;
            return CWPP_OK;
        } else if (json_is_boolean(v)) {
            *out = json_is_true(v) ? "true" : "false";
        } else {
            return CWPP_ENOTFOUND; /* object, array, null */
        }
    } else {
        *out = plain_value(a, field, buf, bufsz);
        if (*out == NULL)
            return CWPP_ENOTFOUND;
        /* The contract's fields are identifiers and names, compared as text: account
         * "1000" is not account "1e3", and two long all-digit ids must not meet as one
         * rounded double. Only the process id is a number. */
        if (strcmp(field, "process.pid") != 0)
            return CWPP_OK;
    }
    if (parse_number(*out, num) == 0)
        *is_num = 1;
    return CWPP_OK;
}

/* ------------------------------------------------------------------- checking */

static pcre2_code *compile(const char *pattern, char *errstr, size_t errstr_size)
{
    int         err;
    PCRE2_SIZE  off;
    pcre2_code *re;
    PCRE2_UCHAR msg[256];

    re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_NO_UTF_CHECK,
                       &err, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(err, msg, sizeof(msg));
        cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                    "invalid regular expression at offset %zu: %s", (size_t)off, (char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return re;
}

int cwpp_rule_check(const cwpp_rule_def_t *def, char *errstr, size_t errstr_size)
{
    double  d;
    int64_t t;

    if (def->alert_name == NULL || *def->alert_name == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "a rule needs an alert name");
    if (def->field == NULL || !known_field(def->field))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "unknown alert field \"%s\" (a normalized field such as file.path, "
                           "or details.<key>)", def->field != NULL ? def->field : "");
    if (def->value == NULL || !cwpp_utf8_valid(def->value, strlen(def->value)))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the rule value must be UTF-8 text");
    if ((unsigned)def->op >= CWPP_OP__COUNT)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "unknown operator");
    if (def->account_id != NULL && *def->account_id == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "a rule's account id is empty");
    if (def->scope == CWPP_SCOPE_ASSET && (def->asset_id == NULL || *def->asset_id == '\0'))
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "a rule scoped to one asset needs the asset id");
    if ((def->op == CWPP_OP_GT || def->op == CWPP_OP_LT) && parse_number(def->value, &d) != 0 &&
        cwpp_parse_time_ms(def->value, 0, &t) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "operator %s needs a number or an RFC 3339 time, not \"%.64s\"",
                           cwpp_rule_op_name(def->op), def->value);
    if ((def->op == CWPP_OP_CONTAINS || def->op == CWPP_OP_STARTSWITH) && *def->value == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "\"%s\" with an empty value would match everything",
                           cwpp_rule_op_name(def->op));
    if (def->op == CWPP_OP_REGEX) {
        pcre2_code *re = compile(def->value, errstr, errstr_size);
        if (re == NULL)
            return CWPP_EINVAL;
        pcre2_code_free(re);
    }
    return CWPP_OK;
}

/* ------------------------------------------------------------------- ruleset */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

cwpp_ruleset_t *cwpp_ruleset_new(const cwpp_rules_limits_t *limits)
{
    cwpp_ruleset_t *rs = calloc(1, sizeof(*rs));

    if (rs == NULL)
        return NULL;
    rs->lim.match_limit = limits && limits->match_limit ? limits->match_limit : 100000;
    rs->lim.depth_limit = limits && limits->depth_limit ? limits->depth_limit : 1000;
    rs->lim.jit_stack_max = limits && limits->jit_stack_max ? limits->jit_stack_max : 256 * 1024;
    rs->md = pcre2_match_data_create(16, NULL);
    rs->mctx = pcre2_match_context_create(NULL);
    rs->jit = pcre2_jit_stack_create(32 * 1024, rs->lim.jit_stack_max, NULL);
    rs->tabsize = 16;
    rs->tab = calloc(rs->tabsize, sizeof(*rs->tab));
    if (rs->md == NULL || rs->mctx == NULL || rs->tab == NULL) {
        cwpp_ruleset_destroy(rs);
        return NULL;
    }
    pcre2_set_match_limit(rs->mctx, rs->lim.match_limit);
    pcre2_set_depth_limit(rs->mctx, rs->lim.depth_limit);
    if (rs->jit != NULL)
        pcre2_jit_stack_assign(rs->mctx, NULL, rs->jit);
    return rs;
}

void cwpp_ruleset_destroy(cwpp_ruleset_t *rs)
{
    size_t i;

    if (rs == NULL)
        return;
    for (i = 0; i < rs->n; i++) {
        free((char *)rs->rules[i].def.account_id);
        free((char *)rs->rules[i].def.alert_name);
        free((char *)rs->rules[i].def.field);
        free((char *)rs->rules[i].def.value);
        free((char *)rs->rules[i].def.asset_id);
        pcre2_code_free(rs->rules[i].re);
    }
    free(rs->rules);
    for (i = 0; rs->tab != NULL && i < rs->tabsize; i++) {
        free(rs->tab[i].name);
        free(rs->tab[i].idx);
    }
    free(rs->tab);
    pcre2_match_data_free(rs->md);
    pcre2_match_context_free(rs->mctx);
    pcre2_jit_stack_free(rs->jit);
    free(rs);
}

size_t cwpp_ruleset_size(const cwpp_ruleset_t *rs)
{
    return rs->n;
}

static bucket_t *find_bucket(const cwpp_ruleset_t *rs, const char *name)
{
    size_t mask = rs->tabsize - 1, i = (size_t)hash(name) & mask;

    while (rs->tab[i].name != NULL) {
        if (strcmp(rs->tab[i].name, name) == 0)
            return &rs->tab[i];
        i = (i + 1) & mask;
    }
    return &rs->tab[i]; /* the empty slot where it would go */
}

static int grow_table(cwpp_ruleset_t *rs)
{
    bucket_t *old = rs->tab;
    size_t    oldsize = rs->tabsize, i;

    rs->tabsize *= 2;
    rs->tab = calloc(rs->tabsize, sizeof(*rs->tab));
    if (rs->tab == NULL) {
        rs->tab = old;
        rs->tabsize = oldsize;
        return CWPP_ENOMEM;
    }
    for (i = 0; i < oldsize; i++)
        if (old[i].name != NULL)
            *find_bucket(rs, old[i].name) = old[i];
    free(old);
    return CWPP_OK;
}

int cwpp_ruleset_add(cwpp_ruleset_t *rs, const cwpp_rule_def_t *def, char *errstr,
                     size_t errstr_size)
{
    rule_t   *r;
    bucket_t *b;
    int       rc;

    if ((rc = cwpp_rule_check(def, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if (rs->n == rs->cap) {
        size_t  ncap = rs->cap ? rs->cap * 2 : 16;
        rule_t *nr = realloc(rs->rules, ncap * sizeof(*nr));
        if (nr == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        rs->rules = nr;
        rs->cap = ncap;
    }
    if ((rs->names + 1) * 2 > rs->tabsize && grow_table(rs) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    r = &rs->rules[rs->n];
    memset(r, 0, sizeof(*r));
    r->def = *def;
    r->def.account_id = cwpp_strdup(def->account_id);
    r->def.alert_name = strdup(def->alert_name);
    r->def.field = strdup(def->field);
    r->def.value = strdup(def->value);
    r->def.asset_id = cwpp_strdup(def->asset_id);
    r->is_num = parse_number(def->value, &r->num) == 0;
    r->is_time = cwpp_parse_time_ms(def->value, 0, &r->time_ms) == CWPP_OK;
    if (def->op == CWPP_OP_REGEX)
        r->re = compile(def->value, errstr, errstr_size);
    b = find_bucket(rs, def->alert_name);
    if (b->name == NULL) {
        b->name = strdup(def->alert_name);
        rs->names++;
    }
    if (b->n == b->cap) {
        size_t  ncap = b->cap ? b->cap * 2 : 4;
        size_t *ni = realloc(b->idx, ncap * sizeof(*ni));
        if (ni != NULL) {
            b->idx = ni;
            b->cap = ncap;
        }
    }
    if (r->def.alert_name == NULL || r->def.field == NULL || r->def.value == NULL ||
        (def->asset_id != NULL && r->def.asset_id == NULL) ||
        (def->account_id != NULL && r->def.account_id == NULL) || b->name == NULL ||
        b->n == b->cap || (def->op == CWPP_OP_REGEX && r->re == NULL)) {
        free((char *)r->def.account_id);
        free((char *)r->def.alert_name);
        free((char *)r->def.field);
        free((char *)r->def.value);
        free((char *)r->def.asset_id);
        pcre2_code_free(r->re);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    b->idx[b->n++] = rs->n;
    rs->n++;
    return CWPP_OK;
}

/* ------------------------------------------------------------------ matching */

static int eval(cwpp_ruleset_t *rs, const rule_t *r, const cwpp_alert_t *a, int64_t now_ms,
                cwpp_rules_stats_t *st)
{
    char        buf[64];
    const char *v;
    double      num = 0;
    int         is_num, rc;
    int64_t     t;

    if (r->def.expires_at_ms != 0 && now_ms >= r->def.expires_at_ms)
        return 0;
    if (r->def.account_id != NULL &&
        (a->account_id == NULL || strcmp(a->account_id, r->def.account_id) != 0))
        return 0;
    if (r->def.scope == CWPP_SCOPE_ASSET &&
        (a->asset.id == NULL || strcmp(a->asset.id, r->def.asset_id) != 0))
        return 0;
    if (st != NULL)
        st->evaluated++;
    if (cwpp_alert_field(a, r->def.field, buf, sizeof(buf), &v, &num, &is_num) != CWPP_OK)
        return 0;
    switch (r->def.op) {
    case CWPP_OP_REGEX:
        rc = pcre2_match(r->re, (PCRE2_SPTR)v, strlen(v), 0, 0, rs->md, rs->mctx);
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
            if (st != NULL)
                st->regex_aborted++;
            return 0;
        }
        return rc >= 0;
    case CWPP_OP_CONTAINS:
        return strstr(v, r->def.value) != NULL;
    case CWPP_OP_STARTSWITH:
        return strncmp(v, r->def.value, strlen(r->def.value)) == 0;
    case CWPP_OP_EQ:
        if (is_num && r->is_num)
            return num == r->num;
        return strcmp(v, r->def.value) == 0;
    case CWPP_OP_GT:
    case CWPP_OP_LT:
        if (r->is_num) {
            if (!is_num)
                return 0;
            return r->def.op == CWPP_OP_GT ? num > r->num : num < r->num;
        }
        if (r->is_time && cwpp_parse_time_ms(v, 1, &t) == CWPP_OK)
            return r->def.op == CWPP_OP_GT ? t > r->time_ms : t < r->time_ms;
        return 0;
    case CWPP_OP__COUNT:
        break; /* cwpp_rule_check refused it */
    }
    assert(!"an operator without a case in eval()");
    return 0;
}

int64_t cwpp_ruleset_match(cwpp_ruleset_t *rs, const cwpp_alert_t *a, int64_t now_ms,
                           cwpp_rules_stats_t *stats)
{
    bucket_t *b;
    size_t    i;

    if (a->name == NULL || rs->n == 0)
        return 0;
    b = find_bucket(rs, a->name);
    for (i = 0; b->name != NULL && i < b->n; i++) {
        const rule_t *r = &rs->rules[b->idx[i]];
        if (eval(rs, r, a, now_ms, stats))
            return r->def.id;
    }
    return 0;
}

int cwpp_rule_matches(cwpp_ruleset_t *rs, int64_t rule_id, const cwpp_alert_t *a,
                      int64_t now_ms, cwpp_rules_stats_t *stats)
{
    size_t i;

    for (i = 0; i < rs->n; i++)
        if (rs->rules[i].def.id == rule_id)
            return a->name != NULL && strcmp(a->name, rs->rules[i].def.alert_name) == 0 &&
                   eval(rs, &rs->rules[i], a, now_ms, stats);
    return 0;
}
