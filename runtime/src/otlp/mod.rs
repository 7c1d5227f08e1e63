//! OTLP signals and the protobuf/JSON encodings the host reads and writes.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::Serialize;

pub use wasmtel_component::Signal;

mod wire;
pub use wire::{Fixes, InvalidOtlp, KnownItems, Scan, rewrite, scan, scan_recording, scan_reusing, validate};

/// The request in a form otap-dataflow 0.62's OTLP → OTAP conversion reads
/// safely and in linear time: unchanged (borrowed) when it already is, else
/// rewritten with [`Fixes::FOR_OTAP`] (what a decode → encode through prost
/// would give, at the cost of one copy).
pub fn for_otap(signal: Signal, bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, InvalidOtlp> {
    if scan(signal, bytes)?.fit_for_otap() {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    rewrite(signal, bytes, Fixes::FOR_OTAP).map(std::borrow::Cow::Owned)
}

/// Counts the telemetry items (spans, data points, log records) in a request.
pub fn count_items(signal: Signal, bytes: &[u8]) -> Result<usize, prost::DecodeError> {
    Ok(match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(bytes)?
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum(),
        Signal::Logs => ExportLogsServiceRequest::decode(bytes)?
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum(),
        Signal::Metrics => {
            use opentelemetry_proto::tonic::metrics::v1::metric::Data;
            ExportMetricsServiceRequest::decode(bytes)?
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                })
                .sum()
        }
    })
}

/// Errors converting between OTLP/JSON and OTLP/protobuf.
#[derive(Debug, thiserror::Error)]
pub enum EncodingError {
    /// The JSON is not an OTLP/JSON request of the signal (or, rarely, a
    /// decoded request could not be rendered as JSON).
    #[error("not valid OTLP/JSON {signal}: {source}")]
    Json {
        /// The signal the bytes were read as.
        signal: Signal,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The bytes do not decode as an OTLP/protobuf request of the signal.
    #[error("not valid OTLP/protobuf {signal}: {source}")]
    Protobuf {
        /// The signal the bytes were read as.
        signal: Signal,
        /// The protobuf decoding error.
        source: prost::DecodeError,
    },
}

/// OTLP/JSON (as the collector's file exporter writes it) to OTLP/protobuf.
pub fn json_to_protobuf(signal: Signal, json: &[u8]) -> Result<Vec<u8>, EncodingError> {
    fn encode<M: Message + serde::de::DeserializeOwned>(signal: Signal, json: &[u8]) -> Result<Vec<u8>, EncodingError> {
        let message: M = serde_json::from_slice(json).map_err(|source| EncodingError::Json { signal, source })?;
        Ok(message.encode_to_vec())
    }
    match signal {
        Signal::Traces => encode::<ExportTraceServiceRequest>(signal, json),
        Signal::Metrics => encode::<ExportMetricsServiceRequest>(signal, json),
        Signal::Logs => encode::<ExportLogsServiceRequest>(signal, json),
    }
}

/// OTLP/protobuf to pretty OTLP/JSON.
pub fn protobuf_to_json(signal: Signal, bytes: &[u8]) -> Result<String, EncodingError> {
    fn render<M: Message + Default + Serialize>(signal: Signal, bytes: &[u8]) -> Result<String, EncodingError> {
        let message = M::decode(bytes).map_err(|source| EncodingError::Protobuf { signal, source })?;
        serde_json::to_string_pretty(&message).map_err(|source| EncodingError::Json { signal, source })
    }
    match signal {
        Signal::Traces => render::<ExportTraceServiceRequest>(signal, bytes),
        Signal::Metrics => render::<ExportMetricsServiceRequest>(signal, bytes),
        Signal::Logs => render::<ExportLogsServiceRequest>(signal, bytes),
    }
}
