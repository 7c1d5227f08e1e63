//! The local content-addressed store, `$WASMTEL_HOME/store`:
//!
//! ```text
//! blobs/sha256/<hex>                      components, OCI manifests and configs, signature payloads
//! refs/oci/<host>/<repo>/@tags/<tag>      JSON TagRecord: what an OCI tag resolved to when pulled or pushed
//! refs/local/<name>/@tags/<tag>           JSON TagRecord: names given to components without a registry
//! sigs/<manifest hex>                     digest of the cosign signature manifest last seen for a manifest
//! tmp/                                    downloads in progress
//! ```
//!
//! Every file is written to `tmp/`, flushed, verified and then renamed into
//! place, so a crash or a failed verification never leaves a partial or wrong
//! blob under its digest. (`@` cannot occur in repository names, so `@tags`
//! never collides with a repository path component.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use wasmtel_component::private_dir;

use crate::reference::{Digest, OciRef};
use crate::{ErrorKind, Manifest};

/// Leftovers in `tmp/` older than this come from crashed writers and are removed.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

/// The local content-addressed store: blobs by digest, tag records, remembered signatures.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// What a name or tag pointed at when it was last written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagRecord {
    /// The OCI manifest, when the component came from (or went to) a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// `sha256:` of the component bytes.
    pub component: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// RFC 3339 time of the write.
    pub updated: String,
}

/// A named entry of the store, for `wasmtel ls`.
#[derive(Clone, Debug, Serialize)]
pub struct StoreEntry {
    /// `oci://host/repo:tag` or `name:tag`.
    pub name: String,
    /// What the name points at (flattened into the entry in JSON).
    #[serde(flatten)]
    pub record: TagRecord,
    /// The plugin manifest, when the component carries one.
    pub plugin: Option<Manifest>,
}

/// Which tag namespace a name lives in.
#[derive(Clone, Debug)]
pub(crate) enum TagName<'a> {
    /// An OCI tag (`refs/oci/<host>/<repo>/@tags/<tag>`; no tag means `latest`).
    Oci(&'a OciRef),
    /// A local name (`refs/local/<name>/@tags/<tag>`).
    Local {
        /// The name, e.g. `redact` or `team/redact`.
        name: &'a str,
        /// The tag.
        tag: &'a str,
    },
}

