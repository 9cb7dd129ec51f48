# SPDX-License-Identifier: Apache-2.0
"""Integration tests of notification settings (the reference: "enable event notifications
under System Settings > Notification Settings") on the real local Kafka broker and
PostgreSQL, with the real pipeline (ingest, whitelist-filter, correlator, responder,
cwpp-api, cwppctl).

What they pin down:
- An account's setting is on, from level low, until someone changes it; an admin or a
  user holding the account switches it with `cwppctl notifications set` (PUT
  /api/v1/accounts/{id}/notifications, the responder's notifications.set), each change
  one activity-log entry with before, after and remark; setting what is set changes and
  logs nothing; a viewer may not; another tenant's account is not found.
- The correlator applies it: an account switched off gets no notification on
  cwpp.notifications; one with a minimum level gets none for an event below it, and one
  once the event reaches it (docs/correlator.md "Notifications").

Every test uses accounts of its own (a random tag)."""
import json

import pytest

import cwpp_testlib as t
from cwpp_testlib import alert, at, tag
from test_responder import Pipe

NOTE = t.AvroType("notification")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    p = Pipe(tmp_path_factory.mktemp("notifications"))
    yield p
    p.close()


def setting(acct):
    rows = t.query("SELECT enabled, min_level, updated_by FROM notification_settings "
                   "WHERE account_id = %s", (acct,))
    return rows[0] if rows else None


def log_of(acct):
    return t.query("SELECT actor, action, before, after, remark FROM activity_log "
                   "WHERE object_type = 'account' AND object_id = %s ORDER BY log_id", (acct,))


def test_a_user_holding_the_account_switches_notifications_and_it_is_logged(pipe):
    g = tag()
    acct, other = f"acct-{g}", f"other-{g}"
    nina = t.make_user(f"nina-{g}", acct)
    vic = t.make_user(f"vic-{g}", acct, role="viewer")
    api = t.api_for(pipe.prefix)

    # the default, before anyone set it
    rc, out, err = pipe.ctl("notifications", "show", acct, actor=nina)
    assert rc == 0, err
    assert out.strip() == f"Notifications of account {acct}: on, from level low (the default)"
    st, doc, _ = api.get(f"/api/v1/accounts/{acct}/notifications", user=nina)
    assert st == 200 and (doc["enabled"], doc["min_level"], doc["default"]) == (True, "low", True)

    rc, out, err = pipe.ctl("notifications", "set", acct, "off", "--remark", "quiet week",
                            actor=nina)
    assert rc == 0, err
    assert f"Notifications of account {acct} are now off." in out
    assert setting(acct) == (False, "low", nina)
    assert log_of(acct) == [(nina, "notifications.set", {"enabled": True, "min_level": "low"},
                             {"enabled": False, "min_level": "low"}, "quiet week")]
    rc, doc, err = pipe.ctl_json("notifications", "show", acct, actor=nina)
    assert rc == 0 and (doc["enabled"], doc["default"], doc["updated_by"]) == \
        (False, False, nina)

    # the same again: nothing changes, nothing is logged
    rc, out, err = pipe.ctl("notifications", "set", acct, "off", actor=nina)
    assert rc == 0 and "already off" in out, (out, err)
    assert len(log_of(acct)) == 1

    # on again, from level high; then on without a level keeps high
    rc, doc, err = pipe.ctl_json("notifications", "set", acct, "on", "--min-level", "high",
                                 actor=nina)
    assert rc == 0 and doc["result"] == {"account_id": acct, "enabled": True,
                                         "min_level": "high", "changed": True}, (doc, err)
    st, doc, _ = api.request("PUT", f"/api/v1/accounts/{acct}/notifications",
                             body={"enabled": False}, user=nina)
    assert st == 200 and doc["status"] == "ok", doc
    st, doc, _ = api.request("PUT", f"/api/v1/accounts/{acct}/notifications",
                             body={"enabled": True}, user=nina)
    assert st == 200 and doc["result"]["min_level"] == "high", doc
    assert setting(acct) == (True, "high", nina)
    assert [r[3] for r in log_of(acct)] == [
        {"enabled": False, "min_level": "low"}, {"enabled": True, "min_level": "high"},
        {"enabled": False, "min_level": "high"}, {"enabled": True, "min_level": "high"}]

    # who may not: a viewer (403), another tenant's account (404, nothing issued), bad input
    st, doc, _ = api.request("PUT", f"/api/v1/accounts/{acct}/notifications",
                             body={"enabled": False}, user=vic)
    assert st == 403, doc
    rc, _, err = pipe.ctl("notifications", "set", other, "off", actor=nina)
    assert rc == 1 and f'No account "{other}" exists' in err, err
    st, doc, _ = api.get(f"/api/v1/accounts/{other}/notifications", user=nina)
    assert st == 404
    assert setting(other) is None and log_of(other) == []
    for body, says in (({"enabled": "yes"}, "enabled"), ({"enabled": True, "min_level": "x"},
                                                         "min_level"),
                       ({"enabled": True, "actor": "root"}, "actor")):
        st, doc, _ = api.request("PUT", f"/api/v1/accounts/{acct}/notifications", body=body,
                                 user=nina)
        assert st == 400 and says in doc["detail"], (body, doc)
    rc, _, err = pipe.ctl("notifications", "set", acct, "maybe", actor=nina)
    assert rc == 2 and "usage" in err
    rc, _, err = pipe.ctl("notifications", "set", acct, "on", "--min-level", "severe",
                          actor=nina)
    assert rc == 2 and "unknown level" in err
    assert setting(acct) == (True, "high", nina)
    # an admin holds every account
    rc, out, err = pipe.ctl("notifications", "set", other, "on", "--min-level", "medium")
    assert rc == 0, err
    assert setting(other) == (True, "medium", "admin")


