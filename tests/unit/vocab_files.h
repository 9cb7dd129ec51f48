/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vocab_files.h: what the unit tests need to check that the repository's files agree with
 * the vocabulary tables of the libs (entity types, alert and event statuses, whitelist
 * operators, actions). Each vocabulary is defined once, in a table; the Avro schemas and
 * the SQL CHECK constraints restate it because they must, and these helpers read them
 * from the source tree (CWPP_SOURCE_DIR) so that a list that disagrees fails the build's
 * tests with the name that differs.
 *
 *   vf_avro_enum()   the symbols of an Avro enum of a schemas .avsc file
 *   vf_avro_doc()    the names a field's "doc" lists ("a, b, c (docs/x.md).")
 *   vf_sql_check()   the values of "CHECK (column IN ('a', 'b'))" on a table, from the
 *                    LATEST migration of schemas/sql that sets it (migrations are
 *                    append-only: a later one replaces the constraint)
 *   vf_same_set()    fails naming every value one side has and the other lacks
 *
 * Header-only (static inline) because each test is one executable.
 */
#ifndef CWPP_VOCAB_FILES_H
#define CWPP_VOCAB_FILES_H

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VF_MAX  64 /* values in one list */
#define VF_NAME 64 /* bytes of one value */

typedef struct vf_list {
    size_t n;
    char   v[VF_MAX][VF_NAME];
    char   where[600]; /* the file (and table) it came from, for messages */
} vf_list_t;

