# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-api's security-event read resources (docs/api/openapi.yaml,
tag "events"): GET /api/v1/events with its filters, sorts and keyset cursor, one event,
its alerts, entities and chain, and the entity view GET /api/v1/entities/{type}.

A known set is seeded straight into the tables as the database owner (the rows the
correlator would write), so every filter has an answer computed here from the seed
itself: in account A, 25 events an hour or two apart (levels, statuses, urgencies,
owners, sources, stages, alert counts spread over them, two events sharing a last_seen,
every event older than 24 hours quiet), one 200 days old (past the 180-day retention),
and in account B three events, one of which shares A's attacker IP. The real cwpp-api
reads them through the real HTTP interface, as three users: one holding A, one holding
A and B, and a viewer holding A."""
import base64
import hashlib
import json
import re
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

import cwpp_testlib as t

LEVELS = ["critical", "high", "medium", "low"]
URGENCIES = ["act_now", "high", "medium", "low"]
STATUSES = ["unhandled", "handling", "handled", "failed"]
TACTICS = ["TA0001", "TA0002", "TA0006", "TA0008"]
SOURCES = ["virus_scan", "logon_monitor", "process_monitor"]
IP = "203.0.113.9"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
SQLISH = ["' OR '1'='1", "x'); DROP TABLE events; --", "%' OR 1=1 --", "\\'; SELECT pg_sleep(5); --",
          "$1", "a%_b", "{}", "\"", "TA0001' OR 'x'='x"]

S = {}


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_event(cur, e):
    cur.execute(
        "INSERT INTO events (event_id, account_id, name, level, status, first_seen, "
        "last_seen, alert_count, occurrences, asset_count, stages, sources, owner, urgency, "
        "assessment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (e["id"], e["account"], e["name"], e["level"], e["status"], e["first"], e["last"],
         e["alerts"], e["alerts"], 1, e["stages"], e["sources"], e["owner"], e["urgency"],
         json.dumps({"reasons": [{"code": "core_asset", "text": "a core asset"}],
                     "recommendations": [{"action": "block_ip", "entity_type": "ip",
                                          "entity_value": IP, "reason": "seen widely"}],
                     "assessed_at": int(e["last"].timestamp() * 1000)})))
    for k, alert in enumerate(e["alert_names"]):
        aid = f"al-{uuid.uuid4().hex}"
        when = e["first"] + timedelta(minutes=k)
        cur.execute(
            "INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, severity, "
            "source, input_format, asset_id, asset, defense, status, first_seen, last_seen) "
            "VALUES (%s, %s, %s, %s, 'virus', 'high', %s, 'cwpp', %s, %s, 'none', "
            "'unhandled', %s, %s)",
            (aid, aid, e["account"], alert, e["sources"][0], e["asset"],
             json.dumps({"id": e["asset"], "name": e["asset"] + "-name", "role": "web"}),
             when, when))
        cur.execute(
            "INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, last_seen, "
            "occurrences) VALUES (%s, %s, %s, %s, %s, 1)",
            (e["id"], aid, "opens a new event" if k == 0 else "same asset", when, when))
        for etype, value, asset in [("host", e["asset"], e["asset"])] + e["entities"]:
            cur.execute(
                "INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, event_id, "
                "alert_id, first_seen, last_seen) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (e["account"], etype, value, asset, e["id"], aid, when, when))
        if e["entities"]:
            etype, value, _ = e["entities"][0]
            cur.execute(
                "INSERT INTO event_edges (event_id, src_type, src, relation, dst_type, dst, "
                "alert_id, first_seen, last_seen, alerts) VALUES (%s, %s, %s, 'connected_to', "
                "'host', %s, %s, %s, %s, 1) ON CONFLICT DO NOTHING",
                (e["id"], etype, value, e["asset"], aid, when, when))


def make_events(tg, a, b):
    evs = []
    for i in range(1, 26):
        hours = 2 * i + 0.5 if i != 11 else 2 * 10 + 0.5  # 10 and 11 share a last_seen
        last = NOW - timedelta(hours=hours)
        ents = []
        if i % 5 == 3:
            ents.append(("ip", IP, ""))
        if i % 4 == 1:
            ents.append(("file", f"/tmp/x{i % 3}", f"web-{i % 3}"))
        evs.append(dict(
            id=f"ev-{tg}-{i:02d}", account=a, name=f"Event {i} of {tg}" if i != 7 else
            f"Brute force on db {tg}", level=LEVELS[i % 4], status=STATUSES[i % 4],
            urgency=URGENCIES[(i // 2) % 4], owner=[None, f"ow1-{tg}", f"ow2-{tg}"][i % 3],
            first=last - timedelta(hours=1), last=last, alerts=1 + (i * 7) % 5,
            stages=[TACTICS[i % 4]] + ([TACTICS[(i + 1) % 4]] if i % 2 else []),
            sources=[SOURCES[i % 3]], asset=f"web-{i % 3}", entities=ents,
            alert_names=["Crypto miner found" if i == 8 else f"alert {i}.{k}"
                         for k in range(1 + (i * 7) % 5 if i != 4 else 12)]))
    evs[3]["alerts"] = 12  # ev-04 has 12 alerts: its alerts are paged
    old = NOW - timedelta(days=200)
    evs.append(dict(id=f"ev-{tg}-old", account=a, name=f"Old {tg}", level="high",
                    status="unhandled", urgency="high", owner=None, first=old, last=old,
                    alerts=1, stages=["TA0001"], sources=["virus_scan"], asset="web-0",
                    entities=[("ip", IP, "")], alert_names=["old alert"]))
    for j in range(1, 4):
        last = NOW - timedelta(hours=j)
        evs.append(dict(id=f"ev-{tg}-b{j}", account=b, name=f"Event B{j} of {tg}",
                        level="critical", status="unhandled", urgency="act_now", owner=None,
                        first=last - timedelta(hours=1), last=last, alerts=1,
                        stages=["TA0001"], sources=["virus_scan"], asset="db-b",
                        entities=[("ip", IP, "")] if j == 1 else [("ip", "198.51.100.3", "")],
                        alert_names=[f"B alert {j}"]))
    return evs


@pytest.fixture(scope="module", autouse=True)
def seeded():
    tg = uuid.uuid4().hex[:8]
    a, b = f"acct-{tg}-a", f"acct-{tg}-b"
    evs = make_events(tg, a, b)
    conn = t.db()
    try:
        with conn.cursor() as cur:
            for e in evs:
                seed_event(cur, e)
    finally:
        conn.close()
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=1)
    api = t.Api(prefix)
    S.update(tg=tg, a=a, b=b, evs=evs, api=api,
             ua=t.make_user(f"ua-{tg}", a), uab=t.make_user(f"uab-{tg}", a, b),
             viewer=t.make_user(f"uv-{tg}", a, role="viewer"))
    yield S
    api.stop()


# ------------------------------------------------------------------ helpers

def get(path, user=None, **args):
    """GET path with args as the user (default: the one holding A); (status, doc)."""
    if args:
        path += ("&" if "?" in path else "?") + urllib.parse.urlencode(args)
    status, doc, _ = S["api"].get(path, user=user or S["ua"])
    return status, doc


def ok(path, user=None, **args):
    status, doc = get(path, user, **args)
    assert status == 200, (path, args, status, doc)
    return doc


def raw(method, path, headers=None):
    """A request as sent, path unnormalised; (status, headers, body)."""
    return t.raw_request(S["api"].url, method, path, headers)


def bearer(user=None):
    return {"Authorization": "Bearer " + S["api"].token(user or S["ua"])}


def mine():
    """A's events within the retention, in the default order (newest first, then id)."""
    live = [e for e in S["evs"] if e["account"] == S["a"] and not e["id"].endswith("old")]
    return sorted(live, key=lambda e: (-e["last"].timestamp(), e["id"]))


