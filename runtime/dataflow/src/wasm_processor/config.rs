//! The node's `config:`: the component, how it resolves, and the plugin's settings.

use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;
use wasmtel_registry::Policy;
use wasmtel_runtime::{Plugin, PluginConfig};

use super::WASM_PROCESSOR_URN;
use crate::config_error;

/// Node configuration (`config:` of a `urn:wasmtel:processor:wasm` node): the
/// node's own keys, and the plugin's settings (`config`, `limits`, `on_error`,
/// `grants`, `quarantine_*`) as every host reads them ([`PluginConfig`]).
#[derive(Clone, Debug)]
pub struct WasmProcessorConfig {
    /// The component: a path, `file://`, `oci://host/repo:tag[@sha256:…]`, a
    /// `sha256:` digest or a local store `name:tag` (see `wasmtel-registry`).
    pub component: String,
    /// How references resolve and what they must prove (store, signatures, lock, offline).
    pub registry: Policy,
    /// Name used in logs, errors and metrics; defaults to the file stem (or repository name).
    pub name: Option<String>,
    /// The form of the batches the node emits.
    pub output: OutputForm,
    /// The plugin's settings, the same type the CLI, the collector and the bridge parse.
    pub plugin: PluginConfig,
    /// Set by `wasmtel serve` and the embedded pipeline: the dashboard board
    /// each instance posts its plugin and newest output to.
    pub status_board: Option<String>,
}

/// The keys only the node has; every other key is the plugin's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeKeys {
    component: String,
    #[serde(default)]
    registry: Policy,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    output: OutputForm,
    #[serde(default)]
    status_board: Option<String>,
}

const NODE_KEYS: [&str; 5] = ["component", "registry", "name", "output", "status_board"];

/// The form of the batches the node emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputForm {
    /// OTAP Arrow records.
    Otap,
    /// OTLP protobuf bytes (what the guest speaks; no conversion at all).
    Otlp,
    /// Whatever form the batch arrived in: OTLP from an OTLP receiver stays
    /// OTLP through a chain of wasm nodes (no OTLP → OTAP → OTLP between
    /// guests or before an exporter that writes OTLP-derived data); the
    /// engine's nodes that need OTAP convert once, where they need it.
    #[default]
    Input,
}

impl WasmProcessorConfig {
    /// Parses a node's `config:`; errors name the node type and the offending key.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let invalid = |message: String| config_error(format!("{WASM_PROCESSOR_URN}: {message}"));
        let object = value.as_object().ok_or_else(|| invalid(format!("expected a map, got {value}")))?;
        let (node, plugin): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
            object.clone().into_iter().partition(|(key, _)| NODE_KEYS.contains(&key.as_str()));
        let node: NodeKeys = serde_json::from_value(node.into()).map_err(|e| invalid(e.to_string()))?;
        let plugin = PluginConfig::from_value(plugin.into()).map_err(|e| invalid(e.to_string()))?;
        Ok(WasmProcessorConfig {
            component: node.component,
            registry: node.registry,
            name: node.name,
            output: node.output,
            plugin,
            status_board: node.status_board,
        })
    }

    fn plugin_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| wasmtel_registry::plugin_name(&self.component))
    }

    /// Loads the component and starts a plugin for one processor instance.
    pub fn load(&self) -> Result<Plugin, ConfigError> {
        let runtime = crate::shared_runtime::runtime().map_err(config_error)?;
        wasmtel_registry::load_plugin(
            &runtime,
            &self.plugin_name(),
            &self.component,
            self.plugin.clone(),
            &self.registry,
        )
        .map_err(config_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keys_names_every_field_the_node_reads() {
        let unknown = serde_json::json!({ "component": "c.wasm", "not-a-key": 1 });
        let message = serde_json::from_value::<NodeKeys>(unknown).err().map(|e| e.to_string()).unwrap_or_default();
        let listed = NODE_KEYS.map(|key| format!("`{key}`")).join(", ");
        assert!(message.contains(&format!("expected one of {listed}")), "{message}");
    }

    #[test]
    fn node_keys_and_plugin_settings_come_from_one_map() {
        let config = WasmProcessorConfig::from_value(&serde_json::json!({
            "component": "redact.wasm",
            "output": "otlp",
            "config": { "keys": ["user.email"] },
            "limits": { "timeout": "250ms", "max_memory": "32MiB" },
            "on_error": "drop",
        }))
        .unwrap();
        assert_eq!(config.component, "redact.wasm");
        assert_eq!(config.output, OutputForm::Otlp);
        assert_eq!(config.plugin.config, serde_json::json!({ "keys": ["user.email"] }));
        assert_eq!(config.plugin.limits.timeout, std::time::Duration::from_millis(250));
        assert_eq!(config.plugin.on_error, Some(wasmtel_runtime::OnError::Drop));
    }

    #[test]
    fn unknown_and_invalid_keys_are_named() {
        let error = |value| WasmProcessorConfig::from_value(&value).unwrap_err().to_string();
        let unknown = error(serde_json::json!({ "component": "a.wasm", "limit": {} }));
        assert!(unknown.contains(WASM_PROCESSOR_URN) && unknown.contains("`limit`"), "{unknown}");
        let invalid = error(serde_json::json!({ "component": "a.wasm", "limits": { "max_memory": "lots" } }));
        assert!(invalid.contains("limits.max_memory"), "{invalid}");
        let missing = error(serde_json::json!({ "config": {} }));
        assert!(missing.contains("`component`"), "{missing}");
        assert!(error(serde_json::json!(["a.wasm"])).contains("expected a map"));
    }
}
