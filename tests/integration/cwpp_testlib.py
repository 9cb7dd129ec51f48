# SPDX-License-Identifier: Apache-2.0
"""Helpers for the integration tests: run our services as real processes against the
local Kafka broker and PostgreSQL server, read topics with a third-party client
(confluent-kafka) and decode Avro with a third-party library (python3-avro) from the
schema files alone."""
import atexit
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import avro.io
import avro.schema
import psycopg2
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CWPP_BIN_DIR", REPO / "build" / "bin"))
BROKERS = os.environ.get("CWPP_KAFKA_BROKERS", "127.0.0.1:9092")
ADMIN_DSN = os.environ.get("CWPP_PG_ADMIN_DSN", "")
INGEST_DSN = os.environ.get("CWPP_PG_DSN", "")
WHITELIST_DSN = os.environ.get("CWPP_PG_DSN_WHITELIST", "")
CTL_DSN = os.environ.get("CWPP_CTL_PG_DSN", "")
CORRELATOR_DSN = os.environ.get(
    "CWPP_PG_DSN_CORRELATOR",
    INGEST_DSN.replace("user=cwpp_ingest", "user=cwpp_correlator")
              .replace("password=cwpp-dev-ingest", "password=cwpp-dev-correlator"))
RESPONDER_DSN = os.environ.get(
    "CWPP_PG_DSN_RESPONDER",
    INGEST_DSN.replace("user=cwpp_ingest", "user=cwpp_responder")
              .replace("password=cwpp-dev-ingest", "password=cwpp-dev-responder"))
EXPORTER_DSN = os.environ.get(
    "CWPP_PG_DSN_EXPORTER",
    INGEST_DSN.replace("user=cwpp_ingest", "user=cwpp_exporter")
              .replace("password=cwpp-dev-ingest", "password=cwpp-dev-exporter"))
API_DSN = os.environ.get(
    "CWPP_PG_DSN_API",
    INGEST_DSN.replace("user=cwpp_ingest", "user=cwpp_api")
              .replace("password=cwpp-dev-ingest", "password=cwpp-dev-api"))

# Kafka authentication (docs/kafka-security.md): with CWPP_KAFKA_SASL on (deploy/local/env's
# default) every client authenticates with SCRAM-SHA-512 as a principal of its own: the
# test's own clients (python Producer/Consumer/AdminClient, cwpp-admin) as cwpp-admin,
# each service a test starts as its service's principal. The one place that says how.
KAFKA_SASL = os.environ.get("CWPP_KAFKA_SASL", "1") != "0"
# service binary name -> principal name (cwpp-<name>)
PRINCIPALS = {"whitelist-filter": "whitelist"}


def kafka_password(name: str) -> str:
    return os.environ.get(f"CWPP_KAFKA_PASSWORD_{name.upper()}", f"cwpp-dev-kafka-{name}")


def kafka_auth(name: str = "admin") -> dict:
    """librdkafka settings of principal cwpp-<name> ({} with SASL off)."""
    if not KAFKA_SASL:
        return {}
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": f"cwpp-{name}", "sasl.password": kafka_password(name)}


def kafka_env(name: str = "admin") -> dict:
    """The same as the CWPP_KAFKA_* environment of a service or of cwpp-admin."""
    a = kafka_auth(name)
    return {"CWPP_KAFKA_SECURITY_PROTOCOL": a["security.protocol"],
            "CWPP_KAFKA_SASL_MECHANISM": a["sasl.mechanisms"],
            "CWPP_KAFKA_SASL_USERNAME": a["sasl.username"],
            "CWPP_KAFKA_SASL_PASSWORD": a["sasl.password"]} if a else {}


# every python client of the tests: cwpp-admin (a super user)
KAFKA_AUTH = kafka_auth("admin")


def admin_env() -> dict:
    """This process's environment plus cwpp-admin's Kafka credentials (for tools)."""
    return dict(os.environ, **kafka_env("admin"))


