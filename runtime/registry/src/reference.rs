//! Component references, as written in collector configs and on the command line:
//!
//! | form | meaning |
//! |---|---|
//! | `./redact.wasm`, `/abs/x.wasm`, `file:///abs/x.wasm` | a file |
//! | `oci://host[:port]/repo[:tag][@sha256:<hex>]` | an OCI artifact (tag defaults to `latest`) |
//! | `sha256:<hex>` | a manifest or component already in the local store |
//! | `name:tag`, `local://name:tag` | a name given to a component in the local store |
//!
//! A bare `name:tag` is read as a store name only when it fits the name grammar
//! (lowercase path components, a tag) and does not look like a path; write
//! `./name:tag` or `file://` for a file of that name.

use std::fmt;
use std::path::PathBuf;

/// Why text is not a reference (or not a digest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing but whitespace.
    #[error("empty reference")]
    Empty,
    /// `file://` with nothing after it.
    #[error("`file://` needs a path")]
    FileWithoutPath,
    /// `local://` followed by something that is not `name:tag`.
    #[error("{0:?} is not `name:tag` (lowercase name, tag)")]
    NotLocal(String),
    /// A scheme other than `file://`, `oci://` and `local://`.
    #[error("unsupported scheme `{0}://` (use a path, file://, oci:// or local://)")]
    UnsupportedScheme(String),
    /// A digest of another algorithm, or none.
    #[error("digest {0:?} must start with `sha256:`")]
    DigestAlgorithm(String),
    /// A `sha256:` digest that is not 64 lowercase hex digits.
    #[error("digest {0:?} must be `sha256:` and 64 lowercase hex digits")]
    DigestHex(String),
    /// An `oci://` reference without a repository.
    #[error("expected oci://host[:port]/repository[:tag][@sha256:…]")]
    OciShape,
    /// The registry host is not a host name or bracketed IPv6 address.
    #[error("registry host {0:?} is invalid")]
    RegistryHost(String),
    /// The registry port is not a number up to 65535.
    #[error("registry port {0:?} is not a number up to 65535")]
    RegistryPort(String),
    /// The repository breaks the OCI distribution grammar.
    #[error("repository {0:?} is invalid (lowercase letters, digits and . _ - separators, `/` between components)")]
    Repository(String),
    /// The tag breaks the OCI distribution grammar.
    #[error("tag {0:?} is invalid (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")]
    Tag(String),
}

/// A `sha256:<64 hex>` content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Checks `text` is `sha256:` and 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            return Err(ReferenceError::DigestAlgorithm(text.to_string()));
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ReferenceError::DigestHex(text.to_string()));
        }
        Ok(Digest(text.to_string()))
    }

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))))
    }

    pub(crate) fn from_hasher(hasher: sha2::Sha256) -> Digest {
        use sha2::Digest as _;
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole digest, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An artifact in an OCI registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host` or `host:port`.
    pub registry: String,
    /// The repository path, e.g. `plugins/redact`.
    pub repository: String,
    /// The tag; `latest` when neither tag nor digest was written, `None` when only a digest was.
    pub tag: Option<String>,
    /// The manifest digest the reference pins (`@sha256:…`), if any.
    pub digest: Option<Digest>,
}

impl OciRef {
    /// The tag to use when none is given and no digest pins the reference.
    pub const DEFAULT_TAG: &'static str = "latest";

    /// `oci://host/repo:tag` without the digest: the key a lock file pins.
    pub fn tag_key(&self) -> Option<String> {
        self.tag.as_ref().map(|tag| format!("oci://{}/{}:{tag}", self.registry, self.repository))
    }

    /// The same artifact pinned to `digest`.
    pub fn pinned(&self, digest: &Digest) -> OciRef {
        OciRef { digest: Some(digest.clone()), ..self.clone() }
    }

    /// Host part without the port, for the loopback check.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    pub(crate) fn client_ref(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => {
                oci_client::Reference::with_digest(self.registry.clone(), self.repository.clone(), digest.to_string())
            }
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| Self::DEFAULT_TAG.to_string()),
            ),
        }
    }

    /// A reference to a tag in the same repository (signature tags).
    pub(crate) fn with_tag(&self, tag: &str) -> OciRef {
        OciRef { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// Loopback registries may be reached over plain HTTP without configuration.
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A parsed component reference (see the module docs for the forms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A file (a path, or `file://`).
    Path(PathBuf),
    /// An artifact in an OCI registry (`oci://`).
    Oci(OciRef),
    /// A manifest or component in the local store, by digest.
    Digest(Digest),
    /// A component given a name in the local store (`wasmtel push x.wasm name:tag`).
    Local {
        /// The store name, e.g. `redact` or `team/redact`.
        name: String,
        /// The tag, e.g. `1.2.0`.
        tag: String,
    },
}

impl Reference {
    /// Parses a reference as written in configs and on the command line (surrounding
    /// whitespace ignored); anything that is no other form is a path.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some(rest) = text.strip_prefix("oci://") {
            return parse_oci(rest).map(Reference::Oci);
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(ReferenceError::FileWithoutPath);
            }
            return Ok(Reference::Path(PathBuf::from(rest)));
        }
        if let Some(rest) = text.strip_prefix("local://") {
            return parse_local(rest).ok_or_else(|| ReferenceError::NotLocal(rest.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(ReferenceError::UnsupportedScheme(scheme.to_string()));
        }
        if text.starts_with("sha256:") {
            return Digest::parse(text).map(Reference::Digest);
        }
        if let Some(local) = parse_local(text) {
            return Ok(local);
        }
        Ok(Reference::Path(PathBuf::from(text)))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Path(path) => write!(f, "{}", path.display()),
            Reference::Oci(oci) => oci.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
            Reference::Local { name, tag } => write!(f, "{name}:{tag}"),
        }
    }
}

