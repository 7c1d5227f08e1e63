//! The `wasmtel.processor.wasm` metric set.

use otel_arrow_dfe_telemetry::instrument::{Counter, Gauge, ObserveCounter};
use otel_arrow_dfe_telemetry_macros::metric_set;
use wasmtel_runtime::{FailureKind, MetricsSnapshot};

/// Plugin metrics as engine telemetry. Plugin totals are observed (cumulative)
/// values; the node's own Ack/Nack decisions are deltas.
#[metric_set(name = "wasmtel.processor.wasm")]
#[derive(Debug, Default, Clone)]
pub struct WasmProcessorMetrics {
    /// Batches offered to the plugin.
    #[metric(unit = "{batch}")]
    pub calls: ObserveCounter<u64>,
    /// Batches the guest left unchanged.
    #[metric(unit = "{batch}")]
    pub unchanged: ObserveCounter<u64>,
    /// Batches the guest replaced.
    #[metric(unit = "{batch}")]
    pub replaced: ObserveCounter<u64>,
    /// Batches the guest dropped.
    #[metric(unit = "{batch}")]
    pub dropped: ObserveCounter<u64>,
    /// Batches of signals the component does not handle (passed untouched).
    #[metric(unit = "{batch}")]
    pub skipped: ObserveCounter<u64>,
    /// Guest traps.
    #[metric(name = "errors.trap", unit = "{error}")]
    pub errors_trap: ObserveCounter<u64>,
    /// Batches over the time limit.
    #[metric(name = "errors.timeout", unit = "{error}")]
    pub errors_timeout: ObserveCounter<u64>,
    /// Batches over the memory limit.
    #[metric(name = "errors.memory", unit = "{error}")]
    pub errors_memory: ObserveCounter<u64>,
    /// Outputs that were not OTLP of the batch's signal.
    #[metric(name = "errors.invalid_output", unit = "{error}")]
    pub errors_invalid_output: ObserveCounter<u64>,
    /// Outputs over `max_output_bytes`.
    #[metric(name = "errors.output_too_large", unit = "{error}")]
    pub errors_output_too_large: ObserveCounter<u64>,
    /// Permanent errors returned by the guest.
    #[metric(name = "errors.guest_permanent", unit = "{error}")]
    pub errors_guest_permanent: ObserveCounter<u64>,
    /// Retryable errors returned by the guest.
    #[metric(name = "errors.guest_retryable", unit = "{error}")]
    pub errors_guest_retryable: ObserveCounter<u64>,
    /// Failures to create a fresh instance.
    #[metric(name = "errors.instantiate", unit = "{error}")]
    pub errors_instantiate: ObserveCounter<u64>,
    /// Batches refused as backpressure: no free instance within the deadline.
    #[metric(name = "errors.busy", unit = "{error}")]
    pub errors_busy: ObserveCounter<u64>,
    /// Batches whose caller's deadline expired while the guest ran.
    #[metric(name = "errors.deadline_exceeded", unit = "{error}")]
    pub errors_deadline_exceeded: ObserveCounter<u64>,
    /// Batches that were not OTLP of their signal (never reached the guest).
    #[metric(name = "errors.invalid_input", unit = "{error}")]
    pub errors_invalid_input: ObserveCounter<u64>,
    /// Batches with invalid UTF-8 or values nested too deep, repaired before the guest.
    #[metric(name = "input.repaired", unit = "{batch}")]
    pub input_repaired: ObserveCounter<u64>,
    /// Failed batches not quarantined because `quarantine_max_bytes` was reached.
    #[metric(name = "quarantine.skipped", unit = "{batch}")]
    pub quarantine_skipped: ObserveCounter<u64>,
    /// Guest log lines dropped by the rate limit.
    #[metric(name = "guest.log_lines_suppressed", unit = "{line}")]
    pub guest_log_lines_suppressed: ObserveCounter<u64>,
    /// Guest counter updates refused (bad name, too many counters).
    #[metric(name = "guest.counters_refused", unit = "{update}")]
    pub guest_counters_refused: ObserveCounter<u64>,
    /// Failed batches forwarded unchanged by `on_error: pass`.
    #[metric(name = "policy.passed", unit = "{batch}")]
    pub policy_passed: ObserveCounter<u64>,
    /// Failed batches discarded by `on_error: drop`.
    #[metric(name = "policy.dropped", unit = "{batch}")]
    pub policy_dropped: ObserveCounter<u64>,
    /// Failed batches returned as errors by `on_error: fail`.
    #[metric(name = "policy.failed", unit = "{batch}")]
    pub policy_failed: ObserveCounter<u64>,
    /// Failed batches written to the quarantine directory.
    #[metric(unit = "{batch}")]
    pub quarantined: ObserveCounter<u64>,
    /// OTLP bytes handed to the guest.
    #[metric(name = "bytes.in", unit = "By")]
    pub bytes_in: ObserveCounter<u64>,
    /// OTLP bytes the guest returned.
    #[metric(name = "bytes.out", unit = "By")]
    pub bytes_out: ObserveCounter<u64>,
    /// Total time spent in the guest.
    #[metric(name = "guest.duration", unit = "us")]
    pub guest_duration_us: ObserveCounter<u64>,
    /// Live guest instances.
    #[metric(name = "instances.live", unit = "{instance}")]
    pub instances_live: Gauge<u64>,
    /// Instances created (the first, and replacements of failed ones).
    #[metric(name = "instances.created", unit = "{instance}")]
    pub instances_created: ObserveCounter<u64>,
    /// Instances discarded after a failure.
    #[metric(name = "instances.discarded", unit = "{instance}")]
    pub instances_discarded: ObserveCounter<u64>,
    /// Batches acknowledged without output (dropped by the guest or the policy, or emptied).
    #[metric(name = "node.acked_without_output", unit = "{batch}")]
    pub acked_without_output: Counter<u64>,
    /// Batches refused with a permanent Nack.
    #[metric(name = "node.nacked_permanent", unit = "{batch}")]
    pub nacked_permanent: Counter<u64>,
    /// Batches refused with a retryable Nack.
    #[metric(name = "node.nacked_retryable", unit = "{batch}")]
    pub nacked_retryable: Counter<u64>,
    /// Batches converted between OTLP and OTAP by this node.
    #[metric(name = "node.conversions", unit = "{batch}")]
    pub conversions: Counter<u64>,
    /// Batches forwarded as OTLP because they hold more items than OTAP conversion can number.
    #[metric(name = "node.kept_as_otlp", unit = "{batch}")]
    pub kept_as_otlp: Counter<u64>,
}

