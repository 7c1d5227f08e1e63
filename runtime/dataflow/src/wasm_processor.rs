//! `urn:wasmtel:processor:wasm`: runs a sandboxed wasm component on every batch.
//!
//! The guest sees OTLP protobuf (`Export*ServiceRequest`); OTLP input is handed
//! over without conversion, OTAP input is encoded once. What comes back:
//!
//! | outcome | downstream | upstream |
//! |---|---|---|
//! | `unchanged` | the input batch, converted only if `output` asks for another form | — |
//! | `replaced` | the guest's OTLP, as OTAP (`output: otap`) or as is (`otlp`) | — |
//! | `dropped` (or a replacement with no items) | nothing | Ack |
//! | error, permanent | nothing | permanent Nack |
//! | error, retryable (guest `retryable`, timeout, instantiation) | nothing | Nack (retry processors retry it) |
//!
//! Sandbox failures (trap, timeout, memory, invalid output) are first subject
//! to the plugin's `on_error` policy (`pass` forwards the input, `drop` acks
//! it), so a Nack only happens under `fail` or for deliberate guest errors.
//! Every outcome is counted in the `wasmtel.processor.wasm` metric set.
//!
//! ```yaml
//! redact:
//!   type: urn:wasmtel:processor:wasm
//!   config:
//!     component: /opt/wasmtel/wasmtel_redact.wasm   # or oci://host/repo:tag[@sha256:…], sha256:…, name:tag
//!     registry: { require_signature: true, trusted_keys: [/etc/wasmtel/cosign.pub] }  # how references resolve
//!     config: { ... }          # the guest's own config (its schema is in the component)
//!     limits: { timeout: 200ms, max_memory: 64MiB }
//!     on_error: pass           # pass | drop | fail
//!     output: otap             # otap (default) | otlp | input
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use linkme::distributed_slice;
use otel_arrow_dfe_config::error::Error as ConfigError;
use otel_arrow_dfe_config::node::NodeUserConfig;
use otel_arrow_dfe_engine::config::ProcessorConfig;
use otel_arrow_dfe_engine::context::PipelineContext;
use otel_arrow_dfe_engine::control::{AckMsg, NackMsg, NodeControlMsg};
use otel_arrow_dfe_engine::error::{Error, ProcessorErrorKind};
use otel_arrow_dfe_engine::local::processor as local;
use otel_arrow_dfe_engine::message::Message;
use otel_arrow_dfe_engine::node::NodeId;
use otel_arrow_dfe_engine::processor::{FlowMetricHook, ProcessorRuntimeRequirements, ProcessorWrapper};
use otel_arrow_dfe_engine::{
    ConsumerEffectHandlerExtension, MessageSourceLocalEffectHandlerExtension, ProcessorFactory,
};
use otel_arrow_dfe_otap::OTAP_PROCESSOR_FACTORIES;
use otel_arrow_dfe_otap::pdata::{OtapPdata, PdataEffectHandlerExtension};
use otel_arrow_dfe_pdata::OtlpProtoBytes;
use otel_arrow_dfe_pdata_codec::{EncodePolicy, EncodingPlan, OtapPayload, PdataEncoding};
use otel_arrow_dfe_telemetry::instrument::{Counter, Gauge, ObserveCounter};
use otel_arrow_dfe_telemetry::metrics::MetricSet;
use otel_arrow_dfe_telemetry_macros::metric_set;
use serde::Deserialize;
use wasmtel_otap::ConvertError;
use wasmtel_registry::Policy;
use wasmtel_runtime::{FailureKind, Grants, Limits, MetricsSnapshot, OnError, Outcome, Plugin, PluginConfig, Signal};

use crate::{config_error, wasmtel_signal};

/// The node type of the wasm processor.
pub const WASM_PROCESSOR_URN: &str = "urn:wasmtel:processor:wasm";

