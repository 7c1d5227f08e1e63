#!/usr/bin/env bash
# The Python package (python/): ruff (PEP 8, imports), mypy --strict over the
# package, its stubs and the tests, then pytest. The native module is the one
# the workspace build already made (target/debug/lib_native.so), linked into
# the package folder the way maturin installs it: no second cargo build.
# Run after scripts/build.sh (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
scripts/setup-python.sh > /dev/null
native=target/debug/lib_native.so
test -f "$native" || { echo "test-python: $native is missing; run scripts/build.sh first" >&2; exit 1; }
ln -sf "../../$native" python/wasmtel/_native.abi3.so
cd python
"../$venv/bin/ruff" check wasmtel tests benchmarks
"../$venv/bin/ruff" format --check wasmtel tests benchmarks
"../$venv/bin/mypy"
"../$venv/bin/python" -m pytest -q -p no:cacheprovider
