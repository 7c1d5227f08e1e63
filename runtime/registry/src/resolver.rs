//! Turning a reference into component bytes the runtime can load, under a
//! [`Policy`]: pins, lock file, signatures, offline use of the local store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtel_runtime::{ComponentSource, Plugin, PluginConfig, Runtime};

use crate::artifact::{self, ArtifactError, ImageManifest, OCI_MANIFEST_MEDIA_TYPE, WasmConfig};
use crate::lock::{self, LockEntry, LockFile};
use crate::reference::{Digest, OciRef, Reference};
use crate::remote::Remote;
use crate::sign::{self, PublicKey, SigningKey};
use crate::store::{Store, StoreEntry, TagName, TagRecord, now_rfc3339};
use crate::{ErrorKind, Manifest, NoProgress, Progress, RegistryError};

/// What a deployment trusts and where it keeps things. Deserializable from the
/// `registry:` section of a config (unknown keys are errors).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Local store directory; default `$WASMTEL_HOME/store`.
    pub store: Option<PathBuf>,
    /// Refuse components without a valid cosign signature by one of `trusted_keys`.
    pub require_signature: bool,
    /// PEM public keys (`cosign.pub`): file paths or the PEM text itself.
    pub trusted_keys: Vec<String>,
    /// `wasmtel.lock`: tags listed there must still resolve to the locked digest.
    pub lock_file: Option<PathBuf>,
    /// Whether resolving may write the lock file.
    pub lock_update: LockUpdate,
    /// Never contact a registry: resolve from the local store only.
    pub offline: bool,
    /// Registries (`host` or `host:port`) reached over plain HTTP; loopback always is.
    pub insecure_registries: Vec<String>,
    /// Connect and read timeout for registry requests.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            store: None,
            require_signature: false,
            trusted_keys: Vec::new(),
            lock_file: None,
            lock_update: LockUpdate::Never,
            offline: false,
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Policy {
    /// Parses a policy from JSON (the Go bridge passes its config this way);
    /// errors name the offending key.
    pub fn from_json(json: &str) -> Result<Policy, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The local store directory: `store`, or `$WASMTEL_HOME/store` when unset.
    pub fn store_dir(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(Store::default_root)
    }
}

/// Whether resolving may write the lock file (`lock_update` in the policy, lowercase).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockUpdate {
    /// Read and enforce the lock; never write it (deployments).
    #[default]
    Never,
    /// Add tags the lock does not list yet; enforce the others (`wasmtel pull --lock`).
    Missing,
    /// Re-resolve locked tags and record what they point at now (`--update`).
    Always,
}

/// Where resolved bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A file the user named.
    Path,
    /// The local store, without contacting a registry for the bytes.
    Store,
    /// Downloaded now (and kept in the store).
    Registry,
}

/// A resolved reference: a file holding the component, and what is known about it.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    /// The reference as given.
    pub reference: String,
    /// The component file (a store blob, or the user's path).
    pub path: PathBuf,
    /// `sha256:` of the component bytes; `None` for plain paths (the runtime computes it on load).
    pub digest: Option<String>,
    /// The OCI manifest digest (what tags, locks and signatures refer to).
    pub manifest_digest: Option<String>,
    /// The plugin manifest, from OCI annotations (without reading the component).
    pub plugin: Option<Manifest>,
    /// Where the bytes came from.
    pub origin: Origin,
    /// Labels of the trusted keys whose signatures verified.
    pub signed_by: Vec<String>,
}

impl Resolved {
    /// The component file as a source to load, not re-checked against `digest`
    /// (see [`Resolver::verified_source`]).
    pub fn source(&self) -> ComponentSource {
        ComponentSource::Path(self.path.clone())
    }
}

/// What `push` published.
#[derive(Clone, Debug, Serialize)]
pub struct Pushed {
    /// The pinned reference (`oci://host/repo:tag@sha256:…`, or `name:tag` for the local store).
    pub reference: String,
    /// The OCI manifest digest; `None` for a push to the local store.
    pub manifest_digest: Option<String>,
    /// `sha256:` of the component bytes.
    pub component_digest: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// The plugin manifest read from the component, if it has one.
    pub plugin: Option<Manifest>,
}

