//go:build !unix || aix

package wasmprocessor

import (
	"os"

	"go.uber.org/zap"
)

// bridgeDir is one bridge generation's private directory for its socket.
// No flock here: a directory a killed collector left is not found again.
type bridgeDir struct{ path string }

func newBridgeDir(*zap.Logger) (*bridgeDir, error) {
	dir, err := os.MkdirTemp("", "wasmtel-bridge-")
	if err != nil {
		return nil, err
	}
	return &bridgeDir{path: dir}, nil
}

func (d *bridgeDir) remove() {
	if d != nil {
		_ = os.RemoveAll(d.path)
	}
}
