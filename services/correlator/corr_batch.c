/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_batch.c: one worker's batch as one transaction, in explicit steps (run_tx):
 *   load    BEGIN; the fence (this group's offset rows, created and locked); the events
 *           the batch's keys and alert ids point at (locked); their keys and memberships;
 *           notifications already sent for these offsets (a batch redelivered after a
 *           crash re-sends them);
 *   decide  each fresh alert in order (libs/correlate): index, event figures, rows;
 *   write   events' alerts, entities, graph edges and keys; the 30-day figures of the
 *           touched events' IPs; then the assessments;
 *   commit  the events rows, new notifications, the fence moved, COMMIT;
 *   emit    after the commit only: snapshots and notifications into the outbox.
 * load, write and commit are one pipelined round trip each. The touched events live in
 * a small hash table for the batch; nothing survives a batch but buffers.
 */
#include "corr_internal.h"

#include <assert.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"
#include "cwpp_snapshot.h"

/* ------------------------------------------------------------- the events */

static void evs_free(evs_t *e)
{
    if (e == NULL)
        return;
    free(e->account);
    free(e->owner);
    free(e->predecessor);
    free(e->merged_into);
    json_decref(e->summary);
    json_decref(e->assessment);
    free(e->stored_assessment);
    free(e);
}

void corr_evs_reset(corr_t *c)
{
    size_t i;

    for (i = 0; i < c->nevs; i++)
        evs_free(c->evlist[i]);
    if (c->evs != NULL)
        memset(c->evs, 0, c->evs_cap * sizeof(*c->evs));
    c->nevs = 0;
    for (i = 0; i < c->nipstats; i++)
        free(c->ipaccts[i]);
    c->nipstats = 0;
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

evs_t *corr_ev_find(corr_t *c, const char *id)
{
    size_t i;

    if (c->evs_cap == 0)
        return NULL;
    for (i = fnv(id) & (c->evs_cap - 1); c->evs[i] != NULL; i = (i + 1) & (c->evs_cap - 1))
        if (strcmp(c->evs[i]->id, id) == 0)
            return c->evs[i];
    return NULL;
}

/* Sizes the table for n more events (called once per batch with an upper bound). */
int corr_ev_reserve(corr_t *c, size_t n)
{
    size_t cap = 64;

    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap <= c->evs_cap)
        return CWPP_OK;
    free(c->evs);
    free(c->evlist);
    c->evs = calloc(cap, sizeof(*c->evs));
    c->evlist = calloc(cap, sizeof(*c->evlist));
    c->evs_cap = c->evs != NULL && c->evlist != NULL ? cap : 0;
    return c->evs_cap ? CWPP_OK : CWPP_ENOMEM;
}

evs_t *corr_ev_add(corr_t *c, const char *id, const char *account)
{
    evs_t *e;
    size_t i;

    if (c->nevs + 1 > c->evs_cap / 2 || (e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->account = strdup(account);
    e->summary = json_object();
    e->level = 4;
    e->urgency = CWPP_URG_LOW;
    snprintf(e->status, sizeof(e->status), "%s", cwpp_event_status_name(CWPP_EVS_UNHANDLED));
    if (e->account == NULL || e->summary == NULL) {
        evs_free(e);
        return NULL;
    }
    for (i = fnv(id) & (c->evs_cap - 1); c->evs[i] != NULL; i = (i + 1) & (c->evs_cap - 1))
        ;
    c->evs[i] = e;
    c->evlist[c->nevs++] = e;
    return e;
}

static int level_rank(const char *s)
{
    cwpp_severity_t v;

    return s != NULL && cwpp_severity_parse(s, &v) == 0 ? (int)v : 4;
}

/* ------------------------------------------------------------ the records */

static int ensure_items(corr_t *c, size_t n)
{
    item_t *ni;

    if (n <= c->items_cap)
        return CWPP_OK;
    ni = realloc(c->items, n * sizeof(*ni));
    if (ni == NULL)
        return CWPP_ENOMEM;
    memset(ni + c->items_cap, 0, (n - c->items_cap) * sizeof(*ni));
    c->items = ni;
    c->items_cap = n;
    return CWPP_OK;
}

/* 1 when the alert's account and asset ids keep the contract's bounds: they are index
 * keys as they are (events, entity_alerts), unlike entity values, which the database
 * bounds itself (migration 009). */
static int ids_bounded(const cwpp_alert_t *a)
{
    size_t i;

    if (strlen(a->account_id) > CORR_MAX_ACCOUNT_BYTES ||
        strlen(a->asset.id) > CORR_MAX_ASSET_BYTES)
        return 0;
    for (i = 0; i < a->n_entities; i++)
        if (a->entities[i].asset_id != NULL &&
            strlen(a->entities[i].asset_id) > CORR_MAX_ASSET_BYTES)
            return 0;
    return 1;
}

/* Validates one record into it (decoded alert or a dead-letter reason). */
static void take(corr_t *c, item_t *it, rd_kafka_message_t *m, int64_t now)
{
    char why[256];

    cwpp_alert_clear(&it->alert);
    memset(it, 0, sizeof(*it));
    it->m = m;
    if (m->len > (size_t)c->conf->max_message_bytes) {
        it->code = "oversized";
        snprintf(it->reason, sizeof(it->reason),
                 "the record has %zu bytes, more than correlator.max.message.bytes (%lld)",
                 m->len, (long long)c->conf->max_message_bytes);
        return;
    }
    if (cwpp_alert_from_avro(c->t_alert, m->payload, m->len, &c->v_alert, &it->alert, why,
                             sizeof(why)) != CWPP_OK) {
        it->code = "bad_avro";
        snprintf(it->reason, sizeof(it->reason), "not a valid Alert record: %s", why);
        return;
    }
    if (!cwpp_alert_id_valid(it->alert.alert_id)) {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason),
                 "the alert id is not \"al-\" and 32 hex digits");
    } else if (it->alert.account_id == NULL || it->alert.account_id[0] == '\0' ||
               it->alert.asset.id == NULL || it->alert.asset.id[0] == '\0') {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason), "the alert has no account or no asset id");
    } else if (!ids_bounded(&it->alert)) {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason),
                 "the account id is longer than %d bytes or an asset id longer than %d "
                 "(docs/alert-format.md)", CORR_MAX_ACCOUNT_BYTES, CORR_MAX_ASSET_BYTES);
    } else if (it->alert.occurred_at_ms > now + c->conf->max_future_ms) {
        it->code = "future_time";
        snprintf(it->reason, sizeof(it->reason),
                 "the alert occurred %lld s in the future, more than correlator.max.future.ms",
                 (long long)((it->alert.occurred_at_ms - now) / 1000));
    } else if ((it->alert.status == CWPP_ST_MANUALLY_WHITELISTED ||
                it->alert.status == CWPP_ST_AUTOMATICALLY_WHITELISTED) &&
               it->alert.transition == CWPP_TR_WHITELISTED) {
        it->ok = it->leave = 1; /* whitelisted after it was accepted: it leaves its events */
        return;
    } else if (it->alert.transition == CWPP_TR_WHITELISTED) {
        it->code = "invalid_alert";
        snprintf(it->reason, sizeof(it->reason),
                 "transition whitelisted on a %s alert: only a whitelisted alert leaves "
                 "its events", cwpp_status_name(it->alert.status));
    } else if (it->alert.status == CWPP_ST_MANUALLY_WHITELISTED ||
               it->alert.status == CWPP_ST_AUTOMATICALLY_WHITELISTED) {
        it->code = "whitelisted";
        snprintf(it->reason, sizeof(it->reason),
                 "a %s alert on the accepted topic: whitelisted alerts never join events",
                 cwpp_status_name(it->alert.status));
    } else {
        it->ok = 1;
        return;
    }
    cwpp_alert_clear(&it->alert);
}

