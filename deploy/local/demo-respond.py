#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""deploy/local/demo-respond.py PREFIX EVENT_ID: the analyst alice (added, granted acct-1001
and logged in by deploy/local/demo) responds to the event through cwpp-api with cwppctl,
applied by the real cwpp-responder (started by deploy/local/demo): she takes the event,
sets its level, looks at the recommended handling and blocks the attacking IP for 8
seconds. The IP attacked two hosts of the account, so without a perimeter the block
would go to each of them. When run as root, the real cwpp-enforcer runs as the account's
gateway (a perimeter agent the demo's admin declares: the block goes there once, for
the whole account) inside two network namespaces made for the demo (the gateway's
firewall, and an attacker holding the IP), so a ping from the attacker fails, and works
again once the lease ended and the responder rolled the block back; the declaration is
withdrawn at the end. Without root no agent runs: the tasks time out and the event
becomes failed, which is shown too. Then the event's tasks and activity log."""
import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402
from demo_ctl import ADMIN, ctl as run_ctl  # noqa: E402

PREFIX, EVENT = sys.argv[1], sys.argv[2]
# the enforcer's (a service, as its own Kafka principal), not cwppctl's
ENV = dict(os.environ, CWPP_TOPIC_PREFIX=PREFIX, **t.kafka_env("enforcer"))


def ctl(*args, user="alice", show=True, check=True):
    return run_ctl(*args, user=user, show=show, check=check)


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def main():
    print("\n== responding to", EVENT)
    shown = json.loads(ctl("--json", "events", "show", EVENT, show=False).stdout)
    if shown.get("status") == "handled":
        print("demo: this event was handled by an earlier demo run on this database; "
              "`deploy/local/down --purge` starts afresh")
        ctl("events", "log", EVENT)
        return
    # (an event of an earlier demo run on this stack may be alice's already: said, not fatal)
    ctl("events", "owner", EVENT, "alice", "--remark", "on call", check=False)
    ctl("events", "level", EVENT, "critical", "--remark", "database server involved",
        check=False)
    ctl("events", "recommend", EVENT)
    rec = json.loads(ctl("--json", "events", "recommend", EVENT, show=False).stdout)
    ips = [e for e in rec["entities"] if e["type"] == "ip"
           and isinstance(ipaddress.ip_address(e["value"]), ipaddress.IPv4Address)]
    if not ips:
        print("demo: the event has no IPv4 entity to block")
        return
    ip = ips[0]["value"]
    asset = perimeter = None
    agent, nets = None, []
    if os.geteuid() == 0 and subprocess.run(["ip", "netns", "list"],
                                            capture_output=True).returncode == 0:
        n = uuid.uuid4().hex[:6]
        host_ns, att_ns = f"cwppdemo-h{n}", f"cwppdemo-a{n}"
        net = ipaddress.ip_network(ip + "/24", strict=False)
        host_ip = str(net.network_address + (254 if ip != str(net.network_address + 254) else 253))
        for ns in (host_ns, att_ns):
            sh("ip", "netns", "add", ns)
            nets.append(ns)
        sh("ip", "link", "add", f"dh{n}", "netns", host_ns, "type", "veth", "peer", "name",
           f"da{n}", "netns", att_ns)
        for ns, dev, addr in ((host_ns, f"dh{n}", host_ip), (att_ns, f"da{n}", ip)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # the account's gateway: the demo's admin declares its agent the perimeter of
        # acct-1001, so blocking an IP of the account goes there (once), not to each host
        # the IP attacked
        asset = "gw-" + n
        ctl("accounts", "perimeter", "acct-1001", asset, user=ADMIN, check=True)
        perimeter = asset
        state = Path(os.environ["CWPP_STATE_DIR"]) / "run" / f"demo-enforcer-{n}"
        log = open(Path(os.environ["CWPP_STATE_DIR"]) / "run" / "demo-enforcer.log", "ab")
        agent = subprocess.Popen([str(REPO / "build" / "bin" / "cwpp-enforcer")], env=dict(
            ENV, CWPP_ENFORCER_ACCOUNT_ID="acct-1001", CWPP_ENFORCER_ASSET_ID=asset,
            CWPP_ENFORCER_NETNS=f"/run/netns/{host_ns}", CWPP_ENFORCER_STATE_DIR=str(state),
            CWPP_HTTP_PORT="0", CWPP_GROUP_ID=f"{PREFIX}enforcer-{asset}",
            CWPP_ENFORCER_VERIFY_KEY_FILE=os.environ["CWPP_ACTION_VERIFY_KEY"]),
            stdout=log, stderr=subprocess.STDOUT)
        time.sleep(2)

        def ping():
            return sh("ip", "netns", "exec", att_ns, "ping", "-c1", "-W1", host_ip,
                      check=False).returncode == 0
        print(f"demo: cwpp-enforcer runs for the gateway {asset}, the perimeter of acct-1001; its "
              f"firewall is network namespace {host_ns} ({host_ip}); the attacker {ip} is "
              f"namespace {att_ns}")
        print(f"demo: ping from the attacker before: {'answered' if ping() else 'no answer'}")
    else:
        print("demo: not root: no agent runs, so the block task will time out and the event "
              "become failed (run the demo as root to see nftables apply it)")
    try:
        ctl("events", "respond", EVENT, "--entity", f"ip:{ip}", "--validity", "8s", "--status",
            "handled", "--remark", "block the attacker")
        deadline = time.time() + 60
        while time.time() < deadline:
            st = json.loads(ctl("--json", "events", "show", EVENT, show=False).stdout)
            status = st.get("status") or st.get("event", {}).get("status")
            if status in ("handled", "failed"):
                break
            time.sleep(0.5)
        print(f"demo: the event is now {status}")
        if agent is not None:
            print(f"demo: ping from the attacker while blocked: "
                  f"{'answered' if ping() else 'no answer'}")
            deadline = time.time() + 60
            while time.time() < deadline:
                doc = json.loads(ctl("--json", "events", "tasks", EVENT, show=False).stdout)
                if all(p["state"] == "expired" for p in doc["policies"]):
                    break
                time.sleep(0.5)
            print(f"demo: after the lease ended and the rollback: "
                  f"{'answered' if ping() else 'no answer'}")
        ctl("events", "tasks", EVENT)
        ctl("events", "log", EVENT)
    finally:
        if perimeter is not None:
            ctl("accounts", "perimeter", "acct-1001", perimeter, "--remove", user=ADMIN,
                check=False)
        if agent is not None:
            agent.terminate()
            print(f"demo: enforcer stopped (exit {agent.wait(30)})")
        for ns in nets:
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    main()
