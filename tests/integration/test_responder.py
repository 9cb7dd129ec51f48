# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-responder on the real local Kafka broker and PostgreSQL, with
the real pipeline in front of it (ingest, whitelist-filter, correlator) and the real
enforcement agent (cwpp-enforcer) behind it, applying nftables rules inside network
namespaces the tests create (never the machine's own network). Analysts act through the
real cwppctl. Each test names the behaviour it pins down (docs/architecture.md "Status",
"Recommended handling policy", "Playbooks", "Owner and level", "Activity log"; docs/responder.md).

Every test uses accounts of its own (a random tag), so tests never see each other's
events in the shared database."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag

RESPONDER_DSN = t.RESPONDER_DSN
RESPONDER_ENV = {
    "CWPP_PG_DSN": RESPONDER_DSN,
    "CWPP_RESPONDER_TASK_TIMEOUT_MS": "2500",
    "CWPP_RESPONDER_TASK_ATTEMPTS": "2",
    "CWPP_RESPONDER_TICK_MS": "200",
    "CWPP_RESPONDER_VALIDITY_MIN_S": "1",
}
EVENT = t.AvroType("event")
COMMAND = t.AvroType("command")
ACTION = t.AvroType("action")
REJECTED = t.AvroType("rejected_record")


# ---------------------------------------------------------------------- fixtures

class Pipe:
    """The pipeline with a responder, on topics of its own."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.prefix = t.new_prefix()
        t.create_topics(self.prefix, partitions=3)
        self.pbdir = tmp / "playbooks"
        self.pbdir.mkdir()
        (self.pbdir / "10-contain.json").write_text(json.dumps({
            "name": "contain-and-lock", "entity_type": "host_account",
            "description": "Lock the account, then kill its shell.",
            "steps": [{"action": "disable_account", "params": {"user": "{entity}"},
                       "timeout_s": 30}]}))
        (self.pbdir / "20-broken.json").write_text(json.dumps({
            "name": "broken", "entity_type": "ip",
            "steps": [{"action": "format_disk", "params": {}}]}))
        # there is no built-in admin any more (cwpp-admin users bootstrap makes the first)
        t.make_user("admin", role="admin")
        self.svcs = []
        for name, env in (("ingest", {}), ("whitelist-filter", {"CWPP_PG_DSN": t.WHITELIST_DSN}),
                          ("correlator", {"CWPP_PG_DSN": t.CORRELATOR_DSN})):
            self.svcs.append(t.Service(name, self.prefix, tmp, extra_env=env).start())
        self.responder = None
        self.start_responder()
        # cwppctl's cwpp-api for this prefix, started here, with the module: started inside
        # a test, its create_topics would count the prefix as that test's, deleted after it
        t.api_for(self.prefix)
        for s in self.svcs:
            s.wait_ready()

    def start_responder(self):
        env = dict(RESPONDER_ENV, CWPP_RESPONDER_PLAYBOOKS_DIR=str(self.pbdir))
        self.responder = t.Service("responder", self.prefix, self.tmp, extra_env=env,
                                   group=f"{self.prefix}responder").start()
        self.responder.wait_ready()
        return self.responder

    def ctl(self, *args, actor="admin", **kw):
        return t.cwppctl(self.prefix, *args, actor=actor, **kw)

    def ctl_json(self, *args, actor="admin", **kw):
        return t.cwppctl_json(self.prefix, *args, actor=actor, **kw)

    def ok(self, *args, actor="admin"):
        rc, out, err = self.ctl(*args, actor=actor)
        assert rc == 0, f"cwppctl {args} -> {rc}: {err}"
        return out

    def refused(self, *args, actor="admin"):
        rc, out, err = self.ctl(*args, actor=actor)
        assert rc == 1, f"cwppctl {args} should be refused, got {rc}: {out} {err}"
        return err

    def raw(self, acct, *alerts):
        t.produce(self.prefix + "alerts.raw", list(alerts), keys=[acct.encode()] * len(alerts))

    def event_of(self, acct, n_occurrences, name=None):
        def done():
            r = t.query("SELECT coalesce(sum(occurrences), 0) FROM events WHERE account_id = %s",
                        (acct,))
            return r[0][0] >= n_occurrences
        t.wait_for(done, timeout=60, what=f"{n_occurrences} occurrences in events of {acct}")
        rows = t.query("SELECT event_id FROM events WHERE account_id = %s AND (%s::text IS NULL "
                       "OR name = %s) ORDER BY first_seen", (acct, name, name))
        return rows[0][0]

    def user(self, name, *accounts, role="analyst"):
        self.ok("users", "add", name, "--role", role)
        for a in accounts:
            self.ok("users", "grant", name, a)

    def close(self):
        for s in self.svcs + [self.responder]:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("responder"))
    yield p
    p.close()


def status_of(eid):
    return t.query("SELECT status FROM events WHERE event_id = %s", (eid,))[0][0]


def log_of(eid):
    return t.query("SELECT actor, action, object_type, object_id, before, after, remark "
                   "FROM activity_log WHERE event_id = %s ORDER BY at, log_id", (eid,))


def tasks_of(eid):
    return t.query("SELECT kind, action, state, attempt, reason FROM handling_tasks "
                   "WHERE event_id = %s ORDER BY created_at, kind, step", (eid,))


def wait_status(eid, want, timeout=30):
    t.wait_for(lambda: status_of(eid) == want, timeout=timeout,
               what=f"event {eid} {want} (is {status_of(eid)}; tasks {tasks_of(eid)})")


def snapshots(prefix, eid, timeout=20):
    """Every snapshot of eid on <prefix>events, in order."""
    from confluent_kafka import Consumer
    c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "snap-" + tag(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([prefix + "events"])
    out, deadline, idle = [], time.time() + timeout, 0
    while time.time() < deadline and idle < 6:
        m = c.poll(0.5)
        if m is None or m.error():
            idle += 1 if out else 0
            continue
        idle = 0
        if m.key() == eid.encode():
            out.append(EVENT.decode(m.value()))
    c.close()
    return out


# -------------------------------------------------------------- netns + agent

def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


class Net:
    """A protected host and an attacker, two network namespaces on one veth link."""

    def __init__(self):
        n = uuid.uuid4().hex[:6]
        self.host, self.attacker = f"cwpp-h{n}", f"cwpp-a{n}"
        self.octet = int(n[:2], 16) % 200 + 20
        self.host_ip, self.attacker_ip = f"10.213.{self.octet}.1", f"10.213.{self.octet}.2"
        sh("ip", "netns", "add", self.host)
        sh("ip", "netns", "add", self.attacker)
        sh("ip", "link", "add", f"vh{n}", "netns", self.host, "type", "veth", "peer", "name",
           f"va{n}", "netns", self.attacker)
        for ns, dev, ip in ((self.host, f"vh{n}", self.host_ip),
                            (self.attacker, f"va{n}", self.attacker_ip)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def ping_ok(self):
        return sh("ip", "netns", "exec", self.attacker, "ping", "-c1", "-W1", self.host_ip,
                  check=False).returncode == 0

    def close(self):
        sh("ip", "netns", "del", self.host, check=False)
        sh("ip", "netns", "del", self.attacker, check=False)


@pytest.fixture
def net():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    n = Net()
    try:
        t.wait_for(n.ping_ok, timeout=10, what="the veth link up")
        yield n
    finally:
        n.close()


def enforcer(pipe, tmp, acct, asset, netns=None, extra=None):
    env = {"CWPP_ENFORCER_ACCOUNT_ID": acct, "CWPP_ENFORCER_ASSET_ID": asset,
           "CWPP_ENFORCER_STATE_DIR": str(tmp / f"enf-{asset}"),
           "CWPP_ENFORCER_NAME": f"agent-{asset}"}
    if netns:
        env["CWPP_ENFORCER_NETNS"] = f"/run/netns/{netns}"
    env.update(extra or {})
    s = t.Service("enforcer", pipe.prefix, tmp, extra_env=env,
                  group=f"{pipe.prefix}enf-{asset}").start()
    s.wait_ready()
    return s


# ------------------------------------------------------------------------ tests

def test_users_permissions_and_refusals_are_clear_and_logged(pipe):
    """Every command needs an actor holding permission on the event's account; only admins
    manage users. Refusals are answered with a sentence and exit 1, and change nothing."""
    acct, other = "acct-" + tag(), "acct-" + tag()
    u = tag()
    pipe.user(f"ana-{u}", acct)
    pipe.user(f"bob-{u}", other)
    pipe.raw(acct, alert(acct, "Port scan", "network_attack", "medium", at(30), "h1",
                         remote_ip="198.51.100.9"))
    eid = pipe.event_of(acct, 1)

    # cwppctl goes through cwpp-api, which refuses these first (another tenant's event is
    # not found; only admins reach the users' routes; an unknown user has no token)...
    assert "No event" in pipe.refused("events", "status", eid, "handling", actor=f"bob-{u}")
    assert "admin" in pipe.refused("users", "add", f"eve-{u}", actor=f"ana-{u}")
    # ... and the responder refuses them again whoever writes the command record
    ids = {k: f"cmd-{k}-{u}" for k in ("bob", "nobody", "ana", "disabled")}
    t.produce(pipe.prefix + "commands", [
        command(ids["bob"], "event.status", {"event_id": eid, "status": "handling"},
                actor=f"bob-{u}"),
        command(ids["nobody"], "event.status", {"event_id": eid, "status": "handling"},
                actor=f"nobody-{u}"),
        command(ids["ana"], "users.add", {"user": f"eve-{u}", "role": "analyst"},
                actor=f"ana-{u}")])
    got = answers(pipe.prefix, {ids["bob"]: 1, ids["nobody"]: 1, ids["ana"]: 1})
    err = got[ids["bob"]][0]["message"]
    assert f"holds no permission on account \"{acct}\"" in err
    err = got[ids["nobody"]][0]["message"]
    assert "is not a known user" in err
    err = got[ids["ana"]][0]["message"]
    assert "not an admin" in err
    pipe.ok("users", "disable", f"bob-{u}")
    err = pipe.refused("users", "grant", f"bob-{u}", acct, actor=f"bob-{u}")
    assert "is disabled" in err
    t.produce(pipe.prefix + "commands", [
        command(ids["disabled"], "users.grant", {"user": f"bob-{u}", "account": acct},
                actor=f"bob-{u}")])
    err = answers(pipe.prefix, {ids["disabled"]: 1})[ids["disabled"]][0]["message"]
    assert "is disabled" in err
    assert status_of(eid) == "unhandled"

    rc, doc, _ = pipe.ctl_json("users", "list")
    users = {x["user"]: x for x in doc["users"]}
    assert users[f"ana-{u}"]["accounts"] == acct and users[f"ana-{u}"]["role"] == "analyst"
    assert users[f"bob-{u}"]["state"] == "disabled"
    assert users["admin"]["role"] == "admin"
    logged = t.query("SELECT action FROM activity_log WHERE object_type = 'user' AND object_id "
                     "= %s ORDER BY log_id", (f"bob-{u}",))
    assert [r[0] for r in logged] == ["users.add", "users.grant", "users.disable"]
    # the refused ones are answered and recorded, but not logged as changes
    assert t.query("SELECT count(*) FROM commands_applied WHERE actor = %s AND status = "
                   "'error'", (f"bob-{u}",))[0][0] == 2


def test_status_rules_and_the_handled_cascade_skips_precision_defence(pipe):
    """Handling/unhandled leave alert statuses alone; handled hands every unhandled alert
    the handling information, never touches precision-defence alerts and closes the event
    (a related alert opens a successor). Each step is logged and published. (Reopening a
    handled event: test_a_handled_event_is_reopened_...)"""
    acct = "acct-" + tag()
    ana = "ana-" + tag()
    pipe.user(ana, acct)
    ip = "203.0.113.77"
    pipe.raw(acct,
             alert(acct, "Brute force", "brute_force", "medium", at(40), "db1", remote_ip=ip),
             alert(acct, "Logon from attacker", "abnormal_logon", "high", at(39), "db1",
                   logon={"ip": ip, "user": "root"}),
             alert(acct, "Ransomware blocked", "virus", "critical", at(38), "db1",
                   defense="precision_defense", source="virus_scan",
                   file={"path": "/tmp/r.bin", "md5": t.md5hex(acct)}))
    eid = pipe.event_of(acct, 3)
    members = dict(t.query("SELECT a.name, a.status FROM alerts a JOIN event_alerts ea USING "
                           "(alert_id) WHERE ea.event_id = %s", (eid,)))
    assert members == {"Brute force": "unhandled", "Logon from attacker": "unhandled",
                       "Ransomware blocked": "handled"}, members

    assert "unhandled -> handling" in pipe.ok("events", "status", eid, "handling",
                                              "--remark", "looking", actor=ana)
    assert {s for (s,) in t.query("SELECT a.status FROM alerts a JOIN event_alerts ea USING "
                                  "(alert_id) WHERE ea.event_id = %s AND a.defense <> "
                                  "'precision_defense'", (eid,))} == {"unhandled"}
    assert "already" in pipe.refused("events", "status", eid, "handling", actor=ana)
    pipe.ok("events", "status", eid, "unhandled", actor=ana)
    # a related alert still joins while the event is not handled
    pipe.raw(acct, alert(acct, "Sudo abuse", "privilege_escalation", "high", at(37), "db1",
                         logon={"ip": ip, "user": "root"}))
    pipe.event_of(acct, 4)
    assert t.query("SELECT alert_count FROM events WHERE event_id = %s", (eid,))[0][0] == 4

    rc, doc, err = pipe.ctl_json("events", "status", eid, "handled", "--remark", "contained",
                                 actor=ana)
    assert rc == 0, err
    assert doc["result"]["alerts_handled"] == 3
    rows = t.query("SELECT a.name, a.status, a.handling FROM alerts a JOIN event_alerts ea "
                   "USING (alert_id) WHERE ea.event_id = %s ORDER BY a.name", (eid,))
    for name, st, handling in rows:
        assert st == "handled"
        if name == "Ransomware blocked":
            assert handling is None  # never touched
        else:
            assert handling["event_id"] == eid and handling["by"] == ana
            assert handling["remark"] == "contained"
    assert "already" in pipe.refused("events", "status", eid, "handled", actor=ana)

    # the closed event takes no more alerts: a related one opens a successor
    pipe.raw(acct, alert(acct, "Reverse shell", "malicious_process", "high", at(1), "db1",
                         logon={"ip": ip, "user": "root"}))
    t.wait_for(lambda: len(t.query("SELECT 1 FROM events WHERE account_id = %s", (acct,))) == 2,
               what="a successor event")
    succ = t.query("SELECT predecessor, status FROM events WHERE account_id = %s AND event_id "
                   "<> %s", (acct, eid))[0]
    assert succ == (eid, "unhandled")

    log = log_of(eid)
    status_rows = [(r[0], r[4], r[5]["status"], r[6]) for r in log if r[1] == "event.status"]
    assert status_rows == [(ana, {"status": "unhandled"}, "handling", "looking"),
                           (ana, {"status": "handling"}, "unhandled", None),
                           (ana, {"status": "unhandled"}, "handled", "contained")]
    alert_rows = [r for r in log if r[1] == "alert.status"]
    assert len(alert_rows) == 3 and all(r[5]["status"] == "handled" for r in alert_rows)
    rc, doc, _ = pipe.ctl_json("events", "log", eid)
    assert [x["action"] for x in doc["log"]] == [r[1] for r in log]
    snaps = snapshots(pipe.prefix, eid)
    assert [s["status"] for s in snaps][-1] == "handled"
    assert "handling" in [s["status"] for s in snaps]


def test_owner_and_level_with_remarks_and_a_refused_owner(pipe):
    """The owner must be a known user with permission on the account; the level an analyst
    sets stays when more alerts come."""
    acct = "acct-" + tag()
    u = tag()
    pipe.user(f"ana-{u}", acct)
    pipe.user(f"olga-{u}", acct)
    pipe.user(f"zed-{u}", "acct-elsewhere")
    pipe.raw(acct, alert(acct, "Webshell", "webshell", "high", at(20), "web1",
                         file={"path": "/var/www/x.php", "md5": t.md5hex(acct)}))
    eid = pipe.event_of(acct, 1)

    err = pipe.refused("events", "owner", eid, f"zed-{u}", actor=f"ana-{u}")
    assert f"holds no permission on account \"{acct}\"" in err and "owner must be" in err
    err = pipe.refused("events", "owner", eid, f"ghost-{u}", actor=f"ana-{u}")
    assert "not a known user" in err
    pipe.ok("events", "owner", eid, f"olga-{u}", "--remark", "on call", actor=f"ana-{u}")
    pipe.ok("events", "level", eid, "low", "--remark", "test box", actor=f"ana-{u}")
    assert "not a level" in pipe.refused("events", "level", eid, "severe", actor=f"ana-{u}")
    pipe.ok("events", "remark", eid, "asked the owner of web1", actor=f"olga-{u}")
    row = t.query("SELECT owner, level, level_source FROM events WHERE event_id = %s", (eid,))[0]
    assert row == (f"olga-{u}", "low", "analyst")

    # a critical alert joins: the analyst's level stays
    pipe.raw(acct, alert(acct, "Webshell exec", "malicious_process", "critical", at(19), "web1",
                         file={"path": "/var/www/x.php", "md5": t.md5hex(acct)},
                         process={"path": "/bin/sh", "pid": 4242, "user": "www"}))
    pipe.event_of(acct, 2)
    t.wait_for(lambda: t.query("SELECT alert_count FROM events WHERE event_id = %s",
                               (eid,))[0][0] == 2, what="the second alert joined")
    assert t.query("SELECT level FROM events WHERE event_id = %s", (eid,))[0][0] == "low"
    assert snapshots(pipe.prefix, eid)[-1]["level"] == "low"

    log = [(r[0], r[1], r[4], r[5], r[6]) for r in log_of(eid)]
    assert (f"ana-{u}", "event.owner", {"owner": None}, {"owner": f"olga-{u}"}, "on call") in log
    assert (f"ana-{u}", "event.level", {"level": "high"}, {"level": "low"}, "test box") in log
    assert (f"olga-{u}", "event.remark", None, None, "asked the owner of web1") in log


def command(cid, typ, payload, actor="admin", issued=None, service="responder"):
    return COMMAND.encode({"command_id": cid, "service": service, "type": typ, "actor": actor,
                           "issued_at_ms": issued or int(time.time() * 1000),
                           "payload_json": json.dumps(payload)})


def answers(prefix, want, timeout=30):
    """The answers on <prefix>command-results to the commands of want {id: how many}."""
    return t.command_answers(prefix, want, timeout=timeout)


def test_bad_unknown_stale_and_redelivered_commands(pipe):
    """Bad records go to the dead-letter topic; an unknown type, an unknown event, a stale
    command and a broken payload get clear errors; a command sent twice is applied once and
    answered the same both times. The service keeps going."""
    acct = "acct-" + tag()
    pipe.raw(acct, alert(acct, "Port scan", "network_attack", "low", at(9), "h2",
                         remote_ip="198.51.100.20"))
    eid = pipe.event_of(acct, 1)
    ids = {k: f"cmd-{k}-{tag()}" for k in ("unknown", "noevent", "stale", "payload", "twice",
                                           "illegal", "clock", "ents")}
    t.produce(pipe.prefix + "commands", [
        b"\xc3\x01not avro at all",
        command(ids["unknown"], "event.explode", {"event_id": eid}),
        command(ids["noevent"], "event.status", {"event_id": "ev-" + "0" * 32,
                                                 "status": "handling"}),
        command(ids["stale"], "event.status", {"event_id": eid, "status": "handling"},
                issued=int(time.time() * 1000) - 3600 * 1000),
        COMMAND.encode({"command_id": ids["payload"], "service": "responder",
                        "type": "event.status", "actor": "admin",
                        "issued_at_ms": int(time.time() * 1000), "payload_json": "[1, 2"}),
        command(ids["illegal"], "event.status", {"event_id": eid, "status": "failed"}),
        command(ids["clock"], "event.status", {"event_id": eid, "status": "handling"},
                issued=-(2 ** 63)),
        command(ids["ents"], "event.respond", {"event_id": eid, "entities": [1, 1],
                                               "status": "handled"}),
        command(ids["twice"], "event.status", {"event_id": eid, "status": "handling"}),
        command(ids["twice"], "event.status", {"event_id": eid, "status": "handling"}),
    ])
    got = answers(pipe.prefix, {v: 2 if k == "twice" else 1 for k, v in ids.items()})
    msg = {k: got[v][0]["message"] for k, v in ids.items()}
    assert got[ids["unknown"]][0]["status"] == "error" and "Unknown responder command" in msg["unknown"]
    assert "There is no event" in msg["noevent"]
    assert "Stale command" in msg["stale"]
    assert "payload is not a JSON object" in msg["payload"]
    assert "not a status an analyst can set" in msg["illegal"]
    assert "issue time" in msg["clock"]
    assert "is neither a text" in msg["ents"]
    assert [a["status"] for a in got[ids["twice"]]] == ["ok", "ok"]
    assert got[ids["twice"]][0]["message"] == got[ids["twice"]][1]["message"]
    assert status_of(eid) == "handling"
    assert t.query("SELECT count(*) FROM activity_log WHERE event_id = %s AND action = "
                   "'event.status'", (eid,))[0][0] == 1
    dead = [REJECTED.decode(m.value()) for m in t.consume(pipe.prefix + "alerts.rejected", 1,
                                                           settle=2)]
    assert any(d["service"] == "responder" and d["reason_code"] == "bad_command" for d in dead)
    assert pipe.responder.proc.poll() is None


def test_recommend_lists_a_policy_per_entity_or_says_there_is_none(pipe):
    acct = "acct-" + tag()
    ip = "203.0.113.5"
    pipe.raw(acct, alert(acct, "Malware", "virus", "high", at(5), "h3", remote_ip=ip,
                         file={"path": "/tmp/m.bin", "md5": t.md5hex(acct)},
                         process={"path": "/tmp/m.bin", "pid": 777, "user": "svc"}))
    eid = pipe.event_of(acct, 1)
    rc, doc, _ = pipe.ctl_json("events", "recommend", eid)
    assert rc == 0
    pol = {e["entity"]: (e["policy"] or {}).get("action") for e in doc["entities"]}
    assert pol == {"host:h3": "isolate_host", "file:/tmp/m.bin": "quarantine_file",
                   "process:/tmp/m.bin": "kill_process", f"ip:{ip}": "block_ip",
                   "host_account:svc": "disable_account"}
    names = {p["name"] for p in doc["playbooks"]}
    assert {"offline-investigation", "deep-virus-scan", "waf-block-ip",
            "contain-and-lock"} <= names and "broken" not in names
    text = pipe.ok("events", "recommend", eid)
    assert "Block IP" in text and "Quarantine file" in text
    # refused: an entity the event does not have, an unknown type
    err = pipe.refused("events", "respond", eid, "--entity", "ip:192.0.2.1", "--status",
                       "handled")
    assert "has no entity ip:192.0.2.1" in err
    err = pipe.refused("events", "respond", eid, "--entity", "printer:x", "--status", "handled")
    assert "not an entity type" in err
    err = pipe.refused("events", "respond", eid, "--entity", f"ip:{ip}", "--status", "handled",
                       "--account", "acct-not-managed")
    assert "neither the event's account" in err
    assert t.query("SELECT count(*) FROM handling_policies WHERE event_id = %s", (eid,))[0][0] == 0
    # each policy may have its own validity and destination account: options before the
    # first --entity apply to all, after an --entity to that one
    member = "acct-" + tag()
    pipe.ok("accounts", "add-member", member, "--manager", acct)
    # the IP attacked an asset of the member account too: there the policy acts on it
    pipe.raw(member, alert(member, "Scan", "network_attack", "medium", at(5), "h3m",
                           remote_ip=ip))
    pipe.event_of(member, 1)
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--validity", "2h",
                                 "--entity", f"ip:{ip}", "--account", member,
                                 "--entity", "host:h3", "--validity", "30m",
                                 "--entity", "process:/tmp/m.bin", "--status", "handling")
    assert rc == 0, err
    rows = t.query("SELECT entity_type, dest_account, round(extract(epoch FROM valid_until - "
                   "created_at) / 60) FROM handling_policies WHERE event_id = %s "
                   "ORDER BY entity_type", (eid,))
    assert rows == [("host", acct, 30), ("ip", member, 120), ("process", acct, 120)], rows
    assert t.query("SELECT asset_id FROM handling_policies WHERE event_id = %s AND "
                   "entity_type = 'ip'", (eid,)) == [("h3m",)]
    assert "each with its own validity" in doc["message"]
    m = t.metrics(pipe.responder)
    assert m.get("cwpp_responder_playbooks_invalid_total", 0) >= 1


def test_block_ip_in_a_namespace_then_the_lease_ends_and_rolls_back(pipe, net, tmp_path):
    """Apply the recommended policy "block IP" on a host that is a network namespace: the
    real agent drops the attacker's packets (ping fails); when the validity period ends the
    responder sends the rollback and the attacker's ping works again."""
    acct = "acct-" + tag()
    ana = "ana-" + tag()
    pipe.user(ana, acct)
    asset = "host-" + tag()
    agent = enforcer(pipe, tmp_path, acct, asset, netns=net.host)
    pipe.raw(acct, alert(acct, "SSH brute force", "brute_force", "high", at(3), asset,
                         remote_ip=net.attacker_ip))
    eid = pipe.event_of(acct, 1)
    assert net.ping_ok()
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{net.attacker_ip}",
                                 "--validity", "6s", "--status", "handled", "--remark", "block",
                                 actor=ana)
    assert rc == 0, err
    assert doc["result"]["policies"][0]["asset_id"] == asset
    wait_status(eid, "handled")
    assert not net.ping_ok()
    nft = sh("ip", "netns", "exec", net.host, "nft", "list", "ruleset").stdout
    assert net.attacker_ip in nft
    rc, doc, _ = pipe.ctl_json("events", "tasks", eid)
    (pol,) = doc["policies"]
    assert pol["state"] == "active" and pol["tasks"][0]["state"] == "succeeded"

    t.wait_for(lambda: t.query("SELECT state FROM handling_policies WHERE event_id = %s",
                               (eid,))[0][0] == "expired", timeout=30, what="the lease ended")
    assert net.ping_ok()
    assert tasks_of(eid) == [("apply", "block_ip", "rolled_back", 1, ""),
                             ("rollback", "unblock_ip", "succeeded", 1, "")] or \
        [(k, a, s) for k, a, s, _, _ in tasks_of(eid)] == [("apply", "block_ip", "rolled_back"),
                                                             ("rollback", "unblock_ip", "succeeded")]
    actions = [r[1] for r in log_of(eid)]
    for a in ("policy.created", "task.started", "event.status", "task.succeeded",
              "policy.active", "policy.expiring", "task.rolled_back", "policy.expired"):
        assert a in actions, (a, actions)
    assert actions.index("policy.created") < actions.index("task.succeeded") < \
        actions.index("policy.expired")
    text = pipe.ok("events", "tasks", eid)
    assert "expired" in text and "rolled_back" in text
    # the entity's 30-day figures count the task that handled it: the block, not its
    # automatic unblock at the end of the lease
    assert t.query("SELECT tasks FROM entity_stats_30d WHERE account_id = %s AND entity_type = "
                   "'ip' AND value = %s", (acct, net.attacker_ip))[0][0] == 1
    assert agent.stop() == 0


