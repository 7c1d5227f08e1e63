package wasmprocessor

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const timeoutMessage = "plugin wasm/x: traces batch failed (timeout): batch exceeded its time limit (guest interrupted)"

func TestStatusErrorReportsTheRuntimesVerdictAsIs(t *testing.T) {
	for _, tc := range []struct {
		code      codes.Code
		kind      string
		message   string
		want      string
		permanent bool
	}{
		// The runtime's verdicts: its message, its kind, the code's retry meaning.
		{codes.Unavailable, "timeout", timeoutMessage, timeoutMessage, false},
		{codes.Unavailable, "guest_retryable", "plugin wasm/x: try later", "plugin wasm/x: try later", false},
		{codes.FailedPrecondition, "trap", "plugin wasm/x: trap", "plugin wasm/x: trap", true},
		{codes.InvalidArgument, "guest_permanent", "plugin wasm/x: bad", "plugin wasm/x: bad", true},
		{codes.ResourceExhausted, "busy", "plugin wasm/x: busy", "plugin wasm/x: busy", false},
		{codes.DeadlineExceeded, "deadline_exceeded", "plugin wasm/x: late", "plugin wasm/x: late", false},
		// No trailer: UNAVAILABLE is the bridge itself, dead or unreachable.
		{codes.Unavailable, "", "connection refused", "the wasmtel bridge is unavailable: connection refused", false},
		{codes.Internal, "", "oops", "oops", false},
	} {
		err := statusError(status.Error(tc.code, tc.message), tc.kind)
		var bridgeErr *bridgeError
		if !errors.As(err, &bridgeErr) || bridgeErr.message != tc.want || bridgeErr.permanent != tc.permanent || bridgeErr.kind != tc.kind {
			t.Errorf("%v %q: got %#v, want message %q, permanent %v, kind %q", tc.code, tc.kind, bridgeErr, tc.want, tc.permanent, tc.kind)
		}
	}
}

// A bridge stand-in answers every Process call with status and trailer: the
// kind reaches the error through grpc-go's handling of trailers-only
// responses, as tonic sends them.
func TestProcessReadsTheFailureKindTrailer(t *testing.T) {
	for _, tc := range []struct {
		kind, want string
	}{
		{"timeout", timeoutMessage},
		{"", "the wasmtel bridge is unavailable: " + timeoutMessage},
	} {
		socket := filepath.Join(t.TempDir(), "bridge.sock")
		listener, err := net.Listen("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		server := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			if tc.kind != "" {
				stream.SetTrailer(metadata.Pairs(failureKindKey, tc.kind))
			}
			return status.Error(codes.Unavailable, timeoutMessage)
		}))
		go func() { _ = server.Serve(listener) }()
		conn, err := dialBridge(socket)
		if err != nil {
			t.Fatal(err)
		}
		p := &remotePlugin{remoteHandle: remoteHandle{child: &child{conn: conn}, id: 1}}
		_, err = p.process(context.Background(), signalTraces, []byte("batch"), func([]byte) {})
		_ = conn.Close()
		server.Stop()
		var bridgeErr *bridgeError
		if !errors.As(err, &bridgeErr) || bridgeErr.message != tc.want || bridgeErr.kind != tc.kind || bridgeErr.permanent {
			t.Fatalf("trailer %q: got %#v (%v), want retryable %q", tc.kind, bridgeErr, err, tc.want)
		}
	}
}
