# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-whitelist-filter and cwppctl on the real local Kafka broker
and PostgreSQL: alerts go through the real ingest, then the filter; analysts act with the
real cwppctl. Each test names the behaviour it pins down (docs/architecture.md "Whitelist"; docs/whitelist.md).

Rules live in the one shared database, so every test uses alert names and accounts of its
own (a random tag) and never sees another test's rules."""
import json
import signal
import time
import uuid

import pytest

import cwpp_testlib as t
from cwpp_testlib import tag, virus_alert

ALERT = t.AvroType("alert")
REJECTED = t.AvroType("rejected_record")
COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")


def setup_module(_):
    # the actors of these tests (cwppctl's default "alice", raw commands' "bob") act on
    # the accounts of every test: admins (an admin holds every account)
    t.make_user("alice", role="admin")
    t.make_user("bob", role="admin")


def start(services, prefix, filters=1, **kw):
    ing = services("ingest", prefix).start()
    fs = [services("whitelist-filter", prefix, group=f"{prefix}wl",
                   extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN,
                              "CWPP_WHITELIST_REFRESH_MS": "100", **kw.get("env", {})}).start()
          for _ in range(filters)]
    ing.wait_ready()
    for f in fs:
        f.wait_ready()
    return ing, fs


def decoded(prefix, topic, expect, timeout=60, settle=1.0):
    return [ALERT.decode(m.value()) for m in t.consume(prefix + topic, expect, timeout, settle)]


def stored(alert_ids):
    return dict(t.query("SELECT alert_id, status FROM alerts WHERE alert_id = ANY(%s)",
                        (list(alert_ids),)))


def ids_by(prefix, account, path):
    rows = t.query("SELECT alert_id FROM alerts WHERE account_id = %s AND file->>'path' = %s",
                   (account, path))
    assert len(rows) == 1, rows
    return rows[0][0]


def add_rule(prefix, *args):
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "rule", "add", *args)
    assert rc == 0, (doc, err)
    assert doc["status"] == "ok"
    return doc["result"]["rule_id"]


# --------------------------------------------------------------------------- rules

def test_rules_by_name_or_ed_with_scope_and_precision_defence(prefix, services):
    """A rule applies only to alerts of its name; rules of one name are OR-ed; an asset-
    scoped rule covers only its asset; matching alerts are suppressed as automatically
    whitelisted with the rule's hit counted in the database and /metrics; precision-defence
    alerts pass as handled whatever the rules say."""
    g = tag()
    name, other, acct = f"Trojan {g}", f"Miner {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    r1 = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "regex",
                  "--value", r"^/opt/scanner/.*\.bin$")
    r2 = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "details.signer", "--op", "eq",
                  "--value", "Acme Corp", "--scope", "asset", "--asset", "i-2")
    r3 = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "details.size", "--op", "gt",
                  "--value", "1000000")
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [
        virus_alert(name, acct, path="/opt/scanner/a.bin"),                         # r1
        virus_alert(other, acct, path="/opt/scanner/c.bin"),                        # other name
        virus_alert(name, acct, asset="i-2", path="/home/u/x",
                    details={"signer": "Acme Corp"}),                               # r2
        virus_alert(name, acct, asset="i-3", path="/home/u/x",
                    details={"signer": "Acme Corp"}),                               # scope
        virus_alert(name, acct, path="/home/u/big", details={"size": 5000000}),    # r3 (number)
        virus_alert(name, acct, path="/home/u/small", details={"size": 10}),       # r3 no
        virus_alert(name, acct, path="/opt/scanner/b.bin", defense="precision_defense"),  # prec.
        virus_alert(name, acct, path="/home/u/nosigner"),                          # missing field
    ])
    acc = decoded(prefix, "alerts.accepted", 5)
    sup = decoded(prefix, "alerts.suppressed", 3)
    got = {(a["name"], a["asset"]["id"], a["file"]["path"]): a["status"] for a in acc}
    assert got == {
        (other, "i-1", "/opt/scanner/c.bin"): "unhandled",
        (name, "i-3", "/home/u/x"): "unhandled",
        (name, "i-1", "/home/u/small"): "unhandled",
        (name, "i-1", "/opt/scanner/b.bin"): "handled",
        (name, "i-1", "/home/u/nosigner"): "unhandled",
    }
    assert sorted((a["asset"]["id"], a["file"]["path"], a["status"]) for a in sup) == [
        ("i-1", "/home/u/big", "automatically_whitelisted"),
        ("i-1", "/opt/scanner/a.bin", "automatically_whitelisted"),
        ("i-2", "/home/u/x", "automatically_whitelisted"),
    ]
    for a in acc + sup:  # keyed by account
        assert a["account_id"] == acct
    st = dict(t.query("SELECT file->>'path' || '@' || asset_id, status FROM alerts "
                      "WHERE account_id = %s AND name = %s", (acct, name)))
    assert st["/opt/scanner/a.bin@i-1"] == "automatically_whitelisted"
    assert st["/home/u/x@i-3"] == "unhandled"
    assert st["/opt/scanner/b.bin@i-1"] == "handled"
    hits = dict(t.query("SELECT rule_id, hits FROM whitelist_rules WHERE rule_id = ANY(%s)",
                        ([r1, r2, r3],)))
    assert hits == {r1: 1, r2: 1, r3: 1}
    m = t.metrics(f)
    for r in (r1, r2, r3):
        assert m[f'cwpp_whitelist_rule_hits_total{{rule_id="{r}"}}'] == 1
    assert m['cwpp_whitelist_alerts_total{decision="precision_defense"}'] == 1
    rc, doc, _ = t.cwppctl_json(prefix, "whitelist", "rule", "list", "--alert-name", name)
    assert rc == 0 and sorted((r["rule_id"], r["hits"]) for r in doc["rules"]) == \
        [(r1, 1), (r2, 1), (r3, 1)]


def test_deleting_a_rule_affects_only_future_alerts(prefix, services):
    """After a rule is deleted, alerts it suppressed keep "automatically whitelisted";
    new alerts it would have matched pass; the deletion is in the activity log."""
    g = tag()
    name, acct = f"Webshell {g}", f"acct-{g}"
    start(services, prefix)
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "contains",
                   "--value", "/var/www/uploads/")
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/var/www/uploads/a.php")])
    assert decoded(prefix, "alerts.suppressed", 1)[0]["status"] == "automatically_whitelisted"
    first = ids_by(prefix, acct, "/var/www/uploads/a.php")
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "rule", "delete", str(rid),
                                  "--remark", "too wide")
    assert rc == 0, err
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "delete", str(rid))
    assert rc == 1 and "already deleted" in err
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/var/www/uploads/b.php")])
    acc = decoded(prefix, "alerts.accepted", 1)
    assert [(a["file"]["path"], a["status"]) for a in acc] == [("/var/www/uploads/b.php", "unhandled")]
    assert stored([first]) == {first: "automatically_whitelisted"}
    log = t.query("SELECT actor, action, after, remark FROM activity_log "
                  "WHERE object_type = 'whitelist_rule' AND object_id = %s ORDER BY log_id",
                  (str(rid),))
    assert [(r[0], r[1], r[3]) for r in log] == [("alice", "whitelist.rule_add", None),
                                                 ("alice", "whitelist.rule_delete", "too wide")]


