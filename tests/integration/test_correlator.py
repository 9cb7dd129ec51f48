# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-correlator on the real local Kafka broker and PostgreSQL:
attack stories go through the real ingest and whitelist-filter; events are read back from
PostgreSQL and from cwpp.events / cwpp.notifications with third-party clients
(confluent-kafka, python3-avro). Each test names the behaviour it pins down (docs/architecture.md
"Security events", "Entities", "Assessment"; docs/correlator.md).

Every test uses accounts of its own (a random tag), so tests never see each other's
events in the shared database."""
import hashlib
import json
import os
import random
import signal
import string
import subprocess
import time
import uuid
import zlib

import pytest

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag

EVENT = t.AvroType("event")
NOTE = t.AvroType("notification")
ALERT = t.AvroType("alert")
REJECTED = t.AvroType("rejected_record")


def start_pipeline(services, prefix, correlators=1, dsn=None, group=None, filt=True):
    started = []
    if filt:
        started.append(services("ingest", prefix).start())
        started.append(services("whitelist-filter", prefix, group=f"{prefix}wl",
                                extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN}).start())
    cs = [services("correlator", prefix, group=group or f"{prefix}corr",
                   extra_env={"CWPP_PG_DSN": dsn or t.CORRELATOR_DSN}).start()
          for _ in range(correlators)]
    for s in started + cs:
        s.wait_ready()
    return cs


def events_of(account, dsn=None):
    return t.query("SELECT event_id, name, level, status, alert_count, occurrences, asset_count, "
                   "stages, sources, urgency, assessment, predecessor "
                   "FROM events WHERE account_id = %s ORDER BY first_seen, event_id",
                   (account,), dsn=dsn)


def wait_alerts(account, n, dsn=None, timeout=60):
    """Waits until the account's events hold n occurrences in all."""
    def done():
        r = t.query("SELECT coalesce(sum(occurrences), 0) FROM events WHERE account_id = %s",
                    (account,), dsn=dsn)
        return r[0][0] >= n
    t.wait_for(done, timeout=timeout, what=f"{n} occurrences in events of {account}")


def edges_of(event_id):
    return {(r[0], r[1], r[2], r[3], r[4]) for r in t.query(
        "SELECT src_type, src, relation, dst_type, dst FROM event_edges WHERE event_id = %s",
        (event_id,))}


def codes(assessment):
    return [r["code"] for r in assessment.get("reasons", [])]


# ---------------------------------------------------------------------- stories

def test_attack_story_becomes_one_event_with_chain_and_act_now(services, prefix):
    """Brute force, then a logon from the same IP, then a malware download, then the same
    file on a second asset (lateral move): one event, its stages, chain edges, and an
    assessment that says act now, with the reasons."""
    acct, ip, md5 = "acct-" + tag(), "203.0.113.77", t.md5hex("miner" + tag())
    start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "SSH brute force", "brute_force", "medium", at(30), "db1", "database",
              "TA0006", remote_ip=ip, logon={"ip": ip, "user": "root"},
              source="logon_monitor"),
        alert(acct, "Abnormal logon", "abnormal_logon", "high", at(28), "db1", "database",
              "TA0001", logon={"ip": ip, "user": "oracle"}, source="logon_monitor"),
        alert(acct, "Malware downloaded", "virus", "critical", at(26), "db1", "database",
              "TA0002", defense="failed", remote_ip=ip,
              file={"path": "/tmp/.x/miner", "md5": md5},
              process={"path": "/usr/bin/curl", "user": "oracle"}, source="virus_scan"),
        alert(acct, "Malicious process", "malicious_process", "high", at(25), "app1",
              "application", "TA0008", file={"path": "/tmp/.x/miner", "md5": md5},
              process={"path": "/tmp/.x/miner", "user": "www"}, source="process_monitor"),
    ], keys=[acct.encode()] * 4)
    wait_alerts(acct, 4)
    evs = events_of(acct)
    assert len(evs) == 1, evs
    (eid, name, level, status, alerts, occ, assets, stages, sources, urgency, assessment,
     pred) = evs[0]
    assert (name, level, status, alerts, occ, assets) == ("Malware downloaded", "critical",
                                                          "unhandled", 4, 4, 2)
    assert stages == ["TA0006", "TA0001", "TA0002", "TA0008"]
    assert set(sources) == {"logon_monitor", "virus_scan", "process_monitor"}
    assert urgency == "act_now"
    for c in ("core_asset", "defense_failed", "escalation", "widening_scope",
              "authoritative_source"):
        assert c in codes(assessment), (c, assessment)
    esc = [r["text"] for r in assessment["reasons"] if r["code"] == "escalation"][0]
    assert "brute_force probe" in esc and "3 related alerts" in esc
    assert pred is None

    # every association has its reason, shown to analysts
    reasons = dict(t.query("SELECT a.name, ea.reason FROM event_alerts ea JOIN alerts a "
                           "USING (alert_id) WHERE ea.event_id = %s", (eid,)))
    assert reasons["SSH brute force"].startswith("opens a new event")
    assert reasons["Abnormal logon"].startswith(f"same attacker IP {ip} as alert al-")
    assert reasons["Malicious process"].startswith(f"same file hash {md5} as alert al-")

    edges = edges_of(eid)
    for e in [("ip", ip, "logged_on_to", "host", "db1"),
              ("ip", ip, "used_account", "host_account", "root"),
              ("host_account", "oracle", "logged_on_to", "host", "db1"),
              ("process", "/usr/bin/curl", "wrote", "file", "/tmp/.x/miner"),
              ("host", "db1", "ran", "process", "/usr/bin/curl"),
              ("host", "db1", "connected_to", "ip", ip),
              ("host", "app1", "ran", "process", "/tmp/.x/miner")]:
        assert e in edges, (e, edges)

    # entities and their 30-day counts
    ents = {(r[0], r[1]): r[2:] for r in t.query(
        "SELECT entity_type, value, events, alerts, assets FROM entity_stats_30d "
        "WHERE account_id = %s", (acct,))}
    assert ents[("ip", ip)] == (1, 3, 1)
    assert ents[("host", "db1")][:2] == (1, 3) and ents[("host", "app1")][:2] == (1, 1)
    assert ents[("file", "/tmp/.x/miner")][:2] == (1, 2)

    # the snapshot on cwpp.events and the notification(s), read by a third-party client
    snaps = [EVENT.decode(m.value()) for m in t.consume(prefix + "events", 1, settle=2)
             if m.key() == eid.encode()]
    last = snaps[-1]
    assert (last["alert_count"], last["urgency"], last["level"], last["status"]) == \
        (4, "act_now", "critical", "unhandled")
    assert {a["asset_id"] for a in last["affected_assets"]} == {"db1", "app1"}
    assert [s["version"] for s in snaps] == sorted(s["version"] for s in snaps)
    notes = [NOTE.decode(m.value()) for m in t.consume(prefix + "notifications", 1, settle=2)]
    mine = [n for n in notes if n["event_id"] == eid]
    assert mine[0]["kind"] == "event_opened"
    ranks = ["low", "medium", "high", "act_now"]
    assert [ranks.index(n["urgency"]) for n in mine] == sorted(
        {ranks.index(n["urgency"]) for n in mine})
    assert mine[-1]["urgency"] == "act_now"
    assert all(n["kind"] == "urgency_raised" for n in mine[1:])


