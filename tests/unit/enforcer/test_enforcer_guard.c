/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_enforcer_guard: what the enforcer refuses to touch and how it reaches what it
 * may touch (services/enforcer/guard.c, files.c, spawn.c; docs/actions.md "Protected
 * targets"):
 *   1. path normalization ("." and ".." by text, exact since no link is followed);
 *   2. the walk: protected paths (/etc/shadow), paths outside the workload roots, a
 *      symlinked parent directory and the agent's own state directory (by identity)
 *      are refused and counted by reason; a missing directory is "missing";
 *   3. the race: a thread swaps the parent directory of a 64 MiB file for a symlink to
 *      a victim directory (RENAME_EXCHANGE, as fast as it can) while the file is hashed
 *      and quarantined, many times; the victim file is never touched (same inode, same
 *      content, same mode, same place). CWPP_RACE_OLD=1 runs the same loop through the
 *      former path-based move (open by path, hash, rename by path) to show it fails;
 *   4. processes: pid 1, the agent, its parent, a kernel thread, an executable named
 *      sshd and one named in enforcer.protect.processes are refused, a plain one is not;
 *   5. accounts: root, a uid below the bound, a listed account, an unreadable passwd;
 *   6. children: a relative program is refused, the environment is PATH and LANG only,
 *      a WAF reload command longer than argv fails instead of being cut, the rewrite's
 *      temporary file ignores a planted symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "enf_internal.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_enforcer_guard.XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char cmd[400];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static enf_ctx_t ctx_for(const char *qdir, const char *roots)
{
    enf_ctx_t c;

    memset(&c, 0, sizeof(c));
    c.netns = "/nonexistent/netns";
    c.quarantine_dir = qdir;
    c.waf_deny_file = "";
    c.waf_reload = "";
    c.scan_signatures = "";
    c.usermod_root = "/nonexistent";
    c.usermod_path = "/bin/false";
    c.command_ms = 5000;
    c.nft_ms = 5000;
    c.workload_roots = roots;
    return c;
}

static void put_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void path_of(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void path_of(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < size);
}

/* -------------------------------------------------------------- 1. normalize */

static const struct {
    const char *in, *out; /* out NULL: refused */
} norms[] = {
    {"/", "/"},
    {"//", "/"},
    {"/etc/shadow", "/etc/shadow"},
    {"/tmp//x/./y/", "/tmp/x/y"},
    {"/tmp/../etc/shadow", "/etc/shadow"},
    {"/../../etc", "/etc"},
    {"/tmp/a/b/../../c", "/tmp/c"},
    {"/tmp/..", "/"},
    {"relative/x", NULL},
    {"", NULL},
};

static void test_normalize(void **state)
{
    size_t i;
    char   out[PATH_MAX];

    (void)state;
    for (i = 0; i < sizeof(norms) / sizeof(norms[0]); i++) {
        int rc = enf_path_normalize(norms[i].in, out, sizeof(out));

        if (norms[i].out == NULL) {
            assert_int_equal(rc, -1);
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(out, norms[i].out);
        }
    }
    assert_int_equal(enf_path_normalize("/abcdef", out, 4), -1); /* never cut */
}

/* ------------------------------------------------------------------ 2. walk */

static int64_t refusals(cwpp_metrics_t *m, const char *reason)
{
    char name[160];

    snprintf(name, sizeof(name), "cwpp_enforcer_refusals_total{reason=\"%s\"}", reason);
    return cwpp_metric_value(cwpp_counter(m, name, "x"));
}

static void expect_refused(const enf_ctx_t *c, const char *action, const char *params,
                           const char *want)
{
    enf_outcome_t o;

    memset(&o, 0, sizeof(o));
    o.ok = -1;
    enf_apply(c, "g.1", action, params, &o);
    if (o.ok != 0 || strstr(o.reason, want) == NULL)
        fail_msg("%s %s: ok=%d reason \"%s\", wanted \"%s\"", action, params, o.ok, o.reason,
                 want);
    json_decref(o.details);
}

static void test_walk(void **state)
{
    char           q[400], st[400], work[400], real[400], victim[400], lnk[400], f[600];
    char           params[1200], roots[900], extra[500], sigs[500];
    enf_ctx_t      c;
    enf_target_t   t;
    enf_outcome_t  o;
    cwpp_metrics_t *m = cwpp_metrics_new();
    struct stat    sb;

    (void)state;
    assert_non_null(m);
    path_of(q, sizeof(q), "%s/q", tmpdir);
    path_of(st, sizeof(st), "%s/state", tmpdir);
    path_of(work, sizeof(work), "%s/work", tmpdir);
    path_of(real, sizeof(real), "%s/work/real", tmpdir);
    path_of(victim, sizeof(victim), "%s/victim", tmpdir);
    path_of(lnk, sizeof(lnk), "%s/work/lnk", tmpdir);
    path_of(extra, sizeof(extra), "%s/work/keep", tmpdir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(mkdir(st, 0700), 0);
    assert_int_equal(mkdir(work, 0700), 0);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(mkdir(victim, 0700), 0);
    assert_int_equal(mkdir(extra, 0700), 0);
    assert_int_equal(symlink(victim, lnk), 0);
    path_of(f, sizeof(f), "%s/victim/v.bin", tmpdir);
    put_file(f, "victim");
    path_of(f, sizeof(f), "%s/state/journal.jsonl", tmpdir);
    put_file(f, "{}\n");
    path_of(f, sizeof(f), "%s/work/keep/k.bin", tmpdir);
    put_file(f, "keep");
    path_of(roots, sizeof(roots), "/srv:%s", work);
    c = ctx_for(q, roots);
    c.metrics = m;
    c.state_dir = st;
    c.protect_paths = extra;

    /* protected by path, with the roots taking everything: /etc/shadow, /usr, /lib64 */
    c.workload_roots = "/";
    expect_refused(&c, "quarantine_file", "{\"path\": \"/etc/shadow\"}", "protected path");
    expect_refused(&c, "quarantine_file", "{\"path\": \"/tmp/../etc/passwd\"}",
                   "it lies in /etc");
    path_of(sigs, sizeof(sigs), "%s/sigs", tmpdir);
    put_file(sigs, "0000000000000000000000000000000000000000000000000000000000000000\n");
    c.scan_signatures = sigs;
    expect_refused(&c, "scan_file", "{\"path\": \"/etc/pam.d\"}", "it lies in /etc,");
    expect_refused(&c, "scan_file", "{\"path\": \"/etc/ssh/sshd_config\"}", "protected");
    expect_refused(&c, "quarantine_file", "{\"path\": \"/lib64/ld.so\"}", "/lib*");
    expect_refused(&c, "quarantine_file", "{\"path\": \"/proc/1/exe\"}", "protected path");
    assert_true(refusals(m, "protected_path") >= 6);
    c.workload_roots = roots;
    /* outside the roots */
    expect_refused(&c, "quarantine_file", "{\"path\": \"/var/lib/x\"}",
                   "outside the workload roots");
    snprintf(params, sizeof(params), "{\"path\": \"%s/victim/v.bin\"}", tmpdir);
    expect_refused(&c, "quarantine_file", params, "outside the workload roots");
    assert_int_equal(refusals(m, "outside_roots"), 2);
    /* a configured protected path beneath a root */
    snprintf(params, sizeof(params), "{\"path\": \"%s/k.bin\"}", extra);
    expect_refused(&c, "quarantine_file", params, "a protected path");
    /* a symlinked parent (pointing outside the roots, at the victim) */
    snprintf(params, sizeof(params), "{\"path\": \"%s/v.bin\"}", lnk);
    expect_refused(&c, "quarantine_file", params, "is a symbolic link, which is never followed");
    snprintf(params, sizeof(params), "{\"path\": \"%s/v.bin\", \"quarantine_if_infected\": "
             "true}", lnk);
    expect_refused(&c, "scan_file", params, "is a symbolic link, which is never followed");
    assert_int_equal(refusals(m, "symlink"), 2);
    path_of(f, sizeof(f), "%s/victim/v.bin", tmpdir);
    assert_int_equal(stat(f, &sb), 0); /* untouched */
    assert_int_equal(sb.st_size, 6);
    /* the agent's state directory, by identity (reached under a root as a bind mount
     * would be: here the roots simply take it in) */
    c.workload_roots = "/tmp";
    path_of(f, sizeof(f), "{\"path\": \"%s/state/journal.jsonl\"}", tmpdir);
    expect_refused(&c, "quarantine_file", f, "the agent's state directory");
    c.workload_roots = roots;
    /* a hard-linked file keeps its other name: refused */
    path_of(f, sizeof(f), "%s/work/real/h.bin", tmpdir);
    put_file(f, "hard");
    path_of(params, sizeof(params), "%s/work/real/h2.bin", tmpdir);
    assert_int_equal(link(f, params), 0);
    snprintf(params, sizeof(params), "{\"path\": \"%s\"}", f);
    expect_refused(&c, "quarantine_file", params, "hard links");
    assert_int_equal(refusals(m, "hard_links"), 1);

    /* the walk itself */
    memset(&o, 0, sizeof(o));
    path_of(f, sizeof(f), "%s/work/real/h.bin", tmpdir);
    assert_int_equal(enf_resolve(&c, "quarantine", f, &t, &o), ENF_RESOLVE_OK);
    assert_string_equal(t.name, "h.bin");
    assert_true(t.dirfd >= 0);
    assert_int_equal(fstatat(t.dirfd, "h2.bin", &sb, AT_SYMLINK_NOFOLLOW), 0);
    enf_target_close(&t);
    assert_int_equal(t.dirfd, -1);
    path_of(f, sizeof(f), "%s/work/none/x", tmpdir);
    assert_int_equal(enf_resolve(&c, "quarantine", f, &t, &o), ENF_RESOLVE_MISSING);
    assert_int_equal(t.dirfd, -1);
    path_of(f, sizeof(f), "%s/work/real/h.bin/x", tmpdir); /* a file on the way */
    assert_int_equal(enf_resolve(&c, "quarantine", f, &t, &o), ENF_RESOLVE_REFUSED);
    assert_non_null(strstr(o.reason, "Not a directory"));
    /* beneath a host root: /etc there is protected too, and paths resolve inside it */
    c.host_root = tmpdir;
    c.workload_roots = "/work";
    memset(&o, 0, sizeof(o));
    assert_int_equal(enf_resolve(&c, "quarantine", "/work/real/h.bin", &t, &o), ENF_RESOLVE_OK);
    enf_target_close(&t);
    expect_refused(&c, "quarantine_file", "{\"path\": \"/etc/shadow\"}", "protected path");
    expect_refused(&c, "quarantine_file", "{\"path\": \"/work/lnk/v.bin\"}",
                   "symbolic link");
    cwpp_metrics_destroy(m);
}

/* ------------------------------------------------------------------ 3. race */

#define RACE_BYTES (64L << 20)
#define RACE_ROUNDS 48

static atomic_int race_stop;
static char       race_a[600], race_b[600];
static atomic_long race_swaps;

static void *swapper(void *arg)
{
    (void)arg;
    while (!atomic_load(&race_stop)) {
        if (syscall(SYS_renameat2, AT_FDCWD, race_a, AT_FDCWD, race_b, 2 /* EXCHANGE */) == 0)
            atomic_fetch_add(&race_swaps, 1);
        /* a breath between swaps: the walk gets through about half the time, and the
         * hash of 64 MiB still sees hundreds of swaps */
        usleep(50);
    }
    return NULL;
}

/* The former move: open by path, hash, rename by path (what files.c did before). */
static int old_quarantine(const char *path, const char *qdir, const char *want)
{
    char sha[65], why[200], as[700];
    int  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = -1;

    if (fd < 0)
        return -1;
    if (enf_sha256_fd(fd, sha, why, sizeof(why)) == CWPP_OK && strcmp(sha, want) == 0) {
        snprintf(as, sizeof(as), "%s/%s", qdir, sha);
        rc = rename(path, as);
    }
    close(fd);
    return rc;
}

static void test_race(void **state)
{
    char          q[400], work[400], victim[400], f[600], vf[600], params[1200], sha[65];
    char          why[200], buf[64];
    enf_ctx_t     c;
    pthread_t     th;
    struct stat   v0, v1;
    int           realfd, qfd, fd, i, moved = 0, refused = 0, vfd;
    ssize_t       n;
    int           old = getenv("CWPP_RACE_OLD") != NULL;

    (void)state;
    path_of(q, sizeof(q), "%s/q", tmpdir);
    path_of(work, sizeof(work), "%s/work", tmpdir);
    path_of(victim, sizeof(victim), "%s/victim", tmpdir);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_int_equal(mkdir(work, 0700), 0);
    assert_int_equal(mkdir(victim, 0700), 0);
    path_of(race_a, sizeof(race_a), "%s/work/dir", tmpdir);
    path_of(race_b, sizeof(race_b), "%s/work/swap", tmpdir);
    assert_int_equal(mkdir(race_a, 0755), 0);
    assert_int_equal(symlink(victim, race_b), 0);
    realfd = open(race_a, O_RDONLY | O_DIRECTORY);
    qfd = open(q, O_RDONLY | O_DIRECTORY);
    assert_true(realfd >= 0 && qfd >= 0);
    /* the victim: same name, other content, in a directory outside the roots */
    path_of(vf, sizeof(vf), "%s/big.bin", victim);
    put_file(vf, "victim: must stay where it is\n");
    assert_int_equal(chmod(vf, 0644), 0);
    assert_int_equal(stat(vf, &v0), 0);
    /* the target: 64 MiB (sparse; hashing reads all of it) with its own first line;
     * sha256 of the victim differs, so a hash of the victim is refused anyway: the race
     * that matters is the move */
    fd = openat(realfd, "big.bin", O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "target\n", 7), 7);
    assert_int_equal(ftruncate(fd, RACE_BYTES), 0);
    close(fd);
    fd = openat(realfd, "big.bin", O_RDONLY);
    assert_int_equal(enf_sha256_fd(fd, sha, why, sizeof(why)), CWPP_OK);
    close(fd);
    path_of(f, sizeof(f), "%s/big.bin", race_a);
    snprintf(params, sizeof(params), "{\"path\": \"%s\", \"sha256\": \"%s\"}", f, sha);
    c = ctx_for(q, work);

    atomic_store(&race_stop, 0);
    atomic_store(&race_swaps, 0);
    assert_int_equal(pthread_create(&th, NULL, swapper, NULL), 0);
    for (i = 0; i < RACE_ROUNDS; i++) {
        enf_outcome_t o;
        int           ok;
        long          s0 = atomic_load(&race_swaps);

        /* the swapper has moved on (by one or two swaps: either state) since the last
         * round; under valgrind, which runs one thread at a time, it would not otherwise */
        while (atomic_load(&race_swaps) < s0 + 1 + (i % 2))
            usleep(20);
        memset(&o, 0, sizeof(o));
        if (old) {
            ok = old_quarantine(f, q, sha) == 0;
        } else {
            enf_apply(&c, "race", "quarantine_file", params, &o);
            ok = o.ok == 1;
            if (getenv("CWPP_RACE_DEBUG") != NULL)
                print_message("%s\n", o.reason);
            json_decref(o.details);
        }
        if (ok) {
            moved++;
            /* put the target back for the next round (it was the target: checked) */
            if (renameat(qfd, sha, realfd, "big.bin") != 0)
                break; /* the old code moved the victim: the checks below fail */
            assert_int_equal(fchmodat(realfd, "big.bin", 0644, 0), 0);
        } else {
            refused++;
        }
        /* the victim is untouched, every round */
        if (stat(vf, &v1) != 0 || v1.st_ino != v0.st_ino || v1.st_dev != v0.st_dev ||
            (v1.st_mode & 07777) != 0644 || v1.st_size != v0.st_size)
            break;
    }
    atomic_store(&race_stop, 1);
    pthread_join(th, NULL);
    print_message("race: %d rounds, %d quarantined, %d refused, %ld swaps\n", i, moved,
                  refused, atomic_load(&race_swaps));
    assert_int_equal(stat(vf, &v1), 0);
    assert_int_equal(v1.st_ino, v0.st_ino);
    assert_int_equal(v1.st_mode & 07777, 0644);
    vfd = open(vf, O_RDONLY);
    assert_true(vfd >= 0);
    n = read(vfd, buf, sizeof(buf) - 1);
    close(vfd);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "victim: must stay where it is\n");
    assert_int_equal(i, RACE_ROUNDS);
    assert_true(atomic_load(&race_swaps) > RACE_ROUNDS); /* the race really ran */
    assert_true(moved > 0); /* and the move itself ran under it */
    close(realfd);
    close(qfd);
}

