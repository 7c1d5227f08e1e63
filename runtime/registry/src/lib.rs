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
pub use reference::{Digest, OciRef, Reference};
pub use resolver::{LockUpdate, Origin, Policy, Pushed, RemoteInspection, Resolved, Resolver, Verified, load_keys};
pub use sign::{PublicKey, SigningKey};
pub use store::{Store, StoreEntry};
pub use wasmtel_runtime::Manifest;

/// Resolves one reference under a policy (see [`Resolver::resolve`]); build a
/// [`Resolver`] instead to resolve many.
pub fn resolve(reference: &str, policy: &Policy) -> Result<Resolved, RegistryError> {
    Resolver::new(policy.clone())?.resolve(reference)
}

/// Receives transfer progress; the CLI draws a bar, libraries ignore it.
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (when known) starts.
    fn begin(&self, _label: &str, _total: Option<u64>) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}
