# SPDX-License-Identifier: Apache-2.0
"""Signed actions (docs/actions.md "Signatures", "What an agent refuses"): the real
cwpp-enforcer acts only on Actions signed by the key it trusts, with a deadline within
enforcer.action.horizon.ms of their issue, issued after its enrollment and after what its
journal forgot; everything else is answered failed with the reason, counted by reason,
and changes nothing on the host (the nftables ruleset of a test namespace, the WAF deny
file, the quarantine). The responder signs what it sends, and a third party verifies it
with the documented canonical bytes.

The agent, its network namespaces and results reader are test_enforcer's (imported, not
copied); the responder's pipeline is test_responder's."""
import hashlib
import io
import json
import os
import struct
import subprocess
import time
import uuid

import avro.io
import avro.schema
import pytest

import cwpp_testlib as t
from test_enforcer import (ACCOUNT, ACTION, Agent, Net, Results, agent, net,  # noqa: F401
                           other_agents, stop_agents)

REFUSED = 'cwpp_enforcer_refused_total{reason="%s"}'


def other_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.generate()


def session_key_id():
    import base64
    return t.key_id_of(base64.b64decode(t.signing_keys()[2].read_text()))


def legacy_record(rec):
    """rec encoded with the Action schema as it was before signatures."""
    s = json.loads((t.REPO / "schemas" / "action.avsc").read_text())
    s["fields"] = [f for f in s["fields"] if f["name"] not in ("key_id", "signature")]
    schema = avro.schema.parse(json.dumps(s))
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(rec, avro.io.BinaryEncoder(buf))
    fp = t.crc64_avro(schema.canonical_form.encode())
    return b"\xc3\x01" + struct.pack("<Q", fp) + buf.getvalue()


def refused(agent, aid, want):
    (r,) = agent.results.wait(aid)
    assert r["status"] == "failed" and "refused" in r["reason"] and want in r["reason"], r
    return r


# ------------------------------------------------------------------------ tests

def test_start_up_needs_the_keys(tmp_path):
    """The agent will not start without enforcer.verify.key.file, nor with a file that is
    not one base64 line of 32 bytes; the responder will not start without
    responder.signing.key.file, nor with a key file group or other may read. Each exit
    names the key."""
    base = {"CWPP_ENFORCER_ACCOUNT_ID": "a", "CWPP_ENFORCER_ASSET_ID": "h",
            "CWPP_ENFORCER_STATE_DIR": str(tmp_path / "s"), "CWPP_HTTP_PORT": "-1"}
    bad = tmp_path / "bad.pub"
    bad.write_text("bm90IGEga2V5\n")
    for extra in ({}, {"CWPP_ENFORCER_VERIFY_KEY_FILE": str(bad)},
                  {"CWPP_ENFORCER_VERIFY_KEY_FILE": str(tmp_path / "none.pub")}):
        env = {k: v for k, v in dict(os.environ, **base, **extra).items()
               if k != "CWPP_ENFORCER_VERIFY_KEY_FILE" or extra}
        p = subprocess.run([str(t.BIN / "cwpp-enforcer")], env=env, capture_output=True,
                           text=True, timeout=20)
        assert p.returncode != 0 and "enforcer.verify.key.file" in p.stderr, (extra, p.stderr)

    _, key, _ = t.write_key_pair(tmp_path / "k")
    os.chmod(key, 0o640)
    for extra, want in (({}, "is required"), ({"CWPP_RESPONDER_SIGNING_KEY_FILE": str(key)},
                                              "group or other")):
        env = {k: v for k, v in dict(os.environ, CWPP_HTTP_PORT="-1", **extra).items()
               if k != "CWPP_RESPONDER_SIGNING_KEY_FILE" or extra}
        p = subprocess.run([str(t.BIN / "cwpp-responder")], env=env, capture_output=True,
                           text=True, timeout=20)
        assert p.returncode != 0, p
        out = p.stdout + p.stderr  # a start-up failure is logged (JSON on stdout)
        assert "responder.signing.key.file" in out and want in out, out


