# SPDX-License-Identifier: Apache-2.0
"""Who may see and do what in the console, in a real browser against the real stack
(services/api/console/): ticking three events and setting their owner with a remark
changes the three; exporting that selection shows the job on the Exports page from
"pending" through the exporter's progress to done, and the workbook downloaded by the
browser holds exactly those events; a viewer meets no control that changes anything on
any page, and a request forged from a viewer's page (with the session's CSRF token) or
from an analyst's page without the token is refused by the API with its problem, nothing
changed; a user of another tenant, logging in after a user of the seed in the same
browser, sees nothing of the seed (no cache across logins); an admin's page lists users,
roles, grants, tokens and playbooks as the API does. Every expectation is the API's own
answer for the same user, read next to the page.

The seed is tests/browser/console_seed.py's (written straight into the database); the
whitelist rule and the active policy some pages need are written the same way, so those
pages have something a change button would act on."""
import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

import cwpp_testlib as t
from console_seed import (IP, api_get, banner, css, desk, go, rows,  # noqa: F401
                          submit, visible, wait)

openpyxl = pytest.importorskip("openpyxl")

EXPORTER_DSN = t.EXPORTER_DSN
RESULT = t.AvroType("command_result")
# the sheets docs/exporter.md "Workbook" lists, in its order
SHEETS = ["Events", "Affected assets", "Entities", "Alerts"]
# buttons that only read: filters, paging, an alert's details, the graph's zoom
READ_ONLY = {"Apply filters", "Apply", "Previous", "Next", "Details", "+", "\u2212", "Fit"}


# ------------------------------------------------------------------ helpers

def change_controls(browser):
    """The visible controls of the page's main part (and of any open dialog) that would
    change something: every button but those that only read, and the tick boxes of a
    table's rows (they exist to act on the rows)."""
    found = [b.text.strip() or b.get_attribute("aria-label") or "button"
             for b in visible(browser, "#main button, dialog[open] button")
             if b.text.strip() not in READ_ONLY]
    found += ["tick box"] * len(visible(browser, "#main table input[type=checkbox]"))
    return found


def rule_and_policy(desk):
    """A whitelist rule of the seed's account and an active handling policy on its chain
    event (rows as the whitelist filter and the responder write them): the rules page has
    a rule to delete and the response pages a policy to cancel. Answers (rule id, policy
    id)."""
    acct, tg, ana = desk["account"], desk["tg"], desk["ana"][0]
    conn = t.db()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO whitelist_rules (alert_name, field, op, value, scope, "
                        "created_by, command_id, account_id) VALUES (%s, 'file.path', "
                        "'startswith', '/tmp/x1', 'all', %s, %s, %s) RETURNING rule_id",
                        (f"alert 1.0 {tg}", ana, "cmd-" + uuid.uuid4().hex, acct))
            rule_id = cur.fetchone()[0]
            pid = "pol-" + uuid.uuid4().hex
            cur.execute("INSERT INTO handling_policies (policy_id, response_id, event_id, "
                        "account_id, dest_account, kind, name, entity_type, entity_value, "
                        "asset_id, steps, target_status, valid_until, state, created_by) "
                        "VALUES (%s, %s, %s, %s, %s, 'policy', 'block_ip', 'ip', %s, %s, "
                        "'[]', 'handling', %s, 'active', %s)",
                        (pid, "cmd-" + uuid.uuid4().hex, desk["chain"], acct, acct, IP,
                         f"web-{tg}", datetime.now(timezone.utc) + timedelta(days=1), ana))
    finally:
        conn.close()
    return rule_id, pid


