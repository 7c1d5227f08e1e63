//! The runtime against real components: outcomes, the instance pool under
//! concurrency, the disk cache across runtimes, and metrics.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::sync::Arc;
use std::thread;

use prost::Message;
use wasmtel_runtime::{ComponentSource, Outcome, PluginConfig, Runtime, RuntimeConfig, Signal};
use wasmtel_tests::{component, field, gauge, load, runtime, span_named, string_attr, traces_bytes};

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
fn perf_map_names_guest_functions_for_perf() {
    let runtime = Runtime::new(RuntimeConfig { cache_dir: None, perf_map: true, ..RuntimeConfig::default() }).unwrap();
    runtime.load_component(IDENTITY, ComponentSource::Path(component(IDENTITY))).unwrap();
    let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", std::process::id())).unwrap();
    // perf's format: start address, size (hex), name.
    let named = map.lines().filter(|line| line.splitn(3, ' ').nth(2).is_some_and(|name| name.contains("identity")));
    assert!(named.count() > 0, "no guest function of the identity component in the perf map:\n{map}");
}

#[test]
fn second_runtime_loads_from_the_disk_cache() {
    use wasmtel_runtime::LoadedComponent;
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_total_instances: 8,
        ..RuntimeConfig::default()
    };
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
    let config = |dir: &std::path::Path| RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        max_total_instances: 8,
        ..RuntimeConfig::default()
    };
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
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(shared.path().to_path_buf()),
        max_total_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
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

/// A traces request whose one span's name is `name` bytes, written by hand
/// so the bytes need not be UTF-8.
fn span_with_raw_name(name: &[u8], attributes: &[(&str, &str)]) -> Vec<u8> {
    let mut request =
        wasmtel_tests::traces(&[("PLACEHOLDER", attributes.iter().map(|(k, v)| string_attr(k, v)).collect())])
            .encode_to_vec();
    // Same length, so no length prefix changes: swap the placeholder bytes.
    assert_eq!(name.len(), "PLACEHOLDER".len());
    let at = request.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    request[at..at + 11].copy_from_slice(name);
    request
}

#[test]
fn invalid_utf8_input_is_repaired_and_redacted_not_refused() {
    let (runtime, _cache) = runtime();
    let config = PluginConfig {
        config: serde_json::json!({"keys": ["user.email"], "action": "mask"}),
        ..PluginConfig::default()
    };
    let redact = load(&runtime, "wasmtel-redact", config).unwrap();
    let batch = span_with_raw_name(b"GET /\xff\xfe\xc3abc", &[("user.email", "ada@example.com")]);
    assert!(wasmtel_runtime::otlp::validate(Signal::Traces, &batch).is_err(), "prost would refuse it");
    let Outcome::Replaced(out) = redact.process(Signal::Traces, &batch, None).unwrap() else {
        panic!("redacted");
    };
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&out[..])
        .expect("what leaves the plugin is valid OTLP");
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "GET /\u{fffd}\u{fffd}\u{fffd}abc");
    assert!(!String::from_utf8_lossy(&out).contains("ada@example.com"), "still redacted");
    assert_eq!(redact.metrics().input_repaired, 1);

    // A guest that leaves it unchanged still hands on the repaired batch.
    let (unchanged, _cache) = identity("unchanged");
    let Outcome::Replaced(out) = unchanged.process(Signal::Traces, &batch, None).unwrap() else {
        panic!("the repair goes on");
    };
    assert!(wasmtel_runtime::otlp::validate(Signal::Traces, &out).is_ok());
}

#[test]
fn input_no_decoder_can_frame_is_refused_before_the_guest_even_under_pass() {
    let (runtime, _cache) = runtime();
    let config = PluginConfig {
        config: serde_json::json!({ "mode": "unchanged" }),
        on_error: Some(wasmtel_runtime::OnError::Pass),
        ..Default::default()
    };
    let plugin = load(&runtime, IDENTITY, config).unwrap();
    let batch = traces_bytes(&[("GET /", vec![])]);
    for (what, bytes) in [
        ("truncated", batch[..batch.len() - 3].to_vec()),
        ("garbage", vec![0xff; 32]),
        ("huge length prefix", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]),
    ] {
        let error = plugin.process(Signal::Traces, &bytes, None).expect_err(what);
        assert_eq!(error.kind, wasmtel_runtime::FailureKind::InvalidInput, "{what}: {error}");
        assert!(error.is_permanent(), "{what}");
        assert!(error.to_string().contains(IDENTITY) && error.to_string().contains("not an OTLP traces"), "{error}");
    }
    let metrics = plugin.metrics();
    assert_eq!((metrics.policy_passed, metrics.error_count(wasmtel_runtime::FailureKind::InvalidInput)), (0, 3));
    assert_eq!(plugin.process(Signal::Traces, &batch, None).unwrap(), Outcome::Unchanged, "keeps serving");
}

#[test]
fn deeply_nested_input_is_cut_at_the_limit_not_a_stack_overflow() {
    // Written byte by byte: prost itself would overflow the stack encoding it.
    let mut value = field(0x0a, b"leaf"); // AnyValue.string_value
    for _ in 0..5000 {
        value = field(0x2a, &field(0x0a, &value)); // AnyValue.array_value { values: [value] }
    }
    let deep = [field(0x0a, b"deep"), field(0x12, &value)].concat();
    let email = string_attr("user.email", "ada@example.com").encode_to_vec();
    let span = [field(0x2a, b"GET /"), field(0x4a, &deep), field(0x4a, &email)].concat();
    let batch = field(0x0a, &field(0x12, &field(0x12, &span)));
    let (runtime, _cache) = runtime();
    let config = PluginConfig {
        config: serde_json::json!({"keys": ["user.email"], "action": "mask"}),
        ..PluginConfig::default()
    };
    let redact = load(&runtime, "wasmtel-redact", config).unwrap();
    let Outcome::Replaced(out) = redact.process(Signal::Traces, &batch, None).unwrap() else { panic!("redacted") };
    assert!(!String::from_utf8_lossy(&out).contains("ada@example.com"));
    assert!(wasmtel_runtime::otlp::validate(Signal::Traces, &out).is_ok());
    assert_eq!(redact.metrics().input_repaired, 1);
}
