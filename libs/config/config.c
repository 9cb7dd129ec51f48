/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c: the table-driven loader. Parsing is line based and strict: a line is
 * blank, a comment, or "key = value"; values may be wrapped in double quotes. Bad
 * configuration stops start-up, so every error names the key (and line for files).
 */
#include "cwpp_config.h"
#include "cwpp_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cwpp_kvlist_set(cwpp_kvlist_t *l, const char *key, const char *value)
{
    size_t     i;
    char      *v;
    cwpp_kv_t *items;

    for (i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            v = strdup(value);
            if (v == NULL)
                return CWPP_ENOMEM;
            free(l->items[i].value);
            l->items[i].value = v;
            return CWPP_OK;
        }
    }
    items = realloc(l->items, (l->n + 1) * sizeof(*items));
    if (items == NULL)
        return CWPP_ENOMEM;
    l->items = items;
    items[l->n].key = strdup(key);
    items[l->n].value = strdup(value);
    if (items[l->n].key == NULL || items[l->n].value == NULL) {
        free(items[l->n].key);
        free(items[l->n].value);
        return CWPP_ENOMEM;
    }
    l->n++;
    return CWPP_OK;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cwpp_kvlist_parse(cwpp_kvlist_t *l, const char *text, char *errstr, size_t errstr_size)
{
    char *copy, *save = NULL, *item;
    int   err = CWPP_OK;

    if (text == NULL || *text == '\0')
        return CWPP_OK;
    copy = strdup(text);
    if (copy == NULL)
        return CWPP_ENOMEM;
    for (item = strtok_r(copy, ";", &save); item != NULL; item = strtok_r(NULL, ";", &save)) {
        char *eq, *k, *v;

        item = trim(item);
        if (*item == '\0')
            continue;
        eq = strchr(item, '=');
        if (eq == NULL) {
            err = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                              "kafka property \"%s\" has no '=': expected name=value", item);
            break;
        }
        *eq = '\0';
        k = trim(item);
        v = trim(eq + 1);
        if (*k == '\0') {
            err = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                              "kafka property with an empty name");
            break;
        }
        if ((err = cwpp_kvlist_set(l, k, v)) != CWPP_OK)
            break;
    }
    free(copy);
    return err;
}

void cwpp_kvlist_free(cwpp_kvlist_t *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cwpp_conf_env_name(const char *key, char *buf, size_t size)
{
    size_t i, o = 0;
    const char *pfx = "CWPP_";

    for (i = 0; pfx[i] != '\0' && o + 1 < size; i++)
        buf[o++] = pfx[i];
    for (i = 0; key[i] != '\0' && o + 1 < size; i++) {
        char c = key[i];
        buf[o++] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
    }
    if (size > 0)
        buf[o] = '\0';
}

static const cwpp_conf_prop_t *find_prop(const cwpp_conf_prop_t *props, size_t n,
                                         const char *key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(props[i].name, key) == 0)
            return &props[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
        !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
             !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int set_prop(const cwpp_conf_prop_t *p, void *dst, const char *value,
                    const char *origin, char *errstr, size_t errstr_size)
{
    char *field = (char *)dst + p->offset;

    switch (p->type) {
    case CWPP_CONF_STR: {
        char  *copy = strdup(value);
        char **sp = (char **)(void *)field;

        if (copy == NULL)
            return CWPP_ENOMEM;
        free(*sp);
        *sp = copy;
        return CWPP_OK;
    }
    case CWPP_CONF_INT: {
        char     *end;
        long long v;

        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0')
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                               "%s: \"%s\" must be an integer (%s)", p->name, value, origin);
        if (v < p->min || v > p->max)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                               "%s: %lld is outside %lld..%lld (%s)", p->name, v,
                               (long long)p->min, (long long)p->max, origin);
        *(int64_t *)(void *)field = v;
        return CWPP_OK;
    }
    case CWPP_CONF_BOOL: {
        int b;

        if (parse_bool(value, &b) != 0)
            return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                               "%s: \"%s\" must be true or false (%s)", p->name, value, origin);
        *(int *)(void *)field = b;
        return CWPP_OK;
    }
    }
    return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "%s: unknown type", p->name);
}

int cwpp_conf_set(const cwpp_conf_prop_t *props, size_t n, void *dst, const char *key,
                  const char *value, char *errstr, size_t errstr_size)
{
    const cwpp_conf_prop_t *p = find_prop(props, n, key);

    if (p == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "unknown configuration key \"%s\"",
                           key);
    return set_prop(p, dst, value, "set", errstr, errstr_size);
}