def test_a_failing_task_is_retried_then_turns_the_event_failed(pipe, tmp_path):
    """The agent refuses to kill a pid whose executable is not the alert's: the attempt
    fails, is retried within the budget, fails again, and the event becomes failed."""
    acct = "acct-" + tag()
    asset = "host-" + tag()
    agent = enforcer(pipe, tmp_path, acct, asset)
    victim = subprocess.Popen(["sleep", "300"])
    try:
        pipe.raw(acct, alert(acct, "Miner", "malicious_process", "high", at(2), asset,
                             process={"path": "/tmp/xmrig", "pid": victim.pid, "user": "www"}))
        eid = pipe.event_of(acct, 1)
        pipe.ok("events", "respond", eid, "--entity", "process:/tmp/xmrig", "--status", "handled")
        wait_status(eid, "failed")
        assert victim.poll() is None  # spared: it is not /tmp/xmrig
        (task,) = tasks_of(eid)
        assert task[:4] == ("apply", "kill_process", "failed", 2)
        pol = t.query("SELECT state, reason FROM handling_policies WHERE event_id = %s", (eid,))[0]
        assert pol[0] == "failed" and "kill_process" in pol[1]
        actions = [r[1] for r in log_of(eid)]
        assert actions.count("task.retry") == 1 and "task.failed" in actions
        # the analyst can still decide: failed -> handling
        pipe.ok("events", "status", eid, "handling")
    finally:
        victim.kill()
        agent.stop()


