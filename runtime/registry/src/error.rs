//! Typed errors: every failure names the reference it was about and the cause,
//! and callers (CLI exit codes, the Go bridge) match on [`ErrorKind`].

use std::path::PathBuf;

use crate::reference::Reference;

/// A reference could not be resolved, pushed, signed or verified.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: {kind}")]
pub struct RegistryError {
    /// The reference as the user wrote it.
    pub reference: String,
    pub kind: ErrorKind,
}

impl RegistryError {
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

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot parse reference: {0}")]
    Parse(String),
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("registry {registry} failed: {detail}")]
    Registry { registry: String, detail: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: &'static str, expected: String, actual: String },
    #[error(
        "tag moved since {lock} was written: locked {locked}, the registry now serves {current}; \
         run `wasmtel pull --lock {lock} --update <ref>` to accept the new digest"
    )]
    TagMoved { lock: PathBuf, locked: String, current: String },
    #[error("not a wasm component artifact: {0}")]
    NotWasm(String),
    #[error("signature required but {0}")]
    Unsigned(String),
    #[error("signature verification failed: {0}")]
    BadSignature(String),
    #[error("not in the local store {store}{hint}", hint = if *.offline { " (offline)" } else { "" })]
    NotInStore { store: PathBuf, offline: bool },
    #[error("local store {path}: {detail}")]
    Store { path: PathBuf, detail: String },
    #[error("lock file {path}: {detail}")]
    Lock { path: PathBuf, detail: String },
    #[error("key {key}: {detail}")]
    Key { key: String, detail: String },
    #[error("invalid registry policy: {0}")]
    Policy(String),
    #[error("{0}")]
    Load(#[from] wasmtel_runtime::LoadError),
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
