package main

// The whole collector under closed-loop OTLP load: the OTLP receiver, the
// processors, the Go OTLP exporter to a sink, in one process with this
// distribution's components (the cgo build: the runtime linked in, as the
// embedded distribution links it). Each variant runs its own collector in
// the same run as its baseline: no processing, and contrib's
// redactionprocessor doing the same redaction (contrib's filterprocessor at
// this collector release is not served here: its ottl xprofile dependency
// v0.165.1 is refused by the module proxy).
//
//	source scripts/go-env.sh && cd go/cmd/otelcol-wasmtel && go test -c -o /tmp/col.test .
//	for i in 1 2 3; do /tmp/col.test -test.run '^$' -test.bench BenchmarkCollector -test.benchtime 1500x; done
//
// (a fixed batch count: each round of b.N starts a collector; three
// invocations interleave the variants, where -count would run them back to back).
//
// Reported per batch: ns/op (wall, 4 clients), spans/s, and the CPU the
// process (and, in subprocess mode, its bridge child) spent per batch —
// client and sink included, the same for every variant.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wasmtel/wasmtel/go/internal/benchdata"
)

// The redaction every variant that redacts does (go/wasmprocessor/bench_test.go
// checks wasm redact and contrib's processor change the same values).
const (
	benchSecretKeys = benchdata.SecretKeyPattern
	benchEmail      = benchdata.EmailPattern
)

type benchVariant struct {
	name       string
	processors string // the traces pipeline's processor list
	defs       func(components string) string
}

// wasmDefs are the wasm processors in mode; in subprocess mode they run the
// workspace's bridge binary (the one the nocgo distribution builds in).
func wasmDefs(mode string) func(string) string {
	return func(components string) string {
		runtime := ""
		if mode == "subprocess" {
			runtime = "runtime_binary: " + filepath.Join(components, "..", "..", "debug", "wasmtel-bridge")
		}
		return fmt.Sprintf(`
  wasm/redact:
    component: %[1]s/wasmtel_redact.wasm
    mode: %[2]s
    %[5]s
    config: { keys: [user.email], key_patterns: ['%[3]s'], value_patterns: ['%[4]s'], action: hash }
  wasm/filter:
    component: %[1]s/wasmtel_filter.wasm
    mode: %[2]s
    %[5]s
    config: { spans: { names: ["%[6]s"] } }
`, components, mode, benchSecretKeys, benchEmail, runtime, benchdata.HealthCheck)
	}
}

var benchVariants = []benchVariant{
	{name: "none", processors: "[]", defs: func(string) string { return " {}" }},
	{name: "contrib_redaction", processors: "[redaction]", defs: func(string) string {
		return fmt.Sprintf(`
  redaction:
    allow_all_keys: true
    blocked_key_patterns: ['^user\.email$', '%s']
    blocked_values: ['%s']
    hash_function: hmac-sha256
    hmac_key: %s
    summary: silent
`, benchSecretKeys, benchEmail, strings.Repeat("k", 32))
	}},
	{name: "wasm_redact/embedded", processors: "[wasm/redact]", defs: wasmDefs("embedded")},
	{name: "wasm_redact+filter/embedded", processors: "[wasm/redact, wasm/filter]", defs: wasmDefs("embedded")},
	{name: "wasm_redact/subprocess", processors: "[wasm/redact]", defs: wasmDefs("subprocess")},
	{name: "wasm_redact+filter/subprocess", processors: "[wasm/redact, wasm/filter]", defs: wasmDefs("subprocess")},
}

// benchBatch is the benchmarks' batch of n spans, with health checks (the filter's).
func benchBatch(n int) ptraceotlp.ExportRequest {
	return ptraceotlp.NewExportRequestFromTraces(benchdata.Traces(n, true))
}

// countingSink is the downstream OTLP server: it counts spans, no more.
type countingSink struct {
	ptraceotlp.UnimplementedGRPCServer
	spans atomic.Int64
}

func (s *countingSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

func benchComponents() (otelcol.Factories, error) {
	factories, err := components()
	if err != nil {
		return factories, err
	}
	factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](append(mapValues(factories.Processors), redactionprocessor.NewFactory())...)
	return factories, err
}

func mapValues[K comparable, V any](m map[K]V) []V {
	values := make([]V, 0, len(m))
	for _, v := range m {
		values = append(values, v)
	}
	return values
}

// startBenchCollector runs a collector in this process with config and
// waits until it serves.
func startBenchCollector(b *testing.B, config string) {
	path := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	settings := collectorSettings(benchComponents)
	settings.ConfigProviderSettings.ResolverSettings.URIs = []string{"file:" + path}
	col, err := otelcol.NewCollector(settings)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	stopped := make(chan struct{})
	go func() {
		runErr = col.Run(ctx)
		close(stopped)
	}()
	b.Cleanup(func() {
		col.Shutdown()
		cancel()
		<-stopped
	})
	deadline := time.Now().Add(30 * time.Second)
	for col.GetState() != otelcol.StateRunning {
		select {
		case <-stopped:
			b.Fatalf("the collector stopped: %v", runErr)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("the collector did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpuSeconds is the CPU time of this process and of its children that
// still run (the bridge child), from /proc.
func cpuSeconds(b *testing.B) float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	total := time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, task := range tasks {
		children, _ := os.ReadFile(task)
		for _, pid := range strings.Fields(string(children)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// Fields after the command's closing parenthesis; utime and stime are 14 and 15.
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			utime, _ := strconv.ParseFloat(fields[11], 64)
			stime, _ := strconv.ParseFloat(fields[12], 64)
			total += (utime + stime) / 100 // USER_HZ
		}
	}
	return total
}

func BenchmarkCollector(b *testing.B) {
	components := componentsDir(b)
	const clients = 4
	for _, spans := range []int{100, 1} {
		request := benchBatch(spans)
		for _, v := range benchVariants {
			b.Run(fmt.Sprintf("spans=%d/%s", spans, v.name), func(b *testing.B) {
				sink := &countingSink{}
				server := grpc.NewServer()
				ptraceotlp.RegisterGRPCServer(server, sink)
				listener, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				go func() { _ = server.Serve(listener) }()
				b.Cleanup(server.Stop)
				receiver := fmt.Sprintf("127.0.0.1:%d", freePort(b))
				startBenchCollector(b, fmt.Sprintf(`
receivers:
  otlp: { protocols: { grpc: { endpoint: "%s" } } }
processors:%s
exporters:
  otlp_grpc:
    endpoint: %s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none }, logs: { level: warn } }
  pipelines:
    traces: { receivers: [otlp], processors: %s, exporters: [otlp_grpc] }
`, receiver, v.defs(components), listener.Addr(), v.processors))
				conn, err := grpc.NewClient(receiver, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				client := ptraceotlp.NewGRPCClient(conn)
				// Warm up: every plugin instance compiled, every connection open.
				for range 20 {
					if _, err := client.Export(context.Background(), request); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, clients)
				cpuBefore := cpuSeconds(b)
				b.ResetTimer()
				start := time.Now()
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, err := client.Export(context.Background(), request); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				cpu := cpuSeconds(b) - cpuBefore
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N*spans)/elapsed.Seconds(), "spans/s")
				b.ReportMetric(cpu*1e6/float64(b.N), "cpu-µs/batch")
			})
		}
	}
}
