/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enf_internal.h: what the enforcer's modules share (and its unit tests use):
 *
 *   enforcer.c  configuration, the batch: decode, route, journal, answer
 *   actions.c   the action vocabulary: parameter checks and the dispatch table
 *   act_net.c   block_ip/unblock_ip, isolate_host/restore_host (through nft.c)
 *   act_host.c  kill_process, disable/enable_account, waf_block/unblock_ip, the glue of
 *               quarantine_file and scan_file
 *   netaddr.c   addresses and networks
 *   spawn.c     running a helper program (usermod) with a deadline
 *   guard.c     protected paths, processes and accounts; the safe walk of a path
 *   files.c     SHA-256, the quarantine, scan_file
 *   nft.c       nftables changes, made by a forked child (in enforcer.netns if set)
 *   journal.c   action_id -> result sent, on disk and in memory
 *
 * Nothing here is thread-safe: the agent applies actions on the loop's thread only.
 */
#ifndef CWPP_ENF_INTERNAL_H
#define CWPP_ENF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "cwpp_sign.h"
#include "cwpp_http.h"
#include "enforcer.h"

struct stat;

#define ENF_REASON_MAX   1024     /* bytes of a result's reason sentence */
#define ENF_SCAN_MAX     10000    /* files scan_file hashes in one directory at most */
#define ENF_SPAWN_MS     30000    /* a spawned command (usermod, WAF reload): default deadline */
#define ENF_NFT_MS       10000    /* the nftables child: default deadline */
#define ENF_NAME_MAX     64       /* bytes of an action's name copied into a result */
#define ENF_DETAILS_MAX  65536    /* bytes of details_json a result carries at most */
#define ENF_ARGV_MAX     32       /* words of enforcer.waf.reload at most */

/* The guards' defaults (enforcer.workload.roots, enforcer.protect.processes,
 * enforcer.protect.uid.below); the built-in protected paths are enf_builtin_protected. */
#define ENF_DEFAULT_ROOTS      "/home:/srv:/opt:/var/www:/tmp:/var/tmp"
#define ENF_DEFAULT_PROCESSES  "systemd,init,kubelet,containerd,dockerd"
#define ENF_DEFAULT_UID_BELOW  1000
#define ENF_CHILD_PATH         "PATH=/usr/sbin:/usr/bin:/sbin:/bin" /* a child's PATH */

/* ---------------------------------------------------------------- addresses */

/* An IPv4 or IPv6 address, or a network (prefix < bits). */
typedef struct enf_net {
    int           family; /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network byte order; host bits zero for networks */
    int           prefix; /* 32 / 128 for one address */
} enf_net_t;

/* Parses "a.b.c.d", an IPv6 address, and with allow_prefix also "addr/len" (host bits
 * are cleared). An IPv4-mapped IPv6 address becomes IPv4. Returns 0 or CWPP_EINVAL. */
int enf_net_parse(const char *s, int allow_prefix, enf_net_t *n);
/* 1 when addr (one address) lies in net. */
int enf_net_contains(const enf_net_t *net, const enf_net_t *addr);
/* Canonical text: "10.0.0.1", "10.0.0.0/24", "2001:db8::1". buf needs 64 bytes. */
void enf_net_format(const enf_net_t *n, char *buf, size_t size);
/* 1 for loopback (127/8, ::1) and unspecified (0.0.0.0, ::) addresses. */
int enf_net_is_local(const enf_net_t *n);
/* Parses a comma list (blanks around items ignored; empty list allowed) into a new array
 * *out of *n items (free() it). Returns 0, CWPP_EINVAL with errstr naming the item, or
 * CWPP_ENOMEM. */
int enf_net_list_parse(const char *csv, enf_net_t **out, size_t *n, char *errstr,
                       size_t errstr_size);

/* ------------------------------------------------------------------ actions */

/* What the actions need to know about the agent. Fields point into the configuration. */
typedef struct enf_ctx {
    const char      *netns;          /* "" = our own network namespace */
    const enf_net_t *mgmt;           /* enforcer.management */
    size_t           nmgmt;
    const char      *quarantine_dir;
    const char      *waf_deny_file;  /* "" = none */
    const char      *waf_reload;     /* "" = none */
    const char      *scan_signatures; /* "" = none */
    const char      *usermod_root;   /* "" = none */
    const char      *usermod_path;   /* the usermod binary */
    int              command_ms;     /* deadline of a spawned command (<= 0: ENF_SPAWN_MS) */
    int              nft_ms;         /* deadline of the nftables child (<= 0: ENF_NFT_MS) */
    /* the guards (guard.c); a NULL list takes its default */
    const char      *host_root;      /* action paths resolve beneath it; NULL/"" = "/" */
    const char      *workload_roots; /* colon list; NULL: ENF_DEFAULT_ROOTS */
    const char      *protect_paths;  /* colon list added to the built-in ones; NULL: none */
    const char      *protect_processes; /* comma list of executable base names; NULL:
                                         * ENF_DEFAULT_PROCESSES (sshd always) */
    const char      *protect_pids;   /* comma list; NULL: none */
    const char      *protect_accounts; /* comma list; NULL: none (root always) */
    long             protect_uid_below; /* <= 0: ENF_DEFAULT_UID_BELOW */
    const char      *state_dir;      /* protected by identity (NULL: none) */
    const char      *config_path;    /* protected by identity (NULL: none) */
    cwpp_metrics_t  *metrics;        /* refusals are counted here; NULL: not counted */
} enf_ctx_t;

