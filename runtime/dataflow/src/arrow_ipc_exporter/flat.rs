//! OTLP requests flattened into one Arrow table per signal, so an Arrow IPC
//! stream file per signal needs no joins to read: one row per span, per log
//! record, per metric data point. The schemas are fixed (they do not depend on
//! the data), which keeps every batch of a stream on one schema.
//!
//! Lossless where OTLP's own types allow: every trace and span ID is written
//! as the bytes it arrived as (`Binary`; null only when empty, OTLP's
//! "unset"), every timestamp as its raw `fixed64` nanoseconds (`UInt64`
//! `*_unix_nano`, no clamping, 0 kept), and exemplars are carried. Attribute
//! maps are `Map<Utf8, Utf8>`: strings as is, other scalars in their usual
//! text form, bytes as hex, arrays and maps as JSON.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Field, Schema};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, exemplar, exponential_histogram_data_point, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use wasmtel_runtime::Signal;

#[derive(Debug, thiserror::Error)]
pub enum FlattenError {
    #[error("not an OTLP {signal} request: {source}")]
    Decode { signal: Signal, source: prost::DecodeError },
    #[error("building the Arrow {signal} table: {source}")]
    Arrow { signal: Signal, source: ArrowError },
}

/// The rows of one signal gathered from any number of OTLP requests, until
/// [`Rows::finish`] turns them into one record batch (and starts afresh).
pub struct Rows {
    signal: Signal,
    table: Table,
    len: usize,
}

enum Table {
    Spans(Box<SpanRows>),
    Logs(Box<LogRows>),
    Points(Box<Points>),
}

impl Rows {
    /// No rows yet, for `signal`.
    pub fn new(signal: Signal) -> Self {
        let table = match signal {
            Signal::Traces => Table::Spans(Box::new(SpanRows::new())),
            Signal::Logs => Table::Logs(Box::new(LogRows::new())),
            Signal::Metrics => Table::Points(Box::new(Points::new())),
        };
        Rows { signal, table, len: 0 }
    }

    /// Rows gathered so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends the items of an OTLP request of this signal; returns how many
    /// rows they made. A request that does not decode adds nothing.
    pub fn append(&mut self, otlp: &[u8]) -> Result<usize, FlattenError> {
        let signal = self.signal;
        let decode = |source| FlattenError::Decode { signal, source };
        let added = match &mut self.table {
            Table::Spans(rows) => rows.append(&ExportTraceServiceRequest::decode(otlp).map_err(decode)?),
            Table::Logs(rows) => rows.append(&ExportLogsServiceRequest::decode(otlp).map_err(decode)?),
            Table::Points(rows) => rows.append_request(&ExportMetricsServiceRequest::decode(otlp).map_err(decode)?),
        }
        .map_err(|source| FlattenError::Arrow { signal, source })?;
        self.len += added;
        Ok(added)
    }

    /// The gathered rows as one record batch; the builders start empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, FlattenError> {
        self.len = 0;
        match &mut self.table {
            Table::Spans(rows) => rows.finish(),
            Table::Logs(rows) => rows.finish(),
            Table::Points(rows) => rows.finish(),
        }
        .map_err(|source| FlattenError::Arrow { signal: self.signal, source })
    }
}

type AttrsBuilder = MapBuilder<StringBuilder, StringBuilder>;

fn attrs_builder() -> AttrsBuilder {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

fn append_attrs(builder: &mut AttrsBuilder, attributes: &[KeyValue]) -> Result<(), ArrowError> {
    for kv in attributes {
        builder.keys().append_value(&kv.key);
        match kv.value.as_ref().and_then(render) {
            Some(value) => builder.values().append_value(value),
            None => builder.values().append_null(),
        }
    }
    builder.append(true)
}

/// A value as text; `None` for an empty value.
fn render(value: &AnyValue) -> Option<String> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BytesValue(b) => hex::encode(b),
        other => to_json(other).to_string(),
    })
}

fn to_json(value: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => J::from(*d),
        any_value::Value::BytesValue(b) => J::String(hex::encode(b)),
        // A profiles-only reference into a string table this request does not carry.
        any_value::Value::StringValueStrindex(i) => J::from(*i),
        any_value::Value::ArrayValue(array) => {
            J::Array(array.values.iter().map(|v| v.value.as_ref().map_or(J::Null, to_json)).collect())
        }
        any_value::Value::KvlistValue(list) => J::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().and_then(|v| v.value.as_ref()).map_or(J::Null, to_json)))
                .collect(),
        ),
    }
}

