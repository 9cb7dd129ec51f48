# SPDX-License-Identifier: Apache-2.0
"""cwpp-api's exports (services/api/exports.c, docs/api/parts/exports.yaml) with a real
cwpp-exporter on the real local Kafka broker and PostgreSQL: a job created as the caller
holds only the caller's accounts, is listed, read and downloaded (the workbook opens with
python3-openpyxl) only by callers holding every account it holds, viewers may not export,
every route needs a token, and hostile input is a clear 4xx. cwppctl's export verbs go
through the same routes."""
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest

import cwpp_testlib as t
from cwpp_testlib import tag

openpyxl = pytest.importorskip("openpyxl")

EXPORTER_DSN = t.EXPORTER_DSN
RESULT = t.AvroType("command_result")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Env:
    def __init__(self, tmp):
        self.prefix = t.new_prefix()
        t.create_topics(self.prefix, partitions=1)
        self.exporter = t.Service("exporter", self.prefix, tmp, extra_env={
            "CWPP_PG_DSN": EXPORTER_DSN, "CWPP_EXPORTER_TICK_MS": "200",
            "CWPP_HANDLED_TRANSACTIONAL_ID": f"{self.prefix}handled"}).start()
        self.exporter.wait_ready()
        self.api = t.Api(self.prefix)
        g = tag()
        self.acct_a, self.acct_b = f"acct-a-{g}", f"acct-b-{g}"
        self.ev = {}
        now = t.NOW
        with t.db() as conn, conn.cursor() as cur:
            for acct, n in ((self.acct_a, 3), (self.acct_b, 2)):
                for i in range(n):
                    eid = f"ev-{uuid.uuid4().hex}"
                    self.ev.setdefault(acct, []).append(eid)
                    cur.execute("INSERT INTO events (event_id, account_id, name, level, "
                                "status, first_seen, last_seen) VALUES (%s, %s, %s, %s, "
                                "'unhandled', %s, %s)",
                                (eid, acct, f"story {i}", ["critical", "high", "low"][i],
                                 now - timedelta(hours=2), now - timedelta(minutes=i)))
        self.ana = t.make_user("ana-" + g, self.acct_a)
        self.bob = t.make_user("bob-" + g, self.acct_b)
        self.vic = t.make_user("vic-" + g, self.acct_a, role="viewer")
        self.adm = t.make_user("adm-" + g, role="admin")

    def all_ids(self):
        return self.ev[self.acct_a] + self.ev[self.acct_b]

    def close(self):
        self.api.stop()
        if self.exporter.proc.poll() is None:
            self.exporter.proc.kill()  # its clean stop is test_exporter's concern
            self.exporter.proc.wait(10)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("api-exports"))
    yield e
    e.close()


