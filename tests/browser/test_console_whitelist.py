# SPDX-License-Identifier: Apache-2.0
"""The console's whitelist workflow in a real browser against the real pipeline
(docs/whitelist.md): alerts go to <prefix>alerts.raw and through the real ingest,
whitelist-filter and correlator, as in tests/integration/test_whitelist.py; the console
is served by the real cwpp-api of the same prefix.

- An analyst opens an event's Alert tab and clicks "Add to whitelist" on an alert: the
  rule builder offers the alert's fields with their values, an operator, a value and a
  scope for each of several rules (OR-ed); each rule's impact preview appears before
  anything is saved and is the figure the API's preview endpoint answers for that rule;
  a broad rule shows the broad-rule warning; saving (with a remark and an expiry)
  whitelists the alert and creates the rules.
- The Whitelist rules page lists them with hit counts and expiry as the API does, and
  previews a listed rule as the API does.
- A recurrence of the whitelisted alert is suppressed (it joins no event, only its count
  moves) and a new alert a rule matches is suppressed as automatically whitelisted (the
  rule's hit count goes up), on the API and on the pages.
- On the Alerts page, filtered with "Handled or not", ticking the whitelisted alerts and
  "Remove from whitelist" makes them unhandled; the correlator joins them to an event.
- Deleting a rule says it affects future alerts only; the rule leaves the list.

Every figure the pages show is compared with what the API answers at that moment."""
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import cwpp_testlib as t
from console_seed import banner, css, go, submit, visible, wait

WAIT = 30


# ------------------------------------------------------------------ the stack

def virus(account, name, asset, path, minutes_ago):
    """A virus-scan alert (t.alert) occurring minutes_ago before the tests started: within
    the window the rules' preview looks back over, whatever the day. Virus alerts are the
    same alert when asset, path and md5 match."""
    return t.alert(account, name, "virus", "high", t.at(minutes_ago), asset,
                   role="application", source="virus_scan", tactic="TA0002",
                   file={"path": path, "md5": t.md5hex(path)})


# The whitelisted alert A and its neighbour B on asset w1; ten more of the same name on
# w2 under /home (so a rule on /home/ is broad, one on /opt/app/ is not: 2 of 12).
A_PATH = "/opt/app/bin/tool-1"
B_PATH = "/opt/app/lib/x.so"
HOME = [f"/home/u{k}/dl/setup-{k}" for k in range(10)]


@pytest.fixture
def wl(prefix, services, console_api, make_user):
    """ingest, whitelist-filter and correlator on the console's prefix; twelve alerts of
    one name in an account of its own, through the pipeline into events; an analyst of
    that account. Answers a dict: account, name, api, user, a/b (alert ids), event (A's
    event id), ids {path: alert id}."""
    ing = services("ingest", prefix).start()
    flt = services("whitelist-filter", prefix, group=f"{prefix}wl",
                   extra_env={"CWPP_PG_DSN": t.WHITELIST_DSN,
                              "CWPP_WHITELIST_REFRESH_MS": "100"}).start()
    cor = services("correlator", prefix, group=f"{prefix}corr",
                   extra_env={"CWPP_PG_DSN": t.CORRELATOR_DSN}).start()
    for s in (ing, flt, cor):
        s.wait_ready()
    g = t.tag()
    account, name = f"acct-wl-{g}", f"Dropper {g}"
    vals = [virus(account, name, "w1", A_PATH, 40), virus(account, name, "w1", B_PATH, 39)]
    vals += [virus(account, name, "w2", p, 38 - k) for k, p in enumerate(HOME)]
    t.produce(prefix + "alerts.raw", vals, keys=[account.encode()] * len(vals))
    user = make_user(account)
    d = {"account": account, "name": name, "api": console_api, "user": user,
         "prefix": prefix}
    # every alert stored and in an event (the correlator's)
    ids = stored_alerts(d, 12)
    d["ids"] = ids
    d["a"], d["b"] = ids[A_PATH], ids[B_PATH]
    d["event"] = t.wait_for(lambda: event_of(d, d["a"]), timeout=WAIT, what="A's event")
    t.wait_for(lambda: all(event_of(d, x) for x in ids.values()), timeout=WAIT,
               what="every alert in an event")
    return d


