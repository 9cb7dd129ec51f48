/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fence.c: the consumer-offset fence (cwpp_fence.h).
 *
 * Workload: a batch of up to a few thousand records from one to a few hundred
 * partitions, records of one partition mostly adjacent. Each record is mapped to its
 * partition once, when it is added: a one-entry cache catches the runs, an open-address
 * hash table on (topic, partition) the rest, so neither a batch over many partitions
 * nor records in any order cost a scan per record. The per-record answer
 * (cwpp_fence_applied) is then two array reads.
 *
 * The three statements take the batch's partitions as one JSON array (json_to_recordset)
 * and order the rows by (topic, partition) before inserting or locking them: the lock
 * order is the database's, the same for every transaction of the group. The lock returns
 * each row's index in the array, so results are matched without comparing names.
 */
#include "cwpp_fence.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_ROWS[] =
    "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset) "
    "SELECT $1, x.t, x.p, 0 FROM json_to_recordset($2::json) AS x(t text, p int) "
    "ORDER BY x.t, x.p ON CONFLICT DO NOTHING";
static const char SQL_LOCK[] =
    "SELECT x.i, c.next_offset FROM consumer_offsets c "
    "JOIN json_to_recordset($2::json) AS x(i int, t text, p int) "
    "ON c.topic = x.t AND c.partition = x.p WHERE c.consumer_group = $1 "
    "ORDER BY c.topic, c.partition FOR UPDATE OF c";
static const char SQL_ADVANCE[] =
    "UPDATE consumer_offsets c SET next_offset = x.hi + 1, updated_at = now() "
    "FROM json_to_recordset($2::json) AS x(t text, p int, hi bigint) "
    "WHERE c.consumer_group = $1 AND c.topic = x.t AND c.partition = x.p "
    "AND c.next_offset < x.hi + 1";

/* One record: its partition and offset. */
typedef struct rec {
    size_t  part;   /* index into parts */
    int64_t offset;
} rec_t;

struct cwpp_fence {
    char              *group;      /* consumer group (owned) */
    cwpp_fence_part_t *parts;      /* the batch's partitions, in order of first sight */
    size_t             nparts, parts_cap;
    rec_t             *recs;       /* the batch's records, in order of addition */
    size_t             nrecs, recs_cap;
    size_t            *slots;      /* hash of parts: index + 1, 0 = empty */
    size_t             nslots;     /* a power of two, at least 2 * nparts (or 0) */
    size_t             last;       /* partition of the last record added */
    cwpp_buf_t         json;       /* the statements' parameter */
    int                json_ok;    /* json describes the current batch */
};

cwpp_fence_t *cwpp_fence_new(const char *group, char *errstr, size_t errstr_size)
{
    cwpp_fence_t *f = calloc(1, sizeof(*f));

    assert(group != NULL);
    if (f == NULL || (f->group = strdup(group)) == NULL) {
        cwpp_fence_destroy(f);
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    return f;
}

void cwpp_fence_destroy(cwpp_fence_t *f)
{
    if (f == NULL)
        return;
    free(f->group);
    free(f->parts);
    free(f->recs);
    free(f->slots);
    cwpp_buf_free(&f->json);
    free(f);
}

int cwpp_fence_prepare(cwpp_pg_t *pg, char *errstr, size_t errstr_size)
{
    static const cwpp_pg_named_t stmts[] = {
        {CWPP_FENCE_STMT_ROWS, SQL_ROWS},
        {CWPP_FENCE_STMT_LOCK, SQL_LOCK},
        {CWPP_FENCE_STMT_ADVANCE, SQL_ADVANCE},
    };

    return cwpp_pg_prepare(pg, stmts, sizeof(stmts) / sizeof(stmts[0]), errstr, errstr_size);
}

/* ------------------------------------------------------------- the batch */

void cwpp_fence_reset(cwpp_fence_t *f)
{
    f->nparts = 0;
    f->nrecs = 0;
    f->last = 0;
    f->json_ok = 0;
    if (f->nslots > 0)
        memset(f->slots, 0, f->nslots * sizeof(*f->slots));
}

static size_t hash(const char *topic, int32_t partition)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a, then the partition mixed in */

    for (; *topic != '\0'; topic++)
        h = (h ^ (unsigned char)*topic) * 1099511628211ULL;
    h ^= (uint64_t)(uint32_t)partition * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 29));
}

static int same(const cwpp_fence_part_t *p, const char *topic, int32_t partition)
{
    return p->partition == partition && (p->topic == topic || strcmp(p->topic, topic) == 0);
}

