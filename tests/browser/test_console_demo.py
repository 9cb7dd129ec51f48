# SPDX-License-Identifier: Apache-2.0
"""The console on the demo's alerts, end to end: examples/alerts.jsonl (the file
deploy/local/demo feeds) goes through the real cwpp-ingest, cwpp-whitelist-filter and
cwpp-correlator into events; an analyst logs in, filters the list by status, level,
keyword and entity and gets the API's rows; opens the largest event; its chain picture is
drawn and clicking the attacker's IP opens that entity; handling it with a validity
period and status "handled" goes through the real cwpp-responder to a real cwpp-enforcer
(the account's perimeter agent, its firewall a network namespace of its own), and the
page, left alone, shows the event become handled; the Alerts tab shows its alerts
handled, as the API says.

The file's accounts get a name of this test's own and its times are moved to the last
hours, so that each run makes new events on a database that keeps the earlier ones."""
import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import cwpp_testlib as t
from console_seed import api_get, css, rows, visible, wait

DEMO_ALERTS = t.REPO / "examples" / "alerts.jsonl"
ATTACKER = "203.0.113.9"
WAIT = 60  # the pipeline's waits (the page's are console_seed's)
RESPONDER_ENV = {
    "CWPP_PG_DSN": t.RESPONDER_DSN,
    "CWPP_RESPONDER_TASK_TIMEOUT_MS": "5000",
    "CWPP_RESPONDER_TICK_MS": "200",
}


