/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_correlate: which event an alert joins (DESIGN.md "Security events"; issue 4):
 * keys strongest first, an attack story grouped with readable reasons, the window,
 * accounts never mixed, handled events taking no alerts (a new event names its
 * predecessor), recurrences, expiry, and the same events on replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_correlate.h"

#define H 3600000LL
#define T0 1795860000000LL

/* Alerts here point at string literals: never cwpp_alert_clear them. */
static cwpp_alert_t mk(const char *id, const char *account, const char *asset, int64_t t)
{
    cwpp_alert_t a;

    memset(&a, 0, sizeof(a));
    /* distinct ids from the short names: "al-000...<name>" */
    memcpy(a.alert_id, "al-", 3);
    memset(a.alert_id + 3, '0', 32);
    memcpy(a.alert_id + 3 + 32 - strlen(id), id, strlen(id));
    a.account_id = (char *)account;
    a.asset.id = (char *)asset;
    a.occurred_at_ms = t;
    return a;
}

static void feed(cwpp_corr_index_t *ix, cwpp_alert_t *a, cwpp_corr_decision_t *d)
{
    assert_int_equal(cwpp_corr_decide(ix, a, d), CWPP_OK);
    assert_int_equal(cwpp_corr_index_apply(ix, a, d), CWPP_OK);
}

static void test_keys_strongest_first(void **state)
{
    cwpp_alert_t    a = mk("a1", "acct", "h1", T0);
    cwpp_corr_key_t k[CWPP_CORR_MAX_KEYS];
    size_t          n;

    (void)state;
    a.file.md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
    a.file.sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    a.process.path = "/tmp/.x/kworkerd";
    a.remote_ip = "203.0.113.9";
    a.logon.ip = "203.0.113.9"; /* the same IP twice is one key */
    n = cwpp_corr_keys(&a, k);
    assert_int_equal(n, 5);
    assert_int_equal(k[0].kind, CWPP_CK_HASH);
    assert_int_equal(k[1].kind, CWPP_CK_HASH);
    assert_int_equal(k[2].kind, CWPP_CK_PROCESS);
    assert_string_equal(k[2].asset, "h1");
    assert_int_equal(k[3].kind, CWPP_CK_IP);
    assert_int_equal(k[4].kind, CWPP_CK_ASSET);
    a = mk("a2", "acct", "h1", T0);
    assert_int_equal(cwpp_corr_keys(&a, k), 1);
}

/* Brute force, logon, malware download, lateral move: one event, each link explained. */
static void test_attack_story(void **state)
{
    cwpp_corr_index_t   *ix = cwpp_corr_index_new(24 * H);
    cwpp_corr_decision_t d;
    cwpp_alert_t         brute = mk("b1", "acct", "h1", T0);
    cwpp_alert_t         logon = mk("l1", "acct", "h1", T0 + H / 6);
    cwpp_alert_t         malware = mk("m1", "acct", "h1", T0 + H / 3);
    cwpp_alert_t         lateral = mk("x1", "acct", "h2", T0 + H);
    cwpp_alert_t         quiet = mk("q1", "acct", "h9", T0 + H);
    char                 ev[CWPP_EVENT_ID_LEN + 1];

    (void)state;
    brute.remote_ip = "203.0.113.9";
    logon.logon.ip = "203.0.113.9";
    malware.file.md5 = "5f4dcc3b5aa765d61d8327deb882cf99";
    malware.process.path = "/tmp/.x/kworkerd";
    lateral.file.md5 = "5f4dcc3b5aa765d61d8327deb882cf99";

    feed(ix, &brute, &d);
    assert_int_equal(d.join, 0);
    assert_int_equal(strncmp(d.event_id, "ev-", 3), 0);
    assert_int_equal(strlen(d.event_id), CWPP_EVENT_ID_LEN);
    assert_non_null(strstr(d.reason, "opens a new event"));
    memcpy(ev, d.event_id, sizeof(ev));

    feed(ix, &logon, &d);
    assert_int_equal(d.join, 1);
    assert_string_equal(d.event_id, ev);
    assert_non_null(strstr(d.reason, "same attacker IP 203.0.113.9 as alert"));
    assert_non_null(strstr(d.reason, brute.alert_id));

    feed(ix, &malware, &d);
    assert_int_equal(d.join, 1);
    assert_string_equal(d.event_id, ev);
    assert_non_null(strstr(d.reason, "same asset h1"));

    feed(ix, &lateral, &d);
    assert_int_equal(d.join, 1);
    assert_string_equal(d.event_id, ev);
    assert_non_null(strstr(d.reason, "same file hash 5f4dcc3b5aa765d61d8327deb882cf99"));

    feed(ix, &quiet, &d); /* nothing in common: an event of its own */
    assert_int_equal(d.join, 0);
    assert_string_not_equal(d.event_id, ev);
    assert_int_equal(cwpp_corr_index_events(ix), 2);
    cwpp_corr_index_destroy(ix);
}

