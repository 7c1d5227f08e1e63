//! The operator's dashboard of `wasmtel serve` (on its admin address) and of
//! an embedded pipeline (on `engine.custom.wasmtel.dashboard.bind_address`):
//! a page shipped in the binary, polling a JSON status API.
//!
//! | path | what |
//! |---|---|
//! | `GET /dashboard/` | the page (HTML, JS and CSS in the binary; no CDN) |
//! | `GET /api/wasmtel/v1/status` | [`Status`]: every wasm processor, breaker, Arrow IPC exporter, throughput, the newest records |
//!
//! The figures are read from the running nodes (see [`board`]) when the API
//! is asked; throughput is sampled once a second for the last five minutes.
//! Nothing of a node's config is shown (forwarding headers stay out). The
//! newest records are telemetry itself, shown to whoever reaches the address:
//! `engine.custom.wasmtel.dashboard.records: false` leaves them out.

pub(crate) mod board;
mod records;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use serde::Serialize;
use wasmtel_runtime::{MetricsSnapshot, Signal};

pub use records::Record;

use board::Board;

/// The board `wasmtel serve` posts to (one per process).
pub const SERVE_BOARD: &str = "serve";
/// The status API's path.
pub const STATUS_PATH: &str = "/api/wasmtel/v1/status";
/// The page's path.
pub const PAGE_PATH: &str = "/dashboard/";
/// Throughput samples kept (one a second).
const HISTORY: usize = 300;
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("dashboard.js");

/// The routes the dashboard adds to an admin server (GET only).
pub fn routes<S: Clone + Send + Sync + 'static>(board: String) -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary(PAGE_PATH) }))
        .route("/dashboard", get(|| async { Redirect::permanent(PAGE_PATH) }))
        .route(
            PAGE_PATH,
            get(|| async {
                // Telemetry is shown as text only; the policy forbids anything but this origin's script.
                let policy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, policy)], PAGE)
            }),
        )
        .route(
            "/dashboard/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route(
            STATUS_PATH,
            get(move || async move {
                ([(header::CACHE_CONTROL, "no-store")], axum::Json(status(&board))).into_response()
            }),
        )
}

/// Samples the board's throughput once a second, forever (spawn it on the
/// runtime serving [`routes`]).
pub async fn sample_forever(board: String) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        board::with_existing(&board, |b| {
            let sample = Sample { t_ms: now_ms(SystemTime::now()), totals: totals(b) };
            b.history.push_back(sample);
            while b.history.len() > HISTORY {
                b.history.pop_front();
            }
        });
    }
}

/// What `GET /api/wasmtel/v1/status` answers.
#[derive(Debug, Serialize)]
pub struct Status {
    /// When this answer was made, Unix milliseconds.
    pub generated_at_ms: u64,
    /// Every pipeline with a wasmtel node.
    pub pipelines: Vec<PipelineStatus>,
}

/// One pipeline (`group/pipeline`).
#[derive(Debug, Serialize)]
pub struct PipelineStatus {
    /// `group/pipeline`.
    pub id: String,
    /// Wasm processors in flow order, each instance (core) added up.
    pub processors: Vec<ProcessorStatus>,
    /// Circuit breakers.
    pub breakers: Vec<BreakerStatus>,
    /// Arrow IPC exporters.
    pub exporters: Vec<ExporterStatus>,
    /// Per second over the last minutes, oldest first.
    pub throughput: Vec<Rate>,
    /// Per signal (`traces`, `metrics`, `logs`): the newest records as they
    /// left the pipeline's last wasm processor that emitted that signal.
    pub recent: BTreeMap<&'static str, RecentRecords>,
}

/// One wasm processor node.
#[derive(Debug, Serialize)]
pub struct ProcessorStatus {
    /// The node's name in the spec.
    pub node: String,
    /// Its instances (one per core).
    pub cores: usize,
    /// The plugin's metrics ([`MetricsSnapshot`]), instances added up.
    pub metrics: MetricsSnapshot,
    /// Latency percentiles in µs, interpolated within the histogram's buckets.
    pub latency_us: Percentiles,
}

/// Latency percentiles (µs); 0 before the first call.
#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

/// One circuit breaker node.
#[derive(Debug, Serialize)]
pub struct BreakerStatus {
    /// The node's name in the spec.
    pub node: String,
    /// `open` if any core's breaker is open, else `half_open` if any is, else `closed`.
    pub state: &'static str,
    /// Each core's state.
    pub cores: Vec<&'static str>,
    /// Times a core's breaker opened.
    pub opened: u64,
    /// Batches refused while open.
    pub rejected: u64,
    /// Retryable Nacks from downstream.
    pub failures: u64,
    /// Acks from downstream.
    pub successes: u64,
    /// The newest downstream failure's reason.
    pub last_failure: Option<String>,
}

