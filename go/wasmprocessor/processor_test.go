package wasmprocessor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// modes are the modes this build can run plugins in.
func modes() []string {
	if cgoAvailable {
		return []string{modeEmbedded, modeSubprocess}
	}
	return []string{modeSubprocess}
}

// forEachMode runs body once per mode, as a subtest named after it.
func forEachMode(t *testing.T, body func(t *testing.T, mode string)) {
	for _, mode := range modes() {
		t.Run(mode, func(t *testing.T) { body(t, mode) })
	}
}

var processorSeq atomic.Int64

// settings are nop settings with a processor ID of their own: one ID, one
// loaded plugin.
func settings() processor.Settings {
	set := processortest.NewNopSettings(Type)
	set.ID = component.NewIDWithName(Type, fmt.Sprintf("p%d", processorSeq.Add(1)))
	return set
}

// componentPath is a guest built by scripts/build-components.sh.
func componentPath(t testing.TB, crate string) string {
	t.Helper()
	dir := os.Getenv("WASMTEL_COMPONENTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "target", "wasm32-wasip2", "release")
	}
	path := filepath.Join(dir, strings.ReplaceAll(crate, "-", "_")+".wasm")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: build the guests first with scripts/build-components.sh", path)
	}
	return path
}

func traces(spans ...string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	for i, name := range spans {
		span := ss.Spans().AppendEmpty()
		span.SetName(name)
		span.SetTraceID([16]byte{byte(i + 1), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		span.SetSpanID([8]byte{byte(i + 1), 1, 2, 3, 4, 5, 6, 7})
		span.Attributes().PutStr("user.email", "ada@example.com")
		if name == "GET /health" {
			span.Attributes().PutStr("http.route", "/health")
		}
	}
	return td
}

func logs(bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, body := range bodies {
		record := records.AppendEmpty()
		record.Body().SetStr(body)
		record.SetSeverityNumber(plog.SeverityNumberInfo)
		record.Attributes().PutStr("user.email", "ada@example.com")
	}
	return ld
}

func metrics(names ...string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for _, name := range names {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetDoubleValue(1)
		dp.Attributes().PutStr("user.email", "ada@example.com")
	}
	return md
}

type harness struct {
	traces  processor.Traces
	metrics processor.Metrics
	logs    processor.Logs
	tsink   *consumertest.TracesSink
	msink   *consumertest.MetricsSink
	lsink   *consumertest.LogsSink
}

// start creates and starts processors of all three signals for one config
// and one processor ID (so they share one plugin).
func start(t *testing.T, cfg *Config) *harness {
	t.Helper()
	return startWith(t, settings(), cfg)
}

func startWith(t *testing.T, set processor.Settings, cfg *Config) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{tsink: new(consumertest.TracesSink), msink: new(consumertest.MetricsSink), lsink: new(consumertest.LogsSink)}
	var err error
	factory := NewFactory()
	if h.traces, err = factory.CreateTraces(ctx, set, cfg, h.tsink); err != nil {
		t.Fatalf("create traces: %v", err)
	}
	if h.metrics, err = factory.CreateMetrics(ctx, set, cfg, h.msink); err != nil {
		t.Fatalf("create metrics: %v", err)
	}
	if h.logs, err = factory.CreateLogs(ctx, set, cfg, h.lsink); err != nil {
		t.Fatalf("create logs: %v", err)
	}
	host := componenttest.NewNopHost()
	if err := h.traces.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := h.metrics.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := h.logs.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.shutdown(t) })
	return h
}

