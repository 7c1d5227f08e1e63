package main

// Rust exporters at the end of collector pipelines: the wasm processors and
// the runtime's arrow_ipc and otap exporters run as one Rust segment (the
// converter folds them), and a real OTAP receiver (`wasmtel serve`) gets
// what the files get.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRustExportersEndThePipelineInOneCrossing(t *testing.T) {
	forEachBuild(t, testRustExporters)
}

// startServe runs `wasmtel serve` with an OTAP receiver on port writing
// Arrow files under dir; it is stopped (files finished) by the returned func.
func startServe(t *testing.T, port int, dir string) func() {
	t.Helper()
	spec := fmt.Sprintf(`
version: otel_dataflow/v1
engine: { http_admin: { bind_address: "127.0.0.1:%d" } }
policies: { resources: { core_allocation: { type: core_count, count: 1 } } }
groups:
  default:
    pipelines:
      main:
        nodes:
          otap: { type: "receiver:otap", config: { listening_addr: "127.0.0.1:%d", response_stream_channel_size: 64 } }
          files: { type: "urn:wasmtel:exporter:arrow_ipc", config: { directory: %q } }
        connections: [{ from: otap, to: files }]
`, freePort(t), port, dir)
	path := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repoRoot(t), "target", "debug", "wasmtel"), "serve", "--config", path)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	if !waitFor(30*time.Second, func() bool { return listening(port) }) {
		t.Fatalf("wasmtel serve did not listen on %d:\n%s", port, output.String())
	}
	return stop
}

// readArrow reads the finished Arrow files of each signal under dir with
// pyarrow (WASMTEL_PYTHON, the test venv scripts/setup-python.sh makes).
func readArrow(t *testing.T, dir string) map[string][]map[string]any {
	t.Helper()
	python := os.Getenv("WASMTEL_PYTHON")
	if python == "" {
		python = filepath.Join(repoRoot(t), "target", "python-venv", "bin", "python")
	}
	script := `
import json, pathlib, sys
import pyarrow as pa, pyarrow.ipc
out = {}
for signal in ("traces", "metrics", "logs"):
    tables = [pyarrow.ipc.open_stream(pa.OSFile(str(p))).read_all() for p in sorted(pathlib.Path(sys.argv[1], signal).glob("*.arrows"))]
    out[signal] = pa.concat_tables(tables).to_pylist() if tables else []
print(json.dumps(out, default=str))
`
	raw, err := exec.Command(python, "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("reading %s with pyarrow (%s; scripts/setup-python.sh makes it): %v", dir, python, err)
	}
	var rows map[string][]map[string]any
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// column is one column of rows, as strings.
func column(rows []map[string]any, name string) []string {
	values := make([]string, len(rows))
	for i, row := range rows {
		values[i] = fmt.Sprint(row[name])
	}
	return values
}

func testRustExporters(t *testing.T, build collectorBuild) {
	files, forwarded := t.TempDir(), t.TempDir()
	otapPort := freePort(t)
	stopServe := startServe(t, otapPort, forwarded)
	c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
processors:
  wasm/redact:
    component: %[1]s/wasmtel_redact.wasm
    config: { keys: [user.email], action: mask, mask: "<redacted>" }
  wasm/filter:
    component: %[1]s/wasmtel_filter.wasm
    config: { spans: { names: ["GET /health"] }, logs: { min_severity: 9 }, data_points: { metric_names: [debug.heap] } }
exporters:
  arrow_ipc:
    directory: %[2]s
  otap:
    grpc_endpoint: http://127.0.0.1:%[3]d
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [arrow_ipc, otap] }
    metrics: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [arrow_ipc, otap] }
    logs: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [arrow_ipc, otap] }
