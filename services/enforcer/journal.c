/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.c: the enforcer's memory of what it did, so each action_id is applied once.
 *
 * The file <state_dir>/journal.jsonl holds one JSON object per line, the full result
 * sent for one action_id (the fields of ActionResult, details_json as text). It is only
 * appended to while the agent runs; the batch syncs it (write + fsync) before it
 * returns, that is before the results are produced and the offsets committed, so an
 * action the broker redelivers after a crash is found here. A line cut short by a crash
 * mid-write is skipped at load; a failed write is cut back (ftruncate) so the next one
 * starts on a line boundary.
 *
 * In memory: a chained hash table of action_id -> result, and a ring of the entries in
 * arrival order that bounds the table to max (the oldest is forgotten first). Loading
 * keeps the latest max lines; when the file held more, or bad lines, it is rewritten
 * (temp file, fsync, rename, fsync of the directory). While running, the file is
 * rewritten when it reaches twice max lines.
 *
 * The floor: each result carries the issued_at_ms of its action; the greatest one among
 * the entries forgotten (evicted, or dropped at load) is the journal's floor, and the
 * agent refuses any action issued at or before it, since the journal could no longer
 * tell whether it was applied. A compacted file keeps it in a first line
 * {"floor_issued_at_ms": N}.
 */
#include "enf_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cwpp_log.h"

typedef struct jent {
    struct jent *next;      /* hash chain */
    char        *id;        /* action_id (owned) */
    json_t      *result;    /* the result object (one reference) */
    int64_t      issued;    /* its action's issued_at_ms (0: unknown) */
} jent_t;

struct enf_journal {
    char       *path;
    int         fd;         /* O_APPEND */
    jent_t    **buckets;
    size_t      nbuckets;   /* a power of two */
    jent_t    **ring;       /* entries in arrival order, max slots */
    size_t      max, head, count; /* oldest at ring[head] */
    size_t      file_lines; /* lines in the file (good or not) */
    off_t       file_size;  /* bytes known to be whole lines */
    cwpp_buf_t  pending;    /* lines put since the last sync */
    size_t      pending_lines;
    int64_t     floor;      /* greatest issued_at_ms of the entries forgotten */
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;

    while (*s != '\0')
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static jent_t **slot(enf_journal_t *j, const char *id)
{
    jent_t **p = &j->buckets[hash(id) & (j->nbuckets - 1)];

    while (*p != NULL && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

static void evict_oldest(enf_journal_t *j)
{
    jent_t  *e = j->ring[j->head];
    jent_t **p = slot(j, e->id);

    assert(*p == e);
    *p = e->next;
    if (e->issued > j->floor)
        j->floor = e->issued;
    json_decref(e->result);
    free(e->id);
    free(e);
    j->ring[j->head] = NULL;
    j->head = (j->head + 1) % j->max;
    j->count--;
}

/* Inserts without queueing a line. 1 if inserted, 0 if the id was known, -1 ENOMEM. */
static int insert(enf_journal_t *j, const char *id, json_t *result)
{
    jent_t **p = slot(j, id), *e;

    if (*p != NULL)
        return 0;
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->id = strdup(id)) == NULL) {
        free(e);
        return -1;
    }
    if (j->count == j->max) {
        evict_oldest(j);
        p = slot(j, id); /* the chain may have changed */
    }
    e->result = json_incref(result);
    e->issued = (int64_t)json_integer_value(json_object_get(result, "issued_at_ms"));
    *p = e;
    j->ring[(j->head + j->count) % j->max] = e;
    j->count++;
    return 1;
}

static int append_line(cwpp_buf_t *b, json_t *result)
{
    char *s = json_dumps(result, JSON_COMPACT);
    int   rc;

    if (s == NULL)
        return CWPP_ENOMEM;
    rc = cwpp_buf_puts(b, s);
    if (rc == CWPP_OK)
        rc = cwpp_buf_append(b, "\n", 1);
    free(s);
    return rc;
}

/* Rewrites the file with the entries held, oldest first, and reopens it. */
static int compact(enf_journal_t *j, char *errstr, size_t errstr_size)
{
    cwpp_buf_t b = {0};
    size_t     i;
    int        rc = CWPP_OK;

    if (j->floor > 0) {
        json_t *f = json_pack("{s:I}", "floor_issued_at_ms", (json_int_t)j->floor);

        rc = f != NULL ? append_line(&b, f) : CWPP_ENOMEM;
        json_decref(f);
    }
    for (i = 0; rc == CWPP_OK && i < j->count; i++)
        rc = append_line(&b, j->ring[(j->head + i) % j->max]->result);
    if (rc == CWPP_OK)
        rc = cwpp_buf_append(&b, j->pending.data != NULL ? j->pending.data : (unsigned char *)"",
                             j->pending.len);
    if (rc != CWPP_OK) {
        cwpp_buf_free(&b);
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    }
    if ((rc = enf_rewrite_file(j->path, b.data != NULL ? b.data : (unsigned char *)"",
                               b.len, 0600, errstr, errstr_size)) != CWPP_OK) {
        cwpp_buf_free(&b);
        return rc;
    }
    if (j->fd >= 0)
        close(j->fd);
    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (j->fd < 0) {
        cwpp_buf_free(&b);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot open the journal %s: %s",
                           j->path, strerror(errno));
    }
    cwpp_info("journal_compacted", "rewrote the journal %s: %zu lines down to %zu", j->path,
              j->file_lines, j->count + j->pending_lines);
    j->file_size = (off_t)b.len;
    j->file_lines = j->count + j->pending_lines;
    cwpp_buf_reset(&j->pending);
    j->pending_lines = 0;
    cwpp_buf_free(&b);
    return CWPP_OK;
}

