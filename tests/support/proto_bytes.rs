//! Hand-built protobuf for tests that need bytes an encoder would not write
//! (fields out of order, split or misplaced). Included with `#[path]` by the
//! crates whose tests cannot depend on `wasmtel-tests`.

/// Builds `tag + length + body`.
pub fn len_field(number: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}
