# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-api's whitelist routes (docs/api/parts/whitelist.yaml,
docs/whitelist.md) on the real local Kafka broker and PostgreSQL, with the real ingest and
whitelist-filter behind: authentication, tenant isolation (another account's rules and
alerts are 404s and absent from lists), viewers change nothing, an alert whitelisted with
its rules all or nothing, bulk unwhitelisting answered per item, keyset pages, and hostile
input answered with a clear 4xx while the API and the filter keep serving."""
import json
import time
import urllib.parse

import cwpp_testlib as t
from cwpp_testlib import tag, virus_alert

ALERT = t.AvroType("alert")

RULES = "/api/v1/whitelist/rules"


def start(services, prefix):
    ing = services("ingest", prefix).start()
    f = services("whitelist-filter", prefix, group=f"{prefix}wl",
                 extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN,
                            "CWPP_WHITELIST_REFRESH_MS": "100"}).start()
    ing.wait_ready()
    f.wait_ready()
    return t.api_for(prefix), f


def alerts_of(prefix, produced):
    """Ingests produced (virus_alert bytes), waits for the filter to pass them, and
    returns their stored ids by file path."""
    t.produce(prefix + "alerts.raw", produced)
    t.consume(prefix + "alerts.accepted", len(produced))
    ids = {}
    for raw in produced:
        a = json.loads(raw)
        ids[(a["account_id"], a["file"]["path"])] = t.query(
            "SELECT alert_id FROM alerts WHERE account_id = %s AND file->>'path' = %s",
            (a["account_id"], a["file"]["path"]))[0][0]
    return ids


def rule(acct, name, value, **kw):
    return {"account_id": acct, "alert_name": name, "field": "file.path", "op": "eq",
            "value": value, "force": True, **kw}


def status_of(x):
    return t.query("SELECT status FROM alerts WHERE alert_id = %s", (x,))[0][0]


def test_every_route_needs_a_token(prefix):
    """Without a token, or with one the server never issued, every whitelist route is a
    401 problem, before anything is read or sent."""
    api = t.api_for(prefix)
    x = "al-" + "a" * 32
    calls = [("GET", RULES, None), ("POST", RULES, {}), ("POST", RULES + "/preview", {}),
             ("DELETE", RULES + "/1", None), ("POST", f"/api/v1/alerts/{x}/whitelist", {}),
             ("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": [x]})]
    for method, path, body in calls:
        st, doc, _ = api.request(method, path, body=body)
        assert st == 401 and doc["code"] == "unauthorized", (method, path, st, doc)
        st, doc, _ = api.request(method, path, body=body,
                                 token="cwpp_" + "1" * 16 + "_" + "2" * 64)
        assert st == 401, (method, path, st, doc)


def test_tenants_see_and_change_only_their_own(prefix, services):
    """A user granted acct-a only: acct-b's rules are absent from the list (and its total)
    and a 404 to delete; a preview over acct-b is a 404; creating a rule for acct-b is
    refused naming the permission; acct-b's alert is a 404 to whitelist and a per-item 404
    to unwhitelist. Nothing of acct-b changes. An admin sees both accounts."""
    g = tag()
    name, a, b = f"Iso {g}", f"acct-{g}-a", f"acct-{g}-b"
    api, _ = start(services, prefix)
    ua = t.make_user(f"ua-{g}", a)
    ids = alerts_of(prefix, [virus_alert(name, a, path="/iso/1"),
                             virus_alert(name, b, path="/iso/1")])
    xa, xb = ids[(a, "/iso/1")], ids[(b, "/iso/1")]
    st, doc, _ = api.post(RULES, rule(a, name, "/iso/a"), user="alice")
    assert st == 200 and doc["status"] == "ok", doc
    ra = doc["result"]["rule_id"]
    st, doc, _ = api.post(RULES, rule(b, name, "/iso/b"), user="alice")
    assert st == 200, doc
    rb = doc["result"]["rule_id"]

    st, doc, _ = api.get(RULES + "?alert_name=" + urllib.parse.quote(name), user=ua)
    assert st == 200 and [r["rule_id"] for r in doc["rules"]] == [ra] and doc["total"] == 1
    assert doc["rules"][0]["account_id"] == a and doc["rules"][0]["hits"] == 0
    assert doc["rules"][0]["expired"] is False and doc["next_cursor"] is None
    st, doc, _ = api.get(RULES + "?account=" + b, user=ua)
    assert st == 200 and doc["rules"] == [] and doc["total"] == 0
    st, doc, _ = api.get(RULES + "?alert_name=" + urllib.parse.quote(name), user="alice")
    assert sorted(r["rule_id"] for r in doc["rules"]) == sorted([ra, rb])

    st, doc, _ = api.delete(f"{RULES}/{rb}", user=ua)
    assert st == 404 and doc["code"] == "not_found", doc
    st, doc, _ = api.post(RULES + "/preview", rule(b, name, "/iso/1"), user=ua)
    assert st == 404, doc
    st, doc, _ = api.post(RULES, rule(b, name, "/iso/x"), user=ua)
    assert st == 422 and f'holds no permission on account "{b}"' in doc["detail"], doc
    st, doc, _ = api.post(f"/api/v1/alerts/{xb}/whitelist", {"remark": "x"}, user=ua)
    assert st == 404 and b not in doc["detail"], doc
    st, doc, _ = api.post("/api/v1/alerts/_bulk/unwhitelist", {"ids": [xb]}, user=ua)
    assert st == 422 and doc["items"][0]["status"] == 404, doc
    # a rule made from acct-b's alert: as if that alert did not exist
    st, doc, _ = api.post(RULES, rule(a, name, "/iso/1", from_alert_id=xb), user=ua)
    assert st == 422 and f"there is no alert {xb} that user" in doc["detail"], doc

    assert status_of(xb) == "unhandled"
    assert t.query("SELECT deleted_at IS NULL FROM whitelist_rules WHERE rule_id = %s",
                   (rb,)) == [(True,)]
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE account_id = %s", (b,)) == [(1,)]
    # their own: deleted, and their alert whitelisted
    st, doc, _ = api.delete(f"{RULES}/{ra}", body={"remark": "done"}, user=ua)
    assert st == 200 and doc["result"]["rule_id"] == ra, doc
    st, doc, _ = api.post(f"/api/v1/alerts/{xa}/whitelist", {"remark": "lab"}, user=ua)
    assert st == 200 and doc["result"]["after"] == "manually_whitelisted", doc


def test_viewers_change_nothing(prefix, services):
    """A viewer of an account reads its rules; every change, and the preview that is a step
    of one, is a 403."""
    g = tag()
    name, a = f"View {g}", f"acct-{g}"
    api, _ = start(services, prefix)
    v = t.make_user(f"viewer-{g}", a, role="viewer")
    x = alerts_of(prefix, [virus_alert(name, a, path="/v/1")])[(a, "/v/1")]
    st, doc, _ = api.post(RULES, rule(a, name, "/v/1"), user="alice")
    rid = doc["result"]["rule_id"]
    # alice's new rule whitelists the stored alert it matches (docs/whitelist.md)
    assert status_of(x) == "automatically_whitelisted"
    assert api.get(RULES + "?account=" + a, user=v)[0] == 200
    st, doc, _ = api.post(RULES + "/preview", rule(a, name, "/v/1"), user="alice")
    assert st == 200 and doc["matched"] == 1, doc
    for method, path, body in [("POST", RULES, rule(a, name, "/v/2")),
                               ("POST", RULES + "/preview", rule(a, name, "/v/1")),
                               ("DELETE", f"{RULES}/{rid}", None),
                               ("POST", f"/api/v1/alerts/{x}/whitelist", {}),
                               ("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": [x]})]:
        st, doc, _ = api.request(method, path, body=body, user=v)
        assert st == 403, (method, path, st, doc)
    assert status_of(x) == "automatically_whitelisted"  # neither whitelisted by hand nor taken out
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE account_id = %s", (a,)) == [(1,)]


def test_alert_whitelisted_with_its_rules_all_or_nothing(prefix, services):
    """POST /alerts/{id}/whitelist with rules is one command: when one rule is refused
    (too broad without force) nothing changes - the alert keeps its status and no rule is
    stored - and the refusal names the rule; when all are good the alert is manually
    whitelisted and its rules exist, made from it and of its account; the next such alert
    is suppressed by them."""
    g = tag()
    name, a = f"Both {g}", f"acct-{g}"
    api, _ = start(services, prefix)
    ids = alerts_of(prefix, [virus_alert(name, a, path=f"/opt/both/{k}") for k in range(3)])
    x = ids[(a, "/opt/both/0")]
    good = {"alert_name": name, "field": "file.path", "op": "eq", "value": "/opt/both/0",
            "force": True}
    broad = {"alert_name": name, "field": "file.path", "op": "startswith",
             "value": "/opt/both/"}
    st, doc, _ = api.post(f"/api/v1/alerts/{x}/whitelist",
                          {"remark": "r", "rules": [good, broad]}, user="alice")
    assert st == 422 and "rule 2 of 2" in doc["detail"] and "too broad" in doc["detail"], doc
    assert doc["result"]["rule_index"] == 2
    assert status_of(x) == "unhandled"
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE alert_name = %s",
                   (name,)) == [(0,)]
    # a rule naming its own account is not a field there (it is the alert's)
    st, doc, _ = api.post(f"/api/v1/alerts/{x}/whitelist",
                          {"rules": [dict(good, account_id="acct-other")]}, user="alice")
    assert st == 400 and "account_id" in doc["detail"], doc
    scoped = dict(broad, value="/opt/both/1", op="eq", scope="asset", force=True)
    st, doc, _ = api.post(f"/api/v1/alerts/{x}/whitelist",
                          {"remark": "r", "rules": [good, scoped]}, user="alice")
    assert st == 200 and doc["result"]["after"] == "manually_whitelisted", doc
    made = [r["rule_id"] for r in doc["result"]["rules"]]
    assert len(made) == 2
    rows = t.query("SELECT account_id, from_alert_id, scope, asset_id FROM whitelist_rules "
                   "WHERE rule_id = ANY(%s) ORDER BY rule_id", (made,))
    assert rows == [(a, x, "all", None), (a, x, "asset", "i-1")]
    assert status_of(x) == "manually_whitelisted"
    time.sleep(0.5)
    t.produce(prefix + "alerts.raw", [virus_alert(name, a, path="/opt/both/1", minute=5)])
    sup = [ALERT.decode(m.value()) for m in t.consume(prefix + "alerts.suppressed", 2)]
    assert ("/opt/both/1", "automatically_whitelisted") in \
        [(s["file"]["path"], s["status"]) for s in sup]


def test_bulk_unwhitelist_answers_per_item(prefix, services):
    """Bulk unwhitelisting is all or nothing and answers per item: with one alert not
    whitelisted and one id naming no alert, nothing is taken out and each item says what it
    is (200-able items have no status, the others 404 / 409 / 400); with only whitelisted
    alerts each item says before and after."""
    g = tag()
    name, a = f"Bulk {g}", f"acct-{g}"
    api, _ = start(services, prefix)
    ids = alerts_of(prefix, [virus_alert(name, a, path=f"/b/{k}") for k in range(3)])
    x1, x2, x3 = ids[(a, "/b/0")], ids[(a, "/b/1")], ids[(a, "/b/2")]
    for x in (x1, x2):
        assert api.post(f"/api/v1/alerts/{x}/whitelist", {}, user="alice")[0] == 200
    missing = "al-" + "0" * 32
    st, doc, _ = api.post("/api/v1/alerts/_bulk/unwhitelist",
                          {"ids": [x1, x3, missing], "remark": "no"}, user="alice")
    assert st == 422 and "name no alert" in doc["detail"] and missing in doc["detail"], doc
    assert [(i["id"], i.get("status")) for i in doc["items"]] == \
        [(x1, None), (x3, 409), (missing, 404)]
    st, doc, _ = api.post("/api/v1/alerts/_bulk/unwhitelist", {"ids": [x1, x3]}, user="alice")
    assert st == 422 and "not whitelisted" in doc["detail"] and f"{x3} is unhandled" in \
        doc["detail"], doc
    st, doc, _ = api.post("/api/v1/alerts/_bulk/unwhitelist", {"ids": [x1, "nope"]},
                          user="alice")
    assert st == 400 and doc["items"][1]["status"] == 400, doc
    assert status_of(x1) == status_of(x2) == "manually_whitelisted"
    st, doc, _ = api.post("/api/v1/alerts/_bulk/unwhitelist",
                          {"ids": [x1, x2], "remark": "false alarm"}, user="alice")
    assert st == 200 and doc["status"] == "ok", doc
    assert [(i["id"], i["status"], i["before"], i["after"]) for i in doc["items"]] == \
        [(x1, 200, "manually_whitelisted", "unhandled"),
         (x2, 200, "manually_whitelisted", "unhandled")]
    assert status_of(x1) == status_of(x2) == "unhandled"


def test_rules_page_with_cursors(prefix, services):
    """The list pages with limit and a keyset cursor bound to its query; total counts every
    rule of the query; the last page's next_cursor is null."""
    g = tag()
    name, a = f"Page {g}", f"acct-{g}"
    api, _ = start(services, prefix)
    made = [api.post(RULES, rule(a, name, f"/p/{k}"), user="alice")[1]["result"]["rule_id"]
            for k in range(3)]
    q = RULES + "?account=" + a
    st, p1, _ = api.get(q + "&limit=2", user="alice")
    assert st == 200 and p1["total"] == 3 and len(p1["rules"]) == 2 and p1["next_cursor"]
    st, p2, _ = api.get(q + "&limit=2&cursor=" + urllib.parse.quote(p1["next_cursor"]),
                        user="alice")
    assert st == 200 and p2["next_cursor"] is None
    assert [r["rule_id"] for r in p1["rules"] + p2["rules"]] == made
    # a cursor of another query is refused
    st, doc, _ = api.get(RULES + "?account=other&limit=2&cursor=" +
                         urllib.parse.quote(p1["next_cursor"]), user="alice")
    assert st == 400 and doc["code"] == "bad_cursor"
    # deleted rules only with all=true
    assert api.delete(f"{RULES}/{made[0]}", user="alice")[0] == 200
    assert api.get(q, user="alice")[1]["total"] == 2
    st, doc, _ = api.get(q + "&all=true", user="alice")
    assert doc["total"] == 3 and doc["rules"][0]["deleted_by"] == "alice"


