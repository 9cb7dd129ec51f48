/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avro.c: fingerprints, canonical form, the single-object codec and the datum validator.
 *
 * The canonical form is built as a new jansson tree in the specification's key order
 * (name, type, fields, symbols, items, values, size) and dumped compactly; names are made
 * full names by tracking the enclosing namespace while walking. The validator mirrors the
 * Avro binary encoding: zig-zag varints of at most 10 bytes, lengths and block counts
 * checked against the bytes that remain before anything is read or allocated.
 */
#include "cwpp_avro.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------------- fingerprint */

#define CRC64_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];
static int      crc64_ready;

static void crc64_init(void)
{
    int i, j;

    for (i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (CRC64_EMPTY & (0 - (fp & 1)));
        crc64_table[i] = fp;
    }
    crc64_ready = 1;
}

uint64_t cwpp_avro_crc64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t             fp = CRC64_EMPTY;
    size_t               i;

    if (!crc64_ready)
        crc64_init(); /* idempotent: racing threads write the same table */
    for (i = 0; i < len; i++)
        fp = (fp >> 8) ^ crc64_table[(fp ^ b[i]) & 0xff];
    return fp;
}

/* ----------------------------------------------------------------- canonical form */

static const char *const primitives[] = {"null", "boolean", "int", "long", "float",
                                         "double", "bytes", "string", NULL};

static int is_primitive(const char *s)
{
    int i;

    for (i = 0; primitives[i] != NULL; i++)
        if (strcmp(s, primitives[i]) == 0)
            return 1;
    return 0;
}

/* Full name of name within namespace ns ("" = none). Caller frees. */
static char *full_name(const char *name, const char *ns)
{
    char  *out;
    size_t n;

    if (strchr(name, '.') != NULL || ns == NULL || *ns == '\0')
        return strdup(name);
    n = strlen(ns) + 1 + strlen(name) + 1;
    out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s.%s", ns, name);
    return out;
}

/* Namespace part of a full name ("a.b.C" -> "a.b"), written into a new string. */
static char *namespace_of(const char *full)
{
    const char *dot = strrchr(full, '.');

    return dot == NULL ? strdup("") : strndup(full, (size_t)(dot - full));
}

static json_t *pcf(json_t *s, const char *ns, int depth, char *errstr, size_t errstr_size);

static json_t *pcf_named(json_t *s, const char *type, const char *ns, int depth,
                         char *errstr, size_t errstr_size)
{
    json_t     *out = NULL, *name_j, *nsj, *arr, *x;
    const char *name;
    char       *full = NULL, *inner_ns = NULL;
    size_t      i;

    name_j = json_object_get(s, "name");
    if (!json_is_string(name_j)) {
        cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s schema without a name", type);
        return NULL;
    }
    name = json_string_value(name_j);
    nsj = json_object_get(s, "namespace");
    if (strchr(name, '.') == NULL && json_is_string(nsj))
        full = full_name(name, json_string_value(nsj));
    else
        full = full_name(name, ns);
    if (full == NULL)
        goto oom;
    inner_ns = namespace_of(full);
    if (inner_ns == NULL)
        goto oom;

    out = json_object();
    if (out == NULL)
        goto oom;
    json_object_set_new(out, "name", json_string(full));
    json_object_set_new(out, "type", json_string(type));

    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        json_t *fields = json_object_get(s, "fields");
        if (!json_is_array(fields)) {
            cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "record %s without fields", full);
            goto fail;
        }
        arr = json_array();
        json_object_set_new(out, "fields", arr);
        json_array_foreach(fields, i, x) {
            json_t *f, *ft, *fn = json_object_get(x, "name");
            if (!json_is_string(fn) || (ft = json_object_get(x, "type")) == NULL) {
                cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "record %s: field %zu lacks "
                            "name or type", full, i);
                goto fail;
            }
            f = json_object();
            json_array_append_new(arr, f);
            json_object_set_new(f, "name", json_string(json_string_value(fn)));
            ft = pcf(ft, inner_ns, depth + 1, errstr, errstr_size);
            if (ft == NULL)
                goto fail;
            json_object_set_new(f, "type", ft);
        }
    } else if (strcmp(type, "enum") == 0) {
        json_t *syms = json_object_get(s, "symbols");
        if (!json_is_array(syms)) {
            cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "enum %s without symbols", full);
            goto fail;
        }
        arr = json_array();
        json_object_set_new(out, "symbols", arr);
        json_array_foreach(syms, i, x) {
            if (!json_is_string(x)) {
                cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "enum %s: symbol not a string",
                            full);
                goto fail;
            }
            json_array_append_new(arr, json_string(json_string_value(x)));
        }
    } else { /* fixed */
        json_t *size = json_object_get(s, "size");
        if (!json_is_integer(size)) {
            cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "fixed %s without size", full);
            goto fail;
        }
        json_object_set_new(out, "size", json_integer(json_integer_value(size)));
    }
    free(full);
    free(inner_ns);
    return out;
