//! The process-wide runtime: one wasmtime `Engine`, one `Linker`, the compile
//! caches, and component loading with its admission checks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtel_component::HeaderError;
use wasmtel_component::interfaces::{self, ImportRefused};
use wasmtime::component::types::{ComponentExtern, ComponentItem};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::{ProcessorPlugin, ProcessorPluginPre};
use crate::cache::{CompileCache, CompiledFrom};
use crate::host::HostState;
use crate::{LoadError, Manifest, Plugin, PluginConfig, RuntimeConfig, WIT_VERSION};

/// Granularity of batch timeouts: the epoch advances this often.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Largest linear memory a plugin may be configured with (the wasm32 maximum).
pub(crate) const MAX_PLUGIN_MEMORY: u64 = 4 << 30;
/// Linear memories one component may define (all of them count against its
/// `max_memory` together).
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 2;

/// Where a component's bytes come from.
#[derive(Clone, Debug)]
pub enum ComponentSource {
    /// A file to read: a regular file only, at most [`MAX_COMPONENT_BYTES`].
    Path(PathBuf),
    /// Component bytes already in memory.
    Bytes(Vec<u8>),
}

/// A shareable handle to the runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub engine: Engine,
    linker: Linker<HostState>,
    cache: Option<CompileCache>,
    compiled: Mutex<HashMap<String, Component>>,
}

/// A compiled, admitted component, ready to be instantiated by plugins.
#[derive(Clone)]
pub struct LoadedComponent {
    /// The name it was loaded as; errors and metrics name the plugin by it.
    pub name: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// The plugin manifest from its custom section; `None` for components built without the SDK.
    pub manifest: Option<Manifest>,
    /// The `wasmtel:plugin` version the component was built against.
    pub wit_version: String,
    /// Top-level imports (all admitted by the sandbox).
    pub imports: Vec<String>,
    /// Top-level exports (including `wasmtel:plugin/processor`).
    pub exports: Vec<String>,
    /// Whether this load compiled it or reused a compiled copy (memory or disk cache).
    pub compiled_from: CompiledFrom,
    pub(crate) pre: ProcessorPluginPre<HostState>,
}

impl LoadedComponent {
    /// Checks a guest config against the JSON Schema in the component's
    /// manifest (none: anything goes). Errors name every failing key path.
    /// A missing config is checked as `{}`, which is what the SDK hands `init`.
    pub fn check_config(&self, config: &serde_json::Value) -> Result<(), LoadError> {
        let Some(schema) = self.manifest.as_ref().and_then(|m| m.config_schema.as_ref()) else {
            return Ok(());
        };
        let config_error = |detail: String| LoadError::Config { component: self.name.clone(), detail };
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| config_error(format!("the component's config_schema is not a usable JSON Schema: {e}")))?;
        let empty = serde_json::Value::Object(Default::default());
        let config = if config.is_null() { &empty } else { config };
        let problems: Vec<String> = validator
            .iter_errors(config)
            .take(MAX_REPORTED_CONFIG_ERRORS)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                format!("{}: {error}", key_path("config", &pointer))
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        Err(config_error(format!("does not match the component's config_schema: {}", problems.join("; "))))
    }
}

/// `config` + JSON pointer `/keys/0` → `config.keys[0]`, as config errors elsewhere name keys.
fn key_path(root: &str, pointer: &str) -> String {
    let mut path = root.to_string();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(&segment);
        }
    }
    path
}

/// Schema violations listed in one error; the rest are left out.
const MAX_REPORTED_CONFIG_ERRORS: usize = 8;

impl Runtime {
    /// Creates the engine (pooling allocator sized by `max_total_instances`), the
    /// host linker and the compile cache; [`LoadError::Engine`] when wasmtime refuses.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true);
        if config.perf_map {
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let slots = config.max_total_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust component instantiates a handful of core modules (the program
        // plus wit-component's shims), hence the per-instance multipliers.
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 8)
            // Components from Rust and wit-component need one memory and a few tables;
            // the caps keep one hostile component from taking many pool slots.
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_memories_per_module(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(8)
            .max_memory_size(MAX_PLUGIN_MEMORY as usize)
            // Keep a little of each slot's memory mapped so re-instantiation is cheap.
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 16);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(engine_error)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        ProcessorPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(engine_error)?;

        let cache = config.cache_dir.and_then(|dir| CompileCache::open(dir, &engine));
        Ok(Runtime { inner: Arc::new(RuntimeInner { engine, linker, cache, compiled: Mutex::default() }) })
    }