impl Store {
    /// Opens (creating if needed) a store and sweeps stale temporary files.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, ErrorKind> {
        let store = Store { root: root.into() };
        // Tags and signature records decide what runs: only this user (or
        // root) may be able to change them.
        for dir in ["blobs/sha256", "refs", "sigs", "tmp"] {
            let path = store.root.join(dir);
            private_dir::ensure(&path).map_err(|e| store.error(&path, e))?;
        }
        store.sweep_tmp();
        Ok(store)
    }

    /// `$WASMTEL_HOME/store` (see `wasmtel_runtime::config::default_home`).
    pub fn default_root() -> PathBuf {
        wasmtel_runtime::config::default_home().join("store")
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn error(&self, path: &Path, error: impl std::fmt::Display) -> ErrorKind {
        ErrorKind::Store { path: path.to_path_buf(), detail: error.to_string() }
    }

    fn sweep_tmp(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else { return };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TMP);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Where the blob with this digest is (or would be) stored; it may not exist.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob with this digest is in the store (not re-hashed).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a small blob (manifest, config, payload) and checks it still hashes to its name.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ErrorKind> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|e| self.error(&path, e))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ErrorKind::DigestMismatch {
                what: "stored blob",
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Stores bytes under their digest; with `expected`, refuses bytes that hash differently.
    pub fn put_blob(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, ErrorKind> {
        let mut writer = self.blob_writer()?;
        writer.write(bytes)?;
        let digest = writer.digest();
        writer.commit(expected.unwrap_or(&digest))?;
        Ok(digest)
    }

    /// A writer that hashes as it goes and becomes a blob only on a successful `commit`.
    pub(crate) fn blob_writer(&self) -> Result<BlobWriter<'_>, ErrorKind> {
        let tmp = self.root.join("tmp");
        let file = tempfile::Builder::new().prefix("blob-").tempfile_in(&tmp).map_err(|e| self.error(&tmp, e))?;
        Ok(BlobWriter { store: self, file, hasher: sha2::Sha256::new(), size: 0 })
    }

    fn tag_path(&self, name: &TagName<'_>) -> PathBuf {
        match name {
            TagName::Oci(oci) => self
                .root
                .join("refs/oci")
                .join(&oci.registry)
                .join(&oci.repository)
                .join("@tags")
                .join(oci.tag.as_deref().unwrap_or(OciRef::DEFAULT_TAG)),
            TagName::Local { name, tag } => self.root.join("refs/local").join(name).join("@tags").join(tag),
        }
    }

    /// What `name` points at; `None` when the store has no such tag.
    pub(crate) fn tag(&self, name: &TagName<'_>) -> Result<Option<TagRecord>, ErrorKind> {
        let path = self.tag_path(name);
        // The tag's own directory (or the deepest one of its path that
        // exists) and every one above it.
        let dir = path.ancestors().skip(1).find(|dir| dir.exists()).unwrap_or(&self.root);
        private_dir::check(dir).map_err(|e| self.error(dir, e))?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| self.error(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(&path, e)),
        }
    }

    /// Points `name` at `record`, replacing the record atomically.
    pub(crate) fn set_tag(&self, name: &TagName<'_>, record: &TagRecord) -> Result<(), ErrorKind> {
        let path = self.tag_path(name);
        let json = serde_json::to_vec_pretty(record).map_err(|e| self.error(&path, e))?;
        self.write_atomically(&path, &json)
    }

    /// Remembers the signature manifest seen for `manifest`, so signed
    /// components verify again with the registry down.
    pub fn set_signature(&self, manifest: &Digest, signature_manifest: &Digest) -> Result<(), ErrorKind> {
        let path = self.root.join("sigs").join(manifest.hex());
        self.write_atomically(&path, signature_manifest.as_str().as_bytes())
    }

    /// The signature manifest last seen for `manifest` (see [`set_signature`](Self::set_signature)), if any.
    pub(crate) fn signature(&self, manifest: &Digest) -> Option<Digest> {
        let sigs = self.root.join("sigs");
        if let Err(error) = private_dir::check(&sigs) {
            tracing::warn!("remembered signatures not used: {error}");
            return None;
        }
        let text = std::fs::read_to_string(sigs.join(manifest.hex())).ok()?;
        Digest::parse(text.trim()).ok()
    }

    pub(crate) fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), ErrorKind> {
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| self.error(dir, e))?;
        write_atomically(path, bytes).map_err(|e| self.error(path, e))
    }

    /// Every named entry (OCI tags and local names), sorted by name.
    pub fn list(&self) -> Result<Vec<StoreEntry>, ErrorKind> {
        let mut entries = Vec::new();
        for (kind, prefix) in [("oci", "oci://"), ("local", "")] {
            let base = self.root.join("refs").join(kind);
            let mut found = Vec::new();
            collect_tags(&base, &base, &mut found).map_err(|e| self.error(&base, e))?;
            for (name, tag, path) in found {
                let bytes = std::fs::read(&path).map_err(|e| self.error(&path, e))?;
                let record: TagRecord = serde_json::from_slice(&bytes).map_err(|e| self.error(&path, e))?;
                let plugin = self.plugin_manifest(&record);
                entries.push(StoreEntry { name: format!("{prefix}{name}:{tag}"), record, plugin });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The plugin manifest from the OCI annotations, or from the component itself.
    fn plugin_manifest(&self, record: &TagRecord) -> Option<Manifest> {
        if let Some(manifest) = record.manifest.as_deref().and_then(|d| Digest::parse(d).ok())
            && let Ok(bytes) = self.read_blob(&manifest)
            && let Ok(image) = serde_json::from_slice::<crate::artifact::ImageManifest>(&bytes)
        {
            return crate::artifact::plugin_manifest(&image);
        }
        let component = Digest::parse(&record.component).ok()?;
        let bytes = std::fs::read(self.blob_path(&component)).ok()?;
        Manifest::from_component(&bytes).ok().flatten()
    }
}

/// Walks `refs/<kind>/…/@tags/<tag>` files; returns (name, tag, path).
fn collect_tags(base: &Path, dir: &Path, out: &mut Vec<(String, String, PathBuf)>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if entry.file_name() == "@tags" {
            let name = dir.strip_prefix(base).unwrap_or(dir).to_string_lossy().into_owned();
            for tag in std::fs::read_dir(&path)? {
                let tag = tag?;
                if tag.file_type()?.is_file() {
                    out.push((name.clone(), tag.file_name().to_string_lossy().into_owned(), tag.path()));
                }
            }
        } else {
            collect_tags(base, &path, out)?;
        }
    }
    Ok(())
}

/// Write to a temporary file beside `path`, flush to disk, then rename over it.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A blob being written; dropped without `commit`, it leaves nothing behind.
pub(crate) struct BlobWriter<'a> {
    store: &'a Store,
    file: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    size: u64,
}

