/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nft.c: nftables changes in a forked child.
 *
 * The agent is multi-threaded (librdkafka's threads, the HTTP listener), and setns()
 * with CLONE_NEWNET changes the namespace of the calling thread only; sockets librdkafka
 * opens later on that thread would land in the wrong namespace. So every nftables change
 * runs in a child: fork, setns() into enforcer.netns when it is set, libnftables, write
 * the outcome to a pipe, _exit. The child touches nothing of the parent's state (no
 * logging, no Kafka). The same path runs without a namespace, so the tested path is the
 * production path.
 *
 * A libnftables call runs in the calling process and cannot be interrupted (a netlink
 * request the kernel never answers, a lock held elsewhere), which is one more reason it
 * lives in the child: the parent waits for it with a deadline (enforcer.nft.timeout.ms)
 * and kills it past that (enf_wait_child), so a hung nftables change fails its action
 * and the agent goes on with the next one.
 *
 * Pipe protocol, child to parent: one byte per script run, '0' (ran) or '1' (failed);
 * after a failing non-probe script, 'E' and nft's error text up to EOF.
 */
#include "enf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#define NFT_ERR_MAX 2048

static void put(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        len -= (size_t)w;
    }
}

/* The child: never returns. hang: the test fault "enforcer.nft_hang" (decided in the
 * parent, where the fault counter lives). */
static void child(int nsfd, int wfd, enf_nft_cmd_t *cmds, size_t n, int hang)
{
    struct nft_ctx *ctx;
    size_t          i;

    while (hang)
        pause(); /* a libnftables call that never returns */

    if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0) {
        char msg[256];

        snprintf(msg, sizeof(msg), "Esetns into the network namespace failed: %s",
                 strerror(errno));
        put(wfd, msg, strlen(msg));
        _exit(1);
    }
    if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL || nft_ctx_buffer_error(ctx) != 0 ||
        nft_ctx_buffer_output(ctx) != 0) {
        put(wfd, "Ecannot create a libnftables context", 36);
        _exit(1);
    }
    for (i = 0; i < n; i++) {
        int rc = nft_run_cmd_from_buffer(ctx, cmds[i].text);

        put(wfd, rc == 0 ? "0" : "1", 1);
        if (rc != 0 && !cmds[i].probe) {
            const char *e = nft_ctx_get_error_buffer(ctx);

            put(wfd, "E", 1);
            put(wfd, e != NULL ? e : "", e != NULL ? strlen(e) : 0);
            _exit(1);
        }
    }
    _exit(0);
}

/* Trims nft's multi-line error (message, the command, a caret line) to its first line
 * that says something, without the trailing newline. */
static void first_line(char *s)
{
    char *nl;

    while (*s == '\n')
        memmove(s, s + 1, strlen(s));
    if ((nl = strchr(s, '\n')) != NULL)
        *nl = '\0';
}

int enf_nft_run(const char *netns, int timeout_ms, enf_nft_cmd_t *cmds, size_t n,
                char *errstr, size_t errstr_size)
{
    char    buf[NFT_ERR_MAX + 256];
    size_t  i;
    int     p[2], nsfd = -1, status = 0, rc = CWPP_OK, hang;
    int64_t until;
    pid_t   pid;

    if (timeout_ms <= 0)
        timeout_ms = ENF_NFT_MS;
    for (i = 0; i < n; i++)
        cmds[i].rc = -1;
    if (netns != NULL && netns[0] != '\0' &&
        (nsfd = open(netns, O_RDONLY | O_CLOEXEC)) < 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                           "cannot open the network namespace %s: %s", netns, strerror(errno));
    if (pipe2(p, O_CLOEXEC) != 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "pipe: %s", strerror(errno));
        goto out;
    }
    hang = cwpp_fault_hit("enforcer.nft_hang");
    if ((pid = fork()) < 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        goto out;
    }
    if (pid == 0) {
        close(p[0]);
        child(nsfd, p[1], cmds, n, hang);
    }
    close(p[1]);
    until = cwpp_mono_ms() + timeout_ms;
    if (enf_wait_child(pid, 0, p[0], until, buf, sizeof(buf), &status) != CWPP_OK) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                         "the nftables helper process did not finish within %d ms "
                         "(enforcer.nft.timeout.ms) and was killed", timeout_ms);
        goto out;
    }
    for (i = 0; buf[i] != '\0' && i < n && (buf[i] == '0' || buf[i] == '1'); i++)
        cmds[i].rc = buf[i] - '0';
    if (buf[i] == 'E') {
        first_line(buf + i + 1);
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "nft: %s", buf + i + 1);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || i < n) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO,
                         "the nftables helper process %s %d before it finished",
                         WIFSIGNALED(status) ? "died of signal" : "exited with status",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
out:
    if (nsfd >= 0)
        close(nsfd);
    return rc;
}