# ------------------------------------------------------------------ the API side

def api_get(d, path):
    st, doc, _ = d["api"].get(path, user=d["user"][0])
    assert st == 200, (path, st, doc)
    return doc


def api_post(d, path, body):
    st, doc, _ = d["api"].post(path, body, user=d["user"][0])
    assert st == 200, (path, st, doc)
    return doc


def alerts_by_path(d):
    doc = api_get(d, f"/api/v1/alerts?account={d['account']}&limit=100")
    out = {}
    for a in doc["alerts"]:
        full = api_get(d, f"/api/v1/alerts/{a['alert_id']}")
        out[(full.get("file") or {}).get("path")] = a["alert_id"]
    return out


def stored_alerts(d, n):
    """{path: alert id} once the account has n alerts."""
    def all_there():
        m = alerts_by_path(d)
        return m if len(m) == n else None
    return t.wait_for(all_there, timeout=WAIT, what=f"{n} alerts stored")


def alert(d, aid):
    return api_get(d, f"/api/v1/alerts/{aid}")


def event_of(d, aid):
    """The id of the event alert aid is a member of (None when in none)."""
    evs = [e for e in alert(d, aid).get("events") or [] if e.get("status") != "merged"]
    return evs[0]["event_id"] if evs else None


def event_alert_ids(d, eid):
    return [a["alert_id"] for a in api_get(d, f"/api/v1/events/{eid}/alerts?limit=100")["alerts"]]


def rules_of(d, all_=False):
    q = f"/api/v1/whitelist/rules?alert_name={quote(d['name'], safe='')}&limit=100"
    return api_get(d, q + ("&all=true" if all_ else ""))["rules"]


def preview(d, rule):
    """The API's preview of rule (field, op, value, scope) made from alert A."""
    body = {"account_id": d["account"], "alert_name": d["name"], "from_alert_id": d["a"],
            "scope": "all", **rule}
    return api_post(d, "/api/v1/whitelist/rules/preview", body)


def whitelist_with_rules(d, remark="seeded by the test"):
    """Whitelists A with two rules through the API (the builder's answer, for the tests
    that start after it): file.path eq A's path, and file.path startswith /opt/app/."""
    ans = api_post(d, f"/api/v1/alerts/{d['a']}/whitelist", {"remark": remark, "rules": [
        {"alert_name": d["name"], "field": "file.path", "op": "eq", "value": A_PATH},
        {"alert_name": d["name"], "field": "file.path", "op": "startswith", "value": "/opt/app/"}]})
    assert ans["status"] == "ok", ans
    t.wait_for(lambda: event_of(d, d["a"]) is None, timeout=WAIT, what="A out of its event")
    return sorted(r["rule_id"] for r in ans["result"]["rules"])


# ------------------------------------------------------------------ the page side

def dialog(browser, what):
    return wait(browser, lambda b: next(iter(visible(b, "dialog[open]")), False), what)


def utc_title(iso):
    """The title the console gives a time: its UTC time, 'YYYY-MM-DD HH:MM:SS UTC'."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def preview_shown(box):
    """(the matched figure, the whole sentence) of the preview shown in box, or None."""
    m = css(box, ".preview-matched")
    if not m:
        return None
    line = css(box, ".preview-line")[0].text
    return m[0].text, line


def figures(p):
    """What a preview's sentence says of an API preview p beside the matched figure."""
    return (f"of {p['considered']} alerts of this name ({p['share'] * 100:.1f} %) on "
            f"{p['assets']} asset")


def ok_banner(browser):
    text = banner(browser)
    assert "banner-ok" in css(browser, "#banner")[0].get_attribute("class"), text
    return text


def set_value(el, text):
    el.clear()
    el.send_keys(text)


def rule_rows(browser):
    return {r.get_attribute("data-id"): r for r in css(browser, "#rules-table tbody tr[data-id]")}


def alert_rows(browser):
    return [r.get_attribute("data-id") for r in css(browser, "#alerts-table tbody tr[data-id]")]



# ------------------------------------------------------------------ the tests

