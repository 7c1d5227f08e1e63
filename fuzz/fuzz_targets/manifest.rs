//! `Manifest::from_component` (wasmparser walk + the `wasmtel-manifest`
//! custom section's JSON) must never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_runtime::{Manifest, Signal};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(manifest)) = Manifest::from_component(data) {
        for signal in Signal::ALL {
            let _ = manifest.handles(signal);
        }
    }
});