def test_quiet_single_alert_and_precision_defence(services, prefix):
    """A single old alert opens its own event of low urgency and notifies once; an event of
    precision-defence alerts only is stored but never notifies."""
    acct = "acct-" + tag()
    start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Suspicious cron entry", "persistence", "low", at(3 * 24 * 60), "web1",
              "web", defense="blocked"),
        alert(acct, "Ransomware blocked", "virus", "critical", at(5), "app9", "application",
              defense="precision_defense", file={"path": "/opt/x.bin", "md5": t.md5hex(acct)},
              source="virus_scan"),
    ], keys=[acct.encode()] * 2)
    wait_alerts(acct, 2)
    evs = {e[1]: e for e in events_of(acct)}
    assert len(evs) == 2
    quiet = evs["Suspicious cron entry"]
    assert (quiet[4], quiet[9]) == (1, "low")
    assert "recent_activity" not in codes(quiet[10])
    pd = evs["Ransomware blocked"]
    assert codes(pd[10]) == ["precision_defense"] and pd[9] == "low"
    notes = [NOTE.decode(m.value()) for m in t.consume(prefix + "notifications", 1, settle=3)]
    assert [(n["event_id"], n["kind"]) for n in notes] == [(quiet[0], "event_opened")]
    # the precision-defence alert keeps its status
    st = t.query("SELECT status FROM alerts WHERE account_id = %s AND name = %s",
                 (acct, "Ransomware blocked"))
    assert st == [("handled",)]


def test_a_recurring_alert_stays_in_its_entities_30_day_figures(services, prefix):
    """An alert first seen 35 days ago that recurs now is an alert of the last 30 days: its
    entities' 30-day figures count it (a recurrence moves their last_seen)."""
    acct = "acct-" + tag()
    ip = "203.0.113.77"
    start_pipeline(services, prefix)

    def stats():
        return t.query("SELECT entity_type, value, events, alerts FROM entity_stats_30d "
                       "WHERE account_id = %s ORDER BY 1, 2", (acct,))
    old = alert(acct, "Port probe", "network_attack", "medium", at(35 * 24 * 60), "web7",
                remote_ip=ip)
    t.produce(prefix + "alerts.raw", [old], keys=[acct.encode()])
    wait_alerts(acct, 1)
    assert stats() == []  # 35 days old: outside the window
    again = alert(acct, "Port probe", "network_attack", "medium", at(1), "web7", remote_ip=ip)
    t.produce(prefix + "alerts.raw", [again], keys=[acct.encode()])
    wait_alerts(acct, 2)
    evs = events_of(acct)
    assert [(e[4], e[5]) for e in evs] == [(1, 2)]  # one alert, two occurrences
    assert stats() == [("host", "web7", 1, 1), ("ip", ip, 1, 1)]


def test_one_ip_against_three_hosts_recommends_blocking(services, prefix):
    acct, ip = "acct-" + tag(), "198.51.100.23"
    start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "SSH brute force", "brute_force", "high", at(10 - i), f"h{i}",
              remote_ip=ip, source="logon_monitor")
        for i in range(3)], keys=[acct.encode()] * 3)
    wait_alerts(acct, 3)
    evs = events_of(acct)
    assert len(evs) == 1 and evs[0][6] == 3
    a = evs[0][10]
    assert "block_ip" in codes(a)
    assert a["recommendations"] == [{
        "action": "block_ip", "entity_type": "ip", "entity_value": ip,
        "reason": f"targeted attack: {ip} attacked 3 assets; block this IP"}]


def test_handled_event_takes_no_alerts_a_related_one_opens_a_successor(services, prefix):
    """A handled event never takes alerts: a related alert (and a recurrence of one of its
    alerts) opens a new event naming it as predecessor. (The responder sets
    "handled"; here the test sets it in the database the way the responder will.)"""
    acct = "acct-" + tag()
    start_pipeline(services, prefix)
    first = alert(acct, "Webshell", "webshell", "high", at(20), "web7",
                  file={"path": "/var/www/a.php", "md5": t.md5hex(acct + "a")})
    t.produce(prefix + "alerts.raw", [first], keys=[acct.encode()])
    wait_alerts(acct, 1)
    (e1,) = [e[0] for e in events_of(acct)]
    t.query("UPDATE events SET status = 'handled' WHERE event_id = %s", (e1,))
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Reverse shell", "malicious_process", "high", at(19), "web7",
              process={"path": "/bin/nc", "user": "www"}),
        first], keys=[acct.encode()] * 2)
    wait_alerts(acct, 3)
    evs = events_of(acct)
    assert len(evs) == 2, evs
    e2 = [e for e in evs if e[0] != e1][0]
    assert e2[11] == e1 and e2[4] == 2 and e2[5] == 2
    old = [e for e in evs if e[0] == e1][0]
    assert (old[3], old[4], old[5]) == ("handled", 1, 1)
    reason = t.query("SELECT ea.reason FROM event_alerts ea JOIN alerts a USING (alert_id) "
                     "WHERE ea.event_id = %s AND a.name = 'Reverse shell'", (e2[0],))[0][0]
    assert f"related event {e1}" in reason and "is handled" in reason


def accepted_by_name(prefix, n):
    """The Alert records on alerts.accepted (at least n), by alert name (the latest)."""
    return {r["name"]: r for r in (ALERT.decode(m.value())
                                   for m in t.consume(prefix + "alerts.accepted", n))}


