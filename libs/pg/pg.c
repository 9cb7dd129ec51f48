/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg.c: connection parameters (tuning, TLS), lifecycle and error classification. The
 * fault point "pg_exec" makes cwpp_pg_check report a transient failure, so tests can
 * drive retry paths.
 */
#include "cwpp_pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cwpp_pg {
    char   *dsn;
    char   *appname;
    PGconn *conn;
};

cwpp_pg_t *cwpp_pg_new(const char *dsn, const char *application_name)
{
    cwpp_pg_t *pg = calloc(1, sizeof(*pg));

    if (pg == NULL)
        return NULL;
    pg->dsn = strdup(dsn != NULL ? dsn : "");
    pg->appname = strdup(application_name != NULL ? application_name : "cwpp");
    if (pg->dsn == NULL || pg->appname == NULL) {
        cwpp_pg_destroy(pg);
        return NULL;
    }
    return pg;
}

void cwpp_pg_destroy(cwpp_pg_t *pg)
{
    if (pg == NULL)
        return;
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    free(pg->dsn);
    free(pg->appname);
    free(pg);
}

/* Written once at start-up, before any connection (cwpp_pg_set_tuning's contract). The
 * TLS strings are copied: the caller's configuration may be freed before the last
 * connection is. */
static cwpp_pg_tuning_t g_tuning = {5, 60000, 120000, 30, 10, 3, 30000, NULL, NULL};
static char             g_sslmode[32];
static char             g_sslrootcert[4096];

void cwpp_pg_set_tuning(const cwpp_pg_tuning_t *t)
{
    g_tuning = *t;
    cwpp_strlcpy(g_sslmode, t->sslmode != NULL ? t->sslmode : "", sizeof(g_sslmode));
    cwpp_strlcpy(g_sslrootcert, t->sslrootcert != NULL ? t->sslrootcert : "",
                 sizeof(g_sslrootcert));
    g_tuning.sslmode = g_sslmode;
    g_tuning.sslrootcert = g_sslrootcert;
}

/* The tuning as libpq keywords, placed before "dbname" so that a DSN naming one of them
 * wins; returns the number of pairs (at most 7). */
static int tuning_params(cwpp_pg_conninfo_t *kv)
{
    const cwpp_pg_tuning_t *t = &g_tuning;
    int                     n = 0, o;
    const struct {
        const char *key;
        int         v;
    } ints[] = {{"connect_timeout", t->connect_timeout_s},
                {"keepalives_idle", t->keepalives_idle_s},
                {"keepalives_interval", t->keepalives_interval_s},
                {"keepalives_count", t->keepalives_count},
                {"tcp_user_timeout", t->tcp_user_timeout_ms}};

    kv->keys[n] = "keepalives";
    kv->vals[n++] = "1";
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (ints[i].v <= 0)
            continue;
        snprintf(kv->num[i], sizeof(kv->num[i]), "%d", ints[i].v);
        kv->keys[n] = ints[i].key;
        kv->vals[n++] = kv->num[i];
    }
    o = 0;
    kv->options[0] = '\0';
    if (t->statement_timeout_ms > 0)
        o += snprintf(kv->options + o, sizeof(kv->options) - (size_t)o,
                      "-c statement_timeout=%d ", t->statement_timeout_ms);
    if (t->idle_in_tx_timeout_ms > 0)
        o += snprintf(kv->options + o, sizeof(kv->options) - (size_t)o,
                      "-c idle_in_transaction_session_timeout=%d", t->idle_in_tx_timeout_ms);
    if (o > 0) {
        kv->keys[n] = "options";
        kv->vals[n++] = kv->options;
    }
    return n;
}

/* libpq's sslmode values. */
static int sslmode_known(const char *m)
{
    static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca",
                                        "verify-full"};

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(m, modes[i]) == 0)
            return 1;
    return 0;
}

