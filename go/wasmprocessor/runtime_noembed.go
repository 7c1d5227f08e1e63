//go:build !wasmtel_embed_runtime

package wasmprocessor

// No wasmtel binary built in: subprocess mode uses runtime_binary or PATH.
var (
	embeddedRuntime       []byte
	embeddedRuntimeDigest string
)
