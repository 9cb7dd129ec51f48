# SPDX-License-Identifier: Apache-2.0
"""Integration tests of the read-only `cwppctl events ...` and `cwppctl entities show`
verbs on the real local Kafka broker and PostgreSQL.

One story per module goes through the real ingest, whitelist-filter and correlator; the
real cwppctl then reads it as the read-only role, and every answer is checked against
what the correlator wrote (read with the admin role) and against the story itself. Each
test names the behaviour it pins down (docs/architecture.md "Security events", "Entities",
"Assessment", "Limits"; the reference's "Assess a security event"; docs/cwppctl.md).

cwppctl reads through cwpp-api as a user holding both accounts of the story.

The story, in account A (a random tag, so nothing else in the shared database is seen):
  E_old  3 days ago: a virus alert (defence failed) from attacker IP X     -> quiet
  E1     30..25 minutes ago: brute force from X on db1 (database), a logon from X, a
         malware download (defence failed), the same file on app1 (application) calling
         X, and a recurrence of the brute force: act now; X has now touched three
         assets (files1, db1, app1): a targeted attack, "block this IP"
  E_h    10 minutes ago: a process whose path is hostile (quotes, backslash, newline,
         escape sequence, <svg>, &amp;), on web9; set to "handling" afterwards
  E_ret  a port scan on old9; afterwards its occurrence is moved 200 days back
and in account B a port scan from the same IP X on a host also named db1."""
import json
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest

import cwpp_testlib as t
from cwpp_testlib import NOW, alert, at

URGENCIES = ["act_now", "high", "medium", "low"]
HOSTILE = 'a"b\\c\n\x1b[31m<svg onload=alert(1)>&amp;\\'  # ends in a backslash
SVG_NS = "{http://www.w3.org/2000/svg}"


def ctl(*args, env=None):
    """The real cwppctl, as a user holding both accounts of the story, against cwpp-api;
    (exit code, stdout, stderr)."""
    return t.cwppctl(STORY["prefix"], *args, env=env, actor=STORY["reader"])


def ctl_json(*args, env=None):
    rc, out, err = ctl("--json", *args, env=env)
    assert rc == 0, (args, rc, err)
    return json.loads(out)


STORY = {}


@pytest.fixture(scope="module", autouse=True)
def story(tmp_path_factory):
    """Feeds the story through the real pipeline once, waits until the correlator applied
    every occurrence, stops the services, then makes the two changes the responder and
    retention would (E_h handling; E_ret 200 days old)."""
    tmp = tmp_path_factory.mktemp("cwppctl-events")
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=3)
    tg = uuid.uuid4().hex[:8]
    a, b = f"acct-{tg}-a", f"acct-{tg}-b"
    ip, md5 = "203.0.113.66", t.md5hex("dropper" + tg)
    svcs = [t.Service("ingest", prefix, tmp),
            t.Service("whitelist-filter", prefix, tmp, group=f"{prefix}wl",
                      extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN}),
            t.Service("correlator", prefix, tmp, group=f"{prefix}corr",
                      extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN})]
    try:
        for s in svcs:
            s.start()
        for s in svcs:
            s.wait_ready()
        brute = alert(a, "SSH brute force", "brute_force", "medium", at(30), "db1", "database",
                      "TA0006", remote_ip=ip, logon={"ip": ip, "user": "root"},
                      source="logon_monitor")
        t.produce(prefix + "alerts.raw", [
            alert(a, "Trojan dropped", "virus", "high", at(3 * 24 * 60), "files1", "web",
                  "TA0002", defense="failed", remote_ip=ip, source="virus_scan",
                  file={"path": "/srv/old/dropper", "md5": t.md5hex("old" + tg)}),
            brute,
            alert(a, "Abnormal logon", "abnormal_logon", "high", at(28), "db1", "database",
                  "TA0001", logon={"ip": ip, "user": "oracle"}, source="logon_monitor"),
            alert(a, "Malware downloaded", "virus", "critical", at(26), "db1", "database",
                  "TA0002", defense="failed", remote_ip=ip, source="virus_scan",
                  file={"path": "/tmp/.x/miner", "md5": md5},
                  process={"path": "/usr/bin/curl", "user": "oracle"}),
            alert(a, "Malicious process", "malicious_process", "high", at(25), "app1",
                  "application", "TA0008", file={"path": "/tmp/.x/miner", "md5": md5},
                  process={"path": "/tmp/.x/miner", "user": "www"}, remote_ip=ip,
                  source="process_monitor"),
            brute,  # a recurrence: no new alert, one more occurrence
            alert(a, 'Odd "process" <b>', "malicious_process", "medium", at(10), "web9",
                  "web", "TA0002", process={"path": HOSTILE, "user": "www"}),
            alert(a, "Port scan", "network_attack", "low", at(8), "old9",
                  remote_ip="192.0.2.77"),
            alert(b, "Port scan", "network_attack", "low", at(5), "db1", remote_ip=ip),
        ], keys=[a.encode()] * 8 + [b.encode()])

        def applied():
            r = t.query("SELECT account_id, sum(occurrences) FROM events "
                        "WHERE account_id IN (%s, %s) GROUP BY account_id", (a, b))
            return dict(r) == {a: 8, b: 1}
        t.wait_for(applied, timeout=60, what="the story in events")
        for s in svcs:
            assert s.stop() == 0
    finally:
        for s in svcs:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)
    evs = {r[1]: r[0] for r in t.query(
        "SELECT event_id, name FROM events WHERE account_id = %s", (a,))}
    assert set(evs) == {"Trojan dropped", "Malware downloaded", 'Odd "process" <b>',
                        "Port scan"}, evs
    (eb,) = [r[0] for r in t.query("SELECT event_id FROM events WHERE account_id = %s", (b,))]
    STORY.update(prefix=prefix, a=a, b=b, ip=ip, md5=md5, old=evs["Trojan dropped"],
                 reader=t.make_user(f"reader-{tg}", a, b),
                 e1=evs["Malware downloaded"], h=evs['Odd "process" <b>'],
                 ret=evs["Port scan"], eb=eb)
    # the responder sets statuses; retention is a matter of time
    t.query("UPDATE events SET status = 'handling' WHERE event_id = %s", (STORY["h"],))
    t.query("UPDATE events SET first_seen = now() - interval '201 days', "
            "last_seen = now() - interval '200 days' WHERE event_id = %s", (STORY["ret"],))
    yield STORY


