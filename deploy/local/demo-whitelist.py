#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The whitelist part of deploy/local/demo: what whitelist-filter let through (read from the
topics), then the demo's admin, through cwpp-api with cwppctl: a broad rule refused, a
precise rule created for the account of the alert, an alert whitelisted by hand, their
recurrences suppressed, then both undone (rule deleted, alert removed from the whitelist
and passed on again), so the demo can be rerun.
Usage: demo-whitelist.py PREFIX FEED FILTER_PORT"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from demo_ctl import ctl as run_ctl  # noqa: E402

prefix, feed, port = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
alert = t.AvroType("alert")


def ctl(*args, show=True):
    p = run_ctl(*args, show=show, exit_code=True)
    return p.returncode, p.stdout


def topic(name, expect, settle=1.0):
    return [alert.decode(m.value()) for m in t.consume(prefix + name, expect, 30, settle)]


def metric(name):
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
            if line.startswith(name)}


acc = topic("alerts.accepted", 1, settle=3)
sup = topic("alerts.suppressed", 0, settle=0.5)
print(f"\n== whitelist-filter: {len(acc)} records passed on to {prefix}alerts.accepted, "
      f"{len(sup)} suppressed")
for status in sorted({a["status"] for a in acc}):
    n = sum(1 for a in acc if a["status"] == status)
    print(f"   {n:>3} {status}" + ("   (precision defence: defended, no notification)"
                                  if status == "handled" else ""))

lines = [ln for ln in feed.read_bytes().split(b"\n") if ln.strip()]
shell = next(ln for ln in lines if b"Terminal shell in container" in ln)
scan = next(ln for ln in lines if b"Port scan from external IP" in ln)
scan_id = json.loads(ctl("--json", "alerts", "list", "--name", "Port scan from external IP",
                         show=False)[1])["alerts"][0]["alert_id"]
# a rule belongs to an account: the one of the shell alert
shell_acct = json.loads(ctl("--json", "alerts", "list", "--name", "Terminal shell in container",
                            "--limit", "1", show=False)[1])["alerts"][0]["account_id"]

print(f"\n== a rule as broad as the reference's warning is refused without --force "
      f"(account {shell_acct})")
ctl("whitelist", "preview", "--account", shell_acct, "--alert-name",
    "Terminal shell in container", "--field", "process.path", "--op", "contains", "--value", "/usr/")
ctl("whitelist", "rule", "add", "--account", shell_acct, "--alert-name",
    "Terminal shell in container", "--field", "process.path", "--op", "contains", "--value", "/usr/")

print("\n== a precise rule: shells in the shop namespace's nginx pods are the web team's "
      "debugging (expires in 10 minutes)")
rc, out = ctl("--json", "whitelist", "rule", "add", "--account", shell_acct, "--alert-name",
              "Terminal shell in container",
              "--field", "details.output_fields.k8s.ns.name", "--op", "eq", "--value", "shop",
              "--expires", "10m", "--force", "--remark", "web team debugging, ticket OPS-1234")
rule_id = json.loads(out)["result"]["rule_id"] if rc == 0 else None

print("\n== an alert whitelisted by hand: the port scan comes from our own scanner")
ctl("whitelist", "add-alert", scan_id, "--remark", "authorised scanner 203.0.113.9")

print("\n== both recur (later occurrences of the same alerts)")
time.sleep(1)
recur = []
for ln, minute in ((shell, "08:31:12"), (scan, "22:58:10")):
    o = json.loads(ln)
    if "time" in o:
        o["time"] = "2026-11-28T" + minute + ".000000000Z"
    else:
        o["occurred_at"] = "2026-11-27T" + minute + "Z"
    recur.append(json.dumps(o).encode())
t.produce(prefix + "alerts.raw", recur)
sup = topic("alerts.suppressed", 3, settle=1.5)
for a in sup:
    print(f"   suppressed {a['alert_id']} {a['name']!r:34} {a['status']:<26} "
          f"occurrences {a['occurrences']}")
print("   rule hits in /metrics:", metric("cwpp_whitelist_rule_hits_total"))
ctl("whitelist", "rule", "list", "--account", shell_acct, "--alert-name",
    "Terminal shell in container")

print("\n== undo: delete the rule (only future alerts are affected), remove the alert from "
      "the whitelist (it is evaluated again and passes on)")
if rule_id is not None:
    ctl("whitelist", "rule", "delete", str(rule_id), "--remark", "debugging done")
ctl("whitelist", "remove", scan_id, "--remark", "demo over")
ctl("alerts", "show", scan_id)
