#!/usr/bin/env bash
# Go side: vet and test the wasm processor and the Rust exporters (both
# modes), check the generated Go side of the Rust factories, build the
# distribution with the official collector builder in both modes (cgo on:
# embedded; cgo off: the wasmtel-bridge binary built in), and run the
# end-to-end suite against each builder-built binary, with nothing of this
# checkout on PATH.
set -euo pipefail
source "$(dirname "$0")/go-env.sh"
cd "$root/go"
test -z "$(gofmt -l cmd wasmprocessor wasmchainconverter rustexporters rustprocessors rustreceivers)" || { gofmt -l cmd wasmprocessor wasmchainconverter rustexporters rustprocessors rustreceivers; echo "test-go: gofmt would change the files above" >&2; exit 1; }
# The Go side of the Rust factories is what the built runtime lists.
"$root/target/debug/wasmtel-bridge" factories | CGO_ENABLED=0 go run ./cmd/rustfactorygen -check
go vet ./...
go test -count=1 ./wasmprocessor/ ./wasmchainconverter/
# Without cgo the Rust exporters run in the bridge child and validate through it.
CGO_ENABLED=0 go test -count=1 -run 'Rust|Segment' ./wasmprocessor/
python=$("$root/scripts/setup-python.sh")
cd "$root"
embedded=$(scripts/build-distribution.sh cgo | tail -1)
subprocess=$(scripts/build-distribution.sh nocgo | tail -1)
cd go
WASMTEL_COLLECTOR_EMBEDDED="$embedded" WASMTEL_COLLECTOR_SUBPROCESS="$subprocess" WASMTEL_PYTHON="$python" \
    PATH="/usr/bin:/bin:$(dirname "$(command -v go)")" go test -count=1 ./cmd/...
