package wasmprocessor

// Subprocess mode: the plugins run in a `wasmtel bridge` child serving a
// unix socket in a private directory; every wasm processor of the collector
// is its client, each plugin loaded there once. The child dies with the
// collector (PR_SET_PDEATHSIG where there is one, and EOF on its stdin, a
// pipe only this process holds), stops with the last processor's Shutdown,
// and is restarted with backoff when it crashes; batches in flight then fail
// as retryable errors, never silently.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	// childStartTimeout bounds the wait for the child's health check to say SERVING.
	childStartTimeout = 20 * time.Second
	// childStopTimeout is how long Shutdown waits after SIGTERM before SIGKILL.
	childStopTimeout  = 5 * time.Second
	maxRestartBackoff = 10 * time.Second
	// socketBufferSize is the client's read and write buffer on the socket.
	socketBufferSize = 1 << 20
)

// children holds the one bridge child per runtime program.
var children struct {
	sync.Mutex
	byProgram map[string]*child
}

type child struct {
	program *runtimeProgram
	logger  *zap.Logger

	mu       sync.Mutex
	users    int
	stopping bool
	// The current generation; nil while (re)starting.
	conn   *grpc.ClientConn
	slots  *slotPool
	cmd    *exec.Cmd
	stdin  io.Closer
	dir    *bridgeDir
	exited chan struct{}
	// Plugins and segments to load again after a restart.
	plugins map[reloadable]struct{}
}

// acquireChild returns the running child of program, starting it if
// needed. It takes over the caller's hold on program: a new child keeps it
// until it stops; otherwise it is released at once.
func acquireChild(program *runtimeProgram, logger *zap.Logger) (*child, error) {
	children.Lock()
	defer children.Unlock()
	if children.byProgram == nil {
		children.byProgram = map[string]*child{}
	}
	c := children.byProgram[program.key]
	if c == nil {
		c = &child{program: program, logger: logger, plugins: map[reloadable]struct{}{}}
		if err := c.start(); err != nil {
			program.release()
			return nil, err
		}
		children.byProgram[program.key] = c
	} else {
		program.release()
	}
	c.mu.Lock()
	c.users++
	c.mu.Unlock()
	return c, nil
}

// release stops the child with its last user: SIGTERM, then SIGKILL.
func (c *child) release() {
	children.Lock()
	defer children.Unlock()
	c.mu.Lock()
	c.users--
	if c.users > 0 {
		c.mu.Unlock()
		return
	}
	c.stopping = true
	cmd, exited, conn, slots, stdin, dir := c.cmd, c.exited, c.conn, c.slots, c.stdin, c.dir
	c.mu.Unlock()
	delete(children.byProgram, c.program.key)
	if conn != nil {
		_ = conn.Close()
	}
	slots.close()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(childStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if stdin != nil {
		_ = stdin.Close()
	}
	dir.remove()
	c.program.release()
}

// start runs a new generation and waits until it serves.
func (c *child) start() error {
	dir, err := newBridgeDir(c.logger)
	if err != nil {
		return fmt.Errorf("wasmtel bridge: private socket directory: %w", err)
	}
	socket := filepath.Join(dir.path, "bridge.sock")
	slots, err := newSlotPool(slotCount())
	if err != nil {
		// Slower, not broken: every batch goes inline.
		c.logger.Warn("wasmtel bridge: no shared memory; batches go over the socket", zap.Error(err))
	}
	cleanUp := func() {
		slots.close()
		dir.remove()
	}
	args := append([]string{"bridge", "--socket", socket, "--watch-stdin"}, slots.childArgs()...)
	cmd, err := c.program.command(slots.files(), args...)
	if err != nil {
		cleanUp()
		return fmt.Errorf("wasmtel bridge: %w", err)
	}
	cmd.SysProcAttr = childProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cleanUp()
		return fmt.Errorf("wasmtel bridge: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cleanUp()
		return fmt.Errorf("wasmtel bridge: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cleanUp()
		return fmt.Errorf("wasmtel bridge: cannot run %s: %w", c.program, err)
	}
	tail := &lineTail{}
	logsDone, exited := make(chan struct{}), make(chan struct{})
	go func() {
		c.forwardLogs(stderr, tail)
		close(logsDone)
	}()
	go func() {
		// Wait closes the stderr pipe: only once every line was read.
		<-logsDone
		_ = cmd.Wait()
		close(exited)
	}()
	conn, err := dialBridge(socket)
	if err == nil {
		err = waitServing(conn, exited)
	}
	if err == nil {
		err = slots.connect(socket)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		if conn != nil {
			_ = conn.Close()
		}
		cleanUp()
		return fmt.Errorf("wasmtel bridge (%s) did not start: %w; its last output: %s", c.program, err, tail.String())
	}
	c.mu.Lock()
	if c.stopping {
		// Released while this generation started: it must not outlive its users.
		c.mu.Unlock()
		_ = cmd.Process.Kill()
		<-exited
		_ = conn.Close()
		cleanUp()
		return errors.New("wasmtel bridge: stopped while starting")
	}
	c.conn, c.slots, c.cmd, c.stdin, c.dir, c.exited = conn, slots, cmd, stdin, dir, exited
	c.mu.Unlock()
	go c.supervise(cmd, exited)
	return nil
}

// dialBridge opens a connection to the bridge's socket. Large windows: a
// batch of many MiB crosses without flow-control round trips (matches the
// bridge's HTTP2_WINDOW); large buffers: in a few writes and reads.
func dialBridge(socket string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<20), grpc.WithInitialConnWindowSize(64<<20),
		grpc.WithWriteBufferSize(socketBufferSize), grpc.WithReadBufferSize(socketBufferSize),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)))
}