/// One Arrow IPC exporter node.
#[derive(Debug, Serialize)]
pub struct ExporterStatus {
    /// The node's name in the spec.
    pub node: String,
    /// Its directory.
    pub directory: String,
    /// Per signal.
    pub signals: BTreeMap<&'static str, FilesStatus>,
}

/// One signal's files.
#[derive(Debug, Default, Serialize)]
pub struct FilesStatus {
    /// Files in the signal's directory (finished and being written).
    pub files: u64,
    /// Their size on disk.
    pub bytes_on_disk: u64,
    /// Rows written since start.
    pub rows_written: u64,
    /// Bytes written since start.
    pub bytes_written: u64,
    /// The newest file's name.
    pub newest: Option<String>,
    /// When it was last written, Unix milliseconds.
    pub newest_modified_ms: Option<u64>,
}

/// Throughput over one sampling interval.
#[derive(Debug, Serialize)]
pub struct Rate {
    /// End of the interval, Unix milliseconds.
    pub t_ms: u64,
    /// Batches into the pipeline's first wasm processor, per second.
    pub batches_per_s: f64,
    /// OTLP bytes into it, per second.
    pub bytes_per_s: f64,
    /// Rows the pipeline's Arrow IPC exporters wrote, per second.
    pub rows_per_s: f64,
}

/// The newest records of one signal.
#[derive(Debug, Serialize)]
pub struct RecentRecords {
    /// The wasm processor they left.
    pub node: String,
    /// When the batch left it, Unix milliseconds.
    pub at_ms: u64,
    /// Its last records (at most five), or why they cannot be shown.
    pub records: Result<Vec<Record>, String>,
}

/// Cumulative counters of every pipeline at one instant.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    t_ms: u64,
    totals: BTreeMap<String, Totals>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    batches: u64,
    bytes: u64,
    rows: u64,
}

/// The status of everything posted on `board`.
pub fn status(board: &str) -> Status {
    build(board, true)
}

/// Each wasm processor's status on `board` (no records decoded).
pub fn processors(board: &str) -> Vec<ProcessorStatus> {
    build(board, false).pipelines.into_iter().flat_map(|p| p.processors).collect()
}

fn build(board: &str, with_records: bool) -> Status {
    let posts = board::with_existing(board, |b| {
        let with_records = with_records && !b.hide_records;
        (b.wasm.clone(), b.breakers.clone(), b.exporters.clone(), b.order.clone(), b.history.clone(), with_records)
    });
    let Some((wasm, breakers, exporters, order, history, with_records)) = posts else {
        return Status { generated_at_ms: now_ms(SystemTime::now()), pipelines: Vec::new() };
    };
    let mut ids: Vec<String> = wasm.iter().map(|p| p.place.pipeline.clone()).collect();
    ids.extend(breakers.iter().map(|p| p.place.pipeline.clone()));
    ids.extend(exporters.iter().map(|p| p.place.pipeline.clone()));
    ids.sort();
    ids.dedup();
    let pipelines = ids
        .into_iter()
        .map(|id| {
            let rank = |node: &str| order.get(&id).and_then(|o| o.iter().position(|n| n == node)).unwrap_or(usize::MAX);
            let wasm: Vec<_> = wasm.iter().filter(|p| p.place.pipeline == id).collect();
            let mut nodes: Vec<&str> = wasm.iter().map(|p| p.place.node.as_str()).collect();
            nodes.sort_by_key(|node| (rank(node), node.to_string()));
            nodes.dedup();
            let processors = nodes.iter().map(|node| processor(node, &wasm)).collect();
            let recent = if with_records { recent(&nodes, &wasm) } else { BTreeMap::new() };
            let breakers = group_by_node(breakers.iter().filter(|p| p.place.pipeline == id), |p| &p.place.node)
                .into_iter()
                .map(|(node, posts)| breaker(node, &posts))
                .collect();
            let exporters = group_by_node(exporters.iter().filter(|p| p.place.pipeline == id), |p| &p.place.node)
                .into_iter()
                .map(|(node, posts)| exporter(node, &posts))
                .collect();
            PipelineStatus { throughput: rates(&history, &id), id, processors, breakers, exporters, recent }
        })
        .collect();
    Status { generated_at_ms: now_ms(SystemTime::now()), pipelines }
}

