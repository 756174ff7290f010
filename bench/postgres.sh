#!/usr/bin/env bash
# PostgreSQL → PostgreSQL benchmark: copying a whole database from one server to another,
# pgharbor against pgcopydb and pg_dump/pg_restore, same data, same servers, one run.
# Not part of CI (it copies ~0.5 GB five times).
#
#   bash bench/postgres.sh                    # ~470 MB source database (700,000 orders)
#   ROWS=200000 bash bench/postgres.sh        # quick run (~150 MB)
#   bash bench/postgres.sh --reuse-source     # keep the generated source cluster in
#                                             # .cache/bench/pg-pgsrc and reuse it next time
#   bash bench/postgres.sh --keep             # leave both servers (and databases) running
#   PGHARBOR_BIN=path bash bench/postgres.sh  # measure that binary instead of building one
#   PGHARBOR_BEFORE=path bash bench/postgres.sh  # also measure an earlier build, same run
#
# Two throwaway PostgreSQL 16 servers (/opt/pgharbor/pg16, from scripts/setup.sh), a source
# and a target, with the same settings. Measured, each into a fresh empty database of the
# target (the previous one is dropped first, then both servers checkpoint):
#   pgharbor            migrate SRC DST --jobs 2 (verifies, the default), and --no-verify
#   pgharbor-before     PGHARBOR_BEFORE's binary, the same verified run, when set
#   pgcopydb            clone --table-jobs 2 --index-jobs 2 (Debian's 0.10), and the same with
#                       --split-tables-larger-than 64MB (pgharbor's own split threshold)
#   pg_dump|pg_restore  pg_dump -Fd -j2 to a directory, then pg_restore -j2
# Wall time and peak RSS (GNU time -v: the largest single client process) for each;
# pgharbor's phase split from its --json report; each result is checked (exact row count
# of every table, number of indexes and constraints) against the source before its time
# is used; ratios peer / pgharbor (> 1: pgharbor faster).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ROWS="${ROWS:-700000}" # rows of the big table; 700,000 gives ~470 MB (pg_database_size)
KEEP=0
REUSE=0
for arg in "$@"; do
	case "$arg" in
	--keep) KEEP=1 ;;
	--reuse-source) REUSE=1 ;;
	-h | --help)
		sed -n '2,25p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg (ROWS=<n> env var, --reuse-source, --keep)" >&2
		exit 2
		;;
	esac
