//! Allocation-free validation of OTLP protobuf: walks the wire format against
//! the OTLP schema with prost's rules (wire types of known fields, UTF-8
//! strings, varint and length bounds, recursion limit; unknown fields skipped),
//! so it accepts exactly what a full decode would, at a fraction of the cost:
//! a guest's `replaced` output is checked on every batch.

use std::fmt;

use super::Signal;

/// prost's recursion limit for nested messages.
const RECURSION_LIMIT: u32 = 100;

#[derive(Clone, Copy)]
enum Kind {
    Varint,
    Fixed64,
    Fixed32,
    Bytes,
    Str,
    Message(&'static Schema),
    /// `repeated fixed64/double`: packed or one value per field.
    RepeatedFixed64,
    /// `repeated uint64`: packed or one value per field.
    RepeatedVarint,
}

/// The fields of one message type, by field number.
struct Schema(&'static [(u32, Kind)]);

use Kind::*;

static KEY_VALUE: Schema = Schema(&[(1, Str), (2, Message(&ANY_VALUE)), (3, Varint)]);
static ANY_VALUE: Schema = Schema(&[
    (1, Str),
    (2, Varint),
    (3, Varint),
    (4, Fixed64),
    (5, Message(&ARRAY_VALUE)),
    (6, Message(&KEY_VALUE_LIST)),
    (7, Bytes),
    (8, Varint),
]);
static ARRAY_VALUE: Schema = Schema(&[(1, Message(&ANY_VALUE))]);
static KEY_VALUE_LIST: Schema = Schema(&[(1, Message(&KEY_VALUE))]);
static SCOPE: Schema = Schema(&[(1, Str), (2, Str), (3, Message(&KEY_VALUE)), (4, Varint)]);
static ENTITY_REF: Schema = Schema(&[(1, Str), (2, Str), (3, Str), (4, Str)]);
static RESOURCE: Schema = Schema(&[(1, Message(&KEY_VALUE)), (2, Varint), (3, Message(&ENTITY_REF))]);

static TRACES: Schema = Schema(&[(1, Message(&RESOURCE_SPANS))]);
static RESOURCE_SPANS: Schema = Schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_SPANS)), (3, Str)]);
static SCOPE_SPANS: Schema = Schema(&[(1, Message(&SCOPE)), (2, Message(&SPAN)), (3, Str)]);
static SPAN: Schema = Schema(&[
    (1, Bytes),
    (2, Bytes),
    (3, Str),
    (4, Bytes),
    (5, Str),
    (6, Varint),
    (7, Fixed64),
    (8, Fixed64),
    (9, Message(&KEY_VALUE)),
    (10, Varint),
    (11, Message(&SPAN_EVENT)),
    (12, Varint),
    (13, Message(&SPAN_LINK)),
    (14, Varint),
    (15, Message(&STATUS)),
    (16, Fixed32),
]);
static SPAN_EVENT: Schema = Schema(&[(1, Fixed64), (2, Str), (3, Message(&KEY_VALUE)), (4, Varint)]);
static SPAN_LINK: Schema =
    Schema(&[(1, Bytes), (2, Bytes), (3, Str), (4, Message(&KEY_VALUE)), (5, Varint), (6, Fixed32)]);
static STATUS: Schema = Schema(&[(2, Str), (3, Varint)]);

static LOGS: Schema = Schema(&[(1, Message(&RESOURCE_LOGS))]);
static RESOURCE_LOGS: Schema = Schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_LOGS)), (3, Str)]);
static SCOPE_LOGS: Schema = Schema(&[(1, Message(&SCOPE)), (2, Message(&LOG_RECORD)), (3, Str)]);
static LOG_RECORD: Schema = Schema(&[
    (1, Fixed64),
    (11, Fixed64),
    (2, Varint),
    (3, Str),
    (5, Message(&ANY_VALUE)),
    (6, Message(&KEY_VALUE)),
    (7, Varint),
    (8, Fixed32),
    (9, Bytes),
    (10, Bytes),
    (12, Str),
]);

