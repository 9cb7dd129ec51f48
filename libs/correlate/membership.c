/* SPDX-License-Identifier: Apache-2.0 */
/*
 * membership.c: an event rebuilt from its members (cwpp_correlate.h, "membership
 * changes"; docs/correlator.md "Leaving, merging and detaching").
 *
 * The correlator keeps an event's figures as a running sum of the alerts that joined it.
 * When alerts leave an event (whitelisted, detached) or events are merged, a running sum
 * cannot be undone piecewise (the best severity, the first probe, the stages in order of
 * first sight), so the figures are rebuilt: the members' stored alerts are added again,
 * in the order they joined, through the same code that added them the first time. The
 * correlation keys the rebuilt events own are then given to the event whose members still
 * hold them.
 */
#include "cwpp_correlate.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int cwpp_ev_rebuild(const cwpp_corr_member_t *m, size_t n, const json_t *old,
                    const cwpp_assess_conf_t *c, json_t **out)
{
    json_t *s = json_object();
    size_t  i;
    int     rc = CWPP_OK;

    *out = NULL;
    if (s == NULL)
        return CWPP_ENOMEM;
    for (i = 0; i < n && rc == CWPP_OK; i++) {
        cwpp_alert_t a;
        int64_t      occ = m[i].occurrences > 0 ? m[i].occurrences : 1;

        if (m[i].alert == NULL) {
            rc = CWPP_EINVAL;
            break;
        }
        a = *m[i].alert; /* shallow: only the time differs, the strings stay borrowed */
        a.occurred_at_ms = m[i].first_ms;
        rc = cwpp_ev_summary_add_n(s, &a, 1, 1, c);
        if (rc == CWPP_OK && occ > 1) {
            a.occurred_at_ms = m[i].last_ms > m[i].first_ms ? m[i].last_ms : m[i].first_ms;
            rc = cwpp_ev_summary_add_n(s, &a, 0, occ - 1, c);
        }
    }
    if (rc == CWPP_OK && json_is_object(old)) {
        static const char *const keep[] = {"notified"};
        static const char *const empty[] = {"first_ms", "last_ms", "name", "sev"};
        size_t k;

        for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
            if (json_object_get(old, keep[k]) != NULL &&
                json_object_set(s, keep[k], json_object_get(old, keep[k])) != 0)
                rc = CWPP_ENOMEM;
        for (k = 0; n == 0 && k < sizeof(empty) / sizeof(empty[0]); k++)
            if (json_object_get(old, empty[k]) != NULL &&
                json_object_set(s, empty[k], json_object_get(old, empty[k])) != 0)
                rc = CWPP_ENOMEM;
    }
    if (rc == CWPP_OK && n == 0 &&
        (json_object_set_new(s, "alerts", json_integer(0)) != 0 ||
         json_object_set_new(s, "occurrences", json_integer(0)) != 0))
        rc = CWPP_ENOMEM;
    if (rc != CWPP_OK) {
        json_decref(s);
        return rc;
    }
    *out = s;
    return CWPP_OK;
}

/* The first member alert of event ev holding key (NULL: none); *has_alert says whether
 * alert (may be NULL) is among the holders. */
static const char *holder(const cwpp_corr_keyref_t *held, size_t nheld, const char *key,
                          const char *ev, const char *alert, int *has_alert)
{
    const char *first = NULL;
    size_t      i;

    *has_alert = 0;
    for (i = 0; i < nheld; i++) {
        if (strcmp(held[i].key, key) != 0 || strcmp(held[i].event_id, ev) != 0)
            continue;
        if (first == NULL)
            first = held[i].alert_id;
        if (alert != NULL && strcmp(held[i].alert_id, alert) == 0)
            *has_alert = 1;
    }
    return first;
}

void cwpp_corr_keys_reassign(const cwpp_corr_keyref_t *owned, size_t nowned,
                             const cwpp_corr_keyref_t *held, size_t nheld,
                             const char *const *ids, size_t nids, const char **out_event,
                             const char **out_alert)
{
    size_t i, j;

    for (i = 0; i < nowned; i++) {
        const cwpp_corr_keyref_t *k = &owned[i];
        const char               *first;
        int                       has;

        out_event[i] = out_alert[i] = NULL;
        first = holder(held, nheld, k->key, k->event_id, k->alert_id, &has);
        if (first != NULL) { /* the owner's members still hold it */
            out_event[i] = k->event_id;
            out_alert[i] = has ? k->alert_id : first;
            continue;
        }
        for (j = 0; j < nids; j++) {
            if (strcmp(ids[j], k->event_id) == 0)
                continue;
            if ((first = holder(held, nheld, k->key, ids[j], NULL, &has)) != NULL) {
                out_event[i] = ids[j];
                out_alert[i] = first;
                break;
            }
        }
    }
}

void cwpp_corr_detach_event_id(const char *account, const char *event_id,
                               const char *command_id, char out[CWPP_EVENT_ID_LEN + 1])
{
    unsigned char md[32];
    unsigned int  mdlen = 0;
    char          buf[640];
    int           n, i;

    n = snprintf(buf, sizeof(buf), "%.256s\x1f%.64s\x1f%.256s\x1f" "detach", account, event_id,
                 command_id);
    EVP_Digest(buf, (size_t)(n > 0 && (size_t)n < sizeof(buf) ? n : (int)sizeof(buf) - 1), md,
               &mdlen, EVP_sha256(), NULL);
    memcpy(out, "ev-", 3);
    for (i = 0; i < 16; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", md[i]);
}