static void test_window_and_accounts(void **state)
{
    cwpp_corr_index_t   *ix = cwpp_corr_index_new(24 * H);
    cwpp_corr_decision_t d, first;
    cwpp_alert_t         a = mk("w1", "acct-a", "h1", T0);
    cwpp_alert_t         other = mk("w2", "acct-b", "h1", T0 + H); /* same asset id */
    cwpp_alert_t         in = mk("w3", "acct-a", "h1", T0 + 23 * H);
    cwpp_alert_t         out = mk("w4", "acct-a", "h1", T0 + 23 * H + 25 * H);

    (void)state;
    feed(ix, &a, &first);
    feed(ix, &other, &d);
    assert_int_equal(d.join, 0); /* accounts never share an event */
    feed(ix, &in, &d);
    assert_int_equal(d.join, 1); /* 23 h after the latest alert */
    assert_string_equal(d.event_id, first.event_id);
    feed(ix, &out, &d);
    assert_int_equal(d.join, 0); /* 25 h after the latest (w3) */
    assert_string_not_equal(d.event_id, first.event_id);
    cwpp_corr_index_destroy(ix);
}

static void test_handled_events_take_no_alerts(void **state)
{
    cwpp_corr_index_t   *ix = cwpp_corr_index_new(24 * H);
    cwpp_corr_decision_t d, first;
    cwpp_alert_t         a = mk("h1", "acct", "host", T0);
    cwpp_alert_t         related = mk("h2", "acct", "host", T0 + H);
    cwpp_alert_t         again = mk("h1", "acct", "host", T0 + 2 * H);

    (void)state;
    feed(ix, &a, &first);
    assert_int_equal(cwpp_corr_index_set_state(ix, first.event_id, CWPP_EV_HANDLED), CWPP_OK);
    assert_int_equal(cwpp_corr_index_set_state(ix, "ev-nope", CWPP_EV_HANDLED), CWPP_ENOTFOUND);
    assert_int_equal(cwpp_corr_decide(ix, &related, &d), CWPP_OK);
    assert_int_equal(d.join, 0);
    assert_string_equal(d.predecessor, first.event_id);
    assert_non_null(strstr(d.reason, "is handled and takes no more alerts"));
    /* a recurrence of the handled event's alert opens a new event too */
    assert_int_equal(cwpp_corr_decide(ix, &again, &d), CWPP_OK);
    assert_int_equal(d.join, 0);
    assert_int_equal(d.recurrence, 0);
    assert_string_equal(d.predecessor, first.event_id);
    /* back to unhandled: it takes alerts again */
    assert_int_equal(cwpp_corr_index_set_state(ix, first.event_id, CWPP_EV_OPEN), CWPP_OK);
    feed(ix, &related, &d);
    assert_int_equal(d.join, 1);
    assert_string_equal(d.event_id, first.event_id);
    cwpp_corr_index_destroy(ix);
}

static void test_recurrence_and_expiry(void **state)
{
    cwpp_corr_index_t   *ix = cwpp_corr_index_new(24 * H);
    cwpp_corr_decision_t d, first;
    cwpp_alert_t         a = mk("r1", "acct", "host", T0);
    cwpp_alert_t         again = mk("r1", "acct", "host", T0 + 30 * H);
    cwpp_alert_t         late = mk("r2", "acct", "host", T0 + 40 * H);

    (void)state;
    feed(ix, &a, &first);
    /* the same alert, even after the window: the same event, not a second alert */
    feed(ix, &again, &d);
    assert_int_equal(d.join, 1);
    assert_int_equal(d.recurrence, 1);
    assert_string_equal(d.event_id, first.event_id);
    assert_int_equal(cwpp_corr_index_keys(ix), 1);
    assert_int_equal(cwpp_corr_index_expire(ix, T0 + 30 * H + 24 * H - 1), 0);
    assert_int_equal(cwpp_corr_index_expire(ix, T0 + 30 * H + 24 * H + 1), 1);
    assert_int_equal(cwpp_corr_index_keys(ix), 0);
    /* expiry is driven by the stream's time (+54 h here): a straggler from +40 h finds no
     * key left and opens an event of its own */
    feed(ix, &late, &d);
    assert_int_equal(d.join, 0);
    assert_string_not_equal(d.event_id, first.event_id);
    cwpp_corr_index_destroy(ix);
}

/* Replaying the same alerts into an empty index gives the same events and reasons. */
static void test_replay_is_deterministic(void **state)
{
    cwpp_corr_decision_t d1[40], d2[40];
    cwpp_alert_t         al[40];
    int                  run, i;
    static const char   *ips[] = {"198.51.100.1", "198.51.100.2", "198.51.100.3"};
    static const char   *assets[] = {"h1", "h2", "h3", "h4"};
    static const char   *accts[] = {"acct-1", "acct-2"};
    char                 names[40][8];

    (void)state;
    for (i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "d%d", i);
        al[i] = mk(names[i], accts[i % 2], assets[(i * 7) % 4], T0 + (int64_t)i * 2 * H);
        if (i % 3 == 0)
            al[i].remote_ip = (char *)ips[i % 3];
    }
    for (run = 0; run < 2; run++) {
        cwpp_corr_index_t *ix = cwpp_corr_index_new(24 * H);

        for (i = 0; i < 40; i++)
            feed(ix, &al[i], run == 0 ? &d1[i] : &d2[i]);
        cwpp_corr_index_destroy(ix);
    }
    for (i = 0; i < 40; i++) {
        assert_string_equal(d1[i].event_id, d2[i].event_id);
        assert_string_equal(d1[i].reason, d2[i].reason);
        assert_int_equal(d1[i].join, d2[i].join);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_strongest_first),
        cmocka_unit_test(test_attack_story),
        cmocka_unit_test(test_window_and_accounts),
        cmocka_unit_test(test_handled_events_take_no_alerts),
        cmocka_unit_test(test_recurrence_and_expiry),
        cmocka_unit_test(test_replay_is_deterministic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
