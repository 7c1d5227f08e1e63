//! The node's `config:`: the component, how it resolves, and the plugin's settings.

use std::path::PathBuf;

use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;
use wasmtel_registry::Policy;
use wasmtel_runtime::{Grants, Limits, OnError, Plugin, PluginConfig};

use super::WASM_PROCESSOR_URN;
use crate::config_error;

/// Node configuration (`config:` of a `urn:wasmtel:processor:wasm` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmProcessorConfig {
    /// The component: a path, `file://`, `oci://host/repo:tag[@sha256:…]`, a
    /// `sha256:` digest or a local store `name:tag` (see `wasmtel-registry`).
    pub component: String,
    /// How references resolve and what they must prove (store, signatures, lock, offline).
    #[serde(default)]
    pub registry: Policy,
    /// Name used in logs, errors and metrics; defaults to the file stem (or repository name).
    #[serde(default)]
    pub name: Option<String>,
    /// The guest's config, passed to its `init` as JSON.
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub limits: Limits,
    /// Unset: the component's declared default (fail closed unless it declares `failure_mode: open`).
    #[serde(default)]
    pub on_error: Option<OnError>,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    #[serde(default = "default_quarantine_max_bytes")]
    pub quarantine_max_bytes: bytesize::ByteSize,
    #[serde(default)]
    pub output: OutputForm,
}

/// The form of the batches the node emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputForm {
    /// OTAP Arrow records.
    #[default]
    Otap,
    /// OTLP protobuf bytes (what the guest speaks; no conversion at all).
    Otlp,
    /// Whatever form the batch arrived in.
    Input,
}

fn default_quarantine_max_bytes() -> bytesize::ByteSize {
    PluginConfig::default().quarantine_max_bytes
}

impl WasmProcessorConfig {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        serde_json::from_value(value.clone()).map_err(|e| config_error(format!("{WASM_PROCESSOR_URN}: {e}")))
    }

    fn plugin_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| wasmtel_registry::plugin_name(&self.component))
    }

    fn plugin_config(&self) -> PluginConfig {
        PluginConfig {
            config: self.config.clone(),
            limits: self.limits.clone(),
            on_error: self.on_error,
            grants: self.grants.clone(),
            quarantine_dir: self.quarantine_dir.clone(),
            quarantine_max_bytes: self.quarantine_max_bytes,
        }
    }

    /// Loads the component and starts a plugin for one processor instance.
    pub fn load(&self) -> Result<Plugin, ConfigError> {
        let runtime = crate::shared_runtime::runtime().map_err(config_error)?;
        wasmtel_registry::load_plugin(
            &runtime,
            &self.plugin_name(),
            &self.component,
            self.plugin_config(),
            &self.registry,
        )
        .map_err(config_error)
    }
}
