# SPDX-License-Identifier: Apache-2.0
"""Integration tests of event.merge and event.detach, the commands the correlator applies
(docs/commands.md "service correlator"; docs/correlator.md "Leaving, merging and
detaching"), on the real local Kafka broker and PostgreSQL: alerts go through the real
ingest and whitelist-filter, commands are Command records on <prefix>commands, answers
are read from <prefix>command-results, events from PostgreSQL and <prefix>events.

Every test uses accounts and users of its own (a random tag)."""
import json
import time

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag

EVENT = t.AvroType("event")
COMMAND = t.AvroType("command")


def start(services, prefix, faults=None):
    ing = services("ingest", prefix).start()
    wl = services("whitelist-filter", prefix, group=f"{prefix}wl",
                  extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN}).start()
    corr = start_correlator(services, prefix, faults)
    for s in (ing, wl):
        s.wait_ready()
    return corr


def start_correlator(services, prefix, faults=None):
    env = {"CWPP_PG_DSN": t.CORRELATOR_DSN}
    if faults:
        env["CWPP_FAULTS"] = faults
    c = services("correlator", prefix, group=f"{prefix}corr", extra_env=env).start()
    c.wait_ready()
    return c


def events_of(account):
    return {r[0]: r for r in t.query(
        "SELECT event_id, status, merged_into, alert_count, occurrences, asset_count, level, "
        "stages, assessment, urgency FROM events WHERE account_id = %s", (account,))}


def wait_events(account, n, timeout=60):
    t.wait_for(lambda: len(events_of(account)) >= n, timeout=timeout,
               what=f"{n} events of {account}")
    return events_of(account)


def event_with(account, alert_name):
    return t.query("SELECT ea.event_id FROM event_alerts ea JOIN alerts a USING (alert_id) "
                   "WHERE a.account_id = %s AND a.name = %s", (account, alert_name))[0][0]


def alert_id(account, alert_name):
    return t.query("SELECT alert_id FROM alerts WHERE account_id = %s AND name = %s",
                   (account, alert_name))[0][0]


def command(cid, typ, payload, actor):
    return COMMAND.encode({"command_id": cid, "service": "correlator", "type": typ,
                           "actor": actor, "issued_at_ms": int(time.time() * 1000),
                           "payload_json": json.dumps(payload)})


def send(prefix, cid, typ, payload, actor):
    t.produce(prefix + "commands", [command(cid, typ, payload, actor)], keys=[cid.encode()])


def answers(prefix, want, timeout=60, settle=0.0):
    """The answers on <prefix>command-results to the commands of want {id: how many}."""
    return t.command_answers(prefix, want, timeout=timeout, settle=settle)


def answer(prefix, cid, timeout=60):
    got = answers(prefix, {cid: 1}, timeout=timeout)
    assert cid in got, f"no answer to {cid}"
    r = got[cid][0]
    return r["status"], r["message"], json.loads(r["result_json"] or "{}")


def last_snapshots(prefix, n):
    out = {}
    for m in t.consume(prefix + "events", n, settle=2):
        s = EVENT.decode(m.value())
        out[s["event_id"]] = s
    return out


def three_events(prefix, acct):
    """Three unrelated events of acct: a webshell on w1 (the oldest), a brute force on w2,
    a miner on the database db3 (critical)."""
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Webshell", "webshell", "high", at(30), "w1", tactic="TA0003",
              file={"path": "/var/www/s.php", "md5": t.md5hex(acct + "s")}),
        alert(acct, "SSH brute force", "brute_force", "medium", at(20), "w2", tactic="TA0006",
              remote_ip="203.0.113.5", asset_ip="10.0.0.2"),
        alert(acct, "Miner", "virus", "critical", at(10), "db3", role="database",
              tactic="TA0040", source="virus_scan", asset_ip="10.0.0.3",
              file={"path": "/tmp/xmr", "md5": t.md5hex(acct + "m")}),
    ], keys=[acct.encode()] * 3)
    evs = wait_events(acct, 3)
    return (event_with(acct, "Webshell"), event_with(acct, "SSH brute force"),
            event_with(acct, "Miner"), evs)


def log_of(cid):
    return sorted(t.query("SELECT actor, object_id, action, after, remark FROM activity_log "
                          "WHERE command_id = %s", (cid,)), key=lambda r: r[1])


# ----------------------------------------------------------------------- merge

