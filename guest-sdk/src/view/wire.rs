//! The protobuf wire format, read in place: fields of a message body as
//! absolute byte positions in the request, so the editor can splice them.

use super::ViewError;

/// Deepest nesting of (unknown) groups skipped; deeper is malformed.
const MAX_GROUP_DEPTH: u32 = 32;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

/// One field's value as it sits on the wire.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wire {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// A length-delimited value: its body's absolute range.
    Len(usize, usize),
    /// An (unknown) group: nothing of OTLP, skipped whole.
    Group,
}

/// One field: `start..end` is its whole extent (tag to end of value), the
/// value starts at `value_start` (after the tag and, for `Len`, the length).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub number: u32,
    pub wire: Wire,
    pub start: usize,
    pub tag_end: usize,
    pub end: usize,
}

/// The fields of one message body, in wire order. Stops after the first error.
#[derive(Clone, Debug)]
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    what: &'static str,
    failed: bool,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8], start: usize, end: usize, what: &'static str) -> Self {
        Fields { buf, pos: start, end, what, failed: false }
    }

    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// Continues at `pos`, a field boundary of this body.
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    fn error(&mut self, message: &'static str, offset: usize) -> ViewError {
        self.failed = true;
        ViewError { what: self.what, message, offset }
    }

    fn varint(&mut self) -> Result<u64, ViewError> {
        let start = self.pos;
        match read_varint(&self.buf[..self.end], self.pos) {
            Some((value, next)) => {
                self.pos = next;
                Ok(value)
            }
            None => Err(self.error("truncated or overlong varint", start)),
        }
    }

    fn take(&mut self, len: usize, message: &'static str) -> Result<(usize, usize), ViewError> {
        let start = self.pos;
        if self.end - self.pos < len {
            return Err(self.error(message, start));
        }
        self.pos += len;
        Ok((start, self.pos))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ViewError> {
        let (start, end) = self.take(N, "truncated fixed-width value")?;
        let mut bytes = [0; N];
        bytes.copy_from_slice(&self.buf[start..end]);
        Ok(bytes)
    }

    fn tag(&mut self) -> Result<(u32, u8), ViewError> {
        let start = self.pos;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(self.error("invalid field number", start));
        }
        Ok((number as u32, (tag & 7) as u8))
    }

    /// Skips a group's fields up to its end tag.
    fn skip_group(&mut self, number: u32, depth: u32) -> Result<(), ViewError> {
        if depth > MAX_GROUP_DEPTH {
            let at = self.pos;
            return Err(self.error("groups nested too deep", at));
        }
        loop {
            if self.pos >= self.end {
                let at = self.pos;
                return Err(self.error("unterminated group", at));
            }
            let tag_start = self.pos;
            let (inner, wire_type) = self.tag()?;
            match wire_type {
                END_GROUP if inner == number => return Ok(()),
                END_GROUP => return Err(self.error("mismatched end of group", tag_start)),
                START_GROUP => self.skip_group(inner, depth + 1)?,
                _ => {
                    self.value(wire_type, tag_start)?;
                }
            }
        }
    }

    /// Nearly every OTLP field has a one-byte tag and a one-byte varint or
    /// length, or is fixed-width: read those without the general varint loop.
    /// `None` leaves the position as it was, for the general path (which
    /// also reports every error).
    #[inline]
    fn short_field(&mut self) -> Option<Field> {
        let start = self.pos;
        let body = self.buf.get(start..self.end)?;
        let (&tag, rest) = body.split_first()?;
        if !(8..0x80).contains(&tag) {
            return None;
        }
        let number = u32::from(tag >> 3);
        let value_start = start + 1;
        let (wire, end) = match tag & 7 {
            VARINT => match rest.first() {
                Some(&byte) if byte < 0x80 => (Wire::Varint(u64::from(byte)), value_start + 1),
                _ => return None,
            },
            LEN => match rest.split_first() {
                Some((&len, value)) if len < 0x80 && value.len() >= usize::from(len) => {
                    let end = value_start + 1 + usize::from(len);
                    (Wire::Len(value_start + 1, end), end)
                }
                _ => return None,
            },
            FIXED64 => (Wire::Fixed64(u64::from_le_bytes(*rest.first_chunk()?)), value_start + 8),
            FIXED32 => (Wire::Fixed32(u32::from_le_bytes(*rest.first_chunk()?)), value_start + 4),
            _ => return None,
        };
        self.pos = end;
        Some(Field { number, wire, start, tag_end: value_start, end })
    }

    /// Any field the short path does not read, and every error; kept out of
    /// line so callers inline only the short path.
    #[inline(never)]
    fn long_field(&mut self) -> Result<Field, ViewError> {
        let start = self.pos;
        let (number, wire_type) = self.tag()?;
        let tag_end = self.pos;
        let wire = match wire_type {
            START_GROUP => {
                self.skip_group(number, 0)?;
                Wire::Group
            }
            END_GROUP => return Err(self.error("end of group without a start", start)),
            _ => self.value(wire_type, start)?,
        };
        Ok(Field { number, wire, start, tag_end, end: self.pos })
    }

    fn value(&mut self, wire_type: u8, tag_start: usize) -> Result<Wire, ViewError> {
        Ok(match wire_type {
            VARINT => Wire::Varint(self.varint()?),
            FIXED64 => Wire::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            FIXED32 => Wire::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let (start, end) = self.take(len, "length runs past the end of its message")?;
                Wire::Len(start, end)
            }
            _ => return Err(self.error("invalid wire type", tag_start)),
        })
    }
}

impl Iterator for Fields<'_> {
    type Item = Result<Field, ViewError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.end {
            return None;
        }
        if let Some(field) = self.short_field() {
            return Some(Ok(field));
        }
        Some(self.long_field())
    }
}

/// A varint at `pos`: its value and the position after it.
pub(crate) fn read_varint(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let bytes = buf.get(pos..)?;
    if let Some(&byte) = bytes.first()
        && byte < 0x80
    {
        return Some((u64::from(byte), pos + 1));
    }
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((value, pos + i + 1));
        }
    }
    None
}

pub(crate) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// A length-delimited field: tag, length, bytes.
pub(crate) fn put_len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_tag(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(read_varint(&out, 0), Some((value, out.len())));
        }
        assert_eq!(read_varint(&[0x80; 11], 0), None, "overlong");
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0), None, "overflow");
        assert_eq!(read_varint(&[0x80], 0), None, "truncated");
    }

    #[test]
    fn groups_are_skipped_and_bad_ones_rejected() {
        // field 1 varint 5, group 2 { field 3 varint 1 }, field 4 varint 7
        let bytes = [0x08, 5, 0x13, 0x18, 1, 0x14, 0x20, 7];
        let numbers: Vec<u32> = Fields::new(&bytes, 0, bytes.len(), "m").map(|f| f.unwrap().number).collect();
        assert_eq!(numbers, [1, 2, 4]);
        for bad in [&[0x13, 0x18, 1][..], &[0x13, 0x1c][..], &[0x14][..], &[0x0f][..]] {
            let results: Vec<_> = Fields::new(bad, 0, bad.len(), "m").collect();
            assert!(results.last().unwrap().is_err(), "{bad:?}");
        }
    }
}
