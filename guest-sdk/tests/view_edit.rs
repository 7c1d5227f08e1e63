//! The lazy view and the splice editor against prost, the reference decoder:
//! reading every field through the views gives what prost decodes, and view
//! plus editor give what decode -> the same edit -> encode gives, for generated
//! requests of all three signals. Malformed bytes are errors, never panics.

use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use wasmtel_sdk::edit::Editor;
use wasmtel_sdk::otlp::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value};
use wasmtel_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wasmtel_sdk::otlp::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point, summary_data_point::ValueAtQuantile,
};
use wasmtel_sdk::otlp::resource::v1::Resource;
use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event, span::Link};
use wasmtel_sdk::view::*;
use wasmtel_sdk::{ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Outcome};

type R<T> = Result<T, ViewError>;

// ---- every field through the views, into prost's types ----

fn read_any(value: AnyValueView) -> R<AnyValue> {
    use any_value::Value as V;
    Ok(AnyValue {
        value: match value.get()? {
            None => None,
            Some(Value::String(s)) => Some(V::StringValue(s.into())),
            Some(Value::Bool(b)) => Some(V::BoolValue(b)),
            Some(Value::Int(i)) => Some(V::IntValue(i)),
            Some(Value::Double(d)) => Some(V::DoubleValue(d)),
            Some(Value::Bytes(b)) => Some(V::BytesValue(b.to_vec())),
            Some(Value::StringIndex(i)) => Some(V::StringValueStrindex(i)),
            Some(Value::Array(a)) => {
                Some(V::ArrayValue(ArrayValue { values: a.values().map(|v| read_any(v?)).collect::<R<_>>()? }))
            }
            Some(Value::KvList(l)) => {
                Some(V::KvlistValue(KeyValueList { values: l.values().map(|kv| key_value(kv?)).collect::<R<_>>()? }))
            }
        },
    })
}

fn key_value(kv: KeyValueView) -> R<KeyValue> {
    let (key, value) = kv.key_and_value()?;
    assert_eq!((key, value.map(|v| v.location().body())), (kv.key()?, kv.value()?.map(|v| v.location().body())));
    Ok(KeyValue {
        key: kv.key()?.into(),
        value: kv.value()?.map(read_any).transpose()?,
        key_strindex: kv.key_strindex()?,
    })
}

fn attributes<'a>(view: &impl HasAttributes<'a>) -> R<Vec<KeyValue>> {
    view.attributes().map(|kv| key_value(kv?)).collect()
}

fn resource(view: ResourceView) -> R<Resource> {
    Ok(Resource {
        attributes: attributes(&view)?,
        dropped_attributes_count: view.dropped_attributes_count()?,
        entity_refs: vec![],
    })
}

fn scope(view: ScopeView) -> R<InstrumentationScope> {
    Ok(InstrumentationScope {
        name: view.name()?.into(),
        version: view.version()?.into(),
        attributes: attributes(&view)?,
        dropped_attributes_count: view.dropped_attributes_count()?,
    })
}

fn span(view: SpanView) -> R<Span> {
    Ok(Span {
        trace_id: view.trace_id()?.to_vec(),
        span_id: view.span_id()?.to_vec(),
        trace_state: view.trace_state()?.into(),
        parent_span_id: view.parent_span_id()?.to_vec(),
        flags: view.flags()?,
        name: view.name()?.into(),
        kind: view.kind()?,
        start_time_unix_nano: view.start_time_unix_nano()?,
        end_time_unix_nano: view.end_time_unix_nano()?,
        attributes: attributes(&view)?,
        dropped_attributes_count: view.dropped_attributes_count()?,
        events: view
            .events()
            .map(|e| {
                let e = e?;
                Ok(Event {
                    time_unix_nano: e.time_unix_nano()?,
                    name: e.name()?.into(),
                    attributes: attributes(&e)?,
                    dropped_attributes_count: e.dropped_attributes_count()?,
                })
            })
            .collect::<R<_>>()?,
        dropped_events_count: view.dropped_events_count()?,
        links: view
            .links()
            .map(|l| {
                let l = l?;
                Ok(Link {
                    trace_id: l.trace_id()?.to_vec(),
                    span_id: l.span_id()?.to_vec(),
                    trace_state: l.trace_state()?.into(),
                    attributes: attributes(&l)?,
                    dropped_attributes_count: l.dropped_attributes_count()?,
                    flags: l.flags()?,
                })
            })
            .collect::<R<_>>()?,
        dropped_links_count: view.dropped_links_count()?,
        status: view
            .status()?
            .map(|s| Ok::<_, ViewError>(Status { message: s.message()?.into(), code: s.code()? }))
            .transpose()?,
    })
}

fn traces(otlp: &[u8]) -> R<ExportTraceServiceRequest> {
    let resource_spans = TracesView::new(otlp)
        .resource_spans()
        .map(|rs| {
            let rs = rs?;
            Ok(ResourceSpans {
                resource: rs.resource()?.map(resource).transpose()?,
                scope_spans: rs
                    .scope_spans()
                    .map(|ss| {
                        let ss = ss?;
                        Ok(ScopeSpans {
                            scope: ss.scope()?.map(scope).transpose()?,
                            spans: ss.spans().map(|s| span(s?)).collect::<R<_>>()?,
                            schema_url: ss.schema_url()?.into(),
                        })
                    })
                    .collect::<R<_>>()?,
                schema_url: rs.schema_url()?.into(),
            })
        })
        .collect::<R<_>>()?;
    Ok(ExportTraceServiceRequest { resource_spans })
}

