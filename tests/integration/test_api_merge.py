# SPDX-License-Identifier: Apache-2.0
"""cwpp-api's event merge and detach (services/api/merge.c, docs/api/parts/merge.yaml) and
cwppctl's `events merge` / `events detach`, on the real local Kafka broker and PostgreSQL.

The correlator applies these commands (docs/commands.md, service correlator); here the
test plays the correlator: it reads the Command record the API puts on <prefix>commands
and answers it with a CommandResult on <prefix>command-results, so what is pinned down is
the API's side of the contract: the record (service, type, actor = the authenticated
user, payload), the answer passed back (200 with the result, a refusal as 422 with the
correlator's sentence, cwppctl's exit codes), and that nothing is issued for a request
the API refuses itself (bad ids, too few or too many, an id twice, another tenant's
event, a viewer, an unknown field).

Events are written straight into the database as its owner."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Consumer

import cwpp_testlib as t
from cwpp_testlib import tag

COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")
NOW = datetime.now(timezone.utc)


def ev_id():
    return "ev-" + uuid.uuid4().hex


def al_id():
    return "al-" + uuid.uuid4().hex


class Env:
    def __init__(self):
        g = tag()
        self.prefix = t.new_prefix()
        t.create_topics(self.prefix, partitions=1)
        self.api = t.Api(self.prefix)
        self.acct_a, self.acct_b = f"acct-a-{g}", f"acct-b-{g}"
        self.a = [ev_id() for _ in range(3)]
        self.b = ev_id()
        with t.db() as conn, conn.cursor() as cur:
            for i, (eid, acct) in enumerate([(e, self.acct_a) for e in self.a] +
                                            [(self.b, self.acct_b)]):
                cur.execute("INSERT INTO events (event_id, account_id, name, level, status, "
                            "first_seen, last_seen) VALUES (%s, %s, 'story', 'high', "
                            "'unhandled', %s, %s)",
                            (eid, acct, NOW - timedelta(hours=5 - i), NOW))
        self.ana = t.make_user("ana-" + g, self.acct_a)
        self.vic = t.make_user("vic-" + g, self.acct_a, role="viewer")
        self.answered = set()
        self.reader = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS,
                                "group.id": "it-merge-" + uuid.uuid4().hex,
                                "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.reader.subscribe([self.prefix + "commands"])
        self.seen = []  # every Command record read, in order

    def commands(self, settle=1.5):
        """Reads what arrived on <prefix>commands (until settle s of silence)."""
        idle = time.time()
        while time.time() - idle < settle:
            m = self.reader.poll(0.3)
            if m is not None and m.error() is None:
                self.seen.append(COMMAND.decode(m.value()))
                idle = time.time()
        return self.seen

    def answer(self, want_type, status="ok", message="done", result=None, timeout=30):
        """Plays the correlator: the next unanswered Command of want_type is answered.
        Returns the Command record."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in self.commands(settle=0.3):
                if c["type"] == want_type and c["command_id"] not in self.answered:
                    self.answered.add(c["command_id"])
                    t.produce(self.prefix + "command-results", [RESULT.encode({
                        "command_id": c["command_id"], "service": c["service"],
                        "type": c["type"], "actor": c["actor"], "status": status,
                        "message": message, "result_json": json.dumps(result or {}),
                        "answered_at_ms": int(time.time() * 1000)})],
                        keys=[c["command_id"].encode()])
                    return c
        raise AssertionError(f"no {want_type} command arrived")

    def close(self):
        self.reader.close()
        self.api.stop()


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    e.close()


def while_answering(env, call, want_type, **answer):
    """Runs call() (a request that waits for the command's answer) while answering it.
    Returns (what call returned, the Command record)."""
    with ThreadPoolExecutor(1) as ex:
        fut = ex.submit(call)
        cmd = env.answer(want_type, **answer)
        return fut.result(timeout=60), cmd


