package main

// The collector under hostile input and load, with the shipped redact
// component: what a failing or overloaded redactor does must never be to
// forward what it was meant to hide.

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const secret = "planted.secret@example.com"

// redactPipeline is a collector config: OTLP in -> wasm/redact (with
// `redact` settings appended) -> OTLP out to sinkAddr.
func redactPipeline(t *testing.T, sinkAddr, redact string) string {
	return fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{otlp}}
        max_recv_msg_size_mib: 16
processors:
  wasm/redact:
    component: %s/wasmtel_redact.wasm
    config:
      keys: [user.email]
      value_patterns: ['[\w.+-]+@[\w-]+\.[\w.]+']
      action: mask
%s
exporters:
  otlp:
    endpoint: %s
    tls: { insecure: true }
    sending_queue: { enabled: false }
    retry_on_failure: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/redact], exporters: [otlp] }
`, componentsDir(t), redact, sinkAddr)
}

func secretSpan(name string, extra ...[]byte) []byte {
	return span([]byte(name), append([][]byte{stringAttribute("user.email", []byte(secret))}, extra...)...)
}

// assertRedactsOrdinaryBatches sends one ordinary batch and expects it
// exported, redacted.
func assertRedactsOrdinaryBatches(t *testing.T, c *collector, received *sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.exportRawTraces(ctx, traceRequest(secretSpan("ordinary"))); err != nil {
		t.Fatalf("an ordinary batch after the hostile ones: %v\n%s", err, c.output.String())
	}
	if !waitFor(10*time.Second, func() bool {
		for _, s := range received.spans() {
			if s.Name() == "ordinary" {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("the ordinary batch was not exported\n%s", c.output.String())
	}
	if received.containsText(secret) {
		t.Fatal("the planted secret reached the exporter")
	}
}

func TestRedactFailsClosedOnInputThatBreaksTheSandbox(t *testing.T) {
	forEachBuild(t, testRedactFailsClosedOnInputThatBreaksTheSandbox)
}

func testRedactFailsClosedOnInputThatBreaksTheSandbox(t *testing.T, build collectorBuild) {
	// A million empty attributes (a shared case): redact reads them in
	// place, but the input and the edited output alone outgrow 4 MiB.
	hostile := loadHostileOTLP(t)
	bomb := hostile.caseNamed(t, "million-empty-attributes").request(t, hostile.Secret)
	// 1.1 million emails to mask (14 MB): far more than 20 ms of work.
	heavy := secretSpan("heavy", stringAttribute("note", bytes.Repeat([]byte("x@example.co "), 1_100_000)))
	for _, tc := range []struct {
		name, limits, cause string
		request             []byte
	}{
		{"bomb", `{ max_memory: 4MiB, timeout: 10s }`, "memory limit", bomb},
		{"heavy", `{ timeout: 20ms }`, "time limit", traceRequest(heavy)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			received, sinkAddr := startSink(t)
			// Default on_error: redact declares itself fail-closed.
			c := startCollector(t, build, redactPipeline(t, sinkAddr, "    limits: "+tc.limits))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.exportRawTraces(ctx, tc.request)
			cancel()
			if err == nil {
				t.Fatal("the collector accepted a batch its redactor failed on")
			}
			logged := func() bool {
				out := c.output.String()
				return strings.Contains(out, tc.cause) && strings.Contains(out, "wasm/redact")
			}
			if !waitFor(5*time.Second, logged) {
				t.Fatalf("the collector log does not name wasm/redact and %q:\n%s", tc.cause, c.output.String())
			}
			assertRedactsOrdinaryBatches(t, c, received)
		})
	}
}

func TestBackpressureIsRetryableAndNeverForwardsUnredacted(t *testing.T) {
	forEachBuild(t, testBackpressureIsRetryableAndNeverForwardsUnredacted)
}

func testBackpressureIsRetryableAndNeverForwardsUnredacted(t *testing.T, build collectorBuild) {
	received, sinkAddr := startSink(t)
	// One instance, batches that take a while, and more callers than it can
	// serve within the timeout: some wait too long. Even under an explicit
	// `pass`, a batch that found no instance is refused, never forwarded.
	// The callers set no deadline, so the wait is bounded by limits.timeout
	// and the refusal is the collector's, never a client's own time-out.
	const timeout = time.Second
	c := startCollector(t, build, redactPipeline(t, sinkAddr, `    limits: { max_instances: 1, timeout: 1s }
    on_error: pass`))
	slow := stringAttribute("note", bytes.Repeat([]byte("x@example.co "), 20_000))

	// How long one batch takes here decides how many callers overload it:
	// the fastest of a few (the first also pays for the connection and the
	// instance), so that a slow start does not make too few callers.
	const calibrations = 3
	one := time.Duration(math.MaxInt64)
	for i := 0; i < calibrations; i++ {
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.exportRawTraces(ctx, traceRequest(secretSpan(fmt.Sprintf("calibrate-%d", i), slow)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		one = min(one, time.Since(started))
	}
	if one > timeout/4 {
		t.Fatalf("one batch took %v, too close to the %v timeout for this test", one, timeout)
	}
	callers := min(max(int(4*timeout/one), 8), 400)

	var mu sync.Mutex
	refused := map[string]codes.Code{}
	var wg sync.WaitGroup
	for caller := 0; caller < callers; caller++ {
		wg.Add(1)
		go func(caller int) {
			defer wg.Done()
			name := fmt.Sprintf("req-%d", caller)
			err := c.exportRawTraces(context.Background(), traceRequest(secretSpan(name, slow)))
			if err != nil {
				mu.Lock()
				refused[name] = status.Code(err)
				mu.Unlock()
			}
		}(caller)
	}
	wg.Wait()

	sent := callers + calibrations
	waitFor(5*time.Second, func() bool { return len(received.spans()) >= sent-len(refused) })
	exported := map[string]bool{}
	for _, s := range received.spans() {
		exported[s.Name()] = true
	}
	if received.containsText(secret) {
		t.Fatal("a planted secret reached the exporter")
	}
	for name, code := range refused {
		if exported[name] {
			t.Errorf("%s was refused (%v) and exported", name, code)
		}
		if code != codes.Unavailable {
			t.Errorf("%s: backpressure must be retryable (Unavailable), got %v", name, code)
		}
	}
	if len(exported)+len(refused) != sent {
		t.Fatalf("sent %d = exported %d + refused %d does not add up\n%s", sent, len(exported), len(refused), c.output.String())
	}
	if len(refused) == 0 {
		t.Fatalf("one instance served %d concurrent callers (%v each) within %v: the test did not load it", callers, one, timeout)
	}
	if !strings.Contains(c.output.String(), "no free instance") {
		t.Fatalf("the log says why batches were refused:\n%s", c.output.String())
	}
}

func TestShortClientDeadlinesNeverForwardInClear(t *testing.T) {
	forEachBuild(t, testShortClientDeadlinesNeverForwardInClear)
}

func testShortClientDeadlinesNeverForwardInClear(t *testing.T, build collectorBuild) {
	received, sinkAddr := startSink(t)
	c := startCollector(t, build, redactPipeline(t, sinkAddr, `    limits: { timeout: 2s }
    on_error: pass`))
	heavy := stringAttribute("note", bytes.Repeat([]byte("x@example.co "), 400_000))
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Millisecond)
		err := c.exportRawTraces(ctx, traceRequest(secretSpan(fmt.Sprintf("hurried-%d", i), heavy)))
		cancel()
		if err == nil {
			t.Fatalf("a batch far slower than 15 ms was accepted within its 15 ms deadline")
		}
	}
	time.Sleep(500 * time.Millisecond) // anything still in flight lands now
	if received.containsText(secret) {
		t.Fatal("a batch whose client gave up was forwarded in clear")
	}
	assertRedactsOrdinaryBatches(t, c, received)
}

func TestHostileOTLPIsRepairedOrRefusedAndTheCollectorKeepsServing(t *testing.T) {
	forEachBuild(t, testHostileOTLPIsRepairedOrRefusedAndTheCollectorKeepsServing)
}

func testHostileOTLPIsRepairedOrRefusedAndTheCollectorKeepsServing(t *testing.T, build collectorBuild) {
	// The cases `wasmtel serve`'s tests send too (tests/data/hostile-otlp.json),
	// through redact with the plugin limits the file assumes.
	hostile := loadHostileOTLP(t)
	received, sinkAddr := startSink(t)
	c := startCollector(t, build, redactPipeline(t, sinkAddr, "    limits: { max_memory: 4MiB, timeout: 10s }"))
	wantSpans := map[string]int{}
	for _, tc := range hostile.Cases {
		request := tc.request(t, hostile.Secret)
		for attempt := 0; attempt < orOne(tc.Times); attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := c.exportRawTraces(ctx, request)
			cancel()
			switch tc.Expect.Outcome {
			case "exported":
				if err != nil {
					t.Fatalf("%s, send %d: refused: %v\n%s", tc.Name, attempt, err, c.output.String())
				}
				wantSpans[tc.Expect.Name] += tc.Expect.Count
			case "refused", "fail_closed":
				if err == nil {
					t.Fatalf("%s, send %d: accepted", tc.Name, attempt)
				}
			default:
				t.Fatalf("%s: unknown outcome %q", tc.Name, tc.Expect.Outcome)
			}
		}
	}
	exported := func() map[string]int {
		names := map[string]int{}
		for _, s := range received.spans() {
			names[s.Name()]++
		}
		return names
	}
	waitFor(10*time.Second, func() bool {
		names := exported()
		for name, count := range wantSpans {
			if names[name] < count {
				return false
			}
		}
		return true
	})
	names := exported()
	for name, count := range wantSpans {
		if names[name] != count {
			t.Errorf("%q exported %d times, want %d\n%s", name, names[name], count, c.output.String())
		}
	}
	if received.containsText(hostile.Secret) {
		t.Fatal("a planted secret reached the exporter")
	}
	assertRedactsOrdinaryBatches(t, c, received)
}

func TestAGuestCannotMakeTheCollectorDecodeGigabytes(t *testing.T) {
	forEachBuild(t, testAGuestCannotMakeTheCollectorDecodeGigabytes)
}

func testAGuestCannotMakeTheCollectorDecodeGigabytes(t *testing.T, build collectorBuild) {
	received, sinkAddr := startSink(t)
	c := startCollector(t, build, fmt.Sprintf(`
