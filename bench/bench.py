#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/bench.py: ingest against a raw librdkafka relay on the same local broker.

Phase 1 (throughput): N alerts (70 % new, 25 % recurrences, 5 % invalid) wait in a raw
topic; the relay and then ingest drain it from a fresh consumer group. Throughput is N
over the span between the first and last output record's broker timestamps.
Phase 2 (latency): relay and ingest both run while alerts are produced at a steady rate;
latency is output timestamp minus input timestamp per record (same machine clock).
Peak RSS is VmHWM of each process. Run through bench/run, which starts the stack."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

BIN = t.BIN
RELAY = Path(os.environ.get("CWPP_BENCH_RELAY", t.REPO / "build" / "bin" / "cwpp-bench-relay"))


def records(n, run, start_seq=0):
    """Realistic alerts (~700 bytes) with a sequence number in details."""
    out = []
    for i in range(start_seq, start_seq + n):
        r = i % 100
        if r < 5:
            out.append(b'{"name":"truncated alert","type":"virus","seq":%d' % i)
            continue
        key = i if r < 75 else i % 997          # 25 % recur over 997 alerts
        out.append(t.alert(
            f"bench-{run}-{key % 13}", "Trojan program", "virus", "high",
            "2026-11-27T%02d:%02d:%02dZ" % (key // 3600 % 24, key // 60 % 60, key % 60),
            {"id": f"i-{key % 400:04d}", "name": f"host-{key % 400}",
             "ip": "10.1.%d.%d" % (key % 250, key % 200), "role": "application"},
            source="virus_scan", tactic="TA0002", technique="T1204", defense="failed",
            file={"path": f"/var/tmp/.cache/x{key}", "md5": t.md5hex(str(key))},
            process={"pid": 1000 + key % 30000, "path": f"/var/tmp/.cache/x{key}",
                     "cmdline": f"/var/tmp/.cache/x{key} --daemon --pool "
                                f"stratum+tcp://198.51.100.{key % 250}:3333",
                     "user": "www-data"},
            remote_ip="198.51.100.%d" % (key % 250),
            details={"scan_engine": "cwpp-av 3.2", "file_size": 40000 + key % 9000, "seq": i}))
    return out


def create_relay_topic(name):
    """The relay's output topic is not one of ours: create it like cwpp-admin would."""
    admin = AdminClient({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS})
    for f in admin.create_topics([NewTopic(name, 6, 1)]).values():
        f.result(30)  # keep admin referenced until the answer arrives


def vmhwm_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def read_topic(topic, expect, timeout=180):
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-r-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    c.subscribe([topic])
    out, deadline = [], time.time() + timeout
    while len(out) < expect and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error() is None:
                out.append(m)
    c.close()
    return out


def span_rate(msgs):
    ts = [m.timestamp()[1] for m in msgs]
    span = (max(ts) - min(ts)) / 1000.0
    return len(msgs) / span if span > 0 else float("inf"), span


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def start_ingest(prefix, group, tmp):
    svc = t.Service("ingest", prefix, tmp, group=group,
                    extra_env={"CWPP_LOG_LEVEL": "warn", "CWPP_BATCH_MAX_MS": "50"})
    svc.start()
    svc.wait_ready()
    return svc


def phase_throughput(n, tmp, run):
    prefix = f"bench{run}t."
    t.create_topics(prefix, partitions=6)
    create_relay_topic(prefix + "relay.out")
    raw = records(n, run)
    t.produce(prefix + "alerts.raw", raw)
    bad = sum(1 for r in raw if not r.endswith(b"}"))

    relay = subprocess.Popen([str(RELAY), t.BROKERS, prefix + "relay", prefix + "alerts.raw",
                              prefix + "relay.out", str(n)], env=t.admin_env(), stdout=subprocess.PIPE, text=True)
    relay_rss = 0
    while relay.poll() is None:
        try:
            relay_rss = max(relay_rss, vmhwm_kib(relay.pid))
        except OSError:
            pass
        time.sleep(0.05)
    relay_out = read_topic(prefix + "relay.out", n)
    relay_rate, relay_span = span_rate(relay_out)

    svc = start_ingest(prefix, prefix + "ingest", tmp)
    outs = read_topic(prefix + "alerts.normalized", n - bad) + read_topic(prefix + "alerts.rejected", bad)
    ingest_rss = vmhwm_kib(svc.proc.pid)
    svc.stop()
    ingest_rate, ingest_span = span_rate(outs)
    assert len(outs) >= n, f"ingest produced {len(outs)} of {n}"
    return {"records": n, "invalid": bad,
            "relay_alerts_per_s": round(relay_rate), "relay_span_s": round(relay_span, 2),
            "relay_peak_rss_mib": round(relay_rss / 1024, 1),
            "ingest_alerts_per_s": round(ingest_rate), "ingest_span_s": round(ingest_span, 2),
            "ingest_peak_rss_mib": round(ingest_rss / 1024, 1),
            "ratio": round(ingest_rate / relay_rate, 3)}


def phase_latency(rate, seconds, tmp, run):
    prefix = f"bench{run}l."
    t.create_topics(prefix, partitions=6)
    create_relay_topic(prefix + "relay.out")
    n = rate * seconds
    relay = subprocess.Popen([str(RELAY), t.BROKERS, prefix + "relay", prefix + "alerts.raw",
                              prefix + "relay.out", str(n)], env=t.admin_env(), stdout=subprocess.DEVNULL)
    svc = start_ingest(prefix, prefix + "ingest", tmp)
    time.sleep(3)  # let both join their groups
    raw = records(n, run, start_seq=10_000_000)
    p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 1})
    sent_ts = {}
    t0 = time.time()
    for i, v in enumerate(raw):
        target = t0 + i / rate
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)
        p.produce(prefix + "alerts.raw", v)
        p.poll(0)
    p.flush(30)
    ins = read_topic(prefix + "alerts.raw", n)
    for m in ins:
        sent_ts[m.value()] = m.timestamp()[1]
    relay_out = read_topic(prefix + "relay.out", n)
    relay.wait(60)
    good = [v for v in raw if v.endswith(b"}")]
    norm = read_topic(prefix + "alerts.normalized", len(good))
    ingest_rss = vmhwm_kib(svc.proc.pid)
    svc.stop()
    seq_ts = {}
    for v, ts in sent_ts.items():
        try:
            seq_ts[json.loads(v)["details"]["seq"]] = ts
        except (ValueError, KeyError):
            pass
    alert = t.AvroType("alert")
    lat_relay = [m.timestamp()[1] - sent_ts[m.value()] for m in relay_out if m.value() in sent_ts]
    lat_ingest = []
    for m in norm:
        seq = json.loads(alert.decode(m.value())["details_json"]).get("seq")
        if seq in seq_ts:
            lat_ingest.append(m.timestamp()[1] - seq_ts[seq])
    return {"rate_per_s": rate, "seconds": seconds,
            "relay_p50_ms": pct(lat_relay, 50), "relay_p99_ms": pct(lat_relay, 99),
            "ingest_p50_ms": pct(lat_ingest, 50), "ingest_p99_ms": pct(lat_ingest, 99),
            "ingest_samples": len(lat_ingest), "ingest_peak_rss_mib": round(ingest_rss / 1024, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    run = uuid.uuid4().hex[:6]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"cwpp-bench-{run}"
    tmp.mkdir(parents=True, exist_ok=True)
    rows, size = t.query("SELECT count(*), pg_size_pretty(pg_total_relation_size('alerts')) "
                         "FROM alerts")[0]
    print(f"alerts table before the run: {rows} rows, {size} (ingest slows as it outgrows "
          f"shared_buffers: alert ids are hashes, so index inserts land on random pages)")
    res = {"alerts_rows_before": rows, "alerts_size_before": size,
           "throughput": phase_throughput(a.records, tmp, run)}
    print("throughput phase:", json.dumps(res["throughput"]), flush=True)
    res["latency"] = phase_latency(a.rate, a.seconds, tmp, run)
    tp, lat = res["throughput"], res["latency"]
    print(f"\n== cwpp-ingest vs raw librdkafka relay ({a.records} alerts, 6 partitions, local broker)")
    print(f"throughput  relay {tp['relay_alerts_per_s']:>8} alerts/s   ingest {tp['ingest_alerts_per_s']:>8} alerts/s"
          f"   ratio {tp['ratio']:.2f} (target >= 0.5)")
    print(f"latency @{lat['rate_per_s']}/s  relay p50 {lat['relay_p50_ms']} ms p99 {lat['relay_p99_ms']} ms"
          f"   ingest p50 {lat['ingest_p50_ms']} ms p99 {lat['ingest_p99_ms']} ms")
    print(f"peak RSS    relay {tp['relay_peak_rss_mib']} MiB   ingest {max(tp['ingest_peak_rss_mib'], lat['ingest_peak_rss_mib'])} MiB"
          f" (target <= 64 MiB)")
    out = t.REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
