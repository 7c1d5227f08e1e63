//go:build !linux

package wasmprocessor

import "os"

// Memfds are Linux's: elsewhere the embedded binary is unpacked.
func sealedRuntime([]byte, string) (*runtimeProgram, error) { return nil, errNoMemfd }

// procFDPath: no /proc/self/fd to execute a descriptor by; the private path is run.
func procFDPath(*os.File) (string, bool) { return "", false }