def test_a_task_with_no_result_times_out(pipe):
    """No agent answers for the asset: each attempt times out, then the task is timed_out
    and the event failed."""
    acct = "acct-" + tag()
    pipe.raw(acct, alert(acct, "Worm", "malicious_process", "high", at(2), "nobody-runs-here",
                         remote_ip="198.51.100.99"))
    eid = pipe.event_of(acct, 1)
    pipe.ok("events", "respond", eid, "--entity", "host:nobody-runs-here", "--status", "handled")
    wait_status(eid, "failed", timeout=30)
    (task,) = tasks_of(eid)
    assert task[:4] == ("apply", "isolate_host", "timed_out", 2)
    assert "no result from the agent" in task[4]
    assert t.metrics(pipe.responder).get("cwpp_responder_task_timeouts_total", 0) >= 2


def test_a_late_success_is_taken_and_a_result_for_another_host_is_refused(pipe):
    """Results come from any producer on action-results: one naming another asset goes to
    the dead-letter topic; a success of attempt 1 arriving while attempt 2 runs is taken."""
    acct = "acct-" + tag()
    asset = "slow-" + tag()
    ip = "198.51.100.71"
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(2), asset, remote_ip=ip))
    eid = pipe.event_of(acct, 1)
    pipe.ok("events", "respond", eid, "--entity", f"ip:{ip}", "--status", "handled")
    t.wait_for(lambda: tasks_of(eid) and tasks_of(eid)[0][3] == 2, timeout=20,
               what="attempt 2 (attempt 1 had no answer)")
    (task_id,) = t.query("SELECT task_id FROM handling_tasks WHERE event_id = %s", (eid,))[0]
    ar = t.AvroType("action_result")

    def result(asset_id, attempt, reason):
        return ar.encode({"action_id": f"{task_id}.{attempt}", "task_id": task_id,
                          "account_id": acct, "asset_id": asset_id, "action": "block_ip",
                          "agent": "test", "status": "succeeded", "reason": reason,
                          "details_json": "{}", "finished_at_ms": int(time.time() * 1000)})
    # the same key, so in this order, before attempt 2's deadline: the forged one first
    key = f"{task_id}.1".encode()
    t.produce(pipe.prefix + "action-results",
              [result("someone-else", 1, "forged"), result(asset, 1, "done late")],
              keys=[key, key])
    wait_status(eid, "handled")
    assert tasks_of(eid)[0][:5] == ("apply", "block_ip", "succeeded", 2, "done late")
    dead = [REJECTED.decode(m.value()) for m in t.consume(pipe.prefix + "alerts.rejected", 1,
                                                           settle=2)]
    assert any(d["reason_code"] == "invalid_result" for d in dead)


