# SPDX-License-Identifier: Apache-2.0
"""cwpp-enforcer against the real local broker and real Linux: nftables in test network
namespaces, real processes, files, a chroot's accounts (docs/actions.md,
docs/enforcer.md).

Topology, made fresh for this module and torn down even on failure (nothing in the root
namespace is touched; the veths live only inside the test namespaces):

    ATTACKER 10.231.N.2 --veth-- 10.231.N.1 HOST 10.232.N.1 --veth-- 10.232.N.2 MGMT

The agent runs in the root namespace (where the broker is) with enforcer.netns = HOST,
so its nftables changes are HOST's firewall. One agent serves the module's tests (its
start-up is the slow part); the redelivery test kills it with SIGKILL and restarts it,
the last test stops it with SIGTERM.
"""
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

import cwpp_testlib as t

ACTION = t.AvroType("action")
RESULT = t.AvroType("action_result")
REJECTED = t.AvroType("rejected_record")
ACCOUNT = "acct-enf"


def sh(*args, check=True, timeout=10):
    return subprocess.run(list(args), capture_output=True, text=True, check=check,
                          timeout=timeout)


# ----------------------------------------------------------------- namespaces

class Net:
    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.n = random.randint(1, 250)
        self.host, self.att, self.mgmt = f"enfh-{tag}", f"enfa-{tag}", f"enfm-{tag}"
        self.host_ip, self.att_ip = f"10.231.{self.n}.1", f"10.231.{self.n}.2"
        self.host_mip, self.mgmt_ip = f"10.232.{self.n}.1", f"10.232.{self.n}.2"
        self.made = []

    def up(self):
        for ns in (self.host, self.att, self.mgmt):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # both ends created inside the namespaces: the root namespace never sees them
        sh("ip", "-n", self.host, "link", "add", "va", "type", "veth", "peer", "name", "vh",
           "netns", self.att)
        sh("ip", "-n", self.host, "link", "add", "vm", "type", "veth", "peer", "name", "vh",
           "netns", self.mgmt)
        for ns, dev, addr in ((self.host, "va", self.host_ip), (self.att, "vh", self.att_ip),
                              (self.host, "vm", self.host_mip), (self.mgmt, "vh", self.mgmt_ip)):
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        return self

    def down(self):
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)

    def ping(self, src_ns, dst):
        return subprocess.run(["ip", "netns", "exec", src_ns, "ping", "-n", "-q", "-c1", "-W1",
                               dst], capture_output=True, timeout=10).returncode == 0

    def ping_until(self, src_ns, dst, want, tries=3):
        """Pings until the answer is want (a first ping may wait for ARP)."""
        for _ in range(tries):
            if self.ping(src_ns, dst) == want:
                return True
        return False

    def ruleset(self):
        return sh("ip", "netns", "exec", self.host, "nft", "list", "ruleset").stdout


# --------------------------------------------------------------------- agent

class Results:
    """Every ActionResult on <prefix>action-results, read from the start of each partition
    (assigned, no group), collected by action_id."""

    def __init__(self, prefix):
        self.topic = prefix + "action-results"
        self.c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "it-res-" + uuid.uuid4().hex,
                           "enable.auto.commit": False})
        self.c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(3)])
        self.by_id = {}

    def poll(self, secs):
        end = time.time() + secs
        while time.time() < end:
            m = self.c.poll(0.2)
            if m is not None and m.error() is None:
                r = RESULT.decode(m.value())
                assert m.key().decode() == r["action_id"]
                self.by_id.setdefault(r["action_id"], []).append(r)

    def wait(self, action_id, count=1, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if len(self.by_id.get(action_id, [])) >= count:
                return self.by_id[action_id]
            self.poll(0.3)
        raise AssertionError(f"no result for {action_id} in {timeout}s")

    def close(self):
        self.c.close()


class Agent:
    def __init__(self, prefix, tmp, net, svc, results):
        self.prefix, self.tmp, self.net, self.svc, self.results = prefix, tmp, net, svc, results
        self.asset = "asset-" + uuid.uuid4().hex[:8]

    def send(self, action, params, action_id=None, asset=None, account=ACCOUNT, deadline=None,
             raw_params=None, clock_shift_ms=0, issued_at=None, key=None, unsigned=False,
             after_signing=None):
        """clock_shift_ms: the sender's clock that far ahead of the real one. Signed with
        key (default: the session's test key, the agent's verify key) unless unsigned;
        after_signing: fields changed once signed (tampering)."""
        action_id = action_id or f"task-{uuid.uuid4().hex[:12]}.1"
        now = int(time.time() * 1000) + clock_shift_ms
        rec = {"action_id": action_id, "task_id": action_id.rsplit(".", 1)[0],
               "policy_id": "pol-it", "event_id": "ev-it", "account_id": account,
               "asset_id": asset or self.asset, "action": action,
               "params_json": raw_params if raw_params is not None else json.dumps(params),
               "attempt": 1, "issued_at_ms": issued_at if issued_at is not None else now,
               "deadline_ms": deadline if deadline is not None else now + 60000}
        rec = dict(rec, key_id="", signature=b"") if unsigned else t.sign_action(rec, key)
        rec.update(after_signing or {})
        t.produce(self.prefix + "actions", [ACTION.encode(rec)],
                  keys=[f"{account}/{rec['asset_id']}".encode()])
        return action_id

    def do(self, action, params=None, **kw):
        """Sends one action and returns its (first) result."""
        aid = self.send(action, params if params is not None else {}, **kw)
        (r,) = self.results.wait(aid)[:1]
        return r

    def metrics(self):
        return t.metrics(self.svc)


def other_agents(tmp, n, env_for=lambda i: {}):
    """n more agents on a topic prefix of their own (one asset each), started together;
    returns (prefix, results, [Agent]). Stop them with stop_agents."""
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=3)
    results = Results(prefix)
    agents = []
    for i in range(n):
        d = tmp / f"agent{i}"
        d.mkdir(parents=True, exist_ok=True)
        name = "it-" + uuid.uuid4().hex[:8]
        env = {"CWPP_GROUP_ID": "cwpp-enforcer", "CWPP_ENFORCER_ACCOUNT_ID": ACCOUNT,
               "CWPP_ENFORCER_NAME": name, "CWPP_ENFORCER_STATE_DIR": str(d / "state"),
               **env_for(i)}
        svc = t.Service("enforcer", prefix, d, extra_env=env)
        a = Agent(prefix, d, None, svc, results)
        a.name = name
        svc.env["CWPP_ENFORCER_ASSET_ID"] = a.asset
        agents.append(a)
    for a in agents:
        a.svc.start()
    for a in agents:
        a.svc.wait_ready()
    return prefix, results, agents


