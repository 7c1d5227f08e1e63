//! The runtime against real components: outcomes, the instance pool under
//! concurrency, the disk cache across runtimes, and metrics.

use std::sync::Arc;
use std::thread;

use prost::Message;
use wasmtel_runtime::{ComponentSource, Outcome, PluginConfig, Runtime, RuntimeConfig, Signal};
use wasmtel_tests::{component, gauge, load, runtime, span_named, string_attr, traces_bytes};

const IDENTITY: &str = "wasmtel-test-identity";

fn identity(mode: &str) -> (wasmtel_runtime::Plugin, tempfile::TempDir) {
    let (runtime, cache) = runtime();
    let config = PluginConfig { config: serde_json::json!({ "mode": mode }), ..Default::default() };
    (load(&runtime, IDENTITY, config).expect("identity loads"), cache)
}

#[test]
fn identity_outcomes_cross_the_boundary_intact() {
    let batch = traces_bytes(&[("GET /a", vec![string_attr("k", "v")]), ("GET /b", vec![])]);
    let (unchanged, _c1) = identity("unchanged");
    assert_eq!(unchanged.process(Signal::Traces, &batch, None).unwrap(), Outcome::Unchanged);
    let (replace, _c2) = identity("replace");
    assert_eq!(replace.process(Signal::Traces, &batch, None).unwrap(), Outcome::Replaced(batch.clone()));
    let (drop, _c3) = identity("drop");
    assert_eq!(drop.process(Signal::Traces, &batch, None).unwrap(), Outcome::Dropped);

    let metrics = replace.metrics();
    assert_eq!(
        (metrics.calls, metrics.replaced, metrics.bytes_in, metrics.bytes_out),
        (1, 1, batch.len() as u64, batch.len() as u64)
    );
    assert_eq!(metrics.latency_counts.iter().sum::<u64>(), 1);
}

#[test]
fn empty_batches_are_fine() {
    let (replace, _cache) = identity("replace");
    assert_eq!(replace.process(Signal::Metrics, &[], None).unwrap(), Outcome::Replaced(vec![]));
}

#[test]
fn concurrent_callers_share_a_bounded_pool() {
    let (runtime, _cache) = runtime();
    let mut config = PluginConfig { config: serde_json::json!({ "mode": "replace" }), ..Default::default() };
    config.limits.max_instances = 3;
    let plugin = Arc::new(load(&runtime, IDENTITY, config).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let plugin = plugin.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    let batch = span_named(&format!("thread {t} call {i}"));
                    assert_eq!(plugin.process(Signal::Traces, &batch, None).unwrap(), Outcome::Replaced(batch));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("worker thread");
    }
    let metrics = plugin.metrics();
    assert_eq!(metrics.calls, 400);
    assert_eq!(metrics.replaced, 400);
    assert!(metrics.instances_live <= 3 && metrics.instances_created <= 3, "{metrics:?}");
}

#[test]
fn second_runtime_loads_from_the_disk_cache() {
    use wasmtel_runtime::LoadedComponent;
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), max_total_instances: 8 };
    let load = |runtime: &Runtime| -> LoadedComponent {
        runtime.load_component(IDENTITY, ComponentSource::Path(component(IDENTITY))).unwrap()
    };
    let first = Runtime::new(config()).unwrap();
    let compiled = load(&first);
    assert_eq!(format!("{:?}", compiled.compiled_from), "Compiled");
    assert_eq!(format!("{:?}", load(&first).compiled_from), "Memory");
    let second = Runtime::new(config()).unwrap();
    let cached = load(&second);
    assert_eq!(format!("{:?}", cached.compiled_from), "Disk");
    assert_eq!(cached.digest, compiled.digest);
    assert!(cached.digest.starts_with("sha256:") && cached.digest.len() == 7 + 64);

    // A corrupt cache entry is discarded and the component recompiled.
    let artifacts = || -> Vec<std::path::PathBuf> {
        let entries = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path());
        entries.filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect()
    };
    for artifact in artifacts() {
        std::fs::write(artifact, b"not a compiled artifact").unwrap();
    }
    let third = Runtime::new(config()).unwrap();
    assert_eq!(format!("{:?}", load(&third).compiled_from), "Compiled");
}

#[test]
fn tampered_or_foreign_cache_artifacts_are_never_executed() {
    let cache = tempfile::tempdir().unwrap();
    let config = |dir: &std::path::Path| RuntimeConfig { cache_dir: Some(dir.to_path_buf()), max_total_instances: 8 };
    let compiled_from = |dir: &std::path::Path| {
        let runtime = Runtime::new(config(dir)).unwrap();
        let loaded = runtime.load_component(IDENTITY, ComponentSource::Path(component(IDENTITY))).unwrap();
        format!("{:?}", loaded.compiled_from)
    };
    assert_eq!(compiled_from(cache.path()), "Compiled");
    let artifact = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an artifact was written");
    assert_eq!(compiled_from(cache.path()), "Disk");

    // One flipped byte of native code, tag kept: refused, recompiled, rewritten.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    assert_eq!(compiled_from(cache.path()), "Compiled");
    assert_eq!(compiled_from(cache.path()), "Disk", "the rewritten artifact is trusted again");

    // A well-formed artifact of the same component written by another cache
    // (another key: what a different user or process could plant) is refused.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(compiled_from(other.path()), "Compiled");
    let foreign = std::fs::read(other.path().join(artifact.file_name().unwrap())).unwrap();
    std::fs::write(&artifact, foreign).unwrap();
    assert_eq!(compiled_from(cache.path()), "Compiled");
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let runtime =
        Runtime::new(RuntimeConfig { cache_dir: Some(shared.path().to_path_buf()), max_total_instances: 8 }).unwrap();
    assert!(runtime.cache_dir().is_none(), "a world-writable cache is disabled");
    let loaded = runtime.load_component(IDENTITY, ComponentSource::Path(component(IDENTITY))).unwrap();
    assert_eq!(format!("{:?}", loaded.compiled_from), "Compiled");
    assert_eq!(std::fs::read_dir(shared.path()).unwrap().count(), 0, "nothing was written there");
}

#[test]
fn manifest_is_read_without_running_the_guest() {
    let (runtime, _cache) = runtime();
    let loaded = runtime.load_component(IDENTITY, ComponentSource::Path(component(IDENTITY))).unwrap();
    let manifest = loaded.manifest.expect("SDK components carry a manifest");
    assert_eq!(manifest.name, IDENTITY);
    assert_eq!(manifest.wit.as_deref(), Some(wasmtel_runtime::WIT_VERSION));
    assert_eq!(loaded.wit_version, wasmtel_runtime::WIT_VERSION);
    assert!(loaded.exports.iter().any(|e| e.starts_with("wasmtel:plugin/processor@")));
    assert!(loaded.imports.iter().all(|i| !i.starts_with("wasi:sockets")), "{:?}", loaded.imports);
}

#[test]
fn metrics_batches_round_trip_through_a_guest() {
    let (replace, _cache) = identity("replace");
    let batch = gauge("queue.depth", &[(3.0, vec![string_attr("queue", "a")])]).encode_to_vec();
    assert_eq!(replace.process(Signal::Metrics, &batch, None).unwrap(), Outcome::Replaced(batch));
}
