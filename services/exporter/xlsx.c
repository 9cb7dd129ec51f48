/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xlsx.c: the export workbook (libxlsxwriter), four sheets: Events, Affected assets,
 * Entities and Alerts (docs/exporter.md "Workbook"). The header row is bold on grey and frozen,
 * columns have widths, occurrence times are real Excel date cells (UTC). libxlsxwriter
 * writes a file: it is made in export.tmp.dir, read back and removed.
 */
#include "ex_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xlsxwriter.h>

typedef enum { C_STR, C_INT, C_TIME } kind_t;

typedef struct col {
    const char *key, *title;
    kind_t      kind;
    double      width;
} col_t;

static const col_t EVENT_COLS[] = {
    {"event_id", "Event ID", C_STR, 38},          {"name", "Name", C_STR, 32},
    {"level", "Level", C_STR, 10},                {"status", "Status", C_STR, 11},
    {"owner", "Owner", C_STR, 14},                {"stages", "ATT&CK stages", C_STR, 26},
    {"assets", "Affected assets", C_INT, 9},      {"alerts", "Alerts", C_INT, 8},
    {"first_ms", "First occurrence (UTC)", C_TIME, 20},
    {"last_ms", "Last occurrence (UTC)", C_TIME, 20},
    {"sources", "Alert sources", C_STR, 24},      {"urgency", "Urgency", C_STR, 10},
    {"reasons", "Urgency reasons", C_STR, 60},    {"handling", "Handling", C_STR, 50},
    {"assessed_urgency", "Assessed urgency", C_STR, 10},
};
static const col_t ASSET_COLS[] = {
    {"event_id", "Event ID", C_STR, 38}, {"asset_id", "Asset ID", C_STR, 20},
    {"name", "Name", C_STR, 24},         {"ips", "IP addresses", C_STR, 30},
    {"role", "Role", C_STR, 14},         {"alerts", "Alerts", C_INT, 8},
};
static const col_t ENTITY_COLS[] = {
    {"event_id", "Event ID", C_STR, 38},      {"type", "Entity type", C_STR, 13},
    {"value", "Value", C_STR, 48},            {"events", "Events (30 days)", C_INT, 10},
    {"alerts", "Alerts (30 days)", C_INT, 10}, {"tasks", "Handling tasks (30 days)", C_INT, 12},
};

/* Each alert of the exported events with the handling info its event's handling added
 * (the reference: "the event handling information is added to alert details"). */
static const col_t ALERT_COLS[] = {
    {"event_id", "Event ID", C_STR, 38},
    {"alert_id", "Alert ID", C_STR, 38},
    {"name", "Name", C_STR, 28},
    {"type", "Type", C_STR, 16},
    {"severity", "Severity", C_STR, 9},
    {"status", "Status", C_STR, 11},
    {"defense", "Defence", C_STR, 12},
    {"asset_id", "Asset ID", C_STR, 20},
    {"first_ms", "First occurrence (UTC)", C_TIME, 20},
    {"last_ms", "Last occurrence (UTC)", C_TIME, 20},
    {"occurrences", "Occurrences", C_INT, 9},
    {"handled_event", "Handled with event", C_STR, 38},
    {"handled_via", "Handled via", C_STR, 14},
    {"handled_by", "Handled by", C_STR, 14},
    {"handled_ms", "Handled at (UTC)", C_TIME, 20},
    {"handling_remark", "Handling remark", C_STR, 40},
};

/* Excel cells hold at most 32,767 characters; a longer value is cut (on a UTF-8 boundary)
 * and marked. */
static const char *cell_text(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);

    if (n < 32000)
        return s;
    n = 31990;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    snprintf(buf, size, "%.*s [cut]", (int)n, s);
    return buf;
}

