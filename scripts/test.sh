#!/usr/bin/env bash
# Every test: Rust (fmt, clippy, unit + integration), then the npm package in Node, headless Chromium,
# Cloudflare workerd (via Miniflare) and Deno.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/riffle-target}"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
bash scripts/build.sh
node --test --test-concurrency=1 tests/node/ tests/browser/ tests/workerd/
DENO_DIR="$PWD/.deno" node_modules/.bin/deno test --allow-read --allow-env --allow-run=node --allow-net=127.0.0.1 --no-prompt tests/deno/
