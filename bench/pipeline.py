#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/pipeline.py: the whole pipeline, ingest -> whitelist-filter -> correlator, on the
local stack, against a raw librdkafka relay on the same broker. Run it through
bench/run-pipeline, which checks the stack, sources deploy/local/env and cleans up.

Each phase uses a fresh topic prefix (bench<run><phase>.: topics made by cwpp-admin) and
fresh consumer groups, and accounts named after the run, so runs never meet earlier
data. The three services run as real processes, each with its own database role
(CWPP_PG_DSN, CWPP_PG_DSN_WHITELIST, CWPP_PG_DSN_CORRELATOR), at their default batch
settings, and read and write only the prefix's topics.

Phase A (sustained throughput): the services run and are assigned their partitions; then
N raw JSON alerts (valid CWPP-contract alerts of 24 accounts, grouped in incidents of
5..35 alerts with their own assets, attacker IP, file hashes and processes; about 30 %
are recurrences of "the same alert" by docs/alert-format.md; in time order) are produced
to <prefix>alerts.raw as fast as the producer goes. The pipeline is done when every
group's committed offsets reach the ends of its input topics (raw, normalized, accepted).
Throughput is N over the span from the first produce to the last record the correlator
wrote (the broker timestamps of the last <prefix>events snapshots; the commit-based time
is printed too). Then the relay copies the same N raw records from a fresh group (a
backlog, as bench/run measures it).

Phase A also reports each stage's rate (N over the span from the first produce to the
last record the stage wrote) and the CPU the phase cost per alert: utime + stime
(/proc/<pid>/stat) of each service, of the Kafka broker (the pid in
$CWPP_STATE_DIR/run/kafka.pid, else the java process running kafka.Kafka) and of
PostgreSQL (the postmaster, first line of $CWPP_STATE_DIR/pg/postmaster.pid, and every
process whose parent it is: the services' sessions live for the whole phase), sampled
just before the first produce and right after the pipeline is done. PostgreSQL counts
the backends of the services' database and the server's own processes (checkpointer,
walwriter, ...); sessions on other databases of a shared server are reported apart and
not counted. The sum gives "alerts per core-second" = N / CPU seconds, how much of the
machine's 2 x 100 % the pipeline needs per alert. How busy the whole machine was in the
window is printed too: on a machine busy with other work the broker's figure includes
their share and the rates mean little.

Phase B (latency at fixed rates, --rates, default 1,000/s and 5,000/s, each with its own
topic prefix bench<run>b<index>., groups and accounts): after a 3-second warm-up at the
same rate (other accounts, occurrence times an hour earlier; waited out; its figures are
reported apart as the start-up latency and its records count among the unmatched ones of
the hop split), alerts are produced at R/s for S seconds (raw records keyed by account, so
each account's alerts keep their order through the pipeline). Each alert has a unique occurrence time (ms) and belongs to an incident
of 5 alerts with its own asset, IP and hash, sent ~S/5 s apart, so it opens or joins one
event and moves the event's last_seen_ms to exactly its occurrence time. An alert's
latency is the timestamp of the first <prefix>events snapshot of its event whose
last_seen_ms reached its occurrence time, minus the time it was produced (both from this
machine's clock). A snapshot whose alert_count disagrees with the alerts sent so far is
counted as inconsistent. The latency is then split per hop from the Alert records of
<prefix>alerts.normalized (ingest's output) and <prefix>alerts.accepted (the filter's),
matched to the alert by their occurred_at_ms, with each record's CreateTime (set by the
service's producer, on this machine): ingest = normalized - sent, whitelist-filter =
accepted - normalized, correlator = snapshot - accepted (p50/p99 over the alerts seen at
all three).

Peak RSS is VmHWM of each service at the end of each phase. Results: printed (a summary
block at the end), written to bench/results/pipeline-<time>.json and appended as one line
to bench/results/pipeline.jsonl ("latency" is a list, one entry per rate). The alerts
stay in PostgreSQL (as bench/run's do). The services inherit this process's environment
(CWPP_BATCH_LINGER_MS, CWPP_BATCH_MAX_MS, ... pass through); unset, CWPP_BATCH_MAX_MS
and CWPP_RETRY_MAX_MS take the services' own defaults (50, 5000) rather than the shorter
ones of the tests."""
import argparse
import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import avro.io  # noqa: E402
import cwpp_testlib as t  # noqa: E402
from bench import RELAY, create_relay_topic, pct, vmhwm_kib  # noqa: E402
from confluent_kafka import (TIMESTAMP_CREATE_TIME, Consumer, KafkaException, Producer,  # noqa: E402
                             TopicPartition)
from confluent_kafka.admin import AdminClient  # noqa: E402

import psycopg2  # noqa: E402

PARTITIONS = 6
SERVICES = ("ingest", "whitelist-filter", "correlator")
INPUT = {"ingest": "alerts.raw", "whitelist-filter": "alerts.normalized",
         "correlator": "alerts.accepted"}
DSN_ENV = {"ingest": "CWPP_PG_DSN", "whitelist-filter": "CWPP_PG_DSN_WHITELIST",
           "correlator": "CWPP_PG_DSN_CORRELATOR"}
RSS_LIMIT_MIB = 64  # the goal for every service
HINT_UP = "start the local stack with deploy/local/up (then . deploy/local/env)"


class BenchError(Exception):
    """A precondition or a run failed: printed without a traceback."""


# ------------------------------------------------------------------ processes

class Procs:
    """Every process this bench starts; each pid also goes to --pidfile so that
    bench/run-pipeline can end them if this process dies without cleaning up."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.services = []
        self.others = []

    def _record(self, pid, exe):
        if self.pidfile:
            with open(self.pidfile, "a") as f:
                f.write(f"{pid} {os.path.realpath(exe)}\n")

    def service(self, name, prefix, tmp, extra_env):
        svc = t.Service(name, prefix, tmp, group=f"{prefix}{name}", extra_env=extra_env)
        svc.start()
        self.services.append(svc)
        self._record(svc.proc.pid, t.BIN / f"cwpp-{name}")
        return svc

    def popen(self, argv, **kw):
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.others.append(p)
        self._record(p.pid, argv[0])
        return p

    def stop_services(self, svcs=None, timeout=20):
        """SIGTERM (the services finish their batch and commit), then SIGKILL."""
        svcs = list(self.services if svcs is None else svcs)
        for s in svcs:
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        for s in svcs:
            if s.proc is None:
                continue
            try:
                s.proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                print(f"pipeline: {s.name} ignored SIGTERM for {timeout}s: killed",
                      file=sys.stderr)
                s.proc.kill()
                s.proc.wait(10)
            try:
                s._logf.close()
            except AttributeError:
                pass
            if s in self.services:
                self.services.remove(s)

    def cleanup(self):
        for p in self.others:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.others = []
        self.stop_services()


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


# --------------------------------------------------------------- preconditions

def preflight(need_relay):
    missing_env = [v for v in ("CWPP_PG_ADMIN_DSN", *DSN_ENV.values()) if not os.environ.get(v)]
    if missing_env:
        raise BenchError(f"{', '.join(missing_env)} not set: source deploy/local/env "
                         "(bench/run-pipeline does it)")
    bins = ["cwpp-admin"] + [f"cwpp-{s}" for s in SERVICES]
    absent = [b for b in bins if not os.access(t.BIN / b, os.X_OK)]
    if absent:
        raise BenchError(f"not built in {t.BIN}: {', '.join(absent)} "
                         f"(cmake --build build --target {' '.join(bins)} cwpp-bench-relay)")
    try:
        admin = AdminClient({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "socket.timeout.ms": 5000,
                             "log_level": 0})
        admin.list_topics(timeout=8)
    except KafkaException as e:
        raise BenchError(f"Kafka at {t.BROKERS} is not reachable ({e}): {HINT_UP}")
    for what, env in [("superuser", "CWPP_PG_ADMIN_DSN")] + \
            [(f"{s} role", DSN_ENV[s]) for s in SERVICES]:
        try:
            psycopg2.connect(os.environ[env], connect_timeout=5).close()
        except psycopg2.OperationalError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
            if "password" in msg or "authentication" in msg or "not permitted to log in" in msg:
                raise BenchError(f"PostgreSQL refuses the {what} ({env}): {msg}. Set the "
                                 "service-role passwords with deploy/migrate (bench/run-pipeline "
                                 "runs it)")
            raise BenchError(f"PostgreSQL not reachable as the {what} ({env}): {msg}: {HINT_UP}")
    missing = [tbl for tbl in ("alerts", "events", "whitelist_rules")
               if t.query("SELECT to_regclass(%s)", (f"cwpp.{tbl}",))[0][0] is None]
    if missing:
        raise BenchError(f"tables {missing} missing: the schema is not up to date "
                         "(run deploy/migrate)")
    if need_relay and not os.access(RELAY, os.X_OK):
        print(f"pipeline: {RELAY} not built: no relay figure "
              "(cmake --build build --target cwpp-bench-relay)", file=sys.stderr)
        return False
    return need_relay


# ------------------------------------------------------------------ Kafka helpers

def new_consumer(tag):
    return Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": f"bench-{tag}-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "fetch.max.bytes": 52428800, "log_level": 3})


def watermarks(c, topic):
    return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in range(PARTITIONS)}


def committed(group_consumer_cache, group, topic):
    """Committed offsets of group on topic (a consumer per group, kept in the cache)."""
    gc = group_consumer_cache.get(group)
    if gc is None:
        gc = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": group,
                       "enable.auto.commit": False, "log_level": 3})
        group_consumer_cache[group] = gc
    tps = gc.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    return {tp.partition: tp.offset for tp in tps}


