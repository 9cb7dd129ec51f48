/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.c: what every verb prints and parses the same way: sentences on stderr with
 * an exit code, option values, JSON documents. The requests themselves are api_client.c's.
 */
#include "ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("cwppctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

const char *ctl_value_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc || (argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-')) {
        ctl_fail(CTL_USAGE, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

void ctl_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(doc);
}
