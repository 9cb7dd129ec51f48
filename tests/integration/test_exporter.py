# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-exporter on the real local Kafka broker and PostgreSQL, with
the real pipeline and responder in front of it: Excel exports read back with a third-party
reader (python3-openpyxl) and compared with the database, the handled-event stream and its
OCSF twin consumed with a third-party client (python3-confluent-kafka, read_committed) and
decoded with python3-avro, kill -9 of the exporter while it publishes, and retention
(docs/architecture.md "Export", "Limits"; docs/exporter.md)."""
import hashlib
import json
import random
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag
from test_responder import Pipe

openpyxl = pytest.importorskip("openpyxl")

EXPORTER_DSN = t.EXPORTER_DSN
HANDLED = t.AvroType("handled_event")
COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")


class ExportPipe(Pipe):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.exporter = None
        self.start_exporter()
        # cwppctl's cwpp-api, started with the module's services: the test library's Api
        # creates (and records) its prefix's topics, and topics recorded inside a test are
        # deleted when that test ends
        t.api_for(self.prefix)

    def start_exporter(self, **env):
        e = {"CWPP_PG_DSN": EXPORTER_DSN, "CWPP_EXPORTER_TICK_MS": "200",
             # one publisher per deployment: this test's own transactional id, under
             # the exporter principal's cwpp-exporter-handled* (docs/kafka-security.md)
             "CWPP_HANDLED_TRANSACTIONAL_ID": f"cwpp-exporter-handled-{self.prefix}"}
        e.update(env)
        self.exporter = t.Service("exporter", self.prefix, self.tmp, extra_env=e,
                                  group=f"{self.prefix}exporter").start()
        self.exporter.wait_ready()
        return self.exporter

    def close(self):
        super().close()
        if self.exporter and self.exporter.proc.poll() is None:
            self.exporter.proc.kill()


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = ExportPipe(tmp_path_factory.mktemp("exporter"))
    yield p
    p.close()


def story(pipe, acct, n=3):
    """n events of acct (each its own asset and attacker), returned by event id."""
    for i in range(n):
        pipe.raw(acct,
                 alert(acct, f"Brute force {i}", "brute_force", ["high", "medium", "low"][i % 3],
                       at(50 - i), f"{acct}-h{i}", remote_ip=f"198.51.100.{10 + i}"),
                 alert(acct, f"Malware {i}", "virus", "critical" if i == 0 else "high",
                       at(49 - i), f"{acct}-h{i}", source="virus_scan",
                       file={"path": f"/tmp/{acct}-{i}.bin", "md5": t.md5hex(acct + str(i))},
                       remote_ip=f"198.51.100.{10 + i}"))
    pipe.event_of(acct, 2 * n)
    return [r[0] for r in t.query("SELECT event_id FROM events WHERE account_id = %s "
                                  "ORDER BY event_id", (acct,))]


def read_handled(prefix, timeout=20):
    """Every committed record of <prefix>events.handled and .ocsf."""
    from confluent_kafka import Consumer
    out = {}
    for suffix in ("events.handled", "events.handled.ocsf"):
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "rd-" + uuid.uuid4().hex,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        c.subscribe([prefix + suffix])
        recs, idle, deadline = [], 0, time.time() + timeout
        while time.time() < deadline and idle < 6:
            m = c.poll(0.5)
            if m is None or m.error():
                idle += 1
                continue
            idle = 0
            recs.append(m)
        c.close()
        out[suffix] = recs
    return out


def handle(pipe, eid):
    pipe.ok("events", "status", eid, "handled", "--remark", "done")


# ------------------------------------------------------------------------ tests

def test_export_workbook_matches_the_database(pipe, tmp_path):
    """Four sheets, styled frozen headers, real date cells, values equal to the database."""
    acct = "acct-" + tag()
    ids = story(pipe, acct, 3)
    pipe.ok("events", "owner", ids[0], "admin")
    out = tmp_path / "events.xlsx"
    rc, doc, err = pipe.ctl_json("export", "--ids", *ids, "--out", str(out))
    assert rc == 0, err
    assert doc["result"]["events"] == 3
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Events", "Affected assets", "Entities", "Alerts"]
    ev = wb["Events"]
    head = [c.value for c in ev[1]]
    assert head[:4] == ["Event ID", "Name", "Level", "Status"] and "Handling" in head
    assert ev.freeze_panes == "A2" and ev["A1"].font.bold
    assert ev.column_dimensions["A"].width > 30
    rows = {r[0]: dict(zip(head, r)) for r in ev.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == set(ids)
    db = {r[0]: r for r in t.query(
        "SELECT event_id, name, level, status, owner, alert_count, asset_count, first_seen, "
        "last_seen, urgency FROM events WHERE event_id = ANY(%s)", (ids,))}
    for eid, r in rows.items():
        d = db[eid]
        assert (r["Name"], r["Level"], r["Status"], r["Owner"], r["Alerts"],
                r["Affected assets"], r["Urgency"]) == (d[1], d[2], d[3], d[4], d[5], d[6], d[9])
        first = r["First occurrence (UTC)"]
        assert isinstance(first, datetime)
        assert abs(first.replace(tzinfo=timezone.utc) - d[7]).total_seconds() < 1
    assets = list(wb["Affected assets"].iter_rows(min_row=2, values_only=True))
    assert len(assets) == sum(db[e][6] for e in ids)
    assert {a[1] for a in assets} == {f"{acct}-h{i}" for i in range(3)}
    ents = list(wb["Entities"].iter_rows(min_row=2, values_only=True))
    n_ent = t.query("SELECT count(*) FROM (SELECT DISTINCT event_id, entity_type, value FROM "
                    "entity_alerts WHERE event_id = ANY(%s)) x", (ids,))[0][0]
    assert len(ents) == n_ent
    ip_row = [e for e in ents if e[1] == "ip" and e[2] == "198.51.100.10"][0]
    stats = t.query("SELECT events, alerts, tasks FROM entity_stats_30d WHERE account_id = %s "
                    "AND entity_type = 'ip' AND value = '198.51.100.10'", (acct,))[0]
    assert ip_row[3:6] == tuple(stats)
    # filters narrow within the ids; download gives the same bytes
    rc, doc2, _ = pipe.ctl_json("export", "--ids", *ids, "--level", "critical",
                                "--out", str(tmp_path / "c.xlsx"))
    assert rc == 0 and doc2["result"]["events"] == 1
    job = doc["result"]["job_id"]
    rc, _, err = pipe.ctl("export", "download", job, "--out", str(tmp_path / "again.xlsx"))
    assert rc == 0, err
    assert (tmp_path / "again.xlsx").read_bytes() == out.read_bytes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == doc["result"]["sha256"]
    rc, lst, _ = pipe.ctl_json("export", "list")
    assert job in [j["job_id"] for j in lst["exports"]]


@pytest.mark.parametrize("args,says", [
    (["--level", "severe"], "is not a level"),
    (["--status", "closed"], "is not a status"),
    (["--since", "yesterday-ish"], "must be a time"),
    (["--since", "2026-05-02", "--until", "2026-05-01"], "--until is before --since"),
    ([], "usage: cwppctl export"),
])
def test_invalid_filters_are_refused_with_a_sentence(pipe, args, says):
    out = [] if not args else ["--out", "/tmp/never.xlsx"]
    rc, _, err = pipe.ctl("export", *args, *out)
    assert rc == 2 and says in err, err


def test_the_service_refuses_bad_filters_and_more_than_1000_events(pipe):
    """Sent straight to the exporter (another client than cwppctl): bad filters and too many
    events are answered with a sentence; 1,001 matching events are refused with the count."""
    acct = "acct-" + tag()
    now = datetime.now(timezone.utc)
    ids = ["ev-" + uuid.uuid4().hex for _ in range(1001)]
    with t.db() as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO cwpp.events (event_id, account_id, name, level, status, "
                        "first_seen, last_seen) VALUES (%s, %s, 'bulk', 'low', 'unhandled', "
                        "%s, %s)", [(i, acct, now, now) for i in ids])
    cmds = {f"cmd-x{k}-{tag()}": p for k, p in enumerate([
        {"ids": ids},
        {"levels": ["severe"]},
        {"since_ms": 2000, "until_ms": 1000},
        {"colour": "red"},
        {"ids": ids[:5], "statuses": ["unhandled"]},
    ])}
    t.produce(pipe.prefix + "commands", [COMMAND.encode({
        "command_id": cid, "service": "exporter", "type": "export.create", "actor": "admin",
        "issued_at_ms": int(time.time() * 1000), "payload_json": json.dumps(p)})
        for cid, p in cmds.items()])
    got = {}
    deadline = time.time() + 30
    while len(got) < len(cmds) and time.time() < deadline:
        for m in t.consume(pipe.prefix + "command-results", 1, timeout=3, settle=1):
            r = RESULT.decode(m.value())
            if r["command_id"] in cmds and r["status"] != "progress":
                got[r["command_id"]] = r
    msgs = [got[c]["message"] for c in cmds]
    assert "1001 events match, more than the 1000" in msgs[0]
    assert "is not a level" in msgs[1]
    assert "before its start" in msgs[2]
    assert "Unknown filter" in msgs[3]
    assert got[list(cmds)[4]]["status"] == "ok" and "5 events" in msgs[4]
    t.query("DELETE FROM events WHERE account_id = %s", (acct,))


def test_exports_hold_only_the_actors_accounts(pipe, tmp_path):
    """An analyst exports the events of the accounts granted to them only; an unknown user
    is refused."""
    mine, theirs = "acct-" + tag(), "acct-" + tag()
    a = story(pipe, mine, 1) + story(pipe, theirs, 1)
    ana = "ana-" + tag()
    pipe.user(ana, mine)
    rc, doc, err = pipe.ctl_json("export", "--ids", *a, "--out", str(tmp_path / "a.xlsx"),
                                 actor=ana)
    assert rc == 0, err
    assert doc["result"]["events"] == 1
    wb = openpyxl.load_workbook(tmp_path / "a.xlsx")
    assert [r[0] for r in wb["Events"].iter_rows(min_row=2, values_only=True)] == a[:1]
    # cwppctl goes through cwpp-api, where only an authenticated user can act: the unknown
    # actor is sent straight to the exporter, as another client could
    cid = f"cmd-nobody-{tag()}"
    t.produce(pipe.prefix + "commands", [COMMAND.encode({
        "command_id": cid, "service": "exporter", "type": "export.create",
        "actor": "nobody-" + tag(), "issued_at_ms": int(time.time() * 1000),
        "payload_json": json.dumps({"ids": a})})])
    got, deadline = None, time.time() + 30
    while got is None and time.time() < deadline:
        for m in t.consume(pipe.prefix + "command-results", 1, timeout=3, settle=1):
            r = RESULT.decode(m.value())
            if r["command_id"] == cid and r["status"] != "progress":
                got = r
    assert got is not None and got["status"] == "error" and \
        "not a known user" in got["message"], got


def test_handled_events_are_published_once_as_avro_and_ocsf(pipe):
    acct = "acct-" + tag()
    ids = story(pipe, acct, 3)
    for eid in ids[:2]:
        handle(pipe, eid)
    want = set(ids[:2])

    def published():
        recs = read_handled(pipe.prefix, timeout=5)
        return {m.key().decode() for m in recs["events.handled"]} >= want
    t.wait_for(published, timeout=30, what="both handled events published")
    recs = read_handled(pipe.prefix)
    mine = [HANDLED.decode(m.value()) for m in recs["events.handled"]
            if m.key().decode() in want]
    assert sorted(r["event_id"] for r in mine) == sorted(want)  # once each
    r = [x for x in mine if x["event_id"] == ids[0]][0]
    db = t.query("SELECT name, level, alert_count FROM events WHERE event_id = %s", (ids[0],))[0]
    assert (r["name"], r["level"], r["alert_count"]) == db
    assert len(r["alerts"]) == 2 and all(a["status"] == "handled" for a in r["alerts"])
    assert {e["entity_type"] for e in r["entities"]} >= {"host", "ip", "file"}
    assert [a["action"] for a in r["activity"] if a["action"] == "event.status"]
    assert r["handled_at_ms"] >= r["last_seen_ms"]
    ocsf = [json.loads(m.value()) for m in recs["events.handled.ocsf"]
            if m.key().decode() in want]
    assert len(ocsf) == 2
    o = [x for x in ocsf if x["finding_info_list"][0]["uid"] == ids[0]][0]
    assert (o["class_uid"], o["category_uid"], o["activity_id"], o["type_uid"]) == \
        (2005, 2, 3, 200503)
    assert o["severity_id"] == {"critical": 5, "high": 4, "medium": 3, "low": 2}[db[1]]
    assert o["status_id"] == 5 and o["cloud"]["account"]["uid"] == acct
    assert o["metadata"]["version"] == "1.1.0" and "incident" in o["metadata"]["profiles"]
    assert o["time"] == r["handled_at_ms"]
    assert ids[2] not in {m.key().decode() for m in recs["events.handled"]}


def test_an_event_handled_twice_is_published_once_per_handling(pipe):
    """Handled, reopened and handled again while the exporter is down: both handlings are
    published, in seq order, each with its own handled time (the queue row's), not twice
    the latest."""
    acct = "acct-" + tag()
    (eid,) = story(pipe, acct, 1)
    pipe.exporter.stop()
    handle(pipe, eid)
    time.sleep(1.1)
    pipe.ok("events", "status", eid, "unhandled", "--remark", "Re-handle")
    pipe.ok("events", "status", eid, "handled", "--remark", "done again")
    rows = t.query("SELECT seq, (extract(epoch FROM handled_at) * 1000)::bigint FROM "
                   "handled_events WHERE event_id = %s ORDER BY seq", (eid,))
    assert len(rows) == 2 and rows[1][1] - rows[0][1] >= 1000
    pipe.start_exporter()

    def both():
        recs = read_handled(pipe.prefix, timeout=5)
        return sum(m.key().decode() == eid for m in recs["events.handled"]) >= 2
    t.wait_for(both, timeout=30, what="both handlings published")
    recs = read_handled(pipe.prefix)
    mine = [HANDLED.decode(m.value()) for m in recs["events.handled"]
            if m.key().decode() == eid]
    assert [(r["seq"], r["handled_at_ms"]) for r in mine] == rows


def test_kill9_of_the_exporter_neither_skips_nor_repeats(pipe):
    """Events become handled while the exporter is killed with SIGKILL again and again: in
    the end every one is on both topics exactly once, in seq order."""
    acct = "acct-" + tag()
    ids = story(pipe, acct, 12)
    rnd = random.Random(5)
    for k, eid in enumerate(ids):
        handle(pipe, eid)
        if k % 3 == 2:
            time.sleep(rnd.uniform(0.0, 0.6))
            pipe.exporter.kill9()
            pipe.start_exporter()
    seqs = dict(t.query("SELECT event_id, seq FROM handled_events WHERE event_id = ANY(%s)",
                        (ids,)))
    assert len(seqs) == len(ids)

    def all_there():
        recs = read_handled(pipe.prefix, timeout=5)
        return set(ids) <= {m.key().decode() for m in recs["events.handled"]}
    t.wait_for(all_there, timeout=60, what="every handled event published")
    recs = read_handled(pipe.prefix)
    keys = [m.key().decode() for m in recs["events.handled"] if m.key().decode() in ids]
    assert sorted(keys) == sorted(ids), "skipped or repeated"
    okeys = [m.key().decode() for m in recs["events.handled.ocsf"] if m.key().decode() in ids]
    assert sorted(okeys) == sorted(ids)
    all_seqs = [HANDLED.decode(m.value())["seq"] for m in recs["events.handled"]]
    assert len(all_seqs) == len(set(all_seqs)), "a seq published twice"
    for eid in ids:
        r = [HANDLED.decode(m.value()) for m in recs["events.handled"]
             if m.key().decode() == eid][0]
        assert r["seq"] == seqs[eid]


def test_a_seq_still_open_is_waited_for_and_a_poison_event_is_passed_over(pipe):
    """A responder transaction that took a seq and is still open holds the stream back (a
    later, committed seq is not published before it: nothing is skipped); an event that can
    never be encoded is logged and passed over instead of stopping the stream."""
    acct = "acct-" + tag()
    a, b = story(pipe, acct, 2)
    poison = "ev-" + uuid.uuid4().hex
    now = datetime.now(timezone.utc)
    t.query("INSERT INTO events (event_id, account_id, name, level, status, first_seen, "
            "last_seen, summary) VALUES (%s, %s, 'poison', 'low', 'handled', %s, %s, "
            "'{\"assets\": {\"h\": {\"ips\": [1, 2]}}}')", (poison, acct, now, now))
    held = t.db()
    cur = held.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO cwpp.handled_events (event_id) VALUES (%s)", (a,))
    t.query("INSERT INTO handled_events (event_id) VALUES (%s)", (poison,))
    handle(pipe, b)  # a higher seq, committed
    time.sleep(3)
    keys = {m.key().decode() for m in read_handled(pipe.prefix, timeout=4)["events.handled"]}
    assert b not in keys, "published past a seq whose transaction is still open"
    cur.execute("COMMIT")
    held.close()

    def both():
        k = {m.key().decode() for m in read_handled(pipe.prefix, timeout=4)["events.handled"]}
        return {a, b} <= k
    t.wait_for(both, timeout=30, what="both published once the transaction ended")
    recs = read_handled(pipe.prefix)["events.handled"]
    keys = [m.key().decode() for m in recs]
    assert poison not in keys and keys.count(a) == 1 and keys.count(b) == 1
    seq = {m.key().decode(): HANDLED.decode(m.value())["seq"] for m in recs}
    assert seq[a] < seq[b]  # the held seq came first
    m = t.metrics(pipe.exporter)
    assert m["cwpp_exporter_handled_unpublishable_total"] >= 1
    assert "handled_unpublishable" in pipe.exporter.log_text()
    t.query("DELETE FROM events WHERE event_id = %s", (poison,))


def test_retention_deletes_old_events_in_batches_and_keeps_their_log(pipe):
    """Events last seen over 180 days ago go, with their alerts, chains, entities, policies
    and tasks, a batch at a time; their activity log stays; recent events stay."""
    acct = "acct-" + tag()
    (recent,) = story(pipe, acct, 1)
    old = ["ev-" + uuid.uuid4().hex for _ in range(5)]
    then = datetime.now(timezone.utc) - timedelta(days=200)
    with t.db() as conn, conn.cursor() as cur:
        cur.execute("SET search_path = cwpp")
        for i, eid in enumerate(old):
            aid = "al-" + uuid.uuid4().hex
            cur.execute("INSERT INTO events (event_id, account_id, name, level, status, "
                        "first_seen, last_seen) VALUES (%s, %s, 'old', 'low', 'handled', %s, %s)",
                        (eid, acct, then, then))
            cur.execute("INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, "
                        "severity, source, input_format, asset_id, asset, defense, status, "
                        "first_seen, last_seen) VALUES (%s, %s, %s, 'old', 'virus', 'low', 'x', "
                        "'cwpp', 'h', '{}', 'none', 'handled', %s, %s)",
                        (aid, aid, acct, then, then))
            cur.execute("INSERT INTO event_alerts (event_id, alert_id) VALUES (%s, %s)", (eid, aid))
            cur.execute("INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                        "event_id, alert_id, first_seen, last_seen) VALUES (%s, 'host', 'h', 'h', "
                        "%s, %s, %s, %s)", (acct, eid, aid, then, then))
            cur.execute("INSERT INTO event_edges (event_id, src_type, src, relation, dst_type, "
                        "dst, alert_id, first_seen, last_seen) VALUES (%s, 'ip', '1.2.3.4', "
                        "'attacked', 'host', 'h', %s, %s, %s)", (eid, aid, then, then))
            cur.execute("INSERT INTO handling_tasks (task_id, event_id, account_id, entity_type, "
                        "entity_value, state) VALUES (%s, %s, %s, 'host', 'h', 'succeeded')",
                        ("task-" + uuid.uuid4().hex, eid, acct))
            cur.execute("INSERT INTO activity_log (actor, object_type, object_id, event_id, "
                        "action) VALUES ('alice', 'event', %s, %s, 'event.status')", (eid, eid))
    pipe.exporter.stop()
    pipe.start_exporter(CWPP_RETENTION_BATCH="2", CWPP_RETENTION_INTERVAL_MS="1000")

    def gone():
        return t.query("SELECT count(*) FROM events WHERE event_id = ANY(%s)", (old,))[0][0] == 0
    t.wait_for(gone, timeout=30, what="the old events deleted")
    for table in ("event_alerts", "entity_alerts", "event_edges", "handling_tasks"):
        assert t.query(f"SELECT count(*) FROM {table} WHERE event_id = ANY(%s)",
                       (old,))[0][0] == 0, table
    assert t.query("SELECT count(*) FROM alerts WHERE account_id = %s AND name = 'old'",
                   (acct,))[0][0] == 0
    assert t.query("SELECT count(*) FROM activity_log WHERE event_id = ANY(%s)",
                   (old,))[0][0] == 5
    assert t.query("SELECT count(*) FROM events WHERE event_id = %s", (recent,))[0][0] == 1
    m = t.metrics(pipe.exporter)
    assert m["cwpp_exporter_retention_events_deleted_total"] >= 5
    log = pipe.exporter.log_text()
    assert '"event":"retention"' in log


def test_sigterm_stops_cleanly_and_metrics_count(pipe):
    m = t.metrics(pipe.exporter)
    assert m.get("cwpp_exporter_is_publisher") == 1
    assert pipe.exporter.http("/healthz")[0] == 200
    assert pipe.exporter.stop() == 0