def quiet(e):
    return e["last"] < NOW - timedelta(hours=24)


def shown_urgency(e):
    return URGENCIES[min(URGENCIES.index(e["urgency"]) + (1 if quiet(e) else 0), 3)]


def walk(limit, **args):
    """Every page of the list with args; the ids in order and the pages' totals."""
    out, totals, cursor, pages = [], set(), None, 0
    while True:
        extra = dict(args, limit=limit, account=S["a"])
        if cursor:
            extra["cursor"] = cursor
        doc = ok("/api/v1/events", **extra)
        assert len(doc["events"]) <= limit
        out += [e["event_id"] for e in doc["events"]]
        totals.add(doc["total"])
        cursor = doc["next_cursor"]
        pages += 1
        assert pages < 100
        if cursor is None:
            return out, totals


def listed(**args):
    doc = ok("/api/v1/events", account=S["a"], limit=500, **args)
    assert doc["total"] == len(doc["events"]) and doc["next_cursor"] is None
    return [e["event_id"] for e in doc["events"]]


def ids(evs):
    return [e["id"] for e in evs]


# ------------------------------------------------------------------ the list

def test_list_default_is_newest_first_within_retention():
    """The list: the caller's events of the last 180 days, newest first (ties by id), with
    the overview columns, the shown and the assessed urgency, quiet, and the tactics with
    their names; the 200-day-old event is not listed unless retention_days reaches it."""
    doc = ok("/api/v1/events", limit=500)
    assert [e["event_id"] for e in doc["events"]] == ids(mine())
    assert doc["total"] == 25 and doc["retention_days"] == 180
    assert doc["quiet_after_hours"] == 24 and doc["next_cursor"] is None
    by = {e["id"]: e for e in S["evs"]}
    for e in doc["events"]:
        s = by[e["event_id"]]
        assert (e["account_id"], e["name"], e["level"], e["status"], e["owner"],
                e["alert_count"], e["stages"]) == \
            (s["account"], s["name"], s["level"], s["status"], s["owner"], s["alerts"],
             s["stages"])
        assert e["assessed_urgency"] == s["urgency"] and e["quiet"] == quiet(s)
        assert e["urgency"] == shown_urgency(s)
        assert e["last_seen"] == ts(s["last"]) and e["first_seen"] == ts(s["first"])
        assert [x["id"] for x in e["tactics"]] == s["stages"]
    names = {x["id"]: x["name"] for e in doc["events"] for x in e["tactics"]}
    assert names["TA0006"] == "Credential Access" and names["TA0001"] == "Initial Access"
    assert f"ev-{S['tg']}-old" in listed(retention_days=365)
    assert listed(retention_days=1) == ids([e for e in mine()
                                            if e["last"] > NOW - timedelta(days=1)])