/* The slot of alert id in the batch's sequence table (created with seq 0: nothing
 * applied yet); NULL only if the table is full, which seqs_reset's sizing rules out. */
static seqent_t *seq_slot(corr_t *c, const char *id)
{
    size_t h = 5381, i, k;

    for (k = 0; id[k] != '\0'; k++)
        h = h * 33 + (unsigned char)id[k];
    for (i = 0; i < c->seqs_cap; i++) {
        seqent_t *s = &c->seqs[(h + i) & (c->seqs_cap - 1)];

        if (!s->used) {
            s->used = 1;
            s->seq = 0;
            snprintf(s->id, sizeof(s->id), "%s", id);
            return s;
        }
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

/* Empties the sequence table, sized for n alerts at most half full. */
static int seqs_reset(corr_t *c, size_t n)
{
    size_t cap = 64;

    while (cap < 2 * n)
        cap *= 2;
    if (cap > c->seqs_cap) {
        seqent_t *ns = realloc(c->seqs, cap * sizeof(*ns));

        if (ns == NULL)
            return CWPP_ENOMEM;
        c->seqs = ns;
        c->seqs_cap = cap;
    }
    memset(c->seqs, 0, c->seqs_cap * sizeof(*c->seqs));
    return CWPP_OK;
}

int corr_seed_events(corr_t *c, cwpp_corr_index_t *ix, const PGresult *r_ev)
{
    int i;

    for (i = 0; i < PQntuples(r_ev); i++) {
        const char        *id = PQgetvalue(r_ev, i, 0), *st = PQgetvalue(r_ev, i, 2);
        evs_t             *e = corr_ev_add(c, id, PQgetvalue(r_ev, i, 1));
        json_error_t       jerr;
        cwpp_event_state_t state = cwpp_event_status_state(st);

        if (e == NULL)
            return CWPP_ENOMEM;
        snprintf(e->status, sizeof(e->status), "%s", st);
        if (!PQgetisnull(r_ev, i, 5) && (e->owner = strdup(PQgetvalue(r_ev, i, 5))) == NULL)
            return CWPP_ENOMEM;
        if (!PQgetisnull(r_ev, i, 6) &&
            (e->predecessor = strdup(PQgetvalue(r_ev, i, 6))) == NULL)
            return CWPP_ENOMEM;
        if (cwpp_urgency_parse(PQgetvalue(r_ev, i, 7), &e->urgency) != 0)
            e->urgency = CWPP_URG_LOW;
        json_decref(e->summary);
        e->summary = json_loads(PQgetvalue(r_ev, i, 8), 0, &jerr);
        if (!json_is_object(e->summary)) {
            json_decref(e->summary);
            e->summary = json_object();
            if (e->summary == NULL)
                return CWPP_ENOMEM;
        }
        e->version = strtoll(PQgetvalue(r_ev, i, 9), NULL, 10);
        if ((e->stored_assessment = strdup(PQgetvalue(r_ev, i, 11))) == NULL)
            return CWPP_ENOMEM;
        e->level = level_rank(PQgetvalue(r_ev, i, 10));
        if (PQnfields(r_ev) > 13 && !PQgetisnull(r_ev, i, 13) &&
            (e->merged_into = strdup(PQgetvalue(r_ev, i, 13))) == NULL)
            return CWPP_ENOMEM;
        e->level_fixed = PQgetvalue(r_ev, i, 12)[0] == 't';
        if (cwpp_corr_index_seed_event(ix, id, e->account, state,
                                       strtoll(PQgetvalue(r_ev, i, 3), NULL, 10),
                                       strtoll(PQgetvalue(r_ev, i, 4), NULL, 10)) == CWPP_ENOMEM)
            return CWPP_ENOMEM;
    }
    return CWPP_OK;
}

/* Loads the locked events, their keys and memberships into ix and the touched table,
 * and the highest occurrence applied of each of the batch's n alerts. */
static int seed(corr_t *c, cwpp_corr_index_t *ix, PGresult *r_ev, PGresult *r_keys,
                PGresult *r_alerts, size_t n)
{
    int i;

    if (seqs_reset(c, n + (size_t)PQntuples(r_alerts)) != CWPP_OK ||
        corr_seed_events(c, ix, r_ev) != CWPP_OK)
        return CWPP_ENOMEM;
    c->load_moved = 0;
    for (i = 0; i < PQntuples(r_keys); i++) {
        int rc = cwpp_corr_index_seed_key(ix, PQgetvalue(r_keys, i, 0),
                                          PQgetvalue(r_keys, i, 1), PQgetvalue(r_keys, i, 2));

        if (rc == CWPP_ENOMEM)
            return CWPP_ENOMEM;
        c->load_moved |= rc == CWPP_ENOTFOUND;
    }
    for (i = 0; i < PQntuples(r_alerts); i++) {
        seqent_t *s;
        int       rc = cwpp_corr_index_seed_alert(ix, PQgetvalue(r_alerts, i, 0),
                                                  PQgetvalue(r_alerts, i, 1));

        if (rc == CWPP_ENOMEM || (s = seq_slot(c, PQgetvalue(r_alerts, i, 0))) == NULL)
            return CWPP_ENOMEM;
        c->load_moved |= rc == CWPP_ENOTFOUND;
        if (PQgetisnull(r_alerts, i, 2)) { /* a row from before sequences */
            if (s->seq == 0)
                s->seq = -1;
        } else {
            int64_t q = strtoll(PQgetvalue(r_alerts, i, 2), NULL, 10);

            if (q > s->seq)
                s->seq = q;
        }
    }
    return CWPP_OK;
}

/* How many occurrences an alert record adds: those since the highest one applied for
 * its alert (0: a repeat of an occurrence applied before, emitted again upstream), and
 * moves that mark. A record stands for several occurrences when emissions before it
 * were lost upstream and ingest's redelivery emitted the latest count. */
static int64_t seq_advance(corr_t *c, const cwpp_alert_t *a)
{
    seqent_t *s = seq_slot(c, a->alert_id);
    int64_t   n;

    if (s == NULL || a->occurrences < 1)
        return 1; /* cannot happen (sized table; ingest counts from 1): count the record */
    if (s->seq < 0)
        n = 1; /* only rows from before sequences: count the record, as they did */
    else if (a->occurrences <= s->seq)
        return 0;
    else
        n = a->occurrences - s->seq;
    s->seq = a->occurrences;
    return n;
}

/* Decides and applies one fresh alert: index, event figures, rows. */
static int apply(corr_t *c, cwpp_corr_index_t *ix, item_t *it, size_t ord, rows_t *w)
{
    cwpp_alert_t    *a = &it->alert;
    cwpp_corr_key_t  keys[CWPP_CORR_MAX_KEYS];
    evs_t           *e;
    size_t           i;
    int64_t          occ = seq_advance(c, a);
    char             ks[CWPP_CORR_MAX_KEYS][CWPP_CORR_KEY_MAX];
    const char      *before[CWPP_CORR_MAX_KEYS], *by;
    size_t           nk;

    const char      *prev_ev = NULL;
    cwpp_event_state_t prev_st = CWPP_EV_OPEN;
    char             prev[CWPP_EVENT_ID_LEN + 1] = "";

    if (cwpp_corr_index_alert_event(ix, a->alert_id, &prev_ev, &prev_st) == CWPP_OK) {
        if (a->transition == CWPP_TR_RESTORED)
            return CWPP_OK; /* removed from the whitelist but still a member: only its
                             * status changed (whitelist-filter's), no occurrence */
        snprintf(prev, sizeof(prev), "%s", prev_ev);
    }
    if (occ == 0) { /* applied before: nothing moves */
        c->n.repeats++;
        return CWPP_OK;
    }
    nk = cwpp_corr_keys(a, keys);
    for (i = 0; i < nk; i++) { /* who owned each key before: only changes are written */
        before[i] = NULL;
        if (cwpp_corr_key_string(a->account_id, &keys[i], ks[i], sizeof(ks[i])) != 0)
            ks[i][0] = '\0';
        else if (cwpp_corr_index_key_owner(ix, ks[i], &before[i], &by) != CWPP_OK)
            before[i] = NULL;
    }
    if (cwpp_corr_decide(ix, a, &it->d) != CWPP_OK)
        return CWPP_EINVAL;
    if (cwpp_corr_index_apply(ix, a, &it->d) != CWPP_OK)
        return CWPP_ENOMEM;
    if (prev[0] != '\0' && prev_st == CWPP_EV_HANDLED && !it->d.recurrence &&
        strcmp(prev, it->d.event_id) != 0) {
        /* recurred after its event was handled: unhandled in the event it joins now, so
         * that event's own Handled cascade handles it (only if it is handled now) */
        corr_row_reopen(w, a->alert_id, it->d.event_id, prev);
        c->n.reopened++;
    }
    e = corr_ev_find(c, it->d.event_id);
    if (e == NULL) {
        if ((e = corr_ev_add(c, it->d.event_id, a->account_id)) == NULL)
            return CWPP_ENOMEM;
        e->is_new = 1;
        if (it->d.predecessor[0] && (e->predecessor = strdup(it->d.predecessor)) == NULL)
            return CWPP_ENOMEM;
        c->n.opened++;
    } else if (!it->d.recurrence) {
        c->n.joined++;
    }
    it->ev = e;
    e->changed = e->touched = 1;
    e->src = it->m;
    if (a->defense != CWPP_DEF_PRECISION && a->occurred_at_ms > e->note_at)
        e->note_at = a->occurred_at_ms;
    if (it->d.recurrence)
        c->n.recurrences++;
    if (cwpp_ev_summary_add_n(e->summary, a, !it->d.recurrence, occ, &c->ac) != CWPP_OK)
        return CWPP_ENOMEM;

    corr_row_alert(w, e->id, a, &it->d, ord, occ);
    for (i = 0; i < nk; i++) {
        const char *owner;

        if (ks[i][0] == '\0' || cwpp_corr_index_key_owner(ix, ks[i], &owner, &by) != CWPP_OK ||
            (before[i] != NULL && strcmp(before[i], owner) == 0))
            continue; /* unchanged */
        corr_row_key(w, ks[i], a->account_id, owner, by, ord); /* the owner after it */
    }
    c->n.alerts++;
    return CWPP_OK;
}

/* The changed events' level and version after this batch, and the IPs whose 30-day
 * figures the assessment needs. The events rows themselves are written by corr_assess(). */
int corr_event_prep(corr_t *c, rows_t *w)
{
    size_t i;

    for (i = 0; i < c->nevs; i++) {
        evs_t      *e = c->evlist[i];
        json_t     *s = e->summary, *ips = json_object_get(s, "ips"), *v;
        const char *ip;
        int         sev;

        if (!e->changed)
            continue;
        if ((json_object_get(s, "stages") == NULL &&
             json_object_set_new(s, "stages", json_array()) != 0) ||
            (json_object_get(s, "sources") == NULL &&
             json_object_set_new(s, "sources", json_array()) != 0))
            return CWPP_ENOMEM;
        sev = (int)corr_sgeti(s, "sev");
        if (sev < e->level && !e->level_fixed)
            e->level = sev;
        e->version++;
        json_object_foreach(ips, ip, v)
            corr_row_ip(w, e->account, ip);
    }
    return w->ips.err ? CWPP_ENOMEM : CWPP_OK;
}

int corr_read_ipstats(corr_t *c, const PGresult *r)
{
    int i, n = PQntuples(r);

    if ((size_t)n > 0) {
        cwpp_ip_stat_t *ns = realloc(c->ipstats, (size_t)n * sizeof(*ns));
        char          **na;

        if (ns == NULL)
            return CWPP_ENOMEM;
        c->ipstats = ns;
        if ((na = realloc(c->ipaccts, (size_t)n * sizeof(*na))) == NULL)
            return CWPP_ENOMEM;
        c->ipaccts = na;
    }
    for (i = 0; i < n; i++) {
        char *acct = strdup(PQgetvalue(r, i, 0));
        char *ip = acct != NULL ? strdup(PQgetvalue(r, i, 1)) : NULL;
        char *both;

        if (ip == NULL) {
            free(acct);
            return CWPP_ENOMEM;
        }
        /* one allocation holds account and ip: "acct\0ip" */
        both = realloc(acct, strlen(acct) + strlen(ip) + 2);
        if (both == NULL) {
            free(acct);
            free(ip);
            return CWPP_ENOMEM;
        }
        strcpy(both + strlen(both) + 1, ip);
        free(ip);
        c->ipaccts[c->nipstats] = both;
        c->ipstats[c->nipstats] = (cwpp_ip_stat_t){both + strlen(both) + 1,
                                                   strtoll(PQgetvalue(r, i, 2), NULL, 10),
                                                   strtoll(PQgetvalue(r, i, 3), NULL, 10),
                                                   strtoll(PQgetvalue(r, i, 4), NULL, 10)};
        c->nipstats++;
    }
    return CWPP_OK;
}

/* The notification id of e: one per event, kind and urgency. */
static void note_id(const evs_t *e, char *id, size_t size)
{
    snprintf(id, size, "%s:%s:%s", e->id, e->note_kind == 1 ? "opened" : "raised",
             cwpp_urgency_name(e->note_urgency));
}

/* The notification record of e (kind 1 opened, 2 urgency raised) into c->buf. */
int corr_build_note(corr_t *c, const evs_t *e, char *errstr, size_t errstr_size)
{
    avro_value_t *v = &c->v_note, arr, x;
    const json_t *reasons = json_object_get(e->assessment, "reasons");
    char          id[128];
    size_t        i;
    int           rc = 0;

    avro_value_reset(v);
    note_id(e, id, sizeof(id));
    rc |= cwpp_avro_set_str(v, "notification_id", id);
    rc |= cwpp_avro_set_enum(v, "kind", e->note_kind == 1 ? "event_opened" : "urgency_raised");
    rc |= cwpp_avro_set_str(v, "event_id", e->id);
    rc |= cwpp_avro_set_str(v, "account_id", e->account);
    rc |= cwpp_avro_set_str(v, "name", json_string_value(json_object_get(e->summary, "name"))
                                           ? json_string_value(json_object_get(e->summary, "name"))
                                           : "");
    rc |= cwpp_avro_set_enum(v, "level", cwpp_severity_name((cwpp_severity_t)e->level));
    rc |= cwpp_avro_set_enum(v, "urgency", cwpp_urgency_name(e->note_urgency));
    if (avro_value_get_by_name(v, "previous_urgency", &x, NULL) != 0)
        rc = -1;
    else if (e->note_kind == 2) {
        avro_value_t b;

        rc |= avro_value_set_branch(&x, 1, &b);
        rc |= avro_value_set_enum(&b, (int)e->note_prev);
    } else {
        avro_value_t b;

        rc |= avro_value_set_branch(&x, 0, &b);
        rc |= avro_value_set_null(&b);
    }
    if (avro_value_get_by_name(v, "reasons", &arr, NULL) != 0)
        rc = -1;
    for (i = 0; rc == 0 && i < json_array_size(reasons); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(reasons, i), "text"));

        if (avro_value_append(&arr, &x, NULL) != 0 || avro_value_set_string(&x, t ? t : "") != 0)
            rc = -1;
    }
    rc |= cwpp_avro_set_int(v, "alert_count", (int32_t)corr_sgeti(e->summary, "alerts"));
    rc |= cwpp_avro_set_long(v, "at_ms", e->note_at);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot build Notification");
    cwpp_buf_reset(&c->buf);
    return cwpp_avro_encode(c->t_note, v, &c->buf, errstr, errstr_size);
}