static METRICS: Schema = Schema(&[(1, Message(&RESOURCE_METRICS))]);
static RESOURCE_METRICS: Schema = Schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_METRICS)), (3, Str)]);
static SCOPE_METRICS: Schema = Schema(&[(1, Message(&SCOPE)), (2, Message(&METRIC)), (3, Str)]);
static METRIC: Schema = Schema(&[
    (1, Str),
    (2, Str),
    (3, Str),
    (5, Message(&GAUGE)),
    (7, Message(&SUM)),
    (9, Message(&HISTOGRAM)),
    (10, Message(&EXPONENTIAL_HISTOGRAM)),
    (11, Message(&SUMMARY)),
    (12, Message(&KEY_VALUE)),
]);
static GAUGE: Schema = Schema(&[(1, Message(&NUMBER_POINT))]);
static SUM: Schema = Schema(&[(1, Message(&NUMBER_POINT)), (2, Varint), (3, Varint)]);
static HISTOGRAM: Schema = Schema(&[(1, Message(&HISTOGRAM_POINT)), (2, Varint)]);
static EXPONENTIAL_HISTOGRAM: Schema = Schema(&[(1, Message(&EXPONENTIAL_POINT)), (2, Varint)]);
static SUMMARY: Schema = Schema(&[(1, Message(&SUMMARY_POINT))]);
static NUMBER_POINT: Schema = Schema(&[
    (7, Message(&KEY_VALUE)),
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (6, Fixed64),
    (5, Message(&EXEMPLAR)),
    (8, Varint),
]);
static HISTOGRAM_POINT: Schema = Schema(&[
    (9, Message(&KEY_VALUE)),
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, RepeatedFixed64),
    (7, RepeatedFixed64),
    (8, Message(&EXEMPLAR)),
    (10, Varint),
    (11, Fixed64),
    (12, Fixed64),
]);
static EXPONENTIAL_POINT: Schema = Schema(&[
    (1, Message(&KEY_VALUE)),
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, Varint),
    (7, Fixed64),
    (8, Message(&BUCKETS)),
    (9, Message(&BUCKETS)),
    (10, Varint),
    (11, Message(&EXEMPLAR)),
    (12, Fixed64),
    (13, Fixed64),
    (14, Fixed64),
]);
static BUCKETS: Schema = Schema(&[(1, Varint), (2, RepeatedVarint)]);
static SUMMARY_POINT: Schema = Schema(&[
    (7, Message(&KEY_VALUE)),
    (2, Fixed64),
    (3, Fixed64),
    (4, Fixed64),
    (5, Fixed64),
    (6, Message(&QUANTILE)),
    (8, Varint),
]);
static QUANTILE: Schema = Schema(&[(1, Fixed64), (2, Fixed64)]);
static EXEMPLAR: Schema =
    Schema(&[(7, Message(&KEY_VALUE)), (2, Fixed64), (3, Fixed64), (6, Fixed64), (4, Bytes), (5, Bytes)]);

impl Schema {
    fn field(&self, number: u32) -> Option<Kind> {
        self.0.iter().find(|(n, _)| *n == number).map(|(_, kind)| *kind)
    }
}

/// Why bytes are not a valid OTLP request, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOtlp {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for InvalidOtlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for InvalidOtlp {}