def tour(desk, user, rule_id, pid):
    """(hash, what, ready(browser)) of every page a user reads: each ready() is true once
    the page shows what the API answers that user."""
    chain = desk["chain"]
    events = [e["event_id"] for e in api_get(desk, "/api/v1/events?limit=50", user)["events"]]
    alerts = api_get(desk, "/api/v1/alerts?limit=50", user)["alerts"]
    exports = api_get(desk, "/api/v1/exports?limit=25", user)
    assert events and alerts and exports["total"] == 0
    return [
        ("/events", "the events list", lambda d: rows(d) == events),
        (f"/events/{chain}", "the overview", lambda d: visible(d, "#reasons li")),
        (f"/events/{chain}/chain", "the chain", lambda d: css(d, "#chain-graph g.node")),
        (f"/events/{chain}/entities?entity=ip:{IP}", "the entity", lambda d: visible(d, "#entity-detail")),
        (f"/events/{chain}/alerts", "the event's alerts", lambda d: len(css(d, "#event-alerts .alert-more")) == 5),
        (f"/events/{chain}/response", "the event's policy", lambda d: css(d, f".policy[data-id='{pid}']")),
        (f"/events/{chain}/log", "the activity log",
         lambda d: any(x.text == "Activity log" for x in css(d, "#tab-panel h2"))),
        ("/alerts", "the alerts", lambda d: [r.get_attribute("data-id") for r in css(d, "#alerts-table tr[data-id]")]
         == [a["alert_id"] for a in alerts]),
        ("/whitelist", "the rule", lambda d: css(d, f"#rules-table tr[data-id='{rule_id}']")),
        ("/response", "the policies", lambda d: css(d, f".policy[data-id='{pid}']")),
        ("/exports", "no export", lambda d: any(p.text == "No export yet." for p in css(d, "#exports-list p"))),
    ]


def forge(browser, path, body, with_token):
    """POSTs body to path from the page as a page script would (its cookie, same origin),
    with the session's CSRF token (what the page holds: GET /me answers it) or without
    any (what a form of another site would send). Answers {status, type, problem, csrf}."""
    return browser.execute_async_script("""
        const [path, body, withToken, done] = arguments;
        (async () => {
          const me = await (await fetch('/api/v1/me', {credentials: 'same-origin', cache: 'no-store'})).json();
          const headers = {'Content-Type': 'application/json'};
          if (withToken) headers['X-CSRF-Token'] = me.csrf_token;
          const r = await fetch(path, {method: 'POST', credentials: 'same-origin', headers,
                                       body: JSON.stringify(body)});
          const text = await r.text();
          let problem = null;
          try { problem = JSON.parse(text); } catch (e) { problem = text; }
          done({status: r.status, type: r.headers.get('Content-Type'), problem, csrf: me.csrf_token || ''});
        })().catch((e) => done({error: String(e)}));
    """, path, body, with_token)


def logout(browser):
    css(browser, "#logout")[0].click()
    wait(browser, lambda d: visible(d, "#login-user"), "the login page after logout")


# ------------------------------------------------------------------ the tests

