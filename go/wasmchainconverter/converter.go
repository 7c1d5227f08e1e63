// Package wasmchainconverter is a confmap converter that lets the Rust parts
// of a pipeline cross into the runtime once per batch.
//
// A pipeline that ends in Rust exporters only (arrow_ipc, otap,
// rust_otlp_grpc, …: go/rustexporters), after zero or more wasm processors
// and Rust engine processors (circuit_breaker, rust_batch, …:
// go/rustprocessors),
//
//	processors: [batch, wasm/redact, wasm/filter, circuit_breaker]
//	exporters: [arrow_ipc, otap]
//
// becomes
//
//	processors: [batch]
//	exporters: [wasmtel_segment/redact,filter,circuit_breaker;arrow_ipc,otap]
//
// a `wasmtel_segment` exporter (go/rustexporters/segmentexporter) that runs
// those processors and exporters as one Rust engine pipeline: the batch is
// marshaled once and never returns to pdata; the exporters get OTAP
// converted once. Each member keeps its ID and settings. A member used
// anywhere else in another shape (an exporter shared with a pipeline whose
// tail differs) keeps the pipeline as it is.
//
// Then each run of two or more wasm and Rust processors elsewhere, with at
// least one Rust processor, becomes a `wasmtel_segment` processor
// (go/rustprocessors/segmentprocessor) that runs them as one replying
// engine pipeline: the batch crosses once and comes back once, as OTLP, for
// the next Go component:
//
//	processors: [wasm/redact, rust_batch, circuit_breaker, attributes]
//
// becomes
//
//	processors: [wasmtel_segment/redact,rust_batch,circuit_breaker, attributes]
//
// Then consecutive `wasm` processors that remain cross once per batch:
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
// on where they run (`mode`, `runtime_binary`) and appear in no other
// pipeline (a processor ID loads its plugin once, shared by its pipelines);
// a run that does not, a run naming one ID twice, a single wasm processor,
// and a processor that already has a `chain` are left as they are.
package wasmchainconverter

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"

	"github.com/wasmtel/wasmtel/go/wasmprocessor"
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
	if err := foldSegments(conf); err != nil {
		return err
	}
	if err := foldRuns(conf, segmentRuns, "segments"); err != nil {
		return err
	}
	return foldRuns(conf, chainRuns, "chains")
}

