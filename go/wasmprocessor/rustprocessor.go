package wasmprocessor

// Rust engine processors (batch, retry, circuit_breaker, …) as collector
// processors. They run inside a segment: where a pipeline's processors end
// in them (and wasm processors) and its exporters are all Rust, the
// wasmchain converter folds them into the `wasmtel_segment` exporter, so the
// batch crosses once and the engine's acks come back to Consume*. A Rust
// processor anywhere else would have to hand every batch back to Go
// components, which the runtime has no path for: the collector refuses to
// start and says where it can go.

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
)

// NewRustProcessorFactory is the collector factory of the runtime's engine
// processor componentType (the generated packages under go/rustprocessors
// call it).
func NewRustProcessorFactory(componentType string) processor.Factory {
	f, ok := findRustFactory("processor", componentType)
	if !ok || !IsRustProcessorType(componentType) {
		// Only generated code calls this, with a type of the table generated beside it.
		panic(fmt.Sprintf("no Rust processor %q in this runtime", componentType))
	}
	createDefault := func() component.Config { return &RustConfig{Settings: map[string]any{}, factory: f} }
	return processor.NewFactory(component.MustNewType(componentType), createDefault,
		processor.WithTraces(func(_ context.Context, set processor.Settings, _ component.Config, _ consumer.Traces) (processor.Traces, error) {
			return nil, notInASegment(set.ID)
		}, component.StabilityLevelAlpha),
		processor.WithMetrics(func(_ context.Context, set processor.Settings, _ component.Config, _ consumer.Metrics) (processor.Metrics, error) {
			return nil, notInASegment(set.ID)
		}, component.StabilityLevelAlpha),
		processor.WithLogs(func(_ context.Context, set processor.Settings, _ component.Config, _ consumer.Logs) (processor.Logs, error) {
			return nil, notInASegment(set.ID)
		}, component.StabilityLevelAlpha),
	)
}

func notInASegment(id component.ID) error {
	return fmt.Errorf("%s is a Rust engine processor: it runs only after a pipeline's last Go processor, "+
		"in a pipeline whose exporters are all Rust exporters and that no other pipeline shares "+
		"(there the wasmchain converter runs it in their segment); it cannot hand batches back to Go components", id)
}
