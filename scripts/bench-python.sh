#!/usr/bin/env bash
# Python exporter benchmark (BENCHMARKS.md, "Python exporter"): installs the
# package as a user would (`pip install ./python[sdk]`, maturin's release
# build) into its own venv with the SDK's OTLP/gRPC exporter, builds the
# optimised `wasmtel` for `wasmtel serve`, then runs
# python/benchmarks/exporter_throughput.py (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-components.sh
cargo build --release --locked -p wasmtel-cli
venv=target/python-bench-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    './python[sdk]' pyarrow==26.0.1 opentelemetry-exporter-otlp-proto-grpc==1.45.2
"$venv/bin/python" python/benchmarks/exporter_throughput.py --wasmtel target/release/wasmtel "$@"