def case(name, args, pred):
    return pytest.param(args, pred, id=name)


FILTERS = [
    case("status", {"status": "handling"}, lambda e: e["status"] == "handling"),
    case("status several", {"status": "handled,failed"},
         lambda e: e["status"] in ("handled", "failed")),
    case("level", {"level": "critical"}, lambda e: e["level"] == "critical"),
    case("level several", {"level": "high,low"}, lambda e: e["level"] in ("high", "low")),
    case("urgency shown", {"urgency": "act_now"}, lambda e: shown_urgency(e) == "act_now"),
    case("urgency several", {"urgency": "medium,low"},
         lambda e: shown_urgency(e) in ("medium", "low")),
    case("owner", {"owner": "ow1-{tg}"}, lambda e: e["owner"] == f"ow1-{S['tg']}"),
    case("owner none", {"owner": "none"}, lambda e: e["owner"] is None),
    case("q name", {"q": "BRUTE force"}, lambda e: "brute force" in e["name"].lower()),
    case("q alert name", {"q": "crypto miner"},
         lambda e: "Crypto miner found" in e["alert_names"]),
    case("q event id", {"q": "ev-{tg}-05"}, lambda e: e["id"].endswith("-05")),
    case("asset", {"asset": "web-1"}, lambda e: e["asset"] == "web-1"),
    case("entity ip", {"entity": f"ip:{IP}"}, lambda e: ("ip", IP, "") in e["entities"]),
    case("entity file", {"entity": "file:/tmp/x2"},
         lambda e: any(x[:2] == ("file", "/tmp/x2") for x in e["entities"])),
    case("source", {"source": "logon_monitor"}, lambda e: "logon_monitor" in e["sources"]),
    case("stage id", {"stage": "TA0006"}, lambda e: "TA0006" in e["stages"]),
    case("stage name", {"stage": "lateral-movement"}, lambda e: "TA0008" in e["stages"]),
    case("since", {"since": "{h10}"}, lambda e: e["last"] >= NOW - timedelta(hours=10)),
    case("until", {"until": "{h30}"}, lambda e: e["first"] <= NOW - timedelta(hours=30)),
    case("since and until", {"since": "{h30}", "until": "{h20}"},
         lambda e: e["last"] >= NOW - timedelta(hours=30) and
         e["first"] <= NOW - timedelta(hours=20)),
    case("combined", {"level": "critical,high", "status": "unhandled,handling",
                      "source": "virus_scan"},
         lambda e: e["level"] in ("critical", "high") and
         e["status"] in ("unhandled", "handling") and "virus_scan" in e["sources"]),
]


@pytest.mark.parametrize("args,pred", FILTERS)
def test_every_filter_matches_the_seeded_answer(args, pred):
    """Each filter (and several together) lists exactly the seeded events it describes,
    newest first, with total counting them all."""
    sub = {"tg": S["tg"], "h10": ts(NOW - timedelta(hours=10)),
           "h20": ts(NOW - timedelta(hours=20)), "h30": ts(NOW - timedelta(hours=30))}
    args = {k: v.format(**sub) for k, v in args.items()}
    want = [e["id"] for e in mine() if pred(e)]
    assert want, f"the seed has no answer for {args}"
    assert listed(**args) == want


def test_owner_me_is_the_caller():
    """owner=me: the events the caller owns."""
    tg = S["tg"]
    me = t.make_user(f"ow1-{tg}", S["a"])
    doc = ok("/api/v1/events", user=me, owner="me", limit=500)
    assert [e["event_id"] for e in doc["events"]] == \
        ids([e for e in mine() if e["owner"] == f"ow1-{tg}"])


@pytest.mark.parametrize("sort,key", [
    ("last_seen", lambda e: (-e["last"].timestamp(), e["id"])),
    ("level", lambda e: (LEVELS.index(e["level"]), -e["last"].timestamp(), e["id"])),
    ("urgency", lambda e: (URGENCIES.index(shown_urgency(e)), -e["last"].timestamp(), e["id"])),
    ("alerts", lambda e: (-e["alerts"], -e["last"].timestamp(), e["id"])),
])
@pytest.mark.parametrize("limit", [1, 4, 7])
def test_cursor_walks_every_event_exactly_once(sort, key, limit):
    """Walking next_cursor with a page smaller than the set returns every event exactly
    once, in the sort's order (ties broken by last_seen, then id), every page saying the
    same total, the last page's next_cursor null."""
    got, totals = walk(limit, sort=sort)
    assert got == ids(sorted(mine(), key=key))
    assert len(set(got)) == len(got) == 25 and totals == {25}


