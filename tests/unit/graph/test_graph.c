/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_graph: the provenance graph as DOT and SVG (libs/graph, cwpp_graph.h).
 *  - DOT: the exact text of a small chain document (a digraph named after the event,
 *    one line per node with its entity type's shape and colour, one per edge with
 *    "(xN)" when N > 1 alerts showed it);
 *  - hostile values (quotes, backslashes, newlines, ESC, a C1 control, <script>, &) stay
 *    inside their quoted strings, escaped, one statement per line; a hostile node id is
 *    quoted, never written as DOT syntax; missing members are drawn empty;
 *  - SVG through the real dot (skipped when Graphviz is not installed): well-formed, the
 *    hostile value visible as text, no <script element;
 *  - the runner's errors: a program that does not exist (path or name) is
 *    CWPP_ENOTFOUND, one that fails CWPP_EIO with its exit status, one that exits
 *    without reading its input CWPP_EIO and no SIGPIPE reaches us, one that hangs is
 *    killed at the deadline (CWPP_ETRANSIENT), output past the cap is CWPP_EINVAL;
 *  - the child's environment holds none of our variables, and none of our descriptors
 *    is open in it.
 * The stand-in programs are small shell scripts written into a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cwpp_graph.h"

#define HOSTILE "a\"b\\c\n\x1b[31m<script>alert(1)</script>&amp;\xc2\x85z\\"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_graph.XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes an executable shell script named name with body; returns its path (static). */
static const char *script(const char *name, const char *body)
{
    static char path[128];
    FILE       *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(path, 0700), 0);
    return path;
}

static const char *text(cwpp_buf_t *b)
{
    assert_int_equal(cwpp_buf_cstr(b), CWPP_OK);
    return (const char *)b->data;
}

static void test_dot_of_a_small_chain(void **state)
{
    json_t    *doc = json_loads(
        "{\"event_id\":\"ev-1\",\"name\":\"Brute force\",\"graph\":{\"nodes\":["
        "{\"id\":\"n1\",\"type\":\"ip\",\"value\":\"198.51.100.7\"},"
        "{\"id\":\"n2\",\"type\":\"host\",\"value\":\"db1\"},"
        "{\"id\":\"n3\",\"type\":\"gadget\",\"value\":\"x\"}],"
        "\"edges\":[{\"from\":\"n1\",\"to\":\"n2\",\"relation\":\"logged_on_to\",\"alerts\":3,"
        "\"alert_id\":\"al-1\",\"first_seen\":\"2026-01-01T00:00:00Z\"},"
        "{\"from\":\"n1\",\"to\":\"n3\",\"relation\":\"r\",\"alerts\":1,"
        "\"alert_id\":\"al-2\",\"first_seen\":\"t\"}]}}", 0, NULL);
    cwpp_buf_t b = {0};
    const char *s;

    (void)state;
    assert_non_null(doc);
    assert_int_equal(cwpp_graph_dot(doc, &b), CWPP_OK);
    s = text(&b);
    {
        const char *head = "digraph \"ev-1\" {\n  graph [rankdir=LR, labelloc=t, "
                           "fontname=\"Helvetica\", label=\"Brute force (ev-1)\"];\n";

        assert_true(strncmp(s, head, strlen(head)) == 0);
    }
    assert_non_null(strstr(s, "\n  n1 [shape="));
    assert_non_null(strstr(s, "label=\"ip\\n198.51.100.7\", tooltip=\"198.51.100.7\"];\n"));
    /* a type libs/alert does not know: a black ellipse */
    assert_non_null(strstr(s, "\n  n3 [shape=ellipse, color=\"black\", label=\"gadget\\nx\""));
    assert_non_null(strstr(s, "\n  n1 -> n2 [label=\"logged_on_to (x3)\", tooltip=\"first "
                              "shown by al-1 at 2026-01-01T00:00:00Z\"];\n"));
    assert_non_null(strstr(s, "\n  n1 -> n3 [label=\"r\", tooltip="));
    assert_true(strcmp(s + strlen(s) - 3, "];\n") != 0 && strcmp(s + strlen(s) - 2, "}\n") == 0);
    cwpp_buf_free(&b);
    json_decref(doc);
}

/* Every line between the first and the last is one statement. */
static void one_statement_per_line(const char *s)
{
    const char *line = strchr(s, '\n') + 1, *nl;

    for (; (nl = strchr(line, '\n')) != NULL && nl[1] != '\0'; line = nl + 1) {
        assert_true(strncmp(line, "  ", 2) == 0);
        assert_true(strncmp(nl - 2, "];", 2) == 0);
    }
    assert_string_equal(line, "}\n");
}

