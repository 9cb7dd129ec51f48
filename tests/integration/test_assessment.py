# SPDX-License-Identifier: Apache-2.0
"""Integration tests of how an event is assessed and shown, on the real local Kafka broker
and PostgreSQL with the real pipeline (ingest, whitelist-filter, correlator, responder,
exporter, cwpp-api, cwppctl): the reference's "Assess a security event".

What they pin down:
- "When to act immediately" (the reference's Overview table): a core asset involved, an
  alert count high and growing, recent activity that may be ongoing and an authoritative
  source each make an event act_now on their own (docs/correlator.md "Assessment").
- One urgency everywhere: "no new related alerts over a long period: lower priority" is
  the same for the API (and so cwppctl), the export workbook and the handled-event stream
  (libs/correlate's one definition; before, the export and the stream showed the stored
  urgency).
- The handling info a handled event adds to its alerts ("security event operation
  details added to the alert") is shown by `cwppctl alerts show` and in the export's
  Alerts sheet.
- Finding events by name: the event list's `name` filter (cwppctl --name) matches the
  event's name only; `q` (cwppctl --keyword) also its alerts' names.

Every test uses accounts of its own (a random tag)."""
import uuid

import pytest

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag
from test_exporter import ExportPipe, HANDLED, read_handled

openpyxl = pytest.importorskip("openpyxl")
NOTE = t.AvroType("notification")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = ExportPipe(tmp_path_factory.mktemp("assessment"))
    yield p
    p.close()


def assessed(acct):
    """(event_id, urgency, reason codes) of the account's only event."""
    rows = t.query("SELECT event_id, urgency, assessment FROM events WHERE account_id = %s",
                   (acct,))
    assert len(rows) == 1, rows
    eid, urgency, assessment = rows[0]
    return eid, urgency, [r["code"] for r in assessment.get("reasons", [])]


# ------------------------------------------------------------------ act now

def test_each_act_now_signal_makes_an_event_act_now(pipe):
    """One event per signal, nothing else urgent about it (a web server unless the signal
    is the asset, the attack blocked, an IDS unless the signal is the source, three hours
    ago unless the signal is recency; distinct alerts of one type where it takes several,
    so no escalation): each is act_now, with its reason. An event with
    none of them is low. Before: a core asset or an authoritative source alone was medium
    (act_now needed an escalation, or a core asset with a failed defence), and recent
    activity never made an event act_now."""
    g = tag()
    cases = {
        # account: (alerts, the reason that must be there)
        f"core-{g}": ([alert(f"core-{g}", "Web shell", "webshell", "high", at(180), "db-1",
                             role="database", defense="blocked")], "core_asset"),
        f"auth-{g}": ([alert(f"auth-{g}", "Trojan", "virus", "high", at(180), "web-1",
                             defense="blocked", source="virus_scan")], "authoritative_source"),
        f"busy-{g}": ([alert(f"busy-{g}", f"Odd call {i}", "suspicious", "high", at(14 - 3 * i),
                             "web-1", defense="blocked") for i in range(3)],
                      "recent_activity"),
        f"grow-{g}": ([alert(f"grow-{g}", f"Odd call {i}", "suspicious", "high",
                             at(600 - 8 * i), "web-1", defense="blocked") for i in range(10)],
                      "alerts_growing"),
        f"none-{g}": ([alert(f"none-{g}", "Web shell", "webshell", "high", at(180), "web-1",
                             defense="blocked")], None),
    }
    for acct, (alerts, _) in cases.items():
        pipe.raw(acct, *alerts)
    for acct, (alerts, code) in cases.items():
        pipe.event_of(acct, len(alerts))
        t.wait_for(lambda: len(assessed(acct)[2]) > 0 or code is None, timeout=30,
                   what=f"{acct} assessed")
        eid, urgency, codes = assessed(acct)
        if code is None:
            assert urgency == "low", (acct, urgency, codes)
            continue
        assert urgency == "act_now", (acct, urgency, codes)
        assert code in codes, (acct, codes)
        text = [r["text"] for r in t.query("SELECT assessment FROM events WHERE event_id = %s",
                                           (eid,))[0][0]["reasons"] if r["code"] == code][0]
        assert text.endswith("act now"), text
    # the others of the table are not there where they do not hold
    assert "core_asset" not in assessed(f"auth-{g}")[2]
    assert "recent_activity" not in assessed(f"core-{g}")[2]


# --------------------------------------------------------------- quiet rule

