/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-correlator: aggregates accepted alerts into security events (correlator.h).
 * Configuration: `cwpp-correlator --help`, docs/config-correlator.md.
 */
#include <stddef.h>

#include "correlator.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "correlator",
        .summary = "Aggregates accepted alerts into security events.",
        .props = corr_props,
        .nprops = 0, /* set below: the table's size lives in correlator.c */
        .conf_size = sizeof(corr_conf_t),
        .common_offset = offsetof(corr_conf_t, common),
        .run = corr_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = corr_nprops;
    return cwpp_service_main(&d, argc, argv);
}
