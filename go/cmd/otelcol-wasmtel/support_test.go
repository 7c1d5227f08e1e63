package main

// Shared by the end-to-end tests: an OTLP gRPC sink standing in for the
// backend, the collector binary started on a config, and a client that can
// send hand-written (even hostile) OTLP bytes.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// sink records what the collector's OTLP exporter delivers.
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

// startSink serves the sink on a loopback port until the test ends.
func startSink(t *testing.T) (*sink, string) {
	t.Helper()
	received := &sink{}
	server := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(server, &traceSink{sink: received})
	plogotlp.RegisterGRPCServer(server, &logSink{sink: received})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return received, listener.Addr().String()
}

// spans returns every exported span, with its attributes as raw values.
func (s *sink) spans() []ptrace.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ptrace.Span
	for _, td := range s.traces {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			scopes := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < scopes.Len(); j++ {
				spans := scopes.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					out = append(out, spans.At(k))
				}
			}
		}
	}
	return out
}

// containsText reports whether any exported span carries text anywhere (name
// or attribute values, nested ones included).
func (s *sink) containsText(text string) bool {
	for _, span := range s.spans() {
		if strings.Contains(span.Name(), text) {
			return true
		}
		found := false
		span.Attributes().Range(func(_ string, v pcommon.Value) bool {
			found = strings.Contains(v.AsString(), text)
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot(t testing.TB) string {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// componentsDir is where scripts/build-components.sh puts the guests.
func componentsDir(t testing.TB) string {
	dir := filepath.Join(repoRoot(t), "target", "wasm32-wasip2", "release")
	if _, err := os.Stat(filepath.Join(dir, "wasmtel_redact.wasm")); err != nil {
		t.Fatalf("build the guests first with scripts/build-components.sh: %v", err)
	}
	return dir
}

// collectorBuild is one way to build this distribution.
type collectorBuild struct {
	name string
	cgo  bool
}

// builds: with cgo the wasm processors run embedded (mode auto), without it
// in a `wasmtel bridge` child (found on PATH, which scripts/go-env.sh sets).
var builds = []collectorBuild{{"embedded", true}, {"subprocess", false}}

var collectorBinaries sync.Map // build name -> *builtCollector

type builtCollector struct {
	once sync.Once
	path string
	err  error
}

// buildCollector builds this distribution once per test run and build, or
// takes a binary built elsewhere (the builder's, scripts/test-go.sh) from
// WASMTEL_COLLECTOR_EMBEDDED / WASMTEL_COLLECTOR_SUBPROCESS.
func buildCollector(t *testing.T, build collectorBuild) string {
	t.Helper()
	if path := os.Getenv("WASMTEL_COLLECTOR_" + strings.ToUpper(build.name)); path != "" {
		return path
	}
	entry, _ := collectorBinaries.LoadOrStore(build.name, &builtCollector{})
	b := entry.(*builtCollector)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "otelcol-wasmtel-test")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "otelcol-wasmtel-"+build.name)
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[build.cgo])
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build (%s): %v\n%s", build.name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// forEachBuild runs body against each build of the collector.
func forEachBuild(t *testing.T, body func(t *testing.T, build collectorBuild)) {
	for _, build := range builds {
		t.Run(build.name, func(t *testing.T) { body(t, build) })
	}
}

// lockedBuffer collects a child's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// collector is a running otelcol-wasmtel with an OTLP gRPC receiver.
type collector struct {
	output *lockedBuffer
	conn   *grpc.ClientConn
	pid    int
	exited <-chan struct{}
}

// stop interrupts the collector and waits until it has shut down.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(c.pid, syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the collector did not shut down within 30s:\n%s", c.output.String())
	}
}

// peakRSS is the collector process's peak resident memory (Linux VmHWM).
func (c *collector) peakRSS(t *testing.T) uint64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// startCollector runs the distribution on config, in which every `{{otlp}}`
// becomes the receiver's endpoint, and waits until it is ready.
func startCollector(t *testing.T, build collectorBuild, config string) *collector {
	t.Helper()
	return startCollectorIn(t, build, config, append(os.Environ(), "WASMTEL_HOME="+t.TempDir()))
}

// startCollectorIn is startCollector with the collector's whole environment.
func startCollectorIn(t *testing.T, build collectorBuild, config string, env []string) *collector {
	t.Helper()
	endpoint := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "{{otlp}}", endpoint)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildCollector(t, build), "--config", path)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(output.String(), "Everything is ready") {
		select {
		case <-exited:
			t.Fatalf("the collector exited during start-up:\n%s", output.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector did not get ready:\n%s", output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &collector{output: output, conn: conn, pid: cmd.Process.Pid, exited: exited}
}

func (c *collector) exportTraces(ctx context.Context, td ptrace.Traces) error {
	_, err := ptraceotlp.NewGRPCClient(c.conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

func (c *collector) exportMetrics(ctx context.Context, md pmetric.Metrics) error {
	_, err := pmetricotlp.NewGRPCClient(c.conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
	return err
}

func (c *collector) exportLogs(ctx context.Context, ld plog.Logs) error {
	_, err := plogotlp.NewGRPCClient(c.conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	return err
}

// rawCodec sends bytes as they are, so a test can write any OTLP request.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// exportRawTraces sends an ExportTraceServiceRequest written by hand.
func (c *collector) exportRawTraces(ctx context.Context, request []byte) error {
	var response []byte
	return c.conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", request, &response,
		grpc.ForceCodec(rawCodec{}))
}

// field is a protobuf length-delimited field: tag, varint length, payload.
func field(tag byte, payload []byte) []byte {
	out := []byte{tag}
	n := uint64(len(payload))
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	out = append(out, byte(n))
	return append(out, payload...)
}

// stringAttribute is a KeyValue with a string value, as protobuf.
func stringAttribute(key string, value []byte) []byte {
	return append(field(0x0a, []byte(key)), field(0x12, field(0x0a, value))...)
}

// traceRequest wraps encoded spans in one resource and scope.
func traceRequest(spans ...[]byte) []byte {
	var scopeSpans []byte
	for _, span := range spans {
		scopeSpans = append(scopeSpans, field(0x12, span)...)
	}
	return field(0x0a, field(0x12, scopeSpans))
}

// span encodes a span with a name, valid IDs and attributes.
func span(name []byte, attributes ...[]byte) []byte {
	out := field(0x0a, bytes.Repeat([]byte{1}, 16))
	out = append(out, field(0x12, bytes.Repeat([]byte{2}, 8))...)
	out = append(out, field(0x2a, name)...)
	for _, attribute := range attributes {
		out = append(out, field(0x4a, attribute)...)
	}
	return out
}

// waitFor polls until check holds or the timeout passes.
func waitFor(timeout time.Duration, check func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if check() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return check()
}
