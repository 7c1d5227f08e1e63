//go:build !cgo

package wasmprocessor

import "errors"

// Built without cgo (the collector builder's default): no runtime is linked
// in, and `mode: auto` runs plugins in a `wasmtel bridge` child.
const cgoAvailable = false

func loadEmbedded(string, string, []byte, []byte) (pluginHandle, error) {
	return nil, errors.New("mode embedded needs a collector built with cgo (CGO_ENABLED=1, or dist.cgo_enabled: true for the builder); use mode: subprocess or auto")
}

func liveHandles() uint64 { return 0 }

func startEmbeddedSegment([]byte) (segmentHandle, error) {
	return nil, errors.New("embedded segments need a collector built with cgo")
}

func validateNodeEmbedded(string, string, []byte) error {
	return errors.New("embedded validation needs a collector built with cgo")
}
