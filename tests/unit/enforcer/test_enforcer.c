/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_enforcer: the enforcer's pieces that need no Kafka and change nothing outside a
 * temporary directory (docs/actions.md, docs/enforcer.md):
 *   1. addresses and CIDRs: parsing, canonical text, containment, the management list;
 *   2. account names ([a-z_][a-z0-9_-]{0,31});
 *   3. parameter checks: every malformed or missing parameter is a failed outcome with a
 *      sentence naming it, never a crash, and nothing is applied;
 *   4. the WAF deny file: add/remove "deny IP;", other lines kept, idempotent;
 *   5. the journal: remembered across reopen, a line cut by a crash skipped, bounded to
 *      max (oldest forgotten), compacted at open, a failed write cut back and retried;
 *   6. quarantine_file and scan_file on files in a temporary directory;
 *   7. a full disk: the atomic rewrite (journal compaction, WAF deny file) and the
 *      journal's append report it as CWPP_ETRANSIENT and change nothing, a waf action
 *      is a transient failure (not answered), a later write succeeds once;
 *   8. deadlines: a spawned command that hangs is killed with its process group, a hung
 *      nftables child is killed, both within their timeout, and the next call runs;
 *   9. the clock rule: an action's window widened by the tolerated skew, refusals that
 *      name the agent's clock and the window.
 * The nftables, kill and usermod paths run in tests/integration/test_enforcer.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cwpp_respond.h"
#include "enf_internal.h"
#include "vocab_files.h"

/* ---------------------------------------------------------------- 1. addresses */

static const struct {
    const char *in;
    int         prefix_ok;
    const char *canon; /* NULL = invalid */
} nets[] = {
    {"10.0.0.1", 0, "10.0.0.1"},
    {"10.1.2.3/8", 1, "10.0.0.0/8"},
    {"10.1.2.3/8", 0, NULL},
    {"192.168.1.77/30", 1, "192.168.1.76/30"},
    {"0.0.0.0/0", 1, "0.0.0.0/0"},
    {"10.0.0.1/33", 1, NULL},
    {"10.0.0.1/", 1, NULL},
    {"10.0.0.1/+8", 1, NULL},
    {"2001:DB8::1", 0, "2001:db8::1"},
    {"2001:db8:abcd::1/48", 1, "2001:db8:abcd::/48"},
    {"::ffff:192.0.2.1", 0, "192.0.2.1"},
    {"::ffff:192.0.2.1/120", 1, "192.0.2.0/24"},
    {"::ffff:192.0.2.1/64", 1, NULL},
    {"256.1.1.1", 0, NULL},
    {"1.2.3", 0, NULL},
    {" 1.2.3.4", 0, NULL},
    {"1.2.3.4 ", 0, NULL},
    {"", 0, NULL},
    {"host.example", 0, NULL},
};

static void test_net_parse(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        enf_net_t n;
        char      buf[64];
        int       rc = enf_net_parse(nets[i].in, nets[i].prefix_ok, &n);

        if (nets[i].canon == NULL) {
            assert_int_equal(rc, CWPP_EINVAL);
            continue;
        }
        assert_int_equal(rc, CWPP_OK);
        enf_net_format(&n, buf, sizeof(buf));
        assert_string_equal(buf, nets[i].canon);
    }
}

