// Package wasmprocessor runs OpenTelemetry Collector processors as sandboxed
// WebAssembly components (wasmtel), through the Rust runtime linked with cgo.
package wasmprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// Type is the processor's type in collector configs: `wasm` or `wasm/<name>`.
var Type = component.MustNewType("wasm")

// NewFactory returns the factory of the `wasm` processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		Type,
		func() component.Config { return &Config{} },
		processor.WithTraces(createTraces, component.StabilityLevelAlpha),
		processor.WithMetrics(createMetrics, component.StabilityLevelAlpha),
		processor.WithLogs(createLogs, component.StabilityLevelAlpha),
	)
}

// The runtime decodes fresh pdata from its output, so input is never mutated.
var capabilities = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false})

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	use, err := acquireProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p, err := processorhelper.NewTraces(ctx, set, cfg, next, use.processor.processTraces,
		processorhelper.WithStart(use.start), processorhelper.WithShutdown(use.shutdown), capabilities)
	if err != nil {
		_ = use.shutdown(ctx)
	}
	return p, err
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	use, err := acquireProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p, err := processorhelper.NewMetrics(ctx, set, cfg, next, use.processor.processMetrics,
		processorhelper.WithStart(use.start), processorhelper.WithShutdown(use.shutdown), capabilities)
	if err != nil {
		_ = use.shutdown(ctx)
	}
	return p, err
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	use, err := acquireProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p, err := processorhelper.NewLogs(ctx, set, cfg, next, use.processor.processLogs,
		processorhelper.WithStart(use.start), processorhelper.WithShutdown(use.shutdown), capabilities)
	if err != nil {
		_ = use.shutdown(ctx)
	}
	return p, err
}
