//! OpenTelemetry SDK exporters (`opentelemetry_sdk` 0.33) that feed an
//! [`EmbeddedPipeline`]: an application instrumented with the Rust SDK puts
//! sandboxed processors in front of its telemetry with one line of setup.
//!
//! ```no_run
//! use std::sync::Arc;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use wasmtel_dataflow::{EmbeddedPipeline, sdk::SpanExporter};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = Arc::new(EmbeddedPipeline::start_file("examples/embedded.yaml".as_ref())?);
//! let provider = SdkTracerProvider::builder().with_batch_exporter(SpanExporter::new(pipeline.clone())).build();
//! # Ok(()) }
//! ```
//!
//! Each exporter turns the SDK's batch into an OTLP `Export*ServiceRequest`
//! with `opentelemetry-proto`'s own transforms and awaits the pipeline's Ack.
//! The exporters of one application share one pipeline (an `Arc`); shutting
//! an exporter down flushes the pipeline; the application stops the pipeline
//! with [`EmbeddedPipeline::close`] after its providers (or when the last
//! handle is dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::LogBatch;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;
use wasmtel_runtime::Signal;

use crate::EmbeddedPipeline;

/// How long `force_flush` waits for the pipeline (the SDK passes no timeout).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The pipeline an exporter feeds, and whether the exporter was shut down.
struct Feed {
    pipeline: Arc<EmbeddedPipeline>,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("stats", &self.pipeline.stats()).field("shut_down", &self.shut_down).finish()
    }
}

impl Feed {
    fn new(pipeline: Arc<EmbeddedPipeline>) -> Self {
        Feed { pipeline, shut_down: AtomicBool::new(false) }
    }

    async fn send(&self, signal: Signal, request: impl Message) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.pipeline
            .export_async(signal, request.encode_to_vec().into())
            .await
            .map_err(|e| OTelSdkError::InternalFailure(format!("wasmtel pipeline: {e}")))
    }

    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        match self.pipeline.flush(timeout) {
            Ok(_) => Ok(()),
            Err(crate::EmbeddedError::Timeout { waited, .. }) => Err(OTelSdkError::Timeout(waited)),
            Err(e) => Err(OTelSdkError::InternalFailure(format!("wasmtel pipeline: {e}"))),
        }
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.flush(timeout)
    }
}

/// Exports the SDK's spans into an embedded pipeline.
#[derive(Debug)]
pub struct SpanExporter {
    feed: Feed,
    resource: ResourceAttributesWithSchema,
}

impl SpanExporter {
    /// An exporter feeding `pipeline` (shared with the other exporters).
    pub fn new(pipeline: Arc<EmbeddedPipeline>) -> Self {
        SpanExporter { feed: Feed::new(pipeline), resource: ResourceAttributesWithSchema::default() }
    }
}

impl opentelemetry_sdk::trace::SpanExporter for SpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let resource_spans = group_spans_by_resource_and_scope(batch, &self.resource);
        self.feed.send(Signal::Traces, ExportTraceServiceRequest { resource_spans }).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.feed.shutdown(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.feed.flush(FLUSH_TIMEOUT)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Exports the SDK's log records into an embedded pipeline.
#[derive(Debug)]
pub struct LogExporter {
    feed: Feed,
    resource: ResourceAttributesWithSchema,
}

impl LogExporter {
    /// An exporter feeding `pipeline` (shared with the other exporters).
    pub fn new(pipeline: Arc<EmbeddedPipeline>) -> Self {
        LogExporter { feed: Feed::new(pipeline), resource: ResourceAttributesWithSchema::default() }
    }
}

impl opentelemetry_sdk::logs::LogExporter for LogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let resource_logs = group_logs_by_resource_and_scope(&batch, &self.resource);
        self.feed.send(Signal::Logs, ExportLogsServiceRequest { resource_logs }).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.feed.shutdown(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Exports the SDK's metrics into an embedded pipeline (for a `PeriodicReader`).
#[derive(Debug)]
pub struct MetricExporter {
    feed: Feed,
    temporality: Temporality,
}

impl MetricExporter {
    /// An exporter feeding `pipeline` with cumulative temporality.
    pub fn new(pipeline: Arc<EmbeddedPipeline>) -> Self {
        MetricExporter { feed: Feed::new(pipeline), temporality: Temporality::Cumulative }
    }

    /// The same exporter asking the SDK for `temporality` (delta, say).
    pub fn with_temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }
}

impl PushMetricExporter for MetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        self.feed.send(Signal::Metrics, ExportMetricsServiceRequest::from(metrics)).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.feed.flush(FLUSH_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.feed.shutdown(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}
