# SPDX-License-Identifier: Apache-2.0
"""deploy/local/lag.py BROKERS PREFIX GROUP...: the consumer lag of each named consumer
group on the topics of PREFIX, for deploy/local/status.

For every group it reads the committed offsets of every partition of every topic whose
name starts with PREFIX (python3-confluent-kafka: a consumer with that group id that never
subscribes, so it does not join the group nor disturb its members), and compares them with
the partitions' high watermarks. It prints one line per (group, topic) the group has
committed on: the summed lag and how many partitions it covers; a group with no committed
offset at all (not started yet, or it has not committed) gets one line saying so. Exit 0
when the broker answered, 1 when it did not. Run with Debian's /usr/bin/python3.
It connects as cwpp-admin (CWPP_KAFKA_PASSWORD_ADMIN) unless CWPP_KAFKA_SASL=0
(docs/kafka-security.md)."""
import os
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

TIMEOUT_S = 10


def main(argv):
    if len(argv) < 3:
        print("usage: lag.py BROKERS PREFIX GROUP...", file=sys.stderr)
        return 2
    brokers, prefix, groups = argv[0], argv[1], argv[2:]
    base = {"bootstrap.servers": brokers, "enable.auto.commit": False,
            "socket.timeout.ms": TIMEOUT_S * 1000}
    if os.environ.get("CWPP_KAFKA_SASL", "1") != "0":
        base.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
                     "sasl.username": "cwpp-admin",
                     "sasl.password": os.environ.get("CWPP_KAFKA_PASSWORD_ADMIN",
                                                     "cwpp-dev-kafka-admin")})
    probe = Consumer(dict(base, **{"group.id": "cwpp-status-probe"}))
    try:
        md = probe.list_topics(timeout=TIMEOUT_S)
        tps = sorted((t, p) for t, tm in md.topics.items() if t.startswith(prefix)
                     for p in tm.partitions)
        high = {tp: probe.get_watermark_offsets(TopicPartition(*tp), timeout=TIMEOUT_S)[1]
                for tp in tps}
    except KafkaException as e:
        print(f"  cannot read the topics of {brokers}: {e}")
        return 1
    finally:
        probe.close()
    print(f"  {'group':<22} {'topic':<34} {'partitions':>10} {'lag':>10}")
    for g in groups:
        c = Consumer(dict(base, **{"group.id": g}))
        try:
            committed = c.committed([TopicPartition(t, p) for t, p in tps], timeout=TIMEOUT_S)
        except KafkaException as e:
            print(f"  {g:<22} cannot read its offsets: {e}")
            continue
        finally:
            c.close()
        per_topic = {}
        for tp in committed:
            if tp.offset < 0:        # nothing committed on this partition
                continue
            n, lag = per_topic.get(tp.topic, (0, 0))
            per_topic[tp.topic] = (n + 1, lag + max(0, high[(tp.topic, tp.partition)] - tp.offset))
        if not per_topic:
            print(f"  {g:<22} {'(no committed offsets)':<34}")
        for t in sorted(per_topic):
            n, lag = per_topic[t]
            print(f"  {g:<22} {t:<34} {n:>10} {lag:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
