//go:build unix && !aix

package wasmprocessor

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// fakeBridgeDir makes what a collector leaves in base: a directory with a
// lock file and a socket nobody serves any more.
func fakeBridgeDir(t *testing.T, base, name string) (dir, lock string) {
	t.Helper()
	dir = filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock = filepath.Join(dir, bridgeLockName)
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "bridge.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	listener.SetUnlinkOnClose(false)
	_ = listener.Close()
	return dir, lock
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// lockHeld tells whether another open file description holds path's lock.
func lockHeld(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err != nil && !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return err != nil
}

func TestDeadCollectorsBridgeDirectoriesAreRemovedAtStart(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	dead, _ := fakeBridgeDir(t, base, "wasmtel-bridge-dead")
	live, liveLock := fakeBridgeDir(t, base, "wasmtel-bridge-live")
	held, err := os.Open(liveLock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Without a lock file: being made, or an older version's. Left alone.
	unlocked := filepath.Join(base, "wasmtel-bridge-nolock")
	if err := os.Mkdir(unlocked, 0o700); err != nil {
		t.Fatal(err)
	}
	// A symlink to a dead-looking directory is neither followed nor removed.
	target, _ := fakeBridgeDir(t, t.TempDir(), "elsewhere")
	link := filepath.Join(base, "wasmtel-bridge-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	other, _ := fakeBridgeDir(t, base, "not-a-bridge")
	var foreign string
	if os.Geteuid() == 0 {
		foreign, _ = fakeBridgeDir(t, base, "wasmtel-bridge-foreign")
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}

	dir, err := newBridgeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if exists(dead) {
		t.Fatal("the dead collector's directory survived the start")
	}
	for _, kept := range []string{live, filepath.Join(live, "bridge.sock"), unlocked, link, filepath.Join(target, bridgeLockName), other, foreign} {
		if kept != "" && !exists(kept) {
			t.Fatalf("%s was removed", kept)
		}
	}
	if info, err := os.Lstat(dir.path); err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 ||
		!strings.HasPrefix(filepath.Base(dir.path), bridgeDirPrefix) || filepath.Dir(dir.path) != base {
		t.Fatalf("the new directory %s: %v, %v", dir.path, info, err)
	}
	if !lockHeld(t, filepath.Join(dir.path, bridgeLockName)) {
		t.Fatal("the new directory's lock is not held")
	}
	// A second start of this collector leaves the first one's directory.
	second, err := newBridgeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !exists(dir.path) {
		t.Fatal("a start removed this collector's live directory")
	}
	second.remove()
	// The lock is not inherited: a child that outlives its collector does
	// not keep the directory alive.
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	_ = dir.lock.Close() // this collector dies, its child lives on
	if !removeIfDead(dir.path) || exists(dir.path) {
		t.Fatal("the directory of a dead collector with a live child was not removed")
	}
}

// TestMain runs the test binary as a collector that makes its bridge
// directory and waits to be killed, when TestBridgeDirOfAKilledCollectorIsRemoved
// starts it so; else the tests.
func TestMain(m *testing.M) {
	if os.Getenv("WASMTEL_HELPER_BRIDGE_DIR") != "" {
		dir, err := newBridgeDir(zap.NewNop())
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("dir " + dir.path + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBridgeDirOfAKilledCollectorIsRemoved(t *testing.T) {
	base := t.TempDir()
	t.Setenv("TMPDIR", base)
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "WASMTEL_HELPER_BRIDGE_DIR=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	var dir string
	for lines := bufio.NewScanner(out); dir == "" && lines.Scan(); {
		dir, _ = strings.CutPrefix(lines.Text(), "dir ")
	}
	if dir == "" || !exists(dir) {
		t.Fatalf("the helper collector made no directory (%q)", dir)
	}
	// Alive, it keeps its directory.
	ours, err := newBridgeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ours.remove()
	if !exists(dir) || !lockHeld(t, filepath.Join(dir, bridgeLockName)) {
		t.Fatal("a live collector's directory was removed or is unlocked")
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	if !exists(dir) {
		t.Fatal("the directory went with the helper: the test proves nothing")
	}
	next, err := newBridgeDir(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer next.remove()
	if exists(dir) {
		t.Fatalf("%s of the killed collector survived the next start", dir)
	}
}
