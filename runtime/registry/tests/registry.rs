//! End-to-end tests against a real OCI distribution registry on loopback.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{FailingServer, TestRegistry, closed_port, component_path, files_under, oras};
use wasmtel_registry::{
    Digest, ErrorKind, LockFile, LockUpdate, Origin, Policy, RegistryError, Resolved, Resolver, SigningKey, artifact,
};
use wasmtel_runtime::{LoadedComponent, PluginConfig, Runtime, RuntimeConfig, Signal};

fn policy(store: &Path) -> Policy {
    Policy { store: Some(store.to_path_buf()), timeout: Duration::from_secs(5), ..Policy::default() }
}

fn resolver(policy: Policy) -> Resolver {
    Resolver::new(policy).expect("resolver")
}

/// Resolves (bytes checked against the digest), then compiles: what every
/// loading edge does, keeping the component to look at.
fn load_component(
    resolver: &Resolver,
    runtime: &Runtime,
    name: &str,
    reference: &str,
) -> Result<(LoadedComponent, Resolved), RegistryError> {
    let (source, resolved) = resolver.verified_source(reference)?;
    let loaded = runtime.load_component(name, source).map_err(|e| RegistryError::new(reference, ErrorKind::Load(e)))?;
    Ok((loaded, resolved))
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: None, max_total_instances: 8, ..RuntimeConfig::default() })
        .expect("runtime")
}

/// Asserts the error names the reference and matches the expected kind and text.
fn expect_error<T>(result: Result<T, RegistryError>, reference: &str, needle: &str) -> RegistryError {
    let Err(error) = result else { panic!("{reference}: expected an error containing {needle:?}") };
    let text = error.to_string();
    assert_eq!(error.reference, reference);
    assert!(text.starts_with(reference), "message must name the reference: {text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
    error
}

fn redact_config() -> PluginConfig {
    PluginConfig { config: serde_json::json!({ "keys": ["user.email"] }), ..PluginConfig::default() }
}

fn write_key_files(dir: &Path, name: &str) -> (SigningKey, std::path::PathBuf) {
    let key = SigningKey::generate();
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, key.public_key().to_pem().unwrap()).unwrap();
    (key, public)
}

fn no_partial_files(store: &Path) {
    let leftovers: Vec<_> = files_under(&store.join("tmp"));
    assert!(leftovers.is_empty(), "half-written files left in the store: {leftovers:?}");
}

#[test]
fn push_then_pull_into_a_fresh_store_and_load() {
    let registry = TestRegistry::start();
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let file = component_path("wasmtel_redact");
    let bytes = std::fs::read(&file).unwrap();
    let reference = registry.reference("plugins/redact:1.0.0");

    let pushed = resolver(policy(publisher.path())).push(&file, &reference).expect("push");
    assert_eq!(pushed.component_digest, Digest::of(&bytes).to_string());
    let manifest_digest = pushed.manifest_digest.clone().unwrap();
    assert_eq!(pushed.reference, format!("{reference}@{manifest_digest}"));
    assert_eq!(pushed.plugin.as_ref().map(|p| p.name.as_str()), Some("wasmtel-redact"));

    let consumer = resolver(policy(consumer.path()));
    let resolved = consumer.resolve(&reference).expect("pull");
    assert_eq!(resolved.origin, Origin::Registry);
    assert_eq!(resolved.digest.as_deref(), Some(pushed.component_digest.as_str()));
    assert_eq!(resolved.manifest_digest.as_deref(), Some(manifest_digest.as_str()));
    assert_eq!(std::fs::read(&resolved.path).unwrap(), bytes);
    assert_eq!(resolved.plugin.as_ref().map(|p| p.signals.clone()), pushed.plugin.as_ref().map(|p| p.signals.clone()));

    // Again: the manifest is checked, the layer is not downloaded twice.
    let again = consumer.resolve(&reference).expect("pull again");
    assert_eq!(again.origin, Origin::Store);

    // The runtime loads exactly the resolved bytes and the plugin runs.
    let runtime = runtime();
    let (loaded, _) = load_component(&consumer, &runtime, "redact", &reference).expect("load");
    assert_eq!(loaded.digest, pushed.component_digest);
    let (plugin, _) = consumer
        .load_plugin(&runtime, "redact", &pushed.reference, redact_config())
        .expect("start plugin from a pinned reference");
    plugin.process(Signal::Traces, &[], None).expect("an empty batch passes");

    let names: Vec<String> = consumer.list().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, [reference]);
}

