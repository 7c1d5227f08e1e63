#!/usr/bin/env bash
# The main job: build the runtime, the example components and the collector
# distribution; run a collector pipeline (OTLP in -> wasm/redact ->
# wasm/filter -> debug exporter) on embedded defaults, send it the shipped
# sample telemetry, and show what comes out. Then the same components through
# the author CLI, before/after.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
wasmtel=target/debug/wasmtel
components=${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release
export WASMTEL_HOME=${WASMTEL_HOME:-$PWD/target/wasmtel-home}

show() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

show "building the collector distribution (go/cmd/otelcol-wasmtel) and the load client"
source scripts/go-env.sh
(cd go && go build -o ../target/otelcol-wasmtel ./cmd/otelcol-wasmtel && go build -o ../target/wasmtel-load ./cmd/wasmtel-load)

port=${OTLP_GRPC_PORT:-4317}
show "collector: examples/collector.yaml on 127.0.0.1:$port"
OTLP_GRPC_PORT=$port target/otelcol-wasmtel --config examples/collector.yaml > target/demo-collector.log 2>&1 &
collector=$!
trap 'kill $collector 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    grep -q "Everything is ready" target/demo-collector.log 2>/dev/null && break
    if ! kill -0 $collector 2>/dev/null; then cat target/demo-collector.log; exit 1; fi
    sleep 0.2
done
target/wasmtel-load -endpoint "127.0.0.1:$port" -data examples/data
sleep 1.5
kill -INT $collector; wait $collector || true
show "what reached the debug exporter (emails, tokens, card numbers hashed; /health, /readyz spans and DEBUG logs filtered)"
grep -E "Name +:|-> (user.email|http.route|customer.phone|payment.card_number|http.request.header.authorization|db.statement)|SeverityText|Body:|ResourceSpans|ResourceLogs|ResourceMetrics|-> Name:" target/demo-collector.log
echo "full collector output: target/demo-collector.log"

show "the same components through the author CLI: redact traces (examples/redact.yaml)"
"$wasmtel" run "$components/wasmtel_redact.wasm" --plugin-config examples/redact.yaml \
    --signal traces --input examples/data/traces.json > target/demo-redacted-traces.json
echo "before:"; grep -oE '"stringValue": "[^"]*@[^"]*"|"stringValue": "(Bearer|4111)[^"]*"' examples/data/traces.json | sort -u
echo "after:";  grep -E '"(user.email|customer.phone|payment.card_number|http.request.header.authorization|db.statement)"' -A2 target/demo-redacted-traces.json | grep -oE '"stringValue": "[^"]*"'

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
