//! OTLP protobuf on the wire, without decoding it: one walk over the bytes
//! against the OTLP schema with prost's rules (wire types of known fields,
//! varint and length bounds, well-formed groups) that also notes what a
//! full decode or the next stage would refuse or misread: strings that are
//! not UTF-8, nesting past prost's recursion limit, trace and span IDs of the
//! wrong length, unknown fields, and shapes otap-dataflow 0.62 converts badly
//! (a scope that is missing or not first, KeyValue fields beyond key and value).
//!
//! [`validate`] gives prost's verdict at a fraction of its cost (a guest's
//! `replaced` output is checked on every batch); [`rewrite`] repairs what
//! [`scan`] found, copying every untouched byte range as it is.

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
    /// `bytes` holding a trace or span ID: empty or exactly this long.
    Id(usize),
}

/// The fields of one message type, indexed by field number, and what it is
/// to the shape checks.
struct Schema([Option<Kind>; MAX_FIELD + 1], Role);

/// The highest field number of the OTLP messages walked here.
const MAX_FIELD: usize = 16;

const fn schema(fields: &[(u32, Kind)], role: Role) -> Schema {
    let mut kinds = [None; MAX_FIELD + 1];
    let mut i = 0;
    while i < fields.len() {
        kinds[fields[i].0 as usize] = Some(fields[i].1);
        i += 1;
    }
    Schema(kinds, role)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// `ScopeSpans`, `ScopeLogs`, `ScopeMetrics`: field 1 is the scope.
    ScopeContainer,
    KeyValue,
    /// A span, log record or data point.
    Item,
}

use Kind::*;
use Role::*;

const TRACE_ID: Kind = Id(16);
const SPAN_ID: Kind = Id(8);

static KEY_VALUE: Schema = schema(&[(1, Str), (2, Message(&ANY_VALUE)), (3, Varint)], KeyValue);
static ANY_VALUE: Schema = schema(
    &[
        (1, Str),
        (2, Varint),
        (3, Varint),
        (4, Fixed64),
        (5, Message(&ARRAY_VALUE)),
        (6, Message(&KEY_VALUE_LIST)),
        (7, Bytes),
        (8, Varint),
    ],
    Plain,
);
static ARRAY_VALUE: Schema = schema(&[(1, Message(&ANY_VALUE))], Plain);
static KEY_VALUE_LIST: Schema = schema(&[(1, Message(&KEY_VALUE))], Plain);
static SCOPE: Schema = schema(&[(1, Str), (2, Str), (3, Message(&KEY_VALUE)), (4, Varint)], Plain);
static ENTITY_REF: Schema = schema(&[(1, Str), (2, Str), (3, Str), (4, Str)], Plain);
static RESOURCE: Schema = schema(&[(1, Message(&KEY_VALUE)), (2, Varint), (3, Message(&ENTITY_REF))], Plain);

static TRACES: Schema = schema(&[(1, Message(&RESOURCE_SPANS))], Plain);
static RESOURCE_SPANS: Schema = schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_SPANS)), (3, Str)], Plain);
static SCOPE_SPANS: Schema = schema(&[(1, Message(&SCOPE)), (2, Message(&SPAN)), (3, Str)], ScopeContainer);
static SPAN: Schema = schema(
    &[
        (1, TRACE_ID),
        (2, SPAN_ID),
        (3, Str),
        (4, SPAN_ID),
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
    ],
    Item,
);
static SPAN_EVENT: Schema = schema(&[(1, Fixed64), (2, Str), (3, Message(&KEY_VALUE)), (4, Varint)], Plain);
static SPAN_LINK: Schema =
    schema(&[(1, TRACE_ID), (2, SPAN_ID), (3, Str), (4, Message(&KEY_VALUE)), (5, Varint), (6, Fixed32)], Plain);
static STATUS: Schema = schema(&[(2, Str), (3, Varint)], Plain);

static LOGS: Schema = schema(&[(1, Message(&RESOURCE_LOGS))], Plain);
static RESOURCE_LOGS: Schema = schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_LOGS)), (3, Str)], Plain);
static SCOPE_LOGS: Schema = schema(&[(1, Message(&SCOPE)), (2, Message(&LOG_RECORD)), (3, Str)], ScopeContainer);
static LOG_RECORD: Schema = schema(
    &[
        (1, Fixed64),
        (11, Fixed64),
        (2, Varint),
        (3, Str),
        (5, Message(&ANY_VALUE)),
        (6, Message(&KEY_VALUE)),
        (7, Varint),
        (8, Fixed32),
        (9, TRACE_ID),
        (10, SPAN_ID),
        (12, Str),
    ],
    Item,
);