static void test_net_contains_and_list(void **state)
{
    enf_net_t *v;
    enf_net_t  a;
    size_t     n;
    char       why[200];

    (void)state;
    assert_int_equal(enf_net_list_parse(" 10.232.0.0/16 , 2001:db8::/32,192.0.2.9", &v, &n,
                                        why, sizeof(why)), CWPP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(enf_net_parse("10.232.200.1", 0, &a), CWPP_OK);
    assert_true(enf_net_contains(&v[0], &a));
    assert_false(enf_net_contains(&v[1], &a));
    assert_int_equal(enf_net_parse("10.233.0.1", 0, &a), CWPP_OK);
    assert_false(enf_net_contains(&v[0], &a));
    assert_int_equal(enf_net_parse("2001:db8:1::5", 0, &a), CWPP_OK);
    assert_true(enf_net_contains(&v[1], &a));
    assert_int_equal(enf_net_parse("192.0.2.9", 0, &a), CWPP_OK);
    assert_true(enf_net_contains(&v[2], &a));
    free(v);
    assert_int_equal(enf_net_list_parse("", &v, &n, why, sizeof(why)), CWPP_OK);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(enf_net_list_parse("10.0.0.1,,bogus", &v, &n, why, sizeof(why)),
                     CWPP_EINVAL);
    assert_non_null(strstr(why, "\"bogus\""));
    assert_int_equal(enf_net_parse("127.8.0.1", 0, &a), CWPP_OK);
    assert_true(enf_net_is_local(&a));
    assert_int_equal(enf_net_parse("::", 0, &a), CWPP_OK);
    assert_true(enf_net_is_local(&a));
    assert_int_equal(enf_net_parse("128.0.0.1", 0, &a), CWPP_OK);
    assert_false(enf_net_is_local(&a));
}

/* ---------------------------------------------------------------- 2. users */

static void test_user_names(void **state)
{
    static const struct {
        const char *u;
        int         ok;
    } users[] = {
        {"alice", 1}, {"_svc", 1}, {"www-data", 1}, {"a1_b-2", 1},
        {"abcdefghijklmnopqrstuvwxyz012345", 1}, /* 32 */
        {"abcdefghijklmnopqrstuvwxyz0123456", 0}, /* 33 */
        {"Alice", 0}, {"1abc", 0}, {"-x", 0}, {"a b", 0}, {"a;b", 0}, {"", 0},
        {"a/b", 0}, {"é", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
        assert_int_equal(enf_user_valid(users[i].u), users[i].ok);
    assert_int_equal(enf_user_valid(NULL), 0);
}

/* ------------------------------------------------------- 3. parameter checks */

static enf_ctx_t ctx_for(const char *dir)
{
    enf_ctx_t c;

    memset(&c, 0, sizeof(c));
    c.netns = "/nonexistent/netns"; /* a network action that got this far fails loudly */
    c.quarantine_dir = dir;
    c.waf_deny_file = "";
    c.waf_reload = "";
    c.scan_signatures = "";
    c.usermod_root = "/"; /* its etc/passwd gives the uids the account guard checks */
    c.usermod_path = "/bin/false";
    c.command_ms = 5000;
    c.nft_ms = 5000;
    c.workload_roots = "/"; /* the guards have their own tests (10.) */
    return c;
}

static const struct {
    const char *action, *params, *want;
} refusals[] = {
    {"block_ip", "{}", "needs the parameter \"ip\""},
    {"block_ip", "{\"ip\": 5}", "must be a non-empty string"},
    {"block_ip", "{\"ip\": \"\"}", "must be a non-empty string"},
    {"block_ip", "{\"ip\": \"1.2.3.4/24\"}", "is not an IPv4 or IPv6 address"},
    {"block_ip", "{\"ip\": \"1.2.3.4\", \"x\": 1}", "has no parameter \"x\""},
    {"block_ip", "{\"ip\": \"127.0.0.1\"}", "refusing to block 127.0.0.1"},
    {"block_ip", "{\"ip\": \"::\"}", "refusing to block ::"},
    {"block_ip", "[]", "not a JSON object"},
    {"block_ip", "{\"ip\": \"1.2.3.4\", \"ip\": \"1.2.3.5\"}", "not a JSON object"},
    {"block_ip", "", "not a JSON object"},
    {"unblock_ip", "{\"ip\": null}", "needs the parameter \"ip\""},
    {"isolate_host", "{}", "no management address is configured"},
    {"restore_host", "{\"now\": true}", "has no parameter \"now\""},
    {"kill_process", "{}", "needs the parameter \"pid\""},
    {"kill_process", "{\"pid\": \"7\"}", "must be a process id"},
    {"kill_process", "{\"pid\": -3}", "must be a process id"},
    {"kill_process", "{\"pid\": 1.5}", "must be a process id"},
    {"kill_process", "{\"pid\": 99999999999}", "must be a process id"},
    {"kill_process", "{\"pid\": 1}", "refusing to kill pid 1"},
    {"kill_process", "{\"pid\": 5, \"path\": \"rel\"}", "must be an absolute path"},
    {"quarantine_file", "{}", "needs the parameter \"path\""},
    {"quarantine_file", "{\"path\": \"/x\", \"sha256\": \"zz\"}", "64 hex digits"},
    {"quarantine_file", "{\"path\": \"/nonexistent/x\"}", "does not exist"},
    {"disable_account", "{\"user\": \"Bob\"}", "is not an account name"},
    {"disable_account", "{\"user\": \"root\"}", "refusing to disable the root account"},
    {"disable_account", "{\"user\": \"bob\"}", "usermod exited with status 1"},
    {"enable_account", "{}", "needs the parameter \"user\""},
    {"waf_block_ip", "{\"ip\": \"1.2.3.4\"}", "no WAF deny file is configured"},
    {"waf_unblock_ip", "{\"ip\": \"1.2.3\"}", "is not an IPv4 or IPv6 address"},
    {"scan_file", "{\"path\": \"/tmp\"}", "no signature file is configured"},
    {"scan_file", "{\"path\": \"/tmp\", \"quarantine_if_infected\": 1}",
     "must be true or false"},
    {"self_destruct", "{}", "unknown action self_destruct"},
};

static void test_refusals(void **state)
{
    enf_ctx_t c = ctx_for("/nonexistent/q");
    size_t    i;

    (void)state;
    for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        enf_outcome_t o;

        memset(&o, 0, sizeof(o));
        o.ok = -1;
        enf_apply(&c, "a.1", refusals[i].action, refusals[i].params, &o);
        if (o.ok != 0 || strstr(o.reason, refusals[i].want) == NULL)
            fail_msg("%s %s: ok=%d reason \"%s\", wanted \"%s\"", refusals[i].action,
                     refusals[i].params, o.ok, o.reason, refusals[i].want);
        json_decref(o.details);
    }
}

/* ---------------------------------------------------------------- 4. WAF */

static char *slurp(const char *path)
{
    FILE  *fp = fopen(path, "r");
    char  *s = calloc(1, 65536);
    size_t n;

    assert_non_null(fp);
    n = fread(s, 1, 65535, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static void put_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_enforcer.XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[400];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_waf_edit(void **state)
{
    char  f[400], why[300], *s;
    int   changed;

    (void)state;
    snprintf(f, sizeof(f), "%s/deny.conf", tmpdir);
    /* missing file: created */
    assert_int_equal(enf_waf_edit(f, "192.0.2.1", 1, &changed, why, sizeof(why)), CWPP_OK);
    assert_int_equal(changed, 1);
    s = slurp(f);
    assert_string_equal(s, "deny 192.0.2.1;\n");
    free(s);
    put_file(f, "# keep me\nallow 10.0.0.0/8;\n  deny 192.0.2.1;  \ndeny 192.0.2.10;");
    assert_int_equal(enf_waf_edit(f, "192.0.2.1", 1, &changed, why, sizeof(why)), CWPP_OK);
    assert_int_equal(changed, 0); /* already there (blanks around it do not matter) */
    assert_int_equal(enf_waf_edit(f, "192.0.2.2", 1, &changed, why, sizeof(why)), CWPP_OK);
    assert_int_equal(changed, 1);
    s = slurp(f);
    assert_string_equal(s, "# keep me\nallow 10.0.0.0/8;\n  deny 192.0.2.1;  \n"
                           "deny 192.0.2.10;\ndeny 192.0.2.2;\n");
    free(s);
    assert_int_equal(enf_waf_edit(f, "192.0.2.1", 0, &changed, why, sizeof(why)), CWPP_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(enf_waf_edit(f, "192.0.2.1", 0, &changed, why, sizeof(why)), CWPP_OK);
    assert_int_equal(changed, 0);
    s = slurp(f);
    assert_string_equal(s, "# keep me\nallow 10.0.0.0/8;\ndeny 192.0.2.10;\ndeny 192.0.2.2;\n");
    free(s);
}

/* ---------------------------------------------------------------- 5. journal */

static json_t *result(const char *id, const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:I}", "action_id", id, "status", status, "reason",
                     "r", "finished_at_ms", (json_int_t)1);
}

static void put(enf_journal_t *j, const char *id)
{
    json_t *r = result(id, "succeeded");

    assert_int_equal(enf_journal_put(j, id, r), CWPP_OK);
    json_decref(r);
}

static void test_journal(void **state)
{
    char           path[400], why[300], id[32];
    enf_journal_t *j;
    FILE          *fp;
    int            i;

    (void)state;
    snprintf(path, sizeof(path), "%s/journal.jsonl", tmpdir);
    unlink(path);
    j = enf_journal_open(path, 5, why, sizeof(why));
    assert_non_null(j);
    put(j, "a.1");
    put(j, "a.1"); /* known: nothing more */
    put(j, "b.1");
    assert_int_equal(enf_journal_count(j), 2);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    assert_int_equal(enf_journal_file_lines(j), 2);
    /* a failed write is cut back and retried by the next sync */
    put(j, "c.1");
    cwpp_fault_arm("enforcer.journal_write", 1);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_EIO);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    enf_journal_destroy(j);

    /* a crash mid-line */
    fp = fopen(path, "a");
    fputs("{\"action_id\":\"cut", fp);
    fclose(fp);
    j = enf_journal_open(path, 5, why, sizeof(why));
    assert_non_null(j);
    assert_int_equal(enf_journal_count(j), 3);
    assert_int_equal(enf_journal_file_lines(j), 3); /* compacted: the cut line is gone */
    assert_string_equal(json_string_value(json_object_get(enf_journal_get(j, "c.1"),
                                                          "status")), "succeeded");
    assert_null(enf_journal_get(j, "cut"));
    /* bounded: the oldest are forgotten */
    for (i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "x%d.1", i);
        put(j, id);
    }
    assert_int_equal(enf_journal_count(j), 5);
    assert_null(enf_journal_get(j, "a.1"));
    assert_null(enf_journal_get(j, "x0.1"));
    assert_non_null(enf_journal_get(j, "x5.1"));
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    /* 9 lines < 2 * 5: not compacted yet */
    assert_int_equal(enf_journal_file_lines(j), 9);
    put(j, "y.1");
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    assert_int_equal(enf_journal_file_lines(j), 5); /* reached 10: rewritten */
    enf_journal_destroy(j);
    j = enf_journal_open(path, 3, why, sizeof(why)); /* smaller bound: the latest 3 */
    assert_non_null(j);
    assert_int_equal(enf_journal_count(j), 3);
    assert_non_null(enf_journal_get(j, "y.1"));
    assert_non_null(enf_journal_get(j, "x5.1"));
    assert_null(enf_journal_get(j, "x2.1"));
    assert_int_equal(enf_journal_file_lines(j), 3);
    enf_journal_destroy(j);
    enf_journal_destroy(NULL);
}

/* The floor: the greatest issued_at_ms among forgotten entries, kept across a reopen
 * (the compacted file's first line) and raised by what a smaller bound drops at load. */
static void test_journal_floor(void **state)
{
    char           path[400], why[300], id[32];
    enf_journal_t *j;
    json_t        *r;
    int            i;

    (void)state;
    snprintf(path, sizeof(path), "%s/journal.jsonl", tmpdir);
    unlink(path);
    j = enf_journal_open(path, 2, why, sizeof(why));
    assert_non_null(j);
    assert_int_equal(enf_journal_floor(j), 0);
    for (i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "f%d.1", i);
        /* out of issue order: 1000, 5000, 2000, 3000, 4000 */
        r = json_pack("{s:s, s:s, s:I}", "action_id", id, "status", "succeeded",
                      "issued_at_ms", (json_int_t)(i == 1 ? 5000 : i == 0 ? 1000 : i * 1000));
        assert_int_equal(enf_journal_put(j, id, r), CWPP_OK);
        json_decref(r);
        assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    }
    /* f0 (1000), f1 (5000), f2 (2000) forgotten: the greatest counts */
    assert_int_equal(enf_journal_count(j), 2);
    assert_int_equal(enf_journal_floor(j), 5000);
    enf_journal_destroy(j);
    j = enf_journal_open(path, 2, why, sizeof(why));
    assert_non_null(j);
    assert_int_equal(enf_journal_floor(j), 5000);
    assert_int_equal(enf_journal_count(j), 2);
    assert_non_null(enf_journal_get(j, "f4.1"));
    enf_journal_destroy(j);
    j = enf_journal_open(path, 1, why, sizeof(why));
    assert_non_null(j);
    assert_int_equal(enf_journal_floor(j), 5000);
    assert_int_equal(enf_journal_count(j), 1);
    enf_journal_destroy(j);
}