def test_rule_change_reaches_two_running_instances_within_a_second(prefix, services):
    """Two filter instances of one group: a rule created through one of them is in force
    on both within one second, without a restart; alerts on every partition obey it.
    Alerts are keyed by account and a rule applies to one account's alerts, so the
    accounts spread over every partition each have their rule (the first one timed)."""
    g = tag()
    name = f"Miner {g}"
    accts = [f"acct-{g}-{k}" for k in range(30)]
    acct = accts[0]
    _, fs = start(services, prefix, filters=2)
    # both loaded rules and hold partitions (3 of alerts.normalized + 3 of commands)
    t.wait_for(lambda: all(t.metrics(f).get("cwpp_whitelist_rule_reloads_total", 0) >= 1
                           for f in fs), what="both instances loaded rules")
    t.wait_for(lambda: [t.metrics(f).get("cwpp_whitelist_assigned_partitions", 0) for f in fs]
               if all(t.metrics(f).get("cwpp_whitelist_assigned_partitions", 0) > 0 for f in fs)
               and sum(t.metrics(f)["cwpp_whitelist_assigned_partitions"] for f in fs) == 6
               else None, timeout=90, what="the group to settle over both instances")
    before = [t.metrics(f)["cwpp_whitelist_rules_version"] for f in fs]
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "process.path", "--op", "eq",
                   "--value", "/usr/bin/xmrig")
    answered = time.time()
    version = t.query("SELECT version FROM whitelist_state")[0][0]
    assert version > max(before)
    seen = {}
    while time.time() - answered < 3 and len(seen) < 2:
        for i, f in enumerate(fs):
            if i not in seen and t.metrics(f)["cwpp_whitelist_rules_version"] >= version:
                seen[i] = time.time() - answered
        time.sleep(0.02)
    assert len(seen) == 2 and max(seen.values()) <= 1.0, seen
    # the same rule for the other accounts, then both instances hold all of them
    rids = [rid] + [r["rule_id"] for r in send_raw_commands(prefix, "whitelist.rule_add", [
        {"account_id": a, "alert_name": name, "field": "process.path", "op": "eq",
         "value": "/usr/bin/xmrig"} for a in accts[1:]])]
    version = t.query("SELECT version FROM whitelist_state")[0][0]
    t.wait_for(lambda: all(t.metrics(f)["cwpp_whitelist_rules_version"] >= version for f in fs),
               what="both instances to load every account's rule")
    # alerts of many accounts spread over all partitions, so both instances decide some
    vals = []
    for k in range(30):
        a = json.loads(virus_alert(name, accts[k], path=f"/p/{k}"))
        a["process"] = {"path": "/usr/bin/xmrig", "pid": 100 + k}
        vals.append(json.dumps(a).encode())
    t.produce(prefix + "alerts.raw", vals)
    sup = decoded(prefix, "alerts.suppressed", 30)
    assert len(sup) == 30 and {a["status"] for a in sup} == {"automatically_whitelisted"}
    decided = [t.metrics(f)['cwpp_whitelist_alerts_total{decision="automatically_whitelisted"}']
               for f in fs]
    assert sum(decided) == 30 and min(decided) > 0, decided
    hits = dict(t.query("SELECT rule_id, hits FROM whitelist_rules WHERE rule_id = ANY(%s)",
                        (rids,)))
    assert sum(hits.values()) == 30 and set(hits.values()) == {1}, hits


def test_hostile_regex_cannot_stall_the_filter(prefix, services):
    """A catastrophic-backtracking pattern is accepted (it is valid) but its runs are
    stopped by PCRE2's limits: the alert passes as no match, the abort is counted, and the
    alerts behind it flow. An invalid regex is refused at creation with PCRE2's message and
    offset, by cwppctl and by the service itself."""
    g = tag()
    name, acct = f"Cmd {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "details.cmd", "--op", "regex",
             "--value", "^(a|aa)+$", "--force")
    time.sleep(0.5)
    evil = "a" * 30000 + "b"
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path=f"/x/{k}", details={"cmd": evil})
                                      for k in range(20)] +
              [virus_alert(name, acct, path="/x/ok", details={"cmd": "aaaa"})])
    t0 = time.time()
    acc = decoded(prefix, "alerts.accepted", 20, timeout=60, settle=0.5)
    sup = decoded(prefix, "alerts.suppressed", 1, timeout=30, settle=0.5)
    assert len(acc) == 20 and len(sup) == 1 and sup[0]["file"]["path"] == "/x/ok"
    assert time.time() - t0 < 30
    assert t.metrics(f)["cwpp_whitelist_regex_aborted_total"] >= 20
    # invalid: refused by cwppctl with PCRE2's words ...
    rc, out, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", name,
                             "--field", "details.cmd", "--op", "regex", "--value", "(ab[")
    assert rc == 1 and "offset 4" in err and "missing terminating ]" in err, err
    # ... and by the service when a client skips that check
    res = send_raw_command(prefix, "whitelist.rule_add",
                           {"account_id": acct, "alert_name": name, "field": "details.cmd", "op": "regex",
                            "value": "(ab["})
    assert res["status"] == "error" and "offset 4" in res["message"], res
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s", (name,))[0][0] == 1


def send_raw_command(prefix, ctype, payload, command_id=None, times=1, actor="bob"):
    cid = command_id or "cmd-" + uuid.uuid4().hex
    rec = COMMAND.encode({"command_id": cid, "service": "whitelist", "type": ctype,
                          "actor": actor, "issued_at_ms": int(time.time() * 1000),
                          "payload_json": json.dumps(payload)})
    t.produce(prefix + "commands", [rec] * times, keys=[cid.encode()] * times)
    got = []
    for m in t.consume(prefix + "command-results", times, timeout=60, settle=0.5):
        r = RESULT.decode(m.value())
        if r["command_id"] == cid:
            got.append(r)
    assert len(got) == times, got
    return got[0] if times == 1 else got


def send_raw_commands(prefix, ctype, payloads, actor="bob"):
    """Sends one command per payload at once; returns their decoded results (JSON), in
    order, after asserting each was applied."""
    cids = ["cmd-" + uuid.uuid4().hex for _ in payloads]
    now = int(time.time() * 1000)
    t.produce(prefix + "commands", [COMMAND.encode(
        {"command_id": c, "service": "whitelist", "type": ctype, "actor": actor,
         "issued_at_ms": now, "payload_json": json.dumps(p)}) for c, p in zip(cids, payloads)],
        keys=[c.encode() for c in cids])
    got, deadline = {}, time.time() + 90
    while len(got) < len(cids) and time.time() < deadline:
        for m in t.consume(prefix + "command-results", len(cids), timeout=10, settle=0.5):
            r = RESULT.decode(m.value())
            if r["command_id"] in cids:
                got[r["command_id"]] = r
    assert len(got) == len(cids) and all(r["status"] == "ok" for r in got.values()), got
    return [json.loads(got[c]["result_json"]) for c in cids]


# ----------------------------------------------------------------- manual whitelist

