package wasmprocessor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The embedded runtime in these tests is /bin/echo: an ELF that shows by
// its output that it, and nothing else, ran.
func echoBinary(t *testing.T) []byte {
	t.Helper()
	binary, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Skipf("no /bin/echo to stand in for the runtime: %v", err)
	}
	return binary
}

// withEmbeddedRuntime makes binary (with digest) this test's embedded
// runtime, from a sealed memfd or, with unpacked, from the fallback.
func withEmbeddedRuntime(t *testing.T, binary []byte, digest string, unpacked bool) {
	t.Helper()
	oldBinary, oldDigest, oldForce := embeddedRuntime, embeddedRuntimeDigest, forceUnpackedRuntime
	embeddedRuntime, embeddedRuntimeDigest, forceUnpackedRuntime = binary, digest, unpacked
	resetEmbeddedProgram()
	t.Cleanup(func() {
		resetEmbeddedProgram()
		embeddedRuntime, embeddedRuntimeDigest, forceUnpackedRuntime = oldBinary, oldDigest, oldForce
	})
}

// resetEmbeddedProgram forgets the loaded copy, so the next use loads anew.
func resetEmbeddedProgram() {
	embeddedProgram.Lock()
	defer embeddedProgram.Unlock()
	if p := embeddedProgram.program; p != nil {
		_ = p.file.Close()
		if p.dir != "" {
			_ = os.RemoveAll(p.dir)
		}
	}
	embeddedProgram.program, embeddedProgram.users = nil, 0
}

// runEmbedded loads the embedded program, runs it with words and returns
// its output.
func runEmbedded(t *testing.T, words ...string) string {
	t.Helper()
	program, err := runtimeProgramFor("")
	if err != nil {
		t.Fatal(err)
	}
	defer program.release()
	cmd, err := program.command(nil, words...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %s: %v", program, err)
	}
	return string(out)
}

// fdAccessMode is the O_ACCMODE part of a descriptor's flags.
func fdAccessMode(t *testing.T, fd uintptr) int {
	t.Helper()
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if rest, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(rest), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(flags) & unix.O_ACCMODE
		}
	}
	t.Fatalf("no flags in fdinfo of %d", fd)
	return 0
}

func TestEmbeddedRuntimeRunsFromASealedMemfd(t *testing.T) {
	echo := echoBinary(t)
	withEmbeddedRuntime(t, echo, sha256Hex(echo), false)
	program, err := runtimeProgramFor("")
	if err != nil {
		t.Fatal(err)
	}
	defer program.release()
	if want := fmt.Sprintf("/proc/self/fd/%d", program.file.Fd()); program.path != want || program.dir != "" {
		t.Fatalf("the embedded runtime runs as %q (directory %q), want %q and no directory", program.path, program.dir, want)
	}
	if target, _ := os.Readlink(program.path); !strings.HasPrefix(target, "/memfd:wasmtel-bridge") {
		t.Fatalf("%s is %q, not the memfd", program.path, target)
	}
	seals, err := unix.FcntlInt(program.file.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&runtimeSeals != runtimeSeals {
		t.Fatalf("seals %#x (%v), want %#x", seals, err, runtimeSeals)
	}
	if mode := fdAccessMode(t, program.file.Fd()); mode != unix.O_RDONLY {
		t.Fatalf("the executed descriptor is open with access mode %d, want read-only", mode)
	}
	// The writable descriptor was closed: none of this process's
	// descriptors of a runtime memfd can write.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + entry.Name())
		fd, _ := strconv.Atoi(entry.Name())
		if strings.HasPrefix(target, "/memfd:wasmtel-bridge") && fdAccessMode(t, uintptr(fd)) != unix.O_RDONLY {
			t.Fatalf("descriptor %d of the runtime memfd is writable", fd)
		}
	}
	// Sealed: not even this process can change it.
	if w, err := os.OpenFile(program.path, os.O_WRONLY, 0); err == nil {
		_, err = w.WriteAt([]byte("#!"), 0)
		_ = w.Close()
		if err == nil {
			t.Fatal("wrote into the sealed runtime")
		}
	}
	cmd, err := program.command(nil, "hello", "from", "the", "memfd")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil || string(out) != "hello from the memfd\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// plantRace pre-creates every place older versions unpacked the runtime to
// with a script that leaves marker, and keeps renaming fresh such scripts
// onto them until the returned stop is called (which reports how many).
func plantRace(t *testing.T, digest string, dirs []string, marker string) (stop func() int) {
	t.Helper()
	script := fmt.Sprintf("#!/bin/sh\necho planted >> %s\necho \"$@\"\n", marker)
	var targets []string
	for _, dir := range dirs {
		bin := filepath.Join(dir, "wasmtel", "bin", digest[:16])
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(bin, "wasmtel-bridge")
		if err := os.WriteFile(target, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target)
	}
	var done atomic.Bool
	var renames atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !done.Load(); i++ {
			for _, target := range targets {
				next := fmt.Sprintf("%s.%d", target, i)
				if os.WriteFile(next, []byte(script), 0o755) == nil && os.Rename(next, target) == nil {
					renames.Add(1)
				}
			}
		}
	}()
	return func() int {
		done.Store(true)
		wg.Wait()
		return int(renames.Load())
	}
}

