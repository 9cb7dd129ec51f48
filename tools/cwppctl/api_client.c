/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_client.c: cwppctl talks to cwpp-api only (docs/cwppctl.md "Connecting"). The URL
 * comes from CWPP_API_URL (default https://127.0.0.1:8443), the token from
 * CWPP_API_TOKEN or the file `cwppctl login` wrote ($XDG_CONFIG_HOME/cwpp/token, else
 * ~/.config/cwpp/token, mode 0600), a private CA from CWPP_API_CA. Requests are libcurl
 * (HTTPS verified against the system's or that CA); answers are JSON, errors RFC 9457
 * problems whose detail is printed as the reason.
 *
 * Exit codes follow the answer: 2xx done; 4xx refused or not found (1); no answer, a
 * 5xx or a 202 (sent, not answered yet) 3.
 */
#include "ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define BODY_MAX (256u * 1024u * 1024u)

typedef struct sink {
    char  *data;
    size_t len, cap;
    int    overflow;
} sink_t;

static size_t on_data(char *p, size_t size, size_t n, void *opaque)
{
    sink_t *s = opaque;
    size_t  add = size * n;

    if (s->len + add > BODY_MAX) {
        s->overflow = 1;
        return 0;
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = (s->len + add + 1) * 2;
        char  *nd = realloc(s->data, cap);

        if (nd == NULL)
            return 0;
        s->data = nd;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, add);
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

/* The directory of the stored token: $XDG_CONFIG_HOME/cwpp or ~/.config/cwpp. */
static int config_dir(char *out, size_t size)
{
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

    if (x != NULL && x[0] == '/')
        return snprintf(out, size, "%s/cwpp", x) < (int)size ? 0 : -1;
    if (home != NULL && home[0] == '/')
        return snprintf(out, size, "%s/.config/cwpp", home) < (int)size ? 0 : -1;
    return -1;
}

void ctl_api_init(ctl_t *c)
{
    const char *u = getenv("CWPP_API_URL"), *t = getenv("CWPP_API_TOKEN");
    char        dir[900], path[1000];
    FILE       *f;

    c->api_url = u != NULL && u[0] != '\0' ? u : "https://127.0.0.1:8443";
    c->api_ca = getenv("CWPP_API_CA");
    if (t != NULL && t[0] != '\0') {
        snprintf(c->token, sizeof(c->token), "%s", t);
        return;
    }
    if (config_dir(dir, sizeof(dir)) != 0)
        return;
    snprintf(path, sizeof(path), "%s/token", dir);
    if ((f = fopen(path, "r")) != NULL) {
        if (fgets(c->token, sizeof(c->token), f) != NULL)
            c->token[strcspn(c->token, "\r\n")] = '\0';
        fclose(f);
    }
}

void ctl_q(cwpp_buf_t *b, const char *name, const char *value)
{
    char *e = curl_easy_escape(NULL, value, 0);

    cwpp_buf_append(b, memchr(b->data, '?', b->len) != NULL ? "&" : "?", 1);
    cwpp_buf_append(b, name, strlen(name));
    cwpp_buf_append(b, "=", 1);
    if (e != NULL) {
        cwpp_buf_append(b, e, strlen(e));
        curl_free(e);
    }
}

/* One request. Returns the HTTP status (0: no answer, after printing why) and the body. */
static long request(ctl_t *c, const char *method, const char *path, const json_t *body,
                    sink_t *out, char *ctype, size_t ctype_size)
{
    CURL              *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char              *url, auth[256];
    char              *text = NULL, *ct = NULL;
    long               status = 0;
    CURLcode           rc;

    if (h == NULL) {
        ctl_fail(CTL_INFRA, "cannot start libcurl");
        return 0;
    }
    url = malloc(strlen(c->api_url) + strlen(path) + 1);
    if (url == NULL) {
        curl_easy_cleanup(h);
        ctl_fail(CTL_INFRA, "out of memory");
        return 0;
    }
    strcpy(url, c->api_url);
    strcat(url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->timeout_s + 10);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->api_ca != NULL && c->api_ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, c->api_ca);
    if (c->token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        hd = curl_slist_append(hd, auth);
    }
    hd = curl_slist_append(hd, "Accept: application/json");
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        hd = curl_slist_append(hd, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text != NULL ? text : "{}");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, ctype_size, "%s", ct != NULL ? ct : "");
    } else if (out->overflow) {
        ctl_fail(CTL_INFRA, "the answer of %s is larger than %u bytes", path, BODY_MAX);
    } else {
        ctl_fail(CTL_INFRA, "cannot reach cwpp-api at %s: %s", c->api_url,
                 curl_easy_strerror(rc));
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(text);
    free(url);
    return status;
}

/* Prints the problem of a 4xx/5xx answer and returns its exit code. */
static int problem(ctl_t *c, long status, const sink_t *s, json_t **doc)
{
    json_t     *p = s->data != NULL ? json_loadb(s->data, s->len, 0, NULL) : NULL;
    const char *d = json_string_value(json_object_get(p, "detail"));
    int         code = status >= 500 || status == 202 ? CTL_INFRA : CTL_REFUSED;

    if (status == 401 && c->token[0] == '\0')
        ctl_fail(code, "not logged in: run `cwppctl login` or set CWPP_API_TOKEN");
    else
        ctl_fail(code, "%s", d != NULL ? ctl_safe(d) : "the API answered an error");
    if (doc != NULL)
        *doc = p;
    else
        json_decref(p);
    return code;
}

int ctl_api(ctl_t *c, const char *method, const char *path, json_t *body, json_t **doc)
{
    sink_t s = {0};
    char   ct[128];
    long   st;
    int    rc;

    *doc = NULL;
    if (strlen(path) > CTL_PATH_MAX)
        return ctl_fail(CTL_USAGE, "what you asked about is too long to send to cwpp-api "
                        "(%zu bytes percent-encoded, at most %d)", strlen(path), CTL_PATH_MAX);
    st = request(c, method, path, body, &s, ct, sizeof(ct));
    if (st == 0) {
        rc = CTL_INFRA;
    } else if (st >= 200 && st < 300 && st != 202) {
        *doc = s.data != NULL ? json_loadb(s.data, s.len, 0, NULL) : NULL;
        rc = CTL_OK;
    } else if (st == 202) {
        json_t *p = s.data != NULL ? json_loadb(s.data, s.len, 0, NULL) : NULL;

        rc = ctl_fail(CTL_INFRA, "no answer yet to command %s; it will be applied when the "
                      "service reads it", json_string_value(json_object_get(p, "command_id")) != NULL
                                              ? json_string_value(json_object_get(p, "command_id"))
                                              : "?");
        json_decref(p);
    } else {
        rc = problem(c, st, &s, NULL);
    }
    free(s.data);
    return rc;
}

int ctl_api_raw(ctl_t *c, const char *path, char **data, size_t *len)
{
    sink_t s = {0};
    char   ct[128];
    long   st = request(c, "GET", path, NULL, &s, ct, sizeof(ct));

    *data = NULL;
    *len = 0;
    if (st == 0) {
        free(s.data);
        return CTL_INFRA;
    }
    if (st != 200) {
        int rc = problem(c, st, &s, NULL);

        free(s.data);
        return rc;
    }
    *data = s.data != NULL ? s.data : calloc(1, 1);
    *len = s.len;
    return CTL_OK;
}

/* The --json form of a command's answer: {status, message, result}. */
static void print_answer(const char *status, const char *msg, const json_t *doc)
{
    json_t *result = json_object_get(doc, "result");

    ctl_print_json(json_pack("{s:s, s:s, s:o}", "status", status, "message",
                             msg != NULL ? msg : "", "result",
                             result != NULL ? json_incref(result) : json_object()));
}

int ctl_api_send(ctl_t *c, const char *method, const char *path, json_t *body)
{
    sink_t      s = {0};
    char        ct[128];
    long        st = request(c, method, path, body, &s, ct, sizeof(ct));
    json_t     *doc = s.data != NULL ? json_loadb(s.data, s.len, 0, NULL) : NULL;
    const char *msg;
    int         rc;

    json_decref(body);
    if (st == 0) {
        rc = CTL_INFRA;
    } else if (st == 200 || st == 201) {
        msg = json_string_value(json_object_get(doc, "message"));
        if (c->json)
            print_answer("ok", msg, doc);
        else
            printf("%s\n", msg != NULL ? ctl_safe(msg) : "done");
        rc = CTL_OK;
    } else if (st == 422) {
        msg = json_string_value(json_object_get(doc, "detail"));
        if (c->json)
            print_answer("error", msg, doc);
        rc = ctl_fail(CTL_REFUSED, "%s", msg != NULL ? ctl_safe(msg) : "refused");
    } else if (st == 202) {
        rc = ctl_fail(CTL_INFRA, "no answer to command %s within the API's wait; it will still "
                      "be applied when the service reads it",
                      json_string_value(json_object_get(doc, "command_id")) != NULL
                          ? json_string_value(json_object_get(doc, "command_id")) : "?");
    } else {
        rc = problem(c, st, &s, NULL);
    }
    json_decref(doc);
    free(s.data);
    return rc;
}

int ctl_api_change(ctl_t *c, const char *path, json_t *body)
{
    return ctl_api_send(c, "POST", path, body);
}

int ctl_api_pages(ctl_t *c, const char *path, const char *member, long max, json_t **out)
{
    cwpp_buf_t  b = {0};
    json_t     *doc = NULL, *page = NULL, *all;
    char       *cursor = NULL, n[24];
    int         rc = CTL_OK;

    *out = NULL;
    for (;;) {
        long want = max - (long)(doc != NULL ? json_array_size(json_object_get(doc, member)) : 0);
        const char *next;

        if (want > CTL_PAGE_MAX)
            want = CTL_PAGE_MAX;
        snprintf(n, sizeof(n), "%ld", want);
        cwpp_buf_reset(&b);
        if (cwpp_buf_puts(&b, path) != 0)
            goto oom;
        ctl_q(&b, "limit", n);
        if (cursor != NULL)
            ctl_q(&b, "cursor", cursor);
        if (cwpp_buf_cstr(&b) != 0)
            goto oom;
        if ((rc = ctl_api(c, "GET", (const char *)b.data, NULL, &page)) != CTL_OK)
            goto out;
        if (!json_is_array(json_object_get(page, member))) {
            rc = ctl_fail(CTL_INFRA, "cwpp-api answered %s without \"%s\"", path, member);
            goto out;
        }
        if (doc == NULL) {
            doc = page;
        } else if (json_array_extend(json_object_get(doc, member),
                                     json_object_get(page, member)) != 0) {
            goto oom;
        }
        next = json_string_value(json_object_get(page, "next_cursor"));
        free(cursor);
        cursor = next != NULL ? strdup(next) : NULL;
        if (page != doc)
            json_decref(page);
        page = NULL;
        all = json_object_get(doc, member);
        if (cursor == NULL || (long)json_array_size(all) >= max)
            break;
    }
    json_object_del(doc, "next_cursor");
    *out = doc;
    doc = NULL;
    goto out;
oom:
    rc = ctl_fail(CTL_INFRA, "out of memory");
out:
    if (page != doc)
        json_decref(page);
    json_decref(doc);
    free(cursor);
    cwpp_buf_free(&b);
    return rc;
}

/* Reads a password: from the terminal without echo, else the first line of stdin. */
static int read_password(char *out, size_t size)
{
    struct termios old, quiet;
    int            tty = isatty(STDIN_FILENO);

    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    if (fgets(out, (int)size, stdin) == NULL)
        out[0] = '\0';
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0' ? 0 : -1;
}

int ctl_login(ctl_t *c, int argc, char **argv)
{
    const char *user = getenv("USER");
    char        pw[1100], dir[900], path[1000], tmp[1100];
    json_t     *doc = NULL, *body;
    const char *tok;
    int         i, fd, rc;
    FILE       *f;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else
            return ctl_fail(CTL_USAGE, "usage: cwppctl login [--user NAME] (the password is "
                            "read from the terminal or standard input)");
    }
    if (user == NULL || user[0] == '\0')
        return ctl_fail(CTL_USAGE, "who are you? cwppctl login --user NAME");
    if (read_password(pw, sizeof(pw)) != 0)
        return ctl_fail(CTL_USAGE, "no password given");
    c->token[0] = '\0';
    body = json_pack("{s:s, s:s}", "username", user, "password", pw);
    rc = ctl_api(c, "POST", "/api/v1/login", body, &doc);
    json_decref(body);
    memset(pw, 0, sizeof(pw));
    if (rc != CTL_OK)
        return rc;
    tok = json_string_value(json_object_get(doc, "token"));
    if (tok == NULL || config_dir(dir, sizeof(dir)) != 0) {
        json_decref(doc);
        return ctl_fail(CTL_INFRA, "no token in the answer, or no HOME/XDG_CONFIG_HOME to keep it");
    }
    for (i = 1; dir[i] != '\0'; i++) { /* mkdir -p, private */
        if (dir[i] == '/') {
            dir[i] = '\0';
            mkdir(dir, 0700);
            dir[i] = '/';
        }
    }
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/token", dir);
    snprintf(tmp, sizeof(tmp), "%s/token.tmp", dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL || fprintf(f, "%s\n", tok) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        json_decref(doc);
        return ctl_fail(CTL_INFRA, "cannot write %s: %s", path, strerror(errno));
    }
    if (c->json)
        ctl_print_json(json_pack("{s:s, s:O, s:s}", "user", user, "expires_at",
                                 json_object_get(doc, "expires_at"), "token_file", path));
    else
        printf("logged in as %s until %s (token in %s)\n", user,
               json_string_value(json_object_get(doc, "expires_at")), path);
    json_decref(doc);
    return CTL_OK;
}

