//! Per-call cost of the sandbox, measured against native baselines in the
//! same run. Needs the guests built first: `scripts/build-components.sh`.
//! Run: `cargo bench -p wasmtel-runtime --bench plugin`.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtel_runtime::{ComponentSource, Outcome, PluginConfig, Runtime, RuntimeConfig, Signal};

#[path = "../../tests/support/paths.rs"]
mod paths;

const IDENTITY: &str = "wasmtel-test-identity";

fn runtime(cache_dir: Option<std::path::PathBuf>) -> Runtime {
    // WASMTEL_BENCH_PERF_MAP=1: let `perf` name guest functions.
    let perf_map = std::env::var_os("WASMTEL_BENCH_PERF_MAP").is_some();
    Runtime::new(RuntimeConfig { cache_dir, max_total_instances: 16, perf_map }).expect("runtime")
}

fn identity(runtime: &Runtime, mode: &str) -> wasmtel_runtime::Plugin {
    let config = PluginConfig { config: serde_json::json!({ "mode": mode }), ..Default::default() };
    runtime.load_plugin(IDENTITY, ComponentSource::Path(paths::component(IDENTITY)), config).expect("identity")
}

/// Bytes that are a valid (if meaningless) OTLP request: one unknown field
/// would be skipped by decoders, so use an empty request padded with a
/// resource-spans entry holding an opaque schema URL of the right size.
fn payload(size: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
    use prost::Message;
    if size == 0 {
        return Vec::new();
    }
    let overhead = 8;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            schema_url: "x".repeat(size.saturating_sub(overhead)),
            ..Default::default()
        }],
    };
    request.encode_to_vec()
}

fn identity_call(c: &mut Criterion) {
    let runtime = runtime(None);
    let unchanged = identity(&runtime, "unchanged");
    let replace = identity(&runtime, "replace");
    let mut group = c.benchmark_group("identity_call");
    for size in [0usize, 1024, 1 << 20] {
        let input = payload(size);
        group.throughput(Throughput::Bytes(input.len().max(1) as u64));
        group.bench_with_input(BenchmarkId::new("native_copy", size), &input, |b, input| {
            b.iter(|| black_box(input.to_vec()))
        });
        group.bench_with_input(BenchmarkId::new("wasm_unchanged", size), &input, |b, input| {
            b.iter(|| {
                assert_eq!(unchanged.process(Signal::Traces, black_box(input), None).unwrap(), Outcome::Unchanged)
            })
        });
        group.bench_with_input(BenchmarkId::new("wasm_replace", size), &input, |b, input| {
            b.iter(|| black_box(replace.process(Signal::Traces, black_box(input), None).unwrap()))
        });
    }
    group.finish();
}

