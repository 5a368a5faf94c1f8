#!/usr/bin/env bash
# Starts or stops a private PostgreSQL cluster in DIR listening on PORT
# (Unix socket in DIR/sock and 127.0.0.1). PostgreSQL refuses to run as
# root, so as root the cluster belongs to the unprivileged user nmcpg.
# The cluster trusts local connections for role "nmc" and has database
# "$DB" (default nmc). Usage: pg.sh start|stop|url DIR PORT [DB]
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url DIR PORT [DB]}
dir=${2:?DIR}
port=${3:?PORT}
db=${4:-nmc_test}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ]; then echo "pg.sh: PostgreSQL server binaries not found (run scripts/install-deps.sh)" >&2; exit 2; fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u nmcpg -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  if [ "$(id -u)" = 0 ] && ! id nmcpg >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin nmcpg
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown nmcpg "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$dir/data" -U nmc --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg mkdir -p "$dir/sock"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
CONF
    # the settings recommended for nmc's database (deploy/postgresql.conf)
    grep -v '^\s*#' "$(dirname "$0")/../deploy/postgresql.conf" | grep . >>"$dir/data/postgresql.conf"
  fi
  if ! as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
  fi
  if ! "$bindir/psql" -h "$dir/sock" -p "$port" -U nmc -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    "$bindir/createdb" -h "$dir/sock" -p "$port" -U nmc "$db"
  fi
  ;;
stop)
  if [ -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  ;;
url)
  echo "host=$dir/sock port=$port dbname=$db user=nmc"
  ;;
*) echo "pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
