/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_alert_avro: the Avro decoder on arbitrary bytes (every later service reads Alert
 * records from Kafka; "bad Avro" must be refused, never crash). Properties: a refusal
 * has a reason; an accepted record re-encodes to a record that decodes to the same id.
 * The seeds are valid encodings (make_avro_seeds), so mutations reach deep fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"

static cwpp_avro_type_t *t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cwpp_alert_t a, b;
    char         err[512];
    cwpp_buf_t   buf = {0};
    avro_value_t v;

    if (t == NULL) {
        t = cwpp_avro_type_builtin("alert", err, sizeof(err));
        if (t == NULL)
            abort();
    }
    /* A fresh value per input: state kept across inputs would hide leaks. */
    if (cwpp_avro_value_new(t, &v) != CWPP_OK)
        return 0;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    err[0] = '\0';
    if (cwpp_alert_from_avro(t, data, size, &v, &a, err, sizeof(err)) != CWPP_OK) {
        if (err[0] == '\0')
            abort();
        avro_value_decref(&v);
        return 0;
    }
    if (cwpp_alert_to_avro(&a, t, &v, &buf, err, sizeof(err)) != CWPP_OK)
        abort();
    if (cwpp_alert_from_avro(t, buf.data, buf.len, &v, &b, err, sizeof(err)) != CWPP_OK ||
        strcmp(a.alert_id, b.alert_id) != 0)
        abort();
    cwpp_alert_clear(&a);
    cwpp_alert_clear(&b);
    cwpp_buf_free(&buf);
    avro_value_decref(&v);
    return 0;
}
