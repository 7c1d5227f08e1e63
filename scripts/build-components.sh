#!/usr/bin/env bash
# Builds every guest component (examples and test guests) for wasm32-wasip2 in
# one cargo invocation. tests/all/components.rs checks each without running it (a
# component, its manifest, the imports the sandbox answers).
# Output: ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/<crate_name>.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

guests=(wasmtel-redact wasmtel-filter wasmtel-sample
        wasmtel-test-identity wasmtel-test-hostile wasmtel-test-socket wasmtel-test-future-major)
args=()
for guest in "${guests[@]}"; do args+=(-p "$guest"); done
cargo build --locked --release --target wasm32-wasip2 "${args[@]}"

out="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release"
echo "build-components: ${#guests[@]} components in $out"
