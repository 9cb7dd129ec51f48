/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_internal.h: what the core of cwpp-api (server.c, auth.c, pool.c, cmd.c, util.c,
 * main.c, console.c) shares and the resource files do not need: the configuration, the
 * server object, the connection pool, the command transport, authentication and the
 * console's static files.
 */
#ifndef CWPP_API_INTERNAL_H
#define CWPP_API_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "api.h"
#include "cwpp_config.h"
#include "cwpp_http.h"
#include "cwpp_service.h"

typedef struct api_conf {
    cwpp_common_conf_t common;
    char   *address;            /* api.address */
    int64_t port;               /* api.port */
    char   *tls_cert_file;      /* api.tls.cert.file: PEM; empty = plain HTTP */
    char   *tls_key_file;       /* api.tls.key.file */
    int64_t threads;            /* api.threads: request threads (and connections) */
    int64_t max_conns;          /* api.connections.max: open client connections at most */
    int64_t idle_s;             /* api.connection.idle.s: an idle connection is closed */
    int64_t body_max;           /* api.body.max.bytes */
    int64_t session_ttl_s;      /* api.session.ttl.s */
    int64_t token_ttl_default_s;
    int64_t token_ttl_max_s;
    int64_t login_max_failures; /* api.login.max.failures: then locked */
    int64_t login_lockout_s;    /* api.login.lockout.s */
    int64_t login_rate;         /* api.login.rate.per.min: attempts per client address */
    int64_t argon2_ops;         /* api.argon2.opslimit */
    int64_t argon2_mem_kib;     /* api.argon2.memlimit.kib */
    int64_t command_timeout_ms; /* api.command.timeout.ms */
    int64_t password_min;       /* api.password.min.length */
    int64_t cookie_secure;      /* api.cookie.secure: 1 Secure cookies (0 only for tests) */
    char   *dot_path;           /* api.dot.path: Graphviz dot for ?format=svg */
    char   *console_dir;        /* api.console.dir: the console's files; empty = off */
} api_conf_t;

extern const cwpp_conf_prop_t api_props[];
extern const size_t           api_nprops;
int api_run(const void *conf, const cwpp_service_env_t *env);

/* ------------------------------------------------------------- pool.c */
typedef struct api_pool api_pool_t;
api_pool_t *api_pool_new(const char *dsn, int size);
void        api_pool_destroy(api_pool_t *p);
/* A connection for this request (waits for a free one); NULL when the pool is closed. */
cwpp_pg_t *api_pool_get(api_pool_t *p);
/* Gives it back; bad: it failed, reset it. */
void api_pool_put(api_pool_t *p, cwpp_pg_t *pg);

/* ------------------------------------------------------------- cmd.c */
typedef struct api_cmd api_cmd_t;
api_cmd_t *api_cmd_new(const cwpp_common_conf_t *common, const cwpp_kvlist_t *props,
                       int timeout_ms, cwpp_metrics_t *metrics, char *errstr,
                       size_t errstr_size);
void api_cmd_destroy(api_cmd_t *c);
/* 1 while the result consumer is assigned and the producer has no fatal error. */
int api_cmd_ready(api_cmd_t *c, char *why, size_t why_size);
/*
 * Sends the command and waits for its final answer up to the timeout. Returns 1 with
 * *answer (owned), 0 when none came in time (*id holds its id), -1 when it could not be
 * sent (errstr).
 */
int api_cmd_send(api_cmd_t *c, const char *service, const char *type, const char *actor,
                 json_t *payload, char *id, size_t id_size, json_t **answer, char *errstr,
                 size_t errstr_size);
/* The latest progress/final answer seen for id (a recent command), or NULL. Owned. */
json_t *api_cmd_seen(api_cmd_t *c, const char *id);

/* ------------------------------------------------------------- console.c */
typedef struct api_console api_console_t;
/*
 * Opens the console directory dir (its descriptor is kept until api_console_close).
 * Returns the console (owned by the caller), or NULL with errstr.
 */
api_console_t *api_console_open(const char *dir, char *errstr, size_t errstr_size);
void           api_console_close(api_console_t *c); /* accepts NULL */
/*
 * Answers a console request: returns 0 when path is not the console's ("/" or
 * "/console/..."), or when c is NULL (the console is off), leaving rs alone; else 1 with
 * rs set: 200 with the file, 304 when if_none_match (else if_modified_since; either may
 * be NULL) says the client has it, 404 for anything not served, 405 for methods but GET
 * and HEAD. Thread-safe (c is only read).
 */
int api_console_answer(const api_console_t *c, const char *method, const char *path,
                       const char *if_none_match, const char *if_modified_since,
                       api_resp_t *rs);
/* 1 when rel (a path relative to the console directory) is one we may serve: segments of
 * [A-Za-z0-9_.-], none empty or starting with a dot, at most 255 bytes, 16 deep. */
int api_console_path_ok(const char *rel);
/* The Content-Type of a file name by its extension (a static string), NULL when the
 * extension is not in the fixed table (such a file is not served). */
const char *api_console_mime(const char *name);
/* 1 when the If-None-Match value matches etag (weak comparison; "*" matches all). */
int api_console_etag_match(const char *if_none_match, const char *etag);

/* ------------------------------------------------------------- the server */
struct api {
    const api_conf_t *conf;
    api_pool_t       *pool;
    api_cmd_t        *cmd;
    cwpp_metrics_t   *metrics;
    api_console_t    *console;  /* the console's files; NULL when it is off */
    void             *daemon;   /* struct MHD_Daemon */
    char             *tls_cert; /* PEM texts, kept for the daemon's life */
    char             *tls_key;
    pthread_mutex_t   lock;     /* the login throttle */
    struct api_throttle *throttle;
    size_t            nthrottle;
};

int  api_server_start(api_t *a, char *errstr, size_t errstr_size);
void api_server_stop(api_t *a);

/* ------------------------------------------------------------- auth.c */
/*
 * Authenticates rq (bearer token or session cookie) into *u. Returns 1, or 0 with rs set
 * (401), or -1 with rs set (503: the database).
 */
int api_authenticate(api_req_t *rq, api_resp_t *rs, api_user_t *u);
void api_user_clear(api_user_t *u);
/* The CSRF token of a session secret (hex, 64 + NUL). */
void api_csrf_of(const char *secret, char out[65]);
/* Splits "cwpp_<id>_<secret>": 1 with id (16 hex) and secret (64 hex) pointers into a
 * copy in buf; 0 when malformed. */
int api_token_split(const char *tok, char *buf, size_t size, const char **id,
                    const char **secret);

/* util.c: a SHA-256 of s as 32 raw bytes */
void api_sha256(const char *s, unsigned char out[32]);
/* util.c: random lowercase hex of n bytes into out (2n + 1). */
void api_random_hex(char *out, size_t nbytes);
/* util.c: the bytea literal "\\x..." of 32 bytes into out (67). */
void api_bytea_hex(const unsigned char in[32], char out[67]);

#endif
