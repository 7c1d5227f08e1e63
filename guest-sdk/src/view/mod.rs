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
    /// Where the message sits in the request (what the [`Editor`](crate::edit::Editor) edits by).
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
    /// The message's attributes, in wire order.
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

impl<M> Repeated<'_, M> {
    /// The field number it reads.
    pub(crate) fn number(&self) -> u32 {
        self.number
    }

    /// The same items, read from `first`, the position of the field's first
    /// occurrence (from [`first_fields`]); none if `None`.
    pub(crate) fn starting_at(mut self, first: Option<usize>) -> Self {
        self.fields.seek(first.unwrap_or(self.parent.1));
        self
    }
}

/// Where fields `numbers` of `view` first occur, found in one scan, so a
/// walker reading several repeated fields of a message does not scan it
/// once per field.
pub(crate) fn first_fields<'a, V: View<'a>, const N: usize>(
    view: &V,
    numbers: [u32; N],
) -> Result<[Option<usize>; N], ViewError> {
    let mut first = [None; N];
    for field in fields(view) {
        let field = field?;
        for (slot, &number) in first.iter_mut().zip(&numbers) {
            if number == field.number && slot.is_none() {
                *slot = Some(field.start);
            }
        }
    }
    Ok(first)
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
        /// The spans, grouped by resource.
        fn resource_spans -> repeated<ResourceSpansView> = 1;
    }
    /// `ExportLogsServiceRequest`.
    LogsView = "ExportLogsServiceRequest" {
        /// The log records, grouped by resource.
        fn resource_logs -> repeated<ResourceLogsView> = 1;
    }
    /// `ExportMetricsServiceRequest`.
    MetricsView = "ExportMetricsServiceRequest" {
        /// The metrics, grouped by resource.
        fn resource_metrics -> repeated<ResourceMetricsView> = 1;
    }
    /// `Resource`: the entity (service, host, …) telemetry comes from, described by its attributes.
    ResourceView = "Resource", attributes = 1 {
        /// Attributes the sender discarded (e.g. over a limit); 0 when none.
        fn dropped_attributes_count -> uint32 = 2;
    }
    /// `InstrumentationScope`: the library or component that produced the telemetry.
    ScopeView = "InstrumentationScope", attributes = 3 {
        /// The scope's name ("" when unset).
        fn name -> string = 1;
        /// The scope's version ("" when unset).
        fn version -> string = 2;
        /// Attributes the sender discarded; 0 when none.
        fn dropped_attributes_count -> uint32 = 4;
    }
    /// `ResourceSpans`: the spans of one resource.
    ResourceSpansView = "ResourceSpans" {
        /// The resource; `None` when the field is absent.
        fn resource -> message<ResourceView> = 1;
        /// The resource's spans, grouped by instrumentation scope.
        fn scope_spans -> repeated<ScopeSpansView> = 2;
        /// Schema URL of the resource's attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `ScopeSpans`: the spans of one instrumentation scope.
    ScopeSpansView = "ScopeSpans" {
        /// The instrumentation scope; `None` when the field is absent.
        fn scope -> message<ScopeView> = 1;
        /// The scope's spans, in wire order.
        fn spans -> repeated<SpanView> = 2;
        /// Schema URL of the spans' and events' attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `Span`: one operation of a trace.
    SpanView = "Span", attributes = 9 {
        /// The trace id (16 bytes when valid, empty when absent), as received.
        fn trace_id -> bytes = 1;
        /// The span id (8 bytes when valid, empty when absent), as received.
        fn span_id -> bytes = 2;
        /// The W3C `tracestate` of the span's context ("" when unset).
        fn trace_state -> string = 3;
        /// The parent span's id; empty for a root span.
        fn parent_span_id -> bytes = 4;
        /// The operation name, e.g. `GET /api/users`.
        fn name -> string = 5;
        /// `SpanKind` as its number.
        fn kind -> int32 = 6;
        /// Start time, nanoseconds since the Unix epoch (0 when absent).
        fn start_time_unix_nano -> fixed64 = 7;
        /// End time, nanoseconds since the Unix epoch (0 when absent).
        fn end_time_unix_nano -> fixed64 = 8;
        /// Attributes the sender discarded; 0 when none.
        fn dropped_attributes_count -> uint32 = 10;
        /// The span's timed events.
        fn events -> repeated<EventView> = 11;
        /// Events the sender discarded; 0 when none.
        fn dropped_events_count -> uint32 = 12;
        /// The span's links to spans of this or other traces.
        fn links -> repeated<LinkView> = 13;
        /// Links the sender discarded; 0 when none.
        fn dropped_links_count -> uint32 = 14;
        /// The span's status; `None` when absent (status unset).
        fn status -> message<StatusView> = 15;
        /// W3C trace flags in bits 0-7, parent-is-remote information in bits 8-9 (0 when absent).
        fn flags -> fixed32 = 16;
    }
    /// `Span.Event`: something that happened at a point in a span's time.
    EventView = "Span.Event", attributes = 3 {
        /// When the event happened, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 1;
        /// The event's name.
        fn name -> string = 2;
        /// Attributes the sender discarded; 0 when none.
        fn dropped_attributes_count -> uint32 = 4;
    }
    /// `Span.Link`: a reference from a span to another span.
    LinkView = "Span.Link", attributes = 4 {
        /// The linked span's trace id (16 bytes when valid).
        fn trace_id -> bytes = 1;
        /// The linked span's id (8 bytes when valid).
        fn span_id -> bytes = 2;
        /// The W3C `tracestate` of the linked span's context ("" when unset).
        fn trace_state -> string = 3;
        /// Attributes the sender discarded; 0 when none.
        fn dropped_attributes_count -> uint32 = 5;
        /// W3C trace flags of the linked span's context in bits 0-7, its remoteness in bits 8-9 (0 when absent).
        fn flags -> fixed32 = 6;
    }
    /// `Status`: whether a span succeeded.
    StatusView = "Status" {
        /// The developer-facing description of the status ("" when unset).
        fn message -> string = 2;
        /// `Status.StatusCode` as its number.
        fn code -> int32 = 3;
    }
    /// `ResourceLogs`: the log records of one resource.
    ResourceLogsView = "ResourceLogs" {
        /// The resource; `None` when the field is absent.
        fn resource -> message<ResourceView> = 1;
        /// The resource's log records, grouped by instrumentation scope.
        fn scope_logs -> repeated<ScopeLogsView> = 2;
        /// Schema URL of the resource's attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `ScopeLogs`: the log records of one instrumentation scope.
    ScopeLogsView = "ScopeLogs" {
        /// The instrumentation scope; `None` when the field is absent.
        fn scope -> message<ScopeView> = 1;
        /// The scope's log records, in wire order.
        fn log_records -> repeated<LogRecordView> = 2;
        /// Schema URL of the records' attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `LogRecord`: one log record or event.
    LogRecordView = "LogRecord", attributes = 6 {
        /// When the event occurred, nanoseconds since the Unix epoch (0: unknown).
        fn time_unix_nano -> fixed64 = 1;
        /// `SeverityNumber` as its number (0: unset).
        fn severity_number -> int32 = 2;
        /// The severity as the source spelled it, e.g. `WARN` ("" when unset).
        fn severity_text -> string = 3;
        /// The body (message or structured value); `None` when absent.
        fn body -> message<AnyValueView> = 5;
        /// Attributes the sender discarded; 0 when none.
        fn dropped_attributes_count -> uint32 = 7;
        /// W3C trace flags in bits 0-7 (0 when absent).
        fn flags -> fixed32 = 8;
        /// The trace the record belongs to (16 bytes), empty when none.
        fn trace_id -> bytes = 9;
        /// The span the record belongs to (8 bytes), empty when none.
        fn span_id -> bytes = 10;
        /// When the collection pipeline first saw the record, nanoseconds since the Unix epoch (0 when absent).
        fn observed_time_unix_nano -> fixed64 = 11;
        /// The name of the event this record is ("" for a plain log record).
        fn event_name -> string = 12;
    }
    /// `ResourceMetrics`: the metrics of one resource.
    ResourceMetricsView = "ResourceMetrics" {
        /// The resource; `None` when the field is absent.
        fn resource -> message<ResourceView> = 1;
        /// The resource's metrics, grouped by instrumentation scope.
        fn scope_metrics -> repeated<ScopeMetricsView> = 2;
        /// Schema URL of the resource's attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `ScopeMetrics`: the metrics of one instrumentation scope.
    ScopeMetricsView = "ScopeMetrics" {
        /// The instrumentation scope; `None` when the field is absent.
        fn scope -> message<ScopeView> = 1;
        /// The scope's metrics, in wire order.
        fn metrics -> repeated<MetricView> = 2;
        /// Schema URL of the metrics' attributes ("" when unset).
        fn schema_url -> string = 3;
    }
    /// `Metric`; its `metadata` list is its attribute list.
    MetricView = "Metric", attributes = 12 {
        /// The metric's name, e.g. `http.server.request.duration`.
        fn name -> string = 1;
        /// The metric's human-readable description ("" when unset).
        fn description -> string = 2;
        /// The unit, in UCUM notation (e.g. `ms`, `By`; "" when unset).
        fn unit -> string = 3;
        /// The data when the metric is a gauge, else `None`.
        fn gauge -> message<GaugeView> = 5;
        /// The data when the metric is a sum (counter), else `None`.
        fn sum -> message<SumView> = 7;
        /// The data when the metric is an explicit-bucket histogram, else `None`.
        fn histogram -> message<HistogramView> = 9;
        /// The data when the metric is an exponential histogram, else `None`.
        fn exponential_histogram -> message<ExponentialHistogramView> = 10;
        /// The data when the metric is a summary, else `None`.
        fn summary -> message<SummaryView> = 11;
    }
    /// `Gauge`: sampled current values.
    GaugeView = "Gauge" {
        /// The gauge's data points.
        fn data_points -> repeated<NumberDataPointView> = 1;
    }
    /// `Sum`: values that add up over time (counters, up-down counters).
    SumView = "Sum" {
        /// The sum's data points.
        fn data_points -> repeated<NumberDataPointView> = 1;
        /// `AggregationTemporality` as its number (1: delta, 2: cumulative, 0: unspecified).
        fn aggregation_temporality -> int32 = 2;
        /// Whether the sum only ever increases (a counter).
        fn is_monotonic -> bool = 3;
    }
    /// `Histogram`: distributions in explicit buckets.
    HistogramView = "Histogram" {
        /// The histogram's data points.
        fn data_points -> repeated<HistogramDataPointView> = 1;
        /// `AggregationTemporality` as its number (1: delta, 2: cumulative, 0: unspecified).
        fn aggregation_temporality -> int32 = 2;
    }
    /// `ExponentialHistogram`: distributions in exponentially sized buckets.
    ExponentialHistogramView = "ExponentialHistogram" {
        /// The histogram's data points.
        fn data_points -> repeated<ExponentialHistogramDataPointView> = 1;
        /// `AggregationTemporality` as its number (1: delta, 2: cumulative, 0: unspecified).
        fn aggregation_temporality -> int32 = 2;
    }
    /// `Summary`: distributions as precomputed quantiles (legacy Prometheus/StatsD style).
    SummaryView = "Summary" {
        /// The summary's data points.
        fn data_points -> repeated<SummaryDataPointView> = 1;
    }
    /// `NumberDataPoint`: one value of a gauge or sum.
    NumberDataPointView = "NumberDataPoint", attributes = 7 {
        /// Start of the aggregation window, nanoseconds since the Unix epoch (0 when absent).
        fn start_time_unix_nano -> fixed64 = 2;
        /// When the value was recorded, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 3;
        /// The value when it is a double, else `None`.
        fn as_double -> optional_double = 4;
        /// Sample measurements behind the value.
        fn exemplars -> repeated<ExemplarView> = 5;
        /// The value when it is an integer, else `None`.
        fn as_int -> optional_sfixed64 = 6;
        /// `DataPointFlags` (bit 0: no recorded value).
        fn flags -> uint32 = 8;
    }
    /// `HistogramDataPoint`: one distribution of an explicit-bucket histogram.
    HistogramDataPointView = "HistogramDataPoint", attributes = 9 {
        /// Start of the aggregation window, nanoseconds since the Unix epoch (0 when absent).
        fn start_time_unix_nano -> fixed64 = 2;
        /// When the distribution was recorded, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 3;
        /// Number of values in the distribution.
        fn count -> fixed64 = 4;
        /// Sum of the values; `None` when absent.
        fn sum -> optional_double = 5;
        /// Count per bucket, in bound order (by spec one bucket more than `explicit_bounds`).
        fn bucket_counts -> fixed64s = 6;
        /// Bounds as `f64::from_bits` of each item.
        fn explicit_bounds -> fixed64s = 7;
        /// Sample measurements behind the distribution.
        fn exemplars -> repeated<ExemplarView> = 8;
        /// `DataPointFlags` (bit 0: no recorded value).
        fn flags -> uint32 = 10;
        /// Smallest value; `None` when absent.
        fn min -> optional_double = 11;
        /// Largest value; `None` when absent.
        fn max -> optional_double = 12;
    }
    /// `ExponentialHistogramDataPoint`: one distribution of an exponential histogram.
    ExponentialHistogramDataPointView = "ExponentialHistogramDataPoint", attributes = 1 {
        /// Start of the aggregation window, nanoseconds since the Unix epoch (0 when absent).
        fn start_time_unix_nano -> fixed64 = 2;
        /// When the distribution was recorded, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 3;
        /// Number of values in the distribution.
        fn count -> fixed64 = 4;
        /// Sum of the values; `None` when absent.
        fn sum -> optional_double = 5;
        /// Resolution: bucket boundaries are powers of `2^(2^-scale)`.
        fn scale -> sint32 = 6;
        /// Number of values in the zero bucket (within `zero_threshold` of 0).
        fn zero_count -> fixed64 = 7;
        /// Buckets of positive values; `None` when absent.
        fn positive -> message<BucketsView> = 8;
        /// Buckets of negative values (by absolute value); `None` when absent.
        fn negative -> message<BucketsView> = 9;
        /// `DataPointFlags` (bit 0: no recorded value).
        fn flags -> uint32 = 10;
        /// Sample measurements behind the distribution.
        fn exemplars -> repeated<ExemplarView> = 11;
        /// Smallest value; `None` when absent.
        fn min -> optional_double = 12;
        /// Largest value; `None` when absent.
        fn max -> optional_double = 13;
        /// Width of the zero bucket around 0 (0 when absent: exact zeros only).
        fn zero_threshold -> double = 14;
    }
    /// `ExponentialHistogramDataPoint.Buckets`: a run of consecutive bucket counts.
    BucketsView = "ExponentialHistogramDataPoint.Buckets" {
        /// Index of the first bucket counted.
        fn offset -> sint32 = 1;
        /// Counts of consecutive buckets, starting at `offset`.
        fn bucket_counts -> varints = 2;
    }
    /// `SummaryDataPoint`: one distribution of a summary, as quantiles.
    SummaryDataPointView = "SummaryDataPoint", attributes = 7 {
        /// Start of the aggregation window, nanoseconds since the Unix epoch (0 when absent).
        fn start_time_unix_nano -> fixed64 = 2;
        /// When the summary was recorded, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 3;
        /// Number of values summarized.
        fn count -> fixed64 = 4;
        /// Sum of the values summarized (0 when absent).
        fn sum -> double = 5;
        /// The values at given quantiles.
        fn quantile_values -> repeated<ValueAtQuantileView> = 6;
        /// `DataPointFlags` (bit 0: no recorded value).
        fn flags -> uint32 = 8;
    }
    /// `SummaryDataPoint.ValueAtQuantile`: the value at one quantile.
    ValueAtQuantileView = "SummaryDataPoint.ValueAtQuantile" {
        /// The quantile, 0.0 ..= 1.0 (0.5: the median).
        fn quantile -> double = 1;
        /// The value at that quantile.
        fn value -> double = 2;
    }
    /// `Exemplar`; its `filtered_attributes` are its attribute list.
    ExemplarView = "Exemplar", attributes = 7 {
        /// When the measurement was taken, nanoseconds since the Unix epoch (0 when absent).
        fn time_unix_nano -> fixed64 = 2;
        /// The measured value when it is a double, else `None`.
        fn as_double -> optional_double = 3;
        /// Id of the span active during the measurement (empty when none).
        fn span_id -> bytes = 4;
        /// Trace id of the span active during the measurement (empty when none).
        fn trace_id -> bytes = 5;
        /// The measured value when it is an integer, else `None`.
        fn as_int -> optional_sfixed64 = 6;
    }
    /// `KeyValue`: one attribute.
    KeyValueView = "KeyValue" {
        /// The attribute's key.
        fn key -> string = 1;
        /// The value message; `None` when absent ([`get`](Self::get) reads what is inside).
        fn value -> message<AnyValueView> = 2;
        /// The key as an index into a string table (profiles' dictionary).
        fn key_strindex -> int32 = 3;
    }
    /// `AnyValue`: an attribute value, log body or array element; read it with [`get`](Self::get).
    AnyValueView = "AnyValue" {}
    /// `ArrayValue`: a list of values.
    ArrayValueView = "ArrayValue" {
        /// The elements, in order.
        fn values -> repeated<AnyValueView> = 1;
    }
    /// `KeyValueList`: a list of key-value pairs (a structured value).
    KeyValueListView = "KeyValueList" {
        /// The entries, in order.
        fn values -> repeated<KeyValueView> = 1;
    }
}

impl<'a> TracesView<'a> {
    /// A view of a whole encoded `ExportTraceServiceRequest`.
    pub fn new(otlp: &'a [u8]) -> Self {
        Self::at(otlp, root(otlp))
    }
}

impl<'a> LogsView<'a> {
    /// A view of a whole encoded `ExportLogsServiceRequest`.
    pub fn new(otlp: &'a [u8]) -> Self {
        Self::at(otlp, root(otlp))
    }
}

impl<'a> MetricsView<'a> {
    /// A view of a whole encoded `ExportMetricsServiceRequest`.
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
    /// A string (`string_value`).
    String(&'a str),
    /// A boolean (`bool_value`).
    Bool(bool),
    /// A 64-bit integer (`int_value`).
    Int(i64),
    /// A 64-bit float (`double_value`).
    Double(f64),
    /// An array of values (`array_value`).
    Array(ArrayValueView<'a>),
    /// A key-value list (`kvlist_value`).
    KvList(KeyValueListView<'a>),
    /// Raw bytes (`bytes_value`).
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
    /// [`key`](Self::key) and [`value`](Self::value) in one read of the
    /// entry, for code that needs both.
    pub fn key_and_value(&self) -> Result<(&'a str, Option<AnyValueView<'a>>), ViewError> {
        let (mut key, mut value) = (None, None);
        let location = self.location;
        for field in fields(self) {
            let field = field?;
            match (field.number, field.wire) {
                (1, Wire::Len(start, end)) => key = Some((start, end)),
                (2, Wire::Len(start, end)) => {
                    let parent = (location.start, location.end);
                    value = Some(AnyValueView::at(self.buf, Location { field_start: field.start, start, end, parent }));
                }
                (1 | 2, _) => return Err(wrong_type(Self::WHAT, &field)),
                _ => {}
            }
        }
        let key = match key {
            Some((start, end)) => utf8(Self::WHAT, self.buf, start, end)?,
            None => "",
        };
        Ok((key, value))
    }

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
