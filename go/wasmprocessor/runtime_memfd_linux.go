package wasmprocessor

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// runtimeSeals make the memfd immutable: no write, no resize, no unsealing.
const runtimeSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealedRuntime copies binary into a memfd, seals it, and verifies the
// sealed bytes: nothing, not even this process, can change them after. It
// runs as /proc/self/fd/N of a read-only descriptor (kernels before 6.11
// refuse to exec a file open for writing, ETXTBSY), kept open for the
// process's life. Failures to make or seal the memfd wrap errNoMemfd.
func sealedRuntime(binary []byte, want string) (*runtimeProgram, error) {
	// MFD_EXEC: where vm.memfd_noexec is set, a memfd is otherwise created
	// without execute bits and sealed so (Linux 6.3+); kernels before 6.3 do
	// not know the flag (EINVAL) and make every memfd executable.
	fd, err := unix.MemfdCreate("wasmtel-bridge", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("wasmtel-bridge", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: memfd_create: %v", errNoMemfd, err)
	}
	writable := os.NewFile(uintptr(fd), "memfd:wasmtel-bridge")
	defer writable.Close()
	if info, err := writable.Stat(); err != nil || info.Mode().Perm()&0o111 == 0 {
		// Not executable here (memfd_noexec policy): unpack instead.
		return nil, fmt.Errorf("%w: the memfd is not executable here (vm.memfd_noexec?)", errNoMemfd)
	}
	if _, err := writable.Write(binary); err != nil {
		return nil, fmt.Errorf("%w: writing the memfd: %v", errNoMemfd, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, runtimeSeals); err != nil {
		return nil, fmt.Errorf("%w: sealing the memfd: %v", errNoMemfd, err)
	}
	// os.OpenFile opens with O_CLOEXEC: no other child inherits it.
	file, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: reopening the memfd read-only: %v", errNoMemfd, err)
	}
	if seals, err := unix.FcntlInt(file.Fd(), unix.F_GET_SEALS, 0); err != nil || seals&runtimeSeals != runtimeSeals {
		_ = file.Close()
		return nil, fmt.Errorf("%w: the reopened memfd is not sealed (seals %#x, %v)", errNoMemfd, seals, err)
	}
	if err := verifyDigest(file, want); err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("the embedded wasmtel runtime in its sealed memfd: %w", err)
	}
	return &runtimeProgram{key: "embedded:" + want, path: fmt.Sprintf("/proc/self/fd/%d", file.Fd()), file: file,
		digest: want, byDescriptor: true}, nil
}

// procFDPath is the path that executes file itself (not whatever its name
// leads to by then), when /proc is there.
func procFDPath(file *os.File) (string, bool) {
	path := fmt.Sprintf("/proc/self/fd/%d", file.Fd())
	opened, err1 := file.Stat()
	named, err2 := os.Stat(path)
	return path, err1 == nil && err2 == nil && os.SameFile(opened, named)
}
