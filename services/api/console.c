/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.c: cwpp-api serves the analysts' console, a single page of static files (HTML,
 * JavaScript modules, CSS, images, fonts) that talks to the public API from the browser.
 * GET / answers the directory's index.html; GET /console/<path> answers the file <path>
 * of the directory (api.console.dir); HEAD is answered alike. Nothing else is served:
 *
 *   - <path> is segments of [A-Za-z0-9_.-] that do not start with a dot (no "..", no
 *     hidden file), joined by single slashes, at most 255 bytes and 16 segments deep;
 *     libmicrohttpd hands us the path percent-decoded, so "%2e%2e" is ".." here too;
 *   - the file is opened one segment at a time under the directory's descriptor with
 *     O_NOFOLLOW (a symbolic link anywhere on the way, pointing in or out, is refused:
 *     no escape through a link), and must be a regular file of at most 8 MiB;
 *   - its extension must be in the fixed table of MIME types below (the type is never
 *     guessed from the content);
 *   - anything else is the same 404 problem, whatever the reason.
 *
 * The page holds no data (every API call authenticates), so these answers need no
 * authentication. Each carries a strict Content-Security-Policy (only our own scripts,
 * styles, images and API; no frames, no <base>, forms post to us), nosniff, no referrer
 * and DENY framing; an ETag (size and modification time) and Last-Modified, so a
 * browser revalidates with If-None-Match / If-Modified-Since and gets 304; and
 * Cache-Control: no-cache, so every load revalidates (the files carry no version in
 * their names: a stale module after an upgrade would be worse than one round trip).
 *
 * The directory is opened once at start-up (api_console_open) and its descriptor kept
 * for the server's life; the request threads share it read-only.
 */
#include "api_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_FILE_MAX     (8 * 1024 * 1024) /* bytes of one file at most */
#define CONSOLE_PATH_MAX     255               /* bytes of a relative path at most */
#define CONSOLE_SEGMENTS_MAX 16                /* directories deep at most */

static const char CONSOLE_PREFIX[] = "/console/";

/* The headers of every console answer (Content-Security-Policy as the brief of the page
 * needs: our own origin only, data: images for inline icons, no framing). */
static const char CONSOLE_CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct api_console {
    int dirfd; /* the console directory, O_DIRECTORY; owned */
};

/* The fixed MIME table: extension (lowercase, after the last dot) -> Content-Type. */
static const struct {
    const char *ext;
    const char *type;
} MIME[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"json", "application/json"},
    {"woff2", "font/woff2"},
};

const char *api_console_mime(const char *name)
{
    const char *slash, *dot;
    size_t      i;

    assert(name != NULL);
    slash = strrchr(name, '/');
    dot = strrchr(slash != NULL ? slash + 1 : name, '.');
    if (dot == NULL || dot[1] == '\0')
        return NULL;
    for (i = 0; i < sizeof(MIME) / sizeof(MIME[0]); i++)
        if (strcmp(dot + 1, MIME[i].ext) == 0)
            return MIME[i].type;
    return NULL;
}

static int seg_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

int api_console_path_ok(const char *rel)
{
    size_t len, i, segments = 1;
    int    seg_start = 1;

    assert(rel != NULL);
    len = strlen(rel);
    if (len == 0 || len > CONSOLE_PATH_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = rel[i];

        if (c == '/') {
            if (seg_start || ++segments > CONSOLE_SEGMENTS_MAX)
                return 0; /* leading slash, "//", too deep */
            seg_start = 1;
            continue;
        }
        if (!seg_char(c) || (seg_start && c == '.'))
            return 0; /* a character we do not name files with, ".", "..", ".hidden" */
        seg_start = 0;
    }
    return !seg_start; /* no trailing slash */
}

/* Whether tag (one entity tag, possibly weak) equals etag under the weak comparison. */
static int tag_equal(const char *tag, size_t len, const char *etag)
{
    if (len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        len -= 2;
    }
    if (strncmp(etag, "W/", 2) == 0)
        etag += 2;
    return strlen(etag) == len && memcmp(tag, etag, len) == 0;
}

int api_console_etag_match(const char *if_none_match, const char *etag)
{
    const char *s = if_none_match;

    assert(etag != NULL);
    if (s == NULL)
        return 0;
    while (*s != '\0') {
        const char *end;

        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        if (*s == '*')
            return 1;
        end = s;
        if (end[0] == 'W' && end[1] == '/')
            end += 2;
        if (*end != '"')
            return 0; /* not an entity tag: the header is malformed, match nothing */
        end = strchr(end + 1, '"');
        if (end == NULL)
            return 0;
        end++;
        if (tag_equal(s, (size_t)(end - s), etag))
            return 1;
        s = end;
    }
    return 0;
}

