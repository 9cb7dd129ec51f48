/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enforcer.c: the agent's configuration and its batch (enforcer.h).
 *
 * Workload: a trickle of actions (a handful a minute on a busy tenant), each of which
 * may take a while (an nft transaction, a usermod, hashing a directory), addressed to
 * one of many agents. Every agent reads the whole actions topic in its own consumer
 * group and drops what is not its own, so a batch is mostly records to skip.
 *
 * One batch, in poll order:
 *   1. a record that is not a decodable Action (oversized, bad Avro, an empty id) goes
 *      to the dead-letter topic with its reason;
 *   2. an action for another account or asset is skipped (counted);
 *   2b. an action not signed by enforcer.verify.key.file is refused: answered failed with
 *      the reason, counted, not applied and not journaled (a forged record must not take
 *      the genuine action_id);
 *   3. an action_id found in the journal is answered with the stored result, not
 *      applied again (counted as a replay);
 *   4. an action outside its validity window by this agent's clock, give or take
 *      enforcer.clock.skew.max.ms (issued in the future, or past its deadline), fails
 *      without being applied, its reason naming both clocks; so does one without a
 *      deadline or with one beyond enforcer.action.horizon.ms, issued before the agent's
 *      enrollment or at or before the journal's floor (refuse()); any other is applied
 *      (actions.c) and its result remembered in the journal;
 *   5. the journal is synced (fsync) as soon as an action's result is put in it, before
 *      the next record: the loop produces the results only after the batch returns and
 *      commits the offsets only after that, so a crash anywhere redelivers actions whose
 *      results are either in the journal or were never sent.
 * A result that cannot be remembered (the journal's disk fails, typically full) fails
 * the batch at that action (nothing after it is applied), which the loop retries with
 * backoff; the agent is then not ready (/readyz says why). The retry first writes what
 * is still queued, and applies nothing new while that fails; once it succeeds the
 * redelivered action is a replay from memory, so it is applied once and answered once. An action whose own effect failed only because the
 * disk is full (the WAF deny file could not be rewritten: nothing changed) is not
 * answered either: it is tried again with the batch.
 *
 * Whatever comes in, what goes out is bounded: a dead letter by cwpp_service_dead_letter,
 * a result by its fields (ids at most ID_MAX bytes, the action's name ENF_NAME_MAX, the
 * reason ENF_REASON_MAX, details_json ENF_DETAILS_MAX), so no record can make the agent
 * produce something its topic refuses.
 */
#include "enf_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cwpp_log.h"

const cwpp_conf_prop_t enf_props[] = {
    CWPP_COMMON_PROPS(enf_conf_t, common, "enforcer", "8095"),
    {"enforcer.account_id", CWPP_CONF_STR, offsetof(enf_conf_t, account_id), "", 0, 0, 0,
     "Required: the account this agent's host belongs to; only actions for it are applied."},
    {"enforcer.asset_id", CWPP_CONF_STR, offsetof(enf_conf_t, asset_id), "", 0, 0, 0,
     "Required: this host's asset id; only actions for it are applied, others are skipped."},
    {"enforcer.name", CWPP_CONF_STR, offsetof(enf_conf_t, name), "", 0, 0, 0,
     "The agent's name in results (\"agent\"); empty means the host name. With group.id "
     "left at its default the consumer group is cwpp-enforcer-<name>."},
    {"enforcer.state_dir", CWPP_CONF_STR, offsetof(enf_conf_t, state_dir),
     "/var/lib/cwpp-enforcer", 0, 0, 0,
     "Directory of the journal (journal.jsonl: the result sent for each action id) and, by "
     "default, of the quarantine; created (mode 0700) when missing."},
    {"enforcer.netns", CWPP_CONF_STR, offsetof(enf_conf_t, netns), "", 0, 0, 0,
     "Path of a network namespace (e.g. /run/netns/NAME) whose nftables the network actions "
     "change; empty means the agent's own."},
    {"enforcer.management", CWPP_CONF_STR, offsetof(enf_conf_t, management), "", 0, 0, 0,
     "Comma-separated IPv4/IPv6 addresses or CIDRs that stay reachable while the host is "
     "isolated and are never blocked (include the Kafka brokers and your admin hosts)."},
    {"enforcer.quarantine_dir", CWPP_CONF_STR, offsetof(enf_conf_t, quarantine_dir), "", 0, 0,
     0, "Where quarantined files go, named by their SHA-256, with manifest.jsonl; empty means "
        "<state_dir>/quarantine."},
    {"enforcer.waf.deny_file", CWPP_CONF_STR, offsetof(enf_conf_t, waf_deny_file), "", 0, 0, 0,
     "File of \"deny IP;\" lines that waf_block_ip and waf_unblock_ip maintain (nginx "
     "syntax); empty makes those actions fail."},
    {"enforcer.waf.reload", CWPP_CONF_STR, offsetof(enf_conf_t, waf_reload), "", 0, 0, 0,
     "Command run after a waf action (split on spaces, no shell, at most 32 words; the "
     "program by its absolute path, run with PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C "
     "only), e.g. \"/usr/sbin/nginx -s reload\"; its failure fails the action. Empty: none."},
    {"enforcer.scan.signatures", CWPP_CONF_STR, offsetof(enf_conf_t, scan_signatures), "", 0,
     0, 0, "File of malware signatures for scan_file: one SHA-256 in hex per line, '#' "
           "comments; read at each scan. Empty makes scan_file fail."},
    {"enforcer.usermod.root", CWPP_CONF_STR, offsetof(enf_conf_t, usermod_root), "", 0, 0, 0,
     "Passed as usermod --root DIR by disable_account and enable_account (a chroot's "
     "accounts), whose etc/passwd gives the uids enforcer.protect.uid.below checks; empty "
     "means enforcer.host_root (the machine's own when that is /)."},
    {"enforcer.host_root", CWPP_CONF_STR, offsetof(enf_conf_t, host_root), "/", 0, 0, 0,
     "Directory the paths of actions (quarantine_file, scan_file) are resolved beneath, "
     "e.g. /host in a container that mounts the node's / there. Absolute."},
    {"enforcer.workload.roots", CWPP_CONF_STR, offsetof(enf_conf_t, workload_roots),
     ENF_DEFAULT_ROOTS, 0, 0, 0,
     "Colon-separated absolute directories (beneath enforcer.host_root) where "
     "quarantine_file and scan_file may act: where workloads keep their files (homes, "
     "served and installed applications, web roots, temporary directories malware drops "
     "into). Anything outside is refused."},
    {"enforcer.protect.paths", CWPP_CONF_STR, offsetof(enf_conf_t, protect_paths), "", 0, 0,
     0, "Colon-separated absolute paths never quarantined nor scanned, in addition to the "
        "built-in ones (/bin /sbin /usr /lib* /boot /etc /proc /sys /dev, the state and "
        "quarantine directories and the configuration file); a path is protected with "
        "everything beneath it."},
    {"enforcer.protect.processes", CWPP_CONF_STR, offsetof(enf_conf_t, protect_processes),
     ENF_DEFAULT_PROCESSES, 0, 0, 0,
     "Comma-separated executable base names kill_process refuses, in addition to sshd and "
     "sshd-session (always), pid 1, the agent, its ancestors and kernel threads."},
    {"enforcer.protect.pids", CWPP_CONF_STR, offsetof(enf_conf_t, protect_pids), "", 0, 0, 0,
     "Comma-separated process ids kill_process refuses."},
    {"enforcer.protect.accounts", CWPP_CONF_STR, offsetof(enf_conf_t, protect_accounts), "", 0,
     0, 0, "Comma-separated account names disable_account and enable_account refuse, in "
           "addition to root (always)."},
    {"enforcer.protect.uid.below", CWPP_CONF_INT, offsetof(enf_conf_t, protect_uid_below),
     "1000", 1, 4294967295LL, 0,
     "disable_account and enable_account refuse accounts whose uid (in the passwd of "
     "enforcer.usermod.root) is below this: the system accounts."},
    {"enforcer.journal.max_entries", CWPP_CONF_INT, offsetof(enf_conf_t, journal_max),
     "100000", 1, 10000000, 0,
     "Action ids the journal remembers (the latest); the file is compacted at start when it "
     "holds more, and while running when it reaches twice as many lines."},
    {"enforcer.max.message.bytes", CWPP_CONF_INT, offsetof(enf_conf_t, max_message_bytes),
     "1048576", 1024, 16777216, 0,
     "Action records larger than this go to the dead-letter topic as oversized."},
    {"enforcer.command.timeout.ms", CWPP_CONF_INT, offsetof(enf_conf_t, command_timeout_ms),
     "30000", 100, 3600000, 0,
     "Longest a spawned command (usermod, the WAF reload command) may run; past it its "
     "process group is killed and the action fails."},
    {"enforcer.nft.timeout.ms", CWPP_CONF_INT, offsetof(enf_conf_t, nft_timeout_ms), "10000",
     100, 600000, 0,
     "Longest an nftables change (a forked child running libnftables) may take; past it "
     "the child is killed and the action fails."},
    {"enforcer.clock.skew.max.ms", CWPP_CONF_INT, offsetof(enf_conf_t, clock_skew_max_ms),
     "30000", 0, 86400000, 0,
     "Tolerated difference between this host's clock and the responder's: an action issued "
     "more than this in the agent's future, or whose deadline passed more than this ago, is "
     "refused (answered failed, the clocks named in its reason)."},
    {"enforcer.verify.key.file", CWPP_CONF_STR, offsetof(enf_conf_t, verify_key_file), "", 0,
     0, 0,
     "Required: file of the responder's Ed25519 public key (one base64 line, 32 bytes; "
     "action-signing.pub). Actions not signed by it are refused (docs/actions.md "
     "\"Signatures\")."},
    {"enforcer.action.horizon.ms", CWPP_CONF_INT, offsetof(enf_conf_t, horizon_ms),
     "3600000", 1000, 604800000LL, 0,
     "The most an action's deadline_ms may lie after its issued_at_ms; an action without a "
     "deadline, or with one further away, is refused. At least the responder's longest "
     "step timeout (playbook timeout_s, responder.task.timeout.ms)."},
};
const size_t enf_nprops = sizeof(enf_props) / sizeof(enf_props[0]);

#define ID_MAX 200 /* action_id, task_id bytes at most */

typedef struct enf {
    const enf_conf_t  *conf;
    char               agent[256];       /* enforcer.name or the host name */
    char               qdir[PATH_MAX];
    enf_net_t         *mgmt;
    size_t             nmgmt;
    enf_ctx_t          ctx;
    enf_journal_t     *journal;
    cwpp_sign_key_t   *verifier;         /* enforcer.verify.key.file */
    int64_t            enrolled_at_ms;   /* the agent's first start (state_dir/enrolled.json) */
    cwpp_avro_type_t  *t_action, *t_result, *t_rejected;
    cwpp_avro_type_t  *t_unsigned;       /* Action as it was before signatures */
    avro_value_t       v_unsigned;
    avro_value_t       v_action, v_result, v_rejected;
    int                have_values; /* bits: v_action, v_result, v_rejected, v_unsigned */
    cwpp_buf_t         buf;
    cwpp_metrics_t    *metrics;
    cwpp_metric_t     *m_skipped, *m_dead, *m_replays, *m_journal, *m_stalled;
    atomic_int         stalled;          /* 1: the disk is full (or failing): waiting */
    pthread_mutex_t    stall_lock;       /* guards stall_why (read by the HTTP thread) */
    char               stall_why[600];   /* why, for /readyz */
} enf_t;

/* ---------------------------------------------------------------- config */

/* The items of the guards' lists: 0, or -1 with why. */
static int item_abs_path(const char *it, char *why, size_t whysz)
{
    char norm[PATH_MAX];

    if (it[0] != '/' || enf_path_normalize(it, norm, sizeof(norm)) != 0)
        return snprintf(why, whysz, "\"%.200s\" is not an absolute path", it), -1;
    return 0;
}

static int item_exe_name(const char *it, char *why, size_t whysz)
{
    if (strchr(it, '/') != NULL || strlen(it) > 255)
        return snprintf(why, whysz, "\"%.200s\" is not an executable's base name", it), -1;
    return 0;
}

static int item_pid(const char *it, char *why, size_t whysz)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(it, &end, 10);
    if (*end != '\0' || end == it || errno != 0 || v < 1 || v > 4194304)
        return snprintf(why, whysz, "\"%.200s\" is not a process id", it), -1;
    return 0;
}

