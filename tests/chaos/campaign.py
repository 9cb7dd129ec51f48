#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/chaos/campaign.py: the fault campaign. Run it through tests/chaos/run, which puts
it on the chaos stack's own state dir and ports (tests/chaos/env) and starts that stack;
it refuses the normal stack's ports.

One run: a fresh database (cwpp_chaos_<run>, migrated by deploy/migrate) and a fresh topic
prefix (chaos<run>.), every service once (ingest, whitelist-filter, correlator, responder,
exporter) from $CWPP_BIN_DIR, a whitelist rule made through the command topic, then a
steady stream of upstream alerts at a fixed rate while the faults run one after the other:

  kill-<svc>    kill -9 of each service in turn, restarted after a few seconds
  broker        the Kafka broker stopped and started again (deploy/local/kafka.sh)
  pg-restart    PostgreSQL stopped and started again (deploy/local/pg.sh)
  pg-crash      PostgreSQL shut down immediately (deploy/local/pg.sh crash: no
                checkpoint, sessions cut mid-transaction), started again, recovering
                from its WAL; the services wait it out and resume from what was committed
  pg-long       PostgreSQL stopped for longer than the consumers' max.poll.interval.ms
                (--long: 6 min against librdkafka's default 300 s; --short: 40 s against
                consumer.max.poll.interval.ms=20000 given to every service)
  partition     the correlator runs in a network namespace; an nftables rule DROPS its
                PostgreSQL packets (half-open connections), then is removed
  disk-full     the exporter's export.tmp.dir is a small tmpfs, filled up while an export
                is requested through the command topic, then freed
  rebalance     a second whitelist-filter and correlator join their groups, then leave
  agent-disk-full   the enforcer agent's state directory (a small tmpfs) filled up while
                it receives actions, /readyz must say not ready, then freed
  agent-clock-skew  actions stamped 10 minutes ahead of and behind the agent's clock
                (refused, the reason naming the clock) and within
                enforcer.clock.skew.max.ms (applied)

With an agent fault selected, one cwpp-enforcer agent runs for the first account (asset
h-<run>-agent), its journal on that tmpfs, its only effect on the host a WAF deny file and
a reload script of the run's log directory; a trickle of waf_block_ip actions (one new
address each) is sent to it on <prefix>actions from the stream's start to its end. Each
action belongs to the window it was sent in; at the end every one must have exactly one
ActionResult (lost: none, duplicated: more than one, or applied twice: two journal lines,
an "already blocked" answer for an address sent once, more reloads than applications).

The stream: several accounts, each with incidents (own assets, attacker IP, file hashes,
processes) whose alerts recur (occurrence counts matter), a few alerts whitelisted by the
rule, a few records that must be dead-lettered, and short-lived "handled" accounts whose
events are set to handled through the responder once all their alerts are in events (so
the exporter publishes them on events.handled during the faults). A fault's window holds
the records produced from the previous fault's recovery to its own (so records in flight
when it starts are its); incidents never cross windows, so each alert id, and each loss or
duplicate, belongs to one fault.

The partitioned service reaches the host's broker and PostgreSQL, which listen on
127.0.0.1 only, through nftables: inside the namespace 127.0.0.1:<kafka port> (what the
broker advertises) is DNATed to the host end of the veth pair and masqueraded; on the
host, what arrives there for the broker or PostgreSQL port is DNATed to 127.0.0.1
(route_localnet on the veth) and SNATed to 127.0.0.1, so pg_hba's 127.0.0.1/32 lets the
service role in. The deploy scripts stay as they are.

After each fault it waits for every service's /readyz and records the time from the
fault's end. At the end it stops producing, waits until every consumer group has
committed its whole input (lag zero) and reconciles exactly, per window: each produced
alert (by alert_id as ingest derives it, docs/alert-format.md "The same alert") is
either automatically whitelisted with its full occurrence count, or in exactly one event
whose event_alerts.occurrences equals the occurrences produced (and alerts.occurrences
too); each bad record is on alerts.rejected; every dead letter has a reason_code; no
(event, seq) is published twice on events.handled and every handled event is published;
the rule's hit count is the number of whitelisted records. It prints the table
fault | duration | time to ready | lost | duplicated and exits 1 when anything is lost or
duplicated, a check fails or a service was not ready within 60 s of a fault's end."""
import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import cwpp_testlib as t  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

import psycopg2  # noqa: E402

PARTITIONS = 6
READY_BOUND_S = 60
# name: (DSN variable, input topics)
SERVICES = {
    "ingest": ("CWPP_PG_DSN", ["alerts.raw"]),
    "whitelist-filter": ("CWPP_PG_DSN_WHITELIST", ["alerts.normalized", "commands"]),
    "correlator": ("CWPP_PG_DSN_CORRELATOR", ["alerts.accepted"]),
    "responder": ("CWPP_PG_DSN_RESPONDER", ["commands", "action-results"]),
    "exporter": ("CWPP_PG_DSN_EXPORTER", ["commands"]),
}
ALL_FAULTS = ["kill", "broker", "pg-restart", "pg-crash", "pg-long", "partition", "disk-full",
              "rebalance", "agent-disk-full", "agent-clock-skew"]
AGENT_FAULTS = ("agent-disk-full", "agent-clock-skew")
ACTION = t.AvroType("action")
ACTION_RESULT = t.AvroType("action_result")
SKEW_BEYOND_MS = 600000     # 10 minutes: far past the default 30 s tolerance
SKEW_WITHIN_MS = 10000      # within it
COMMAND = t.AvroType("command")
RESULT = t.AvroType("command_result")
REJECTED = t.AvroType("rejected_record")
HANDLED = t.AvroType("handled_event")
# Named after the stack's PostgreSQL port, so campaigns on two chaos stacks (the short one
# of tests/run beside a long one on other ports) never share a namespace, link or table.
_NET_ID = int(os.environ.get("CWPP_PG_PORT", "55329") or 55329)
NETNS = f"cwppchaos{_NET_ID}"
VETH_HOST, VETH_NS = f"cwc{_NET_ID}h", f"cwc{_NET_ID}n"
# a /30 of 10.0.0.0/8 spelled by the port's two bytes: distinct ports, distinct networks
ADDR_HOST = f"10.{(_NET_ID >> 8) & 255}.{_NET_ID & 255}.1"
ADDR_NS = f"10.{(_NET_ID >> 8) & 255}.{_NET_ID & 255}.2"
NAT_TABLE = f"cwpp_chaos_nat_{_NET_ID}"


def log(msg):
    print(f"[{datetime.now(timezone.utc).strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*argv, check=True, timeout=300, quiet=False):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} -> {p.returncode}: {p.stderr.strip()}"
                           f" {p.stdout.strip()}")
    if not quiet and p.stdout.strip():
        log("  " + p.stdout.strip().replace("\n", "\n  "))
    return p


