package wasmprocessor

// Rust engine receivers (otap, the engine's otlp as rust_otlp) as collector
// receivers: a replying segment whose receiver node feeds it, and whatever
// it receives comes back as OTLP for the pipelines' next consumers. One
// segment per receiver ID, shared by its traces, metrics and logs
// pipelines as one Go receiver would be (one listening port).

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
)

// NewRustReceiverFactory is the collector factory of the runtime's engine
// receiver componentType (the generated packages under go/rustreceivers
// call it).
func NewRustReceiverFactory(componentType string) receiver.Factory {
	f, ok := findRustFactory("receiver", componentType)
	if !ok || f.plumbing {
		// Only generated code calls this, with a type of the table generated beside it.
		panic(fmt.Sprintf("no Rust receiver %q in this runtime", componentType))
	}
	createDefault := func() component.Config { return &RustConfig{Settings: map[string]any{}, factory: f} }
	acquire := func(set receiver.Settings, cfg component.Config, sig signal, deliver func(context.Context, segmentOutput) error) *receiverUse {
		receivers.Lock()
		defer receivers.Unlock()
		r := receivers.byID[set.ID]
		if r == nil {
			r = &sharedReceiver{consumers: map[signal]func(context.Context, segmentOutput) error{}}
			node := segmentNode{ID: set.ID.String(), URN: f.urn, Config: cfg.(*RustConfig).Settings}
			r.processor = &rustProcessor{
				plan:    segmentPlan{spec: segmentSpec{ID: set.ID.String(), Receivers: []segmentNode{node}, Reply: true}},
				logger:  set.Logger,
				meter:   set.MeterProvider.Meter(meterName),
				deliver: r.deliver,
			}
			receivers.byID[set.ID] = r
		}
		r.mu.Lock()
		r.consumers[sig] = deliver
		r.mu.Unlock()
		return &receiverUse{receiver: r, id: set.ID}
	}
	return receiver.NewFactory(component.MustNewType(componentType), createDefault,
		receiver.WithTraces(func(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
			return acquire(set, cfg, signalTraces, deliverTraces(next)), nil
		}, component.StabilityLevelAlpha),
		receiver.WithMetrics(func(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
			return acquire(set, cfg, signalMetrics, deliverMetrics(next)), nil
		}, component.StabilityLevelAlpha),
		receiver.WithLogs(func(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
			return acquire(set, cfg, signalLogs, deliverLogs(next)), nil
		}, component.StabilityLevelAlpha),
	)
}

var receivers = struct {
	sync.Mutex
	byID map[component.ID]*sharedReceiver
}{byID: map[component.ID]*sharedReceiver{}}

// sharedReceiver is the one segment of a receiver ID, started by the first
// of its pipelines to start and stopped by the last to shut down.
type sharedReceiver struct {
	processor *rustProcessor
	users     sharedUsers

	mu        sync.Mutex // guards consumers
	consumers map[signal]func(context.Context, segmentOutput) error
}

// deliver hands an output to its signal's pipeline; a signal no pipeline
// takes is refused for good, as the collector's OTLP receiver does.
func (r *sharedReceiver) deliver(ctx context.Context, out segmentOutput) error {
	r.mu.Lock()
	next := r.consumers[out.signal]
	r.mu.Unlock()
	if next == nil {
		return consumererror.NewPermanent(fmt.Errorf("%s: no %s pipeline takes this receiver's data", r.processor.plan.spec.ID, out.signal))
	}
	return next(ctx, out)
}

// receiverUse is one pipeline's hold on its receiver ID's segment.
type receiverUse struct {
	receiver *sharedReceiver
	id       component.ID
	hold     sharedHold
}

func (u *receiverUse) Start(ctx context.Context, host component.Host) error {
	return u.hold.start(&u.receiver.users, func() error { return u.receiver.processor.Start(ctx, host) })
}

// Shutdown stops the segment with its last pipeline, within ctx's
// deadline: what the receiver took in is delivered or answered with an
// error, so its senders hear the outcome.
func (u *receiverUse) Shutdown(ctx context.Context) error {
	r := u.receiver
	return u.hold.stop(&r.users, func() error {
		err := r.processor.Shutdown(ctx)
		receivers.Lock()
		if receivers.byID[u.id] == r {
			delete(receivers.byID, u.id)
		}
		receivers.Unlock()
		return err
	})
}
