#!/usr/bin/env bash
# Go benchmarks of the wasm processor against an optimised runtime (see BENCHMARKS.md).
set -euo pipefail
source "$(dirname "$0")/go-env.sh"
cargo build --locked --release -p wasmtel-ffi --manifest-path "$root/Cargo.toml"
export CGO_CFLAGS="-DWASMTEL_FFI_STAMP=$(stat -c %Y-%s "$root/target/release/libwasmtel_ffi.a")"
cd "$root/go"
go test -tags wasmtel_release -run '^$' -bench . -benchmem -count=1 ./wasmprocessor/