def test_hostile_input_is_a_clear_4xx(prefix, services):
    """Bad JSON, unknown fields and parameters, a huge limit, a bad cursor, SQL-ish values,
    ids with ../, invalid and oversized regexes, oversized texts and lists: each a 4xx
    problem naming the problem (never a 5xx); a catastrophic regex is previewed within
    PCRE2's limits; afterwards the API and the filter still serve."""
    g = tag()
    name, a = f"Hostile {g}", f"acct-{g}"
    api, f = start(services, prefix)
    alerts_of(prefix, [virus_alert(name, a, path="/h/" + "a" * 200)])

    def problem(method, path, body=None, data=None, want=400):
        h = {"Content-Type": "application/json"} if data is not None else None
        st, doc, _ = api.request(method, path, body=body, data=data, headers=h, user="alice")
        assert st == want, (method, path, body, st, doc)
        assert isinstance(doc, dict) and doc.get("detail"), doc
        return doc

    problem("POST", RULES, data=b"{not json")
    problem("POST", RULES, data=b"[1, 2]")
    assert "colour" in problem("POST", RULES, dict(rule(a, name, "/x"), colour="red"))["detail"]
    assert "account_id" in problem("POST", RULES, {"alert_name": name, "field": "file.path",
                                                    "op": "eq", "value": "/x"})["detail"]
    assert "unknown alert field" in problem("POST", RULES, dict(rule(a, name, "/x"),
                                                                field="nope"))["detail"]
    assert "unknown operator" in problem("POST", RULES, dict(rule(a, name, "/x"),
                                                             op="like"))["detail"]
    d = problem("POST", RULES, dict(rule(a, name, "(ab["), op="regex"))["detail"]
    assert "offset 4" in d
    assert "regex" in problem("POST", RULES, dict(rule(a, name, "a" * 2000), op="regex"))["detail"]
    assert "alert_name" in problem("POST", RULES, rule(a, "N" * 10240, "/x"))["detail"]
    assert "account_id" in problem("POST", RULES, rule("A" * 300, name, "/x"))["detail"]
    problem("POST", RULES, dict(rule(a, name, "/x"), force="yes"))
    problem("POST", RULES, dict(rule(a, name, "/x"), expires_at="2020-01-01T00:00:00Z"))
    problem("POST", RULES, dict(rule(a, name, "/x"), value=["not", "text"]))
    problem("GET", RULES + "?limit=100000")
    problem("GET", RULES + "?limit=-1")
    problem("GET", RULES + "?cursor=not-a-cursor")
    problem("GET", RULES + "?all=maybe")
    problem("GET", RULES + "?colour=red")
    st, doc, _ = api.get(RULES + "?alert_name=" + urllib.parse.quote("x' OR '1'='1"),
                         user="alice")
    assert st == 200 and doc["rules"] == []
    for rid in ("0", "-1", urllib.parse.quote("1;DROP TABLE whitelist_rules"), "9" * 40,
                "..%2F..%2Fetc", "%2e%2e"):
        problem("DELETE", f"{RULES}/{rid}", want=404)
    problem("POST", "/api/v1/alerts/..%2F..%2Fetc/whitelist", {}, want=404)
    assert "not an alert id" in problem("POST", "/api/v1/alerts/not-an-id/whitelist",
                                        {})["detail"]
    problem("POST", "/api/v1/alerts/" + "al-" + "b" * 32 + "/whitelist", {"rules": "x"})
    problem("POST", "/api/v1/alerts/" + "al-" + "b" * 32 + "/whitelist", {"rules": [1]},
            want=404)  # the alert is checked before the rules: a missing one is a 404
    problem("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": []})
    problem("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": "al-x"})
    problem("POST", "/api/v1/alerts/_bulk/unwhitelist",
            {"ids": ["al-" + "%032x" % k for k in range(1001)]})
    problem("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": ["al-x"], "remark": 5})
    d = problem("POST", "/api/v1/alerts/_bulk/unwhitelist", {"ids": [1, None, {"a": 1}, "../x"]})
    assert [i["status"] for i in d["items"]] == [400] * 4
    problem("POST", RULES + "/preview", dict(rule(a, name, "/x"), op="regex", value="(ab["))
    # a catastrophic pattern is valid: previewed, its runs stopped by PCRE2's limits
    t0 = time.time()
    st, doc, _ = api.post(RULES + "/preview", dict(rule(a, name, "^(a|aa)+$"), op="regex",
                                                   field="details.cmd"), user="alice")
    assert st == 200 and time.time() - t0 < 20, doc
    # still serving
    assert api.get("/readyz", raw=True)[0] == 200
    assert api.get(RULES + "?account=" + a, user="alice")[0] == 200
    assert f.proc.poll() is None and api.proc.poll() is None
    assert t.query("SELECT count(*) FROM whitelist_rules WHERE account_id = %s", (a,)) == [(0,)]