oom:
    cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
fail:
    json_decref(out);
    free(full);
    free(inner_ns);
    return NULL;
}

static json_t *pcf(json_t *s, const char *ns, int depth, char *errstr, size_t errstr_size)
{
    if (depth > 64) {
        cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "schema nested deeper than 64");
        return NULL;
    }
    if (json_is_string(s)) {
        const char *name = json_string_value(s);
        char       *full;
        json_t     *r;

        if (is_primitive(name))
            return json_string(name);
        full = full_name(name, ns); /* a reference to a named type */
        r = full != NULL ? json_string(full) : NULL;
        free(full);
        return r;
    }
    if (json_is_array(s)) {
        json_t *arr = json_array(), *x;
        size_t  i;

        json_array_foreach(s, i, x) {
            json_t *b = pcf(x, ns, depth + 1, errstr, errstr_size);
            if (b == NULL) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, b);
        }
        return arr;
    }
    if (json_is_object(s)) {
        json_t     *t = json_object_get(s, "type");
        const char *type;

        if (json_is_object(t) || json_is_array(t))
            return pcf(t, ns, depth + 1, errstr, errstr_size);
        if (!json_is_string(t)) {
            cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "schema object without a type");
            return NULL;
        }
        type = json_string_value(t);
        if (is_primitive(type))
            return json_string(type);
        if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ||
            strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)
            return pcf_named(s, type, ns, depth, errstr, errstr_size);
        if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
            const char *key = type[0] == 'a' ? "items" : "values";
            json_t     *sub = json_object_get(s, key), *out, *c;

            if (sub == NULL) {
                cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s without %s", type, key);
                return NULL;
            }
            c = pcf(sub, ns, depth + 1, errstr, errstr_size);
            if (c == NULL)
                return NULL;
            out = json_object();
            json_object_set_new(out, "type", json_string(type));
            json_object_set_new(out, key, c);
            return out;
        }
        /* a named type referenced as {"type": "Name"} */
        return pcf(t, ns, depth + 1, errstr, errstr_size);
    }
    cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "schema is not a string, array or object");
    return NULL;
}

int cwpp_avro_canonical(const char *json, size_t len, char **out, char *errstr,
                        size_t errstr_size)
{
    json_error_t jerr;
    json_t      *root, *c;

    *out = NULL;
    root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "schema is not JSON: %s",
                           jerr.text);
    c = pcf(root, "", 0, errstr, errstr_size);
    json_decref(root);
    if (c == NULL)
        return CWPP_EINVAL;
    *out = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(c);
    if (*out == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    return CWPP_OK;
}

/* ----------------------------------------------------------------------- types */

struct cwpp_avro_type {
    avro_schema_t       schema;      /* avro-c schema, owned */
    avro_value_iface_t *iface;       /* generic value class, owned */
    char               *canonical;   /* Parsing Canonical Form */
    uint64_t            fingerprint; /* CRC-64-AVRO of canonical */
};

cwpp_avro_type_t *cwpp_avro_type_new(const char *json, size_t len, char *errstr,
                                     size_t errstr_size)
{
    cwpp_avro_type_t *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
        return NULL;
    }
    if (cwpp_avro_canonical(json, len, &t->canonical, errstr, errstr_size) != CWPP_OK)
        goto fail;
    t->fingerprint = cwpp_avro_crc64(t->canonical, strlen(t->canonical));
    if (avro_schema_from_json_length(json, len, &t->schema) != 0) {
        cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "avro-c rejects the schema: %s",
                    avro_strerror());
        goto fail;
    }
    t->iface = avro_generic_class_from_schema(t->schema);
    if (t->iface == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "avro-c cannot build a value class: %s",
                    avro_strerror());
        goto fail;
    }
    return t;