def admin_tool(*args, timeout=60):
    """cwpp-admin ARGS as the admin principal; raises on failure."""
    return subprocess.run([str(BIN / "cwpp-admin"), *args], check=True, capture_output=True,
                          timeout=timeout, env=admin_env())


def cwppctl(prefix, *args, actor="alice", timeout=60, env=None, api=None):
    """Runs build/bin/cwppctl as actor against cwpp-api (api, else the one of prefix,
    started on first use: api_for); returns (exit code, stdout, stderr). The actor's
    token comes from Api.token (a user the test did not make is made an admin there).
    actor=None runs without a token."""
    api = api or api_for(prefix)
    e = dict(os.environ)
    for k in ("CWPP_CTL_PG_DSN", "CWPP_ACTOR", "CWPP_API_TOKEN"):
        e.pop(k, None)
    e.update({"CWPP_API_URL": api.url, "XDG_CONFIG_HOME": str(api.tmp / "xdg")})
    if actor is not None:
        e["CWPP_API_TOKEN"] = api.token(actor)
    if env:
        e.update(env)
    p = subprocess.run([str(BIN / "cwppctl"), *args], env=e, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def cwppctl_json(prefix, *args, **kw):
    rc, out, err = cwppctl(prefix, "--json", *args, **kw)
    assert out.strip(), f"cwppctl {args} printed nothing (rc {rc}): {err}"
    return rc, json.loads(out), err


# ----------------------------------------------------------------- Avro (third party)

_EMPTY = 0xC15D213AA4D7A795
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it."""
    fp = _EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


class AvroType:
    """A schema from schemas/NAME.avsc, parsed by python3-avro."""

    def __init__(self, name):
        self.name = name
        self.schema = avro.schema.parse((REPO / "schemas" / f"{name}.avsc").read_text())
        self.fingerprint = crc64_avro(self.schema.canonical_form.encode())
        self.reader = avro.io.DatumReader(self.schema)

    def decode(self, msg: bytes) -> dict:
        """Decodes Avro single-object encoding: C3 01, 8-byte LE fingerprint, datum."""
        assert msg[:2] == b"\xc3\x01", "no single-object marker"
        (fp,) = struct.unpack("<Q", msg[2:10])
        assert fp == self.fingerprint, f"fingerprint {fp:016x} != {self.fingerprint:016x}"
        buf = io.BytesIO(msg[10:])
        datum = self.reader.read(avro.io.BinaryDecoder(buf))
        assert buf.tell() == len(msg) - 10, "trailing bytes after the datum"
        return datum

    def encode(self, datum: dict) -> bytes:
        """Avro single-object encoding of datum (what our services read). An Action
        without a "signature" key is signed with the session's test key first."""
        if self.name == "action" and "signature" not in datum:
            datum = sign_action(datum)
        # a field the caller left out takes the schema's default, as a writer of an
        # older version of the schema would send (python3-avro refuses a missing field)
        missing = {f.name: f.default for f in self.schema.fields
                   if f.name not in datum and f.has_default}
        if missing:
            datum = dict(datum, **missing)
        buf = io.BytesIO()
        avro.io.DatumWriter(self.schema).write(datum, avro.io.BinaryEncoder(buf))
        return b"\xc3\x01" + struct.pack("<Q", self.fingerprint) + buf.getvalue()


# -------------------------------------------------------------- action signing
# One Ed25519 pair per test session (docs/actions.md "Signatures"): the responder signs
# with its secret file, every enforcer verifies with its public file (Service sets both),
# and the test side signs the Actions it sends as the responder would.

SIGN_FIELDS = ("action_id", "task_id", "policy_id", "event_id", "account_id", "asset_id",
               "action", "params_json", "key_id")
_SIGNING = {}


def action_canonical(rec: dict) -> bytes:
    """The canonical bytes of an Action: what its signature covers."""
    out = b"cwpp-action-sig-v1\x00"
    for f in SIGN_FIELDS:
        s = rec.get(f, "").encode()
        out += struct.pack(">I", len(s)) + s
    return out + struct.pack(">iqq", rec["attempt"], rec["issued_at_ms"], rec["deadline_ms"])


def key_id_of(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def write_key_pair(directory, seed: bytes = None):
    """Writes action-signing.key (0600) and action-signing.pub into directory, as
    cwpp-admin keys generate does; returns (private key, key path, pub path)."""
    import base64
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    seed = seed or os.urandom(32)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    kp, pp = d / "action-signing.key", d / "action-signing.pub"
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, base64.b64encode(seed) + b"\n")
    os.close(fd)
    os.chmod(kp, 0o600)
    pp.write_bytes(base64.b64encode(pub) + b"\n")
    return key, kp, pp


def signing_keys():
    """The session's (private key, key file, public file), made at first use."""
    if not _SIGNING:
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="cwpp-it-keys-")
        atexit.register(shutil.rmtree, d, True)
        _SIGNING["pair"] = write_key_pair(d)
    return _SIGNING["pair"]