def test_cursor_with_filters_and_no_duplicates_on_ties():
    """A filtered walk returns the filtered set; the two events sharing a last_seen are
    both there once (the id breaks the tie)."""
    got, totals = walk(2, level="critical,medium")
    assert got == ids([e for e in mine() if e["level"] in ("critical", "medium")])
    assert totals == {len(got)}
    got, _ = walk(1)
    assert got.index(f"ev-{S['tg']}-10") + 1 == got.index(f"ev-{S['tg']}-11")


# ------------------------------------------------------------------ one event

def test_show_overview_assessment_and_tactic_names():
    """GET /events/{id}: the overview, the tactics with names, the stored reasons (plus
    "quiet" when the event is quiet at reading time) and the recommendations."""
    e = {x["id"]: x for x in S["evs"]}[f"ev-{S['tg']}-13"]  # 26.5 hours old: quiet
    doc = ok(f"/api/v1/events/{e['id']}")
    assert (doc["event_id"], doc["name"], doc["level"], doc["status"], doc["stages"]) == \
        (e["id"], e["name"], e["level"], e["status"], e["stages"])
    assert doc["tactics"] == [{"id": s, "name": {"TA0001": "Initial Access",
                                                 "TA0002": "Execution",
                                                 "TA0006": "Credential Access",
                                                 "TA0008": "Lateral Movement"}[s]}
                              for s in e["stages"]]
    assert doc["quiet"] is True and doc["assessed_urgency"] == e["urgency"]
    codes = [r["code"] for r in doc["assessment"]["reasons"]]
    assert codes == ["core_asset", "quiet"]
    assert doc["assessment"]["recommendations"][0]["entity_value"] == IP
    assert doc["assessment"]["assessed_at"].endswith("Z") and doc["in_event_list"] is True
    doc = ok(f"/api/v1/events/{e['id']}", quiet_hours=100)
    assert doc["quiet"] is False and doc["quiet_after_hours"] == 100
    old = ok(f"/api/v1/events/ev-{S['tg']}-old")
    assert old["in_event_list"] is False


def test_alerts_are_paged_in_order():
    """GET /events/{id}/alerts: the event's alerts in order of first occurrence; with 12
    alerts and limit 5 the cursor walks all of them once."""
    eid = f"ev-{S['tg']}-04"
    got, cursor = [], None
    while True:
        args = {"limit": 5}
        if cursor:
            args["cursor"] = cursor
        doc = ok(f"/api/v1/events/{eid}/alerts", **args)
        assert doc["total"] == 12 and doc["event_id"] == eid
        got += doc["alerts"]
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert [a["name"] for a in got] == [f"alert 4.{k}" for k in range(12)]
    assert got[0]["reason"] == "opens a new event"
    assert [a["first_seen"] for a in got] == sorted(a["first_seen"] for a in got)


def test_entities_with_30_day_counts_and_affected():
    """GET /events/{id}/entities: every entity with its 30-day figures in the account
    (B's use of the same IP is not counted); ?affected=1 keeps the hosts, with the asset."""
    eid = f"ev-{S['tg']}-08"  # i=8: ip X (8 % 5 == 3), host web-2
    doc = ok(f"/api/v1/events/{eid}/entities")
    got = {(e["entity_type"], e["value"]): e for e in doc["entities"]}
    assert set(got) == {("host", "web-2"), ("ip", IP)}
    x = [e for e in mine() if ("ip", IP, "") in e["entities"]]
    assert got[("ip", IP)]["stats_30d"]["events"] == len(x)
    aff = ok(f"/api/v1/events/{eid}/entities", affected=1)
    assert aff["affected_only"] is True
    assert [(e["value"], e["asset"]["name"]) for e in aff["entities"]] == [("web-2", "web-2-name")]


def test_chain_json():
    """GET /events/{id}/chain: the timeline and the provenance graph (nodes, edges)."""
    eid = f"ev-{S['tg']}-08"
    doc = ok(f"/api/v1/events/{eid}/chain")
    assert doc["event_id"] == eid and doc["timeline"][0]["pace"] == "start"
    nodes = {n["id"]: (n["type"], n["value"]) for n in doc["graph"]["nodes"]}
    assert set(nodes.values()) == {("host", "web-2"), ("ip", IP)}
    (edge,) = doc["graph"]["edges"]
    assert (nodes[edge["from"]], nodes[edge["to"]]) == (("ip", IP), ("host", "web-2"))


