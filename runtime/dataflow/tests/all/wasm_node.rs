//! The wasm processor node under the engine's own processor test harness
//! (`TestRuntime`): outputs and their form, Ack/Nack of every outcome and
//! error, and plugin metrics reported through the engine's telemetry.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use crate::harness::{harness, wrap};
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_engine::control::{
    CallData, NodeControlMsg, PipelineCompletionMsg, pipeline_completion_msg_channel,
};
use otel_arrow_dfe_engine::local::processor::EffectHandler;
use otel_arrow_dfe_engine::message::Message;
use otel_arrow_dfe_engine::runtime_services::PipelineRuntimeServices;
use otel_arrow_dfe_engine::testing::processor::{TestContext, TestRuntime};
use otel_arrow_dfe_engine::testing::test_node;
use otel_arrow_dfe_engine::{Interests, ProducerEffectHandlerExtension};
use otel_arrow_dfe_otap::pdata::{Context, OtapPdata};
use otel_arrow_dfe_pdata::{OtlpProtoBytes, TryFromWithOptions};
use otel_arrow_dfe_pdata_codec::{DecodePolicy, OtapPayload, PayloadStorage};
use otel_arrow_dfe_telemetry::reporter::MetricsReporter;
use prost::Message as _;
use serde_json::json;
use wasmtel_dataflow::wasm_processor::{WASM_PROCESSOR_URN, WasmProcessor};
use wasmtel_tests::{component, string_attr, traces_bytes};

fn otlp_traces(bytes: Vec<u8>) -> OtapPayload {
    OtapPayload::from_otlp(OtlpProtoBytes::ExportTracesRequest(Bytes::from(bytes)))
}

fn otap_traces(bytes: Vec<u8>) -> OtapPayload {
    let records = otel_arrow_dfe_pdata::OtapArrowRecords::try_from_with_default(OtlpProtoBytes::ExportTracesRequest(
        Bytes::from(bytes),
    ))
    .expect("OTLP → OTAP");
    OtapPayload::from_otap(records)
}

/// What a payload holds, as an OTLP request (OTAP is converted back).
fn decode_traces(payload: &OtapPayload) -> ExportTraceServiceRequest {
    let bytes = match payload.storage() {
        PayloadStorage::OtlpBytes(otlp) => otlp.bytes().clone(),
        PayloadStorage::OtapRecords(records) => {
            OtlpProtoBytes::try_from_with_default(records.clone()).expect("OTAP → OTLP").into_bytes()
        }
        PayloadStorage::Encoded(encoded) => encoded.bytes().clone(),
    };
    ExportTraceServiceRequest::decode(bytes).expect("OTLP traces")
}

fn span_names(request: &ExportTraceServiceRequest) -> Vec<String> {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}

/// Subscribes an "upstream" node to Acks and Nacks (with the payload back),
/// the way a receiver does, so the node's completions become observable.
fn subscribed(payload: OtapPayload, registry: &TestRuntime<OtapPdata>) -> OtapPdata {
    let upstream: EffectHandler<OtapPdata> = EffectHandler::new(
        test_node("upstream"),
        HashMap::new(),
        None,
        registry.metrics_reporter(),
        PipelineRuntimeServices::new(DecodePolicy::default()).expect("runtime services"),
    );
    let mut pdata = OtapPdata::new(Context::default(), payload);
    upstream.subscribe_to(Interests::ACKS | Interests::NACKS | Interests::RETURN_DATA, CallData::new(), &mut pdata);
    pdata
}

/// Runs one batch through a node with `config` and hands the emitted
/// batches and the completion (if any) to `check`.
fn run_one(
    config: serde_json::Value,
    payload: OtapPayload,
    check: impl FnOnce(Vec<OtapPdata>, Option<PipelineCompletionMsg<OtapPdata>>) + 'static,
) {
    let (test_runtime, pipeline_ctx) = harness();
    let processor = WasmProcessor::from_config(&pipeline_ctx, &config).expect("node builds");
    let wrapper = wrap(&test_runtime, processor, WASM_PROCESSOR_URN);
    let pdata = subscribed(payload, &test_runtime);
    test_runtime
        .set_processor(wrapper)
        .run_test(move |mut ctx: TestContext<OtapPdata>| async move {
            let (completion_tx, mut completion_rx) = pipeline_completion_msg_channel(4);
            ctx.set_pipeline_completion_sender(completion_tx);
            ctx.process(Message::PData(pdata)).await.expect("process");
            let emitted = ctx.drain_pdata().await;
            let completion =
                tokio::time::timeout(Duration::from_millis(200), completion_rx.recv()).await.ok().and_then(Result::ok);
            check(emitted, completion);
        })
        .validate(|_| async {});
}

