/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fence: the pure parts of the consumer-offset fence (libs/fence), without a broker
 * or a database (the integration tests of ingest and whitelist-filter run the statements
 * against PostgreSQL, kill -9 included):
 *  - a batch's records become one entry per (topic, partition) with the lowest and
 *    highest offset, whatever the order of the records, for any number of partitions
 *    (no fixed cap: 256 was one once);
 *  - a record is "already applied" exactly when its offset is below its partition's
 *    stored next_offset, read from the lock statement's result rows (index, next);
 *  - the lock result must cover every partition, else the transaction is retried;
 *  - the statements a caller pipelines carry the group and the JSON of the partitions,
 *    and the advance moves each partition to its highest offset + 1;
 *  - a reset fence serves the next batch with nothing left over.
 * PGresults are built by hand (PQmakeEmptyPGresult works without a connection) and the
 * Kafka messages are real rd_kafka_message_t with topic handles of an unconnected client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_fence.h"

static cwpp_fence_t *new_fence(void)
{
    char          err[128];
    cwpp_fence_t *f = cwpp_fence_new("grp", err, sizeof(err));

    assert_non_null(f);
    return f;
}

static void add(cwpp_fence_t *f, const char *topic, int32_t partition, int64_t offset)
{
    char err[128];

    assert_int_equal(cwpp_fence_add(f, topic, partition, offset, err, sizeof(err)), CWPP_OK);
}

/* A result of the lock statement: rows of (partition index, next_offset). */
static PGresult *lock_result(const int64_t (*rows)[2], int nrows)
{
    PGresult         *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc      att[2];
    int               i;

    assert_non_null(r);
    memset(att, 0, sizeof(att));
    att[0].name = (char *)"i";
    att[1].name = (char *)"next_offset";
    att[0].format = att[1].format = 0;
    att[0].typlen = att[1].typlen = -1;
    att[0].atttypmod = att[1].atttypmod = -1;
    assert_int_equal(PQsetResultAttrs(r, 2, att), 1);
    for (i = 0; i < nrows; i++) {
        char a[32], b[32];

        snprintf(a, sizeof(a), "%lld", (long long)rows[i][0]);
        snprintf(b, sizeof(b), "%lld", (long long)rows[i][1]);
        assert_int_equal(PQsetvalue(r, i, 0, a, (int)strlen(a)), 1);
        assert_int_equal(PQsetvalue(r, i, 1, b, (int)strlen(b)), 1);
    }
    return r;
}

/* Runs lock_stmts and feeds it the rows as the lock's result. */
static int lock_with(cwpp_fence_t *f, const int64_t (*rows)[2], int nrows)
{
    cwpp_pg_stmt_t q[CWPP_FENCE_LOCK_NSTMTS];
    PGresult      *res = NULL, *r;
    char           err[256];
    int            rc;

    assert_int_equal(cwpp_fence_lock_stmts(f, q, &res, err, sizeof(err)), CWPP_OK);
    r = lock_result(rows, nrows);
    rc = cwpp_fence_read(f, r, err, sizeof(err));
    PQclear(r);
    return rc;
}

/* Records of one partition, out of order: one entry, the lowest and highest offset. */
static void test_one_partition_out_of_order(void **state)
{
    cwpp_fence_t            *f = new_fence();
    static const int64_t     offs[] = {17, 12, 30, 12, 25};
    const cwpp_fence_part_t *p;
    size_t                   i;

    (void)state;
    for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
        add(f, "t.alerts.raw", 3, offs[i]);
    assert_int_equal(cwpp_fence_nrecords(f), 5);
    assert_int_equal(cwpp_fence_nparts(f), 1);
    p = cwpp_fence_part(f, 0);
    assert_string_equal(p->topic, "t.alerts.raw");
    assert_int_equal(p->partition, 3);
    assert_int_equal(p->lo, 12);
    assert_int_equal(p->hi, 30);
    assert_int_equal(p->next, 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(cwpp_fence_part_of(f, i), 0);
        assert_false(cwpp_fence_applied(f, i)); /* nothing read: nothing applied */
    }
    cwpp_fence_destroy(f);
}

/* Interleaved partitions of two topics (same numbers on both): partitions in order of
 * first sight; equal topic names at different addresses are one topic. */
