package wasmprocessor

// Rust exporters as collector exporters. Each runs as a segment of its own
// (one exporter), or, where the wasmchain converter folded a pipeline's
// trailing wasm processors and Rust exporters together, as the
// `wasmtel_segment` exporter that holds them all. Either way a batch
// crosses once, as the OTLP bytes pdata marshals, and Consume* returns
// when every exporter of the segment acknowledged it: a refusal keeps its
// permanent or retryable meaning (consumererror), a full engine queue is a
// retryable error, never a silent drop.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// rustFactory is one node factory compiled into the runtime (rustfactories_gen.go).
type rustFactory struct {
	kind, componentType, urn string
	emptyConfigValid         bool
	// routes: it picks among named outputs (a connector's job in a collector).
	routes bool
	// plumbing: a segment's own end (the embedded receiver and exporter).
	plumbing bool
}

// goTypes are component types of the collector's core and contrib modules
// (and their aliases) that some Rust node also has: a distribution may link
// both.
var goTypes = map[string]bool{
	"otlp": true, "otlp_grpc": true, "otlphttp": true, "otlp_http": true, "debug": true, "nop": true,
	"batch": true, "filter": true,
}

// CollectorType is the component type of the Rust node type engineType (the
// last part of its URN) in a collector configuration: the same, unless a
// collector module already uses it; then `rust_` comes first
// (`rust_otlp_grpc`, `rust_batch`). go/cmd/rustfactorygen names types with it.
func CollectorType(engineType string) string {
	if goTypes[engineType] {
		return "rust_" + engineType
	}
	return engineType
}

func findRustFactory(kind, componentType string) (rustFactory, bool) {
	for _, f := range rustFactories {
		if f.kind == kind && f.componentType == componentType {
			return f, true
		}
	}
	return rustFactory{}, false
}

// RustConfig is a Rust component's settings, exactly the keys its Rust
// node reads: they cross as JSON, and its Rust factory validates them (Go
// declares none of them, so adding a setting is one Rust field).
type RustConfig struct {
	Settings map[string]any
	factory  rustFactory
}

var _ confmap.Unmarshaler = (*RustConfig)(nil)

// Unmarshal keeps the configuration's keys as they are, for the Rust factory.
func (cfg *RustConfig) Unmarshal(conf *confmap.Conf) error {
	cfg.Settings = conf.ToStringMap()
	return nil
}

// Validate asks the Rust factory; its error names the key.
func (cfg *RustConfig) Validate() error {
	return validateNode(cfg.factory.kind, cfg.factory.urn, cfg.Settings)
}

// NewRustExporterFactory is the collector factory of the runtime's Rust
// exporter componentType (the generated packages under go/rustexporters
// call it).
func NewRustExporterFactory(componentType string) exporter.Factory {
	f, ok := findRustFactory("exporter", componentType)
	if !ok {
		// Only generated code calls this, with a type of the table generated beside it.
		panic(fmt.Sprintf("no Rust exporter %q in this runtime", componentType))
	}
	return newSegmentFactory(component.MustNewType(componentType), func() component.Config {
		return &RustConfig{Settings: map[string]any{}, factory: f}
	}, func(id component.ID, cfg component.Config) (segmentPlan, error) {
		rc := cfg.(*RustConfig)
		node := segmentNode{ID: id.String(), URN: f.urn, Config: rc.Settings}
		return segmentPlan{spec: segmentSpec{ID: id.String(), Exporters: []segmentNode{node}}}, nil
	})
}

// segmentPlan is what a segment component starts: the spec, where it runs
// ("" until a wasm member says: where the `wasm` processor runs by default),
// and the IDs of its wasm processors (their logs go to the component's logger).
type segmentPlan struct {
	spec          segmentSpec
	mode          string
	runtimeBinary string
	pluginIDs     []string
}

