//! The circuit breaker under the engine's processor test harness: it opens
//! after consecutive retryable Nacks, refuses while open, probes once after
//! `open_duration`, and closes on the probe's Ack (or reopens on its Nack).

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use crate::harness::{harness, wrap};
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use otel_arrow_dfe_engine::control::{
    AckMsg, CallData, NackMsg, NodeControlMsg, PipelineCompletionMsg, PipelineCompletionMsgReceiver,
    pipeline_completion_msg_channel,
};
use otel_arrow_dfe_engine::local::processor::EffectHandler;
use otel_arrow_dfe_engine::message::Message;
use otel_arrow_dfe_engine::runtime_services::PipelineRuntimeServices;
use otel_arrow_dfe_engine::testing::processor::{TestContext, TestRuntime};
use otel_arrow_dfe_engine::testing::test_node;
use otel_arrow_dfe_engine::{Interests, ProducerEffectHandlerExtension};
use otel_arrow_dfe_otap::pdata::{Context, OtapPdata};
use otel_arrow_dfe_pdata::OtlpProtoBytes;
use otel_arrow_dfe_pdata_codec::{DecodePolicy, OtapPayload};
use otel_arrow_dfe_telemetry::reporter::MetricsReporter;
use wasmtel_dataflow::circuit_breaker::{CIRCUIT_BREAKER_URN, CircuitBreaker, CircuitBreakerConfig};
use wasmtel_tests::span_named;

fn batch(test_runtime: &TestRuntime<OtapPdata>, name: &str) -> OtapPdata {
    let upstream: EffectHandler<OtapPdata> = EffectHandler::new(
        test_node("retry"),
        HashMap::new(),
        None,
        test_runtime.metrics_reporter(),
        PipelineRuntimeServices::new(DecodePolicy::default()).unwrap(),
    );
    let payload = OtapPayload::from_otlp(OtlpProtoBytes::ExportTracesRequest(Bytes::from(span_named(name))));
    let mut pdata = OtapPdata::new(Context::default(), payload);
    upstream.subscribe_to(Interests::ACKS | Interests::NACKS | Interests::RETURN_DATA, CallData::new(), &mut pdata);
    pdata
}

/// What the downstream exporter answers, as the engine delivers it to the
/// breaker: the breaker's own calldata (0 normal, 1 probe) on the route.
fn downstream_nack(pdata: OtapPdata, probe: bool) -> Message<OtapPdata> {
    let mut nack = NackMsg::new("connection refused", pdata);
    nack.unwind.route.calldata = CallData::from_elem(u64::from(probe).into(), 1);
    Message::Control(NodeControlMsg::Nack(nack))
}

fn downstream_ack(pdata: OtapPdata) -> Message<OtapPdata> {
    let mut ack = AckMsg::new(pdata);
    ack.unwind.route.calldata = CallData::from_elem(1u64.into(), 1);
    Message::Control(NodeControlMsg::Ack(ack))
}

async fn next_completion(rx: &mut PipelineCompletionMsgReceiver<OtapPdata>) -> PipelineCompletionMsg<OtapPdata> {
    tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.expect("a completion").expect("open channel")
}

async fn expect_refused(rx: &mut PipelineCompletionMsgReceiver<OtapPdata>, needle: &str) {
    match next_completion(rx).await {
        PipelineCompletionMsg::DeliverNack { nack } => {
            assert!(!nack.permanent, "refusals are retryable");
            assert!(nack.reason.contains(needle), "{}", nack.reason);
            assert!(!nack.refused.is_empty(), "the batch comes back for the retry");
        }
        other => panic!("expected a Nack, got {other:?}"),
    }
}

async fn forwarded_one(ctx: &mut TestContext<OtapPdata>) -> OtapPdata {
    let mut out = ctx.drain_pdata().await;
    assert_eq!(out.len(), 1, "one batch forwarded");
    out.remove(0)
}

