/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graph.c: the provenance graph of a security event as Graphviz DOT text, and the runner
 * that turns DOT into SVG with `dot -Tsvg` (cwpp_graph.h has the contract and the threat
 * model: entity values are hostile; the renderer is one program with pipes, a minimal
 * environment, a deadline and an output cap).
 *
 * The runner uses posix_spawn, not fork: cwpp-api calls it from request threads of a
 * process holding database and broker connections, and a spawned child shares nothing
 * with them (every descriptor above stderr is closed in the child, signal mask and
 * dispositions are reset) and does not copy the parent's address space.
 */
#include "cwpp_graph.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cwpp_alert.h"

/* ------------------------------------------------------------------ DOT text */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

/*
 * Appends s as the inside of a DOT quoted string meant for a label: " and \ escaped (a
 * backslash would otherwise start a Graphviz escape such as \N or \G), & as &amp; (dot
 * reads entities in labels), control characters (C0, DEL, C1) as visible escapes (a
 * newline shows "\n"), at most max characters (then "..."; 0: no limit). Returns 0, or
 * non-zero when out of memory.
 */
static int put_dot(cwpp_buf_t *b, const char *s, int max)
{
    const unsigned char *p = (const unsigned char *)s;
    int                  chars = 0, rc = 0;

    for (; *p != '\0' && rc == 0; chars++) {
        char esc[16];

        if (max > 0 && chars >= max) {
            rc |= cwpp_buf_puts(b, "...");
            break;
        }
        if (*p == '"' || *p == '\\') {
            snprintf(esc, sizeof(esc), "\\%c", *p);
        } else if (*p == '&') {
            snprintf(esc, sizeof(esc), "&amp;");
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), *p == '\n' ? "\\\\n" : *p == '\t' ? "\\\\t"
                                       : *p == '\r' ? "\\\\r" : "\\\\x%02x", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            snprintf(esc, sizeof(esc), "\\\\u%04x", p[1]);
            p++;
        } else {
            size_t len = 1;

            while (p[len] != '\0' && (p[len] & 0xc0) == 0x80 && len < 4)
                len++;
            rc |= cwpp_buf_append(b, p, len) == CWPP_OK ? 0 : -1;
            p += len;
            continue;
        }
        rc |= cwpp_buf_puts(b, esc);
        p++;
    }
    return rc;
}

/* Appends a node id: as it is when it is a plain DOT identifier (the API's "n1", "n2",
 * ...), else as an escaped quoted string, so that no document can inject a statement. */
static int put_id(cwpp_buf_t *b, const char *id)
{
    size_t i;
    int    plain = id[0] != '\0' && !(id[0] >= '0' && id[0] <= '9');

    for (i = 0; plain && id[i] != '\0'; i++)
        plain = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
                (id[i] >= '0' && id[i] <= '9') || id[i] == '_';
    if (plain && i <= 64)
        return cwpp_buf_puts(b, id);
    return cwpp_buf_puts(b, "\"") | put_dot(b, id, 0) | cwpp_buf_puts(b, "\"");
}

