#!/usr/bin/env bash
# vCons/s written per storage backend: the harness `chain` workload (tag → <storage>
# → egress) on Redis, 5 000 vCons, with no storage as the baseline in the same run.
# Needs PostgreSQL on 127.0.0.1:5432 (database `test`) and moto_server for s3.
# Elasticsearch, Milvus (with its embeddings endpoint) and MongoDB are the test
# stand-in servers (`cargo build --release -p conserver-storage --example stand_in`):
# their figures measure conserver's client side, not those databases.
# Usage: scripts/bench-storage.sh [vcons] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5000}"
CONCURRENCY="${2:-16}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="$TARGET/release/conserver"
HARNESS="${HARNESS:-../shared/bench/harness.py}"
PORT=18095
MOTO_PORT=18096
WORK=$(mktemp -d)
STAND_IN="$TARGET/release/examples/stand_in"
[ -x "$STAND_IN" ] || { echo "build first: cargo build --release -p conserver-storage --example stand_in" >&2; exit 1; }
moto_server -H 127.0.0.1 -p $MOTO_PORT >/dev/null 2>&1 &
MOTO=$!
"$STAND_IN" elasticsearch 18097 & ES=$!
"$STAND_IN" milvus 18099 1536 & MILVUS=$!
"$STAND_IN" mongo 18100 & MONGO=$!
trap 'kill $SERVER $MOTO $ES $MILVUS $MONGO 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf -X PUT "http://127.0.0.1:$MOTO_PORT/bench" >/dev/null && break; sleep 0.2; done

run() { # label, storage yaml (or empty)
  local label=$1 storage=$2 run_id="bench-$1-$RANDOM"
  {
    printf 'links:\n  tag:\n    module: links.tag\n'
    if [ -n "$storage" ]; then printf 'storages:\n  store:\n%s\n' "$storage"; fi
    printf 'chains:\n  bench:\n    links: [tag]\n    ingress_lists: [%s-in]\n    egress_lists: [%s-out]\n' "$run_id" "$run_id"
    if [ -n "$storage" ]; then printf '    storages: [store]\n'; fi
  } > "$WORK/config.yml"
  REDIS_URL=redis://127.0.0.1:6379/0 CONSERVER_CONFIG_FILE="$WORK/config.yml" CONSERVER_DATA_DIR="$WORK/data" \
    CONSERVER_BIND=127.0.0.1:$PORT CONSERVER_VCON_CONCURRENCY="$CONCURRENCY" LOG_LEVEL=warn "$BIN" serve >"$WORK/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  python3 "$HARNESS" --base-url "http://127.0.0.1:$PORT/api" --label "$label" --watch "conserver=$SERVER" --seed 13 \
    --redis-url redis://127.0.0.1:6379/0 chain -n "$N" -c 32 --ingress-list "$run_id-in" --egress-list "$run_id-out" \
    --ingress-mode redis --egress-mode redis --batch 500 --verify
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
}

run none ""
run file "    module: storage.file
    options: {path: $WORK/files}"
run postgres "    module: storage.postgres
    options: {host: 127.0.0.1, port: 5432, user: postgres, database: test, table_name: bench_vcons}"
run redis_storage "    module: storage.redis_storage
    options: {redis_url: 'redis://127.0.0.1:6379/0', prefix: bench_storage, expires: 600}"
run s3 "    module: storage.s3
    options: {aws_access_key_id: test, aws_secret_access_key: test, aws_bucket: bench, aws_region: us-east-1, endpoint_url: 'http://127.0.0.1:$MOTO_PORT'}"
run elasticsearch "    module: storage.elasticsearch
    options: {url: 'http://127.0.0.1:18097', username: elastic, password: bench}"
run milvus "    module: storage.milvus
    options: {host: 127.0.0.1, port: 18099, api_key: bench, base_url: 'http://127.0.0.1:18099/v1', create_collection_if_missing: true}"
run mongo "    module: storage.mongo
    options: {url: 'mongodb://127.0.0.1:18100/', database: bench, collection: vcons}"
psql -h 127.0.0.1 -U postgres -d test -qc 'DROP TABLE IF EXISTS bench_vcons' >/dev/null 2>&1 || true
