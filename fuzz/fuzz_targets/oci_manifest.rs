//! `artifact::parse_wasm_manifest` must never panic on any bytes, and on
//! success neither may `wasm_layer` nor `plugin_manifest` (annotation JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_registry::artifact::{parse_wasm_manifest, plugin_manifest, wasm_layer};

fuzz_target!(|data: &[u8]| {
    if let Ok((manifest, _layer)) = parse_wasm_manifest(data) {
        let _ = wasm_layer(&manifest);
        let _ = plugin_manifest(&manifest);
    }
});
