package wasmchainconverter

import (
	"context"
	"reflect"
	"testing"

	"go.opentelemetry.io/collector/confmap"

	"github.com/wasmtel/wasmtel/go/wasmprocessor"
)

func convert(t *testing.T, raw map[string]any) map[string]any {
	t.Helper()
	conf := confmap.NewFromStringMap(raw)
	if err := NewFactory().Create(confmap.ConverterSettings{}).Convert(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	return conf.ToStringMap()
}

func pipelineProcessors(t *testing.T, conf map[string]any, pipeline string) []any {
	t.Helper()
	return conf["service"].(map[string]any)["pipelines"].(map[string]any)[pipeline].(map[string]any)["processors"].([]any)
}

func TestConsecutiveWasmProcessorsBecomeOneChain(t *testing.T) {
	conf := convert(t, map[string]any{
		"processors": map[string]any{
			"batch":       map[string]any{},
			"wasm/redact": map[string]any{"component": "redact.wasm", "config": map[string]any{"keys": []any{"user.email"}}},
			"wasm/filter": map[string]any{"component": "filter.wasm", "on_error": "pass"},
			"wasm/alone":  map[string]any{"component": "alone.wasm"},
			"wasm/other":  map[string]any{"component": "other.wasm", "mode": "subprocess"},
			"wasm/x":      map[string]any{"component": "x.wasm"},
		},
		"service": map[string]any{"pipelines": map[string]any{
			"traces":  map[string]any{"processors": []any{"batch", "wasm/redact", "wasm/filter", "batch"}},
			"logs":    map[string]any{"processors": []any{"wasm/redact", "wasm/filter"}},
			"metrics": map[string]any{"processors": []any{"wasm/alone", "batch", "wasm/x", "wasm/other"}},
		}},
	})
	chain := "wasm/chain(redact,filter)"
	if got := pipelineProcessors(t, conf, "traces"); !reflect.DeepEqual(got, []any{"batch", chain, "batch"}) {
		t.Fatalf("traces: %v", got)
	}
	if got := pipelineProcessors(t, conf, "logs"); !reflect.DeepEqual(got, []any{chain}) {
		t.Fatalf("logs: %v", got)
	}
	// A lone wasm processor, and neighbours that run in different places, stay.
	if got := pipelineProcessors(t, conf, "metrics"); !reflect.DeepEqual(got, []any{"wasm/alone", "batch", "wasm/x", "wasm/other"}) {
		t.Fatalf("metrics: %v", got)
	}

	// The chain decodes as a wasm processor's config and validates: each
	// member with its ID and its own settings.
	processors := conf["processors"].(map[string]any)
	var cfg wasmprocessor.Config
	if err := confmap.NewFromStringMap(processors[chain].(map[string]any)).Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Chain) != 2 || cfg.Chain[0].ID != "wasm/redact" || cfg.Chain[1].ID != "wasm/filter" {
		t.Fatalf("chain: %+v", cfg.Chain)
	}
	if cfg.Chain[0].Settings["component"] != "redact.wasm" || cfg.Chain[0].Settings["config"] == nil || cfg.Chain[1].Settings["on_error"] != "pass" {
		t.Fatalf("members lost their settings: %+v", cfg.Chain)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAChainsMembersMustAgreeAndCannotNest(t *testing.T) {
	bad := []wasmprocessor.Config{
		{Plugin: map[string]any{"component": "x.wasm"}, Chain: []wasmprocessor.ChainMember{{ID: "wasm/a", Settings: map[string]any{"component": "a.wasm"}}}},
		{Chain: []wasmprocessor.ChainMember{{Settings: map[string]any{"component": "a.wasm"}}}},
		{Chain: []wasmprocessor.ChainMember{
			{ID: "wasm/a", Settings: map[string]any{"component": "a.wasm", "mode": "subprocess"}},
			{ID: "wasm/b", Settings: map[string]any{"component": "b.wasm", "mode": "subprocess", "runtime_binary": "/elsewhere"}},
		}},
		{Chain: []wasmprocessor.ChainMember{{ID: "wasm/a", Settings: map[string]any{}}}},
		{Chain: []wasmprocessor.ChainMember{{ID: "wasm/a", Settings: map[string]any{"component": "a.wasm", "typo": 1}}}},
		{Chain: []wasmprocessor.ChainMember{{ID: "wasm/a", Settings: map[string]any{"component": "a.wasm",
			"chain": []any{map[string]any{"id": "wasm/b", "settings": map[string]any{"component": "b.wasm"}}}}}}},
	}
	for i, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, cfg)
		}
	}
}