def raw(api, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def create(env, user, body):
    st, doc, hdr = env.api.post("/api/v1/exports", body, user=user)
    return st, doc, hdr


def job_of(env, user, body):
    st, doc, hdr = create(env, user, body)
    assert st == 200, doc
    return doc["result"]["job_id"], doc


# ------------------------------------------------------------------------- tests

def test_an_export_holds_the_callers_accounts_and_downloads(env):
    job, doc = job_of(env, env.ana, {"ids": env.all_ids()})
    assert doc["status"] == "ok" and doc["result"]["events"] == 3  # acct-a's only
    st, j, _ = env.api.get(f"/api/v1/exports/{job}", user=env.ana)
    assert st == 200, j
    assert (j["job_id"], j["actor"], j["state"], j["progress"], j["events"]) == \
        (job, env.ana, "done", 100, 3)
    assert j["accounts"] == [env.acct_a] and j["filters"]["ids"] == env.all_ids()
    assert j["bytes"] > 0 and len(j["sha256"]) == 64
    st, body, hdr = env.api.get(f"/api/v1/exports/{job}/file", user=env.ana)
    assert st == 200
    h = {k.lower(): v for k, v in dict(hdr).items()}
    assert h["content-type"] == XLSX
    assert h["content-disposition"].startswith("attachment;") and ".xlsx" in \
        h["content-disposition"]
    assert isinstance(body, (bytes, bytearray)) and len(body) == j["bytes"]
    wb = openpyxl.load_workbook(io.BytesIO(body))
    assert wb.sheetnames == ["Events", "Affected assets", "Entities", "Alerts"]
    rows = [r[0] for r in wb["Events"].iter_rows(min_row=2, values_only=True)]
    assert rows == env.ev[env.acct_a]  # newest first
    # the caller's own jobs
    st, lst, _ = env.api.get("/api/v1/exports", user=env.ana)
    assert st == 200 and job in [x["job_id"] for x in lst["exports"]]
    assert lst["total"] >= 1


def test_filters_narrow_and_the_exporter_refusal_is_a_422(env):
    job, doc = job_of(env, env.ana, {"ids": env.all_ids(), "levels": ["critical", "high"],
                                     "since": (t.NOW - timedelta(days=1)).strftime(
                                         "%Y-%m-%dT%H:%M:%SZ")})
    assert doc["result"]["events"] == 2
    st, prob, _ = create(env, env.ana, {"ids": env.ev[env.acct_b]})  # none of hers
    assert st == 422 and "No event matches" in prob["detail"], prob
    refused = prob.get("command_id")
    if refused:  # the refused job is shown, failed, to its actor only
        st, j, _ = env.api.get(f"/api/v1/exports/{refused}", user=env.ana)
        assert st == 200 and j["state"] == "failed" and "No event matches" in j["message"]
        assert env.api.get(f"/api/v1/exports/{refused}", user=env.bob)[0] == 404


def test_another_tenants_job_is_not_found_and_in_no_list(env):
    job_b, _ = job_of(env, env.bob, {"ids": env.all_ids()})
    for path in (f"/api/v1/exports/{job_b}", f"/api/v1/exports/{job_b}/file"):
        st, prob, _ = env.api.get(path, user=env.ana)
        assert st == 404, (path, prob)
    for args in ("", "?all=yes", "?all=yes&limit=500"):
        st, lst, _ = env.api.get("/api/v1/exports" + args, user=env.ana)
        assert st == 200 and job_b not in [x["job_id"] for x in lst["exports"]]
    # an admin's export of both tenants: neither analyst holds all of it
    job_ab, doc = job_of(env, env.adm, {"ids": env.all_ids()})
    assert doc["result"]["events"] == 5
    for user in (env.ana, env.bob):
        assert env.api.get(f"/api/v1/exports/{job_ab}", user=user)[0] == 404
        assert env.api.get(f"/api/v1/exports/{job_ab}/file", user=user)[0] == 404
    st, j, _ = env.api.get(f"/api/v1/exports/{job_ab}", user=env.adm)
    assert st == 200 and j["accounts"] == sorted([env.acct_a, env.acct_b])
    st, lst, _ = env.api.get("/api/v1/exports?all=yes&limit=500", user=env.adm)
    assert {job_b, job_ab} <= {x["job_id"] for x in lst["exports"]}
    # a job of acct-a only, made by the admin, is seen by acct-a's analyst with all=yes
    job_a, _ = job_of(env, env.adm, {"ids": env.ev[env.acct_a]})
    st, lst, _ = env.api.get("/api/v1/exports?all=yes&limit=500", user=env.ana)
    assert job_a in {x["job_id"] for x in lst["exports"]}
    assert env.api.get(f"/api/v1/exports/{job_a}/file", user=env.ana)[0] == 200


def test_the_job_list_pages_with_a_cursor(env):
    mine = {job_of(env, env.ana, {"ids": env.ev[env.acct_a][:1]})[0] for _ in range(3)}
    seen, cursor = [], None
    while True:
        path = "/api/v1/exports?limit=1" + (f"&cursor={cursor}" if cursor else "")
        st, lst, _ = env.api.get(path, user=env.ana)
        assert st == 200, lst
        seen += [x["job_id"] for x in lst["exports"]]
        cursor = lst["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == lst["total"] and mine <= set(seen)


def test_a_running_job_shows_its_progress_to_its_actor(env):
    """A job not stored yet: its actor sees it running with the exporter's latest progress
    (read off <prefix>command-results); anyone else gets a 404."""
    cid = "cmd-" + uuid.uuid4().hex
    t.produce(env.prefix + "command-results", [RESULT.encode({
        "command_id": cid, "service": "exporter", "type": "export.create", "actor": env.ana,
        "status": "progress", "message": "reading events", "result_json": '{"percent": 40}',
        "answered_at_ms": int(time.time() * 1000)})], keys=[cid.encode()])

    def seen():
        return env.api.get(f"/api/v1/exports/{cid}", user=env.ana)[0] == 200
    t.wait_for(seen, timeout=20, what="the progress record seen by cwpp-api")
    st, j, _ = env.api.get(f"/api/v1/exports/{cid}", user=env.ana)
    assert (j["state"], j["progress"], j["actor"], j["message"]) == \
        ("running", 40, env.ana, "reading events")
    assert env.api.get(f"/api/v1/exports/{cid}", user=env.bob)[0] == 404
    assert env.api.get(f"/api/v1/exports/{cid}/file", user=env.ana)[0] == 404


def test_a_viewer_may_not_export(env):
    st, prob, _ = create(env, env.vic, {"ids": env.ev[env.acct_a]})
    assert st == 403, prob
    st, lst, _ = env.api.get("/api/v1/exports", user=env.vic)  # reading is fine
    assert st == 200 and lst["exports"] == []


def test_401_without_a_token(env):
    for method, path, body in (("POST", "/api/v1/exports", {"ids": env.ev[env.acct_a]}),
                               ("GET", "/api/v1/exports", None),
                               ("GET", "/api/v1/exports/x", None),
                               ("GET", "/api/v1/exports/x/file", None)):
        assert raw(env.api, method, path, body)[0] == 401
        assert raw(env.api, method, path, body, token="cwpp_0123456789abcdef_no")[0] == 401


@pytest.mark.parametrize("body", [
    {"colour": "red"},
    {"levels": ["severe"]},
    {"levels": "critical"},
    {"levels": []},
    {"statuses": ["closed"]},
    {"statuses": ["'; DROP TABLE events; --"]},
    {"since": "yesterday-ish"},
    {"since": 1714550400000},
    {"since": "2026-05-02", "until": "2026-05-01"},
    {"ids": [""]},
    {"ids": ["x" * 300]},
    {"ids": [1, 2]},
    {"ids": ["ev-%d" % i for i in range(1001)]},
    {"actor": "admin"},  # the body never names the actor
])
def test_hostile_exports_are_400s(env, body):
    st, prob, _ = create(env, env.ana, body)
    assert st == 400, (body, st, prob)
    assert prob["detail"]


def test_bad_bodies_and_arguments(env):
    tok = env.api.token(env.ana)
    for data in (b"{not json", b"[1, 2]", b"\"text\""):
        req = urllib.request.Request(env.api.url + "/api/v1/exports", data=data, method="POST",
                                     headers={"Authorization": "Bearer " + tok,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code = r.status
        except urllib.error.HTTPError as e:
            code = e.code
        assert code == 400, data
    for path in ("/api/v1/exports?limit=100000", "/api/v1/exports?limit=0",
                 "/api/v1/exports?cursor=garbage", "/api/v1/exports?all=maybe",
                 "/api/v1/exports?colour=red"):
        assert env.api.get(path, user=env.ana)[0] == 400, path
    for jid in ("..%2F..%2Fetc%2Fpasswd", "..", "x" * 200, "%27%20OR%201%3D1", "a%20b"):
        for suffix in ("", "/file"):
            st = env.api.get(f"/api/v1/exports/{jid}{suffix}", user=env.ana)[0]
            assert st in (400, 404), (jid, suffix, st)


def test_cwppctl_export_verbs_through_the_api(env, tmp_path):
    out = tmp_path / "mine.xlsx"
    rc, doc, err = t.cwppctl_json(env.prefix, "export", "--ids", *env.all_ids(), "--out",
                                  str(out), actor=env.ana, api=env.api)
    assert rc == 0, err
    assert doc["status"] == "ok" and doc["result"]["events"] == 3
    assert doc["result"]["file"] == str(out)
    wb = openpyxl.load_workbook(out)
    assert len(list(wb["Events"].iter_rows(min_row=2))) == 3
    job = doc["result"]["job_id"]
    rc, lst, err = t.cwppctl_json(env.prefix, "export", "list", actor=env.ana, api=env.api)
    assert rc == 0 and job in [j["job_id"] for j in lst["exports"]]
    again = tmp_path / "again.xlsx"
    rc, d2, err = t.cwppctl_json(env.prefix, "export", "download", job, "--out", str(again),
                                 actor=env.ana, api=env.api)
    assert rc == 0 and again.read_bytes() == out.read_bytes() and d2["bytes"] == len(
        out.read_bytes())
    rc, _, err = t.cwppctl(env.prefix, "export", "download", job, "--out",
                           str(tmp_path / "b.xlsx"), actor=env.bob, api=env.api)
    assert rc == 1 and not (tmp_path / "b.xlsx").exists()
    rc, _, err = t.cwppctl(env.prefix, "export", "--ids", *env.ev[env.acct_a], "--out",
                           str(tmp_path / "v.xlsx"), actor=env.vic, api=env.api)
    assert rc == 1 and not (tmp_path / "v.xlsx").exists()
    rc, out_text, err = t.cwppctl(env.prefix, "export", "list", actor=env.ana, api=env.api)
    assert rc == 0 and job in out_text
