//! The plugin manifest: a custom section the SDK writes into the component, so
//! registries and `wasmtel inspect` can describe a plugin without running it.

use serde::{Deserialize, Serialize};

use crate::Signal;

/// Name of the custom section holding the manifest JSON.
pub const MANIFEST_SECTION: &str = "wasmtel-manifest";

/// What a plugin says about itself: the JSON in its `wasmtel-manifest` custom section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The plugin's name (the SDK writes its Cargo package name).
    pub name: String,
    /// The plugin's version (the SDK writes its Cargo package version).
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
    /// Version of the wasmtel guest SDK it was built with.
    #[serde(default)]
    pub sdk: Option<String>,
    /// What the host does by default when the sandbox fails on a batch.
    /// Absent (a component without the field, or without a manifest at
    /// all): fail closed.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// Whether a plugin may fail open. A security plugin (a redactor, an
/// authorizer) must not: forwarding the batch it failed on would leak what it
/// was meant to hide. Istio/Envoy default to fail-closed for the same reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// A failed batch is refused (`on_error: fail` by default).
    #[default]
    Closed,
    /// A failed batch may be forwarded unchanged (`on_error: pass` by default).
    Open,
}

/// Why a component's manifest cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The component's binary encoding is malformed.
    #[cfg(feature = "read")]
    #[error("invalid component: {0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    /// The manifest section is not valid manifest JSON.
    #[error("malformed `{MANIFEST_SECTION}` section: {0}")]
    Json(#[from] serde_json::Error),
}

impl Manifest {
    /// Reads the manifest from a component's (or its nested core modules')
    /// custom sections. `Ok(None)` when the component has none (not built with the SDK).
    #[cfg(feature = "read")]
    pub fn from_component(bytes: &[u8]) -> Result<Option<Manifest>, ManifestError> {
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            if let wasmparser::Payload::CustomSection(section) = payload?
                && section.name() == MANIFEST_SECTION
            {
                return Manifest::from_section(section.data()).map(Some);
            }
        }
        Ok(None)
    }

    /// The manifest from the JSON of its custom section.
    pub fn from_section(data: &[u8]) -> Result<Manifest, ManifestError> {
        Ok(serde_json::from_slice(data)?)
    }

    /// The failure mode of a component, by its manifest; fail closed without one.
    pub fn failure_mode_of(manifest: Option<&Manifest>) -> FailureMode {
        manifest.map_or(FailureMode::Closed, |m| m.failure_mode)
    }

    /// Whether the plugin processes `signal`; an empty `signals` list means all of them.
    pub fn handles(&self, signal: Signal) -> bool {
        self.signals.is_empty() || self.signals.contains(&signal)
    }
}
