/* SPDX-License-Identifier: Apache-2.0 */
/*
 * act_host.c: the actions on the host itself - kill_process (pidfd, SIGKILL, the
 * executable checked first, protected processes refused by guard.c), disable_account /
 * enable_account (usermod; protected accounts refused by guard.c), waf_block_ip /
 * waf_unblock_ip (the "deny IP;" lines of the WAF deny file) and the glue of
 * quarantine_file and scan_file to files.c.
 */
#include "enf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cwpp_log.h"

#define PID_LIMIT   4194304 /* PID_MAX_LIMIT */

/* ---------------------------------------------------------- kill_process */

/* Process state letter from /proc/PID/stat, or 0. */
static char proc_state(long pid)
{
    char  path[64], buf[512], *rp;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "re")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')'); /* the command name may contain anything */
    return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

void enf_act_kill(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"pid", "path", NULL};
    json_t                  *jp = json_object_get(p, "pid");
    const char              *want;
    char                     link[64], exe[PATH_MAX + 16], shown[PATH_MAX + 16];
    long                     pid;
    int                      pfd;
    ssize_t                  n;
    struct pollfd            pl;

    (void)id;
    if (enf_only_keys(p, "kill_process", keys, o) != 0 ||
        enf_p_path(p, "kill_process", "path", 0, &want, o) != 0)
        return;
    if (jp == NULL) {
        enf_fail(o, "kill_process needs the parameter \"pid\".");
        return;
    }
    if (!json_is_integer(jp) || json_integer_value(jp) < 1 ||
        json_integer_value(jp) > PID_LIMIT) {
        enf_fail(o, "the parameter \"pid\" of kill_process must be a process id (an integer "
                 "from 2 to %d).", PID_LIMIT);
        return;
    }
    pid = (long)json_integer_value(jp);
    if (pid <= 1 || pid == (long)getpid()) {
        enf_guard_process(c, pid, o);
        return;
    }
    /* a pidfd names this process, not whatever reuses the number later; the guards
     * look at the process the pidfd holds (checked again below, once the pidfd is open,
     * so a pid reused between the two is caught by the executable check) */
    pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (pfd < 0 && errno == ESRCH) {
        o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
        enf_ok(o, "pid %ld is not running.", pid);
        return;
    }
    if (pfd < 0 && errno != ENOSYS) {
        enf_fail(o, "cannot open pid %ld: %s.", pid, strerror(errno));
        return;
    }
    if (enf_guard_process(c, pid, o) != 0) {
        o->details = json_pack("{s:I, s:b, s:s}", "pid", (json_int_t)pid, "killed", 0,
                               "refused", o->refusal);
        if (pfd >= 0)
            close(pfd);
        return;
    }
    snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
    n = readlink(link, exe, sizeof(exe) - 1);
    if (n < 0) {
        int  err = errno;
        char st = proc_state(pid);

        if (pfd >= 0)
            close(pfd);
        if (st == 0 || st == 'Z' || st == 'X') {
            o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
            enf_ok(o, "pid %ld is not running%s.", pid, st != 0 ? " (it has exited)" : "");
        } else {
            enf_refuse(c, o, "kernel_thread", "refusing to kill pid %ld: it has no "
                       "executable to check (%s); a kernel thread is not killed.", pid,
                       strerror(err));
        }
        return;
    }
    exe[n] = '\0';
    snprintf(shown, sizeof(shown), "%s", exe);
    cwpp_utf8_sanitize(shown);
    if (want != NULL) {
        size_t wl = strlen(want);
        int    same = strcmp(exe, want) == 0 ||
                   ((size_t)n == wl + 10 && strncmp(exe, want, wl) == 0 &&
                    strcmp(exe + wl, " (deleted)") == 0);

        if (!same) {
            if (pfd >= 0)
                close(pfd);
            o->details = json_pack("{s:I, s:s}", "pid", (json_int_t)pid, "exe", shown);
            enf_fail(o, "pid %ld is now %s, not %s: not killed.", pid, shown, want);
            return;
        }
    }
    if ((pfd >= 0 ? (int)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0)
                  : kill((pid_t)pid, SIGKILL)) != 0) {
        int err = errno;

        if (pfd >= 0)
            close(pfd);
        if (err == ESRCH) {
            o->details = json_pack("{s:I, s:b}", "pid", (json_int_t)pid, "killed", 0);
            enf_ok(o, "pid %ld is not running.", pid);
        } else {
            enf_fail(o, "cannot kill pid %ld (%s): %s.", pid, shown, strerror(err));
        }
        return;
    }
    /* a pidfd becomes readable when the process has exited */
    pl.fd = pfd;
    pl.events = POLLIN;
    pl.revents = 0;
    o->details = json_pack("{s:I, s:s, s:b}", "pid", (json_int_t)pid, "exe", shown, "killed", 1);
    if (pfd >= 0 && poll(&pl, 1, 2000) == 0)
        enf_ok(o, "Sent SIGKILL to pid %ld (%s); it has not exited yet.", pid, shown);
    else
        enf_ok(o, "Killed pid %ld (%s).", pid, shown);
    if (pfd >= 0)
        close(pfd);
}

