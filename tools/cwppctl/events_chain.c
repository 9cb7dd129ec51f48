/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_chain.c: `cwppctl events chain ID`, the event as a story: its alerts on a
 * timeline with the pace between them, and its provenance graph (entities as nodes, the
 * behaviours between them as edges; docs/correlator.md "Provenance graph"). One JSON
 * document from cwpp-api holds both (GET /api/v1/events/ID/chain; --format json prints
 * it); text, DOT and SVG are drawn from it here, on the analyst's machine. Entity
 * values are hostile input: DOT output escapes them for Graphviz's quoted strings, and
 * --format svg hands that DOT text to `dot -Tsvg` through pipes (fork and exec, no
 * shell).
 */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cwpp_alert.h"

/* ------------------------------------------------------------- the document */

/*
 * Appends s as the inside of a DOT quoted string meant for a label: " and \ escaped (a
 * backslash would otherwise start a Graphviz escape such as \N or \G), & as &amp; (dot
 * reads entities in labels), control characters as visible escapes (\\n shows "\n"), at
 * most max characters (then "..."). Returns 0, or non-zero when out of memory.
 */
static int put_dot(cwpp_buf_t *b, const char *s, int max)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
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

/* The provenance graph as a Graphviz digraph. A node's shape and colour are its entity
 * type's (cwpp_entity_type_def in libs/alert); a type the table does not know is drawn
 * as a black ellipse. Returns 0, or non-zero when out of memory. */
