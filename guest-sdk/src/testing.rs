//! Running a processor natively, as the host would, and small builders for
//! test requests. Ids and timestamps are fixed so tests are reproducible.

use prost::Message;

use crate::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
use crate::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::otlp::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use crate::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Outcome, ProcessError, Processor,
    Signal, parse_config,
};

pub use crate::attributes::kv;

/// Builds a processor from config JSON exactly as the component's `init` does.
pub fn new<P: Processor>(config_json: &str) -> Result<P, String> {
    P::new(parse_config(config_json)?)
}

/// Runs one encoded OTLP request through the processor.
pub fn run<P: Processor>(processor: &mut P, signal: Signal, otlp: &[u8]) -> Result<Outcome, ProcessError> {
    processor.process_raw(signal, otlp.to_vec())
}

/// Runs a typed request; a `Replaced` result is also returned decoded as `M`.
pub fn run_typed<P: Processor, M: Message + Default>(
    processor: &mut P,
    signal: Signal,
    request: &M,
) -> Result<(Outcome, Option<M>), ProcessError> {
    let outcome = run(processor, signal, &request.encode_to_vec())?;
    let decoded = match &outcome {
        Outcome::Replaced(bytes) => Some(M::decode(&bytes[..]).map_err(|e| ProcessError::permanent(e.to_string()))?),
        _ => None,
    };
    Ok((outcome, decoded))
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource { attributes, ..Default::default() })
}

/// A traces request: one resource with these attributes, one scope, these spans.
pub fn traces(resource_attributes: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(resource_attributes),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A span with fixed ids (trace `0102…10`, span `0102…08`) and timestamps.
pub fn span(name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        name: name.to_string(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_001_000_000,
        attributes,
        ..Default::default()
    }
}

/// A logs request: one resource with these attributes, one scope, these records.
pub fn logs(resource_attributes: Vec<KeyValue>, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(resource_attributes),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A log record with a string body and a severity number (9 = INFO).
pub fn log_record(severity_number: i32, body: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number,
        body: Some(AnyValue { value: Some(Value::StringValue(body.to_string())) }),
        attributes,
        ..Default::default()
    }
}

/// A metrics request: one resource with these attributes, one scope, these metrics.
pub fn metrics(resource_attributes: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(resource_attributes),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A gauge metric.
pub fn gauge(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    Metric { name: name.to_string(), data: Some(Data::Gauge(Gauge { data_points })), ..Default::default() }
}

/// A monotonic cumulative sum metric.
pub fn sum(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    let sum = Sum { data_points, aggregation_temporality: 2, is_monotonic: true };
    Metric { name: name.to_string(), data: Some(Data::Sum(sum)), ..Default::default() }
}

/// A number data point holding an integer.
pub fn point(value: i64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsInt(value)),
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::AttributesExt;

    #[test]
    fn builders_make_well_formed_requests() {
        let t = traces(vec![kv("service.name", "a")], vec![span("GET /", vec![kv("http.route", "/")])]);
        let decoded = ExportTraceServiceRequest::decode(&t.encode_to_vec()[..]).unwrap();
        let s = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
        assert_eq!(s.attributes.get_str("http.route"), Some("/"));
        let l = logs(vec![], vec![log_record(9, "hi", vec![])]);
        assert_eq!(l.resource_logs[0].scope_logs[0].log_records[0].severity_number, 9);
        let m = metrics(vec![], vec![gauge("g", vec![point(1, vec![])]), sum("s", vec![])]);
        assert_eq!(m.resource_metrics[0].scope_metrics[0].metrics.len(), 2);
    }
}
