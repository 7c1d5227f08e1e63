package wasmprocessor

// Which wasmtel binary subprocess mode runs.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// runtimeBinary is the configured binary, else the one built into this
// collector (extracted once), else `wasmtel-bridge` or `wasmtel` on PATH.
// Either runs as `<binary> bridge --socket PATH --watch-stdin`.
func runtimeBinary(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("runtime_binary: %w", err)
		}
		return configured, nil
	}
	if len(embeddedRuntime) > 0 {
		return extractEmbeddedRuntime()
	}
	for _, name := range []string{"wasmtel-bridge", "wasmtel"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("subprocess mode needs the wasmtel-bridge (or wasmtel) binary: set runtime_binary, put it on PATH, " +
		"or build the collector with it inside (scripts/build-distribution.sh nocgo, -tags wasmtel_embed_runtime)")
}

var extracted struct {
	sync.Once
	path string
	err  error
}

// extractEmbeddedRuntime writes the embedded binary to a private directory
// (0700, under the user cache directory) named by its digest, and checks the
// file's digest before handing out its path, so nothing else can have put
// what is run there.
func extractEmbeddedRuntime() (string, error) {
	extracted.Do(func() {
		extracted.path, extracted.err = extract(embeddedRuntime, strings.TrimSpace(embeddedRuntimeDigest))
	})
	return extracted.path, extracted.err
}

func extract(binary []byte, want string) (string, error) {
	if got := sha256Hex(binary); got != want {
		return "", fmt.Errorf("the embedded wasmtel runtime is corrupt: digest %s, expected %s", got, want)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "wasmtel", "bin", want[:16])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("extracting the wasmtel runtime: %w", err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("extracting the wasmtel runtime: %s must be private (0700)", dir)
	}
	path := filepath.Join(dir, "wasmtel-bridge")
	if existing, err := os.ReadFile(path); err == nil && sha256Hex(existing) == want {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, "wasmtel-*")
	if err != nil {
		return "", fmt.Errorf("extracting the wasmtel runtime: %w", err)
	}
	_, werr := tmp.Write(binary)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o700), os.Rename(tmp.Name(), path)); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("extracting the wasmtel runtime: %w", err)
	}
	written, err := os.ReadFile(path)
	if err != nil || sha256Hex(written) != want {
		return "", fmt.Errorf("extracting the wasmtel runtime: %s does not hold what was written", path)
	}
	return path, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