done
WORK="$REPO/.cache/bench"
LOGS="$WORK/postgres-logs"
SCRATCH="$WORK/postgres-scratch" # pgcopydb --dir and pg_dump -Fd directories
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
PGHARBOR="${PGHARBOR_BIN:-$REPO/target/release/pgharbor}"
# The same settings for both servers and every tool. fsync and full_page_writes stay on
# (durable, as in production); the rest keeps checkpoints out of the runs and gives index
# builds memory. The machine has 24 GB of RAM: the data stays in the page cache, so the
# runs are CPU-bound.
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
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v pgcopydb >/dev/null 2>&1 || need+=(pgcopydb)
if [ "${#need[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi
echo "    $("$PG_BIN/postgres" --version); $(pgcopydb --version 2>/dev/null | grep -m1 'pgcopydb version')"

HAVE_PGHARBOR=1
if [ -n "${PGHARBOR_BIN:-}" ]; then
	echo "    using PGHARBOR_BIN=$PGHARBOR_BIN"
else
	# Other work may leave the workspace briefly unbuildable: retry a few times.
	for attempt in 1 2 3; do
		if cargo build --release -q -p pgharbor 2>"$LOGS/cargo.log"; then break; fi
		if [ "$attempt" -eq 3 ]; then
			HAVE_PGHARBOR=0
			echo "    cargo build --release -p pgharbor FAILED: pgharbor is skipped (log: $LOGS/cargo.log)"
			tail -5 "$LOGS/cargo.log" | sed 's/^/        /'
		else
			echo "    build failed (attempt $attempt), retrying in 60 s"
			sleep 60
		fi
	done
fi

# ---------------------------------------------------------------- servers
# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
# throwaway-pg.sh keeps one server in globals: keep each server's copy of them here.
SRC_DIR="" SRC_TMP=0 DST_DIR="" DST_TMP=0

stop_servers() {
	local dir tmp
	for pair in "$SRC_DIR:$SRC_TMP" "$DST_DIR:$DST_TMP"; do
		IFS=: read -r dir tmp <<<"$pair"
		[ -n "$dir" ] || continue
		PG_THROWAWAY_DIR="$dir" PG_THROWAWAY_BIN="$PG_BIN" PG_THROWAWAY_IS_TMP="$tmp"
		pg_throwaway_stop
	done
	rm -rf "$SCRATCH"
	# Nothing is cached across runs unless --reuse-source says so.
	[ "$REUSE" -eq 1 ] || [ -z "$SRC_DIR" ] || rm -rf "$SRC_DIR"
	[ -z "$DST_DIR" ] || rm -rf "$DST_DIR"
}
if [ "$KEEP" -eq 0 ]; then trap stop_servers EXIT; fi

# restart_cached_source DIR: start a source cluster generated by an earlier --reuse-source run
# (pg_throwaway_start would initdb over it). Sets PG_URL_BASE like pg_throwaway_start.
restart_cached_source() {
	local d="$1" opts setting
	PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	opts="-p $PG_PORT -k $d/sock -c listen_addresses=127.0.0.1"
	for setting in "${PG_SETTINGS[@]}"; do opts="$opts -c $setting"; done
	pg_throwaway_run "$PG_BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 -o "$opts" start >/dev/null
	PG_URL_BASE="postgresql://postgres@127.0.0.1:$PG_PORT"
	PG_THROWAWAY_DIR="$d" PG_THROWAWAY_IS_TMP=0
}

say "starting two PostgreSQL 16 servers: source and target (${PG_SETTINGS[*]}; fsync on)"
# --reuse-source: generated-ROWS.json, written after a complete generation, marks the cluster
if [ "$REUSE" -eq 1 ] && [ -f "$WORK/pg-pgsrc/generated-$ROWS.json" ] && [ -d "$WORK/pg-pgsrc/data" ]; then
	restart_cached_source "$WORK/pg-pgsrc"
	GENERATE=0
else
	pg_throwaway_start "$WORK/pg-pgsrc" "$PG_BIN" "${PG_SETTINGS[@]}"
	GENERATE=1
fi
SRC_DIR="$PG_THROWAWAY_DIR" SRC_TMP="$PG_THROWAWAY_IS_TMP" SRC_BASE="$PG_URL_BASE"
STAMP="$SRC_DIR/generated-$ROWS.json"
[ "$GENERATE" -eq 0 ] || rm -f "$SRC_DIR"/generated-*.json
pg_throwaway_start "$WORK/pg-pgdst" "$PG_BIN" "${PG_SETTINGS[@]}"
DST_DIR="$PG_THROWAWAY_DIR" DST_TMP="$PG_THROWAWAY_IS_TMP" DST_BASE="$PG_URL_BASE"
SRC="$SRC_BASE/shop"
echo "    source $SRC_BASE ($SRC_DIR), target $DST_BASE ($DST_DIR)"

# ---------------------------------------------------------------- source database
if [ "$GENERATE" -eq 1 ]; then
	say "generating the source database ($ROWS orders; bench/postgres/generate.sql)"
	$PSQL "$SRC_BASE/postgres" -c "CREATE DATABASE shop"
	start=$(date +%s.%N)
	$PSQL "$SRC" -v rows="$ROWS" -f bench/postgres/generate.sql >"$LOGS/generate.log"
	GEN_S=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
	echo "{\"rows\": $ROWS, \"seconds\": $GEN_S}" >"$STAMP"
else
	GEN_S="$(python3 -c "import json; print(json.load(open('$STAMP'))['seconds'])") (cached)"
fi
SRC_BYTES=$($PSQL -At "$SRC" -c "SELECT pg_database_size(current_database())")
SRC_MB=$((SRC_BYTES / 1024 / 1024))
echo "    source database: $SRC_MB MB (pg_database_size), generated in $GEN_S s; tables:"
$PSQL -At -F ' ' "$SRC" -c "SELECT format('%-12s %10s rows %8s', c.relname, c.reltuples::bigint, pg_size_pretty(pg_total_relation_size(c.oid)))
	FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ORDER BY pg_total_relation_size(c.oid) DESC" | sed 's/^/        /'
[ "$SRC_MB" -ge 400 ] || echo "    (below 400 MB: ROWS=$ROWS; the default 700000 gives ~470 MB)"

SRC_PRINT=$(fingerprint "$SRC")
echo "    fingerprint: $SRC_PRINT"

# ---------------------------------------------------------------- measuring
declare -A WALL RSS
# fresh_target DB: drop the previous run's database (the target holds one copy at a time),
# create an empty one, and checkpoint both servers so no run pays for the previous one's
# dirty buffers.
PREV_DB=""
fresh_target() {
	if [ -n "$PREV_DB" ] && [ "$KEEP" -eq 0 ]; then
		$PSQL "$DST_BASE/postgres" -c "DROP DATABASE IF EXISTS $PREV_DB"
	fi
	$PSQL "$DST_BASE/postgres" -c "CREATE DATABASE $1"
	$PSQL "$DST_BASE/postgres" -c CHECKPOINT
	$PSQL "$SRC_BASE/postgres" -c CHECKPOINT
	PREV_DB="$1"
}

export PGHARBOR_PG_BIN="$PG_BIN" # pgharbor needs a pg_dump >= the source's major version (16)
if [ "$HAVE_PGHARBOR" -eq 1 ]; then
	say "pgharbor migrate --jobs 2 (with verification, the default)"
	fresh_target h_verify
	echo "    $PGHARBOR migrate $SRC $DST_BASE/h_verify --jobs 2 --json"
	measure pgharbor "$PGHARBOR" migrate "$SRC" "$DST_BASE/h_verify" --jobs 2 --json
	check pgharbor "$DST_BASE/h_verify"

	say "pgharbor migrate --jobs 2 --no-verify"
	fresh_target h_noverify
	measure pgharbor-no-verify "$PGHARBOR" migrate "$SRC" "$DST_BASE/h_noverify" --jobs 2 --no-verify --json
	check pgharbor-no-verify "$DST_BASE/h_noverify"
else
	WALL[pgharbor]=failed WALL[pgharbor-no-verify]=failed RSS[pgharbor]=- RSS[pgharbor-no-verify]=-
fi
if [ -n "${PGHARBOR_BEFORE:-}" ]; then
	say "the earlier build PGHARBOR_BEFORE=$PGHARBOR_BEFORE: migrate --jobs 2 (with verification)"
	fresh_target h_before
	measure pgharbor-before "$PGHARBOR_BEFORE" migrate "$SRC" "$DST_BASE/h_before" --jobs 2 --json
	check pgharbor-before "$DST_BASE/h_before"
fi

# pgcopydb runs pg_dump/pg_restore from PATH (0.10 has no option for them): put the PG16
# client first so the dump is made by a pg_dump as new as the source.
say "pgcopydb clone --table-jobs 2 --index-jobs 2"
fresh_target pcd
measure pgcopydb env PATH="$PG_BIN:$PATH" pgcopydb clone --source "$SRC" --target "$DST_BASE/pcd" \
	--table-jobs 2 --index-jobs 2 --dir "$SCRATCH/pgcopydb"
check pgcopydb "$DST_BASE/pcd"
rm -rf "$SCRATCH/pgcopydb"

say "pgcopydb clone --table-jobs 2 --index-jobs 2 --split-tables-larger-than 64MB"
fresh_target pcd_split
measure pgcopydb-split env PATH="$PG_BIN:$PATH" pgcopydb clone --source "$SRC" --target "$DST_BASE/pcd_split" \
	--table-jobs 2 --index-jobs 2 --split-tables-larger-than 64MB --dir "$SCRATCH/pgcopydb-split"
check pgcopydb-split "$DST_BASE/pcd_split"
rm -rf "$SCRATCH/pgcopydb-split"

# pg_dump's directory format compresses (gzip) by default: that is what users run.
say "pg_dump -Fd -j2, then pg_restore -j2"
fresh_target restore
measure pg_dump "$PG_BIN/pg_dump" -Fd -j2 -f "$SCRATCH/dump" "$SRC"
DUMP_MB=$(du -sm "$SCRATCH/dump" 2>/dev/null | cut -f1 || echo "?")
echo "    dump directory: $DUMP_MB MB"
if [ "${WALL[pg_dump]}" != failed ]; then
	measure pg_restore "$PG_BIN/pg_restore" -j2 -d "$DST_BASE/restore" "$SCRATCH/dump"
else
	WALL[pg_restore]=failed RSS[pg_restore]=-
fi
rm -rf "$SCRATCH/dump"
if [ "${WALL[pg_dump]}" != failed ] && [ "${WALL[pg_restore]}" != failed ]; then
	WALL[pg_dump+pg_restore]=$(python3 -c "print(f'{${WALL[pg_dump]} + ${WALL[pg_restore]}:.2f}')")
	RSS[pg_dump+pg_restore]=$(("${RSS[pg_dump]}" > "${RSS[pg_restore]}" ? "${RSS[pg_dump]}" : "${RSS[pg_restore]}"))
else
	WALL[pg_dump+pg_restore]=failed RSS[pg_dump+pg_restore]=-
fi
check pg_dump+pg_restore "$DST_BASE/restore"

# ---------------------------------------------------------------- results
# phases NAME: "schema data post_data verify total" from pgharbor's --json report.
phases() {
	python3 - "$LOGS/$1.out" <<'EOF' 2>/dev/null || echo "- - - - -"
import json, sys
s = json.load(open(sys.argv[1]))["seconds"]
print(" ".join(f"{s[k]:.2f}" for k in ("schema", "data", "post_data", "verify", "total")))
EOF
}

say "results ($SRC_MB MB source, $ROWS orders; PostgreSQL 16 -> 16; $(nproc) cores; $(date -u +%Y-%m-%d))"
printf '    %-20s %10s %10s %16s\n' tool "wall (s)" "RSS (MB)" "vs pgharbor"
MEASURED=(pgharbor pgharbor-no-verify)
[ -z "${PGHARBOR_BEFORE:-}" ] || MEASURED+=(pgharbor-before)
for name in "${MEASURED[@]}" pgcopydb pgcopydb-split pg_dump pg_restore pg_dump+pg_restore; do
	printf '    %-20s %10s %10s %16s\n' "$name" "${WALL[$name]}" "${RSS[$name]}" "$(ratio "${WALL[$name]}" "${WALL[pgharbor]}")"
done
echo "    (RSS: the largest single client process; 'vs pgharbor' = its time / pgharbor's with verification)"
echo
for name in "${MEASURED[@]}"; do
	[ "${WALL[$name]}" != failed ] || continue
	read -r s_schema s_data s_post s_verify s_total <<<"$(phases "$name")"
	printf '    %-20s phases (--json seconds): schema %s, data %s, post_data %s, verify %s, total %s\n' \
		"$name" "$s_schema" "$s_data" "$s_post" "$s_verify" "$s_total"
done
echo
[ -z "${PGHARBOR_BEFORE:-}" ] || echo "    the earlier build / pgharbor (with verify)  = $(ratio "${WALL[pgharbor-before]}" "${WALL[pgharbor]}")"
echo "    pgcopydb / pgharbor (with verify)           = $(ratio "${WALL[pgcopydb]}" "${WALL[pgharbor]}")"
echo "    pgcopydb --split-tables / pgharbor          = $(ratio "${WALL[pgcopydb-split]}" "${WALL[pgharbor]}")"
echo "    (pg_dump + pg_restore) / pgharbor           = $(ratio "${WALL[pg_dump+pg_restore]}" "${WALL[pgharbor]}")"
echo "    pgcopydb / pgharbor --no-verify             = $(ratio "${WALL[pgcopydb]}" "${WALL[pgharbor-no-verify]}")"
echo "    (pg_dump + pg_restore) / pgharbor --no-verify = $(ratio "${WALL[pg_dump+pg_restore]}" "${WALL[pgharbor-no-verify]}")"
if num "${WALL[pgharbor]}" && num "${WALL[pgharbor-no-verify]}"; then
	read -r _ _ _ v_verify v_total <<<"$(phases pgharbor)"
	python3 - "${WALL[pgharbor]}" "${WALL[pgharbor-no-verify]}" "$v_verify" "$v_total" <<'EOF'
import sys
wall, noverify = float(sys.argv[1]), float(sys.argv[2])
diff = wall - noverify
print(f"    verification cost: {diff:.2f} s of wall time = {100 * diff / wall:.1f} % of the verified run "
      f"(wall with - without)", end="")
try:
    v, t = float(sys.argv[3]), float(sys.argv[4])
    print(f"; its own verify phase: {v:.2f} s = {100 * v / t:.1f} % of its total {t:.2f} s")
except ValueError:
    print()
EOF
fi
echo "    (logs in $LOGS)"
if [ "$KEEP" -eq 1 ]; then
	echo "    servers kept: source $SRC_BASE (shop), target $DST_BASE (h_verify, h_noverify, pcd, pcd_split, restore); stop them with"
	echo "    runuser -u postgres -- $PG_BIN/pg_ctl -D $SRC_DIR/data stop; runuser -u postgres -- $PG_BIN/pg_ctl -D $DST_DIR/data stop"
fi