def snapshots_of(prefix, event_id, n=1):
    return [s for s in (EVENT.decode(m.value()) for m in t.consume(prefix + "events", n, settle=2))
            if s["event_id"] == event_id]


def test_a_whitelisted_alert_leaves_its_event_and_a_restored_one_rejoins(services, prefix):
    """whitelist-filter sends an alert whitelisted after it was accepted with transition
    whitelisted: it leaves its event (membership, entities, graph edges and keys only it
    brought) and the event's figures, level and assessment are rebuilt from the alerts
    left, with a snapshot. Removed from the whitelist (transition restored), it joins
    again under the normal rules without adding an occurrence; restored while still a
    member, nothing moves."""
    acct, md5, ip = "acct-" + tag(), t.md5hex("leave" + tag()), "198.51.100.23"
    (c,) = start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Miner dropped", "virus", "critical", at(30), "web9", tactic="TA0002",
              source="virus_scan", file={"path": "/tmp/m", "md5": md5}),
        alert(acct, "SSH brute force", "brute_force", "medium", at(29), "web9",
              tactic="TA0006", remote_ip=ip)], keys=[acct.encode()] * 2)
    wait_alerts(acct, 2)
    (ev,) = events_of(acct)
    eid = ev[0]
    assert (ev[2], ev[4], ev[5]) == ("critical", 2, 2), ev
    recs = accepted_by_name(prefix, 2)
    virus, brute = recs["Miner dropped"], recs["SSH brute force"]
    hash_key = t.query("SELECT key FROM event_keys WHERE event_id = %s AND alert_id = %s "
                       "AND key LIKE %s", (eid, virus["alert_id"], "%" + md5 + "%"))
    assert hash_key, "the virus alert brought its hash key"

    t.produce(prefix + "alerts.accepted",
              [ALERT.encode(dict(virus, status="manually_whitelisted",
                                 transition="whitelisted"))], keys=[acct.encode()])
    t.wait_for(lambda: events_of(acct)[0][4] == 1, timeout=30, what="the alert left")
    (ev,) = events_of(acct)
    assert (ev[2], ev[3], ev[4], ev[5], ev[6]) == ("medium", "unhandled", 1, 1, 1), ev
    assert ev[7] == ["TA0006"] and ev[8] == ["ids"], ev
    assert t.query("SELECT alert_id FROM event_alerts WHERE event_id = %s", (eid,)) == \
        [(brute["alert_id"],)]
    assert t.query("SELECT count(*) FROM entity_alerts WHERE alert_id = %s",
                   (virus["alert_id"],)) == [(0,)]
    assert all(r[0] == brute["alert_id"] for r in t.query(
        "SELECT alert_id FROM event_edges WHERE event_id = %s", (eid,)))
    assert ("file", md5) not in {(e[3], e[4]) for e in edges_of(eid)}
    assert ("ip", ip, "attacked", "host", "web9") in edges_of(eid)
    keys = t.query("SELECT key, alert_id FROM event_keys WHERE event_id = %s", (eid,))
    assert keys and all(k[1] == brute["alert_id"] for k in keys), keys
    assert not any(md5 in k[0] for k in keys), keys
    # one or two snapshots of the two alerts (one batch or two), then the one of the
    # leave: at least two records, the last read within the settle time
    snaps = snapshots_of(prefix, eid, 2)
    assert snaps[-1]["alert_count"] == 1 and snaps[-1]["level"] == "medium", snaps[-1]
    # not a dead letter
    assert not [m for m in t.consume(prefix + "alerts.rejected", 0, timeout=3, settle=1)]

    restored = dict(virus, status="unhandled", transition="restored")
    t.produce(prefix + "alerts.accepted", [ALERT.encode(restored)], keys=[acct.encode()])
    t.wait_for(lambda: events_of(acct)[0][4] == 2, timeout=30, what="the alert rejoined")
    (ev,) = events_of(acct)
    assert len(events_of(acct)) == 1 and ev[11] is None, ev
    assert (ev[2], ev[4], ev[5]) == ("critical", 2, 2), ev
    assert t.query("SELECT count(*) FROM entity_alerts WHERE alert_id = %s",
                   (virus["alert_id"],))[0][0] > 0
    # restored again while a member: its status only, no occurrence, no new event
    t.produce(prefix + "alerts.accepted", [ALERT.encode(restored)], keys=[acct.encode()])
    time.sleep(3)
    assert [(e[4], e[5]) for e in events_of(acct)] == [(2, 2)]
    assert t.metrics(c)["cwpp_correlator_alerts_left_total"] == 1
    assert c.stop() == 0


def test_a_whitelisted_alert_that_was_the_only_one_leaves_an_empty_event(services, prefix):
    """The event of a whitelisted alert that was its only alert keeps its id and status
    with 0 alerts and no keys: it takes no alerts; restoring the alert brings it back."""
    acct = "acct-" + tag()
    (c,) = start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [alert(acct, "Lonely", "virus", "high", at(10), "h5")],
              keys=[acct.encode()])
    wait_alerts(acct, 1)
    (ev,) = events_of(acct)
    rec = accepted_by_name(prefix, 1)["Lonely"]
    t.produce(prefix + "alerts.accepted",
              [ALERT.encode(dict(rec, status="automatically_whitelisted",
                                 transition="whitelisted"))], keys=[acct.encode()])
    t.wait_for(lambda: events_of(acct)[0][4] == 0, timeout=30, what="the event emptied")
    (e2,) = events_of(acct)
    assert (e2[0], e2[3], e2[4], e2[5], e2[6]) == (ev[0], "unhandled", 0, 0, 0), e2
    assert t.query("SELECT count(*) FROM event_keys WHERE event_id = %s", (ev[0],)) == [(0,)]
    t.produce(prefix + "alerts.accepted",
              [ALERT.encode(dict(rec, status="unhandled", transition="restored"))],
              keys=[acct.encode()])
    t.wait_for(lambda: events_of(acct)[0][4] == 1, timeout=30, what="the alert restored")
    assert [(e[0], e[4], e[5]) for e in events_of(acct)] == [(ev[0], 1, 1)]
    assert c.stop() == 0


