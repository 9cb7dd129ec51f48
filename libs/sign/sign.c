/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign.c: Ed25519 keys, key files and Action signatures (cwpp_sign.h) on libsodium.
 *
 * A key holds libsodium's 64-byte secret key (seed + public key) when it can sign, the
 * public key, and its id. Secrets are wiped (sodium_memzero) when freed and never
 * leave this file; the file readers wipe their buffers too.
 */
#include "cwpp_sign.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

struct cwpp_sign_key {
    unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed + public key; zero if verify-only */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    int           can_sign;
    char          id[CWPP_SIGN_KEY_ID_LEN + 1];
};

#define KEY_FILE_MAX 512 /* bytes a key file may hold: one base64 line and blanks */

static int start(char *errstr, size_t errstr_size)
{
    if (sodium_init() < 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "libsodium cannot start");
    return CWPP_OK;
}

static void set_id(cwpp_sign_key_t *k)
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, k->pk, sizeof(k->pk));
    sodium_bin2hex(k->id, sizeof(k->id), h, CWPP_SIGN_KEY_ID_LEN / 2);
}

/* An empty key once libsodium is initialised, or NULL with errstr. */
static cwpp_sign_key_t *key_new(char *errstr, size_t errstr_size)
{
    cwpp_sign_key_t *k;

    if (start(errstr, errstr_size) != CWPP_OK)
        return NULL;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    return k;
}

cwpp_sign_key_t *cwpp_sign_key_from_seed(const unsigned char seed[CWPP_SIGN_SEED_BYTES],
                                         char *errstr, size_t errstr_size)
{
    cwpp_sign_key_t *k = key_new(errstr, errstr_size);

    if (k == NULL)
        return NULL;
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    k->can_sign = 1;
    set_id(k);
    return k;
}

cwpp_sign_key_t *cwpp_sign_key_from_public(const unsigned char pk[CWPP_SIGN_PUB_BYTES],
                                           char *errstr, size_t errstr_size)
{
    cwpp_sign_key_t *k = key_new(errstr, errstr_size);

    if (k == NULL)
        return NULL;
    memcpy(k->pk, pk, sizeof(k->pk));
    set_id(k);
    return k;
}

void cwpp_sign_key_destroy(cwpp_sign_key_t *k)
{
    if (k == NULL)
        return;
    sodium_memzero(k, sizeof(*k));
    free(k);
}

const char *cwpp_sign_key_id(const cwpp_sign_key_t *k)
{
    return k->id;
}

const unsigned char *cwpp_sign_key_public(const cwpp_sign_key_t *k)
{
    return k->pk;
}

int cwpp_sign_key_can_sign(const cwpp_sign_key_t *k)
{
    return k->can_sign;
}

/*
 * Reads the key file at path and decodes its one base64 line into out (exactly want
 * bytes). secret: the file must be a regular file without group/other permissions.
 */
static int read_key_file(const char *path, int secret, unsigned char *out, size_t want,
                         char *errstr, size_t errstr_size)
{
    char          text[KEY_FILE_MAX + 1];
    unsigned char bin[64];
    size_t        len = 0, binlen = 0;
    const char   *end = NULL;
    struct stat   st;
    int           fd, rc = CWPP_OK;
    ssize_t       n;
    const char   *what = secret ? "secret key file" : "public key file";

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot open the %s %s: %s", what,
                           path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "the %s %s is not a regular file",
                         what, path);
        goto out;
    }
    if (secret && (st.st_mode & 077) != 0) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "the %s %s may be read or written by group or other (mode %03o): "
                         "chmod 600 it", what, path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    while (len < sizeof(text) - 1 && (n = read(fd, text + len, sizeof(text) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot read the %s %s: %s", what,
                             path, strerror(errno));
            goto out;
        }
        len += (size_t)n;
    }
    if (len >= sizeof(text) - 1) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "the %s %s is too long for one base64 line", what, path);
        goto out;
    }
    text[len] = '\0';
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &binlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text + len || binlen != want) {
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                         "the %s %s must hold one line of base64 for %zu bytes", what, path,
                         want);
        goto out;
    }
    memcpy(out, bin, want);
out:
    sodium_memzero(text, sizeof(text));
    sodium_memzero(bin, sizeof(bin));
    close(fd);
    return rc;
}