/// What `inspect` learns from a registry without downloading the component.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteInspection {
    /// The reference pinned to the manifest digest (`oci://host/repo:tag@sha256:…`).
    pub reference: String,
    /// The manifest digest.
    pub manifest_digest: String,
    /// The config blob's media type (a wasm artifact's is `application/vnd.wasm.config.v0+json`).
    pub config_media_type: String,
    /// The wasm config, when the config blob is one and parses.
    pub config: Option<WasmConfig>,
    /// Digest of the component layer.
    pub layer_digest: String,
    /// Size of the component layer in bytes, as the manifest states it.
    pub layer_size: u64,
    /// The plugin manifest from the manifest's annotations; `None` for components built without the SDK.
    pub plugin: Option<Manifest>,
    /// All manifest annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The signatures that verified for a manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    /// The manifest that was signed or verified.
    pub manifest_digest: String,
    /// The cosign signature manifest's reference (`oci://host/repo:sha256-<hex>.sig`).
    pub signature_tag: String,
    /// Labels of the trusted keys whose signatures verified; after `sign`, the signing key's fingerprint.
    pub signed_by: Vec<String>,
}

/// Resolves, pushes, signs and verifies references. Holds the store, the
/// parsed trusted keys and a small async runtime for `oci-client`; cheap to
/// reuse for many references, and usable from inside another tokio runtime.
pub struct Resolver {
    policy: Policy,
    store: Store,
    keys: Vec<PublicKey>,
    remote: Remote,
    runtime: Option<tokio::runtime::Runtime>,
    progress: Arc<dyn Progress>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // Dropping a runtime inside an async context panics; shutting it down in the background does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

const POLICY: &str = "registry policy";

impl Resolver {
    /// Loads the policy's trusted keys, opens its store and starts the client's
    /// runtime; fails on a key that does not parse, `require_signature` without
    /// keys, or a store that cannot be opened.
    pub fn new(policy: Policy) -> Result<Resolver, RegistryError> {
        let err = |kind| RegistryError::new(POLICY, kind);
        let keys = load_keys(&policy.trusted_keys).map_err(err)?;
        if policy.require_signature && keys.is_empty() {
            return Err(err(ErrorKind::Policy("require_signature is set but trusted_keys is empty".into())));
        }
        let store = Store::open(policy.store_dir()).map_err(err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wasmtel-registry")
            .enable_all()
            .build()
            .map_err(|e| err(ErrorKind::Io(format!("cannot start the registry client runtime: {e}"))))?;
        let remote = Remote::new(policy.insecure_registries.clone(), policy.timeout);
        Ok(Resolver { policy, store, keys, remote, runtime: Some(runtime), progress: Arc::new(NoProgress) })
    }

    /// Reports transfers (e.g. to a progress bar).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The policy this resolver enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The local store it resolves from and downloads into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a future to completion, on a helper thread when called from inside a tokio runtime.
    fn block_on<F: std::future::Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        let Some(runtime) = self.runtime.as_ref() else { unreachable!("the runtime is only taken in Drop") };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| match scope.spawn(|| runtime.block_on(future)).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            runtime.block_on(future)
        }
    }

    /// Resolves a reference to a component file, enforcing the policy.
    pub fn resolve(&self, reference: &str) -> Result<Resolved, RegistryError> {
        let err = |kind| RegistryError::new(reference, kind);
        let parsed = Reference::parse(reference).map_err(|e| err(ErrorKind::Parse(e)))?;
        let mut resolved = match parsed {
            Reference::Path(path) => self.resolve_path(path),
            Reference::Digest(digest) => self.block_on(self.resolve_stored(&digest, None)),
            Reference::Local { name, tag } => self.resolve_local(&name, &tag),
            Reference::Oci(oci) => self.block_on(self.resolve_oci(&oci)),
        }
        .map_err(err)?;
        resolved.reference = reference.to_string();
        Ok(resolved)
    }

