/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_config: typed configuration from one declarative table per service.
 *
 * Each property names its key ("kafka.brokers"), type, the offset of its field in the
 * service's config struct, a default, bounds and a description. Values come, in rising
 * precedence, from the default, the config file (lines "key = value", '#' comments), and
 * the environment variable derived from the key: CWPP_ + upper case, '.' -> '_'
 * ("kafka.brokers" -> CWPP_KAFKA_BROKERS). File keys "kafka.<name>" that the table does
 * not declare pass through to librdkafka as property <name>; the environment passes them
 * with CWPP_KAFKA_PROPERTIES="name=value;name=value". Any other unknown file key is a
 * configuration error naming the key and line.
 *
 * The same table prints --help, the environment names and docs/config-<service>.md.
 */
#ifndef CWPP_CONFIG_H
#define CWPP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CWPP_CONF_STR,  /* char * (owned by the struct, freed by cwpp_conf_free) */
    CWPP_CONF_INT,  /* int64_t, checked against [min, max] */
    CWPP_CONF_BOOL, /* int, from true/false/yes/no/on/off/1/0 */
} cwpp_conf_type_t;

#define CWPP_CONF_SECRET 0x1 /* never printed in full (DSNs with passwords) */

typedef struct cwpp_conf_prop {
    const char      *name;   /* dotted key */
    cwpp_conf_type_t type;
    size_t           offset; /* offsetof(struct, field) */
    const char      *defval; /* default as text; NULL = empty string / 0 */
    int64_t          min;    /* INT bounds (inclusive) */
    int64_t          max;
    int              flags;  /* CWPP_CONF_SECRET */
    const char      *desc;   /* one sentence for --help and docs */
} cwpp_conf_prop_t;

typedef struct cwpp_kv {
    char *key;
    char *value;
} cwpp_kv_t;

/* A list of key/value pairs (librdkafka pass-through properties). */
typedef struct cwpp_kvlist {
    cwpp_kv_t *items;
    size_t     n;
} cwpp_kvlist_t;

/* Adds or replaces key. Returns 0 or CWPP_ENOMEM. */
int  cwpp_kvlist_set(cwpp_kvlist_t *l, const char *key, const char *value);
/* Parses "k=v;k=v" (whitespace around items trimmed) into l. Returns 0 or CWPP_ECONFIG. */
int  cwpp_kvlist_parse(cwpp_kvlist_t *l, const char *text, char *errstr, size_t errstr_size);
void cwpp_kvlist_free(cwpp_kvlist_t *l);

/*
 * Sets the broker credentials given by their own environment names into passthrough:
 * CWPP_KAFKA_SECURITY_PROTOCOL -> security.protocol, CWPP_KAFKA_SASL_MECHANISM ->
 * sasl.mechanisms, CWPP_KAFKA_SASL_USERNAME -> sasl.username, CWPP_KAFKA_SASL_PASSWORD ->
 * sasl.password, CWPP_KAFKA_SSL_CA_LOCATION -> ssl.ca.location (unset or empty: left
 * alone). cwpp_conf_load calls it after the file. Returns 0 or CWPP_ENOMEM.
 */
int cwpp_conf_kafka_env(cwpp_kvlist_t *passthrough);

/*
 * Loads configuration into dst (a zeroed struct) from defaults, the file at path (may be
 * NULL) and the environment; file "kafka.*" keys not in the table go to passthrough.
 * Returns 0, or CWPP_ECONFIG with a sentence naming the key, or CWPP_ENOMEM.
 * On failure dst may hold partial values: call cwpp_conf_free anyway.
 */
int cwpp_conf_load(const cwpp_conf_prop_t *props, size_t n, void *dst, const char *path,
                   cwpp_kvlist_t *passthrough, char *errstr, size_t errstr_size);

/* Sets one property from text, as the file or environment would. Same returns. */
int cwpp_conf_set(const cwpp_conf_prop_t *props, size_t n, void *dst, const char *key,
                  const char *value, char *errstr, size_t errstr_size);

/* Frees the strings the table owns in dst. */
void cwpp_conf_free(const cwpp_conf_prop_t *props, size_t n, void *dst);

/* Writes the environment variable name of key into buf. */
void cwpp_conf_env_name(const char *key, char *buf, size_t size);

/* Human help, one block per property. */
void cwpp_conf_print_help(FILE *fp, const cwpp_conf_prop_t *props, size_t n);
/* One env var name per line (plus CWPP_CONFIG). */
void cwpp_conf_print_env(FILE *fp, const cwpp_conf_prop_t *props, size_t n);
/* Markdown table for docs/. */
void cwpp_conf_print_doc(FILE *fp, const char *service, const cwpp_conf_prop_t *props, size_t n);
/* Effective values "key = value", secrets masked. */
void cwpp_conf_dump(FILE *fp, const cwpp_conf_prop_t *props, size_t n, const void *dst);

#endif /* CWPP_CONFIG_H */