fail:
    cwpp_avro_type_destroy(t);
    return NULL;
}

void cwpp_avro_type_destroy(cwpp_avro_type_t *t)
{
    if (t == NULL)
        return;
    if (t->iface != NULL)
        avro_value_iface_decref(t->iface);
    if (t->schema != NULL)
        avro_schema_decref(t->schema);
    free(t->canonical);
    free(t);
}

uint64_t cwpp_avro_type_fingerprint(const cwpp_avro_type_t *t)
{
    return t->fingerprint;
}

const char *cwpp_avro_type_canonical(const cwpp_avro_type_t *t)
{
    return t->canonical;
}

avro_schema_t cwpp_avro_type_schema(const cwpp_avro_type_t *t)
{
    return t->schema;
}

/* Generated at build time from schemas/NAME.avsc (cmake/embed_schemas.cmake). */
struct cwpp_schema_text {
    const char          *name;
    const unsigned char *text;
    size_t               len;
};
extern const struct cwpp_schema_text cwpp_schema_texts[];
extern const size_t                  cwpp_schema_texts_count;

const char *cwpp_avro_builtin_text(const char *name, size_t *lenp)
{
    size_t i;

    for (i = 0; i < cwpp_schema_texts_count; i++) {
        if (strcmp(cwpp_schema_texts[i].name, name) == 0) {
            if (lenp != NULL)
                *lenp = cwpp_schema_texts[i].len;
            return (const char *)cwpp_schema_texts[i].text;
        }
    }
    return NULL;
}

cwpp_avro_type_t *cwpp_avro_type_builtin(const char *name, char *errstr, size_t errstr_size)
{
    size_t      len;
    const char *text = cwpp_avro_builtin_text(name, &len);

    if (text == NULL) {
        cwpp_seterr(errstr, errstr_size, CWPP_ENOTFOUND, "no compiled-in schema \"%s\"", name);
        return NULL;
    }
    return cwpp_avro_type_new(text, len, errstr, errstr_size);
}

int cwpp_avro_value_new(const cwpp_avro_type_t *t, avro_value_t *v)
{
    return avro_generic_value_new(t->iface, v) == 0 ? CWPP_OK : CWPP_ENOMEM;
}

/* ---------------------------------------------------------------------- codec */

int cwpp_avro_encode(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *out,
                     char *errstr, size_t errstr_size)
{
    size_t        size = 0, start;
    avro_writer_t w;
    int           i;
    unsigned char hdr[CWPP_AVRO_HEADER_LEN];

    if (avro_value_sizeof(v, &size) != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot size the value: %s",
                           avro_strerror());
    hdr[0] = 0xC3;
    hdr[1] = 0x01;
    for (i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(t->fingerprint >> (8 * i));
    if (cwpp_buf_reserve(out, sizeof(hdr) + size) != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    cwpp_buf_append(out, hdr, sizeof(hdr));
    start = out->len;
    w = avro_writer_memory((const char *)out->data + start, (int64_t)size);
    if (w == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    if (avro_value_write(w, v) != 0 || avro_writer_tell(w) != (int64_t)size) {
        avro_writer_free(w);
        out->len -= sizeof(hdr);
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "cannot write the value: %s",
                           avro_strerror());
    }
    avro_writer_free(w);
    out->len = start + size;
    return CWPP_OK;
}

int cwpp_avro_decode(const cwpp_avro_type_t *t, const void *buf, size_t len, avro_value_t *v,
                     char *errstr, size_t errstr_size)
{
    const unsigned char *b = buf;
    uint64_t             fp = 0;
    avro_reader_t        r;
    int                  i, rc;

    if (len < CWPP_AVRO_HEADER_LEN || b[0] != 0xC3 || b[1] != 0x01)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "not Avro single-object encoded (no C3 01 marker)");
    for (i = 0; i < 8; i++)
        fp |= (uint64_t)b[2 + i] << (8 * i);
    if (fp != t->fingerprint)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "written with another schema (fingerprint %016llx, expected %016llx)",
                           (unsigned long long)fp, (unsigned long long)t->fingerprint);
    if ((rc = cwpp_avro_validate(t->schema, b + CWPP_AVRO_HEADER_LEN, len - CWPP_AVRO_HEADER_LEN,
                                 errstr, errstr_size)) != CWPP_OK)
        return rc;
    avro_value_reset(v);
    r = avro_reader_memory((const char *)b + CWPP_AVRO_HEADER_LEN,
                           (int64_t)(len - CWPP_AVRO_HEADER_LEN));
    if (r == NULL)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "out of memory");
    rc = avro_value_read(r, v);
    avro_reader_free(r);
    if (rc != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "avro-c cannot read the datum: %s",
                           avro_strerror());
    return CWPP_OK;
}