def test_entity_view_counts_events_and_pages():
    """GET /entities/{type}?value=: the 30-day figures per account the caller holds and
    the events it appears in, newest first, paged; 404 when nothing is known of it."""
    x = [e for e in mine() if ("ip", IP, "") in e["entities"]]
    doc = ok("/api/v1/entities/ip", value=IP, limit=2)
    assert [s["account_id"] for s in doc["stats_30d"]] == [S["a"]]
    assert doc["stats_30d"][0]["events"] == len(x) and doc["total"] == len(x)
    got, cursor = [e["event_id"] for e in doc["events"]], doc["next_cursor"]
    while cursor:
        d = ok("/api/v1/entities/ip", value=IP, limit=2, cursor=cursor)
        got += [e["event_id"] for e in d["events"]]
        cursor = d["next_cursor"]
    assert got == ids(x)
    both = ok("/api/v1/entities/ip", user=S["uab"], value=IP)
    assert {s["account_id"] for s in both["stats_30d"]} == {S["a"], S["b"]}
    assert f"ev-{S['tg']}-b1" in [e["event_id"] for e in both["events"]]
    status, p = get("/api/v1/entities/ip", value="198.51.100.254")
    assert status == 404 and 'no ip entity "198.51.100.254"' in p["detail"]


# ------------------------------------------------------------------ access

ROUTES = ["/api/v1/events", "/api/v1/events/{e}", "/api/v1/events/{e}/alerts",
          "/api/v1/events/{e}/entities", "/api/v1/events/{e}/chain",
          "/api/v1/entities/ip?value=203.0.113.9"]


@pytest.mark.parametrize("route", ROUTES)
def test_no_token_is_401(route):
    """Every route needs authentication: no token, or a made-up one, is a 401 problem."""
    path = route.format(e=f"ev-{S['tg']}-01")
    for headers in ({}, {"Authorization": "Bearer cwpp_0123456789abcdef_nothing"}):
        status, h, body = raw("GET", path, headers)
        assert status == 401, (path, headers, status, body)
        assert json.loads(body)["status"] == 401


@pytest.mark.parametrize("route", ROUTES[1:5])
def test_another_tenants_event_is_404_and_never_listed(route):
    """A user holding A only gets 404 for B's event on every route, the same answer as for
    an event that does not exist; B's events are in no list, count or entity view."""
    b1 = f"ev-{S['tg']}-b1"
    status, p = get(route.format(e=b1))
    assert status == 404 and p["code"] == "not_found", p
    missing = f"ev-{uuid.uuid4().hex}"
    status2, p2 = get(route.format(e=missing))
    assert status2 == 404 and p2["detail"].replace(missing, "X") == p["detail"].replace(b1, "X")
    assert ok(route.format(e=b1), user=S["uab"]) is not None


def test_tenant_isolation_in_lists_and_entities():
    doc = ok("/api/v1/events", account=S["b"])
    assert doc["events"] == [] and doc["total"] == 0
    doc = ok("/api/v1/events", limit=500, since=ts(NOW - timedelta(hours=4)))
    assert not [e for e in doc["events"] if e["account_id"] != S["a"]]
    doc = ok("/api/v1/events", user=S["uab"], account=S["b"])
    assert [e["event_id"] for e in doc["events"]] == [f"ev-{S['tg']}-b{j}" for j in (1, 2, 3)]
    status, _ = get("/api/v1/entities/ip", value="198.51.100.3")  # only in B
    assert status == 404
    assert ok("/api/v1/entities/ip", user=S["uab"], value="198.51.100.3")["total"] == 2


def test_viewer_reads():
    """A viewer reads the accounts granted (these routes change nothing)."""
    doc = ok("/api/v1/events", user=S["viewer"], limit=500)
    assert doc["total"] == 25
    assert ok(f"/api/v1/events/ev-{S['tg']}-01/chain", user=S["viewer"])["event_id"]


# ------------------------------------------------------------------ hostile input

BAD = [
    ({"status": "open"}, "status"), ({"status": "unhandled,"}, "status"),
    ({"level": "severe"}, "level"), ({"urgency": "now"}, "urgency"),
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-45"}, "until"),
    ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "before"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "99999999999"}, "limit"),
    ({"limit": "-1"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"cursor": "garbage"}, "cursor"), ({"cursor": "A" * 5000}, "cursor"),
    ({"sort": "name"}, "sort"), ({"sort": "last_seen; DROP TABLE events"}, "sort"),
    ({"entity": "ip"}, "entity"), ({"entity": "user:root"}, "entity"),
    ({"entity": ":x"}, "entity"), ({"stage": "TA9999"}, "stage"),
    ({"stage": "' OR 1=1 --"}, "stage"), ({"owner": "o" * 65}, "owner"),
    ({"q": "q" * 257}, "q"), ({"retention_days": "0"}, "retention_days"),
    ({"quiet_hours": "1e9"}, "quiet_hours"), ({"colour": "red"}, "colour"),
    ({"account": "a" * 129}, "account"),
]


@pytest.mark.parametrize("args,says", BAD, ids=[str(b[0])[:50] for b in BAD])
def test_bad_filters_are_400_problems(args, says):
    status, p = get("/api/v1/events", **args)
    assert status == 400, (args, status, p)
    assert p["status"] == 400 and says in p["detail"], p


def test_cursor_of_another_query_is_refused():
    doc = ok("/api/v1/events", limit=2, sort="level")
    assert doc["next_cursor"]
    for other in ({"sort": "alerts"}, {"sort": "level", "status": "handled"}):
        status, p = get("/api/v1/events", limit=2, cursor=doc["next_cursor"], **other)
        assert status == 400 and p["code"] == "bad_cursor", (other, p)
    status, p = get(f"/api/v1/events/ev-{S['tg']}-04/alerts", cursor=doc["next_cursor"])
    assert status == 400