static int item_user(const char *it, char *why, size_t whysz)
{
    if (!enf_user_valid(it))
        return snprintf(why, whysz, "\"%.200s\" is not an account name", it), -1;
    return 0;
}

/* Checks each item (blanks trimmed, empty items skipped) of list separated by sep. */
static int check_list(const char *list, char sep, int (*fn)(const char *, char *, size_t),
                      char *why, size_t whysz)
{
    const char *p = list;
    char        it[PATH_MAX];

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, sep);
        size_t      n = end != NULL ? (size_t)(end - p) : strlen(p);

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= sizeof(it))
            return snprintf(why, whysz, "an item is longer than %d bytes", PATH_MAX - 1), -1;
        if (n > 0) {
            memcpy(it, p, n);
            it[n] = '\0';
            if (fn(it, why, whysz) != 0)
                return -1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int enf_check(const void *confp, char *errstr, size_t errstr_size)
{
    const enf_conf_t *c = confp;
    enf_net_t        *v = NULL;
    size_t            n = 0;
    char              why[300];
    struct stat       st;

    if (c->account_id[0] == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.account_id is required (the account of this host)");
    if (c->asset_id[0] == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.asset_id is required (this host's asset id)");
    if (c->state_dir[0] != '/')
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.state_dir must be an absolute path");
    if (c->quarantine_dir[0] != '\0' && c->quarantine_dir[0] != '/')
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.quarantine_dir must be an absolute path");
    if (enf_net_list_parse(c->management, &v, &n, why, sizeof(why)) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.management: %s", why);
    free(v);
    if (c->netns[0] != '\0' && stat(c->netns, &st) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.netns %s: %s", c->netns, strerror(errno));
    if (c->verify_key_file[0] == '\0')
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.verify.key.file (CWPP_ENFORCER_VERIFY_KEY_FILE) is "
                           "required: the responder's public key (action-signing.pub)");
    {
        cwpp_sign_key_t *k = cwpp_sign_load_public(c->verify_key_file, why, sizeof(why));

        if (k == NULL)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.verify.key.file: %s",
                               why);
        cwpp_sign_key_destroy(k);
    }
    if (c->usermod_root[0] != '\0' && (stat(c->usermod_root, &st) != 0 || !S_ISDIR(st.st_mode)))
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.usermod.root %s is not a directory", c->usermod_root);
    if (c->host_root[0] != '/' || stat(c->host_root, &st) != 0 || !S_ISDIR(st.st_mode))
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                           "enforcer.host_root %s is not an absolute path of a directory",
                           c->host_root);
    if (check_list(c->workload_roots, ':', item_abs_path, why, sizeof(why)) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.workload.roots: %s",
                           why);
    if (check_list(c->protect_paths, ':', item_abs_path, why, sizeof(why)) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.protect.paths: %s",
                           why);
    if (check_list(c->protect_processes, ',', item_exe_name, why, sizeof(why)) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.protect.processes: %s",
                           why);
    if (check_list(c->protect_pids, ',', item_pid, why, sizeof(why)) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.protect.pids: %s", why);
    if (check_list(c->protect_accounts, ',', item_user, why, sizeof(why)) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.protect.accounts: %s",
                           why);
    if (c->waf_reload[0] != '\0') {
        /* run without a shell nor PATH: the program by its absolute path, every word kept */
        const char *w = c->waf_reload;
        size_t      words = 0;

        while (*w == ' ')
            w++;
        if (*w != '/')
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.waf.reload must "
                               "start with the absolute path of its program");
        for (; *w != '\0'; w++)
            if (*w != ' ' && (w == c->waf_reload || w[-1] == ' '))
                words++;
        if (words > ENF_ARGV_MAX)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.waf.reload has "
                               "%zu words, more than %d", words, ENF_ARGV_MAX);
    }
    return CWPP_OK;
}

/* mkdir -p with mode 0700 for the parts it creates. */
static int mkdirs(const char *path, char *errstr, size_t errstr_size)
{
    char   p[PATH_MAX];
    size_t i, len = cwpp_strlcpy(p, path, sizeof(p));

    if (len >= sizeof(p))
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "%s: path too long", path);
    for (i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "cannot create %s: %s", p,
                               strerror(errno));
        p[i] = i < len ? '/' : '\0';
    }
    return CWPP_OK;
}