/// An ID as written: any length (a wrong-length ID is kept, not nulled),
/// null only when empty.
fn append_id(builder: &mut BinaryBuilder, id: &[u8]) {
    if id.is_empty() {
        builder.append_null();
    } else {
        builder.append_value(id);
    }
}

/// Resource and scope columns, repeated on every row.
struct Origin {
    resource_attributes: AttrsBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
}

impl Origin {
    fn new() -> Self {
        Origin {
            resource_attributes: attrs_builder(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
        }
    }

    fn append(&mut self, resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Result<(), ArrowError> {
        append_attrs(&mut self.resource_attributes, resource.map_or(&[][..], |r| &r.attributes))?;
        self.scope_name.append_value(scope.map_or("", |s| s.name.as_str()));
        self.scope_version.append_value(scope.map_or("", |s| s.version.as_str()));
        Ok(())
    }

    fn finish(&mut self, columns: &mut Vec<(&'static str, ArrayRef)>) {
        columns.push(("resource_attributes", Arc::new(self.resource_attributes.finish())));
        columns.push(("scope_name", Arc::new(self.scope_name.finish())));
        columns.push(("scope_version", Arc::new(self.scope_version.finish())));
    }
}

/// The origin columns, then `columns`, as one record batch.
fn batch<const N: usize>(
    origin: &mut Origin,
    columns: [(&'static str, ArrayRef); N],
) -> Result<RecordBatch, ArrowError> {
    let mut all: Vec<(&'static str, ArrayRef)> = Vec::with_capacity(N + 3);
    origin.finish(&mut all);
    all.extend(columns);
    let fields: Vec<Field> =
        all.iter().map(|(name, array)| Field::new(*name, array.data_type().clone(), true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), all.into_iter().map(|(_, a)| a).collect())
}

/// One row per span.
struct SpanRows {
    origin: Origin,
    trace_id: BinaryBuilder,
    span_id: BinaryBuilder,
    parent_span_id: BinaryBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    name: StringBuilder,
    kind: Int32Builder,
    start_time: UInt64Builder,
    end_time: UInt64Builder,
    attributes: AttrsBuilder,
    dropped_attributes: UInt32Builder,
    event_times: ListBuilder<UInt64Builder>,
    event_names: ListBuilder<StringBuilder>,
    event_attributes: ListBuilder<AttrsBuilder>,
    link_trace_ids: ListBuilder<BinaryBuilder>,
    link_span_ids: ListBuilder<BinaryBuilder>,
    link_attributes: ListBuilder<AttrsBuilder>,
    status_code: Int32Builder,
    status_message: StringBuilder,
}

impl SpanRows {
    fn new() -> Self {
        SpanRows {
            origin: Origin::new(),
            trace_id: BinaryBuilder::new(),
            span_id: BinaryBuilder::new(),
            parent_span_id: BinaryBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            name: StringBuilder::new(),
            kind: Int32Builder::new(),
            start_time: UInt64Builder::new(),
            end_time: UInt64Builder::new(),
            attributes: attrs_builder(),
            dropped_attributes: UInt32Builder::new(),
            event_times: ListBuilder::new(UInt64Builder::new()),
            event_names: ListBuilder::new(StringBuilder::new()),
            event_attributes: ListBuilder::new(attrs_builder()),
            link_trace_ids: ListBuilder::new(BinaryBuilder::new()),
            link_span_ids: ListBuilder::new(BinaryBuilder::new()),
            link_attributes: ListBuilder::new(attrs_builder()),
            status_code: Int32Builder::new(),
            status_message: StringBuilder::new(),
        }
    }

    fn append(&mut self, request: &ExportTraceServiceRequest) -> Result<usize, ArrowError> {
        let mut rows = 0;
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    self.origin.append(rs.resource.as_ref(), ss.scope.as_ref())?;
                    append_id(&mut self.trace_id, &span.trace_id);
                    append_id(&mut self.span_id, &span.span_id);
                    append_id(&mut self.parent_span_id, &span.parent_span_id);
                    self.trace_state.append_value(&span.trace_state);
                    self.flags.append_value(span.flags);
                    self.name.append_value(&span.name);
                    self.kind.append_value(span.kind);
                    self.start_time.append_value(span.start_time_unix_nano);
                    self.end_time.append_value(span.end_time_unix_nano);
                    append_attrs(&mut self.attributes, &span.attributes)?;
                    self.dropped_attributes.append_value(span.dropped_attributes_count);
                    for event in &span.events {
                        self.event_times.values().append_value(event.time_unix_nano);
                        self.event_names.values().append_value(&event.name);
                        append_attrs(self.event_attributes.values(), &event.attributes)?;
                    }
                    self.event_times.append(true);
                    self.event_names.append(true);
                    self.event_attributes.append(true);
                    for link in &span.links {
                        append_id(self.link_trace_ids.values(), &link.trace_id);
                        append_id(self.link_span_ids.values(), &link.span_id);
                        append_attrs(self.link_attributes.values(), &link.attributes)?;
                    }
                    self.link_trace_ids.append(true);
                    self.link_span_ids.append(true);
                    self.link_attributes.append(true);
                    let status = span.status.as_ref();
                    self.status_code.append_value(status.map_or(0, |s| s.code));
                    self.status_message.append_value(status.map_or("", |s| s.message.as_str()));
                    rows += 1;
                }
            }
        }
        Ok(rows)
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        batch(
            &mut self.origin,
            [
                ("trace_id", Arc::new(self.trace_id.finish()) as ArrayRef),
                ("span_id", Arc::new(self.span_id.finish())),
                ("parent_span_id", Arc::new(self.parent_span_id.finish())),
                ("trace_state", Arc::new(self.trace_state.finish())),
                ("flags", Arc::new(self.flags.finish())),
                ("name", Arc::new(self.name.finish())),
                ("kind", Arc::new(self.kind.finish())),
                ("start_time_unix_nano", Arc::new(self.start_time.finish())),
                ("end_time_unix_nano", Arc::new(self.end_time.finish())),
                ("attributes", Arc::new(self.attributes.finish())),
                ("dropped_attributes_count", Arc::new(self.dropped_attributes.finish())),
                ("event_times_unix_nano", Arc::new(self.event_times.finish())),
                ("event_names", Arc::new(self.event_names.finish())),
                ("event_attributes", Arc::new(self.event_attributes.finish())),
                ("link_trace_ids", Arc::new(self.link_trace_ids.finish())),
                ("link_span_ids", Arc::new(self.link_span_ids.finish())),
                ("link_attributes", Arc::new(self.link_attributes.finish())),
                ("status_code", Arc::new(self.status_code.finish())),
                ("status_message", Arc::new(self.status_message.finish())),
            ],
        )
    }
}

/// One row per log record.
struct LogRows {
    origin: Origin,
    time: UInt64Builder,
    observed_time: UInt64Builder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    attributes: AttrsBuilder,
    dropped_attributes: UInt32Builder,
    flags: UInt32Builder,
    trace_id: BinaryBuilder,
    span_id: BinaryBuilder,
    event_name: StringBuilder,
}

impl LogRows {
    fn new() -> Self {
        LogRows {
            origin: Origin::new(),
            time: UInt64Builder::new(),
            observed_time: UInt64Builder::new(),
            severity_number: Int32Builder::new(),
            severity_text: StringBuilder::new(),
            body: StringBuilder::new(),
            attributes: attrs_builder(),
            dropped_attributes: UInt32Builder::new(),
            flags: UInt32Builder::new(),
            trace_id: BinaryBuilder::new(),
            span_id: BinaryBuilder::new(),
            event_name: StringBuilder::new(),
        }
    }

    fn append(&mut self, request: &ExportLogsServiceRequest) -> Result<usize, ArrowError> {
        let mut rows = 0;
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    self.origin.append(rl.resource.as_ref(), sl.scope.as_ref())?;
                    self.time.append_value(record.time_unix_nano);
                    self.observed_time.append_value(record.observed_time_unix_nano);
                    self.severity_number.append_value(record.severity_number);
                    self.severity_text.append_value(&record.severity_text);
                    self.body.append_option(record.body.as_ref().and_then(render));
                    append_attrs(&mut self.attributes, &record.attributes)?;
                    self.dropped_attributes.append_value(record.dropped_attributes_count);
                    self.flags.append_value(record.flags);
                    append_id(&mut self.trace_id, &record.trace_id);
                    append_id(&mut self.span_id, &record.span_id);
                    self.event_name.append_value(&record.event_name);
                    rows += 1;
                }
            }
        }
        Ok(rows)
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        batch(
            &mut self.origin,
            [
                ("time_unix_nano", Arc::new(self.time.finish()) as ArrayRef),
                ("observed_time_unix_nano", Arc::new(self.observed_time.finish())),
                ("severity_number", Arc::new(self.severity_number.finish())),
                ("severity_text", Arc::new(self.severity_text.finish())),
                ("body", Arc::new(self.body.finish())),
                ("attributes", Arc::new(self.attributes.finish())),
                ("dropped_attributes_count", Arc::new(self.dropped_attributes.finish())),
                ("flags", Arc::new(self.flags.finish())),
                ("trace_id", Arc::new(self.trace_id.finish())),
                ("span_id", Arc::new(self.span_id.finish())),
                ("event_name", Arc::new(self.event_name.finish())),
            ],
        )
    }
}

