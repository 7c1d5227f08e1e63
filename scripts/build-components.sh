#!/usr/bin/env bash
# Builds every guest component (examples and test guests) for wasm32-wasip2 in
# one cargo invocation, then checks each without running it: it is a component,
# its manifest section survived, and it imports only what the sandbox allows.
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
# What the host grants (wasmtel:plugin host+types) and answers hermetically (std's WASI).
hermetic="wasmtel:plugin/host@0.1.0,wasmtel:plugin/types@0.1.0,wasi:cli/,wasi:io/,wasi:clocks/,wasi:filesystem/,wasi:random/"
for guest in "${guests[@]}"; do
    file="$out/${guest//-/_}.wasm"
    if ! command -v python3 >/dev/null; then
        # Without python, at least the header: a component's bytes 4..8 are 0d 00 01 00.
        if [ "$(head -c 8 "$file" | od -An -tx1 | tr -d ' \n')" != "0061736d0d000100" ]; then
            echo "build-components: $file is not a wasm component" >&2
            exit 1
        fi
        continue
    fi
    case "$guest" in
        wasmtel-test-socket) check=(--manifest "$guest" --needs wasi:sockets/) ;;
        wasmtel-test-future-major) check=(--needs wasmtel:plugin/types@1.0.0) ;;
        *) check=(--manifest "$guest" --only "$hermetic") ;;
    esac
    scripts/inspect-component.py "$file" "${check[@]}" || { echo "build-components: $file failed its checks" >&2; exit 1; }
done
echo "build-components: ${#guests[@]} components in $out"
