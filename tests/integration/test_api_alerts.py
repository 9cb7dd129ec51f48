# SPDX-License-Identifier: Apache-2.0
"""cwpp-api's alerts (services/api/alerts.c, docs/api/parts/alerts.yaml) on the real local
PostgreSQL, through a real cwpp-api and through cwppctl: every filter of the list against a
seeded set with known answers, the keyset cursor (each alert exactly once), one alert with
its handling, events and activity log, the rule fields of an alert, authentication, tenant
isolation (another tenant's alert is a 404 and is in no list) and hostile input."""
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta

import pytest

import cwpp_testlib as t
from cwpp_testlib import tag

NOW = t.NOW


def aid():
    return "al-" + uuid.uuid4().hex


class Seed:
    """Alerts of two tenants inserted straight into the database, with known answers.

    acct-a (key -> alert): name, type, severity, status, asset, first/last seen (minutes
    ago). acct-b has alerts too, some with the same names and assets."""

    A = {
        # key: name, type, severity, status, asset, first and last seen (minutes ago)
        "a1": ("Trojan", "virus", "critical", "unhandled", "h1", 300, 10),
        "a2": ("Trojan", "virus", "high", "handled", "h2", 200, 20),
        "a3": ("Brute force", "brute_force", "medium", "handling", "h1", 190, 30),
        "a4": ("Brute force", "brute_force", "low", "manually_whitelisted", "h3", 180, 40),
        "a5": ("Web shell", "webshell", "high", "automatically_whitelisted", "h2", 170, 50),
        "a6": ("Web shell", "webshell", "critical", "unhandled", "h3", 2000, 1500),
        "a7": ("Trojan", "virus", "low", "unhandled", "h1", 60, 60),
    }
    B = {
        "b1": ("Trojan", "virus", "critical", "unhandled", "h1", 100, 5),
        "b2": ("Brute force", "brute_force", "high", "handled", "h2", 100, 15),
    }

    def __init__(self):
        g = tag()
        self.acct_a, self.acct_b = f"acct-a-{g}", f"acct-b-{g}"
        self.ids = {}
        self.event_a, self.event_b = f"ev-{uuid.uuid4().hex}", f"ev-{uuid.uuid4().hex}"
        with t.db() as conn, conn.cursor() as cur:
            for acct, table in ((self.acct_a, self.A), (self.acct_b, self.B)):
                for key, (name, typ, sev, status, asset, first, last) in table.items():
                    self.ids[key] = aid()
                    details = {"rule": {"id": 5710, "level": "7"}, "k8s.ns": "prod",
                               "note": "'; DROP TABLE alerts; --"}
                    cur.execute(
                        "INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, "
                        "severity, source, input_format, asset_id, asset, defense, file, "
                        "remote_ip, details, status, first_seen, last_seen, occurrences, "
                        "handling) VALUES (%s, %s, %s, %s, %s, %s, 'ids', 'cwpp', %s, %s, "
                        "'none', %s, '198.51.100.7', %s, %s, %s, %s, 2, %s)",
                        (self.ids[key], self.ids[key], acct, name, typ, sev, f"{acct}-{asset}",
                         json.dumps({"id": f"{acct}-{asset}", "name": asset + "-name",
                                     "ip": "10.0.0.1", "role": "web"}),
                         json.dumps({"path": f"/tmp/{key}.bin", "md5": t.md5hex(key)}),
                         json.dumps(details), status,
                         NOW - timedelta(minutes=first), NOW - timedelta(minutes=last),
                         json.dumps({"event_id": self.event_a, "by": "ana"})
                         if status == "handled" else None))
            for ev, acct, keys in ((self.event_a, self.acct_a, ("a1", "a3")),
                                   (self.event_b, self.acct_b, ("b1",))):
                cur.execute("INSERT INTO events (event_id, account_id, name, level, status, "
                            "first_seen, last_seen) VALUES (%s, %s, 'story', 'high', "
                            "'handling', %s, %s)", (ev, acct, NOW - timedelta(hours=5), NOW))
                for k in keys:
                    cur.execute("INSERT INTO event_alerts (event_id, alert_id, reason) "
                                "VALUES (%s, %s, 'same asset')", (ev, self.ids[k]))
            cur.execute("INSERT INTO activity_log (actor, command_id, object_type, object_id, "
                        "action, before, after, remark) VALUES ('ana', %s, 'alert', %s, "
                        "'whitelist.add_alert', '{\"status\": \"unhandled\"}', "
                        "'{\"status\": \"manually_whitelisted\"}', 'lab host')",
                        ("cmd-" + uuid.uuid4().hex, self.ids["a4"]))
        self.ana = t.make_user("ana-" + g, self.acct_a)
        self.bob = t.make_user("bob-" + g, self.acct_b)
        self.vic = t.make_user("vic-" + g, self.acct_a, role="viewer")

    def keys(self, alerts):
        back = {v: k for k, v in self.ids.items()}
        return [back.get(a["alert_id"], a["alert_id"]) for a in alerts]


