//go:build cgo

package wasmprocessor

/*
#include <stdlib.h>
#include "wasmtel.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// embeddedSegment is a segment whose engine runs in this process, on
// threads of its own.
type embeddedSegment struct {
	mu     sync.RWMutex // export holds it shared; stop exclusively
	handle *C.WasmtelSegment
}

func startEmbeddedSegment(specJSON []byte) (segmentHandle, error) {
	// The runtime's log drain forwards the engine's records too.
	if _, err := acquireRuntime(); err != nil {
		return nil, err
	}
	ptr, n := cBytes(specJSON)
	var handle *C.WasmtelSegment
	var cerr C.WasmtelError
	status := C.wasmtel_segment_start(ptr, n, &handle, &cerr)
	runtime.KeepAlive(specJSON)
	if status != C.WASMTEL_STATUS_OK {
		releaseRuntime()
		return nil, takeError(&cerr)
	}
	return &embeddedSegment{handle: handle}, nil
}

func (s *embeddedSegment) export(ctx context.Context, sig signal, input []byte) error {
	budget, err := exportBudget(ctx)
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.handle == nil {
		return errSegmentStopped
	}
	ptr, n := cBytes(input)
	var cerr C.WasmtelError
	status := C.wasmtel_segment_export(s.handle, C.uint32_t(sig), ptr, n, C.uint64_t(budget.Nanoseconds()), &cerr)
	runtime.KeepAlive(input)
	if status != C.WASMTEL_STATUS_OK {
		return takeError(&cerr)
	}
	return nil
}

func (s *embeddedSegment) nextOutput(timeout time.Duration) (*segmentOutput, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.handle == nil {
		return nil, errSegmentStopped
	}
	var output *C.WasmtelOutput
	var sig C.uint32_t
	var otlp *C.uint8_t
	var n C.size_t
	var cerr C.WasmtelError
	if C.wasmtel_segment_next_output(s.handle, C.uint64_t(timeout.Nanoseconds()), &output, &sig, &otlp, &n, &cerr) != C.WASMTEL_STATUS_OK {
		return nil, takeError(&cerr)
	}
	if output == nil {
		return nil, nil
	}
	// The bytes stay valid until the answer frees the output.
	data := unsafe.Slice((*byte)(unsafe.Pointer(otlp)), int(n))
	return &segmentOutput{signal: signal(sig), otlp: data, answer: func(err error) {
		refused, reason := outputAnswer(err)
		ptr, length := cBytes([]byte(reason))
		C.wasmtel_output_answer(output, C.uint32_t(refused), ptr, length)
	}}, nil
}

func (s *embeddedSegment) stop(ctx context.Context) error {
	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	// Drain under the shared lock: a replying segment's outputs keep being
	// taken and answered (nextOutput) until it has stopped.
	s.mu.RLock()
	if s.handle == nil {
		s.mu.RUnlock()
		return nil
	}
	var cerr C.WasmtelError
	closed := C.wasmtel_segment_close(s.handle, C.uint64_t(timeout.Nanoseconds()), &cerr)
	s.mu.RUnlock()
	var err error
	if closed != C.WASMTEL_STATUS_OK {
		err = takeError(&cerr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handle == nil {
		return err
	}
	// Closed already: this only frees the handle.
	var ferr C.WasmtelError
	status := C.wasmtel_segment_shutdown(s.handle, C.uint64_t(time.Second.Nanoseconds()), &ferr)
	s.handle = nil
	releaseRuntime()
	if err == nil && status != C.WASMTEL_STATUS_OK {
		err = takeError(&ferr)
	}
	return err
}

func (s *embeddedSegment) metricsJSON() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.handle == nil {
		return nil, errSegmentStopped
	}
	var out *C.char
	var cerr C.WasmtelError
	if C.wasmtel_segment_metrics_json(s.handle, &out, &cerr) != C.WASMTEL_STATUS_OK {
		return nil, takeError(&cerr)
	}
	defer C.wasmtel_string_free(out)
	return []byte(C.GoString(out)), nil
}

func validateNodeEmbedded(kind, urn string, configJSON []byte) error {
	kindBytes, urnBytes := []byte(kind), []byte(urn)
	kindPtr, kindLen := cBytes(kindBytes)
	urnPtr, urnLen := cBytes(urnBytes)
	cfgPtr, cfgLen := cBytes(configJSON)
	var cerr C.WasmtelError
	status := C.wasmtel_node_validate(kindPtr, kindLen, urnPtr, urnLen, cfgPtr, cfgLen, &cerr)
	runtime.KeepAlive(kindBytes)
	runtime.KeepAlive(urnBytes)
	runtime.KeepAlive(configJSON)
	if status != C.WASMTEL_STATUS_OK {
		return takeError(&cerr)
	}
	return nil
}

// factoriesJSONEmbedded is the runtime's node factory list (wasmtel_factories_json).
func factoriesJSONEmbedded() ([]byte, error) {
	var out *C.char
	var cerr C.WasmtelError
	if C.wasmtel_factories_json(&out, &cerr) != C.WASMTEL_STATUS_OK {
		return nil, takeError(&cerr)
	}
	defer C.wasmtel_string_free(out)
	return []byte(C.GoString(out)), nil
}
