/* SPDX-License-Identifier: Apache-2.0 */
/*
 * files.c: quarantine_file and scan_file.
 *
 * A path from an action is first checked and opened up to its parent directory by
 * guard.c (protected paths, workload roots, beneath enforcer.host_root, no link ever
 * followed); the file is then opened with O_NOFOLLOW relative to that directory, checked
 * to be a regular file with one link and not protected by identity, and hashed through
 * that descriptor: what is hashed is what is quarantined. Before the move the directory
 * entry is checked to still name the inode hashed (fstatat AT_SYMLINK_NOFOLLOW against
 * fstat); the move is a renameat from that directory descriptor into the quarantine
 * directory (opened once per action as a descriptor) under a temporary name, checked
 * again, then renamed to its SHA-256; across file systems the bytes are copied from the
 * descriptor into a mode-000 file there, fsynced, and the entry unlinked only after the
 * same check. Whatever happens to the path meanwhile (a parent directory swapped for a
 * link to somewhere else), nothing outside the directory that was checked is touched;
 * on any mismatch what was moved is put back and the file's mode restored. The
 * quarantined file is named by its SHA-256 and has mode 000;
 * <quarantine_dir>/manifest.jsonl gets one line {path, sha256, at, action_id} per
 * quarantined file.
 *
 * Signatures (enforcer.scan.signatures) are read at each scan, so an updated file takes
 * effect without a restart: one SHA-256 in hex per line, '#' starts a comment.
 *
 * Also the one atomic rewrite of a whole file (temporary file, fsync, rename, fsync of
 * the directory) that the journal's compaction and the WAF deny file share.
 */
#include "enf_internal.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cwpp_log.h"