def db_event(eid):
    (row,) = t.query("SELECT name, level, status, owner, stages, asset_count, alert_count, "
                     "occurrences, sources, predecessor, urgency, assessment, account_id "
                     "FROM events WHERE event_id = %s", (eid,))
    keys = ["name", "level", "status", "owner", "stages", "asset_count", "alert_count",
            "occurrences", "sources", "predecessor", "urgency", "assessment", "account_id"]
    return dict(zip(keys, row))


def ts(col):
    """A timestamptz column as cwppctl prints it (RFC 3339 UTC, seconds)."""
    return f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


def ids(doc):
    return [e["event_id"] for e in doc["events"]]


# ------------------------------------------------------------------ events list

def test_list_filters_and_newest_first():
    """events list: only the account's events, newest first, each with its overview
    columns as stored; --status, --level, --account and --since/--until narrow it (an
    event is in the range when it was active then: first occurrence <= until and latest
    >= since). --json may follow the verb."""
    s = STORY
    rc, out, err = ctl("events", "list", "--account", s["a"], "--json")
    assert rc == 0, err
    doc = json.loads(out)
    # E_ret is 200 days old: not listed; the rest newest first
    assert ids(doc) == [s["h"], s["e1"], s["old"]]
    last = [e["last_seen"] for e in doc["events"]]
    assert last == sorted(last, reverse=True)
    for e in doc["events"]:
        d = db_event(e["event_id"])
        assert (e["name"], e["level"], e["status"], e["alert_count"], e["asset_count"],
                e["stages"], e["assessed_urgency"]) == \
            (d["name"], d["level"], d["status"], d["alert_count"], d["asset_count"],
             d["stages"], d["urgency"])
        assert e["account_id"] == s["a"]
    assert doc["retention_days"] == 180

    def q(*args):
        return ids(ctl_json("events", "list", "--account", s["a"], *args))
    assert q("--status", "handling") == [s["h"]]
    assert q("--status", "unhandled") == [s["e1"], s["old"]]
    assert q("--status", "failed") == []
    assert q("--level", "critical") == [s["e1"]]
    assert q("--level", "high") == [s["old"]]
    assert q("--level", "medium", "--status", "handling") == [s["h"]]
    assert q("--since", "1d") == [s["h"], s["e1"]]
    assert q("--until", "2d") == [s["old"]]
    assert q("--since", "4d", "--until", "2d") == [s["old"]]
    # E1 ran from 30 to 25 minutes ago (the recurrence included), E_h 10 minutes ago
    assert q("--since", at(20)) == [s["h"]]
    assert q("--until", at(29)) == [s["e1"], s["old"]]
    assert q("--since", at(27), "--until", at(26)) == [s["e1"]]
    midnight = NOW.strftime("%Y-%m-%d")  # a date is 00:00 UTC
    assert q("--since", midnight, "--until", "now") == \
        [x for x, last in ((s["h"], at(10)), (s["e1"], at(25))) if last >= midnight + "T"]
    assert q("--limit", "1") == [s["h"]]
    assert ids(ctl_json("events", "list", "--account", s["b"])) == [s["eb"]]
    # the whole list is newest first too, and holds both accounts' events
    full = ids(ctl_json("events", "list", "--since", "1h", "--limit", "100000"))
    assert {s["h"], s["e1"], s["eb"]} <= set(full) and not {s["old"], s["ret"]} & set(full)

    # the text table: a header, one row per event, the count and the retention
    rc, out, err = ctl("events", "list", "--account", s["a"])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["EVENT", "LEVEL", "STATUS", "URGENCY", "ALERTS"]
    assert [ln.split()[0] for ln in lines[1:4]] == [s["h"], s["e1"], s["old"]]
    row = lines[2].split()
    assert row[1:4] == ["critical", "unhandled", "act_now"] and row[4:6] == ["4", "2"]
    assert "3 events" in out and "180 days" in out


