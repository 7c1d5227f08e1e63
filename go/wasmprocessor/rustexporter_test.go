package wasmprocessor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var exporterSeq atomic.Int64

func exporterSettings(typ component.Type) exporter.Settings {
	set := exportertest.NewNopSettings(typ)
	set.ID = component.NewIDWithName(typ, "e"+strings.Repeat("x", int(exporterSeq.Add(1))))
	return set
}

// rustConfig is a Rust exporter's config as the collector makes it.
func rustConfig(t *testing.T, f exporter.Factory, settings map[string]any) component.Config {
	t.Helper()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// arrowFiles is the content of every Arrow file written under dir for signal.
func arrowFiles(t *testing.T, dir, signal string) []byte {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, signal, "*.arrows"))
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestARustExporterIsACollectorExporterWithItsRustSettings(t *testing.T) {
	f := NewRustExporterFactory("arrow_ipc")
	if f.Type().String() != "arrow_ipc" {
		t.Fatalf("type %s", f.Type())
	}
	dir := t.TempDir()
	cfg := rustConfig(t, f, map[string]any{"directory": dir, "buffer": map[string]any{"max_rows": 1}})
	if err := cfg.(*RustConfig).Validate(); err != nil {
		t.Fatal(err)
	}
	set := exporterSettings(f.Type())
	ctx := context.Background()
	tracesExp, err := f.CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	logsExp, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := componenttest.NewNopHost()
	if err := tracesExp.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := logsExp.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	// Consume returns once the files hold the batch (the exporter's Ack).
	if err := tracesExp.ConsumeTraces(ctx, traces("GET /a", "GET /b")); err != nil {
		t.Fatal(err)
	}
	if err := logsExp.ConsumeLogs(ctx, logs("login ok")); err != nil {
		t.Fatal(err)
	}
	// One segment serves both signals of the ID: it stops with the last.
	if err := tracesExp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := logsExp.ConsumeLogs(ctx, logs("still open")); err != nil {
		t.Fatalf("the logs pipeline still holds the segment: %v", err)
	}
	if err := logsExp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := logsExp.ConsumeLogs(ctx, logs("late")); err == nil {
		t.Fatal("a batch after shutdown was accepted")
	}
	spans, records := arrowFiles(t, dir, "traces"), arrowFiles(t, dir, "logs")
	for _, want := range []string{"GET /a", "GET /b", "ada@example.com"} {
		if !bytes.Contains(spans, []byte(want)) {
			t.Errorf("traces files lack %q", want)
		}
	}
	if !bytes.Contains(records, []byte("login ok")) || !bytes.Contains(records, []byte("still open")) {
		t.Error("logs files lack a record")
	}
}

func TestARustExportersSettingsAreValidatedByItsRustFactory(t *testing.T) {
	f := NewRustExporterFactory("arrow_ipc")
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"directry": "/x"}, "unknown field `directry`"},
		{map[string]any{"directory": "/x", "max_file_bytes": "lots"}, "lots"},
		{map[string]any{}, "missing field `directory`"},
	} {
		err := rustConfig(t, f, tc.settings).(*RustConfig).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.settings, err, tc.want)
		}
	}
}

func TestARustExporterWhoseUpstreamIsDownRefusesRetryably(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := listener.Addr().String()
	listener.Close()
	f := NewRustExporterFactory("rust_otlp_grpc")
	cfg := rustConfig(t, f, map[string]any{"grpc_endpoint": "http://" + dead})
	ctx := context.Background()
	exp, err := f.CreateTraces(ctx, exporterSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	batchCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = exp.ConsumeTraces(batchCtx, traces("GET /a"))
	if err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("want a retryable error, got %v", err)
	}
}

