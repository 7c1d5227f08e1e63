package main

// End to end: the real collector binary, real OTLP over gRPC in, the wasm
// processors in the pipeline, and what its OTLP exporter sends checked in a
// gRPC sink served by this test.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestCollectorRedactsAndFiltersOverGRPC(t *testing.T) {
	forEachBuild(t, testRedactsAndFilters)
}

func testRedactsAndFilters(t *testing.T, build collectorBuild) {
	received, sinkAddr := startSink(t)
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
    config: { spans: { names: ["GET /health"] }, logs: { min_severity: 9 } }
exporters:
  otlp:
    endpoint: %[2]s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [otlp] }
    logs: { receivers: [otlp], processors: [wasm/redact, wasm/filter], exporters: [otlp] }
`, componentsDir(t), sinkAddr))

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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.exportTraces(ctx, traces); err != nil {
		t.Fatal(err)
	}
	if err := c.exportLogs(ctx, logs); err != nil {
		t.Fatal(err)
	}

	waitFor(10*time.Second, func() bool {
		received.mu.Lock()
		defer received.mu.Unlock()
		return len(received.traces) > 0 && len(received.logs) > 0
	})
	received.mu.Lock()
	defer received.mu.Unlock()
	if len(received.traces) != 1 || len(received.logs) != 1 {
		t.Fatalf("got %d trace and %d log exports\n%s", len(received.traces), len(received.logs), c.output.String())
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
	forEachBuild(t, testRefusesABadPlugin)
}

// bridgeProcesses lists the running `… bridge --socket …` processes.
func bridgeProcesses() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "bridge\x00--socket") {
			if pid, err := strconv.Atoi(entry.Name()); err == nil && processAlive(pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

func testRefusesABadPlugin(t *testing.T, build collectorBuild) {
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
	before := bridgeProcesses()
	cmd := exec.Command(buildCollector(t, build), "--config", configPath)
	cmd.Env = append(os.Environ(), "WASMTEL_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the collector started with a plugin whose init rejects its config")
	}
	// Only new children count: other tests' bridges come and go meanwhile.
	started := func() []int {
		var children []int
		for _, pid := range bridgeProcesses() {
			if !slices.Contains(before, pid) {
				children = append(children, pid)
			}
		}
		return children
	}
	if !waitFor(5*time.Second, func() bool { return len(started()) == 0 }) {
		t.Fatalf("a bridge child outlived the failed start: %v", started())
	}
	for _, want := range []string{"wasm/strict", "this plugin needs a tenant id"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("start-up error should name %q:\n%s", want, out)
		}
	}
}

// A cgo-off collector started without HOME or a cache directory (a service
// with no home) runs its built-in bridge; killed with SIGKILL it leaves its
// socket directory behind, and the next start removes it.
func TestAKilledCollectorLeavesNoSocketTheNextStartKeeps(t *testing.T) {
	build := builds[1] // subprocess
	received, sinkAddr := startSink(t)
	config := redactPipeline(t, sinkAddr, "")
	// Short: the bridge's socket path must fit in sun_path (108 bytes).
	tmp, err := os.MkdirTemp("", "wt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CACHE_HOME=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "TMPDIR="+tmp, "WASMTEL_HOME="+t.TempDir())
	socketDirs := func() []string {
		dirs, _ := filepath.Glob(filepath.Join(tmp, "wasmtel-bridge-*"))
		return dirs
	}

	first := startCollectorIn(t, build, config, env)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.exportRawTraces(ctx, traceRequest(secretSpan("before-kill"))); err != nil {
		t.Fatalf("no HOME: %v\n%s", err, first.output.String())
	}
	stale := socketDirs()
	if len(stale) != 1 {
		t.Fatalf("want one bridge socket directory in %s, got %v", tmp, stale)
	}
	if _, err := os.Stat(filepath.Join(stale[0], "bridge.sock")); err != nil {
		t.Fatal(err)
	}
	bridge := childrenOf(first.pid)
	if err := syscall.Kill(first.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return len(bridge) == 1 && !processAlive(bridge[0]) }) {
		t.Fatalf("the bridge child %v outlived its collector", bridge)
	}
	if _, err := os.Stat(filepath.Join(stale[0], "bridge.sock")); err != nil {
		t.Fatalf("SIGKILL leaves the socket behind (nothing could remove it): %v", err)
	}

	second := startCollectorIn(t, build, config, env)
	if err := second.exportRawTraces(ctx, traceRequest(secretSpan("after-restart"))); err != nil {
		t.Fatalf("%v\n%s", err, second.output.String())
	}
	if _, err := os.Stat(stale[0]); !os.IsNotExist(err) {
		t.Fatalf("the killed collector's socket directory %s survived the next start (%v)", stale[0], err)
	}
	if now := socketDirs(); len(now) != 1 || now[0] == stale[0] {
		t.Fatalf("want only the new collector's socket directory, got %v", now)
	}
	if !waitFor(5*time.Second, func() bool { return len(received.spans()) >= 2 }) {
		t.Fatalf("exported %d spans, want 2", len(received.spans()))
	}
}

// wasm and Rust engine processors between Go components: the run crosses
// into the engine once (the converter folds it into one segment processor)
// and what its processors let through comes back for the Go exporter; the
// client's call returns once the Go exporter has it.
func TestRustProcessorsBetweenGoComponentsHandTheirOutputOn(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		received, sinkAddr := startSink(t)
		c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
processors:
  batch:
  wasm/redact:
    component: %[1]s/wasmtel_redact.wasm
    config: { keys: [user.email], action: mask, mask: "<redacted>" }
  rust_batch: { max_batch_duration: 50ms }
  circuit_breaker: { failure_threshold: 3 }
exporters:
  otlp:
    endpoint: %[2]s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [batch, wasm/redact, rust_batch, circuit_breaker], exporters: [otlp] }
`, componentsDir(t), sinkAddr))
		td := ptrace.NewTraces()
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("through the engine and back")
		span.SetTraceID([16]byte{7})
		span.SetSpanID([8]byte{7})
		span.Attributes().PutStr("user.email", "ada@example.com")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.exportTraces(ctx, td); err != nil {
			t.Fatalf("%v\n%s", err, c.output.String())
		}
		// The Go batch processor answers before its flush, so wait for the sink.
		if !waitFor(10*time.Second, func() bool {
			received.mu.Lock()
			defer received.mu.Unlock()
			return len(received.traces) > 0
		}) {
			t.Fatalf("the Go exporter got nothing:\n%s", c.output.String())
		}
		received.mu.Lock()
		defer received.mu.Unlock()
		got := received.traces[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		if got.Len() != 1 || got.At(0).Name() != "through the engine and back" {
			t.Fatalf("the Go exporter got %d spans", got.Len())
		}
		if email, _ := got.At(0).Attributes().Get("user.email"); email.Str() != "<redacted>" {
			t.Fatalf("the wasm member did not run: user.email = %q", email.Str())
		}
	})
}
