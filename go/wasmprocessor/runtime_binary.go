package wasmprocessor

// Which wasmtel binary subprocess mode runs, and how it is run.
//
// The binary built into the collector is run from what was verified, never
// from a path another user could have prepared: on Linux from a sealed memfd
// (no file on disk at all), else from a file written by this process into a
// directory it has just created and checked. Its digest is checked, by
// reading the descriptor that is executed, when it is loaded and again at
// each start of a child.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// runtimeProgram is the binary a bridge child runs.
type runtimeProgram struct {
	// key names the program: processors whose program has the same key
	// share one child.
	key string
	// path is what execve gets: the operator's binary (runtime_binary or
	// PATH), or the verified copy of the embedded one as /proc/self/fd/N (its
	// private path where there is no /proc).
	path string
	// The embedded binary only (nil for an operator's binary): the verified
	// copy, read-only, kept open for as long as the program is in use.
	file   *os.File
	digest string
	// byDescriptor: the child executes file itself through /proc/self/fd.
	byDescriptor bool
	// dir is the private directory the copy was unpacked into while it must
	// stay there (no memfd and no /proc); removed with the program's last user.
	dir string
}

// runtimeProgramFor is the configured binary, else the one built into this
// collector, else `wasmtel-bridge` or `wasmtel` on PATH; either runs as
// `<binary> bridge --socket PATH --watch-stdin`. A configured or PATH binary
// is the operator's choice and is run by its path, as it is when the child
// starts; only the embedded one is verified. The caller releases the program.
func runtimeProgramFor(configured string) (*runtimeProgram, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return nil, fmt.Errorf("runtime_binary: %w", err)
		}
		return &runtimeProgram{key: configured, path: configured}, nil
	}
	if len(embeddedRuntime) > 0 {
		return acquireEmbeddedRuntime()
	}
	for _, name := range []string{"wasmtel-bridge", "wasmtel"} {
		if path, err := exec.LookPath(name); err == nil {
			return &runtimeProgram{key: path, path: path}, nil
		}
	}
	return nil, errors.New("subprocess mode needs the wasmtel-bridge (or wasmtel) binary: set runtime_binary, put it on PATH, " +
		"or build the collector with it inside (scripts/build-distribution.sh nocgo, -tags wasmtel_embed_runtime)")
}

func (p *runtimeProgram) String() string {
	if p.file == nil {
		return p.path
	}
	return "the embedded wasmtel runtime (sha256 " + p.digest[:16] + "…, run as " + p.path + ")"
}

// command is the command that runs the program with args, handing the
// child extraFiles as descriptors 3, 4, …. The embedded program's digest is
// checked first, from the descriptor that is executed: what runs is what was
// verified, at the point of use.
func (p *runtimeProgram) command(extraFiles []*os.File, args ...string) (*exec.Cmd, error) {
	if p.file != nil {
		if err := verifyDigest(p.file, p.digest); err != nil {
			return nil, fmt.Errorf("%s: refusing to run it: %w", p, err)
		}
	}
	cmd := exec.Command(p.path, args...)
	cmd.ExtraFiles = extraFiles
	if p.byDescriptor {
		// The child's descriptors from 3 on are overwritten with extraFiles
		// before execve, and this process's number for the copy may be one
		// of them: hand the copy over as the last extra file and execute
		// that number instead.
		cmd.ExtraFiles = append(slices.Clone(extraFiles), p.file)
		cmd.Path = fmt.Sprintf("/proc/self/fd/%d", 3+len(extraFiles))
	}
	if p.file != nil {
		// Not /proc/self/fd/N in ps and in the bridge's own messages.
		cmd.Args[0] = "wasmtel-bridge"
	}
	return cmd, nil
}

// embeddedProgram is the verified copy of the embedded binary, shared by
// every child; a memfd lives as long as the process, an unpacked directory
// goes with the last user.
var embeddedProgram struct {
	sync.Mutex
	program *runtimeProgram
	users   int
}

// forceUnpackedRuntime skips the memfd, for tests of the fallback.
var forceUnpackedRuntime bool

func acquireEmbeddedRuntime() (*runtimeProgram, error) {
	embeddedProgram.Lock()
	defer embeddedProgram.Unlock()
	if embeddedProgram.program == nil {
		p, err := loadRuntime(embeddedRuntime, strings.TrimSpace(embeddedRuntimeDigest))
		if err != nil {
			return nil, err
		}
		embeddedProgram.program = p
	}
	embeddedProgram.users++
	return embeddedProgram.program, nil
}

// release drops a user of the program: the last user of an unpacked copy
// removes its directory.
func (p *runtimeProgram) release() {
	if p == nil || p.file == nil {
		return
	}
	embeddedProgram.Lock()
	defer embeddedProgram.Unlock()
	if embeddedProgram.program != p {
		return
	}
	embeddedProgram.users--
	if embeddedProgram.users > 0 || p.dir == "" {
		return
	}
	embeddedProgram.program = nil
	_ = p.file.Close()
	_ = os.RemoveAll(p.dir)
}

// errNoMemfd marks a memfd that could not be made (not Linux, or refused,
// e.g. by seccomp): the binary is unpacked instead.
var errNoMemfd = errors.New("no sealed memfd")

// loadRuntime makes the verified copy of binary, whose sha256 must be want.
func loadRuntime(binary []byte, want string) (*runtimeProgram, error) {
	if len(want) != sha256.Size*2 {
		return nil, fmt.Errorf("the embedded wasmtel runtime has no valid digest (%q): rebuild the collector", want)
	}
	if got := sha256Hex(binary); got != want {
		return nil, fmt.Errorf("the embedded wasmtel runtime is corrupt: digest %s, expected %s", got, want)
	}
	var memfdErr error
	if !forceUnpackedRuntime {
		p, err := sealedRuntime(binary, want)
		if err == nil || !errors.Is(err, errNoMemfd) {
			return p, err
		}
		memfdErr = err
	}
	p, err := unpackRuntime(binary, want)
	if err != nil {
		if memfdErr != nil {
			return nil, fmt.Errorf("%w (and %v)", err, memfdErr)
		}
		return nil, err
	}
	return p, nil
}

// verifyDigest reads file from its start, by position (the offset is shared
// with no one), and compares its sha256 with want.
func verifyDigest(file *os.File, want string) error {
	hash := sha256.New()
	if _, err := io.Copy(hash, io.NewSectionReader(file, 0, math.MaxInt64)); err != nil {
		return fmt.Errorf("reading it back: %w", err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != want {
		return fmt.Errorf("digest %s, expected %s", got, want)
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
