#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/history.py: does the pipeline keep its throughput when the database already
holds a long history? Goal: the same alerts/s (within 15 %) with 10 million alerts and 1
million events stored as with an empty database. Run it through bench/run-history, which
checks the stack, sources deploy/local/env and ends what it started.

The history (database cwpp_hist on the local server: created and migrated by
deploy/migrate when missing; seeded once and reused while the marker table
public.bench_history_seed matches --alerts and --events; --reseed drops and seeds it
again). bench/history_seed.sql writes it set-based, chunk by chunk of events, with the
secondary indexes and primary keys of the six tables dropped meanwhile and built again
at the end (their definitions are read from the catalogue first, so they are exactly
the migrations'), then ANALYZE and CHECKPOINT. --alerts alerts in --events events (A/E
each), with what ingest and the correlator store with them: alerts, events,
event_alerts, entity_alerts (host, file, process, IP, host account rows per alert),
event_edges and event_keys, every CHECK satisfied, ids of the production form (al-/ev- +
32 hex). The events are the incidents of bench/pipeline.py's workload: the same 24
accounts (bench-hist-acct-NN), the same kinds of alerts in the same order, assets named
as its runs name them (i-<6 hex>-<incident>-<n>, one tag per 10,000 incidents like one
earlier run each), attacker IPs ip_of(incident % 131064) over its whole 198.18.0.0/15
range, so a measured alert's key lookups and 30-day IP statistics read through history.
They start over the last 180 days up to 2 days before the seed: no measured alert
(occurring in the last ~6 h) is within the correlation window (24 h) of a stored event,
so both databases see the same join decisions; a stored event sharing an IP key that is
handled (70 % are) gives the new event a predecessor. A data set a week old has less
of it in the 30-day window (a warning says so; --reseed).

The measure: phase A of bench/pipeline.py (N = --records alerts through ingest ->
whitelist-filter -> correlator, as fast as they go) first on cwpp_hist_empty (dropped,
created and migrated each run), then on cwpp_hist, with the services' DSNs pointed at
the database. Its workload is pipeline.throughput_records with the run's accounts
renamed to the shared bench-hist-acct-NN (assets, hashes and alert identities stay the
run's own, so no run repeats another's alerts). After the phase on cwpp_hist, the run's
events are moved 3 days back, out of the window of the next run's alerts. Around each
phase (after a CHECKPOINT, so each starts with the same full-page-image state) the
deltas of pg_stat_wal (WAL bytes and full-page images: cluster-wide, other work on the
server counts too; a checkpoint during the phase, counted from pg_stat_bgwriter, makes
the next change of every page a full-page image) and of pg_statio_user_tables / _indexes (blocks read from outside
shared buffers, heap and index, top 5 indexes) are taken, per alert.

Results: printed, written to bench/results/history-<time>.json and appended to
bench/results/history.jsonl. Not a test: figures for notes."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import pipeline  # noqa: E402
from pipeline import BenchError  # noqa: E402

t = pipeline.t
import psycopg2  # noqa: E402

HIST_DB, EMPTY_DB = "cwpp_hist", "cwpp_hist_empty"
ACCOUNT = "bench-hist-acct-"
IPS = 131064          # distinct attacker IPs: a multiple of 24 (accounts) and 3 (scenarios)
TABLES = ("alerts", "events", "event_alerts", "entity_alerts", "event_edges", "event_keys")
GOAL_RATIO = 0.85


def dsn_for(dsn, db):
    """The libpq conninfo dsn on database db."""
    return t.with_dbname(dsn, db)


def connect(db, autocommit=True):
    conn = psycopg2.connect(dsn_for(t.ADMIN_DSN, db))
    conn.autocommit = autocommit
    return conn


def q(db, sql, args=()):
    return t.query(sql, args, dsn=dsn_for(t.ADMIN_DSN, db))


# -------------------------------------------------------------------- databases

