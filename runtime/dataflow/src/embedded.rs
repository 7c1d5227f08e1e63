//! An otap-dataflow pipeline inside the application: OTLP bytes in, through
//! sandboxed wasm processors, out to any exporter; no network hop on the way in.
//!
//! ```no_run
//! use wasmtel_dataflow::EmbeddedPipeline;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = EmbeddedPipeline::start_yaml(r#"
//! version: otel_dataflow/v1
//! groups:
//!   app:
//!     pipelines:
//!       main:
//!         nodes:
//!           ingress: { type: "urn:wasmtel:receiver:embedded" }
//!           redact:
//!             type: "urn:wasmtel:processor:wasm"
//!             config: { component: /opt/wasmtel/wasmtel_redact.wasm, config: { keys: [user.email] } }
//!           files:
//!             type: "urn:wasmtel:exporter:arrow_ipc"
//!             config: { directory: /var/lib/app/telemetry }
//!         connections:
//!           - { from: ingress, to: redact }
//!           - { from: redact, to: files }
//! "#)?;
//! # let otlp: Vec<u8> = vec![];
//! pipeline.export_traces(otlp)?;          // returns once the batch is exported
//! pipeline.flush(std::time::Duration::from_secs(5))?;
//! pipeline.shutdown(std::time::Duration::from_secs(10))?;
//! # Ok(()) }
//! ```
//!
//! The controller parks its thread and builds its own runtimes, so the
//! pipeline runs on a dedicated OS thread. Every `urn:wasmtel:receiver:embedded`
//! node of the spec is bound to this pipeline's queue. Without
//! `engine.http_admin` the engine's admin server (unauthenticated in 0.62)
//! does not listen at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use otel_arrow_dfe_admin::ControlPlane;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_controller::{
    Controller, ControllerExtensionContext, ControllerExtensionRegistry, ControllerExtensionTaskFactory,
    ControllerRunOptions,
};
use otel_arrow_dfe_telemetry::descriptor::Instrument;
use otel_arrow_dfe_telemetry::metrics::MetricValue;
use otel_arrow_dfe_telemetry::registry::TelemetryRegistryHandle;
use serde_json::{Value, json};
use wasmtel_runtime::{MetricsSnapshot, Signal};

use crate::dashboard::board;
use crate::embedded_exporter::{self, EMBEDDED_EXPORTER_URN, Outbound, Output};
use crate::embedded_receiver::{self, Completion, EMBEDDED_RECEIVER_URN, Inbound, Reply, Request};
use crate::serve::admin_guard::{self, AdminGuard};
use crate::spec::{SpecError, for_each_node};

/// Controller extension through which the pipeline hands us its control plane.
const HANDLE_EXTENSION_URN: &str = "urn:wasmtel:extension:embedded_handle";
const HANDLE_EXTENSION_ID: &str = "wasmtel_embedded_handle";

/// Why a pipeline did not start, or a batch did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The spec cannot run.
    #[error("invalid pipeline spec: {0}")]
    Spec(#[from] SpecError),
    /// The spec file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The spec file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine did not come up (the message says why).
    #[error("the pipeline did not start: {0}")]
    Start(String),
    /// The bytes are not an OTLP request of `signal`; nothing was queued.
    #[error("not an OTLP {signal} request: {message}")]
    InvalidInput {
        /// The signal the bytes were handed over as.
        signal: Signal,
        /// Where the framing broke.
        message: String,
    },
    /// A node Nacked the batch; `permanent` says retrying the same bytes cannot help.
    #[error("the pipeline refused the batch ({}): {reason}", if *.permanent { "permanent" } else { "retryable" })]
    Refused {
        /// The refusing node's reason.
        reason: String,
        /// Retrying the same bytes cannot succeed.
        permanent: bool,
    },
    /// The pipeline stopped before the batch completed.
    #[error("the pipeline stopped before the batch completed")]
    Stopped,
    /// The pipeline's queue stayed full for the caller's whole budget (backpressure).
    #[error("the pipeline's queue stayed full for {waited:?} (backpressure)")]
    Backpressure {
        /// The budget spent waiting.
        waited: Duration,
    },
    /// The batch was queued but not acknowledged within the caller's budget.
    #[error("the pipeline did not answer within {waited:?}")]
    NotAnswered {
        /// The caller's budget.
        waited: Duration,
    },
    /// `shutdown` has begun: new batches are refused.
    #[error("the pipeline is shutting down")]
    ShuttingDown,
    /// `flush` or `shutdown` waited `waited` with `in_flight` batches still unanswered.
    #[error("{in_flight} batches still in flight after {waited:?}")]
    Timeout {
        /// Batches still unanswered.
        in_flight: u64,
        /// How long the call waited.
        waited: Duration,
    },
    /// The engine failed while running.
    #[error("the pipeline failed: {0}")]
    Pipeline(String),
}

