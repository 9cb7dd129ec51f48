/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_alert_limits: the one table of how long each text the pipeline takes from outside
 * may be, part of libs/alert (cwpp_alert.h includes it).
 *
 * Three kinds of input carry text into the pipeline: upstream alerts
 * (docs/alert-format.md "Limits"), analysts' commands (docs/commands.md "Limits") and the
 * agents' action results. Every text field of each has a maximum here, in bytes of UTF-8.
 * A longer alert or command text is refused with a sentence naming the field and its
 * limit, never truncated and never stored:
 *
 *   - an alert by ingest, dead-lettered with reason code too_long (libs/alert);
 *   - a command by the service it is addressed to, answered with status error before
 *     anything is written (cwpp_alert_texts_fit, called first by every handler).
 *
 * An agent's result is the one place where text is cut instead (see below): it reports
 * what was done on a host, and refusing it would lose that outcome.
 *
 * The command limits sit here rather than in libs/command (the protocol) because most of
 * them are the alert's own: a whitelist rule's alert_name can be no longer than an alert's
 * name, a rule's asset no longer than an asset id. Change a number here and in the two
 * tables of the docs together.
 */
#ifndef CWPP_ALERT_LIMITS_H
#define CWPP_ALERT_LIMITS_H

#include <jansson.h>
#include <stddef.h>

/* ----------------------------------------------------------- the alert contract */

#define CWPP_ALERT_MAX_NAME        512    /* name; also a whitelist rule's alert_name */
#define CWPP_ALERT_MAX_TYPE        64
#define CWPP_ALERT_MAX_SEVERITY    32     /* then one of four words */
#define CWPP_ALERT_MAX_TIME        64     /* occurred_at (RFC 3339 text) */
#define CWPP_ALERT_MAX_SOURCE      128
#define CWPP_ALERT_MAX_ACCOUNT     128    /* account_id */
#define CWPP_ALERT_MAX_ID          256    /* alert_id (the producer's), asset.id */
#define CWPP_ALERT_MAX_LABEL       256    /* asset.name, process.user, logon.user */
#define CWPP_ALERT_MAX_IP          64     /* then an IPv4/IPv6 address */
#define CWPP_ALERT_MAX_ROLE        64     /* asset.role */
#define CWPP_ALERT_MAX_ATTACK      16     /* attack.tactic, attack.technique, then a pattern */
#define CWPP_ALERT_MAX_DEFENSE     32     /* then one of four words */
#define CWPP_ALERT_MAX_PATH        4096   /* file.path, process.path */
#define CWPP_ALERT_MAX_MD5         64     /* then exactly 32 hex digits */
#define CWPP_ALERT_MAX_SHA256      128    /* then exactly 64 hex digits */
#define CWPP_ALERT_MAX_CMDLINE     32768  /* process.cmdline */
#define CWPP_ALERT_MAX_DETAILS     131072 /* details, with the unknown top-level fields kept
                                             in it, as compact JSON */

/* ---------------------------------------------------------------- commands */

#define CWPP_CMD_MAX_DEFAULT       256    /* any string of a payload not named below, and
                                             every member name */
#define CWPP_CMD_MAX_REMARK        4000   /* remark, on every command */
#define CWPP_CMD_MAX_RULE_FIELD    256    /* a rule's field (file.path, details.a.b) */
#define CWPP_CMD_MAX_RULE_VALUE    4096   /* a rule's value (= the longest path) */
#define CWPP_CMD_MAX_RULE_REGEX    1024   /* a rule's value when op is regex */
#define CWPP_CMD_MAX_ALERT_ID      35     /* "al-" + 32 hex digits */
#define CWPP_CMD_MAX_EVENT_ID      255
#define CWPP_CMD_MAX_USER          64     /* user names: user, owner */
#define CWPP_CMD_MAX_ACCOUNT       200    /* account, manager (destination, grants) */
#define CWPP_CMD_MAX_DISPLAY       256    /* users.add display_name, accounts.add_member name */
#define CWPP_CMD_MAX_ENTITY        1040   /* "TYPE:VALUE": a type of at most 15 bytes, a
                                             value of at most 1023 */
#define CWPP_CMD_MAX_PLAYBOOK_NAME 64
#define CWPP_CMD_MAX_PLAYBOOK_DESC 1000
#define CWPP_CMD_MAX_PARAM         1024   /* a text inside a playbook step's params */

/* ------------------------------------------------------- agents' action results */

/* An ActionResult's reason and details_json are free text from an agent: kept, cut to
 * these (the task's outcome must not be lost to an over-long text; details over the
 * limit become {"text": its first CWPP_RESULT_MAX_REASON bytes, "truncated": true,
 * "length": N}). */
#define CWPP_RESULT_MAX_REASON     4000
#define CWPP_RESULT_MAX_DETAILS    65536

/* One payload member's limit: key is a member name at any depth of the payload. The
 * texts below a member (inside its object or array) without an entry of their own take
 * its limit: {"params", 1024} bounds every text of a playbook step's params. */
typedef struct cwpp_alert_text_limit {
    const char *key;
    size_t      max;
} cwpp_alert_text_limit_t;

/*
 * Checks every string of obj, at any depth, against its limit: the entry of limits
 * (n entries) whose key is the string's member name, else the limit of the nearest
 * member above it that has one (an array's elements take the array's), else dflt; and
 * every member name against dflt. Returns 1 when all fit; else 0 with
 * one sentence in why naming the member and its limit:
 *   "\"alert_name\" is 10240 bytes, longer than its limit of 512 bytes"
 * Cannot fail otherwise; obj NULL or not an object fits.
 */
int cwpp_alert_texts_fit(const json_t *obj, const cwpp_alert_text_limit_t *limits, size_t n,
                         size_t dflt, char *why, size_t why_size);

#endif /* CWPP_ALERT_LIMITS_H */
