package wasmprocessor

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
)

// SegmentType is the exporter the wasmchain converter writes where a
// pipeline ends in wasm processors and Rust exporters only: they run as one
// engine pipeline, so a batch crosses once and never returns to pdata.
var SegmentType = component.MustNewType("wasmtel_segment")

// SegmentConfig lists a segment's members in order, each under its own ID
// with its own settings (written by the converter, not by hand).
type SegmentConfig struct {
	// Processors are `wasm` processors and Rust engine processors, run in order.
	Processors []SegmentMember `mapstructure:"processors"`
	// Exporters are Rust exporters; each gets every batch.
	Exporters []SegmentMember `mapstructure:"exporters"`

	_ struct{}
}

// SegmentMember is one component of a segment: its ID and its settings.
type SegmentMember struct {
	ID       string         `mapstructure:"id"`
	Settings map[string]any `mapstructure:"settings"`
}

// NewSegmentExporterFactory returns the factory of the `wasmtel_segment` exporter.
func NewSegmentExporterFactory() exporter.Factory {
	return newSegmentFactory(SegmentType, func() component.Config { return &SegmentConfig{} },
		func(id component.ID, cfg component.Config) (segmentPlan, error) {
			return cfg.(*SegmentConfig).plan(id.String())
		})
}

// Validate checks every member, naming it: the wasm processors' settings as
// the `wasm` processor does, the others' by their Rust factories.
func (cfg *SegmentConfig) Validate() error {
	if len(cfg.Exporters) == 0 {
		return errors.New("exporters: a segment needs at least one")
	}
	if _, err := cfg.plan(""); err != nil {
		return err
	}
	for i, m := range cfg.Exporters {
		f, err := exporterMember(m)
		if err != nil {
			return fmt.Errorf("exporters[%d]: %w", i, err)
		}
		if err := validateNode(f.kind, f.urn, m.Settings); err != nil {
			return fmt.Errorf("exporters[%d] (%s): %w", i, m.ID, err)
		}
	}
	return nil
}

func memberType(m SegmentMember) (string, error) {
	var id component.ID
	if err := id.UnmarshalText([]byte(m.ID)); err != nil {
		return "", fmt.Errorf("id %q: %w", m.ID, err)
	}
	return id.Type().String(), nil
}

func exporterMember(m SegmentMember) (rustFactory, error) {
	typ, err := memberType(m)
	if err != nil {
		return rustFactory{}, err
	}
	f, ok := findRustFactory("exporter", typ)
	if !ok || !IsRustExporterType(typ) {
		return rustFactory{}, fmt.Errorf("%s: not a Rust exporter of this runtime", m.ID)
	}
	return f, nil
}

// plan is the segment's engine description: its processors, then its exporters.
func (cfg *SegmentConfig) plan(id string) (segmentPlan, error) {
	p, err := planProcessors(id, cfg.Processors)
	if err != nil {
		return p, err
	}
	for i, m := range cfg.Exporters {
		f, err := exporterMember(m)
		if err != nil {
			return p, fmt.Errorf("exporters[%d]: %w", i, err)
		}
		p.spec.Exporters = append(p.spec.Exporters, segmentNode{ID: m.ID, URN: f.urn, Config: m.Settings})
	}
	return p, nil
}

// SegmentProcessorConfig lists the members of a `wasmtel_segment`
// processor, in order, each under its own ID with its own settings
// (written by the converter, not by hand).
type SegmentProcessorConfig struct {
	// Processors are `wasm` processors and Rust engine processors, run in order.
	Processors []SegmentMember `mapstructure:"processors"`

	_ struct{}
}

// Validate checks every member, naming it, as a segment exporter does.
func (cfg *SegmentProcessorConfig) Validate() error {
	if len(cfg.Processors) == 0 {
		return errors.New("processors: a segment needs at least one")
	}
	_, err := planProcessors("", cfg.Processors)
	return err
}

// planProcessors is the processors' part of a segment's plan: wasm nodes
// with each wasm processor's plugin settings as the Rust node reads them,
// engine processors with theirs, checked by their factories.
func planProcessors(id string, processors []SegmentMember) (segmentPlan, error) {
	p := segmentPlan{spec: segmentSpec{ID: id}}
	placed := false // whether a wasm processor has set where the segment runs
	for i, m := range processors {
		typ, err := memberType(m)
		if err != nil {
			return p, fmt.Errorf("processors[%d]: %w", i, err)
		}
		if typ != Type.String() {
			if !IsRustProcessorType(typ) {
				return p, fmt.Errorf("processors[%d]: %s: not a Rust processor a segment can run", i, m.ID)
			}
			f, _ := findRustFactory("processor", typ)
			if err := validateNode(f.kind, f.urn, m.Settings); err != nil {
				return p, fmt.Errorf("processors[%d] (%s): %w", i, m.ID, err)
			}
			p.spec.Processors = append(p.spec.Processors, segmentNode{ID: m.ID, URN: f.urn, Config: m.Settings})
			continue
		}
		var member Config
		if err := confmap.NewFromStringMap(m.Settings).Unmarshal(&member); err != nil {
			return p, fmt.Errorf("processors[%d] (%s): %w", i, m.ID, err)
		}
		if err := member.Validate(); err != nil {
			return p, fmt.Errorf("processors[%d] (%s): %w", i, m.ID, err)
		}
		if len(member.Chain) > 0 {
			return p, fmt.Errorf("processors[%d] (%s): a member cannot be a chain", i, m.ID)
		}
		// One segment runs in one place.
		if !placed {
			p.mode, p.runtimeBinary, placed = member.effectiveMode(), member.RuntimeBinary, true
		} else if member.effectiveMode() != p.mode || member.RuntimeBinary != p.runtimeBinary {
			return p, fmt.Errorf("processors[%d] (%s): mode and runtime_binary must be %s's", i, m.ID, p.pluginIDs[0])
		}
		// The processor's plugin settings are the wasm node's, as they are.
		p.spec.Processors = append(p.spec.Processors, segmentNode{ID: m.ID, URN: wasmNodeURN, Config: member.Plugin})
		p.pluginIDs = append(p.pluginIDs, m.ID)
	}
	return p, nil
}

// wasmNodeURN is the node type of the wasm processor in the runtime.
var wasmNodeURN = func() string {
	f, _ := findRustFactory("processor", "wasm")
	return f.urn
}()