impl EmbeddedError {
    /// Whether sending the same batch again cannot succeed (the collector's
    /// `consumererror.NewPermanent`); backpressure and lost answers are retryable.
    pub fn is_permanent(&self) -> bool {
        match self {
            EmbeddedError::Refused { permanent, .. } => *permanent,
            EmbeddedError::InvalidInput { .. } | EmbeddedError::Spec(_) | EmbeddedError::Read { .. } => true,
            _ => false,
        }
    }

    /// The failure kind a batch's refusal is reported with (the bridge's
    /// `wasmtel-failure-kind` trailer): the runtime's names where they mean
    /// the same (`invalid_input`, `busy`, `deadline_exceeded`), else
    /// `refused` (a node's Nack) or `stopped`.
    pub fn failure_kind(&self) -> &'static str {
        match self {
            EmbeddedError::InvalidInput { .. } => wasmtel_runtime::FailureKind::InvalidInput.as_str(),
            EmbeddedError::Backpressure { .. } => wasmtel_runtime::FailureKind::Busy.as_str(),
            EmbeddedError::NotAnswered { .. } => wasmtel_runtime::FailureKind::DeadlineExceeded.as_str(),
            EmbeddedError::Refused { .. } => "refused",
            _ => "stopped",
        }
    }
}

/// Outcomes of the batches handed to a pipeline so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Batches acknowledged (exported, or dropped on purpose by a processor).
    pub accepted: u64,
    /// Batches Nacked somewhere in the pipeline.
    pub refused: u64,
    /// Batches the pipeline stopped before they completed.
    pub stopped: u64,
    /// Batches handed over and not answered yet.
    pub in_flight: u64,
}

/// How long `close` waits for batches in flight before it asks the engine to stop.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the controller hands over once its pipelines run.
#[derive(Clone)]
struct EngineHandles {
    control_plane: Arc<dyn ControlPlane>,
    telemetry: TelemetryRegistryHandle,
}

type ControlSlot = Arc<(Mutex<Option<EngineHandles>>, Condvar)>;

/// The engine's per-node wake-up scheduler metrics: its own bookkeeping, not the node's work.
const SCHEDULER_INTERNALS: &str = "node.local_wakeup.";

/// How a node metric behaves, as the OpenTelemetry instrument it maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMetricKind {
    /// Only goes up (a running total).
    Counter,
    /// A total that goes up and down.
    UpDownCounter,
    /// A reading.
    Gauge,
}

/// One of a node's own metrics (the engine's metric sets: an exporter's
/// sent and failed batches, a processor's counters), all cores added up.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeMetric {
    /// The node's name in the pipeline.
    pub node: String,
    /// The full metric name: the metric set's, then the field's (`otlp.exporter.grpc.requests.sent`).
    pub name: String,
    /// UCUM unit.
    pub unit: String,
    /// What it counts.
    pub description: String,
    /// Its instrument.
    pub kind: NodeMetricKind,
    /// Its current value.
    pub value: f64,
}