static int load(enf_journal_t *j, char *errstr, size_t errstr_size)
{
    FILE   *fp = fopen(j->path, "re");
    char   *line = NULL;
    size_t  cap = 0, bad = 0, dup = 0;
    ssize_t len;
    off_t   whole = 0; /* bytes up to the end of the last whole line */
    int     rc = CWPP_OK;

    if (fp == NULL)
        return errno == ENOENT ? CWPP_OK
                               : cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                                             "cannot read the journal %s: %s", j->path,
                                             strerror(errno));
    while (rc == CWPP_OK && (len = getline(&line, &cap, fp)) >= 0) {
        json_error_t jerr;
        json_t      *r;
        const char  *id;

        j->file_lines++;
        if (len == 0 || line[len - 1] != '\n') { /* cut short by a crash */
            bad++;
            continue;
        }
        whole += (off_t)len;
        r = json_loadb(line, (size_t)len, 0, &jerr);
        id = json_string_value(json_object_get(r, "action_id"));
        if (id == NULL && json_is_integer(json_object_get(r, "floor_issued_at_ms"))) {
            int64_t f = (int64_t)json_integer_value(json_object_get(r, "floor_issued_at_ms"));

            if (f > j->floor)
                j->floor = f;
            j->file_lines--; /* not an entry: compaction writes it again */
            json_decref(r);
            continue;
        }
        if (!json_is_object(r) || id == NULL || id[0] == '\0' ||
            json_string_value(json_object_get(r, "status")) == NULL) {
            json_decref(r);
            bad++;
            continue;
        }
        /* a later line of the same id should not exist; the first one is what was sent */
        switch (insert(j, id, r)) {
        case 0: dup++; break;
        case 1: break;
        default: rc = cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        }
        json_decref(r);
    }
    free(line);
    fclose(fp);
    if (rc == CWPP_OK && bad > 0)
        cwpp_warn("journal_bad_lines", "skipped %zu unreadable lines of the journal %s", bad,
                  j->path);
    if (rc == CWPP_OK && (j->file_lines > j->count)) {
        rc = compact(j, errstr, errstr_size);
        /* a full disk does not keep the agent from starting: the file stays as it is,
         * less a line cut short at its end (cutting needs no space), and new lines are
         * appended after it as usual */
        if (rc == CWPP_ETRANSIENT) {
            cwpp_warn("journal_compact_failed", "%s; keeping the journal as it is", errstr);
            if (truncate(j->path, whole) != 0)
                cwpp_warn("journal_truncate_failed", "cannot cut back the journal %s: %s",
                          j->path, strerror(errno));
            rc = CWPP_OK;
        }
    }
    (void)dup;
    return rc;
}