// waitServing polls the health service until SERVING, the child exits, or
// the start-up timeout passes.
func waitServing(conn *grpc.ClientConn, exited <-chan struct{}) error {
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(childStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		response, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && response.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last = err
		select {
		case <-exited:
			return errors.New("it exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not serving within %v (%v)", childStartTimeout, last)
}

// supervise restarts the child when it dies on its own, with backoff, and
// loads every plugin into the new generation.
func (c *child) supervise(cmd *exec.Cmd, exited <-chan struct{}) {
	<-exited
	c.mu.Lock()
	if c.stopping || c.cmd != cmd {
		c.mu.Unlock()
		return
	}
	oldConn, oldSlots, oldDir := c.conn, c.slots, c.dir
	c.conn, c.slots, c.cmd, c.dir = nil, nil, nil, nil
	plugins := make([]reloadable, 0, len(c.plugins))
	for p := range c.plugins {
		plugins = append(plugins, p)
	}
	c.mu.Unlock()
	// Not under c.mu: a call holds p.mu while it reads the generation
	// (p.mu, then c.mu), so taking them the other way round here deadlocks.
	// The new generation starts only below, so no call meets it with an old ID.
	for _, p := range plugins {
		p.forget()
	}
	if oldConn != nil {
		_ = oldConn.Close()
	}
	oldSlots.close()
	oldDir.remove()
	c.logger.Error("the wasmtel bridge exited; restarting it", zap.String("status", cmd.ProcessState.String()))
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, maxRestartBackoff) {
		time.Sleep(backoff)
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return
		}
		if err := c.start(); err != nil {
			c.logger.Error("restarting the wasmtel bridge failed", zap.Error(err), zap.Duration("retry_in", backoff*2))
			continue
		}
		for _, p := range plugins {
			if err := p.reload(); err != nil {
				c.logger.Error("reloading into the restarted wasmtel bridge", zap.String("component", p.componentID()), zap.Error(err))
			}
		}
		c.logger.Info("the wasmtel bridge is back", zap.Int("plugins", len(plugins)))
		return
	}
}

func (c *child) connection() *grpc.ClientConn {
	conn, _ := c.generation()
	return conn
}

// generation is the running child's connection and shared-memory slots.
func (c *child) generation() (*grpc.ClientConn, *slotPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn, c.slots
}

// forwardLogs hands each of the child's JSON log lines to the logger of the
// processor it concerns; other output (a crash message) is logged as is.
func (c *child) forwardLogs(stderr io.Reader, tail *lineTail) {
	scanner := bufio.NewScanner(stderr)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		tail.add(line)
		var record runtimeLogRecord
		if json.Unmarshal([]byte(line), &record) != nil {
			c.logger.Warn(line, zap.String("source", "wasmtel bridge"))
			continue
		}
		logRuntimeRecord(record)
	}
}

// lineTail keeps the child's last lines for start-up errors.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *lineTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > 5 {
		t.lines = t.lines[1:]
	}
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(none)"
	}
	return strings.Join(t.lines, " | ")
}

// reloadable is what the child holds for its users and loads again into a
// new generation: plugins and segments.
type reloadable interface {
	// reload loads it into the current generation.
	reload() error
	// forget marks it as not loaded (its child died).
	forget()
	// componentID names it in logs.
	componentID() string
}