func TestASegmentRunsWasmProcessorsThenEveryExporterInEachMode(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		a, b := t.TempDir(), t.TempDir()
		f := NewSegmentExporterFactory()
		cfg := rustConfig(t, f, map[string]any{
			"processors": []any{
				map[string]any{"id": "wasm/redact", "settings": map[string]any{
					"component": componentPath(t, "wasmtel-redact"), "mode": mode,
					"config": map[string]any{"keys": []any{"user.email"}, "action": "mask", "mask": "****"}}},
				map[string]any{"id": "wasm/filter", "settings": map[string]any{
					"component": componentPath(t, "wasmtel-filter"), "mode": mode,
					"config": map[string]any{"spans": map[string]any{"names": []any{"GET /health"}}}}},
			},
			"exporters": []any{
				map[string]any{"id": "arrow_ipc/a", "settings": map[string]any{"directory": a}},
				map[string]any{"id": "arrow_ipc/b", "settings": map[string]any{"directory": b}},
			},
		})
		if err := cfg.(*SegmentConfig).Validate(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		set := exporterSettings(f.Type())
		exp, err := f.CreateTraces(ctx, set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := exp.ConsumeTraces(ctx, traces("GET /a", "GET /health")); err != nil {
				t.Fatal(err)
			}
		}
		// Each wasm processor's plugin metrics, read from the segment under its ID.
		segments.Lock()
		handle := segments.byID[set.ID].running.handle
		segments.Unlock()
		redact, err := snapshot(segmentPlugin{segment: handle, id: "wasm/redact"})
		if err != nil {
			t.Fatal(err)
		}
		filter, err := snapshot(segmentPlugin{segment: handle, id: "wasm/filter"})
		if err != nil {
			t.Fatal(err)
		}
		if redact.Calls != 3 || redact.Replaced != 3 || filter.Calls != 3 || filter.Replaced != 3 {
			t.Errorf("plugin metrics: redact %+v, filter %+v", redact, filter)
		}
		if err := exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{a, b} {
			spans := arrowFiles(t, dir, "traces")
			if !bytes.Contains(spans, []byte("GET /a")) || !bytes.Contains(spans, []byte("****")) {
				t.Errorf("%s: the redacted spans are missing", dir)
			}
			if bytes.Contains(spans, []byte("ada@example.com")) || bytes.Contains(spans, []byte("GET /health")) {
				t.Errorf("%s: an address or a filtered span was written", dir)
			}
		}
	})
}

func TestASegmentWithABadMemberRefusesToStartNamingIt(t *testing.T) {
	f := NewSegmentExporterFactory()
	for _, tc := range []struct {
		settings map[string]any
		want     string
	}{
		{map[string]any{"exporters": []any{map[string]any{"id": "arrow_ipc/x", "settings": map[string]any{"rotate": 1}}}}, "exporters[0] (arrow_ipc/x): "},
		{map[string]any{"exporters": []any{map[string]any{"id": "debug", "settings": map[string]any{}}}}, "debug: not a Rust exporter"},
		{map[string]any{"processors": []any{map[string]any{"id": "wasm/r", "settings": map[string]any{}}},
			"exporters": []any{map[string]any{"id": "noop"}}}, "processors[0] (wasm/r): component"},
		{map[string]any{"processors": []any{map[string]any{"id": "circuit_breaker", "settings": map[string]any{"open_duraton": "1s"}}},
			"exporters": []any{map[string]any{"id": "noop"}}}, "processors[0] (circuit_breaker): unknown field `open_duraton`"},
		{map[string]any{"processors": []any{map[string]any{"id": "rust_batch", "settings": map[string]any{"max_batch_duration": "soon"}}},
			"exporters": []any{map[string]any{"id": "noop"}}}, "processors[0] (rust_batch): "},
		{map[string]any{"processors": []any{map[string]any{"id": "type_router", "settings": map[string]any{}}},
			"exporters": []any{map[string]any{"id": "noop"}}}, "type_router: not a Rust processor a segment can run"},
		{map[string]any{}, "exporters: a segment needs at least one"},
	} {
		err := rustConfig(t, f, tc.settings).(*SegmentConfig).Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.settings, err, tc.want)
		}
	}
}