@pytest.fixture(scope="module")
def env():
    prefix = t.new_prefix()
    t.create_topics(prefix, partitions=1)
    api = t.Api(prefix)
    seed = Seed()
    yield prefix, api, seed
    api.stop()


def raw_get(api, path, token=None):
    """GET without the testlib's helpers (no token unless given): (status, body bytes)."""
    req = urllib.request.Request(api.url + path)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def q(**args):
    return "/api/v1/alerts?" + urllib.parse.urlencode(args)


def listed(api, user, **args):
    st, doc, _ = api.get(q(**args), user=user)
    assert st == 200, doc
    return doc


# ------------------------------------------------------------------------- tests

A_NEWEST_FIRST = ["a1", "a2", "a3", "a4", "a5", "a7", "a6"]


@pytest.mark.parametrize("args,want", [
    ({}, A_NEWEST_FIRST),
    ({"status": "unhandled"}, ["a1", "a7", "a6"]),
    ({"status": "handling,handled"}, ["a2", "a3"]),
    ({"handled": "yes"}, ["a2", "a4", "a5"]),
    ({"handled": "no"}, ["a1", "a3", "a7", "a6"]),
    ({"name": "Trojan"}, ["a1", "a2", "a7"]),
    ({"type": "brute_force"}, ["a3", "a4"]),
    ({"severity": "critical"}, ["a1", "a6"]),
    ({"severity": "high,low"}, ["a2", "a4", "a5", "a7"]),
    ({"asset": "ASSET:h1"}, ["a1", "a3", "a7"]),
    ({"event": "EVENT_A"}, ["a1", "a3"]),
    ({"event": "EVENT_B"}, []),                      # acct-b's event: nothing of it is seen
    ({"account": "ACCT_A"}, A_NEWEST_FIRST),
    ({"account": "ACCT_B"}, []),                     # an account not held matches nothing
    ({"since": "MIN:35"}, ["a1", "a2", "a3"]),       # latest occurrence not before since
    ({"until": "MIN:1000"}, ["a6"]),                 # first occurrence not after until
    ({"since": "MIN:45", "until": "MIN:25"}, ["a1", "a2", "a3", "a4"]),  # active then
    ({"name": "Trojan", "severity": "critical,low", "handled": "no"}, ["a1", "a7"]),
    ({"name": "'; DROP TABLE alerts; --"}, []),
    ({"name": "Trojan' OR '1'='1"}, []),
])
def test_every_filter_has_its_known_answer(env, args, want):
    """The analyst of acct-a sees acct-a's alerts only, newest first; each filter narrows
    them to the known answer and total counts them."""
    _, api, s = env
    subst = {"EVENT_A": s.event_a, "EVENT_B": s.event_b, "ACCT_A": s.acct_a,
             "ACCT_B": s.acct_b}
    real = {}
    for k, v in args.items():
        if v.startswith("MIN:"):
            v = (NOW - timedelta(minutes=int(v[4:]))).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif v.startswith("ASSET:"):
            v = f"{s.acct_a}-{v[6:]}"
        real[k] = subst.get(v, v)
    doc = listed(api, s.ana, **real)
    assert s.keys(doc["alerts"]) == want
    assert doc["total"] == len(want) and doc["next_cursor"] is None