/* What became of one action. */
typedef struct enf_outcome {
    int     ok;                     /* 1 succeeded, 0 failed */
    char    reason[ENF_REASON_MAX]; /* one sentence */
    json_t *details;                /* a JSON object or NULL ({}); owned */
    int     transient;              /* with ok 0: nothing was changed and the failure is
                                     * the disk being full; the action is not answered
                                     * but tried again when the batch is retried */
    const char *refusal;            /* with ok 0: the guard's reason code when the target
                                     * is protected (a static string), else NULL */
} enf_outcome_t;

/* Sets o to failed with the formatted reason; returns 0 (for "return enf_fail(...)"). */
int enf_fail(enf_outcome_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets o to succeeded with the formatted reason; returns 0. */
int enf_ok(enf_outcome_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Applies the action named action with its parameters (params_json, a JSON object) and
 * fills o (zeroed by the caller). Never fails as such: a bad parameter, a refusal or a
 * failing system call is a failed outcome with its reason. action_id goes into the
 * quarantine manifest.
 */
void enf_apply(const enf_ctx_t *c, const char *action_id, const char *action,
               const char *params_json, enf_outcome_t *o);

/*
 * The clock rule (docs/enforcer.md "Clocks"): an action is valid from issued_at_ms to
 * deadline_ms by the responder's clock (0: that end unchecked); the agent, whose clock
 * reads now, accepts it while now lies in that window widened by skew ms on both sides.
 * Returns 0 when it does, else -1 with o failed and a reason that gives the agent's
 * clock, the window and the tolerance ("not valid yet" / "arrived after its deadline").
 */
int enf_check_window(int64_t now, int64_t issued_at_ms, int64_t deadline_ms, int64_t skew,
                     enf_outcome_t *o);

/* 1 when name is one of the actions this agent knows (the metric label). */
int enf_action_known(const char *name);
/* The dispatch table's action names: how many, and the i-th (i < enf_action_count()).
 * tests/unit/respond compares them with the responder's action table. */
size_t      enf_action_count(void);
const char *enf_action_name(size_t i);

/* Parameter checks of actions.c; each fails o with a sentence naming the parameter and
 * returns -1, or returns 0. */
/* Every key of p is one of allowed (NULL-terminated). */
int enf_only_keys(json_t *p, const char *action, const char *const *allowed,
                  enf_outcome_t *o);
/* The string parameter key of p into *s (NULL when optional and absent). */
int enf_p_str(json_t *p, const char *action, const char *key, int required, const char **s,
              enf_outcome_t *o);
/* The ip parameter: one IPv4 or IPv6 address, canonical text into txt[64]. */
int enf_p_ip(json_t *p, const char *action, enf_net_t *n, char txt[64], enf_outcome_t *o);
/* An absolute path without NUL bytes, at most PATH_MAX - 1 bytes. */
int enf_p_path(json_t *p, const char *action, const char *key, int required,
               const char **s, enf_outcome_t *o);

/* The actions (act_net.c, act_host.c), with their parameters p (checked by them). */
void enf_act_block_ip(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                      int block);
void enf_act_isolate(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
void enf_act_restore(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
void enf_act_kill(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
void enf_act_account(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                     int disable);
void enf_act_waf(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o, int add);
void enf_act_quarantine(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);
void enf_act_scan(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o);

/* The management network (enforcer.management) that holds address a, or NULL: such
 * addresses are never blocked. */
const enf_net_t *enf_mgmt_match(const enf_ctx_t *c, const enf_net_t *a);

/* The first line of a command's output, sanitized, into buf; returns buf. */
const char *enf_first_line(const char *s, char *buf, size_t size);
/* A waitpid status in words: "exited with status 3" / "was killed by signal 9". */
const char *enf_status_text(int st, char *buf, size_t size);

/* 1 when user is a plain account name: [a-z_][a-z0-9_-]{0,31}. */
int enf_user_valid(const char *user);

/*
 * Runs argv (argv[0] an absolute path; anything else is refused) without a shell, with
 * a minimal environment (ENF_CHILD_PATH and LANG=C, nothing inherited), in its own
 * process group, stdin from /dev/null, stdout and stderr captured into out (at most
 * out_size - 1 bytes, always NUL-terminated). Past timeout_ms (<= 0: ENF_SPAWN_MS) its
 * whole process group is killed. *status is the waitpid status. Returns 0 when it ran
 * (whatever its exit status), CWPP_EIO with errstr when it could not be started or did
 * not finish in time.
 */
int enf_spawn(char *const argv[], int timeout_ms, char *out, size_t out_size, int *status,
              char *errstr, size_t errstr_size);

/*
 * Waits for the child pid whose output arrives on fd (which it closes): reads into out
 * (at most out_size - 1 bytes, NUL-terminated; out may be NULL with out_size 0, the rest
 * is drained) until EOF, then reaps it into *status. At deadline_ms (cwpp_mono_ms()) it
 * kills the process group pgrp (> 0) or else pid with SIGKILL, and gives the kernel a
 * second to let it go; a child that still does not die (stuck in the kernel) is
 * remembered and reaped by a later call. Returns 0, or CWPP_EIO when the deadline passed.
 * Used by enf_spawn and the nftables child.
 */
int enf_wait_child(pid_t pid, pid_t pgrp, int fd, int64_t deadline_ms, char *out,
                   size_t out_size, int *status);

/* Rewrites the WAF deny file: add (1) or remove (0) the line "deny IP;"; *changed says
 * whether the file changed. Other lines are kept. Returns 0, CWPP_ETRANSIENT when the
 * disk is full (the file unchanged) or CWPP_EIO, with errstr. */
int enf_waf_edit(const char *file, const char *ip, int add, int *changed, char *errstr,
                 size_t errstr_size);

/* ------------------------------------------------------------------- guards */

/* The built-in protected paths, a colon list ("/lib*" matches by prefix). */
extern const char enf_builtin_protected[];

/* Fails o with the formatted reason as a refusal with code (a static string: the
 * metric's reason label and o->refusal) and counts it; returns -1. */
int enf_refuse(const enf_ctx_t *c, enf_outcome_t *o, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Normalizes the absolute path in: repeated '/' and "." dropped, ".." removes the
 * component before it (never above "/"). Exact for a path that is then walked without
 * following links. Returns 0, or -1 when in is not absolute or out (size) is too small. */
int enf_path_normalize(const char *in, char *out, size_t size);

/* A path from an action, opened up to its parent directory. */
typedef struct enf_target {
    int  dirfd;                /* the parent directory (O_RDONLY), or -1 */
    char name[256];            /* the last component; "." when the path is "/" */
    char rel[4096];            /* the normalized path (beneath the host root) */
} enf_target_t;

#define ENF_RESOLVE_OK       0
#define ENF_RESOLVE_REFUSED  (-1) /* o failed: refused or an error */
#define ENF_RESOLVE_MISSING  1    /* a directory on the way does not exist (o untouched) */

/*
 * Checks path (absolute, from an action about to action, e.g. "quarantine_file") against
 * the protected paths and the workload roots, then opens its parent directory beneath
 * the host root one component at a time without following links, comparing every
 * directory by identity with the protected ones (guard.c). Returns ENF_RESOLVE_OK with
 * t->dirfd open (close it with enf_target_close), ENF_RESOLVE_MISSING, or
 * ENF_RESOLVE_REFUSED with o failed (a refusal is counted).
 */
int enf_resolve(const enf_ctx_t *c, const char *action, const char *path, enf_target_t *t,
                enf_outcome_t *o);
/* Closes t->dirfd (if open). */
void enf_target_close(enf_target_t *t);
/* Refuses (-1, o failed and counted) when st, the opened target (shown in the reason),
 * is by identity a protected directory or one of the agent's own files; else 0. */
int enf_guard_inode(const enf_ctx_t *c, const char *action, const char *shown,
                    const struct stat *st, enf_outcome_t *o);
/* kill_process: refuses (-1) pid 1, the agent, its ancestors, enforcer.protect.pids,
 * kernel threads and protected executables; 0 when pid may be killed (or is gone). */
int enf_guard_process(const enf_ctx_t *c, long pid, enf_outcome_t *o);
/* disable_account / enable_account (action): refuses (-1) root, protected accounts and
 * accounts whose uid is below the bound (or whose passwd cannot be read); else 0. */
int enf_guard_account(const enf_ctx_t *c, const char *action, const char *user,
                      enf_outcome_t *o);

/* ------------------------------------------------------------------- files */

/*
 * Replaces the file at path by len bytes of data atomically: writes <path>.cwpp-tmp
 * (created with mode, O_NOFOLLOW), fsyncs it, renames it over path and fsyncs the
 * directory. On failure path is unchanged and the temporary file removed. Returns 0,
 * CWPP_ETRANSIENT when the file system is full (ENOSPC, EDQUOT: the same write works
 * once space returns) or CWPP_EIO, with errstr "cannot rewrite PATH: ...". The fault
 * point "enforcer.disk_full" makes a call fail with ENOSPC. (files.c)
 */
int enf_rewrite_file(const char *path, const void *data, size_t len, mode_t mode,
                     char *errstr, size_t errstr_size);
/* 1 when errno value err means "the file system is full" (ENOSPC, EDQUOT). */
int enf_errno_disk_full(int err);

/* SHA-256 of everything readable from fd (from its current offset) as 64 lower-case hex
 * digits into hex[65]. Returns 0 or CWPP_EIO with errstr. */
int enf_sha256_fd(int fd, char hex[65], char *errstr, size_t errstr_size);

/* quarantine_file {path, sha256} (files.c). */
void enf_quarantine(const enf_ctx_t *c, const char *action_id, const char *path,
                    const char *want_sha, enf_outcome_t *o);
/* scan_file {path, quarantine_if_infected} (files.c). */
void enf_scan(const enf_ctx_t *c, const char *action_id, const char *path, int quarantine,
              enf_outcome_t *o);

/*
 * Quarantines the regular file open at fd, named name in the directory open at dirfd
 * (path: the action's path, for the manifest and reasons), whose SHA-256 is sha, into
 * the quarantine directory open at qfd (named qdir): checks the entry still names fd's
 * inode, sets mode 000, moves it with renameat (linkat-free: a rename into a temporary
 * name, checked, then to <sha>) or, across file systems, copies fd into qfd and unlinks
 * the entry; on any mismatch it puts back what it moved and the mode, and fails. Appends
 * the manifest line. Returns 0 with the quarantined path in as (size as_size), or
 * CWPP_EIO with errstr. (files.c)
 */
int enf_quarantine_fd(int qfd, const char *qdir, const char *action_id, const char *path,
                      int dirfd, const char *name, int fd, const char *sha, char *as,
                      size_t as_size, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ nftables */

typedef struct enf_nft_cmd {
    const char *text;  /* one nft script (several commands: one transaction) */
    int         probe; /* 1: failing is an answer (get element), not an error */
    int         rc;    /* out: 0 ran, 1 failed */
} enf_nft_cmd_t;

/*
 * Runs the scripts in order in a forked child that first enters the network namespace
 * at netns (unless ""), with libnftables; the child is killed when it has not finished
 * after timeout_ms (<= 0: ENF_NFT_MS). Stops at the first failing non-probe script.
 * Returns 0 when every non-probe script succeeded (each cmds[i].rc set), else CWPP_EIO
 * with nft's error message (or why the child failed, or that it timed out) in errstr.
 * The fault point "enforcer.nft_hang" makes the child hang (tests of the deadline).
 */
int enf_nft_run(const char *netns, int timeout_ms, enf_nft_cmd_t *cmds, size_t n,
                char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------ journal */

typedef struct enf_journal enf_journal_t;

/*
 * Opens (creates) the journal at path and loads the latest max entries; rewrites the
 * file when it held more, or unreadable lines. NULL with errstr on failure.
 */
enf_journal_t *enf_journal_open(const char *path, size_t max, char *errstr,
                                size_t errstr_size);
/* The stored result (a JSON object owned by the journal) of action_id, or NULL. */
json_t *enf_journal_get(enf_journal_t *j, const char *action_id);
/* Remembers result (a JSON object with "action_id"; the journal takes a reference) and
 * queues its line for the next sync. Evicts the oldest entry beyond max. Returns 0 or
 * CWPP_ENOMEM. */
int enf_journal_put(enf_journal_t *j, const char *action_id, json_t *result);
/* Appends the queued lines and fsyncs; on failure the file is cut back and the lines
 * stay queued (a later sync writes them). Rewrites the file when it grew past twice max
 * lines. Returns 0, CWPP_ETRANSIENT when the disk is full (ENOSPC, EDQUOT; the fault
 * point "enforcer.disk_full" simulates it) or CWPP_EIO, with errstr. */
int enf_journal_sync(enf_journal_t *j, char *errstr, size_t errstr_size);
/* Lines queued and not yet written by a sync. */
size_t enf_journal_pending(const enf_journal_t *j);
/* Entries held in memory / lines in the file. */
size_t enf_journal_count(const enf_journal_t *j);
/* The greatest issued_at_ms (a result's "issued_at_ms") among the entries forgotten, 0 if
 * none: an action issued at or before it may have been applied and is refused. */
int64_t enf_journal_floor(const enf_journal_t *j);
size_t enf_journal_file_lines(const enf_journal_t *j);
/* Accepts NULL. */
void enf_journal_destroy(enf_journal_t *j);

#endif /* CWPP_ENF_INTERNAL_H */
