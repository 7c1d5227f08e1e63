package wasmprocessor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

type wasmProcessor struct {
	cfg      *Config
	name     string
	settings processor.Settings
	plugin   *plugin
	metrics  metric.Registration
}

func newWasmProcessor(set processor.Settings, cfg *Config) (*wasmProcessor, error) {
	pluginJSON, registryJSON, err := cfg.loadArguments()
	if err != nil {
		return nil, err
	}
	name := set.ID.String()
	p, err := loadPlugin(name, cfg.Component, pluginJSON, registryJSON)
	if err != nil {
		return nil, err
	}
	return &wasmProcessor{cfg: cfg, name: name, settings: set, plugin: p}, nil
}

func (w *wasmProcessor) start(context.Context, component.Host) error {
	registration, err := registerMetrics(w.settings.MeterProvider.Meter("github.com/wasmtel/wasmtel/go/wasmprocessor"), w)
	if err != nil {
		return err
	}
	w.metrics = registration
	return nil
}

// shutdown releases every Rust handle the processor holds; safe to call twice
// and without start (the collector does both on failed start-ups).
func (w *wasmProcessor) shutdown(context.Context) error {
	if w.metrics != nil {
		_ = w.metrics.Unregister()
		w.metrics = nil
	}
	w.plugin.free()
	return nil
}

// run sends one marshaled batch through the plugin, honouring the caller's deadline.
func (w *wasmProcessor) run(ctx context.Context, sig signal, input []byte) (outcome, []byte, error) {
	var budget time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		budget = time.Until(deadline)
		if budget <= 0 {
			return outcomeUnchanged, nil, ctx.Err()
		}
	}
	result, output, err := w.plugin.process(sig, input, budget)
	if err != nil {
		// The client sees the error; the operator sees why (the collector's
		// logger samples repeats).
		var bridgeErr *bridgeError
		permanent := errors.As(err, &bridgeErr) && bridgeErr.permanent
		w.settings.Logger.Warn("wasm plugin refused a batch", zap.Bool("permanent", permanent), zap.Error(err))
		if permanent {
			return result, nil, consumererror.NewPermanent(err)
		}
		return result, nil, err
	}
	return result, output, nil
}

var (
	tracesMarshaler    ptrace.ProtoMarshaler
	tracesUnmarshaler  ptrace.ProtoUnmarshaler
	metricsMarshaler   pmetric.ProtoMarshaler
	metricsUnmarshaler pmetric.ProtoUnmarshaler
	logsMarshaler      plog.ProtoMarshaler
	logsUnmarshaler    plog.ProtoUnmarshaler
)

func (w *wasmProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	return processBatch(ctx, w, signalTraces, td, tracesMarshaler.MarshalTraces, tracesUnmarshaler.UnmarshalTraces)
}

func (w *wasmProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	return processBatch(ctx, w, signalMetrics, md, metricsMarshaler.MarshalMetrics, metricsUnmarshaler.UnmarshalMetrics)
}

func (w *wasmProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	return processBatch(ctx, w, signalLogs, ld, logsMarshaler.MarshalLogs, logsUnmarshaler.UnmarshalLogs)
}

// processBatch is the one data path of all signals: marshal to OTLP, run the
// plugin, and unmarshal only a `replaced` output.
func processBatch[T any](
	ctx context.Context,
	w *wasmProcessor,
	sig signal,
	batch T,
	marshal func(T) ([]byte, error),
	unmarshal func([]byte) (T, error),
) (T, error) {
	input, err := marshal(batch)
	if err != nil {
		return batch, consumererror.NewPermanent(fmt.Errorf("%s: marshal: %w", w.name, err))
	}
	result, output, err := w.run(ctx, sig, input)
	switch {
	case err != nil:
		return batch, err
	case result == outcomeDropped:
		return batch, processorhelper.ErrSkipProcessingData
	case result == outcomeUnchanged:
		return batch, nil
	}
	out, err := unmarshal(output)
	if err != nil {
		return batch, consumererror.NewPermanent(fmt.Errorf("%s: plugin output: %w", w.name, err))
	}
	return out, nil
}

// pluginMetrics mirrors the runtime's MetricsSnapshot fields exported here.
type pluginMetrics struct {
	Calls         int64            `json:"calls"`
	Unchanged     int64            `json:"unchanged"`
	Replaced      int64            `json:"replaced"`
	Dropped       int64            `json:"dropped"`
	Skipped       int64            `json:"skipped"`
	Errors        map[string]int64 `json:"errors"`
	PolicyPassed  int64            `json:"policy_passed"`
	PolicyDropped int64            `json:"policy_dropped"`
	PolicyFailed  int64            `json:"policy_failed"`
	BytesIn       int64            `json:"bytes_in"`
	BytesOut      int64            `json:"bytes_out"`
	Guest         map[string]int64 `json:"guest_counters"`
}

func (w *wasmProcessor) snapshot() (pluginMetrics, error) {
	var m pluginMetrics
	data, err := w.plugin.metricsJSON()
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(data, &m)
	return m, err
}

// registerMetrics exposes the plugin's metrics as collector internal telemetry.
func registerMetrics(meter metric.Meter, w *wasmProcessor) (metric.Registration, error) {
	calls, err1 := meter.Int64ObservableCounter("wasmtel.plugin.calls", metric.WithDescription("Batches offered to the plugin"))
	outcomes, err2 := meter.Int64ObservableCounter("wasmtel.plugin.outcomes", metric.WithDescription("Batches by outcome"))
	failures, err3 := meter.Int64ObservableCounter("wasmtel.plugin.errors", metric.WithDescription("Failed batches by kind"))
	policy, err4 := meter.Int64ObservableCounter("wasmtel.plugin.on_error", metric.WithDescription("Failed batches by the action on_error took"))
	bytes, err5 := meter.Int64ObservableCounter("wasmtel.plugin.bytes", metric.WithUnit("By"), metric.WithDescription("OTLP bytes in and out of the sandbox"))
	guest, err6 := meter.Int64ObservableCounter("wasmtel.plugin.guest_counter", metric.WithDescription("Counters reported by the guest"))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return nil, err
	}
	plugin := attribute.String("plugin", w.name)
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m, err := w.snapshot()
		if err != nil {
			if !errors.Is(err, errPluginClosed) {
				w.settings.Logger.Warn("reading wasm plugin metrics", zap.Error(err))
			}
			return nil
		}
		o.ObserveInt64(calls, m.Calls, metric.WithAttributes(plugin))
		for name, value := range map[string]int64{"unchanged": m.Unchanged, "replaced": m.Replaced, "dropped": m.Dropped, "skipped": m.Skipped} {
			o.ObserveInt64(outcomes, value, metric.WithAttributes(plugin, attribute.String("outcome", name)))
		}
		for kind, value := range m.Errors {
			o.ObserveInt64(failures, value, metric.WithAttributes(plugin, attribute.String("kind", kind)))
		}
		for action, value := range map[string]int64{"pass": m.PolicyPassed, "drop": m.PolicyDropped, "fail": m.PolicyFailed} {
			o.ObserveInt64(policy, value, metric.WithAttributes(plugin, attribute.String("action", action)))
		}
		o.ObserveInt64(bytes, m.BytesIn, metric.WithAttributes(plugin, attribute.String("direction", "in")))
		o.ObserveInt64(bytes, m.BytesOut, metric.WithAttributes(plugin, attribute.String("direction", "out")))
		for name, value := range m.Guest {
			o.ObserveInt64(guest, value, metric.WithAttributes(plugin, attribute.String("name", name)))
		}
		return nil
	}, calls, outcomes, failures, policy, bytes, guest)
}
