/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp-ingest: takes upstream alerts (JSON: the CWPP contract, Falco, Wazuh) from
 * <prefix>alerts.raw, validates and normalizes them, de-duplicates recurrences, stores
 * them in PostgreSQL and emits Avro Alert records to <prefix>alerts.normalized keyed by
 * account; bad records go to <prefix>alerts.rejected with a reason.
 *
 * Configuration: `cwpp-ingest --help`, docs/config-ingest.md.
 */
#include <stddef.h>

#include "ingest.h"

int main(int argc, char **argv)
{
    static const cwpp_service_def_t def = {
        .name = "ingest",
        .summary = "Validates, normalizes, de-duplicates and persists upstream alerts.",
        .props = ingest_props,
        .nprops = 0, /* set below: the table's size lives in ingest.c */
        .conf_size = sizeof(ingest_conf_t),
        .common_offset = offsetof(ingest_conf_t, common),
        .run = ingest_run,
    };
    cwpp_service_def_t d = def;

    d.nprops = ingest_nprops;
    return cwpp_service_main(&d, argc, argv);
}