/// A probe goes out, its Ack closes the circuit, and the next batch flows;
/// returns the breaker's metrics, which say it is closed.
async fn probe_closes(
    ctx: &mut TestContext<OtapPdata>,
    rx: &mut PipelineCompletionMsgReceiver<OtapPdata>,
    probe: Message<OtapPdata>,
    after: Message<OtapPdata>,
) -> HashMap<String, u64> {
    ctx.process(probe).await.unwrap();
    let probe = forwarded_one(ctx).await;
    ctx.process(downstream_ack(probe)).await.unwrap();
    assert!(matches!(next_completion(rx).await, PipelineCompletionMsg::DeliverAck { .. }));
    ctx.process(after).await.unwrap();
    let _ = forwarded_one(ctx).await;
    let metrics = breaker_metrics(ctx).await;
    assert_eq!(metrics.get("state"), Some(&0), "closed");
    metrics
}

/// The breaker's metrics, by name.
async fn breaker_metrics(ctx: &mut TestContext<OtapPdata>) -> HashMap<String, u64> {
    let (snapshots, reporter) = MetricsReporter::create_new_and_receiver(4);
    ctx.process(Message::Control(NodeControlMsg::CollectTelemetry { metrics_reporter: reporter })).await.unwrap();
    let snapshot = snapshots.try_recv().expect("breaker metrics");
    let values = snapshot.get_metrics();
    snapshot.descriptor().metrics.iter().zip(values).map(|(m, v)| (m.name.to_string(), v.to_u64_lossy())).collect()
}

/// Runs `scenario` against a breaker with `config`, with `batches` fresh
/// batches to send and the pipeline-completion channel to watch.
fn run_breaker<Fut>(
    config: CircuitBreakerConfig,
    batches: usize,
    scenario: impl FnOnce(TestContext<OtapPdata>, PipelineCompletionMsgReceiver<OtapPdata>, Vec<OtapPdata>) -> Fut + 'static,
) where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (test_runtime, pipeline_ctx) = harness();
    let wrapper = wrap(&test_runtime, CircuitBreaker::new(&pipeline_ctx, config), CIRCUIT_BREAKER_URN);
    let batches: Vec<OtapPdata> = (0..batches).map(|i| batch(&test_runtime, &format!("b{i}"))).collect();
    test_runtime
        .set_processor(wrapper)
        .run_test(move |mut ctx| async move {
            let (tx, rx) = pipeline_completion_msg_channel(16);
            ctx.set_pipeline_completion_sender(tx);
            scenario(ctx, rx, batches).await;
        })
        .validate(|_| async {});
}

#[test]
fn opens_refuses_probes_and_closes() {
    let config = CircuitBreakerConfig {
        failure_threshold: 2,
        open_duration: Duration::from_millis(200),
        ..CircuitBreakerConfig::default()
    };
    run_breaker(config, 8, |mut ctx, mut rx, batches| async move {
        let mut batches = batches.into_iter();
        let mut next = || Message::PData(batches.next().unwrap());

        // Closed: two batches pass and both fail downstream -> open.
        for _ in 0..2 {
            ctx.process(next()).await.unwrap();
            let sent = forwarded_one(&mut ctx).await;
            ctx.process(downstream_nack(sent, false)).await.unwrap();
            expect_refused(&mut rx, "connection refused").await;
        }
        // Open: refused at once, nothing sent.
        ctx.process(next()).await.unwrap();
        assert!(ctx.drain_pdata().await.is_empty());
        expect_refused(&mut rx, "circuit breaker open").await;

        // After open_duration one probe goes out; others wait behind it.
        tokio::time::sleep(Duration::from_millis(250)).await;
        ctx.process(next()).await.unwrap();
        let probe = forwarded_one(&mut ctx).await;
        ctx.process(next()).await.unwrap();
        assert!(ctx.drain_pdata().await.is_empty(), "only one probe at a time");
        expect_refused(&mut rx, "circuit breaker open").await;
        // The probe fails: open again.
        ctx.process(downstream_nack(probe, true)).await.unwrap();
        expect_refused(&mut rx, "connection refused").await;
        ctx.process(next()).await.unwrap();
        assert!(ctx.drain_pdata().await.is_empty(), "reopened");
        expect_refused(&mut rx, "circuit breaker open").await;

        // Next probe succeeds: closed, traffic flows.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let probe_batch = next();
        let after_probe = next();
        let metrics = probe_closes(&mut ctx, &mut rx, probe_batch, after_probe).await;
        let value = |name: &str| metrics.get(name).copied().expect(name);
        assert_eq!(value("opened.total"), 2);
        assert_eq!(value("closed.total"), 1);
        assert_eq!(value("rejected"), 3);
        assert_eq!(value("failures"), 3);
        assert_eq!(value("successes"), 1);
    });
}

