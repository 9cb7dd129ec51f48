# SPDX-License-Identifier: Apache-2.0
"""Integration tests of cwpp-ingest on the real local Kafka broker and PostgreSQL.

Each test names the behaviour it pins down (docs/alert-format.md; docs/architecture.md,
"Alerts and 'the same alert'" and "Guarantees and where each is kept")."""
import json
import random
import signal
import threading
import time
import uuid
from datetime import timedelta

import pytest

import cwpp_testlib as t

ALERT = None
REJECTED = None


def setup_module(_):
    global ALERT, REJECTED
    ALERT = t.AvroType("alert")
    REJECTED = t.AvroType("rejected_record")


def examples():
    return [line for line in (t.REPO / "examples" / "alerts.jsonl").read_bytes().split(b"\n") if line]


def account_rows(accounts):
    return t.query("SELECT alert_id, account_id, name, status, occurrences, input_format "
                   "FROM alerts WHERE account_id = ANY(%s) ORDER BY alert_id", (list(accounts),))


def test_examples_end_to_end(prefix, services):
    """The demo feed: good alerts are normalized (Avro, decoded here by python3-avro from
    schemas/ alone, keyed by account), recurrences keep their alert id and count up, Falco
    and Wazuh alerts are recognised, and every bad record reaches the dead-letter topic
    with its original bytes, a reason and its source offset."""
    # Tag this run's accounts so rows from other runs do not count.
    tag = uuid.uuid4().hex[:6]
    lines = []
    for raw in examples():
        try:
            o = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        if isinstance(o, dict):
            if "account_id" in o:
                o["account_id"] += "-" + tag
            for path in (("output_fields",), ("agent", "labels")):
                d = o
                for p in path:
                    d = d.get(p, {}) if isinstance(d, dict) else {}
                if isinstance(d, dict) and "account_id" in d:
                    d["account_id"] += "-" + tag
        lines.append(json.dumps(o).encode())
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", lines)

    good = t.consume(prefix + "alerts.normalized", expect=15)
    bad = t.consume(prefix + "alerts.rejected", expect=9)
    assert len(good) == 15, f"normalized: {len(good)}"
    assert len(bad) == 9, f"rejected: {len(bad)}"

    alerts = [ALERT.decode(m.value()) for m in good]
    for m, a in zip(good, alerts):
        assert m.key().decode() == a["account_id"]          # keyed by account
        assert a["alert_id"].startswith("al-")
    by_name = {}
    for a in alerts:
        by_name.setdefault(a["name"], []).append(a)
    formats = {a["input_format"] for a in alerts}
    assert formats == {"cwpp", "falco", "wazuh"}

    # "the same alert": three virus records (one renamed, one with upper-case MD5) share an id
    trojans = [a for a in alerts if a["file"] and a["file"]["path"] == "/tmp/.x/kworkerd"]
    assert len(trojans) == 3
    assert len({a["alert_id"] for a in trojans}) == 1
    assert sorted(a["occurrences"] for a in trojans) == [1, 2, 3]
    last = max(trojans, key=lambda a: a["occurrences"])
    assert last["last_seen_ms"] > last["first_seen_ms"]
    logons = by_name["Abnormal logon"]
    assert len({a["alert_id"] for a in logons}) == 1 and len(logons) == 2

    # precision defence is handled from the start
    assert by_name["Ransomware blocked"][0]["status"] == "handled"
    assert by_name["Ransomware blocked"][0]["defense"] == "precision_defense"

    # the database holds 12 distinct alerts with 15 occurrences
    rows = t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id LIKE %s",
                   ("%-" + tag,))
    assert rows[0] == (12, 15)

    # dead letters: original bytes, reason code, sentence, source position
    rej = [REJECTED.decode(m.value()) for m in bad]
    sent = set(lines)
    codes = sorted(r["reason_code"] for r in rej)
    assert codes == sorted(["invalid_json", "invalid_json", "missing_field", "invalid_value",
                            "invalid_value", "wrong_type", "invalid_value", "unknown_shape",
                            "invalid_utf8"]), codes
    for r in rej:
        assert r["value"] in sent
        assert r["service"] == "ingest" and r["source_topic"] == prefix + "alerts.raw"
        assert r["source_offset"] >= 0 and r["reason"]
    assert any("severity" in r["reason"] for r in rej)

    status, body = svc.http("/metrics")
    assert status == 200
    assert 'cwpp_ingest_rejected_total{reason="invalid_json"} 2' in body
    assert "cwpp_ingest_consumed_total 24" in body
    assert svc.stop() == 0


