#!/usr/bin/env bash
# The live demo: installs and builds what is missing, then streams trades through a windowed query.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ! -f pkg/riffle_bg.wasm || ! -f dist/index.js ]] \
  || [[ -n "$(find src ts Cargo.toml Cargo.lock -newer dist/index.js -print -quit)" ]]; then
  bash scripts/build.sh
fi
exec node demo/trades.mjs "$@"