fn identity(mode: &str, output: &str) -> serde_json::Value {
    json!({ "component": component("wasmtel-test-identity"), "config": { "mode": mode }, "output": output })
}

fn two_spans() -> Vec<u8> {
    traces_bytes(&[("GET /a", vec![string_attr("user.email", "ann@example.com")]), ("GET /b", vec![])])
}

#[test]
fn unchanged_otlp_is_forwarded_without_a_copy_or_conversion() {
    let input = Bytes::from(two_spans());
    let pointer = input.as_ptr();
    let payload = OtapPayload::from_otlp(OtlpProtoBytes::ExportTracesRequest(input));
    run_one(identity("unchanged", "input"), payload, move |emitted, completion| {
        assert_eq!(emitted.len(), 1);
        let out = emitted[0].payload_ref();
        let bytes = out.encoded_bytes().expect("still OTLP bytes");
        assert_eq!(bytes.as_ptr(), pointer, "the very input buffer is forwarded");
        assert!(completion.is_none(), "forwarded batches are completed downstream");
    });
}

#[test]
fn unchanged_otap_stays_otap() {
    run_one(identity("unchanged", "otap"), otap_traces(two_spans()), |emitted, _| {
        assert_eq!(emitted.len(), 1);
        assert!(emitted[0].payload_ref().otap_ref().is_some(), "OTAP in, OTAP out");
        assert_eq!(span_names(&decode_traces(emitted[0].payload_ref())), ["GET /a", "GET /b"]);
    });
}

#[test]
fn unchanged_otlp_becomes_otap_when_asked() {
    run_one(identity("unchanged", "otap"), otlp_traces(two_spans()), |emitted, _| {
        assert_eq!(emitted.len(), 1);
        assert!(emitted[0].payload_ref().otap_ref().is_some());
        assert_eq!(span_names(&decode_traces(emitted[0].payload_ref())), ["GET /a", "GET /b"]);
    });
}

#[test]
fn replaced_output_is_emitted_as_otap() {
    run_one(identity("replace", "otap"), otlp_traces(two_spans()), |emitted, completion| {
        assert_eq!(emitted.len(), 1);
        let mut out = emitted.into_iter().next().unwrap();
        assert_eq!(out.num_items(), 2);
        assert!(out.payload_ref().otap_ref().is_some());
        assert!(completion.is_none());
    });
}

#[test]
fn replaced_output_can_stay_otlp() {
    run_one(identity("replace", "otlp"), otap_traces(two_spans()), |emitted, _| {
        assert_eq!(emitted.len(), 1);
        assert!(emitted[0].payload_ref().encoded_bytes().is_some(), "OTLP bytes out");
        assert_eq!(span_names(&decode_traces(emitted[0].payload_ref())), ["GET /a", "GET /b"]);
    });
}

#[test]
fn redacted_values_reach_downstream() {
    let config = json!({
        "component": component("wasmtel-redact"),
        "config": { "keys": ["user.email"], "action": "mask", "mask": "****" },
    });
    run_one(config, otlp_traces(two_spans()), |emitted, _| {
        assert_eq!(emitted.len(), 1);
        let request = decode_traces(emitted[0].payload_ref());
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        let value = span.attributes.iter().find(|kv| kv.key == "user.email").and_then(|kv| kv.value.clone());
        assert_eq!(value.and_then(|v| v.value), Some(any_value::Value::StringValue("****".into())));
    });
}

