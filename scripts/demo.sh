#!/usr/bin/env bash
# The main job: build the runtime, the CLI and the example components, then
# run `redact` and `filter` over the shipped sample telemetry, before/after.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
wasmtel=target/debug/wasmtel
components=${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release
export WASMTEL_HOME=${WASMTEL_HOME:-$PWD/target/wasmtel-home}

show() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

show "redact traces: emails, tokens and card numbers hashed (examples/redact.yaml)"
"$wasmtel" run "$components/wasmtel_redact.wasm" --plugin-config examples/redact.yaml \
    --signal traces --input examples/data/traces.json > target/demo-redacted-traces.json
diff <(grep -E '"(stringValue)"' examples/data/traces.json | sed 's/^ *//') \
     <(grep -E '"stringValue"' target/demo-redacted-traces.json | sed 's/^ *//') || true

show "filter traces: health and readiness checks dropped (examples/filter.yaml)"
"$wasmtel" run "$components/wasmtel_filter.wasm" --plugin-config examples/filter.yaml \
    --signal traces --input examples/data/traces.json | grep '"name"' || true

for signal in logs metrics; do
    show "redact then filter $signal"
    "$wasmtel" run "$components/wasmtel_redact.wasm" --plugin-config examples/redact.yaml \
        --signal "$signal" --input "examples/data/$signal.json" --output-pb "target/demo-$signal.pb"
    "$wasmtel" run "$components/wasmtel_filter.wasm" --plugin-config examples/filter.yaml \
        --signal "$signal" --input "target/demo-$signal.pb" > "target/demo-$signal.json"
    echo "output: target/demo-$signal.json"
done

show "what the redact component is (no guest code runs for this)"
"$wasmtel" inspect "$components/wasmtel_redact.wasm"
