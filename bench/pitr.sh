#!/usr/bin/env bash
# Point-in-time recovery benchmark: pgharbor's base backup against pg_basebackup -Ft with gzip
# (-z) and with zstd (-Z zstd), the restore of the archive into a new data directory, and the
# WAL archiver under a pgbench write load. Same server, one run; not part of CI.
#
#   bash bench/pitr.sh                         # ~470 MB database (700,000 orders)
#   ROWS=200000 bash bench/pitr.sh             # quick run (~150 MB)
#   PGBENCH_SECONDS=30 bash bench/pitr.sh      # the write load's length (default 60)
#   PGHARBOR_BIN=path bash bench/pitr.sh       # measure that binary instead of building one
#   PG_BIN=/opt/pgharbor/pg16/bin bash bench/pitr.sh   # PostgreSQL 16 (its build has no -Z zstd)
#
# One throwaway PostgreSQL 15 server (Debian's, from scripts/setup.sh; see PG_BIN) holding the
# database `shop` of bench/postgres/generate.sql (as bench/backup.sh builds it). Measured:
#   pgharbor base-backup   `pgharbor base-backup URL --to DIR --no-row-counts`: pg_basebackup -Ft -X fetch to
#                          stdout through in-process multithreaded zstd -3, SHA-256, one pass
#   pg_basebackup -z       -Ft -X fetch -z (gzip in pg_basebackup's one thread) to a directory
#   pg_basebackup zstd     -Ft -X fetch -Z zstd (client-side zstd, level 1 by default)
#   pgharbor restore       `pgharbor restore DIR --pgdata NEW --latest --start`: download,
#                          check, unpack, replay every archived WAL file, promote; the result
#                          is checked against the source (row counts, indexes, constraints,
#                          sequences) before its time is used
#   WAL archiving          `pgharbor archive` running while `pgbench -c 4 -j 2 -T N` writes:
#                          WAL generated (MB/s), how long after the load the last segment is
#                          archived, the archive's size against the WAL's
# Wall time and peak RSS (GNU time -v) of each; sizes; ratios peer / pgharbor (> 1: pgharbor
# faster or smaller).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ROWS="${ROWS:-700000}"
PGBENCH_SECONDS="${PGBENCH_SECONDS:-60}"
case "${1:-}" in
-h | --help)
	sed -n '2,26p' "$0"
	exit 0
	;;
"") ;;
*)
	echo "unknown argument: $1 (ROWS, PGBENCH_SECONDS, PGHARBOR_BIN env vars)" >&2
	exit 2
	;;
esac
WORK="$REPO/.cache/bench"
LOGS="$WORK/pitr-logs"
# Debian's PostgreSQL 15: its pg_basebackup has zstd (-Z zstd); the PostgreSQL 16 build of
# scripts/setup.sh (pgserver) has not. PG_BIN=/opt/pgharbor/pg16/bin measures 16 without -Z zstd.
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
PG_SETTINGS=(shared_buffers=512MB max_wal_size=4GB checkpoint_timeout=30min maintenance_work_mem=256MB)
mkdir -p "$WORK" "$LOGS"

# shellcheck source=lib/measure.sh
source "$REPO/bench/lib/measure.sh"
# shellcheck source=postgres/fingerprint.sh
source "$REPO/bench/postgres/fingerprint.sh"

