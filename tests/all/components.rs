//! The example components as deployed: compiled to wasm and run by the
//! runtime, they give exactly what their native build gives.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use prost::Message;
use wasmtel_component::interfaces::{ImportRefused, check_import};
use wasmtel_runtime::otlp::json_to_protobuf;
use wasmtel_runtime::{Outcome, PluginConfig, Signal};
use wasmtel_sdk::testing;
use wasmtel_tests::{component, load, runtime, workspace_root};

fn sample(signal: Signal) -> Vec<u8> {
    let json = std::fs::read(workspace_root().join(format!("examples/data/{signal}.json"))).unwrap();
    json_to_protobuf(signal, &json).unwrap()
}

/// Every guest the build makes, read without running it, is what its tests
/// assume: a component whose manifest names its crate and whose imports the
/// sandbox answers (the examples), or the refusal it exists to provoke.
#[test]
fn built_guests_pass_the_sandbox_import_rules_they_are_built_for() {
    let allowed =
        ["wasmtel-redact", "wasmtel-filter", "wasmtel-sample", "wasmtel-test-identity", "wasmtel-test-hostile"];
    let describe = |crate_name: &str| {
        let bytes = std::fs::read(component(crate_name)).unwrap();
        wasmtel_component::describe(&bytes).unwrap_or_else(|e| panic!("{crate_name}: {e}"))
    };
    let refusals = |description: &wasmtel_component::Description| -> Vec<(String, ImportRefused)> {
        description.imports.iter().filter_map(|i| check_import(i).err().map(|e| (i.clone(), e))).collect()
    };
    for crate_name in allowed.into_iter().chain(["wasmtel-test-socket"]) {
        let description = describe(crate_name);
        let manifest = description.manifest.as_ref().unwrap_or_else(|| panic!("{crate_name}: no manifest"));
        assert_eq!(manifest.name, crate_name);
        assert_eq!(description.processor_version(), Some(wasmtel_component::interfaces::WIT_VERSION));
        let refused = refusals(&description);
        if crate_name == "wasmtel-test-socket" {
            assert!(refused.iter().any(|(_, e)| *e == ImportRefused::Network), "{crate_name}: {refused:?}");
        } else {
            assert_eq!(refused, [], "{crate_name} imports what the sandbox refuses");
        }
    }
    let future = describe("wasmtel-test-future-major");
    assert_eq!(future.processor_version(), Some("1.0.0"));
    let refused = refusals(&future);
    assert!(
        refused.iter().any(|(_, e)| matches!(e, ImportRefused::IncompatibleWit { found } if found == "1.0.0")),
        "{refused:?}"
    );
}

/// Runs the wasm component and the native library on the same batch.
fn both<P: wasmtel_sdk::Processor>(
    crate_name: &str,
    config: serde_json::Value,
    signal: Signal,
) -> (Outcome, wasmtel_sdk::Outcome) {
    let (runtime, _cache) = runtime();
    let plugin = load(&runtime, crate_name, PluginConfig { config: config.clone(), ..Default::default() }).unwrap();
    let input = sample(signal);
    let wasm = plugin.process(signal, &input, None).unwrap();
    let mut native: P = testing::new(&config.to_string()).unwrap();
    let native = testing::run(&mut native, signal, &input).unwrap();
    (wasm, native)
}

fn assert_same(wasm: &Outcome, native: &wasmtel_sdk::Outcome) {
    match (wasm, native) {
        (Outcome::Unchanged, wasmtel_sdk::Outcome::Unchanged) | (Outcome::Dropped, wasmtel_sdk::Outcome::Dropped) => {}
        (Outcome::Replaced(a), wasmtel_sdk::Outcome::Replaced(b)) => assert_eq!(a, b, "wasm and native output differ"),
        other => panic!("outcomes differ: {other:?}"),
    }
}

fn redact_config() -> serde_json::Value {
    serde_json::json!({
        "keys": ["user.email", "customer.phone"],
        "key_patterns": ["(?i)authorization|card_number"],
        "value_patterns": [r"[\w.+-]+@[\w-]+\.[\w.]+"],
        "action": "hash",
        "log_bodies": true,
    })
}

#[test]
fn redact_in_wasm_matches_native_on_every_signal() {
    for signal in Signal::ALL {
        let (wasm, native) = both::<wasmtel_redact::Redact>("wasmtel-redact", redact_config(), signal);
        assert!(matches!(wasm, Outcome::Replaced(_)), "{signal}: the samples carry emails");
        assert_same(&wasm, &native);
        let Outcome::Replaced(bytes) = wasm else { unreachable!() };
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("ada@example.com"), "{signal}: email left in output");
        assert!(!text.contains("4111 1111"), "{signal}: card number left in output");
    }
}

