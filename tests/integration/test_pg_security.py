# SPDX-License-Identifier: Apache-2.0
"""The database side of the deployment's hardening, against the local PostgreSQL:

- TLS: pg.sslmode / CWPP_PG_SSLMODE reaches every connection (a service, cwpp-admin); the
  local server speaks no TLS, so `require` must fail with libpq's clear words, and a DSN
  contradicting the setting stops start-up naming both (libs/pg cwpp_pg_conninfo).
- The activity log is append-only for every role (schemas/sql/019_audit_append_only.sql):
  no service role may UPDATE, DELETE or TRUNCATE it, the superuser is stopped by the
  trigger, only cwpp_retention may DELETE.
- deploy/migrate sets role passwords as SCRAM-SHA-256 verifiers computed on the client:
  the server's statement log shows the verifier, never the password, and logging in with
  the password works afterwards.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_pg_security.py"""
import base64
import hashlib
import hmac
import os
import re
import subprocess
import time
import unicodedata
from pathlib import Path

import psycopg2
import pytest

import cwpp_testlib as t

# Every role a part of the desk logs in as, with its DSN (the local stack's env).
SERVICE_DSNS = {
    "cwpp_ingest": os.environ.get("CWPP_PG_DSN", ""),
    "cwpp_whitelist": os.environ.get("CWPP_PG_DSN_WHITELIST", ""),
    "cwpp_correlator": os.environ.get("CWPP_PG_DSN_CORRELATOR", ""),
    "cwpp_responder": os.environ.get("CWPP_PG_DSN_RESPONDER", ""),
    "cwpp_exporter": os.environ.get("CWPP_PG_DSN_EXPORTER", ""),
    "cwpp_api": os.environ.get("CWPP_PG_DSN_API", ""),
    "cwpp_reader": os.environ.get("CWPP_CTL_PG_DSN", ""),
}
ADMIN = t.BIN / "cwpp-admin"


def env(**kw):
    e = dict(os.environ)
    e.update(kw)
    return e


def verifier(dsn, password, role="cwpp_x", **extra):
    return subprocess.run([str(ADMIN), "pg-verifier", role, "--pg-dsn", dsn],
                          input=password + "\n", capture_output=True, text=True, timeout=30,
                          env=env(**extra))


# ------------------------------------------------------------------------ TLS

