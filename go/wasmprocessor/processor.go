package wasmprocessor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// wasmProcessor is one `wasm` processor ID: its plugin is loaded once and
// shared by every pipeline (traces, metrics, logs) the ID appears in.
type wasmProcessor struct {
	cfg      *Config
	name     string
	settings processor.Settings
	// members are the plugins a batch runs through, in order, in one
	// crossing: one, or the processors of a chain the converter made.
	members []member
	// duration records each batch's time in the plugin (the runtime keeps
	// only cumulative buckets, which an observable instrument cannot export).
	duration metric.Float64Histogram
	// refused counts every batch refused to the caller; refusals logs them.
	refused  metric.Int64Counter
	refusals *refusalLog
	// Guarded by processors' lock.
	users   int
	metrics metric.Registration
}

// member is one plugin of a processor, under its processor ID (its logs and
// metrics carry that name).
type member struct {
	name   string
	plugin pluginHandle
}

// processors holds the loaded processor of each ID.
var processors = struct {
	sync.Mutex
	byID map[component.ID]*wasmProcessor
}{byID: map[component.ID]*wasmProcessor{}}

// acquireProcessor returns the processor of set.ID, loading its plugin the
// first time; each pipeline that uses it holds one reference.
func acquireProcessor(set processor.Settings, cfg *Config) (*pipelineUse, error) {
	processors.Lock()
	defer processors.Unlock()
	w := processors.byID[set.ID]
	if w == nil {
		name := set.ID.String()
		members, err := openMembers(cfg, name, set.Logger)
		if err != nil {
			return nil, err
		}
		w, err = newWasmProcessor(set, cfg, name, members)
		if err != nil {
			freeMembers(members)
			return nil, err
		}
		processors.byID[set.ID] = w
	}
	w.users++
	return &pipelineUse{processor: w}, nil
}

// openMembers loads the processor's plugin, or each plugin of its chain, in
// order; on failure none stays loaded.
func openMembers(cfg *Config, name string, logger *zap.Logger) ([]member, error) {
	configs, err := cfg.members(name)
	if err != nil {
		return nil, err
	}
	var members []member
	for _, m := range configs {
		registerPluginLogger(m.name, logger)
		p, err := openPlugin(m.cfg, m.name, logger)
		if err != nil {
			unregisterPluginLogger(m.name)
			freeMembers(members)
			return nil, err
		}
		members = append(members, member{name: m.name, plugin: p})
	}
	return members, nil
}

func freeMembers(members []member) {
	for _, m := range members {
		m.plugin.free()
		unregisterPluginLogger(m.name)
	}
}

