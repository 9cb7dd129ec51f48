/* SPDX-License-Identifier: Apache-2.0 */
/*
 * corr_workers.c: the workers of one instance (correlator.workers). A batch's records
 * are split by partition (corr_split_batch, a pure function), each share one
 * transaction (corr_batch) on the worker's own connection, all at once; their outputs
 * reach the loop's outbox only when every share committed. A share that failed makes
 * the whole batch retried: the shares that had committed find their records applied
 * (the consumer-offset fence) and change nothing twice, exactly as after a crash. When
 * every failed share failed because PostgreSQL refused its data (CWPP_EDATA), the batch
 * says so, and the loop applies it again one record at a time (corr_combine_rc); a
 * one-record batch is one share on one worker, the others stay idle.
 */
#include "corr_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One worker's share of a batch. */
typedef struct wjob {
    corr_t              *c;
    rd_kafka_message_t **msgs;    /* points into corr_set_t.split */
    size_t               n;
    cwpp_outbox_t       *ob;      /* its output, moved to the loop's once all committed */
    int                  rc;
    char                 err[512];
} wjob_t;

struct corr_set {
    corr_t              *w[CORR_MAX_WORKERS];
    wjob_t               jobs[CORR_MAX_WORKERS];
    int                  n;
    rd_kafka_message_t **split;     /* the batch, regrouped by worker */
    corr_rec_key_t      *keys;      /* each record's topic-partition */
    int                 *worker_of; /* each record's worker */
    corr_share_t        *shares;    /* the batch's partitions */
    size_t               cap;       /* records the four arrays above hold */
    atomic_int           db_ok;
};

/* ------------------------------------------------------------ the split */

size_t corr_split_batch(const corr_rec_key_t *keys, size_t n, int nworkers,
                        corr_share_t *shares, int *worker_of, size_t *load)
{
    size_t nsh = 0, i, k;
    int    w;

    assert(nworkers >= 1 && nworkers <= CORR_MAX_WORKERS);
    for (w = 0; w < nworkers; w++)
        load[w] = 0;
    for (i = 0; i < n; i++) { /* the partitions, in the order first seen */
        for (k = 0; k < nsh; k++)
            if (shares[k].partition == keys[i].partition &&
                strcmp(shares[k].topic, keys[i].topic) == 0)
                break;
        if (k == nsh)
            shares[nsh++] = (corr_share_t){keys[i].topic, keys[i].partition, 0, -1};
        shares[k].count++;
        worker_of[i] = (int)k; /* the share for now; its worker below */
    }
    for (k = 0; k < nsh; k++) { /* a few partitions: the largest unassigned each time */
        size_t big = SIZE_MAX, j;
        int    least = 0;

        for (j = 0; j < nsh; j++)
            if (shares[j].worker < 0 && (big == SIZE_MAX || shares[j].count > shares[big].count))
                big = j;
        for (w = 1; w < nworkers; w++)
            if (load[w] < load[least])
                least = w;
        shares[big].worker = least;
        load[least] += shares[big].count;
    }
    for (i = 0; i < n; i++)
        worker_of[i] = shares[worker_of[i]].worker;
    return nsh;
}

/* Regroups the batch by worker (each worker's records in batch order) into s->split and
 * points the jobs at their shares. 0 or CWPP_ENOMEM. */
static int split_batch(corr_set_t *s, rd_kafka_message_t **msgs, size_t n)
{
    size_t load[CORR_MAX_WORKERS], at[CORR_MAX_WORKERS], i, k;
    int    w;

    if (n > s->cap) {
        rd_kafka_message_t **ns = realloc(s->split, n * sizeof(*ns));
        corr_rec_key_t      *nk;
        int                 *nw;
        corr_share_t        *nsh;

        if (ns != NULL)
            s->split = ns;
        if ((nk = ns != NULL ? realloc(s->keys, n * sizeof(*nk)) : NULL) != NULL)
            s->keys = nk;
        if ((nw = nk != NULL ? realloc(s->worker_of, n * sizeof(*nw)) : NULL) != NULL)
            s->worker_of = nw;
        if ((nsh = nw != NULL ? realloc(s->shares, n * sizeof(*nsh)) : NULL) == NULL)
            return CWPP_ENOMEM;
        s->shares = nsh;
        s->cap = n;
    }
    for (i = 0; i < n; i++)
        s->keys[i] = (corr_rec_key_t){rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition};
    corr_split_batch(s->keys, n, s->n, s->shares, s->worker_of, load);
    for (w = 0, k = 0; w < s->n; w++) {
        at[w] = k;
        s->jobs[w].msgs = s->split + k;
        s->jobs[w].n = load[w];
        k += load[w];
    }
    for (i = 0; i < n; i++)
        s->split[at[s->worker_of[i]]++] = msgs[i];
    return CWPP_OK;
}

/* ---------------------------------------------------------- the threads */