/* ------------------------------------------------------------- 7. disk full */

static void test_disk_full(void **state)
{
    char           f[400], tmp[420], why[300], path[400], *s;
    int            changed = -1;
    enf_journal_t *j;
    enf_ctx_t      c;
    enf_outcome_t  o;
    json_t        *r;

    (void)state;
    snprintf(f, sizeof(f), "%s/deny.conf", tmpdir);
    snprintf(tmp, sizeof(tmp), "%s.cwpp-tmp", f);
    put_file(f, "deny 192.0.2.1;\n");
    /* the rewrite: ENOSPC is transient, the file unchanged, no temporary file left */
    cwpp_fault_arm("enforcer.disk_full", 1);
    assert_int_equal(enf_rewrite_file(f, "x\n", 2, 0600, why, sizeof(why)), CWPP_ETRANSIENT);
    assert_non_null(strstr(why, "No space left on device"));
    assert_int_equal(access(tmp, F_OK), -1);
    s = slurp(f);
    assert_string_equal(s, "deny 192.0.2.1;\n");
    free(s);
    /* any other failure is not */
    snprintf(path, sizeof(path), "%s/no-such-dir/file", tmpdir);
    assert_int_equal(enf_rewrite_file(path, "x", 1, 0600, why, sizeof(why)), CWPP_EIO);
    /* the WAF deny file goes through it */
    cwpp_fault_arm("enforcer.disk_full", 1);
    assert_int_equal(enf_waf_edit(f, "192.0.2.9", 1, &changed, why, sizeof(why)),
                     CWPP_ETRANSIENT);
    assert_int_equal(changed, 0);
    s = slurp(f);
    assert_string_equal(s, "deny 192.0.2.1;\n");
    free(s);
    /* a waf action failing so is transient (not answered); then it works */
    c = ctx_for(tmpdir);
    c.waf_deny_file = f;
    memset(&o, 0, sizeof(o));
    cwpp_fault_arm("enforcer.disk_full", 1);
    enf_apply(&c, "w.1", "waf_block_ip", "{\"ip\": \"192.0.2.9\"}", &o);
    assert_int_equal(o.ok, 0);
    assert_int_equal(o.transient, 1);
    json_decref(o.details);
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "w.1", "waf_block_ip", "{\"ip\": \"192.0.2.9\"}", &o);
    assert_int_equal(o.ok, 1);
    assert_int_equal(o.transient, 0);
    json_decref(o.details);
    s = slurp(f);
    assert_string_equal(s, "deny 192.0.2.1;\ndeny 192.0.2.9;\n");
    free(s);

    /* the journal: a full disk keeps the line queued; the next sync writes it once */
    snprintf(path, sizeof(path), "%s/journal.jsonl", tmpdir);
    j = enf_journal_open(path, 5, why, sizeof(why));
    assert_non_null(j);
    r = result("d.1", "succeeded");
    assert_int_equal(enf_journal_put(j, "d.1", r), CWPP_OK);
    json_decref(r);
    cwpp_fault_arm("enforcer.disk_full", 1);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_ETRANSIENT);
    assert_non_null(strstr(why, "No space left on device"));
    assert_int_equal(enf_journal_pending(j), 1);
    assert_int_equal(enf_journal_file_lines(j), 0);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    assert_int_equal(enf_journal_pending(j), 0);
    assert_int_equal(enf_journal_file_lines(j), 1);
    enf_journal_destroy(j);
    /* a full disk at start: the compaction fails, the agent still opens its journal (the
     * line cut short at the end is cut off, so the next append starts a line) */
    {
        FILE *fp = fopen(path, "a");

        fputs("{\"action_id\":\"cut", fp);
        fclose(fp);
    }
    cwpp_fault_arm("enforcer.disk_full", 1);
    j = enf_journal_open(path, 5, why, sizeof(why));
    assert_non_null(j);
    assert_int_equal(enf_journal_count(j), 1);
    r = result("e.1", "failed");
    assert_int_equal(enf_journal_put(j, "e.1", r), CWPP_OK);
    json_decref(r);
    assert_int_equal(enf_journal_sync(j, why, sizeof(why)), CWPP_OK);
    enf_journal_destroy(j);
    j = enf_journal_open(path, 5, why, sizeof(why));
    assert_non_null(j);
    assert_non_null(enf_journal_get(j, "d.1"));
    assert_non_null(enf_journal_get(j, "e.1"));
    assert_int_equal(enf_journal_file_lines(j), 2);
    enf_journal_destroy(j);
}

