#!/usr/bin/env sh
# Build my_link.wasm with componentize-py (pip install componentize-py).
set -eu
cd "$(dirname "$0")"
componentize-py -d wit/link.wit -w link componentize app -o my_link.wasm
echo "built my_link.wasm; try it: conserver link test my_link.wasm some.vcon.json"
