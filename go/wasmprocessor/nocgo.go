//go:build !cgo

package wasmprocessor

// The wasm processor links the Rust runtime through cgo. This build has cgo
// off (the collector builder's default): set CGO_ENABLED=1, or
// `dist.cgo_enabled: true` in the builder manifest.
var _ = wasmprocessor_needs_cgo_set_CGO_ENABLED_1
