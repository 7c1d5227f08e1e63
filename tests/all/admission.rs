//! One definition of a valid batch, at admission and at the output check: a
//! client's item that no decoder can read (an ID of the wrong length) is the
//! client's fault, left out before any guest sees it and reported as a
//! partial success; the verdict is the same whatever the guest does, and no
//! guest is blamed for it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use wasmtel_runtime::otlp::{self, Fixes};
use wasmtel_runtime::{FailureKind, Outcome, Plugin, PluginConfig, Rejected, Signal};
use wasmtel_tests::hostile_otlp;
use wasmtel_tests::{load, runtime, string_attr, traces};

/// The request: three spans carrying `user.email`, the second with a
/// 24-byte trace ID (OTLP/JSON's hex read as base64 by a client).
pub fn request_with_one_bad_trace_id() -> Vec<u8> {
    let email = || vec![string_attr("user.email", "someone@example.com")];
    let mut request = traces(&[("first", email()), ("bad-id", email()), ("third", email())]);
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![0xab; 24];
    request.encode_to_vec()
}

fn plugins(runtime: &wasmtel_runtime::Runtime) -> Vec<(&'static str, Plugin)> {
    let with = |config: serde_json::Value| PluginConfig { config, ..PluginConfig::default() };
    let load = |name, config| load(runtime, name, with(config)).unwrap_or_else(|e| panic!("{e}"));
    vec![
        ("redact", load("wasmtel-redact", serde_json::json!({ "keys": ["user.email"] }))),
        ("filter", load("wasmtel-filter", serde_json::json!({ "spans": { "names": ["^nothing-matches$"] } }))),
        ("identity unchanged", load("wasmtel-test-identity", serde_json::json!({ "mode": "unchanged" }))),
        ("identity replace", load("wasmtel-test-identity", serde_json::json!({ "mode": "replace" }))),
    ]
}

fn span_names(bytes: &[u8]) -> Vec<String> {
    ExportTraceServiceRequest::decode(bytes)
        .expect("a traces request")
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|span| span.name.clone())
        .collect()
}

#[test]
fn a_client_bad_id_costs_only_its_span_and_never_the_guest() {
    let (runtime, _cache) = runtime();
    let request = request_with_one_bad_trace_id();
    for (label, plugin) in plugins(&runtime) {
        let processed = plugin
            .process_reporting(Signal::Traces, &request, None, None)
            .unwrap_or_else(|e| panic!("{label}: the batch is refused: {e}"));
        assert_eq!(processed.rejected, Some(Rejected { items: 1, signal: Signal::Traces }), "{label}");
        let Outcome::Replaced(output) = &processed.outcome else {
            panic!("{label}: {:?}: the bad span must not go on", processed.outcome)
        };
        assert_eq!(span_names(output), ["first", "third"], "{label}: the two good spans kept");
        let metrics = plugin.metrics();
        assert_eq!(metrics.error_count(FailureKind::InvalidOutput), 0, "{label}: not the guest's fault");
        assert_eq!(metrics.policy_passed + metrics.policy_dropped + metrics.policy_failed, 0, "{label}: no on_error");
        assert_eq!(metrics.items_rejected, 1, "{label}");
        if label == "redact" {
            let text = String::from_utf8_lossy(output);
            assert!(!text.contains("someone@example.com"), "{label}: redacted");
        }
    }
    let message = Rejected { items: 1, signal: Signal::Traces }.message();
    assert!(message.starts_with("1 spans left out: a trace ID not 16 bytes"), "{message}");
}

/// Every request the admission accepts: a guest that returns it as
/// `replaced` passes the output check, and `unchanged`, `replaced` and
/// `dropped` account for the client's items the same way.
#[test]
fn whatever_the_admission_accepts_a_copying_guest_returns_without_blame() {
    let (runtime, _cache) = runtime();
    let with = |mode: &str| PluginConfig { config: serde_json::json!({ "mode": mode }), ..PluginConfig::default() };
    let unchanged = load(&runtime, "wasmtel-test-identity", with("unchanged")).unwrap();
    let replace = load(&runtime, "wasmtel-test-identity", with("replace")).unwrap();
    let drop = load(&runtime, "wasmtel-test-identity", with("drop")).unwrap();
    let hostile = hostile_otlp::load();
    let mut inputs: Vec<(String, Vec<u8>)> =
        hostile.cases.iter().map(|case| (case.name.clone(), case.request(&hostile.secret))).collect();
    inputs.push(("one bad trace ID".into(), request_with_one_bad_trace_id()));
    // Generated: every span of a valid request given IDs of every length 0..=20.
    for length in 0..=20usize {
        let mut request = traces(&[("a", vec![]), ("b", vec![string_attr("k", "v")])]);
        for span in &mut request.resource_spans[0].scope_spans[0].spans {
            span.trace_id = vec![1; length];
            span.parent_span_id = vec![2; 20 - length];
        }
        inputs.push((format!("IDs of {length} and {} bytes", 20 - length), request.encode_to_vec()));
    }
    let mut admitted = 0;
    for (name, input) in &inputs {
        let Ok(scan) = otlp::scan(Signal::Traces, input) else { continue };
        admitted += 1;
        let expected = otlp::rewrite(Signal::Traces, input, Fixes::STRICT).unwrap();
        let forwarded = |outcome: Outcome| match outcome {
            Outcome::Unchanged => input.clone(),
            Outcome::Replaced(bytes) => bytes,
            Outcome::Dropped => Vec::new(),
        };
        let by_unchanged = unchanged.process_reporting(Signal::Traces, input, None, None);
        let by_replace = replace.process_reporting(Signal::Traces, input, None, None);
        let by_drop = drop.process_reporting(Signal::Traces, input, None, None);
        let (by_unchanged, by_replace, by_drop) = match (by_unchanged, by_replace, by_drop) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            other => panic!("{name}: admitted, then refused: {other:?}"),
        };
        assert_eq!(by_unchanged.rejected, by_replace.rejected, "{name}");
        assert_eq!(by_unchanged.rejected, by_drop.rejected, "{name}");
        assert_eq!(by_unchanged.rejected.map_or(0, |r| r.items), scan.bad_id_items, "{name}");
        assert_eq!(forwarded(by_unchanged.outcome), expected, "{name}: unchanged forwards the admitted batch");
        assert_eq!(forwarded(by_replace.outcome), expected, "{name}: a copy is what was admitted");
        assert_eq!(by_drop.outcome, Outcome::Dropped, "{name}");
    }
    assert!(admitted >= 20, "only {admitted} inputs were admitted");
    for plugin in [&unchanged, &replace, &drop] {
        let metrics = plugin.metrics();
        let blamed: u64 = FailureKind::ALL
            .iter()
            .filter(|kind| kind.is_sandbox_failure())
            .map(|kind| metrics.error_count(*kind))
            .sum();
        assert_eq!(blamed, 0, "{}: a guest was blamed for a client's bytes: {metrics:?}", plugin.name());
    }
}
