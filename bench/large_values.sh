#!/usr/bin/env bash
# Memory with very large values: peak RSS of `pgharbor migrate` on webui.db-like files whose chats
# are 14 MB (Open WebUI's largest seen in the field), 10 MB and 50 MB, with --jobs 1 and 2. Not
# part of CI (it writes ~0.7 GB of SQLite files).
#
#   bash bench/large_values.sh                    # every case
#   CASES="14:20" JOBS="2" bash bench/large_values.sh   # value MB:rows pairs, jobs to try
#   PGHARBOR_BIN=path bash bench/large_values.sh  # measure that binary instead of building one
#
# Each file is the real Open WebUI fixture (fixtures/openwebui/webui.db, its tables created by
# Open WebUI's own migrations) with ROWS chats of VALUE MB each added (bench/large_values/gen.py:
# Open WebUI's chat JSON shape, messages twice). `pgharbor migrate FILE URL --nul strip --jobs J`
# into a fresh database of one throwaway PostgreSQL 15 server, verification included. Measured:
# wall time and peak RSS (GNU time -v); printed with (peak - fixed) / (jobs x largest value), the
# multiple of the largest value each worker holds at most, where "fixed" is the peak RSS of the
# same run on the fixture without the large chats.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
CASES="${CASES:-14:20 10:20 50:6}"
JOBS="${JOBS:-1 2}"
WORK="$REPO/.cache/bench"
LOGS="$WORK/large-values-logs"
FILES="$WORK/large-values"
PG_BIN="${PGHARBOR_PG15_BIN:-/usr/lib/postgresql/15/bin}"
mkdir -p "$LOGS" "$FILES"

# shellcheck source=lib/measure.sh
source "$REPO/bench/lib/measure.sh"

say "setup"
if [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi
if [ -z "${PGHARBOR_BIN:-}" ]; then
	cargo build --release -q -p pgharbor
fi
PGHARBOR="${PGHARBOR_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/pgharbor}"
echo "    $PGHARBOR ($("$PGHARBOR" --version))"

# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
cleanup() {
	pg_throwaway_stop
	rm -rf "$FILES"
	[ -z "$PG_THROWAWAY_DIR" ] || rm -rf "$PG_THROWAWAY_DIR"
}
trap cleanup EXIT
say "starting a PostgreSQL 15 server"
pg_throwaway_start "$WORK/pg-large-values" "$PG_BIN"
BASE="$PG_URL_BASE"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"

declare -A WALL RSS
run() { # NAME FILE JOBS
	$PSQL "$BASE/postgres" -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
	measure "$1" "$PGHARBOR" migrate "$2" "$BASE/bench" --nul strip --jobs "$3"
}

say "fixed overhead: the fixture alone"
for jobs in $JOBS; do run "fixture-j$jobs" fixtures/openwebui/webui.db "$jobs"; done

for case in $CASES; do
	value="${case%%:*}" rows="${case##*:}"
	file="$FILES/webui-${value}mb.db"
	say "$rows chats of $value MB"
	python3 bench/large_values/gen.py --out "$file" --value-mb "$value" --rows "$rows" | sed 's/^/    /'
	for jobs in $JOBS; do run "${value}mb-j$jobs" "$file" "$jobs"; done
	rm -f "$file"
done

say "results ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d))"
printf '    %-12s %10s %10s %22s\n' case "wall (s)" "RSS (MB)" "(RSS-fixed)/(jobs*value)"
for jobs in $JOBS; do
	printf '    %-12s %10s %10s\n' "fixture-j$jobs" "${WALL[fixture-j$jobs]}" "${RSS[fixture-j$jobs]}"
done
for case in $CASES; do
	value="${case%%:*}"
	for jobs in $JOBS; do
		name="${value}mb-j$jobs"
		multiple=-
		if num "${RSS[$name]}" && num "${RSS[fixture-j$jobs]}"; then
			multiple=$(python3 -c "print(f'{(${RSS[$name]} - ${RSS[fixture-j$jobs]}) / ($jobs * $value):.1f}')")
		fi
		printf '    %-12s %10s %10s %22s\n' "$name" "${WALL[$name]}" "${RSS[$name]}" "$multiple"
	done
done
