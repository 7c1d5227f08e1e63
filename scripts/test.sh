#!/usr/bin/env bash
# Runs every test: guest components are built once, then the whole Rust
# workspace is tested with the one dev profile, then the Go module.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh build gains nothing from incremental compilation, only its overhead.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Each stage prints the free disk too: CI's disk is small and not fixed.
stage() { printf '\n== %s (%ss elapsed, %s free)\n' "$1" "$SECONDS" "$(df -h --output=avail . | tail -1 | tr -d ' ')"; }

stage "build (components, workspace, all targets)"
scripts/build.sh
stage "lints (clippy ran inside the build; its warnings are errors here)"
# Cargo replays the build's cached diagnostics, so this compiles nothing.
if cargo build --locked --workspace --all-targets --message-format short 2>&1 | grep -E '^[^ ]+: (warning|error)'; then
    echo "test: fix the warnings above (the workspace lints are in Cargo.toml)" >&2
    exit 1
fi
stage "format (rustfmt; gofmt runs with the Go tests)"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)
stage "registry test prerequisites (docker-registry, oras)"
scripts/setup-registry.sh
stage "browser test prerequisites (chromium, playwright-core)"
scripts/setup-browser.sh
stage "rust workspace tests"
cargo test --workspace --locked
stage "python package (ruff, mypy, pytest)"
scripts/test-python.sh
if [ -x scripts/test-go.sh ]; then
    stage "go tests"
    scripts/test-go.sh
fi
# Every parser of outside bytes under libFuzzer + ASan for a short, bounded
# time; committed reproducers first (fuzz/README.md). Its own build: the
# sanitizer flags make it a different artifact from the one above.
if [ "${WASMTEL_FREE_DISK:-0}" = 1 ]; then
    # CI only (.ci/run): the sanitizer build needs none of the above, and a
    # fresh CI disk has run out while holding both builds (~13 GB).
    stage "free the main build and Go's build cache before the fuzz build"
    rm -rf target/debug target/dist
    if command -v go >/dev/null; then go clean -cache; fi
fi
stage "fuzz (${WASMTEL_FUZZ_SECONDS:-15}s per target)"
scripts/fuzz.sh "${WASMTEL_FUZZ_SECONDS:-15}"
stage "done"
