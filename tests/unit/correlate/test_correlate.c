/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_correlate: which event an alert joins (docs/architecture.md "Security events"):
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
#include "vocab_files.h"

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


/* A per-batch index seeded from stored rows decides exactly as the long-lived index that
 * saw every alert: the correlator's batches depend only on what PostgreSQL holds. */
static void test_seeded_index_decides_like_the_live_one(void **state)
{
    cwpp_corr_index_t   *live = cwpp_corr_index_new(24 * H), *seeded = cwpp_corr_index_new(24 * H);
    cwpp_alert_t         a1 = mk("a1", "acct", "h1", T0), a2 = mk("a2", "acct", "h2", T0 + H);
    cwpp_alert_t         a3 = mk("a3", "acct", "h3", T0 + 2 * H);
    cwpp_corr_decision_t d1, d2, d3, s3;
    cwpp_corr_key_t      k[CWPP_CORR_MAX_KEYS];
    char                 ks[CWPP_CORR_KEY_MAX];
    const char          *owner, *by;
    size_t               n, i;

    (void)state;
    a1.remote_ip = "203.0.113.9";
    a2.remote_ip = "203.0.113.9";
    a3.remote_ip = "203.0.113.9";
    feed(live, &a1, &d1);
    feed(live, &a2, &d2);
    assert_string_equal(d1.event_id, d2.event_id);
    /* what the database holds after a1 and a2: the event, its keys, its alerts */
    assert_int_equal(cwpp_corr_index_seed_event(seeded, d1.event_id, "acct", CWPP_EV_OPEN, T0,
                                                T0 + H), CWPP_OK);
    n = cwpp_corr_keys(&a3, k);
    for (i = 0; i < n; i++) {
        assert_int_equal(cwpp_corr_key_string("acct", &k[i], ks, sizeof(ks)), 0);
        if (cwpp_corr_index_key_owner(live, ks, &owner, &by) == CWPP_OK)
            assert_int_equal(cwpp_corr_index_seed_key(seeded, ks, owner, by), CWPP_OK);
    }
    assert_int_equal(cwpp_corr_index_seed_alert(seeded, a1.alert_id, d1.event_id), CWPP_OK);
    assert_int_equal(cwpp_corr_index_seed_key(seeded, "x", "ev-unknown", a1.alert_id),
                     CWPP_ENOTFOUND);
    feed(live, &a3, &d3);
    assert_int_equal(cwpp_corr_decide(seeded, &a3, &s3), CWPP_OK);
    assert_memory_equal(&d3, &s3, sizeof(d3));
    assert_true(d3.join);
    /* the reason names the first alert that brought the key to the event */
    assert_string_equal(d3.reason, "same attacker IP 203.0.113.9 as alert "
                                   "al-000000000000000000000000000000a1");
    /* handled in the database: the seeded index opens a successor */
    assert_int_equal(cwpp_corr_index_seed_event(seeded, d1.event_id, "acct", CWPP_EV_HANDLED,
                                                T0, T0 + H), CWPP_OK);
    assert_int_equal(cwpp_corr_decide(seeded, &a3, &s3), CWPP_OK);
    assert_false(s3.join);
    assert_string_equal(s3.predecessor, d1.event_id);
    cwpp_corr_index_destroy(live);
    cwpp_corr_index_destroy(seeded);
}

/* Keys stay bounded whatever the value: long ones are digested, still distinct. */
static void test_long_keys_are_digested(void **state)
{
    char            v1[3000], v2[3000], k1[CWPP_CORR_KEY_MAX], k2[CWPP_CORR_KEY_MAX];
    cwpp_corr_key_t a = {CWPP_CK_PROCESS, v1, "h1"}, b = {CWPP_CK_PROCESS, v2, "h1"};

    (void)state;
    memset(v1, 'p', sizeof(v1) - 1);
    v1[sizeof(v1) - 1] = '\0';
    memcpy(v2, v1, sizeof(v2));
    v2[2000] = 'q';
    assert_int_equal(cwpp_corr_key_string("acct", &a, k1, sizeof(k1)), 0);
    assert_int_equal(cwpp_corr_key_string("acct", &b, k2, sizeof(k2)), 0);
    assert_true(strlen(k1) < CWPP_CORR_KEY_MAX);
    assert_string_not_equal(k1, k2);
    assert_int_equal(cwpp_corr_key_string("acct", &a, k2, 10), -1);
}

