// Package benchdata is the telemetry the benchmarks send and the redaction
// they ask for, one definition for the processor benchmarks and the whole
// collector's.
package benchdata

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The redaction the benchmarked redacting processors do: hash user.email
// and keys matching SecretKeyPattern whole, and emails (EmailPattern)
// inside other values.
const (
	SecretKeyPattern = "(?i)authorization|password|token"
	EmailPattern     = `[\w.+-]+@[\w-]+\.[\w.]+`
)

// HealthCheck is the span name the benchmarked filters drop.
const HealthCheck = "GET /health"

// Traces builds n spans with HTTP attributes; every tenth carries an email
// and, with healthChecks, every tenth (another one) is a health check.
func Traces(n int, healthChecks bool) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(n)
	for i := range n {
		span := spans.AppendEmpty()
		span.SetName(fmt.Sprintf("GET /api/orders/%d", i%50))
		if healthChecks && i%10 == 5 {
			span.SetName(HealthCheck)
		}
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
