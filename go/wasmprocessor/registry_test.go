package wasmprocessor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// testRegistry is Debian's docker-registry (the CNCF distribution registry)
// on a free loopback port with its own storage, stopped by stop or cleanup.
type testRegistry struct {
	addr string
	cmd  *exec.Cmd
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	binary, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry is not installed; run scripts/setup-registry.sh")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	dir := t.TempDir()
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", configPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{addr: addr, cmd: cmd}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not start on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *testRegistry) stop() {
	if r.cmd.Process != nil && r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// wasmtelCLI runs the author CLI (built by scripts/build.sh) with its own home.
func wasmtelCLI(t *testing.T, home string, args ...string) string {
	t.Helper()
	binary, err := filepath.Abs(filepath.Join("..", "..", "target", "debug", "wasmtel"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(binary); err != nil {
		t.Fatalf("%s is missing: build it with scripts/build.sh", binary)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "WASMTEL_HOME="+home, "COSIGN_PASSWORD=test")
	cmd.Dir = home
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("wasmtel %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// redactsEmail runs one span through a started harness and checks redact ran.
func redactsEmail(t *testing.T, h *harness) {
	t.Helper()
	if err := h.traces.ConsumeTraces(context.Background(), traces("GET /cart")); err != nil {
		t.Fatal(err)
	}
	all := h.tsink.AllTraces()
	got := all[len(all)-1].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	email, _ := got.Attributes().Get("user.email")
	if email.Str() == "ada@example.com" || email.Str() == "" {
		t.Fatalf("user.email not redacted: %q", email.Str())
	}
}

// TestComponentsByReference: what an author pushed loads in the collector by
// tag, signed under require_signature, by pinned digest with the registry
// down, and by local store name; the registry policy refuses what it must,
// naming the reference and the cause.
func TestComponentsByReference(t *testing.T) {
	registry := startRegistry(t)
	author, deployer := t.TempDir(), t.TempDir()
	redactConfig := map[string]any{"keys": []any{"user.email"}, "action": "hash"}
	tag := "oci://" + registry.addr + "/plugins/redact:1.0.0"
	pinned := wasmtelCLI(t, author, "push", absComponent(t, "wasmtel-redact"), tag)
	if !strings.HasPrefix(pinned, tag+"@sha256:") {
		t.Fatalf("push printed %q, want the pinned reference", pinned)
	}
	store := filepath.Join(deployer, "store")
	policy := map[string]any{"store": store}

	byTag := start(t, &Config{Plugin: map[string]any{"component": tag, "config": redactConfig, "registry": policy}})
	redactsEmail(t, byTag)

	keys := t.TempDir()
	wasmtelCLI(t, keys, "keygen")
	trusted := []string{filepath.Join(keys, "cosign.pub")}
	expectRefused(t, Config{Plugin: map[string]any{"component": pinned, "registry": map[string]any{"store": store, "require_signature": true, "trusted_keys": trusted}}},
		pinned, "signature required")
	wasmtelCLI(t, keys, "sign", pinned, "--key", filepath.Join(keys, "cosign.key"))
	signed := start(t, &Config{Plugin: map[string]any{"component": pinned, "config": redactConfig, "registry": map[string]any{"store": store, "require_signature": true, "trusted_keys": trusted}}})
	redactsEmail(t, signed)

	registry.stop()
	byPin := start(t, &Config{Plugin: map[string]any{"component": pinned, "config": redactConfig, "registry": policy}})
	redactsEmail(t, byPin)
	offline := start(t, &Config{Plugin: map[string]any{"component": tag, "config": redactConfig, "registry": map[string]any{"store": store, "offline": true}}})
	redactsEmail(t, offline)

	// The author's local store name, no registry involved.
	wasmtelCLI(t, author, "push", absComponent(t, "wasmtel-redact"), "redact:dev")
	local := start(t, &Config{Plugin: map[string]any{"component": "redact:dev", "config": redactConfig, "registry": map[string]any{"store": filepath.Join(author, "store")}}})
	redactsEmail(t, local)

	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"unpinned tag, registry down", Config{Plugin: map[string]any{"component": "oci://" + registry.addr + "/plugins/redact:2.0.0", "registry": policy}},
			[]string{"plugins/redact:2.0.0", "unreachable"}},
		{"require_signature without keys", Config{Plugin: map[string]any{"component": pinned, "registry": map[string]any{"store": store, "require_signature": true}}},
			[]string{"trusted_keys is empty"}},
		{"a path under require_signature", Config{Plugin: map[string]any{"component": absComponent(t, "wasmtel-redact"), "registry": map[string]any{"require_signature": true, "trusted_keys": trusted}}},
			[]string{"carries no signature"}},
		{"not in the store", Config{Plugin: map[string]any{"component": "sha256:" + strings.Repeat("ab", 32), "registry": policy}},
			[]string{"sha256:abab", "not in the local store"}},
		{"unparsable reference", Config{Plugin: map[string]any{"component": "ftp://example/redact"}}, []string{"ftp://example/redact", "unsupported scheme"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expectRefused(t, tc.cfg, tc.want...) })
	}
	var stillThere ptrace.Traces = traces("after")
	if err := byPin.traces.ConsumeTraces(context.Background(), stillThere); err != nil {
		t.Fatalf("a loaded plugin stops working after refused loads: %v", err)
	}
}

// expectRefused checks the processor refuses to start on cfg with an error
// mentioning each of want.
func expectRefused(t *testing.T, cfg Config, want ...string) {
	t.Helper()
	_, err := NewFactory().CreateTraces(context.Background(), settings(), &cfg, consumertest.NewNop())
	if err == nil {
		t.Fatalf("the processor started with %s", cfg.component())
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func absComponent(t *testing.T, crate string) string {
	t.Helper()
	path, err := filepath.Abs(componentPath(t, crate))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRegistrySettingsFromCollectorConfig: the `registry:` keys a collector
// config carries reach the runtime's policy with their meaning; unknown keys
// are refused by the runtime's validation.
func TestRegistrySettingsFromCollectorConfig(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	settings := confmap.NewFromStringMap(map[string]any{
		"component": "oci://registry.example/plugins/redact:1.2.0",
		"registry": map[string]any{
			"store":               "/var/lib/otelcol/store",
			"require_signature":   true,
			"trusted_keys":        []any{"/etc/otelcol/cosign.pub"},
			"lock_file":           "/etc/otelcol/wasmtel.lock",
			"offline":             true,
			"insecure_registries": []any{"registry.lab:5000"},
			"timeout":             "2s",
		},
	})
	if err := settings.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, got, err := cfg.loadArguments()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"insecure_registries":["registry.lab:5000"],"lock_file":"/etc/otelcol/wasmtel.lock","offline":true,` +
		`"require_signature":true,"store":"/var/lib/otelcol/store","timeout":"2s","trusted_keys":["/etc/otelcol/cosign.pub"]}`
	if string(got) != want {
		t.Errorf("policy JSON\n got %s\nwant %s", got, want)
	}
	if _, empty, _ := (&Config{Plugin: map[string]any{"component": "a.wasm"}}).loadArguments(); empty != nil {
		t.Errorf("no registry section renders %s, want nothing (runtime defaults)", empty)
	}
	bad := NewFactory().CreateDefaultConfig().(*Config)
	if err := confmap.NewFromStringMap(map[string]any{"component": "a.wasm", "registry": map[string]any{"trusted": []any{"k"}}}).Unmarshal(bad); err != nil {
		t.Fatal(err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "trusted") {
		t.Errorf("unknown registry key: got %v", err)
	}
}