/* The digest covers the whole value, however long: two 40 KiB values that differ only in
 * their last byte are two keys; the same value is always the same key; a short value
 * stays readable (the composed text itself). */
static void test_long_keys_digest_the_whole_value(void **state)
{
    static char     v1[40000], v2[40000];
    char            k1[CWPP_CORR_KEY_MAX], k2[CWPP_CORR_KEY_MAX];
    cwpp_corr_key_t a = {CWPP_CK_PROCESS, v1, "h1"}, b = {CWPP_CK_PROCESS, v2, "h1"};
    cwpp_corr_key_t s = {CWPP_CK_IP, "203.0.113.9", NULL};

    (void)state;
    memset(v1, 'c', sizeof(v1) - 1);
    memcpy(v2, v1, sizeof(v2));
    v2[sizeof(v2) - 2] = 'd';
    assert_int_equal(cwpp_corr_key_string("acct", &a, k1, sizeof(k1)), 0);
    assert_int_equal(cwpp_corr_key_string("acct", &b, k2, sizeof(k2)), 0);
    assert_string_not_equal(k1, k2);
    assert_true(strlen(k1) < CWPP_CORR_KEY_MAX && strlen(k2) < CWPP_CORR_KEY_MAX);
    assert_int_equal(cwpp_corr_key_string("acct", &b, k1, sizeof(k1)), 0);
    assert_string_equal(k1, k2);
    assert_int_equal(cwpp_corr_key_string("acct", &s, k1, sizeof(k1)), 0);
    assert_string_equal(k1, "acct\x1f" "2\x1f\x1f" "203.0.113.9");
}

static int has_edge(const cwpp_corr_edge_t *e, size_t n, const char *s, const char *rel,
                    const char *d)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(e[i].src, s) == 0 && strcmp(e[i].relation, rel) == 0 &&
            strcmp(e[i].dst, d) == 0)
            return 1;
    return 0;
}

static void test_edges(void **state)
{
    cwpp_alert_t     a = mk("e1", "acct", "h1", T0);
    cwpp_entity_t    ents[2] = {{CWPP_ENT_PROCESS, "/usr/bin/curl", "h1"},
                                {CWPP_ENT_FILE, "/tmp/m", "h1"}};
    cwpp_corr_edge_t e[CWPP_CORR_MAX_EDGES];
    size_t           n;

    (void)state;
    a.type = "brute_force";
    a.entities = ents;
    a.n_entities = 2;
    a.process.path = "/usr/bin/curl";
    a.process.user = "oracle";
    a.remote_ip = "198.51.100.1";
    a.logon.ip = "203.0.113.9";
    a.logon.user = "root";
    a.details = json_pack("{s:{s:s}}", "parent_process", "path", "/usr/sbin/sshd");
    n = cwpp_corr_edges(&a, e);
    assert_true(has_edge(e, n, "/usr/sbin/sshd", "spawned", "/usr/bin/curl"));
    assert_false(has_edge(e, n, "h1", "ran", "/usr/bin/curl")); /* the parent ran it */
    assert_true(has_edge(e, n, "/usr/bin/curl", "wrote", "/tmp/m"));
    assert_true(has_edge(e, n, "203.0.113.9", "logged_on_to", "h1"));
    assert_true(has_edge(e, n, "root", "logged_on_to", "h1"));
    assert_true(has_edge(e, n, "203.0.113.9", "used_account", "root"));
    assert_true(has_edge(e, n, "198.51.100.1", "attacked", "h1"));
    assert_true(has_edge(e, n, "/usr/bin/curl", "ran_as", "oracle"));
    json_decref(a.details);
    a.details = NULL;
    a.type = "virus";
    n = cwpp_corr_edges(&a, e);
    assert_true(has_edge(e, n, "h1", "connected_to", "198.51.100.1"));
    assert_true(has_edge(e, n, "h1", "ran", "/usr/bin/curl"));
}

static int has_code(const cwpp_assessment_t *as, const char *code)
{
    size_t i;

    for (i = 0; i < json_array_size(as->reasons); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(as->reasons, i), "code")),
                   code) == 0)
            return 1;
    return 0;
}

