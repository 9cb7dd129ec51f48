/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service.c: argument parsing, configuration, signals and the health listener shared by
 * every service. Signal handlers only set flags (the loop's stop flag is a
 * sig_atomic_t), so a signal at any moment is safe.
 */
#include "cwpp_service.h"
#include "cwpp_log.h"
#include "cwpp_pg.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cwpp_loop_t *volatile g_loop;
static volatile sig_atomic_t g_stopping;
static cwpp_ready_fn         g_ready_fn;
static void                 *g_ready_opaque;
static pthread_mutex_t       g_ready_lock = PTHREAD_MUTEX_INITIALIZER;

void cwpp_service_set_loop(cwpp_loop_t *loop)
{
    g_loop = loop;
    if (loop != NULL && g_stopping)
        cwpp_loop_stop(loop);
}

void cwpp_service_set_ready(cwpp_ready_fn fn, void *opaque)
{
    pthread_mutex_lock(&g_ready_lock);
    g_ready_fn = fn;
    g_ready_opaque = opaque;
    pthread_mutex_unlock(&g_ready_lock);
}

int cwpp_service_stopping(void)
{
    return g_stopping != 0;
}

static void on_signal(int sig)
{
    cwpp_loop_t *l = g_loop;

    (void)sig;
    g_stopping = 1;
    if (l != NULL)
        cwpp_loop_stop(l);
}

static int ready(void *opaque, char *reason, size_t reason_size)
{
    int ok;

    (void)opaque;
    if (g_stopping) {
        cwpp_seterr(reason, reason_size, 0, "shutting down");
        return 0;
    }
    pthread_mutex_lock(&g_ready_lock);
    if (g_ready_fn == NULL) {
        cwpp_seterr(reason, reason_size, 0, "starting");
        ok = 0;
    } else {
        ok = g_ready_fn(g_ready_opaque, reason, reason_size);
    }
    pthread_mutex_unlock(&g_ready_lock);
    return ok;
}

static void usage(const cwpp_service_def_t *def, FILE *fp)
{
    fprintf(fp, "usage: cwpp-%s [--config FILE] [--help] [--print-config] [--print-env] "
                "[--config-doc]\n\n%s\n\nConfiguration (file keys; environment overrides the "
                "file):\n", def->name, def->summary);
    cwpp_conf_print_help(fp, def->props, def->nprops);
}