func (h *harness) shutdown(t *testing.T) {
	ctx := context.Background()
	for _, err := range []error{h.traces.Shutdown(ctx), h.metrics.Shutdown(ctx), h.logs.Shutdown(ctx)} {
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
}

func TestIdentityOutcomesForAllSignals(t *testing.T) {
	forEachMode(t, testIdentityOutcomes)
}

func testIdentityOutcomes(t *testing.T, runIn string) {
	ctx := context.Background()
	for _, mode := range []string{"unchanged", "replace", "drop"} {
		t.Run(mode, func(t *testing.T) {
			h := start(t, &Config{Mode: runIn, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-identity"), "config": map[string]any{"mode": mode}}})
			if err := h.traces.ConsumeTraces(ctx, traces("GET /a", "GET /b")); err != nil {
				t.Fatal(err)
			}
			if err := h.metrics.ConsumeMetrics(ctx, metrics("queue.depth")); err != nil {
				t.Fatal(err)
			}
			if err := h.logs.ConsumeLogs(ctx, logs("hello")); err != nil {
				t.Fatal(err)
			}
			if mode == "drop" {
				if n := len(h.tsink.AllTraces()) + len(h.msink.AllMetrics()) + len(h.lsink.AllLogs()); n != 0 {
					t.Fatalf("dropped batches reached the next consumer: %d", n)
				}
				return
			}
			if h.tsink.SpanCount() != 2 || h.msink.DataPointCount() != 1 || h.lsink.LogRecordCount() != 1 {
				t.Fatalf("got %d spans, %d points, %d logs", h.tsink.SpanCount(), h.msink.DataPointCount(), h.lsink.LogRecordCount())
			}
			got := h.tsink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).Name()
			if got != "GET /b" {
				t.Fatalf("span name %q", got)
			}
		})
	}
}

func attr(t *testing.T, value string, ok bool) string {
	t.Helper()
	if !ok {
		t.Fatal("attribute missing")
	}
	return value
}

func TestRedactEverySignal(t *testing.T) {
	forEachMode(t, testRedactEverySignal)
}

func testRedactEverySignal(t *testing.T, mode string) {
	ctx := context.Background()
	h := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-redact"), "config": map[string]any{"keys": []any{"user.email"}, "action": "mask", "mask": "<redacted>"}}})
	if err := h.traces.ConsumeTraces(ctx, traces("GET /")); err != nil {
		t.Fatal(err)
	}
	if err := h.metrics.ConsumeMetrics(ctx, metrics("m")); err != nil {
		t.Fatal(err)
	}
	if err := h.logs.ConsumeLogs(ctx, logs("x")); err != nil {
		t.Fatal(err)
	}
	span := h.tsink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	v, ok := span.Attributes().Get("user.email")
	if got := attr(t, v.Str(), ok); got != "<redacted>" {
		t.Fatalf("span attribute %q", got)
	}
	dp := h.msink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	v, ok = dp.Attributes().Get("user.email")
	if got := attr(t, v.Str(), ok); got != "<redacted>" {
		t.Fatalf("data point attribute %q", got)
	}
	record := h.lsink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	v, ok = record.Attributes().Get("user.email")
	if got := attr(t, v.Str(), ok); got != "<redacted>" {
		t.Fatalf("log attribute %q", got)
	}
}

func TestFilterDropsHealthChecks(t *testing.T) {
	h := start(t, &Config{Plugin: map[string]any{"component": componentPath(t, "wasmtel-filter"), "config": map[string]any{"spans": map[string]any{"attributes": []any{map[string]any{"key": "http.route", "value": "/health"}}}}}})
	if err := h.traces.ConsumeTraces(context.Background(), traces("GET /health", "POST /pay")); err != nil {
		t.Fatal(err)
	}
	if h.tsink.SpanCount() != 1 {
		t.Fatalf("want 1 span left, got %d", h.tsink.SpanCount())
	}
	if err := h.traces.ConsumeTraces(context.Background(), traces("GET /health")); err != nil {
		t.Fatal(err)
	}
	if len(h.tsink.AllTraces()) != 1 {
		t.Fatal("an all-filtered batch must not reach the next consumer")
	}
}

func TestOnErrorPolicies(t *testing.T) {
	forEachMode(t, testOnErrorPolicies)
}

func testOnErrorPolicies(t *testing.T, mode string) {
	ctx := context.Background()
	hostile := componentPath(t, "wasmtel-test-hostile")
	limits := map[string]any{"timeout": durationSetting(200 * time.Millisecond), "max_memory": "64MiB"}

	pass := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": hostile, "on_error": "pass", "limits": limits}})
	for _, trigger := range []string{"panic", "loop", "garbage"} {
		if err := pass.traces.ConsumeTraces(ctx, traces(trigger)); err != nil {
			t.Fatalf("%s under pass: %v", trigger, err)
		}
	}
	if pass.tsink.SpanCount() != 3 {
		t.Fatalf("pass forwards the original batches: got %d spans", pass.tsink.SpanCount())
	}

	drop := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": hostile, "on_error": "drop", "limits": limits}})
	if err := drop.logs.ConsumeLogs(ctx, logs("panic")); err != nil {
		t.Fatal(err)
	}
	if drop.lsink.LogRecordCount() != 0 {
		t.Fatal("drop discards the batch")
	}

	fail := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": hostile, "on_error": "fail", "limits": limits}})
	err := fail.metrics.ConsumeMetrics(ctx, metrics("panic"))
	if err == nil || !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "trap") {
		t.Fatalf("fail returns a permanent trap error, got %v", err)
	}
	// The failed instance was replaced: a good batch goes through.
	if err := fail.metrics.ConsumeMetrics(ctx, metrics("fine")); err != nil || fail.msink.DataPointCount() != 1 {
		t.Fatalf("after a trap the plugin keeps serving: %v", err)
	}
}

func TestGuestErrorsKeepRetrySemantics(t *testing.T) {
	forEachMode(t, testGuestErrorsKeepRetrySemantics)
}

func testGuestErrorsKeepRetrySemantics(t *testing.T, mode string) {
	ctx := context.Background()
	h := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-hostile")}})
	permanent := h.traces.ConsumeTraces(ctx, traces("permanent-error"))
	if permanent == nil || !consumererror.IsPermanent(permanent) {
		t.Fatalf("permanent guest error: %v", permanent)
	}
	retryable := h.traces.ConsumeTraces(ctx, traces("retryable-error"))
	if retryable == nil || consumererror.IsPermanent(retryable) {
		t.Fatalf("retryable guest error must not be permanent: %v", retryable)
	}
}

func TestContextDeadlineBoundsTheBatch(t *testing.T) {
	forEachMode(t, testContextDeadlineBoundsTheBatch)
}

func testContextDeadlineBoundsTheBatch(t *testing.T, mode string) {
	h := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-hostile"), "on_error": "fail", "limits": map[string]any{"timeout": durationSetting(10 * time.Second)}}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := h.traces.ConsumeTraces(ctx, traces("loop"))
	// The runtime says deadline_exceeded; in subprocess mode the gRPC client may say it first.
	if err == nil || !(strings.Contains(err.Error(), "deadline_exceeded") || strings.Contains(err.Error(), "deadline exceeded")) {
		t.Fatalf("the 100ms context deadline interrupts the loop: %v", err)
	}
	if consumererror.IsPermanent(err) {
		t.Fatalf("a caller that gave up may retry: %v", err)
	}
}

func TestValidateRefusesBadSettings(t *testing.T) {
	identity := componentPath(t, "wasmtel-test-identity")
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no component", Config{}, "component: a path or oci:// reference to a wasm component is required"},
		{"bad policy", Config{Plugin: map[string]any{"component": identity, "on_error": "ignore"}}, "on_error: unknown variant `ignore`"},
		{"bad mode", Config{Mode: "remote", Plugin: map[string]any{"component": identity}}, `mode: "remote"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
	good := Config{Plugin: map[string]any{"component": identity}}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good config validates: %v", err)
	}
	if n := liveHandles(); n != 0 {
		t.Fatalf("Validate leaves %d Rust handles alive (it loads nothing)", n)
	}
}

func TestBadComponentsAndConfigsFailCreationNamingTheProcessor(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		dir := t.TempDir()
		notWasm := filepath.Join(dir, "notes.wasm")
		if err := os.WriteFile(notWasm, []byte("not wasm at all"), 0o600); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			cfg  Config
			want string
		}{
			{"missing file", Config{Plugin: map[string]any{"component": filepath.Join(dir, "ghost.wasm")}}, "cannot read"},
			{"not wasm", Config{Plugin: map[string]any{"component": notWasm}}, "not a WebAssembly file"},
			{"rejected config", Config{Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-hostile"), "config": map[string]any{"reject": "ratio too high"}}}, "init rejected the configuration: ratio too high"},
			{"bad guest config", Config{Plugin: map[string]any{"component": componentPath(t, "wasmtel-redact"), "config": map[string]any{"keyz": []any{"a"}}}}, "keyz"},
			{"bad limit", Config{Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-identity"), "limits": map[string]any{"max_memory": "lots"}}}, "max_memory"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				c.cfg.Mode = mode
				set := settings()
				_, err := NewFactory().CreateTraces(context.Background(), set, &c.cfg, consumertest.NewNop())
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), set.ID.String()) {
					t.Fatalf("want an error naming %s and containing %q, got %v", set.ID, c.want, err)
				}
			})
		}
		if n := liveHandles(); n != 0 {
			t.Fatalf("failed creations leave %d Rust handles alive", n)
		}
	})
}

func TestOneProcessorIDLoadsItsPluginOnce(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		h := start(t, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-identity"), "config": map[string]any{"mode": "unchanged"}}})
		processors.Lock()
		loaded := 0
		for _, w := range processors.byID {
			if w.cfg.Mode == mode && w.users == 3 {
				loaded++
			}
		}
		processors.Unlock()
		if loaded != 1 {
			t.Fatalf("the three pipelines of one processor ID should share one plugin (found %d with 3 users)", loaded)
		}
		h.shutdown(t)
		processors.Lock()
		left := len(processors.byID)
		processors.Unlock()
		if left != 0 {
			t.Fatalf("%d processors left after the last pipeline's shutdown", left)
		}
	})
}

func TestNoHandlesLeakAfterShutdownOrUnderLoad(t *testing.T) {
	ctx := context.Background()
	set := settings()
	cfg := &Config{Mode: modes()[0], Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-identity"), "config": map[string]any{"mode": "replace"}}}
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(ctx, set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	during := liveHandles()
	batch := traces("GET /a")
	for i := 0; i < 10_000; i++ {
		if err := p.ConsumeTraces(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveHandles(); got != during {
		t.Fatalf("handles grew under load: %d -> %d", during, got)
	}
	if sink.SpanCount() != 10_000 {
		t.Fatalf("got %d spans", sink.SpanCount())
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("a second shutdown is harmless: %v", err)
	}
	if n := liveHandles(); n != 0 {
		t.Fatalf("%d Rust handles alive after Shutdown", n)
	}
}

func TestPluginMetricsAreCollectorTelemetry(t *testing.T) {
	forEachMode(t, testPluginMetricsAreCollectorTelemetry)
}

func testPluginMetricsAreCollectorTelemetry(t *testing.T, mode string) {
	ctx := context.Background()
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(ctx) }()
	set := settings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-redact"), "config": map[string]any{"keys": []any{"user.email"}}}}
	p, err := NewFactory().CreateTraces(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Shutdown(ctx) }()
	for i := 0; i < 3; i++ {
		if err := p.ConsumeTraces(ctx, traces("GET /")); err != nil {
			t.Fatal(err)
		}
	}
	sumOf := func(name string, match func(metricdata.DataPoint[int64]) bool) int64 {
		m, err := tel.GetMetric(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var total int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if match(dp) {
				total += dp.Value
			}
		}
		return total
	}
	all := func(metricdata.DataPoint[int64]) bool { return true }
	if calls := sumOf("wasmtel.plugin.calls", all); calls != 3 {
		t.Fatalf("wasmtel.plugin.calls = %d, want 3", calls)
	}
	replaced := sumOf("wasmtel.plugin.outcomes", func(dp metricdata.DataPoint[int64]) bool {
		v, _ := dp.Attributes.Value("outcome")
		return v.AsString() == "replaced"
	})
	if replaced != 3 {
		t.Fatalf("replaced outcomes = %d, want 3", replaced)
	}
	if redacted := sumOf("wasmtel.plugin.guest_counter", all); redacted != 3 {
		t.Fatalf("guest counter redacted_values = %d, want 3", redacted)
	}
	duration, err := tel.GetMetric("wasmtel.plugin.duration")
	if err != nil {
		t.Fatal(err)
	}
	points := duration.Data.(metricdata.Histogram[float64]).DataPoints
	if len(points) != 1 || points[0].Count != 3 || points[0].Sum <= 0 {
		t.Fatalf("wasmtel.plugin.duration: want one series of 3 batches taking some time, got %+v", points)
	}
	for key, want := range map[attribute.Key]string{"signal": "traces", "outcome": "replaced"} {
		if v, _ := points[0].Attributes.Value(key); v.AsString() != want {
			t.Fatalf("wasmtel.plugin.duration %s = %q, want %q", key, v.AsString(), want)
		}
	}
}

// The output is unmarshaled where the runtime left it (its buffer, or a
// shared-memory slot) and that memory is reused after: pdata's unmarshal
// must keep nothing of its input. A pdata release that aliased it would
// corrupt batches downstream; this catches it.
func TestUnmarshaledBatchesKeepNothingOfTheirInput(t *testing.T) {
	td := traces("GET /")
	span := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	span.Attributes().PutEmptyBytes("raw").FromRaw([]byte{1, 2, 3})
	span.Events().AppendEmpty().SetName("event")
	ld := logs("body")
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().SetEmptyBytes().FromRaw([]byte{4, 5})
	md := metrics("m")
	checkUnmarshal(t, "traces", td, tracesMarshaler.MarshalTraces, tracesUnmarshaler.UnmarshalTraces)
	checkUnmarshal(t, "logs", ld, logsMarshaler.MarshalLogs, logsUnmarshaler.UnmarshalLogs)
	checkUnmarshal(t, "metrics", md, metricsMarshaler.MarshalMetrics, metricsUnmarshaler.UnmarshalMetrics)
}

// checkUnmarshal unmarshals batch's encoding, overwrites the input, and
// checks the batch still encodes the same.
func checkUnmarshal[T any](t *testing.T, name string, batch T, marshal func(T) ([]byte, error), unmarshal func([]byte) (T, error)) {
	t.Helper()
	encoded, err := marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	input := bytes.Clone(encoded)
	out, err := unmarshal(input)
	if err != nil {
		t.Fatal(err)
	}
	clear(input)
	again, err := marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, encoded) {
		t.Fatalf("%s: the batch changed when its input buffer was overwritten", name)
	}
}

func TestAChainRunsItsMembersInOneCrossing(t *testing.T) {
	forEachMode(t, testAChainRunsItsMembersInOneCrossing)
}

// A chain (what the wasmchain converter makes of consecutive wasm
// processors) gives what its members give one after the other; a drop by the
// first ends it; each member keeps its own name in the runtime's metrics.
func testAChainRunsItsMembersInOneCrossing(t *testing.T, mode string) {
	ctx := context.Background()
	redact := map[string]any{"component": componentPath(t, "wasmtel-redact"), "mode": mode,
		"config": map[string]any{"keys": []any{"user.email"}, "action": "mask", "mask": "<redacted>"}}
	filter := map[string]any{"component": componentPath(t, "wasmtel-filter"), "mode": mode,
		"config": map[string]any{"spans": map[string]any{"attributes": []any{map[string]any{"key": "http.route", "value": "/health"}}}}}
	cfg := &Config{Chain: []ChainMember{{ID: "wasm/redact", Settings: redact}, {ID: "wasm/filter", Settings: filter}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := settings()
	h := startWith(t, set, cfg)
	if err := h.traces.ConsumeTraces(ctx, traces("GET /health", "POST /pay")); err != nil {
		t.Fatal(err)
	}
	if h.tsink.SpanCount() != 1 {
		t.Fatalf("want 1 span left after the filter, got %d", h.tsink.SpanCount())
	}
	span := h.tsink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if v, ok := span.Attributes().Get("user.email"); attr(t, v.Str(), ok) != "<redacted>" {
		t.Fatalf("not redacted: %q", v.Str())
	}
	processors.Lock()
	w := processors.byID[set.ID]
	processors.Unlock()
	if w == nil || len(w.members) != 2 || w.members[0].name != "wasm/redact" || w.members[1].name != "wasm/filter" {
		t.Fatalf("members: %+v", w)
	}
	for _, m := range w.members {
		metrics, err := snapshot(m.plugin)
		if err != nil || metrics.Calls != 1 {
			t.Fatalf("%s: %d calls (%v), want 1", m.name, metrics.Calls, err)
		}
	}
}

// countingPlugin records how it is called: a chain crosses once, through
// its first member, with the rest as `then`.
type countingPlugin struct {
	calls, chainLengths []int
}

func (p *countingPlugin) process(ctx context.Context, sig signal, input []byte, consume func([]byte)) (outcome, error) {
	return p.processChain(ctx, sig, input, nil, consume)
}

func (p *countingPlugin) processChain(_ context.Context, _ signal, _ []byte, then []pluginHandle, _ func([]byte)) (outcome, error) {
	p.chainLengths = append(p.chainLengths, 1+len(then))
	return outcomeUnchanged, nil
}

func (p *countingPlugin) metricsJSON() ([]byte, error) { return []byte(`{}`), nil }
func (p *countingPlugin) free()                        {}

func TestAChainCrossesOncePerBatch(t *testing.T) {
	first, second, third := &countingPlugin{}, &countingPlugin{}, &countingPlugin{}
	w, err := newWasmProcessor(settings(), &Config{}, "wasm/chain(a,b,c)",
		[]member{{"wasm/a", first}, {"wasm/b", second}, {"wasm/c", third}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.processTraces(context.Background(), traces("GET /")); err != nil {
			t.Fatal(err)
		}
	}
	if len(first.chainLengths) != 3 || first.chainLengths[0] != 3 || len(second.chainLengths)+len(third.chainLengths) != 0 {
		t.Fatalf("calls: first %v, second %v, third %v; want 3 calls of the whole chain through the first",
			first.chainLengths, second.chainLengths, third.chainLengths)
	}
}

// durationSetting writes d as the runtime's duration settings read it.
func durationSetting(d time.Duration) string {
	return fmt.Sprintf("%dus", d.Microseconds())
}
