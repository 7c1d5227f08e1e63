//! What a guest can reach: the `wasmtel:plugin/host` interface and a
//! capability-less WASI context for the interfaces Rust's std imports anyway.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{LogLevel, wasmtel::plugin};
use crate::config::Grants;

/// Lines of guest stderr kept to explain a trap (a Rust panic message lands there).
const RECENT_STDERR_LINES: usize = 8;
/// Longest guest log line forwarded to the host log; the rest is cut.
pub(crate) const MAX_LINE_BYTES: usize = 4096;
/// Guest log lines a plugin may emit at once, and per second after that;
/// the rest are counted and dropped, never buffered.
pub(crate) const LOG_BURST: f64 = 200.0;
pub(crate) const LOG_LINES_PER_SECOND: f64 = 100.0;
/// Counters a single guest may create, and the longest name; others are
/// refused (and counted) so a guest cannot grow host memory.
pub(crate) const MAX_GUEST_COUNTERS: usize = 256;
pub(crate) const MAX_COUNTER_NAME_BYTES: usize = 128;

/// Per-store state: one per instance, never shared between threads at once.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub reports: Arc<GuestReports>,
    pub stderr: GuestOutput,
    /// When the running call must stop (checked on epoch ticks).
    pub run_until: std::time::Instant,
    /// The running batch's caller's cancellation, if it can cancel.
    pub cancel: Option<crate::plugin::Cancel>,
}

impl HostState {
    pub fn new(grants: &Grants, max_memory: usize, reports: Arc<GuestReports>) -> Self {
        let stdout = GuestOutput::new(reports.clone(), "stdout");
        let stderr = GuestOutput::new(reports.clone(), "stderr");
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
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(max_memory),
            reports,
            stderr,
            run_until: Instant::now(),
            cancel: None,
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
        self.reports.log(level, None, &message);
    }

    fn add_counter(&mut self, name: String, delta: u64) {
        self.reports.add_counter(name, delta);
    }
}

/// What a plugin's guests report to the host (log lines, stdout/stderr,
/// counters), shared by all its instances. Everything a guest says is
/// bounded here: one line per log call with control characters escaped (no
/// forged host log lines or terminal escapes), at most [`MAX_LINE_BYTES`],
/// at most [`LOG_BURST`] lines at once refilled at [`LOG_LINES_PER_SECOND`];
/// counter names of at most [`MAX_COUNTER_NAME_BYTES`], at most
/// [`MAX_GUEST_COUNTERS`] of them.
pub struct GuestReports {
    pub plugin: Arc<str>,
    counters: Mutex<BTreeMap<String, u64>>,
    budget: Mutex<LogBudget>,
    pub log_lines_suppressed: AtomicU64,
    pub counters_refused: AtomicU64,
}

struct LogBudget {
    tokens: f64,
    refilled: Instant,
    /// Suppressed since the last line that got through (reported with it).
    unreported: u64,
}

impl GuestReports {
    pub fn new(plugin: Arc<str>) -> Self {
        GuestReports {
            plugin,
            counters: Mutex::default(),
            budget: Mutex::new(LogBudget { tokens: LOG_BURST, refilled: Instant::now(), unreported: 0 }),
            log_lines_suppressed: AtomicU64::new(0),
            counters_refused: AtomicU64::new(0),
        }
    }

    /// Emits one guest line into the host log if the plugin's budget allows.
    pub fn log(&self, level: LogLevel, stream: Option<&'static str>, text: &str) {
        let suppressed_before = {
            let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let refill = now.duration_since(budget.refilled).as_secs_f64() * LOG_LINES_PER_SECOND;
            budget.tokens = (budget.tokens + refill).min(LOG_BURST);
            budget.refilled = now;
            if budget.tokens < 1.0 {
                budget.unreported += 1;
                self.log_lines_suppressed.fetch_add(1, Relaxed);
                return;
            }
            budget.tokens -= 1.0;
            std::mem::take(&mut budget.unreported)
        };
        let plugin = &*self.plugin;
        if suppressed_before > 0 {
            tracing::warn!(
                plugin,
                "{suppressed_before} guest log lines suppressed (more than {LOG_LINES_PER_SECOND} a second)"
            );
        }
        let line = sanitize_line(text);
        let stream = stream.unwrap_or("log");
        match level {
            LogLevel::Trace => tracing::trace!(plugin, stream, "{line}"),
            LogLevel::Debug => tracing::debug!(plugin, stream, "{line}"),
            LogLevel::Info => tracing::info!(plugin, stream, "{line}"),
            LogLevel::Warn => tracing::warn!(plugin, stream, "{line}"),
            LogLevel::Error => tracing::error!(plugin, stream, "{line}"),
        }
    }

