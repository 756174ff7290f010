#!/usr/bin/env bash
# Backup benchmark: pgharbor's backup and restore against pg_dump -Fc and pg_restore -j2, same
# database, same server, one run. Not part of CI (it dumps and restores ~0.5 GB twice).
#
#   bash bench/backup.sh                    # ~470 MB database (700,000 orders)
#   ROWS=200000 bash bench/backup.sh        # quick run (~150 MB)
#   bash bench/backup.sh --keep             # leave the server (and its databases) running
#   PGHARBOR_BIN=path bash bench/backup.sh  # measure that binary instead of building one
#   CHAT_MB=400 bash bench/backup.sh        # also: the chat-app data, archive size and time per level
#   CHAT_MB=400 LEVELS="1 3 5 9" bash bench/backup.sh   # the --compress-level values tried there
#
# One throwaway PostgreSQL 16 server (/opt/pgharbor/pg16, from scripts/setup.sh) holding the
# database `shop` of bench/postgres/generate.sql. Measured:
#   pgharbor backup     `pgharbor backup SRC --to DIR` (pg_dump -Fc -Z0 through in-process
#                       multithreaded zstd, SHA-256 in the same pass) to a local directory
#   pg_dump -Fc         to a file, pg_dump's default compression (gzip, in pg_dump's one thread)
#   pgharbor restore    `pgharbor restore DIR/ID SERVER --as NEW -j 2` into a new database
#                       (rows streamed as the dump decompresses, SHA-256 and row counts checked)
#   pg_restore -j2      of the pg_dump -Fc file into a new database
# Wall time and peak RSS (GNU time -v) of each; archive sizes; each restored database is
# checked (row count of every table, indexes, constraints, sequences) against the source
# before its time is used; ratios peer / pgharbor (> 1: pgharbor faster or smaller).
# With CHAT_MB: the chat-app database of bench/sqlite.sh (pgharbor-fixtures chat-app, JSON
# documents and message text, ~1M rows at 400) migrated into the same server, then
# `pg_dump -Fc` and `pgharbor backup` at the default level and at each of LEVELS: wall time and
# archive size of each, ratios against pg_dump -Fc (the goal: no larger, at least 2x faster).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ROWS="${ROWS:-700000}" # rows of the big table; 700,000 gives ~470 MB (pg_database_size)
KEEP=0
for arg in "$@"; do
	case "$arg" in
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,22p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg (ROWS=<n> env var, --keep)" >&2
		exit 2
		;;
	esac
done
WORK="$REPO/.cache/bench"
LOGS="$WORK/backup-logs"
SCRATCH="$WORK/backup-scratch" # the backups
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
PG_SETTINGS=(shared_buffers=512MB max_wal_size=4GB checkpoint_timeout=30min maintenance_work_mem=256MB)
mkdir -p "$WORK" "$LOGS"
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"

# shellcheck source=lib/measure.sh
source "$REPO/bench/lib/measure.sh"
# shellcheck source=postgres/fingerprint.sh
source "$REPO/bench/postgres/fingerprint.sh"

