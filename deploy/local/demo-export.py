#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""deploy/local/demo-export.py PREFIX EVENT_ID: what cwpp-exporter (started by deploy/local/demo)
made of the demo: the Excel export of acct-1001's events, asked for and downloaded by the
analyst alice through cwpp-api with cwppctl, opened with python3-openpyxl, and the handled
event on PREFIX events.handled (Avro, decoded with python3-avro and schemas/ alone) and
events.handled.ocsf (OCSF JSON), read with python3-confluent-kafka as read_committed. (On
a database other runs used too, the new topics also get their handled events: the one of
EVENT_ID is shown.)"""
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from demo_ctl import ctl  # noqa: E402

import openpyxl  # noqa: E402
from confluent_kafka import Consumer  # noqa: E402

PREFIX, EVENT = sys.argv[1], sys.argv[2]


def main():
    evs = json.loads(ctl("--json", "events", "list", "--account", "acct-1001", user="alice",
                         show=False, check=True).stdout)["events"]
    out = Path(os.environ["CWPP_STATE_DIR"]) / "run" / "demo-events.xlsx"
    ids = [e["event_id"] for e in evs]
    print(f"\n== alice exports the {len(ids)} events of acct-1001 to Excel")
    p = ctl("export", "--ids", *ids, "--out", str(out), user="alice", show=False)
    print(f"[alice]$ cwppctl export --ids <the {len(ids)} events> --out {out}")
    sys.stdout.write(p.stdout + p.stderr)
    if p.returncode != 0:
        sys.exit(f"demo: export failed ({p.returncode})")
    wb = openpyxl.load_workbook(out)
    for ws in wb.worksheets:
        print(f"demo: sheet {ws.title!r}: {ws.max_row - 1} rows; columns: "
              f"{', '.join(str(c.value) for c in ws[1])}")
    print("\n== the handled-event stream (read_committed)")
    handled = t.AvroType("handled_event")
    for suffix in ("events.handled", "events.handled.ocsf"):
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": os.environ["CWPP_KAFKA_BROKERS"],
                      "group.id": f"demo-{time.time()}", "auto.offset.reset": "earliest",
                      "isolation.level": "read_committed", "enable.auto.commit": False})
        c.subscribe([PREFIX + suffix])
        got, deadline = [], time.time() + 20
        while not got and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error() and m.key() == EVENT.encode():
                got.append(m)
        c.close()
        for m in got[:1]:
            if suffix == "events.handled":
                r = handled.decode(m.value())
                print(f"demo: {suffix}: seq {r['seq']} {r['event_id']} {r['name']!r} level "
                      f"{r['level']}, {len(r['alerts'])} alerts, {len(r['entities'])} entities, "
                      f"{len(r['policies'])} policies, {len(r['activity'])} log entries")
            else:
                o = json.loads(m.value())
                print(f"demo: {suffix}: OCSF {o['class_name']} (class {o['class_uid']}, type "
                      f"{o['type_uid']}), severity {o['severity']}, status {o['status']}, "
                      f"finding {o['finding_info_list'][0]['uid']}")
        if not got:
            print(f"demo: {EVENT} is not on {PREFIX}{suffix} (not handled?)")


if __name__ == "__main__":
    main()