def test_manual_whitelist_recurrence_and_bulk_removal(prefix, services):
    """Whitelisting an alert by hand makes it "manually whitelisted"; when it recurs no new
    alert appears, only its last-seen time and count move, and it stays suppressed.
    Removing alerts (several at once) returns them to unhandled: they pass on (and join an
    event again) as `restored`, not as occurrences. Every change is in the activity log."""
    g = tag()
    name, acct = f"Logon {g}", f"acct-{g}"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/a", minute=0),
                                      virus_alert(name, acct, path="/b", minute=1)])
    assert len(decoded(prefix, "alerts.accepted", 2)) == 2
    a, b = ids_by(prefix, acct, "/a"), ids_by(prefix, acct, "/b")
    for x in (a, b):
        rc, doc, err = t.cwppctl_json(prefix, "whitelist", "add-alert", x, "--remark", "lab host")
        assert rc == 0 and doc["result"]["after"] == "manually_whitelisted", (doc, err)
    sup = decoded(prefix, "alerts.suppressed", 2)
    assert {s["alert_id"]: s["status"] for s in sup} == {a: "manually_whitelisted",
                                                        b: "manually_whitelisted"}
    # each also told the correlator it leaves its event (docs/whitelist.md)
    acc = decoded(prefix, "alerts.accepted", 4)
    assert sorted((x["alert_id"], x["status"], x["transition"]) for x in acc[2:]) == \
        sorted([(a, "manually_whitelisted", "whitelisted"), (b, "manually_whitelisted", "whitelisted")])
    # recurrence of a: same features, later
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/a", minute=30)])
    sup = decoded(prefix, "alerts.suppressed", 3)
    rec = [s for s in sup if s["alert_id"] == a and s["occurrences"] == 2]
    assert len(rec) == 1 and rec[0]["status"] == "manually_whitelisted"
    assert rec[0]["transition"] == "occurrence"
    assert len(decoded(prefix, "alerts.accepted", 4, settle=1.0)) == 4  # nothing new passed
    rows = t.query("SELECT alert_id, status, occurrences, last_seen > first_seen FROM alerts "
                   "WHERE account_id = %s ORDER BY alert_id", (acct,))
    assert sorted(rows) == sorted([(a, "manually_whitelisted", 2, True),
                                   (b, "manually_whitelisted", 1, False)])
    # refusals name the problem
    rc, _, err = t.cwppctl(prefix, "whitelist", "remove", a, "al-" + "0" * 32)
    assert rc == 1 and "name no alert" in err and "al-" + "0" * 32 in err
    rc, _, err = t.cwppctl(prefix, "whitelist", "add-alert", "not-an-id")
    assert rc == 1 and "not an alert id" in err
    # bulk removal
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "remove", a, b, "--remark", "false alarm")
    assert rc == 0, err
    assert sorted((x["alert_id"], x["before"], x["after"]) for x in doc["result"]["alerts"]) == \
        sorted([(a, "manually_whitelisted", "unhandled"), (b, "manually_whitelisted", "unhandled")])
    acc = decoded(prefix, "alerts.accepted", 6)
    back = {x["alert_id"]: (x["status"], x["transition"]) for x in acc[4:]}
    assert back == {a: ("unhandled", "restored"), b: ("unhandled", "restored")}
    assert stored([a, b]) == {a: "unhandled", b: "unhandled"}
    rc, _, err = t.cwppctl(prefix, "whitelist", "remove", a)
    assert rc == 1 and "not whitelisted" in err
    log = t.query("SELECT object_id, actor, action, before->>'status', after->>'status', remark "
                  "FROM activity_log WHERE object_type = 'alert' AND object_id = %s "
                  "ORDER BY log_id", (a,))
    assert [r[2:] for r in log] == [
        ("whitelist.add_alert", "unhandled", "manually_whitelisted", "lab host"),
        ("whitelist.remove_alerts", "manually_whitelisted", "unhandled", "false alarm")]
    rc, doc, _ = t.cwppctl_json(prefix, "alerts", "show", a)
    assert rc == 0 and doc["status"] == "unhandled" and len(doc["activity"]) == 2
    rc, doc, _ = t.cwppctl_json(prefix, "alerts", "list", "--status", "unhandled", "--name", name)
    assert rc == 0 and {x["alert_id"] for x in doc["alerts"]} == {a, b}


def test_actors_need_permission_on_the_account(prefix, services):
    """Every whitelist command's actor is a known, enabled user holding permission on the
    account of what it changes (docs/commands.md): the alert's account, or the rule's
    account (every rule belongs to one). An unknown, a disabled and an unpermitted actor
    are each refused with a sentence and change nothing (an analyst of one account cannot
    add a rule for another); a permitted one succeeds."""
    g = tag()
    name, acct, other = f"Perm {g}", f"acct-{g}", f"acct-{g}-other"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/p/1")])
    decoded(prefix, "alerts.accepted", 1)
    x = ids_by(prefix, acct, "/p/1")
    ana = t.make_user(f"ana-{g}", acct)
    t.make_user(f"dis-{g}", acct, disabled=True)
    t.make_user(f"oth-{g}", other)

    def refused(actor, *args, env=None):
        rc, out, err = t.cwppctl(prefix, *args, actor=actor, env=env)
        assert rc == 1, (rc, out, err)
        assert err.strip().endswith(".") and "Refused: " in err, err
        return err

    def unseen(actor, *args, env=None):
        """cwpp-api answers before any command: 401 (no such user), 404 (not theirs)."""
        rc, out, err = t.cwppctl(prefix, *args, actor=actor, env=env)
        assert rc == 1 and err.strip().endswith("."), (rc, out, err)
        return err

    # through cwpp-api an unknown or disabled user is not authenticated at all, and an
    # alert of an account the actor does not hold is answered as a missing one
    assert "not one this server issued" in unseen(
        None, "whitelist", "add-alert", x,
        env={"CWPP_API_TOKEN": "cwpp_" + "0" * 16 + "_" + "0" * 64})
    assert "the user is disabled" in unseen(f"dis-{g}", "whitelist", "add-alert", x)
    assert f'No alert "{x}" exists among the accounts you hold' in \
        unseen(f"oth-{g}", "whitelist", "add-alert", x)
    # a rule of another account: refused, whatever its condition; one of acct: acct's users
    assert f'holds no permission on account "{other}"' in \
        refused(ana, "whitelist", "rule", "add", "--account", other, "--alert-name", name,
                "--field", "file.path", "--op", "eq", "--value", "/p/1")
    assert f'holds no permission on account "{acct}"' in \
        refused(f"oth-{g}", "whitelist", "rule", "add", "--account", acct, "--alert-name", name, "--field",
                "account_id", "--op", "eq", "--value", acct)
    # a rule made from another account's alert: answered as if that alert did not exist,
    # and its name is not told (the rule's own account, other, is one oth holds)
    rc, out, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", other, "--alert-name", f"Guess {g}",
                             "--field", "account_id", "--op", "eq", "--value", other,
                             "--from-alert", x, "--force", actor=f"oth-{g}")
    assert rc == 1 and f"there is no alert {x} that user" in err and name not in err, err
    # nothing changed, nothing logged
    assert stored([x]) == {x: "unhandled"}
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s", (name,)) == [(0,)]
    assert t.query("SELECT count(*) FROM activity_log WHERE object_type = 'alert' AND "
                   "object_id = %s", (x,)) == [(0,)]

    # permitted: the alert's account, a rule of that account, and their undoing
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "add-alert", x, actor=ana)
    assert rc == 0 and doc["result"]["after"] == "manually_whitelisted", (doc, err)
    assert stored([x]) == {x: "manually_whitelisted"}
    assert "name no alert" in unseen(f"oth-{g}", "whitelist", "remove", x)
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "rule", "add", "--account", acct,
                                  "--alert-name", name, "--field", "file.path", "--op", "eq",
                                  "--value", "/p/1", "--force", actor=ana)
    assert rc == 0, (doc, err)
    rid = doc["result"]["rule_id"]
    assert f'No whitelist rule "{rid}" exists' in unseen(f"oth-{g}", "whitelist", "rule",
                                                           "delete", str(rid))
    assert t.cwppctl(prefix, "whitelist", "rule", "delete", str(rid), actor=ana)[0] == 0
    assert t.cwppctl(prefix, "whitelist", "remove", x, actor=ana)[0] == 0
    assert [r[0] for r in t.query(
        "SELECT actor FROM activity_log WHERE (object_type = 'alert' AND object_id = %s) OR "
        "(object_type = 'whitelist_rule' AND object_id = %s) ORDER BY log_id",
        (x, str(rid)))] == [ana] * 4


def test_a_rule_applies_only_to_its_account(prefix, services):
    """A rule belongs to an account: scope all is every asset of that account, scope asset
    one asset of it. A rule of acct-a suppresses acct-a's alert and counts its hit; the
    same alert name, field and asset in acct-b passes unhandled; the preview of acct-a's
    rule counts acct-a's alerts only."""
    g = tag()
    name, acct, other = f"Tenant {g}", f"acct-{g}-a", f"acct-{g}-b"
    start(services, prefix)
    r_all = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path",
                     "--op", "startswith", "--value", "/opt/tool/", "--force")
    r_asset = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path",
                       "--op", "eq", "--value", "/srv/x", "--scope", "asset", "--asset", "i-9",
                       "--force")
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [
        virus_alert(name, acct, path="/opt/tool/a"),                 # r_all
        virus_alert(name, other, path="/opt/tool/a"),                # other account: passes
        virus_alert(name, acct, asset="i-9", path="/srv/x"),         # r_asset
        virus_alert(name, other, asset="i-9", path="/srv/x"),        # same asset id, acct-b
    ])
    sup = decoded(prefix, "alerts.suppressed", 2)
    acc = decoded(prefix, "alerts.accepted", 2)
    assert sorted((a["account_id"], a["file"]["path"]) for a in sup) == [
        (acct, "/opt/tool/a"), (acct, "/srv/x")]
    assert sorted((a["account_id"], a["file"]["path"], a["status"]) for a in acc) == [
        (other, "/opt/tool/a", "unhandled"), (other, "/srv/x", "unhandled")]
    assert dict(t.query("SELECT rule_id, hits FROM whitelist_rules WHERE rule_id = ANY(%s)",
                        ([r_all, r_asset],))) == {r_all: 1, r_asset: 1}
    assert t.query("SELECT account_id FROM whitelist_rules WHERE rule_id = %s",
                   (r_all,)) == [(acct,)]
    rc, pv, err = t.cwppctl_json(prefix, "whitelist", "preview", "--account", acct,
                                 "--alert-name", name, "--field", "file.path", "--op",
                                 "startswith", "--value", "/opt/tool/")
    assert rc == 0 and (pv["considered"], pv["matched"]) == (2, 1), (pv, err)


