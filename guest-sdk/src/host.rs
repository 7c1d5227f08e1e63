//! The host capabilities every plugin has: logging and counters. Natively
//! (unit tests) logs go to stderr and counters are kept in memory.

/// Severity of a host log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes a line to the host log, tagged with the plugin's name by the host.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::wasmtel::plugin::{host, types::LogLevel};
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Adds `delta` to the plugin counter `name`, exported with the plugin's metrics.
pub fn counter(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmtel::plugin::host::add_counter(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    native::add(name, delta);
}

/// Counter values recorded natively, for unit tests of a processor.
#[cfg(not(target_arch = "wasm32"))]
pub fn counter_value(name: &str) -> u64 {
    native::get(name)
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        // Per test thread, so parallel tests don't see each other's counts.
        static COUNTERS: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
    }

    pub fn add(name: &str, delta: u64) {
        COUNTERS.with(|c| *c.borrow_mut().entry(name.to_string()).or_default() += delta);
    }

    pub fn get(name: &str) -> u64 {
        COUNTERS.with(|c| c.borrow().get(name).copied().unwrap_or(0))
    }
}