# Pins down: sslmode=require against a server without TLS fails, with libpq's reason, for
# a service (retrying, as for any outage) and for cwpp-admin (exit 2).
def test_sslmode_require_fails_clearly_against_a_server_without_tls():
    tcp = SERVICE_DSNS["cwpp_ingest"]
    assert "host=127.0.0.1" in tcp, "the test needs a TCP DSN (TLS is not used on a socket)"
    r = verifier(tcp, "x", CWPP_PG_SSLMODE="require")
    assert r.returncode == 2
    assert "server does not support SSL, but SSL was required" in r.stderr
    p = subprocess.Popen([str(t.BIN / "cwpp-ingest")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=env(CWPP_PG_SSLMODE="require", CWPP_HTTP_PORT="-1",
                                 CWPP_TOPIC_PREFIX=t.new_prefix()))
    seen, deadline = [], time.time() + 20
    try:
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "db_wait" in line:
                break
    finally:
        p.terminate()
        p.wait(20)
    text = "".join(seen)
    assert '"event":"db_wait"' in text and "SSL was required" in text, text


# Pins down: the setting reaches the connection: disable connects, verify-full without a
# CA file fails before any query (a setting dropped on the way would connect).
def test_sslmode_reaches_the_connection():
    tcp = SERVICE_DSNS["cwpp_reader"]
    ok = verifier(tcp, "pw", CWPP_PG_SSLMODE="disable")
    assert ok.returncode == 0 and ok.stdout.startswith("SCRAM-SHA-256$"), ok.stderr
    bad = verifier(tcp, "pw", CWPP_PG_SSLMODE="verify-full",
                   CWPP_PG_SSLROOTCERT="/nonexistent/ca.crt")
    assert bad.returncode == 2 and "cannot connect" in bad.stderr, bad.stderr


# Pins down: a DSN naming another sslmode than pg.sslmode stops start-up (exit 1) naming
# both; an unknown sslmode too; neither silently wins.
def test_dsn_contradicting_the_setting_stops_start_up():
    dsn = SERVICE_DSNS["cwpp_ingest"] + " sslmode=disable"
    for svc in ("cwpp-ingest", "cwpp-exporter"):
        r = subprocess.run([str(t.BIN / svc)], capture_output=True, text=True, timeout=20,
                           env=env(CWPP_PG_DSN=dsn, CWPP_PG_SSLMODE="verify-full",
                                   CWPP_HTTP_PORT="-1"))
        assert r.returncode == 1, r.stderr
        assert "pg.dsn says sslmode=disable but pg.sslmode is \"verify-full\"" in r.stderr
    r = subprocess.run([str(t.BIN / "cwpp-ingest")], capture_output=True, text=True,
                       timeout=20, env=env(CWPP_PG_SSLMODE="verify_full", CWPP_HTTP_PORT="-1"))
    assert r.returncode == 1 and "pg.sslmode \"verify_full\"" in r.stderr
    r = verifier(dsn, "pw", CWPP_PG_SSLMODE="require")
    assert r.returncode == 2 and "pg.dsn says sslmode=disable" in r.stderr


# --------------------------------------------------------------- activity log

def refused(dsn, stmt):
    """The error psycopg2 raises for stmt run as dsn (None when it ran)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path = cwpp")
            try:
                cur.execute(stmt)
            except psycopg2.Error as e:
                return e
        return None
    finally:
        conn.rollback()
        conn.close()


# Pins down: no service role may change or remove activity-log entries.
@pytest.mark.parametrize("role", sorted(SERVICE_DSNS))
def test_service_roles_cannot_change_the_activity_log(role):
    dsn = SERVICE_DSNS[role]
    assert f"user={role}" in dsn
    for stmt in ("UPDATE activity_log SET remark = 'x' WHERE log_id = -1",
                 "DELETE FROM activity_log WHERE log_id = -1",
                 "DELETE FROM activity_log WHERE false",
                 "TRUNCATE activity_log"):
        e = refused(dsn, stmt)
        assert e is not None, f"{role} may run: {stmt}"
        assert e.pgcode == "42501", f"{role}: {stmt}: {e}"  # insufficient_privilege


# Pins down: the writers keep appending (the rights revoked are only UPDATE, DELETE,
# TRUNCATE).
@pytest.mark.parametrize("role", ["cwpp_whitelist", "cwpp_responder", "cwpp_api"])
def test_writers_still_append(role):
    assert refused(SERVICE_DSNS[role], "INSERT INTO activity_log (actor, object_type, "
                   "object_id, action) VALUES ('t', 't', 't', 'test')") is None


# Pins down: the exporter, which no longer may delete the log, refuses the option that
# asked it to (instead of failing every clean-up run).
def test_exporter_refuses_deleting_the_activity_log():
    r = subprocess.run([str(t.BIN / "cwpp-exporter")], capture_output=True, text=True,
                       timeout=20, env=env(CWPP_RETENTION_KEEP_ACTIVITY_LOG="false",
                                           CWPP_HTTP_PORT="-1"))
    assert r.returncode == 1
    assert "retention.keep.activity.log" in r.stderr and "cwpp_retention" in r.stderr


# Pins down: the catalog agrees: nobody but the owner holds UPDATE/DELETE/TRUNCATE, and
# cwpp_retention only DELETE; cwpp_retention cannot log in by default.
def test_catalog_holds_no_other_write_right():
    rows = t.query("SELECT a.grantee::regrole::text, a.privilege_type FROM pg_class c, "
                   "aclexplode(c.relacl) a WHERE c.oid = 'cwpp.activity_log'::regclass AND "
                   "a.grantee <> c.relowner AND a.privilege_type IN ('UPDATE', 'DELETE', "
                   "'TRUNCATE')")
    assert rows == [("cwpp_retention", "DELETE")]
    assert t.query("SELECT count(*) FROM pg_attribute WHERE attrelid = "
                   "'cwpp.activity_log'::regclass AND attacl IS NOT NULL")[0][0] == 0
    assert t.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'cwpp_retention'") == \
        [(False,)]


# Pins down: the trigger binds the superuser too; only cwpp_retention may DELETE, and
# nobody may UPDATE or TRUNCATE.
def test_trigger_binds_everyone_but_retention_deletes():
    admin = t.ADMIN_DSN
    for stmt in ("UPDATE activity_log SET remark = 'x' WHERE false",
                 "DELETE FROM activity_log WHERE false", "TRUNCATE activity_log"):
        e = refused(admin, stmt)
        assert e is not None and "activity_log is append-only" in str(e), stmt
    conn = psycopg2.connect(admin)
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path = cwpp")
            cur.execute("INSERT INTO activity_log (actor, object_type, object_id, action) "
                        "VALUES ('t', 't', 'retention-test', 'old') RETURNING log_id")
            (lid,) = cur.fetchone()
            cur.execute("SET ROLE cwpp_retention")
            cur.execute("DELETE FROM activity_log WHERE log_id = %s", (lid,))
            assert cur.rowcount == 1
            for stmt in ("UPDATE activity_log SET remark = 'x' WHERE false",
                         "TRUNCATE activity_log"):
                cur.execute("SAVEPOINT s")
                with pytest.raises(psycopg2.Error):
                    cur.execute(stmt)
                cur.execute("ROLLBACK TO SAVEPOINT s")
    finally:
        conn.rollback()
        conn.close()


# ------------------------------------------------------------- role passwords

def check_scram(v, password):
    """The verifier's StoredKey and ServerKey as RFC 5802 / 7677 derive them (an
    implementation independent of libpq's)."""
    m = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):"
                     r"([A-Za-z0-9+/=]+)", v)
    assert m, v
    it, salt = int(m.group(1)), base64.b64decode(m.group(2))
    salted = hashlib.pbkdf2_hmac("sha256", unicodedata.normalize("NFKC", password).encode(),
                                 salt, it)
    client = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(m.group(3)) == hashlib.sha256(client).digest()
    assert base64.b64decode(m.group(4)) == hmac.new(salted, b"Server Key",
                                                    hashlib.sha256).digest()