int enf_errno_disk_full(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

/* fsync of the directory holding path (after a rename in it); 0 or -1 with errno. */
static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int   fd, rc = -1;

    if (copy == NULL)
        return -1;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* A unique temporary name "<base>.cwpp-XXXXXXXXXXXX" created with O_CREAT|O_EXCL|
 * O_NOFOLLOW relative to dirfd (AT_FDCWD: base is a path); the fd, or -1 with errno. */
static int create_unique(int dirfd, const char *base, char *tmp, size_t tmp_size, mode_t mode)
{
    static const char xd[] = "0123456789abcdef";
    unsigned char     rnd[6];
    int               i, k, fd;

    for (i = 0; i < 100; i++) {
        char   sfx[16];
        size_t j;

        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            for (j = 0; j < sizeof(rnd); j++)
                rnd[j] = (unsigned char)(rand() ^ (int)(cwpp_mono_ms() >> (j * 3)));
        for (j = 0, k = 0; j < sizeof(rnd); j++) {
            sfx[k++] = xd[rnd[j] >> 4];
            sfx[k++] = xd[rnd[j] & 15];
        }
        sfx[k] = '\0';
        if ((size_t)snprintf(tmp, tmp_size, "%s.cwpp-%s", base, sfx) >= tmp_size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

int enf_rewrite_file(const char *path, const void *data, size_t len, mode_t mode,
                     char *errstr, size_t errstr_size)
{
    char                 tmp[PATH_MAX + 32];
    const unsigned char *p = data;
    size_t               done = 0;
    int                  fd, err;

    fd = create_unique(AT_FDCWD, path, tmp, sizeof(tmp), mode & 0600);
    if (fd < 0) {
        err = errno;
        return cwpp_seterr(errstr, errstr_size,
                           enf_errno_disk_full(err) ? CWPP_ETRANSIENT : CWPP_EIO,
                           "cannot rewrite %s: %s", path, strerror(err));
    }
    if (cwpp_fault_hit("enforcer.disk_full")) {
        errno = ENOSPC;
        goto fail;
    }
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto fail;
        if (w == 0) {
            errno = ENOSPC;
            goto fail;
        }
        done += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || rename(tmp, path) != 0)
        goto fail;
    close(fd);
    if (fsync_dir_of(path) != 0)
        cwpp_warn("fsync_dir_failed", "cannot fsync the directory of %s: %s", path,
                  strerror(errno)); /* the rename happened; only its durability is late */
    return CWPP_OK;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return cwpp_seterr(errstr, errstr_size,
                       enf_errno_disk_full(err) ? CWPP_ETRANSIENT : CWPP_EIO,
                       "cannot rewrite %s: %s", path, strerror(err));
}

int enf_sha256_fd(int fd, char hex[65], char *errstr, size_t errstr_size)
{
    static const char xd[] = "0123456789abcdef";
    EVP_MD_CTX       *ctx = EVP_MD_CTX_new();
    unsigned char     buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int      mdlen = 0, i;
    int               rc = CWPP_OK;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot start SHA-256");
    }
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "read failed: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
    }
    if (rc == CWPP_OK && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot finish SHA-256");
    EVP_MD_CTX_free(ctx);
    if (rc != CWPP_OK)
        return rc;
    for (i = 0; i < mdlen && i < 32; i++) {
        hex[2 * i] = xd[md[i] >> 4];
        hex[2 * i + 1] = xd[md[i] & 15];
    }
    hex[64] = '\0';
    return CWPP_OK;
}

static int sha_valid(const char *s)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

/* A copy of s safe for JSON and reasons (invalid UTF-8 bytes become '?'). */
static void safe_copy(char *dst, size_t size, const char *s)
{
    snprintf(dst, size, "%s", s);
    cwpp_utf8_sanitize(dst);
}

static int copy_fd(int in, int out)
{
    char  buf[65536];
    off_t off = 0;

    for (;;) {
        ssize_t r = pread(in, buf, sizeof(buf), off), w = 0;

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        while (w < r) {
            ssize_t k = write(out, buf + w, (size_t)(r - w));

            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return -1;
            w += k;
        }
        off += r;
    }
}

static int manifest_add(const char *qdir, const char *path, const char *sha,
                        const char *action_id, char *errstr, size_t errstr_size)
{
    char    mpath[4200], at[32], p[4096];
    json_t *line;
    char   *s;
    int     fd, rc = CWPP_OK;
    size_t  len;

    safe_copy(p, sizeof(p), path);
    snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", qdir);
    line = json_pack("{s:s, s:s, s:s, s:s}", "path", p, "sha256", sha, "at",
                     cwpp_format_time_ms(cwpp_now_ms(), at, sizeof(at)), "action_id",
                     action_id);
    s = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (s == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    len = strlen(s);
    s[len] = '\n'; /* json_dumps left room for its NUL: the newline replaces it */
    fd = open(mpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, s, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot append to %s: %s", mpath,
                         strerror(errno));
    if (fd >= 0)
        close(fd);
    free(s);
    return rc;
}

/* 0 when the entry name in dirfd is (not following a link) the inode st describes. */
static int same_entry(int dirfd, const char *name, const struct stat *st)
{
    struct stat now;

    if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    return now.st_dev == st->st_dev && now.st_ino == st->st_ino ? 0 : -1;
}

/* renameat2(RENAME_NOREPLACE): puts back what was moved without overwriting anything. */
static int rename_back(int fromfd, const char *from, int tofd, const char *to)
{
    return (int)syscall(SYS_renameat2, fromfd, from, tofd, to, 1 /* RENAME_NOREPLACE */);
}

int enf_quarantine_fd(int qfd, const char *qdir, const char *action_id, const char *path,
                      int dirfd, const char *name, int fd, const char *sha, char *as,
                      size_t as_size, char *errstr, size_t errstr_size)
{
    struct stat st, dst;
    char        tmp[128], shown[1100];
    int         out, err, rc;

    safe_copy(shown, sizeof(shown), path);
    if ((size_t)snprintf(as, as_size, "%s/%s", qdir, sha) >= as_size)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "the quarantine path is too long");
    if (fstat(fd, &st) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "fstat: %s", strerror(errno));
    if (same_entry(dirfd, name, &st) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "%s was replaced while it was being "
                           "hashed; nothing was moved", shown);
    if (fchmod(fd, 0) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot chmod %s: %s", shown,
                           strerror(errno));
    out = create_unique(qfd, ".q", tmp, sizeof(tmp), 0);
    if (out < 0) {
        err = errno;
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot create a file in %s: %s", qdir,
                         strerror(err));
        goto restore_mode;
    }
    /* the temporary name exists (reserved); the rename replaces it */
    if (renameat(dirfd, name, qfd, tmp) == 0) {
        close(out);
        if (fstatat(qfd, tmp, &dst, AT_SYMLINK_NOFOLLOW) != 0 || dst.st_dev != st.st_dev ||
            dst.st_ino != st.st_ino) {
            /* another file took the name between the check and the move: put it back */
            if (rename_back(qfd, tmp, dirfd, name) != 0)
                cwpp_warn("quarantine_put_back_failed", "cannot put back the file that "
                          "replaced %s (left in %s as %s): %s", shown, qdir, tmp,
                          strerror(errno));
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "%s was replaced while it was "
                             "being quarantined; nothing was quarantined", shown);
            goto restore_mode;
        }
        if (renameat(qfd, tmp, qfd, sha) != 0) {
            err = errno;
            if (rename_back(qfd, tmp, dirfd, name) != 0)
                unlinkat(qfd, tmp, 0); /* cannot happen: the name was ours a moment ago */
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot move %s into %s: %s",
                             shown, qdir, strerror(err));
            goto restore_mode;
        }
        fsync(qfd);
        fsync(dirfd);
        return manifest_add(qdir, path, sha, action_id, errstr, errstr_size);
    }
    err = errno;
    if (err != EXDEV) {
        close(out);
        unlinkat(qfd, tmp, 0);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot move %s into %s: %s", shown,
                         qdir, strerror(err));
        goto restore_mode;
    }
    /* another file system: copy what was hashed, then remove the original */
    if (copy_fd(fd, out) != 0 || fsync(out) != 0) {
        err = errno;
        close(out);
        unlinkat(qfd, tmp, 0);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot copy %s into %s: %s", shown,
                         qdir, strerror(err));
        goto restore_mode;
    }
    close(out);
    if (same_entry(dirfd, name, &st) != 0) {
        unlinkat(qfd, tmp, 0);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "%s was replaced while it was being "
                         "quarantined; nothing was quarantined", shown);
        goto restore_mode;
    }
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
        err = errno;
        unlinkat(qfd, tmp, 0);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot remove %s: %s", shown,
                         strerror(err));
        goto restore_mode;
    }
    if (renameat(qfd, tmp, qfd, sha) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "removed %s but cannot name its "
                           "copy %s/%s: %s", shown, qdir, tmp, strerror(errno));
    fsync(qfd);
    return manifest_add(qdir, path, sha, action_id, errstr, errstr_size);
