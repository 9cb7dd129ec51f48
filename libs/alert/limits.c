/* SPDX-License-Identifier: Apache-2.0 */
/*
 * limits.c: the length check of a command's payload against the table of limits
 * (cwpp_alert_limits.h). A payload is small (a command's JSON object, at most the
 * service's max message bytes), so the check walks all of it: every string at any depth
 * and every member name, so a member nobody named yet is bounded by the default and no
 * text of unbounded length reaches a handler.
 */
#include "cwpp_alert.h"

#include <stdio.h>
#include <string.h>

/* The limit under member key: its own entry, else inherited (its parent's limit). */
static size_t limit_of(const char *key, const cwpp_alert_text_limit_t *limits, size_t n,
                       size_t inherited)
{
    size_t i;

    for (i = 0; key != NULL && i < n; i++)
        if (strcmp(limits[i].key, key) == 0)
            return limits[i].max;
    return inherited;
}

/* Walks v, found under member key at path (for the sentence), whose parent's limit is
 * up. 1 fits, else 0 with why. */
static int walk(const json_t *v, const char *key, const char *path,
                const cwpp_alert_text_limit_t *limits, size_t n, size_t dflt, size_t up,
                int depth, char *why, size_t why_size)
{
    char        sub[160];
    const char *k;
    json_t     *m;
    size_t      i, max = limit_of(key, limits, n, up);

    if (json_is_string(v)) {
        if (json_string_length(v) <= max)
            return 1;
        snprintf(why, why_size, "\"%s\" is %zu bytes, longer than its limit of %zu bytes",
                 path, json_string_length(v), max);
        return 0;
    }
    if (depth > 16) /* a payload is flat; 16 levels is plenty and bounds the recursion */
        return 1;
    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i + 1);
            if (!walk(json_array_get(v, i), key, sub, limits, n, dflt, max, depth + 1, why,
                      why_size))
                return 0;
        }
        return 1;
    }
    if (!json_is_object(v))
        return 1;
    json_object_foreach((json_t *)v, k, m) {
        if (strlen(k) > dflt) {
            snprintf(why, why_size, "a member name in \"%s\" is %zu bytes, longer than its "
                     "limit of %zu bytes", path[0] != '\0' ? path : "the payload", strlen(k),
                     dflt);
            return 0;
        }
        snprintf(sub, sizeof(sub), "%s%s%.64s", path, path[0] != '\0' ? "." : "", k);
        if (!walk(m, k, sub, limits, n, dflt, max, depth + 1, why, why_size))
            return 0;
    }
    return 1;
}

int cwpp_alert_texts_fit(const json_t *obj, const cwpp_alert_text_limit_t *limits, size_t n,
                         size_t dflt, char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (!json_is_object(obj))
        return 1;
    return walk(obj, NULL, "", limits, n, dflt, dflt, 0, why, why_size);
}
