//! Zero-decode OTLP: views that read a request's protobuf bytes in place.
//!
//! A view borrows the request and reads a field only when asked: nothing is
//! decoded up front and nothing is allocated. Lists are iterators; each item
//! and each field read is a `Result`, because bytes from outside may be
//! malformed anywhere: [`ViewError`] names what and where, and converts into a
//! `permanent` [`ProcessError`] with `?`. With [`Editor`](crate::edit::Editor)
//! a processor then writes only what it changes.
//!
//! ```
//! use wasmtel_sdk::view::{TracesView, ViewError};
//!
//! fn count_spans(otlp: &[u8]) -> Result<usize, ViewError> {
//!     let mut spans = 0;
//!     for resource_spans in TracesView::new(otlp).resource_spans() {
//!         for scope_spans in resource_spans?.scope_spans() {
//!             for span in scope_spans?.spans() {
//!                 span?;
//!                 spans += 1;
//!             }
//!         }
//!     }
//!     Ok(spans)
//! }
//! ```
//!
//! Semantics follow protobuf decoding: a missing field reads as its default,
//! the last occurrence of a scalar wins, unknown fields are skipped (and kept
//! by the editor), packed and unpacked repeated scalars both read.

mod walk;
mod wire;

use std::marker::PhantomData;

pub(crate) use wire::{
    FIXED32, FIXED64, Field, Fields, LEN, VARINT, Wire, put_len_field, put_tag, put_varint, read_varint, varint_len,
};

pub use walk::{PointView, for_each_attributes, retain_data_points, retain_log_records, retain_spans};

use crate::ProcessError;

/// Bytes that are not the OTLP message a view expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewError {
    /// The message being read (`Span`, `KeyValue`, …).
    pub what: &'static str,
    /// What is wrong.
    pub message: &'static str,
    /// Absolute byte offset in the request.
    pub offset: usize,
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed OTLP {} at byte {}: {}", self.what, self.offset, self.message)
    }
}

impl std::error::Error for ViewError {}

impl From<ViewError> for ProcessError {
    fn from(error: ViewError) -> Self {
        ProcessError::permanent(error.to_string())
    }
}

/// Where a message sits in the request: its body, its whole field (tag to
/// end) and the body of the message holding it. Absolute byte positions.
#[derive(Clone, Copy, Debug)]
pub struct Location {
    pub(crate) field_start: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) parent: (usize, usize),
}

impl Location {
    /// The body's byte range in the request.
    pub fn body(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// A typed view of one OTLP message.
pub trait View<'a>: Copy {
    /// The message's protobuf name, for errors.
    const WHAT: &'static str;
    #[doc(hidden)]
    fn at(buf: &'a [u8], location: Location) -> Self;
    /// The whole request this view reads.
    fn buf(&self) -> &'a [u8];
    fn location(&self) -> Location;
    /// The message's encoded body, as received.
    fn bytes(&self) -> &'a [u8] {
        let location = self.location();
        &self.buf()[location.start..location.end]
    }
}

/// A message view with an attribute list.
pub trait HasAttributes<'a>: View<'a> {
    /// The field number of its `attributes` (`metadata`, `filtered_attributes`).
    const ATTRIBUTES_FIELD: u32;
    fn attributes(&self) -> Repeated<'a, KeyValueView<'a>> {
        Repeated::new(self.buf(), self.location(), Self::WHAT, Self::ATTRIBUTES_FIELD)
    }
}

pub(crate) fn fields<'a, V: View<'a>>(view: &V) -> Fields<'a> {
    let location = view.location();
    Fields::new(view.buf(), location.start, location.end, V::WHAT)
}

fn wrong_type(what: &'static str, field: &Field) -> ViewError {
    ViewError { what, message: "a known field has the wrong wire type", offset: field.start }
}

