#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/local/kafka.sh start|stop|status: the local stack's single Apache Kafka broker,
# KRaft combined mode (broker and controller in one JVM, node id 1), run straight from
# the official Maven Central jars with the machine's Java.
#   start   copies the jars of deploy/local/kafka/pom.xml once into
#           $CWPP_STATE_DIR/kafka-libs (again only when the pom's Kafka version changes),
#           (re)writes kafka/server.properties and kafka/log4j.properties, formats the
#           storage once (cluster id generated here and kept in kafka/cluster.id), starts
#           kafka.Kafka detached (pid: run/kafka.pid, log: run/kafka.log, JVM output:
#           run/kafka.out) and waits, bounded by $CWPP_KAFKA_START_TIMEOUT (120 s), until
#           the broker answers a metadata request. On failure it prints the log's tail,
#           stops what it started and exits non-zero. When the broker already runs it
#           only waits for it to answer.
#   stop    SIGTERM to the recorded pid (controlled shutdown), SIGKILL after
#           $CWPP_KAFKA_STOP_TIMEOUT (60 s); no-op when nothing runs.
#   status  exit 0 when running, 3 when not.
# It only ever signals the pid in run/kafka.pid, and only while that pid's command line
# is still kafka.Kafka with our server.properties.
# Security (docs/kafka-security.md), with CWPP_KAFKA_SASL=1 (the default): the client
# listener is SASL_PLAINTEXT with SCRAM-SHA-512 (brokers talk to each other on it as
# cwpp-admin); the controller listener is SASL_PLAINTEXT with PLAIN for the user
# cwpp-controller, whose random password (kafka/controller.password) only this broker's
# JAAS config knows; StandardAuthorizer with allow.everyone.if.no.acl.found=false and
# super users cwpp-admin and cwpp-controller. The SCRAM credentials of every principal
# (cwpp-admin and the seven services, passwords CWPP_KAFKA_PASSWORD_*) are written when
# the storage is formatted (marker kafka/sasl.formatted). A storage formatted earlier
# without them (its credentials cannot be added without a super user to connect as) is
# moved aside to kafka/data.pre-sasl.<time> and a new one is formatted. After each start the
# one binding librdkafka cannot create (WRITE on transactional ids cwpp-exporter-handled*
# for cwpp-exporter) is added with Kafka's AclCommand; cwpp-admin acls adds the others.
# CWPP_KAFKA_SASL=0: PLAINTEXT listeners, no authorizer (development only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/env
. "$here/env"

STATE=$CWPP_STATE_DIR
LIBS=$STATE/kafka-libs
KDIR=$STATE/kafka
DATA=$KDIR/data
CONF=$KDIR/server.properties
L4J=$KDIR/log4j.properties
RUN=$STATE/run
LOG=$RUN/kafka.log
OUT=$RUN/kafka.out
PIDFILE=$RUN/kafka.pid
POM=$REPO/deploy/local/kafka/pom.xml
START_TIMEOUT=${CWPP_KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=${CWPP_KAFKA_STOP_TIMEOUT:-60}
JAVA=${JAVA:-java}

say() { echo "kafka: $*"; }
die() {
  echo "kafka: $*" >&2
  exit 1
}

show_logs() {
  local f
  for f in "$LOG" "$OUT"; do
    if [ -s "$f" ]; then
      echo "---- last lines of $f" >&2
      tail -n 25 "$f" >&2
    fi
  done
}

# True if pid $1 is alive and is our broker: kafka.Kafka started on our config file.
ours() {
  local cmd
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *" kafka.Kafka $CONF "* ]]
}

recorded_pid() { cat "$PIDFILE" 2>/dev/null || true; }

running() { ours "$(recorded_pid)"; }

sasl_on() { [ "$CWPP_KAFKA_SASL" != 0 ]; }

# kcat's client settings: the admin principal's credentials when SASL is on.
kcat_auth() {
  sasl_on || return 0
  printf '%s\n' -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512 \
    -X sasl.username=cwpp-admin -X "sasl.password=$CWPP_KAFKA_PASSWORD_ADMIN"
}

# True when the broker answers a metadata request and lists itself (it is unfenced).
answering() {
  local auth
  (exec 3<>"/dev/tcp/127.0.0.1/$CWPP_KAFKA_PORT") 2>/dev/null || return 1
  mapfile -t auth < <(kcat_auth)
  kcat -b "127.0.0.1:$CWPP_KAFKA_PORT" "${auth[@]}" -L -t __cwpp_probe -m 5 2>/dev/null |
    grep -q "broker 1 at 127.0.0.1:$CWPP_KAFKA_PORT"
}

port_busy() { [ -n "$(ss -Htln "sport = :$1")" ]; }

kafka_version() {
  sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n 1
}

