//! Differential: the allocation-free OTLP validator must accept exactly what
//! prost's full decode of the signal's `Export*ServiceRequest` accepts.
//! Input: header byte (signal, see `split_header`), then the request bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_fuzz::{hex_prefix, prost_decode, split_header, write_seeds_if_asked};

fuzz_target!(init: write_seeds_if_asked(), |data: &[u8]| {
    let Some((signal, _, bytes)) = split_header(data) else { return };
    let ours = wasmtel_runtime::otlp::validate(signal, bytes);
    let prost = prost_decode(signal, bytes);
    if ours.is_ok() != prost.is_ok() {
        panic!(
            "otlp::validate and prost disagree on a {signal} request of {} bytes: validate says {ours:?}, \
             prost says {prost:?}; bytes: {}",
            bytes.len(),
            hex_prefix(bytes, 256),
        );
    }
});
