/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_chain.c: `cwppctl events chain ID`, the event as a story: its alerts on a
 * timeline with the pace between them, and its provenance graph (entities as nodes, the
 * behaviours between them as edges; docs/correlator.md "Provenance graph"). One JSON
 * document from cwpp-api holds both (GET /api/v1/events/ID/chain; --format json prints
 * it); text, DOT and SVG are drawn from it here, on the analyst's machine. DOT and
 * SVG come from libs/graph, as cwpp-api's ?format=dot|svg do: entity values are hostile
 * input, escaped for Graphviz's quoted strings, and --format svg hands that DOT text to
 * the `dot` found on PATH (`dot -Tsvg` through pipes, no shell, a minimal environment,
 * killed after --timeout).
 */
#include "events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_graph.h"

/* The largest SVG taken from dot (a picture of thousands of entities stays far below). */
#define CHAIN_SVG_MAX ((size_t)256 << 20)

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
    if (cwpp_graph_dot(doc, &dot) != CWPP_OK) {
        rc = ctl_fail(CTL_INFRA, "out of memory");
    } else if (strcmp(format, "dot") == 0) {
        fwrite(dot.data, 1, dot.len, stdout);
    } else {
        char errstr[512];
        int  err = cwpp_graph_svg("dot", &dot, &svg, c->timeout_s * 1000, CHAIN_SVG_MAX,
                                  errstr, sizeof(errstr));

        if (err == CWPP_OK)
            fwrite(svg.data, 1, svg.len, stdout);
        else if (err == CWPP_ENOTFOUND)
            rc = ctl_fail(CTL_INFRA, "cannot run dot (Graphviz) for --format svg: it is not "
                          "on PATH; install the graphviz package, or use --format dot");
        else if (err == CWPP_ETRANSIENT)
            rc = ctl_fail(CTL_INFRA, "%s (--timeout)", errstr);
        else
            rc = ctl_fail(CTL_INFRA, "%s", errstr);
    }
    cwpp_buf_free(&dot);
    cwpp_buf_free(&svg);
    json_decref(doc);
    return rc;
}
