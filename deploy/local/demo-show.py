#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Prints what ingest wrote for the demo: normalized alerts (Avro, decoded with
python3-avro from schemas/ alone), recurrences of the same alert, and rejected records;
then the same alerts as the demo's admin lists them through cwpp-api (cwppctl).
Usage: demo-show.py PREFIX EXPECTED_RECORDS"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from demo_ctl import ADMIN, ctl  # noqa: E402

prefix, expected = sys.argv[1], int(sys.argv[2])
alert, rejected = t.AvroType("alert"), t.AvroType("rejected_record")
good = t.consume(prefix + "alerts.normalized", expect=1, timeout=30, settle=3)
bad = t.consume(prefix + "alerts.rejected", expect=max(0, expected - len(good)), timeout=30,
                settle=1)
alerts = [alert.decode(m.value()) for m in good]

print(f"\n== {len(alerts)} normalized alerts on {prefix}alerts.normalized "
      f"(Avro single-object, key = account)")
print(f"{'alert_id':<37} {'fmt':<5} {'severity':<8} {'status':<9} {'occ':>3}  name")
for a in sorted(alerts, key=lambda a: (a["account_id"], a["occurred_at_ms"])):
    print(f"{a['alert_id']:<37} {a['input_format']:<5} {a['severity']:<8} {a['status']:<9} "
          f"{a['occurrences']:>3}  {a['name'][:60]}  [{a['account_id']}, {a['asset']['id']}]")

by_id = {}
for a in alerts:
    by_id.setdefault(a["alert_id"], []).append(a)
print("\n== recurrences: the same alert again (no new alert; last seen and count move)")
for aid, occ in by_id.items():
    if len(occ) > 1:
        last = max(occ, key=lambda a: a["occurrences"])
        print(f"{aid}  {last['name']!r}: {len(occ)} records in this feed, "
              f"{last['occurrences']} occurrences in total, key {last['dedup_key']}")

print(f"\n== {len(bad)} rejected records on {prefix}alerts.rejected (dead letter)")
for m in bad:
    r = rejected.decode(m.value())
    raw = r["value"][:50].decode("utf-8", "backslashreplace")
    print(f"offset {r['source_partition']}:{r['source_offset']:<4} {r['reason_code']:<14} "
          f"{r['reason'][:90]}\n{'':22}original: {raw!r}")

listed = json.loads(ctl("--json", "alerts", "list", "--limit", "500", show=False,
                         check=True).stdout)["alerts"]
mine = [a for a in listed if a["alert_id"] in by_id]
print(f"\n== [{ADMIN}]$ cwppctl alerts list: {len(mine)} of these alerts, "
      f"{sum(a['occurrences'] for a in mine)} occurrences "
      f"(ids are stable: rerunning the demo adds occurrences to the same alerts)")