int ctl_logout(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL, *body;
    char    dir[900], path[1000];
    int     rc;

    (void)argv;
    if (argc != 0)
        return ctl_fail(CTL_USAGE, "usage: cwppctl logout");
    body = json_object();
    rc = ctl_api(c, "POST", "/api/v1/logout", body, &doc);
    json_decref(body);
    json_decref(doc);
    if (getenv("CWPP_API_TOKEN") == NULL && config_dir(dir, sizeof(dir)) == 0) {
        snprintf(path, sizeof(path), "%s/token", dir);
        unlink(path);
    }
    if (rc == CTL_OK && !c->json)
        printf("logged out\n");
    return rc;
}

int ctl_whoami(ctl_t *c, int argc, char **argv)
{
    json_t *doc = NULL;
    int     rc;

    (void)argv;
    if (argc != 0)
        return ctl_fail(CTL_USAGE, "usage: cwppctl whoami");
    rc = ctl_api(c, "GET", "/api/v1/me", NULL, &doc);
    if (rc != CTL_OK)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    printf("%s (%s)", ctl_safe(json_string_value(json_object_get(doc, "user"))),
           ctl_safe(json_string_value(json_object_get(doc, "role"))));
    if (json_is_true(json_object_get(doc, "all_accounts"))) {
        printf(", every account\n");
    } else {
        size_t  i;
        json_t *a;

        printf(", accounts:");
        json_array_foreach(json_object_get(doc, "accounts"), i, a)
            printf(" %s", ctl_safe(json_string_value(a)));
        printf("\n");
    }
    json_decref(doc);
    return CTL_OK;
}

const char *ctl_safe(const char *s)
{
    static char          ring[4][4096];
    static unsigned      next;
    char                *out = ring[next++ % 4];
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "-");
    size_t               n = 0;

    for (; *p != '\0' && n + 16 < sizeof(ring[0]); p++) {
        if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(out + n, sizeof(ring[0]) - n, *p == '\n' ? "\\n"
                                  : *p == '\t' ? "\\t" : *p == '\r' ? "\\r" : "\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            n += (size_t)snprintf(out + n, sizeof(ring[0]) - n, "\\u%04x", *++p);
        } else if (*p == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
                                  (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9) ||
                                  (p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f)))) {
            /* bidi embeddings, overrides and isolates, LRM/RLM: U+202A-202E, U+2066-2069,
             * U+200E-200F reorder what a terminal shows */
            unsigned cp = 0x2000u + ((unsigned)(p[1] & 0x3f) << 6) + (p[2] & 0x3f);

            n += (size_t)snprintf(out + n, sizeof(ring[0]) - n, "\\u%04x", cp);
            p += 2;
        } else {
            out[n++] = (char)*p;
        }
    }
    if (*p != '\0') {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--; /* not mid-character */
        if (n > 0 && (unsigned char)out[n - 1] >= 0xc0)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}