fn parse_local(text: &str) -> Option<Reference> {
    let (name, tag) = text.rsplit_once(':')?;
    if text.ends_with(".wasm") || !is_repository(name) || !is_tag(tag) {
        return None;
    }
    Some(Reference::Local { name: name.to_string(), tag: tag.to_string() })
}

fn parse_oci(text: &str) -> Result<OciRef, ReferenceError> {
    let (registry, rest) = text.split_once('/').ok_or(ReferenceError::OciShape)?;
    check_registry(registry)?;
    let (name, digest) = match rest.split_once('@') {
        Some((name, digest)) => (name, Some(Digest::parse(digest)?)),
        None => (rest, None),
    };
    // The tag follows the last ':' after the last '/' (repositories have no ':').
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !is_repository(repository) {
        return Err(ReferenceError::Repository(repository.to_string()));
    }
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(ReferenceError::Tag(tag.to_string()));
    }
    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some(OciRef::DEFAULT_TAG.to_string()),
    };
    Ok(OciRef { registry: registry.to_string(), repository: repository.to_string(), tag, digest })
}

fn check_registry(registry: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::RegistryHost(registry.to_string());
    if registry.is_empty() {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        port.parse::<u16>().map_err(|_| ReferenceError::RegistryPort(port.to_string()))?;
    }
    Ok(())
}

/// The OCI distribution spec's repository grammar.
fn is_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-', between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn oci(text: &str) -> OciRef {
        match Reference::parse(text) {
            Ok(Reference::Oci(oci)) => oci,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn oci_references() {
        let r = oci("oci://127.0.0.1:5000/plugins/redact:1.2.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "plugins/redact", Some("1.2.0"))
        );
        assert_eq!(r.digest, None);
        assert_eq!(r.tag_key().as_deref(), Some("oci://127.0.0.1:5000/plugins/redact:1.2.0"));

        let r = oci(&format!("oci://registry.example/plugins/redact:1.2.0@{D}"));
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert_eq!(r.digest.as_ref().map(Digest::as_str), Some(D));
        assert_eq!(r.to_string(), format!("oci://registry.example/plugins/redact:1.2.0@{D}"));

        let r = oci(&format!("oci://localhost:5000/redact@{D}"));
        assert_eq!((r.tag, r.repository.as_str()), (None, "redact"));

        let r = oci("oci://[::1]:5000/a/b");
        assert_eq!((r.host(), r.tag.as_deref()), ("::1", Some("latest")));
        assert!(is_loopback(r.host()) && is_loopback("localhost") && is_loopback("127.0.0.2"));
        assert!(!is_loopback("registry.example"));
    }

    #[test]
    fn other_forms() {
        assert_eq!(Reference::parse("./redact.wasm"), Ok(Reference::Path("./redact.wasm".into())));
        assert_eq!(Reference::parse("redact.wasm"), Ok(Reference::Path("redact.wasm".into())));
        assert_eq!(Reference::parse("file:///tmp/a:b.wasm"), Ok(Reference::Path("/tmp/a:b.wasm".into())));
        assert_eq!(Reference::parse(D), Ok(Reference::Digest(Digest(D.to_string()))));
        assert_eq!(
            Reference::parse("plugins/redact:1.2.0"),
            Ok(Reference::Local { name: "plugins/redact".into(), tag: "1.2.0".into() })
        );
        assert_eq!(
            Reference::parse("local://redact:dev"),
            Ok(Reference::Local { name: "redact".into(), tag: "dev".into() })
        );
    }

    #[test]
    fn unparsable_references_say_why() {
        for (text, why) in [
            ("", "empty"),
            ("oci://", "expected oci://host"),
            ("oci://host", "expected oci://host"),
            ("oci://bad_host/x:1", "registry host"),
            ("oci://host:99999/x", "port"),
            ("oci://host/Upper/case", "repository"),
            ("oci://host/x:bad!", "tag"),
            ("oci://host/x@sha256:abc", "64 lowercase hex"),
            ("oci://host/x@md5:abc", "must start with `sha256:`"),
            ("sha256:xyz", "64 lowercase hex"),
            ("https://host/x", "unsupported scheme"),
            ("local://Bad", "not `name:tag`"),
            ("file://", "needs a path"),
        ] {
            let error = Reference::parse(text).expect_err(text);
            assert!(error.to_string().contains(why), "{text}: {error}");
        }
    }
}
