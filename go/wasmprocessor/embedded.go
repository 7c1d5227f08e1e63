//go:build cgo

package wasmprocessor

// Embedded mode: the Rust runtime linked into the collector through cgo
// (the C ABI of runtime/ffi). The library is found through CGO_LDFLAGS
// (-L<dir of libwasmtel_ffi.a>), which scripts/ffi-env.sh prints.

/*
#cgo CFLAGS: -I${SRCDIR}/../../runtime/ffi/include
#cgo LDFLAGS: -lwasmtel_ffi -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#include <stdlib.h>
#include "wasmtel.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

const cgoAvailable = true

// takeError converts and frees a C error.
func takeError(cerr *C.WasmtelError) error {
	message := "wasmtel: unknown error"
	if cerr.message != nil {
		message = C.GoString(cerr.message)
		C.wasmtel_string_free(cerr.message)
		cerr.message = nil
	}
	return &bridgeError{permanent: bool(cerr.permanent), kind: failureKinds[cerr.kind], message: message}
}

// failureKinds names the C ABI's batch failure kinds as the runtime does
// (FailureKind::as_str), for the refusal metric and log.
var failureKinds = map[C.enum_WasmtelErrorKind]string{
	C.WASMTEL_ERROR_KIND_TRAP:              "trap",
	C.WASMTEL_ERROR_KIND_TIMEOUT:           "timeout",
	C.WASMTEL_ERROR_KIND_MEMORY:            "memory",
	C.WASMTEL_ERROR_KIND_INVALID_OUTPUT:    "invalid_output",
	C.WASMTEL_ERROR_KIND_OUTPUT_TOO_LARGE:  "output_too_large",
	C.WASMTEL_ERROR_KIND_GUEST_PERMANENT:   "guest_permanent",
	C.WASMTEL_ERROR_KIND_GUEST_RETRYABLE:   "guest_retryable",
	C.WASMTEL_ERROR_KIND_INSTANTIATE:       "instantiate",
	C.WASMTEL_ERROR_KIND_BUSY:              "busy",
	C.WASMTEL_ERROR_KIND_DEADLINE_EXCEEDED: "deadline_exceeded",
	C.WASMTEL_ERROR_KIND_INVALID_INPUT:     "invalid_input",
	C.WASMTEL_ERROR_KIND_REFUSED:           "refused",
	C.WASMTEL_ERROR_KIND_STOPPED:           "stopped",
}

// The runtime (engine, compile cache) is shared by every plugin of the
// process and freed with the last one, so Shutdown leaves no handle alive.
// While it lives, its log records are drained into the collector's logger.
var shared struct {
	sync.Mutex
	runtime  *C.WasmtelRuntime
	users    int
	stopLogs chan struct{}
	logsDone chan struct{}
}

// logDrainInterval is how often the runtime's log records are fetched.
const logDrainInterval = 100 * time.Millisecond

func acquireRuntime() (*C.WasmtelRuntime, error) {
	shared.Lock()
	defer shared.Unlock()
	if shared.runtime == nil {
		var cerr C.WasmtelError
		var rt *C.WasmtelRuntime
		if C.wasmtel_runtime_new(nil, 0, &rt, &cerr) != C.WASMTEL_STATUS_OK {
			return nil, takeError(&cerr)
		}
		shared.runtime = rt
		shared.stopLogs, shared.logsDone = make(chan struct{}), make(chan struct{})
		go drainLogs(shared.stopLogs, shared.logsDone)
	}
	shared.users++
	return shared.runtime, nil
}

func releaseRuntime() {
	shared.Lock()
	defer shared.Unlock()
	shared.users--
	if shared.users == 0 && shared.runtime != nil {
		close(shared.stopLogs)
		<-shared.logsDone
		C.wasmtel_runtime_free(shared.runtime)
		shared.runtime = nil
	}
}

// drainLogs forwards the runtime's log records until stopped, then once more.
func drainLogs(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(logDrainInterval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			forwardRuntimeLogs()
			return
		case <-ticker.C:
			forwardRuntimeLogs()
		}
	}
}

func forwardRuntimeLogs() {
	var out *C.char
	if C.wasmtel_logs_drain(&out) != C.WASMTEL_STATUS_OK || out == nil {
		return
	}
	data := C.GoString(out)
	C.wasmtel_string_free(out)
	var records []runtimeLogRecord
	if json.Unmarshal([]byte(data), &records) != nil {
		return
	}
	for _, record := range records {
		logRuntimeRecord(record)
	}
}

// embeddedPlugin is a loaded component; safe for concurrent use until free.
type embeddedPlugin struct {
	mu     sync.RWMutex // process holds it shared; free exclusively
	handle *C.WasmtelPlugin
}

// cBytes points C at Go memory without copying; cgo's pointer rules allow
// passing it for the duration of the call.
func cBytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// loadEmbedded resolves reference (a path, file://, oci://…, sha256:… or a
// store name:tag) under the registry policy (empty: defaults) and starts it.
func loadEmbedded(name, reference string, pluginConfigJSON, registryJSON []byte) (pluginHandle, error) {
	rt, err := acquireRuntime()
	if err != nil {
		return nil, err
	}
	nameBytes, refBytes := []byte(name), []byte(reference)
	namePtr, nameLen := cBytes(nameBytes)
	refPtr, refLen := cBytes(refBytes)
	cfgPtr, cfgLen := cBytes(pluginConfigJSON)
	regPtr, regLen := cBytes(registryJSON)
	var handle *C.WasmtelPlugin
	var cerr C.WasmtelError
	status := C.wasmtel_plugin_load(rt, namePtr, nameLen, refPtr, refLen, cfgPtr, cfgLen, regPtr, regLen, &handle, &cerr)
	runtime.KeepAlive(nameBytes)
	runtime.KeepAlive(refBytes)
	runtime.KeepAlive(pluginConfigJSON)
	runtime.KeepAlive(registryJSON)
	if status != C.WASMTEL_STATUS_OK {
		releaseRuntime()
		return nil, takeError(&cerr)
	}
	return &embeddedPlugin{handle: handle}, nil
}

// process runs one OTLP batch within the context's deadline. For
// outcomeReplaced it hands consume the output in the runtime's buffer, freed
// after consume returns.
func (p *embeddedPlugin) process(ctx context.Context, sig signal, input []byte, consume func([]byte)) (outcome, error) {
	return p.processChain(ctx, sig, input, nil, consume)
}

// processChain runs the batch through p, then through then, in one call
// (wasmtel_chain_process): the output of each is the next one's input, with
// no crossing back in between.
func (p *embeddedPlugin) processChain(ctx context.Context, sig signal, input []byte, then []pluginHandle, consume func([]byte)) (outcome, error) {
	var deadline time.Duration
	if d, ok := ctx.Deadline(); ok {
		if deadline = time.Until(d); deadline <= 0 {
			return outcomeUnchanged, ctx.Err()
		}
	}
	chain := make([]*embeddedPlugin, 0, 1+len(then))
	chain = append(chain, p)
	for _, next := range then {
		member, ok := next.(*embeddedPlugin)
		if !ok {
			return outcomeUnchanged, &bridgeError{permanent: true, message: "a chain mixes embedded and subprocess plugins"}
		}
		chain = append(chain, member)
	}
	// C pointers only (no Go pointers inside): cgo may be given the slice.
	handles := make([]*C.WasmtelPlugin, len(chain))
	for i, member := range chain {
		member.mu.RLock()
		defer member.mu.RUnlock()
		if member.handle == nil {
			return outcomeUnchanged, errPluginClosed
		}
		handles[i] = member.handle
	}
	inPtr, inLen := cBytes(input)
	var out C.WasmtelOutput
	var cerr C.WasmtelError
	deadlineNs := C.uint64_t(0)
	if deadline > 0 {
		deadlineNs = C.uint64_t(deadline.Nanoseconds())
	}
	var ok bool
	if len(handles) == 1 {
		ok = C.wasmtel_plugin_process(handles[0], C.uint32_t(sig), inPtr, inLen, deadlineNs, &out, &cerr) == C.WASMTEL_STATUS_OK
	} else {
		ok = C.wasmtel_chain_process((**C.WasmtelPlugin)(unsafe.Pointer(&handles[0])), C.size_t(len(handles)),
			C.uint32_t(sig), inPtr, inLen, deadlineNs, &out, &cerr) == C.WASMTEL_STATUS_OK
	}
	runtime.KeepAlive(input)
	runtime.KeepAlive(handles)
	if !ok {
		return outcomeUnchanged, takeError(&cerr)
	}
	switch out.outcome {
	case C.WASMTEL_OUTCOME_REPLACED:
		// Read where Rust put it (no copy into Go memory first), then freed.
		consume(unsafe.Slice((*byte)(unsafe.Pointer(out.data)), int(out.len)))
		C.wasmtel_bytes_free(out.data, out.len, out.capacity)
		return outcomeReplaced, nil
	case C.WASMTEL_OUTCOME_DROPPED:
		return outcomeDropped, nil
	default:
		return outcomeUnchanged, nil
	}
}

// metricsJSON returns the plugin's metrics snapshot as JSON.
func (p *embeddedPlugin) metricsJSON() ([]byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.handle == nil {
		return nil, errPluginClosed
	}
	var out *C.char
	var cerr C.WasmtelError
	if C.wasmtel_plugin_metrics_json(p.handle, &out, &cerr) != C.WASMTEL_STATUS_OK {
		return nil, takeError(&cerr)
	}
	defer C.wasmtel_string_free(out)
	return []byte(C.GoString(out)), nil
}

// free releases the plugin; later calls fail with errPluginClosed. Idempotent.
func (p *embeddedPlugin) free() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.handle == nil {
		return
	}
	C.wasmtel_plugin_free(p.handle)
	p.handle = nil
	releaseRuntime()
}

// liveHandles is the number of Rust runtime and plugin handles alive.
func liveHandles() uint64 {
	return uint64(C.wasmtel_live_handles())
}
