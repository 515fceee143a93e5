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
VCON=${VCON:-../shared/fixtures/vcons/ab_call_ext_rec_redacted.vcon}
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
