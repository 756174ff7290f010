#!/usr/bin/env bash
# Demo: generate a chat-app SQLite database and migrate it into PostgreSQL, then
# move a real Open WebUI data directory (webui.db + the Chroma vector_db/ written
# by Open WebUI 0.12.4 itself, fixtures/openwebui) with --preset open-webui.
#
#   scripts/demo.sh                      # into a throwaway PostgreSQL 16 + pgvector cluster
#   DATABASE_URL=postgresql://... scripts/demo.sh   # into your own server (needs pgvector for the vectors)
#
# The throwaway cluster lives in .cache/demo/pg and is stopped when the demo
# ends (its files stay until the next run).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

DEMO="$REPO/.cache/demo"
DB="$DEMO/chat.db"
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
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
# shellcheck source=lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
if [ -n "${DATABASE_URL:-}" ]; then
	URL="$DATABASE_URL"
	step "target: \$DATABASE_URL"
else
	trap pg_throwaway_stop EXIT
	step "starting a throwaway PostgreSQL 16 + pgvector cluster"
	pg_throwaway_start "$DEMO/pg" "$PG_BIN" || die "could not start PostgreSQL"
	"$PSQL" -X -q "$PG_URL_BASE/postgres" -c 'CREATE DATABASE chat'
	URL="$PG_URL_BASE/chat"
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
done < <(sqlite3 "$DB" "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")

step "tables in PostgreSQL"
"$PSQL" -X "$URL" -c '\dt+'

if [ "$mismatch" -ne 0 ]; then
	die "some row counts differ (see above)"
fi

# ---------------------------------------------------------------- Open WebUI
OWUI="$REPO/fixtures/openwebui"
OWUI_URL="${URL%/*}/openwebui"
step "Open WebUI: $OWUI (webui.db + vector_db/) -> ${OWUI_URL##*@}"
"$PSQL" -X -q "${URL%/*}/postgres" -c 'DROP DATABASE IF EXISTS openwebui' -c 'CREATE DATABASE openwebui'
echo "    loading the schema Open WebUI 0.12.4's own migrations create on first start (pg-first-start.sql)"
"$PSQL" -X -q -v ON_ERROR_STOP=1 "$OWUI_URL" -f "$OWUI/pg-first-start.sql" >/dev/null
step "pgharbor migrate $OWUI <target> --preset open-webui --truncate"
target/release/pgharbor migrate "$OWUI" "$OWUI_URL" --preset open-webui --truncate
"$PSQL" -X "$OWUI_URL" -c 'SELECT collection_name, count(*) AS chunks, max(vector_dims(vector)) AS dims FROM document_chunk GROUP BY 1 ORDER BY 2 DESC LIMIT 5'
step "demo finished"
