#!/usr/bin/env bash
# Regenerates the Go side of the runtime's Rust node factories
# (go/wasmprocessor/rustfactories_gen.go, go/rustexporters/*exporter,
# go/rustprocessors/*processor) from
# the factory list the built runtime prints. scripts/test-go.sh checks them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/build.sh" >&2
"$root/target/debug/wasmtel-bridge" factories | (cd "$root/go" && CGO_ENABLED=0 go run ./cmd/rustfactorygen "$@")
