# SPDX-License-Identifier: Apache-2.0
"""What the console's browser tests share (tests/browser/test_console_*.py): seed(), twelve
events of one account written straight into the database as its owner (the correlator's
rows, as tests/integration/test_api_events.py does: the browser tests are about the
pages); the desk fixture (the responder on the console's prefix, the seed, two analysts
and a viewer of its account); and small Selenium helpers (wait, css, visible, rows, go,
submit, banner, api_get). A test module imports the fixture by name:
`from console_seed import desk`."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import cwpp_testlib as t

RESPONDER_DSN = t.RESPONDER_DSN
LEVELS = ["critical", "high", "medium", "low"]
STATUSES = ["unhandled", "handling", "handled", "failed"]
URGENCIES = ["act_now", "high", "medium", "low"]
IP = "203.0.113.77"
WAIT = 30


# ------------------------------------------------------------------ the seed

def seed(account, tg):
    """Twelve events of account (levels, statuses, owners spread), the first one a chain:
    an IP that reached a host, where a process wrote a file, five alerts over two days,
    quiet for 30 hours. Answers {chain: event id, ids: [every id], names: {id: name}}."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    conn = t.db()
    ids, names = [], {}
    try:
        with conn.cursor() as cur:
            for i in range(12):
                eid = "ev-" + uuid.uuid4().hex
                last = now - timedelta(hours=30 if i == 0 else 2 + 3 * i)
                first = last - timedelta(hours=40 if i == 0 else 1)
                name = f"Crypto miner chain {tg}" if i == 0 else f"Event {i} of {tg}"
                n_alerts = 5 if i == 0 else 1 + i % 3
                cur.execute(
                    "INSERT INTO events (event_id, account_id, name, level, status, first_seen, "
                    "last_seen, alert_count, occurrences, asset_count, stages, sources, owner, "
                    "urgency, assessment, summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, "
                    "%s, %s, %s, %s, %s, %s)",
                    (eid, account, name, "critical" if i == 0 else LEVELS[i % 4],
                     "unhandled" if i == 0 else STATUSES[i % 4], first, last, n_alerts, n_alerts,
                     ["TA0001", "TA0002", "TA0040"] if i == 0 else ["TA0001"],
                     ["virus_scan", "process_monitor"] if i == 0 else ["virus_scan"], None,
                     "act_now" if i == 0 else URGENCIES[i % 4],
                     json.dumps({"reasons": [{"code": "core_asset", "text": "a core asset is hit"},
                                             {"code": "stages", "text": "three ATT&CK stages"}],
                                 "recommendations": [{"action": "block_ip", "entity_type": "ip",
                                                      "entity_value": IP,
                                                      "reason": "the attacker's address"}],
                                 "assessed_at": int(last.timestamp() * 1000)}),
                     # the correlator's running summary: what the export's asset sheet reads
                     json.dumps({"alerts": n_alerts, "assets": {f"web-{tg}": {
                         "name": f"web-{tg}-name", "role": "web", "ips": ["10.0.0.7"],
                         "alerts": n_alerts}}})))
                asset = f"web-{tg}"
                for k in range(n_alerts):
                    aid = "al-" + uuid.uuid4().hex
                    when = first + timedelta(hours=10 * k) if i == 0 else first + timedelta(minutes=k)
                    path = f"/tmp/miner-{k}" if i == 0 else f"/tmp/x{i}-{k}"
                    cur.execute(
                        "INSERT INTO alerts (alert_id, dedup_key, account_id, name, type, severity, "
                        "source, input_format, asset_id, asset, defense, status, first_seen, "
                        "last_seen, file, remote_ip, attack_tactic) VALUES (%s, %s, %s, %s, "
                        "'virus', 'high', 'virus_scan', 'cwpp', %s, %s, 'none', 'unhandled', %s, "
                        "%s, %s, %s, 'TA0002')",
                        (aid, aid, account, "Crypto miner" if i == 0 else f"alert {i}.{k}", asset,
                         json.dumps({"id": asset, "name": asset + "-name", "ip": "10.0.0.7",
                                     "role": "web"}),
                         when, when, json.dumps({"path": path, "md5": t.md5hex(path)}), IP))
                    cur.execute(
                        "INSERT INTO event_alerts (event_id, alert_id, reason, first_seen, "
                        "last_seen, occurrences) VALUES (%s, %s, %s, %s, %s, 1)",
                        (eid, aid, "opens a new event" if k == 0 else "same asset", when, when))
                    ents = [("host", asset)]
                    if i == 0:
                        ents += [("ip", IP), ("process", "/usr/bin/xmrig"), ("file", path)]
                    for etype, value in ents:
                        cur.execute(
                            "INSERT INTO entity_alerts (account_id, entity_type, value, asset_id, "
                            "event_id, alert_id, first_seen, last_seen) VALUES (%s, %s, %s, %s, "
                            "%s, %s, %s, %s)", (account, etype, value, asset, eid, aid, when, when))
                    if i == 0:
                        for src, rel, dst in ((("ip", IP), "connected_to", ("host", asset)),
                                              (("host", asset), "ran", ("process", "/usr/bin/xmrig")),
                                              (("process", "/usr/bin/xmrig"), "wrote", ("file", path))):
                            cur.execute(
                                "INSERT INTO event_edges (event_id, src_type, src, relation, "
                                "dst_type, dst, alert_id, first_seen, last_seen, alerts) VALUES "
                                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 1) ON CONFLICT DO NOTHING",
                                (eid, src[0], src[1], rel, dst[0], dst[1], aid, when, when))
                ids.append(eid)
                names[eid] = name
    finally:
        conn.close()
    return {"chain": ids[0], "ids": ids, "names": names}