fn group_by_node<'a, T>(
    posts: impl Iterator<Item = &'a T>,
    node: impl Fn(&T) -> &String,
) -> BTreeMap<String, Vec<&'a T>> {
    let mut by_node: BTreeMap<String, Vec<&T>> = BTreeMap::new();
    for post in posts {
        by_node.entry(node(post).clone()).or_default().push(post);
    }
    by_node
}

fn processor(node: &str, wasm: &[&board::WasmPost]) -> ProcessorStatus {
    let instances: Vec<_> = wasm.iter().filter(|p| p.place.node == node).collect();
    let mut metrics: Option<MetricsSnapshot> = None;
    for post in &instances {
        let snapshot = post.plugin.metrics();
        match metrics.as_mut() {
            Some(total) => total.add(&snapshot),
            None => metrics = Some(snapshot),
        }
    }
    let metrics = metrics.unwrap_or_default();
    ProcessorStatus { node: node.to_string(), cores: instances.len(), latency_us: percentiles(&metrics), metrics }
}

/// Percentiles from the latency histogram, linear within a bucket; the
/// overflow bucket reports its lower bound.
fn percentiles(metrics: &MetricsSnapshot) -> Percentiles {
    let total: u64 = metrics.latency_counts.iter().sum();
    if total == 0 {
        return Percentiles::default();
    }
    let at = |q: f64| {
        let rank = q * total as f64;
        let mut seen = 0.0;
        let mut lower = 0.0;
        for (i, count) in metrics.latency_counts.iter().enumerate() {
            let count = *count as f64;
            let Some(upper) = metrics.latency_buckets_us.get(i).map(|b| *b as f64) else { return lower };
            if count > 0.0 && seen + count >= rank {
                return lower + (upper - lower) * ((rank - seen) / count);
            }
            seen += count;
            lower = upper;
        }
        lower
    };
    Percentiles { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: metrics.latency_sum_us as f64 / total as f64 }
}

fn recent(order: &[&str], wasm: &[&board::WasmPost]) -> BTreeMap<&'static str, RecentRecords> {
    let mut recent = BTreeMap::new();
    for signal in Signal::ALL {
        // The last node in flow order that emitted the signal; among its
        // instances, the newest batch.
        let newest = order.iter().rev().find_map(|node| {
            wasm.iter()
                .filter(|p| p.place.node == *node)
                .filter_map(|p| p.latest.get(signal))
                .max_by_key(|(at, _)| *at)
                .map(|kept| (*node, kept))
        });
        if let Some((node, (at, otlp))) = newest {
            let records = records::last_records(signal, &otlp).map_err(|e| format!("not OTLP: {e}"));
            recent.insert(signal.as_str(), RecentRecords { node: node.to_string(), at_ms: now_ms(at), records });
        }
    }
    recent
}

fn breaker(node: String, posts: &[&board::BreakerPost]) -> BreakerStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let mut cores: Vec<_> = posts.iter().map(|p| (p.place.core, p.status.state.load(Relaxed))).collect();
    cores.sort();
    let name = |state: u8| match state {
        1 => "open",
        2 => "half_open",
        _ => "closed",
    };
    let worst = cores.iter().map(|(_, s)| *s).max_by_key(|s| match s {
        1 => 2,
        2 => 1,
        _ => 0,
    });
    let sum = |f: fn(&board::BreakerStatus) -> u64| posts.iter().map(|p| f(&p.status)).sum();
    let last_failure = posts
        .iter()
        .find_map(|p| p.status.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone());
    BreakerStatus {
        node,
        state: name(worst.unwrap_or(0)),
        cores: cores.iter().map(|(_, s)| name(*s)).collect(),
        opened: sum(|s| s.opened.load(Relaxed)),
        rejected: sum(|s| s.rejected.load(Relaxed)),
        failures: sum(|s| s.failures.load(Relaxed)),
        successes: sum(|s| s.successes.load(Relaxed)),
        last_failure,
    }
}

