package wasmprocessor

import (
	"context"
	"errors"
)

// signal numbers of the C ABI and the bridge protocol.
type signal uint32

const (
	signalTraces  signal = 0
	signalMetrics signal = 1
	signalLogs    signal = 2
)

func (s signal) String() string {
	switch s {
	case signalTraces:
		return "traces"
	case signalMetrics:
		return "metrics"
	case signalLogs:
		return "logs"
	}
	return "unknown"
}

type outcome int

const (
	outcomeUnchanged outcome = iota
	outcomeReplaced
	outcomeDropped
	// outcomeExported: a segment's exporters acknowledged the batch.
	outcomeExported
)

func (o outcome) String() string {
	switch o {
	case outcomeUnchanged:
		return "unchanged"
	case outcomeReplaced:
		return "replaced"
	case outcomeDropped:
		return "dropped"
	case outcomeExported:
		return "exported"
	}
	return "unknown"
}

// pluginHandle is a loaded plugin, in this process (embedded) or in the
// bridge child (subprocess); the processor cannot tell which.
type pluginHandle interface {
	// process runs one OTLP batch within ctx's deadline; for
	// outcomeReplaced it hands the output to consume, which may read it
	// only during the call (it is the runtime's buffer or a shared-memory
	// slot; pdata's unmarshal copies what it keeps).
	process(ctx context.Context, sig signal, input []byte, consume func(output []byte)) (outcome, error)
	// processChain is process, then each of then (plugins of the same mode
	// and, in subprocess mode, the same child) on the previous output, in
	// one crossing: the consecutive wasm processors of a pipeline.
	processChain(ctx context.Context, sig signal, input []byte, then []pluginHandle, consume func(output []byte)) (outcome, error)
	// metricsJSON is the plugin's MetricsSnapshot as JSON.
	metricsJSON() ([]byte, error)
	// free releases the plugin; later calls fail with errPluginClosed.
	free()
}

// bridgeError is a failure reported by the runtime, in either mode.
type bridgeError struct {
	permanent bool
	// kind is the runtime's failure kind (trap, timeout, memory, ...) when
	// it is known: the bridge's wasmtel-failure-kind trailer.
	kind    string
	message string
}

func (e *bridgeError) Error() string { return e.message }

var errPluginClosed = errors.New("wasm plugin is shut down")

var errSegmentStopped = &bridgeError{message: "the Rust segment is shut down"}
