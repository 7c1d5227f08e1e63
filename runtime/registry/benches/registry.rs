//! Registry benchmarks (loopback `docker-registry`, started by the bench):
//! - pulling and verifying a 5 MB component into an empty store (digest check,
//!   and with a cosign signature check as well);
//! - loading a pinned component from the local store with the precompiled cache
//!   warm, against loading the same bytes from a plain path.
//!
//! `cargo bench -p wasmtel-registry --bench registry`

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wasmtel_registry::{Policy, Resolver, SigningKey};
use wasmtel_runtime::{ComponentSource, Runtime, RuntimeConfig};

#[path = "../tests/support/mod.rs"]
mod support;

const SIZE: usize = 5 * 1024 * 1024;

fn policy(store: &Path) -> Policy {
    Policy { store: Some(store.to_path_buf()), ..Policy::default() }
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        max_total_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn pull(c: &mut Criterion) {
    let registry = support::TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let base = std::fs::read(support::component_path("wasmtel_test_identity")).unwrap();
    let file = work.path().join("big.wasm");
    std::fs::write(&file, support::padded_component(&base, SIZE)).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let reference = registry.reference("bench/big:1");
    let publisher = tempfile::tempdir().unwrap();
    let publish = Resolver::new(policy(publisher.path())).unwrap();
    publish.push(&file, &reference).unwrap();
    let key = SigningKey::generate();
    publish.sign(&reference, &key).unwrap();
    let public = key.public_key().to_pem().unwrap();

    let mut group = c.benchmark_group("pull");
    group.throughput(Throughput::Bytes(size)).sample_size(30).measurement_time(Duration::from_secs(10));
    let fresh = |signed: bool| {
        let store = tempfile::tempdir().unwrap();
        let mut policy = policy(store.path());
        if signed {
            policy.require_signature = true;
            policy.trusted_keys = vec![public.clone()];
        }
        (store, Resolver::new(policy).unwrap())
    };
    group.bench_function("5MB_digest_verified", |b| {
        b.iter_batched(|| fresh(false), |(store, r)| (r.resolve(&reference).unwrap(), store), BatchSize::PerIteration)
    });
    group.bench_function("5MB_digest_and_signature_verified", |b| {
        b.iter_batched(|| fresh(true), |(store, r)| (r.resolve(&reference).unwrap(), store), BatchSize::PerIteration)
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let registry = support::TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let file = support::component_path("wasmtel_redact");
    let reference = registry.reference("bench/redact:1");
    let resolver = Resolver::new(policy(&home.path().join("store"))).unwrap();
    let pinned = resolver.push(&file, &reference).unwrap().reference;
    drop(registry); // The pinned load below must not need it.
    // Fill the precompiled cache once; both variants then deserialize it.
    let load_pinned = |rt: &wasmtel_runtime::Runtime| {
        let (source, _) = resolver.verified_source(&pinned).unwrap();
        rt.load_component("redact", source).unwrap()
    };
    load_pinned(&runtime(&cache));

    let mut group = c.benchmark_group("load_precompiled");
    group.sample_size(30).measurement_time(Duration::from_secs(10));
    // A fresh Runtime per iteration (untimed) so each load reads the disk cache, not memory.
    group.bench_function("store_pinned_oci_ref", |b| {
        b.iter_batched(
            || runtime(&cache),
            |rt| {
                let loaded = load_pinned(&rt);
                (loaded, rt)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("plain_path", |b| {
        b.iter_batched(
            || runtime(&cache),
            |rt| (rt.load_component("redact", ComponentSource::Path(file.clone())).unwrap(), rt),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("resolve_only_store_pinned", |b| b.iter(|| resolver.resolve(&pinned).unwrap()));
    group.finish();
}

criterion_group!(benches, pull, load);
criterion_main!(benches);