def forged(route, state, **args):
    """A cursor made outside the API for the query route+args: its binding digest is
    public (BLAKE2b of the route and arguments), so the state inside is caller-chosen."""
    bound = dict({"\x01route": route}, **{k: str(v) for k, v in args.items()})
    text = json.dumps(bound, separators=(",", ":"), sort_keys=True)
    dig = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    raw_ = json.dumps([dig, state], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw_).decode().rstrip("=")


def test_forged_cursors_are_values_or_400():
    """A forged cursor's state is only ever parameters: a wrong shape or a value that is
    not of its key's type is a 400, a well-typed one pages from there, still only within
    the caller's accounts; never a 5xx."""
    good = ok("/api/v1/events", limit=1)["next_cursor"]
    assert get("/api/v1/events", limit=1, cursor=forged("/api/v1/events", ["x"]))[0] == 400
    real = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    assert forged("/api/v1/events", real[1]) == good  # forged as the API makes them
    for state in (["now", "not a time", "x"], ["now", 5, "x"], ["now", "2026-01-01"],
                  ["now", "2026-01-01T00:00:00Z", "x", "y"], {"a": 1}, "x",
                  ["' OR 1=1 --", "2026-01-01T00:00:00Z", "x"]):
        status, p = get("/api/v1/events", limit=3, cursor=forged("/api/v1/events", state))
        assert status == 400 and p["code"] in ("bad_cursor", "bad_request"), (state, p)
    for state in (["infinity", "infinity", "' OR 1=1 --"], ["now", "2999-01-01T00:00:00Z", ""]):
        doc = ok("/api/v1/events", limit=500, cursor=forged("/api/v1/events", state))
        assert {e["account_id"] for e in doc["events"]} <= {S["a"]}
    status, p = get("/api/v1/events", sort="alerts",
                    cursor=forged("/api/v1/events", ["now", "many", "now", "x"], sort="alerts"))
    assert status == 400, p


@pytest.mark.parametrize("name", ["account", "owner", "q", "asset", "source"])
def test_sqlish_strings_are_only_values(name):
    """SQL-ish text in a filter is a value compared, never SQL: no match, no error, and
    the events table is still there."""
    for v in SQLISH:
        doc = ok("/api/v1/events", **{name: v})
        assert doc["events"] == [] and doc["total"] == 0, (name, v)
    for v in SQLISH:
        doc = ok("/api/v1/events", entity=f"ip:{v}")
        assert doc["total"] == 0
        status, p = get("/api/v1/entities/file", value=v)
        assert status == 404, (v, p)
    assert t.query("SELECT count(*) FROM events WHERE account_id = %s", (S["a"],))[0][0] == 26


@pytest.mark.parametrize("name", ["status", "level", "urgency", "since", "until", "sort",
                                  "stage", "limit", "retention_days", "quiet_hours", "entity"])
def test_sqlish_strings_in_checked_filters_are_400(name):
    """A filter with a closed vocabulary or a type refuses SQL-ish text with a 400 problem
    naming the filter."""
    for v in SQLISH:
        status, p = get("/api/v1/events", **{name: v})
        assert status == 400 and name in p["detail"], (name, v, p)


@pytest.mark.parametrize("path", [
    "/api/v1/events/..%2F..%2Fetc%2Fpasswd", "/api/v1/events/%2e%2e",
    "/api/v1/events/..%2Fevents/alerts", "/api/v1/events/" + "e" * 200,
    "/api/v1/events/" + "e" * 200 + "/chain", "/api/v1/events/ev%00x",
    "/api/v1/events/ev%0Ax/entities", "/api/v1/events/%FF%FE", "/api/v1/events/'%20OR%201=1--",
    "/api/v1/entities/..%2F..?value=x", "/api/v1/entities/user?value=root",
    "/api/v1/entities/ip", "/api/v1/entities/ip?value=%FF",
])
def test_hostile_paths_are_4xx_problems(path):
    status, h, body = raw("GET", path, bearer())
    assert 400 <= status < 500, (path, status, body)
    assert json.loads(body)["status"] == status