func TestRustProcessorsRunInASegmentBeforeItsExporters(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		dir := t.TempDir()
		f := NewSegmentExporterFactory()
		cfg := rustConfig(t, f, map[string]any{
			"processors": []any{
				// Never full, so each batch waits for the timer and its Ack comes
				// back through the batch processor.
				map[string]any{"id": "rust_batch", "settings": map[string]any{
					"max_batch_duration": "20ms", "otlp": map[string]any{"min_size": 1 << 30, "sizer": "bytes"}}},
				map[string]any{"id": "wasm/redact", "settings": map[string]any{
					"component": componentPath(t, "wasmtel-redact"), "mode": mode,
					"config": map[string]any{"keys": []any{"user.email"}, "action": "mask", "mask": "****"}}},
				map[string]any{"id": "circuit_breaker", "settings": map[string]any{"failure_threshold": 2}},
			},
			"exporters": []any{map[string]any{"id": "arrow_ipc", "settings": map[string]any{"directory": dir}}},
		})
		if err := cfg.(*SegmentConfig).Validate(); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		exp, err := f.CreateTraces(ctx, exporterSettings(f.Type()), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := exp.ConsumeTraces(ctx, traces("GET /a")); err != nil {
				t.Fatal(err)
			}
		}
		if err := exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		spans := arrowFiles(t, dir, "traces")
		if bytes.Count(spans, []byte("GET /a")) != 3 || bytes.Contains(spans, []byte("ada@example.com")) {
			t.Errorf("want three redacted spans in %s", dir)
		}
	})
}

func TestARustProcessorsSettingsAreValidatedByItsRustFactory(t *testing.T) {
	f := NewRustProcessorFactory("circuit_breaker")
	good := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{"failure_threshold": 3}).Unmarshal(good); err != nil {
		t.Fatal(err)
	}
	if err := good.(*RustConfig).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{"failure_treshold": 3}).Unmarshal(bad); err != nil {
		t.Fatal(err)
	}
	if err := bad.(*RustConfig).Validate(); err == nil || !strings.Contains(err.Error(), "failure_treshold") {
		t.Errorf("a misspelt key: %v", err)
	}
}