fn log_record(view: LogRecordView) -> R<LogRecord> {
    Ok(LogRecord {
        time_unix_nano: view.time_unix_nano()?,
        observed_time_unix_nano: view.observed_time_unix_nano()?,
        severity_number: view.severity_number()?,
        severity_text: view.severity_text()?.into(),
        body: view.body()?.map(read_any).transpose()?,
        attributes: attributes(&view)?,
        dropped_attributes_count: view.dropped_attributes_count()?,
        flags: view.flags()?,
        trace_id: view.trace_id()?.to_vec(),
        span_id: view.span_id()?.to_vec(),
        event_name: view.event_name()?.into(),
    })
}

fn logs(otlp: &[u8]) -> R<ExportLogsServiceRequest> {
    let resource_logs = LogsView::new(otlp)
        .resource_logs()
        .map(|rl| {
            let rl = rl?;
            Ok(ResourceLogs {
                resource: rl.resource()?.map(resource).transpose()?,
                scope_logs: rl
                    .scope_logs()
                    .map(|sl| {
                        let sl = sl?;
                        Ok(ScopeLogs {
                            scope: sl.scope()?.map(scope).transpose()?,
                            log_records: sl.log_records().map(|r| log_record(r?)).collect::<R<_>>()?,
                            schema_url: sl.schema_url()?.into(),
                        })
                    })
                    .collect::<R<_>>()?,
                schema_url: rl.schema_url()?.into(),
            })
        })
        .collect::<R<_>>()?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

fn exemplars<'a>(items: Repeated<'a, ExemplarView<'a>>) -> R<Vec<Exemplar>> {
    items
        .map(|e| {
            let e = e?;
            // Generated data sets one member of the oneof.
            let value = match (e.as_double()?, e.as_int()?) {
                (_, Some(i)) => Some(exemplar::Value::AsInt(i)),
                (Some(d), None) => Some(exemplar::Value::AsDouble(d)),
                (None, None) => None,
            };
            Ok(Exemplar {
                filtered_attributes: attributes(&e)?,
                time_unix_nano: e.time_unix_nano()?,
                span_id: e.span_id()?.to_vec(),
                trace_id: e.trace_id()?.to_vec(),
                value,
            })
        })
        .collect()
}

fn number_points<'a>(items: Repeated<'a, NumberDataPointView<'a>>) -> R<Vec<NumberDataPoint>> {
    items
        .map(|p| {
            let p = p?;
            let value = match (p.as_double()?, p.as_int()?) {
                (_, Some(i)) => Some(number_data_point::Value::AsInt(i)),
                (Some(d), None) => Some(number_data_point::Value::AsDouble(d)),
                (None, None) => None,
            };
            Ok(NumberDataPoint {
                attributes: attributes(&p)?,
                start_time_unix_nano: p.start_time_unix_nano()?,
                time_unix_nano: p.time_unix_nano()?,
                exemplars: exemplars(p.exemplars())?,
                flags: p.flags()?,
                value,
            })
        })
        .collect()
}

fn buckets(view: BucketsView) -> R<Buckets> {
    Ok(Buckets { offset: view.offset()?, bucket_counts: view.bucket_counts().collect::<R<_>>()? })
}

fn metric(view: MetricView) -> R<Metric> {
    let data = if let Some(g) = view.gauge()? {
        Some(Data::Gauge(Gauge { data_points: number_points(g.data_points())? }))
    } else if let Some(s) = view.sum()? {
        Some(Data::Sum(Sum {
            data_points: number_points(s.data_points())?,
            aggregation_temporality: s.aggregation_temporality()?,
            is_monotonic: s.is_monotonic()?,
        }))
    } else if let Some(h) = view.histogram()? {
        Some(Data::Histogram(Histogram {
            data_points: h
                .data_points()
                .map(|p| {
                    let p = p?;
                    Ok(HistogramDataPoint {
                        attributes: attributes(&p)?,
                        start_time_unix_nano: p.start_time_unix_nano()?,
                        time_unix_nano: p.time_unix_nano()?,
                        count: p.count()?,
                        sum: p.sum()?,
                        bucket_counts: p.bucket_counts().collect::<R<_>>()?,
                        explicit_bounds: p.explicit_bounds().map(|b| b.map(f64::from_bits)).collect::<R<_>>()?,
                        exemplars: exemplars(p.exemplars())?,
                        flags: p.flags()?,
                        min: p.min()?,
                        max: p.max()?,
                    })
                })
                .collect::<R<_>>()?,
            aggregation_temporality: h.aggregation_temporality()?,
        }))
    } else if let Some(h) = view.exponential_histogram()? {
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: h
                .data_points()
                .map(|p| {
                    let p = p?;
                    Ok(ExponentialHistogramDataPoint {
                        attributes: attributes(&p)?,
                        start_time_unix_nano: p.start_time_unix_nano()?,
                        time_unix_nano: p.time_unix_nano()?,
                        count: p.count()?,
                        sum: p.sum()?,
                        scale: p.scale()?,
                        zero_count: p.zero_count()?,
                        positive: p.positive()?.map(buckets).transpose()?,
                        negative: p.negative()?.map(buckets).transpose()?,
                        flags: p.flags()?,
                        exemplars: exemplars(p.exemplars())?,
                        min: p.min()?,
                        max: p.max()?,
                        zero_threshold: p.zero_threshold()?,
                    })
                })
                .collect::<R<_>>()?,
            aggregation_temporality: h.aggregation_temporality()?,
        }))
    } else if let Some(s) = view.summary()? {
        Some(Data::Summary(Summary {
            data_points: s
                .data_points()
                .map(|p| {
                    let p = p?;
                    Ok(SummaryDataPoint {
                        attributes: attributes(&p)?,
                        start_time_unix_nano: p.start_time_unix_nano()?,
                        time_unix_nano: p.time_unix_nano()?,
                        count: p.count()?,
                        sum: p.sum()?,
                        quantile_values: p
                            .quantile_values()
                            .map(|q| {
                                let q = q?;
                                Ok(ValueAtQuantile { quantile: q.quantile()?, value: q.value()? })
                            })
                            .collect::<R<_>>()?,
                        flags: p.flags()?,
                    })
                })
                .collect::<R<_>>()?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: view.name()?.into(),
        description: view.description()?.into(),
        unit: view.unit()?.into(),
        metadata: attributes(&view)?,
        data,
    })
}

fn metrics(otlp: &[u8]) -> R<ExportMetricsServiceRequest> {
    let resource_metrics = MetricsView::new(otlp)
        .resource_metrics()
        .map(|rm| {
            let rm = rm?;
            Ok(ResourceMetrics {
                resource: rm.resource()?.map(resource).transpose()?,
                scope_metrics: rm
                    .scope_metrics()
                    .map(|sm| {
                        let sm = sm?;
                        Ok(ScopeMetrics {
                            scope: sm.scope()?.map(scope).transpose()?,
                            metrics: sm.metrics().map(|m| metric(m?)).collect::<R<_>>()?,
                            schema_url: sm.schema_url()?.into(),
                        })
                    })
                    .collect::<R<_>>()?,
                schema_url: rm.schema_url()?.into(),
            })
        })
        .collect::<R<_>>()?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

// ---- generated OTLP ----

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["", "a", "gone", "tag", "drop-me", "ops@example.com", "ünïcødé"]).prop_map(String::from),
        1 => Just("h".repeat(70_000)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["email", "secret", "k", "nest", "n"]).prop_map(String::from)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(vec![]), vec(any::<u8>(), 8), vec(any::<u8>(), 16)]
}