def test_cwppctl_text_shows_control_osc_and_bidi_characters_as_escapes():
    """An event name from an attacked host may carry terminal controls: an OSC sequence
    that retitles the terminal, ESC, BEL, a right-to-left override. cwppctl's text prints
    each as a visible escape, never raw."""
    tg = uuid.uuid4().hex[:8]
    acct = f"acct-{tg}-h"
    name = f"hostile {tg} \x1b]0;pwned\x07 \u202eexe.txt \u2066x\u2069 \x9b31m"
    last = NOW - timedelta(hours=1)
    conn = t.db()
    try:
        with conn.cursor() as cur:
            seed_event(cur, dict(id=f"ev-{tg}-h", account=acct, name=name, level="high",
                                 status="unhandled", urgency="high", owner=None,
                                 first=last - timedelta(hours=1), last=last, alerts=1,
                                 stages=["TA0001"], sources=["virus_scan"], asset="web-h",
                                 entities=[], alert_names=[name]))
    finally:
        conn.close()
    user = t.make_user(f"uh-{tg}", acct)
    for args in (("events", "list", "--account", acct), ("events", "show", f"ev-{tg}-h"),
                 ("events", "alerts", f"ev-{tg}-h")):
        rc, out, err = t.cwppctl(S["api"].prefix, *args, actor=user, api=S["api"])
        assert rc == 0, err
        assert f"hostile {tg}" in out, args
        for raw_char in ("\x1b", "\x07", "\u202e", "\u2066", "\u2069", "\x9b"):
            assert raw_char not in out, (args, repr(raw_char))
        if args[1] == "show":  # the whole name (the tables cut it to their columns)
            assert "\\x1b]0;pwned\\x07" in out and "\\u202e" in out, out
    rc, out, _ = t.cwppctl(S["api"].prefix, "--json", "events", "show", f"ev-{tg}-h",
                           actor=user, api=S["api"])
    assert rc == 0 and json.loads(out)["name"] == name  # JSON keeps the value exact


# ------------------------------------------------------------------ the chain as a picture

SVG_NS = "{http://www.w3.org/2000/svg}"
CSP = "default-src 'none'; style-src 'unsafe-inline'"
# an entity value from an attacked host: quotes, backslashes, a newline, ESC, BEL, markup
HOSTILE = 'a"b\\c\n\x1b[31m<script>alert(1)</script>&amp;\x07\\'
HOSTILE_SHOWN = 'a"b\\c\\n\\x1b[31m<script>alert(1)</script>&amp;\\x07\\'


@pytest.fixture(scope="module")
def hostile_chain():
    """An event of its own account whose process entity (linked to its host by an edge)
    and name are hostile; (event id, user holding the account)."""
    tg = uuid.uuid4().hex[:8]
    acct, last = f"acct-{tg}-s", NOW - timedelta(hours=1)
    conn = t.db()
    try:
        with conn.cursor() as cur:
            seed_event(cur, dict(id=f"ev-{tg}-s", account=acct, name='Odd "name" <b>\x1b',
                                 level="high", status="unhandled", urgency="high", owner=None,
                                 first=last - timedelta(hours=1), last=last, alerts=1,
                                 stages=["TA0001"], sources=["virus_scan"], asset="web-s",
                                 entities=[("process", HOSTILE, "web-s")],
                                 alert_names=["<script>alert(2)</script>"]))
    finally:
        conn.close()
    return f"ev-{tg}-s", t.make_user(f"us-{tg}", acct)


def chain_raw(eid, fmt, user=None, api=None):
    """GET .../chain?format=fmt as raw bytes; (status, body, headers)."""
    status, body, headers = (api or S["api"]).request(
        "GET", f"/api/v1/events/{eid}/chain?format={fmt}", user=user or S["ua"], raw=True)
    return status, body, headers


def safe_svg(body):
    """The SVG body parsed, after checking it carries nothing active: no script element,
    no event-handler attribute, no control character."""
    assert b"<script" not in body.lower()
    assert not [c for c in body if c < 0x20 and c not in b"\n\r\t"]
    root = ET.fromstring(body)
    assert root.tag == SVG_NS + "svg"
    for el in root.iter():
        assert not el.tag.lower().endswith("script"), el.tag
        assert not [k for k in el.attrib if k.lower().startswith("on")], el.attrib
    return root


def test_chain_svg_is_the_graph_drawn_safely():
    """?format=svg: the provenance graph drawn by the server's Graphviz (libs/graph, the
    drawing cwppctl makes), served as image/svg+xml under a Content-Security-Policy that
    lets it run nothing; every entity of the chain is in the picture."""
    eid = f"ev-{S['tg']}-08"
    doc = ok(f"/api/v1/events/{eid}/chain")
    status, body, h = chain_raw(eid, "svg")
    assert status == 200, body
    assert h["Content-Type"] == "image/svg+xml"
    assert h["Content-Security-Policy"] == CSP
    assert h["X-Content-Type-Options"] == "nosniff"
    root = safe_svg(body)
    texts = {x.text for x in root.iter(SVG_NS + "text")}
    for n in doc["graph"]["nodes"]:
        assert n["type"] in texts and n["value"] in texts, (n, texts)
    assert len(root.findall(f".//{SVG_NS}g[@class='node']")) == len(doc["graph"]["nodes"])
    assert len(root.findall(f".//{SVG_NS}g[@class='edge']")) == len(doc["graph"]["edges"])


def test_chain_dot_is_what_cwppctl_draws():
    """?format=dot: the Graphviz text, text/vnd.graphviz, byte for byte the DOT cwppctl
    writes for the same event (both draw through libs/graph)."""
    eid = f"ev-{S['tg']}-08"
    status, body, h = chain_raw(eid, "dot")
    assert status == 200 and h["Content-Type"].startswith("text/vnd.graphviz"), (status, h)
    assert body.startswith(f'digraph "{eid}" {{'.encode())
    rc, out, err = t.cwppctl(S["api"].prefix, "events", "chain", eid, "--format", "dot",
                             actor=S["ua"], api=S["api"])
    assert rc == 0, err
    assert out.encode() == body