def test_the_cursor_walks_every_alert_exactly_once(env):
    _, api, s = env
    seen, cursor, pages = [], None, 0
    while True:
        args = {"limit": 2}
        if cursor:
            args["cursor"] = cursor
        doc = listed(api, s.ana, **args)
        assert doc["total"] == len(A_NEWEST_FIRST)
        seen += s.keys(doc["alerts"])
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert seen == A_NEWEST_FIRST and pages == 4
    # a cursor is bound to its query: another filter refuses it
    doc = listed(api, s.ana, limit=2)
    st, prob, _ = api.get(q(limit=2, name="Trojan", cursor=doc["next_cursor"]), user=s.ana)
    assert st == 400, prob


def test_one_alert_with_its_handling_events_and_log(env):
    _, api, s = env
    st, doc, _ = api.get(f"/api/v1/alerts/{s.ids['a1']}", user=s.ana)
    assert st == 200, doc
    assert doc["alert_id"] == s.ids["a1"] and doc["account_id"] == s.acct_a
    assert doc["file"]["path"] == "/tmp/a1.bin" and doc["details"]["rule"]["id"] == 5710
    assert [e["event_id"] for e in doc["events"]] == [s.event_a]
    assert doc["events"][0]["reason"] == "same asset" and doc["handling"] is None
    assert doc["first_seen"].endswith("Z") and doc["activity"] == []
    st, doc, _ = api.get(f"/api/v1/alerts/{s.ids['a2']}", user=s.ana)
    assert doc["status"] == "handled" and doc["handling"] == {"event_id": s.event_a, "by": "ana"}
    st, doc, _ = api.get(f"/api/v1/alerts/{s.ids['a4']}", user=s.vic)  # a viewer reads
    assert st == 200
    assert [(x["action"], x["before"], x["after"], x["remark"]) for x in doc["activity"]] == [
        ("whitelist.add_alert", {"status": "unhandled"}, {"status": "manually_whitelisted"},
         "lab host")]


def test_the_rule_fields_of_an_alert(env):
    _, api, s = env
    st, doc, _ = api.get(f"/api/v1/alerts/{s.ids['a1']}/fields", user=s.ana)
    assert st == 200, doc
    assert doc["alert_name"] == "Trojan" and doc["account_id"] == s.acct_a
    f = {x["field"]: (x["value"], x["number"]) for x in doc["fields"]}
    assert f["name"] == ("Trojan", False) and f["severity"] == ("critical", False)
    assert f["file.path"] == ("/tmp/a1.bin", False)
    assert f["asset.id"] == (f"{s.acct_a}-h1", False) and f["remote_ip"][0] == "198.51.100.7"
    assert f["details.rule.id"] == ("5710", True) and f["details.rule.level"] == ("7", True)
    assert f["details.k8s.ns"] == ("prod", False)  # a key with a dot in it
    assert f["details.note"] == ("'; DROP TABLE alerts; --", False)
    assert "process.path" not in f and "logon.user" not in f  # the alert has none


def test_401_without_a_token(env):
    _, api, s = env
    for path in ("/api/v1/alerts", f"/api/v1/alerts/{s.ids['a1']}",
                 f"/api/v1/alerts/{s.ids['a1']}/fields"):
        assert raw_get(api, path)[0] == 401
        assert raw_get(api, path, token="cwpp_0123456789abcdef_nope")[0] == 401


def test_another_tenants_alert_is_not_found_and_in_no_list(env):
    _, api, s = env
    for path in (f"/api/v1/alerts/{s.ids['b1']}", f"/api/v1/alerts/{s.ids['b1']}/fields"):
        st, prob, _ = api.get(path, user=s.ana)
        assert st == 404, prob
    missing = "al-" + "0" * 32
    st, prob_missing, _ = api.get(f"/api/v1/alerts/{missing}", user=s.ana)
    assert st == 404 and prob_missing["code"] == prob["code"]  # the same answer
    everything = listed(api, s.ana, limit=500)
    assert not {s.ids["b1"], s.ids["b2"]} & {a["alert_id"] for a in everything["alerts"]}
    assert s.keys(listed(api, s.bob)["alerts"]) == ["b1", "b2"]
    st, doc, _ = api.get(f"/api/v1/alerts/{s.ids['b1']}", user=s.bob)
    assert st == 200 and doc["events"][0]["event_id"] == s.event_b


