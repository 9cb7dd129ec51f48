/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c: who is calling. People log in with a password (Argon2id through libsodium's
 * crypto_pwhash_str, parameters from api.argon2.*, rehashed on login when they change)
 * and get a session: a bearer token and the same token as an HttpOnly, Secure,
 * SameSite=Strict cookie, with a CSRF token that every change made with the cookie must
 * carry in X-CSRF-Token. Scripts use API tokens (issued by a logged-in user, shown once,
 * with an expiry, revocable). Both are "cwpp_<16 hex id>_<64 hex secret>"; the database
 * keeps SHA-256 of the secret only, compared in constant time.
 *
 * Failed logins are throttled per client address (api.login.rate.per.min attempts a
 * minute, then 429) and counted per user: api.login.max.failures in a row lock the user
 * for api.login.lockout.s. A login with an unknown name costs the same hashing as one
 * with a known name. Every login, failed login of a known user, logout, token issue and
 * revocation and password change is appended to activity_log (object "user"). Passwords
 * never reach a log line or an answer, except the one-time password an admin reset
 * produces, which is shown to that admin once.
 *
 * Routes: POST /api/v1/login, POST /api/v1/logout, GET /api/v1/me,
 * POST /api/v1/me/password, GET|POST /api/v1/tokens, DELETE /api/v1/tokens/{id},
 * POST /api/v1/users/{name}/password (admins), GET /api/v1/commands/{id}.
 */
#include "api_internal.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_log.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define THROTTLE_SLOTS 1024

struct api_throttle {
    char    addr[64];
    int64_t window_ms;
    int     n;
};