static void test_interleaved_topics(void **state)
{
    cwpp_fence_t *f = new_fence();
    char          other[] = "t.commands"; /* not the literal's address */
    static const struct { const char *t; int32_t p; int64_t o; size_t part; } recs[] = {
        {"t.alerts", 0, 5, 0}, {"t.alerts", 1, 9, 1}, {"t.commands", 0, 2, 2},
        {"t.alerts", 0, 4, 0}, {"t.alerts", 1, 12, 1}, {"t.commands", 0, 1, 2},
        {"t.alerts", 2, 0, 3},
    };
    size_t        i;

    (void)state;
    for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        add(f, i == 5 ? other : recs[i].t, recs[i].p, recs[i].o);
    assert_int_equal(cwpp_fence_nparts(f), 4);
    for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        assert_int_equal(cwpp_fence_part_of(f, i), recs[i].part);
    assert_int_equal(cwpp_fence_part(f, 0)->lo, 4);
    assert_int_equal(cwpp_fence_part(f, 0)->hi, 5);
    assert_int_equal(cwpp_fence_part(f, 1)->lo, 9);
    assert_int_equal(cwpp_fence_part(f, 1)->hi, 12);
    assert_string_equal(cwpp_fence_part(f, 2)->topic, "t.commands");
    assert_int_equal(cwpp_fence_part(f, 2)->lo, 1);
    assert_int_equal(cwpp_fence_part(f, 2)->hi, 2);
    assert_int_equal(cwpp_fence_part(f, 3)->partition, 2);
    cwpp_fence_destroy(f);
}

/* Far more than 256 partitions in one batch (the old cap), records shuffled: every
 * record finds its partition, every partition its range, and the lock's answer (in the
 * database's order, not the batch's) reaches each one. */
static void test_many_partitions(void **state)
{
    enum { NP = 1000, PER = 3 };
    cwpp_fence_t *f = new_fence();
    int64_t     (*rows)[2] = calloc(2 * NP, sizeof(*rows));
    size_t        i, n = 0, k;
    int32_t       part[2 * NP * PER];
    int64_t       off[2 * NP * PER];
    const char   *topic[2 * NP * PER];

    (void)state;
    assert_non_null(rows);
    for (i = 0; i < 2 * NP * PER; i++) { /* a fixed shuffle: stride coprime to the count */
        size_t j = (i * 7919) % (2 * NP * PER);

        topic[i] = j % 2 ? "t.b" : "t.a";
        part[i] = (int32_t)((j / 2) % NP);
        off[i] = (int64_t)(j / (2 * NP)) + 100 * part[i];
        add(f, topic[i], part[i], off[i]);
    }
    assert_int_equal(cwpp_fence_nrecords(f), 2 * NP * PER);
    assert_int_equal(cwpp_fence_nparts(f), 2 * NP);
    for (i = 0; i < 2 * NP * PER; i++) {
        const cwpp_fence_part_t *p = cwpp_fence_part(f, cwpp_fence_part_of(f, i));

        assert_string_equal(p->topic, topic[i]);
        assert_int_equal(p->partition, part[i]);
        assert_int_equal(p->lo, 100 * part[i]);
        assert_int_equal(p->hi, 100 * part[i] + PER - 1);
    }
    /* stored: the middle record of every partition of t.b and of even partitions of t.a
     * is the first not applied; rows come back in reverse order */
    for (k = 2 * NP; k-- > 0;) {
        const cwpp_fence_part_t *p = cwpp_fence_part(f, k);
        int                      mid = strcmp(p->topic, "t.b") == 0 || p->partition % 2 == 0;

        rows[n][0] = (int64_t)k;
        rows[n][1] = mid ? p->lo + 1 : 0;
        n++;
    }
    assert_int_equal(lock_with(f, (const int64_t(*)[2])rows, (int)n), CWPP_OK);
    for (i = 0; i < 2 * NP * PER; i++) {
        int mid = strcmp(topic[i], "t.b") == 0 || part[i] % 2 == 0;

        assert_int_equal(cwpp_fence_applied(f, i), mid && off[i] == 100 * part[i]);
    }
    free(rows);
    cwpp_fence_destroy(f);
}

