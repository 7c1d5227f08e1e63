//! Plugin metrics: every call and what became of its batch, so nothing is lost
//! silently. Lock-free counters on the hot path; a snapshot for exporters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::FailureKind;
use crate::host::GuestReports;

/// Upper bounds (µs) of the latency histogram buckets; the last bucket is open.
pub const LATENCY_BUCKETS_US: [u64; 12] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 100_000, 1_000_000];

#[derive(Default)]
pub(crate) struct PluginMetrics {
    calls: AtomicU64,
    unchanged: AtomicU64,
    replaced: AtomicU64,
    dropped: AtomicU64,
    skipped: AtomicU64,
    errors: [AtomicU64; FailureKind::ALL.len()],
    policy_passed: AtomicU64,
    policy_dropped: AtomicU64,
    policy_failed: AtomicU64,
    quarantined: AtomicU64,
    quarantine_skipped: AtomicU64,
    input_repaired: AtomicU64,
    items_rejected: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    pub instances_created: AtomicU64,
    pub instances_discarded: AtomicU64,
    guest_memory_max: AtomicU64,
}

/// What the policy did with a batch the sandbox failed on.
#[derive(Clone, Copy)]
pub(crate) enum PolicyAction {
    Passed,
    Dropped,
    Failed,
}

impl PluginMetrics {
    /// Linear memory an instance held after a batch (memory only grows).
    pub fn guest_memory(&self, bytes: usize) {
        self.guest_memory_max.fetch_max(bytes as u64, Relaxed);
    }

    pub fn call(&self, bytes_in: usize) {
        self.calls.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes_in as u64, Relaxed);
    }

    pub fn unchanged(&self) {
        self.unchanged.fetch_add(1, Relaxed);
    }

    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    pub fn replaced(&self, bytes_out: usize) {
        self.replaced.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes_out as u64, Relaxed);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    pub fn error(&self, kind: FailureKind) {
        let index = FailureKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.errors[index].fetch_add(1, Relaxed);
    }

    pub fn policy(&self, action: PolicyAction) {
        match action {
            PolicyAction::Passed => &self.policy_passed,
            PolicyAction::Dropped => &self.policy_dropped,
            PolicyAction::Failed => &self.policy_failed,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn quarantined(&self) {
        self.quarantined.fetch_add(1, Relaxed);
    }

    pub fn quarantine_skipped(&self) {
        self.quarantine_skipped.fetch_add(1, Relaxed);
    }

    pub fn input_repaired(&self) {
        self.input_repaired.fetch_add(1, Relaxed);
    }

    pub fn items_rejected(&self, items: u64) {
        self.items_rejected.fetch_add(items, Relaxed);
    }

    pub fn latency(&self, elapsed: Duration) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        self.latency_sum_us.fetch_add(us, Relaxed);
        let bucket = LATENCY_BUCKETS_US.iter().position(|bound| us <= *bound).unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency_buckets[bucket].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self, plugin: &str, live_instances: usize, reports: &GuestReports) -> MetricsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Relaxed);
        MetricsSnapshot {
            plugin: plugin.to_string(),
            calls: load(&self.calls),
            unchanged: load(&self.unchanged),
            replaced: load(&self.replaced),
            dropped: load(&self.dropped),
            skipped: load(&self.skipped),
            errors: FailureKind::ALL
                .iter()
                .zip(&self.errors)
                .map(|(kind, count)| (kind.as_str().to_string(), load(count)))
                .collect(),
            policy_passed: load(&self.policy_passed),
            policy_dropped: load(&self.policy_dropped),
            policy_failed: load(&self.policy_failed),
            quarantined: load(&self.quarantined),
            quarantine_skipped: load(&self.quarantine_skipped),
            input_repaired: load(&self.input_repaired),
            items_rejected: load(&self.items_rejected),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            latency_sum_us: load(&self.latency_sum_us),
            latency_buckets_us: LATENCY_BUCKETS_US.to_vec(),
            latency_counts: self.latency_buckets.iter().map(load).collect(),
            instances_live: live_instances as u64,
            instances_created: load(&self.instances_created),
            instances_discarded: load(&self.instances_discarded),
            guest_counters: reports.counters(),
            guest_counters_refused: load(&reports.counters_refused),
            guest_log_lines_suppressed: load(&reports.log_lines_suppressed),
            guest_memory_max_bytes: load(&self.guest_memory_max),
        }
    }
}

