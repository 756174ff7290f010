#!/usr/bin/env bash
# Install what the dashboard's browser test needs, idempotently:
#   * Debian's chromium (/usr/bin/chromium), only when it is missing;
#   * playwright-core (pinned) into <repo>/.cache/browser with npm. It drives the
#     system Chromium; no browser is downloaded (`npx playwright install` is never run).
# A second run only checks two files.
set -euo pipefail

PLAYWRIGHT_CORE_VERSION=1.64.1

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$REPO/.cache/browser"

say() { printf 'browser-setup: %s\n' "$*"; }
die() {
	printf 'browser-setup: ERROR: %s\n' "$*" >&2
	exit 1
}

if [ ! -x /usr/bin/chromium ]; then
	say "installing Debian's chromium"
	as_root=()
	[ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
	export DEBIAN_FRONTEND=noninteractive
	if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >/tmp/pgharbor-apt-chromium.log 2>&1; then
		"${as_root[@]}" apt-get update -q >>/tmp/pgharbor-apt-chromium.log 2>&1 || die "apt-get update failed (log: /tmp/pgharbor-apt-chromium.log)"
		"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >>/tmp/pgharbor-apt-chromium.log 2>&1 ||
			die "apt-get install chromium failed (log: /tmp/pgharbor-apt-chromium.log)"
	fi
	[ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
fi

installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$DIR/node_modules/playwright-core/package.json" 2>/dev/null | head -1 || true)"
if [ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]; then
	command -v npm >/dev/null 2>&1 || die "npm not found (Node.js is needed for the browser test)"
	say "installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $DIR"
	mkdir -p "$DIR"
	[ -f "$DIR/package.json" ] || printf '{ "name": "pgharbor-browser-test", "private": true }\n' >"$DIR/package.json"
	(cd "$DIR" && npm install --no-audit --no-fund --silent --save-exact "playwright-core@$PLAYWRIGHT_CORE_VERSION") ||
		die "npm install playwright-core@$PLAYWRIGHT_CORE_VERSION failed"
fi
say "ok: /usr/bin/chromium, playwright-core $PLAYWRIGHT_CORE_VERSION in $DIR"
