package wasmprocessor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// childPID is the running bridge child's process ID (0: none).
func childPID() int {
	children.Lock()
	defer children.Unlock()
	for _, c := range children.byProgram {
		c.mu.Lock()
		cmd := c.cmd
		c.mu.Unlock()
		if cmd != nil {
			return cmd.Process.Pid
		}
	}
	return 0
}

// alive reports whether a process exists (and is not a zombie).
func alive(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	return err == nil && !strings.Contains(string(status), "State:\tZ")
}

func waitUntil(t *testing.T, timeout time.Duration, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func subprocessConfig(t *testing.T, crate string, config map[string]any) *Config {
	return &Config{Mode: modeSubprocess, Plugin: map[string]any{"component": componentPath(t, crate), "config": config}}
}

func TestSubprocessChildIsSharedAndStopsWithTheLastProcessor(t *testing.T) {
	a := start(t, subprocessConfig(t, "wasmtel-test-identity", map[string]any{"mode": "replace"}))
	pid := childPID()
	b := start(t, subprocessConfig(t, "wasmtel-redact", map[string]any{"keys": []any{"user.email"}}))
	if got := childPID(); got != pid || pid == 0 {
		t.Fatalf("two processors, two children: %d and %d", pid, got)
	}
	if err := b.traces.ConsumeTraces(context.Background(), traces("GET /")); err != nil {
		t.Fatal(err)
	}
	a.shutdown(t)
	if !alive(pid) {
		t.Fatal("the child stopped while a processor still uses it")
	}
	b.shutdown(t)
	waitUntil(t, 10*time.Second, "the child to exit after the last Shutdown", func() bool { return !alive(pid) })
}

func TestSubprocessChildIsRestartedAndEveryBatchIsAccountedFor(t *testing.T) {
	h := start(t, subprocessConfig(t, "wasmtel-test-identity", map[string]any{"mode": "replace"}))
	pid := childPID()
	ctx := context.Background()
	var mu sync.Mutex
	var sent, failed int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := h.traces.ConsumeTraces(ctx, traces("GET /load"))
				mu.Lock()
				sent++
				if err != nil {
					failed++
					if consumererror.IsPermanent(err) {
						t.Errorf("a dead child is a retryable failure, got permanent: %v", err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "a new child", func() bool { p := childPID(); return p != 0 && p != pid })
	waitUntil(t, 20*time.Second, "batches to succeed again", func() bool {
		return h.traces.ConsumeTraces(ctx, traces("GET /after")) == nil
	})
	close(stop)
	wg.Wait()
	exported := h.tsink.SpanCount() - 1 // the probe that succeeded above
	if exported+failed != sent {
		t.Fatalf("sent %d = exported %d + refused %d does not add up", sent, exported, failed)
	}
	if failed == 0 {
		t.Log("no batch was in flight when the child died")
	}
}

// TestHelperCollectorProcess is not a test: the test below runs it in a
// process of its own, as a stand-in collector that it then kills.
func TestHelperCollectorProcess(t *testing.T) {
	if os.Getenv("WASMTEL_HELPER_COLLECTOR") == "" {
		t.Skip("run by TestSubprocessChildDiesWithTheCollector")
	}
	start(t, subprocessConfig(t, "wasmtel-test-identity", map[string]any{"mode": "unchanged"}))
	fmt.Printf("child %d\n", childPID())
	time.Sleep(time.Minute)
}

func TestSubprocessChildDiesWithTheCollector(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperCollectorProcess$", "-test.v")
	helper.Env = append(os.Environ(), "WASMTEL_HELPER_COLLECTOR=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = helper.Process.Kill(); _ = helper.Wait() }()
	var pid int
	buf := make([]byte, 4096)
	var seen strings.Builder
	deadline := time.Now().Add(60 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		for _, line := range strings.Split(seen.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "child "); ok {
				pid, _ = strconv.Atoi(strings.TrimSpace(rest))
			}
		}
		if err != nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("the helper collector did not start a child:\n%s", seen.String())
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitUntil(t, 10*time.Second, "the orphaned child to exit", func() bool { return !alive(pid) })
}

func TestCancellingTheContextInterruptsTheGuestInTheChild(t *testing.T) {
	h := start(t, &Config{Mode: modeSubprocess, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-hostile"), "on_error": "pass", "limits": map[string]any{"timeout": durationSetting(30 * time.Second)}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- h.traces.ConsumeTraces(ctx, traces("loop")) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled batch was forwarded (under pass)")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling did not end the call")
	}
	if h.tsink.SpanCount() != 0 {
		t.Fatal("a cancelled batch reached the next consumer")
	}
	// The guest was interrupted, not left looping: the next batch is served at once.
	if err := h.traces.ConsumeTraces(context.Background(), traces("GET /")); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Fatalf("the looping guest held its instance for %v", elapsed)
	}
}

func TestGuestAndPolicyLogsReachTheCollectorLogger(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		core, logs := observer.New(zap.DebugLevel)
		set := settings()
		set.Logger = zap.New(core)
		h := startWith(t, set, &Config{Mode: mode, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-hostile"), "on_error": "pass", "limits": map[string]any{"timeout": durationSetting(time.Second)}}})
		if err := h.traces.ConsumeTraces(context.Background(), traces("panic")); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, "the guest's panic message and the on_error warning in the collector log", func() bool {
			return logs.FilterMessageSnippet("panicked on purpose").Len() > 0 &&
				logs.FilterMessageSnippet("on_error: pass").FilterLevelExact(zap.WarnLevel).Len() > 0
		})
	})
}

func TestSubprocessModeWithoutABinaryFailsClearly(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	set := settings()
	_, err := NewFactory().CreateTraces(context.Background(), set, &Config{Mode: modeSubprocess, Plugin: map[string]any{"component": componentPath(t, "wasmtel-test-identity")}}, consumertest.NewNop())
	if err == nil || !strings.Contains(err.Error(), "runtime_binary") || !strings.Contains(err.Error(), set.ID.String()) {
		t.Fatalf("want an error naming the processor and runtime_binary, got %v", err)
	}
}
