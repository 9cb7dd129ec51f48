/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c: cwpp-api's configuration table and its run function: the connection pool, the
 * command transport, the console's directory and the HTTP server, up until SIGTERM, then
 * torn down in reverse (the server first, so no request starts on a closing pool).
 */
#include "api_internal.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cwpp_log.h"

/* Where the console's files are installed (CMakeLists.txt: <datadir>/cwpp/console) and
 * where they are in the source tree this binary was built from (a build-tree run). */
#ifndef CWPP_CONSOLE_DIR
#define CWPP_CONSOLE_DIR "/usr/local/share/cwpp/console"
#endif
#ifndef CWPP_CONSOLE_SOURCE_DIR
#define CWPP_CONSOLE_SOURCE_DIR ""
#endif

const cwpp_conf_prop_t api_props[] = {
    CWPP_COMMON_PROPS(api_conf_t, common, "api", "8086"),
    {"api.address", CWPP_CONF_STR, offsetof(api_conf_t, address), "127.0.0.1", 0, 0, 0,
     "Address the API listens on (0.0.0.0 in containers)."},
    {"api.port", CWPP_CONF_INT, offsetof(api_conf_t, port), "8443", 1, 65535, 0,
     "Port the API listens on."},
    {"api.tls.cert.file", CWPP_CONF_STR, offsetof(api_conf_t, tls_cert_file), "", 0, 0, 0,
     "PEM certificate (chain) of the API; empty serves plain HTTP (only behind a TLS proxy "
     "or on loopback for tests)."},
    {"api.tls.key.file", CWPP_CONF_STR, offsetof(api_conf_t, tls_key_file), "", 0, 0,
     CWPP_CONF_SECRET, "PEM private key of that certificate."},
    {"api.threads", CWPP_CONF_INT, offsetof(api_conf_t, threads), "4", 1, 64, 0,
     "Request threads, each with its own database connection."},
    {"api.connections.max", CWPP_CONF_INT, offsetof(api_conf_t, max_conns), "128", 4, 100000,
     0, "Client connections open at once at most (each may hold a 256 KiB buffer: 128 keep "
     "the API within 64 MiB); more are turned away until one closes."},
    {"api.connection.idle.s", CWPP_CONF_INT, offsetof(api_conf_t, idle_s), "30", 1, 3600, 0,
     "A client connection idle this long is closed."},
    {"api.body.max.bytes", CWPP_CONF_INT, offsetof(api_conf_t, body_max), "1048576", 1024,
     67108864, 0, "Largest request body taken; a larger one is answered 413."},
    {"api.session.ttl.s", CWPP_CONF_INT, offsetof(api_conf_t, session_ttl_s), "28800", 60,
     604800, 0, "How long a login session lasts."},
    {"api.token.ttl.default.s", CWPP_CONF_INT, offsetof(api_conf_t, token_ttl_default_s),
     "2592000", 60, 31536000, 0, "Lifetime of an API token issued without expires_in_s."},
    {"api.token.ttl.max.s", CWPP_CONF_INT, offsetof(api_conf_t, token_ttl_max_s), "7776000", 60,
     31536000, 0, "Longest lifetime an API token may be issued with."},
    {"api.login.max.failures", CWPP_CONF_INT, offsetof(api_conf_t, login_max_failures), "5", 1,
     1000, 0, "Failed logins in a row that lock a user."},
    {"api.login.lockout.s", CWPP_CONF_INT, offsetof(api_conf_t, login_lockout_s), "900", 1,
     86400, 0, "How long a locked user stays locked (an admin's password reset unlocks)."},
    {"api.login.rate.per.min", CWPP_CONF_INT, offsetof(api_conf_t, login_rate), "10", 1,
     100000, 0, "Login attempts a client address may make per minute; more are answered 429."},
    {"api.argon2.opslimit", CWPP_CONF_INT, offsetof(api_conf_t, argon2_ops), "2", 1, 20, 0,
     "Argon2id passes for password hashes (libsodium opslimit)."},
    {"api.argon2.memlimit.kib", CWPP_CONF_INT, offsetof(api_conf_t, argon2_mem_kib), "19456",
     8, 4194304, 0, "Argon2id memory per hash in KiB (19456: the OWASP baseline)."},
    {"api.password.min.length", CWPP_CONF_INT, offsetof(api_conf_t, password_min), "12", 8,
     1024, 0, "Shortest password accepted."},
    {"api.command.timeout.ms", CWPP_CONF_INT, offsetof(api_conf_t, command_timeout_ms),
     "15000", 100, 600000, 0,
     "How long a change waits for its service's answer before answering 202 with the "
     "command id to poll."},
    {"api.dot.path", CWPP_CONF_STR, offsetof(api_conf_t, dot_path), "/usr/bin/dot", 0, 0, 0,
     "Graphviz dot program drawing GET /api/v1/events/{id}/chain?format=svg (run without a "
     "shell or our environment, killed after 5 s); missing, that format answers 503."},
    {"api.console.dir", CWPP_CONF_STR, offsetof(api_conf_t, console_dir), CWPP_CONSOLE_DIR, 0,
     0, 0,
     "Directory of the analysts' console, the static files served without authentication at "
     "/ (its index.html) and /console/<path>; empty turns the console off (404). The default "
     "is where the build installs them; when that directory does not exist (a binary run "
     "from its build tree), the source tree's services/api/console. Another directory that "
     "cannot be opened stops start-up."},
    {"api.cookie.secure", CWPP_CONF_INT, offsetof(api_conf_t, cookie_secure), "1", 0, 1, 0,
     "1: the session cookie is Secure (sent over HTTPS only); 0 only for plain-HTTP tests."},
};
const size_t api_nprops = sizeof(api_props) / sizeof(api_props[0]);

