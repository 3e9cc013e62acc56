#!/usr/bin/env bash
# The integration tests use the real PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 and MariaDB
# on 127.0.0.1:3306. A service that is down is started the way this machine documents; one that still
# does not answer fails the test command loudly instead of letting tests be skipped.
set -u
port_up() { python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}
wait_up() { for _ in $(seq 1 30); do port_up "$1" && return 0; sleep 1; done; return 1; }

if ! port_up 5432; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it ..." >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  wait_up 5432
fi
if ! port_up 5432; then
  echo "ERROR: PostgreSQL is needed on 127.0.0.1:5432 (trust auth, database 'test') for the store tests." >&2
  echo "       Start it (e.g. 'pg_ctlcluster <version> main start') or point CONNECTOR_TEST_POSTGRES_URL at one." >&2
  exit 1
fi

if ! port_up 6379; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it ..." >&2
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  wait_up 6379
fi
if ! port_up 6379; then
  echo "ERROR: Redis is needed on 127.0.0.1:6379 for the job, worker, scheduler and API tests." >&2
  echo "       Start it, e.g.: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''" >&2
  exit 1
fi

if ! port_up 3306; then
  echo "MariaDB is not answering on 127.0.0.1:3306; starting it ..." >&2
  if [ -x /usr/sbin/mariadbd ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  wait_up 3306
fi
if ! port_up 3306; then
  echo "ERROR: MariaDB is needed on 127.0.0.1:3306 (root, empty password, database 'test') for the SQL source tests." >&2
  exit 1
fi
