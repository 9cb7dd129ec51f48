# SPDX-License-Identifier: Apache-2.0
"""cwpp-api serves the analysts' console (docs/api.md "The console") against the real
stack: / is the directory's index.html and /console/<path> its files, without
authentication, with their types from the fixed table, the security headers (strict CSP,
nosniff, no referrer, DENY framing) and revalidation (ETag / Last-Modified, no-cache, 304);
nothing outside the directory is ever served: a path that climbs out, plain or
percent-encoded, a symbolic link inside pointing out, a hidden file, an unknown
extension, all the same 404 problem; a binary of the build tree serves the source tree's
files by default, an empty api.console.dir turns the console off and a directory that
cannot be opened stops start-up; and the API's own routes answer as before (no-store,
authentication)."""

import pytest

import cwpp_testlib as t

INDEX = b"<!DOCTYPE html>\n<html><head><title>console test</title></head></html>\n"
APP = b"import { x } from './js/x.js';\nconsole.log(x);\n"
MODULE = b"export const x = 1;\n"
CSS = b"body { margin: 0; }\n"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECRET = b"outside the console\n"


@pytest.fixture(scope="module")
def console_dir(tmp_path_factory):
    """A console directory (index.html, app.js, js/x.js, css/console.css and traps: a
    symbolic link out, a hidden file, a file of an unknown type) next to a secret file."""
    root = tmp_path_factory.mktemp("console-root")
    d = root / "console"
    (d / "js").mkdir(parents=True)
    (d / "css").mkdir()
    (d / "index.html").write_bytes(INDEX)
    (d / "app.js").write_bytes(APP)
    (d / "js" / "x.js").write_bytes(MODULE)
    (d / "css" / "console.css").write_bytes(CSS)
    (root / "secret.js").write_bytes(SECRET)
    (root / "api.h").write_bytes(SECRET)
    (d / "js" / "link.js").symlink_to(root / "secret.js")
    (d / "outdir").symlink_to(root)
    (d / ".env.json").write_bytes(SECRET)
    (d / "notes.txt").write_bytes(SECRET)
    return d


@pytest.fixture(scope="module")
def api(console_dir):
    a = t.Api(t.new_prefix(), extra_env={"CWPP_API_CONSOLE_DIR": str(console_dir)})
    yield a
    a.stop()


def raw(api, method, path, headers=None):
    """(status, headers, body) of method path sent verbatim (no client-side cleaning of
    the path, unlike a browser)."""
    return t.raw_request(api.url, method, path, headers)


def assert_security_headers(h):
    assert h["Content-Security-Policy"] == CSP
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"


def test_the_page_modules_and_styles_come_with_their_types_and_headers(api):
    st, h, body = raw(api, "GET", "/")
    assert (st, body) == (200, INDEX)
    assert h["Content-Type"] == "text/html; charset=utf-8"
    assert h["Cache-Control"] == "no-cache"
    assert h["ETag"].startswith('"') and h["Last-Modified"].endswith(" GMT")
    assert_security_headers(h)
    for path, ctype, content in (("/console/index.html", "text/html; charset=utf-8", INDEX),
                                 ("/console/app.js", "text/javascript; charset=utf-8", APP),
                                 ("/console/js/x.js", "text/javascript; charset=utf-8", MODULE),
                                 ("/console/css/console.css", "text/css; charset=utf-8", CSS)):
        st, h, body = raw(api, "GET", path)
        assert (st, body) == (200, content), path
        assert h["Content-Type"] == ctype, path
        assert h["Cache-Control"] == "no-cache", path
        assert_security_headers(h)
    # no authentication asked for, and a query string is no part of the file's name
    assert raw(api, "GET", "/console/app.js?v=2")[0] == 200
    st, h, body = raw(api, "HEAD", "/console/app.js")
    assert st == 200 and body == b"" and h["ETag"]


