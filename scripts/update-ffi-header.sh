#!/usr/bin/env bash
# Regenerates runtime/ffi/include/wasmtel.h (cbindgen runs in the crate's build script).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out=$(ls -td target/debug/build/wasmtel-ffi-*/out | head -1)
cp "$out/wasmtel.h" runtime/ffi/include/wasmtel.h
echo "updated runtime/ffi/include/wasmtel.h"
