#!/usr/bin/env bash
# The applications' own round trips, too slow to install on every CI run:
#
#   scripts/test-apps.sh [APP...]      # e.g. scripts/test-apps.sh n8n
#
# For each APP (default: every fixtures/APP/ that has both setup.sh and
# roundtrip.sh), run fixtures/APP/setup.sh (installs the real application from
# its registry into .cache/, idempotently) and then fixtures/APP/roundtrip.sh,
# which lets the application create its schema on PostgreSQL 16, moves its
# SQLite data there with pgharbor and reads everything back with the
# application's own code. A summary with each app's time ends the run; the
# exit status is 1 when any app failed.
#
# What every roundtrip.sh gets in its environment:
#   PGHARBOR                 the pgharbor binary (built here: cargo build -p pgharbor)
#   PGHARBOR_TEST_PG16_URL   a PostgreSQL 16 + pgvector server (postgresql://postgres@127.0.0.1:PORT);
#                            the roundtrip creates and drops its own databases on it
# Set PGHARBOR_TEST_PG16_URL to use a running server; otherwise one throwaway
# cluster (scripts/lib/throwaway-pg.sh, the PostgreSQL 16 binaries the test
# harness uses) lives as long as this script.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==> %s\n' "$*"; }

apps=("$@")
if [ ${#apps[@]} -eq 0 ]; then
	for dir in fixtures/*/; do
		[ -f "$dir/setup.sh" ] && [ -f "$dir/roundtrip.sh" ] && apps+=("$(basename "$dir")")
	done
fi
for app in "${apps[@]}"; do
	[ -f "fixtures/$app/roundtrip.sh" ] || {
		echo "test-apps: no fixtures/$app/roundtrip.sh (apps with one: $(cd fixtures && ls -d */roundtrip.sh | cut -d/ -f1 | tr '\n' ' '))" >&2
		exit 2
	}
done

step "cargo build -p pgharbor"
cargo build -p pgharbor
export PGHARBOR="${CARGO_TARGET_DIR:-$REPO/target}/debug/pgharbor"

if [ -z "${PGHARBOR_TEST_PG16_URL:-}" ]; then
	step "PostgreSQL 16 (throwaway cluster)"
	# shellcheck source=lib/throwaway-pg.sh
	source "$REPO/scripts/lib/throwaway-pg.sh"
	PG_HOME="/tmp/pgharbor-test-apps.$$"
	trap 'pg_throwaway_stop; rm -rf "$PG_HOME"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	PG16_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
	pg_throwaway_start "$PG_HOME/pg" "$PG16_BIN" max_connections=200 fsync=off
	export PGHARBOR_TEST_PG16_URL="$PG_URL_BASE"
	echo "$PGHARBOR_TEST_PG16_URL"
fi

declare -A RESULT SECONDS_TAKEN
for app in "${apps[@]}"; do
	step "$app: setup"
	start=$(date +%s)
	if bash "fixtures/$app/setup.sh" >/dev/null; then
		step "$app: roundtrip"
		if bash "fixtures/$app/roundtrip.sh"; then RESULT[$app]=passed; else RESULT[$app]="FAILED (exit $?)"; fi
	else
		RESULT[$app]="FAILED (setup.sh exit $?)"
	fi
	SECONDS_TAKEN[$app]=$(($(date +%s) - start))
done

step "summary"
failed=0
for app in "${apps[@]}"; do
	printf '  %-14s %-22s %5s s (setup + roundtrip)\n' "$app" "${RESULT[$app]}" "${SECONDS_TAKEN[$app]}"
	[ "${RESULT[$app]}" = passed ] || failed=1
done
exit "$failed"