def test_a_handled_alert_recurring_after_its_event_is_unhandled_in_the_successor(
        services, prefix):
    """A handled alert that recurs after its event was handled joins the successor event
    as Unhandled: its handling info is cleared (the previous handling stays in the
    activity log, with the change logged by the correlator), so the successor's own
    Handled cascade handles it."""
    acct = "acct-" + tag()
    (c,) = start_pipeline(services, prefix)
    first = alert(acct, "Webshell", "webshell", "high", at(20), "web8",
                  file={"path": "/var/www/b.php", "md5": t.md5hex(acct + "b")})
    t.produce(prefix + "alerts.raw", [first], keys=[acct.encode()])
    wait_alerts(acct, 1)
    (e1,) = [e[0] for e in events_of(acct)]
    (aid,) = t.query("SELECT alert_id FROM event_alerts WHERE event_id = %s", (e1,))[0]
    handling = {"event_id": e1, "actor": "alice", "remark": "Handled manually"}
    t.query("UPDATE events SET status = 'handled' WHERE event_id = %s", (e1,))
    t.query("UPDATE alerts SET status = 'handled', handling = %s::jsonb WHERE alert_id = %s",
            (json.dumps(handling), aid))
    again = alert(acct, "Webshell", "webshell", "high", at(5), "web8",
                  file={"path": "/var/www/b.php", "md5": t.md5hex(acct + "b")})
    t.produce(prefix + "alerts.raw", [again], keys=[acct.encode()])
    wait_alerts(acct, 2)
    evs = events_of(acct)
    assert len(evs) == 2, evs
    e2 = [e for e in evs if e[0] != e1][0]
    assert e2[11] == e1 and e2[4] == 1
    t.wait_for(lambda: t.query("SELECT status FROM alerts WHERE alert_id = %s",
                               (aid,))[0][0] == "unhandled", timeout=20, what="unhandled")
    assert t.query("SELECT status, handling FROM alerts WHERE alert_id = %s", (aid,)) == \
        [("unhandled", None)]
    log = t.query("SELECT actor, event_id, action, before, after FROM activity_log "
                  "WHERE object_type = 'alert' AND object_id = %s", (aid,))
    assert log == [("correlator", e2[0], "alert.status",
                    {"status": "handled", "handling": handling}, {"status": "unhandled"})], log
    # the old event keeps its figures and status
    old = [e for e in evs if e[0] == e1][0]
    assert (old[3], old[4]) == ("handled", 1)
    assert t.metrics(c)["cwpp_correlator_alerts_reopened_total"] == 1
    assert c.stop() == 0


def test_accounts_never_share_an_event(services, prefix):
    a1, a2 = "acct-" + tag(), "acct-" + tag()
    start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(a, "Port scan", "network_attack", "low", at(5), "shared-host",
              remote_ip="192.0.2.1") for a in (a1, a2)], keys=[a1.encode(), a2.encode()])
    wait_alerts(a1, 1)
    wait_alerts(a2, 1)
    e1, e2 = events_of(a1), events_of(a2)
    assert len(e1) == 1 and len(e2) == 1 and e1[0][0] != e2[0][0]


# ------------------------------------------------------------ bad input, crashes

def test_bad_records_go_to_the_dead_letter_topic_and_the_service_goes_on(services, prefix):
    """Records on the correlator's input that do not decode, or decode to nonsense (a
    malformed alert id, a time far in the future, a whitelisted alert), go to the
    dead-letter topic with a reason; the alert after them is applied."""
    acct = "acct-" + tag()
    (c,) = start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [alert(acct, "Seed", "virus", "high", at(2), "h1")],
              keys=[acct.encode()])
    wait_alerts(acct, 1)
    (m,) = t.consume(prefix + "alerts.accepted", 1)
    good = ALERT.decode(m.value())
    now = int(time.time() * 1000)
    fresh = dict(good, alert_id="al-" + uuid.uuid4().hex, occurred_at_ms=now - 1000)
    future = dict(good, alert_id="al-" + uuid.uuid4().hex, occurred_at_ms=now + 10 * 86400000)
    listed = dict(good, alert_id="al-" + uuid.uuid4().hex, status="manually_whitelisted")
    badid = dict(good, alert_id="al-NOT-HEX")
    # ids past the contract's bounds would be index keys as they are ("Bounded keys")
    longacct = dict(good, alert_id="al-" + uuid.uuid4().hex, account_id="a" * 129)
    longasset = dict(good, alert_id="al-" + uuid.uuid4().hex,
                     asset=dict(good["asset"], id="h" * 257))
    t.produce(prefix + "alerts.accepted",
              [b"\x00garbage", ALERT.encode(good)[:-3], ALERT.encode(future),
               ALERT.encode(listed), ALERT.encode(badid), ALERT.encode(longacct),
               ALERT.encode(longasset), ALERT.encode(fresh)],
              keys=[acct.encode()] * 8)
    wait_alerts(acct, 2)
    rej = [REJECTED.decode(m.value()) for m in t.consume(prefix + "alerts.rejected", 7)]
    got = sorted((r["reason_code"], r["source_topic"]) for r in rej
                 if r["service"] == "correlator")
    # the malformed id is refused by the Alert decoder itself (values that break the model)
    assert [g[0] for g in got] == ["bad_avro", "bad_avro", "bad_avro", "future_time",
                                   "invalid_alert", "invalid_alert", "whitelisted"], got
    texts = " | ".join(r["reason"] for r in rej)
    assert "alert_id" in texts or "alert id" in texts, texts
    assert "in the future" in texts and "never join events" in texts
    assert all(g[1] == prefix + "alerts.accepted" for g in got)
    assert c.proc.poll() is None
    evs = events_of(acct)
    assert len(evs) == 1 and evs[0][4] == 2  # the seed and the fresh alert, same asset


# ------------------------------------------------------------ bounded index keys