/// A point-in-time copy of one plugin's metrics.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct MetricsSnapshot {
    /// The plugin's name.
    pub plugin: String,
    /// Batches offered to the plugin.
    pub calls: u64,
    /// Batches the guest returned unchanged (policy outcomes are counted under `policy_*`).
    pub unchanged: u64,
    /// Batches the guest replaced with new bytes.
    pub replaced: u64,
    /// Batches the guest dropped.
    pub dropped: u64,
    /// Batches of signals the manifest does not list, passed without entering the sandbox.
    pub skipped: u64,
    /// Failures by kind (see [`FailureKind`]).
    pub errors: BTreeMap<String, u64>,
    /// Failed batches forwarded unchanged by `on_error: pass`.
    pub policy_passed: u64,
    /// Failed batches discarded by `on_error: drop`.
    pub policy_dropped: u64,
    /// Failed batches returned as errors by `on_error: fail`.
    pub policy_failed: u64,
    /// Failed batches written to `quarantine_dir`.
    pub quarantined: u64,
    /// Failed batches not written to `quarantine_dir` because it was full.
    #[serde(default)]
    pub quarantine_skipped: u64,
    /// Batches whose input had invalid UTF-8 or values nested too deep,
    /// repaired before the guest saw them.
    #[serde(default)]
    pub input_repaired: u64,
    /// Client items (spans, log records, data points) left out before the
    /// guest saw them, as no decoder can read them (an ID of the wrong
    /// length): the client's fault, reported as a partial success.
    #[serde(default)]
    pub items_rejected: u64,
    /// Input bytes of all calls, skipped batches included.
    pub bytes_in: u64,
    /// Output bytes of replaced batches.
    pub bytes_out: u64,
    /// Total time of the batches that ran (waiting for an instance included), in µs.
    pub latency_sum_us: u64,
    /// Upper bounds of the latency buckets in µs ([`LATENCY_BUCKETS_US`]).
    pub latency_buckets_us: Vec<u64>,
    /// Batches per latency bucket: one count per bound, then one for the open bucket above the last.
    pub latency_counts: Vec<u64>,
    /// Instances alive when the snapshot was taken (idle or running).
    pub instances_live: u64,
    /// Instances created so far (instantiation and `init`), the first one included.
    pub instances_created: u64,
    /// Instances thrown away after a failure that may have left them inconsistent.
    pub instances_discarded: u64,
    /// Counters the guest reported through `add-counter`.
    pub guest_counters: BTreeMap<String, u64>,
    /// `add-counter` calls refused: a bad name, or too many counters.
    #[serde(default)]
    pub guest_counters_refused: u64,
    /// Guest log lines (log, stdout, stderr) dropped by the rate limit.
    #[serde(default)]
    pub guest_log_lines_suppressed: u64,
    /// The most linear memory any instance held after a batch: the guest's
    /// peak working set, including the input and output copies.
    #[serde(default)]
    pub guest_memory_max_bytes: u64,
}

impl MetricsSnapshot {
    /// Adds another instance's snapshot of the same plugin (another core's
    /// node, say): counts add up, the memory peak is the larger one.
    pub fn add(&mut self, other: &MetricsSnapshot) {
        let counts = [
            (&mut self.calls, other.calls),
            (&mut self.unchanged, other.unchanged),
            (&mut self.replaced, other.replaced),
            (&mut self.dropped, other.dropped),
            (&mut self.skipped, other.skipped),
            (&mut self.policy_passed, other.policy_passed),
            (&mut self.policy_dropped, other.policy_dropped),
            (&mut self.policy_failed, other.policy_failed),
            (&mut self.quarantined, other.quarantined),
            (&mut self.quarantine_skipped, other.quarantine_skipped),
            (&mut self.input_repaired, other.input_repaired),
            (&mut self.items_rejected, other.items_rejected),
            (&mut self.bytes_in, other.bytes_in),
            (&mut self.bytes_out, other.bytes_out),
            (&mut self.latency_sum_us, other.latency_sum_us),
            (&mut self.instances_live, other.instances_live),
            (&mut self.instances_created, other.instances_created),
            (&mut self.instances_discarded, other.instances_discarded),
            (&mut self.guest_counters_refused, other.guest_counters_refused),
            (&mut self.guest_log_lines_suppressed, other.guest_log_lines_suppressed),
        ];
        for (total, more) in counts {
            *total = total.saturating_add(more);
        }
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        for (name, count) in &other.guest_counters {
            *self.guest_counters.entry(name.clone()).or_default() += count;
        }
        if self.latency_counts.len() < other.latency_counts.len() {
            self.latency_counts.resize(other.latency_counts.len(), 0);
            self.latency_buckets_us.clone_from(&other.latency_buckets_us);
        }
        for (total, more) in self.latency_counts.iter_mut().zip(&other.latency_counts) {
            *total += more;
        }
        self.guest_memory_max_bytes = self.guest_memory_max_bytes.max(other.guest_memory_max_bytes);
    }

    /// Failed batches of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Failed batches of one kind.
    pub fn error_count(&self, kind: FailureKind) -> u64 {
        self.errors.get(kind.as_str()).copied().unwrap_or(0)
    }
}
