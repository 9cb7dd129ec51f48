#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/local/services.sh start|stop|restart|status|ready|running|list [SERVICE...]: the long-lived services of
# the local stack (docs/local-stack.md "The long-lived services"): cwpp-ingest,
# cwpp-whitelist-filter, cwpp-correlator, cwpp-responder, cwpp-exporter and cwpp-api, on
# the default topic prefix ($CWPP_TOPIC_PREFIX, cwpp.), their default consumer groups
# (cwpp-<service>) and database cwpp, each as its own role. No SERVICE means all of them,
# in that order (stop goes in reverse). cwpp-responder signs actions with
# $CWPP_ACTION_SIGNING_KEY (made by deploy/local/up). Binaries come from $CWPP_BIN_DIR (default
# build/bin).
#   start   starts each one not already running, detached (setsid + nohup; pid in
#           run/<service>.pid, log appended to run/<service>.log under the state dir),
#           its health listener on 127.0.0.1 at its own port (CWPP_LOCAL_HTTP_PORT_<SVC>,
#           deploy/local/env), and waits, bounded by $CWPP_SERVICE_START_TIMEOUT (60 s),
#           until its /readyz answers 200; on failure it prints the log's tail, stops that
#           service and exits non-zero. A running one is only waited for. A binary that
#           is not built is skipped with a warning. A service's environment holds only
#           the CWPP_* settings given here (and CWPP_LOG_LEVEL, CWPP_KAFKA_PROPERTIES when
#           set), never other ones of the calling shell. cwpp-api serves HTTPS on
#           127.0.0.1:$CWPP_LOCAL_API_PORT with the development certificate of tls.sh.
#   stop    SIGTERM (the services finish their batch, commit and exit 0), SIGKILL after
#           $CWPP_SERVICE_STOP_TIMEOUT (30 s); no-op for one that does not run.
#   status  one line per service: pid, health (/readyz), port, log; exit 0 when every
#           built one is running and ready, 3 otherwise.
#   restart stop, then start (to run binaries rebuilt since: status marks those).
#   ready SERVICE  exit 0 when that service runs and its /readyz answers, 1 otherwise.
#   running  the names of those that run, one a line; exit 0 when at least one does.
#   list    the service names, one a line.
# It only ever signals the pid in run/<service>.pid, and only while that process is the
# service's binary started for this state dir (CWPP_STATE_DIR in its environment).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/env
. "$here/env"

STATE=$CWPP_STATE_DIR
RUN=$STATE/run
BIN=${CWPP_BIN_DIR:-$REPO/build/bin}
START_TIMEOUT=${CWPP_SERVICE_START_TIMEOUT:-60}
STOP_TIMEOUT=${CWPP_SERVICE_STOP_TIMEOUT:-30}
ALL=(ingest whitelist-filter correlator responder exporter api)

say() { echo "services: $*"; }
die() {
  echo "services: $*" >&2
  exit 1
}

# The port variable of a service: CWPP_LOCAL_HTTP_PORT_WHITELIST_FILTER for whitelist-filter.
port_of() {
  local v=CWPP_LOCAL_HTTP_PORT_${1^^}
  v=${v//-/_}
  printf '%s' "${!v}"
}

# Fills the array ENV with env's arguments for service $1: -u for every CWPP_* name of
# this shell (a CWPP_GROUP_ID, CWPP_FAULTS or CWPP_CONFIG left from a test must not reach
# a long-lived service) except CWPP_LOG_LEVEL and CWPP_KAFKA_PROPERTIES, which pass
# through, then the NAME=VALUE settings the service runs with.
service_env() {
  local n
  ENV=()
  while read -r n; do
    case $n in
      CWPP_LOG_LEVEL | CWPP_KAFKA_PROPERTIES) ;;
      *) ENV+=(-u "$n") ;;
    esac
  done < <(compgen -e | grep '^CWPP_' || true)
  ENV+=(CWPP_STATE_DIR="$STATE" CWPP_KAFKA_BROKERS="$CWPP_KAFKA_BROKERS"
    CWPP_TOPIC_PREFIX="$CWPP_TOPIC_PREFIX" CWPP_HTTP_ADDRESS=127.0.0.1
    CWPP_HTTP_PORT="$(port_of "$1")")
  # the service's own Kafka principal (docs/kafka-security.md; none with CWPP_KAFKA_SASL=0)
  local principal=${1%-filter} kv
  while read -r kv; do ENV+=("$kv"); done < <(cwpp_kafka_env "$principal")
  case $1 in
    ingest) ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN") ;;
    whitelist-filter) ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN_WHITELIST") ;;
    correlator) ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN_CORRELATOR") ;;
    responder) ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN_RESPONDER"
      CWPP_RESPONDER_SIGNING_KEY_FILE="$CWPP_ACTION_SIGNING_KEY") ;;
    exporter) ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN_EXPORTER") ;;
    api)
      ENV+=(CWPP_PG_DSN="$CWPP_PG_DSN_API" CWPP_API_ADDRESS=127.0.0.1
        CWPP_API_PORT="$CWPP_LOCAL_API_PORT"
        CWPP_API_TLS_CERT_FILE="$STATE/tls/server.crt"
        CWPP_API_TLS_KEY_FILE="$STATE/tls/server.key")
      ;;
    *) die "unknown service '$1' (one of: ${ALL[*]})" ;;
  esac
}