def recent_alert(name, account, path, asset="i-1", seconds_ago=0):
    """virus_alert occurring now (seconds_ago earlier): within the window a new rule looks
    back over (whitelist.preview.days), whatever the day the tests run."""
    a = json.loads(virus_alert(name, account, asset=asset, path=path))
    a["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))
    return json.dumps(a).encode()


def test_removal_gives_unhandled_even_when_a_live_rule_matches(prefix, services):
    """Removal from the whitelist (reference: "the alert reappears in the Unhandled list
    and must be evaluated and handled again") sets the alert unhandled, full stop: a live
    rule that matches it does not whitelist it again (and counts no hit); it is published
    on accepted as unhandled with transition `restored` (the correlator joins it without
    counting an occurrence), not on suppressed. Only its next occurrence meets the rule:
    suppressed as automatically whitelisted, with a `whitelisted` record on accepted that
    takes it out of its event again. The activity log keeps every entry."""
    g = tag()
    name, acct = f"Scan {g}", f"acct-{g}"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/srv/tools/scan")])
    decoded(prefix, "alerts.accepted", 1)
    x = ids_by(prefix, acct, "/srv/tools/scan")
    assert t.cwppctl(prefix, "whitelist", "add-alert", x)[0] == 0
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "eq",
                   "--value", "/srv/tools/scan", "--from-alert", x, "--scope", "asset", "--force")
    assert t.query("SELECT asset_id FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == "i-1"
    time.sleep(0.5)
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "remove", x, "--remark", "look again")
    assert rc == 0, err
    assert doc["result"]["alerts"] == [{"alert_id": x, "before": "manually_whitelisted",
                                        "after": "unhandled"}]
    assert stored([x]) == {x: "unhandled"}
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 0
    acc = decoded(prefix, "alerts.accepted", 3)
    assert [(a["alert_id"], a["status"], a["transition"]) for a in acc] == [
        (x, "unhandled", "occurrence"), (x, "manually_whitelisted", "whitelisted"),
        (x, "unhandled", "restored")]
    assert acc[2]["occurrences"] == 1 and acc[2]["account_id"] == acct
    sup = decoded(prefix, "alerts.suppressed", 1, settle=1.0)
    assert [(a["status"], a["transition"]) for a in sup] == [("manually_whitelisted", "whitelisted")]
    # its next occurrence meets the rule
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/srv/tools/scan", minute=9)])
    sup = decoded(prefix, "alerts.suppressed", 2)
    assert [(a["status"], a["transition"], a["occurrences"]) for a in sup[1:]] == [
        ("automatically_whitelisted", "occurrence", 2)]
    acc = decoded(prefix, "alerts.accepted", 4)
    assert [(a["status"], a["transition"], a["occurrences"]) for a in acc[3:]] == [
        ("automatically_whitelisted", "whitelisted", 2)]
    assert stored([x]) == {x: "automatically_whitelisted"}
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 1
    log = t.query("SELECT action, before->>'status', after->>'status', remark FROM activity_log "
                  "WHERE object_type = 'alert' AND object_id = %s ORDER BY log_id", (x,))
    assert log == [("whitelist.add_alert", "unhandled", "manually_whitelisted", None),
                   ("whitelist.remove_alerts", "manually_whitelisted", "unhandled", "look again")]


def test_add_alert_publishes_whitelisted_and_redelivery_changes_nothing(prefix, services):
    """An alert whitelisted by hand after it was accepted leaves its event (reference:
    whitelisted alerts "are no longer associated with the security event"): besides its
    record on suppressed, it is published on accepted, keyed by its account, as manually
    whitelisted with transition `whitelisted`. The same command delivered again (a retry,
    a redelivery after a crash) is applied once and publishes the same record again only
    while the alert is still as the command left it; once the alert was removed from the
    whitelist, the old command's redelivery publishes nothing and changes nothing."""
    g = tag()
    name, acct = f"Manual {g}", f"acct-{g}"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/m/1")])
    decoded(prefix, "alerts.accepted", 1)
    x = ids_by(prefix, acct, "/m/1")
    cid = "cmd-" + uuid.uuid4().hex
    res = send_raw_command(prefix, "whitelist.add_alert", {"alert_id": x, "remark": "lab"},
                           command_id=cid, times=2)
    assert [r["status"] for r in res] == ["ok", "ok"] and res[0]["message"] == res[1]["message"]
    msgs = t.consume(prefix + "alerts.accepted", 3, settle=1.0)
    assert len(msgs) == 3
    assert all(m.key() == acct.encode() for m in msgs)
    acc = [ALERT.decode(m.value()) for m in msgs]
    assert [(a["status"], a["transition"]) for a in acc] == [
        ("unhandled", "occurrence"), ("manually_whitelisted", "whitelisted"),
        ("manually_whitelisted", "whitelisted")]
    assert acc[1] == acc[2]  # the redelivery publishes the same fact, changing nothing
    assert stored([x]) == {x: "manually_whitelisted"}
    assert t.query("SELECT count(*) FROM activity_log WHERE object_type = 'alert' AND "
                   "object_id = %s", (x,)) == [(1,)]
    # taken out, then the old command once more: answered again, nothing published
    assert t.cwppctl(prefix, "whitelist", "remove", x)[0] == 0
    acc = decoded(prefix, "alerts.accepted", 4)
    assert (acc[3]["status"], acc[3]["transition"]) == ("unhandled", "restored")
    t.produce(prefix + "commands", [COMMAND.encode(
        {"command_id": cid, "service": "whitelist", "type": "whitelist.add_alert",
         "actor": "bob", "issued_at_ms": int(time.time() * 1000),
         "payload_json": json.dumps({"alert_id": x, "remark": "lab"})})], keys=[cid.encode()])
    answers = [RESULT.decode(m.value()) for m in t.consume(prefix + "command-results", 4,
                                                           settle=1.0)]
    answers = [r for r in answers if r["command_id"] == cid]
    assert len(answers) == 3 and answers[2]["status"] == "ok" and \
        answers[2]["message"] == res[0]["message"]
    assert len(decoded(prefix, "alerts.accepted", 4, settle=1.5)) == 4
    assert len(decoded(prefix, "alerts.suppressed", 2, settle=0.5)) == 2
    assert stored([x]) == {x: "unhandled"}
    assert t.query("SELECT count(*) FROM activity_log WHERE object_type = 'alert' AND "
                   "object_id = %s", (x,)) == [(2,)]


