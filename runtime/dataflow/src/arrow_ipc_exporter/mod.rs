//! `urn:wasmtel:exporter:arrow_ipc`: Arrow IPC stream files per signal, with
//! size/time rotation and retention. The engine's `exporter:file` writes
//! OTLP JSON without rotation and `exporter:parquet` writes Parquet, so this
//! node fills the gap.
//!
//! Each signal gets its own directory and its own file sequence:
//! `<directory>/<signal>/<signal>-<core>-<UTC start>-<seq>.arrows`. A file is
//! one Arrow IPC *stream* of the flat per-signal table (see [`crate::flat`]:
//! one row per span / log record / metric data point). While it is written
//! the file carries a `.part` suffix; it is renamed when it is complete
//! (rotation or shutdown), so anything ending in `.arrows` is a finished,
//! readable stream. Retention only ever deletes finished files.
//!
//! Incoming batches are gathered per signal into one record batch (`buffer`:
//! up to `max_rows` rows or `max_bytes`, for at most `flush_interval`, and,
//! with `when_idle`, no longer than the inbox holds more work), so files hold
//! few large record batches. An incoming batch is acknowledged only once the
//! record batch holding its rows is handed to the OS (or synced, with
//! `sync: true`); a write failure Nacks every batch in it (retryable), a batch
//! that is not valid OTLP is Nacked at once (permanent). Shutdown writes what
//! is gathered before the files are finished.
//!
//! ```yaml
//! files:
//!   type: urn:wasmtel:exporter:arrow_ipc
//!   config:
//!     directory: ./wasmtel-data
//!     max_file_bytes: 64MiB
//!     max_file_age: 5m
//!     retention: { max_files: 100, max_age: 24h, max_total_bytes: 10GiB }
//!     compression: zstd     # none (default) | zstd
//!     buffer: { max_rows: 8192, max_bytes: 8MiB, flush_interval: 1s, when_idle: true }
//! ```

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arrow_array::RecordBatch;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use async_trait::async_trait;
use linkme::distributed_slice;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_config::error::Error as ConfigError;
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
use otel_arrow_dfe_telemetry::metrics::MetricSet;
use otel_arrow_dfe_telemetry::otel_warn;

use crate::dashboard::board::{self, ExporterPost, Place, Written};
use crate::otlp_encoder::{OtlpEncoder, Unencodable};
use crate::{config_error, wasmtel_signal};

mod config;
mod flat;
mod metrics;
pub use config::{ArrowIpcConfig, Buffer, Compression, Retention};
pub use metrics::ArrowIpcMetrics;

/// The node type of the Arrow IPC file exporter.
pub const ARROW_IPC_EXPORTER_URN: &str = "urn:wasmtel:exporter:arrow_ipc";

/// Suffix of finished files.
pub const FILE_SUFFIX: &str = "arrows";
const PART_SUFFIX: &str = "part";

/// Counts what goes through to the file.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The open file of one signal.
struct ActiveFile {
    part: PathBuf,
    done: PathBuf,
    opened: Instant,
    writer: StreamWriter<Counted<BufWriter<File>>>,
}

impl ActiveFile {
    fn bytes(&self) -> u64 {
        self.writer.get_ref().written
    }

    /// Ends the stream, syncs and renames the file to its final name.
    fn finish(mut self) -> io::Result<PathBuf> {
        self.writer.finish().map_err(io::Error::other)?;
        let counted = self.writer.into_inner().map_err(io::Error::other)?;
        let file = counted.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.part, &self.done)?;
        Ok(self.done)
    }
}

struct SignalFiles {
    signal: SignalType,
    dir: PathBuf,
    active: Option<ActiveFile>,
    seq: u64,
    pending: Pending,
}

/// Rows gathered for the next record batch, and the batches they came in
/// (acknowledged once it is written).
struct Pending {
    rows: flat::Rows,
    incoming: Vec<OtapPdata>,
    /// OTLP bytes of the gathered batches (what `buffer.max_bytes` bounds).
    otlp_bytes: usize,
    since: Option<Instant>,
}

impl SignalFiles {
    fn name(&self) -> &'static str {
        match self.signal {
            SignalType::Traces => "traces",
            SignalType::Metrics => "metrics",
            SignalType::Logs => "logs",
        }
    }
}

/// One exporter instance (one per core): its own files per signal.
pub struct ArrowIpcExporter {
    config: ArrowIpcConfig,
    core: usize,
    options: IpcWriteOptions,
    signals: [SignalFiles; 3],
    metrics: MetricSet<ArrowIpcMetrics>,
    otlp: OtlpEncoder,
    /// What the dashboard shows of this instance (when posted).
    written: Option<Arc<Written>>,
}

