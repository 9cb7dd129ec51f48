/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_rules: whitelist rules and their evaluation (docs/architecture.md "Whitelist"; reference
 * "Add an alert to the whitelist").
 *
 * A rule has four parts - an alert field, an operator (regex match, greater than, equal
 * to, less than, contains, starts with), a value, a scope (all assets of its account, or
 * only one asset of it) - and applies only to alerts with its alert name and of its
 * account; it may expire. Rules of one name are OR-ed: an
 * alert is whitelisted when any applicable rule matches.
 *
 * Fields are the normalized alert's ("name", "type", "severity", "source",
 * "account_id", "asset.id", "asset.name", "asset.ip", "asset.public_ip", "asset.role",
 * "attack.tactic", "attack.technique", "defense", "file.path", "file.md5", "file.sha256",
 * "process.pid", "process.path", "process.cmdline", "process.user", "remote_ip",
 * "logon.ip", "logon.user", "occurred_at") or "details.<key>[.<key>...]" paths into the
 * alert's details. A missing field never matches.
 *
 * Operators: "regex" is PCRE2 (UTF), compiled once, JIT where available, run with a match
 * limit and a bounded JIT stack, so a catastrophic pattern gives up (counted as an error,
 * no match) instead of stalling. "gt"/"lt" compare numbers, or RFC 3339 times; their
 * value must be one of those. "eq" compares numbers numerically when both sides are
 * numbers, else strings exactly. "contains" is a substring test, "startswith" a prefix
 * test (for paths: "/opt/app/"); both are case-sensitive and refuse an empty value.
 *
 * Workload: every alert is checked against the rules of its own name only (a hash index
 * by name), so the cost per alert does not grow with rules of other names.
 * A ruleset is built once and then only read; matching uses per-ruleset scratch, so one
 * ruleset serves one thread. Rebuild and swap to change rules.
 */
#ifndef CWPP_RULES_H
#define CWPP_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_alert.h"

/*
 * The operators are defined once, in the table of rules.c; the CHECK constraint on
 * whitelist_rules.op (the latest migration of schemas/sql that sets it), cwppctl's help
 * and docs/whitelist.md follow it, and tests/unit/rules checks the migration agrees.
 * A new operator: a member before CWPP_OP__COUNT, a table row, its case in eval() and
 * cwpp_rule_check(), a migration.
 */
typedef enum {
    CWPP_OP_REGEX = 0,
    CWPP_OP_GT,
    CWPP_OP_EQ,
    CWPP_OP_LT,
    CWPP_OP_CONTAINS,
    CWPP_OP_STARTSWITH,
    CWPP_OP__COUNT /* not an operator: the number of them */
} cwpp_rule_op_t;

/* One operator. */
typedef struct cwpp_rule_op_def {
    cwpp_rule_op_t op;
    const char    *name;    /* as stored in whitelist_rules.op and given to --op */
    const char    *display; /* "contains" in a sentence: "file.path contains /data/" */
} cwpp_rule_op_def_t;

typedef enum { CWPP_SCOPE_ALL = 0, CWPP_SCOPE_ASSET } cwpp_rule_scope_t;

typedef struct cwpp_rule_def {
    int64_t           id;            /* stable rule id (> 0) */
    const char       *alert_name;    /* applies to alerts with exactly this name */
    const char       *field;
    cwpp_rule_op_t    op;
    const char       *value;
    cwpp_rule_scope_t scope;
    const char       *asset_id;      /* with CWPP_SCOPE_ASSET: the only asset it covers */
    int64_t           expires_at_ms; /* 0 = never; from then on the rule no longer applies */
    const char       *account_id;    /* applies to alerts of exactly this account; NULL
                                        (unit tests and benches only: stored rules always
                                        have one) matches every account */
} cwpp_rule_def_t;

typedef struct cwpp_rules_limits {
    uint32_t match_limit;   /* PCRE2 match limit per evaluation (default 100000) */
    uint32_t depth_limit;   /* PCRE2 depth limit, interpreter only (default 1000) */
    size_t   jit_stack_max; /* bytes (default 256 KiB) */
} cwpp_rules_limits_t;

typedef struct cwpp_rules_stats {
    uint64_t evaluated;     /* rule evaluations */
    uint64_t regex_aborted; /* regex runs stopped by a limit (treated as no match) */
} cwpp_rules_stats_t;

/* An operator's name (case-insensitive; and the ">", "=", "==", "<" aliases) to its
 * member: 0, or -1 for anything else (and NULL). */
int         cwpp_rule_op_parse(const char *s, cwpp_rule_op_t *op);
/* The name of a member (asserts on anything else). */
const char *cwpp_rule_op_name(cwpp_rule_op_t op);
/* The table row of a member (asserts on anything else). */
const cwpp_rule_op_def_t *cwpp_rule_op_def(cwpp_rule_op_t op);
/* The operators' names as one text, table order, separated by sep with last before the
 * last one ("|", "|" gives "regex|gt|eq|lt|contains"). Written into buf; returns buf. */
const char *cwpp_rule_ops_text(char *buf, size_t size, const char *sep, const char *last);

/* Checks a definition as rule creation must: known field, value fits the operator, regex
 * compiles (the error names PCRE2's message and the offset), asset given for asset
 * scope. Returns 0 or CWPP_EINVAL with one sentence. */
int cwpp_rule_check(const cwpp_rule_def_t *def, char *errstr, size_t errstr_size);

typedef struct cwpp_ruleset cwpp_ruleset_t;

/* limits may be NULL (defaults). NULL on allocation failure. */
cwpp_ruleset_t *cwpp_ruleset_new(const cwpp_rules_limits_t *limits);
/* Accepts NULL. */
void cwpp_ruleset_destroy(cwpp_ruleset_t *rs);
/* Adds a rule (strings copied). Returns 0, CWPP_EINVAL (see cwpp_rule_check) or
 * CWPP_ENOMEM. */
int cwpp_ruleset_add(cwpp_ruleset_t *rs, const cwpp_rule_def_t *def, char *errstr,
                     size_t errstr_size);
size_t cwpp_ruleset_size(const cwpp_ruleset_t *rs);

/*
 * The id of the first rule (in the order added) that applies to alert a at now_ms and
 * matches it, or 0. stats may be NULL.
 */
int64_t cwpp_ruleset_match(cwpp_ruleset_t *rs, const cwpp_alert_t *a, int64_t now_ms,
                           cwpp_rules_stats_t *stats);

/* One rule on its own (for previews): 1 match, 0 no match. */
int cwpp_rule_matches(cwpp_ruleset_t *rs, int64_t rule_id, const cwpp_alert_t *a,
                      int64_t now_ms, cwpp_rules_stats_t *stats);

/*
 * The value of field on alert a, as text in *out (pointing into a or into buf), and as a
 * number in *num with *is_num = 1 when it is one: a details value that is a JSON number
 * or a text that reads as one, and process.pid; every other field of the contract is an
 * identifier or a name and only ever text (eq compares it exactly). Returns 0, or CWPP_ENOTFOUND when the
 * alert lacks it (or it is an object, array or null), CWPP_EINVAL for an unknown field.
 */
int cwpp_alert_field(const cwpp_alert_t *a, const char *field, char *buf, size_t bufsz,
                     const char **out, double *num, int *is_num);

/* The normalized fields a rule may name (the list above, without the "details.<key>"
 * paths), NULL-terminated, static. */
const char *const *cwpp_rule_fields(void);

#endif /* CWPP_RULES_H */
