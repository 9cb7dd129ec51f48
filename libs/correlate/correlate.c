/* SPDX-License-Identifier: Apache-2.0 */
/*
 * correlate.c: correlation keys, the in-memory index of events by key, and the join /
 * open decision (cwpp_correlate.h).
 */
#include "cwpp_correlate.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- event statuses */

/* The event statuses, in enum order (docs/correlator.md, docs/responder.md). */
static const cwpp_event_status_def_t evs_tab[CWPP_EVS__COUNT] = {
    {CWPP_EVS_UNHANDLED, "unhandled", "Unhandled", CWPP_EV_OPEN},
    {CWPP_EVS_HANDLING,  "handling",  "Handling",  CWPP_EV_OPEN},
    {CWPP_EVS_HANDLED,   "handled",   "Handled",   CWPP_EV_HANDLED},
    {CWPP_EVS_FAILED,    "failed",    "Failed",    CWPP_EV_OPEN},
    {CWPP_EVS_MERGED,    "merged",    "Merged",    CWPP_EV_HANDLED},
};

const cwpp_event_status_def_t *cwpp_event_status_def(cwpp_event_status_t s)
{
    assert((unsigned)s < CWPP_EVS__COUNT && evs_tab[s].status == s);
    return &evs_tab[s];
}

const char *cwpp_event_status_name(cwpp_event_status_t s)
{
    return cwpp_event_status_def(s)->name;
}

int cwpp_event_status_parse(const char *s, cwpp_event_status_t *out)
{
    int i;

    for (i = 0; s != NULL && i < CWPP_EVS__COUNT; i++)
        if (strcmp(s, evs_tab[i].name) == 0) {
            *out = evs_tab[i].status;
            return 0;
        }
    return -1;
}

cwpp_event_state_t cwpp_event_status_state(const char *s)
{
    cwpp_event_status_t st;

    return cwpp_event_status_parse(s, &st) == 0 ? evs_tab[st].state : CWPP_EV_OPEN;
}

const char *cwpp_event_statuses_text(char *buf, size_t size, const char *sep,
                                     const char *last)
{
    const char *names[CWPP_EVS__COUNT];
    int         i;

    for (i = 0; i < CWPP_EVS__COUNT; i++)
        names[i] = evs_tab[i].name;
    return cwpp_names_join(buf, size, names, CWPP_EVS__COUNT, sep, last);
}

/* --------------------------------------------------------------- a string map */

typedef struct node {
    struct node *next;
    void        *val;
    char         key[]; /* NUL-terminated */
} node_t;

typedef struct map {
    node_t **b;
    size_t   nb, n;
} map_t;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static node_t **slot(const map_t *m, const char *k)
{
    node_t **p = &m->b[fnv(k) & (m->nb - 1)];

    while (*p != NULL && strcmp((*p)->key, k) != 0)
        p = &(*p)->next;
    return p;
}

static void *map_get(const map_t *m, const char *k)
{
    node_t *x = m->nb > 0 ? *slot(m, k) : NULL;

    return x != NULL ? x->val : NULL;
}