def test_new_rule_whitelists_the_stored_alerts_it_matches(prefix, services):
    """A new rule takes the stored alerts it matches out of their events (reference:
    alerts that match a custom whitelist rule "are no longer associated with the security
    event"): of its account and name, unhandled or handling, seen within the preview
    window, each becomes automatically whitelisted with an activity-log entry naming the
    rule, and is published on suppressed and on accepted with transition `whitelisted`.
    Handled, whitelisted, precision-defence and non-matching alerts, other names and other
    accounts keep their status. The command's redelivery creates nothing twice."""
    g = tag()
    name, acct, other = f"Sweep {g}", f"acct-{g}", f"acct-{g}-b"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [
        recent_alert(name, acct, "/sw/hit/1", seconds_ago=60),
        recent_alert(name, acct, "/sw/hit/2"),
        recent_alert(name, acct, "/sw/hit/3"),                  # handled below
        recent_alert(name, acct, "/sw/hit/4"),                  # handling below
        recent_alert(name, acct, "/sw/hit/5"),                  # manually whitelisted below
        recent_alert(name, acct, "/sw/miss"),
        recent_alert(f"Other {g}", acct, "/sw/hit/6"),
        recent_alert(name, other, "/sw/hit/7"),
    ])
    decoded(prefix, "alerts.accepted", 8)
    ids = {p: ids_by(prefix, acct, p) for p in
           ("/sw/hit/1", "/sw/hit/2", "/sw/hit/3", "/sw/hit/4", "/sw/hit/5", "/sw/miss", "/sw/hit/6")}
    ids["/sw/hit/7"] = ids_by(prefix, other, "/sw/hit/7")
    t.query("UPDATE alerts SET status = 'handled' WHERE alert_id = %s", (ids["/sw/hit/3"],))
    t.query("UPDATE alerts SET status = 'handling' WHERE alert_id = %s", (ids["/sw/hit/4"],))
    assert t.cwppctl(prefix, "whitelist", "add-alert", ids["/sw/hit/5"])[0] == 0
    decoded(prefix, "alerts.accepted", 9)
    cid = "cmd-" + uuid.uuid4().hex
    payload = {"account_id": acct, "alert_name": name, "field": "file.path", "op": "startswith",
               "value": "/sw/hit/", "force": True, "remark": "scanner paths"}
    res = send_raw_command(prefix, "whitelist.rule_add", payload, command_id=cid, times=2)
    assert [r["status"] for r in res] == ["ok", "ok"] and res[0]["message"] == res[1]["message"]
    result = json.loads(res[0]["result_json"])
    rid = result["rule_id"]
    assert (result["whitelisted"], result["whitelisted_more"]) == (3, False)
    assert "It whitelisted 3 stored alerts" in res[0]["message"]
    swept = {ids["/sw/hit/1"], ids["/sw/hit/2"], ids["/sw/hit/4"]}
    assert stored(ids.values()) == {
        ids["/sw/hit/1"]: "automatically_whitelisted", ids["/sw/hit/2"]: "automatically_whitelisted",
        ids["/sw/hit/3"]: "handled", ids["/sw/hit/4"]: "automatically_whitelisted",
        ids["/sw/hit/5"]: "manually_whitelisted", ids["/sw/miss"]: "unhandled",
        ids["/sw/hit/6"]: "unhandled", ids["/sw/hit/7"]: "unhandled"}
    # published once by the command and once more by its redelivery (still as it left them)
    acc = decoded(prefix, "alerts.accepted", 9 + 6, settle=1.5)
    assert len(acc) == 15
    assert sorted((a["alert_id"], a["status"], a["transition"]) for a in acc
                  if a["status"] == "automatically_whitelisted") == sorted(
        [(i, "automatically_whitelisted", "whitelisted") for i in swept] * 2)
    sup = decoded(prefix, "alerts.suppressed", 1 + 6, settle=0.5)
    assert sorted((a["alert_id"], a["transition"]) for a in sup[1:]) == sorted(
        [(i, "whitelisted") for i in swept] * 2)
    log = t.query("SELECT object_id, action, before->>'status', after->>'status', "
                  "(after->>'rule_id')::bigint, remark FROM activity_log "
                  "WHERE command_id = %s AND object_type = 'alert' ORDER BY object_id", (cid,))
    assert log == sorted((i, "whitelist.rule_add", "handling" if i == ids["/sw/hit/4"] else "unhandled",
                          "automatically_whitelisted", rid, "scanner paths") for i in swept)
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s", (name,)) == [(1,)]
    # no occurrence was suppressed: no hit; the next occurrence of one counts and passes nothing
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 0
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [recent_alert(name, acct, "/sw/hit/2")])
    sup = decoded(prefix, "alerts.suppressed", 8)
    assert (sup[7]["alert_id"], sup[7]["status"], sup[7]["transition"]) == (
        ids["/sw/hit/2"], "automatically_whitelisted", "occurrence")
    assert len(decoded(prefix, "alerts.accepted", 15, settle=1.0)) == 15
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 1


def test_a_new_rule_whitelists_at_most_1000_stored_alerts(prefix, services):
    """The stored alerts one command's rule whitelists are bounded (1,000, the most
    recently seen first; docs/whitelist.md): the answer says more match, and the older
    ones keep their status until they recur."""
    g = tag()
    name, acct = f"Bound {g}", f"acct-{g}"
    start(services, prefix)
    n = 1003
    t.produce(prefix + "alerts.raw", [recent_alert(name, acct, f"/bd/{k}", seconds_ago=n - k)
                                      for k in range(n)])
    decoded(prefix, "alerts.accepted", n, timeout=120, settle=1.0)
    res = send_raw_command(prefix, "whitelist.rule_add",
                           {"account_id": acct, "alert_name": name, "field": "file.path",
                            "op": "startswith", "value": "/bd/", "force": True})
    result = json.loads(res["result_json"])
    assert res["status"] == "ok" and (result["whitelisted"], result["whitelisted_more"]) == (1000, True)
    assert "whitelisted when they recur" in res["message"]
    rows = dict(t.query("SELECT file->>'path', status FROM alerts WHERE account_id = %s", (acct,)))
    assert sorted(p for p, st in rows.items() if st == "unhandled") == ["/bd/0", "/bd/1", "/bd/2"]
    assert sum(st == "automatically_whitelisted" for st in rows.values()) == 1000
    acc = decoded(prefix, "alerts.accepted", n + 1000, timeout=120, settle=1.5)
    assert len(acc) == n + 1000 and {a["transition"] for a in acc[n:]} == {"whitelisted"}


def test_a_recurrence_a_rule_suppresses_leaves_its_event(prefix, services):
    """An alert accepted before (here last seen before the rules' look-back, so creating the
    rule leaves it alone) whose next occurrence a live rule suppresses leaves its event
    too: next to its occurrence on suppressed, a `whitelisted` record on accepted. An alert
    suppressed from its first occurrence was never accepted: nothing on accepted."""
    g = tag()
    name, acct = f"Recur {g}", f"acct-{g}"
    start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/rc/1")])
    decoded(prefix, "alerts.accepted", 1)
    x = ids_by(prefix, acct, "/rc/1")
    t.query("UPDATE alerts SET first_seen = now() - interval '90 days', "
            "last_seen = now() - interval '90 days' WHERE alert_id = %s", (x,))
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path",
                   "--op", "startswith", "--value", "/rc/", "--force")
    assert stored([x]) == {x: "unhandled"}
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/rc/1", minute=5),
                                      virus_alert(name, acct, path="/rc/2")])
    sup = decoded(prefix, "alerts.suppressed", 2)
    assert sorted((a["file"]["path"], a["occurrences"], a["transition"]) for a in sup) == [
        ("/rc/1", 2, "occurrence"), ("/rc/2", 1, "occurrence")]
    acc = decoded(prefix, "alerts.accepted", 2, settle=1.5)
    assert [(a["alert_id"], a["status"], a["transition"]) for a in acc] == [
        (x, "unhandled", "occurrence"), (x, "automatically_whitelisted", "whitelisted")]
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 2


# -------------------------------------------------------------- preview and force