    /// Resolves a reference to the bytes to load: store and registry bytes are
    /// read and checked against the resolved digest here, so the runtime gets
    /// exactly what was resolved (a blob corrupted on disk never runs).
    pub fn verified_source(&self, reference: &str) -> Result<(ComponentSource, Resolved), RegistryError> {
        let resolved = self.resolve(reference)?;
        let err = |kind| RegistryError::new(reference, kind);
        let Some(expected) = &resolved.digest else { return Ok((resolved.source(), resolved)) };
        let bytes = wasmtel_runtime::read_component_file(reference, &resolved.path).map_err(|e| err(e.into()))?;
        let actual = Digest::of(&bytes);
        if actual.as_str() != expected {
            return Err(err(ErrorKind::DigestMismatch {
                what: "stored component",
                expected: expected.clone(),
                actual: actual.to_string(),
            }));
        }
        Ok((ComponentSource::Bytes(bytes), resolved))
    }

    /// Resolves and starts a plugin. The bytes are checked against the resolved
    /// digest before any guest code (its `init`) runs.
    pub fn load_plugin(
        &self,
        runtime: &Runtime,
        name: &str,
        reference: &str,
        config: PluginConfig,
    ) -> Result<(Plugin, Resolved), RegistryError> {
        let (source, resolved) = self.verified_source(reference)?;
        let err = |kind| RegistryError::new(reference, kind);
        let plugin = runtime.load_plugin(name, source, config).map_err(|e| err(ErrorKind::Load(e)))?;
        Ok((plugin, resolved))
    }

    fn resolve_path(&self, path: PathBuf) -> Result<Resolved, ErrorKind> {
        if self.policy.require_signature {
            return Err(ErrorKind::Unsigned(
                "a file path carries no signature; publish it with `wasmtel push --sign-key` and use its oci:// reference"
                    .into(),
            ));
        }
        if !path.is_file() {
            return Err(ErrorKind::NotFound(format!("no file at {}", path.display())));
        }
        Ok(Resolved {
            reference: String::new(),
            path,
            digest: None,
            manifest_digest: None,
            plugin: None,
            origin: Origin::Path,
            signed_by: Vec::new(),
        })
    }

    fn resolve_local(&self, name: &str, tag: &str) -> Result<Resolved, ErrorKind> {
        let record = self
            .store
            .tag(&TagName::Local { name, tag })?
            .ok_or(ErrorKind::NotInStore { store: self.store.root().to_path_buf(), offline: self.policy.offline })?;
        match &record.manifest {
            Some(manifest) => {
                let manifest = Digest::parse(manifest).map_err(|e| self.store.error(self.store.root(), e))?;
                self.block_on(self.resolve_stored(&manifest, None))
            }
            None => self.stored_component(&record.component),
        }
    }

    /// A component stored without an OCI manifest: nothing to verify a signature against.
    fn stored_component(&self, digest: &str) -> Result<Resolved, ErrorKind> {
        let digest = Digest::parse(digest).map_err(|e| self.store.error(self.store.root(), e))?;
        if self.policy.require_signature {
            return Err(ErrorKind::Unsigned(format!(
                "{digest} is a bare component in the local store; signatures cover OCI manifests (pull or push it via oci://)"
            )));
        }
        Ok(Resolved {
            reference: String::new(),
            path: self.store.blob_path(&digest),
            digest: Some(digest.to_string()),
            manifest_digest: None,
            plugin: None,
            origin: Origin::Store,
            signed_by: Vec::new(),
        })
    }

    /// A manifest (or bare component) digest already in the store. `oci` says
    /// where to fetch signatures if none are cached and the registry is reachable.
    async fn resolve_stored(&self, digest: &Digest, oci: Option<&OciRef>) -> Result<Resolved, ErrorKind> {
        let not_in_store =
            || ErrorKind::NotInStore { store: self.store.root().to_path_buf(), offline: self.policy.offline };
        let path = self.store.blob_path(digest);
        let mut head = [0u8; 8];
        {
            use std::io::Read;
            let mut file = std::fs::File::open(&path).map_err(|_| not_in_store())?;
            file.read_exact(&mut head).map_err(|e| self.store.error(&path, e))?;
        }
        if head.starts_with(b"\0asm") {
            return self.stored_component(digest.as_str());
        }
        let bytes = self.store.read_blob(digest)?;
        let (manifest, layer) = artifact::parse_wasm_manifest(&bytes).map_err(ErrorKind::NotWasm)?;
        let component =
            Digest::parse(&layer.digest).map_err(|source| ArtifactError::Digest { what: "layer", source })?;
        if !self.store.has_blob(&component) {
            return Err(not_in_store());
        }
        let signed_by =
            if self.policy.require_signature { self.verify_signatures(digest, oci).await? } else { Vec::new() };
        Ok(Resolved {
            reference: String::new(),
            path: self.store.blob_path(&component),
            digest: Some(component.to_string()),
            manifest_digest: Some(digest.to_string()),
            plugin: artifact::plugin_manifest(&manifest),
            origin: Origin::Store,
            signed_by,
        })
    }

