#!/usr/bin/env bash
# Chain throughput with the shared harness `chain` workload: tag → file storage →
# egress, N vCons, on Redis and on the embedded broker, with 1 and 2 workers.
# Usage: scripts/bench-chain.sh [vcons] [concurrency per worker]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5000}"
CONCURRENCY="${2:-16}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="$TARGET/release/conserver"
HARNESS="${HARNESS:-../shared/bench/harness.py}"
PORT=18090
[ -x "$BIN" ] && [ -f "$TARGET/release/links/tag.wasm" ] || {
  echo "build first: cargo xtask build-links && cargo build --release -p conserver" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

run() { # label workers ingress-mode egress-mode extra-env...
  local label=$1 workers=$2 imode=$3 emode=$4; shift 4
  local run_id="bench-$label-$RANDOM"
  cat > "$WORK/config.yml" <<YAML
links:
  tag:
    module: links.tag
    options: {tags: [benchmark]}
storages:
  file:
    module: storage.file
    options: {path: $WORK/vcons-$run_id}
chains:
  bench:
    links: [tag]
    ingress_lists: [$run_id-in]
    egress_lists: [$run_id-out]
    storages: [file]
YAML
  env "$@" CONSERVER_CONFIG_FILE="$WORK/config.yml" CONSERVER_DATA_DIR="$WORK/data-$run_id" \
    CONSERVER_BIND=127.0.0.1:$PORT CONSERVER_WORKERS="$workers" CONSERVER_VCON_CONCURRENCY="$CONCURRENCY" \
    LOG_LEVEL=warn "$BIN" serve >"$WORK/$run_id.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  python3 "$HARNESS" --base-url "http://127.0.0.1:$PORT/api" --label "$label workers=$workers" \
    --watch "conserver=$SERVER" --seed 11 ${REDIS_ARG:-} \
    chain -n "$N" -c 32 --ingress-list "$run_id-in" --egress-list "$run_id-out" \
    --ingress-mode "$imode" --egress-mode "$emode" --batch 500 ${VERIFY:-}
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
}

for workers in 1 2; do
  REDIS_ARG="--redis-url redis://127.0.0.1:6379/0" VERIFY=--verify run redis "$workers" redis redis REDIS_URL=redis://127.0.0.1:6379/0
  REDIS_ARG="" VERIFY="" run embedded "$workers" api api -u REDIS_URL
done
