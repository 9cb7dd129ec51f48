# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-api's respond and admin resources (docs/api/parts/respond.yaml,
admin.yaml) on the real local Kafka broker and PostgreSQL, with the real cwpp-responder
applying the commands the API issues (docs/commands.md).

What they pin down: every route needs a token (401); a caller sees only the events and
policies of the accounts granted (another tenant's is a 404, never a 403, and is never
touched, even inside a bulk change); a viewer changes nothing (403, and the responder
refuses a viewer's command too); the actor recorded is the authenticated user and a body
cannot name another ("actor" is an unknown field: 400); If-Match against the event's
version (412); bulk changes answer item by item (47 ok, 3 not found, nothing else
changed); policies.cancel sends the rollback now; hostile input gets a clear 4xx.

Events and policies are written straight into the database as its owner (the pipeline
that makes them is tested elsewhere): these tests are about the API and its commands."""
import json
import secrets
import time
import uuid

import pytest

import cwpp_testlib as t
from cwpp_testlib import tag

RESPONDER_DSN = t.RESPONDER_DSN
ACTION = t.AvroType("action")


# ------------------------------------------------------------------ the API

class ApiClient:
    """The test library's cwpp-api (t.Api) with the calls these tests make: call(method,
    path, body=, user=, headers=, raw=bytes) -> (status, document, headers)."""

    def __init__(self, prefix, tmp):
        self.api = t.Api(prefix, tmp=tmp)

    def call(self, method, path, body=None, user=None, headers=None, raw=None):
        if raw is not None:
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        return self.api.request(method, path, body=body, user=user, headers=headers, data=raw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def stop(self):
        self.api.stop()


class Desk:
    """A responder and an API on topics of their own."""

    def __init__(self, tmp):
        self.prefix = t.new_prefix()
        t.create_topics(self.prefix, partitions=3)
        self.responder = t.Service("responder", self.prefix, tmp, extra_env={
            "CWPP_PG_DSN": RESPONDER_DSN, "CWPP_RESPONDER_TICK_MS": "200",
            "CWPP_RESPONDER_VALIDITY_MIN_S": "1"}).start()
        self.responder.wait_ready()
        self.api = ApiClient(self.prefix, tmp)

    def close(self):
        self.api.stop()
        self.responder.stop()


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    d = Desk(tmp_path_factory.mktemp("api-respond"))
    yield d
    d.close()


def new_event(acct, status="unhandled", level="medium"):
    eid = "ev-" + uuid.uuid4().hex
    t.query("INSERT INTO events (event_id, account_id, name, level, status, first_seen, "
            "last_seen) VALUES (%s, %s, 'Port scan', %s, %s, now(), now())",
            (eid, acct, level, status))
    return eid


def event_row(eid):
    return t.query("SELECT status, owner, level, version FROM events WHERE event_id = %s",
                   (eid,))[0]


def new_active_policy(acct, asset, ip):
    """An event with an active block-IP policy whose apply task succeeded."""
    eid = new_event(acct, status="handling")
    pid, tid = "pol-" + uuid.uuid4().hex, "task-" + uuid.uuid4().hex
    t.query("INSERT INTO handling_policies (policy_id, response_id, event_id, account_id, "
            "dest_account, kind, name, entity_type, entity_value, asset_id, steps, "
            "target_status, valid_until, state, created_by) VALUES (%s, 'cmd-tests', %s, %s, "
            "%s, 'policy', 'block_ip', 'ip', %s, %s, %s, 'handling', now() + interval "
            "'1 hour', 'active', 'tests')",
            (pid, eid, acct, acct, ip, asset,
             json.dumps([{"action": "block_ip", "params": {"ip": ip}}])),
            )
    t.query("INSERT INTO handling_tasks (task_id, event_id, account_id, entity_type, "
            "entity_value, state, policy_id, kind, step, action, dest_account, asset_id, "
            "params, attempt, finished_at) VALUES (%s, %s, %s, 'ip', %s, 'succeeded', %s, "
            "'apply', 0, 'block_ip', %s, %s, %s, 1, now())",
            (tid, eid, acct, ip, pid, acct, asset, json.dumps({"ip": ip})),
            )
    return eid, pid


@pytest.fixture(scope="module")
def people():
    """Two tenants, a viewer and an admin (made in the database: there is no built-in
    admin, and the API authenticates users the database knows)."""
    u = tag()
    p = {"a": "acct-a-" + u, "b": "acct-b-" + u}
    p["ana"] = t.make_user("ana-" + u, p["a"])
    p["bob"] = t.make_user("bob-" + u, p["b"])
    p["vic"] = t.make_user("vic-" + u, p["a"], role="viewer")
    p["adm"] = t.make_user("adm-" + u, role="admin")
    return p


# ---------------------------------------------------------------- the tests

ROUTES = [("POST", "/api/v1/events/ev-" + "0" * 32 + "/status", {"status": "handling"}),
          ("POST", "/api/v1/events/_bulk/status", {"ids": [], "status": "handling"}),
          ("GET", "/api/v1/events/ev-" + "0" * 32 + "/log", None),
          ("GET", "/api/v1/events/ev-" + "0" * 32 + "/policies", None),
          ("GET", "/api/v1/events/ev-" + "0" * 32 + "/recommendations", None),
          ("GET", "/api/v1/policies", None), ("GET", "/api/v1/tasks", None),
          ("POST", "/api/v1/policies/pol-x/cancel", {}),
          ("GET", "/api/v1/users", None), ("POST", "/api/v1/users", {"user": "x"}),
          ("POST", "/api/v1/users/x/disable", {}), ("GET", "/api/v1/accounts", None),
          ("POST", "/api/v1/accounts/members", {"account": "a", "manager": "b"}),
          ("GET", "/api/v1/playbooks", None), ("DELETE", "/api/v1/playbooks/x", None)]


def test_every_route_needs_a_token(desk):
    """No token, or one that is not ours: 401 on every route of respond and admin."""
    for method, path, body in ROUTES:
        st, doc, _ = desk.api.call(method, path, body=body)
        assert st == 401, (method, path, st, doc)
        st, _, _ = desk.api.call(method, path, body=body,
                                 headers={"Authorization": "Bearer cwpp_" + "0" * 16 + "_" +
                                          "0" * 64})
        assert st == 401, (method, path, st)


def test_changes_are_the_callers_and_scoped(desk, people):
    """ana changes her tenant's event (the log records ana whatever the body claims: an
    "actor" field is refused); another tenant's event is a 404 for bob, for every route,
    and is left as it was; a viewer gets 403 and nothing changes."""
    api, ana, bob, vic = desk.api, people["ana"], people["bob"], people["vic"]
    eid = new_event(people["a"])
    path = f"/api/v1/events/{eid}"

    st, doc, _ = api.post(path + "/status", {"status": "handling", "actor": bob}, user=ana)
    assert st == 400 and doc["code"] == "unknown_field" and "actor" in doc["detail"]
    for verb, body in (("status", {"status": "handling"}), ("owner", {"owner": bob}),
                       ("level", {"level": "high"}), ("remark", {"remark": "mine"}),
                       ("respond", {"entities": ["ip:198.51.100.1"], "status": "handled"}),
                       ("playbook", {"entity": "ip:198.51.100.1"})):
        st, doc, _ = api.post(f"{path}/{verb}", body, user=bob)
        assert st == 404 and doc["code"] == "not_found", (verb, st, doc)
        st, doc, _ = api.post(f"{path}/{verb}", body, user=vic)
        assert st == 403, (verb, st, doc)
    for what in ("log", "policies", "recommendations"):
        st, doc, _ = api.get(f"{path}/{what}", user=bob)
        assert st == 404 and doc["code"] == "not_found", (what, st, doc)
    assert event_row(eid)[:3] == ("unhandled", None, "medium")

    st, doc, _ = api.post(path + "/status", {"status": "handling", "remark": "on it"}, user=ana)
    assert st == 200, doc
    assert doc["status"] == "ok" and doc["result"]["status"] == "handling"
    assert doc["command_id"]
    st, doc, _ = api.post(path + "/owner", {"owner": ana}, user=ana)
    assert st == 200, doc
    # a refusal of the responder is a 422 with its sentence
    st, doc, _ = api.post(path + "/status", {"status": "handling"}, user=ana)
    assert st == 422 and doc["code"] == "refused" and "already" in doc["detail"]
    st, doc, _ = api.get(path + "/log", user=ana)
    assert st == 200 and doc["event_id"] == eid
    actions = [(x["actor"], x["action"]) for x in doc["log"]]
    assert (ana, "event.status") in actions and (ana, "event.owner") in actions
    assert all(a == ana for a, _ in actions)
    assert event_row(eid)[:2] == ("handling", ana)


def test_a_viewers_command_is_refused_by_the_responder_too(desk, people):
    """Defence in depth: a command naming a viewer as its actor, written straight to the
    topic, is refused by the responder (libs/command)."""
    eid = new_event(people["a"])
    cid = "cmd-viewer-" + tag()
    from test_responder import command, answers  # the record helpers
    t.produce(desk.prefix + "commands", [command(cid, "event.status",
                                                 {"event_id": eid, "status": "handling"},
                                                 actor=people["vic"])])
    got = answers(desk.prefix, {cid: 1})
    assert got[cid][0]["status"] == "error" and "is a viewer" in got[cid][0]["message"]
    assert event_row(eid)[0] == "unhandled"


def test_if_match_is_the_events_version(desk, people):
    """If-Match names the version the change was decided on: another one is a 412
    precondition_failed and nothing changes; the current one applies; junk is a 400."""
    api, ana = desk.api, people["ana"]
    eid = new_event(people["a"])
    v = event_row(eid)[3]
    st, doc, hdrs = api.get(f"/api/v1/events/{eid}", user=ana)
    assert st == 200 and doc["version"] == v and hdrs["ETag"] == f'"{v}"'
    path = f"/api/v1/events/{eid}/level"
    st, doc, _ = api.post(path, {"level": "high"}, user=ana, headers={"If-Match": f'"{v + 1}"'})
    assert st == 412 and doc["code"] == "precondition_failed", doc
    assert event_row(eid)[2] == "medium"
    st, doc, _ = api.post(path, {"level": "high"}, user=ana, headers={"If-Match": "not-a-version"})
    assert st == 400, doc
    st, doc, _ = api.post(path, {"level": "high"}, user=ana, headers={"If-Match": f'"{v}"'})
    assert st == 200, doc
    assert event_row(eid)[2:] == ("high", v + 1)
    # the old version again: the event moved
    st, doc, _ = api.post(path, {"level": "low"}, user=ana, headers={"If-Match": str(v)})
    assert st == 412, doc
    assert event_row(eid)[2] == "high"


def test_bulk_status_answers_each_item_and_touches_nothing_else(desk, people):
    """50 events, 3 of them another tenant's: 47 ok, 3 not_found problems; the 3 and an
    event not named are left as they were."""
    api, ana = desk.api, people["ana"]
    mine = [new_event(people["a"]) for _ in range(47)]
    theirs = [new_event(people["b"]) for _ in range(3)]
    bystander = new_event(people["a"])
    ids = mine[:20] + theirs[:1] + mine[20:40] + theirs[1:] + mine[40:]
    st, doc, _ = api.post("/api/v1/events/_bulk/status",
                          {"ids": ids, "status": "handling", "remark": "bulk"}, user=ana)
    assert st == 200, doc
    assert (doc["ok"], doc["failed"]) == (47, 3)
    assert [x["id"] for x in doc["items"]] == ids
    for x in doc["items"]:
        if x["id"] in theirs:
            assert x["status"] == "error" and x["problem"]["code"] == "not_found"
        else:
            assert x["status"] == "ok" and x["result"]["status"] == "handling", x
    for e in mine:
        assert event_row(e)[0] == "handling"
    for e in theirs + [bystander]:
        assert event_row(e)[:2] == ("unhandled", None)
    assert t.query("SELECT count(*) FROM activity_log WHERE event_id = ANY(%s)",
                   (theirs + [bystander],))[0][0] == 0

    # limits and checks of the whole request
    st, doc, _ = api.post("/api/v1/events/_bulk/status",
                          {"ids": ["ev-" + uuid.uuid4().hex for _ in range(501)],
                           "status": "handling"}, user=ana)
    assert st == 400 and "500" in doc["detail"]
    st, doc, _ = api.post("/api/v1/events/_bulk/level", {"ids": [mine[0], mine[0]],
                                                         "level": "low"}, user=ana)
    assert st == 400 and "twice" in doc["detail"]
    st, doc, _ = api.post("/api/v1/events/_bulk/status", {"ids": mine[:1], "status": "bogus"},
                          user=ana)
    assert st == 400 and "status" in doc["detail"]
    st, doc, _ = api.post("/api/v1/events/_bulk/level", {"ids": mine[:2], "level": "low"},
                          user=people["vic"])
    assert st == 403

    # cwppctl's bulk form: a comma-separated list, one line per event, exit 1 when some
    # were not changed
    rc, out, err = t.cwppctl(desk.prefix, "events", "level", ",".join(mine[:3] + theirs[:1]),
                             "low", "--remark", "bulk via cwppctl", actor=ana, api=api.api)
    assert rc == 1, err
    lines = out.splitlines()
    assert [ln.split(":")[0] for ln in lines[:4]] == mine[:3] + theirs[:1]
    assert "not changed" in lines[3] and lines[-1] == "3 changed, 1 not"
    for e in mine[:3]:
        assert t.query("SELECT level FROM events WHERE event_id = %s", (e,))[0][0] == "low"
    assert event_row(theirs[0])[2] == "medium"  # another tenant's: untouched


def test_policies_and_tasks_listed_and_a_lease_cancelled(desk, people):
    """GET /api/v1/policies and /tasks see the caller's accounts only, filter and page;
    POST /api/v1/policies/{id}/cancel sends the rollback now (the unblock_ip action is on
    <prefix>actions) and logs who cancelled; bob gets 404 on ana's policy."""
    api, ana, bob = desk.api, people["ana"], people["bob"]
    asset, ip = "host-" + tag(), "198.51.100.%d" % (secrets.randbelow(200) + 20)
    eid, pid = new_active_policy(people["a"], asset, ip)
    eid2, pid2 = new_active_policy(people["a"], asset, ip)
    _, pid_b = new_active_policy(people["b"], "host-" + tag(), ip)

    st, doc, _ = api.get(f"/api/v1/policies?account={people['a']}&limit=1", user=ana)
    assert st == 200 and doc["total"] == 2 and len(doc["policies"]) == 1
    assert doc["next_cursor"]
    first = doc["policies"][0]["policy_id"]
    st, doc2, _ = api.get(f"/api/v1/policies?account={people['a']}&limit=1&cursor="
                          + doc["next_cursor"], user=ana)
    assert st == 200 and doc2["next_cursor"] is None
    assert {first, doc2["policies"][0]["policy_id"]} == {pid, pid2}
    st, doc, _ = api.get("/api/v1/policies?state=active&entity=ip:" + ip, user=ana)
    assert st == 200 and {p["policy_id"] for p in doc["policies"]} == {pid, pid2}
    st, doc, _ = api.get(f"/api/v1/policies?event={eid}", user=bob)
    assert st == 200 and doc["total"] == 0 and doc["policies"] == []
    st, doc, _ = api.get(f"/api/v1/tasks?event={eid}", user=ana)
    assert st == 200 and [x["action"] for x in doc["tasks"]] == ["block_ip"]
    st, doc, _ = api.get(f"/api/v1/events/{eid}/policies", user=ana)
    assert st == 200 and doc["policies"][0]["tasks"][0]["state"] == "succeeded"

    st, doc, _ = api.post(f"/api/v1/policies/{pid}/cancel", {}, user=bob)
    assert st == 404 and doc["code"] == "not_found"
    st, doc, _ = api.post(f"/api/v1/policies/{pid_b}/cancel", {}, user=ana)
    assert st == 404
    st, doc, _ = api.post(f"/api/v1/policies/{pid}/cancel", {}, user=people["vic"])
    assert st == 403
    st, doc, _ = api.post(f"/api/v1/policies/{pid}/cancel", {"remark": "false positive"},
                          user=ana)
    assert st == 200, doc
    assert (doc["result"]["state"], doc["result"]["rollbacks"]) == ("expiring", 1)

    def rollback_sent():
        for m in t.consume(desk.prefix + "actions", 1, timeout=5, settle=0.5):
            a = ACTION.decode(m.value())
            if a["policy_id"] == pid and a["action"] == "unblock_ip":
                return a
        return None
    sent = t.wait_for(rollback_sent, timeout=20, what="the unblock_ip action")
    assert sent["asset_id"] == asset
    st, doc, _ = api.get(f"/api/v1/events/{eid}/log", user=ana)
    assert (ana, "policy.cancelled") in [(x["actor"], x["action"]) for x in doc["log"]]
    st, doc, _ = api.post(f"/api/v1/policies/{pid}/cancel", {}, user=ana)
    assert st == 422 and "ended already" in doc["detail"]
    # the other policy was not touched
    assert t.query("SELECT state FROM handling_policies WHERE policy_id = %s",
                   (pid2,))[0][0] == "active"
    # the same through cwppctl: listed, then cancelled; bob's cwppctl finds nothing
    rc, out, err = t.cwppctl(desk.prefix, "--json", "policies", "list", "--account", people["a"],
                             "--limit", "5", actor=ana, api=api.api)
    assert rc == 0, err
    listed = json.loads(out)
    assert {p["policy_id"] for p in listed["policies"]} == {pid, pid2} and listed["total"] == 2
    rc, out, err = t.cwppctl(desk.prefix, "tasks", "list", "--event", eid2, actor=ana, api=api.api)
    assert rc == 0 and "block_ip" in out, err
    rc, out, err = t.cwppctl(desk.prefix, "policies", "cancel", pid2, actor=bob, api=api.api)
    assert rc == 1 and "no policy" in err.lower(), err
    rc, out, err = t.cwppctl(desk.prefix, "policies", "cancel", pid2, "--remark", "done",
                             actor=ana, api=api.api)
    assert rc == 0, err
    assert t.query("SELECT state FROM handling_policies WHERE policy_id = %s",
                   (pid2,))[0][0] in ("expiring", "expired")


