#!/usr/bin/env bash
# Install what pgharbor's tests and demo need. Idempotent: a second run only
# checks files and finishes in well under a second.
#
#   * Debian packages: postgresql-15 (server + client, /usr/lib/postgresql/15/bin), sqlite3,
#     mmdebstrap, umoci and patchelf (the container image, scripts/image.sh)
#   * <repo>/.venv with the PyPI package `pgserver` (PostgreSQL 16 + pgvector binaries)
#   * <repo>/.cache/moto (moto's S3 server) and <repo>/.cache/azurite (Azurite), pinned
#   * <repo>/.cache/deploy-check with kubernetes-validate (scripts/check-deploy.py), pinned
#   * as root: a copy of pgserver's binaries in /opt/pgharbor/pg16 that the
#     `postgres` user can execute (clusters run as `postgres` when we are root,
#     and the repository may live under a directory `postgres` cannot enter).
#
# The test harness (crates/testkit) looks for the PostgreSQL 16 binaries in
# $PGHARBOR_PG16_BIN, then /opt/pgharbor/pg16/bin, then the venv.
set -euo pipefail

PGSERVER_VERSION=0.1.4 # ships PostgreSQL 16.2 + pgvector 0.6.2
PG15_BIN=/usr/lib/postgresql/15/bin
PG16_ROOT=/opt/pgharbor/pg16

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: ERROR: %s\n' "$*" >&2
	exit 1
}

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

as_root() {
	if [ "$IS_ROOT" -eq 1 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@" || die "'$*' needs root (sudo -n failed); run this script as root"
	else
		die "'$*' needs root; run this script as root"
	fi
}

# ---------------------------------------------------------------- apt packages
apt_missing=()
[ -x "$PG15_BIN/initdb" ] && [ -x "$PG15_BIN/postgres" ] && [ -x "$PG15_BIN/pg_ctl" ] || apt_missing+=(postgresql-15)
[ -x "$PG15_BIN/psql" ] && [ -x "$PG15_BIN/pg_dump" ] || apt_missing+=(postgresql-client-15)
command -v sqlite3 >/dev/null 2>&1 || apt_missing+=(sqlite3)
[ -x /usr/bin/redis-server ] || apt_missing+=(redis-server) # throwaway Redis servers in the health tests
command -v zstd >/dev/null 2>&1 || apt_missing+=(zstd) # backup tests restore with `zstd -dc | pg_restore`
command -v age >/dev/null 2>&1 || apt_missing+=(age)   # backup tests decrypt with the age CLI
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3 python3-venv)
command -v mmdebstrap >/dev/null 2>&1 || apt_missing+=(mmdebstrap) # the container image's root filesystem (scripts/image.sh)
command -v umoci >/dev/null 2>&1 || apt_missing+=(umoci)           # packs it as an OCI image
command -v patchelf >/dev/null 2>&1 || apt_missing+=(patchelf)     # links the image's PostgreSQL 16 tools to Debian's libpq

if [ "${#apt_missing[@]}" -gt 0 ]; then
	say "installing Debian packages: ${apt_missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q --no-install-recommends "${apt_missing[@]}" >/tmp/pgharbor-apt.log 2>&1; then
		say "apt-get install failed; running apt-get update and retrying"
		as_root apt-get update -q >>/tmp/pgharbor-apt.log 2>&1 || die "apt-get update failed (log: /tmp/pgharbor-apt.log)"
		as_root apt-get install -y -q --no-install-recommends "${apt_missing[@]}" >>/tmp/pgharbor-apt.log 2>&1 ||
			die "apt-get install ${apt_missing[*]} failed (log: /tmp/pgharbor-apt.log)"
	fi
	[ -x "$PG15_BIN/initdb" ] || die "postgresql-15 installed but $PG15_BIN/initdb is missing"
fi

if [ "$IS_ROOT" -eq 1 ]; then
	id -u postgres >/dev/null 2>&1 || die "user 'postgres' does not exist (it comes with postgresql-common)"
	command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
fi

# ------------------------------------------------------------- python + pgserver
site_packages() {
	local d
	for d in "$VENV"/lib/python3*/site-packages; do
		[ -d "$d" ] && {
			printf '%s\n' "$d"
			return 0
		}
	done
	return 1
}

SITE="$(site_packages || true)"
if [ -z "$SITE" ] || [ ! -x "$VENV/bin/python" ]; then
	say "creating Python venv at $VENV"
	python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
	SITE="$(site_packages)" || die "venv at $VENV has no site-packages"
fi

if [ ! -d "$SITE/pgserver-$PGSERVER_VERSION.dist-info" ] || [ ! -x "$SITE/pgserver/pginstall/bin/postgres" ]; then
	say "installing pgserver==$PGSERVER_VERSION into $VENV"
	"$VENV/bin/python" -m pip install --disable-pip-version-check -q "pgserver==$PGSERVER_VERSION" ||
		die "pip install pgserver==$PGSERVER_VERSION failed"
	[ -x "$SITE/pgserver/pginstall/bin/postgres" ] || die "pgserver installed but $SITE/pgserver/pginstall/bin/postgres is missing"
fi