def test_merge_issues_the_correlators_command_as_the_caller(env):
    result = {"event_id": env.a[0], "merged": [env.a[1]], "alerts": 3}
    (st, doc, _), cmd = while_answering(
        env, lambda: env.api.post("/api/v1/events/merge",
                                  {"event_ids": [env.a[1], env.a[0]], "remark": "same IP"},
                                  user=env.ana),
        "event.merge", message=f"Merged 1 event into {env.a[0]}.", result=result)
    assert (cmd["service"], cmd["actor"]) == ("correlator", env.ana)
    assert json.loads(cmd["payload_json"]) == {"event_ids": [env.a[1], env.a[0]],
                                               "remark": "same IP"}
    assert st == 200, doc
    assert (doc["status"], doc["result"], doc["command_id"]) == ("ok", result,
                                                                 cmd["command_id"])


def test_detach_issues_the_correlators_command_with_the_event(env):
    alerts = [al_id(), al_id()]
    result = {"event_id": env.a[2], "new_event_id": ev_id(), "alerts": 2}
    (st, doc, _), cmd = while_answering(
        env, lambda: env.api.post(f"/api/v1/events/{env.a[2]}/detach",
                                  {"alert_ids": alerts}, user=env.ana),
        "event.detach", result=result)
    assert (cmd["service"], cmd["actor"]) == ("correlator", env.ana)
    assert json.loads(cmd["payload_json"]) == {"event_id": env.a[2], "alert_ids": alerts}
    assert st == 200 and doc["result"] == result, doc


def test_a_refusal_of_the_correlator_is_a_422_with_its_sentence(env):
    why = f"Event {env.a[1]} is merged: it takes no more changes."
    (st, doc, _), _ = while_answering(
        env, lambda: env.api.post("/api/v1/events/merge", {"event_ids": env.a[:2]},
                                  user=env.ana),
        "event.merge", status="error", message=why)
    assert st == 422 and doc["code"] == "refused" and doc["detail"] == why, doc


def test_cwppctl_merges_and_detaches(env):
    (res, cmd) = while_answering(
        env, lambda: t.cwppctl(env.prefix, "events", "merge", env.a[0], env.a[1] + "," +
                               env.a[2], "--remark", "one story", actor=env.ana, api=env.api),
        "event.merge", message=f"Merged 2 events into {env.a[0]}.",
        result={"event_id": env.a[0], "merged": env.a[1:], "alerts": 4})
    rc, out, err = res
    assert rc == 0 and out.strip() == f"Merged 2 events into {env.a[0]}.", (out, err)
    assert json.loads(cmd["payload_json"]) == {"event_ids": env.a, "remark": "one story"}

    alerts = [al_id(), al_id(), al_id()]
    (res, cmd) = while_answering(
        env, lambda: t.cwppctl(env.prefix, "--json", "events", "detach", env.a[0], "--alerts",
                               alerts[0], alerts[1] + "," + alerts[2], "--remark", "not it",
                               actor=env.ana, api=env.api),
        "event.detach", message="Detached 3 alerts.",
        result={"event_id": env.a[0], "new_event_id": env.b, "alerts": 3})
    rc, out, err = res
    assert rc == 0, err
    assert json.loads(out)["result"]["alerts"] == 3
    assert json.loads(cmd["payload_json"]) == {"event_id": env.a[0], "alert_ids": alerts,
                                               "remark": "not it"}

    (res, _) = while_answering(
        env, lambda: t.cwppctl(env.prefix, "events", "merge", env.a[0], env.a[1],
                               actor=env.ana, api=env.api),
        "event.merge", status="error", message="Event x is handled: only open events merge.")
    rc, out, err = res
    assert rc == 1 and "only open events merge" in err, (out, err)


