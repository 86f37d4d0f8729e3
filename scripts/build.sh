#!/usr/bin/env bash
# Builds the npm package: wasm (cargo) -> JS glue (wasm-bindgen) -> wasm-opt -> TypeScript.
# RIFFLE_PROFILE=wasm-dev gives a fast unoptimised build for the inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${RIFFLE_PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riffle-target}"

start=$SECONDS
cargo build --profile "$profile" --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir pkg "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/riffle.wasm"
if [[ "$profile" == release && "${RIFFLE_WASM_OPT:-1}" == 1 ]]; then
  # npm's binaryen: Debian's wasm-opt (v108) silently breaks wasm-bindgen's externref table.
  node_modules/.bin/wasm-opt -Oz pkg/riffle_bg.wasm -o pkg/riffle_bg.wasm
fi
node_modules/.bin/tsc -p tsconfig.json
echo "built pkg/ and dist/ ($profile) in $((SECONDS - start)) s; wasm: $(wc -c < pkg/riffle_bg.wasm) bytes"