#[test]
fn filter_in_wasm_drops_health_checks_and_debug_logs() {
    let config = serde_json::json!({
        "spans": { "attributes": [{ "key": "http.route", "pattern": "^/(health|readyz)$" }] },
        "logs": { "min_severity": 9 },
        "data_points": { "attributes": [{ "key": "http.route", "value": "/health" }] },
    });
    for signal in Signal::ALL {
        let (wasm, native) = both::<wasmtel_filter::Filter>("wasmtel-filter", config.clone(), signal);
        assert_same(&wasm, &native);
        let Outcome::Replaced(bytes) = wasm else { panic!("{signal}: something is filtered in every sample") };
        let expected_items = match signal {
            Signal::Traces => 2,
            Signal::Logs => 2,
            Signal::Metrics => 2,
        };
        assert_eq!(wasmtel_runtime::otlp::count_items(signal, &bytes).unwrap(), expected_items, "{signal}");
    }
}

#[test]
fn sample_keeps_traces_and_their_logs_together() {
    let config = serde_json::json!({ "ratio": 0.5 });
    let (wasm_traces, native_traces) = both::<wasmtel_sample::Sample>("wasmtel-sample", config.clone(), Signal::Traces);
    assert_same(&wasm_traces, &native_traces);
    let (wasm_logs, native_logs) = both::<wasmtel_sample::Sample>("wasmtel-sample", config, Signal::Logs);
    assert_same(&wasm_logs, &native_logs);

    let kept_trace_ids = |outcome: &Outcome, signal: Signal| -> Vec<Vec<u8>> {
        let bytes = match outcome {
            Outcome::Replaced(bytes) => bytes.clone(),
            Outcome::Unchanged => sample(signal),
            Outcome::Dropped => return Vec::new(),
        };
        match signal {
            Signal::Traces => {
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&bytes[..])
                    .unwrap()
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                    .map(|s| s.trace_id)
                    .collect()
            }
            _ => opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(&bytes[..])
                .unwrap()
                .resource_logs
                .into_iter()
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records)
                .map(|r| r.trace_id)
                .filter(|id| !id.is_empty())
                .collect(),
        }
    };
    let spans = kept_trace_ids(&wasm_traces, Signal::Traces);
    for id in kept_trace_ids(&wasm_logs, Signal::Logs) {
        assert!(spans.contains(&id), "a log was kept whose trace was sampled out");
    }
}

#[test]
fn metrics_pass_the_sampler_without_entering_the_sandbox() {
    let (runtime, _cache) = runtime();
    let config = PluginConfig { config: serde_json::json!({ "ratio": 0.1 }), ..Default::default() };
    let plugin = load(&runtime, "wasmtel-sample", config).unwrap();
    assert_eq!(plugin.process(Signal::Metrics, &sample(Signal::Metrics), None).unwrap(), Outcome::Unchanged);
    assert_eq!(plugin.metrics().skipped, 1, "the manifest lists traces and logs only");
}

#[test]
fn guest_counters_reach_plugin_metrics() {
    let (runtime, _cache) = runtime();
    let plugin =
        load(&runtime, "wasmtel-redact", PluginConfig { config: redact_config(), ..Default::default() }).unwrap();
    plugin.process(Signal::Traces, &sample(Signal::Traces), None).unwrap();
    let redacted = plugin.metrics().guest_counters.get("redacted_values").copied().unwrap_or(0);
    assert!(redacted >= 5, "redact reports what it redacted: {redacted}");
}

#[test]
fn redacted_output_feeds_otap_stages() {
    use wasmtel_otap::{ArrowPayloadType, otlp_to_otap};
    let (runtime, _cache) = runtime();
    let plugin =
        load(&runtime, "wasmtel-redact", PluginConfig { config: redact_config(), ..Default::default() }).unwrap();
    let Outcome::Replaced(bytes) = plugin.process(Signal::Traces, &sample(Signal::Traces), None).unwrap() else {
        panic!("the sample carries emails")
    };
    let otap = otlp_to_otap(Signal::Traces, bytes).unwrap();
    assert_eq!(otap.get(ArrowPayloadType::Spans).map(|b| b.num_rows()), Some(4));
    let attrs = otap.get(ArrowPayloadType::SpanAttrs).expect("span attributes batch");
    let rendered = format!("{attrs:?}");
    assert!(rendered.contains("user.email"), "the key stays");
    assert!(!rendered.contains("ada@example.com"), "the value does not");
    // The same rendering of the unredacted batch does show the value.
    let original = otlp_to_otap(Signal::Traces, sample(Signal::Traces)).unwrap();
    let original_attrs = format!("{:?}", original.get(ArrowPayloadType::SpanAttrs).unwrap());
    assert!(original_attrs.contains("ada@example.com"));
}
