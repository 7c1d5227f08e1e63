//! The process-wide wasmtel runtime shared by every wasm processor node.
//!
//! Node factories are plain `fn`s called once per core, so the one wasmtime
//! `Engine` (and its in-memory cache of compiled components) lives in a
//! static; each processor instance gets its own `Plugin` (own warm instance,
//! own Store, own metrics).

use std::sync::{Mutex, OnceLock, PoisonError};

use wasmtel_runtime::{LoadError, Runtime, RuntimeConfig};

static CONFIG: Mutex<Option<RuntimeConfig>> = Mutex::new(None);
static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Sets the runtime settings used when the first wasm node is built. Returns
/// `false` if the runtime already exists (the settings then have no effect).
pub fn configure_runtime(config: RuntimeConfig) -> bool {
    if RUNTIME.get().is_some() {
        return false;
    }
    *CONFIG.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
    true
}

/// The shared runtime, created on first use.
pub fn runtime() -> Result<Runtime, LoadError> {
    let result = RUNTIME.get_or_init(|| {
        let config = CONFIG.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default();
        Runtime::new(config).map_err(|e| e.to_string())
    });
    result.clone().map_err(LoadError::Engine)
}