/// Checks that `bytes` decode as the OTLP request of `signal`.
pub fn validate(signal: Signal, bytes: &[u8]) -> Result<(), InvalidOtlp> {
    let schema = match signal {
        Signal::Traces => &TRACES,
        Signal::Metrics => &METRICS,
        Signal::Logs => &LOGS,
    };
    Reader { bytes, at: 0 }.message(bytes.len(), schema, 0)
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, reason: &'static str) -> InvalidOtlp {
        InvalidOtlp { offset: self.at, reason }
    }

    /// A varint as prost reads it: at most ten bytes, the tenth at most 1.
    fn varint(&mut self, end: usize) -> Result<u64, InvalidOtlp> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.bytes[..end].get(self.at) else {
                return Err(self.error("truncated varint"));
            };
            self.at += 1;
            if i == 9 && byte > 1 {
                return Err(self.error("invalid varint"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error("invalid varint"))
    }

    fn skip(&mut self, n: usize, end: usize) -> Result<(), InvalidOtlp> {
        if end - self.at < n {
            return Err(self.error("field runs past the end of its message"));
        }
        self.at += n;
        Ok(())
    }

    /// The end offset of a length-delimited field's payload.
    fn length(&mut self, end: usize) -> Result<usize, InvalidOtlp> {
        let len = self.varint(end)?;
        match usize::try_from(len) {
            Ok(len) if len <= end - self.at => Ok(self.at + len),
            _ => Err(self.error("length runs past the end of its message")),
        }
    }

    fn message(&mut self, end: usize, schema: &Schema, depth: u32) -> Result<(), InvalidOtlp> {
        while self.at < end {
            let key = self.varint(end)?;
            let (number, wire) = (key >> 3, key & 7);
            if number == 0 || number > u64::from(u32::MAX >> 3) {
                return Err(self.error("invalid field number"));
            }
            match schema.field(number as u32) {
                None => self.skip_unknown(wire, number, end, depth)?,
                Some(kind) => self.field(kind, wire, end, depth)?,
            }
        }
        Ok(())
    }

    fn field(&mut self, kind: Kind, wire: u64, end: usize, depth: u32) -> Result<(), InvalidOtlp> {
        match (kind, wire) {
            (Varint | RepeatedVarint, VARINT) => self.varint(end).map(drop),
            (Fixed64 | RepeatedFixed64, FIXED64) => self.skip(8, end),
            (Fixed32, FIXED32) => self.skip(4, end),
            (Bytes, LEN) => {
                self.at = self.length(end)?;
                Ok(())
            }
            (Str, LEN) => {
                let field_end = self.length(end)?;
                if std::str::from_utf8(&self.bytes[self.at..field_end]).is_err() {
                    return Err(self.error("string is not valid UTF-8"));
                }
                self.at = field_end;
                Ok(())
            }
            (Message(schema), LEN) => {
                if depth >= RECURSION_LIMIT {
                    return Err(self.error("recursion limit reached"));
                }
                let field_end = self.length(end)?;
                self.message(field_end, schema, depth + 1)
            }
            (RepeatedFixed64, LEN) => {
                let field_end = self.length(end)?;
                if (field_end - self.at) % 8 != 0 {
                    return Err(self.error("packed fixed64 field of a length not a multiple of 8"));
                }
                self.at = field_end;
                Ok(())
            }
            (RepeatedVarint, LEN) => {
                let field_end = self.length(end)?;
                while self.at < field_end {
                    self.varint(field_end)?;
                }
                Ok(())
            }
            _ => Err(self.error("wire type does not match the field's type")),
        }
    }

    fn skip_unknown(&mut self, wire: u64, number: u64, end: usize, depth: u32) -> Result<(), InvalidOtlp> {
        match wire {
            VARINT => self.varint(end).map(drop),
            FIXED64 => self.skip(8, end),
            FIXED32 => self.skip(4, end),
            LEN => {
                self.at = self.length(end)?;
                Ok(())
            }
            START_GROUP => {
                if depth >= RECURSION_LIMIT {
                    return Err(self.error("recursion limit reached"));
                }
                loop {
                    if self.at >= end {
                        return Err(self.error("unterminated group"));
                    }
                    let key = self.varint(end)?;
                    let (inner, inner_wire) = (key >> 3, key & 7);
                    if inner_wire == END_GROUP {
                        if inner != number {
                            return Err(self.error("mismatched end group"));
                        }
                        return Ok(());
                    }
                    if inner == 0 {
                        return Err(self.error("invalid field number"));
                    }
                    self.skip_unknown(inner_wire, inner, end, depth + 1)?;
                }
            }
            _ => Err(self.error("invalid wire type")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Differential tests: the validator must agree with prost's full decode
    //! on valid requests and on every truncation and many corruptions of them.

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar,
        exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
    use prost::Message;

    use super::*;

    fn value(v: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(v) })
    }

    fn attributes() -> Vec<KeyValue> {
        let kv = |key: &str, v: Value| KeyValue { key: key.into(), value: value(v), ..Default::default() };
        vec![
            kv("s", Value::StringValue("é".into())),
            kv("b", Value::BoolValue(true)),
            kv("i", Value::IntValue(-5)),
            kv("d", Value::DoubleValue(0.5)),
            kv("bytes", Value::BytesValue(vec![0, 255])),
            kv("a", Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(1)) }] })),
            kv("m", Value::KvlistValue(KeyValueList { values: vec![kv("k", Value::StringValue("v".into()))] })),
        ]
    }

    fn resource() -> Option<Resource> {
        Some(Resource {
            attributes: attributes(),
            dropped_attributes_count: 1,
            entity_refs: vec![EntityRef {
                r#type: "service".into(),
                id_keys: vec!["service.name".into()],
                ..Default::default()
            }],
        })
    }

    fn scope() -> Option<InstrumentationScope> {
        Some(InstrumentationScope {
            name: "lib".into(),
            version: "1".into(),
            attributes: attributes(),
            dropped_attributes_count: 2,
        })
    }

    fn traces() -> Vec<u8> {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "k=v".into(),
            parent_span_id: vec![3; 8],
            flags: 257,
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: attributes(),
            dropped_attributes_count: 3,
            events: vec![span::Event {
                time_unix_nano: 5,
                name: "e".into(),
                attributes: attributes(),
                dropped_attributes_count: 1,
            }],
            dropped_events_count: 4,
            links: vec![span::Link {
                trace_id: vec![9; 16],
                span_id: vec![8; 8],
                trace_state: "x".into(),
                attributes: attributes(),
                dropped_attributes_count: 0,
                flags: 1,
            }],
            dropped_links_count: 5,
            status: Some(Status { message: "boom".into(), code: 2 }),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    scope: scope(),
                    spans: vec![span.clone(), span],
                    schema_url: "u".into(),
                }],
                schema_url: "r".into(),
            }],
        }
        .encode_to_vec()
    }

    fn logs() -> Vec<u8> {
        let record = LogRecord {
            time_unix_nano: 1,
            observed_time_unix_nano: 2,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: value(Value::StringValue("body".into())),
            attributes: attributes(),
            dropped_attributes_count: 1,
            flags: 1,
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            event_name: "ev".into(),
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs { scope: scope(), log_records: vec![record], schema_url: "s".into() }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    }

    fn metrics() -> Vec<u8> {
        let exemplar = Exemplar {
            filtered_attributes: attributes(),
            time_unix_nano: 1,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsInt(-3)),
        };
        let number = NumberDataPoint {
            attributes: attributes(),
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            exemplars: vec![exemplar.clone()],
            flags: 1,
            value: Some(number_data_point::Value::AsDouble(1.5)),
        };
        let metric = |name: &str, data: Data| Metric {
            name: name.into(),
            description: "d".into(),
            unit: "1".into(),
            metadata: attributes(),
            data: Some(data),
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope(),
                    metrics: vec![
                        metric("g", Data::Gauge(Gauge { data_points: vec![number.clone()] })),
                        metric(
                            "s",
                            Data::Sum(Sum {
                                data_points: vec![number],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            }),
                        ),
                        metric(
                            "h",
                            Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    attributes: attributes(),
                                    count: 3,
                                    sum: Some(1.0),
                                    bucket_counts: vec![1, 2],
                                    explicit_bounds: vec![0.5],
                                    exemplars: vec![exemplar.clone()],
                                    min: Some(0.1),
                                    max: Some(0.9),
                                    ..Default::default()
                                }],
                                aggregation_temporality: 1,
                            }),
                        ),
                        metric(
                            "e",
                            Data::ExponentialHistogram(ExponentialHistogram {
                                data_points: vec![ExponentialHistogramDataPoint {
                                    attributes: attributes(),
                                    count: 4,
                                    scale: -2,
                                    zero_count: 1,
                                    positive: Some(Buckets { offset: -1, bucket_counts: vec![300, 1] }),
                                    negative: Some(Buckets { offset: 2, bucket_counts: vec![7] }),
                                    exemplars: vec![exemplar],
                                    zero_threshold: 0.01,
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            }),
                        ),
                        metric(
                            "q",
                            Data::Summary(Summary {
                                data_points: vec![SummaryDataPoint {
                                    attributes: attributes(),
                                    count: 2,
                                    sum: 3.0,
                                    quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 1.0 }],
                                    ..Default::default()
                                }],
                            }),
                        ),
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec()
    }

    fn prost_accepts(signal: Signal, bytes: &[u8]) -> bool {
        match signal {
            Signal::Traces => ExportTraceServiceRequest::decode(bytes).is_ok(),
            Signal::Metrics => ExportMetricsServiceRequest::decode(bytes).is_ok(),
            Signal::Logs => ExportLogsServiceRequest::decode(bytes).is_ok(),
        }
    }

    fn assert_agrees(signal: Signal, bytes: &[u8], what: &str) {
        let ours = validate(signal, bytes);
        assert_eq!(ours.is_ok(), prost_accepts(signal, bytes), "{signal} {what}: validator says {ours:?}");
    }

    fn samples() -> [(Signal, Vec<u8>); 3] {
        [(Signal::Traces, traces()), (Signal::Logs, logs()), (Signal::Metrics, metrics())]
    }

    #[test]
    fn valid_requests_pass() {
        for (signal, bytes) in samples() {
            assert_eq!(validate(signal, &bytes), Ok(()), "{signal}");
        }
        assert_eq!(validate(Signal::Logs, &[]), Ok(()));
    }

    #[test]
    fn agrees_with_prost_on_every_truncation_and_corruption() {
        for (signal, bytes) in samples() {
            for end in 0..bytes.len() {
                assert_agrees(signal, &bytes[..end], &format!("truncated at {end}"));
            }
            for at in 0..bytes.len() {
                for replacement in [0x00, 0x01, 0x02, 0x07, 0x0a, 0x7f, 0x80, 0xc3, 0xff] {
                    let mut corrupt = bytes.clone();
                    corrupt[at] = replacement;
                    assert_agrees(signal, &corrupt, &format!("byte {at} set to {replacement:#04x}"));
                }
            }
        }
    }

    #[test]
    fn another_signal_is_refused() {
        // Logs decoded as traces: field 1 of a log record is fixed64 where a
        // span has bytes, so the wire types disagree.
        assert!(validate(Signal::Traces, &logs()).is_err());
        assert!(!prost_accepts(Signal::Traces, &logs()));
        assert!(validate(Signal::Logs, &traces()).is_err());
    }

    #[test]
    fn deep_nesting_hits_the_recursion_limit_like_prost() {
        let mut value = AnyValue { value: Some(Value::IntValue(1)) };
        for _ in 0..120 {
            value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord { body: Some(value), ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        assert_agrees(Signal::Logs, &request, "120 nested arrays");
        assert!(validate(Signal::Logs, &request).is_err());
    }
}