int cwpp_pg_conninfo(cwpp_pg_conninfo_t *ci, const char *dsn, const char *application_name,
                     char *errstr, size_t errstr_size)
{
    const struct {
        const char *key;  /* the libpq keyword */
        const char *conf; /* the configuration key naming it */
        const char *val;  /* configured value, "" = none */
    } tls[] = {{"sslmode", "pg.sslmode", g_tuning.sslmode != NULL ? g_tuning.sslmode : ""},
               {"sslrootcert", "pg.sslrootcert",
                g_tuning.sslrootcert != NULL ? g_tuning.sslrootcert : ""}};
    PQconninfoOption *opts, *o;
    char             *msg = NULL;
    int               n, rc = CWPP_OK;

    assert(ci != NULL);
    if (dsn == NULL)
        dsn = "";
    if (tls[0].val[0] != '\0' && !sslmode_known(tls[0].val))
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "pg.sslmode \"%.40s\" is not disable, allow, prefer, require, "
                           "verify-ca or verify-full", tls[0].val);
    opts = PQconninfoParse(dsn, &msg);
    if (opts == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "pg.dsn is malformed: %s",
                    msg != NULL ? msg : "out of memory");
        PQfreemem(msg);
        return CWPP_ECONFIG;
    }
    /* A DSN naming a TLS setting the configuration names differently: refuse, rather
     * than let either silently win (a verify-full asked for in one place and a disable
     * in the other is a mistake to show, not to resolve). */
    for (o = opts; o->keyword != NULL && rc == CWPP_OK; o++)
        for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
            if (strcmp(o->keyword, tls[i].key) == 0 && o->val != NULL && o->val[0] != '\0' &&
                tls[i].val[0] != '\0' && strcmp(o->val, tls[i].val) != 0) {
                rc = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                                 "pg.dsn says %s=%.200s but %s is \"%.200s\": set it in one "
                                 "place only", tls[i].key, o->val, tls[i].conf, tls[i].val);
                break;
            }
    PQconninfoFree(opts);
    if (rc != CWPP_OK)
        return rc;
    n = tuning_params(ci);
    for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
        if (tls[i].val[0] != '\0') {
            ci->keys[n] = tls[i].key;
            ci->vals[n++] = tls[i].val;
        }
    ci->keys[n] = "dbname";
    ci->vals[n++] = dsn;
    ci->keys[n] = "application_name";
    ci->vals[n++] = application_name != NULL ? application_name : "cwpp";
    ci->keys[n] = NULL;
    ci->vals[n] = NULL;
    assert((size_t)n < sizeof(ci->keys) / sizeof(ci->keys[0]));
    return CWPP_OK;
}

int cwpp_pg_ping(const char *dsn, int timeout_s)
{
    cwpp_pg_conninfo_t ci;
    char               t[16], errstr[64];
    int                n = 0;

    if (cwpp_pg_conninfo(&ci, dsn, "cwpp-ping", errstr, sizeof(errstr)) != CWPP_OK)
        return 0;
    /* the caller's bound, last so that it wins over the tuning's and the DSN's */
    snprintf(t, sizeof(t), "%d", timeout_s > 0 ? timeout_s : 2);
    while (ci.keys[n] != NULL)
        n++;
    assert((size_t)n + 1 < sizeof(ci.keys) / sizeof(ci.keys[0]));
    ci.keys[n] = "connect_timeout";
    ci.vals[n++] = t;
    ci.keys[n] = NULL;
    ci.vals[n] = NULL;
    return PQpingParams(ci.keys, ci.vals, 1) == PQPING_OK;
}

int cwpp_pg_ensure(cwpp_pg_t *pg, char *errstr, size_t errstr_size)
{
    cwpp_pg_conninfo_t ci;
    int                rc;

    if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK)
        return CWPP_OK;
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    if ((rc = cwpp_pg_conninfo(&ci, pg->dsn, pg->appname, errstr, errstr_size)) != CWPP_OK)
        return rc;
    /* expand_dbname=1: dbname holds the whole conninfo string or URI. */
    pg->conn = PQconnectdbParams(ci.keys, ci.vals, 1);
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot connect to PostgreSQL: %s",
                    pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory");
        if (pg->conn != NULL) {
            PQfinish(pg->conn);
            pg->conn = NULL;
        }
        return CWPP_ETRANSIENT;
    }
    return CWPP_OK;
}

PGconn *cwpp_pg_conn(cwpp_pg_t *pg)
{
    return pg->conn;
}

void cwpp_pg_reset(cwpp_pg_t *pg)
{
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
}

int cwpp_pg_check(cwpp_pg_t *pg, const PGresult *r, ExecStatusType expect, const char *what,
                  char *errstr, size_t errstr_size)
{
    const char *state;
    size_t      n;
    char        msg[400];

    if (cwpp_fault_hit("pg_exec"))
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s: injected fault", what);
    if (r != NULL && PQresultStatus(r) == expect)
        return CWPP_OK;
    cwpp_strlcpy(msg, r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn),
                 sizeof(msg));
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* 22 data exception, 23 integrity violation, 54 program limit exceeded (an index row
     * too large, too many arguments): this data can never be stored as it is */
    if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
                          strncmp(state, "54", 2) == 0))
        return cwpp_seterr(errstr, errstr_size, CWPP_EDATA, "%s: %s (SQLSTATE %s)", what, msg,
                           state);
    return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s: %s%s%s", what, msg,
                       state != NULL ? " SQLSTATE " : "", state != NULL ? state : "");
}

