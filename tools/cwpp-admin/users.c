/* SPDX-License-Identifier: Apache-2.0 */
/*
 * users.c: `cwpp-admin users bootstrap NAME` and `cwpp-admin users password NAME`, the two
 * ways into the desk that do not go through cwpp-api, run by an operator holding the
 * database's administrative connection (CWPP_PG_ADMIN_DSN or --pg-dsn), as migrations are.
 *
 * bootstrap makes NAME the first admin and prints a one-time password (24 random bytes,
 * base64url) once; it refuses when an enabled admin who can log in already exists, so it
 * cannot be used to add a second way in. password sets NAME's password from the first
 * line of standard input (recovery of a locked-out admin, scripted set-ups), unlocks
 * the user and ends their sessions. Both hash with Argon2id at cwpp-api's default
 * parameters (cwpp-api rehashes at its own on the next login) and append to
 * activity_log with the actor "cwpp-admin".
 *
 * The connection takes TLS settings as the services do (libs/pg, cwpp_pg_conninfo):
 * CWPP_PG_SSLMODE and CWPP_PG_SSLROOTCERT, empty or unset for libpq's default; a DSN
 * naming another sslmode or sslrootcert is refused.
 */
#include "admin.h"
#include "cwpp_pg.h"

#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS 2u
#define MEM_KIB 19456u

static PGconn *connect_admin(const char *dsn)
{
    /* no bounds (an operator's tool may wait for a lock), TLS from the environment */
    cwpp_pg_tuning_t   tuning = {0, 0, 0, 0, 0, 0, 0, getenv("CWPP_PG_SSLMODE"),
                                 getenv("CWPP_PG_SSLROOTCERT")};
    cwpp_pg_conninfo_t ci;
    char               errstr[512];
    PGconn            *pg;
    PGresult          *r;

    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "cwpp-admin: set CWPP_PG_ADMIN_DSN or pass --pg-dsn (the database's "
                        "administrative connection)\n");
        return NULL;
    }
    cwpp_pg_set_tuning(&tuning);
    if (cwpp_pg_conninfo(&ci, dsn, "cwpp-admin", errstr, sizeof(errstr)) != CWPP_OK) {
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        return NULL;
    }
    pg = PQconnectdbParams(ci.keys, ci.vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "cwpp-admin: cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    r = PQexec(pg, "SET search_path = cwpp");
    PQclear(r);
    return pg;
}

/* Runs sql in pg; 0, or -1 after printing the server's words. rows: kept when not NULL. */
static int run(PGconn *pg, const char *sql, int n, const char *const *p, PGresult **rows)
{
    PGresult      *r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "cwpp-admin: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    if (rows != NULL)
        *rows = r;
    else
        PQclear(r);
    return 0;
}

static int name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (i > 0 && (ch == '.' || ch == '_' || ch == '@' || ch == '-'))))
            return 0;
    }
    return 1;
}

