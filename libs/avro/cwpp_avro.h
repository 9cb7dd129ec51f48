/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwpp_avro: Avro single-object encoding over avro-c, for every value the services put
 * on Kafka.
 *
 * A message is: 0xC3 0x01, the 8-byte little-endian CRC-64-AVRO fingerprint of the
 * writer schema's Parsing Canonical Form, then the binary datum (Avro specification,
 * "Single-object encoding"). Any Avro library decodes it with the schema files in
 * schemas/ alone. The schemas are compiled into the binaries from those same files.
 *
 * Decoding never trusts the bytes: before avro-c reads a datum, a validator walks the
 * schema over the bytes and checks every length, count, union branch and enum index
 * against the schema and the bytes left, and every string for UTF-8. avro-c then only
 * sees data that fits, so hostile input cannot make it allocate wildly or loop.
 *
 * A cwpp_avro_type_t is immutable after creation and may be shared by threads; an
 * avro_value_t is not.
 */
#ifndef CWPP_AVRO_H
#define CWPP_AVRO_H

#include <avro.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cwpp_util.h"

#define CWPP_AVRO_HEADER_LEN 10

typedef struct cwpp_avro_type cwpp_avro_type_t;

/* CRC-64-AVRO of len bytes (the Avro specification's fingerprint). Cannot fail. */
uint64_t cwpp_avro_crc64(const void *p, size_t len);

/*
 * Parsing Canonical Form of the schema JSON text (Avro specification, rules PRIMITIVES,
 * FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE). On success *out is a
 * NUL-terminated string the caller frees. Returns 0, CWPP_EINVAL (not a schema) or
 * CWPP_ENOMEM.
 */
int cwpp_avro_canonical(const char *json, size_t len, char **out, char *errstr,
                        size_t errstr_size);

/* Loads a schema from JSON text. Returns NULL and fills errstr on failure. */
cwpp_avro_type_t *cwpp_avro_type_new(const char *json, size_t len, char *errstr,
                                     size_t errstr_size);
/* Loads one of the schemas compiled in from schemas/<name>.avsc ("alert", ...). */
cwpp_avro_type_t *cwpp_avro_type_builtin(const char *name, char *errstr, size_t errstr_size);
/* Accepts NULL. */
void cwpp_avro_type_destroy(cwpp_avro_type_t *t);

uint64_t      cwpp_avro_type_fingerprint(const cwpp_avro_type_t *t);
const char   *cwpp_avro_type_canonical(const cwpp_avro_type_t *t);
avro_schema_t cwpp_avro_type_schema(const cwpp_avro_type_t *t);

/* The text of the compiled-in schema, or NULL. */
const char *cwpp_avro_builtin_text(const char *name, size_t *lenp);

/* Creates an empty value of the type. The caller avro_value_decref()s it. Returns 0 or
 * CWPP_ENOMEM. */
int cwpp_avro_value_new(const cwpp_avro_type_t *t, avro_value_t *v);

/* Appends header + datum of v to out. Returns 0, CWPP_EINVAL (v incomplete) or
 * CWPP_ENOMEM. */
int cwpp_avro_encode(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *out,
                     char *errstr, size_t errstr_size);

/*
 * Decodes one single-object message of type t into v (a value from cwpp_avro_value_new;
 * it is reset first). Returns 0, or CWPP_EINVAL with the reason (not single-object
 * encoded, fingerprint of another schema, truncated, trailing bytes, bad length, unknown
 * enum symbol or union branch, invalid UTF-8, ...).
 */
int cwpp_avro_decode(const cwpp_avro_type_t *t, const void *buf, size_t len, avro_value_t *v,
                     char *errstr, size_t errstr_size);

/*
 * Fills v (reset first) from a JSON document shaped like its schema: records from objects
 * (fields by name), arrays from lists (missing = empty), ["null", T] unions from null /
 * missing or a T, enums from their symbol, strings, ints, longs, doubles, booleans
 * (missing = false).
 * Returns 0, or CWPP_EINVAL with the field that did not fit.
 */
int cwpp_avro_from_json(avro_value_t *v, const json_t *j, char *errstr, size_t errstr_size);

/* Checks that the len bytes at p hold exactly one datum of schema; returns 0 or
 * CWPP_EINVAL. Exposed for tests and the fuzz harness. */
int cwpp_avro_validate(avro_schema_t schema, const void *p, size_t len, char *errstr,
                       size_t errstr_size);

/* Field helpers on a record value. Each returns 0 or CWPP_EINVAL (no such field, or the
 * field's type does not fit). "opt" fields are unions ["null", T]; NULL sets null. */
int cwpp_avro_set_str(avro_value_t *rec, const char *field, const char *s);
int cwpp_avro_set_opt_str(avro_value_t *rec, const char *field, const char *s);
int cwpp_avro_set_long(avro_value_t *rec, const char *field, int64_t v);
int cwpp_avro_set_int(avro_value_t *rec, const char *field, int32_t v);
int cwpp_avro_set_opt_long(avro_value_t *rec, const char *field, const int64_t *v);
int cwpp_avro_set_enum(avro_value_t *rec, const char *field, const char *symbol);
int cwpp_avro_set_bytes(avro_value_t *rec, const char *field, const void *p, size_t len);
int cwpp_avro_set_opt_bytes(avro_value_t *rec, const char *field, const void *p, size_t len);
/* Selects the record branch of an optional record field and returns it in *sub; or
 * selects null when present == 0. */
int cwpp_avro_opt_record(avro_value_t *rec, const char *field, int present, avro_value_t *sub);

/* Getters. Strings point into v and live as long as v is unchanged. */
int cwpp_avro_get_str(avro_value_t *rec, const char *field, const char **s);
int cwpp_avro_get_opt_str(avro_value_t *rec, const char *field, const char **s);
int cwpp_avro_get_long(avro_value_t *rec, const char *field, int64_t *v);
int cwpp_avro_get_int(avro_value_t *rec, const char *field, int32_t *v);
int cwpp_avro_get_opt_long(avro_value_t *rec, const char *field, int64_t *v, int *present);
int cwpp_avro_get_enum(avro_value_t *rec, const char *field, const char **symbol);
int cwpp_avro_get_bytes(avro_value_t *rec, const char *field, const void **p, size_t *len);
/* *present = 0 when the optional field is null; else *sub is the record. */
int cwpp_avro_get_opt_record(avro_value_t *rec, const char *field, int *present,
                             avro_value_t *sub);

#endif /* CWPP_AVRO_H */