/* ------------------------------------------------------------------ validator */

typedef struct vstate {
    const unsigned char *p;
    size_t               left;
    char                *errstr;
    size_t               errstr_size;
    size_t               elements; /* elements of zero-width types seen, capped */
} vstate_t;

#define CWPP_AVRO_MAX_DEPTH        64
#define CWPP_AVRO_MAX_ZERO_WIDTH   65536

static int v_fail(vstate_t *s, const char *what)
{
    return cwpp_seterr(s->errstr, s->errstr_size, CWPP_EINVAL, "bad Avro datum: %s", what);
}

static int v_long(vstate_t *s, int64_t *out)
{
    uint64_t u = 0;
    int      shift = 0;

    for (;;) {
        unsigned char c;

        if (s->left == 0)
            return v_fail(s, "truncated varint");
        if (shift >= 64)
            return v_fail(s, "varint longer than 10 bytes");
        c = *s->p++;
        s->left--;
        u |= (uint64_t)(c & 0x7f) << shift;
        if ((c & 0x80) == 0)
            break;
        shift += 7;
    }
    *out = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return CWPP_OK;
}

static int v_skip(vstate_t *s, size_t n, const char *what)
{
    if (n > s->left)
        return v_fail(s, what);
    s->p += n;
    s->left -= n;
    return CWPP_OK;
}

/* Smallest encoded size of a datum of schema: bounds block counts. */
static size_t v_min_size(avro_schema_t sch, int depth)
{
    size_t i, n, sum = 0;

    if (depth > CWPP_AVRO_MAX_DEPTH)
        return 1;
    switch (avro_typeof(sch)) {
    case AVRO_NULL:    return 0;
    case AVRO_FLOAT:   return 4;
    case AVRO_DOUBLE:  return 8;
    case AVRO_FIXED:   return (size_t)avro_schema_fixed_size(sch);
    case AVRO_LINK:    return v_min_size(avro_schema_link_target(sch), depth + 1);
    case AVRO_RECORD:
        n = avro_schema_record_size(sch);
        for (i = 0; i < n; i++)
            sum += v_min_size(avro_schema_record_field_get_by_index(sch, (int)i), depth + 1);
        return sum;
    default:           return 1;
    }
}

static int v_datum(vstate_t *s, avro_schema_t sch, int depth);

static int v_blocks(vstate_t *s, avro_schema_t item, int is_map, int depth)
{
    size_t min = v_min_size(item, depth) + (is_map ? 1 : 0);
    int    rc;

    for (;;) {
        int64_t count, i;

        if ((rc = v_long(s, &count)) != CWPP_OK)
            return rc;
        if (count == 0)
            return CWPP_OK;
        if (count < 0) {
            int64_t bytes;
            if (count == INT64_MIN)
                return v_fail(s, "block count out of range");
            count = -count;
            if ((rc = v_long(s, &bytes)) != CWPP_OK)
                return rc;
            if (bytes < 0 || (uint64_t)bytes > s->left)
                return v_fail(s, "block size larger than the data");
        }
        if (min > 0 && (uint64_t)count > s->left / min)
            return v_fail(s, "block count larger than the data can hold");
        if (min == 0) {
            if ((uint64_t)count > CWPP_AVRO_MAX_ZERO_WIDTH - s->elements)
                return v_fail(s, "too many zero-width elements");
            s->elements += (size_t)count;
        }
        for (i = 0; i < count; i++) {
            if (is_map && (rc = v_datum(s, avro_schema_string(), depth + 1)) != CWPP_OK)
                return rc;
            if ((rc = v_datum(s, item, depth + 1)) != CWPP_OK)
                return rc;
        }
    }
}

