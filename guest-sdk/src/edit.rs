//! Splice editing of OTLP bytes: record edits against [views](crate::view),
//! then write the output by copying every untouched byte range as it is and
//! encoding only what changed; the length prefixes of the changed messages'
//! ancestors are fixed up. Untouched messages keep their bytes exactly,
//! unknown fields and field order included.
//!
//! ```
//! use wasmtel_sdk::edit::Editor;
//! use wasmtel_sdk::view::{HasAttributes, TracesView};
//! use wasmtel_sdk::{Outcome, ProcessError};
//!
//! /// Masks every `user.email` attribute of every span.
//! fn mask_emails(otlp: &[u8]) -> Result<Outcome, ProcessError> {
//!     let mut editor = Editor::new(otlp);
//!     for resource_spans in TracesView::new(otlp).resource_spans() {
//!         for scope_spans in resource_spans?.scope_spans() {
//!             for span in scope_spans?.spans() {
//!                 for attribute in span?.attributes() {
//!                     let attribute = attribute?;
//!                     if attribute.key()? == "user.email" {
//!                         editor.set_value(&attribute, "****");
//!                     }
//!                 }
//!             }
//!         }
//!     }
//!     Ok(editor.finish()?)
//! }
//! ```
//!
//! When edits overlap, the outermost wins (removing a span discards the edits
//! inside it); of two edits of the same field, the later one wins.

use crate::Outcome;
use crate::otlp::common::v1::AnyValue;
use crate::view::{
    AnyValueView, FIXED64, Fields, HasAttributes, KeyValueView, LEN, LogRecordView, VARINT, View, ViewError, Wire,
    fields, put_tag, put_varint, varint_len,
};

/// A value to write into an attribute, a log body or an array element.
#[derive(Clone, Copy, Debug)]
pub enum NewValue<'b> {
    /// A string value (`string_value`).
    String(&'b str),
    /// A boolean value (`bool_value`).
    Bool(bool),
    /// A 64-bit integer value (`int_value`).
    Int(i64),
    /// A 64-bit float value (`double_value`).
    Double(f64),
    /// A bytes value (`bytes_value`).
    Bytes(&'b [u8]),
    /// Any value of the decoded data model (arrays, key-value lists).
    Any(&'b AnyValue),
    /// An `AnyValue` body as encoded, e.g. another view's [`View::bytes`].
    Encoded(&'b [u8]),
}

impl<'b> From<&'b str> for NewValue<'b> {
    fn from(value: &'b str) -> Self {
        NewValue::String(value)
    }
}

impl<'b> From<&'b String> for NewValue<'b> {
    fn from(value: &'b String) -> Self {
        NewValue::String(value)
    }
}

impl From<bool> for NewValue<'_> {
    fn from(value: bool) -> Self {
        NewValue::Bool(value)
    }
}

impl From<i64> for NewValue<'_> {
    fn from(value: i64) -> Self {
        NewValue::Int(value)
    }
}

impl From<f64> for NewValue<'_> {
    fn from(value: f64) -> Self {
        NewValue::Double(value)
    }
}

impl<'b> From<&'b AnyValue> for NewValue<'b> {
    fn from(value: &'b AnyValue) -> Self {
        NewValue::Any(value)
    }
}

impl NewValue<'_> {
    /// Length of the encoded `AnyValue` body.
    fn encoded_len(&self) -> usize {
        let len_field = |len: usize| 1 + varint_len(len as u64) + len;
        match *self {
            NewValue::String(s) => len_field(s.len()),
            NewValue::Bool(_) => 2,
            NewValue::Int(i) => 1 + varint_len(i as u64),
            NewValue::Double(_) => 9,
            NewValue::Bytes(b) => len_field(b.len()),
            NewValue::Any(any) => prost::Message::encoded_len(any),
            NewValue::Encoded(bytes) => bytes.len(),
        }
    }

    /// Writes the `AnyValue` body.
    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            NewValue::String(s) => crate::view::put_len_field(out, 1, s.as_bytes()),
            NewValue::Bool(b) => {
                put_tag(out, 2, VARINT);
                out.push(u8::from(b));
            }
            NewValue::Int(i) => {
                put_tag(out, 3, VARINT);
                put_varint(out, i as u64);
            }
            NewValue::Double(d) => {
                put_tag(out, 4, FIXED64);
                out.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            NewValue::Bytes(b) => crate::view::put_len_field(out, 7, b),
            NewValue::Any(any) => prost::Message::encode_raw(any, out),
            NewValue::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Edit {
    /// Body of the message the edit is in.
    container: (usize, usize),
    /// The field replaced (its whole extent); `None`: appended to the container.
    replace: Option<(usize, usize)>,
    /// The new bytes, in the arena.
    bytes: (usize, usize),
}

impl Edit {
    /// Where the edit applies: the replaced field's start, or the container's end.
    fn pos(&self) -> usize {
        self.replace.map_or(self.container.1, |(start, _)| start)
    }

    fn inside(&self, start: usize, end: usize) -> bool {
        self.container.0 >= start && self.container.1 <= end
    }
}

/// Records edits of one OTLP request and writes the edited request.
#[derive(Debug)]
pub struct Editor<'a> {
    input: &'a [u8],
    edits: Vec<Edit>,
    arena: Vec<u8>,
    drop_all: bool,
}