def test_admin_resources(desk, people):
    """Users (add a viewer, grant, role, disable), member accounts and playbooks through
    the API as an admin; an analyst gets 403 on every admin change."""
    api, adm, ana = desk.api, people["adm"], people["ana"]
    u = "val-" + tag()
    st, doc, _ = api.post("/api/v1/users", {"user": u, "role": "viewer"}, user=adm)
    assert st == 200 and "added as viewer" in doc["message"], doc
    st, doc, _ = api.post(f"/api/v1/users/{u}/grant", {"account": people["a"]}, user=adm)
    assert st == 200, doc
    st, doc, _ = api.post(f"/api/v1/users/{u}/role", {"role": "analyst"}, user=adm)
    assert st == 200 and "now an analyst" in doc["message"], doc
    st, doc, _ = api.post(f"/api/v1/users/{u}/disable", None, user=adm)
    assert st == 200, doc
    st, doc, _ = api.get("/api/v1/users", user=adm)
    row = [x for x in doc["users"] if x["user"] == u][0]
    assert (row["role"], row["state"], row["accounts"]) == ("analyst", "disabled", people["a"])
    st, doc, _ = api.post("/api/v1/users/nobody-" + tag() + "/enable", None, user=adm)
    assert st == 404
    st, doc, _ = api.post("/api/v1/users", {"user": "x-" + tag(), "role": "root"}, user=adm)
    assert st == 400 and "role" in doc["detail"]
    for method, path, body in (("POST", "/api/v1/users", {"user": "x-" + tag()}),
                               ("GET", "/api/v1/users", None),
                               ("POST", f"/api/v1/users/{u}/enable", None),
                               ("POST", "/api/v1/accounts/members",
                                {"account": "m-" + tag(), "manager": people["a"]}),
                               ("POST", "/api/v1/playbooks", {"name": "x"}),
                               ("DELETE", "/api/v1/playbooks/x", None)):
        st, doc, _ = api.call(method, path, body=body, user=ana)
        assert st == 403, (method, path, st, doc)

    member = "m-" + tag()
    st, doc, _ = api.post("/api/v1/accounts/members", {"account": member,
                                                       "manager": people["a"]}, user=adm)
    assert st == 200, doc
    st, doc, _ = api.get("/api/v1/accounts", user=ana)
    assert {"member": member, "manager": people["a"]}.items() <= \
        [x for x in doc["member_accounts"] if x["member"] == member][0].items()
    st, doc, _ = api.get("/api/v1/accounts", user=people["bob"])
    assert member not in [x["member"] for x in doc["member_accounts"]]

    name = "pb-" + tag()
    pb = {"name": name, "entity_type": "ip", "description": "block it",
          "steps": [{"action": "block_ip", "params": {"ip": "{entity}"}}]}
    st, doc, _ = api.post("/api/v1/playbooks", pb, user=adm)
    assert st == 200, doc
    st, doc, _ = api.get("/api/v1/playbooks?entity_type=ip", user=ana)
    assert name in [x["name"] for x in doc["playbooks"]]
    st, doc, _ = api.post("/api/v1/playbooks", dict(pb, steps=[{"action": "format_disk"}]),
                          user=adm)
    assert st == 400 and "not valid" in doc["detail"]
    # what a step acts on comes from the event's entity only: an admin cannot store a
    # playbook aimed at a fixed file, process or account
    for et, step, says in (
            ("file", {"action": "quarantine_file", "params": {"path": "/etc/shadow"}},
             '"path" of quarantine_file must be the placeholder "{entity}"'),
            ("process", {"action": "kill_process", "params": {"pid": 1}},
             '"pid" of kill_process must be the placeholder "{pid}"'),
            ("host_account", {"action": "enable_account", "params": {"user": "root"}},
             '"user" of enable_account must be the placeholder "{entity}"')):
        fixed = f"pb-fixed-{et}-" + tag()
        st, doc, _ = api.post("/api/v1/playbooks", {"name": fixed, "entity_type": et,
                                                    "steps": [step]}, user=adm)
        assert st == 400 and says in doc["detail"], doc
        assert t.query("SELECT count(*) FROM playbooks WHERE name = %s", (fixed,))[0][0] == 0
    st, doc, _ = api.delete(f"/api/v1/playbooks/{name}", user=adm)
    assert st == 200, doc
    st, doc, _ = api.delete(f"/api/v1/playbooks/{name}", user=adm)
    assert st == 422