/// One row per data point; columns that do not apply to a point's type are null.
struct Points {
    origin: Origin,
    metric_name: StringBuilder,
    description: StringBuilder,
    unit: StringBuilder,
    metric_type: StringBuilder,
    temporality: Int32Builder,
    is_monotonic: BooleanBuilder,
    attributes: AttrsBuilder,
    start_time: UInt64Builder,
    time: UInt64Builder,
    flags: UInt32Builder,
    value_double: Float64Builder,
    value_int: Int64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<UInt64Builder>,
    quantiles: ListBuilder<Float64Builder>,
    quantile_values: ListBuilder<Float64Builder>,
    exemplar_times: ListBuilder<UInt64Builder>,
    exemplar_values_double: ListBuilder<Float64Builder>,
    exemplar_values_int: ListBuilder<Int64Builder>,
    exemplar_trace_ids: ListBuilder<BinaryBuilder>,
    exemplar_span_ids: ListBuilder<BinaryBuilder>,
    exemplar_attributes: ListBuilder<AttrsBuilder>,
}

/// The per-type part of a data point.
#[derive(Default)]
struct PointValues<'a> {
    double: Option<f64>,
    int: Option<i64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    buckets: Option<(&'a [u64], &'a [f64])>,
    exponential: Option<Exponential<'a>>,
    quantiles: Option<Vec<(f64, f64)>>,
}

