#!/usr/bin/env bash
# The pgharbor container image, built with Debian's mmdebstrap and umoci (no
# Docker engine or registry needed):
#
#   scripts/image.sh rootfs DIR [BINARY]   # the image's root filesystem in DIR
#   scripts/image.sh oci OUT.tar [BINARY]  # an OCI image (layout as a tar), tag pgharbor:VERSION
#
# BINARY defaults to the stripped release build (cargo profile `dist`, built
# here). Without root, run it as root or under `unshare`-capable mmdebstrap.
#
# What the image holds (a Debian bookworm `essential` base, no apt, no
# compiler, no secrets):
#   /usr/local/bin/pgharbor                 the entrypoint (+ /usr/share/doc/pgharbor/LICENSE)
#   ca-certificates                         for TLS to PostgreSQL, S3, Azure
#   /usr/lib/postgresql/15/bin              PostgreSQL 15 client tools (Debian's postgresql-client-15)
#   /usr/lib/postgresql/16/bin              PostgreSQL 16 pg_dump, pg_restore, pg_dumpall, psql,
#                                           pg_isready, from the PyPI wheel pgserver (scripts/setup.sh),
#                                           linked to Debian's libpq5 (TLS) instead of the wheel's
#   user pgharbor (uid/gid 10001), home /home/pgharbor
#
# pgharbor picks the newest pg_dump/pg_restore whose major is at least the
# server's from /usr/lib/postgresql/*/bin (crates/pgtools), so the image backs
# up PostgreSQL servers up to 16. The Dockerfile builds the same image with
# PostgreSQL's apt repository instead and covers 13–17.
#
# A root filesystem directory is reused when it was built from the same
# package list and PostgreSQL 16 tools (stamp file DIR/.pgharbor-image-key);
# only the pgharbor binary is replaced.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
PACKAGES=(ca-certificates postgresql-client-15)
PG16_TOOLS=(pg_dump pg_restore pg_dumpall psql pg_isready)
PG16_ROOT="${PGHARBOR_PG16_ROOT:-/opt/pgharbor/pg16}"
APP_UID=10001
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'image: %s\n' "$*" >&2; }
die() {
	printf 'image: ERROR: %s\n' "$*" >&2
	exit 1
}

# Run a command in the root filesystem DIR the way a container runtime does
# enough of it: own mount and PID namespaces with /proc mounted.
in_rootfs() {
	local dir="$1"
	shift
	unshare --mount --pid --fork --mount-proc="$dir/proc" chroot "$@"
}

# What the base root filesystem is made of: a change rebuilds it.
image_key() {
	{
		printf '%s\n' "$SUITE" "${PACKAGES[@]}" "${PG16_TOOLS[@]}" "$APP_UID" "libpq: Debian's libpq5"
		for tool in "${PG16_TOOLS[@]}"; do sha256sum "$PG16_ROOT/bin/$tool" | cut -d' ' -f1; done
	} | sha256sum | cut -c1-16
}

# Debian bookworm, essential packages + PACKAGES, without documentation but
# the copyright files, without apt's lists and caches.
debian_base() {
	local dir="$1"
	mmdebstrap --variant=essential --include="$(
		IFS=,
		echo "${PACKAGES[*]}"
	)" \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		"$SUITE" "$dir" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
		"deb http://deb.debian.org/debian-security $SUITE-security main" >&2
}

# PostgreSQL 16's client tools where crates/pgtools looks for them. The
# wheel's own libpq is built without OpenSSL (sslmode=require fails), so the
# tools are relinked (patchelf) to Debian's libpq5, which postgresql-client-15
# brings: it has every libpq function they call (checked here by running each
# with LD_BIND_NOW, which resolves every symbol at start).
pg16_tools() {
	local dir="$1" wheel_libpq
	wheel_libpq="$(basename "$(echo "$PG16_ROOT"/pgserver.libs/libpq-*.so.*)")"
	install -d -m 0755 "$dir/usr/lib/postgresql/16/bin"
	for tool in "${PG16_TOOLS[@]}"; do
		install -m 0755 "$PG16_ROOT/bin/$tool" "$dir/usr/lib/postgresql/16/bin/$tool"
		patchelf --remove-rpath --replace-needed "$wheel_libpq" libpq.so.5 "$dir/usr/lib/postgresql/16/bin/$tool"
		in_rootfs "$dir" "$dir" env LD_BIND_NOW=1 "/usr/lib/postgresql/16/bin/$tool" --version >/dev/null ||
			die "PostgreSQL 16 $tool does not run with Debian's libpq in $dir"
	done
}