/// The last occurrence of field `number`, checked against `wire_type`.
fn last_field(
    mut fields: Fields<'_>,
    what: &'static str,
    number: u32,
    wire_type: u8,
) -> Result<Option<Field>, ViewError> {
    let mut last = None;
    for field in &mut fields {
        let field = field?;
        if field.number != number {
            continue;
        }
        let matches = matches!(
            (wire_type, field.wire),
            (VARINT, Wire::Varint(_))
                | (FIXED64, Wire::Fixed64(_))
                | (FIXED32, Wire::Fixed32(_))
                | (LEN, Wire::Len(..))
        );
        if !matches {
            return Err(wrong_type(what, &field));
        }
        last = Some(field);
    }
    Ok(last)
}

/// Field readers by protobuf type, used by the generated accessors.
#[doc(hidden)]
pub mod read {
    use super::*;

    pub fn varint<'a, V: View<'a>>(view: &V, number: u32) -> Result<u64, ViewError> {
        Ok(match last_field(fields(view), V::WHAT, number, VARINT)? {
            Some(Field { wire: Wire::Varint(v), .. }) => v,
            _ => 0,
        })
    }

    pub fn fixed64<'a, V: View<'a>>(view: &V, number: u32) -> Result<Option<u64>, ViewError> {
        Ok(match last_field(fields(view), V::WHAT, number, FIXED64)? {
            Some(Field { wire: Wire::Fixed64(v), .. }) => Some(v),
            _ => None,
        })
    }

    pub fn fixed32<'a, V: View<'a>>(view: &V, number: u32) -> Result<u32, ViewError> {
        Ok(match last_field(fields(view), V::WHAT, number, FIXED32)? {
            Some(Field { wire: Wire::Fixed32(v), .. }) => v,
            _ => 0,
        })
    }

    pub fn bytes<'a, V: View<'a>>(view: &V, number: u32) -> Result<&'a [u8], ViewError> {
        Ok(match last_field(fields(view), V::WHAT, number, LEN)? {
            Some(Field { wire: Wire::Len(start, end), .. }) => &view.buf()[start..end],
            _ => &[],
        })
    }

    pub fn string<'a, V: View<'a>>(view: &V, number: u32) -> Result<&'a str, ViewError> {
        match last_field(fields(view), V::WHAT, number, LEN)? {
            Some(Field { wire: Wire::Len(start, end), .. }) => utf8(V::WHAT, view.buf(), start, end),
            _ => Ok(""),
        }
    }

    pub fn message<'a, V: View<'a>, M: View<'a>>(view: &V, number: u32) -> Result<Option<M>, ViewError> {
        Ok(match last_field(fields(view), V::WHAT, number, LEN)? {
            Some(field @ Field { wire: Wire::Len(start, end), .. }) => Some(M::at(
                view.buf(),
                Location { field_start: field.start, start, end, parent: (view.location().start, view.location().end) },
            )),
            _ => None,
        })
    }

    pub fn repeated<'a, V: View<'a>, M: View<'a>>(view: &V, number: u32) -> Repeated<'a, M> {
        Repeated::new(view.buf(), view.location(), V::WHAT, number)
    }

    pub fn fixed64s<'a, V: View<'a>>(view: &V, number: u32) -> Packed<'a, 8> {
        Packed::new(fields(view), V::WHAT, number)
    }

    pub fn varints<'a, V: View<'a>>(view: &V, number: u32) -> Packed<'a, 0> {
        Packed::new(fields(view), V::WHAT, number)
    }
}

fn utf8<'a>(what: &'static str, buf: &'a [u8], start: usize, end: usize) -> Result<&'a str, ViewError> {
    std::str::from_utf8(&buf[start..end]).map_err(|_| ViewError {
        what,
        message: "a string is not UTF-8",
        offset: start,
    })
}

/// The items of a repeated message field, in wire order.
#[derive(Clone, Debug)]
pub struct Repeated<'a, M> {
    fields: Fields<'a>,
    buf: &'a [u8],
    parent: (usize, usize),
    what: &'static str,
    number: u32,
    _item: PhantomData<M>,
}

