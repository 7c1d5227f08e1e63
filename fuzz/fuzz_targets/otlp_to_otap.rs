//! `wasmtel_otap::otlp_to_otap` must never panic or abort; errors are fine.
//! Input: header byte (signal; bit 7 set = raw mode), then the request bytes.
//! - filtered mode (bit 7 clear): only requests that both `otlp::validate`
//!   and prost's full decode accept reach the converter: well-formed OTLP;
//! - raw mode (bit 7 set): every input goes to the converter (which runs
//!   `validate` itself), so it also sees what validate accepts and prost does not.
//! On a panic the hook first prints which mode and what validate/prost said.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use wasmtel_fuzz::{prost_decode, split_header, write_seeds_if_asked};

thread_local! {
    /// What the input in flight is, for the panic hook.
    static CLASS: RefCell<String> = const { RefCell::new(String::new()) };
}

fn init() {
    write_seeds_if_asked();
    // libfuzzer-sys has installed its abort-on-panic hook by now: print the
    // input's class, then hand over to it. Except for a panic inside the
    // otap-dataflow encoder: `otlp_to_otap` runs it under `catch_unwind` and
    // returns that panic as an error (its contract), so let it unwind there.
    // Any panic that escapes `otlp_to_otap` still aborts: libfuzzer-sys runs
    // the target under `catch_unwind` and aborts on what reaches it.
    let next = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_engine = info.location().is_some_and(|at| at.file().contains("otel-arrow-dfe-pdata"));
        if in_engine {
            return;
        }
        CLASS.with(|class| eprintln!("otlp_to_otap input: {}", class.borrow()));
        next(info);
    }));
}

fuzz_target!(init: init(), |data: &[u8]| {
    let Some((signal, raw, bytes)) = split_header(data) else { return };
    let validate = wasmtel_runtime::otlp::validate(signal, bytes);
    let prost = prost_decode(signal, bytes);
    if !raw && (validate.is_err() || prost.is_err()) {
        return;
    }
    CLASS.with(|class| {
        *class.borrow_mut() = format!(
            "{} mode, {signal}, {} bytes, validate {}, prost {}",
            if raw { "raw" } else { "filtered" },
            bytes.len(),
            if validate.is_ok() { "ok" } else { "err" },
            if prost.is_ok() { "ok" } else { "err" },
        )
    });
    let _ = wasmtel_otap::otlp_to_otap(signal, bytes.to_vec());
});
