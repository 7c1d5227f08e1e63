//! Where the running nodes of one `serve` process or one embedded pipeline
//! post what the dashboard shows: each wasm node instance its plugin and its
//! latest output, each circuit breaker its state, each Arrow IPC exporter its
//! counters. Nodes find their board through the `status_board` key that
//! [`crate::spec::post_to_board`] adds to their config.
//!
//! Posting costs the nodes an `Arc` clone at start and, per batch, a few
//! relaxed atomic stores (breaker, exporter) or, at most once a second per
//! signal, a refcount on the batch's bytes (wasm node); everything else is
//! done when the dashboard asks.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use otel_arrow_dfe_engine::context::PipelineContext;
use wasmtel_runtime::{Plugin, Signal};

/// How often a wasm node keeps its output for the dashboard, per signal.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Everything posted under one board name.
#[derive(Default)]
pub(crate) struct Board {
    pub wasm: Vec<WasmPost>,
    pub breakers: Vec<BreakerPost>,
    pub exporters: Vec<ExporterPost>,
    /// Each pipeline's nodes in flow order (sources first).
    pub order: BTreeMap<String, Vec<String>>,
    pub history: VecDeque<super::Sample>,
    /// Whether the status shows the newest records (`engine.custom.wasmtel.dashboard.records`).
    pub hide_records: bool,
}

/// Where a node instance runs.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    /// `group/pipeline`.
    pub pipeline: String,
    pub node: String,
    pub core: usize,
}

impl Place {
    pub fn of(pipeline_ctx: &PipelineContext, node: &str) -> Self {
        Place {
            pipeline: format!("{}/{}", pipeline_ctx.pipeline_group_id(), pipeline_ctx.pipeline_id()),
            node: node.to_string(),
            core: pipeline_ctx.core_id(),
        }
    }
}

/// A wasm node instance: its plugin (metrics) and its latest outputs.
#[derive(Clone)]
pub(crate) struct WasmPost {
    pub place: Place,
    pub plugin: Plugin,
    pub latest: Arc<LatestOutput>,
}

/// The newest OTLP batch a wasm node instance emitted, per signal.
#[derive(Default)]
pub(crate) struct LatestOutput {
    slots: [Mutex<Option<(Instant, SystemTime, Bytes)>>; 3],
}

impl LatestOutput {
    /// Keeps `otlp` unless this signal's slot was filled less than a second ago.
    pub fn offer(&self, signal: Signal, otlp: &Bytes) {
        let mut slot = self.slots[signal_index(signal)].lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(|(at, _, _)| at.elapsed() >= SAMPLE_EVERY) {
            *slot = Some((Instant::now(), SystemTime::now(), otlp.clone()));
        }
    }

    /// The kept batch of `signal`, with when it was kept.
    pub fn get(&self, signal: Signal) -> Option<(SystemTime, Bytes)> {
        let slot = self.slots[signal_index(signal)].lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|(_, at, bytes)| (*at, bytes.clone()))
    }
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

/// A circuit breaker instance's state and counters.
#[derive(Clone)]
pub(crate) struct BreakerPost {
    pub place: Place,
    pub status: Arc<BreakerStatus>,
}

/// Written by the breaker after every transition and outcome.
#[derive(Default)]
pub(crate) struct BreakerStatus {
    /// 0 closed, 1 open, 2 half-open (the `state` gauge's encoding).
    pub state: AtomicU8,
    pub opened: AtomicU64,
    pub rejected: AtomicU64,
    pub failures: AtomicU64,
    pub successes: AtomicU64,
    /// The reason of the newest retryable Nack from downstream.
    pub last_failure: Mutex<Option<String>>,
}

/// An Arrow IPC exporter instance: its directory and what it wrote.
#[derive(Clone)]
pub(crate) struct ExporterPost {
    pub place: Place,
    pub directory: PathBuf,
    pub written: Arc<Written>,
}

/// Rows and bytes written per signal (traces, metrics, logs).
#[derive(Default)]
pub(crate) struct Written {
    pub rows: [AtomicU64; 3],
    pub bytes: [AtomicU64; 3],
}

impl Written {
    pub fn add(&self, signal: Signal, rows: u64, bytes: u64) {
        let index = signal_index(signal);
        self.rows[index].fetch_add(rows, Ordering::Relaxed);
        self.bytes[index].fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self, signal: Signal) -> (u64, u64) {
        let index = signal_index(signal);
        (self.rows[index].load(Ordering::Relaxed), self.bytes[index].load(Ordering::Relaxed))
    }
}

static BOARDS: Mutex<BTreeMap<String, Board>> = Mutex::new(BTreeMap::new());

/// Runs `f` on the board `name` (created on first use).
pub(crate) fn with<T>(name: &str, f: impl FnOnce(&mut Board) -> T) -> T {
    let mut boards = BOARDS.lock().unwrap_or_else(PoisonError::into_inner);
    f(boards.entry(name.to_string()).or_default())
}

/// Runs `f` on the board `name` if nodes posted to it (readers must not
/// bring back a board its pipeline cleared).
pub(crate) fn with_existing<T>(name: &str, f: impl FnOnce(&mut Board) -> T) -> Option<T> {
    BOARDS.lock().unwrap_or_else(PoisonError::into_inner).get_mut(name).map(f)
}

/// Forgets a board (its pipeline stopped), letting the posted instances go.
pub(crate) fn clear(name: &str) {
    BOARDS.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
}