impl<'a, M> Repeated<'a, M> {
    fn new(buf: &'a [u8], parent: Location, what: &'static str, number: u32) -> Self {
        Repeated {
            fields: Fields::new(buf, parent.start, parent.end, what),
            buf,
            parent: (parent.start, parent.end),
            what,
            number,
            _item: PhantomData,
        }
    }
}

impl<'a, M: View<'a>> Iterator for Repeated<'a, M> {
    type Item = Result<M, ViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        for field in &mut self.fields {
            let field = match field {
                Ok(field) => field,
                Err(error) => return Some(Err(error)),
            };
            if field.number != self.number {
                continue;
            }
            let Wire::Len(start, end) = field.wire else {
                return Some(Err(wrong_type(self.what, &field)));
            };
            return Some(Ok(M::at(self.buf, Location { field_start: field.start, start, end, parent: self.parent })));
        }
        None
    }
}

/// A repeated scalar, packed or not: fixed64/double (`N = 8`) or varints (`N = 0`).
#[derive(Clone, Debug)]
pub struct Packed<'a, const N: usize> {
    fields: Fields<'a>,
    what: &'static str,
    number: u32,
    /// The rest of the packed run being read, absolute.
    run: (usize, usize),
    buf: &'a [u8],
}

impl<'a, const N: usize> Packed<'a, N> {
    fn new(fields: Fields<'a>, what: &'static str, number: u32) -> Self {
        let buf = fields.buf();
        Packed { fields, what, number, run: (0, 0), buf }
    }
}

impl<const N: usize> Iterator for Packed<'_, N> {
    type Item = Result<u64, ViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (pos, end) = self.run;
            if pos < end {
                let error = ViewError { what: self.what, message: "truncated packed value", offset: pos };
                if N == 8 {
                    if end - pos < 8 {
                        self.run = (end, end);
                        return Some(Err(error));
                    }
                    self.run.0 += 8;
                    let mut bytes = [0; 8];
                    bytes.copy_from_slice(&self.buf[pos..pos + 8]);
                    return Some(Ok(u64::from_le_bytes(bytes)));
                }
                return Some(match wire::read_varint(&self.buf[..end], pos) {
                    Some((value, next)) => {
                        self.run.0 = next;
                        Ok(value)
                    }
                    None => {
                        self.run = (end, end);
                        Err(error)
                    }
                });
            }
            let field = match self.fields.next()? {
                Ok(field) => field,
                Err(error) => return Some(Err(error)),
            };
            if field.number != self.number {
                continue;
            }
            match (N, field.wire) {
                (_, Wire::Len(start, end)) => self.run = (start, end),
                (8, Wire::Fixed64(value)) | (0, Wire::Varint(value)) => return Some(Ok(value)),
                _ => return Some(Err(wrong_type(self.what, &field))),
            }
        }
    }
}

