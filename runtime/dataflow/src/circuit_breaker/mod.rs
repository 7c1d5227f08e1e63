//! `urn:wasmtel:processor:circuit_breaker`: stops sending to a downstream
//! exporter that keeps failing, and probes it until it recovers.
//!
//! Place it between `processor:retry` and the exporter. While closed, batches
//! pass and their outcomes are watched; `failure_threshold` consecutive
//! retryable Nacks open the circuit. While open, batches are refused at once
//! with a retryable Nack (no connection attempt), so the retry processor backs
//! off and keeps them. After `open_duration` one batch is let through as a
//! probe (half-open): its Ack closes the circuit, its Nack reopens it. A
//! probe with no answer within `probe_timeout` counts as lost, and the next
//! batch becomes the new probe, so a lost Ack never keeps the circuit shut.
//! Permanent Nacks say the data is bad, not the endpoint, so they do not
//! count as failures.
//!
//! ```yaml
//! breaker:
//!   type: urn:wasmtel:processor:circuit_breaker
//!   config: { failure_threshold: 3, open_duration: 2s, probe_timeout: 30s }
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use linkme::distributed_slice;
use otel_arrow_dfe_config::node::NodeUserConfig;
use otel_arrow_dfe_engine::config::ProcessorConfig;
use otel_arrow_dfe_engine::context::PipelineContext;
use otel_arrow_dfe_engine::control::{AckMsg, CallData, NackMsg, NodeControlMsg};
use otel_arrow_dfe_engine::error::{Error, TypedError};
use otel_arrow_dfe_engine::local::processor as local;
use otel_arrow_dfe_engine::message::Message;
use otel_arrow_dfe_engine::node::NodeId;
use otel_arrow_dfe_engine::processor::ProcessorWrapper;
use otel_arrow_dfe_engine::{
    ConsumerEffectHandlerExtension, Interests, MessageSourceLocalEffectHandlerExtension, ProcessorFactory,
    ProducerEffectHandlerExtension,
};
use otel_arrow_dfe_otap::OTAP_PROCESSOR_FACTORIES;
use otel_arrow_dfe_otap::pdata::OtapPdata;
use otel_arrow_dfe_telemetry::metrics::MetricSet;
use otel_arrow_dfe_telemetry::{otel_info, otel_warn};

use crate::dashboard::board::{self, BreakerPost, Place};

mod config;
mod metrics;
pub use config::CircuitBreakerConfig;
pub use metrics::CircuitBreakerMetrics;

/// The node type of the circuit breaker.
pub const CIRCUIT_BREAKER_URN: &str = "urn:wasmtel:processor:circuit_breaker";

/// The breaker's state, as reported in the `state` gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Batches pass; outcomes are watched.
    Closed,
    /// Batches are refused at once with a retryable Nack.
    Open {
        /// When a probe may go through.
        until: Instant,
    },
    /// One probe is in flight since `since`; everything else is refused
    /// until it returns or `probe_timeout` passes.
    HalfOpen {
        /// When the probe was sent.
        since: Instant,
    },
}

impl State {
    fn gauge(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }
}

/// Calldata marking the half-open probe.
const PROBE: u64 = 1;
const NORMAL: u64 = 0;