/* The whole file at CWPP_SOURCE_DIR/rel, NUL-terminated (malloc'd), or NULL. */
static inline char *vf_read(const char *rel)
{
    char  path[1024];
    FILE *f;
    long  len;
    char *buf = NULL;

    snprintf(path, sizeof(path), "%s/%s", CWPP_SOURCE_DIR, rel);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) != NULL) {
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        } else {
            buf[len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

static inline void vf_add(vf_list_t *l, const char *s, size_t len)
{
    if (l->n < VF_MAX && len < VF_NAME) {
        memcpy(l->v[l->n], s, len);
        l->v[l->n][len] = '\0';
        l->n++;
    }
}

/* The enum named name anywhere inside j (depth first). */
static inline const json_t *vf_find_enum(const json_t *j, const char *name)
{
    const json_t *v, *hit;
    const char   *k;
    size_t        i;

    if (json_is_object(j)) {
        if (json_is_string(json_object_get(j, "type")) &&
            strcmp(json_string_value(json_object_get(j, "type")), "enum") == 0 &&
            json_is_string(json_object_get(j, "name")) &&
            strcmp(json_string_value(json_object_get(j, "name")), name) == 0)
            return j;
        json_object_foreach((json_t *)j, k, v)
            if ((hit = vf_find_enum(v, name)) != NULL)
                return hit;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            if ((hit = vf_find_enum(v, name)) != NULL)
                return hit;
    }
    return NULL;
}

/* The record field named field anywhere inside j (depth first). */
static inline const json_t *vf_find_field(const json_t *j, const char *field)
{
    const json_t *v, *hit;
    const char   *k;
    size_t        i;

    if (json_is_object(j)) {
        if (json_is_string(json_object_get(j, "name")) &&
            strcmp(json_string_value(json_object_get(j, "name")), field) == 0 &&
            json_object_get(j, "type") != NULL)
            return j;
        json_object_foreach((json_t *)j, k, v)
            if ((hit = vf_find_field(v, field)) != NULL)
                return hit;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            if ((hit = vf_find_field(v, field)) != NULL)
                return hit;
    }
    return NULL;
}

/* The symbols of the Avro enum enum_name in schemas file rel. 0, or -1 with why in
 * out->where (no file, not JSON, no such enum). */
static inline int vf_avro_enum(const char *rel, const char *enum_name, vf_list_t *out)
{
    char         *text = vf_read(rel);
    json_t       *root;
    const json_t *e, *s;
    size_t        i;

    memset(out, 0, sizeof(*out));
    snprintf(out->where, sizeof(out->where), "%s enum %s", rel, enum_name);
    if (text == NULL)
        return -1;
    root = json_loads(text, 0, NULL);
    free(text);
    if ((e = vf_find_enum(root, enum_name)) == NULL) {
        json_decref(root);
        return -1;
    }
    json_array_foreach(json_object_get(e, "symbols"), i, s)
        vf_add(out, json_string_value(s), strlen(json_string_value(s)));
    json_decref(root);
    return 0;
}

/* The names the "doc" of field (in schemas file rel) lists: words of [a-z0-9_] separated
 * by ", " up to the first other text ("a, b, c (docs/actions.md)."). 0 or -1. */
static inline int vf_avro_doc(const char *rel, const char *field, vf_list_t *out)
{
    char         *text = vf_read(rel);
    json_t       *root;
    const json_t *f;
    const char   *p;

    memset(out, 0, sizeof(*out));
    snprintf(out->where, sizeof(out->where), "%s, the doc of field %s", rel, field);
    if (text == NULL)
        return -1;
    root = json_loads(text, 0, NULL);
    free(text);
    if ((f = vf_find_field(root, field)) == NULL ||
        (p = json_string_value(json_object_get(f, "doc"))) == NULL) {
        json_decref(root);
        return -1;
    }
    for (;;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");

        if (n == 0)
            break;
        vf_add(out, p, n);
        p += n;
        if (strncmp(p, ", ", 2) != 0)
            break;
        p += 2;
    }
    json_decref(root);
    return 0;
}

/* s (lower-cased text) at i starts the word w, followed by a non-word byte. */
static inline int vf_word(const char *s, size_t i, const char *w)
{
    size_t n = strlen(w);

    return strncmp(s + i, w, n) == 0 && (i == 0 || !(isalnum((unsigned char)s[i - 1]) ||
                                                     s[i - 1] == '_')) &&
           !(isalnum((unsigned char)s[i + n]) || s[i + n] == '_');
}

static inline size_t vf_ws(const char *s, size_t i)
{
    while (isspace((unsigned char)s[i]))
        i++;
    return i;
}

/* In one statement (lower-cased, comments blanked): when it creates or alters table and
 * holds "check (column in ('a', ...))", the values into out (replacing what it held) and
 * returns 1; else 0. */
static inline int vf_stmt_check(const char *st, const char *table, const char *column,
                                vf_list_t *out)
{
    size_t i = vf_ws(st, 0), k;
    int    found = 0;

    if (vf_word(st, i, "create") && vf_word(st, vf_ws(st, i + 6), "table"))
        i = vf_ws(st, vf_ws(st, i + 6) + 5);
    else if (vf_word(st, i, "alter") && vf_word(st, vf_ws(st, i + 5), "table"))
        i = vf_ws(st, vf_ws(st, i + 5) + 5);
    else
        return 0;
    if (vf_word(st, i, "if")) /* IF [NOT] EXISTS */
        for (k = 0; k < 3 && !vf_word(st, i, "exists"); k++)
            i = vf_ws(st, i + strcspn(st + i, " \t\n"));
    if (vf_word(st, i, "exists"))
        i = vf_ws(st, i + 6);
    if (vf_word(st, i, "only"))
        i = vf_ws(st, i + 4);
    if (!vf_word(st, i, table))
        return 0;
    for (; st[i] != '\0'; i++) {
        size_t j;

        if (!vf_word(st, i, "check"))
            continue;
        j = vf_ws(st, i + 5);
        if (st[j] != '(')
            continue;
        j = vf_ws(st, j + 1);
        if (!vf_word(st, j, column))
            continue;
        j = vf_ws(st, j + strlen(column));
        if (!vf_word(st, j, "in"))
            continue;
        j = vf_ws(st, j + 2);
        if (st[j] != '(')
            continue;
        out->n = 0;
        found = 1;
        for (j++; st[j] != '\0' && st[j] != ')'; j++) {
            if (st[j] == '\'') {
                size_t e = j + 1 + strcspn(st + j + 1, "'");

                vf_add(out, st + j + 1, e - j - 1);
                j = st[e] != '\0' ? e : e - 1;
            }
        }
    }
    return found;
}

static inline int vf_cmp_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static inline int vf_is_migration(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return n > 8 && isdigit((unsigned char)d->d_name[0]) && isdigit((unsigned char)d->d_name[1]) &&
           isdigit((unsigned char)d->d_name[2]) && d->d_name[3] == '_' &&
           strcmp(d->d_name + n - 4, ".sql") == 0;
}

/*
 * The values of "CHECK (column IN (...))" on table as the migrations of schemas/sql
 * leave it: they are read in order and the latest statement that sets it wins. 0, or -1
 * when no migration sets it. out->where names the migration.
 */
static inline int vf_sql_check(const char *table, const char *column, vf_list_t *out)
{
    char            dir[1024];
    struct dirent **ents;
    int             n, i, found = 0;

    memset(out, 0, sizeof(*out));
    snprintf(dir, sizeof(dir), "%s/schemas/sql", CWPP_SOURCE_DIR);
    if ((n = scandir(dir, &ents, vf_is_migration, vf_cmp_names)) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        char  rel[512], *text, *p, *st;
        size_t k;

        snprintf(rel, sizeof(rel), "schemas/sql/%s", ents[i]->d_name);
        text = vf_read(rel);
        for (k = 0; text != NULL && text[k] != '\0'; k++) { /* lower case, blank comments */
            if (text[k] == '-' && text[k + 1] == '-')
                while (text[k] != '\0' && text[k] != '\n')
                    text[k++] = ' ';
            if (text[k] == '\0')
                break;
            text[k] = (char)tolower((unsigned char)text[k]);
        }
        for (p = text; p != NULL && (st = strsep(&p, ";")) != NULL;)
            if (vf_stmt_check(st, table, column, out)) {
                found = 1;
                snprintf(out->where, sizeof(out->where), "%s, CHECK on %s.%s", rel, table,
                         column);
            }
        free(text);
        free(ents[i]);
    }
    free(ents);
    return found ? 0 : -1;
}

/*
 * Compares the table's names (want, n of them; what names the table) with a list read
 * from a file. Returns the number of differences after printing one line per name that
 * one side has and the other lacks; a missing list counts as one.
 */
static inline int vf_diff(const char *what, const char *const *want, size_t n,
                          const vf_list_t *got, int found)
{
    size_t i, k;
    int    bad = 0;

    if (!found) {
        printf("VOCAB MISMATCH: cannot read %s (to compare with %s)\n", got->where, what);
        return 1;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < got->n && strcmp(got->v[k], want[i]) != 0; k++)
            ;
        if (k == got->n) {
            printf("VOCAB MISMATCH: %s lacks \"%s\", which %s has\n", got->where, want[i], what);
            bad++;
        }
    }
    for (k = 0; k < got->n; k++) {
        for (i = 0; i < n && strcmp(got->v[k], want[i]) != 0; i++)
            ;
        if (i == n) {
            printf("VOCAB MISMATCH: %s has \"%s\", which %s lacks\n", got->where, got->v[k],
                   what);
            bad++;
        }
    }
    return bad;
}

#endif /* CWPP_VOCAB_FILES_H */
