/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cwppctl: the analysts' client of cwpp-api (docs/cwppctl.md, docs/api.md). It holds no
 * database or Kafka credentials: it logs in, reads what the API shows the user and asks
 * the API for changes, which the owning service applies with the user as actor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "cwpp_alert.h"
#include "cwpp_correlate.h"
#include "cwpp_rules.h"
#include "cwpp_log.h"

/* Prints the help, its vocabularies (%s) filled in from the tables that define them. */
static void usage(FILE *f)
{
    char types[128], ops[128], statuses[128];

    fprintf(f,
        "usage: cwppctl [--json] [--timeout S] VERB ...\n"
        "\n"
        "  login [--user NAME]            log in to cwpp-api (password from the terminal or\n"
        "                                 stdin); the token is kept for the next commands\n"
        "  logout | whoami\n"
        "  alerts list [--status S,...] [--handled yes|no] [--name N] [--type T] [--severity S,...]\n"
        "              [--asset A] [--account A] [--event E] [--since T] [--until T] [--limit N]\n"
        "  alerts show ALERT_ID\n"
        "  events list [--status S] [--level L] [--since T] [--until T] [--account A]\n"
        "              [--urgency U,...] [--owner NAME|me|none] [--name TEXT]\n"
        "              [--keyword|--q TEXT] [--asset A] [--entity TYPE:VALUE] [--source S]\n"
        "              [--stage TACTIC]\n"
        "              [--sort last_seen|level|urgency|alerts] [--limit N]\n"
        "                                 events seen in the last 180 days, newest first\n"
        "  events show EVENT_ID           overview, urgency with its reasons, recommendations\n"
        "  events alerts EVENT_ID         its alerts in time order, with why each joined\n"
        "  events entities EVENT_ID [--affected]   entities (or affected assets), 30-day counts\n"
        "  events chain EVENT_ID [--format text|json|dot|svg]   timeline and provenance graph\n"
        "  entities show TYPE VALUE [--account A] [--limit N]\n"
        "                                 TYPE: %s\n"
        "  whitelist add-alert ALERT_ID [--remark R]\n"
        "  whitelist remove ALERT_ID... [--remark R]\n"
        "  whitelist rule add --account A --alert-name N --field F --op %s --value V\n"
        "                     [--scope all|asset] [--asset A] [--from-alert ALERT_ID]\n"
        "                     [--expires TIME|30d|12h] [--remark R] [--force]\n"
        "  whitelist rule list [--all] [--alert-name N] [--account A]\n"
        "  whitelist rule delete RULE_ID [--remark R]\n"
        "  whitelist preview <the options of rule add>\n"
        "  events status EVENT_ID unhandled|handling|handled [--remark R]\n"
        "  events status|owner|level ID,ID,... VALUE [--remark R]   several events at once\n"
        "  events owner EVENT_ID USER [--remark R]\n"
        "  events level EVENT_ID critical|high|medium|low [--remark R]\n"
        "  events remark EVENT_ID TEXT\n"
        "  events recommend EVENT_ID       the built-in handling policy of each entity, playbooks\n"
        "  events respond EVENT_ID --entity TYPE:VALUE... --status handling|handled\n"
        "                 [--validity D] [--account A] [--remark R]\n"
        "  events playbook EVENT_ID --entity TYPE:VALUE [--playbook NAME] [--validity D]\n"
        "                 [--account A] [--remark R]\n"
        "  events tasks EVENT_ID           handling policies and playbook runs with their tasks\n"
        "  events log EVENT_ID             the activity log of the event, in order\n"
        "  events merge EVENT_ID EVENT_ID... [--remark R]   open events of one account into\n"
        "                                 the oldest; the others become merged\n"
        "  events detach EVENT_ID --alerts ALERT_ID... [--remark R]   the alerts leave the\n"
        "                                 event into a new event\n"
        "  notifications show ACCOUNT | set ACCOUNT on|off [--min-level L] [--remark R]\n"
        "  policies list|tasks list [--state S] [--event ID] [--entity TYPE:VALUE] [--account A]\n"
        "                 [--limit N]       handling policies (tasks) across events, newest first\n"
        "  policies cancel POLICY_ID [--remark R]   end a lease now: its actions roll back\n"
        "  playbooks list [--entity-type T] | add FILE.json | delete NAME\n"
        "  users list | add USER [--role analyst|admin|viewer] [--display-name N]\n"
        "        | grant USER ACCOUNT | revoke USER ACCOUNT | role USER analyst|admin|viewer\n"
        "        | disable USER | enable USER\n"
        "  accounts list | add-member ACCOUNT --manager ACCOUNT [--name N]\n"
        "  accounts perimeter ACCOUNT ASSET [--remove] | perimeter list\n"
        "  export [--level L...] [--status S...] [--since T] [--until T] [--ids ID...]\n"
        "         --out FILE.xlsx            an Excel workbook of at most 1,000 events\n"
        "  export download JOB --out FILE.xlsx | export list [--limit N]\n"
        "\n"
        "--json prints one JSON document instead of text. Changes wait --timeout seconds\n"
        "(default 30) for the service's answer. Times (--since, --until): RFC 3339, a date\n"
        "(YYYY-MM-DD, UTC), now, or how long ago (30m, 12h, 7d).\n"
        "S: %s; L: critical, high, medium, low.\n"
        "\n"
        "Environment: CWPP_API_URL (https://127.0.0.1:8443), CWPP_API_CA (a private CA to\n"
        "trust), CWPP_API_TOKEN (else the token `login` kept in $XDG_CONFIG_HOME/cwpp/token),\n"
        "CWPP_CTL_TIMEOUT_S (30), CWPP_EVENT_RETENTION_DAYS (180: older events leave the lists)\n"
        "and CWPP_CTL_QUIET_HOURS (24: an event with no alert for longer is shown one urgency\n"
        "step lower), both sent to the API as parameters.\n"
        "D (--validity): seconds, or 90s, 30m, 12h, 7d.\n"
        "\n"
        "Exit status: 0 done; 1 refused or not found (the reason on stderr); 2 bad command line\n"
        "or setting; 3 the API unreachable or failing, no answer in time, or dot (Graphviz)\n"
        "missing or failing.\n",
            cwpp_entity_types_text(types, sizeof(types), ", ", " or "),
            cwpp_rule_ops_text(ops, sizeof(ops), "|", "|"),
            cwpp_event_statuses_text(statuses, sizeof(statuses), ", ", ", "));
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : def;
}

