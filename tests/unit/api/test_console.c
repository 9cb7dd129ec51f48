/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_console: cwpp-api's console files (services/api/console.c, docs/api.md "The
 * console"): which relative paths may be served (tables of clean paths and of traversal,
 * hidden, odd-character, too long and too deep ones), the fixed MIME table, If-None-Match
 * matching (lists, weak tags, "*", malformed), and the answers on a real directory: /
 * gives index.html, a module and a stylesheet come with their types, the security and
 * caching headers, 304 for a matching ETag or a later If-Modified-Since, and the same
 * 404 for a path that climbs out, a symbolic link (to a file or a directory, outside or
 * inside), a FIFO, a directory, an unknown extension; 405 for other methods; nothing
 * answered outside / and /console/ or with the console off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_internal.h"

/* ----------------------------------------------------------------- pure functions */

static void test_path_ok(void **state)
{
    static const char *const good[] = {
        "index.html", "app.js", "css/console.css", "js/a-b_c.1.js", "a/b/c/d.png",
        "x", "fonts/Inter-Regular.woff2",
    };
    static const char *const bad[] = {
        "", "/etc/passwd", "..", "../api.h", "css/../../api.h", "css/..", "./app.js",
        ".hidden", "css/.x.css", "a//b.js", "css/", "a\\b.js", "a b.js", "%2e%2e/x.js",
        "a:b.js", "a?b.js", "\xc3\xa9.js", "a\tb",
    };
    char   longp[300], deep[200];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(api_console_path_ok(good[i]));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (api_console_path_ok(bad[i]))
            fail_msg("path \"%s\" was taken", bad[i]);
    }
    memset(longp, 'a', 255);
    longp[255] = '\0';
    assert_true(api_console_path_ok(longp)); /* 255 bytes: the longest */
    longp[255] = 'a';
    longp[256] = '\0';
    assert_false(api_console_path_ok(longp));
    deep[0] = '\0';
    for (i = 0; i < 16; i++)
        strcat(deep, i == 0 ? "d" : "/d");
    assert_true(api_console_path_ok(deep)); /* 16 segments: the deepest */
    strcat(deep, "/d");
    assert_false(api_console_path_ok(deep));
}

static void test_mime(void **state)
{
    static const struct {
        const char *name, *type;
    } cases[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"css/console.css", "text/css; charset=utf-8"},
        {"img/logo.svg", "image/svg+xml"},
        {"img/a.b.png", "image/png"},
        {"favicon.ico", "image/x-icon"},
        {"data/x.json", "application/json"},
        {"f/Inter.woff2", "font/woff2"},
        {"noext", NULL},
        {"x.", NULL},
        {"app.js.map", NULL},
        {"notes.txt", NULL},
        {"x.JS", NULL},
        {"a.html/b", NULL}, /* the dot of a directory is no extension */
        {"x.htm", NULL},
        {"x.woff", NULL},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = api_console_mime(cases[i].name);

        if (cases[i].type == NULL)
            assert_null(got);
        else
            assert_string_equal(got != NULL ? got : "(null)", cases[i].type);
    }
}

static void test_etag_match(void **state)
{
    static const char E[] = "\"1a-2b-3c.4d\"";
    static const struct {
        const char *inm;
        int         match;
    } cases[] = {
        {"\"1a-2b-3c.4d\"", 1},
        {"W/\"1a-2b-3c.4d\"", 1},
        {"\"x\", \"1a-2b-3c.4d\"", 1},
        {"\"x\",W/\"1a-2b-3c.4d\"  ", 1},
        {"*", 1},
        {"\"x\"", 0},
        {"\"1a-2b-3c.4\"", 0},
        {"1a-2b-3c.4d", 0},           /* no quotes: not an entity tag */
        {"\"1a-2b-3c.4d", 0},         /* unterminated */
        {"", 0},
        {" , ", 0},
    };
    size_t i;

    (void)state;
    assert_false(api_console_etag_match(NULL, E));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (api_console_etag_match(cases[i].inm, E) != cases[i].match)
            fail_msg("If-None-Match %s: expected %d", cases[i].inm, cases[i].match);
    }
    assert_true(api_console_etag_match("\"a\"", "W/\"a\"")); /* weak comparison */
}

/* ---------------------------------------------------------- answers on a directory */