/* ---------------------------------------------------------------- results */

/* Encodes the result object r (journal form) and queues it keyed by action_id. */
static int send_result(enf_t *e, json_t *r, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    avro_value_t *v = &e->v_result;
    const char   *id = json_string_value(json_object_get(r, "action_id"));
    int           rc;

#define S(f) json_string_value(json_object_get(r, f)) != NULL ? \
                 json_string_value(json_object_get(r, f)) : ""
    avro_value_reset(v);
    rc = cwpp_avro_set_str(v, "action_id", id);
    rc |= cwpp_avro_set_str(v, "task_id", S("task_id"));
    rc |= cwpp_avro_set_str(v, "account_id", S("account_id"));
    rc |= cwpp_avro_set_str(v, "asset_id", S("asset_id"));
    rc |= cwpp_avro_set_str(v, "action", S("action"));
    rc |= cwpp_avro_set_str(v, "agent", S("agent"));
    rc |= cwpp_avro_set_enum(v, "status", S("status"));
    rc |= cwpp_avro_set_str(v, "reason", S("reason"));
    rc |= cwpp_avro_set_str(v, "details_json", S("details_json"));
    rc |= cwpp_avro_set_long(v, "finished_at_ms",
                             (int64_t)json_integer_value(json_object_get(r, "finished_at_ms")));
#undef S
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot build ActionResult");
    cwpp_buf_reset(&e->buf);
    if ((rc = cwpp_avro_encode(e->t_result, v, &e->buf, errstr, errstr_size)) != CWPP_OK)
        return rc;
    rc = cwpp_outbox_add(out, CWPP_TOPIC_ACTION_RESULTS, id, strlen(id), e->buf.data,
                         e->buf.len);
    return rc != CWPP_OK ? cwpp_seterr(errstr, errstr_size, rc, "out of memory") : CWPP_OK;
}