// A processor ID loads its plugin once for every pipeline it is in: one that
// is in several pipelines, or twice in one, is not made a chain member.
func TestProcessorsSharedOrRepeatedStayAsTheyAre(t *testing.T) {
	raw := map[string]any{
		"processors": map[string]any{
			"wasm/a": map[string]any{"component": "a.wasm"},
			"wasm/b": map[string]any{"component": "b.wasm"},
			"wasm/c": map[string]any{"component": "c.wasm"},
			"wasm/d": map[string]any{"component": "d.wasm"},
		},
		"service": map[string]any{"pipelines": map[string]any{
			// wasm/a is also used alone: its one plugin cannot be both.
			"traces": map[string]any{"processors": []any{"wasm/a", "wasm/b"}},
			"logs":   map[string]any{"processors": []any{"wasm/a"}},
			// A repeated ID is the collector's error to report, not ours to hide.
			"metrics": map[string]any{"processors": []any{"wasm/c", "wasm/c", "wasm/d"}},
		}},
	}
	conf := convert(t, raw)
	for pipeline, want := range map[string][]any{
		"traces": {"wasm/a", "wasm/b"}, "logs": {"wasm/a"}, "metrics": {"wasm/c", "wasm/c", "wasm/d"},
	} {
		if got := pipelineProcessors(t, conf, pipeline); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", pipeline, got, want)
		}
	}
}

func TestAnExistingProcessorOfTheChainsNameIsNotOverwritten(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"processors": map[string]any{
			"wasm/a":          map[string]any{"component": "a.wasm"},
			"wasm/b":          map[string]any{"component": "b.wasm"},
			"wasm/chain(a,b)": map[string]any{"component": "mine.wasm"},
		},
		"service": map[string]any{"pipelines": map[string]any{
			"traces": map[string]any{"processors": []any{"wasm/a", "wasm/b"}},
		}},
	})
	if err := NewFactory().Create(confmap.ConverterSettings{}).Convert(context.Background(), conf); err == nil {
		t.Fatal("the user's wasm/chain(a,b) was replaced")
	}
}

func pipelineExporters(t *testing.T, conf map[string]any, pipeline string) []any {
	t.Helper()
	return conf["service"].(map[string]any)["pipelines"].(map[string]any)[pipeline].(map[string]any)["exporters"].([]any)
}

func TestAPipelineEndingInRustExportersBecomesOneSegment(t *testing.T) {
	conf := convert(t, map[string]any{
		"processors": map[string]any{
			"batch":       map[string]any{},
			"wasm/redact": map[string]any{"component": "redact.wasm", "config": map[string]any{"keys": []any{"user.email"}}},
			"wasm/filter": map[string]any{"component": "filter.wasm"},
		},
		"exporters": map[string]any{
			"arrow_ipc": map[string]any{"directory": "/data"},
			"otap":      map[string]any{"grpc_endpoint": "http://127.0.0.1:4317"},
			"debug":     map[string]any{},
		},
		"service": map[string]any{"pipelines": map[string]any{
			"traces":  map[string]any{"processors": []any{"batch", "wasm/redact", "wasm/filter"}, "exporters": []any{"arrow_ipc", "otap"}},
			"logs":    map[string]any{"processors": []any{"wasm/redact", "wasm/filter"}, "exporters": []any{"arrow_ipc", "otap"}},
			"metrics": map[string]any{"processors": []any{"batch"}, "exporters": []any{"debug"}},
		}},
	})
	segment := "wasmtel_segment/redact,filter;arrow_ipc,otap"
	for _, p := range []string{"traces", "logs"} {
		if got := pipelineExporters(t, conf, p); !reflect.DeepEqual(got, []any{segment}) {
			t.Fatalf("%s exporters: %v", p, got)
		}
	}
	if got := pipelineProcessors(t, conf, "traces"); !reflect.DeepEqual(got, []any{"batch"}) {
		t.Fatalf("traces processors: %v", got)
	}
	if got := pipelineProcessors(t, conf, "logs"); len(got) != 0 {
		t.Fatalf("logs processors: %v", got)
	}
	// A Go exporter's pipeline is left alone.
	if got := pipelineExporters(t, conf, "metrics"); !reflect.DeepEqual(got, []any{"debug"}) {
		t.Fatalf("metrics exporters: %v", got)
	}
	// The segment decodes as the segment exporter's config: members in order, with their settings.
	var cfg wasmprocessor.SegmentConfig
	if err := confmap.NewFromStringMap(conf["exporters"].(map[string]any)[segment].(map[string]any)).Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Processors) != 2 || cfg.Processors[0].ID != "wasm/redact" || cfg.Processors[1].Settings["component"] != "filter.wasm" {
		t.Fatalf("processors: %+v", cfg.Processors)
	}
	if len(cfg.Exporters) != 2 || cfg.Exporters[0].ID != "arrow_ipc" || cfg.Exporters[0].Settings["directory"] != "/data" {
		t.Fatalf("exporters: %+v", cfg.Exporters)
	}
}

