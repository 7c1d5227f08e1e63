//! What a guest can reach: the `wasmtel:plugin/host` interface and a
//! capability-less WASI context for the interfaces Rust's std imports anyway.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{LogLevel, wasmtel::plugin};
use crate::config::Grants;

/// Lines of guest stderr kept to explain a trap (a Rust panic message lands there).
const RECENT_STDERR_LINES: usize = 8;
/// Longest guest output line forwarded to the host log; the rest is cut.
const MAX_LINE_BYTES: usize = 4096;
/// Counters a single guest may create; more are ignored so a guest cannot grow host memory.
const MAX_GUEST_COUNTERS: usize = 256;

/// Per-store state: one per instance, never shared between threads at once.
pub struct HostState {
    pub plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub counters: Arc<GuestCounters>,
    pub stderr: GuestOutput,
}

impl HostState {
    pub fn new(plugin: Arc<str>, grants: &Grants, max_memory: usize, counters: Arc<GuestCounters>) -> Self {
        let stdout = GuestOutput::new(plugin.clone(), "stdout");
        let stderr = GuestOutput::new(plugin.clone(), "stderr");
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout).stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        for (key, value) in &grants.env {
            wasi.env(key, value);
        }
        if !grants.clocks {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        if !grants.random {
            // A fixed stream keeps output a function of input; std's HashMap seeding still works.
            let seed: Vec<u8> = (0u8..=255).collect();
            wasi.secure_random(Deterministic::new(seed.clone()))
                .insecure_random(Deterministic::new(seed))
                .insecure_random_seed(0);
        }
        HostState {
            plugin,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_memory, exceeded: None },
            counters,
            stderr,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl plugin::types::Host for HostState {}

impl plugin::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn add_counter(&mut self, name: String, delta: u64) {
        self.counters.add(name, delta);
    }
}

/// Counters a plugin's guests report through `add-counter`, shared by all its instances.
#[derive(Default)]
pub struct GuestCounters(Mutex<BTreeMap<String, u64>>);

impl GuestCounters {
    fn add(&self, name: String, delta: u64) {
        let mut counters = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = counters.get_mut(&name) {
            *value = value.saturating_add(delta);
        } else if counters.len() < MAX_GUEST_COUNTERS {
            counters.insert(name, delta);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Enforces `max_memory` and remembers that it did, so the resulting trap is
/// reported as a memory failure rather than a generic one.
pub struct MemoryLimiter {
    max_memory: usize,
    pub exceeded: Option<usize>,
}

/// Table growth is bounded too; a component needs only a few hundred entries.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = Some(desired);
            // Trapping here (instead of returning false) stops the guest at once
            // with a message that names the limit.
            wasmtime::bail!("linear memory limit of {} bytes exceeded (guest asked for {desired})", self.max_memory);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A clock stuck at the Unix epoch: time is a capability, granted explicitly.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Guest stdout/stderr, forwarded line by line to the host log with the
/// plugin's name; the last stderr lines are kept to explain traps.
#[derive(Clone)]
pub struct GuestOutput {
    plugin: Arc<str>,
    stream: &'static str,
    state: Arc<Mutex<OutputLines>>,
}

#[derive(Default)]
struct OutputLines {
    partial: Vec<u8>,
    recent: VecDeque<String>,
}

impl GuestOutput {
    fn new(plugin: Arc<str>, stream: &'static str) -> Self {
        GuestOutput { plugin, stream, state: Arc::default() }
    }

    fn push(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for &byte in bytes {
            if byte == b'\n' || state.partial.len() >= MAX_LINE_BYTES {
                self.emit(&mut state);
            }
            if byte != b'\n' {
                state.partial.push(byte);
            }
        }
    }

    fn emit(&self, state: &mut OutputLines) {
        let line = String::from_utf8_lossy(&state.partial).into_owned();
        state.partial.clear();
        tracing::info!(plugin = &*self.plugin, stream = self.stream, "{line}");
        if state.recent.len() == RECENT_STDERR_LINES {
            state.recent.pop_front();
        }
        state.recent.push_back(line);
    }

    /// Takes what the guest printed since the last call (including an
    /// unterminated last line), oldest first.
    pub fn take_recent(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.partial.is_empty() {
            self.emit(&mut state);
        }
        state.recent.drain(..).collect()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