    async fn resolve_oci(&self, oci: &OciRef) -> Result<Resolved, ErrorKind> {
        let policy = &self.policy;
        let lock_key = if oci.digest.is_none() { oci.tag_key() } else { None };
        let lock = match (&policy.lock_file, &lock_key) {
            (Some(path), Some(_)) => Some((path, LockFile::load(path)?)),
            _ => None,
        };
        let locked = match (&lock, &lock_key) {
            (Some((_, lock)), Some(key)) if policy.lock_update != LockUpdate::Always => lock.manifest(key),
            _ => None,
        };

        // A locked tag must still point where it did; an unreachable registry
        // does not fail the check when the locked bytes are already here.
        if let (Some(locked), Some((lock_path, _))) = (&locked, &lock)
            && !policy.offline
        {
            match self.remote.head(oci).await {
                Ok(current) if &current != locked => {
                    return Err(ErrorKind::TagMoved {
                        lock: lock_path.to_path_buf(),
                        locked: locked.to_string(),
                        current: current.to_string(),
                    });
                }
                Ok(_) => {}
                Err(error) if self.store.has_blob(locked) => {
                    tracing::warn!(reference = %oci, "cannot check the locked tag ({error}); using the locked digest from the local store");
                }
                Err(ErrorKind::NotFound(_)) => {} // Tag deleted: the pinned digest may still exist.
                Err(error) => return Err(error),
            }
        }

        let pinned = oci.digest.clone().or(locked);
        if let Some(digest) = &pinned
            && self.store.has_blob(digest)
        {
            match self.resolve_stored(digest, Some(&oci.pinned(digest))).await {
                // Manifest kept but component missing: fetch it below.
                Err(ErrorKind::NotInStore { .. }) if !policy.offline => {}
                other => return other,
            }
        }
        if policy.offline {
            let record = match &pinned {
                None => self.store.tag(&TagName::Oci(oci))?,
                Some(_) => None,
            };
            let manifest = record.and_then(|r| r.manifest).and_then(|m| Digest::parse(&m).ok());
            return match manifest {
                Some(manifest) => self.resolve_stored(&manifest, None).await,
                None => Err(ErrorKind::NotInStore { store: self.store.root().to_path_buf(), offline: true }),
            };
        }

        let target = match &pinned {
            Some(digest) => oci.pinned(digest),
            None => oci.clone(),
        };
        let (manifest_bytes, manifest_digest) = self.remote.manifest(&target).await?;
        let (manifest, layer) = artifact::parse_wasm_manifest(&manifest_bytes).map_err(ErrorKind::NotWasm)?;
        let pinned_ref = oci.pinned(&manifest_digest);
        // Signatures are checked before the component is downloaded.
        let signed_by = if policy.require_signature {
            self.verify_signatures(&manifest_digest, Some(&pinned_ref)).await?
        } else {
            Vec::new()
        };
        let component =
            Digest::parse(&layer.digest).map_err(|source| ArtifactError::Digest { what: "layer", source })?;
        let (path, origin) = if self.store.has_blob(&component) {
            (self.store.blob_path(&component), Origin::Store)
        } else {
            let path = self.remote.blob_to_store(&pinned_ref, &layer, &self.store, &*self.progress).await?;
            (path, Origin::Registry)
        };
        if let Err(why) = check_file_header(&path) {
            // Verified bytes, but not a component: nothing may refer to them.
            let _ = std::fs::remove_file(&path);
            return Err(ArtifactError::Layer { digest: component, source: Box::new(why) }.into());
        }
        self.store.put_blob(&manifest_bytes, Some(&manifest_digest))?;
        if let Ok(config) = self.remote.small_blob(&pinned_ref, &manifest.config).await {
            self.store.put_blob(&config, None)?;
        }
        let record = TagRecord {
            manifest: Some(manifest_digest.to_string()),
            component: component.to_string(),
            size: layer.size,
            updated: now_rfc3339(),
        };
        if oci.digest.is_none() {
            self.store.set_tag(&TagName::Oci(oci), &record)?;
        }
        if let (Some((lock_path, lock)), Some(key)) = (&lock, lock_key) {
            let write = match policy.lock_update {
                LockUpdate::Never => false,
                LockUpdate::Missing => !lock.components.contains_key(&key),
                LockUpdate::Always => true,
            };
            if write {
                let entry = LockEntry { manifest: manifest_digest.to_string(), component: component.to_string() };
                lock::update(lock_path, key, entry)?;
            }
        }
        Ok(Resolved {
            reference: String::new(),
            path,
            digest: Some(component.to_string()),
            manifest_digest: Some(manifest_digest.to_string()),
            plugin: artifact::plugin_manifest(&manifest),
            origin,
            signed_by,
        })
    }