int cwpp_pg_query(cwpp_pg_t *pg, const char *sql, int n, const char *const *v,
                  ExecStatusType want, PGresult **res, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexecParams(pg->conn, sql, n, NULL, v, NULL, NULL, 0);
    int       rc = cwpp_pg_check(pg, r, want, "query", errstr, errstr_size);

    if (rc != CWPP_OK || res == NULL)
        PQclear(r);
    else
        *res = r;
    return rc;
}

int cwpp_pg_prepare(cwpp_pg_t *pg, const cwpp_pg_named_t *stmts, size_t n, char *errstr,
                    size_t errstr_size)
{
    size_t i;

    for (i = 0; i < n; i++) {
        PGresult *r = PQprepare(pg->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        int       rc = cwpp_pg_check(pg, r, PGRES_COMMAND_OK, stmts[i].name, errstr,
                                     errstr_size);

        PQclear(r);
        if (rc != CWPP_OK)
            return rc;
    }
    return CWPP_OK;
}

int cwpp_pg_command(cwpp_pg_t *pg, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexec(pg->conn, sql);
    int       rc = cwpp_pg_check(pg, r, PGRES_COMMAND_OK, sql, errstr, errstr_size);

    PQclear(r);
    return rc;
}

/*
 * Sends the statements in one pipeline and reads every result: one round trip for all.
 * The first failure is returned (later statements read as aborted); kept results are
 * the caller's to clear (NULL on failure).
 */
int cwpp_pg_pipeline(cwpp_pg_t *pg, cwpp_pg_stmt_t *q, size_t nq, char *errstr,
                     size_t errstr_size)
{
    PGconn  *c = cwpp_pg_conn(pg);
    size_t   i;
    int      rc = CWPP_OK;

    if (cwpp_fault_hit("pg_pipeline"))
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "injected fault (pg_pipeline)");
    if (PQenterPipelineMode(c) != 1)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot enter pipeline mode");
    for (i = 0; i < nq; i++) {
        int ok = q[i].n < 0 ? PQsendQueryParams(c, q[i].stmt, 0, NULL, NULL, NULL, NULL, 0)
               : q[i].n & CWPP_PG_UNPREPARED
                   ? PQsendQueryParams(c, q[i].stmt, q[i].n & ~CWPP_PG_UNPREPARED, NULL, q[i].v,
                                       NULL, NULL, 0)
                   : PQsendQueryPrepared(c, q[i].stmt, q[i].n, q[i].v, NULL, NULL, 0);

        if (q[i].res != NULL)
            *q[i].res = NULL;
        if (ok != 1) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "sending %s: %s", q[i].stmt,
                             PQerrorMessage(c));
            break;
        }
    }
    if (rc == CWPP_OK && PQpipelineSync(c) != 1)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "pipeline sync: %s",
                         PQerrorMessage(c));
    if (rc != CWPP_OK) {
        PQexitPipelineMode(c); /* fails when results are pending: the caller resets */
        return rc;
    }
    for (i = 0; i < nq; i++) {
        PGresult *r = PQgetResult(c), *extra;
        char      later[256]; /* after a failure the rest read as aborted: keep the first */
        int       qrc = rc == CWPP_OK
                            ? cwpp_pg_check(pg, r, q[i].want, q[i].stmt, errstr, errstr_size)
                            : cwpp_pg_check(pg, r, q[i].want, q[i].stmt, later, sizeof(later));

        if (rc == CWPP_OK && qrc != CWPP_OK)
            rc = qrc; /* later ones read as aborted behind it */
        if (rc == CWPP_OK && q[i].res != NULL)
            *q[i].res = r;
        else
            PQclear(r);
        while ((extra = PQgetResult(c)) != NULL) /* the NULL that ends each query */
            PQclear(extra);
    }
    {
        PGresult *sync = PQgetResult(c);

        if (rc == CWPP_OK && (sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC))
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "pipeline out of step");
        PQclear(sync);
    }
    if (PQexitPipelineMode(c) != 1 && rc == CWPP_OK)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot leave pipeline mode");
    if (rc != CWPP_OK)
        for (i = 0; i < nq; i++)
            if (q[i].res != NULL && *q[i].res != NULL) {
                PQclear(*q[i].res);
                *q[i].res = NULL;
            }
    return rc;
}
