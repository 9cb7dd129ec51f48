/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-enforcer: the reference Linux enforcement agent (enforcer.h). It applies the
 * response actions addressed to its own account and asset and answers each on
 * <prefix>action-results. Configuration: `cwpp-enforcer --help`, docs/enforcer.md.
 */
#include <stddef.h>

#include "enforcer.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "enforcer",
        .summary = "Applies the response actions addressed to this host (nftables, "
                   "processes, files, accounts, WAF) and answers each one.",
        .props = enf_props,
        .nprops = 0, /* set below: the table's size lives in enforcer.c */
        .conf_size = sizeof(enf_conf_t),
        .common_offset = offsetof(enf_conf_t, common),
        .check = enf_check,
        .run = enf_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = enf_nprops;
    return cwpp_service_main(&d, argc, argv);
}