    /// Signatures cached in the store first (works offline), then the registry.
    async fn verify_signatures(&self, manifest: &Digest, oci: Option<&OciRef>) -> Result<Vec<String>, ErrorKind> {
        let cached = self.cached_signatures(manifest);
        if let Some(Ok(signed_by)) = &cached {
            return Ok(signed_by.clone());
        }
        match oci {
            Some(oci) if !self.policy.offline => self.fetch_signatures(oci, manifest).await,
            _ => Err(match cached {
                Some(Err(error)) => error,
                _ => ErrorKind::Unsigned(format!("no signature for {manifest} is cached in the local store")),
            }),
        }
    }

    fn cached_signatures(&self, manifest: &Digest) -> Option<Result<Vec<String>, ErrorKind>> {
        let signature_manifest = self.store.signature(manifest)?;
        let bytes = self.store.read_blob(&signature_manifest).ok()?;
        let parsed: ImageManifest = serde_json::from_slice(&bytes).ok()?;
        let mut signatures = Vec::new();
        for layer in parsed.layers.iter().filter(|l| l.media_type == sign::SIMPLESIGNING_MEDIA_TYPE) {
            let payload = self.store.read_blob(&Digest::parse(&layer.digest).ok()?).ok()?;
            signatures.push((signature_of(layer), payload));
        }
        Some(self.check_signatures(manifest, &sign::signature_tag(manifest), &signatures))
    }