@pytest.mark.api_env(CWPP_API_COMMAND_TIMEOUT_MS="8000")
def test_bulk_owner_then_export_of_the_selection(browser, console_url, desk, login, shot, browser_errors,
                                                  prefix, services, download_dir, wait_download):
    """Three ticked events get an owner and a remark in one step; exporting the same
    three shows the job pending (no exporter yet: the API answers 202 after its 8 s),
    then running with the exporter's progress, then done once the real cwpp-exporter
    runs; the browser downloads the workbook, which holds exactly those events."""
    user, password = desk["ana"]
    other = desk["bob"][0]
    remark = f"taken over by {other} {desk['tg']}"
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/events")
    wait(browser, lambda d: len(rows(d)) == 12, "the list")
    picked = rows(browser)[:3]
    before = {e: api_get(desk, f"/api/v1/events/{e}", user) for e in picked}
    assert all(ev["owner"] != other for ev in before.values())

    def tick():
        def ticked(d):  # the list may be drawn again meanwhile: tick what is not ticked
            try:
                for eid in picked:
                    box = css(d, f"#events-table tr[data-id='{eid}'] input.row-select")[0]
                    if not box.is_selected():
                        box.click()
                return css(d, "#bulk-count")[0].text == "3 selected"
            except StaleElementReferenceException:
                return False
        wait(browser, ticked, "three events ticked")

    tick()
    css(browser, "#bulk-owner")[0].click()
    dlg = wait(browser, lambda d: next(iter(visible(d, "dialog[open]")), False), "the owner dialog")
    owner = dlg.find_element(By.CSS_SELECTOR, "input[name=owner]")
    owner.clear()
    owner.send_keys(other)
    dlg.find_element(By.CSS_SELECTOR, "textarea.remark").send_keys(remark)
    submit(browser, dlg)
    assert "3 events" in banner(browser)
    for eid in picked:
        ev = api_get(desk, f"/api/v1/events/{eid}", user)
        assert ev["owner"] == other, ev
        log = api_get(desk, f"/api/v1/events/{eid}/log", user)["log"]
        assert any(x.get("remark") == remark for x in log), log
    for eid in set(desk["ids"]) - set(picked):
        assert api_get(desk, f"/api/v1/events/{eid}", user)["owner"] != other
    wait(browser, lambda d: all(css(d, f"#events-table tr[data-id='{e}'] .col-owner")[0].text == other
                                for e in picked), "the owners in the list")
    shot(browser, "bulk-owner")

    # export the selection; nothing exports yet, so the API answers 202 with the job id
    tick()
    css(browser, "#bulk-export")[0].click()
    wait(browser, lambda d: "#/exports?job=" in d.current_url, "the exports page of the job", timeout=30)
    job = browser.current_url.split("job=")[1].split("&")[0]
    assert api_get(desk, f"/api/v1/commands/{job}", user)["status"] == "pending"

    def row_of(d):
        r = css(d, f"#exports-list tr[data-id='{job}']")
        return r[0] if r else None

    wait(browser, lambda d: row_of(d) is not None and row_of(d).get_attribute("data-state") == "pending",
         "the job pending")
    # the exporter's progress record, as it sends them while reading (its command id)
    t.produce(prefix + "command-results", [RESULT.encode({
        "command_id": job, "service": "exporter", "type": "export.create", "actor": user,
        "status": "progress", "message": "reading affected assets", "result_json": '{"percent": 40}',
        "answered_at_ms": int(time.time() * 1000)})], keys=[job.encode()])
    t.wait_for(lambda: desk["api"].get(f"/api/v1/exports/{job}", user=user)[0] == 200, timeout=20,
               what="the progress seen by cwpp-api")
    running = api_get(desk, f"/api/v1/exports/{job}", user)
    assert (running["state"], running["progress"]) == ("running", 40)
    wait(browser, lambda d: row_of(d) is not None and row_of(d).get_attribute("data-state") == "running"
         and row_of(d).find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "40"
         and running["message"] in row_of(d).text, "the job running at 40 %")
    shot(browser, "export-running")

    exporter = services("exporter", prefix, extra_env={
        "CWPP_PG_DSN": EXPORTER_DSN, "CWPP_EXPORTER_TICK_MS": "200",
        "CWPP_HANDLED_TRANSACTIONAL_ID": f"{prefix}handled"}).start()
    exporter.wait_ready()
    wait(browser, lambda d: row_of(d) is not None and row_of(d).get_attribute("data-state") == "done",
         "the job done", timeout=45)
    done = api_get(desk, f"/api/v1/exports/{job}", user)
    assert (done["state"], done["progress"], done["events"]) == ("done", 100, 3), done
    assert sorted(done["filters"]["ids"]) == sorted(picked)
    row = row_of(browser)
    assert row.find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "100"
    assert row.find_elements(By.CSS_SELECTOR, "td")[3].text == str(done["events"])
    shot(browser, "exports")

    row.find_element(By.CSS_SELECTOR, "button.download").click()
    path = wait_download(download_dir, ".xlsx")
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == done["sha256"] and len(data) == done["bytes"]
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == SHEETS
    api_events = sorted((api_get(desk, f"/api/v1/events/{e}", user) for e in picked),
                        key=lambda ev: ev["last_seen"], reverse=True)  # newest first
    sheet = [r for r in wb["Events"].iter_rows(min_row=2, values_only=True)]
    assert [r[:5] for r in sheet] == [(ev["event_id"], ev["name"], ev["level"], ev["status"], ev["owner"])
                                      for ev in api_events]
    assets = {(e, en["value"], (en.get("asset") or {}).get("name")) for e in picked
              for en in api_get(desk, f"/api/v1/events/{e}/entities?affected=1", user)["entities"]}
    assert {e for e, _, _ in assets} == set(picked)
    assert {r[:3] for r in wb["Affected assets"].iter_rows(min_row=2, values_only=True)} == assets
    alerts = {(e, a["alert_id"]) for e in picked
              for a in api_get(desk, f"/api/v1/events/{e}/alerts?limit=500", user)["alerts"]}
    assert {(r[0], r[1]) for r in wb["Alerts"].iter_rows(min_row=2, values_only=True)} == alerts
    assert browser_errors(browser) == []