def test_kcat_reads_the_topics(prefix, services):
    """A second third-party client (kcat) reads what ingest wrote: topics are plain
    Kafka, the value starts with the Avro single-object marker."""
    import shutil
    import subprocess
    if shutil.which("kcat") is None:
        pytest.skip("kcat not installed")
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", examples()[:1])
    t.consume(prefix + "alerts.normalized", expect=1)
    auth = [a for k, v in t.KAFKA_AUTH.items() for a in ("-X", f"{k}={v}")]
    out = subprocess.run(["kcat", "-b", t.BROKERS, *auth, "-C", "-t", prefix + "alerts.normalized",
                          "-o", "beginning", "-e", "-c", "1", "-f", "%k\\t%S\\t%s"],
                         capture_output=True, timeout=30, check=True).stdout
    key, size, value = out.split(b"\t", 2)
    assert key.startswith(b"acct-")
    assert value[:2] == b"\xc3\x01" and int(size) == len(value)
    svc.stop()


def gen_records(n, keys, bad_every, account_prefix):
    """n records over `keys` distinct virus alerts; every bad_every-th one is broken."""
    recs, bad = [], set()
    for i in range(n):
        if i % bad_every == bad_every - 1:
            recs.append(b'{"name": "broken", "type": ' + str(i).encode())
            bad.add(i)
            continue
        k = i % keys
        recs.append(t.alert(
            f"{account_prefix}{k % 7}", "Trojan program", "virus", "high",
            "2026-11-27T%02d:%02d:%02dZ" % (i // 3600 % 24, i // 60 % 60, i % 60),
            {"id": f"host-{k % 50}"}, defense=None, source="virus_scan",
            file={"path": f"/srv/p{k}", "md5": t.md5hex(str(k))}))
    return recs, bad


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(prefix, services):
    """No lost alert, no double effect: ingest is killed with SIGKILL over and over while
    alerts stream in and restarted each time; in the end the database holds exactly one
    row per distinct alert with exactly one occurrence per good record, every alert is on
    the normalized topic and every bad record on the dead-letter topic."""
    n, keys, bad_every = 4000, 701, 10
    acct = "kill-" + uuid.uuid4().hex[:6] + "-"
    recs, bad = gen_records(n, keys, bad_every, acct)
    good_keys = {i % keys for i in range(n) if i not in bad}
    env = {"CWPP_BATCH_MAX_MESSAGES": "50",
           "CWPP_KAFKA_PROPERTIES": "session.timeout.ms=6000;heartbeat.interval.ms=500;"
                                    "group.instance.id=it-ingest-kill"}
    svc = services("ingest", prefix, extra_env=env).start()
    svc.wait_ready()

    def feed():
        for i in range(0, n, 200):
            t.produce(prefix + "alerts.raw", recs[i:i + 200])
            time.sleep(0.15)

    feeder = threading.Thread(target=feed)
    feeder.start()
    kills = 0
    rng = random.Random(7)
    while feeder.is_alive() or kills < 5:
        time.sleep(rng.uniform(0.2, 1.2))
        svc.kill9()
        kills += 1
        svc.start()
    feeder.join()
    svc.wait_ready()

    expected = (len(good_keys), n - len(bad))

    seen = []

    def settled():
        r = t.query("SELECT count(*), coalesce(sum(occurrences), 0) FROM alerts "
                    "WHERE account_id LIKE %s", (acct + "%",))[0]
        seen.append(r)
        return r == expected
    try:
        t.wait_for(settled, timeout=120, what="settle")
    except AssertionError:
        raise AssertionError(f"after {kills} kills the database holds (alerts, occurrences) "
                             f"= {seen[-1]}, expected {expected}")
    time.sleep(3)  # nothing more may arrive: redelivered batches must not count twice
    r = t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id LIKE %s",
                (acct + "%",))[0]
    assert r == expected, f"after {kills} kills: {r} != {expected}"

    normalized = t.consume(prefix + "alerts.normalized", expect=n - len(bad), timeout=60)
    ids = {ALERT.decode(m.value())["alert_id"] for m in normalized}
    assert len(ids) == len(good_keys)
    rejected = t.consume(prefix + "alerts.rejected", expect=len(bad), timeout=60)
    rej_offsets = {(r["source_partition"], r["source_offset"])
                   for r in (REJECTED.decode(m.value()) for m in rejected)}
    assert len(rej_offsets) == len(bad)   # every bad record, each counted once by position
    assert svc.stop() == 0
    assert kills >= 5