def demo_records(accounts):
    """The demo's records, each account renamed by accounts and the alerts' times moved so
    that the newest is ten minutes old (their spacing kept). A line that is not an alert
    (the file holds deliberately bad records) goes as it is."""
    lines = DEMO_ALERTS.read_bytes().splitlines()
    docs = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        docs.append(doc if isinstance(doc, dict) else None)

    def when(doc):
        try:
            return datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
    times = [w for w in (when(d) for d in docs if d) if w]
    shift = datetime.now(timezone.utc) - timedelta(minutes=10) - max(times)
    out = []
    for line, doc in zip(lines, docs):
        if doc is None:
            out.append(line)
            continue
        if doc.get("account_id") in accounts:
            doc["account_id"] = accounts[doc["account_id"]]
        w = when(doc)
        if w is not None:
            doc["occurred_at"] = (w + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(json.dumps(doc).encode())
    return out


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def firewall_ns():
    """A network namespace for the perimeter agent's nftables (the host's stay untouched)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the enforcer's network namespace needs root and iproute2")
    ns = "cwpp-con" + uuid.uuid4().hex[:6]
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    yield ns
    sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def demo(prefix, services, console_api, make_user, firewall_ns, tmp_path):
    """The pipeline on the console's prefix fed with the demo's alerts; the account's
    gateway agent declared its perimeter and running; an analyst of the account."""
    tg = t.tag()
    acct = f"acct-demo-{tg}"
    accounts = {"acct-1001": acct, "acct-2002": f"acct-demo2-{tg}"}
    for name, env in (("ingest", {}), ("whitelist-filter", {"CWPP_PG_DSN": t.WHITELIST_DSN}),
                      ("correlator", {"CWPP_PG_DSN": t.CORRELATOR_DSN}),
                      ("responder", RESPONDER_ENV)):
        services(name, prefix, extra_env=env).start().wait_ready()
    gateway = f"gw-{tg}"
    st, ans, _ = console_api.post("/api/v1/accounts/perimeter",
                                  {"account": acct, "asset": gateway}, user="admin")
    assert st == 200 and ans.get("status") == "ok", (st, ans)
    services("enforcer", prefix, group=f"{prefix}enforcer-{gateway}", extra_env={
        "CWPP_ENFORCER_ACCOUNT_ID": acct, "CWPP_ENFORCER_ASSET_ID": gateway,
        "CWPP_ENFORCER_NETNS": f"/run/netns/{firewall_ns}",
        "CWPP_ENFORCER_STATE_DIR": str(tmp_path / "enforcer"),
        "CWPP_ENFORCER_NAME": f"agent-{gateway}"}).start().wait_ready()

    records = demo_records(accounts)
    t.produce(prefix + "alerts.raw", records)
    parts = 3
    for group, topic in (("ingest", "alerts.raw"), ("whitelist-filter", "alerts.normalized"),
                         ("correlator", "alerts.accepted")):
        def applied(group=group, topic=topic):
            hw = t.high_watermarks(prefix + topic, parts)
            done = t.committed(prefix + group, prefix + topic, parts)
            return sum(hw.values()) > 0 and all(max(done.get(p, 0), 0) >= n for p, n in hw.items())
        t.wait_for(applied, timeout=WAIT, what=f"{group} to apply {topic}")
    yield {"account": acct, "api": console_api, "ana": make_user(acct), "gateway": gateway}
    console_api.post("/api/v1/accounts/perimeter",
                     {"account": acct, "asset": gateway, "remove": True}, user="admin")


def test_the_demo_alerts_from_the_list_to_a_handled_event(browser, console_url, demo, login, shot,
                                                          browser_errors):
    user, password = demo["ana"]
    every = api_get(demo, "/api/v1/events?limit=100", user)
    assert every["total"] >= 2, every  # the demo's account gets more than one event
    browser.get(console_url)
    login(browser, user, password)
    browser.get(console_url + "#/events")
    wait(browser, lambda d: rows(d) == [e["event_id"] for e in every["events"]], "the list")
    shot(browser, "demo-events")

    # the filters, each set in the page's form, give the API's rows for the same query
    def apply(fill, query, what):
        browser.get(console_url + "#/events")
        wait(browser, lambda d: rows(d), "the list")
        fill()
        css(browser, "#filter-apply")[0].click()
        want = [e["event_id"] for e in api_get(demo, "/api/v1/events?limit=50&" + query, user)["events"]]
        wait(browser, lambda d: rows(d) == want, what)
        return want

    def ticks(name, *values):
        def do():
            for v in values:
                css(browser, f"#filter-{name} input[value='{v}']")[0].click()
        return do

    def typed(name, value):
        def do():
            el = css(browser, f"#filter-{name}")[0]
            el.clear()
            el.send_keys(value)
        return do

    by_status = apply(ticks("status", "unhandled"), "status=unhandled", "the status filter")
    by_level = apply(ticks("level", "critical", "high"), "level=critical,high", "the level filter")
    assert by_status and by_level
    by_keyword = apply(typed("q", "brute"), "q=brute", "the keyword filter")
    assert by_keyword, "the demo has an SSH brute force"
    by_entity = apply(typed("entity", f"ip:{ATTACKER}"), f"entity=ip:{ATTACKER}", "the entity filter")
    assert by_entity
    shot(browser, "demo-events-by-entity")

    # the largest event, opened from the list sorted by the number of alerts
    largest = max(every["events"], key=lambda e: (e["alert_count"], e["event_id"]))
    biggest = apply(lambda: Select(css(browser, "#filter-sort")[0]).select_by_value("alerts"),
                    "sort=alerts", "the list by alerts")
    assert api_get(demo, f"/api/v1/events/{biggest[0]}", user)["alert_count"] == largest["alert_count"]
    eid = biggest[0]
    css(browser, f"#events-table tr[data-id='{eid}'] a")[0].click()
    wait(browser, lambda d: visible(d, "#event-name"), "the event page")
    css(browser, "#tab-chain")[0].click()
    wait(browser, lambda d: css(d, "#chain-graph g.node"), "the chain picture")
    chain = api_get(demo, f"/api/v1/events/{eid}/chain", user)
    assert len(css(browser, "#chain-graph g.node")) == len(chain["graph"]["nodes"])
    shot(browser, "demo-chain")
    ip = [n for n in css(browser, "#chain-graph g.node")
          if n.get_attribute("data-type") == "ip" and n.get_attribute("data-value") == ATTACKER]
    assert ip, "the attacker's IP is in the picture"
    ip[0].click()
    wait(browser, lambda d: visible(d, "#entity-detail"), "the entity")
    assert css(browser, "#entity-detail")[0].get_attribute("data-entity") == f"ip:{ATTACKER}"

    # handle it: the recommended block, valid two minutes, the event handled once done
    css(browser, "#entity-handle")[0].click()
    dlg = wait(browser, lambda d: next(iter(visible(d, "dialog[open]")), False), "the dialog")
    assert "Block IP" in Select(dlg.find_element(By.ID, "handle-how")).first_selected_option.text
    valid = dlg.find_element(By.ID, "handle-validity")
    valid.clear()
    valid.send_keys("2")
    Select(dlg.find_element(By.CSS_SELECTOR, "select[name=validity_unit]")).select_by_value("60")
    Select(dlg.find_element(By.ID, "handle-status")).select_by_value("handled")
    dlg.find_element(By.CSS_SELECTOR, "textarea.remark").send_keys("block the attacker")
    shot(browser, "demo-handle")
    dlg.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait(browser, lambda d: not visible(d, "dialog[open]") or visible(d, "dialog[open] .dialog-error"),
         "the dialog to close")
    errs = visible(browser, "dialog[open] .dialog-error")
    assert not errs, errs[0].text

    # the page, left alone, follows the event to handled (the agent applied the block)
    wait(browser, lambda d: "handled" == css(d, "#event-status .badge")[0].text.strip(),
         "the header to say handled", timeout=WAIT)
    ev = api_get(demo, f"/api/v1/events/{eid}", user)
    assert ev["status"] == "handled"
    pols = api_get(demo, f"/api/v1/events/{eid}/policies", user)["policies"]
    assert [(p["entity_value"], p["asset_id"], p["state"]) for p in pols] == \
        [(ATTACKER, demo["gateway"], "active")]
    valid_s = (datetime.fromisoformat(pols[0]["valid_until"].replace("Z", "+00:00")) -
               datetime.fromisoformat(pols[0]["created_at"].replace("Z", "+00:00"))).total_seconds()
    assert 110 <= valid_s <= 130, valid_s
    css(browser, "#tab-alerts")[0].click()
    alerts = api_get(demo, f"/api/v1/events/{eid}/alerts?limit=100", user)["alerts"]
    assert alerts and all(a["status"] == "handled" for a in alerts
                          if a.get("defense") != "precision_defense"), alerts

    def shown(d):
        out = {}
        for r in css(d, "#event-alerts tbody tr[data-id]"):
            out[r.get_attribute("data-id")] = r.find_element(By.CSS_SELECTOR, ".col-status .badge").text
        return out
    wait(browser, lambda d: shown(d) == {a["alert_id"]: a["status"].replace("_", " ") for a in alerts},
         "the alerts tab to show the API's statuses")
    shot(browser, "demo-alerts-handled")
    css(browser, "#tab-response")[0].click()
    wait(browser, lambda d: css(d, f".policy[data-id='{pols[0]['policy_id']}']"), "the policy")
    text = css(browser, f".policy[data-id='{pols[0]['policy_id']}']")[0].text
    assert re.search(r"\bsucceeded\b", text), text
    shot(browser, "demo-response")
    assert browser_errors(browser) == []