static void count_action(enf_t *e, const char *action, const char *status)
{
    char name[200];

    snprintf(name, sizeof(name), "cwpp_enforcer_actions_total{action=\"%s\",status=\"%s\"}",
             enf_action_known(action) ? action : "unknown", status);
    cwpp_metric_add(cwpp_counter(e->metrics, name, "Actions applied, by action and outcome."),
                    1);
}

static int dead_letter(enf_t *e, const rd_kafka_message_t *m, const char *code,
                       const char *reason, cwpp_outbox_t *out, char *errstr,
                       size_t errstr_size)
{
    char name[160];

    cwpp_warn("dead_letter", "%s[%d]@%lld: %s (%s)", rd_kafka_topic_name(m->rkt), m->partition,
              (long long)m->offset, reason, code);
    snprintf(name, sizeof(name), "cwpp_enforcer_dead_letters_total{reason=\"%s\"}", code);
    cwpp_metric_add(cwpp_counter(e->metrics, name, "Records sent to the dead-letter topic."), 1);
    return cwpp_service_dead_letter(e->t_rejected, &e->v_rejected, &e->buf, "enforcer", m,
                                    code, reason, out, errstr, errstr_size);
}

/* ------------------------------------------------------------------ stalls */

/* The agent cannot remember results (or apply an action) because the disk is full or
 * failing: logged as an error, counted, and /readyz says why until a batch succeeds. */
static void stall(enf_t *e, const char *why)
{
    pthread_mutex_lock(&e->stall_lock);
    snprintf(e->stall_why, sizeof(e->stall_why), "%s", why);
    pthread_mutex_unlock(&e->stall_lock);
    if (atomic_exchange(&e->stalled, 1))
        return; /* logged when it began; the loop logs each failed retry */
    cwpp_metric_set(e->m_stalled, 1);
    cwpp_error("journal_write_failed", "%s; the batch is not answered nor committed and "
               "is retried until the state directory is writable", why);
}

