#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/local/pg.sh start|stop|crash|status: the local stack's private PostgreSQL 15 server
# (Debian's binaries in /usr/lib/postgresql/15/bin, or $CWPP_PG_BIN).
#   start   creates the cluster in $CWPP_STATE_DIR/pg with initdb if there is none,
#           (re)writes our settings (cwpp.conf, included from postgresql.conf) and
#           pg_hba.conf, starts the server with pg_ctl -w (log: run/pg.log), records the
#           postmaster pid in run/pg.pid and creates database cwpp if missing. When the
#           server already runs it only re-checks the pid file and the database.
#   stop    fast shutdown through pg_ctl, only if the running postmaster is the one
#           recorded in run/pg.pid and its command line is ours; no-op when stopped.
#   crash   the same checks, then an immediate shutdown (pg_ctl -m immediate): no
#           checkpoint, sessions cut mid-transaction, crash recovery from the WAL at the
#           next start. The fault campaign uses it to show that nothing is lost.
#   status  exit 0 when running, 3 when not.
# The server listens on 127.0.0.1:$CWPP_PG_PORT and on a unix socket in
# $CWPP_STATE_DIR/pgsock; the superuser postgres logs in over that socket (trust), every
# other role over TCP with scram-sha-256. initdb and the server refuse to run as root, so
# as root the server tools run as the postgres user (runuser) and the data and socket
# dirs belong to postgres; as any other user they run as that user.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/env
. "$here/env"

PGBIN=${CWPP_PG_BIN:-/usr/lib/postgresql/15/bin}
STATE=$CWPP_STATE_DIR
DATA=$STATE/pg
SOCK=$STATE/pgsock
RUN=$STATE/run
LOG=$RUN/pg.log
PIDFILE=$RUN/pg.pid
START_TIMEOUT=${CWPP_PG_START_TIMEOUT:-120}

say() { echo "pg: $*"; }
die() {
  echo "pg: $*" >&2
  exit 1
}

AS=()
if [ "$(id -u)" -eq 0 ]; then AS=(runuser -u postgres --); fi

# Runs a server tool as the cluster's owner, from / (the postgres user may not be able to
# read our working directory). fd 9 (our lock) is not passed on, or the postmaster would
# hold the lock for its whole life.
pgtool() { (cd / && exec "${AS[@]}" "$PGBIN/$1" "${@:2}") 9>&-; }

# Writes stdin to file $1 in the data dir, owned by the cluster owner, mode 0600.
put() {
  local tmp
  tmp=$(mktemp "$DATA/.cwpp.XXXXXX")
  cat >"$tmp"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$tmp"; fi
  chmod 0600 "$tmp"
  mv -f "$tmp" "$1"
}

# Single-quotes a value for postgresql.conf.
conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

running() {
  [ -f "$DATA/PG_VERSION" ] && pgtool pg_ctl -D "$DATA" status >/dev/null 2>&1
}

postmaster_pid() { head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true; }

# True if pid $1 is a postmaster of our binaries on our data dir.
ours() {
  local cmd
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline")
  [[ $cmd == "$PGBIN/postgres "* && $cmd == *"-D $DATA"* ]]
}

# Makes $STATE ours: a new or empty directory gets the .cwpp-state marker (down purges
# only a marked dir); an existing non-empty directory without it is refused, so a wrong
# CWPP_STATE_DIR (/tmp, $HOME, ...) is never adopted.
claim_state() {
  if [ ! -f "$STATE/.cwpp-state" ]; then
    if [ -d "$STATE" ] && [ -n "$(ls -A "$STATE")" ]; then
      die "$STATE is not empty and has no .cwpp-state marker: not a cwpp state dir, refusing to use it"
    fi
    mkdir -p "$STATE"
    echo "state dir of the cwpp local stack of $REPO (deploy/local)" >"$STATE/.cwpp-state"
  fi
  mkdir -p "$RUN"
}

prepare_dirs() {
  # The postgres user must reach the data, socket and log under these when we are root.
  chmod 0755 "$STATE" "$RUN"
  mkdir -p "$DATA" "$SOCK"
  touch "$LOG"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DATA" "$SOCK" "$LOG"; fi
  chmod 0700 "$DATA" "$SOCK"
}

init_cluster() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  [ -z "$(ls -A "$DATA")" ] ||
    die "$DATA is not empty but holds no cluster; remove it (deploy/local/down --purge)"
  say "creating a cluster in $DATA"
  if ! pgtool initdb -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$RUN/initdb.log" 2>&1; then
    tail -n 20 "$RUN/initdb.log" >&2
    die "initdb failed (log: $RUN/initdb.log)"
  fi
  echo "include_if_exists = 'cwpp.conf'" >>"$DATA/postgresql.conf"
}

