//! `urn:wasmtel:receiver:embedded`: the ingress of an [`crate::EmbeddedPipeline`].
//!
//! Node factories are plain `fn`s, so the receiver finds the application's
//! queue by name in a process-wide registry (`config: { channel: <name> }`,
//! filled in by `EmbeddedPipeline::start`). Every receiver instance (one per
//! core) takes from the same queue. Each batch is subscribed for Ack/Nack and
//! its outcome returned to the caller that submitted it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use linkme::distributed_slice;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_config::node::NodeUserConfig;
use otel_arrow_dfe_engine::config::ReceiverConfig;
use otel_arrow_dfe_engine::context::PipelineContext;
use otel_arrow_dfe_engine::control::{CallData, NodeControlMsg};
use otel_arrow_dfe_engine::error::{Error, TypedError};
use otel_arrow_dfe_engine::local::receiver::{ControlChannel, EffectHandler, Receiver};
use otel_arrow_dfe_engine::node::NodeId;
use otel_arrow_dfe_engine::receiver::ReceiverWrapper;
use otel_arrow_dfe_engine::terminal_state::TerminalState;
use otel_arrow_dfe_engine::{
    Interests, MessageSourceLocalEffectHandlerExtension, ProducerEffectHandlerExtension, ReceiverFactory,
};
use otel_arrow_dfe_otap::OTAP_RECEIVER_FACTORIES;
use otel_arrow_dfe_otap::pdata::{Context, OtapPdata};
use otel_arrow_dfe_pdata::OtlpProtoBytes;
use otel_arrow_dfe_pdata_codec::OtapPayload;
use otel_arrow_dfe_telemetry::metrics::MetricSetSnapshot;

use crate::channels::Channels;
use crate::config_error;

mod config;
use config::EmbeddedReceiverConfig;

/// How long a draining receiver waits for the Acks of what it admitted
/// before it lets the rest of the pipeline stop (which some batches need).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The node type of the embedded receiver.
pub const EMBEDDED_RECEIVER_URN: &str = "urn:wasmtel:receiver:embedded";

/// How a submitted batch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Acknowledged: exported, or dropped on purpose by a processor.
    Accepted,
    /// Refused somewhere in the pipeline.
    Refused { reason: String, permanent: bool },
    /// The pipeline stopped before the batch completed.
    Stopped,
}

pub(crate) enum Reply {
    Blocking(std::sync::mpsc::SyncSender<Completion>),
    Async(tokio::sync::oneshot::Sender<Completion>),
    /// Nobody waits; the outcome is only counted.
    Detached,
}

pub(crate) struct Request {
    pub signal: SignalType,
    pub otlp: Bytes,
    pub reply: Reply,
}

/// The application side and the pipeline side of one embedded pipeline.
pub(crate) struct Inbound {
    pub tx: flume::Sender<Request>,
    rx: flume::Receiver<Request>,
    in_flight: Mutex<u64>,
    idle: Condvar,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub stopped: AtomicU64,
}

impl Inbound {
    pub fn new(capacity: usize) -> Arc<Self> {
        let (tx, rx) = flume::bounded(capacity);
        Arc::new(Inbound {
            tx,
            rx,
            in_flight: Mutex::new(0),
            idle: Condvar::new(),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
        })
    }