fetch_libs() {
  local version tmp
  version=$(kafka_version)
  [ -n "$version" ] || die "no <kafka.version> in $POM"
  [ -f "$LIBS/kafka_2.13-$version.jar" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (run deploy/local/install-deps)"
  say "fetching the Kafka $version jars with Maven into $LIBS (once)"
  tmp=$LIBS.tmp
  rm -rf "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >"$RUN/kafka-fetch.log" 2>&1 9>&-; then
    tail -n 30 "$RUN/kafka-fetch.log" >&2
    rm -rf "$tmp"
    die "mvn could not assemble the broker from $POM (log: $RUN/kafka-fetch.log)"
  fi
  [ -f "$tmp/kafka_2.13-$version.jar" ] || die "mvn did not produce kafka_2.13-$version.jar"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
}

cluster_id() {
  local id
  if [ ! -s "$KDIR/cluster.id" ]; then
    # 16 random bytes as unpadded base64url (a Kafka Uuid); Kafka avoids a leading '-'.
    id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    echo "$id" >"$KDIR/cluster.id"
  fi
  cat "$KDIR/cluster.id"
}

# The controller user's password: random, made once, only in this state dir.
controller_password() {
  if [ ! -s "$KDIR/controller.password" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$KDIR/controller.password")
  fi
  cat "$KDIR/controller.password"
}

# The listener and authorizer lines of server.properties.
write_security() {
  if ! sasl_on; then
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$CWPP_KAFKA_PORT,CONTROLLER://127.0.0.1:$CWPP_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$CWPP_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
    return 0
  fi
  local cpw
  cpw=$(controller_password)
  cat <<EOF
listeners=SASL_PLAINTEXT://127.0.0.1:$CWPP_KAFKA_PORT,CONTROLLER://127.0.0.1:$CWPP_KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$CWPP_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="cwpp-admin" password="$CWPP_KAFKA_PASSWORD_ADMIN";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="cwpp-controller" password="$cpw" user_cwpp-controller="$cpw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:cwpp-admin;User:cwpp-controller
EOF
}

write_config() {
  (umask 077 && : >"$CONF")
  cat >"$CONF" <<EOF
# Written by deploy/local/kafka.sh at every start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CWPP_KAFKA_CONTROLLER_PORT
$(write_security)
log.dirs=$DATA
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
  cat >"$L4J" <<EOF
# Written by deploy/local/kafka.sh at every start; edits here are lost. (reload4j)
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=INFO
EOF
}

# --add-scram arguments for every principal (cwpp-admin and the services).
scram_args() {
  local n v
  for n in admin ingest whitelist correlator responder exporter api enforcer; do
    v="CWPP_KAFKA_PASSWORD_${n^^}"
    printf '%s\n' --add-scram "SCRAM-SHA-512=[name=cwpp-$n,password=${!v}]"
  done
}

format_storage() {
  if [ -f "$DATA/meta.properties" ]; then
    if sasl_on && [ ! -f "$KDIR/sasl.formatted" ]; then
      # Formatted by an older run without the principals' SCRAM credentials: no client
      # could authenticate. The storage is kept aside, not deleted, and a new one is
      # formatted; CWPP_KAFKA_SASL=0 with the old directory moved back restores it.
      local aside
      aside="$DATA.pre-sasl.$(date -u +%Y%m%dT%H%M%SZ)"
      mv "$DATA" "$aside"
      mkdir -p "$DATA"
      say "the storage in $DATA was formatted without the SCRAM credentials of the \
principals (before CWPP_KAFKA_SASL); kept it as $aside and formatting a new one"
    else
      return 0
    fi
  fi
  local scram=()
  if sasl_on; then mapfile -t scram < <(scram_args); fi
  say "formatting storage in $DATA"
  if ! "$JAVA" -Xmx256m -Dlog4j.configuration="file:$L4J" -cp "$LIBS/*" \
    kafka.tools.StorageTool format -t "$(cluster_id)" -c "$CONF" "${scram[@]}" \
    >"$RUN/kafka-format.log" 2>&1 9>&-; then
    cat "$RUN/kafka-format.log" >&2
    die "formatting the storage failed"
  fi
  # The credentials are written with the storage; a later CWPP_KAFKA_SASL=1 start of a
  # storage formatted without them moves it aside above.
  if sasl_on; then echo "SCRAM-SHA-512 credentials of every principal" >"$KDIR/sasl.formatted"; fi
}

# WRITE on transactional ids cwpp-exporter-handled* for cwpp-exporter: the one binding
# of libs/kafka's table that Debian's librdkafka cannot create (cwpp-admin acls makes the
# others). Kafka's own AclCommand, as cwpp-admin; idempotent.
txn_acl() {
  sasl_on || return 0
  (umask 077 && cat >"$KDIR/admin.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="cwpp-admin" password="$CWPP_KAFKA_PASSWORD_ADMIN";
EOF
  )
  if ! "$JAVA" -Xmx128m -Dlog4j.configuration="file:$L4J" -cp "$LIBS/*" kafka.admin.AclCommand \
    --bootstrap-server "127.0.0.1:$CWPP_KAFKA_PORT" --command-config "$KDIR/admin.properties" \
    --add --allow-principal User:cwpp-exporter --operation Write \
    --transactional-id cwpp-exporter-handled --resource-pattern-type prefixed \
    >"$RUN/kafka-acl.log" 2>&1 9>&-; then
    cat "$RUN/kafka-acl.log" >&2
    die "adding the exporter's transactional-id ACL failed"
  fi
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  until answering; do
    if ! ours "$pid"; then
      show_logs
      rm -f "$PIDFILE"
      die "the broker (pid $pid) exited during start-up"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_logs
      say "no answer on 127.0.0.1:$CWPP_KAFKA_PORT after ${START_TIMEOUT}s; stopping pid $pid"
      stop >&2 || true
      die "the broker did not come up"
    fi
    sleep 1
  done
}

start() {
  local pid t0=$SECONDS
  command -v "$JAVA" >/dev/null || die "$JAVA not found (run deploy/local/install-deps)"
  command -v kcat >/dev/null || die "kcat not found (run deploy/local/install-deps)"
  if running; then
    pid=$(recorded_pid)
    # a broker started with the other CWPP_KAFKA_SASL setting would never answer us
    local want=PLAINTEXT
    if sasl_on; then want=SASL_PLAINTEXT; fi
    grep -q "^listeners=$want://" "$CONF" ||
      die "the running broker (pid $pid) was started with CWPP_KAFKA_SASL=$([ "$want" = PLAINTEXT ] && echo 1 || echo 0); \
stop it (deploy/local/down) and start again"
    wait_ready "$pid"
    say "already running (pid $pid, 127.0.0.1:$CWPP_KAFKA_PORT)"
    return 0
  fi
  rm -f "$PIDFILE"
  local p
  for p in "$CWPP_KAFKA_PORT" "$CWPP_KAFKA_CONTROLLER_PORT"; do
    if port_busy "$p"; then
      ss -Htlnp "sport = :$p" >&2 || true
      die "port $p is already in use by another process"
    fi
  done
  mkdir -p "$KDIR" "$DATA"
  fetch_libs
  write_config
  format_storage
  # setsid + nohup: the broker outlives this script and the terminal. The inner bash
  # records its own pid and execs java, so the pid file names the JVM whether or not
  # setsid had to fork.
  rm -f "$PIDFILE.new"
  # shellcheck disable=SC2016,SC2086 # $$/$1 are the inner bash's; JAVA_OPTS is split on purpose
  setsid bash -c 'echo $$ >"$1"; shift; exec nohup "$@"' cwpp-kafka "$PIDFILE.new" \
    "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$L4J" ${CWPP_KAFKA_JAVA_OPTS:-} \
    -cp "$LIBS/*" kafka.Kafka "$CONF" \
    </dev/null >>"$OUT" 2>&1 9>&- &
  local tries=0
  while [ ! -s "$PIDFILE.new" ] && [ "$tries" -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  [ -s "$PIDFILE.new" ] || die "the broker process did not start (see $OUT)"
  mv -f "$PIDFILE.new" "$PIDFILE"
  pid=$(recorded_pid)
  say "starting (pid $pid), waiting up to ${START_TIMEOUT}s for 127.0.0.1:$CWPP_KAFKA_PORT"
  wait_ready "$pid"
  txn_acl
  say "started in $((SECONDS - t0))s (pid $pid, 127.0.0.1:$CWPP_KAFKA_PORT, Kafka $(kafka_version))"
}

stop() {
  local pid
  pid=$(recorded_pid)
  if [ -z "$pid" ]; then
    say "not running"
    return 0
  fi
  if ! ours "$pid"; then
    rm -f "$PIDFILE"
    say "not running (removed the stale pid file naming pid $pid)"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while ours "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
  if ours "$pid"; then
    say "pid $pid still running after ${STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid"
    deadline=$((SECONDS + 10))
    while ours "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    ! ours "$pid" || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

status() {
  local pid
  pid=$(recorded_pid)
  if ours "$pid"; then
    if answering; then
      say "running (pid $pid, 127.0.0.1:$CWPP_KAFKA_PORT)"
    else
      say "running (pid $pid) but not answering on 127.0.0.1:$CWPP_KAFKA_PORT yet"
    fi
    return 0
  fi
  say "stopped"
  return 3
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

lock() {
  exec 9>"$RUN/kafka.lock"
  flock -w 900 9 || die "another kafka.sh holds $RUN/kafka.lock"
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
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
