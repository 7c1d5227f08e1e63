//go:build cgo && wasmtel_release

package wasmprocessor

// With -tags wasmtel_release: links an optimised runtime
// (`cargo build --release -p wasmtel-ffi`), as benchmarks and production builds should.

// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libwasmtel_ffi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
