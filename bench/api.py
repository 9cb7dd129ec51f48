#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/api.py: cwpp-api's read latency, throughput and memory on a realistic data set.

Data set (bench/api_seed.sql, set-based): 100,000 events over 200 accounts and the last
170 days, 10 alerts each (1,000,000 alerts with their event_alerts rows) and 1,300,000
entity_alerts rows, then ANALYZE; in a database of its own (--db, default
cwpp_bench_api: created and migrated when missing). Seeded once: a later run reuses it
when its marker and its counts are there (--reseed seeds again). Users: bench-analyst
(analyst) holding 20 accounts (every tenth, big and small tenants) and bench-admin.

cwpp-api runs on that database (plain HTTP on loopback, the role cwpp_api, its default 4
request threads, each with its own database connection), on the topic prefix bench-api.
The measures, each on a warmed server:
 1. list (open loop): GET /api/v1/events?status=unhandled,handling&level=high,critical
    &since=<30 days ago> as the analyst at a fixed rate (200/s) for 30 s; requests are
    scheduled at fixed times and latency is measured from the scheduled time (a slow
    answer delays nothing that follows, and queueing counts), over keep-alive
    connections (a new one when every open one is busy); p50/p90/p99/max.
 2. detail (open loop): GET /api/v1/events/{id} over random events of the analyst's
    accounts, the same way.
 3. wrk, closed loop: the analyst's list at the most it gives, 4 connections, 15 s; its
    latency distribution and requests/s.
 4. list as the admin (open loop, every account): the same filters, the same rate.
 5. cwpp-api's peak RSS (VmHWM) after 1, 2 and 3 (the goal's figure), and its RSS with
    200 keep-alive connections held open (each holds its memory pool: KiB per connection).
 6. EXPLAIN (ANALYZE, BUFFERS) of the two statements the list runs for those filters
    (the total and the page), as services/api/events.c builds them, run as cwpp_api with
    the analyst's scope, and of the detail's statement: where the time goes.