def test_unsigned_forged_and_tampered_actions_are_refused_and_change_nothing(agent, net):
    """Unsigned (also a record of the schema before signatures), signed by another key
    (under its own id, and under the trusted key's id), tampered with after signing
    (params_json, the asset), a truncated signature: each answered failed with the
    reason, nothing blocked. A refusal is not remembered: the genuine action with a
    refused action_id is applied afterwards."""
    before = net.ruleset()
    stranger = other_key()
    ids = {}
    ids["unsigned"] = agent.send("block_ip", {"ip": "192.0.2.71"}, unsigned=True)
    ids["other_key"] = agent.send("block_ip", {"ip": "192.0.2.72"}, key=stranger)
    # signed by the stranger, under the trusted key's id
    ids["posing"] = agent.send("block_ip", {"ip": "192.0.2.73"}, key=stranger,
                               after_signing={"key_id": session_key_id()})
    ids["tampered"] = agent.send("block_ip", {"ip": "192.0.2.74"},
                                 after_signing={"params_json": json.dumps({"ip": "192.0.2.75"})})
    ids["truncated"] = agent.send("block_ip", {"ip": "192.0.2.76"},
                                  after_signing={"signature": b"\x01" * 63})
    now = int(time.time() * 1000)
    legacy_id = f"task-{uuid.uuid4().hex[:12]}.1"
    rec = {"action_id": legacy_id, "task_id": legacy_id[:-2], "policy_id": "p", "event_id": "e",
           "account_id": ACCOUNT, "asset_id": agent.asset, "action": "block_ip",
           "params_json": json.dumps({"ip": "192.0.2.77"}), "attempt": 1, "issued_at_ms": now,
           "deadline_ms": now + 60000}
    t.produce(agent.prefix + "actions", [legacy_record(rec)],
              keys=[f"{ACCOUNT}/{agent.asset}".encode()])
    refused(agent, ids["unsigned"], "not signed")
    refused(agent, legacy_id, "not signed")
    refused(agent, ids["other_key"], "not by the trusted key")
    refused(agent, ids["posing"], "does not match its content")
    refused(agent, ids["tampered"], "does not match its content")
    refused(agent, ids["truncated"], "has 63 bytes, not 64")
    rules = net.ruleset()
    assert not any(f"192.0.2.7{i}" in rules for i in range(1, 8)), rules
    assert rules == before
    m = agent.metrics()
    assert m[REFUSED % "unsigned"] >= 2 and m[REFUSED % "unknown_key"] >= 1
    assert m[REFUSED % "bad_signature"] >= 2 and m[REFUSED % "malformed_signature"] >= 1

    # not journaled: the genuine action under the refused id is applied
    agent.send("block_ip", {"ip": "192.0.2.78"}, action_id=ids["unsigned"])
    r = agent.results.wait(ids["unsigned"], 2)[1]
    assert r["status"] == "succeeded", r
    assert "192.0.2.78" in net.ruleset()
    assert agent.do("unblock_ip", {"ip": "192.0.2.78"})["status"] == "succeeded"


def test_deadlines_outside_the_horizon_and_actions_before_enrollment_are_refused(agent, net):
    """deadline_ms 0 (none), a deadline 2 h after the issue (more than the 1 h
    enforcer.action.horizon.ms), a deadline before the issue, and a validly signed action
    issued 10 minutes before the agent's first start (a new agent must not act on what
    waited in the topic): each refused, counted, nothing blocked."""
    now = int(time.time() * 1000)
    cases = [
        (dict(deadline=0), "has no deadline", "no_deadline"),
        (dict(deadline=now + 2 * 3600 * 1000), "more than the 3600000 ms "
         "enforcer.action.horizon.ms allows", "beyond_horizon"),
        (dict(issued_at=now + 20000, deadline=now + 10000), "is before its issue",
         "bad_deadline"),
        (dict(issued_at=now - 600000, deadline=now + 60000), "before this agent was enrolled",
         "before_enrollment"),
    ]
    enrolled = json.loads((agent.tmp / "state" / "enrolled.json").read_text())["enrolled_at_ms"]
    assert enrolled > now - 600000
    ids = [agent.send("block_ip", {"ip": f"192.0.2.{90 + i}"}, **kw)
           for i, (kw, _, _) in enumerate(cases)]
    for aid, (_, want, _) in zip(ids, cases):
        refused(agent, aid, want)
    rules = net.ruleset()
    assert not any(f"192.0.2.{90 + i}" in rules for i in range(len(cases))), rules
    m = agent.metrics()
    for _, _, label in cases:
        assert m[REFUSED % label] >= 1, (label, m)


def test_a_replayed_valid_action_is_applied_once(agent, tmp_path):
    """The very same signed record sent three times: quarantined once (one manifest line),
    the same result three times."""
    f = tmp_path / "replayed.bin"
    f.write_bytes(b"replayed " + uuid.uuid4().bytes)
    aid = f"task-{uuid.uuid4().hex[:12]}.1"
    now = int(time.time() * 1000)
    rec = ACTION.encode({"action_id": aid, "task_id": aid[:-2], "policy_id": "p",
                         "event_id": "e", "account_id": ACCOUNT, "asset_id": agent.asset,
                         "action": "quarantine_file", "params_json": json.dumps({"path": str(f)}),
                         "attempt": 1, "issued_at_ms": now, "deadline_ms": now + 60000})
    for _ in range(3):
        t.produce(agent.prefix + "actions", [rec], keys=[f"{ACCOUNT}/{agent.asset}".encode()])
    rs = agent.results.wait(aid, 3)
    assert rs[0]["status"] == "succeeded" and rs[0] == rs[1] == rs[2], rs
    manifest = (agent.tmp / "state" / "quarantine" / "manifest.jsonl").read_text()
    assert sum(1 for x in manifest.splitlines() if json.loads(x)["action_id"] == aid) == 1