/* The quarantine on another file system (/dev/shm): the copy path moves the file, and
 * a file replaced between the hash and the move is left alone. */
static void test_cross_fs(void **state)
{
    char          q[64], f[600], params[1200], cmd[200];
    enf_ctx_t     c;
    enf_outcome_t o;
    struct stat   a, b;

    (void)state;
    snprintf(q, sizeof(q), "/dev/shm/test_enforcer_guard.XXXXXX");
    if (mkdtemp(q) == NULL || stat(q, &a) != 0 || stat(tmpdir, &b) != 0 || a.st_dev == b.st_dev) {
        print_message("no other file system at /dev/shm: skipped\n");
        if (q[0] != '\0')
            rmdir(q);
        return;
    }
    path_of(f, sizeof(f), "%s/x.bin", tmpdir);
    put_file(f, "hello");
    c = ctx_for(q, tmpdir);
    snprintf(params, sizeof(params), "{\"path\": \"%s\"}", f);
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "x.1", "quarantine_file", params, &o);
    assert_int_equal(o.ok, 1);
    json_decref(o.details);
    assert_int_equal(access(f, F_OK), -1);
    path_of(f, sizeof(f), "%s/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            q);
    assert_int_equal(stat(f, &a), 0);
    assert_int_equal(a.st_mode & 07777, 0);
    assert_int_equal(a.st_size, 5);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", q);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------- 4. processes */

static pid_t run_copy_of_sleep(const char *as)
{
    char  cmd[1200];
    pid_t pid;

    snprintf(cmd, sizeof(cmd), "cp /bin/sleep '%s' && chmod 755 '%s'", as, as);
    assert_int_equal(system(cmd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(as, as, "60", (char *)NULL);
        _exit(127);
    }
    usleep(100000); /* exec'd */
    return pid;
}

static void stop(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void test_processes(void **state)
{
    enf_ctx_t      c = ctx_for("/nonexistent/q", "/");
    enf_outcome_t  o;
    char           sshd[600], plain[600], named[600], stat_line[512];
    pid_t          p1, p2, p3;
    cwpp_metrics_t *m = cwpp_metrics_new();
    FILE           *fp;
    unsigned long  flags = 0;

    (void)state;
    c.metrics = m;
    c.protect_processes = "myguard";
    c.protect_pids = "4194000";
#define REFUSED(pid, want)                                                                   \
    do {                                                                                     \
        memset(&o, 0, sizeof(o));                                                            \
        assert_int_equal(enf_guard_process(&c, (long)(pid), &o), -1);                        \
        if (strstr(o.reason, want) == NULL)                                                  \
            fail_msg("pid %ld: \"%s\", wanted \"%s\"", (long)(pid), o.reason, want);         \
    } while (0)
    REFUSED(1, "(init)");
    REFUSED(getpid(), "it is this agent");
    if (getppid() > 1)
        REFUSED(getppid(), "an ancestor of this agent");
    REFUSED(4194000, "enforcer.protect.pids");
    /* pid 2 is kthreadd outside a pid namespace: a kernel thread */
    if ((fp = fopen("/proc/2/stat", "r")) != NULL) {
        if (fgets(stat_line, sizeof(stat_line), fp) != NULL &&
            strstr(stat_line, "(kthreadd)") != NULL &&
            sscanf(strrchr(stat_line, ')') + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags) == 1 &&
            (flags & 0x00200000u) != 0)
            REFUSED(2, "kernel thread");
        fclose(fp);
    }
    path_of(sshd, sizeof(sshd), "%s/sshd", tmpdir);
    path_of(named, sizeof(named), "%s/myguard", tmpdir);
    path_of(plain, sizeof(plain), "%s/plain-sleep", tmpdir);
    p1 = run_copy_of_sleep(sshd);
    p2 = run_copy_of_sleep(named);
    p3 = run_copy_of_sleep(plain);
    REFUSED(p1, "sshd is a protected process");
    REFUSED(p2, "myguard is a protected process");
    memset(&o, 0, sizeof(o));
    assert_int_equal(enf_guard_process(&c, p3, &o), 0);
    assert_int_equal(kill(p1, 0), 0); /* alive */
    assert_int_equal(kill(p2, 0), 0);
    stop(p1);
    stop(p2);
    stop(p3);
    assert_true(refusals(m, "protected_process") >= 5);
#undef REFUSED
    cwpp_metrics_destroy(m);
}

/* -------------------------------------------------------------- 5. accounts */

static void acc(const enf_ctx_t *c, const char *action, const char *user, int rc,
                const char *want)
{
    enf_outcome_t o;

    memset(&o, 0, sizeof(o));
    assert_int_equal(enf_guard_account(c, action, user, &o), rc);
    if (want != NULL && strstr(o.reason, want) == NULL)
        fail_msg("%s %s: \"%s\", wanted \"%s\"", action, user, o.reason, want);
}
#define ACC(action, user, rc, want) acc(&c, action, user, rc, want)

static void test_accounts(void **state)
{
    char          etc[400], pw[500];
    enf_ctx_t     c = ctx_for("/nonexistent/q", "/");
    enf_outcome_t o;

    (void)state;
    path_of(etc, sizeof(etc), "%s/etc", tmpdir);
    path_of(pw, sizeof(pw), "%s/etc/passwd", tmpdir);
    assert_int_equal(mkdir(etc, 0755), 0);
    put_file(pw, "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n"
                 "alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n"
                 "odd:x:zz:1::/:/bin/sh\n");
    c.usermod_root = tmpdir;
    c.protect_accounts = "bob, carol";
    ACC("disable_account", "root", -1, "refusing to disable the root account");
    ACC("enable_account", "root", -1, "refusing to enable the root account");
    ACC("disable_account", "daemon", -1, "uid 1 is below 1000");
    ACC("enable_account", "bob", -1, "enforcer.protect.accounts");
    ACC("disable_account", "odd", -1, "cannot be read");
    ACC("disable_account", "alice", 0, NULL);
    ACC("disable_account", "nobody-here", 0, NULL); /* usermod says there is none */
    c.protect_uid_below = 1001;
    ACC("disable_account", "alice", -1, "uid 1000 is below 1001");
    c.usermod_root = "/nonexistent";
    ACC("disable_account", "alice", -1, "cannot read /nonexistent/etc/passwd");
    /* through the action: refused before usermod runs (usermod here is /bin/false, which
     * would answer "usermod exited with status 1") */
#undef ACC
    c.usermod_root = tmpdir;
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "a.1", "disable_account", "{\"user\": \"daemon\"}", &o);
    assert_int_equal(o.ok, 0);
    assert_non_null(strstr(o.reason, "refusing"));
    assert_string_equal(json_string_value(json_object_get(o.details, "refused")),
                        "protected_account");
    json_decref(o.details);
}

/* -------------------------------------------------------------- 6. children */

static void test_children(void **state)
{
    char          out[2048], why[300], deny[400], victim[400], planted[500], cmd[600];
    char         *argv[3];
    int           status = 0, i;
    enf_ctx_t     c = ctx_for("/nonexistent/q", "/");
    enf_outcome_t o;
    struct stat   sb;

    (void)state;
    argv[0] = "env";
    argv[1] = NULL;
    assert_int_equal(enf_spawn(argv, 2000, out, sizeof(out), &status, why, sizeof(why)),
                     CWPP_EIO);
    assert_non_null(strstr(why, "not an absolute path"));
    setenv("CWPP_SECRET_FOR_TEST", "leak", 1);
    argv[0] = "/usr/bin/env";
    assert_int_equal(enf_spawn(argv, 2000, out, sizeof(out), &status, why, sizeof(why)),
                     CWPP_OK);
    unsetenv("CWPP_SECRET_FOR_TEST");
    assert_string_equal(out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C\n");

    /* the reload command: 33 words fail, never run cut to 32 */
    path_of(deny, sizeof(deny), "%s/deny.conf", tmpdir);
    c.waf_deny_file = deny;
    snprintf(cmd, sizeof(cmd), "/bin/true");
    for (i = 0; i < 32; i++)
        strcat(cmd, " w");
    c.waf_reload = cmd;
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "w.1", "waf_block_ip", "{\"ip\": \"192.0.2.7\"}", &o);
    assert_int_equal(o.ok, 0);
    assert_non_null(strstr(o.reason, "more than 32 words"));
    json_decref(o.details);
    cmd[strlen(cmd) - 2] = '\0'; /* 32 words: runs */
    memset(&o, 0, sizeof(o));
    enf_apply(&c, "w.2", "waf_block_ip", "{\"ip\": \"192.0.2.8\"}", &o);
    assert_int_equal(o.ok, 1);
    json_decref(o.details);

    /* a symlink planted at the former fixed temporary name is not written through */
    path_of(victim, sizeof(victim), "%s/victim.txt", tmpdir);
    put_file(victim, "victim\n");
    path_of(planted, sizeof(planted), "%s.cwpp-tmp", deny);
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(enf_rewrite_file(deny, "deny 192.0.2.9;\n", 16, 0644, why, sizeof(why)),
                     CWPP_OK);
    assert_int_equal(stat(victim, &sb), 0);
    assert_int_equal(sb.st_size, 7);
    assert_int_equal(lstat(planted, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test_setup_teardown(test_walk, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_race, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cross_fs, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_processes, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_accounts, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_children, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