def iso_ms(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (ms % 1000)


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def alert_id_of(a):
    """alert_id as ingest computes it (libs/alert cwpp_alert_compute_identity)."""
    typ = a["type"]
    k = [typ, a["account_id"], a["asset"]["id"]]
    f, p, lg = a.get("file", {}), a.get("process", {}), a.get("logon", {})
    if typ in ("virus", "webshell"):
        k += [f.get("path"), f.get("md5")]
    elif typ == "abnormal_logon":
        k += [lg.get("ip")]
    elif typ == "malicious_process":
        k += [p.get("path"), p.get("cmdline")]
    elif typ == "brute_force":
        k += [a.get("remote_ip") or lg.get("ip"), lg.get("user")]
    elif typ == "network_attack":
        k += [a["name"], a.get("remote_ip")]
    else:
        raise ValueError(typ)
    key = json.dumps(k, separators=(",", ":"), ensure_ascii=False)
    return "al-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# ------------------------------------------------------------------ the stream

class Generator:
    """Realistic upstream alerts of several accounts; incidents never cross windows."""

    ROLES = ("web", "application", "database", "workstation")

    def __init__(self, run, accounts, seed=7):
        self.run = run
        self.rng = random.Random(seed)
        self.accounts = [f"chaos-{run}-a{i}" for i in range(accounts)]
        self.incidents = {}
        self.window = 0
        self.next_inc = 0
        self.seq = 0
        self.scanners = [f"192.0.2.{10 + i}" for i in range(4)]
        self.scanner_tag = f"chaos-{run}-authorized"
        self.lock = threading.Lock()   # a window changes between two records, never in one

    def new_incident(self, acct):
        rng, inc = self.rng, self.next_inc
        self.next_inc += 1
        return {"inc": inc, "acct": acct, "left": rng.randint(20, 60), "past": [],
                "assets": [{"id": f"h-{self.run}-{inc}-{j}", "name": f"host-{inc}-{j}",
                            "ip": "10.%d.%d.%d" % (inc >> 8 & 255, inc & 255, 10 + j),
                            "role": rng.choice(self.ROLES)}
                           for j in range(rng.choice((1, 1, 2, 3)))],
                "ip": "203.%d.%d.%d" % (inc >> 16 & 255, inc >> 8 & 255, inc & 255),
                "hashes": [md5(f"{self.run}-{inc}-{k}") for k in range(2)],
                "scenario": inc % 3}

    def set_window(self, w):
        with self.lock:
            self.window = w
            self.incidents = {}   # a fault's window starts new incidents

    def alert(self, acct, now_ms, recur=0.35):
        """One alert document of acct (a new alert or a recurrence of one of its
        incident's earlier alerts)."""
        rng = self.rng
        inc = self.incidents.get(acct)
        if inc is None or inc["left"] <= 0:
            inc = self.incidents[acct] = self.new_incident(acct)
        inc["left"] -= 1
        self.seq += 1
        if inc["past"] and rng.random() < recur:
            a = dict(rng.choice(inc["past"]))
            a["occurred_at"] = iso_ms(now_ms)
            a["details"] = dict(a["details"], seq=self.seq)
            return a
        k = len(inc["past"])
        asset = inc["assets"][k % len(inc["assets"])]
        ip, sc = inc["ip"], inc["scenario"]
        a = {"account_id": acct, "asset": asset, "occurred_at": iso_ms(now_ms),
             "defense": rng.choice(("failed", "none", "blocked", "none")),
             "details": {"incident": inc["inc"], "seq": self.seq}}
        kind = k % 4
        if kind == 0:
            a.update({"name": "Trojan program" if sc != 2 else "Web shell uploaded",
                      "type": "virus" if sc != 2 else "webshell", "severity": "high",
                      "source": "virus_scan" if sc != 2 else "webshell_scan",
                      "attack": {"tactic": "TA0002", "technique": "T1204"},
                      "file": {"path": f"/var/tmp/.cache/x{k % 5}", "md5": inc["hashes"][k % 2]}})
        elif kind == 1:
            exe = f"/var/tmp/.cache/x{k % 3}"
            a.update({"name": "Malicious process", "type": "malicious_process",
                      "severity": rng.choice(("critical", "high")), "source": "process_monitor",
                      "attack": {"tactic": "TA0002", "technique": "T1059.004"},
                      "process": {"pid": 1000 + k, "path": exe, "user": "root",
                                  "cmdline": f"{exe} --pool stratum+tcp://{ip}:3333"},
                      "remote_ip": ip})
        elif kind == 2 and sc == 1:
            a.update({"name": "SSH brute force", "type": "brute_force", "severity": "high",
                      "source": "logon_monitor", "attack": {"tactic": "TA0006",
                                                            "technique": "T1110"},
                      "remote_ip": ip, "logon": {"ip": ip, "user": ("root", "admin")[k % 2]}})
        elif kind == 2:
            a.update({"name": "Abnormal logon", "type": "abnormal_logon", "severity": "medium",
                      "source": "logon_monitor", "attack": {"tactic": "TA0001",
                                                            "technique": "T1078"},
                      "logon": {"ip": ip, "user": "oracle"}})
        else:
            a.update({"name": ("Port scan from external IP", "SQL injection attempt")[k % 2],
                      "type": "network_attack", "severity": rng.choice(("low", "medium")),
                      "source": "network_ids", "attack": {"tactic": "TA0043",
                                                          "technique": "T1595"},
                      "remote_ip": ip})
        inc["past"].append(a)
        return a

    def whitelisted(self, now_ms):
        """An authorized scanner's probe: matched by the campaign's rule."""
        rng = self.rng
        acct = rng.choice(self.accounts)
        self.seq += 1
        return {"account_id": acct, "name": "Authorized vulnerability scan",
                "type": "network_attack", "severity": "low", "source": "network_ids",
                "occurred_at": iso_ms(now_ms), "defense": "none",
                "asset": {"id": f"h-{self.run}-scan-w{self.window}-{rng.randrange(3)}",
                          "name": "scanned", "ip": "10.9.9.9", "role": "web"},
                "remote_ip": rng.choice(self.scanners),
                "details": {"scanner": self.scanner_tag, "seq": self.seq}}

    def bad(self):
        self.seq += 1
        if self.seq % 2:
            return b'{"name": "truncated record %d' % self.seq
        return json.dumps({"name": "no account", "type": "virus", "severity": "high",
                           "occurred_at": "2026-01-01T00:00:00Z", "source": "x",
                           "asset": {"id": "i"}, "details": {"seq": self.seq}}).encode()


class Stream(threading.Thread):
    """Produces the stream at a fixed rate; remembers every delivered record with its
    window. Handled accounts get a burst of alerts each, then none."""

    def __init__(self, camp, rate):
        super().__init__(daemon=True)
        self.c = camp
        self.rate = rate
        self.gen = Generator(camp.run, accounts=6)
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        # delivered: alert_id -> Counter(window) ; meta: alert_id -> (account, whitelisted)
        self.expect = defaultdict(Counter)
        self.meta = {}
        self.bad = {}            # bytes -> window
        self.failed = 0
        self.sent = 0
        self.delivered = 0
        self.handled_accounts = {}   # acct -> {"want": n occurrences, "done": bool}
        self.hburst = None           # [acct, left]
        self.next_handled = time.time() + 5
        self.handled_every = camp.args.handled_every
        self.p = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 5,
                           "enable.idempotence": True, "message.timeout.ms": 0,
                           "queue.buffering.max.messages": 1000000, "log_level": 0})

    def _deliver(self, info):
        def cb(err, msg):
            if err is not None:
                self.failed += 1
                log(f"stream: a record was not delivered: {err}")
                return
            with self.lock:
                self.delivered += 1
                kind = info[0]
                if kind == "bad":
                    self.bad[info[1]] = info[2]
                else:
                    _, aid, acct, wl, w = info
                    self.expect[aid][w] += 1
                    self.meta[aid] = (acct, wl)
                    h = self.handled_accounts.get(acct)
                    if h is not None:
                        h["want"] += 1
        return cb

    def one(self, now_ms):
        g, rng = self.gen, self.gen.rng
        w = g.window
        if self.hburst is None and time.time() >= self.next_handled:
            acct = f"chaos-{self.c.run}-h{len(self.handled_accounts)}"
            with self.lock:
                self.handled_accounts[acct] = {"want": 0, "burst_done": False,
                                               "handled": False}
            self.hburst = [acct, 12]
            self.next_handled = time.time() + self.handled_every
        r = rng.random()
        if self.hburst is not None and r < 0.2:
            acct = self.hburst[0]
            a = g.alert(acct, now_ms, recur=0.3)
            self.hburst[1] -= 1
            if self.hburst[1] <= 0:
                self.c.burst_done.append(acct)
                self.hburst = None
            return acct, json.dumps(a).encode(), ("alert", alert_id_of(a), acct, False, w)
        if r < 0.25:
            a = g.whitelisted(now_ms)
            return a["account_id"], json.dumps(a).encode(), \
                ("alert", alert_id_of(a), a["account_id"], True, w)
        if r < 0.253:
            v = g.bad()
            return "bad", v, ("bad", v, w)
        acct = rng.choice(g.accounts)
        a = g.alert(acct, now_ms)
        return acct, json.dumps(a).encode(), ("alert", alert_id_of(a), acct, False, w)

    def run(self):
        topic = self.c.prefix + "alerts.raw"
        t0 = time.time()
        i = 0
        try:
            while not self.stop_ev.is_set():
                target = t0 + i / self.rate
                d = target - time.time()
                if d > 0:
                    time.sleep(d)
                with self.gen.lock:
                    key, val, info = self.one(int(time.time() * 1000))
                while True:
                    try:
                        self.p.produce(topic, value=val, key=key.encode(),
                                       on_delivery=self._deliver(info))
                        break
                    except BufferError:
                        self.p.poll(0.1)
                self.sent += 1
                i += 1
                self.p.poll(0)
        except Exception:  # noqa: BLE001 - reported, makes the run fail
            self.c.errors.append("stream: " + traceback.format_exc())

    def finish(self):
        self.stop_ev.set()
        self.join(30)
        if self.hburst is not None:     # its alerts so far are all it gets
            self.c.burst_done.append(self.hburst[0])
            self.hburst = None
        left = self.p.flush(120)
        if left:
            self.c.errors.append(f"stream: {left} records not delivered 120 s after the end")


