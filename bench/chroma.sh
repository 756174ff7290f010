#!/usr/bin/env bash
# ChromaDB → Open WebUI pgvector benchmark: pgharbor against the Python path a user
# would write, same store, same server, one run. Not part of CI (bench only).
#
#   bash bench/chroma.sh              # 200,000 chunks x 384 dims
#   N=20000 bash bench/chroma.sh      # quick run
#   bash bench/chroma.sh --keep       # leave the cluster running afterwards
#   PGHARBOR_BIN=path bash bench/chroma.sh   # measure that binary instead of building one
#
# Measured, each into a fresh database of one throwaway PostgreSQL 16 + pgvector cluster
# (/opt/pgharbor/pg16, from scripts/setup.sh; WAL files pre-allocated, a CHECKPOINT before
# each run, the previous run's table vacuumed and analysed before the next run so that its
# autovacuum does not land in the next run), each on a fresh copy of the store:
#   python-path         bench/chroma/python_path.py: chromadb 1.5.9 get() paged per collection,
#                       Open WebUI's row conversion, psycopg 3 binary COPY, Open WebUI's indexes
#   pgharbor            migrate chroma:STORE URL --layout open-webui --dimension 384 --index ivfflat
#                       (verifies, the default), and again with --no-verify
#   pgharbor-rows-only  migrate chroma:STORE URL --layout tables --index none (verified): the same
#                       items with no index to keep up, for the "read + load" comparison
# Wall time and peak RSS (GNU time -v) for each, phase timings (python_path.py's own,
# pgharbor's --json "phases"), ratios python / pgharbor, and a check that both databases
# hold the same rows (count + md5 of the sorted ids; then bench/chroma/compare.py row by row).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${N:-200000}"
DIM=384
KEEP=0
for arg in "$@"; do
	case "$arg" in
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,22p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $arg (N=<chunks> env var, --keep)" >&2
		exit 2
		;;
	esac
done
WORK="$REPO/.cache/bench"
STORE_DIR="$WORK/chroma-$N"
RUN_STORE="$WORK/chroma-run"
LOGS="$WORK/chroma-logs"
VENV="$WORK/chroma-venv"
PY_PINS=("chromadb==1.5.9" "psycopg[binary]==3.3.4" "pgvector==0.4.2") # Open WebUI 0.12.4's pins
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
PSQL="$PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
PGHARBOR="${PGHARBOR_BIN:-$REPO/target/release/pgharbor}" # PGHARBOR_BIN=path: use that binary, no build
mkdir -p "$WORK" "$LOGS"

# shellcheck source=lib/measure.sh
source "$REPO/bench/lib/measure.sh"

