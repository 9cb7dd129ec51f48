/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spawn.c: running a helper program (usermod, the WAF reload command) without a shell,
 * by its absolute path only, with a minimal environment of its own (PATH, LANG=C:
 * nothing of the agent's, which may hold secrets or LD_* variables, is inherited),
 * with a deadline past which its process group is killed, and describing how it ended;
 * the wait with a deadline that the nftables child shares; the check of account names
 * handed to usermod.
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

int enf_user_valid(const char *u)
{
    size_t i;

    if (u == NULL || !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
        return 0;
    for (i = 1; u[i] != '\0'; i++)
        if (i > 31 || !((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') ||
                        u[i] == '_' || u[i] == '-'))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- spawning */

/*
 * Children killed at their deadline that did not die within a second (stuck in the
 * kernel, e.g. a netlink call that never returns): reaped with WNOHANG on later waits,
 * so they do not stay zombies. Past ORPHANS_MAX stuck at once they are forgotten.
 */
#define ORPHANS_MAX 16
static pid_t orphans[ORPHANS_MAX];

static void reap_orphans(void)
{
    int    st;
    size_t i;

    for (i = 0; i < ORPHANS_MAX; i++)
        if (orphans[i] > 0 && waitpid(orphans[i], &st, WNOHANG) != 0)
            orphans[i] = 0; /* reaped, or not ours any more */
}

static void remember_orphan(pid_t pid)
{
    size_t i;

    for (i = 0; i < ORPHANS_MAX; i++)
        if (orphans[i] <= 0) {
            orphans[i] = pid;
            return;
        }
}

int enf_wait_child(pid_t pid, pid_t pgrp, int fd, int64_t deadline_ms, char *out,
                   size_t out_size, int *status)
{
    size_t  got = 0;
    int     timed_out = 0, i;
    int64_t until;

    reap_orphans();
    if (out_size > 0)
        out[0] = '\0';
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t       left = deadline_ms - cwpp_mono_ms();
        char          sink[512];
        ssize_t       r;

        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
            break;
        if (pfd.revents == 0)
            continue;
        if (got + 1 < out_size)
            r = read(fd, out + got, out_size - 1 - got);
        else
            r = read(fd, sink, sizeof(sink));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (got + 1 < out_size) {
            got += (size_t)r;
            out[got] = '\0';
        }
    }
    close(fd);
    /* EOF: the child normally exits now; one that closed its output and goes on is
     * still held to the deadline */
    while (!timed_out) {
        pid_t w = waitpid(pid, status, WNOHANG);

        if (w == pid || (w < 0 && errno != EINTR)) /* < 0: not ours (cannot happen) */
            return CWPP_OK;
        if (cwpp_mono_ms() >= deadline_ms)
            break;
        poll(NULL, 0, 5);
    }
    /* past the deadline: whatever it started dies with it, even if it has exited */
    kill(pgrp > 0 ? -pgrp : pid, SIGKILL);
    if (pgrp > 0)
        kill(pid, SIGKILL); /* in case it left its group */
    until = cwpp_mono_ms() + 1000;
    for (i = 0;; i++) {
        pid_t w = waitpid(pid, status, WNOHANG);

        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (cwpp_mono_ms() >= until) {
            remember_orphan(pid);
            break;
        }
        poll(NULL, 0, i < 10 ? 1 : 10);
    }
    return CWPP_EIO;
}

int enf_spawn(char *const argv[], int timeout_ms, char *out, size_t out_size, int *status,
              char *errstr, size_t errstr_size)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          at;
    sigset_t                   none, def;
    int                        p[2], rc;
    int64_t                    until;
    pid_t                      pid;

    static char *const env[] = {ENF_CHILD_PATH, "LANG=C", NULL};

    if (timeout_ms <= 0)
        timeout_ms = ENF_SPAWN_MS;
    if (out_size > 0)
        out[0] = '\0';
    if (argv[0] == NULL || argv[0][0] != '/')
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot run %s: not an absolute "
                           "path", argv[0] != NULL ? argv[0] : "(nothing)");
    if (pipe2(p, O_CLOEXEC) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE); /* the agent ignores it; the command should not */
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    /* its own process group: at the deadline what it started dies with it */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(&pid, argv[0], &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot run %s: %s", argv[0],
                           strerror(rc));
    }
    until = cwpp_mono_ms() + timeout_ms;
    if (enf_wait_child(pid, pid, p[0], until, out, out_size, status) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                           "%s did not finish within %d ms and was killed", argv[0],
                           timeout_ms);
    return CWPP_OK;
}

/* The first line of a command's output, sanitized, into buf. */
const char *enf_first_line(const char *s, char *buf, size_t size)
{
    size_t n = strcspn(s, "\n");

    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), s);
    cwpp_utf8_sanitize(buf);
    return buf;
}

/* Describes a waitpid status: "exited with status 3" / "was killed by signal 9". */
const char *enf_status_text(int st, char *buf, size_t size)
{
    if (WIFEXITED(st))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "was killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "ended with wait status %d", st);
    return buf;
}