# True if pid $1 is alive and is service $2's binary started for this state dir.
ours() {
  local pid=$1 svc=$2 argv0
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # (stderr first: the pid may be gone by the time the file is opened)
  IFS= read -r -d '' argv0 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [ "${argv0##*/}" = "cwpp-$svc" ] || return 1
  grep -zqxF "CWPP_STATE_DIR=$STATE" 2>/dev/null <"/proc/$pid/environ"
}

recorded_pid() { cat "$RUN/$1.pid" 2>/dev/null || true; }

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(port_of "$1")/readyz" 2>/dev/null; }

port_busy() { [ -n "$(ss -Htln "sport = :$1")" ]; }

show_log() {
  if [ -s "$RUN/$1.log" ]; then
    echo "---- last lines of $RUN/$1.log" >&2
    tail -n 25 "$RUN/$1.log" >&2
  fi
}

# Waits until service $1 (pid $2) is ready; on failure shows its log, stops it, returns 1.
wait_ready() {
  local svc=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT))
  until ready "$svc"; do
    if ! ours "$pid" "$svc"; then
      show_log "$svc"
      rm -f "$RUN/$svc.pid"
      echo "services: cwpp-$svc (pid $pid) exited during start-up" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_log "$svc"
      echo "services: cwpp-$svc (pid $pid) not ready on 127.0.0.1:$(port_of "$svc")/readyz" \
        "after ${START_TIMEOUT}s; stopping it" >&2
      stop_one "$svc" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

start_one() {
  local svc=$1 exe=$BIN/cwpp-$1 pid pidfile=$RUN/$1.pid p
  pid=$(recorded_pid "$svc")
  if ours "$pid" "$svc"; then
    wait_ready "$svc" "$pid" || return 1
    say "cwpp-$svc already running (pid $pid, health 127.0.0.1:$(port_of "$svc"))$(stale_note "$pid" "$svc")"
    return 0
  fi
  rm -f "$pidfile"
  if [ ! -x "$exe" ]; then
    echo "services: warning: $exe is not built; cwpp-$svc not started" >&2
    return 0
  fi
  local ports=("$(port_of "$svc")")
  [ "$svc" != api ] || ports+=("$CWPP_LOCAL_API_PORT")
  for p in "${ports[@]}"; do
    if port_busy "$p"; then
      ss -Htlnp "sport = :$p" >&2 || true
      echo "services: port $p (cwpp-$svc) is already in use by another process" >&2
      return 1
    fi
  done
  if [ "$svc" = api ]; then "$here/tls.sh" ensure >/dev/null; fi
  service_env "$svc"
  rm -f "$pidfile.new"
  # setsid + nohup: the service outlives this script and the terminal. The inner bash
  # records its own pid and execs env, which execs the service: the pid is the service's.
  # shellcheck disable=SC2016 # $$ and $1 are the inner bash's
  setsid bash -c 'echo $$ >"$1"; shift; exec nohup env "$@"' "cwpp-$svc" "$pidfile.new" \
    "${ENV[@]}" "$exe" </dev/null >>"$RUN/$svc.log" 2>&1 9>&- &
  local tries=0
  while [ ! -s "$pidfile.new" ] && [ "$tries" -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  [ -s "$pidfile.new" ] || die "cwpp-$svc did not start (see $RUN/$svc.log)"
  mv -f "$pidfile.new" "$pidfile"
  pid=$(recorded_pid "$svc")
  # nohup and env exec quickly; give the exec a moment before asking whose pid it is
  tries=0
  while ! ours "$pid" "$svc" && [ -d "/proc/$pid" ] && [ "$tries" -lt 20 ]; do
    sleep 0.05
    tries=$((tries + 1))
  done
  wait_ready "$svc" "$pid" || return 1
  say "cwpp-$svc started (pid $pid, health 127.0.0.1:$(port_of "$svc"), log $RUN/$svc.log)"
}

stop_one() {
  local svc=$1 pid
  pid=$(recorded_pid "$svc")
  [ -n "$pid" ] || return 0
  if ! ours "$pid" "$svc"; then
    rm -f "$RUN/$svc.pid"
    say "cwpp-$svc not running (removed the stale pid file naming pid $pid)"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ours "$pid" "$svc" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if ours "$pid" "$svc"; then
    say "cwpp-$svc (pid $pid) still running after ${STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid"
    deadline=$((SECONDS + 10))
    while ours "$pid" "$svc" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if ours "$pid" "$svc"; then
      echo "services: cwpp-$svc (pid $pid) survived SIGKILL" >&2
      return 1
    fi
  fi
  rm -f "$RUN/$svc.pid"
  say "cwpp-$svc stopped (pid $pid)"
}

# A note when pid $1 runs a binary that has been replaced (rebuilt) since it started.
stale_note() {
  if [[ $(readlink "/proc/$1/exe" 2>/dev/null) == *" (deleted)" ]]; then
    printf '  (rebuilt since it started: deploy/local/services.sh restart %s)' "$2"
  fi
}

# One status line; returns 0 when running and ready, 3 otherwise (1 when not built).
status_one() {
  local svc=$1 pid health note=""
  pid=$(recorded_pid "$svc")
  if ours "$pid" "$svc"; then
    if ready "$svc"; then health=ready; else health="NOT READY"; fi
    note=$(stale_note "$pid" "$svc")
  else
    pid=-
    if [ -x "$BIN/cwpp-$svc" ]; then health=stopped; else health="not built"; fi
  fi
  printf '  %-22s %-8s %-10s %-6s %s%s\n' "cwpp-$svc" "$pid" "$health" "$(port_of "$svc")" \
    "$RUN/$svc.log" "$note"
  case $health in
    ready) return 0 ;;
    "not built") return 1 ;;
    *) return 3 ;;
  esac
}