@pytest.mark.parametrize("path", [
    "/api/v1/alerts?colour=red",
    "/api/v1/alerts?limit=100000",
    "/api/v1/alerts?limit=0",
    "/api/v1/alerts?limit=-1",
    "/api/v1/alerts?limit=ten",
    "/api/v1/alerts?cursor=garbage",
    "/api/v1/alerts?cursor=" + "A" * 5000,
    "/api/v1/alerts?status=bogus",
    "/api/v1/alerts?status=unhandled,",
    "/api/v1/alerts?status=%27%3B+DROP+TABLE+alerts%3B--",
    "/api/v1/alerts?severity=severe",
    "/api/v1/alerts?handled=maybe",
    "/api/v1/alerts?since=yesterday-ish",
    "/api/v1/alerts?since=2026-05-02&until=2026-05-01",
    "/api/v1/alerts?name=" + "x" * 600,
    "/api/v1/alerts?name=",
    "/api/v1/alerts?name=%FF%FE",
])
def test_hostile_lists_are_400s(env, path):
    _, api, s = env
    st, prob, _ = api.get(path, user=s.ana)
    assert st == 400, (path, st, prob)
    assert prob["status"] == 400 and prob["detail"]


@pytest.mark.parametrize("alert_id", [
    "..%2F..%2Fetc%2Fpasswd", "al-..", "al-" + "f" * 31 + "%00", "x" * 200, "%27%20OR%201%3D1",
    "AL-" + "F" * 32,
])
def test_hostile_ids_are_404s(env, alert_id):
    _, api, s = env
    for suffix in ("", "/fields"):
        st, _, _ = api.get(f"/api/v1/alerts/{alert_id}{suffix}", user=s.ana)
        assert st in (400, 404), (alert_id, st)


def test_cwppctl_alerts_through_the_api(env):
    """cwppctl's alerts list/show now GET the API: same JSON shapes, scoped to the actor."""
    prefix, api, s = env
    rc, doc, err = t.cwppctl_json(prefix, "alerts", "list", "--name", "Trojan", actor=s.ana,
                                  api=api)
    assert rc == 0, err
    assert s.keys(doc["alerts"]) == ["a1", "a2", "a7"]
    a = doc["alerts"][0]
    assert set(a) >= {"alert_id", "name", "severity", "status", "account_id", "asset_id",
                      "last_seen", "occurrences", "defense"}
    rc, doc, err = t.cwppctl_json(prefix, "alerts", "list", "--limit", "3", actor=s.ana, api=api)
    assert rc == 0 and s.keys(doc["alerts"]) == A_NEWEST_FIRST[:3]
    rc, doc, err = t.cwppctl_json(prefix, "alerts", "list", "--status", "unhandled",
                                  "--account", s.acct_a, actor=s.ana, api=api)
    assert rc == 0 and s.keys(doc["alerts"]) == ["a1", "a7", "a6"]
    rc, out, err = t.cwppctl(prefix, "alerts", "list", "--name", "Web shell", actor=s.ana, api=api)
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["ALERT", "STATUS", "SEVERITY"]
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == [s.ids["a5"], s.ids["a6"]]
    rc, out, err = t.cwppctl(prefix, "alerts", "list", "--name", "nothing-" + tag(),
                             actor=s.ana, api=api)
    assert rc == 0 and "(no alerts match)" in out
    rc, doc, err = t.cwppctl_json(prefix, "alerts", "show", s.ids["a4"], actor=s.ana, api=api)
    assert rc == 0 and doc["status"] == "manually_whitelisted" and len(doc["activity"]) == 1
    rc, out, err = t.cwppctl(prefix, "alerts", "show", s.ids["a4"], actor=s.ana, api=api)
    assert rc == 0 and "whitelist.add_alert" in out and "remark: lab host" in out
    rc, _, err = t.cwppctl(prefix, "alerts", "show", s.ids["b1"], actor=s.ana, api=api)
    assert rc == 1 and "no alert" in err
    rc, _, err = t.cwppctl(prefix, "alerts", "list", "--status", "bogus", actor=s.ana, api=api)
    assert rc == 2 and "unknown status" in err