def test_rule_builder_previews_and_saves_rules(browser, console_url, wl, login, shot,
                                               browser_errors):
    """Add to whitelist on the Alert tab: the alert's fields with their values, each
    rule's live preview equal to the API's before anything is saved, the broad-rule
    warning, two rules OR-ed saved with a remark and an expiry; the Whitelist rules page
    lists them as the API does and previews a listed rule as the API does."""
    d = wl
    user, password = d["user"]
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, f"/events/{d['event']}/alerts")
    row = f"#event-alerts tr[data-id='{d['a']}']"
    wait(browser, lambda b: visible(b, row + " .whitelist-btn"), "A's Add to whitelist button")
    assert sorted(r.get_attribute("data-id") for r in css(browser, "#event-alerts tr[data-id]")) == \
        sorted(event_alert_ids(d, d["event"]))
    # the row's Add to whitelist is on screen at 1280 px, not behind a horizontal scroll
    btn = css(browser, row + " .whitelist-btn")[0]
    right = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                   "return [r.right, document.documentElement.clientWidth];", btn)
    assert right[0] <= right[1], right
    shot(browser, "event-alerts")
    css(browser, row + " .whitelist-btn")[0].click()
    dlg = dialog(browser, "the rule builder")
    wait(browser, lambda b: css(dlg, "fieldset.rule"), "the first rule")

    # the alert's fields, each with its value, to pick from
    fields = api_get(d, f"/api/v1/alerts/{d['a']}/fields")["fields"]
    box1 = css(dlg, "fieldset.rule")[0]
    fsel = Select(box1.find_element(By.CSS_SELECTOR, ".rule-field"))
    assert [o.get_attribute("value") for o in fsel.options] == [f["field"] for f in fields]
    for o, f in zip(fsel.options, fields):
        assert f["value"][:30] in o.text, (o.text, f)
    value1 = box1.find_element(By.CSS_SELECTOR, ".rule-value")
    by_name = {f["field"]: f["value"] for f in fields}
    for name in ("asset.id", "file.md5", "file.path"):
        fsel.select_by_value(name)
        assert value1.get_attribute("value") == by_name[name], name
    assert fsel.first_selected_option.get_attribute("value") == "file.path"
    assert value1.get_attribute("value") == A_PATH
    ops = [o.get_attribute("value") for o in Select(box1.find_element(By.CSS_SELECTOR, ".rule-op")).options]
    assert ops == ["eq", "contains", "startswith", "regex", "gt", "lt"]
    scopes = Select(box1.find_element(By.CSS_SELECTOR, ".rule-scope"))
    assert [o.get_attribute("value") for o in scopes.options] == ["all", "asset"]
    assert "w1" in scopes.options[1].text

    # rule 1's live preview: the API's figures, before anything is saved
    p1 = preview(d, {"field": "file.path", "op": "eq", "value": A_PATH})
    wait(browser, lambda b: (preview_shown(box1) or ("",))[0] == str(p1["matched"]), "rule 1's preview")
    assert figures(p1) in preview_shown(box1)[1]
    assert not css(box1, ".broad-warning") and not p1["needs_force"]
    assert rules_of(d) == [], "nothing is saved yet"

    # rule 2, OR-ed: a broad one first (the warning), then a narrower one
    css(dlg, "#rule-add")[0].click()
    wait(browser, lambda b: len(css(dlg, "fieldset.rule")) == 2, "a second rule")
    box2 = css(dlg, "fieldset.rule")[1]
    Select(box2.find_element(By.CSS_SELECTOR, ".rule-field")).select_by_value("file.path")
    Select(box2.find_element(By.CSS_SELECTOR, ".rule-op")).select_by_value("startswith")
    value2 = box2.find_element(By.CSS_SELECTOR, ".rule-value")
    set_value(value2, "/home/")
    broad = preview(d, {"field": "file.path", "op": "startswith", "value": "/home/"})
    assert broad["needs_force"] and broad["broad"]
    wait(browser, lambda b: (preview_shown(box2) or ("",))[0] == str(broad["matched"]), "the broad rule's preview")
    assert figures(broad) in preview_shown(box2)[1]
    warn = visible(box2, ".broad-warning")
    assert warn and broad["broad"] in warn[0].text, [w.text for w in warn]
    assert visible(box2, ".rule-force")
    shot(browser, "rule-builder-broad")
    narrow = preview(d, {"field": "file.path", "op": "startswith", "value": "/opt/app/"})
    assert not narrow["needs_force"] and narrow["matched"] != broad["matched"]
    set_value(value2, "/opt/app/")
    wait(browser, lambda b: (preview_shown(box2) or ("",))[0] == str(narrow["matched"]), "the narrow rule's preview")
    assert figures(narrow) in preview_shown(box2)[1]
    assert not css(box2, ".broad-warning") and not visible(box2, ".rule-force")

    # a third rule, removed again: two are saved
    css(dlg, "#rule-add")[0].click()
    wait(browser, lambda b: len(css(dlg, "fieldset.rule")) == 3, "a third rule")
    assert [css(x, "legend")[0].text for x in css(dlg, "fieldset.rule")] == ["Rule 1", "or rule 2", "or rule 3"]
    css(css(dlg, "fieldset.rule")[2], ".rule-remove")[0].click()
    assert len(css(dlg, "fieldset.rule")) == 2

    # an expiry (the datetime-local input in the browser's zone) and a remark, then save
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=0, microsecond=0)
    browser.execute_script(
        "const e = arguments[0], d = new Date(arguments[1]);"
        "const p = (n) => String(n).padStart(2, '0');"
        "e.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;"
        "e.dispatchEvent(new Event('change', {bubbles: true}));",
        css(dlg, "#rule-expires")[0], expires.isoformat())
    css(dlg, "textarea.remark")[0].send_keys("build tool of the app team")
    shot(browser, "rule-builder")
    assert rules_of(d) == [], "nothing is saved before Whitelist is clicked"
    submit(browser, dlg)
    ok_banner(browser)

    # the API: A whitelisted by hand, two rules of its account with the expiry and remark
    assert alert(d, d["a"])["status"] == "manually_whitelisted"
    rules = rules_of(d)
    assert sorted((r["field"], r["op"], r["value"], r["scope"]) for r in rules) == [
        ("file.path", "eq", A_PATH, "all"), ("file.path", "startswith", "/opt/app/", "all")]
    for r in rules:
        assert r["account_id"] == d["account"] and r["created_by"] == user
        assert r["from_alert_id"] == d["a"] and r["remark"] == "build tool of the app team"
        assert utc_title(r["expires_at"]) == expires.strftime("%Y-%m-%d %H:%M:%S UTC")
    # the new rule whitelisted B, the stored alert it matches; A leaves its event
    t.wait_for(lambda: event_of(d, d["a"]) is None, timeout=WAIT, what="A out of its event")
    assert alert(d, d["b"])["status"] == "automatically_whitelisted"
    # the event's Alert tab, read again, shows what the API says is left of it
    go(browser, console_url, f"/events/{d['event']}/alerts")
    left = api_get(d, f"/api/v1/events/{d['event']}/alerts?limit=100")
    wait(browser, lambda b: css(b, "#alerts-title") and
         css(b, "#alerts-title")[0].text == f"Alerts ({left['total']})", "the event's alerts title")
    assert [r.get_attribute("data-id") for r in css(browser, "#event-alerts tr[data-id]")] == \
        [a["alert_id"] for a in left["alerts"]]
    assert d["a"] not in [a["alert_id"] for a in left["alerts"]]
    assert bool(visible(browser, "#event-alerts-empty")) == (left["total"] == 0)
    shot(browser, "event-alerts-after")

    # the Whitelist rules page: the API's rules, hit counts, expiry; a rule's preview
    go(browser, console_url, "/whitelist")
    wait(browser, lambda b: set(rule_rows(b)) >= {str(r["rule_id"]) for r in rules}, "the rules")
    api_rules = api_get(d, "/api/v1/whitelist/rules?limit=100")["rules"]
    assert list(rule_rows(browser)) == [str(r["rule_id"]) for r in api_rules]
    for r in rules:
        tr = rule_rows(browser)[str(r["rule_id"])]
        assert css(tr, ".col-hits")[0].text == str(r["hits"])
        assert css(tr, ".col-expires time")[0].get_attribute("title") == utc_title(r["expires_at"])
        assert r["value"] in tr.text and d["name"] in tr.text
    shot(browser, "rules")
    r2 = next(r for r in rules if r["op"] == "startswith")
    css(rule_rows(browser)[str(r2["rule_id"])], ".rule-preview-btn")[0].click()
    pdlg = dialog(browser, "the rule's preview")
    now = preview(d, {"field": r2["field"], "op": r2["op"], "value": r2["value"]})
    wait(browser, lambda b: (preview_shown(pdlg) or ("",))[0] == str(now["matched"]), "the listed rule's preview")
    assert figures(now) in preview_shown(pdlg)[1]
    shot(browser, "rule-preview")
    assert browser_errors(browser) == []