/* Escalation: a small probe followed quickly by related alerts of other types. */
static void test_assessment_escalation_and_core_assets(void **state)
{
    cwpp_assess_conf_t c;
    cwpp_assessment_t  as;
    json_t            *s = json_object();
    const char        *types[] = {"brute_force", "abnormal_logon", "virus", "malicious_process"};
    const char        *hosts[] = {"db1", "db1", "db1", "app1"};
    int                i;

    (void)state;
    cwpp_assess_conf_default(&c);
    for (i = 0; i < 4; i++) {
        cwpp_alert_t a = mk("x", "acct", hosts[i], T0 + i * 60000);

        a.type = (char *)types[i];
        a.name = (char *)types[i];
        a.severity = i == 0 ? CWPP_SEV_MEDIUM : CWPP_SEV_HIGH;
        a.asset.role = i < 3 ? "database" : "application";
        a.source = i == 2 ? "virus_scan" : "ids";
        a.defense = i == 2 ? CWPP_DEF_FAILED : CWPP_DEF_NONE;
        a.remote_ip = "203.0.113.9";
        assert_int_equal(cwpp_ev_summary_add(s, &a, 1, &c), CWPP_OK);
    }
    assert_int_equal(cwpp_ev_assess(s, &c, T0 + 5 * 60000, NULL, 0, &as), CWPP_OK);
    assert_int_equal(as.urgency, CWPP_URG_ACT_NOW);
    assert_true(has_code(&as, "escalation"));
    assert_true(has_code(&as, "core_asset"));
    assert_true(has_code(&as, "defense_failed"));
    assert_true(has_code(&as, "recent_activity"));
    assert_true(has_code(&as, "widening_scope"));
    assert_true(has_code(&as, "authoritative_source"));
    assert_false(has_code(&as, "block_ip"));
    cwpp_assessment_clear(&as);
    /* a day later nothing is recent any more; the rest stands */
    assert_int_equal(cwpp_ev_assess(s, &c, T0 + 24 * H, NULL, 0, &as), CWPP_OK);
    assert_false(has_code(&as, "recent_activity"));
    assert_int_equal(as.urgency, CWPP_URG_ACT_NOW);
    cwpp_assessment_clear(&as);
    /* escalation needs the related alerts soon after the probe */
    c.escalation_ms = 60000;
    json_decref(s);
    s = json_object();
    for (i = 0; i < 4; i++) {
        cwpp_alert_t a = mk("x", "acct", "web1", T0 + i * 3600000LL);

        a.type = (char *)types[i];
        a.name = (char *)types[i];
        a.severity = CWPP_SEV_LOW;
        a.defense = CWPP_DEF_BLOCKED;
        assert_int_equal(cwpp_ev_summary_add(s, &a, 1, &c), CWPP_OK);
    }
    assert_int_equal(cwpp_ev_assess(s, &c, T0 + 48 * H, NULL, 0, &as), CWPP_OK);
    assert_false(has_code(&as, "escalation"));
    assert_int_equal(as.urgency, CWPP_URG_LOW);
    cwpp_assessment_clear(&as);
    json_decref(s);
}