def sign_action(rec: dict, key=None) -> dict:
    """rec with key_id and signature set by key (default: the session's)."""
    from cryptography.hazmat.primitives import serialization
    key = key or signing_keys()[0]
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    rec = dict(rec, key_id=key_id_of(pub))
    rec["signature"] = key.sign(action_canonical(rec))
    return rec


# ----------------------------------------------------------------------- Kafka

def new_prefix() -> str:
    return f"it{uuid.uuid4().hex[:10]}."


# Every prefix create_topics made, in order: conftest deletes a test's topics when the
# test (or, for module fixtures, the module) ends, so one run leaves the broker as small
# as it found it. Thousands of left-over partitions exhaust a small broker's heap.
CREATED_PREFIXES = []


def create_topics(prefix: str, partitions: int = 3):
    CREATED_PREFIXES.append(prefix)
    admin_tool("topics", "create", "--brokers", BROKERS, "--prefix", prefix,
               "--partitions", str(partitions))
    create_acls(prefix)


def create_acls(prefix: str):
    """The services' ACLs on prefix's topics, and on the groups named after it (the tests'
    group ids are <prefix><something>); nothing with SASL off."""
    if not KAFKA_SASL:
        return
    admin_tool("acls", "--brokers", BROKERS, "--prefix", prefix, "--group-prefix", prefix)
    # the controller commits them before the broker's authorizer has them (a moment
    # later): wait until a principal sees its topic, so no client meets a stale denial
    topic = prefix + "alerts.raw"
    deadline = time.time() + 30
    while True:
        p = Producer({**kafka_auth("ingest"), "bootstrap.servers": BROKERS})
        try:
            if p.list_topics(topic, timeout=5).topics[topic].error is None:
                return
        except Exception:  # noqa: BLE001 - retried until the deadline
            pass
        if time.time() > deadline:
            raise AssertionError(f"the ACLs of {prefix} did not reach the broker in 30 s")
        time.sleep(0.2)


def delete_topics(prefixes):
    """Deletes every topic whose name starts with one of prefixes (best effort: a topic
    that is already gone, or a broker that does not answer, is not a test failure)."""
    prefixes = tuple(prefixes)
    if not prefixes:
        return
    admin = AdminClient({**KAFKA_AUTH, "bootstrap.servers": BROKERS})
    try:
        names = [n for n in admin.list_topics(timeout=15).topics if n.startswith(prefixes)]
        if names:
            for f in admin.delete_topics(names, operation_timeout=30).values():
                try:
                    f.result(timeout=60)
                except Exception:  # noqa: BLE001 - cleanup only
                    pass
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def produce(topic: str, values, keys=None, config=None):
    p = Producer({**KAFKA_AUTH, "bootstrap.servers": BROKERS, "linger.ms": 5, "enable.idempotence": True,
                  **(config or {})})
    for i, v in enumerate(values):
        k = keys[i] if keys else None
        while True:
            try:
                p.produce(topic, value=v, key=k)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(30) == 0