impl ArrowIpcExporter {
    /// An exporter for one core; files are created on the first batch.
    pub fn new(pipeline_ctx: &PipelineContext, config: ArrowIpcConfig) -> Result<Self, ConfigError> {
        let options = config.write_options().map_err(config_error)?;
        let signal = |signal: SignalType, name: &str| SignalFiles {
            signal,
            dir: config.directory.join(name),
            active: None,
            seq: 0,
            pending: Pending {
                rows: flat::Rows::new(wasmtel_signal(signal)),
                incoming: Vec::new(),
                otlp_bytes: 0,
                since: None,
            },
        };
        let signals = [
            signal(SignalType::Traces, "traces"),
            signal(SignalType::Metrics, "metrics"),
            signal(SignalType::Logs, "logs"),
        ];
        // Telemetry files belong to this user: a directory another user can
        // change could swap them for links into files we would then write.
        for files in &signals {
            wasmtel_component::private_dir::ensure(&files.dir)
                .map_err(|e| config_error(format!("{ARROW_IPC_EXPORTER_URN}: output directory: {e}")))?;
        }
        let mut exporter = ArrowIpcExporter {
            core: pipeline_ctx.core_id(),
            options,
            signals,
            metrics: ArrowIpcMetrics::register(pipeline_ctx),
            otlp: OtlpEncoder::default(),
            written: None,
            config,
        };
        exporter.recover_parts();
        Ok(exporter)
    }

    /// Files left `.part` by a crash of this core's writer hold complete
    /// messages up to the last flush; publish them so they are read and aged.
    fn recover_parts(&mut self) {
        let prefix_core = format!("-{}-", self.core);
        for files in &self.signals {
            let Ok(entries) = fs::read_dir(&files.dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(files.name())
                    && name.contains(&prefix_core)
                    && name.ends_with(&format!(".{FILE_SUFFIX}.{PART_SUFFIX}"))
                {
                    let done = path.with_extension("");
                    let _ = fs::rename(&path, done);
                }
            }
        }
    }

    fn index(signal: SignalType) -> usize {
        match signal {
            SignalType::Traces => 0,
            SignalType::Metrics => 1,
            SignalType::Logs => 2,
        }
    }

