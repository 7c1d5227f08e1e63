//! On-disk cache of precompiled components, keyed by the component's sha256
//! and the engine's compatibility hash so a second process start skips Cranelift.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
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
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        // The compatibility hash covers wasmtime's version and every codegen setting.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, digest_hex: &str) -> PathBuf {
        self.dir.join(format!("{digest_hex}-{}.cwasm", self.engine_key))
    }

    /// Loads a cached artifact; a corrupt or stale one is removed and ignored.
    pub fn load(&self, engine: &Engine, digest_hex: &str) -> Option<Component> {
        let path = self.path(digest_hex);
        // Read into memory rather than mmap the file: a file rewritten in place
        // under a mapping would crash the process with SIGBUS.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the file is one this cache wrote (atomically, under a name
        // derived from the input digest and engine settings) into the
        // runtime's own cache directory; wasmtime also checks its header and
        // engine compatibility before using it.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), "discarding unusable compile cache entry: {error:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
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
        let bytes = component.serialize()?;
        std::fs::create_dir_all(&self.dir)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&bytes)?;
        file.as_file().sync_all()?;
        file.persist(self.path(digest_hex))?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
