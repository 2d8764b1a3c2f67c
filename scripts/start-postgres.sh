#!/usr/bin/env bash
# Start a private, loopback-only PostgreSQL for tests (not the system service).
#   start-postgres.sh [DIR]     env: PG_PORT (default: a free port)
# Prints the PID on stdout; the database URL is written to DIR/url.
source "$(dirname "$(readlink -f "$0")")/lib.sh"
DIR=$(readlink -m "${1:-${TMPDIR:-/tmp}/causeway-run/postgres}")
PG_PORT=${PG_PORT:-$(free_port)}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z $bindir || ! -x $bindir/initdb ]]; then
  log "installing postgresql"; apt_install postgresql
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi
id postgres >/dev/null 2>&1 || useradd --system --home "$DIR" postgres
mkdir -p "$DIR"; chown postgres "$DIR"; chmod o+x "$(dirname "$DIR")"
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [[ -s $DIR/data/postmaster.pid ]] && kill -0 "$(head -1 "$DIR/data/postmaster.pid")" 2>/dev/null; then
  log "postgres already running from $DIR"; head -1 "$DIR/data/postmaster.pid"; exit 0
fi
[[ -d $DIR/data ]] || as_pg "$bindir/initdb" -D "$DIR/data" -U postgres --auth=trust >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
as_pg "$bindir/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w -t 30 \
  -o "-p $PG_PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >&2 \
  || { cat "$DIR/pg.log" >&2; die "postgres did not start"; }
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres causeway 2>/dev/null || true
echo "postgres://postgres@127.0.0.1:$PG_PORT/causeway" >"$DIR/url"
log "postgres ready on 127.0.0.1:$PG_PORT"
head -1 "$DIR/data/postmaster.pid" >"$DIR/postgres.pid"
cat "$DIR/postgres.pid"