/// An otap-dataflow pipeline running in this process on its own thread, fed
/// OTLP bytes directly through its `urn:wasmtel:receiver:embedded` node.
pub struct EmbeddedPipeline {
    channel: String,
    /// Serves the dashboard while the pipeline runs (when the spec asks).
    dashboard: Option<AdminGuard>,
    inbound: Arc<Inbound>,
    /// What the pipeline's embedded exporters hand back.
    outbound: Arc<Outbound>,
    control: ControlSlot,
    thread: Mutex<Option<JoinHandle<Result<(), String>>>>,
    closed: AtomicBool,
}

impl EmbeddedPipeline {
    /// Starts a pipeline from an engine spec in YAML (or JSON).
    pub fn start_yaml(yaml: &str) -> Result<Self, EmbeddedError> {
        let spec: Value = serde_yaml::from_str(yaml).map_err(SpecError::Yaml)?;
        Self::start(spec)
    }

    /// Starts a pipeline from a spec file, the format `wasmtel serve` reads;
    /// relative component paths resolve against the file's folder, as in `serve`.
    pub fn start_file(path: &Path) -> Result<Self, EmbeddedError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| EmbeddedError::Read { path: path.to_path_buf(), source })?;
        let spec: Value = serde_yaml::from_str(&text).map_err(SpecError::Yaml)?;
        Self::start_at(spec, path.parent())
    }

    /// Starts a pipeline from a spec in YAML (or JSON) whose relative
    /// component paths resolve against `base`.
    pub fn start_in(yaml: &str, base: &Path) -> Result<Self, EmbeddedError> {
        let spec: Value = serde_yaml::from_str(yaml).map_err(SpecError::Yaml)?;
        Self::start_at(spec, Some(base))
    }

    /// Starts a pipeline from an engine spec (`version: otel_dataflow/v1`, …);
    /// relative component paths resolve against the working directory.
    pub fn start(spec: Value) -> Result<Self, EmbeddedError> {
        Self::start_at(spec, None)
    }

    fn start_at(mut spec: Value, base: Option<&Path>) -> Result<Self, EmbeddedError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let channel = format!("embedded-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let bound = bind_receivers(&mut spec, &channel);
        if bound == 0 {
            return Err(SpecError::NoEmbeddedReceiver.into());
        }
        prepare_engine(&mut spec)?;
        let runtime = crate::spec::prepare(&mut spec, base)?;
        if !crate::shared_runtime::configure_runtime(runtime)
            && spec.pointer("/engine/custom/wasmtel/runtime").is_some()
        {
            // One runtime per process: the first pipeline's settings hold.
            tracing::warn!("engine.custom.wasmtel.runtime ignored: this process's wasm runtime already runs");
        }
        crate::spec::post_to_board(&mut spec, &channel);
        // From here a failed start must also forget the board.
        let dashboard_and_spec = Self::start_dashboard(&spec, &channel)
            .and_then(|dashboard| Ok((dashboard, crate::spec::to_engine_spec(&spec)?)));
        let (dashboard, spec) = dashboard_and_spec.inspect_err(|_| board::clear(&channel))?;

        let inbound = Inbound::new(1024);
        embedded_receiver::CHANNELS.register(&channel, inbound.clone());
        let outbound = Outbound::new();
        embedded_exporter::CHANNELS.register(&channel, outbound.clone());
        let control: ControlSlot = Arc::new((Mutex::new(None), Condvar::new()));
        let mut extensions = ControllerExtensionRegistry::default();
        let slot = control.clone();
        extensions.register(
            HANDLE_EXTENSION_URN.into(),
            move |ctx: ControllerExtensionContext| {
                let (lock, ready) = &*slot;
                *lock.lock().unwrap_or_else(PoisonError::into_inner) = Some(EngineHandles {
                    control_plane: ctx.control_plane.clone(),
                    telemetry: ctx.telemetry_registry.clone(),
                });
                ready.notify_all();
                let task: ControllerExtensionTaskFactory = Box::new(|cancel| {
                    Box::pin(async move {
                        cancel.cancelled().await;
                        Ok(())
                    })
                });
                Ok(task)
            },
            |_| Ok(()),
        );
        let options = ControllerRunOptions {
            extensions,
            build_info: otel_arrow_dfe_controller::BuildInfo {
                service_name: Some("wasmtel-embedded".into()),
                service_version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            handle_os_signals: false,
        };
        let thread = std::thread::Builder::new()
            .name("wasmtel-pipeline".into())
            .spawn(move || {
                Controller::new(&crate::OTAP_PIPELINE_FACTORY)
                    .run_forever_with_options(spec, options)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| EmbeddedError::Start(format!("cannot spawn the pipeline thread: {e}")))?;

        let pipeline = EmbeddedPipeline {
            channel,
            dashboard,
            inbound,
            outbound,
            control,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
        };
        pipeline.wait_started(Duration::from_secs(60))?;
        Ok(pipeline)
    }

    /// Serves the dashboard of `channel` when the spec sets
    /// `engine.custom.wasmtel.dashboard.bind_address`.
    fn start_dashboard(spec: &Value, channel: &str) -> Result<Option<AdminGuard>, EmbeddedError> {
        let Some(address) = spec.pointer("/engine/custom/wasmtel/dashboard/bind_address").and_then(Value::as_str)
        else {
            return Ok(None);
        };
        admin_guard::start(address, None, channel, admin_guard::Behind::Nothing)
            .map(Some)
            .map_err(|e| EmbeddedError::Start(format!("dashboard: {e}")))
    }

    /// Waits until the controller has started its pipelines (it hands over
    /// its control plane then), or reports why it stopped.
    fn wait_started(&self, timeout: Duration) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.control;
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while slot.is_none() {
            let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
            if thread.as_ref().is_some_and(JoinHandle::is_finished) {
                drop(slot);
                let result = thread.take().map(JoinHandle::join);
                self.closed.store(true, Ordering::Release);
                self.forget_channel();
                return Err(EmbeddedError::Start(match result {
                    Some(Ok(Err(e))) => e,
                    Some(Err(_)) => "the pipeline thread panicked".into(),
                    _ => "the pipeline stopped during start-up".into(),
                }));
            }
            drop(thread);
            if Instant::now() >= deadline {
                return Err(EmbeddedError::Start(format!("not started after {timeout:?}")));
            }
            slot = ready.wait_timeout(slot, Duration::from_millis(50)).unwrap_or_else(PoisonError::into_inner).0;
        }
        Ok(())
    }

    /// Hands over an `ExportTraceServiceRequest` and waits for the pipeline's Ack or Nack.
    pub fn export_traces(&self, otlp: impl Into<Bytes>) -> Result<(), EmbeddedError> {
        self.export(Signal::Traces, otlp.into())
    }

    /// Hands over an `ExportMetricsServiceRequest` and waits for the pipeline's Ack or Nack.
    pub fn export_metrics(&self, otlp: impl Into<Bytes>) -> Result<(), EmbeddedError> {
        self.export(Signal::Metrics, otlp.into())
    }

    /// Hands over an `ExportLogsServiceRequest` and waits for the pipeline's Ack or Nack.
    pub fn export_logs(&self, otlp: impl Into<Bytes>) -> Result<(), EmbeddedError> {
        self.export(Signal::Logs, otlp.into())
    }

    /// Hands an OTLP `Export*ServiceRequest` to the pipeline and blocks until
    /// it is acknowledged (exported, or dropped on purpose by a processor) or
    /// refused. Blocks while the pipeline's queue is full.
    pub fn export(&self, signal: Signal, otlp: Bytes) -> Result<(), EmbeddedError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.enqueue(signal, otlp, Reply::Blocking(tx))?;
        outcome(rx.recv().unwrap_or(Completion::Stopped))
    }

    /// As [`Self::export`], within `budget`: a queue still full when it ends
    /// is [`EmbeddedError::Backpressure`], a batch not answered by then
    /// [`EmbeddedError::NotAnswered`] (both retryable: the batch may still be
    /// delivered, as after any lost acknowledgement).
    pub fn export_within(&self, signal: Signal, otlp: Bytes, budget: Duration) -> Result<(), EmbeddedError> {
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let request = self.request(signal, otlp, Reply::Blocking(tx))?;
        self.inbound.begin();
        match self.inbound.tx.send_timeout(request, budget) {
            Ok(()) => {}
            Err(flume::SendTimeoutError::Timeout(unsent)) => {
                self.inbound.complete(unsent.reply, Completion::Stopped);
                return Err(EmbeddedError::Backpressure { waited: budget });
            }
            Err(flume::SendTimeoutError::Disconnected(unsent)) => {
                self.inbound.complete(unsent.reply, Completion::Stopped);
                return Err(EmbeddedError::Stopped);
            }
        }
        let left = budget.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(completion) => outcome(completion),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(EmbeddedError::NotAnswered { waited: budget }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(EmbeddedError::Stopped),
        }
    }

    /// As [`Self::export`], for async callers.
    pub async fn export_async(&self, signal: Signal, otlp: Bytes) -> Result<(), EmbeddedError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let request = self.request(signal, otlp, Reply::Async(tx))?;
        self.inbound.begin();
        if let Err(unsent) = self.inbound.tx.send_async(request).await {
            self.inbound.complete(unsent.into_inner().reply, Completion::Stopped);
        }
        outcome(rx.await.unwrap_or(Completion::Stopped))
    }

    /// Queues a batch without waiting for its outcome; see [`Self::flush`] and [`Self::stats`].
    pub fn submit(&self, signal: Signal, otlp: Bytes) -> Result<(), EmbeddedError> {
        self.enqueue(signal, otlp, Reply::Detached)
    }

    fn request(&self, signal: Signal, otlp: Bytes, reply: Reply) -> Result<Request, EmbeddedError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EmbeddedError::ShuttingDown);
        }
        wasmtel_runtime::otlp::validate(signal, &otlp)
            .map_err(|e| EmbeddedError::InvalidInput { signal, message: e.to_string() })?;
        Ok(Request { signal: signal_type(signal), otlp, reply })
    }

    fn enqueue(&self, signal: Signal, otlp: Bytes, reply: Reply) -> Result<(), EmbeddedError> {
        let request = self.request(signal, otlp, reply)?;
        self.inbound.begin();
        if let Err(unsent) = self.inbound.tx.send(request) {
            self.inbound.complete(unsent.into_inner().reply, Completion::Stopped);
            return Err(EmbeddedError::Stopped);
        }
        Ok(())
    }

    /// Waits until every batch handed over so far has completed.
    pub fn flush(&self, timeout: Duration) -> Result<EmbeddedStats, EmbeddedError> {
        if self.inbound.wait_idle(timeout) {
            Ok(self.stats())
        } else {
            Err(EmbeddedError::Timeout { in_flight: self.inbound.in_flight(), waited: timeout })
        }
    }

    /// Outcomes of the batches handed over so far.
    pub fn stats(&self) -> EmbeddedStats {
        EmbeddedStats {
            accepted: self.inbound.accepted.load(Ordering::Relaxed),
            refused: self.inbound.refused.load(Ordering::Relaxed),
            stopped: self.inbound.stopped.load(Ordering::Relaxed),
            in_flight: self.inbound.in_flight(),
        }
    }

    /// The metrics of each wasm node's plugin (keyed by node name, all cores added up).
    pub fn plugin_metrics(&self) -> BTreeMap<String, MetricsSnapshot> {
        crate::dashboard::processors(&self.channel).into_iter().map(|p| (p.node, p.metrics)).collect()
    }

    /// The next batch an embedded exporter (`urn:wasmtel:exporter:embedded`)
    /// of this pipeline hands back, waiting at most `timeout`. Answer it: its
    /// submitter hears back only then.
    pub fn next_output(&self, timeout: Duration) -> Option<Output> {
        self.outbound.rx.recv_timeout(timeout).ok()
    }

    /// Unregisters the pipeline's ingress, egress and board.
    fn forget_channel(&self) {
        embedded_receiver::CHANNELS.unregister(&self.channel);
        embedded_exporter::CHANNELS.unregister(&self.channel);
        board::clear(&self.channel);
    }

    /// Every node's own metrics (counters, up-down counters and gauges; the
    /// engine's distributions and its wake-up scheduler's internals are left
    /// out), by node name and metric name,
    /// all cores added up. Empty until the pipeline has started. Nodes
    /// report to the engine's registry periodically, so a value can trail
    /// the batches by the engine's reporting interval.
    pub fn node_metrics(&self) -> Vec<NodeMetric> {
        let handles = self.control.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(handles) = handles else { return Vec::new() };
        let mut summed: BTreeMap<(String, String), NodeMetric> = BTreeMap::new();
        handles.telemetry.visit_current_metrics_with_zeroes(
            |descriptor, attributes, values| {
                let Some(node) = attributes
                    .iter_attributes()
                    .find(|(key, _)| *key == "node.id")
                    .map(|(_, value)| value.to_string_value())
                else {
                    return;
                };
                for (field, value) in values {
                    let kind = match field.instrument {
                        Instrument::Counter => NodeMetricKind::Counter,
                        Instrument::UpDownCounter => NodeMetricKind::UpDownCounter,
                        Instrument::Gauge => NodeMetricKind::Gauge,
                        _ => continue,
                    };
                    let value = match value {
                        MetricValue::U64(v) => *v as f64,
                        MetricValue::F64(v) => *v,
                        MetricValue::Distribution(_) => continue,
                    };
                    let name = format!("{}.{}", descriptor.name, field.name);
                    if name.starts_with(SCHEDULER_INTERNALS) {
                        continue;
                    }
                    summed.entry((node.clone(), name.clone())).and_modify(|m| m.value += value).or_insert_with(|| {
                        NodeMetric {
                            node: node.clone(),
                            name,
                            unit: field.unit.to_string(),
                            description: field.brief.to_string(),
                            kind,
                            value,
                        }
                    });
                }
            },
            true,
        );
        summed.into_values().collect()
    }

    /// Where the dashboard is served, when the spec sets
    /// `engine.custom.wasmtel.dashboard.bind_address`.
    pub fn dashboard_address(&self) -> Option<std::net::SocketAddr> {
        self.dashboard.as_ref().map(|d| d.public)
    }

    /// The dashboard's status ([`crate::dashboard::Status`]) of this pipeline.
    pub fn status(&self) -> crate::dashboard::Status {
        crate::dashboard::status(&self.channel)
    }

    /// Stops taking batches, lets the ones in flight finish (within
    /// `timeout`), drains and stops the pipeline, and joins its thread.
    pub fn shutdown(self, timeout: Duration) -> Result<EmbeddedStats, EmbeddedError> {
        self.close(timeout)
    }

    /// Whether [`Self::close`] (or `shutdown`) has begun: new batches are refused.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// [`Self::shutdown`] through a shared handle (the SDK exporters hold
    /// `Arc`s): later batches are refused; a second call returns the stats.
    pub fn close(&self, timeout: Duration) -> Result<EmbeddedStats, EmbeddedError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(self.stats());
        }
        let started = Instant::now();
        let stopped_before = self.inbound.stopped.load(Ordering::Relaxed);
        // Queued batches are admitted, and most in flight finish, before
        // the engine is asked to stop; a batch a processor holds until its
        // shutdown (a batch processor's) finishes during it, so this wait is
        // bounded well below the whole budget.
        self.inbound.wait_idle((timeout / 4).min(CLOSE_GRACE));
        let control = self.control.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
        let shutdown = match control {
            Some(handles) => handles.control_plane.shutdown_all(left.as_secs().max(1)).map_err(|e| format!("{e:?}")),
            None => Err("the pipeline never started".to_string()),
        };
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        let joined = match thread.map(JoinHandle::join) {
            Some(Ok(Err(error))) if only_no_admin_server(&error) => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the pipeline thread panicked".to_string()),
            None => Ok(()),
        };
        self.forget_channel();
        self.inbound.reject_queued();
        self.outbound.refuse_queued();
        shutdown.map_err(EmbeddedError::Pipeline)?;
        joined.map_err(EmbeddedError::Pipeline)?;
        // Every batch is answered by now; those the stop cut short say so.
        let unfinished = self.inbound.stopped.load(Ordering::Relaxed) - stopped_before;
        if unfinished > 0 {
            return Err(EmbeddedError::Timeout { in_flight: unfinished, waited: timeout });
        }
        Ok(self.stats())
    }
}