/// Node configuration (`config:` of a `urn:wasmtel:processor:wasm` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmProcessorConfig {
    /// The component: a path, `file://`, `oci://host/repo:tag[@sha256:…]`, a
    /// `sha256:` digest or a local store `name:tag` (see `wasmtel-registry`).
    pub component: String,
    /// How references resolve and what they must prove (store, signatures, lock, offline).
    #[serde(default)]
    pub registry: Policy,
    /// Name used in logs, errors and metrics; defaults to the file stem (or repository name).
    #[serde(default)]
    pub name: Option<String>,
    /// The guest's config, passed to its `init` as JSON.
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub limits: Limits,
    /// Unset: the component's declared default (fail closed unless it declares `failure_mode: open`).
    #[serde(default)]
    pub on_error: Option<OnError>,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    #[serde(default = "default_quarantine_max_bytes")]
    pub quarantine_max_bytes: bytesize::ByteSize,
    #[serde(default)]
    pub output: OutputForm,
}

/// The form of the batches the node emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputForm {
    /// OTAP Arrow records.
    #[default]
    Otap,
    /// OTLP protobuf bytes (what the guest speaks; no conversion at all).
    Otlp,
    /// Whatever form the batch arrived in.
    Input,
}

fn default_quarantine_max_bytes() -> bytesize::ByteSize {
    PluginConfig::default().quarantine_max_bytes
}