/* Puts part k in its slot (the table has room). */
static void slot_put(cwpp_fence_t *f, size_t k)
{
    size_t mask = f->nslots - 1, s = hash(f->parts[k].topic, f->parts[k].partition) & mask;

    while (f->slots[s] != 0)
        s = (s + 1) & mask;
    f->slots[s] = k + 1;
}

/* Doubles the table and re-inserts the partitions. 0 or CWPP_ENOMEM (table unchanged). */
static int slots_grow(cwpp_fence_t *f)
{
    size_t  n = f->nslots > 0 ? f->nslots * 2 : 64, k;
    size_t *ns = calloc(n, sizeof(*ns));

    if (ns == NULL)
        return CWPP_ENOMEM;
    free(f->slots);
    f->slots = ns;
    f->nslots = n;
    for (k = 0; k < f->nparts; k++)
        slot_put(f, k);
    return CWPP_OK;
}

/* The index of (topic, partition), created if new; SIZE_MAX for lack of memory. */
static size_t part_index(cwpp_fence_t *f, const char *topic, int32_t partition, int64_t offset)
{
    size_t mask, s, k;

    if (f->nparts > 0 && same(&f->parts[f->last], topic, partition))
        return f->last;
    if (f->nslots > 0) {
        mask = f->nslots - 1;
        for (s = hash(topic, partition) & mask; f->slots[s] != 0; s = (s + 1) & mask)
            if (same(&f->parts[f->slots[s] - 1], topic, partition))
                return f->slots[s] - 1;
    }
    /* new: room in the array, and the table kept at most half full */
    if (f->nparts == f->parts_cap) {
        size_t             nc = f->parts_cap > 0 ? f->parts_cap * 2 : 16;
        cwpp_fence_part_t *np = realloc(f->parts, nc * sizeof(*np));

        if (np == NULL)
            return SIZE_MAX;
        f->parts = np;
        f->parts_cap = nc;
    }
    k = f->nparts++;
    f->parts[k] = (cwpp_fence_part_t){topic, partition, offset, offset, 0};
    if (2 * f->nparts > f->nslots) {
        if (slots_grow(f) != CWPP_OK) { /* re-inserts k too */
            f->nparts--;
            return SIZE_MAX;
        }
    } else {
        slot_put(f, k);
    }
    return k;
}

