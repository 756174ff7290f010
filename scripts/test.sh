#!/usr/bin/env bash
# The one command that sets up and runs the whole test suite:
#   setup (idempotent) -> rustfmt check -> clippy (warnings are errors) -> tests.
# Tests start their own PostgreSQL clusters (crates/testkit), so parallelism
# is kept low for 2-core machines; override with PGHARBOR_TEST_THREADS.
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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
	step "cargo nextest run --workspace (test threads: $THREADS)"
	cargo nextest run --workspace --test-threads "$THREADS" --no-fail-fast "$@"
else
	step "cargo test --workspace (test threads: $THREADS; cargo-nextest not installed)"
	cargo test --workspace --no-fail-fast -- --test-threads "$THREADS" "$@"
fi
