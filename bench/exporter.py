#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/exporter.py: the exporter's figures on the real broker and PostgreSQL.

Fixture: E events of one account of this run, written to the database directly (the
correlator's bench covers how they get there), each with 2 affected assets, 3 alerts and
6 entities, all handled (so each also waits in handled_events).

1. Export: an export.create of all E events (E = 1,000, the limit) is sent; the time from
   the command to its answer (broker timestamps) and the job's own time are reported, and
   the workbook is opened with openpyxl to check its row counts.
2. Handled publish rate: the exporter publishes the E handled events (Avro + OCSF, in
   Kafka transactions); the rate is E over the span between the first and the last record's
   broker timestamps on events.handled.
Peak RSS is VmHWM of the exporter. Run through bench/run-exporter."""
import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cwpp_testlib as t  # noqa: E402
from bench import vmhwm_kib  # noqa: E402

from confluent_kafka import Consumer  # noqa: E402

COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")
EXPORTER_DSN = os.environ.get("CWPP_PG_DSN_EXPORTER", "")


def fixture(acct, n):
    now = datetime.now(timezone.utc)
    ids = []
    ev, al, ea, en = [], [], [], []
    for i in range(n):
        eid = "ev-" + uuid.uuid4().hex
        ids.append(eid)
        assets = {f"{acct}-h{i}-{k}": {"name": f"host {i}-{k}", "role": "web",
                                        "ips": [f"10.{i % 250}.{k}.1"], "alerts": 1 + k}
                  for k in range(2)}
        ev.append((eid, acct, f"Attack {i}", ["critical", "high", "medium", "low"][i % 4],
                   now - timedelta(minutes=n - i), now - timedelta(minutes=n - i - 1),
                   json.dumps({"assets": assets}),
                   json.dumps({"reasons": [{"code": "core_asset", "text": "A core asset."}]})))
        for k in range(3):
            aid = "al-" + uuid.uuid4().hex
            al.append((aid, aid, acct, f"Alert {k}", "virus", "high", "virus_scan", "cwpp",
                       f"{acct}-h{i}-{k % 2}", "{}", "none", "handled", now, now))
            ea.append((eid, aid))
            en.append((acct, "host", f"{acct}-h{i}-{k % 2}", f"{acct}-h{i}-{k % 2}", eid, aid,
                       now, now))
            en.append((acct, "ip", f"198.51.{i % 250}.{k}", "", eid, aid, now, now))
    with t.db() as conn, conn.cursor() as cur:
        cur.execute("SET search_path = cwpp")
        cur.executemany("INSERT INTO events (event_id, account_id, name, level, status, "
                        "first_seen, last_seen, alert_count, occurrences, asset_count, summary, "
                        "assessment, handled_at) VALUES (%s, %s, %s, %s, 'handled', %s, %s, 3, 3, "
                        "2, %s::json, %s::jsonb, now())", ev)
        cur.executemany("INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, "
                        "severity, source, input_format, asset_id, asset, defense, status, "
                        "first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s::jsonb, %s, %s, %s, %s)", al)
        cur.executemany("INSERT INTO event_alerts (event_id, alert_id) VALUES (%s, %s)", ea)
        cur.executemany("INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                        "event_id, alert_id, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, "
                        "%s, %s, %s)", en)
        cur.executemany("INSERT INTO handled_events (event_id) VALUES (%s)", [(i,) for i in ids])
        # exports are by known users: the bench's own admin
        cur.execute("INSERT INTO users (user_name, role, created_by) VALUES ('bench', 'admin', "
                    "'bench') ON CONFLICT DO NOTHING")
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-ex-{run}."
    acct = f"bench-ex-{run}"
    tmp = Path(tempfile.mkdtemp(prefix="cwpp-bench-ex-"))
    t.create_topics(prefix, partitions=6)
    # the handled rows of other runs wait in the same table: start after them
    ids = fixture(acct, a.events)
    first_seq = t.query("SELECT min(seq) FROM handled_events WHERE event_id = ANY(%s)",
                        (ids,))[0][0]
    svc = t.Service("exporter", prefix, tmp, group=prefix + "exporter", extra_env={
        "CWPP_PG_DSN": EXPORTER_DSN, "CWPP_LOG_LEVEL": "warn",
        "CWPP_HANDLED_TRANSACTIONAL_ID": "cwpp-exporter-handled-" + prefix, "CWPP_HANDLED_BATCH": "500",
        "CWPP_RETENTION_INTERVAL_MS": "604800000"})
    # older handled rows (tests, demos) would be published first: this run counts its own
    svc.start()
    svc.wait_ready()

    # 1. export of the E events (after a first, refused command: the group has joined)
    from confluent_kafka import Producer
    p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS})
    warm = f"cmd-warm-{run}"
    p.produce(prefix + "commands", COMMAND.encode({
        "command_id": warm, "service": "exporter", "type": "export.none", "actor": "bench",
        "issued_at_ms": int(time.time() * 1000), "payload_json": "{}"}), key=warm)
    p.flush(10)
    t.wait_for(lambda: any(RESULT.decode(m.value())["command_id"] == warm for m in
                           t.consume(prefix + "command-results", 1, timeout=3, settle=0.2)),
               timeout=60, what="the exporter answering")
    cid = f"cmd-bench-{run}"
    sent = time.time()
    p.produce(prefix + "commands", COMMAND.encode({
        "command_id": cid, "service": "exporter", "type": "export.create", "actor": "bench",
        "issued_at_ms": int(sent * 1000), "payload_json": json.dumps({"ids": ids})}), key=cid)
    p.flush(10)
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([prefix + "command-results"])
    ans, deadline = None, time.time() + 120
    cmd_ts = None
    while ans is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        r = RESULT.decode(m.value())
        if r["command_id"] == cid and r["status"] != "progress":
            ans = (m.timestamp()[1], r)
    c.close()
    cmd_ts = int(sent * 1000)
    res = json.loads(ans[1]["result_json"]) if ans else {}
    export = {"events": res.get("events"), "assets": res.get("assets"),
              "entities": res.get("entities"), "bytes": res.get("bytes"),
              "job_ms": res.get("millis"),
              "command_to_answer_ms": ans[0] - cmd_ts if ans else None,
              "status": ans[1]["status"] if ans else "no answer"}
    if ans and ans[1]["status"] == "ok":
        import openpyxl
        blob = t.query("SELECT bytes FROM export_files WHERE job_id = %s", (cid,))[0][0]
        f = tmp / "bench.xlsx"
        f.write_bytes(bytes(blob))
        wb = openpyxl.load_workbook(f, read_only=True)
        export["rows"] = {ws.title: ws.max_row - 1 for ws in wb.worksheets}
    print("export:", json.dumps(export), flush=True)

    # 2. the handled-event stream
    want = set(ids)
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([prefix + "events.handled"])
    ts, deadline = [], time.time() + 600
    while want and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            k = m.key().decode()
            if k in want:
                want.discard(k)
                ts.append(m.timestamp()[1])
    c.close()
    span = (max(ts) - min(ts)) / 1000.0 if len(ts) > 1 else float("nan")
    handled = {"events": len(ts), "missing": len(want), "span_s": round(span, 2),
               "per_s": round(len(ts) / span, 1) if span and span > 0 else None,
               "first_seq": first_seq}
    print("handled:", json.dumps(handled), flush=True)
    rss = round(vmhwm_kib(svc.proc.pid) / 1024, 1)
    rc = svc.stop()
    result = {"bench": "exporter", "at": datetime.now(timezone.utc).isoformat(),
              "export": export, "handled": handled, "exporter_peak_rss_mib": rss,
              "sigterm_rc": rc}
    print(json.dumps(result, indent=2))
    out = Path(a.out)
    out.mkdir(exist_ok=True)
    with open(out / "exporter.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")
    t.query("DELETE FROM handled_events WHERE event_id = ANY(%s)", (ids,))


if __name__ == "__main__":
    main()
