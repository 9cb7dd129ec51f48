# SPDX-License-Identifier: Apache-2.0
"""cwpp-api's identity and its route table against the real stack: nobody acts without
logging in, sessions need their CSRF token, failed logins are throttled and lock the user,
passwords are Argon2id with the configured parameters and never logged, every login and
token change is in the activity log, the first admin comes from cwpp-admin, and every
route of docs/api/openapi.yaml answers as documented to the anonymous, to viewers and to
hostile input."""
import json
import re
import ssl
import subprocess
import urllib.request

import pytest
import yaml

import cwpp_testlib as t

DOC = yaml.safe_load((t.REPO / "docs" / "api" / "openapi.yaml").read_text())
SUFFIX = t.tag()  # the shared database keeps users between runs
ITVIEWER = "itviewer" + SUFFIX
ITTOK = "ittok" + SUFFIX
ITOTHER = "itother" + SUFFIX
ITLOGIN = "itlogin" + SUFFIX
ITLOCK = "itlock" + SUFFIX
ITARGON = "itargon" + SUFFIX
ITCMD = "itcmd" + SUFFIX
ITTLS = "ittls" + SUFFIX
SELF_CHANGES = {("post", "/api/v1/logout"), ("post", "/api/v1/me/password"),
                ("post", "/api/v1/tokens"), ("delete", "/api/v1/tokens/{id}")}


@pytest.fixture(scope="module")
def api():
    prefix = t.new_prefix()
    t.create_topics(prefix)
    # no service answers commands on this prefix: a change waits 1 s for its answer,
    # then answers 202 (a documented status), not the default 15 s
    a = t.Api(prefix, extra_env={"CWPP_API_COMMAND_TIMEOUT_MS": "1000"})
    yield a
    a.stop()
    t.delete_topics([prefix])


def routes():
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "delete"):
                yield method, path, op


def concrete(path):
    return re.sub(r"\{[^}]+\}", "x0", path)


