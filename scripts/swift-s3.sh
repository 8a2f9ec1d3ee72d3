#!/usr/bin/env bash
# Starts a real S3 server on loopback for the store's S3 tests: OpenStack
# Swift (Debian's packages) all in one, one replica, with the s3api
# middleware and tempauth (access key "test:tester", secret "testing").
#
#   scripts/swift-s3.sh start [DIR]   # prints the endpoint, e.g. http://127.0.0.1:18080
#   scripts/swift-s3.sh stop  [DIR]
#
# DIR (default /tmp/ferry-swift) holds the rings, the configuration, the
# object data and the pid files. Needs the packages swift swift-proxy
# swift-object swift-container swift-account python3-swift memcached
# and flock (util-linux) (scripts/setup.sh installs them). Idempotent: "start"
# on a running instance prints its endpoint; concurrent starts take turns.
set -euo pipefail

cmd="${1:-start}"
DIR="${2:-${FERRY_SWIFT_DIR:-/tmp/ferry-swift}}"
PORT="${FERRY_SWIFT_PORT:-18080}"
MEMCACHED_PORT="${FERRY_SWIFT_MEMCACHED_PORT:-18211}"
ENDPOINT="http://127.0.0.1:$PORT"
# The servers drop privileges to this user; the data directory is ours.
USER_NAME="$(id -un)"

stop() {
  for f in "$DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  # The servers fork workers; anything still running on this instance's configuration goes too.
  pkill -f -- "$DIR/etc/" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

if curl -fsS -o /dev/null "$ENDPOINT/healthcheck" 2>/dev/null; then
  echo "$ENDPOINT"
  exit 0
fi
# Test files run in parallel and each starts the server: one start at a time,
# and whoever waited finds it running.
mkdir -p "$DIR"
exec 9>"$DIR/start.lock"
flock 9
if curl -fsS -o /dev/null "$ENDPOINT/healthcheck" 2>/dev/null; then
  echo "$ENDPOINT"
  exit 0
fi
stop
mkdir -p "$DIR/etc" "$DIR/srv/node/d1" "$DIR/run" "$DIR/log"

cat >"$DIR/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = ferry-test
swift_hash_path_prefix = ferry-test
[storage-policy:0]
name = gold
default = yes
EOF

common() {
  cat <<EOF
[DEFAULT]
devices = $DIR/srv/node
mount_check = false
user = $USER_NAME
bind_ip = 127.0.0.1
bind_port = $1
workers = 1
swift_dir = $DIR/etc
log_name = $2
log_facility = LOG_LOCAL0
log_level = WARNING
EOF
}

{ common $((PORT + 1)) object; cat <<'EOF'
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
[object-replicator]
[object-updater]
[object-auditor]
EOF
} >"$DIR/etc/object-server.conf"

{ common $((PORT + 2)) container; cat <<'EOF'
[pipeline:main]
pipeline = container-server
[app:container-server]
use = egg:swift#container
[container-replicator]
[container-updater]
[container-auditor]
[container-sync]
EOF
} >"$DIR/etc/container-server.conf"

{ common $((PORT + 3)) account; cat <<'EOF'
[pipeline:main]
pipeline = account-server
[app:account-server]
use = egg:swift#account
[account-replicator]
[account-auditor]
[account-reaper]
EOF
} >"$DIR/etc/account-server.conf"

cat >"$DIR/etc/proxy-server.conf" <<EOF
[DEFAULT]
user = $USER_NAME
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 1
swift_dir = $DIR/etc
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF

cd "$DIR/etc"
for ring in object container account; do
  if [ ! -e "$ring.ring.gz" ]; then
    case $ring in object) p=$((PORT + 1)) ;; container) p=$((PORT + 2)) ;; account) p=$((PORT + 3)) ;; esac
    swift-ring-builder "$ring.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$ring.builder" add "r1z1-127.0.0.1:$p/d1" 100 >/dev/null
    swift-ring-builder "$ring.builder" rebalance >/dev/null
  fi
done

# The servers must not inherit the lock (fd 9): they outlive this script.
memcached -u "$USER_NAME" -l 127.0.0.1 -p "$MEMCACHED_PORT" -d -P "$DIR/run/memcached.pid" 9>&-
for s in object container account proxy; do
  "swift-$s-server" "$DIR/etc/$s-server.conf" -v >"$DIR/log/$s.log" 2>&1 9>&- &
  echo $! >"$DIR/run/$s.pid"
done

for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$ENDPOINT/healthcheck" 2>/dev/null; then
    echo "$ENDPOINT"
    exit 0
  fi
  sleep 0.2
done
echo "swift-s3: the proxy did not come up; logs in $DIR/log" >&2
tail -20 "$DIR"/log/*.log >&2 || true
exit 1