def test_list_leaves_out_events_older_than_the_retention():
    """docs/architecture.md "Limits": events older than 180 days leave the event list, whatever the
    filters say; CWPP_EVENT_RETENTION_DAYS moves the limit. `events show` still finds the
    event and says it is no longer listed."""
    s = STORY
    (age,) = t.query("SELECT extract(day FROM now() - last_seen)::int FROM events "
                     "WHERE event_id = %s", (s["ret"],))[0]
    assert age >= 199
    for extra in ([], ["--since", "300d"], ["--level", "low"], ["--status", "unhandled"]):
        assert s["ret"] not in ids(ctl_json("events", "list", "--account", s["a"], *extra))
    longer = ctl_json("events", "list", "--account", s["a"],
                      env={"CWPP_EVENT_RETENTION_DAYS": "365"})
    assert ids(longer)[-1] == s["ret"] and longer["retention_days"] == 365
    assert s["ret"] not in ids(ctl_json("events", "list", "--account", s["a"],
                                        env={"CWPP_EVENT_RETENTION_DAYS": "199"}))
    doc = ctl_json("events", "show", s["ret"])
    assert doc["in_event_list"] is False
    rc, out, _ = ctl("events", "show", s["ret"])
    assert rc == 0 and "no longer in the event list" in out
    assert ctl_json("events", "show", s["e1"])["in_event_list"] is True


# ------------------------------------------------------------------ events show

def test_show_overview_reasons_and_recommendations():
    """events show: the overview (name, level, status, owner, stages, asset and alert
    counts, first/last occurrence, sources, predecessor) and the urgency assessment with
    every stored reason (code and text) and the recommendations, as the correlator
    stored them; the attack story is act now."""
    s = STORY
    doc = ctl_json("events", "show", s["e1"])
    d = db_event(s["e1"])
    for k in ("name", "level", "status", "owner", "stages", "asset_count", "alert_count",
              "occurrences", "predecessor", "account_id"):
        assert doc[k] == d[k], k
    assert sorted(doc["sources"]) == sorted(d["sources"])
    assert (doc["alert_count"], doc["occurrences"], doc["asset_count"]) == (4, 5, 2)
    assert doc["stages"] == ["TA0006", "TA0001", "TA0002", "TA0008"]
    (first, last) = t.query(f"SELECT {ts('first_seen')}, {ts('last_seen')} FROM events "
                            "WHERE event_id = %s", (s["e1"],))[0]
    assert (doc["first_seen"], doc["last_seen"]) == (first, last)
    assert doc["first_seen"] == at(30)
    # the stored assessment, every reason, nothing added: E1 is recent
    assert doc["quiet"] is False and doc["urgency"] == doc["assessed_urgency"] == d["urgency"]
    assert d["urgency"] == "act_now"
    assert doc["assessment"]["reasons"] == d["assessment"]["reasons"]
    assert doc["assessment"]["recommendations"] == d["assessment"]["recommendations"]
    codes = [r["code"] for r in doc["assessment"]["reasons"]]
    for c in ("core_asset", "defense_failed", "escalation", "authoritative_source",
              "block_ip"):
        assert c in codes
    assert [(r["action"], r["entity_type"], r["entity_value"])
            for r in doc["assessment"]["recommendations"]] == [("block_ip", "ip", s["ip"])]
    assert "quiet" not in codes
    assert doc["assessment"]["assessed_at"].endswith("Z")

    rc, out, err = ctl("events", "show", s["e1"])
    assert rc == 0, err
    assert re.search(r"^Urgency: act_now$", out, re.M)
    for r in d["assessment"]["reasons"]:
        assert re.search(rf"^  {re.escape(r['code'])} +{re.escape(r['text'])}$", out, re.M), r
    assert re.search(r"^Stages +TA0006 > TA0001 > TA0002 > TA0008$", out, re.M)
    assert re.search(r"^Alerts +4 \(5 occurrences\)$", out, re.M)
    assert re.search(r"^Predecessor +\(none\)$", out, re.M)
    (rec,) = d["assessment"]["recommendations"]
    assert f"  block_ip ip {s['ip']}: {rec['reason']}" in out


