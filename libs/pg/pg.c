/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pg.c: connection lifecycle and error classification. The fault point "pg_exec" makes
 * cwpp_pg_check report a transient failure, so tests can drive retry paths.
 */
#include "cwpp_pg.h"

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

int cwpp_pg_ensure(cwpp_pg_t *pg, char *errstr, size_t errstr_size)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {pg->dsn, pg->appname, "5", NULL};
    char       *msg = NULL;
    PQconninfoOption *opts;

    if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK)
        return CWPP_OK;
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    opts = PQconninfoParse(pg->dsn, &msg);
    if (opts == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "pg.dsn is malformed: %s",
                    msg != NULL ? msg : "out of memory");
        PQfreemem(msg);
        return CWPP_ECONFIG;
    }
    PQconninfoFree(opts);
    /* expand_dbname=1: dbname holds the whole conninfo string or URI. */
    pg->conn = PQconnectdbParams(keys, vals, 1);
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
    if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0))
        return cwpp_seterr(errstr, errstr_size, CWPP_EDATA, "%s: %s (SQLSTATE %s)", what, msg,
                           state);
    return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s: %s%s%s", what, msg,
                       state != NULL ? " SQLSTATE " : "", state != NULL ? state : "");
}

int cwpp_pg_command(cwpp_pg_t *pg, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *r = PQexec(pg->conn, sql);
    int       rc = cwpp_pg_check(pg, r, PGRES_COMMAND_OK, sql, errstr, errstr_size);

    PQclear(r);
    return rc;
}