def test_the_quiet_urgency_is_the_same_in_the_api_the_export_and_the_handled_stream(
        pipe, tmp_path):
    """An event whose latest alert is 30 hours old is shown one step lower by every reader:
    its stored urgency medium (a failed defence) reads low through the API and cwppctl, in
    the export workbook (with the stored one beside it and the reason), on the
    handled-event stream and in its notification. Before, the workbook, the stream and the
    notification said medium."""
    acct = "quiet-" + tag()
    pipe.raw(acct, alert(acct, "Web shell", "webshell", "high", at(30 * 60), "web-1",
                         defense="failed"))
    pipe.event_of(acct, 1)
    eid, stored, _ = assessed(acct)
    assert stored == "medium"
    api = t.api_for(pipe.prefix)
    st, doc, _ = api.get(f"/api/v1/events/{eid}", user="admin")
    assert st == 200 and (doc["urgency"], doc["assessed_urgency"], doc["quiet"]) == \
        ("low", "medium", True)
    rc, shown, _ = pipe.ctl_json("events", "show", eid)
    assert rc == 0 and shown["urgency"] == "low"
    st, lst, _ = api.get(f"/api/v1/events?account={acct}", user="admin")
    assert [e["urgency"] for e in lst["events"]] == ["low"]

    out = tmp_path / "quiet.xlsx"
    rc, _, err = pipe.ctl_json("export", "--ids", eid, "--out", str(out))
    assert rc == 0, err
    ev = openpyxl.load_workbook(out)["Events"]
    head = [c.value for c in ev[1]]
    row = dict(zip(head, next(ev.iter_rows(min_row=2, values_only=True))))
    assert row["Urgency"] == "low"
    assert (row["Assessed urgency"], "lower priority" in row["Urgency reasons"]) == \
        ("medium", True)

    pipe.ok("events", "status", eid, "handled", "--remark", "old story")

    def published():
        return any(m.key().decode() == eid
                   for m in read_handled(pipe.prefix, timeout=5)["events.handled"])
    t.wait_for(published, timeout=30, what="the handled event published")
    recs = [HANDLED.decode(m.value()) for m in read_handled(pipe.prefix)["events.handled"]
            if m.key().decode() == eid]
    assert [r["urgency"] for r in recs] == ["low"]

    # and the notification the event opened with says low too, the urgency it shows
    notes = [NOTE.decode(m.value()) for m in t.consume(pipe.prefix + "notifications", 1,
                                                         settle=2) if m.key().decode() == eid]
    assert [(n["kind"], n["urgency"]) for n in notes] == [("event_opened", "low")]


def test_a_fresh_event_shows_its_stored_urgency_everywhere(pipe, tmp_path):
    """The rule's other side: an event active minutes ago shows what was assessed."""
    acct = "fresh-" + tag()
    pipe.raw(acct, alert(acct, "Web shell", "webshell", "high", at(5), "db-1",
                         role="database", defense="blocked"))
    pipe.event_of(acct, 1)
    eid, stored, _ = assessed(acct)
    st, doc, _ = t.api_for(pipe.prefix).get(f"/api/v1/events/{eid}", user="admin")
    assert st == 200 and doc["urgency"] == doc["assessed_urgency"] == stored == "act_now"
    out = tmp_path / "fresh.xlsx"
    rc, _, err = pipe.ctl_json("export", "--ids", eid, "--out", str(out))
    assert rc == 0, err
    ev = openpyxl.load_workbook(out)["Events"]
    head = [c.value for c in ev[1]]
    row = dict(zip(head, next(ev.iter_rows(min_row=2, values_only=True))))
    assert (row["Urgency"], row["Assessed urgency"]) == ("act_now", "act_now")
    assert "lower priority" not in (row["Urgency reasons"] or "")


# ------------------------------------------------------------ handling info