#[test]
fn refused_credentials_open_the_circuit_and_stay_retryable() {
    let unauthenticated =
        "code: 'The request does not have valid authentication credentials', message: \"unauthenticated\"";
    for retry_credential_refusals in [true, false] {
        let config = CircuitBreakerConfig {
            failure_threshold: 1,
            open_duration: Duration::from_secs(60),
            retry_credential_refusals,
            ..CircuitBreakerConfig::default()
        };
        run_breaker(config, 2, move |mut ctx, mut rx, batches| async move {
            let mut batches = batches.into_iter();
            ctx.process(Message::PData(batches.next().unwrap())).await.unwrap();
            let sent = forwarded_one(&mut ctx).await;
            let mut nack = NackMsg::new_permanent(unauthenticated, sent);
            nack.unwind.route.calldata = CallData::from_elem(0u64.into(), 1);
            ctx.process(Message::Control(NodeControlMsg::Nack(nack))).await.unwrap();
            match next_completion(&mut rx).await {
                PipelineCompletionMsg::DeliverNack { nack } => {
                    assert_eq!(nack.permanent, !retry_credential_refusals, "{}", nack.reason);
                    assert!(nack.reason.contains("authentication credentials"));
                }
                other => panic!("{other:?}"),
            }
            // Opened (refused at once) only when refusals count as outages.
            ctx.process(Message::PData(batches.next().unwrap())).await.unwrap();
            assert_eq!(ctx.drain_pdata().await.is_empty(), retry_credential_refusals);
        });
    }
}

#[test]
fn permanent_refusals_do_not_open_the_circuit() {
    let config = CircuitBreakerConfig {
        failure_threshold: 1,
        open_duration: Duration::from_secs(60),
        ..CircuitBreakerConfig::default()
    };
    run_breaker(config, 3, |mut ctx, mut rx, batches| async move {
        for pdata in batches {
            ctx.process(Message::PData(pdata)).await.unwrap();
            let sent = forwarded_one(&mut ctx).await;
            let mut nack = NackMsg::new_permanent("invalid argument", sent);
            nack.unwind.route.calldata = CallData::from_elem(0u64.into(), 1);
            ctx.process(Message::Control(NodeControlMsg::Nack(nack))).await.unwrap();
            match next_completion(&mut rx).await {
                PipelineCompletionMsg::DeliverNack { nack } => assert!(nack.permanent),
                other => panic!("{other:?}"),
            }
        }
    });
}

#[test]
fn a_lost_probe_does_not_keep_the_circuit_open() {
    let config = CircuitBreakerConfig {
        failure_threshold: 1,
        open_duration: Duration::from_millis(100),
        probe_timeout: Duration::from_millis(200),
        ..CircuitBreakerConfig::default()
    };
    run_breaker(config, 5, |mut ctx, mut rx, batches| async move {
        let mut batches = batches.into_iter();
        let mut next = || Message::PData(batches.next().unwrap());

        ctx.process(next()).await.unwrap();
        let sent = forwarded_one(&mut ctx).await;
        ctx.process(downstream_nack(sent, false)).await.unwrap();
        expect_refused(&mut rx, "connection refused").await;

        // A probe goes out and its answer never comes back.
        tokio::time::sleep(Duration::from_millis(150)).await;
        ctx.process(next()).await.unwrap();
        let _lost = forwarded_one(&mut ctx).await;
        ctx.process(next()).await.unwrap();
        assert!(ctx.drain_pdata().await.is_empty(), "refused while the probe may still answer");
        expect_refused(&mut rx, "circuit breaker open").await;

        // Past probe_timeout the next batch is the new probe; its Ack closes.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let probe_batch = next();
        let after_probe = next();
        let metrics = probe_closes(&mut ctx, &mut rx, probe_batch, after_probe).await;
        let value = |name: &str| metrics.get(name).copied().expect(name);
        assert_eq!(value("probes.lost"), 1);
    });
}