    /// The wasmtime engine every plugin of this runtime shares.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The compile cache directory; `None` when caching is off or the directory could not be trusted.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.as_ref().map(CompileCache::dir)
    }

    /// Reads, compiles (or loads from cache) and admits a component.
    pub fn load_component(&self, name: &str, source: ComponentSource) -> Result<LoadedComponent, LoadError> {
        let bytes = match source {
            ComponentSource::Bytes(bytes) => bytes,
            ComponentSource::Path(path) => read_component_file(name, &path)?,
        };
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(too_large(name, bytes.len() as u64));
        }
        check_header(name, &bytes)?;
        let manifest = Manifest::from_component(&bytes)
            .map_err(|error| LoadError::Invalid { component: name.to_string(), detail: error.to_string() })?;
        let digest_hex = hex::encode(Sha256::digest(&bytes));
        let (component, compiled_from) = self.compile(name, &digest_hex, &bytes)?;

        let engine = &self.inner.engine;
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        let wit_version = check_exports(name, &exports)?;
        for (import, item) in ty.imports(engine) {
            check_import(name, import, &item)?;
        }
        let pre = self.inner.linker.instantiate_pre(&component).and_then(ProcessorPluginPre::new).map_err(|e| {
            LoadError::Instantiate {
                component: name.to_string(),
                context: "cannot link against the host",
                detail: format!("{e:#}"),
            }
        })?;
        Ok(LoadedComponent {
            name: name.to_string(),
            digest: format!("sha256:{digest_hex}"),
            manifest,
            wit_version,
            imports,
            exports,
            compiled_from,
            pre,
        })
    }

    /// Loads a component and starts a plugin on it; the plugin's first
    /// instance is created (and its `init` run) now, so a configuration the
    /// guest rejects fails here rather than on the first batch.
    pub fn load_plugin(&self, name: &str, source: ComponentSource, config: PluginConfig) -> Result<Plugin, LoadError> {
        let component = self.load_component(name, source)?;
        Plugin::start(self.clone(), component, config)
    }

    fn compile(&self, name: &str, digest_hex: &str, bytes: &[u8]) -> Result<(Component, CompiledFrom), LoadError> {
        let mut compiled = self.inner.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(component) = compiled.get(digest_hex) {
            return Ok((component.clone(), CompiledFrom::Memory));
        }
        let engine = &self.inner.engine;
        let cached = self.inner.cache.as_ref().and_then(|cache| cache.load(engine, digest_hex));
        let (component, from) = match cached {
            Some(component) => (component, CompiledFrom::Disk),
            None => {
                let component = Component::new(engine, bytes)
                    .map_err(|e| LoadError::Invalid { component: name.to_string(), detail: format!("{e:#}") })?;
                if let Some(cache) = &self.inner.cache {
                    cache.store(digest_hex, &component);
                }
                (component, CompiledFrom::Compiled)
            }
        };
        compiled.insert(digest_hex.to_string(), component.clone());
        Ok((component, from))
    }
}

/// Largest component accepted: real ones are a few MiB; anything near this is
/// an accident or an attack on the host's memory.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

fn too_large(name: &str, size: u64) -> LoadError {
    LoadError::NotWasm {
        component: name.to_string(),
        detail: format!("{size} bytes or more, larger than the {MAX_COMPONENT_BYTES}-byte limit for a component"),
    }
}

/// Reads a component file: a regular file only (a FIFO would block, a device
/// such as /dev/zero never ends), and never more than the size limit.
pub fn read_component_file(name: &str, path: &std::path::Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let read_error = |source: std::io::Error| LoadError::Read {
        component: name.to_string(),
        path: path.display().to_string(),
        source,
    };
    // Non-blocking, so opening a FIFO returns at once instead of waiting for a writer.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(read_error)?
    };
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(read_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if metadata.len() > MAX_COMPONENT_BYTES {
        return Err(too_large(name, metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow between the check and the read.
    file.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    Ok(bytes)
}

/// Advances the engine's epoch so per-batch deadlines fire; stops with the engine.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = thread::Builder::new().name("wasmtel-epoch".into()).spawn(move || {
        loop {
            thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!("cannot start the epoch thread; batch timeouts will not fire: {error}");
    }
}

/// Tells a wasm component apart from a core module and from non-wasm files
/// before Cranelift sees it, for errors a person can act on.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    wasmtel_component::check_header(bytes).map_err(|error| match error {
        HeaderError::CoreModule => LoadError::CoreModule { component: name.to_string() },
        other => LoadError::NotWasm { component: name.to_string(), detail: other.to_string() },
    })
}

/// Finds the processor export and checks its WIT version; returns that version.
fn check_exports(name: &str, exports: &[String]) -> Result<String, LoadError> {
    let processor = exports.iter().find_map(|export| match interfaces::split_version(export) {
        (interfaces::PROCESSOR, version) => Some(version.unwrap_or("unversioned")),
        _ => None,
    });
    match processor {
        None => Err(LoadError::NotAPlugin {
            component: name.to_string(),
            exports: if exports.is_empty() { "(none)".to_string() } else { exports.join(", ") },
        }),
        Some(found) if !interfaces::wit_compatible(found) => Err(LoadError::IncompatibleWit {
            component: name.to_string(),
            found: found.to_string(),
            supported: WIT_VERSION.to_string(),
        }),
        Some(found) => Ok(found.to_string()),
    }
}

fn check_import(name: &str, import: &str, item: &ComponentExtern<'_>) -> Result<(), LoadError> {
    let forbidden =
        |why: String| LoadError::ForbiddenImport { component: name.to_string(), import: import.to_string(), why };
    if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
        return Err(forbidden("plugins may import only interfaces".to_string()));
    }
    interfaces::check_import(import).map_err(|refused| match refused {
        ImportRefused::IncompatibleWit { found } => {
            LoadError::IncompatibleWit { component: name.to_string(), found, supported: WIT_VERSION.to_string() }
        }
        other => forbidden(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_distinguishes_text_core_modules_and_components() {
        assert!(matches!(check_header("x", b"hello world"), Err(LoadError::NotWasm { .. })));
        assert!(matches!(check_header("x", b""), Err(LoadError::NotWasm { .. })));
        assert!(matches!(check_header("x", b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule { .. })));
        assert!(check_header("x", b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn exports_without_the_processor_are_refused_with_the_list() {
        let err = check_exports("p", &["wasi:cli/run@0.2.0".to_string()]).unwrap_err();
        assert!(err.to_string().contains("wasi:cli/run@0.2.0"), "{err}");
        let err = check_exports("p", &["wasmtel:plugin/processor@1.0.0".to_string()]).unwrap_err();
        assert!(err.to_string().contains("1.0.0") && err.to_string().contains(WIT_VERSION), "{err}");
    }
}