fn double() -> impl Strategy<Value = f64> {
    -1e12..1e12f64
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(V::StringValue(s))),
        any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(V::IntValue(i))),
        double().prop_map(|d| Some(V::DoubleValue(d))),
        bytes().prop_map(|b| Some(V::BytesValue(b))),
        (0..5i32).prop_map(|i| Some(V::StringValueStrindex(i))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| AnyValue { value: Some(V::ArrayValue(ArrayValue { values })) }),
            vec((key(), proptest::option::of(inner)), 0..4).prop_map(|entries| AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: entries.into_iter().map(|(key, value)| KeyValue { key, value, key_strindex: 0 }).collect(),
                })),
            }),
        ]
    })
}

fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((key(), proptest::option::of(any_value()), 0..2i32), 0..4).prop_map(|kvs| {
        kvs.into_iter().map(|(key, value, key_strindex)| KeyValue { key, value, key_strindex }).collect()
    })
}

fn resource_strategy() -> impl Strategy<Value = Option<Resource>> {
    proptest::option::of((attrs(), 0..3u32).prop_map(|(attributes, dropped_attributes_count)| Resource {
        attributes,
        dropped_attributes_count,
        entity_refs: vec![],
    }))
}

fn scope_strategy() -> impl Strategy<Value = Option<InstrumentationScope>> {
    proptest::option::of((text(), text(), attrs()).prop_map(|(name, version, attributes)| InstrumentationScope {
        name,
        version,
        attributes,
        dropped_attributes_count: 1,
    }))
}

fn span_strategy() -> impl Strategy<Value = Span> {
    let event = (any::<u64>(), text(), attrs()).prop_map(|(time_unix_nano, name, attributes)| Event {
        time_unix_nano,
        name,
        attributes,
        dropped_attributes_count: 0,
    });
    let link = (bytes(), bytes(), text(), attrs(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, flags)| Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: 2,
            flags,
        },
    );
    let status = proptest::option::of((text(), 0..3i32).prop_map(|(message, code)| Status { message, code }));
    (
        (bytes(), bytes(), text(), bytes(), any::<u32>(), text(), 0..6i32),
        (any::<u64>(), any::<u64>(), attrs(), vec(event, 0..3), vec(link, 0..3), status, 0..4u32),
    )
        .prop_map(
            |(
                (trace_id, span_id, trace_state, parent_span_id, flags, name, kind),
                (start, end, attributes, events, links, status, dropped),
            )| Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dropped,
                events,
                dropped_events_count: dropped,
                links,
                dropped_links_count: dropped,
                status,
            },
        )
}

fn traces_strategy() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope_spans = (scope_strategy(), vec(span_strategy(), 0..4), text())
        .prop_map(|(scope, spans, schema_url)| ScopeSpans { scope, spans, schema_url });
    let resource_spans = (resource_strategy(), vec(scope_spans, 0..3), text())
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans { resource, scope_spans, schema_url });
    vec(resource_spans, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn logs_strategy() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let record = (
        (any::<u64>(), any::<u64>(), 0..12i32, text(), proptest::option::of(any_value())),
        (attrs(), any::<u32>(), bytes(), bytes(), text()),
    )
        .prop_map(
            |(
                (time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body),
                (attributes, flags, trace_id, span_id, event_name),
            )| LogRecord {
                time_unix_nano,
                observed_time_unix_nano,
                severity_number,
                severity_text,
                body,
                attributes,
                dropped_attributes_count: 0,
                flags,
                trace_id,
                span_id,
                event_name,
            },
        );
    let scope_logs = (scope_strategy(), vec(record, 0..4), text())
        .prop_map(|(scope, log_records, schema_url)| ScopeLogs { scope, log_records, schema_url });
    let resource_logs = (resource_strategy(), vec(scope_logs, 0..3), text())
        .prop_map(|(resource, scope_logs, schema_url)| ResourceLogs { resource, scope_logs, schema_url });
    vec(resource_logs, 0..3).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

fn exemplar_strategy() -> impl Strategy<Value = Exemplar> {
    let value = prop_oneof![
        Just(None),
        double().prop_map(|d| Some(exemplar::Value::AsDouble(d))),
        any::<i64>().prop_map(|i| Some(exemplar::Value::AsInt(i))),
    ];
    (attrs(), any::<u64>(), bytes(), bytes(), value).prop_map(
        |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
            filtered_attributes,
            time_unix_nano,
            span_id,
            trace_id,
            value,
        },
    )
}

fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    let value = prop_oneof![
        Just(None),
        double().prop_map(|d| Some(number_data_point::Value::AsDouble(d))),
        any::<i64>().prop_map(|i| Some(number_data_point::Value::AsInt(i))),
    ];
    (attrs(), any::<u64>(), any::<u64>(), vec(exemplar_strategy(), 0..2), 0..3u32, value).prop_map(
        |(attributes, start_time_unix_nano, time_unix_nano, exemplars, flags, value)| NumberDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano,
            exemplars,
            flags,
            value,
        },
    )
}

fn data_strategy() -> impl Strategy<Value = Option<Data>> {
    let histogram_point = (
        (attrs(), any::<u64>(), any::<u64>(), proptest::option::of(double())),
        (vec(any::<u64>(), 0..4), vec(double(), 0..4), vec(exemplar_strategy(), 0..2), 0..3u32),
        (proptest::option::of(double()), proptest::option::of(double())),
    )
        .prop_map(
            |((attributes, start, time, sum), (bucket_counts, explicit_bounds, exemplars, flags), (min, max))| {
                HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 3,
                    sum,
                    bucket_counts,
                    explicit_bounds,
                    exemplars,
                    flags,
                    min,
                    max,
                }
            },
        );
    let buckets = proptest::option::of(
        (-5..5i32, vec(any::<u64>(), 0..4)).prop_map(|(offset, bucket_counts)| Buckets { offset, bucket_counts }),
    );
    let exp_point = (
        (attrs(), any::<u64>(), proptest::option::of(double()), -10..10i32, any::<u64>()),
        (buckets.clone(), buckets, vec(exemplar_strategy(), 0..2), double()),
    )
        .prop_map(
            |((attributes, count, sum, scale, zero_count), (positive, negative, exemplars, zero_threshold))| {
                ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano: 1,
                    time_unix_nano: 2,
                    count,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags: 1,
                    exemplars,
                    min: Some(0.5),
                    max: None,
                    zero_threshold,
                }
            },
        );
    let summary_point = (attrs(), any::<u64>(), double(), vec((double(), double()), 0..3)).prop_map(
        |(attributes, count, sum, quantiles)| SummaryDataPoint {
            attributes,
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            count,
            sum,
            quantile_values: quantiles
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            flags: 0,
        },
    );
    prop_oneof![
        Just(None),
        vec(number_point(), 0..4).prop_map(|data_points| Some(Data::Gauge(Gauge { data_points }))),
        (vec(number_point(), 0..4), 0..3i32, any::<bool>()).prop_map(|(data_points, t, m)| Some(Data::Sum(Sum {
            data_points,
            aggregation_temporality: t,
            is_monotonic: m
        }))),
        (vec(histogram_point, 0..3), 0..3i32)
            .prop_map(|(data_points, t)| Some(Data::Histogram(Histogram { data_points, aggregation_temporality: t }))),
        (vec(exp_point, 0..3), 0..3i32).prop_map(|(data_points, t)| Some(Data::ExponentialHistogram(
            ExponentialHistogram { data_points, aggregation_temporality: t }
        ))),
        vec(summary_point, 0..3).prop_map(|data_points| Some(Data::Summary(Summary { data_points }))),
    ]
}

fn metrics_strategy() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let metric = (text(), text(), text(), attrs(), data_strategy())
        .prop_map(|(name, description, unit, metadata, data)| Metric { name, description, unit, metadata, data });
    let scope_metrics = (scope_strategy(), vec(metric, 0..4), text())
        .prop_map(|(scope, metrics, schema_url)| ScopeMetrics { scope, metrics, schema_url });
    let resource_metrics = (resource_strategy(), vec(scope_metrics, 0..3), text())
        .prop_map(|(resource, scope_metrics, schema_url)| ResourceMetrics { resource, scope_metrics, schema_url });
    vec(resource_metrics, 0..3).prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

// ---- one edit program, on prost's types and through the editor ----
//
// attributes (at every site, nested lists too): `secret` removed, `email`
// set to "****"; array elements "drop-me" removed; spans, events, log
// records and metrics named "gone" (records: severity 1) removed; spans named
// "tag" get `added = 7`; integer log bodies become "body".

fn edit_any(value: &mut AnyValue) {
    use any_value::Value as V;
    match &mut value.value {
        Some(V::ArrayValue(array)) => {
            array.values.retain(|v| !matches!(&v.value, Some(V::StringValue(s)) if s == "drop-me"));
            array.values.iter_mut().for_each(edit_any);
        }
        Some(V::KvlistValue(list)) => edit_attrs(&mut list.values),
        _ => {}
    }
}

fn edit_attrs(attributes: &mut Vec<KeyValue>) {
    attributes.retain(|kv| kv.key != "secret");
    for kv in attributes {
        if kv.key == "email" {
            kv.value = Some(AnyValue { value: Some(any_value::Value::StringValue("****".into())) });
        } else if let Some(value) = &mut kv.value {
            edit_any(value);
        }
    }
}

fn edit_scope(scope: &mut Option<InstrumentationScope>, resource: &mut Option<Resource>) {
    if let Some(scope) = scope {
        edit_attrs(&mut scope.attributes);
    }
    if let Some(resource) = resource {
        edit_attrs(&mut resource.attributes);
    }
}