func newSegmentFactory(typ component.Type, createDefault component.CreateDefaultConfigFunc,
	plan func(component.ID, component.Config) (segmentPlan, error)) exporter.Factory {
	create := func(set exporter.Settings, cfg component.Config) (*segmentUse, error) {
		p, err := plan(set.ID, cfg)
		if err != nil {
			return nil, err
		}
		return acquireSegment(set, p), nil
	}
	return exporter.NewFactory(typ, createDefault,
		exporter.WithTraces(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
			use, err := create(set, cfg)
			if err != nil {
				return nil, err
			}
			return &tracesExporter{use}, nil
		}, component.StabilityLevelAlpha),
		exporter.WithMetrics(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
			use, err := create(set, cfg)
			if err != nil {
				return nil, err
			}
			return &metricsExporter{use}, nil
		}, component.StabilityLevelAlpha),
		exporter.WithLogs(func(_ context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
			use, err := create(set, cfg)
			if err != nil {
				return nil, err
			}
			return &logsExporter{use}, nil
		}, component.StabilityLevelAlpha),
	)
}

// sharedSegment is the one segment of an exporter ID, started by the first
// pipeline that starts and stopped by the last that shuts down: traces,
// metrics and logs of one ID share it, as one Go exporter would.
type sharedSegment struct {
	plan   segmentPlan
	logger *zap.Logger
	meter  metric.Meter

	users   sharedUsers
	mu      sync.Mutex // guards running
	running *runningSegment
}

var segments = struct {
	sync.Mutex
	byID map[component.ID]*sharedSegment
}{byID: map[component.ID]*sharedSegment{}}

// segmentUse is one pipeline's hold on its exporter ID's segment.
type segmentUse struct {
	segment *sharedSegment
	id      component.ID
	hold    sharedHold
}

func acquireSegment(set exporter.Settings, plan segmentPlan) *segmentUse {
	segments.Lock()
	defer segments.Unlock()
	s := segments.byID[set.ID]
	if s == nil {
		s = &sharedSegment{plan: plan, logger: set.Logger, meter: set.MeterProvider.Meter(meterName)}
		segments.byID[set.ID] = s
	}
	return &segmentUse{segment: s, id: set.ID}
}

func (u *segmentUse) Start(context.Context, component.Host) error {
	s := u.segment
	return u.hold.start(&s.users, func() error {
		running, err := startPlan(s.plan, s.logger, s.meter)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.running = running
		s.mu.Unlock()
		return nil
	})
}

// Shutdown drains the segment with its last pipeline, within ctx's deadline:
// batches in flight are delivered or answered with an error.
func (u *segmentUse) Shutdown(ctx context.Context) error {
	s := u.segment
	return u.hold.stop(&s.users, func() error {
		s.mu.Lock()
		running := s.running
		s.running = nil
		s.mu.Unlock()
		var err error
		if running != nil {
			err = running.stop(ctx)
		}
		segments.Lock()
		if segments.byID[u.id] == s {
			delete(segments.byID, u.id)
		}
		segments.Unlock()
		return err
	})
}

func (u *segmentUse) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (u *segmentUse) export(ctx context.Context, sig signal, otlp []byte) error {
	s := u.segment
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running == nil {
		return errSegmentStopped
	}
	return consumerError(running.handle.export(ctx, sig, otlp))
}

// consumerError is a segment's refusal as the collector's: permanent ones
// wrapped so that nobody retries them.
func consumerError(err error) error {
	var be *bridgeError
	if errors.As(err, &be) && be.permanent {
		return consumererror.NewPermanent(err)
	}
	return err
}

type tracesExporter struct{ *segmentUse }

func (e *tracesExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var m ptrace.ProtoMarshaler
	otlp, err := m.MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.export(ctx, signalTraces, otlp)
}

type metricsExporter struct{ *segmentUse }

func (e *metricsExporter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	var m pmetric.ProtoMarshaler
	otlp, err := m.MarshalMetrics(md)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.export(ctx, signalMetrics, otlp)
}

type logsExporter struct{ *segmentUse }

func (e *logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	var m plog.ProtoMarshaler
	otlp, err := m.MarshalLogs(ld)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.export(ctx, signalLogs, otlp)
}

