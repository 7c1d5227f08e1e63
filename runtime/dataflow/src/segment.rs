//! The Rust part of a Go collector pipeline: its Rust processors and Rust
//! exporters as one otap-dataflow pipeline, fed the OTLP bytes pdata marshals.
//!
//! The collector's segment exporters (`go/wasmprocessor`) describe a segment with a
//! [`SegmentSpec`]: the component IDs, node types and settings of the
//! processors (run in order) and exporters (every one gets every batch) it
//! holds. The segment is an [`EmbeddedPipeline`] built from it:
//!
//! ```text
//! ingress (embedded receiver) → processors… → exporter              (one exporter)
//!                                           → fanout → exporters…   (several: each must Ack)
//! ```
//!
//! A segment with `reply` also hands every batch back ([`Segment::next_output`],
//! through the embedded exporter `egress`): a segment before Go components.
//! Rust receivers (a collector receiver) feed the processors beside the
//! ingress; what they receive comes back the same way.
//!
//! A batch crosses from Go once; the guests see OTLP; the first node that
//! needs OTAP converts it once. [`Segment::export`] returns when every
//! exporter has acknowledged the batch, or with the first refusal (permanent
//! or retryable kept), so the collector's `Consume*` answers for delivery.
//!
//! [`factories`] lists every node type compiled in, and [`validate_node`]
//! runs a type's own config validation: the collector's `Validate` comes from
//! the Rust factory, not from a copy of its settings in Go.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use otel_arrow_dfe_core_nodes::processors::fanout_processor::FANOUT_PROCESSOR_URN;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use wasmtel_runtime::{MetricsSnapshot, Signal};

use crate::{EmbeddedError, EmbeddedPipeline, EmbeddedStats, NodeMetric, OTAP_PIPELINE_FACTORY};

/// What kind of node a factory makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Takes telemetry in from outside.
    Receiver,
    /// Transforms, filters or routes batches.
    Processor,
    /// Sends batches out of the pipeline.
    Exporter,
    /// Serves the other nodes (auth, storage).
    Extension,
}

impl NodeKind {
    /// The kind's word in URNs (`urn:<namespace>:<kind>:<id>`).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Receiver => "receiver",
            NodeKind::Processor => "processor",
            NodeKind::Exporter => "exporter",
            NodeKind::Extension => "extension",
        }
    }
}

/// A node type compiled into this build.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FactoryInfo {
    /// Its kind.
    pub kind: NodeKind,
    /// Its component type in a collector configuration: the URN's last part.
    #[serde(rename = "type")]
    pub component_type: String,
    /// Its node type in an engine spec.
    pub urn: String,
    /// Whether it validates with no settings at all, so a collector
    /// configuration may name it without a block of its own.
    pub empty_config_valid: bool,
    /// A processor that sends each batch to one of several named outputs: a
    /// connector in collector terms, so it has no place in a collector
    /// pipeline (nor in a segment, which is a straight line).
    pub routes: bool,
    /// The engine's own wiring, not a component to configure: the
    /// application's ends of an embedded pipeline (its ingress and egress)
    /// and the source of the engine's own telemetry.
    pub plumbing: bool,
}

/// The processors that route among named outputs (the engine's factory
/// does not say, so this list does).
const ROUTERS: [&str; 3] =
    [FANOUT_PROCESSOR_URN, "urn:otel:processor:type_router", "urn:otel:processor:content_router"];

/// The engine's own wiring: a segment's ends, and the source of the
/// engine's own telemetry (a collector has its own).
fn plumbing(urn: &str) -> bool {
    [crate::EMBEDDED_RECEIVER_URN, crate::EMBEDDED_EXPORTER_URN, INTERNAL_TELEMETRY_RECEIVER_URN].contains(&urn)
}

const INTERNAL_TELEMETRY_RECEIVER_URN: &str = "urn:otel:receiver:internal_telemetry";

fn routes(kind: NodeKind, urn: &str) -> bool {
    kind == NodeKind::Processor && ROUTERS.contains(&urn)
}