`, componentsDir(t), files, otapPort))

	const batches = 5
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for b := range batches {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i, name := range []string{"POST /pay", "GET /health", "GET /cart"} {
			span := spans.AppendEmpty()
			span.SetName(name)
			span.SetTraceID([16]byte{byte(b), byte(i), 3})
			span.SetSpanID([8]byte{byte(b), byte(i), 6})
			span.Attributes().PutStr("user.email", "ada@example.com")
		}
		ld := plog.NewLogs()
		records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for _, severity := range []plog.SeverityNumber{plog.SeverityNumberDebug, plog.SeverityNumberError} {
			record := records.AppendEmpty()
			record.SetSeverityNumber(severity)
			record.Body().SetStr("payment by ada " + severity.String())
			record.Attributes().PutStr("user.email", "ada@example.com")
		}
		md := pmetric.NewMetrics()
		metrics := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
		for _, name := range []string{"http.requests", "debug.heap"} {
			m := metrics.AppendEmpty()
			m.SetName(name)
			point := m.SetEmptyGauge().DataPoints().AppendEmpty()
			point.SetDoubleValue(float64(b))
			point.Attributes().PutStr("user.email", "ada@example.com")
		}
		// Each call returns once both exporters acknowledged the batch.
		if err := c.exportTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := c.exportLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
		if err := c.exportMetrics(ctx, md); err != nil {
			t.Fatal(err)
		}
	}
	// Shutdown drains the segment: the Arrow files are finished.
	c.stop(t)
	stopServe()

	for label, dir := range map[string]string{"arrow_ipc": files, "OTAP receiver": forwarded} {
		rows := readArrow(t, dir)
		// Every item sent is written or filtered by the policy: 3 spans per
		// batch, one a health check; 2 records, one DEBUG; 2 points, one debug.heap.
		if got := len(rows["traces"]); got != 2*batches {
			t.Errorf("%s: %d spans, want %d", label, got, 2*batches)
		}
		if got := len(rows["logs"]); got != batches {
			t.Errorf("%s: %d log records, want %d", label, got, batches)
		}
		if got := len(rows["metrics"]); got != batches {
			t.Errorf("%s: %d data points, want %d", label, got, batches)
		}
		for signal, name := range map[string]string{"traces": "name", "logs": "body", "metrics": "metric_name"} {
			for _, v := range column(rows[signal], name) {
				if strings.Contains(v, "GET /health") || strings.Contains(v, "debug.heap") || strings.Contains(v, "DEBUG") {
					t.Errorf("%s: a filtered %s row was written: %s", label, signal, v)
				}
			}
			for _, v := range column(rows[signal], "attributes") {
				if strings.Contains(v, "ada@example.com") || !strings.Contains(v, "<redacted>") {
					t.Errorf("%s: %s attributes not redacted: %s", label, signal, v)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("collector output:\n%s", c.output.String())
	}
}

// listening tells whether something accepts connections on the loopback port.
func listening(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func TestABadRustComponentConfigStopsTheCollectorNamingItAndTheKey(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		const breaker = "circuit_breaker/primary"
		for _, tc := range []struct{ component, processors, exporters, want string }{
			{`arrow_ipc/files: { directory: /tmp/x, directry: /tmp/y }`, "", "arrow_ipc/files", "directry"},
			{`arrow_ipc/files: { directory: /tmp/x, max_file_bytes: [1] }`, "", "arrow_ipc/files", "invalid type"},
			{`arrow_ipc/files: { directory: /tmp/x, compression: lz5 }`, "", "arrow_ipc/files", "lz5"},
			// A Rust processor is validated by its factory, in or out of a segment.
			{`circuit_breaker/primary: { failure_treshold: 2 }`, breaker, "noop", "failure_treshold"},
		} {
			processors, exporters := "", tc.component
			if tc.processors != "" {
				processors, exporters = tc.component, ""
			}
			config := fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: 127.0.0.1:%d } }
processors: { %s }
exporters: { noop: , debug: , %s }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [%s], exporters: [%s] }
`, freePort(t), processors, exporters, tc.processors, tc.exporters)
			path := filepath.Join(t.TempDir(), "collector.yaml")
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(buildCollector(t, build), "--config", path)
			cmd.Env = append(os.Environ(), "WASMTEL_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s: the collector started", tc.component)
			}
			id := tc.processors + tc.exporters
			if tc.processors != "" {
				id = tc.processors
			}
			for _, want := range []string{id, tc.want} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s: the error should name %q:\n%s", tc.component, want, out)
				}
			}
		}
	})
}

func TestShutdownUnderLoadAccountsForEveryBatch(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		files := t.TempDir()
		c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: "{{otlp}}" } }
processors:
  wasm/redact:
    component: %s/wasmtel_redact.wasm
    config: { keys: [user.email], action: mask }
exporters:
  arrow_ipc: { directory: %s }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/redact], exporters: [arrow_ipc] }
