#!/usr/bin/env bash
# SQLite → PostgreSQL benchmark: pgharbor against its peers, same data, same
# server, one run. Not part of CI (it moves ~400 MB several times).
#
#   bash bench/sqlite.sh            # ~400 MB chat-app database (≥ 1M rows)
#   BENCH_MB=100 bash bench/sqlite.sh
#   PGHARBOR_BIN=path bash bench/sqlite.sh      # measure that binary instead of building one
#   PGHARBOR_BEFORE=path bash bench/sqlite.sh   # also measure an earlier build, same run
#   PGHARBOR_FIXTURES_BIN=path                  # the data generator to use instead of building it
#
# Measured, each into a fresh database of one throwaway PostgreSQL 15 cluster:
#   pgharbor            migrate (with verification, the default) and --no-verify
#   pgharbor (small)    the same on a quarter-size file: peak RSS must not grow with size
#   pgharbor-before     PGHARBOR_BEFORE's binary, verified, when set
#   pgloader            Debian's pgloader: as users run it (it creates the schema), then
#                       data only into the schema pgharbor made, with its default heap and
#                       with an 8 GB heap (it exhausts the default 1 GB heap on this file)
#   pgloader-8g         the complete run pgloader can do: schema, data, keys, indexes and
#                       foreign keys, 8 GB heap, on a copy of the file whose one expression
#                       index (lower(email)) is a plain index (pgloader 3.6.7 crashes on it,
#                       "The value NIL is not of type COLUMN") and whose datetime('now')
#                       default is CURRENT_TIMESTAMP (it cannot create that default), FTS5
#                       tables excluded as pgharbor excludes them
#   pg_dump | psql      restoring the same data from the database pgharbor made
#   server COPY         COPY FROM server-side binary files + building the same keys/indexes
# Wall time and peak RSS (GNU time) for each, and ratios against pgharbor.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
MB="${BENCH_MB:-400}"
WORK="$REPO/.cache/bench"
PG_BIN="${PGHARBOR_PG15_BIN:-/usr/lib/postgresql/15/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
mkdir -p "$WORK"

say() { printf '\n==> %s\n' "$*"; }

say "setup"
bash scripts/setup.sh
if ! command -v pgloader >/dev/null 2>&1 || [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q pgloader time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q pgloader time >/dev/null; }
fi
PGHARBOR="${PGHARBOR_BIN:-$REPO/target/release/pgharbor}"
FIXTURES="${PGHARBOR_FIXTURES_BIN:-$REPO/target/release/pgharbor-fixtures}"
[ -n "${PGHARBOR_FIXTURES_BIN:-}" ] || cargo build --release -q -p pgharbor-fixtures
[ -n "${PGHARBOR_BIN:-}" ] || cargo build --release -q -p pgharbor

DB="$WORK/chat-${MB}mb.db"
SMALL="$WORK/chat-$((MB / 4))mb.db"
for spec in "$DB:$MB:1000" "$SMALL:$((MB / 4)):200"; do
	IFS=: read -r file size users <<<"$spec"
	if [ ! -f "$file" ]; then
		say "generating $file (~$size MB)"
		"$FIXTURES" chat-app --users "$users" --target-mb "$size" --out "$file"
	fi
done
ROWS=$(sqlite3 "$DB" "SELECT sum(n) FROM (SELECT count(*) n FROM message UNION ALL SELECT count(*) FROM chat UNION ALL SELECT count(*) FROM user UNION ALL SELECT count(*) FROM file UNION ALL SELECT count(*) FROM memory UNION ALL SELECT count(*) FROM tag UNION ALL SELECT count(*) FROM chat_tag UNION ALL SELECT count(*) FROM config)")
printf '    %s: %s, %s rows\n' "$DB" "$(du -h "$DB" | cut -f1)" "$ROWS"

# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
trap pg_throwaway_stop EXIT
say "starting PostgreSQL 15 (same settings for every tool)"
pg_throwaway_start "$WORK/pg" "$PG_BIN" shared_buffers=512MB max_wal_size=8GB checkpoint_timeout=30min maintenance_work_mem=256MB
for db in h_verify h_noverify h_small h_before loader loader_data loader_data_8g loader_full_8g restore servercopy; do
	$PSQL "$PG_URL_BASE/postgres" -c "CREATE DATABASE $db"
