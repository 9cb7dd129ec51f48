# SPDX-License-Identifier: Apache-2.0
"""cwppctl as the demo's users run it (deploy/local/demo-*.py): a client of the demo's
cwpp-api ($CWPP_DEMO_API_URL, trusting $CWPP_API_CA), each user logged in beforehand by
deploy/local/demo with `cwppctl login` into a configuration directory of their own
($CWPP_DEMO_HOMES/<user>). cwppctl gets none of the database's or Kafka's settings: every
view and every change is an API call as that user."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CTL = REPO / "build" / "bin" / "cwppctl"
ADMIN = os.environ.get("CWPP_DEMO_ADMIN", "demo-admin")
# what cwppctl must not get: the old ways in (database, Kafka, a claimed actor)
HIDDEN = ("CWPP_CTL_PG_DSN", "CWPP_ACTOR", "CWPP_API_TOKEN", "CWPP_KAFKA_BROKERS",
          "CWPP_KAFKA_PROPERTIES", "CWPP_TOPIC_PREFIX")


def env_of(user):
    e = {k: v for k, v in os.environ.items() if k not in HIDDEN}
    e["CWPP_API_URL"] = os.environ["CWPP_DEMO_API_URL"]
    e["XDG_CONFIG_HOME"] = str(Path(os.environ["CWPP_DEMO_HOMES"]) / user)
    return e


def shown(args):
    return " ".join(a if a and not any(c in a for c in " $^'\"*") else repr(a) for a in args)


def ctl(*args, user=ADMIN, show=True, check=False, exit_code=False):
    """Runs cwppctl ARGS as user; with show, prints "[user]$ cwppctl ARGS", its output
    and, with exit_code, "(exit N)". check: a failure ends the demo. Returns the
    CompletedProcess (text)."""
    p = subprocess.run([str(CTL), *args], env=env_of(user), capture_output=True, text=True,
                       timeout=120)
    if show:
        print(f"[{user}]$ cwppctl {shown(args)}")
        sys.stdout.write(p.stdout)
        sys.stdout.write(p.stderr)
        if exit_code:
            print(f"(exit {p.returncode})")
        sys.stdout.flush()
    if check and p.returncode != 0:
        sys.exit(f"demo: cwppctl {shown(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return p