impl Drop for EmbeddedPipeline {
    fn drop(&mut self) {
        // Never leave the pipeline thread running behind a dropped handle.
        let _ = self.close(Duration::from_secs(10));
    }
}

fn outcome(completion: Completion) -> Result<(), EmbeddedError> {
    match completion {
        Completion::Accepted => Ok(()),
        Completion::Refused { reason, permanent } => Err(EmbeddedError::Refused { reason, permanent }),
        Completion::Stopped => Err(EmbeddedError::Stopped),
    }
}

fn signal_type(signal: Signal) -> SignalType {
    match signal {
        Signal::Traces => SignalType::Traces,
        Signal::Metrics => SignalType::Metrics,
        Signal::Logs => SignalType::Logs,
    }
}

/// Points every embedded receiver of the spec at `channel`; returns how many.
fn bind_receivers(spec: &mut Value, channel: &str) -> usize {
    let mut bound = 0;
    for_each_node(spec, |_, node| match node.get("type").and_then(Value::as_str) {
        Some(EMBEDDED_RECEIVER_URN) => {
            node["config"] = json!({ "channel": channel });
            bound += 1;
        }
        // An egress keeps its other settings (max_in_flight).
        Some(EMBEDDED_EXPORTER_URN) => {
            if !node.get("config").is_some_and(Value::is_object) {
                node["config"] = json!({});
            }
            node["config"]["channel"] = json!(channel);
        }
        _ => {}
    });
    bound
}