def test_a_completed_playbook_sets_the_event_handled(pipe, tmp_path):
    """The built-in in-depth virus scan on a file entity: the agent scans it against its
    signatures and quarantines it; the playbook completes and the event is handled."""
    acct = "acct-" + tag()
    asset = "host-" + tag()
    bad = tmp_path / "dropper.bin"
    bad.write_bytes(b"malware " + tag().encode())
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    sigs = tmp_path / "sigs.txt"
    sigs.write_text(f"# test signatures\n{sha}\n")
    agent = enforcer(pipe, tmp_path, acct, asset,
                     extra={"CWPP_ENFORCER_SCAN_SIGNATURES": str(sigs)})
    try:
        pipe.raw(acct, alert(acct, "Dropper", "virus", "high", at(2), asset, source="virus_scan",
                             file={"path": str(bad), "md5": t.md5hex(acct)}))
        eid = pipe.event_of(acct, 1)
        err = pipe.refused("events", "playbook", eid, "--entity", f"file:{bad}", "--playbook",
                           "offline-investigation")
        assert "is for host entities, not file" in err
        out = pipe.ok("events", "playbook", eid, "--entity", f"file:{bad}")
        assert "deep-virus-scan" in out
        wait_status(eid, "handled")
        assert not bad.exists()
        (task,) = tasks_of(eid)
        assert task[:3] == ("apply", "scan_file", "succeeded")
        res = t.query("SELECT result FROM handling_tasks WHERE event_id = %s", (eid,))[0][0]
        assert res["agent"] == f"agent-{asset}"
        actions = [r[1] for r in log_of(eid)]
        assert "playbook.started" in actions and "playbook.completed" in actions
    finally:
        agent.stop()


def test_playbooks_are_data_listed_added_and_validated(pipe, tmp_path):
    rc, doc, _ = pipe.ctl_json("playbooks", "list")
    by = {p["name"]: p for p in doc["playbooks"]}
    assert by["contain-and-lock"]["origin"] == "file"
    assert by["offline-investigation"]["origin"] == "builtin"
    name = "pb-" + tag()
    f = tmp_path / "pb.json"
    f.write_text(json.dumps({"name": name, "entity_type": "ip", "description": "two steps",
                             "steps": [{"action": "block_ip", "params": {"ip": "{entity}"}},
                                       {"action": "waf_block_ip", "params": {"ip": "{entity}"},
                                        "timeout_s": 10}]}))
    ana = "ana-" + tag()
    pipe.user(ana, "acct-x")
    # cwpp-api lets only admins reach the route; the responder refuses a record naming ana
    assert "admin" in pipe.refused("playbooks", "add", str(f), actor=ana)
    cid = "cmd-pb-" + tag()
    t.produce(pipe.prefix + "commands", [command(cid, "playbooks.add", {
        "playbook": json.loads(f.read_text())}, actor=ana)])
    assert "not an admin" in answers(pipe.prefix, {cid: 1})[cid][0]["message"]
    pipe.ok("playbooks", "add", str(f))
    rc, doc, _ = pipe.ctl_json("playbooks", "list", "--entity-type", "ip")
    assert name in {p["name"] for p in doc["playbooks"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "entity_type": "ip",
                               "steps": [{"action": "rm_rf", "params": {}}]}))
    rc, _, err = pipe.ctl("playbooks", "add", str(bad))
    assert rc == 2 and "unknown action" in err
    # a record that reaches the responder without cwpp-api's check is refused by it too: a
    # step may not fix what the agent acts on
    cid = "cmd-pb-fixed-" + tag()
    t.produce(pipe.prefix + "commands", [command(cid, "playbooks.add", {"playbook": {
        "name": "pb-fixed-" + tag(), "entity_type": "file",
        "steps": [{"action": "quarantine_file", "params": {"path": "/etc/passwd"}}]}})])
    got = answers(pipe.prefix, {cid: 1})[cid][0]
    assert got["status"] == "error" and \
        '"path" of quarantine_file must be the placeholder "{entity}"' in got["message"], got
    assert "cannot be deleted" in pipe.refused("playbooks", "delete", "waf-block-ip")
    pipe.ok("playbooks", "delete", name)


