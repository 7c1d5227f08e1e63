//! `PluginConfig::from_json` (serde + serde_path_to_error, humantime and
//! bytesize fields) must never panic; the input is read as lossy UTF-8. When
//! the text is JSON, `PluginConfig::from_value` (the YAML path) runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtel_runtime::PluginConfig;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = PluginConfig::from_json(&text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let _ = PluginConfig::from_value(value);
    }
});