def test_recurrence_is_suppressed_and_bulk_removal_restores(browser, console_url, wl, login,
                                                            shot, browser_errors):
    """With A whitelisted with its rules: A's recurrence is suppressed (its count moves, it
    joins no event) and a new alert the second rule matches is suppressed as automatically
    whitelisted (that rule's hit count goes up), on the API and on the Alerts and Whitelist
    rules pages; "Remove from whitelist" on the ticked alerts of the Alerts page, filtered
    "Handled or not", makes them unhandled and the correlator joins them to an event."""
    d = wl
    user, password = d["user"]
    rule_ids = whitelist_with_rules(d)
    before = {r["rule_id"]: r["hits"] for r in rules_of(d)}
    assert alert(d, d["b"])["status"] == "automatically_whitelisted"  # the new rule's sweep
    occ = alert(d, d["a"])["occurrences"]

    # A again (same asset, path and md5, later), C new under /opt/app/, D a control no rule
    # matches: all keyed by the account, so once D is in an event the correlator has had
    # its chance at the others
    c_path, d_path = "/opt/app/new/c", "/srv/other/d"
    t.produce(d["prefix"] + "alerts.raw",
              [virus(d["account"], d["name"], "w1", A_PATH, 5),
               virus(d["account"], d["name"], "w1", c_path, 4),
               virus(d["account"], d["name"], "w1", d_path, 3)], keys=[d["account"].encode()] * 3)
    ids = stored_alerts(d, 14)
    c, dd = ids[c_path], ids[d_path]
    assert ids[A_PATH] == d["a"], "a recurrence is the same alert, not a new one"
    t.wait_for(lambda: alert(d, d["a"])["occurrences"] == occ + 1, timeout=WAIT, what="A's recurrence counted")
    t.wait_for(lambda: event_of(d, dd), timeout=WAIT, what="D in an event")
    a_now, c_now = alert(d, d["a"]), alert(d, c)
    assert a_now["status"] == "manually_whitelisted" and event_of(d, d["a"]) is None, a_now
    assert c_now["status"] == "automatically_whitelisted" and event_of(d, c) is None, c_now
    assert d["a"] not in event_alert_ids(d, event_of(d, dd))
    hits = {r["rule_id"]: r["hits"] for r in rules_of(d)}
    r_eq, r_sw = rule_ids
    assert hits[r_sw] == before[r_sw] + 1, (before, hits)  # C
    assert hits[r_eq] == before[r_eq], (before, hits)  # a manual whitelisting counts no hit

    browser.get(console_url)
    login(browser, user, password)
    # the Whitelist rules page shows the hit counts the API answers now
    go(browser, console_url, "/whitelist?alert_name=" + quote(d["name"], safe=""))
    wait(browser, lambda b: set(rule_rows(b)) == {str(x) for x in rule_ids}, "the rules")
    for rid in rule_ids:
        assert css(rule_rows(browser)[str(rid)], ".col-hits")[0].text == str(hits[rid])

    # the Alerts page, "Handled or not": handled or whitelisted
    go(browser, console_url, "/alerts")
    wait(browser, lambda b: alert_rows(b), "the alerts list")
    Select(css(browser, "#alerts-handled")[0]).select_by_value("yes")
    Select(css(browser, "#alerts-account")[0]).select_by_value(d["account"])
    browser.find_element(By.CSS_SELECTOR, "form.filter-form button[type=submit]").click()
    q = f"/api/v1/alerts?handled=yes&account={d['account']}&limit=50"
    want = [x["alert_id"] for x in api_get(d, q)["alerts"]]
    assert set(want) == {d["a"], d["b"], c}, want
    wait(browser, lambda b: alert_rows(b) == want, "the handled alerts as the API lists them")
    assert "handled=yes" in browser.current_url
    for x in api_get(d, q)["alerts"]:
        tr = css(browser, f"#alerts-table tr[data-id='{x['alert_id']}']")[0]
        assert css(tr, ".col-status")[0].text == x["status"].replace("_", " ")
        assert css(tr, ".col-count")[0].text == str(x["occurrences"])
    for x in (d["a"], c):
        css(browser, f"#alerts-table tr[data-id='{x}'] input[type=checkbox]")[0].click()
    wait(browser, lambda b: "2 selected" in css(b, ".bulk-count")[0].text, "two ticked")
    shot(browser, "alerts")
    css(browser, "#alerts-unwhitelist")[0].click()
    dlg = dialog(browser, "the removal dialog")
    dlg.find_element(By.CSS_SELECTOR, "textarea.remark").send_keys("needs a second look")
    submit(browser, dlg)
    ok_banner(browser)

    # the API: both unhandled again with the remark in their log; they rejoin an event
    for x in (d["a"], c):
        doc = alert(d, x)
        assert doc["status"] == "unhandled", doc
        assert doc["activity"][-1]["remark"] == "needs a second look", doc["activity"]
    t.wait_for(lambda: event_of(d, d["a"]) and event_of(d, c), timeout=WAIT,
               what="A and C joined to an event again")
    assert alert(d, d["a"])["occurrences"] == occ + 1, "removal is no occurrence"
    want = [x["alert_id"] for x in api_get(d, q)["alerts"]]
    assert want == [d["b"]], want
    wait(browser, lambda b: alert_rows(b) == want, "the list without the removed alerts")
    shot(browser, "alerts-after-removal")
    assert browser_errors(browser) == []


