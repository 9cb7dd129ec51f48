#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/correlator.py: the correlator alone on a backlog. Replays an accepted topic
(<prefix>alerts.accepted, e.g. the one a bench/run-pipeline phase left) from the start
into a new, empty database migrated by the real deploy/migrate, with a fresh consumer
group, and reports alerts/s, the time the batch transactions took (from the service's
own histogram), and peak RSS. Optional: --perf FILE records a perf profile of it.

  . deploy/local/env; bench/correlator.py --prefix bench04a0e9a. [--perf /tmp/c.data]

Not a test: figures go in the notes. The database is dropped afterwards unless --keep."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from bench import vmhwm_kib  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402


def topic_size(topic):
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-size-" + uuid.uuid4().hex})
    md = c.list_topics(topic, timeout=10)
    n = 0
    for p in md.topics[topic].partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        n += hi - lo
    c.close()
    return n


def explain_report(log, start):
    """Sums auto_explain's durations per statement (by its first words)."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    tot, cnt = {}, {}
    for m in re.finditer(r"duration: ([0-9.]+) ms  plan:\s*Query Text: ([^\n]*)", text):
        q = m.group(2)
        words = " ".join(q.split()[:4])[:60]
        tot[words] = tot.get(words, 0.0) + float(m.group(1))
        cnt[words] = cnt.get(words, 0) + 1
    print("statement time (auto_explain, ms):")
    for k in sorted(tot, key=tot.get, reverse=True):
        print(f"  {tot[k]:9.1f}  {cnt[k]:4d}x  {k}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", required=True, help="topic prefix holding alerts.accepted")
    ap.add_argument("--perf", help="record a perf profile (call graphs) to this file")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--batch", type=int, default=0, help="CWPP_BATCH_MAX_MESSAGES")
    ap.add_argument("--explain", metavar="PG_LOG",
                    help="load auto_explain for the correlator's role in the new database and "
                         "sum each statement's time from the server log PG_LOG "
                         "(deploy/local: /var/tmp/cwpp-*/run/pg.log)")
    args = ap.parse_args()

    n = topic_size(args.prefix + "alerts.accepted")
    if n == 0:
        sys.exit(f"{args.prefix}alerts.accepted is empty")
    db = t.FreshDatabase()
    log_at = Path(args.explain).stat().st_size if args.explain else 0
    if args.explain:
        for setting in ("session_preload_libraries = 'auto_explain'",
                        "auto_explain.log_min_duration = 0", "auto_explain.log_analyze = off",
                        "auto_explain.log_format = 'text'"):
            t.query(f"ALTER ROLE cwpp_correlator IN DATABASE \"{db.name}\" SET {setting}",
                    dsn=db.admin)
    tmp = Path(tempfile.mkdtemp(prefix="cwpp-bench-corr-"))
    group = f"benchcorr-{uuid.uuid4().hex[:8]}"
    s = t.Service("correlator", args.prefix, tmp, group=group,
                  extra_env={"CWPP_PG_DSN": db.correlator,
                             "CWPP_BATCH_MAX_MS": "50",
                             **({"CWPP_BATCH_MAX_MESSAGES": str(args.batch)} if args.batch else {})})
    cmd = None
    try:
        s.start()
        if args.perf:
            cmd = subprocess.Popen(["perf", "record", "-F", "300", "--call-graph", "dwarf,16384", "-o", args.perf, "-p",
                                    str(s.proc.pid)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        s.wait_ready()
        t0 = time.time()

        def applied():
            r = t.query("SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets "
                        "WHERE consumer_group = %s", (group,), dsn=db.admin)
            return r[0][0]
        first = None
        while True:
            a = applied()
            if a > 0 and first is None:
                first = time.time()
            if a >= n:
                break
            if time.time() - t0 > 600:
                sys.exit(f"only {a} of {n} applied after 600 s")
            time.sleep(0.05)
        span = time.time() - t0
        m = t.metrics(s)
        hwm = vmhwm_kib(s.proc.pid)
        db_s = m["cwpp_correlator_db_seconds_sum"]
        batches = m["cwpp_correlator_db_seconds_count"]
        ev = t.query("SELECT count(*) FROM events", dsn=db.admin)[0][0]
        print(f"correlator alone: {n} alerts in {span:.2f} s = {n / span:.0f} alerts/s; "
              f"{batches:.0f} batches, transactions {db_s:.2f} s "
              f"({100 * db_s / span:.0f} % of the span); {ev} events; peak RSS {hwm / 1024:.1f} MiB")
        if args.explain:
            explain_report(args.explain, log_at)
    finally:
        if cmd is not None:
            cmd.send_signal(2)
            cmd.wait(30)
        if s.proc.poll() is None:
            s.stop()
        if not args.keep:
            db.drop()
        else:
            print("database kept:", db.name)


if __name__ == "__main__":
    main()
