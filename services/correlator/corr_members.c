/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_members.c: the events of a batch whose members changed (a whitelisted alert left
 * them; a command merged or detached alerts) rebuilt from the members they have now, in
 * the batch's own transaction: their running figures and level (libs/correlate
 * cwpp_ev_rebuild over the members' stored alerts, in the order they joined), their
 * provenance graph written again, and their correlation keys given to the event whose
 * members still hold them (cwpp_corr_keys_reassign). The assessment follows in the
 * batch's assess step, as for any changed event. Two round trips: read the members and
 * the owned keys, then write the graph and the keys.
 */
#include "corr_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The members read back, and the keys they hold. */
typedef struct mset {
    cwpp_alert_t       *alerts;
    cwpp_corr_member_t *members;
    const char        **mevent;   /* each member's event id (into the result) */
    size_t              n;
    cwpp_corr_keyref_t *held;
    char              (*heldkeys)[CWPP_CORR_KEY_MAX];
    size_t              nheld;
} mset_t;

static void mset_free(mset_t *s)
{
    size_t i;

    for (i = 0; s->alerts != NULL && i < s->n; i++)
        cwpp_alert_clear(&s->alerts[i]);
    free(s->alerts);
    free(s->members);
    free(s->mevent);
    free(s->held);
    free(s->heldkeys);
}

/* Reads the members (rows of "members") and the keys each holds. */
static int mset_read(mset_t *s, const PGresult *r, char *errstr, size_t errstr_size)
{
    size_t n = (size_t)PQntuples(r), i, j;

    s->alerts = calloc(n + 1, sizeof(*s->alerts));
    s->members = calloc(n + 1, sizeof(*s->members));
    s->mevent = calloc(n + 1, sizeof(*s->mevent));
    s->held = calloc(n * CWPP_CORR_MAX_KEYS + 1, sizeof(*s->held));
    s->heldkeys = calloc(n * CWPP_CORR_MAX_KEYS + 1, sizeof(*s->heldkeys));
    if (s->alerts == NULL || s->members == NULL || s->mevent == NULL || s->held == NULL ||
        s->heldkeys == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        const char     *row = PQgetvalue(r, (int)i, 4);
        cwpp_corr_key_t keys[CWPP_CORR_MAX_KEYS];
        size_t          nk;
        char            why[256];
        int             rc;

        if ((rc = cwpp_alert_from_row(row, strlen(row), &s->alerts[i], why, sizeof(why))) !=
            CWPP_OK)
            return cwpp_seterr(errstr, errstr_size, rc == CWPP_ENOMEM ? rc : CWPP_EDATA,
                               "a member of event %s cannot be read back: %s",
                               PQgetvalue(r, (int)i, 0), why);
        s->n = i + 1;
        s->mevent[i] = PQgetvalue(r, (int)i, 0);
        s->members[i] = (cwpp_corr_member_t){&s->alerts[i],
                                             strtoll(PQgetvalue(r, (int)i, 1), NULL, 10),
                                             strtoll(PQgetvalue(r, (int)i, 2), NULL, 10),
                                             strtoll(PQgetvalue(r, (int)i, 3), NULL, 10)};
        nk = cwpp_corr_keys(&s->alerts[i], keys);
        for (j = 0; j < nk; j++) {
            if (cwpp_corr_key_string(s->alerts[i].account_id, &keys[j], s->heldkeys[s->nheld],
                                     CWPP_CORR_KEY_MAX) != 0)
                continue;
            s->held[s->nheld] = (cwpp_corr_keyref_t){s->heldkeys[s->nheld], s->mevent[i],
                                                     s->alerts[i].alert_id};
            s->nheld++;
        }
    }
    return CWPP_OK;
}