// foldRuns replaces each run find finds in a pipeline's processors by the
// one processor the run names, where every member is used only in that run.
func foldRuns(conf *confmap.Conf, find func(list []any, processors map[string]any) []run, what string) error {
	raw := conf.ToStringMap()
	processors, _ := raw["processors"].(map[string]any)
	service, _ := raw["service"].(map[string]any)
	pipelines, _ := service["pipelines"].(map[string]any)
	if processors == nil || pipelines == nil {
		return nil
	}
	names := sortedNames(pipelines)
	processorsOf := func(name string) []any {
		pipeline, _ := pipelines[name].(map[string]any)
		list, _ := pipeline["processors"].([]any)
		return list
	}
	// A processor ID loads its plugin once, shared by its pipelines: it may
	// join a chain only where every use of it is that same chain.
	usedIn := map[any]map[string]bool{}
	use := func(id any, as string) {
		if usedIn[id] == nil {
			usedIn[id] = map[string]bool{}
		}
		usedIn[id][as] = true
	}
	for _, name := range names {
		list := processorsOf(name)
		as := make([]string, len(list)) // "" where a position is in no run
		for _, r := range find(list, processors) {
			for i := r.start; i < r.end; i++ {
				as[i] = r.id
			}
		}
		for i, id := range list {
			use(id, as[i])
		}
	}
	newProcessors := map[string]any{}
	newPipelines := map[string]any{}
	for _, name := range names {
		list := processorsOf(name)
		var out []any
		changed, next := false, 0
		for _, r := range find(list, processors) {
			if !onlyIn(usedIn, list[r.start:r.end], r.id) {
				continue
			}
			if existing, ok := processors[r.id]; ok && existing != nil {
				return fmt.Errorf("pipeline %s: %s is defined already: rename it, the converter names %s so", name, r.id, what)
			}
			newProcessors[r.id] = r.cfg
			out = append(append(out, list[next:r.start]...), r.id)
			next, changed = r.end, true
		}
		if changed {
			newPipelines[name] = map[string]any{"processors": append(out, list[next:]...)}
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

// run is a candidate for folding: list[start:end], no ID twice, becomes
// the processor id with config cfg.
type run struct {
	start, end int
	id         string
	cfg        map[string]any
}

// segmentRuns are the runs of two or more processors a segment can run
// (wasm processors that run in one place, Rust engine processors) with at
// least one Rust processor among them: one replying segment each.
func segmentRuns(list []any, processors map[string]any) []run {
	var found []run
	for i := 0; i < len(list); {
		j, rust := i, 0
		seen := map[any]bool{}
		var host any // the wasm processor whose place the others must share
		for ; j < len(list) && !seen[list[j]]; j++ {
			id := list[j]
			if chainable(id, processors) {
				if host != nil && !sameHost(id, host, processors) {
					break
				}
				if host == nil {
					host = id
				}
			} else if rustProcessor(id) {
				rust++
			} else {
				break
			}
			seen[id] = true
		}
		if j-i < 2 || rust == 0 {
			i++
			continue
		}
		names := make([]string, j-i)
		for k, id := range list[i:j] {
			names[k] = memberName(id)
		}
		found = append(found, run{
			start: i, end: j,
			id:  wasmprocessor.SegmentType.String() + "/" + strings.Join(names, ","),
			cfg: map[string]any{"processors": members(list[i:j], processors)},
		})
		i = j
	}
	return found
}

// chainRuns are the runs of two or more wasm processors that run in the
// same place: one chain each.
func chainRuns(list []any, processors map[string]any) []run {
	var found []run
	for i := 0; i < len(list); {
		j := i
		seen := map[any]bool{}
		for j < len(list) && !seen[list[j]] && chainable(list[j], processors) &&
			(j == i || sameHost(list[i], list[j], processors)) {
			seen[list[j]] = true
			j++
		}
		if j-i < 2 {
			i++
			continue
		}
		id, cfg := chainOf(list[i:j], processors)
		found = append(found, run{start: i, end: j, id: id, cfg: cfg})
		i = j
	}
	return found
}

// onlyIn: every use of each member is the chain chain.
func onlyIn(usedIn map[any]map[string]bool, members []any, chain string) bool {
	for _, id := range members {
		if len(usedIn[id]) != 1 || !usedIn[id][chain] {
			return false
		}
	}
	return true
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

// foldSegments replaces the Rust tail of each pipeline (trailing wasm
// processors that run in one place, then Rust exporters only) by one
// segment exporter, where every member is used only in that same tail.
func foldSegments(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	processors, _ := raw["processors"].(map[string]any)
	exporters, _ := raw["exporters"].(map[string]any)
	service, _ := raw["service"].(map[string]any)
	pipelines, _ := service["pipelines"].(map[string]any)
	if exporters == nil || pipelines == nil {
		return nil
	}
	names := sortedNames(pipelines)
	type tail struct {
		id                    string
		keep, wasm, exporters []any
	}
	tails := map[string]*tail{}
	// What shape each processor and exporter ID is used in ("" for none).
	usedIn := map[string]map[string]bool{}
	use := func(kind string, id any, as string) {
		key := kind + ":" + fmt.Sprint(id)
		if usedIn[key] == nil {
			usedIn[key] = map[string]bool{}
		}
		usedIn[key][as] = true
	}
	for _, name := range names {
		pipeline, _ := pipelines[name].(map[string]any)
		list, _ := pipeline["processors"].([]any)
		out, _ := pipeline["exporters"].([]any)
		t := segmentTail(list, out, processors)
		as := ""
		if t != nil {
			as = t.id
			tails[name] = &tail{id: t.id, keep: list[:len(list)-len(t.wasm)], wasm: t.wasm, exporters: out}
		}
		for i, id := range list {
			if t != nil && i >= len(list)-len(t.wasm) {
				use("p", id, as)
			} else {
				use("p", id, "")
			}
		}
		for _, id := range out {
			use("e", id, as)
		}
	}
	only := func(kind string, ids []any, as string) bool {
		for _, id := range ids {
			if used := usedIn[kind+":"+fmt.Sprint(id)]; len(used) != 1 || !used[as] {
				return false
			}
		}
		return true
	}
	newExporters := map[string]any{}
	newPipelines := map[string]any{}
	for _, name := range names {
		t := tails[name]
		if t == nil || !only("p", t.wasm, t.id) || !only("e", t.exporters, t.id) {
			continue
		}
		if existing, ok := exporters[t.id]; ok && existing != nil {
			return fmt.Errorf("pipeline %s: %s is defined already: rename it, the converter names segments so", name, t.id)
		}
		newExporters[t.id] = map[string]any{
			"processors": members(t.wasm, processors),
			"exporters":  members(t.exporters, exporters),
		}
		keep := t.keep
		if keep == nil {
			keep = []any{}
		}
		newPipelines[name] = map[string]any{"processors": keep, "exporters": []any{t.id}}
	}
	if len(newPipelines) == 0 {
		return nil
	}
	return conf.Merge(confmap.NewFromStringMap(map[string]any{
		"exporters": newExporters,
		"service":   map[string]any{"pipelines": newPipelines},
	}))
}

// segmentCandidate is a pipeline's Rust tail.
type segmentCandidate struct {
	id   string
	wasm []any // the processors it takes (wasm and Rust engine processors)
}

// rustProcessor: one of the runtime's engine processors (batch, retry, …).
func rustProcessor(id any) bool {
	typ, _ := typeAndName(id)
	return wasmprocessor.IsRustProcessorType(typ)
}

// segmentTail is the pipeline's Rust tail, or nil: every exporter a Rust
// one, and the processors at the end that can run in a segment (wasm
// processors that run in one place, Rust engine processors; no ID twice).
// A lone Rust exporter with no processor before it is a segment already.
func segmentTail(list, out []any, processors map[string]any) *segmentCandidate {
	if len(out) == 0 {
		return nil
	}
	seen := map[any]bool{}
	for _, id := range out {
		typ, _ := typeAndName(id)
		if seen[id] || !wasmprocessor.IsRustExporterType(typ) {
			return nil
		}
		seen[id] = true
	}
	start := len(list)
	var host any // the wasm processor whose place the others must share
	for start > 0 && !seen[list[start-1]] {
		id := list[start-1]
		if chainable(id, processors) {
			if host != nil && !sameHost(id, host, processors) {
				break
			}
			if host == nil {
				host = id
			}
		} else if !rustProcessor(id) {
			break
		}
		seen[id] = true
		start--
	}
	wasm := list[start:]
	if len(wasm) == 0 && len(out) == 1 {
		return nil
	}
	pnames := make([]string, len(wasm))
	for i, id := range wasm {
		pnames[i] = memberName(id)
	}
	enames := make([]string, len(out))
	for i, id := range out {
		enames[i] = strings.ReplaceAll(fmt.Sprint(id), "/", ".")
	}
	id := wasmprocessor.SegmentType.String() + "/" + strings.Join(pnames, ",") + ";" + strings.Join(enames, ",")
	return &segmentCandidate{id: id, wasm: wasm}
}

// memberName is a processor's part of a segment's ID: a wasm processor's
// name (as in chains), any other processor's ID with `.` for `/`.
func memberName(id any) string {
	typ, name := typeAndName(id)
	if typ != processorType {
		return strings.ReplaceAll(fmt.Sprint(id), "/", ".")
	}
	if name == "" {
		return processorType
	}
	return name
}

// members lists ids with their settings, as a segment's config holds them.
func members(ids []any, defined map[string]any) []any {
	list := make([]any, len(ids))
	for i, id := range ids {
		settings, _ := defined[fmt.Sprint(id)].(map[string]any)
		list[i] = map[string]any{"id": id, "settings": settings}
	}
	return list
}

// sortedNames are the pipelines' names in order: the rewrite is the same
// whatever order the configuration's map was read in.
func sortedNames(pipelines map[string]any) []string {
	names := make([]string, 0, len(pipelines))
	for name := range pipelines {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
