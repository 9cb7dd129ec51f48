/* SPDX-License-Identifier: Apache-2.0 */
/* exports.c: routes of cwpp-api (api.h). */
#include "api.h"

const api_route_t api_exports_routes[] = {{NULL, NULL, NULL, 0}};