static json_t *hostile_doc(void)
{
    json_t *doc = json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], "
                            "s:[{s:s, s:s, s:s, s:i, s:s}]}}",
                            "event_id", "ev-\"h\"", "name", HOSTILE, "graph", "nodes",
                            "id", "n1", "type", "process", "value", HOSTILE,
                            "id", "n2 ]; evil -> n1 [label=\"x", "type", "host", "value", "h",
                            "edges", "from", "n1", "to", "n2 ]; evil -> n1 [label=\"x",
                            "relation", HOSTILE, "alerts", 2, "alert_id", "al\n1");

    assert_non_null(doc);
    return doc;
}

static void test_hostile_values_stay_inside_their_strings(void **state)
{
    json_t     *doc = hostile_doc();
    cwpp_buf_t  b = {0};
    const char *s, *shown = "a\\\"b\\\\c\\\\n\\\\x1b[31m<script>alert(1)</script>&amp;amp;"
                            "\\\\u0085z\\\\";
    char        want[256];

    (void)state;
    assert_int_equal(cwpp_graph_dot(doc, &b), CWPP_OK);
    s = text(&b);
    one_statement_per_line(s);
    assert_null(strchr(s, '\x1b'));
    assert_null(strstr(s, "\xc2\x85"));
    snprintf(want, sizeof(want), "label=\"process\\n%s\", tooltip=\"%s\"];", shown, shown);
    assert_non_null(strstr(s, want));
    assert_true(strncmp(s, "digraph \"ev-\\\"h\\\"\" {", 20) == 0);
    /* the hostile id is a quoted string, in the node and in the edge */
    assert_non_null(strstr(s, "\n  \"n2 ]; evil -> n1 [label=\\\"x\" [shape="));
    assert_non_null(strstr(s, "\n  n1 -> \"n2 ]; evil -> n1 [label=\\\"x\" [label=\""));
    assert_null(strstr(s, "\n  evil"));
    cwpp_buf_free(&b);
    json_decref(doc);

    /* missing members are drawn empty, never a crash */
    doc = json_pack("{s:{s:[{}], s:[{}]}}", "graph", "nodes", "edges");
    assert_int_equal(cwpp_graph_dot(doc, &b), CWPP_OK);
    s = text(&b);
    assert_true(strncmp(s, "digraph \"\" {", 12) == 0);
    assert_non_null(strstr(s, "\n  \"\" -> \"\" [label=\"\""));
    cwpp_buf_free(&b);
    json_decref(doc);
    assert_int_equal(cwpp_graph_dot(NULL, &b), CWPP_OK);
    cwpp_buf_free(&b);
}