impl BlobWriter<'_> {
    /// Appends `chunk` to the blob, hashing it.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ErrorKind> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).map_err(|e| self.store.error(self.file.path(), e))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.hasher.clone())
    }

    /// Verifies the digest and renames the file into `blobs/`; on a mismatch
    /// the temporary file is deleted and nothing enters the store.
    pub fn commit(self, expected: &Digest) -> Result<PathBuf, ErrorKind> {
        let actual = self.digest();
        if &actual != expected {
            return Err(ErrorKind::DigestMismatch {
                what: "content",
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let target = self.store.blob_path(expected);
        let error = |e: std::io::Error| self.store.error(&target, e);
        self.file.as_file().sync_all().map_err(error)?;
        if target.is_file() {
            return Ok(target); // Already stored (same digest, same bytes); the temp file is dropped.
        }
        self.file.persist(&target).map_err(|e| self.store.error(&target, e.error))?;
        Ok(target)
    }
}

/// Now as RFC 3339, honouring `SOURCE_DATE_EPOCH` for reproducible artifacts.
pub(crate) fn now_rfc3339() -> String {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap_or_else(SystemTime::now);
    humantime::format_rfc3339_seconds(now).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_that_does_not_match_its_digest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wrong = Digest::of(b"something else");
        let error = store.put_blob(b"payload", Some(&wrong)).unwrap_err();
        assert!(matches!(error, ErrorKind::DigestMismatch { .. }), "{error}");
        assert!(!store.has_blob(&wrong));
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().count(), 0);

        let digest = store.put_blob(b"payload", None).unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"payload");
        // A blob corrupted on disk is caught when read back.
        std::fs::write(store.blob_path(&digest), b"PAYLOAD").unwrap();
        assert!(matches!(store.read_blob(&digest), Err(ErrorKind::DigestMismatch { .. })));
    }

    #[test]
    fn tags_round_trip_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let component = store.put_blob(b"\0asm\x0d\0\x01\0", None).unwrap();
        let record = TagRecord { manifest: None, component: component.to_string(), size: 8, updated: now_rfc3339() };
        let oci = OciRef {
            registry: "127.0.0.1:5000".into(),
            repository: "a/b".into(),
            tag: Some("1.0".into()),
            digest: None,
        };
        store.set_tag(&TagName::Oci(&oci), &record).unwrap();
        store.set_tag(&TagName::Local { name: "redact", tag: "dev" }, &record).unwrap();
        assert_eq!(store.tag(&TagName::Oci(&oci)).unwrap(), Some(record.clone()));
        assert_eq!(store.tag(&TagName::Local { name: "redact", tag: "other" }).unwrap(), None);
        let names: Vec<String> = store.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["oci://127.0.0.1:5000/a/b:1.0", "redact:dev"]);
    }

    #[test]
    fn a_store_others_can_write_is_refused_and_its_tags_are_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record_before = store.tag(&TagName::Local { name: "redact", tag: "v1" }).unwrap();
        assert!(record_before.is_none());
        // Loosened after start: refused where the tag is read.
        let refs = dir.path().join("refs");
        std::fs::set_permissions(&refs, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = store.tag(&TagName::Local { name: "redact", tag: "v1" }).unwrap_err().to_string();
        assert!(error.contains("refs") && error.contains("has mode 777"), "{error}");
        let Err(error) = Store::open(dir.path()) else { panic!("refused at open") };
        let error = error.to_string();
        assert!(error.contains("has mode 777"), "{error}");
    }
}