/* ------------------------------------------------------------- accounts */

void enf_act_account(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o,
                        int disable)
{
    static const char *const keys[] = {"user", NULL};
    const char              *action = disable ? "disable_account" : "enable_account";
    const char              *user;
    char                    *argv[10];
    char                     out[2048], why[600], line[300], st[64];
    int                      status = 0, k = 0;

    (void)id;
    if (enf_only_keys(p, action, keys, o) != 0 || enf_p_str(p, action, "user", 1, &user, o) != 0)
        return;
    if (!enf_user_valid(user)) {
        enf_fail(o, "the parameter \"user\" of %s, \"%.40s\", is not an account name "
                 "([a-z_][a-z0-9_-]{0,31}).", action, user);
        return;
    }
    if (enf_guard_account(c, action, user, o) != 0) {
        o->details = json_pack("{s:s, s:s}", "user", user, "refused", o->refusal);
        return;
    }
    argv[k++] = (char *)c->usermod_path;
    if (c->usermod_root[0] != '\0') {
        argv[k++] = "--root";
        argv[k++] = (char *)c->usermod_root;
    }
    argv[k++] = disable ? "--lock" : "--unlock";
    argv[k++] = "--expiredate";
    argv[k++] = disable ? "1" : "";
    argv[k++] = (char *)user;
    argv[k] = NULL;
    if (enf_spawn(argv, c->command_ms, out, sizeof(out), &status, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "could not %s the account %s: %s.", disable ? "disable" : "enable", user,
                 why);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 6) {
        enf_fail(o, "there is no account %s%s%s.", user,
                 c->usermod_root[0] != '\0' ? " under " : "", c->usermod_root);
        return;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        enf_fail(o, "usermod %s %s: %s.", enf_status_text(status, st, sizeof(st)),
                 disable ? "locking the account" : "unlocking the account",
                 out[0] != '\0' ? enf_first_line(out, line, sizeof(line)) : "no message");
        return;
    }
    o->details = json_pack("{s:s}", "user", user);
    if (disable)
        enf_ok(o, "Disabled the account %s: password locked and the account expired "
               "(usermod --lock --expiredate 1).", user);
    else
        enf_ok(o, "Enabled the account %s: password unlocked and no expiry date (usermod "
               "--unlock --expiredate '').", user);
}

/* ------------------------------------------------------------------ WAF */

int enf_waf_edit(const char *file, const char *ip, int add, int *changed, char *errstr,
                 size_t errstr_size)
{
    FILE       *fp = fopen(file, "re");
    cwpp_buf_t  b = {0};
    char       *line = NULL, want[80];
    size_t      cap = 0;
    ssize_t     len;
    int         found = 0, rc = CWPP_OK, last_nl = 1;
    mode_t      mode = 0644;
    struct stat st;

    *changed = 0;
    snprintf(want, sizeof(want), "deny %s;", ip);
    if (fp == NULL && errno != ENOENT)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot read %s: %s", file,
                           strerror(errno));
    if (fp != NULL && fstat(fileno(fp), &st) == 0)
        mode = st.st_mode & 07777;
    while (fp != NULL && (len = getline(&line, &cap, fp)) >= 0) {
        char  *s = line;
        size_t n = (size_t)len;

        last_nl = n > 0 && line[n - 1] == '\n';
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                         s[n - 1] == '\t'))
            n--;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n == strlen(want) && memcmp(s, want, n) == 0) {
            found = 1;
            if (!add)
                continue; /* drop it */
        }
        rc |= cwpp_buf_append(&b, line, (size_t)len);
    }
    free(line);
    if (fp != NULL)
        fclose(fp);
    if ((add && found) || (!add && !found)) {
        cwpp_buf_free(&b);
        return CWPP_OK;
    }
    if (add) {
        if (!last_nl)
            rc |= cwpp_buf_append(&b, "\n", 1);
        rc |= cwpp_buf_puts(&b, want);
        rc |= cwpp_buf_append(&b, "\n", 1);
    }
    if (rc != CWPP_OK) {
        cwpp_buf_free(&b);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    rc = enf_rewrite_file(file, b.data != NULL ? b.data : (unsigned char *)"", b.len, mode,
                          errstr, errstr_size);
    cwpp_buf_free(&b);
    if (rc != CWPP_OK)
        return rc;
    *changed = 1;
    return CWPP_OK;
}

