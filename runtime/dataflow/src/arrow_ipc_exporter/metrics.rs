//! The `wasmtel.exporter.arrow_ipc` metric set.

use otel_arrow_dfe_telemetry::instrument::Counter;
use otel_arrow_dfe_telemetry_macros::metric_set;

/// The `wasmtel.exporter.arrow_ipc` metric set (deltas).
#[metric_set(name = "wasmtel.exporter.arrow_ipc")]
#[derive(Debug, Default, Clone)]
pub struct ArrowIpcMetrics {
    /// Record batches written (each gathers one or more incoming batches).
    #[metric(unit = "{batch}")]
    pub batches: Counter<u64>,
    /// Incoming batches written and acknowledged.
    #[metric(unit = "{batch}")]
    pub acknowledged: Counter<u64>,
    /// Rows (spans, log records, data points) written.
    #[metric(unit = "{row}")]
    pub rows: Counter<u64>,
    /// Bytes written, IPC framing included.
    #[metric(unit = "By")]
    pub bytes: Counter<u64>,
    /// Files finished (rotation or shutdown).
    #[metric(name = "files.finished", unit = "{file}")]
    pub files_finished: Counter<u64>,
    /// Files deleted by retention.
    #[metric(name = "files.deleted", unit = "{file}")]
    pub files_deleted: Counter<u64>,
    /// Incoming batches refused because writing failed (retryable).
    #[metric(name = "failures.write", unit = "{batch}")]
    pub write_failures: Counter<u64>,
    /// Batches refused because they were not valid OTLP (permanent).
    #[metric(name = "failures.invalid", unit = "{batch}")]
    pub invalid: Counter<u64>,
}