done

declare -A WALL RSS
# measure NAME COMMAND... : wall seconds and peak RSS (MB) of one command
measure() {
	local name="$1"
	shift
	local out="$WORK/$name.log"
	if /usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$out" 2>&1 && ! grep -q "Heap exhausted" "$out"; then
		read -r wall rss <"$WORK/$name.time"
		WALL[$name]="$wall"
		RSS[$name]=$((rss / 1024))
		printf '    %-22s %8.2f s %8d MB\n' "$name" "$wall" "$((rss / 1024))"
	else
		WALL[$name]="failed"
		RSS[$name]="-"
		printf '    %-22s FAILED (log: %s)\n' "$name" "$out"
		tail -3 "$out" | sed 's/^/        /'
	fi
}

say "pgharbor"
measure pgharbor "$PGHARBOR" migrate "$DB" "$PG_URL_BASE/h_verify"
measure pgharbor-no-verify "$PGHARBOR" migrate "$DB" "$PG_URL_BASE/h_noverify" --no-verify
measure pgharbor-quarter-size "$PGHARBOR" migrate "$SMALL" "$PG_URL_BASE/h_small"
if [ -n "${PGHARBOR_BEFORE:-}" ]; then
	measure pgharbor-before "$PGHARBOR_BEFORE" migrate "$DB" "$PG_URL_BASE/h_before"
fi

say "pgloader"
measure pgloader pgloader "sqlite://$DB" "$PG_URL_BASE/loader"
# pgloader exits 0 even when it could not create the schema: count what arrived.
loaded_rows() {
	$PSQL -At "$PG_URL_BASE/$1" -c "SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables" 2>/dev/null || echo 0
}
sleep 1
if [ "$(loaded_rows loader)" = 0 ]; then
	WALL[pgloader]=failed
	echo "    pgloader loaded 0 rows: $(grep -m1 -E 'ERROR|FATAL' "$WORK/pgloader.log" | cut -c1-150)"
fi
"$PG_BIN/pg_dump" --section=pre-data "$PG_URL_BASE/h_noverify" | $PSQL "$PG_URL_BASE/loader_data" >/dev/null
"$PG_BIN/pg_dump" --section=pre-data "$PG_URL_BASE/h_noverify" | $PSQL "$PG_URL_BASE/loader_data_8g" >/dev/null
DATA_ONLY=(--with "create no tables" --with "include no drop" --with "truncate")
measure pgloader-data-only pgloader "${DATA_ONLY[@]}" "sqlite://$DB" "$PG_URL_BASE/loader_data"
measure pgloader-data-only-8g pgloader --dynamic-space-size 8192 "${DATA_ONLY[@]}" "sqlite://$DB" "$PG_URL_BASE/loader_data_8g"
PGLOADER_DB="$WORK/chat-${MB}mb-pgloader.db"
if [ ! -f "$PGLOADER_DB" ]; then
	cp "$DB" "$PGLOADER_DB.tmp"
	sqlite3 "$PGLOADER_DB.tmp" "PRAGMA writable_schema = ON;
		UPDATE sqlite_schema SET sql = replace(sql, 'DEFAULT (datetime(''now''))', 'DEFAULT CURRENT_TIMESTAMP') WHERE type = 'table';
		PRAGMA writable_schema = OFF;
		DROP INDEX user_email_lower_idx; CREATE INDEX user_email_idx ON \"user\" (email);"
	[ "$(sqlite3 "$PGLOADER_DB.tmp" 'PRAGMA integrity_check')" = ok ]
	mv "$PGLOADER_DB.tmp" "$PGLOADER_DB"
fi
printf "LOAD DATABASE FROM sqlite://%s INTO %s/loader_full_8g\n EXCLUDING TABLE NAMES LIKE 'message_fts%%';\n" "$PGLOADER_DB" "$PG_URL_BASE" >"$WORK/pgloader-full.load"
measure pgloader-8g pgloader --dynamic-space-size 8192 "$WORK/pgloader-full.load"

