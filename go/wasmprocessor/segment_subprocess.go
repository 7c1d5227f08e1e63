package wasmprocessor

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// remoteSegment is a segment running in the bridge child; a restarted child
// starts it again.
type remoteSegment struct {
	remoteHandle
	name     string
	specJSON []byte
}

func (c *child) startSegment(name string, specJSON []byte) (*remoteSegment, error) {
	s := &remoteSegment{remoteHandle: remoteHandle{child: c}, name: name, specJSON: specJSON}
	if err := s.reload(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.plugins[s] = struct{}{}
	c.mu.Unlock()
	return s, nil
}

func (s *remoteSegment) componentID() string { return s.name }

func (s *remoteSegment) reload() error {
	conn := s.child.connection()
	if conn == nil {
		return errBridgeRestarting
	}
	var response startSegmentResponse
	// Starting builds the engine pipeline and loads its components (registry timeouts bound it).
	if err := conn.Invoke(context.Background(), bridgeService+"StartSegment", &startSegmentRequest{specJSON: s.specJSON}, &response, useBridgeCodec); err != nil {
		return statusError(err, "")
	}
	s.setID(response.segmentID)
	return nil
}

func (s *remoteSegment) current() (uint64, *grpc.ClientConn, *slotPool, error) {
	return s.remoteHandle.current(errSegmentStopped)
}

// export sends the batch in a shared-memory slot when one is free (inline
// otherwise); the call's deadline is the segment's budget.
func (s *remoteSegment) export(ctx context.Context, sig signal, input []byte) error {
	if _, err := exportBudget(ctx); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultExportBudget)
		defer cancel()
	}
	id, conn, slots, err := s.current()
	if err != nil {
		return err
	}
	// A segment's answer carries no output: nothing to consume.
	response, err := callProcess(ctx, conn, slots, &processRequest{segmentID: id, signal: sig}, input, func([]byte) {})
	if err != nil {
		return err
	}
	if response.outcome != outcomeExported {
		return &bridgeError{message: fmt.Sprintf("%s: the bridge answered %v to an export", s.name, response.outcome)}
	}
	return nil
}

func (s *remoteSegment) nextOutput(timeout time.Duration) (*segmentOutput, error) {
	// Outputs are taken while the segment stops, too.
	id, conn, err := s.draining()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	var response nextOutputResponse
	request := &nextOutputRequest{segmentID: id, timeoutMs: uint64(timeout.Milliseconds())}
	if err := conn.Invoke(ctx, bridgeService+"NextOutput", request, &response, useBridgeCodec); err != nil {
		return nil, statusError(err, s.name)
	}
	if response.outputID == 0 {
		return nil, nil
	}
	return &segmentOutput{signal: signal(response.signal), otlp: response.otlp, answer: func(err error) {
		refused, reason := outputAnswer(err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		answer := &answerOutputRequest{outputID: response.outputID, refused: refused, reason: reason}
		// A lost answer is the child's to resolve: at its shutdown the batch is refused, retryable.
		_ = conn.Invoke(ctx, bridgeService+"AnswerOutput", answer, &answerOutputResponse{}, useBridgeCodec)
	}}, nil
}

func (s *remoteSegment) metricsJSON() ([]byte, error) {
	id, conn, _, err := s.current()
	if err != nil {
		return nil, err
	}
	return remoteMetrics(conn, &metricsRequest{segmentID: id})
}

// stop drains the segment in the child, then lets the child go.
func (s *remoteSegment) stop(ctx context.Context) error {
	id, open := s.close()
	if !open {
		return nil
	}
	c := s.child
	c.mu.Lock()
	delete(c.plugins, s)
	c.mu.Unlock()
	defer c.release()
	conn := c.connection()
	if conn == nil || id == 0 {
		return nil
	}
	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	// The child gets the whole budget; this call waits a little longer for its answer.
	callCtx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	var response stopSegmentResponse
	request := &stopSegmentRequest{segmentID: id, timeoutMs: uint64(max(timeout.Milliseconds(), 1))}
	if err := conn.Invoke(callCtx, bridgeService+"StopSegment", request, &response, useBridgeCodec); err != nil {
		return statusError(err, "")
	}
	return nil
}

// validateNodeWithProgram asks the runtime binary (`validate-node`) for the
// node type's own verdict on the settings.
func validateNodeWithProgram(kind, urn string, configJSON []byte) error {
	program, err := runtimeProgramFor("")
	if err != nil {
		return err
	}
	defer program.release()
	cmd, err := program.command(nil, "validate-node", kind, urn)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(configJSON)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if message := strings.TrimSpace(stderr.String()); message != "" {
			return &bridgeError{permanent: true, message: message}
		}
		return fmt.Errorf("%s validate-node: %w", program, err)
	}
	return nil
}
