//go:build unix && !aix

package wasmprocessor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// bridgeDir is one bridge generation's private directory (0700, made by
// this process) for its socket. The lock file in it stays locked (flock)
// while the directory is in use; the kernel drops the lock with the process,
// so a collector killed with SIGKILL leaves a directory whose lock anyone
// can take, and the next start of a bridge removes it.
type bridgeDir struct {
	path string
	lock *os.File
}

const (
	bridgeDirPrefix = "wasmtel-bridge-"
	bridgeLockName  = "lock"
)

// newBridgeDir removes what dead collectors left, then makes and locks a
// directory of its own.
func newBridgeDir(logger *zap.Logger) (*bridgeDir, error) {
	base := os.TempDir()
	for _, dir := range removeDeadBridgeDirs(base) {
		logger.Info("removed the socket directory of a wasmtel bridge whose collector is gone", zap.String("path", dir))
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := os.MkdirTemp(base, bridgeDirPrefix)
		if err != nil {
			return nil, err
		}
		lock, err := lockNewBridgeDir(dir)
		if err == nil {
			return &bridgeDir{path: dir, lock: lock}, nil
		}
		last = err
		_ = os.RemoveAll(dir)
	}
	return nil, last
}

// lockNewBridgeDir creates and locks dir's lock file. Another collector's
// sweep may open it in between, lock it and remove dir: then this lock is
// refused, or the file is gone once it is granted, and dir is not used.
func lockNewBridgeDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, bridgeLockName)
	// O_CLOEXEC (os.OpenFile's default): the child does not hold the lock,
	// so a collector that died leaves it free even while its child lingers.
	lock, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	held, err1 := lock.Stat()
	named, err2 := os.Lstat(path)
	if err1 != nil || err2 != nil || !os.SameFile(held, named) {
		_ = lock.Close()
		return nil, fmt.Errorf("%s was removed as it was locked", path)
	}
	return lock, nil
}

// removeDeadBridgeDirs removes every bridge directory in base that is this
// user's, a real directory, and whose lock is free: its collector is dead.
// Another user's directory, a symlink, or one without a lock file (being
// made, or left by an older version) is left alone.
func removeDeadBridgeDirs(base string) (removed []string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	for _, entry := range entries {
		if !strings.HasPrefix(entry.Name(), bridgeDirPrefix) {
			continue
		}
		dir := filepath.Join(base, entry.Name())
		if removeIfDead(dir) {
			removed = append(removed, dir)
		}
	}
	return removed
}

func removeIfDead(dir string) bool {
	info, err := os.Lstat(dir)
	if err != nil || !info.IsDir() || ownerOf(info) != os.Geteuid() {
		return false
	}
	// O_NONBLOCK: a FIFO planted as the lock must not hang the start.
	lock, err := os.OpenFile(filepath.Join(dir, bridgeLockName), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer lock.Close()
	if held, err := lock.Stat(); err != nil || !held.Mode().IsRegular() {
		return false
	}
	if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false // its collector is alive
	}
	// RemoveAll unlinks symlinks, never follows them. The lock is held
	// until the directory is gone: a collector making it right now sees so.
	return os.RemoveAll(dir) == nil
}

// remove removes the directory, then drops its lock.
func (d *bridgeDir) remove() {
	if d == nil {
		return
	}
	_ = os.RemoveAll(d.path)
	_ = d.lock.Close()
}