def test_the_handling_info_of_an_alert_is_shown_by_cwppctl_and_the_export(pipe, tmp_path):
    """Handled with a remark: each alert's handling info (the event, via, by, at, remark)
    is printed by `cwppctl alerts show` line by line and fills the export's Alerts sheet.
    Before, cwppctl printed it as one JSON blob and the workbook had no alerts at all."""
    acct = "hand-" + tag()
    pipe.raw(acct,
             alert(acct, "Brute force", "brute_force", "medium", at(20), "web-1",
                   remote_ip="198.51.100.77"),
             alert(acct, "Trojan", "virus", "high", at(19), "web-1",
                   remote_ip="198.51.100.77"))
    eid = pipe.event_of(acct, 2)
    pipe.ok("events", "status", eid, "handled", "--remark", "contained by hand")
    alerts = [r[0] for r in t.query(
        "SELECT a.alert_id FROM alerts a JOIN event_alerts ea USING (alert_id) "
        "WHERE ea.event_id = %s ORDER BY a.first_seen", (eid,))]
    assert len(alerts) == 2
    rc, out, err = pipe.ctl("alerts", "show", alerts[0])
    assert rc == 0, err
    lines = {ln[:17].strip(): ln[18:] for ln in out.splitlines() if len(ln) > 18}
    assert lines["handled with"] == eid
    assert lines["handled via"] == "status"
    assert lines["handled by"] == "admin"
    assert lines["handling remark"] == "contained by hand"
    assert lines["handled at"].endswith("Z") and lines["handled at"][:2] == "20"
    assert not [ln for ln in out.splitlines() if ln.startswith("handling ") and "{" in ln]

    out_x = tmp_path / "handled.xlsx"
    rc, _, err = pipe.ctl_json("export", "--ids", eid, "--out", str(out_x))
    assert rc == 0, err
    wb = openpyxl.load_workbook(out_x)
    assert wb.sheetnames == ["Events", "Affected assets", "Entities", "Alerts"]
    sh = wb["Alerts"]
    head = [c.value for c in sh[1]]
    rows = [dict(zip(head, r)) for r in sh.iter_rows(min_row=2, values_only=True)]
    assert [r["Alert ID"] for r in rows] == alerts
    for r in rows:
        assert (r["Event ID"], r["Status"], r["Handled with event"], r["Handled via"],
                r["Handled by"], r["Handling remark"]) == \
            (eid, "handled", eid, "status", "admin", "contained by hand")
        assert r["Handled at (UTC)"] is not None


# --------------------------------------------------------------- by name

def test_events_are_found_by_name_and_by_keyword(pipe):
    """--name matches the event's name (any case, any part), nothing else; --keyword (the
    API's q) also an alert's name. The API takes name as a filter of its own."""
    acct = "name-" + tag()
    word = "zq" + uuid.uuid4().hex[:6]
    pipe.raw(acct,
             # event 1: named after its most severe alert; the other alert carries the word
             alert(acct, "Crypto miner", "virus", "critical", at(30), "web-1",
                   remote_ip="198.51.100.81"),
             alert(acct, f"Port scan {word}", "port_scan", "low", at(29), "web-1",
                   remote_ip="198.51.100.81"),
             # event 2: named with the word
             alert(acct, f"Web shell {word.upper()}", "webshell", "high", at(28), "web-2",
                   remote_ip="198.51.100.82"))
    pipe.event_of(acct, 3)
    evs = dict(t.query("SELECT name, event_id FROM events WHERE account_id = %s", (acct,)))
    assert set(evs) == {"Crypto miner", f"Web shell {word.upper()}"}
    named, other = evs[f"Web shell {word.upper()}"], evs["Crypto miner"]

    rc, doc, err = pipe.ctl_json("events", "list", "--account", acct, "--name", word)
    assert rc == 0, err
    assert [e["event_id"] for e in doc["events"]] == [named]
    rc, doc, err = pipe.ctl_json("events", "list", "--account", acct, "--keyword", word)
    assert rc == 0, err
    assert sorted(e["event_id"] for e in doc["events"]) == sorted([named, other])
    rc, doc, err = pipe.ctl_json("events", "list", "--account", acct, "--name", "crypto MINER")
    assert rc == 0 and [e["event_id"] for e in doc["events"]] == [other]
    rc, out, err = pipe.ctl("events", "list", "--account", acct, "--name", "nothing-" + word)
    assert rc == 0, err
    assert named not in out and other not in out

    api = t.api_for(pipe.prefix)
    st, doc, _ = api.get(f"/api/v1/events?account={acct}&name={word}", user="admin")
    assert st == 200 and doc["total"] == 1 and doc["events"][0]["event_id"] == named
    st, doc, _ = api.get(f"/api/v1/events?account={acct}&name=", user="admin")
    assert st == 400 and doc["code"] == "bad_filter" and "name" in doc["detail"]
    # every event shows merged_into (null unless the correlator merged it)
    st, doc, _ = api.get(f"/api/v1/events/{named}", user="admin")
    assert st == 200 and "merged_into" in doc and doc["merged_into"] is None
