/* SPDX-License-Identifier: Apache-2.0 */
/* whitelist.c: routes of cwpp-api (api.h). */
#include "api.h"

const api_route_t api_whitelist_routes[] = {{NULL, NULL, NULL, 0}};
