/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.c: a change is a Command record on <prefix>commands; the owning service
 * answers on <prefix>command-results. To never miss the answer, the result topic's end
 * offsets are read and assigned before the command is produced; then the results are
 * read from there until the answer with our command id arrives or the timeout passes.
 */
#include "ctl.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cwpp_avro.h"
#include "cwpp_config.h"
#include "cwpp_kafka.h"
#include "cwpp_util.h"

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

PGconn *ctl_pg(ctl_t *c)
{
    if (c->pg != NULL)
        return c->pg;
    c->pg = PQconnectdb(c->pg_dsn);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        char *m = PQerrorMessage(c->pg);
        size_t n = strlen(m);

        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
        ctl_fail(CTL_INFRA, "cannot connect to PostgreSQL (CWPP_CTL_PG_DSN): %s", m);
        PQfinish(c->pg);
        c->pg = NULL;
        return NULL;
    }
    PQclear(PQexec(c->pg, "SET search_path = cwpp"));
    /* jansson takes UTF-8 only; the server converts whatever the database holds */
    PQsetClientEncoding(c->pg, "UTF8");
    return c->pg;
}

int ctl_query_failed(PGconn *pg, PGresult *r)
{
    ctl_fail(CTL_INFRA, "query failed: %s", r != NULL ? PQresultErrorMessage(r)
                                                      : PQerrorMessage(pg));
    PQclear(r);
    return CTL_INFRA;
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

static void new_command_id(char *buf, size_t size)
{
    unsigned char r[16];
    FILE         *f = fopen("/dev/urandom", "rb");
    size_t        i, got = f != NULL ? fread(r, 1, sizeof(r), f) : 0;

    if (f != NULL)
        fclose(f);
    for (i = got; i < sizeof(r); i++) /* /dev/urandom always exists on Linux; belt and braces */
        r[i] = (unsigned char)(rand() ^ (int)getpid() ^ (int)cwpp_now_ms());
    snprintf(buf, size, "cmd-");
    for (i = 0; i < sizeof(r); i++)
        snprintf(buf + 4 + 2 * i, size - 4 - 2 * i, "%02x", r[i]);
}

static rd_kafka_conf_t *base_conf(ctl_t *c, char *errstr, size_t errstr_size)
{
    cwpp_kvlist_t    props = {0};
    rd_kafka_conf_t *conf;

    if (c->kafka_props != NULL && c->kafka_props[0] != '\0' &&
        cwpp_kvlist_parse(&props, c->kafka_props, errstr, errstr_size) != CWPP_OK)
        return NULL;
    conf = cwpp_kafka_conf(c->brokers, &props, errstr, errstr_size);
    cwpp_kvlist_free(&props);
    return conf;
}

/* Assigns every partition of topic at its current end. */
static int assign_end(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                      size_t errstr_size)
{
    const rd_kafka_metadata_t       *md = NULL;
    rd_kafka_topic_t                *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t              err;
    int                              i, np;
    int64_t                          deadline;

    deadline = cwpp_mono_ms() + timeout_ms;
    /* a topic just created may not be known to every broker yet: retry until the timeout */
    for (;;) {
        err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
            md->topics[0].err == 0 && md->topics[0].partition_cnt > 0)
            break;
        if (cwpp_mono_ms() >= deadline)
            break;
        if (md != NULL) {
            rd_kafka_metadata_destroy(md);
            md = NULL;
        }
        usleep(200 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != 0 ||
        md->topics[0].partition_cnt == 0) {
        snprintf(errstr, errstr_size, "cannot read topic %s from the brokers: %s", topic,
                 err != 0 ? rd_kafka_err2str(err)
                          : md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "no topic");
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    np = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    l = rd_kafka_topic_partition_list_new(np);
    for (i = 0; i < np; i++) {
        int64_t lo = 0, hi = 0;

        /* a topic just created may not have its leaders yet: retry until the timeout */
        while ((err = rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 2000)) !=
                   RD_KAFKA_RESP_ERR_NO_ERROR &&
               cwpp_mono_ms() < deadline)
            usleep(200 * 1000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "cannot read the end of %s[%d]: %s", topic, i,
                     rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
    }
    err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "cannot assign %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* The delivery report: the broker's verdict on the command record. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    *(rd_kafka_resp_err_t *)opaque = m->err;
}

static int produce_command(ctl_t *c, const char *topic, const char *id, const void *val,
                           size_t len, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t delivered = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_conf_t    *conf = base_conf(c, errstr, errstr_size);
    rd_kafka_t         *rk;
    rd_kafka_resp_err_t err;

    if (conf == NULL)
        return -1;
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "acks", "all", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &delivered);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(id, strlen(id)),
                            RD_KAFKA_V_VALUE((void *)val, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = rd_kafka_flush(rk, c->timeout_s * 1000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_outq_len(rk) > 0)
        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = delivered; /* flush returns once the record is done, delivered or not */
    rd_kafka_destroy(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "cannot send the command to %s: %s", topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int ctl_send(ctl_t *c, const char *service, const char *type, json_t *payload, char **status,
             char **message, json_t **result)
{
    char              id[64], cmd_topic[256], res_topic[256], errstr[512];
    cwpp_avro_type_t *tc = NULL, *tr = NULL;
    avro_value_t      vc, vr;
    cwpp_buf_t        buf = {0};
    rd_kafka_conf_t  *conf = NULL;
    rd_kafka_t       *cons = NULL;
    char             *pj = NULL;
    int               rc = CTL_INFRA, have_vc = 0, have_vr = 0, bar_open = 0;
    int64_t           deadline;

    *status = *message = NULL;
    *result = NULL;
    new_command_id(id, sizeof(id));
    cwpp_topic_name(c->prefix, CWPP_TOPIC_COMMANDS, cmd_topic, sizeof(cmd_topic));
    cwpp_topic_name(c->prefix, CWPP_TOPIC_COMMAND_RESULTS, res_topic, sizeof(res_topic));
    if ((tc = cwpp_avro_type_builtin("command", errstr, sizeof(errstr))) == NULL ||
        (tr = cwpp_avro_type_builtin("command_result", errstr, sizeof(errstr))) == NULL ||
        cwpp_avro_value_new(tc, &vc) != CWPP_OK || !(have_vc = 1) ||
        cwpp_avro_value_new(tr, &vr) != CWPP_OK || !(have_vr = 1)) {
        ctl_fail(CTL_INFRA, "cannot set up the Avro schemas: %s", errstr);
        goto out;
    }
    pj = json_dumps(payload, JSON_COMPACT);
    if (pj == NULL ||
        cwpp_avro_set_str(&vc, "command_id", id) != CWPP_OK ||
        cwpp_avro_set_str(&vc, "service", service) != CWPP_OK ||
        cwpp_avro_set_str(&vc, "type", type) != CWPP_OK ||
        cwpp_avro_set_str(&vc, "actor", c->actor) != CWPP_OK ||
        cwpp_avro_set_long(&vc, "issued_at_ms", cwpp_now_ms()) != CWPP_OK ||
        cwpp_avro_set_str(&vc, "payload_json", pj) != CWPP_OK ||
        cwpp_avro_encode(tc, &vc, &buf, errstr, sizeof(errstr)) != CWPP_OK) {
        ctl_fail(CTL_INFRA, "cannot encode the command");
        goto out;
    }

    /* 1. listen from the end of the results, 2. send, 3. wait for our answer */
    if ((conf = base_conf(c, errstr, sizeof(errstr))) == NULL) {
        ctl_fail(CTL_INFRA, "bad Kafka settings: %s", errstr);
        goto out;
    }
    rd_kafka_conf_set(conf, "group.id", id, NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", NULL, 0);
    cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (cons == NULL) {
        rd_kafka_conf_destroy(conf);
        ctl_fail(CTL_INFRA, "cannot create a Kafka consumer: %s", errstr);
        goto out;
    }
    if (assign_end(cons, res_topic, c->timeout_s * 1000, errstr, sizeof(errstr)) != 0 ||
        produce_command(c, cmd_topic, id, buf.data, buf.len, errstr, sizeof(errstr)) != 0) {
        ctl_fail(CTL_INFRA, "%s (is Kafka running at %s?)", errstr, c->brokers);
        goto out;
    }
    deadline = cwpp_mono_ms() + (int64_t)c->timeout_s * 1000;
    while (cwpp_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
        const char         *s;

        if (m == NULL)
            continue;
        if (m->err == 0 && m->key_len == strlen(id) && memcmp(m->key, id, m->key_len) == 0 &&
            cwpp_avro_decode(tr, m->payload, m->len, &vr, errstr, sizeof(errstr)) == CWPP_OK &&
            cwpp_avro_get_str(&vr, "command_id", &s) == CWPP_OK && strcmp(s, id) == 0) {
            const char  *st = NULL, *msg = NULL, *rj = NULL;
            json_error_t jerr;

            cwpp_avro_get_enum(&vr, "status", &st);
            cwpp_avro_get_str(&vr, "message", &msg);
            cwpp_avro_get_str(&vr, "result_json", &rj);
            if (st != NULL && strcmp(st, "progress") == 0) {
                json_t *pr = rj != NULL ? json_loads(rj, 0, &jerr) : NULL;
                json_t *pc = json_object_get(pr, "percent");

                if (!c->json && msg != NULL && json_is_integer(pc)) {
                    /* a bar: [#####.....]  50% what is being done */
                    int  pct = (int)json_integer_value(pc), k;
                    char bar[21];

                    pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
                    for (k = 0; k < 20; k++)
                        bar[k] = k < pct / 5 ? '#' : '.';
                    bar[20] = '\0';
                    fprintf(stderr, "\r[%s] %3d%% %-50.50s", bar, pct, msg);
                    bar_open = 1;
                } else if (!c->json && msg != NULL) {
                    fprintf(stderr, "%s\n", msg);
                }
                json_decref(pr);
                rd_kafka_message_destroy(m);
                deadline = cwpp_mono_ms() + (int64_t)c->timeout_s * 1000;
                continue;
            }
            if (bar_open)
                fputc('\n', stderr); /* after the progress bar */
            *status = strdup(st != NULL ? st : "error");
            *message = strdup(msg != NULL ? msg : "");
            *result = rj != NULL ? json_loads(rj, 0, &jerr) : NULL;
            if (*result == NULL)
                *result = json_object();
            rd_kafka_message_destroy(m);
            rc = CTL_OK;
            goto out;
        }
        rd_kafka_message_destroy(m);
    }
    if (bar_open)
        fputc('\n', stderr);
    ctl_fail(CTL_INFRA, "no answer to command %s (%s) within %d s; is the %s service running? "
             "It will still be applied when the service reads it.", id, type, c->timeout_s,
             service);
out:
    if (cons != NULL) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    if (have_vc)
        avro_value_decref(&vc);
    if (have_vr)
        avro_value_decref(&vr);
    cwpp_avro_type_destroy(tc);
    cwpp_avro_type_destroy(tr);
    cwpp_buf_free(&buf);
    free(pj);
    return rc;
}

int ctl_command(ctl_t *c, const char *service, const char *type, json_t *payload)
{
    char   *status, *message;
    json_t *result;
    int     rc = ctl_send(c, service, type, payload, &status, &message, &result), ok;

    json_decref(payload);
    if (rc != CTL_OK)
        return rc;
    ok = strcmp(status, "ok") == 0;
    if (c->json) {
        ctl_print_json(json_pack("{s:s, s:s, s:O}", "status", status, "message", message,
                                 "result", result));
        if (!ok)
            fprintf(stderr, "cwppctl: %s\n", message);
    } else if (ok) {
        printf("%s\n", message);
    } else {
        fprintf(stderr, "cwppctl: %s\n", message);
    }
    free(status);
    free(message);
    json_decref(result);
    return ok ? CTL_OK : CTL_REFUSED;
}
