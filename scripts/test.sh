#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite:
#   setup (idempotent) -> rustfmt check -> clippy (warnings are errors) -> tests.
# Before the tests, one PostgreSQL cluster per flavour (15, 16 + pgvector) is
# started for the whole run (crates/testkit's pgharbor-test-servers) and its
# URL exported in PGHARBOR_TEST_PG15_URL / PGHARBOR_TEST_PG16_URL; tests that
# need no server of their own get fresh databases on it. Both are stopped on
# every way out of this script. Tests that need their own server still start
# one (crates/testkit), so parallelism is kept low for 2-core machines;
# override with PGHARBOR_TEST_THREADS.
# Extra arguments go to the test runner (e.g. a test name filter).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

THREADS="${PGHARBOR_TEST_THREADS:-2}"
# A CI run builds once from a clean clone: incremental compilation caches
# (2 GB here) would only take disk space.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh
bash scripts/fetch-real-dbs.sh >/dev/null
bash fixtures/django/build.sh --venv >/dev/null
bash fixtures/sqlalchemy/setup.sh >/dev/null
bash fixtures/openwebui/setup.sh >/dev/null
bash fixtures/openwebui/pg16-pgcrypto.sh >/dev/null
bash fixtures/homeassistant/setup.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
	step "cargo nextest run --workspace --no-run"
	cargo nextest run --workspace --no-run
else
	step "cargo test --workspace --no-run (cargo-nextest not installed)"
	cargo test --workspace --no-run
fi

# The shared servers live as long as this script: their starter stops them
# when its standard input (the coprocess pipe) closes, on any exit; if it is
# killed instead, the clusters' own watchdogs stop them.
step "shared PostgreSQL servers"
SERVERS_DIR="$(mktemp -d)"
stop_shared_servers() {
	if [ -n "${SERVERS_PID:-}" ]; then
		eval "exec ${SERVERS_IN}>&-" 2>/dev/null || true
		wait "$SERVERS_PID" 2>/dev/null || true
	fi
	rm -rf "$SERVERS_DIR"
}
trap stop_shared_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
coproc SHARED_SERVERS {
	exec "${CARGO_TARGET_DIR:-$REPO/target}/debug/pgharbor-test-servers" \
		--env-file "$SERVERS_DIR/servers.env" >&2
}
SERVERS_PID=$SHARED_SERVERS_PID
SERVERS_IN=${SHARED_SERVERS[1]}
until [ -s "$SERVERS_DIR/servers.env" ]; do
	if ! kill -0 "$SERVERS_PID" 2>/dev/null; then
		echo "pgharbor-test-servers did not start the shared servers" >&2
		exit 1
	fi
	sleep 0.2
done
set -a
# shellcheck disable=SC1091
. "$SERVERS_DIR/servers.env"
set +a

if cargo nextest --version >/dev/null 2>&1; then
	step "cargo nextest run --workspace (test threads: $THREADS)"
	cargo nextest run --workspace --test-threads "$THREADS" --no-fail-fast "$@"
else
	step "cargo test --workspace (test threads: $THREADS; cargo-nextest not installed)"
	cargo test --workspace --no-fail-fast -- --test-threads "$THREADS" "$@"
fi
