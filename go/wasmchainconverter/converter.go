// Package wasmchainconverter is a confmap converter that lets consecutive
// `wasm` processors of a pipeline cross into the runtime once per batch:
//
//	processors: [batch, wasm/redact, wasm/filter, attributes]
//
// becomes
//
//	processors: [batch, wasm/chain(redact,filter), attributes]
//
// where `wasm/chain(redact,filter)` is a `wasm` processor whose `chain` lists
// both members with their own IDs and settings: the batch is marshaled once,
// runs through both plugins in one call (embedded: one cgo call; subprocess:
// one request to the bridge child), and is unmarshaled once. Each member
// keeps its ID in the runtime's logs and plugin metrics. Members must agree
// on where they run (`mode`, `runtime_binary`); a run that does not, a
// single wasm processor, and a processor that already has a `chain` are left
// as they are.
package wasmchainconverter

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// processorType is the wasm processor's component type.
const processorType = "wasm"

// NewFactory returns the converter's factory, for a distribution's
// ConverterFactories (the builder's `converters:`).
func NewFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter { return converter{} })
}

type converter struct{}

func (converter) Convert(_ context.Context, conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	processors, _ := raw["processors"].(map[string]any)
	service, _ := raw["service"].(map[string]any)
	pipelines, _ := service["pipelines"].(map[string]any)
	if processors == nil || pipelines == nil {
		return nil
	}
	newProcessors := map[string]any{}
	newPipelines := map[string]any{}
	names := make([]string, 0, len(pipelines))
	for name := range pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pipeline, _ := pipelines[name].(map[string]any)
		list, _ := pipeline["processors"].([]any)
		rewritten, changed, err := chainRuns(list, processors, newProcessors)
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", name, err)
		}
		if changed {
			newPipelines[name] = map[string]any{"processors": rewritten}
		}
	}
	if len(newPipelines) == 0 {
		return nil
	}
	return conf.Merge(confmap.NewFromStringMap(map[string]any{
		"processors": newProcessors,
		"service":    map[string]any{"pipelines": newPipelines},
	}))
}

// chainRuns replaces each run of two or more chainable wasm processors in
// list with one chain processor, defined in defined.
func chainRuns(list []any, processors, defined map[string]any) ([]any, bool, error) {
	var out []any
	changed := false
	for i := 0; i < len(list); {
		j := i
		for j < len(list) && chainable(list[j], processors) && (j == i || sameHost(list[i], list[j], processors)) {
			j++
		}
		if j-i < 2 {
			out = append(out, list[i])
			i++
			continue
		}
		id, cfg := chainOf(list[i:j], processors)
		if existing, ok := processors[id]; ok && existing != nil {
			return nil, false, fmt.Errorf("%s is defined already: rename it, the converter names chains so", id)
		}
		defined[id] = cfg
		out = append(out, id)
		changed = true
		i = j
	}
	return out, changed, nil
}

func typeAndName(id any) (string, string) {
	s, _ := id.(string)
	typ, name, _ := strings.Cut(s, "/")
	return typ, name
}

// chainable: a wasm processor that is not a chain itself.
func chainable(id any, processors map[string]any) bool {
	if typ, _ := typeAndName(id); typ != processorType {
		return false
	}
	cfg, _ := processors[id.(string)].(map[string]any)
	_, isChain := cfg["chain"]
	return !isChain
}

// sameHost: both run their plugins in the same place.
func sameHost(a, b any, processors map[string]any) bool {
	setting := func(id any, key string) string {
		cfg, _ := processors[id.(string)].(map[string]any)
		value, _ := cfg[key].(string)
		if key == "mode" && value == "" {
			return "auto"
		}
		return value
	}
	return setting(a, "mode") == setting(b, "mode") && setting(a, "runtime_binary") == setting(b, "runtime_binary")
}

// chainOf is the chain processor's ID and config for members, in order.
func chainOf(members []any, processors map[string]any) (string, map[string]any) {
	names := make([]string, len(members))
	chain := make([]any, len(members))
	for i, id := range members {
		_, name := typeAndName(id)
		if name == "" {
			name = processorType
		}
		names[i] = name
		settings, _ := processors[id.(string)].(map[string]any)
		chain[i] = map[string]any{"id": id, "settings": settings}
	}
	return processorType + "/chain(" + strings.Join(names, ",") + ")", map[string]any{"chain": chain}
}