def test_preview_and_broad_rules_need_force(prefix, services):
    """The preview replays a rule over the last 30 days of stored alerts: counts, assets,
    share, open events that would lose alerts, a sample. A rule that would suppress more
    than 20 % of its name's alerts, or is as broad as "path contains /data/", is refused
    without --force, saying why; with --force it is created."""
    g = tag()
    name, acct = f"Trojan {g}", f"acct-{g}"
    start(services, prefix)
    now = time.gmtime()
    vals = []
    for k in range(10):  # recent alerts (the window is the last 30 days)
        a = json.loads(virus_alert(name, acct, asset=f"i-{k % 3}", path=f"/data/app/f{k}"))
        a["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", now)
        vals.append(json.dumps(a).encode())
    t.produce(prefix + "alerts.raw", vals)
    decoded(prefix, "alerts.accepted", 10)
    # an open event holding two of them (the correlator's table; written here as admin)
    ev = f"ev-{g}"
    ids = [ids_by(prefix, acct, f"/data/app/f{k}") for k in (0, 3)]
    t.query("INSERT INTO events VALUES (%s, %s, 'Trojan story', 'high', 'unhandled', now(), now())",
            (ev, acct))
    for i in ids:
        t.query("INSERT INTO event_alerts VALUES (%s, %s)", (ev, i))
    rc, pv, err = t.cwppctl_json(prefix, "whitelist", "preview", "--account", acct, "--alert-name", name,
                                 "--field", "asset.id", "--op", "eq", "--value", "i-0")
    assert rc == 0, err
    assert (pv["considered"], pv["matched"], pv["assets"]) == (10, 4, 1)
    assert pv["needs_force"] is True and "40 %" in pv["broad"]
    assert pv["open_events"] == [{"event_id": ev, "name": "Trojan story", "status": "unhandled",
                                  "alerts": 2}]
    assert len(pv["sample"]) == 4 and {s["asset_id"] for s in pv["sample"]} == {"i-0"}
    rc, out, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", name,
                             "--field", "asset.id", "--op", "eq", "--value", "i-0")
    assert rc == 1 and "too broad" in err and "4 of 10" in err and "--force" in err, err
    rc, out, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", name,
                             "--field", "file.path", "--op", "contains", "--value", "/data/")
    assert rc == 1 and "top-level directory" in err, err
    rc, pv, _ = t.cwppctl_json(prefix, "whitelist", "preview", "--account", acct, "--alert-name", name,
                               "--field", "file.path", "--op", "eq", "--value", "/data/app/f1")
    assert (pv["matched"], pv["needs_force"]) == (1, False)
    rc, out, err = t.cwppctl(prefix, "whitelist", "preview", "--account", acct, "--alert-name", name,
                             "--field", "file.path", "--op", "contains", "--value", "/data/")
    assert rc == 0 and "needs --force" in out and "10 of 10" in out
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s", (name,))[0][0] == 0
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "asset.id", "--op", "eq",
                   "--value", "i-0", "--force")
    assert rid > 0


def test_rule_expiry(prefix, services):
    """A rule with an expiry stops applying at that time, without a restart."""
    g = tag()
    name, acct = f"Tool {g}", f"acct-{g}"
    start(services, prefix)
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", name, "--field",
                           "file.path", "--op", "eq", "--value", "/t", "--expires",
                           "2020-01-01T00:00:00Z")
    assert rc == 2 and "in the past" in err
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
    add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "contains",
             "--value", "/opt/t/", "--expires", until)
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/opt/t/1")])
    assert len(decoded(prefix, "alerts.suppressed", 1)) == 1
    time.sleep(max(0, 5.5 - 0.5))
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/opt/t/2")])
    acc = decoded(prefix, "alerts.accepted", 1)
    assert [a["file"]["path"] for a in acc] == ["/opt/t/2"]
    rc, doc, _ = t.cwppctl_json(prefix, "whitelist", "rule", "list", "--alert-name", name)
    assert doc["rules"][0]["expired"] is True


# --------------------------------------------------------- bad input, redelivery, crash

def test_bad_records_go_to_the_dead_letter_topic(prefix, services):
    """Bytes that are not an Alert on the input, or not a Command on the commands topic,
    go to the dead-letter topic with a reason; a command with a broken payload or an
    unknown type is answered with an error; the filter keeps going."""
    g = tag()
    name, acct = f"X {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    t.produce(prefix + "alerts.normalized", [b"not avro", b"\xc3\x01" + b"\x00" * 8 + b"junk"])
    t.produce(prefix + "commands", [b"\xc3\x01garbage"])
    res = send_raw_command(prefix, "whitelist.launch_missiles", {})
    assert res["status"] == "error" and "Unknown whitelist command" in res["message"]
    cid = "cmd-" + uuid.uuid4().hex
    rec = COMMAND.encode({"command_id": cid, "service": "whitelist", "type": "whitelist.add_alert",
                          "actor": "bob", "issued_at_ms": int(time.time() * 1000),
                          "payload_json": "{not json"})
    t.produce(prefix + "commands", [rec], keys=[cid.encode()])
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct)])
    assert len(decoded(prefix, "alerts.accepted", 1)) == 1
    rej = [REJECTED.decode(m.value()) for m in t.consume(prefix + "alerts.rejected", 3)]
    assert sorted((r["service"], r["reason_code"], r["source_topic"]) for r in rej) == [
        ("whitelist-filter", "bad_avro", prefix + "alerts.normalized"),
        ("whitelist-filter", "bad_avro", prefix + "alerts.normalized"),
        ("whitelist-filter", "bad_command", prefix + "commands")]
    assert {r["value"] for r in rej} >= {b"not avro", b"\xc3\x01garbage"}
    answers = [RESULT.decode(m.value()) for m in t.consume(prefix + "command-results", 2)]
    bad = [a for a in answers if a["command_id"] == cid]
    assert bad and bad[0]["status"] == "error" and "not a JSON object" in bad[0]["message"]
    assert f.proc.poll() is None


def test_hostile_ids_and_texts_never_stall_the_filter(prefix, services):
    """An Alert whose id is not "al-" + 32 hex goes to the dead-letter topic (it would
    break the database's id lists); a command whose refusal quotes 1,400 multi-byte
    characters is answered with valid UTF-8; the filter keeps deciding alerts."""
    g = tag()
    name, acct = f"Hostile {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/h/1")])
    good = t.consume(prefix + "alerts.accepted", 1)[0].value()
    rec = ALERT.decode(good)
    rec["alert_id"] = "al-}" + "0" * 31
    t.produce(prefix + "alerts.normalized", [ALERT.encode(rec)])
    res = send_raw_command(prefix, "whitelist.add_alert", {"alert_id": "\u20ac" * 1400})
    assert res["status"] == "error" and "not an alert id" in res["message"]
    res["message"].encode("utf-8")  # decodable: valid UTF-8 end to end
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/h/2")])
    acc = decoded(prefix, "alerts.accepted", 2)
    assert sorted(a["file"]["path"] for a in acc) == ["/h/1", "/h/2"]
    rej = [REJECTED.decode(m.value()) for m in t.consume(prefix + "alerts.rejected", 1)]
    assert [(r["reason_code"], "32 lower-case hex" in r["reason"]) for r in rej] == \
        [("bad_avro", True)]
    assert f.proc.poll() is None


def test_command_and_recurrence_in_one_batch(prefix, services):
    """Commands of a batch are applied before its alerts are decided: a recurrence that
    arrives next to "whitelist this alert" is suppressed, not passed on."""
    g = tag()
    name, acct = f"Batch {g}", f"acct-{g}"
    _, (f,) = start(services, prefix, env={"CWPP_BATCH_MAX_MS": "1500",
                                           "CWPP_BATCH_LINGER_MS": "1500"})
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/b/1")])
    first = t.consume(prefix + "alerts.accepted", 1)[0]
    x = ALERT.decode(first.value())["alert_id"]
    assert f.stop() == 0
    # the command and a recurrence wait side by side for the filter's next batch
    cid = "cmd-" + uuid.uuid4().hex
    t.produce(prefix + "commands", [COMMAND.encode(
        {"command_id": cid, "service": "whitelist", "type": "whitelist.add_alert",
         "actor": "bob", "issued_at_ms": int(time.time() * 1000),
         "payload_json": json.dumps({"alert_id": x})})],
        keys=[cid.encode()])
    t.produce(prefix + "alerts.normalized", [first.value()], keys=[first.key()])
    f.start()
    f.wait_ready()
    sup = decoded(prefix, "alerts.suppressed", 2)
    assert [(a["alert_id"], a["status"]) for a in sup] == [(x, "manually_whitelisted")] * 2
    # the recurrence did not pass: accepted holds the first occurrence and the record that
    # takes the alert out of its event
    acc = decoded(prefix, "alerts.accepted", 2, settle=1.5)
    assert [(a["alert_id"], a["status"], a["transition"]) for a in acc] == [
        (x, "unhandled", "occurrence"), (x, "manually_whitelisted", "whitelisted")]