api_console_t *api_console_open(const char *dir, char *errstr, size_t errstr_size)
{
    api_console_t *c = NULL;
    int            fd;

    assert(dir != NULL && dir[0] != '\0');
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot open the console directory %s: %s", dir,
                 strerror(errno));
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        close(fd);
        return NULL;
    }
    c->dirfd = fd;
    return c;
}

void api_console_close(api_console_t *c)
{
    if (c == NULL)
        return;
    close(c->dirfd);
    free(c);
}

/*
 * Opens rel (api_console_path_ok) under dirfd one segment at a time, never following a
 * symbolic link: every directory on the way with O_DIRECTORY | O_NOFOLLOW, the file
 * with O_NOFOLLOW (and O_NONBLOCK, so a FIFO planted there cannot hang the thread).
 * Returns the file's descriptor or -1.
 */
static int open_beneath(int dirfd, const char *rel)
{
    char        seg[CONSOLE_PATH_MAX + 1];
    const char *s = rel;
    int         fd = dirfd;

    for (;;) {
        const char *slash = strchr(s, '/');
        size_t      len = slash != NULL ? (size_t)(slash - s) : strlen(s);
        int         next;

        assert(len > 0 && len < sizeof(seg));
        memcpy(seg, s, len);
        seg[len] = '\0';
        if (slash == NULL)
            next = openat(fd, seg, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        else
            next = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd != dirfd)
            close(fd);
        if (next < 0 || slash == NULL)
            return next;
        fd = next;
        s = slash + 1;
    }
}

/* Adds the headers every console answer carries (security; the caching ones apart). */
static void security_headers(api_resp_t *rs)
{
    api_header(rs, "Content-Security-Policy", CONSOLE_CSP);
    api_header(rs, "Referrer-Policy", "no-referrer");
    api_header(rs, "X-Frame-Options", "DENY");
}

static int not_found(api_resp_t *rs)
{
    api_problem(rs, 404, "not_found", "There is no such resource.");
    security_headers(rs);
    return 1;
}

/* 1 when If-Modified-Since (an IMF-fixdate) is at or after mtime. */
static int not_modified_since(const char *ims, time_t mtime)
{
    struct tm   tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return 0;
    return mtime <= timegm(&tm);
}

int api_console_answer(const api_console_t *c, const char *method, const char *path,
                       const char *if_none_match, const char *if_modified_since,
                       api_resp_t *rs)
{
    const char *rel, *type;
    struct stat st;
    char        etag[96], lastmod[64];
    struct tm   tm;
    char       *buf = NULL;
    size_t      got = 0;
    int         fd;

    assert(method != NULL && path != NULL && rs != NULL);
    if (c == NULL)
        return 0;
    if (strcmp(path, "/") == 0)
        rel = "index.html";
    else if (strncmp(path, CONSOLE_PREFIX, sizeof(CONSOLE_PREFIX) - 1) == 0)
        rel = path + sizeof(CONSOLE_PREFIX) - 1;
    else
        return 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        api_problem(rs, 405, "method_not_allowed", "%s is not allowed on this path.", method);
        api_header(rs, "Allow", "GET, HEAD");
        security_headers(rs);
        return 1;
    }
    if (!api_console_path_ok(rel) || (type = api_console_mime(rel)) == NULL)
        return not_found(rs);
    fd = open_beneath(c->dirfd, rel);
    if (fd < 0)
        return not_found(rs);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONSOLE_FILE_MAX) {
        close(fd);
        return not_found(rs);
    }
    /* size and modification time (not the inode: replicas of one image agree) */
    snprintf(etag, sizeof(etag), "\"%llx-%llx.%lx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(lastmod, sizeof(lastmod), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (if_none_match != NULL ? api_console_etag_match(if_none_match, etag)
                              : if_modified_since != NULL &&
                                    not_modified_since(if_modified_since, st.st_mtim.tv_sec)) {
        close(fd);
        rs->status = 304;
    } else {
        buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
        if (buf == NULL) {
            close(fd);
            return api_problem(rs, 500, "internal", "Out of memory."), 1;
        }
        while (got < (size_t)st.st_size) {
            ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                free(buf);
                close(fd);
                return api_problem(rs, 500, "internal", "The file could not be read."), 1;
            }
            if (n == 0)
                break; /* shrunk while we read: serve what there was */
            got += (size_t)n;
        }
        close(fd);
        rs->status = 200;
        rs->raw = buf;
        rs->raw_len = got;
    }
    rs->ctype = type;
    api_header(rs, "Cache-Control", "no-cache");
    api_header(rs, "ETag", etag);
    api_header(rs, "Last-Modified", lastmod);
    security_headers(rs);
    return 1;
}