# --------------------------------------------------------------- the services

class Svc(t.Service):
    """A service process; host is where its /readyz listens (the netns address for the
    partitioned one)."""

    host = "127.0.0.1"
    argv_prefix = ()

    def start(self):
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*self.argv_prefix, str(t.BIN / f"cwpp-{self.name}")],
                                     env=self.env, stdout=self._logf, stderr=subprocess.STDOUT)
        return self

    def http(self, path, timeout=2.0):
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}",
                                        timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close_log(self):
        try:
            self._logf.close()
        except AttributeError:
            pass


class ReadySampler(threading.Thread):
    """Asks every service's /readyz once a second during a fault: which ones ever said
    "not ready" (a service that stays ready while its database is gone says so here)."""

    def __init__(self, camp):
        super().__init__(daemon=True)
        self.c = camp
        self.stop_ev = threading.Event()
        self.seen = defaultdict(Counter)

    def run(self):
        while not self.stop_ev.wait(1.0):
            for s in self.c.all_instances():
                if s.alive():
                    self.seen[s.name][s.http("/readyz", timeout=0.8)[0] == 200] += 1

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        parts = []
        for name, c in sorted(self.seen.items()):
            if c[False]:
                parts.append(f"{name} {c[False]}/{c[False] + c[True]}")
        return "during the fault /readyz said not ready: " + (", ".join(parts) or "never")


# ----------------------------------------------------------------- campaign

