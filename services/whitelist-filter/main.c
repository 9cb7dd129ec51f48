/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-whitelist-filter: suppresses whitelisted alerts and applies whitelist commands
 * (filter.h). Configuration: `cwpp-whitelist-filter --help`, docs/config-whitelist-filter.md.
 */
#include <stddef.h>

#include "filter.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "whitelist-filter",
        .summary = "Suppresses whitelisted alerts and applies whitelist commands.",
        .props = wl_props,
        .nprops = 0, /* set below: the table's size lives in filter.c */
        .conf_size = sizeof(wl_conf_t),
        .common_offset = offsetof(wl_conf_t, common),
        .run = wl_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = wl_nprops;
    return cwpp_service_main(&d, argc, argv);
}