/* -------------------------------------------------------------- 8. deadlines */

/* 1 when pid does not exist or is a zombie (dead, not yet reaped by its new parent). */
static int proc_gone(long pid)
{
    char  path[64], buf[512], *rp;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')');
    return rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
}

static void test_deadlines(void **state)
{
    char          out[256], why[300], pidfile[400], cmd[600];
    char         *argv[4];
    int           status = 0;
    int64_t       t0;
    long          grandchild = 0;
    FILE         *fp;
    enf_nft_cmd_t cmds[1];

    (void)state;
    /* a command that starts a child and hangs: both die at the deadline */
    snprintf(pidfile, sizeof(pidfile), "%s/grandchild.pid", tmpdir);
    snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s; wait", pidfile);
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = cmd;
    argv[3] = NULL;
    t0 = cwpp_mono_ms();
    assert_int_equal(enf_spawn(argv, 300, out, sizeof(out), &status, why, sizeof(why)),
                     CWPP_EIO);
    assert_true(cwpp_mono_ms() - t0 < 2000);
    assert_non_null(strstr(why, "did not finish within 300 ms"));
    fp = fopen(pidfile, "r");
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%ld", &grandchild), 1);
    fclose(fp);
    usleep(100000);
    assert_true(proc_gone(grandchild)); /* killed with its group */
    /* one that exits at once, leaving a child that holds its output open: the same */
    unlink(pidfile);
    snprintf(cmd, sizeof(cmd), "sleep 60 & echo $! > %s", pidfile);
    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = cmd;
    argv[3] = NULL;
    assert_int_equal(enf_spawn(argv, 300, out, sizeof(out), &status, why, sizeof(why)),
                     CWPP_EIO);
    fp = fopen(pidfile, "r");
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%ld", &grandchild), 1);
    fclose(fp);
    usleep(100000);
    assert_true(proc_gone(grandchild));
    /* the next command runs normally */
    argv[0] = "/bin/echo";
    argv[1] = "fine";
    argv[2] = NULL;
    assert_int_equal(enf_spawn(argv, 300, out, sizeof(out), &status, why, sizeof(why)),
                     CWPP_OK);
    assert_string_equal(out, "fine\n");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* a libnftables call that never returns: the child is killed at the deadline */
    memset(cmds, 0, sizeof(cmds));
    cmds[0].text = "list ruleset";
    cwpp_fault_arm("enforcer.nft_hang", 1);
    t0 = cwpp_mono_ms();
    assert_int_equal(enf_nft_run("", 300, cmds, 1, why, sizeof(why)), CWPP_EIO);
    assert_true(cwpp_mono_ms() - t0 < 2000);
    assert_non_null(strstr(why, "did not finish within 300 ms"));
    assert_int_equal(cmds[0].rc, -1);
    assert_int_equal(waitpid(-1, &status, WNOHANG), -1); /* no child left behind */
}

