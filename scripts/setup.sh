#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test wasmtel; idempotent.
set -euo pipefail

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust with rustup first (https://rustup.rs)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 target (guest components)"
    rustup target add wasm32-wasip2
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$component"; then
        echo "setup: adding $component (every build lints with clippy; the test command checks formatting)"
        rustup component add "$component"
    fi
done