def test_sigterm_flushes_commits_and_exits_zero(prefix, services):
    """SIGTERM: stop consuming, flush, commit, exit 0 - the committed offsets cover every
    record ingest applied, and a restart reads nothing twice."""
    acct = "term-" + uuid.uuid4().hex[:6] + "-"
    recs, bad = gen_records(600, 97, 50, acct)
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", recs)
    t.wait_for(lambda: t.query("SELECT coalesce(sum(occurrences),0) FROM alerts WHERE "
                               "account_id LIKE %s", (acct + "%",))[0][0] == 600 - len(bad),
               what="all records applied")
    seen = {}

    def caught_up():
        # An empty partition (possible: unkeyed records go to a sticky partition) has
        # no committed offset and a high watermark of 0.
        c = t.committed(prefix + "ingest", prefix + "alerts.raw", 3)
        w = t.high_watermarks(prefix + "alerts.raw", 3)
        seen.update(committed=c, watermarks=w)
        return all(c[p] == w[p] or (w[p] == 0 and c[p] < 0) for p in w)

    # while still running and idle, every applied record's offset is committed
    try:
        t.wait_for(caught_up, timeout=15, what="offsets committed while idle")
    except AssertionError:
        errs = [l for l in svc.http("/metrics")[1].splitlines()
                if l.startswith(("cwpp_ingest_commit_errors_total", "cwpp_ingest_batches_total",
                                 "cwpp_ingest_consumed_total"))]
        raise AssertionError(f"offsets not committed within 15 s while idle: {seen}; "
                             f"{errs}; log tail:\n" + "\n".join(svc.log_text().splitlines()[-15:]))
    assert svc.stop() == 0
    events = [e.get("event") for e in svc.log_events()]
    assert "loop_stop" in events and events[-1] == "exit"
    assert caught_up()


def test_health_ready_and_metrics(prefix, services):
    """/healthz answers while running; /readyz is 503 with a reason while PostgreSQL is
    unreachable and 200 once the service runs; /metrics is Prometheus text."""
    down = services("ingest", prefix, extra_env={
        "CWPP_PG_DSN": "host=127.0.0.1 port=1 dbname=cwpp user=cwpp_ingest connect_timeout=1"}).start()
    t.wait_for(lambda: down.http("/healthz")[0] == 200, timeout=20, what="/healthz")
    status, body = down.http("/readyz")
    assert status == 503 and ("starting" in body or "PostgreSQL" in body)
    assert down.stop() == 0

    svc = services("ingest", prefix).start()
    svc.wait_ready()
    status, body = svc.http("/metrics")
    assert status == 200
    for name in ("cwpp_ingest_consumed_total", "cwpp_ingest_batch_seconds_bucket",
                 "cwpp_ingest_consumer_lag", "cwpp_ingest_db_seconds_count"):
        assert name in body
    assert svc.stop() == 0


