#!/usr/bin/env bash
# Prints the environment a cgo build of the `wasm` processor needs to link
# the Rust runtime, for `eval "$(scripts/ffi-env.sh [PROFILE_DIR])"`:
# CGO_ENABLED, CGO_LDFLAGS pointing at libwasmtel_ffi.a (default: the
# workspace's one build, target/debug), and a stamp that makes Go relink
# when the library changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
libdir="${1:-$root/target/debug}"
if [ ! -f "$libdir/libwasmtel_ffi.a" ]; then
    echo "ffi-env: $libdir/libwasmtel_ffi.a is missing: run scripts/build.sh" >&2
    exit 1
fi
echo "export CGO_ENABLED=1"
echo "export CGO_LDFLAGS='-L$libdir'"
echo "export CGO_CFLAGS='-DWASMTEL_FFI_STAMP=$(stat -c %Y-%s "$libdir/libwasmtel_ffi.a")'"
