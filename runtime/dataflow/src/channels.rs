//! Node factories are plain `fn`s, so the embedded receiver and exporter find
//! their application's end by name in a process-wide registry, filled in by
//! `EmbeddedPipeline::start`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Named ends of one kind.
pub(crate) struct Channels<T>(OnceLock<Mutex<HashMap<String, Arc<T>>>>);

impl<T> Channels<T> {
    pub const fn new() -> Self {
        Channels(OnceLock::new())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<T>>> {
        self.0.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn register(&self, name: &str, end: Arc<T>) {
        self.map().insert(name.to_string(), end);
    }

    pub fn unregister(&self, name: &str) {
        self.map().remove(name);
    }

    pub fn lookup(&self, name: &str) -> Option<Arc<T>> {
        self.map().get(name).cloned()
    }
}
