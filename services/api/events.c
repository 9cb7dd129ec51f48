/* SPDX-License-Identifier: Apache-2.0 */
/* events.c: routes of cwpp-api (api.h). */
#include "api.h"

const api_route_t api_events_routes[] = {{NULL, NULL, NULL, 0}};
