#!/usr/bin/env bash
# Starts a real OpenStack Glance (Debian's python3-glance, v2 API) on loopback
# for the Glance client's tests and bench/glance.
#
#   scripts/glance.sh start [DIR]   # prints the URL, e.g. http://127.0.0.1:19292
#   scripts/glance.sh stop  [DIR]
#
# DIR (default /tmp/ferry-glance) holds the configuration, the SQLite
# database, the two file stores ("fast" and "slow", so copy-image to several
# stores can be tried), the staging and tasks stores, the log and the pid
# file. $FERRY_GLANCE_PORT picks the port (default 19292).
#
# Identity: by default no Keystone. scripts/glance/ferry_glance_identity.py
# sets the headers Keystone's middleware would set (project, user, roles)
# from X-Ferry-Test-Project / -User / -Roles (default: one fixed project,
# roles member,reader), then Glance's ContextMiddleware runs. With
# FERRY_GLANCE_AUTH=keystone the pipeline is Keystone's "authtoken context"
# instead, configured from FERRY_GLANCE_KEYSTONE_URL and the service user in
# FERRY_GLANCE_KEYSTONE_USER / _PASSWORD / _PROJECT (default glance /
# glance / service, domain Default).
#
# web-download: Glance refuses loopback hosts and ports other than 80/443 by
# default ([import_filtering_opts]); here 127.0.0.1 is an allowed host and
# every port is allowed (these lists need brackets: bounds=True), so a test can serve a file on 127.0.0.1.
#
# Idempotent: "start" on a running instance prints its URL; concurrent starts
# (parallel test files) take turns on a lock. Needs python3-glance and flock
# (scripts/setup.sh installs them).
set -euo pipefail

cmd="${1:-start}"
DIR="${2:-${FERRY_GLANCE_DIR:-/tmp/ferry-glance}}"
PORT="${FERRY_GLANCE_PORT:-19292}"
AUTH="${FERRY_GLANCE_AUTH:-test}"
URL="http://127.0.0.1:$PORT"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3

stop() {
  local f="$DIR/run/glance-api.pid"
  if [ -e "$f" ]; then
    local pid
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  fi
}

up() {
  curl -fsS -o /dev/null "$URL/healthcheck" 2>/dev/null
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
mkdir -p "$DIR"
exec 9>"$DIR/start.lock"
flock 9
if up; then
  echo "$URL"
  exit 0
fi
stop
mkdir -p "$DIR/etc" "$DIR/run" "$DIR/log" "$DIR/lock" "$DIR/images/fast" "$DIR/images/slow" \
  "$DIR/images/staging" "$DIR/images/tasks"

if [ "$AUTH" = keystone ]; then
  : "${FERRY_GLANCE_KEYSTONE_URL:?FERRY_GLANCE_AUTH=keystone needs FERRY_GLANCE_KEYSTONE_URL}"
  PIPELINE="healthcheck versionnegotiation authtoken context rootapp"
else
  PIPELINE="healthcheck versionnegotiation ferryidentity context rootapp"
fi

cat >"$DIR/etc/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $PORT
workers = 0
log_file = $DIR/log/glance-api.log
debug = false
enabled_backends = fast:file,slow:file
enabled_import_methods = [glance-direct,web-download,copy-image]
worker_self_reference_url = $URL

[database]
connection = sqlite:///$DIR/glance.sqlite

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = $DIR/images/fast
[slow]
filesystem_store_datadir = $DIR/images/slow

[os_glance_staging_store]
filesystem_store_datadir = $DIR/images/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DIR/images/tasks

[import_filtering_opts]
allowed_schemes = [http,https]
allowed_hosts = [127.0.0.1]
allowed_ports = []

[paste_deploy]
config_file = $DIR/etc/glance-api-paste.ini
flavor =

[oslo_concurrency]
lock_path = $DIR/lock
CONF

if [ "$AUTH" = keystone ]; then
  cat >>"$DIR/etc/glance-api.conf" <<CONF

[keystone_authtoken]
www_authenticate_uri = $FERRY_GLANCE_KEYSTONE_URL
auth_url = $FERRY_GLANCE_KEYSTONE_URL
auth_type = password
username = ${FERRY_GLANCE_KEYSTONE_USER:-glance}
password = ${FERRY_GLANCE_KEYSTONE_PASSWORD:-glance}
project_name = ${FERRY_GLANCE_KEYSTONE_PROJECT:-service}
user_domain_name = Default
project_domain_name = Default
CONF
fi

cat >"$DIR/etc/glance-api-paste.ini" <<PASTE
[pipeline:glance-api]
pipeline = $PIPELINE

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:ferryidentity]
paste.filter_factory = ferry_glance_identity:filter_factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
PASTE

# Our image schema (kernel_id/ramdisk_id as UUIDs...), found next to the conf; no policy file.
cp "$HERE/glance/schema-image.json" "$DIR/etc/schema-image.json"
rm -f "$DIR/etc/policy.yaml" "$DIR/etc/policy.json"

cd "$DIR"
export PYTHONPATH="$HERE/glance${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -m glance.cmd.manage --config-file "$DIR/etc/glance-api.conf" db_sync \
  >"$DIR/log/db_sync.log" 2>&1 9>&-; then
  echo "glance: db_sync failed; log in $DIR/log/db_sync.log" >&2
  tail -20 "$DIR/log/db_sync.log" >&2
  exit 1
fi
# The server must not inherit the lock (fd 9): it outlives this script.
"$PY" -m glance.cmd.api --config-file "$DIR/etc/glance-api.conf" \
  >"$DIR/log/stdout.log" 2>&1 9>&- </dev/null &
echo $! >"$DIR/run/glance-api.pid"

for _ in $(seq 1 300); do
  if up; then
    echo "$URL"
    exit 0
  fi
  kill -0 "$(cat "$DIR/run/glance-api.pid")" 2>/dev/null || break
  sleep 0.1
done
echo "glance: the API did not come up; logs in $DIR/log" >&2
tail -20 "$DIR"/log/*.log >&2 || true
stop
exit 1
