#!/usr/bin/env bash
# Rust, Python and JavaScript `tag` components side by side, in one run, on a
# 4 KB vCon (ab_call_ext_rec_redacted.vcon, 4 140 bytes), through
# `conserver link test` (the real sandbox, the chain's read/write forms):
#   * cold load: compile the component into an empty cache;
#   * warm load: load it again from that cache (and the whole process's wall time);
#   * per call: CALLS calls in one process (a fresh instance each, as in a chain):
#     median and p90 wall time, and fuel.
# Usage: scripts/bench-script-links.sh [CALLS]   (needs `cargo build --release -p conserver`
# and `cargo xtask install-link-tools && cargo xtask build-links`)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/conserver}
LINKS=$(dirname "$BIN")/links
VCON=${VCON:-tests/fixtures/vcons/v0.4.0/call_redacted.vcon.json}
CALLS=${1:-200}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

files=()
for _ in $(seq "$CALLS"); do files+=("$VCON"); done

printf '%-22s %9s %9s %12s %10s %10s %14s\n' component size_MB cold_ms warm_load_ms warm_wall_ms call_p50_ms "call_p90_ms/fuel"
for component in tag.wasm testing/py_tag.wasm testing/js_tag.wasm; do
  path=$LINKS/$component
  cache=$WORK/cache-$(basename "$component" .wasm)
  cold=$(CONSERVER_COMPONENT_CACHE_DIR=$cache "$BIN" link test --json "$path" "$VCON" | python3 -c 'import json,sys; print(round(json.loads(sys.stdin.readline())["load_ms"], 1))')
  start=$(date +%s%N)
  warm=$(CONSERVER_COMPONENT_CACHE_DIR=$cache "$BIN" link test --json "$path" "$VCON" | python3 -c 'import json,sys; print(round(json.loads(sys.stdin.readline())["load_ms"], 1))')
  wall=$(( ($(date +%s%N) - start) / 1000000 ))
  CONSERVER_COMPONENT_CACHE_DIR=$cache "$BIN" link test --json "$path" "${files[@]}" > "$WORK/calls.jsonl"
  python3 - "$component" "$path" "$cold" "$warm" "$wall" "$WORK/calls.jsonl" <<'PY'
import json, os, statistics, sys
component, path, cold, warm, wall, calls = sys.argv[1:]
reports = [json.loads(line) for line in open(calls)]
times = sorted(r["call_ms"] for r in reports)
fuel = statistics.median(r["fuel"] for r in reports)
p90 = times[int(len(times) * 0.9) - 1]
print(f"{component:<22} {os.path.getsize(path) / 1e6:9.1f} {float(cold):9.1f} {float(warm):12.1f} {int(wall):10d} {statistics.median(times):10.3f} {p90:8.3f}/{fuel:,.0f}")
PY
done

# A chain of five large components (Python, JS, Rust, Python, JS) in one server,
# 4 vCons in flight: peak RSS and throughput, and the warm start-up time.
N=${N:-100}
PORT=${PORT:-18931}
cat > "$WORK/chain.yml" <<YAML
links:
  py1: {component: $LINKS/testing/py_tag.wasm}
  js1: {component: $LINKS/testing/js_tag.wasm}
  rs: {component: $LINKS/tag.wasm}
  py2: {component: $LINKS/testing/py_tag.wasm}
  js2: {component: $LINKS/testing/js_tag.wasm}
chains:
  mixed:
    links: [py1, js1, rs, py2, js2]
    ingress_lists: [mixed-in]
    egress_lists: [mixed-out]
YAML
export CONSERVER_COMPONENT_CACHE_DIR=$WORK/chain-cache
"$BIN" check "$WORK/chain.yml" >/dev/null
start=$(date +%s%N)
"$BIN" check "$WORK/chain.yml" >/dev/null
echo "warm start-up (check, 5 components from the cache): $(( ($(date +%s%N) - start) / 1000000 )) ms"
CONSERVER_DATA_DIR=$WORK/data CONSERVER_BIND=127.0.0.1:$PORT CONSERVER_VCON_CONCURRENCY=4 LOG_LEVEL=warn \
  "$BIN" serve --config "$WORK/chain.yml" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.05; done
python3 - "$PORT" "$N" "$VCON" "$SERVER" <<'PY'
import json, sys, time, urllib.request, uuid
port, n, path, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
doc = json.load(open(path))
base = f"http://127.0.0.1:{port}/api"
started = time.time()
for _ in range(n):
    doc["uuid"] = str(uuid.uuid4())
    request = urllib.request.Request(f"{base}/vcon?ingress_lists=mixed-in", json.dumps(doc).encode(), {"content-type": "application/json"})
    urllib.request.urlopen(request).read()
done = 0
while done < n and time.time() - started < 300:
    done += len(json.loads(urllib.request.urlopen(f"{base}/vcon/egress?egress_list=mixed-out&limit=1000").read()))
    time.sleep(0.05)
elapsed = time.time() - started
rss = next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmHWM")).split()[1]
print(f"mixed chain of 5 large components: {done}/{n} vCons in {elapsed:.1f} s ({done / elapsed:.1f} vCons/s), peak RSS {int(rss) / 1024:.0f} MiB")
PY
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