# Pins down: cwpp-admin pg-verifier prints a real SCRAM-SHA-256 verifier, salted afresh.
def test_pg_verifier_is_scram_sha_256():
    a = verifier(t.ADMIN_DSN, "correct horse battery staple")
    b = verifier(t.ADMIN_DSN, "correct horse battery staple")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    check_scram(a.stdout.strip(), "correct horse battery staple")
    assert a.stdout != b.stdout  # a fresh salt each time
    r = subprocess.run([str(ADMIN), "pg-verifier", "cwpp_x"], input="", capture_output=True,
                       text=True, env=env())
    assert r.returncode == 1


# Pins down: migrate sends verifiers, never the passwords (the server's statement log,
# with log_statement=all for its sessions, holds neither the password nor anything but
# 'SCRAM-SHA-256$' after PASSWORD); the roles log in with their passwords afterwards.
# The passwords set are the stack's own (roles are shared by every database of the server).
def test_migrate_never_sends_a_password_in_clear():
    log = Path(os.environ.get("CWPP_STATE_DIR", "/nonexistent")) / "run" / "pg.log"
    if not os.access(log, os.R_OK):
        pytest.skip(f"the server log {log} is not readable here")
    passwords = {r: os.environ.get("CWPP_PG_PASSWORD_" + r.upper(), "")
                 for r in ("ingest", "whitelist", "correlator", "responder", "exporter",
                           "reader", "api")}
    assert all(passwords.values()), "the local stack's env sets every password"
    start = log.stat().st_size
    r = subprocess.run([str(t.REPO / "deploy" / "migrate")], capture_output=True, text=True,
                       timeout=120, env=env(PGOPTIONS="-c log_statement=all",
                                            CWPP_ADMIN_BIN=str(ADMIN)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("password set for") == 7, r.stdout
    time.sleep(0.5)
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    alters = re.findall(r"ALTER ROLE \"?(cwpp_\w+)\"? LOGIN PASSWORD '([^']*)'", text)
    assert {a for a, _ in alters} >= {"cwpp_" + r for r in passwords}, text[-2000:]
    for role, v in alters:
        assert v.startswith("SCRAM-SHA-256$"), (role, v)
        if role[5:] in passwords:
            check_scram(v, passwords[role[5:]])
    for pw in passwords.values():
        assert pw not in text
    for role, dsn in SERVICE_DSNS.items():
        assert t.query("SELECT current_user", dsn=dsn) == [(role,)]
