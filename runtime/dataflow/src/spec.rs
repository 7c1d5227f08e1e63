//! What `wasmtel serve` and the embedded pipeline do to an engine spec
//! before the engine sees it (one preparation for both):
//! - relative `component` paths of wasm nodes resolve against the spec
//!   file's directory (when there is one);
//! - registry references (`oci://…:tag`, store `name:tag`) resolve once, here,
//!   and the node is pinned to what they resolved to: the engine builds a node
//!   once per core, and every core must run the same component even if the
//!   tag moves meanwhile (the compiled component is then shared too);
//! - `engine.custom.wasmtel.runtime` gives the shared wasm runtime's settings.

use std::path::Path;

use serde_json::Value;
use wasmtel_registry::{Digest, Policy, Reference, RegistryError};
use wasmtel_runtime::RuntimeConfig;

use crate::WASM_PROCESSOR_URN;

/// Why a pipeline spec cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The text is not YAML (or JSON).
    #[error("not YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// A part of the spec has the wrong shape (`what` names it).
    #[error("{what} must be a mapping")]
    NotAMapping {
        /// The part of the spec, e.g. `` `engine` ``.
        what: &'static str,
    },
    /// No `urn:wasmtel:receiver:embedded` node for an embedded pipeline to feed.
    #[error("the spec has no {} node to feed", crate::EMBEDDED_RECEIVER_URN)]
    NoEmbeddedReceiver,
    /// The engine refused the spec.
    #[error("{0}")]
    Engine(#[source] Box<otel_arrow_dfe_config::error::Error>),
    /// A node's configuration failed the engine's validation (which builds
    /// every node: a wasm node loads its plugin there).
    #[error("{0}")]
    Nodes(String),
    /// `engine.custom.wasmtel.runtime` is not the runtime's settings.
    #[error("engine.custom.wasmtel.runtime: {0}")]
    Runtime(#[source] serde_json::Error),
    /// A wasm node's `registry` policy does not parse.
    #[error("node {node}: registry: {source}")]
    Policy {
        /// The node's name in the spec.
        node: String,
        /// What serde found wrong.
        source: serde_json::Error,
    },
    /// A wasm node's registry reference did not resolve.
    #[error("node {node}: {source}")]
    Resolve {
        /// The node's name in the spec.
        node: String,
        /// The registry's reason.
        source: Box<RegistryError>,
    },
}

/// The engine's spec type from the prepared value.
pub fn to_engine_spec(spec: &Value) -> Result<otel_arrow_dfe_config::engine::OtelDataflowSpec, SpecError> {
    otel_arrow_dfe_config::engine::OtelDataflowSpec::from_json(&spec.to_string())
        .map_err(|e| SpecError::Engine(Box::new(e)))
}

/// Rewrites `spec` as the module says; returns the runtime settings.
pub fn prepare(spec: &mut Value, base: Option<&Path>) -> Result<RuntimeConfig, SpecError> {
    let mut result = Ok(());
    for_each_node(spec, |name, node| {
        if result.is_err() || node.get("type").and_then(Value::as_str) != Some(WASM_PROCESSOR_URN) {
            return;
        }
        result = pin_component(name, node, base);
    });
    result?;
    match spec.pointer("/engine/custom/wasmtel/runtime") {
        Some(value) => serde_json::from_value(value.clone()).map_err(SpecError::Runtime),
        None => Ok(RuntimeConfig::default()),
    }
}

/// Makes a wasm node's `component` absolute (paths) or pinned (references).
fn pin_component(name: &str, node: &mut Value, base: Option<&Path>) -> Result<(), SpecError> {
    let policy = match node.pointer("/config/registry") {
        Some(value) => serde_json::from_value::<Policy>(value.clone())
            .map_err(|source| SpecError::Policy { node: name.to_string(), source })?,
        None => Policy::default(),
    };
    let Some(component) = node.pointer_mut("/config/component") else { return Ok(()) };
    let Some(reference) = component.as_str().map(str::to_string) else { return Ok(()) };
    let resolve = || {
        wasmtel_registry::resolve(&reference, &policy)
            .map_err(|source| SpecError::Resolve { node: name.to_string(), source: Box::new(source) })
    };
    let pinned = match Reference::parse(&reference) {
        // Only paths are relative to the spec.
        Ok(Reference::Path(path)) if path.is_relative() => base.map(|base| base.join(path).display().to_string()),
        Ok(Reference::Oci(oci)) if oci.digest.is_none() => {
            resolve()?.manifest_digest.and_then(|d| Digest::parse(&d).ok()).map(|d| oci.pinned(&d).to_string())
        }
        // A bare digest proves no signature: a store name that must be signed stays as written.
        Ok(Reference::Local { .. }) if !policy.require_signature => resolve()?.digest,
        // Pinned already, a path, or not a reference (the node reports that).
        _ => None,
    };
    if let Some(pinned) = pinned {
        tracing::debug!(node = name, reference, pinned, "component pinned for every core");
        *component = Value::String(pinned);
    }
    Ok(())
}

/// Calls `f` with the name and object of every node under
/// `groups.*.pipelines.*.nodes`.
pub(crate) fn for_each_node(spec: &mut Value, mut f: impl FnMut(&str, &mut Value)) {
    let Some(groups) = spec.get_mut("groups").and_then(Value::as_object_mut) else { return };
    for group in groups.values_mut() {
        let Some(pipelines) = group.get_mut("pipelines").and_then(Value::as_object_mut) else { continue };
        for pipeline in pipelines.values_mut() {
            let Some(nodes) = pipeline.get_mut("nodes").and_then(Value::as_object_mut) else { continue };
            for (name, node) in nodes.iter_mut() {
                f(name, node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmtel_registry::Resolver;
    use wasmtel_tests::component;

    use super::*;

    fn spec(component: &str, store: &Path) -> Value {
        json!({
            "engine": { "custom": { "wasmtel": { "runtime": { "max_total_instances": 7 } } } },
            "groups": { "g": { "pipelines": { "p": { "nodes": {
                "redact": { "type": WASM_PROCESSOR_URN, "config": { "component": component, "registry": { "store": store } } },
                "local": { "type": WASM_PROCESSOR_URN, "config": { "component": "plugins/filter.wasm" } },
                "other": { "type": "urn:otel:processor:batch", "config": { "component": "untouched.wasm" } },
            } } } } }
        })
    }

    fn component_of(spec: &Value, node: &str) -> String {
        spec.pointer(&format!("/groups/g/pipelines/p/nodes/{node}/config/component")).unwrap().as_str().unwrap().into()
    }

    #[test]
    fn a_tag_is_pinned_once_for_every_core_and_paths_follow_the_spec_file() {
        let store = tempfile::tempdir().unwrap();
        let policy = Policy { store: Some(store.path().to_path_buf()), ..Default::default() };
        let resolver = Resolver::new(policy.clone()).unwrap();
        resolver.push(&component("wasmtel-test-identity"), "plugins/redact:stable").unwrap();

        let mut first = spec("plugins/redact:stable", store.path());
        let runtime = prepare(&mut first, Some(Path::new("/etc/wasmtel"))).unwrap();
        assert_eq!(runtime.max_total_instances, 7);
        let pinned = component_of(&first, "redact");
        assert!(pinned.starts_with("sha256:"), "{pinned}");
        assert_eq!(component_of(&first, "local"), "/etc/wasmtel/plugins/filter.wasm");
        assert_eq!(component_of(&first, "other"), "untouched.wasm");

        // The tag moves after the spec was prepared: what the nodes load does not.
        resolver.push(&component("wasmtel-test-hostile"), "plugins/redact:stable").unwrap();
        let loaded = wasmtel_registry::resolve(&pinned, &policy).unwrap();
        assert_eq!(loaded.digest.as_deref(), Some(pinned.as_str()));
        let mut second = spec("plugins/redact:stable", store.path());
        prepare(&mut second, None).unwrap();
        assert_ne!(component_of(&second, "redact"), pinned, "a new preparation sees the moved tag");
        assert_eq!(component_of(&second, "local"), "plugins/filter.wasm", "no spec file: paths stay as written");
    }

    #[test]
    fn what_cannot_be_prepared_names_the_node_or_the_setting() {
        let store = tempfile::tempdir().unwrap();
        let mut missing = spec("plugins/ghost:v1", store.path());
        let error = prepare(&mut missing, None).unwrap_err();
        assert!(matches!(&error, SpecError::Resolve { node, .. } if node == "redact"), "{error}");

        let mut bad_runtime = spec("plugins/ghost:v1", store.path());
        bad_runtime["engine"]["custom"]["wasmtel"]["runtime"] = json!({ "max_total_instances": "many" });
        bad_runtime["groups"]["g"]["pipelines"]["p"]["nodes"]["redact"]["config"]["component"] = json!("/abs/x.wasm");
        assert!(matches!(prepare(&mut bad_runtime, None), Err(SpecError::Runtime(_))));
    }
}