    fn open(&mut self, index: usize, batch: &RecordBatch) -> io::Result<()> {
        let files = &mut self.signals[index];
        let stamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string().replace([':', '-'], "");
        let (done, part) = loop {
            files.seq += 1;
            let base = format!("{}-{}-{}-{:06}.{FILE_SUFFIX}", files.name(), self.core, stamp, files.seq);
            let done = files.dir.join(&base);
            let part = files.dir.join(format!("{base}.{PART_SUFFIX}"));
            if !done.exists() && !part.exists() {
                break (done, part);
            }
        };
        wasmtel_component::private_dir::check(&files.dir)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()))?;
        // create_new never follows a link planted at the name.
        let file = File::options().write(true).create_new(true).mode(0o600).open(&part)?;
        let counted = Counted { inner: BufWriter::with_capacity(1 << 20, file), written: 0 };
        let writer = StreamWriter::try_new_with_options(counted, &batch.schema(), self.options.clone())
            .map_err(io::Error::other)?;
        files.active = Some(ActiveFile { part, done, opened: Instant::now(), writer });
        Ok(())
    }

    fn finish(&mut self, index: usize) {
        if let Some(active) = self.signals[index].active.take() {
            let part = active.part.clone();
            match active.finish() {
                Ok(_) => self.metrics.files_finished.inc(),
                Err(e) => otel_warn!(
                    "wasmtel.arrow_ipc.finish_failed",
                    file = part.display().to_string(),
                    error = e.to_string()
                ),
            }
        }
    }

    fn write(&mut self, index: usize, batch: &RecordBatch) -> io::Result<u64> {
        let rotate = self.signals[index].active.as_ref().is_some_and(|active| {
            active.bytes() >= self.config.max_file_bytes.as_u64() || active.opened.elapsed() >= self.config.max_file_age
        });
        if rotate {
            self.finish(index);
            self.apply_retention(index);
        }
        if self.signals[index].active.is_none() {
            self.open(index, batch)?;
        }
        let sync = self.config.sync;
        let Some(active) = self.signals[index].active.as_mut() else {
            return Err(io::Error::other("no open file"));
        };
        let before = active.bytes();
        let result = active
            .writer
            .write(batch)
            .map_err(io::Error::other)
            .and_then(|()| active.writer.flush().map_err(io::Error::other));
        let result =
            result.and_then(|()| if sync { active.writer.get_ref().inner.get_ref().sync_data() } else { Ok(()) });
        match result {
            Ok(()) => Ok(active.bytes() - before),
            Err(e) => {
                // A partly written message leaves the stream unreadable past
                // it: drop this file (keeping what was flushed) and start anew.
                if let Some(active) = self.signals[index].active.take() {
                    let _ = fs::rename(&active.part, &active.done);
                }
                Err(e)
            }
        }
    }

    /// Deletes finished files of one signal beyond the retention limits.
    fn apply_retention(&mut self, index: usize) {
        let retention = &self.config.retention;
        if retention.max_files.is_none() && retention.max_age.is_none() && retention.max_total_bytes.is_none() {
            return;
        }
        let files = &self.signals[index];
        let Ok(entries) = fs::read_dir(&files.dir) else { return };
        let suffix = format!(".{FILE_SUFFIX}");
        let mut finished: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(files.name()) && name.ends_with(&suffix)
            })
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        // Newest first: what survives is a prefix.
        finished.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.2.cmp(&a.2)));
        let now = SystemTime::now();
        let mut total = 0u64;
        let mut deleted = 0u64;
        for (position, (modified, len, path)) in finished.iter().enumerate() {
            total += len;
            let too_old = retention.max_age.is_some_and(|max| now.duration_since(*modified).unwrap_or_default() > max);
            let too_many = retention.max_files.is_some_and(|max| position >= max);
            let too_big = retention.max_total_bytes.is_some_and(|max| total > max.as_u64());
            if (too_old || too_many || too_big) && remove(path) {
                deleted += 1;
            }
        }
        self.metrics.files_deleted.add(deleted);
    }

    async fn export(&mut self, pdata: OtapPdata, eh: &EffectHandler<OtapPdata>) -> Result<(), Error> {
        let signal = pdata.signal_type();
        let (otlp, pdata) = match self.otlp.encode(pdata, eh).await? {
            Ok(encoded) => encoded,
            Err(Unencodable { reason, pdata }) => {
                self.metrics.invalid.inc();
                return eh.notify_nack(NackMsg::new_permanent(format!("arrow_ipc: {reason}"), pdata)).await;
            }
        };
        let index = Self::index(signal);
        let buffer = &self.config.buffer;
        let pending = &mut self.signals[index].pending;
        match pending.rows.append(&otlp) {
            Ok(0) => return eh.notify_ack(AckMsg::new(pdata)).await,
            Ok(_) => {}
            Err(e) => {
                self.metrics.invalid.inc();
                return eh.notify_nack(NackMsg::new_permanent(format!("arrow_ipc: {e}"), pdata)).await;
            }
        }
        pending.otlp_bytes += otlp.len();
        pending.since.get_or_insert_with(Instant::now);
        pending.incoming.push(pdata);
        if pending.rows.len() >= buffer.max_rows || pending.otlp_bytes as u64 >= buffer.max_bytes.as_u64() {
            self.write_pending(index, eh).await?;
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        self.signals.iter().any(|files| !files.pending.incoming.is_empty())
    }

    /// Writes the rows gathered for one signal as one record batch, then
    /// acknowledges the batches they came in (or Nacks them all).
    async fn write_pending(&mut self, index: usize, eh: &EffectHandler<OtapPdata>) -> Result<(), Error> {
        let pending = &mut self.signals[index].pending;
        if pending.incoming.is_empty() {
            return Ok(());
        }
        let incoming = std::mem::take(&mut pending.incoming);
        pending.otlp_bytes = 0;
        pending.since = None;
        let written = pending
            .rows
            .finish()
            .map_err(io::Error::other)
            .and_then(|batch| self.write(index, &batch).map(|bytes| (batch.num_rows(), bytes)));
        match written {
            Ok((rows, bytes)) => {
                self.metrics.batches.inc();
                self.metrics.acknowledged.add(incoming.len() as u64);
                self.metrics.rows.add(rows as u64);
                self.metrics.bytes.add(bytes);
                if let Some(written) = &self.written {
                    written.add(wasmtel_signal(self.signals[index].signal), rows as u64, bytes);
                }
                for pdata in incoming {
                    eh.notify_ack(AckMsg::new(pdata)).await?;
                }
            }
            Err(e) => {
                self.metrics.write_failures.add(incoming.len() as u64);
                let signal = self.signals[index].name();
                otel_warn!("wasmtel.arrow_ipc.write_failed", signal = signal, error = e.to_string());
                for pdata in incoming {
                    eh.notify_nack(NackMsg::new(format!("arrow_ipc: writing {signal}: {e}"), pdata)).await?;
                }
            }
        }
        Ok(())
    }

    /// Writes every signal's gathered rows (with `min_age`, only rows gathered at least that long ago).
    async fn write_all_pending(
        &mut self,
        eh: &EffectHandler<OtapPdata>,
        min_age: Option<std::time::Duration>,
    ) -> Result<(), Error> {
        for index in 0..self.signals.len() {
            let due =
                self.signals[index].pending.since.is_some_and(|since| min_age.is_none_or(|age| since.elapsed() >= age));
            if due {
                self.write_pending(index, eh).await?;
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) {
        for index in 0..self.signals.len() {
            let expired = self.signals[index]
                .active
                .as_ref()
                .is_some_and(|active| active.opened.elapsed() >= self.config.max_file_age);
            if expired {
                self.finish(index);
            }
            self.apply_retention(index);
        }
    }

    fn finish_all(&mut self) {
        for index in 0..self.signals.len() {
            self.finish(index);
            self.apply_retention(index);
        }
    }
}

fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        // Another core's exporter may have just removed it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            otel_warn!("wasmtel.arrow_ipc.retention_failed", file = path.display().to_string(), error = e.to_string());
            false
        }
    }
}

