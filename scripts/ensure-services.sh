#!/usr/bin/env bash
# The integration tests use the real PostgreSQL on 127.0.0.1:5432. If it is down, start it the way
# this machine documents; if it still does not answer, fail loudly instead of skipping tests.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
if ! pg_up; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it ..." >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  echo "ERROR: PostgreSQL is needed on 127.0.0.1:5432 (trust auth, database 'test') for the store tests." >&2
  echo "       Start it (e.g. 'pg_ctlcluster <version> main start') or point CONNECTOR_TEST_POSTGRES_URL at one." >&2
  exit 1
fi
