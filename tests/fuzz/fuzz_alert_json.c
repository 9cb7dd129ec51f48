/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_alert_json: the JSON validator/normalizer on arbitrary bytes (the raw topic is
 * written by anyone). Properties checked beyond "no crash, no leak, no UB":
 *  - every refusal carries a reason code and a sentence;
 *  - every accepted alert has an "al-" id, at least its host entity, and survives the
 *    Avro round trip with the same id and key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"

static cwpp_avro_type_t *t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cwpp_alert_opts_t opts = {size % 2 ? "acct-fuzz" : NULL, 1795860000000LL, 3600000, 0};
    cwpp_alert_t      a, b;
    const char       *code = NULL;
    char              err[512];
    cwpp_buf_t        buf = {0};
    avro_value_t      v;
    int               rc;

    if (t == NULL) {
        t = cwpp_avro_type_builtin("alert", err, sizeof(err));
        if (t == NULL)
            abort();
    }
    /* A fresh value per input: state kept across inputs would hide leaks. */
    if (cwpp_avro_value_new(t, &v) != CWPP_OK)
        return 0;
    err[0] = '\0';
    rc = cwpp_alert_from_json(data, size, &opts, &a, &code, err, sizeof(err));
    if (rc == CWPP_EINVAL) {
        if (code == NULL || err[0] == '\0')
            abort();
        avro_value_decref(&v);
        return 0;
    }
    if (rc != CWPP_OK) {
        avro_value_decref(&v);
        return 0; /* ENOMEM */
    }
    if (strncmp(a.alert_id, "al-", 3) != 0 || a.n_entities < 1 || a.asset.id == NULL)
        abort();
    memset(&b, 0, sizeof(b));
    if (cwpp_alert_to_avro(&a, t, &v, &buf, err, sizeof(err)) != CWPP_OK)
        abort();
    if (cwpp_alert_from_avro(t, buf.data, buf.len, &v, &b, err, sizeof(err)) != CWPP_OK)
        abort();
    if (strcmp(a.alert_id, b.alert_id) != 0 || strcmp(a.dedup_key, b.dedup_key) != 0)
        abort();
    cwpp_alert_clear(&a);
    cwpp_alert_clear(&b);
    cwpp_buf_free(&buf);
    avro_value_decref(&v);
    return 0;
}
