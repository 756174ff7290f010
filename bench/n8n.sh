#!/usr/bin/env bash
# n8n from SQLite to PostgreSQL: pgharbor against n8n's own export:entities + import:entities, in the
# same run, on a larger instance written by n8n itself. Not part of CI (needs fixtures/n8n/setup.sh:
# ~8-14 min and 2.4 GB the first time).
#
#   bash bench/n8n.sh                          # 3000 workflows (2000 executed), 300 credentials
#   WORKFLOWS=600 CREDENTIALS=100 bash bench/n8n.sh
#   PGHARBOR_BIN=path bash bench/n8n.sh        # measure that binary instead of building one
#
# The instance: fixtures/n8n/gen.sh sqlite with WORKFLOWS and CREDENTIALS (kept in
# .cache/bench/n8n-WORKFLOWSxCREDENTIALS). One throwaway PostgreSQL 16 server; n8n creates its
# schema once in a template database (its first start), each contender gets a copy of it. Measured
# with GNU time (wall, peak RSS):
#   pgharbor         pgharbor migrate DATA_DIR URL --preset n8n (verification included)
#   n8n export       n8n export:entities --includeExecutionHistoryDataTables=true (on SQLite)
#   n8n import       n8n import:entities --truncateTables=true (into PostgreSQL)
# then whether n8n can work on each result: `n8n execute` of a moved workflow (a new execution row:
# the sequences must have moved). Ratio: (n8n export + import) / pgharbor.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
WORKFLOWS="${WORKFLOWS:-3000}"
CREDENTIALS="${CREDENTIALS:-300}"
WORK="$REPO/.cache/bench"
LOGS="$WORK/n8n-logs"
INSTANCE="$WORK/n8n-${WORKFLOWS}x${CREDENTIALS}"
PG_BIN="${PGHARBOR_PG16_BIN:-/opt/pgharbor/pg16/bin}"
mkdir -p "$LOGS"

# shellcheck source=lib/measure.sh
source "$REPO/bench/lib/measure.sh"
# shellcheck source=../fixtures/n8n/n8n-env.sh
source "$REPO/fixtures/n8n/n8n-env.sh"

say "setup"
if [ ! -x /usr/bin/time ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q time >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; }
fi
N8N="$(bash fixtures/n8n/setup.sh)"
if [ -z "${PGHARBOR_BIN:-}" ]; then
	cargo build --release -q -p pgharbor
fi
PGHARBOR="${PGHARBOR_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/pgharbor}"
echo "    $PGHARBOR ($("$PGHARBOR" --version)); n8n $("$N8N" --version)"
if [ ! -f "$INSTANCE/database.sqlite" ]; then
	echo "    writing the instance with n8n itself ($WORKFLOWS workflows, $CREDENTIALS credentials) ..."
	bash fixtures/n8n/gen.sh sqlite "$INSTANCE" "$WORKFLOWS" "$CREDENTIALS" 2>"$LOGS/gen.err" || { tail "$LOGS/gen.err"; exit 1; }
fi
rows() { sqlite3 "$INSTANCE/database.sqlite" "SELECT count(*) FROM $1"; }
echo "    instance: $(du -h "$INSTANCE/database.sqlite" | cut -f1), $(rows workflow_entity) workflows, $(rows credentials_entity) credentials, $(rows execution_entity) executions"

# shellcheck source=../scripts/lib/throwaway-pg.sh
source "$REPO/scripts/lib/throwaway-pg.sh"
# Last registered runs first: the server stops before its directory goes.
n8n_on_exit "rm -rf '$WORK/pg-n8n' '$WORK/n8n-export'"
n8n_on_exit pg_throwaway_stop
say "starting a PostgreSQL 16 server; n8n creates its schema (first start)"
pg_throwaway_start "$WORK/pg-n8n" "$PG_BIN"
BASE="$PG_URL_BASE"
psql_on() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$BASE/$1" -c "$2"; }
psql_on postgres "CREATE DATABASE n8n_template"
n8n_private_folder
n8n_on_postgres "$BASE/n8n_template"
run_server
stop_server
for db in by_pgharbor by_n8n; do psql_on postgres "CREATE DATABASE $db TEMPLATE n8n_template"; done