static int v_datum(vstate_t *s, avro_schema_t sch, int depth)
{
    int64_t n;
    int     rc;
    size_t  i, nf;

    if (depth > CWPP_AVRO_MAX_DEPTH)
        return v_fail(s, "nested too deeply");
    switch (avro_typeof(sch)) {
    case AVRO_NULL:
        return CWPP_OK;
    case AVRO_BOOLEAN:
        if (s->left == 0)
            return v_fail(s, "truncated boolean");
        if (*s->p > 1)
            return v_fail(s, "boolean byte not 0 or 1");
        return v_skip(s, 1, "truncated boolean");
    case AVRO_INT32:
        if ((rc = v_long(s, &n)) != CWPP_OK)
            return rc;
        if (n < INT32_MIN || n > INT32_MAX)
            return v_fail(s, "int out of range");
        return CWPP_OK;
    case AVRO_INT64:
        return v_long(s, &n);
    case AVRO_FLOAT:
        return v_skip(s, 4, "truncated float");
    case AVRO_DOUBLE:
        return v_skip(s, 8, "truncated double");
    case AVRO_BYTES:
    case AVRO_STRING:
        if ((rc = v_long(s, &n)) != CWPP_OK)
            return rc;
        if (n < 0 || (uint64_t)n > s->left)
            return v_fail(s, "length larger than the data");
        if (avro_typeof(sch) == AVRO_STRING && !cwpp_utf8_valid(s->p, (size_t)n))
            return v_fail(s, "string not valid UTF-8");
        return v_skip(s, (size_t)n, "truncated bytes");
    case AVRO_FIXED:
        return v_skip(s, (size_t)avro_schema_fixed_size(sch), "truncated fixed");
    case AVRO_ENUM:
        if ((rc = v_long(s, &n)) != CWPP_OK)
            return rc;
        if (n < 0 || n >= avro_schema_enum_number_of_symbols(sch))
            return v_fail(s, "unknown enum symbol index");
        return CWPP_OK;
    case AVRO_UNION:
        if ((rc = v_long(s, &n)) != CWPP_OK)
            return rc;
        if (n < 0 || (uint64_t)n >= avro_schema_union_size(sch))
            return v_fail(s, "unknown union branch");
        return v_datum(s, avro_schema_union_branch(sch, (int)n), depth + 1);
    case AVRO_RECORD:
        nf = avro_schema_record_size(sch);
        for (i = 0; i < nf; i++) {
            rc = v_datum(s, avro_schema_record_field_get_by_index(sch, (int)i), depth + 1);
            if (rc != CWPP_OK)
                return rc;
        }
        return CWPP_OK;
    case AVRO_ARRAY:
        return v_blocks(s, avro_schema_array_items(sch), 0, depth);
    case AVRO_MAP:
        return v_blocks(s, avro_schema_map_values(sch), 1, depth);
    case AVRO_LINK:
        return v_datum(s, avro_schema_link_target(sch), depth + 1);
    }
    return v_fail(s, "unsupported schema type");
}

int cwpp_avro_validate(avro_schema_t schema, const void *p, size_t len, char *errstr,
                       size_t errstr_size)
{
    vstate_t s = {p, len, errstr, errstr_size, 0};
    int      rc = v_datum(&s, schema, 0);

    if (rc != CWPP_OK)
        return rc;
    if (s.left != 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL,
                           "bad Avro datum: %zu trailing bytes", s.left);
    return CWPP_OK;
}

/* -------------------------------------------------------------------- fields */

static int field(avro_value_t *rec, const char *name, avro_value_t *out)
{
    return avro_value_get_by_name(rec, name, out, NULL) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK || s == NULL)
        return CWPP_EINVAL;
    return avro_value_set_string_len(&f, s, strlen(s) + 1) == 0 ? CWPP_OK : CWPP_EINVAL;
}

/* Selects branch 0 (null) or 1 (value) of an optional field. */
static int opt_branch(avro_value_t *rec, const char *name, int present, avro_value_t *branch)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    if (avro_value_set_branch(&f, present ? 1 : 0, branch) != 0)
        return CWPP_EINVAL;
    if (!present)
        return avro_value_set_null(branch) == 0 ? CWPP_OK : CWPP_EINVAL;
    return CWPP_OK;
}

