/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_graph: a security event's provenance graph (docs/correlator.md "Provenance graph")
 * as a picture. cwpp_graph_dot writes the Graphviz DOT text of the chain document that
 * cwpp-api serves (GET /api/v1/events/{id}/chain: "event_id", "name", "graph": {"nodes":
 * [{id, type, value}], "edges": [{from, to, relation, alerts, alert_id, first_seen}]});
 * cwpp_graph_svg renders DOT text as SVG by running Graphviz's `dot -Tsvg`.
 *
 * Both cwppctl (on the analyst's machine) and cwpp-api (GET .../chain?format=svg) draw
 * with it, so the picture is the same wherever it is made.
 *
 * Entity values are hostile input (whatever an upstream sensor reported): in the DOT
 * text they only ever appear inside Graphviz quoted strings, with quotes, backslashes,
 * '&' and control characters escaped, so they can neither end a string, start a Graphviz
 * escape (\N, \G, ...) nor an entity, nor split a statement. dot itself then escapes
 * them for XML in its SVG output.
 *
 * The renderer runs one program, never a shell: no argument but "-Tsvg", a minimal
 * environment (no variable of the caller is inherited, so no secret either), stdin and
 * stdout as pipes, stderr on /dev/null, every other descriptor closed. It is killed at
 * its deadline or when its output passes the cap. Any thread may call it: SIGPIPE (dot
 * exiting before reading everything) is blocked and discarded on the calling thread only,
 * the process-wide disposition is never touched.
 */
#ifndef CWPP_GRAPH_H
#define CWPP_GRAPH_H

#include <jansson.h>
#include <stddef.h>

#include "cwpp_util.h"

/*
 * Appends to out the provenance graph of chain_doc (borrowed) as a Graphviz digraph: one
 * line per statement, one node per entry of graph.nodes (shape and colour of its entity
 * type, libs/alert; an unknown type is a black ellipse), one edge per entry of
 * graph.edges labelled with its relation (and "(xN)" when N > 1 alerts showed it).
 * Missing members are drawn empty. Returns CWPP_OK, or CWPP_ENOMEM (out then holds a
 * partial text the caller frees as always).
 */
int cwpp_graph_dot(const json_t *chain_doc, cwpp_buf_t *out);

/*
 * Runs dot_program (an absolute path, or a name looked up on the caller's PATH) as
 * `dot -Tsvg` with dot (borrowed) as its input, appending its output to svg. The program
 * is killed when it has not finished within timeout_ms milliseconds or when its output
 * passes max_out bytes. Returns CWPP_OK, or after a sentence in errstr:
 *   CWPP_ENOTFOUND   the program does not exist
 *   CWPP_EIO         it could not be started, or it failed (exit status, signal)
 *   CWPP_ETRANSIENT  it did not finish in time
 *   CWPP_EINVAL      its output was larger than max_out
 *   CWPP_ENOMEM      out of memory
 * On error svg may hold part of the output; the caller frees it as always.
 */
int cwpp_graph_svg(const char *dot_program, const cwpp_buf_t *dot, cwpp_buf_t *svg,
                   int timeout_ms, size_t max_out, char *errstr, size_t errstr_size);

#endif /* CWPP_GRAPH_H */
