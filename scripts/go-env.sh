# Sourced by the Go build and test scripts: builds the Rust static library the
# cgo bridge links, and makes Go relink when it changed (Go's build cache does
# not track the .a file itself, only the flags).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh" >&2
lib="$root/target/debug/libwasmtel_ffi.a"
export CGO_ENABLED=1
export CGO_CFLAGS="-DWASMTEL_FFI_STAMP=$(stat -c %Y-%s "$lib")"
export GOFLAGS="${GOFLAGS:--mod=mod}"