/* IPs: a high 30-day count, or several assets attacked, recommend blocking. */
static void test_assessment_block_ip(void **state)
{
    cwpp_assess_conf_t c;
    cwpp_assessment_t  as;
    json_t            *s = json_object();
    cwpp_alert_t       a = mk("x", "acct", "h1", T0);
    cwpp_ip_stat_t     st = {"203.0.113.9", 4, 10, 1};

    (void)state;
    cwpp_assess_conf_default(&c);
    a.type = "brute_force";
    a.name = "bf";
    a.remote_ip = "203.0.113.9";
    assert_int_equal(cwpp_ev_summary_add(s, &a, 1, &c), CWPP_OK);
    assert_int_equal(cwpp_ev_assess(s, &c, T0, NULL, 0, &as), CWPP_OK);
    assert_false(has_code(&as, "block_ip"));
    cwpp_assessment_clear(&as);
    assert_int_equal(cwpp_ev_assess(s, &c, T0, &st, 1, &as), CWPP_OK);
    assert_true(has_code(&as, "block_ip"));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(as.recommendations, 0), "reason")),
                        "203.0.113.9 is in 4 events and 10 alerts over the last 30 days; "
                        "block this IP");
    cwpp_assessment_clear(&as);
    st = (cwpp_ip_stat_t){"203.0.113.9", 1, 3, 3};
    assert_int_equal(cwpp_ev_assess(s, &c, T0, &st, 1, &as), CWPP_OK);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(as.recommendations, 0), "reason")),
                        "targeted attack: 203.0.113.9 attacked 3 assets; block this IP");
    cwpp_assessment_clear(&as);
    /* precision defence only: nothing to do, whatever else */
    json_decref(s);
    s = json_object();
    a.defense = CWPP_DEF_PRECISION;
    assert_int_equal(cwpp_ev_summary_add(s, &a, 1, &c), CWPP_OK);
    assert_int_equal(cwpp_ev_assess(s, &c, T0, &st, 1, &as), CWPP_OK);
    assert_int_equal(as.urgency, CWPP_URG_LOW);
    assert_int_equal(json_array_size(as.reasons), 1);
    assert_true(has_code(&as, "precision_defense"));
    assert_int_equal(json_array_size(as.recommendations), 0);
    cwpp_assessment_clear(&as);
    /* a recurrence moves only times and occurrences */
    assert_int_equal(cwpp_ev_summary_add(s, &a, 0, &c), CWPP_OK);
    assert_int_equal(json_integer_value(json_object_get(s, "alerts")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "occurrences")), 2);
    json_decref(s);
}

/* The event status table (libs/correlate) is the only definition: schemas/event.avsc
 * EventStatus and the CHECK on events.status list exactly its statuses, the statuses a
 * handling policy may leave an event in are among them, and only "handled" and "merged"
 * take no more alerts. */
static void test_vocab_event_statuses(void **state)
{
    const char *want[CWPP_EVS__COUNT];
    vf_list_t   got;
    int         t, nbad = 0;
    size_t      i;

    (void)state;
    for (t = 0; t < CWPP_EVS__COUNT; t++) {
        cwpp_event_status_t back;

        want[t] = cwpp_event_status_name((cwpp_event_status_t)t);
        assert_int_equal(cwpp_event_status_parse(want[t], &back), 0);
        assert_int_equal(back, t);
        assert_int_equal(cwpp_event_status_state(want[t]),
                         t == CWPP_EVS_HANDLED || t == CWPP_EVS_MERGED ? CWPP_EV_HANDLED
                                                                       : CWPP_EV_OPEN);
    }
    assert_int_equal(cwpp_event_status_state("no-such-status"), CWPP_EV_OPEN);
    nbad += vf_diff("the event status table (libs/correlate)", want, CWPP_EVS__COUNT, &got,
                    vf_avro_enum("schemas/event.avsc", "EventStatus", &got) == 0);
    nbad += vf_diff("the event status table (libs/correlate)", want, CWPP_EVS__COUNT, &got,
                    vf_sql_check("events", "status", &got) == 0);
    if (vf_sql_check("handling_policies", "target_status", &got) != 0) {
        printf("VOCAB MISMATCH: no CHECK on handling_policies.target_status in schemas/sql\n");
        nbad++;
    }
    for (i = 0; i < got.n; i++) {
        cwpp_event_status_t st;

        if (cwpp_event_status_parse(got.v[i], &st) != 0) {
            printf("VOCAB MISMATCH: %s has \"%s\", which the event status table (libs/correlate) "
                   "lacks\n", got.where, got.v[i]);
            nbad++;
        }
    }
    if (nbad != 0)
        fail_msg("%d event status(es) disagree with libs/correlate's table (lines above)", nbad);
}

/* An event rebuilt from its members has the figures a running sum over the same alerts
 * gives (a member's occurrences: first at its first time, the rest at its last); an
 * empty one keeps its times and name, 0 alerts; "notified" is kept. */