#[test]
fn dropped_batches_are_acked_and_not_emitted() {
    run_one(identity("drop", "otap"), otlp_traces(two_spans()), |emitted, completion| {
        assert!(emitted.is_empty());
        match completion {
            Some(PipelineCompletionMsg::DeliverAck { ack }) => {
                assert_eq!(ack.accepted.signal_type(), SignalType::Traces)
            }
            other => panic!("expected an Ack, got {other:?}"),
        }
    });
}

#[test]
fn filtering_everything_out_acks_without_output() {
    let config = json!({
        "component": component("wasmtel-filter"),
        "config": { "spans": { "name_patterns": ["^GET "] } },
    });
    run_one(config, otlp_traces(two_spans()), |emitted, completion| {
        assert!(emitted.is_empty());
        assert!(matches!(completion, Some(PipelineCompletionMsg::DeliverAck { .. })), "got {completion:?}");
    });
}

#[test]
fn filtered_spans_are_gone_downstream() {
    let config = json!({
        "component": component("wasmtel-filter"),
        "config": { "spans": { "names": ["GET /b"] } },
    });
    run_one(config, otlp_traces(two_spans()), |emitted, _| {
        assert_eq!(emitted.len(), 1);
        assert_eq!(span_names(&decode_traces(emitted[0].payload_ref())), ["GET /a"]);
    });
}

fn hostile(span: &str, on_error: &str) -> (serde_json::Value, OtapPayload) {
    let config = json!({
        "component": component("wasmtel-test-hostile"),
        "on_error": on_error,
        "limits": { "timeout": "300ms" },
    });
    (config, otlp_traces(traces_bytes(&[(span, vec![])])))
}

fn expect_nack(completion: Option<PipelineCompletionMsg<OtapPdata>>, permanent: bool, needle: &str) {
    match completion {
        Some(PipelineCompletionMsg::DeliverNack { nack }) => {
            assert_eq!(nack.permanent, permanent, "{}", nack.reason);
            assert!(nack.reason.contains(needle), "reason {:?} should mention {needle:?}", nack.reason);
            // The refused batch comes back whole, so a retry can resend it.
            assert_eq!(span_names(&decode_traces(nack.refused.payload_ref())).len(), 1);
        }
        other => panic!("expected a Nack, got {other:?}"),
    }
}

#[test]
fn guest_permanent_error_is_a_permanent_nack() {
    let (config, payload) = hostile("permanent-error", "pass");
    run_one(config, payload, |emitted, completion| {
        assert!(emitted.is_empty());
        expect_nack(completion, true, "guest_permanent");
    });
}

#[test]
fn guest_retryable_error_is_a_retryable_nack() {
    let (config, payload) = hostile("retryable-error", "pass");
    run_one(config, payload, |emitted, completion| {
        assert!(emitted.is_empty());
        expect_nack(completion, false, "guest_retryable");
    });
}

#[test]
fn trap_under_fail_is_a_permanent_nack() {
    let (config, payload) = hostile("panic", "fail");
    run_one(config, payload, |emitted, completion| {
        assert!(emitted.is_empty());
        expect_nack(completion, true, "trap");
    });
}

#[test]
fn timeout_under_fail_is_a_retryable_nack() {
    let (config, payload) = hostile("loop", "fail");
    run_one(config, payload, |emitted, completion| {
        assert!(emitted.is_empty());
        expect_nack(completion, false, "timeout");
    });
}

#[test]
fn trap_under_pass_forwards_the_input() {
    let (config, payload) = hostile("panic", "pass");
    run_one(config, payload, |emitted, completion| {
        assert_eq!(emitted.len(), 1);
        assert_eq!(span_names(&decode_traces(emitted[0].payload_ref())), ["panic"]);
        assert!(completion.is_none());
    });
}

#[test]
fn garbage_under_drop_is_acked_without_output() {
    let (config, payload) = hostile("garbage", "drop");
    run_one(config, payload, |emitted, completion| {
        assert!(emitted.is_empty());
        assert!(matches!(completion, Some(PipelineCompletionMsg::DeliverAck { .. })), "got {completion:?}");
    });
}

