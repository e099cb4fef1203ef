#!/usr/bin/env bash
# make demo: synthetic data → the usage_analytics DAG under Airflow (embedded SQLite) → results.
set -euo pipefail
DIR="$(realpath -m "${1:-demo}")"; DAY="${2:-2026-11-24}"; USERS="${3:-3000}"
RUN="uv run --frozen"
command -v uv >/dev/null || RUN=".tools/bin/uv run --frozen"

mkdir -p "$DIR"
echo "== 1/3 generating synthetic landing data and operational DB in $DIR/landing"
$RUN tokumei generate --landing "$DIR/landing" --db-url "sqlite:///$DIR/landing/ops.db" \
  --start "$DAY" --days 1 --users "$USERS" --seed 7

export TOKUMEI_LANDING="$DIR/landing" TOKUMEI_OUT="$DIR/out" \
       TOKUMEI_DB_URL="sqlite:///$DIR/landing/ops.db"
# The demo's own random key, made once and kept in $DIR/pseudonym.key (owner-only), so that
# `make demo` runs again and again: the retained layers of earlier runs are tied to the key
# (retained/KEY_CHECK) and a new key would be refused. In production the key lives in an
# Airflow connection, never in a file.
KEY_FILE="$DIR/pseudonym.key"
if [ ! -s "$KEY_FILE" ]; then
  (umask 077; $RUN python -c 'import secrets; print(secrets.token_hex(32))' > "$KEY_FILE")
fi
TOKUMEI_PSEUDONYM_KEY="$(cat "$KEY_FILE")"
export TOKUMEI_PSEUDONYM_KEY
export AIRFLOW_HOME="$DIR/airflow" AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" \
       AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__UNIT_TEST_MODE=False \
       AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING
echo "== 2/3 running the usage_analytics DAG for $DAY with Airflow (airflow dags test)"
$RUN airflow db migrate >/dev/null
touch "$DIR/.run_started"
$RUN airflow dags test usage_analytics "$DAY" > "$DIR/airflow_dags_test.log" 2>&1 || {
  echo "the DAG run failed; full log: $DIR/airflow_dags_test.log"
  # the run's one-line, value-free reason (tokumei.infra.errors), from its failure record
  reason="$(find "$DIR/out/reports/date=$DAY/failed" -name '*.json' -newer "$DIR/.run_started" \
    2>/dev/null | head -1)"
  if [ -n "$reason" ]; then
    $RUN python -c 'import json,sys; print("reason:", json.load(open(sys.argv[1]))["reason"])' "$reason"
  else
    # only tokumei's own errors: their messages carry names and counts, never data values
    grep -oE "tokumei\.[a-z_.]+\.[A-Za-z]+(Error|Failed|Locked|Balance): .*" \
      "$DIR/airflow_dags_test.log" | tail -1
  fi
  exit 1; }

echo "== 3/3 results"
$RUN python - "$DIR/out" "$DAY" <<'PY'
import json, sys
from pathlib import Path
import polars as pl
out, day = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((out / "reports" / f"date={day}" / "manifest.json").read_text())
print(f"status: {manifest['status']}  run: {manifest['run_id']}")
for name, books in manifest["sources"].items():
    print(f"  {name:13s} " + "  ".join(f"{k}={v}" for k, v in books.items()))
print("published tables:")
for p in sorted((out / "published").glob("*/*/date=*")):
    print(f"  {p}")
print(f"catalog:       {out / 'published' / 'catalog.duckdb'}")
print(f"Data Docs:     {out / 'reports' / f'date={day}' / 'data_docs' / 'index.html'}")
print(f"manifest:      {out / 'reports' / f'date={day}' / 'manifest.json'}")
print("preview of daily_active_users (largest cells):")
with pl.Config(tbl_rows=10, tbl_width_chars=120):
    print(pl.read_parquet(out / "published/stats/daily_active_users").sort("persons", descending=True, nulls_last=True).head(10))
PY
