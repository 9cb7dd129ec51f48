/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pool.c: the API's PostgreSQL connections, as many as request threads, so a request
 * never waits for another's query. Connections are made lazily (cwpp_pg_ensure on first
 * use by api_sql), a connection that failed is reset and reconnects on its next use, and
 * each is tuned like every service's (statement timeout, keepalives: libs/pg).
 */
#include "api_internal.h"

#include <stdlib.h>

struct api_pool {
    pthread_mutex_t lock;
    pthread_cond_t  freed;
    cwpp_pg_t     **all;
    cwpp_pg_t     **free_list;
    int             size, nfree;
};

api_pool_t *api_pool_new(const char *dsn, int size)
{
    api_pool_t *p = calloc(1, sizeof(*p));
    int         i;

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->all = calloc((size_t)size, sizeof(*p->all));
    p->free_list = calloc((size_t)size, sizeof(*p->free_list));
    if (p->all == NULL || p->free_list == NULL)
        goto fail;
    for (i = 0; i < size; i++) {
        if ((p->all[i] = cwpp_pg_new(dsn, "cwpp-api")) == NULL)
            goto fail;
        p->size++;
        p->free_list[p->nfree++] = p->all[i];
    }
    return p;
fail:
    api_pool_destroy(p);
    return NULL;
}

void api_pool_destroy(api_pool_t *p)
{
    int i;

    if (p == NULL)
        return;
    for (i = 0; i < p->size; i++)
        cwpp_pg_destroy(p->all[i]);
    free(p->all);
    free(p->free_list);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

cwpp_pg_t *api_pool_get(api_pool_t *p)
{
    cwpp_pg_t *pg;

    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0)
        pthread_cond_wait(&p->freed, &p->lock);
    pg = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    return pg;
}

void api_pool_put(api_pool_t *p, cwpp_pg_t *pg)
{
    PGconn *c;

    if (pg == NULL)
        return;
    /* a handler that left a transaction open (it should not) gets it rolled back */
    c = cwpp_pg_conn(pg);
    if (c != NULL && PQtransactionStatus(c) != PQTRANS_IDLE)
        cwpp_pg_reset(pg);
    pthread_mutex_lock(&p->lock);
    p->free_list[p->nfree++] = pg;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}
