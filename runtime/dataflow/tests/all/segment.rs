//! A collector's Rust segment: wasm processors then Rust exporters, one
//! crossing in, every exporter's Ack (or the first Nack) back.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::json;
use wasmtel_dataflow::segment::{SegmentNode, SegmentSpec};
use wasmtel_dataflow::{EmbeddedError, Segment};
use wasmtel_runtime::Signal;
use wasmtel_tests::{component, string_attr, traces};

use crate::support::{map_values, read_signal, rows, strings};

fn node(id: &str, urn: &str, config: serde_json::Value) -> SegmentNode {
    SegmentNode { id: id.into(), urn: urn.into(), config }
}

fn redact_and_filter() -> Vec<SegmentNode> {
    vec![
        node(
            "wasm/redact",
            "urn:wasmtel:processor:wasm",
            json!({
                "component": component("wasmtel-redact"),
                "config": { "keys": ["user.email"], "action": "mask", "mask": "****" },
            }),
        ),
        node(
            "wasm/filter",
            "urn:wasmtel:processor:wasm",
            json!({
                "component": component("wasmtel-filter"),
                "config": { "spans": { "names": ["GET /health"] } },
            }),
        ),
    ]
}

#[test]
fn every_exporter_of_a_segment_gets_the_processed_batch_before_it_is_acknowledged() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spec = SegmentSpec {
        reply: false,
        id: "wasmtel_segment".into(),
        processors: redact_and_filter(),
        exporters: vec![
            node("arrow_ipc/a", "urn:wasmtel:exporter:arrow_ipc", json!({ "directory": a.path() })),
            node("arrow_ipc/b", "urn:wasmtel:exporter:arrow_ipc", json!({ "directory": b.path() })),
        ],
        ..Default::default()
    };
    let segment = Segment::start(&spec).expect("segment starts");
    let email = string_attr("user.email", "ann@example.com");
    let budget = Duration::from_secs(20);
    for i in 0..5 {
        let batch = traces(&[(&format!("GET /{i}"), vec![email.clone()]), ("GET /health", vec![])]);
        segment.export(Signal::Traces, batch.encode_to_vec().into(), budget).expect("acknowledged");
    }
    // A batch the filter drops whole is acknowledged too (nothing to deliver).
    let health = traces(&[("GET /health", vec![])]).encode_to_vec();
    segment.export(Signal::Traces, health.into(), budget).expect("dropped is acknowledged");
    let invalid = segment.export(Signal::Traces, vec![0xff, 0xff].into(), budget).unwrap_err();
    assert!(matches!(invalid, EmbeddedError::InvalidInput { .. }) && invalid.is_permanent(), "{invalid:?}");
    // Each wasm processor's plugin metrics, under its collector ID.
    let plugins = segment.metrics().plugins;
    assert_eq!(plugins.keys().collect::<Vec<_>>(), ["wasm/filter", "wasm/redact"]);
    assert_eq!((plugins["wasm/redact"].calls, plugins["wasm/filter"].dropped), (6, 1));
    let stats = segment.shutdown(Duration::from_secs(20)).expect("clean shutdown");
    assert_eq!((stats.accepted, stats.refused, stats.in_flight), (6, 0, 0));

    for dir in [a.path(), b.path()] {
        let spans = read_signal(dir, "traces");
        assert_eq!(rows(&spans), 5, "five spans kept, the health checks filtered");
        assert!(!strings(&spans, "name").contains(&Some("GET /health".into())));
        assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
    }
}