impl<'a> Editor<'a> {
    /// An editor of the request encoded in `input`, with no edits yet; pass it only views of these same bytes.
    pub fn new(input: &'a [u8]) -> Self {
        Editor { input, edits: Vec::new(), arena: Vec::new(), drop_all: false }
    }

    /// True when nothing was edited.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && !self.drop_all
    }

    fn check<V: View<'a>>(&self, view: &V) {
        assert!(std::ptr::eq(view.buf(), self.input), "a view of another request was passed to this editor");
    }

    fn push(&mut self, container: (usize, usize), replace: Option<(usize, usize)>, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.arena.len();
        write(&mut self.arena);
        self.edits.push(Edit { container, replace, bytes: (start, self.arena.len()) });
    }

    /// Removes a message (a span, log record, data point, event, link,
    /// attribute, scope, resource, array element, …) from the one holding it.
    /// Removing the request itself drops the batch.
    pub fn remove<V: View<'a>>(&mut self, item: &V) {
        self.check(item);
        let location = item.location();
        if location.field_start == location.start {
            self.drop_all = true;
            return;
        }
        self.push(location.parent, Some((location.field_start, location.end)), |_| {});
    }

    /// Replaces a message's body with `body` (its encoding), keeping its tag.
    pub fn replace_body<V: View<'a>>(&mut self, item: &V, body: &[u8]) {
        self.replace_body_with(item, body.len(), |out| out.extend_from_slice(body));
    }

    /// Replaces a message's body with `len` bytes that `write` appends.
    fn replace_body_with<V: View<'a>>(&mut self, item: &V, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.check(item);
        let location = item.location();
        // The view was read from this field: its tag reads.
        let Some((tag, _)) = crate::view::read_varint(self.input, location.field_start) else {
            return;
        };
        self.push(location.parent, Some((location.field_start, location.end)), |out| {
            put_varint(out, tag);
            put_varint(out, len as u64);
            let start = out.len();
            write(out);
            debug_assert_eq!(out.len() - start, len);
        });
    }

    /// Sets a singular length-delimited field of `message` to `body`:
    /// replaces its last occurrence (earlier ones are removed, as decoders
    /// keep the last) or appends it.
    fn set_len_field<V: View<'a>>(
        &mut self,
        message: &V,
        number: u32,
        len: usize,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), ViewError> {
        self.check(message);
        let location = message.location();
        let container = (location.start, location.end);
        let mut last = None;
        for field in fields(message) {
            let field = field?;
            if field.number == number
                && let Some((start, end)) = last.replace((field.start, field.end))
            {
                self.push(container, Some((start, end)), |_| {});
            }
        }
        self.push(container, last, |out| {
            put_tag(out, number, LEN);
            put_varint(out, len as u64);
            write(out);
        });
        Ok(())
    }

    /// Sets an attribute's value.
    pub fn set_value<'b>(&mut self, attribute: &KeyValueView<'a>, value: impl Into<NewValue<'b>>) {
        let value = value.into();
        // The attribute was read through a view: its fields scan cleanly.
        let _ = self.set_len_field(attribute, 2, value.encoded_len(), |out| value.encode(out));
    }

    /// Replaces a log record's body.
    pub fn set_body<'b>(
        &mut self,
        record: &LogRecordView<'a>,
        value: impl Into<NewValue<'b>>,
    ) -> Result<(), ViewError> {
        let value = value.into();
        self.set_len_field(record, 5, value.encoded_len(), |out| value.encode(out))
    }

    /// Replaces a value in place: a log body, an array element, the value
    /// of an attribute or of a key-value list entry.
    pub fn set_any_value<'b>(&mut self, target: &AnyValueView<'a>, value: impl Into<NewValue<'b>>) {
        let value = value.into();
        self.replace_body_with(target, value.encoded_len(), |out| value.encode(out));
    }

    /// Adds an attribute at the end of a message's attribute list.
    pub fn push_attribute<'b, V: HasAttributes<'a>>(&mut self, owner: &V, key: &str, value: impl Into<NewValue<'b>>) {
        self.check(owner);
        let value = value.into();
        let location = owner.location();
        let value_len = value.encoded_len();
        let body_len = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(value_len as u64) + value_len;
        self.push((location.start, location.end), None, |out| {
            put_tag(out, V::ATTRIBUTES_FIELD, LEN);
            put_varint(out, body_len as u64);
            crate::view::put_len_field(out, 1, key.as_bytes());
            put_tag(out, 2, LEN);
            put_varint(out, value_len as u64);
            value.encode(out);
        });
    }

    /// The edited request: `Unchanged` without edits, `Dropped` when no
    /// resource is left (or the request was removed), else the new bytes.
    pub fn finish(self) -> Result<Outcome, ViewError> {
        if self.drop_all {
            return Ok(Outcome::Dropped);
        }
        match self.write()? {
            None => Ok(Outcome::Unchanged),
            Some(output) if has_field(&output, 1) => Ok(Outcome::Replaced(output)),
            Some(_) => Ok(Outcome::Dropped),
        }
    }

    /// The edited request's bytes, `None` without edits.
    pub fn write(mut self) -> Result<Option<Vec<u8>>, ViewError> {
        if self.edits.is_empty() {
            return Ok(None);
        }
        // By position; at one position the deepest container first (an
        // append at the end of a nested message before its parent's next
        // field); a stable sort keeps recording order among equals.
        self.edits.sort_by_key(|edit| (edit.pos(), edit.container.1 - edit.container.0));
        let root = (0, self.input.len());
        let mut measure = Pass::Measure { len: 0, sizes: Vec::new() };
        self.rewrite(root, &self.edits, &mut measure)?;
        let Pass::Measure { len, sizes } = measure else { unreachable!() };
        let mut write = Pass::Write { out: Vec::with_capacity(len), sizes, next: 0 };
        self.rewrite(root, &self.edits, &mut write)?;
        let Pass::Write { out, .. } = write else { unreachable!() };
        debug_assert_eq!(out.len(), len);
        Ok(Some(out))
    }

    /// Writes (or measures) the message body `body` with `edits`, which are
    /// the sorted edits inside it.
    fn rewrite(&self, body: (usize, usize), edits: &[Edit], pass: &mut Pass) -> Result<(), ViewError> {
        let input = self.input;
        let mut fields = Fields::new(input, body.0, body.1, "message");
        let mut copy_from = body.0;
        let mut i = 0;
        while i < edits.len() {
            let edit = edits[i];
            if edit.container == body {
                let (start, end) = match edit.replace {
                    Some(range) => range,
                    None => (body.1, body.1),
                };
                pass.copy(&input[copy_from..start]);
                copy_from = start;
                // Of several edits of one field, the last recorded wins
                // (appends all apply, in order).
                let mut last = i;
                while edit.replace.is_some()
                    && last + 1 < edits.len()
                    && edits[last + 1].container == body
                    && edits[last + 1].replace == edit.replace
                {
                    last += 1;
                }
                let winner = edits[last];
                pass.copy(&self.arena[winner.bytes.0..winner.bytes.1]);
                i = last + 1;
                if edit.replace.is_some() {
                    // Edits inside a replaced or removed field are discarded.
                    while i < edits.len() && edits[i].container != body && edits[i].inside(start, end) {
                        i += 1;
                    }
                    copy_from = end;
                    fields.seek(end);
                }
                continue;
            }
            // A nested edit: find the field of this body that holds it.
            let field = loop {
                let Some(field) = fields.next() else {
                    return Err(ViewError {
                        what: "edit",
                        message: "an edit lies outside its request",
                        offset: edit.pos(),
                    });
                };
                let field = field?;
                if let Wire::Len(start, end) = field.wire
                    && edit.inside(start, end)
                {
                    break (field, start, end);
                }
            };
            let (field, start, end) = field;
            let mut j = i + 1;
            while j < edits.len() && edits[j].container != body && edits[j].inside(start, end) {
                j += 1;
            }
            pass.copy(&input[copy_from..field.start]);
            pass.nested(&input[field.start..field.tag_end], |pass| self.rewrite((start, end), &edits[i..j], pass))?;
            copy_from = field.end;
            i = j;
        }
        pass.copy(&input[copy_from..body.1]);
        Ok(())
    }
}