fn exporter(node: String, posts: &[&board::ExporterPost]) -> ExporterStatus {
    let directory = posts.first().map(|p| p.directory.clone()).unwrap_or_default();
    let mut signals = BTreeMap::new();
    for signal in Signal::ALL {
        let mut files = FilesStatus::default();
        for post in posts {
            let (rows, bytes) = post.written.get(signal);
            files.rows_written += rows;
            files.bytes_written += bytes;
        }
        // Every core writes into the same per-signal directory.
        if let Ok(entries) = std::fs::read_dir(directory.join(signal.as_str())) {
            let mut newest: Option<(SystemTime, String)> = None;
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                files.files += 1;
                files.bytes_on_disk += meta.len();
                let modified = meta.modified().unwrap_or(UNIX_EPOCH);
                if newest.as_ref().is_none_or(|(at, _)| modified > *at) {
                    newest = Some((modified, entry.file_name().to_string_lossy().into_owned()));
                }
            }
            if let Some((at, name)) = newest {
                files.newest = Some(name);
                files.newest_modified_ms = Some(now_ms(at));
            }
        }
        signals.insert(signal.as_str(), files);
    }
    ExporterStatus { node, directory: directory.display().to_string(), signals }
}

fn totals(board: &Board) -> BTreeMap<String, Totals> {
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let mut first: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for post in &board.wasm {
        let rank = board
            .order
            .get(&post.place.pipeline)
            .and_then(|o| o.iter().position(|n| *n == post.place.node))
            .unwrap_or(usize::MAX);
        let entry = first.entry(&post.place.pipeline).or_insert((rank, &post.place.node));
        if rank < entry.0 {
            *entry = (rank, &post.place.node);
        }
    }
    for post in &board.wasm {
        if first.get(post.place.pipeline.as_str()).is_some_and(|(_, node)| *node == post.place.node) {
            let metrics = post.plugin.metrics();
            let total = totals.entry(post.place.pipeline.clone()).or_default();
            total.batches += metrics.calls;
            total.bytes += metrics.bytes_in;
        }
    }
    for post in &board.exporters {
        let total = totals.entry(post.place.pipeline.clone()).or_default();
        for signal in Signal::ALL {
            total.rows += post.written.get(signal).0;
        }
    }
    totals
}

fn rates(history: &std::collections::VecDeque<Sample>, pipeline: &str) -> Vec<Rate> {
    history
        .iter()
        .zip(history.iter().skip(1))
        .map(|(before, after)| {
            let seconds = (after.t_ms.saturating_sub(before.t_ms) as f64 / 1000.0).max(0.001);
            let a = before.totals.get(pipeline).copied().unwrap_or_default();
            let b = after.totals.get(pipeline).copied().unwrap_or_default();
            let per_s = |x: u64, y: u64| y.saturating_sub(x) as f64 / seconds;
            Rate {
                t_ms: after.t_ms,
                batches_per_s: per_s(a.batches, b.batches),
                bytes_per_s: per_s(a.bytes, b.bytes),
                rows_per_s: per_s(a.rows, b.rows),
            }
        })
        .collect()
}

fn now_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_within_buckets() {
        let metrics = MetricsSnapshot {
            latency_buckets_us: vec![10, 100, 1000],
            // 50 calls ≤ 10 µs, 40 in (10, 100], 10 in (100, 1000], none above.
            latency_counts: vec![50, 40, 10, 0],
            latency_sum_us: 5_000,
            ..Default::default()
        };
        let p = percentiles(&metrics);
        assert_eq!(p.p50, 10.0);
        assert_eq!(p.p90, 100.0);
        assert!((p.p99 - 910.0).abs() < 1e-9, "{}", p.p99);
        assert_eq!(p.mean, 50.0);
        assert_eq!(percentiles(&MetricsSnapshot::default()).p50, 0.0);
    }

    #[test]
    fn reading_a_board_that_is_gone_does_not_bring_it_back() {
        board::with("dashboard-test", |b| b.hide_records = true);
        board::clear("dashboard-test");
        assert!(status("dashboard-test").pipelines.is_empty());
        assert!(processors("dashboard-test").is_empty());
        assert!(board::with_existing("dashboard-test", |_| ()).is_none(), "a reader re-created the board");
    }

    #[test]
    fn rates_are_per_second_between_samples() {
        let sample = |t_ms, batches, rows| Sample {
            t_ms,
            totals: BTreeMap::from([("g/p".to_string(), Totals { batches, bytes: batches * 100, rows })]),
        };
        let history = std::collections::VecDeque::from([sample(0, 0, 0), sample(500, 10, 40), sample(1500, 10, 40)]);
        let rates = rates(&history, "g/p");
        assert_eq!(rates.len(), 2);
        assert_eq!((rates[0].batches_per_s, rates[0].bytes_per_s, rates[0].rows_per_s), (20.0, 2000.0, 80.0));
        assert_eq!(rates[1].batches_per_s, 0.0);
        assert!(super::rates(&history, "other/pipeline").iter().all(|r| r.batches_per_s == 0.0));
    }
}