/// Every node type of the otap-dataflow pipeline factory (the engine's core
/// nodes and ours), sorted by kind and type.
pub fn factories() -> Vec<FactoryInfo> {
    let factory = &OTAP_PIPELINE_FACTORY;
    let mut all = Vec::new();
    let mut add = |kind, urn: &str, validate: fn(&Value) -> Result<(), otel_arrow_dfe_config::error::Error>| {
        all.push(FactoryInfo {
            kind,
            component_type: component_type(urn).to_string(),
            urn: urn.to_string(),
            empty_config_valid: validate(&json!({})).is_ok(),
            routes: routes(kind, urn),
            plumbing: plumbing(urn),
        });
    };
    for (urn, f) in factory.get_receiver_factory_map() {
        add(NodeKind::Receiver, urn, f.validate_config);
    }
    for (urn, f) in factory.get_processor_factory_map() {
        add(NodeKind::Processor, urn, f.validate_config);
    }
    for (urn, f) in factory.get_exporter_factory_map() {
        add(NodeKind::Exporter, urn, f.validate_config);
    }
    for (urn, f) in factory.get_extension_factory_map() {
        add(NodeKind::Extension, urn, f.validate_config);
    }
    all.sort();
    all
}

fn component_type(urn: &str) -> &str {
    urn.rsplit(':').next().unwrap_or(urn)
}

/// Why a node's settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// No factory of that kind has that type.
    #[error("no Rust {kind} of type {urn:?} in this build")]
    UnknownType {
        /// The kind looked in.
        kind: &'static str,
        /// The type asked for.
        urn: String,
    },
    /// The factory's validation refused the settings (the message names the key).
    #[error("{0}")]
    Invalid(String),
}

/// Runs the node type's own validation on `config` (a JSON object; `null`
/// for no settings). For the wasm node it checks the settings only: its
/// factory's check also loads the component, which the collector does once,
/// when it creates the processor (and a segment, when it starts).
pub fn validate_node(kind: NodeKind, urn: &str, config: &Value) -> Result<(), NodeConfigError> {
    if kind == NodeKind::Processor && urn == crate::WASM_PROCESSOR_URN {
        return crate::wasm_processor::WasmProcessorConfig::from_value(config)
            .map(drop)
            .map_err(|e| NodeConfigError::Invalid(config_message(urn, e)));
    }
    let factory = &OTAP_PIPELINE_FACTORY;
    let validate = match kind {
        NodeKind::Receiver => factory.get_receiver_factory_map().get(urn).map(|f| f.validate_config),
        NodeKind::Processor => factory.get_processor_factory_map().get(urn).map(|f| f.validate_config),
        NodeKind::Exporter => factory.get_exporter_factory_map().get(urn).map(|f| f.validate_config),
        NodeKind::Extension => factory.get_extension_factory_map().get(urn).map(|f| f.validate_config),
    };
    let validate = validate.ok_or_else(|| NodeConfigError::UnknownType { kind: kind.as_str(), urn: urn.into() })?;
    validate(config).map_err(|e| NodeConfigError::Invalid(config_message(urn, e)))
}

/// The engine's error without its generic prefix nor the node type (some
/// factories name it): the collector adds the component ID.
fn config_message(urn: &str, error: otel_arrow_dfe_config::error::Error) -> String {
    let message = match error {
        otel_arrow_dfe_config::error::Error::InvalidUserConfig { error } => error,
        other => other.to_string(),
    };
    match message.strip_prefix(urn).and_then(|rest| rest.strip_prefix(": ")) {
        Some(rest) => rest.to_string(),
        None => message,
    }
}

/// One collector component of a segment.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentNode {
    /// Its collector component ID (`wasm/redact`, `arrow_ipc`, …).
    pub id: String,
    /// Its node type (URN).
    #[serde(rename = "type")]
    pub urn: String,
    /// Its settings, as the node type reads them.
    #[serde(default)]
    pub config: Value,
}