impl WasmProcessorConfig {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        serde_json::from_value(value.clone()).map_err(|e| config_error(format!("{WASM_PROCESSOR_URN}: {e}")))
    }

    fn plugin_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| wasmtel_registry::plugin_name(&self.component))
    }

    fn plugin_config(&self) -> PluginConfig {
        PluginConfig {
            config: self.config.clone(),
            limits: self.limits.clone(),
            on_error: self.on_error,
            grants: self.grants.clone(),
            quarantine_dir: self.quarantine_dir.clone(),
            quarantine_max_bytes: self.quarantine_max_bytes,
        }
    }

    /// Loads the component and starts a plugin for one processor instance.
    pub fn load(&self) -> Result<Plugin, ConfigError> {
        let runtime = crate::plugins::runtime().map_err(config_error)?;
        wasmtel_registry::load_plugin(
            &runtime,
            &self.plugin_name(),
            &self.component,
            self.plugin_config(),
            &self.registry,
        )
        .map_err(config_error)
    }
}

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
    fn observe(&mut self, s: &MetricsSnapshot) {
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

/// One processor instance (one per core).
pub struct WasmProcessor {
    plugin: Plugin,
    output: OutputForm,
    metrics: MetricSet<WasmProcessorMetrics>,
    /// Resolved on first use: resolution needs the effect handler's codec registry.
    otlp_plan: Option<EncodingPlan>,
}

impl WasmProcessor {
    pub fn new(pipeline_ctx: &PipelineContext, plugin: Plugin, output: OutputForm) -> Self {
        WasmProcessor { plugin, output, metrics: WasmProcessorMetrics::register(pipeline_ctx), otlp_plan: None }
    }

    pub fn from_config(pipeline_ctx: &PipelineContext, config: &serde_json::Value) -> Result<Self, ConfigError> {
        let config = WasmProcessorConfig::from_value(config)?;
        let plugin = config.load()?;
        Ok(Self::new(pipeline_ctx, plugin, config.output))
    }

    /// The plugin this instance runs (its metrics, config).
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    fn otlp_plan(&mut self, eh: &local::EffectHandler<OtapPdata>) -> Result<EncodingPlan, Error> {
        if let Some(plan) = self.otlp_plan {
            return Ok(plan);
        }
        let plan = eh
            .resolve_encoding_plan(&PdataEncoding::OTLP, EncodePolicy::default())
            .map_err(|e| processor_error(eh, format!("cannot resolve the OTLP codec: {e}")))?;
        self.otlp_plan = Some(plan);
        Ok(plan)
    }

    async fn process_pdata(&mut self, pdata: OtapPdata, eh: &mut local::EffectHandler<OtapPdata>) -> Result<(), Error> {
        let signal_type = pdata.signal_type();
        let signal = wasmtel_signal(signal_type);
        let (context, mut payload) = pdata.into_parts();
        let input_is_otlp = is_otlp(&payload);

        // OTLP bytes for the guest: borrowed when the batch already is OTLP
        // (a refcounted `Bytes`, no copy), else encoded once from OTAP.
        let otlp = match payload.encoded_bytes() {
            Some(bytes) if input_is_otlp => bytes.clone(),
            _ => {
                let plan = self.otlp_plan(eh)?;
                match eh.encode_owned(&mut payload, &plan).await {
                    Ok(bytes) => {
                        self.metrics.conversions.inc();
                        bytes
                    }
                    Err(e) => {
                        // Cannot become OTLP: the same input will fail again.
                        let reason = format!("{}: cannot encode the batch as OTLP: {e}", self.plugin.name());
                        return self.nack(eh, OtapPdata::new(context, payload), reason, true).await;
                    }
                }
            }
        };

        // The guest runs on a blocking-pool thread: the call is CPU-bound and
        // synchronous, and wasmtime-wasi's sync bindings (guest stdout/stderr,
        // e.g. a panic message) `block_on` a tokio runtime, which panics on a
        // thread that is already driving one, as the engine's core threads are.
        // The pipeline's other nodes keep running on the core thread meanwhile.
        let plugin = self.plugin.clone();
        let input = otlp.clone();
        let result = match tokio::task::spawn_blocking(move || plugin.process(signal, &input, None)).await {
            Ok(result) => result,
            Err(join_error) => {
                let reason = format!("{}: the guest call did not complete: {join_error}", self.plugin.name());
                return self.nack(eh, OtapPdata::new(context, payload), reason, false).await;
            }
        };
        let want_otap = match self.output {
            OutputForm::Otap => true,
            OutputForm::Otlp => false,
            OutputForm::Input => !input_is_otlp,
        };
        match result {
            Ok(Outcome::Unchanged) => {
                let payload = match (want_otap, input_is_otlp) {
                    // Already in the wanted form: forward the very input.
                    (true, false) | (false, true) => payload,
                    // Encoded for the guest already; reuse those bytes.
                    (false, false) => OtapPayload::from_otlp(OtlpProtoBytes::new_from_bytes(signal_type, otlp)),
                    (true, true) => match self.otap_payload(signal, otlp) {
                        Ok(otap) => otap,
                        Err(reason) => return self.nack(eh, OtapPdata::new(context, payload), reason, true).await,
                    },
                };
                self.emit(eh, OtapPdata::new(context, payload)).await
            }
            Ok(Outcome::Replaced(bytes)) => {
                let bytes = Bytes::from(bytes);
                let mut replaced = if want_otap {
                    match self.otap_payload(signal, bytes) {
                        Ok(otap) => otap,
                        Err(reason) => return self.nack(eh, OtapPdata::new(context, payload), reason, true).await,
                    }
                } else {
                    OtapPayload::from_otlp(OtlpProtoBytes::new_from_bytes(signal_type, bytes))
                };
                if replaced.num_items() == 0 {
                    // The guest filtered everything out: complete like a drop.
                    return self.ack_without_output(eh, OtapPdata::new(context, payload)).await;
                }
                self.emit(eh, OtapPdata::new(context, replaced)).await
            }
            Ok(Outcome::Dropped) => self.ack_without_output(eh, OtapPdata::new(context, payload)).await,
            Err(error) => {
                let permanent = error.kind.is_permanent();
                self.nack(eh, OtapPdata::new(context, payload), error.to_string(), permanent).await
            }
        }
    }

    /// OTLP bytes (the guest's output, or a client's input) as OTAP, through
    /// the conversion that cannot panic or take quadratic time; a batch with
    /// more items than otap-dataflow can number stays OTLP, which every
    /// downstream stage accepts.
    fn otap_payload(&mut self, signal: Signal, otlp: Bytes) -> Result<OtapPayload, String> {
        self.metrics.conversions.inc();
        match wasmtel_otap::otlp_to_otap(signal, otlp.clone()) {
            Ok(records) => Ok(OtapPayload::from_otap(records)),
            Err(ConvertError::TooManyItems { .. }) => {
                self.metrics.kept_as_otlp.inc();
                Ok(OtapPayload::from_otlp(wasmtel_otap::otlp_payload(signal, otlp)))
            }
            Err(error) => Err(format!("{}: {error}", self.plugin.name())),
        }
    }

    async fn emit(&mut self, eh: &mut local::EffectHandler<OtapPdata>, pdata: OtapPdata) -> Result<(), Error> {
        eh.send_message_with_source_node(pdata).await.map_err(Error::from)
    }

    async fn ack_without_output(
        &mut self,
        eh: &mut local::EffectHandler<OtapPdata>,
        mut pdata: OtapPdata,
    ) -> Result<(), Error> {
        let items = pdata.num_items() as u64;
        eh.record_flow_dropped_items(pdata.signal_type(), items);
        pdata.complete_processor_without_output(eh);
        self.metrics.acked_without_output.inc();
        eh.notify_ack(AckMsg::new(pdata)).await
    }

    async fn nack(
        &mut self,
        eh: &mut local::EffectHandler<OtapPdata>,
        mut pdata: OtapPdata,
        reason: String,
        permanent: bool,
    ) -> Result<(), Error> {
        pdata.complete_processor_without_output(eh);
        let nack = if permanent {
            self.metrics.nacked_permanent.inc();
            NackMsg::new_permanent(reason, pdata)
        } else {
            self.metrics.nacked_retryable.inc();
            NackMsg::new(reason, pdata)
        };
        eh.notify_nack(nack).await
    }
}

fn is_otlp(payload: &OtapPayload) -> bool {
    payload.encoding().is_some_and(|encoding| encoding == &PdataEncoding::OTLP)
}

fn processor_error(eh: &local::EffectHandler<OtapPdata>, error: String) -> Error {
    Error::ProcessorError {
        processor: eh.processor_id(),
        kind: ProcessorErrorKind::Other,
        error,
        source_detail: String::new(),
    }
}

#[async_trait(?Send)]
impl local::Processor<OtapPdata> for WasmProcessor {
    fn runtime_requirements(&self) -> ProcessorRuntimeRequirements {
        // Dropping batches is one of the guest's outcomes.
        ProcessorRuntimeRequirements::none().with_drop_decisions()
    }

    async fn process(
        &mut self,
        msg: Message<OtapPdata>,
        eh: &mut local::EffectHandler<OtapPdata>,
    ) -> Result<(), Error> {
        match msg {
            Message::PData(pdata) => self.process_pdata(pdata, eh).await,
            Message::Control(control) => {
                match control {
                    NodeControlMsg::CollectTelemetry { mut metrics_reporter } => {
                        self.metrics.observe(&self.plugin.metrics());
                        let _ = metrics_reporter.report(&mut self.metrics);
                    }
                    // Stateless between batches: nothing is buffered, so
                    // shutdown and drain have nothing to flush. The engine
                    // delivers Shutdown only after the inbox is drained.
                    NodeControlMsg::Shutdown { .. } => {
                        self.metrics.observe(&self.plugin.metrics());
                    }
                    NodeControlMsg::Config { .. } => {
                        eh.info(&format!(
                            "{WASM_PROCESSOR_URN} ({}): live reconfiguration is not supported; restart the pipeline",
                            self.plugin.name()
                        ))
                        .await;
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }
}

/// Registers the node in the engine's processor factories.
#[allow(unsafe_code)]
#[distributed_slice(OTAP_PROCESSOR_FACTORIES)]
pub static WASM_PROCESSOR_FACTORY: ProcessorFactory<OtapPdata> = ProcessorFactory {
    name: WASM_PROCESSOR_URN,
    create: |pipeline_ctx: PipelineContext,
             node: NodeId,
             node_config: Arc<NodeUserConfig>,
             processor_config: &ProcessorConfig,
             _capabilities: &otel_arrow_dfe_engine::capability::registry::Capabilities| {
        let processor = WasmProcessor::from_config(&pipeline_ctx, &node_config.config)?;
        Ok(ProcessorWrapper::local(processor, node, node_config, processor_config))
    },
    context_declarations: None,
    wiring_contract: otel_arrow_dfe_engine::wiring_contract::WiringContract::UNRESTRICTED,
    validate_config: |value| {
        // Fail at start-up (and in `serve --check`), not on the first batch:
        // the component resolves and loads, its config matches the schema
        // it carries, and its `init` accepts it.
        WasmProcessorConfig::from_value(value)?.load().map(drop)
    },
};