static void test_rebuild_from_members(void **state)
{
    cwpp_assess_conf_t c;
    cwpp_alert_t       a[3];
    cwpp_corr_member_t m[3];
    json_t            *run = json_object(), *old, *got = NULL;
    int                i;

    (void)state;
    cwpp_assess_conf_default(&c);
    for (i = 0; i < 3; i++) {
        static const char *const names[] = {"a1", "a2", "a3"};

        a[i] = mk(names[i], "acct", i == 2 ? "h2" : "h1", T0 + i * 60000);
        a[i].type = (char *)"virus";
        a[i].name = (char *)names[i];
        a[i].severity = i == 1 ? CWPP_SEV_CRITICAL : CWPP_SEV_LOW;
        a[i].source = (char *)"ids";
        a[i].tactic = (char *)(i == 2 ? "TA0002" : "TA0001");
        m[i] = (cwpp_corr_member_t){&a[i], a[i].occurred_at_ms, a[i].occurred_at_ms + (i == 0) * H,
                                    i == 0 ? 3 : 1};
    }
    /* the running sum as the correlator built it: a1, a2, a1 again twice (at +H), a3 */
    assert_int_equal(cwpp_ev_summary_add(run, &a[0], 1, &c), CWPP_OK);
    assert_int_equal(cwpp_ev_summary_add(run, &a[1], 1, &c), CWPP_OK);
    {
        cwpp_alert_t later = a[0];

        later.occurred_at_ms += H;
        assert_int_equal(cwpp_ev_summary_add_n(run, &later, 0, 2, &c), CWPP_OK);
    }
    assert_int_equal(cwpp_ev_summary_add(run, &a[2], 1, &c), CWPP_OK);
    assert_int_equal(json_object_set_new(run, "notified", json_string("high")), 0);
    assert_int_equal(cwpp_ev_rebuild(m, 3, run, &c, &got), CWPP_OK);
    assert_true(json_equal(got, run));
    json_decref(got);

    /* a2 (the critical one) leaves: the best severity and name fall back to a1's */
    m[1] = m[2];
    assert_int_equal(cwpp_ev_rebuild(m, 2, run, &c, &got), CWPP_OK);
    assert_int_equal(json_integer_value(json_object_get(got, "alerts")), 2);
    assert_int_equal(json_integer_value(json_object_get(got, "occurrences")), 4);
    assert_int_equal(json_integer_value(json_object_get(got, "sev")), CWPP_SEV_LOW);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "a1");
    assert_int_equal(json_object_size(json_object_get(got, "assets")), 2);
    assert_string_equal(json_string_value(json_object_get(got, "notified")), "high");
    json_decref(got);

    /* none left */
    old = run;
    assert_int_equal(cwpp_ev_rebuild(m, 0, old, &c, &got), CWPP_OK);
    assert_int_equal(json_integer_value(json_object_get(got, "alerts")), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "occurrences")), 0);
    assert_int_equal(json_integer_value(json_object_get(got, "first_ms")), T0);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "a2");
    json_decref(got);
    json_decref(run);
}

/* Keys after a membership change: kept by the owner while a member holds them (brought by
 * the old alert if it still holds them, else the first holder), else to another rebuilt
 * event whose members hold them, else dropped. */
static void test_keys_reassign(void **state)
{
    static const char *const ids[] = {"ev-src", "ev-new"};
    const cwpp_corr_keyref_t owned[] = {
        {"k-asset", "ev-src", "al-gone"},   /* al-gone left; al-b, al-c still hold it */
        {"k-ip", "ev-src", "al-a"},         /* al-a detached into ev-new */
        {"k-hash", "ev-src", "al-gone"},    /* nobody holds it any more */
        {"k-proc", "ev-src", "al-b"},       /* unchanged */
    };
    const cwpp_corr_keyref_t held[] = {
        {"k-asset", "ev-src", "al-b"}, {"k-asset", "ev-src", "al-c"},
        {"k-proc", "ev-src", "al-c"},  {"k-proc", "ev-src", "al-b"},
        {"k-ip", "ev-new", "al-a"},    {"k-asset", "ev-new", "al-a"},
    };
    const char *ev[4], *al[4];

    (void)state;
    cwpp_corr_keys_reassign(owned, 4, held, 6, ids, 2, ev, al);
    assert_string_equal(ev[0], "ev-src");
    assert_string_equal(al[0], "al-b");
    assert_string_equal(ev[1], "ev-new");
    assert_string_equal(al[1], "al-a");
    assert_null(ev[2]);
    assert_null(al[2]);
    assert_string_equal(ev[3], "ev-src");
    assert_string_equal(al[3], "al-b");
}