Each phase also reports the CPU ms per request of cwpp-api and of its database sessions,
how busy the machine was (other work on it skews every figure) and cwpp-api's RSS.
Results are appended to bench/results/api.jsonl; the plans go to
bench/results/api-plans.txt. Goals (docs, bench section of HACKING.md): list p99 <= 50 ms
at 200/s, detail p99 <= 50 ms, RSS <= 64 MiB. Not a test: figures for notes. Run through
bench/run-api."""
import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import cwpp_testlib as t  # noqa: E402

HERE = Path(__file__).resolve().parent
PREFIX = "bench-api."
ANALYST, ADMIN = "bench-analyst", "bench-admin"
SEED_VERSION = 1
GOALS = {"list_p99_ms": 50, "detail_p99_ms": 50, "rss_mib": 64}


# ------------------------------------------------------------------ the database

def admin_dsn(db, name=None):
    return t.with_dbname(t.ADMIN_DSN, name or db)


def ensure_database(db):
    """Creates db when missing and applies the migrations of this tree (deploy/migrate)."""
    if not t.query("SELECT 1 FROM pg_database WHERE datname = %s", (db,),
                   dsn=admin_dsn(db, "postgres")):
        t.query(f'CREATE DATABASE "{db}"', dsn=admin_dsn(db, "postgres"))
    elif t.query("SELECT to_regclass('cwpp.events') IS NOT NULL", dsn=admin_dsn(db))[0][0] and \
            t.query("SELECT EXISTS (SELECT 1 FROM cwpp.events WHERE event_id NOT LIKE "
                    "'ev-bench-%%')", dsn=admin_dsn(db))[0][0]:
        # the bench migrates and empties its database: never the stack's (or a test's)
        raise SystemExit(f"bench: database {db} holds events that are not the bench's; "
                         "name a database of its own (--db)")
    env = dict(os.environ, CWPP_PG_ADMIN_DSN=admin_dsn(db),
               CWPP_SCHEMA_DIR=str(t.REPO / "schemas" / "sql"))
    p = subprocess.run([str(t.REPO / "deploy" / "migrate")], env=env, capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"bench: migrating {db} failed:\n{p.stdout}{p.stderr}")


def counts(db):
    return t.query("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM alerts), "
                   "(SELECT count(*) FROM event_alerts), (SELECT count(*) FROM entity_alerts)",
                   dsn=admin_dsn(db))[0]


def seed(db, a, force):
    """Seeds db unless the same seed is there; returns what describes the data set."""
    want = {"version": SEED_VERSION, "events": a.events, "accounts": a.accounts,
            "per_event": a.per_event}
    t.query("CREATE TABLE IF NOT EXISTS public.cwpp_bench_api_seed (id int PRIMARY KEY, "
            "params jsonb NOT NULL, seeded_at timestamptz NOT NULL, seconds float8 NOT NULL)",
            dsn=admin_dsn(db))
    row = t.query("SELECT params, seeded_at, seconds FROM public.cwpp_bench_api_seed "
                  "WHERE id = 1", dsn=admin_dsn(db))
    n = counts(db)
    if (not force and row and row[0][0] == want and n[0] == a.events and
            n[1] == a.events * a.per_event):
        age = datetime.now(timezone.utc) - row[0][1]
        print(f"bench: reusing the data set seeded {row[0][1]:%Y-%m-%d %H:%M} UTC "
              f"({age.days} d ago; --reseed seeds again): {n[0]} events, {n[1]} alerts, "
              f"{n[3]} entity rows", flush=True)
        if age > timedelta(days=7):
            print("bench: warning: the data set is over a week old: the 30-day filter "
                  "selects fewer events than a fresh one (--reseed)", file=sys.stderr)
        return {"seeded_at": row[0][1].isoformat(), "seed_s": row[0][2], "reused": True}
    print(f"bench: seeding {a.events} events, {a.events * a.per_event} alerts into {db} ...",
          flush=True)
    t0 = time.time()
    p = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
         "-d", admin_dsn(db), "-v", f"events={a.events}", "-v", f"accounts={a.accounts}",
         "-v", f"per_event={a.per_event}",
         "-c", "TRUNCATE cwpp.events, cwpp.alerts, cwpp.event_alerts, cwpp.entity_alerts, "
               "cwpp.event_edges, cwpp.event_keys, cwpp.handled_events, cwpp.notifications",
         "-f", str(HERE / "api_seed.sql"),
         "-c", "DELETE FROM public.cwpp_bench_api_seed"],
        capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"bench: seeding failed:\n{p.stdout}{p.stderr}")
    t.query("ANALYZE cwpp.events, cwpp.alerts, cwpp.event_alerts, cwpp.entity_alerts",
            dsn=admin_dsn(db))
    secs = round(time.time() - t0, 1)
    t.query("INSERT INTO public.cwpp_bench_api_seed VALUES (1, %s, now(), %s)",
            (json.dumps(want), secs), dsn=admin_dsn(db))
    n = counts(db)
    print(f"bench: seeded in {secs} s: {n[0]} events, {n[1]} alerts, {n[2]} event_alerts, "
          f"{n[3]} entity rows", flush=True)
    return {"seeded_at": datetime.now(timezone.utc).isoformat(), "seed_s": secs,
            "reused": False}


def make_users(db, accounts):
    """The analyst (holding accounts) and the admin; their old bench tokens go."""
    conn = t.db(admin_dsn(db))
    try:
        with conn.cursor() as cur:
            for user, role in ((ANALYST, "analyst"), (ADMIN, "admin")):
                cur.execute("INSERT INTO users (user_name, display_name, role, created_by) "
                            "VALUES (%s, %s, %s, 'bench') ON CONFLICT (user_name) DO UPDATE "
                            "SET role = EXCLUDED.role, disabled_at = NULL", (user, user, role))
                cur.execute("DELETE FROM api_tokens WHERE user_name = %s", (user,))
            cur.execute("DELETE FROM user_accounts WHERE user_name = %s", (ANALYST,))
            cur.executemany("INSERT INTO user_accounts (user_name, account_id, granted_by) "
                            "VALUES (%s, %s, 'bench')", [(ANALYST, x) for x in accounts])
    finally:
        conn.close()


# ------------------------------------------------------------------ the load

class Conn:
    """One keep-alive HTTP/1.1 connection (asyncio streams)."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    @classmethod
    async def open(cls, host, port):
        r, w = await asyncio.open_connection(host, port)
        return cls(r, w)

    async def get(self, host, path, token):
        self.w.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}"
                      "\r\nAccept: application/json\r\n\r\n").encode())
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            body = await self.r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await self.r.readexactly(size + 2)
                if size == 0:
                    break
        else:
            body = await self.r.read()
        keep = hdrs.get("connection", "").lower() != "close"
        return status, body, keep

    def close(self):
        self.w.close()


