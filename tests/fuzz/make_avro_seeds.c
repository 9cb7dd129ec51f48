/* SPDX-License-Identifier: Apache-2.0 */
/*
 * make_avro_seeds: writes the Avro encoding of each JSON alert file given into OUTDIR,
 * to seed fuzz_alert_avro. Usage: make_avro_seeds OUTDIR FILE.json...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwpp_alert.h"

int main(int argc, char **argv)
{
    cwpp_alert_opts_t opts = {"acct-seed", 1795860000000LL, 3600000, 0};
    char              err[512], path[1024];
    cwpp_avro_type_t *t = cwpp_avro_type_builtin("alert", err, sizeof(err));
    avro_value_t      v;
    int               i, written = 0;

    if (argc < 3 || t == NULL || cwpp_avro_value_new(t, &v) != CWPP_OK) {
        fprintf(stderr, "usage: make_avro_seeds OUTDIR FILE.json...\n");
        return 1;
    }
    for (i = 2; i < argc; i++) {
        FILE        *fp = fopen(argv[i], "rb");
        char        *buf;
        long         n;
        cwpp_alert_t a;
        const char  *code;
        cwpp_buf_t   out = {0};

        if (fp == NULL)
            continue;
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        if (buf == NULL || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
            fclose(fp);
            free(buf);
            continue;
        }
        fclose(fp);
        if (cwpp_alert_from_json(buf, (size_t)n, &opts, &a, &code, err, sizeof(err)) == CWPP_OK &&
            cwpp_alert_to_avro(&a, t, &v, &out, err, sizeof(err)) == CWPP_OK) {
            snprintf(path, sizeof(path), "%s/seed-%d.avro", argv[1], i - 1);
            fp = fopen(path, "wb");
            if (fp != NULL) {
                fwrite(out.data, 1, out.len, fp);
                fclose(fp);
                written++;
            }
            cwpp_alert_clear(&a);
        }
        cwpp_buf_free(&out);
        free(buf);
    }
    avro_value_decref(&v);
    cwpp_avro_type_destroy(t);
    printf("%d seeds written\n", written);
    return written > 0 ? 0 : 1;
}