/* The "already applied" decision: offset < stored next_offset, per partition. */
static void test_applied_decision(void **state)
{
    static const struct { int64_t next, offset; int applied; } cases[] = {
        {0, 0, 0},          /* a new row: nothing applied */
        {10, 9, 1},         /* below: a redelivery */
        {10, 10, 0},        /* the next one to apply */
        {10, 11, 0},        /* beyond (the records between went elsewhere) */
        {1LL << 40, (1LL << 40) - 1, 1}, /* 64-bit offsets */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cwpp_fence_t *f = new_fence();
        int64_t       row[1][2] = {{0, cases[i].next}};

        add(f, "t", 0, cases[i].offset);
        assert_int_equal(lock_with(f, (const int64_t(*)[2])row, 1), CWPP_OK);
        assert_int_equal(cwpp_fence_part(f, 0)->next, cases[i].next);
        assert_int_equal(cwpp_fence_applied(f, 0), cases[i].applied);
        cwpp_fence_destroy(f);
    }
}

/* A lock result that misses a partition, names one the batch lacks, or is not the
 * lock's: the transaction cannot be trusted, retry it. */
static void test_bad_lock_results(void **state)
{
    cwpp_fence_t  *f = new_fence();
    static const int64_t missing[1][2] = {{1, 5}};
    static const int64_t beyond[3][2] = {{0, 1}, {1, 1}, {2, 1}};
    static const int64_t negative[2][2] = {{0, 1}, {-1, 1}};
    PGresult      *r;
    char           err[256];

    (void)state;
    add(f, "t", 0, 1);
    add(f, "t", 1, 1);
    assert_int_equal(lock_with(f, missing, 1), CWPP_ETRANSIENT);
    assert_int_equal(lock_with(f, beyond, 3), CWPP_ETRANSIENT);
    assert_int_equal(lock_with(f, negative, 2), CWPP_ETRANSIENT);
    r = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
    assert_int_equal(cwpp_fence_read(f, r, err, sizeof(err)), CWPP_ETRANSIENT);
    assert_non_null(strstr(err, "not the lock's result"));
    PQclear(r);
    cwpp_fence_destroy(f);
}

/* The pipeline entries: names, the group and one JSON parameter; the lock's result goes
 * where the caller says; a new lock forgets values read before. */