def test_logs_are_json_lines(prefix, services):
    """Every line a service writes to stdout is one JSON object with ts, level, event."""
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", [b"garbage"])
    t.consume(prefix + "alerts.rejected", expect=1)
    svc.stop()
    lines = svc.log_text().splitlines()
    assert len(lines) >= 3
    for line in lines:
        o = json.loads(line)
        assert {"ts", "level", "service", "event", "msg"} <= set(o)


def test_oversized_record_is_dead_lettered(prefix, services):
    """A record above ingest.max.message.bytes is rejected as oversized, bytes intact."""
    svc = services("ingest", prefix, extra_env={"CWPP_INGEST_MAX_MESSAGE_BYTES": "2048"}).start()
    svc.wait_ready()
    big = json.dumps({"name": "x" * 4000}).encode()
    t.produce(prefix + "alerts.raw", [big])
    (m,) = t.consume(prefix + "alerts.rejected", expect=1)
    r = REJECTED.decode(m.value())
    assert r["reason_code"] == "oversized" and r["value"] == big
    assert svc.stop() == 0


def test_a_dead_letter_always_fits_its_topic(prefix, services):
    """A record whose dead letter would not fit the topic (1,040,000 bytes of non-JSON:
    the copy plus its envelope passes the producer's 1,000,000-byte limit) is dead-lettered
    with the first 262,144 bytes, its length and its SHA-256, and the record behind it
    still gets through: one odd record never wedges the partition."""
    import hashlib
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    huge = bytes(random.Random(7).randrange(256) for _ in range(1_040_000))
    good = t.alert(f"acct-{uuid.uuid4().hex[:8]}", "Port scan", "network_attack", "low",
                   "2026-11-27T10:00:00Z", "h1")
    # value and key together stay under the broker's 1,048,588-byte record limit
    t.produce(prefix + "alerts.raw", [huge, good], keys=[b"k" * 5_000, b"ok"],
              config={"message.max.bytes": 2_000_000})
    assert sum(t.high_watermarks(prefix + "alerts.raw", 3).values()) == 2
    assert len(t.consume(prefix + "alerts.normalized", expect=1)) == 1
    (m,) = t.consume(prefix + "alerts.rejected", expect=1)
    r = REJECTED.decode(m.value())
    assert r["reason_code"] == "invalid_utf8", r["reason"]  # random bytes
    assert r["value"] == huge[:262_144] and r["value_length"] == len(huge)
    assert r["value_sha256"] == hashlib.sha256(huge).hexdigest()
    assert r["key"] == b"k" * 4096 and r["key_length"] == 5_000
    assert len(m.value()) < 1_000_000
    assert svc.stop() == 0


