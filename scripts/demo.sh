#!/usr/bin/env bash
# The live demo: installs and builds what is missing, then serves the dashboard (www/) and the local
# event feed on 127.0.0.1 and prints the URL. Open it in a browser; Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f pkg/riffle_bg.wasm || ! -f dist/index.js ]] \
  || [[ -n "$(find src ts Cargo.toml Cargo.lock -newer dist/index.js -print -quit)" ]]; then
  bash scripts/build.sh
fi
exec node demo/serve.mjs "$@"