#[test]
fn plugin_metrics_are_reported_through_engine_telemetry() {
    let (test_runtime, pipeline_ctx) = harness();
    let processor = WasmProcessor::from_config(&pipeline_ctx, &identity("replace", "otap")).expect("node builds");
    let wrapper = wrap(&test_runtime, processor, WASM_PROCESSOR_URN);
    let batches: Vec<OtapPdata> = (0..3).map(|_| subscribed(otlp_traces(two_spans()), &test_runtime)).collect();
    test_runtime
        .set_processor(wrapper)
        .run_test(move |mut ctx| async move {
            for pdata in batches {
                ctx.process(Message::PData(pdata)).await.expect("process");
            }
            assert_eq!(ctx.drain_pdata().await.len(), 3);
            let (snapshots, reporter) = MetricsReporter::create_new_and_receiver(64);
            ctx.process(Message::Control(NodeControlMsg::CollectTelemetry { metrics_reporter: reporter }))
                .await
                .expect("collect telemetry");
            let reported: Vec<_> = std::iter::from_fn(|| snapshots.try_recv().ok()).collect();
            // (metric name, attribute key, attribute value) → the value reported.
            let value = |name: &str, attribute: Option<(&str, &str)>| -> u64 {
                reported
                    .iter()
                    .filter(|snapshot| {
                        attribute.is_none_or(|(key, value)| snapshot.measurement_attribute_value(key) == Some(value))
                    })
                    .find_map(|snapshot| {
                        let index = snapshot.descriptor().metrics.iter().position(|m| m.name == name)?;
                        Some(snapshot.get_metrics()[index].to_u64_lossy())
                    })
                    .unwrap_or_else(|| panic!("{name} {attribute:?} not reported"))
            };
            // The vocabulary the Go processor shares, with its attributes.
            assert_eq!(value("wasmtel.plugin.calls", None), 3);
            assert_eq!(value("wasmtel.plugin.outcomes", Some(("outcome", "replaced"))), 3);
            assert_eq!(value("wasmtel.plugin.outcomes", Some(("outcome", "dropped"))), 0);
            assert_eq!(value("wasmtel.plugin.bytes", Some(("direction", "in"))), 3 * two_spans().len() as u64);
            let duration = reported
                .iter()
                .find(|s| s.descriptor().name == "wasmtel.plugin.duration")
                .expect("the latency histogram is reported");
            assert_eq!(duration.measurement_attribute_value("signal"), Some("traces"));
            assert_eq!(duration.measurement_attribute_value("outcome"), Some("replaced"));
            // What only the node has.
            assert_eq!(value("instances.live", None), 1);
            assert_eq!(value("node.conversions", None), 3, "each replaced batch became OTAP once");
        })
        .validate(|_| async {});
}

#[test]
fn a_missing_component_fails_at_build_time_with_its_path() {
    let (_test_runtime, pipeline_ctx) = harness();
    let error = WasmProcessor::from_config(&pipeline_ctx, &json!({ "component": "/nonexistent/x.wasm" }))
        .err()
        .expect("a missing file is an error");
    assert!(error.to_string().contains("/nonexistent/x.wasm"), "{error}");
    let unknown = WasmProcessor::from_config(&pipeline_ctx, &json!({ "component": "x.wasm", "bogus": 1 }))
        .err()
        .expect("unknown keys are rejected");
    assert!(unknown.to_string().contains("bogus"), "{unknown}");
}

#[test]
fn components_load_by_store_reference_under_the_node_registry_policy() {
    let store = tempfile::tempdir().expect("store dir");
    let policy = wasmtel_registry::Policy { store: Some(store.path().to_path_buf()), ..Default::default() };
    let pushed = wasmtel_registry::Resolver::new(policy)
        .expect("resolver")
        .push(&component("wasmtel-redact"), "redact:dev")
        .expect("push into the local store");
    let registry = json!({ "store": store.path() });
    let redact = |reference: &str| {
        json!({ "component": reference, "registry": registry, "output": "otlp",
                "config": { "keys": ["user.email"], "action": "mask" } })
    };
    for reference in ["redact:dev".to_string(), pushed.component_digest.clone()] {
        let payload = otlp_traces(two_spans());
        run_one(redact(&reference), payload, |emitted, _| {
            assert_eq!(emitted.len(), 1);
            let request = decode_traces(emitted[0].payload_ref());
            let text = format!("{request:?}");
            assert!(!text.contains("ann@example.com"), "redacted through {text}");
        });
    }

    let (_test_runtime, pipeline_ctx) = harness();
    let refused = |config: serde_json::Value| {
        WasmProcessor::from_config(&pipeline_ctx, &config).err().expect("refused").to_string()
    };
    let missing = refused(redact("redact:gone"));
    assert!(missing.contains("redact:gone") && missing.contains("not in the local store"), "{missing}");
    let unsigned = refused(json!({ "component": component("wasmtel-redact"),
        "registry": { "require_signature": true, "trusted_keys": [] } }));
    assert!(unsigned.contains("trusted_keys is empty"), "{unsigned}");
}

