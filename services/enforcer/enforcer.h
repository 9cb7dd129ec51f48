/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enforcer: cwpp-enforcer, the reference Linux enforcement agent (docs/enforcer.md,
 * docs/actions.md).
 *
 *   <prefix>actions --> [enforcer] --> nftables, processes, files, accounts, WAF deny file
 *                                 \--> <prefix>action-results   (one result per action_id)
 *                                 \--> <prefix>alerts.rejected  (dead letters)
 *
 * Every agent reads every action (its own consumer group) and applies only those
 * addressed to its own account and asset. Each action_id is applied once: the result
 * sent is written to a journal in the state directory before the batch's offsets are
 * committed, and a redelivered action_id gets the stored result again without being
 * applied a second time. The agent uses no database.
 *
 * It acts only on actions signed by the responder's key (enforcer.verify.key.file), with
 * a deadline at most enforcer.action.horizon.ms after their issue, issued after the
 * agent's enrollment (its first start) and not before what the journal forgot; any other
 * is refused: answered failed with the reason, nothing done (docs/actions.md).
 */
#ifndef CWPP_ENFORCER_H
#define CWPP_ENFORCER_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_service.h"

typedef struct enf_conf {
    cwpp_common_conf_t common;
    char              *account_id;     /* actions for this account ... */
    char              *asset_id;       /* ... and this asset are ours */
    char              *name;           /* "agent" of results; "" = the host name */
    char              *state_dir;      /* journal (and the quarantine by default) */
    char              *netns;          /* network namespace path for nft; "" = our own */
    char              *management;     /* comma list of addresses/CIDRs kept reachable */
    char              *quarantine_dir; /* "" = <state_dir>/quarantine */
    char              *waf_deny_file;  /* "" = waf actions fail */
    char              *waf_reload;     /* command run after a waf action; "" = none */
    char              *scan_signatures; /* sha256 hex per line; "" = scan_file fails */
    char              *usermod_root;   /* usermod --root DIR; "" = the machine's */
    int64_t            journal_max;    /* action ids remembered */
    int64_t            max_message_bytes; /* larger records are dead letters */
    int64_t            command_timeout_ms; /* usermod, the WAF reload: killed past it */
    int64_t            nft_timeout_ms;     /* the nftables child: killed past it */
    int64_t            clock_skew_max_ms;  /* tolerated difference with the responder's clock */
    char              *verify_key_file;    /* the responder's Ed25519 public key */
    int64_t            horizon_ms;         /* deadline_ms - issued_at_ms at most */
    char              *host_root;      /* action paths resolve beneath it ("/") */
    char              *workload_roots; /* colon list: the only places files are acted on */
    char              *protect_paths;  /* colon list added to the built-in protected paths */
    char              *protect_processes; /* comma list of executable names never killed */
    char              *protect_pids;   /* comma list of pids never killed */
    char              *protect_accounts; /* comma list of accounts never disabled/enabled */
    int64_t            protect_uid_below; /* accounts with a lower uid are never touched */
} enf_conf_t;

extern const cwpp_conf_prop_t enf_props[];
extern const size_t           enf_nprops;

/* Validates the configuration beyond the table's bounds (required ids, the management
 * list, the netns path, the host root, the guards' lists, absolute program paths).
 * Returns 0 or CWPP_ECONFIG with a sentence naming the key. */
int enf_check(const void *conf, char *errstr, size_t errstr_size);

/* Runs the agent until SIGTERM. Returns the process exit code. */
int enf_run(const void *conf, const cwpp_service_env_t *env);

#endif /* CWPP_ENFORCER_H */
