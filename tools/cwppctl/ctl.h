/* SPDX-License-Identifier: Apache-2.0 */
/* cwppctl internals: the settings, the API client, output helpers. */
#ifndef CWPPCTL_H
#define CWPPCTL_H

#include <jansson.h>
#include <stdint.h>

/* Exit codes: documented in `cwppctl --help` and docs/cwppctl.md. */
#define CTL_OK      0 /* done */
#define CTL_REFUSED 1 /* the service refused the change, or what was asked for does not exist */
#define CTL_USAGE   2 /* bad command line */
#define CTL_INFRA   3 /* Kafka or PostgreSQL unreachable, or no answer in time */

typedef struct ctl {
    int         timeout_s; /* how long a request may take (the API waits for answers) */
    int         json;      /* --json */
    /* the API (api_client.c): every verb goes through it */
    const char *api_url; /* CWPP_API_URL */
    const char *api_ca;  /* CWPP_API_CA: a private CA's PEM file, or NULL */
    char        token[200];
} ctl_t;

/* Prints "cwppctl: <sentence>" on stderr and returns code. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value after option argv[*i] (and moves *i onto it); NULL, after printing
 * "<option> needs a value", when there is none or the next word is another --option. */
const char *ctl_value_of(int argc, char **argv, int *i);

/* Prints a JSON document on stdout (indented). Steals doc. */
void ctl_print_json(json_t *doc);

/* ----------------------------------------------------- api_client.c: the API */

#include "cwpp_util.h"

/* Reads CWPP_API_URL, CWPP_API_CA and the token (CWPP_API_TOKEN or the login file). */
void ctl_api_init(ctl_t *c);
/* method path (query included, built with ctl_q) with body (borrowed; NULL: none). 2xx:
 * CTL_OK with *doc (owned; NULL when not JSON). 4xx: CTL_REFUSED after printing
 * "cwppctl: <problem detail>". No answer, 5xx or 202: CTL_INFRA after printing why. */
int ctl_api(ctl_t *c, const char *method, const char *path, json_t *body, json_t **doc);
/* The longest path with query ctl_api sends (an entity value runs to 32 KiB, three times
 * that percent-encoded); longer is CTL_USAGE after a sentence. */
#define CTL_PATH_MAX 120000
/* The API's largest page. */
#define CTL_PAGE_MAX 500
/*
 * GETs the paged collection at path (its query included, without limit and cursor),
 * page after page (CTL_PAGE_MAX at most each), until max items of the array member are in
 * hand or the last page came. *out: the first page's document, with member holding every
 * item and without next_cursor. Returns CTL_OK, or the exit code of ctl_api after it
 * printed why (CTL_REFUSED: 4xx, such as a 404 for an event not there).
 */
int ctl_api_pages(ctl_t *c, const char *path, const char *member, long max, json_t **out);
/* GET path as raw bytes (the .xlsx): *data malloc'd, *len. Codes as ctl_api. */
int ctl_api_raw(ctl_t *c, const char *path, char **data, size_t *len);
/* POST path with body (stolen), a change answered by a command: prints the answer as
 * changes always printed (text: the message; --json: {status, message, result}) and
 * returns the exit code (a 422 refusal: CTL_REFUSED with the reason on stderr). */
int ctl_api_change(ctl_t *c, const char *path, json_t *body);
/* The same with another method (DELETE). */
int ctl_api_send(ctl_t *c, const char *method, const char *path, json_t *body);
/* Appends "name=value" (percent-encoded, with ? or &) to the path being built in b
 * (which must hold the path already). */
void ctl_q(cwpp_buf_t *b, const char *name, const char *value);
/* s with control characters (C0, DEL, C1) and bidi controls as visible escapes, for a
 * terminal; at most about 4 KiB (longer ends in "..."). One of 4 rotating static buffers:
 * use it before the fifth call. NULL gives "-". */
const char *ctl_safe(const char *s);
/* `cwppctl login [--user NAME]`, `logout`, `whoami`. */
int ctl_login(ctl_t *c, int argc, char **argv);
int ctl_logout(ctl_t *c, int argc, char **argv);
int ctl_whoami(ctl_t *c, int argc, char **argv);

/* policies.c: `policies list|cancel`, `tasks list`. */
int ctl_policies(ctl_t *c, int argc, char **argv);
int ctl_tasks(ctl_t *c, int argc, char **argv);

int ctl_alerts(ctl_t *c, int argc, char **argv);
int ctl_whitelist(ctl_t *c, int argc, char **argv);
/* events.c: `events list|show|alerts|entities|chain` and `entities show` (read-only). */
int ctl_events(ctl_t *c, int argc, char **argv);
int ctl_entities(ctl_t *c, int argc, char **argv);
/* respond.c: `events status|owner|level|remark|respond|playbook|recommend|tasks|log`
 * (-1 when argv[0] is none of them), `playbooks`, `users`, `accounts`. */
int ctl_events_respond(ctl_t *c, int argc, char **argv);
/* membership.c: `events merge|detach` (-1 when argv[0] is neither) and `notifications`. */
int ctl_events_membership(ctl_t *c, int argc, char **argv);
int ctl_notifications(ctl_t *c, int argc, char **argv);
/* events.c: a --since / --until value (RFC 3339, a date, "now", 30m/12h/7d ago) as RFC 3339
 * into out and ms; CTL_OK or CTL_USAGE after a sentence. */
int ctl_parse_when(const char *opt, const char *v, char *out, size_t size, int64_t *ms);
/* export.c: `export ...`, `export download JOB --out FILE`, `export list`. */
int ctl_export(ctl_t *c, int argc, char **argv);
int ctl_playbooks(ctl_t *c, int argc, char **argv);
int ctl_users(ctl_t *c, int argc, char **argv);
int ctl_accounts(ctl_t *c, int argc, char **argv);

#endif