static int map_grow(map_t *m)
{
    size_t   nb = m->nb ? m->nb * 2 : 64, i;
    node_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return -1;
    for (i = 0; i < m->nb; i++) {
        node_t *x = m->b[i], *next;

        for (; x != NULL; x = next) {
            next = x->next;
            x->next = b[fnv(x->key) & (nb - 1)];
            b[fnv(x->key) & (nb - 1)] = x;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Sets k to val; returns the node (existing or new) or NULL on ENOMEM. */
static node_t *map_put(map_t *m, const char *k, void *val)
{
    node_t **p;
    size_t   len = strlen(k);

    if ((m->n + 1) * 2 > m->nb && map_grow(m) != 0)
        return NULL;
    p = slot(m, k);
    if (*p == NULL) {
        node_t *x = malloc(sizeof(*x) + len + 1);

        if (x == NULL)
            return NULL;
        memcpy(x->key, k, len + 1);
        x->next = NULL;
        *p = x;
        m->n++;
    }
    (*p)->val = val;
    return *p;
}

/* ------------------------------------------------------------------ the index */

typedef struct ev {
    char               id[CWPP_EVENT_ID_LEN + 1];
    char               account[128];
    cwpp_event_state_t state;
    int64_t            first_ms, last_ms;
} ev_t;

typedef struct kent {
    ev_t *ev;
    char  alert_id[CWPP_ALERT_ID_LEN + 1]; /* the alert that brought the key */
} kent_t;

struct cwpp_corr_index {
    int64_t window_ms;
    map_t   events; /* event id -> ev_t */
    map_t   keys;   /* account \x1f kind \x1f asset \x1f value -> kent_t */
    map_t   alerts; /* alert id -> ev_t */
};

cwpp_corr_index_t *cwpp_corr_index_new(int64_t window_ms)
{
    cwpp_corr_index_t *ix = calloc(1, sizeof(*ix));

    if (ix != NULL)
        ix->window_ms = window_ms;
    return ix;
}

static void map_free(map_t *m, int free_vals)
{
    size_t i;

    for (i = 0; i < m->nb; i++) {
        node_t *x = m->b[i], *next;

        for (; x != NULL; x = next) {
            next = x->next;
            if (free_vals)
                free(x->val);
            free(x);
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

void cwpp_corr_index_destroy(cwpp_corr_index_t *ix)
{
    if (ix == NULL)
        return;
    map_free(&ix->keys, 1);
    map_free(&ix->alerts, 0);
    map_free(&ix->events, 1);
    free(ix);
}

size_t cwpp_corr_index_events(const cwpp_corr_index_t *ix)
{
    return ix->events.n;
}

size_t cwpp_corr_index_keys(const cwpp_corr_index_t *ix)
{
    return ix->keys.n;
}

/* ------------------------------------------------------------------- keys */

static void add_key(cwpp_corr_key_t *out, size_t *n, cwpp_corr_kind_t kind, const char *value,
                    const char *asset)
{
    size_t i;

    if (value == NULL || value[0] == '\0' || *n >= CWPP_CORR_MAX_KEYS)
        return;
    for (i = 0; i < *n; i++)
        if (out[i].kind == kind && strcmp(out[i].value, value) == 0)
            return;
    out[*n].kind = kind;
    out[*n].value = value;
    out[*n].asset = asset;
    (*n)++;
}

size_t cwpp_corr_keys(const cwpp_alert_t *a, cwpp_corr_key_t *out)
{
    size_t n = 0;

    add_key(out, &n, CWPP_CK_HASH, a->file.sha256, NULL);
    add_key(out, &n, CWPP_CK_HASH, a->file.md5, NULL);
    if (a->asset.id != NULL)
        add_key(out, &n, CWPP_CK_PROCESS, a->process.path, a->asset.id);
    add_key(out, &n, CWPP_CK_IP, a->remote_ip, NULL);
    add_key(out, &n, CWPP_CK_IP, a->logon.ip, NULL);
    add_key(out, &n, CWPP_CK_ASSET, a->asset.id, NULL);
    return n;
}

int cwpp_corr_key_string(const char *account, const cwpp_corr_key_t *k, char *buf,
                         size_t size)
{
    unsigned char md[32];
    unsigned int  mdlen = 0;
    char          kind[16];
    const char   *asset = k->asset != NULL ? k->asset : "";
    const char   *parts[7];
    size_t        len, i;
    int           n, ok;
    EVP_MD_CTX   *ctx;

    if (size < CWPP_CORR_KEY_MAX)
        return -1;
    snprintf(kind, sizeof(kind), "%d", (int)k->kind);
    parts[0] = account, parts[1] = "\x1f", parts[2] = kind, parts[3] = "\x1f";
    parts[4] = asset, parts[5] = "\x1f", parts[6] = k->value;
    for (len = 0, i = 0; i < 7; i++)
        len += strlen(parts[i]);
    if (len < 200) {
        n = snprintf(buf, size, "%s\x1f%s\x1f%s\x1f%s", account, kind, asset, k->value);
        return n > 0 && (size_t)n < size ? 0 : -1;
    }
    /* long values (paths, hostile input) by digest of the whole composed text: bounded
     * keys in memory and in the database's primary key; the prefix keeps accounts and
     * kinds apart */
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return -1;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    for (i = 0; ok && i < 7; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    n = snprintf(buf, size, "%.100s\x1f%s\x1f#", account, kind);
    for (i = 0; i < 32 && n > 0 && (size_t)n + 3 < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%02x", md[i]);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int key_string(const char *account, const cwpp_corr_key_t *k, char *buf, size_t size)
{
    return cwpp_corr_key_string(account, k, buf, size);
}

static void describe(const cwpp_corr_key_t *k, const char *alert_id, char *out, size_t size)
{
    switch (k->kind) {
    case CWPP_CK_HASH:
        snprintf(out, size, "same file hash %s as alert %s", k->value, alert_id);
        break;
    case CWPP_CK_PROCESS:
        snprintf(out, size, "same process %s on asset %s as alert %s", k->value, k->asset,
                 alert_id);
        break;
    case CWPP_CK_IP:
        snprintf(out, size, "same attacker IP %s as alert %s", k->value, alert_id);
        break;
    default:
        snprintf(out, size, "same asset %s as alert %s", k->value, alert_id);
        break;
    }
}

/* ------------------------------------------------------------- the decision */

void cwpp_corr_event_id(const cwpp_alert_t *a, char out[CWPP_EVENT_ID_LEN + 1])
{
    unsigned char md[32];
    unsigned int  mdlen = 0;
    char          buf[512];
    int           n, i;

    n = snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%lld", a->account_id != NULL ? a->account_id : "",
                 a->alert_id, (long long)a->occurred_at_ms);
    EVP_Digest(buf, (size_t)(n > 0 && (size_t)n < sizeof(buf) ? n : (int)sizeof(buf) - 1), md,
               &mdlen, EVP_sha256(), NULL);
    /* Time first: events opened later get larger ids, so the inserts into every index
     * keyed by event id land at its right edge (few pages in memory, one full-page image
     * after a checkpoint) instead of on a random page of an index of millions. */
    snprintf(out, CWPP_EVENT_ID_LEN + 1, "ev-%012llx", (unsigned long long)(
             a->occurred_at_ms < 0 ? 0 : a->occurred_at_ms > 0xffffffffffffLL ? 0xffffffffffffLL
                                                                               : a->occurred_at_ms));
    for (i = 0; i < 10; i++)
        snprintf(out + 15 + 2 * i, 3, "%02x", md[i]);
}

static int within(const cwpp_corr_index_t *ix, const ev_t *ev, int64_t t)
{
    return t <= ev->last_ms + ix->window_ms && t >= ev->first_ms - ix->window_ms;
}

int cwpp_corr_decide(const cwpp_corr_index_t *ix, const cwpp_alert_t *a,
                     cwpp_corr_decision_t *d)
{
    cwpp_corr_key_t keys[CWPP_CORR_MAX_KEYS];
    const kent_t   *why = NULL, *pred = NULL;
    const ev_t     *best = NULL, *known;
    size_t          nk, i;
    int             why_k = -1, pred_k = -1;
    char            ks[CWPP_CORR_KEY_MAX];

    memset(d, 0, sizeof(*d));
    if (a->account_id == NULL || a->account_id[0] == '\0' || a->alert_id[0] == '\0')
        return CWPP_EINVAL;

    /* the same alert again: it stays where it is, unless that event is handled */
    known = map_get(&ix->alerts, a->alert_id);
    if (known != NULL && known->state == CWPP_EV_OPEN) {
        d->join = d->recurrence = 1;
        memcpy(d->event_id, known->id, sizeof(d->event_id));
        snprintf(d->reason, sizeof(d->reason), "recurrence of alert %s, already in this event",
                 a->alert_id);
        return CWPP_OK;
    }

    nk = cwpp_corr_keys(a, keys);
    for (i = 0; i < nk; i++) {
        const kent_t *e;

        if (key_string(a->account_id, &keys[i], ks, sizeof(ks)) != 0 ||
            (e = map_get(&ix->keys, ks)) == NULL || !within(ix, e->ev, a->occurred_at_ms))
            continue;
        if (e->ev->state == CWPP_EV_OPEN) {
            /* the event most recently active wins; ties go to the smaller id */
            if (best == NULL || e->ev->last_ms > best->last_ms ||
                (e->ev->last_ms == best->last_ms && strcmp(e->ev->id, best->id) < 0)) {
                best = e->ev;
                why = e;
                why_k = (int)i;
            }
        } else if (pred == NULL || e->ev->last_ms > pred->ev->last_ms) {
            pred = e;
            pred_k = (int)i;
        }
    }
    if (best != NULL) {
        /* explain with the strongest key this event shares (keys come strongest first) */
        for (i = 0; i < nk; i++) {
            const kent_t *e;

            if (key_string(a->account_id, &keys[i], ks, sizeof(ks)) == 0 &&
                (e = map_get(&ix->keys, ks)) != NULL && e->ev == best) {
                why = e;
                why_k = (int)i;
                break;
            }
        }
        d->join = 1;
        memcpy(d->event_id, best->id, sizeof(d->event_id));
        describe(&keys[why_k], why->alert_id, d->reason, sizeof(d->reason));
        return CWPP_OK;
    }
    cwpp_corr_event_id(a, d->event_id);
    if (known != NULL) {
        memcpy(d->predecessor, known->id, sizeof(d->predecessor));
        snprintf(d->reason, sizeof(d->reason),
                 "opens a new event: alert %s recurred, and its event %s is handled and takes "
                 "no more alerts", a->alert_id, known->id);
    } else if (pred != NULL) {
        char what[400];

        memcpy(d->predecessor, pred->ev->id, sizeof(d->predecessor));
        describe(&keys[pred_k], pred->alert_id, what, sizeof(what));
        snprintf(d->reason, sizeof(d->reason),
                 "opens a new event: related event %s (%s) is handled and takes no more alerts",
                 pred->ev->id, what);
    } else {
        snprintf(d->reason, sizeof(d->reason),
                 "opens a new event: no open event of account %.128s shares a file hash, "
                 "process, attacker IP or asset with it within the window", a->account_id);
    }
    return CWPP_OK;
}

int cwpp_corr_index_apply(cwpp_corr_index_t *ix, const cwpp_alert_t *a,
                          const cwpp_corr_decision_t *d)
{
    cwpp_corr_key_t keys[CWPP_CORR_MAX_KEYS];
    ev_t           *ev = map_get(&ix->events, d->event_id);
    size_t          nk, i;
    char            ks[CWPP_CORR_KEY_MAX];

    if (ev == NULL) {
        if ((ev = calloc(1, sizeof(*ev))) == NULL)
            return CWPP_ENOMEM;
        memcpy(ev->id, d->event_id, sizeof(ev->id));
        snprintf(ev->account, sizeof(ev->account), "%s", a->account_id);
        ev->state = CWPP_EV_OPEN;
        ev->first_ms = ev->last_ms = a->occurred_at_ms;
        if (map_put(&ix->events, ev->id, ev) == NULL) {
            free(ev);
            return CWPP_ENOMEM;
        }
    }
    if (a->occurred_at_ms > ev->last_ms)
        ev->last_ms = a->occurred_at_ms;
    if (a->occurred_at_ms < ev->first_ms)
        ev->first_ms = a->occurred_at_ms;
    if (map_put(&ix->alerts, a->alert_id, ev) == NULL)
        return CWPP_ENOMEM;
    nk = cwpp_corr_keys(a, keys);
    for (i = 0; i < nk; i++) {
        node_t *x;
        kent_t *e;

        if (key_string(a->account_id, &keys[i], ks, sizeof(ks)) != 0)
            continue;
        e = map_get(&ix->keys, ks);
        if (e == NULL) {
            if ((e = calloc(1, sizeof(*e))) == NULL)
                return CWPP_ENOMEM;
            if ((x = map_put(&ix->keys, ks, e)) == NULL) {
                free(e);
                return CWPP_ENOMEM;
            }
        } else if (e->ev == ev) {
            continue; /* the event keeps the key and the first alert that brought it */
        } else if (e->ev->state == CWPP_EV_OPEN && e->ev->last_ms > ev->last_ms) {
            continue; /* a more recently active open event keeps the key */
        }
        e->ev = ev;
        memcpy(e->alert_id, a->alert_id, sizeof(e->alert_id));
    }
    return CWPP_OK;
}

int cwpp_corr_index_set_state(cwpp_corr_index_t *ix, const char *event_id,
                              cwpp_event_state_t st)
{
    ev_t *ev = map_get(&ix->events, event_id);

    if (ev == NULL)
        return CWPP_ENOTFOUND;
    ev->state = st;
    return CWPP_OK;
}

size_t cwpp_corr_index_expire(cwpp_corr_index_t *ix, int64_t before_ms)
{
    size_t i, dropped = 0;

    for (i = 0; i < ix->keys.nb; i++) {
        node_t **p = &ix->keys.b[i];

        while (*p != NULL) {
            kent_t *e = (*p)->val;

            if (e->ev->last_ms + ix->window_ms < before_ms) {
                node_t *x = *p;

                *p = x->next;
                free(e);
                free(x);
                ix->keys.n--;
                dropped++;
            } else {
                p = &(*p)->next;
            }
        }
    }
    return dropped;
}

/* ------------------------------------------------------------------ seeding */

int cwpp_corr_index_seed_event(cwpp_corr_index_t *ix, const char *event_id,
                               const char *account, cwpp_event_state_t st, int64_t first_ms,
                               int64_t last_ms)
{
    ev_t *ev = map_get(&ix->events, event_id);

    if (strlen(event_id) != CWPP_EVENT_ID_LEN)
        return CWPP_EINVAL;
    if (ev == NULL) {
        if ((ev = calloc(1, sizeof(*ev))) == NULL)
            return CWPP_ENOMEM;
        memcpy(ev->id, event_id, sizeof(ev->id));
        if (map_put(&ix->events, ev->id, ev) == NULL) {
            free(ev);
            return CWPP_ENOMEM;
        }
    }
    snprintf(ev->account, sizeof(ev->account), "%s", account);
    ev->state = st;
    ev->first_ms = first_ms;
    ev->last_ms = last_ms;
    return CWPP_OK;
}

int cwpp_corr_index_seed_key(cwpp_corr_index_t *ix, const char *key, const char *event_id,
                             const char *alert_id)
{
    ev_t   *ev = map_get(&ix->events, event_id);
    kent_t *e;

    if (ev == NULL)
        return CWPP_ENOTFOUND;
    if ((e = map_get(&ix->keys, key)) == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL)
            return CWPP_ENOMEM;
        if (map_put(&ix->keys, key, e) == NULL) {
            free(e);
            return CWPP_ENOMEM;
        }
    }
    e->ev = ev;
    snprintf(e->alert_id, sizeof(e->alert_id), "%s", alert_id);
    return CWPP_OK;
}

int cwpp_corr_index_seed_alert(cwpp_corr_index_t *ix, const char *alert_id,
                               const char *event_id)
{
    ev_t *ev = map_get(&ix->events, event_id), *cur;

    if (ev == NULL)
        return CWPP_ENOTFOUND;
    cur = map_get(&ix->alerts, alert_id);
    /* an alert in several events (its old one handled): the open one, else the latest */
    if (cur != NULL && cur != ev &&
        (cur->state == CWPP_EV_OPEN) >= (ev->state == CWPP_EV_OPEN) &&
        !(cur->state == ev->state && ev->last_ms > cur->last_ms))
        return CWPP_OK;
    return map_put(&ix->alerts, alert_id, ev) != NULL ? CWPP_OK : CWPP_ENOMEM;
}

int cwpp_corr_index_key_owner(const cwpp_corr_index_t *ix, const char *key,
                              const char **event_id, const char **alert_id)
{
    const kent_t *e = map_get(&ix->keys, key);

    if (e == NULL)
        return CWPP_ENOTFOUND;
    *event_id = e->ev->id;
    *alert_id = e->alert_id;
    return CWPP_OK;
}

/* --------------------------------------------------------- membership changes */

int cwpp_corr_index_alert_event(const cwpp_corr_index_t *ix, const char *alert_id,
                                const char **event_id, cwpp_event_state_t *st)
{
    const ev_t *ev = map_get(&ix->alerts, alert_id);

    if (ev == NULL)
        return CWPP_ENOTFOUND;
    *event_id = ev->id;
    *st = ev->state;
    return CWPP_OK;
}

int cwpp_corr_index_forget_alert(cwpp_corr_index_t *ix, const char *alert_id)
{
    node_t **p, *x;

    if (ix->alerts.nb == 0 || *(p = slot(&ix->alerts, alert_id)) == NULL)
        return CWPP_ENOTFOUND;
    x = *p; /* the alerts map does not own its values (the events map does) */
    *p = x->next;
    free(x);
    ix->alerts.n--;
    return CWPP_OK;
}
