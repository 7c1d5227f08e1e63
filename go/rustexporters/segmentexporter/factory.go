// Package segmentexporter is the `wasmtel_segment` exporter: the wasm
// processors and Rust exporters at the end of a pipeline, run as one Rust
// engine pipeline. The wasmchain converter writes it; list it in a
// distribution beside the Rust exporters it may hold.
package segmentexporter

import (
	"go.opentelemetry.io/collector/exporter"

	"github.com/wasmtel/wasmtel/go/wasmprocessor"
)

// NewFactory returns the factory of the `wasmtel_segment` exporter.
func NewFactory() exporter.Factory { return wasmprocessor.NewSegmentExporterFactory() }