impl WasmProcessorMetrics {
    pub(super) fn observe(&mut self, s: &MetricsSnapshot) {
        self.calls.observe(s.calls);
        self.unchanged.observe(s.unchanged);
        self.replaced.observe(s.replaced);
        self.dropped.observe(s.dropped);
        self.skipped.observe(s.skipped);
        self.errors_trap.observe(s.error_count(FailureKind::Trap));
        self.errors_timeout.observe(s.error_count(FailureKind::Timeout));
        self.errors_memory.observe(s.error_count(FailureKind::Memory));
        self.errors_invalid_output.observe(s.error_count(FailureKind::InvalidOutput));
        self.errors_output_too_large.observe(s.error_count(FailureKind::OutputTooLarge));
        self.errors_guest_permanent.observe(s.error_count(FailureKind::GuestPermanent));
        self.errors_guest_retryable.observe(s.error_count(FailureKind::GuestRetryable));
        self.errors_instantiate.observe(s.error_count(FailureKind::Instantiate));
        self.errors_busy.observe(s.error_count(FailureKind::Busy));
        self.errors_deadline_exceeded.observe(s.error_count(FailureKind::DeadlineExceeded));
        self.errors_invalid_input.observe(s.error_count(FailureKind::InvalidInput));
        self.input_repaired.observe(s.input_repaired);
        self.quarantine_skipped.observe(s.quarantine_skipped);
        self.guest_log_lines_suppressed.observe(s.guest_log_lines_suppressed);
        self.guest_counters_refused.observe(s.guest_counters_refused);
        self.policy_passed.observe(s.policy_passed);
        self.policy_dropped.observe(s.policy_dropped);
        self.policy_failed.observe(s.policy_failed);
        self.quarantined.observe(s.quarantined);
        self.bytes_in.observe(s.bytes_in);
        self.bytes_out.observe(s.bytes_out);
        self.guest_duration_us.observe(s.latency_sum_us);
        self.instances_live.set(s.instances_live);
        self.instances_created.observe(s.instances_created);
        self.instances_discarded.observe(s.instances_discarded);
    }
}
