//! The newest records a wasm node emitted, summarised for the dashboard:
//! decoded only when the dashboard asks, and only the last few of the batch.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde::Serialize;
use wasmtel_runtime::Signal;

/// How many records of a batch the dashboard shows.
pub(crate) const SHOWN: usize = 5;
/// Longest value shown, in characters.
const VALUE_CHARS: usize = 160;
/// Most attributes shown per record.
const ATTRIBUTES: usize = 16;

/// One record as the dashboard shows it.
#[derive(Debug, Serialize, PartialEq)]
pub struct Record {
    /// The resource's `service.name`, if any.
    pub service: String,
    /// Span name, metric name, or log severity.
    pub name: String,
    /// Trace ID (spans, logs), hex.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    /// Log body, metric value, or span duration and status.
    pub detail: String,
    /// The record's attributes as `[key, value]`.
    pub attributes: Vec<(String, String)>,
    /// Start or observation time, Unix nanoseconds.
    pub time_unix_nano: u64,
}

/// The last [`SHOWN`] records of an OTLP request, or why it does not decode.
pub(crate) fn last_records(signal: Signal, otlp: &[u8]) -> Result<Vec<Record>, prost::DecodeError> {
    let mut records = Vec::new();
    match signal {
        Signal::Traces => {
            for resource_spans in ExportTraceServiceRequest::decode(otlp)?.resource_spans {
                let service = service_name(resource_spans.resource.as_ref());
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    let duration_us = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1_000;
                    let status = span.status.map_or(0, |s| s.code);
                    records.push(Record {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        detail: format!("{duration_us} µs, status {}", status_name(status)),
                        attributes: attributes(&span.attributes),
                        time_unix_nano: span.start_time_unix_nano,
                    });
                }
            }
        }
        Signal::Logs => {
            for resource_logs in ExportLogsServiceRequest::decode(otlp)?.resource_logs {
                let service = service_name(resource_logs.resource.as_ref());
                for log in resource_logs.scope_logs.into_iter().flat_map(|s| s.log_records) {
                    let severity = if log.severity_text.is_empty() {
                        format!("severity {}", log.severity_number)
                    } else {
                        log.severity_text
                    };
                    records.push(Record {
                        service: service.clone(),
                        name: severity,
                        trace_id: hex(&log.trace_id),
                        detail: log.body.as_ref().map(text).unwrap_or_default(),
                        attributes: attributes(&log.attributes),
                        time_unix_nano: if log.time_unix_nano != 0 {
                            log.time_unix_nano
                        } else {
                            log.observed_time_unix_nano
                        },
                    });
                }
            }
        }
        Signal::Metrics => {
            for resource_metrics in ExportMetricsServiceRequest::decode(otlp)?.resource_metrics {
                let service = service_name(resource_metrics.resource.as_ref());
                for metric in resource_metrics.scope_metrics.into_iter().flat_map(|s| s.metrics) {
                    for (detail, attrs, time) in points(metric.data) {
                        records.push(Record {
                            service: service.clone(),
                            name: metric.name.clone(),
                            trace_id: String::new(),
                            detail,
                            attributes: attrs,
                            time_unix_nano: time,
                        });
                    }
                }
            }
        }
    }
    let skip = records.len().saturating_sub(SHOWN);
    Ok(records.split_off(skip))
}

/// A data point as shown: its value, attributes and time.
type Point = (String, Vec<(String, String)>, u64);

/// Every data point of a metric.
fn points(data: Option<metric::Data>) -> Vec<Point> {
    let number = |value: Option<number_data_point::Value>| match value {
        Some(number_data_point::Value::AsDouble(v)) => v.to_string(),
        Some(number_data_point::Value::AsInt(v)) => v.to_string(),
        None => String::new(),
    };
    match data {
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| (format!("gauge {}", number(p.value)), attributes(&p.attributes), p.time_unix_nano))
            .collect(),
        Some(metric::Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| (format!("sum {}", number(p.value)), attributes(&p.attributes), p.time_unix_nano))
            .collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let sum = p.sum.map_or_else(String::new, |s| format!(", sum {s}"));
                (format!("histogram count {}{sum}", p.count), attributes(&p.attributes), p.time_unix_nano)
            })
            .collect(),
        Some(metric::Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| (format!("exponential histogram count {}", p.count), attributes(&p.attributes), p.time_unix_nano))
            .collect(),
        Some(metric::Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| (format!("summary count {}, sum {}", p.count, p.sum), attributes(&p.attributes), p.time_unix_nano))
            .collect(),
        None => Vec::new(),
    }
}

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .and_then(|kv| kv.value.as_ref())
        .map(text)
        .unwrap_or_default()
}

fn attributes(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .take(ATTRIBUTES)
        .map(|kv| (shorten(kv.key.clone()), kv.value.as_ref().map(text).unwrap_or_default()))
        .collect()
}

/// An attribute or body value as text (nested values in a JSON-like form).
fn text(value: &AnyValue) -> String {
    fn write(value: &AnyValue, out: &mut String) {
        use std::fmt::Write;
        match &value.value {
            Some(any_value::Value::StringValue(s)) => out.push_str(s),
            Some(any_value::Value::BoolValue(b)) => {
                let _ = write!(out, "{b}");
            }
            Some(any_value::Value::IntValue(i)) => {
                let _ = write!(out, "{i}");
            }
            Some(any_value::Value::DoubleValue(d)) => {
                let _ = write!(out, "{d}");
            }
            Some(any_value::Value::BytesValue(b)) => out.push_str(&hex(b)),
            Some(any_value::Value::ArrayValue(array)) => {
                out.push('[');
                for (i, item) in array.values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Some(any_value::Value::KvlistValue(list)) => {
                out.push('{');
                for (i, kv) in list.values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&kv.key);
                    out.push_str(": ");
                    if let Some(v) = &kv.value {
                        write(v, out);
                    }
                }
                out.push('}');
            }
            Some(any_value::Value::StringValueStrindex(i)) => {
                let _ = write!(out, "#{i}");
            }
            None => {}
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    shorten(out)
}

fn shorten(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(VALUE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_last_spans_with_service_attributes_and_nested_values() {
        let spans = (0..8)
            .map(|i| Span {
                name: format!("span-{i}"),
                trace_id: vec![0xab; 16],
                start_time_unix_nano: 1_000,
                end_time_unix_nano: 3_001_000,
                attributes: vec![
                    string("user.email", "***"),
                    KeyValue {
                        key: "list".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::ArrayValue(ArrayValue {
                                values: vec![
                                    AnyValue { value: Some(any_value::Value::IntValue(1)) },
                                    AnyValue { value: Some(any_value::Value::StringValue("x".repeat(400))) },
                                ],
                            })),
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: vec![string("service.name", "checkout")], ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        };
        let records = last_records(Signal::Traces, &request.encode_to_vec()).unwrap();
        let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["span-3", "span-4", "span-5", "span-6", "span-7"]);
        let last = &records[4];
        assert_eq!(last.service, "checkout");
        assert_eq!(last.trace_id, "ab".repeat(16));
        assert_eq!(last.detail, "3000 µs, status unset");
        assert_eq!(last.attributes[0], ("user.email".to_string(), "***".to_string()));
        let list = &last.attributes[1].1;
        assert!(list.starts_with("[1, xxx") && list.ends_with('…'), "{list}");
        assert_eq!(list.chars().count(), VALUE_CHARS + 1);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(last_records(Signal::Logs, &[0x0a, 0xff, 0xff]).is_err());
    }
}
