#!/usr/bin/env bash
# Make sure the local services the integration tests need are up: PostgreSQL on 127.0.0.1:5432
# and Redis on 127.0.0.1:6379. Idempotent: a service that already answers is left alone.
# Used by .ci/run before `make test-all`; exits non-zero with the reason when a service cannot
# be started, so CI fails here with a clear message instead of in a test fixture timeout.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
WAIT_SECONDS=${ENSURE_SERVICES_WAIT:-30}

die() { echo "ensure_services: $*" >&2; exit 1; }

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

wait_for() {  # wait_for CHECK_FUNCTION: poll it once a second for up to WAIT_SECONDS
  local check=$1 i
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    if "$check"; then return 0; fi
    sleep 1
  done
  return 1
}

command -v pg_isready >/dev/null || die "pg_isready not found: install the PostgreSQL client"
command -v redis-cli >/dev/null || die "redis-cli not found: install redis-tools"

if pg_up; then
  echo "ensure_services: PostgreSQL already accepting connections on $PG_HOST:$PG_PORT"
else
  command -v pg_ctlcluster >/dev/null || die "PostgreSQL is down and pg_ctlcluster is missing"
  # One cluster per machine is expected; take the (single) installed major version.
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is down and no cluster exists under /etc/postgresql"
  echo "ensure_services: starting PostgreSQL $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || die "could not start PostgreSQL $version/main (see /var/log/postgresql/)"
  wait_for pg_up || die "PostgreSQL did not accept connections within ${WAIT_SECONDS}s"
  echo "ensure_services: PostgreSQL started"
fi

if redis_up; then
  echo "ensure_services: Redis already answering on $REDIS_HOST:$REDIS_PORT"
else
  command -v redis-server >/dev/null || die "Redis is down and redis-server is missing"
  echo "ensure_services: starting Redis on $REDIS_HOST:$REDIS_PORT (loopback only, no persistence)"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log \
    || die "could not start redis-server (see /var/log/redis/ci.log)"
  wait_for redis_up || die "Redis did not answer PING within ${WAIT_SECONDS}s"
  echo "ensure_services: Redis started"
fi
