//! `wasmtel.lock`: what each tag resolved to, so a deployment keeps getting
//! the bytes it was tested with. JSON, sorted, one entry per `oci://…:tag`:
//!
//! ```json
//! { "version": 1,
//!   "components": {
//!     "oci://registry.example/plugins/redact:1.2.0": {
//!       "manifest": "sha256:…", "component": "sha256:…" } } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::reference::Digest;

/// The lock file format version this build reads and writes; others are refused.
pub(crate) const LOCK_VERSION: u32 = 1;

/// A `wasmtel.lock` file: the digests each `oci://` tag resolved to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Format version; must be [`LOCK_VERSION`].
    pub version: u32,
    /// Entries by `oci://host/repo:tag` ([`OciRef::tag_key`](crate::OciRef::tag_key)), sorted.
    #[serde(default)]
    pub components: BTreeMap<String, LockEntry>,
}

/// What one tag resolved to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The OCI manifest digest the tag pointed at (what signatures cover).
    pub manifest: String,
    /// `sha256:` of the component bytes (what the runtime reports as the digest).
    pub component: String,
}

impl Default for LockFile {
    fn default() -> Self {
        LockFile { version: LOCK_VERSION, components: BTreeMap::new() }
    }
}

impl LockFile {
    /// Reads a lock file; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<LockFile, ErrorKind> {
        let error = |detail: String| ErrorKind::Lock { path: path.to_path_buf(), detail };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
            Err(e) => return Err(error(e.to_string())),
        };
        let lock: LockFile = serde_json::from_slice(&bytes).map_err(|e| error(format!("malformed: {e}")))?;
        if lock.version != LOCK_VERSION {
            return Err(error(format!("version {} is not supported (expected {LOCK_VERSION})", lock.version)));
        }
        for (reference, entry) in &lock.components {
            for digest in [&entry.manifest, &entry.component] {
                Digest::parse(digest).map_err(|e| error(format!("{reference}: {e}")))?;
            }
        }
        Ok(lock)
    }

    /// Writes atomically (temporary file + rename), so readers never see half a lock.
    pub fn save(&self, path: &Path) -> Result<(), ErrorKind> {
        let error = |detail: String| ErrorKind::Lock { path: path.to_path_buf(), detail };
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| error(e.to_string()))?;
        json.push(b'\n');
        crate::store::write_atomically(path, &json).map_err(|e| error(e.to_string()))
    }

    /// The manifest digest pinned for `key` (`oci://host/repo:tag`); `None` when absent or malformed.
    pub fn manifest(&self, key: &str) -> Option<Digest> {
        self.components.get(key).and_then(|entry| Digest::parse(&entry.manifest).ok())
    }
}

/// Applies one change to the lock file on disk (read, modify, write).
pub(crate) fn update(path: &Path, key: String, entry: LockEntry) -> Result<(), ErrorKind> {
    let mut lock = LockFile::load(path)?;
    if lock.components.get(&key) == Some(&entry) {
        return Ok(());
    }
    lock.components.insert(key, entry);
    lock.save(path)
}
