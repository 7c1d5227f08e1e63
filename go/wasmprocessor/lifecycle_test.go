package wasmprocessor

// What mdatagen generates for a processor (generated_component_test.go),
// written by hand: mdatagen is not served by the module proxy here.

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor"
)

func TestComponentFactoryType(t *testing.T) {
	if got := NewFactory().Type(); got != Type {
		t.Fatalf("factory type %v, want %v", got, Type)
	}
}

func TestComponentConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(NewFactory().CreateDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

// createSignal creates the factory's processor of one signal.
func createSignal(t *testing.T, factory processor.Factory, signal string, cfg component.Config) component.Component {
	t.Helper()
	ctx, set := context.Background(), settings()
	var p component.Component
	var err error
	switch signal {
	case "traces":
		p, err = factory.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	case "metrics":
		p, err = factory.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	default:
		p, err = factory.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestComponentLifecycle(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		factory := NewFactory()
		cm := confmap.NewFromStringMap(map[string]any{
			"component": componentPath(t, "wasmtel-test-identity"),
			"config":    map[string]any{"mode": "replace"},
			"mode":      mode,
		})
		config := func(t *testing.T) component.Config {
			cfg := factory.CreateDefaultConfig()
			if err := cm.Unmarshal(cfg); err != nil {
				t.Fatal(err)
			}
			return cfg
		}
		for _, signal := range []string{"traces", "metrics", "logs"} {
			t.Run(signal+"-shutdown", func(t *testing.T) {
				if err := createSignal(t, factory, signal, config(t)).Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			t.Run(signal+"-lifecycle", func(t *testing.T) {
				ctx := context.Background()
				p := createSignal(t, factory, signal, config(t))
				if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
					t.Fatal(err)
				}
				// MutatesData is false: the input is read-only, and the
				// processor must not write to it.
				var err error
				switch signal {
				case "traces":
					td := traces("GET /")
					td.MarkReadOnly()
					err = p.(processor.Traces).ConsumeTraces(ctx, td)
				case "metrics":
					md := metrics("m")
					md.MarkReadOnly()
					err = p.(processor.Metrics).ConsumeMetrics(ctx, md)
				default:
					ld := logs("x")
					ld.MarkReadOnly()
					err = p.(processor.Logs).ConsumeLogs(ctx, ld)
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}