def test_cwppctl_whitelist_over_the_api(prefix, services):
    """cwppctl's whitelist verbs talk to cwpp-api: rule add needs --account, rule list
    shows the rule's account and pages through everything, preview prints the account, and
    an analyst of acct-a cannot add a rule for acct-b."""
    g = tag()
    name, a, b = f"Ctl {g}", f"acct-{g}-a", f"acct-{g}-b"
    start(services, prefix)
    ua = t.make_user(f"ua-{g}", a)
    rc, _, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--alert-name", name,
                           "--field", "file.path", "--op", "eq", "--value", "/c")
    assert rc == 2 and "--account is required" in err
    rc, doc, err = t.cwppctl_json(prefix, "whitelist", "rule", "add", "--account", a,
                                  "--alert-name", name, "--field", "file.path", "--op", "eq",
                                  "--value", "/c", "--force", actor=ua)
    assert rc == 0 and doc["result"]["rule"]["account_id"] == a, (doc, err)
    rc, out, err = t.cwppctl(prefix, "whitelist", "rule", "add", "--account", b,
                             "--alert-name", name, "--field", "file.path", "--op", "eq",
                             "--value", "/c", "--force", actor=ua)
    assert rc == 1 and f'holds no permission on account "{b}"' in err, err
    rc, out, _ = t.cwppctl(prefix, "whitelist", "rule", "list", "--account", a, actor=ua)
    assert rc == 0 and f"account {a}" in out and '"/c"' in out
    rc, out, _ = t.cwppctl(prefix, "whitelist", "preview", "--account", a, "--alert-name", name,
                           "--field", "file.path", "--op", "eq", "--value", "/c", actor=ua)
    assert rc == 0 and f"of account {a}" in out