typedef struct fixture {
    char           root[128];   /* a temporary directory holding ... */
    char           dir[160];    /* ... the console directory and ... */
    char           outside[160]; /* ... a secret file next to it */
    api_console_t *c;
} fixture_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char       p[512], err[256];

    assert_non_null(fx);
    snprintf(fx->root, sizeof(fx->root), "/tmp/cwpp-test-console-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->dir, sizeof(fx->dir), "%s/console", fx->root);
    snprintf(fx->outside, sizeof(fx->outside), "%s/secret.js", fx->root);
    assert_int_equal(mkdir(fx->dir, 0755), 0);
    write_file(fx->outside, "the secret\n");
    snprintf(p, sizeof(p), "%s/index.html", fx->dir);
    write_file(p, "<!DOCTYPE html><title>console</title>\n");
    snprintf(p, sizeof(p), "%s/app.js", fx->dir);
    write_file(p, "export const x = 1;\n");
    snprintf(p, sizeof(p), "%s/css", fx->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/css/console.css", fx->dir);
    write_file(p, "body { margin: 0; }\n");
    snprintf(p, sizeof(p), "%s/notes.txt", fx->dir);
    write_file(p, "not served\n");
    snprintf(p, sizeof(p), "%s/dir.js", fx->dir); /* a directory with a served name */
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/out.js", fx->dir);
    assert_int_equal(symlink(fx->outside, p), 0);
    snprintf(p, sizeof(p), "%s/in.js", fx->dir);
    assert_int_equal(symlink("app.js", p), 0);
    snprintf(p, sizeof(p), "%s/up", fx->dir);
    assert_int_equal(symlink("..", p), 0);
    snprintf(p, sizeof(p), "%s/fifo.js", fx->dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    fx->c = api_console_open(fx->dir, err, sizeof(err));
    assert_non_null(fx->c);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char       cmd[256];

    api_console_close(fx->c);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static const char *header(const api_resp_t *rs, const char *name)
{
    size_t i;

    for (i = 0; i < rs->nheaders; i++)
        if (strcasecmp(rs->hname[i], name) == 0)
            return rs->hvalue[i];
    return NULL;
}

/* GET path with the conditional headers given; returns the status (0: not answered). */
static int get(const fixture_t *fx, const char *method, const char *path, const char *inm,
               const char *ims, api_resp_t *rs)
{
    memset(rs, 0, sizeof(*rs));
    if (!api_console_answer(fx->c, method, path, inm, ims, rs))
        return 0;
    return rs->status;
}

static void assert_security_headers(const api_resp_t *rs)
{
    assert_string_equal(header(rs, "Content-Security-Policy"),
                        "default-src 'self'; script-src 'self'; style-src 'self'; "
                        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                        "base-uri 'none'; form-action 'self'");
    assert_string_equal(header(rs, "Referrer-Policy"), "no-referrer");
    assert_string_equal(header(rs, "X-Frame-Options"), "DENY");
}

static void test_serves_files(void **state)
{
    fixture_t *fx = *state;
    api_resp_t rs;
    char       etag[128], lastmod[64];

    assert_int_equal(get(fx, "GET", "/", NULL, NULL, &rs), 200);
    assert_string_equal(rs.ctype, "text/html; charset=utf-8");
    assert_int_equal(rs.raw_len, strlen("<!DOCTYPE html><title>console</title>\n"));
    assert_memory_equal(rs.raw, "<!DOCTYPE html>", 15);
    assert_string_equal(header(&rs, "Cache-Control"), "no-cache");
    assert_security_headers(&rs);
    snprintf(etag, sizeof(etag), "%s", header(&rs, "ETag"));
    snprintf(lastmod, sizeof(lastmod), "%s", header(&rs, "Last-Modified"));
    assert_true(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
    assert_non_null(strstr(lastmod, " GMT"));
    api_resp_clear(&rs);

    /* the same file by its name; HEAD alike (the server drops HEAD's body) */
    assert_int_equal(get(fx, "GET", "/console/index.html", NULL, NULL, &rs), 200);
    assert_string_equal(header(&rs, "ETag"), etag);
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "HEAD", "/", NULL, NULL, &rs), 200);
    api_resp_clear(&rs);

    assert_int_equal(get(fx, "GET", "/console/app.js", NULL, NULL, &rs), 200);
    assert_string_equal(rs.ctype, "text/javascript; charset=utf-8");
    assert_int_equal(rs.raw_len, 20);
    assert_security_headers(&rs);
    assert_string_not_equal(header(&rs, "ETag"), etag);
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "GET", "/console/css/console.css", NULL, NULL, &rs), 200);
    assert_string_equal(rs.ctype, "text/css; charset=utf-8");
    api_resp_clear(&rs);

    /* revalidation: a matching ETag (alone or in a list, weak too) or, without one, a
     * date at or after the file's */
    assert_int_equal(get(fx, "GET", "/", etag, NULL, &rs), 304);
    assert_null(rs.raw);
    assert_string_equal(header(&rs, "ETag"), etag);
    assert_string_equal(header(&rs, "Cache-Control"), "no-cache");
    assert_security_headers(&rs);
    api_resp_clear(&rs);
    {
        char list[300];

        snprintf(list, sizeof(list), "\"old\", W/%s", etag);
        assert_int_equal(get(fx, "GET", "/", list, NULL, &rs), 304);
        api_resp_clear(&rs);
    }
    assert_int_equal(get(fx, "GET", "/", "\"old\"", lastmod, &rs), 200); /* ETag wins */
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "GET", "/", NULL, lastmod, &rs), 304);
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "GET", "/", NULL, "Thu, 01 Jan 1970 00:00:00 GMT", &rs), 200);
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "GET", "/", NULL, "yesterday", &rs), 200);
    api_resp_clear(&rs);
}

