//! Test guest built against `wasmtel:plugin@1.0.0`, a major version this
//! runtime does not implement: the host must refuse it, naming both versions.

#![allow(missing_docs, reason = "a test guest, not an API")]
#![allow(unsafe_code, reason = "the export glue wit-bindgen generates here")]

wit_bindgen::generate!({ path: "wit", world: "processor-plugin" });

use exports::wasmtel::plugin::processor::{Guest, Outcome, ProcessError, Signal};

struct FutureMajor;

impl Guest for FutureMajor {
    fn init(_config_json: String) -> Result<(), String> {
        Ok(())
    }

    fn process(_signal: Signal, _otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        Ok(Outcome::Unchanged)
    }
}

#[cfg(target_arch = "wasm32")]
export!(FutureMajor);