def test_a_custom_playbook_runs_its_steps_in_order_and_rolls_all_back(pipe, net, tmp_path):
    """A two-step custom playbook on an IP (host firewall, then the WAF): step 2 waits
    pending until step 1 succeeded; the event is handled when both did; at the end of the
    validity both are rolled back."""
    acct = "acct-" + tag()
    asset = "host-" + tag()
    name = "pb-" + tag()
    f = tmp_path / "pb.json"
    f.write_text(json.dumps({"name": name, "entity_type": "ip",
                             "steps": [{"action": "block_ip", "params": {"ip": "{entity}"}},
                                       {"action": "waf_block_ip", "params": {"ip": "{entity}"}}]}))
    pipe.ok("playbooks", "add", str(f))
    deny = tmp_path / "deny.conf"
    deny.write_text("deny 192.0.2.250;\n")
    agent = enforcer(pipe, tmp_path, acct, asset, netns=net.host,
                     extra={"CWPP_ENFORCER_WAF_DENY_FILE": str(deny)})
    try:
        pipe.raw(acct, alert(acct, "Web attack", "network_attack", "high", at(2), asset,
                             remote_ip=net.attacker_ip))
        eid = pipe.event_of(acct, 1)
        pipe.ok("events", "playbook", eid, "--entity", f"ip:{net.attacker_ip}", "--playbook",
                name, "--validity", "5s")
        wait_status(eid, "handled")
        rows = t.query("SELECT step, action, state, created_at, finished_at FROM handling_tasks "
                       "WHERE event_id = %s AND kind = 'apply' ORDER BY step", (eid,))
        assert [(r[0], r[1], r[2]) for r in rows] == [(0, "block_ip", "succeeded"),
                                                       (1, "waf_block_ip", "succeeded")]
        assert rows[0][4] <= rows[1][4]
        started = t.query("SELECT after ->> 'task_id' FROM activity_log WHERE event_id = %s AND "
                          "action = 'task.started' ORDER BY log_id", (eid,))
        assert len(started) == 2
        assert not net.ping_ok() and f"deny {net.attacker_ip};" in deny.read_text()
        t.wait_for(lambda: t.query("SELECT state FROM handling_policies WHERE event_id = %s",
                                   (eid,))[0][0] == "expired", timeout=30, what="expired")
        assert net.ping_ok()
        assert f"deny {net.attacker_ip};" not in deny.read_text()
        assert "deny 192.0.2.250;" in deny.read_text()
        assert sorted(r[1] for r in t.query(
            "SELECT kind, action, state FROM handling_tasks WHERE event_id = %s AND kind = "
            "'rollback' AND state = 'succeeded'", (eid,))) == ["unblock_ip", "waf_unblock_ip"]
    finally:
        agent.stop()
        pipe.ok("playbooks", "delete", name)


def test_member_accounts_as_destination(pipe, net, tmp_path):
    """A policy may go to a managed member account: the action is addressed to it, and to
    the member account's own asset that saw the entity (its alerts), never to the event
    account's asset; a member account none of whose assets saw the entity is refused."""
    acct, member, bare = "acct-" + tag(), "acct-" + tag(), "acct-" + tag()
    asset = "host-" + tag()         # the member account's asset, where its agent runs
    edge = "edge-" + tag()          # the event account's asset the IP attacked
    pipe.ok("accounts", "add-member", member, "--manager", acct, "--name", "prod")
    assert "already" in pipe.refused("accounts", "add-member", member, "--manager", acct)
    rc, doc, _ = pipe.ctl_json("accounts", "list")
    assert {"member": member, "manager": acct} .items() <= \
        [x for x in doc["member_accounts"] if x["member"] == member][0].items()
    pipe.ok("accounts", "add-member", bare, "--manager", acct)
    agent = enforcer(pipe, tmp_path, member, asset, netns=net.host)
    try:
        pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(2), edge,
                             remote_ip=net.attacker_ip))
        pipe.raw(member, alert(member, "Scan", "network_attack", "medium", at(2), asset,
                               remote_ip=net.attacker_ip))
        eid = pipe.event_of(acct, 1)
        pipe.event_of(member, 1)
        err = pipe.refused("events", "respond", eid, "--entity", f"ip:{net.attacker_ip}",
                           "--account", bare, "--validity", "1h", "--status", "handling")
        assert f"Member account {bare} has no asset where ip:{net.attacker_ip} was seen" in err
        rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity",
                                     f"ip:{net.attacker_ip}", "--account", member,
                                     "--validity", "1h", "--status", "handling")
        assert rc == 0, err
        (pol,) = doc["result"]["policies"]
        assert (pol["account"], pol["asset_id"]) == (member, asset), pol
        assert t.query("SELECT dest_account, asset_id FROM handling_tasks WHERE event_id = %s",
                       (eid,)) == [(member, asset)]
        t.wait_for(lambda: tasks_of(eid) and tasks_of(eid)[0][2] == "succeeded",
                   what="the member account's agent applied it")
        assert not net.ping_ok()
        assert status_of(eid) == "handling"  # the chosen status
    finally:
        agent.stop()


def test_kill9_between_action_and_result_neither_loses_nor_repeats(pipe, net, tmp_path):
    """The responder is killed after sending an action and before its result: the agent
    applies it once (its journal), the result is applied once after the restart."""
    acct = "acct-" + tag()
    asset = "host-" + tag()
    pipe.raw(acct, alert(acct, "SSH brute force", "brute_force", "high", at(3), asset,
                         remote_ip=net.attacker_ip))
    eid = pipe.event_of(acct, 1)
    pipe.ok("events", "respond", eid, "--entity", f"ip:{net.attacker_ip}", "--validity", "1h",
            "--status", "handled")
    t.wait_for(lambda: tasks_of(eid) and tasks_of(eid)[0][2] == "running", what="task running")
    t.wait_for(lambda: any(ACTION.decode(m.value())["event_id"] == eid for m in
                           t.consume(pipe.prefix + "actions", 1, timeout=2, settle=0.5)),
               timeout=20, what="the action on the topic")
    pipe.responder.kill9()
    agent = enforcer(pipe, tmp_path, acct, asset, netns=net.host)
    try:
        t.wait_for(lambda: not net.ping_ok(), timeout=30, what="the agent blocked the IP")
        time.sleep(1)
        pipe.start_responder()  # resends the running task's action: same id, same result
        wait_status(eid, "handled")
        time.sleep(2)
        (task,) = tasks_of(eid)
        assert task[:4] == ("apply", "block_ip", "succeeded", 1)
        actions = [r[1] for r in log_of(eid)]
        assert actions.count("task.succeeded") == 1 and actions.count("policy.active") == 1
        assert [r[4] for r in log_of(eid) if r[1] == "event.status"] == \
            [{"status": "unhandled"}, {"status": "handling"}]
        journal = (tmp_path / f"enf-{asset}" / "journal.jsonl").read_text().splitlines()
        ids = [json.loads(x)["action_id"] for x in journal if x.strip()]
        assert len(ids) == len(set(ids)) == 1
        sent = [ACTION.decode(m.value()) for m in t.consume(pipe.prefix + "actions", 1, settle=2)]
        mine = [a["action_id"] for a in sent if a["event_id"] == eid]
        assert len(set(mine)) == 1 and len(mine) >= 1
    finally:
        agent.stop()


def test_sigterm_stops_cleanly_and_metrics_count(pipe):
    u = "m-" + tag()
    pipe.ok("users", "add", u)
    pipe.refused("users", "add", u)
    m = t.metrics(pipe.responder)
    assert m.get('cwpp_responder_commands_total{status="ok"}', 0) > 0
    assert m.get('cwpp_responder_commands_total{status="error"}', 0) > 0
    assert m.get("cwpp_responder_action_results_total", 0) > 0
    assert pipe.responder.http("/healthz")[0] == 200
    assert pipe.responder.stop() == 0
    pipe.start_responder()