    /// Fetches the cosign signature manifest, verifies it, and caches it in the store.
    async fn fetch_signatures(&self, oci: &OciRef, manifest: &Digest) -> Result<Vec<String>, ErrorKind> {
        let tag = sign::signature_tag(manifest);
        let signature_ref = oci.with_tag(&tag);
        let Some((bytes, signature_digest)) = self.remote.manifest_if_exists(&signature_ref).await? else {
            return Err(ErrorKind::Unsigned(format!("no cosign signature found at {signature_ref}")));
        };
        let parsed: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| ErrorKind::BadSignature(format!("{signature_ref} is not an OCI manifest: {e}")))?;
        let mut signatures = Vec::new();
        for layer in parsed.layers.iter().filter(|l| l.media_type == sign::SIMPLESIGNING_MEDIA_TYPE) {
            let payload = self.remote.small_blob(oci, layer).await?;
            signatures.push((signature_of(layer), payload));
        }
        let signed_by = self.check_signatures(manifest, &signature_ref.to_string(), &signatures)?;
        for (_, payload) in &signatures {
            self.store.put_blob(payload, None)?;
        }
        self.store.put_blob(&bytes, Some(&signature_digest))?;
        self.store.set_signature(manifest, &signature_digest)?;
        Ok(signed_by)
    }

    fn check_signatures(
        &self,
        manifest: &Digest,
        location: &str,
        signatures: &[(Option<String>, Vec<u8>)],
    ) -> Result<Vec<String>, ErrorKind> {
        if signatures.is_empty() {
            return Err(ErrorKind::Unsigned(format!("{location} holds no cosign signatures")));
        }
        let mut signed_by = Vec::new();
        let mut problems = Vec::new();
        for (signature, payload) in signatures {
            let Some(signature) = signature else { continue };
            for key in &self.keys {
                if key.verify(payload, signature) {
                    match sign::check_payload(payload, manifest) {
                        Ok(()) if !signed_by.contains(&key.label) => signed_by.push(key.label.clone()),
                        Ok(()) => {}
                        Err(problem) => problems.push(problem.to_string()),
                    }
                }
            }
        }
        if signed_by.is_empty() {
            let keys: Vec<&str> = self.keys.iter().map(|k| k.label.as_str()).collect();
            let mut detail = format!(
                "{} signature(s) at {location}, none by a trusted key ({})",
                signatures.len(),
                if keys.is_empty() { "no trusted_keys configured".to_string() } else { keys.join(", ") }
            );
            if !problems.is_empty() {
                detail.push_str(&format!("; {}", problems.join("; ")));
            }
            return Err(ErrorKind::BadSignature(detail));
        }
        Ok(signed_by)
    }

    /// Publishes a component file under an `oci://` reference (and keeps it in
    /// the local store), or names it in the local store only (`name:tag`).
    pub fn push(&self, file: &Path, target: &str) -> Result<Pushed, RegistryError> {
        let err = |kind| RegistryError::new(target, kind);
        let bytes = wasmtel_runtime::read_component_file(target, file).map_err(|e| err(e.into()))?;
        match Reference::parse(target).map_err(|e| err(ErrorKind::Parse(e)))? {
            Reference::Oci(oci) if oci.digest.is_some() => {
                Err(err(ErrorKind::WrongKind("push needs a tag to publish under, not a digest")))
            }
            Reference::Oci(oci) => {
                let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                self.block_on(self.push_oci(bytes, file_name.as_deref(), &oci)).map_err(err)
            }
            Reference::Local { name, tag } => self.push_local(&bytes, &name, &tag).map_err(err),
            _ => Err(err(ErrorKind::WrongKind("push needs `oci://host/repo:tag` or a local `name:tag`"))),
        }
    }

    fn push_local(&self, bytes: &[u8], name: &str, tag: &str) -> Result<Pushed, ErrorKind> {
        let info = artifact::describe(bytes).map_err(ErrorKind::NotWasm)?;
        let digest = self.store.put_blob(bytes, None)?;
        let record = TagRecord {
            manifest: None,
            component: digest.to_string(),
            size: bytes.len() as u64,
            updated: now_rfc3339(),
        };
        self.store.set_tag(&TagName::Local { name, tag }, &record)?;
        Ok(Pushed {
            reference: format!("{name}:{tag}"),
            manifest_digest: None,
            component_digest: digest.to_string(),
            size: bytes.len() as u64,
            plugin: info.manifest,
        })
    }

    async fn push_oci(&self, bytes: Vec<u8>, file_name: Option<&str>, oci: &OciRef) -> Result<Pushed, ErrorKind> {
        let artifact = artifact::build(&bytes, file_name).map_err(ErrorKind::NotWasm)?;
        let layer = bytes::Bytes::from(bytes);
        self.remote.push_blob(oci, layer.clone(), &artifact.layer_digest, Some(self.progress.clone())).await?;
        self.remote.push_blob(oci, artifact.config.clone().into(), &artifact.config_digest, None).await?;
        self.remote.push_manifest(oci, artifact.manifest.clone(), OCI_MANIFEST_MEDIA_TYPE).await?;
        // Keep what was published, so it runs from the store with the registry down.
        self.store.put_blob(&layer, Some(&artifact.layer_digest))?;
        self.store.put_blob(&artifact.config, Some(&artifact.config_digest))?;
        self.store.put_blob(&artifact.manifest, Some(&artifact.manifest_digest))?;
        let record = TagRecord {
            manifest: Some(artifact.manifest_digest.to_string()),
            component: artifact.layer_digest.to_string(),
            size: artifact.layer_size,
            updated: now_rfc3339(),
        };
        self.store.set_tag(&TagName::Oci(oci), &record)?;
        Ok(Pushed {
            reference: oci.pinned(&artifact.manifest_digest).to_string(),
            manifest_digest: Some(artifact.manifest_digest.to_string()),
            component_digest: artifact.layer_digest.to_string(),
            size: artifact.layer_size,
            plugin: artifact.plugin,
        })
    }

    /// Signs the manifest an `oci://` reference points at, adding a layer to
    /// its cosign signature manifest (`sha256-<hex>.sig`).
    pub fn sign(&self, reference: &str, key: &SigningKey) -> Result<Verified, RegistryError> {
        let err = |kind| RegistryError::new(reference, kind);
        let oci = oci_only(reference).map_err(err)?;
        self.block_on(self.sign_oci(&oci, key)).map_err(err)
    }

    async fn sign_oci(&self, oci: &OciRef, key: &SigningKey) -> Result<Verified, ErrorKind> {
        let manifest = match &oci.digest {
            Some(digest) => digest.clone(),
            None => self.remote.head(oci).await?,
        };
        let payload = sign::payload(&format!("{}/{}", oci.registry, oci.repository), &manifest);
        let signature = key.sign(&payload);
        let payload_digest = Digest::of(&payload);
        let tag = sign::signature_tag(&manifest);
        let signature_ref = oci.with_tag(&tag);

        let mut layers = match self.remote.manifest_if_exists(&signature_ref).await? {
            // Rewriting a manifest we cannot read would drop other keys' signatures.
            Some((bytes, _)) => {
                serde_json::from_slice::<ImageManifest>(&bytes).map(|m| m.layers).map_err(|e| ErrorKind::Registry {
                    registry: oci.registry.clone(),
                    detail: format!(
                        "the existing signature manifest {signature_ref} is not an OCI image manifest ({e}); \
                         refusing to overwrite the signatures it may hold"
                    ),
                })?
            }
            None => Vec::new(),
        };
        // Deterministic (RFC 6979) signatures make re-signing idempotent.
        let exists = layers
            .iter()
            .any(|l| l.digest == payload_digest.as_str() && signature_of(l).as_deref() == Some(&signature));
        if !exists {
            layers.push(artifact::Descriptor {
                media_type: sign::SIMPLESIGNING_MEDIA_TYPE.to_string(),
                digest: payload_digest.to_string(),
                size: payload.len() as u64,
                annotations: Some([(sign::SIGNATURE_ANNOTATION.to_string(), signature.clone())].into()),
            });
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        let config = sign::signature_config(&diff_ids);
        let config_digest = Digest::of(&config);
        let signature_manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST_MEDIA_TYPE.to_string()),
            artifact_type: None,
            config: artifact::Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".to_string(),
                digest: config_digest.to_string(),
                size: config.len() as u64,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        let manifest_bytes = serde_json::to_vec(&signature_manifest).map_err(|e| ErrorKind::Io(e.to_string()))?;
        self.remote.push_blob(oci, payload.clone().into(), &payload_digest, None).await?;
        self.remote.push_blob(oci, config.into(), &config_digest, None).await?;
        self.remote.push_manifest(&signature_ref, manifest_bytes.clone(), OCI_MANIFEST_MEDIA_TYPE).await?;
        let signature_digest = self.store.put_blob(&manifest_bytes, None)?;
        self.store.put_blob(&payload, Some(&payload_digest))?;
        self.store.set_signature(&manifest, &signature_digest)?;
        Ok(Verified {
            manifest_digest: manifest.to_string(),
            signature_tag: signature_ref.to_string(),
            signed_by: vec![key.public_key().fingerprint()],
        })
    }

    /// Verifies the signatures of what a reference points at against the trusted keys.
    pub fn verify(&self, reference: &str) -> Result<Verified, RegistryError> {
        let err = |kind| RegistryError::new(reference, kind);
        if self.keys.is_empty() {
            return Err(err(ErrorKind::Policy("no trusted keys to verify with (--key or trusted_keys)".into())));
        }
        let oci = oci_only(reference).map_err(err)?;
        self.block_on(async {
            let manifest = match &oci.digest {
                Some(digest) => digest.clone(),
                None if self.policy.offline => self
                    .store
                    .tag(&TagName::Oci(&oci))?
                    .and_then(|r| r.manifest)
                    .and_then(|m| Digest::parse(&m).ok())
                    .ok_or(ErrorKind::NotInStore { store: self.store.root().to_path_buf(), offline: true })?,
                None => self.remote.head(&oci).await?,
            };
            let signed_by = if self.policy.offline {
                self.verify_signatures(&manifest, None).await?
            } else {
                self.fetch_signatures(&oci.pinned(&manifest), &manifest).await?
            };
            Ok(Verified {
                manifest_digest: manifest.to_string(),
                signature_tag: oci.with_tag(&sign::signature_tag(&manifest)).to_string(),
                signed_by,
            })
        })
        .map_err(err)
    }

    /// Describes an `oci://` artifact from its manifest and config only (no layer download).
    pub fn inspect_remote(&self, reference: &str) -> Result<RemoteInspection, RegistryError> {
        let err = |kind| RegistryError::new(reference, kind);
        let oci = oci_only(reference).map_err(err)?;
        self.block_on(async {
            let (bytes, digest) = match &oci.digest {
                Some(digest) if self.store.has_blob(digest) => (self.store.read_blob(digest)?, digest.clone()),
                _ if self.policy.offline => {
                    return Err(ErrorKind::NotInStore { store: self.store.root().to_path_buf(), offline: true });
                }
                _ => self.remote.manifest(&oci).await?,
            };
            let (manifest, layer) = artifact::parse_wasm_manifest(&bytes).map_err(ErrorKind::NotWasm)?;
            let config_digest = Digest::parse(&manifest.config.digest)
                .map_err(|source| ArtifactError::Digest { what: "config", source })?;
            let config_bytes = match self.store.read_blob(&config_digest) {
                Ok(bytes) => bytes,
                Err(_) => self.remote.small_blob(&oci.pinned(&digest), &manifest.config).await?,
            };
            let config = (manifest.config.media_type == artifact::WASM_CONFIG_MEDIA_TYPE)
                .then(|| serde_json::from_slice(&config_bytes).ok())
                .flatten();
            Ok(RemoteInspection {
                reference: oci.pinned(&digest).to_string(),
                manifest_digest: digest.to_string(),
                config_media_type: manifest.config.media_type.clone(),
                config,
                layer_digest: layer.digest.clone(),
                layer_size: layer.size,
                plugin: artifact::plugin_manifest(&manifest),
                annotations: manifest.annotations.clone().unwrap_or_default(),
            })
        })
        .map_err(err)
    }

    /// The named entries of the local store.
    pub fn list(&self) -> Result<Vec<StoreEntry>, RegistryError> {
        self.store.list().map_err(|kind| RegistryError::new(self.store.root().display().to_string(), kind))
    }
}