/* /readyz (the HTTP thread): not ready while stalled (the loop's own check follows). */
static int ready(void *opaque, char *reason, size_t reason_size)
{
    enf_t *e = opaque;

    if (atomic_load(&e->stalled)) {
        pthread_mutex_lock(&e->stall_lock);
        cwpp_seterr(reason, reason_size, 0, "waiting for the state directory %s: %s",
                    e->conf->state_dir, e->stall_why);
        pthread_mutex_unlock(&e->stall_lock);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ batch */

typedef struct action {
    const char *id, *task, *policy, *event, *account, *asset, *name, *params;
    int32_t     attempt;
    int64_t     issued_at_ms, deadline_ms;
    const char *key_id;     /* "" when unsigned */
    const void *sig;        /* NULL / 0 when unsigned */
    size_t      sig_len;
} action_t;

/* Decodes m into a; 0, or -1 with the dead-letter code and reason. */
static int decode(enf_t *e, const rd_kafka_message_t *m, action_t *a, const char **code,
                  char *why, size_t whysz)
{
    avro_value_t *v;

    if (m->len > (size_t)e->conf->max_message_bytes) {
        *code = "oversized";
        snprintf(why, whysz, "the record has %zu bytes, more than the %lld allowed "
                 "(enforcer.max.message.bytes)", m->len, (long long)e->conf->max_message_bytes);
        return -1;
    }
    *code = "bad_avro";
    if (m->payload == NULL || m->len == 0) {
        snprintf(why, whysz, "the record is empty");
        return -1;
    }
    {
        /* an Action written before signatures decodes with that schema, to be answered
         * as unsigned rather than dead-lettered */
        char why2[300];

        v = &e->v_action;
        if (cwpp_avro_decode(e->t_action, m->payload, m->len, v, why, whysz) != CWPP_OK) {
            if (cwpp_avro_decode(e->t_unsigned, m->payload, m->len, &e->v_unsigned, why2,
                                 sizeof(why2)) != CWPP_OK)
                return -1;
            v = &e->v_unsigned;
        }
    }
    *code = "missing_field";
    if (cwpp_avro_get_str(v, "action_id", &a->id) != CWPP_OK ||
        cwpp_avro_get_str(v, "task_id", &a->task) != CWPP_OK ||
        cwpp_avro_get_str(v, "policy_id", &a->policy) != CWPP_OK ||
        cwpp_avro_get_str(v, "event_id", &a->event) != CWPP_OK ||
        cwpp_avro_get_str(v, "account_id", &a->account) != CWPP_OK ||
        cwpp_avro_get_str(v, "asset_id", &a->asset) != CWPP_OK ||
        cwpp_avro_get_str(v, "action", &a->name) != CWPP_OK ||
        cwpp_avro_get_str(v, "params_json", &a->params) != CWPP_OK ||
        cwpp_avro_get_int(v, "attempt", &a->attempt) != CWPP_OK ||
        cwpp_avro_get_long(v, "issued_at_ms", &a->issued_at_ms) != CWPP_OK ||
        cwpp_avro_get_long(v, "deadline_ms", &a->deadline_ms) != CWPP_OK) {
        snprintf(why, whysz, "the Action record is incomplete");
        return -1;
    }
    a->key_id = "";
    if (v == &e->v_action && (cwpp_avro_get_str(v, "key_id", &a->key_id) != CWPP_OK ||
                              cwpp_avro_get_bytes(v, "signature", &a->sig, &a->sig_len) !=
                                  CWPP_OK)) {
        snprintf(why, whysz, "the Action record is incomplete");
        return -1;
    }
    if (a->id[0] == '\0' || a->task[0] == '\0' || a->account[0] == '\0' ||
        a->asset[0] == '\0' || a->name[0] == '\0') {
        snprintf(why, whysz, "the Action has an empty action_id, task_id, account_id, asset_id "
                 "or action");
        return -1;
    }
    *code = "invalid_value";
    if (strlen(a->id) > ID_MAX || strlen(a->task) > ID_MAX) {
        snprintf(why, whysz, "the action_id or task_id is longer than %d bytes", ID_MAX);
        return -1;
    }
    /* they are copied into the result and the journal (JSON): text, not any bytes */
    if (!cwpp_utf8_valid(a->id, strlen(a->id)) || !cwpp_utf8_valid(a->task, strlen(a->task))) {
        snprintf(why, whysz, "the action_id or task_id is not valid UTF-8");
        return -1;
    }
    return 0;
}

/* The result of a in journal form (issued_at_ms kept for the journal's floor), or NULL
 * when out of memory. name: the action's name, bounded and sanitized. */
static json_t *result_of(enf_t *e, const action_t *a, const char *name, int ok,
                         const char *reason, const char *details)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "action_id",
                     a->id, "task_id", a->task, "account_id", a->account, "asset_id", a->asset,
                     "action", name, "agent", e->agent, "status", ok ? "succeeded" : "failed",
                     "reason", reason, "details_json", details != NULL ? details : "{}",
                     "finished_at_ms", (json_int_t)cwpp_now_ms(), "issued_at_ms",
                     (json_int_t)a->issued_at_ms);
}

static void count_refusal(enf_t *e, const char *reason)
{
    char name[200];

    snprintf(name, sizeof(name), "cwpp_enforcer_refused_total{reason=\"%s\"}", reason);
    cwpp_metric_add(cwpp_counter(e->metrics, name, "Actions refused without being applied, by "
                                 "reason (answered failed)."), 1);
}

/*
 * The rules a validly signed action must also meet (docs/actions.md "What an agent
 * refuses"), once its clock window passed: a deadline, not before its issue nor beyond
 * enforcer.action.horizon.ms after it; issued after the agent's enrollment (give or take
 * the clock skew) and after the journal's floor. Returns 0, or -1 with o failed and
 * *label the metric's reason.
 */
static int refuse(enf_t *e, const action_t *a, enf_outcome_t *o, const char **label)
{
    int64_t h = e->conf->horizon_ms;

    if (a->deadline_ms <= 0) {
        *label = "no_deadline";
        return enf_fail(o, "refused: the action has no deadline (deadline_ms %lld)",
                        (long long)a->deadline_ms) - 1;
    }
    if (a->deadline_ms < a->issued_at_ms) {
        *label = "bad_deadline";
        return enf_fail(o, "refused: the action's deadline (%lld) is before its issue (%lld)",
                        (long long)a->deadline_ms, (long long)a->issued_at_ms) - 1;
    }
    if (a->deadline_ms - a->issued_at_ms > h) {
        *label = "beyond_horizon";
        return enf_fail(o, "refused: the action's deadline is %lld ms after its issue, more "
                        "than the %lld ms enforcer.action.horizon.ms allows",
                        (long long)(a->deadline_ms - a->issued_at_ms), (long long)h) - 1;
    }
    if (a->issued_at_ms < e->enrolled_at_ms - e->conf->clock_skew_max_ms) {
        *label = "before_enrollment";
        return enf_fail(o, "refused: the action was issued (%lld) before this agent was "
                        "enrolled (%lld, give or take %lld ms enforcer.clock.skew.max.ms)",
                        (long long)a->issued_at_ms, (long long)e->enrolled_at_ms,
                        (long long)e->conf->clock_skew_max_ms) - 1;
    }
    if (a->issued_at_ms <= enf_journal_floor(e->journal)) {
        *label = "before_journal";
        return enf_fail(o, "refused: the action was issued (%lld) no later than actions the "
                        "journal has forgotten (%lld): it may have been applied already",
                        (long long)a->issued_at_ms,
                        (long long)enf_journal_floor(e->journal)) - 1;
    }
    return 0;
}

/*
 * Applies a (ours, not in the journal) and returns its result in journal form; NULL
 * when out of memory, or (with *transient set and the reason in why) when the action
 * could not be applied only because the disk is full, to be tried again later.
 */
