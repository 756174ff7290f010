# Shell helpers to run a throwaway PostgreSQL cluster, sourced by demo.sh and
# the benchmarks. Usage:
#   source scripts/lib/throwaway-pg.sh
#   pg_throwaway_start DIR BIN_DIR [extra postgres -c settings...]   # sets PG_URL_BASE, PG_PORT
#   pg_throwaway_stop                                                # also run from an EXIT trap
# Server commands run as `postgres` when we are root (initdb refuses root).

PG_THROWAWAY_DIR=""
PG_THROWAWAY_BIN=""
PG_THROWAWAY_IS_TMP=0

pg_throwaway_run() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_throwaway_stop() {
	[ -n "$PG_THROWAWAY_DIR" ] || return 0
	if [ -f "$PG_THROWAWAY_DIR/data/postmaster.pid" ]; then
		pg_throwaway_run "$PG_THROWAWAY_BIN/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m fast -w stop >/dev/null 2>&1 ||
			pg_throwaway_run "$PG_THROWAWAY_BIN/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "$PG_THROWAWAY_IS_TMP" -eq 1 ]; then rm -rf "$PG_THROWAWAY_DIR"; fi
}

pg_throwaway_start() {
	local dir="$1" bin="$2"
	shift 2
	PG_THROWAWAY_BIN="$bin"
	PG_THROWAWAY_DIR="$dir"
	mkdir -p "$(dirname "$dir")"
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
		# The repository is not reachable by the postgres user: use /tmp.
		PG_THROWAWAY_DIR="$(mktemp -d /tmp/pgharbor-pg.XXXXXX)"
		PG_THROWAWAY_IS_TMP=1
	fi
	local d="$PG_THROWAWAY_DIR"
	if [ -f "$d/data/postmaster.pid" ]; then
		pg_throwaway_run "$bin/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$d/data" "$d/sock"
	mkdir -p "$d/sock"
	if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$d"; fi
	pg_throwaway_run "$bin/initdb" -D "$d/data" -U postgres -E UTF8 --locale=C.UTF-8 -A trust --no-sync \
		>"$d/initdb.log" 2>&1 || {
		echo "initdb failed (log: $d/initdb.log)" >&2
		return 1
	}
	PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
	local opts="-p $PG_PORT -k $d/sock -c listen_addresses=127.0.0.1"
	local setting
	for setting in "$@"; do opts="$opts -c $setting"; done
	pg_throwaway_run "$bin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 -o "$opts" start >/dev/null || {
		echo "the server did not start (log: $d/server.log)" >&2
		return 1
	}
	PG_URL_BASE="postgresql://postgres@127.0.0.1:$PG_PORT"
}