static int sheet(lxw_workbook *wb, const char *name, const col_t *cols, size_t ncols,
                 const json_t *rows, lxw_format *head, lxw_format *date)
{
    lxw_worksheet *ws = workbook_add_worksheet(wb, name);
    static char    big[32100];
    size_t         r, k;

    if (ws == NULL)
        return -1;
    for (k = 0; k < ncols; k++) {
        worksheet_write_string(ws, 0, (lxw_col_t)k, cols[k].title, head);
        worksheet_set_column(ws, (lxw_col_t)k, (lxw_col_t)k, cols[k].width, NULL);
    }
    worksheet_freeze_panes(ws, 1, 0);
    for (r = 0; r < json_array_size(rows); r++) {
        const json_t *row = json_array_get(rows, r);

        for (k = 0; k < ncols; k++) {
            const json_t *v = json_object_get(row, cols[k].key);
            lxw_row_t     rr = (lxw_row_t)(r + 1);
            lxw_col_t     cc = (lxw_col_t)k;
            lxw_error     e = LXW_NO_ERROR;

            if (v == NULL || json_is_null(v))
                continue;
            if (cols[k].kind == C_INT && json_is_integer(v)) {
                e = worksheet_write_number(ws, rr, cc, (double)json_integer_value(v), NULL);
            } else if (cols[k].kind == C_TIME && json_is_integer(v)) {
                time_t        t = (time_t)(json_integer_value(v) / 1000);
                struct tm     tm;
                lxw_datetime  dt;

                gmtime_r(&t, &tm);
                dt.year = tm.tm_year + 1900;
                dt.month = tm.tm_mon + 1;
                dt.day = tm.tm_mday;
                dt.hour = tm.tm_hour;
                dt.min = tm.tm_min;
                dt.sec = tm.tm_sec + (double)(json_integer_value(v) % 1000) / 1000.0;
                e = worksheet_write_datetime(ws, rr, cc, &dt, date);
            } else if (json_is_string(v)) {
                e = worksheet_write_string(ws, rr, cc,
                                           cell_text(json_string_value(v), big, sizeof(big)),
                                           NULL);
            }
            if (e != LXW_NO_ERROR)
                return -1;
        }
    }
    if (json_array_size(rows) > 0)
        worksheet_autofilter(ws, 0, 0, (lxw_row_t)json_array_size(rows), (lxw_col_t)(ncols - 1));
    return 0;
}

int ex_workbook(const ex_conf_t *conf, const json_t *doc, unsigned char **out, size_t *len,
                char *errstr, size_t errstr_size)
{
    char          path[4096];
    int           fd;
    lxw_workbook *wb;
    lxw_format   *head, *date;
    lxw_error     e;
    struct stat   st;
    FILE         *fp;
    int           rc = CWPP_OK;

    *out = NULL;
    *len = 0;
    snprintf(path, sizeof(path), "%s/cwpp-export-XXXXXX", conf->tmp_dir);
    if ((fd = mkstemp(path)) < 0)
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot create a file in %s: %s",
                           conf->tmp_dir, strerror(errno));
    close(fd);
    {
        /* rows are written in order: constant memory, whatever the sheet sizes */
        lxw_workbook_options o = {.constant_memory = LXW_TRUE, .tmpdir = conf->tmp_dir};

        wb = workbook_new_opt(path, &o);
    }
    if (wb == NULL) {
        unlink(path);
        return cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot start the workbook");
    }
    head = workbook_add_format(wb);
    format_set_bold(head);
    format_set_bg_color(head, 0xD9D9D9);
    format_set_bottom(head, LXW_BORDER_THIN);
    format_set_text_wrap(head);
    date = workbook_add_format(wb);
    format_set_num_format(date, "yyyy-mm-dd hh:mm:ss");
    if (sheet(wb, "Events", EVENT_COLS, sizeof(EVENT_COLS) / sizeof(EVENT_COLS[0]),
              json_object_get(doc, "events"), head, date) != 0 ||
        sheet(wb, "Affected assets", ASSET_COLS, sizeof(ASSET_COLS) / sizeof(ASSET_COLS[0]),
              json_object_get(doc, "assets"), head, date) != 0 ||
        sheet(wb, "Entities", ENTITY_COLS, sizeof(ENTITY_COLS) / sizeof(ENTITY_COLS[0]),
              json_object_get(doc, "entities"), head, date) != 0 ||
        sheet(wb, "Alerts", ALERT_COLS, sizeof(ALERT_COLS) / sizeof(ALERT_COLS[0]),
              json_object_get(doc, "alerts"), head, date) != 0)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot fill a sheet");
    if ((e = workbook_close(wb)) != LXW_NO_ERROR && rc == CWPP_OK)
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot write the workbook: %s",
                         lxw_strerror(e));
    if (rc == CWPP_OK && (stat(path, &st) != 0 || st.st_size <= 0))
        rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "the workbook file is missing");
    if (rc == CWPP_OK) {
        *out = malloc((size_t)st.st_size);
        fp = fopen(path, "rb");
        if (*out == NULL || fp == NULL ||
            fread(*out, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
            free(*out);
            *out = NULL;
            rc = cwpp_seterr(errstr, errstr_size, CWPP_EIO, "cannot read the workbook back");
        } else {
            *len = (size_t)st.st_size;
        }
        if (fp != NULL)
            fclose(fp);
    }
    unlink(path);
    return rc;
}
