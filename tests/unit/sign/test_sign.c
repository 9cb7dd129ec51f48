/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sign: Action signatures (libs/sign, docs/actions.md "Signatures"): a known-answer
 * test (seed 00..1f; the expected bytes and signature were computed by the Python
 * snippet of docs/actions.md with python3-cryptography), and the refusals: a tampered
 * field, another key, a truncated or missing signature; the key files: base64 lines,
 * the secret file's mode, generate refusing to overwrite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cwpp_sign.h"

static const char KAT_KEY_ID[] = "56475aa75463474c";
static const char KAT_CANONICAL[] =
    "637770702d616374696f6e2d7369672d76310000000005742d312e3100000003742d3100000003702d3100"
    "000003652d31000000046163637400000003692d3100000008626c6f636b5f6970000000127b226970223a"
    "223139322e302e322e31227d0000001035363437356161373534363334373463000000010000018bcfe568"
    "000000018bcfe65260";
static const char KAT_SIG[] =
    "89aaca1f51d05512433211688adf09fda349b4272892ebcc9a00129963a125ba1118e4f842b68ec7e23d46"
    "c4725a1ac33439edd6bdd9bf267c739ea14916b305";

static void seed_of(unsigned char seed[32], unsigned char first)
{
    int i;

    for (i = 0; i < 32; i++)
        seed[i] = (unsigned char)(first + i);
}