def test_bad_configuration_stops_startup_naming_the_key(tmp_path):
    """Bad configuration stops start-up with a sentence naming the key (exit 1)."""
    import subprocess
    conf = tmp_path / "ingest.conf"
    conf.write_text("batch.max.messages = lots\n")
    r = subprocess.run([str(t.BIN / "cwpp-ingest"), "--config", str(conf)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "batch.max.messages" in r.stderr
    conf.write_text("no.such.key = 1\n")
    r = subprocess.run([str(t.BIN / "cwpp-ingest"), "--config", str(conf)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "no.such.key" in r.stderr
    r = subprocess.run([str(t.BIN / "cwpp-ingest"), "--print-env"], capture_output=True,
                       text=True, timeout=20)
    assert "CWPP_KAFKA_BROKERS" in r.stdout.split() and "CWPP_PG_DSN" in r.stdout.split()


def test_ingest_role_has_least_privilege():
    """cwpp_ingest may read and write alerts and its offsets, nothing more: no DELETE,
    no DDL, no other tables."""
    import psycopg2
    conn = t.db(t.INGEST_DSN)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM alerts")
    for stmt in ("DELETE FROM alerts", "DROP TABLE alerts", "CREATE TABLE x (a int)",
                 "TRUNCATE consumer_offsets", "SELECT * FROM cwpp_schema_migrations"):
        with pytest.raises(psycopg2.Error):
            cur.execute(stmt)
    conn.close()


def test_strings_survive_storage_exactly(prefix, services):
    """Quotes, backslashes, control characters and non-ASCII text reach the database and
    the normalized record unchanged (ingest writes the rows' JSON itself)."""
    acct = "str-" + uuid.uuid4().hex[:6]
    name = 'He said "hi" \\ back\\slash \t tab \n newline \u0001 ctl — 日本語 😀 </script>'
    cmd = 'powershell -enc "QUJD" && echo \\"x\\" \r\n'
    rec = {"name": name, "type": "malicious_process", "severity": "medium",
           "occurred_at": "2026-11-27T10:00:00Z", "source": "process_monitor",
           "account_id": acct, "asset": {"id": 'h"1\\'},
           "process": {"cmdline": cmd, "user": "Ünïcødé"},
           "details": {"k\"ey": ["a\\b", {"n": None, "t": True, "f": 1.5}], "e": ""}}
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", [json.dumps(rec).encode()])
    (m,) = t.consume(prefix + "alerts.normalized", expect=1)
    a = ALERT.decode(m.value())
    assert a["name"] == name and a["process"]["cmdline"] == cmd
    assert json.loads(a["details_json"]) == rec["details"]
    row = t.query("SELECT name, asset_id, process->>'cmdline', process->>'user', details "
                  "FROM alerts WHERE account_id = %s", (acct,))
    assert row == [(name, 'h"1\\', cmd, "Ünïcødé", rec["details"])]
    assert svc.stop() == 0


def test_config_doc_is_current():
    """docs/config-ingest.md is what the binary's configuration table says (regenerate
    with `build/bin/cwpp-ingest --config-doc > docs/config-ingest.md`)."""
    import subprocess
    out = subprocess.run([str(t.BIN / "cwpp-ingest"), "--config-doc"], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    assert (t.REPO / "docs" / "config-ingest.md").read_text() == out


def test_a_record_the_database_refuses_is_dead_lettered_alone(prefix, services):
    """One poison record never stalls the partition: when the server refuses a batch's
    data, ingest applies that batch record by record under savepoints, dead-letters the
    refused record (reason db_refused) and applies the others exactly once. Driven by the
    CWPP_FAULTS test hook, which makes the server really refuse the 1st batch statement
    and the 2nd record's statement of the record-by-record pass."""
    acct = "poison-" + uuid.uuid4().hex[:6]
    recs = [t.alert(acct, f"n{i}", "virus", "low", "2026-11-27T10:00:0%dZ" % i, {"id": "h"},
                    defense=None, source="s", file={"path": f"/p{i}"}) for i in range(5)]
    t.produce(prefix + "alerts.raw", recs, keys=[b"k"] * 5)  # one partition, one batch
    svc = services("ingest", prefix, extra_env={
        "CWPP_FAULTS": "pg_upsert_data:1,pg_upsert_data:3"}).start()
    svc.wait_ready()
    (m,) = t.consume(prefix + "alerts.rejected", expect=1, settle=2)
    r = REJECTED.decode(m.value())
    assert r["reason_code"] == "db_refused" and "division by zero" in r["reason"]
    assert r["value"] == recs[1]
    good = t.consume(prefix + "alerts.normalized", expect=4, settle=2)
    assert sorted(ALERT.decode(x.value())["name"] for x in good) == ["n0", "n2", "n3", "n4"]
    assert t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id = %s",
                   (acct,))[0] == (4, 4)
    assert "db_data_error" in [e.get("event") for e in svc.log_events()]
    assert svc.stop() == 0


def test_transient_database_failure_retries_the_batch_once_counted(prefix, services):
    """A batch whose transaction fails transiently is retried whole, never skipped: its
    good record is applied once and its bad record dead-lettered and counted once. The
    CWPP_FAULTS hook fails the 9th database result: 5 statements are prepared at start-up,
    then the first batch reads BEGIN, its one partition's offset row and lock, and then
    the upsert - after the records were parsed, so the retry parses them again."""
    acct = "retry-" + uuid.uuid4().hex[:6]
    good = t.alert(acct, "n", "virus", "low", "2026-11-27T10:00:00Z", {"id": "h"},
                   defense=None, source="s")
    t.produce(prefix + "alerts.raw", [b"{broken", good], keys=[b"k", b"k"])
    svc = services("ingest", prefix, extra_env={"CWPP_FAULTS": "pg_exec:9"}).start()
    svc.wait_ready()
    t.consume(prefix + "alerts.normalized", expect=1, settle=1)
    t.consume(prefix + "alerts.rejected", expect=1, settle=1)
    metrics = svc.http("/metrics")[1]
    retries = [l for l in metrics.splitlines() if l.startswith("cwpp_ingest_batch_retries_total")]
    assert retries and int(retries[0].split()[1]) >= 1, metrics
    assert 'cwpp_ingest_rejected_total{reason="invalid_json"} 1\n' in metrics
    assert t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id = %s",
                   (acct,))[0] == (1, 1)
    assert svc.stop() == 0


def test_a_database_outage_is_waited_out_in_the_group(prefix, services):
    """PostgreSQL gone for longer than max.poll.interval.ms: the idle service notices it
    (/readyz 503 naming PostgreSQL, from its ping), the batch that arrives meanwhile waits
    with the input paused while the consumer stays in its group (no rebalance), and within
    seconds of the database's return the service is ready again and every alert is applied
    exactly once."""
    host = next(kv.split("=", 1)[1] for kv in t.INGEST_DSN.split() if kv.startswith("host="))
    port = next(kv.split("=", 1)[1] for kv in t.INGEST_DSN.split() if kv.startswith("port="))
    proxy = t.TcpProxy(host, port)
    acct = "outage-" + uuid.uuid4().hex[:6]

    def alerts(first, n):
        return [t.alert(acct, f"n{i}", "virus", "low", "2026-11-27T10:00:00Z", {"id": f"h{i}"},
                        defense=None, source="s") for i in range(first, first + n)]

    svc = services("ingest", prefix, extra_env={
        "CWPP_PG_DSN": proxy.dsn(t.INGEST_DSN),
        "CWPP_KAFKA_PROPERTIES": "session.timeout.ms=6000;heartbeat.interval.ms=500;"
                                 "consumer.max.poll.interval.ms=8000"}).start()
    try:
        svc.wait_ready()
        t.produce(prefix + "alerts.raw", alerts(0, 10))
        assert len(t.consume(prefix + "alerts.normalized", expect=10, settle=1)) == 10
        proxy.cut()
        t.wait_for(lambda: "PostgreSQL is not reachable" in svc.http("/readyz")[1],
                   timeout=10, what="/readyz naming PostgreSQL")
        assert svc.http("/readyz")[0] == 503
        t.produce(prefix + "alerts.raw", alerts(10, 30))
        time.sleep(14)  # longer than max.poll.interval.ms
        assert svc.http("/readyz")[0] == 503
        down = time.time()
        proxy.restore()
        t.wait_for(lambda: svc.http("/readyz")[0] == 200, timeout=30, what="ready again")
        back = time.time() - down
        assert len(t.consume(prefix + "alerts.normalized", expect=40, settle=2)) == 40
        assert t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id = %s",
                       (acct,))[0] == (40, 40)
        m = t.metrics(svc)
        assert m["cwpp_ingest_rebalances_total"] == 0, "the member left its group"
        assert m["cwpp_ingest_held_seconds_total"] >= 10
        assert back < 30
    finally:
        proxy.cut()
    assert svc.stop() == 0


def test_a_batch_over_300_partitions_is_fenced_once(prefix, services):
    """No double effect at any partition count (libs/fence; a copy of the fence in ingest
    once refused batches over 256 partitions and retried them for ever): one batch of
    records from 300 partitions is applied in one transaction, every partition's offset
    row advanced, and when the whole batch is delivered again (the group's Kafka offsets
    rewound, as if the commit had been lost) the fence recognises every record as
    applied: the occurrences stay at one."""
    from confluent_kafka.admin import AdminClient, NewPartitions

    nparts = 300
    topic = prefix + "alerts.raw"
    group = prefix + "ingest"
    admin = AdminClient({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS})
    for f in admin.create_partitions([NewPartitions(topic, nparts)]).values():
        f.result(60)
    acct = "parts-" + uuid.uuid4().hex[:6]
    p = t.Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "enable.idempotence": True})
    t.wait_for(lambda: len(p.list_topics(topic, timeout=10).topics[topic].partitions) == nparts,
               timeout=60, what="the new partitions")
    for part in range(nparts):
        p.produce(topic, partition=part, value=json.dumps({
            "name": f"n{part}", "type": "virus", "severity": "low",
            "occurred_at": "2026-11-27T10:00:00Z", "source": "s", "account_id": acct,
            "asset": {"id": f"h{part}"}}).encode())
    assert p.flush(30) == 0
    # one batch gathers every partition's record (it waits for records still coming)
    env = {"CWPP_BATCH_MAX_MS": "5000", "CWPP_BATCH_LINGER_MS": "5000"}
    try:
        svc = services("ingest", prefix, extra_env=env).start()
        svc.wait_ready()
        assert len(t.consume(prefix + "alerts.normalized", expect=nparts)) == nparts
        assert t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id = %s",
                       (acct,))[0] == (nparts, nparts)
        # one transaction: the rows it advanced share its now()
        rows = t.query("SELECT count(*) FROM consumer_offsets WHERE consumer_group = %s "
                       "AND next_offset = 1 GROUP BY updated_at ORDER BY 1 DESC", (group,))
        assert sum(r[0] for r in rows) == nparts
        assert rows[0][0] > 256, rows
        assert svc.stop() == 0

        rewind = t.Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": group})
        rewind.commit(offsets=[t.TopicPartition(topic, part, 0) for part in range(nparts)],
                      asynchronous=False)
        rewind.close()
        svc = services("ingest", prefix, extra_env=env).start()
        svc.wait_ready()
        t.wait_for(lambda: t.metrics(svc).get("cwpp_ingest_redelivered_total") == nparts,
                   timeout=60, what="the batch redelivered")
        assert t.query("SELECT count(*), sum(occurrences) FROM alerts WHERE account_id = %s",
                       (acct,))[0] == (nparts, nparts)
        assert svc.stop() == 0
    finally:  # the shared broker keeps no 300-partition topic
        for f in admin.delete_topics([topic]).values():
            f.result(60)


