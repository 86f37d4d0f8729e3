#!/usr/bin/env bash
# Installs what building (and, with --with-browser, testing) Riffle needs.
# Idempotent: skips what is already present, so every entry point calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
[[ "${1:-}" == "--with-browser" ]] && with_browser=1

packages=()
((with_browser)) && { command -v chromium >/dev/null || packages+=(chromium); }
if ((${#packages[@]})); then
  sudo=""; [[ "$(id -u)" == 0 ]] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${packages[@]}"
fi

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The shipped wasm is built by a pinned nightly that rebuilds the standard
# library without panic messages (scripts/build.sh); it needs rust-src.
nightly=$(sed -n 's/^nightly=//p' scripts/wasm-toolchain)
if ! rustup component list --toolchain "$nightly" --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup toolchain install "$nightly" --profile minimal --component rust-src
fi

# The CLI must match the wasm-bindgen crate exactly (pinned with = in Cargo.toml).
wb_version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' Cargo.toml)
if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]]; then
  # Not --locked: one locked dependency is missing from the registry index.
  cargo install wasm-bindgen-cli --version "$wb_version"
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
