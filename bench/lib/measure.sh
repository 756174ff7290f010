# shellcheck shell=bash
# Helpers the benchmark scripts share (sourced): section headings, timing one command with
# GNU time, checking a result against the source's fingerprint, and ratios.
#
# The caller sets LOGS (a directory), declares `declare -A WALL RSS`, and for `check` defines
# `fingerprint URL` and sets SRC_PRINT to the source's fingerprint.

say() { printf '\n==> %s\n' "$*"; }

# measure NAME COMMAND... : wall seconds and peak RSS (MB) of one command (GNU time -v) into
# WALL[NAME] and RSS[NAME] ("failed" when it fails); stdout to $LOGS/NAME.out, stderr to
# $LOGS/NAME.err.
measure() {
	local name="$1"
	shift
	local tf="$LOGS/$name.time"
	if /usr/bin/time -v -o "$tf" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"; then
		WALL[$name]=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$tf")
		RSS[$name]=$(awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$tf")
		printf '    %-20s %8s s %8s MB\n' "$name" "${WALL[$name]}" "${RSS[$name]}"
	else
		WALL[$name]=failed
		RSS[$name]=-
		printf '    %-20s FAILED (exit %s; logs: %s/%s.{out,err})\n' "$name" "$(grep -o 'Exit status: [0-9]*' "$tf" | tr -dc 0-9)" "$LOGS" "$name"
		tail -4 "$LOGS/$name.err" | sed 's/^/        /'
	fi
}

# check NAME URL: the database at URL must have the source's fingerprint, else NAME's time
# is not used.
check() {
	local name="$1" got
	[ "${WALL[$name]}" != failed ] || return 0
	got=$(fingerprint "$2" 2>&1 || true)
	if [ "$got" = "$SRC_PRINT" ]; then
		echo "    $name: same row counts, indexes, constraints and sequences as the source"
	else
		echo "    $name: DIFFERENT from the source, its time is not used:"
		echo "        got: $got"
		WALL[$name]=failed
	fi
}

num() { [[ "$1" =~ ^[0-9.]+$ ]] && [ "$1" != 0 ]; }
ratio() { # $1 / $2
	if num "$1" && num "$2"; then python3 -c "print(f'{$1 / $2:.2f}x')"; else echo -; fi
}