def test_over_long_texts_are_refused_naming_the_field_and_nothing_changes(pipe):
    """Every text a responder command carries has a limit (docs/commands.md "Limits"),
    checked before anything is written: a 5,000-byte remark on event.status (limit 4000),
    a 300-byte display_name on users.add (256) and a 2,000-byte text in a playbook step's
    params (1024) are each refused with a sentence naming the field and its limit; the
    event, the users and the playbooks are unchanged, and the next command is applied."""
    acct, u = "acct-" + tag(), tag()
    pipe.raw(acct, alert(acct, "Port scan", "network_attack", "low", at(9), "h3",
                         remote_ip="198.51.100.21"))
    eid = pipe.event_of(acct, 1)
    ids = {k: f"cmd-{k}-{tag()}" for k in ("remark", "user", "playbook", "ok")}
    t.produce(pipe.prefix + "commands", [
        command(ids["remark"], "event.status", {"event_id": eid, "status": "handling",
                                                "remark": "r" * 5000}),
        command(ids["user"], "users.add", {"user": f"long-{u}", "role": "analyst",
                                           "display_name": "d" * 300}),
        command(ids["playbook"], "playbooks.add", {"playbook": {
            "name": f"long-{u}", "entity_type": "host",
            "steps": [{"action": "isolate_host", "params": {"note": "p" * 2000}}]}}),
        command(ids["ok"], "event.status", {"event_id": eid, "status": "handling"}),
    ], keys=[acct.encode()] * 4)
    got = answers(pipe.prefix, {v: 1 for v in ids.values()})
    res = {k: got[v][0] for k, v in ids.items()}
    for k in ("remark", "user", "playbook"):
        assert res[k]["status"] == "error", res[k]
    assert '"remark" is 5000 bytes, longer than its limit of 4000 bytes' in \
        res["remark"]["message"]
    assert '"display_name" is 300 bytes, longer than its limit of 256 bytes' in \
        res["user"]["message"]
    assert '"playbook.steps[1].params.note" is 2000 bytes, longer than its limit of 1024 ' \
        'bytes' in res["playbook"]["message"]
    assert res["ok"]["status"] == "ok", res["ok"]
    assert status_of(eid) == "handling"
    assert t.query("SELECT count(*) FROM activity_log WHERE event_id = %s AND action = "
                   "'event.status'", (eid,))[0][0] == 1
    assert t.query("SELECT count(*) FROM users WHERE user_name = %s", (f"long-{u}",))[0][0] == 0
    assert t.query("SELECT count(*) FROM playbooks WHERE name = %s", (f"long-{u}",))[0][0] == 0
    assert pipe.responder.proc.poll() is None


def test_an_agent_result_with_over_long_texts_is_kept_cut_to_its_limits(pipe):
    """An agent's result is free text: its reason over 4,000 bytes and its details over
    64 KiB are kept cut to those limits (details as {text, truncated, length}), on a
    character boundary, so the task's outcome is never lost to an over-long text."""
    acct, asset, ip = "acct-" + tag(), "long-" + tag(), "198.51.100.72"
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(2), asset, remote_ip=ip))
    eid = pipe.event_of(acct, 1)
    pipe.ok("events", "respond", eid, "--entity", f"ip:{ip}", "--status", "handled")
    t.wait_for(lambda: bool(tasks_of(eid)), what="the task")
    task_id, attempt = t.query("SELECT task_id, attempt FROM handling_tasks WHERE event_id = %s",
                               (eid,))[0]
    ar = t.AvroType("action_result")
    t.produce(pipe.prefix + "action-results", [ar.encode({
        "action_id": f"{task_id}.{attempt}", "task_id": task_id, "account_id": acct,
        "asset_id": asset, "action": "block_ip", "agent": "test", "status": "succeeded",
        "reason": "\u00e9" * 3000, "details_json": json.dumps({"log": "x" * 70000}),
        "finished_at_ms": int(time.time() * 1000)})], keys=[f"{task_id}.{attempt}".encode()])
    wait_status(eid, "handled")
    reason, result = t.query("SELECT reason, result FROM handling_tasks WHERE task_id = %s",
                             (task_id,))[0]
    assert reason == "\u00e9" * 2000  # 4,000 bytes, whole characters
    assert result["truncated"] is True and result["length"] > 70000
    assert len(result["text"].encode()) <= 4000


def test_policies_cancel_ends_the_lease_now_and_sends_the_rollback(pipe):
    """policies.cancel (docs/commands.md): an analyst holding the policy's account ends an
    active block-IP lease early; its rollback action (unblock_ip) is sent at once, the
    policy is expiring, then expired when the rollback succeeds, and the log says who
    cancelled it. Someone without the account, a viewer, an applying or ended policy:
    refused, nothing changes."""
    acct, other = "acct-" + tag(), "acct-" + tag()
    ana, bob, vic = "ana-" + tag(), "bob-" + tag(), "vic-" + tag()
    pipe.user(ana, acct)
    pipe.user(bob, other)
    t.make_user(vic, acct, role="viewer")
    asset, ip = "cancel-" + tag(), "198.51.100.%d" % (int(tag()[:2], 16) % 200 + 20)
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(4), asset, remote_ip=ip))
    eid = pipe.event_of(acct, 1)
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{ip}",
                                 "--validity", "1h", "--status", "handling", actor=ana)
    assert rc == 0, err
    pid = doc["result"]["policies"][0]["policy_id"]
    (task_id,) = t.query("SELECT task_id FROM handling_tasks WHERE policy_id = %s", (pid,))[0]
    ar = t.AvroType("action_result")

    def result(tid, action, reason):
        return ar.encode({"action_id": f"{tid}.1", "task_id": tid, "account_id": acct,
                          "asset_id": asset, "action": action, "agent": "test",
                          "status": "succeeded", "reason": reason, "details_json": "{}",
                          "finished_at_ms": int(time.time() * 1000)})

    early = f"cmd-early-{tag()}"
    t.produce(pipe.prefix + "commands", [command(early, "policies.cancel",
                                                 {"policy_id": pid}, actor=ana)])
    got = answers(pipe.prefix, {early: 1})
    assert "still applying" in got[early][0]["message"]
    t.produce(pipe.prefix + "action-results", [result(task_id, "block_ip", "blocked")],
              keys=[task_id.encode()])
    t.wait_for(lambda: t.query("SELECT state FROM handling_policies WHERE policy_id = %s",
                               (pid,))[0][0] == "active", timeout=20, what="the policy active")

    ids = {k: f"cmd-{k}-{tag()}" for k in ("bob", "viewer", "none", "ana", "again")}
    t.produce(pipe.prefix + "commands", [
        command(ids["bob"], "policies.cancel", {"policy_id": pid}, actor=bob),
        command(ids["viewer"], "policies.cancel", {"policy_id": pid}, actor=vic),
        command(ids["none"], "policies.cancel", {"policy_id": "pol-" + "0" * 32}, actor=ana),
        command(ids["ana"], "policies.cancel", {"policy_id": pid, "remark": "false positive"},
                actor=ana),
        command(ids["again"], "policies.cancel", {"policy_id": pid}, actor=ana),
    ], keys=[pid.encode()] * 5)  # one partition: applied in this order
    got = answers(pipe.prefix, {v: 1 for v in ids.values()})
    ans = {k: got[v][0] for k, v in ids.items()}
    assert f"holds no permission on account \"{acct}\"" in ans["bob"]["message"]
    assert "is a viewer" in ans["viewer"]["message"]
    assert "There is no policy" in ans["none"]["message"]
    assert ans["ana"]["status"] == "ok", ans["ana"]["message"]
    res = json.loads(ans["ana"]["result_json"])
    assert (res["policy_id"], res["before"], res["state"], res["rollbacks"]) == \
        (pid, "active", "expiring", 1)
    assert "has ended already" in ans["again"]["message"]

    # the rollback action is on its way to the agent, now (not in an hour)
    def rollback_sent():
        for m in t.consume(pipe.prefix + "actions", 1, timeout=5, settle=0.5):
            a = ACTION.decode(m.value())
            if a["policy_id"] == pid and a["action"] == "unblock_ip":
                return a
        return None
    sent = t.wait_for(rollback_sent, timeout=20, what="the unblock_ip action sent")
    assert sent["account_id"] == acct and sent["asset_id"] == asset
    (state, left) = t.query("SELECT state, valid_until <= now() FROM handling_policies "
                            "WHERE policy_id = %s", (pid,))[0]
    assert state == "expiring" and left
    t.produce(pipe.prefix + "action-results", [result(sent["task_id"], "unblock_ip", "unblocked")],
              keys=[sent["task_id"].encode()])
    t.wait_for(lambda: t.query("SELECT state FROM handling_policies WHERE policy_id = %s",
                               (pid,))[0][0] == "expired", timeout=20, what="the policy expired")
    cancelled = [r for r in log_of(eid) if r[1] == "policy.cancelled"]
    assert len(cancelled) == 1 and cancelled[0][0] == ana
    assert "false positive" in cancelled[0][6]
    assert [(k, a, s) for k, a, s, _, _ in tasks_of(eid)] == \
        [("apply", "block_ip", "rolled_back"), ("rollback", "unblock_ip", "succeeded")]


