package wasmprocessor

import "errors"

// signal numbers of the C ABI.
type signal uint32

const (
	signalTraces  signal = 0
	signalMetrics signal = 1
	signalLogs    signal = 2
)

type outcome int

const (
	outcomeUnchanged outcome = iota
	outcomeReplaced
	outcomeDropped
)

// bridgeError is a failure reported by the Rust runtime.
type bridgeError struct {
	permanent bool
	message   string
}

func (e *bridgeError) Error() string { return e.message }

var errPluginClosed = errors.New("wasm plugin is shut down")