say "pg_dump | psql (restoring the data pgharbor loaded)"
measure pg_dump-psql bash -c "$PG_BIN/pg_dump '$PG_URL_BASE/h_noverify' | $PSQL '$PG_URL_BASE/restore'"

say "server-side COPY FROM files, then the same keys and indexes"
EXPORT="$PG_THROWAWAY_DIR/export"
pg_throwaway_run mkdir -p "$EXPORT"
"$PG_BIN/pg_dump" --section=pre-data "$PG_URL_BASE/h_noverify" | $PSQL "$PG_URL_BASE/servercopy"
"$PG_BIN/pg_dump" --section=post-data "$PG_URL_BASE/h_noverify" >"$WORK/post-data.sql"
TABLES=$($PSQL -At "$PG_URL_BASE/h_noverify" -c "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")
COPY_SQL="$WORK/server-copy.sql"
: >"$COPY_SQL"
for t in $TABLES; do
	f="$EXPORT/$(echo "$t" | tr -dc 'a-z_').bin"
	$PSQL "$PG_URL_BASE/h_noverify" -c "COPY public.$t TO '$f' (FORMAT binary)"
	echo "COPY public.$t FROM '$f' (FORMAT binary);" >>"$COPY_SQL"
done
cat "$WORK/post-data.sql" >>"$COPY_SQL"
measure server-copy $PSQL "$PG_URL_BASE/servercopy" -f "$COPY_SQL"
pg_throwaway_run rm -rf "$EXPORT"

say "results ($DB, $ROWS rows; 2 cores)"
ratio() { # other / pgharbor
	local other="${WALL[$1]}" base="${WALL[pgharbor]}"
	if [ "$other" = failed ] || [ "$base" = failed ]; then echo "-"; else python3 -c "print(f'{$other / $base:.2f}x')"; fi
}
printf '    %-22s %10s %10s %22s\n' tool "wall (s)" "RSS (MB)" "time vs pgharbor"
NAMES=(pgharbor pgharbor-no-verify pgharbor-quarter-size)
[ -z "${PGHARBOR_BEFORE:-}" ] || NAMES+=(pgharbor-before)
NAMES+=(pgloader pgloader-data-only pgloader-data-only-8g pgloader-8g pg_dump-psql server-copy)
for name in "${NAMES[@]}"; do
	printf '    %-22s %10s %10s %22s\n' "$name" "${WALL[$name]}" "${RSS[$name]}" "$(ratio "$name")"
done
echo
LOAD_S=$(grep -o 'phases: load [0-9.]* s' "$WORK/pgharbor.log" | head -1 | tr -dc '0-9.')
echo "    pgloader / pgharbor        = $(ratio pgloader)   (pgloader cannot create this schema)"
echo "    pgloader complete run (8 GB heap, schema it can create) / pgharbor with verification = $(ratio pgloader-8g)   (goal: >= 3x)"
echo "    pgloader data-only (8 GB heap, no keys, no indexes) / pgharbor complete run = $(ratio pgloader-data-only-8g)"
echo "    pgloader data-only (8 GB heap) / pgharbor load phase ($LOAD_S s) = $(python3 -c "print(f'{${WALL[pgloader-data-only-8g]} / $LOAD_S:.2f}x')" 2>/dev/null || echo -)"
echo "    pgharbor / (pg_dump|psql)  = $(python3 -c "print(f'{${WALL[pgharbor]} / ${WALL[pg_dump-psql]}:.2f}x')" 2>/dev/null || echo -)   (goal: <= 1.3x)"
[ -z "${PGHARBOR_BEFORE:-}" ] || echo "    pgharbor before / now      = $(ratio pgharbor-before)"
echo "    peak RSS: ${RSS[pgharbor]} MB at ${MB} MB, ${RSS[pgharbor-quarter-size]} MB at $((MB / 4)) MB   (goal: <= 150 MB, flat)"
