#!/usr/bin/env bash
# Home Assistant recorder → PostgreSQL 16 benchmark: pgharbor against pgloader, same
# multi-million-row recorder database, same server, one run. Not part of CI.
#
#   bash bench/homeassistant.sh                 # ~3M states (~4.6M rows, ~0.9 GB)
#   BENCH_STATES=1000000 bash bench/homeassistant.sh
#   PGHARBOR_BIN=path bash bench/homeassistant.sh   # measure that binary instead of building one
#
# The database is written once by fixtures/homeassistant/bulk.py (Home Assistant's own
# recorder creates the schema, the rows follow its models) and cached in .cache/bench/.
# For each tool, Home Assistant's recorder first creates its schema (version 42) in a
# fresh database, as a user's `recorder: db_url:` does; then:
#   pgharbor   migrate FILE URL --preset home-assistant: load, foreign keys, sequences,
#              ANALYZE and the verification (row counts and checksums of every table)
#   pgloader   the community recipe: data only into Home Assistant's schema, drop
#              indexes, reset sequences, truncate (Debian's pgloader, installed if missing)
# Wall time and peak RSS (GNU time), the ratio, and for each target how many identity
# sequences stand below their table's data (the recorder's next insert fails there).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
STATES="${BENCH_STATES:-3000000}"
WORK="$REPO/.cache/bench"
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
mkdir -p "$WORK"

say() { printf '\n==> %s\n' "$*"; }

say "setup"
bash fixtures/homeassistant/setup.sh
HA_PY="$REPO/.cache/homeassistant-venv/bin/python"
if ! command -v pgloader >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
	echo "    installing Debian's pgloader and GNU time"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q pgloader time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q pgloader time >/dev/null; }
fi
PGHARBOR="${PGHARBOR_BIN:-$REPO/target/release/pgharbor}"
[ -n "${PGHARBOR_BIN:-}" ] || cargo build --release -q -p pgharbor

DB="$WORK/home-assistant-${STATES}-states.db"
if [ ! -f "$DB" ]; then
	say "generating $DB ($STATES states)"
	"$HA_PY" fixtures/homeassistant/bulk.py "$DB" --states "$STATES"
fi
ROWS=$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM states) + (SELECT count(*) FROM state_attributes) + (SELECT count(*) FROM states_meta) + (SELECT count(*) FROM events) + (SELECT count(*) FROM event_data) + (SELECT count(*) FROM event_types) + (SELECT count(*) FROM statistics) + (SELECT count(*) FROM statistics_short_term) + (SELECT count(*) FROM statistics_meta) + (SELECT count(*) FROM statistics_runs) + (SELECT count(*) FROM recorder_runs) + (SELECT count(*) FROM schema_changes)")
printf '    %s: %s, %s rows\n' "$DB" "$(du -h "$DB" | cut -f1)" "$ROWS"

# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
trap pg_throwaway_stop EXIT
say "starting PostgreSQL 16 (same settings for every tool)"
pg_throwaway_start "$WORK/pg16-ha" "$PG_BIN" shared_buffers=512MB max_wal_size=2GB checkpoint_timeout=30min maintenance_work_mem=256MB
for db in harbor loader; do
	$PSQL "$PG_URL_BASE/postgres" -c "CREATE DATABASE $db"
	"$HA_PY" fixtures/homeassistant/recorder.py create-schema "$PG_URL_BASE/$db"
done

declare -A WALL RSS
# measure NAME COMMAND... : wall seconds and peak RSS (MB) of one command
measure() {
	local name="$1"
	shift
	local out="$WORK/ha-$name.log"
	if /usr/bin/time -f '%e %M' -o "$WORK/ha-$name.time" "$@" >"$out" 2>&1; then
		read -r wall rss <"$WORK/ha-$name.time"
		WALL[$name]="$wall"
		RSS[$name]=$((rss / 1024))
		printf '    %-10s %8.2f s %8d MB\n' "$name" "$wall" "$((rss / 1024))"
	else
		WALL[$name]="failed"
		RSS[$name]="-"
		printf '    %-10s FAILED (log: %s)\n' "$name" "$out"
		tail -3 "$out" | sed 's/^/        /'
	fi
}

# Identity sequences of DB standing below their table's highest id.
sequences_behind() {
	local behind=() total=0 table column
	while IFS='|' read -r table column; do
		total=$((total + 1))
		if [ "$($PSQL -At "$PG_URL_BASE/$1" -c "SELECT coalesce(max($column), 0) > coalesce(pg_sequence_last_value(pg_get_serial_sequence('$table', '$column')), 0) FROM $table")" = t ]; then
			behind+=("$table")
		fi
	done < <($PSQL -At "$PG_URL_BASE/$1" -c "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND is_identity = 'YES' ORDER BY 1")
	echo "${#behind[@]} of $total${behind:+ (${behind[*]})}"
}

say "pgharbor"
measure pgharbor "$PGHARBOR" migrate "$DB" "$PG_URL_BASE/harbor" --preset home-assistant
grep -E '^(phases|verified|changed)' "$WORK/ha-pgharbor.log" | sed 's/^/    /'

say "pgloader"
cat >"$WORK/ha-pgloader.load" <<EOF
LOAD DATABASE
  FROM sqlite://$DB
  INTO $PG_URL_BASE/loader
WITH data only, drop indexes, reset sequences, truncate, batch rows = 1000
SET work_mem to '32 MB', maintenance_work_mem to '64 MB';
EOF
measure pgloader pgloader "$WORK/ha-pgloader.load"
grep -E 'Total import time' "$WORK/ha-pgloader.log" | sed 's/^/    /' || true

say "results ($DB, $ROWS rows; $(nproc) cores)"
printf '    %-10s %10s %10s %14s %s\n' tool "wall (s)" "RSS (MB)" "rows in PG" "sequences below the data"
for name in pgharbor pgloader; do
	case $name in pgharbor) db=harbor ;; pgloader) db=loader ;; esac
	rows=$($PSQL -At "$PG_URL_BASE/$db" -c "SELECT (SELECT count(*) FROM states) + (SELECT count(*) FROM state_attributes) + (SELECT count(*) FROM states_meta) + (SELECT count(*) FROM events) + (SELECT count(*) FROM event_data) + (SELECT count(*) FROM event_types) + (SELECT count(*) FROM statistics) + (SELECT count(*) FROM statistics_short_term) + (SELECT count(*) FROM statistics_meta) + (SELECT count(*) FROM statistics_runs) + (SELECT count(*) FROM recorder_runs) + (SELECT count(*) FROM schema_changes)")
	printf '    %-10s %10s %10s %14s %s\n' "$name" "${WALL[$name]}" "${RSS[$name]}" "$rows" "$(sequences_behind "$db")"
done
if [ "${WALL[pgharbor]}" != failed ] && [ "${WALL[pgloader]}" != failed ]; then
	echo "    pgloader / pgharbor (with verification) = $(python3 -c "print(f'{${WALL[pgloader]} / ${WALL[pgharbor]}:.2f}x')")"
fi