fn oci_only(reference: &str) -> Result<OciRef, ErrorKind> {
    match Reference::parse(reference).map_err(ErrorKind::Parse)? {
        Reference::Oci(oci) => Ok(oci),
        _ => Err(ErrorKind::WrongKind("this command needs an oci:// reference")),
    }
}

fn signature_of(layer: &artifact::Descriptor) -> Option<String> {
    layer.annotations.as_ref()?.get(sign::SIGNATURE_ANNOTATION).cloned()
}

fn check_file_header(path: &Path) -> Result<(), ArtifactError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .map_err(|source| ArtifactError::Read { path: path.to_path_buf(), source })?;
    Ok(wasmtel_component::check_header(&head)?)
}

/// Parses trusted keys: PEM text inline, or a path to a PEM file.
pub fn load_keys(keys: &[String]) -> Result<Vec<PublicKey>, ErrorKind> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let (pem, label) = if key.trim_start().starts_with("-----BEGIN") {
                (key.clone(), format!("trusted_keys[{i}]"))
            } else {
                let pem = std::fs::read_to_string(key)
                    .map_err(|e| ErrorKind::Key { key: key.clone(), detail: format!("cannot read: {e}") })?;
                (pem, key.clone())
            };
            PublicKey::from_pem(&pem, label.clone()).map_err(|e| ErrorKind::Key { key: label, detail: e.to_string() })
        })
        .collect()
}