def consume(topic: str, expect: int, timeout: float = 60.0, settle: float = 1.0):
    """All records of topic (from the start) once at least expect arrived, then settle s
    more to catch extras. Returns confluent_kafka Message objects."""
    c = Consumer({**KAFKA_AUTH, "bootstrap.servers": BROKERS, "group.id": "it-reader-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    reached = None
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.append(m)
            if len(out) >= expect and reached is None:
                reached = time.time()
            if reached is not None and time.time() - reached >= settle:
                break
    finally:
        c.close()
    return out


def committed(group: str, topic: str, partitions: int):
    c = Consumer({**KAFKA_AUTH, "bootstrap.servers": BROKERS, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def command_answers(prefix: str, want: dict, timeout: float = 30.0, settle: float = 0.0):
    """The CommandResult records on <prefix>command-results answering the commands of
    want {command id: how many answers}, by command id, once each has them (or timeout s
    passed), then settle s more to catch extra answers."""
    result = AvroType("command_result")
    c = Consumer({**KAFKA_AUTH, "bootstrap.servers": BROKERS, "group.id": "ans-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([prefix + "command-results"])
    got, deadline = {}, time.time() + timeout

    def take(m):
        if m is not None and not m.error():
            r = result.decode(m.value())
            if r["command_id"] in want:
                got.setdefault(r["command_id"], []).append(r)
    try:
        while time.time() < deadline and any(len(got.get(k, [])) < n for k, n in want.items()):
            take(c.poll(0.5))
        end = time.time() + settle
        while time.time() < end:
            take(c.poll(0.5))
    finally:
        c.close()
    return got


def high_watermarks(topic: str, partitions: int):
    c = Consumer({**KAFKA_AUTH, "bootstrap.servers": BROKERS, "group.id": "it-wm-" + uuid.uuid4().hex})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
    finally:
        c.close()


# ---------------------------------------------------------------------- services

def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TcpProxy:
    """A TCP forwarder on loopback between a service and a server (PostgreSQL): cut()
    closes the listener and every connection, as a server that went away; restore()
    listens again on the same port. For outages of one service's dependency without
    touching the shared server."""

    def __init__(self, host, port):
        import threading
        self.target = (host, int(port))
        self.port = free_port()
        self._lock = threading.Lock()
        self._socks = []
        self._listener = None
        self.restore()

    def _listen(self, lsock):
        import threading
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self._lock:
                self._socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self):
        import threading
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", self.port))
        lsock.listen(64)
        self._listener = lsock
        threading.Thread(target=self._listen, args=(lsock,), daemon=True).start()

    def cut(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def dsn(self, dsn):
        """dsn with its host and port replaced by the proxy's."""
        parts = [kv for kv in dsn.split() if not kv.startswith(("host=", "port=", "hostaddr="))]
        return " ".join(["host=127.0.0.1", f"port={self.port}"] + parts)


class Service:
    """One of our services as a real process, with its JSON log captured to a file."""

    def __init__(self, name, prefix, tmp_path, extra_env=None, group=None):
        self.name = name
        self.port = free_port()
        self.log_path = Path(tmp_path) / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.env = dict(os.environ)
        self.env.update({
            "CWPP_KAFKA_BROKERS": BROKERS,
            "CWPP_TOPIC_PREFIX": prefix,
            "CWPP_GROUP_ID": group or f"{prefix}{name}",
            "CWPP_HTTP_PORT": str(self.port),
            "CWPP_HTTP_ADDRESS": "127.0.0.1",
            "CWPP_BATCH_MAX_MS": "20",
            "CWPP_RETRY_MAX_MS": "500",
            "CWPP_KAFKA_PROPERTIES": "session.timeout.ms=6000;heartbeat.interval.ms=500",
            **kafka_env(PRINCIPALS.get(name, name)),
        })
        if name == "responder":
            self.env["CWPP_RESPONDER_SIGNING_KEY_FILE"] = str(signing_keys()[1])
        if name == "enforcer":
            self.env["CWPP_ENFORCER_VERIFY_KEY_FILE"] = str(signing_keys()[2])
        if extra_env:
            self.env.update(extra_env)
        self.proc = None
        self.restarts = 0

    def start(self):
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BIN / f"cwpp-{self.name}")], env=self.env,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        return self

    def http(self, path, timeout=2.0):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e)  # not listening (yet)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                     + self.log_text()[-3000:])
            try:
                if self.http("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready in {timeout}s:\n" + self.log_text()[-3000:])

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._logf.close()

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s")
        finally:
            self._logf.close()
        return rc

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
        return out


# ---------------------------------------------------------------------- database

def metrics(svc):
    """A service's /metrics as {"name{labels}": value} (histogram _sum and _count too)."""
    code, text = svc.http("/metrics")
    assert code == 200
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def db(dsn=None):
    conn = psycopg2.connect(dsn or ADMIN_DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET search_path = cwpp")
    return conn


def query(sql, args=(), dsn=None):
    conn = db(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def wait_for(fn, timeout=60, interval=0.3, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def md5hex(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def with_dbname(dsn: str, name: str) -> str:
    """The same libpq conninfo, on database name."""
    parts = [p for p in dsn.split() if not p.startswith("dbname=")]
    return " ".join(parts + [f"dbname={name}"])


class FreshDatabase:
    """A new, empty database on the local server with every migration applied by the
    real deploy/migrate: for tests that replay a topic "into an empty database"."""

    def __init__(self):
        self.name = "cwpp_it_" + uuid.uuid4().hex[:10]
        query(f'CREATE DATABASE "{self.name}"')
        env = dict(os.environ, CWPP_PG_ADMIN_DSN=with_dbname(ADMIN_DSN, self.name))
        subprocess.run([str(REPO / "deploy" / "migrate")], env=env, check=True,
                       capture_output=True, timeout=120)
        self.admin = with_dbname(ADMIN_DSN, self.name)
        self.correlator = with_dbname(CORRELATOR_DSN, self.name)

    def drop(self):
        conn = psycopg2.connect(ADMIN_DSN)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,))
                cur.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        finally:
            conn.close()


# ------------------------------------------------------------ upstream alert builders
#
# One set of builders for the upstream JSON alerts (docs/alert-format.md) that the tests
# and the benchmarks feed to ingest. NOW is taken once, when the tests are collected, so
# every module's relative times (at()) share one clock, as each module's own NOW did.


NOW = datetime.now(timezone.utc).replace(microsecond=0)


def tag() -> str:
    """A random 8-hex-digit tag: accounts and names of one test that no other test sees."""
    return uuid.uuid4().hex[:8]


def at(minutes_ago: float) -> str:
    """RFC 3339 time (UTC, whole seconds) minutes_ago minutes before NOW."""
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert_doc(account, name, typ, severity, when, asset, role="web", tactic=None,
              defense="none", remote_ip=None, logon=None, file=None, process=None,
              source="ids", asset_ip=None, details=None, technique="T1000"):
    """One upstream alert of the CWPP contract as a dict. asset is an asset id (the asset
    becomes {id, name: id + "-name", ip: asset_ip or 10.0.0.1, role}) or a whole asset
    object used as it is; defense=None leaves the field out; tactic adds attack {tactic,
    technique}; the optional objects are added when given."""
    if isinstance(asset, dict):
        a_obj = asset
    else:
        a_obj = {"id": asset, "name": asset + "-name", "ip": asset_ip or "10.0.0.1",
                 "role": role}
    a = {"name": name, "type": typ, "severity": severity, "occurred_at": when,
         "source": source, "account_id": account, "asset": a_obj}
    if defense is not None:
        a["defense"] = defense
    if tactic:
        a["attack"] = {"tactic": tactic, "technique": technique}
    for k, v in (("remote_ip", remote_ip), ("logon", logon), ("file", file),
                 ("process", process)):
        if v:
            a[k] = v
    if details is not None:
        a["details"] = details
    return a


def alert(*args, **kw) -> bytes:
    """alert_doc(...) as the JSON bytes of one Kafka message."""
    return json.dumps(alert_doc(*args, **kw)).encode()


def virus_alert(name, account, asset="i-1", path="/tmp/x", md5=None, minute=0,
                defense="none", details=None, typ="virus", severity="high") -> bytes:
    """One virus-scan alert on an application server, at 2026-11-27 10:00 + minute.
    Virus alerts are "the same" when asset, path and md5 match, so a different path is a
    different alert; md5 defaults to the path's."""
    when = "2026-11-27T%02d:%02d:00Z" % (10 + minute // 60, minute % 60)
    return alert(account, name, typ, severity, when, asset, role="application",
                 asset_ip="10.0.0.7", defense=defense, source="virus_scan",
                 file={"path": path, "md5": md5 or md5hex(path)}, details=details or {})


def make_user(name, *accounts, role="analyst", disabled=False, dsn=None):
    """Makes name a user (docs/commands.md: every command's actor is a known, enabled user
    holding permission on the account it acts on; an admin holds every account) with
    role, permission on accounts, and enabled unless disabled, by direct SQL as the
    database owner (dsn: ADMIN_DSN). An existing user takes the role and state given and
    keeps its other accounts. Returns name."""
    conn = db(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users (user_name, display_name, role, created_by, "
                        "disabled_at) VALUES (%s, %s, %s, 'tests', CASE WHEN %s THEN now() "
                        "END) ON CONFLICT (user_name) DO UPDATE SET role = EXCLUDED.role, "
                        "disabled_at = EXCLUDED.disabled_at",
                        (name, name + " (tests)", role, disabled))
            for account in accounts:
                cur.execute("INSERT INTO user_accounts (user_name, account_id, granted_by) "
                            "VALUES (%s, %s, 'tests') ON CONFLICT DO NOTHING", (name, account))
    finally:
        conn.close()
    return name


# ------------------------------------------------------------------------ cwpp-api


def dbname_of(dsn: str) -> str:
    for part in dsn.split():
        if part.startswith("dbname="):
            return part[len("dbname="):]
    return "cwpp"


def raw_request(url, method, path, headers=None):
    """(status, headers, body) of method path sent verbatim to the plain-HTTP server at url
    (no client-side cleaning of the path, unlike a browser or urllib)."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


class Api:
    """cwpp-api as a real process on topic prefix and database dsn (default the API role
    on the test database), plain HTTP on a free loopback port (TLS is tested on its own),
    with cheap Argon2id parameters unless extra_env says otherwise. .url, .token(user),
    .request/.get/.post/.delete, .stop(). tls=(certificate file, key file) serves HTTPS
    instead, with Secure cookies, and .request trusts that certificate alone (the
    console's browser tests)."""

    def __init__(self, prefix, dsn=None, extra_env=None, tmp=None, tls=None):
        import ssl
        import tempfile
        self.prefix = prefix
        self.dsn = dsn or API_DSN
        self.admin_dsn = with_dbname(ADMIN_DSN, dbname_of(self.dsn))
        self.port = free_port()
        self.url = f"http{'s' if tls else ''}://127.0.0.1:{self.port}"
        self.ssl = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        self.tmp = Path(tmp or tempfile.mkdtemp(prefix="cwpp-api-"))
        self.log_path = self.tmp / f"api-{uuid.uuid4().hex[:6]}.log"
        self.env = dict(os.environ)
        self.env.update({
            "CWPP_KAFKA_BROKERS": BROKERS, "CWPP_TOPIC_PREFIX": prefix,
            **kafka_env("api"),
            "CWPP_PG_DSN": self.dsn, "CWPP_API_ADDRESS": "127.0.0.1",
            "CWPP_API_PORT": str(self.port), "CWPP_HTTP_PORT": str(free_port()),
            "CWPP_API_COOKIE_SECURE": "0", "CWPP_API_ARGON2_OPSLIMIT": "1",
            "CWPP_API_ARGON2_MEMLIMIT_KIB": "8192", "CWPP_API_COMMAND_TIMEOUT_MS": "30000",
        })
        if tls:
            self.env.update({"CWPP_API_TLS_CERT_FILE": str(tls[0]),
                             "CWPP_API_TLS_KEY_FILE": str(tls[1]),
                             "CWPP_API_COOKIE_SECURE": "1"})
        if extra_env:
            self.env.update(extra_env)
        self.tokens = {}
        # the API reads <prefix>command-results: make sure the topics exist, but leave
        # their deletion to whoever made the prefix (a module's topics recorded again
        # inside one test would be deleted when that test ends)
        if prefix in CREATED_PREFIXES:
            admin_tool("topics", "create", "--brokers", BROKERS, "--prefix", prefix)
        else:
            create_topics(prefix)
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BIN / "cwpp-api")], env=self.env, stdout=self._logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"cwpp-api exited with {self.proc.returncode}:\n"
                                     + self.log_path.read_text()[-3000:])
            try:
                if self.request("GET", "/readyz", raw=True)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError("cwpp-api not ready:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.2)

    def token(self, user, role="admin"):
        """A bearer token for user, inserted straight into api_tokens (an hour). A user
        that does not exist yet is made with role (admin: sees every account); tests of
        permissions make their users with make_user first."""
        if user in self.tokens:
            return self.tokens[user]
        conn = db(self.admin_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO users (user_name, display_name, role, created_by) "
                            "VALUES (%s, %s, %s, 'tests-api-token') ON CONFLICT DO NOTHING",
                            (user, user + " (tests)", role))
                tid = uuid.uuid4().hex[:16]
                secret = uuid.uuid4().hex + uuid.uuid4().hex
                cur.execute("INSERT INTO api_tokens (token_id, user_name, kind, name, secret_hash,"
                            " expires_at) VALUES (%s, %s, 'token', 'tests', %s, "
                            "now() + interval '1 hour')",
                            (tid, user, hashlib.sha256(secret.encode()).digest()))
        finally:
            conn.close()
        self.tokens[user] = f"cwpp_{tid}_{secret}"
        return self.tokens[user]

    def request(self, method, path, body=None, user=None, token=None, headers=None,
                raw=False, data=None, timeout=60):
        """(status, JSON document or bytes, headers) of method path; body is sent as JSON
        (data: raw bytes instead); user or token authenticates."""
        h = dict(headers or {})
        if user is not None:
            token = self.token(user)
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ssl) as r:
                status, payload, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, payload, hdrs = e.code, e.read(), e.headers
        if not raw and payload and "json" in (hdrs.get("Content-Type") or ""):
            payload = json.loads(payload)
        return status, payload, hdrs

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        if body is None and kw.get("data") is None:
            body = {}
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._logf.close()
        return self.proc.returncode


_APIS = {}


def api_for(prefix, dsn=None):
    """The cwpp-api of (prefix, dsn), started on first use and stopped when the tests end."""
    key = (prefix, dsn)
    if key not in _APIS or _APIS[key].proc.poll() is not None:
        _APIS[key] = Api(prefix, dsn)
    return _APIS[key]


def stop_apis_of(prefixes):
    """Stops the cwpp-api of each of prefixes that api_for started: before the prefix's
    topics are deleted (one whose command-results topic vanished under it takes more
    than 10 s to stop)."""
    gone = [k for k in _APIS if k[0] in set(prefixes)]
    for k in gone:
        if _APIS[k].proc.poll() is None:
            _APIS[k].proc.send_signal(signal.SIGTERM)
    for k in gone:
        _APIS.pop(k).stop(10)


@atexit.register
def _stop_apis():
    """Stops every module's cwpp-api at once: SIGTERM to all, then the waits (one by one,
    each up to 10 s, they added minutes to the end of a run)."""
    apis = [a for a in _APIS.values() if a.proc.poll() is None]
    for a in apis:
        a.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    for a in apis:
        try:
            a.stop(max(0.1, deadline - time.time()))
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
