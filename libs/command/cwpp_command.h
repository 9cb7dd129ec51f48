/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_command: the command protocol (docs/commands.md), once, for every service that
 * takes analysts' commands (whitelist-filter, responder, exporter).
 *
 * A Command record (schemas/command.avsc) on <prefix>commands is applied at most once by
 * the service it names and answered by a CommandResult (schemas/command_result.avsc) on
 * <prefix>command-results. cwpp_commander_apply runs the whole sequence for one record:
 *
 *   decode (a bad record goes to the service's dead-letter hook)
 *   -> skip commands of other services
 *   -> [BEGIN, when the service applies each command in its own transaction]
 *   -> the per-command advisory lock (two group members during a rebalance: one applies,
 *      the other then finds the record)
 *   -> commands_applied: applied before? the stored answer again (and the service's
 *      redelivery hook re-sends what the answer implies)
 *   -> SAVEPOINT
 *   -> the pure checks: issue time, payload, actor named, staleness, a known type
 *   -> the actor: a known, enabled user who is not a viewer; an admin for admin-only types
 *   -> the handler of the service's table
 *   -> ROLLBACK TO SAVEPOINT on a refusal or a refusal by the database (and the records
 *      the handler queued are dropped, the service's undo hook runs)
 *   -> record in commands_applied, answer on the outbox, a log line, a metric
 *   -> RELEASE SAVEPOINT [, COMMIT]
 *
 * Handlers of commands on an account's objects call cwpp_commander_permit once they know
 * the object's account. Every change a handler makes is appended to activity_log with
 * cwpp_command_log.
 *
 * One cwpp_commander_t per service thread (it holds scratch Avro values); not
 * thread-safe.
 */
#ifndef CWPP_COMMAND_H
#define CWPP_COMMAND_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_avro.h"
#include "cwpp_http.h"
#include "cwpp_kafka.h"
#include "cwpp_pg.h"

/* ------------------------------------------------------------- the record */

/* A Command record as decoded: the strings are borrowed from the value it was decoded
 * into; payload is owned (json_decref), NULL when payload_json is not a JSON object. */
typedef struct cwpp_command {
    const char *id, *service, *type, *actor;
    int64_t     issued_at_ms;
    json_t     *payload;
} cwpp_command_t;

/*
 * Decodes the len bytes at p into v (a value of t, the command schema) and c. Returns 0,
 * or -1 with why (not a Command record, incomplete, an id empty or longer than max_id).
 */
int cwpp_command_decode(const cwpp_avro_type_t *t, avro_value_t *v, const void *p, size_t len,
                        size_t max_id, cwpp_command_t *c, char *why, size_t why_size);

/*
 * The CommandResult (t, v: the command_result schema) answering c for service, encoded
 * into buf (reset first). message must be valid UTF-8; result_json a JSON object text.
 * Returns 0 or an error with errstr.
 */
int cwpp_command_result(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                        const char *service, const cwpp_command_t *c, const char *status,
                        const char *message, const char *result_json, char *errstr,
                        size_t errstr_size);

/* ---------------------------------------------------------- the answer built */

#define CWPP_COMMAND_MSG_MAX 4096

/* The answer a handler builds: status "ok" (the default) or "error", one readable
 * message, and the result (owned; NULL is "{}"). */
typedef struct cwpp_command_reply {
    const char *status;
    char        msg[CWPP_COMMAND_MSG_MAX];
    json_t     *result;
} cwpp_command_reply_t;

/* Sets rp to "error" with the formatted sentence. Returns 0 (CWPP_OK), so a handler can
 * `return cwpp_command_refuse(rp, ...)`. */
int cwpp_command_refuse(cwpp_command_reply_t *rp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------- the dispatch table */

/* Who may issue a command type. Every actor must be a known, enabled user. */
typedef enum cwpp_command_who {
    /* a user holding permission on the account of the object acted on (an admin holds
     * every account): the handler calls cwpp_commander_permit once it knows it */
    CWPP_COMMAND_ACCOUNT = 0,
    /* any known, enabled user: the handler narrows what they see (an export) */
    CWPP_COMMAND_USER,
    /* admins only, checked before the handler runs */
    CWPP_COMMAND_ADMIN
} cwpp_command_who_t;

/*
 * A handler: applies c (payload not NULL, actor allowed as its entry says) inside the
 * savepoint. Returns 0 with rp set (ok, or a refusal through cwpp_command_refuse); or
 * CWPP_EDATA when the database refused the data (the command is refused with the
 * server's words); any other code fails the batch. Records it adds to out are dropped
 * when it refuses.
 */
typedef int (*cwpp_command_fn)(void *svc, const cwpp_command_t *c, cwpp_command_reply_t *rp,
                               cwpp_outbox_t *out, char *errstr, size_t errstr_size);

typedef struct cwpp_command_def {
    const char        *type; /* "whitelist.add_alert" */
    cwpp_command_fn    fn;
    cwpp_command_who_t who;
} cwpp_command_def_t;

/* The entry of type in table (n entries), or NULL. */
const cwpp_command_def_t *cwpp_command_find(const cwpp_command_def_t *table, size_t n,
                                            const char *type);

/*
 * The checks that need no database, in the order they are made: the issue time is a
 * time of the last years or the next 5 minutes (now_ms), the payload is a JSON object, an
 * actor is named, the command is not older than max_age_ms (max_age_key names that
 * setting in the refusal), and its type is in table. Returns the entry, or NULL with the
 * refusal sentence in why (an unknown type lists the known ones).
 */
const cwpp_command_def_t *cwpp_command_precheck(const cwpp_command_t *c, const char *service,
                                                const cwpp_command_def_t *table, size_t n,
                                                int64_t now_ms, int64_t max_age_ms,
                                                const char *max_age_key, char *why,
                                                size_t why_size);

/* ------------------------------------------------------------- the service */

typedef struct cwpp_commander cwpp_commander_t;

typedef struct cwpp_command_conf {
    const char               *service;     /* the Command's service: "whitelist" */
    const cwpp_command_def_t *table;       /* its types (static) */
    size_t                    ntable;
    size_t                    max_id;      /* longest command id accepted */
    int64_t                   max_age_ms;  /* older commands are refused as stale */
    const char               *max_age_key; /* the setting, for the refusal */
    const char               *metric;      /* counter name: "cwpp_whitelist_commands_total" */
    /* NULL: inside the caller's open transaction; else each command in a transaction of
     * its own, opened with this statement ("BEGIN ISOLATION LEVEL REPEATABLE READ") */
    const char               *begin_sql;
    void                     *svc;         /* handed to the handlers and hooks */
    /* a record that is not a Command: to the dead-letter topic. Returns 0 or an error. */
    int (*dead_letter)(void *svc, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size);
    /* optional: a command applied before is answered again; re-send what that answer
     * implies (status and result as stored). Returns 0 or an error. */
    int (*redeliver)(void *svc, const cwpp_command_t *c, const char *status,
                     const json_t *result, cwpp_outbox_t *out, char *errstr,
                     size_t errstr_size);
    /* optional: remember the service's in-memory state before a command ... */
    void (*mark)(void *svc);
    /* ... and restore it when the command is rolled back */
    void (*undo)(void *svc);
} cwpp_command_conf_t;

/*
 * A commander for conf (copied; the table, strings and svc must outlive it) on pg (the
 * service's connection, borrowed) counting on metrics. NULL with errstr on failure.
 */
cwpp_commander_t *cwpp_commander_new(const cwpp_command_conf_t *conf, cwpp_pg_t *pg,
                                     cwpp_metrics_t *metrics, char *errstr,
                                     size_t errstr_size);
/* Frees. Accepts NULL. */
void cwpp_commander_destroy(cwpp_commander_t *cm);

/*
 * Applies the command record m (the sequence above), adding its answer to out. Returns 0
 * (applied, refused, answered again, another service's, or dead-lettered),
 * CWPP_EDATA when the database refuses even the plain answer (the service fails the
 * batch with it: the loop then dead-letters this record alone) or CWPP_ETRANSIENT /
 * another error to fail the batch.
 */
int cwpp_commander_apply(cwpp_commander_t *cm, const rd_kafka_message_t *m, cwpp_outbox_t *out,
                         char *errstr, size_t errstr_size);

/*
 * Whether user may act on account (NULL: only an admin may): 1 yes; 0 no, with why (not
 * a known user, disabled, a viewer — viewers never act, whatever the account —, no
 * permission on the account, not an admin); a negative
 * project code (-rc) on a database error, with errstr. *is_admin (may be NULL) says
 * whether user is an enabled admin.
 */
int cwpp_commander_may_act(cwpp_commander_t *cm, const char *user, const char *account,
                           int *is_admin, char *why, size_t why_size, char *errstr,
                           size_t errstr_size);

/*
 * For handlers: c's actor may act on account (NULL: admins only), else the command is
 * refused in rp with "Refused: <why>, so they cannot change this <what>." Returns 1
 * allowed; 0 refused (*rc = 0) or a database error (*rc set, errstr).
 */
int cwpp_commander_permit(cwpp_commander_t *cm, const cwpp_command_t *c, const char *account,
                          const char *what, cwpp_command_reply_t *rp, int *rc, char *errstr,
                          size_t errstr_size);

/*
 * The encoded CommandResult of c (for progress records sent outside the batch): a
 * buffer owned by cm, valid until its next use; NULL with errstr.
 */
const cwpp_buf_t *cwpp_commander_encode(cwpp_commander_t *cm, const cwpp_command_t *c,
                                        const char *status, const char *message,
                                        const char *result_json, char *errstr,
                                        size_t errstr_size);

/*
 * Appends an activity_log entry on pg: who (actor, command_id), what (otype, oid, and
 * the event; for an alert with event_id NULL, the latest event holding it), the action,
 * before and after (taken: released here; NULL accepted), the remark (empty: none).
 * A second entry for the same command, object and action is ignored. Returns 0 or an
 * error (CWPP_EDATA when the server refused the data).
 */
int cwpp_command_log(cwpp_pg_t *pg, const char *actor, const char *command_id,
                     const char *otype, const char *oid, const char *event_id,
                     const char *action, json_t *before, json_t *after, const char *remark,
                     char *errstr, size_t errstr_size);

#endif /* CWPP_COMMAND_H */
