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
//! Every outcome is counted under the `wasmtel.plugin.*` metrics the Go
//! processor exports too (`metrics.rs`).
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
//!     output: input            # input (default: the form it arrived in) | otap | otlp
//! ```

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
use wasmtel_otap::ConvertError;
use wasmtel_runtime::{Outcome, Plugin, Signal};

use crate::dashboard::board::{self, LatestOutput, Place, WasmPost};
use crate::wasmtel_signal;

mod config;
mod metrics;
pub use config::{OutputForm, WasmProcessorConfig};
use metrics::{CallOutcome, NodeMetrics};
pub use metrics::{
    ErrorKind, PluginByteMetrics, PluginCallMetrics, PluginDurationMetrics, PluginErrorMetrics, PluginOnErrorMetrics,
    PluginOutcomeMetrics, WasmProcessorMetrics,
};

/// The node type of the wasm processor.
pub const WASM_PROCESSOR_URN: &str = "urn:wasmtel:processor:wasm";

/// One processor instance (one per core).
pub struct WasmProcessor {
    plugin: Plugin,
    output: OutputForm,
    metrics: NodeMetrics,
    /// Resolved on first use: resolution needs the effect handler's codec registry.
    otlp_plan: Option<EncodingPlan>,
    /// Where the dashboard finds this instance's newest output (when posted).
    latest: Option<Arc<LatestOutput>>,
}

impl WasmProcessor {
    /// A node instance around a loaded plugin.
    pub fn new(pipeline_ctx: &PipelineContext, plugin: Plugin, output: OutputForm) -> Self {
        WasmProcessor { plugin, output, metrics: NodeMetrics::register(pipeline_ctx), otlp_plan: None, latest: None }
    }

    /// Posts this instance on the dashboard board `name`.
    fn post_to(&mut self, name: &str, place: Place) {
        let latest = Arc::new(LatestOutput::default());
        self.latest = Some(latest.clone());
        board::with(name, |b| b.wasm.push(WasmPost { place, plugin: self.plugin.clone(), latest }));
    }

    /// A node instance from its `config:` (loads the component).
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
                        self.metrics.node.conversions.inc();
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
        let call = move || {
            let started = std::time::Instant::now();
            let result = plugin.process(signal, &input, None);
            (result, started.elapsed())
        };
        let result = match tokio::task::spawn_blocking(call).await {
            Ok((result, elapsed)) => {
                let outcome = match &result {
                    Ok(Outcome::Unchanged) => CallOutcome::Unchanged,
                    Ok(Outcome::Replaced(_)) => CallOutcome::Replaced,
                    Ok(Outcome::Dropped) => CallOutcome::Dropped,
                    Err(_) => CallOutcome::Error,
                };
                self.metrics.record_call(signal_type, outcome, elapsed.as_secs_f64());
                result
            }
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
                if let Some(latest) = &self.latest {
                    latest.offer(signal, &otlp);
                }
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
                let output = bytes.clone(); // a reference, for the dashboard
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
                if let Some(latest) = &self.latest {
                    latest.offer(signal, &output);
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
        self.metrics.node.conversions.inc();
        match wasmtel_otap::otlp_to_otap(signal, otlp.clone()) {
            Ok(records) => Ok(OtapPayload::from_otap(records)),
            Err(ConvertError::TooManyItems { .. }) => {
                self.metrics.node.kept_as_otlp.inc();
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
        self.metrics.node.acked_without_output.inc();
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
            self.metrics.node.nacked_permanent.inc();
            NackMsg::new_permanent(reason, pdata)
        } else {
            self.metrics.node.nacked_retryable.inc();
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
                        self.metrics.report(&mut metrics_reporter);
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
        let config = WasmProcessorConfig::from_value(&node_config.config)?;
        let mut processor = WasmProcessor::new(&pipeline_ctx, config.load()?, config.output);
        if let Some(name) = &config.status_board {
            processor.post_to(name, Place::of(&pipeline_ctx, &node.name));
        }
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