async def open_loop(host, port, token, paths, rate, seconds, max_conns=256, warm=8):
    """Sends len == rate*seconds GETs at fixed times (path i = paths(i)); returns the
    latencies from each request's scheduled time (s), the errors and the client's own
    worst lateness in sending (s) and the connections it used."""
    loop = asyncio.get_running_loop()
    idle = [await Conn.open(host, port) for _ in range(warm)]
    opened = [warm]
    sem = asyncio.Semaphore(max_conns)
    lat, errors, late = [], {}, [0.0]
    total = int(rate * seconds)
    start = loop.time() + 0.1

    async def one(i, at):
        async with sem:
            late[0] = max(late[0], loop.time() - at)
            c = idle.pop() if idle else None
            try:
                if c is None:
                    opened[0] += 1
                    c = await Conn.open(host, port)
                status, body, keep = await c.get(host, paths(i), token)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                if c is not None:
                    c.close()
                return
            lat.append(loop.time() - at)
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
            if keep:
                idle.append(c)
            else:
                c.close()

    tasks = []
    for i in range(total):
        at = start + i / rate
        d = at - loop.time()
        if d > 0:
            await asyncio.sleep(d)
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)
    for c in idle:
        c.close()
    return lat, errors, late[0], opened[0]


async def held_connections(api, token, path, n):
    """cwpp-api's RSS (MiB) with n keep-alive connections open, each after one request,
    and after they closed."""
    u = urllib.parse.urlsplit(api.url)
    conns = [await Conn.open(u.hostname, u.port) for _ in range(n)]
    await asyncio.gather(*[c.get(u.hostname, path, token) for c in conns])
    await asyncio.sleep(0.5)
    held = vm(api.proc.pid, "VmRSS") / 1024
    for c in conns:
        c.close()
    await asyncio.sleep(1)
    return held, vm(api.proc.pid, "VmRSS") / 1024


async def burst(host, port, token, paths, n):
    """n requests at once, each on a connection of its own."""
    conns = [await Conn.open(host, port) for _ in range(n)]
    await asyncio.gather(*[c.get(host, paths(i), token) for i, c in enumerate(conns)])
    for c in conns:
        c.close()


