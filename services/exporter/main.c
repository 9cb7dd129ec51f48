/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-exporter: export jobs, the handled-event stream and retention (exporter.h).
 * Configuration: `cwpp-exporter --help`, docs/config-exporter.md.
 */
#include <stddef.h>

#include "exporter.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "exporter",
        .summary = "Excel export jobs, the handled-event stream for downstream consumers, retention.",
        .props = ex_props,
        .nprops = 0, /* set below: the table's size lives in exporter.c */
        .conf_size = sizeof(ex_conf_t),
        .common_offset = offsetof(ex_conf_t, common),
        .check = ex_check,
        .run = ex_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = ex_nprops;
    return cwpp_service_main(&d, argc, argv);
}