def test_show_quiet_event_is_shown_one_step_lower():
    """The assessment's "no new related alerts for a long time: lower priority" depends on
    the time of reading: once the latest alert is older than CWPP_CTL_QUIET_HOURS (24),
    `events show` adds the reason "quiet" and shows the urgency one step below the stored
    one (and says so); `events list` shows the same urgency. Checked on the event whose
    only alert is 3 days old and on the one moved 200 days back."""
    s = STORY
    for eid in (s["old"], s["ret"]):
        stored = db_event(eid)["urgency"]
        assert stored != "low", "the story needs an event above low urgency"
        lowered = URGENCIES[URGENCIES.index(stored) + 1]
        doc = ctl_json("events", "show", eid)
        assert doc["quiet"] is True and doc["quiet_after_hours"] == 24
        assert (doc["assessed_urgency"], doc["urgency"]) == (stored, lowered)
        reasons = doc["assessment"]["reasons"]
        assert reasons[:-1] == db_event(eid)["assessment"]["reasons"]
        assert reasons[-1]["code"] == "quiet"
        assert "no new related alerts" in reasons[-1]["text"]
        assert f"shown as {lowered} instead of the assessed {stored}" in reasons[-1]["text"]
        rc, out, _ = ctl("events", "show", eid)
        assert rc == 0
        assert f"Urgency: {lowered} (assessed {stored}; lowered one step" in out
        assert re.search(r"^  quiet +no new related alerts for \d+d \d+h", out, re.M)
    listed = {e["event_id"]: e for e in ctl_json("events", "list", "--account",
                                                 s["a"])["events"]}
    assert listed[s["old"]]["urgency"] == ctl_json("events", "show", s["old"])["urgency"]
    assert listed[s["old"]]["quiet"] is True and listed[s["e1"]]["quiet"] is False
    rc, out, _ = ctl("events", "list", "--account", s["a"])
    assert "one step below the assessment" in out
    # the threshold is a setting: 100 hours and the 3-day-old event is not quiet yet
    doc = ctl_json("events", "show", s["old"], env={"CWPP_CTL_QUIET_HOURS": "100"})
    assert doc["quiet"] is False and doc["urgency"] == doc["assessed_urgency"]
    assert "quiet" not in [r["code"] for r in doc["assessment"]["reasons"]]


# ----------------------------------------------------------------- events alerts

def test_alerts_in_time_order_with_join_reasons():
    """events alerts: the event's alerts in the order they first occurred, each with its
    name, type, status, defence result, occurrences within the event, first/last seen and
    the reason it joined (docs/correlator.md "Every association has its reason")."""
    s = STORY
    doc = ctl_json("events", "alerts", s["e1"])
    rows = t.query(
        "SELECT a.alert_id, a.name, a.type, a.status, a.defense, ea.occurrences, ea.reason, "
        f"{ts('ea.first_seen')}, {ts('ea.last_seen')} FROM event_alerts ea "
        "JOIN alerts a USING (alert_id) WHERE ea.event_id = %s", (s["e1"],))
    db = {r[0]: r[1:] for r in rows}
    got = doc["alerts"]
    assert [a["name"] for a in got] == ["SSH brute force", "Abnormal logon",
                                        "Malware downloaded", "Malicious process"]
    assert [a["first_seen"] for a in got] == [at(30), at(28), at(26), at(25)]
    assert {a["alert_id"] for a in got} == set(db)
    for a in got:
        assert (a["name"], a["type"], a["status"], a["defense"], a["occurrences"],
                a["reason"], a["first_seen"], a["last_seen"]) == db[a["alert_id"]]
    brute, logon, malware, proc = got
    assert brute["occurrences"] == 2 and brute["last_seen"] == at(30)
    assert malware["defense"] == "failed"
    assert brute["reason"].startswith("opens a new event")
    assert logon["reason"] == f"same attacker IP {s['ip']} as alert {brute['alert_id']}"
    assert proc["reason"] == f"same file hash {s['md5']} as alert {malware['alert_id']}"

    rc, out, err = ctl("events", "alerts", s["e1"])
    assert rc == 0, err
    assert out.index("SSH brute force") < out.index("Abnormal logon") < \
        out.index("Malware downloaded") < out.index("Malicious process")
    assert f"joined: {logon['reason']}" in out


