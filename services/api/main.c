/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-api: the analysts' authenticated API (api.h, docs/api.md).
 * Configuration: `cwpp-api --help`, docs/config-api.md.
 */
#include <stddef.h>

#include "api_internal.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "api",
        .summary = "Serves the analysts' authenticated API: reads scoped to the caller's "
                   "accounts, changes as commands.",
        .props = api_props,
        .nprops = 0,
        .conf_size = sizeof(api_conf_t),
        .common_offset = offsetof(api_conf_t, common),
        .run = api_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = api_nprops;
    return cwpp_service_main(&d, argc, argv);
}