int api_token_split(const char *tok, char *buf, size_t size, const char **id,
                    const char **secret)
{
    size_t i;

    if (tok == NULL || strlen(tok) != 5 + 16 + 1 + 64 || size < 83 ||
        strncmp(tok, "cwpp_", 5) != 0 || tok[21] != '_')
        return 0;
    for (i = 5; i < strlen(tok); i++) {
        char ch = tok[i];

        if (i == 21)
            continue;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    memcpy(buf, tok + 5, 16);
    buf[16] = '\0';
    memcpy(buf + 17, tok + 22, 64);
    buf[81] = '\0';
    *id = buf;
    *secret = buf + 17;
    return 1;
}

void api_csrf_of(const char *secret, char out[65])
{
    unsigned char h[32];
    static const unsigned char key[] = "cwpp-api csrf v1";

    crypto_generichash(h, sizeof(h), (const unsigned char *)secret, strlen(secret), key,
                       sizeof(key) - 1);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

void api_user_clear(api_user_t *u)
{
    json_decref(u->accounts);
    free(u->scope_buf);
    memset(u, 0, sizeof(*u));
}

static int unauthorized(api_resp_t *rs, const char *why)
{
    api_problem(rs, 401, "unauthorized", "%s", why);
    api_header(rs, "WWW-Authenticate", "Bearer realm=\"cwpp\"");
    return 0;
}

int api_authenticate(api_req_t *rq, api_resp_t *rs, api_user_t *u)
{
    static const char *SQL =
        "SELECT t.user_name, encode(t.secret_hash, 'hex'), "
        "       t.expires_at > now() AND t.revoked_at IS NULL, u.role, u.disabled_at IS NULL, "
        "       (SELECT coalesce(array_agg(a.account_id ORDER BY a.account_id), '{}') "
        "          FROM user_accounts a WHERE a.user_name = u.user_name)::text, "
        "       (SELECT coalesce(json_agg(a.account_id ORDER BY a.account_id), '[]') "
        "          FROM user_accounts a WHERE a.user_name = u.user_name), "
        "       t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' "
        "  FROM api_tokens t JOIN users u USING (user_name) WHERE t.token_id = $1";
    const char   *auth = api_req_header(rq, "Authorization"), *tok = NULL, *id, *secret;
    char          buf[96], hex[65];
    unsigned char h[32];
    PGresult     *r;
    const char   *p[1];

    if (auth != NULL) {
        if (strncmp(auth, "Bearer ", 7) != 0)
            return unauthorized(rs, "Authorization must be \"Bearer <token>\".");
        tok = auth + 7;
    } else {
        tok = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, "cwpp_session");
        u->via_session = tok != NULL;
    }
    if (tok == NULL)
        return unauthorized(rs, "Log in first: send a bearer token or the session cookie.");
    if (!api_token_split(tok, buf, sizeof(buf), &id, &secret))
        return unauthorized(rs, "The token is not one this server issued.");
    p[0] = id;
    if (api_sql(rq, rs, SQL, 1, p, &r) != 0)
        return -1;
    api_sha256(secret, h);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    if (PQntuples(r) != 1 || sodium_memcmp(hex, PQgetvalue(r, 0, 1), 64) != 0) {
        PQclear(r);
        return unauthorized(rs, "The token is not one this server issued.");
    }
    if (PQgetvalue(r, 0, 2)[0] != 't' || PQgetvalue(r, 0, 4)[0] != 't') {
        PQclear(r);
        return unauthorized(rs, "The token has expired or was revoked, or the user is "
                                "disabled; log in again.");
    }
    snprintf(u->name, sizeof(u->name), "%s", PQgetvalue(r, 0, 0));
    snprintf(u->role, sizeof(u->role), "%s", PQgetvalue(r, 0, 3));
    snprintf(u->token_id, sizeof(u->token_id), "%s", id);
    u->is_admin = strcmp(u->role, "admin") == 0;
    u->accounts = json_loads(PQgetvalue(r, 0, 6), 0, NULL);
    if (!u->is_admin) {
        u->scope_buf = strdup(PQgetvalue(r, 0, 5));
        u->scope = u->scope_buf != NULL ? u->scope_buf : "{}";
    }
    if (u->via_session)
        api_csrf_of(secret, u->csrf);
    if (PQgetvalue(r, 0, 7)[0] == 't') {
        PGresult *r2 = NULL;
        char      errstr[256];

        cwpp_pg_query(rq->pg, "UPDATE api_tokens SET last_used_at = now() WHERE token_id = $1",
                      1, p, PGRES_COMMAND_OK, &r2, errstr, sizeof(errstr));
        PQclear(r2);
    }
    PQclear(r);
    if (u->accounts == NULL)
        u->accounts = json_array();
    return 1;
}

/* ------------------------------------------------------------ helpers */

/* Runs a statement expecting no rows; 0, or -1 with rs set. */
static int exec(api_req_t *rq, api_resp_t *rs, const char *sql, int n, const char *const *p)
{
    PGresult *r = NULL;
    char      errstr[512];
    int       rc = cwpp_pg_ensure(rq->pg, errstr, sizeof(errstr));

    if (rc == CWPP_OK)
        rc = cwpp_pg_query(rq->pg, sql, n, p, PGRES_COMMAND_OK, &r, errstr, sizeof(errstr));
    PQclear(r);
    if (rc == CWPP_OK)
        return 0;
    cwpp_log(CWPP_LOG_WARN, "api_sql_failed", "%s: %s", rq->route, errstr);
    if (rc != CWPP_EDATA)
        cwpp_pg_reset(rq->pg);
    api_problem(rs, 503, "unavailable", "The database is not answering; try again shortly.");
    return -1;
}

/* activity_log: actor did action on user object (after: JSON text or NULL). */
static int audit(api_req_t *rq, api_resp_t *rs, const char *actor, const char *object,
                 const char *action, const char *after)
{
    const char *p[4] = {actor, object, action, after};

    return exec(rq, rs,
                "INSERT INTO activity_log (actor, object_type, object_id, action, after) "
                "VALUES ($1, 'user', $2, $3, $4::jsonb)", 4, p);
}

/* Issues a token of kind for user; fills tok (the bearer string) and returns the row
 * (token_id, expires_at) as JSON, or NULL with rs set. */
static json_t *issue(api_req_t *rq, api_resp_t *rs, const char *user, const char *kind,
                     const char *name, int64_t ttl_s, char tok[96], char secret[65])
{
    char          id[17], hash[67], ttl[32];
    unsigned char h[32];
    const char   *p[6];
    PGresult     *r;
    json_t       *row;

    api_random_hex(id, 8);
    api_random_hex(secret, 32);
    api_sha256(secret, h);
    api_bytea_hex(h, hash);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s);
    snprintf(tok, 96, "cwpp_%s_%s", id, secret);
    p[0] = id;
    p[1] = user;
    p[2] = kind;
    p[3] = name;
    p[4] = hash;
    p[5] = ttl;
    if (api_sql(rq, rs,
                "INSERT INTO api_tokens (token_id, user_name, kind, name, secret_hash, "
                "expires_at) VALUES ($1, $2, $3, $4, $5::bytea, now() + make_interval(secs => "
                "$6::bigint)) RETURNING token_id, kind, name, " TS("created_at") " AS created_at, "
                TS("expires_at") " AS expires_at",
                6, p, &r) != 0)
        return NULL;
    row = api_row(r, 0);
    PQclear(r);
    return row;
}