/// The Rust part of a collector pipeline.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// The collector component that runs the segment (errors, logs).
    pub id: String,
    /// Feed the processors beside the ingress (a collector receiver).
    #[serde(default)]
    pub receivers: Vec<SegmentNode>,
    /// Run in order on every batch.
    #[serde(default)]
    pub processors: Vec<SegmentNode>,
    /// Each gets every batch the processors let through.
    #[serde(default)]
    pub exporters: Vec<SegmentNode>,
    /// Hand every batch the processors let through back to the caller too
    /// ([`Segment::next_output`]): the segment ends in Go components. A
    /// segment needs exporters, a reply, or both.
    #[serde(default)]
    pub reply: bool,
}

/// Why a segment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The description itself is malformed.
    #[error("segment description: {0}")]
    Spec(#[from] serde_json::Error),
    /// A segment needs somewhere to send batches.
    #[error("segment {0}: no exporter and no reply")]
    NoExporter(String),
    /// Two members share an ID.
    #[error("segment {segment}: {id} appears twice")]
    Duplicate {
        /// The segment.
        segment: String,
        /// The repeated member.
        id: String,
    },
    /// A segment's own ends (the embedded receiver and exporter) and the
    /// engine's own telemetry source are not members.
    #[error("{0}: not a component a segment can hold")]
    Plumbing(String),
    /// A router has several outputs; a segment is a straight line.
    #[error("{0}: a routing processor has no place in a segment (in a collector, routing is a connector's job)")]
    Router(String),
    /// A member's settings were refused by its factory.
    #[error("{id}: {source}")]
    Node {
        /// The member's component ID.
        id: String,
        /// Why.
        source: NodeConfigError,
    },
    /// The engine did not start the pipeline.
    #[error("segment {id}: {source}")]
    Start {
        /// The segment.
        id: String,
        /// Why.
        source: EmbeddedError,
    },
}

const INGRESS: &str = "ingress";
/// How long [`Segment::start`] waits for its members' metric sets.
const MEMBER_METRICS_WAIT: Duration = Duration::from_secs(5);
const FANOUT: &str = "fanout";
const EGRESS: &str = "egress";

