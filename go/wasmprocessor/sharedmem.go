package wasmprocessor

// Shared-memory slots of subprocess mode: a batch's bytes travel to the
// bridge child, and a `replaced` output back, in a memfd both processes map
// (passed at spawn), instead of in gRPC DATA frames. The RPC carries the
// slot, its size, a ticket and the length. The protocol and its state word
// are described in runtime/bridge/src/shared_memory.rs; in short: this side
// writes the input and sets ticket<<2|busy; the bridge writes an output only
// after moving busy to writing for the same ticket; a call this side gives up
// on is moved from busy to abandoned first, so a late output can never land
// in a slot that already carries the next batch.
//
// Each slot has a connection of its own, which carries only that slot's
// batches, one at a time: the bridge serves every connection on a thread of
// its own and runs a slot's batch on it, without waking other threads.
//
// A batch goes inline instead when no slot is free (more calls in flight
// than slots), when it is larger than maxSlotBytes, or on systems without
// memfds.

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"google.golang.org/grpc"
)

const (
	slotHeaderLen = 64 // the state word, then padding to the payload
	slotBusy      = 1
	slotWriting   = 2
	slotAbandoned = 3
	slotDone      = 0
	// minSlotBytes is a slot's size on first use: a batch of a few
	// thousand spans fits without growing it.
	minSlotBytes = 1 << 20
	// residentSlotBytes is what a slot keeps in memory between batches; the
	// pages a larger batch needed are handed back after it.
	residentSlotBytes = 4 << 20
	// abandonWait bounds the wait for a bridge that is writing the output of
	// a call given up on; a slot still being written after it is retired.
	abandonWait = time.Second
)

// maxSlotBytes is the largest slot (header included); larger batches go
// inline. A variable so tests can send batches both ways.
var maxSlotBytes = 64 << 20

// slotCount is how many batches can be in flight in shared memory at once.
func slotCount() int {
	return min(max(2*runtime.GOMAXPROCS(0), 4), 16)
}

// slotPool is one bridge generation's slots; nil sends every batch inline.
type slotPool struct {
	all []*sharedSlot

	mu sync.Mutex
	// free is a stack: the slot used last, whose pages are warm in the
	// caches of both processes, is used next.
	free   []*sharedSlot
	closed bool

	// Batches sent in a slot and inline, for tests and the operator's debugging.
	inSlot, inline atomic.Int64
}

type sharedSlot struct {
	number int // 1-based, as the bridge numbers --shared-slot-fds
	file   *os.File
	mem    []byte // nil until first used
	ticket uint64
	conn   *grpc.ClientConn // set by connect, before the slot is first taken
}

// newSlotPool makes count slots, or returns nil where there are no memfds.
func newSlotPool(count int) (*slotPool, error) {
	if !sharedMemorySupported {
		return nil, nil
	}
	pool := &slotPool{}
	for i := 1; i <= count; i++ {
		file, err := createSlotFile(fmt.Sprintf("wasmtel-slot-%d", i))
		if err != nil {
			pool.close()
			return nil, fmt.Errorf("shared-memory slot: %w", err)
		}
		slot := &sharedSlot{number: i, file: file}
		pool.all = append(pool.all, slot)
		pool.free = append(pool.free, slot)
	}
	return pool, nil
}

// files are the slots' memfds, for exec.Cmd.ExtraFiles (descriptors 3, 4, …
// in the child).
func (p *slotPool) files() []*os.File {
	if p == nil {
		return nil
	}
	files := make([]*os.File, len(p.all))
	for i, slot := range p.all {
		files[i] = slot.file
	}
	return files
}

// childArgs tell the bridge which descriptors are the slots.
func (p *slotPool) childArgs() []string {
	if p == nil || len(p.all) == 0 {
		return nil
	}
	fds := make([]string, len(p.all))
	for i := range p.all {
		fds[i] = strconv.Itoa(3 + i)
	}
	return []string{"--shared-slot-fds", strings.Join(fds, ",")}
}

// connect gives each slot its connection to the bridge at socket.
func (p *slotPool) connect(socket string) error {
	if p == nil {
		return nil
	}
	for _, slot := range p.all {
		conn, err := dialBridge(socket)
		if err != nil {
			return fmt.Errorf("shared-memory slot %d: %w", slot.number, err)
		}
		// Now, not on the slot's first batch.
		conn.Connect()
		slot.conn = conn
	}
	return nil
}

