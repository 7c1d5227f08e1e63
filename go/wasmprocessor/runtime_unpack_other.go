//go:build !unix

package wasmprocessor

import "errors"

// Owners and modes cannot be checked here the Unix way: no unpacking.
func unpackRuntime([]byte, string) (*runtimeProgram, error) {
	return nil, errors.New("the embedded wasmtel runtime can be run only on Unix systems: set runtime_binary")
}
