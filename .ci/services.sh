#!/usr/bin/env bash
# Makes sure the services the tests and the demo use are up on loopback, starting any that is down:
# RabbitMQ (5672), Redis (6379) and FerretDB (MongoDB wire protocol, 27017; built here from the Go
# module proxy on first use). Safe to run again: a service that answers is left alone. `install`
# also installs Chromium (Debian's package) for the dashboard's browser specs.
set -euo pipefail

FERRETDB_VERSION=v1.24.2
CACHE_DIR="${COGMAN_CACHE_DIR:-$HOME/.cache/cogman}"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION"
FERRETDB_DATA="${COGMAN_FERRETDB_DATA:-$CACHE_DIR/ferretdb-data}"

log() { printf '[services] %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  log "$name did not open port $port"
  return 1
}

# A service whose server is not installed: the tests stop here; the demo goes on and says what
# is missing itself (SERVICES_OPTIONAL=1).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "${SERVICES_OPTIONAL:-0}" = 1 ]; then
    log "$2 is down and '$1' is not installed here"
    return 1
  fi
  log "$2 is down and '$1' is not installed here; start it yourself (docker compose up -d)"
  exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    log "Redis is up"
    return
  fi
  need redis-server Redis || return 0
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for_port 6379 Redis
}

ensure_rabbitmq() {
  if port_open 5672 && rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
    log "RabbitMQ is up"
    return
  fi
  need rabbitmq-server RabbitMQ || return 0
  if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    log "starting RabbitMQ"
    rabbitmq-server -detached
  fi
  rabbitmqctl await_startup --timeout 120 >/dev/null
  # A node that runs but whose app was stopped (rabbitmqctl stop_app) gets its app back.
  rabbitmq-diagnostics -q check_running >/dev/null 2>&1 || rabbitmqctl start_app >/dev/null
  wait_for_port 5672 RabbitMQ
  log "RabbitMQ is up"
}

build_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return
  need go FerretDB || return 1
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy"
  local src work
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  cp -r "$src/." "$work"
  chmod -R u+w "$work"
  # `go install` of the module panics at start for want of this generated file.
  echo "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  mkdir -p "$CACHE_DIR"
  (cd "$work" && go build -o "$FERRETDB_BIN" ./cmd/ferretdb)
  rm -rf "$work"
}

ensure_ferretdb() {
  if port_open 27017; then
    log "MongoDB (FerretDB) is up"
    return
  fi
  build_ferretdb
  log "starting FerretDB"
  mkdir -p "$FERRETDB_DATA"
  nohup "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$FERRETDB_DATA/" \
    --listen-addr=127.0.0.1:27017 --debug-addr=127.0.0.1:0 --state-dir="$FERRETDB_DATA" \
    --telemetry=disable --log-level=warn >"$CACHE_DIR/ferretdb.log" 2>&1 &
  wait_for_port 27017 FerretDB
}

# The dashboard's browser specs drive Debian's Chromium with playwright-core (Playwright's own
# browser download is not reachable everywhere).
install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    log "Chromium is installed"
    return
  fi
  need apt-get Chromium
  log "installing Chromium (apt-get)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

case "${1:-all}" in
  install)
    build_ferretdb
    install_chromium
    ;;
  demo)
    # What `npm run demo` needs: RabbitMQ and Redis, unless the demo is pointed elsewhere. A
    # service that cannot be started here is left to the demo to report.
    SERVICES_OPTIONAL=1
    [ -n "${COGMAN_REDIS_URI:-}" ] || ensure_redis || true
    [ -n "${COGMAN_AMQP_URI:-}" ] || ensure_rabbitmq || true
    ;;
  all)
    ensure_redis
    ensure_rabbitmq
    ensure_ferretdb
    ;;
  *)
    echo "usage: $0 [all|install|demo]" >&2
    exit 2
    ;;
esac