fn edit_traces_decoded(request: &mut ExportTraceServiceRequest) {
    for rs in &mut request.resource_spans {
        let mut resource = rs.resource.take();
        for ss in &mut rs.scope_spans {
            edit_scope(&mut ss.scope, &mut None);
            ss.spans.retain(|s| s.name != "gone");
            for span in &mut ss.spans {
                edit_attrs(&mut span.attributes);
                span.events.retain(|e| e.name != "gone");
                span.events.iter_mut().for_each(|e| edit_attrs(&mut e.attributes));
                span.links.iter_mut().for_each(|l| edit_attrs(&mut l.attributes));
                if span.name == "tag" {
                    span.attributes.push(KeyValue {
                        key: "added".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::IntValue(7)) }),
                        key_strindex: 0,
                    });
                }
            }
        }
        edit_scope(&mut None, &mut resource);
        rs.resource = resource;
    }
}

fn edit_logs_decoded(request: &mut ExportLogsServiceRequest) {
    for rl in &mut request.resource_logs {
        edit_scope(&mut None, &mut rl.resource);
        for sl in &mut rl.scope_logs {
            edit_scope(&mut sl.scope, &mut None);
            sl.log_records.retain(|r| r.severity_number != 1);
            for record in &mut sl.log_records {
                edit_attrs(&mut record.attributes);
                match &mut record.body {
                    Some(AnyValue { value: Some(any_value::Value::IntValue(_)) }) => {
                        record.body = Some(AnyValue { value: Some(any_value::Value::StringValue("body".into())) });
                    }
                    Some(body) => edit_any(body),
                    None => {}
                }
            }
        }
    }
}

fn edit_exemplars(exemplars: &mut [Exemplar]) {
    exemplars.iter_mut().for_each(|e| edit_attrs(&mut e.filtered_attributes));
}

fn edit_metrics_decoded(request: &mut ExportMetricsServiceRequest) {
    for rm in &mut request.resource_metrics {
        edit_scope(&mut None, &mut rm.resource);
        for sm in &mut rm.scope_metrics {
            edit_scope(&mut sm.scope, &mut None);
            sm.metrics.retain(|m| m.name != "gone");
            for metric in &mut sm.metrics {
                edit_attrs(&mut metric.metadata);
                match &mut metric.data {
                    Some(Data::Gauge(Gauge { data_points })) | Some(Data::Sum(Sum { data_points, .. })) => {
                        data_points.retain(|p| p.flags != 1);
                        for p in data_points {
                            edit_attrs(&mut p.attributes);
                            edit_exemplars(&mut p.exemplars);
                        }
                    }
                    Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| {
                        edit_attrs(&mut p.attributes);
                        edit_exemplars(&mut p.exemplars);
                    }),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.iter_mut().for_each(|p| {
                        edit_attrs(&mut p.attributes);
                        edit_exemplars(&mut p.exemplars);
                    }),
                    Some(Data::Summary(s)) => s.data_points.iter_mut().for_each(|p| edit_attrs(&mut p.attributes)),
                    None => {}
                }
            }
        }
    }
}

fn edit_any_view<'a>(editor: &mut Editor<'a>, value: AnyValueView<'a>) -> R<()> {
    match value.get()? {
        Some(Value::Array(array)) => {
            for element in array.values() {
                let element = element?;
                if element.as_str()? == Some("drop-me") {
                    editor.remove(&element);
                } else {
                    edit_any_view(editor, element)?;
                }
            }
        }
        Some(Value::KvList(list)) => edit_attr_list(editor, list.values())?,
        _ => {}
    }
    Ok(())
}

fn edit_attr_list<'a>(editor: &mut Editor<'a>, attributes: Repeated<'a, KeyValueView<'a>>) -> R<()> {
    for kv in attributes {
        let kv = kv?;
        match kv.key()? {
            "secret" => editor.remove(&kv),
            "email" => editor.set_value(&kv, "****"),
            _ => {
                if let Some(value) = kv.value()? {
                    edit_any_view(editor, value)?;
                }
            }
        }
    }
    Ok(())
}

fn edit_owner<'a>(editor: &mut Editor<'a>, owner: &impl HasAttributes<'a>) -> R<()> {
    edit_attr_list(editor, owner.attributes())
}

fn edit_traces_view(otlp: &[u8]) -> R<Outcome> {
    let mut editor = Editor::new(otlp);
    for rs in TracesView::new(otlp).resource_spans() {
        let rs = rs?;
        if let Some(resource) = rs.resource()? {
            edit_owner(&mut editor, &resource)?;
        }
        for ss in rs.scope_spans() {
            let ss = ss?;
            if let Some(scope) = ss.scope()? {
                edit_owner(&mut editor, &scope)?;
            }
            for span in ss.spans() {
                let span = span?;
                if span.name()? == "gone" {
                    editor.remove(&span);
                    continue;
                }
                edit_owner(&mut editor, &span)?;
                for event in span.events() {
                    let event = event?;
                    if event.name()? == "gone" {
                        editor.remove(&event);
                    } else {
                        edit_owner(&mut editor, &event)?;
                    }
                }
                for link in span.links() {
                    edit_owner(&mut editor, &link?)?;
                }
                if span.name()? == "tag" {
                    editor.push_attribute(&span, "added", 7i64);
                }
            }
        }
    }
    editor.finish()
}

fn edit_logs_view(otlp: &[u8]) -> R<Outcome> {
    let mut editor = Editor::new(otlp);
    for rl in LogsView::new(otlp).resource_logs() {
        let rl = rl?;
        if let Some(resource) = rl.resource()? {
            edit_owner(&mut editor, &resource)?;
        }
        for sl in rl.scope_logs() {
            let sl = sl?;
            if let Some(scope) = sl.scope()? {
                edit_owner(&mut editor, &scope)?;
            }
            for record in sl.log_records() {
                let record = record?;
                if record.severity_number()? == 1 {
                    editor.remove(&record);
                    continue;
                }
                edit_owner(&mut editor, &record)?;
                if let Some(body) = record.body()? {
                    if let Some(Value::Int(_)) = body.get()? {
                        editor.set_body(&record, "body")?;
                    } else {
                        edit_any_view(&mut editor, body)?;
                    }
                }
            }
        }
    }
    editor.finish()
}