#[test]
fn inspect_reads_manifest_and_config_without_the_layer() {
    let registry = TestRegistry::start();
    let publisher = tempfile::tempdir().unwrap();
    let inspector = tempfile::tempdir().unwrap();
    let reference = registry.reference("plugins/filter:2.0");
    let pushed = resolver(policy(publisher.path())).push(&component_path("wasmtel_filter"), &reference).unwrap();

    let inspection = resolver(policy(inspector.path())).inspect_remote(&reference).expect("inspect");
    assert_eq!(inspection.manifest_digest, pushed.manifest_digest.unwrap());
    assert_eq!(inspection.config_media_type, artifact::WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(inspection.layer_digest, pushed.component_digest);
    let config = inspection.config.expect("wasm config");
    assert_eq!((config.architecture.as_str(), config.os.as_str()), ("wasm", "wasip2"));
    let world = config.component.expect("component world");
    assert!(world.exports.iter().any(|e| e.starts_with("wasmtel:plugin/processor@")), "{world:?}");
    assert!(world.imports.iter().any(|i| i.starts_with("wasmtel:plugin/host@")), "{world:?}");
    let plugin = inspection.plugin.expect("manifest from annotations");
    assert_eq!(plugin.name, "wasmtel-filter");
    assert!(inspection.annotations.contains_key(artifact::ANNOTATION_MANIFEST));
    // Nothing but small JSON blobs was fetched: the component is not in the inspector's store.
    let component = Digest::parse(&pushed.component_digest).unwrap();
    assert!(!inspector.path().join("blobs/sha256").join(component.hex()).exists());
}

#[test]
fn a_pinned_digest_in_the_store_loads_with_the_registry_down() {
    let mut registry = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    let reference = registry.reference("plugins/identity:1");
    let pushed = resolver(policy(store.path())).push(&component_path("wasmtel_test_identity"), &reference).unwrap();
    let pinned = pushed.reference.clone();
    registry.stop();

    // Pushing kept the artifact, so the pin resolves without the registry.
    let resolver = resolver(policy(store.path()));
    let resolved = resolver.resolve(&pinned).expect("pinned digest from the store");
    assert_eq!(resolved.origin, Origin::Store);
    let (loaded, _) = load_component(&resolver, &runtime(), "identity", &pinned).expect("load offline");
    assert_eq!(loaded.digest, pushed.component_digest);
    // Bare digests (manifest or component) resolve from the store as well.
    let by_manifest = resolver.resolve(pushed.manifest_digest.as_deref().unwrap()).unwrap();
    assert_eq!(by_manifest.path, resolved.path);
    assert_eq!(resolver.resolve(&pushed.component_digest).unwrap().path, resolved.path);

    // An unpinned tag needs the registry ...
    let error = expect_error(resolver.resolve(&reference), &reference, "is unreachable");
    assert!(error.is_transient());
    // ... unless the policy says to work offline from what the store knows.
    let offline = self::resolver(Policy { offline: true, ..policy(store.path()) });
    assert_eq!(offline.resolve(&reference).unwrap().digest, resolved.digest);
    let missing = registry.reference("plugins/never-pulled:1");
    expect_error(offline.resolve(&missing), &missing, "not in the local store");
}

#[test]
fn a_tag_moved_after_locking_is_refused() {
    let registry = TestRegistry::start();
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let lock_path = consumer.path().join("wasmtel.lock");
    let reference = registry.reference("plugins/moving:stable");
    let publish = resolver(policy(publisher.path()));
    let first = publish.push(&component_path("wasmtel_test_identity"), &reference).unwrap();

    let locking =
        Policy { lock_file: Some(lock_path.clone()), lock_update: LockUpdate::Missing, ..policy(consumer.path()) };
    resolver(locking.clone()).resolve(&reference).expect("pull and lock");
    let lock = LockFile::load(&lock_path).unwrap();
    let entry = &lock.components[&reference];
    assert_eq!(Some(&entry.manifest), first.manifest_digest.as_ref());
    assert_eq!(entry.component, first.component_digest);

    // The publisher moves the tag to other bytes.
    let second = publish.push(&component_path("wasmtel_redact"), &reference).unwrap();
    let deploying = Policy { lock_update: LockUpdate::Never, ..locking.clone() };
    let error = expect_error(resolver(deploying.clone()).resolve(&reference), &reference, "tag moved");
    assert!(error.is_verification_failure());
    let text = error.to_string();
    assert!(
        text.contains(first.manifest_digest.as_deref().unwrap())
            && text.contains(second.manifest_digest.as_deref().unwrap()),
        "{text}"
    );
    // `Missing` does not overwrite an existing entry either.
    expect_error(resolver(locking.clone()).resolve(&reference), &reference, "tag moved");

    // Accepting the move rewrites the lock.
    let updated = resolver(Policy { lock_update: LockUpdate::Always, ..locking }).resolve(&reference).unwrap();
    assert_eq!(updated.digest.as_deref(), Some(second.component_digest.as_str()));
    assert_eq!(LockFile::load(&lock_path).unwrap().components[&reference].component, second.component_digest);
    assert_eq!(resolver(deploying).resolve(&reference).unwrap().digest, updated.digest);
}

#[test]
fn a_locked_tag_loads_from_the_store_with_the_registry_down() {
    let mut registry = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    let lock_path = store.path().join("wasmtel.lock");
    let reference = registry.reference("plugins/locked:1");
    resolver(policy(store.path())).push(&component_path("wasmtel_test_identity"), &reference).unwrap();
    let locking = Policy { lock_file: Some(lock_path), lock_update: LockUpdate::Missing, ..policy(store.path()) };
    let pulled = resolver(locking.clone()).resolve(&reference).unwrap();
    registry.stop();
    let resolved =
        resolver(Policy { lock_update: LockUpdate::Never, ..locking }).resolve(&reference).expect("locked, stored");
    assert_eq!((resolved.origin, resolved.digest), (Origin::Store, pulled.digest));
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let registry = TestRegistry::start();
    let publisher = tempfile::tempdir().unwrap();
    let consumer = tempfile::tempdir().unwrap();
    let reference = registry.reference("plugins/tampered:1");
    let pushed = resolver(policy(publisher.path())).push(&component_path("wasmtel_test_identity"), &reference).unwrap();

    // Flip one byte of the layer inside the registry's storage (same length).
    let blob = registry.blob_file(&pushed.component_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let consumer_resolver = resolver(policy(consumer.path()));
    let error = expect_error(consumer_resolver.resolve(&reference), &reference, "digest mismatch");
    assert!(matches!(error.kind, ErrorKind::DigestMismatch { .. }), "{error}");
    assert!(error.to_string().contains(&pushed.component_digest), "{error}");
    assert!(error.to_string().contains(&Digest::of(&bytes).to_string()), "{error}");
    let component = Digest::parse(&pushed.component_digest).unwrap();
    assert!(!consumer.path().join("blobs/sha256").join(component.hex()).exists());
    assert!(files_under(&consumer.path().join("refs")).is_empty(), "no tag may point at a refused component");
    no_partial_files(consumer.path());
}

#[test]
fn signatures_under_require_signature() {
    let mut registry = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = write_key_files(keys.path(), "cosign");
    let (other_key, other_public) = write_key_files(keys.path(), "other");
    let reference = registry.reference("plugins/signed:1");
    let publisher = resolver(policy(store.path()));
    let pushed = publisher.push(&component_path("wasmtel_redact"), &reference).unwrap();
    let manifest = Digest::parse(pushed.manifest_digest.as_deref().unwrap()).unwrap();

    let strict = |trusted: &Path, store: &Path| Policy {
        require_signature: true,
        trusted_keys: vec![trusted.display().to_string()],
        ..policy(store)
    };
    // Unsigned.
    let fresh = tempfile::tempdir().unwrap();
    let error =
        expect_error(resolver(strict(&public, fresh.path())).resolve(&reference), &reference, "signature required");
    assert!(error.to_string().contains(&format!("sha256-{}.sig", manifest.hex())), "{error}");
    no_partial_files(fresh.path());

    // Signed by a key nobody trusts.
    publisher.sign(&reference, &other_key).expect("sign with the other key");
    let error =
        expect_error(resolver(strict(&public, fresh.path())).resolve(&reference), &reference, "none by a trusted key");
    assert!(matches!(error.kind, ErrorKind::BadSignature(_)));
    assert!(files_under(&fresh.path().join("blobs")).is_empty(), "refused before the download");

    // Signed by the trusted key as well: accepted, naming the key.
    let signed = publisher.sign(&reference, &key).expect("sign");
    assert_eq!(signed.manifest_digest, manifest.to_string());
    let resolved = resolver(strict(&public, fresh.path())).resolve(&reference).expect("signed");
    assert_eq!(resolved.signed_by, [public.display().to_string()]);
    let verified = resolver(strict(&other_public, fresh.path())).verify(&reference).expect("both signatures are there");
    assert_eq!(verified.signed_by, [other_public.display().to_string()]);

    // A signature copied from another manifest does not vouch for this one.
    let other_ref = registry.reference("plugins/signed:2");
    let other = publisher.push(&component_path("wasmtel_filter"), &other_ref).unwrap();
    let other_manifest = Digest::parse(other.manifest_digest.as_deref().unwrap()).unwrap();
    let copy = Command::new(oras())
        .args(["cp", "--from-plain-http", "--to-plain-http"])
        .arg(format!("{}/plugins/signed:sha256-{}.sig", registry.addr, manifest.hex()))
        .arg(format!("{}/plugins/signed:sha256-{}.sig", registry.addr, other_manifest.hex()))
        .output()
        .expect("oras cp");
    assert!(copy.status.success(), "{}", String::from_utf8_lossy(&copy.stderr));
    let error =
        expect_error(resolver(strict(&public, fresh.path())).resolve(&other_ref), &other_ref, "signature is for");
    assert!(error.is_verification_failure());

    // With the registry down, the cached signature still verifies the pinned digest.
    registry.stop();
    let resolved = resolver(strict(&public, fresh.path())).resolve(&pushed.reference).expect("offline, signed");
    assert_eq!((resolved.origin, resolved.signed_by.len()), (Origin::Store, 1));
    // A plain path cannot satisfy require_signature.
    let path = component_path("wasmtel_redact").display().to_string();
    expect_error(resolver(strict(&public, fresh.path())).resolve(&path), &path, "carries no signature");
}

#[test]
fn non_wasm_layers_are_refused() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("layer.tar.gz"), b"not a component").unwrap();
    std::fs::write(work.path().join("fake.wasm"), b"hello, I am text pretending to be wasm").unwrap();
    let push = |tag: &str, file: &str| {
        let out = Command::new(oras())
            .current_dir(work.path())
            .args(["push", "--plain-http"])
            .arg(format!("{}/plugins/bad:{tag}", registry.addr))
            .arg(file)
            .output()
            .expect("oras push");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    push("tar", "layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip");
    push("text", "fake.wasm:application/wasm");

    let resolver = resolver(policy(store.path()));
    let tar = registry.reference("plugins/bad:tar");
    let error = expect_error(resolver.resolve(&tar), &tar, "not a wasm component artifact");
    assert!(error.to_string().contains("tar+gzip"), "{error}");
    let text = registry.reference("plugins/bad:text");
    expect_error(resolver.resolve(&text), &text, "not a WebAssembly component");
    assert!(files_under(&store.path().join("blobs")).is_empty(), "{:?}", files_under(store.path()));
    assert!(files_under(&store.path().join("refs")).is_empty());
    no_partial_files(store.path());

    // Pushing something that is not a component is refused before any upload.
    let target = registry.reference("plugins/bad:push");
    expect_error(resolver.push(&work.path().join("fake.wasm"), &target), &target, "not a WebAssembly component");
}

#[test]
fn registry_down_or_failing_and_bad_references() {
    let store = tempfile::tempdir().unwrap();
    let resolver = resolver(policy(store.path()));

    let down = format!("oci://127.0.0.1:{}/plugins/x:1", closed_port());
    let error = expect_error(resolver.resolve(&down), &down, "is unreachable");
    assert!(matches!(error.kind, ErrorKind::Unreachable { .. }));

    let failing = FailingServer::start();
    let broken = format!("oci://{}/plugins/x:1", failing.addr);
    let error = expect_error(resolver.resolve(&broken), &broken, "500");
    assert!(matches!(error.kind, ErrorKind::Registry { .. }), "{error}");
    no_partial_files(store.path());

    for bad in ["oci://", "oci://host/UPPER:1", "oci://host/x@sha256:1234", "ftp://host/x", "sha256:nothex"] {
        let error = expect_error(resolver.resolve(bad), bad, "cannot parse reference");
        assert!(matches!(error.kind, ErrorKind::Parse(_)));
    }
    let missing = "/nonexistent/plugin.wasm";
    expect_error(resolver.resolve(missing), missing, "no file at");
    let unknown = format!("sha256:{}", "ab".repeat(32));
    expect_error(resolver.resolve(&unknown), &unknown, "not in the local store");
    expect_error(resolver.resolve("redact:never-stored"), "redact:never-stored", "not in the local store");
}

#[test]
fn local_names_work_without_any_registry() {
    let store = tempfile::tempdir().unwrap();
    let resolver = resolver(policy(store.path()));
    let file = component_path("wasmtel_test_identity");
    let pushed = resolver.push(&file, "identity:dev").expect("store locally");
    assert_eq!(pushed.manifest_digest, None);
    let resolved = resolver.resolve("identity:dev").unwrap();
    assert_eq!(resolved.origin, Origin::Store);
    assert_eq!(std::fs::read(&resolved.path).unwrap(), std::fs::read(&file).unwrap());
    let (loaded, _) = load_component(&resolver, &runtime(), "identity", "local://identity:dev").unwrap();
    assert_eq!(loaded.digest, pushed.component_digest);

    // A component corrupted inside the store is caught by the digest check at load.
    let mut bytes = std::fs::read(&resolved.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&resolved.path, bytes).unwrap();
    expect_error(load_component(&resolver, &runtime(), "identity", "identity:dev"), "identity:dev", "digest mismatch");
}

#[test]
fn oras_pulls_what_we_push_and_we_pull_what_oras_pushes() {
    let registry = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = component_path("wasmtel_redact");
    let bytes = std::fs::read(&file).unwrap();
    let resolver = resolver(policy(store.path()));

    // wasmtel → oras
    let ours = registry.reference("interop/ours:1");
    resolver.push(&file, &ours).unwrap();
    let out = Command::new(oras())
        .args(["pull", "--plain-http", "-o"])
        .arg(work.path().join("pulled"))
        .arg(format!("{}/interop/ours:1", registry.addr))
        .output()
        .expect("oras pull");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(work.path().join("pulled/wasmtel_redact.wasm")).unwrap(), bytes);
    let out = Command::new(oras())
        .args(["manifest", "fetch", "--plain-http"])
        .arg(format!("{}/interop/ours:1", registry.addr))
        .output()
        .expect("oras manifest fetch");
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest JSON");
    assert_eq!(manifest["config"]["mediaType"], artifact::WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["layers"][0]["mediaType"], artifact::WASM_LAYER_MEDIA_TYPE);

    // oras → wasmtel, in the CNCF layout written by hand.
    std::fs::copy(&file, work.path().join("component.wasm")).unwrap();
    std::fs::write(work.path().join("config.json"), r#"{"architecture":"wasm","os":"wasip2","layerDigests":[]}"#)
        .unwrap();
    let out = Command::new(oras())
        .current_dir(work.path())
        .args(["push", "--plain-http", "--config", "config.json:application/vnd.wasm.config.v0+json"])
        .arg(format!("{}/interop/theirs:1", registry.addr))
        .arg("component.wasm:application/wasm")
        .output()
        .expect("oras push");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs = registry.reference("interop/theirs:1");
    let resolved = resolver.resolve(&theirs).expect("pull what oras pushed");
    assert_eq!(std::fs::read(&resolved.path).unwrap(), bytes);
    let (loaded, _) = load_component(&resolver, &runtime(), "redact", &theirs).unwrap();
    assert_eq!(loaded.digest, Digest::of(&bytes).to_string());
}

#[test]
fn signing_never_overwrites_a_signature_manifest_it_cannot_read() {
    let registry = TestRegistry::start();
    let store = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let reference = registry.reference("plugins/odd-sig:1");
    let publisher = resolver(policy(store.path()));
    let pushed = publisher.push(&component_path("wasmtel_redact"), &reference).unwrap();
    let manifest = Digest::parse(pushed.manifest_digest.as_deref().unwrap()).unwrap();
    // The signature tag already holds something valid to the registry but not
    // an image manifest (an index): its layers cannot be carried over.
    let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    std::fs::write(work.path().join("index.json"), index).unwrap();
    let signature_tag = format!("{}/plugins/odd-sig:sha256-{}.sig", registry.addr, manifest.hex());
    let out = Command::new(oras())
        .current_dir(work.path())
        .args(["manifest", "push", "--plain-http", "--media-type", "application/vnd.oci.image.index.v1+json"])
        .arg(&signature_tag)
        .arg("index.json")
        .output()
        .expect("oras manifest push");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (key, _) = write_key_files(work.path(), "cosign");
    let error = expect_error(publisher.sign(&reference, &key), &reference, "refusing to overwrite");
    assert!(error.to_string().contains("not an OCI image manifest"), "{error}");
    let out = Command::new(oras())
        .args(["manifest", "fetch", "--plain-http"])
        .arg(&signature_tag)
        .output()
        .expect("oras manifest fetch");
    let kept: serde_json::Value = serde_json::from_slice(&out.stdout).expect("manifest JSON");
    assert_eq!(kept["mediaType"], "application/vnd.oci.image.index.v1+json", "left as it was");
}
