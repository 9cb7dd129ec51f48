#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/responder.py: commands applied per second and the action round trip, through the
real broker, the real PostgreSQL and the real agent.

Fixture: E events with one alert and one file entity each are written to the database
directly (the correlator's own bench covers how they get there), for an account of this
run.

Phase 1 (commands/s): C status commands (handling / unhandled in turn on the E events, as
analysts would) wait on a fresh commands topic; the responder then drains them. The rate
is C over the span between the first and the last answer's broker timestamps.

Phase 2 (action round trip): with the responder and a cwpp-enforcer running, playbook
commands (the built-in in-depth virus scan of the file: a real scan by the agent, no
change to the machine) are produced at a steady rate. For each: "agent" is the action's
broker timestamp to its result's broker timestamp (the broker, the agent); "task" is the
command's answer to the task's success in the database (the responder's whole round trip:
action out, result in, applied).

Peak RSS is VmHWM of the responder. Run through bench/run-responder, which starts the stack."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cwpp_testlib as t  # noqa: E402
from bench import pct, vmhwm_kib  # noqa: E402

from confluent_kafka import Consumer, Producer  # noqa: E402

COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")
ACTION = t.AvroType("action")
ARESULT = t.AvroType("action_result")
RESPONDER_DSN = os.environ.get("CWPP_PG_DSN_RESPONDER", "")


def fixture(acct, n, files_dir):
    """n events of acct, each with an alert and a file entity; returns their ids."""
    ids = []
    rows_a, rows_e, rows_ea, rows_ent = [], [], [], []
    now = datetime.now(timezone.utc)
    for i in range(n):
        eid = "ev-" + uuid.uuid4().hex
        aid = "al-" + uuid.uuid4().hex
        path = str(files_dir / f"f{i}.bin")
        Path(path).write_bytes(b"benign %d" % i)
        ids.append((eid, path))
        rows_a.append((aid, aid, acct, "Dropper", "virus", "high", "virus_scan", "cwpp",
                       "bench-host", json.dumps({"id": "bench-host"}), "none",
                       json.dumps({"path": path}), "unhandled", now, now))
        rows_e.append((eid, acct, "Dropper", "high", "unhandled", now, now))
        rows_ea.append((eid, aid))
        rows_ent.append((acct, "file", path, "bench-host", eid, aid, now, now))
    with t.db() as conn, conn.cursor() as cur:
        cur.execute("SET search_path = cwpp")
        cur.executemany("INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, "
                        "severity, source, input_format, asset_id, asset, defense, file, status, "
                        "first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                        "%s::jsonb, %s, %s::jsonb, %s, %s, %s)", rows_a)
        cur.executemany("INSERT INTO events (event_id, account_id, name, level, status, "
                        "first_seen, last_seen, alert_count, occurrences) VALUES (%s, %s, %s, %s, "
                        "%s, %s, %s, 1, 1)", rows_e)
        cur.executemany("INSERT INTO event_alerts (event_id, alert_id) VALUES (%s, %s)", rows_ea)
        cur.executemany("INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                        "event_id, alert_id, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, "
                        "%s, %s, %s)", rows_ent)
    # the commands' actor: there is no built-in admin (cwpp-admin users bootstrap makes one)
    t.make_user("admin", role="admin")
    return ids


def command(cid, typ, payload):
    return COMMAND.encode({"command_id": cid, "service": "responder", "type": typ,
                           "actor": "admin", "issued_at_ms": int(time.time() * 1000),
                           "payload_json": json.dumps(payload)})


def read_answers(prefix, want, timeout):
    """{command_id: (broker timestamp ms, status)} of the answers to the ids in want."""
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([prefix + "command-results"])
    got, deadline = {}, time.time() + timeout
    while len(got) < len(want) and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            r = RESULT.decode(m.value())
            if r["command_id"] in want:
                got[r["command_id"]] = (m.timestamp()[1], r["status"])
    c.close()
    return got


def topic_records(topic, decode, timeout=10):
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "bench-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out, idle = [], 0
    deadline = time.time() + timeout
    while time.time() < deadline and idle < 4:
        ms = c.consume(1000, 0.5)
        idle = 0 if ms else idle + 1
        out.extend((m.timestamp()[1], decode(m.value())) for m in ms if not m.error())
    c.close()
    return out


def responder(prefix, tmp):
    s = t.Service("responder", prefix, tmp, group=prefix + "responder", extra_env={
        "CWPP_PG_DSN": RESPONDER_DSN, "CWPP_LOG_LEVEL": "warn", "CWPP_BATCH_MAX_MS": "5"})
    return s.start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--commands", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=50.0, help="playbook commands per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    run = uuid.uuid4().hex[:8]
    prefix = f"bench-rs-{run}."
    acct = f"bench-rs-{run}"
    tmp = Path(tempfile.mkdtemp(prefix="cwpp-bench-rs-"))
    t.create_topics(prefix, partitions=6)
    evs = fixture(acct, a.events, tmp)

    # phase 1: a backlog of status commands
    p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 20, "enable.idempotence": True})
    ids = []
    for i in range(a.commands):
        eid = evs[i % len(evs)][0]
        status = "handling" if (i // len(evs)) % 2 == 0 else "unhandled"
        cid = f"cmd-{run}-s{i}"
        ids.append(cid)
        # keyed by event, so each event's commands keep their order (cwppctl waits for each
        # answer, which gives the same order)
        p.produce(prefix + "commands", command(cid, "event.status",
                                               {"event_id": eid, "status": status}), key=eid)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(60)
    svc = responder(prefix, tmp)
    svc.wait_ready()
    ans = read_answers(prefix, set(ids), timeout=600)
    ts = sorted(v[0] for v in ans.values())
    ok = sum(1 for v in ans.values() if v[1] == "ok")
    span = (ts[-1] - ts[0]) / 1000.0 if len(ts) > 1 else float("nan")
    phase1 = {"commands": a.commands, "answered": len(ans), "ok": ok,
              "commands_per_s": round(len(ans) / span, 1) if span > 0 else None,
              "span_s": round(span, 2)}
    print("phase 1:", json.dumps(phase1), flush=True)

    # phase 2: playbooks at a steady rate through the real agent
    sigs = tmp / "signatures.txt"
    sigs.write_text("# no file of this bench is malware\n" + "0" * 64 + "\n")
    enf = t.Service("enforcer", prefix, tmp, group=prefix + "enf", extra_env={
        "CWPP_ENFORCER_SCAN_SIGNATURES": str(sigs),
        "CWPP_ENFORCER_ACCOUNT_ID": acct, "CWPP_ENFORCER_ASSET_ID": "bench-host",
        "CWPP_ENFORCER_STATE_DIR": str(tmp / "enf"), "CWPP_LOG_LEVEL": "warn",
        "CWPP_BATCH_MAX_MS": "5"}).start()
    enf.wait_ready()
    n = min(int(a.rate * a.seconds), len(evs))
    pb_ids = {}
    start = time.time()
    for i in range(n):
        eid = evs[i][0]
        cid = f"cmd-{run}-p{i}"
        pb_ids[cid] = eid
        # the event must be unhandled/handling: phase 1 left it so
        p.produce(prefix + "commands", command(cid, "event.playbook", {
            "event_id": eid, "entity": "file:" + evs[i][1], "validity_s": 3600}), key=cid)
        p.poll(0)
        p.flush(5)
        delay = start + (i + 1) / a.rate - time.time()
        if delay > 0:
            time.sleep(delay)
    ans = read_answers(prefix, set(pb_ids), timeout=120)

    def all_done():
        r = t.query("SELECT count(*) FROM handling_tasks WHERE account_id = %s AND state IN "
                    "('succeeded', 'failed', 'timed_out')", (acct,))
        return r[0][0] >= n
    t.wait_for(all_done, timeout=300, what="every task finished")
    rows = t.query("SELECT event_id, state, (extract(epoch FROM finished_at) * 1000)::bigint "
                   "FROM handling_tasks WHERE account_id = %s", (acct,))
    by_event = {r[0]: r for r in rows}
    task_ms = [by_event[eid][2] - ans[cid][0] for cid, eid in pb_ids.items()
               if cid in ans and eid in by_event]
    acts = {x["action_id"]: ts for ts, x in topic_records(prefix + "actions", ACTION.decode)}
    res = {x["action_id"]: ts for ts, x in topic_records(prefix + "action-results",
                                                         ARESULT.decode)}
    agent_ms = [res[k] - acts[k] for k in acts if k in res]
    phase2 = {"playbooks": n, "rate_per_s": a.rate,
              "succeeded": sum(1 for r in rows if r[1] == "succeeded"),
              "agent_round_trip_ms": {"p50": pct(agent_ms, 50), "p99": pct(agent_ms, 99),
                                      "max": max(agent_ms) if agent_ms else None},
              "task_round_trip_ms": {"p50": pct(task_ms, 50), "p99": pct(task_ms, 99),
                                     "max": max(task_ms) if task_ms else None}}
    phase2["responder_peak_rss_mib"] = round(vmhwm_kib(svc.proc.pid) / 1024, 1)
    print("phase 2:", json.dumps(phase2), flush=True)
    enf.stop()
    rc = svc.stop()
    result = {"bench": "responder", "at": datetime.now(timezone.utc).isoformat(),
              "events": a.events, "phase1": phase1, "phase2": phase2, "sigterm_rc": rc}
    out = Path(a.out)
    out.mkdir(exist_ok=True)
    with open(out / "responder.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
