//go:build !cgo

package wasmprocessor

import "time"

// The wasm processor links the Rust runtime through cgo. This build has cgo
// off (the collector builder's default): set CGO_ENABLED=1, or
// `dist.cgo_enabled: true` in the builder manifest. The stubs below keep that
// the only compile error.
var _ = wasmprocessor_needs_cgo_set_CGO_ENABLED_1

type plugin struct{}

func loadPlugin(string, string, []byte, []byte) (*plugin, error) { return nil, errPluginClosed }
func (*plugin) process(signal, []byte, time.Duration) (outcome, []byte, error) {
	return outcomeUnchanged, nil, errPluginClosed
}
func (*plugin) metricsJSON() ([]byte, error) { return nil, errPluginClosed }
func (*plugin) free()                        {}
func liveHandles() uint64                    { return 0 }
