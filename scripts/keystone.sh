#!/usr/bin/env bash
# Starts a real Keystone (identity v3) on loopback for the OpenStack auth
# tests: Debian's python3-keystone with SQLite and fernet tokens, served one
# request at a time by scripts/keystone-serve.py.
#
#   scripts/keystone.sh start [DIR]   # prints the URL, e.g. http://127.0.0.1:15000
#   scripts/keystone.sh stop  [DIR]
#
# DIR (default /tmp/ferry-keystone) holds the configuration, the database,
# the key repositories, the log and the pid file. The port is
# $FERRY_KEYSTONE_PORT (default 15000). bootstrap makes the user "admin"
# (password $FERRY_KEYSTONE_ADMIN_PASSWORD, default "ferry-admin") with the
# role admin on the project "admin", domain Default, and the identity
# endpoints in region RegionOne. Idempotent: "start" on a running instance
# prints its URL; concurrent starts take turns (flock, from util-linux).
set -euo pipefail

cmd="${1:-start}"
DIR="${2:-${FERRY_KEYSTONE_DIR:-/tmp/ferry-keystone}}"
PORT="${FERRY_KEYSTONE_PORT:-15000}"
PASSWORD="${FERRY_KEYSTONE_ADMIN_PASSWORD:-ferry-admin}"
URL="http://127.0.0.1:$PORT"
PY=/usr/bin/python3
HERE="$(cd "$(dirname "$0")" && pwd)"

stop() {
  if [ -e "$DIR/run/keystone.pid" ]; then
    kill "$(cat "$DIR/run/keystone.pid")" 2>/dev/null || true
    rm -f "$DIR/run/keystone.pid"
  fi
}

up() {
  curl -fsS -o /dev/null --max-time 5 "$URL/v3" 2>/dev/null
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
if [ "$cmd" != start ]; then
  echo "usage: $0 start|stop [DIR]" >&2
  exit 2
fi

if up; then
  echo "$URL"
  exit 0
fi
# Test files run in parallel and each starts the server: one start at a time,
# and whoever waited finds it running.
mkdir -p "$DIR"
exec 9>"$DIR/start.lock"
flock 9
if up; then
  echo "$URL"
  exit 0
fi
stop
mkdir -p "$DIR/etc" "$DIR/run" "$DIR/log"

cat >"$DIR/etc/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/log/keystone.log
use_stderr = false

[database]
connection = sqlite:///$DIR/keystone.db

[identity]
# Tests make users by the dozen: bcrypt's minimum cost, not production's.
password_hash_rounds = 4

[token]
provider = fernet

[fernet_tokens]
key_repository = $DIR/fernet-keys

[fernet_receipts]
key_repository = $DIR/fernet-keys

[credential]
key_repository = $DIR/credential-keys
CONF

# keystone.cmd.manage has no "__main__" guard, so `python3 -m` would do nothing.
manage() {
  "$PY" -c 'import sys; sys.argv[0] = "keystone-manage"; from keystone.cmd.manage import main; main()' \
    --config-file "$DIR/etc/keystone.conf" "$@" >>"$DIR/log/manage.log" 2>&1 9>&-
}
# The database and keys outlive a stop: set them up once.
if [ ! -e "$DIR/bootstrapped" ]; then
  rm -rf "$DIR/keystone.db" "$DIR/fernet-keys" "$DIR/credential-keys"
  manage db_sync
  manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  manage bootstrap --bootstrap-password "$PASSWORD" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL/v3" --bootstrap-public-url "$URL/v3" \
    --bootstrap-internal-url "$URL/v3"
  touch "$DIR/bootstrapped"
fi

# A request leaves a read open on its way out, which blocks the next write
# ("database is locked") in SQLite's default journal mode; in WAL mode
# readers do not block writers. The mode is kept in the database file.
"$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal")' \
  "$DIR/keystone.db" 9>&-

# The server must not inherit the lock (fd 9): it outlives this script.
OS_KEYSTONE_CONFIG_DIR="$DIR/etc" FERRY_KEYSTONE_PORT="$PORT" \
  "$PY" "$HERE/keystone-serve.py" >"$DIR/log/serve.log" 2>&1 9>&- &
echo $! >"$DIR/run/keystone.pid"

for _ in $(seq 1 150); do
  if up; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$DIR/run/keystone.pid")" 2>/dev/null; then break; fi
  sleep 0.2
done
echo "keystone: the server did not come up; logs in $DIR/log" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
stop
exit 1