restore_mode:
    fchmod(fd, st.st_mode & 07777);
    return rc;
}

/* The sha256 the manifest last recorded for path, into sha[65]; 0 when found. */
static int manifest_find(const char *qdir, const char *path, char sha[65])
{
    char   mpath[4200], *line = NULL;
    size_t cap = 0;
    FILE  *fp;
    int    found = -1;

    snprintf(mpath, sizeof(mpath), "%s/manifest.jsonl", qdir);
    if ((fp = fopen(mpath, "re")) == NULL)
        return -1;
    while (getline(&line, &cap, fp) >= 0) {
        json_error_t jerr;
        json_t      *j = json_loads(line, 0, &jerr);
        const char  *p = json_string_value(json_object_get(j, "path"));
        const char  *s = json_string_value(json_object_get(j, "sha256"));

        if (p != NULL && s != NULL && strcmp(p, path) == 0 && sha_valid(s)) {
            memcpy(sha, s, 65);
            found = 0;
        }
        json_decref(j);
    }
    free(line);
    fclose(fp);
    return found;
}

/* Opens name in dirfd (the action's path shown as p) for hashing, not following a
 * link: 0 with *fd, or a failed outcome (symlink, not regular, protected, linked). */
static int open_regular(const enf_ctx_t *c, const char *action, int dirfd, const char *name,
                        const char *p, int *fd, enf_outcome_t *o)
{
    struct stat st;

    *fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0) {
        if (errno == ELOOP)
            enf_fail(o, "%s is a symbolic link; only regular files are handled.", p);
        else
            enf_fail(o, "cannot open %s: %s.", p, strerror(errno));
        return -1;
    }
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        enf_fail(o, "%s is not a regular file.", p);
        goto fail;
    }
    if (enf_guard_inode(c, action, p, &st, o) != 0)
        goto fail;
    if (st.st_nlink > 1) {
        /* another name of the same inode stays behind (and may be a protected file's) */
        enf_refuse(c, o, "hard_links", "refusing to %s %s: it has %lu hard links; its "
                   "other names would stay.", action, p, (unsigned long)st.st_nlink);
        goto fail;
    }
    return 0;
