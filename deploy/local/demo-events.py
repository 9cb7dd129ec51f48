#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The events part of deploy/local/demo: what cwpp-correlator made of the demo's alerts:
the snapshots and notifications on the prefix's topics decoded with python3-avro and
schemas/ alone, and the largest event's alerts with why each joined, as the demo's admin
reads them through cwpp-api (cwppctl --json).
Usage: demo-events.py PREFIX"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from demo_ctl import ADMIN, ctl  # noqa: E402

prefix = sys.argv[1]


parts = int(os.environ.get("CWPP_TOPIC_PARTITIONS", "6"))
hw = t.high_watermarks(prefix + "alerts.accepted", parts)


def applied():
    """Whether the correlator's group committed every record on the accepted topic: the
    alerts, and the whitelist's news that an alert was whitelisted (it left its event) or
    removed from the whitelist (it joined again)."""
    done = t.committed(prefix + "correlator", prefix + "alerts.accepted", parts)
    return all(max(done.get(p, 0), 0) >= n for p, n in hw.items())


t.wait_for(applied, timeout=60, what="the correlator to apply every accepted record")
records = [t.AvroType("alert").decode(m.value())
           for m in t.consume(prefix + "alerts.accepted", 1, 30, 1)]
accepted = sum(r["transition"] == "occurrence" for r in records)
moved = len(records) - accepted
snaps = {}
for m in t.consume(prefix + "events", 1, 30, 2):
    snaps[m.key().decode()] = t.AvroType("event").decode(m.value())
print(f"\n== cwpp-correlator: {accepted} accepted alerts -> {len(snaps)} security events "
      f"(latest snapshot of each on {prefix}events); {moved} whitelist change(s) moved "
      "alerts out of or back into their events")
for s in sorted(snaps.values(), key=lambda s: (s["account_id"], s["first_seen_ms"])):
    print(f"  {s['event_id']}  {s['account_id']:<10} {s['level']:<8} {s['urgency']:<7} "
          f"alerts={s['alert_count']:<2} assets={len(s['affected_assets'])} "
          f"stages={','.join(s['stages']) or '-'}  {s['name']}")
top = max(snaps.values(), key=lambda s: s["alert_count"])
print(f"\n== the largest event, {top['event_id']}: urgency {top['urgency']}, because")
for r in top["reasons"]:
    print(f"  - [{r['code']}] {r['text']}")
for r in top["recommendations"]:
    print(f"  recommended: {r['action']} {r['entity_value']} ({r['reason']})")
print(f"\n  its alerts, in order, and why each joined ([{ADMIN}]$ cwppctl --json events alerts "
      f"{top['event_id']}):")
doc = json.loads(ctl("--json", "events", "alerts", top["event_id"], show=False,
                     check=True).stdout)
for a in doc["alerts"]:
    print(f"  {a['first_seen'][11:19]}  {a['name']:<32} defence={a['defense'] or '-':<9} "
          f"{a['reason']}")
print("\n  (its timeline and provenance graph: below, as alice sees them with cwppctl events "
      "chain)")
notes = [t.AvroType("notification").decode(m.value())
         for m in t.consume(prefix + "notifications", 1, 20, 2)]
print(f"\n== {len(notes)} notifications on {prefix}notifications "
      "(never for precision-defence-only events; an event notified in an earlier demo run is not notified again)")
for n in notes:
    print(f"  {n['kind']:<15} {n['event_id']} urgency={n['urgency']} {n['name']}")