int corr_combine_rc(const int *rcs, size_t n, int *which)
{
    size_t i;
    int    rc = CWPP_OK;

    *which = -1;
    for (i = 0; i < n; i++) {
        if (rcs[i] == CWPP_OK || rc == CWPP_ETRANSIENT)
            continue;
        if (rcs[i] != CWPP_EDATA || rc == CWPP_OK) { /* the first failure, or the first
                                                      * that is not the data's */
            rc = rcs[i] == CWPP_EDATA ? CWPP_EDATA : CWPP_ETRANSIENT;
            *which = (int)i;
        }
    }
    return rc;
}

static void *wjob_run(void *p)
{
    wjob_t *j = p;

    j->rc = corr_batch(j->c, j->msgs, j->n, j->ob, j->err, sizeof(j->err));
    return NULL;
}

int corr_set_batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                   char *errstr, size_t errstr_size)
{
    corr_set_t *s = opaque;
    pthread_t   th[CORR_MAX_WORKERS];
    int         started[CORR_MAX_WORKERS] = {0}, skip[CORR_MAX_WORKERS] = {0};
    int         rcs[CORR_MAX_WORKERS];
    int         w, first = -1, rc = CWPP_OK, ok = 1;

    if (s->n == 1) {
        rc = corr_batch(s->w[0], msgs, n, out, errstr, errstr_size);
        atomic_store(&s->db_ok, atomic_load(&s->w[0]->db_ok));
        return rc;
    }
    if (split_batch(s, msgs, n) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "out of memory");
    for (w = 0; w < s->n; w++) {
        wjob_t *j = &s->jobs[w];

        cwpp_outbox_truncate(j->ob, 0);
        j->rc = CWPP_OK;
        j->err[0] = '\0';
        skip[w] = 0;
        if (j->n == 0)
            continue;
        if (first < 0) {
            first = w; /* runs on this thread */
        } else if (cwpp_fault_hit("correlator_share")) {
            /* tests: this share fails while the first one commits */
            skip[w] = 1;
            j->rc = cwpp_seterr(j->err, sizeof(j->err), CWPP_ETRANSIENT,
                                "injected fault (correlator_share)");
        } else {
            started[w] = pthread_create(&th[w], NULL, wjob_run, j) == 0;
        }
    }
    for (w = 0; w < s->n; w++) /* this thread: the first share and any not started */
        if (s->jobs[w].n > 0 && !skip[w] && (w == first || !started[w]))
            wjob_run(&s->jobs[w]);
    for (w = 0; w < s->n; w++)
        if (started[w])
            pthread_join(th[w], NULL);
    for (w = 0; w < s->n; w++) {
        rcs[w] = s->jobs[w].n > 0 ? s->jobs[w].rc : CWPP_OK;
        if (s->jobs[w].n > 0) /* an idle worker says nothing new about the database */
            ok &= atomic_load(&s->w[w]->db_ok);
    }
    if ((rc = corr_combine_rc(rcs, (size_t)s->n, &w)) != CWPP_OK)
        cwpp_seterr(errstr, errstr_size, rc, "%s", s->jobs[w].err);
    atomic_store(&s->db_ok, ok);
    for (w = 0; rc == CWPP_OK && w < s->n; w++)
        if (cwpp_outbox_move(out, s->jobs[w].ob) != CWPP_OK)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "out of memory");
    for (w = 0; w < s->n; w++)
        cwpp_outbox_truncate(s->jobs[w].ob, 0);
    return rc;
}

/* ------------------------------------------------------------ the set */

corr_set_t *corr_set_new(const corr_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                         size_t errstr_size)
{
    corr_set_t *s = calloc(1, sizeof(*s));
    int         w;

    if (s == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    assert(conf->workers >= 1 && conf->workers <= CORR_MAX_WORKERS);
    for (w = 0; w < (int)conf->workers; w++) {
        corr_t *c = corr_new(conf, metrics, errstr, errstr_size); /* metrics shared by name */

        if (c == NULL)
            goto fail;
        s->w[s->n++] = c;
        s->jobs[w].c = c;
        if ((s->jobs[w].ob = cwpp_outbox_new()) == NULL) {
            cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            goto fail;
        }
    }
    return s;
fail:
    corr_set_destroy(s);
    return NULL;
}

void corr_set_destroy(corr_set_t *s)
{
    int w;

    if (s == NULL)
        return;
    for (w = 0; w < s->n; w++) {
        corr_destroy(s->w[w]);
        cwpp_outbox_destroy(s->jobs[w].ob);
    }
    free(s->split);
    free(s->keys);
    free(s->worker_of);
    free(s->shares);
    free(s);
}

int corr_set_nworkers(const corr_set_t *s)
{
    return s->n;
}

corr_t *corr_set_worker(corr_set_t *s, int w)
{
    assert(w >= 0 && w < s->n);
    return s->w[w];
}

atomic_int *corr_set_db_ok(corr_set_t *s)
{
    return &s->db_ok;
}
