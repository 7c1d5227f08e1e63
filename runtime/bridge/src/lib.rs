//! `wasmtel bridge`: the subprocess side of the collector's `wasm`
//! processor, for collector builds without cgo. It serves
//! proto/bridge.proto and grpc.health.v1 on a unix socket in a private
//! directory; every plugin of the collector is loaded here once and each
//! batch is one unary call whose gRPC deadline is its budget. A call the
//! client cancels interrupts the guest. On Linux the batch's bytes may
//! travel in shared memory instead of in the call ([`shared_memory`]). Log events go to stderr as JSON
//! lines (level, plugin, stream, message) for the parent's logger. The
//! process ends on SIGTERM/SIGINT and, with `watch_stdin`, when its
//! standard input closes: the parent died.

pub mod proto;
pub mod shared_memory;

mod generated {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/wasmtel.bridge.v1.Bridge.rs"));
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.Health.rs"));
}

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

pub use generated::bridge_client::BridgeClient;
use generated::bridge_server::{Bridge, BridgeServer};
pub use generated::health_client::HealthClient;
use generated::health_server::{Health, HealthServer};
use shared_memory::{AbandonWatch, Abandoned, SlotLease, Slots};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};
use wasmtel_dataflow::{EmbeddedError, Segment, SegmentSpec};
use wasmtel_registry::Policy;
use wasmtel_runtime::{
    Cancel, FailureKind, LoadError, Outcome, Plugin, PluginConfig, ProcessError, Runtime, RuntimeConfig, Signal,
};

/// The trailer naming the runtime's failure kind of a refused batch.
pub const FAILURE_KIND_TRAILER: &str = "wasmtel-failure-kind";

