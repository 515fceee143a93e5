#!/usr/bin/env bash
# Standard links in a chain, with the shared harness `chain` workload on Redis:
# tag → jq_link → sampler → tag_router (issue 6), against tag alone as the
# baseline in the same run. After each run, the per-link time is read from
# GET /metrics (conserver_link_duration_ms_sum / _count).
# Usage: scripts/bench-links.sh [vcons] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5000}"
CONCURRENCY="${2:-16}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
BIN="$TARGET/release/conserver"
HARNESS="${HARNESS:-../shared/bench/harness.py}"
PORT=18098
[ -x "$BIN" ] && [ -f "$TARGET/release/links/jq_link.wasm" ] || {
  echo "build first: cargo xtask build-links && cargo build --release -p conserver" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

run() { # label, chain links
  local label=$1 links=$2 run_id="bench-$1-$RANDOM"
  cat > "$WORK/config.yml" <<YAML
links:
  tag:
    module: links.tag
    options: {tags: [benchmark]}
  jq:
    module: links.jq_link
    options: {filter: '.parties | length >= 1', forward_matches: true}
  sample:
    module: links.sampler
    options: {method: modulo, value: 1}
  route:
    module: links.tag_router
    options: {tag_routes: {benchmark: $run_id-routed}, forward_original: true}
chains:
  bench:
    links: [$links]
    ingress_lists: [$run_id-in]
    egress_lists: [$run_id-out]
YAML
  REDIS_URL=redis://127.0.0.1:6379/0 CONSERVER_CONFIG_FILE="$WORK/config.yml" CONSERVER_DATA_DIR="$WORK/data" \
    CONSERVER_BIND=127.0.0.1:$PORT CONSERVER_VCON_CONCURRENCY="$CONCURRENCY" LOG_LEVEL=warn \
    "$BIN" serve >"$WORK/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  python3 "$HARNESS" --base-url "http://127.0.0.1:$PORT/api" --label "$label" --watch "conserver=$SERVER" --seed 17 \
    --redis-url redis://127.0.0.1:6379/0 chain -n "$N" -c 32 --ingress-list "$run_id-in" --egress-list "$run_id-out" \
    --ingress-mode redis --egress-mode redis --batch 500 --verify
  echo "per-link mean time ($label):"
  curl -sf "http://127.0.0.1:$PORT/metrics" | awk '
    function link(s) { split(s, a, "link_name=\""); split(a[2], b, "\""); return b[1] }
    /^conserver_link_duration_ms_count/ { calls[link($1)] += $2 }
    /^conserver_link_duration_ms_sum/ { ms[link($1)] += $2 }
    /^conserver_link_fuel_used_sum/ { fuel[link($1)] += $2 }
    END { for (l in calls) printf "  %-8s %6d calls  %8.1f µs/call  %10.0f fuel/call\n", l, calls[l], 1e3 * ms[l] / calls[l], fuel[l] / calls[l] }'
  redis-cli -u redis://127.0.0.1:6379/0 del "$run_id-routed" >/dev/null || true
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
}

run baseline "tag"
run four-links "tag, jq, sample, route"