/* ------------------------------------------------------------ throttle */

/* 1 when addr may try to log in now; counts the attempt. */
static int throttle_ok(api_t *a, const char *addr, int64_t *retry_s)
{
    int64_t now = cwpp_mono_ms();
    size_t  i, oldest = 0;
    int     ok = 1;

    pthread_mutex_lock(&a->lock);
    if (a->throttle == NULL) {
        a->throttle = calloc(THROTTLE_SLOTS, sizeof(*a->throttle));
        a->nthrottle = a->throttle != NULL ? THROTTLE_SLOTS : 0;
    }
    for (i = 0; i < a->nthrottle; i++) {
        if (strcmp(a->throttle[i].addr, addr) == 0)
            break;
        if (a->throttle[i].window_ms < a->throttle[oldest].window_ms)
            oldest = i;
    }
    if (i == a->nthrottle && a->nthrottle > 0) {
        i = oldest;
        snprintf(a->throttle[i].addr, sizeof(a->throttle[i].addr), "%s", addr);
        a->throttle[i].window_ms = now;
        a->throttle[i].n = 0;
    }
    if (a->nthrottle > 0) {
        struct api_throttle *t = &a->throttle[i];

        if (now - t->window_ms >= 60000) {
            t->window_ms = now;
            t->n = 0;
        }
        if (t->n >= a->conf->login_rate) {
            ok = 0;
            *retry_s = (60000 - (now - t->window_ms)) / 1000 + 1;
        } else {
            t->n++;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* ------------------------------------------------------------ passwords */

static int hash_password(const api_conf_t *cf, const char *pw, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str_alg(out, pw, strlen(pw), (unsigned long long)cf->argon2_ops,
                                 (size_t)cf->argon2_mem_kib * 1024u,
                                 crypto_pwhash_ALG_ARGON2ID13);
}

/* A password policy sentence for pw, or NULL when acceptable. */
static const char *weak(const api_conf_t *cf, const char *pw, char *why, size_t size)
{
    size_t n = strlen(pw);

    if ((int64_t)n < cf->password_min) {
        snprintf(why, size, "A password has at least %lld characters.",
                 (long long)cf->password_min);
        return why;
    }
    if (n > 1024) {
        snprintf(why, size, "A password has at most 1024 characters.");
        return why;
    }
    return NULL;
}

static int set_password(api_req_t *rq, api_resp_t *rs, const char *user, const char *pw,
                        const char *by)
{
    char        hash[crypto_pwhash_STRBYTES];
    const char *p[3] = {user, hash, by};

    if (hash_password(rq->api->conf, pw, hash) != 0)
        return api_problem(rs, 503, "unavailable", "Out of memory hashing the password."), -1;
    return exec(rq, rs,
                "INSERT INTO user_credentials (user_name, password_hash, changed_by) "
                "VALUES ($1, $2, $3) ON CONFLICT (user_name) DO UPDATE SET password_hash = "
                "EXCLUDED.password_hash, changed_by = EXCLUDED.changed_by, changed_at = now(), "
                "failed_logins = 0, locked_until = NULL",
                3, p);
}

/* ------------------------------------------------------------ routes */

static int login(api_req_t *rq, api_resp_t *rs)
{
    static const char *const KNOWN[] = {"username", "password", NULL};
    static char              dummy[crypto_pwhash_STRBYTES];
    const api_conf_t        *cf = rq->api->conf;
    const char              *user, *pw, *p[3];
    char                     tok[96], secret[65], csrf[65], cookie[256], mx[24], ttl[24];
    int64_t                  retry;
    PGresult                *r;
    json_t                  *row;
    int                      known, good = 0;

    if (!throttle_ok(rq->api, rq->client, &retry)) {
        char ra[24];

        snprintf(ra, sizeof(ra), "%lld", (long long)retry);
        api_problem(rs, 429, "too_many_attempts",
                    "Too many login attempts from this address; try again in %lld s.",
                    (long long)retry);
        api_header(rs, "Retry-After", ra);
        return 0;
    }
    if (!api_body_known(rq, rs, KNOWN))
        return 0;
    user = json_string_value(json_object_get(rq->body, "username"));
    pw = json_string_value(json_object_get(rq->body, "password"));
    if (user == NULL || pw == NULL || strlen(user) > 64 || strlen(pw) > 1024)
        return api_problem(rs, 400, "bad_request",
                           "Send {\"username\": ..., \"password\": ...} as strings.");
    p[0] = user;
    if (api_sql(rq, rs,
                "SELECT c.password_hash, c.locked_until IS NOT NULL AND c.locked_until > now(), "
                TS("c.locked_until") ", u.disabled_at IS NULL "
                "FROM users u JOIN user_credentials c USING (user_name) WHERE u.user_name = $1",
                1, p, &r) != 0)
        return 0;
    known = PQntuples(r) == 1;
    if (!known) {
        /* the same work as for a known user, so timing does not tell names apart */
        if (dummy[0] == '\0')
            hash_password(cf, "cwpp-api timing equaliser", dummy);
        if (crypto_pwhash_str_verify(dummy, pw, strlen(pw)) == 0)
            cwpp_log(CWPP_LOG_WARN, "api_login_failed", "the timing equaliser matched");
        PQclear(r);
        cwpp_log(CWPP_LOG_INFO, "api_login_failed", "unknown user from %s", rq->client);
        return unauthorized(rs, "The user name or the password is wrong.");
    }
    if (PQgetvalue(r, 0, 1)[0] == 't') {
        api_problem(rs, 401, "locked",
                    "Too many failed logins: this user is locked until %s; an admin may reset "
                    "the password.", PQgetvalue(r, 0, 2));
        PQclear(r);
        return 0;
    }
    good = crypto_pwhash_str_verify(PQgetvalue(r, 0, 0), pw, strlen(pw)) == 0 &&
           PQgetvalue(r, 0, 3)[0] == 't';
    if (good && crypto_pwhash_str_needs_rehash(PQgetvalue(r, 0, 0),
                                               (unsigned long long)cf->argon2_ops,
                                               (size_t)cf->argon2_mem_kib * 1024u) != 0)
        set_password(rq, rs, user, pw, user);
    PQclear(r);
    if (!good) {
        snprintf(mx, sizeof(mx), "%lld", (long long)cf->login_max_failures);
        snprintf(ttl, sizeof(ttl), "%lld", (long long)cf->login_lockout_s);
        p[1] = mx;
        p[2] = ttl;
        if (exec(rq, rs,
                 "UPDATE user_credentials SET "
                 "locked_until = CASE WHEN failed_logins + 1 >= $2::int THEN now() + "
                 "make_interval(secs => $3::int) ELSE locked_until END, "
                 "failed_logins = CASE WHEN failed_logins + 1 >= $2::int THEN 0 "
                 "ELSE failed_logins + 1 END WHERE user_name = $1",
                 3, p) != 0 ||
            audit(rq, rs, user, user, "login_failed", NULL) != 0)
            return 0;
        cwpp_log(CWPP_LOG_INFO, "api_login_failed", "user %s from %s", user, rq->client);
        return unauthorized(rs, "The user name or the password is wrong.");
    }
    if (exec(rq, rs,
             "UPDATE user_credentials SET failed_logins = 0, locked_until = NULL "
             "WHERE user_name = $1", 1, p) != 0)
        return 0;
    row = issue(rq, rs, user, "session", "login", cf->session_ttl_s, tok, secret);
    if (row == NULL)
        return 0;
    if (audit(rq, rs, user, user, "login", NULL) != 0) {
        json_decref(row);
        return 0;
    }
    api_csrf_of(secret, csrf);
    json_object_set_new(row, "token", json_string(tok));
    json_object_set_new(row, "csrf_token", json_string(csrf));
    json_object_set_new(row, "user", json_string(user));
    snprintf(cookie, sizeof(cookie), "cwpp_session=%s; Path=/; HttpOnly; SameSite=Strict; "
             "Max-Age=%lld%s", tok, (long long)cf->session_ttl_s,
             cf->cookie_secure ? "; Secure" : "");
    api_header(rs, "Set-Cookie", cookie);
    sodium_memzero(secret, sizeof(secret));
    return api_json(rs, 200, row);
}

static int logout(api_req_t *rq, api_resp_t *rs)
{
    const char *p[2] = {rq->user->token_id, rq->user->name};

    if (exec(rq, rs,
             "UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 "
             "WHERE token_id = $1 AND revoked_at IS NULL", 2, p) != 0 ||
        audit(rq, rs, rq->user->name, rq->user->name, "logout", NULL) != 0)
        return 0;
    api_header(rs, "Set-Cookie", "cwpp_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    return api_json(rs, 200, json_pack("{s:s}", "message", "Logged out."));
}

static int me(api_req_t *rq, api_resp_t *rs)
{
    const char *p[1] = {rq->user->name};
    PGresult   *r;
    json_t     *doc;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}))
        return 0;
    if (api_sql(rq, rs,
                "SELECT user_name AS user, display_name, role FROM users WHERE user_name = $1",
                1, p, &r) != 0)
        return 0;
    doc = PQntuples(r) == 1 ? api_row(r, 0) : json_object();
    PQclear(r);
    json_object_set(doc, "accounts", rq->user->accounts);
    json_object_set_new(doc, "all_accounts", json_boolean(rq->user->is_admin));
    json_object_set_new(doc, "via", json_string(rq->user->via_session ? "session" : "token"));
    json_object_set_new(doc, "token_id", json_string(rq->user->token_id));
    if (rq->user->via_session)
        json_object_set_new(doc, "csrf_token", json_string(rq->user->csrf));
    return api_json(rs, 200, doc);
}

static int me_password(api_req_t *rq, api_resp_t *rs)
{
    static const char *const KNOWN[] = {"current_password", "new_password", NULL};
    const char *cur, *nw, *p[1] = {rq->user->name};
    char        why[128];
    PGresult   *r;
    int         ok;

    if (!api_body_known(rq, rs, KNOWN))
        return 0;
    cur = json_string_value(json_object_get(rq->body, "current_password"));
    nw = json_string_value(json_object_get(rq->body, "new_password"));
    if (cur == NULL || nw == NULL)
        return api_problem(rs, 400, "bad_request",
                           "Send current_password and new_password as strings.");
    if (weak(rq->api->conf, nw, why, sizeof(why)) != NULL)
        return api_problem(rs, 400, "weak_password", "%s", why);
    if (api_sql(rq, rs, "SELECT password_hash FROM user_credentials WHERE user_name = $1", 1, p,
                &r) != 0)
        return 0;
    ok = PQntuples(r) == 1 &&
         crypto_pwhash_str_verify(PQgetvalue(r, 0, 0), cur, strlen(cur)) == 0;
    PQclear(r);
    if (!ok)
        return api_problem(rs, 403, "forbidden", "The current password is wrong.");
    if (set_password(rq, rs, rq->user->name, nw, rq->user->name) != 0 ||
        audit(rq, rs, rq->user->name, rq->user->name, "password_changed", NULL) != 0)
        return 0;
    return api_json(rs, 200, json_pack("{s:s}", "message", "Password changed."));
}

static int tokens_list(api_req_t *rq, api_resp_t *rs)
{
    static const char *const KNOWN[] = {"user", "all", NULL};
    const char *who = api_arg(rq, "user"), *p[1];
    PGresult   *r;
    json_t     *rows;

    if (!api_args_known(rq, rs, KNOWN))
        return 0;
    if (who != NULL && strcmp(who, rq->user->name) != 0 && !rq->user->is_admin)
        return api_problem(rs, 403, "forbidden", "Only an admin may list another user's tokens.");
    p[0] = who != NULL ? who : rq->user->name;
    if (api_sql(rq, rs,
                "SELECT token_id, user_name AS user, kind, name, " TS("created_at") " AS created_at, "
                TS("expires_at") " AS expires_at, " TS("revoked_at") " AS revoked_at, "
                TS("last_used_at") " AS last_used_at, "
                "expires_at > now() AND revoked_at IS NULL AS active "
                "FROM api_tokens WHERE user_name = $1 "
                "ORDER BY created_at DESC, token_id LIMIT 500",
                1, p, &r) != 0)
        return 0;
    rows = api_rows(r);
    PQclear(r);
    return api_json(rs, 200, json_pack("{s:o}", "tokens", rows));
}

static int tokens_add(api_req_t *rq, api_resp_t *rs)
{
    static const char *const KNOWN[] = {"name", "expires_in_s", NULL};
    const api_conf_t *cf = rq->api->conf;
    const char       *name;
    json_t           *ttl, *row;
    int64_t           secs;
    char              tok[96], secret[65], after[256];

    if (!api_body_known(rq, rs, KNOWN))
        return 0;
    name = json_string_value(json_object_get(rq->body, "name"));
    ttl = json_object_get(rq->body, "expires_in_s");
    if (name == NULL || name[0] == '\0' || strlen(name) > 128)
        return api_problem(rs, 400, "bad_request", "A token needs a name of 1 to 128 bytes.");
    secs = ttl == NULL ? cf->token_ttl_default_s : json_is_integer(ttl) ? json_integer_value(ttl) : -1;
    if (secs < 60 || secs > cf->token_ttl_max_s)
        return api_problem(rs, 400, "bad_request",
                           "expires_in_s is a whole number of seconds from 60 to %lld.",
                           (long long)cf->token_ttl_max_s);
    row = issue(rq, rs, rq->user->name, "token", name, secs, tok, secret);
    if (row == NULL)
        return 0;
    snprintf(after, sizeof(after), "{\"token_id\": \"%s\"}",
             json_string_value(json_object_get(row, "token_id")));
    if (audit(rq, rs, rq->user->name, rq->user->name, "token_issued", after) != 0) {
        json_decref(row);
        return 0;
    }
    json_object_set_new(row, "token", json_string(tok));
    sodium_memzero(secret, sizeof(secret));
    return api_json(rs, 201, row);
}

static int tokens_revoke(api_req_t *rq, api_resp_t *rs)
{
    const char *id = rq->ids[0], *p[3];
    char        admin[2] = {rq->user->is_admin ? 't' : 'f', '\0'}, after[96];
    PGresult   *r;
    char        owner[72];

    if (strlen(id) != 16)
        return api_not_found(rs, "token", id);
    p[0] = id;
    p[1] = rq->user->name;
    p[2] = admin;
    if (api_sql(rq, rs,
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), "
                "revoked_by = coalesce(revoked_by, $2) "
                "WHERE token_id = $1 AND (user_name = $2 OR $3::bool) RETURNING user_name",
                3, p, &r) != 0)
        return 0;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return api_not_found(rs, "token", id);
    }
    snprintf(owner, sizeof(owner), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    snprintf(after, sizeof(after), "{\"token_id\": \"%s\"}", id);
    if (audit(rq, rs, rq->user->name, owner, "token_revoked", after) != 0)
        return 0;
    return api_json(rs, 200, json_pack("{s:s, s:s}", "message", "Token revoked.", "token_id", id));
}