# --------------------------------------------------------------- events entities

def test_entities_with_30_day_counts_and_affected_assets():
    """events entities: every entity of the event (type, value, the assets it is on) with
    its 30-day counts of events, alerts and handling tasks from entity_stats_30d;
    --affected: only the affected assets (hosts), with what the alerts say about them.
    The attacker IP is in two events of the account (E_old 3 days ago, E1); account B's
    use of the same IP is not counted."""
    s = STORY
    doc = ctl_json("events", "entities", s["e1"])
    assert doc["affected_only"] is False
    got = {(e["entity_type"], e["value"]): e for e in doc["entities"]}
    want = {(r[0], r[1]) for r in t.query(
        "SELECT DISTINCT entity_type, value FROM entity_alerts WHERE event_id = %s",
        (s["e1"],))}
    assert set(got) == want
    assert {("host", "db1"), ("host", "app1"), ("ip", s["ip"]), ("file", "/tmp/.x/miner"),
            ("process", "/usr/bin/curl"), ("host_account", "root")} <= want
    stats = {(r[0], r[1]): r[2:] for r in t.query(
        "SELECT entity_type, value, events, alerts, tasks, assets FROM entity_stats_30d "
        "WHERE account_id = %s", (s["a"],))}
    for k, e in got.items():
        st = e["stats_30d"]
        assert (st["events"], st["alerts"], st["tasks"], st["assets"]) == stats[k], k
    ip = got[("ip", s["ip"])]
    assert ip["stats_30d"]["events"] == 2 and ip["stats_30d"]["alerts"] == 5
    assert ip["stats_30d"]["assets"] == 3
    assert ip["event_alerts"] == 4 and ip["assets"] == ["app1", "db1"]
    assert got[("file", "/tmp/.x/miner")]["assets"] == ["app1", "db1"]
    assert got[("host", "db1")]["event_alerts"] == 3

    aff = ctl_json("events", "entities", s["e1"], "--affected")
    assert aff["affected_only"] is True
    hosts = {e["value"]: e for e in aff["entities"]}
    assert set(hosts) == {"db1", "app1"}
    assert all(e["entity_type"] == "host" for e in aff["entities"])
    assert hosts["db1"]["asset"]["role"] == "database"
    assert hosts["app1"]["asset"]["role"] == "application"
    assert hosts["db1"]["asset"]["name"] == "db1-name"

    rc, out, err = ctl("events", "entities", s["e1"], "--affected")
    assert rc == 0, err
    rows = [ln.split() for ln in out.splitlines()[1:] if ln.startswith(("db1", "app1"))]
    assert sorted(r[0] for r in rows) == ["app1", "db1"]
    assert [r for r in rows if r[0] == "db1"][0][3] == "database"
    rc, out, _ = ctl("events", "entities", s["e1"])
    ipline = [ln for ln in out.splitlines() if ln.startswith("ip ")][0].split()
    assert ipline[1] == s["ip"] and ipline[-4:] == ["4", "2", "5", "0"]


# ------------------------------------------------------------------ events chain