enf_journal_t *enf_journal_open(const char *path, size_t max, char *errstr,
                                size_t errstr_size)
{
    enf_journal_t *j = calloc(1, sizeof(*j));
    struct stat    st;

    if (max < 1)
        max = 1;
    if (j == NULL || (j->path = strdup(path)) == NULL)
        goto nomem;
    j->fd = -1;
    j->max = max;
    for (j->nbuckets = 64; j->nbuckets < 2 * max; j->nbuckets *= 2)
        ;
    j->buckets = calloc(j->nbuckets, sizeof(*j->buckets));
    j->ring = calloc(max, sizeof(*j->ring));
    if (j->buckets == NULL || j->ring == NULL)
        goto nomem;
    if (load(j, errstr, errstr_size) != CWPP_OK) {
        enf_journal_destroy(j);
        return NULL;
    }
    if (j->fd < 0 && (j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot open the journal %s: %s", path,
                    strerror(errno));
        enf_journal_destroy(j);
        return NULL;
    }
    if (fstat(j->fd, &st) == 0)
        j->file_size = st.st_size;
    return j;
nomem:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    enf_journal_destroy(j);
    return NULL;
}

json_t *enf_journal_get(enf_journal_t *j, const char *action_id)
{
    jent_t *e = *slot(j, action_id);

    return e != NULL ? e->result : NULL;
}

int enf_journal_put(enf_journal_t *j, const char *action_id, json_t *result)
{
    size_t mark = j->pending.len;
    int    rc;

    if ((rc = append_line(&j->pending, result)) != CWPP_OK) {
        j->pending.len = mark;
        return CWPP_ENOMEM;
    }
    switch (insert(j, action_id, result)) {
    case 1:
        j->pending_lines++;
        return CWPP_OK;
    case 0: /* known already: nothing to remember */
        j->pending.len = mark;
        return CWPP_OK;
    default:
        j->pending.len = mark;
        return CWPP_ENOMEM;
    }
}

int enf_journal_sync(enf_journal_t *j, char *errstr, size_t errstr_size)
{
    size_t done = 0;

    if (j->pending.len == 0)
        return CWPP_OK;
    if (cwpp_fault_hit("enforcer.journal_write")) {
        errno = EIO;
        goto fail;
    }
    if (cwpp_fault_hit("enforcer.disk_full")) {
        errno = ENOSPC;
        goto fail;
    }
    while (done < j->pending.len) {
        ssize_t w = write(j->fd, j->pending.data + done, j->pending.len - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0)
            errno = ENOSPC;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    if (fsync(j->fd) != 0)
        goto fail;
    j->file_size += (off_t)j->pending.len;
    j->file_lines += j->pending_lines;
    cwpp_buf_reset(&j->pending);
    j->pending_lines = 0;
    if (j->file_lines >= 2 * j->max) {
        char why[512];

        if (compact(j, why, sizeof(why)) != CWPP_OK)
            cwpp_warn("journal_compact_failed", "%s", why); /* the appended file is intact */
    }
    return CWPP_OK;
fail:
    {
        int err = errno;

        if (ftruncate(j->fd, j->file_size) != 0)
            cwpp_warn("journal_truncate_failed", "cannot cut back the journal %s: %s", j->path,
                      strerror(errno));
        return cwpp_seterr(errstr, errstr_size,
                           enf_errno_disk_full(err) ? CWPP_ETRANSIENT : CWPP_EIO,
                           "cannot write the journal %s: %s", j->path, strerror(err));
    }
}

size_t enf_journal_pending(const enf_journal_t *j)
{
    return j->pending_lines;
}

int64_t enf_journal_floor(const enf_journal_t *j)
{
    return j->floor;
}

size_t enf_journal_count(const enf_journal_t *j)
{
    return j->count;
}

size_t enf_journal_file_lines(const enf_journal_t *j)
{
    return j->file_lines;
}

void enf_journal_destroy(enf_journal_t *j)
{
    if (j == NULL)
        return;
    while (j->ring != NULL && j->count > 0)
        evict_oldest(j);
    if (j->fd >= 0)
        close(j->fd);
    cwpp_buf_free(&j->pending);
    free(j->buckets);
    free(j->ring);
    free(j->path);
    free(j);
}