static int load_file(const cwpp_conf_prop_t *props, size_t n, void *dst, const char *path,
                     cwpp_kvlist_t *passthrough, char *errstr, size_t errstr_size)
{
    FILE  *fp;
    char  *line = NULL;
    size_t cap = 0;
    int    lineno = 0, err = CWPP_OK;
    char   origin[512];

    fp = fopen(path, "r");
    if (fp == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG, "cannot open config file %s: %s",
                           path, strerror(errno));
    while (getline(&line, &cap, fp) != -1) {
        char *s, *eq, *k, *v;
        const cwpp_conf_prop_t *p;

        lineno++;
        s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            err = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                              "%s:%d: expected \"key = value\"", path, lineno);
            break;
        }
        *eq = '\0';
        k = trim(s);
        v = trim(eq + 1);
        if (strlen(v) >= 2 && v[0] == '"' && v[strlen(v) - 1] == '"') {
            v[strlen(v) - 1] = '\0';
            v++;
        }
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        p = find_prop(props, n, k);
        if (p != NULL) {
            err = set_prop(p, dst, v, origin, errstr, errstr_size);
        } else if (strncmp(k, "kafka.", 6) == 0 && k[6] != '\0' && passthrough != NULL) {
            err = cwpp_kvlist_set(passthrough, k + 6, v);
        } else {
            err = cwpp_seterr(errstr, errstr_size, CWPP_ECONFIG,
                              "%s: unknown configuration key \"%s\"", origin, k);
        }
        if (err != CWPP_OK)
            break;
    }
    free(line);
    fclose(fp);
    return err;
}

/* The broker credentials under environment names of their own, so that a Secret can be
 * injected as variables (the password never in CWPP_KAFKA_PROPERTIES). */
static const struct {
    const char *env;
    const char *key;
} kafka_env[] = {
    {"CWPP_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
    {"CWPP_KAFKA_SASL_MECHANISM", "sasl.mechanisms"},
    {"CWPP_KAFKA_SASL_USERNAME", "sasl.username"},
    {"CWPP_KAFKA_SASL_PASSWORD", "sasl.password"},
    {"CWPP_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
};

int cwpp_conf_kafka_env(cwpp_kvlist_t *passthrough)
{
    size_t i;
    int    err;

    for (i = 0; i < sizeof(kafka_env) / sizeof(kafka_env[0]); i++) {
        const char *v = getenv(kafka_env[i].env);

        if (v != NULL && *v != '\0' &&
            (err = cwpp_kvlist_set(passthrough, kafka_env[i].key, v)) != CWPP_OK)
            return err;
    }
    return CWPP_OK;
}

int cwpp_conf_load(const cwpp_conf_prop_t *props, size_t n, void *dst, const char *path,
                   cwpp_kvlist_t *passthrough, char *errstr, size_t errstr_size)
{
    size_t i;
    int    err;
    char   env[128];

    for (i = 0; i < n; i++) {
        const char *d = props[i].defval != NULL ? props[i].defval
                        : props[i].type == CWPP_CONF_STR ? "" : "0";
        if ((err = set_prop(&props[i], dst, d, "default", errstr, errstr_size)) != CWPP_OK)
            return err;
    }
    if (path != NULL && *path != '\0' &&
        (err = load_file(props, n, dst, path, passthrough, errstr, errstr_size)) != CWPP_OK)
        return err;
    if (passthrough != NULL && (err = cwpp_conf_kafka_env(passthrough)) != CWPP_OK)
        return err;
    for (i = 0; i < n; i++) {
        const char *v;

        cwpp_conf_env_name(props[i].name, env, sizeof(env));
        v = getenv(env);
        if (v != NULL &&
            (err = set_prop(&props[i], dst, v, env, errstr, errstr_size)) != CWPP_OK)
            return err;
    }
    return CWPP_OK;
}

void cwpp_conf_free(const cwpp_conf_prop_t *props, size_t n, void *dst)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (props[i].type == CWPP_CONF_STR) {
            char **sp = (char **)(void *)((char *)dst + props[i].offset);
            free(*sp);
            *sp = NULL;
        }
    }
}

