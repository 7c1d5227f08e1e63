package wasmprocessor

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// refusalWindow is how long further refusals are summed up into one line
// (a variable for tests that end windows themselves).
var refusalWindow = time.Second

// refusalLog logs a processor's refusals so that the collector's logger,
// which samples by message (by default the first 10 a message per 10 s, then
// 1 in 100), does not hide them as repeats: the first refusal after a quiet
// window is logged at once with its error; the next ones are counted and
// summed up in one line a window, and on shutdown. Every line's message is
// its own (processor ID and counts in it), at most one a second per
// processor. zap's sampler counts messages by hash bucket (4096 of them), so
// a line can still share a bucket with a flood of another message and be
// sampled then: the exact record is the wasmtel.plugin.refused counter, the
// log is the operator's reading of it. Each line's `batches` field is how
// many refusals it stands for.
type refusalLog struct {
	logger *zap.Logger
	name   string

	mu sync.Mutex
	// total counts the processor's refusals; pending (permanent of them),
	// byKind and last the ones not logged yet, since windowStart.
	total       int64
	pending     int64
	permanent   int64
	byKind      map[string]int64
	last        error
	windowStart time.Time
	// timer is set while a window is open.
	timer  *time.Timer
	closed bool
}

func newRefusalLog(logger *zap.Logger, name string) *refusalLog {
	return &refusalLog{logger: logger, name: name, byKind: map[string]int64{}}
}

func (l *refusalLog) record(sig signal, permanent bool, kind string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if l.timer != nil {
		l.pending++
		if permanent {
			l.permanent++
		}
		l.byKind[refusalKey(sig, permanent, kind)]++
		l.last = err
		return
	}
	fields := []zap.Field{zap.String("signal", sig.String()), zap.Bool("permanent", permanent), zap.Int64("batches", 1), zap.Error(err)}
	if kind != "" {
		fields = append(fields, zap.String("kind", kind))
	}
	l.logger.Warn(fmt.Sprintf("%s refused a batch (%d refused since it started)", l.name, l.total), fields...)
	if !l.closed {
		l.windowStart = time.Now()
		l.timer = time.AfterFunc(refusalWindow, l.tick)
	}
}

// tick ends a window: its refusals in one line, and another window; or, if
// none came, quiet, so the next refusal is logged at once.
func (l *refusalLog) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.pending == 0 {
		l.timer = nil
		return
	}
	l.summarize()
	l.windowStart = time.Now()
	l.timer = time.AfterFunc(refusalWindow, l.tick)
}

// close logs what is pending; later refusals are each logged at once.
func (l *refusalLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.pending > 0 {
		l.summarize()
	}
}

func (l *refusalLog) summarize() {
	window := max(time.Since(l.windowStart).Round(100*time.Millisecond), 100*time.Millisecond)
	l.logger.Warn(fmt.Sprintf("%s refused %d more batches in the last %v (%d refused since it started)", l.name, l.pending, window, l.total),
		zap.Int64("batches", l.pending), zap.Int64("permanent", l.permanent), zap.Int64("retryable", l.pending-l.permanent),
		zap.Any("by_kind", l.byKind), zap.NamedError("last_error", l.last))
	l.pending, l.permanent, l.byKind, l.last = 0, 0, map[string]int64{}, nil
}

// refusalKey is signal/permanent|retryable/kind, e.g. traces/retryable/timeout.
func refusalKey(sig signal, permanent bool, kind string) string {
	retry := "retryable"
	if permanent {
		retry = "permanent"
	}
	if kind == "" {
		kind = "unknown"
	}
	return sig.String() + "/" + retry + "/" + kind
}