def test_an_occurrence_emitted_twice_upstream_counts_once(services, prefix):
    """Upstream topics are at-least-once: ingest emits again what a redelivery cannot know
    was sent. An Alert record whose occurrence (its running `occurrences`) was applied
    before adds nothing; one that stands for several lost emissions adds them all. The
    alert's figures equal what happened: here 5 occurrences whatever the repeats."""
    acct = "acct-" + tag()
    (c,) = start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [alert(acct, "Seed", "virus", "high", at(2), "h1")],
              keys=[acct.encode()])
    wait_alerts(acct, 1)
    (m,) = t.consume(prefix + "alerts.accepted", 1)
    first = ALERT.decode(m.value())
    assert first["occurrences"] == 1
    # 2 and 3, then 2 and 3 again (repeats), then 5 (4 was lost upstream: 5 stands for both),
    # then 5 again and 1 again
    seqs = [2, 3, 2, 3, 5, 5, 1]
    t.produce(prefix + "alerts.accepted",
              [ALERT.encode(dict(first, occurrences=q, last_seen_ms=first["last_seen_ms"] + q))
               for q in seqs], keys=[acct.encode()] * len(seqs))
    t.wait_for(lambda: t.metrics(c).get("cwpp_correlator_repeats_total", 0) >= 4,
               timeout=30, what="four repeats recognised")
    time.sleep(1)
    (ev,) = events_of(acct)
    assert ev[4] == 1 and ev[5] == 5, ev  # one alert, five occurrences
    assert t.query("SELECT occurrences, seq FROM event_alerts WHERE alert_id = %s",
                   (first["alert_id"],)) == [(5, 5)]
    assert t.metrics(c)["cwpp_correlator_repeats_total"] == 4
    assert c.stop() == 0


def bounded_key(v):
    """cwpp.bounded_key (migration 009, docs/correlator.md "Bounded keys"), in Python."""
    b = v.encode()
    if len(b) <= 512 and not v.startswith("sha256:"):
        return v
    return "sha256:" + hashlib.sha256(b).hexdigest()


def test_a_long_command_line_is_kept_whole_and_correlates(services, prefix):
    """A process without a path is its command line, up to 32 KiB: far past PostgreSQL's
    btree row limit, which made the correlator's batch fail for ever. An alert with a
    5,000-character random command line goes through ingest, whitelist-filter and the
    correlator into an event, whole (stored alert, entity, graph, cwppctl); the normal
    alert after it is correlated too; a second alert with the SAME command line is the
    same entity in the same event. The correlator runs one-record batches on two workers:
    how the loop re-applies a batch whose data the database refused."""
    acct = "acct-" + tag()
    rnd = random.Random()
    cmd = "".join(rnd.choice(string.ascii_letters + string.digits + " /-=.")
                  for _ in range(5000))
    start_pipeline(services, prefix, correlators=0)
    c = services("correlator", prefix, group=f"{prefix}corr",
                 extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN, "CWPP_BATCH_MAX_MESSAGES": "1",
                            "CWPP_CORRELATOR_WORKERS": "2"}).start()
    c.wait_ready()
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Miner started", "malicious_process", "high", at(10), "h1",
              tactic="TA0002", process={"cmdline": cmd, "user": "www"}),
        alert(acct, "Port scan", "port_scan", "medium", at(9), "h1",
              remote_ip="198.51.100.7"),
        alert(acct, "Miner again", "suspicious_process", "high", at(8), "h1",
              process={"cmdline": cmd}),
    ], keys=[acct.encode()] * 3)
    wait_alerts(acct, 3)
    evs = events_of(acct)
    assert len(evs) == 1 and evs[0][4] == 3, evs
    ev = evs[0][0]
    # the stored alerts keep the whole command line
    stored = t.query("SELECT a.name, a.process ->> 'cmdline' FROM alerts a "
                     "JOIN event_alerts ea USING (alert_id) WHERE ea.event_id = %s "
                     "AND a.process ? 'cmdline' ORDER BY a.name", (ev,))
    assert [r[0] for r in stored] == ["Miner again", "Miner started"]
    assert all(r[1] == cmd for r in stored)
    # one entity, whole, under its hashed key, in both alerts
    ents = t.query("SELECT value, value_key, count(DISTINCT alert_id) FROM entity_alerts "
                   "WHERE event_id = %s AND entity_type = 'process' "
                   "GROUP BY value, value_key", (ev,))
    assert len(ents) == 1, [(len(e[0]), e[1], e[2]) for e in ents]
    assert ents[0][0] == cmd and ents[0][1] == bounded_key(cmd) and ents[0][2] == 2
    assert ents[0][1].startswith("sha256:")
    stats = t.query("SELECT alerts, events FROM entity_stats_30d WHERE account_id = %s "
                    "AND entity_type = 'process' AND value_key = %s", (acct, bounded_key(cmd)))
    assert stats == [(2, 1)]
    # the graph's node is the whole command line too
    assert ("host", "h1", "ran", "process", cmd) in edges_of(ev)
    keys = t.query("SELECT dst_key FROM event_edges WHERE event_id = %s AND dst = %s",
                   (ev, cmd))
    assert keys and all(k[0] == bounded_key(cmd) for k in keys)
    # and cwppctl shows it whole
    rc, doc, err = t.cwppctl_json(prefix, "events", "entities", ev)
    assert rc == 0, err
    assert any(e["entity_type"] == "process" and e["value"] == cmd and
               e["stats_30d"]["alerts"] == 2 for e in doc["entities"]), doc
    rc, doc, err = t.cwppctl_json(prefix, "entities", "show", "process", cmd)
    assert rc == 0, err
    assert [x["event_id"] for x in doc["events"]] == [ev], doc
    assert c.proc.poll() is None