/// One circuit breaker instance (one per core; each watches its own traffic).
pub struct CircuitBreaker {
    config: CircuitBreakerConfig,
    state: State,
    consecutive_failures: u32,
    opened: u64,
    closed: u64,
    metrics: MetricSet<CircuitBreakerMetrics>,
    /// What the dashboard shows of this instance (when posted).
    posted: Option<Arc<board::BreakerStatus>>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(pipeline_ctx: &PipelineContext, config: CircuitBreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: State::Closed,
            consecutive_failures: 0,
            opened: 0,
            closed: 0,
            metrics: CircuitBreakerMetrics::register(pipeline_ctx),
            posted: None,
        }
    }

    /// Posts this instance on the dashboard board `name`.
    fn post_to(&mut self, name: &str, place: Place) {
        let status = Arc::new(board::BreakerStatus::default());
        self.posted = Some(status.clone());
        board::with(name, |b| b.breakers.push(BreakerPost { place, status }));
    }

    /// Counts one on the dashboard's post.
    fn bump(&self, counter: impl Fn(&board::BreakerStatus) -> &AtomicU64) {
        if let Some(posted) = &self.posted {
            counter(posted).fetch_add(1, Relaxed);
        }
    }

    /// Copies the state and counters to the dashboard's post.
    fn publish(&self, failure: Option<&str>) {
        let Some(posted) = &self.posted else { return };
        posted.state.store(self.state.gauge() as u8, Relaxed);
        posted.opened.store(self.opened, Relaxed);
        if let Some(reason) = failure {
            *posted.last_failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.to_string());
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    fn open(&mut self) {
        self.state = State::Open { until: Instant::now() + self.config.open_duration };
        self.opened += 1;
        otel_warn!(
            "wasmtel.circuit_breaker.opened",
            consecutive_failures = self.consecutive_failures,
            open_ms = self.config.open_duration.as_millis() as u64
        );
    }

    fn close(&mut self) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.closed += 1;
            otel_info!("wasmtel.circuit_breaker.closed");
        }
        self.consecutive_failures = 0;
    }

    async fn on_pdata(&mut self, mut pdata: OtapPdata, eh: &mut local::EffectHandler<OtapPdata>) -> Result<(), Error> {
        let now = Instant::now();
        let probe = match self.state {
            State::Closed => false,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { since: now };
                otel_info!("wasmtel.circuit_breaker.half_open");
                true
            }
            State::HalfOpen { since } if now.duration_since(since) >= self.config.probe_timeout => {
                self.state = State::HalfOpen { since: now };
                self.metrics.probes_lost.inc();
                otel_warn!(
                    "wasmtel.circuit_breaker.probe_lost",
                    probe_timeout_ms = self.config.probe_timeout.as_millis() as u64
                );
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                self.metrics.rejected.inc();
                self.bump(|p| &p.rejected);
                let nack = NackMsg::new("circuit breaker open: downstream is failing", pdata);
                return eh.notify_nack(nack).await;
            }
        };
        let mut calldata = CallData::new();
        calldata.push(if probe { PROBE } else { NORMAL }.into());
        eh.subscribe_to(Interests::ACKS | Interests::NACKS | Interests::RETURN_DATA, calldata, &mut pdata);
        match eh.send_message_with_source_node(pdata).await {
            Ok(()) => Ok(()),
            // Keep the batch: a refused send becomes a retryable Nack upstream.
            Err(TypedError::ChannelSendError(sent)) => {
                let reason = sent.to_string();
                if probe {
                    self.open();
                }
                eh.notify_nack(NackMsg::new(reason, sent.inner())).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn on_ack(&mut self, ack: AckMsg<OtapPdata>, eh: &mut local::EffectHandler<OtapPdata>) -> Result<(), Error> {
        self.metrics.successes.inc();
        self.bump(|p| &p.successes);
        self.close();
        eh.notify_ack(ack).await
    }

    async fn on_nack(
        &mut self,
        nack: NackMsg<OtapPdata>,
        eh: &mut local::EffectHandler<OtapPdata>,
    ) -> Result<(), Error> {
        let probe = nack.unwind.route.calldata.first().map(|v| u64::from(*v)) == Some(PROBE);
        if !nack.permanent {
            self.metrics.failures.inc();
            self.bump(|p| &p.failures);
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            match self.state {
                State::HalfOpen { .. } if probe => self.open(),
                State::Closed if self.consecutive_failures >= self.config.failure_threshold => self.open(),
                _ => {}
            }
        } else if probe {
            // The probe reached the endpoint and was refused for its content:
            // the endpoint is up.
            self.close();
        }
        eh.notify_nack(nack).await
    }

    fn report(&mut self) {
        self.metrics.state.set(self.state.gauge());
        self.metrics.opened_total.observe(self.opened);
        self.metrics.closed_total.observe(self.closed);
    }
}

/// Whether a Nack's reason is a gRPC status refusing our credentials (the
/// engine's exporters put tonic's status text in the reason).
fn refuses_credentials(reason: &str) -> bool {
    const REFUSALS: [&str; 2] = [
        "The request does not have valid authentication credentials", // UNAUTHENTICATED
        "The caller does not have permission to execute the specified operation", // PERMISSION_DENIED
    ];
    REFUSALS.iter().any(|refusal| reason.contains(refusal))
}

#[async_trait(?Send)]
impl local::Processor<OtapPdata> for CircuitBreaker {
    async fn process(
        &mut self,
        msg: Message<OtapPdata>,
        eh: &mut local::EffectHandler<OtapPdata>,
    ) -> Result<(), Error> {
        match msg {
            Message::PData(pdata) => {
                let result = self.on_pdata(pdata, eh).await;
                self.publish(None);
                result
            }
            Message::Control(NodeControlMsg::Ack(ack)) => {
                let result = self.on_ack(ack, eh).await;
                self.publish(None);
                result
            }
            Message::Control(NodeControlMsg::Nack(mut nack)) => {
                if nack.permanent && self.config.retry_credential_refusals && refuses_credentials(&nack.reason) {
                    nack.permanent = false;
                }
                let failure = (!nack.permanent).then(|| nack.reason.clone());
                let result = self.on_nack(nack, eh).await;
                self.publish(failure.as_deref());
                result
            }
            Message::Control(NodeControlMsg::CollectTelemetry { mut metrics_reporter }) => {
                self.report();
                let _ = metrics_reporter.report(&mut self.metrics);
                Ok(())
            }
            Message::Control(_) => Ok(()),
        }
    }
}

/// Registers the node with the engine.
#[allow(unsafe_code)]
#[distributed_slice(OTAP_PROCESSOR_FACTORIES)]
pub static CIRCUIT_BREAKER_FACTORY: ProcessorFactory<OtapPdata> = ProcessorFactory {
    name: CIRCUIT_BREAKER_URN,
    create: |pipeline_ctx: PipelineContext,
             node: NodeId,
             node_config: Arc<NodeUserConfig>,
             processor_config: &ProcessorConfig,
             _capabilities: &otel_arrow_dfe_engine::capability::registry::Capabilities| {
        let config = CircuitBreakerConfig::from_value(&node_config.config)?;
        let mut breaker = CircuitBreaker::new(&pipeline_ctx, config.clone());
        if let Some(name) = &config.status_board {
            breaker.post_to(name, Place::of(&pipeline_ctx, &node.name));
        }
        Ok(ProcessorWrapper::local(breaker, node, node_config, processor_config))
    },
    context_declarations: None,
    wiring_contract: otel_arrow_dfe_engine::wiring_contract::WiringContract::UNRESTRICTED,
    validate_config: |value| CircuitBreakerConfig::from_value(value).map(|_| ()),
};
