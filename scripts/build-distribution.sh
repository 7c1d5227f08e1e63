#!/usr/bin/env bash
# Builds the otelcol-wasmtel distribution with the official OpenTelemetry
# Collector Builder (ocb v0.165.0) from go/builder-config.yaml, in one mode:
#
#   scripts/build-distribution.sh cgo      # runtime linked in (mode auto -> embedded)
#   scripts/build-distribution.sh nocgo    # CGO_ENABLED=0, the wasmtel binary built in
#                                          # (mode auto -> subprocess)
#
# Output: target/dist/otelcol-wasmtel-<mode>. The Rust side is the
# workspace's one build (scripts/build.sh); nothing is compiled twice.
set -euo pipefail
mode=${1:?usage: $0 cgo|nocgo}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/build.sh >&2

tools="$root/target/tools"
if [ ! -x "$tools/builder" ]; then
    echo "build-distribution: installing the collector builder (ocb) v0.165.0" >&2
    GOBIN="$tools" go install go.opentelemetry.io/collector/cmd/builder@v0.165.0
fi

# ocb generates the distribution's sources (next to the Go module, where
# builder-config.yaml's `replaces` expects them); the build is ours, so one
# generated tree serves both modes.
(cd go && "$tools/builder" --config builder-config.yaml --skip-compilation >&2)
src="$root/go/otelcol-wasmtel-dist"
out="$root/target/dist"
mkdir -p "$out"
case $mode in
    cgo)
        eval "$(scripts/ffi-env.sh)"
        (cd "$src" && go build -trimpath -o "$out/otelcol-wasmtel-cgo" .)
        ;;
    nocgo)
        # The child (wasmtel-bridge: the runtime and the engine's nodes, no
        # CLI) travels inside the collector, checked against this digest when run.
        embed="$root/go/wasmprocessor"
        objcopy --strip-debug target/debug/wasmtel-bridge "$embed/wasmtel_runtime.bin" 2>/dev/null \
            || cp target/debug/wasmtel-bridge "$embed/wasmtel_runtime.bin"
        sha256sum "$embed/wasmtel_runtime.bin" | cut -d' ' -f1 > "$embed/wasmtel_runtime.sha256"
        (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags wasmtel_embed_runtime -o "$out/otelcol-wasmtel-nocgo" .)
        ;;
    *) echo "usage: $0 cgo|nocgo" >&2; exit 2 ;;
esac
echo "$out/otelcol-wasmtel-$mode"