def test_a_record_the_database_refuses_says_edata_and_rolls_back(services, prefix):
    """A batch whose data PostgreSQL refuses (here a CHECK constraint a fresh database
    gets for this test: SQLSTATE 23514) is rolled back whole and reported to the loop as
    CWPP_EDATA, not as a transient failure: the correlator logs db_refused with the
    server's reason, does not report the database unreachable, and writes nothing of the
    batch.
    (The loop then applies the batch one record at a time and dead-letters the refused
    record alone as db_refused: libs/kafka, checked by the test after this one.)"""
    acct = "acct-" + tag()
    fresh = t.FreshDatabase()
    try:
        t.query("ALTER TABLE cwpp.entity_alerts ADD CONSTRAINT poison "
                "CHECK (value NOT LIKE 'poison-%%')", dsn=fresh.admin)
        start_pipeline(services, prefix, correlators=0)
        c = services("correlator", prefix, group=f"{prefix}corr",
                     extra_env={"CWPP_PG_DSN": fresh.correlator,
                                "CWPP_CORRELATOR_WORKERS": "2"}).start()
        c.wait_ready()
        t.produce(prefix + "alerts.raw", [
            alert(acct, "Poison", "malicious_process", "high", at(5), "h1",
                  process={"path": "poison-" + tag()}),
        ], keys=[acct.encode()])
        t.wait_for(lambda: any(e.get("event") == "db_refused" or e.get("msg") == "db_refused"
                               or "db_refused" in str(e) for e in c.log_events()),
                   timeout=60, what="db_refused in the correlator's log")
        line = next(e for e in c.log_events() if "db_refused" in str(e))
        assert "23514" in str(line), line
        # the database is up: readiness never blames it (the loop's own "batches are
        # failing" may show while it retries)
        assert "PostgreSQL is not reachable" not in c.http("/readyz")[1]
        assert c.proc.poll() is None
        assert t.query("SELECT count(*) FROM events WHERE account_id = %s", (acct,),
                       dsn=fresh.admin) == [(0,)]
        assert t.query("SELECT count(*) FROM entity_alerts WHERE account_id = %s", (acct,),
                       dsn=fresh.admin) == [(0,)]
        # the rollbacks left the connection clean: once the database takes the data, the
        # next alert is applied on it (with the poison, or after it once the loop has
        # dead-lettered it) and every row is consistent
        t.query("ALTER TABLE cwpp.entity_alerts DROP CONSTRAINT poison", dsn=fresh.admin)
        after = "after-" + tag()
        t.produce(prefix + "alerts.raw", [
            alert(acct, "After", "malicious_process", "high", at(4), "h1",
                  process={"path": after})], keys=[acct.encode()])
        t.wait_for(lambda: t.query("SELECT count(*) FROM entity_alerts WHERE value = %s",
                                   (after,), dsn=fresh.admin)[0][0] == 1,
                   timeout=60, what="the alert after the refused batch applied")
        assert t.query("SELECT sum(alert_count) FROM events WHERE account_id = %s", (acct,),
                       dsn=fresh.admin) == \
            t.query("SELECT count(*) FROM event_alerts ea JOIN events e USING (event_id) "
                    "WHERE e.account_id = %s", (acct,), dsn=fresh.admin)
        assert_no_orphans(fresh.admin)
        assert "PostgreSQL is not reachable" not in c.http("/readyz")[1]
        assert c.stop() == 0
    finally:
        fresh.drop()


def test_a_refused_record_is_dead_lettered_and_the_partition_goes_on(services, prefix):
    """With the loop's isolation: the record the database refuses goes to the dead-letter
    topic as db_refused, and the alert after it on the same partition joins its event."""
    acct = "acct-" + tag()
    fresh = t.FreshDatabase()
    try:
        t.query("ALTER TABLE cwpp.entity_alerts ADD CONSTRAINT poison "
                "CHECK (value NOT LIKE 'poison-%%')", dsn=fresh.admin)
        start_pipeline(services, prefix, dsn=fresh.correlator)
        t.produce(prefix + "alerts.raw", [
            alert(acct, "Seed", "virus", "high", at(6), "h1"),
            alert(acct, "Poison", "malicious_process", "high", at(5), "h1",
                  process={"path": "poison-" + tag()}),
            alert(acct, "After", "port_scan", "medium", at(4), "h1", remote_ip="198.51.100.8"),
        ], keys=[acct.encode()] * 3)
        wait_alerts(acct, 2, dsn=fresh.admin, timeout=30)
        evs = events_of(acct, dsn=fresh.admin)
        assert len(evs) == 1 and evs[0][4] == 2, evs
        rej = [REJECTED.decode(m.value()) for m in t.consume(prefix + "alerts.rejected", 1)]
        assert [r["reason_code"] for r in rej if r["service"] == "correlator"] == ["db_refused"]
    finally:
        fresh.drop()


def test_migration_009_keeps_the_rows_of_older_versions(tmp_path):
    """Migration 009 applies on a database holding rows written before it: every row
    gets its bounded key (long values hashed, short ones as they are), the old primary
    keys' uniqueness carries over, and the rows are found again by the new keys."""
    old_dir = tmp_path / "sql"
    old_dir.mkdir()
    sql = t.REPO / "schemas" / "sql"
    for f in sorted(sql.glob("*.sql")):
        if f.name < "009":
            (old_dir / f.name).write_text(f.read_text())
    name = "cwpp_it_" + uuid.uuid4().hex[:10]
    admin = t.with_dbname(t.ADMIN_DSN, name)
    t.query(f'CREATE DATABASE "{name}"')
    try:
        def migrate(schema_dir):
            env = dict(os.environ, CWPP_PG_ADMIN_DSN=admin, CWPP_SCHEMA_DIR=str(schema_dir))
            subprocess.run([str(t.REPO / "deploy" / "migrate")], env=env, check=True,
                           capture_output=True, timeout=120)
        migrate(old_dir)
        long_path = "/opt/" + "d" * 1500   # fit the old index (under 2,700 bytes)
        rows = [("process", long_path), ("process", "/bin/sh"), ("ip", "203.0.113.5"),
                ("file", "sha256:looks-like-a-key")]
        with t.db(admin) as conn, conn.cursor() as cur:
            for ty, v in rows:
                cur.execute("INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                            "event_id, alert_id, first_seen, last_seen) VALUES ('old', %s, %s, "
                            "'h1', 'ev-old', 'al-old', now(), now())", (ty, v))
            cur.execute("INSERT INTO event_edges (event_id, src_type, src, relation, dst_type, "
                        "dst, alert_id, first_seen, last_seen) VALUES ('ev-old', 'host', 'h1', "
                        "'ran', 'process', %s, 'al-old', now(), now())", (long_path,))
            conn.commit()
        migrate(sql)
        got = dict(t.query("SELECT value, value_key FROM entity_alerts WHERE account_id = 'old'",
                           dsn=admin))
        assert got == {v: bounded_key(v) for _, v in rows}
        assert got[long_path].startswith("sha256:") and got["/bin/sh"] == "/bin/sh"
        assert got["sha256:looks-like-a-key"] != "sha256:looks-like-a-key"
        assert t.query("SELECT dst, dst_key FROM event_edges WHERE event_id = 'ev-old'",
                       dsn=admin) == [(long_path, bounded_key(long_path))]
        assert t.query("SELECT alerts FROM entity_stats_30d WHERE account_id = 'old' AND "
                       "entity_type = 'process' AND value_key = bounded_key(%s)", (long_path,),
                       dsn=admin) == [(1,)]
        # the same entity again is a conflict on the new key, not a second row
        with t.db(admin) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                        "event_id, alert_id, first_seen, last_seen) VALUES ('old', 'process', "
                        "%s, 'h1', 'ev-old', 'al-old', now(), now()) ON CONFLICT (event_id, "
                        "entity_type, value_key, asset_id, alert_id) DO NOTHING", (long_path,))
            assert cur.rowcount == 0
            conn.commit()
    finally:
        conn = t.psycopg2.connect(t.ADMIN_DSN)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