/// Why the bridge could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The socket's directory is not private (or unreadable), or binding the socket failed.
    #[error("socket {path}: {message}")]
    Socket {
        /// The socket path that was asked for.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The runtime could not be created from the options' `runtime` config.
    #[error("wasmtel runtime: {0}")]
    Runtime(#[from] LoadError),
    /// Another I/O failure: starting the async runtime, replacing a stale
    /// socket file or setting the socket's mode.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How [`serve`] runs.
pub struct BridgeOptions {
    /// Where to listen; its directory must be private (0700, ours).
    pub socket: PathBuf,
    /// Settings of the runtime that every plugin of the collector is loaded into.
    pub runtime: RuntimeConfig,
    /// Exit when standard input closes (the parent holds its write end).
    pub watch_stdin: bool,
    /// Shared-memory slots batches may travel in (none: every batch inline).
    pub slots: Slots,
}

/// Serves until a termination signal (or stdin EOF with `watch_stdin`).
pub fn serve(options: BridgeOptions) -> Result<(), BridgeError> {
    let runtime = Runtime::new(options.runtime.clone())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = tokio.block_on(serve_async(options, runtime));
    // The stdin watcher's blocking read never ends while the parent lives:
    // do not wait for it.
    tokio.shutdown_background();
    result
}

/// HTTP/2 flow-control window of the bridge socket, both directions.
const HTTP2_WINDOW: u32 = 64 << 20;

async fn serve_async(options: BridgeOptions, runtime: Runtime) -> Result<(), BridgeError> {
    let socket = &options.socket;
    check_private_dir(socket)?;
    if std::fs::symlink_metadata(socket).is_ok() {
        std::fs::remove_file(socket)?;
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .map_err(|e| BridgeError::Socket { path: socket.clone(), message: e.to_string() })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    let slots = options.slots.len();
    let service = Arc::new(Service {
        runtime,
        plugins: RwLock::default(),
        segments: RwLock::default(),
        outputs: Mutex::default(),
        next_id: AtomicU64::new(1),
        slots: options.slots,
        abandon_watch: AbandonWatch::default(),
    });
    let shutdown = shutdown_signal(options.watch_stdin);
    tracing::info!(socket = %socket.display(), shared_memory_slots = slots, "wasmtel bridge serving");
    let accept = async {
        loop {
            // A connection that cannot be taken on is closed and the bridge
            // goes on serving (the client reconnects); a failing accept
            // (out of descriptors) is retried after a pause, not spun on.
            let spawned = match listener.accept().await.and_then(|(stream, _)| stream.into_std()) {
                Ok(stream) => {
                    let service = Arc::clone(&service);
                    std::thread::Builder::new()
                        .name("wasmtel-bridge-conn".into())
                        .spawn(move || serve_connection(stream, service))
                        .map(drop)
                }
                Err(error) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(error)
                }
            };
            if let Err(error) = spawned {
                tracing::warn!(%error, "wasmtel bridge: a connection could not be served");
            }
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => {}
    }
    let _ = std::fs::remove_file(socket);
    tracing::info!("wasmtel bridge stopped");
    Ok(())
}

/// Serves one connection on this thread, until the client closes it.
///
/// A connection per thread, each with a single-threaded runtime: a batch in
/// a shared-memory slot is read, run and answered on the thread the request
/// woke, with no hand-over to other threads (each costs a cross-core
/// wake-up, a good part of a small batch's cost). The guest runs between
/// turns of the runtime, outside it ([`run_on_connection_thread`]): WASI's
/// synchronous host calls start a runtime of their own, which cannot nest.
/// The collector sends each slot's batches on a connection of their own, one
/// at a time, so running them here blocks no other call; inline batches and
/// loads still go to the blocking pool, so one connection can carry many of
/// those at once.
fn serve_connection(stream: std::os::unix::net::UnixStream, service: Arc<Service>) {
    if let Err(error) = serve_connection_here(stream, service) {
        tracing::warn!(%error, "wasmtel bridge: serving a connection failed");
    }
}

fn serve_connection_here(stream: std::os::unix::net::UnixStream, service: Arc<Service>) -> std::io::Result<()> {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stream = {
        let _entered = tokio.enter();
        tokio::net::UnixStream::from_std(stream)?
    };
    // The server ends when its incoming stream does: when the last sender,
    // the one inside the connection, is dropped with it.
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    // The channel is empty and has room for one: this cannot fail.
    let _ = sender.try_send(Ok::<_, std::io::Error>(ConnectionStream { inner: stream, _closed: sender.clone() }));
    drop(sender);
    let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
    CONNECTION_JOBS.with(|slot| *slot.borrow_mut() = Some(jobs));
    let mut server =
        Box::pin(router(service).serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(receiver)));
    let served = loop {
        let turn = tokio.block_on(async {
            tokio::select! {
                served = &mut server => Err(served),
                job = queue.recv() => Ok(job),
            }
        });
        match turn {
            Ok(Some(job)) => job(),
            // This thread holds a sender: the queue cannot close.
            Ok(None) => break Ok(()),
            Err(served) => break served.map_err(std::io::Error::other),
        }
    };
    CONNECTION_JOBS.with(|slot| slot.borrow_mut().take());
    served
}

/// Work for a connection's thread to run outside its runtime.
type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// On a connection's thread: its queue of work to run between turns of
    /// its runtime.
    static CONNECTION_JOBS: std::cell::RefCell<Option<tokio::sync::mpsc::UnboundedSender<Job>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `work` on this connection's thread, outside its runtime, while this
/// future waits (so the connection's other calls wait too); on the blocking
/// pool on any other thread.
async fn run_on_connection_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    let Some(jobs) = CONNECTION_JOBS.with(|slot| slot.borrow().clone()) else {
        return on_blocking_pool(work).await;
    };
    let (reply, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic ends this batch, not the connection's thread.
        if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
            let _ = reply.send(value);
        }
    });
    jobs.send(job).map_err(|_| incomplete(&"the connection is closing"))?;
    result.await.map_err(|_| incomplete(&"it panicked"))
}

/// Runs a batch's `work` on the blocking pool.
async fn on_blocking_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(work).await.map_err(|e| incomplete(&e))
}