def test_merge_combines_events_into_the_oldest(services, prefix):
    """event.merge: the oldest event survives with the alerts, entities, graph, keys,
    counts and assessment of all; the others become merged with merged_into on the table
    and the snapshot stream; the change is logged with actor and remark; a later alert
    with a merged event's key joins the survivor."""
    acct, u = "acct-" + tag(), tag()
    ana = t.make_user(f"ana-{u}", acct)
    corr = start(services, prefix)
    e1, e2, e3, before = three_events(prefix, acct)
    assert len({e1, e2, e3}) == 3
    assert "core_asset" not in [r["code"] for r in before[e1][8].get("reasons", [])]
    cid = "cmd-merge-" + u
    send(prefix, cid, "event.merge", {"event_ids": [e3, e1, e2], "remark": "one campaign"}, ana)
    status, msg, res = answer(prefix, cid)
    assert status == "ok", msg
    assert res["event_id"] == e1 and sorted(res["merged"]) == sorted([e2, e3])
    assert res["alerts"] == 3
    evs = events_of(acct)
    s = evs[e1]
    assert (s[1], s[2], s[3], s[4], s[5], s[6]) == ("unhandled", None, 3, 3, 3, "critical"), s
    assert set(s[7]) == {"TA0003", "TA0006", "TA0040"}, s
    assert "core_asset" in [r["code"] for r in s[8]["reasons"]], s[8]
    for m in (e2, e3):
        assert (evs[m][1], evs[m][2], evs[m][3]) == ("merged", e1, 0), evs[m]
    assert t.query("SELECT count(*) FROM event_alerts WHERE event_id = ANY(%s)",
                   ([e2, e3],)) == [(0,)]
    assert t.query("SELECT count(*) FROM event_alerts WHERE event_id = %s", (e1,)) == [(3,)]
    assert t.query("SELECT count(*) FROM entity_alerts WHERE event_id = ANY(%s)",
                   ([e2, e3],)) == [(0,)]
    assert {r[0] for r in t.query("SELECT DISTINCT alert_id FROM entity_alerts "
                                  "WHERE event_id = %s", (e1,))} == \
        {alert_id(acct, n) for n in ("Webshell", "SSH brute force", "Miner")}
    edges = {(r[0], r[1], r[2]) for r in t.query(
        "SELECT src, relation, dst FROM event_edges WHERE event_id = %s", (e1,))}
    assert ("203.0.113.5", "attacked", "w2") in edges, edges
    assert t.query("SELECT count(*) FROM event_edges WHERE event_id = ANY(%s)",
                   ([e2, e3],)) == [(0,)]
    assert t.query("SELECT count(*) FROM event_keys WHERE event_id = ANY(%s)",
                   ([e2, e3],)) == [(0,)]
    snaps = last_snapshots(prefix, 6)
    assert snaps[e2]["status"] == "merged" and snaps[e2]["merged_into"] == e1
    assert snaps[e3]["status"] == "merged" and snaps[e3]["merged_into"] == e1
    assert snaps[e1]["alert_count"] == 3 and snaps[e1]["merged_into"] is None
    log = log_of(cid)
    assert [(r[0], r[1], r[2], r[4]) for r in log] == sorted(
        [(ana, e, "event.merge", "one campaign") for e in (e1, e2, e3)], key=lambda r: r[1])
    assert [r[3] for r in log if r[1] == e2] == [{"status": "merged", "merged_into": e1}]
    assert t.query("SELECT before FROM activity_log WHERE command_id = %s AND object_id = %s",
                   (cid, e2)) == [({"status": "unhandled"},)]
    assert t.query("SELECT service, status FROM commands_applied WHERE command_id = %s",
                   (cid,)) == [("correlator", "ok")]

    # the brute-force IP again, on another host: it would have joined e2 (same attacker
    # IP), it joins the survivor
    t.produce(prefix + "alerts.raw", [
        alert(acct, "SSH brute force 2", "brute_force", "medium", at(5), "w4",
              remote_ip="203.0.113.5", asset_ip="10.0.0.4")], keys=[acct.encode()])
    t.wait_for(lambda: events_of(acct)[e1][3] == 4, timeout=30, what="joined the survivor")
    assert len(events_of(acct)) == 3
    assert event_with(acct, "SSH brute force 2") == e1

    # the responder refuses to act on a merged event and points at the survivor; the
    # survivor takes the analyst's status
    rs = services("responder", prefix, group=f"{prefix}rs",
                  extra_env={"CWPP_PG_DSN": t.RESPONDER_DSN}).start()
    rs.wait_ready()
    for cid, ev in (("cmd-" + tag(), e2), ("cmd-" + tag(), e1)):
        t.produce(prefix + "commands", [COMMAND.encode({
            "command_id": cid, "service": "responder", "type": "event.status", "actor": ana,
            "issued_at_ms": int(time.time() * 1000),
            "payload_json": json.dumps({"event_id": ev, "status": "handling"})})],
            keys=[cid.encode()])
        st, msg, _ = answer(prefix, cid)
        if ev == e2:
            assert st == "error" and f"was merged into {e1}" in msg, msg
        else:
            assert st == "ok", msg
    rows = events_of(acct)
    assert (rows[e2][1], rows[e1][1]) == ("merged", "handling")
    assert rs.stop() == 0
    assert corr.stop() == 0


