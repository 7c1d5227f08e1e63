//! The node's metrics. The `wasmtel.plugin.*` metrics are the vocabulary the
//! Go processor exports too: the same names, units and attributes (`outcome`,
//! `kind`, `action`, `direction`, `signal`), checked against
//! `go/wasmprocessor/metadata.yaml` by a test. The engine gives each set of
//! measurement attributes its own metric set, named like its metric.
//! `wasmtel.processor.wasm` holds what only this node has.

use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_engine::context::PipelineContext;
use otel_arrow_dfe_telemetry::attributes::AttributeEnum;
use otel_arrow_dfe_telemetry::instrument::{Counter, Gauge, HistogramNormal, ObserveCounter};
use otel_arrow_dfe_telemetry::metrics::{MeasurementMetricSet, MetricSet};
use otel_arrow_dfe_telemetry::reporter::MetricsReporter;
use otel_arrow_dfe_telemetry_macros::{AttributeEnum, attribute_set, metric_set};
use wasmtel_runtime::{FailureKind, MetricsSnapshot};

/// What became of a batch offered to the plugin (`error`: only in `wasmtel.plugin.duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AttributeEnum)]
pub enum CallOutcome {
    /// The guest left the batch as it was.
    #[attribute_value = "unchanged"]
    Unchanged,
    /// The guest returned a new batch.
    #[attribute_value = "replaced"]
    Replaced,
    /// The guest (or the `drop` policy) dropped the batch.
    #[attribute_value = "dropped"]
    Dropped,
    /// The component does not handle the signal: passed on untouched.
    #[attribute_value = "skipped"]
    Skipped,
    /// The call failed (after `on_error`).
    #[attribute_value = "error"]
    Error,
}

/// A [`FailureKind`] as the `kind` attribute, spelled as the runtime spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind(pub FailureKind);

const FAILURE_KIND_NAMES: [&str; FailureKind::ALL.len()] = {
    let mut names = [""; FailureKind::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = FailureKind::ALL[i].as_str();
        i += 1;
    }
    names
};

impl AttributeEnum for ErrorKind {
    const CARDINALITY: usize = FailureKind::ALL.len();
    const VARIANTS: &'static [&'static str] = &FAILURE_KIND_NAMES;

    fn variant_index(self) -> usize {
        FailureKind::ALL.iter().position(|kind| *kind == self.0).unwrap_or_default()
    }
}

/// What `on_error` did with a failed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AttributeEnum)]
pub enum OnErrorAction {
    /// Forwarded the input unchanged.
    #[attribute_value = "pass"]
    Pass,
    /// Acknowledged and discarded it.
    #[attribute_value = "drop"]
    Drop,
    /// Returned the error upstream.
    #[attribute_value = "fail"]
    Fail,
}

/// Which way OTLP bytes crossed the sandbox boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AttributeEnum)]
pub enum Direction {
    /// Handed to the guest.
    #[attribute_value = "in"]
    In,
    /// Returned by the guest.
    #[attribute_value = "out"]
    Out,
}

/// The `outcome` attribute.
#[attribute_set(item, measurement)]
#[derive(Debug, Clone, Copy)]
pub struct OutcomeAttributes {
    /// What became of the batch.
    pub outcome: CallOutcome,
}

/// The `kind` attribute.
#[attribute_set(item, measurement)]
#[derive(Debug, Clone, Copy)]
pub struct ErrorKindAttributes {
    /// Why the batch failed.
    pub kind: ErrorKind,
}

/// The `action` attribute.
#[attribute_set(item, measurement)]
#[derive(Debug, Clone, Copy)]
pub struct ActionAttributes {
    /// What `on_error` did.
    pub action: OnErrorAction,
}

/// The `direction` attribute.
#[attribute_set(item, measurement)]
#[derive(Debug, Clone, Copy)]
pub struct DirectionAttributes {
    /// Into or out of the guest.
    pub direction: Direction,
}

/// The `signal` and `outcome` attributes.
#[attribute_set(item, measurement)]
#[derive(Debug, Clone, Copy)]
pub struct SignalOutcomeAttributes {
    /// The batch's signal.
    pub signal: SignalType,
    /// What became of the batch.
    pub outcome: CallOutcome,
}

/// `wasmtel.plugin.calls`.
#[metric_set(name = "wasmtel.plugin")]
#[derive(Debug, Default, Clone)]
pub struct PluginCallMetrics {
    /// Batches offered to the plugin.
    #[metric(name = "wasmtel.plugin.calls", unit = "{batch}")]
    pub calls: ObserveCounter<u64>,
}

