#!/usr/bin/env bash
# Go side: vet and test the wasm processor (both modes), build the
# distribution with the official collector builder in both modes (cgo on:
# embedded; cgo off: the wasmtel-bridge binary built in), and run the
# end-to-end suite against each builder-built binary, with nothing of this
# checkout on PATH.
set -euo pipefail
source "$(dirname "$0")/go-env.sh"
cd "$root/go"
test -z "$(gofmt -l cmd wasmprocessor wasmchainconverter)" || { gofmt -l cmd wasmprocessor wasmchainconverter; echo "test-go: gofmt would change the files above" >&2; exit 1; }
go vet ./...
go test -count=1 ./wasmprocessor/ ./wasmchainconverter/
cd "$root"
embedded=$(scripts/build-distribution.sh cgo | tail -1)
subprocess=$(scripts/build-distribution.sh nocgo | tail -1)
cd go
WASMTEL_COLLECTOR_EMBEDDED="$embedded" WASMTEL_COLLECTOR_SUBPROCESS="$subprocess" \
    PATH="/usr/bin:/bin:$(dirname "$(command -v go)")" go test -count=1 ./cmd/...