def test_an_event_past_the_snapshot_caps_says_its_lists_are_truncated(services, prefix):
    """One attacker IP against 120 hosts: one event of 120 affected assets. Its snapshot
    on cwpp.events carries the first 100 (CWPP_SNAPSHOT_MAX_ASSETS) and says
    lists_truncated; the events table counts all 120 (docs/correlator.md "Snapshot
    size")."""
    acct, ip, n = "acct-" + tag(), "198.51.100.99", 120
    start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "SSH brute force", "brute_force", "medium", at(60 - i * 0.1),
              f"h{i:03d}", remote_ip=ip, logon={"ip": ip, "user": "root"})
        for i in range(n)], keys=[acct.encode()] * n)
    wait_alerts(acct, n)
    evs = events_of(acct)
    assert len(evs) == 1 and evs[0][4] == n and evs[0][6] == n, evs
    eid = evs[0][0]
    snaps = [EVENT.decode(m.value()) for m in t.consume(prefix + "events", 1, settle=2)
             if m.key() == eid.encode()]
    last = max(snaps, key=lambda x: x["version"])
    assert last["alert_count"] == n
    assert len(last["affected_assets"]) == 100 and last["lists_truncated"] is True
    assert [a["asset_id"] for a in last["affected_assets"]] == [f"h{i:03d}" for i in range(100)]


def workload(acct_prefix, n, seed=7):
    """n upstream alerts over 4 accounts: hosts, IPs, hashes and recurrences drawn so that
    events of several alerts form, and some alerts recur."""
    rnd = random.Random(seed)
    out, keys = [], []
    for i in range(n):
        acct = f"{acct_prefix}{rnd.randrange(4)}"
        host = f"h{rnd.randrange(12)}"
        kind = rnd.choice(["brute_force", "virus", "malicious_process", "abnormal_logon"])
        ip = f"203.0.113.{rnd.randrange(30)}"
        minute = 600 - i * 0.05 - rnd.random()
        if kind == "virus":
            f = f"/tmp/m{rnd.randrange(40)}"
            a = alert(acct, "Virus", "virus", "high", at(minute), host,
                      file={"path": f, "md5": t.md5hex(f)}, source="virus_scan")
        elif kind == "brute_force":
            a = alert(acct, "Brute force", "brute_force", "medium", at(minute), host,
                      remote_ip=ip, logon={"ip": ip, "user": "root"})
        elif kind == "abnormal_logon":
            a = alert(acct, "Abnormal logon", "abnormal_logon", "high", at(minute), host,
                      logon={"ip": ip, "user": f"u{rnd.randrange(5)}"})
        else:
            p = f"/usr/bin/p{rnd.randrange(20)}"
            a = alert(acct, "Malicious process", "malicious_process", "high", at(minute), host,
                      process={"path": p, "user": "www"}, remote_ip=ip)
        out.append(a)
        keys.append(acct.encode())
    return out, keys


def picture(accounts, dsn=None):
    """What the events are: id -> (account, alerts, occurrences, assets, stages,
    predecessor, the alert ids)."""
    rows = t.query(
        "SELECT e.event_id, e.account_id, e.alert_count, e.occurrences, e.asset_count, "
        "e.stages, e.predecessor, array_agg(ea.alert_id ORDER BY ea.alert_id) "
        "FROM events e JOIN event_alerts ea USING (event_id) WHERE e.account_id = ANY(%s) "
        "GROUP BY e.event_id", (list(accounts),), dsn=dsn)
    return {r[0]: r[1:] for r in rows}


ORPHAN_TABLES = ("event_alerts", "event_keys", "entity_alerts", "event_edges", "notifications")


def assert_no_orphans(dsn=None):
    """Every row that hangs off an event has its event (they have no foreign keys since
    migration 004: the correlator writes them in the event's transaction)."""
    for table in ORPHAN_TABLES:
        n = t.query(f"SELECT count(*) FROM {table} x WHERE NOT EXISTS "
                    "(SELECT 1 FROM events e WHERE e.event_id = x.event_id)", dsn=dsn)[0][0]
        assert n == 0, f"{n} rows of {table} point at no event"


def accepted_count(prefix):
    return sum(t.high_watermarks(prefix + "alerts.accepted", 3).values())


def accepted_occurrences(prefix, records):
    """The distinct occurrences among the records on alerts.accepted: upstream services
    may emit a record again (at-least-once), and the correlator counts each (alert_id,
    occurrences) once."""
    msgs = t.consume(prefix + "alerts.accepted", records, settle=0.5)
    return len({(a["alert_id"], a["occurrences"]) for a in (ALERT.decode(m.value()) for m in msgs)})