impl SegmentSpec {
    /// Parses a description (the collector sends JSON).
    pub fn from_json(json: &str) -> Result<Self, SegmentError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Checks every member with its factory's validation, naming the member.
    pub fn validate(&self) -> Result<(), SegmentError> {
        if self.exporters.is_empty() && !self.reply {
            return Err(SegmentError::NoExporter(self.id.clone()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (kind, node) in self.members() {
            if !seen.insert(node.node_name()) {
                return Err(SegmentError::Duplicate { segment: self.id.clone(), id: node.id.clone() });
            }
            if routes(kind, &node.urn) {
                return Err(SegmentError::Router(node.id.clone()));
            }
            if plumbing(&node.urn) {
                return Err(SegmentError::Plumbing(node.id.clone()));
            }
            validate_node(kind, &node.urn, &node.config)
                .map_err(|source| SegmentError::Node { id: node.id.clone(), source })?;
        }
        Ok(())
    }

    /// Every member with its kind: receivers, processors, exporters.
    fn members(&self) -> impl Iterator<Item = (NodeKind, &SegmentNode)> {
        let receivers = self.receivers.iter().map(|n| (NodeKind::Receiver, n));
        let processors = self.processors.iter().map(|n| (NodeKind::Processor, n));
        receivers.chain(processors).chain(self.exporters.iter().map(|n| (NodeKind::Exporter, n)))
    }

    /// The engine spec: one pipeline on one core, `ingress (+ receivers) →
    /// processors → exporters (+ egress)`.
    pub fn engine_spec(&self) -> Value {
        let mut nodes = Map::new();
        let mut connections = Vec::new();
        nodes.insert(INGRESS.into(), json!({ "type": crate::EMBEDDED_RECEIVER_URN }));
        let mut sources = vec![INGRESS.to_string()];
        for node in &self.receivers {
            nodes.insert(node.node_name(), node.engine_node());
            sources.push(node.node_name());
        }
        // Receivers join the ingress (fan-in); after them it is a straight line.
        let mut previous = if let [only] = sources.as_slice() { json!(only) } else { json!(sources) };
        for node in &self.processors {
            let name = node.node_name();
            nodes.insert(name.clone(), node.engine_node());
            connections.push(json!({ "from": previous, "to": name }));
            previous = json!(name);
        }
        let mut outputs: Vec<(String, Value)> =
            self.exporters.iter().map(|e| (e.node_name(), e.engine_node())).collect();
        if self.reply {
            outputs.push((EGRESS.into(), json!({ "type": crate::EMBEDDED_EXPORTER_URN })));
        }
        if let [(name, node)] = outputs.as_slice() {
            nodes.insert(name.clone(), node.clone());
            connections.push(json!({ "from": previous, "to": name }));
        } else {
            // Every output gets every batch; the batch is acknowledged once
            // all of them have (the collector's fan-out semantics).
            let ports: Vec<&String> = outputs.iter().map(|(name, _)| name).collect();
            let destinations: Vec<Value> = ports.iter().map(|port| json!({ "port": port })).collect();
            nodes.insert(
                FANOUT.into(),
                json!({ "type": FANOUT_PROCESSOR_URN, "outputs": ports, "config": { "mode": "parallel", "await_ack": "all", "destinations": destinations } }),
            );
            connections.push(json!({ "from": previous, "to": FANOUT }));
            for (port, node) in outputs {
                connections.push(json!({ "from": format!("{FANOUT}[\"{port}\"]"), "to": port }));
                nodes.insert(port, node);
            }
        }
        json!({
            "version": "otel_dataflow/v1",
            "policies": { "resources": { "core_allocation": { "type": "core_count", "count": 1 } } },
            "groups": { "collector": { "pipelines": { "segment": { "nodes": nodes, "connections": connections } } } },
        })
    }
}

impl SegmentNode {
    /// Engine node names allow what collector IDs allow except `/`.
    fn node_name(&self) -> String {
        self.id.replace('/', "__")
    }

    fn engine_node(&self) -> Value {
        let mut config = self.config.clone();
        // The wasm node logs, errs and counts under the collector's ID.
        if self.urn == crate::WASM_PROCESSOR_URN
            && let Some(settings) = config.as_object_mut()
        {
            settings.entry("name").or_insert_with(|| json!(self.id));
        }
        if config.is_null() { json!({ "type": self.urn }) } else { json!({ "type": self.urn, "config": config }) }
    }
}

/// A running segment.
pub struct Segment {
    id: String,
    pipeline: EmbeddedPipeline,
    /// Engine node name → collector component ID, for every member.
    member_ids: BTreeMap<String, String>,
    /// The node names of the wasm processors.
    wasm_nodes: Vec<String>,
}

/// What a segment reports about its members, by collector component ID.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentMetrics {
    /// Each wasm processor's plugin metrics.
    pub plugins: BTreeMap<String, MetricsSnapshot>,
    /// Every member's own engine metrics; `node` is its component ID.
    pub nodes: Vec<NodeMetric>,
}

impl Segment {
    /// Validates `spec` and starts its pipeline.
    pub fn start(spec: &SegmentSpec) -> Result<Self, SegmentError> {
        spec.validate()?;
        let pipeline = EmbeddedPipeline::start(spec.engine_spec())
            .map_err(|source| SegmentError::Start { id: spec.id.clone(), source })?;
        let member_ids = spec.members().map(|(_, node)| (node.node_name(), node.id.clone())).collect();
        let wasm_nodes = spec
            .processors
            .iter()
            .filter(|node| node.urn == crate::WASM_PROCESSOR_URN)
            .map(SegmentNode::node_name)
            .collect();
        let segment = Segment { id: spec.id.clone(), pipeline, member_ids, wasm_nodes };
        segment.wait_for_member_metrics(MEMBER_METRICS_WAIT);
        Ok(segment)
    }

    /// The engine registers a node's metric sets shortly after the pipeline
    /// starts; waiting for them lets the collector make its instruments at
    /// start-up, from the names they have. Gives up quietly after `bound`
    /// (the metrics then appear when they do; the segment works either way).
    fn wait_for_member_metrics(&self, bound: Duration) {
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            let reporting: std::collections::BTreeSet<String> =
                self.pipeline.node_metrics().into_iter().map(|m| m.node).collect();
            if self.member_ids.keys().all(|node| reporting.contains(node)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its members' metrics, by collector component ID (the ingress and the
    /// fan-out are the segment's plumbing, not members).
    pub fn metrics(&self) -> SegmentMetrics {
        let plugins = self
            .pipeline
            .plugin_metrics()
            .into_iter()
            .filter(|(node, _)| self.wasm_nodes.contains(node))
            .filter_map(|(node, metrics)| self.member_ids.get(&node).map(|id| (id.clone(), metrics)))
            .collect();
        let nodes = self
            .pipeline
            .node_metrics()
            .into_iter()
            .filter_map(|metric| {
                let id = self.member_ids.get(&metric.node)?;
                Some(NodeMetric { node: id.clone(), ..metric })
            })
            .collect();
        SegmentMetrics { plugins, nodes }
    }

    /// The collector component that runs it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Hands over one OTLP request and waits (at most `budget`) until every
    /// exporter has acknowledged it or one refused it.
    pub fn export(&self, signal: Signal, otlp: Bytes, budget: Duration) -> Result<(), EmbeddedError> {
        self.pipeline.export_within(signal, otlp, budget)
    }

    /// The next batch the processors let through, for the caller to pass on
    /// (a segment with `reply`), waiting at most `timeout`. The batch's
    /// [`Segment::export`] returns once it is answered.
    pub fn next_output(&self, timeout: Duration) -> Option<crate::Output> {
        self.pipeline.next_output(timeout)
    }

    /// Refuses new batches, lets those in flight finish (within `timeout`),
    /// flushes the exporters and stops.
    pub fn shutdown(&self, timeout: Duration) -> Result<EmbeddedStats, EmbeddedError> {
        self.pipeline.close(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, urn: &str, config: Value) -> SegmentNode {
        SegmentNode { id: id.into(), urn: urn.into(), config }
    }

    #[test]
    fn every_kind_of_factory_is_listed_with_its_collector_type() {
        let all = factories();
        let find = |kind, ty: &str| all.iter().find(|f| f.kind == kind && f.component_type == ty);
        assert_eq!(find(NodeKind::Exporter, "arrow_ipc").map(|f| f.urn.as_str()), Some(crate::ARROW_IPC_EXPORTER_URN));
        assert!(find(NodeKind::Exporter, "otap").is_some());
        assert!(find(NodeKind::Processor, "wasm").is_some_and(|f| !f.empty_config_valid), "wasm needs a component");
        assert!(find(NodeKind::Receiver, "otlp").is_some());
        assert!(find(NodeKind::Processor, "type_router").is_some_and(|f| f.routes));
        assert!(find(NodeKind::Processor, "batch").is_some_and(|f| !f.routes && !f.plumbing));
        assert!(find(NodeKind::Exporter, "embedded").is_some_and(|f| f.plumbing));
        assert!(ROUTERS.iter().all(|urn| all.iter().any(|f| &f.urn == urn)), "every router is compiled in");
    }

    #[test]
    fn validation_is_the_factorys_and_names_the_key() {
        let unknown = validate_node(NodeKind::Exporter, crate::ARROW_IPC_EXPORTER_URN, &json!({ "directry": "/x" }));
        assert!(
            matches!(&unknown, Err(NodeConfigError::Invalid(m)) if m.starts_with("unknown field `directry`")),
            "{unknown:?}"
        );
        let missing = validate_node(NodeKind::Exporter, "urn:otel:exporter:nope", &json!({}));
        assert!(matches!(missing, Err(NodeConfigError::UnknownType { kind: "exporter", .. })));
    }

    #[test]
    fn one_exporter_is_connected_directly_and_several_through_a_fanout_that_awaits_all() {
        let redact = node("wasm/redact", crate::WASM_PROCESSOR_URN, json!({ "component": "r.wasm" }));
        let files = node("arrow_ipc", crate::ARROW_IPC_EXPORTER_URN, json!({ "directory": "/d" }));
        let otap = node("otap/up", "urn:otel:exporter:otap", json!({ "grpc_endpoint": "http://127.0.0.1:1" }));
        let single = SegmentSpec {
            id: "s".into(),
            processors: vec![redact.clone()],
            exporters: vec![files.clone()],
            reply: false,
            ..Default::default()
        };
        let spec = single.engine_spec();
        let pipeline = &spec["groups"]["collector"]["pipelines"]["segment"];
        assert_eq!(pipeline["nodes"]["wasm__redact"]["config"]["name"], "wasm/redact");
        assert_eq!(
            pipeline["connections"],
            json!([{ "from": "ingress", "to": "wasm__redact" }, { "from": "wasm__redact", "to": "arrow_ipc" }])
        );
        let double = SegmentSpec {
            id: "s".into(),
            processors: vec![redact],
            exporters: vec![files.clone(), otap],
            reply: false,
            ..Default::default()
        };
        let spec = double.engine_spec();
        let pipeline = &spec["groups"]["collector"]["pipelines"]["segment"];
        assert_eq!(pipeline["nodes"]["fanout"]["config"]["await_ack"], "all");
        assert!(
            pipeline["connections"]
                .as_array()
                .is_some_and(|c| c.contains(&json!({ "from": "fanout[\"otap__up\"]", "to": "otap__up" })))
        );
        crate::spec::to_engine_spec(&spec).expect("the engine accepts the spec");
        // A reply is one more output: the caller, behind the embedded exporter.
        let both = SegmentSpec {
            reply: true,
            id: "s".into(),
            processors: vec![],
            exporters: vec![files.clone()],
            ..Default::default()
        };
        let spec = both.engine_spec();
        let pipeline = &spec["groups"]["collector"]["pipelines"]["segment"];
        assert_eq!(pipeline["nodes"]["egress"]["type"], crate::EMBEDDED_EXPORTER_URN);
        assert_eq!(pipeline["nodes"]["fanout"]["outputs"], json!(["arrow_ipc", "egress"]));
        let reply_only =
            SegmentSpec { reply: true, id: "s".into(), processors: vec![], exporters: vec![], ..Default::default() };
        assert!(reply_only.validate().is_ok());
        let spec = reply_only.engine_spec();
        let connections = &spec["groups"]["collector"]["pipelines"]["segment"]["connections"];
        assert_eq!(connections, &json!([{ "from": "ingress", "to": "egress" }]));
    }

    #[test]
    fn a_member_whose_settings_are_refused_is_named() {
        let spec = SegmentSpec {
            reply: false,
            id: "wasmtel_segment".into(),
            processors: vec![],
            exporters: vec![node("arrow_ipc/files", crate::ARROW_IPC_EXPORTER_URN, json!({ "rotate": 3 }))],
            ..Default::default()
        };
        let error = spec.validate().unwrap_err().to_string();
        assert!(error.starts_with("arrow_ipc/files: ") && error.contains("rotate"), "{error}");
        let router = SegmentSpec {
            reply: false,
            id: "x".into(),
            processors: vec![node("fanout/copy", FANOUT_PROCESSOR_URN, json!({}))],
            exporters: vec![node("noop", "urn:otel:exporter:noop", Value::Null)],
            ..Default::default()
        };
        assert!(matches!(router.validate(), Err(SegmentError::Router(id)) if id == "fanout/copy"));
        let empty =
            SegmentSpec { id: "x".into(), processors: vec![], exporters: vec![], reply: false, ..Default::default() };
        assert!(matches!(empty.validate(), Err(SegmentError::NoExporter(_))));
    }
}
