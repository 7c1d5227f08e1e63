//! The plugin manifest: a custom section the SDK writes into the component, so
//! registries and `wasmtel inspect` can describe a plugin without running it.

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

use crate::Signal;

/// Name of the custom section holding the manifest JSON.
pub const MANIFEST_SECTION: &str = "wasmtel-manifest";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// Signals the plugin processes; others pass through without entering the sandbox.
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// JSON Schema of the `config` the plugin's `init` accepts.
    #[serde(default)]
    pub config_schema: Option<serde_json::Value>,
    /// `wasmtel:plugin` WIT version the SDK compiled against.
    #[serde(default)]
    pub wit: Option<String>,
    #[serde(default)]
    pub sdk: Option<String>,
}

impl Manifest {
    /// Reads the manifest from a component's (or its nested core modules')
    /// custom sections. `Ok(None)` when the component has none (not built with the SDK).
    pub fn from_component(bytes: &[u8]) -> Result<Option<Manifest>, String> {
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| e.to_string())?;
            if let Payload::CustomSection(section) = payload {
                if section.name() == MANIFEST_SECTION {
                    return serde_json::from_slice(section.data())
                        .map(Some)
                        .map_err(|e| format!("malformed `{MANIFEST_SECTION}` section: {e}"));
                }
            }
        }
        Ok(None)
    }

    pub fn handles(&self, signal: Signal) -> bool {
        self.signals.is_empty() || self.signals.contains(&signal)
    }
}
