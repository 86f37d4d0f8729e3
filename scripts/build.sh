#!/usr/bin/env bash
# Builds the npm package: wasm (cargo) -> JS glue (wasm-bindgen) -> TypeScript.
# RIFFLE_WASM_OPT=Oz runs wasm-opt -Oz instead of the light passes (smaller raw, larger compressed);
# RIFFLE_WASM_OPT=0 skips wasm-opt (for measuring quickly; not a shippable size).
# RIFFLE_PROFILE=wasm-dev gives a fast unoptimised build for the inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${RIFFLE_PROFILE:-release}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riffle-target}"

start=$SECONDS
if [[ "$profile" == wasm-dev ]]; then
  cargo build --profile "$profile" --target wasm32-unknown-unknown
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/riffle.wasm"
else
  # Shipped builds: the pinned nightly rebuilds std for size with panics
  # that trap at once (no message formatting, no file:line strings):
  # session 12, 4,986,319 -> 4,599,841 bytes gzip (BENCHMARKS.md). Its own
  # target directory, so a stable build of the same profile never leaves
  # its riffle.wasm where this one is read. RUSTFLAGS replaces the flags of
  # .cargo/config.toml, so they are repeated here.
  nightly=$(sed -n 's/^nightly=//p' scripts/wasm-toolchain)
  rustup component list --toolchain "$nightly" --installed 2>/dev/null | grep -q '^rust-src' || bash scripts/setup.sh
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/nightly"
  RUSTFLAGS='--cfg getrandom_backend="wasm_js" -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none' \
    cargo "+$nightly" build --profile "$profile" --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/$profile/riffle.wasm"
fi
wasm-bindgen --target web --out-dir pkg "$wasm"
if [[ "$profile" == release && "${RIFFLE_WASM_OPT:-}" != 0 ]]; then
  # npm's binaryen: Debian's wasm-opt (v108) silently breaks wasm-bindgen's externref table.
  # Not -Oz: on this module it cuts the raw size but makes the gzip and
  # brotli downloads 6% larger. These passes (1.5 min) merge duplicate
  # functions and functions that differ only in constants (monomorphised
  # kernels), drop dead arguments and code, and order functions so gzip
  # finds more repeats (session 9: 5,013,531 -> 4,976,432 bytes gzip by
  # merge-similar-functions, dae and vacuum). wasm-opt drops the name
  # section (8.5 MB) on output; keep it on input: the same passes on a
  # module without names measured 5.49 MB gzip instead of 4.95 MB.
  # First two rounds of peephole clean-ups that shrink code without
  # inlining or restructuring (instruction combining, unneeded branches,
  # redundant local sets): session 11, 5,009,898 -> 4,983,726 bytes gzip,
  # 3.445 -> 3.417 MB brotli (--code-folding and --coalesce-locals, tried
  # too, made the gzip larger).
  passes=(--optimize-instructions --remove-unused-brs --rse --optimize-instructions --remove-unused-brs --vacuum
    --duplicate-function-elimination --remove-unused-module-elements --merge-similar-functions
    --dae --vacuum --duplicate-function-elimination --reorder-functions)
  [[ "${RIFFLE_WASM_OPT:-}" == Oz ]] && passes=(-Oz)
  node_modules/.bin/wasm-opt "${passes[@]}" --strip-debug --strip-producers pkg/riffle_bg.wasm -o pkg/riffle_bg.wasm
fi
node_modules/.bin/tsc -p tsconfig.json
echo "built pkg/ and dist/ ($profile) in $((SECONDS - start)) s; wasm: $(wc -c < pkg/riffle_bg.wasm) bytes"