def test_an_unchanged_file_is_answered_304(api, console_dir):
    _, h, _ = raw(api, "GET", "/console/app.js")
    etag, lastmod = h["ETag"], h["Last-Modified"]
    st, h2, body = raw(api, "GET", "/console/app.js", {"If-None-Match": etag})
    assert (st, body) == (304, b"")
    assert h2["ETag"] == etag and h2["Cache-Control"] == "no-cache"
    assert_security_headers(h2)
    assert raw(api, "GET", "/console/app.js", {"If-None-Match": f'"x", W/{etag}'})[0] == 304
    assert raw(api, "GET", "/console/app.js", {"If-Modified-Since": lastmod})[0] == 304
    assert raw(api, "GET", "/console/app.js", {"If-None-Match": '"other"'})[0] == 200
    assert raw(api, "GET", "/console/app.js",
               {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    # a changed file has another tag and comes whole again
    p = console_dir / "js" / "x.js"
    _, h, _ = raw(api, "GET", "/console/js/x.js")
    p.write_bytes(b"export const x = 2;\n")
    st, h2, body = raw(api, "GET", "/console/js/x.js", {"If-None-Match": h["ETag"]})
    assert (st, body) == (200, b"export const x = 2;\n") and h2["ETag"] != h["ETag"]
    p.write_bytes(MODULE)


@pytest.mark.parametrize("path", [
    "/console/../api.h",
    "/console/../secret.js",
    "/console/js/../../secret.js",
    "/console/%2e%2e/api.h",
    "/console/%2E%2E/secret.js",
    "/console/..%2fapi.h",
    "/console/%2e%2e%2fsecret.js",
    "/console/js/%2e%2e/%2e%2e/secret.js",
    "/console/js/link.js",        # a symbolic link inside pointing out
    "/console/outdir/secret.js",  # through a linked directory
    "/console/.env.json",         # hidden
    "/console/notes.txt",         # a type not in the table
    "/console/missing.js",
    "/console/",
    "/console/js/",
    "/console//app.js",
])
def test_nothing_outside_the_directory_is_served(api, path):
    st, h, body = raw(api, "GET", path)
    assert st == 404, (path, body)
    assert SECRET not in body
    assert h["Content-Type"] == "application/problem+json"
    assert_security_headers(h)


def test_other_methods_are_refused_and_the_api_answers_as_before(api):
    st, h, _ = raw(api, "POST", "/", {"Content-Length": "0"})
    assert st == 405 and h["Allow"] == "GET, HEAD"
    assert raw(api, "DELETE", "/console/app.js")[0] == 405
    # the API's own routes: authenticated, no-store, no console headers needed
    st, doc, h = api.get("/api/v1/me")
    assert st == 401 and doc["code"] == "unauthorized"
    st, doc, h = api.get("/api/v1/me", user="itconsole-admin")
    assert st == 200 and doc["user"] == "itconsole-admin"
    assert h["Cache-Control"] == "no-store"
    assert api.get("/api/v1/nope", user="itconsole-admin")[0] == 404
    assert api.get("/healthz")[0] == 200
    st, body, h = api.get("/api/v1/openapi.yaml", raw=True)
    assert st == 200 and b"\nopenapi: 3" in body[:400]
    # paths near the console's are not the console
    for path in ("/index.html", "/console", "/consoles/app.js"):
        st, h, body = raw(api, "GET", path)
        assert st == 404 and "Content-Security-Policy" not in h, path
    # the console's requests are counted under two routes, not one per file
    _, text, _ = api.get("/metrics", raw=True)
    text = text.decode()
    assert 'cwpp_api_requests_total{route="/console/{path}",method="GET",status="200"}' in text
    assert 'cwpp_api_requests_total{route="/",method="GET",status="200"}' in text
    assert "console/app.js" not in text


def test_the_build_tree_serves_the_source_tree_and_an_empty_dir_turns_it_off(monkeypatch):
    monkeypatch.delenv("CWPP_API_CONSOLE_DIR", raising=False)
    a = t.Api(t.new_prefix())
    try:
        st, h, body = raw(a, "GET", "/")
        assert st == 200
        assert body == (t.REPO / "services" / "api" / "console" / "index.html").read_bytes()
        # the brief's traversal, against the source tree: services/api/api.h stays unseen
        st, _, body = raw(a, "GET", "/console/../api.h")
        assert st == 404 and b"CWPP_API_H" not in body
    finally:
        a.stop()
    off = t.Api(t.new_prefix(), extra_env={"CWPP_API_CONSOLE_DIR": ""})
    try:
        for path in ("/", "/console/index.html", "/console/app.js"):
            st, h, _ = raw(off, "GET", path)
            assert st == 404 and "Content-Security-Policy" not in h, path
        assert off.get("/healthz")[0] == 200
    finally:
        off.stop()


def test_a_console_dir_that_cannot_be_opened_stops_start_up(tmp_path):
    missing = tmp_path / "no-such-console"
    with pytest.raises(AssertionError) as e:
        t.Api(t.new_prefix(), extra_env={"CWPP_API_CONSOLE_DIR": str(missing)})
    assert "exited with 1" in str(e.value)
    assert "api.console.dir" in str(e.value) and str(missing) in str(e.value)