static METRICS: Schema = schema(&[(1, Message(&RESOURCE_METRICS))], Plain);
static RESOURCE_METRICS: Schema = schema(&[(1, Message(&RESOURCE)), (2, Message(&SCOPE_METRICS)), (3, Str)], Plain);
static SCOPE_METRICS: Schema = schema(&[(1, Message(&SCOPE)), (2, Message(&METRIC)), (3, Str)], ScopeContainer);
static METRIC: Schema = schema(
    &[
        (1, Str),
        (2, Str),
        (3, Str),
        (5, Message(&GAUGE)),
        (7, Message(&SUM)),
        (9, Message(&HISTOGRAM)),
        (10, Message(&EXPONENTIAL_HISTOGRAM)),
        (11, Message(&SUMMARY)),
        (12, Message(&KEY_VALUE)),
    ],
    Plain,
);
static GAUGE: Schema = schema(&[(1, Message(&NUMBER_POINT))], Plain);
static SUM: Schema = schema(&[(1, Message(&NUMBER_POINT)), (2, Varint), (3, Varint)], Plain);
static HISTOGRAM: Schema = schema(&[(1, Message(&HISTOGRAM_POINT)), (2, Varint)], Plain);
static EXPONENTIAL_HISTOGRAM: Schema = schema(&[(1, Message(&EXPONENTIAL_POINT)), (2, Varint)], Plain);
static SUMMARY: Schema = schema(&[(1, Message(&SUMMARY_POINT))], Plain);
static NUMBER_POINT: Schema = schema(
    &[
        (7, Message(&KEY_VALUE)),
        (2, Fixed64),
        (3, Fixed64),
        (4, Fixed64),
        (6, Fixed64),
        (5, Message(&EXEMPLAR)),
        (8, Varint),
    ],
    Item,
);
static HISTOGRAM_POINT: Schema = schema(
    &[
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
    ],
    Item,
);
static EXPONENTIAL_POINT: Schema = schema(
    &[
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
    ],
    Item,
);
static BUCKETS: Schema = schema(&[(1, Varint), (2, RepeatedVarint)], Plain);
static SUMMARY_POINT: Schema = schema(
    &[
        (7, Message(&KEY_VALUE)),
        (2, Fixed64),
        (3, Fixed64),
        (4, Fixed64),
        (5, Fixed64),
        (6, Message(&QUANTILE)),
        (8, Varint),
    ],
    Item,
);
static QUANTILE: Schema = schema(&[(1, Fixed64), (2, Fixed64)], Plain);
static EXEMPLAR: Schema =
    schema(&[(7, Message(&KEY_VALUE)), (2, Fixed64), (3, Fixed64), (6, Fixed64), (4, SPAN_ID), (5, TRACE_ID)], Plain);

impl Schema {
    #[inline]
    fn field(&self, number: u64) -> Option<Kind> {
        usize::try_from(number).ok().and_then(|n| self.0.get(n)).copied().flatten()
    }
}

fn schema_of(signal: Signal) -> &'static Schema {
    match signal {
        Signal::Traces => &TRACES,
        Signal::Metrics => &METRICS,
        Signal::Logs => &LOGS,
    }
}

/// Why bytes are not a valid OTLP request, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOtlp {
    /// Byte offset in the request where the problem is.
    pub offset: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

impl fmt::Display for InvalidOtlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for InvalidOtlp {}

/// What one walk over a well-framed request found. Counts are of
/// occurrences; `first_*` is the byte offset of the first one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Nested messages (resources, scopes, spans, records, points,
    /// attributes, values, …): what a decoder allocates for.
    pub elements: u64,
    /// Spans, log records and data points.
    pub items: u64,
    /// `string` fields that are not UTF-8 (prost refuses them).
    pub invalid_utf8: u64,
    /// Messages nested past prost's recursion limit (prost refuses them).
    pub too_deep: u64,
    /// Trace IDs not 16 bytes long or span IDs not 8, and not empty (the
    /// collector's pdata refuses them).
    pub bad_ids: u64,
    /// Items (spans, log records, data points) holding at least one such ID,
    /// in themselves or in their links and exemplars.
    pub bad_id_items: u64,
    /// Fields the OTLP schema does not define (prost skips them).
    pub unknown_fields: u64,
    /// Scope containers whose scope is missing or not their first field.
    pub unplaced_scopes: u64,
    /// KeyValue fields other than key and value.
    pub extra_key_value_fields: u64,
    first_invalid_utf8: Option<usize>,
    first_too_deep: Option<usize>,
    first_bad_id: Option<usize>,
}

impl Scan {
    /// prost's verdict on a request this scan found well framed.
    pub fn prost_error(&self) -> Option<InvalidOtlp> {
        let at = |offset: Option<usize>, reason| offset.map(|offset| InvalidOtlp { offset, reason });
        // Whichever comes first in the bytes is what prost trips on.
        [at(self.first_invalid_utf8, "string is not valid UTF-8"), at(self.first_too_deep, "recursion limit reached")]
            .into_iter()
            .flatten()
            .min_by_key(|error| error.offset)
    }

    /// What a collector decoding these bytes would refuse: prost's rules,
    /// plus IDs of the wrong length.
    pub fn strict_error(&self) -> Option<InvalidOtlp> {
        self.prost_error().or_else(|| {
            self.first_bad_id
                .map(|offset| InvalidOtlp { offset, reason: "trace ID not 16 bytes or span ID not 8 bytes long" })
        })
    }

    /// Whether otap-dataflow 0.62's lazy OTLP views can read the request
    /// safely and in linear time (see [`Fixes::FOR_OTAP`]).
    pub fn fit_for_otap(&self) -> bool {
        self.prost_error().is_none()
            && self.unknown_fields == 0
            && self.unplaced_scopes == 0
            && self.extra_key_value_fields == 0
    }
}

/// Walks `bytes` as the OTLP request of `signal`. Errors only for bytes no
/// decoder can frame (truncations, bad varints, wire types that do not match
/// a field, broken groups); everything else is counted in the [`Scan`].
pub fn scan(signal: Signal, bytes: &[u8]) -> Result<Scan, InvalidOtlp> {
    let mut walker = Walker::new(bytes, None);
    walker.message(bytes.len(), schema_of(signal), 0)?;
    Ok(walker.scan)
}

/// The items (spans, log records, data points) of a scanned request that
/// the scan found nothing to note in, so that a later scan of other bytes
/// (a guest's output) can count an identical item without walking it again.
#[derive(Debug, Default)]
pub struct KnownItems<'a> {
    input: &'a [u8],
    items: Vec<KnownItem>,
}