    /// Counts a batch in before it is queued.
    pub fn begin(&self) {
        *self.in_flight.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    /// Delivers an outcome and counts the batch out.
    pub fn complete(&self, reply: Reply, completion: Completion) {
        let counter = match &completion {
            Completion::Accepted => &self.accepted,
            Completion::Refused { .. } => &self.refused,
            Completion::Stopped => &self.stopped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match reply {
            Reply::Blocking(tx) => {
                let _ = tx.try_send(completion);
            }
            Reply::Async(tx) => {
                let _ = tx.send(completion);
            }
            Reply::Detached => {}
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        *in_flight = in_flight.saturating_sub(1);
        if *in_flight == 0 {
            self.idle.notify_all();
        }
    }

    /// Waits until no batch is queued or in the pipeline; false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        while *in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            in_flight = self.idle.wait_timeout(in_flight, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    pub fn in_flight(&self) -> u64 {
        *self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers everything still queued with `Stopped`.
    pub fn reject_queued(&self) {
        while let Ok(request) = self.rx.try_recv() {
            self.complete(request.reply, Completion::Stopped);
        }
    }
}

/// The application ends of the running pipelines, by channel name.
pub(crate) static CHANNELS: Channels<Inbound> = Channels::new();

struct EmbeddedReceiver {
    inbound: Arc<Inbound>,
}

impl EmbeddedReceiver {
    async fn admit(
        &self,
        request: Request,
        next_id: &mut u64,
        pending: &mut HashMap<u64, Reply>,
        eh: &EffectHandler<OtapPdata>,
    ) -> Result<(), Error> {
        let Request { signal, otlp, reply } = request;
        let id = *next_id;
        *next_id += 1;
        let mut pdata =
            OtapPdata::new(Context::default(), OtapPayload::from_otlp(OtlpProtoBytes::new_from_bytes(signal, otlp)));
        let mut calldata = CallData::new();
        calldata.push(id.into());
        eh.subscribe_to(Interests::ACKS | Interests::NACKS, calldata, &mut pdata);
        let _ = pending.insert(id, reply);
        match eh.send_message_with_source_node(pdata).await {
            Ok(()) => Ok(()),
            Err(TypedError::ChannelSendError(sent)) => {
                if let Some(reply) = pending.remove(&id) {
                    let reason = format!("pipeline refused the batch: {sent}");
                    self.inbound.complete(reply, Completion::Refused { reason, permanent: false });
                }
                Ok(())
            }
            Err(e) => {
                if let Some(reply) = pending.remove(&id) {
                    self.inbound.complete(reply, Completion::Refused { reason: e.to_string(), permanent: true });
                }
                Err(e.into())
            }
        }
    }

    fn resolve(&self, calldata: &CallData, pending: &mut HashMap<u64, Reply>, completion: Completion) {
        let id = calldata.first().map(|v| u64::from(*v));
        if let Some(reply) = id.and_then(|id| pending.remove(&id)) {
            self.inbound.complete(reply, completion);
        }
    }
}

#[async_trait(?Send)]
impl Receiver<OtapPdata> for EmbeddedReceiver {
    async fn start(
        self: Box<Self>,
        mut ctrl: ControlChannel<OtapPdata>,
        eh: EffectHandler<OtapPdata>,
    ) -> Result<TerminalState, Error> {
        eh.signal_ready();
        let rx = self.inbound.rx.clone();
        let mut pending: HashMap<u64, Reply> = HashMap::new();
        let mut next_id = 0u64;
        let mut draining: Option<Instant> = None;
        loop {
            if let Some(deadline) = draining
                && (pending.is_empty() || Instant::now() >= deadline)
            {
                // Everything admitted has completed, or the grace passed.
                // Exiting drops this receiver's senders, which is what lets
                // the downstream nodes drain: a batch a processor holds
                // until its shutdown (a batch processor's) goes on then, but
                // its caller hears Stopped (retryable) — delivered or
                // reported failed, never silently lost.
                for (_, reply) in pending.drain() {
                    self.inbound.complete(reply, Completion::Stopped);
                }
                return Ok(TerminalState::new::<[MetricSetSnapshot; 0]>(deadline, []));
            }
            let drain_wait = async {
                match draining {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };
            // Batches queued before a shutdown request are still taken: shutdown
            // flushes them before it drains the pipeline.
            let intake_open = draining.is_none();
            tokio::select! {
                biased;
                msg = ctrl.recv() => match msg.map_err(Error::ChannelRecvError)? {
                    NodeControlMsg::Ack(ack) => self.resolve(&ack.unwind.route.calldata, &mut pending, Completion::Accepted),
                    NodeControlMsg::Nack(nack) => {
                        let completion = Completion::Refused { reason: nack.reason.clone(), permanent: nack.permanent };
                        self.resolve(&nack.unwind.route.calldata, &mut pending, completion);
                    }
                    NodeControlMsg::DrainIngress { deadline, .. } if draining.is_none() => {
                        // Intake closes now; what is in flight gets a short
                        // grace to be acknowledged before the rest of the
                        // pipeline is let to stop.
                        draining = Some(deadline.min(Instant::now() + DRAIN_GRACE));
                        eh.notify_receiver_drained().await?;
                    }
                    NodeControlMsg::DrainIngress { .. } => {}
                    NodeControlMsg::Shutdown { deadline, .. } => {
                        for (_, reply) in pending.drain() {
                            self.inbound.complete(reply, Completion::Stopped);
                        }
                        return Ok(TerminalState::new::<[MetricSetSnapshot; 0]>(deadline, []));
                    }
                    _ => {}
                },
                request = rx.recv_async(), if intake_open => {
                    if let Ok(request) = request {
                        self.admit(request, &mut next_id, &mut pending, &eh).await?;
                    }
                }
                () = drain_wait => {}
            }
        }
    }
}

#[allow(unsafe_code)]
#[distributed_slice(OTAP_RECEIVER_FACTORIES)]
pub static EMBEDDED_RECEIVER_FACTORY: ReceiverFactory<OtapPdata> = ReceiverFactory {
    name: EMBEDDED_RECEIVER_URN,
    create: |_pipeline_ctx: PipelineContext,
             node: NodeId,
             node_config: Arc<NodeUserConfig>,
             receiver_config: &ReceiverConfig,
             _capabilities: &otel_arrow_dfe_engine::capability::registry::Capabilities| {
        let config: EmbeddedReceiverConfig = serde_json::from_value(node_config.config.clone())
            .map_err(|e| config_error(format!("{EMBEDDED_RECEIVER_URN}: {e}")))?;
        let inbound = CHANNELS.lookup(&config.channel).ok_or_else(|| {
            config_error(format!(
                "{EMBEDDED_RECEIVER_URN}: no embedded pipeline named {:?} in this process (start it with EmbeddedPipeline)",
                config.channel
            ))
        })?;
        Ok(ReceiverWrapper::local(EmbeddedReceiver { inbound }, node, node_config, receiver_config))
    },
    context_declarations: None,
    wiring_contract: otel_arrow_dfe_engine::wiring_contract::WiringContract::UNRESTRICTED,
    validate_config: |value| {
        serde_json::from_value::<EmbeddedReceiverConfig>(value.clone())
            .map(|_| ())
            .map_err(|e| config_error(format!("{EMBEDDED_RECEIVER_URN}: {e}")))
    },
};
