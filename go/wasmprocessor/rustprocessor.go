package wasmprocessor

// Rust engine processors (batch, retry, circuit_breaker, …) as collector
// processors, and runs of them with wasm processors (the `wasmtel_segment`
// processor the wasmchain converter writes). In a pipeline's Rust tail
// (before Rust exporters only) the converter folds them into the
// `wasmtel_segment` exporter, so the batch crosses once and never comes back
// to pdata. Anywhere else a run of them runs as one replying segment: the
// batch crosses in as the OTLP bytes
// pdata marshals, the engine processor runs, and what it lets through comes
// back as OTLP for the next Go consumer (a batch processor's merged batch,
// on its own schedule). Consume* returns when the engine acknowledged the
// batch — that is, once the next consumer took what it became — so a
// refusal downstream keeps its permanent/retryable meaning.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
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
	return newReplyingFactory(component.MustNewType(componentType), func() component.Config {
		return &RustConfig{Settings: map[string]any{}, factory: f}
	}, func(id component.ID, cfg component.Config) (segmentPlan, error) {
		node := segmentNode{ID: id.String(), URN: f.urn, Config: cfg.(*RustConfig).Settings}
		return segmentPlan{spec: segmentSpec{ID: id.String(), Processors: []segmentNode{node}}}, nil
	})
}

// NewSegmentProcessorFactory returns the factory of the `wasmtel_segment`
// processor: a run of wasm and Rust processors before Go components, as
// one replying segment (the wasmchain converter writes it).
func NewSegmentProcessorFactory() processor.Factory {
	return newReplyingFactory(SegmentType, func() component.Config { return &SegmentProcessorConfig{} },
		func(id component.ID, cfg component.Config) (segmentPlan, error) {
			return planProcessors(id.String(), cfg.(*SegmentProcessorConfig).Processors)
		})
}

// newReplyingFactory is the factory of processors that run plan's segment
// and hand what it lets through to the next Go consumer.
func newReplyingFactory(typ component.Type, createDefault component.CreateDefaultConfigFunc,
	plan func(component.ID, component.Config) (segmentPlan, error)) processor.Factory {
	create := func(set processor.Settings, cfg component.Config, deliver func(context.Context, segmentOutput) error) (*rustProcessor, error) {
		p, err := plan(set.ID, cfg)
		if err != nil {
			return nil, err
		}
		p.spec.Reply = true
		return &rustProcessor{
			plan:    p,
			logger:  set.Logger,
			meter:   set.MeterProvider.Meter(meterName),
			deliver: deliver,
		}, nil
	}
	return processor.NewFactory(typ, createDefault,
		processor.WithTraces(func(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
			p, err := create(set, cfg, deliverTraces(next))
			if err != nil {
				return nil, err
			}
			return &rustTracesProcessor{p}, nil
		}, component.StabilityLevelAlpha),
		processor.WithMetrics(func(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
			p, err := create(set, cfg, deliverMetrics(next))
			if err != nil {
				return nil, err
			}
			return &rustMetricsProcessor{p}, nil
		}, component.StabilityLevelAlpha),
		processor.WithLogs(func(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
			p, err := create(set, cfg, deliverLogs(next))
			if err != nil {
				return nil, err
			}
			return &rustLogsProcessor{p}, nil
		}, component.StabilityLevelAlpha),
	)
}

// deliverAs hands a segment's output to consume as the pdata unmarshal makes.
func deliverAs[T any](unmarshal func([]byte) (T, error), consume func(context.Context, T) error) func(context.Context, segmentOutput) error {
	return func(ctx context.Context, out segmentOutput) error {
		data, err := unmarshal(out.otlp)
		if err != nil {
			return consumererror.NewPermanent(err)
		}
		return consume(ctx, data)
	}
}

func deliverTraces(next consumer.Traces) func(context.Context, segmentOutput) error {
	return deliverAs((&ptrace.ProtoUnmarshaler{}).UnmarshalTraces, next.ConsumeTraces)
}

func deliverMetrics(next consumer.Metrics) func(context.Context, segmentOutput) error {
	return deliverAs((&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics, next.ConsumeMetrics)
}

func deliverLogs(next consumer.Logs) func(context.Context, segmentOutput) error {
	return deliverAs((&plog.ProtoUnmarshaler{}).UnmarshalLogs, next.ConsumeLogs)
}

// outputPoll bounds one wait for a replying segment's next output, so the
// delivery loop notices shutdown.
const outputPoll = 200 * time.Millisecond

// rustProcessor runs a replying segment and the loop that hands its output
// on: one pipeline's instance of a Rust processor or of a segment processor,
// or the segment of a Rust receiver.
type rustProcessor struct {
	plan    segmentPlan
	logger  *zap.Logger
	meter   metric.Meter
	deliver func(context.Context, segmentOutput) error

	mu      sync.RWMutex
	running *runningSegment
	done    chan struct{} // closed when the delivery loop has ended
	stopCh  chan struct{}
}

func (p *rustProcessor) Start(context.Context, component.Host) error {
	running, err := startPlan(p.plan, p.logger, p.meter)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.running, p.done, p.stopCh = running, make(chan struct{}), make(chan struct{})
	p.mu.Unlock()
	go p.deliverOutputs(running.handle, p.stopCh, p.done)
	return nil
}

// deliverOutputs hands every output to the next consumer and answers it
// with the consumer's result, until stop is closed and the segment is gone.
func (p *rustProcessor) deliverOutputs(handle segmentHandle, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		out, err := handle.nextOutput(outputPoll)
		if err != nil {
			// Once stopped there is nothing more to read; otherwise say so and retry.
			select {
			case <-stop:
				return
			case <-time.After(outputPoll):
			}
			p.logger.Warn("a Rust processor's output could not be read", zap.String("processor", p.plan.spec.ID), zap.Error(err))
			continue
		}
		if out == nil {
			select {
			case <-stop:
				return
			default:
				continue
			}
		}
		out.answer(p.deliver(context.Background(), *out))
	}
}

// Shutdown drains the segment within ctx's deadline; outputs keep being
// delivered while it does (a batch processor's last flush reaches the next
// consumer), so a batch in flight is delivered or answered with an error.
func (p *rustProcessor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	running, stop, done := p.running, p.stopCh, p.done
	p.running = nil
	p.mu.Unlock()
	if running == nil {
		return nil
	}
	err := running.stop(ctx)
	close(stop)
	<-done
	return err
}

func (p *rustProcessor) Capabilities() consumer.Capabilities {
	// The batch goes on as new pdata; the input is only read.
	return consumer.Capabilities{MutatesData: false}
}

func (p *rustProcessor) consume(ctx context.Context, sig signal, otlp []byte, err error) error {
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	p.mu.RLock()
	running := p.running
	p.mu.RUnlock()
	if running == nil {
		return errSegmentStopped
	}
	return consumerError(running.handle.export(ctx, sig, otlp))
}

type rustTracesProcessor struct{ *rustProcessor }

func (p *rustTracesProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var m ptrace.ProtoMarshaler
	otlp, err := m.MarshalTraces(td)
	return p.consume(ctx, signalTraces, otlp, err)
}

type rustMetricsProcessor struct{ *rustProcessor }

func (p *rustMetricsProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	var m pmetric.ProtoMarshaler
	otlp, err := m.MarshalMetrics(md)
	return p.consume(ctx, signalMetrics, otlp, err)
}

type rustLogsProcessor struct{ *rustProcessor }

func (p *rustLogsProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	var m plog.ProtoMarshaler
	otlp, err := m.MarshalLogs(ld)
	return p.consume(ctx, signalLogs, otlp, err)
}
