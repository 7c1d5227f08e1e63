package wasmprocessor

import "syscall"

// childProcAttr: the kernel kills the bridge child if the collector dies.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
