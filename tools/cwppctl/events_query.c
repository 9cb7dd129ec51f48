/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_query.c: the fetches of the read-only event views (events.h). Each view is one
 * JSON document that cwpp-api builds, scoped to the caller's accounts (docs/api/
 * openapi.yaml, tag "events"): --json prints it and the text output is rendered from it
 * (events_render.c), so the two never disagree. The API pages its lists (500 at most a
 * page, an opaque cursor); a verb's --limit may ask for more, so the pages are fetched
 * one after the other and joined here.
 */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest path (query included) sent: the transport builds URLs of at most 4 KiB
 * (api_client.c); a longer one would be cut, asking about another value. */

const char *ev_jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

json_int_t ev_jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

int ev_path_segment(cwpp_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p;
    int                  rc = 0;

    for (p = (const unsigned char *)s; *p != '\0' && rc == 0; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = cwpp_buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

            rc = cwpp_buf_append(b, esc, 3);
        }
    }
    return rc;
}

void ev_rules_query(cwpp_buf_t *b, const settings_t *st)
{
    char n[16];

    if (st->retention_set) {
        snprintf(n, sizeof(n), "%d", st->retention_days);
        ctl_q(b, "retention_days", n);
    }
    if (st->quiet_set) {
        snprintf(n, sizeof(n), "%d", st->quiet_hours);
        ctl_q(b, "quiet_hours", n);
    }
}

void ev_rules_from(const json_t *doc, settings_t *st)
{
    if (json_is_integer(json_object_get(doc, "retention_days")))
        st->retention_days = (int)ev_jint(doc, "retention_days");
    if (json_is_integer(json_object_get(doc, "quiet_after_hours")))
        st->quiet_hours = (int)ev_jint(doc, "quiet_after_hours");
}

int ev_get(ctl_t *c, const char *path, json_t **out)
{
    int rc;

    *out = NULL;
    if ((rc = ctl_api(c, "GET", path, NULL, out)) != CTL_OK)
        return rc;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ctl_fail(CTL_INFRA, "cwpp-api answered %s with no JSON document", path);
    }
    return CTL_OK;
}

