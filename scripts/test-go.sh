#!/usr/bin/env bash
# Go side: vet and test the wasm processor and the distribution against the
# real Rust runtime and the built components.
set -euo pipefail
source "$(dirname "$0")/go-env.sh"
cd "$root/go"
go vet ./...
go test -count=1 ./...