int main(int argc, char **argv)
{
    ctl_t c;
    int   i, rc;

    memset(&c, 0, sizeof(c));
    c.timeout_s = atoi(env_or("CWPP_CTL_TIMEOUT_S", "30"));
    ctl_api_init(&c);
    cwpp_log_init("cwppctl", CWPP_LOG_ERROR);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CTL_OK;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            c.timeout_s = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--actor") == 0) {
            return ctl_fail(CTL_USAGE, "--actor is gone: the actor of every change is the user "
                            "logged in (cwppctl login, or CWPP_API_TOKEN)");
        } else {
            usage(stderr);
            return ctl_fail(CTL_USAGE, "unknown option \"%s\"", argv[i]);
        }
    }
    if (c.timeout_s <= 0 || c.timeout_s > 3600)
        return ctl_fail(CTL_USAGE, "--timeout must be 1 to 3600 seconds");
    if (i >= argc) {
        usage(stderr);
        return CTL_USAGE;
    }
    /* --json may also come after the verb */
    {
        int j, k = i;

        static const char *const takes_value[] = {
            "--status", "--name", "--account", "--limit", "--alert-name", "--field", "--op",
            "--value", "--scope", "--asset", "--from-alert", "--expires", "--remark",
            "--level", "--since", "--until", "--format", "--entity", "--validity",
            "--playbook", "--role", "--display-name", "--manager", "--entity-type", "--out",
            "--keyword", "--min-level", NULL};

        for (j = i; j < argc; j++) {
            int is_value = 0, t;

            for (t = 0; j > i && takes_value[t] != NULL; t++)
                is_value |= strcmp(argv[j - 1], takes_value[t]) == 0;
            if (strcmp(argv[j], "--") == 0) { /* the rest are values, even "--json" */
                for (; j < argc; j++)
                    argv[k++] = argv[j]; /* "--" too: the verb reads it */
                break;
            }
            if (!is_value && strcmp(argv[j], "--json") == 0)
                c.json = 1;
            else
                argv[k++] = argv[j];
        }
        argc = k;
    }
    if (strcmp(argv[i], "login") == 0) {
        rc = ctl_login(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "logout") == 0) {
        rc = ctl_logout(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "whoami") == 0) {
        rc = ctl_whoami(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "alerts") == 0) {
        rc = ctl_alerts(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "events") == 0) {
        rc = ctl_events(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "entities") == 0) {
        rc = ctl_entities(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "whitelist") == 0) {
        /* the API's authenticated user is the actor */
        rc = ctl_whitelist(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "export") == 0) {
        rc = ctl_export(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "policies") == 0) {
        rc = ctl_policies(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "tasks") == 0) {
        rc = ctl_tasks(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "playbooks") == 0) {
        rc = ctl_playbooks(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "users") == 0) {
        rc = ctl_users(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "accounts") == 0) {
        rc = ctl_accounts(&c, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "notifications") == 0) {
        rc = ctl_notifications(&c, argc - i - 1, argv + i + 1);
    } else {
        usage(stderr);
        rc = ctl_fail(CTL_USAGE, "unknown verb \"%s\"", argv[i]);
    }
    return rc;
}