say "setup"
bash scripts/setup.sh
if [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi
# Python venv with chromadb 1.5.9 + psycopg 3 + pgvector (idempotent: a stamp of the pins)
if [ "$(cat "$VENV/.pins" 2>/dev/null || true)" != "${PY_PINS[*]}" ] || [ ! -x "$VENV/bin/python" ]; then
	echo "    creating $VENV (${PY_PINS[*]})"
	rm -rf "$VENV"
	"${PYTHON:-python3.11}" -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
	echo "${PY_PINS[*]}" >"$VENV/.pins"
fi

say "store: $N chunks x $DIM dims (chromadb 1.5.9, cached in $STORE_DIR)"
"$VENV/bin/python" bench/chroma/make_store.py "$STORE_DIR" --chunks "$N" --dim "$DIM"
STORE_MB=$(du -sm "$STORE_DIR/store" | cut -f1)
GEN_S=$(python3 -c "import json; print(json.load(open('$STORE_DIR/generated.json'))['seconds'])")
printf '    %s: %s MB on disk, generated in %s s\n' "$STORE_DIR/store" "$STORE_MB" "$GEN_S"

say "building pgharbor (release)"
HAVE_PGHARBOR=1
if [ -n "${PGHARBOR_BIN:-}" ]; then
	echo "    using PGHARBOR_BIN=$PGHARBOR_BIN"
elif ! cargo build --release -q -p pgharbor 2>"$LOGS/cargo.log"; then
	HAVE_PGHARBOR=0
	echo "    cargo build --release -p pgharbor FAILED: pgharbor is skipped, the Python path still runs (log: $LOGS/cargo.log)"
	tail -5 "$LOGS/cargo.log" | sed 's/^/        /'
fi

# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
if [ "$KEEP" -eq 0 ]; then trap pg_throwaway_stop EXIT; fi
say "starting PostgreSQL 16 + pgvector (same settings for every tool)"
pg_throwaway_start "$WORK/pg-chroma" "$PG_BIN" shared_buffers=512MB max_wal_size=8GB checkpoint_timeout=30min maintenance_work_mem=256MB
for db in py h_verify h_noverify h_rows; do
	$PSQL "$PG_URL_BASE/postgres" -c "CREATE DATABASE $db"
done
$PSQL "$PG_URL_BASE/py" -c "CREATE EXTENSION vector"
PGV=$($PSQL -At "$PG_URL_BASE/py" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
$PSQL "$PG_URL_BASE/py" -c "DROP EXTENSION vector"
echo "    $($PG_BIN/postgres --version), pgvector $PGV, $PG_URL_BASE"

# Every run starts from the same server state. WAL files are allocated once, before
# any run (a throwaway table of ~1.4 GB, dropped), so that no run pays for creating
# them and later runs reuse them; before each run the server checkpoints (no run
# writes out the previous one's dirty buffers) and the copy of the store is synced.
say "pre-allocating WAL files"
$PSQL "$PG_URL_BASE/postgres" -c "CREATE TABLE wal_warmup AS SELECT g, repeat('x', 900) AS pad FROM generate_series(1, 1500000) g" \
	-c "DROP TABLE wal_warmup" -c CHECKPOINT
echo "    $(find "$PG_THROWAWAY_DIR/data/pg_wal" -maxdepth 1 -type f -name '0*' | wc -l) WAL files"

# Every run gets its own copy of the store: opening a store with chromadb may write to
# it (log purge/compaction), and the cached original must stay as generated.
fresh_store() {
	rm -rf "$RUN_STORE"
	cp -a "$STORE_DIR/store" "$RUN_STORE"
	sync
	$PSQL "$PG_URL_BASE/postgres" -c CHECKPOINT
}

# settle DB: after a run, do what autovacuum would do next to the table it loaded
# (vacuum, and an analyse that evaluates to_tsvector over a 30,000-row sample), so that
# autovacuum does not do it during the next tool's run and charge it to that tool.
settle() {
	local started=$SECONDS
	$PSQL "$PG_URL_BASE/$1" -c "VACUUM ANALYZE"
	echo "    (VACUUM ANALYZE of $1 after its run: $((SECONDS - started)) s, not counted)"
}

declare -A WALL RSS

say "Python path (chromadb get -> psycopg binary COPY -> Open WebUI's indexes)"
fresh_store
measure python-path "$VENV/bin/python" bench/chroma/python_path.py "$RUN_STORE" "$PG_URL_BASE/py" --dimension "$DIM"
settle py
[ "${WALL[python-path]}" = failed ] || sed -n '1,6p' "$LOGS/python-path.out" | sed 's/^/        /'

# The exact command lines measured (the store path is the fresh copy). The generated vectors are
# random (no cluster structure, IVFFlat's worst case): pgharbor reports the index's recall@10 and
# the probes that reach 0.9 and 0.99, printed below; only the data proof decides the exit status.
PGH_ARGS=(migrate "chroma:$RUN_STORE" "$PG_URL_BASE/h_verify" --layout open-webui --dimension "$DIM" --index ivfflat --json)
PGH_NOVERIFY_ARGS=(migrate "chroma:$RUN_STORE" "$PG_URL_BASE/h_noverify" --layout open-webui --dimension "$DIM" --index ivfflat --no-verify --json)
PGH_ROWS_ARGS=(migrate "chroma:$RUN_STORE" "$PG_URL_BASE/h_rows" --layout tables --index none --json)
say "pgharbor"
if [ "$HAVE_PGHARBOR" -eq 1 ]; then
	echo "    $PGHARBOR ${PGH_ARGS[*]}"
	fresh_store
	measure pgharbor "$PGHARBOR" "${PGH_ARGS[@]}"
	settle h_verify
	fresh_store
	measure pgharbor-no-verify "$PGHARBOR" "${PGH_NOVERIFY_ARGS[@]}"
	settle h_noverify
	fresh_store
	measure pgharbor-rows-only "$PGHARBOR" "${PGH_ROWS_ARGS[@]}"
	if [ "${WALL[pgharbor]}" = failed ]; then
		echo "    pgharbor failed: does this build have the chroma source and --layout open-webui yet? (the Python path's figures above stand alone)"
	fi
else
	WALL[pgharbor]=failed WALL[pgharbor-no-verify]=failed WALL[pgharbor-rows-only]=failed
	RSS[pgharbor]=- RSS[pgharbor-no-verify]=- RSS[pgharbor-rows-only]=-
	echo "    skipped: pgharbor did not build (see above)"
fi
rm -rf "$RUN_STORE"
if [ "${WALL[pgharbor]:-failed}" != failed ]; then
	python3 - "$LOGS/pgharbor.out" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
for c in sorted(report["collections"], key=lambda c: -c["items"])[:1]:
    r = c.get("recall") or {}
    own = r.get("application") or {}
    exact = c.get("exact_neighbours") or {}
    print(f"    recall@10 of the largest collection ({c['items']} items): {r.get('recall_at_10')} at {r.get('setting')}, "
          f"{own.get('recall_at_10')} at {own.get('setting')} (the database's own); exact top 10: {exact.get('ok')}; "
          f"verified: {report['migration']['verified']}")
for ix in report.get("index_recall", []):
    reaches = ", ".join(f"{x['recall']} at {x['setting']} ({x['recall_at_10']:.3f})" for x in ix["reaches"])
    print(f"    {ix['index']} index of {ix['table']}, {ix['queries']} queries: {reaches}")
EOF
fi

# phases NAME: "read+load index verify" seconds from a run's output, "- - -" if unknown.
# python-path: the JSON line python_path.py prints last. pgharbor: the --json report's
# "phases" (at any depth: migrate chroma: nests the report under "migration"), as a list
# of {"phase": name, "seconds": s} (the report today) or an
# object {name: seconds}; phases are bucketed by name: verif*/recall* -> verify,
# index/finish/key* -> index, everything else (read, load, copy, ...) -> read+load.
phases() {
	python3 - "$LOGS/$1.out" <<'EOF'
import json, sys
text = open(sys.argv[1], errors="replace").read() if sys.argv[1] else ""
doc = None
try:
    doc = json.loads(text)
except ValueError:
    for start in [i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")][::-1]:
        try:
            doc = json.JSONDecoder().raw_decode(text[start:])[0]
            break
        except ValueError:
            continue
out = {"read+load": None, "index": None, "verify": None}
if isinstance(doc, dict) and "read_s" in doc:  # python_path.py
    out = {"read+load": doc["read_s"] + doc["load_s"], "index": doc["index_s"], "verify": None}
elif isinstance(doc, dict):
    ph, todo = None, [doc]  # the first "phases" key, breadth-first (it sits under "migration")
    while todo and ph is None:
        d = todo.pop(0)
        ph = d.get("phases")
        todo += [v for v in d.values() if isinstance(v, dict)]
    if isinstance(ph, list):
        items = [(str(p.get("phase") or p.get("name")), p.get("seconds", p.get("secs"))) for p in ph if isinstance(p, dict)]
    elif isinstance(ph, dict):
        items = [(k, v.get("seconds") if isinstance(v, dict) else v) for k, v in ph.items()]
    else:
        items = []
    for name, s in items:
        if not isinstance(s, (int, float)):
            continue
        n = name.lower()
        key = "verify" if ("verif" in n or "recall" in n) else "index" if any(w in n for w in ("index", "finish", "key")) else "read+load"
        out[key] = (out[key] or 0) + s
print(" ".join("-" if v is None else f"{v:.2f}" for v in out.values()))
EOF
}

say "same data in both databases?"
rowsum() { # count | md5 of sorted ids | md5 of whole rows (vectors as text)
	$PSQL -At "$PG_URL_BASE/$1" -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(id, ',' ORDER BY id), '')) FROM document_chunk" 2>/dev/null || echo "no table"
}
indexes() {
	$PSQL -At "$PG_URL_BASE/$1" -c "SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'document_chunk'" 2>/dev/null || true
}
PY_SUM=$(rowsum py)
echo "    python-path   rows + md5(sorted ids): $PY_SUM"
for db in h_verify h_noverify; do
	H_SUM=$(rowsum "$db")
	run=pgharbor
	[ "$db" = h_noverify ] && run=pgharbor-no-verify
	if [ "${WALL[$run]}" = failed ] && [ "$H_SUM" = "no table" ]; then
		echo "    $db: nothing to compare ($run did not run or failed)"
	elif [ "$H_SUM" = "$PY_SUM" ]; then
		same_rows="same ids"
		[ "$(indexes "$db")" = "$(indexes py)" ] && same_rows="$same_rows, same indexes" || same_rows="$same_rows, indexes differ (see below)"
		echo "    $db: $same_rows"
		if [ -z "${DB_COMPARED:-}" ]; then # full rows once (bench/chroma/compare.py)
			echo "        $("$VENV/bin/python" bench/chroma/compare.py "$PG_URL_BASE/py" "$PG_URL_BASE/$db" 2>&1 | tail -1)"
			DB_COMPARED=1
		fi
	else
		echo "    $db: DIFFERENT: $H_SUM"
	fi
done
if [ "${WALL[pgharbor-rows-only]:-failed}" != failed ]; then
	python3 - "$LOGS/pgharbor-rows-only.out" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["migration"]
print(f"    h_rows (tables layout, no index): {len(m.get('tables', []))} tables, verified by pgharbor against the store: {m['verified']}")
EOF
fi
echo "    indexes built by the Python path (Open WebUI's):"
indexes py | sed 's/^/        /'
table_size() { # heap + TOAST of document_chunk, indexes apart
	$PSQL -At "$PG_URL_BASE/$1" -c "SELECT pg_size_pretty(pg_table_size('document_chunk')) || ' table + ' || pg_size_pretty(pg_indexes_size('document_chunk')) || ' indexes'" 2>/dev/null || echo "no table"
}
echo "    space: python-path $(table_size py); pgharbor $(table_size h_verify) (rows written whole, see docs/chroma.md)"
if [ -n "$(indexes h_verify)" ] && [ "$(indexes h_verify)" != "$(indexes py)" ]; then
	echo "    indexes built by pgharbor:"
	indexes h_verify | sed 's/^/        /'
fi

say "results ($N chunks x $DIM dims, $STORE_MB MB store; $(nproc) cores)"
declare -A RL IX VF
RUNS=(python-path pgharbor pgharbor-no-verify pgharbor-rows-only)
for name in "${RUNS[@]}"; do
	if [ "${WALL[$name]}" = failed ]; then
		RL[$name]=- IX[$name]=- VF[$name]=-
	else
		read -r RL[$name] IX[$name] VF[$name] <<<"$(phases "$name")"
	fi
done
printf '    %-20s %10s %14s %10s %10s %10s %16s\n' tool "wall (s)" "read+load (s)" "index (s)" "verify (s)" "RSS (MB)" "python/this wall"
for name in "${RUNS[@]}"; do
	printf '    %-20s %10s %14s %10s %10s %10s %16s\n' "$name" "${WALL[$name]}" "${RL[$name]}" "${IX[$name]}" "${VF[$name]}" "${RSS[$name]}" "$(ratio "${WALL[python-path]}" "${WALL[$name]}")"
done
echo
echo "    python / pgharbor: wall $(ratio "${WALL[python-path]}" "${WALL[pgharbor]}")," \
	"wall vs --no-verify $(ratio "${WALL[python-path]}" "${WALL[pgharbor-no-verify]}")," \
	"read+load $(ratio "${RL[python-path]}" "${RL[pgharbor]}") (the full-text index kept up during the load)," \
	"read+load without indexes $(ratio "${RL[python-path]}" "${RL[pgharbor-rows-only]}") (pgharbor-rows-only)," \
	"index $(ratio "${IX[python-path]}" "${IX[pgharbor]}")," \
	"peak RSS $(ratio "${RSS[python-path]}" "${RSS[pgharbor]}")"
echo "    (store generated in $GEN_S s, not counted; logs in $LOGS)"
if [ "$KEEP" -eq 1 ]; then
	echo "    cluster kept: $PG_URL_BASE (databases py, h_verify, h_noverify, h_rows); stop it with"
	echo "    runuser -u postgres -- $PG_BIN/pg_ctl -D $PG_THROWAWAY_DIR/data stop"
fi