def test_chain_json_edges_match_event_edges_and_timeline_pace():
    """events chain --format json: the timeline (the alerts in order, with the gap to the
    previous one and whether the pace quickened) and the provenance graph: the event's
    entities as nodes and its event_edges rows as edges between them."""
    s = STORY
    doc = ctl_json("events", "chain", s["e1"])
    assert doc == json.loads(ctl("events", "chain", s["e1"], "--format", "json")[1])
    tl = doc["timeline"]
    assert [x["first_seen"] for x in tl] == [at(30), at(28), at(26), at(25)]
    assert [x["gap_s"] for x in tl] == [None, 120, 120, 60]
    assert [x["pace"] for x in tl] == ["start", "first gap", "steady", "faster"]
    assert doc["span_s"] == 300
    edges = {(r[0], r[1], r[2], r[3], r[4]): r[5:] for r in t.query(
        "SELECT src_type, src, relation, dst_type, dst, alert_id, alerts FROM event_edges "
        "WHERE event_id = %s", (s["e1"],))}
    g = doc["graph"]
    got = {(e["src_type"], e["src"], e["relation"], e["dst_type"], e["dst"]):
           (e["alert_id"], e["alerts"]) for e in g["edges"]}
    assert got == edges and len(edges) >= 7
    nodes = {n["id"]: (n["type"], n["value"]) for n in g["nodes"]}
    assert len(nodes) == len(g["nodes"]) == len(set(nodes.values()))
    for e in g["edges"]:
        assert nodes[e["from"]] == (e["src_type"], e["src"])
        assert nodes[e["to"]] == (e["dst_type"], e["dst"])
    ents = {(r[0], r[1]) for r in t.query(
        "SELECT entity_type, value FROM entity_alerts WHERE event_id = %s", (s["e1"],))}
    ends = {k[:2] for k in edges} | {k[3:5] for k in edges}
    assert set(nodes.values()) == ents | ends

    rc, out, err = ctl("events", "chain", s["e1"])
    assert rc == 0, err
    assert f"{len(nodes)} entities, {len(edges)} relations" in out
    assert re.search(r"\+2m 00s +steady +Malware downloaded", out)
    assert f"ip {s['ip']}  --logged_on_to-->  host db1" in out


def dot_of(eid):
    rc, out, err = ctl("events", "chain", eid, "--format", "dot")
    assert rc == 0, err
    return out


def test_chain_dot_is_a_graphviz_digraph_and_svg_renders_it():
    """--format dot: a Graphviz digraph with one node per entity and one edge per
    relation, which the real `dot` accepts; --format svg: cwppctl pipes it through
    `dot -Tsvg` itself and prints an SVG document carrying the node labels."""
    if shutil.which("dot") is None:
        pytest.fail("Graphviz `dot` is not installed (deploy/local/install-deps installs it)")
    s = STORY
    doc = ctl_json("events", "chain", s["e1"])
    dot = dot_of(s["e1"])
    assert dot.startswith(f'digraph "{s["e1"]}" {{') and dot.rstrip().endswith("}")
    node_lines = re.findall(r"^  (n\d+) \[shape=.*\];$", dot, re.M)
    edge_lines = re.findall(r"^  (n\d+) -> (n\d+) \[label=.*\];$", dot, re.M)
    assert node_lines == [n["id"] for n in doc["graph"]["nodes"]]
    assert edge_lines == [(e["from"], e["to"]) for e in doc["graph"]["edges"]]
    r = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "syntax error" not in r.stderr, r.stderr

    rc, svg, err = ctl("events", "chain", s["e1"], "--format", "svg")
    assert rc == 0, err
    assert re.match(r"(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*<svg\b", svg,
                    re.S)
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    texts = {x.text for x in root.iter(SVG_NS + "text")}
    for n in doc["graph"]["nodes"]:
        assert n["type"] in texts and n["value"] in texts, n
    for e in doc["graph"]["edges"]:  # "relation", or "relation (xN)" when N alerts show it
        want = e["relation"] + (f" (x{e['alerts']})" if e["alerts"] > 1 else "")
        assert want in texts, want
    assert len(root.findall(f".//{SVG_NS}g[@class='node']")) == len(doc["graph"]["nodes"])


