//go:build !linux

package wasmprocessor

import (
	"errors"
	"os"
)

// Memfds are Linux's: elsewhere every batch travels inline.
const sharedMemorySupported = false

func createSlotFile(string) (*os.File, error) { return nil, errors.ErrUnsupported }

func mapSlot(*os.File, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapSlot([]byte) {}

func punchSlot(*os.File, int64, int64) error { return errors.ErrUnsupported }
