/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-responder: applies analysts' decisions on security events (responder.h).
 * Configuration: `cwpp-responder --help`, docs/config-responder.md.
 */
#include <stddef.h>

#include "responder.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "responder",
        .summary = "Applies analysts' decisions on security events and tracks their actions.",
        .props = rs_props,
        .nprops = 0, /* set below: the table's size lives in responder.c */
        .conf_size = sizeof(rs_conf_t),
        .common_offset = offsetof(rs_conf_t, common),
        .run = rs_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = rs_nprops;
    return cwpp_service_main(&d, argc, argv);
}
