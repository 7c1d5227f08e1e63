package wasmprocessor

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// childSlots is the running bridge child's shared-memory slots.
func childSlots(t *testing.T) *slotPool {
	t.Helper()
	children.Lock()
	defer children.Unlock()
	for _, c := range children.byProgram {
		if _, slots := c.generation(); slots != nil {
			return slots
		}
	}
	t.Fatal("no bridge child with shared-memory slots")
	return nil
}

// bigTraces is a batch of about n KB: spans of ~1 KB each.
func bigTraces(n int) ptrace.Traces {
	td := traces()
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < n; i++ {
		span := spans.AppendEmpty()
		span.SetName("GET /orders")
		span.Attributes().PutStr("user.email", "ada@example.com")
		span.Attributes().PutStr("padding", strings.Repeat("x", 1000))
	}
	return td
}

func TestSubprocessBatchesTravelInSharedMemoryAndInlineAlike(t *testing.T) {
	h := start(t, subprocessConfig(t, "wasmtel-redact", map[string]any{"keys": []any{"user.email"}, "mask": "<redacted>"}))
	slots := childSlots(t)
	// A small batch, one that grows its slot past the first size, and one
	// whose pages are handed back after it (beyond residentSlotBytes).
	for _, size := range []int{1, 2 << 10, 6 << 10} {
		batch := bigTraces(size)
		var outputs [][]byte
		for _, limit := range []int{maxSlotBytes, 64} {
			func() {
				defer func(previous int) { maxSlotBytes = previous }(maxSlotBytes)
				maxSlotBytes = limit
				before, beforeInline := slots.inSlot.Load(), slots.inline.Load()
				if err := h.traces.ConsumeTraces(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				if limit == 64 && slots.inline.Load() != beforeInline+1 {
					t.Fatalf("%d KB: a batch beyond maxSlotBytes did not go inline", size)
				}
				if limit != 64 && slots.inSlot.Load() != before+1 {
					t.Fatalf("%d KB: the batch did not go in shared memory", size)
				}
			}()
			got := h.tsink.AllTraces()[len(h.tsink.AllTraces())-1]
			span := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			if v, ok := span.Attributes().Get("user.email"); !ok || v.Str() != "<redacted>" {
				t.Fatalf("%d KB: the output is not redacted: %v", size, v.AsRaw())
			}
			encoded, err := tracesMarshaler.MarshalTraces(got)
			if err != nil {
				t.Fatal(err)
			}
			outputs = append(outputs, encoded)
		}
		if !bytes.Equal(outputs[0], outputs[1]) {
			t.Fatalf("%d KB: the output in shared memory differs from the inline one", size)
		}
	}
}

// A slot pool with no child: the bridge's side of the protocol is played by the test.
func testPool(t *testing.T, count int) *slotPool {
	t.Helper()
	pool, err := newSlotPool(count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.close)
	return pool
}

func TestAnAbandonedSlotIsReusedOnlyWhenTheBridgeCannotWriteIntoIt(t *testing.T) {
	pool := testPool(t, 1)
	request := &processRequest{}
	slot := pool.put(request, []byte("batch 1"))
	if slot == nil || request.slot != 1 || request.slotTicket != 1 || request.slotInputLen != 7 {
		t.Fatalf("put: %+v", request)
	}
	// Given up on before the bridge answered: marked abandoned, and free again.
	pool.abandon(slot)
	if got := atomic.LoadUint64(slot.state()); got != 1<<2|slotAbandoned {
		t.Fatalf("state %x", got)
	}
	slot = pool.put(request, []byte("batch 2"))
	if slot == nil || request.slotTicket != 2 {
		t.Fatalf("the abandoned slot is not reused: %+v", request)
	}

	// The bridge claimed the slot for its output just before: abandon waits
	// until it is done writing.
	atomic.StoreUint64(slot.state(), 2<<2|slotWriting)
	go func() {
		time.Sleep(50 * time.Millisecond)
		atomic.StoreUint64(slot.state(), 2<<2|slotDone)
	}()
	started := time.Now()
	pool.abandon(slot)
	if time.Since(started) < 40*time.Millisecond {
		t.Fatal("abandon did not wait for the bridge's write")
	}
	slot = pool.put(request, []byte("batch 3"))
	if slot == nil {
		t.Fatal("the slot is not free after the bridge's write")
	}

	// A write that never ends (a bridge killed mid-write): the slot is
	// retired, and batches go inline.
	atomic.StoreUint64(slot.state(), 3<<2|slotWriting)
	pool.abandon(slot)
	inline := pool.inline.Load()
	if pool.put(request, []byte("batch 4")) != nil || pool.inline.Load() != inline+1 {
		t.Fatal("a retired slot was handed out again")
	}
}

func TestAnOutputLengthBeyondTheSlotIsAnError(t *testing.T) {
	pool := testPool(t, 1)
	slot := pool.put(&processRequest{}, []byte("batch"))
	if err := pool.output(slot, uint64(minSlotBytes), func([]byte) { t.Fatal("consumed") }); err == nil {
		t.Fatal("an output longer than the slot was read")
	}
	if pool.put(&processRequest{}, []byte("next")) == nil {
		t.Fatal("the slot is not free after the refused output")
	}
}

// Each slot has its own connection, served by its own thread in the child:
// a guest looping in one slot holds up no batch in another.
func TestABatchLoopingInOneSlotDelaysNoOtherSlot(t *testing.T) {
	cfg := subprocessConfig(t, "wasmtel-test-hostile", nil)
	cfg.Plugin["on_error"] = "pass"
	cfg.Plugin["limits"] = map[string]any{"timeout": durationSetting(30 * time.Second)}
	h := start(t, cfg)
	slots := childSlots(t)
	before := slots.inSlot.Load()
	ctx, cancel := context.WithCancel(context.Background())
	looped := make(chan error, 1)
	go func() { looped <- h.traces.ConsumeTraces(ctx, traces("loop")) }()
	time.Sleep(200 * time.Millisecond)
	started := time.Now()
	if err := h.traces.ConsumeTraces(context.Background(), traces("GET /")); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(started)
	cancel()
	loopErr := <-looped
	if elapsed > 5*time.Second {
		t.Fatalf("a batch beside a looping guest took %v", elapsed)
	}
	if loopErr == nil {
		t.Fatal("the cancelled looping batch was forwarded")
	}
	if slots.inSlot.Load() != before+2 {
		t.Fatalf("%d batches went in slots, want both", slots.inSlot.Load()-before)
	}
}
