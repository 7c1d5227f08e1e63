//! OTLP → OTAP → OTLP keeps the telemetry: compared after decoding, since the
//! Arrow encoding does not promise byte-identical protobuf.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use wasmtel_otap::{ArrowPayloadType, ConvertError, OtapArrowRecords, item_count, otap_to_otlp, otlp_to_otap};
use wasmtel_runtime::Signal;
use wasmtel_tests::field;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn every_kind() -> Vec<KeyValue> {
    vec![
        kv("s", Value::StringValue("hashed:3f2a".into())),
        kv("b", Value::BoolValue(true)),
        kv("i", Value::IntValue(-42)),
        kv("d", Value::DoubleValue(2.5)),
        kv("bytes", Value::BytesValue(vec![1, 2, 3])),
        kv("arr", Value::ArrayValue(ArrayValue { values: vec![AnyValue { value: Some(Value::IntValue(7)) }] })),
    ]
}

fn resource(name: &str) -> Option<Resource> {
    Some(Resource { attributes: vec![kv("service.name", Value::StringValue(name.into()))], ..Default::default() })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: "lib".into(), version: "1.0".into(), ..Default::default() })
}

fn traces() -> ExportTraceServiceRequest {
    let spans = |n: u8| -> Vec<Span> {
        (0..n)
            .map(|i| Span {
                trace_id: vec![i + 1; 16],
                span_id: vec![i + 1; 8],
                parent_span_id: if i > 0 { vec![1; 8] } else { vec![] },
                name: format!("span-{i}"),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
                end_time_unix_nano: 1_700_000_000_100_000_000 + u64::from(i),
                attributes: every_kind(),
                events: vec![span::Event {
                    time_unix_nano: 1_700_000_000_050_000_000,
                    name: "ev".into(),
                    attributes: every_kind(),
                    ..Default::default()
                }],
                links: vec![span::Link {
                    trace_id: vec![9; 16],
                    span_id: vec![9; 8],
                    attributes: every_kind(),
                    ..Default::default()
                }],
                status: Some(Status { code: 2, message: "boom".into() }),
                ..Default::default()
            })
            .collect()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("a"),
                scope_spans: vec![ScopeSpans { scope: scope(), spans: spans(3), ..Default::default() }],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource("b"),
                scope_spans: vec![ScopeSpans { scope: scope(), spans: spans(2), ..Default::default() }],
                ..Default::default()
            },
        ],
    }
}

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("a"),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: (0..4)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i,
                        observed_time_unix_nano: 1_700_000_000_000_000_001 + i,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue { value: Some(Value::StringValue(format!("line {i}"))) }),
                        attributes: every_kind(),
                        trace_id: vec![3; 16],
                        span_id: vec![4; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let attrs = vec![kv("route", Value::StringValue("/api".into()))];
    let exemplar = Exemplar {
        filtered_attributes: vec![kv("user", Value::StringValue("u1".into()))],
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(1.5)),
        span_id: vec![1; 8],
        trace_id: vec![1; 16],
    };
    let number = |v: f64| NumberDataPoint {
        attributes: attrs.clone(),
        start_time_unix_nano: 1_699_999_999_000_000_000,
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        exemplars: vec![exemplar.clone()],
        ..Default::default()
    };
    let metric =
        |name: &str, data: Data| Metric { name: name.into(), unit: "1".into(), data: Some(data), ..Default::default() };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("a"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric("gauge", Data::Gauge(Gauge { data_points: vec![number(1.0), number(2.0)] })),
                    metric(
                        "sum",
                        Data::Sum(Sum {
                            data_points: vec![number(3.0)],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "histogram",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attrs.clone(),
                                time_unix_nano: 1_700_000_000_000_000_000,
                                count: 3,
                                sum: Some(6.0),
                                bucket_counts: vec![1, 2],
                                explicit_bounds: vec![2.0],
                                exemplars: vec![exemplar.clone()],
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "exp",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                attributes: attrs.clone(),
                                time_unix_nano: 1_700_000_000_000_000_000,
                                count: 4,
                                scale: 2,
                                zero_count: 1,
                                positive: Some(Buckets { offset: 1, bucket_counts: vec![1, 2] }),
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "summary",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: attrs.clone(),
                                time_unix_nano: 1_700_000_000_000_000_000,
                                count: 10,
                                sum: 55.0,
                                quantile_values: vec![ValueAtQuantile { quantile: 0.5, value: 5.0 }],
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn rows(records: &OtapArrowRecords, payload: ArrowPayloadType) -> usize {
    records.get(payload).map_or(0, |batch| batch.num_rows())
}

#[test]
fn traces_round_trip() {
    let input = traces();
    let otap = otlp_to_otap(Signal::Traces, input.encode_to_vec()).unwrap();
    assert_eq!(item_count(&otap), 5);
    assert_eq!(rows(&otap, ArrowPayloadType::Spans), 5);
    assert_eq!(rows(&otap, ArrowPayloadType::SpanEvents), 5);
    assert_eq!(rows(&otap, ArrowPayloadType::SpanLinks), 5);
    assert!(rows(&otap, ArrowPayloadType::SpanAttrs) >= 5 * 6, "every span attribute is a row");
    let (signal, bytes) = otap_to_otlp(otap).unwrap();
    assert_eq!(signal, Signal::Traces);
    assert_eq!(ExportTraceServiceRequest::decode(bytes).unwrap(), input);
}

#[test]
fn logs_round_trip() {
    let input = logs();
    let otap = otlp_to_otap(Signal::Logs, input.encode_to_vec()).unwrap();
    assert_eq!(rows(&otap, ArrowPayloadType::Logs), 4);
    let (_, bytes) = otap_to_otlp(otap).unwrap();
    assert_eq!(ExportLogsServiceRequest::decode(bytes).unwrap(), input);
}

#[test]
fn metrics_round_trip_every_kind() {
    let input = metrics();
    let otap = otlp_to_otap(Signal::Metrics, input.encode_to_vec()).unwrap();
    assert_eq!(item_count(&otap), 6, "data points of all five kinds");
    assert_eq!(rows(&otap, ArrowPayloadType::UnivariateMetrics), 5);
    let (_, bytes) = otap_to_otlp(otap).unwrap();
    assert_eq!(normalise(ExportMetricsServiceRequest::decode(bytes).unwrap()), normalise(input));
}

/// The one difference the round trip makes: an exponential histogram's absent
/// `negative` buckets come back as present-but-empty, which means the same.
fn normalise(mut request: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest {
    for metric in request.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics) {
        if let Some(Data::ExponentialHistogram(h)) = &mut metric.data {
            for point in &mut h.data_points {
                for buckets in [&mut point.positive, &mut point.negative] {
                    if buckets.as_ref().is_some_and(|b| b.offset == 0 && b.bucket_counts.is_empty()) {
                        *buckets = None;
                    }
                }
            }
        }
    }
    request
}

#[test]
fn empty_requests_convert() {
    for signal in Signal::ALL {
        let otap = otlp_to_otap(signal, Vec::new()).unwrap();
        assert_eq!(item_count(&otap), 0);
    }
}

#[test]
fn malformed_bytes_are_a_typed_error() {
    let error = otlp_to_otap(Signal::Logs, vec![0xff; 32]).unwrap_err();
    assert!(matches!(error, ConvertError::ToOtap { signal: Signal::Logs, .. }), "{error}");
    assert!(error.to_string().contains("logs"), "{error}");
}

/// Valid OTLP that otap-dataflow 0.62's own conversion panics on: a span
/// with an unknown field numbered 17 or more, and (found by `cargo fuzz`) a
/// KeyValue whose field 3 comes before its value. Ours converts both.
#[test]
fn requests_the_engine_panics_on_convert_safely() {
    use otel_arrow_dfe_pdata::TryFromWithOptions;
    let mut span = traces().resource_spans[0].scope_spans[0].spans[0].clone();
    span.attributes.clear();
    let mut span_bytes = span.encode_to_vec();
    span_bytes.extend_from_slice(&[0x88, 0x01, 0x01]); // field 17 = 1
    let field_17 = field(0x0a, &field(0x12, &field(0x12, &span_bytes)));
    // KeyValue { 3: 2, key: "\x12\x02\x08\x7f" }: read as all length-delimited,
    // field 3 swallows the key's header and its bytes become a broken value.
    let key_value = [0x18, 0x02, 0x0a, 0x04, 0x12, 0x02, 0x08, 0x7f];
    let mut plain_span = span.clone();
    plain_span.name = "kv".into();
    let kv_span = [plain_span.encode_to_vec(), field(0x4a, &key_value)].concat();
    let kv_first = field(0x0a, &field(0x12, &field(0x12, &kv_span)));

    for (what, bytes) in [("unknown field 17", field_17), ("KeyValue field 3 first", kv_first)] {
        assert!(wasmtel_runtime::otlp::validate(Signal::Traces, &bytes).is_ok(), "{what}: valid OTLP");
        let engine = std::panic::catch_unwind(|| {
            OtapArrowRecords::try_from_with_default(wasmtel_otap::otlp_payload(Signal::Traces, bytes.clone()))
        });
        assert!(
            !matches!(engine, Ok(Ok(_))),
            "{what}: otap-dataflow converts it now; drop the workaround note from the README"
        );
        let records = otlp_to_otap(Signal::Traces, bytes.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(item_count(&records), 1, "{what}");
    }
}

#[test]
fn too_many_log_records_for_otap_numbering_are_refused_not_corrupted() {
    let record = LogRecord {
        body: Some(AnyValue { value: Some(Value::StringValue("x".into())) }),
        attributes: vec![kv("a", Value::IntValue(1))],
        ..Default::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record; 70_000], ..Default::default() }],
            ..Default::default()
        }],
    };
    match otlp_to_otap(Signal::Logs, request.encode_to_vec()) {
        Err(ConvertError::TooManyItems { items: 70_000, .. }) => {}
        other => panic!("expected TooManyItems, got {:?}", other.map(|r| item_count(&r))),
    }
}

/// Found by `cargo fuzz`: a span whose `end - start` overflows `i64` makes
/// the engine's encoder panic (an overflow check; release builds wrap). The
/// panic stays inside `otlp_to_otap`: an error naming the encoder, or (with
/// overflow checks off) a conversion.
#[test]
fn a_span_duration_past_i64_does_not_panic_out_of_the_conversion() {
    let mut span = traces().resource_spans[0].scope_spans[0].spans[0].clone();
    span.start_time_unix_nano = 0x980a_f2d4_3d21_f080; // negative as i64
    span.end_time_unix_nano = 0x180a_f2d4_3f84_4a80; // positive: end - start overflows
    let mut request = traces();
    request.resource_spans[0].scope_spans[0].spans = vec![span];
    match otlp_to_otap(Signal::Traces, request.encode_to_vec()) {
        Ok(records) => assert_eq!(item_count(&records), 1),
        Err(e) => assert!(e.to_string().contains("encoder panicked"), "{e}"),
    }
}