@pytest.mark.parametrize("path,body,status,says", [
    ("merge", {"event_ids": ["E0"]}, 400, "2 to 20"),
    ("merge", {"event_ids": ["E0"] * 2}, 400, "twice"),
    ("merge", {"event_ids": ["E0", "ev-nothex"]}, 400, "item 2"),
    ("merge", {"event_ids": ["E0"] + [ev_id() for _ in range(20)]}, 400, "2 to 20"),
    ("merge", {"event_ids": "E0,E1"}, 400, "event_ids"),
    ("merge", {"event_ids": ["E0", "E1"], "actor": "root"}, 400, "actor"),
    ("merge", {"event_ids": ["E0", "E1"], "remark": 7}, 400, "remark"),
    ("merge", {"event_ids": ["E0", "B"]}, 404, "B"),
    ("merge", {"event_ids": ["E0", "MISSING"]}, 404, "MISSING"),
    ("E0/detach", {"alert_ids": []}, 400, "1 to 1000"),
    ("E0/detach", {"alert_ids": ["al-x"]}, 400, "item 1"),
    ("E0/detach", {"alert_ids": ["A", "A"]}, 400, "twice"),
    ("B/detach", {"alert_ids": ["A"]}, 404, "B"),
    ("ev-bogus/detach", {"alert_ids": ["A"]}, 404, "ev-bogus"),
])
def test_what_the_api_refuses_issues_nothing(env, path, body, status, says):
    missing, alert = ev_id(), al_id()
    names = {"E0": env.a[0], "E1": env.a[1], "B": env.b, "MISSING": missing, "A": alert}

    def sub(v):
        if isinstance(v, list):
            return [sub(x) for x in v]
        return names.get(v, v) if isinstance(v, str) else v
    body = {k: sub(v) for k, v in body.items()}
    path = "/".join(names.get(p, p) for p in path.split("/"))
    before = len(env.commands())
    st, doc, _ = env.api.post(f"/api/v1/events/{path}", body, user=env.ana)
    assert st == status, doc
    assert names.get(says, says) in doc["detail"], doc
    assert len(env.commands()) == before


def test_a_viewer_changes_nothing(env):
    before = len(env.commands())
    st, doc, _ = env.api.post("/api/v1/events/merge", {"event_ids": env.a[:2]}, user=env.vic)
    assert st == 403, doc
    rc, _, err = t.cwppctl(env.prefix, "events", "detach", env.a[0], "--alerts", al_id(),
                           actor=env.vic, api=env.api)
    assert rc == 1, err
    assert len(env.commands()) == before


def test_cwppctl_checks_ids_before_sending(env):
    for args, says in ((["merge", env.a[0]], "usage"),
                       (["merge", env.a[0], "ev-1"], "is not an event id"),
                       (["detach", env.a[0]], "usage"),
                       (["detach", env.a[0], "--alerts", "al-1"], "is not an alert id"),
                       (["detach", env.a[0], env.a[1], "--alerts", al_id()], "one event"),
                       (["merge", env.a[0], env.a[1], "--force"], "unknown option")):
        rc, _, err = t.cwppctl(env.prefix, "events", *args, actor=env.ana, api=env.api)
        assert rc == 2 and says in err, (args, err)


def test_a_merged_event_shows_where_it_went(env):
    """Once the correlator merged an event (status merged, merged_into the survivor: its
    migration adds the column), the event list, the event and cwppctl show where it went;
    every other event shows merged_into null."""
    if not t.query("SELECT 1 FROM information_schema.columns WHERE table_schema = 'cwpp' "
                   "AND table_name = 'events' AND column_name = 'merged_into'"):
        pytest.skip("events.merged_into comes with the correlator's merge migration")
    gone = ev_id()
    with t.db() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO events (event_id, account_id, name, level, status, "
                    "merged_into, first_seen, last_seen) VALUES (%s, %s, 'story', 'high', "
                    "'merged', %s, %s, %s)", (gone, env.acct_a, env.a[0],
                                              NOW - timedelta(hours=1), NOW))
    st, doc, _ = env.api.get(f"/api/v1/events/{gone}", user=env.ana)
    assert st == 200 and (doc["status"], doc["merged_into"]) == ("merged", env.a[0]), doc
    st, doc, _ = env.api.get(f"/api/v1/events?account={env.acct_a}", user=env.ana)
    got = {e["event_id"]: e["merged_into"] for e in doc["events"]}
    assert got[gone] == env.a[0] and got[env.a[0]] is None
    rc, out, err = t.cwppctl(env.prefix, "events", "show", gone, actor=env.ana, api=env.api)
    assert rc == 0 and "Merged into" in out and env.a[0] in out, (out, err)