/* -------------------------------------------------------------- 9. clocks */

static const struct {
    int64_t     now, issued, deadline, skew;
    const char *want; /* NULL: accepted; else a piece of the refusal */
} windows[] = {
    /* the agent's clock 10 min ahead of the responder's (issued at 1e12, 60 s to go) */
    {1000000600000, 1000000000000, 1000000060000, 900000, NULL},
    {1000000600000, 1000000000000, 1000000060000, 30000, "arrived after its deadline"},
    {1000000600000, 1000000000000, 1000000060000, 30000, "ended 540000 ms ago"},
    {1000000600000, 1000000000000, 1000000060000, 30000,
     "this agent's clock (2001-09-09T01:56:40.000Z)"},
    /* 10 min behind */
    {999999400000, 1000000000000, 1000000060000, 900000, NULL},
    {999999400000, 1000000000000, 1000000060000, 30000, "not valid yet"},
    {999999400000, 1000000000000, 1000000060000, 30000, "600000 ms ahead of this agent's clock"},
    {999999400000, 1000000000000, 1000000060000, 30000,
     "its window: 2001-09-09T01:46:40.000Z to 2001-09-09T01:47:40.000Z"},
    /* the edges: exactly the tolerance is accepted, 1 ms more is not */
    {1000000090000, 1000000000000, 1000000060000, 30000, NULL},
    {1000000090001, 1000000000000, 1000000060000, 30000, "after its deadline"},
    {999999970000, 1000000000000, 1000000060000, 30000, NULL},
    {999999969999, 1000000000000, 1000000060000, 30000, "not valid yet"},
    /* no tolerance; 0 = no deadline / issue time unchecked */
    {1000000060001, 1000000000000, 1000000060000, 0, "after its deadline"},
    {2000000000000, 1000000000000, 0, 0, NULL},
    {1, 0, 0, 0, NULL},
};

