/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign: Ed25519 signatures of response Actions (libsodium), so an enforcement agent acts
 * only on what the responder issued (docs/actions.md "Signatures").
 *
 * The signed message is the Action's canonical bytes, every field but the signature
 * itself, in the schema's order, length-prefixed (cwpp_sign_canonical):
 *
 *   "cwpp-action-sig-v1" 0x00
 *   for action_id, task_id, policy_id, event_id, account_id, asset_id, action,
 *       params_json, key_id:  uint32 big-endian byte length, then the UTF-8 bytes
 *   attempt       int32 big-endian (two's complement)
 *   issued_at_ms  int64 big-endian
 *   deadline_ms   int64 big-endian
 *
 * Key files hold one line of standard base64 (with padding): the secret file the
 * 32-byte Ed25519 seed (it must not be readable by group or other), the public file the
 * 32-byte public key. A key's id is the first 8 bytes of SHA-256(public key), as 16
 * lower-case hex digits; the Action carries it so an agent can tell "signed by another
 * key" from "tampered with".
 *
 * Keys are immutable once loaded: one key may be used from any thread.
 */
#ifndef CWPP_SIGN_H
#define CWPP_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "cwpp_util.h"

#define CWPP_SIGN_BYTES      64  /* an Ed25519 signature */
#define CWPP_SIGN_SEED_BYTES 32  /* the secret key file's content */
#define CWPP_SIGN_PUB_BYTES  32  /* the public key file's content */
#define CWPP_SIGN_KEY_ID_LEN 16  /* hex digits of a key id */
#define CWPP_SIGN_TAG        "cwpp-action-sig-v1"

typedef struct cwpp_sign_key cwpp_sign_key_t;

/* The fields of an Action that are signed (strings NUL-terminated, none NULL). */
typedef struct cwpp_sign_action {
    const char *action_id, *task_id, *policy_id, *event_id, *account_id, *asset_id;
    const char *action, *params_json, *key_id;
    int32_t     attempt;
    int64_t     issued_at_ms, deadline_ms;
} cwpp_sign_action_t;

/* A key from a 32-byte seed (a signing key) or a 32-byte public key (verify only).
 * Return NULL with errstr when libsodium cannot start or out of memory. */
cwpp_sign_key_t *cwpp_sign_key_from_seed(const unsigned char seed[CWPP_SIGN_SEED_BYTES],
                                         char *errstr, size_t errstr_size);
cwpp_sign_key_t *cwpp_sign_key_from_public(const unsigned char pk[CWPP_SIGN_PUB_BYTES],
                                           char *errstr, size_t errstr_size);

/*
 * Loads the secret key file at path (one base64 line: the 32-byte seed). Refuses a file
 * that is not a regular file, or that group or other may read or write (chmod 600).
 * Returns a new key (cwpp_sign_key_destroy) or NULL with errstr naming the file.
 */
cwpp_sign_key_t *cwpp_sign_load_secret(const char *path, char *errstr, size_t errstr_size);
/* Loads the public key file at path (one base64 line: 32 bytes). As above. */
cwpp_sign_key_t *cwpp_sign_load_public(const char *path, char *errstr, size_t errstr_size);

/* Wipes and frees k; accepts NULL. */
void cwpp_sign_key_destroy(cwpp_sign_key_t *k);

/* The key's id (16 hex digits, NUL-terminated; owned by k). Cannot fail. */
const char *cwpp_sign_key_id(const cwpp_sign_key_t *k);
/* The key's public key (32 bytes, owned by k). Cannot fail. */
const unsigned char *cwpp_sign_key_public(const cwpp_sign_key_t *k);
/* 1 when k can sign (was made from a seed). */
int cwpp_sign_key_can_sign(const cwpp_sign_key_t *k);

/* Appends the canonical bytes of a to out. Returns 0 or CWPP_ENOMEM (out unchanged),
 * CWPP_EINVAL when a string is longer than 4 GiB. */
int cwpp_sign_canonical(const cwpp_sign_action_t *a, cwpp_buf_t *out);

/*
 * Signs a (whose key_id must be cwpp_sign_key_id(k)) into sig. Returns 0, CWPP_EINVAL
 * when k cannot sign or a->key_id is not its id, CWPP_ENOMEM; with errstr.
 */
int cwpp_sign_action(const cwpp_sign_key_t *k, const cwpp_sign_action_t *a,
                     unsigned char sig[CWPP_SIGN_BYTES], char *errstr, size_t errstr_size);

/* Why a verification failed (cwpp_sign_verify). */
typedef enum cwpp_sign_verdict {
    CWPP_SIGN_VALID = 0,
    CWPP_SIGN_UNSIGNED,    /* no signature and no key id */
    CWPP_SIGN_UNKNOWN_KEY, /* key_id is not the id of the key we trust */
    CWPP_SIGN_MALFORMED,   /* the signature is not 64 bytes */
    CWPP_SIGN_BAD          /* it does not match the canonical bytes */
} cwpp_sign_verdict_t;

/* The verdict's metric label: "valid", "unsigned", "unknown_key", "malformed_signature",
 * "bad_signature". Cannot fail. */
const char *cwpp_sign_verdict_name(cwpp_sign_verdict_t v);

/*
 * Verifies that sig (sig_len bytes; may be NULL with 0) is k's signature of a. Returns
 * the verdict (CWPP_SIGN_VALID or why not), with a sentence in why (may be NULL) when not
 * valid. Out of memory counts as CWPP_SIGN_BAD ("cannot verify").
 */
cwpp_sign_verdict_t cwpp_sign_verify(const cwpp_sign_key_t *k, const cwpp_sign_action_t *a,
                                     const unsigned char *sig, size_t sig_len, char *why,
                                     size_t why_size);

/* Writes a new key pair: dir/action-signing.key (the seed, mode 0600) and
 * dir/action-signing.pub (mode 0644); refuses to overwrite either (CWPP_EINVAL). On
 * success key_id (17 bytes) gets the new key's id. Returns 0, CWPP_EINVAL or CWPP_EIO
 * with errstr. */
int cwpp_sign_generate(const char *dir, char key_id[CWPP_SIGN_KEY_ID_LEN + 1], char *errstr,
                       size_t errstr_size);

#endif /* CWPP_SIGN_H */