// A Rust component runs where this build runs plugins by default: embedded
// with cgo, in the bridge child without (scripts/test-go.sh runs both).
func TestARustProcessorBeforeGoComponentsHandsItsOutputOn(t *testing.T) {
	{
		f := NewRustProcessorFactory("rust_batch")
		cfg := f.CreateDefaultConfig()
		// Never full: batches wait for the timer, and two sent together leave as one.
		settings := map[string]any{"max_batch_duration": "100ms", "otlp": map[string]any{"min_size": 1 << 30, "sizer": "bytes"}}
		if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		holdingCfg := f.CreateDefaultConfig()
		holdingSettings := map[string]any{"max_batch_duration": "1h", "otlp": map[string]any{"min_size": 1 << 30, "sizer": "bytes"}}
		if err := confmap.NewFromStringMap(holdingSettings).Unmarshal(holdingCfg); err != nil {
			t.Fatal(err)
		}
		startWith := func(cfg component.Config, next consumer.Traces) processor.Traces {
			set := processortest.NewNopSettings(f.Type())
			set.ID = component.NewIDWithName(f.Type(), fmt.Sprint(processorSeq.Add(1)))
			p, err := f.CreateTraces(ctx, set, cfg, next)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			return p
		}
		start := func(next consumer.Traces) processor.Traces { return startWith(cfg, next) }
		sink := new(consumertest.TracesSink)
		p := start(sink)
		errs := make(chan error, 2)
		for _, name := range []string{"GET /1", "GET /2"} {
			go func() { errs <- p.ConsumeTraces(ctx, traces(name)) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// Consume returned, so the next consumer has both spans already.
		if sink.SpanCount() != 2 {
			t.Fatalf("the next consumer got %d spans in %d batches", sink.SpanCount(), len(sink.AllTraces()))
		}
		if err := p.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		// Shutdown drains: a batch the Rust batch processor still holds (for
		// an hour) is flushed to the next consumer. Its caller hears either
		// nil or a retryable refusal (the engine stops the batch processor,
		// and with it the flush, only after the ingress let go of its Acks):
		// delivered, never silently lost nor reported as a permanent failure.
		holding := startWith(holdingCfg, sink)
		held := make(chan error, 1)
		go func() { held <- holding.ConsumeTraces(ctx, traces("GET /held")) }()
		time.Sleep(time.Second) // let it reach the processor (Shutdown refuses later ones)
		shutdownCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		shutdownErr := holding.Shutdown(shutdownCtx)
		if err := <-held; err != nil && consumererror.IsPermanent(err) {
			t.Fatalf("the held batch: %v", err)
		}
		if sink.SpanCount() != 3 {
			t.Fatalf("the held batch was not flushed to the next consumer: %d spans (shutdown: %v)", sink.SpanCount(), shutdownErr)
		}

		// The next consumer's refusal reaches the caller with its meaning.
		refusing := start(consumertest.NewErr(consumererror.NewPermanent(errors.New("downstream: bad data"))))
		defer refusing.Shutdown(ctx)
		err := refusing.ConsumeTraces(ctx, traces("GET /3"))
		if err == nil || !consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "downstream: bad data") {
			t.Fatalf("want the permanent refusal, got %v", err)
		}
	}
}

func TestASegmentsMembersEngineMetricsAreCollectorMetricsUnderTheirIDs(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := listener.Addr().String()
		listener.Close()
		f := NewSegmentExporterFactory()
		cfg := rustConfig(t, f, map[string]any{
			"processors": []any{
				map[string]any{"id": "wasm/redact", "settings": map[string]any{
					"component": componentPath(t, "wasmtel-redact"), "mode": mode,
					"config": map[string]any{"keys": []any{"user.email"}}}},
				map[string]any{"id": "circuit_breaker", "settings": map[string]any{"failure_threshold": 2, "open_duration": "1h"}},
			},
			"exporters": []any{map[string]any{"id": "rust_otlp_grpc", "settings": map[string]any{"grpc_endpoint": "http://" + dead}}},
		})
		set := exporterSettings(f.Type())
		reader := sdkmetric.NewManualReader()
		set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		ctx := context.Background()
		exp, err := f.CreateTraces(ctx, set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(ctx)
		for range 3 {
			batchCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := exp.ConsumeTraces(batchCtx, traces("GET /a")); err == nil {
				t.Fatal("the upstream is down: want an error")
			}
			cancel()
		}
		// value is a node metric's current point for one member, or -1.
		value := func(data metricdata.ResourceMetrics, name, id string) float64 {
			for _, scope := range data.ScopeMetrics {
				for _, m := range scope.Metrics {
					if m.Name != name {
						continue
					}
					var points []metricdata.DataPoint[float64]
					switch d := m.Data.(type) {
					case metricdata.Sum[float64]:
						points = d.DataPoints
					case metricdata.Gauge[float64]:
						points = d.DataPoints
					}
					for _, p := range points {
						if v, ok := p.Attributes.Value(componentIDKey); ok && v.AsString() == id {
							return p.Value
						}
					}
				}
			}
			return -1
		}
		var data metricdata.ResourceMetrics
		deadline := time.Now().Add(20 * time.Second)
		for {
			if err := reader.Collect(ctx, &data); err != nil {
				t.Fatal(err)
			}
			// Nodes report to the engine's registry periodically.
			if value(data, "wasmtel.processor.circuit_breaker.rejected", "circuit_breaker") == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := value(data, "wasmtel.processor.circuit_breaker.rejected", "circuit_breaker"); got != 1 {
			t.Errorf("the breaker's refusals: %v", got)
		}
		if got := value(data, "wasmtel.processor.circuit_breaker.state", "circuit_breaker"); got != 1 {
			t.Errorf("the breaker's state (1 open): %v", got)
		}
		if got := value(data, "channel.receiver.messages", "rust_otlp_grpc"); got < 2 {
			t.Errorf("the exporter got %v messages, want the two the breaker let through", got)
		}
		// The wasm processor's plugin metrics are still read out of the same answer.
		if got := value(data, "channel.receiver.messages", "wasm/redact"); got < 3 {
			t.Errorf("the wasm node got %v messages", got)
		}
	})
}

// A run of wasm and Rust processors before Go components (what the
// converter folds): one replying segment, the next consumer gets what the
// run lets through, and every member's metrics are the processor's.
func TestASegmentProcessorRunsWasmAndRustProcessorsInOneCrossing(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		f := NewSegmentProcessorFactory()
		cfg := f.CreateDefaultConfig()
		if err := confmap.NewFromStringMap(map[string]any{"processors": []any{
			map[string]any{"id": "wasm/redact", "settings": map[string]any{
				"component": componentPath(t, "wasmtel-redact"), "mode": mode,
				"config": map[string]any{"keys": []any{"user.email"}, "action": "mask", "mask": "****"}}},
			// Never full: two batches sent together leave as one, on the timer.
			map[string]any{"id": "rust_batch", "settings": map[string]any{
				"max_batch_duration": "100ms", "otlp": map[string]any{"min_size": 1 << 30, "sizer": "bytes"}}},
			map[string]any{"id": "circuit_breaker", "settings": map[string]any{"failure_threshold": 3}},
		}}).Unmarshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := cfg.(*SegmentProcessorConfig).Validate(); err != nil {
			t.Fatal(err)
		}
		set := processortest.NewNopSettings(f.Type())
		set.ID = component.NewIDWithName(f.Type(), fmt.Sprint(processorSeq.Add(1)))
		reader := sdkmetric.NewManualReader()
		set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		ctx := context.Background()
		sink := new(consumertest.TracesSink)
		p, err := f.CreateTraces(ctx, set, cfg, sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		defer p.Shutdown(ctx)
		errs := make(chan error, 2)
		for _, name := range []string{"GET /1", "GET /2"} {
			go func() { errs <- p.ConsumeTraces(ctx, traces(name)) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if sink.SpanCount() != 2 || len(sink.AllTraces()) != 1 {
			t.Fatalf("the next consumer got %d spans in %d batches, want 2 in 1", sink.SpanCount(), len(sink.AllTraces()))
		}
		var m ptrace.JSONMarshaler
		out, err := m.MarshalTraces(sink.AllTraces()[0])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte("ada@example.com")) || !bytes.Contains(out, []byte("****")) {
			t.Fatalf("not redacted: %s", out)
		}
		// value sums an instrument's points whose attribute key is id.
		value := func(data metricdata.ResourceMetrics, name string, key attribute.Key, id string) int64 {
			var sum int64
			for _, scope := range data.ScopeMetrics {
				for _, metric := range scope.Metrics {
					if metric.Name != name {
						continue
					}
					switch d := metric.Data.(type) {
					case metricdata.Sum[int64]:
						for _, p := range d.DataPoints {
							if v, ok := p.Attributes.Value(key); ok && v.AsString() == id {
								sum += p.Value
							}
						}
					case metricdata.Sum[float64]:
						for _, p := range d.DataPoints {
							if v, ok := p.Attributes.Value(key); ok && v.AsString() == id {
								sum += int64(p.Value)
							}
						}
					}
				}
			}
			return sum
		}
		var data metricdata.ResourceMetrics
		deadline := time.Now().Add(20 * time.Second)
		for {
			if err := reader.Collect(ctx, &data); err != nil {
				t.Fatal(err)
			}
			// Nodes report to the engine's registry periodically.
			if value(data, "channel.receiver.messages", componentIDKey, "rust_batch") >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := value(data, "channel.receiver.messages", componentIDKey, "rust_batch"); got < 2 {
			t.Errorf("the batch processor's node metrics: %d messages", got)
		}
		if got := value(data, "wasmtel.plugin.calls", "plugin", "wasm/redact"); got != 2 {
			t.Errorf("the wasm member's plugin metrics: %d calls", got)
		}
	})
}