static json_t *apply(enf_t *e, const action_t *a, int *transient, char *why, size_t whysz)
{
    enf_outcome_t o;
    json_t       *r;
    char         *details, name[ENF_NAME_MAX + 1];
    int64_t       now = cwpp_now_ms();
    const char   *refused = NULL;

    *transient = 0;
    memset(&o, 0, sizeof(o));
    /* the name goes into the result and the log: bounded, valid UTF-8 */
    snprintf(name, sizeof(name), "%s", a->name);
    cwpp_utf8_sanitize(name);
    if (enf_check_window(now, a->issued_at_ms, a->deadline_ms, e->conf->clock_skew_max_ms,
                         &o) != 0)
        refused = "outside_window";
    else if (refuse(e, a, &o, &refused) == 0)
        enf_apply(&e->ctx, a->id, a->name, a->params, &o);
    if (refused != NULL)
        count_refusal(e, refused);
    cwpp_utf8_sanitize(o.reason);
    if (!o.ok && o.transient) {
        json_decref(o.details);
        *transient = 1;
        snprintf(why, whysz, "%s %s waits for disk space: %s", name, a->id, o.reason);
        return NULL;
    }
    details = o.details != NULL ? json_dumps(o.details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o.details);
    if (details != NULL && strlen(details) > ENF_DETAILS_MAX) {
        /* e.g. scan_file listing thousands of infected files: the result must fit */
        size_t len = strlen(details);

        free(details);
        details = NULL;
        o.details = json_pack("{s:b, s:I}", "truncated", 1, "bytes", (json_int_t)len);
        details = o.details != NULL ? json_dumps(o.details, JSON_COMPACT | JSON_SORT_KEYS)
                                    : NULL;
        json_decref(o.details);
    }
    r = result_of(e, a, name, o.ok, o.reason, details);
    free(details);
    if (r != NULL)
        cwpp_logj(o.ok ? CWPP_LOG_INFO : CWPP_LOG_WARN, "action",
                  json_pack("{s:s, s:s, s:s, s:i, s:s}", "action_id", a->id, "task_id", a->task,
                            "action", name, "attempt", (int)a->attempt, "status",
                            o.ok ? "succeeded" : "failed"),
                  "%s %s: %s: %s", name, a->id, o.ok ? "succeeded" : "failed", o.reason);
    return r;
}

static int one(enf_t *e, rd_kafka_message_t *m, cwpp_outbox_t *out, char *errstr,
               size_t errstr_size)
{
    action_t    a;
    const char *code = NULL;
    char        why[ENF_REASON_MAX + 400];
    json_t     *r;
    int         rc, transient = 0;

    memset(&a, 0, sizeof(a));
    if (decode(e, m, &a, &code, why, sizeof(why)) != 0)
        return dead_letter(e, m, code, why, out, errstr, errstr_size);
    if (strcmp(a.account, e->conf->account_id) != 0 || strcmp(a.asset, e->conf->asset_id) != 0) {
        cwpp_metric_add(e->m_skipped, 1);
        return CWPP_OK;
    }
    {
        /* a forged or unsigned action is answered but not remembered: remembering it would
         * let anyone pre-empt the genuine action_id */
        cwpp_sign_action_t  s = {a.id, a.task, a.policy, a.event, a.account, a.asset, a.name,
                                 a.params, a.key_id, a.attempt, a.issued_at_ms, a.deadline_ms};
        cwpp_sign_verdict_t v = cwpp_sign_verify(e->verifier, &s, a.sig, a.sig_len, why,
                                                 sizeof(why));
        char                name[ENF_NAME_MAX + 1], reason[ENF_REASON_MAX];

        if (v != CWPP_SIGN_VALID) {
            snprintf(name, sizeof(name), "%s", a.name);
            cwpp_utf8_sanitize(name);
            snprintf(reason, sizeof(reason), "refused: %.900s", why);
            cwpp_utf8_sanitize(reason);
            count_refusal(e, cwpp_sign_verdict_name(v));
            cwpp_warn("action_refused", "%s %s: %s", name, a.id, reason);
            if ((r = result_of(e, &a, name, 0, reason, NULL)) == NULL)
                return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
            rc = send_result(e, r, out, errstr, errstr_size);
            json_decref(r);
            return rc;
        }
    }
    if ((r = enf_journal_get(e->journal, a.id)) != NULL) {
        cwpp_metric_add(e->m_replays, 1);
        cwpp_info("replay", "%s %s was applied before: sending its result again", a.name, a.id);
        return send_result(e, r, out, errstr, errstr_size);
    }
    if ((r = apply(e, &a, &transient, why, sizeof(why))) == NULL) {
        if (!transient)
            return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        stall(e, why);
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s", why);
    }
    count_action(e, a.name, json_string_value(json_object_get(r, "status")));
    rc = enf_journal_put(e->journal, a.id, r);
    if (rc != CWPP_OK) {
        cwpp_seterr(errstr, errstr_size, rc, "out of memory");
    } else if (enf_journal_sync(e->journal, why, sizeof(why)) != CWPP_OK) {
        /* remembered before anything else is applied: at most this one action waits,
         * applied, for the disk (actions are a trickle; an fsync each costs nothing) */
        stall(e, why);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s", why);
    } else {
        rc = send_result(e, r, out, errstr, errstr_size);
    }
    json_decref(r);
    return rc;
}