def test_a_viewer_changes_nothing_and_forged_requests_are_refused(browser, console_url, desk, login, shot,
                                                                  browser_errors):
    """Every page an analyst can act on (proving the check finds change buttons) shows a
    viewer none; a change posted from the viewer's page with the session's CSRF token is
    a 403 forbidden, one posted from the analyst's page without the token a 403 csrf, and
    neither changes the event."""
    rule_id, pid = rule_and_policy(desk)
    target = desk["ids"][5]
    path = f"/api/v1/events/{target}/owner"

    def state():
        ev = api_get(desk, f"/api/v1/events/{target}", desk["ana"][0])
        return ev["owner"], ev["version"], len(api_get(desk, f"/api/v1/events/{target}/log", desk["ana"][0])["log"])

    start = state()
    browser.get(console_url)
    for who, expect_changes in (("ana", True), ("vic", False)):
        user, password = desk[who]
        login(browser, user, password)
        for hash_, what, ready in tour(desk, user, rule_id, pid):
            go(browser, console_url, hash_)
            wait(browser, ready, f"{what} as {who}")
            found = change_controls(browser)
            if expect_changes:
                assert found, f"the analyst has something to change on {hash_}"
            else:
                assert found == [], f"{hash_} offers a viewer {found}"
        if who == "ana":
            # what another site's form would send: the cookie, but no X-CSRF-Token
            ans = forge(browser, path, {"owner": desk["bob"][0]}, with_token=False)
            assert ans.get("status") == 403, ans
            assert ans["type"].startswith("application/problem+json"), ans
            assert ans["problem"]["code"] == "csrf" and ans["problem"]["detail"], ans
        else:
            shot(browser, "viewer-exports")
            ans = forge(browser, path, {"owner": user, "remark": "forged"}, with_token=True)
            assert ans.get("status") == 403 and ans["csrf"], ans
            assert ans["type"].startswith("application/problem+json"), ans
            assert ans["problem"]["code"] == "forbidden" and ans["problem"]["detail"], ans
        assert state() == start
        logout(browser)
    assert browser_errors(browser) == []


def test_another_tenant_sees_nothing_of_the_previous_user(browser, console_url, desk, login, shot, make_user,
                                                          browser_errors):
    """A user of the seed reads its pages; after logging out, a user of another account
    logging in in the same browser gets empty pages with the API's totals, the seed's
    event answers the API's not-found sentence, and no page holds a name, id or account
    of the seed."""
    _, pid = rule_and_policy(desk)
    user, password = desk["ana"]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/events")
    wait(browser, lambda d: len(rows(d)) == 12, "the seed's list")
    go(browser, console_url, f"/events/{desk['chain']}/alerts")
    wait(browser, lambda d: len(css(d, "#event-alerts .alert-more")) == 5, "the seed's alerts")
    go(browser, console_url, "/response")
    wait(browser, lambda d: css(d, f".policy[data-id='{pid}']"), "the seed's policy")
    shot(browser, "response")
    logout(browser)

    stranger, spw = make_user(f"acct-str-{t.tag()}")
    login(browser, stranger, spw)
    seen = [desk["account"], desk["tg"], desk["chain"], pid]

    def clean(d):
        """What of the seed the page holds, visible or not: the header, the page and any
        dialog (the banner may hold the stranger's own not-found sentence naming an id)."""
        src = d.execute_script("return [document.getElementById('top'), document.getElementById('main'),"
                               " ...document.querySelectorAll('dialog, datalist')]"
                               ".map((e) => e.outerHTML).join('')")
        return [s for s in seen if s in src]

    total = api_get(desk, "/api/v1/events?limit=50", stranger)["total"]
    assert total == 0
    go(browser, console_url, "/events")
    wait(browser, lambda d: any(p.text == f"Events 0 of {total}" for p in css(d, ".pager-text")), "an empty list")
    assert rows(browser) == [] and css(browser, "#events-list p.empty")
    wait(browser, lambda d: len(css(d, "#filter-account option")) == 1 + len(api_get(desk, "/api/v1/accounts", stranger)["accounts"]),
         "the stranger's accounts in the filter")
    assert clean(browser) == []
    st, problem, _ = desk["api"].get(f"/api/v1/events/{desk['chain']}", user=stranger)
    assert st == 404 and problem["detail"]
    go(browser, console_url, f"/events/{desk['chain']}")
    wait(browser, lambda d: banner(d) == problem["detail"], "the not-found sentence in the banner")
    assert [s for s in clean(browser) if s != desk["chain"]] == [] and not css(browser, "#event-name")
    for hash_, key, empty in (("/alerts", "alerts", "No alert matches these filters."),
                              ("/response", "policies", "No policy."),
                              ("/exports", "exports", "No export yet.")):
        api_path = {"alerts": "/api/v1/alerts", "policies": "/api/v1/policies", "exports": "/api/v1/exports"}[key]
        doc = api_get(desk, api_path + "?limit=50", stranger)
        assert doc["total"] == 0 and doc[key] == [], doc
        go(browser, console_url, hash_)
        wait(browser, lambda d, empty=empty: any(p.text == empty for p in css(d, "#main p.empty")), f"{hash_} empty")
        assert clean(browser) == [], hash_
    # back to the seed's pages through the history: still the stranger's answers
    browser.back()
    browser.back()
    browser.back()
    wait(browser, lambda d: "/events/" in d.current_url and banner(d) == problem["detail"], "not found again")
    # the page names the id of its own address, and nothing else of the seed
    assert [s for s in clean(browser) if s != desk["chain"]] == [] and not css(browser, "#event-name")
    assert browser_errors(browser) == []