fn edit_view_exemplars<'a>(editor: &mut Editor<'a>, exemplars: Repeated<'a, ExemplarView<'a>>) -> R<()> {
    for e in exemplars {
        edit_owner(editor, &e?)?;
    }
    Ok(())
}

fn edit_metrics_view(otlp: &[u8]) -> R<Outcome> {
    let mut editor = Editor::new(otlp);
    for rm in MetricsView::new(otlp).resource_metrics() {
        let rm = rm?;
        if let Some(resource) = rm.resource()? {
            edit_owner(&mut editor, &resource)?;
        }
        for sm in rm.scope_metrics() {
            let sm = sm?;
            if let Some(scope) = sm.scope()? {
                edit_owner(&mut editor, &scope)?;
            }
            for metric in sm.metrics() {
                let metric = metric?;
                if metric.name()? == "gone" {
                    editor.remove(&metric);
                    continue;
                }
                edit_owner(&mut editor, &metric)?;
                let number_points = match (metric.gauge()?, metric.sum()?) {
                    (Some(g), _) => Some(g.data_points()),
                    (None, Some(s)) => Some(s.data_points()),
                    _ => None,
                };
                for p in number_points.into_iter().flatten() {
                    let p = p?;
                    if p.flags()? == 1 {
                        editor.remove(&p);
                    } else {
                        edit_owner(&mut editor, &p)?;
                        edit_view_exemplars(&mut editor, p.exemplars())?;
                    }
                }
                if let Some(h) = metric.histogram()? {
                    for p in h.data_points() {
                        let p = p?;
                        edit_owner(&mut editor, &p)?;
                        edit_view_exemplars(&mut editor, p.exemplars())?;
                    }
                }
                if let Some(h) = metric.exponential_histogram()? {
                    for p in h.data_points() {
                        let p = p?;
                        edit_owner(&mut editor, &p)?;
                        edit_view_exemplars(&mut editor, p.exemplars())?;
                    }
                }
                if let Some(s) = metric.summary()? {
                    for p in s.data_points() {
                        edit_owner(&mut editor, &p?)?;
                    }
                }
            }
        }
    }
    editor.finish()
}

/// The editor's outcome against the decoded edit: same content, and
/// `Dropped` exactly when no resource is left.
fn check_outcome<M: Message + Default + PartialEq + std::fmt::Debug>(
    outcome: Outcome,
    original: &M,
    edited: &M,
    resources_left: usize,
) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Unchanged => prop_assert_eq!(original, edited),
        Outcome::Dropped => prop_assert_eq!(resources_left, 0),
        Outcome::Replaced(bytes) => {
            prop_assert!(resources_left > 0);
            prop_assert_eq!(&M::decode(bytes.as_slice()).expect("the editor's output decodes"), edited);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn traces_read_and_edit_like_prost(request in traces_strategy()) {
        let otlp = request.encode_to_vec();
        prop_assert_eq!(&traces(&otlp).unwrap(), &request);
        let mut edited = request.clone();
        edit_traces_decoded(&mut edited);
        check_outcome(edit_traces_view(&otlp).unwrap(), &request, &edited, edited.resource_spans.len())?;
    }

    #[test]
    fn logs_read_and_edit_like_prost(request in logs_strategy()) {
        let otlp = request.encode_to_vec();
        prop_assert_eq!(&logs(&otlp).unwrap(), &request);
        let mut edited = request.clone();
        edit_logs_decoded(&mut edited);
        check_outcome(edit_logs_view(&otlp).unwrap(), &request, &edited, edited.resource_logs.len())?;
    }

    #[test]
    fn metrics_read_and_edit_like_prost(request in metrics_strategy()) {
        let otlp = request.encode_to_vec();
        prop_assert_eq!(&metrics(&otlp).unwrap(), &request);
        let mut edited = request.clone();
        edit_metrics_decoded(&mut edited);
        check_outcome(edit_metrics_view(&otlp).unwrap(), &request, &edited, edited.resource_metrics.len())?;
    }

    /// Corrupted bytes: an error or a result, never a panic; and whatever
    /// the editor writes decodes as far as the views read it.
    #[test]
    fn corrupted_bytes_never_panic(request in traces_strategy(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut otlp = request.encode_to_vec();
        if !otlp.is_empty() {
            for (index, byte) in flips {
                let at = index.index(otlp.len());
                otlp[at] = byte;
            }
        }
        let _ = traces(&otlp);
        let _ = logs(&otlp);
        let _ = metrics(&otlp);
        if let Ok(Outcome::Replaced(out)) = edit_traces_view(&otlp) {
            prop_assert!(traces(&out).is_ok() || traces(&otlp).is_err());
        }
        let _ = edit_logs_view(&otlp);
        let _ = edit_metrics_view(&otlp);
    }
}

/// A request with every kind of field set, for the truncation sweep.
fn rich_traces() -> ExportTraceServiceRequest {
    use any_value::Value as V;
    let nested = AnyValue {
        value: Some(V::KvlistValue(KeyValueList {
            values: vec![
                KeyValue {
                    key: "email".into(),
                    value: Some(AnyValue { value: Some(V::StringValue("a@b.c".into())) }),
                    key_strindex: 0,
                },
                KeyValue {
                    key: "list".into(),
                    value: Some(AnyValue {
                        value: Some(V::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue { value: Some(V::StringValue("drop-me".into())) },
                                AnyValue { value: Some(V::DoubleValue(1.5)) },
                            ],
                        })),
                    }),
                    key_strindex: 0,
                },
            ],
        })),
    };
    let attributes = vec![
        KeyValue { key: "secret".into(), value: Some(AnyValue { value: Some(V::IntValue(-3)) }), key_strindex: 0 },
        KeyValue { key: "nest".into(), value: Some(nested), key_strindex: 0 },
    ];
    let span = |name: &str| Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        start_time_unix_nano: 5,
        attributes: attributes.clone(),
        events: vec![Event { name: "gone".into(), attributes: attributes.clone(), ..Default::default() }],
        links: vec![Link { trace_id: vec![3; 16], attributes: attributes.clone(), ..Default::default() }],
        status: Some(Status { message: "m".into(), code: 2 }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: attributes.clone(), ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "s".into(),
                    attributes: attributes.clone(),
                    ..Default::default()
                }),
                spans: vec![span("tag"), span("gone"), span("x")],
                schema_url: "u".into(),
            }],
            schema_url: "r".into(),
        }],
    }
}