static int batch(void *opaque, rd_kafka_message_t **msgs, size_t n, cwpp_outbox_t *out,
                 char *errstr, size_t errstr_size)
{
    enf_t *e = opaque;
    size_t i;
    char   why[512];
    int    rc = CWPP_OK;

    /* results a failed sync left queued are written first: while that fails, nothing
     * new is applied (its result could not be remembered either) */
    if (enf_journal_pending(e->journal) > 0 &&
        enf_journal_sync(e->journal, why, sizeof(why)) != CWPP_OK) {
        stall(e, why);
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s", why);
    }
    for (i = 0; i < n && rc == CWPP_OK; i++)
        rc = one(e, msgs[i], out, errstr, errstr_size);
    /* each action was synced as it was applied; this catches what a failure left */
    if (enf_journal_pending(e->journal) > 0 &&
        enf_journal_sync(e->journal, why, sizeof(why)) != CWPP_OK) {
        stall(e, why);
        if (rc == CWPP_OK)
            rc = cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "%s", why);
    }
    cwpp_metric_set(e->m_journal, (int64_t)enf_journal_count(e->journal));
    if (rc == CWPP_OK && atomic_load(&e->stalled)) {
        atomic_store(&e->stalled, 0);
        cwpp_metric_set(e->m_stalled, 0);
        cwpp_info("journal_writable", "the state directory %s is writable again: going on",
                  e->conf->state_dir);
    }
    return rc;
}

/* -------------------------------------------------------------------- run */

static void enf_destroy(enf_t *e)
{
    if (e == NULL)
        return;
    if (e->have_values & 1)
        avro_value_decref(&e->v_action);
    if (e->have_values & 2)
        avro_value_decref(&e->v_result);
    if (e->have_values & 4)
        avro_value_decref(&e->v_rejected);
    if (e->have_values & 8)
        avro_value_decref(&e->v_unsigned);
    cwpp_avro_type_destroy(e->t_unsigned);
    cwpp_sign_key_destroy(e->verifier);
    cwpp_avro_type_destroy(e->t_action);
    cwpp_avro_type_destroy(e->t_result);
    cwpp_avro_type_destroy(e->t_rejected);
    enf_journal_destroy(e->journal);
    cwpp_buf_free(&e->buf);
    free(e->mgmt);
    pthread_mutex_destroy(&e->stall_lock);
    free(e);
}

/* The usermod binary: the usual places, else a name for PATH. */
static const char *usermod_path(void)
{
    static const char *const where[] = {"/usr/sbin/usermod", "/sbin/usermod",
                                        "/usr/bin/usermod"};
    size_t i;

    for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return where[0]; /* absolute: a missing one fails the action, never a PATH search */
}

/*
 * The agent's enrollment time: read from <state_dir>/enrolled.json, or at the first
 * start now, written there once (atomically, fsynced). Actions issued before it are
 * refused: a new agent does not act on what waited in the topic for others.
 */
static int enrollment(const char *state_dir, int64_t *at, char *errstr, size_t errstr_size)
{
    char         path[PATH_MAX + 32], text[128];
    json_t      *j;
    json_error_t jerr;
    int          n, rc;

    snprintf(path, sizeof(path), "%s/enrolled.json", state_dir);
    if ((j = json_load_file(path, 0, &jerr)) != NULL) {
        json_t *v = json_object_get(j, "enrolled_at_ms");

        *at = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
        json_decref(j);
        if (*at <= 0)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                               "%s has no enrolled_at_ms: restore it or remove it (the agent "
                               "then counts as enrolled now)", path);
        return CWPP_OK;
    }
    if (access(path, F_OK) == 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "cannot read %s: %s", path,
                           jerr.text);
    *at = cwpp_now_ms();
    n = snprintf(text, sizeof(text), "{\"enrolled_at_ms\": %lld}\n", (long long)*at);
    if ((rc = enf_rewrite_file(path, text, (size_t)n, 0600, errstr, errstr_size)) != CWPP_OK)
        return rc;
    cwpp_info("enrolled", "first start: enrolled at %lld (%s); actions issued before are "
              "refused", (long long)*at, path);
    return CWPP_OK;
}

/* The Action schema without key_id and signature: what records written before
 * signatures were encoded with. */
static cwpp_avro_type_t *unsigned_type(char *errstr, size_t errstr_size)
{
    size_t             len, i;
    const char        *text = cwpp_avro_builtin_text("action", &len);
    json_t            *s = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
    json_t            *f = json_object_get(s, "fields");
    char              *out = NULL;
    cwpp_avro_type_t  *t = NULL;

    for (i = json_array_size(f); i > 0; i--) {
        const char *n = json_string_value(json_object_get(json_array_get(f, i - 1), "name"));

        if (n != NULL && (strcmp(n, "key_id") == 0 || strcmp(n, "signature") == 0))
            json_array_remove(f, i - 1);
    }
    if (s == NULL || (out = json_dumps(s, JSON_COMPACT)) == NULL)
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot make the unsigned Action schema");
    else
        t = cwpp_avro_type_new(out, strlen(out), errstr, errstr_size);
    free(out);
    json_decref(s);
    return t;
}

