/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_pg: one libpq connection per service thread, reconnected on demand, and the
 * classification of errors into "retry the batch" (connection lost, serialization,
 * server shutting down, out of resources) versus "this record's data is refused"
 * (classes 22 data exception, 23 integrity violation and 54 program limit exceeded),
 * which the caller isolates and dead-letters.
 *
 * Every connection carries bounds so that a silent network partition or a stuck server
 * is noticed in seconds, not in the kernel's two hours: TCP keepalives, a TCP user
 * timeout, a statement timeout and an idle-in-transaction timeout (cwpp_pg_tuning_t,
 * set once per process from the service's configuration).
 *
 * TLS to the server is the same for every connection of the process: pg.sslmode and
 * pg.sslrootcert (cwpp_pg_tuning_t's sslmode, sslrootcert) are added to every connection's
 * parameters, so a deployment asks for verify-full once instead of editing each DSN.
 * Empty leaves libpq's default (PGSSLMODE, else prefer). A DSN may name them too; when it
 * names one with a different value than the configuration, the connection is refused as
 * a configuration error (CWPP_ECONFIG naming both): neither silently overrides the other.
 *
 * Every statement is parameterised: callers use PQexecParams / PQsendQueryParams with
 * the SQL text fixed at compile time. Not thread-safe: one cwpp_pg_t per thread.
 */
#ifndef CWPP_PG_H
#define CWPP_PG_H

#include <libpq-fe.h>
#include <stddef.h>

#include "cwpp_util.h"

/* CWPP_EDATA (cwpp_util.h) is returned for a statement the server refused because of
 * the data (SQLSTATE 22xxx data exception, 23xxx integrity violation, 54xxx program
 * limit exceeded such as an index row too large): retrying the same data cannot
 * succeed. */

typedef struct cwpp_pg cwpp_pg_t;

/* Bounds every connection of the process gets (the DSN may override each). 0 leaves
 * libpq's or the server's default. */
typedef struct cwpp_pg_tuning {
    int connect_timeout_s;     /* connect_timeout */
    int statement_timeout_ms;  /* SET statement_timeout: a query that hangs fails */
    int idle_in_tx_timeout_ms; /* SET idle_in_transaction_session_timeout: the server
                                * ends a session whose client vanished mid-transaction,
                                * releasing its locks */
    int keepalives_idle_s;     /* TCP keepalives: probe an idle connection after this */
    int keepalives_interval_s; /* then every this */
    int keepalives_count;      /* and give up after this many unanswered */
    int tcp_user_timeout_ms;   /* unacknowledged data for this long breaks the
                                * connection (a partition during a query) */
    const char *sslmode;       /* libpq sslmode (disable, allow, prefer, require,
                                * verify-ca, verify-full); NULL or "": libpq's default */
    const char *sslrootcert;   /* CA file verifying the server; NULL or "": libpq's
                                * default (~/.postgresql/root.crt) */
} cwpp_pg_tuning_t;

/* The libpq keywords and values one connection is opened with (cwpp_pg_conninfo). */
typedef struct cwpp_pg_conninfo {
    const char *keys[16]; /* NULL-terminated */
    const char *vals[16];
    char        num[6][16];
    char        options[128];
} cwpp_pg_conninfo_t;

/* The tuning new connections get (before any thread connects; the service skeleton
 * calls it after loading the configuration). The defaults: connect 5 s, statement
 * 60 s, idle in transaction 120 s, keepalives 30 s / 10 s / 3, TCP user timeout 30 s. */
void cwpp_pg_set_tuning(const cwpp_pg_tuning_t *t);
/*
 * Fills ci with the parameters a connection to dsn gets, for PQconnectdbParams with
 * expand_dbname = 1: the tuning first (the DSN may override each), then the TLS settings,
 * then "dbname" = dsn (expanded there), then application_name. ci's arrays point into ci
 * and into the strings given and the process's tuning: use ci before those change.
 * Returns 0; CWPP_ECONFIG when the DSN is malformed, the configured sslmode is not one of
 * libpq's six, or the DSN names sslmode or sslrootcert with another value than the
 * configuration (errstr names both). Thread-safe once the tuning is set.
 */
int cwpp_pg_conninfo(cwpp_pg_conninfo_t *ci, const char *dsn, const char *application_name,
                     char *errstr, size_t errstr_size);
/* 1 when a server answers at dsn and accepts connections (PQpingParams: no login, so
 * no password is checked; the process's TLS settings apply), within timeout_s; 0 when it does not answer, refuses or
 * is starting up or shutting down. For /readyz; thread-safe. */
int cwpp_pg_ping(const char *dsn, int timeout_s);

/* Stores the connection string; does not connect. NULL on allocation failure. */
cwpp_pg_t *cwpp_pg_new(const char *dsn, const char *application_name);
/* Closes and frees. Accepts NULL. */
void cwpp_pg_destroy(cwpp_pg_t *pg);
/* Connects if not connected (or the connection went bad). Returns 0 or CWPP_ETRANSIENT
 * with libpq's reason (a server that refuses the TLS asked for is one); CWPP_ECONFIG
 * when the DSN itself is malformed or contradicts the TLS settings (cwpp_pg_conninfo). */
int cwpp_pg_ensure(cwpp_pg_t *pg, char *errstr, size_t errstr_size);
/* The live connection (NULL before cwpp_pg_ensure succeeded). */
PGconn *cwpp_pg_conn(cwpp_pg_t *pg);
/* Drops the connection so the next cwpp_pg_ensure reconnects (after an error). */
void cwpp_pg_reset(cwpp_pg_t *pg);

/* Checks a result: 0 if its status is expect, else CWPP_EDATA / CWPP_ETRANSIENT with
 * the server's message. Does not clear r. */
int cwpp_pg_check(cwpp_pg_t *pg, const PGresult *r, ExecStatusType expect, const char *what,
                  char *errstr, size_t errstr_size);
/*
 * Runs sql with the n text parameters v (NULL entries are SQL NULL) and checks that its
 * status is want. Returns 0 or, as cwpp_pg_check, CWPP_EDATA / CWPP_ETRANSIENT with the
 * server's message. On success the result goes to *res when res is not NULL (the
 * caller's to PQclear), else it is cleared; on failure nothing is kept.
 */
int cwpp_pg_query(cwpp_pg_t *pg, const char *sql, int n, const char *const *v,
                  ExecStatusType want, PGresult **res, char *errstr, size_t errstr_size);
/* A statement to prepare: its name and its SQL text (fixed at compile time). */
typedef struct cwpp_pg_named {
    const char *name;
    const char *sql;
} cwpp_pg_named_t;

/* Prepares the n statements on the live connection (prepared statements live as long as
 * the connection: callers prepare again after a reconnect). Returns 0 or the first
 * failure as cwpp_pg_check classifies it, naming the statement. */
int cwpp_pg_prepare(cwpp_pg_t *pg, const cwpp_pg_named_t *stmts, size_t n, char *errstr,
                    size_t errstr_size);

/* Runs a parameterless command (BEGIN, COMMIT, ROLLBACK) and checks it. */
int cwpp_pg_command(cwpp_pg_t *pg, const char *sql, char *errstr, size_t errstr_size);

/* One statement of a pipeline: a prepared statement name, or SQL when n < 0. With
 * CWPP_PG_UNPREPARED or-ed into n, stmt is SQL sent with the n parameters as an unnamed
 * statement, planned for these values every time: for a statement whose best plan
 * depends on how big its tables are now, which a cached generic plan made while they
 * were small does not follow. */
#define CWPP_PG_UNPREPARED 0x100
typedef struct cwpp_pg_stmt {
    const char     *stmt;
    int             n;
    const char     *v[6];
    ExecStatusType  want;
    PGresult      **res; /* where to keep the result, or NULL */
} cwpp_pg_stmt_t;

/*
 * Sends the statements in one pipeline and reads every result: one round trip for all.
 * The first failure is returned (later statements read as aborted); kept results are
 * the caller's to clear (NULL on failure). After a failure the caller resets the
 * connection or rolls back.
 */
int cwpp_pg_pipeline(cwpp_pg_t *pg, cwpp_pg_stmt_t *q, size_t nq, char *errstr,
                     size_t errstr_size);

#endif /* CWPP_PG_H */
