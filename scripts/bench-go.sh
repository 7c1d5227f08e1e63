#!/usr/bin/env bash
# Go benchmarks of the wasm processor in both modes against an optimised
# runtime: libwasmtel_ffi.a and wasmtel-bridge from a release build (see
# BENCHMARKS.md). Extra arguments go to `go test` (e.g. -count=5).
set -euo pipefail
source "$(dirname "$0")/go-env.sh"
cargo build --locked --release -p wasmtel-ffi -p wasmtel-bridge --manifest-path "$root/Cargo.toml"
eval "$("$root/scripts/ffi-env.sh" "$root/target/release")"
export PATH="$root/target/release:$PATH"
cd "$root/go"
go test -run '^$' -bench . -benchmem -count=1 "$@" ./wasmprocessor/