class Campaign:
    def __init__(self, args):
        self.args = args
        self.run = uuid.uuid4().hex[:6]
        self.prefix = f"chaos{self.run}."
        self.db = f"cwpp_chaos_{self.run}"
        self.logdir = Path(args.logdir) / self.run
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.svcs = {}            # name -> Svc (the main instance)
        self.extra = []           # second instances (rebalance)
        self.rows = []            # the table
        self.errors = []          # failed checks (sentences)
        self.burst_done = []      # handled accounts whose burst was produced
        self.handle_cmds = {}     # command id -> event id
        self.handled_done = set() # handled accounts whose commands are made
        self.results = {}         # command id -> final CommandResult
        self.results_stop = threading.Event()
        self.exptmp = Path(args.state) / f"exptmp-{self.run}"
        self.netns_up = False
        self.short = not args.long
        self.agent = None         # the enforcer agent's Svc (agent faults only)
        self.agstate = Path(args.state) / f"agentstate-{self.run}"
        self.actions = {}         # action id -> {"window", "kind", "ip", "shift"}
        self.aresults = defaultdict(list)   # action id -> [ActionResult]
        self.alock = threading.Lock()
        self.agent_note = None
        self.trickle_stop = threading.Event()

    # ---------------------------------------------------------------- set-up
    def setup_db(self):
        admin = os.environ["CWPP_PG_ADMIN_DSN"]
        conn = psycopg2.connect(admin, connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'cwpp_chaos_%%'")
            for (old,) in cur.fetchall():
                cur.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{self.db}"')
        conn.close()
        env = dict(os.environ, CWPP_PG_ADMIN_DSN=t.with_dbname(admin, self.db))
        subprocess.run([str(REPO / "deploy" / "migrate")], env=env, check=True,
                       capture_output=True, timeout=120)
        t.ADMIN_DSN = t.with_dbname(admin, self.db)

    def q(self, sql, args=()):
        conn = psycopg2.connect(t.ADMIN_DSN, connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SET search_path = cwpp")
                cur.execute("SET statement_timeout = '60s'")
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def svc_env(self, name):
        dsn = t.with_dbname(os.environ[SERVICES[name][0]], self.db)
        props = "session.timeout.ms=6000;heartbeat.interval.ms=500"
        if self.short:
            props += ";consumer.max.poll.interval.ms=20000"
        e = {"CWPP_PG_DSN": dsn, "CWPP_KAFKA_PROPERTIES": props, "CWPP_LOG_LEVEL": "info",
             "CWPP_BATCH_MAX_MS": "50", "CWPP_RETRY_MAX_MS": "1000"}
        if name == "exporter":
            e.update({"CWPP_EXPORT_TMP_DIR": str(self.exptmp), "CWPP_EXPORTER_TICK_MS": "200",
                      "CWPP_HANDLED_TRANSACTIONAL_ID": f"cwpp-exporter-handled-{self.prefix}"})
        if name == "responder":
            e["CWPP_RESPONDER_TICK_MS"] = "200"
        return e

    def new_svc(self, name, netns=False):
        s = Svc(name, self.prefix, self.logdir, extra_env=self.svc_env(name),
                group=f"{self.prefix}{name}")
        if netns:
            s.host = ADDR_NS
            s.argv_prefix = ("ip", "netns", "exec", NETNS)
            s.env["CWPP_HTTP_ADDRESS"] = ADDR_NS
            s.env["CWPP_PG_DSN"] = s.env["CWPP_PG_DSN"].replace("host=127.0.0.1",
                                                                f"host={ADDR_HOST}")
        return s

    def start_services(self):
        for old in Path(self.args.state).glob("exptmp-*"):   # left by a killed run
            subprocess.run(["umount", str(old)], capture_output=True)
            try:
                old.rmdir()
            except OSError:
                pass
        self.exptmp.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={self.args.tmpfs_kib}k,mode=0777",
           f"cwpp-chaos-{self.run}", self.exptmp)
        # the responder first (its admin is made with make_user before the first command)
        order = ["responder", "ingest", "whitelist-filter", "correlator", "exporter"]
        for name in order:
            s = self.new_svc(name, netns=(name == "correlator" and self.netns_up))
            s.start()
            self.svcs[name] = s
            s.wait_ready(60)
        log(f"services ready; logs in {self.logdir}")

    def all_instances(self):
        return list(self.svcs.values()) + [s for s in self.extra if s.alive()]

    # ------------------------------------------------------------ commands
    def results_reader(self):
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "chaos-rd-" + uuid.uuid4().hex,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "log_level": 0})
        c.subscribe([self.prefix + "command-results"])
        try:
            while not self.results_stop.is_set():
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                try:
                    r = RESULT.decode(m.value())
                except Exception:  # noqa: BLE001
                    continue
                if r["status"] != "progress":
                    self.results.setdefault(r["command_id"], r)
        finally:
            c.close()

    def command(self, service, typ, payload, actor="admin", cid=None):
        cid = cid or f"cmd-{uuid.uuid4().hex}"
        t.produce(self.prefix + "commands", [COMMAND.encode({
            "command_id": cid, "service": service, "type": typ, "actor": actor,
            "issued_at_ms": int(time.time() * 1000), "payload_json": json.dumps(payload)})],
            keys=[cid.encode()])
        return cid

    def wait_result(self, cid, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cid in self.results:
                return self.results[cid]
            time.sleep(0.2)
        return None

    def handler(self):
        """Sets the events of each handled account to handled once all its alerts are in
        events (no alert of that account comes afterwards, so none can open a successor).
        A command that could not be sent (broker down) is sent again with the same id, so
        it is applied once."""
        done = self.handled_done
        unsent = []   # (command id, event id)
        while not self.results_stop.is_set():
            try:
                for acct in list(self.burst_done):
                    if acct in done:
                        continue
                    want = self.stream.handled_accounts[acct]["want"]
                    got = self.q("SELECT coalesce(sum(occurrences), 0) FROM events "
                                 "WHERE account_id = %s", (acct,))[0][0]
                    if got < want:
                        continue
                    for (eid,) in self.q("SELECT event_id FROM events WHERE account_id = %s "
                                         "ORDER BY event_id", (acct,)):
                        cid = f"cmd-{uuid.uuid4().hex}"
                        self.handle_cmds[cid] = eid
                        unsent.append((cid, eid))
                    done.add(acct)
                while unsent:
                    cid, eid = unsent[0]
                    self.command("responder", "event.status",
                                 {"event_id": eid, "status": "handled",
                                  "remark": "chaos campaign"}, cid=cid)
                    unsent.pop(0)
            except Exception:  # noqa: BLE001 - database or broker down: next round
                pass
            time.sleep(1)

    # ------------------------------------------------------------- waiting
    def wait_all_ready(self, since, bound=READY_BOUND_S):
        """Waits for every instance's /readyz; returns (seconds from since, notes).
        A service found dead is reported and restarted."""
        notes = []
        pending = {id(s): s for s in self.all_instances()}
        worst = 0.0
        deadline = time.time() + bound + 30
        while pending and time.time() < deadline:
            for k, s in list(pending.items()):
                if not s.alive():
                    rc = s.proc.returncode
                    tail = " | ".join(s.log_text().strip().splitlines()[-3:])[-600:]
                    notes.append(f"{s.name} exited by itself (rc {rc}): {tail}")
                    self.errors.append(f"{s.name} exited by itself (rc {rc}) after a fault")
                    s.close_log()
                    s.start()
                    continue
                if s.http("/readyz", timeout=1.0)[0] == 200:
                    worst = max(worst, time.time() - since)
                    del pending[k]
            time.sleep(0.2)
        for s in pending.values():
            code, body = s.http("/readyz", timeout=1.0)
            notes.append(f"{s.name} not ready after {bound + 30} s (/readyz {code}: "
                         f"{body.strip()[:200]})")
            worst = float("inf")
        return worst, notes

    def positions(self):
        """{(group, topic, partition): (committed, high watermark)} over every group's
        inputs."""
        out = {}
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "chaos-wm-" + uuid.uuid4().hex,
                      "log_level": 0})
        try:
            for name, (_, topics) in SERVICES.items():
                g = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": f"{self.prefix}{name}",
                              "enable.auto.commit": False, "log_level": 0})
                try:
                    for tp in topics:
                        topic = self.prefix + tp
                        com = g.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                          timeout=10)
                        for x in com:
                            lo, hi = c.get_watermark_offsets(TopicPartition(topic, x.partition),
                                                             timeout=10)
                            out[(name, topic, x.partition)] = (max(x.offset, lo), hi)
                finally:
                    g.close()
        finally:
            c.close()
        return out

    def wait_caught_up(self, since, bound):
        """Waits until every group has committed what its inputs held at `since` (the
        fault's end): (seconds from since, groups still behind). A service that says it is
        ready but makes no progress shows here."""
        try:
            marks = {k: hi for k, (_, hi) in self.positions().items()}
        except Exception as e:  # noqa: BLE001
            return float("inf"), [f"cannot read the groups' positions: {e}"]
        deadline = since + bound
        behind = {}
        while True:
            try:
                pos = self.positions()
                behind = {}
                for k, hi in marks.items():
                    com = pos.get(k, (0, 0))[0]
                    if com < hi:
                        behind[k[0]] = behind.get(k[0], 0) + hi - com
                if not behind:
                    return time.time() - since, []
            except Exception:  # noqa: BLE001 - broker briefly unavailable: try again
                pass
            if time.time() > deadline:
                return float("inf"), [f"not caught up {bound:.0f} s after the fault's end; "
                                      f"records behind the fault-end mark: {behind}"]
            time.sleep(0.5)

    def lag(self):
        """{group: records not yet committed} over every group's inputs."""
        out = {name: 0 for name in SERVICES}
        for (name, _, _), (com, hi) in self.positions().items():
            out[name] += max(0, hi - com)
        return out

    # -------------------------------------------------------------- faults
    def fault_kill(self, name):
        s = self.svcs[name]
        s.kill9()
        time.sleep(3)
        s.start()

    def stack(self, script, verb):
        sh(REPO / "deploy" / "local" / script, verb, timeout=200)

    def fault_broker(self):
        self.stack("kafka.sh", "stop")
        time.sleep(5 if self.short else 30)
        self.stack("kafka.sh", "start")

    def fault_pg_restart(self):
        self.stack("pg.sh", "stop")
        time.sleep(2)
        self.stack("pg.sh", "start")

    def fault_pg_crash(self):
        self.stack("pg.sh", "crash")
        time.sleep(2)
        self.stack("pg.sh", "start")

    def fault_pg_long(self):
        self.stack("pg.sh", "stop")
        secs = 40 if self.short else 360
        deadline = time.time() + secs
        while time.time() < deadline:
            time.sleep(min(10, max(0, deadline - time.time())))
            dead = [s.name for s in self.all_instances() if not s.alive()]
            if dead:
                log(f"  while PostgreSQL is down: {dead} exited")
        self.stack("pg.sh", "start")

    def fault_partition(self):
        secs = 30 if self.short else 120
        sh("ip", "netns", "exec", NETNS, "nft", "-f", "-", check=False)
        rules = (f"add table ip cwpp_chaos_part\n"
                 f"add chain ip cwpp_chaos_part out {{ type filter hook output priority 0; }}\n"
                 f"add rule ip cwpp_chaos_part out ip daddr {ADDR_HOST} tcp dport "
                 f"{os.environ['CWPP_PG_PORT']} drop\n"
                 f"add chain ip cwpp_chaos_part in {{ type filter hook input priority 0; }}\n"
                 f"add rule ip cwpp_chaos_part in ip saddr {ADDR_HOST} tcp sport "
                 f"{os.environ['CWPP_PG_PORT']} drop\n")
        p = subprocess.run(["ip", "netns", "exec", NETNS, "nft", "-f", "-"], input=rules,
                           text=True, capture_output=True)
        if p.returncode:
            raise RuntimeError(f"nft: {p.stderr}")
        time.sleep(secs)
        sh("ip", "netns", "exec", NETNS, "nft", "delete", "table", "ip", "cwpp_chaos_part")

    def fault_disk_full(self):
        fill = self.exptmp / "fill"
        subprocess.run(["dd", "if=/dev/zero", f"of={fill}", "bs=64k"], capture_output=True)
        evs = [r[0] for r in self.q("SELECT event_id FROM events ORDER BY last_seen DESC "
                                    "LIMIT 200")]
        cid = self.command("exporter", "export.create", {"ids": evs})
        r = self.wait_result(cid, 15)
        self.disk_note = f"export while full: {r['status'] + ': ' + r['message'][:120] if r else 'no answer yet'}"
        fill.unlink()
        if r is None:
            r = self.wait_result(cid, 45)
            self.disk_note += f"; after freeing: {r['status'] + ': ' + r['message'][:120] if r else 'NO ANSWER'}"
            if r is None:
                self.errors.append(f"disk-full: the export {cid} requested while the disk was "
                                   "full got no answer 45 s after space returned (wedged)")
        cid2 = self.command("exporter", "export.create", {"ids": evs[:20]})
        r2 = self.wait_result(cid2, 45)
        if r2 is None or r2["status"] != "ok":
            self.errors.append(f"disk-full: an export after space returned did not succeed: "
                               f"{r2 and r2['message']}")
        self.disk_note += f"; export after: {r2['status'] if r2 else 'NO ANSWER'}"

    def fault_rebalance(self):
        for name in ("whitelist-filter", "correlator"):
            s = self.new_svc(name)
            s.start()
            self.extra.append(s)
        time.sleep(12 if self.short else 60)
        for s in self.extra:
            if s.alive():
                s.stop(timeout=30)

    # ------------------------------------------------------------ the agent
    def start_agent(self):
        """One cwpp-enforcer for the first account, its state directory (journal,
        quarantine) on a tmpfs of its own; its WAF deny file and reload script live in the
        run's log directory, so the actions it applies touch nothing else on the host."""
        for old in Path(self.args.state).glob("agentstate-*"):   # left by a killed run
            subprocess.run(["umount", "-l", str(old)], capture_output=True)
            try:
                old.rmdir()
            except OSError:
                pass
        self.agstate.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={self.args.agent_tmpfs_kib}k,mode=0700",
           f"cwpp-chaos-agent-{self.run}", self.agstate)
        work = self.logdir / "agent"
        work.mkdir(exist_ok=True)
        self.deny = work / "deny.conf"
        self.deny.write_text("# managed in part by cwpp-enforcer\n")
        self.reloads = work / "reloads"
        self.reloads.write_text("")
        reload = work / "reload.sh"
        reload.write_text(f"#!/bin/sh\necho x >> {self.reloads}\n")
        reload.chmod(0o755)
        self.agent_account = f"chaos-{self.run}-a0"
        self.agent_asset = f"h-{self.run}-agent"
        env = {"CWPP_GROUP_ID": "cwpp-enforcer",     # the default: one group per agent
               "CWPP_ENFORCER_ACCOUNT_ID": self.agent_account,
               "CWPP_ENFORCER_ASSET_ID": self.agent_asset,
               "CWPP_ENFORCER_NAME": f"chaos-{self.run}-agent",
               "CWPP_ENFORCER_STATE_DIR": str(self.agstate),
               "CWPP_ENFORCER_WAF_DENY_FILE": str(self.deny),
               "CWPP_ENFORCER_WAF_RELOAD": str(reload),
               "CWPP_LOG_LEVEL": "info", "CWPP_RETRY_MAX_MS": "1000"}
        s = Svc("enforcer", self.prefix, self.logdir, extra_env=env)
        s.start()
        s.wait_ready(60)
        self.agent = self.svcs["enforcer"] = s     # its /readyz counts like the others'
        self.aproducer = Producer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "linger.ms": 5,
                                   "enable.idempotence": True, "message.timeout.ms": 600000,
                                   "log_level": 0})
        threading.Thread(target=self.action_results_reader, daemon=True).start()
        log(f"enforcer agent ready (account {self.agent_account}, asset {self.agent_asset}, "
            f"state on a {self.args.agent_tmpfs_kib} KiB tmpfs)")

    def action_results_reader(self):
        """Every ActionResult on <prefix>action-results from the start, by action id."""
        topic = self.prefix + "action-results"
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "chaos-ar-" + uuid.uuid4().hex,
                      "enable.auto.commit": False, "log_level": 0})
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        try:
            while not self.results_stop.is_set():
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                try:
                    r = ACTION_RESULT.decode(m.value())
                except Exception:  # noqa: BLE001
                    continue
                with self.alock:
                    self.aresults[r["action_id"]].append(r)
        finally:
            c.close()

    def send_action(self, kind, shift_ms=0):
        """A waf_block_ip of a new address to the agent, stamped as by a sender whose clock
        is shift_ms ahead of the real one; it belongs to the current window once the
        broker has it."""
        with self.alock:
            n = len(self.actions)
            aid = f"chaos-{self.run}-act{n}.1"
            ip = f"198.18.{n >> 8 & 255}.{n & 255}"
            info = {"window": self.stream.gen.window, "kind": kind, "ip": ip,
                    "shift": shift_ms, "delivered": None}
            self.actions[aid] = info
        now = int(time.time() * 1000) + shift_ms
        rec = {"action_id": aid, "task_id": aid.rsplit(".", 1)[0], "policy_id": "pol-chaos",
               "event_id": "ev-chaos", "account_id": self.agent_account,
               "asset_id": self.agent_asset, "action": "waf_block_ip",
               "params_json": json.dumps({"ip": ip}), "attempt": 1, "issued_at_ms": now,
               "deadline_ms": now + 60000}

        def done(err, _msg):
            info["delivered"] = err is None
        while True:
            try:
                self.aproducer.produce(self.prefix + "actions", value=ACTION.encode(rec),
                                       key=f"{self.agent_account}/{self.agent_asset}".encode(),
                                       on_delivery=done)
                break
            except BufferError:
                self.aproducer.poll(0.1)
        self.aproducer.poll(0)
        return aid

    def action_trickle(self):
        """A valid action every 1/--agent-rate s from the stream's start to its end."""
        i = 0
        t0 = time.time()
        while not self.trickle_stop.is_set():
            d = t0 + i / self.args.agent_rate - time.time()
            if d > 0 and self.trickle_stop.wait(d):
                break
            try:
                self.send_action("trickle")
            except Exception:  # noqa: BLE001 - reported, makes the run fail
                self.errors.append("action trickle: " + traceback.format_exc())
                return
            i += 1

    def agent_ready(self):
        return self.agent.http("/readyz", timeout=1.0)

    def fault_agent_disk_full(self):
        """Fills the agent's state tmpfs while actions keep coming; /readyz must say not
        ready (No space left on device); a few seconds later the space is freed."""
        filler = self.agstate / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:     # the last pages
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        t0 = time.time()
        body = None
        while time.time() < t0 + 30:
            code, b = self.agent_ready()
            if code != 200 and "No space left on device" in b:
                body = b
                break
            time.sleep(0.3)
        with self.alock:
            answered = sum(1 for a in self.actions if a in self.aresults)
        if body is None:
            self.agent_note = "agent /readyz never said the disk is full within 30 s"
            self.errors.append("agent-disk-full: the agent's /readyz never reported the full "
                               "state directory")
        else:
            b = " ".join(body.split())
            self.agent_note = (f"agent not ready {time.time() - t0:.1f} s after the disk "
                               f"filled: {b[:50]} ... {b[-45:]}")
        time.sleep(6)       # actions keep arriving while it is full
        with self.alock:
            after = sum(1 for a in self.actions if a in self.aresults)
        still = self.agent_ready()[0]
        self.agent_note += (f"; results while full: {after - answered} new, /readyz {still} "
                            "6 s later")
        if body is not None and still == 200:
            self.errors.append("agent-disk-full: the agent said ready again while the disk "
                               "was still full")
        filler.unlink()     # the fault's end: "time to ready" includes the agent's

    def fault_agent_clock_skew(self):
        """Actions stamped 10 minutes ahead and behind (beyond enforcer.clock.skew.max.ms,
        30 s by default: refused) and a few seconds off (within it: applied); the skew is
        the sender's, as in tests/integration/test_enforcer.py (libfaketime cannot shift
        an agent's clock under librdkafka)."""
        sent = []
        for _ in range(3):
            for shift in (SKEW_BEYOND_MS, -SKEW_BEYOND_MS):
                sent.append(self.send_action("skew-beyond", shift))
            for shift in (SKEW_WITHIN_MS, 0, -SKEW_WITHIN_MS):
                sent.append(self.send_action("skew-within", shift))
            time.sleep(0.5)
        self.aproducer.flush(30)
        deadline = time.time() + 30
        while time.time() < deadline:
            with self.alock:
                if all(a in self.aresults for a in sent):
                    break
            time.sleep(0.3)
        with self.alock:
            got = Counter(r["status"] for a in sent for r in self.aresults.get(a, [])[:1])
        self.agent_note = (f"{len(sent)} skewed actions (+-{SKEW_BEYOND_MS // 60000} min x6, "
                           f"+-{SKEW_WITHIN_MS // 1000} s/0 x9): results {dict(got)}")

    def reconcile_agent(self, lost, dup, why):
        """Every delivered action has exactly one result, each applied at most once;
        skewed ones beyond the tolerance refused naming the clock, within it applied."""
        self.aproducer.flush(60)
        deadline = time.time() + 60
        while time.time() < deadline:
            with self.alock:
                if all(a in self.aresults for a, i in self.actions.items() if i["delivered"]):
                    break
            time.sleep(0.5)
        time.sleep(2)   # a second result, if any, has time to arrive
        journal = Counter()
        try:
            for line in (self.agstate / "journal.jsonl").read_text().splitlines():
                try:
                    journal[json.loads(line)["action_id"]] += 1
                except (ValueError, KeyError):
                    pass
        except OSError as e:
            self.errors.append(f"enforcer journal unreadable: {e}")
        denied = Counter(x.split()[1].rstrip(";") for x in self.deny.read_text().splitlines()
                         if x.startswith("deny "))
        reloads = len(self.reloads.read_text().splitlines())
        with self.alock:
            actions = dict(self.actions)
            res = {k: list(v) for k, v in self.aresults.items()}
        applied = 0
        undelivered = 0
        for aid, i in actions.items():
            w, rs = i["window"], res.get(aid, [])
            if not i["delivered"]:
                undelivered += 1
                continue
            if not rs:
                lost[w] += 1
                why[w].append(f"action {aid} ({i['kind']}) has no result")
                continue
            if len(rs) > 1:
                dup[w] += len(rs) - 1
                same = all(r == rs[0] for r in rs)
                why[w].append(f"action {aid} ({i['kind']}) has {len(rs)} results"
                              f"{' (identical)' if same else ': ' + str([r['status'] for r in rs])}")
            r = rs[0]
            if journal[aid] > 1:
                dup[w] += journal[aid] - 1
                why[w].append(f"action {aid} is {journal[aid]} times in the agent's journal")
            if r["status"] == "succeeded" and "already" in r["reason"]:
                dup[w] += 1
                why[w].append(f"action {aid} applied twice: {r['reason'][:100]}")
            if i["kind"] == "skew-beyond":
                if r["status"] != "failed" or "this agent's clock" not in r["reason"] or \
                        "enforcer.clock.skew.max.ms" not in r["reason"] or denied[i["ip"]]:
                    self.errors.append(f"agent-clock-skew: {aid} stamped "
                                       f"{i['shift'] // 1000:+d} s: {r['status']}: "
                                       f"{r['reason'][:160]} (in the deny file "
                                       f"{denied[i['ip']]} times)")
            else:
                if r["status"] != "succeeded" or denied[i["ip"]] != 1:
                    self.errors.append(f"enforcer: {aid} ({i['kind']}, "
                                       f"{i['shift'] // 1000:+d} s) {r['status']}: "
                                       f"{r['reason'][:160]} (in the deny file "
                                       f"{denied[i['ip']]} times)")
                else:
                    applied += 1
        if reloads > applied:
            self.errors.append(f"enforcer: {reloads} WAF reloads for {applied} actions "
                               "applied (one applied more than once)")
        if undelivered:
            self.errors.append(f"enforcer: {undelivered} actions never reached the broker")
        kinds = Counter(i["kind"] for i in actions.values())
        self.agent_summary = (f"enforcer agent: {len(actions)} actions sent "
                              f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
                              f"{sum(1 for a in actions if a in res)} answered, "
                              f"{sum(len(v) for a, v in res.items() if a in actions)} results, "
                              f"{applied} applied ({reloads} WAF reloads), "
                              f"journal {sum(journal.values())} lines")

    # --------------------------------------------------------------- netns
    def netns_setup(self):
        kport, pport = os.environ["CWPP_KAFKA_PORT"], os.environ["CWPP_PG_PORT"]
        self.netns_teardown(quiet=True)
        sh("ip", "netns", "add", NETNS)
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS)
        sh("ip", "link", "set", VETH_NS, "netns", NETNS)
        sh("ip", "addr", "add", f"{ADDR_HOST}/30", "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "up")
        ns = ("ip", "netns", "exec", NETNS)
        sh(*ns, "ip", "addr", "add", f"{ADDR_NS}/30", "dev", VETH_NS)
        sh(*ns, "ip", "link", "set", VETH_NS, "up")
        sh(*ns, "ip", "link", "set", "lo", "up")
        sh(*ns, "ip", "route", "add", "default", "via", ADDR_HOST)
        # inside: the broker advertises 127.0.0.1:<port>; send that to the host
        sh(*ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1")
        nsrules = (f"add table ip {NAT_TABLE}\n"
                   f"add chain ip {NAT_TABLE} out {{ type nat hook output priority -100; }}\n"
                   f"add rule ip {NAT_TABLE} out ip daddr 127.0.0.1 tcp dport {kport} "
                   f"dnat to {ADDR_HOST}\n"
                   f"add chain ip {NAT_TABLE} post {{ type nat hook postrouting priority 100; }}\n"
                   f"add rule ip {NAT_TABLE} post oifname {VETH_NS} masquerade\n")
        p = subprocess.run([*ns, "nft", "-f", "-"], input=nsrules, text=True, capture_output=True)
        if p.returncode:
            raise RuntimeError(f"nft in netns: {p.stderr}")
        # host: what comes in on the veth for the broker and PostgreSQL goes to 127.0.0.1,
        # seen as from 127.0.0.1 (pg_hba lets the service roles in from there only)
        sh("sysctl", "-qw", f"net.ipv4.conf.{VETH_HOST}.route_localnet=1")
        hrules = (f"add table ip {NAT_TABLE}\n"
                  f"add chain ip {NAT_TABLE} pre {{ type nat hook prerouting priority -100; }}\n"
                  f"add rule ip {NAT_TABLE} pre iifname {VETH_HOST} ip daddr {ADDR_HOST} "
                  f"tcp dport {{ {kport}, {pport} }} dnat to 127.0.0.1\n"
                  f"add chain ip {NAT_TABLE} in {{ type nat hook input priority 100; }}\n"
                  f"add rule ip {NAT_TABLE} in iifname {VETH_HOST} ip saddr {ADDR_NS} "
                  f"snat to 127.0.0.1\n")
        p = subprocess.run(["nft", "-f", "-"], input=hrules, text=True, capture_output=True)
        if p.returncode:
            raise RuntimeError(f"nft on the host: {p.stderr}")
        self.netns_up = True

    def netns_teardown(self, quiet=False):
        subprocess.run(["nft", "delete", "table", "ip", NAT_TABLE], capture_output=True)
        subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        self.netns_up = False

    # ---------------------------------------------------------------- plan
    def plan(self):
        faults = self.args.faults
        out = []
        for f in faults:
            if f == "kill":
                out += [(f"kill-{n}", lambda n=n: self.fault_kill(n)) for n in SERVICES]
            elif f == "broker":
                out.append(("broker", self.fault_broker))
            elif f == "pg-restart":
                out.append(("pg-restart", self.fault_pg_restart))
            elif f == "pg-crash":
                out.append(("pg-crash", self.fault_pg_crash))
            elif f == "pg-long":
                out.append(("pg-long", self.fault_pg_long))
            elif f == "partition":
                out.append(("partition", self.fault_partition))
            elif f == "disk-full":
                out.append(("disk-full", self.fault_disk_full))
            elif f == "rebalance":
                out.append(("rebalance", self.fault_rebalance))
            elif f == "agent-disk-full":
                out.append((f, self.fault_agent_disk_full))
            elif f == "agent-clock-skew":
                out.append((f, self.fault_agent_clock_skew))
        return out

    # ----------------------------------------------------------------- run
    def main(self):
        a = self.args
        log(f"chaos run {self.run}: prefix {self.prefix}, database {self.db}, "
            f"brokers {t.BROKERS}, PostgreSQL port {os.environ['CWPP_PG_PORT']}, "
            f"{a.rate} alerts/s, faults {','.join(a.faults)}")
        self.setup_db()
        t.create_topics(self.prefix, partitions=PARTITIONS)
        if "partition" in a.faults:
            self.netns_setup()
        self.start_services()
        if set(a.faults) & set(AGENT_FAULTS):
            self.start_agent()
        threading.Thread(target=self.results_reader, daemon=True).start()
        t.make_user("admin", role="admin")
        # a rule belongs to one account: the scanner's rule for each account of the stream
        # (Stream's Generator: chaos-<run>-a0 .. a5)
        self.rule_ids = []
        for i in range(6):
            cid = self.command("whitelist", "whitelist.rule_add", {
                "account_id": f"chaos-{self.run}-a{i}",
                "alert_name": "Authorized vulnerability scan", "field": "details.scanner",
                "op": "eq", "value": f"chaos-{self.run}-authorized", "scope": "all",
                "remark": "the chaos campaign's authorized scanner", "force": True})
            r = self.wait_result(cid, 60)
            if r is None or r["status"] != "ok":
                raise RuntimeError(f"whitelist rule not created: {r}")
            self.rule_ids.append(json.loads(r["result_json"])["rule_id"])
        time.sleep(2.5)  # every filter instance reloads rules within a second
        # A fault's window: the records produced from the previous fault's recovery (its
        # pipeline caught up) to its own, so records in flight when it starts are its.
        w = 1
        self.stream = Stream(self, a.rate)
        self.stream.gen.set_window(w)
        self.stream.start()
        threading.Thread(target=self.handler, daemon=True).start()
        if self.agent is not None:
            threading.Thread(target=self.action_trickle, daemon=True).start()
        t_begin = time.time()
        time.sleep(a.warmup)
        plan = self.plan()
        rounds = 0
        while True:
            for name, fn in plan:
                log(f"fault {name} (window {w})")
                self.disk_note = None
                t0 = time.time()
                notes = []
                sampler = ReadySampler(self)
                sampler.start()
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - the harness itself failed
                    notes.append(f"harness error: {e}")
                    self.errors.append(f"{name}: harness error: {e}")
                t1 = time.time()
                notes.append(sampler.finish())
                ready, rn = self.wait_all_ready(t1)
                notes += rn
                caught, cn = self.wait_caught_up(t1, a.catchup_bound)
                notes += cn
                if caught > a.catchup_bound:
                    self.errors.append(f"{name}: the pipeline had not processed what was "
                                       f"produced before the fault's end {a.catchup_bound:.0f} s "
                                       "after it")
                if self.disk_note:
                    notes.append(self.disk_note)
                if self.agent_note:
                    notes.append(self.agent_note)
                    self.agent_note = None
                if ready > READY_BOUND_S:
                    self.errors.append(f"{name}: not every service ready within "
                                       f"{READY_BOUND_S} s of the fault's end")
                self.rows.append({"fault": name, "window": w, "duration": t1 - t0,
                                  "ready": ready, "caught": caught, "notes": notes})
                log(f"  {name}: {t1 - t0:.1f} s, ready after {ready:.1f} s, caught up after "
                    f"{caught:.1f} s {notes or ''}")
                w += 1
                self.stream.gen.set_window(w)
                time.sleep(a.settle)
            rounds += 1
            if not a.long or time.time() - t_begin > a.minutes * 60 - 60:
                break
        time.sleep(a.warmup)
        self.rows.append({"fault": "(after the last fault)", "window": w,
                          "duration": 0.0, "ready": 0.0, "caught": 0.0, "notes": []})
        self.stream.finish()
        self.trickle_stop.set()
        log(f"stream stopped: {self.stream.sent} sent, {self.stream.delivered} delivered")
        self.drain()
        self.reconcile()
        return self.report()

    def drain(self):
        deadline = time.time() + self.args.drain_timeout
        last = None
        while time.time() < deadline:
            try:
                lag = self.lag()
            except Exception as e:  # noqa: BLE001
                lag = {"?": str(e)}
            pending_h = [a for a in self.stream.handled_accounts
                         if a not in self.handled_done] + \
                [c for c in self.handle_cmds if c not in self.results]
            if all(v == 0 for v in lag.values()) and not pending_h and \
                    len(self.burst_done) == len(self.stream.handled_accounts) and \
                    self.handled_published():
                log(f"drained: lag {lag}")
                self.final_lag = lag
                return
            if lag != last:
                log(f"  draining: lag {lag}, handle commands waiting {len(pending_h)}")
                last = lag
            time.sleep(2)
        self.final_lag = self.lag()
        self.errors.append(f"not drained within {self.args.drain_timeout} s: lag "
                           f"{self.final_lag}; handled accounts "
                           f"{len(self.burst_done)}/{len(self.stream.handled_accounts)}, "
                           f"handle commands answered "
                           f"{sum(c in self.results for c in self.handle_cmds)}/"
                           f"{len(self.handle_cmds)}; handled events published: "
                           f"{self.handled_published()}")

    def handled_published(self):
        try:
            n = self.q("SELECT count(*) FROM handled_events")[0][0]
        except psycopg2.Error:
            return False
        recs = self.read_topic("events.handled", committed=True)
        return len({m.key() for m in recs}) >= n

    def read_topic(self, suffix, committed=False):
        topic = self.prefix + suffix
        c = Consumer({**t.KAFKA_AUTH, "bootstrap.servers": t.BROKERS, "group.id": "chaos-rd-" + uuid.uuid4().hex,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": "read_committed" if committed else "read_uncommitted",
                      "log_level": 0})
        try:
            ends = {}
            for p in range(PARTITIONS):
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if hi > lo:
                    ends[p] = hi
            if not ends:
                return []
            c.assign([TopicPartition(topic, p, 0) for p in ends])
            out, left = [], dict(ends)
            deadline = time.time() + 60
            idle = 0
            while left and time.time() < deadline and idle < 20:
                ms = c.consume(1000, 0.5)
                idle = idle + 1 if not ms else 0
                for m in ms:
                    if m.error() is not None:
                        continue
                    out.append(m)
                    if m.partition() in left and m.offset() >= left[m.partition()] - 1:
                        del left[m.partition()]
                if committed:
                    for p in list(left):
                        pos = c.position([TopicPartition(topic, p)])[0].offset
                        if pos >= left[p]:
                            del left[p]
            return out
        finally:
            c.close()

    # ------------------------------------------------------------ reconcile
    def reconcile(self):
        s = self.stream
        lost, dup = Counter(), Counter()
        why = defaultdict(list)
        ours = [a for a in s.meta]
        ing = {r[0]: (r[1], r[2]) for r in self.q(
            "SELECT alert_id, occurrences, status FROM alerts WHERE account_id LIKE %s",
            (f"chaos-{self.run}-%",))}
        evt = defaultdict(list)
        for aid, eid, occ in self.q(
                "SELECT ea.alert_id, ea.event_id, ea.occurrences FROM event_alerts ea JOIN "
                "events e USING (event_id) WHERE e.account_id LIKE %s",
                (f"chaos-{self.run}-%",)):
            evt[aid].append((eid, occ))
        for aid in ours:
            acct, wl = s.meta[aid]
            per_w = s.expect[aid]
            exp = sum(per_w.values())
            w = max(per_w)          # an alert's windows: one (incidents never cross)
            if len(per_w) > 1 and not wl:
                why[w].append(f"{aid} produced in windows {sorted(per_w)}")
            i_occ, status = ing.get(aid, (0, None))
            if wl:
                e_occ = i_occ if status == "automatically_whitelisted" else 0
                if status != "automatically_whitelisted":
                    why[w].append(f"{aid} whitelisted but status {status}")
                if aid in evt:
                    dup[w] += sum(o for _, o in evt[aid])
                    why[w].append(f"whitelisted {aid} is in event(s) {evt[aid]}")
            else:
                e_occ = sum(o for _, o in evt.get(aid, []))
                if len(evt.get(aid, [])) > 1:
                    dup[w] += len(evt[aid]) - 1
                    why[w].append(f"{aid} is in {len(evt[aid])} events")
            lo, hi = min(i_occ, e_occ), max(i_occ, e_occ)
            if lo < exp:
                lost[w] += exp - lo
                why[w].append(f"{aid}: produced {exp}, ingest {i_occ}, events/suppressed {e_occ}")
            if hi > exp:
                dup[w] += hi - exp
                why[w].append(f"{aid}: produced {exp}, ingest {i_occ}, events/suppressed {e_occ}")
        # dead letters
        rej = self.read_topic("alerts.rejected")
        seen_bad = set()
        for m in rej:
            try:
                d = REJECTED.decode(m.value())
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"a dead letter does not decode: {e}")
                continue
            if not d.get("reason_code"):
                self.errors.append(f"a dead letter without reason_code: {d.get('reason')}")
            seen_bad.add(d.get("value"))
        for v, w in s.bad.items():
            if v not in seen_bad:
                lost[w] += 1
                why[w].append(f"bad record {v[:40]!r} not dead-lettered")
        self.dead_letters = len(rej)
        # whitelist rule hits
        hits = self.q("SELECT COALESCE(sum(hits), 0) FROM whitelist_rules "
                      "WHERE rule_id = ANY(%s)", (self.rule_ids,))[0][0]
        n_wl = sum(sum(s.expect[a].values()) for a in ours if s.meta[a][1])
        if hits != n_wl:
            self.errors.append(f"whitelist rule hits {hits}, whitelisted records produced {n_wl}")
        self.n_wl = n_wl
        # events: their occurrences are their alerts'
        bad_ev = self.q("SELECT e.event_id, e.occurrences, sum(ea.occurrences) FROM events e "
                        "JOIN event_alerts ea USING (event_id) WHERE e.account_id LIKE %s "
                        "GROUP BY 1, 2 HAVING e.occurrences <> sum(ea.occurrences)",
                        (f"chaos-{self.run}-%",))
        for r in bad_ev[:5]:
            self.errors.append(f"event {r[0]}: occurrences {r[1]} but its alerts' sum {r[2]}")
        # handled events
        for cid, eid in self.handle_cmds.items():
            r = self.results.get(cid)
            if r is None or r["status"] != "ok":
                self.errors.append(f"event.status handled of {eid} ({cid}): "
                                   f"{r and r['message'] or 'no answer'}")
        hrows = dict(self.q("SELECT event_id, seq FROM handled_events"))
        recs = self.read_topic("events.handled", committed=True)
        keys = Counter()
        seqs = Counter()
        for m in recs:
            d = HANDLED.decode(m.value())
            keys[m.key().decode()] += 1
            seqs[(m.key().decode(), d["seq"])] += 1
        dups = {k: n for k, n in seqs.items() if n > 1}
        missing = set(hrows) - set(keys)
        if dups:
            self.errors.append(f"events.handled: {len(dups)} (event, seq) published more "
                               f"than once, e.g. {list(dups)[:3]}")
        if missing:
            self.errors.append(f"events.handled: {len(missing)} handled events never "
                               f"published, e.g. {sorted(missing)[:3]}")
        self.n_handled = (len(self.handle_cmds), len(hrows), len(recs))
        if any(v for v in self.final_lag.values()):
            self.errors.append(f"consumer lag not zero at the end: {self.final_lag}")
        if self.agent is not None:
            self.reconcile_agent(lost, dup, why)
        self.explain_dups(why, dup)
        for row in self.rows:
            w = row["window"]
            row["lost"], row["dup"] = lost[w], dup[w]
            if why[w]:
                row["notes"] = row["notes"] + why[w][:5] + \
                    ([f"... {len(why[w]) - 5} more"] if len(why[w]) > 5 else [])
        self.totals = (len(ours), sum(sum(c.values()) for c in s.expect.values()),
                       sum(lost.values()), sum(dup.values()))

    def explain_dups(self, why, dup):
        """For duplicated alerts: how many Alert records of each stage's output carried
        them, with which occurrence counts (which stage repeated what)."""
        if not any(dup.values()):
            return
        alert_t = t.AvroType("alert")
        for stage in ("alerts.normalized", "alerts.accepted"):
            recs = defaultdict(list)
            for m in self.read_topic(stage):
                try:
                    d = alert_t.decode(m.value())
                except Exception:  # noqa: BLE001
                    continue
                recs[d["alert_id"]].append(d["occurrences"])
            for w, lines in why.items():
                for i, line in enumerate(lines):
                    aid = line.split(":")[0]
                    if aid.startswith("al-") and "produced" in line:
                        lines[i] = line + f"; {stage} records with occurrences " \
                            f"{sorted(recs.get(aid, []))}"

    def report(self):
        print()
        print(f"== chaos campaign {self.run} ({'long' if self.args.long else 'short'}): "
              f"{self.stream.delivered} records produced at {self.args.rate}/s, "
              f"{self.totals[0]} distinct alerts, {self.n_wl} whitelisted records, "
              f"{len(self.stream.bad)} bad records ({self.dead_letters} dead letters), "
              f"{self.n_handled[0]} events set handled ({self.n_handled[2]} records on "
              f"events.handled)")
        if self.agent is not None:
            print(self.agent_summary)
        print(f"{'fault':<22} {'duration (s)':>12} {'time to ready (s)':>18} {'lost':>6} "
              f"{'duplicated':>10} {'caught up (s)':>13}")
        failed_rows = 0
        for r in self.rows:
            ready = "never" if r["ready"] == float("inf") else f"{r['ready']:.1f}"
            caught = "never" if r["caught"] == float("inf") else f"{r['caught']:.1f}"
            bad = r["lost"] or r["dup"] or r["ready"] > READY_BOUND_S or \
                r["caught"] > self.args.catchup_bound
            failed_rows += bool(bad)
            print(f"{r['fault']:<22} {r['duration']:>12.1f} {ready:>18} {r['lost']:>6} "
                  f"{r['dup']:>10} {caught:>13}  {'FAIL' if bad else 'ok'}")
            for n in r["notes"]:
                print(f"{'':<24}- {n}")
        for e in self.errors:
            print(f"check failed: {e}")
        ok = len(self.rows) - failed_rows
        print(f"chaos: {ok} passed, {failed_rows + len(self.errors)} failed "
              f"(logs: {self.logdir})")
        return 0 if failed_rows == 0 and not self.errors else 1

    def cleanup(self):
        self.results_stop.set()
        for s in self.all_instances() + self.extra:
            if s.alive():
                s.proc.send_signal(signal.SIGTERM)
        for s in self.all_instances() + self.extra:
            if s.proc is not None:
                try:
                    s.proc.wait(20)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                s.close_log()
        subprocess.run(["umount", str(self.exptmp)], capture_output=True)
        try:
            self.exptmp.rmdir()
        except OSError:
            pass
        if self.agent is not None:
            subprocess.run(["umount", "-l", str(self.agstate)], capture_output=True)
            try:
                self.agstate.rmdir()
            except OSError:
                pass
        self.netns_teardown()
        if not self.args.keep:
            t.delete_topics([self.prefix])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    form = ap.add_mutually_exclusive_group()
    form.add_argument("--short", action="store_true", help="a few minutes (default)")
    form.add_argument("--long", action="store_true", help="--minutes of faults, repeated")
    ap.add_argument("--minutes", type=float, default=30, help="--long: duration (30)")
    ap.add_argument("--alerts", type=int, default=None,
                    help="--long: records over the run (200000); sets the rate")
    ap.add_argument("--rate", type=float, default=None, help="records per second")
    ap.add_argument("--faults", default=",".join(ALL_FAULTS),
                    help="comma-separated, of: " + ",".join(ALL_FAULTS))
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--settle", type=float, default=4)
    ap.add_argument("--handled-every", type=float, default=20)
    ap.add_argument("--drain-timeout", type=float, default=240)
    ap.add_argument("--catchup-bound", type=float, default=None,
                    help="seconds after a fault's end by which every group must have "
                         "committed what was produced before it (60; --long 180)")
    ap.add_argument("--tmpfs-kib", type=int, default=2048)
    ap.add_argument("--agent-tmpfs-kib", type=int, default=4096,
                    help="the enforcer agent's state tmpfs (its journal grows ~0.5 KiB an "
                         "action)")
    ap.add_argument("--agent-rate", type=float, default=2.0,
                    help="actions per second sent to the enforcer agent")
    ap.add_argument("--keep", action="store_true", help="keep the run's topics")
    ap.add_argument("--logdir", default=str(REPO / "build" / "chaos"))
    ap.add_argument("--state", default=os.environ.get("CWPP_STATE_DIR", ""))
    a = ap.parse_args()
    a.faults = [f for f in a.faults.split(",") if f]
    unknown = set(a.faults) - set(ALL_FAULTS)
    if unknown:
        ap.error(f"unknown faults {sorted(unknown)}; known: {','.join(ALL_FAULTS)}")
    if a.catchup_bound is None:
        a.catchup_bound = 180.0 if a.long else 60.0
    if a.rate is None:
        a.rate = (a.alerts or 200000) / (a.minutes * 60) if a.long else 100
    if os.environ.get("CWPP_KAFKA_PORT") in (None, "9092") or \
            os.environ.get("CWPP_PG_PORT") in (None, "54329") or not a.state:
        print("campaign: refusing to run on the normal stack's ports or without "
              "CWPP_STATE_DIR: run it through tests/chaos/run", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("campaign: needs root (network namespaces, nftables, tmpfs)", file=sys.stderr)
        return 2
    camp = Campaign(a)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(143)))
    try:
        return camp.main()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("chaos: 0 passed, 1 failed (the campaign itself failed)")
        return 1
    finally:
        camp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
