//! On-disk cache of precompiled components, keyed by the component's sha256
//! and the engine's compatibility hash so a second process start skips Cranelift.
//!
//! A cached artifact is native code that wasmtime maps and runs without
//! checking it (`Component::deserialize` is `unsafe`), so the cache trusts
//! only what this runtime wrote: the directory must be private to the user
//! (created 0700, owned by us, writable by nobody else) and every artifact
//! carries an HMAC-SHA256, under a key only that directory holds, over the
//! component digest, the engine settings and the bytes. A corrupted, renamed
//! or foreign artifact fails the check and is recompiled, with a warning.

use std::fs::{self, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtel_component::private_dir;
use wasmtime::Engine;
use wasmtime::component::Component;

type HmacSha256 = Hmac<Sha256>;

const KEY_FILE: &str = "cache.key";
const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 32;

pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    mac_key: [u8; KEY_BYTES],
}

/// Where a compiled component came from, reported by `inspect` and the benches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompiledFrom {
    /// Already compiled in this process.
    Memory,
    /// Deserialized from the disk cache.
    Disk,
    /// Compiled with Cranelift now.
    Compiled,
}

impl CompileCache {
    /// Opens (creating it private) the cache directory. `None`, with a
    /// warning, when it cannot be made trustworthy: the runtime then compiles
    /// every component instead of running code someone else may have written.
    pub fn open(dir: PathBuf, engine: &Engine) -> Option<Self> {
        match Self::try_open(&dir, engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), "compile cache disabled: {error}");
                None
            }
        }
    }

    fn try_open(dir: &Path, engine: &Engine) -> io::Result<Self> {
        private_dir::ensure(dir).map_err(untrusted)?;
        let mac_key = load_or_create_key(&dir.join(KEY_FILE))?;
        // The compatibility hash covers wasmtime's version and every codegen setting.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache { dir: dir.to_path_buf(), engine_key: format!("{:016x}", hasher.finish()), mac_key })
    }

    fn path(&self, digest_hex: &str) -> PathBuf {
        self.dir.join(format!("{digest_hex}-{}.cwasm", self.engine_key))
    }

    fn tag(&self, digest_hex: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.mac_key).expect("HMAC takes any key length");
        mac.update(digest_hex.as_bytes());
        mac.update(b"\0");
        mac.update(self.engine_key.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
    }

    /// Loads a cached artifact whose tag checks out; anything else is removed
    /// and ignored (the caller recompiles).
    pub fn load(&self, engine: &Engine, digest_hex: &str) -> Option<Component> {
        let path = self.path(digest_hex);
        // Checked where it is used: a directory loosened since start is refused.
        if let Err(error) = private_dir::check(&self.dir) {
            tracing::warn!("compile cache not used: {error}; recompiling");
            return None;
        }
        // Read into memory rather than mmap the file: a file rewritten in place
        // under a mapping would crash the process with SIGBUS.
        let bytes = fs::read(&path).ok()?;
        let discard = |why: &str| {
            tracing::warn!(path = %path.display(), "discarding compile cache entry: {why}; recompiling");
            let _ = fs::remove_file(&path);
            None
        };
        if bytes.len() < TAG_BYTES {
            return discard("truncated");
        }
        let (tag, artifact) = bytes.split_at(TAG_BYTES);
        if self.tag(digest_hex, artifact).verify_slice(tag).is_err() {
            return discard("its authentication tag does not match (corrupted, or not written by this runtime)");
        }
        // SAFETY: the artifact carries a valid HMAC under the cache's private
        // key over this digest and engine: this runtime serialized it from
        // the component with this digest. wasmtime also checks its header and
        // engine compatibility.
        #[allow(unsafe_code)]
        let deserialized = unsafe { Component::deserialize(engine, artifact) };
        match deserialized {
            Ok(component) => Some(component),
            Err(error) => discard(&format!("{error:#}")),
        }
    }

    /// Writes the artifact via a temporary file and rename, so readers never
    /// see a partial file. Failures only cost a recompile later, so they are logged.
    pub fn store(&self, digest_hex: &str, component: &Component) {
        if let Err(error) = self.try_store(digest_hex, component) {
            tracing::warn!(dir = %self.dir.display(), "could not write compile cache: {error:#}");
        }
    }

    fn try_store(&self, digest_hex: &str, component: &Component) -> anyhow::Result<()> {
        let artifact = component.serialize()?;
        let tag = self.tag(digest_hex, &artifact).finalize().into_bytes();
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&tag)?;
        file.write_all(&artifact)?;
        file.as_file().sync_all()?;
        file.persist(self.path(digest_hex))?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn untrusted(error: private_dir::UntrustedDir) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, error.to_string())
}

/// Refuses a key file that is a link, another user's, or readable by others.
fn check_key_file(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    if metadata.file_type().is_symlink() {
        return refuse(format!("{} is a symbolic link", path.display()));
    }
    let me = private_dir::effective_uid();
    if metadata.uid() != me {
        return refuse(format!(
            "{} is owned by uid {}, not by this process (uid {me})",
            path.display(),
            metadata.uid()
        ));
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        return refuse(format!(
            "{} has mode {:o}; it must be 0600",
            path.display(),
            metadata.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

fn load_or_create_key(path: &Path) -> io::Result<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => {
            getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no entropy for the cache key: {e}")))?;
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            check_key_file(path)?;
            let mut bytes = Vec::with_capacity(KEY_BYTES);
            fs::File::open(path)?.take(KEY_BYTES as u64 + 1).read_to_end(&mut bytes)?;
            if bytes.len() != KEY_BYTES {
                // Half-written by a process that died: start over; old entries fail their tags.
                fs::remove_file(path)?;
                return load_or_create_key(path);
            }
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        let error = CompileCache::try_open(&cache, &Engine::default()).err().expect("refused");
        assert!(error.to_string().contains("has mode 777"), "{error}");
    }

    #[test]
    fn a_new_directory_and_key_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("a/b/cache");
        CompileCache::try_open(&cache, &Engine::default()).unwrap();
        assert_eq!(fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(cache.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        // Reopening reads the same key.
        let first = CompileCache::try_open(&cache, &Engine::default()).unwrap().mac_key;
        assert_eq!(first, CompileCache::try_open(&cache, &Engine::default()).unwrap().mac_key);
    }
}