def test_deleting_a_rule_affects_future_alerts_only(browser, console_url, wl, login, shot,
                                                     browser_errors):
    """The delete dialog says a deleted rule affects future alerts only; the rule leaves
    the list (it is listed as deleted with "Deleted rules too"), and the alert it
    whitelisted keeps its status, as the API says."""
    d = wl
    user, password = d["user"]
    r_eq, r_sw = whitelist_with_rules(d)
    browser.get(console_url)
    login(browser, user, password)
    go(browser, console_url, "/whitelist")
    wait(browser, lambda b: set(rule_rows(b)) == {str(r_eq), str(r_sw)}, "the rules")
    css(rule_rows(browser)[str(r_sw)], ".rule-delete-btn")[0].click()
    dlg = dialog(browser, "the delete dialog")
    assert "affects future alerts only" in dlg.text, dlg.text
    assert "/opt/app/" in dlg.text
    dlg.find_element(By.CSS_SELECTOR, "textarea.remark").send_keys("the app moved")
    shot(browser, "delete-dialog")
    submit(browser, dlg)
    ok_banner(browser)
    live = [r["rule_id"] for r in rules_of(d)]
    assert live == [r_eq], live
    wait(browser, lambda b: list(rule_rows(b)) == [str(x) for x in live], "the rule gone from the list")
    gone = next(r for r in rules_of(d, all_=True) if r["rule_id"] == r_sw)
    assert gone["deleted_at"] and gone["deleted_by"] == user, gone
    assert alert(d, d["b"])["status"] == "automatically_whitelisted", "B keeps its status"
    # "Deleted rules too" lists it as deleted, with no button
    css(browser, "#rules-all")[0].click()
    browser.find_element(By.CSS_SELECTOR, "form.filter-form button[type=submit]").click()
    wait(browser, lambda b: set(rule_rows(b)) == {str(r_eq), str(r_sw)}, "the deleted rule listed")
    tr = rule_rows(browser)[str(r_sw)]
    assert "deleted" in tr.get_attribute("class") and not css(tr, "button")
    assert css(tr, ".actions time")[0].get_attribute("title") == utc_title(gone["deleted_at"])
    shot(browser, "rules-deleted")
    assert browser_errors(browser) == []