/* e's figures, level and graph from its members (the run [from, to) of s). */
static int rebuild_one(corr_t *c, evs_t *e, const mset_t *s, size_t from, size_t to,
                       char *errstr, size_t errstr_size)
{
    json_t *sum;
    size_t  i;
    int     rc;

    if ((rc = cwpp_ev_rebuild(s->members + from, to - from, e->summary, &c->ac, &sum)) !=
        CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "cannot rebuild event %s", e->id);
    if ((json_object_get(sum, "stages") == NULL &&
         json_object_set_new(sum, "stages", json_array()) != 0) ||
        (json_object_get(sum, "sources") == NULL &&
         json_object_set_new(sum, "sources", json_array()) != 0)) {
        json_decref(sum);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    json_decref(e->summary);
    e->summary = sum;
    if (!e->level_fixed && json_object_get(sum, "sev") != NULL)
        e->level = (int)corr_sgeti(sum, "sev");
    for (i = from; i < to; i++)
        corr_row_member_edges(&c->w, e->id, s->members[i].alert, s->members[i].first_ms,
                              s->members[i].last_ms, i);
    return CWPP_OK;
}

int corr_rebuild(corr_t *c, char *errstr, size_t errstr_size)
{
    rows_t            *w = &c->w;
    PGresult          *r_mem = NULL, *r_keys = NULL;
    cwpp_pg_stmt_t     q[6];
    mset_t             s = {0};
    const char        *j_ids, **ids = NULL, **oev = NULL, **oal = NULL;
    cwpp_corr_keyref_t *owned = NULL;
    size_t             nq = 0, nids = 0, i, k, nown;
    int                rc;

    for (i = 0; i < c->nevs; i++)
        if (c->evlist[i]->rebuild) {
            corr_row_str(&w->rebuilt, c->evlist[i]->id);
            nids++;
        }
    if (nids == 0)
        return CWPP_OK;
    if ((j_ids = corr_rw_text(&w->rebuilt)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[nq++] = (cwpp_pg_stmt_t){"members", 1, {j_ids}, PGRES_TUPLES_OK, &r_mem};
    q[nq++] = (cwpp_pg_stmt_t){"owned_keys", 1, {j_ids}, PGRES_TUPLES_OK, &r_keys};
    if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((rc = mset_read(&s, r_mem, errstr, errstr_size)) != CWPP_OK)
        goto out;

    /* the graph and the keys are written again: the batch's own rows were sent already */
    corr_rw_start(&w->edges);
    corr_rw_start(&w->keys);
    ids = calloc(nids, sizeof(*ids));
    nown = (size_t)PQntuples(r_keys);
    owned = calloc(nown + 1, sizeof(*owned));
    oev = calloc(nown + 1, sizeof(*oev));
    oal = calloc(nown + 1, sizeof(*oal));
    if (ids == NULL || owned == NULL || oev == NULL || oal == NULL) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0, k = 0; i < c->nevs; i++) {
        evs_t *e = c->evlist[i];
        size_t from, to;

        if (!e->rebuild)
            continue;
        ids[k++] = e->id;
        for (from = 0; from < s.n && strcmp(s.mevent[from], e->id) != 0; from++)
            ;
        for (to = from; to < s.n && strcmp(s.mevent[to], e->id) == 0; to++)
            ;
        if ((rc = rebuild_one(c, e, &s, from, to, errstr, errstr_size)) != CWPP_OK)
            goto out;
    }
    for (i = 0; i < nown; i++)
        owned[i] = (cwpp_corr_keyref_t){PQgetvalue(r_keys, (int)i, 0),
                                        PQgetvalue(r_keys, (int)i, 1),
                                        PQgetvalue(r_keys, (int)i, 2)};
    cwpp_corr_keys_reassign(owned, nown, s.held, s.nheld, ids, nids, oev, oal);
    for (i = 0; i < nown; i++) {
        const evs_t *e;

        if (oev[i] == NULL) {
            corr_row_str(&w->dropkeys, owned[i].key);
            continue;
        }
        if (strcmp(oev[i], owned[i].event_id) == 0 && strcmp(oal[i], owned[i].alert_id) == 0)
            continue; /* unchanged */
        e = NULL;
        for (k = 0; k < c->nevs && e == NULL; k++)
            if (strcmp(c->evlist[k]->id, oev[i]) == 0)
                e = c->evlist[k];
        corr_row_key(w, owned[i].key, e != NULL ? e->account : "", oev[i], oal[i], i);
    }
    {
        const char *j_edges = corr_rw_text(&w->edges), *j_keys = corr_rw_text(&w->keys),
                   *j_drop = corr_rw_text(&w->dropkeys);

        if (j_edges == NULL || j_keys == NULL || j_drop == NULL) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto out;
        }
        nq = 0;
        q[nq++] = (cwpp_pg_stmt_t){"edges_clear", 1, {j_ids}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"edges_upsert", 1, {j_edges}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"keys_drop", 2, {j_drop, j_ids}, PGRES_COMMAND_OK, NULL};
        q[nq++] = (cwpp_pg_stmt_t){"keys_upsert", 1, {j_keys}, PGRES_COMMAND_OK, NULL};
        rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size);
    }
out:
    mset_free(&s);
    free(ids);
    free(owned);
    free(oev);
    free(oal);
    PQclear(r_mem);
    PQclear(r_keys);
    return rc;
}
