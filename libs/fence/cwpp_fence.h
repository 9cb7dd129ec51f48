/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_fence: the consumer-offset fence, which makes a batch's database effect happen
 * once even though Kafka delivers the batch again after a crash ("no double effect").
 *
 * The table consumer_offsets (schemas/sql/001_alerts.sql) holds, per consumer group and
 * input partition, next_offset: every record below it has its effect in the database.
 * In the SAME transaction as a batch's effect, a service
 *   1. makes sure the group's rows of the batch's partitions exist and locks them, in
 *      one deterministic order (topic, partition) so two transactions of a group never
 *      wait on each other in a cycle, and reads next_offset (cwpp_fence_lock_stmts +
 *      cwpp_fence_read, or cwpp_fence_lock);
 *   2. applies the effect of the records that are not applied yet: a record at an offset
 *      below the stored next_offset is a redelivery (cwpp_fence_applied);
 *   3. advances next_offset to the batch's highest offset + 1 per partition, never
 *      backwards (cwpp_fence_advance_stmt, or cwpp_fence_advance), and commits.
 * The locks serialise two instances of a group that briefly share a partition during a
 * rebalance: the second waits, then sees the first one's offsets and skips its records.
 *
 * One form of SQL for every service: the batch's partitions travel as ONE JSON parameter
 * (cwpp_fence_json), so the statements are three whatever the partition count, and any
 * number of partitions fits (arrays grow). The statements are prepared on a connection
 * with cwpp_fence_prepare and can be run either as plain calls (one round trip each) or
 * as cwpp_pg_stmt_t entries of the caller's own pipeline (no round trip of their own):
 * BEGIN and the lock go with the service's first reads, the advance with its last
 * writes and COMMIT.
 *
 * A fence is built per batch from the records the transaction covers (cwpp_fence_batch
 * from the loop's message array, or cwpp_fence_add one record at a time): record i is
 * the i-th one added. A service that splits a batch over parallel transactions (one per
 * worker and share of the partitions) gives each worker its own fence built from its
 * share's records.
 *
 * Not thread-safe: one fence per thread. Topic names are not copied: they must stay
 * valid until the fence is reset or destroyed (rd_kafka_topic_name of the batch's
 * messages are).
 */
#ifndef CWPP_FENCE_H
#define CWPP_FENCE_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_pg.h"
#include "cwpp_util.h"

/* Names of the prepared statements (cwpp_fence_prepare); callers' own statements must
 * not use them. */
#define CWPP_FENCE_STMT_ROWS    "cwpp_fence_rows"
#define CWPP_FENCE_STMT_LOCK    "cwpp_fence_lock"
#define CWPP_FENCE_STMT_ADVANCE "cwpp_fence_advance"

/* Pipeline entries cwpp_fence_lock_stmts fills. */
#define CWPP_FENCE_LOCK_NSTMTS 2

typedef struct cwpp_fence cwpp_fence_t;

/* One input partition of the batch. */
typedef struct cwpp_fence_part {
    const char *topic;     /* the caller's string (not copied) */
    int32_t     partition;
    int64_t     lo, hi;    /* lowest and highest offset of the batch's records */
    int64_t     next;      /* stored next_offset (cwpp_fence_read); 0 before */
} cwpp_fence_part_t;

/* A fence for consumer group `group` (copied). NULL with errstr on allocation failure. */
cwpp_fence_t *cwpp_fence_new(const char *group, char *errstr, size_t errstr_size);
/* Frees the fence. Accepts NULL. */
void cwpp_fence_destroy(cwpp_fence_t *f);

/* Prepares the three statements on pg's live connection (once per connection: the
 * caller keeps track, as for its own statements). Returns 0, or cwpp_pg_check's code
 * with the server's reason. */
int cwpp_fence_prepare(cwpp_pg_t *pg, char *errstr, size_t errstr_size);

/* --- building the batch (pure: no database) */

/* Forgets the batch (keeps the memory for the next one). Cannot fail. */
void cwpp_fence_reset(cwpp_fence_t *f);
/* Adds the next record (number cwpp_fence_nrecords before the call): its partition is
 * created on first sight and its range widened. Records may come in any order. Returns
 * 0 or CWPP_ENOMEM (the fence is then unusable until reset). */
int cwpp_fence_add(cwpp_fence_t *f, const char *topic, int32_t partition, int64_t offset,
                   char *errstr, size_t errstr_size);
/* Resets and adds msgs[0..n-1] (record i = msgs[i]). Returns 0 or CWPP_ENOMEM. */
int cwpp_fence_batch(cwpp_fence_t *f, rd_kafka_message_t *const *msgs, size_t n,
                     char *errstr, size_t errstr_size);

/* Records added since the reset / distinct partitions among them. */
size_t cwpp_fence_nrecords(const cwpp_fence_t *f);
size_t cwpp_fence_nparts(const cwpp_fence_t *f);
/* Partition k (k < cwpp_fence_nparts), in order of first sight. */
const cwpp_fence_part_t *cwpp_fence_part(const cwpp_fence_t *f, size_t k);
/* Index of record i's partition (i < cwpp_fence_nrecords). */
size_t cwpp_fence_part_of(const cwpp_fence_t *f, size_t i);

/* --- the transaction */

/*
 * Fills q[0] and q[1] (CWPP_FENCE_LOCK_NSTMTS entries) for the caller's pipeline, after
 * its BEGIN: create the missing rows, then lock the rows and read next_offset; the lock
 * result goes to *lock_res (NULL: the caller routes results itself) for cwpp_fence_read.
 * Builds the JSON parameter (cwpp_fence_json), which q points into: it stays valid until
 * the fence is reset. Returns 0 or CWPP_ENOMEM.
 */
int cwpp_fence_lock_stmts(cwpp_fence_t *f, cwpp_pg_stmt_t *q, PGresult **lock_res,
                          char *errstr, size_t errstr_size);
/* Takes the lock statement's result (not cleared: the caller's): the stored next_offset
 * of every partition. Returns 0, or CWPP_ETRANSIENT when a partition's row is missing
 * or the result is not the lock's (retry the transaction). */
int cwpp_fence_read(cwpp_fence_t *f, const PGresult *r, char *errstr, size_t errstr_size);
/* Both in one round trip, as plain calls inside the caller's open transaction. Returns
 * 0, CWPP_ENOMEM, or cwpp_pg_pipeline's code. */
int cwpp_fence_lock(cwpp_fence_t *f, cwpp_pg_t *pg, char *errstr, size_t errstr_size);

/* 1 when record i's effect is already in the database (its offset is below its
 * partition's stored next_offset: a redelivery), else 0. Meaningful after
 * cwpp_fence_read / cwpp_fence_lock; before, nothing is applied. */
int cwpp_fence_applied(const cwpp_fence_t *f, size_t i);

/* Fills q[0] for the caller's pipeline, before its COMMIT: next_offset = hi + 1 for every
 * partition whose stored value is lower. Needs cwpp_fence_lock_stmts (or _lock) first.
 * Cannot fail. */
void cwpp_fence_advance_stmt(const cwpp_fence_t *f, cwpp_pg_stmt_t *q);
/* The same as a plain call (one round trip). Returns 0 or cwpp_pg_pipeline's code. */
int cwpp_fence_advance(const cwpp_fence_t *f, cwpp_pg_t *pg, char *errstr,
                       size_t errstr_size);

/* The batch's partitions as the statements' JSON parameter (NUL-terminated), built by
 * cwpp_fence_lock_stmts: [{"i":k,"t":topic,"p":partition,"lo":lo,"hi":hi},...], k the
 * partition's index. A caller may pass it to its own statements too (for example
 * json_to_recordset($1::json) AS x(t text, p int, lo bigint, hi bigint) to find what
 * the batch's offsets produced before). Valid until the fence is reset. */
const char *cwpp_fence_json(const cwpp_fence_t *f);

#endif /* CWPP_FENCE_H */