static int user_password_reset(api_req_t *rq, api_resp_t *rs)
{
    const char   *user = rq->ids[0], *p[2];
    unsigned char b[18];
    char          pw[32];
    PGresult     *r;
    int           exists;

    if (!api_args_known(rq, rs, (const char *const[]){NULL}))
        return 0;
    if (rq->body != NULL && json_object_size(rq->body) > 0)
        return api_problem(rs, 400, "unknown_field", "This route takes no body.");
    p[0] = user;
    if (api_sql(rq, rs, "SELECT 1 FROM users WHERE user_name = $1", 1, p, &r) != 0)
        return 0;
    exists = PQntuples(r) == 1;
    PQclear(r);
    if (!exists)
        return api_not_found(rs, "user", user);
    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(pw, sizeof(pw), b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    p[1] = rq->user->name;
    if (set_password(rq, rs, user, pw, rq->user->name) != 0 ||
        exec(rq, rs,
             "UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE user_name = $1 "
             "AND kind = 'session' AND revoked_at IS NULL", 2, p) != 0 ||
        audit(rq, rs, rq->user->name, user, "password_reset", NULL) != 0)
        return 0;
    api_json(rs, 200, json_pack("{s:s, s:s, s:s}", "user", user, "password", pw, "message",
                                "A one-time password: give it to the user, who should change "
                                "it (POST /api/v1/me/password). Their sessions were ended."));
    sodium_memzero(pw, sizeof(pw));
    return 0;
}

static int command_get(api_req_t *rq, api_resp_t *rs)
{
    const char *id = rq->ids[0], *p[2];
    json_t     *doc = api_cmd_seen(rq->api->cmd, id);
    PGresult   *r;
    char        admin[2] = {rq->user->is_admin ? 't' : 'f', '\0'};

    if (strlen(id) > 64)
        return api_not_found(rs, "command", id);
    p[0] = id;
    p[1] = rq->user->name;
    /* the stored answer says whose it is; a command of someone else is not found */
    if (api_sql(rq, rs,
                "SELECT command_id, service, type, status, message, result, actor "
                "FROM commands_applied WHERE command_id = $1", 1, p, &r) != 0) {
        json_decref(doc);
        return 0;
    }
    if (PQntuples(r) == 1) {
        json_decref(doc);
        doc = api_row(r, 0);
        PQclear(r);
        if (strcmp(json_string_value(json_object_get(doc, "actor")), rq->user->name) != 0 &&
            admin[0] != 't') {
            json_decref(doc);
            return api_not_found(rs, "command", id);
        }
        json_object_del(doc, "actor");
        return api_json(rs, 200, doc);
    }
    PQclear(r);
    /* a progress record seen: only its own actor (or an admin) learns of it */
    if (doc != NULL && admin[0] != 't' &&
        strcmp(json_string_value(json_object_get(doc, "actor")), rq->user->name) != 0) {
        json_decref(doc);
        return api_not_found(rs, "command", id);
    }
    if (doc == NULL)
        return api_json(rs, 200, json_pack("{s:s, s:s}", "command_id", id, "status", "pending"));
    json_object_del(doc, "actor");
    return api_json(rs, 200, doc);
}

const api_route_t api_auth_routes[] = {
    {"POST", "/api/v1/login", login, API_PUBLIC},
    {"POST", "/api/v1/logout", logout, API_CHANGE | API_SELF},
    {"GET", "/api/v1/me", me, 0},
    {"POST", "/api/v1/me/password", me_password, API_CHANGE | API_SELF},
    {"GET", "/api/v1/tokens", tokens_list, 0},
    {"POST", "/api/v1/tokens", tokens_add, API_CHANGE | API_SELF},
    {"DELETE", "/api/v1/tokens/{id}", tokens_revoke, API_CHANGE | API_SELF},
    {"POST", "/api/v1/users/{name}/password", user_password_reset, API_CHANGE | API_ADMIN},
    {"GET", "/api/v1/commands/{id}", command_get, 0},
    {NULL, NULL, NULL, 0},
};