def test_an_over_long_field_is_dead_lettered_naming_it_and_the_next_alert_flows(prefix,
                                                                                 services):
    """Every text field of the contract has a limit (docs/alert-format.md "Limits"): an
    alert whose name is 600 bytes (limit 512), or whose details are over 128 KiB as JSON,
    is dead-lettered with reason too_long and a sentence naming the field and its limit,
    and the normal alert behind them on the same partition gets through."""
    acct = "long-" + uuid.uuid4().hex[:6]
    long_name = t.alert(acct, "N" * 600, "virus", "low", "2026-11-27T10:00:00Z", "h1",
                        file={"path": "/a"})
    big_details = t.alert(acct, "Big", "virus", "low", "2026-11-27T10:00:00Z", "h1",
                          file={"path": "/b"}, details={"blob": "y" * 140_000})
    good = t.alert(acct, "Fine", "virus", "low", "2026-11-27T10:00:00Z", "h1",
                   file={"path": "/c"})
    svc = services("ingest", prefix).start()
    svc.wait_ready()
    t.produce(prefix + "alerts.raw", [long_name, big_details, good], keys=[b"k"] * 3)
    rej = [REJECTED.decode(m.value()) for m in t.consume(prefix + "alerts.rejected", expect=2)]
    assert [r["reason_code"] for r in rej] == ["too_long", "too_long"], rej
    assert 'field "name" is 600 bytes, longer than 512' in rej[0]["reason"], rej[0]["reason"]
    assert '"details"' in rej[1]["reason"] and "131072" in rej[1]["reason"], rej[1]["reason"]
    assert rej[0]["value"] == long_name
    (m,) = t.consume(prefix + "alerts.normalized", expect=1)
    assert ALERT.decode(m.value())["name"] == "Fine"
    assert [r[2] for r in account_rows([acct])] == ["Fine"]
    assert t.metrics(svc)['cwpp_ingest_rejected_total{reason="too_long"}'] == 2
    assert svc.stop() == 0