void cwpp_conf_print_help(FILE *fp, const cwpp_conf_prop_t *props, size_t n)
{
    size_t i;
    char   env[128];

    for (i = 0; i < n; i++) {
        cwpp_conf_env_name(props[i].name, env, sizeof(env));
        fprintf(fp, "  %-28s %s\n", props[i].name, props[i].desc);
        fprintf(fp, "  %-28s env %s, default \"%s\"", "", env,
                props[i].defval != NULL ? props[i].defval : "");
        if (props[i].type == CWPP_CONF_INT)
            fprintf(fp, ", range %lld..%lld", (long long)props[i].min, (long long)props[i].max);
        fputc('\n', fp);
    }
    fprintf(fp, "  %-28s librdkafka property NAME, passed through (file only;\n"
                "  %-28s env CWPP_KAFKA_PROPERTIES=\"name=value;...\")\n"
                "  %-28s env CWPP_KAFKA_SECURITY_PROTOCOL, CWPP_KAFKA_SASL_MECHANISM,\n"
                "  %-28s CWPP_KAFKA_SASL_USERNAME, CWPP_KAFKA_SASL_PASSWORD,\n"
                "  %-28s CWPP_KAFKA_SSL_CA_LOCATION give kafka.security.protocol,\n"
                "  %-28s kafka.sasl.mechanisms, .sasl.username, .sasl.password,\n"
                "  %-28s .ssl.ca.location\n",
            "kafka.NAME", "", "", "", "", "", "");
}

void cwpp_conf_print_env(FILE *fp, const cwpp_conf_prop_t *props, size_t n)
{
    size_t i;
    char   env[128];

    fprintf(fp, "CWPP_CONFIG\n");
    for (i = 0; i < n; i++) {
        cwpp_conf_env_name(props[i].name, env, sizeof(env));
        fprintf(fp, "%s\n", env);
    }
}

void cwpp_conf_print_doc(FILE *fp, const char *service, const cwpp_conf_prop_t *props, size_t n)
{
    size_t i;
    char   env[128];

    fprintf(fp, "# Configuration of cwpp-%s\n\n", service);
    fprintf(fp, "Generated from the service's configuration table (`cwpp-%s --config-doc`).\n"
                "Values come from the default, then the file given with `--config FILE` (or\n"
                "`CWPP_CONFIG`), lines `key = value`, then the environment. File keys\n"
                "`kafka.NAME` not listed here pass through to librdkafka as property NAME;\n"
                "from the environment use `CWPP_KAFKA_PROPERTIES=\"name=value;name=value\"`.\n"
                "The broker credentials have environment names of their own (they override\n"
                "the file; CWPP_KAFKA_PROPERTIES overrides them): `CWPP_KAFKA_SECURITY_PROTOCOL`\n"
                "(`kafka.security.protocol`), `CWPP_KAFKA_SASL_MECHANISM` (`kafka.sasl.mechanisms`),\n"
                "`CWPP_KAFKA_SASL_USERNAME` (`kafka.sasl.username`), `CWPP_KAFKA_SASL_PASSWORD`\n"
                "(`kafka.sasl.password`, never printed) and `CWPP_KAFKA_SSL_CA_LOCATION`\n"
                "(`kafka.ssl.ca.location`).\n\n",
            service);
    fprintf(fp, "| key | environment | default | range | description |\n");
    fprintf(fp, "| --- | --- | --- | --- | --- |\n");
    for (i = 0; i < n; i++) {
        cwpp_conf_env_name(props[i].name, env, sizeof(env));
        fprintf(fp, "| `%s` | `%s` | `%s` | ", props[i].name, env,
                props[i].defval != NULL ? props[i].defval : "");
        if (props[i].type == CWPP_CONF_INT)
            fprintf(fp, "%lld..%lld", (long long)props[i].min, (long long)props[i].max);
        else if (props[i].type == CWPP_CONF_BOOL)
            fprintf(fp, "true/false");
        fprintf(fp, " | %s |\n", props[i].desc);
    }
}

void cwpp_conf_dump(FILE *fp, const cwpp_conf_prop_t *props, size_t n, const void *dst)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const char *field = (const char *)dst + props[i].offset;

        switch (props[i].type) {
        case CWPP_CONF_STR: {
            const char *s = *(char *const *)(const void *)field;
            fprintf(fp, "%s = %s\n", props[i].name,
                    (props[i].flags & CWPP_CONF_SECRET) && s != NULL && *s != '\0'
                        ? "(set, not shown)" : (s != NULL ? s : ""));
            break;
        }
        case CWPP_CONF_INT:
            fprintf(fp, "%s = %lld\n", props[i].name, (long long)*(const int64_t *)(const void *)field);
            break;
        case CWPP_CONF_BOOL:
            fprintf(fp, "%s = %s\n", props[i].name, *(const int *)(const void *)field ? "true" : "false");
            break;
        }
    }
}