// remoteHandle is what one user holds in the child (a plugin, a segment):
// its ID in the child's current generation.
type remoteHandle struct {
	child *child

	mu     sync.RWMutex
	id     uint64 // 0 while the child restarts
	closed bool
}

func (h *remoteHandle) setID(id uint64) {
	h.mu.Lock()
	h.id = id
	h.mu.Unlock()
}

// forget marks it as not loaded (its child died).
func (h *remoteHandle) forget() { h.setID(0) }

// current is its ID with the generation it is valid in; closedErr once closed.
func (h *remoteHandle) current(closedErr error) (uint64, *grpc.ClientConn, *slotPool, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return 0, nil, nil, closedErr
	}
	conn, slots := h.child.generation()
	if h.id == 0 || conn == nil {
		return 0, nil, nil, errBridgeRestarting
	}
	return h.id, conn, slots, nil
}

// draining is its ID and connection even once closed, for what the child
// still hands back while it stops it (a replying segment's outputs).
func (h *remoteHandle) draining() (uint64, *grpc.ClientConn, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	conn, _ := h.child.generation()
	if h.id == 0 || conn == nil {
		return 0, nil, errBridgeRestarting
	}
	return h.id, conn, nil
}

// close marks it closed and returns its ID; false when it already was.
func (h *remoteHandle) close() (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, false
	}
	h.closed = true
	return h.id, true
}

// remotePlugin is a plugin loaded in the child.
type remotePlugin struct {
	remoteHandle
	name, reference          string
	pluginJSON, registryJSON []byte
}

