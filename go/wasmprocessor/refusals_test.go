package wasmprocessor

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// refusingPlugin refuses every batch, alternating a retryable timeout and
// a permanent trap.
type refusingPlugin struct{ calls int }

func (p *refusingPlugin) process(context.Context, signal, []byte, func([]byte)) (outcome, error) {
	p.calls++
	if p.calls%2 == 0 {
		return outcomeUnchanged, &bridgeError{permanent: true, kind: "trap", message: "plugin wasm/x: traces batch failed (trap): unreachable"}
	}
	return outcomeUnchanged, &bridgeError{kind: "timeout", message: timeoutMessage}
}

func (p *refusingPlugin) processChain(ctx context.Context, sig signal, input []byte, _ []pluginHandle, consume func([]byte)) (outcome, error) {
	return p.process(ctx, sig, input, consume)
}

func (*refusingPlugin) metricsJSON() ([]byte, error) { return []byte("{}"), nil }
func (*refusingPlugin) free()                        {}

func TestEveryRefusalIsCountedAndLoggedDespiteSampling(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	set := settings()
	// The collector's sampler: the first 10 lines a message per 10 s, then 1 in 100.
	set.Logger = zap.New(zapcore.NewSamplerWithOptions(core, 10*time.Second, 10, 100))
	reader := sdkmetric.NewManualReader()
	set.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	w, err := newWasmProcessor(set, &Config{}, set.ID.String(), []member{{set.ID.String(), &refusingPlugin{}}})
	if err != nil {
		t.Fatal(err)
	}
	w.users = 1
	processors.Lock()
	processors.byID[set.ID] = w
	processors.Unlock()
	ctx := context.Background()
	const burst = 36
	for i := 0; i < burst; i++ {
		_, err := processBatch(ctx, w, signalTraces, traces("GET /"), tracesMarshaler.MarshalTraces, tracesUnmarshaler.UnmarshalTraces)
		if err == nil || consumererror.IsPermanent(err) != (i%2 == 1) || !strings.Contains(err.Error(), w.name+": ") {
			t.Fatalf("refusal %d: %v", i, err)
		}
	}
	// Shutdown logs what is pending.
	if err := (&pipelineUse{processor: w}).shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	var logged int64
	for _, entry := range logs.All() {
		batches, ok := entry.ContextMap()["batches"].(int64)
		if !ok || !strings.HasPrefix(entry.Message, w.name+" refused ") {
			t.Fatalf("a refusal line without its count or processor: %q %v", entry.Message, entry.ContextMap())
		}
		logged += batches
	}
	if logged != burst {
		t.Fatalf("the logged lines account for %d refusals, want %d: %v", logged, burst, logs.All())
	}
	first := logs.All()[0]
	if first.ContextMap()["error"] != w.name+": "+timeoutMessage || first.ContextMap()["kind"] != "timeout" {
		t.Fatalf("the first refusal is logged at once with its error and kind: %v", first.ContextMap())
	}

	var data metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &data); err != nil {
		t.Fatal(err)
	}
	byKind := map[string]int64{}
	var total int64
	for _, scope := range data.ScopeMetrics {
		for _, m := range scope.Metrics {
			if m.Name != "wasmtel.plugin.refused" {
				continue
			}
			if m.Unit != "{batch}" {
				t.Fatalf("unit %q", m.Unit)
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				plugin, _ := dp.Attributes.Value("plugin")
				sig, _ := dp.Attributes.Value("signal")
				permanent, _ := dp.Attributes.Value("permanent")
				kind, _ := dp.Attributes.Value("kind")
				if plugin.AsString() != w.name || sig.AsString() != "traces" {
					t.Fatalf("attributes %v", dp.Attributes)
				}
				byKind[permanent.Emit()+"/"+kind.AsString()] += dp.Value
				total += dp.Value
			}
		}
	}
	if total != burst || byKind["false/timeout"] != burst/2 || byKind["true/trap"] != burst/2 {
		t.Fatalf("wasmtel.plugin.refused: %d in all, by permanent/kind %v; want %d, half each", total, byKind, burst)
	}
}

// Lines of a refusal log never repeat a message, so a sampler keyed on
// messages has nothing to drop.
func TestRefusalLinesHaveMessagesOfTheirOwn(t *testing.T) {
	window := refusalWindow
	refusalWindow = time.Hour // this test ends the windows
	t.Cleanup(func() { refusalWindow = window })
	core, logs := observer.New(zap.DebugLevel)
	l := newRefusalLog(zap.New(core), "wasm/redact")
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			l.record(signalLogs, false, "busy", errBridgeRestarting)
		}
		l.tick() // the window ends: a summary
		l.tick() // and a quiet one: the next refusal is logged at once
	}
	l.close()
	seen := map[string]bool{}
	var batches int64
	for _, entry := range logs.All() {
		if seen[entry.Message] {
			t.Fatalf("message %q logged twice", entry.Message)
		}
		seen[entry.Message] = true
		batches += entry.ContextMap()["batches"].(int64)
	}
	if batches != 15 || len(seen) != 6 {
		t.Fatalf("%d lines for %d refusals, want 6 for 15: %v", len(seen), batches, logs.All())
	}
}