receivers:
  otlp:
    protocols: { grpc: { endpoint: {{otlp}} } }
processors:
  wasm/hostile:
    component: %s/wasmtel_test_hostile.wasm
    limits: { max_memory: 256MiB, max_output_bytes: 64MiB, timeout: 10s }
exporters:
  otlp:
    endpoint: %s
    tls: { insecure: true }
    sending_queue: { enabled: false }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    traces: { receivers: [otlp], processors: [wasm/hostile], exporters: [otlp] }
`, componentsDir(t), sinkAddr))
	// 32 MiB of empty spans from a one-span request: 16 million spans, about
	// 3.5 GB once Go's pdata decodes them.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.exportRawTraces(ctx, traceRequest(span([]byte("expand-32")))); err == nil {
		t.Fatal("the expanding output was accepted")
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(c.output.String(), "max_output_elements") }) {
		t.Fatalf("the log does not say why:\n%s", c.output.String())
	}
	if err := c.exportRawTraces(ctx, traceRequest(span([]byte("ordinary")))); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(received.spans()) == 1 }) {
		t.Fatal("the ordinary batch after it was not exported")
	}
	// Guest memory (256 MiB) plus the 32 MiB output and the runtime: far
	// below what decoding the output would take.
	if peak := c.peakRSS(t); peak > 1<<30 {
		t.Fatalf("collector peak RSS %d MiB", peak>>20)
	}
}

// The main job's own config, on the shipped sample data: nothing the README
// says is hidden comes out of the debug exporter.
func TestMainJobConfigHidesEveryPlantedSecret(t *testing.T) {
	forEachBuild(t, testMainJobConfigHidesEveryPlantedSecret)
}

func testMainJobConfigHidesEveryPlantedSecret(t *testing.T, build collectorBuild) {
	root := repoRoot(t)
	config, err := os.ReadFile(filepath.Join(root, "examples", "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(config), "127.0.0.1:${env:OTLP_GRPC_PORT:-4317}", "{{otlp}}")
	text = strings.ReplaceAll(text, "${env:WASMTEL_COMPONENTS:-target/wasm32-wasip2/release}", componentsDir(t))
	c := startCollector(t, build, text)

	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(root, "examples", "data", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	traces, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(read("traces.json"))
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(read("metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(read("logs.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.exportTraces(ctx, traces); err != nil {
		t.Fatal(err)
	}
	if _, err := pmetricotlp.NewGRPCClient(c.conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(metrics)); err != nil {
		t.Fatal(err)
	}
	if err := c.exportLogs(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		out := c.output.String()
		return strings.Contains(out, "ResourceSpans #0") && strings.Contains(out, "LogRecord #0") &&
			strings.Contains(out, "ResourceMetrics #0")
	}) {
		t.Fatalf("the debug exporter did not print all three signals:\n%s", c.output.String())
	}
	out := c.output.String()
	for _, planted := range []string{"ada@example.com", "4111 1111 1111 1111", "Bearer eyJ", "+1-202-555"} {
		if strings.Contains(out, planted) {
			t.Errorf("%q reached the debug exporter", planted)
		}
	}
	if !strings.Contains(out, "order placed by ") {
		t.Errorf("the log body with the email should be exported, redacted:\n%s", out)
	}
}

// childrenOf lists the process IDs whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		child, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) && fields[0] != "Z" {
			out = append(out, child)
		}
	}
	return out
}

func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(stat[bytes.LastIndexByte(stat, ')')+1:]), " Z ")
}

func TestTheBridgeChildUnderLoadAndAtTheEnd(t *testing.T) {
	build := builds[1] // subprocess
	received, sinkAddr := startSink(t)
	config := redactPipeline(t, sinkAddr, `    limits: { timeout: 2s }`)
	c := startCollector(t, build, config)
	bridges := childrenOf(c.pid)
	if len(bridges) != 1 {
		t.Fatalf("want one bridge child of the collector, got %v", bridges)
	}

	// kill -9 of the child under load: every batch is exported or refused
	// with an error the client sees; none is lost, none leaks.
	var mu sync.Mutex
	sent, refused := 0, map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("load-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.exportRawTraces(ctx, traceRequest(secretSpan(name)))
				cancel()
				mu.Lock()
				sent++
				if err != nil {
					refused[name] = true
				}
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(bridges[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool {
		now := childrenOf(c.pid)
		return len(now) == 1 && now[0] != bridges[0]
	}) {
		t.Fatalf("the bridge was not restarted:\n%s", c.output.String())
	}
	// Serving again: a batch after the restart goes through.
	if !waitFor(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.exportRawTraces(ctx, traceRequest(secretSpan("after-restart"))) == nil
	}) {
		t.Fatalf("the collector does not serve after the restart:\n%s", c.output.String())
	}
	close(stop)
	wg.Wait()
	waitFor(5*time.Second, func() bool { return len(received.spans()) >= sent-len(refused)+1 })
	exported := map[string]bool{}
	for _, s := range received.spans() {
		exported[s.Name()] = true
	}
	loaded := 0
	for name := range exported {
		if strings.HasPrefix(name, "load-") {
			loaded++
			if refused[name] {
				t.Errorf("%s was refused and exported", name)
			}
		}
	}
	if loaded+len(refused) != sent {
		t.Fatalf("sent %d = exported %d + refused %d does not add up", sent, loaded, len(refused))
	}
	if received.containsText(secret) {
		t.Fatal("a planted secret reached the exporter")
	}
	if !strings.Contains(c.output.String(), "restarting") {
		t.Fatalf("the collector log says the bridge was restarted:\n%s", c.output.String())
	}

	// Killed collector: its child goes with it.
	child := childrenOf(c.pid)[0]
	if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return !processAlive(child) }) {
		t.Fatal("the bridge outlived the killed collector")
	}

	// Stopped collector: no child left.
	stopped := startCollector(t, build, config)
	child = childrenOf(stopped.pid)[0]
	if err := syscall.Kill(stopped.pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !waitFor(15*time.Second, func() bool { return !processAlive(child) && !processAlive(stopped.pid) }) {
		t.Fatal("the bridge outlived the collector's shutdown")
	}
}

// A client's span with a 24-byte trace ID: the collector's own receiver
// (pdata's unmarshal, in the gRPC codec) refuses the request whole before
// any processor sees it; the plugin is never blamed, and it keeps serving.
func TestAClientBadIDIsTheReceiversRefusalNeverThePlugins(t *testing.T) {
	forEachBuild(t, func(t *testing.T, build collectorBuild) {
		received, sinkAddr := startSink(t)
		c := startCollector(t, build, redactPipeline(t, sinkAddr, ""))
		bad := append(field(0x0a, bytes.Repeat([]byte{0xab}, 24)), field(0x2a, []byte("bad-id"))...)
		bad = append(bad, field(0x4a, stringAttribute("user.email", []byte(secret)))...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.exportRawTraces(ctx, traceRequest(secretSpan("first"), bad, secretSpan("third")))
		if err == nil || !strings.Contains(status.Convert(err).Message(), "invalid TraceID length") {
			t.Fatalf("want the receiver's refusal of the trace ID, got %v", err)
		}
		if strings.Contains(c.output.String(), "invalid_output") || strings.Contains(c.output.String(), "refused a batch") {
			t.Fatalf("the plugin was blamed for the client's bytes:\n%s", c.output.String())
		}
		assertRedactsOrdinaryBatches(t, c, received)
	})
}