impl KnownItems<'_> {
    /// None known: [`scan_reusing`] walks everything.
    pub fn none() -> Self {
        KnownItems::default()
    }

    /// How many items are known.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is known.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One item's body in the input, the schema and depth it was walked at,
/// and the elements nested in it.
#[derive(Debug)]
struct KnownItem {
    start: usize,
    end: usize,
    schema: &'static Schema,
    depth: u32,
    elements: u64,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema@{:p}", self)
    }
}

/// Items with smaller bodies are not noted: walking them costs about what
/// comparing them does, and the notes stay well below the input's size
/// (at most 40 bytes per 66 of input) however many tiny items it packs.
const MIN_KNOWN_ITEM: usize = 64;

/// How far past the next expected item a reused scan looks for a match:
/// removed items are skipped, a long run of them falls back to walking.
const REUSE_LOOKAHEAD: usize = 16;

/// [`scan`], also noting the request's items that were clean (no invalid
/// UTF-8, depth, ID, unknown-field or shape notes inside them).
pub fn scan_recording(signal: Signal, bytes: &[u8]) -> Result<(Scan, KnownItems<'_>), InvalidOtlp> {
    let mut known = KnownItems { input: bytes, items: Vec::new() };
    let mut walker = Walker::new(bytes, None);
    walker.record = Some(&mut known.items);
    walker.message(bytes.len(), schema_of(signal), 0)?;
    Ok((walker.scan, known))
}

/// [`scan`] of `bytes`, giving the same result, where an item whose body is
/// byte for byte a clean item of `known` (same message type, same depth) is
/// counted as that item was instead of walked again: the walk's verdict
/// depends on nothing else. A guest's edit copies most items unchanged, so
/// its output is checked at the cost of comparing bytes.
pub fn scan_reusing(signal: Signal, bytes: &[u8], known: &KnownItems<'_>) -> Result<Scan, InvalidOtlp> {
    scan_counting_reuse(signal, bytes, known).map(|(scan, _)| scan)
}

/// [`scan_reusing`], and how many items it counted without walking them.
fn scan_counting_reuse(signal: Signal, bytes: &[u8], known: &KnownItems<'_>) -> Result<(Scan, usize), InvalidOtlp> {
    let mut walker = Walker::new(bytes, None);
    walker.reuse = Some(Reuse { input: known.input, items: &known.items, next: 0, reused: 0 });
    walker.message(bytes.len(), schema_of(signal), 0)?;
    Ok((walker.scan, walker.reuse.map_or(0, |reuse| reuse.reused)))
}

/// Checks that `bytes` decode as the OTLP request of `signal`, exactly as
/// prost's full decode of the `Export*ServiceRequest` would.
pub fn validate(signal: Signal, bytes: &[u8]) -> Result<(), InvalidOtlp> {
    match scan(signal, bytes)?.prost_error() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Repairs to make while rewriting a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixes {
    /// Replace invalid UTF-8 sequences with U+FFFD, as `String::from_utf8_lossy`.
    pub utf8: bool,
    /// Leave out messages nested past the recursion limit.
    pub depth: bool,
    /// Leave out fields the schema does not define.
    pub unknown_fields: bool,
    /// Put each scope container's scope first, adding an empty one where
    /// none is (otap-dataflow looks the scope up again for every item, from
    /// the start: a scope that is missing or last makes that quadratic).
    pub scopes: bool,
    /// Leave out KeyValue fields other than key and value (otap-dataflow
    /// reads every KeyValue field as length-delimited).
    pub key_values: bool,
    /// Leave out the items (spans, log records, data points) that hold a
    /// trace or span ID of the wrong length: no decoder can give them a
    /// meaning, and the collector's pdata refuses the whole request for one.
    pub bad_id_items: bool,
}

impl Fixes {
    /// What prost's decode accepts.
    pub const FOR_PROST: Fixes =
        Fixes { utf8: true, depth: true, unknown_fields: false, scopes: false, key_values: false, bad_id_items: false };
    /// What the host admits and what a guest may return: what every decoder,
    /// the collector's pdata included, accepts ([`Scan::strict_error`] finds
    /// nothing in its output). One definition for the admission of a
    /// client's batch and the check of a guest's output.
    pub const STRICT: Fixes = Fixes { bad_id_items: true, ..Fixes::FOR_PROST };
    /// What otap-dataflow 0.62's OTLP → OTAP conversion reads safely.
    pub const FOR_OTAP: Fixes =
        Fixes { utf8: true, depth: true, unknown_fields: true, scopes: true, key_values: true, bad_id_items: false };
}

/// Rewrites a request that [`scan`] accepted, making `fixes`; every byte
/// range they do not touch is copied as it is. The output is never longer
/// than the input by more than two bytes per scope container (plus length
/// prefixes that grow), and at most three per replaced invalid byte.
pub fn rewrite(signal: Signal, bytes: &[u8], fixes: Fixes) -> Result<Vec<u8>, InvalidOtlp> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut walker = Walker::new(bytes, Some((&mut out, fixes)));
    walker.message(bytes.len(), schema_of(signal), 0)?;
    Ok(out)
}

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

/// One pass over the bytes; with `out`, also the rewrite.
struct Walker<'a, 'o> {
    bytes: &'a [u8],
    at: usize,
    scan: Scan,
    out: Option<(&'o mut Vec<u8>, Fixes)>,
    /// Where clean items are noted ([`scan_recording`]).
    record: Option<&'o mut Vec<KnownItem>>,
    /// Items to count instead of walking ([`scan_reusing`]).
    reuse: Option<Reuse<'o>>,
}

struct Reuse<'o> {
    input: &'o [u8],
    items: &'o [KnownItem],
    /// The item after the last one matched: output keeps input order.
    next: usize,
    reused: usize,
}

