//! The `wasmtel.processor.circuit_breaker` metric set.

use otel_arrow_dfe_telemetry::instrument::{Counter, Gauge, ObserveCounter};
use otel_arrow_dfe_telemetry_macros::metric_set;

/// The `wasmtel.processor.circuit_breaker` metric set.
#[metric_set(name = "wasmtel.processor.circuit_breaker")]
#[derive(Debug, Default, Clone)]
pub struct CircuitBreakerMetrics {
    /// 0 closed, 1 open, 2 half-open.
    #[metric(unit = "1")]
    pub state: Gauge<u64>,
    /// Times the circuit opened (cumulative).
    #[metric(name = "opened.total", unit = "{transition}")]
    pub opened_total: ObserveCounter<u64>,
    /// Times the circuit closed again after being open (cumulative).
    #[metric(name = "closed.total", unit = "{transition}")]
    pub closed_total: ObserveCounter<u64>,
    /// Batches refused without being sent while the circuit was open.
    #[metric(unit = "{batch}")]
    pub rejected: Counter<u64>,
    /// Probes that got no answer within `probe_timeout`.
    #[metric(name = "probes.lost", unit = "{batch}")]
    pub probes_lost: Counter<u64>,
    /// Retryable Nacks seen from downstream.
    #[metric(unit = "{batch}")]
    pub failures: Counter<u64>,
    /// Acks seen from downstream.
    #[metric(unit = "{batch}")]
    pub successes: Counter<u64>,
}