def test_merge_refusals(services, prefix):
    """Refused, with nothing changed: one event, events of two accounts, a handled or a
    merged event, an actor without permission on the account or a viewer, an unknown
    event."""
    acct, other, u = "acct-" + tag(), "acct-" + tag(), tag()
    ana = t.make_user(f"ana-{u}", acct, other)
    stranger = t.make_user(f"eve-{u}", other)
    viewer = t.make_user(f"vic-{u}", acct, role="viewer")
    mine = t.make_user(f"mo-{u}", acct)  # holds acct only
    start(services, prefix)
    e1, e2, e3, _ = three_events(prefix, acct)
    t.produce(prefix + "alerts.raw", [alert(other, "Other", "virus", "high", at(15), "o1")],
              keys=[other.encode()])
    (o1,) = wait_events(other, 1)
    t.query("UPDATE events SET status = 'handled' WHERE event_id = %s", (e3,))
    cases = {
        "one": ({"event_ids": [e1]}, ana, "event_ids"),
        "accounts": ({"event_ids": [e1, o1]}, ana, "different accounts"),
        "handled": ({"event_ids": [e1, e3]}, ana, "handled"),
        "perm": ({"event_ids": [e1, e2]}, stranger, "Refused"),
        # another tenant's event named beside one's own: refused for the permission, and
        # whether the two are of different accounts is not said
        "tenant": ({"event_ids": [e1, o1]}, mine, f"permission on account \"{other}\""),
        "viewer": ({"event_ids": [e1, e2]}, viewer, "Refused"),
        "unknown": ({"event_ids": [e1, "ev-" + "0" * 32]}, ana, "does not exist"),
    }
    ids = {k: f"cmd-{k}-{u}" for k in cases}
    for k, (payload, actor, _) in cases.items():
        send(prefix, ids[k], "event.merge", payload, actor)
    got = answers(prefix, {i: 1 for i in ids.values()})
    for k, (_, _, words) in cases.items():
        assert ids[k] in got, k
        r = got[ids[k]][0]
        assert r["status"] == "error" and words in r["message"], (k, r["message"])
    assert "different accounts" not in got[ids["tenant"]][0]["message"]
    # a merged event cannot be merged again
    ok = f"cmd-ok-{u}"
    send(prefix, ok, "event.merge", {"event_ids": [e1, e2]}, ana)
    assert answer(prefix, ok)[0] == "ok"
    again = f"cmd-again-{u}"
    send(prefix, again, "event.merge", {"event_ids": [e1, e2]}, ana)
    status, msg, _ = answer(prefix, again)
    assert status == "error" and "merged" in msg, msg
    evs = events_of(acct)
    assert (evs[e3][1], evs[e3][3]) == ("handled", 1)
    assert (evs[e1][3], evs[e2][1]) == (2, "merged")
    assert events_of(other)[o1][1] == "unhandled"
    assert t.query("SELECT count(*) FROM activity_log WHERE command_id = ANY(%s)",
                   (list(ids.values()) + [again],)) == [(0,)]


# ---------------------------------------------------------------------- detach