func TestPlantedRuntimeIsNeverRun(t *testing.T) {
	for _, unpacked := range []bool{false, true} {
		t.Run(map[bool]string{false: "memfd", true: "unpacked"}[unpacked], func(t *testing.T) {
			echo := echoBinary(t)
			digest := sha256Hex(echo)
			withEmbeddedRuntime(t, echo, digest, unpacked)
			tmp, cache, home := t.TempDir(), t.TempDir(), t.TempDir()
			t.Setenv("TMPDIR", tmp)
			t.Setenv("XDG_CACHE_HOME", cache)
			t.Setenv("HOME", home)
			marker := filepath.Join(t.TempDir(), "planted-ran")
			stop := plantRace(t, digest, []string{tmp, cache, filepath.Join(home, ".cache")}, marker)
			for i := 0; i < 8; i++ {
				if i%2 == 0 {
					resetEmbeddedProgram() // loaded anew, then started from the loaded copy
				}
				want := fmt.Sprintf("real run %d\n", i)
				if got := runEmbedded(t, "real", "run", strconv.Itoa(i)); got != want {
					t.Fatalf("start %d: got %q, want %q", i, got, want)
				}
			}
			renames := stop()
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a planted runtime ran (%v)", err)
			}
			if renames == 0 {
				t.Fatal("the race never planted anything: the test proved nothing")
			}
			// Nothing of ours is left in the cache directory.
			if left, _ := filepath.Glob(filepath.Join(cache, "wasmtel-runtime-*")); len(left) != 0 {
				t.Fatalf("unpacked copies left on disk: %v", left)
			}
		})
	}
}

func TestUnpackedRuntimeIsVerifiedAtEachStart(t *testing.T) {
	echo := echoBinary(t)
	withEmbeddedRuntime(t, echo, sha256Hex(echo), true)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	program, err := runtimeProgramFor("")
	if err != nil {
		t.Fatal(err)
	}
	defer program.release()
	if !strings.HasPrefix(program.path, "/proc/self/fd/") || fdAccessMode(t, program.file.Fd()) != unix.O_RDONLY {
		t.Fatalf("the unpacked runtime runs as %q, not from its read-only descriptor", program.path)
	}
	// Whoever can still write the file (its owner, or root) changes it after
	// it was verified: the next start refuses it.
	w, err := os.OpenFile(program.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.WriteAt([]byte("#!/bin/sh\n"), 0)
	_ = w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := program.command(nil, "x"); err == nil || !strings.Contains(err.Error(), "refusing to run it") || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("want a refusal naming the digest, got %v", err)
	}
}