/* notifications.set (the responder; migration 022): the settings of the accounts of the
 * batch's changed events, read once per batch in its transaction (one round trip), as
 * rows (account_id, enabled, rank of min_level 0 critical .. 3 low) into *out. An
 * account without a row has the default: on, from low. 0, or a database error. */
static int note_settings(corr_t *c, PGresult **out, char *errstr, size_t errstr_size)
{
    json_t     *accts = json_array();
    char       *text = NULL;
    const char *p[1];
    size_t      i;
    int         rc;

    for (i = 0; accts != NULL && i < c->nevs; i++)
        if (c->evlist[i]->changed &&
            json_array_append_new(accts, json_string(c->evlist[i]->account)) != 0)
            break;
    if (accts == NULL || i < c->nevs || (text = json_dumps(accts, JSON_COMPACT)) == NULL) {
        json_decref(accts);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    json_decref(accts);
    p[0] = text;
    rc = cwpp_pg_query(c->pg, "SELECT account_id, enabled, array_position('{critical,high,"
                       "medium,low}'::text[], min_level) - 1 FROM notification_settings "
                       "WHERE account_id IN (SELECT json_array_elements_text($1::json))", 1,
                       p, PGRES_TUPLES_OK, out, errstr, errstr_size);
    free(text);
    return rc;
}

/* 1 when the account of e wants a notification about it now (settings: note_settings):
 * its setting is on and e's level is at least its minimum level, or it has none. */
static int note_wanted(const PGresult *settings, const evs_t *e)
{
    int i, level = e->level < 4 ? e->level : 3;

    for (i = 0; i < PQntuples(settings); i++)
        if (strcmp(PQgetvalue(settings, i, 0), e->account) == 0)
            return PQgetvalue(settings, i, 1)[0] == 't' &&
                   level <= atoi(PQgetvalue(settings, i, 2));
    return 1;
}

/* Assessments and notifications of the changed events; settings: note_settings. */
static int assess_events(corr_t *c, rows_t *w, int64_t now, const PGresult *settings,
                         char *errstr, size_t errstr_size)
{
    size_t i, j;
    int    rc = 0;

    for (i = 0; i < c->nevs; i++) {
        evs_t            *e = c->evlist[i];
        cwpp_assessment_t as;
        cwpp_ip_stat_t    mine[64];
        size_t            nm = 0;
        const char       *notified;
        cwpp_urgency_t    prev;

        if (!e->changed)
            continue;
        for (j = 0; j < c->nipstats && nm < 64; j++)
            if (strcmp(c->ipaccts[j], e->account) == 0)
                mine[nm++] = c->ipstats[j];
        if (cwpp_ev_assess(e->summary, &c->ac, now, mine, nm, &as) != CWPP_OK)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        e->urgency = as.urgency;
        json_decref(e->assessment);
        e->assessment = json_pack("{s:o, s:o, s:I}", "reasons", as.reasons, "recommendations",
                                  as.recommendations, "assessed_at", (json_int_t)now);
        if (e->assessment == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        /* notifications: once the event holds an alert that is not precision defence,
         * then whenever the urgency rises above the one last notified; the urgency is the
         * one every reader shows (libs/correlate's quiet rule: an event whose latest
         * alert is over a day old is one step lower) */
        e->note_urgency = cwpp_urgency_as_of(e->urgency, corr_sgeti(e->summary, "last_ms"), now,
                                             CWPP_QUIET_HOURS_DEFAULT, NULL);
        notified = json_string_value(json_object_get(e->summary, "notified"));
        if (e->note_at > 0 && corr_sgeti(e->summary, "non_pd") > 0) {
            if (notified == NULL || notified[0] == '\0')
                e->note_kind = 1;
            else if (cwpp_urgency_parse(notified, &prev) == 0 && e->note_urgency < prev) {
                e->note_kind = 2;
                e->note_prev = prev;
            }
        }
        /* the account may have switched them off (notifications.set); not marked
         * notified then: it notifies at a change once it wants it again */
        if (e->note_kind && !note_wanted(settings, e))
            e->note_kind = 0;
        if (e->note_kind) {
            char id[128];

            if (json_object_set_new(e->summary, "notified",
                                    json_string(cwpp_urgency_name(e->note_urgency))) != 0)
                return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            if ((rc = corr_build_note(c, e, errstr, errstr_size)) != CWPP_OK)
                return rc;
            note_id(e, id, sizeof(id));
            corr_row_note(w, id, e, c->buf.data, c->buf.len);
        }
        corr_row_event(w, e);
    }
    if (w->notes.err || w->events.err)
        rc = -1;
    return rc ? cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory") : CWPP_OK;
}

/* Assessments and notifications of the changed events, with the batch's notification
 * settings (read once here). */
int corr_assess(corr_t *c, rows_t *w, int64_t now, char *errstr, size_t errstr_size)
{
    PGresult *settings = NULL;
    int       rc = note_settings(c, &settings, errstr, errstr_size);

    if (rc == CWPP_OK)
        rc = assess_events(c, w, now, settings, errstr, errstr_size);
    PQclear(settings);
    return rc;
}

/* The snapshot record of e (libs/snapshot) into c->buf. */
int corr_build_snapshot(corr_t *c, evs_t *e, int64_t now, char *errstr, size_t errstr_size)
{
    const json_t   *s = e->summary;
    cwpp_snapshot_t snap;

    if (e->assessment == NULL && e->stored_assessment != NULL) {
        json_error_t jerr;

        e->assessment = json_loads(e->stored_assessment, 0, &jerr); /* NULL: no reasons */
    }
    snap = (cwpp_snapshot_t){
        .event_id = e->id,
        .account_id = e->account,
        .name = json_string_value(json_object_get(s, "name")),
        .level = cwpp_severity_name((cwpp_severity_t)(e->level < 4 ? e->level : 3)),
        .status = e->status,
        .owner = e->owner,
        .predecessor = e->predecessor,
        .stages = json_object_get(s, "stages"),
        .sources = json_object_get(s, "sources"),
        .alert_count = corr_sgeti(s, "alerts"),
        .occurrences = corr_sgeti(s, "occurrences"),
        .assets = json_object_get(s, "assets"),
        .first_seen_ms = corr_sgeti(s, "first_ms"),
        .last_seen_ms = corr_sgeti(s, "last_ms"),
        .urgency = cwpp_urgency_name(e->urgency),
        .assessment = e->assessment,
        .version = e->version,
        .updated_at_ms = now,
        .merged_into = e->merged_into,
    };
    cwpp_buf_reset(&c->buf);
    return cwpp_snapshot_encode(c->t_event, &c->v_event, &snap, &c->buf, errstr, errstr_size);
}

/* ------------------------------------------------------ the transaction */

/* What the steps of one batch's transaction share. */
typedef struct tx {
    size_t             n;         /* records in the batch */
    int64_t            now;
    cwpp_corr_index_t *ix;        /* the loaded events' index, for this batch only */
    const char        *parts;     /* the batch's partitions as JSON (cwpp_fence_json) */
    PGresult          *r_notes;   /* notifications already sent for these records */
    PGresult          *r_al;      /* the memberships of the batch's alerts, as loaded */
    item_t            *items;     /* the records of this transaction (n) */
    size_t             changed;   /* events the batch changed */
} tx_t;

/* Step 1, load: BEGIN; the fence (this group's offset rows, created and locked); the
 * events the batch's keys and alert ids point at (locked), their keys and memberships;
 * the notifications already sent for these offsets. One round trip. */
static int tx_load(corr_t *c, tx_t *tx, char *errstr, size_t errstr_size)
{
    PGresult      *r_lock = NULL, *r_ev = NULL, *r_keys = NULL;
    cwpp_pg_stmt_t q[8];
    const char    *keys = NULL, *ids = NULL;
    size_t         nq = 0;
    int            rc;

    if (corr_json_lookup(&c->j_keys, &c->j_ids, tx->items, tx->n, &keys, &ids) != CWPP_OK ||
        /* each alert may point at an event per key and one by membership, and open one */
        corr_ev_reserve(c, (CWPP_CORR_MAX_KEYS + 2) * tx->n + 16) != CWPP_OK ||
        (tx->ix = cwpp_corr_index_new(c->conf->window_ms)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[nq++] = (cwpp_pg_stmt_t){"BEGIN", -1, {0}, PGRES_COMMAND_OK, NULL};
    if ((rc = cwpp_fence_lock_stmts(c->fence, q + nq, &r_lock, errstr, errstr_size)) != CWPP_OK)
        return rc;
    nq += CWPP_FENCE_LOCK_NSTMTS;
    tx->parts = cwpp_fence_json(c->fence); /* t, p, lo, hi: load_notes reads them too */
    q[nq++] = (cwpp_pg_stmt_t){"load_events", 2, {keys, ids}, PGRES_TUPLES_OK, &r_ev};
    q[nq++] = (cwpp_pg_stmt_t){"load_keys", 1, {keys}, PGRES_TUPLES_OK, &r_keys};
    q[nq++] = (cwpp_pg_stmt_t){"load_alerts", 1, {ids}, PGRES_TUPLES_OK, &tx->r_al};
    q[nq++] = (cwpp_pg_stmt_t){"load_notes", 1, {tx->parts}, PGRES_TUPLES_OK, &tx->r_notes};
    if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((rc = cwpp_fence_read(c->fence, r_lock, errstr, errstr_size)) == CWPP_OK &&
        (rc = seed(c, tx->ix, r_ev, r_keys, tx->r_al, tx->n)) != CWPP_OK)
        cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    PQclear(r_lock); /* copied into the index and the touched events: free them early */
    PQclear(r_ev);
    PQclear(r_keys);
    return rc;
}

/* A whitelisted alert leaves every event holding it (as loaded: memberships of the
 * batch's alerts); those events are rebuilt from the members left (corr_members.c). */
static void leave(corr_t *c, tx_t *tx, item_t *it)
{
    int i;

    for (i = 0; i < PQntuples(tx->r_al); i++) {
        evs_t *e;

        if (strcmp(PQgetvalue(tx->r_al, i, 0), it->alert.alert_id) != 0 ||
            (e = corr_ev_find(c, PQgetvalue(tx->r_al, i, 1))) == NULL)
            continue;
        corr_row_leave(&c->w, e->id, it->alert.alert_id);
        e->rebuild = e->changed = e->touched = 1;
        e->src = it->m;
        c->n.left++;
    }
    cwpp_corr_index_forget_alert(tx->ix, it->alert.alert_id);
}

/* Step 2, decide: the alerts in the batch's order (per partition: the order of the topic).
 * A record the fence says was applied before changes nothing; its event's snapshot is
 * sent again. */
static int tx_decide(corr_t *c, tx_t *tx, char *errstr, size_t errstr_size)
{
    size_t i;
    int    rc;

    assert(cwpp_fence_nrecords(c->fence) == tx->n);
    for (i = 0; i < tx->n; i++) {
        item_t *it = &tx->items[i];

        it->fresh = !cwpp_fence_applied(c->fence, i); /* items[i] is the fence's record i */
        if (!it->fresh)
            c->n.replayed++;
        if (!it->ok)
            continue;
        if (it->leave) {
            if (it->fresh)
                leave(c, tx, it);
            continue;
        }
        if (!it->fresh) {
            /* applied before: re-send the snapshot of the event it is in */
            if (cwpp_corr_decide(tx->ix, &it->alert, &it->d) == CWPP_OK && it->d.recurrence &&
                (it->ev = corr_ev_find(c, it->d.event_id)) != NULL)
                it->ev->touched = 1;
            continue;
        }
        if ((rc = apply(c, tx->ix, it, i, &c->w)) != CWPP_OK)
            return cwpp_seterr(errstr, errstr_size, rc, "cannot apply alert %s",
                               it->alert.alert_id);
    }
    for (i = 0; i < tx->n; i++) /* decided: the rest of the batch needs only the events */
        cwpp_alert_clear(&tx->items[i].alert);
    for (i = 0; i < c->nevs; i++)
        tx->changed += c->evlist[i]->changed;
    if ((rc = corr_event_prep(c, &c->w)) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    return CWPP_OK;
}

/* Step 3, write: the rows of the changed events (they need no event row first:
 * migration 004), then the 30-day figures of their IPs, which count these rows; then the
 * assessments. One round trip; none when nothing changed. */
static int tx_write(corr_t *c, tx_t *tx, char *errstr, size_t errstr_size)
{
    rows_t        *w = &c->w;
    PGresult      *r_ips = NULL;
    cwpp_pg_stmt_t q[12];
    const char    *j_al, *j_ent, *j_touch, *j_edge, *j_keys, *j_ips, *j_leave, *j_reopen;
    size_t         nq = 0;
    int            rc;

    if (tx->changed == 0)
        return CWPP_OK;
    if ((j_al = corr_rw_text(&w->alerts)) == NULL ||
        (j_ent = corr_rw_text(&w->entities)) == NULL ||
        (j_touch = corr_rw_text(&w->touch)) == NULL ||
        (j_edge = corr_rw_text(&w->edges)) == NULL ||
        (j_keys = corr_rw_text(&w->keys)) == NULL || (j_ips = corr_rw_text(&w->ips)) == NULL ||
        (j_leave = corr_rw_text(&w->leave)) == NULL ||
        (j_reopen = corr_rw_text(&w->reopen)) == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    q[nq++] = (cwpp_pg_stmt_t){"alerts_upsert", 1, {j_al}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"entities_upsert", 1, {j_ent}, PGRES_COMMAND_OK, NULL};
    if (w->touch.n > 0)
        q[nq++] = (cwpp_pg_stmt_t){CORR_SQL_ENTITIES_TOUCH, 1 | CWPP_PG_UNPREPARED, {j_touch},
                                   PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"edges_upsert", 1, {j_edge}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){"keys_upsert", 1, {j_keys}, PGRES_COMMAND_OK, NULL};
    if (w->leave.n > 0)
        q[nq++] = (cwpp_pg_stmt_t){"leave", 1, {j_leave}, PGRES_COMMAND_OK, NULL};
    if (w->reopen.n > 0)
        q[nq++] = (cwpp_pg_stmt_t){"reopen", 1, {j_reopen}, PGRES_COMMAND_OK, NULL};
    q[nq++] = (cwpp_pg_stmt_t){CORR_SQL_IP_STATS, 1 | CWPP_PG_UNPREPARED, {j_ips}, PGRES_TUPLES_OK,
                               &r_ips};
    if ((rc = cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size)) != CWPP_OK)
        return rc;
    if ((rc = corr_rebuild(c, errstr, errstr_size)) != CWPP_OK) {
        PQclear(r_ips);
        return rc;
    }
    rc = corr_read_ipstats(c, r_ips);
    PQclear(r_ips);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    return corr_assess(c, w, tx->now, errstr, errstr_size);
}

/* Step 4, commit: the events rows, the new notifications, the fence moved past the batch,
 * COMMIT. One round trip. */
static int tx_commit(corr_t *c, tx_t *tx, char *errstr, size_t errstr_size)
{
    rows_t        *w = &c->w;
    cwpp_pg_stmt_t q[8];
    const char    *j_ev, *j_notes;
    size_t         nq = 0;

    if (tx->changed > 0) {
        if ((j_ev = corr_rw_text(&w->events)) == NULL ||
            (j_notes = corr_rw_text(&w->notes)) == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        q[nq++] = (cwpp_pg_stmt_t){"events_upsert", 1, {j_ev}, PGRES_COMMAND_OK, NULL};
        if (w->notes.n > 0)
            q[nq++] = (cwpp_pg_stmt_t){"notes_insert", 1, {j_notes}, PGRES_COMMAND_OK, NULL};
    }
    cwpp_fence_advance_stmt(c->fence, &q[nq++]);
    q[nq++] = (cwpp_pg_stmt_t){"COMMIT", -1, {0}, PGRES_COMMAND_OK, NULL};
    return cwpp_pg_pipeline(c->pg, q, nq, errstr, errstr_size);
}

/* Step 5, after the commit (durable): counts it, and queues what it produced: the
 * notifications sent before a crash again, the touched events' snapshots, the new
 * notifications. */
static int tx_emit(corr_t *c, tx_t *tx, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    size_t i;
    int    k, rc;

    cwpp_metric_add(c->m_alerts, c->n.alerts);
    cwpp_metric_add(c->m_recurrences, c->n.recurrences);
    cwpp_metric_add(c->m_opened, c->n.opened);
    cwpp_metric_add(c->m_joined, c->n.joined);
    cwpp_metric_add(c->m_replayed, c->n.replayed);
    cwpp_metric_add(c->m_repeats, c->n.repeats);
    cwpp_metric_add(c->m_left, c->n.left);
    cwpp_metric_add(c->m_reopened, c->n.reopened);
    for (k = 0; k < PQntuples(tx->r_notes); k++) { /* sent before a crash: send them again */
        size_t         len = 0;
        unsigned char *b = PQunescapeBytea(
            (const unsigned char *)PQgetvalue(tx->r_notes, k, 0), &len);
        const char    *ev = PQgetvalue(tx->r_notes, k, 1);

        if (b == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        rc = cwpp_outbox_add(out, CWPP_TOPIC_NOTIFICATIONS, ev, strlen(ev), b, len);
        PQfreemem(b);
        if (rc != CWPP_OK)
            return rc;
    }
    for (i = 0; i < c->nevs; i++) {
        evs_t *e = c->evlist[i];

        if (!e->touched)
            continue;
        if ((rc = corr_build_snapshot(c, e, tx->now, errstr, errstr_size)) != CWPP_OK ||
            (rc = cwpp_outbox_add(out, CWPP_TOPIC_EVENTS, e->id, strlen(e->id), c->buf.data,
                                  c->buf.len)) != CWPP_OK)
            return rc;
        cwpp_metric_add(c->m_snapshots, 1);
        if (e->note_kind) {
            if ((rc = corr_build_note(c, e, errstr, errstr_size)) != CWPP_OK ||
                (rc = cwpp_outbox_add(out, CWPP_TOPIC_NOTIFICATIONS, e->id, strlen(e->id),
                                      c->buf.data, c->buf.len)) != CWPP_OK)
                return rc;
            cwpp_metric_add(c->m_notes, 1);
        }
    }
    return CWPP_OK;
}

/* Runs the batch's transaction, load -> decide -> write -> commit, three round trips;
 * on success the outbox holds its records (emit). On failure the caller rolls back. */
static int run_tx(corr_t *c, item_t *items, size_t n, int64_t now, cwpp_outbox_t *out,
                  char *errstr, size_t errstr_size)
{
    tx_t tx = {.n = n, .now = now, .items = items};
    int  rc, attempt;

    for (attempt = 0;; attempt++) {
        size_t i;
        int    merged = 0;

        corr_evs_reset(c);
        corr_rows_start(&c->w);
        memset(&c->n, 0, sizeof(c->n));
        if ((rc = tx_load(c, &tx, errstr, errstr_size)) != CWPP_OK)
            break;
        /* an event merged while this load waited for its lock: the keys and memberships
         * it read moved to the survivor since (a merged event holds none); or a key or
         * membership read points at an event not locked (a detach, or a merge, committed
         * between the load's statements). Load again: the change has committed, the
         * statements now see where the rows went. Still moving after four loads: the
         * batch is rolled back and retried, never decided on a mixed view. */
        for (i = 0; i < c->nevs; i++)
            merged |= strcmp(c->evlist[i]->status, cwpp_event_status_name(CWPP_EVS_MERGED)) == 0;
        if (!merged && !c->load_moved)
            break;
        if (attempt == 3) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "the batch's events kept "
                             "changing while it loaded (merges or detaches); retrying it");
            break;
        }
        PQclear(tx.r_notes);
        PQclear(tx.r_al);
        cwpp_corr_index_destroy(tx.ix);
        tx = (tx_t){.n = n, .now = now, .items = items};
        if ((rc = cwpp_pg_command(c->pg, "ROLLBACK", errstr, errstr_size)) != CWPP_OK)
            return rc;
    }
    if (rc == CWPP_OK &&
        (rc = tx_decide(c, &tx, errstr, errstr_size)) == CWPP_OK &&
        (rc = tx_write(c, &tx, errstr, errstr_size)) == CWPP_OK &&
        (rc = tx_commit(c, &tx, errstr, errstr_size)) == CWPP_OK)
        rc = tx_emit(c, &tx, out, errstr, errstr_size);
    PQclear(tx.r_notes);
    PQclear(tx.r_al);
    cwpp_corr_index_destroy(tx.ix);
    return rc;
}

int corr_dead_letter(corr_t *c, const rd_kafka_message_t *m, const char *code,
                     const char *reason, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    cwpp_metric_add(c->m_dead, 1);
    cwpp_warn("dead_letter", "%s[%d]@%lld: %s (%s)", rd_kafka_topic_name(m->rkt), m->partition,
              (long long)m->offset, reason, code);
    return cwpp_service_dead_letter(c->t_rejected, &c->v_rejected, &c->buf, "correlator", m,
                                    code, reason, out, errstr, errstr_size);
}

int corr_failure_rc(int rc)
{
    return rc == CWPP_EDATA ? CWPP_EDATA : CWPP_ETRANSIENT;
}

/* One transaction over records [from, to) of the batch; on failure the rollback. */
static int run_range(corr_t *c, rd_kafka_message_t **msgs, size_t from, size_t to,
                     int64_t now, cwpp_outbox_t *out, char *errstr, size_t errstr_size)
{
    int rc;

    if ((rc = cwpp_fence_batch(c->fence, msgs + from, to - from, errstr, errstr_size)) !=
            CWPP_OK ||
        (rc = cwpp_pg_ensure(c->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = corr_prepare(c, errstr, errstr_size)) != CWPP_OK ||
        (rc = run_tx(c, c->items + from, to - from, now, out, errstr, errstr_size)) != CWPP_OK) {
        char ignore[64];

        /* the database refused the data: it is up (readiness stays), the batch is not */
        if (rc != CWPP_EDATA)
            atomic_store(&c->db_ok, 0);
        cwpp_metric_add(c->m_db_errors, 1);
        if (PQstatus(cwpp_pg_conn(c->pg)) == CONNECTION_OK)
            cwpp_pg_command(c->pg, "ROLLBACK", ignore, sizeof(ignore));
        if (PQstatus(cwpp_pg_conn(c->pg)) != CONNECTION_OK || rc == CWPP_ETRANSIENT) {
            cwpp_pg_reset(c->pg);
            c->prepared_on = NULL;
        }
        if (rc == CWPP_EDATA)
            cwpp_warn("db_refused", "batch of %zu records rolled back: %s", to - from, errstr);
        return corr_failure_rc(rc);
    }
    return CWPP_OK;
}

/* One command record in a transaction of its own (corr_commands.c). */
static int run_command(corr_t *c, rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    int rc;

    if ((rc = cwpp_pg_ensure(c->pg, errstr, errstr_size)) != CWPP_OK ||
        (rc = corr_prepare(c, errstr, errstr_size)) != CWPP_OK ||
        (rc = corr_apply_command(c, m, out, errstr, errstr_size)) != CWPP_OK) {
        if (rc != CWPP_EDATA)
            atomic_store(&c->db_ok, 0);
        cwpp_metric_add(c->m_db_errors, 1);
        if (PQstatus(cwpp_pg_conn(c->pg)) != CONNECTION_OK || rc != CWPP_EDATA) {
            cwpp_pg_reset(c->pg);
            c->prepared_on = NULL;
        }
        return corr_failure_rc(rc);
    }
    return CWPP_OK;
}

int corr_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
               char *errstr, size_t errstr_size)
{
    corr_t *c = opaque;
    size_t  i, from, to;
    int     rc;
    int64_t now = cwpp_now_ms(), t0;

    if (ensure_items(c, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        if (strcmp(rd_kafka_topic_name(msgs[i]->rkt), c->cmd_topic) == 0) {
            cwpp_alert_clear(&c->items[i].alert);
            memset(&c->items[i], 0, sizeof(c->items[i]));
            c->items[i].m = msgs[i];
            c->items[i].cmd = 1;
            continue;
        }
        take(c, &c->items[i], msgs[i], now);
    }

    t0 = cwpp_mono_ms();
    /* a whitelisted alert leaving its events, and a command, are transactions of their
     * own between the records before and after them: each sees what those before wrote */
    for (from = 0; from < n; from = to) {
        to = from + 1;
        if (c->items[from].cmd) {
            if ((rc = run_command(c, msgs[from], out, errstr, errstr_size)) != CWPP_OK)
                return rc;
            continue;
        }
        if (!c->items[from].leave)
            while (to < n && !c->items[to].leave && !c->items[to].cmd)
                to++;
        if ((rc = run_range(c, msgs, from, to, now, out, errstr, errstr_size)) != CWPP_OK)
            return rc;
    }
    atomic_store(&c->db_ok, 1);
    cwpp_metric_observe(c->m_db_seconds, (double)(cwpp_mono_ms() - t0) / 1000.0);
    if (n >= 256)
        malloc_trim(0); /* a large batch's trees are freed: give the pages back, so that
                         * fragmentation does not ratchet the peak up batch after batch */

    for (i = 0; i < n; i++) {
        item_t *it = &c->items[i];

        if (it->code == NULL)
            continue;
        if (corr_dead_letter(c, it->m, it->code, it->reason, out, errstr, errstr_size) !=
            CWPP_OK)
            return CWPP_ETRANSIENT;
    }
    return CWPP_OK;
}