fail:
    close(*fd);
    *fd = -1;
    return -1;
}

/* The quarantine directory as a descriptor, or -1 with o failed. */
static int open_qdir(const enf_ctx_t *c, enf_outcome_t *o)
{
    int qfd = open(c->quarantine_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (qfd < 0)
        enf_fail(o, "cannot open the quarantine directory %s: %s.", c->quarantine_dir,
                 strerror(errno));
    return qfd;
}

void enf_quarantine(const enf_ctx_t *c, const char *action_id, const char *path,
                    const char *want_sha, enf_outcome_t *o)
{
    char         sha[65], as[4300], why[600], p[1100];
    struct stat  st;
    enf_target_t t;
    int          fd = -1, qfd = -1, rc;

    safe_copy(p, sizeof(p), path);
    rc = enf_resolve(c, "quarantine", path, &t, o);
    if (rc == ENF_RESOLVE_REFUSED)
        return;
    if (rc == ENF_RESOLVE_MISSING ||
        (fstatat(t.dirfd, t.name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)) {
        /* gone: fine if we are the ones who took it */
        int known;

        enf_target_close(&t);
        if (want_sha != NULL) {
            memcpy(sha, want_sha, 65);
            known = 1;
        } else {
            known = manifest_find(c->quarantine_dir, path, sha) == 0;
        }
        snprintf(as, sizeof(as), "%s/%s", c->quarantine_dir, known ? sha : "-");
        if (known && lstat(as, &st) == 0) {
            o->details = json_pack("{s:s, s:s}", "sha256", sha, "quarantined_as", as);
            enf_ok(o, "%s is already in quarantine as %s.", p, as);
            return;
        }
        enf_fail(o, "%s does not exist (and is not in quarantine).", p);
        return;
    }
    if (open_regular(c, "quarantine", t.dirfd, t.name, p, &fd, o) != 0)
        goto out;
    if (enf_sha256_fd(fd, sha, why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "cannot hash %s: %s.", p, why);
        goto out;
    }
    if (want_sha != NULL && strcmp(want_sha, sha) != 0) {
        o->details = json_pack("{s:s}", "sha256", sha);
        enf_fail(o, "%s has SHA-256 %s, not %s: not quarantined.", p, sha, want_sha);
        goto out;
    }
    if ((qfd = open_qdir(c, o)) < 0)
        goto out;
    if (enf_quarantine_fd(qfd, c->quarantine_dir, action_id, path, t.dirfd, t.name, fd, sha,
                          as, sizeof(as), why, sizeof(why)) != CWPP_OK) {
        enf_fail(o, "%s", why);
        goto out;
    }
    o->details = json_pack("{s:s, s:s}", "sha256", sha, "quarantined_as", as);
    enf_ok(o, "Moved %s into quarantine as %s.", p, as);
out:
    if (fd >= 0)
        close(fd);
    if (qfd >= 0)
        close(qfd);
    enf_target_close(&t);
}

/* ---------------------------------------------------------------- scan_file */

typedef struct sigs {
    char  (*sha)[65];
    size_t n, cap;
} sigs_t;

static int sig_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int sigs_load(const char *file, sigs_t *s, char *why, size_t whysz)
{
    FILE   *fp = fopen(file, "re");
    char   *line = NULL;
    size_t  cap = 0, lineno = 0;
    ssize_t len;
    int     rc = 0;

    memset(s, 0, sizeof(*s));
    if (fp == NULL) {
        snprintf(why, whysz, "cannot read the signature file %s: %s", file, strerror(errno));
        return -1;
    }
    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        char  *b = line, *hash = strchr(line, '#');
        size_t i;

        lineno++;
        if (hash != NULL)
            *hash = '\0';
        while (*b == ' ' || *b == '\t')
            b++;
        len = (ssize_t)strlen(b);
        while (len > 0 && (b[len - 1] == '\n' || b[len - 1] == '\r' || b[len - 1] == ' ' ||
                           b[len - 1] == '\t'))
            b[--len] = '\0';
        if (len == 0)
            continue;
        for (i = 0; i < (size_t)len; i++)
            if (b[i] >= 'A' && b[i] <= 'F')
                b[i] = (char)(b[i] - 'A' + 'a');
        if (!sha_valid(b)) {
            snprintf(why, whysz, "line %zu of the signature file %s is not a SHA-256 in hex",
                     lineno, file);
            rc = -1;
            break;
        }
        if (s->n == s->cap) {
            size_t ncap = s->cap ? 2 * s->cap : 256;
            void  *p = realloc(s->sha, ncap * sizeof(*s->sha));

            if (p == NULL) {
                snprintf(why, whysz, "out of memory");
                rc = -1;
                break;
            }
            s->sha = p;
            s->cap = ncap;
        }
        memcpy(s->sha[s->n++], b, 65);
    }
    free(line);
    fclose(fp);
    if (rc == 0 && s->n > 0)
        qsort(s->sha, s->n, sizeof(*s->sha), sig_cmp);
    if (rc != 0) {
        free(s->sha);
        memset(s, 0, sizeof(*s));
    }
    return rc;
}

static int sigs_has(const sigs_t *s, const char *sha)
{
    return s->n > 0 && bsearch(sha, s->sha, s->n, sizeof(*s->sha), sig_cmp) != NULL;
}

typedef struct scan {
    const enf_ctx_t *c;
    const char      *action_id;
    const sigs_t    *sigs;
    int              quarantine;
    int              qfd;     /* the quarantine directory, when quarantine */
    size_t           scanned, infected, quarantined, errors;
    json_t          *list;   /* [{path, sha256, quarantined_as?}] */
    char             first_error[300];
} scan_t;

/* Hashes the regular file at fd (named name in dirfd, shown as path) and records it. */
static void scan_one(scan_t *s, const char *path, int dirfd, const char *name, int fd)
{
    char        sha[65], why[600], as[4300], p[1100];
    json_t     *e;
    struct stat st;

    if (enf_sha256_fd(fd, sha, why, sizeof(why)) != CWPP_OK) {
        if (s->errors++ == 0)
            snprintf(s->first_error, sizeof(s->first_error), "%.200s: %.90s", path, why);
        return;
    }
    s->scanned++;
    if (!sigs_has(s->sigs, sha))
        return;
    s->infected++;
    safe_copy(p, sizeof(p), path);
    e = json_pack("{s:s, s:s}", "path", p, "sha256", sha);
    if (s->quarantine) {
        if (fstat(fd, &st) == 0 && st.st_nlink > 1) {
            json_object_set_new(e, "quarantine_error",
                                json_string("refused: it has more than one hard link"));
        } else if (enf_quarantine_fd(s->qfd, s->c->quarantine_dir, s->action_id, path, dirfd,
                                     name, fd, sha, as, sizeof(as), why,
                                     sizeof(why)) == CWPP_OK) {
            s->quarantined++;
            json_object_set_new(e, "quarantined_as", json_string(as));
        } else {
            cwpp_utf8_sanitize(why);
            json_object_set_new(e, "quarantine_error", json_string(why));
        }
    }
    json_array_append_new(s->list, e);
}

void enf_scan(const enf_ctx_t *c, const char *action_id, const char *path, int quarantine,
              enf_outcome_t *o)
{
    sigs_t      sigs;
    scan_t      s;
    char        why[600], p[1100];
    struct stat  st;
    enf_target_t t;
    int          fd = -1, truncated = 0, rc;

    t.dirfd = -1;
    safe_copy(p, sizeof(p), path);
    if (c->scan_signatures[0] == '\0') {
        enf_fail(o, "no signature file is configured (enforcer.scan.signatures).");
        return;
    }
    if (sigs_load(c->scan_signatures, &sigs, why, sizeof(why)) != 0) {
        enf_fail(o, "%s.", why);
        return;
    }
    memset(&s, 0, sizeof(s));
    s.c = c;
    s.action_id = action_id;
    s.sigs = &sigs;
    s.quarantine = quarantine;
    s.list = json_array();
    s.qfd = -1;
    rc = enf_resolve(c, "scan", path, &t, o);
    if (rc == ENF_RESOLVE_REFUSED)
        goto out;
    if (rc == ENF_RESOLVE_MISSING) {
        enf_fail(o, "cannot open %s: %s.", p, strerror(ENOENT));
        goto out;
    }
    fd = openat(t.dirfd, t.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            enf_fail(o, "%s is a symbolic link; only regular files and directories are "
                     "scanned.", p);
        else
            enf_fail(o, "cannot open %s: %s.", p, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        enf_fail(o, "cannot stat %s: %s.", p, strerror(errno));
        goto out;
    }
    if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
        enf_guard_inode(c, "scan", p, &st, o) != 0)
        goto out;
    if (quarantine && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
        (s.qfd = open_qdir(c, o)) < 0)
        goto out;
    if (S_ISREG(st.st_mode)) {
        scan_one(&s, path, t.dirfd, t.name, fd);
    } else if (S_ISDIR(st.st_mode)) {
        int            dfd = dup(fd);
        DIR           *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;

        if (d == NULL) {
            if (dfd >= 0)
                close(dfd);
            enf_fail(o, "cannot read the directory %s: %s.", p, strerror(errno));
            goto out;
        }
        while ((de = readdir(d)) != NULL) {
            char full[PATH_MAX + 300];
            int  f;

            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (s.scanned + s.errors >= ENF_SCAN_MAX) {
                truncated = 1;
                break;
            }
            f = openat(fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
                                           O_NOCTTY);
            if (f < 0)
                continue; /* symlinks (ELOOP) and vanished entries are not files to scan */
            if (fstat(f, &st) == 0 && S_ISREG(st.st_mode)) {
                if ((size_t)snprintf(full, sizeof(full), "%s%s%s", path,
                                     path[strlen(path) - 1] == '/' ? "" : "/", de->d_name) >=
                    sizeof(full)) {
                    if (s.errors++ == 0)
                        snprintf(s.first_error, sizeof(s.first_error), "%.200s: the path is "
                                 "too long", de->d_name);
                } else {
                    scan_one(&s, full, fd, de->d_name, f);
                }
            }
            close(f);
        }
        closedir(d);
    } else {
        enf_fail(o, "%s is neither a regular file nor a directory.", p);
        goto out;
    }
    o->details = json_pack("{s:I, s:O}", "scanned", (json_int_t)s.scanned, "infected", s.list);
    if (truncated)
        json_object_set_new(o->details, "truncated", json_true());
    if (s.errors > 0) {
        cwpp_utf8_sanitize(s.first_error);
        json_object_set_new(o->details, "unreadable", json_integer((json_int_t)s.errors));
        json_object_set_new(o->details, "first_unreadable", json_string(s.first_error));
    }
    if (s.infected == 0)
        enf_ok(o, "Scanned %zu file%s under %s against %zu signatures: clean%s%s.", s.scanned,
               s.scanned == 1 ? "" : "s", p, sigs.n,
               truncated ? " (stopped at the limit of 10000 files)" : "",
               s.errors > 0 ? "; some files could not be read" : "");
    else
        enf_ok(o, "Scanned %zu file%s under %s: %zu infected%s%s.", s.scanned,
               s.scanned == 1 ? "" : "s", p, s.infected,
               !quarantine ? "" : s.quarantined == s.infected ? ", all quarantined"
                                                                : ", not all could be quarantined",
               truncated ? " (stopped at the limit of 10000 files)" : "");
out:
    if (fd >= 0)
        close(fd);
    if (s.qfd >= 0)
        close(s.qfd);
    enf_target_close(&t);
    json_decref(s.list);
    free(sigs.sha);
}
