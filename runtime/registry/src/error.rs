//! Typed errors: every failure names the reference it was about and the cause,
//! and callers (CLI exit codes, the Go bridge) match on [`ErrorKind`].

use std::path::PathBuf;

use crate::artifact::ArtifactError;
use crate::reference::{Reference, ReferenceError};

/// A reference could not be resolved, pushed, signed or verified.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: {kind}")]
pub struct RegistryError {
    /// The reference as the user wrote it.
    pub reference: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl RegistryError {
    /// An error about `reference` (as the user wrote it).
    pub fn new(reference: impl Into<String>, kind: ErrorKind) -> Self {
        RegistryError { reference: reference.into(), kind }
    }

    /// Failures of trust (digest, tag, signature) rather than of reachability or input.
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::DigestMismatch { .. }
                | ErrorKind::TagMoved { .. }
                | ErrorKind::Unsigned { .. }
                | ErrorKind::BadSignature { .. }
        )
    }

    /// The message for whoever loaded `reference` as plugin `name`, in one
    /// form for every edge: a component the runtime refused names itself
    /// (and a file its path), so the reference is added only when it says
    /// more (a registry or store reference); other failures name the plugin.
    pub fn report(&self, name: &str) -> String {
        match &self.kind {
            ErrorKind::Load(load) if matches!(Reference::parse(&self.reference), Ok(Reference::Path(_))) => {
                load.to_string()
            }
            ErrorKind::Load(_) => self.to_string(),
            _ => format!("component {name}: {self}"),
        }
    }

    /// Whether trying again later may succeed (the registry was down or failed).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Unreachable { .. } | ErrorKind::Registry { .. })
    }
}

/// The cause of a [`RegistryError`]; callers match on it (exit codes, retries).
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The reference is malformed.
    #[error("cannot parse reference: {0}")]
    Parse(#[from] ReferenceError),
    /// The reference is not the kind the operation needs (e.g. push to a
    /// digest, an `oci://` command given a path); says which it needs.
    #[error("{0}")]
    WrongKind(&'static str),
    /// The registry could not be reached (connection refused, timeout); transient.
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The client's error with its causes.
        detail: String,
    },
    /// The registry answered with an error other than "not found"; transient.
    #[error("registry {registry} failed: {detail}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What it answered (HTTP status and message) or the client's error.
        detail: String,
    },
    /// The registry has no such manifest, tag or blob, or a path names no file.
    #[error("not found: {0}")]
    NotFound(String),
    /// Bytes do not hash to the digest they were fetched or stored under.
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which bytes (`manifest`, `content`, `blob`, `stored blob`, `stored component`).
        what: &'static str,
        /// The digest (and size) they should have.
        expected: String,
        /// What they hash to (or how large they turned out).
        actual: String,
    },
    /// The tag now points at another manifest than the lock file pins.
    #[error(
        "tag moved since {lock} was written: locked {locked}, the registry now serves {current}; \
         run `wasmtel pull --lock {lock} --update <ref>` to accept the new digest"
    )]
    TagMoved {
        /// The lock file.
        lock: PathBuf,
        /// The manifest digest the lock file pins.
        locked: String,
        /// The manifest digest the registry serves now.
        current: String,
    },
    /// The artifact or file is not a wasm component artifact: no single
    /// `application/wasm` layer, a malformed manifest or digest, or bytes that
    /// are not a component.
    #[error("not a wasm component artifact: {0}")]
    NotWasm(#[from] ArtifactError),
    /// A signature is required (`require_signature`) but there is none, or
    /// the source cannot carry one (a file path, a bare stored component).
    #[error("signature required but {0}")]
    Unsigned(String),
    /// A signature exists but is malformed or made by no trusted key.
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    /// The reference is not in the local store and was not (or, offline,
    /// could not be) fetched.
    #[error("not in the local store {store}{hint}", hint = if *.offline { " (offline)" } else { "" })]
    NotInStore {
        /// The store's root directory.
        store: PathBuf,
        /// Whether the policy forbade the network (`offline`).
        offline: bool,
    },
    /// The local store could not be read or written, or holds malformed records.
    #[error("local store {path}: {detail}")]
    Store {
        /// The file or directory concerned.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The lock file could not be read, parsed or written.
    #[error("lock file {path}: {detail}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A trusted key could not be read or parsed.
    #[error("key {key}: {detail}")]
    Key {
        /// The key's path, or `trusted_keys[i]` for an inline PEM.
        key: String,
        /// What went wrong.
        detail: String,
    },
    /// The registry policy is inconsistent, e.g. `require_signature` with no trusted keys.
    #[error("invalid registry policy: {0}")]
    Policy(String),
    /// The runtime refused the resolved component.
    #[error("{0}")]
    Load(#[from] wasmtel_runtime::LoadError),
    /// Another local failure (starting the client runtime, serializing a manifest).
    #[error("{0}")]
    Io(String),
}

/// Classifies an `oci-client` failure: connection problems are `Unreachable`,
/// 404-like answers `NotFound`, digest failures `DigestMismatch`, the rest `Registry`.
pub(crate) fn classify(registry: &str, error: oci_client::errors::OciDistributionError) -> ErrorKind {
    use oci_client::errors::{DigestError, OciDistributionError as E, OciErrorCode};
    match error {
        E::RequestError(e) if e.is_connect() || e.is_timeout() => {
            ErrorKind::Unreachable { registry: registry.to_string(), detail: chain(&e) }
        }
        E::RequestError(e) => ErrorKind::Registry { registry: registry.to_string(), detail: chain(&e) },
        E::ImageManifestNotFoundError(m) => ErrorKind::NotFound(m),
        E::RegistryError { envelope, url }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) =>
        {
            ErrorKind::NotFound(format!("{url}: {envelope}"))
        }
        E::ServerError { code: 404, url, .. } => ErrorKind::NotFound(url),
        E::ServerError { code, url, message } => ErrorKind::Registry {
            registry: registry.to_string(),
            detail: format!("HTTP {code} from {url}: {}", truncate(&message, 200)),
        },
        E::DigestError(DigestError::VerificationError { expected, actual }) => {
            ErrorKind::DigestMismatch { what: "content", expected, actual }
        }
        other => ErrorKind::Registry { registry: registry.to_string(), detail: other.to_string() },
    }
}

/// The error and its sources on one line: reqwest hides the cause (e.g. "connection refused") in `source()`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use wasmtel_runtime::LoadError;

    use super::*;

    #[test]
    fn reports_name_the_plugin_once_and_the_reference_when_it_says_more() {
        let refused = || ErrorKind::Load(LoadError::CoreModule { component: "redact".into() });
        let from_file = RegistryError::new("plugins/redact.wasm", refused()).report("redact");
        assert!(from_file.starts_with("component redact: is a core WebAssembly module"), "{from_file}");
        let from_store = RegistryError::new("redact:1.2", refused()).report("redact");
        assert!(from_store.starts_with("redact:1.2: component redact: is a core"), "{from_store}");
        let missing = RegistryError::new("redact:9", ErrorKind::NotFound("no tag 9".into())).report("redact");
        assert_eq!(missing, "component redact: redact:9: not found: no tag 9");
    }
}