static void test_statements(void **state)
{
    cwpp_fence_t  *f = new_fence();
    cwpp_pg_stmt_t q[CWPP_FENCE_LOCK_NSTMTS], adv;
    PGresult      *res = (PGresult *)1;
    static const int64_t rows[2][2] = {{1, 8}, {0, 3}};
    char           err[128];

    (void)state;
    add(f, "t.x", 7, 4);
    add(f, "t.\"y\"", 0, 9);
    add(f, "t.x", 7, 2);
    assert_int_equal(cwpp_fence_lock_stmts(f, q, &res, err, sizeof(err)), CWPP_OK);
    assert_string_equal(cwpp_fence_json(f),
                        "[{\"i\":0,\"t\":\"t.x\",\"p\":7,\"lo\":2,\"hi\":4},"
                        "{\"i\":1,\"t\":\"t.\\\"y\\\"\",\"p\":0,\"lo\":9,\"hi\":9}]");
    assert_string_equal(q[0].stmt, CWPP_FENCE_STMT_ROWS);
    assert_string_equal(q[1].stmt, CWPP_FENCE_STMT_LOCK);
    assert_int_equal(q[0].n, 2);
    assert_int_equal(q[1].n, 2);
    assert_string_equal(q[0].v[0], "grp");
    assert_ptr_equal(q[0].v[1], cwpp_fence_json(f));
    assert_ptr_equal(q[1].v[1], cwpp_fence_json(f));
    assert_int_equal(q[0].want, PGRES_COMMAND_OK);
    assert_int_equal(q[1].want, PGRES_TUPLES_OK);
    assert_null(q[0].res);
    assert_ptr_equal(q[1].res, &res);

    assert_int_equal(lock_with(f, rows, 2), CWPP_OK);
    assert_int_equal(cwpp_fence_part(f, 0)->next, 3);
    assert_int_equal(cwpp_fence_part(f, 1)->next, 8);
    assert_true(cwpp_fence_applied(f, 2)); /* t.x 7 @2 < 3 */
    assert_false(cwpp_fence_applied(f, 0));
    assert_false(cwpp_fence_applied(f, 1)); /* @9 >= 8 */
    assert_int_equal(cwpp_fence_lock_stmts(f, q, NULL, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_fence_part(f, 0)->next, 0); /* a retried transaction reads again */
    assert_null(q[1].res);

    cwpp_fence_advance_stmt(f, &adv);
    assert_string_equal(adv.stmt, CWPP_FENCE_STMT_ADVANCE);
    assert_int_equal(adv.n, 2);
    assert_string_equal(adv.v[0], "grp");
    assert_ptr_equal(adv.v[1], cwpp_fence_json(f)); /* next = hi + 1 from the JSON */
    assert_int_equal(adv.want, PGRES_COMMAND_OK);
    assert_null(adv.res);
    cwpp_fence_destroy(f);
}

/* A reset fence is empty; the next batch is described afresh (nothing carried over). */
static void test_reset(void **state)
{
    cwpp_fence_t        *f = new_fence();
    static const int64_t row[1][2] = {{0, 50}};
    char                 err[128];
    cwpp_pg_stmt_t       q[CWPP_FENCE_LOCK_NSTMTS];
    size_t               i;

    (void)state;
    for (i = 0; i < 300; i++)
        add(f, "t", (int32_t)i, 40);
    cwpp_fence_reset(f);
    assert_int_equal(cwpp_fence_nparts(f), 0);
    assert_int_equal(cwpp_fence_nrecords(f), 0);
    add(f, "t", 299, 60);
    add(f, "t", 299, 45);
    assert_int_equal(cwpp_fence_nparts(f), 1);
    assert_int_equal(cwpp_fence_part(f, 0)->partition, 299);
    assert_int_equal(cwpp_fence_part(f, 0)->lo, 45);
    assert_int_equal(cwpp_fence_part(f, 0)->hi, 60);
    assert_int_equal(lock_with(f, row, 1), CWPP_OK);
    assert_false(cwpp_fence_applied(f, 0));
    assert_true(cwpp_fence_applied(f, 1));
    cwpp_fence_reset(f); /* an empty batch: an empty array */
    assert_int_equal(cwpp_fence_lock_stmts(f, q, NULL, err, sizeof(err)), CWPP_OK);
    assert_string_equal(cwpp_fence_json(f), "[]");
    cwpp_fence_destroy(f);
    cwpp_fence_destroy(NULL);
}

/* From the loop's message array: record i is msgs[i], topics by their handles' names. */
static void test_batch_of_messages(void **state)
{
    rd_kafka_conf_t    *conf = rd_kafka_conf_new();
    rd_kafka_t         *rk;
    rd_kafka_topic_t   *ta, *tb;
    rd_kafka_message_t  m[600];
    rd_kafka_message_t *msgs[600];
    cwpp_fence_t       *f = new_fence();
    char                err[256];
    size_t              i;

    (void)state;
    rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    ta = rd_kafka_topic_new(rk, "t.alerts.normalized", NULL);
    tb = rd_kafka_topic_new(rk, "t.commands", NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    memset(m, 0, sizeof(m));
    for (i = 0; i < 600; i++) { /* 300 partitions of one topic, then one of the other */
        m[i].rkt = i < 599 ? ta : tb;
        m[i].partition = (int32_t)(i % 300);
        m[i].offset = (int64_t)(1000 - i);
        msgs[i] = &m[i];
    }
    assert_int_equal(cwpp_fence_batch(f, msgs, 600, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_fence_nrecords(f), 600);
    assert_int_equal(cwpp_fence_nparts(f), 301);
    for (i = 0; i < 600; i++) {
        const cwpp_fence_part_t *p = cwpp_fence_part(f, cwpp_fence_part_of(f, i));

        assert_string_equal(p->topic, i < 599 ? "t.alerts.normalized" : "t.commands");
        assert_int_equal(p->partition, (int32_t)(i % 300));
    }
    assert_int_equal(cwpp_fence_part(f, 5)->lo, 1000 - 305);
    assert_int_equal(cwpp_fence_part(f, 5)->hi, 1000 - 5);
    assert_int_equal(cwpp_fence_part(f, 300)->lo, 1000 - 599);
    /* a second batch through the same fence: reset by cwpp_fence_batch */
    assert_int_equal(cwpp_fence_batch(f, msgs, 2, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_fence_nparts(f), 2);
    assert_int_equal(cwpp_fence_nrecords(f), 2);
    cwpp_fence_destroy(f);
    rd_kafka_topic_destroy(ta);
    rd_kafka_topic_destroy(tb);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_partition_out_of_order),
        cmocka_unit_test(test_interleaved_topics),
        cmocka_unit_test(test_many_partitions),
        cmocka_unit_test(test_applied_decision),
        cmocka_unit_test(test_bad_lock_results),
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_batch_of_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