def test_a_change_decided_on_an_old_version_is_refused(pipe):
    """An event command may carry the version the change was decided on (the API's
    If-Match): when the event moved meanwhile it is refused with the current version in its
    result, and nothing changes."""
    acct = "acct-" + tag()
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "low", at(6), "h-ver",
                         remote_ip="198.51.100.41"))
    eid = pipe.event_of(acct, 1)
    (v,) = t.query("SELECT version FROM events WHERE event_id = %s", (eid,))[0]
    ids = {k: f"cmd-{k}-{tag()}" for k in ("old", "now")}
    t.produce(pipe.prefix + "commands", [
        command(ids["old"], "event.level", {"event_id": eid, "level": "high",
                                            "version": v - 1}),
        command(ids["now"], "event.level", {"event_id": eid, "level": "high", "version": v}),
    ], keys=[eid.encode()] * 2)
    got = answers(pipe.prefix, {x: 1 for x in ids.values()})
    old, now = got[ids["old"]][0], got[ids["now"]][0]
    assert old["status"] == "error" and "changed meanwhile" in old["message"]
    assert json.loads(old["result_json"]) == {"event_id": eid, "version": v,
                                              "expected": v - 1, "conflict": "version"}
    assert now["status"] == "ok", now["message"]


def result_of(task_id, attempt, acct, asset, action, status="succeeded", reason="done"):
    """An agent's ActionResult for attempt of task_id (as the enforcer writes it)."""
    return t.AvroType("action_result").encode({
        "action_id": f"{task_id}.{attempt}", "task_id": task_id, "account_id": acct,
        "asset_id": asset, "action": action, "agent": "test", "status": status,
        "reason": reason, "details_json": "{}", "finished_at_ms": int(time.time() * 1000)})


def test_a_handled_event_is_reopened_takes_alerts_again_and_is_handled_again(pipe):
    """Handled is not final (the status dialog offers Handled, Unhandled and Handling with
    a remark such as "Re-handle"): a handled event is reopened with a remark, logged with
    before and after; it takes related alerts again (by the keys it still holds) until it
    is handled again; the alerts handled with it keep their status and handling; a
    successor opened while it was handled stays separate; a policy and a playbook are
    accepted on the reopened event; each handling is queued for the exporter, with its own
    seq."""
    acct = "acct-" + tag()
    ana = "ana-" + tag()
    pipe.user(ana, acct)
    ip = "203.0.113.78"
    pipe.raw(acct,
             alert(acct, "Brute force", "brute_force", "medium", at(40), "db1", remote_ip=ip),
             alert(acct, "Logon from attacker", "abnormal_logon", "high", at(39), "db1",
                   logon={"ip": ip, "user": "root"}))
    eid = pipe.event_of(acct, 2)
    rc, doc, err = pipe.ctl_json("events", "status", eid, "handled", "--remark", "contained",
                                 actor=ana)
    assert rc == 0 and doc["result"]["alerts_handled"] == 2, err
    first = dict(t.query("SELECT a.name, a.handling FROM alerts a JOIN event_alerts ea USING "
                         "(alert_id) WHERE ea.event_id = %s", (eid,)))
    # while it is handled, the attacker IP comes back on another asset: a successor
    pipe.raw(acct, alert(acct, "Scan from attacker", "network_attack", "medium", at(35), "web9",
                         remote_ip=ip))
    t.wait_for(lambda: len(t.query("SELECT 1 FROM events WHERE account_id = %s", (acct,))) == 2,
               what="a successor event")
    (succ,) = t.query("SELECT event_id FROM events WHERE account_id = %s AND predecessor = %s",
                      (acct, eid))[0]

    rc, doc, err = pipe.ctl_json("events", "status", eid, "unhandled", "--remark", "Re-handle",
                                 actor=ana)
    assert rc == 0, err
    assert doc["result"]["before"] == "handled" and doc["result"]["status"] == "unhandled"
    assert "reopened" in doc["message"]
    assert t.query("SELECT status, handled_at FROM events WHERE event_id = %s",
                   (eid,))[0] == ("unhandled", None)
    reopen = [r for r in log_of(eid) if r[1] == "event.status"][-1]
    assert (reopen[0], reopen[4], reopen[5]["status"], reopen[5]["reopened"], reopen[6]) == \
        (ana, {"status": "handled"}, "unhandled", True, "Re-handle")
    # the alerts handled with it keep their status and handling information
    assert dict(t.query("SELECT a.name, a.handling FROM alerts a JOIN event_alerts ea USING "
                        "(alert_id) WHERE ea.event_id = %s", (eid,))) == first
    assert {s for (s,) in t.query("SELECT a.status FROM alerts a JOIN event_alerts ea USING "
                                  "(alert_id) WHERE ea.event_id = %s", (eid,))} == {"handled"}

    # a related alert on its asset joins the reopened event; the successor stays separate
    pipe.raw(acct, alert(acct, "Miner on db1", "malicious_process", "high", at(30), "db1",
                         process={"path": "/tmp/xm", "pid": 4321, "user": "svc"}))
    t.wait_for(lambda: t.query("SELECT alert_count FROM events WHERE event_id = %s",
                               (eid,))[0][0] == 3, what="the new alert joined the reopened event")
    assert t.query("SELECT a.name FROM alerts a JOIN event_alerts ea USING (alert_id) "
                   "WHERE ea.event_id = %s", (succ,)) == [("Scan from attacker",)]
    assert t.query("SELECT status, predecessor FROM events WHERE event_id = %s",
                   (succ,))[0] == ("unhandled", eid)

    # handled again: only the new alert is handled now; the others keep their first handling
    rc, doc, err = pipe.ctl_json("events", "status", eid, "handled", "--remark", "again",
                                 actor=ana)
    assert rc == 0 and doc["result"]["alerts_handled"] == 1, err
    rows = dict(t.query("SELECT a.name, a.handling FROM alerts a JOIN event_alerts ea USING "
                        "(alert_id) WHERE ea.event_id = %s", (eid,)))
    assert {k: rows[k] for k in first} == first
    assert rows["Miner on db1"]["remark"] == "again"
    # each handling is queued for the exporter's handled-event stream, in order
    seqs = [r[0] for r in t.query("SELECT seq FROM handled_events WHERE event_id = %s "
                                  "ORDER BY seq", (eid,))]
    assert len(seqs) == 2 and seqs[0] < seqs[1]

    # reopened to handling: a policy and a playbook are accepted (a handled one is refused)
    err = pipe.refused("events", "respond", eid, "--entity", f"ip:{ip}", "--status", "handled",
                       actor=ana)
    assert "reopen it first" in err
    pipe.ok("events", "status", eid, "handling", "--remark", "Re-handle", actor=ana)
    pipe.ok("events", "respond", eid, "--entity", f"ip:{ip}", "--status", "handled",
            actor=ana)
    pipe.ok("events", "playbook", eid, "--entity", f"ip:{ip}", "--playbook", "waf-block-ip",
            actor=ana)
    assert t.query("SELECT count(*) FROM handling_policies WHERE event_id = %s",
                   (eid,))[0][0] == 2
    snaps = snapshots(pipe.prefix, eid)
    assert [s["status"] for s in snaps][-1] == "handling"
    assert "unhandled" in [s["status"] for s in snaps[1:]]


def test_block_ip_acts_on_every_asset_the_ip_attacked(pipe):
    """One IP attacking several assets of the event (a targeted attack): "block IP" makes
    one policy per attacked asset, each with its own task, result and rollback; the event
    is handled when every one succeeded; at the end of the lease each asset gets its
    unblock. The 30-day figures count the two blocks, not the unblocks."""
    acct = "acct-" + tag()
    a1, a2 = "host-" + tag(), "host-" + tag()
    ip = "198.51.100.73"
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(4), a1, remote_ip=ip),
         alert(acct, "Brute force", "brute_force", "high", at(3), a2, remote_ip=ip))
    eid = pipe.event_of(acct, 2)
    assert t.query("SELECT alert_count FROM events WHERE event_id = %s", (eid,))[0][0] == 2
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{ip}",
                                 "--validity", "8s", "--status", "handled")
    assert rc == 0, err
    pols = doc["result"]["policies"]
    assert sorted(p["asset_id"] for p in pols) == sorted([a1, a2])
    assert pols[0]["asset_id"] == a2  # the most recently attacked first
    assert len({p["policy_id"] for p in pols}) == 2
    tasks = t.query("SELECT task_id, asset_id FROM handling_tasks WHERE event_id = %s "
                    "AND kind = 'apply' ORDER BY asset_id", (eid,))
    assert [r[1] for r in tasks] == sorted([a1, a2])

    def answer(task_id, asset):
        (attempt,) = t.query("SELECT attempt FROM handling_tasks WHERE task_id = %s",
                             (task_id,))[0]
        t.produce(pipe.prefix + "action-results",
                  [result_of(task_id, attempt, acct, asset, "block_ip")],
                  keys=[f"{task_id}.{attempt}".encode()])
    # each asset's agent answers for its own task
    answer(*tasks[0])
    t.wait_for(lambda: t.query("SELECT state FROM handling_tasks WHERE task_id = %s",
                               (tasks[0][0],))[0][0] == "succeeded",
               what="the first asset's task")
    assert status_of(eid) == "handling"  # the other asset's block is still awaited
    answer(*tasks[1])
    wait_status(eid, "handled")
    sent = [ACTION.decode(m.value()) for m in t.consume(pipe.prefix + "actions", 1, settle=2)]
    assert {(x["account_id"], x["asset_id"], x["action"]) for x in sent
            if x["event_id"] == eid and x["action"] == "block_ip"} == \
        {(acct, a1, "block_ip"), (acct, a2, "block_ip")}
    # the leases end: one unblock per asset
    t.wait_for(lambda: len(t.query("SELECT 1 FROM handling_tasks WHERE event_id = %s AND "
                                   "kind = 'rollback'", (eid,))) == 2, timeout=20,
               what="the two rollbacks")
    assert sorted(t.query("SELECT asset_id, action FROM handling_tasks WHERE event_id = %s AND "
                          "kind = 'rollback'", (eid,))) == sorted([(a1, "unblock_ip"),
                                                                   (a2, "unblock_ip")])
    assert t.query("SELECT tasks, assets FROM entity_stats_30d WHERE account_id = %s AND "
                   "entity_type = 'ip' AND value = %s", (acct, ip))[0] == (2, 2)