/// A batch that ended without a result.
fn incomplete(cause: &dyn std::fmt::Display) -> Status {
    Status::internal(format!("the batch did not complete: {cause}"))
}

/// The bridge's gRPC services.
fn router(service: Arc<Service>) -> tonic::transport::server::Router {
    tonic::transport::Server::builder()
        // A batch of many MiB crosses in one window instead of waiting for
        // WINDOW_UPDATE round trips (the socket is local: no memory pressure
        // from a slow peer beyond one batch).
        .initial_stream_window_size(HTTP2_WINDOW)
        .initial_connection_window_size(HTTP2_WINDOW)
        // Batches are as large as the collector lets them be: no limit of our own here.
        .add_service(
            BridgeServer::from_arc(service).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX),
        )
        .add_service(HealthServer::new(Serving))
}

/// An accepted connection that closes its server's incoming stream when
/// it is dropped.
struct ConnectionStream {
    inner: tokio::net::UnixStream,
    _closed: tokio::sync::mpsc::Sender<Result<ConnectionStream, std::io::Error>>,
}

impl tonic::transport::server::Connected for ConnectionStream {
    type ConnectInfo = <tokio::net::UnixStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl tokio::io::AsyncRead for ConnectionStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ConnectionStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Only this user may reach the socket: its directory is ours and 0700,
/// under ancestors nobody else can change (the host's directory rule).
fn check_private_dir(socket: &Path) -> Result<(), BridgeError> {
    let dir = socket.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let refuse = |message: String| BridgeError::Socket { path: socket.to_path_buf(), message };
    wasmtel_component::private_dir::check(dir).map_err(|e| refuse(e.to_string()))?;
    let metadata = std::fs::metadata(dir).map_err(|e| refuse(format!("{}: {e}", dir.display())))?;
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    if metadata.uid() != uid || metadata.mode() & 0o077 != 0 {
        return Err(refuse(format!("{} must be a directory of ours with mode 0700", dir.display())));
    }
    Ok(())
}

async fn shutdown_signal(watch_stdin: bool) {
    use tokio::io::AsyncReadExt;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let stdin_closed = async {
        if !watch_stdin {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = async { match interrupt.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        _ = stdin_closed => tracing::info!("standard input closed: the parent is gone"),
    }
}

struct Service {
    runtime: Runtime,
    plugins: RwLock<HashMap<u64, Plugin>>,
    /// Segments by ID (IDs shared with plugins: one counter).
    segments: RwLock<HashMap<u64, Arc<Segment>>>,
    /// Batches replying segments handed back, until answered (same counter).
    outputs: Mutex<HashMap<u64, wasmtel_dataflow::Output>>,
    next_id: AtomicU64,
    slots: Slots,
    abandon_watch: AbandonWatch,
}

impl Service {
    fn plugin(&self, id: u64) -> Result<Plugin, Status> {
        self.plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no plugin {id} is loaded (the bridge may have restarted)")))
    }

    fn segment(&self, id: u64) -> Result<Arc<Segment>, Status> {
        self.segments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no segment {id} runs (the bridge may have restarted)")))
    }
}

#[tonic::async_trait]
impl Bridge for Service {
    async fn load(&self, request: Request<proto::LoadRequest>) -> Result<Response<proto::LoadResponse>, Status> {
        let request = request.into_inner();
        let name = request.name.clone();
        let config = match request.plugin_config_json.as_str() {
            "" => PluginConfig::default(),
            json => PluginConfig::from_json(json).map_err(|e| {
                Status::invalid_argument(format!("component {name}: invalid plugin configuration: {e}"))
            })?,
        };
        let policy = match request.registry_policy_json.as_str() {
            "" => Policy::default(),
            json => Policy::from_json(json)
                .map_err(|e| Status::invalid_argument(format!("component {name}: invalid registry policy: {e}")))?,
        };
        let runtime = self.runtime.clone();
        let reference = request.reference;
        let loaded = tokio::task::spawn_blocking(move || {
            wasmtel_registry::load_plugin(&runtime, &request.name, &reference, config, &policy)
        })
        .await
        .map_err(|e| Status::internal(format!("component {name}: loading did not complete: {e}")))?;
        let plugin = loaded.map_err(|error| {
            let code = if error.is_transient() { Code::Unavailable } else { Code::FailedPrecondition };
            Status::new(code, error.report(&name))
        })?;
        let plugin_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.plugins.write().unwrap_or_else(PoisonError::into_inner).insert(plugin_id, plugin);
        Ok(Response::new(proto::LoadResponse { plugin_id }))
    }

    async fn process(
        &self,
        request: Request<proto::ProcessRequest>,
    ) -> Result<Response<proto::ProcessResponse>, Status> {
        let deadline = grpc_timeout(request.metadata());
        let request = request.into_inner();
        if request.segment_id != 0 {
            return self.export(request, deadline).await.map(Response::new);
        }
        let mut chain = vec![self.plugin(request.plugin_id)?];
        for id in &request.then_plugin_ids {
            chain.push(self.plugin(*id)?);
        }
        let signal = signal_of(request.signal)?;
        let lease = match request.slot {
            0 => None,
            slot => Some(
                self.slots
                    .lease(slot, request.slot_size, request.slot_ticket)
                    // The parent's bookkeeping, not the batch, is wrong: retryable.
                    .map_err(|e| Status::internal(e.to_string()))?,
            ),
        };
        // Dropped with this future when the client cancels the call: the
        // guest is interrupted then.
        let cancel = CancelOnDrop(Cancel::default());
        let token = cancel.0.clone();
        let response = match lease {
            // A batch in shared memory runs on the connection's own thread
            // (see `serve_connection`): a hop to the blocking pool and back
            // costs two thread wake-ups per batch. The client's reset cannot
            // drop this future while it runs, so the parent's abandon mark in
            // the slot is what cancels it.
            Some(lease) => {
                let lease = Arc::new(lease);
                let _watching = self.abandon_watch.watch(Arc::clone(&lease), token.clone());
                run_on_connection_thread(move || {
                    let input = lease.read_input(request.slot_input_len).map_err(Status::internal)?;
                    let result = process_chain(&chain, signal, &input, deadline, &token);
                    lease.keep_input(input);
                    respond(result, Some(&lease))
                })
                .await?
            }
            None => {
                on_blocking_pool(move || respond(process_chain(&chain, signal, &request.otlp, deadline, &token), None))
                    .await?
            }
        };
        drop(cancel);
        Ok(Response::new(response?))
    }

    async fn start_segment(
        &self,
        request: Request<proto::StartSegmentRequest>,
    ) -> Result<Response<proto::StartSegmentResponse>, Status> {
        let spec = SegmentSpec::from_json(&request.into_inner().spec_json)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let started = tokio::task::spawn_blocking(move || Segment::start(&spec))
            .await
            .map_err(|e| Status::internal(format!("the segment did not start: {e}")))?;
        let segment = started.map_err(|e| Status::failed_precondition(e.to_string()))?;
        let segment_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.segments.write().unwrap_or_else(PoisonError::into_inner).insert(segment_id, Arc::new(segment));
        Ok(Response::new(proto::StartSegmentResponse { segment_id }))
    }

    async fn stop_segment(
        &self,
        request: Request<proto::StopSegmentRequest>,
    ) -> Result<Response<proto::StopSegmentResponse>, Status> {
        let request = request.into_inner();
        // It stays reachable while it drains: a replying segment's outputs
        // are still taken and answered (NextOutput); new batches are refused.
        let segment = self.segments.read().unwrap_or_else(PoisonError::into_inner).get(&request.segment_id).cloned();
        let Some(segment) = segment else { return Ok(Response::new(proto::StopSegmentResponse {})) };
        let timeout = Duration::from_millis(request.timeout_ms.max(1));
        let id = segment.id().to_string();
        let stopped = tokio::task::spawn_blocking(move || segment.shutdown(timeout)).await;
        self.segments.write().unwrap_or_else(PoisonError::into_inner).remove(&request.segment_id);
        stopped
            .map_err(|e| Status::internal(format!("{id}: shutdown did not complete: {e}")))?
            .map_err(|e| Status::unavailable(format!("{id}: {e}")))?;
        Ok(Response::new(proto::StopSegmentResponse {}))
    }

    async fn next_output(
        &self,
        request: Request<proto::NextOutputRequest>,
    ) -> Result<Response<proto::NextOutputResponse>, Status> {
        let request = request.into_inner();
        let segment = self.segment(request.segment_id)?;
        let timeout = Duration::from_millis(request.timeout_ms);
        let output = tokio::task::spawn_blocking(move || segment.next_output(timeout))
            .await
            .map_err(|e| Status::internal(format!("waiting for an output failed: {e}")))?;
        let Some(output) = output else { return Ok(Response::new(proto::NextOutputResponse::default())) };
        let output_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let response = proto::NextOutputResponse { output_id, signal: output.signal.code(), otlp: output.otlp.clone() };
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner).insert(output_id, output);
        Ok(Response::new(response))
    }

    async fn answer_output(
        &self,
        request: Request<proto::AnswerOutputRequest>,
    ) -> Result<Response<proto::AnswerOutputResponse>, Status> {
        let request = request.into_inner();
        let output = self.outputs.lock().unwrap_or_else(PoisonError::into_inner).remove(&request.output_id);
        let output =
            output.ok_or_else(|| Status::not_found(format!("no output {} awaits an answer", request.output_id)))?;
        match request.refused {
            0 => output.accept(),
            refused => output.refuse(request.reason, refused == 2),
        }
        Ok(Response::new(proto::AnswerOutputResponse {}))
    }

    async fn metrics(
        &self,
        request: Request<proto::MetricsRequest>,
    ) -> Result<Response<proto::MetricsResponse>, Status> {
        let request = request.into_inner();
        let json = if request.segment_id != 0 {
            serde_json::to_string(&self.segment(request.segment_id)?.metrics())
        } else {
            serde_json::to_string(&self.plugin(request.plugin_id)?.metrics())
        }
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::MetricsResponse { json }))
    }