# ---------------------------------------------------------------- setup
say "setup"
bash scripts/setup.sh # PostgreSQL 16 in /opt/pgharbor/pg16 (pgserver wheel)
if [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi
echo "    $("$PG_BIN/postgres" --version)"
if [ -z "${PGHARBOR_BIN:-}" ]; then
	cargo build --release -q -p pgharbor -p pgharbor-fixtures
fi
PGHARBOR="${PGHARBOR_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/pgharbor}"
echo "    $PGHARBOR ($("$PGHARBOR" --version))"

# ---------------------------------------------------------------- server
# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
cleanup() {
	pg_throwaway_stop
	rm -rf "$SCRATCH"
	[ -z "$PG_THROWAWAY_DIR" ] || rm -rf "$PG_THROWAWAY_DIR"
}
if [ "$KEEP" -eq 0 ]; then trap cleanup EXIT; fi
say "starting a PostgreSQL 16 server (${PG_SETTINGS[*]}; fsync on)"
pg_throwaway_start "$WORK/pg-backup" "$PG_BIN" "${PG_SETTINGS[@]}"
BASE="$PG_URL_BASE"
SRC="$BASE/shop"

say "generating the database ($ROWS orders; bench/postgres/generate.sql)"
$PSQL "$BASE/postgres" -c "CREATE DATABASE shop"
start=$(date +%s.%N)
$PSQL "$SRC" -v rows="$ROWS" -f bench/postgres/generate.sql >"$LOGS/generate.log"
GEN_S=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
SRC_MB=$(($($PSQL -At "$SRC" -c "SELECT pg_database_size(current_database())") / 1024 / 1024))
echo "    database: $SRC_MB MB (pg_database_size), generated in $GEN_S s"
[ "$SRC_MB" -ge 400 ] || echo "    (below 400 MB: ROWS=$ROWS; the default 700000 gives ~470 MB)"

SRC_PRINT=$(fingerprint "$SRC")
echo "    fingerprint: $SRC_PRINT"

# ---------------------------------------------------------------- measuring
declare -A WALL RSS

export PGHARBOR_PG_BIN="$PG_BIN" # pg_dump/pg_restore 16 for the PostgreSQL 16 server
say "pgharbor backup (pg_dump -Fc -Z0 | zstd -3 on every core, hashed, one pass)"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pgharbor-backup "$PGHARBOR" backup "$SRC" --to "$SCRATCH/pgharbor" --json
ID=$(python3 -c "import json; print(json.load(open('$LOGS/pgharbor-backup.out'))['id'])" 2>/dev/null || echo none)
H_BYTES=$(stat -c %s "$SCRATCH/pgharbor/$ID/shop.dump.zst" 2>/dev/null || echo 0)

say "pg_dump -Fc (gzip, pg_dump's default) to a file"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pg_dump-Fc "$PG_BIN/pg_dump" -Fc -f "$SCRATCH/shop.dump" "$SRC"
D_BYTES=$(stat -c %s "$SCRATCH/shop.dump" 2>/dev/null || echo 0)

say "pgharbor restore, jobs 2"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pgharbor-restore "$PGHARBOR" restore "$SCRATCH/pgharbor/$ID" "$BASE/postgres" --as r_pgharbor -j 2
check pgharbor-restore "$BASE/r_pgharbor"

say "pg_restore -j2 of the pg_dump -Fc file"
$PSQL "$BASE/postgres" -c "CREATE DATABASE r_pg_restore" -c CHECKPOINT
measure pg_restore-j2 "$PG_BIN/pg_restore" -j2 -d "$BASE/r_pg_restore" "$SCRATCH/shop.dump"
check pg_restore-j2 "$BASE/r_pg_restore"

# ---------------------------------------------------------------- results
mb() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
say "results ($SRC_MB MB database, $ROWS orders; PostgreSQL 16; $(nproc) cores, load average $LOAD; $(date -u +%Y-%m-%d))"
printf '    %-18s %10s %10s %12s\n' step "wall (s)" "RSS (MB)" "archive (MB)"
printf '    %-18s %10s %10s %12s\n' pgharbor-backup "${WALL[pgharbor-backup]}" "${RSS[pgharbor-backup]}" "$(mb "$H_BYTES")"
printf '    %-18s %10s %10s %12s\n' pg_dump-Fc "${WALL[pg_dump-Fc]}" "${RSS[pg_dump-Fc]}" "$(mb "$D_BYTES")"
printf '    %-18s %10s %10s\n' pgharbor-restore "${WALL[pgharbor-restore]}" "${RSS[pgharbor-restore]}"
printf '    %-18s %10s %10s\n' pg_restore-j2 "${WALL[pg_restore-j2]}" "${RSS[pg_restore-j2]}"
echo
echo "    backup time:  pg_dump -Fc / pgharbor      = $(ratio "${WALL[pg_dump-Fc]}" "${WALL[pgharbor-backup]}")   (goal >= 2x)"
echo "    archive size: pg_dump -Fc / pgharbor      = $(ratio "$D_BYTES" "$H_BYTES")   (goal >= 1x)"
echo "    restore time: pg_restore -j2 / pgharbor   = $(ratio "${WALL[pg_restore-j2]}" "${WALL[pgharbor-restore]}")   (goal >= 1x)"

# ---------------------------------------------------------------- chat-app data, per level
[ -n "${CHAT_MB:-}" ] || exit 0
CHAT_DB="$WORK/chat-${CHAT_MB}mb.db"
if [ ! -f "$CHAT_DB" ]; then
	say "generating $CHAT_DB (~$CHAT_MB MB; the file bench/sqlite.sh uses)"
	"$(dirname "$PGHARBOR")/pgharbor-fixtures" chat-app --users 1000 --target-mb "$CHAT_MB" --out "$CHAT_DB"
fi
say "migrating it into the database chat"
$PSQL "$BASE/postgres" -c "CREATE DATABASE chat"
"$PGHARBOR" migrate "$CHAT_DB" "$BASE/chat" --no-verify >"$LOGS/chat-migrate.log" 2>&1
CHAT_SIZE=$(($($PSQL -At "$BASE/chat" -c "SELECT pg_database_size(current_database())") / 1024 / 1024))
echo "    database: $CHAT_SIZE MB (pg_database_size)"
declare -A BYTES
$PSQL "$BASE/postgres" -c CHECKPOINT
measure chat-pg_dump-Fc "$PG_BIN/pg_dump" -Fc -f "$SCRATCH/chat.dump" "$BASE/chat"
BYTES[chat-pg_dump-Fc]=$(stat -c %s "$SCRATCH/chat.dump")
for level in default ${LEVELS:-1 3 5 7}; do
	name="chat-pgharbor-$level"
	args=()
	[ "$level" = default ] || args=(--compress-level "$level")
	$PSQL "$BASE/postgres" -c CHECKPOINT
	measure "$name" "$PGHARBOR" backup "$BASE/chat" --to "$SCRATCH/$name" --json "${args[@]}"
	BYTES[$name]=$(python3 -c "import json; print(json.load(open('$LOGS/$name.out'))['manifest']['files'][0]['size'])" 2>/dev/null || echo 0)
	rm -rf "${SCRATCH:?}/$name"
done
say "chat-app data ($CHAT_SIZE MB database; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '    %-24s %10s %12s %14s %14s\n' step "wall (s)" "archive (MB)" "time vs pg_dump" "size vs pg_dump"
for name in chat-pg_dump-Fc chat-pgharbor-default $(for l in ${LEVELS:-1 3 5 7}; do echo "chat-pgharbor-$l"; done); do
	printf '    %-24s %10s %12s %14s %14s\n' "$name" "${WALL[$name]}" "$(mb "${BYTES[$name]}")" \
		"$(ratio "${WALL[chat-pg_dump-Fc]}" "${WALL[$name]}")" "$(ratio "${BYTES[chat-pg_dump-Fc]}" "${BYTES[$name]}")"
done
