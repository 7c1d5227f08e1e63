//go:build !linux

package wasmprocessor

import "syscall"

// childProcAttr: no parent-death signal here; the child exits on EOF of its
// standard input instead.
func childProcAttr() *syscall.SysProcAttr { return nil }
