#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/whitelist.py: cwpp-whitelist-filter against a raw librdkafka relay on the same
local broker and the same input, with 10 and with 10,000 live rules.

Set-up: N alerts go through the real ingest into <prefix>alerts.normalized (Avro). Then,
from fresh consumer groups, the relay copies that topic and the filter decides it (once
with 10 rules, once with 10,000 rules over 1,000 alert names; one rule of the alerts' own
name matches about 10 % of them). Throughput is N over the span between the first and
last output record's broker timestamps. The per-alert CPU cost of matching alone (10 vs
10,000 rules) comes from bench/rules_bench.c. Rules are created as the database owner
and deleted (marked) at the end. Run through bench/run-whitelist."""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

import psycopg2.extras
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from bench import RELAY, create_relay_topic, read_topic, records, span_rate, vmhwm_kib  # noqa: E402


def make_rules(run, name, total, accounts):
    """total rules: one matching ~10 % of the bench alerts (a rule belongs to one account:
    one such rule for each of the alerts' accounts), 9 more of the same name that never
    match, the rest spread over 1,000 other names, their accounts taken in turn."""
    rows = [(name, "file.path", "regex", r"^/var/tmp/\.cache/x\d*0$", f"bench-{run}-0-{i}", a)
            for i, a in enumerate(accounts)]
    for k in range(1, 10):
        rows.append((name, "details.file_size", "gt", str(10_000_000 + k), f"bench-{run}-{k}",
                     accounts[k % len(accounts)]))
    for k in range(10, total):
        rows.append((f"Other alert {k % 1000} {run}", "process.cmdline", "contains",
                     f"--token-{k}", f"bench-{run}-{k}", accounts[k % len(accounts)]))
    conn = t.db()
    with conn.cursor() as cur:
        cur.execute("SET ROLE cwpp_owner")
        psycopg2.extras.execute_values(
            cur, "INSERT INTO whitelist_rules (alert_name, field, op, value, scope, created_by, "
            "command_id, account_id) VALUES %s", [(n_, f_, o_, v_, "all", "bench", c_, a_)
                                                  for n_, f_, o_, v_, c_, a_ in rows],
            page_size=1000)
        cur.execute("UPDATE whitelist_state SET version = version + 1")
    conn.close()


def drop_rules(run):
    t.query("UPDATE whitelist_rules SET deleted_at = now(), deleted_by = 'bench' "
            "WHERE command_id LIKE %s AND deleted_at IS NULL", (f"bench-{run}-%",))
    t.query("UPDATE whitelist_state SET version = version + 1")


def decided(svc):
    code, text = svc.http("/metrics")
    out = {}
    for line in text.splitlines() if code == 200 else []:
        if line.startswith("cwpp_whitelist_alerts_total{"):
            k, v = line.rsplit(" ", 1)
            out[k.split('"')[1]] = int(float(v))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50000)
    a = ap.parse_args()
    run = uuid.uuid4().hex[:6]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"cwpp-bench-wl-{run}"
    tmp.mkdir(parents=True, exist_ok=True)
    name = f"Trojan program {run}"
    n = a.records
    raw = [r for r in records(n, run) if r.endswith(b"}")]
    raw = [r.replace(b'"Trojan program"', json.dumps(name).encode()) for r in raw]

    # 1. normalized input through the real ingest
    src = f"bench{run}w."
    t.create_topics(src, partitions=6)
    t.produce(src + "alerts.raw", raw)
    ing = t.Service("ingest", src, tmp, extra_env={"CWPP_LOG_LEVEL": "warn"})
    ing.start()
    ing.wait_ready()
    norm = read_topic(src + "alerts.normalized", len(raw), timeout=300)
    ing.stop()
    n = len(norm)
    print(f"input: {n} normalized alerts on {src}alerts.normalized", flush=True)

    # 2. the relay on the same input
    create_relay_topic(src + "relay.out")
    relay = subprocess.Popen([str(RELAY), t.BROKERS, src + "relay", src + "alerts.normalized",
                              src + "relay.out", str(n)], env=t.admin_env(), stdout=subprocess.DEVNULL)
    relay.wait(300)
    relay_rate, _ = span_rate(read_topic(src + "relay.out", n))

    res = {"records": n, "relay_alerts_per_s": round(relay_rate)}
    for total in (10, 10000):
        make_rules(f"{run}{total}", name, total, [f"bench-{run}-{k}" for k in range(13)])
        time.sleep(1)
        # each filter run writes to its own output topics: mirror the input topic name
        # through a prefix whose normalized topic is the source's (same topic object)
        out = f"bench{run}o{total}."
        t.create_topics(out, partitions=6)
        svc = t.Service("whitelist-filter", out, tmp, group=f"{out}wl",
                        extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN, "CWPP_LOG_LEVEL": "warn",
                                   "CWPP_BATCH_MAX_MS": "50"})
        # feed: copy the normalized records into this prefix's input first
        t.produce(out + "alerts.normalized", [m.value() for m in norm],
                  keys=[m.key() for m in norm])
        svc.start()
        svc.wait_ready()
        deadline = time.time() + 300
        while time.time() < deadline and sum(decided(svc).values()) < n:
            time.sleep(0.5)
        d = decided(svc)
        rss = vmhwm_kib(svc.proc.pid)
        svc.stop()
        nsup = d.get("automatically_whitelisted", 0) + d.get("manually_whitelisted", 0)
        outs = read_topic(out + "alerts.accepted", n - nsup) + \
            read_topic(out + "alerts.suppressed", nsup)
        rate, span = span_rate(outs)
        suppressed = nsup
        drop_rules(f"{run}{total}")
        res[f"rules_{total}"] = {"alerts_per_s": round(rate), "span_s": round(span, 2),
                                 "suppressed": suppressed, "peak_rss_mib": round(rss / 1024, 1),
                                 "ratio_to_relay": round(rate / relay_rate, 3)}
        print(f"{total} rules:", json.dumps(res[f"rules_{total}"]), flush=True)

    cpu = subprocess.run([str(t.REPO / "build" / "bin" / "cwpp-bench-rules")],
                         capture_output=True, text=True, timeout=300).stdout
    print("\n== cwpp-whitelist-filter vs raw librdkafka relay "
          f"({n} alerts, 6 partitions, local broker)")
    print(f"relay            {res['relay_alerts_per_s']:>8} alerts/s")
    for total in (10, 10000):
        r = res[f"rules_{total}"]
        print(f"filter {total:>5} rules {r['alerts_per_s']:>8} alerts/s   ratio {r['ratio_to_relay']:.2f}"
              f" (target >= 0.5)   suppressed {r['suppressed']}   peak RSS {r['peak_rss_mib']} MiB")
    print("matching alone (bench/rules_bench.c):")
    print(cpu.strip())
    outdir = t.REPO / "bench" / "results"
    outdir.mkdir(exist_ok=True)
    (outdir / f"whitelist-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