/// `wasmtel.plugin.outcomes{outcome}`.
#[metric_set(name = "wasmtel.plugin.outcomes", measurement_attributes = OutcomeAttributes)]
#[derive(Debug, Default, Clone)]
pub struct PluginOutcomeMetrics {
    /// Batches by outcome (unchanged, replaced, dropped, skipped).
    #[metric(name = "wasmtel.plugin.outcomes", unit = "{batch}")]
    pub outcomes: ObserveCounter<u64>,
}

/// `wasmtel.plugin.errors{kind}`.
#[metric_set(name = "wasmtel.plugin.errors", measurement_attributes = ErrorKindAttributes)]
#[derive(Debug, Default, Clone)]
pub struct PluginErrorMetrics {
    /// Failed batches by kind.
    #[metric(name = "wasmtel.plugin.errors", unit = "{error}")]
    pub errors: ObserveCounter<u64>,
}

/// `wasmtel.plugin.on_error{action}`.
#[metric_set(name = "wasmtel.plugin.on_error", measurement_attributes = ActionAttributes)]
#[derive(Debug, Default, Clone)]
pub struct PluginOnErrorMetrics {
    /// Failed batches by the action `on_error` took.
    #[metric(name = "wasmtel.plugin.on_error", unit = "{batch}")]
    pub on_error: ObserveCounter<u64>,
}

/// `wasmtel.plugin.bytes{direction}`.
#[metric_set(name = "wasmtel.plugin.bytes", measurement_attributes = DirectionAttributes)]
#[derive(Debug, Default, Clone)]
pub struct PluginByteMetrics {
    /// OTLP bytes in and out of the sandbox.
    #[metric(name = "wasmtel.plugin.bytes", unit = "By")]
    pub bytes: ObserveCounter<u64>,
}

/// `wasmtel.plugin.duration{signal,outcome}`.
#[metric_set(name = "wasmtel.plugin.duration", measurement_attributes = SignalOutcomeAttributes)]
#[derive(Debug, Default, Clone)]
pub struct PluginDurationMetrics {
    /// Time a batch spent in the plugin, by signal and outcome.
    #[metric(name = "wasmtel.plugin.duration", unit = "s")]
    pub duration: HistogramNormal,
}

/// What only this node reports: plugin internals the collector does not
/// export, and the node's own Ack/Nack and conversion decisions (deltas).
#[metric_set(name = "wasmtel.processor.wasm")]
#[derive(Debug, Default, Clone)]
pub struct WasmProcessorMetrics {
    /// Batches with invalid UTF-8 or values nested too deep, repaired before the guest.
    #[metric(name = "input.repaired", unit = "{batch}")]
    pub input_repaired: ObserveCounter<u64>,
    /// Client items (spans, log records, data points) left out at admission
    /// (an ID of the wrong length): the client's fault, never the guest's.
    #[metric(name = "input.items_rejected", unit = "{item}")]
    pub items_rejected: ObserveCounter<u64>,
    /// Failed batches not quarantined because `quarantine_max_bytes` was reached.
    #[metric(name = "quarantine.skipped", unit = "{batch}")]
    pub quarantine_skipped: ObserveCounter<u64>,
    /// Guest log lines dropped by the rate limit.
    #[metric(name = "guest.log_lines_suppressed", unit = "{line}")]
    pub guest_log_lines_suppressed: ObserveCounter<u64>,
    /// Guest counter updates refused (bad name, too many counters).
    #[metric(name = "guest.counters_refused", unit = "{update}")]
    pub guest_counters_refused: ObserveCounter<u64>,
    /// Failed batches written to the quarantine directory.
    #[metric(unit = "{batch}")]
    pub quarantined: ObserveCounter<u64>,
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

/// Every metric set of one node instance.
pub(super) struct NodeMetrics {
    /// The node's own set.
    pub(super) node: MetricSet<WasmProcessorMetrics>,
    calls: MetricSet<PluginCallMetrics>,
    outcomes: MeasurementMetricSet<PluginOutcomeMetrics>,
    errors: MeasurementMetricSet<PluginErrorMetrics>,
    on_error: MeasurementMetricSet<PluginOnErrorMetrics>,
    bytes: MeasurementMetricSet<PluginByteMetrics>,
    duration: MeasurementMetricSet<PluginDurationMetrics>,
}

impl NodeMetrics {
    pub(super) fn register(pipeline_ctx: &PipelineContext) -> Self {
        NodeMetrics {
            node: WasmProcessorMetrics::register(pipeline_ctx),
            calls: PluginCallMetrics::register(pipeline_ctx),
            outcomes: PluginOutcomeMetrics::register(pipeline_ctx),
            errors: PluginErrorMetrics::register(pipeline_ctx),
            on_error: PluginOnErrorMetrics::register(pipeline_ctx),
            bytes: PluginByteMetrics::register(pipeline_ctx),
            duration: PluginDurationMetrics::register(pipeline_ctx),
        }
    }