/// One span carrying unknown field 17: valid OTLP, which otap-dataflow
/// 0.62's span view indexes out of bounds on.
fn span_with_field_17() -> Vec<u8> {
    let mut span = ExportTraceServiceRequest::decode(&traces_bytes(&[("GET /", vec![])])[..]).unwrap().resource_spans
        [0]
    .scope_spans[0]
        .spans[0]
        .encode_to_vec();
    span.extend_from_slice(&[0x88, 0x01, 0x01]); // field 17, varint 1
    let scope_spans = [&[0x12, span.len() as u8][..], &span].concat();
    let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
    [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat()
}

#[test]
fn client_bytes_the_engine_would_panic_on_are_converted_safely() {
    let request = span_with_field_17();
    assert!(wasmtel_runtime::otlp::validate(wasmtel_runtime::Signal::Traces, &request).is_ok(), "valid OTLP");
    for mode in ["unchanged", "replace"] {
        run_one(identity(mode, "otap"), otlp_traces(request.clone()), move |emitted, completion| {
            assert!(completion.is_none(), "{mode}: forwarded, not refused: {completion:?}");
            assert_eq!(emitted.len(), 1, "{mode}");
            let (_, payload) = emitted.into_iter().next().unwrap().into_parts();
            assert!(matches!(payload.storage(), PayloadStorage::OtapRecords(_)), "{mode}: converted to OTAP");
            assert_eq!(span_names(&decode_traces(&payload)), ["GET /"], "{mode}");
        });
    }
}

#[test]
fn malformed_client_bytes_are_refused_permanently_not_a_panic() {
    for output in ["otap", "otlp"] {
        run_one(
            identity("unchanged", output),
            otlp_traces(vec![0x0a, 0x05, 0x12, 0xff]),
            move |emitted, completion| {
                assert!(emitted.is_empty(), "{output}");
                match completion {
                    Some(PipelineCompletionMsg::DeliverNack { nack }) => {
                        assert!(nack.permanent, "{output}: {}", nack.reason);
                        assert!(nack.reason.contains("not an OTLP traces request"), "{}", nack.reason);
                    }
                    other => panic!("{output}: expected a permanent Nack, got {other:?}"),
                }
            },
        );
    }
}

#[test]
fn scope_less_batches_convert_in_linear_time() {
    // 50k spans without a scope: quadratic in otap-dataflow 0.62 (over 30 s);
    // the node adds the scope first. Bounded by the test's own time budget.
    let span = [0x12, 0x07, 0x2a, 0x05, b'G', b'E', b'T', b' ', b'/'];
    let scope_spans: Vec<u8> = span.iter().copied().cycle().take(span.len() * 50_000).collect();
    let mut resource_spans = vec![0x12];
    let mut len = scope_spans.len();
    while len >= 0x80 {
        resource_spans.push(len as u8 | 0x80);
        len >>= 7;
    }
    resource_spans.push(len as u8);
    resource_spans.extend_from_slice(&scope_spans);
    let mut request = vec![0x0a];
    let mut len = resource_spans.len();
    while len >= 0x80 {
        request.push(len as u8 | 0x80);
        len >>= 7;
    }
    request.push(len as u8);
    request.extend_from_slice(&resource_spans);
    let started = std::time::Instant::now();
    run_one(identity("unchanged", "otap"), otlp_traces(request), |emitted, completion| {
        assert!(completion.is_none(), "{completion:?}");
        let (_, mut payload) = emitted.into_iter().next().expect("one batch").into_parts();
        assert_eq!(payload.num_items(), 50_000);
    });
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}