`, componentsDir(t), files))
		const senders = 4
		acked := make([][]string, senders)
		done := make(chan struct{})
		stopped := make(chan struct{})
		for g := range senders {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := 0; ; i++ {
					select {
					case <-stopped:
						return
					default:
					}
					name := fmt.Sprintf("span-%d-%d", g, i)
					td := ptrace.NewTraces()
					span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
					span.SetName(name)
					span.SetTraceID([16]byte{byte(g + 1), byte(i), byte(i >> 8)})
					span.SetSpanID([8]byte{byte(g + 1), byte(i), byte(i >> 8)})
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := c.exportTraces(ctx, td)
					cancel()
					if err == nil {
						acked[g] = append(acked[g], name)
					} else if i > 0 && strings.Contains(err.Error(), "connection refused") {
						return
					}
				}
			}()
		}
		time.Sleep(1500 * time.Millisecond)
		c.stop(t)
		close(stopped)
		for range senders {
			<-done
		}
		written := map[string]bool{}
		for _, name := range column(readArrow(t, files)["traces"], "name") {
			written[name] = true
		}
		total := 0
		for g := range senders {
			for _, name := range acked[g] {
				total++
				if !written[name] {
					t.Errorf("%s was acknowledged to its client but is in no file", name)
				}
			}
		}
		if total == 0 {
			t.Fatalf("no batch was acknowledged before shutdown:\n%s", c.output.String())
		}
		t.Logf("%d batches acknowledged, %d spans written", total, len(written))
	})
}

// The Rust circuit_breaker before a Rust exporter runs in its segment: the
// client's retries see retryable errors, the breaker opens and refuses at
// once (no connection attempt), and a probe after open_duration delivers.
func TestARustExporterWhoseUpstreamIsDownIsRetryableUntilItIsBack(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		port := freePort(t)
		c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: "{{otlp}}" } }
processors:
  circuit_breaker: { failure_threshold: 2, open_duration: 1s }
exporters:
  otap: { grpc_endpoint: "http://127.0.0.1:%d" }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [circuit_breaker], exporters: [otap] }
`, port))
		td := ptrace.NewTraces()
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("delivered once the upstream is back")
		span.SetTraceID([16]byte{1})
		span.SetSpanID([8]byte{1})
		var errs []error
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			errs = append(errs, c.exportTraces(ctx, td))
			cancel()
		}
		for i, err := range errs {
			if code := status.Code(err); code != codes.Unavailable {
				t.Fatalf("attempt %d: with the upstream down the client should see a retryable Unavailable, got %v", i, err)
			}
		}
		if strings.Contains(errs[1].Error(), "circuit breaker open") || !strings.Contains(errs[2].Error(), "circuit breaker open") {
			t.Fatalf("two failures should open the breaker:\n%v\n%v", errs[1], errs[2])
		}
		forwarded := t.TempDir()
		stopServe := startServe(t, port, forwarded)
		if !waitFor(60*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return c.exportTraces(ctx, td) == nil
		}) {
			t.Fatalf("the batch was never delivered after the upstream came back:\n%s", c.output.String())
		}
		c.stop(t)
		stopServe()
		names := column(readArrow(t, forwarded)["traces"], "name")
		if len(names) == 0 || names[len(names)-1] != "delivered once the upstream is back" {
			t.Fatalf("the OTAP receiver got %v", names)
		}
	})
}

// A Rust receiver as a collector receiver: the collector's Rust `otap`
// exporter sends OTel-Arrow to its own Rust `otap` receiver, whose pipeline
// (a Go wasm processor, the Go OTLP exporter) gets it back as pdata. The
// client's call returns once the sink has the span (wait_for_result).
func TestARustReceiverFeedsAGoPipeline(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		received, sinkAddr := startSink(t)
		port := freePort(t)
		c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: "{{otlp}}" } }
  otap/in:
    listening_addr: "127.0.0.1:%[1]d"
    wait_for_result: true
    response_stream_channel_size: 64
processors:
  wasm/redact:
    component: %[2]s/wasmtel_redact.wasm
    config: { keys: [user.email], action: mask, mask: "<redacted>" }
exporters:
  otap/out: { grpc_endpoint: "http://127.0.0.1:%[1]d" }
  otlp:
    endpoint: %[3]s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces/send: { receivers: [otlp], exporters: [otap/out] }
    traces/receive: { receivers: [otap/in], processors: [wasm/redact], exporters: [otlp] }
`, port, componentsDir(t), sinkAddr))
		td := ptrace.NewTraces()
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("over OTel-Arrow into the collector")
		span.SetTraceID([16]byte{9})
		span.SetSpanID([8]byte{9})
		span.Attributes().PutStr("user.email", "ada@example.com")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.exportTraces(ctx, td); err != nil {
			t.Fatalf("%v\n%s", err, c.output.String())
		}
		received.mu.Lock()
		defer received.mu.Unlock()
		if len(received.traces) != 1 {
			t.Fatalf("the sink got %d batches before the client's call returned:\n%s", len(received.traces), c.output.String())
		}
		got := received.traces[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		if got.Len() != 1 || got.At(0).Name() != "over OTel-Arrow into the collector" {
			t.Fatalf("the sink got %d spans", got.Len())
		}
		if email, _ := got.At(0).Attributes().Get("user.email"); email.Str() != "<redacted>" {
			t.Fatalf("user.email = %q", email.Str())
		}
	})
}
