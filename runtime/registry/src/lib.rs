//! wasmtel registry: publish, pin, sign and pull processor components as OCI
//! artifacts, with a local content-addressed store as the embedded default.
//!
//! ```no_run
//! use wasmtel_registry::{Policy, Resolver};
//! use wasmtel_runtime::{PluginConfig, Runtime};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let resolver = Resolver::new(Policy { lock_file: Some("wasmtel.lock".into()), ..Policy::default() })?;
//! let runtime = Runtime::new(Default::default())?;
//! let (plugin, resolved) = resolver.load_plugin(
//!     &runtime,
//!     "redact",
//!     "oci://registry.example/plugins/redact:1.2.0",
//!     PluginConfig::default(),
//! )?;
//! println!("{} from {:?}", resolved.digest.unwrap_or_default(), resolved.origin);
//! # Ok(()) }
//! ```

pub mod artifact;
mod error;
pub mod lock;
pub mod reference;
mod remote;
mod resolver;
pub mod sign;
pub mod store;

pub use error::{ErrorKind, RegistryError};
pub use lock::{LockEntry, LockFile};
pub use reference::{Digest, OciRef, Reference, ReferenceError};
pub use resolver::{LockUpdate, Origin, Policy, Pushed, RemoteInspection, Resolved, Resolver, Verified, load_keys};
pub use sign::{PublicKey, SigningKey};
use std::sync::Arc;
pub use store::{Store, StoreEntry};
pub use wasmtel_runtime::Manifest;

use wasmtel_runtime::{ComponentSource, Plugin, PluginConfig, Runtime};

/// The bytes any reference stands for under `policy`. A plain path the policy
/// asks nothing of is handed over as a path (no store, no registry client, the
/// runtime's own errors); anything else goes through a [`Resolver`], which
/// pins, verifies and checks the digest (see [`Resolver::verified_source`]).
pub fn component_source(
    reference: &str,
    policy: &Policy,
    progress: Arc<dyn Progress>,
) -> Result<ComponentSource, RegistryError> {
    let parsed = Reference::parse(reference).map_err(|e| RegistryError::new(reference, ErrorKind::Parse(e)))?;
    if let Reference::Path(path) = parsed
        && !policy.require_signature
    {
        return Ok(ComponentSource::Path(path));
    }
    let (source, _) = Resolver::new(policy.clone())?.with_progress(progress).verified_source(reference)?;
    Ok(source)
}

/// Loads a plugin from any reference under `policy` ([`component_source`],
/// then the runtime). The Go bridge and the dataflow node load this way.
pub fn load_plugin(
    runtime: &Runtime,
    name: &str,
    reference: &str,
    config: PluginConfig,
    policy: &Policy,
) -> Result<Plugin, RegistryError> {
    let source = component_source(reference, policy, Arc::new(NoProgress))?;
    runtime.load_plugin(name, source, config).map_err(|e| RegistryError::new(reference, ErrorKind::Load(e)))
}

/// A plugin name for logs and metrics: the last repository or store-name
/// segment, the file stem, or a short digest; the text itself if it does not parse.
pub fn plugin_name(reference: &str) -> String {
    match Reference::parse(reference) {
        Ok(Reference::Oci(oci)) => oci.repository.rsplit('/').next().unwrap_or(&oci.repository).to_string(),
        Ok(Reference::Local { name, .. }) => name.rsplit('/').next().unwrap_or(&name).to_string(),
        Ok(Reference::Digest(digest)) => format!("sha256-{}", &digest.hex()[..12]),
        Ok(Reference::Path(path)) => {
            path.file_stem().map_or_else(|| path.display().to_string(), |stem| stem.to_string_lossy().into_owned())
        }
        Err(_) => reference.to_string(),
    }
}

/// Resolves one reference under a policy (see [`Resolver::resolve`]); build a
/// [`Resolver`] instead to resolve many.
pub fn resolve(reference: &str, policy: &Policy) -> Result<Resolved, RegistryError> {
    Resolver::new(policy.clone())?.resolve(reference)
}

/// Receives transfer progress; the CLI draws a bar, libraries ignore it.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (when known) starts.
    fn begin(&self, _label: &str, _total: Option<u64>) {}
    /// `bytes` more bytes of the current transfer arrived.
    fn advance(&self, _bytes: u64) {}
    /// The current transfer finished (or failed).
    fn end(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}