def test_hostile_entity_values_are_escaped_in_dot_svg_and_text():
    """Entity values and alert names are upstream input: quotes, backslashes, newlines,
    escape sequences, angle brackets and entities in them never break the DOT text, never
    inject SVG elements, and never reach the terminal raw; JSON keeps them exactly."""
    s = STORY
    doc = ctl_json("events", "chain", s["h"])
    assert ("process", HOSTILE) in {(n["type"], n["value"]) for n in doc["graph"]["nodes"]}
    dot = dot_of(s["h"])
    shown = 'a\\"b\\\\c\\\\n\\\\x1b[31m<svg onload=alert(1)>&amp;amp;\\\\'
    assert f'label="process\\n{shown}"' in dot
    assert f'tooltip="{shown}"' in dot
    assert 'label="Odd \\"process\\" <b>' in dot
    assert "\x1b" not in dot
    # one statement per line: a value's newline never splits one
    for ln in dot.splitlines()[1:-1]:
        assert re.match(r"^  (graph|node|edge|n\d+( -> n\d+)?) \[.*\];$", ln), ln
    r = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr

    rc, svg, err = ctl("events", "chain", s["h"], "--format", "svg")
    assert rc == 0, err
    root = ET.fromstring(svg)  # well-formed XML
    assert len(list(root.iter(SVG_NS + "svg"))) == 1  # nothing injected
    assert "onload" not in {k for el in root.iter() for k in el.attrib}
    visible = 'a"b\\c\\n\\x1b[31m<svg onload=alert(1)>&amp;\\'
    texts = [x.text for x in root.iter(SVG_NS + "text")]
    assert visible in texts, texts
    titles = [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("title")]
    assert visible in titles
    assert 'Odd "process" <b> (' + s["h"] + ")" in texts

    # JSON: the exact bytes; text: escaped, one line per row
    ents = ctl_json("events", "entities", s["h"])
    assert HOSTILE in [e["value"] for e in ents["entities"]]
    rc, out, _ = ctl("events", "entities", s["h"])
    assert rc == 0 and "\x1b" not in out
    assert len(out.splitlines()) == 1 + len(ents["entities"]) + 1
    assert [ln for ln in out.splitlines() if ln.startswith("process ")][0].split()[1] \
        .startswith('a"b\\c\\n\\x1b[31m<svg')
    rc, out, _ = ctl("events", "chain", s["h"])
    assert rc == 0 and "\x1b" not in out and 'a"b\\c\\n\\x1b[31m' in out
    rc, out, _ = ctl("entities", "show", "process", HOSTILE, "--account", s["a"])
    assert rc == 0 and "\x1b" not in out and out.splitlines()[0].startswith("process a\"b\\c\\n")


# ---------------------------------------------------------------- entities show

def test_entities_show_counts_and_events():
    """entities show TYPE VALUE: the entity's 30-day figures per account (events, alerts,
    handling tasks, assets, last seen: entity_stats_30d) and the events it appears in
    (last 180 days, newest first); --account keeps one account."""
    s = STORY
    doc = ctl_json("entities", "show", "ip", s["ip"], "--account", s["a"])
    (row,) = t.query(f"SELECT events, alerts, tasks, assets, {ts('last_seen')} "
                     "FROM entity_stats_30d WHERE account_id = %s AND entity_type = 'ip' "
                     "AND value = %s", (s["a"], s["ip"]))
    (st,) = doc["stats_30d"]
    assert (st["account_id"], st["events"], st["alerts"], st["tasks"], st["assets"],
            st["last_seen"]) == (s["a"], *row)
    assert (st["events"], st["alerts"], st["assets"]) == (2, 5, 3)
    assert [e["event_id"] for e in doc["events"]] == [s["e1"], s["old"]]
    assert doc["events"][0]["entity_alerts"] == 4 and doc["events"][1]["entity_alerts"] == 1
    assert doc["events"][1]["urgency"] == ctl_json("events", "show", s["old"])["urgency"]
    # without --account: both accounts' figures, each its own
    both = ctl_json("entities", "show", "ip", s["ip"])
    per = {x["account_id"]: x for x in both["stats_30d"]}
    assert per[s["b"]]["events"] == 1 and per[s["a"]]["events"] == 2
    assert {s["e1"], s["old"], s["eb"]} <= {e["event_id"] for e in both["events"]}
    # the 200-day-old event is not among an entity's events; its 30-day rows still count
    old9 = ctl_json("entities", "show", "host", "old9", "--account", s["a"])
    assert old9["events"] == [] and old9["stats_30d"][0]["alerts"] == 1
    rc, out, err = ctl("entities", "show", "ip", s["ip"], "--account", s["a"])
    assert rc == 0, err
    assert re.search(rf"^  {re.escape(s['a'])} +2 +5 +0 +3 ", out, re.M)
    assert out.index(s["e1"]) < out.index(s["old"])


# ---------------------------------------------------------------------- errors

@pytest.fixture
def missing_id():
    return "ev-" + uuid.uuid4().hex