// IsRustExporterType tells whether componentType is one of the runtime's
// Rust exporters (the converter folds pipelines ending in them).
func IsRustExporterType(componentType string) bool {
	_, ok := findRustFactory("exporter", componentType)
	return ok
}

// IsRustProcessorType tells whether componentType is one of the runtime's
// engine processors a segment can run (not `wasm`, not a router).
func IsRustProcessorType(componentType string) bool {
	f, ok := findRustFactory("processor", componentType)
	return ok && !f.routes && componentType != Type.String()
}

// registerSegmentMetrics exports the plugin metrics of a segment's wasm
// processors, each under its own ID, as a wasm processor exports its own.
func registerSegmentMetrics(meter metric.Meter, logger *zap.Logger, handle segmentHandle, ids []string) (metric.Registration, error) {
	instruments, err := pluginInstruments(meter)
	if err != nil {
		return nil, err
	}
	observables := make([]metric.Observable, len(instruments))
	for i, instrument := range instruments {
		observables[i] = instrument
	}
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, id := range ids {
			observePlugin(o, logger, id, segmentPlugin{segment: handle, id: id},
				instruments[0], instruments[1], instruments[2], instruments[3], instruments[4], instruments[5])
		}
		return nil
	}, observables...)
}

// runningSegment is a started segment with its wasm members' loggers and
// its plugin and node metrics registered.
type runningSegment struct {
	handle        segmentHandle
	pluginIDs     []string
	registrations []metric.Registration
}

// startPlan starts plan's segment. Its metrics go to meter, which the
// collector scopes to the component (and, for a processor, its pipeline).
func startPlan(plan segmentPlan, logger *zap.Logger, meter metric.Meter) (*runningSegment, error) {
	for _, id := range plan.pluginIDs {
		registerPluginLogger(id, logger)
	}
	mode := plan.mode
	if mode == "" {
		mode = (&Config{}).effectiveMode()
	}
	handle, err := startSegment(plan.spec, mode, plan.runtimeBinary, logger)
	if err != nil {
		for _, id := range plan.pluginIDs {
			unregisterPluginLogger(id)
		}
		return nil, err
	}
	r := &runningSegment{handle: handle, pluginIDs: plan.pluginIDs}
	if len(plan.pluginIDs) > 0 {
		registration, err := registerSegmentMetrics(meter, logger, handle, plan.pluginIDs)
		if err != nil {
			logger.Warn("the segment's plugin metrics are not exported", zap.Error(err))
		} else {
			r.registrations = append(r.registrations, registration)
		}
	}
	registration, err := registerNodeMetrics(meter, logger, handle)
	if err != nil {
		logger.Warn("the segment's node metrics are not exported", zap.Error(err))
	} else {
		r.registrations = append(r.registrations, registration)
	}
	return r, nil
}

// stop unregisters the metrics and drains the segment within ctx's deadline.
func (r *runningSegment) stop(ctx context.Context) error {
	for _, registration := range r.registrations {
		_ = registration.Unregister()
	}
	err := r.handle.stop(ctx)
	for _, id := range r.pluginIDs {
		unregisterPluginLogger(id)
	}
	return err
}

// sharedUsers counts the pipelines that started one shared component (a
// segment or a receiver of one ID): the first starts it, the last stops it.
type sharedUsers struct {
	mu      sync.Mutex
	started int
}

// sharedHold is one pipeline's hold on a shared component: its Start
// counts once, and its Shutdown releases once, whatever the collector calls.
type sharedHold struct {
	once    sync.Once
	started bool
}

func (h *sharedHold) start(users *sharedUsers, first func() error) error {
	users.mu.Lock()
	defer users.mu.Unlock()
	if users.started == 0 {
		if err := first(); err != nil {
			return err
		}
	}
	users.started++
	h.started = true
	return nil
}

func (h *sharedHold) stop(users *sharedUsers, last func() error) error {
	var err error
	h.once.Do(func() {
		users.mu.Lock()
		defer users.mu.Unlock()
		if h.started {
			users.started--
		}
		if users.started == 0 {
			err = last()
		}
	})
	return err
}
