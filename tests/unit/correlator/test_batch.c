/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_batch: how the correlator splits a batch between its workers (corr_split_batch,
 * services/correlator/corr_workers.c; correlator.workers in docs/correlator.md). A table
 * of batches, each a list of topic-partitions in record order, with the worker of each
 * record and each worker's load expected:
 *  - a partition goes whole to one worker (events never span partitions);
 *  - the largest partition first, to the least loaded worker; ties go to the partition
 *    seen first and to the lowest worker;
 *  - the same partition number on two topics is two partitions;
 *  - one worker takes everything; extra workers stay idle; an empty batch is no work;
 *    a one-record batch is one share, whatever the number of workers.
 * And what a failed batch returns to the loop (corr_failure_rc, corr_combine_rc): a
 * batch whose data PostgreSQL refused says CWPP_EDATA (the loop then applies it record
 * by record and dead-letters the record refused alone); every other failure is
 * CWPP_ETRANSIENT (retried whole), and wins over CWPP_EDATA when shares fail apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "corr_internal.h"

#define MAXREC 16

typedef struct {
    const char *name;
    int         nworkers;
    const char *recs;            /* one letter per record: its partition (topic "a.t");
                                  * upper case: partition of the same number on "b.t" */
    int         worker[MAXREC];  /* expected worker of each record */
    size_t      load[CORR_MAX_WORKERS];
    size_t      nshares;
} split_case_t;

static const split_case_t cases[] = {
    {"one worker takes everything", 1, "abcab", {0, 0, 0, 0, 0}, {5}, 3},
    {"largest first, to the least loaded", 2, "aaaaabbbcc",
     {0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, {5, 5}, 3},
    {"records interleaved keep their partition's worker", 2, "abacabaa",
     {0, 1, 0, 1, 0, 1, 0, 0}, {5, 3}, 3},
    {"a tie goes to the partition seen first, then the lowest worker", 2, "baab",
     {0, 1, 1, 0}, {2, 2}, 2},
    {"the same number on another topic is another partition", 2, "aAaA",
     {0, 1, 0, 1}, {2, 2}, 2},
    {"more workers than partitions: the rest stay idle", 4, "aab", {0, 0, 1}, {2, 1, 0, 0},
     2},
    {"three workers, uneven partitions", 3, "aaaabbbccd",
     {0, 0, 0, 0, 1, 1, 1, 2, 2, 2}, {4, 3, 3}, 4},
    {"an empty batch", 2, "", {0}, {0, 0}, 0},
    {"one record, several workers: one share on the first", 4, "c", {0}, {1, 0, 0, 0}, 1},
};

static void test_split_table(void **state)
{
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const split_case_t *tc = &cases[i];
        size_t              n = strlen(tc->recs), load[CORR_MAX_WORKERS], nsh, total = 0;
        corr_rec_key_t      keys[MAXREC];
        corr_share_t        shares[MAXREC];
        int                 worker_of[MAXREC];
        int                 w;

        print_message("case: %s\n", tc->name);
        for (j = 0; j < n; j++) {
            char c = tc->recs[j];

            keys[j].topic = c >= 'a' ? "a.t" : "b.t";
            keys[j].partition = c >= 'a' ? c - 'a' : c - 'A';
        }
        nsh = corr_split_batch(keys, n, tc->nworkers, shares, worker_of, load);
        assert_int_equal(nsh, tc->nshares);
        for (j = 0; j < n; j++)
            assert_int_equal(worker_of[j], tc->worker[j]);
        for (w = 0; w < tc->nworkers; w++) {
            assert_int_equal(load[w], tc->load[w]);
            total += load[w];
        }
        assert_int_equal(total, n);
        for (j = 0; j < nsh; j++) { /* every share assigned, its count its records */
            size_t k, count = 0;

            assert_true(shares[j].worker >= 0 && shares[j].worker < tc->nworkers);
            for (k = 0; k < n; k++)
                if (keys[k].partition == shares[j].partition &&
                    strcmp(keys[k].topic, shares[j].topic) == 0) {
                    count++;
                    assert_int_equal(worker_of[k], shares[j].worker);
                }
            assert_int_equal(count, shares[j].count);
        }
    }
}

static void test_failure_codes(void **state)
{
    (void)state;
    assert_int_equal(corr_failure_rc(CWPP_EDATA), CWPP_EDATA);
    assert_int_equal(corr_failure_rc(CWPP_ETRANSIENT), CWPP_ETRANSIENT);
    assert_int_equal(corr_failure_rc(CWPP_ENOMEM), CWPP_ETRANSIENT);
    assert_int_equal(corr_failure_rc(CWPP_ECONFIG), CWPP_ETRANSIENT);
    assert_int_equal(corr_failure_rc(CWPP_EINVAL), CWPP_ETRANSIENT);
}

typedef struct {
    const char *name;
    int         rcs[4];
    size_t      n;
    int         want, which;
} combine_case_t;

static void test_combine_table(void **state)
{
    static const combine_case_t ccases[] = {
        {"every share committed", {0, 0, 0}, 3, CWPP_OK, -1},
        {"no share at all", {0}, 0, CWPP_OK, -1},
        {"one share's data refused", {0, CWPP_EDATA}, 2, CWPP_EDATA, 1},
        {"two refused: the first speaks", {CWPP_EDATA, 0, CWPP_EDATA}, 3, CWPP_EDATA, 0},
        {"transient wins over refused", {CWPP_EDATA, CWPP_ETRANSIENT}, 2, CWPP_ETRANSIENT, 1},
        {"refused after transient", {CWPP_ETRANSIENT, CWPP_EDATA}, 2, CWPP_ETRANSIENT, 0},
        {"out of memory is transient", {0, CWPP_ENOMEM, CWPP_EDATA}, 3, CWPP_ETRANSIENT, 1},
        {"the first transient speaks", {CWPP_ENOMEM, CWPP_ETRANSIENT}, 2, CWPP_ETRANSIENT, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
        int which = 99;

        print_message("case: %s\n", ccases[i].name);
        assert_int_equal(corr_combine_rc(ccases[i].rcs, ccases[i].n, &which), ccases[i].want);
        assert_int_equal(which, ccases[i].which);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_failure_codes),
        cmocka_unit_test(test_combine_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