declare -A WALL RSS
say "pgharbor migrate --preset n8n"
measure pgharbor "$PGHARBOR" migrate "$INSTANCE" "$BASE/by_pgharbor" --preset n8n

say "n8n export:entities (SQLite) + import:entities (PostgreSQL)"
n8n_private_folder
mkdir -m 700 "$N8N_USER_FOLDER/.n8n"
cp "$INSTANCE/database.sqlite" "$INSTANCE/config" "$N8N_USER_FOLDER/.n8n/"
n8n_on_sqlite
rm -rf "$WORK/n8n-export"
measure n8n_export "$N8N" export:entities --outputDir="$WORK/n8n-export" --includeExecutionHistoryDataTables=true
n8n_on_postgres "$BASE/by_n8n"
measure n8n_import "$N8N" import:entities --inputDir="$WORK/n8n-export" --truncateTables=true
N8N_NOTE=""
if [ "${WALL[n8n_import]}" = failed ]; then
	N8N_NOTE="import:entities failed: $(grep -m1 -oE 'duplicate key value violates unique constraint "[^"]+"' "$LOGS/n8n_import.err" "$LOGS/n8n_import.out" | head -1 | cut -d: -f2-)"
	echo "    known n8n bug (duplicate workflows_tags rows); retrying with workflowtagmapping.jsonl taken out of entities.zip (workflows_tags.jsonl holds the same rows)"
	# The failed import left the archive's files extracted next to it: those go too.
	find "$WORK/n8n-export" -name 'workflowtagmapping*.jsonl' -delete
	python3 - "$WORK/n8n-export/entities.zip" <<'PY'
import sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as old:
    kept = [(i, old.read(i)) for i in old.infolist() if not i.filename.startswith("workflowtagmapping")]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
    for info, data in kept:
        new.writestr(info, data)
PY
	measure n8n_import_retry "$N8N" import:entities --inputDir="$WORK/n8n-export" --truncateTables=true
	WALL[n8n_import]="${WALL[n8n_import_retry]}"
fi

say "can n8n work on each result? (n8n execute of a moved workflow: a new execution row)"
workflow="$(sqlite3 "$INSTANCE/database.sqlite" "SELECT workflowId FROM execution_entity ORDER BY id LIMIT 1")"
declare -A WORKS
for db in by_pgharbor by_n8n; do
	n8n_on_postgres "$BASE/$db"
	if "$N8N" execute --id="$workflow" >"$LOGS/execute-$db.out" 2>&1; then
		WORKS[$db]="yes"
	else
		WORKS[$db]="NO: $(grep -m1 -oE 'duplicate key value violates unique constraint "[^"]+"|Execution was NOT successful' "$LOGS/execute-$db.out" || echo "see $LOGS/execute-$db.out")"
	fi
	printf '    %-12s workflows %s, credentials %s, executions %s, tags on workflows %s; n8n execute: %s\n' "$db" \
		"$(psql_on "$db" "SELECT count(*) FROM workflow_entity")" "$(psql_on "$db" "SELECT count(*) FROM credentials_entity")" \
		"$(psql_on "$db" "SELECT count(*) FROM execution_entity")" "$(psql_on "$db" "SELECT count(*) FROM workflows_tags")" "${WORKS[$db]}"
done

say "result ($WORKFLOWS workflows, $CREDENTIALS credentials)"
n8n_total="-"
if num "${WALL[n8n_export]}" && num "${WALL[n8n_import]}"; then
	n8n_total="$(python3 -c "print(f'{${WALL[n8n_export]} + ${WALL[n8n_import]}:.2f}')")"
fi
printf '    pgharbor migrate --preset n8n       %8s s  %6s MB  (verified)\n' "${WALL[pgharbor]}" "${RSS[pgharbor]}"
printf '    n8n export:entities + import:entities %6s s  (%s + %s)%s\n' "$n8n_total" "${WALL[n8n_export]}" "${WALL[n8n_import]}" "${N8N_NOTE:+  — $N8N_NOTE}"
echo "    n8n's export+import / pgharbor: $(ratio "$n8n_total" "${WALL[pgharbor]}")"
