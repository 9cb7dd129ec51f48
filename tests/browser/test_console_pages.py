# SPDX-License-Identifier: Apache-2.0
"""The console's pages in a real browser against the real stack (services/api/console/):
the security events list filtered in the page shows exactly the rows the API answers for
the same filters, with the counts per status and the total; an event's overview shows
its stages and every urgency reason including the quiet one added at reading; its chain
is drawn as our own SVG and clicking the IP's node opens the Entities tab on it, whose
Handle dialog applies the built-in policy through the real responder; ticking events and
changing their owner changes them; the alert rule builder previews a rule's impact; a
viewer sees no change button anywhere. Each page is photographed at desktop and phone
width (tests/browser/conftest.py's shot), and the browser's log stays free of errors
(no CSP violation, no script error).

Events are written straight into the database as its owner (the correlator's rows, as
tests/integration/test_api_events.py does): these tests are about the pages."""
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from console_seed import (IP, STATUSES, api_get, banner, css, desk, go, rows,  # noqa: F401
                          submit, visible, wait)

# ------------------------------------------------------------------ the tests

def test_events_list_filters_like_the_api(browser, console_url, desk, login, shot, browser_errors):
    """The list shows the API's rows for the same filters, in its order, with its total
    and the counts per status; the filters are real labelled controls."""
    user, password = desk["ana"]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/events")
    doc = api_get(desk, "/api/v1/events?limit=50", user)
    wait(browser, lambda d: rows(d) == [e["event_id"] for e in doc["events"]], "the unfiltered list")
    assert set(rows(browser)) == set(desk["ids"])
    assert f"of {doc['total']}" in css(browser, ".pager-text")[0].text
    for st in STATUSES:
        n = api_get(desk, f"/api/v1/events?status={st}&limit=1", user)["total"]
        wait(browser, lambda d, st=st, n=n: any(
            c.get_attribute("data-status") == st and c.find_element(By.CSS_SELECTOR, ".count-n").text == str(n)
            for c in css(d, ".count-chip")), f"count of {st}")
    # every filter control has a label
    for el in css(browser, "#filter-form input:not([type=checkbox]), #filter-form select"):
        eid = el.get_attribute("id")
        assert eid and (css(browser, f"label[for='{eid}']") or el.get_attribute("aria-label")), eid
    shot(browser, "events")

    # filter: status unhandled or handling, level high or critical, sort by urgency
    for name, value in (("status", "unhandled"), ("status", "handling"), ("level", "critical"), ("level", "high")):
        css(browser, f"#filter-{name} input[value='{value}']")[0].click()
    Select(css(browser, "#filter-sort")[0]).select_by_value("urgency")
    css(browser, "#filter-apply")[0].click()
    doc = api_get(desk, "/api/v1/events?status=unhandled,handling&level=critical,high&sort=urgency&limit=50", user)
    assert doc["events"], "the seed has events matching the filter"
    wait(browser, lambda d: rows(d) == [e["event_id"] for e in doc["events"]], "the filtered list")
    assert "status=unhandled%2Chandling" in browser.current_url or "status=unhandled,handling" in browser.current_url
    # keyword
    go(browser, console_url, f"/events?q={desk['tg']}&name=chain")
    wait(browser, lambda d: rows(d) == [desk["chain"]], "the keyword and name filter")
    shot(browser, "events-filtered")
    # a filter the API refuses: its problem's detail sentence is the banner
    st, problem, _ = desk["api"].get("/api/v1/events?entity=nonsense&limit=50", user=user)
    assert st == 400 and problem["detail"]
    go(browser, console_url, "/events?entity=nonsense")
    wait(browser, lambda d: problem["detail"] in banner(d), "the problem's detail in the banner")
    assert browser_errors(browser) == []