    fn add_counter(&self, name: String, delta: u64) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = counters.get_mut(&name) {
            *value = value.saturating_add(delta);
        } else if counters.len() < MAX_GUEST_COUNTERS && is_counter_name(&name) {
            counters.insert(name, delta);
        } else {
            self.counters_refused.fetch_add(1, Relaxed);
        }
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Counter names become metric attribute values: short, printable ASCII.
fn is_counter_name(name: &str) -> bool {
    (1..=MAX_COUNTER_NAME_BYTES).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':'))
}

/// One printable line: control characters (newlines, ANSI/OSC escapes) and
/// bidirectional overrides escaped, cut at [`MAX_LINE_BYTES`].
pub(crate) fn sanitize_line(text: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if text.len() <= MAX_LINE_BYTES && !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut line = String::with_capacity(text.len().min(MAX_LINE_BYTES) + 32);
    let mut taken = 0;
    for c in text.chars() {
        if line.len() >= MAX_LINE_BYTES {
            break;
        }
        taken += c.len_utf8();
        if needs_escape(c) {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    if taken < text.len() {
        line.push_str(&format!("… [{} more bytes]", text.len() - taken));
    }
    Cow::Owned(line)
}

/// Enforces `max_memory` over all of an instance's linear memories together
/// (a component may define many), and remembers that it did, so the
/// resulting trap is reported as a memory failure rather than a generic one.
pub struct MemoryLimiter {
    max_memory: usize,
    /// Bytes of linear memory the instance holds, over all its memories.
    pub total: usize,
    pub exceeded: Option<usize>,
}

impl MemoryLimiter {
    pub fn new(max_memory: usize) -> Self {
        MemoryLimiter { max_memory, total: 0, exceeded: None }
    }
}

/// Table growth is bounded too; a component needs only a few hundred entries.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.max_memory {
            self.exceeded = Some(total);
            // Trapping here (instead of returning false) stops the guest at once
            // with a message that names the limit.
            wasmtime::bail!(
                "linear memory limit of {} bytes exceeded (guest asked for {total} bytes in all)",
                self.max_memory
            );
        }
        self.total = total;
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

/// Guest stdout/stderr, forwarded line by line through the plugin's
/// [`GuestReports`]; the last stderr lines of the current batch are kept to
/// explain a trap. A line longer than [`MAX_LINE_BYTES`] is cut, and the rest
/// of it skipped, never buffered.
#[derive(Clone)]
pub struct GuestOutput {
    reports: Arc<GuestReports>,
    stream: &'static str,
    state: Arc<Mutex<OutputLines>>,
}

#[derive(Default)]
struct OutputLines {
    partial: Vec<u8>,
    /// Bytes of the current line past the cut.
    skipped: usize,
    recent: VecDeque<String>,
}

impl GuestOutput {
    fn new(reports: Arc<GuestReports>, stream: &'static str) -> Self {
        GuestOutput { reports, stream, state: Arc::default() }
    }

    fn push(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let (content, ends) = match line.split_last() {
                Some((b'\n', content)) => (content, true),
                _ => (line, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(state.partial.len()).min(content.len());
            state.partial.extend_from_slice(&content[..room]);
            state.skipped += content.len() - room;
            if ends {
                self.emit(&mut state);
            }
        }
    }

    fn emit(&self, state: &mut OutputLines) {
        let mut line = String::from_utf8_lossy(&state.partial).into_owned();
        if state.skipped > 0 {
            line.push_str(&format!("… [{} more bytes]", state.skipped));
        }
        state.partial.clear();
        state.skipped = 0;
        let level = if self.stream == "stderr" { LogLevel::Warn } else { LogLevel::Info };
        self.reports.log(level, Some(self.stream), &line);
        if state.recent.len() == RECENT_STDERR_LINES {
            state.recent.pop_front();
        }
        state.recent.push_back(sanitize_line(&line).into_owned());
    }

    /// Takes what the guest printed since the last call (including an
    /// unterminated last line), oldest first.
    pub fn take_recent(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.partial.is_empty() || state.skipped > 0 {
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