static void test_refuses(void **state)
{
    fixture_t *fx = *state;
    api_resp_t rs;
    static const char *const not_served[] = {
        "/console/../secret.js",   /* climbs out (the server hands paths decoded) */
        "/console/css/../../secret.js",
        "/console/./app.js",
        "/console/out.js",         /* a symbolic link out of the directory */
        "/console/in.js",          /* a symbolic link inside it: no links at all */
        "/console/up/secret.js",   /* through a linked directory */
        "/console/fifo.js",        /* not a regular file (and must not hang) */
        "/console/dir.js",         /* a directory */
        "/console/notes.txt",      /* an extension not in the table */
        "/console/missing.js",
        "/console/",
        "/console//app.js",
        "/console/css/",
        "/console/%2e%2e/secret.js", /* still encoded: '%' is no file-name character */
    };
    size_t i;

    for (i = 0; i < sizeof(not_served) / sizeof(not_served[0]); i++) {
        int st = get(fx, "GET", not_served[i], NULL, NULL, &rs);

        if (st != 404)
            fail_msg("%s answered %d", not_served[i], st);
        assert_string_equal(rs.ctype, "application/problem+json");
        assert_null(header(&rs, "ETag"));
        assert_security_headers(&rs);
        api_resp_clear(&rs);
    }
    assert_int_equal(get(fx, "POST", "/", NULL, NULL, &rs), 405);
    assert_string_equal(header(&rs, "Allow"), "GET, HEAD");
    api_resp_clear(&rs);
    assert_int_equal(get(fx, "DELETE", "/console/app.js", NULL, NULL, &rs), 405);
    api_resp_clear(&rs);

    /* not the console's paths, or the console off: left to the routes */
    assert_int_equal(get(fx, "GET", "/index.html", NULL, NULL, &rs), 0);
    assert_int_equal(get(fx, "GET", "/console", NULL, NULL, &rs), 0);
    assert_int_equal(get(fx, "GET", "/consoles/app.js", NULL, NULL, &rs), 0);
    assert_int_equal(get(fx, "GET", "/api/v1/me", NULL, NULL, &rs), 0);
    assert_int_equal(rs.status, 0);
    assert_int_equal(api_console_answer(NULL, "GET", "/", NULL, NULL, &rs), 0);
    assert_int_equal(rs.status, 0);
}

static void test_open_refuses_a_missing_directory(void **state)
{
    char err[256] = "";

    (void)state;
    assert_null(api_console_open("/nonexistent/cwpp/console", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/cwpp/console"));
    assert_null(api_console_open("/etc/hostname", err, sizeof(err))); /* not a directory */
    api_console_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_ok),
        cmocka_unit_test(test_mime),
        cmocka_unit_test(test_etag_match),
        cmocka_unit_test_setup_teardown(test_serves_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses, setup, teardown),
        cmocka_unit_test(test_open_refuses_a_missing_directory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
