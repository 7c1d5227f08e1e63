package wasmprocessor

// Benchmarks: the wasm processor in both modes (embedded, subprocess)
// against the bare bridge (identity) and contrib's redactionprocessor doing the
// same redaction, on the same batches. Run: scripts/bench-go.sh (an optimised
// runtime), or after sourcing scripts/go-env.sh:
// go test -run '^$' -bench . -benchmem ./wasmprocessor/

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"

	"github.com/wasmtel/wasmtel/go/internal/benchdata"
)

// benchTraces is the benchmarks' batch of n spans (no health checks).
func benchTraces(n int) ptrace.Traces { return benchdata.Traces(n, false) }

const (
	secretKeyPattern = benchdata.SecretKeyPattern
	emailPattern     = benchdata.EmailPattern
)

var redactConfig = map[string]any{
	"keys":           []any{"user.email"},
	"key_patterns":   []any{secretKeyPattern},
	"value_patterns": []any{emailPattern},
	"action":         "hash",
}

// contribRedaction is the Go baseline users pick, contrib's
// redactionprocessor, configured for the same work as redactConfig: hash the
// whole value of user.email and of keys matching the pattern, hash emails
// inside other string values, add no summary attributes. Its hash is
// HMAC-SHA256 in full hex where redact keeps 16 hex of a salted SHA-256.
func contribRedaction(tb testing.TB, next consumer.Traces) processor.Traces {
	factory := redactionprocessor.NewFactory()
	cfg := factory.CreateDefaultConfig().(*redactionprocessor.Config)
	cfg.AllowAllKeys = true
	cfg.BlockedKeyPatterns = []string{`^user\.email$`, secretKeyPattern}
	cfg.BlockedValues = []string{emailPattern}
	cfg.HashFunction = redactionprocessor.HMACSHA256
	cfg.HMACKey = configopaque.String(strings.Repeat("k", 32))
	cfg.Summary = "silent"
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	p, err := factory.CreateTraces(context.Background(), processortest.NewNopSettings(factory.Type()), cfg, next)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// TestBenchBaselineDoesTheSameWork: contrib's processor and wasm redact
// change the same values of the benchmark batch and leave no email behind.
func TestBenchBaselineDoesTheSameWork(t *testing.T) {
	batch := benchTraces(100)
	batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).Attributes().PutStr("http.request.header.authorization", "Bearer abc")
	email := regexp.MustCompile(emailPattern)
	changed := func(out ptrace.Traces) []string {
		var keys []string
		in := batch.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		spans := out.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < spans.Len(); i++ {
			for k, v := range spans.At(i).Attributes().All() {
				if email.MatchString(v.Str()) {
					t.Errorf("span %d keeps an email in %s: %q", i, k, v.Str())
				}
				if before, _ := in.At(i).Attributes().Get(k); before.Str() != v.Str() {
					keys = append(keys, fmt.Sprintf("%d/%s", i, k))
				}
			}
		}
		return keys
	}
	contribOut := new(consumertest.TracesSink)
	copied := ptrace.NewTraces()
	batch.CopyTo(copied)
	if err := contribRedaction(t, contribOut).ConsumeTraces(context.Background(), copied); err != nil {
		t.Fatal(err)
	}
	wasm := start(t, &Config{Plugin: map[string]any{"component": componentPath(t, "wasmtel-redact"), "config": redactConfig}})
	if err := wasm.traces.ConsumeTraces(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want, got := changed(contribOut.AllTraces()[0]), changed(wasm.tsink.AllTraces()[0])
	if len(want) != 11 || strings.Join(want, ",") != strings.Join(got, ",") {
		t.Fatalf("contrib changed %v, wasm redact changed %v", want, got)
	}
}

func benchProcessor(b *testing.B, cfg *Config, batch ptrace.Traces) {
	ctx := context.Background()
	p, err := NewFactory().CreateTraces(ctx, settings(), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Shutdown(ctx) }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The processor must not mutate its input (MutatesData: false), so
		// the same batch is reused.
		if err := p.ConsumeTraces(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// In subprocess mode, the child's memory is the mode's cost too.
	if pid := childPID(); pid != 0 {
		b.ReportMetric(float64(peakRSSMiB(pid)), "child-peak-MiB")
	}
}

func BenchmarkTraces(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		batch := benchTraces(n)
		b.Run(fmt.Sprintf("spans=%d/contrib_redaction", n), func(b *testing.B) {
			p := contribRedaction(b, consumertest.NewNop())
			ctx := context.Background()
			var td ptrace.Traces
			for i := 0; i < b.N; i++ {
				// It mutates (MutatesData: true), so each op gets a fresh copy,
				// made outside the timer: alone in a pipeline it gets none.
				b.StopTimer()
				td = ptrace.NewTraces()
				batch.CopyTo(td)
				b.StartTimer()
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, mode := range modes() {
			b.Run(fmt.Sprintf("spans=%d/%s/wasm_redact", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-redact"), "config": redactConfig}}, batch)
			})
			b.Run(fmt.Sprintf("spans=%d/%s/identity_unchanged", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-test-identity")}}, batch)
			})
			b.Run(fmt.Sprintf("spans=%d/%s/identity_replace", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-test-identity"), "config": map[string]any{"mode": "replace"}}}, batch)
			})
		}
	}
}

// peakRSSMiB is a process's peak resident memory (Linux VmHWM), or 0.
func peakRSSMiB(pid int) uint64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib uint64
			_, _ = fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib)
			return kib >> 10
		}
	}
	return 0
}

// BenchmarkCall is the bare round trip of each mode: an empty batch through
// the identity component, no marshaling.
func BenchmarkCall(b *testing.B) {
	for _, mode := range modes() {
		b.Run(mode, func(b *testing.B) {
			p, err := openPlugin(&Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-test-identity")}}, "bench", zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer p.free()
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := p.process(ctx, signalTraces, nil, func([]byte) {}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChain: wasm/redact then wasm/filter as two processors (two
// marshals, two calls, two unmarshals) against the chain the wasmchain
// converter makes of them (one of each), on 100- and 1k-span batches.
func BenchmarkChain(b *testing.B) {
	filterConfig := map[string]any{"spans": map[string]any{"attributes": []any{
		map[string]any{"key": "http.route", "pattern": "^/(health|readyz)$"}}}}
	for _, n := range []int{100, 1000} {
		batch := benchTraces(n)
		for _, mode := range modes() {
			redact := &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-redact"), "config": redactConfig}}
			filter := &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(b, "wasmtel-filter"), "config": filterConfig}}
			b.Run(fmt.Sprintf("spans=%d/%s/two_processors", n, mode), func(b *testing.B) {
				ctx := context.Background()
				set := settings()
				second, err := NewFactory().CreateTraces(ctx, settings(), filter, consumertest.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				first, err := NewFactory().CreateTraces(ctx, set, redact, second)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range []processor.Traces{first, second} {
					if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
						b.Fatal(err)
					}
					defer func() { _ = p.Shutdown(ctx) }()
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := first.ConsumeTraces(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("spans=%d/%s/chain", n, mode), func(b *testing.B) {
				settingsOf := func(cfg *Config) map[string]any {
					settings := maps.Clone(cfg.Plugin)
					settings["mode"] = mode
					return settings
				}
				benchProcessor(b, &Config{Chain: []ChainMember{
					{ID: "wasm/redact", Settings: settingsOf(redact)}, {ID: "wasm/filter", Settings: settingsOf(filter)}}}, batch)
			})
		}
	}
}