static void test_clock_window(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
        enf_outcome_t o;
        int           rc;

        memset(&o, 0, sizeof(o));
        o.ok = -1;
        rc = enf_check_window(windows[i].now, windows[i].issued, windows[i].deadline,
                              windows[i].skew, &o);
        if (windows[i].want == NULL && (rc != 0 || o.ok != -1))
            fail_msg("case %zu: refused: %s", i, o.reason);
        if (windows[i].want != NULL &&
            (rc != -1 || o.ok != 0 || strstr(o.reason, windows[i].want) == NULL))
            fail_msg("case %zu: rc %d reason \"%s\", wanted \"%s\"", i, rc, o.reason,
                     windows[i].want);
        assert_true(strlen(o.reason) < sizeof(o.reason) - 1); /* never cut short */
    }
}

/* ----------------------------------------------------- 6. quarantine and scan */

static void test_quarantine_and_scan(void **state)
{
    char          q[400], f[400], d[400], sigs[400], m[500], *s;
    const char   *sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    enf_ctx_t     c;
    enf_outcome_t o;
    struct stat   st;
    json_t       *inf;

    (void)state;
    snprintf(q, sizeof(q), "%s/q", tmpdir);
    snprintf(d, sizeof(d), "%s/www", tmpdir);
    snprintf(f, sizeof(f), "%s/www/hello.txt", tmpdir);
    snprintf(sigs, sizeof(sigs), "%s/sigs", tmpdir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(mkdir(d, 0700), 0);
    put_file(f, "hello"); /* sha256("hello") */
    c = ctx_for(q);

    /* scan: clean with an unrelated signature, then infected */
    put_file(sigs, "# none of these\n" "0000000000000000000000000000000000000000000000000000000000000000\n");
    c.scan_signatures = sigs;
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "s.1", "scan_file", "{\"path\": \"/nonexistent-dir\"}", &o);
    assert_int_equal(o.ok, 0);
    json_decref(o.details);
    memset(&o, 0, sizeof(o));
    snprintf(m, sizeof(m), "{\"path\": \"%s\"}", d);
    enf_apply(&c, "s.2", "scan_file", m, &o);
    assert_int_equal(o.ok, 1);
    assert_non_null(strstr(o.reason, "clean"));
    assert_int_equal(json_integer_value(json_object_get(o.details, "scanned")), 1);
    json_decref(o.details);
    put_file(sigs, "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824 # hello\n");
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "s.3", "scan_file", m, &o);
    assert_int_equal(o.ok, 1);
    inf = json_object_get(o.details, "infected");
    assert_int_equal(json_array_size(inf), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(inf, 0), "sha256")), sha);
    json_decref(o.details);
    put_file(sigs, "not a hash\n");
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "s.4", "scan_file", m, &o);
    assert_int_equal(o.ok, 0);
    assert_non_null(strstr(o.reason, "line 1 of the signature file"));
    json_decref(o.details);

    /* quarantine: moved, mode 000, manifest; again = already in quarantine */
    memset(&o, 0, sizeof(o));
    snprintf(m, sizeof(m), "{\"path\": \"%s\"}", f);
    enf_apply(&c, "q.1", "quarantine_file", m, &o);
    assert_int_equal(o.ok, 1);
    assert_string_equal(json_string_value(json_object_get(o.details, "sha256")), sha);
    json_decref(o.details);
    assert_int_equal(access(f, F_OK), -1);
    snprintf(m, sizeof(m), "%s/%s", q, sha);
    assert_int_equal(stat(m, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0);
    snprintf(m, sizeof(m), "%s/manifest.jsonl", q);
    s = slurp(m);
    assert_non_null(strstr(s, "\"action_id\":\"q.1\""));
    assert_non_null(strstr(s, sha));
    free(s);
    memset(&o, 0, sizeof(o));
    snprintf(m, sizeof(m), "{\"path\": \"%s\"}", f);
    enf_apply(&c, "q.2", "quarantine_file", m, &o);
    assert_int_equal(o.ok, 1);
    assert_non_null(strstr(o.reason, "already in quarantine"));
    json_decref(o.details);
    /* not a regular file */
    memset(&o, 0, sizeof(o));
    snprintf(m, sizeof(m), "{\"path\": \"%s\"}", d);
    enf_apply(&c, "q.3", "quarantine_file", m, &o);
    assert_int_equal(o.ok, 0);
    assert_non_null(strstr(o.reason, "is not a regular file"));
    json_decref(o.details);
}