/* Stores pw for user in one transaction with the statements before (already begun). */
static int store(PGconn *pg, const char *user, const char *pw, const char *action)
{
    char        hash[crypto_pwhash_STRBYTES];
    const char *p[3] = {user, hash, action};

    if (crypto_pwhash_str_alg(hash, pw, strlen(pw), OPS, (size_t)MEM_KIB * 1024u,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        fprintf(stderr, "cwpp-admin: out of memory hashing the password\n");
        return -1;
    }
    if (run(pg,
            "INSERT INTO user_credentials (user_name, password_hash, changed_by) "
            "VALUES ($1, $2, 'cwpp-admin') ON CONFLICT (user_name) DO UPDATE SET "
            "password_hash = EXCLUDED.password_hash, changed_by = 'cwpp-admin', "
            "changed_at = now(), failed_logins = 0, locked_until = NULL",
            2, p, NULL) != 0 ||
        run(pg,
            "UPDATE api_tokens SET revoked_at = now(), revoked_by = 'cwpp-admin' "
            "WHERE user_name = $1 AND kind = 'session' AND revoked_at IS NULL",
            1, p, NULL) != 0)
        return -1;
    p[1] = action;
    return run(pg,
               "INSERT INTO activity_log (actor, object_type, object_id, action) "
               "VALUES ('cwpp-admin', 'user', $1, $2)", 2, p, NULL);
}

static int bootstrap(PGconn *pg, const char *user)
{
    const char   *p[1] = {user};
    PGresult     *r;
    unsigned char b[24];
    char          pw[40];
    int           taken;

    if (run(pg, "BEGIN", 0, NULL, NULL) != 0 ||
        /* two bootstraps at once: one waits, then sees the other's admin */
        run(pg, "LOCK TABLE user_credentials IN EXCLUSIVE MODE", 0, NULL, NULL) != 0 ||
        run(pg,
            "SELECT string_agg(u.user_name, ', ') FROM users u JOIN user_credentials c "
            "USING (user_name) WHERE u.role = 'admin' AND u.disabled_at IS NULL HAVING count(*) > 0",
            0, NULL, &r) != 0)
        goto fail;
    taken = PQntuples(r) == 1;
    if (taken) {
        fprintf(stderr,
                "cwpp-admin: the desk already has an admin who can log in (%s); log in as them "
                "to add users, or reset one with `cwpp-admin users password NAME`\n",
                PQgetvalue(r, 0, 0));
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    if (run(pg, "SELECT role FROM users WHERE user_name = $1", 1, p, &r) != 0)
        goto fail;
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "admin") != 0) {
        fprintf(stderr, "cwpp-admin: %s exists and is not an admin; choose another name\n", user);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    if (run(pg,
            "INSERT INTO users (user_name, display_name, role, created_by) "
            "VALUES ($1, 'first admin', 'admin', 'cwpp-admin bootstrap') "
            "ON CONFLICT (user_name) DO UPDATE SET disabled_at = NULL",
            1, p, NULL) != 0)
        goto fail;
    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(pw, sizeof(pw), b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (store(pg, user, pw, "bootstrap") != 0 || run(pg, "COMMIT", 0, NULL, NULL) != 0)
        goto fail;
    printf("admin %s created; one-time password: %s\n", user, pw);
    printf("log in (cwppctl login --user %s, or the console) and change it at once\n", user);
    sodium_memzero(pw, sizeof(pw));
    return 0;
fail:
    PQclear(PQexec(pg, "ROLLBACK"));
    return 2;
}

static int password(PGconn *pg, const char *user)
{
    char        line[1100];
    const char *p[1] = {user};
    PGresult   *r;
    size_t      n;
    int         exists;

    if (fgets(line, sizeof(line), stdin) == NULL) {
        fprintf(stderr, "cwpp-admin: give the new password on standard input\n");
        return 1;
    }
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n < 12 || n > 1024) {
        fprintf(stderr, "cwpp-admin: a password has 12 to 1024 characters\n");
        return 1;
    }
    if (run(pg, "BEGIN", 0, NULL, NULL) != 0 ||
        run(pg, "SELECT 1 FROM users WHERE user_name = $1", 1, p, &r) != 0)
        goto fail;
    exists = PQntuples(r) == 1;
    PQclear(r);
    if (!exists) {
        fprintf(stderr, "cwpp-admin: no user %s\n", user);
        goto fail;
    }
    if (store(pg, user, line, "password_set") != 0 || run(pg, "COMMIT", 0, NULL, NULL) != 0)
        goto fail;
    sodium_memzero(line, sizeof(line));
    printf("password of %s set\n", user);
    return 0;
fail:
    sodium_memzero(line, sizeof(line));
    PQclear(PQexec(pg, "ROLLBACK"));
    return 2;
}

int admin_users(int argc, char **argv)
{
    const char *dsn = getenv("CWPP_PG_ADMIN_DSN"), *verb, *user;
    PGconn     *pg;
    int         i, rc;

    if (argc < 4 || (strcmp(argv[2], "bootstrap") != 0 && strcmp(argv[2], "password") != 0)) {
        fprintf(stderr, "usage: cwpp-admin users bootstrap|password NAME [--pg-dsn DSN]\n");
        return 1;
    }
    verb = argv[2];
    user = argv[3];
    for (i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--pg-dsn") == 0 && i + 1 < argc) {
            dsn = argv[++i];
        } else {
            fprintf(stderr, "cwpp-admin: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (!name_ok(user)) {
        fprintf(stderr, "cwpp-admin: \"%.64s\" is not a user name (1 to 64 of A-Z a-z 0-9 . _ @ -, "
                        "starting with a letter or digit)\n", user);
        return 1;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "cwpp-admin: libsodium cannot start\n");
        return 2;
    }
    if ((pg = connect_admin(dsn)) == NULL)
        return 2;
    rc = strcmp(verb, "bootstrap") == 0 ? bootstrap(pg, user) : password(pg, user);
    PQfinish(pg);
    return rc;
}

/*
 * `cwpp-admin pg-verifier ROLE [--pg-dsn DSN]`: reads a database role's password from the
 * first line of standard input and prints its SCRAM-SHA-256 verifier
 * ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"), computed here by libpq
 * (PQencryptPasswordConn, which also applies SASLprep as the server does) with a fresh
 * random salt. deploy/migrate sends `ALTER ROLE ... PASSWORD '<verifier>'`, so the server
 * (and its statement log) never sees the password itself. The connection is only what
 * libpq asks for; nothing is sent on it. Exit 0, 1 bad arguments or input, 2 no server.
 */
int admin_pg_verifier(int argc, char **argv)
{
    const char *dsn = getenv("CWPP_PG_ADMIN_DSN"), *role;
    char        line[1100], *v;
    PGconn     *pg;
    size_t      n;
    int         i;

    if (argc < 3 || argv[2][0] == '\0' || strlen(argv[2]) > 63) {
        fprintf(stderr, "usage: cwpp-admin pg-verifier ROLE [--pg-dsn DSN]   (password on "
                        "stdin)\n");
        return 1;
    }
    role = argv[2];
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--pg-dsn") == 0 && i + 1 < argc) {
            dsn = argv[++i];
        } else {
            fprintf(stderr, "cwpp-admin: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (fgets(line, sizeof(line), stdin) == NULL) {
        fprintf(stderr, "cwpp-admin: give the password on standard input\n");
        return 1;
    }
    n = strcspn(line, "\r\n");
    line[n] = '\0';
    if (n == 0 || n > 1024) {
        sodium_memzero(line, sizeof(line));
        fprintf(stderr, "cwpp-admin: a role's password has 1 to 1024 characters\n");
        return 1;
    }
    if ((pg = connect_admin(dsn)) == NULL) {
        sodium_memzero(line, sizeof(line));
        return 2;
    }
    v = PQencryptPasswordConn(pg, line, role, "scram-sha-256");
    sodium_memzero(line, sizeof(line));
    if (v == NULL) {
        fprintf(stderr, "cwpp-admin: cannot compute the verifier: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return 2;
    }
    printf("%s\n", v);
    PQfreemem(v);
    PQfinish(pg);
    return 0;
}
