//! Differential: the allocation-free OTLP validator must accept exactly what
//! prost's full decode of the signal's `Export*ServiceRequest` accepts; and
//! whatever `scan` frames, `rewrite` must turn into what prost accepts
//! (`FOR_PROST`) and what the OTAP conversion reads safely (`FOR_OTAP`),
//! keeping a prost-valid request's decoded content under `FOR_PROST`; and
//! what the admission admits (`STRICT`) always passes the output check.
//! Input: header byte (signal, see `split_header`), then the request bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_fuzz::{hex_prefix, prost_decode, prost_eq, split_header, write_seeds_if_asked};
use wasmtel_runtime::otlp::{self, Fixes};

fuzz_target!(init: write_seeds_if_asked(), |data: &[u8]| {
    let Some((signal, _, bytes)) = split_header(data) else { return };
    let ours = otlp::validate(signal, bytes);
    let prost = prost_decode(signal, bytes);
    if ours.is_ok() != prost.is_ok() {
        panic!(
            "otlp::validate and prost disagree on a {signal} request of {} bytes: validate says {ours:?}, \
             prost says {prost:?}; bytes: {}",
            bytes.len(),
            hex_prefix(bytes, 256),
        );
    }
    let Ok(scanned) = otlp::scan(signal, bytes) else { return };
    // One definition of a valid batch: what the admission makes of a client's
    // request (`STRICT`) is what the output check accepts, so a guest that
    // returns its input unchanged never fails it; and the admission leaves
    // out exactly the items it reports.
    let admitted = otlp::rewrite(signal, bytes, Fixes::STRICT).expect("rewrite takes what scan framed");
    let rescan = otlp::scan(signal, &admitted).expect("the admitted batch frames");
    assert!(rescan.strict_error().is_none(), "admitted batch fails the output check ({rescan:?}): {}", hex_prefix(bytes, 256));
    assert_eq!(rescan.items, scanned.items - scanned.bad_id_items, "left out other than reported: {}", hex_prefix(bytes, 256));
    assert_eq!(otlp::rewrite(signal, &admitted, Fixes::STRICT).unwrap(), admitted, "admission is not idempotent");
    for fixes in [Fixes::FOR_PROST, Fixes::FOR_OTAP] {
        let fixed = otlp::rewrite(signal, bytes, fixes).expect("rewrite takes what scan framed");
        let rescan = otlp::scan(signal, &fixed).expect("the rewrite frames");
        assert!(prost_decode(signal, &fixed).is_ok(), "{fixes:?} output prost refuses: {}", hex_prefix(bytes, 256));
        if fixes == Fixes::FOR_OTAP {
            assert!(rescan.fit_for_otap(), "FOR_OTAP output still unfit ({rescan:?}): {}", hex_prefix(bytes, 256));
        }
        if prost.is_ok() && fixes == Fixes::FOR_PROST {
            assert!(prost_eq(signal, bytes, &fixed), "FOR_PROST changed a valid request: {}", hex_prefix(bytes, 256));
        }
    }
});