def test_the_admin_page(browser, console_url, desk, login, shot, make_user, browser_errors):
    """Users with their roles and account grants, the admin's tokens and the playbooks,
    as the API lists them."""
    admin, password = make_user(role="admin")
    desk["api"].token(admin)  # an API token of the admin's, beside the session
    browser.get(console_url)
    login(browser, admin, password)
    go(browser, console_url, "/admin")
    users = api_get(desk, "/api/v1/users", admin)["users"]
    wait(browser, lambda d: [r.get_attribute("data-user") for r in css(d, "#users-table tr[data-user]")]
         == [u["user"] for u in users], "the users")
    for name in (desk["ana"][0], desk["vic"][0], admin):
        u = next(x for x in users if x["user"] == name)
        cells = [c.text for c in css(browser, f"#users-table tr[data-user='{name}'] td")]
        assert cells[2:5] == [u["role"], u["state"], u["accounts"]], (cells, u)
    assert next(x for x in users if x["user"] == desk["vic"][0])["accounts"] == desk["account"]
    tokens = api_get(desk, "/api/v1/tokens", admin)["tokens"]
    assert any(x.get("name") == "tests" for x in tokens)
    wait(browser, lambda d: sorted(r.find_elements(By.TAG_NAME, "td")[0].text for r in css(d, "#tokens-table tbody tr"))
         == sorted(x.get("name") or x["token_id"] for x in tokens), "the tokens")
    playbooks = api_get(desk, "/api/v1/playbooks", admin)["playbooks"]
    assert playbooks
    wait(browser, lambda d: [r.get_attribute("data-name") for r in css(d, "#playbooks-table tr[data-name]")]
         == [p["name"] for p in playbooks], "the playbooks")
    for p in playbooks:
        cells = css(browser, f"#playbooks-table tr[data-name='{p['name']}'] td")
        assert [c.text for c in cells[1:3]] == [p["entity_type"], p["origin"]], p
        assert (p.get("description") or "") in cells[0].text, p
    accounts = api_get(desk, "/api/v1/accounts", admin)["accounts"]
    assert desk["account"] in accounts
    wait(browser, lambda d: desk["account"] in css(d, "#admin-accounts p")[0].text, "the accounts")
    shot(browser, "admin")
    shot(browser, "admin-tokens", at="#admin-tokens")
    shot(browser, "admin-playbooks", at="#admin-playbooks")
    assert browser_errors(browser) == []
