//! `urn:wasmtel:exporter:embedded`: the egress of an [`crate::EmbeddedPipeline`].
//!
//! The mirror of the embedded receiver: each batch that reaches it is handed
//! to the application as OTLP bytes ([`Output`]), and the application's
//! answer is the node's Ack or Nack — so the batch's submitter hears back
//! only once the application has taken the result (a Go collector's next
//! consumer, for a segment that ends in Go components). An output dropped
//! without an answer is refused, retryable. Like the receiver, the node finds
//! its queue by name in a process-wide registry (`config: { channel }`,
//! filled in by `EmbeddedPipeline::start`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use linkme::distributed_slice;
use otel_arrow_dfe_config::node::NodeUserConfig;
use otel_arrow_dfe_engine::config::ExporterConfig;
use otel_arrow_dfe_engine::context::PipelineContext;
use otel_arrow_dfe_engine::control::{AckMsg, NackMsg, NodeControlMsg};
use otel_arrow_dfe_engine::error::Error;
use otel_arrow_dfe_engine::exporter::ExporterWrapper;
use otel_arrow_dfe_engine::local::exporter::{EffectHandler, Exporter};
use otel_arrow_dfe_engine::message::{ExporterInbox, Message};
use otel_arrow_dfe_engine::node::NodeId;
use otel_arrow_dfe_engine::terminal_state::TerminalState;
use otel_arrow_dfe_engine::{ConsumerEffectHandlerExtension, ExporterFactory};
use otel_arrow_dfe_otap::OTAP_EXPORTER_FACTORIES;
use otel_arrow_dfe_otap::pdata::OtapPdata;
use otel_arrow_dfe_telemetry::metrics::MetricSetSnapshot;
use wasmtel_runtime::Signal;

use crate::channels::Channels;
use crate::otlp_encoder::{OtlpEncoder, Unencodable};
use crate::{config_error, wasmtel_signal};

mod config;
use config::EmbeddedExporterConfig;

/// The node type of the embedded exporter.
pub const EMBEDDED_EXPORTER_URN: &str = "urn:wasmtel:exporter:embedded";

/// Why the application refused an output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Its reason, passed upstream as the Nack's.
    pub reason: String,
    /// Retrying the same batch cannot succeed.
    pub permanent: bool,
}

/// A batch the pipeline hands back: answer it with [`Output::accept`] or
/// [`Output::refuse`]; dropping it refuses it (retryable).
#[derive(Debug)]
pub struct Output {
    /// Its signal.
    pub signal: Signal,
    /// The OTLP request.
    pub otlp: Bytes,
    answer: tokio::sync::oneshot::Sender<Result<(), Refusal>>,
}

impl Output {
    /// The application took the batch: the node Acks it.
    pub fn accept(self) {
        let _ = self.answer.send(Ok(()));
    }

    /// The application refused the batch: the node Nacks it with `reason`.
    pub fn refuse(self, reason: impl Into<String>, permanent: bool) {
        let _ = self.answer.send(Err(Refusal { reason: reason.into(), permanent }));
    }
}

/// The pipeline side and the application side of one egress.
pub(crate) struct Outbound {
    tx: flume::Sender<Output>,
    pub rx: flume::Receiver<Output>,
}

impl Outbound {
    pub fn new() -> Arc<Self> {
        // The node bounds what is in flight; the queue only needs to hold that.
        let (tx, rx) = flume::unbounded();
        Arc::new(Outbound { tx, rx })
    }

    /// Refuses everything handed over and not taken (the pipeline stopped).
    pub fn refuse_queued(&self) {
        while let Ok(output) = self.rx.try_recv() {
            output.refuse("the pipeline stopped before the application took the batch", false);
        }
    }
}

/// The application ends of the running pipelines, by channel name.
pub(crate) static CHANNELS: Channels<Outbound> = Channels::new();

type Answered = Pin<Box<dyn std::future::Future<Output = (OtapPdata, Result<(), Refusal>)>>>;

struct EmbeddedExporter {
    outbound: Arc<Outbound>,
    max_in_flight: usize,
    otlp: OtlpEncoder,
}