cwpp_sign_key_t *cwpp_sign_load_secret(const char *path, char *errstr, size_t errstr_size)
{
    unsigned char    seed[CWPP_SIGN_SEED_BYTES];
    cwpp_sign_key_t *k = NULL;

    if (start(errstr, errstr_size) != CWPP_OK)
        return NULL;
    if (read_key_file(path, 1, seed, sizeof(seed), errstr, errstr_size) == CWPP_OK)
        k = cwpp_sign_key_from_seed(seed, errstr, errstr_size);
    sodium_memzero(seed, sizeof(seed));
    return k;
}

cwpp_sign_key_t *cwpp_sign_load_public(const char *path, char *errstr, size_t errstr_size)
{
    unsigned char pk[CWPP_SIGN_PUB_BYTES];

    if (start(errstr, errstr_size) != CWPP_OK)
        return NULL;
    if (read_key_file(path, 0, pk, sizeof(pk), errstr, errstr_size) != CWPP_OK)
        return NULL;
    return cwpp_sign_key_from_public(pk, errstr, errstr_size);
}

/* ----------------------------------------------------------- canonical bytes */

static int put_str(cwpp_buf_t *b, const char *s)
{
    size_t        len = strlen(s);
    unsigned char p[4];

    if (len > UINT32_MAX)
        return CWPP_EINVAL;
    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
    if (cwpp_buf_append(b, p, 4) != CWPP_OK)
        return CWPP_ENOMEM;
    return cwpp_buf_append(b, s, len);
}

static int put_be(cwpp_buf_t *b, uint64_t v, int bytes)
{
    unsigned char p[8];
    int           i;

    for (i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return cwpp_buf_append(b, p, (size_t)bytes);
}

int cwpp_sign_canonical(const cwpp_sign_action_t *a, cwpp_buf_t *out)
{
    const char *const strs[] = {a->action_id, a->task_id,  a->policy_id,   a->event_id,
                                a->account_id, a->asset_id, a->action, a->params_json,
                                a->key_id};
    size_t            mark = out->len, i;
    int               rc;

    rc = cwpp_buf_append(out, CWPP_SIGN_TAG, sizeof(CWPP_SIGN_TAG)); /* with its NUL */
    for (i = 0; rc == CWPP_OK && i < sizeof(strs) / sizeof(strs[0]); i++) {
        assert(strs[i] != NULL);
        rc = put_str(out, strs[i]);
    }
    if (rc == CWPP_OK)
        rc = put_be(out, (uint64_t)(uint32_t)a->attempt, 4);
    if (rc == CWPP_OK)
        rc = put_be(out, (uint64_t)a->issued_at_ms, 8);
    if (rc == CWPP_OK)
        rc = put_be(out, (uint64_t)a->deadline_ms, 8);
    if (rc != CWPP_OK)
        out->len = mark;
    return rc;
}

int cwpp_sign_action(const cwpp_sign_key_t *k, const cwpp_sign_action_t *a,
                     unsigned char sig[CWPP_SIGN_BYTES], char *errstr, size_t errstr_size)
{
    cwpp_buf_t b = {0};
    int        rc;

    if (!k->can_sign)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "key %s is a public key: it cannot sign", k->id);
    if (a->key_id == NULL || strcmp(a->key_id, k->id) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "the action's key_id is not the signing key's id %s", k->id);
    if ((rc = cwpp_sign_canonical(a, &b)) != CWPP_OK) {
        cwpp_buf_free(&b);
        return cwpp_seterr(errstr, errstr_size, rc, rc == CWPP_ENOMEM ? "out of memory"
                                                                      : "a field is too long");
    }
    crypto_sign_detached(sig, NULL, b.data, b.len, k->sk);
    cwpp_buf_free(&b);
    return CWPP_OK;
}

const char *cwpp_sign_verdict_name(cwpp_sign_verdict_t v)
{
    switch (v) {
    case CWPP_SIGN_VALID: return "valid";
    case CWPP_SIGN_UNSIGNED: return "unsigned";
    case CWPP_SIGN_UNKNOWN_KEY: return "unknown_key";
    case CWPP_SIGN_MALFORMED: return "malformed_signature";
    case CWPP_SIGN_BAD: return "bad_signature";
    }
    return "bad_signature";
}

