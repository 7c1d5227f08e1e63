//go:build wasmtel_embed_runtime

package wasmprocessor

import _ "embed"

// The wasmtel binary subprocess mode runs, put here (with its digest) by
// scripts/build-distribution.sh; both files are generated, not committed.

//go:embed wasmtel_runtime.bin
var embeddedRuntime []byte

//go:embed wasmtel_runtime.sha256
var embeddedRuntimeDigest string