int cwpp_fence_add(cwpp_fence_t *f, const char *topic, int32_t partition, int64_t offset,
                   char *errstr, size_t errstr_size)
{
    size_t             k;
    cwpp_fence_part_t *p;

    assert(topic != NULL && offset >= 0);
    if (f->nrecs == f->recs_cap) {
        size_t nc = f->recs_cap > 0 ? f->recs_cap * 2 : 256;
        rec_t *nr = realloc(f->recs, nc * sizeof(*nr));

        if (nr == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        f->recs = nr;
        f->recs_cap = nc;
    }
    if ((k = part_index(f, topic, partition, offset)) == SIZE_MAX)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    p = &f->parts[k];
    if (offset < p->lo)
        p->lo = offset;
    if (offset > p->hi)
        p->hi = offset;
    f->recs[f->nrecs++] = (rec_t){k, offset};
    f->last = k;
    f->json_ok = 0;
    return CWPP_OK;
}

int cwpp_fence_batch(cwpp_fence_t *f, rd_kafka_message_t *const *msgs, size_t n,
                     char *errstr, size_t errstr_size)
{
    size_t i;
    int    rc;

    cwpp_fence_reset(f);
    for (i = 0; i < n; i++)
        if ((rc = cwpp_fence_add(f, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition,
                                 msgs[i]->offset, errstr, errstr_size)) != CWPP_OK)
            return rc;
    return CWPP_OK;
}

size_t cwpp_fence_nrecords(const cwpp_fence_t *f)
{
    return f->nrecs;
}

size_t cwpp_fence_nparts(const cwpp_fence_t *f)
{
    return f->nparts;
}

const cwpp_fence_part_t *cwpp_fence_part(const cwpp_fence_t *f, size_t k)
{
    assert(k < f->nparts);
    return &f->parts[k];
}

size_t cwpp_fence_part_of(const cwpp_fence_t *f, size_t i)
{
    assert(i < f->nrecs);
    return f->recs[i].part;
}

/* -------------------------------------------------------- the transaction */

/* The JSON parameter of the current batch in f->json. 0 or CWPP_ENOMEM. */
static int build_json(cwpp_fence_t *f)
{
    cwpp_buf_t *b = &f->json;
    size_t      k;
    int         rc = CWPP_OK;

    if (f->json_ok)
        return CWPP_OK;
    cwpp_buf_reset(b);
    rc |= cwpp_buf_append(b, "[", 1);
    for (k = 0; k < f->nparts; k++) {
        const cwpp_fence_part_t *p = &f->parts[k];

        rc |= cwpp_buf_puts(b, k == 0 ? "{\"i\":" : ",{\"i\":");
        rc |= cwpp_buf_i64(b, (int64_t)k);
        rc |= cwpp_buf_puts(b, ",\"t\":");
        rc |= cwpp_buf_json_str(b, p->topic);
        rc |= cwpp_buf_puts(b, ",\"p\":");
        rc |= cwpp_buf_i64(b, p->partition);
        rc |= cwpp_buf_puts(b, ",\"lo\":");
        rc |= cwpp_buf_i64(b, p->lo);
        rc |= cwpp_buf_puts(b, ",\"hi\":");
        rc |= cwpp_buf_i64(b, p->hi);
        rc |= cwpp_buf_append(b, "}", 1);
    }
    rc |= cwpp_buf_append(b, "]", 1);
    rc |= cwpp_buf_cstr(b);
    if (rc != CWPP_OK) /* every failure is CWPP_ENOMEM */
        return CWPP_ENOMEM;
    f->json_ok = 1;
    return CWPP_OK;
}

const char *cwpp_fence_json(const cwpp_fence_t *f)
{
    assert(f->json_ok);
    return (const char *)f->json.data;
}

int cwpp_fence_lock_stmts(cwpp_fence_t *f, cwpp_pg_stmt_t *q, PGresult **lock_res,
                          char *errstr, size_t errstr_size)
{
    size_t k;

    if (build_json(f) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    for (k = 0; k < f->nparts; k++) /* read again below: no stale value survives */
        f->parts[k].next = 0;
    q[0] = (cwpp_pg_stmt_t){CWPP_FENCE_STMT_ROWS, 2, {f->group, cwpp_fence_json(f)},
                            PGRES_COMMAND_OK, NULL};
    q[1] = (cwpp_pg_stmt_t){CWPP_FENCE_STMT_LOCK, 2, {f->group, cwpp_fence_json(f)},
                            PGRES_TUPLES_OK, lock_res};
    return CWPP_OK;
}

int cwpp_fence_read(cwpp_fence_t *f, const PGresult *r, char *errstr, size_t errstr_size)
{
    int    row, rows = PQntuples(r);
    size_t seen = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 2)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                           "consumer offsets: not the lock's result");
    for (row = 0; row < rows; row++) {
        char     *end;
        long long k = strtoll(PQgetvalue(r, row, 0), &end, 10);

        if (*end != '\0' || k < 0 || (unsigned long long)k >= f->nparts)
            return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                               "consumer offsets: unexpected partition index %s",
                               PQgetvalue(r, row, 0));
        f->parts[k].next = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        seen++;
    }
    if (seen != f->nparts)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                           "consumer offsets: %zu of the batch's %zu partitions have a row",
                           seen, f->nparts);
    return CWPP_OK;
}

int cwpp_fence_lock(cwpp_fence_t *f, cwpp_pg_t *pg, char *errstr, size_t errstr_size)
{
    cwpp_pg_stmt_t q[CWPP_FENCE_LOCK_NSTMTS];
    PGresult      *r = NULL;
    int            rc;

    if ((rc = cwpp_fence_lock_stmts(f, q, &r, errstr, errstr_size)) != CWPP_OK ||
        (rc = cwpp_pg_pipeline(pg, q, CWPP_FENCE_LOCK_NSTMTS, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = cwpp_fence_read(f, r, errstr, errstr_size);
    PQclear(r);
    return rc;
}

int cwpp_fence_applied(const cwpp_fence_t *f, size_t i)
{
    assert(i < f->nrecs);
    return f->recs[i].offset < f->parts[f->recs[i].part].next;
}

void cwpp_fence_advance_stmt(const cwpp_fence_t *f, cwpp_pg_stmt_t *q)
{
    assert(f->json_ok);
    *q = (cwpp_pg_stmt_t){CWPP_FENCE_STMT_ADVANCE, 2, {f->group, cwpp_fence_json(f)},
                          PGRES_COMMAND_OK, NULL};
}

int cwpp_fence_advance(const cwpp_fence_t *f, cwpp_pg_t *pg, char *errstr,
                       size_t errstr_size)
{
    cwpp_pg_stmt_t q;

    cwpp_fence_advance_stmt(f, &q);
    return cwpp_pg_pipeline(pg, &q, 1, errstr, errstr_size);
}