/// Declares view types: a name, its protobuf message name, and accessors.
macro_rules! views {
    ($(
        $(#[$doc:meta])*
        $name:ident = $what:literal $(, attributes = $attributes:literal)? {
            $( $(#[$fdoc:meta])* fn $field:ident -> $kind:ident $(<$item:ident>)? = $number:literal; )*
        }
    )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a> {
            buf: &'a [u8],
            location: Location,
        }

        impl<'a> View<'a> for $name<'a> {
            const WHAT: &'static str = $what;
            fn at(buf: &'a [u8], location: Location) -> Self {
                $name { buf, location }
            }
            fn buf(&self) -> &'a [u8] {
                self.buf
            }
            fn location(&self) -> Location {
                self.location
            }
        }

        $(impl<'a> HasAttributes<'a> for $name<'a> {
            const ATTRIBUTES_FIELD: u32 = $attributes;
        })?

        impl<'a> $name<'a> {
            $( $(#[$fdoc])* pub fn $field(&self) -> views!(@type $kind $(<$item>)?) {
                views!(@read self, $kind $(<$item>)?, $number)
            } )*
        }
    )*};
    (@type string) => { Result<&'a str, ViewError> };
    (@type bytes) => { Result<&'a [u8], ViewError> };
    (@type uint64) => { Result<u64, ViewError> };
    (@type uint32) => { Result<u32, ViewError> };
    (@type int32) => { Result<i32, ViewError> };
    (@type sint32) => { Result<i32, ViewError> };
    (@type bool) => { Result<bool, ViewError> };
    (@type fixed64) => { Result<u64, ViewError> };
    (@type sfixed64) => { Result<i64, ViewError> };
    (@type double) => { Result<f64, ViewError> };
    (@type fixed32) => { Result<u32, ViewError> };
    (@type optional_double) => { Result<Option<f64>, ViewError> };
    (@type optional_sfixed64) => { Result<Option<i64>, ViewError> };
    (@type message<$item:ident>) => { Result<Option<$item<'a>>, ViewError> };
    (@type repeated<$item:ident>) => { Repeated<'a, $item<'a>> };
    (@type fixed64s) => { Packed<'a, 8> };
    (@type varints) => { Packed<'a, 0> };
    (@read $s:ident, string, $n:literal) => { read::string($s, $n) };
    (@read $s:ident, bytes, $n:literal) => { read::bytes($s, $n) };
    (@read $s:ident, uint64, $n:literal) => { read::varint($s, $n) };
    // Truncation as protobuf decoders do it: int32/uint32 keep the low 32 bits.
    (@read $s:ident, uint32, $n:literal) => { read::varint($s, $n).map(|v| v as u32) };
    (@read $s:ident, int32, $n:literal) => { read::varint($s, $n).map(|v| v as i32) };
    (@read $s:ident, sint32, $n:literal) => { read::varint($s, $n).map(|v| { let v = v as u32; ((v >> 1) as i32) ^ -((v & 1) as i32) }) };
    (@read $s:ident, bool, $n:literal) => { read::varint($s, $n).map(|v| v != 0) };
    (@read $s:ident, fixed64, $n:literal) => { read::fixed64($s, $n).map(Option::unwrap_or_default) };
    (@read $s:ident, sfixed64, $n:literal) => { read::fixed64($s, $n).map(|v| v.unwrap_or_default() as i64) };
    (@read $s:ident, double, $n:literal) => { read::fixed64($s, $n).map(|v| f64::from_bits(v.unwrap_or_default())) };
    (@read $s:ident, fixed32, $n:literal) => { read::fixed32($s, $n) };
    (@read $s:ident, optional_double, $n:literal) => { read::fixed64($s, $n).map(|v| v.map(f64::from_bits)) };
    (@read $s:ident, optional_sfixed64, $n:literal) => { read::fixed64($s, $n).map(|v| v.map(|v| v as i64)) };
    (@read $s:ident, message<$item:ident>, $n:literal) => { read::message::<_, $item<'a>>($s, $n) };
    (@read $s:ident, repeated<$item:ident>, $n:literal) => { read::repeated::<_, $item<'a>>($s, $n) };
    (@read $s:ident, fixed64s, $n:literal) => { read::fixed64s($s, $n) };
    (@read $s:ident, varints, $n:literal) => { read::varints($s, $n) };
}

views! {
    /// `ExportTraceServiceRequest`.
    TracesView = "ExportTraceServiceRequest" {
        fn resource_spans -> repeated<ResourceSpansView> = 1;
    }
    /// `ExportLogsServiceRequest`.
    LogsView = "ExportLogsServiceRequest" {
        fn resource_logs -> repeated<ResourceLogsView> = 1;
    }
    /// `ExportMetricsServiceRequest`.
    MetricsView = "ExportMetricsServiceRequest" {
        fn resource_metrics -> repeated<ResourceMetricsView> = 1;
    }
    ResourceView = "Resource", attributes = 1 {
        fn dropped_attributes_count -> uint32 = 2;
    }
    ScopeView = "InstrumentationScope", attributes = 3 {
        fn name -> string = 1;
        fn version -> string = 2;
        fn dropped_attributes_count -> uint32 = 4;
    }
    ResourceSpansView = "ResourceSpans" {
        fn resource -> message<ResourceView> = 1;
        fn scope_spans -> repeated<ScopeSpansView> = 2;
        fn schema_url -> string = 3;
    }
    ScopeSpansView = "ScopeSpans" {
        fn scope -> message<ScopeView> = 1;
        fn spans -> repeated<SpanView> = 2;
        fn schema_url -> string = 3;
    }
    SpanView = "Span", attributes = 9 {
        fn trace_id -> bytes = 1;
        fn span_id -> bytes = 2;
        fn trace_state -> string = 3;
        fn parent_span_id -> bytes = 4;
        fn name -> string = 5;
        /// `SpanKind` as its number.
        fn kind -> int32 = 6;
        fn start_time_unix_nano -> fixed64 = 7;
        fn end_time_unix_nano -> fixed64 = 8;
        fn dropped_attributes_count -> uint32 = 10;
        fn events -> repeated<EventView> = 11;
        fn dropped_events_count -> uint32 = 12;
        fn links -> repeated<LinkView> = 13;
        fn dropped_links_count -> uint32 = 14;
        fn status -> message<StatusView> = 15;
        fn flags -> fixed32 = 16;
    }
    EventView = "Span.Event", attributes = 3 {
        fn time_unix_nano -> fixed64 = 1;
        fn name -> string = 2;
        fn dropped_attributes_count -> uint32 = 4;
    }
    LinkView = "Span.Link", attributes = 4 {
        fn trace_id -> bytes = 1;
        fn span_id -> bytes = 2;
        fn trace_state -> string = 3;
        fn dropped_attributes_count -> uint32 = 5;
        fn flags -> fixed32 = 6;
    }
    StatusView = "Status" {
        fn message -> string = 2;
        /// `Status.StatusCode` as its number.
        fn code -> int32 = 3;
    }
    ResourceLogsView = "ResourceLogs" {
        fn resource -> message<ResourceView> = 1;
        fn scope_logs -> repeated<ScopeLogsView> = 2;
        fn schema_url -> string = 3;
    }
    ScopeLogsView = "ScopeLogs" {
        fn scope -> message<ScopeView> = 1;
        fn log_records -> repeated<LogRecordView> = 2;
        fn schema_url -> string = 3;
    }
    LogRecordView = "LogRecord", attributes = 6 {
        fn time_unix_nano -> fixed64 = 1;
        /// `SeverityNumber` as its number (0: unset).
        fn severity_number -> int32 = 2;
        fn severity_text -> string = 3;
        fn body -> message<AnyValueView> = 5;
        fn dropped_attributes_count -> uint32 = 7;
        fn flags -> fixed32 = 8;
        fn trace_id -> bytes = 9;
        fn span_id -> bytes = 10;
        fn observed_time_unix_nano -> fixed64 = 11;
        fn event_name -> string = 12;
    }
    ResourceMetricsView = "ResourceMetrics" {
        fn resource -> message<ResourceView> = 1;
        fn scope_metrics -> repeated<ScopeMetricsView> = 2;
        fn schema_url -> string = 3;
    }
    ScopeMetricsView = "ScopeMetrics" {
        fn scope -> message<ScopeView> = 1;
        fn metrics -> repeated<MetricView> = 2;
        fn schema_url -> string = 3;
    }
    /// `Metric`; its `metadata` list is its attribute list.
    MetricView = "Metric", attributes = 12 {
        fn name -> string = 1;
        fn description -> string = 2;
        fn unit -> string = 3;
        fn gauge -> message<GaugeView> = 5;
        fn sum -> message<SumView> = 7;
        fn histogram -> message<HistogramView> = 9;
        fn exponential_histogram -> message<ExponentialHistogramView> = 10;
        fn summary -> message<SummaryView> = 11;
    }
    GaugeView = "Gauge" {
        fn data_points -> repeated<NumberDataPointView> = 1;
    }
    SumView = "Sum" {
        fn data_points -> repeated<NumberDataPointView> = 1;
        fn aggregation_temporality -> int32 = 2;
        fn is_monotonic -> bool = 3;
    }
    HistogramView = "Histogram" {
        fn data_points -> repeated<HistogramDataPointView> = 1;
        fn aggregation_temporality -> int32 = 2;
    }
    ExponentialHistogramView = "ExponentialHistogram" {
        fn data_points -> repeated<ExponentialHistogramDataPointView> = 1;
        fn aggregation_temporality -> int32 = 2;
    }
    SummaryView = "Summary" {
        fn data_points -> repeated<SummaryDataPointView> = 1;
    }
    NumberDataPointView = "NumberDataPoint", attributes = 7 {
        fn start_time_unix_nano -> fixed64 = 2;
        fn time_unix_nano -> fixed64 = 3;
        fn as_double -> optional_double = 4;
        fn exemplars -> repeated<ExemplarView> = 5;
        fn as_int -> optional_sfixed64 = 6;
        fn flags -> uint32 = 8;
    }
    HistogramDataPointView = "HistogramDataPoint", attributes = 9 {
        fn start_time_unix_nano -> fixed64 = 2;
        fn time_unix_nano -> fixed64 = 3;
        fn count -> fixed64 = 4;
        fn sum -> optional_double = 5;
        fn bucket_counts -> fixed64s = 6;
        /// Bounds as `f64::from_bits` of each item.
        fn explicit_bounds -> fixed64s = 7;
        fn exemplars -> repeated<ExemplarView> = 8;
        fn flags -> uint32 = 10;
        fn min -> optional_double = 11;
        fn max -> optional_double = 12;
    }
    ExponentialHistogramDataPointView = "ExponentialHistogramDataPoint", attributes = 1 {
        fn start_time_unix_nano -> fixed64 = 2;
        fn time_unix_nano -> fixed64 = 3;
        fn count -> fixed64 = 4;
        fn sum -> optional_double = 5;
        fn scale -> sint32 = 6;
        fn zero_count -> fixed64 = 7;
        fn positive -> message<BucketsView> = 8;
        fn negative -> message<BucketsView> = 9;
        fn flags -> uint32 = 10;
        fn exemplars -> repeated<ExemplarView> = 11;
        fn min -> optional_double = 12;
        fn max -> optional_double = 13;
        fn zero_threshold -> double = 14;
    }
    BucketsView = "ExponentialHistogramDataPoint.Buckets" {
        fn offset -> sint32 = 1;
        fn bucket_counts -> varints = 2;
    }
    SummaryDataPointView = "SummaryDataPoint", attributes = 7 {
        fn start_time_unix_nano -> fixed64 = 2;
        fn time_unix_nano -> fixed64 = 3;
        fn count -> fixed64 = 4;
        fn sum -> double = 5;
        fn quantile_values -> repeated<ValueAtQuantileView> = 6;
        fn flags -> uint32 = 8;
    }
    ValueAtQuantileView = "SummaryDataPoint.ValueAtQuantile" {
        fn quantile -> double = 1;
        fn value -> double = 2;
    }
    /// `Exemplar`; its `filtered_attributes` are its attribute list.
    ExemplarView = "Exemplar", attributes = 7 {
        fn time_unix_nano -> fixed64 = 2;
        fn as_double -> optional_double = 3;
        fn span_id -> bytes = 4;
        fn trace_id -> bytes = 5;
        fn as_int -> optional_sfixed64 = 6;
    }
    KeyValueView = "KeyValue" {
        fn key -> string = 1;
        fn value -> message<AnyValueView> = 2;
        /// The key as an index into a string table (profiles' dictionary).
        fn key_strindex -> int32 = 3;
    }
    AnyValueView = "AnyValue" {}
    ArrayValueView = "ArrayValue" {
        fn values -> repeated<AnyValueView> = 1;
    }
    KeyValueListView = "KeyValueList" {
        fn values -> repeated<KeyValueView> = 1;
    }
}

impl<'a> TracesView<'a> {
    pub fn new(otlp: &'a [u8]) -> Self {
        Self::at(otlp, root(otlp))
    }
}

impl<'a> LogsView<'a> {
    pub fn new(otlp: &'a [u8]) -> Self {
        Self::at(otlp, root(otlp))
    }
}

impl<'a> MetricsView<'a> {
    pub fn new(otlp: &'a [u8]) -> Self {
        Self::at(otlp, root(otlp))
    }
}

/// A view of a whole encoded message of type `V` (a `KeyValueList`, an
/// `AnyValue`, …); requests have `TracesView::new` and its siblings.
pub fn view_of<'a, V: View<'a>>(message: &'a [u8]) -> V {
    V::at(message, root(message))
}

fn root(otlp: &[u8]) -> Location {
    Location { field_start: 0, start: 0, end: otlp.len(), parent: (0, otlp.len()) }
}

/// A value inside an `AnyValue`, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(ArrayValueView<'a>),
    KvList(KeyValueListView<'a>),
    Bytes(&'a [u8]),
    /// A string as an index into a string table (profiles' dictionary).
    StringIndex(i32),
}

impl<'a> AnyValueView<'a> {
    /// The value (the last member of the oneof on the wire), `None` when empty.
    pub fn get(&self) -> Result<Option<Value<'a>>, ViewError> {
        let mut value = None;
        let location = self.location;
        for field in fields(self) {
            let field = field?;
            let inner =
                |start, end| Location { field_start: field.start, start, end, parent: (location.start, location.end) };
            value = match (field.number, field.wire) {
                (1, Wire::Len(start, end)) => Some(Value::String(utf8(Self::WHAT, self.buf, start, end)?)),
                (2, Wire::Varint(v)) => Some(Value::Bool(v != 0)),
                (3, Wire::Varint(v)) => Some(Value::Int(v as i64)),
                (4, Wire::Fixed64(v)) => Some(Value::Double(f64::from_bits(v))),
                (5, Wire::Len(start, end)) => Some(Value::Array(ArrayValueView::at(self.buf, inner(start, end)))),
                (6, Wire::Len(start, end)) => Some(Value::KvList(KeyValueListView::at(self.buf, inner(start, end)))),
                (7, Wire::Len(start, end)) => Some(Value::Bytes(&self.buf[start..end])),
                (8, Wire::Varint(v)) => Some(Value::StringIndex(v as i32)),
                (1..=8, _) => return Err(wrong_type(Self::WHAT, &field)),
                _ => continue,
            };
        }
        Ok(value)
    }

    /// The string it holds, if it holds one.
    pub fn as_str(&self) -> Result<Option<&'a str>, ViewError> {
        Ok(match self.get()? {
            Some(Value::String(s)) => Some(s),
            _ => None,
        })
    }
}

impl<'a> KeyValueView<'a> {
    /// The value inside, `None` when the value or its oneof is missing.
    pub fn get(&self) -> Result<Option<Value<'a>>, ViewError> {
        match self.value()? {
            Some(value) => value.get(),
            None => Ok(None),
        }
    }
}

/// The first attribute with this key in a list, as protobuf-decoded maps
/// would not do it: OTLP keys are unique, and the first match is what
/// `AttributesExt::value` returns too.
pub fn find_attribute<'a>(
    attributes: Repeated<'a, KeyValueView<'a>>,
    key: &str,
) -> Result<Option<KeyValueView<'a>>, ViewError> {
    for attribute in attributes {
        let attribute = attribute?;
        if attribute.key()? == key {
            return Ok(Some(attribute));
        }
    }
    Ok(None)
}
