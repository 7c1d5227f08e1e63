//! What `wasmtel serve` and the embedded pipeline do to an engine spec
//! before the engine sees it (one preparation for both):
//! - relative `component` paths of wasm nodes resolve against the spec
//!   file's directory (when there is one);
//! - registry references (`oci://…:tag`, store `name:tag`) resolve once, here,
//!   and the node is pinned to what they resolved to: the engine builds a node
//!   once per core, and every core must run the same component even if the
//!   tag moves meanwhile (the compiled component is then shared too);
//! - `engine.custom.wasmtel.runtime` gives the shared wasm runtime's settings;
//! - request `headers` of any node (the gRPC exporters' `authorization`, say)
//!   may be written `${file:PATH}` (the file's content, trailing newline
//!   removed; relative to the spec file's directory) or `${env:NAME}`, also
//!   inside a longer value (`Bearer ${file:token}`), so the secret stays out of
//!   the spec; any other `${…}` in a header is an error. Errors name the node
//!   and header, never the value.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
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
    /// A header value's `${file:…}` or `${env:…}` cannot be read.
    #[error("node {node}: headers.{header}: {reason}")]
    Secret {
        /// The node's name in the spec.
        node: String,
        /// The header's name.
        header: String,
        /// What could not be read (the reference, never the secret).
        reason: String,
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
        if result.is_err() {
            return;
        }
        result = expand_headers(name, node, base);
        if result.is_ok() && node.get("type").and_then(Value::as_str) == Some(WASM_PROCESSOR_URN) {
            result = pin_component(name, node, base);
        }
    });
    result?;
    match spec.pointer("/engine/custom/wasmtel/runtime") {
        Some(value) => serde_json::from_value(value.clone()).map_err(SpecError::Runtime),
        None => Ok(RuntimeConfig::default()),
    }
}

/// Replaces `${file:PATH}` and `${env:NAME}` in a node's `config.headers`
/// values. The result's `$` are doubled: the engine's own `${env:…}` pass over
/// the spec text turns `$$` back into `$` and leaves the secret otherwise alone.
fn expand_headers(name: &str, node: &mut Value, base: Option<&Path>) -> Result<(), SpecError> {
    let Some(headers) = node.pointer_mut("/config/headers").and_then(Value::as_object_mut) else { return Ok(()) };
    for (header, value) in headers.iter_mut() {
        let Some(text) = value.as_str() else { continue };
        if !text.contains("${") {
            continue;
        }
        let secret = |reason: String| SpecError::Secret { node: name.to_string(), header: header.clone(), reason };
        let mut expanded = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            expanded.push_str(&rest[..start].replace('$', "$$"));
            let Some(end) = rest[start..].find('}') else {
                return Err(secret("an unclosed ${".into()));
            };
            let reference = &rest[start + 2..start + end];
            let resolved = match reference.split_once(':') {
                Some(("file", path)) => {
                    let path = match base {
                        Some(base) if Path::new(path).is_relative() => base.join(path),
                        _ => Path::new(path).to_path_buf(),
                    };
                    let content = std::fs::read_to_string(&path)
                        .map_err(|e| secret(format!("cannot read {}: {e}", path.display())))?;
                    content.trim_end_matches(['\n', '\r']).to_string()
                }
                Some(("env", variable)) => {
                    std::env::var(variable).map_err(|e| secret(format!("environment variable {variable}: {e}")))?
                }
                _ => return Err(secret(format!("${{{reference}}} is neither ${{file:PATH}} nor ${{env:NAME}}"))),
            };
            if resolved.is_empty() || resolved.contains(['\n', '\r']) {
                return Err(secret(format!("${{{reference}}} is empty or spans several lines")));
            }
            expanded.push_str(&resolved.replace('$', "$$"));
            rest = &rest[start + end + 1..];
        }
        expanded.push_str(&rest.replace('$', "$$"));
        *value = Value::String(expanded);
    }
    Ok(())
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

/// Has every wasmtel node of the spec post to the dashboard board `board`
/// (their `status_board` key) and records each pipeline's nodes in flow order.
pub fn post_to_board(spec: &mut Value, board: &str) {
    for_each_node(spec, |_, node| {
        let posts = matches!(
            node.get("type").and_then(Value::as_str),
            Some(crate::WASM_PROCESSOR_URN | crate::CIRCUIT_BREAKER_URN | crate::ARROW_IPC_EXPORTER_URN)
        );
        let config = node.as_object_mut().map(|n| n.entry("config").or_insert_with(|| json!({})));
        if posts && let Some(config) = config.and_then(Value::as_object_mut) {
            config.insert("status_board".into(), json!(board));
        }
    });
    let order = flow_order(spec);
    let hide_records = spec.pointer("/engine/custom/wasmtel/dashboard/records") == Some(&Value::Bool(false));
    crate::dashboard::board::with(board, |b| {
        b.order = order;
        b.hide_records = hide_records;
    });
}

