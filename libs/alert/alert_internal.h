/* SPDX-License-Identifier: Apache-2.0 */
/* alert_internal.h: shared between the files of libs/alert only. */
#ifndef CWPP_ALERT_INTERNAL_H
#define CWPP_ALERT_INTERNAL_H

#include "cwpp_alert.h"

typedef struct nctx {
    const char **code;
    char        *errstr;
    size_t       errstr_size;
} nctx_t;

/* Records a rejection (code + sentence) and returns CWPP_EINVAL. */
int cwpp_alert__bad(nctx_t *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Validates a record in the contract's shape. */
int cwpp_alert__normalize(nctx_t *c, json_t *root, cwpp_format_t fmt,
                          const cwpp_alert_opts_t *opts, cwpp_alert_t *a);
/* Detects the shape, maps Falco/Wazuh, then normalizes. */
int cwpp_alert__dispatch(nctx_t *c, json_t *root, const cwpp_alert_opts_t *opts,
                         cwpp_alert_t *a);

#endif