    /// One call's time in the plugin.
    pub(super) fn record_call(&mut self, signal: SignalType, outcome: CallOutcome, seconds: f64) {
        self.duration.with(SignalOutcomeAttributes { signal, outcome }).duration.record(seconds);
    }

    /// Takes the plugin's cumulative totals (as the Go processor observes them).
    pub(super) fn observe(&mut self, s: &MetricsSnapshot) {
        self.calls.calls.observe(s.calls);
        for (outcome, value) in [
            (CallOutcome::Unchanged, s.unchanged),
            (CallOutcome::Replaced, s.replaced),
            (CallOutcome::Dropped, s.dropped),
            (CallOutcome::Skipped, s.skipped),
        ] {
            self.outcomes.with(OutcomeAttributes { outcome }).outcomes.observe(value);
        }
        for kind in FailureKind::ALL {
            let value = s.error_count(kind);
            if value > 0 {
                self.errors.with(ErrorKindAttributes { kind: ErrorKind(kind) }).errors.observe(value);
            }
        }
        for (action, value) in [
            (OnErrorAction::Pass, s.policy_passed),
            (OnErrorAction::Drop, s.policy_dropped),
            (OnErrorAction::Fail, s.policy_failed),
        ] {
            self.on_error.with(ActionAttributes { action }).on_error.observe(value);
        }
        self.bytes.with(DirectionAttributes { direction: Direction::In }).bytes.observe(s.bytes_in);
        self.bytes.with(DirectionAttributes { direction: Direction::Out }).bytes.observe(s.bytes_out);
        let node = &mut self.node;
        node.input_repaired.observe(s.input_repaired);
        node.items_rejected.observe(s.items_rejected);
        node.quarantine_skipped.observe(s.quarantine_skipped);
        node.guest_log_lines_suppressed.observe(s.guest_log_lines_suppressed);
        node.guest_counters_refused.observe(s.guest_counters_refused);
        node.quarantined.observe(s.quarantined);
        node.instances_live.set(s.instances_live);
        node.instances_created.observe(s.instances_created);
        node.instances_discarded.observe(s.instances_discarded);
    }

    /// Sends every set's pending values; a full reporter channel defers them
    /// to the next collection.
    pub(super) fn report(&mut self, reporter: &mut MetricsReporter) {
        let _ = reporter.report(&mut self.node);
        let _ = reporter.report(&mut self.calls);
        let _ = reporter.report_measurement(&mut self.outcomes);
        let _ = reporter.report_measurement(&mut self.errors);
        let _ = reporter.report_measurement(&mut self.on_error);
        let _ = reporter.report_measurement(&mut self.bytes);
        let _ = reporter.report_measurement(&mut self.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use otel_arrow_dfe_telemetry::metrics::MetricSetHandler;

    /// `(name, unit)` of each metric in the Go processor's metadata.yaml.
    fn go_metrics() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../go/wasmprocessor/metadata.yaml");
        let yaml: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let metrics = yaml["telemetry"]["metrics"].as_mapping().expect("telemetry.metrics");
        metrics
            .iter()
            .map(|(name, metric)| (name.as_str().unwrap().to_string(), metric["unit"].as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn the_plugin_metrics_are_the_go_processors() {
        let ours: Vec<(String, String)> = [
            PluginCallMetrics::default().descriptor(),
            PluginOutcomeMetrics::default().descriptor(),
            PluginErrorMetrics::default().descriptor(),
            PluginOnErrorMetrics::default().descriptor(),
            PluginByteMetrics::default().descriptor(),
            PluginDurationMetrics::default().descriptor(),
        ]
        .iter()
        .flat_map(|descriptor| descriptor.metrics.iter().map(|m| (m.name.to_string(), m.unit.to_string())))
        .collect();
        // Guest counters have names chosen by the guest: no closed attribute set.
        // The node's refusals are its Nacks, counted by the engine.
        let go_only = ["wasmtel.plugin.guest_counter", "wasmtel.plugin.refused"];
        let go: Vec<_> = go_metrics().into_iter().filter(|(name, _)| !go_only.contains(&name.as_str())).collect();
        assert_eq!(ours, go);
    }

    #[test]
    fn error_kinds_are_spelled_as_the_runtime_spells_them() {
        for (index, kind) in FailureKind::ALL.into_iter().enumerate() {
            assert_eq!(ErrorKind(kind).variant_index(), index);
            assert_eq!(ErrorKind(kind).as_str(), kind.as_str());
        }
    }
}
