#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/local/tls.sh ensure|compose: development TLS material for cwpp-api, made with
# openssl.
#   ensure   for the local stack, in $CWPP_STATE_DIR/tls:
#              ca.crt / ca.key          a development CA ("cwpp local development CA", 10
#                                       years), the one file a client trusts: CWPP_API_CA
#                                       (deploy/local/env)
#              server.crt / server.key  the API's certificate for 127.0.0.1, ::1 and
#                                       localhost, signed by that CA (825 days)
#   compose  the same for docker-compose.yml, in deploy/docker/dev-tls of the repository
#            (ignored by git and by the image build), the certificate also naming the
#            compose services "api", "postgres" and "kafka" (the one server certificate
#            of the three, each client verifying it with ca.crt); there server.key is mode 0644, since compose mounts a
#            file secret with the host file's owner and mode and the API runs as uid 10001.
# Made once: an existing CA is kept, and the server certificate is made again only when
# it is missing, expires within a day, is not signed by ca.crt or lacks a name asked for.
# Keys are mode 0600 (but see compose). Development only: never use this CA or key
# anywhere else. Prints the paths.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/env
. "$here/env"

DIR=$CWPP_STATE_DIR/tls
SAN="IP:127.0.0.1,IP:::1,DNS:localhost"
KEY_MODE=0600

say() { echo "tls: $*"; }
die() {
  echo "tls: $*" >&2
  exit 1
}

valid() { # cert file, still valid in a day
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

make_ca() {
  say "making the development CA $DIR/ca.crt (once)"
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$DIR/ca.key.new" -out "$DIR/ca.crt.new" \
    -subj "/O=cwpp local stack/CN=cwpp local development CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >"$DIR/openssl.log" 2>&1 ||
    die "openssl could not make the CA: $(cat "$DIR/openssl.log")"
  mv -f "$DIR/ca.key.new" "$DIR/ca.key"
  mv -f "$DIR/ca.crt.new" "$DIR/ca.crt"
  rm -f "$DIR/server.crt" # signed by a CA that is gone
}

make_server() {
  say "making the API's certificate $DIR/server.crt ($SAN)"
  local ext=$DIR/server.ext
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$SAN
EOF
  {
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$DIR/server.key.new" \
      -out "$DIR/server.csr" -subj "/O=cwpp local stack/CN=localhost" &&
      openssl x509 -req -sha256 -days 825 -in "$DIR/server.csr" -CA "$DIR/ca.crt" \
        -CAkey "$DIR/ca.key" -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" \
        -out "$DIR/server.crt.new"
  } >"$DIR/openssl.log" 2>&1 ||
    die "openssl could not make the server certificate: $(cat "$DIR/openssl.log")"
  mv -f "$DIR/server.key.new" "$DIR/server.key"
  mv -f "$DIR/server.crt.new" "$DIR/server.crt"
  rm -f "$DIR/server.csr" "$ext"
}

# True when server.crt names every entry of $SAN.
names_ok() {
  local have want
  have=$(openssl x509 -in "$DIR/server.crt" -noout -ext subjectAltName 2>/dev/null |
    tail -n +2 | tr -d ' ' | sed 's/IPAddress:0:0:0:0:0:0:0:1/IP:::1/; s/IPAddress:/IP:/g')
  for want in ${SAN//,/ }; do
    [[ ",$have," == *",$want,"* ]] || return 1
  done
}

ensure() {
  command -v openssl >/dev/null || die "openssl not found (run deploy/local/install-deps)"
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  umask 077
  if ! valid "$DIR/ca.crt" || [ ! -s "$DIR/ca.key" ]; then make_ca; fi
  if ! valid "$DIR/server.crt" || [ ! -s "$DIR/server.key" ] ||
    ! openssl verify -CAfile "$DIR/ca.crt" "$DIR/server.crt" >/dev/null 2>&1 ||
    ! names_ok; then
    make_server
  fi
  chmod 0644 "$DIR/ca.crt" "$DIR/server.crt"
  chmod 0600 "$DIR/ca.key"
  chmod "$KEY_MODE" "$DIR/server.key"
  # the directory is traversable so an analyst's client can read ca.crt; the keys are not
  chmod 0711 "$DIR"
  rm -f "$DIR/openssl.log"
  say "CA $DIR/ca.crt, certificate $DIR/server.crt, key $DIR/server.key"
}

case ${1:-} in
  ensure) ensure ;;
  compose)
    DIR=$REPO/deploy/docker/dev-tls
    SAN="$SAN,DNS:api,DNS:postgres,DNS:kafka"
    KEY_MODE=0644
    ensure
    ;;
  *)
    echo "usage: $0 ensure|compose" >&2
    exit 2
    ;;
esac