fn note(first: &mut Option<usize>, count: &mut u64, offset: usize) {
    *count += 1;
    first.get_or_insert(offset);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl<'a, 'o> Walker<'a, 'o> {
    fn new(bytes: &'a [u8], out: Option<(&'o mut Vec<u8>, Fixes)>) -> Self {
        Walker { bytes, at: 0, scan: Scan::default(), out, record: None, reuse: None }
    }

    /// Counts the item whose body is `self.at..field_end` as a known one it
    /// equals, if any; then the walk continues after it.
    fn reuse_known(&mut self, schema: &'static Schema, field_end: usize, depth: u32) -> bool {
        let Some(reuse) = &mut self.reuse else { return false };
        let body = &self.bytes[self.at..field_end];
        let candidates = reuse.items.get(reuse.next..).unwrap_or_default().iter().take(REUSE_LOOKAHEAD);
        for (skipped, item) in candidates.enumerate() {
            if std::ptr::eq(item.schema, schema)
                && item.depth == depth
                && item.end - item.start == body.len()
                && reuse.input.get(item.start..item.end) == Some(body)
            {
                reuse.next += skipped + 1;
                reuse.reused += 1;
                self.scan.elements += item.elements;
                self.at = field_end;
                return true;
            }
        }
        false
    }

    /// Everything a scan notes besides elements and items.
    fn notes(&self) -> u64 {
        let scan = &self.scan;
        scan.invalid_utf8
            + scan.too_deep
            + scan.bad_ids
            + scan.unknown_fields
            + scan.unplaced_scopes
            + scan.extra_key_value_fields
    }

    /// Walks an item's body and, when nothing in it was noted, records it.
    fn recorded_item(&mut self, end: usize, schema: &'static Schema, depth: u32) -> Result<(), InvalidOtlp> {
        let (start, notes, elements) = (self.at, self.notes(), self.scan.elements);
        self.message(end, schema, depth)?;
        if self.notes() == notes
            && let Some(record) = &mut self.record
        {
            record.push(KnownItem { start, end, schema, depth, elements: self.scan.elements - elements });
        }
        Ok(())
    }

    fn error(&self, reason: &'static str) -> InvalidOtlp {
        InvalidOtlp { offset: self.at, reason }
    }

    fn fixes(&self) -> Option<Fixes> {
        self.out.as_ref().map(|(_, fixes)| *fixes)
    }

    /// Copies `bytes[from..self.at]` to the output, if rewriting.
    fn copy_from(&mut self, from: usize) {
        if let Some((out, _)) = &mut self.out {
            out.extend_from_slice(&self.bytes[from..self.at]);
        }
    }

    /// A varint as prost reads it: at most ten bytes, the tenth at most 1.
    #[inline]
    fn varint(&mut self, end: usize) -> Result<u64, InvalidOtlp> {
        // Keys, short lengths and small numbers: one byte, most of a request's varints.
        if self.at < end
            && let Some(&byte) = self.bytes.get(self.at)
            && byte < 0x80
        {
            self.at += 1;
            return Ok(u64::from(byte));
        }
        self.long_varint(end)
    }

    #[inline(never)]
    fn long_varint(&mut self, end: usize) -> Result<u64, InvalidOtlp> {
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

    #[inline]
    fn skip(&mut self, n: usize, end: usize) -> Result<(), InvalidOtlp> {
        if end - self.at < n {
            return Err(self.error("field runs past the end of its message"));
        }
        self.at += n;
        Ok(())
    }

    /// The end offset of a length-delimited field's payload.
    #[inline]
    fn length(&mut self, end: usize) -> Result<usize, InvalidOtlp> {
        let len = self.varint(end)?;
        match usize::try_from(len) {
            Ok(len) if len <= end - self.at => Ok(self.at + len),
            _ => Err(self.error("length runs past the end of its message")),
        }
    }

    fn message(&mut self, end: usize, schema: &Schema, depth: u32) -> Result<(), InvalidOtlp> {
        let scope = if schema.1 == ScopeContainer { self.place_scope(end, depth)? } else { None };
        while self.at < end {
            let key_start = self.at;
            let key = self.varint(end)?;
            let (number, wire) = (key >> 3, key & 7);
            if number == 0 || number > u64::from(u32::MAX >> 3) {
                return Err(self.error("invalid field number"));
            }
            if scope.is_some_and(|(start, _)| start == key_start) {
                // Written first already.
                self.at = scope.map_or(self.at, |(_, end)| end);
                continue;
            }
            match schema.field(number) {
                None => {
                    self.skip_unknown(wire, number, end, depth)?;
                    self.scan.unknown_fields += 1;
                    if !self.fixes().is_some_and(|f| f.unknown_fields) {
                        self.copy_from(key_start);
                    }
                }
                Some(kind) if schema.1 == KeyValue && number > 2 => {
                    // Checked as its type (prost does), written as it is or not at all.
                    let out = self.out.take();
                    let checked = self.field(kind, wire, key_start, end, depth);
                    self.out = out;
                    checked?;
                    self.scan.extra_key_value_fields += 1;
                    if !self.fixes().is_some_and(|f| f.key_values) {
                        self.copy_from(key_start);
                    }
                }
                Some(kind) => self.field(kind, wire, key_start, end, depth)?,
            }
        }
        Ok(())
    }

    /// In a scope container: notes a scope that is missing or not first and,
    /// when fixing scopes, writes it (or an empty one) first. Returns where
    /// the scope field is when it was written out of place.
    fn place_scope(&mut self, end: usize, depth: u32) -> Result<Option<(usize, usize)>, InvalidOtlp> {
        let start = self.at;
        let mut found = None;
        let mut first = true;
        while self.at < end {
            let key_start = self.at;
            let key = self.varint(end)?;
            let (number, wire) = (key >> 3, key & 7);
            if number == 0 || number > u64::from(u32::MAX >> 3) {
                return Err(self.error("invalid field number"));
            }
            self.skip_unknown(wire, number, end, depth)?;
            if number == 1 && wire == LEN {
                // The last occurrence wins in protobuf; keep looking.
                found = Some((key_start, self.at, first));
            }
            first = false;
        }
        self.at = start;
        let first_and_only = matches!(found, Some((_, _, true)));
        if first_and_only {
            return Ok(None);
        }
        self.scan.unplaced_scopes += 1;
        if !self.fixes().is_some_and(|f| f.scopes) {
            return Ok(None);
        }
        match found {
            None => {
                if let Some((out, _)) = &mut self.out {
                    out.extend_from_slice(&[0x0a, 0x00]);
                }
                Ok(None)
            }
            Some((key_start, field_end, _)) => {
                self.at = key_start;
                self.varint(end)?;
                self.field(Message(&SCOPE), LEN, key_start, end, depth)?;
                self.at = start;
                Ok(Some((key_start, field_end)))
            }
        }
    }

    fn field(&mut self, kind: Kind, wire: u64, key_start: usize, end: usize, depth: u32) -> Result<(), InvalidOtlp> {
        match (kind, wire) {
            (Varint | RepeatedVarint, VARINT) => self.varint(end).map(drop)?,
            (Fixed64 | RepeatedFixed64, FIXED64) => self.skip(8, end)?,
            (Fixed32, FIXED32) => self.skip(4, end)?,
            (Bytes, LEN) => self.at = self.length(end)?,
            (Id(expected), LEN) => {
                let field_end = self.length(end)?;
                let len = field_end - self.at;
                if len != 0 && len != expected {
                    note(&mut self.scan.first_bad_id, &mut self.scan.bad_ids, self.at);
                }
                self.at = field_end;
            }
            (Str, LEN) => {
                let prefix = self.at;
                let field_end = self.length(end)?;
                let text = &self.bytes[self.at..field_end];
                // ASCII (most telemetry text) checked a word at a time first.
                if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                    note(&mut self.scan.first_invalid_utf8, &mut self.scan.invalid_utf8, self.at);
                    if let Some((out, fixes)) = &mut self.out
                        && fixes.utf8
                    {
                        let repaired = String::from_utf8_lossy(text);
                        out.extend_from_slice(&self.bytes[key_start..prefix]);
                        put_varint(out, repaired.len() as u64);
                        out.extend_from_slice(repaired.as_bytes());
                        self.at = field_end;
                        return Ok(());
                    }
                }
                self.at = field_end;
            }
            (Message(schema), LEN) => {
                let prefix = self.at;
                let field_end = self.length(end)?;
                if depth >= RECURSION_LIMIT {
                    note(&mut self.scan.first_too_deep, &mut self.scan.too_deep, self.at);
                    self.at = field_end;
                    if !self.fixes().is_some_and(|f| f.depth) {
                        self.copy_from(key_start);
                    }
                    return Ok(());
                }
                self.scan.elements += 1;
                if schema.1 == Item {
                    self.scan.items += 1;
                }
                let bad_ids_before = self.scan.bad_ids;
                let Some((out, _)) = &mut self.out else {
                    if schema.1 != Item {
                        return self.message(field_end, schema, depth + 1);
                    }
                    // A known item is clean: no bad ID in it.
                    if self.reuse_known(schema, field_end, depth + 1) {
                        return Ok(());
                    }
                    if self.record.is_some() && field_end - self.at >= MIN_KNOWN_ITEM {
                        self.recorded_item(field_end, schema, depth + 1)?;
                    } else {
                        self.message(field_end, schema, depth + 1)?;
                    }
                    if self.scan.bad_ids > bad_ids_before {
                        self.scan.bad_id_items += 1;
                    }
                    return Ok(());
                };
                // The key, then the payload rewritten, then its length put
                // in front of it (it may have changed).
                let item_start = out.len();
                out.extend_from_slice(&self.bytes[key_start..prefix]);
                let body = out.len();
                self.message(field_end, schema, depth + 1)?;
                let bad_item = schema.1 == Item && self.scan.bad_ids > bad_ids_before;
                if bad_item {
                    self.scan.bad_id_items += 1;
                }
                if let Some((out, fixes)) = &mut self.out {
                    if bad_item && fixes.bad_id_items {
                        out.truncate(item_start);
                        return Ok(());
                    }
                    let mut prefix = Vec::with_capacity(10);
                    put_varint(&mut prefix, (out.len() - body) as u64);
                    out.splice(body..body, prefix);
                }
                return Ok(());
            }
            (RepeatedFixed64, LEN) => {
                let field_end = self.length(end)?;
                if !(field_end - self.at).is_multiple_of(8) {
                    return Err(self.error("packed fixed64 field of a length not a multiple of 8"));
                }
                self.at = field_end;
            }
            (RepeatedVarint, LEN) => {
                let field_end = self.length(end)?;
                while self.at < field_end {
                    self.varint(field_end)?;
                }
            }
            _ => return Err(self.error("wire type does not match the field's type")),
        }
        self.copy_from(key_start);
        Ok(())
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
#[path = "../../../tests/support/proto_bytes.rs"]
mod proto_bytes;

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

    use super::proto_bytes::len_field;

    #[test]
    fn reusing_known_items_gives_the_same_scan_on_every_truncation_and_corruption() {
        for (signal, bytes) in samples() {
            let (scanned, known) = scan_recording(signal, &bytes).unwrap();
            assert_eq!(Ok(scanned), scan(signal, &bytes), "{signal}: recording changes nothing");
            let (reused_scan, reused) = scan_counting_reuse(signal, &bytes, &known).unwrap();
            assert_eq!(Ok(reused_scan), scan(signal, &bytes), "{signal}");
            assert!(
                reused > 0 && reused == known.len(),
                "{signal}: every known item reused, {reused} of {}",
                known.len()
            );
            for end in 0..bytes.len() {
                let truncated = &bytes[..end];
                assert_eq!(
                    scan_reusing(signal, truncated, &known),
                    scan(signal, truncated),
                    "{signal} truncated at {end}"
                );
            }
            for at in 0..bytes.len() {
                for replacement in [0x00, 0x01, 0x02, 0x07, 0x0a, 0x7f, 0x80, 0xc3, 0xff] {
                    let mut corrupt = bytes.clone();
                    corrupt[at] = replacement;
                    let what = format!("{signal} byte {at} set to {replacement:#04x}");
                    assert_eq!(scan_reusing(signal, &corrupt, &known), scan(signal, &corrupt), "{what}");
                }
            }
        }
    }

    #[test]
    fn items_with_notes_are_not_known_and_are_walked_again() {
        // Three spans, the middle one with a trace ID of the wrong length
        // and a string that is not UTF-8: only the others are known.
        // Names long enough for the spans to be noted (MIN_KNOWN_ITEM).
        let span = |id: Vec<u8>, name: &[u8]| [len_field(1, &id), len_field(5, &[name, &[b'x'; 64]].concat())].concat();
        let spans = [span(vec![1; 16], b"a"), span(vec![2; 3], b"\xff"), span(vec![3; 16], b"c")];
        let scope_spans: Vec<u8> = spans.iter().flat_map(|s| len_field(2, s)).collect();
        let otlp = len_field(1, &len_field(2, &scope_spans));
        let (scanned, known) = scan_recording(Signal::Traces, &otlp).unwrap();
        assert_eq!((scanned.bad_ids, scanned.invalid_utf8, known.len()), (1, 1, 2));
        let (reused_scan, reused) = scan_counting_reuse(Signal::Traces, &otlp, &known).unwrap();
        assert_eq!(reused_scan, scanned);
        assert_eq!(reused, 2);
        // The output drops the first span: the others are still found.
        let without_first: Vec<u8> = spans[1..].iter().flat_map(|s| len_field(2, s)).collect();
        let output = len_field(1, &len_field(2, &without_first));
        let (reused_scan, reused) = scan_counting_reuse(Signal::Traces, &output, &known).unwrap();
        assert_eq!((Ok(reused_scan), reused), (scan(Signal::Traces, &output), 1));
    }

    #[test]
    fn tiny_items_are_not_noted() {
        // A hundred thousand empty spans: noting each would take 20 times
        // the request's size.
        let scope_spans = len_field(2, &[]).repeat(100_000);
        let otlp = len_field(1, &len_field(2, &scope_spans));
        let (scanned, known) = scan_recording(Signal::Traces, &otlp).unwrap();
        assert_eq!((scanned.items, known.len()), (100_000, 0));
        assert_eq!(scan_reusing(Signal::Traces, &otlp, &known), Ok(scanned));
    }

    #[test]
    fn a_known_item_moved_to_another_message_type_is_walked_as_that_type() {
        // A gauge's number point (with an exemplar: field 5, a message) put
        // where a histogram point goes (field 5 there is the fixed64 sum).
        let point = NumberDataPoint {
            attributes: vec![KeyValue { key: "k".repeat(MIN_KNOWN_ITEM), ..Default::default() }],
            exemplars: vec![Exemplar { value: Some(exemplar::Value::AsInt(1)), ..Default::default() }],
            value: Some(number_data_point::Value::AsDouble(1.0)),
            ..Default::default()
        }
        .encode_to_vec();
        let request =
            |data_field: u32| len_field(1, &len_field(2, &len_field(2, &len_field(data_field, &len_field(1, &point)))));
        let (input, as_histogram) = (request(5), request(9));
        let (_, known) = scan_recording(Signal::Metrics, &input).unwrap();
        assert_eq!(known.len(), 1);
        let expected = scan(Signal::Metrics, &as_histogram);
        assert!(expected.is_err(), "the point is not a histogram point: {expected:?}");
        assert_eq!(scan_counting_reuse(Signal::Metrics, &as_histogram, &known).map(|(s, _)| s), expected);
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

    fn decode_traces(bytes: &[u8]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(bytes).expect("prost decodes it")
    }

    /// A span whose name is `name_bytes` (possibly not UTF-8), in a request
    /// written by hand: one resource, one scope container without a scope.
    fn span_named_raw(name_bytes: &[u8]) -> Vec<u8> {
        let mut span = vec![0x0a, 16];
        span.extend_from_slice(&[7; 16]);
        span.push(0x2a); // name: field 5
        span.push(name_bytes.len() as u8);
        span.extend_from_slice(name_bytes);
        let mut scope_spans = vec![0x12, span.len() as u8];
        scope_spans.extend_from_slice(&span);
        let mut resource_spans = vec![0x12, scope_spans.len() as u8];
        resource_spans.extend_from_slice(&scope_spans);
        let mut request = vec![0x0a, resource_spans.len() as u8];
        request.extend_from_slice(&resource_spans);
        request
    }

    #[test]
    fn clean_requests_are_rewritten_byte_for_byte() {
        for (signal, bytes) in samples() {
            let found = scan(signal, &bytes).unwrap();
            assert!(found.fit_for_otap(), "{signal}: {found:?}");
            assert!(found.elements > 20, "{signal}: {found:?}");
            for fixes in [Fixes::FOR_PROST, Fixes::FOR_OTAP] {
                assert_eq!(rewrite(signal, &bytes, fixes).unwrap(), bytes, "{signal} {fixes:?}");
            }
            assert!(matches!(super::super::for_otap(signal, &bytes), Ok(std::borrow::Cow::Borrowed(_))));
        }
    }

    #[test]
    fn invalid_utf8_is_found_and_repaired_lossily() {
        let bytes = span_named_raw(b"caf\xc3(\xff) ok");
        let found = scan(Signal::Traces, &bytes).unwrap();
        assert_eq!(found.invalid_utf8, 1);
        assert!(validate(Signal::Traces, &bytes).is_err() && !prost_accepts(Signal::Traces, &bytes));
        let repaired = rewrite(Signal::Traces, &bytes, Fixes::FOR_PROST).unwrap();
        let span = &decode_traces(&repaired).resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, String::from_utf8_lossy(b"caf\xc3(\xff) ok"));
        assert_eq!(span.trace_id, [7; 16], "the rest is kept");
        assert_eq!(scan(Signal::Traces, &repaired).unwrap().prost_error(), None);
    }

    #[test]
    fn values_nested_past_the_limit_are_left_out_and_the_rest_kept() {
        let mut value = AnyValue { value: Some(Value::IntValue(1)) };
        for _ in 0..2000 {
            value = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let kv = |key: &str, value| KeyValue { key: key.into(), value: Some(value), ..Default::default() };
        let record = LogRecord {
            attributes: vec![kv("deep", value), kv("plain", AnyValue { value: Some(Value::IntValue(7)) })],
            ..Default::default()
        };
        let bytes = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: vec![record], ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let found = scan(Signal::Logs, &bytes).unwrap();
        assert_eq!(found.too_deep, 1);
        assert_eq!(validate(Signal::Logs, &bytes).unwrap_err().reason, "recursion limit reached");
        let repaired = rewrite(Signal::Logs, &bytes, Fixes::FOR_PROST).unwrap();
        let decoded = ExportLogsServiceRequest::decode(repaired.as_slice()).expect("prost decodes the repair");
        let attributes = &decoded.resource_logs[0].scope_logs[0].log_records[0].attributes;
        assert_eq!(attributes[1], kv("plain", AnyValue { value: Some(Value::IntValue(7)) }));
        assert_eq!(attributes[0].key, "deep", "the attribute stays, cut where it got too deep");
    }

    #[test]
    fn scopes_are_put_first_for_otap() {
        // Missing scope: an empty one is added in front.
        let bytes = span_named_raw(b"GET /");
        let found = scan(Signal::Traces, &bytes).unwrap();
        assert_eq!(found.unplaced_scopes, 1);
        assert!(!found.fit_for_otap());
        let fixed = rewrite(Signal::Traces, &bytes, Fixes::FOR_OTAP).unwrap();
        assert_eq!(&fixed[4..6], &[0x0a, 0x00], "the scope container starts with an empty scope");
        let decoded = decode_traces(&fixed);
        assert_eq!(decoded.resource_spans[0].scope_spans[0].scope, Some(InstrumentationScope::default()));
        assert_eq!(
            decoded.resource_spans[0].scope_spans[0].spans,
            decode_traces(&bytes).resource_spans[0].scope_spans[0].spans
        );
        assert!(scan(Signal::Traces, &fixed).unwrap().fit_for_otap());

        // A scope after the spans moves in front of them.
        let mut request = ExportTraceServiceRequest::decode(traces().as_slice()).unwrap();
        let scope_spans = &mut request.resource_spans[0].scope_spans[0];
        let scope = scope_spans.scope.take().unwrap();
        let mut spans_first = ScopeSpans { spans: scope_spans.spans.clone(), ..Default::default() }.encode_to_vec();
        spans_first.extend(ScopeSpans { scope: Some(scope.clone()), ..Default::default() }.encode_to_vec());
        let mut wrapped = vec![0x12];
        put_varint(&mut wrapped, spans_first.len() as u64);
        wrapped.extend_from_slice(&spans_first);
        let mut outer = vec![0x0a];
        put_varint(&mut outer, wrapped.len() as u64);
        outer.extend_from_slice(&wrapped);
        assert_eq!(scan(Signal::Traces, &outer).unwrap().unplaced_scopes, 1);
        let fixed = rewrite(Signal::Traces, &outer, Fixes::FOR_OTAP).unwrap();
        assert!(scan(Signal::Traces, &fixed).unwrap().fit_for_otap());
        assert_eq!(decode_traces(&fixed), decode_traces(&outer), "same content, scope first");
    }

    #[test]
    fn unknown_and_extra_key_value_fields_are_dropped_for_otap_only() {
        let bytes = span_named_raw(b"GET /");
        // An unknown field 17 inside the span (varint 1), lengths patched by hand.
        let mut span = decode_traces(&bytes).resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        span.extend_from_slice(&[0x88, 0x01, 0x01]);
        let kv = {
            // attributes: field 9; KeyValue { key "k", key_strindex 3 before it }
            let mut kv = vec![0x18, 0x03, 0x0a, 0x01, b'k'];
            let mut field = vec![0x4a, kv.len() as u8];
            field.append(&mut kv);
            field
        };
        span.extend_from_slice(&kv);
        let scope_spans = [&[0x12, span.len() as u8][..], &span].concat();
        let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
        let request = [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat();
        assert!(prost_accepts(Signal::Traces, &request));
        let found = scan(Signal::Traces, &request).unwrap();
        assert_eq!((found.unknown_fields, found.extra_key_value_fields), (1, 1), "{found:?}");
        assert_eq!(rewrite(Signal::Traces, &request, Fixes::FOR_PROST).unwrap(), request, "kept for prost");
        let fixed = rewrite(Signal::Traces, &request, Fixes::FOR_OTAP).unwrap();
        assert!(scan(Signal::Traces, &fixed).unwrap().fit_for_otap());
        let span = &decode_traces(&fixed).resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((span.attributes[0].key.as_str(), span.attributes[0].key_strindex), ("k", 0));
    }

    #[test]
    fn wrong_length_ids_are_counted() {
        let mut request = ExportTraceServiceRequest::decode(traces().as_slice()).unwrap();
        request.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3];
        request.resource_spans[0].scope_spans[0].spans[1].span_id = vec![];
        let bytes = request.encode_to_vec();
        let found = scan(Signal::Traces, &bytes).unwrap();
        assert_eq!(found.bad_ids, 1, "an empty ID is allowed, a 3-byte one is not");
        assert!(found.prost_error().is_none() && found.strict_error().is_some());
    }

    /// One definition of a valid batch: `STRICT` leaves out exactly the items
    /// holding a bad ID (in themselves, a link or an exemplar), keeps every
    /// other item as it was, and what it gives passes `strict_error`.
    #[test]
    fn strict_leaves_out_only_the_items_with_bad_ids() {
        let mut trace_request = ExportTraceServiceRequest::decode(traces().as_slice()).unwrap();
        let spans = &mut trace_request.resource_spans[0].scope_spans[0].spans;
        let good = spans[0].clone();
        let mut bad_trace = good.clone();
        bad_trace.trace_id = vec![7; 24];
        let mut bad_link = good.clone();
        bad_link.links[0].span_id = vec![7; 3];
        *spans = vec![good.clone(), bad_trace, good.clone(), bad_link];
        let bytes = trace_request.encode_to_vec();
        let found = scan(Signal::Traces, &bytes).unwrap();
        assert_eq!((found.items, found.bad_ids, found.bad_id_items), (4, 2, 2), "{found:?}");
        let admitted = rewrite(Signal::Traces, &bytes, Fixes::STRICT).unwrap();
        assert!(scan(Signal::Traces, &admitted).unwrap().strict_error().is_none());
        let kept = decode_traces(&admitted);
        assert_eq!(kept.resource_spans[0].scope_spans[0].spans, vec![good.clone(), good]);
        assert_eq!(kept.resource_spans[0].resource, trace_request.resource_spans[0].resource, "the rest as it was");
        // The recording scan counts the same (its clean-item notes skip none).
        assert_eq!(scan_recording(Signal::Traces, &bytes).unwrap().0, found);

        let mut log_request = ExportLogsServiceRequest::decode(logs().as_slice()).unwrap();
        let records = &mut log_request.resource_logs[0].scope_logs[0].log_records;
        let mut bad = records[0].clone();
        bad.trace_id = vec![1; 24];
        records.push(bad);
        let bytes = log_request.encode_to_vec();
        let admitted = rewrite(Signal::Logs, &bytes, Fixes::STRICT).unwrap();
        let before = ExportLogsServiceRequest::decode(logs().as_slice()).unwrap();
        assert_eq!(ExportLogsServiceRequest::decode(admitted.as_slice()).unwrap(), before);

        let mut metric_request = ExportMetricsServiceRequest::decode(metrics().as_slice()).unwrap();
        let Some(Data::Gauge(gauge)) = &mut metric_request.resource_metrics[0].scope_metrics[0].metrics[0].data else {
            panic!("the first metric is a gauge")
        };
        let mut bad = gauge.data_points[0].clone();
        bad.exemplars[0].span_id = vec![1; 9];
        gauge.data_points.push(bad);
        let bytes = metric_request.encode_to_vec();
        assert_eq!(scan(Signal::Metrics, &bytes).unwrap().bad_id_items, 1);
        let admitted = rewrite(Signal::Metrics, &bytes, Fixes::STRICT).unwrap();
        let before = ExportMetricsServiceRequest::decode(metrics().as_slice()).unwrap();
        assert_eq!(ExportMetricsServiceRequest::decode(admitted.as_slice()).unwrap(), before);

        // A request with nothing to fix comes back byte for byte.
        for (signal, bytes) in [(Signal::Traces, traces()), (Signal::Logs, logs()), (Signal::Metrics, metrics())] {
            assert_eq!(rewrite(signal, &bytes, Fixes::STRICT).unwrap(), bytes, "{signal}");
        }
    }

    #[test]
    fn non_minimal_length_prefixes_are_rewritten_correctly() {
        // The span's length written in two bytes (0x85 0x00 is 5) and a name
        // that needs repair inside it.
        let span = [0x2a, 0x03, b'a', 0xff, b'b'];
        let mut scope_spans = vec![0x12, 0x85, 0x00];
        scope_spans.extend_from_slice(&span);
        let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
        let request = [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat();
        assert_eq!(scan(Signal::Traces, &request).unwrap().invalid_utf8, 1);
        let fixed = rewrite(Signal::Traces, &request, Fixes::FOR_OTAP).unwrap();
        let decoded = decode_traces(&fixed);
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans[0].name, "a\u{fffd}b");
    }
}