# The non-root user the image runs as (no password, no login shell).
app_user() {
	local dir="$1"
	grep -q '^pgharbor:' "$dir/etc/passwd" && return 0
	printf 'pgharbor:x:%s:%s:pgharbor:/home/pgharbor:/usr/sbin/nologin\n' "$APP_UID" "$APP_UID" >>"$dir/etc/passwd"
	printf 'pgharbor:x:%s:\n' "$APP_UID" >>"$dir/etc/group"
	printf 'pgharbor:!:19000::::::\n' >>"$dir/etc/shadow"
	install -d -m 0700 -o "$APP_UID" -g "$APP_UID" "$dir/home/pgharbor"
}

# The base root filesystem in DIR, built unless DIR already holds this key's.
base_rootfs() {
	local dir="$1" key
	key="$(image_key)"
	if [ "$(cat "$dir/.pgharbor-image-key" 2>/dev/null || true)" = "$key" ]; then
		say "reusing $dir (key $key)"
		return 0
	fi
	say "building $dir (key $key)"
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	debian_base "$dir"
	pg16_tools "$dir"
	app_user "$dir"
	printf '%s\n' "$key" >"$dir/.pgharbor-image-key"
}

install_binary() {
	local dir="$1" binary="$2"
	install -m 0755 "$binary" "$dir/usr/local/bin/pgharbor.tmp"
	mv "$dir/usr/local/bin/pgharbor.tmp" "$dir/usr/local/bin/pgharbor"
	install -D -m 0644 "$REPO/LICENSE" "$dir/usr/share/doc/pgharbor/LICENSE"
	in_rootfs "$dir" --userspec="$APP_UID:$APP_UID" "$dir" /usr/local/bin/pgharbor --version >&2 ||
		die "pgharbor does not run in $dir as the image's user"
}

release_binary() {
	(cd "$REPO" && cargo build --locked --profile dist -p pgharbor >&2)
	printf '%s\n' "$REPO/target/dist/pgharbor"
}

# Pack DIR as an OCI image (tag VERSION) into the tar OUT.
oci_image() {
	local dir="$1" out="$2" version work
	version="$(in_rootfs "$dir" "$dir" /usr/local/bin/pgharbor --version | awk '{ print $2 }')"
	work="$(mktemp -d "${TMPDIR:-/tmp}/pgharbor-oci.XXXXXX")"
	umoci init --layout "$work/layout"
	umoci new --image "$work/layout:$version"
	umoci unpack --image "$work/layout:$version" "$work/bundle" >&2
	rm -f "$dir/.pgharbor-image-key"
	cp -a "$dir/." "$work/bundle/rootfs/"
	umoci repack --image "$work/layout:$version" "$work/bundle" >&2
	umoci config --image "$work/layout:$version" \
		--author="pgharbor scripts/image.sh" \
		--config.entrypoint=/usr/local/bin/pgharbor \
		--config.cmd=--help \
		--config.user="$APP_UID:$APP_UID" \
		--config.workingdir=/home/pgharbor \
		--config.env=PATH=$IMAGE_PATH \
		--config.label=org.opencontainers.image.title=pgharbor \
		--config.label="org.opencontainers.image.version=$version" \
		--config.label=org.opencontainers.image.licenses=Apache-2.0
	umoci gc --layout "$work/layout"
	tar --create --sort=name --owner=0 --group=0 --numeric-owner --directory="$work/layout" . >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$work"
	say "$out: OCI image pgharbor:$version ($(du -h "$out" | cut -f1))"
}

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap --mode=root, chroot)"
command -v mmdebstrap >/dev/null && command -v umoci >/dev/null && command -v patchelf >/dev/null ||
	die "needs mmdebstrap, umoci and patchelf: apt-get install mmdebstrap umoci patchelf"
[ -x "$PG16_ROOT/bin/pg_dump" ] || die "no PostgreSQL 16 tools in $PG16_ROOT (run scripts/setup.sh as root)"

case "${1:-}" in
rootfs)
	[ $# -ge 2 ] || die "usage: $0 rootfs DIR [BINARY]"
	# Tests running at once share DIR: one builds it, the others wait.
	mkdir -p "$(dirname "$2")"
	exec 9>"$2.lock"
	flock 9
	base_rootfs "$2"
	install_binary "$2" "${3:-$(release_binary)}"
	;;
oci)
	[ $# -ge 2 ] || die "usage: $0 oci OUT.tar [BINARY]"
	binary="${3:-$(release_binary)}"
	rootfs="$(mktemp -d "${TMPDIR:-/tmp}/pgharbor-rootfs.XXXXXX")"
	trap 'rm -rf "$rootfs"' EXIT
	base_rootfs "$rootfs/rootfs"
	install_binary "$rootfs/rootfs" "$binary"
	oci_image "$rootfs/rootfs" "$2"
	;;
*) die "usage: $0 rootfs DIR [BINARY] | oci OUT.tar [BINARY]" ;;
esac