func (c *child) load(name, reference string, pluginJSON, registryJSON []byte) (*remotePlugin, error) {
	p := &remotePlugin{remoteHandle: remoteHandle{child: c}, name: name, reference: reference, pluginJSON: pluginJSON, registryJSON: registryJSON}
	if err := p.reload(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.plugins[p] = struct{}{}
	c.mu.Unlock()
	return p, nil
}

// reload loads the plugin into the current generation of the child.
func (p *remotePlugin) reload() error {
	conn := p.child.connection()
	if conn == nil {
		return errBridgeRestarting
	}
	request := &loadRequest{name: p.name, reference: p.reference, pluginConfigJSON: string(p.pluginJSON),
		registryPolicyJSON: string(p.registryJSON)}
	var response loadResponse
	// Loading may pull from a registry and compile: the registry's own timeout bounds it.
	if err := conn.Invoke(context.Background(), bridgeService+"Load", request, &response, useBridgeCodec); err != nil {
		return statusError(err, "")
	}
	p.setID(response.pluginID)
	return nil
}

func (p *remotePlugin) componentID() string { return p.name }

// useBridgeCodec is the call option of every bridge RPC (the health check
// keeps grpc's own protobuf codec).
var useBridgeCodec = grpc.ForceCodecV2(bridgeCodec{})

var errBridgeRestarting = &bridgeError{message: "the wasmtel bridge is restarting; retry"}

func (p *remotePlugin) current() (uint64, *grpc.ClientConn, *slotPool, error) {
	return p.remoteHandle.current(errPluginClosed)
}

// process sends one batch; the context's deadline and cancellation travel
// with the call and bound (or interrupt) the guest in the child.
func (p *remotePlugin) process(ctx context.Context, sig signal, input []byte, consume func([]byte)) (outcome, error) {
	return p.processChain(ctx, sig, input, nil, consume)
}

// processChain sends one batch for p and then (plugins of the same child)
// to run in order, in one call.
func (p *remotePlugin) processChain(ctx context.Context, sig signal, input []byte, then []pluginHandle, consume func([]byte)) (outcome, error) {
	id, conn, slots, err := p.current()
	if err != nil {
		return outcomeUnchanged, err
	}
	request := &processRequest{pluginID: id, signal: sig}
	for _, next := range then {
		member, ok := next.(*remotePlugin)
		if !ok || member.child != p.child {
			return outcomeUnchanged, &bridgeError{permanent: true, message: "a chain's plugins must run in one bridge child"}
		}
		nextID, nextConn, _, err := member.current()
		if err != nil {
			return outcomeUnchanged, err
		}
		if nextConn != conn {
			// The child restarted between the two reads: IDs of two generations.
			return outcomeUnchanged, errBridgeRestarting
		}
		request.thenPluginIDs = append(request.thenPluginIDs, nextID)
	}
	response, err := callProcess(ctx, conn, slots, request, input, consume)
	if err != nil {
		return outcomeUnchanged, err
	}
	if response.outcome == outcomeReplaced && !response.inSlot {
		consume(response.otlp)
	}
	return response.outcome, nil
}

// callProcess sends one Process call (a plugin chain's batch, or a
// segment's) with the batch in a shared-memory slot when one is free,
// inline otherwise; a replaced output in the slot is handed to consume
// there. Failures come back as the processor reports them.
func callProcess(ctx context.Context, conn *grpc.ClientConn, slots *slotPool, request *processRequest, input []byte, consume func([]byte)) (processResponse, error) {
	slot := slots.put(request, input)
	if slot == nil {
		request.otlp = input
	} else {
		// The slot's own connection, served by a thread of its own in the
		// bridge, runs the batch where the request arrives.
		conn = slot.conn
	}
	var response processResponse
	// The runtime's verdict on a batch carries its kind in a trailer (in the
	// headers of a trailers-only response, which grpc-go also hands as trailer).
	var header, trailer metadata.MD
	err := conn.Invoke(ctx, bridgeService+"Process", request, &response, useBridgeCodec, grpc.Header(&header), grpc.Trailer(&trailer))
	if slot != nil {
		switch {
		case err != nil:
			slots.abandon(slot)
		case response.inSlot:
			err = slots.output(slot, response.slotOutputLen, consume)
		default:
			slots.release(slot)
		}
	}
	if err != nil {
		// When the caller's deadline passes, tonic may answer "Timeout expired"
		// (CANCELLED, its grpc-timeout handling) before the runtime's own
		// deadline_exceeded arrives, and before ctx's timer has marked ctx
		// done: report the caller's cause either way, retryable.
		kind := failureKind(header, trailer)
		if deadlinePassed(ctx) {
			return response, &bridgeError{kind: kind, message: context.DeadlineExceeded.Error() + " (bridge: " + status.Convert(err).Message() + ")"}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return response, &bridgeError{kind: kind, message: ctxErr.Error() + " (bridge: " + status.Convert(err).Message() + ")"}
		}
		return response, statusError(err, kind)
	}
	return response, nil
}

// deadlinePassed tells whether ctx's deadline is behind us, whether or not
// ctx's own timer has fired yet.
func deadlinePassed(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

func (p *remotePlugin) metricsJSON() ([]byte, error) {
	id, conn, _, err := p.current()
	if err != nil {
		return nil, err
	}
	return remoteMetrics(conn, &metricsRequest{pluginID: id})
}

// remoteMetrics asks the child for a plugin's or a segment's metrics.
func remoteMetrics(conn *grpc.ClientConn, request *metricsRequest) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var response metricsResponse
	if err := conn.Invoke(ctx, bridgeService+"Metrics", request, &response, useBridgeCodec); err != nil {
		return nil, statusError(err, "")
	}
	return response.json, nil
}

func (p *remotePlugin) free() {
	id, open := p.close()
	if !open {
		return
	}
	c := p.child
	c.mu.Lock()
	delete(c.plugins, p)
	c.mu.Unlock()
	if conn := c.connection(); conn != nil && id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var response unloadResponse
		_ = conn.Invoke(ctx, bridgeService+"Unload", &unloadRequest{pluginID: id}, &response, useBridgeCodec)
		cancel()
	}
	c.release()
}

// failureKindKey is the trailer the bridge puts on every status that is the
// runtime's verdict on a batch (trap, timeout, memory, busy, ...).
const failureKindKey = "wasmtel-failure-kind"

func failureKind(mds ...metadata.MD) string {
	for _, md := range mds {
		if values := md.Get(failureKindKey); len(values) > 0 {
			return values[0]
		}
	}
	return ""
}

// statusError turns a gRPC status into the error the processor reports:
// permanent for INVALID_ARGUMENT and FAILED_PRECONDITION (as the bridge
// sends failures that repeat on the same input), retryable otherwise. With a
// failure kind (the trailer) the status is the runtime's verdict, reported
// as is, even when its code is UNAVAILABLE (a guest that asked for a retry,
// a busy plugin); without one, UNAVAILABLE is a bridge that is dead or
// cannot be reached.
func statusError(err error, kind string) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		return &bridgeError{permanent: true, kind: kind, message: st.Message()}
	case codes.Unavailable:
		if kind == "" {
			return &bridgeError{message: "the wasmtel bridge is unavailable: " + st.Message()}
		}
		return &bridgeError{kind: kind, message: st.Message()}
	default:
		return &bridgeError{kind: kind, message: st.Message()}
	}
}