# ------------------------------------------------------------------ helpers

@pytest.fixture
def desk(prefix, services, console_api, make_user):
    """The responder on the console's prefix, an account with the seed, an analyst, a
    second analyst and a viewer of that account."""
    tg = t.tag()
    account = f"acct-con-{tg}"
    responder = services("responder", prefix, extra_env={
        "CWPP_PG_DSN": RESPONDER_DSN, "CWPP_RESPONDER_TICK_MS": "200"}).start()
    responder.wait_ready()
    d = seed(account, tg)
    d.update(account=account, tg=tg, api=console_api,
             ana=make_user(account), bob=make_user(account),
             vic=make_user(account, role="viewer"))
    return d


def api_get(desk, path, user):
    st, doc, _ = desk["api"].get(path, user=user)
    assert st == 200, (path, st, doc)
    return doc


def wait(browser, fn, what, timeout=WAIT):
    """fn(browser) until it is truthy; an element the page redrew between being found and
    being read (stale) makes it look again."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: fn(d), message=what)


def css(browser, sel):
    return browser.find_elements(By.CSS_SELECTOR, sel)


def visible(browser, sel):
    return [e for e in css(browser, sel) if e.is_displayed()]


def rows(browser, table="#events-table"):
    return [r.get_attribute("data-id") for r in css(browser, f"{table} tbody tr[data-id]")]


def go(browser, url, hash_):
    browser.get(url + "#" + hash_)


def submit(browser, dlg):
    """Clicks the dialog's primary button and waits until it closes; a problem it shows
    instead fails the test with the API's sentence."""
    dlg.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait(browser, lambda d: not visible(d, "dialog[open]") or visible(d, "dialog[open] .dialog-error"),
         "the dialog to close")
    errs = visible(browser, "dialog[open] .dialog-error")
    assert not errs, errs[0].text


def banner(browser):
    b = wait(browser, lambda d: next(iter(visible(d, "#banner")), False), "a banner")
    return b.find_element(By.CSS_SELECTOR, ".banner-text").text
