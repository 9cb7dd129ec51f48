/* SPDX-License-Identifier: Apache-2.0 */
/* cwpp-admin's verbs other than topics. */
#ifndef CWPP_ADMIN_H
#define CWPP_ADMIN_H

/* `cwpp-admin users bootstrap|password NAME [--pg-dsn DSN]`: users.c. Exit code. */
int admin_users(int argc, char **argv);
/* `cwpp-admin keys generate --out DIR`: keys.c. Exit code. */
int admin_keys(int argc, char **argv);
/* `cwpp-admin pg-verifier ROLE [--pg-dsn DSN]`: users.c. Exit code. */
int admin_pg_verifier(int argc, char **argv);

#endif