/// `group/pipeline` → its nodes, sources first, each after every node that
/// feeds it (longest path from a source; ties by name).
fn flow_order(spec: &Value) -> BTreeMap<String, Vec<String>> {
    let names = |value: Option<&Value>| -> Vec<String> {
        match value {
            Some(Value::String(name)) => vec![name.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    };
    let mut order = BTreeMap::new();
    let Some(groups) = spec.get("groups").and_then(Value::as_object) else { return order };
    for (group_id, group) in groups {
        let Some(pipelines) = group.get("pipelines").and_then(Value::as_object) else { continue };
        for (pipeline_id, pipeline) in pipelines {
            let nodes: Vec<String> = pipeline
                .get("nodes")
                .and_then(Value::as_object)
                .map(|n| n.keys().cloned().collect())
                .unwrap_or_default();
            let edges: Vec<(String, String)> = pipeline
                .get("connections")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| {
                    let to = names(c.get("to"));
                    names(c.get("from"))
                        .into_iter()
                        .flat_map(move |from| to.clone().into_iter().map(move |to| (from.clone(), to)))
                })
                .collect();
            // Longest-path depth; a cycle (which the engine refuses) stops after `nodes.len()` rounds.
            let mut depth: BTreeMap<&str, usize> = nodes.iter().map(|n| (n.as_str(), 0)).collect();
            for _ in 0..nodes.len() {
                let mut changed = false;
                for (from, to) in &edges {
                    let next = depth.get(from.as_str()).copied().unwrap_or(0) + 1;
                    if let Some(d) = depth.get_mut(to.as_str())
                        && *d < next
                    {
                        *d = next;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            let mut ordered = nodes.clone();
            ordered.sort_by_key(|n| (depth.get(n.as_str()).copied().unwrap_or(0), n.clone()));
            order.insert(format!("{group_id}/{pipeline_id}"), ordered);
        }
    }
    order
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
    fn nodes_are_ordered_by_flow_and_wasmtel_nodes_post_to_the_board() {
        let mut spec = json!({ "groups": { "g": { "pipelines": { "p": {
            "nodes": {
                "a_exporter": { "type": crate::ARROW_IPC_EXPORTER_URN, "config": { "directory": "x" } },
                "filter": { "type": WASM_PROCESSOR_URN, "config": { "component": "f.wasm" } },
                "otlp": { "type": "receiver:otlp" },
                "redact": { "type": WASM_PROCESSOR_URN, "config": { "component": "r.wasm" } },
                "breaker": { "type": crate::CIRCUIT_BREAKER_URN },
            },
            "connections": [
                { "from": "otlp", "to": ["redact"] },
                { "from": ["redact"], "to": "filter" },
                { "from": "filter", "to": "breaker" },
                { "from": "breaker", "to": "a_exporter" },
            ],
        } } } } });
        post_to_board(&mut spec, "spec-test");
        let order = crate::dashboard::board::with("spec-test", |b| b.order.clone());
        assert_eq!(order["g/p"], ["otlp", "redact", "filter", "breaker", "a_exporter"]);
        let board_of =
            |node: &str| spec.pointer(&format!("/groups/g/pipelines/p/nodes/{node}/config/status_board")).cloned();
        for node in ["a_exporter", "filter", "redact", "breaker"] {
            assert_eq!(board_of(node), Some(json!("spec-test")), "{node}");
        }
        assert_eq!(board_of("otlp"), None);
        crate::dashboard::board::clear("spec-test");
    }

    #[test]
    #[allow(unsafe_code, reason = "set_var: no other test touches this variable")]
    fn header_secrets_come_from_files_and_the_environment_and_survive_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cr\"et$$x\n").unwrap();
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("WASMTEL_SPEC_TEST_KEY", "k$y") };
        let mut spec = json!({
            "version": "otel_dataflow/v1",
            "groups": { "g": { "pipelines": { "p": {
                "nodes": {
                    "otlp": { "type": "receiver:otlp", "config": { "protocols": { "grpc": { "listening_addr": "127.0.0.1:1" } } } },
                    "up": { "type": "exporter:otlp_grpc", "config": {
                        "grpc_endpoint": "https://upstream:4317",
                        "headers": { "authorization": "Bearer ${file:token}", "x-api-key": "${env:WASMTEL_SPEC_TEST_KEY}", "plain": "a$b" },
                    } },
                },
                "connections": [{ "from": "otlp", "to": "up" }],
            } } } },
        });
        prepare(&mut spec, Some(dir.path())).unwrap();
        let headers = spec.pointer("/groups/g/pipelines/p/nodes/up/config/headers").unwrap().clone();
        assert_eq!(headers["authorization"], "Bearer s3cr\"et$$$$x");
        assert_eq!(headers["x-api-key"], "k$$y");
        assert_eq!(headers["plain"], "a$b", "values without references stay as written");
        // The engine's own pass turns the doubled `$` back: the secret arrives as written.
        let engine = serde_json::to_value(to_engine_spec(&spec).unwrap()).unwrap();
        let engine_headers = engine.pointer("/groups/g/pipelines/p/nodes/up/config/headers").unwrap();
        assert_eq!(engine_headers["authorization"], "Bearer s3cr\"et$$x");
        assert_eq!(engine_headers["x-api-key"], "k$y");

        for (value, expected) in [
            ("${file:missing}", "cannot read"),
            ("${env:WASMTEL_SPEC_TEST_UNSET}", "WASMTEL_SPEC_TEST_UNSET"),
            ("${vault:x}", "neither"),
            ("Bearer ${file:token", "unclosed"),
        ] {
            spec["groups"]["g"]["pipelines"]["p"]["nodes"]["up"]["config"]["headers"] =
                json!({ "authorization": value });
            let error = prepare(&mut spec, Some(dir.path())).unwrap_err().to_string();
            assert!(error.starts_with("node up: headers.authorization: ") && error.contains(expected), "{error}");
        }
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
