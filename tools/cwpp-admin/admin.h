/* SPDX-License-Identifier: Apache-2.0 */
/* cwpp-admin's verbs other than topics. */
#ifndef CWPP_ADMIN_H
#define CWPP_ADMIN_H

#include "cwpp_config.h"

/* `cwpp-admin users bootstrap|password NAME [--pg-dsn DSN]`: users.c. Exit code. */
int admin_users(int argc, char **argv);
/* `cwpp-admin keys generate --out DIR`: keys.c. Exit code. */
int admin_keys(int argc, char **argv);
/* `cwpp-admin pg-verifier ROLE [--pg-dsn DSN]`: users.c. Exit code. */
int admin_pg_verifier(int argc, char **argv);

/* `cwpp-admin acls [--print] [--prefix P] [--group-prefix G] ...`: acls.c. brokers and
 * prefix are the defaults (environment), props the client properties (credentials).
 * Exit code. */
int admin_acls(int argc, char **argv, const char *brokers, const char *prefix,
               const cwpp_kvlist_t *props);

/* s as an int in min..max into *out: 0, or -1 after a message naming what: main.c. */
int admin_parse_int(const char *s, const char *what, int min, int max, int *out);

#endif
