/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guard.c: what the agent refuses to touch, and the one safe way a path from an action
 * becomes an open directory.
 *
 * Action parameters come from alert content: a compromised host can get the desk to
 * recommend quarantining /etc/shadow or killing sshd. So before an action acts:
 *
 *   paths (quarantine_file, scan_file)  are normalized ("." and ".." resolved by text,
 *       which is exact because no symbolic link is ever followed), must lie under one of
 *       enforcer.workload.roots and under none of the protected paths (the system's
 *       binaries and configuration, built in, plus enforcer.protect.paths); then they are
 *       opened beneath enforcer.host_root one component at a time, each directory with
 *       O_DIRECTORY|O_NOFOLLOW relative to the one before, so a symlinked directory
 *       anywhere on the way is refused, never followed, and what the caller acts on is
 *       the directory it was checked through. Every directory on the way, and the file,
 *       is also compared by identity (device, inode) with the protected directories and
 *       the agent's own state directory, quarantine directory and configuration file: a
 *       bind mount of /etc under /tmp is still /etc. (A per-component walk rather than
 *       one openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH): it gives each directory on the
 *       way to the identity check, and works on every kernel.)
 *   processes (kill_process)  pid 1, the agent and its ancestors, kernel threads
 *       (PF_KTHREAD, or no executable), enforcer.protect.pids, and any process whose
 *       executable's base name is sshd, sshd-session or one of enforcer.protect.processes.
 *   accounts (disable_account, enable_account)  root, enforcer.protect.accounts, and any
 *       account whose uid in <usermod root>/etc/passwd is below enforcer.protect.uid.below.
 *
 * A refusal fails the action with a sentence that starts "refusing to", changes
 * nothing, and is counted in cwpp_enforcer_refusals_total{reason=...}.
 */
#include "enf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cwpp_http.h"

#define PF_KTHREAD_FLAG 0x00200000u /* include/linux/sched.h */
#define IDS_MAX         96          /* protected identities compared at most */

const char enf_builtin_protected[] = "/bin:/sbin:/usr:/lib*:/boot:/etc:/proc:/sys:/dev";

/* ------------------------------------------------------------- refusals */

int enf_refuse(const enf_ctx_t *c, enf_outcome_t *o, const char *code, const char *fmt, ...)
{
    va_list ap;
    char    name[160];

    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
    va_end(ap);
    o->ok = 0;
    cwpp_utf8_sanitize(o->reason);
    o->refusal = code;
    if (c->metrics != NULL) {
        snprintf(name, sizeof(name), "cwpp_enforcer_refusals_total{reason=\"%s\"}", code);
        cwpp_metric_add(cwpp_counter(c->metrics, name, "Actions refused because their "
                                     "target is protected, by reason."), 1);
    }
    return -1;
}

/* --------------------------------------------------------------- lists */

/* Calls fn on each non-empty item of the list s separated by sep (blanks trimmed);
 * stops at the first non-zero return and returns it. Items longer than PATH_MAX - 1
 * bytes are passed as "" (never cut: callers refuse an empty item). */
static int each_item(const char *s, char sep, int (*fn)(const char *item, void *arg),
                     void *arg)
{
    char        item[PATH_MAX];
    const char *p = s;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, sep);
        size_t      n = end != NULL ? (size_t)(end - p) : strlen(p);
        int         rc;

        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            if (n < sizeof(item)) {
                memcpy(item, p, n);
                item[n] = '\0';
            } else {
                item[0] = '\0';
            }
            if ((rc = fn(item, arg)) != 0)
                return rc;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int enf_path_normalize(const char *in, char *out, size_t size)
{
    size_t len = 0;
    const char *p = in;

    if (in == NULL || in[0] != '/' || size < 2)
        return -1;
    while (*p != '\0') {
        const char *end;
        size_t      n;

        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        end = strchr(p, '/');
        n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--; /* pops the last component (never above "/") */
            if (len > 0)
                len--;
        } else {
            if (len + 1 + n + 1 > size)
                return -1;
            out[len++] = '/';
            memcpy(out + len, p, n);
            len += n;
        }
        p += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    return 0;
}

/* 1 when the normalized path rel is entry or lies beneath it; an entry ending in '*'
 * ("/lib*") matches by prefix. */
