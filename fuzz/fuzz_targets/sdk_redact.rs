//! The guest SDK's view and splice editor on hostile bytes, through the
//! redact component (every attribute list, nested values, log bodies, hash
//! and remove edits): never a panic; whatever prost decodes, the view-based
//! processor takes too and its output decodes; on canonical requests (those
//! prost re-encodes byte for byte) its output has the content the decoded
//! implementation gives.
//! Input: header byte (signal, see `split_header`; the flag picks `remove`
//! over `hash`), then the request bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use wasmtel_fuzz::{hex_prefix, prost_decode, prost_eq, split_header, write_seeds_if_asked};
use wasmtel_redact::{Redact, decoded::Decoded};
use wasmtel_runtime::Signal;
use wasmtel_sdk::{Outcome, testing};

fn config(action: &str) -> String {
    format!(
        r#"{{"keys": ["user.email", "service.name"], "key_patterns": ["(?i)token|auth"],
            "value_patterns": ["[\\w.+-]+@[\\w-]+\\.[\\w.]+", "\\d{{4}}"], "action": "{action}", "log_bodies": true}}"#
    )
}

fn processors<P: wasmtel_sdk::Processor>() -> [P; 2] {
    [false, true]
        .map(|remove| testing::new(&config(if remove { "remove" } else { "hash" })).expect("the config is valid"))
}

thread_local! {
    // Built once: compiling the patterns for every input left ~2 runs a second.
    static BY_VIEW: RefCell<[Redact; 2]> = RefCell::new(processors());
    static BY_DECODING: RefCell<[Decoded; 2]> = RefCell::new(processors());
}

fn run<P: wasmtel_sdk::Processor>(processor: &mut P, signal: Signal, bytes: &[u8]) -> Result<Outcome, String> {
    testing::run(processor, signal, bytes).map_err(|e| e.to_string())
}

fn canonical(signal: Signal, bytes: &[u8]) -> bool {
    use prost::Message;
    use wasmtel_sdk::{ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest};
    match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(bytes).is_ok_and(|r| r.encode_to_vec() == bytes),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes).is_ok_and(|r| r.encode_to_vec() == bytes),
        Signal::Logs => ExportLogsServiceRequest::decode(bytes).is_ok_and(|r| r.encode_to_vec() == bytes),
    }
}

fuzz_target!(init: write_seeds_if_asked(), |data: &[u8]| {
    let Some((signal, remove, bytes)) = split_header(data) else { return };
    let by_view = BY_VIEW.with_borrow_mut(|p| run(&mut p[usize::from(remove)], signal, bytes));
    if prost_decode(signal, bytes).is_err() {
        return;
    }
    let by_view = by_view.unwrap_or_else(|e| {
        panic!("prost decodes a {signal} request the view refuses ({e}): {}", hex_prefix(bytes, 256))
    });
    if let Outcome::Replaced(out) = &by_view {
        assert!(prost_decode(signal, out).is_ok(), "the editor wrote bytes prost refuses: {}", hex_prefix(bytes, 256));
    }
    if !canonical(signal, bytes) {
        return;
    }
    let by_decoding =
        BY_DECODING.with_borrow_mut(|p| run(&mut p[usize::from(remove)], signal, bytes)).expect("prost decodes it");
    match (&by_view, &by_decoding) {
        (Outcome::Unchanged, Outcome::Unchanged) | (Outcome::Dropped, Outcome::Dropped) => {}
        (Outcome::Replaced(a), Outcome::Replaced(b)) => {
            assert!(prost_eq(signal, a, b), "view and decoded redact differ on {}", hex_prefix(bytes, 256))
        }
        other => panic!("view and decoded redact disagree ({other:?}) on {}", hex_prefix(bytes, 256)),
    }
});