def set_password(user, password, dsn=None):
    p = subprocess.run([str(t.BIN / "cwpp-admin"), "users", "password", user, "--pg-dsn",
                        dsn or t.ADMIN_DSN], input=password + "\n", capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def login(api, user, password):
    return api.post("/api/v1/login", {"username": user, "password": password})


def log_actions(user):
    return [r[0] for r in t.query("SELECT action FROM activity_log WHERE object_type = 'user' "
                                  "AND object_id = %s ORDER BY log_id", (user,))]


# ------------------------------------------------------------------ the route table


def test_every_route_but_the_public_ones_answers_401_without_a_token(api):
    seen = 0
    for method, path, op in routes():
        status, doc, _ = api.request(method.upper(), concrete(path),
                                     body={} if method == "post" else None)
        if op.get("security") == []:
            assert status != 401, (method, path)
            continue
        assert status == 401, (method, path, status, doc)
        assert doc["code"] == "unauthorized" and doc["status"] == 401
        seen += 1
    assert seen >= 8


def test_every_route_answers_one_of_its_documented_statuses(api):
    for method, path, op in routes():
        if (method, path) == ("post", "/api/v1/logout"):
            continue  # would end the session the other calls use
        status, doc, hdrs = api.request(method.upper(), concrete(path),
                                        body={} if method == "post" else None, user="itadmin")
        assert str(status) in op["responses"], (method, path, status, doc)
        if status >= 400:
            assert hdrs["Content-Type"] == "application/problem+json", (method, path)
            assert {"type", "title", "status", "detail", "code"} <= set(doc), (method, path)


def test_a_viewer_changes_nothing(api):
    t.make_user(ITVIEWER, "acct-a", role="viewer")
    for method, path, op in routes():
        if method == "get" or op.get("security") == [] or (method, path) in SELF_CHANGES:
            continue
        status, doc, _ = api.request(method.upper(), concrete(path), body={}, user=ITVIEWER)
        assert status == 403, (method, path, status, doc)
        assert doc["code"] == "forbidden"


def test_unknown_paths_methods_and_hostile_input_are_clear_problems(api):
    assert api.get("/api/v1/nope", user="itadmin")[0] == 404
    # an id smuggling slashes is no route at all; one without them is no such token
    st, doc, _ = api.delete("/api/v1/tokens/..%2F..%2Fetc%2Fpasswd", user="itadmin")
    assert st == 404 and doc["code"] == "not_found"
    st, doc, _ = api.delete("/api/v1/tokens/..%5C..%5Cetc", user="itadmin")
    assert st == 404 and doc["code"] == "not_found"
    assert api.get("/api/v1/tokens/x0", user="itadmin")[0] == 405
    # an id echoed in the problem and cut mid-character still gives a JSON problem
    st, doc, _ = api.delete("/api/v1/tokens/" + "a" * 127 + "%C3%A9%C3%A9", user="itadmin")
    assert st == 404 and doc["code"] == "not_found" and doc["detail"].count("a") >= 127
    assert api.request("PUT", "/api/v1/me", user="itadmin")[0] == 405
    st, doc, _ = api.post("/api/v1/tokens", user="itadmin", data=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert st == 400 and doc["code"] == "bad_json"
    st, doc, _ = api.post("/api/v1/tokens", {"name": "x", "actor": "admin"}, user="itadmin")
    assert st == 400 and doc["code"] == "unknown_field" and "actor" in doc["detail"]
    st, doc, _ = api.post("/api/v1/tokens", user="itadmin", data=b"x" * (2 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
    assert st == 413 and doc["code"] == "too_large"
    st, doc, _ = api.post("/api/v1/tokens", user="itadmin", data=b'{"name": "x"}',
                          headers={"Content-Type": "text/plain"})
    assert st == 415
    st, doc, _ = api.get("/api/v1/me?x=1%27%3BDROP%20TABLE%20users%3B--", user="itadmin")
    assert st == 400 and doc["code"] == "unknown_parameter"
    assert t.query("SELECT count(*) FROM users")[0][0] > 0
    assert api.get("/healthz")[0] == 200 and api.get("/readyz", raw=True)[0] == 200


# --------------------------------------------------------------------- tokens


def test_expired_revoked_malformed_and_disabled_tokens_are_refused(api):
    t.make_user(ITTOK, "acct-a")
    tok = api.token(ITTOK)
    assert api.get("/api/v1/me", token=tok)[0] == 200
    tid = tok.split("_")[1]
    t.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' "
            "WHERE token_id = %s", (tid,))
    st, doc, hdrs = api.get("/api/v1/me", token=tok)
    assert st == 401 and "expired" in doc["detail"] and hdrs["WWW-Authenticate"]
    for bad in ("cwpp_", tok[:-1] + ("0" if tok[-1] != "0" else "1"), "x" * 300, "Basic abc"):
        assert api.get("/api/v1/me", token=bad)[0] == 401
    # a token of one's own: issued once, then revoked
    st, issued, _ = api.post("/api/v1/tokens", {"name": "ci", "expires_in_s": 3600},
                             user="itadmin")
    assert st == 201 and issued["token"].startswith("cwpp_" + issued["token_id"])
    assert api.get("/api/v1/me", token=issued["token"])[1]["user"] == "itadmin"
    listed = api.get("/api/v1/tokens", user="itadmin")[1]["tokens"]
    assert all("token" not in x and "secret_hash" not in x for x in listed)
    assert issued["token_id"] in [x["token_id"] for x in listed]
    assert api.delete("/api/v1/tokens/" + issued["token_id"], user="itadmin")[0] == 200
    assert api.get("/api/v1/me", token=issued["token"])[0] == 401
    assert {"token_issued", "token_revoked"} <= set(log_actions("itadmin"))
    # another user's token is not found, not forbidden
    st, mine, _ = api.post("/api/v1/tokens", {"name": "other"}, user="itadmin")
    t.make_user(ITOTHER, "acct-b")
    assert api.delete("/api/v1/tokens/" + mine["token_id"], user=ITOTHER)[0] == 404
    assert api.get("/api/v1/me", token=mine["token"])[0] == 200
    # a disabled user's tokens stop working
    t.make_user(ITTOK, "acct-a", disabled=True)
    assert api.get("/api/v1/me", token=api.token(ITTOK))[0] == 401


# ------------------------------------------------------------ login and sessions


def test_login_session_cookie_and_csrf(api):
    t.make_user(ITLOGIN, "acct-a")
    set_password(ITLOGIN, "correct horse battery")
    st, doc, hdrs = login(api, ITLOGIN, "correct horse battery")
    assert st == 200 and doc["user"] == ITLOGIN
    cookie = hdrs["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    sess = cookie.split(";")[0]
    me = api.get("/api/v1/me", headers={"Cookie": sess})[1]
    assert me["via"] == "session" and me["csrf_token"] == doc["csrf_token"]
    # a change with the cookie needs the session's CSRF token
    st, prob, _ = api.post("/api/v1/tokens", {"name": "x"}, headers={"Cookie": sess})
    assert st == 403 and prob["code"] == "csrf"
    st, _, _ = api.post("/api/v1/tokens", {"name": "x"},
                        headers={"Cookie": sess, "X-CSRF-Token": "0" * 64})
    assert st == 403
    st, _, _ = api.post("/api/v1/tokens", {"name": "x"},
                        headers={"Cookie": sess, "X-CSRF-Token": doc["csrf_token"]})
    assert st == 201
    # the bearer form of the same session needs no CSRF token (no ambient credential)
    assert api.post("/api/v1/tokens", {"name": "y"}, token=doc["token"])[0] == 201
    st, _, hdrs = api.post("/api/v1/logout", headers={"Cookie": sess,
                                                       "X-CSRF-Token": doc["csrf_token"]})
    assert st == 200 and "Max-Age=0" in hdrs["Set-Cookie"]
    assert api.get("/api/v1/me", headers={"Cookie": sess})[0] == 401
    assert {"login", "logout", "token_issued"} <= set(log_actions(ITLOGIN))
    assert "correct horse battery" not in api.log_text()


def test_failed_logins_lock_the_user_and_an_admin_reset_unlocks():
    prefix = t.new_prefix()
    a = t.Api(prefix, extra_env={"CWPP_API_LOGIN_MAX_FAILURES": "3",
                                 "CWPP_API_LOGIN_LOCKOUT_S": "600"})
    try:
        t.make_user(ITLOCK, "acct-a")
        set_password(ITLOCK, "the right password")
        for _ in range(3):
            st, doc, _ = login(a, ITLOCK, "a wrong password")
            assert st == 401 and doc["code"] == "unauthorized"
        st, doc, _ = login(a, ITLOCK, "the right password")
        assert st == 401 and doc["code"] == "locked"
        assert log_actions(ITLOCK).count("login_failed") == 3
        # unknown names and wrong passwords get the same answer
        st, unknown, _ = login(a, "nobody-" + t.tag(), "whatever it is")
        assert st == 401 and unknown["detail"] == "The user name or the password is wrong."
        st, reset, _ = a.post("/api/v1/users/" + ITLOCK + "/password", user="itadmin")
        assert st == 200 and len(reset["password"]) >= 20
        assert login(a, ITLOCK, "the right password")[0] == 401
        st, doc, _ = login(a, ITLOCK, reset["password"])
        assert st == 200
        st, _, _ = a.post("/api/v1/me/password", {"current_password": reset["password"],
                                                  "new_password": "short"}, token=doc["token"])
        assert st == 400
        st, _, _ = a.post("/api/v1/me/password", {"current_password": reset["password"],
                                                  "new_password": "a long new password"},
                          token=doc["token"])
        assert st == 200
        assert login(a, ITLOCK, "a long new password")[0] == 200
        assert a.post("/api/v1/users/nobody-x/password", user="itadmin")[0] == 404
        assert "a long new password" not in a.log_text()
        assert reset["password"] not in a.log_text()
    finally:
        a.stop()


def test_logins_from_one_address_are_throttled():
    a = t.Api(t.new_prefix(), extra_env={"CWPP_API_LOGIN_RATE_PER_MIN": "4"})
    try:
        answers = [login(a, "nobody-" + t.tag(), "whatever it is") for _ in range(6)]
        assert [s for s, _, _ in answers[:4]] == [401] * 4
        st, doc, hdrs = answers[4]
        assert st == 429 and doc["code"] == "too_many_attempts" and int(hdrs["Retry-After"]) > 0
    finally:
        a.stop()


def test_argon2id_parameters_come_from_the_configuration_and_are_renewed_on_login():
    t.make_user(ITARGON, "acct-a")
    set_password(ITARGON, "argon password one")  # cwpp-admin: m=19456, t=2
    h = t.query("SELECT password_hash FROM user_credentials WHERE user_name = %s",
                (ITARGON,))[0][0]
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    a = t.Api(t.new_prefix(), extra_env={"CWPP_API_ARGON2_OPSLIMIT": "3",
                                         "CWPP_API_ARGON2_MEMLIMIT_KIB": "12288"})
    try:
        assert login(a, ITARGON, "argon password one")[0] == 200
        h = t.query("SELECT password_hash FROM user_credentials WHERE user_name = %s",
                    (ITARGON,))
        assert h[0][0].startswith("$argon2id$v=19$m=12288,t=3,p=1$")
        assert login(a, ITARGON, "argon password one")[0] == 200
    finally:
        a.stop()


def test_commands_of_others_are_not_found(api):
    t.make_user(ITCMD, "acct-a")
    st, doc, _ = api.get("/api/v1/commands/api-" + "0" * 32, user=ITCMD)
    assert st == 200 and doc["status"] == "pending"
    t.query("INSERT INTO commands_applied (command_id, service, type, actor, status, message) "
            "VALUES (%s, 'responder', 'events.remark', 'someone-else', 'ok', 'done') "
            "ON CONFLICT DO NOTHING", ("api-it-" + t.tag(),))
    cid = t.query("SELECT command_id FROM commands_applied WHERE actor = 'someone-else' "
                  "ORDER BY applied_at DESC LIMIT 1")[0][0]
    assert api.get("/api/v1/commands/" + cid, user=ITCMD)[0] == 404
    assert api.get("/api/v1/commands/" + cid, user="itadmin")[1]["status"] == "ok"


# -------------------------------------------------------- cwpp-admin and cwppctl


def test_bootstrap_makes_the_first_admin_once_and_cwppctl_logs_in():
    fresh = t.FreshDatabase()
    try:
        dsn = t.with_dbname(t.API_DSN, fresh.name)
        p = subprocess.run([str(t.BIN / "cwpp-admin"), "users", "bootstrap", "chief",
                            "--pg-dsn", fresh.admin], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        password = re.search(r"one-time password: (\S+)", p.stdout).group(1)
        again = subprocess.run([str(t.BIN / "cwpp-admin"), "users", "bootstrap", "second",
                                "--pg-dsn", fresh.admin], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode != 0 and "already has an admin" in again.stderr
        a = t.Api(t.new_prefix(), dsn=dsn)
        try:
            env = {"CWPP_API_URL": a.url, "XDG_CONFIG_HOME": str(a.tmp / "xdg-chief")}
            e = dict(t.os.environ, **env)
            e.pop("CWPP_API_TOKEN", None)
            r = subprocess.run([str(t.BIN / "cwppctl"), "login", "--user", "chief"],
                               input=password + "\n", env=e, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stderr
            tokfile = a.tmp / "xdg-chief" / "cwpp" / "token"
            assert oct(tokfile.stat().st_mode & 0o777) == "0o600"
            r = subprocess.run([str(t.BIN / "cwppctl"), "whoami"], env=e, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0 and r.stdout.startswith("chief (admin)"), r.stderr
            assert password not in a.log_text()
            r = subprocess.run([str(t.BIN / "cwppctl"), "logout"], env=e, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0 and not tokfile.exists()
            r = subprocess.run([str(t.BIN / "cwppctl"), "whoami"], env=e, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 1 and "not logged in" in r.stderr
        finally:
            a.stop()
    finally:
        fresh.drop()


def test_tls_with_a_certificate_from_the_configuration(tmp_path):
    key, crt = tmp_path / "api.key", tmp_path / "api.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    # t.Api waits for readiness over plain HTTP: this one is started by hand
    port = t.free_port()
    env = dict(t.os.environ, CWPP_KAFKA_BROKERS=t.BROKERS, CWPP_TOPIC_PREFIX=t.new_prefix(),
               CWPP_PG_DSN=t.API_DSN, CWPP_API_PORT=str(port), CWPP_HTTP_PORT=str(t.free_port()),
               CWPP_API_TLS_CERT_FILE=str(crt), CWPP_API_TLS_KEY_FILE=str(key))
    proc = subprocess.Popen([str(t.BIN / "cwpp-api")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        ctx = ssl.create_default_context(cafile=str(crt))
        url = f"https://127.0.0.1:{port}"

        def ready():
            try:
                with urllib.request.urlopen(url + "/healthz", context=ctx, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        t.wait_for(ready, timeout=30, what="cwpp-api over TLS")
        # plain HTTP on the TLS port is not served
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
        t.make_user(ITTLS, "acct-a")
        set_password(ITTLS, "tls password here")
        req = urllib.request.Request(url + "/api/v1/login", method="POST",
                                     data=json.dumps({"username": ITTLS, "password": "tls password here"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            assert r.status == 200
            assert "Secure" in r.headers["Set-Cookie"]
        # cwppctl verifies the server against the CA it is given
        r = subprocess.run([str(t.BIN / "cwppctl"), "whoami"], capture_output=True, text=True,
                           env=dict(t.os.environ, CWPP_API_URL=url, CWPP_API_CA=str(crt),
                                    CWPP_API_TOKEN=t.api_for(t.new_prefix()).token(ITTLS)),
                           timeout=60)
        assert r.returncode == 0 and r.stdout.startswith(ITTLS), r.stderr
        r = subprocess.run([str(t.BIN / "cwppctl"), "whoami"], capture_output=True, text=True,
                           env=dict(t.os.environ, CWPP_API_URL=url, CWPP_API_CA="/dev/null",
                                    CWPP_API_TOKEN="x"), timeout=60)
        assert r.returncode == 3
    finally:
        proc.terminate()
        proc.wait(30)