#[test]
fn an_exporter_whose_upstream_is_down_refuses_retryably_within_the_budget() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let spec = SegmentSpec {
        reply: false,
        id: "otlp_grpc".into(),
        processors: vec![],
        exporters: vec![node(
            "otlp_grpc",
            "urn:otel:exporter:otlp_grpc",
            json!({ "grpc_endpoint": format!("http://{dead}") }),
        )],
        ..Default::default()
    };
    let segment = Segment::start(&spec).expect("segment starts with its upstream down");
    let batch = traces(&[("GET /a", vec![])]).encode_to_vec();
    let error = segment.export(Signal::Traces, batch.into(), Duration::from_secs(10)).unwrap_err();
    assert!(!error.is_permanent(), "an unreachable upstream is worth retrying: {error:?}");
    drop(segment.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_segment_with_a_member_its_factory_refuses_does_not_start_and_names_it() {
    let spec = SegmentSpec {
        reply: false,
        id: "wasmtel_segment".into(),
        processors: vec![node(
            "wasm/redact",
            "urn:wasmtel:processor:wasm",
            json!({ "component": "r.wasm", "limits": { "max_memory": "lots" } }),
        )],
        exporters: vec![node("arrow_ipc", "urn:wasmtel:exporter:arrow_ipc", json!({ "directory": "/tmp/x" }))],
        ..Default::default()
    };
    let error = Segment::start(&spec).err().expect("refused").to_string();
    assert!(error.starts_with("wasm/redact: ") && error.contains("limits.max_memory"), "{error}");
}

#[test]
fn engine_processors_run_in_a_segment_and_their_acks_reach_the_collector() {
    let files = tempfile::tempdir().unwrap();
    let mut processors = vec![node(
        "batch",
        "urn:otel:processor:batch",
        // Never full: every batch waits for the timer; its Ack comes back
        // through the batch processor once the flushed batch is written.
        json!({ "max_batch_duration": "50ms", "otlp": { "min_size": 1_000_000_000, "sizer": "bytes" } }),
    )];
    processors.extend(redact_and_filter());
    let spec = SegmentSpec {
        reply: false,
        id: "wasmtel_segment".into(),
        processors,
        exporters: vec![node("arrow_ipc", "urn:wasmtel:exporter:arrow_ipc", json!({ "directory": files.path() }))],
        ..Default::default()
    };
    let segment = Segment::start(&spec).expect("segment starts");
    let email = string_attr("user.email", "ann@example.com");
    for i in 0..3 {
        let batch = traces(&[(&format!("GET /{i}"), vec![email.clone()])]).encode_to_vec();
        segment.export(Signal::Traces, batch.into(), Duration::from_secs(20)).expect("acknowledged");
    }
    let stats = segment.shutdown(Duration::from_secs(20)).expect("clean shutdown");
    assert_eq!((stats.accepted, stats.in_flight), (3, 0));
    let spans = read_signal(files.path(), "traces");
    assert_eq!(rows(&spans), 3);
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
}

#[test]
fn a_circuit_breaker_in_a_segment_opens_on_an_unreachable_upstream_and_refuses_retryably() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let spec = SegmentSpec {
        reply: false,
        id: "wasmtel_segment".into(),
        processors: vec![node(
            "circuit_breaker",
            "urn:wasmtel:processor:circuit_breaker",
            json!({ "failure_threshold": 2, "open_duration": "1h" }),
        )],
        exporters: vec![node(
            "rust_otlp_grpc",
            "urn:otel:exporter:otlp_grpc",
            json!({ "grpc_endpoint": format!("http://{dead}") }),
        )],
        ..Default::default()
    };
    let segment = Segment::start(&spec).expect("segment starts with its upstream down");
    let members = |nodes: &[wasmtel_dataflow::NodeMetric]| {
        let mut ids: Vec<String> = nodes.iter().map(|m| m.node.clone()).collect();
        ids.dedup();
        ids
    };
    assert_eq!(
        members(&segment.metrics().nodes),
        ["circuit_breaker", "rust_otlp_grpc"],
        "every member's metrics exist once started"
    );
    let errors: Vec<EmbeddedError> = (0..3)
        .map(|_| {
            let batch = traces(&[("GET /a", vec![])]).encode_to_vec();
            segment.export(Signal::Traces, batch.into(), Duration::from_secs(10)).unwrap_err()
        })
        .collect();
    assert!(errors.iter().all(|e| !e.is_permanent()), "{errors:?}");
    assert!(!errors[1].to_string().contains("circuit breaker open"), "two failures open it: {}", errors[1]);
    assert!(errors[2].to_string().contains("circuit breaker open"), "{}", errors[2]);
    // The members' own engine metrics, under their collector IDs (nodes
    // report periodically, so wait for the breaker's refusal to show).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let value = |nodes: &[wasmtel_dataflow::NodeMetric], id: &str, name: &str| {
        nodes.iter().find(|m| m.node == id && m.name == name).map(|m| m.value)
    };
    let nodes = loop {
        let nodes = segment.metrics().nodes;
        if value(&nodes, "circuit_breaker", "wasmtel.processor.circuit_breaker.rejected") == Some(1.0)
            || std::time::Instant::now() > deadline
        {
            break nodes;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(value(&nodes, "circuit_breaker", "wasmtel.processor.circuit_breaker.rejected"), Some(1.0), "{nodes:#?}");
    assert_eq!(value(&nodes, "circuit_breaker", "wasmtel.processor.circuit_breaker.opened.total"), Some(1.0));
    assert!(nodes.iter().any(|m| m.node == "rust_otlp_grpc"), "the exporter's metrics are there too");
    assert!(nodes.iter().all(|m| m.node != "ingress"), "plumbing is not a member");
    assert!(nodes.iter().all(|m| !m.name.starts_with("node.local_wakeup.")), "scheduler internals are left out");
    drop(segment.shutdown(Duration::from_secs(10)));
}

fn replying(processors: Vec<SegmentNode>) -> Segment {
    let spec =
        SegmentSpec { reply: true, id: "wasm/chain".into(), processors, exporters: vec![], ..Default::default() };
    Segment::start(&spec).expect("segment starts")
}

/// Exports `batch` on another thread; its result comes back on the handle.
fn export_in_background(
    segment: &std::sync::Arc<Segment>,
    batch: Vec<u8>,
) -> std::thread::JoinHandle<Result<(), EmbeddedError>> {
    let segment = segment.clone();
    std::thread::spawn(move || segment.export(Signal::Traces, batch.into(), Duration::from_secs(20)))
}

#[test]
fn a_replying_segment_hands_the_processed_batch_back_and_its_export_waits_for_the_answer() {
    let segment = std::sync::Arc::new(replying(redact_and_filter()));
    let email = string_attr("user.email", "ann@example.com");
    let batch = traces(&[("GET /a", vec![email.clone()]), ("GET /health", vec![])]).encode_to_vec();
    let exported = export_in_background(&segment, batch);
    let output = segment.next_output(Duration::from_secs(20)).expect("the processed batch comes back");
    assert_eq!(output.signal, Signal::Traces);
    let request = ExportTraceServiceRequest::decode(output.otlp.clone()).expect("OTLP");
    let spans: Vec<_> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["GET /a"], "filtered");
    assert!(!output.otlp.windows(15).any(|w| w == b"ann@example.com"), "redacted");
    assert!(!exported.is_finished(), "the export waits for the caller's answer");
    output.accept();
    exported.join().unwrap().expect("accepted");

    // A refusal keeps its meaning; a dropped output is a retryable refusal.
    let exported = export_in_background(&segment, traces(&[("GET /b", vec![])]).encode_to_vec());
    segment.next_output(Duration::from_secs(20)).expect("output").refuse("downstream: bad data", true);
    let refused = exported.join().unwrap().unwrap_err();
    assert!(refused.is_permanent() && refused.to_string().contains("downstream: bad data"), "{refused}");
    let exported = export_in_background(&segment, traces(&[("GET /c", vec![])]).encode_to_vec());
    drop(segment.next_output(Duration::from_secs(20)).expect("output"));
    let dropped = exported.join().unwrap().unwrap_err();
    assert!(!dropped.is_permanent(), "{dropped}");

    // A batch the processors drop whole is acknowledged without coming back.
    let health = traces(&[("GET /health", vec![])]).encode_to_vec();
    segment.export(Signal::Traces, health.into(), Duration::from_secs(20)).expect("dropped is acknowledged");
    assert!(segment.next_output(Duration::from_millis(200)).is_none());
    drop(segment.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_replying_segment_with_an_engine_batch_processor_answers_every_batch_it_merged() {
    let batch = node(
        "rust_batch",
        "urn:otel:processor:batch",
        json!({ "max_batch_duration": "100ms", "otlp": { "min_size": 1_000_000_000, "sizer": "bytes" } }),
    );
    let segment = std::sync::Arc::new(replying(vec![batch]));
    let first = export_in_background(&segment, traces(&[("GET /1", vec![])]).encode_to_vec());
    let second = export_in_background(&segment, traces(&[("GET /2", vec![])]).encode_to_vec());
    let mut names = Vec::new();
    while names.len() < 2 {
        let output = segment.next_output(Duration::from_secs(20)).expect("the flushed batch");
        let request = ExportTraceServiceRequest::decode(output.otlp.clone()).expect("OTLP");
        names.extend(
            request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).map(|s| s.name.clone()),
        );
        output.accept();
    }
    names.sort();
    assert_eq!(names, ["GET /1", "GET /2"]);
    first.join().unwrap().expect("first acknowledged");
    second.join().unwrap().expect("second acknowledged");
    drop(segment.shutdown(Duration::from_secs(10)));
}

/// A Rust receiver as a collector receiver: what it receives (here, OTAP
/// from another segment's OTAP exporter) comes back as OTLP through the
/// reply, and the sender's Ack waits for the answer.
#[test]
fn a_segment_with_a_receiver_hands_back_what_it_receives_and_the_sender_hears_the_answer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let receiving = SegmentSpec {
        reply: true,
        id: "otap".into(),
        receivers: vec![node(
            "otap",
            "urn:otel:receiver:otap",
            json!({ "listening_addr": port.to_string(), "wait_for_result": true, "response_stream_channel_size": 64 }),
        )],
        processors: vec![redact_and_filter().remove(0)],
        ..Default::default()
    };
    let receiving = Segment::start(&receiving).expect("the receiving segment starts");
    let sending = SegmentSpec {
        id: "otap_out".into(),
        exporters: vec![node("otap", "urn:otel:exporter:otap", json!({ "grpc_endpoint": format!("http://{port}") }))],
        ..Default::default()
    };
    let sending = std::sync::Arc::new(Segment::start(&sending).expect("the sending segment starts"));
    let email = string_attr("user.email", "ann@example.com");
    let exported = export_in_background(&sending, traces(&[("GET /a", vec![email])]).encode_to_vec());
    let output = receiving.next_output(Duration::from_secs(20)).expect("what the receiver got comes back");
    assert_eq!(output.signal, Signal::Traces);
    let request = ExportTraceServiceRequest::decode(output.otlp.clone()).expect("OTLP");
    let spans: Vec<_> = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["GET /a"]);
    assert!(!output.otlp.windows(15).any(|w| w == b"ann@example.com"), "the processor ran after the receiver");
    assert!(!exported.is_finished(), "the sender waits for the answer");
    output.accept();
    exported.join().unwrap().expect("the sender hears the Ack");

    // The receiver is a member: its metrics are there under its ID.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !receiving.metrics().nodes.iter().any(|m| m.node == "otap") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(receiving.metrics().nodes.iter().any(|m| m.node == "otap"), "{:#?}", receiving.metrics().nodes);

    // A refusal reaches the sender.
    let exported = export_in_background(&sending, traces(&[("GET /b", vec![])]).encode_to_vec());
    receiving.next_output(Duration::from_secs(20)).expect("output").refuse("downstream: bad data", true);
    assert!(exported.join().unwrap().is_err(), "the sender hears the refusal");
    drop(sending.shutdown(Duration::from_secs(10)));
    drop(receiving.shutdown(Duration::from_secs(10)));
}

#[test]
fn a_segment_refuses_plumbing_and_the_engines_own_telemetry_as_members() {
    for (id, urn) in
        [("embedded", "urn:wasmtel:receiver:embedded"), ("internal_telemetry", "urn:otel:receiver:internal_telemetry")]
    {
        let spec = SegmentSpec {
            reply: true,
            id: "r".into(),
            receivers: vec![node(id, urn, json!({}))],
            ..Default::default()
        };
        let error = spec.validate().unwrap_err().to_string();
        assert!(error.contains(id) && error.contains("not a component"), "{error}");
    }
}