def test_an_action_the_journal_forgot_is_not_applied_again(tmp_path):
    """enforcer.journal.max_entries = 2: after three more actions the first one's entry is
    evicted; its very record sent again (still within its validity) is refused, since the
    journal can no longer tell it was applied, and the deny file keeps what the later
    unblock made of it. The floor survives a restart (the journal is compacted then)."""
    deny = tmp_path / "deny.conf"
    deny.write_text("")
    prefix, results, (a,) = other_agents(tmp_path, 1, env_for=lambda i: {
        "CWPP_ENFORCER_JOURNAL_MAX_ENTRIES": "2",
        "CWPP_ENFORCER_WAF_DENY_FILE": str(deny),
        "CWPP_ENFORCER_WAF_RELOAD": "/bin/true"})
    try:
        aid = f"task-{uuid.uuid4().hex[:12]}.1"
        now = int(time.time() * 1000)
        first = ACTION.encode({"action_id": aid, "task_id": aid[:-2], "policy_id": "p",
                               "event_id": "e", "account_id": ACCOUNT, "asset_id": a.asset,
                               "action": "waf_block_ip",
                               "params_json": json.dumps({"ip": "198.51.100.21"}),
                               "attempt": 1, "issued_at_ms": now, "deadline_ms": now + 600000})
        key = [f"{ACCOUNT}/{a.asset}".encode()]
        t.produce(prefix + "actions", [first], keys=key)
        assert results.wait(aid)[0]["status"] == "succeeded"
        time.sleep(0.01)
        for ip in ("198.51.100.22", "198.51.100.23"):
            assert a.do("waf_block_ip", {"ip": ip})["status"] == "succeeded"
        assert a.do("waf_unblock_ip", {"ip": "198.51.100.21"})["status"] == "succeeded"
        assert "198.51.100.21" not in deny.read_text()
        t.produce(prefix + "actions", [first], keys=key)
        r = results.wait(aid, 2)[1]
        assert r["status"] == "failed" and "journal has forgotten" in r["reason"], r
        assert "198.51.100.21" not in deny.read_text()
        assert a.metrics()[REFUSED % "before_journal"] == 1

        a.svc.stop()
        a.svc.start()
        a.svc.wait_ready()
        t.produce(prefix + "actions", [first], keys=key)
        r = results.wait(aid, 3)[2]
        assert r["status"] == "failed" and "journal has forgotten" in r["reason"], r
        assert "198.51.100.21" not in deny.read_text()
        lines = (a.tmp / "state" / "journal.jsonl").read_text().splitlines()
        assert any("floor_issued_at_ms" in x for x in lines), lines
    finally:
        stop_agents(results, [a])


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def rpipe(tmp_path_factory):
    from test_responder import Pipe
    p = Pipe(tmp_path_factory.mktemp("signing-responder"))
    yield p
    p.close()


def test_the_responders_actions_verify_in_the_agent_and_by_a_third_party(rpipe, tmp_path):
    """A real respond flow (the built-in deep-virus-scan playbook on a file): the Action
    the responder put on the topic carries the session key's id and a signature that
    verifies with the public key over the documented canonical bytes (python3-cryptography,
    nothing of ours); the real agent verifies it too and applies it (the file is
    quarantined, the event handled)."""
    from test_responder import enforcer, tasks_of, wait_status
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    import base64
    acct = "acct-" + t.tag()
    asset = "host-" + t.tag()
    bad = tmp_path / "dropper.bin"
    bad.write_bytes(b"malware " + t.tag().encode())
    sigs = tmp_path / "sigs.txt"
    sigs.write_text(hashlib.sha256(bad.read_bytes()).hexdigest() + "\n")
    agent = enforcer(rpipe, tmp_path, acct, asset,
                     extra={"CWPP_ENFORCER_SCAN_SIGNATURES": str(sigs)})
    try:
        rpipe.raw(acct, t.alert(acct, "Dropper", "virus", "high", t.at(2), asset,
                                source="virus_scan", file={"path": str(bad), "md5": t.md5hex(acct)}))
        eid = rpipe.event_of(acct, 1)
        rpipe.ok("events", "playbook", eid, "--entity", f"file:{bad}")
        wait_status(eid, "handled")
        assert not bad.exists()
        (task,) = tasks_of(eid)
        assert task[:3] == ("apply", "scan_file", "succeeded")

        pub_raw = base64.b64decode(t.signing_keys()[2].read_text())
        pub = Ed25519PublicKey.from_public_bytes(pub_raw)
        sent = [ACTION.decode(m.value()) for m in t.consume(rpipe.prefix + "actions", 1, settle=2)]
        mine = [x for x in sent if x["event_id"] == eid]
        assert mine
        for x in mine:
            assert x["key_id"] == hashlib.sha256(pub_raw).hexdigest()[:16]
            assert len(x["signature"]) == 64
            pub.verify(x["signature"], t.action_canonical(x))  # raises when it does not
            assert 0 < x["deadline_ms"] - x["issued_at_ms"] <= 3600 * 1000
        assert pub.public_bytes(serialization.Encoding.Raw,
                                serialization.PublicFormat.Raw) == pub_raw
    finally:
        agent.stop()