#[test]
fn every_truncation_is_an_error_naming_what_and_where() {
    let otlp = rich_traces().encode_to_vec();
    let mut errors = 0;
    for len in 0..otlp.len() {
        let prefix = &otlp[..len];
        let read = traces(prefix);
        let edit = edit_traces_view(prefix);
        if ExportTraceServiceRequest::decode(prefix).is_err() {
            // What prost refuses, reading everything refuses too.
            let error = read.expect_err("a truncated request read cleanly");
            assert!(error.to_string().starts_with("malformed OTLP "), "{error}");
            assert!(error.offset <= len, "{error}");
            errors += 1;
            assert!(edit.is_err(), "the editor accepted a truncation at {len}");
        }
    }
    assert!(errors > otlp.len() / 2, "most truncations are malformed: {errors} of {}", otlp.len());
}

#[path = "../../tests/support/proto_bytes.rs"]
mod proto_bytes;
use proto_bytes::len_field;

#[test]
fn untouched_messages_keep_their_bytes_unknown_fields_and_order() {
    // Span 1: fields out of order plus unknown fields (a varint, a group,
    // bytes); span 2: an email to mask. Both in one scope.
    let untouched = {
        let mut body = Span { name: "keep".into(), ..Default::default() }.encode_to_vec();
        body.extend_from_slice(&[0xf8, 0x07, 0x2a]); // field 127, varint 42
        body.extend_from_slice(&[0x83, 0x08, 0x08, 0x01, 0x84, 0x08]); // group 128 { field 1: 1 }
        body.extend(len_field(200, b"opaque"));
        body.extend(Span { trace_id: vec![9; 16], ..Default::default() }.encode_to_vec()); // trace_id after name
        body
    };
    let edited = Span {
        name: "edit".into(),
        attributes: vec![KeyValue {
            key: "email".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("a@b.c".into())) }),
            key_strindex: 0,
        }],
        ..Default::default()
    }
    .encode_to_vec();
    let scope_spans = [len_field(2, &untouched), len_field(2, &edited), len_field(99, b"scope-unknown")].concat();
    let otlp = [len_field(1, &len_field(2, &scope_spans)), vec![0xa0, 0x06, 0x01]].concat();

    let Outcome::Replaced(out) = edit_traces_view(&otlp).unwrap() else { panic!("expected an edit") };
    let find = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(find(&out, &len_field(2, &untouched)), "the untouched span's bytes changed");
    assert!(find(&out, &len_field(99, b"scope-unknown")), "an unknown field of an edited message was lost");
    assert!(out.ends_with(&[0xa0, 0x06, 0x01]), "the request's own unknown field was lost");
    let decoded = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
    let spans = &decoded.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans[0].trace_id, vec![9; 16]);
    assert_eq!(
        spans[1].attributes[0].value.as_ref().unwrap().value,
        Some(any_value::Value::StringValue("****".into()))
    );
}

#[test]
fn attribute_walk_reads_span_lists_in_any_wire_order() {
    // One span whose attributes are split around its events and links, as
    // concatenated (merged) encodings are: the walk must visit what prost decodes.
    let attribute = |key: &str| KeyValue { key: key.into(), ..Default::default() };
    let span = [
        Span { events: vec![Event { attributes: vec![attribute("e")], ..Default::default() }], ..Default::default() },
        Span { attributes: vec![attribute("a")], ..Default::default() },
        Span { links: vec![Link { attributes: vec![attribute("l")], ..Default::default() }], ..Default::default() },
        Span { attributes: vec![attribute("b")], ..Default::default() },
    ]
    .map(|part| part.encode_to_vec())
    .concat();
    let otlp = len_field(1, &len_field(2, &len_field(2, &span)));
    let decoded =
        &ExportTraceServiceRequest::decode(otlp.as_slice()).unwrap().resource_spans[0].scope_spans[0].spans[0];
    let keys = |list: &[KeyValue]| list.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
    let expected = vec![
        (wasmtel_sdk::AttributeSite::Span, keys(&decoded.attributes)),
        (wasmtel_sdk::AttributeSite::SpanEvent, keys(&decoded.events[0].attributes)),
        (wasmtel_sdk::AttributeSite::SpanLink, keys(&decoded.links[0].attributes)),
    ];
    let mut visited = vec![];
    for_each_attributes(wasmtel_sdk::Signal::Traces, &otlp, |site, list| {
        visited.push((site, list.map(|kv| Ok(kv?.key()?.to_string())).collect::<R<Vec<_>>>()?));
        Ok::<_, ViewError>(())
    })
    .unwrap();
    assert_eq!(visited, expected);
    assert_eq!(expected[0].1, ["a", "b"]);
}