def caught_up(c, cache, prefix):
    """(all groups at the end of their input, {service: records behind})."""
    behind = {}
    for svc in SERVICES:
        topic = prefix + INPUT[svc]
        hw = watermarks(c, topic)
        com = committed(cache, f"{prefix}{svc}", topic)
        lag = 0
        for p, (lo, hi) in hw.items():
            done = com.get(p, -1)
            lag += hi - max(done, lo) if done >= 0 else hi - lo
        behind[svc] = lag
    return all(v == 0 for v in behind.values()), behind


def read_all(topic):
    """Every record of topic from the start up to its current end, in partition order."""
    c = new_consumer("read")
    try:
        ends = {p: hi for p, (lo, hi) in watermarks(c, topic).items() if hi > lo}
        if not ends:
            return []
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        out, left = [], dict(ends)
        deadline = time.time() + 300
        while left and time.time() < deadline:
            for m in c.consume(2000, 1.0):
                if m.error() is not None:
                    continue
                out.append(m)
                p = m.partition()
                if p in left and m.offset() >= left[p] - 1:
                    del left[p]
        if left:
            raise BenchError(f"could not read {topic} to its end in 300 s")
        return out
    finally:
        c.close()


def ts_bounds(topic):
    """(first, last) record timestamp (ms) over the partitions of topic, or None."""
    c = new_consumer("ts")
    try:
        firsts, lasts = [], []
        for p, (lo, hi) in watermarks(c, topic).items():
            if hi <= lo:
                continue
            for off, acc in ((lo, firsts), (hi - 1, lasts)):
                c.assign([TopicPartition(topic, p, off)])
                deadline = time.time() + 10
                while time.time() < deadline:
                    m = c.poll(0.5)
                    if m is not None and m.error() is None and m.partition() == p and \
                            m.offset() >= off:
                        acc.append(m.timestamp()[1])
                        break
        return (min(firsts), max(lasts)) if firsts and lasts else None
    finally:
        c.close()


def metrics(svc):
    """Counter and gauge values of a service's /metrics, summed over labels."""
    code, text = svc.http("/metrics")
    out = {}
    if code != 200:
        return out
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if m and not m.group(1).endswith(("_bucket", "_sum")):
            try:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
            except ValueError:
                pass
    return out


# -------------------------------------------------------------------- services

def start_pipeline(procs, prefix, tmp):
    """Creates the prefix's topics, starts the three services and waits until each is
    ready and holds partitions of its input."""
    t.create_topics(prefix, partitions=PARTITIONS)
    svcs = {}
    for name in SERVICES:
        svcs[name] = procs.service(name, prefix, tmp, {
            "CWPP_PG_DSN": os.environ[DSN_ENV[name]],
            "CWPP_LOG_LEVEL": os.environ.get("CWPP_LOG_LEVEL") or "warn",
            # the services' own defaults (cwpp_testlib's Service shortens them for tests),
            # unless the caller's environment sets them (it passes through otherwise)
            "CWPP_BATCH_MAX_MS": os.environ.get("CWPP_BATCH_MAX_MS") or "50",
            "CWPP_RETRY_MAX_MS": os.environ.get("CWPP_RETRY_MAX_MS") or "5000"})
    for name, s in svcs.items():
        try:
            s.wait_ready(timeout=60)
        except AssertionError as e:
            raise BenchError(f"{name} did not become ready (log {s.log_path}):\n{e}")
    deadline = time.time() + 60
    while True:
        waiting = [n for n, s in svcs.items()
                   if not any(k.endswith("_assigned_partitions") and v > 0
                              for k, v in metrics(s).items())]
        if not waiting:
            break
        for n, s in svcs.items():
            if s.proc.poll() is not None:
                raise BenchError(f"{n} exited with {s.proc.returncode}:\n{s.log_text()[-3000:]}")
        if time.time() > deadline:
            raise BenchError(f"no partitions assigned to {waiting} within 60 s")
        time.sleep(0.2)
    time.sleep(1.0)  # let the group settle (no rebalance during the measurement)
    return svcs


def wait_done(svcs, prefix, timeout, what):
    """Waits until every group committed its whole input; returns the time it saw that."""
    c, cache = new_consumer("wm"), {}
    try:
        deadline, last_report, last = time.time() + timeout, time.time(), None
        while True:
            done, behind = caught_up(c, cache, prefix)
            now = time.time()
            if done:
                return now
            for n, s in svcs.items():
                if s.proc.poll() is not None:
                    raise BenchError(f"{n} exited with {s.proc.returncode} during {what}:\n"
                                     f"{s.log_text()[-3000:]}")
            if now > deadline:
                raise BenchError(f"{what}: not done after {timeout} s, records behind per "
                                 f"service: {behind} (logs: {[str(s.log_path) for s in svcs.values()]})")
            if now - last_report > 10 and behind != last:
                print(f"  ... behind: {behind}", flush=True)
                last_report, last = now, behind
            time.sleep(0.1)
    finally:
        for gc in cache.values():
            gc.close()
        c.close()