static enf_t *enf_new(const enf_conf_t *conf, cwpp_metrics_t *metrics, char *errstr,
                      size_t errstr_size)
{
    enf_t *e = calloc(1, sizeof(*e));
    char   jpath[PATH_MAX + 32], why[400];

    if (e == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->stall_lock, NULL);
    atomic_init(&e->stalled, 0);
    e->conf = conf;
    e->metrics = metrics;
    if (conf->name[0] != '\0')
        cwpp_strlcpy(e->agent, conf->name, sizeof(e->agent));
    else if (gethostname(e->agent, sizeof(e->agent) - 1) != 0 || e->agent[0] == '\0')
        cwpp_strlcpy(e->agent, "unknown-host", sizeof(e->agent));
    cwpp_utf8_sanitize(e->agent);
    if (conf->quarantine_dir[0] != '\0')
        cwpp_strlcpy(e->qdir, conf->quarantine_dir, sizeof(e->qdir));
    else
        snprintf(e->qdir, sizeof(e->qdir), "%s/quarantine", conf->state_dir);
    if (enf_net_list_parse(conf->management, &e->mgmt, &e->nmgmt, errstr, errstr_size) !=
            CWPP_OK ||
        mkdirs(conf->state_dir, errstr, errstr_size) != CWPP_OK ||
        mkdirs(e->qdir, errstr, errstr_size) != CWPP_OK)
        goto fail;
    if ((e->verifier = cwpp_sign_load_public(conf->verify_key_file, why, sizeof(why))) == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "enforcer.verify.key.file: %s", why);
        goto fail;
    }
    if (enrollment(conf->state_dir, &e->enrolled_at_ms, errstr, errstr_size) != CWPP_OK)
        goto fail;
    snprintf(jpath, sizeof(jpath), "%s/journal.jsonl", conf->state_dir);
    if ((e->journal = enf_journal_open(jpath, (size_t)conf->journal_max, errstr,
                                       errstr_size)) == NULL)
        goto fail;
    e->t_action = cwpp_avro_type_builtin("action", errstr, errstr_size);
    e->t_result = cwpp_avro_type_builtin("action_result", errstr, errstr_size);
    e->t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, errstr_size);
    if (e->t_action == NULL || e->t_result == NULL || e->t_rejected == NULL)
        goto fail;
    if (cwpp_avro_value_new(e->t_action, &e->v_action) == CWPP_OK)
        e->have_values |= 1;
    if (cwpp_avro_value_new(e->t_result, &e->v_result) == CWPP_OK)
        e->have_values |= 2;
    if (cwpp_avro_value_new(e->t_rejected, &e->v_rejected) == CWPP_OK)
        e->have_values |= 4;
    if ((e->t_unsigned = unsigned_type(errstr, errstr_size)) == NULL)
        goto fail;
    if (cwpp_avro_value_new(e->t_unsigned, &e->v_unsigned) == CWPP_OK)
        e->have_values |= 8;
    if (e->have_values != 15) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot set up the Avro values");
        goto fail;
    }
    e->ctx.netns = conf->netns;
    e->ctx.mgmt = e->mgmt;
    e->ctx.nmgmt = e->nmgmt;
    e->ctx.quarantine_dir = e->qdir;
    e->ctx.waf_deny_file = conf->waf_deny_file;
    e->ctx.waf_reload = conf->waf_reload;
    e->ctx.scan_signatures = conf->scan_signatures;
    e->ctx.usermod_root = conf->usermod_root[0] != '\0' ? conf->usermod_root
                          : strcmp(conf->host_root, "/") != 0 ? conf->host_root : "";
    e->ctx.usermod_path = usermod_path();
    e->ctx.host_root = conf->host_root;
    e->ctx.workload_roots = conf->workload_roots;
    e->ctx.protect_paths = conf->protect_paths;
    e->ctx.protect_processes = conf->protect_processes;
    e->ctx.protect_pids = conf->protect_pids;
    e->ctx.protect_accounts = conf->protect_accounts;
    e->ctx.protect_uid_below = (long)conf->protect_uid_below;
    e->ctx.state_dir = conf->state_dir;
    e->ctx.config_path = getenv("CWPP_CONFIG");
    e->ctx.metrics = metrics;
    e->ctx.command_ms = (int)conf->command_timeout_ms;
    e->ctx.nft_ms = (int)conf->nft_timeout_ms;
    e->m_skipped = cwpp_counter(metrics, "cwpp_enforcer_skipped_total",
                                "Actions for another account or asset: not ours, skipped.");
    e->m_replays = cwpp_counter(metrics, "cwpp_enforcer_replays_total",
                                "Redelivered action ids answered from the journal, not "
                                "applied again.");
    e->m_journal = cwpp_gauge(metrics, "cwpp_enforcer_journal_entries",
                              "Action ids the journal remembers.");
    e->m_stalled = cwpp_gauge(metrics, "cwpp_enforcer_stalled",
                              "1 while results cannot be written to the state directory "
                              "(disk full): actions wait.");
    cwpp_counter(metrics, "cwpp_enforcer_dead_letters_total{reason=\"bad_avro\"}",
                 "Records sent to the dead-letter topic.");
    cwpp_metric_set(e->m_journal, (int64_t)enf_journal_count(e->journal));
    return e;
fail:
    enf_destroy(e);
    return NULL;
}

int enf_run(const void *confp, const cwpp_service_env_t *env)
{
    const enf_conf_t             *conf = confp;
    static const cwpp_topic_id_t inputs[] = {CWPP_TOPIC_ACTIONS};
    cwpp_common_conf_t           common = conf->common;
    char                         errstr[512], group[400];
    enf_t                        *e;
    int                          rc;

    if ((e = enf_new(conf, env->metrics, errstr, sizeof(errstr))) == NULL) {
        cwpp_error("start_failed", "%s", errstr);
        return 1;
    }
    /* every agent reads every action: the default group is the agent's own */
    if (strcmp(common.group_id, "cwpp-enforcer") == 0) {
        snprintf(group, sizeof(group), "cwpp-enforcer-%s", e->agent);
        common.group_id = group;
    }
    cwpp_logj(CWPP_LOG_INFO, "agent",
              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "agent", e->agent, "account_id",
                        conf->account_id, "asset_id", conf->asset_id, "group", common.group_id,
                        "netns", conf->netns, "quarantine_dir", e->qdir, "journal_entries",
                        (json_int_t)enf_journal_count(e->journal)),
              "agent %s for account %s asset %s (%zu management addresses, %zu journal "
              "entries)", e->agent, conf->account_id, conf->asset_id, e->nmgmt,
              enf_journal_count(e->journal));
    {
        /* the agent's own readiness in front of the loop's: /readyz must say "the disk
         * is full" when that is why batches fail */
        cwpp_service_loop_opts_t o = {NULL, 0, ready, e};

        rc = cwpp_service_run_loop_opts("enforcer", &common, env, inputs, 1, batch, e, &o);
    }
    enf_destroy(e);
    return rc;
}