func TestUnpackedRuntimeRefusesUnsafeDirectories(t *testing.T) {
	echo := echoBinary(t)
	withEmbeddedRuntime(t, echo, sha256Hex(echo), true)
	root := os.Geteuid() == 0

	private := func(t *testing.T, mode os.FileMode) string {
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	refused := func(t *testing.T, err error, path string, reason string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), reason) {
			t.Fatalf("want an error naming %s and %q, got %v", path, reason, err)
		}
	}

	t.Run("group-writable", func(t *testing.T) {
		dir := private(t, 0o770)
		refused(t, checkPrivateDir(dir), dir, "mode 0770, not 0700")
	})
	t.Run("symlink", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(private(t, 0o700), link); err != nil {
			t.Fatal(err)
		}
		refused(t, checkPrivateDir(link), link, "not a directory")
	})
	t.Run("foreign-owner", func(t *testing.T) {
		if !root {
			t.Skip("giving a directory away needs root")
		}
		dir := private(t, 0o700)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		refused(t, checkPrivateDir(dir), dir, "owned by uid 65534")
	})
	t.Run("world-writable-ancestor", func(t *testing.T) {
		open := private(t, 0o777)
		t.Setenv("XDG_CACHE_HOME", filepath.Join(open, "cache"))
		_, err := runtimeProgramFor("")
		refused(t, err, open, "writable by group or others (mode 0777) and not sticky")
	})
	t.Run("foreign-ancestor", func(t *testing.T) {
		if !root {
			t.Skip("giving a directory away needs root")
		}
		foreign := private(t, 0o755)
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		t.Setenv("XDG_CACHE_HOME", filepath.Join(foreign, "cache"))
		if err := os.Mkdir(filepath.Join(foreign, "cache"), 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := runtimeProgramFor("")
		refused(t, err, foreign, "owned by uid 65534")
	})
	t.Run("sticky-ancestor-is-fine", func(t *testing.T) {
		shared := private(t, 0o777|os.ModeSticky)
		t.Setenv("XDG_CACHE_HOME", filepath.Join(shared, "cache"))
		if got := runEmbedded(t, "ok"); got != "ok\n" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestEmbeddedRuntimeWithAWrongDigestIsRefused(t *testing.T) {
	echo := echoBinary(t)
	for _, unpacked := range []bool{false, true} {
		withEmbeddedRuntime(t, echo, sha256Hex([]byte("another binary")), unpacked)
		_, err := runtimeProgramFor("")
		if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "expected "+sha256Hex([]byte("another binary"))) {
			t.Fatalf("unpacked=%v: want the corrupt-digest error, got %v", unpacked, err)
		}
		withEmbeddedRuntime(t, echo, "not-a-digest", unpacked)
		if _, err := runtimeProgramFor(""); err == nil || !strings.Contains(err.Error(), "no valid digest") {
			t.Fatalf("unpacked=%v: want the invalid-digest error, got %v", unpacked, err)
		}
	}
}

func TestEmbeddedRuntimeStartsWithoutHomeOrCacheDirectory(t *testing.T) {
	echo := echoBinary(t)
	for _, unpacked := range []bool{false, true} {
		withEmbeddedRuntime(t, echo, sha256Hex(echo), unpacked)
		t.Setenv("TMPDIR", t.TempDir())
		for _, name := range []string{"HOME", "XDG_CACHE_HOME"} {
			t.Setenv(name, "")
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
		if got := runEmbedded(t, "no", "home"); got != "no home\n" {
			t.Fatalf("unpacked=%v: got %q", unpacked, got)
		}
	}
}

// The child's descriptors 3, 4, … are the extra files (the bridge's shared
// memory slots): the copy's own number in this process falls among them
// here, and the verified copy must still be what runs, on both paths.
func TestEmbeddedRuntimeRunsBesideManyExtraFiles(t *testing.T) {
	for _, unpacked := range []bool{false, true} {
		echo := echoBinary(t)
		withEmbeddedRuntime(t, echo, sha256Hex(echo), unpacked)
		program, err := runtimeProgramFor("")
		if err != nil {
			t.Fatal(err)
		}
		number := int(program.file.Fd())
		extra := make([]*os.File, number+2)
		for i := range extra {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			extra[i] = f
		}
		if 3+len(extra) <= number || number < 3 {
			t.Fatalf("descriptor %d is not among the child's 3..%d", number, 2+len(extra))
		}
		cmd, err := program.command(extra, "beside", "the", "slots")
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.Output()
		if err != nil || string(out) != "beside the slots\n" {
			t.Fatalf("unpacked=%v: got %q, %v", unpacked, out, err)
		}
		program.release()
	}
}