def test_detach_moves_alerts_into_a_new_event(services, prefix):
    """event.detach: the alerts leave their event into a new event; both are recounted
    from their members (entities, graph, keys: a key only the detached alerts hold goes
    with them); the change is logged; refusals leave everything as it was."""
    acct, u = "acct-" + tag(), tag()
    ana = t.make_user(f"ana-{u}", acct)
    corr = start(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Miner", "virus", "critical", at(30), "h9", source="virus_scan",
              file={"path": "/tmp/xmr", "md5": t.md5hex(acct + "x")}),
        alert(acct, "Port scan", "network_attack", "low", at(29), "h9",
              remote_ip="192.0.2.77"),
        alert(acct, "Odd shell", "malicious_process", "medium", at(28), "h9",
              process={"path": "/bin/odd", "user": "www"}),
    ], keys=[acct.encode()] * 3)
    t.wait_for(lambda: sum(e[3] for e in events_of(acct).values()) == 3, timeout=60,
               what="three alerts")
    (eid,) = events_of(acct)
    scan, odd = alert_id(acct, "Port scan"), alert_id(acct, "Odd shell")
    cid = "cmd-detach-" + u
    send(prefix, cid, "event.detach", {"event_id": eid, "alert_ids": [scan, odd],
                                       "remark": "not the same story"}, ana)
    status, msg, res = answer(prefix, cid)
    assert status == "ok", msg
    nid = res["new_event_id"]
    assert res == {"event_id": eid, "new_event_id": nid, "alerts": 2}
    evs = events_of(acct)
    assert (evs[eid][1], evs[eid][3], evs[eid][4], evs[eid][6]) == ("unhandled", 1, 1,
                                                                      "critical")
    assert (evs[nid][1], evs[nid][3], evs[nid][4], evs[nid][6]) == ("unhandled", 2, 2,
                                                                      "medium")
    assert {r[0] for r in t.query("SELECT alert_id FROM event_alerts WHERE event_id = %s",
                                  (nid,))} == {scan, odd}
    assert {r[0] for r in t.query("SELECT DISTINCT alert_id FROM entity_alerts "
                                  "WHERE event_id = %s", (nid,))} == {scan, odd}
    assert t.query("SELECT count(*) FROM entity_alerts WHERE event_id = %s AND "
                   "alert_id = ANY(%s)", (eid, [scan, odd])) == [(0,)]
    assert all(r[0] in (scan, odd) for r in t.query(
        "SELECT alert_id FROM event_edges WHERE event_id = %s", (nid,)))
    assert t.query("SELECT count(*) FROM event_edges WHERE event_id = %s AND "
                   "alert_id = ANY(%s)", (eid, [scan, odd])) == [(0,)]
    keys = {r[0]: (r[1], r[2]) for r in t.query(
        "SELECT key, event_id, alert_id FROM event_keys WHERE event_id IN (%s, %s)",
        (eid, nid))}
    assert any("192.0.2.77" in k and v[0] == nid for k, v in keys.items()), keys
    assert any("h9" in k and v[0] == eid for k, v in keys.items()), keys  # the asset stays
    snaps = last_snapshots(prefix, 3)
    assert snaps[nid]["alert_count"] == 2 and snaps[eid]["alert_count"] == 1
    log = log_of(cid)
    assert [(r[0], r[1], r[2], r[4]) for r in log] == sorted(
        [(ana, eid, "event.detach", "not the same story"),
         (ana, nid, "event.detach", "not the same story")], key=lambda r: r[1])

    # refusals: an alert not in the event, every alert of the event
    miner = alert_id(acct, "Miner")
    bad, all_ = "cmd-bad-" + u, "cmd-all-" + u
    send(prefix, bad, "event.detach", {"event_id": eid, "alert_ids": [scan]}, ana)
    send(prefix, all_, "event.detach", {"event_id": eid, "alert_ids": [miner]}, ana)
    got = answers(prefix, {bad: 1, all_: 1})
    assert got[bad][0]["status"] == "error" and "is not in event" in got[bad][0]["message"]
    assert got[all_][0]["status"] == "error" and "must stay" in got[all_][0]["message"]
    assert [(e[3]) for e in sorted(events_of(acct).values())] == \
        [e[3] for e in sorted(evs.values())]
    assert corr.stop() == 0


# -------------------------------------------------------------------- crashes

