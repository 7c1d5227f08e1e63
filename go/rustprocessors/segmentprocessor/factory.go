// Package segmentprocessor is the `wasmtel_segment` processor: a run of
// wasm and Rust processors before Go components, run as one Rust engine
// pipeline that hands its output back as OTLP (one crossing for the run).
// The wasmchain converter writes it; list it in a distribution beside the
// Rust processors it may hold.
package segmentprocessor

import (
	"go.opentelemetry.io/collector/processor"

	"github.com/wasmtel/wasmtel/go/wasmprocessor"
)

// NewFactory returns the factory of the `wasmtel_segment` processor.
func NewFactory() processor.Factory { return wasmprocessor.NewSegmentProcessorFactory() }