def pct(sorted_ms, q):
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, int(round(q / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return round(sorted_ms[k], 2)


class Probe:
    """CPU time of cwpp-api and of its database sessions (their backends' /proc stat),
    the machine's busy share (/proc/stat) and cwpp-api's RSS, around one phase."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, api, db):
        self.pid, self.db = api.proc.pid, db

    @staticmethod
    def _cpu(pid):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / Probe.TICK
        except (OSError, IndexError, ValueError):
            return 0.0

    @staticmethod
    def _machine():
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(f), f[3] + f[4]  # total, idle + iowait

    def _backends(self):
        return [r[0] for r in t.query("SELECT pid FROM pg_stat_activity WHERE datname = %s "
                                      "AND usename = 'cwpp_api'", (self.db,),
                                      dsn=admin_dsn(self.db))]

    def start(self):
        self.pids = self._backends()
        self.t0 = time.time()
        self.api0 = self._cpu(self.pid)
        self.pg0 = {p: self._cpu(p) for p in self.pids}
        self.m0 = self._machine()

    def stop(self, requests):
        api = self._cpu(self.pid) - self.api0
        # a session the pool opened during the phase counts from zero
        pg = sum(self._cpu(p) - self.pg0.get(p, 0.0)
                 for p in set(self.pg0) | set(self._backends()))
        m1 = self._machine()
        total, idle = m1[0] - self.m0[0], m1[1] - self.m0[1]
        n = max(1, requests)
        return {"api_cpu_ms_per_req": round(api * 1000 / n, 3),
                "pg_cpu_ms_per_req": round(pg * 1000 / n, 3),
                "machine_busy": round(1 - idle / total, 3) if total else None,
                "api_rss_mib": round(vm(self.pid, "VmRSS") / 1024, 1),
                "api_hwm_mib": round(vm(self.pid, "VmHWM") / 1024, 1)}


def vm(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run_open_loop(name, api, probe, token, paths, rate, seconds):
    u = urllib.parse.urlsplit(api.url)
    # warm: every database session of the pool (a burst keeps every request thread busy)
    # and the database's caches
    asyncio.run(burst(u.hostname, u.port, token, paths, 16))
    asyncio.run(open_loop(u.hostname, u.port, token, paths, 50, 2))
    probe.start()
    lat, errors, late, conns = asyncio.run(
        open_loop(u.hostname, u.port, token, paths, rate, seconds))
    ms = sorted(x * 1000.0 for x in lat)
    res = {"rate_per_s": rate, "seconds": seconds, "requests": int(rate * seconds),
           "answered": len(ms), "errors": errors, "p50_ms": pct(ms, 50),
           "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99), "max_ms": round(ms[-1], 2) if ms
           else None, "client_max_lateness_ms": round(late * 1000, 2), "connections": conns,
           **probe.stop(len(ms))}
    print(f"{name}: {json.dumps(res)}", flush=True)
    return res


def run_wrk(url, probe, token, seconds, conns):
    probe.start()
    p = subprocess.run(["wrk", "-t", str(min(2, conns)), "-c", str(conns), "-d", f"{seconds}s",
                        "--latency", "-H", f"Authorization: Bearer {token}", url],
                       capture_output=True, text=True, timeout=seconds + 60)
    out = p.stdout
    res = {"connections": conns, "seconds": seconds, "raw": out}

    def ms(v):
        m = re.match(r"([\d.]+)(us|ms|s)$", v)
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 2)

    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["requests_per_s"] = float(m.group(1)) if m else None
    for q in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)
        res[f"p{q}_ms"] = ms(m.group(1)) if m else None
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["mean_ms"], res["max_ms"] = ms(m.group(1)), ms(m.group(3))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else None
    res.update(probe.stop(res["requests"] or 0))
    print("wrk:", json.dumps({k: v for k, v in res.items() if k != "raw"}), flush=True)
    return res


# ------------------------------------------------------------------ the plans

# The statements GET /api/v1/events runs for the bench's filters, as services/api/events.c
# builds them (LIST_WHERE, LIST_SELECT, the "last_seen" sort, URANK, API_SCOPE,
# API_EV_TS): keep them in step with it. $1 the reading time, $2 retention days, $3 quiet
# hours, $4 the caller's accounts, $5 statuses, $6 levels, $9 since, $12 owner-none,
# $19 the page size + 1; the other filters are NULL.
URANK = ("LEAST(COALESCE(array_position('{act_now,high,medium,low}'::text[], e.urgency), 4) + "
         "(e.last_seen < $1::timestamptz - make_interval(hours => $3::int))::int, 4)")
TS = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
LIST_WHERE = (
    " FROM events e WHERE e.last_seen > $1::timestamptz - make_interval(days => $2::int) "
    "AND ($4::text[] IS NULL OR e.account_id = ANY($4::text[])) "
    "AND ($5::text[] IS NULL OR e.status = ANY($5::text[])) "
    "AND ($6::text[] IS NULL OR e.level = ANY($6::text[])) "
    f"AND ($7::int[] IS NULL OR {URANK} = ANY($7::int[])) "
    "AND ($8::text IS NULL OR e.account_id = $8) "
    "AND ($9::timestamptz IS NULL OR e.last_seen >= $9::timestamptz) "
    "AND ($10::timestamptz IS NULL OR e.first_seen <= $10::timestamptz) "
    "AND ($11::text IS NULL OR e.owner = $11) "
    "AND (NOT $12::boolean OR COALESCE(e.owner, '') = '') "
    "AND ($13::text IS NULL OR strpos(lower(e.name), lower($13)) > 0 OR e.event_id = $13 "
    "  OR EXISTS (SELECT 1 FROM event_alerts ea JOIN alerts a USING (alert_id) "
    "  WHERE ea.event_id = e.event_id AND strpos(lower(a.name), lower($13)) > 0)) "
    "AND ($14::text IS NULL OR EXISTS (SELECT 1 FROM entity_alerts x "
    "  WHERE x.event_id = e.event_id AND x.entity_type = 'host' "
    "  AND x.value_key = bounded_key($14) AND x.value = $14)) "
    "AND ($15::text IS NULL OR EXISTS (SELECT 1 FROM entity_alerts x "
    "  WHERE x.event_id = e.event_id AND x.entity_type = $15 "
    "  AND x.value_key = bounded_key($16::text) AND x.value = $16::text)) "
    "AND ($17::text IS NULL OR $17 = ANY(e.sources)) "
    "AND ($18::text IS NULL OR $18 = ANY(e.stages)) ")
LIST_COUNT = "SELECT count(*)" + LIST_WHERE
LIST_PAGE = (
    "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.urgency, "
    "e.alert_count, e.asset_count, e.occurrences, array_to_json(e.stages) AS stages, "
    + TS.format("e.first_seen") + " AS first_seen, " + TS.format("e.last_seen")
    + " AS last_seen, e.owner, e.last_seen < $1::timestamptz - make_interval(hours => $3::int)"
    " AS _quiet, (e.last_seen)::text AS _k0, (e.event_id)::text AS _k1" + LIST_WHERE
    + " ORDER BY e.last_seen DESC, e.event_id ASC LIMIT $19::int")
SHOW = (
    "SELECT e.event_id, e.account_id, e.name, e.level, e.status, e.owner, "
    "array_to_json(e.stages) AS stages, e.asset_count, e.alert_count, e.occurrences, "
    + TS.format("e.first_seen") + " AS first_seen, " + TS.format("e.last_seen")
    + " AS last_seen, array_to_json(e.sources) AS sources, e.predecessor, e.urgency, "
    "e.assessment::text AS _assessment, "
    "e.last_seen < now() - make_interval(hours => $2::int) AS _quiet, "
    "greatest(0, extract(epoch FROM now() - e.last_seen))::bigint AS quiet_for_s, "
    "e.last_seen > now() - make_interval(days => $3::int) AS in_event_list, "
    + TS.format("e.updated_at") + " AS updated_at "
    "FROM events e WHERE e.event_id = $1 AND ($4::text[] IS NULL OR e.account_id = ANY($4::text[]))")


# The C string constants of services/api/events.c, read from the source itself so that the
# plans are those of the API as built: a constant is its string literals and the macros
# URANK, LRANK, API_SCOPE(col, n), API_EV_TS(col) expanded.
C_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\w+)\s*\(([^()]*)\)|(\w+)')


def c_literals(text):
    return "".join(bytes(m, "utf-8").decode("unicode_escape")
                   for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text))


def c_expand(body, src):
    out = []
    for m in C_TOKEN.finditer(body):
        lit, fn, args, ident = m.groups()
        if lit is not None:
            out.append(bytes(lit, "utf-8").decode("unicode_escape"))
        elif fn == "API_SCOPE":
            col, n = re.findall(r'"([^"]*)"', args)
            out.append(f"(${n}::text[] IS NULL OR {col} = ANY(${n}::text[]))")
        elif fn == "API_EV_TS":
            out.append(TS.format(re.findall(r'"([^"]*)"', args)[0]))
        elif ident is not None:
            d = re.search(rf"^#define {ident}\b((?:.*\\\n)*.*)$", src, re.M)
            if d is None:
                raise ValueError(f"unknown macro {ident}")
            out.append(c_literals(d.group(1)))
        else:
            raise ValueError(f"unexpected {m.group(0)}")
    return "".join(out)


def c_constant(src, name):
    m = re.search(rf"static const char {name}\[\] =(.*?);\n", src, re.S)
    if m is None:
        raise ValueError(f"{name} not found")
    return c_expand(m.group(1), src)


def api_sql():
    """The list's and the detail's statements as events.c has them (a warning, and this
    file's copies, when it cannot be read or differs from them)."""
    global LIST_COUNT, LIST_PAGE, SHOW
    try:
        src = (t.REPO / "services" / "api" / "events.c").read_text()
        where, select, show = (c_constant(src, n) for n in ("LIST_WHERE", "LIST_SELECT",
                                                             "SHOW_SQL"))
    except (OSError, ValueError) as e:
        print(f"bench: warning: services/api/events.c not read ({e}): the plans are those "
              "of bench/api.py's copy of its SQL", file=sys.stderr)
        return
    count = "SELECT count(*)" + where
    page = (select + ", (e.last_seen)::text AS _k0, (e.event_id)::text AS _k1" + where
            + " ORDER BY e.last_seen DESC, e.event_id ASC LIMIT $19::int")
    if (count, page, show) != (LIST_COUNT, LIST_PAGE, SHOW):
        print("bench: warning: services/api/events.c's SQL differs from bench/api.py's copy: "
              "the plans are of events.c's (update the copy)", file=sys.stderr)
    LIST_COUNT, LIST_PAGE, SHOW = count, page, show


def pg_array(xs):
    return "{" + ",".join(xs) + "}"


def explain(db, scope, since, event_id):
    """EXPLAIN (ANALYZE, BUFFERS) of the list's two statements and the detail's, as
    cwpp_api with the analyst's scope (and the list's also with the admin's: NULL),
    through PREPARE/EXECUTE with custom plans (what PQexecParams gets). Returns
    {name: (plan text, execution ms)}."""
    out = {}
    api_sql()
    conn = t.db(admin_dsn(db))
    try:
        with conn.cursor() as cur:
            cur.execute("SET ROLE cwpp_api")
            cur.execute("SET search_path = cwpp")
            cur.execute("SET plan_cache_mode = force_custom_plan")
            cur.execute("SELECT now()::text")
            as_of = cur.fetchone()[0]
            lst = [as_of, "180", "24", scope, "{unhandled,handling}", "{high,critical}", None,
                   None, since, None, None, "false", None, None, None, None, None, None]
            cases = [("list_total_analyst", LIST_COUNT, lst),
                     ("list_page_analyst", LIST_PAGE, lst + ["101"]),
                     ("list_total_admin", LIST_COUNT, lst[:3] + [None] + lst[4:]),
                     ("list_page_admin", LIST_PAGE, lst[:3] + [None] + lst[4:] + ["101"]),
                     ("detail_analyst", SHOW, [event_id, "24", "180", scope])]
            for name, sql, params in cases:
                cur.execute(f"PREPARE bench_q AS {sql}")
                # warm, then the measured one
                args = ", ".join(["%s"] * len(params))
                cur.execute(f"EXECUTE bench_q ({args})", params)
                cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q ({args})", params)
                plan = "\n".join(r[0] for r in cur.fetchall())
                cur.execute("DEALLOCATE bench_q")
                m = re.search(r"Execution Time: ([\d.]+) ms", plan)
                out[name] = (plan, float(m.group(1)) if m else None)
                print(f"plan {name}: {out[name][1]} ms", flush=True)
    finally:
        conn.close()
    return out


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="cwpp_bench_api", help="database of the data set")
    ap.add_argument("--reseed", action="store_true", help="seed again even if seeded")
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--per-event", type=int, default=10, help="alerts per event")
    ap.add_argument("--rate", type=float, default=200, help="open-loop requests/s")
    ap.add_argument("--seconds", type=float, default=30, help="per open-loop phase")
    ap.add_argument("--wrk-seconds", type=int, default=15)
    ap.add_argument("--wrk-connections", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None,
                    help="CWPP_API_THREADS for cwpp-api (default: its own default)")
    ap.add_argument("--skip-admin", action="store_true", help="no admin open-loop phase")
    ap.add_argument("--plans-only", action="store_true",
                    help="only print the plans of the list and detail statements")
    ap.add_argument("--note", default="", help="a note stored with the results")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args()
    if a.db == "cwpp":
        raise SystemExit("bench: cwpp is the stack's database; the bench needs one of its own")
    if a.accounts > 1000:
        raise SystemExit("bench: --accounts is at most 1000 (acct-000 .. acct-999)")

    ensure_database(a.db)
    seeded = seed(a.db, a, a.reseed)
    accounts = [f"acct-{k:03d}" for k in range(0, a.accounts, max(1, a.accounts // 20))][:20]
    make_users(a.db, accounts)
    scope = pg_array(accounts)
    ids = [r[0] for r in t.query("SELECT event_id FROM events WHERE account_id = ANY(%s)",
                                 (accounts,), dsn=admin_dsn(a.db))]
    now = datetime.now(timezone.utc)
    since = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sel = t.query("SELECT count(*) FILTER (WHERE last_seen >= %s), count(*) FILTER (WHERE "
                  "last_seen >= %s AND status IN ('unhandled', 'handling') AND level IN "
                  "('high', 'critical')), count(*) FILTER (WHERE last_seen >= %s AND status "
                  "IN ('unhandled', 'handling') AND level IN ('high', 'critical') AND "
                  "account_id = ANY(%s)) FROM events", (since, since, since, accounts),
                  dsn=admin_dsn(a.db))[0]
    data = {"events": a.events, "alerts": a.events * a.per_event, "accounts": a.accounts,
            "analyst_accounts": len(accounts), "analyst_events": len(ids),
            "events_30d": sel[0], "matching_30d_all": sel[1], "matching_30d_analyst": sel[2],
            **seeded}
    print("data:", json.dumps(data), flush=True)

    if a.plans_only:
        for k, (plan, _) in explain(a.db, scope, since, ids[0]).items():
            print(f"--- {k}\n{plan}")
        return
    load = os.getloadavg()
    print(f"bench: load average {load[0]:.2f} before the run (2 cores here are shared: "
          "compare runs made under similar load)", flush=True)
    env = {"CWPP_LOG_LEVEL": "warn"}
    if a.threads:
        env["CWPP_API_THREADS"] = str(a.threads)
    api = t.Api(PREFIX, dsn=t.with_dbname(t.API_DSN, a.db), extra_env=env)
    try:
        tok_an, tok_ad = api.token(ANALYST), api.token(ADMIN)
        list_path = ("/api/v1/events?status=unhandled,handling&level=high,critical&since="
                     + since)
        st, doc, _ = api.get(list_path, token=tok_an)
        assert st == 200, (st, doc)
        print(f"list: total {doc['total']}, page {len(doc['events'])}", flush=True)
        rng = random.Random(42)
        picks = [rng.choice(ids) for _ in range(int(a.rate * (a.seconds + 3)))]
        st, doc, _ = api.get("/api/v1/events/" + picks[0], token=tok_an)
        assert st == 200, (st, doc)

        results = {}
        probe = Probe(api, a.db)
        results["list"] = run_open_loop("list (analyst)", api, probe, tok_an, lambda i: list_path,
                                        a.rate, a.seconds)
        results["detail"] = run_open_loop(
            "detail (analyst)", api, probe, tok_an,
            lambda i: "/api/v1/events/" + urllib.parse.quote(picks[i % len(picks)], safe=""),
            a.rate, a.seconds)
        results["wrk_list"] = run_wrk(api.url + list_path, probe, tok_an, a.wrk_seconds,
                                      a.wrk_connections)
        rss = round(vm(api.proc.pid, "VmHWM") / 1024, 1)
        print(f"cwpp-api peak RSS: {rss} MiB", flush=True)
        # last: an admin's list reads every account (and may overload the server, whose
        # every open connection holds its memory pool: its RSS is reported apart)
        if not a.skip_admin:
            results["list_admin"] = run_open_loop("list (admin)", api, probe, tok_ad,
                                                  lambda i: list_path, a.rate, a.seconds)
        # what an open connection costs: cwpp-api's RSS with 200 of them held open
        held, after = asyncio.run(held_connections(api, tok_an, "/api/v1/events/" + picks[0],
                                                   200))
        results["connections_200"] = {
            "rss_mib": round(held, 1), "rss_after_close_mib": round(after, 1),
            "kib_per_connection": round((held - after) * 1024 / 200)}
        print("200 connections:", json.dumps(results["connections_200"]), flush=True)
    finally:
        rc = api.stop()
    plans = explain(a.db, scope, since, picks[0])

    wrk_raw = results["wrk_list"].pop("raw")
    result = {
        "bench": "api", "at": datetime.now(timezone.utc).isoformat(), "note": a.note,
        "db": a.db, "data": data, "filters": "status=unhandled,handling&level=high,critical"
        "&since=30d", "api_threads": a.threads or "default", **results,
        "api_peak_rss_mib": rss, "sigterm_rc": rc, "load_before": round(load[0], 2),
        "indexes": [r[0] for r in t.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'cwpp' AND tablename = "
            "'events' ORDER BY 1", dsn=admin_dsn(a.db))],
        "plans_ms": {k: v[1] for k, v in plans.items()},
        "goals": {
            "list_p99_ms": [results["list"]["p99_ms"], GOALS["list_p99_ms"],
                            results["list"]["p99_ms"] is not None and
                            results["list"]["p99_ms"] <= GOALS["list_p99_ms"]],
            "detail_p99_ms": [results["detail"]["p99_ms"], GOALS["detail_p99_ms"],
                              results["detail"]["p99_ms"] is not None and
                              results["detail"]["p99_ms"] <= GOALS["detail_p99_ms"]],
            "rss_mib": [rss, GOALS["rss_mib"], rss <= GOALS["rss_mib"]]}}
    print(json.dumps(result, indent=2))
    out = Path(a.out)
    out.mkdir(exist_ok=True)
    with open(out / "api.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")
    with open(out / "api-plans.txt", "a") as fh:
        fh.write(f"==== {result['at']} {a.note}\n")
        for k, (plan, _) in plans.items():
            fh.write(f"--- {k}\n{plan}\n")
        fh.write(f"--- wrk\n{wrk_raw}\n")


if __name__ == "__main__":
    main()