def test_hostile_input_gets_a_clear_4xx(desk, people):
    """Bad JSON, a body that is not an object, unknown fields and arguments, a huge limit,
    a bad cursor, SQL-ish strings, ids with ../ or far too long: clear 4xx, and the API
    keeps answering."""
    api, ana = desk.api, people["ana"]
    eid = new_event(people["a"])
    path = f"/api/v1/events/{eid}/status"
    cases = [
        (api.call("POST", path, user=ana, raw=b"{not json"), 400),
        (api.call("POST", path, user=ana, raw=b"[1, 2]"), 400),
        (api.post(path, {"status": "handling", "sql": "x"}, user=ana), 400),
        (api.post(path, {"status": "handled'; DROP TABLE events; --"}, user=ana), 400),
        (api.post(path, {"status": 7}, user=ana), 400),
        (api.post(f"/api/v1/events/{eid}/owner", {"owner": "x' OR '1'='1"}, user=ana), 422),
        (api.post(f"/api/v1/events/{eid}/respond", {"entities": "ip:1.2.3.4",
                                                    "status": "handled"}, user=ana), 400),
        (api.post(f"/api/v1/events/{eid}/respond", {"entities": ["ip:1.2.3.4"] * 51,
                                                    "status": "handled"}, user=ana), 400),
        (api.post(f"/api/v1/events/{eid}/respond", {"entities": ["ip:1.2.3.4"],
                                                    "status": "handled",
                                                    "validity_s": "1h"}, user=ana), 400),
        (api.post("/api/v1/events/ev-..%2F..%2Fx/status", {"status": "handling"}, user=ana),
         404),
        (api.post("/api/v1/events/" + "e" * 5000 + "/status", {"status": "handling"},
                  user=ana), 404),
        (api.get("/api/v1/events/ev-1%27%20OR%20%271%27%3D%271/log", user=ana), 404),
        (api.get("/api/v1/policies?limit=100000", user=ana), 400),
        (api.get("/api/v1/policies?limit=-1", user=ana), 400),
        (api.get("/api/v1/policies?cursor=AAAA", user=ana), 400),
        (api.get("/api/v1/tasks?since=yesterday", user=ana), 400),
        (api.get("/api/v1/tasks?state=exploded", user=ana), 400),
        (api.get("/api/v1/tasks?entity=nocolon", user=ana), 400),
        (api.get("/api/v1/tasks?event=ev-1%27%3B", user=ana), 400),
        (api.get("/api/v1/policies?account=x%27%20OR%201%3D1", user=ana), 200),
        (api.get("/api/v1/policies?bogus=1", user=ana), 400),
        (api.post("/api/v1/policies/..%2F..%2Fetc/cancel", {}, user=ana), 404),
        (api.post("/api/v1/policies/" + "p" * 300 + "/cancel", {}, user=ana), 404),
        (api.delete("/api/v1/playbooks/" + "q" * 300, user=people["adm"]), 404),
    ]
    for i, ((st, doc, _), want) in enumerate(cases):
        assert st == want, (i, st, doc)
        if st >= 400:
            assert isinstance(doc, dict) and doc.get("detail"), (i, doc)
    st, doc, _ = api.get("/api/v1/policies?account=x%27%20OR%201%3D1", user=ana)
    assert doc["total"] == 0
    # a cursor of another list is refused
    _, a, _ = api.get("/api/v1/policies?limit=1", user=people["adm"])
    if a.get("next_cursor"):
        st, doc, _ = api.get("/api/v1/tasks?limit=1&cursor=" + a["next_cursor"],
                             user=people["adm"])
        assert st == 400, doc
    assert event_row(eid)[0] == "unhandled"
    assert api.get(f"/api/v1/events/{eid}/log", user=ana)[0] == 200


