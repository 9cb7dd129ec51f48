/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys.c: `cwpp-admin keys generate --out DIR`: a new Ed25519 key pair for signing
 * response Actions (docs/actions.md "Signatures"): DIR/action-signing.key (the seed,
 * mode 0600) for the responder (responder.signing.key.file) and DIR/action-signing.pub
 * for every agent (enforcer.verify.key.file). DIR is created (mode 0700) when missing;
 * existing files are never overwritten. Prints the key id. Exit 0, 1 on bad arguments
 * or when a file exists, 2 when the files cannot be written.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "admin.h"
#include "cwpp_sign.h"

int admin_keys(int argc, char **argv)
{
    const char *dir = NULL;
    char        errstr[600], id[CWPP_SIGN_KEY_ID_LEN + 1];
    int         i, rc;

    if (argc < 3 || strcmp(argv[2], "generate") != 0) {
        fprintf(stderr, "usage: cwpp-admin keys generate --out DIR\n");
        return 1;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "cwpp-admin: keys generate: unknown or incomplete option %s\n",
                    argv[i]);
            return 1;
        }
    }
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "cwpp-admin: keys generate needs --out DIR\n");
        return 1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cwpp-admin: cannot create %s: %s\n", dir, strerror(errno));
        return 2;
    }
    rc = cwpp_sign_generate(dir, id, errstr, sizeof(errstr));
    if (rc != CWPP_OK) {
        fprintf(stderr, "cwpp-admin: %s\n", errstr);
        return rc == CWPP_EINVAL ? 1 : 2;
    }
    printf("cwpp-admin: key %s: %s/action-signing.key (secret, 0600), "
           "%s/action-signing.pub (public)\n", id, dir, dir);
    return 0;
}
