package wasmprocessor

// Benchmarks: the wasm processor in both modes (embedded, subprocess)
// against the bare bridge (identity) and a Go-native processor doing the same
// redaction, on the same batches. Run: scripts/bench-go.sh (an optimised
// runtime), or after sourcing scripts/go-env.sh:
// go test -run '^$' -bench . -benchmem ./wasmprocessor/

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// benchTraces builds n spans with HTTP attributes; every tenth carries an email.
func benchTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(n)
	for i := 0; i < n; i++ {
		span := spans.AppendEmpty()
		span.SetName(fmt.Sprintf("GET /api/orders/%d", i%50))
		span.SetTraceID([16]byte{byte(i), byte(i >> 8), 3})
		span.SetSpanID([8]byte{byte(i), byte(i >> 8), 4})
		attrs := span.Attributes()
		attrs.PutStr("http.request.method", "GET")
		attrs.PutStr("http.route", fmt.Sprintf("/api/orders/%d", i%50))
		attrs.PutStr("url.full", fmt.Sprintf("https://shop.example.com/api/orders/%d?page=2", i))
		attrs.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
		if i%10 == 0 {
			attrs.PutStr("user.email", fmt.Sprintf("user%d@example.com", i))
		}
	}
	return td
}

var redactConfig = map[string]any{
	"keys":           []any{"user.email"},
	"key_patterns":   []any{"(?i)authorization|password|token"},
	"value_patterns": []any{`[\w.+-]+@[\w-]+\.[\w.]+`},
	"action":         "hash",
}

// nativeRedact is the Go equivalent of the redact component's config above:
// hash listed keys and keys matching the pattern, hash emails inside values.
type nativeRedact struct {
	keys      map[string]bool
	keyRegex  *regexp.Regexp
	valueRegx *regexp.Regexp
}

func newNativeRedact() *nativeRedact {
	return &nativeRedact{
		keys:      map[string]bool{"user.email": true},
		keyRegex:  regexp.MustCompile(`(?i)authorization|password|token`),
		valueRegx: regexp.MustCompile(`[\w.+-]+@[\w-]+\.[\w.]+`),
	}
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:16]
}

func (r *nativeRedact) redact(attrs pcommon.Map) {
	attrs.Range(func(k string, v pcommon.Value) bool {
		if r.keys[k] || r.keyRegex.MatchString(k) {
			v.SetStr(hash16(v.AsString()))
		} else if v.Type() == pcommon.ValueTypeStr && r.valueRegx.MatchString(v.Str()) {
			v.SetStr(r.valueRegx.ReplaceAllStringFunc(v.Str(), hash16))
		}
		return true
	})
}

func (r *nativeRedact) processTraces(td ptrace.Traces) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		r.redact(rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				r.redact(span.Attributes())
				for e := 0; e < span.Events().Len(); e++ {
					r.redact(span.Events().At(e).Attributes())
				}
			}
		}
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
}

func BenchmarkTraces(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		batch := benchTraces(n)
		b.Run(fmt.Sprintf("spans=%d/go_native_redact", n), func(b *testing.B) {
			r := newNativeRedact()
			for i := 0; i < b.N; i++ {
				// The native processor mutates, so it works on a copy (as the
				// collector's fan-out would give it); the copy is timed too.
				td := ptrace.NewTraces()
				batch.CopyTo(td)
				r.processTraces(td)
			}
		})
		for _, mode := range modes() {
			b.Run(fmt.Sprintf("spans=%d/%s/wasm_redact", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Component: componentPath(b, "wasmtel-redact"), Config: redactConfig, Mode: mode}, batch)
			})
			b.Run(fmt.Sprintf("spans=%d/%s/identity_unchanged", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Component: componentPath(b, "wasmtel-test-identity"), Mode: mode}, batch)
			})
			b.Run(fmt.Sprintf("spans=%d/%s/identity_replace", n, mode), func(b *testing.B) {
				benchProcessor(b, &Config{Component: componentPath(b, "wasmtel-test-identity"),
					Config: map[string]any{"mode": "replace"}, Mode: mode}, batch)
			})
		}
	}
	if pid := childPID(); pid != 0 {
		b.Logf("bridge child peak RSS: %d MiB", peakRSSMiB(pid))
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
			p, err := openPlugin(&Config{Component: componentPath(b, "wasmtel-test-identity"), Mode: mode}, "bench", zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer p.free()
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := p.process(ctx, signalTraces, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
