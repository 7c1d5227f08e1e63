package wasmprocessor

// Log records of the runtime and its guests (from the linked runtime or the
// bridge child) reach the collector's logger: the logger of the processor
// whose plugin they concern, at their level.

import (
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// runtimeLogRecord is one record as both backends deliver it (JSON).
type runtimeLogRecord struct {
	Level   string  `json:"level"`
	Plugin  *string `json:"plugin"`
	Stream  *string `json:"stream"`
	Target  string  `json:"target"`
	Message string  `json:"message"`
}

// pluginLoggers maps plugin names (processor IDs) to their loggers; records
// of no known plugin go to the last registered logger.
var pluginLoggers = struct {
	sync.Mutex
	byName   map[string]*zap.Logger
	fallback *zap.Logger
}{byName: map[string]*zap.Logger{}}

func registerPluginLogger(name string, logger *zap.Logger) {
	pluginLoggers.Lock()
	defer pluginLoggers.Unlock()
	pluginLoggers.byName[name] = logger
	pluginLoggers.fallback = logger
}

func unregisterPluginLogger(name string) {
	pluginLoggers.Lock()
	defer pluginLoggers.Unlock()
	delete(pluginLoggers.byName, name)
}

// logRuntimeRecord writes one record to the logger of the plugin it concerns.
func logRuntimeRecord(record runtimeLogRecord) {
	pluginLoggers.Lock()
	logger := pluginLoggers.fallback
	if record.Plugin != nil {
		if l, ok := pluginLoggers.byName[*record.Plugin]; ok {
			logger = l
		}
	}
	pluginLoggers.Unlock()
	if logger == nil {
		return
	}
	fields := []zap.Field{zap.String("source", record.Target)}
	if record.Stream != nil {
		fields = append(fields, zap.String("stream", *record.Stream))
	}
	logger.Log(zapLevel(record.Level), record.Message, fields...)
}

func zapLevel(level string) zapcore.Level {
	switch level {
	case "error":
		return zapcore.ErrorLevel
	case "warn":
		return zapcore.WarnLevel
	case "info":
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}
