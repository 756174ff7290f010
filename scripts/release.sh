#!/usr/bin/env bash
# Release build: an optimised, stripped `pgharbor` binary in a tarball with
# the licence and the README, plus a SHA-256 checksum file.
#
#   scripts/release.sh [OUT_DIR]      # default OUT_DIR: <repo>/target/release-dist
#
# Produces, for the workspace version VERSION and the machine's architecture:
#   OUT_DIR/pgharbor-VERSION-ARCH-linux.tar.gz          pgharbor (0755), LICENSE, README.md (0644)
#   OUT_DIR/pgharbor-VERSION-ARCH-linux.tar.gz.sha256   `sha256sum -c` checks it
#
# The tarball is reproducible for a given commit: entries sorted by name,
# owned by 0:0, dated at the commit's time, gzip without a timestamp.
# Cargo profile `dist` (Cargo.toml): release optimisation, no debug info,
# symbols stripped. `pgharbor --version` names the commit (crates/cli/build.rs).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT_DIR="${1:-$REPO/target/release-dist}"

say() { printf 'release: %s\n' "$*"; }
die() {
	printf 'release: ERROR: %s\n' "$*" >&2
	exit 1
}

[ -f LICENSE ] || die "LICENSE is missing in $REPO (the workspace declares Apache-2.0)"

say "cargo build --locked --profile dist -p pgharbor"
cargo build --locked --profile dist -p pgharbor
BIN="$REPO/target/dist/pgharbor"

# `pgharbor 0.1.0 (git 0123456789ab)` -> 0.1.0
VERSION="$("$BIN" --version | awk '{ print $2 }')"
[ -n "$VERSION" ] || die "$BIN --version printed no version"
NAME="pgharbor-$VERSION-$(uname -m)-linux"

SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/pgharbor-release.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
install -d -m 0755 "$STAGE/$NAME"
install -m 0755 "$BIN" "$STAGE/$NAME/pgharbor"
install -m 0644 LICENSE README.md "$STAGE/$NAME/"

mkdir -p "$OUT_DIR"
TARBALL="$OUT_DIR/$NAME.tar.gz"
tar --create --sort=name --owner=0 --group=0 --numeric-owner \
	--mtime="@$SOURCE_DATE_EPOCH" --directory="$STAGE" "$NAME" |
	gzip -9 -n >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
chmod 0644 "$TARBALL"
(cd "$OUT_DIR" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
chmod 0644 "$TARBALL.sha256"

say "$TARBALL ($(du -h "$TARBALL" | cut -f1)), binary $(du -h "$BIN" | cut -f1)"
say "$TARBALL.sha256: $(cut -d' ' -f1 "$TARBALL.sha256")"