fn instance_lifecycle(c: &mut Criterion) {
    let bytes = std::fs::read(paths::component(IDENTITY)).expect("identity component");
    let mut group = c.benchmark_group("lifecycle");
    group.sample_size(10).measurement_time(Duration::from_secs(10));

    let warm_runtime = runtime(None);
    let warm = identity(&warm_runtime, "unchanged");
    group.bench_function("warm_checkout_and_call", |b| b.iter(|| warm.process(Signal::Traces, &[], None).unwrap()));
    // A plugin over an already compiled component: instantiate + init.
    group.bench_function("fresh_instantiation", |b| b.iter(|| black_box(identity(&warm_runtime, "unchanged"))));

    let cache = tempfile::tempdir().expect("cache dir");
    runtime(Some(cache.path().to_path_buf()))
        .load_component(IDENTITY, ComponentSource::Bytes(bytes.clone()))
        .expect("fill cache");
    group.bench_function("load_from_disk_cache", |b| {
        b.iter_batched(
            || runtime(Some(cache.path().to_path_buf())),
            |rt| rt.load_component(IDENTITY, ComponentSource::Bytes(bytes.clone())).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("compile", |b| {
        b.iter_batched(
            || runtime(None),
            |rt| rt.load_component(IDENTITY, ComponentSource::Bytes(bytes.clone())).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// A 10k-item batch like a busy service's: a few resources, spans (or logs)
/// with HTTP attributes, every tenth carrying an email to redact and a
/// health-check route to filter.
fn big_batch(signal: Signal, items: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    let kv = |k: &str, v: String| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: Some(Value::StringValue(v)) }),
        ..Default::default()
    };
    let attributes = |i: usize| {
        let route = if i % 10 == 3 { "/health".to_string() } else { format!("/api/orders/{}", i % 50) };
        let mut attrs = vec![
            kv("http.request.method", "GET".into()),
            kv("http.route", route),
            kv("url.full", format!("https://shop.example.com/api/orders/{i}?page=2")),
            kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)".into()),
            kv("server.address", "shop.example.com".into()),
        ];
        if i.is_multiple_of(10) {
            attrs.push(kv("user.email", format!("user{i}@example.com")));
        }
        attrs
    };
    let resource =
        |r: usize| Some(Resource { attributes: vec![kv("service.name", format!("svc-{r}"))], ..Default::default() });
    let per_resource = items / 4;
    match signal {
        Signal::Logs => ExportLogsServiceRequest {
            resource_logs: (0..4)
                .map(|r| ResourceLogs {
                    resource: resource(r),
                    scope_logs: vec![ScopeLogs {
                        log_records: (0..per_resource)
                            .map(|i| LogRecord {
                                time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                                severity_number: if i % 10 == 5 { 5 } else { 9 },
                                body: Some(AnyValue {
                                    value: Some(Value::StringValue(format!("handled request {i}"))),
                                }),
                                attributes: attributes(i),
                                trace_id: vec![(i % 251) as u8; 16],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
        .encode_to_vec(),
        _ => ExportTraceServiceRequest {
            resource_spans: (0..4)
                .map(|r| ResourceSpans {
                    resource: resource(r),
                    scope_spans: vec![ScopeSpans {
                        spans: (0..per_resource)
                            .map(|i| Span {
                                trace_id: (i as u128).to_be_bytes().to_vec(),
                                span_id: (i as u64).to_be_bytes().to_vec(),
                                name: format!("GET /api/orders/{}", i % 50),
                                start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                                end_time_unix_nano: 1_700_000_000_000_100_000 + i as u64,
                                attributes: attributes(i),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
        .encode_to_vec(),
    }
}

/// Counts heap allocations while `COUNTING` is on (off while timing).
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCATIONS.fetch_add(1, Relaxed);
            ALLOCATED_BYTES.fetch_add(layout.size() as u64, Relaxed);
        }
        // SAFETY: the caller's contract for `alloc`, passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (every allocation here does).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCATIONS.fetch_add(1, Relaxed);
            ALLOCATED_BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Relaxed);
        }
        // SAFETY: as for `dealloc`; `new_size` is the caller's, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations and bytes allocated by one native run of a processor.
fn allocations<P: wasmtel_sdk::Processor>(processor: &mut P, signal: Signal, batch: &[u8]) -> (u64, u64) {
    ALLOCATIONS.store(0, Relaxed);
    ALLOCATED_BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    black_box(wasmtel_sdk::testing::run(processor, signal, batch).unwrap());
    COUNTING.store(false, Relaxed);
    (ALLOCATIONS.load(Relaxed), ALLOCATED_BYTES.load(Relaxed))
}

/// The processor as a wasm component, against the same library compiled
/// natively (`native`, on the SDK's view) and its decode/re-encode twin
/// compiled natively (`native_decoded`, the pre-view implementation), in
/// one run. Prints allocations per batch and the guest's peak memory.
fn wasm_vs_native<P: wasmtel_sdk::Processor, D: wasmtel_sdk::Processor>(
    c: &mut Criterion,
    crate_name: &str,
    config: serde_json::Value,
) {
    let runtime = runtime(None);
    let load = || {
        let plugin_config = PluginConfig { config: config.clone(), ..Default::default() };
        runtime
            .load_plugin(crate_name, ComponentSource::Path(paths::component(crate_name)), plugin_config)
            .expect("component loads")
    };
    let plugin = load();
    let mut native: P = wasmtel_sdk::testing::new(&config.to_string()).expect("native config");
    let mut decoded: D = wasmtel_sdk::testing::new(&config.to_string()).expect("native config");
    let name = crate_name.trim_start_matches("wasmtel-");
    let mut group = c.benchmark_group(name);
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    // 10k items as a collector's batch processor sends them; 100 spans as a busy SDK exporter does.
    for (signal, items, label) in
        [(Signal::Traces, 10_000, "10k"), (Signal::Logs, 10_000, "10k"), (Signal::Traces, 100, "100")]
    {
        let batch = big_batch(signal, items);
        let id = format!("{signal}_{label}");
        let (view_allocs, view_bytes) = allocations(&mut native, signal, &batch);
        let (decoded_allocs, decoded_bytes) = allocations(&mut decoded, signal, &batch);
        let fresh = load();
        fresh.process(signal, &batch, None).unwrap();
        println!(
            "{name}/{id}: input {} B; allocations per batch (native): view {view_allocs} ({view_bytes} B), decoded {decoded_allocs} ({decoded_bytes} B); guest linear memory after one batch: {} B",
            batch.len(),
            fresh.metrics().guest_memory_max_bytes
        );
        group.throughput(Throughput::Elements(items as u64));
        group.bench_with_input(BenchmarkId::new("native_decoded", &id), &batch, |b, batch| {
            b.iter(|| black_box(wasmtel_sdk::testing::run(&mut decoded, signal, batch).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("native", &id), &batch, |b, batch| {
            b.iter(|| black_box(wasmtel_sdk::testing::run(&mut native, signal, batch).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("wasm", &id), &batch, |b, batch| {
            b.iter(|| black_box(plugin.process(signal, batch, None).unwrap()))
        });
        // The host's share of the wasm path: validating `replaced` output.
        group.bench_with_input(BenchmarkId::new("host_validate_output", &id), &batch, |b, batch| {
            b.iter(|| wasmtel_runtime::otlp::validate(signal, black_box(batch)).unwrap())
        });
    }
    group.finish();
}

fn components(c: &mut Criterion) {
    wasm_vs_native::<wasmtel_redact::Redact, wasmtel_redact::decoded::Decoded>(
        c,
        "wasmtel-redact",
        serde_json::json!({
            "keys": ["user.email"],
            "key_patterns": ["(?i)authorization|password|token"],
            "value_patterns": [r"[\w.+-]+@[\w-]+\.[\w.]+"],
            "action": "hash",
        }),
    );
    wasm_vs_native::<wasmtel_filter::Filter, wasmtel_filter::decoded::Decoded>(
        c,
        "wasmtel-filter",
        serde_json::json!({
            "spans": { "attributes": [{ "key": "http.route", "value": "/health" }] },
            "logs": { "min_severity": 9 },
        }),
    );
}

criterion_group!(benches, identity_call, instance_lifecycle, components);
criterion_main!(benches);