# ---------------------------------------------------------------- setup
say "setup"
bash scripts/setup.sh
if [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi
echo "    $("$PG_BIN/postgres" --version)"
if [ -z "${PGHARBOR_BIN:-}" ]; then
	cargo build --release -q -p pgharbor
fi
PGHARBOR="${PGHARBOR_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/pgharbor}"
echo "    $PGHARBOR ($("$PGHARBOR" --version))"

# PostgreSQL refuses to run as root: as root, everything that touches a data directory or the
# archive runs as `postgres`, in a directory it owns.
AS_SERVER_USER=(env PGHARBOR_PG_BIN="$PG_BIN")
if [ "$(id -u)" -eq 0 ]; then AS_SERVER_USER=(runuser -u postgres -- "${AS_SERVER_USER[@]}"); fi
SCRATCH="$(mktemp -d /tmp/pgharbor-pitr-bench.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$SCRATCH"
	cp "$PGHARBOR" "$SCRATCH/pgharbor" && chown postgres: "$SCRATCH/pgharbor"
	PGHARBOR="$SCRATCH/pgharbor" # reachable by postgres wherever the repository is
fi

# ---------------------------------------------------------------- server
# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
ARCHIVER_PID=""
RESTORED=""
cleanup() {
	[ -z "$ARCHIVER_PID" ] || kill -TERM "$ARCHIVER_PID" 2>/dev/null || true
	[ -z "$RESTORED" ] || "${AS_SERVER_USER[@]}" "$PG_BIN/pg_ctl" -D "$RESTORED" -m immediate -w stop >/dev/null 2>&1 || true
	pg_throwaway_stop
	rm -rf "$SCRATCH"
	[ -z "$PG_THROWAWAY_DIR" ] || rm -rf "$PG_THROWAWAY_DIR"
}
trap cleanup EXIT
say "starting a PostgreSQL $("$PG_BIN/postgres" --version | grep -o '[0-9][0-9]*' | head -1) server (${PG_SETTINGS[*]}; fsync on)"
pg_throwaway_start "$WORK/pg-pitr" "$PG_BIN" "${PG_SETTINGS[@]}"
BASE="$PG_URL_BASE"
SRC="$BASE/shop"

say "generating the database ($ROWS orders; bench/postgres/generate.sql)"
$PSQL "$BASE/postgres" -c "CREATE DATABASE shop"
$PSQL "$SRC" -v rows="$ROWS" -f bench/postgres/generate.sql >"$LOGS/generate.log"
SRC_MB=$(($($PSQL -At "$SRC" -c "SELECT pg_database_size(current_database())") / 1024 / 1024))
echo "    database: $SRC_MB MB (pg_database_size)"

declare -A WALL RSS
DEST="$SCRATCH/archive"

say "starting the WAL archiver (pg_receivewal over the slot pgharbor)"
"${AS_SERVER_USER[@]}" "$PGHARBOR" archive "$BASE/postgres" --to "$DEST" --spool "$SCRATCH/spool" \
	>"$LOGS/archive.out" 2>"$LOGS/archive.err" &
ARCHIVER_PID=$!
sleep 2

say "pgharbor base-backup (pg_basebackup -Ft -X fetch | zstd -3 on every core, hashed, one pass)"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pgharbor-base "${AS_SERVER_USER[@]}" "$PGHARBOR" base-backup "$BASE/postgres" --to "$DEST" --no-row-counts --json
H_BYTES=$(python3 -c "import json; print(json.load(open('$LOGS/pgharbor-base.out'))['manifest']['files'][0]['size'])" 2>/dev/null || echo 0)

say "pgharbor base-backup with its row-count marker (the default: every table counted after it)"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pgharbor-base-marker "${AS_SERVER_USER[@]}" "$PGHARBOR" base-backup "$BASE/postgres" --to "$DEST" --json

say "pg_basebackup -Ft -X fetch -z (gzip)"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pg_basebackup-z "${AS_SERVER_USER[@]}" "$PG_BIN/pg_basebackup" -d "$BASE/postgres" -D "$SCRATCH/gzip" -Ft -X fetch -z -c fast
G_BYTES=$(du -cb "$SCRATCH"/gzip/*.tar.gz 2>/dev/null | tail -1 | cut -f1 || echo 0)
rm -rf "$SCRATCH/gzip"

say "pg_basebackup -Ft -X fetch -Z zstd"
$PSQL "$BASE/postgres" -c CHECKPOINT
measure pg_basebackup-zstd "${AS_SERVER_USER[@]}" "$PG_BIN/pg_basebackup" -d "$BASE/postgres" -D "$SCRATCH/zstd" -Ft -X fetch -Z zstd -c fast
Z_BYTES=$(du -cb "$SCRATCH"/zstd/*.tar.zst 2>/dev/null | tail -1 | cut -f1 || echo 0)
rm -rf "$SCRATCH/zstd"

say "WAL archiving under pgbench -c 4 -j 2 -T $PGBENCH_SECONDS"
$PSQL "$BASE/postgres" -c "CREATE DATABASE bench"
"$PG_BIN/pgbench" -i -q -s 20 "$BASE/bench" >"$LOGS/pgbench-init.log" 2>&1
# What the archive holds before the load: everything up to a switched segment.
wait_archived() { until [ -f "$DEST/wal/$1.json" ]; do sleep 0.2; done; }
stored_bytes() { du -cb "$DEST"/wal/*.zst 2>/dev/null | tail -1 | cut -f1; }
wait_archived "$($PSQL -At "$BASE/postgres" -c "SELECT pg_walfile_name(pg_switch_wal())")"
FILES_BEFORE=$(find "$DEST/wal" -name '*.json' | wc -l)
STORED_BEFORE=$(stored_bytes)
START_LSN=$($PSQL -At "$BASE/postgres" -c "SELECT pg_current_wal_lsn()")
"$PG_BIN/pgbench" -c 4 -j 2 -T "$PGBENCH_SECONDS" "$BASE/bench" >"$LOGS/pgbench.log" 2>&1
END_LSN=$($PSQL -At "$BASE/postgres" -c "SELECT pg_current_wal_lsn()")
LAST=$($PSQL -At "$BASE/postgres" -c "SELECT pg_walfile_name(pg_switch_wal())")
load_end=$(date +%s.%N)
wait_archived "$LAST"
CATCH_UP=$(python3 -c "print(f'{$(date +%s.%N) - $load_end:.1f}')")
WAL_BYTES=$($PSQL -At "$BASE/postgres" -c "SELECT pg_wal_lsn_diff('$END_LSN', '$START_LSN')")
SEGMENTS=$(($(find "$DEST/wal" -name '*.json' | wc -l) - FILES_BEFORE))
SEGMENT_BYTES=$((SEGMENTS * 16 * 1048576))
ARCHIVED_BYTES=$(($(stored_bytes) - STORED_BEFORE))
TPS=$(grep -o 'tps = [0-9.]*' "$LOGS/pgbench.log" | head -1 | cut -d' ' -f3)
echo "    pgbench: $TPS tps; WAL written: $((WAL_BYTES / 1048576)) MB in ${PGBENCH_SECONDS}s; archived: $SEGMENTS segments ($((SEGMENT_BYTES / 1048576)) MB) stored in $((ARCHIVED_BYTES / 1048576)) MB; the last archived $CATCH_UP s after the load"

say "pgharbor restore --latest --start (base backup + every archived WAL file, replayed)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RESTORED="$SCRATCH/restored"
measure pgharbor-restore "${AS_SERVER_USER[@]}" "$PGHARBOR" restore "$DEST" --pgdata "$RESTORED" --latest \
	--port "$PORT" --set "unix_socket_directories=$SCRATCH" --start
SRC_PRINT=$(fingerprint "$SRC")
check pgharbor-restore "postgresql://postgres@127.0.0.1:$PORT/shop"

kill -TERM "$ARCHIVER_PID"
wait "$ARCHIVER_PID" || true
ARCHIVER_PID=""

# ---------------------------------------------------------------- results
mb() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }
say "results ($SRC_MB MB database; $("$PG_BIN/postgres" --version); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d))"
printf '    %-20s %10s %10s %12s\n' step "wall (s)" "RSS (MB)" "stored (MB)"
printf '    %-20s %10s %10s %12s\n' pgharbor-base "${WALL[pgharbor-base]}" "${RSS[pgharbor-base]}" "$(mb "$H_BYTES")"
printf '    %-20s %10s %10s\n' pgharbor-base-marker "${WALL[pgharbor-base-marker]}" "${RSS[pgharbor-base-marker]}"
printf '    %-20s %10s %10s %12s\n' pg_basebackup-z "${WALL[pg_basebackup-z]}" "${RSS[pg_basebackup-z]}" "$(mb "$G_BYTES")"
printf '    %-20s %10s %10s %12s\n' pg_basebackup-zstd "${WALL[pg_basebackup-zstd]}" "${RSS[pg_basebackup-zstd]}" "$(mb "$Z_BYTES")"
printf '    %-20s %10s %10s\n' pgharbor-restore "${WALL[pgharbor-restore]}" "${RSS[pgharbor-restore]}"
echo
echo "    base backup time: pg_basebackup -z / pgharbor       = $(ratio "${WALL[pg_basebackup-z]}" "${WALL[pgharbor-base]}")"
echo "    base backup time: pg_basebackup -Z zstd / pgharbor  = $(ratio "${WALL[pg_basebackup-zstd]}" "${WALL[pgharbor-base]}")"
echo "    base backup time with the row-count marker / without = $(ratio "${WALL[pgharbor-base-marker]}" "${WALL[pgharbor-base]}")"
echo "    size: pg_basebackup -z / pgharbor                   = $(ratio "$G_BYTES" "$H_BYTES")"
echo "    size: pg_basebackup -Z zstd / pgharbor              = $(ratio "$Z_BYTES" "$H_BYTES")"
echo "    WAL: $(python3 -c "print(f'{$WAL_BYTES / 1048576 / $PGBENCH_SECONDS:.1f}')") MB/s written under pgbench, archived within $CATCH_UP s of the load's end; segments / stored = $(ratio "$SEGMENT_BYTES" "$ARCHIVED_BYTES")"
