#!/usr/bin/env bash
# API throughput with the shared harness: `ingest` (POST /vcon) and `read`
# (GET /vcon/{uuid}) at 64 concurrent clients, on the embedded broker and on Redis.
# Prints one JSON line per run. Usage: scripts/bench-api.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="$TARGET/release/conserver"
HARNESS="${HARNESS:-../shared/bench/harness.py}"
PORT=18080
[ -x "$BIN" ] || { echo "build first: cargo build --release -p conserver" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
printf 'links: {}\nchains: {}\n' > "$WORK/config.yml"

run() { # label, extra env...
  local label=$1; shift
  env "$@" CONSERVER_CONFIG_FILE="$WORK/config.yml" CONSERVER_DATA_DIR="$WORK/data-$label" \
    CONSERVER_BIND=127.0.0.1:$PORT LOG_LEVEL=warn "$BIN" serve >"$WORK/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  python3 "$HARNESS" --base-url "http://127.0.0.1:$PORT/api" --label "$label" --watch "conserver=$SERVER" --seed 7 \
    ingest -n "$N" -c 64
  python3 "$HARNESS" --base-url "http://127.0.0.1:$PORT/api" --label "$label" --watch "conserver=$SERVER" --seed 7 \
    read -n "$N" -c 64 --pool 1000
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
}

run embedded -u REDIS_URL
run redis REDIS_URL=redis://127.0.0.1:6379/0