def test_cwppctl_goes_through_the_api(desk, people):
    """cwppctl's respond and admin verbs are clients of these routes: a viewer's change is
    refused with the API's sentence (exit 1), users role changes a role, and --json prints
    the API's documents."""
    api = desk.api.api
    eid = new_event(people["a"])
    rc, _, err = t.cwppctl(desk.prefix, "events", "status", eid, "handling",
                           actor=people["vic"], api=api)
    assert rc == 1 and "viewer" in err, err
    rc, out, err = t.cwppctl(desk.prefix, "events", "status", eid, "handling", "--remark",
                             "via cwppctl", actor=people["ana"], api=api)
    assert rc == 0 and "unhandled -> handling" in out, err
    rc, doc, err = t.cwppctl_json(desk.prefix, "events", "log", eid, actor=people["ana"],
                                  api=api)
    assert rc == 0 and doc["log"][0]["actor"] == people["ana"], err
    u = t.make_user("rolf-" + tag())
    rc, out, err = t.cwppctl(desk.prefix, "users", "role", u, "viewer", actor=people["adm"],
                             api=api)
    assert rc == 0 and "now a viewer" in out, err
    assert t.query("SELECT role FROM users WHERE user_name = %s", (u,))[0][0] == "viewer"
    rc, _, err = t.cwppctl(desk.prefix, "users", "role", u, "admin", actor=people["ana"],
                           api=api)
    assert rc == 1 and "admin" in err


