#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/docker/kafka-start.sh: the command of docker-compose.yml's "kafka" service (image
# apache/kafka), a single KRaft node with the security deploy/local/kafka.sh gives the
# local stack: SASL/SCRAM-SHA-512 on the client listener (here over TLS: SASL_SSL with the
# compose server certificate), PLAIN on the controller listener for a user of this start
# only, StandardAuthorizer, deny unless an ACL allows, super users cwpp-admin and
# cwpp-controller.
#   1. server.properties from the container's KAFKA_* variables, by the image's own rule
#      (KAFKA_ dropped, lower case, ___ -> -, __ -> _, _ -> .), plus the JAAS lines;
#   2. the PEM keystore (key + certificate from the compose secrets tls_server_key and
#      tls_server_cert) in /tmp;
#   3. the storage formatted once, with the SCRAM-SHA-512 credential of every principal
#      cwpp-<name> from CWPP_KAFKA_PASSWORD_<NAME> (admin ingest whitelist correlator
#      responder exporter api enforcer);
#   4. /tmp/cwpp-admin.properties, the client settings of cwpp-admin for the healthcheck;
#   5. in the background, once the broker answers, the exporter's transactional-id ACL
#      (the binding cwpp-admin acls cannot create with librdkafka before 2.4);
#   6. exec the broker.
# No password is written anywhere but the container's /tmp (mode 0600) and the storage.
set -euo pipefail

CONF=/tmp/server.properties
NAMES=(admin ingest whitelist correlator responder exporter api enforcer)
umask 077

for n in "${NAMES[@]}"; do
  v=CWPP_KAFKA_PASSWORD_${n^^}
  [ -n "${!v:-}" ] || { echo "kafka-start: $v is not set" >&2; exit 1; }
done

cat /run/secrets/tls_server_key /run/secrets/tls_server_cert >/tmp/kafka-keystore.pem
cpw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

{
  while IFS='=' read -r name value; do
    case $name in
      # the JVM's and the image's own variables, as the image's configure leaves them
      KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | \
        KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | \
        KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_PORT | KAFKA_JMX_HOSTNAME) continue ;;
      KAFKA_*) ;;
      *) continue ;;
    esac
    key=${name#KAFKA_}
    key=${key,,}
    key=${key//___/-}
    key=${key//__/@}
    key=${key//_/.}
    key=${key//@/_}
    printf '%s=%s\n' "$key" "$value"
  done < <(env)
  echo "log.dirs=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
  echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"cwpp-admin\" password=\"$CWPP_KAFKA_PASSWORD_ADMIN\";"
  echo "listener.name.controller.sasl.enabled.mechanisms=PLAIN"
  echo "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"cwpp-controller\" password=\"$cpw\" user_cwpp-controller=\"$cpw\";"
} >"$CONF"

cat >/tmp/cwpp-admin.properties <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="cwpp-admin" password="$CWPP_KAFKA_PASSWORD_ADMIN";
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/cwpp_ca
PROPS

scram=()
for n in "${NAMES[@]}"; do
  v=CWPP_KAFKA_PASSWORD_${n^^}
  scram+=(--add-scram "SCRAM-SHA-512=[name=cwpp-$n,password=${!v}]")
done
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$CLUSTER_ID" -c "$CONF" "${scram[@]}"

# WRITE on transactional ids cwpp-exporter-handled* for cwpp-exporter: the one binding
# cwpp-admin acls (librdkafka) cannot create, added here with Kafka's own tool as soon as
# the broker answers, as deploy/local/kafka.sh does; idempotent, retried for 5 minutes.
(
  for _ in $(seq 1 60); do
    if /opt/kafka/bin/kafka-acls.sh --bootstrap-server kafka:9092 \
      --command-config /tmp/cwpp-admin.properties --add --allow-principal User:cwpp-exporter \
      --operation Write --transactional-id cwpp-exporter-handled \
      --resource-pattern-type prefixed >/dev/null 2>&1; then
      echo "kafka-start: the exporter's transactional-id ACL is in place"
      exit 0
    fi
    sleep 5
  done
  echo "kafka-start: could not add the exporter's transactional-id ACL" >&2
) &
exec /opt/kafka/bin/kafka-server-start.sh "$CONF"