    async fn unload(&self, request: Request<proto::UnloadRequest>) -> Result<Response<proto::UnloadResponse>, Status> {
        let id = request.into_inner().plugin_id;
        self.plugins.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
        Ok(Response::new(proto::UnloadResponse {}))
    }
}

impl Service {
    /// Hands a batch (inline or in its slot) to a segment and waits for its
    /// exporters' answer, within the call's deadline.
    async fn export(
        &self,
        request: proto::ProcessRequest,
        deadline: Option<Duration>,
    ) -> Result<proto::ProcessResponse, Status> {
        if request.plugin_id != 0 || !request.then_plugin_ids.is_empty() {
            return Err(Status::invalid_argument("a batch goes to plugins or to a segment, not both"));
        }
        let segment = self.segment(request.segment_id)?;
        let signal = signal_of(request.signal)?;
        let budget = deadline.unwrap_or(DEFAULT_EXPORT_BUDGET);
        let exported = match request.slot {
            0 => on_blocking_pool(move || segment.export(signal, request.otlp, budget)).await?,
            slot => {
                let lease = self
                    .slots
                    .lease(slot, request.slot_size, request.slot_ticket)
                    .map_err(|e| Status::internal(e.to_string()))?;
                run_on_connection_thread(move || {
                    // The engine keeps the batch past the call: it leaves the slot as owned bytes.
                    let input = lease.read_input(request.slot_input_len).map_err(Status::internal)?;
                    Ok::<_, Status>(segment.export(signal, bytes::Bytes::from(input), budget))
                })
                .await??
            }
        };
        exported.map_err(|e| export_status(&e))?;
        Ok(proto::ProcessResponse { outcome: proto::EXPORTED, otlp: Vec::new(), in_slot: false, slot_output_len: 0 })
    }
}