static cwpp_sign_action_t kat_action(void)
{
    cwpp_sign_action_t a = {"t-1.1", "t-1", "p-1", "e-1", "acct", "i-1", "block_ip",
                            "{\"ip\":\"192.0.2.1\"}", KAT_KEY_ID, 1, 1700000000000LL,
                            1700000060000LL};
    return a;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_known_answer(void **state)
{
    unsigned char      seed[32], sig[CWPP_SIGN_BYTES];
    char               sighex[2 * CWPP_SIGN_BYTES + 1], *chex;
    cwpp_sign_key_t   *k;
    cwpp_sign_action_t a = kat_action();
    cwpp_buf_t         b = {0};
    char               err[256];

    (void)state;
    seed_of(seed, 0);
    k = cwpp_sign_key_from_seed(seed, err, sizeof(err));
    assert_non_null(k);
    assert_string_equal(cwpp_sign_key_id(k), KAT_KEY_ID);
    assert_int_equal(cwpp_sign_canonical(&a, &b), CWPP_OK);
    chex = malloc(2 * b.len + 1);
    assert_non_null(chex);
    hex(b.data, b.len, chex);
    assert_string_equal(chex, KAT_CANONICAL);
    free(chex);
    cwpp_buf_free(&b);
    assert_int_equal(cwpp_sign_action(k, &a, sig, err, sizeof(err)), CWPP_OK);
    hex(sig, sizeof(sig), sighex);
    assert_string_equal(sighex, KAT_SIG);
    assert_int_equal(cwpp_sign_verify(k, &a, sig, sizeof(sig), err, sizeof(err)),
                     CWPP_SIGN_VALID);
    cwpp_sign_key_destroy(k);
}

/* Every way a signature must be refused, each with its verdict. */
static void test_refusals(void **state)
{
    unsigned char      seed[32], sig[CWPP_SIGN_BYTES], sig2[CWPP_SIGN_BYTES];
    cwpp_sign_key_t   *k, *other, *pub;
    cwpp_sign_action_t a = kat_action(), b;
    char               err[256];

    (void)state;
    seed_of(seed, 0);
    k = cwpp_sign_key_from_seed(seed, err, sizeof(err));
    seed_of(seed, 100);
    other = cwpp_sign_key_from_seed(seed, err, sizeof(err));
    assert_non_null(k);
    assert_non_null(other);
    pub = cwpp_sign_key_from_public(cwpp_sign_key_public(k), err, sizeof(err));
    assert_non_null(pub);
    assert_string_equal(cwpp_sign_key_id(pub), KAT_KEY_ID);
    assert_false(cwpp_sign_key_can_sign(pub));
    assert_int_equal(cwpp_sign_action(pub, &a, sig, err, sizeof(err)), CWPP_EINVAL);
    assert_int_equal(cwpp_sign_action(k, &a, sig, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_sign_verify(pub, &a, sig, sizeof(sig), err, sizeof(err)),
                     CWPP_SIGN_VALID);

    /* a tampered field: each one in turn */
    b = a; b.params_json = "{\"ip\":\"192.0.2.2\"}";
    assert_int_equal(cwpp_sign_verify(pub, &b, sig, sizeof(sig), err, sizeof(err)), CWPP_SIGN_BAD);
    assert_non_null(strstr(err, "does not match"));
    b = a; b.asset_id = "i-2";
    assert_int_equal(cwpp_sign_verify(pub, &b, sig, sizeof(sig), NULL, 0), CWPP_SIGN_BAD);
    b = a; b.deadline_ms++;
    assert_int_equal(cwpp_sign_verify(pub, &b, sig, sizeof(sig), NULL, 0), CWPP_SIGN_BAD);
    b = a; b.attempt = 2;
    assert_int_equal(cwpp_sign_verify(pub, &b, sig, sizeof(sig), NULL, 0), CWPP_SIGN_BAD);
    /* moving bytes between fields changes the lengths: no ambiguity */
    b = a; b.task_id = "t-1p"; b.policy_id = "-1";
    assert_int_equal(cwpp_sign_verify(pub, &b, sig, sizeof(sig), NULL, 0), CWPP_SIGN_BAD);
    memcpy(sig2, sig, sizeof(sig));
    sig2[10] ^= 1;
    assert_int_equal(cwpp_sign_verify(pub, &a, sig2, sizeof(sig2), NULL, 0), CWPP_SIGN_BAD);

    /* another key: by its id, and under our id */
    b = a; b.key_id = cwpp_sign_key_id(other);
    assert_int_equal(cwpp_sign_action(other, &b, sig2, err, sizeof(err)), CWPP_OK);
    assert_int_equal(cwpp_sign_verify(pub, &b, sig2, sizeof(sig2), err, sizeof(err)),
                     CWPP_SIGN_UNKNOWN_KEY);
    assert_non_null(strstr(err, "not by the trusted key"));
    assert_int_equal(cwpp_sign_verify(pub, &a, sig2, sizeof(sig2), NULL, 0), CWPP_SIGN_BAD);

    /* truncated, missing */
    assert_int_equal(cwpp_sign_verify(pub, &a, sig, 63, err, sizeof(err)), CWPP_SIGN_MALFORMED);
    assert_int_equal(cwpp_sign_verify(pub, &a, NULL, 0, NULL, 0), CWPP_SIGN_MALFORMED);
    b = a; b.key_id = "";
    assert_int_equal(cwpp_sign_verify(pub, &b, NULL, 0, err, sizeof(err)), CWPP_SIGN_UNSIGNED);
    assert_string_equal(cwpp_sign_verdict_name(CWPP_SIGN_UNSIGNED), "unsigned");
    assert_string_equal(cwpp_sign_verdict_name(CWPP_SIGN_BAD), "bad_signature");
    cwpp_sign_key_destroy(k);
    cwpp_sign_key_destroy(other);
    cwpp_sign_key_destroy(pub);
    cwpp_sign_key_destroy(NULL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_key_files(void **state)
{
    char             dir[] = "/tmp/test_sign_XXXXXX", p[512], q[512], err[512], id[17];
    cwpp_sign_key_t *k, *pub;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof(p), "%s/s.key", dir);
    write_file(p, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0600);
    k = cwpp_sign_load_secret(p, err, sizeof(err));
    assert_non_null(k);
    assert_string_equal(cwpp_sign_key_id(k), KAT_KEY_ID);
    cwpp_sign_key_destroy(k);
    assert_int_equal(chmod(p, 0640), 0);
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    assert_non_null(strstr(err, "group or other"));
    assert_int_equal(chmod(p, 0604), 0);
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    write_file(p, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", 0600); /* no padding */
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    write_file(p, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8fHw==\n", 0600); /* 34 bytes */
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    assert_non_null(strstr(err, "32 bytes"));
    write_file(p, "", 0600);
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    unlink(p);
    assert_null(cwpp_sign_load_secret(p, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));

    snprintf(q, sizeof(q), "%s/s.pub", dir);
    write_file(q, "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n", 0644);
    pub = cwpp_sign_load_public(q, err, sizeof(err));
    assert_non_null(pub);
    assert_string_equal(cwpp_sign_key_id(pub), KAT_KEY_ID);
    cwpp_sign_key_destroy(pub);
    unlink(q);

    /* generate: a pair that loads and matches, then no overwrite */
    assert_int_equal(cwpp_sign_generate(dir, id, err, sizeof(err)), CWPP_OK);
    snprintf(p, sizeof(p), "%s/action-signing.key", dir);
    snprintf(q, sizeof(q), "%s/action-signing.pub", dir);
    k = cwpp_sign_load_secret(p, err, sizeof(err));
    pub = cwpp_sign_load_public(q, err, sizeof(err));
    assert_non_null(k);
    assert_non_null(pub);
    assert_string_equal(cwpp_sign_key_id(k), id);
    assert_string_equal(cwpp_sign_key_id(pub), id);
    cwpp_sign_key_destroy(k);
    cwpp_sign_key_destroy(pub);
    assert_int_equal(cwpp_sign_generate(dir, id, err, sizeof(err)), CWPP_EINVAL);
    assert_non_null(strstr(err, "not overwritten"));
    unlink(p);
    unlink(q);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_key_files),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