# ------------------------------------------- PG16 binaries usable by `postgres`
# pgserver's client binaries find their libpq through RPATH
# $ORIGIN/../../../pgserver.libs, so the copy keeps the site-packages layout:
#   /opt/pgharbor/pg16/pgserver/pginstall/{bin,lib,share}
#   /opt/pgharbor/pg16/pgserver.libs/
#   /opt/pgharbor/pg16/bin -> pgserver/pginstall/bin
PG16_BIN_OUT="$SITE/pgserver/pginstall/bin"
if [ "$IS_ROOT" -eq 1 ]; then
	stamp="$PG16_ROOT/.pgserver-version"
	if [ "$(cat "$stamp" 2>/dev/null || true)" != "$PGSERVER_VERSION" ] || [ ! -x "$PG16_ROOT/bin/postgres" ]; then
		say "copying pgserver $PGSERVER_VERSION binaries to $PG16_ROOT"
		tmp="$PG16_ROOT.tmp.$$"
		rm -rf "$tmp"
		mkdir -p "$tmp/pgserver"
		cp -a "$SITE/pgserver/pginstall" "$tmp/pgserver/pginstall"
		cp -a "$SITE/pgserver.libs" "$tmp/pgserver.libs"
		ln -s pgserver/pginstall/bin "$tmp/bin"
		printf '%s\n' "$PGSERVER_VERSION" >"$tmp/.pgserver-version"
		chmod -R a+rX "$tmp"
		chmod 755 "$(dirname "$PG16_ROOT")"
		rm -rf "$PG16_ROOT"
		mv "$tmp" "$PG16_ROOT"
		# Prove it for real: the postgres user must be able to run server and client.
		runuser -u postgres -- "$PG16_ROOT/bin/postgres" --version >/dev/null ||
			die "user postgres cannot run $PG16_ROOT/bin/postgres"
		runuser -u postgres -- "$PG16_ROOT/bin/psql" --version >/dev/null ||
			die "user postgres cannot run $PG16_ROOT/bin/psql (libpq from pgserver.libs not found?)"
		runuser -u postgres -- test -r "$PG16_ROOT/pgserver/pginstall/share/postgresql/extension/vector.control" ||
			die "pgvector extension files not readable by postgres in $PG16_ROOT"
	fi
	PG16_BIN_OUT="$PG16_ROOT/bin"
	# Cheap check that Debian's binaries are usable by postgres as well.
	runuser -u postgres -- test -x "$PG15_BIN/initdb" || die "user postgres cannot execute $PG15_BIN/initdb"
fi

# ------------------------------- S3 (moto) and Azure Blob (Azurite) test servers
# The backup destinations' tests (crates/objstore) run moto's S3 server and
# Azurite on loopback (crates/testkit's S3Server and AzuriteServer):
#   * moto[server] (pinned) in its own venv, <repo>/.cache/moto/bin/moto_server
#   * azurite (pinned) with npm into <repo>/.cache/azurite/node_modules/.bin/azurite-blob
# A second run only reads two version files.
MOTO_VERSION=5.2.5
AZURITE_VERSION=3.37.0
MOTO_VENV="$REPO/.cache/moto"
AZURITE_DIR="$REPO/.cache/azurite"

if [ "$(cat "$MOTO_VENV/.moto-version" 2>/dev/null || true)" != "$MOTO_VERSION" ] || [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
	say "installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
	[ -x "$MOTO_VENV/bin/python" ] || python3 -m venv "$MOTO_VENV" || die "python3 -m venv $MOTO_VENV failed"
	"$MOTO_VENV/bin/python" -m pip install --disable-pip-version-check -q "moto[server]==$MOTO_VERSION" ||
		die "pip install moto[server]==$MOTO_VERSION failed"
	[ -x "$MOTO_VENV/bin/moto_server" ] || die "moto installed but $MOTO_VENV/bin/moto_server is missing"
	printf '%s\n' "$MOTO_VERSION" >"$MOTO_VENV/.moto-version"
fi

azurite_installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null | head -1 || true)"
if [ "$azurite_installed" != "$AZURITE_VERSION" ] || [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
	command -v npm >/dev/null 2>&1 || die "npm not found (Node.js is needed for Azurite)"
	say "installing azurite@$AZURITE_VERSION into $AZURITE_DIR"
	mkdir -p "$AZURITE_DIR"
	[ -f "$AZURITE_DIR/package.json" ] || printf '{ "name": "pgharbor-azurite", "private": true }\n' >"$AZURITE_DIR/package.json"
	(cd "$AZURITE_DIR" && npm install --no-audit --no-fund --silent --save-exact "azurite@$AZURITE_VERSION") ||
		die "npm install azurite@$AZURITE_VERSION failed"
	[ -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] || die "azurite installed but azurite-blob is missing"
fi

# ------------------------- deploy/ recipes' checker (scripts/check-deploy.py)
# kubernetes-validate (pinned) ships the Kubernetes API schemas and validates
# offline; its venv is <repo>/.cache/deploy-check.
KUBERNETES_VALIDATE_VERSION=1.37.0
DEPLOY_CHECK_VENV="$REPO/.cache/deploy-check"
if [ "$(cat "$DEPLOY_CHECK_VENV/.kubernetes-validate-version" 2>/dev/null || true)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
	say "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $DEPLOY_CHECK_VENV"
	[ -x "$DEPLOY_CHECK_VENV/bin/python" ] || python3 -m venv "$DEPLOY_CHECK_VENV" || die "python3 -m venv $DEPLOY_CHECK_VENV failed"
	"$DEPLOY_CHECK_VENV/bin/python" -m pip install --disable-pip-version-check -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ||
		die "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION failed"
	printf '%s\n' "$KUBERNETES_VALIDATE_VERSION" >"$DEPLOY_CHECK_VENV/.kubernetes-validate-version"
fi

# ------------------------------- Chromium + playwright-core (dashboard browser test)
bash "$REPO/scripts/browser-setup.sh"

say "ok: PG15 $PG15_BIN, PG16+pgvector $PG16_BIN_OUT, moto $MOTO_VERSION, azurite $AZURITE_VERSION"