cmd=${1:-}
[ $# -eq 0 ] || shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
for n in "${names[@]}"; do
  case " ${ALL[*]} " in
    *" $n "*) ;;
    *) die "unknown service '$n' (one of: ${ALL[*]})" ;;
  esac
done
# in start order, whatever order they were named in
given=" ${names[*]} "
names=()
for n in "${ALL[@]}"; do [[ $given != *" $n "* ]] || names+=("$n"); done

case $cmd in
  start | restart)
    if [ ! -f "$STATE/.cwpp-state" ] || [ ! -d "$RUN" ]; then
      die "$STATE is not a started stack (deploy/local/up starts PostgreSQL and Kafka first)"
    fi
    exec 9>"$RUN/services.lock"
    flock -w 600 9 || die "another services.sh holds $RUN/services.lock"
    rc=0
    if [ "$cmd" = restart ]; then
      for ((i = ${#names[@]} - 1; i >= 0; i--)); do stop_one "${names[i]}" || rc=1; done
      [ "$rc" = 0 ] || exit 1
    fi
    for n in "${names[@]}"; do start_one "$n" || rc=1; done
    exit "$rc"
    ;;
  stop)
    # Nothing of ours can run without our marker and run dir; create nothing here.
    if [ ! -f "$STATE/.cwpp-state" ] || [ ! -d "$RUN" ]; then exit 0; fi
    exec 9>"$RUN/services.lock"
    flock -w 600 9 || die "another services.sh holds $RUN/services.lock"
    rc=0
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do stop_one "${names[i]}" || rc=1; done
    exit "$rc"
    ;;
  status)
    printf '  %-22s %-8s %-10s %-6s %s\n' service pid health port log
    rc=0
    for n in "${names[@]}"; do
      st=0
      status_one "$n" || st=$?
      [ "$st" = 0 ] || [ "$st" = 1 ] || rc=3
    done
    exit "$rc"
    ;;
  ready)
    [ ${#names[@]} -eq 1 ] || die "usage: $0 ready SERVICE"
    ours "$(recorded_pid "${names[0]}")" "${names[0]}" && ready "${names[0]}"
    ;;
  running)
    any=1
    for n in "${names[@]}"; do
      if ours "$(recorded_pid "$n")" "$n"; then
        echo "$n"
        any=0
      fi
    done
    exit "$any"
    ;;
  list) printf '%s\n' "${ALL[@]}" ;;
  *)
    echo "usage: $0 start|stop|restart|status|ready|running|list [SERVICE...]  (services: ${ALL[*]})" >&2
    exit 2
    ;;
esac
