#!/usr/bin/env bash
# The main job: build the runtime, the example components and the collector
# distribution (with the official builder, cgo on and off); run a collector
# pipeline (OTLP in -> wasm/redact -> wasm/filter -> debug exporter) on
# embedded defaults in both modes, send it the shipped sample telemetry, and
# show what comes out; then the same pipeline ending in the runtime's
# arrow_ipc exporter (examples/collector-arrow.yaml), in both modes, with the
# files read back. Then the same components through the author CLI,
# before/after.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
wasmtel=$PWD/target/debug/wasmtel
components=${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release
export WASMTEL_HOME=${WASMTEL_HOME:-$PWD/target/wasmtel-home}

show() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

show "building the collector distribution with the OpenTelemetry Collector Builder, in both modes"
source scripts/go-env.sh
embedded=$(scripts/build-distribution.sh cgo | tail -1)
subprocess=$(scripts/build-distribution.sh nocgo | tail -1)
(cd go && go build -o ../target/wasmtel-load ./cmd/wasmtel-load)

port=${OTLP_GRPC_PORT:-4317}
# send_sample_data BINARY CONFIG LOG: starts the collector, waits until it is
# ready, sends the sample data, and stops it (it drains on the way out).
send_sample_data() {
    local binary=$1 config=$2 log=$3
    OTLP_GRPC_PORT=$port "$binary" --config "$config" > "$log" 2>&1 &
    local collector=$!
    for _ in $(seq 1 150); do
        grep -q "Everything is ready" "$log" 2>/dev/null && break
        if ! kill -0 $collector 2>/dev/null; then cat "$log"; exit 1; fi
        sleep 0.2
    done
    target/wasmtel-load -endpoint "127.0.0.1:$port" -data examples/data
    # The debug exporter prints from its own goroutine: give it a moment.
    sleep 1.5
    kill -INT $collector; wait $collector || true
}
# run_collector BINARY LABEL: examples/collector.yaml on the sample data.
run_collector() {
    local binary=$1 label=$2 log=target/demo-collector-$2.log
    show "collector ($label): examples/collector.yaml on 127.0.0.1:$port"
    send_sample_data "$binary" examples/collector.yaml "$log"
    show "what reached the debug exporter ($label): emails, tokens, card numbers hashed (log bodies too); /health, /readyz spans and DEBUG logs filtered"
    grep -E "Name +:|-> (user.email|http.route|customer.phone|payment.card_number|http.request.header.authorization|db.statement)|SeverityText|Body:|ResourceSpans|ResourceLogs|ResourceMetrics|-> Name:" "$log"
    echo "full collector output: $log"
}
# Embedded: the runtime linked in (cgo). Subprocess: a collector built with
# cgo off runs its plugins in the wasmtel binary built into it.
run_collector "$embedded" embedded
PATH=/usr/bin:/bin run_collector "$subprocess" subprocess

# run_arrow BINARY LABEL: examples/collector-arrow.yaml (the same pipeline
# ending in the runtime's arrow_ipc exporter: one Rust segment), then the
# Arrow files read back with pyarrow.
python=$(scripts/setup-python.sh)
run_arrow() {
    local binary=$1 label=$2 log=target/demo-collector-arrow-$2.log data=target/demo-arrow-$2
    rm -rf "$data"
    show "collector ($label): examples/collector-arrow.yaml -> Arrow IPC files under $data"
    # Shutdown drains the segment and finishes the files.
    WASMTEL_DATA=$data send_sample_data "$binary" examples/collector-arrow.yaml "$log"
    show "the Arrow files ($label), read with pyarrow"
    "$python" - "$data" <<'PY'
import pathlib, sys
import pyarrow as pa, pyarrow.ipc
for signal, column in (("traces", "name"), ("metrics", "metric_name"), ("logs", "body")):
    files = sorted(pathlib.Path(sys.argv[1], signal).glob("*.arrows"))
    table = pa.concat_tables([pyarrow.ipc.open_stream(pa.OSFile(str(f))).read_all() for f in files])
    print(f"{signal}: {table.num_rows} rows in {len(files)} file(s); {column}: {table.column(column).to_pylist()}")
    emails = [dict(a or []).get("user.email") for a in table.column("attributes").to_pylist()]
    print(f"  user.email: {[e for e in emails if e]}")
PY
    echo "full collector output: $log"
}
run_arrow "$embedded" embedded
PATH=/usr/bin:/bin run_arrow "$subprocess" subprocess

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
