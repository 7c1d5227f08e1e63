package wasmprocessor

// Segments: the Rust processors and exporters of a pipeline run as one
// otap-dataflow pipeline (runtime/dataflow/src/segment.rs), in this process
// (cgo) or in the bridge child. A batch crosses once, as the OTLP bytes
// pdata marshals; the call returns when every exporter acknowledged it.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
)

// segmentSpec is runtime/dataflow's SegmentSpec.
type segmentSpec struct {
	ID string `json:"id"`
	// Receivers feed the processors beside the ingress (a Rust receiver).
	Receivers  []segmentNode `json:"receivers,omitempty"`
	Processors []segmentNode `json:"processors,omitempty"`
	Exporters  []segmentNode `json:"exporters,omitempty"`
	// Reply: the processors' output comes back (nextOutput) for Go consumers.
	Reply bool `json:"reply,omitempty"`
}

// segmentNode is one collector component of a segment, as its node type reads it.
type segmentNode struct {
	ID     string         `json:"id"`
	URN    string         `json:"type"`
	Config map[string]any `json:"config,omitempty"`
}

// segmentHandle is a running segment, in this process or in the bridge
// child; the exporter cannot tell which.
type segmentHandle interface {
	// export hands over one OTLP request and waits, within ctx's deadline,
	// for every exporter's acknowledgement or the first refusal.
	export(ctx context.Context, sig signal, input []byte) error
	// stop drains the segment (exporters flushed) within ctx's deadline.
	stop(ctx context.Context) error
	// metricsJSON is its members' metrics: the runtime's SegmentMetrics.
	metricsJSON() ([]byte, error)
	// nextOutput is the next batch a replying segment hands back, or nil
	// when none came within timeout. Answer it: its export returns then.
	nextOutput(timeout time.Duration) (*segmentOutput, error)
}

// segmentOutput is a batch a replying segment handed back.
type segmentOutput struct {
	signal signal
	otlp   []byte
	// answer takes nil (the next consumer took it) or its refusal.
	answer func(err error)
}

// Refusal codes of an output's answer (the C ABI's and the bridge's).
const (
	outputAccepted         = 0
	outputRefusedRetryable = 1
	outputRefusedPermanent = 2
)

// outputAnswer is err as an answer code and reason.
func outputAnswer(err error) (uint32, string) {
	switch {
	case err == nil:
		return outputAccepted, ""
	case consumererror.IsPermanent(err):
		return outputRefusedPermanent, err.Error()
	default:
		return outputRefusedRetryable, err.Error()
	}
}

// segmentPlugin reads one wasm processor's metrics out of its segment's.
type segmentPlugin struct {
	segment segmentHandle
	id      string
}

func (p segmentPlugin) metricsJSON() ([]byte, error) {
	all, err := p.segment.metricsJSON()
	if err != nil {
		return nil, err
	}
	var metrics struct {
		Plugins map[string]json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(all, &metrics); err != nil {
		return nil, err
	}
	one, ok := metrics.Plugins[p.id]
	if !ok {
		return nil, fmt.Errorf("%s: no metrics in its segment yet", p.id)
	}
	return one, nil
}

// defaultExportBudget bounds a batch whose context has no deadline (the
// collector exporters' default timeout).
const defaultExportBudget = 5 * time.Second

// exportBudget is what is left of ctx's deadline, or the default.
func exportBudget(ctx context.Context) (time.Duration, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return defaultExportBudget, nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return 0, &bridgeError{kind: "deadline_exceeded", message: context.DeadlineExceeded.Error()}
	}
	return left, nil
}

// startSegment starts spec where mode says.
func startSegment(spec segmentSpec, mode, runtimeBinary string, logger *zap.Logger) (segmentHandle, error) {
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.ID, err)
	}
	if mode == modeEmbedded {
		return startEmbeddedSegment(specJSON)
	}
	program, err := runtimeProgramFor(runtimeBinary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.ID, err)
	}
	c, err := acquireChild(program, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.ID, err)
	}
	s, err := c.startSegment(spec.ID, specJSON)
	if err != nil {
		c.release()
		return nil, err
	}
	return s, nil
}

// validateNode runs the node type's own validation (its Rust factory's) on
// settings: in this process with cgo, else through the runtime binary.
func validateNode(kind, urn string, settings map[string]any) error {
	configJSON, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	if cgoAvailable {
		return validateNodeEmbedded(kind, urn, configJSON)
	}
	return validateNodeWithProgram(kind, urn, configJSON)
}