/// `factories`: prints every node type compiled in as JSON.
/// `validate-node KIND TYPE`: validates the settings on standard input (JSON)
/// with the node type's own factory. What a cgo-off collector runs for its
/// Rust components' `Validate`, exit status 1 with the reason on stderr.
/// `None` when `args` (without the program name) is neither.
pub fn node_tool(args: &[String]) -> Option<std::process::ExitCode> {
    use std::io::Read;
    use std::process::ExitCode;
    use wasmtel_dataflow::segment::{self, NodeKind};
    match args {
        [command] if command == "factories" => match serde_json::to_string_pretty(&segment::factories()) {
            Ok(json) => {
                println!("{json}");
                Some(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Some(ExitCode::FAILURE)
            }
        },
        [command, kind, urn] if command == "validate-node" => {
            let outcome = (|| {
                let kind: NodeKind = serde_json::from_value(serde_json::Value::String(kind.clone()))
                    .map_err(|_| format!("unknown node kind {kind:?}"))?;
                let mut config = String::new();
                std::io::stdin().read_to_string(&mut config).map_err(|e| format!("standard input: {e}"))?;
                let config = match config.trim() {
                    "" => serde_json::Value::Null,
                    json => serde_json::from_str(json).map_err(|e| format!("config is not JSON: {e}"))?,
                };
                segment::validate_node(kind, urn, &config).map_err(|e| e.to_string())
            })();
            Some(match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("{message}");
                    ExitCode::FAILURE
                }
            })
        }
        _ => None,
    }
}