// put takes a free slot and writes input into it, growing the slot as
// needed; nil when the batch must go inline.
func (p *slotPool) put(request *processRequest, input []byte) *sharedSlot {
	if p == nil || slotHeaderLen+len(input) > maxSlotBytes {
		p.countInline()
		return nil
	}
	slot := p.take()
	if slot == nil {
		p.countInline()
		return nil
	}
	if err := slot.reserve(slotHeaderLen + len(input)); err != nil {
		p.retire(slot)
		p.countInline()
		return nil
	}
	copy(slot.mem[slotHeaderLen:], input)
	slot.ticket++
	atomic.StoreUint64(slot.state(), slot.ticket<<2|slotBusy)
	request.slot, request.slotSize, request.slotTicket, request.slotInputLen =
		uint32(slot.number), uint64(len(slot.mem)), slot.ticket, uint64(len(input))
	p.inSlot.Add(1)
	return slot
}

func (p *slotPool) countInline() {
	if p != nil {
		p.inline.Add(1)
	}
}

// output hands a `replaced` output the bridge wrote into the slot to
// consume, where it lies, then frees the slot. Only after a completed call.
func (p *slotPool) output(slot *sharedSlot, n uint64, consume func([]byte)) error {
	defer p.release(slot)
	if n > uint64(len(slot.mem)-slotHeaderLen) {
		return fmt.Errorf("the wasmtel bridge answered with %d bytes in a slot of %d", n, len(slot.mem))
	}
	consume(slot.mem[slotHeaderLen : slotHeaderLen+int(n)])
	return nil
}

// release frees the slot of a completed call.
func (p *slotPool) release(slot *sharedSlot) {
	if len(slot.mem) > residentSlotBytes {
		slot.shed(residentSlotBytes)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		slot.close()
		return
	}
	p.free = append(p.free, slot)
}

func (p *slotPool) take() *sharedSlot {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return nil
	}
	slot := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return slot
}

// abandon frees the slot of a call this side gave up on (or that failed):
// the bridge must not write its output there any more.
func (p *slotPool) abandon(slot *sharedSlot) {
	state := slot.state()
	if atomic.CompareAndSwapUint64(state, slot.ticket<<2|slotBusy, slot.ticket<<2|slotAbandoned) {
		p.release(slot)
		return
	}
	// The bridge is writing (or wrote) this call's output: let it finish.
	for deadline := time.Now().Add(abandonWait); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		if atomic.LoadUint64(state) == slot.ticket<<2|slotDone {
			p.release(slot)
			return
		}
	}
	p.retire(slot)
}

// retire takes a slot out of use for the rest of this generation.
func (p *slotPool) retire(slot *sharedSlot) {
	slot.close()
}

// close ends the generation: free slots are unmapped now, slots in flight
// when their call ends.
func (p *slotPool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, slot := range p.free {
		slot.close()
	}
	p.free = nil
}

// reserve makes the slot at least n bytes long (rounded up to a power of
// two, at least minSlotBytes) and maps it.
func (s *sharedSlot) reserve(n int) error {
	if n <= len(s.mem) {
		return nil
	}
	size := minSlotBytes
	for size < n {
		size *= 2
	}
	if err := s.file.Truncate(int64(size)); err != nil {
		return err
	}
	mem, err := mapSlot(s.file, size)
	if err != nil {
		return err
	}
	if s.mem != nil {
		unmapSlot(s.mem)
	}
	s.mem = mem
	return nil
}

func (s *sharedSlot) state() *uint64 {
	return (*uint64)(unsafe.Pointer(&s.mem[0]))
}

// shed hands back the pages beyond keep (the file keeps its size).
func (s *sharedSlot) shed(keep int) {
	_ = punchSlot(s.file, int64(keep), int64(len(s.mem)-keep))
}

// close unmaps the slot and closes its file and connection.
func (s *sharedSlot) close() {
	if s.mem != nil {
		unmapSlot(s.mem)
		s.mem = nil
	}
	_ = s.file.Close()
	if s.conn != nil {
		_ = s.conn.Close()
	}
}