/// `engine.http_admin.bind_address` of an embedded pipeline whose spec sets
/// none. Not an address, so the controller's admin server never listens: in
/// 0.62 it has no authentication, and any local user who found its port
/// could shut down or replace the pipeline (and with it make this process
/// load components or write files of their choosing). The controller logs
/// the failed start once and reports it when it stops; `close` leaves that
/// report out.
const NO_ADMIN_SERVER: &str = "none (wasmtel: no admin server in an embedded pipeline)";

/// Whether the pipeline thread's error is only the admin server that was
/// never meant to start.
fn only_no_admin_server(error: &str) -> bool {
    error.contains(NO_ADMIN_SERVER)
}

/// No admin server unless the spec asks for one, and the extension that
/// hands the control plane over.
fn prepare_engine(spec: &mut Value) -> Result<(), EmbeddedError> {
    let Some(root) = spec.as_object_mut() else {
        return Err(SpecError::NotAMapping { what: "the spec" }.into());
    };
    let engine = root.entry("engine").or_insert_with(|| json!({}));
    let Some(engine) = engine.as_object_mut() else {
        return Err(SpecError::NotAMapping { what: "`engine`" }.into());
    };
    if engine.get("http_admin").is_none_or(Value::is_null) {
        engine.insert("http_admin".into(), json!({ "bind_address": NO_ADMIN_SERVER }));
    }
    let controller = engine.entry("controller").or_insert_with(|| json!({}));
    let extensions = controller
        .as_object_mut()
        .map(|c| c.entry("extensions").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| EmbeddedError::from(SpecError::NotAMapping { what: "`engine.controller.extensions`" }))?;
    extensions.insert(HANDLE_EXTENSION_ID.into(), json!({ "type": HANDLE_EXTENSION_URN, "config": {} }));
    Ok(())
}