/// A caller without a deadline gets the collector exporters' default.
const DEFAULT_EXPORT_BUDGET: Duration = Duration::from_secs(5);

fn signal_of(signal: u32) -> Result<Signal, Status> {
    Signal::from_code(signal).ok_or_else(|| Status::invalid_argument(format!("unknown signal {signal}")))
}

/// A segment's refusal as a gRPC status, its kind in the trailer:
/// permanent ones FAILED_PRECONDITION (INVALID_ARGUMENT for bad input),
/// retryable ones UNAVAILABLE, RESOURCE_EXHAUSTED (backpressure) or
/// DEADLINE_EXCEEDED.
fn export_status(error: &EmbeddedError) -> Status {
    let code = match error {
        EmbeddedError::InvalidInput { .. } => Code::InvalidArgument,
        EmbeddedError::Backpressure { .. } => Code::ResourceExhausted,
        EmbeddedError::NotAnswered { .. } => Code::DeadlineExceeded,
        EmbeddedError::Refused { permanent: true, .. } => Code::FailedPrecondition,
        _ => Code::Unavailable,
    };
    let mut metadata = MetadataMap::new();
    metadata.insert(FAILURE_KIND_TRAILER, MetadataValue::from_static(error.failure_kind()));
    Status::with_metadata(code, error.to_string(), metadata)
}

/// One plugin, or a chain of them in one call ([`Plugin::process_chain`]).
fn process_chain(
    chain: &[Plugin],
    signal: Signal,
    input: &[u8],
    deadline: Option<Duration>,
    cancel: &Cancel,
) -> Result<Outcome, ProcessError> {
    match chain {
        [plugin] => plugin.process_cancellable(signal, input, deadline, Some(cancel)),
        _ => {
            let chain: Vec<&Plugin> = chain.iter().collect();
            Plugin::process_chain(&chain, signal, input, deadline, Some(cancel)).map(|processed| processed.outcome)
        }
    }
}