def test_event_details_chain_entity_and_handle(browser, console_url, desk, login, shot, browser_errors):
    """Overview (stages, reasons incl. quiet), the chain's SVG graph, a click on the IP
    opening the Entities tab on it, and Handle applying the built-in policy."""
    user, password = desk["ana"]
    eid = desk["chain"]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, f"/events/{eid}")
    wait(browser, lambda d: visible(d, "#reasons li"), "the urgency reasons")
    reasons = [li.text for li in css(browser, "#reasons li")]
    assert any(r.startswith("quiet") for r in reasons), reasons
    assert any("core_asset" in r for r in reasons), reasons
    assert [li.text.split()[-1] for li in css(browser, "#stages li")] == ["TA0001", "TA0002", "TA0040"]
    wait(browser, lambda d: css(d, "#affected-assets table"), "the affected assets")
    # times: local text, UTC in the title
    tm = css(browser, "time")[0]
    assert tm.get_attribute("title").endswith("UTC")
    shot(browser, "overview")

    css(browser, "#tab-chain")[0].click()
    wait(browser, lambda d: css(d, "#chain-graph g.node"), "the graph")
    chain = api_get(desk, f"/api/v1/events/{eid}/chain", user)
    nodes = css(browser, "#chain-graph g.node")
    assert len(nodes) == len(chain["graph"]["nodes"])
    assert len(css(browser, "#chain-graph g.edge")) == len(chain["graph"]["edges"])
    assert len(css(browser, "#timeline li.tl-item")) == len(chain["timeline"]) == 5
    # zoom changes the viewBox; the nodes are laid out without overlap
    vb = css(browser, "#chain-graph")[0].get_dom_attribute("viewBox")
    assert vb and len(vb.split()) == 4, vb
    css(browser, "#zoom-in")[0].click()
    assert css(browser, "#chain-graph")[0].get_dom_attribute("viewBox") != vb
    css(browser, "#zoom-fit")[0].click()
    boxes = [n.rect for n in nodes]
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            p, q = boxes[a], boxes[b]
            assert (p["x"] + p["width"] <= q["x"] or q["x"] + q["width"] <= p["x"] or
                    p["y"] + p["height"] <= q["y"] or q["y"] + q["height"] <= p["y"]), (p, q)
    shot(browser, "chain")
    ip = next(n for n in nodes if n.get_attribute("data-type") == "ip")
    assert ip.get_attribute("data-value") == IP
    ip.click()
    wait(browser, lambda d: "/entities" in d.current_url and visible(d, "#entity-detail"), "the entity tab")
    assert css(browser, "#entity-detail")[0].get_attribute("data-entity") == f"ip:{IP}"
    shot(browser, "entity")

    css(browser, "#entity-handle")[0].click()
    dlg = wait(browser, lambda d: next(iter(visible(d, "dialog[open]")), False), "the handle dialog")
    how = Select(dlg.find_element(By.ID, "handle-how"))
    assert how.first_selected_option.get_attribute("value") == "policy"
    Select(dlg.find_element(By.ID, "handle-status")).select_by_value("handling")
    dlg.find_element(By.CSS_SELECTOR, "textarea.remark").send_keys("blocked from the console")
    shot(browser, "handle-dialog")
    submit(browser, dlg)
    banner(browser)
    assert "banner-ok" in css(browser, "#banner")[0].get_attribute("class")
    ev = api_get(desk, f"/api/v1/events/{eid}", user)
    assert ev["status"] == "handling"
    pols = api_get(desk, f"/api/v1/events/{eid}/policies", user)["policies"]
    assert [(p["entity_type"], p["entity_value"], p["created_by"]) for p in pols] == [("ip", IP, user)]
    css(browser, "#tab-response")[0].click()
    wait(browser, lambda d: css(d, f".policy[data-id='{pols[0]['policy_id']}']"), "the policy card")
    css(browser, "#tab-log")[0].click()
    wait(browser, lambda d: any("blocked from the console" in r.text for r in css(d, "#log-table tr")), "the remark in the log")
    shot(browser, "log")
    assert browser_errors(browser) == []


def test_bulk_owner_and_the_rule_builder(browser, console_url, desk, login, shot, browser_errors):
    """Ticking two events and setting their owner changes both; the rule builder of an
    alert previews its impact live."""
    user, password = desk["ana"]
    other = desk["bob"][0]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/events")
    wait(browser, lambda d: len(rows(d)) == 12, "the list")
    picked = rows(browser)[1:3]
    for eid in picked:
        css(browser, f"#events-table tr[data-id='{eid}'] input.row-select")[0].click()
    wait(browser, lambda d: css(d, "#bulk-count")[0].text == "2 selected", "the selection count")
    css(browser, "#bulk-owner")[0].click()
    dlg = wait(browser, lambda d: next(iter(visible(d, "dialog[open]")), False), "the owner dialog")
    owner = dlg.find_element(By.CSS_SELECTOR, "input[name=owner]")
    owner.clear()
    owner.send_keys(other)
    submit(browser, dlg)
    assert "2 events" in banner(browser)
    for eid in picked:
        assert api_get(desk, f"/api/v1/events/{eid}", user)["owner"] == other
    wait(browser, lambda d: all(css(d, f"#events-table tr[data-id='{e}'] .col-owner")[0].text == other for e in picked),
         "the owners in the list")
    shot(browser, "bulk-owner")

    go(browser, console_url, f"/events/{desk['chain']}/alerts")
    wait(browser, lambda d: visible(d, "#event-alerts .whitelist-btn"), "the alerts")
    assert css(browser, "#alerts-title")[0].text == "Alerts (5)"
    css(browser, "#event-alerts .whitelist-btn")[0].click()
    dlg = wait(browser, lambda d: next(iter(visible(d, "dialog[open]")), False), "the rule builder")
    wait(browser, lambda d: dlg.find_elements(By.CSS_SELECTOR, ".preview-matched"), "the preview")
    value = dlg.find_element(By.CSS_SELECTOR, ".rule-value")
    Select(dlg.find_element(By.CSS_SELECTOR, ".rule-op")).select_by_value("startswith")
    value.clear()
    value.send_keys("/tmp/miner")
    wait(browser, lambda d: dlg.find_element(By.CSS_SELECTOR, ".preview-matched").text == "5", "the preview of the prefix")
    assert dlg.find_elements(By.CSS_SELECTOR, ".broad-warning")  # every alert of its name
    shot(browser, "rule-builder")
    assert browser_errors(browser) == []