def test_kill9_mid_merge_applies_the_merge_once(services, prefix):
    """The correlator dies (SIGKILL) in the middle of a merge, its changes written but not
    committed: nothing of it stays; the restarted correlator applies it once and answers
    once, with exact counts."""
    acct, u = "acct-" + tag(), tag()
    ana = t.make_user(f"ana-{u}", acct)
    corr = start(services, prefix, faults="correlator_merge_kill:1")
    e1, e2, e3, _ = three_events(prefix, acct)
    cid = "cmd-kill-" + u
    send(prefix, cid, "event.merge", {"event_ids": [e1, e2, e3], "remark": "crash"}, ana)
    t.wait_for(lambda: corr.proc.poll() is not None, timeout=60, what="the correlator died")
    assert corr.proc.poll() == -9
    evs = events_of(acct)
    assert all(e[1] == "unhandled" and e[3] == 1 for e in evs.values()), evs
    assert t.query("SELECT count(*) FROM commands_applied WHERE command_id = %s",
                   (cid,)) == [(0,)]
    corr = start_correlator(services, prefix)
    status, msg, res = answer(prefix, cid)
    assert status == "ok", msg
    got = answers(prefix, {cid: 1}, timeout=10, settle=3)
    assert len(got[cid]) == 1, got[cid]
    evs = events_of(acct)
    assert (evs[e1][1], evs[e1][3], evs[e1][4], evs[e1][5]) == ("unhandled", 3, 3, 3)
    assert [(evs[m][1], evs[m][2], evs[m][3]) for m in (e2, e3)] == [("merged", e1, 0)] * 2
    assert t.query("SELECT count(*), count(DISTINCT alert_id) FROM event_alerts "
                   "WHERE event_id = ANY(%s)", ([e1, e2, e3],)) == [(3, 3)]
    n_ent = t.query("SELECT count(*) FROM entity_alerts WHERE event_id = %s", (e1,))[0][0]
    assert n_ent == t.query("SELECT count(*) FROM (SELECT DISTINCT entity_type, value, "
                            "asset_id, alert_id FROM entity_alerts WHERE event_id = ANY(%s)) x",
                            ([e1, e2, e3],))[0][0]
    assert len(log_of(cid)) == 3
    assert t.query("SELECT count(*) FROM commands_applied WHERE command_id = %s",
                   (cid,)) == [(1,)]
    assert corr.stop() == 0


# ------------------------------------------------ whitelist and event membership

def test_a_whitelisted_alert_leaves_its_event_and_removal_brings_it_back(services, prefix):
    """The whole path, whitelist-filter and correlator together: an alert added to the
    whitelist leaves its event (counts and entities recomputed), and removed from the
    whitelist it is Unhandled again and joins under the normal rules without counting an
    occurrence (before: it stayed in its event, and the removal added an occurrence)."""
    corr = start(services, prefix)
    acct = "acct-" + tag()
    ana = t.make_user("ana-" + tag(), acct)
    md5 = t.md5hex(acct + "x")
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Webshell", "webshell", "high", at(30), "w1",
              file={"path": "/var/www/s.php", "md5": t.md5hex(acct + "s")}),
        alert(acct, "Dropper", "virus", "high", at(20), "w1",
              file={"path": "/tmp/drop", "md5": md5}),
    ], keys=[acct.encode()] * 2)
    (eid,) = wait_events(acct, 1)
    t.wait_for(lambda: events_of(acct)[eid][3] == 2, timeout=30, what="two alerts")
    drop = alert_id(acct, "Dropper")

    def wl(typ, payload):
        cid = "cmd-" + tag()
        t.produce(prefix + "commands", [COMMAND.encode({
            "command_id": cid, "service": "whitelist", "type": typ, "actor": ana,
            "issued_at_ms": int(time.time() * 1000), "payload_json": json.dumps(payload)})],
            keys=[cid.encode()])
        st, msg, _ = answer(prefix, cid)
        assert st == "ok", msg

    def files():
        return sorted(r[0] for r in t.query(
            "SELECT value FROM entity_alerts WHERE event_id = %s AND entity_type = 'file'",
            (eid,)))

    wl("whitelist.add_alert", {"alert_id": drop, "remark": "our own tool"})
    t.wait_for(lambda: events_of(acct)[eid][3] == 1, timeout=30, what="the alert left")
    assert t.query("SELECT status FROM alerts WHERE alert_id = %s", (drop,))[0][0] == \
        "manually_whitelisted"
    assert t.query("SELECT count(*) FROM event_alerts WHERE alert_id = %s", (drop,))[0][0] == 0
    assert files() == ["/var/www/s.php"]
    assert events_of(acct)[eid][4] == 1  # occurrences: the webshell's only

    wl("whitelist.remove_alerts", {"alert_ids": [drop], "remark": "not ours after all"})
    t.wait_for(lambda: events_of(acct)[eid][3] == 2, timeout=30, what="the alert back")
    assert t.query("SELECT status FROM alerts WHERE alert_id = %s", (drop,))[0][0] == "unhandled"
    assert files() == ["/tmp/drop", "/var/www/s.php"]
    time.sleep(2)
    assert events_of(acct)[eid][4] == 2, "the removal counted as an occurrence"
    assert len(events_of(acct)) == 1
    assert corr.stop() == 0
