//go:build cgo && !wasmtel_release

package wasmprocessor

// Links the runtime built by scripts/build.sh: the workspace's one dev
// profile, shared with the Rust tests so nothing is compiled twice.

// #cgo LDFLAGS: ${SRCDIR}/../../target/debug/libwasmtel_ffi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