// newWasmProcessor is the processor of loaded plugins, with its instruments.
func newWasmProcessor(set processor.Settings, cfg *Config, name string, members []member) (*wasmProcessor, error) {
	meter := set.MeterProvider.Meter(meterName)
	duration, err1 := meter.Float64Histogram("wasmtel.plugin.duration",
		metric.WithUnit("s"), metric.WithDescription("Time a batch spent in the plugin, by signal and outcome"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	refused, err2 := meter.Int64Counter("wasmtel.plugin.refused", metric.WithUnit("{batch}"),
		metric.WithDescription("Batches refused to the caller, by signal, permanent or retryable, and failure kind where known"))
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &wasmProcessor{cfg: cfg, name: name, settings: set, members: members, duration: duration, refused: refused,
		refusals: newRefusalLog(set.Logger, name)}, nil
}

// openPlugin loads the component where the mode says: in this process
// (embedded, cgo builds) or in the bridge child (subprocess).
func openPlugin(cfg *Config, name string, logger *zap.Logger) (pluginHandle, error) {
	pluginJSON, registryJSON, err := cfg.loadArguments()
	if err != nil {
		return nil, err
	}
	if cfg.effectiveMode() == modeEmbedded {
		return loadEmbedded(name, cfg.component(), pluginJSON, registryJSON)
	}
	program, err := runtimeProgramFor(cfg.RuntimeBinary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c, err := acquireChild(program, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p, err := c.load(name, cfg.component(), pluginJSON, registryJSON)
	if err != nil {
		c.release()
		return nil, err
	}
	return p, nil
}

// pipelineUse is one pipeline's hold on a processor: started and shut down
// once, whatever the collector calls.
type pipelineUse struct {
	processor *wasmProcessor
	released  sync.Once
}

func (u *pipelineUse) start(context.Context, component.Host) error {
	processors.Lock()
	defer processors.Unlock()
	w := u.processor
	if w.metrics != nil {
		return nil
	}
	registration, err := registerMetrics(w.settings.MeterProvider.Meter(meterName), w)
	if err != nil {
		return err
	}
	w.metrics = registration
	return nil
}

// shutdown releases this pipeline's reference; the last one frees the plugin
// (and every runtime handle or the bridge child with it). Safe to call twice
// and without start (the collector does both on failed start-ups).
func (u *pipelineUse) shutdown(context.Context) error {
	u.released.Do(func() {
		processors.Lock()
		defer processors.Unlock()
		w := u.processor
		w.users--
		if w.users > 0 {
			return
		}
		delete(processors.byID, w.settings.ID)
		if w.metrics != nil {
			_ = w.metrics.Unregister()
			w.metrics = nil
		}
		freeMembers(w.members)
		w.refusals.close()
	})
	return nil
}

// run sends one marshaled batch through the plugin within the caller's
// deadline; a `replaced` output is handed to consume (see pluginHandle).
func (w *wasmProcessor) run(ctx context.Context, sig signal, input []byte, consume func([]byte)) (outcome, error) {
	started := time.Now()
	// The plugin's time ends where unmarshaling its output begins.
	var returned time.Time
	then := make([]pluginHandle, 0, len(w.members)-1)
	for _, m := range w.members[1:] {
		then = append(then, m.plugin)
	}
	result, err := w.members[0].plugin.processChain(ctx, sig, input, then, func(output []byte) {
		returned = time.Now()
		consume(output)
	})
	if returned.IsZero() {
		returned = time.Now()
	}
	outcomeName := result.String()
	if err != nil {
		outcomeName = "error"
	}
	w.duration.Record(ctx, returned.Sub(started).Seconds(), metric.WithAttributes(attribute.String("plugin", w.name),
		attribute.String("signal", sig.String()), attribute.String("outcome", outcomeName)))
	if err != nil {
		var bridgeErr *bridgeError
		permanent := errors.As(err, &bridgeErr) && bridgeErr.permanent
		kind := ""
		if bridgeErr != nil {
			kind = bridgeErr.kind
		}
		// The client may see many processors' errors: name this one, as the
		// marshal and output errors do.
		return result, w.refuse(ctx, sig, permanent, kind, fmt.Errorf("%s: %w", w.name, err))
	}
	return result, nil
}

// refuse is the way out of every error returned to the caller: counted, and
// logged for the operator (see refusalLog), permanent or retryable.
func (w *wasmProcessor) refuse(ctx context.Context, sig signal, permanent bool, kind string, err error) error {
	attributes := []attribute.KeyValue{attribute.String("plugin", w.name), attribute.String("signal", sig.String()),
		attribute.Bool("permanent", permanent)}
	if kind != "" {
		attributes = append(attributes, attribute.String("kind", kind))
	}
	w.refused.Add(ctx, 1, metric.WithAttributes(attributes...))
	w.refusals.record(sig, permanent, kind, err)
	if permanent {
		return consumererror.NewPermanent(err)
	}
	return err
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
		return batch, w.refuse(ctx, sig, true, "", fmt.Errorf("%s: marshal: %w", w.name, err))
	}
	var out T
	var consumed bool
	var outputErr error
	result, err := w.run(ctx, sig, input, func(output []byte) {
		out, outputErr = unmarshal(output)
		consumed = true
	})
	switch {
	case err != nil:
		return batch, err
	case result == outcomeDropped:
		return batch, processorhelper.ErrSkipProcessingData
	case result == outcomeUnchanged:
		return batch, nil
	case !consumed:
		return batch, w.refuse(ctx, sig, true, "invalid_output", fmt.Errorf("%s: plugin output: replaced, but no output came back", w.name))
	case outputErr != nil:
		return batch, w.refuse(ctx, sig, true, "invalid_output", fmt.Errorf("%s: plugin output: %w", w.name, outputErr))
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

func snapshot(p metricsSource) (pluginMetrics, error) {
	var m pluginMetrics
	data, err := p.metricsJSON()
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(data, &m)
	return m, err
}

const meterName = "github.com/wasmtel/wasmtel/go/wasmprocessor"

// durationBuckets (seconds) span a one-span batch (~10 µs) to a timed-out one.
var durationBuckets = []float64{0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}

// registerMetrics exposes the plugin's metrics as collector internal telemetry.
func registerMetrics(meter metric.Meter, w *wasmProcessor) (metric.Registration, error) {
	instruments, err := pluginInstruments(meter)
	if err != nil {
		return nil, err
	}
	calls, outcomes, failures, policy, bytes, guest := instruments[0], instruments[1], instruments[2], instruments[3], instruments[4], instruments[5]
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, member := range w.members {
			observePlugin(o, w.settings.Logger, member.name, member.plugin, calls, outcomes, failures, policy, bytes, guest)
		}
		return nil
	}, calls, outcomes, failures, policy, bytes, guest)
}

// metricsSource is what a plugin's metrics are read from: the plugin, or
// the segment it runs in.
type metricsSource interface {
	metricsJSON() ([]byte, error)
}

// pluginInstruments are the plugin metrics' instruments, the same for a
// wasm processor and for the wasm processors of a segment.
func pluginInstruments(meter metric.Meter) ([]metric.Int64Observable, error) {
	calls, err1 := meter.Int64ObservableCounter("wasmtel.plugin.calls", metric.WithDescription("Batches offered to the plugin"))
	outcomes, err2 := meter.Int64ObservableCounter("wasmtel.plugin.outcomes", metric.WithDescription("Batches by outcome"))
	failures, err3 := meter.Int64ObservableCounter("wasmtel.plugin.errors", metric.WithDescription("Failed batches by kind"))
	policy, err4 := meter.Int64ObservableCounter("wasmtel.plugin.on_error", metric.WithDescription("Failed batches by the action on_error took"))
	bytes, err5 := meter.Int64ObservableCounter("wasmtel.plugin.bytes", metric.WithUnit("By"), metric.WithDescription("OTLP bytes in and out of the sandbox"))
	guest, err6 := meter.Int64ObservableCounter("wasmtel.plugin.guest_counter", metric.WithDescription("Counters reported by the guest"))
	return []metric.Int64Observable{calls, outcomes, failures, policy, bytes, guest}, errors.Join(err1, err2, err3, err4, err5, err6)
}

// observePlugin observes one plugin's metrics under its name.
func observePlugin(o metric.Observer, logger *zap.Logger, name string, source metricsSource, calls, outcomes, failures, policy, bytes, guest metric.Int64Observable) {
	plugin := attribute.String("plugin", name)
	m, err := snapshot(source)
	if err != nil {
		if !errors.Is(err, errPluginClosed) && !errors.Is(err, errSegmentStopped) {
			logger.Warn("reading wasm plugin metrics", zap.String("plugin", name), zap.Error(err))
		}
		return
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
}