#[async_trait(?Send)]
impl Exporter<OtapPdata> for ArrowIpcExporter {
    async fn start(
        mut self: Box<Self>,
        mut inbox: ExporterInbox<OtapPdata>,
        eh: EffectHandler<OtapPdata>,
    ) -> Result<TerminalState, Error> {
        let _timer = eh.start_periodic_timer(self.config.tick_interval()).await?;
        loop {
            let message = if self.config.buffer.when_idle && self.has_pending() {
                // Group commit: a zero timeout polls the inbox once; nothing
                // waiting means the gathered rows are written now.
                match tokio::time::timeout(std::time::Duration::ZERO, inbox.recv()).await {
                    Ok(message) => message?,
                    Err(_) => {
                        self.write_all_pending(&eh, None).await?;
                        continue;
                    }
                }
            } else {
                inbox.recv().await?
            };
            match message {
                Message::PData(pdata) => self.export(pdata, &eh).await?,
                Message::Control(NodeControlMsg::TimerTick { .. }) => {
                    self.write_all_pending(&eh, Some(self.config.buffer.flush_interval)).await?;
                    self.on_tick();
                }
                Message::Control(NodeControlMsg::CollectTelemetry { mut metrics_reporter }) => {
                    let _ = metrics_reporter.report(&mut self.metrics);
                }
                // The inbox hands over Shutdown only after buffered batches
                // were delivered: write what is gathered, then finish the files.
                Message::Control(NodeControlMsg::Shutdown { deadline, .. }) => {
                    self.write_all_pending(&eh, None).await?;
                    self.finish_all();
                    return Ok(TerminalState::new(deadline, [self.metrics.snapshot()]));
                }
                Message::Control(_) => {}
            }
        }
    }
}

/// Registers the node with the engine.
#[allow(unsafe_code)]
#[distributed_slice(OTAP_EXPORTER_FACTORIES)]
pub static ARROW_IPC_EXPORTER_FACTORY: ExporterFactory<OtapPdata> = ExporterFactory {
    name: ARROW_IPC_EXPORTER_URN,
    create: |pipeline_ctx: PipelineContext,
             node: NodeId,
             node_config: Arc<NodeUserConfig>,
             exporter_config: &ExporterConfig,
             _capabilities: &otel_arrow_dfe_engine::capability::registry::Capabilities| {
        let config = ArrowIpcConfig::from_value(&node_config.config)?;
        let board = config.status_board.clone();
        let directory = config.directory.clone();
        let mut exporter = ArrowIpcExporter::new(&pipeline_ctx, config)?;
        if let Some(name) = board {
            let written = Arc::new(Written::default());
            exporter.written = Some(written.clone());
            let place = Place::of(&pipeline_ctx, &node.name);
            board::with(&name, |b| b.exporters.push(ExporterPost { place, directory, written }));
        }
        Ok(ExporterWrapper::local(exporter, node, node_config, exporter_config))
    },
    context_declarations: None,
    wiring_contract: otel_arrow_dfe_engine::wiring_contract::WiringContract::UNRESTRICTED,
    validate_config: |value| ArrowIpcConfig::from_value(value).map(|_| ()),
};