/* Every action the responder can send (libs/respond's table) is one this agent's
 * dispatch table knows, and the agent knows no action the responder cannot send. */
static void test_dispatch_table_matches_responder(void **state)
{
    const char *want[CWPP_ACT__COUNT];
    vf_list_t   got;
    size_t      i;
    int         t;

    (void)state;
    memset(&got, 0, sizeof(got));
    snprintf(got.where, sizeof(got.where), "the enforcer's dispatch table "
             "(services/enforcer/actions.c)");
    for (i = 0; i < enf_action_count(); i++)
        vf_add(&got, enf_action_name(i), strlen(enf_action_name(i)));
    for (t = 0; t < CWPP_ACT__COUNT; t++)
        want[t] = cwpp_action_name((cwpp_action_t)t);
    if (vf_diff("the responder's action table (libs/respond)", want, CWPP_ACT__COUNT, &got,
                1) != 0)
        fail_msg("the enforcer's and the responder's actions disagree (lines above)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_net_contains_and_list),
        cmocka_unit_test(test_user_names),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test_setup_teardown(test_waf_edit, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_journal_floor, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_quarantine_and_scan, setup_dir, teardown_dir),
        cmocka_unit_test(test_dispatch_table_matches_responder),
        cmocka_unit_test_setup_teardown(test_disk_full, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_deadlines, setup_dir, teardown_dir),
        cmocka_unit_test(test_clock_window),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