def test_redelivered_command_is_applied_once(prefix, services):
    """The same command delivered twice (a client retry, or a redelivery after a crash)
    creates one rule and one log entry, and gets the same answer twice."""
    g = tag()
    name, acct = f"Dup {g}", f"acct-{g}"
    start(services, prefix)
    res = send_raw_command(prefix, "whitelist.rule_add",
                           {"account_id": acct, "alert_name": name, "field": "file.path", "op": "eq", "value": "/z"},
                           times=2)
    assert [r["status"] for r in res] == ["ok", "ok"] and res[0]["message"] == res[1]["message"]
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s", (name,))[0][0] == 1
    assert t.query("SELECT count(*) FROM activity_log a JOIN whitelist_rules r "
                   "ON a.object_id = r.rule_id::text AND a.object_type = 'whitelist_rule' "
                   "WHERE r.alert_name = %s", (name,))[0][0] == 1


def test_a_crash_between_commit_and_produce_loses_no_whitelist_record(prefix, services):
    """The records of a command are produced after its commit (the outbox): a filter that
    dies like kill -9 right after committing "whitelist this alert", and again after
    committing "remove it", before producing anything (the CWPP_FAULTS hook), publishes
    each change exactly once after its restart: the `whitelisted` record, then the
    `restored` one, each command applied and logged once."""
    g = tag()
    name, acct = f"Crash {g}", f"acct-{g}"
    _, (f,) = start(services, prefix, env={"CWPP_FAULTS": "whitelist_after_commit:1"})
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/k/1")])
    decoded(prefix, "alerts.accepted", 1)
    x = ids_by(prefix, acct, "/k/1")

    def crash_on(ctype, payload):
        cid = "cmd-" + uuid.uuid4().hex
        t.produce(prefix + "commands", [COMMAND.encode(
            {"command_id": cid, "service": "whitelist", "type": ctype, "actor": "bob",
             "issued_at_ms": int(time.time() * 1000), "payload_json": json.dumps(payload)})],
            keys=[cid.encode()])
        t.wait_for(lambda: f.proc.poll() is not None, what="the filter to die after its commit")
        assert f.proc.returncode == -signal.SIGKILL
        return cid

    def restart(faults):
        f.env.pop("CWPP_FAULTS", None)
        if faults:
            f.env["CWPP_FAULTS"] = faults
        f.restarts += 1
        f.start()
        f.wait_ready()

    add = crash_on("whitelist.add_alert", {"alert_id": x})
    assert stored([x]) == {x: "manually_whitelisted"}  # committed, nothing produced yet
    assert len(decoded(prefix, "alerts.accepted", 1, settle=1.0)) == 1
    restart("whitelist_after_commit:2")  # the 1st batch with a command is the redelivery
    acc = decoded(prefix, "alerts.accepted", 2)
    assert [(a["status"], a["transition"]) for a in acc] == [
        ("unhandled", "occurrence"), ("manually_whitelisted", "whitelisted")]
    rem = crash_on("whitelist.remove_alerts", {"alert_ids": [x]})
    assert stored([x]) == {x: "unhandled"}
    restart(None)
    acc = decoded(prefix, "alerts.accepted", 3, settle=2.0)
    assert [(a["status"], a["transition"]) for a in acc] == [
        ("unhandled", "occurrence"), ("manually_whitelisted", "whitelisted"),
        ("unhandled", "restored")]
    sup = decoded(prefix, "alerts.suppressed", 1, settle=0.5)
    assert [(a["status"], a["transition"]) for a in sup] == [("manually_whitelisted", "whitelisted")]
    res = [RESULT.decode(m.value()) for m in t.consume(prefix + "command-results", 2, settle=0.5)]
    assert sorted((r["command_id"], r["status"]) for r in res) == sorted([(add, "ok"), (rem, "ok")])
    assert t.query("SELECT action FROM activity_log WHERE object_type = 'alert' AND "
                   "object_id = %s ORDER BY log_id", (x,)) == [
        ("whitelist.add_alert",), ("whitelist.remove_alerts",)]


def test_sigkill_mid_stream_loses_nothing_and_counts_hits_once(prefix, services):
    """kill -9 of the filter while it works: after a restart every alert has come out
    (suppressed or accepted) and the rule's hit count equals the suppressed alerts exactly:
    a redelivered batch is not counted twice."""
    g = tag()
    name, acct = f"Kill {g}", f"acct-{g}"
    _, (f,) = start(services, prefix, env={"CWPP_BATCH_MAX_MESSAGES": "50"})
    # the rule for each of the 7 accounts the alerts spread over (a rule is one account's)
    rids = [add_rule(prefix, "--account", f"{acct}-{k}", "--alert-name", name, "--field",
                     "file.path", "--op", "regex", "--value", r"/even/", "--force")
            for k in range(7)]
    time.sleep(0.5)
    n = 3000
    t.produce(prefix + "alerts.raw",
              [virus_alert(name, f"{acct}-{k % 7}",
                           path=("/even/" if k % 2 == 0 else "/odd/") + str(k))
               for k in range(n)])
    t.wait_for(lambda: t.metrics(f).get('cwpp_whitelist_alerts_total{decision="accepted"}', 0) > 100,
               what="the filter to be busy")
    f.kill9()
    f.restarts += 1
    f.start()
    f.wait_ready()
    sup = decoded(prefix, "alerts.suppressed", n // 2, timeout=120, settle=2)
    acc = decoded(prefix, "alerts.accepted", n // 2, timeout=60, settle=1)
    assert {a["alert_id"] for a in sup} | {a["alert_id"] for a in acc} == \
        {r[0] for r in t.query("SELECT alert_id FROM alerts WHERE account_id LIKE %s", (acct + "-%",))}
    assert len({a["alert_id"] for a in sup}) == n // 2
    assert t.query("SELECT sum(hits) FROM whitelist_rules WHERE rule_id = ANY(%s)",
                   (rids,))[0][0] == n // 2


def test_database_failures_mid_batch_are_retried_exactly_once(prefix, services):
    """A database result that fails in the middle of a batch's transaction (the
    CWPP_FAULTS hook, several times) rolls the batch back and retries it: every alert comes
    out once decided, and the rule's hits are exact."""
    g = tag()
    name, acct = f"Flaky {g}", f"acct-{g}"
    # results checked: 7 prepares at start-up, then ~8 per batch; fail a few inside batches
    _, (f,) = start(services, prefix, env={"CWPP_FAULTS": "pg_exec:9,pg_exec:12,pg_exec:20",
                                           "CWPP_BATCH_MAX_MESSAGES": "20"})
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "contains",
                   "--value", "/flaky/hit/", "--force")
    time.sleep(0.5)
    n = 200
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path=("/flaky/hit/" if k % 4 == 0 else
                                                            "/flaky/miss/") + str(k))
                                      for k in range(n)])
    sup = decoded(prefix, "alerts.suppressed", n // 4, settle=1.0)
    acc = decoded(prefix, "alerts.accepted", n - n // 4, settle=1.0)
    assert len({a["alert_id"] for a in sup}) == n // 4
    assert len({a["alert_id"] for a in acc}) == n - n // 4
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == n // 4
    m = t.metrics(f)
    assert m["cwpp_whitelist_db_errors_total"] >= 1
    assert f.proc.poll() is None


def test_alerts_re_emitted_upstream_count_their_occurrences_once(prefix, services):
    """Ingest re-emits alerts after a rebalance or a failed offset commit, at new offsets
    the filter's fence cannot recognise. Every record carries its occurrence number: a
    repeated occurrence adds no rule hit (it is still forwarded), a record standing for
    several lost emissions adds them all, and a non-whitelisted alert's repeats change no
    hit count."""
    g = tag()
    name, acct = f"Seq {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "eq",
                   "--value", "/seq/hit", "--force")
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/seq/hit"),
                                      virus_alert(name, acct, path="/seq/miss")])
    decoded(prefix, "alerts.suppressed", 1)
    decoded(prefix, "alerts.accepted", 1)
    norm = {ALERT.decode(m.value())["file"]["path"]: m
            for m in t.consume(prefix + "alerts.normalized", 2)}
    hit, miss = norm["/seq/hit"], norm["/seq/miss"]
    x = ALERT.decode(hit.value())["alert_id"]

    def again(m, occurrences):
        a = ALERT.decode(m.value())
        out = []
        for o in occurrences:
            a["occurrences"] = o
            out.append(ALERT.encode(a))
        t.produce(prefix + "alerts.normalized", out, keys=[m.key()] * len(out))

    again(hit, [2, 3, 2, 3, 5])   # 2 and 3 repeated; 5 stands for the lost 4 and 5
    sup = decoded(prefix, "alerts.suppressed", 6, settle=1.5)
    assert [a["occurrences"] for a in sup] == [1, 2, 3, 2, 3, 5]
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 5
    m = t.metrics(f)
    assert m[f'cwpp_whitelist_rule_hits_total{{rule_id="{rid}"}}'] == 5
    assert m["cwpp_whitelist_repeats_total"] == 2
    assert t.query("SELECT filtered_seq FROM alerts WHERE alert_id = %s", (x,))[0][0] == 5

    again(miss, [2, 2, 1])
    acc = decoded(prefix, "alerts.accepted", 4, settle=1.5)
    assert [a["occurrences"] for a in acc] == [1, 2, 2, 1]
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 5
    m = t.metrics(f)
    # an accepted alert's records are neither counted nor marked (nothing is written)
    assert m["cwpp_whitelist_repeats_total"] == 2
    assert m[f'cwpp_whitelist_rule_hits_total{{rule_id="{rid}"}}'] == 5
    assert t.query("SELECT filtered_seq FROM alerts WHERE alert_id = %s",
                   (ALERT.decode(miss.value())["alert_id"],))[0][0] is None

    # a row from before filtered_seq (NULL): its next record counts one hit, and marks it
    t.query("UPDATE alerts SET filtered_seq = NULL WHERE alert_id = %s", (x,))
    again(hit, [8, 8])
    assert len(decoded(prefix, "alerts.suppressed", 8, settle=1.5)) == 8
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 6
    assert t.query("SELECT filtered_seq FROM alerts WHERE alert_id = %s", (x,))[0][0] == 8
    assert t.metrics(f)["cwpp_whitelist_repeats_total"] == 3