def test_a_viewer_sees_no_change_button(browser, console_url, desk, login, shot, browser_errors):
    user, password = desk["vic"]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/events")
    wait(browser, lambda d: len(rows(d)) == 12, "the list")
    assert not visible(browser, "#bulk-bar button")
    go(browser, console_url, f"/events/{desk['chain']}")
    wait(browser, lambda d: visible(d, "#event-name"), "the event")
    assert not css(browser, "#event-actions")
    go(browser, console_url, f"/events/{desk['chain']}/entities?entity=ip:{IP}")
    wait(browser, lambda d: visible(d, "#entity-detail"), "the entity")
    assert not css(browser, "#entity-handle") and not css(browser, ".handle-btn")
    go(browser, console_url, f"/events/{desk['chain']}/alerts")
    wait(browser, lambda d: visible(d, "#event-alerts"), "the alerts")
    assert not css(browser, ".whitelist-btn") and not css(browser, "#alerts-detach")
    shot(browser, "viewer-alerts")
    css(browser, "#logout")[0].click()
    wait(browser, lambda d: visible(d, "#login-user"), "the login page after logout")
    # nothing of the session is left: the list is not shown without logging in again
    go(browser, console_url, "/events")
    wait(browser, lambda d: visible(d, "#login-user"), "the login page again")
    assert browser_errors(browser) == []


def test_keyboard_focus_layout_and_progress(browser, console_url, desk, shot, browser_errors):
    """Without a mouse: the login form is filled and sent from the keyboard; Tab shows a
    visible focus ring; a graph node is a focusable button that Enter opens. The list
    loads without shifting what is already on the screen (cumulative layout shift under
    0.1, the "good" bound of Chrome's own metric), and a request slower than 300 ms shows
    the progress bar, which goes once the answer is in."""
    user, password = desk["ana"]
    browser.get(console_url)
    field = wait(browser, lambda d: next(iter(visible(d, "#login-user")), False), "the login form")
    assert browser.switch_to.active_element == field, "the user name has the focus"
    field.send_keys(user, Keys.TAB)
    browser.switch_to.active_element.send_keys(password, Keys.ENTER)
    wait(browser, lambda d: user in css(d, "#whoami")[0].text, "logged in by keyboard")

    # a fresh load of the list, its layout shifts measured by the browser
    browser.get("about:blank")
    browser.get(console_url + "#/events")
    browser.execute_script(
        "window.__shift = 0; new PerformanceObserver((l) => { for (const e of l.getEntries())"
        " if (!e.hadRecentInput) window.__shift += e.value; })"
        ".observe({type: 'layout-shift', buffered: true});")
    wait(browser, lambda d: len(rows(d)) == 12, "the list")
    time.sleep(1)
    shift = browser.execute_script("return window.__shift")
    assert shift < 0.1, f"cumulative layout shift {shift}"

    # Tab from the page's start: the skip link, then the navigation, each with a ring
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    for _ in range(3):
        el = browser.switch_to.active_element
        style = browser.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)];", el)
        assert style[0] != "none" and style[1] >= 2, (el.tag_name, el.text, style)
        el.send_keys(Keys.TAB)

    go(browser, console_url, f"/events/{desk['chain']}/chain")
    node = wait(browser, lambda d: next((n for n in css(d, "#chain-graph g.node")
                                         if n.get_attribute("data-type") == "ip"), False), "the graph")
    assert node.get_attribute("tabindex") == "0" and node.get_attribute("role") == "button"
    browser.execute_script("arguments[0].focus()", node)
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda d: "/entities" in d.current_url and visible(d, "#entity-detail"), "Enter opened it")

    # a slow API: the progress bar shows after 300 ms and goes with the answer
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        go(browser, console_url, "/alerts")
        wait(browser, lambda d: "active" in css(d, "#progress")[0].get_attribute("class"),
             "the progress bar", timeout=5)
        assert css(browser, "body")[0].get_attribute("aria-busy") == "true"
        wait(browser, lambda d: "active" not in css(d, "#progress")[0].get_attribute("class"),
             "the progress bar to go")
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    assert browser_errors(browser) == []