static void test_svg_through_the_real_dot(void **state)
{
    json_t    *doc = hostile_doc();
    cwpp_buf_t dot = {0}, svg = {0};
    char       err[256] = "";
    const char *s;

    (void)state;
    if (access("/usr/bin/dot", X_OK) != 0) {
        json_decref(doc);
        skip();
    }
    assert_int_equal(cwpp_graph_dot(doc, &dot), CWPP_OK);
    assert_int_equal(cwpp_graph_svg("/usr/bin/dot", &dot, &svg, 20000, 8 << 20, err,
                                    sizeof(err)), CWPP_OK);
    s = text(&svg);
    assert_non_null(strstr(s, "<svg"));
    assert_null(strstr(s, "<script"));
    assert_non_null(strstr(s, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(s, "</svg>"));
    cwpp_buf_free(&svg);
    /* the name on PATH works too (cwppctl's "dot") */
    assert_int_equal(cwpp_graph_svg("dot", &dot, &svg, 20000, 8 << 20, err, sizeof(err)),
                     CWPP_OK);
    assert_non_null(strstr(text(&svg), "</svg>"));
    cwpp_buf_free(&svg);
    /* cap below the picture's size */
    assert_int_equal(cwpp_graph_svg("/usr/bin/dot", &dot, &svg, 20000, 100, err, sizeof(err)),
                     CWPP_EINVAL);
    assert_non_null(strstr(err, "more than 100 bytes"));
    cwpp_buf_free(&svg);
    cwpp_buf_free(&dot);
    json_decref(doc);
}

static void test_a_missing_program_is_enotfound(void **state)
{
    cwpp_buf_t in = {0}, out = {0};
    char       err[256] = "";

    (void)state;
    assert_int_equal(cwpp_buf_puts(&in, "digraph {}\n"), CWPP_OK);
    assert_int_equal(cwpp_graph_svg("/nonexistent/dot", &in, &out, 5000, 1024, err,
                                    sizeof(err)), CWPP_ENOTFOUND);
    assert_non_null(strstr(err, "cannot run /nonexistent/dot: No such file or directory"));
    assert_int_equal(cwpp_graph_svg("cwpp-no-such-dot-program", &in, &out, 5000, 1024, err,
                                    sizeof(err)), CWPP_ENOTFOUND);
    assert_int_equal(cwpp_graph_svg("", &in, &out, 5000, 1024, err, sizeof(err)),
                     CWPP_ENOTFOUND);
    assert_int_equal(out.len, 0);
    cwpp_buf_free(&in);
}

static void test_a_failing_program_is_eio(void **state)
{
    cwpp_buf_t in = {0}, out = {0};
    char       err[256] = "";
    size_t     i;

    (void)state;
    assert_int_equal(cwpp_buf_puts(&in, "digraph {}\n"), CWPP_OK);
    assert_int_equal(cwpp_graph_svg("/bin/false", &in, &out, 5000, 1024, err, sizeof(err)),
                     CWPP_EIO);
    assert_non_null(strstr(err, "failed (exit status 1)"));
    /* exits at once without reading 4 MiB: EPIPE for us, never a SIGPIPE death */
    for (i = 0; i < 4096; i++) {
        assert_int_equal(cwpp_buf_reserve(&in, 1024), CWPP_OK);
        memset(in.data + in.len, 'x', 1024);
        in.len += 1024;
    }
    assert_int_equal(cwpp_graph_svg(script("quit", "exit 3"), &in, &out, 5000, 1024, err,
                                    sizeof(err)), CWPP_EIO);
    assert_non_null(strstr(err, "failed (exit status 3)"));
    cwpp_buf_free(&in);
    cwpp_buf_free(&out);
}

static void test_a_hanging_program_is_killed_at_the_deadline(void **state)
{
    cwpp_buf_t in = {0}, out = {0};
    char       err[256] = "";
    int64_t    t0 = cwpp_mono_ms();

    (void)state;
    assert_int_equal(cwpp_buf_puts(&in, "digraph {}\n"), CWPP_OK);
    assert_int_equal(cwpp_graph_svg(script("hang", "exec /bin/sleep 30"), &in, &out, 300,
                                    1024, err, sizeof(err)), CWPP_ETRANSIENT);
    assert_true(cwpp_mono_ms() - t0 >= 300);
    assert_true(cwpp_mono_ms() - t0 < 5000);
    assert_non_null(strstr(err, "did not finish within 300 ms"));
    cwpp_buf_free(&in);
    cwpp_buf_free(&out);
}

static void test_input_and_output_flow_together_and_the_cap_holds(void **state)
{
    cwpp_buf_t  in = {0}, out = {0};
    char        err[256] = "";
    const char *cat = script("cat", "exec cat");
    size_t      i;

    (void)state;
    /* 2 MiB through cat: more than a pipe holds either way */
    for (i = 0; i < 2048; i++) {
        assert_int_equal(cwpp_buf_reserve(&in, 1024), CWPP_OK);
        memset(in.data + in.len, 'a' + (int)(i % 26), 1024);
        in.len += 1024;
    }
    assert_int_equal(cwpp_graph_svg(cat, &in, &out, 20000, 4 << 20, err, sizeof(err)),
                     CWPP_OK);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);
    cwpp_buf_reset(&out);
    assert_int_equal(cwpp_graph_svg(cat, &in, &out, 20000, 1 << 20, err, sizeof(err)),
                     CWPP_EINVAL);
    assert_true(out.len <= 1 << 20);
    cwpp_buf_free(&in);
    cwpp_buf_free(&out);
}

static void test_the_child_inherits_no_variable_and_no_descriptor(void **state)
{
    cwpp_buf_t in = {0}, out = {0};
    char       err[256] = "", body[160];
    int        fd = open("/dev/null", O_RDONLY); /* not close-on-exec */
    const char *s;

    (void)state;
    assert_true(fd > 2);
    setenv("CWPP_GRAPH_TEST_SECRET", "s3cret", 1);
    snprintf(body, sizeof(body), "env; if [ -e /proc/$$/fd/%d ]; then echo fd-open; "
                                 "else echo fd-closed; fi", fd);
    assert_int_equal(cwpp_buf_puts(&in, "x"), CWPP_OK);
    assert_int_equal(cwpp_graph_svg(script("env", body), &in, &out, 5000, 65536, err,
                                    sizeof(err)), CWPP_OK);
    s = text(&out);
    assert_null(strstr(s, "s3cret"));
    assert_non_null(strstr(s, "PATH=/usr/local/bin:/usr/bin:/bin"));
    assert_non_null(strstr(s, "fd-closed"));
    unsetenv("CWPP_GRAPH_TEST_SECRET");
    close(fd);
    cwpp_buf_free(&in);
    cwpp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_of_a_small_chain),
        cmocka_unit_test(test_hostile_values_stay_inside_their_strings),
        cmocka_unit_test(test_svg_through_the_real_dot),
        cmocka_unit_test(test_a_missing_program_is_enotfound),
        cmocka_unit_test(test_a_failing_program_is_eio),
        cmocka_unit_test(test_a_hanging_program_is_killed_at_the_deadline),
        cmocka_unit_test(test_input_and_output_flow_together_and_the_cap_holds),
        cmocka_unit_test(test_the_child_inherits_no_variable_and_no_descriptor),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
