//! The host capabilities every plugin has: logging and counters. Natively
//! (unit tests) log lines go to stderr and, like counters, are kept per
//! thread so tests can assert on them.

/// Severity of a host log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Finest detail, e.g. per item; the lowest level.
    Trace,
    /// Diagnostics for developing or debugging a plugin.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure; the highest level.
    Error,
}

/// Writes a line to the host log, tagged with the plugin's name by the host.
/// The [`info!`](crate::info) family of macros formats and calls this.
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
    native::log(level, message);
}

/// Writes `message` to the host log at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` to the host log at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` to the host log at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` to the host log at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` to the host log at [`Level::Error`].
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

/// Counter values recorded natively on this thread, for unit tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn counter_value(name: &str) -> u64 {
    native::get(name)
}

/// Log lines written natively on this thread so far, drained.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(Level, String)> {
    native::take_logs()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::Level;

    thread_local! {
        // Per test thread, so parallel tests don't see each other's counts.
        static COUNTERS: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
        static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub fn add(name: &str, delta: u64) {
        COUNTERS.with(|c| *c.borrow_mut().entry(name.to_string()).or_default() += delta);
    }

    pub fn get(name: &str) -> u64 {
        COUNTERS.with(|c| c.borrow().get(name).copied().unwrap_or(0))
    }

    pub fn log(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
        LOGS.with(|l| l.borrow_mut().push((level, message.to_string())));
    }

    pub fn take_logs() -> Vec<(Level, String)> {
        LOGS.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
}

/// `wasmtel_sdk::log!(Level::Info, "kept {} of {}", kept, total)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::host::log($level, &::std::format!($($arg)+))
    };
}

/// Formats and writes a trace line to the host log.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::host::Level::Trace, $($arg)+) };
}

/// Formats and writes a debug line to the host log.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::host::Level::Debug, $($arg)+) };
}

/// Formats and writes an info line to the host log.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::host::Level::Info, $($arg)+) };
}

/// Formats and writes a warning to the host log.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::host::Level::Warn, $($arg)+) };
}

/// Formats and writes an error line to the host log.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::host::Level::Error, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_logs_and_counters_are_recorded() {
        crate::info!("kept {} of {}", 2, 3);
        crate::trace!("t");
        counter("c", 2);
        counter("c", 3);
        assert_eq!(counter_value("c"), 5);
        assert_eq!(counter_value("never"), 0);
        assert_eq!(take_logs(), vec![(Level::Info, "kept 2 of 3".to_string()), (Level::Trace, "t".to_string())]);
        assert!(take_logs().is_empty());
    }
}