/// The two passes over the edits: measure every rewritten message, then
/// write with the lengths known (measured in the same order).
enum Pass {
    Measure { len: usize, sizes: Vec<usize> },
    Write { out: Vec<u8>, sizes: Vec<usize>, next: usize },
}

impl Pass {
    fn copy(&mut self, bytes: &[u8]) {
        match self {
            Pass::Measure { len, .. } => *len += bytes.len(),
            Pass::Write { out, .. } => out.extend_from_slice(bytes),
        }
    }

    fn nested(&mut self, tag: &[u8], body: impl FnOnce(&mut Pass) -> Result<(), ViewError>) -> Result<(), ViewError> {
        if let Pass::Measure { len, sizes } = self {
            let slot = sizes.len();
            sizes.push(0);
            let before = *len;
            body(self)?;
            if let Pass::Measure { len, sizes } = self {
                let body_len = *len - before;
                sizes[slot] = body_len;
                *len += tag.len() + varint_len(body_len as u64);
            }
            return Ok(());
        }
        if let Pass::Write { out, sizes, next } = self {
            let body_len = sizes[*next];
            *next += 1;
            out.extend_from_slice(tag);
            put_varint(out, body_len as u64);
        }
        body(self)
    }
}

/// Whether a message body has a field `number` at its top level.
fn has_field(body: &[u8], number: u32) -> bool {
    Fields::new(body, 0, body.len(), "request").any(|field| field.is_ok_and(|field| field.number == number))
}