static int ready(void *opaque, char *reason, size_t reason_size)
{
    api_t *a = opaque;

    if (!api_cmd_ready(a->cmd, reason, reason_size))
        return 0;
    if (!cwpp_pg_ping(a->conf->common.pg_dsn, 2)) {
        snprintf(reason, reason_size, "PostgreSQL is not reachable");
        return 0;
    }
    return 1;
}

int api_command(api_req_t *rq, api_resp_t *rs, const char *service, const char *type,
                json_t *payload, json_t **answer)
{
    char id[64], errstr[256], loc[128];
    int  rc;

    *answer = NULL;
    rc = api_cmd_send(rq->api->cmd, service, type, rq->user->name, payload, id, sizeof(id),
                      answer, errstr, sizeof(errstr));
    json_decref(payload);
    if (rc == 1)
        return 1;
    if (rc == 0) {
        snprintf(loc, sizeof(loc), "/api/v1/commands/%s", id);
        api_json(rs, 202, json_pack("{s:s, s:s, s:s}", "command_id", id, "status", "pending",
                                    "message", "Sent; no answer yet. It will be applied when "
                                    "the service reads it: poll the command."));
        api_header(rs, "Location", loc);
        return 0;
    }
    cwpp_log(CWPP_LOG_WARN, "api_command_failed", "%s %s: %s", service, type, errstr);
    api_problem(rs, 503, "unavailable", "The change could not be sent to the broker; try again "
                "shortly.");
    return 0;
}

/*
 * Opens the console directory of api.console.dir into a->console (left NULL when the
 * console is off). Returns 0, or -1 (logged) when a configured directory cannot be opened.
 */
static int console_start(api_t *a, const api_conf_t *cf)
{
    const char *dir = cf->console_dir;
    char        errstr[512];

    if (dir[0] == '\0') {
        cwpp_log(CWPP_LOG_INFO, "api_console_off", "api.console.dir is empty: no console");
        return 0;
    }
    if (strcmp(dir, CWPP_CONSOLE_DIR) == 0 && access(dir, F_OK) != 0) {
        /* not installed: a binary of a build tree serves the source tree's files */
        if (CWPP_CONSOLE_SOURCE_DIR[0] == '\0' || access(CWPP_CONSOLE_SOURCE_DIR, F_OK) != 0) {
            cwpp_log(CWPP_LOG_WARN, "api_console_off", "the console is not installed in %s: "
                     "no console (set api.console.dir)", dir);
            return 0;
        }
        dir = CWPP_CONSOLE_SOURCE_DIR;
    }
    a->console = api_console_open(dir, errstr, sizeof(errstr));
    if (a->console == NULL) {
        cwpp_log(CWPP_LOG_ERROR, "api_start_failed", "api.console.dir: %s", errstr);
        return -1;
    }
    cwpp_log(CWPP_LOG_INFO, "api_console", "serving the console from %s", dir);
    return 0;
}

int api_run(const void *conf, const cwpp_service_env_t *env)
{
    const api_conf_t *cf = conf;
    api_t             a;
    char              errstr[512];
    int               rc = 2;

    memset(&a, 0, sizeof(a));
    a.conf = cf;
    a.metrics = env->metrics;
    pthread_mutex_init(&a.lock, NULL);
    if (sodium_init() < 0) {
        cwpp_log(CWPP_LOG_ERROR, "api_start_failed", "libsodium cannot start");
        goto out;
    }
    if ((a.pool = api_pool_new(cf->common.pg_dsn, (int)cf->threads)) == NULL) {
        cwpp_log(CWPP_LOG_ERROR, "api_start_failed", "cannot make the connection pool");
        goto out;
    }
    a.cmd = api_cmd_new(&cf->common, env->kafka_props, (int)cf->command_timeout_ms, a.metrics,
                        errstr, sizeof(errstr));
    if (a.cmd == NULL) {
        cwpp_log(CWPP_LOG_ERROR, "api_start_failed", "Kafka: %s", errstr);
        rc = 1;
        goto out;
    }
    if (console_start(&a, cf) != 0) {
        rc = 1;
        goto out;
    }
    if (api_server_start(&a, errstr, sizeof(errstr)) != CWPP_OK) {
        cwpp_log(CWPP_LOG_ERROR, "api_start_failed", "%s", errstr);
        rc = 1;
        goto out;
    }
    cwpp_service_set_ready(ready, &a);
    cwpp_log(CWPP_LOG_INFO, "api_listening", "listening on %s://%s:%lld",
             cf->tls_cert_file[0] != '\0' ? "https" : "http", cf->address,
             (long long)cf->port);
    while (!cwpp_service_stopping())
        usleep(100 * 1000);
    rc = 0;
out:
    cwpp_service_set_ready(NULL, NULL);
    api_server_stop(&a);
    api_console_close(a.console);
    api_cmd_destroy(a.cmd);
    api_pool_destroy(a.pool);
    free(a.throttle);
    pthread_mutex_destroy(&a.lock);
    return rc;
}