def test_kill9_replay_and_two_instances_give_the_same_events(services, prefix, tmp_path):
    """The same accepted topic, correlated three ways, gives exactly the same events:
    (1) one instance killed with SIGKILL twice mid-stream and restarted, into the shared
    database; (2) a replay of the topic from the start into an empty database; (3) two
    instances on one consumer group into another empty database."""
    ap = "acct-" + tag() + "-"
    accounts = [f"{ap}{i}" for i in range(4)]
    alerts, keys = workload(ap, 3000)
    start_pipeline(services, prefix, correlators=0)
    t.produce(prefix + "alerts.raw", alerts, keys=keys)
    records = t.wait_for(lambda: (lambda c: c if c >= 3000 else 0)(accepted_count(prefix)),
                         what="3000 accepted records")
    n = accepted_occurrences(prefix, records)

    env = {"CWPP_BATCH_MAX_MESSAGES": "100"}
    c = services("correlator", prefix, group=f"{prefix}corr",
                 extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN, **env}).start()
    for _ in range(2):
        c.wait_ready()
        t.wait_for(lambda: t.query("SELECT count(*) FROM events WHERE account_id = ANY(%s)",
                                   (accounts,))[0][0] > 0, what="some events")
        time.sleep(0.3)
        c.kill9()
        c = services("correlator", prefix, group=f"{prefix}corr",
                     extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN, **env}).start()
    c.wait_ready()

    def total(dsn=None):
        r = t.query("SELECT coalesce(sum(occurrences), 0) FROM events "
                    "WHERE account_id = ANY(%s)", (accounts,), dsn=dsn)
        return r[0][0]
    t.wait_for(lambda: total() >= n, timeout=120, what="every record applied")
    time.sleep(1)
    assert total() == n  # nothing lost, nothing applied twice
    assert_no_orphans()  # killed mid-batch twice: no half-written event
    reference = picture(accounts)
    assert sum(v[2] for v in reference.values()) == n
    assert len(reference) > 8 and max(v[1] for v in reference.values()) > 5

    # the reference ran with the default 2 workers per instance: a single-worker replay
    # and two instances (2 workers each) must give the same events
    for instances, workers in ((1, "1"), (2, "2")):
        fresh = t.FreshDatabase()
        try:
            cs = [services("correlator", prefix, group=f"{prefix}replay{instances}",
                           extra_env={"CWPP_PG_DSN": fresh.correlator,
                                      "CWPP_CORRELATOR_WORKERS": workers, **env}).start()
                  for _ in range(instances)]
            for x in cs:
                x.wait_ready()
            t.wait_for(lambda: total(fresh.admin) >= n, timeout=120,
                       what=f"replay with {instances} instance(s)")
            time.sleep(1)
            assert picture(accounts, fresh.admin) == reference
            assert_no_orphans(fresh.admin)
            for x in cs:
                assert x.stop() == 0
        finally:
            fresh.drop()


def test_a_batch_whose_workers_fail_apart_is_applied_exactly_once(services, prefix):
    """Two workers split each batch by partition; injected database faults fail one
    worker's share while the other's commits. The batch is retried whole: the committed
    share is recognised (replayed, not applied again), nothing is lost or doubled, and
    the events equal a single-worker replay into an empty database."""
    # accounts whose records land on all three partitions (the services' producers use
    # librdkafka's default partitioner: CRC-32 of the key), so every batch is split
    while True:
        ap = "acct-" + tag() + "-"
        accounts = [f"{ap}{i}" for i in range(4)]
        if {zlib.crc32(a.encode()) % 3 for a in accounts} == {0, 1, 2}:
            break
    alerts, keys = workload(ap, 1200, seed=11)
    start_pipeline(services, prefix, correlators=0)
    t.produce(prefix + "alerts.raw", alerts, keys=keys)
    records = t.wait_for(lambda: (lambda c: c if c >= 1200 else 0)(accepted_count(prefix)),
                         what="1200 accepted records")
    n = accepted_occurrences(prefix, records)
    assert all(v > 0 for v in t.high_watermarks(prefix + "alerts.accepted", 3).values())
    # small per-partition fetches and batches that fill (the backlog is there): every
    # batch holds records of all three partitions, so both workers have a share of it
    env = {"CWPP_BATCH_MAX_MESSAGES": "150", "CWPP_CORRELATOR_WORKERS": "2",
           "CWPP_BATCH_MAX_MS": "1000", "CWPP_BATCH_LINGER_MS": "1000",
           "CWPP_KAFKA_PROPERTIES": "session.timeout.ms=6000;heartbeat.interval.ms=500;"
                                    "consumer.fetch.message.max.bytes=4096"}
    # each arming counts on its own: the 4th, 9th and 13th database round trips fail
    # (whichever worker makes them), and twice the second share of a batch fails while
    # the first one commits
    faults = "pg_pipeline:4,pg_pipeline:9,pg_pipeline:13,correlator_share:2,correlator_share:4"
    c = services("correlator", prefix, group=f"{prefix}corr",
                 extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN, "CWPP_FAULTS": faults,
                            **env}).start()
    c.wait_ready()

    def total(dsn=None):
        return t.query("SELECT coalesce(sum(occurrences), 0) FROM events "
                       "WHERE account_id = ANY(%s)", (accounts,), dsn=dsn)[0][0]
    t.wait_for(lambda: total() >= n, timeout=120, what="every record applied")
    time.sleep(1)
    assert total() == n
    m = t.metrics(c)
    assert m["cwpp_correlator_db_errors_total"] >= 3  # the faults did fire
    # (faults may meet in one attempt; the two share faults never do)
    assert m["cwpp_correlator_batch_retries_total"] >= 2
    assert m["cwpp_correlator_replayed_total"] > 0   # committed shares came back
    assert m["cwpp_correlator_alerts_total"] == n    # counted once, when committed
    assert_no_orphans()
    reference = picture(accounts)
    assert c.stop() == 0
    fresh = t.FreshDatabase()
    try:
        r = services("correlator", prefix, group=f"{prefix}one",
                     extra_env={"CWPP_PG_DSN": fresh.correlator, "CWPP_BATCH_MAX_MESSAGES": "150",
                                "CWPP_CORRELATOR_WORKERS": "1"}).start()
        r.wait_ready()
        t.wait_for(lambda: total(fresh.admin) >= n, timeout=120, what="single-worker replay")
        time.sleep(1)
        assert picture(accounts, fresh.admin) == reference
        assert r.stop() == 0
    finally:
        fresh.drop()


def test_sigterm_stops_cleanly_and_metrics_count(services, prefix):
    acct = "acct-" + tag()
    (c,) = start_pipeline(services, prefix)
    t.produce(prefix + "alerts.raw", [
        alert(acct, "Port scan", "network_attack", "low", at(3), "h1", remote_ip="192.0.2.9"),
        alert(acct, "Port scan", "network_attack", "low", at(3), "h1", remote_ip="192.0.2.9"),
    ], keys=[acct.encode()] * 2)
    wait_alerts(acct, 2)
    status, body = c.http("/metrics")
    assert status == 200
    assert "cwpp_correlator_alerts_total 2" in body
    assert "cwpp_correlator_recurrences_total 1" in body
    assert "cwpp_correlator_events_opened_total 1" in body
    c.signal(signal.SIGTERM)
    assert c.proc.wait(30) == 0
    assert any(e.get("event") == "exit" for e in c.log_events())