def test_block_ip_goes_to_the_perimeter_agents_an_admin_declared(pipe):
    """An admin declares agents the perimeter of an account (accounts.perimeter): blocking
    an IP of that account then makes one policy per perimeter agent instead of one per
    attacked asset, a member account with a perimeter may block an IP none of its assets
    saw, only an admin declares, and a withdrawn perimeter gives the per-asset targets back."""
    acct = "acct-" + tag()
    a1, a2 = "host-" + tag(), "host-" + tag()
    gw1, gw2 = "gw-" + tag(), "gw-" + tag()
    ip = "198.51.100.75"
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "medium", at(4), a1, remote_ip=ip),
             alert(acct, "Brute force", "brute_force", "high", at(3), a2, remote_ip=ip))
    eid = pipe.event_of(acct, 2)
    ana = "ana-" + tag()
    pipe.user(ana, acct)
    assert "Only an admin" in pipe.refused("accounts", "perimeter", acct, gw1, actor=ana)
    pipe.ok("accounts", "perimeter", acct, gw1)
    pipe.ok("accounts", "perimeter", acct, gw2)
    assert "already" in pipe.refused("accounts", "perimeter", acct, gw1)
    out = pipe.ok("accounts", "perimeter", "list")
    assert gw1 in out and gw2 in out
    assert t.query("SELECT count(*) FROM activity_log WHERE action = 'accounts.perimeter' AND "
                   "object_id = %s", (acct,))[0][0] == 2
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{ip}",
                                 "--validity", "1h", "--status", "handling")
    assert rc == 0, err
    assert sorted(p["asset_id"] for p in doc["result"]["policies"]) == sorted([gw1, gw2])
    sent = [ACTION.decode(m.value()) for m in t.consume(pipe.prefix + "actions", 1, settle=2)]
    assert {(x["account_id"], x["asset_id"]) for x in sent
            if x["event_id"] == eid and x["action"] == "block_ip"} == {(acct, gw1), (acct, gw2)}
    # a member account none of whose assets saw the IP blocks it at its perimeter
    member = "acct-" + tag()
    pipe.ok("accounts", "add-member", member, "--manager", acct)
    assert "has no asset where" in pipe.refused("events", "respond", eid, "--entity",
                                                f"ip:{ip}", "--account", member,
                                                "--validity", "1h", "--status", "handling")
    mgw = "gw-" + tag()
    pipe.ok("accounts", "perimeter", member, mgw)
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{ip}", "--account",
                                 member, "--validity", "1h", "--status", "handling")
    assert rc == 0, err
    assert [p["asset_id"] for p in doc["result"]["policies"]] == [mgw]
    # withdrawn: the IP is blocked on the assets it attacked again
    pipe.ok("accounts", "perimeter", acct, gw1, "--remove")
    pipe.ok("accounts", "perimeter", acct, gw2, "--remove")
    assert "is not a perimeter agent" in pipe.refused("accounts", "perimeter", acct, gw1,
                                                     "--remove")
    rc, doc, err = pipe.ctl_json("events", "respond", eid, "--entity", f"ip:{ip}",
                                 "--validity", "1h", "--status", "handling")
    assert rc == 0, err
    assert sorted(p["asset_id"] for p in doc["result"]["policies"]) == sorted([a1, a2])


def test_a_validity_shorter_than_the_steps_need_is_refused(pipe):
    """A playbook's validity must leave its steps the time they need (the sum of their
    timeouts): deep-virus-scan's 600 s step refuses 60 s, and nothing is created."""
    acct = "acct-" + tag()
    pipe.raw(acct, alert(acct, "Dropper", "virus", "high", at(3), "host-" + tag(),
                         file={"path": "/tmp/dropper-" + tag(), "md5": t.md5hex(acct)}))
    eid = pipe.event_of(acct, 1)
    (fpath,) = t.query("SELECT value FROM entity_alerts WHERE event_id = %s AND entity_type = "
                       "'file'", (eid,))[0]
    err = pipe.refused("events", "playbook", eid, "--entity", f"file:{fpath}", "--playbook",
                       "deep-virus-scan", "--validity", "60s")
    assert "shorter than playbook deep-virus-scan needs" in err and "600 s or more" in err, err
    assert t.query("SELECT count(*) FROM handling_policies WHERE event_id = %s", (eid,))[0][0] == 0
    assert status_of(eid) == "unhandled"


def test_a_playbook_stops_when_its_validity_ends(pipe, tmp_path):
    """A run still applying when its validity ends starts no more steps: the unfinished
    ones are cancelled (a late result is ignored), what may be in force is rolled back, the
    run fails with that reason, and so does its event. Its validity may not be shorter than
    the sum of its steps' timeouts."""
    acct = "acct-" + tag()
    asset = "host-" + tag()
    ip = "198.51.100.74"
    pipe.raw(acct, alert(acct, "Scan", "network_attack", "high", at(3), asset, remote_ip=ip))
    eid = pipe.event_of(acct, 1)
    name = "pb-" + tag()
    f = tmp_path / "pb.json"
    f.write_text(json.dumps({"name": name, "entity_type": "ip",
                             "steps": [{"action": "block_ip", "params": {"ip": "{entity}"},
                                        "timeout_s": 30},
                                       {"action": "waf_block_ip", "params": {"ip": "{entity}"},
                                        "timeout_s": 30}]}))
    pipe.ok("playbooks", "add", str(f))
    try:
        pipe.ok("events", "playbook", eid, "--entity", f"ip:{ip}", "--playbook", name,
                "--validity", "60s")
        (task_id, attempt), = t.query("SELECT task_id, attempt FROM handling_tasks WHERE "
                                      "event_id = %s AND step = 0", (eid,))
        # step 1 is still running when the validity ends (the clock is moved forward)
        t.query("UPDATE handling_policies SET valid_until = now() WHERE event_id = %s "
                "RETURNING 1", (eid,))
        wait_status(eid, "failed")
        # step 1's result comes late: ignored; step 2 never starts
        t.produce(pipe.prefix + "action-results",
                  [result_of(task_id, attempt, acct, asset, "block_ip")],
                  keys=[f"{task_id}.{attempt}".encode()])
        time.sleep(3)
        pol = t.query("SELECT state, rolled_back, reason FROM handling_policies WHERE "
                      "event_id = %s", (eid,))[0]
        assert pol[:2] == ("failed", True) and "validity period ended at step 1 of 2" in pol[2]
        rows = t.query("SELECT kind, step, action, state, attempt FROM handling_tasks WHERE "
                       "event_id = %s ORDER BY kind, step", (eid,))
        assert rows == [("apply", 0, "block_ip", "cancelled", 1),
                        ("apply", 1, "waf_block_ip", "cancelled", 0),
                        ("rollback", 0, "unblock_ip", "running", 1)] or \
            [r[:4] for r in rows] == [("apply", 0, "block_ip", "cancelled"),
                                      ("apply", 1, "waf_block_ip", "cancelled"),
                                      ("rollback", 0, "unblock_ip", "running")], rows
        assert rows[1][4] == 0  # never sent
        sent = [ACTION.decode(m.value()) for m in t.consume(pipe.prefix + "actions", 1,
                                                             settle=2)]
        assert "waf_block_ip" not in {x["action"] for x in sent if x["event_id"] == eid}
        actions = [r[1] for r in log_of(eid)]
        assert actions.count("task.cancelled") == 2 and "playbook.failed" in actions
        assert "policy.lease_ended" in actions
        # the validity must cover the sum of the steps' timeouts (30 s + 30 s)
        pipe.ok("events", "status", eid, "handling")
        err = pipe.refused("events", "playbook", eid, "--entity", f"ip:{ip}", "--playbook", name,
                           "--validity", "59s")
        assert "60 s or more" in err, err
    finally:
        pipe.ok("playbooks", "delete", name)