int cwpp_service_main(const cwpp_service_def_t *def, int argc, char **argv)
{
    const char         *config_path = getenv("CWPP_CONFIG");
    int                 print_config = 0, i, rc = 1;
    void               *conf;
    cwpp_common_conf_t *common;
    cwpp_kvlist_t       kprops = {0};
    cwpp_metrics_t     *metrics = NULL;
    cwpp_http_t        *http = NULL;
    cwpp_log_level_t    lvl;
    char                errstr[512];
    struct sigaction    sa;
    cwpp_service_env_t  env;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(def, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--print-env")) {
            cwpp_conf_print_env(stdout, def->props, def->nprops);
            return 0;
        } else if (!strcmp(argv[i], "--config-doc")) {
            cwpp_conf_print_doc(stdout, def->name, def->props, def->nprops);
            return 0;
        } else if (!strcmp(argv[i], "--print-config")) {
            print_config = 1;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else {
            fprintf(stderr, "cwpp-%s: unknown argument \"%s\"\n", def->name, argv[i]);
            usage(def, stderr);
            return 1;
        }
    }

    conf = calloc(1, def->conf_size);
    if (conf == NULL)
        return 2;
    common = (cwpp_common_conf_t *)(void *)((char *)conf + def->common_offset);
    if (cwpp_conf_load(def->props, def->nprops, conf, config_path, &kprops, errstr,
                       sizeof(errstr)) != CWPP_OK ||
        cwpp_kvlist_parse(&kprops, common->kafka_properties, errstr, sizeof(errstr)) != CWPP_OK ||
        (def->check != NULL && def->check(conf, errstr, sizeof(errstr)) != CWPP_OK)) {
        fprintf(stderr, "cwpp-%s: configuration error: %s\n", def->name, errstr);
        goto out;
    }
    if (cwpp_log_level_parse(common->log_level, &lvl) != 0) {
        fprintf(stderr, "cwpp-%s: configuration error: log.level \"%s\" is not debug, info, "
                        "warn or error\n", def->name, common->log_level);
        goto out;
    }
    if (print_config) {
        cwpp_conf_dump(stdout, def->props, def->nprops, conf);
        rc = 0;
        goto out;
    }
    cwpp_log_init(def->name, lvl);
    {
        /* every database connection of the process gets these bounds */
        cwpp_pg_tuning_t   t = {5, (int)common->pg_statement_timeout_ms,
                                (int)common->pg_idle_tx_timeout_ms,
                                (int)common->pg_keepalives_idle_s, 10, 3,
                                (int)common->pg_tcp_user_timeout_ms, common->pg_sslmode,
                                common->pg_sslrootcert};
        cwpp_pg_conninfo_t ci;

        cwpp_pg_set_tuning(&t);
        /* a DSN contradicting pg.sslmode / pg.sslrootcert stops start-up, once, here */
        if (cwpp_pg_conninfo(&ci, common->pg_dsn, def->name, errstr, sizeof(errstr)) !=
            CWPP_OK) {
            fprintf(stderr, "cwpp-%s: configuration error: %s\n", def->name, errstr);
            goto out;
        }
    }
    /* Test hook (docs/style.md: error paths run in tests too). Never set in production. */
    if (getenv("CWPP_FAULTS") != NULL) {
        if (cwpp_fault_arm_list(getenv("CWPP_FAULTS")) < 0) {
            fprintf(stderr, "cwpp-%s: CWPP_FAULTS must be point:N[,point:N]\n", def->name);
            goto out;
        }
        cwpp_warn("faults_armed", "fault injection armed: %s", getenv("CWPP_FAULTS"));
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    metrics = cwpp_metrics_new();
    if (metrics == NULL) {
        rc = 2;
        goto out;
    }
    http = cwpp_http_start(common->http_address, (int)common->http_port, metrics, ready, NULL,
                           errstr, sizeof(errstr));
    if (http == NULL) {
        cwpp_error("config_error", "%s", errstr);
        fprintf(stderr, "cwpp-%s: configuration error: %s\n", def->name, errstr);
        goto out;
    }
    cwpp_logj(CWPP_LOG_INFO, "start",
              json_pack("{s:s,s:s,s:s,s:i}", "brokers", common->kafka_brokers, "topic_prefix",
                        common->topic_prefix, "group", common->group_id, "http_port",
                        cwpp_http_port(http)),
              "cwpp-%s starting", def->name);
    env.metrics = metrics;
    env.kafka_props = &kprops;
    rc = def->run(conf, &env);
    cwpp_info("exit", "cwpp-%s exiting with status %d", def->name, rc);
out:
    cwpp_service_set_ready(NULL, NULL);
    cwpp_http_stop(http);
    cwpp_metrics_destroy(metrics);
    cwpp_kvlist_free(&kprops);
    cwpp_conf_free(def->props, def->nprops, conf);
    free(conf);
    return rc;
}

/* ------------------------------------------------------------- the run loop */

typedef struct run_ready {
    atomic_int      *db_ok;
    cwpp_ready_fn    own;       /* the service's own check, first */
    void            *own_opaque;
    const char      *dsn;
    cwpp_loop_t     *loop;
    pthread_mutex_t  lock;
    int64_t          pinged_at; /* monotonic ms of the last answer of PostgreSQL's */
    int              ping_ok;
    /* the loop's dead letters */
    const char       *service;
    cwpp_avro_type_t *t_rejected;
    avro_value_t      v_rejected;
    cwpp_buf_t        buf;
} run_ready_t;

/* Whether PostgreSQL answers, asked at most once a second (an idle service learns of an
 * outage from here, a busy one also from its failing batches). */
static int db_answers(run_ready_t *r)
{
    int64_t now = cwpp_mono_ms();
    int     ok;

    pthread_mutex_lock(&r->lock);
    if (r->pinged_at == 0 || now - r->pinged_at >= 1000) {
        r->ping_ok = cwpp_pg_ping(r->dsn, 2);
        r->pinged_at = cwpp_mono_ms();
    }
    ok = r->ping_ok;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static int loop_ready(void *opaque, char *reason, size_t reason_size)
{
    run_ready_t *r = opaque;

    if (r->own != NULL && !r->own(r->own_opaque, reason, reason_size))
        return 0;
    if (r->db_ok != NULL && (!atomic_load(r->db_ok) || !db_answers(r))) {
        cwpp_seterr(reason, reason_size, 0, "PostgreSQL is not reachable");
        return 0;
    }
    return cwpp_loop_ready(r->loop, reason, reason_size);
}

/* The loop's dead letters (records the database refuses, outputs the broker refuses). */
static int loop_reject(void *opaque, const cwpp_reject_src_t *src, const char *code,
                       const char *reason, size_t value_max, cwpp_outbox_t *out)
{
    run_ready_t *r = opaque;
    char         errstr[256];
    int          rc;

    rc = cwpp_service_reject(r->t_rejected, &r->v_rejected, &r->buf, r->service, src, code,
                             reason, value_max, out, errstr, sizeof(errstr));
    if (rc != CWPP_OK)
        cwpp_error("dead_letter_failed", "cannot build a dead letter: %s", errstr);
    return rc;
}

int cwpp_service_run_loop(const char *service, const cwpp_common_conf_t *common,
                          const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                          size_t ninputs, cwpp_batch_fn fn, void *opaque, atomic_int *db_ok)
{
    return cwpp_service_run_loop_tick(service, common, env, inputs, ninputs, fn, opaque, db_ok,
                                      0);
}

int cwpp_service_run_loop_tick(const char *service, const cwpp_common_conf_t *common,
                               const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                               size_t ninputs, cwpp_batch_fn fn, void *opaque,
                               atomic_int *db_ok, int tick_ms)
{
    cwpp_service_loop_opts_t o = {db_ok, tick_ms, NULL, NULL};

    return cwpp_service_run_loop_opts(service, common, env, inputs, ninputs, fn, opaque, &o);
}

int cwpp_service_run_loop_opts(const char *service, const cwpp_common_conf_t *common,
                               const cwpp_service_env_t *env, const cwpp_topic_id_t *inputs,
                               size_t ninputs, cwpp_batch_fn fn, void *opaque,
                               const cwpp_service_loop_opts_t *o)
{
    cwpp_loop_conf_t lc;
    run_ready_t      r;
    char             errstr[512];
    int              rc;

    memset(&r, 0, sizeof(r));
    r.db_ok = o->db_ok;
    r.own = o->ready;
    r.own_opaque = o->ready_opaque;
    r.dsn = common->pg_dsn;
    r.service = service;
    pthread_mutex_init(&r.lock, NULL);
    r.t_rejected = cwpp_avro_type_builtin("rejected_record", errstr, sizeof(errstr));
    if (r.t_rejected == NULL || cwpp_avro_value_new(r.t_rejected, &r.v_rejected) != CWPP_OK) {
        cwpp_error("config_error", "rejected_record schema: %s",
                   r.t_rejected == NULL ? errstr : "out of memory");
        cwpp_avro_type_destroy(r.t_rejected);
        pthread_mutex_destroy(&r.lock);
        return 2;
    }
    memset(&lc, 0, sizeof(lc));
    lc.service = service;
    lc.brokers = common->kafka_brokers;
    lc.props = env->kafka_props;
    lc.group_id = common->group_id;
    lc.prefix = common->topic_prefix;
    lc.inputs = inputs;
    lc.ninputs = ninputs;
    lc.batch_max_messages = (int)common->batch_max_messages;
    lc.batch_max_ms = (int)common->batch_max_ms;
    lc.batch_linger_ms = (int)common->batch_linger_ms;
    lc.retry_max_ms = (int)common->retry_max_ms;
    lc.metrics = env->metrics;
    lc.tick_ms = o->tick_ms;
    lc.reject = loop_reject;
    lc.reject_opaque = &r;
    r.loop = cwpp_loop_new(&lc, errstr, sizeof(errstr));
    if (r.loop == NULL) {
        cwpp_error("config_error", "%s", errstr);
        rc = 1;
        goto out;
    }
    cwpp_service_set_loop(r.loop);
    cwpp_service_set_ready(loop_ready, &r);
    rc = cwpp_loop_run(r.loop, fn, opaque);
    cwpp_service_set_ready(NULL, NULL);
    cwpp_service_set_loop(NULL);
    cwpp_loop_destroy(r.loop);
    rc = rc == CWPP_OK ? 0 : 2;
out:
    avro_value_decref(&r.v_rejected);
    cwpp_avro_type_destroy(r.t_rejected);
    cwpp_buf_free(&r.buf);
    pthread_mutex_destroy(&r.lock);
    return rc;
}

void cwpp_service_backoff(int *backoff_ms)
{
    struct timespec ts = {*backoff_ms / 1000, (long)(*backoff_ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* SIGTERM interrupts it */
    *backoff_ms = *backoff_ms * 2 > 5000 ? 5000 : *backoff_ms * 2;
}

int cwpp_service_reject(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                        const char *service, const cwpp_reject_src_t *src, const char *code,
                        const char *reason, size_t value_max, cwpp_outbox_t *out,
                        char *errstr, size_t errstr_size)
{
    int64_t       full_klen = (int64_t)src->klen, full_vlen = (int64_t)src->vlen;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen = 0;
    char          hex[2 * EVP_MAX_MD_SIZE + 1];
    size_t        klen, vlen;
    int           rc;

    if (value_max > CWPP_DEAD_LETTER_VALUE_MAX)
        value_max = CWPP_DEAD_LETTER_VALUE_MAX;
    avro_value_reset(v);
    rc = cwpp_avro_set_str(v, "service", service);
    rc |= cwpp_avro_set_str(v, "reason_code", code);
    rc |= cwpp_avro_set_str(v, "reason", reason);
    rc |= cwpp_avro_set_str(v, "source_topic", src->topic);
    rc |= cwpp_avro_set_int(v, "source_partition", src->partition);
    rc |= cwpp_avro_set_long(v, "source_offset", src->offset);
    rc |= cwpp_avro_set_opt_long(v, "source_timestamp_ms",
                                 src->timestamp_ms >= 0 ? &src->timestamp_ms : NULL);
    /* A dead letter must fit its topic whatever came in: a value or key past its budget
     * keeps a prefix, with the original's length (and the value's SHA-256) beside it. */
    klen = src->klen > CWPP_DEAD_LETTER_KEY_MAX ? CWPP_DEAD_LETTER_KEY_MAX : src->klen;
    vlen = src->vlen > value_max ? value_max : src->vlen;
    if (EVP_Digest(src->value != NULL ? src->value : "", src->vlen, md, &mdlen, EVP_sha256(),
                   NULL) != 1)
        return cwpp_seterr(errstr, errstr_size, CWPP_ENOMEM, "cannot hash the dead letter");
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * mdlen] = '\0';
    rc |= cwpp_avro_set_opt_bytes(v, "key", src->key, klen);
    rc |= cwpp_avro_set_bytes(v, "value", src->value != NULL ? src->value : "", vlen);
    rc |= cwpp_avro_set_long(v, "rejected_at_ms", cwpp_now_ms());
    rc |= cwpp_avro_set_opt_long(v, "value_length", &full_vlen);
    rc |= cwpp_avro_set_opt_str(v, "value_sha256", hex);
    rc |= cwpp_avro_set_opt_long(v, "key_length", src->key != NULL ? &full_klen : NULL);
    if (rc != CWPP_OK)
        return cwpp_seterr(errstr, errstr_size, CWPP_ETRANSIENT, "cannot build RejectedRecord");
    cwpp_buf_reset(buf);
    if ((rc = cwpp_avro_encode(t, v, buf, errstr, errstr_size)) != CWPP_OK)
        return rc;
    /* the dead letter's own key is bounded too: the broker refuses what does not fit */
    rc = cwpp_outbox_add(out, CWPP_TOPIC_ALERTS_REJECTED, src->key, klen, buf->data, buf->len);
    return rc != CWPP_OK ? cwpp_seterr(errstr, errstr_size, rc, "out of memory") : CWPP_OK;
}

int cwpp_service_dead_letter(const cwpp_avro_type_t *t, avro_value_t *v, cwpp_buf_t *buf,
                             const char *service, const rd_kafka_message_t *m,
                             const char *code, const char *reason, cwpp_outbox_t *out,
                             char *errstr, size_t errstr_size)
{
    cwpp_reject_src_t src = cwpp_reject_src_of(m);

    return cwpp_service_reject(t, v, buf, service, &src, code, reason,
                               CWPP_DEAD_LETTER_VALUE_MAX, out, errstr, errstr_size);
}