func TestAnExporterSharedWithAnotherShapeOfPipelineIsNotFolded(t *testing.T) {
	conf := convert(t, map[string]any{
		"processors": map[string]any{
			"wasm/redact": map[string]any{"component": "redact.wasm"},
			"wasm/filter": map[string]any{"component": "filter.wasm"},
		},
		"exporters": map[string]any{"arrow_ipc": map[string]any{"directory": "/data"}},
		"service": map[string]any{"pipelines": map[string]any{
			"traces": map[string]any{"processors": []any{"wasm/redact", "wasm/filter"}, "exporters": []any{"arrow_ipc"}},
			"logs":   map[string]any{"processors": []any{"wasm/redact"}, "exporters": []any{"arrow_ipc"}},
		}},
	})
	// One arrow_ipc writes both pipelines' files, so neither is folded; the
	// wasm processors are left too (wasm/redact is used in two shapes).
	for _, p := range []string{"traces", "logs"} {
		if got := pipelineExporters(t, conf, p); !reflect.DeepEqual(got, []any{"arrow_ipc"}) {
			t.Fatalf("%s exporters: %v", p, got)
		}
	}
	if got := pipelineProcessors(t, conf, "traces"); !reflect.DeepEqual(got, []any{"wasm/redact", "wasm/filter"}) {
		t.Fatalf("traces processors: %v", got)
	}
}

func TestRustEngineProcessorsBeforeRustExportersJoinTheSegment(t *testing.T) {
	conf := convert(t, map[string]any{
		"processors": map[string]any{
			"batch":                   map[string]any{},
			"rust_batch":              map[string]any{"max_batch_duration": "50ms"},
			"rust_batch/logs":         map[string]any{},
			"wasm/redact":             map[string]any{"component": "redact.wasm"},
			"circuit_breaker/primary": map[string]any{"failure_threshold": 3},
		},
		"exporters": map[string]any{
			"otap":  map[string]any{"grpc_endpoint": "http://127.0.0.1:4317"},
			"debug": map[string]any{},
		},
		"service": map[string]any{"pipelines": map[string]any{
			// The Go batch stays in Go; everything after it is Rust.
			"traces": map[string]any{"processors": []any{"batch", "rust_batch", "wasm/redact", "circuit_breaker/primary"}, "exporters": []any{"otap"}},
			// Before a Go exporter a lone Rust processor is left where it is (a replying segment of its own).
			"logs": map[string]any{"processors": []any{"rust_batch/logs"}, "exporters": []any{"debug"}},
		}},
	})
	segment := "wasmtel_segment/rust_batch,redact,circuit_breaker.primary;otap"
	if got := pipelineExporters(t, conf, "traces"); !reflect.DeepEqual(got, []any{segment}) {
		t.Fatalf("traces exporters: %v", got)
	}
	if got := pipelineProcessors(t, conf, "traces"); !reflect.DeepEqual(got, []any{"batch"}) {
		t.Fatalf("traces processors: %v", got)
	}
	var cfg wasmprocessor.SegmentConfig
	if err := confmap.NewFromStringMap(conf["exporters"].(map[string]any)[segment].(map[string]any)).Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, m := range cfg.Processors {
		ids = append(ids, m.ID)
	}
	if !reflect.DeepEqual(ids, []string{"rust_batch", "wasm/redact", "circuit_breaker/primary"}) || cfg.Processors[2].Settings["failure_threshold"] != 3 {
		t.Fatalf("processors: %+v", cfg.Processors)
	}
	if got := pipelineProcessors(t, conf, "logs"); !reflect.DeepEqual(got, []any{"rust_batch/logs"}) {
		t.Fatalf("logs processors: %v", got)
	}
}