/// The response to a batch: a `replaced` output goes back in the request's
/// slot when it fits there, inline otherwise.
fn respond(result: Result<Outcome, ProcessError>, lease: Option<&SlotLease>) -> Result<proto::ProcessResponse, Status> {
    let (outcome, otlp) = match result {
        Ok(Outcome::Unchanged) => (proto::UNCHANGED, Vec::new()),
        Ok(Outcome::Replaced(bytes)) => (proto::REPLACED, bytes),
        Ok(Outcome::Dropped) => (proto::DROPPED, Vec::new()),
        Err(error) => return Err(status_of(&error)),
    };
    if let Some(lease) = lease.filter(|_| outcome == proto::REPLACED) {
        match lease.write_output(&otlp) {
            Ok(true) => {
                let slot_output_len = otlp.len() as u64;
                return Ok(proto::ProcessResponse { outcome, otlp: Vec::new(), in_slot: true, slot_output_len });
            }
            Ok(false) => {}
            Err(Abandoned) => return Err(Status::cancelled("the caller abandoned the call")),
        }
    }
    Ok(proto::ProcessResponse { outcome, otlp, in_slot: false, slot_output_len: 0 })
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A refused batch as a gRPC status: permanent failures as
/// INVALID_ARGUMENT (the input) or FAILED_PRECONDITION (the sandbox),
/// retryable ones as UNAVAILABLE, RESOURCE_EXHAUSTED (no free instance) or
/// DEADLINE_EXCEEDED; the kind in a trailer.
pub fn status_of(error: &ProcessError) -> Status {
    let code = match error.kind {
        FailureKind::GuestPermanent | FailureKind::InvalidInput => Code::InvalidArgument,
        FailureKind::Trap | FailureKind::Memory | FailureKind::InvalidOutput | FailureKind::OutputTooLarge => {
            Code::FailedPrecondition
        }
        FailureKind::Busy => Code::ResourceExhausted,
        FailureKind::DeadlineExceeded => Code::DeadlineExceeded,
        FailureKind::Timeout | FailureKind::GuestRetryable | FailureKind::Instantiate => Code::Unavailable,
    };
    debug_assert_eq!(is_permanent(code), error.is_permanent(), "{:?}", error.kind);
    let mut metadata = MetadataMap::new();
    metadata.insert(FAILURE_KIND_TRAILER, MetadataValue::from_static(error.kind.as_str()));
    Status::with_metadata(code, error.to_string(), metadata)
}

/// The codes [`status_of`] uses for failures that will repeat on the same input.
pub fn is_permanent(code: Code) -> bool {
    matches!(code, Code::InvalidArgument | Code::FailedPrecondition)
}

/// The client's deadline from the `grpc-timeout` header (1–8 digits and a
/// unit: H, M, S, m, u, n).
fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Always serving: the bridge answers health checks only once it listens.
struct Serving;

#[tonic::async_trait]
impl Health for Serving {
    async fn check(
        &self,
        _request: Request<proto::HealthCheckRequest>,
    ) -> Result<Response<proto::HealthCheckResponse>, Status> {
        Ok(Response::new(proto::HealthCheckResponse { status: proto::SERVING }))
    }
}

/// Log events as JSON lines on stderr, for the parent's logger.
pub fn log_to_stderr_as_json(filter: &str) {
    use std::io::Write;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let layer = wasmtel_runtime::logging::RecordLayer::new(|record| {
        let line = serde_json::json!({
            "level": record.level_name(),
            "plugin": record.plugin,
            "stream": record.stream,
            "target": record.target,
            "message": record.message,
        });
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    });
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        let cases = [("5S", 5_000_000), ("250m", 250_000), ("7u", 7), ("2M", 120_000_000), ("1H", 3_600_000_000)];
        for (text, micros) in cases {
            let mut metadata = MetadataMap::new();
            metadata.insert("grpc-timeout", text.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), Some(Duration::from_micros(micros)), "{text}");
        }
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", "5X".parse().unwrap());
        assert_eq!(grpc_timeout(&metadata), None);
    }

    #[test]
    fn every_failure_kind_maps_to_a_code_with_its_retry_meaning() {
        for kind in FailureKind::ALL {
            let error = ProcessError { plugin: "p".into(), signal: Signal::Traces, kind, message: "m".into() };
            let status = status_of(&error);
            assert_eq!(is_permanent(status.code()), kind.is_permanent(), "{kind}");
            assert_eq!(status.metadata().get(FAILURE_KIND_TRAILER).unwrap(), kind.as_str());
        }
    }
}
