/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay: the baseline for bench/run - a plain librdkafka relay that consumes IN and
 * produces the same bytes (and key) to OUT, with the same delivery discipline as our
 * services (batches of up to 1000 records or 50 ms, produce, wait for acknowledgement,
 * then commit), but no parsing and no database. It exits after COUNT records.
 *
 *   relay BROKERS GROUP IN OUT COUNT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long failed;

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        failed++;
}

static rd_kafka_t *mk(rd_kafka_type_t type, const char *brokers, const char *group)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char             err[512];
    rd_kafka_t      *rk;

    rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
    /* the broker's credentials, as the services take them (docs/kafka-security.md) */
    {
        static const char *const env[][2] = {
            {"CWPP_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
            {"CWPP_KAFKA_SASL_MECHANISM", "sasl.mechanisms"},
            {"CWPP_KAFKA_SASL_USERNAME", "sasl.username"},
            {"CWPP_KAFKA_SASL_PASSWORD", "sasl.password"},
        };
        size_t i;

        for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
            if (getenv(env[i][0]) != NULL && *getenv(env[i][0]) != '\0')
                rd_kafka_conf_set(c, env[i][1], getenv(env[i][0]), err, sizeof(err));
    }
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
    } else {
        rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err));
        rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err));
        rd_kafka_conf_set(c, "compression.type", "lz4", err, sizeof(err));
        rd_kafka_conf_set_dr_msg_cb(c, dr);
    }
    rk = rd_kafka_new(type, c, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "relay: %s\n", err);
        exit(2);
    }
    return rk;
}

int main(int argc, char **argv)
{
    rd_kafka_t                      *c, *p;
    rd_kafka_topic_partition_list_t *subs;
    rd_kafka_message_t              *batch[1000];
    long long                        count, done = 0, first = 0;

    if (argc != 6) {
        fprintf(stderr, "usage: relay BROKERS GROUP IN OUT COUNT\n");
        return 1;
    }
    count = atoll(argv[5]);
    c = mk(RD_KAFKA_CONSUMER, argv[1], argv[2]);
    p = mk(RD_KAFKA_PRODUCER, argv[1], NULL);
    rd_kafka_poll_set_consumer(c);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, argv[3], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    while (done < count) {
        size_t    n = 0, i;
        long long deadline = 0;

        while (n < 1000) {
            rd_kafka_message_t *m;
            long long           left = n == 0 ? 200 : deadline - now_ms();

            if (n > 0 && left <= 0)
                break;
            m = rd_kafka_consumer_poll(c, (int)left);
            if (m == NULL)
                continue;
            if (m->err) {
                rd_kafka_message_destroy(m);
                continue;
            }
            if (n == 0)
                deadline = now_ms() + 50;
            if (first == 0)
                first = now_ms();
            batch[n++] = m;
        }
        for (i = 0; i < n; i++) {
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(argv[4]),
                                     RD_KAFKA_V_KEY(batch[i]->key, batch[i]->key_len),
                                     RD_KAFKA_V_VALUE(batch[i]->payload, batch[i]->len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 10);
        }
        while (rd_kafka_outq_len(p) > 0)
            rd_kafka_flush(p, 1000);
        if (failed > 0) {
            fprintf(stderr, "relay: %lld records not delivered\n", failed);
            return 2;
        }
        rd_kafka_commit(c, NULL, 0); /* positions = end of this batch */
        for (i = 0; i < n; i++)
            rd_kafka_message_destroy(batch[i]);
        done += (long long)n;
    }
    printf("relay: %lld records in %lld ms\n", done, now_ms() - first);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    return 0;
}