def test_chain_svg_and_dot_escape_hostile_values(hostile_chain):
    """Entity values and names are hostile input: in DOT they stay inside their quoted
    strings (one statement per line, no control character); in the SVG they are text,
    shown with visible escapes, never markup: no <script> element, nothing raw."""
    eid, user = hostile_chain
    doc = ok(f"/api/v1/events/{eid}/chain", user=user)
    assert ("process", HOSTILE) in {(n["type"], n["value"]) for n in doc["graph"]["nodes"]}
    status, dot, _ = chain_raw(eid, "dot", user=user)
    assert status == 200
    text = dot.decode()
    assert "\x1b" not in text and "\x07" not in text
    for ln in text.splitlines()[1:-1]:
        assert re.match(r"^  (graph|node|edge|n\d+( -> n\d+)?) \[.*\];$", ln), ln
    status, body, h = chain_raw(eid, "svg", user=user)
    assert status == 200 and h["Content-Security-Policy"] == CSP
    root = safe_svg(body)
    texts = [x.text for x in root.iter(SVG_NS + "text")]
    assert HOSTILE_SHOWN in texts, texts
    titles = [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("title")]
    assert HOSTILE_SHOWN in titles
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_chain_picture_access_and_bad_format(hostile_chain):
    """The picture is read like the JSON: 401 without a token, another tenant's event
    404 (the same answer as a missing one), a format other than json|dot|svg 400."""
    eid, user = hostile_chain
    for fmt in ("svg", "dot"):
        status, _, body = raw("GET", f"/api/v1/events/{eid}/chain?format={fmt}")
        assert status == 401, body
        status, body, _ = chain_raw(eid, fmt)  # ua does not hold that account
        assert status == 404 and json.loads(body)["code"] == "not_found", body
        status, body, _ = chain_raw(f"ev-{S['tg']}-b1", fmt)
        assert status == 404 and json.loads(body)["code"] == "not_found", body
    assert ok(f"/api/v1/events/{eid}/chain", user=user, format="json")["event_id"] == eid
    for fmt in ("png", "", "SVG", "svg;x", "json,svg", "../svg"):
        status, p = get(f"/api/v1/events/{eid}/chain", user=user, format=fmt)
        assert status == 400 and p["code"] == "bad_filter", (fmt, p)
        assert "format must be json, dot or svg" in p["detail"]


@pytest.mark.parametrize("dot_path", ["/nonexistent", "/bin/false"])
def test_chain_svg_without_a_working_dot_is_503(dot_path):
    """An API whose api.dot.path is missing or fails answers the SVG with a 503
    "unavailable" problem saying so; the JSON and the DOT text still answer 200."""
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=1)
    api = t.Api(prefix, extra_env={"CWPP_API_DOT_PATH": dot_path})
    try:
        eid = f"ev-{S['tg']}-08"
        status, body, h = chain_raw(eid, "svg", api=api)
        assert status == 503, body
        p = json.loads(body)
        assert p["code"] == "unavailable" and "cannot be drawn as SVG" in p["detail"], p
        assert ("not installed" in p["detail"]) == (dot_path == "/nonexistent"), p
        assert chain_raw(eid, "dot", api=api)[0] == 200
        status, doc, _ = api.get(f"/api/v1/events/{eid}/chain", user=S["ua"])
        assert status == 200 and doc["event_id"] == eid
    finally:
        api.stop()


@pytest.mark.parametrize("opts,pred", [
    (["--entity", f"ip:{IP}", "--sort", "alerts"], lambda e: ("ip", IP, "") in e["entities"]),
    (["--stage", "lateral-movement", "--owner", "none"],
     lambda e: "TA0008" in e["stages"] and e["owner"] is None),
    (["--q", "BRUTE force", "--source", "virus_scan", "--asset", "web-1", "--urgency",
      "act_now,high,medium,low"],
     lambda e: "brute force" in e["name"].lower() and "virus_scan" in e["sources"] and
     e["asset"] == "web-1"),
])
def test_cwppctl_events_list_passes_the_apis_filters(opts, pred):
    """cwppctl events list --entity/--stage/--owner/--q/--source/--asset/--urgency/--sort
    list what the API lists for those filters."""
    rc, out, err = t.cwppctl(S["api"].prefix, "--json", "events", "list", "--account", S["a"],
                             "--limit", "500", *opts, actor=S["ua"], api=S["api"])
    assert rc == 0, err
    got = {e["event_id"] for e in json.loads(out)["events"]}
    assert got == {e["id"] for e in mine() if pred(e)}
    rc, _, err = t.cwppctl(S["api"].prefix, "events", "list", "--sort", "bogus",
                           actor=S["ua"], api=S["api"])
    assert rc == 1 and "sort" in err
