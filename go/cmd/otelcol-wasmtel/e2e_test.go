package main

// End to end: the real collector binary, real OTLP over gRPC in, the wasm
// processors in the pipeline, and what its OTLP exporter sends checked in a
// gRPC sink served by this test.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type sink struct {
	mu     sync.Mutex
	traces []ptrace.Traces
	logs   []plog.Logs
}

type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	*sink
}

func (s traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traces = append(s.traces, req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

type logSink struct {
	plogotlp.UnimplementedGRPCServer
	*sink
}

func (s logSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, req.Logs())
	return plogotlp.NewExportResponse(), nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildCollector builds this distribution into the test's temp dir.
func buildCollector(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "otelcol-wasmtel")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCollectorRedactsAndFiltersOverGRPC(t *testing.T) {
	root := repoRoot(t)
	components := filepath.Join(root, "target", "wasm32-wasip2", "release")
	if _, err := os.Stat(filepath.Join(components, "wasmtel_redact.wasm")); err != nil {
		t.Fatalf("build the guests first with scripts/build-components.sh: %v", err)
	}

	received := &sink{}
	server := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(server, &traceSink{sink: received})
	plogotlp.RegisterGRPCServer(server, &logSink{sink: received})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(listener) }()
	defer server.Stop()

	inPort := freePort(t)
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  wasm/redact:
    component: %[2]s/wasmtel_redact.wasm
    config: { keys: [user.email], action: mask, mask: "<redacted>" }
  wasm/filter:
    component: %[2]s/wasmtel_filter.wasm
    config: { spans: { names: ["GET /health"] }, logs: { min_severity: 9 } }
exporters:
  otlp:
    endpoint: %[3]s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [otlp] }
    logs: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [otlp] }
`, inPort, components, listener.Addr().String())
	configPath := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	collector := exec.Command(buildCollector(t), "--config", configPath)
	var output strings.Builder
	collector.Stdout, collector.Stderr = &output, &output
	collector.Env = append(os.Environ(), "WASMTEL_HOME="+t.TempDir())
	if err := collector.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = collector.Process.Signal(os.Interrupt)
		_ = collector.Wait()
	}()

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", inPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	traces := ptrace.NewTraces()
	spans := traces.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for _, name := range []string{"POST /pay", "GET /health"} {
		span := spans.AppendEmpty()
		span.SetName(name)
		span.SetTraceID([16]byte{1, 2, 3})
		span.SetSpanID([8]byte{4, 5, 6})
		span.Attributes().PutStr("user.email", "ada@example.com")
	}
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, severity := range []plog.SeverityNumber{plog.SeverityNumberDebug, plog.SeverityNumberError} {
		record := records.AppendEmpty()
		record.SetSeverityNumber(severity)
		record.Body().SetStr(severity.String())
		record.Attributes().PutStr("user.email", "ada@example.com")
	}

	// The receiver may not listen yet: retry until the collector is up.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector never accepted traces: %v\n%s", err, output.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(logs)); err != nil {
		t.Fatal(err)
	}

	for time.Now().Before(deadline) {
		received.mu.Lock()
		done := len(received.traces) > 0 && len(received.logs) > 0
		received.mu.Unlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	received.mu.Lock()
	defer received.mu.Unlock()
	if len(received.traces) != 1 || len(received.logs) != 1 {
		t.Fatalf("got %d trace and %d log exports\n%s", len(received.traces), len(received.logs), output.String())
	}
	gotSpans := received.traces[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	if gotSpans.Len() != 1 || gotSpans.At(0).Name() != "POST /pay" {
		t.Fatalf("the health check span should be filtered out, got %d spans", gotSpans.Len())
	}
	if v, _ := gotSpans.At(0).Attributes().Get("user.email"); v.Str() != "<redacted>" {
		t.Fatalf("span attribute not redacted: %q", v.Str())
	}
	gotLogs := received.logs[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	if gotLogs.Len() != 1 || gotLogs.At(0).SeverityNumber() != plog.SeverityNumberError {
		t.Fatalf("the DEBUG record should be filtered out, got %d records", gotLogs.Len())
	}
	if v, _ := gotLogs.At(0).Attributes().Get("user.email"); v.Str() != "<redacted>" {
		t.Fatalf("log attribute not redacted: %q", v.Str())
	}
}

func TestCollectorRefusesToStartWithABadPlugin(t *testing.T) {
	root := repoRoot(t)
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: 127.0.0.1:%d } }
processors:
  wasm/strict:
    component: %s
    config: { reject: "this plugin needs a tenant id" }
exporters:
  debug: {}
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/strict], exporters: [debug] }
`, freePort(t), filepath.Join(root, "target", "wasm32-wasip2", "release", "wasmtel_test_hostile.wasm"))
	configPath := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildCollector(t), "--config", configPath)
	cmd.Env = append(os.Environ(), "WASMTEL_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the collector started with a plugin whose init rejects its config")
	}
	for _, want := range []string{"wasm/strict", "this plugin needs a tenant id"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("start-up error should name %q:\n%s", want, out)
		}
	}
}
