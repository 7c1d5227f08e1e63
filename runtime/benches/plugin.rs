//! Per-call cost of the sandbox, measured against native baselines in the
//! same run. Needs the guests built first: `scripts/build-components.sh`.
//! Run: `cargo bench -p wasmtel-runtime --bench plugin`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use wasmtel_runtime::{ComponentSource, Outcome, PluginConfig, Runtime, RuntimeConfig, Signal};

#[path = "../../tests/support/paths.rs"]
mod paths;

const IDENTITY: &str = "wasmtel-test-identity";

fn runtime(cache_dir: Option<std::path::PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir, max_total_instances: 16 }).expect("runtime")
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
        resource_spans: vec![ResourceSpans { schema_url: "x".repeat(size.saturating_sub(overhead)), ..Default::default() }],
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
            b.iter(|| assert_eq!(unchanged.process(Signal::Traces, black_box(input), None).unwrap(), Outcome::Unchanged))
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
    group.bench_function("warm_checkout_and_call", |b| {
        b.iter(|| warm.process(Signal::Traces, &[], None).unwrap())
    });
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

criterion_group!(benches, identity_call, instance_lifecycle);
criterion_main!(benches);