int cwpp_graph_dot(const json_t *doc, cwpp_buf_t *b)
{
    const json_t      *g = json_object_get(doc, "graph");
    const json_t      *nodes = json_object_get(g, "nodes");
    const json_t      *edges = json_object_get(g, "edges");
    cwpp_entity_type_t et;
    size_t             k;
    int                rc = 0;
    char               num[64];

    rc |= cwpp_buf_puts(b, "digraph \"");
    rc |= put_dot(b, jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, "\" {\n  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", "
                           "label=\"");
    rc |= put_dot(b, jstr(doc, "name"), 80);
    rc |= cwpp_buf_puts(b, " (");
    rc |= put_dot(b, jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, ")\"];\n  node [fontname=\"Helvetica\", fontsize=10];\n"
                           "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (k = 0; k < json_array_size(nodes); k++) {
        const json_t *n = json_array_get(nodes, k);
        const char   *type = jstr(n, "type"), *shape = "ellipse", *color = "black";

        if (cwpp_entity_type_parse(type, &et) == 0) {
            shape = cwpp_entity_type_def(et)->dot_shape;
            color = cwpp_entity_type_def(et)->dot_color;
        }
        rc |= cwpp_buf_puts(b, "  ");
        rc |= put_id(b, jstr(n, "id"));
        rc |= cwpp_buf_puts(b, " [shape=");
        rc |= cwpp_buf_puts(b, shape);
        rc |= cwpp_buf_puts(b, ", color=\"");
        rc |= cwpp_buf_puts(b, color);
        rc |= cwpp_buf_puts(b, "\", label=\"");
        rc |= put_dot(b, type, 0);
        rc |= cwpp_buf_puts(b, "\\n");
        rc |= put_dot(b, jstr(n, "value"), 60);
        rc |= cwpp_buf_puts(b, "\", tooltip=\"");
        rc |= put_dot(b, jstr(n, "value"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    for (k = 0; k < json_array_size(edges); k++) {
        const json_t *e = json_array_get(edges, k);
        json_int_t    alerts = json_integer_value(json_object_get(e, "alerts"));

        rc |= cwpp_buf_puts(b, "  ");
        rc |= put_id(b, jstr(e, "from"));
        rc |= cwpp_buf_puts(b, " -> ");
        rc |= put_id(b, jstr(e, "to"));
        rc |= cwpp_buf_puts(b, " [label=\"");
        rc |= put_dot(b, jstr(e, "relation"), 0);
        if (alerts > 1) {
            snprintf(num, sizeof(num), " (x%" JSON_INTEGER_FORMAT ")", alerts);
            rc |= cwpp_buf_puts(b, num);
        }
        rc |= cwpp_buf_puts(b, "\", tooltip=\"first shown by ");
        rc |= put_dot(b, jstr(e, "alert_id"), 0);
        rc |= cwpp_buf_puts(b, " at ");
        rc |= put_dot(b, jstr(e, "first_seen"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    rc |= cwpp_buf_puts(b, "}\n");
    return rc != 0 ? CWPP_ENOMEM : CWPP_OK;
}

/* ------------------------------------------------------------------ dot -Tsvg */

/* The whole environment of the child: no variable of ours (tokens, DSNs) reaches it. */
static char *const CHILD_ENV[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL};

/* Moves *fd to a descriptor >= 3 (close-on-exec), so that the child's dup2 onto 0 and 1
 * never overwrites the other pipe (a caller started with stdin or stdout closed).
 * Returns 0 or -1 (errno). */
static int above_stdio(int *fd)
{
    int n;

    if (*fd > 2)
        return 0;
    n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0)
        return -1;
    close(*fd);
    *fd = n;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * Finds prog: a path with a '/' as it is, a name in the directories of the caller's PATH
 * (default "/usr/bin:/bin"), the first executable regular file. Writes the path into out.
 * Returns 0, or ENOENT / the errno of the check. Looked up here rather than left to
 * posix_spawnp so that a missing program is told the same way wherever the spawn's own
 * report of the exec's errno is not available (valgrind runs it as a plain fork).
 */
static int resolve(const char *prog, char *out, size_t size)
{
    const char *path = getenv("PATH"), *dir, *end;
    struct stat st;

    if (strchr(prog, '/') != NULL) {
        if (snprintf(out, size, "%s", prog) >= (int)size)
            return ENAMETOOLONG;
        if (stat(out, &st) != 0)
            return errno;
        return S_ISREG(st.st_mode) && access(out, X_OK) == 0 ? 0 : EACCES;
    }
    for (dir = path != NULL ? path : "/usr/bin:/bin"; ; dir = end + 1) {
        int len;

        end = strchr(dir, ':');
        len = end != NULL ? (int)(end - dir) : (int)strlen(dir);
        if (snprintf(out, size, "%.*s/%s", len, len > 0 ? dir : ".", prog) < (int)size &&
            stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        if (end == NULL)
            return ENOENT;
    }
}

/*
 * Starts prog (a path) -Tsvg with in_fd as its stdin and out_fd as its stdout. Returns 0
 * with *pid, or the errno of the failure.
 */
static int spawn_dot(const char *prog, int in_fd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          at;
    sigset_t                   none, all;
    char                      *const args[] = {(char *)prog, "-Tsvg", NULL};
    int                        err;

    if ((err = posix_spawn_file_actions_init(&fa)) != 0)
        return err;
    if ((err = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return err;
    }
    sigemptyset(&none);
    sigfillset(&all);
    if ((err = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) == 0 &&
        (err = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) == 0 &&
        (err = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) == 0 &&
        (err = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) == 0 &&
        (err = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
        (err = posix_spawnattr_setsigdefault(&at, &all)) == 0 &&
        (err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF)) == 0)
        err = posix_spawn(pid, prog, &fa, &at, args, CHILD_ENV);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return err;
}

/* What the exchange with the child ended with. */
enum { RUN_DONE, RUN_TIMEOUT, RUN_TOO_LARGE, RUN_NOMEM, RUN_POLL };

/*
 * Feeds in to the child's stdin (non-blocking, as its output is drained at the same
 * time: dot may write before it has read everything) and collects its stdout into out,
 * until its stdout closes, the deadline passes, the output passes max_out, or poll
 * fails; *to_child is closed once everything is written (or the child stopped reading),
 * else left to the caller. Sets *epipe when a write met a closed pipe (a SIGPIPE is then pending on this
 * thread). Returns RUN_*; *err holds poll's errno for RUN_POLL.
 */
static int exchange(int *to_child, int from_child, const cwpp_buf_t *in, cwpp_buf_t *out,
                    int64_t deadline, size_t max_out, int *epipe, int *err)
{
    size_t written = 0, start = out->len;
    char   buf[65536];

    if (fcntl(*to_child, F_SETFL, O_NONBLOCK) != 0) {
        *err = errno;
        return RUN_POLL;
    }
    for (;;) {
        struct pollfd pf[2];
        nfds_t        n = 0;
        int64_t       wait_ms = deadline - cwpp_mono_ms();

        if (wait_ms <= 0)
            return RUN_TIMEOUT;
        if (*to_child >= 0 && written == in->len)
            close_fd(to_child); /* the end of its input */
        pf[n].fd = from_child;
        pf[n++].events = POLLIN;
        if (*to_child >= 0) {
            pf[n].fd = *to_child;
            pf[n++].events = POLLOUT;
        }
        if (poll(pf, n, (int)wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            return RUN_POLL;
        }
        if (n == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t w = write(*to_child, in->data + written, in->len - written);

            if (w > 0) {
                written += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                *epipe |= errno == EPIPE;
                close_fd(to_child); /* it stopped reading; its exit status tells why */
                written = in->len;
            }
        }
        if ((pf[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            ssize_t got = read(from_child, buf, sizeof(buf));

            if (got > 0) {
                if (out->len - start + (size_t)got > max_out)
                    return RUN_TOO_LARGE;
                if (cwpp_buf_append(out, buf, (size_t)got) != CWPP_OK)
                    return RUN_NOMEM;
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                return RUN_DONE;
            }
        }
    }
}

int cwpp_graph_svg(const char *prog, const cwpp_buf_t *dot, cwpp_buf_t *svg, int timeout_ms,
                   size_t max_out, char *errstr, size_t errstr_size)
{
    int      to_child[2] = {-1, -1}, from_child[2] = {-1, -1};
    int      rc, err = 0, how, status = 0, epipe = 0, was_pending;
    int64_t  deadline = cwpp_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pid_t    pid = -1;
    sigset_t pipe_set, old_mask, pending;
    char     file[4096];

    if (prog == NULL || prog[0] == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOTFOUND,
                           "no Graphviz dot program is configured");
    /* a write to a child that exited raises SIGPIPE on this thread: held, then dropped */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;

    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0 ||
        above_stdio(&to_child[0]) != 0 || above_stdio(&from_child[1]) != 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot run %s: pipe: %s", prog,
                         strerror(errno));
        goto out;
    }
    err = resolve(prog, file, sizeof(file));
    if (err == 0)
        err = spawn_dot(file, to_child[0], from_child[1], &pid);
    close_fd(&to_child[0]);
    close_fd(&from_child[1]);
    if (err != 0) {
        pid = -1;
        rc = cwpp_seterr(errstr, errstr_size,
                         err == ENOENT || err == ENOTDIR ? CWPP_ENOTFOUND : CWPP_EIO,
                         "cannot run %s: %s", prog, strerror(err));
        goto out;
    }
    how = exchange(&to_child[1], from_child[0], dot, svg, deadline, max_out, &epipe, &err);
    close_fd(&to_child[1]);
    if (how != RUN_DONE)
        kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    switch (how) {
    case RUN_TIMEOUT:
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT,
                         "%s did not finish within %d ms", prog, timeout_ms);
        break;
    case RUN_TOO_LARGE:
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "%s wrote more than %zu bytes", prog, max_out);
        break;
    case RUN_NOMEM:
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        break;
    case RUN_POLL:
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot talk to %s: %s", prog,
                         strerror(err));
        break;
    default:
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            rc = CWPP_OK;
        else
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "%s -Tsvg failed (%s %d)", prog,
                             WIFEXITED(status) ? "exit status" : "signal",
                             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
out:
    close_fd(&to_child[0]);
    close_fd(&to_child[1]);
    close_fd(&from_child[0]);
    close_fd(&from_child[1]);
    if (epipe && !was_pending) {
        struct timespec zero = {0, 0};

        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}
