/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_assess: an event's urgency (docs/correlator.md "Assessment"; the reference's
 * "Assess a security event", Overview and Event chain diagram). Each "when to act
 * immediately" signal of the reference's table makes an event act_now on its own: a core
 * asset involved, an alert count high and growing, recent activity that may be ongoing,
 * an authoritative source; the pace accelerating raises urgency; precision defence
 * alone still says nothing to do. And the quiet rule ("no new related alerts for a long
 * time: lower priority"), one definition for every reader: cwpp_urgency_as_of and the
 * SQL macros that say the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cwpp_correlate.h"

#define MIN 60000LL
#define H   3600000LL
#define T0  1795860000000LL

/* One alert of an event as a test needs it; the defaults raise no signal: a web server,
 * a blocked attack seen by an IDS. Strings point at literals. */
typedef struct spec {
    int64_t     at;
    const char *type, *role, *source;
    int         defense; /* DEF(CWPP_DEF_...); 0: blocked */
} spec_t;
#define DEF(d) ((int)(d) + 1)

static json_t *summary_of(const spec_t *sp, size_t n, const cwpp_assess_conf_t *c)
{
    json_t *s = json_object();
    size_t  i;
    char    id[24];

    for (i = 0; i < n; i++) {
        cwpp_alert_t a;

        memset(&a, 0, sizeof(a));
        snprintf(id, sizeof(id), "%zu", i);
        memcpy(a.alert_id, "al-", 3);
        memset(a.alert_id + 3, '0', 32);
        memcpy(a.alert_id + 3 + 32 - strlen(id), id, strlen(id));
        a.account_id = "acct";
        a.asset.id = "web1";
        a.asset.role = (char *)(sp[i].role != NULL ? sp[i].role : "web");
        a.occurred_at_ms = sp[i].at;
        a.type = (char *)(sp[i].type != NULL ? sp[i].type : "webshell");
        a.name = a.type;
        a.severity = CWPP_SEV_HIGH;
        a.source = (char *)(sp[i].source != NULL ? sp[i].source : "ids");
        a.defense = sp[i].defense != 0 ? (cwpp_defense_t)(sp[i].defense - 1) : CWPP_DEF_BLOCKED;
        assert_int_equal(cwpp_ev_summary_add(s, &a, 1, c), CWPP_OK);
    }
    return s;
}

static const char *text_of(const cwpp_assessment_t *as, const char *code)
{
    size_t i;

    for (i = 0; i < json_array_size(as->reasons); i++) {
        const json_t *r = json_array_get(as->reasons, i);

        if (strcmp(json_string_value(json_object_get(r, "code")), code) == 0)
            return json_string_value(json_object_get(r, "text"));
    }
    return NULL;
}

/* Assesses n alerts at now and checks the urgency and that code is (or is not) a reason. */
static void expect(const spec_t *sp, size_t n, int64_t now, cwpp_urgency_t want,
                   const char *code, int present)
{
    cwpp_assess_conf_t c;
    cwpp_assessment_t  as;
    json_t            *s;

    cwpp_assess_conf_default(&c);
    s = summary_of(sp, n, &c);
    assert_int_equal(cwpp_ev_assess(s, &c, now, NULL, 0, &as), CWPP_OK);
    if (as.urgency != want)
        fail_msg("urgency %s, want %s (%s)", cwpp_urgency_name(as.urgency),
                 cwpp_urgency_name(want), json_dumps(as.reasons, JSON_COMPACT));
    if (code != NULL && (text_of(&as, code) != NULL) != present)
        fail_msg("reason %s %s: %s", code, present ? "missing" : "present",
                 json_dumps(as.reasons, JSON_COMPACT));
    cwpp_assessment_clear(&as);
    json_decref(s);
}

/* Nothing of the table: one blocked alert on a web server from an IDS, two days ago. */
static void test_no_signal_is_low(void **state)
{
    const spec_t one[] = {{T0, NULL, NULL, NULL, 0}};

    (void)state;
    expect(one, 1, T0 + 48 * H, CWPP_URG_LOW, "core_asset", 0);
}

/* "Core assets (database or application servers) are involved": act now, even with the
 * attack blocked and nothing recent (before: only together with a failed defence). */
static void test_core_asset_acts_now(void **state)
{
    const spec_t db[] = {{T0, NULL, "database", NULL, 0}};
    const spec_t app[] = {{T0, NULL, "application", NULL, 0}};

    (void)state;
    expect(db, 1, T0 + 48 * H, CWPP_URG_ACT_NOW, "core_asset", 1);
    expect(app, 1, T0 + 48 * H, CWPP_URG_ACT_NOW, "core_asset", 1);
}

/* "Alert count is high and growing": 10 alerts (assess.alerts.high), at least 3 of them
 * within the hour up to the latest: act now. Nine are not high. */
static void test_high_and_growing_acts_now(void **state)
{
    spec_t sp[10];
    int    i;

    (void)state;
    memset(sp, 0, sizeof(sp));
    for (i = 0; i < 10; i++)
        sp[i].at = T0 + i * 10 * MIN;
    expect(sp, 10, T0 + 48 * H, CWPP_URG_ACT_NOW, "alerts_growing", 1);
    expect(sp, 9, T0 + 48 * H, CWPP_URG_LOW, "alerts_growing", 0);
    /* high but no longer growing: the latest three alerts spread over days */
    for (i = 0; i < 10; i++)
        sp[i].at = T0 + i * 24 * H;
    expect(sp, 10, T0 + 400 * H, CWPP_URG_LOW, "alerts_growing", 0);
}

/* "The event occurred recently and the attack may be ongoing": the latest alert within
 * the hour and 3 alerts clustered in that hour: act now. A single recent alert is only
 * recent activity (weight 1). */
static void test_recent_ongoing_acts_now(void **state)
{
    const spec_t three[] = {{T0, NULL, NULL, NULL, 0},
                            {T0 + 5 * MIN, NULL, NULL, NULL, 0},
                            {T0 + 10 * MIN, NULL, NULL, NULL, 0}};
    cwpp_assess_conf_t c;
    cwpp_assessment_t  as;
    json_t            *s;

    (void)state;
    expect(three, 3, T0 + 15 * MIN, CWPP_URG_ACT_NOW, "recent_activity", 1);
    expect(three, 1, T0 + 15 * MIN, CWPP_URG_LOW, "recent_activity", 1);
    /* the same three a day later: nothing recent */
    expect(three, 3, T0 + 24 * H, CWPP_URG_LOW, "recent_activity", 0);
    cwpp_assess_conf_default(&c);
    s = summary_of(three, 3, &c);
    assert_int_equal(cwpp_ev_assess(s, &c, T0 + 15 * MIN, NULL, 0, &as), CWPP_OK);
    assert_string_equal(text_of(&as, "recent_activity"),
                        "latest alert 5 min ago and 3 alerts within 1 h: the attack may be "
                        "ongoing: act now");
    cwpp_assessment_clear(&as);
    json_decref(s);
}

/* "Alerts come from authoritative modules, such as a dedicated virus scanning module":
 * act now. */
static void test_authoritative_source_acts_now(void **state)
{
    const spec_t vs[] = {{T0, NULL, NULL, "virus_scan", 0}};
    const spec_t ws[] = {{T0, NULL, NULL, "webshell_scan", 0}};

    (void)state;
    expect(vs, 1, T0 + 48 * H, CWPP_URG_ACT_NOW, "authoritative_source", 1);
    expect(ws, 1, T0 + 48 * H, CWPP_URG_ACT_NOW, "authoritative_source", 1);
}

/* Precision defence stopped every alert: nothing to do, whatever the signals. */
static void test_precision_defense_overrides(void **state)
{
    const spec_t pd[] = {{T0, NULL, "database", "virus_scan", DEF(CWPP_DEF_PRECISION)}};

    (void)state;
    expect(pd, 1, T0 + MIN, CWPP_URG_LOW, "precision_defense", 1);
    expect(pd, 1, T0 + MIN, CWPP_URG_LOW, "core_asset", 0);
}

/* "An accelerating pace": the mean of the last two gaps under half the mean of the gaps
 * before them. Hourly alerts then two 10-minute gaps accelerate; even spacing, fewer
 * than five alerts, or slowing down do not. */
static void test_accelerating_pace(void **state)
{
    const spec_t fast[] = {{T0, NULL, NULL, NULL, 0},
                           {T0 + 60 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 120 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 180 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 190 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 200 * MIN, NULL, NULL, NULL, 0}};
    const spec_t even[] = {{T0, NULL, NULL, NULL, 0},
                           {T0 + 60 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 120 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 180 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 240 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 300 * MIN, NULL, NULL, NULL, 0}};
    const spec_t slow[] = {{T0, NULL, NULL, NULL, 0},
                           {T0 + 10 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 20 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 30 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 90 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 150 * MIN, NULL, NULL, NULL, 0}};
    /* the boundary: last gaps exactly half the earlier mean is not "under half" */
    const spec_t half[] = {{T0, NULL, NULL, NULL, 0},
                           {T0 + 60 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 120 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 180 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 210 * MIN, NULL, NULL, NULL, 0},
                           {T0 + 240 * MIN, NULL, NULL, NULL, 0}};

    (void)state;
    /* weight 1 alone: still low, but the reason is there */
    expect(fast, 6, T0 + 48 * H, CWPP_URG_LOW, "accelerating", 1);
    expect(fast, 4, T0 + 48 * H, CWPP_URG_LOW, "accelerating", 0);
    expect(even, 6, T0 + 48 * H, CWPP_URG_LOW, "accelerating", 0);
    expect(slow, 6, T0 + 48 * H, CWPP_URG_LOW, "accelerating", 0);
    expect(half, 6, T0 + 48 * H, CWPP_URG_LOW, "accelerating", 0);
}

/* The weights still order what is not act_now: a failed and a missing defence (2 + 1)
 * with an accelerating pace (1) is high; a failed defence alone medium. */
static void test_weights_below_act_now(void **state)
{
    spec_t sp[6];
    int    i;

    (void)state;
    memset(sp, 0, sizeof(sp));
    for (i = 0; i < 6; i++)
        sp[i].at = T0 + (i < 4 ? i * 60 : 180 + (i - 3) * 10) * MIN;
    sp[0].defense = DEF(CWPP_DEF_FAILED);
    sp[1].defense = DEF(CWPP_DEF_NONE);
    expect(sp, 6, T0 + 48 * H, CWPP_URG_HIGH, "accelerating", 1);
    expect(sp, 1, T0 + 48 * H, CWPP_URG_MEDIUM, "defense_failed", 1);
}

/* The quiet rule: one step lower after quiet_hours without an alert, strictly after. */
static void test_urgency_as_of(void **state)
{
    static const struct {
        cwpp_urgency_t stored;
        int64_t        age;
        int64_t        hours;
        cwpp_urgency_t shown;
        int            quiet;
    } cases[] = {
        {CWPP_URG_ACT_NOW, 23 * H, 24, CWPP_URG_ACT_NOW, 0},
        {CWPP_URG_ACT_NOW, 24 * H, 24, CWPP_URG_ACT_NOW, 0}, /* exactly 24 h: not yet */
        {CWPP_URG_ACT_NOW, 24 * H + 1, 24, CWPP_URG_HIGH, 1},
        {CWPP_URG_HIGH, 30 * H, 24, CWPP_URG_MEDIUM, 1},
        {CWPP_URG_MEDIUM, 30 * H, 24, CWPP_URG_LOW, 1},
        {CWPP_URG_LOW, 30 * H, 24, CWPP_URG_LOW, 1},       /* low stays low */
        {CWPP_URG_HIGH, 2 * H, 1, CWPP_URG_MEDIUM, 1},
        {CWPP_URG_HIGH, 1000 * H, 87600, CWPP_URG_HIGH, 0},
        {CWPP_URG_HIGH, -5 * H, 24, CWPP_URG_HIGH, 0},     /* an alert "in the future" */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int q = -1;

        assert_int_equal(cwpp_urgency_as_of(cases[i].stored, T0, T0 + cases[i].age,
                                            cases[i].hours, &q),
                         cases[i].shown);
        assert_int_equal(q, cases[i].quiet);
        assert_int_equal(cwpp_urgency_quiet(T0, T0 + cases[i].age, cases[i].hours),
                         cases[i].quiet);
    }
    /* no latest alert: never quiet */
    assert_int_equal(cwpp_urgency_as_of(CWPP_URG_HIGH, 0, T0, 24, NULL), CWPP_URG_HIGH);
    /* the step alone, for readers that learnt "quiet" from CWPP_SQL_QUIET */
    assert_int_equal(cwpp_urgency_shown(CWPP_URG_ACT_NOW, 1), CWPP_URG_HIGH);
    assert_int_equal(cwpp_urgency_shown(CWPP_URG_ACT_NOW, 0), CWPP_URG_ACT_NOW);
    assert_int_equal(cwpp_urgency_shown(CWPP_URG_LOW, 1), CWPP_URG_LOW);
    /* an unknown stored value is shown as low */
    assert_int_equal(cwpp_urgency_as_of((cwpp_urgency_t)9, T0, T0, 24, NULL), CWPP_URG_LOW);
}

/* The SQL text says the same: its urgency list is cwpp_urgency_name's, in rank order,
 * and the macros compose with the reader's expressions. */
static void test_urgency_sql(void **state)
{
    char want[128];
    int  i, n = 0;

    (void)state;
    n = snprintf(want, sizeof(want), "'{");
    for (i = 0; i < 4; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%s%s", i ? "," : "",
                      cwpp_urgency_name((cwpp_urgency_t)i));
    snprintf(want + n, sizeof(want) - (size_t)n, "}'::text[]");
    assert_string_equal(CWPP_SQL_URGENCIES, want);
    assert_string_equal(CWPP_SQL_QUIET("e.last_seen", "$1", "$3"),
                        "((e.last_seen) < ($1)::timestamptz - make_interval(hours => ($3)::int))");
    assert_non_null(strstr(CWPP_SQL_URGENCY_AS_OF("e.urgency", "e.last_seen", "now()",
                                                  CWPP_QUIET_HOURS_DEFAULT_S),
                           "array_position('{act_now,high,medium,low}'::text[], e.urgency)"));
    snprintf(want, sizeof(want), "%d", CWPP_QUIET_HOURS_DEFAULT);
    assert_string_equal(CWPP_QUIET_HOURS_DEFAULT_S, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_signal_is_low),
        cmocka_unit_test(test_core_asset_acts_now),
        cmocka_unit_test(test_high_and_growing_acts_now),
        cmocka_unit_test(test_recent_ongoing_acts_now),
        cmocka_unit_test(test_authoritative_source_acts_now),
        cmocka_unit_test(test_precision_defense_overrides),
        cmocka_unit_test(test_accelerating_pace),
        cmocka_unit_test(test_weights_below_act_now),
        cmocka_unit_test(test_urgency_as_of),
        cmocka_unit_test(test_urgency_sql),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
