#!/usr/bin/env bash
# Builds everything once, with one feature set: the guest components (wasm)
# and the whole workspace with all targets (the CLI, the static library the Go
# bridge links, every test). Selecting fewer packages would resolve shared
# dependencies with other features and rebuild them, so every script calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-components.sh
# --timings: target/cargo-timings/cargo-timing.html says where the build's
# time goes (README, "Build cost").
cargo build --locked --workspace --all-targets --timings
