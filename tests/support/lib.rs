//! Shared helpers for the cross-crate tests: where the built components are,
//! and small OTLP batches to feed them.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use wasmtel_runtime::{ComponentSource, LoadError, Plugin, PluginConfig, Runtime, RuntimeConfig};

pub mod crafted;
pub mod hostile_otlp;
#[path = "paths.rs"]
mod paths;
pub use paths::{component, components_dir, workspace_root};

/// A runtime with its own cache directory, so tests never share state.
pub fn runtime() -> (Runtime, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_total_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts");
    (runtime, cache)
}

/// Loads the built component of workspace crate `crate_name` as a plugin of that name.
pub fn load(runtime: &Runtime, crate_name: &str, config: PluginConfig) -> Result<Plugin, LoadError> {
    runtime.load_plugin(crate_name, ComponentSource::Path(component(crate_name)), config)
}

/// A string-valued attribute.
pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

/// One resource with the given spans, each `(name, attributes)`.
pub fn traces(spans: &[(&str, Vec<KeyValue>)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .iter()
                    .enumerate()
                    .map(|(i, (name, attributes))| Span {
                        trace_id: [(i as u8).wrapping_add(1); 16].to_vec(),
                        span_id: [(i as u8).wrapping_add(1); 8].to_vec(),
                        name: name.to_string(),
                        start_time_unix_nano: 1_700_000_000_000_000_000,
                        end_time_unix_nano: 1_700_000_000_100_000_000,
                        attributes: attributes.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// [`traces`], encoded as OTLP/protobuf.
pub fn traces_bytes(spans: &[(&str, Vec<KeyValue>)]) -> Vec<u8> {
    traces(spans).encode_to_vec()
}

/// A traces batch with one span of that name: how the hostile component is steered.
pub fn span_named(name: &str) -> Vec<u8> {
    traces_bytes(&[(name, vec![])])
}

/// One resource with INFO log records, each `(string body, attributes)`.
pub fn logs(bodies: &[(&str, Vec<KeyValue>)]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|(body, attributes)| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.to_string())) }),
                        attributes: attributes.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One resource with a gauge metric `name`, one double data point per `(value, attributes)`.
pub fn gauge(name: &str, points: &[(f64, Vec<KeyValue>)]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "checkout")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.to_string(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points
                            .iter()
                            .map(|(value, attributes)| NumberDataPoint {
                                attributes: attributes.clone(),
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(
                                    opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(*value),
                                ),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Runs `body` with a fresh `tracing` subscriber and returns what it logged
/// (plain text, no colours; the runtime's own events at every level).
pub fn capture_logs(body: impl FnOnce()) -> String {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        // The runtime at every level; wasmtime-wasi's per-call traces would drown it.
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,wasmtel_runtime=trace"))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    let bytes = captured.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A length-delimited protobuf field written by hand (for requests no
/// encoder would write): `tag`, the varint length of `payload`, `payload`.
pub fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let mut len = payload.len() as u64;
    while len >= 0x80 {
        out.push(len as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(payload);
    out
}