def test_the_correlator_notifies_only_as_the_account_wants(pipe):
    """Three accounts: one switched off gets no notification at all; one from level high
    gets none for its low event, then one once a critical alert joins the event (it opens
    then); one left at the default gets its notification as always. The settings are
    written as the responder writes them (the command is the test above), so this pins
    the correlator's side alone."""
    g = tag()
    off, high, dflt = f"off-{g}", f"high-{g}", f"dflt-{g}"
    t.query("INSERT INTO notification_settings (account_id, enabled, min_level, updated_by) "
            "VALUES (%s, false, 'low', 'tests'), (%s, true, 'high', 'tests')", (off, high))
    for acct in (off, high, dflt):
        pipe.raw(acct, alert(acct, "Port scan", "port_scan", "low", at(10), "web-1",
                             remote_ip="198.51.100.91"))
    for acct in (off, high, dflt):
        pipe.event_of(acct, 1)

    def notes():
        return [NOTE.decode(m.value()) for m in t.consume(pipe.prefix + "notifications", 1,
                                                          timeout=10, settle=2)]
    t.wait_for(lambda: any(n["account_id"] == dflt for n in notes()), timeout=30,
               what="the default account's notification")
    got = notes()
    assert [n["kind"] for n in got if n["account_id"] == dflt] == ["event_opened"]
    assert [n for n in got if n["account_id"] in (off, high)] == []

    # the event of `high` reaches level critical: it notifies now; `off` still never
    for acct in (off, high):
        pipe.raw(acct, alert(acct, "Trojan", "virus", "critical", at(9), "web-1",
                             remote_ip="198.51.100.91",
                             file={"path": "/tmp/x.bin", "md5": t.md5hex(acct)}))
    for acct in (off, high):
        pipe.event_of(acct, 2)
    t.wait_for(lambda: any(n["account_id"] == high for n in notes()), timeout=30,
               what="the high account's notification")
    got = notes()
    mine = [n for n in got if n["account_id"] == high]
    assert [(n["kind"], n["level"]) for n in mine] == [("event_opened", "critical")]
    assert [n for n in got if n["account_id"] == off] == []
    # the events themselves are as always
    for acct in (off, high):
        assert t.query("SELECT alert_count, level FROM events WHERE account_id = %s",
                       (acct,)) == [(2, "critical")]
    # on again: the next change of the event notifies
    pipe.ok("notifications", "set", off, "on")
    pipe.raw(off, alert(off, "Trojan 2", "virus", "critical", at(8), "web-1",
                        remote_ip="198.51.100.91",
                        file={"path": "/tmp/y.bin", "md5": t.md5hex(off + "y")}))
    t.wait_for(lambda: any(n["account_id"] == off for n in notes()), timeout=30,
               what="the notification once switched on")
    assert json.dumps([n["kind"] for n in notes() if n["account_id"] == off]) == \
        '["event_opened"]'