static int chain_dot(const json_t *doc, cwpp_buf_t *b)
{
    const json_t      *g = json_object_get(doc, "graph");
    const json_t      *nodes = json_object_get(g, "nodes");
    const json_t      *edges = json_object_get(g, "edges");
    cwpp_entity_type_t et;
    size_t             k;
    int                rc = 0;
    char               num[64];

    rc |= cwpp_buf_puts(b, "digraph \"");
    rc |= put_dot(b, ev_jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, "\" {\n  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label=\"");
    rc |= put_dot(b, ev_jstr(doc, "name"), 80);
    rc |= cwpp_buf_puts(b, " (");
    rc |= put_dot(b, ev_jstr(doc, "event_id"), 0);
    rc |= cwpp_buf_puts(b, ")\"];\n  node [fontname=\"Helvetica\", fontsize=10];\n"
                 "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (k = 0; k < json_array_size(nodes); k++) {
        const json_t *n = json_array_get(nodes, k);
        const char   *type = ev_jstr(n, "type"), *shape = "ellipse", *color = "black";

        if (cwpp_entity_type_parse(type, &et) == 0) {
            shape = cwpp_entity_type_def(et)->dot_shape;
            color = cwpp_entity_type_def(et)->dot_color;
        }
        rc |= cwpp_buf_puts(b, "  ");
        rc |= cwpp_buf_puts(b, ev_jstr(n, "id"));
        rc |= cwpp_buf_puts(b, " [shape=");
        rc |= cwpp_buf_puts(b, shape);
        rc |= cwpp_buf_puts(b, ", color=\"");
        rc |= cwpp_buf_puts(b, color);
        rc |= cwpp_buf_puts(b, "\", label=\"");
        rc |= put_dot(b, type, 0);
        rc |= cwpp_buf_puts(b, "\\n");
        rc |= put_dot(b, ev_jstr(n, "value"), 60);
        rc |= cwpp_buf_puts(b, "\", tooltip=\"");
        rc |= put_dot(b, ev_jstr(n, "value"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    for (k = 0; k < json_array_size(edges); k++) {
        const json_t *e = json_array_get(edges, k);

        rc |= cwpp_buf_puts(b, "  ");
        rc |= cwpp_buf_puts(b, ev_jstr(e, "from"));
        rc |= cwpp_buf_puts(b, " -> ");
        rc |= cwpp_buf_puts(b, ev_jstr(e, "to"));
        rc |= cwpp_buf_puts(b, " [label=\"");
        rc |= put_dot(b, ev_jstr(e, "relation"), 0);
        if (ev_jint(e, "alerts") > 1) {
            snprintf(num, sizeof(num), " (x%" JSON_INTEGER_FORMAT ")", ev_jint(e, "alerts"));
            rc |= cwpp_buf_puts(b, num);
        }
        rc |= cwpp_buf_puts(b, "\", tooltip=\"first shown by ");
        rc |= put_dot(b, ev_jstr(e, "alert_id"), 0);
        rc |= cwpp_buf_puts(b, " at ");
        rc |= put_dot(b, ev_jstr(e, "first_seen"), 0);
        rc |= cwpp_buf_puts(b, "\"];\n");
    }
    rc |= cwpp_buf_puts(b, "}\n");
    return rc;
}

/*
 * Runs `dot -Tsvg` (found on PATH; no shell) with in as its input, collecting its output
 * in out. Gives up after timeout_s seconds (the child is killed). Returns CTL_OK, or
 * CTL_INFRA after printing why (dot missing, failed, too slow). dot's own messages go to
 * our stderr.
 * One function (about 140 lines) on purpose: the three pipes, the child and the SIGPIPE
 * disposition are created and released together, and every early exit must close the
 * same descriptors and restore the same handler; split up, that one cleanup path would
 * be spread over several functions.
 */
static int run_dot_svg(const cwpp_buf_t *in, cwpp_buf_t *out, int timeout_s)
{
    int     to_child[2] = {-1, -1}, from_child[2] = {-1, -1}, report[2] = {-1, -1};
    int     rc = CTL_INFRA, status, exec_errno = 0, killed = 0, poll_errno = 0;
    size_t  written = 0;
    int64_t deadline = cwpp_mono_ms() + (int64_t)timeout_s * 1000;
    pid_t   pid;
    void  (*old_pipe)(int) = SIG_DFL;

    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0 ||
        pipe2(report, O_CLOEXEC) != 0) {
        ctl_fail(CTL_INFRA, "cannot run dot: %s", strerror(errno));
        goto out;
    }
    /* dot exiting early must not kill us with SIGPIPE: a write then fails with EPIPE */
    old_pipe = signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        signal(SIGPIPE, old_pipe);
        ctl_fail(CTL_INFRA, "cannot run dot: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        char *const args[] = {"dot", "-Tsvg", NULL};
        int         e;

        signal(SIGPIPE, SIG_DFL);
        /* dup2 onto itself would keep close-on-exec (a caller started with 0 or 1 closed) */
        if ((to_child[0] == 0 ? fcntl(0, F_SETFD, 0) : dup2(to_child[0], 0)) < 0 ||
            (from_child[1] == 1 ? fcntl(1, F_SETFD, 0) : dup2(from_child[1], 1)) < 0)
            _exit(127);
        execvp("dot", args);
        e = errno;
        if (write(report[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    close(report[1]);
    to_child[0] = from_child[1] = report[1] = -1;
    /* the report pipe closes on a successful exec, or brings exec's errno */
    while (read(report[0], &exec_errno, sizeof(exec_errno)) < 0 && errno == EINTR)
        ;
    if (exec_errno != 0) {
        waitpid(pid, &status, 0);
        signal(SIGPIPE, old_pipe);
        ctl_fail(CTL_INFRA, "cannot run dot (Graphviz) for --format svg: %s; install the "
                 "graphviz package, or use --format dot", strerror(exec_errno));
        goto out;
    }
    fcntl(to_child[1], F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd pf[2];
        int           n = 0, wait_ms = (int)(deadline - cwpp_mono_ms());
        char          buf[65536];
        ssize_t       got;

        if (from_child[0] < 0)
            break;
        if (wait_ms <= 0) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        if (to_child[1] >= 0 && written == in->len) {
            close(to_child[1]);
            to_child[1] = -1;
        }
        pf[n].fd = from_child[0];
        pf[n++].events = POLLIN;
        if (to_child[1] >= 0) {
            pf[n].fd = to_child[1];
            pf[n++].events = POLLOUT;
        }
        if (poll(pf, (nfds_t)n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            poll_errno = errno;
            kill(pid, SIGKILL); /* nobody reads its output any more: it must not hang us */
            killed = 2;
            break;
        }
        if (n == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t w = write(to_child[1], in->data + written, in->len - written);

            if (w > 0) {
                written += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(to_child[1]); /* dot stopped reading; its exit status tells why */
                to_child[1] = -1;
                written = in->len;
            }
        }
        if ((pf[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            got = read(from_child[0], buf, sizeof(buf));
            if (got > 0) {
                if (cwpp_buf_append(out, buf, (size_t)got) != CWPP_OK) {
                    kill(pid, SIGKILL);
                    waitpid(pid, &status, 0);
                    signal(SIGPIPE, old_pipe);
                    ctl_fail(CTL_INFRA, "out of memory");
                    goto out;
                }
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(from_child[0]);
                from_child[0] = -1;
            }
        }
    }
    if (to_child[1] >= 0) {
        close(to_child[1]);
        to_child[1] = -1;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    signal(SIGPIPE, old_pipe);
    if (killed == 2)
        ctl_fail(CTL_INFRA, "cannot wait for dot: %s", strerror(poll_errno));
    else if (killed)
        ctl_fail(CTL_INFRA, "dot did not finish within %d s (--timeout)", timeout_s);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        ctl_fail(CTL_INFRA, "dot -Tsvg failed (%s %d)", WIFEXITED(status) ? "exit status"
                                                                        : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else
        rc = CTL_OK;
out:
    if (to_child[0] >= 0)
        close(to_child[0]);
    if (to_child[1] >= 0)
        close(to_child[1]);
    if (from_child[0] >= 0)
        close(from_child[0]);
    if (from_child[1] >= 0)
        close(from_child[1]);
    if (report[0] >= 0)
        close(report[0]);
    if (report[1] >= 0)
        close(report[1]);
    return rc;
}

/* ------------------------------------------------------------------ text */

static const ev_col_t TIMELINE_COLS[] = {
    {"FIRST SEEN", 0, 0, NULL}, {"GAP", 9, 0, NULL},  {"PACE", 9, 0, NULL},
    {"ALERT", 30, 0, NULL},     {"TYPE", 17, 0, NULL}, {"SEVERITY", 8, 0, NULL},
    {"ASSET", 0, 0, "  on "},
};
static const ev_table_t TIMELINE_TABLE = {TIMELINE_COLS, EV_NCOLS(TIMELINE_COLS), "  "};
/* "host h1  --ran-->  process /usr/bin/x  (2 alerts, first al-...)" */
static const ev_col_t RELATION_COLS[] = {
    {"FROM TYPE", 0, 0, NULL}, {"FROM", 0, 0, " "},    {"RELATION", 0, 0, "  --"},
    {"TO TYPE", 0, 0, "-->  "}, {"TO", 0, 0, " "},     {"ALERTS", 0, 0, "  ("},
};
static const ev_table_t RELATION_TABLE = {RELATION_COLS, EV_NCOLS(RELATION_COLS), "  "};

static void chain_text(const json_t *doc)
{
    const json_t *timeline = json_object_get(doc, "timeline");
    const json_t *g = json_object_get(doc, "graph");
    const json_t *nodes = json_object_get(g, "nodes"), *edges = json_object_get(g, "edges");
    char          span[32], gap[40], alerts[160];
    size_t        k;

    printf("Event %s \"", ev_jstr(doc, "event_id"));
    ev_cell(ev_jstr(doc, "name"), 0);
    printf("\": %zu alert%s over %s on %" JSON_INTEGER_FORMAT " asset%s\n\nTimeline\n",
           json_array_size(timeline), json_array_size(timeline) == 1 ? "" : "s",
           ev_human_secs(ev_jint(doc, "span_s"), span, sizeof(span)),
           ev_jint(doc, "asset_count"), ev_jint(doc, "asset_count") == 1 ? "" : "s");
    for (k = 0; k < json_array_size(timeline); k++) {
        const json_t *o = json_array_get(timeline, k);

        if (json_is_integer(json_object_get(o, "gap_s"))) {
            gap[0] = '+';
            ev_human_secs(ev_jint(o, "gap_s"), gap + 1, sizeof(gap) - 1);
        } else {
            snprintf(gap, sizeof(gap), "start");
        }
        {
            const char *cells[] = {ev_jstr(o, "first_seen"), gap,
                                   k > 0 ? ev_jstr(o, "pace") : "", ev_jstr(o, "name"),
                                   ev_jstr(o, "type"), ev_jstr(o, "severity"),
                                   ev_jstr(o, "asset_id")};

            ev_table_row(&TIMELINE_TABLE, cells);
        }
    }
    if (json_array_size(timeline) == 0)
        printf("  (no alerts)\n");
    printf("\nProvenance graph: %zu entities, %zu relations\n", json_array_size(nodes),
           json_array_size(edges));
    for (k = 0; k < json_array_size(edges); k++) {
        const json_t *e = json_array_get(edges, k);

        snprintf(alerts, sizeof(alerts), "%" JSON_INTEGER_FORMAT " alert%s, first %s)",
                 ev_jint(e, "alerts"), ev_jint(e, "alerts") == 1 ? "" : "s",
                 ev_jstr(e, "alert_id"));
        {
            const char *cells[] = {ev_jstr(e, "src_type"), ev_jstr(e, "src"),
                                   ev_jstr(e, "relation"), ev_jstr(e, "dst_type"),
                                   ev_jstr(e, "dst"),      alerts};

            ev_table_row(&RELATION_TABLE, cells);
        }
    }
    if (json_array_size(edges) == 0)
        printf("  (no relations between entities)\n");
}

/* ------------------------------------------------------------------ the verb */

int ev_chain(ctl_t *c, const char *id, const char *format)
{
    cwpp_buf_t dot = {0}, svg = {0}, path = {0};
    json_t    *doc = NULL;
    int        rc = CTL_OK;

    /* the chain document from cwpp-api (GET /api/v1/events/ID/chain) */
    if (cwpp_buf_puts(&path, "/api/v1/events/") != 0 || ev_path_segment(&path, id) != 0 ||
        cwpp_buf_puts(&path, "/chain") != 0 || cwpp_buf_cstr(&path) != 0)
        rc = ctl_fail(CTL_INFRA, "out of memory");
    else
        rc = ev_get(c, (const char *)path.data, &doc);
    cwpp_buf_free(&path);
    if (rc != CTL_OK)
        return rc;
    if (strcmp(format, "json") == 0) {
        ctl_print_json(doc);
        return CTL_OK;
    }
    if (strcmp(format, "text") == 0) {
        chain_text(doc);
        json_decref(doc);
        return CTL_OK;
    }
    if (chain_dot(doc, &dot) != 0) {
        rc = ctl_fail(CTL_INFRA, "out of memory");
    } else if (strcmp(format, "dot") == 0) {
        fwrite(dot.data, 1, dot.len, stdout);
    } else if ((rc = run_dot_svg(&dot, &svg, c->timeout_s)) == CTL_OK) {
        fwrite(svg.data, 1, svg.len, stdout);
    }
    cwpp_buf_free(&dot);
    cwpp_buf_free(&svg);
    json_decref(doc);
    return rc;
}