def test_a_value_echoed_in_a_problem_stays_valid_utf8(desk, people):
    """A bad value cut to fit a problem's sentence is cut between characters: the problem
    is still a JSON document naming it."""
    eid = new_event(people["a"])
    st, doc, _ = desk.api.post(f"/api/v1/events/{eid}/level", {"level": "€" * 30},
                               user=people["ana"])
    assert st == 400 and "is not a level" in doc["detail"] and "€" in doc["detail"]
    st, doc, _ = desk.api.get("/api/v1/tasks?state=" + "%E2%82%AC" * 30, user=people["ana"])
    assert st == 400 and "state" in doc["detail"]


def test_a_bulk_change_stops_sending_once_the_responder_does_not_answer(people, tmp_path):
    """No responder on the prefix: the first change of a bulk is pending after the API's
    wait (its command stays on the topic) and the others are not sent (unavailable), so
    one request never waits 500 times as long."""
    api = t.Api(t.new_prefix(), tmp=tmp_path, extra_env={"CWPP_API_COMMAND_TIMEOUT_MS": "1000"})
    try:
        ids = [new_event(people["a"]) for _ in range(3)]
        started = time.time()
        st, doc, _ = api.post("/api/v1/events/_bulk/status", {"ids": ids, "status": "handling"},
                              user=people["ana"])
        assert st == 200 and time.time() - started < 10, doc
        assert [x["status"] for x in doc["items"]] == ["pending", "error", "error"]
        assert doc["items"][0]["command_id"]
        assert all(x["problem"]["code"] == "unavailable" for x in doc["items"][1:])
        assert (doc["ok"], doc["failed"]) == (0, 3)
    finally:
        api.stop()
