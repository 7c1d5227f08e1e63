package wasmprocessor

// Benchmarks of pipelines that end in Rust (issue 26): what a batch costs to
// cross into a Rust exporter segment next to pdata's own marshal of it, and
// the main job's processors ending in the Rust arrow_ipc exporter (one
// segment) next to the same processors ending in contrib's fileexporter.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// BenchmarkSegmentCrossing: per batch of 1, 1k and 10k spans, pdata's
// marshal alone against handing the batch to an idle Rust segment (marshal,
// one crossing, the engine's Ack) with the `noop` exporter, and with
// `arrow_ipc` (plus OTLP → OTAP once and the file write), in each mode.
func BenchmarkSegmentCrossing(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		batch := benchTraces(n)
		b.Run(fmt.Sprintf("spans=%d/pdata_marshal", n), func(b *testing.B) {
			var m ptrace.ProtoMarshaler
			for i := 0; i < b.N; i++ {
				if _, err := m.MarshalTraces(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, mode := range modes() {
			for _, exporter := range []string{"noop", "arrow_ipc"} {
				b.Run(fmt.Sprintf("spans=%d/%s/%s", n, mode, exporter), func(b *testing.B) {
					f, _ := findRustFactory("exporter", exporter)
					node := segmentNode{ID: exporter, URN: f.urn}
					if exporter == "arrow_ipc" {
						node.Config = map[string]any{"directory": b.TempDir()}
					}
					spec := segmentSpec{ID: exporter, Exporters: []segmentNode{node}}
					segment, err := startSegment(spec, mode, "", zap.NewNop())
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = segment.stop(context.Background()) }()
					ctx := context.Background()
					var m ptrace.ProtoMarshaler
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						otlp, err := m.MarshalTraces(batch)
						if err != nil {
							b.Fatal(err)
						}
						if err := segment.export(ctx, signalTraces, otlp); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkEndingInRust: wasm/redact then wasm/filter ending in a file, per
// batch, Consume returning once it is written: the Go way (the wasmchain
// processor, then contrib's fileexporter in its default JSON and in proto)
// against the segment the converter makes (both plugins and arrow_ipc in
// one Rust pipeline: one crossing, nothing back to pdata).
func BenchmarkEndingInRust(b *testing.B) {
	filterConfig := map[string]any{"spans": map[string]any{"attributes": []any{
		map[string]any{"key": "http.route", "pattern": "^/(health|readyz)$"}}}}
	ctx := context.Background()
	for _, n := range []int{100, 1000} {
		batch := benchTraces(n)
		for _, mode := range modes() {
			members := func() []SegmentMember {
				return []SegmentMember{
					{ID: "wasm/redact", Settings: map[string]any{"component": componentPath(b, "wasmtel-redact"), "config": redactConfig, "mode": mode}},
					{ID: "wasm/filter", Settings: map[string]any{"component": componentPath(b, "wasmtel-filter"), "config": filterConfig, "mode": mode}},
				}
			}
			for _, format := range []string{"json", "proto"} {
				b.Run(fmt.Sprintf("spans=%d/%s/chain+contrib_file_%s", n, mode, format), func(b *testing.B) {
					factory := fileexporter.NewFactory()
					cfg := factory.CreateDefaultConfig().(*fileexporter.Config)
					cfg.Path = filepath.Join(b.TempDir(), "traces."+format)
					cfg.FormatType = format
					file, err := factory.CreateTraces(ctx, exportertest.NewNopSettings(factory.Type()), cfg)
					if err != nil {
						b.Fatal(err)
					}
					chain, err := NewFactory().CreateTraces(ctx, settings(), &Config{Chain: []ChainMember{
						{ID: "wasm/redact", Settings: members()[0].Settings}, {ID: "wasm/filter", Settings: members()[1].Settings}}}, file)
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range []interface {
						Start(context.Context, component.Host) error
						Shutdown(context.Context) error
					}{file, chain} {
						if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
							b.Fatal(err)
						}
						defer func() { _ = c.Shutdown(ctx) }()
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if err := chain.ConsumeTraces(ctx, batch); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run(fmt.Sprintf("spans=%d/%s/segment_arrow_ipc", n, mode), func(b *testing.B) {
				cfg := &SegmentConfig{Processors: members(), Exporters: []SegmentMember{
					{ID: "arrow_ipc", Settings: map[string]any{"directory": b.TempDir()}}}}
				var seg exporter.Traces
				seg, err := NewSegmentExporterFactory().CreateTraces(ctx, exporterSettings(SegmentType), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := seg.Start(ctx, componenttest.NewNopHost()); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = seg.Shutdown(ctx) }()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := seg.ConsumeTraces(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