struct Exponential<'a> {
    scale: i32,
    zero_count: u64,
    positive: (i32, &'a [u64]),
    negative: (i32, &'a [u64]),
}

struct MetricInfo<'a> {
    name: &'a str,
    description: &'a str,
    unit: &'a str,
    kind: &'static str,
    temporality: Option<i32>,
    monotonic: Option<bool>,
}

impl Points {
    fn new() -> Self {
        Points {
            origin: Origin::new(),
            metric_name: StringBuilder::new(),
            description: StringBuilder::new(),
            unit: StringBuilder::new(),
            metric_type: StringBuilder::new(),
            temporality: Int32Builder::new(),
            is_monotonic: BooleanBuilder::new(),
            attributes: attrs_builder(),
            start_time: UInt64Builder::new(),
            time: UInt64Builder::new(),
            flags: UInt32Builder::new(),
            value_double: Float64Builder::new(),
            value_int: Int64Builder::new(),
            count: UInt64Builder::new(),
            sum: Float64Builder::new(),
            min: Float64Builder::new(),
            max: Float64Builder::new(),
            bucket_counts: ListBuilder::new(UInt64Builder::new()),
            explicit_bounds: ListBuilder::new(Float64Builder::new()),
            scale: Int32Builder::new(),
            zero_count: UInt64Builder::new(),
            positive_offset: Int32Builder::new(),
            positive_bucket_counts: ListBuilder::new(UInt64Builder::new()),
            negative_offset: Int32Builder::new(),
            negative_bucket_counts: ListBuilder::new(UInt64Builder::new()),
            quantiles: ListBuilder::new(Float64Builder::new()),
            quantile_values: ListBuilder::new(Float64Builder::new()),
            exemplar_times: ListBuilder::new(UInt64Builder::new()),
            exemplar_values_double: ListBuilder::new(Float64Builder::new()),
            exemplar_values_int: ListBuilder::new(Int64Builder::new()),
            exemplar_trace_ids: ListBuilder::new(BinaryBuilder::new()),
            exemplar_span_ids: ListBuilder::new(BinaryBuilder::new()),
            exemplar_attributes: ListBuilder::new(attrs_builder()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        metric: &MetricInfo<'_>,
        attributes: &[KeyValue],
        start_time: u64,
        time: u64,
        flags: u32,
        exemplars: &[Exemplar],
        values: PointValues<'_>,
    ) -> Result<(), ArrowError> {
        self.origin.append(resource, scope)?;
        self.metric_name.append_value(metric.name);
        self.description.append_value(metric.description);
        self.unit.append_value(metric.unit);
        self.metric_type.append_value(metric.kind);
        self.temporality.append_option(metric.temporality);
        self.is_monotonic.append_option(metric.monotonic);
        append_attrs(&mut self.attributes, attributes)?;
        self.start_time.append_value(start_time);
        self.time.append_value(time);
        self.flags.append_value(flags);
        self.value_double.append_option(values.double);
        self.value_int.append_option(values.int);
        self.count.append_option(values.count);
        self.sum.append_option(values.sum);
        self.min.append_option(values.min);
        self.max.append_option(values.max);
        match values.buckets {
            Some((counts, bounds)) => {
                self.bucket_counts.values().append_slice(counts);
                self.bucket_counts.append(true);
                self.explicit_bounds.values().append_slice(bounds);
                self.explicit_bounds.append(true);
            }
            None => {
                self.bucket_counts.append(false);
                self.explicit_bounds.append(false);
            }
        }
        match values.exponential {
            Some(e) => {
                self.scale.append_value(e.scale);
                self.zero_count.append_value(e.zero_count);
                self.positive_offset.append_value(e.positive.0);
                self.positive_bucket_counts.values().append_slice(e.positive.1);
                self.positive_bucket_counts.append(true);
                self.negative_offset.append_value(e.negative.0);
                self.negative_bucket_counts.values().append_slice(e.negative.1);
                self.negative_bucket_counts.append(true);
            }
            None => {
                self.scale.append_null();
                self.zero_count.append_null();
                self.positive_offset.append_null();
                self.positive_bucket_counts.append(false);
                self.negative_offset.append_null();
                self.negative_bucket_counts.append(false);
            }
        }
        match values.quantiles {
            Some(pairs) => {
                for (q, v) in pairs {
                    self.quantiles.values().append_value(q);
                    self.quantile_values.values().append_value(v);
                }
                self.quantiles.append(true);
                self.quantile_values.append(true);
            }
            None => {
                self.quantiles.append(false);
                self.quantile_values.append(false);
            }
        }
        for exemplar in exemplars {
            self.exemplar_times.values().append_value(exemplar.time_unix_nano);
            let (double, int) = match exemplar.value {
                Some(exemplar::Value::AsDouble(d)) => (Some(d), None),
                Some(exemplar::Value::AsInt(i)) => (None, Some(i)),
                None => (None, None),
            };
            self.exemplar_values_double.values().append_option(double);
            self.exemplar_values_int.values().append_option(int);
            append_id(self.exemplar_trace_ids.values(), &exemplar.trace_id);
            append_id(self.exemplar_span_ids.values(), &exemplar.span_id);
            append_attrs(self.exemplar_attributes.values(), &exemplar.filtered_attributes)?;
        }
        self.exemplar_times.append(true);
        self.exemplar_values_double.append(true);
        self.exemplar_values_int.append(true);
        self.exemplar_trace_ids.append(true);
        self.exemplar_span_ids.append(true);
        self.exemplar_attributes.append(true);
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        batch(
            &mut self.origin,
            [
                ("metric_name", Arc::new(self.metric_name.finish()) as ArrayRef),
                ("description", Arc::new(self.description.finish())),
                ("unit", Arc::new(self.unit.finish())),
                ("metric_type", Arc::new(self.metric_type.finish())),
                ("aggregation_temporality", Arc::new(self.temporality.finish())),
                ("is_monotonic", Arc::new(self.is_monotonic.finish())),
                ("attributes", Arc::new(self.attributes.finish())),
                ("start_time_unix_nano", Arc::new(self.start_time.finish())),
                ("time_unix_nano", Arc::new(self.time.finish())),
                ("flags", Arc::new(self.flags.finish())),
                ("value_double", Arc::new(self.value_double.finish())),
                ("value_int", Arc::new(self.value_int.finish())),
                ("count", Arc::new(self.count.finish())),
                ("sum", Arc::new(self.sum.finish())),
                ("min", Arc::new(self.min.finish())),
                ("max", Arc::new(self.max.finish())),
                ("bucket_counts", Arc::new(self.bucket_counts.finish())),
                ("explicit_bounds", Arc::new(self.explicit_bounds.finish())),
                ("scale", Arc::new(self.scale.finish())),
                ("zero_count", Arc::new(self.zero_count.finish())),
                ("positive_offset", Arc::new(self.positive_offset.finish())),
                ("positive_bucket_counts", Arc::new(self.positive_bucket_counts.finish())),
                ("negative_offset", Arc::new(self.negative_offset.finish())),
                ("negative_bucket_counts", Arc::new(self.negative_bucket_counts.finish())),
                ("quantiles", Arc::new(self.quantiles.finish())),
                ("quantile_values", Arc::new(self.quantile_values.finish())),
                ("exemplar_times_unix_nano", Arc::new(self.exemplar_times.finish())),
                ("exemplar_values_double", Arc::new(self.exemplar_values_double.finish())),
                ("exemplar_values_int", Arc::new(self.exemplar_values_int.finish())),
                ("exemplar_trace_ids", Arc::new(self.exemplar_trace_ids.finish())),
                ("exemplar_span_ids", Arc::new(self.exemplar_span_ids.finish())),
                ("exemplar_filtered_attributes", Arc::new(self.exemplar_attributes.finish())),
            ],
        )
    }
}

impl Points {
    fn append_request(&mut self, request: &ExportMetricsServiceRequest) -> Result<usize, ArrowError> {
        let points = self;
        let mut rows = 0;
        for rm in &request.resource_metrics {
            let resource = rm.resource.as_ref();
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref();
                for m in &sm.metrics {
                    let info = |kind, temporality, monotonic| MetricInfo {
                        name: &m.name,
                        description: &m.description,
                        unit: &m.unit,
                        kind,
                        temporality,
                        monotonic,
                    };
                    // Every kind of point shares these columns; only its values differ.
                    macro_rules! append_point {
                        ($point:expr, $exemplars:expr, $info:expr, $values:expr) => {
                            points.append(
                                resource,
                                scope,
                                &$info,
                                &$point.attributes,
                                $point.start_time_unix_nano,
                                $point.time_unix_nano,
                                $point.flags,
                                $exemplars,
                                $values,
                            )?;
                            rows += 1;
                        };
                    }
                    match &m.data {
                        Some(metric::Data::Gauge(g)) => {
                            for p in &g.data_points {
                                let values = number_values(p.value);
                                append_point!(p, &p.exemplars, info("gauge", None, None), values);
                            }
                        }
                        Some(metric::Data::Sum(s)) => {
                            for p in &s.data_points {
                                let values = number_values(p.value);
                                append_point!(
                                    p,
                                    &p.exemplars,
                                    info("sum", Some(s.aggregation_temporality), Some(s.is_monotonic)),
                                    values
                                );
                            }
                        }
                        Some(metric::Data::Histogram(h)) => {
                            for p in &h.data_points {
                                let values = PointValues {
                                    count: Some(p.count),
                                    sum: p.sum,
                                    min: p.min,
                                    max: p.max,
                                    buckets: Some((&p.bucket_counts, &p.explicit_bounds)),
                                    ..Default::default()
                                };
                                append_point!(
                                    p,
                                    &p.exemplars,
                                    info("histogram", Some(h.aggregation_temporality), None),
                                    values
                                );
                            }
                        }
                        Some(metric::Data::ExponentialHistogram(h)) => {
                            for p in &h.data_points {
                                let values = PointValues {
                                    count: Some(p.count),
                                    sum: p.sum,
                                    min: p.min,
                                    max: p.max,
                                    exponential: Some(Exponential {
                                        scale: p.scale,
                                        zero_count: p.zero_count,
                                        positive: side(&p.positive),
                                        negative: side(&p.negative),
                                    }),
                                    ..Default::default()
                                };
                                append_point!(
                                    p,
                                    &p.exemplars,
                                    info("exponential_histogram", Some(h.aggregation_temporality), None),
                                    values
                                );
                            }
                        }
                        Some(metric::Data::Summary(s)) => {
                            for p in &s.data_points {
                                let values = PointValues {
                                    count: Some(p.count),
                                    sum: Some(p.sum),
                                    quantiles: Some(p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect()),
                                    ..Default::default()
                                };
                                append_point!(p, &[], info("summary", None, None), values);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(rows)
    }
}

fn side(buckets: &Option<exponential_histogram_data_point::Buckets>) -> (i32, &[u64]) {
    buckets.as_ref().map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()))
}

fn number_values(value: Option<number_data_point::Value>) -> PointValues<'static> {
    match value {
        Some(number_data_point::Value::AsDouble(d)) => PointValues { double: Some(d), ..Default::default() },
        Some(number_data_point::Value::AsInt(i)) => PointValues { int: Some(i), ..Default::default() },
        None => PointValues::default(),
    }
}