def test_sigterm_stops_cleanly(prefix, services):
    """SIGTERM: the filter finishes its batch, commits and exits 0."""
    _, (f,) = start(services, prefix)
    t.produce(prefix + "alerts.raw", [virus_alert(f"T {tag()}", f"acct-{tag()}")])
    decoded(prefix, "alerts.accepted", 1)
    assert f.stop() == 0
    assert any(e.get("event") == "exit" for e in f.log_events())


def test_cwppctl_errors_are_sentences_with_exit_codes(prefix):
    """Bad command lines exit 2 with a sentence; an unreachable service gives up with 3."""
    acct = f"acct-{tag()}"
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--alert-name", "x", "--field",
                           "file.path", "--op", "eq", "--value", "1")
    assert rc == 2 and "--account is required" in err
    rc, _, err = t.cwppctl(prefix, "alerts", "list", "--status", "bogus")
    assert rc == 2 and "unknown status" in err
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", "x", "--field",
                           "nope", "--op", "eq", "--value", "1")
    assert rc == 1 and "field" in err
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", "x", "--field",
                           "file.path", "--op", "like", "--value", "1")
    assert rc == 1 and "unknown operator" in err
    rc, _, err = t.cwppctl(prefix, "alerts", "show", "al-" + "f" * 32)
    assert rc == 1 and "no alert" in err
    # no filter running on this prefix: the command waits (the API's wait, 2 s here), then
    # says so; the alert exists (the API answers a missing one itself)
    x = "al-" + uuid.uuid4().hex
    t.query("INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, severity, "
            "source, input_format, asset_id, asset, defense, status, first_seen, last_seen) "
            "VALUES (%s, %s, %s, 'x', 'virus', 'high', 'virus_scan', 'cwpp', 'i-1', '{}', "
            "'none', 'unhandled', now(), now())", (x, x, acct))
    api = t.Api(prefix, extra_env={"CWPP_API_COMMAND_TIMEOUT_MS": "2000"})
    try:
        rc, _, err = t.cwppctl(prefix, "--timeout", "2", "whitelist", "add-alert", x, api=api)
    finally:
        api.stop()
    assert rc == 3 and "no answer" in err


def test_config_doc_is_current():
    """docs/config-whitelist-filter.md is what the binary's configuration table says
    (regenerate with `build/bin/cwpp-whitelist-filter --config-doc >
    docs/config-whitelist-filter.md`)."""
    import subprocess
    out = subprocess.run([str(t.BIN / "cwpp-whitelist-filter"), "--config-doc"],
                         capture_output=True, text=True, check=True).stdout
    assert (t.REPO / "docs" / "config-whitelist-filter.md").read_text() == out


def test_startswith_rule_on_a_path(prefix, services):
    """The operator startswith (docs/whitelist.md): a rule "file.path startswith
    /opt/app/cache/" suppresses an alert whose path starts with it and passes one whose
    path only contains it, or differs in case; the stored rule keeps its operator (the
    migration's CHECK takes it). A one-character prefix ("/") is broad: refused without
    --force, like a short contains."""
    g = tag()
    name, acct = f"Cache dropper {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", acct, "--alert-name", name,
                           "--field", "file.path", "--op", "startswith", "--value", "/")
    assert rc == 1 and "matches almost anything" in err, err
    rid = add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "startswith",
                   "--value", "/opt/app/cache/")
    assert t.query("SELECT op, value FROM whitelist_rules WHERE rule_id = %s",
                   (rid,)) == [("startswith", "/opt/app/cache/")]
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [
        virus_alert(name, acct, path="/opt/app/cache/blob.bin"),        # starts with: suppressed
        virus_alert(name, acct, path="/srv/opt/app/cache/blob.bin"),    # only contains it
        virus_alert(name, acct, path="/OPT/app/cache/blob.bin"),        # case differs
    ])
    sup = decoded(prefix, "alerts.suppressed", 1)
    acc = decoded(prefix, "alerts.accepted", 2)
    assert [(a["file"]["path"], a["status"]) for a in sup] == [
        ("/opt/app/cache/blob.bin", "automatically_whitelisted")]
    assert sorted((a["file"]["path"], a["status"]) for a in acc) == [
        ("/OPT/app/cache/blob.bin", "unhandled"), ("/srv/opt/app/cache/blob.bin", "unhandled")]
    assert t.query("SELECT hits FROM whitelist_rules WHERE rule_id = %s", (rid,))[0][0] == 1
    assert t.metrics(f)[f'cwpp_whitelist_rule_hits_total{{rule_id="{rid}"}}'] == 1


def test_a_10_kb_alert_name_is_refused_and_filtering_goes_on(prefix, services):
    """Every text of a whitelist command has a limit (docs/commands.md "Limits"), checked
    before anything is written: a rule whose alert_name is 10 KB (longer than any alert
    name can be: 512 bytes) is refused with a sentence naming the field and the limit, and
    so is a 5,000-byte remark; no rule is stored, and alerts right after are filtered by
    the rules there are (one matching alert suppressed, another accepted)."""
    g = tag()
    name, acct = f"Bounded {g}", f"acct-{g}"
    _, (f,) = start(services, prefix)
    add_rule(prefix, "--account", acct, "--alert-name", name, "--field", "file.path", "--op", "eq",
             "--value", "/w/1")
    huge = "N" * 10240
    res = send_raw_command(prefix, "whitelist.rule_add",
                           {"account_id": acct, "alert_name": huge, "field": "file.path", "op": "eq",
                            "value": "/w/1"})
    assert res["status"] == "error", res
    assert '"alert_name" is 10240 bytes, longer than its limit of 512 bytes' in res["message"]
    res = send_raw_command(prefix, "whitelist.rule_add",
                           {"account_id": acct, "alert_name": name, "field": "file.path", "op": "eq",
                            "value": "/w/2", "remark": "r" * 5000})
    assert res["status"] == "error" and '"remark"' in res["message"] and \
        "4000" in res["message"], res
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s OR "
                   "length(alert_name) > 512", (huge,))[0][0] == 0
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s",
                   (name,))[0][0] == 1
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, acct, path="/w/1"),
                                      virus_alert(name, acct, path="/w/2")])
    sup = decoded(prefix, "alerts.suppressed", 1)
    acc = decoded(prefix, "alerts.accepted", 1)
    assert [a["file"]["path"] for a in sup] == ["/w/1"]
    assert [a["file"]["path"] for a in acc] == ["/w/2"]
    assert f.proc.poll() is None