func TestRunsOfWasmAndRustProcessorsBeforeGoComponentsBecomeOneSegmentProcessor(t *testing.T) {
	conf := convert(t, map[string]any{
		"processors": map[string]any{
			"batch":           map[string]any{},
			"rust_batch":      map[string]any{"max_batch_duration": "50ms"},
			"circuit_breaker": map[string]any{"failure_threshold": 3},
			"wasm/redact":     map[string]any{"component": "redact.wasm"},
			"wasm/filter":     map[string]any{"component": "filter.wasm"},
			"wasm/apart":      map[string]any{"component": "apart.wasm", "mode": "subprocess"},
			"wasm/a":          map[string]any{"component": "a.wasm"},
			"wasm/b":          map[string]any{"component": "b.wasm"},
			"rust_batch/logs": map[string]any{},
			"rust_batch/both": map[string]any{},
			"retry":           map[string]any{},
		},
		"exporters": map[string]any{"debug": map[string]any{}},
		"service": map[string]any{"pipelines": map[string]any{
			// wasm and Rust processors between Go components: one crossing.
			"traces": map[string]any{"processors": []any{"batch", "wasm/redact", "wasm/filter", "rust_batch", "circuit_breaker", "batch"}, "exporters": []any{"debug"}},
			// A wasm processor that runs elsewhere ends the run (runs are taken
			// from the left); what follows, wasm alone, is a chain.
			"logs": map[string]any{"processors": []any{"wasm/apart", "rust_batch/logs", "retry", "wasm/a", "wasm/b"}, "exporters": []any{"debug"}},
			// A member used in another pipeline stays where it is.
			"metrics":   map[string]any{"processors": []any{"rust_batch/both", "batch"}, "exporters": []any{"debug"}},
			"metrics/2": map[string]any{"processors": []any{"batch", "rust_batch/both"}, "exporters": []any{"debug"}},
		}},
	})
	segment := "wasmtel_segment/redact,filter,rust_batch,circuit_breaker"
	if got := pipelineProcessors(t, conf, "traces"); !reflect.DeepEqual(got, []any{"batch", segment, "batch"}) {
		t.Fatalf("traces: %v", got)
	}
	var cfg wasmprocessor.SegmentProcessorConfig
	if err := confmap.NewFromStringMap(conf["processors"].(map[string]any)[segment].(map[string]any)).Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, m := range cfg.Processors {
		ids = append(ids, m.ID)
	}
	if !reflect.DeepEqual(ids, []string{"wasm/redact", "wasm/filter", "rust_batch", "circuit_breaker"}) ||
		cfg.Processors[3].Settings["failure_threshold"] != 3 || cfg.Processors[0].Settings["component"] != "redact.wasm" {
		t.Fatalf("processors: %+v", cfg.Processors)
	}
	if got := pipelineProcessors(t, conf, "logs"); !reflect.DeepEqual(got, []any{"wasmtel_segment/apart,rust_batch.logs,retry", "wasm/chain(a,b)"}) {
		t.Fatalf("logs: %v", got)
	}
	for _, name := range []string{"metrics", "metrics/2"} {
		if got := pipelineProcessors(t, conf, name); len(got) != 2 {
			t.Fatalf("%s: %v", name, got)
		}
	}
}