cwpp_sign_verdict_t cwpp_sign_verify(const cwpp_sign_key_t *k, const cwpp_sign_action_t *a,
                                     const unsigned char *sig, size_t sig_len, char *why,
                                     size_t why_size)
{
    cwpp_buf_t          b = {0};
    cwpp_sign_verdict_t v = CWPP_SIGN_VALID;
    const char         *kid = a->key_id != NULL ? a->key_id : "";

    if (sig_len == 0 && kid[0] == '\0') {
        v = CWPP_SIGN_UNSIGNED;
        cwpp_seterr(why, why_size, CWPP_EINVAL, "the action is not signed");
    } else if (strcmp(kid, k->id) != 0) {
        v = CWPP_SIGN_UNKNOWN_KEY;
        cwpp_seterr(why, why_size, CWPP_EINVAL,
                    "the action is signed by key %.16s%s, not by the trusted key %s", kid,
                    strlen(kid) > 16 ? "..." : "", k->id);
    } else if (sig == NULL || sig_len != CWPP_SIGN_BYTES) {
        v = CWPP_SIGN_MALFORMED;
        cwpp_seterr(why, why_size, CWPP_EINVAL,
                    "the action's signature has %zu bytes, not %d", sig_len, CWPP_SIGN_BYTES);
    } else if (cwpp_sign_canonical(a, &b) != CWPP_OK) {
        v = CWPP_SIGN_BAD;
        cwpp_seterr(why, why_size, CWPP_EINVAL, "cannot verify the action's signature");
    } else if (crypto_sign_verify_detached(sig, b.data, b.len, k->pk) != 0) {
        v = CWPP_SIGN_BAD;
        cwpp_seterr(why, why_size, CWPP_EINVAL,
                    "the action's signature does not match its content (key %s)", k->id);
    }
    cwpp_buf_free(&b);
    return v;
}

/* ------------------------------------------------------------------ generate */

/* Creates path (O_EXCL, mode) holding line. */
static int write_new(const char *path, const char *line, mode_t mode, char *errstr,
                     size_t errstr_size)
{
    size_t len = strlen(line), done = 0;
    int    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);

    if (fd < 0)
        return cwpp_seterr(errstr, errstr_size, errno == EEXIST ? CWPP_EINVAL : CWPP_EIO,
                           "cannot create %s: %s", path,
                           errno == EEXIST ? "it exists (not overwritten)" : strerror(errno));
    while (done < len) {
        ssize_t w = write(fd, line + done, len - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (done < len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        int err = errno;

        close(fd);
        unlink(path);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot write %s: %s", path,
                           strerror(err));
    }
    close(fd);
    return CWPP_OK;
}

int cwpp_sign_generate(const char *dir, char key_id[CWPP_SIGN_KEY_ID_LEN + 1], char *errstr,
                       size_t errstr_size)
{
    unsigned char    seed[CWPP_SIGN_SEED_BYTES];
    char             b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL) + 1];
    char             kpath[4096], ppath[4096];
    cwpp_sign_key_t *k = NULL;
    struct stat      st;
    int              rc;

    if (start(errstr, errstr_size) != CWPP_OK)
        return CWPP_EIO;
    snprintf(kpath, sizeof(kpath), "%s/action-signing.key", dir);
    snprintf(ppath, sizeof(ppath), "%s/action-signing.pub", dir);
    if (lstat(kpath, &st) == 0 || lstat(ppath, &st) == 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "%s or %s exists already: not overwritten", kpath, ppath);
    randombytes_buf(seed, sizeof(seed));
    if ((k = cwpp_sign_key_from_seed(seed, errstr, errstr_size)) == NULL) {
        rc = CWPP_ENOMEM;
        goto out;
    }
    sodium_bin2base64(b64, sizeof(b64) - 1, seed, sizeof(seed), sodium_base64_VARIANT_ORIGINAL);
    strcat(b64, "\n");
    if ((rc = write_new(kpath, b64, 0600, errstr, errstr_size)) != CWPP_OK)
        goto out;
    sodium_bin2base64(b64, sizeof(b64) - 1, k->pk, sizeof(k->pk),
                      sodium_base64_VARIANT_ORIGINAL);
    strcat(b64, "\n");
    if ((rc = write_new(ppath, b64, 0644, errstr, errstr_size)) != CWPP_OK) {
        unlink(kpath);
        goto out;
    }
    memcpy(key_id, k->id, sizeof(k->id));
out:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(b64, sizeof(b64));
    cwpp_sign_key_destroy(k);
    return rc;
}
