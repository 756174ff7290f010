#!/usr/bin/env bash
# Demo: generate a chat-app SQLite database and migrate it into PostgreSQL.
#
#   scripts/demo.sh                      # into a throwaway PostgreSQL 15 cluster
#   DATABASE_URL=postgresql://... scripts/demo.sh   # into your own server
#
# The throwaway cluster lives in .cache/demo/pg and is stopped when the demo
# ends (its files stay until the next run).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

DEMO="$REPO/.cache/demo"
DB="$DEMO/chat.db"
PG_BIN="${PGHARBOR_PG15_BIN:-/usr/lib/postgresql/15/bin}"
PSQL="$PG_BIN/psql"

step() { printf '\n==> %s\n' "$*"; }
die() {
	printf 'demo: ERROR: %s\n' "$*" >&2
	exit 1
}

step "setup"
bash scripts/setup.sh

step "cargo build --release -p pgharbor -p pgharbor-fixtures"
cargo build --release -p pgharbor -p pgharbor-fixtures

step "generating $DB (chat-app, 200 users)"
mkdir -p "$DEMO"
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-journal"
target/release/pgharbor-fixtures chat-app --users 200 --out "$DB"
[ -f "$DB" ] || die "pgharbor-fixtures did not write $DB"
ls -lh "$DB" | awk '{print "    " $5 "  " $NF}'

# ------------------------------------------------------------ target server
PGDIR=""
PGDIR_IS_TMP=0
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# Server commands run as `postgres` when we are root (initdb refuses root).
pgrun() {
	if [ "$IS_ROOT" -eq 1 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

stop_cluster() {
	[ -n "$PGDIR" ] || return 0
	if [ -f "$PGDIR/data/postmaster.pid" ]; then
		pgrun "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 ||
			pgrun "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "$PGDIR_IS_TMP" -eq 1 ]; then rm -rf "$PGDIR"; fi
}

if [ -n "${DATABASE_URL:-}" ]; then
	URL="$DATABASE_URL"
	step "target: \$DATABASE_URL"
else
	PGDIR="$DEMO/pg"
	if [ "$IS_ROOT" -eq 1 ] && ! runuser -u postgres -- test -x "$DEMO"; then
		# The repository is not reachable by the postgres user: use /tmp.
		PGDIR="$(mktemp -d /tmp/pgharbor-demo.XXXXXX)"
		PGDIR_IS_TMP=1
	fi
	# A previous demo may have been interrupted before its trap ran.
	if [ -f "$PGDIR/data/postmaster.pid" ]; then
		pgrun "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$PGDIR"
	mkdir -p "$PGDIR/sock"
	if [ "$IS_ROOT" -eq 1 ]; then chown -R postgres: "$PGDIR"; fi
	trap stop_cluster EXIT

	step "starting a throwaway PostgreSQL 15 cluster in $PGDIR"
	pgrun "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres -E UTF8 --locale=C.UTF-8 -A trust --no-sync \
		>"$DEMO/initdb.log" 2>&1 || die "initdb failed (log: $DEMO/initdb.log)"
	PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	pgrun "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
		-o "-p $PORT -k $PGDIR/sock -c listen_addresses=127.0.0.1" start >/dev/null ||
		die "the server did not start (log: $PGDIR/server.log)"
	"$PSQL" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c 'CREATE DATABASE chat'
	URL="postgresql://postgres@127.0.0.1:$PORT/chat"
	echo "    $URL"
fi

# ------------------------------------------------------------------ migrate
step "pgharbor migrate $DB <target> --drop-existing"
start_ms=$(($(date +%s%N) / 1000000))
target/release/pgharbor migrate "$DB" "$URL" --drop-existing
elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
printf '    (%d.%03d s wall clock)\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))

# ------------------------------------------------------------------- proof
step "row counts: SQLite vs PostgreSQL"
printf '    %-28s %12s %12s\n' table sqlite postgres
mismatch=0
while IFS= read -r table; do
	[ -n "$table" ] || continue
	src=$(sqlite3 "$DB" "SELECT count(*) FROM \"${table//\"/\"\"}\"")
	dst=$("$PSQL" -X -q -A -t "$URL" -c "SELECT count(*) FROM \"${table//\"/\"\"}\"" 2>/dev/null || echo "-")
	mark=""
	if [ "$src" != "$dst" ]; then
		mark="  <-- differs"
		mismatch=1
	fi
	printf '    %-28s %12s %12s%s\n' "$table" "$src" "$dst" "$mark"
done < <(sqlite3 "$DB" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")

step "tables in PostgreSQL"
"$PSQL" -X "$URL" -c '\dt+'

if [ "$mismatch" -ne 0 ]; then
	die "some row counts differ (see above)"
fi
step "demo finished"