def rss_mib(svcs):
    out = {}
    for n, s in svcs.items():
        try:
            out[n] = round(vmhwm_kib(s.proc.pid) / 1024, 1)
        except OSError:
            out[n] = None
    return out


# ------------------------------------------------------------------------ CPU

CLK_TCK = os.sysconf("SC_CLK_TCK")
CPU_GROUPS = (*SERVICES, "kafka", "postgresql")


def proc_stat(pid):
    """(ppid, utime + stime in s: all its threads) of pid, or None when it is gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()   # after "pid (comm) ": state ppid ... utime stime
    return int(f[1]), (int(f[11]) + int(f[12])) / CLK_TCK


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def broker_pid():
    """The local stack's Kafka broker: run/kafka.pid of $CWPP_STATE_DIR (deploy/local/kafka.sh),
    else the one java process running kafka.Kafka (None when there is not exactly one)."""
    state = os.environ.get("CWPP_STATE_DIR")
    if state:
        try:
            pid = int(Path(state, "run", "kafka.pid").read_text().split()[0])
            if " kafka.Kafka " in cmdline(pid) + " ":
                return pid
        except (OSError, ValueError, IndexError):
            pass
    found = [p for p in all_pids() if " kafka.Kafka " in cmdline(p) + " "]
    if state and len(found) > 1:
        found = [p for p in found if state in cmdline(p)] or found
    return found[0] if len(found) == 1 else None


def postmaster_pid(admin_dsn):
    """The postmaster: the first line of postmaster.pid in the local stack's data dir
    ($CWPP_STATE_DIR/pg, deploy/local/pg.sh), else the parent of a backend of ours (the
    server runs on this machine). None when neither works."""
    state = os.environ.get("CWPP_STATE_DIR")
    if state:
        for f in (Path(state, "pg", "postmaster.pid"), Path(state, "run", "pg.pid")):
            try:
                pid = int(f.read_text().split()[0])
                if proc_stat(pid) is not None:
                    return pid
            except (OSError, ValueError, IndexError):
                pass
    if not admin_dsn:
        return None
    try:
        conn = psycopg2.connect(admin_dsn, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                st = proc_stat(cur.fetchone()[0])
        finally:
            conn.close()
        return st[0] if st else None
    except psycopg2.Error:
        return None


class CpuMeter:
    """CPU seconds (utime + stime) of the pipeline's processes between two samples.
    Groups: each service, "kafka" (the broker), "postgresql" (the postmaster, its own
    processes and the backends on the services' database) and, not counted in the total,
    "postgresql-other" (sessions on other databases of a shared server)."""

    def __init__(self, svcs, admin_dsn):
        self.svcs = svcs
        self.admin_dsn = admin_dsn
        self.dbname = psycopg2.extensions.parse_dsn(
            svcs["ingest"].env["CWPP_PG_DSN"]).get("dbname")
        self.kafka = broker_pid()
        self.postmaster = postmaster_pid(admin_dsn)
        self.notes = []
        if self.kafka is None:
            self.notes.append("Kafka broker not found (no run/kafka.pid under $CWPP_STATE_DIR, "
                              "no single kafka.Kafka process): its CPU is not counted")
        if self.postmaster is None:
            self.notes.append("PostgreSQL's postmaster not found: its CPU is not counted")
        self.db_of = {}             # backend pid -> database name (None: the server's own)
        self.start = None

    def _databases(self):
        if not self.admin_dsn:
            note = "no CWPP_PG_ADMIN_DSN: every PostgreSQL process counted"
            if note not in self.notes:
                self.notes.append(note)
            return
        try:
            conn = psycopg2.connect(self.admin_dsn, connect_timeout=5)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pid, datname FROM pg_stat_activity "
                                "WHERE pid <> pg_backend_pid()")
                    self.db_of.update(dict(cur.fetchall()))
            finally:
                conn.close()
        except psycopg2.Error as e:
            note = (f"pg_stat_activity not readable ({str(e).strip()}): every PostgreSQL "
                    "process counted")
            if note not in self.notes:
                self.notes.append(note)

    def sample(self):
        """{"t": time, "machine": (busy s, all s), "groups": {group: {pid: cpu s}}}."""
        groups = {g: {} for g in (*CPU_GROUPS, "postgresql-other")}
        for name, s in self.svcs.items():
            st = proc_stat(s.proc.pid)
            if st:
                groups[name][s.proc.pid] = st[1]
        if self.kafka:
            st = proc_stat(self.kafka)
            if st:
                groups["kafka"][self.kafka] = st[1]
        if self.postmaster:
            self._databases()
            for pid in all_pids():
                st = proc_stat(pid)
                if st is None or (pid != self.postmaster and st[0] != self.postmaster):
                    continue
                db = self.db_of.get(pid)
                g = "postgresql" if db in (None, self.dbname) else "postgresql-other"
                groups[g][pid] = st[1]
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
        machine = (busy / CLK_TCK, (busy + v[3] + v[4]) / CLK_TCK)
        own = os.times()
        return {"t": time.time(), "machine": machine, "groups": groups,
                "self": own.user + own.system}

    def begin(self):
        self.start = self.sample()

    def end(self, n):
        """The figures of the window since begin() for n alerts (a dict for the JSON)."""
        a, b = self.start, self.sample()
        cpu = {}
        for g, pids in b["groups"].items():
            # a process born during the window counts whole; one gone by its end is lost
            cpu[g] = sum(v - a["groups"][g].get(pid, 0.0) for pid, v in pids.items())
        total = sum(cpu[g] for g in CPU_GROUPS)
        window = b["t"] - a["t"]
        busy = b["machine"][0] - a["machine"][0]
        allcpu = b["machine"][1] - a["machine"][1]
        us = {g: round(cpu[g] / n * 1e6, 1) for g in CPU_GROUPS}
        return {"window_s": round(window, 2), "alerts": n,
                "cpu_s": {g: round(cpu[g], 2) for g in CPU_GROUPS},
                "us_per_alert": us, "total_us_per_alert": round(total / n * 1e6, 1),
                "total_cpu_s": round(total, 2),
                "alerts_per_core_s": round(n / total) if total > 0 else None,
                "cores_used": round(total / window, 2) if window > 0 else None,
                "postgresql_other_dbs_us_per_alert": round(cpu["postgresql-other"] / n * 1e6, 1),
                "bench_process_us_per_alert": round((b["self"] - a["self"]) / n * 1e6, 1),
                "machine_cores": os.cpu_count(),
                "machine_busy_cpu_s": round(busy, 2),
                "machine_busy_pct": round(100 * busy / allcpu, 1) if allcpu > 0 else None,
                "pids": {"kafka": self.kafka, "postmaster": self.postmaster,
                         **{s: self.svcs[s].proc.pid for s in SERVICES}},
                "notes": self.notes}


class StatementMeter:
    """Database time per statement over a phase, from pg_stat_statements (the local
    stack preloads it; the extension is created in the services' database). Only the
    statements of the services' database count; reset at begin."""

    def __init__(self, admin_dsn):
        self.dsn = admin_dsn
        self.ok = False
        self.note = None

    def begin(self):
        try:
            t.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public",
                    dsn=self.dsn)
            t.query("SELECT public.pg_stat_statements_reset()", dsn=self.dsn)
            self.ok = True
        except Exception as e:  # noqa: BLE001 - the table is optional; say why it is missing
            self.note = f"no statement table: {str(e).strip().splitlines()[0]}"

    def end(self, n, top=12):
        if not self.ok:
            return {"note": self.note}
        rows = t.query(
            "SELECT s.calls, s.total_exec_time, s.rows, s.query FROM public.pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database() "
            "ORDER BY s.total_exec_time DESC", dsn=self.dsn)
        total_ms = sum(r[1] for r in rows)
        out = []
        for calls, ms_, nrows, q in rows[:top]:
            q = re.sub(r"\s+", " ", q).strip()
            out.append({"us_per_alert": round(ms_ * 1000 / n, 1), "calls": calls,
                        "mean_ms": round(ms_ / max(calls, 1), 3), "rows": nrows,
                        "query": q[:110]})
        return {"total_us_per_alert": round(total_ms * 1000 / n, 1), "top": out}


def statement_lines(st):
    if not st or "top" not in st:
        return [f"statements   {st.get('note') if st else 'not measured'}"]
    out = [f"statements   database execution time per alert, phase A: {st['total_us_per_alert']} µs "
           "(pg_stat_statements; the top ones):"]
    for r in st["top"]:
        out.append(f"               {r['us_per_alert']:>7.1f} µs  {r['calls']:>6} calls "
                   f"{r['mean_ms']:>8.3f} ms  {r['query']}")
    return out


def cpu_lines(cpu):
    """The CPU table of phase A, as printed lines."""
    names = {"kafka": "kafka broker", "postgresql": "postgresql"}
    out = [f"cpu          µs of CPU per alert, phase A ({cpu['alerts']} alerts, "
           f"{cpu['window_s']} s window):"]
    for g in CPU_GROUPS:
        out.append(f"               {names.get(g, g):<18} {cpu['us_per_alert'][g]:>9.1f} µs"
                   f"   ({cpu['cpu_s'][g]} s)")
    out.append(f"               {'total':<18} {cpu['total_us_per_alert']:>9.1f} µs   "
               f"({cpu['total_cpu_s']} s, {cpu['cores_used']} cores busy) -> "
               f"{cpu['alerts_per_core_s']} alerts per core-second")
    out.append(f"             not counted: this bench's producer "
               f"{cpu['bench_process_us_per_alert']} µs/alert, other databases' sessions "
               f"{cpu['postgresql_other_dbs_us_per_alert']} µs/alert; the machine "
               f"({cpu['machine_cores']} cores) was {cpu['machine_busy_pct']} % busy in the "
               f"window ({cpu['machine_busy_cpu_s']} core-s)")
    for note in cpu["notes"]:
        out.append(f"             note: {note}")
    return out


# ---------------------------------------------------------------------- alerts

def iso_ms(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


ROLES = ["database", "application", "web", "application", "web", "bastion", "worker"]


def ip_of(run, n, base=(198, 18)):
    """A unique IPv4 address per n (198.18.0.0/15, the benchmarking range)."""
    return "%d.%d.%d.%d" % (base[0], base[1] + (n >> 16 & 1), n >> 8 & 255, n & 255)


def incident_alerts(rng, run, acct, inc, count, start_ms, step_ms, now_ms):
    """One incident: count alerts of one account on 1-3 own assets from one attacker IP,
    with its own malware hashes and processes. 5 % repeat an earlier alert exactly; logons
    from the incident's IP and IDS detections of its IP recur by the dedup rules, so about
    30 % of all are recurrences."""
    assets = [{"id": f"i-{run}-{inc:06d}-{j}", "name": f"host-{inc}-{j}",
               "ip": "10.%d.%d.%d" % (inc >> 8 & 255, inc & 255, 10 + j),
               "role": rng.choice(ROLES)} for j in range(rng.choice((1, 1, 2, 3)))]
    ip = ip_of(run, inc)
    scenario = inc % 3
    hashes = [md5(f"{run}-{inc}-{k}") for k in range(2)]
    out = []
    for k in range(count):
        occ = min(start_ms + k * step_ms + rng.randrange(1000), now_ms - 1000)
        if out and rng.random() < 0.05:
            prev = dict(rng.choice(out))       # a recurrence: the same alert again, later
            prev["occurred_at"] = iso_ms(occ)
            prev["details"] = dict(prev["details"], seq=prev["details"]["seq"] + 1_000_000_000)
            out.append(prev)
            continue
        asset = assets[k % len(assets)]
        base = {"account_id": acct, "asset": asset, "occurred_at": iso_ms(occ),
                "defense": rng.choice(("failed", "none", "blocked", "failed", "none")),
                "details": {"incident": inc, "seq": len(out)}}
        if rng.random() < 0.02:
            base["defense"] = "precision_defense"
        kind = (scenario, k % 3)
        if kind[1] == 0 and scenario == 0 or kind == (2, 0):
            path = (f"/var/tmp/.cache/x{k}" if scenario == 0 else f"/var/www/html/up/s{k}.php")
            a = {"name": "Trojan program" if scenario == 0 else "Web shell uploaded",
                 "type": "virus" if scenario == 0 else "webshell", "severity": "high",
                 "source": "virus_scan" if scenario == 0 else "webshell_scan",
                 "attack": {"tactic": "TA0002" if scenario == 0 else "TA0003",
                            "technique": "T1204" if scenario == 0 else "T1505.003"},
                 "file": {"path": path, "md5": hashes[k % 2]}}
            a["details"] = {"scan_engine": "cwpp-av 3.2", "file_size": 40000 + k}
        elif kind[1] == 1:
            exe = f"/var/tmp/.cache/x{k % 4}"
            a = {"name": "Malicious process", "type": "malicious_process",
                 "severity": rng.choice(("critical", "high")), "source": "process_monitor",
                 "attack": {"tactic": "TA0002", "technique": "T1059.004"},
                 "process": {"pid": 1000 + (inc * 7 + k) % 30000, "path": exe,
                             "cmdline": f"{exe} --daemon --pool stratum+tcp://{ip}:3333 -t {k}",
                             "user": "www-data" if scenario == 2 else "root"},
                 "remote_ip": ip}
        elif scenario == 1 and kind[1] == 0:
            a = {"name": "SSH brute force", "type": "brute_force", "severity": "high",
                 "source": "logon_monitor", "attack": {"tactic": "TA0006", "technique": "T1110"},
                 "remote_ip": ip, "logon": {"ip": ip, "user": ("root", "admin", "oracle")[k % 3]}}
            a["details"] = {"failed_attempts": 50 + k}
        elif scenario == 1:
            a = {"name": "Abnormal logon", "type": "abnormal_logon", "severity": "medium",
                 "source": "logon_monitor", "attack": {"tactic": "TA0001", "technique": "T1078"},
                 "logon": {"ip": ip, "user": ("root", "admin", "oracle")[k % 3]}}
            a["details"] = {"geo": "unknown", "usual_locations": ["10.0.0.0/8"]}
        else:
            a = {"name": ("Port scan from external IP", "SQL injection attempt",
                          "Outbound connection to mining pool")[k // 3 % 3],
                 "type": "network_attack", "severity": rng.choice(("low", "medium")),
                 "source": "network_ids", "attack": {"tactic": "TA0043", "technique": "T1595"},
                 "remote_ip": ip}
            a["details"] = {"ports_probed": 100 + k}
        details = base.pop("details")
        a.update(base)
        a["details"] = dict(details, **a.get("details", {}))
        a["alert_id"] = f"det-{run}-{inc}-{k}"
        out.append(a)
    return out


def throughput_records(n, run, seed=1):
    """n raw alerts (bytes), in occurrence order, and how many incidents they form.
    Accounts are bench-<run>a-acct-NN: phase A's own (correlation never crosses accounts,
    so phase B's alerts cannot join phase A's events through a shared IP or hash)."""
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    alerts, inc = [], 0
    while len(alerts) < n:
        count = min(rng.randint(5, 35), n - len(alerts))
        acct = f"bench-{run}a-acct-{inc % 24:02d}"
        start = now_ms - rng.randrange(6 * 3600 * 1000) - 600_000
        alerts += incident_alerts(rng, run, acct, inc, count, start,
                                  rng.randint(10, 120) * 1000, now_ms)
        inc += 1
    alerts.sort(key=lambda a: a["occurred_at"])
    for i, a in enumerate(alerts):
        a["details"]["bench_seq"] = i
    return [json.dumps(a, separators=(",", ":")).encode() for a in alerts], inc


def latency_templates(n, run, per_incident=5, tag="b", shift_ms=0):
    """n alerts of n/per_incident incidents: alert i belongs to incident i % m and has
    occurrence time base + i ms (unique; increasing within an incident). The accounts,
    assets and hashes carry run and tag (one tag per phase B rate, so that one rate's
    alerts never join another's events). Returns
    [(account, head, tail)] (the record is head + send time in ns + tail), base_ms and
    the incident count."""
    m = max(1, n // per_incident)
    base_ms = (int(time.time() * 1000) - 1800_000) // 1000 * 1000 + shift_ms
    out = []
    for i in range(n):
        inc, k = i % m, i // m
        acct = f"bench-{run}{tag}-acct-{inc % 24:02d}"  # this phase B's own accounts
        ip = ip_of(run, inc)
        asset = {"id": f"i-{run}{tag}-l{inc:06d}", "name": f"lat-{inc}",
                 "ip": "10.%d.%d.%d" % (inc >> 16 & 255, inc >> 8 & 255, inc & 255),
                 "role": ROLES[inc % len(ROLES)]}
        a = {"account_id": acct, "asset": asset, "occurred_at": iso_ms(base_ms + i),
             "severity": "high", "defense": "failed", "remote_ip": ip}
        if k % 3 == 0:
            a.update({"name": "Trojan program", "type": "virus", "source": "virus_scan",
                      "attack": {"tactic": "TA0002", "technique": "T1204"},
                      "file": {"path": f"/var/tmp/.cache/l{i}", "md5": md5(f"{run}{tag}-l{inc}")}})
        elif k % 3 == 1:
            exe = f"/var/tmp/.cache/l{inc}"
            a.update({"name": "Malicious process", "type": "malicious_process",
                      "source": "process_monitor",
                      "attack": {"tactic": "TA0002", "technique": "T1059.004"},
                      "process": {"pid": 2000 + i % 30000, "path": exe,
                                  "cmdline": f"{exe} --pool stratum+tcp://{ip}:3333 -n {i}",
                                  "user": "root"}})
        else:
            a.update({"name": "Web shell uploaded", "type": "webshell", "source": "webshell_scan",
                      "attack": {"tactic": "TA0003", "technique": "T1505.003"},
                      "file": {"path": f"/var/www/html/up/l{i}.php", "md5": md5(f"{run}{tag}-w{inc}")}})
        a["details"] = {"bench_seq": i, "bench_sent_ns": 0}
        text = json.dumps(a, separators=(",", ":"))
        head, tail = text.split('"bench_sent_ns":0', 1)
        out.append((acct.encode(), (head + '"bench_sent_ns":').encode(), tail.encode()))
    return out, base_ms, m


# ---------------------------------------------------------------------- phases

def produce_fast(topic, values, keys=None):
    """Produces values as fast as the client goes; returns (first, last) produce time."""
    p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 5, "batch.size": 1000000,
                  "queue.buffering.max.messages": 1000000, "compression.type": "none"})
    t_first = time.time()
    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, value=v, key=keys[i] if keys else None)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    t_last = time.time()
    if p.flush(60) != 0:
        raise BenchError(f"producing to {topic}: records not delivered within 60 s")
    return t_first, t_last, time.time()


def phase_throughput(procs, n, run, tmp, relay_ok):
    print(f"== phase A: {n} alerts through ingest -> whitelist-filter -> correlator", flush=True)
    raw, incidents = throughput_records(n, run)
    size = sum(map(len, raw)) / len(raw)
    prefix = f"bench{run}a."
    svcs = start_pipeline(procs, prefix, tmp)
    meter = CpuMeter(svcs, os.environ.get("CWPP_PG_ADMIN_DSN", ""))
    stmts = StatementMeter(os.environ.get("CWPP_PG_ADMIN_DSN", ""))
    stmts.begin()
    meter.begin()
    t_first, t_last, t_acked = produce_fast(prefix + "alerts.raw", raw)
    print(f"  produced {n} alerts ({size:.0f} B avg, {incidents} incidents) in "
          f"{t_acked - t_first:.2f} s ({n / max(t_acked - t_first, 1e-9):.0f}/s)", flush=True)
    t_done = wait_done(svcs, prefix, timeout=max(300, n // 500), what="phase A")
    cpu = meter.end(n)
    statements = stmts.end(n)
    m_corr = metrics(svcs["correlator"])
    m_filt = metrics(svcs["whitelist-filter"])
    m_ing = metrics(svcs["ingest"])
    rss = rss_mib(svcs)
    procs.stop_services(list(svcs.values()))

    stage_end = {}
    for stage, topic in (("ingest", "alerts.normalized"), ("whitelist-filter", "alerts.accepted"),
                         ("correlator", "events")):
        b = ts_bounds(prefix + topic)
        stage_end[stage] = b[1] / 1000.0 if b else None
    end = stage_end["correlator"] or t_done
    span = end - t_first
    c = new_consumer("wm")
    try:
        counts = {tp: sum(hi - lo for lo, hi in watermarks(c, prefix + tp).values())
                  for tp in ("alerts.normalized", "alerts.rejected", "alerts.accepted",
                             "alerts.suppressed", "events", "notifications")}
    finally:
        c.close()
    res = {"records": n, "avg_record_bytes": round(size), "incidents": incidents,
           "produce_s": round(t_acked - t_first, 2),
           "produce_per_s": round(n / max(t_acked - t_first, 1e-9)),
           "span_s": round(span, 2), "alerts_per_s": round(n / span) if span > 0 else None,
           "committed_span_s": round(t_done - t_first, 2),
           "committed_alerts_per_s": round(n / (t_done - t_first)),
           "stage_done_s": {k: (round(v - t_first, 2) if v else None) for k, v in stage_end.items()},
           "stage_rate_per_s": {k: (round(n / (v - t_first)) if v and v > t_first else None)
                                for k, v in stage_end.items()},
           "topic_records": counts, "statements": statements,
           "correlator_alerts_total": m_corr.get("cwpp_correlator_alerts_total"),
           "correlator_events_opened_total": m_corr.get("cwpp_correlator_events_opened_total"),
           "correlator_recurrences_total": m_corr.get("cwpp_correlator_recurrences_total"),
           "correlator_snapshots_total": m_corr.get("cwpp_correlator_snapshots_total"),
           "correlator_notifications_total": m_corr.get("cwpp_correlator_notifications_total"),
           "correlator_dead_letters_total": m_corr.get("cwpp_correlator_dead_letters_total"),
           "correlator_db_errors_total": m_corr.get("cwpp_correlator_db_errors_total"),
           "whitelist_db_errors_total": m_filt.get("cwpp_whitelist_db_errors_total"),
           "ingest_db_errors_total": m_ing.get("cwpp_ingest_db_errors_total"),
           "peak_rss_mib": rss, "cpu": cpu}
    opened = res["correlator_events_opened_total"]
    alerts = res["correlator_alerts_total"]
    if opened and alerts:
        res["alerts_per_event"] = round(alerts / opened, 1)
    if res["produce_s"] > 0.5 * span:
        print("  note: producing took more than half the span: the figure is bounded by the "
              "producer", flush=True)

    if relay_ok:
        create_relay_topic(prefix + "relay.out")
        relay = procs.popen([RELAY, t.BROKERS, prefix + "relay", prefix + "alerts.raw",
                             prefix + "relay.out", n], env=t.admin_env(), stdout=subprocess.PIPE, text=True)
        try:
            out, _ = relay.communicate(timeout=max(300, n // 1000))
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
            raise BenchError("the relay did not copy the records within its time limit")
        b = ts_bounds(prefix + "relay.out")
        if relay.returncode == 0 and b and b[1] > b[0]:
            res["relay_alerts_per_s"] = round(n / ((b[1] - b[0]) / 1000.0))
            res["relay_report"] = out.strip()
            if res["alerts_per_s"]:
                res["ratio_to_relay"] = round(res["alerts_per_s"] / res["relay_alerts_per_s"], 3)
        else:
            print(f"  relay failed (exit {relay.returncode}): no relay figure", flush=True)
    return res


def credit(snaps, base_ms, sent_ms, m):
    """Latency per alert from the event snapshots [(timestamp ms, last_seen_ms,
    alert_count)]. Alert i (incident i % m, its k = i // m-th alert) occurred at base_ms + i;
    the first snapshot whose last_seen_ms is its own or a later alert's of the same
    incident shows it (several alerts of one event in one batch share a snapshot).
    Returns ([latency ms or None per alert], inconsistent snapshots, unmatched ones)."""
    n = len(sent_ms)
    nxt = [0] * m                      # per incident: its next alert (index k) not yet seen
    lat = [None] * n
    inconsistent = unknown = 0
    for ts, last, count in sorted(snaps):
        i = last - base_ms
        if not 0 <= i < n:
            unknown += 1
            continue
        inc, k = i % m, i // m
        if count != k + 1:
            inconsistent += 1
        while nxt[inc] <= k:
            j = nxt[inc] * m + inc
            lat[j] = ts - sent_ms[j]
            nxt[inc] += 1
    return lat, inconsistent, unknown


def alert_occurred_ms(av, msg):
    """occurred_at_ms of an Alert record (Avro single-object encoding): the fields before
    it are skipped, the rest is not read (a full decode costs ~20 times more)."""
    assert msg[:2] == b"\xc3\x01", "no single-object marker"
    assert msg[2:10] == av.fingerprint.to_bytes(8, "little"), "not an Alert of this schema"
    dec = avro.io.BinaryDecoder(io.BytesIO(msg[10:]))
    for f in av.schema.fields:
        if f.name == "occurred_at_ms":
            occ = av.reader.read_data(f.type, f.type, dec)
            break
        av.reader.skip_data(f.type, dec)
    else:
        raise AssertionError("no occurred_at_ms in the Alert schema")
    return occ


def hop_times(topic, av, base_ms, n):
    """CreateTime (ms) of the first record of topic per phase B alert (None: not seen) and
    (records not decodable, records of no alert of the phase, records whose timestamp is
    not a CreateTime)."""
    ts = [None] * n
    bad = unknown = not_create = 0
    for msg in read_all(topic):
        try:
            occ = alert_occurred_ms(av, msg.value())
            i = occ - base_ms
            if not 0 <= i < n:     # replaced by ingest's clock? then the producer's is kept
                orig = av.decode(msg.value()).get("original_occurred_at_ms")
                i = orig - base_ms if orig is not None else -1
        except Exception:  # noqa: BLE001 - counted and reported
            bad += 1
            continue
        if not 0 <= i < n:
            unknown += 1
            continue
        kind, when = msg.timestamp()
        if kind != TIMESTAMP_CREATE_TIME:
            not_create += 1
        if ts[i] is None or when < ts[i]:
            ts[i] = when
    return ts, (bad, unknown, not_create)


def hop_split(prefix, base_ms, sent_ms, lat):
    """Splits each alert's latency in its three hops: ingest (sent -> its record on
    alerts.normalized), whitelist-filter (-> alerts.accepted) and correlator (-> the first
    event snapshot showing it), by the records' CreateTime. p50/p99 per hop over the
    alerts seen at all three."""
    n = len(sent_ms)
    av = t.AvroType("alert")
    norm, (bad_n, unk_n, nct_n) = hop_times(prefix + "alerts.normalized", av, base_ms, n)
    acc, (bad_a, unk_a, nct_a) = hop_times(prefix + "alerts.accepted", av, base_ms, n)
    both = [i for i in range(n)
            if norm[i] is not None and acc[i] is not None and lat[i] is not None]
    hops = {"ingest": [norm[i] - sent_ms[i] for i in both],
            "whitelist-filter": [acc[i] - norm[i] for i in both],
            "correlator": [sent_ms[i] + lat[i] - acc[i] for i in both]}
    res = {"matched": len(both),
           "normalized_seen": sum(x is not None for x in norm),
           "accepted_seen": sum(x is not None for x in acc),
           "undecodable_records": bad_n + bad_a, "unmatched_records": unk_n + unk_a,
           "non_create_time_records": nct_n + nct_a}
    for hop, v in hops.items():
        res[hop] = ({"p50_ms": round(pct(v, 50), 1), "p90_ms": round(pct(v, 90), 1),
                     "p99_ms": round(pct(v, 99), 1), "max_ms": round(max(v), 1)}
                    if v else None)
    return res


def ms(x):
    """A latency for the eye: 3.1, 12, 1400."""
    return "-" if x is None else (f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}")


def hops_line(h):
    if not h or not h["matched"]:
        return "             hops: no alert seen on all of normalized, accepted and events"
    parts = [f"{hop} {ms(h[hop]['p50_ms'])}/{ms(h[hop]['p99_ms'])} ms"
             for hop in ("ingest", "whitelist-filter", "correlator")]
    return f"             hops p50/p99: {', '.join(parts)} ({h['matched']} alerts matched)"


def by_second_line(lat):
    v = lat.get("p99_ms_by_second") or []
    w = lat.get("warmup") or {}
    return ("             p99 per second sent (ms): " + " ".join(str(x) for x in v) +
            (f"; start-up (the {w['seconds']} s warm-up before, not counted): p50 "
             f"{w['p50_ms']} ms p99 {w['p99_ms']} ms" if w.get("samples") else ""))


def latency_line(lat):
    return (f"latency      @{lat['rate_per_s']}/s for {lat['seconds']} s (achieved "
            f"{lat['achieved_rate_per_s']}/s): produce -> first event snapshot showing the alert "
            f"p50 {lat['p50_ms']} ms  p99 {lat['p99_ms']} ms  max {lat['max_ms']} ms "
            f"({lat['samples']} samples, {lat['missing']} missing, "
            f"{lat['inconsistent_snapshots']} inconsistent snapshots)")


def send_at_rate(p, topic, tpl, rate):
    """Produces the templates at rate/s, each stamped with its send time; returns
    ([send time ms per record], seconds taken, worst lag behind the schedule in s)."""
    sent_ms = [0.0] * len(tpl)
    t0 = time.time()
    behind_max = 0.0
    for i, (key, head, tail) in enumerate(tpl):
        target = t0 + i / rate
        delay = target - time.time()
        if delay > 0:
            time.sleep(delay)
        else:
            behind_max = max(behind_max, -delay)
        ns = time.time_ns()
        v = head + b"%d" % ns + tail
        while True:
            try:
                p.produce(topic, value=v, key=key)
                break
            except BufferError:
                p.poll(0.01)
        sent_ms[i] = ns / 1e6
        p.poll(0)
    send_s = time.time() - t0
    if p.flush(60) != 0:
        raise BenchError("phase B: records not delivered within 60 s")
    return sent_ms, send_s, behind_max


def phase_latency(procs, rate, seconds, run, tmp, index=0, warmup_s=3):
    """Phase B at one rate; index (the rate's place in --rates) names its topic prefix
    bench<run>b<index>. and its accounts, so that each rate starts afresh."""
    n = rate * seconds
    print(f"== phase B: {rate} alerts/s for {seconds} s ({n} alerts)", flush=True)
    tpl, base_ms, m = latency_templates(n, run, tag=f"b{index}")
    prefix = f"bench{run}b{index}."
    svcs = start_pipeline(procs, prefix, tmp)
    p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 1, "enable.idempotence": True})
    topic = prefix + "alerts.raw"
    # Warm-up: the services just started (connections, prepared statements, the first
    # fetches and the producers' first metadata); a desk's pipeline runs for months, so
    # the measurement is of the steady state. The warm-up's own incidents (other
    # accounts, occurrence times an hour earlier) are sent at the same rate, waited out,
    # and their p99 is reported apart as the start-up figure.
    warm = rate * warmup_s
    wtpl, wbase, wm = latency_templates(warm, run, tag=f"w{index}", shift_ms=-3600_000)
    wsent, _, _ = send_at_rate(p, topic, wtpl, rate)
    wait_done(svcs, prefix, timeout=300, what="phase B warm-up")
    sent_ms, send_s, behind_max = send_at_rate(p, topic, tpl, rate)
    wait_done(svcs, prefix, timeout=300, what="phase B")
    m_corr = metrics(svcs["correlator"])
    rss = rss_mib(svcs)
    procs.stop_services(list(svcs.values()))

    ev = t.AvroType("event")
    snaps = []
    bad = 0
    for msg in read_all(prefix + "events"):
        try:
            d = ev.decode(msg.value())
        except Exception:  # noqa: BLE001 - counted and reported
            bad += 1
            continue
        snaps.append((msg.timestamp()[1], d["last_seen_ms"], d["alert_count"]))
    wsnaps = [x for x in snaps if x[1] < base_ms]
    snaps = [x for x in snaps if x[1] >= base_ms]
    wlat, _, _ = credit(wsnaps, wbase, wsent, wm)
    wgot = [x for x in wlat if x is not None]
    lat, inconsistent, unknown = credit(snaps, base_ms, sent_ms, m)
    got = [x for x in lat if x is not None]
    if not got:
        raise BenchError("phase B: no event snapshot matched an alert (see the logs in "
                         f"{tmp})")
    res = {"rate_per_s": rate, "seconds": seconds, "alerts": n, "incidents": m,
           "achieved_rate_per_s": round(n / send_s), "sender_max_behind_ms": round(behind_max * 1000, 1),
           "samples": len(got), "missing": n - len(got),
           "p50_ms": round(pct(got, 50), 1), "p90_ms": round(pct(got, 90), 1),
           "p99_ms": round(pct(got, 99), 1), "max_ms": round(max(got), 1),
           "snapshots": len(snaps), "undecodable_snapshots": bad,
           "inconsistent_snapshots": inconsistent, "unmatched_snapshots": unknown,
           "correlator_alerts_total": m_corr.get("cwpp_correlator_alerts_total"),
           "correlator_events_opened_total": m_corr.get("cwpp_correlator_events_opened_total"),
           "peak_rss_mib": rss, "prefix": prefix,
           "warmup": {"seconds": warmup_s, "alerts": warm, "samples": len(wgot),
                      "p50_ms": round(pct(wgot, 50), 1) if wgot else None,
                      "p99_ms": round(pct(wgot, 99), 1) if wgot else None}}
    res["hops"] = hop_split(prefix, base_ms, sent_ms, lat)
    # When the slow alerts were sent: p99 per second of the phase (a tail from start-up,
    # a checkpoint or a lock wait shows as one bad second, a capacity limit as a climb).
    per_s = {}
    for i, x in enumerate(lat):
        if x is not None:
            per_s.setdefault(i // rate, []).append(x)
    res["p99_ms_by_second"] = [round(pct(per_s[k], 99)) for k in sorted(per_s)]
    return res


# ------------------------------------------------------------------------ main

def use_fresh_database(db):
    """Creates database db on the stack's server, migrates it with deploy/migrate and
    points the services' DSNs (and the bench's superuser DSN) at it."""
    admin = os.environ["CWPP_PG_ADMIN_DSN"]
    t.query(f'CREATE DATABASE "{db}"', dsn=t.with_dbname(admin, "postgres"))
    env = dict(os.environ, CWPP_PG_ADMIN_DSN=t.with_dbname(admin, db))
    p = subprocess.run([str(HERE.parent / "deploy" / "migrate")], env=env, capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise BenchError(f"deploy/migrate on {db} failed:\n{p.stdout}{p.stderr}")
    for env_name in ["CWPP_PG_ADMIN_DSN", *DSN_ENV.values()]:
        os.environ[env_name] = t.with_dbname(os.environ[env_name], db)
    t.ADMIN_DSN = os.environ["CWPP_PG_ADMIN_DSN"]


def drop_database(db):
    try:
        t.query(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)',
                dsn=t.with_dbname(os.environ["CWPP_PG_ADMIN_DSN"], "postgres"))
    except Exception as e:  # noqa: BLE001 - the figures stand; say what is left behind
        print(f"pipeline: could not drop database {db}: {e}", file=sys.stderr)


def parse_rates(text):
    try:
        rates = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        rates = []
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError(f"not a list of positive alerts/s: {text!r}")
    return rates


def num(x):
    """A counter from /metrics (a float) as printed: 20000, or - when absent."""
    return "-" if x is None else f"{x:.0f}"


def summary(res):
    """The final block: every figure a performance review needs, one place."""
    lines = [f"== CWPP pipeline (ingest -> whitelist-filter -> correlator), {PARTITIONS} "
             "partitions, local broker and PostgreSQL, one instance each"]
    tp = res.get("throughput")
    if tp:
        st, sr = tp["stage_done_s"], tp["stage_rate_per_s"]
        lines.append(f"throughput   {tp['alerts_per_s']} alerts/s end to end ({tp['records']} "
                     f"alerts in {tp['span_s']} s; offsets committed after "
                     f"{tp['committed_span_s']} s)")
        if "relay_alerts_per_s" in tp:
            lines.append(f"             raw relay {tp['relay_alerts_per_s']} alerts/s   "
                         f"pipeline/relay {tp.get('ratio_to_relay')}")
        else:
            lines.append("             raw relay: not measured")
        lines.append("             per stage (done after, rate from the first produce): " +
                     ", ".join(f"{s} {st[s]} s {sr[s]}/s" for s in SERVICES) +
                     f"; producer {tp['produce_per_s']}/s")
        lines.append(f"             correlator: {num(tp['correlator_alerts_total'])} alerts, "
                     f"{num(tp['correlator_events_opened_total'])} events opened "
                     f"({tp.get('alerts_per_event')} alerts/event), "
                     f"{num(tp['correlator_recurrences_total'])} recurrences, "
                     f"{num(tp['correlator_snapshots_total'])} snapshots, "
                     f"{num(tp['correlator_notifications_total'])} notifications; accepted "
                     f"{tp['topic_records']['alerts.accepted']}, suppressed "
                     f"{tp['topic_records']['alerts.suppressed']}, rejected "
                     f"{tp['topic_records']['alerts.rejected']}")
        if tp.get("cpu"):
            lines += cpu_lines(tp["cpu"])
        lines += statement_lines(tp.get("statements"))
    for lat in res.get("latency", []):
        lines.append(latency_line(lat))
        lines.append(hops_line(lat.get("hops")))
        lines.append(by_second_line(lat))
    peak = res.get("peak_rss_mib")
    if peak:
        lines.append("peak RSS     " + ", ".join(f"{s} {peak[s]} MiB" for s in SERVICES) +
                     " (VmHWM, highest over the phases)")
        for s in SERVICES:
            if (peak[s] or 0) > RSS_LIMIT_MIB:
                lines.append(f"warning: {s} peak RSS {peak[s]} MiB is over {RSS_LIMIT_MIB} MiB")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="phase A alerts (200000)")
    ap.add_argument("--rates", type=parse_rates, default=[1000, 5000],
                    help="phase B alerts per second, comma-separated: one phase B per rate "
                    "(1000,5000)")
    ap.add_argument("--rate", type=int, help="one phase B rate (the same as --rates N)")
    ap.add_argument("--seconds", type=int, default=20, help="phase B duration per rate (20)")
    ap.add_argument("--no-relay", action="store_true", help="skip the relay figure")
    ap.add_argument("--skip-throughput", action="store_true", help="phase B only")
    ap.add_argument("--skip-latency", action="store_true", help="phase A only")
    ap.add_argument("--pidfile", help="append 'pid exe' of every process started")
    ap.add_argument("--database", choices=("fresh", "current"), default="fresh",
                    help="fresh (default): a new database migrated for this run and dropped "
                    "after it, so runs compare (the stored history grows with every run "
                    "and slows the next; bench/run-history measures that on purpose); "
                    "current: the database of the environment's DSNs")
    a = ap.parse_args()
    if a.rate is not None:
        a.rates = [a.rate]
    if a.records < 1 or min(a.rates) < 1 or a.seconds < 1:
        ap.error("--records, --rate(s) and --seconds must be positive")

    signal.signal(signal.SIGTERM, on_sigterm)
    procs = Procs(a.pidfile)
    run = uuid.uuid4().hex[:6]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"cwpp-bench-pipeline-{run}"
    tmp.mkdir(parents=True, exist_ok=True)
    res = {"run": run, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "partitions": PARTITIONS,
           "brokers": t.BROKERS, "logs": str(tmp)}
    fresh = None
    try:
        if a.database == "fresh":
            fresh = f"cwpp_bench_{run}"
            use_fresh_database(fresh)
            res["database"] = fresh
        relay_ok = preflight(not a.no_relay and not a.skip_throughput)
        res["live_whitelist_rules"] = t.query(
            "SELECT count(*) FROM whitelist_rules WHERE deleted_at IS NULL")[0][0]
        print(f"pipeline bench run {run} (service logs in {tmp})", flush=True)
        if not a.skip_throughput:
            res["throughput"] = phase_throughput(procs, a.records, run, tmp, relay_ok)
            print("  " + json.dumps(res["throughput"]), flush=True)
            for line in cpu_lines(res["throughput"]["cpu"]):
                print("  " + line, flush=True)
        if not a.skip_latency:
            res["latency"] = []
            for index, rate in enumerate(a.rates):
                lat = phase_latency(procs, rate, a.seconds, run, tmp, index)
                res["latency"].append(lat)
                print("  " + json.dumps(lat), flush=True)
                print("  " + latency_line(lat), flush=True)
                print("  " + hops_line(lat["hops"]), flush=True)
    except BenchError as e:
        print(f"pipeline: {e}", file=sys.stderr)
        return 1
    finally:
        procs.cleanup()
        if fresh:
            drop_database(fresh)

    peaks = [p["peak_rss_mib"] for p in [res.get("throughput")] + res.get("latency", []) if p]
    if peaks:
        res["peak_rss_mib"] = {n: max((p.get(n) or 0) for p in peaks) for n in SERVICES}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"pipeline-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(res, indent=2))
    with open(out / "pipeline.jsonl", "a") as f:
        f.write(json.dumps(res, separators=(",", ":")) + "\n")
    print(json.dumps(res))
    print()
    print("\n".join(summary(res)), flush=True)
    rc = 0
    for lat in res.get("latency", []):
        if lat["inconsistent_snapshots"]:
            print(f"warning: @{lat['rate_per_s']}/s some event snapshots showed an alert count "
                  "other than the alerts sent so far: alerts did not reach the correlator in "
                  "their order, or joined another event; those latencies may be off",
                  file=sys.stderr)
        if lat["missing"]:
            print(f"error: @{lat['rate_per_s']}/s {lat['missing']} alerts never showed in an "
                  "event snapshot", file=sys.stderr)
            rc = 3
    return rc


if __name__ == "__main__":
    sys.exit(main())
