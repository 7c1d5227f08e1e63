#!/usr/bin/env bash
# Builds every guest component (examples and test guests) for wasm32-wasip2 in
# one cargo invocation. Output: $CARGO_TARGET_DIR/wasm32-wasip2/release/*.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

guests=(wasmtel-redact wasmtel-filter wasmtel-sample
        wasmtel-test-identity wasmtel-test-hostile wasmtel-test-socket wasmtel-test-future-major)
args=()
for guest in "${guests[@]}"; do args+=(-p "$guest"); done
cargo build --locked --release --target wasm32-wasip2 "${args[@]}"

out="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release"
for guest in "${guests[@]}"; do
    file="$out/${guest//-/_}.wasm"
    # Bytes 4..8 of a component are 0d 00 01 00 (a core module has 01 00 00 00).
    if [ "$(head -c 8 "$file" | od -An -tx1 | tr -d ' \n')" != "0061736d0d000100" ]; then
        echo "build-components: $file is not a wasm component" >&2
        exit 1
    fi
done
echo "build-components: ${#guests[@]} components in $out"
