# Sourced by the Go build and test scripts: builds the Rust static library the
# cgo bridge links (and the wasmtel binary subprocess mode runs), points cgo
# and PATH at them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh" >&2
eval "$("$root/scripts/ffi-env.sh")"
export PATH="$root/target/debug:$PATH"
# Tests and builds must not rewrite go.mod or go.sum.
export GOFLAGS="${GOFLAGS:--mod=readonly}"