/* The index forgets an alert that left (a restored one is then not "still a member"). */
/* Event ids: "ev-" and 32 lower-case hex digits whose first 12 are the opening
 * occurrence (ms): the same alert gives the same id, a later one a larger id, another
 * alert at the same millisecond another id; times out of range are clamped. */
static void test_event_ids_are_derived_and_ordered_by_time(void **state)
{
    cwpp_alert_t a = mk("al-1", "acct", "h1", 1764000000000LL);
    cwpp_alert_t b = mk("al-2", "acct", "h1", 1764000000000LL);
    cwpp_alert_t c = mk("al-1", "acct", "h1", 1764000000001LL);
    cwpp_alert_t neg = mk("al-1", "acct", "h1", -5);
    cwpp_alert_t big = mk("al-1", "acct", "h1", INT64_MAX);
    char         ia[CWPP_EVENT_ID_LEN + 1], ia2[CWPP_EVENT_ID_LEN + 1];
    char         ib[CWPP_EVENT_ID_LEN + 1], ic[CWPP_EVENT_ID_LEN + 1];
    char         in[CWPP_EVENT_ID_LEN + 1], ig[CWPP_EVENT_ID_LEN + 1];
    size_t       i;

    (void)state;
    cwpp_corr_event_id(&a, ia);
    cwpp_corr_event_id(&a, ia2);
    cwpp_corr_event_id(&b, ib);
    cwpp_corr_event_id(&c, ic);
    cwpp_corr_event_id(&neg, in);
    cwpp_corr_event_id(&big, ig);
    assert_int_equal(strlen(ia), CWPP_EVENT_ID_LEN);
    assert_int_equal(strncmp(ia, "ev-", 3), 0);
    for (i = 3; i < CWPP_EVENT_ID_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", ia[i]));
    assert_string_equal(ia, ia2);
    assert_int_equal(strncmp(ia, "ev-019ab697e800", 15), 0); /* 1764000000000 = 0x19ab697e800 */
    assert_int_equal(strncmp(ia, ib, 15), 0);
    assert_string_not_equal(ia, ib);
    assert_true(strcmp(ia, ic) < 0);
    assert_int_equal(strncmp(in, "ev-000000000000", 15), 0);
    assert_int_equal(strncmp(ig, "ev-ffffffffffff", 15), 0);
}

static void test_index_forgets_an_alert(void **state)
{
    cwpp_corr_index_t   *ix = cwpp_corr_index_new(24 * H);
    cwpp_alert_t         a = mk("f1", "acct", "h1", T0);
    cwpp_corr_decision_t d;
    const char          *ev;
    cwpp_event_state_t   st;

    (void)state;
    feed(ix, &a, &d);
    assert_int_equal(cwpp_corr_index_alert_event(ix, a.alert_id, &ev, &st), CWPP_OK);
    assert_string_equal(ev, d.event_id);
    assert_int_equal(st, CWPP_EV_OPEN);
    assert_int_equal(cwpp_corr_index_forget_alert(ix, a.alert_id), CWPP_OK);
    assert_int_equal(cwpp_corr_index_alert_event(ix, a.alert_id, &ev, &st), CWPP_ENOTFOUND);
    assert_int_equal(cwpp_corr_index_forget_alert(ix, a.alert_id), CWPP_ENOTFOUND);
    /* it joins its old event again by its keys, not as a recurrence */
    assert_int_equal(cwpp_corr_decide(ix, &a, &d), CWPP_OK);
    assert_true(d.join);
    assert_false(d.recurrence);
    cwpp_corr_index_destroy(ix);
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
        cmocka_unit_test(test_seeded_index_decides_like_the_live_one),
        cmocka_unit_test(test_long_keys_are_digested),
        cmocka_unit_test(test_long_keys_digest_the_whole_value),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_assessment_escalation_and_core_assets),
        cmocka_unit_test(test_assessment_block_ip),
        cmocka_unit_test(test_vocab_event_statuses),
        cmocka_unit_test(test_rebuild_from_members),
        cmocka_unit_test(test_keys_reassign),
        cmocka_unit_test(test_index_forgets_an_alert),
        cmocka_unit_test(test_event_ids_are_derived_and_ordered_by_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