impl EmbeddedExporter {
    /// Hands `pdata` over as OTLP; the returned future yields it back with the answer.
    async fn hand_over(&mut self, pdata: OtapPdata, eh: &EffectHandler<OtapPdata>) -> Result<Option<Answered>, Error> {
        let signal = wasmtel_signal(pdata.signal_type());
        let (otlp, pdata) = match self.otlp.encode(pdata, eh).await? {
            Ok(encoded) => encoded,
            Err(Unencodable { reason, pdata }) => {
                eh.notify_nack(NackMsg::new_permanent(reason, pdata)).await?;
                return Ok(None);
            }
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        if self.outbound.tx.send(Output { signal, otlp, answer }).is_err() {
            let nack = NackMsg::new("the application's egress is gone", pdata);
            eh.notify_nack(nack).await?;
            return Ok(None);
        }
        Ok(Some(Box::pin(async move {
            let result = answered.await.unwrap_or_else(|_| {
                Err(Refusal { reason: "the application dropped the batch without an answer".into(), permanent: false })
            });
            (pdata, result)
        })))
    }
}

async fn settle(eh: &EffectHandler<OtapPdata>, pdata: OtapPdata, result: Result<(), Refusal>) -> Result<(), Error> {
    match result {
        Ok(()) => eh.notify_ack(AckMsg::new(pdata)).await,
        Err(Refusal { reason, permanent: true }) => eh.notify_nack(NackMsg::new_permanent(reason, pdata)).await,
        Err(Refusal { reason, permanent: false }) => eh.notify_nack(NackMsg::new(reason, pdata)).await,
    }
}

#[async_trait(?Send)]
impl Exporter<OtapPdata> for EmbeddedExporter {
    async fn start(
        mut self: Box<Self>,
        mut inbox: ExporterInbox<OtapPdata>,
        eh: EffectHandler<OtapPdata>,
    ) -> Result<TerminalState, Error> {
        let mut pending: FuturesUnordered<Answered> = FuturesUnordered::new();
        loop {
            let room = pending.len() < self.max_in_flight;
            tokio::select! {
                Some((pdata, result)) = pending.next(), if !pending.is_empty() => settle(&eh, pdata, result).await?,
                message = inbox.recv(), if room => match message? {
                    Message::PData(pdata) => {
                        if let Some(answered) = self.hand_over(pdata, &eh).await? {
                            pending.push(answered);
                        }
                    }
                    // Shutdown comes after the batches before it were handed
                    // over: wait for their answers until the deadline.
                    Message::Control(NodeControlMsg::Shutdown { deadline, .. }) => {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        let _ = tokio::time::timeout(left.max(Duration::from_millis(1)), async {
                            while let Some((pdata, result)) = pending.next().await {
                                let _ = settle(&eh, pdata, result).await;
                            }
                        })
                        .await;
                        return Ok(TerminalState::new::<[MetricSetSnapshot; 0]>(deadline, []));
                    }
                    Message::Control(_) => {}
                },
            }
        }
    }
}

#[allow(unsafe_code)]
#[distributed_slice(OTAP_EXPORTER_FACTORIES)]
pub static EMBEDDED_EXPORTER_FACTORY: ExporterFactory<OtapPdata> = ExporterFactory {
    name: EMBEDDED_EXPORTER_URN,
    create: |_pipeline_ctx: PipelineContext,
             node: NodeId,
             node_config: Arc<NodeUserConfig>,
             exporter_config: &ExporterConfig,
             _capabilities: &otel_arrow_dfe_engine::capability::registry::Capabilities| {
        let config: EmbeddedExporterConfig = serde_json::from_value(node_config.config.clone())
            .map_err(|e| config_error(format!("{EMBEDDED_EXPORTER_URN}: {e}")))?;
        let outbound = CHANNELS.lookup(&config.channel).ok_or_else(|| {
            config_error(format!(
                "{EMBEDDED_EXPORTER_URN}: no embedded pipeline named {:?} in this process (start it with EmbeddedPipeline)",
                config.channel
            ))
        })?;
        let exporter =
            EmbeddedExporter { outbound, max_in_flight: config.max_in_flight.max(1), otlp: OtlpEncoder::default() };
        Ok(ExporterWrapper::local(exporter, node, node_config, exporter_config))
    },
    context_declarations: None,
    wiring_contract: otel_arrow_dfe_engine::wiring_contract::WiringContract::UNRESTRICTED,
    validate_config: |value| {
        serde_json::from_value::<EmbeddedExporterConfig>(value.clone())
            .map(|_| ())
            .map_err(|e| config_error(format!("{EMBEDDED_EXPORTER_URN}: {e}")))
    },
};
