//! Consecutive plugins in one call (`Plugin::process_chain`): what the
//! collector's chained `wasm` processors and the bridge run.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use wasmtel_runtime::{FailureKind, OnError, Outcome, Plugin, PluginConfig, Signal};
use wasmtel_tests::{load, runtime, span_named, string_attr, traces_bytes};

fn plugin(runtime: &wasmtel_runtime::Runtime, name: &str, config: serde_json::Value) -> Plugin {
    load(runtime, name, PluginConfig { config, ..PluginConfig::default() }).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_chain_gives_what_its_plugins_give_one_after_the_other() {
    let (runtime, _cache) = runtime();
    let redact = plugin(&runtime, "wasmtel-redact", serde_json::json!({ "keys": ["user.email"] }));
    let filter = plugin(&runtime, "wasmtel-filter", serde_json::json!({ "spans": { "names": ["GET /health"] } }));
    let email = || vec![string_attr("user.email", "ann@example.com")];
    let batch = traces_bytes(&[("GET /health", email()), ("GET /cart", email())]);

    let one_by_one = match redact.process(Signal::Traces, &batch, None).unwrap() {
        Outcome::Replaced(redacted) => filter.process(Signal::Traces, &redacted, None).unwrap(),
        other => panic!("redact: {other:?}"),
    };
    let chained = Plugin::process_chain(&[&redact, &filter], Signal::Traces, &batch, None, None).unwrap();
    assert_eq!(chained.outcome, one_by_one);
    let Outcome::Replaced(output) = chained.outcome else { panic!("{:?}", chained.outcome) };
    let spans = &ExportTraceServiceRequest::decode(output.as_slice()).unwrap().resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 1, "the health check filtered");
    assert_ne!(spans[0].attributes[0].value, string_attr("k", "ann@example.com").value, "redacted");
    // Each plugin counted its own batch.
    assert_eq!((redact.metrics().calls, filter.metrics().calls), (2, 2));

    // A drop ends the chain: the plugin after it never sees the batch.
    let dropped = Plugin::process_chain(
        &[&filter, &redact],
        Signal::Traces,
        &traces_bytes(&[("GET /health", vec![])]),
        None,
        None,
    );
    assert_eq!(dropped.unwrap().outcome, Outcome::Dropped);
    assert_eq!(redact.metrics().calls, 2);
    // Nothing changed anywhere: unchanged, the input is forwarded as it is.
    let clean = traces_bytes(&[("GET /cart", vec![])]);
    assert_eq!(
        Plugin::process_chain(&[&redact, &filter], Signal::Traces, &clean, None, None).unwrap().outcome,
        Outcome::Unchanged
    );
}

#[test]
fn a_chain_fails_as_its_failing_plugin_and_its_deadline_reaches_every_member() {
    let (runtime, _cache) = runtime();
    let identity = plugin(&runtime, "wasmtel-test-identity", serde_json::json!({ "mode": "replace" }));
    let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
    config.limits.timeout = Duration::from_secs(5);
    let hostile = load(&runtime, "wasmtel-test-hostile", config).unwrap();
    let error = Plugin::process_chain(&[&identity, &hostile], Signal::Traces, &span_named("panic"), None, None)
        .expect_err("the second plugin traps");
    assert_eq!(error.kind, FailureKind::Trap);
    assert!(error.to_string().contains("wasmtel-test-hostile"), "the failing plugin is named: {error}");
    // The caller's deadline reaches the later members: a loop in the second
    // ends at it, as the caller's (never under on_error).
    let error = Plugin::process_chain(
        &[&identity, &hostile],
        Signal::Traces,
        &span_named("loop"),
        Some(Duration::from_millis(100)),
        None,
    )
    .expect_err("the loop outlives the chain's deadline");
    assert_eq!(error.kind, FailureKind::DeadlineExceeded, "{error}");
}