def test_occurred_at_from_a_reset_clock_is_replaced_and_its_event_is_listed(prefix,
                                                                            services):
    """The occurred_at rule (docs/alert-format.md "occurred_at"): an alert from a detector
    whose clock was reset to 2001 is not dropped. Ingest stores it with occurred_at = the
    time it received it and keeps the given time (original_occurred_at_ms on the Alert,
    alerts.original_occurred_at); it goes through the whitelist-filter and the correlator
    into an event whose last_seen is the receive time, so `cwppctl events list` shows it
    and retention leaves it alone. A time 2 days ahead (past ingest.max.future.s, 1 h)
    follows the same rule. Each is counted and logged."""
    acct = "clock-" + uuid.uuid4().hex[:6]
    t.make_user("alice", role="admin")
    ing = services("ingest", prefix).start()
    wl = services("whitelist-filter", prefix, group=f"{prefix}wl",
                  extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN}).start()
    corr = services("correlator", prefix, group=f"{prefix}corr",
                    extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN}).start()
    for s in (ing, wl, corr):
        s.wait_ready()
    future = (t.NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = int(time.time() * 1000)
    t.produce(prefix + "alerts.raw", [
        t.alert(acct, "Old clock", "virus", "high", "2001-01-01T00:00:00Z", "h-old",
                file={"path": "/old", "md5": t.md5hex("/old")}),
        t.alert(acct, "Fast clock", "malicious_process", "high", future, "h-new",
                process={"path": "/usr/bin/fast", "cmdline": "fast"}),
    ], keys=[acct.encode()] * 2)
    got = {a["name"]: a for a in (ALERT.decode(m.value()) for m in
                                  t.consume(prefix + "alerts.accepted", expect=2))}
    after = int(time.time() * 1000)
    old, fast = got["Old clock"], got["Fast clock"]
    assert old["original_occurred_at_ms"] == 978307200000
    assert before - 1000 <= old["occurred_at_ms"] <= after
    assert old["last_seen_ms"] == old["occurred_at_ms"] == old["first_seen_ms"]
    assert fast["original_occurred_at_ms"] is not None
    assert fast["original_occurred_at_ms"] > after + 86_400_000
    assert before - 1000 <= fast["occurred_at_ms"] <= after
    rows = dict(t.query("SELECT name, (extract(epoch FROM original_occurred_at) * 1000)::bigint "
                        "FROM alerts WHERE account_id = %s", (acct,)))
    assert rows == {"Old clock": 978307200000, "Fast clock": fast["original_occurred_at_ms"]}

    def events():
        return t.query("SELECT event_id, name, (extract(epoch FROM last_seen) * 1000)::bigint "
                       "FROM events WHERE account_id = %s ORDER BY name", (acct,),
                       dsn=t.CORRELATOR_DSN)
    t.wait_for(lambda: len(events()) == 2, what="two events")
    evs = {e[1]: e for e in events()}
    assert before - 1000 <= evs["Old clock"][2] <= after
    rc, doc, err = t.cwppctl_json(prefix, "events", "list", "--account", acct)
    assert rc == 0, err
    listed = {e["event_id"] for e in doc["events"]}
    assert evs["Old clock"][0] in listed and evs["Fast clock"][0] in listed
    m = t.metrics(ing)
    assert m['cwpp_ingest_occurred_at_adjusted_total{reason="too_old"}'] == 1
    assert m['cwpp_ingest_occurred_at_adjusted_total{reason="future"}'] == 1
    logged = [e for e in ing.log_events() if e.get("event") == "occurred_at_adjusted"]
    assert len(logged) == 2 and any("2001-01-01" in e["msg"] for e in logged), logged
    for s in (ing, wl, corr):
        assert s.stop() == 0