int cwpp_avro_set_opt_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t b;

    if (opt_branch(rec, name, s != NULL, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (s == NULL)
        return CWPP_OK;
    return avro_value_set_string_len(&b, s, strlen(s) + 1) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_set_long(&f, v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_int(avro_value_t *rec, const char *name, int32_t v)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_set_int(&f, v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_opt_long(avro_value_t *rec, const char *name, const int64_t *v)
{
    avro_value_t b;

    if (opt_branch(rec, name, v != NULL, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (v == NULL)
        return CWPP_OK;
    return avro_value_set_long(&b, *v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_enum(avro_value_t *rec, const char *name, const char *symbol)
{
    avro_value_t  f;
    avro_schema_t sch;
    int           idx;

    if (field(rec, name, &f) != CWPP_OK || symbol == NULL)
        return CWPP_EINVAL;
    sch = avro_value_get_schema(&f);
    if (sch == NULL || avro_typeof(sch) != AVRO_ENUM)
        return CWPP_EINVAL;
    idx = avro_schema_enum_get_by_name(sch, symbol);
    if (idx < 0)
        return CWPP_EINVAL;
    return avro_value_set_enum(&f, idx) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_bytes(avro_value_t *rec, const char *name, const void *p, size_t len)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_set_bytes(&f, (void *)(uintptr_t)p, len) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_set_opt_bytes(avro_value_t *rec, const char *name, const void *p, size_t len)
{
    avro_value_t b;

    if (opt_branch(rec, name, p != NULL, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (p == NULL)
        return CWPP_OK;
    return avro_value_set_bytes(&b, (void *)(uintptr_t)p, len) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_opt_record(avro_value_t *rec, const char *name, int present, avro_value_t *sub)
{
    avro_value_t b;

    if (opt_branch(rec, name, present, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (present && sub != NULL)
        *sub = b;
    return CWPP_OK;
}

int cwpp_avro_get_str(avro_value_t *rec, const char *name, const char **s)
{
    avro_value_t f;
    size_t       size;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_get_string(&f, s, &size) == 0 ? CWPP_OK : CWPP_EINVAL;
}

/* Current branch of an optional field: *present 0 for null. */
static int opt_get(avro_value_t *rec, const char *name, int *present, avro_value_t *branch)
{
    avro_value_t f;
    int          disc;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    if (avro_value_get_discriminant(&f, &disc) != 0 ||
        avro_value_get_current_branch(&f, branch) != 0)
        return CWPP_EINVAL;
    *present = avro_typeof(avro_value_get_schema(branch)) != AVRO_NULL;
    return CWPP_OK;
}

int cwpp_avro_get_opt_str(avro_value_t *rec, const char *name, const char **s)
{
    avro_value_t b;
    int          present;
    size_t       size;

    *s = NULL;
    if (opt_get(rec, name, &present, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (!present)
        return CWPP_OK;
    return avro_value_get_string(&b, s, &size) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_long(avro_value_t *rec, const char *name, int64_t *v)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_get_long(&f, v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_int(avro_value_t *rec, const char *name, int32_t *v)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_get_int(&f, v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_opt_long(avro_value_t *rec, const char *name, int64_t *v, int *present)
{
    avro_value_t b;

    if (opt_get(rec, name, present, &b) != CWPP_OK)
        return CWPP_EINVAL;
    if (!*present)
        return CWPP_OK;
    return avro_value_get_long(&b, v) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_enum(avro_value_t *rec, const char *name, const char **symbol)
{
    avro_value_t f;
    int          idx;

    if (field(rec, name, &f) != CWPP_OK || avro_value_get_enum(&f, &idx) != 0)
        return CWPP_EINVAL;
    *symbol = avro_schema_enum_get(avro_value_get_schema(&f), idx);
    return *symbol != NULL ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_bytes(avro_value_t *rec, const char *name, const void **p, size_t *len)
{
    avro_value_t f;

    if (field(rec, name, &f) != CWPP_OK)
        return CWPP_EINVAL;
    return avro_value_get_bytes(&f, p, len) == 0 ? CWPP_OK : CWPP_EINVAL;
}

int cwpp_avro_get_opt_record(avro_value_t *rec, const char *name, int *present,
                             avro_value_t *sub)
{
    return opt_get(rec, name, present, sub);
}

/* ------------------------------------------------------------- from JSON */

static int from_json(avro_value_t *v, const json_t *j, const char *path, char *errstr,
                     size_t errstr_size, int depth)
{
    avro_schema_t sch = avro_value_get_schema(v);
    size_t        i, n;

    if (sch == NULL || depth > 32)
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: nested too deep", path);
    switch (avro_typeof(sch)) {
    case AVRO_RECORD:
        if (!json_is_object(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not an object", path);
        if (avro_value_get_size(v, &n) != 0)
            return CWPP_EINVAL;
        for (i = 0; i < n; i++) {
            avro_value_t f;
            const char  *name;
            int          rc;

            if (avro_value_get_by_index(v, i, &f, &name) != 0)
                return CWPP_EINVAL;
            if ((rc = from_json(&f, json_object_get(j, name), name, errstr, errstr_size,
                                depth + 1)) != CWPP_OK)
                return rc;
        }
        return CWPP_OK;
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(sch), null_b = nb, other_b = nb;
        avro_value_t b;

        for (i = 0; i < nb; i++) {
            if (avro_typeof(avro_schema_union_branch(sch, (int)i)) == AVRO_NULL)
                null_b = i;
            else if (other_b == nb)
                other_b = i;
        }
        if (j == NULL || json_is_null(j)) {
            if (null_b == nb)
                return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: null", path);
            return avro_value_set_branch(v, (int)null_b, &b) == 0 && avro_value_set_null(&b) == 0
                       ? CWPP_OK : CWPP_EINVAL;
        }
        if (other_b == nb || avro_value_set_branch(v, (int)other_b, &b) != 0)
            return CWPP_EINVAL;
        return from_json(&b, j, path, errstr, errstr_size, depth + 1);
    }
    case AVRO_ARRAY:
        if (j == NULL || json_is_null(j))
            return CWPP_OK; /* an empty list */
        if (!json_is_array(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not a list", path);
        for (i = 0; i < json_array_size(j); i++) {
            avro_value_t x;
            int          rc;

            if (avro_value_append(v, &x, NULL) != 0)
                return CWPP_ENOMEM;
            if ((rc = from_json(&x, json_array_get(j, i), path, errstr, errstr_size,
                                depth + 1)) != CWPP_OK)
                return rc;
        }
        return CWPP_OK;
    case AVRO_STRING:
        if (!json_is_string(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not a text", path);
        return avro_value_set_string_len(v, json_string_value(j), json_string_length(j) + 1) == 0
                   ? CWPP_OK : CWPP_EINVAL;
    case AVRO_INT32:
        if (!json_is_integer(j) || json_integer_value(j) < INT32_MIN ||
            json_integer_value(j) > INT32_MAX)
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not an int", path);
        return avro_value_set_int(v, (int32_t)json_integer_value(j)) == 0 ? CWPP_OK : CWPP_EINVAL;
    case AVRO_INT64:
        if (!json_is_integer(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not a long", path);
        return avro_value_set_long(v, json_integer_value(j)) == 0 ? CWPP_OK : CWPP_EINVAL;
    case AVRO_DOUBLE:
        if (!json_is_number(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not a number", path);
        return avro_value_set_double(v, json_number_value(j)) == 0 ? CWPP_OK : CWPP_EINVAL;
    case AVRO_BOOLEAN:
        if (j == NULL || json_is_null(j))
            return avro_value_set_boolean(v, 0) == 0 ? CWPP_OK : CWPP_EINVAL; /* missing */
        if (!json_is_boolean(j))
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not true/false", path);
        return avro_value_set_boolean(v, json_is_true(j)) == 0 ? CWPP_OK : CWPP_EINVAL;
    case AVRO_ENUM: {
        int idx = json_is_string(j) ? avro_schema_enum_get_by_name(sch, json_string_value(j))
                                    : -1;

        if (idx < 0)
            return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: not a symbol of %s", path,
                               avro_schema_name(sch));
        return avro_value_set_enum(v, idx) == 0 ? CWPP_OK : CWPP_EINVAL;
    }
    case AVRO_NULL:
        return avro_value_set_null(v) == 0 ? CWPP_OK : CWPP_EINVAL;
    default:
        return cwpp_seterr(errstr, errstr_size, CWPP_EINVAL, "%s: type not supported", path);
    }
}

int cwpp_avro_from_json(avro_value_t *v, const json_t *j, char *errstr, size_t errstr_size)
{
    avro_value_reset(v);
    return from_json(v, j, "record", errstr, errstr_size, 0);
}