ERRORS = [
    # (arguments, environment, exit code, part of the sentence on stderr)
    (["events", "list", "--status", "open"], None, 2, 'unknown event status "open"'),
    (["events", "list", "--level", "severe"], None, 2, 'unknown level "severe"'),
    (["events", "list", "--since", "yesterday"], None, 2, "--since must be a time"),
    (["events", "list", "--until", "2026-13-45"], None, 2, "--until must be a time"),
    (["events", "list", "--since", "1d", "--until", "2d"], None, 2, "is before --since"),
    (["events", "list", "--limit", "0"], None, 2, "--limit must be a number"),
    (["events", "list", "--status"], None, 2, "--status needs a value"),
    (["events", "list", "--colour", "red"], None, 2, 'unknown option "--colour"'),
    (["events", "list"], {"CWPP_EVENT_RETENTION_DAYS": "half"}, 2,
     "CWPP_EVENT_RETENTION_DAYS must be a whole number"),
    (["events", "show", "{missing}"], {"CWPP_CTL_QUIET_HOURS": "0"}, 2,
     "CWPP_CTL_QUIET_HOURS must be a whole number"),
    # a bad setting is refused by every verb, also those that do not use it
    (["events", "chain", "{missing}"], {"CWPP_CTL_QUIET_HOURS": "abc"}, 2,
     "CWPP_CTL_QUIET_HOURS must be a whole number"),
    (["events", "alerts", "{missing}"], {"CWPP_EVENT_RETENTION_DAYS": "0"}, 2,
     "CWPP_EVENT_RETENTION_DAYS must be a whole number"),
    (["events", "entities", "{missing}"], {"CWPP_EVENT_RETENTION_DAYS": "-3"}, 2,
     "CWPP_EVENT_RETENTION_DAYS must be a whole number"),
    (["events", "show"], None, 2, "usage: cwppctl events show"),
    (["events", "show", "{missing}"], None, 1, "no event {missing}"),
    (["events", "alerts", "{missing}"], None, 1, "no event {missing}"),
    (["events", "entities", "{missing}", "--affected"], None, 1, "no event {missing}"),
    (["events", "chain", "{missing}"], None, 1, "no event {missing}"),
    (["events", "chain", "{e1}", "--format", "png"], None, 2, 'unknown format "png"'),
    (["--json", "events", "chain", "{e1}", "--format", "dot"], None, 2, "disagree"),
    (["events", "chain", "{e1}", "--format", "svg"], {"PATH": "{empty}"}, 3,
     "cannot run dot (Graphviz)"),
    (["events", "frobnicate"], None, 2, "usage: cwppctl events list"),
    (["entities", "show", "user", "root"], None, 2, 'unknown entity type "user"'),
    (["entities", "show", "ip"], None, 2, "usage: cwppctl entities show TYPE VALUE"),
    # after "--" even "--json" is the value looked up, not the option
    (["entities", "show", "process", "--", "--json"], None, 1,
     'no process entity "--json"'),
    # "\udcff" is the byte 0xff in an argument (os.fsencode): not UTF-8, not for the database
    (["entities", "show", "file", "/tmp/\udcff"], None, 2, "VALUE is not valid UTF-8"),
    (["events", "show", "ev-\udcff"], None, 2, "EVENT_ID is not valid UTF-8"),
    (["entities", "show", "ip", "198.51.100.254", "--account", "{a}"], None, 1,
     'no ip entity "198.51.100.254" in account {a}'),
]


@pytest.mark.parametrize("args,env,code,says", ERRORS,
                         ids=[" ".join(e[0])[:60] for e in ERRORS])
def test_error_paths(args, env, code, says, missing_id, tmp_path):
    """Every error is one sentence on stderr and the documented exit code (docs/cwppctl.md:
    1 not found, 2 bad command line or setting, 3 infrastructure, here `dot` missing);
    nothing on stdout."""
    sub = dict(STORY, missing=missing_id, empty=str(tmp_path))
    args = [a.format(**sub) for a in args]
    env = {k: v.format(**sub) for k, v in env.items()} if env else None
    rc, out, err = ctl(*args, env=env)
    assert rc == code, (args, rc, out, err)
    assert says.format(**sub) in err, err
    assert err.startswith("cwppctl: ") and out == ""


def test_docs_describe_every_verb_and_setting():
    """docs/cwppctl.md keeps up with `cwppctl --help`: each events/entities verb, its
    options and the two read-time settings are documented."""
    doc = (t.REPO / "docs" / "cwppctl.md").read_text()
    rc, usage, _ = ctl("--help")
    assert rc == 0
    for verb in ("events list", "events show", "events alerts", "events entities",
                 "events chain", "entities show"):
        assert verb in usage and f"### `{verb}" in doc, verb
    for word in ("--status", "--level", "--since", "--until", "--account", "--limit",
                 "--affected", "--format", "CWPP_EVENT_RETENTION_DAYS",
                 "CWPP_CTL_QUIET_HOURS"):
        assert word in usage and word in doc, word