void enf_act_waf(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o, int add)
{
    static const char *const keys[] = {"ip", NULL};
    const char              *action = add ? "waf_block_ip" : "waf_unblock_ip";
    enf_net_t                n;
    char                     ip[64], why[600];
    int                      changed = 0, rc;

    (void)id;
    if (enf_only_keys(p, action, keys, o) != 0 || enf_p_ip(p, action, &n, ip, o) != 0)
        return;
    if (c->waf_deny_file[0] == '\0') {
        enf_fail(o, "no WAF deny file is configured (enforcer.waf.deny_file).");
        return;
    }
    if (add && enf_net_is_local(&n)) {
        enf_fail(o, "refusing to deny %s at the WAF: it is a loopback or unspecified "
                 "address.", ip);
        return;
    }
    if (add && enf_mgmt_match(c, &n) != NULL) {
        enf_fail(o, "refusing to deny %s at the WAF: it is a management address.", ip);
        return;
    }
    if ((rc = enf_waf_edit(c->waf_deny_file, ip, add, &changed, why, sizeof(why))) != CWPP_OK) {
        enf_fail(o, "%s.", why);
        o->transient = rc == CWPP_ETRANSIENT; /* disk full, the file unchanged: later */
        return;
    }
    /* reload even when the file was already right: a retry after a failed reload must
     * still get the WAF to read it */
    if (c->waf_reload[0] != '\0') {
        char *argv[ENF_ARGV_MAX + 1], *copy = strdup(c->waf_reload), *save = NULL, *tok;
        char  out[2048];
        char  line[300], st[64];
        int   k = 0, status = 0;

        if (copy == NULL) {
            enf_fail(o, "out of memory.");
            return;
        }
        for (tok = strtok_r(copy, " ", &save); tok != NULL && k <= ENF_ARGV_MAX;
             tok = strtok_r(NULL, " ", &save))
            argv[k++] = tok;
        argv[k < ENF_ARGV_MAX ? k : ENF_ARGV_MAX] = NULL;
        /* never run a command cut short: more words than argv holds is an error */
        rc = k > ENF_ARGV_MAX ? cwpp_seterr(why, sizeof(why), CWPP_EIO, "the command has "
                                            "more than %d words", ENF_ARGV_MAX)
             : k > 0 ? enf_spawn(argv, c->command_ms, out, sizeof(out), &status, why,
                                 sizeof(why))
                     : cwpp_seterr(why, sizeof(why), CWPP_EIO, "the command is empty");
        free(copy);
        if (rc != CWPP_OK) {
            enf_fail(o, "%s the deny file %s, but the WAF reload failed: %s.",
                     changed ? "updated" : "did not need to change", c->waf_deny_file, why);
            return;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            enf_fail(o, "%s the deny file %s, but the WAF reload command %s: %s.",
                     changed ? "updated" : "did not need to change", c->waf_deny_file,
                     enf_status_text(status, st, sizeof(st)),
                     out[0] != '\0' ? enf_first_line(out, line, sizeof(line)) : "no message");
            return;
        }
    }
    o->details = json_pack("{s:s, s:s, s:b, s:b}", "ip", ip, "deny_file", c->waf_deny_file,
                           "changed", changed, "reloaded", c->waf_reload[0] != '\0');
    if (add)
        enf_ok(o, changed ? "Denied %s at the WAF (%s)%s." : "%s was already denied at the WAF "
                                                             "(%s)%s.",
               ip, c->waf_deny_file, c->waf_reload[0] != '\0' ? "; reloaded" : "");
    else
        enf_ok(o, changed ? "Removed the WAF deny of %s (%s)%s." : "%s was not denied at the WAF "
                                                                   "(%s)%s.",
               ip, c->waf_deny_file, c->waf_reload[0] != '\0' ? "; reloaded" : "");
}

/* ---------------------------------------------------------- files (glue) */

void enf_act_quarantine(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"path", "sha256", NULL};
    const char              *path, *sha;
    char                     want[65];
    size_t                   i;

    if (enf_only_keys(p, "quarantine_file", keys, o) != 0 ||
        enf_p_path(p, "quarantine_file", "path", 1, &path, o) != 0 ||
        enf_p_str(p, "quarantine_file", "sha256", 0, &sha, o) != 0)
        return;
    if (sha != NULL) {
        for (i = 0; i < 64 && sha[i] != '\0'; i++) {
            char ch = sha[i];

            if (ch >= 'A' && ch <= 'F')
                ch = (char)(ch - 'A' + 'a');
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                break;
            want[i] = ch;
        }
        if (i != 64 || sha[64] != '\0') {
            enf_fail(o, "the parameter \"sha256\" of quarantine_file must be 64 hex digits.");
            return;
        }
        want[64] = '\0';
    }
    enf_quarantine(c, id, path, sha != NULL ? want : NULL, o);
}

void enf_act_scan(const enf_ctx_t *c, const char *id, json_t *p, enf_outcome_t *o)
{
    static const char *const keys[] = {"path", "quarantine_if_infected", NULL};
    json_t                  *q = json_object_get(p, "quarantine_if_infected");
    const char              *path;

    if (enf_only_keys(p, "scan_file", keys, o) != 0 ||
        enf_p_path(p, "scan_file", "path", 1, &path, o) != 0)
        return;
    if (q != NULL && !json_is_null(q) && !json_is_boolean(q)) {
        enf_fail(o, "the parameter \"quarantine_if_infected\" of scan_file must be true or "
                 "false.");
        return;
    }
    enf_scan(c, id, path, json_is_true(q), o);
}