def stop_agents(results, agents):
    """SIGTERM: each must exit 0 (under ASan also: without leaks)."""
    codes = []
    for a in agents:
        if a.svc.proc is not None:
            codes.append(a.svc.stop())
    results.close()
    assert codes == [0] * len(codes), codes


@pytest.fixture(scope="module")
def net():
    assert shutil.which("ping"), "ping is missing: install iputils-ping (deploy/local/install-deps)"
    n = Net()
    try:
        yield n.up()
    finally:
        n.down()


@pytest.fixture(scope="module")
def agent(net, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enforcer")
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=3)
    chroot = tmp / "chroot"
    (chroot / "etc").mkdir(parents=True)
    (chroot / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (chroot / "etc" / "shadow").write_text(
        "root:*:19000:0:99999:7:::\nalice:$6$salt$hash:19000:0:99999:7:::\n")
    (chroot / "etc" / "group").write_text("root:x:0:\nalice:x:1000:\n")
    os.chmod(chroot / "etc" / "shadow", 0o600)
    (tmp / "deny.conf").write_text("# managed in part by cwpp-enforcer\ndeny 198.51.100.1;\n")
    name = "it-" + uuid.uuid4().hex[:8]
    env = {
        "CWPP_GROUP_ID": "cwpp-enforcer",  # the default: the agent makes it its own
        "CWPP_ENFORCER_ACCOUNT_ID": ACCOUNT,
        "CWPP_ENFORCER_NAME": name,
        "CWPP_ENFORCER_STATE_DIR": str(tmp / "state"),
        "CWPP_ENFORCER_NETNS": f"/run/netns/{net.host}",
        "CWPP_ENFORCER_MANAGEMENT": f"{net.mgmt_ip}, 2001:db8:ffff::/48",
        "CWPP_ENFORCER_WAF_DENY_FILE": str(tmp / "deny.conf"),
        "CWPP_ENFORCER_WAF_RELOAD": f"/usr/bin/touch {tmp}/reloaded",
        "CWPP_ENFORCER_SCAN_SIGNATURES": str(tmp / "sigs.txt"),
        "CWPP_ENFORCER_USERMOD_ROOT": str(chroot),
    }
    results = Results(prefix)
    svc = t.Service("enforcer", prefix, tmp, extra_env=env)
    a = Agent(prefix, tmp, net, svc, results)
    svc.env["CWPP_ENFORCER_ASSET_ID"] = a.asset
    a.name = name
    svc.start()
    try:
        svc.wait_ready()
        yield a
    finally:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(10)
        results.close()


# --------------------------------------------------------------------- tests

def test_config_doc_and_start_up_refusals(tmp_path):
    """docs/enforcer.md carries the table `cwpp-enforcer --config-doc` prints (regenerate
    it from there); bad configuration stops start-up with exit 1 and names the key."""
    out = subprocess.run([str(t.BIN / "cwpp-enforcer"), "--config-doc"], capture_output=True,
                         text=True, check=True).stdout
    table = [x for x in out.splitlines() if x.startswith("|")]
    doc = (t.REPO / "docs" / "enforcer.md").read_text()
    start = doc.index("<!-- config-table")
    documented = [x for x in doc[start:doc.index("<!-- end config-table")].splitlines()
                  if x.startswith("|")]
    assert documented == table
    base = {"CWPP_ENFORCER_ACCOUNT_ID": "a", "CWPP_ENFORCER_ASSET_ID": "h",
            "CWPP_ENFORCER_STATE_DIR": str(tmp_path / "s"), "CWPP_HTTP_PORT": "-1"}
    for drop, extra, key in ((("CWPP_ENFORCER_ACCOUNT_ID",), {}, "enforcer.account_id"),
                             (("CWPP_ENFORCER_ASSET_ID",), {}, "enforcer.asset_id"),
                             ((), {"CWPP_ENFORCER_MANAGEMENT": "10.0.0.1,nope"},
                              "enforcer.management"),
                             ((), {"CWPP_ENFORCER_NETNS": "/run/netns/none-such-ns"},
                              "enforcer.netns")):
        env = {k: v for k, v in dict(os.environ, **base, **extra).items() if k not in drop}
        p = subprocess.run([str(t.BIN / "cwpp-enforcer")], env=env, capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 1 and key in p.stderr, (key, p.returncode, p.stderr)


def test_block_ip_drops_traffic_and_unblock_restores_it(agent, net):
    """block_ip puts the address in inet cwpp_enforcer blocked4 of the HOST namespace and
    its traffic stops; both directions are idempotent; unblock_ip restores it; management
    and loopback addresses are refused."""
    assert net.ping_until(net.att, net.host_ip, True), "no connectivity before the test"
    r = agent.do("block_ip", {"ip": net.att_ip})
    assert r["status"] == "succeeded", r
    assert r["agent"] == agent.name and r["asset_id"] == agent.asset
    assert r["account_id"] == ACCOUNT and r["task_id"] == r["action_id"].rsplit(".", 1)[0]
    assert not net.ping(net.att, net.host_ip)
    rules = net.ruleset()
    assert "table inet cwpp_enforcer" in rules and net.att_ip in rules, rules
    assert "blocked4" in rules
    again = agent.do("block_ip", {"ip": net.att_ip})
    assert again["status"] == "succeeded" and "already blocked" in again["reason"], again
    assert json.loads(again["details_json"])["already"] is True

    r = agent.do("unblock_ip", {"ip": net.att_ip})
    assert r["status"] == "succeeded" and "Unblocked" in r["reason"], r
    assert net.ping_until(net.att, net.host_ip, True)
    assert net.att_ip not in net.ruleset()
    again = agent.do("unblock_ip", {"ip": net.att_ip})
    assert again["status"] == "succeeded" and "was not blocked" in again["reason"], again

    for ip in (net.mgmt_ip, "127.0.0.1", "::1", "2001:db8:ffff::7"):
        r = agent.do("block_ip", {"ip": ip})
        assert r["status"] == "failed" and "refusing" in r["reason"], r
    r = agent.do("block_ip", {"ip": "2001:db8::66"})  # IPv6 goes to blocked6
    assert r["status"] == "succeeded", r
    assert "2001:db8::66" in net.ruleset()
    assert agent.do("unblock_ip", {"ip": "2001:db8::66"})["status"] == "succeeded"


def test_isolate_host_keeps_management_and_restore_host_undoes_it(agent, net):
    """isolate_host: only loopback, management and allow-listed addresses stay reachable;
    again with another allow list replaces the rules; restore_host removes the table; both
    idempotent."""
    assert net.ping_until(net.att, net.host_ip, True)
    r = agent.do("isolate_host", {"allow": [net.att_ip + "/32"]})
    assert r["status"] == "succeeded", r
    assert net.ping_until(net.att, net.host_ip, True), "allow-listed address cut off"
    r = agent.do("isolate_host", {})
    assert r["status"] == "succeeded" and "already isolated" in r["reason"], r
    assert "table inet cwpp_isolation" in net.ruleset()
    assert not net.ping(net.att, net.host_ip)
    assert net.ping_until(net.mgmt, net.host_mip, True), "management cut off"
    assert sh("ip", "netns", "exec", net.host, "ping", "-c1", "-W1", "127.0.0.1",
              check=False).returncode == 0

    r = agent.do("restore_host", {})
    assert r["status"] == "succeeded" and "Restored" in r["reason"], r
    assert net.ping_until(net.att, net.host_ip, True)
    assert "cwpp_isolation" not in net.ruleset()
    r = agent.do("restore_host", {})
    assert r["status"] == "succeeded" and "was not isolated" in r["reason"], r
    r = agent.do("isolate_host", {"allow": ["not-an-ip"]})
    assert r["status"] == "failed" and "allow" in r["reason"], r
    assert "cwpp_isolation" not in net.ruleset()


def test_kill_process_checks_the_executable_then_kills(agent):
    """kill_process refuses when /proc/PID/exe is not the given path (pid reuse) and the
    process lives; with the right path it is SIGKILLed; a gone pid is "not running"; pid 1
    and the agent itself are refused."""
    p = subprocess.Popen(["sleep", "300"])
    try:
        exe = os.readlink(f"/proc/{p.pid}/exe")
        r = agent.do("kill_process", {"pid": p.pid, "path": "/tmp/not-sleep"})
        assert r["status"] == "failed", r
        assert f"pid {p.pid} is now {exe}, not /tmp/not-sleep" in r["reason"], r
        assert p.poll() is None
        r = agent.do("kill_process", {"pid": p.pid, "path": exe})
        assert r["status"] == "succeeded", r
        assert p.wait(5) == -signal.SIGKILL
        r = agent.do("kill_process", {"pid": p.pid})
        assert r["status"] == "succeeded" and "not running" in r["reason"], r
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for pid in (1, agent.svc.proc.pid):
        r = agent.do("kill_process", {"pid": pid})
        assert r["status"] == "failed" and "refusing" in r["reason"], r
    r = agent.do("kill_process", {"pid": "12"})
    assert r["status"] == "failed" and "\"pid\"" in r["reason"], r


def test_quarantine_file_moves_it_by_sha256(agent, tmp_path):
    """quarantine_file: the file moves into the quarantine dir named by its SHA-256 with
    mode 000 and one manifest line; a wrong sha256 is refused; a symlink is refused; a path
    already quarantined succeeds again."""
    qdir = agent.tmp / "state" / "quarantine"
    f = tmp_path / "dropper.bin"
    f.write_bytes(b"MZ evil payload " + uuid.uuid4().bytes)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    r = agent.do("quarantine_file", {"path": str(f), "sha256": "0" * 64})
    assert r["status"] == "failed" and sha in r["reason"], r
    assert f.exists()
    link = tmp_path / "link"
    link.symlink_to(f)
    r = agent.do("quarantine_file", {"path": str(link)})
    assert r["status"] == "failed" and "symbolic link" in r["reason"], r

    aid = agent.send("quarantine_file", {"path": str(f), "sha256": sha.upper()})
    (r,) = agent.results.wait(aid)
    assert r["status"] == "succeeded", r
    d = json.loads(r["details_json"])
    assert d == {"sha256": sha, "quarantined_as": str(qdir / sha)}
    assert not f.exists()
    q = qdir / sha
    assert stat.S_IMODE(q.stat().st_mode) == 0
    assert hashlib.sha256(q.read_bytes()).hexdigest() == sha  # root reads mode 000
    lines = [json.loads(x) for x in (qdir / "manifest.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x["path"] == str(f)]
    assert len(mine) == 1 and mine[0]["sha256"] == sha and mine[0]["action_id"] == aid
    assert mine[0]["at"].endswith("Z")
    r = agent.do("quarantine_file", {"path": str(f)})
    assert r["status"] == "succeeded" and "already in quarantine" in r["reason"], r
    r = agent.do("quarantine_file", {"path": str(tmp_path / "never-was")})
    assert r["status"] == "failed" and "does not exist" in r["reason"], r


def test_redelivered_action_id_is_answered_again_not_applied(agent, tmp_path):
    """The same action_id twice, in one run and after SIGKILL and restart: identical
    results, applied once (the second process is not killed, the manifest has one line);
    the journal survives the restart."""
    p1 = subprocess.Popen(["sleep", "300"])
    p2 = subprocess.Popen(["sleep", "300"])
    try:
        aid = agent.send("kill_process", {"pid": p1.pid})
        (first,) = agent.results.wait(aid)
        assert first["status"] == "succeeded"
        assert p1.wait(5) == -signal.SIGKILL
        # same id, other parameters: answered from the journal, not looked at
        agent.send("kill_process", {"pid": p2.pid}, action_id=aid)
        second = agent.results.wait(aid, 2)[1]
        assert second == first
        assert p2.poll() is None

        f = tmp_path / "twice.bin"
        f.write_bytes(b"twice " + uuid.uuid4().bytes)
        qid = agent.send("quarantine_file", {"path": str(f)})
        agent.send("quarantine_file", {"path": str(f)}, action_id=qid)
        a, b = agent.results.wait(qid, 2)
        assert a == b and a["status"] == "succeeded"
        manifest = (agent.tmp / "state" / "quarantine" / "manifest.jsonl").read_text()
        assert sum(1 for x in manifest.splitlines() if json.loads(x)["action_id"] == qid) == 1
        assert agent.metrics()["cwpp_enforcer_replays_total"] >= 2

        agent.svc.kill9()
        journal = (agent.tmp / "state" / "journal.jsonl").read_text().splitlines()
        assert sum(1 for x in journal if json.loads(x)["action_id"] == aid) == 1
        agent.svc.start()
        agent.svc.wait_ready()
        agent.send("kill_process", {"pid": p2.pid}, action_id=aid)
        third = agent.results.wait(aid, 3)[2]
        assert third == first
        assert p2.poll() is None
        assert agent.metrics()["cwpp_enforcer_replays_total"] >= 1
    finally:
        for p in (p1, p2):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_disable_and_enable_account_in_a_chroot(agent):
    """disable_account locks the password and expires the account (usermod --root CHROOT
    --lock --expiredate 1); enable_account undoes both; unknown and malformed users fail."""
    shadow = agent.tmp / "chroot" / "etc" / "shadow"

    def alice():
        return next(x for x in shadow.read_text().splitlines() if x.startswith("alice:")).split(":")

    r = agent.do("disable_account", {"user": "alice"})
    assert r["status"] == "succeeded", r
    f = alice()
    assert f[1] == "!$6$salt$hash" and f[7] == "1", f
    r = agent.do("disable_account", {"user": "alice"})
    assert r["status"] == "succeeded" and alice()[1] == "!$6$salt$hash"
    r = agent.do("enable_account", {"user": "alice"})
    assert r["status"] == "succeeded", r
    f = alice()
    assert f[1] == "$6$salt$hash" and f[7] == "", f
    r = agent.do("disable_account", {"user": "bob"})
    assert r["status"] == "failed" and "no account bob" in r["reason"], r
    for bad in ("Alice", "a;rm -rf /", "-x", "x" * 40):
        r = agent.do("disable_account", {"user": bad})
        assert r["status"] == "failed" and "is not an account name" in r["reason"], r
    r = agent.do("disable_account", {"user": "root"})
    assert r["status"] == "failed" and "root" in r["reason"], r


def test_waf_deny_file_and_scan_file(agent, tmp_path):
    """waf_block_ip adds "deny IP;" keeping other lines and runs the reload command;
    waf_unblock_ip removes it. scan_file hashes a directory's files against the signature
    file and quarantines the infected ones when asked."""
    deny = agent.tmp / "deny.conf"
    reloaded = agent.tmp / "reloaded"
    r = agent.do("waf_block_ip", {"ip": "203.0.113.7"})
    assert r["status"] == "succeeded", r
    lines = deny.read_text().splitlines()
    assert "deny 203.0.113.7;" in lines and "deny 198.51.100.1;" in lines
    assert lines[0].startswith("#") and reloaded.exists()
    r = agent.do("waf_block_ip", {"ip": "203.0.113.7"})
    assert r["status"] == "succeeded" and "already denied" in r["reason"], r
    assert deny.read_text().splitlines().count("deny 203.0.113.7;") == 1
    reloaded.unlink()
    r = agent.do("waf_unblock_ip", {"ip": "203.0.113.7"})
    assert r["status"] == "succeeded", r
    assert "deny 203.0.113.7;" not in deny.read_text() and "deny 198.51.100.1;" in deny.read_text()
    assert reloaded.exists()
    r = agent.do("waf_block_ip", {"ip": "203.0.113.300"})
    assert r["status"] == "failed" and "is not an IPv4 or IPv6 address" in r["reason"], r

    d = tmp_path / "www"
    d.mkdir()
    (d / "index.php").write_bytes(b"<?php echo 'hello'; ?>")
    (d / "shell.php").write_bytes(b"<?php eval($_POST['x']); ?>" + uuid.uuid4().bytes)
    (d / "other.txt").write_bytes(b"just text")
    (d / "sub").mkdir()
    evil = hashlib.sha256((d / "shell.php").read_bytes()).hexdigest()
    (agent.tmp / "sigs.txt").write_text(f"# test signatures\n{'ab' * 32}\n{evil.upper()}  # webshell\n")
    r = agent.do("scan_file", {"path": str(d)})
    assert r["status"] == "succeeded" and "1 infected" in r["reason"], r
    det = json.loads(r["details_json"])
    assert det["scanned"] == 3
    assert det["infected"] == [{"path": str(d / "shell.php"), "sha256": evil}]
    assert (d / "shell.php").exists()
    r = agent.do("scan_file", {"path": str(d / "index.php")})
    assert r["status"] == "succeeded" and "clean" in r["reason"], r
    r = agent.do("scan_file", {"path": str(d), "quarantine_if_infected": True})
    assert r["status"] == "succeeded", r
    det = json.loads(r["details_json"])
    assert det["infected"][0]["quarantined_as"].endswith("/" + evil)
    assert not (d / "shell.php").exists() and (d / "index.php").exists()
    r = agent.do("scan_file", {"path": str(d), "quarantine_if_infected": "yes"})
    assert r["status"] == "failed" and "quarantine_if_infected" in r["reason"], r


def test_bad_input_is_dead_lettered_or_failed_and_the_agent_goes_on(agent, net):
    """A record that is not an Action goes to alerts.rejected; malformed parameters,
    unknown actions and actions past their deadline fail with a reason; an action for
    another asset is skipped without an answer; the next valid action succeeds."""
    t.produce(agent.prefix + "actions", [b"\x00not avro at all", b""], keys=[b"x", b"y"])
    rec = ACTION.encode({"action_id": "", "task_id": "t", "policy_id": "p", "event_id": "e",
                         "account_id": ACCOUNT, "asset_id": agent.asset, "action": "block_ip",
                         "params_json": "{}", "attempt": 1, "issued_at_ms": 0,
                         "deadline_ms": 0})
    t.produce(agent.prefix + "actions", [rec, rec[:-4]], keys=[b"z", b"w"])
    cases = [
        ("block_ip", None, "{not json", "not a JSON object"),
        ("block_ip", None, "[1]", "not a JSON object"),
        ("block_ip", {}, None, "needs the parameter \"ip\""),
        ("block_ip", {"ip": 5}, None, "must be a non-empty string"),
        ("block_ip", {"ip": "10.0.0.1/8"}, None, "is not an IPv4 or IPv6 address"),
        ("block_ip", {"ip": "10.0.0.1", "port": 22}, None, "has no parameter \"port\""),
        ("quarantine_file", {"path": "relative/x"}, None, "absolute path"),
        ("quarantine_file", {"path": "/x", "sha256": "abc"}, None, "64 hex digits"),
        ("self_destruct", {}, None, "unknown action self_destruct"),
    ]
    ids = [agent.send(a, p, raw_params=raw) for a, p, raw, _ in cases]
    # past its deadline by more than the 30 s enforcer.clock.skew.max.ms tolerates
    late = agent.send("block_ip", {"ip": "192.0.2.55"}, deadline=int(time.time() * 1000) - 65000)
    other = agent.send("block_ip", {"ip": "192.0.2.56"}, asset="someone-else")
    ok = agent.send("block_ip", {"ip": "192.0.2.57"})
    for aid, (_, _, _, want) in zip(ids, cases):
        (r,) = agent.results.wait(aid)
        assert r["status"] == "failed" and want in r["reason"], (want, r)
    (r,) = agent.results.wait(late)
    assert r["status"] == "failed" and "arrived after its deadline" in r["reason"], r
    (r,) = agent.results.wait(ok)
    assert r["status"] == "succeeded", r
    rules = net.ruleset()
    assert "192.0.2.57" in rules and "192.0.2.55" not in rules and "192.0.2.56" not in rules
    agent.results.poll(1.0)
    assert other not in agent.results.by_id
    assert agent.do("unblock_ip", {"ip": "192.0.2.57"})["status"] == "succeeded"

    rej = [REJECTED.decode(m.value()) for m in t.consume(agent.prefix + "alerts.rejected", 4)]
    rej = [r for r in rej if r["service"] == "enforcer"]
    assert sorted(r["reason_code"] for r in rej) == ["bad_avro", "bad_avro", "bad_avro",
                                                     "missing_field"], rej
    assert all(r["source_topic"] == agent.prefix + "actions" for r in rej)
    assert {r["value"] for r in rej} >= {b"\x00not avro at all", rec}
    m = agent.metrics()
    assert m["cwpp_enforcer_skipped_total"] >= 1
    assert m['cwpp_enforcer_dead_letters_total{reason="bad_avro"}'] == 3
    assert m['cwpp_enforcer_actions_total{action="unknown",status="failed"}'] == 1
    assert m['cwpp_enforcer_actions_total{action="block_ip",status="succeeded"}'] >= 1
    assert agent.svc.proc.poll() is None


def test_poison_records_are_answered_or_dead_lettered_and_the_agent_goes_on(agent, net):
    """A 1,000,000-byte garbage value, a 1 MB Action whose action name is 900 kB (for this
    very agent) and one whose params_json is 900 kB: the first is dead-lettered (bad_avro,
    the dead letter cut to its 256 KiB prefix with the original's length and SHA-256),
    the others answered failed with a result of a few hundred bytes (the name cut to 64
    bytes); a valid action sent after them is applied; the agent is alive."""
    big = {"message.max.bytes": 2000000}
    garbage = os.urandom(1_000_000)
    t.produce(agent.prefix + "actions", [garbage], keys=[b"poison"], config=big)
    now = int(time.time() * 1000)

    def action(aid, name, params):
        return ACTION.encode({"action_id": aid, "task_id": aid.rsplit(".", 1)[0],
                              "policy_id": "p", "event_id": "e", "account_id": ACCOUNT,
                              "asset_id": agent.asset, "action": name, "params_json": params,
                              "attempt": 1, "issued_at_ms": now, "deadline_ms": now + 60000})
    long_name, long_params = f"pn-{uuid.uuid4().hex[:8]}.1", f"pp-{uuid.uuid4().hex[:8]}.1"
    recs = [action(long_name, "x" * 900_000, "{}"),
            action(long_params, "block_ip", json.dumps({"ip": "192.0.2.60", "pad": "y" * 900_000}))]
    assert all(len(r) > 900_000 for r in recs)
    t.produce(agent.prefix + "actions", recs, keys=[b"p1", b"p2"], config=big)
    ok = agent.send("block_ip", {"ip": "192.0.2.61"})
    (r,) = agent.results.wait(ok, timeout=60)
    assert r["status"] == "succeeded", r
    assert "192.0.2.61" in net.ruleset()

    (r,) = agent.results.wait(long_name)
    assert r["status"] == "failed" and "unknown action" in r["reason"], r
    assert r["action"] == "x" * 64 and len(RESULT.encode(r)) < 2000, len(RESULT.encode(r))
    (r,) = agent.results.wait(long_params)
    assert r["status"] == "failed" and "has no parameter \"pad\"" in r["reason"], r
    assert len(RESULT.encode(r)) < 2000 and "192.0.2.60" not in net.ruleset()

    rej = [REJECTED.decode(m.value()) for m in t.consume(agent.prefix + "alerts.rejected", 5)]
    mine = [x for x in rej if x["key"] == b"poison"]
    assert len(mine) == 1, [x["key"] for x in rej]
    d = mine[0]
    assert d["service"] == "enforcer" and d["reason_code"] == "bad_avro" and d["reason"], d
    assert len(d["value"]) == 262144 and d["value"] == garbage[:262144]
    assert d["value_length"] == 1_000_000
    assert d["value_sha256"] == hashlib.sha256(garbage).hexdigest()
    assert agent.do("unblock_ip", {"ip": "192.0.2.61"})["status"] == "succeeded"
    assert agent.svc.proc.poll() is None


def test_hung_helpers_fail_their_action_and_the_next_one_runs(net, tmp_path):
    """A WAF reload command that hangs is killed with its process group past
    enforcer.command.timeout.ms, an nftables change that hangs (fault point
    enforcer.nft_hang: libnftables never returns in the child) is killed past
    enforcer.nft.timeout.ms: each action fails within the timeout with a reason saying so,
    and the next action runs normally."""
    flag, pidfile = tmp_path / "hang", tmp_path / "sleeper.pid"
    reload = tmp_path / "reload.sh"
    reload.write_text(f"#!/bin/sh\nif [ -e {flag} ]; then sleep 300 & echo $! > {pidfile}; wait; fi\n"
                      f"echo x >> {tmp_path}/reloads\n")
    reload.chmod(0o755)
    prefix, results, (a,) = other_agents(tmp_path, 1, env_for=lambda i: {
        "CWPP_FAULTS": "enforcer.nft_hang:1",
        "CWPP_ENFORCER_NFT_TIMEOUT_MS": "1500",
        "CWPP_ENFORCER_COMMAND_TIMEOUT_MS": "1500",
        "CWPP_ENFORCER_NETNS": f"/run/netns/{net.host}",
        "CWPP_ENFORCER_MANAGEMENT": net.mgmt_ip,
        "CWPP_ENFORCER_WAF_DENY_FILE": str(tmp_path / "deny.conf"),
        "CWPP_ENFORCER_WAF_RELOAD": str(reload)})
    try:
        t0 = time.time()
        r = a.do("block_ip", {"ip": "192.0.2.70"})
        assert r["status"] == "failed", r
        assert "did not finish within 1500 ms (enforcer.nft.timeout.ms)" in r["reason"], r
        assert time.time() - t0 < 15
        assert "192.0.2.70" not in net.ruleset()
        r = a.do("block_ip", {"ip": "192.0.2.71"})
        assert r["status"] == "succeeded", r
        assert "192.0.2.71" in net.ruleset()
        assert a.do("unblock_ip", {"ip": "192.0.2.71"})["status"] == "succeeded"

        flag.touch()
        r = a.do("waf_block_ip", {"ip": "203.0.113.70"})
        assert r["status"] == "failed", r
        assert "reload failed" in r["reason"] and "did not finish within 1500 ms" in r["reason"], r
        sleeper = int(pidfile.read_text())
        time.sleep(0.3)
        stat_line = Path(f"/proc/{sleeper}/stat")
        assert not stat_line.exists() or stat_line.read_text().rsplit(")", 1)[1].split()[0] in "ZX", \
            "the reload command's child survived its deadline"
        flag.unlink()
        r = a.do("waf_block_ip", {"ip": "203.0.113.70"})
        assert r["status"] == "succeeded", r
        assert a.svc.proc.poll() is None
    finally:
        stop_agents(results, [a])


def test_full_state_disk_stalls_then_resumes_exactly_once(tmp_path):
    """The state directory on a 64 KiB tmpfs, filled up: the action whose journal line
    cannot be written is applied but not answered (nor committed), /readyz says the disk is
    full, a later action is not applied meanwhile; once the filler is gone both are
    answered, each applied and answered exactly once, and the agent is ready again."""
    state = tmp_path / "agent0" / "state"
    state.mkdir(parents=True)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(state)],
                       capture_output=True, text=True)
    if m.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the state directory: {m.stderr.strip()}")
    reloads = tmp_path / "reloads"
    reload = tmp_path / "reload.sh"
    reload.write_text(f"#!/bin/sh\necho x >> {reloads}\n")
    reload.chmod(0o755)
    results, agents = None, []
    try:
        prefix, results, agents = other_agents(tmp_path, 1, env_for=lambda i: {
            "CWPP_ENFORCER_WAF_DENY_FILE": str(tmp_path / "deny.conf"),
            "CWPP_ENFORCER_WAF_RELOAD": str(reload)})
        (a,) = agents
        assert a.do("waf_block_ip", {"ip": "203.0.113.80"})["status"] == "succeeded"
        assert len(reloads.read_text().splitlines()) == 1
        filler = state / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)

        def stalled():
            code, body = a.svc.http("/readyz")
            return body if code != 200 and "No space left on device" in body else None

        # the journal's last page still has room for a few lines: send actions until one
        # cannot be remembered
        applied, body = 1, None
        for k in range(60):
            first = a.send("waf_block_ip", {"ip": f"203.0.113.{100 + k}"})

            def answered_or_stalled():
                a.results.poll(0.2)
                return "answered" if first in a.results.by_id else stalled()
            got = t.wait_for(answered_or_stalled, timeout=20, what="a result or a stall")
            applied += 1
            if got != "answered":
                body = got
                break
        assert body is not None, "the journal never filled the disk"
        assert str(state) in body, body
        second = a.send("waf_block_ip", {"ip": "203.0.113.82"})
        a.results.poll(3)
        assert first not in a.results.by_id and second not in a.results.by_id
        assert len(reloads.read_text().splitlines()) == applied  # the first applied, once
        assert a.metrics()["cwpp_enforcer_stalled"] == 1
        assert any(e.get("event") == "journal_write_failed" and e.get("level") == "error"
                   for e in a.svc.log_events())
        assert a.svc.proc.poll() is None

        filler.unlink()
        (r1,) = a.results.wait(first, timeout=30)
        (r2,) = a.results.wait(second, timeout=30)
        assert r1["status"] == "succeeded" and r2["status"] == "succeeded", (r1, r2)
        a.results.poll(2)
        assert len(a.results.by_id[first]) == 1 and len(a.results.by_id[second]) == 1
        assert len(reloads.read_text().splitlines()) == applied + 1  # each applied once
        journal = [json.loads(x) for x in (state / "journal.jsonl").read_text().splitlines()]
        assert [x["action_id"] for x in journal].count(first) == 1
        assert [x["action_id"] for x in journal].count(second) == 1
        t.wait_for(lambda: a.svc.http("/readyz")[0] == 200, timeout=20, what="ready again")
        assert a.metrics()["cwpp_enforcer_stalled"] == 0
    finally:
        if results is not None:
            stop_agents(results, agents)
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def test_clock_skew_within_tolerance_acts_beyond_it_refuses(tmp_path):
    """The agent's clock 10 minutes ahead of the responder's, and 10 minutes behind: with
    enforcer.clock.skew.max.ms = 15 min the agent applies the action; with the default
    30 s it refuses it, answering failed with a reason naming the agent's clock and the
    action's window ("after its deadline" ahead, "not valid yet" behind).

    The skew is made on the sender's side (its issued_at_ms/deadline_ms stamped 10 minutes
    behind or ahead of the real clock): the rule compares the two clocks, nothing else.
    Shifting the agent's own clock with faketime does not work for it: librdkafka's timed
    waits (glibc's C11 cnd_timedwait, which libfaketime does not wrap) take their deadline
    from the faked clock and wait 10 minutes too long, or give up at once."""
    tolerant = {"CWPP_ENFORCER_CLOCK_SKEW_MAX_MS": str(15 * 60000)}
    prefix, results, agents = other_agents(tmp_path, 2,
                                           env_for=lambda i: tolerant if i == 0 else {})
    try:
        gone = 4194000  # a pid nobody has: kill_process answers "not running"
        ids = {}
        for i, a in enumerate(agents):
            for side, shift in (("ahead", -600000), ("behind", 600000)):
                ids[i, side] = a.send("kill_process", {"pid": gone}, clock_shift_ms=shift)
        res = {k: results.wait(v, timeout=60)[0] for k, v in ids.items()}
        now = time.time()
        for side in ("ahead", "behind"):
            r = res[0, side]
            assert r["status"] == "succeeded" and "not running" in r["reason"], r
        fast, slow = res[1, "ahead"], res[1, "behind"]
        assert fast["status"] == "failed", fast
        assert "arrived after its deadline" in fast["reason"], fast
        assert slow["status"] == "failed", slow
        assert "not valid yet" in slow["reason"], slow
        for r in (fast, slow):
            assert "30000 ms enforcer.clock.skew.max.ms" in r["reason"], r
            assert "its window" in r["reason"] and "NTP" in r["reason"], r
            m = re.search(r"this agent's clock \(([0-9T:.\-]+)Z\)", r["reason"])
            assert m, r["reason"]
            clock = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            assert abs(clock - now) < 60, (r["reason"], now)
        assert all(a.svc.proc.poll() is None for a in agents)
    finally:
        stop_agents(results, agents)

def test_default_group_is_per_agent_and_sigterm_exits_0(agent):
    """group.id left at its default becomes cwpp-enforcer-<name> and the agent commits its
    offsets there; SIGTERM stops it with status 0."""
    group = f"cwpp-enforcer-{agent.name}"
    assert agent.do("restore_host", {})["status"] == "succeeded"
    committed = t.wait_for(
        lambda: (lambda c: c if sum(max(v, 0) for v in c.values()) > 0 else None)(
            t.committed(group, agent.prefix + "actions", 3)), timeout=20, what="commit")
    assert sum(max(v, 0) for v in committed.values()) > 0
    agent.svc.signal(signal.SIGTERM)
    assert agent.svc.proc.wait(30) == 0
    assert any(e.get("event") == "exit" for e in agent.svc.log_events())
