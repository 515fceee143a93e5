#!/usr/bin/env sh
# Build my_link.wasm with ComponentizeJS (npm install @bytecodealliance/componentize-js).
set -eu
cd "$(dirname "$0")"
COMPONENTIZE_JS="${COMPONENTIZE_JS:-componentize-js}"
if ! command -v "$COMPONENTIZE_JS" >/dev/null 2>&1 && [ -x node_modules/.bin/componentize-js ]; then
  COMPONENTIZE_JS=node_modules/.bin/componentize-js
fi
"$COMPONENTIZE_JS" app.js --wit wit/link.wit -n link -o my_link.wasm -d stdio random clocks http fetch-event
echo "built my_link.wasm; try it: conserver link test my_link.wasm some.vcon.json"