write_config() {
  put "$DATA/cwpp.conf" <<EOF
# Written by deploy/local/pg.sh at every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $CWPP_PG_PORT
unix_socket_directories = $(conf_quote "$SOCK")
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 2GB
work_mem = 4MB
maintenance_work_mem = 256MB
effective_cache_size = 4GB
# Fewer, spread checkpoints: every checkpoint makes the next change of each page write
# the whole page to the WAL, and hashed alert ids touch pages all over their indexes.
max_wal_size = 4GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
wal_compression = lz4
# Statement statistics for the benchmarks' per-statement database time (bench/pipeline.py
# creates the extension in its database); a small cost, none for the services.
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
fsync = on
synchronous_commit = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_min_error_statement = error
EOF
  put "$DATA/pg_hba.conf" <<'EOF'
# Written by deploy/local/pg.sh at every start; edits here are lost.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
host    all       all       127.0.0.1/32   scram-sha-256
EOF
}

psql_admin() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$CWPP_PG_PORT" -U postgres -d postgres "$@" 9>&-
}

record_pid() {
  local pid
  pid=$(postmaster_pid)
  ours "$pid" || die "postmaster.pid names pid '$pid', which is not our server"
  echo "$pid" >"$PIDFILE"
}

ensure_database() {
  if [ "$(psql_admin -At -c "SELECT 1 FROM pg_database WHERE datname = 'cwpp'")" != 1 ]; then
    psql_admin -c 'CREATE DATABASE cwpp'
    say "created database cwpp"
  fi
}

start() {
  [ -x "$PGBIN/postgres" ] || die "no PostgreSQL 15 server in $PGBIN (run deploy/local/install-deps)"
  prepare_dirs
  if running; then
    record_pid
    ensure_database
    say "already running (pid $(cat "$PIDFILE"), port $CWPP_PG_PORT)"
    return 0
  fi
  init_cluster
  write_config
  if ! pgtool pg_ctl -D "$DATA" -l "$LOG" -w -t "$START_TIMEOUT" start >/dev/null; then
    tail -n 30 "$LOG" >&2
    die "server did not start (log: $LOG)"
  fi
  record_pid
  ensure_database
  say "started (pid $(cat "$PIDFILE"), 127.0.0.1:$CWPP_PG_PORT, socket dir $SOCK)"
}

# Sets OURS to the running postmaster's pid once it is known to be ours: the one recorded
# in run/pg.pid, with our command line. Status 1 when none runs; dies when the one
# running is not ours ($1 names the verb in that message).
our_postmaster() {
  OURS=
  if ! running; then
    rm -f "$PIDFILE"
    return 1
  fi
  local recorded
  OURS=$(postmaster_pid)
  recorded=$(cat "$PIDFILE" 2>/dev/null || true)
  [ "$OURS" = "$recorded" ] ||
    die "the server's pid ($OURS) is not the one recorded in $PIDFILE ('$recorded'); not ${1}ing it"
  ours "$OURS" || die "pid $OURS does not look like our postmaster; not ${1}ing it"
}

stop() {
  local pid
  if ! our_postmaster stopp; then
    say "not running"
    return 0
  fi
  pid=$OURS
  if ! pgtool pg_ctl -D "$DATA" -m fast -w -t 60 stop >/dev/null; then
    say "fast shutdown timed out; immediate shutdown"
    pgtool pg_ctl -D "$DATA" -m immediate -w -t 30 stop >/dev/null
  fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

crash() {
  local pid
  if ! our_postmaster crash; then
    say "not running"
    return 0
  fi
  pid=$OURS
  pgtool pg_ctl -D "$DATA" -m immediate -w -t 30 stop >/dev/null
  rm -f "$PIDFILE"
  say "crashed (immediate shutdown of pid $pid)"
}

status() {
  if running; then
    say "running (pid $(postmaster_pid), 127.0.0.1:$CWPP_PG_PORT, socket dir $SOCK)"
    return 0
  fi
  say "stopped"
  return 3
}

lock() {
  exec 9>"$RUN/pg.lock"
  flock -w 600 9 || die "another pg.sh holds $RUN/pg.lock"
}

case ${1:-} in
  start)
    claim_state
    lock
    start
    ;;
  stop)
    # Nothing of ours can run without our marker and run dir; create nothing here.
    if [ ! -f "$STATE/.cwpp-state" ] || [ ! -d "$RUN" ]; then
      say "not running"
      exit 0
    fi
    lock
    stop
    ;;
  crash)
    if [ ! -f "$STATE/.cwpp-state" ] || [ ! -d "$RUN" ]; then
      say "not running"
      exit 0
    fi
    lock
    crash
    ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|crash|status" >&2
    exit 2
    ;;
esac