def exists(db):
    return bool(q("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (db,)))


def drop(db):
    q("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def create_migrated(db):
    q("postgres", f'CREATE DATABASE "{db}"')
    migrate(db)


def migrate(db):
    env = dict(os.environ, CWPP_PG_ADMIN_DSN=dsn_for(t.ADMIN_DSN, db),
               CWPP_SCHEMA_DIR=str(REPO / "schemas" / "sql"))
    p = subprocess.run([str(REPO / "deploy" / "migrate")], env=env, capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise BenchError(f"deploy/migrate on {db} failed:\n{p.stdout}{p.stderr}")


def sizes(db):
    rows = q(db, "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) "
                 "FROM pg_class c WHERE c.relnamespace = 'cwpp'::regnamespace "
                 "AND c.relname = ANY(%s)", (list(TABLES),))
    total = q(db, "SELECT pg_database_size(current_database())")[0][0]
    return {"database_mib": round(total / 2**20),
            "tables_mib": {r[0]: {"heap": round(r[1] / 2**20), "indexes": round(r[2] / 2**20)}
                           for r in rows}}


def seed_chunk_sql(e0, e1, events, alerts, t0, t1):
    text = (HERE / "history_seed.sql").read_text()
    vals = {"e0": e0, "e1": e1, "E": events, "A": alerts, "P": IPS, "t0": t0, "t1": t1}
    return re.sub(r"(?<![:\w]):(e0|e1|E|A|P|t0|t1)\b", lambda m: str(vals[m.group(1)]), text)


def seed(a):
    """Seeds cwpp_hist unless the same seed is there; returns what describes it."""
    marker = None
    if exists(HIST_DB) and not a.reseed:
        if q(HIST_DB, "SELECT to_regclass('public.bench_history_seed')")[0][0]:
            marker = q(HIST_DB, "SELECT alerts, events, seeded_at, seconds "
                                "FROM public.bench_history_seed")
        if marker and marker[0][0] == a.alerts and marker[0][1] == a.events:
            migrate(HIST_DB)  # a migration added since: applied on the history too
            seeded_at, secs = marker[0][2], marker[0][3]
            age = datetime.now(timezone.utc) - seeded_at
            print(f"history: reusing {HIST_DB} seeded {seeded_at:%Y-%m-%d %H:%M} UTC "
                  f"({age.days} d ago, in {secs:.0f} s): {a.alerts} alerts, {a.events} events "
                  "(--reseed seeds again)", flush=True)
            if age.days >= 7:
                print("history: warning: the data set is a week old or more: less of it is "
                      "in the 30-day window than in a fresh one (--reseed)", file=sys.stderr)
            return {"seeded_at": seeded_at.isoformat(), "seed_s": secs, "reused": True,
                    **sizes(HIST_DB)}
        print(f"history: {HIST_DB} holds " + (f"another seed ({marker[0][0]} alerts, "
              f"{marker[0][1]} events)" if marker else "no complete seed") +
              ": seeding it again", flush=True)
    drop(HIST_DB)
    create_migrated(HIST_DB)
    print(f"history: seeding {a.alerts} alerts in {a.events} events into {HIST_DB} "
          f"({a.chunk_events} events a chunk) ...", flush=True)
    t_start = time.time()
    now = int(t_start)
    t0, t1 = now - 180 * 86400, now - 2 * 86400 - 4 * 3600  # the last alert 2 days ago
    conn = connect(HIST_DB, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SET work_mem = '256MB'")
            cur.execute("SET jit = off")  # compiling the big statements gains nothing
            cur.execute("SET search_path = cwpp")
            # the six tables' keys and indexes: dropped while the rows go in, built again
            # from their own definitions at the end (random ids make inserting into a
            # btree one page read and write per row; a build sorts once)
            cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE contype = 'p' AND connamespace = "
                        "'cwpp'::regnamespace AND conrelid::regclass::text = ANY(%s)",
                        ([f"cwpp.{x}" for x in TABLES] + list(TABLES),))
            pkeys = cur.fetchall()
            cur.execute("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                        "WHERE c.relnamespace = 'cwpp'::regnamespace AND c.relname = ANY(%s) "
                        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
                        "WHERE k.conindid = i.indexrelid)", (list(TABLES),))
            indexes = cur.fetchall()
            for idx, _ in indexes:
                cur.execute(f"DROP INDEX {idx}")
            for rel, con, _ in pkeys:
                cur.execute(f"ALTER TABLE {rel} DROP CONSTRAINT {con}")
            conn.commit()
            done = 0
            while done < a.events:
                e1 = min(a.events, done + a.chunk_events)
                t_c = time.time()
                cur.execute(seed_chunk_sql(done, e1, a.events, a.alerts, t0, t1))
                conn.commit()
                g1 = (e1 * a.alerts + a.events - 1) // a.events
                el = time.time() - t_start
                print(f"  events {e1}/{a.events}, alerts {g1}/{a.alerts}: chunk "
                      f"{time.time() - t_c:.1f} s, {el:.0f} s so far", flush=True)
                done = e1
            t_rows = time.time() - t_start
            for rel, con, definition in pkeys:
                t_i = time.time()
                cur.execute(f"ALTER TABLE {rel} ADD CONSTRAINT {con} {definition}")
                conn.commit()
                print(f"  {rel} {definition}: {time.time() - t_i:.1f} s", flush=True)
            for idx, definition in indexes:
                t_i = time.time()
                cur.execute(definition)
                conn.commit()
                print(f"  index {idx}: {time.time() - t_i:.1f} s", flush=True)
            t_idx = time.time() - t_start - t_rows
        conn.autocommit = True
        with conn.cursor() as cur:
            t_a = time.time()
            cur.execute("VACUUM (ANALYZE) " + ", ".join(f"cwpp.{x}" for x in TABLES))
            cur.execute("CHECKPOINT")
            t_an = time.time() - t_a
            secs = round(time.time() - t_start, 1)
            cur.execute("CREATE TABLE public.bench_history_seed (alerts bigint NOT NULL, "
                        "events bigint NOT NULL, seeded_at timestamptz NOT NULL, "
                        "seconds float8 NOT NULL)")
            cur.execute("INSERT INTO public.bench_history_seed VALUES (%s, %s, now(), %s)",
                        (a.alerts, a.events, secs))
    finally:
        conn.close()
    counts = {x: q(HIST_DB, f"SELECT count(*) FROM cwpp.{x}")[0][0] for x in TABLES}
    sz = sizes(HIST_DB)
    print(f"history: seeded in {secs} s (rows {t_rows:.0f} s, keys and indexes {t_idx:.0f} s, "
          f"vacuum/analyze/checkpoint {t_an:.0f} s): {counts}; database "
          f"{sz['database_mib']} MiB", flush=True)
    return {"seeded_at": datetime.now(timezone.utc).isoformat(), "seed_s": secs,
            "seed_rows_s": round(t_rows, 1), "seed_indexes_s": round(t_idx, 1),
            "seed_vacuum_s": round(t_an, 1), "reused": False, "rows": counts, **sz}


# ---------------------------------------------------------------------- measure

def shared_accounts(orig):
    """pipeline.throughput_records with the run's accounts renamed to the history's."""
    pat = re.compile(rb'"account_id":"bench-[0-9a-z]+a-acct-(\d+)"')

    def records(n, run, *args, **kw):
        raw, incidents = orig(n, run, *args, **kw)
        out = []
        for r in raw:
            r2, k = pat.subn(lambda m: b'"account_id":"' + ACCOUNT.encode() + m.group(1) + b'"',
                             r, count=1)
            if k != 1:
                raise BenchError("pipeline.throughput_records names its accounts otherwise "
                                 f"than bench-<run>a-acct-NN: {r[:200]!r}")
            out.append(r2)
        return out, incidents
    return records


def db_stats(db):
    wal = q(db, "SELECT wal_bytes, wal_fpi, wal_records FROM pg_stat_wal")[0]
    tabs = q(db, "SELECT relname, COALESCE(heap_blks_read, 0), COALESCE(idx_blks_read, 0), "
                 "COALESCE(toast_blks_read, 0) + COALESCE(tidx_blks_read, 0), "
                 "COALESCE(heap_blks_hit, 0) + COALESCE(idx_blks_hit, 0) "
                 "FROM pg_statio_user_tables WHERE schemaname = 'cwpp'")
    idx = q(db, "SELECT indexrelname, COALESCE(idx_blks_read, 0) FROM pg_statio_user_indexes "
                "WHERE schemaname = 'cwpp'")
    # the other databases' writes meanwhile: their WAL is in pg_stat_wal's figures too
    others = q(db, "SELECT COALESCE(sum(xact_commit), 0), COALESCE(sum(tup_inserted + "
                   "tup_updated + tup_deleted), 0) FROM pg_stat_database "
                   "WHERE datname IS NOT NULL AND datname <> current_database()")[0]
    ckpt = q(db, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")[0][0]
    return {"wal_bytes": int(wal[0]), "wal_fpi": int(wal[1]), "wal_records": int(wal[2]),
            "checkpoints": int(ckpt), "tables": {r[0]: r[1:] for r in tabs}, "indexes": dict(idx),
            "others": (int(others[0]), int(others[1]))}


def stats_delta(before, after, n):
    heap = sum(v[0] - before["tables"].get(k, (0, 0, 0, 0))[0] for k, v in after["tables"].items())
    idx = sum(v[1] - before["tables"].get(k, (0, 0, 0, 0))[1] for k, v in after["tables"].items())
    toast = sum(v[2] - before["tables"].get(k, (0, 0, 0, 0))[2]
                for k, v in after["tables"].items())
    hits = sum(v[3] - before["tables"].get(k, (0, 0, 0, 0))[3]
               for k, v in after["tables"].items())
    per_idx = sorted(((v - before["indexes"].get(k, 0), k) for k, v in after["indexes"].items()),
                     reverse=True)[:5]
    per_tab = sorted(((v[0] - before["tables"].get(k, (0,))[0], k)
                      for k, v in after["tables"].items()), reverse=True)[:5]
    wal = after["wal_bytes"] - before["wal_bytes"]
    fpi = after["wal_fpi"] - before["wal_fpi"]
    return {"wal_bytes": wal, "wal_bytes_per_alert": round(wal / n),
            "wal_fpi": fpi, "wal_fpi_per_alert": round(fpi / n, 3),
            "checkpoints": after["checkpoints"] - before["checkpoints"],
            "other_db_commits": after["others"][0] - before["others"][0],
            "other_db_rows_written": after["others"][1] - before["others"][1],
            "heap_blks_read": heap, "idx_blks_read": idx, "toast_blks_read": toast,
            "heap_blks_read_per_alert": round(heap / n, 3),
            "idx_blks_read_per_alert": round(idx / n, 3),
            "blks_hit_per_alert": round(hits / n, 1),
            "top_heap_read": [[k, v] for v, k in per_tab if v > 0],
            "top_idx_read": [[k, v] for v, k in per_idx if v > 0]}


def point_at(db):
    """The services' DSNs (and the checks' superuser DSN) on database db."""
    for env in pipeline.DSN_ENV.values():
        os.environ[env] = dsn_for(BASE_DSN[env], db)
    os.environ["CWPP_PG_ADMIN_DSN"] = dsn_for(BASE_DSN["CWPP_PG_ADMIN_DSN"], db)
    t.ADMIN_DSN = os.environ["CWPP_PG_ADMIN_DSN"]


def measure(procs, db, n, run, tmp):
    point_at(db)
    pipeline.preflight(False)
    q(db, "CHECKPOINT")
    time.sleep(1.0)
    before = db_stats(db)
    res = pipeline.phase_throughput(procs, n, run, tmp, relay_ok=False)
    time.sleep(1.5)  # the stopped services' statistics reach the server
    res["db"] = stats_delta(before, db_stats(db), n)
    res["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    res["db"]["database_mib"] = round(q(db, "SELECT pg_database_size(current_database())")
                                      [0][0] / 2**20)
    return res


def num(v):
    return "?" if v is None else f"{v:.0f}"


def show(label, r):
    st, d = r["stage_done_s"], r["db"]
    print(f"{label:9s} {r['alerts_per_s']} alerts/s end to end ({r['records']} alerts in "
          f"{r['span_s']} s); stages done after ingest {st['ingest']} s, whitelist-filter "
          f"{st['whitelist-filter']} s, correlator {st['correlator']} s")
    print(f"          correlator: {num(r['correlator_events_opened_total'])} events opened, "
          f"{num(r['correlator_notifications_total'])} notifications, db errors "
          f"{num(r['correlator_db_errors_total'])}")
    print(f"          WAL {d['wal_bytes_per_alert']} B/alert, {d['wal_fpi_per_alert']} full-page "
          f"images/alert, {d['checkpoints']} checkpoint(s) during the phase (whole server: "
          f"other databases meanwhile {d['other_db_commits']} commits, "
          f"{d['other_db_rows_written']} rows written)")
    print(f"          blocks not in shared buffers (read, or new: PostgreSQL counts a table's "
          f"growth as reads): heap {d['heap_blks_read_per_alert']}/alert, index "
          f"{d['idx_blks_read_per_alert']}/alert; hits {d['blks_hit_per_alert']}/alert")
    if d["other_db_rows_written"] > r["records"] // 10:
        print(f"          warning: other databases wrote {d['other_db_rows_written']} rows "
              f"meanwhile (load average {r['loadavg_1m_after']}): the machine was busy, "
              "this phase's figures do not compare")
    if d["top_idx_read"]:
        print("          most index blocks read: " +
              ", ".join(f"{k} {v}" for k, v in d["top_idx_read"]))
    if d["top_heap_read"]:
        print("          most heap blocks read: " +
              ", ".join(f"{k} {v}" for k, v in d["top_heap_read"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=10_000_000, help="stored alerts (10000000)")
    ap.add_argument("--events", type=int, default=1_000_000, help="stored events (1000000)")
    ap.add_argument("--records", type=int, default=200_000,
                    help="alerts through the pipeline per database (200000)")
    ap.add_argument("--reseed", action="store_true", help="drop cwpp_hist and seed it again")
    ap.add_argument("--seed-only", action="store_true", help="seed (if needed) and stop")
    ap.add_argument("--chunk-events", type=int, default=50_000,
                    help="events written per statement batch while seeding (50000)")
    ap.add_argument("--drop", action="store_true",
                    help="only drop cwpp_hist and cwpp_hist_empty, and stop")
    ap.add_argument("--pidfile", help="append 'pid exe' of every process started")
    a = ap.parse_args()
    if a.events < 1 or a.alerts < a.events or a.records < 1 or a.chunk_events < 1:
        ap.error("--events, --records and --chunk-events must be positive, --alerts >= --events")

    signal.signal(signal.SIGTERM, pipeline.on_sigterm)
    global BASE_DSN
    BASE_DSN = {e: os.environ.get(e, "") for e in
                ("CWPP_PG_ADMIN_DSN", *pipeline.DSN_ENV.values())}
    if not BASE_DSN["CWPP_PG_ADMIN_DSN"]:
        print("history: CWPP_PG_ADMIN_DSN not set: source deploy/local/env "
              "(bench/run-history does it)", file=sys.stderr)
        return 1
    t.ADMIN_DSN = BASE_DSN["CWPP_PG_ADMIN_DSN"]
    if a.drop:
        drop(EMPTY_DB)
        drop(HIST_DB)
        print(f"history: dropped {HIST_DB} and {EMPTY_DB}")
        return 0

    procs = pipeline.Procs(a.pidfile)
    run = uuid.uuid4().hex[:6]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"cwpp-bench-history-{run}"
    tmp.mkdir(parents=True, exist_ok=True)
    res = {"run": run, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "partitions": pipeline.PARTITIONS, "alerts": a.alerts, "events": a.events,
           "records": a.records, "logs": str(tmp)}
    pipeline.throughput_records = shared_accounts(pipeline.throughput_records)
    t_start = None
    try:
        res["seed"] = seed(a)
        if a.seed_only:
            return 0
        print(f"history bench run {run} (service logs in {tmp})", flush=True)
        drop(EMPTY_DB)
        create_migrated(EMPTY_DB)
        print(f"-- {EMPTY_DB} (empty, freshly migrated)", flush=True)
        res["empty"] = measure(procs, EMPTY_DB, a.records, run + "e", tmp)
        print(f"-- {HIST_DB} ({a.alerts} alerts, {a.events} events stored)", flush=True)
        t_start = q(HIST_DB, "SELECT now()")[0][0]
        res["history"] = measure(procs, HIST_DB, a.records, run + "h", tmp)
    except BenchError as e:
        print(f"history: {e}", file=sys.stderr)
        return 1
    finally:
        procs.cleanup()
        if t_start is not None:
            # this run's events out of the next run's correlation window (also after a
            # failed run: they are stored all the same)
            q(HIST_DB, "UPDATE cwpp.events SET first_seen = first_seen - interval '3 days', "
                       "last_seen = last_seen - interval '3 days' WHERE created_at >= %s",
              (t_start,))
        for env, v in BASE_DSN.items():
            os.environ[env] = v

    e, h = res["empty"], res["history"]
    ratio = round(h["alerts_per_s"] / e["alerts_per_s"], 3) \
        if h["alerts_per_s"] and e["alerts_per_s"] else None
    res["ratio"] = ratio
    res["goal_met"] = ratio is not None and ratio >= GOAL_RATIO
    res["busy"] = any(x["db"]["other_db_rows_written"] > a.records // 10 for x in (e, h))
    print(f"\n== CWPP pipeline with history: {a.alerts} alerts, {a.events} events stored vs "
          f"an empty database; {a.records} alerts, {pipeline.PARTITIONS} partitions")
    show("empty", e)
    show("history", h)
    print(f"ratio     history/empty {ratio} (goal >= {GOAL_RATIO}: "
          f"{'met' if res['goal_met'] else 'NOT met'}); database {HIST_DB} "
          f"{h['db']['database_mib']} MiB")
    if res["busy"]:
        print("warning: other work wrote to the server during a phase: run again on a quiet "
              "machine before quoting the ratio", file=sys.stderr)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"history-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(res, indent=2, default=str))
    with open(out / "history.jsonl", "a") as f:
        f.write(json.dumps(res, separators=(",", ":"), default=str) + "\n")
    print(json.dumps(res, default=str))
    return 0


BASE_DSN = {}

if __name__ == "__main__":
    sys.exit(main())