static int path_under(const char *rel, const char *entry)
{
    size_t n = strlen(entry);

    if (n > 0 && entry[n - 1] == '*')
        return strncmp(rel, entry, n - 1) == 0;
    if (n == 1 && entry[0] == '/')
        return 1;
    return strncmp(rel, entry, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

typedef struct match {
    const char *rel;
    char        hit[PATH_MAX];
} match_t;

static int match_item(const char *item, void *arg)
{
    match_t *m = arg;
    char     norm[PATH_MAX];
    size_t   n = strlen(item);

    if (n > 0 && item[n - 1] == '*') {
        if (path_under(m->rel, item)) {
            cwpp_strlcpy(m->hit, item, sizeof(m->hit));
            return 1;
        }
        return 0;
    }
    if (enf_path_normalize(item, norm, sizeof(norm)) != 0)
        return 0;
    if (path_under(m->rel, norm)) {
        cwpp_strlcpy(m->hit, norm, sizeof(m->hit));
        return 1;
    }
    return 0;
}

static const char *roots_of(const enf_ctx_t *c)
{
    return c->workload_roots != NULL ? c->workload_roots : ENF_DEFAULT_ROOTS;
}

static const char *host_root_of(const enf_ctx_t *c)
{
    return c->host_root != NULL && c->host_root[0] != '\0' ? c->host_root : "/";
}

/* ------------------------------------------------------------ identities */

typedef struct ids {
    dev_t  dev[IDS_MAX];
    ino_t  ino[IDS_MAX];
    char   what[IDS_MAX][80];
    size_t n;
    int    rootfd;
} ids_t;

static void ids_add(ids_t *ids, const struct stat *st, const char *what)
{
    if (ids->n >= IDS_MAX)
        return;
    ids->dev[ids->n] = st->st_dev;
    ids->ino[ids->n] = st->st_ino;
    cwpp_strlcpy(ids->what[ids->n], what, sizeof(ids->what[0]));
    ids->n++;
}

static int ids_add_protected(const char *item, void *arg)
{
    ids_t      *ids = arg;
    char        norm[PATH_MAX];
    struct stat st;
    size_t      n = strlen(item);

    if (n == 0 || item[n - 1] == '*' || enf_path_normalize(item, norm, sizeof(norm)) != 0 ||
        strcmp(norm, "/") == 0)
        return 0;
    /* beneath the host root, without following a final link (/lib -> usr/lib is
     * covered by /usr) */
    if (fstatat(ids->rootfd, norm + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode))
        ids_add(ids, &st, norm);
    return 0;
}

/* Adds the identity of the file given to this process as --config FILE (read from
 * /proc/self/cmdline: the service skeleton keeps it to itself). */
static void ids_add_cmdline_config(ids_t *ids)
{
    char        buf[8192];
    struct stat st;
    size_t      n, i;
    FILE       *fp = fopen("/proc/self/cmdline", "re");

    if (fp == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    for (i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, "--config") == 0 && i + 9 < n && stat(buf + i + 9, &st) == 0) {
            ids_add(ids, &st, "the agent's configuration");
            return;
        }
}

/* The identities of what is protected: the agent's own files (in its own mount
 * namespace) and the protected paths beneath the host root. */
static void ids_load(const enf_ctx_t *c, int rootfd, ids_t *ids)
{
    struct stat st;
    const char *own[3];
    size_t      i;

    ids->n = 0;
    ids->rootfd = rootfd;
    own[0] = c->state_dir;
    own[1] = c->quarantine_dir;
    own[2] = c->config_path;
    for (i = 0; i < 3; i++)
        if (own[i] != NULL && own[i][0] != '\0' && stat(own[i], &st) == 0)
            ids_add(ids, &st, i == 0 ? "the agent's state directory"
                              : i == 1 ? "the quarantine directory"
                                       : "the agent's configuration");
    ids_add_cmdline_config(ids);
    each_item(enf_builtin_protected, ':', ids_add_protected, ids);
    if (c->protect_paths != NULL)
        each_item(c->protect_paths, ':', ids_add_protected, ids);
}

static const char *ids_find(const ids_t *ids, const struct stat *st)
{
    size_t i;

    for (i = 0; i < ids->n; i++)
        if (ids->dev[i] == st->st_dev && ids->ino[i] == st->st_ino)
            return ids->what[i];
    return NULL;
}

int enf_guard_inode(const enf_ctx_t *c, const char *action, const char *shown,
                    const struct stat *st, enf_outcome_t *o)
{
    ids_t      *ids = malloc(sizeof(*ids));
    const char *what;
    int         rootfd, rc = 0;

    if (ids == NULL)
        return enf_fail(o, "out of memory."), -1;
    rootfd = open(host_root_of(c), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ids_load(c, rootfd, ids);
    if ((what = ids_find(ids, st)) != NULL)
        rc = enf_refuse(c, o, "protected_path", "refusing to %s %s: it is %s, which is "
                        "protected.", action, shown, what);
    if (rootfd >= 0)
        close(rootfd);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------ paths */

void enf_target_close(enf_target_t *t)
{
    if (t->dirfd >= 0)
        close(t->dirfd);
    t->dirfd = -1;
}

int enf_resolve(const enf_ctx_t *c, const char *action, const char *path, enf_target_t *t,
                enf_outcome_t *o)
{
    char        shown[1100], rel[PATH_MAX], *comp, *next;
    match_t     m;
    ids_t      *ids = NULL;
    struct stat st;
    int         cur = -1, rc = ENF_RESOLVE_REFUSED;
    const char *what;

    t->dirfd = -1;
    t->name[0] = '\0';
    snprintf(shown, sizeof(shown), "%s", path);
    cwpp_utf8_sanitize(shown);
    if (enf_path_normalize(path, t->rel, sizeof(t->rel)) != 0)
        return enf_fail(o, "the path %s is not an absolute path of at most %d bytes.", shown,
                        PATH_MAX - 1), -1;
    m.rel = t->rel;
    if (each_item(enf_builtin_protected, ':', match_item, &m) != 0 ||
        (c->protect_paths != NULL && each_item(c->protect_paths, ':', match_item, &m) != 0))
        return enf_refuse(c, o, "protected_path", "refusing to %s %s: it lies in %s, a "
                          "protected path.", action, shown, m.hit);
    if (each_item(roots_of(c), ':', match_item, &m) == 0)
        return enf_refuse(c, o, "outside_roots", "refusing to %s %s: it is outside the "
                          "workload roots (enforcer.workload.roots: %.300s).", action, shown,
                          roots_of(c));
    if ((ids = malloc(sizeof(*ids))) == NULL)
        return enf_fail(o, "out of memory."), -1;
    if ((cur = open(host_root_of(c), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        enf_fail(o, "cannot open the host root %s: %s.", host_root_of(c), strerror(errno));
        goto out;
    }
    ids_load(c, cur, ids);
    /* every directory on the way, opened relative to the one before, never through a
     * link; rel is "/" or "/a/b/name" */
    memcpy(rel, t->rel, strlen(t->rel) + 1);
    comp = rel + 1;
    if (*comp == '\0') {
        cwpp_strlcpy(t->name, ".", sizeof(t->name));
        t->dirfd = cur;
        cur = -1;
        rc = ENF_RESOLVE_OK;
        goto out;
    }
    while ((next = strchr(comp, '/')) != NULL) {
        int nfd;

        *next = '\0';
        nfd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            int err = errno;

            if (err == ENOENT) {
                rc = ENF_RESOLVE_MISSING;
            } else if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       S_ISLNK(st.st_mode)) {
                enf_refuse(c, o, "symlink", "refusing to %s %s: %.*s is a symbolic link, "
                           "which is never followed.", action, shown, (int)(next - rel), rel);
            } else {
                enf_fail(o, "cannot open %.*s (on the way to %s): %s.", (int)(next - rel), rel,
                         shown, strerror(err));
            }
            goto out;
        }
        close(cur);
        cur = nfd;
        if (fstat(cur, &st) == 0 && (what = ids_find(ids, &st)) != NULL) {
            enf_refuse(c, o, "protected_path", "refusing to %s %s: %.*s is %s, which is "
                       "protected.", action, shown, (int)(next - rel), rel, what);
            goto out;
        }
        *next = '/';
        comp = next + 1;
    }
    if (strlen(comp) >= sizeof(t->name)) {
        enf_fail(o, "the last component of %s is longer than %d bytes.", shown, NAME_MAX);
        goto out;
    }
    cwpp_strlcpy(t->name, comp, sizeof(t->name));
    t->dirfd = cur;
    cur = -1;
    rc = ENF_RESOLVE_OK;
out:
    if (cur >= 0)
        close(cur);
    free(ids);
    return rc;
}

/* -------------------------------------------------------------- processes */

typedef struct find {
    const char *want;
    int         found;
} find_t;

static int find_item(const char *item, void *arg)
{
    find_t *f = arg;

    if (strcmp(item, f->want) == 0)
        f->found = 1;
    return f->found;
}

static int in_list(const char *list, char sep, const char *want)
{
    find_t f = {want, 0};

    if (list != NULL)
        each_item(list, sep, find_item, &f);
    return f.found;
}

/* Fields of /proc/PID/stat after the command name: state (3), ppid (4), flags (9). */
static int proc_stat(long pid, char *state, long *ppid, unsigned long *flags)
{
    char   path[64], buf[1024], *rp;
    FILE  *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((fp = fopen(path, "re")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rp = strrchr(buf, ')'); /* the command name may contain anything */
    if (rp == NULL || sscanf(rp + 1, " %c %ld %*d %*d %*d %*d %lu", state, ppid, flags) != 3)
        return -1;
    return 0;
}

int enf_guard_process(const enf_ctx_t *c, long pid, enf_outcome_t *o)
{
    char          state = 0, link[64], exe[PATH_MAX + 16], pidtxt[32];
    const char   *base;
    long          ppid = 0, a;
    unsigned long flags = 0;
    ssize_t       n;
    int           i;

    if (pid <= 1)
        return enf_refuse(c, o, "protected_process", "refusing to kill pid %ld (init).", pid);
    if (pid == (long)getpid())
        return enf_refuse(c, o, "protected_process",
                          "refusing to kill pid %ld: it is this agent.", pid);
    snprintf(pidtxt, sizeof(pidtxt), "%ld", pid);
    if (in_list(c->protect_pids, ',', pidtxt))
        return enf_refuse(c, o, "protected_process", "refusing to kill pid %ld: it is listed "
                          "in enforcer.protect.pids.", pid);
    for (a = (long)getppid(), i = 0; a > 1 && i < 4096; i++) {
        char st;
        long pp;
        unsigned long fl;

        if (a == pid)
            return enf_refuse(c, o, "protected_process", "refusing to kill pid %ld: it is "
                              "an ancestor of this agent.", pid);
        if (proc_stat(a, &st, &pp, &fl) != 0)
            break;
        a = pp;
    }
    if (proc_stat(pid, &state, &ppid, &flags) != 0)
        return 0; /* gone: the caller says "not running" */
    if ((flags & PF_KTHREAD_FLAG) != 0 || ppid == 2)
        return enf_refuse(c, o, "kernel_thread", "refusing to kill pid %ld: it is a kernel "
                          "thread.", pid);
    snprintf(link, sizeof(link), "/proc/%ld/exe", pid);
    n = readlink(link, exe, sizeof(exe) - 1);
    if (n < 0)
        return 0; /* the caller tells an exited process from one without executable */
    exe[n] = '\0';
    if ((size_t)n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
        exe[n - 10] = '\0';
    base = strrchr(exe, '/') != NULL ? strrchr(exe, '/') + 1 : exe;
    if (strcmp(base, "sshd") == 0 || strcmp(base, "sshd-session") == 0 ||
        in_list(c->protect_processes != NULL ? c->protect_processes : ENF_DEFAULT_PROCESSES,
                ',', base)) {
        char shown[PATH_MAX + 16];

        snprintf(shown, sizeof(shown), "%s", exe);
        cwpp_utf8_sanitize(shown);
        return enf_refuse(c, o, "protected_process", "refusing to kill pid %ld (%.300s): %s "
                          "is a protected process (enforcer.protect.processes).", pid, shown,
                          base);
    }
    return 0;
}

/* --------------------------------------------------------------- accounts */

int enf_guard_account(const enf_ctx_t *c, const char *action, const char *user,
                      enf_outcome_t *o)
{
    char        path[PATH_MAX], *line = NULL;
    const char *root = c->usermod_root != NULL && c->usermod_root[0] != '\0'
                           ? c->usermod_root : host_root_of(c);
    const char *verb = strcmp(action, "disable_account") == 0 ? "disable" : "enable";
    long        below = c->protect_uid_below > 0 ? c->protect_uid_below : ENF_DEFAULT_UID_BELOW;
    size_t      cap = 0, ulen = strlen(user);
    FILE       *fp;
    int         fd, rc = 0;

    if (strcmp(user, "root") == 0)
        return enf_refuse(c, o, "protected_account", "refusing to %s the root account.",
                          verb);
    if (in_list(c->protect_accounts, ',', user))
        return enf_refuse(c, o, "protected_account", "refusing to %s the account %s: it is "
                          "listed in enforcer.protect.accounts.", verb, user);
    if ((size_t)snprintf(path, sizeof(path), "%s%setc/passwd", root,
                         root[strlen(root) - 1] == '/' ? "" : "/") >= sizeof(path))
        return enf_fail(o, "the passwd path under %s is too long.", root), -1;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || (fp = fdopen(fd, "r")) == NULL) {
        int err = errno;

        if (fd >= 0)
            close(fd);
        return enf_refuse(c, o, "protected_account", "refusing to %s the account %s: cannot "
                          "read %s to check its uid (%s).", verb, user, path, strerror(err));
    }
    while (getline(&line, &cap, fp) >= 0) {
        char *uid, *end;
        long  v;

        if (strncmp(line, user, ulen) != 0 || line[ulen] != ':')
            continue;
        uid = strchr(line + ulen + 1, ':'); /* past the password field */
        if (uid == NULL)
            continue;
        errno = 0;
        v = strtol(uid + 1, &end, 10);
        if (end == uid + 1 || *end != ':' || errno != 0) {
            rc = enf_refuse(c, o, "protected_account", "refusing to %s the account %s: its "
                            "uid in %s cannot be read.", verb, user, path);
            break;
        }
        if (v < below) {
            rc = enf_refuse(c, o, "protected_account", "refusing to %s the account %s: its "
                            "uid %ld is below %ld, a system account "
                            "(enforcer.protect.uid.below).", verb, user, v, below);
            break;
        }
    }
    free(line);
    fclose(fp);
    return rc;
}