#[test]
fn no_edit_is_unchanged_and_removing_everything_is_dropped() {
    let otlp = rich_traces().encode_to_vec();
    assert_eq!(Editor::new(&otlp).finish().unwrap(), Outcome::Unchanged);
    let mut editor = Editor::new(&otlp);
    for rs in TracesView::new(&otlp).resource_spans() {
        editor.remove(&rs.unwrap());
    }
    assert_eq!(editor.finish().unwrap(), Outcome::Dropped);
    let view = TracesView::new(&otlp);
    let mut editor = Editor::new(&otlp);
    editor.remove(&view);
    assert_eq!(editor.finish().unwrap(), Outcome::Dropped);
}

#[test]
fn overlapping_edits_the_outermost_and_then_the_latest_win() {
    let otlp = rich_traces().encode_to_vec();
    let view = TracesView::new(&otlp);
    let rs = view.resource_spans().next().unwrap().unwrap();
    let ss = rs.scope_spans().next().unwrap().unwrap();
    let span = ss.spans().next().unwrap().unwrap();
    let secret = span.attributes().next().unwrap().unwrap();
    let mut editor = Editor::new(&otlp);
    editor.set_value(&secret, "first");
    editor.set_value(&secret, "second");
    editor.push_attribute(&span, "a", 1i64);
    editor.push_attribute(&span, "b", true);
    let Outcome::Replaced(out) = editor.finish().unwrap() else { panic!() };
    let decoded = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
    let attributes = &decoded.resource_spans[0].scope_spans[0].spans[0].attributes;
    assert_eq!(attributes[0].value.as_ref().unwrap().value, Some(any_value::Value::StringValue("second".into())));
    assert_eq!(attributes.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(), ["secret", "nest", "a", "b"]);

    let mut editor = Editor::new(&otlp);
    editor.set_value(&secret, "inside");
    editor.push_attribute(&span, "a", 1i64);
    editor.remove(&span);
    let Outcome::Replaced(out) = editor.finish().unwrap() else { panic!() };
    let decoded = ExportTraceServiceRequest::decode(out.as_slice()).unwrap();
    assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), 2);
    assert!(decoded.resource_spans[0].scope_spans[0].spans.iter().all(|s| s.name != "tag"));
}

#[test]
fn wrong_wire_types_and_bad_utf8_are_named() {
    // ResourceSpans holding a varint where scope_spans (a message) belongs.
    let otlp = len_field(1, &[0x10, 0x01]);
    let rs = TracesView::new(&otlp).resource_spans().next().unwrap().unwrap();
    let error = rs.scope_spans().next().unwrap().unwrap_err();
    assert_eq!(error.what, "ResourceSpans");
    assert!(error.to_string().contains("wrong wire type"), "{error}");
    // A span name that is not UTF-8.
    let otlp = len_field(1, &len_field(2, &len_field(2, &len_field(5, &[0xff, 0xfe]))));
    let span = TracesView::new(&otlp).resource_spans().next().unwrap().unwrap();
    let span = span.scope_spans().next().unwrap().unwrap().spans().next().unwrap().unwrap();
    let error = span.name().unwrap_err();
    assert_eq!((error.what, error.message), ("Span", "a string is not UTF-8"));
    let process_error: wasmtel_sdk::ProcessError = error.into();
    assert!(matches!(process_error, wasmtel_sdk::ProcessError::Permanent(_)));
}

/// A view `retain_*` outcome against the decoded helper's action and result.
fn check_retained<M: Message + Default + PartialEq + std::fmt::Debug>(
    outcome: Outcome,
    action: wasmtel_sdk::Action,
    expected: &M,
) -> Result<(), TestCaseError> {
    match (outcome, action) {
        (Outcome::Unchanged, wasmtel_sdk::Action::Unchanged) | (Outcome::Dropped, wasmtel_sdk::Action::Dropped) => {}
        (Outcome::Replaced(bytes), wasmtel_sdk::Action::Modified) => {
            prop_assert_eq!(&M::decode(bytes.as_slice()).expect("the output decodes"), expected);
        }
        (outcome, action) => prop_assert!(false, "view: {:?}, decoded: {:?}", outcome, action),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The view `retain_*` helpers remove what the decoded ones remove,
    /// emptied scopes and resources included.
    #[test]
    fn retain_helpers_match_the_decoded_ones(
        traces_in in traces_strategy(),
        logs_in in logs_strategy(),
        metrics_in in metrics_strategy(),
    ) {
        let otlp = traces_in.encode_to_vec();
        let (outcome, _) = retain_spans::<ViewError>(&otlp, |_, span| Ok(span.name()? != "gone")).unwrap();
        let mut expected = traces_in.clone();
        let action = wasmtel_sdk::retain_spans(&mut expected, |_, span| span.name != "gone").unwrap();
        check_retained(outcome, action, &expected)?;

        let otlp = logs_in.encode_to_vec();
        let (outcome, _) = retain_log_records::<ViewError>(&otlp, |_, r| Ok(r.severity_number()? > 4)).unwrap();
        let mut expected = logs_in.clone();
        let action = wasmtel_sdk::retain_log_records(&mut expected, |_, r| r.severity_number > 4).unwrap();
        check_retained(outcome, action, &expected)?;

        let otlp = metrics_in.encode_to_vec();
        let (outcome, _) = retain_data_points::<ViewError>(&otlp, |_, metric, attributes| {
            Ok(metric.name()? != "gone" && find_attribute(attributes, "secret")?.is_none())
        })
        .unwrap();
        let mut expected = metrics_in.clone();
        let action = wasmtel_sdk::retain_data_points(&mut expected, |_, name, attributes| {
            name != "gone" && !attributes.iter().any(|kv| kv.key == "secret")
        })
        .unwrap();
        check_retained(outcome, action, &expected)?;
    }
}
