//! The C ABI of the wasmtel runtime, for the Go collector processor (cgo).
//!
//! Conventions: every function returns a [`WasmtelStatus`]; on failure it
//! fills the caller's [`WasmtelError`] (its `message` is owned by Rust: free it
//! with [`wasmtel_string_free`]). Inputs are borrowed pointer + length, never
//! copied here; a `replaced` output is a Rust buffer the caller reads once and
//! frees with [`wasmtel_bytes_free`]. Panics never cross the boundary.

// The C ABI is unsafe by nature: raw pointers from Go. Each unsafe block says
// what the caller guarantees (clippy::undocumented_unsafe_blocks).
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

use wasmtel_registry::{ErrorKind, Policy};
use wasmtel_runtime::logging::{LogRecord, RecordLayer};
mod segment;
pub use segment::WasmtelSegment;

use wasmtel_runtime::{FailureKind, LoadError, Outcome, Plugin, PluginConfig, Runtime, RuntimeConfig, Signal};

/// Opaque runtime handle: one per process is enough; plugins share its engine and caches.
pub struct WasmtelRuntime(Runtime);

/// Opaque plugin handle; safe to use from many threads at once.
pub struct WasmtelPlugin(Plugin);

/// What every function returns; on `Error` the caller's [`WasmtelError`] says why.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmtelStatus {
    /// The call succeeded; its outputs are written.
    Ok = 0,
    /// The call failed; outputs are untouched and the error (when not NULL) is filled.
    Error = 1,
}

/// Why a call failed; batch failures keep the runtime's [`FailureKind`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmtelErrorKind {
    /// No error: the value a caller initializes [`WasmtelError::kind`] with.
    None = 0,
    /// The component or its configuration was refused at load.
    Load = 1,
    /// A null pointer, bad UTF-8, unknown signal or malformed JSON from the caller.
    InvalidArgument = 2,
    /// A bug: Rust panicked; the panic was caught at the boundary.
    Panic = 3,
    /// The reference could not be resolved: not in the store, registry down,
    /// digest mismatch, moved tag, missing or untrusted signature.
    Registry = 4,
    /// The guest trapped (panic, unreachable, stack overflow, out-of-bounds access).
    Trap = 10,
    /// The batch exceeded the plugin's time budget (`limits.timeout`); retryable.
    Timeout = 11,
    /// The guest tried to grow its memory past `limits.max_memory`.
    Memory = 12,
    /// The guest returned bytes that are not OTLP of the batch's signal.
    InvalidOutput = 13,
    /// The guest returned more than `limits.max_output_bytes`.
    OutputTooLarge = 14,
    /// The guest refused the batch as permanent: the same input will fail again.
    GuestPermanent = 15,
    /// The guest refused the batch as retryable.
    GuestRetryable = 16,
    /// No fresh instance could replace a failed one (retryable), or the
    /// engine failed while creating the runtime or loading a plugin.
    Instantiate = 17,
    /// Backpressure: no free instance within the deadline, or no instance slot.
    Busy = 18,
    /// The caller's deadline expired while the guest ran.
    DeadlineExceeded = 19,
    /// The batch is not an OTLP request of its signal; the guest never saw it.
    InvalidInput = 20,
    /// A node of a segment refused the batch (an exporter's Nack).
    Refused = 21,
    /// The segment stopped, or is shutting down, before the batch completed.
    Stopped = 22,
}

/// A failed call's error, written into the caller's struct; free `message` with [`wasmtel_string_free`].
#[repr(C)]
pub struct WasmtelError {
    /// What failed.
    pub kind: WasmtelErrorKind,
    /// The collector must not retry (maps to `consumererror.NewPermanent`).
    pub permanent: bool,
    /// NUL-terminated, owned by Rust; NULL when there is no error.
    pub message: *mut c_char,
}

/// What a plugin did with a batch that succeeded.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmtelOutcome {
    /// Forward the input batch as it is.
    Unchanged = 0,
    /// Forward the output bytes instead (same signal).
    Replaced = 1,
    /// Forward nothing.
    Dropped = 2,
}

/// A batch's result; `data` is set only for `Replaced`.
#[repr(C)]
pub struct WasmtelOutput {
    /// What to forward.
    pub outcome: WasmtelOutcome,
    /// The replacement OTLP bytes, owned by Rust; NULL unless `Replaced`. Free with [`wasmtel_bytes_free`].
    pub data: *mut u8,
    /// Number of bytes at `data` (0 unless `Replaced`).
    pub len: usize,
    /// The buffer's allocated size, needed only to pass back to [`wasmtel_bytes_free`].
    pub capacity: usize,
}

/// Runtime and plugin handles alive now: tests assert it returns to zero.
static LIVE_HANDLES: AtomicU64 = AtomicU64::new(0);

/// Log records waiting for [`wasmtel_logs_drain`]; past the cap new ones are
/// counted and dropped, so a host that never drains cannot grow memory.
static LOGS: Mutex<VecDeque<LogRecord>> = Mutex::new(VecDeque::new());
static LOGS_DROPPED: AtomicU64 = AtomicU64::new(0);
const LOG_QUEUE_CAP: usize = 4096;

/// Routes the runtime's `tracing` events into [`LOGS`], once per process
/// (unless the host installed a subscriber of its own). `WASMTEL_LOG` sets
/// the filter (default `info`).
fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = std::env::var("WASMTEL_LOG").unwrap_or_else(|_| "info".into());
        let filter = tracing_subscriber::EnvFilter::try_new(filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let layer = RecordLayer::new(|record| {
            let mut queue = LOGS.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= LOG_QUEUE_CAP {
                LOGS_DROPPED.fetch_add(1, Ordering::Relaxed);
            } else {
                queue.push_back(record);
            }
        });
        let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
    });
}

fn fail(error: *mut WasmtelError, kind: WasmtelErrorKind, permanent: bool, message: String) -> WasmtelStatus {
    if !error.is_null() {
        // Interior NULs would truncate the C string; replace them.
        let message = CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default();
        // SAFETY: the caller passes a valid, writable WasmtelError or NULL (checked above).
        unsafe {
            *error = WasmtelError { kind, permanent, message: message.into_raw() };
        }
    }
    WasmtelStatus::Error
}

fn invalid(error: *mut WasmtelError, message: impl Into<String>) -> WasmtelStatus {
    fail(error, WasmtelErrorKind::InvalidArgument, true, message.into())
}

/// Runs `body`, turning a panic into an error instead of unwinding into C.
fn guard(error: *mut WasmtelError, body: impl FnOnce() -> WasmtelStatus) -> WasmtelStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            fail(error, WasmtelErrorKind::Panic, true, format!("wasmtel runtime panicked: {detail}"))
        }
    }
}

/// Borrows `len` bytes at `data` (an empty slice for len 0, whatever `data` is).
///
/// # Safety
/// `data` must point to `len` readable bytes that outlive the returned slice.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: upheld by the caller.
    Some(unsafe { std::slice::from_raw_parts(data, len) })
}

/// # Safety
/// As [`bytes`].
unsafe fn text<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a str, String> {
    // SAFETY: upheld by the caller.
    let raw = unsafe { bytes(data, len) }.ok_or_else(|| format!("{what} is NULL"))?;
    std::str::from_utf8(raw).map_err(|e| format!("{what} is not UTF-8: {e}"))
}

fn load_error_kind(error: &LoadError) -> WasmtelErrorKind {
    match error {
        LoadError::Engine(_) => WasmtelErrorKind::Instantiate,
        _ => WasmtelErrorKind::Load,
    }
}

fn failure_kind(kind: FailureKind) -> WasmtelErrorKind {
    match kind {
        FailureKind::Trap => WasmtelErrorKind::Trap,
        FailureKind::Timeout => WasmtelErrorKind::Timeout,
        FailureKind::Memory => WasmtelErrorKind::Memory,
        FailureKind::InvalidOutput => WasmtelErrorKind::InvalidOutput,
        FailureKind::OutputTooLarge => WasmtelErrorKind::OutputTooLarge,
        FailureKind::GuestPermanent => WasmtelErrorKind::GuestPermanent,
        FailureKind::GuestRetryable => WasmtelErrorKind::GuestRetryable,
        FailureKind::Instantiate => WasmtelErrorKind::Instantiate,
        FailureKind::Busy => WasmtelErrorKind::Busy,
        FailureKind::DeadlineExceeded => WasmtelErrorKind::DeadlineExceeded,
        FailureKind::InvalidInput => WasmtelErrorKind::InvalidInput,
    }
}

/// Creates a runtime. `config_json` is a `RuntimeConfig` (`{"cache_dir": …,
/// "max_total_instances": …}`) or empty for the defaults.
///
/// # Safety
/// `config_json` points to `config_len` bytes; `out` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_runtime_new(
    config_json: *const u8,
    config_len: usize,
    out: *mut *mut WasmtelRuntime,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if out.is_null() {
            return invalid(error, "out is NULL");
        }
        // SAFETY: upheld by the caller.
        let config = match unsafe { text(config_json, config_len, "runtime config") } {
            Ok("") => RuntimeConfig::default(),
            Ok(json) => match serde_json::from_str(json) {
                Ok(config) => config,
                Err(e) => return invalid(error, format!("invalid runtime config: {e}")),
            },
            Err(message) => return invalid(error, message),
        };
        capture_logs();
        match Runtime::new(config) {
            Ok(runtime) => {
                LIVE_HANDLES.fetch_add(1, Ordering::SeqCst);
                // SAFETY: `out` is non-null and writable (checked / upheld by the caller).
                unsafe { *out = Box::into_raw(Box::new(WasmtelRuntime(runtime))) };
                WasmtelStatus::Ok
            }
            Err(e) => fail(error, load_error_kind(&e), true, e.to_string()),
        }
    })
}

/// Frees a runtime. Plugins loaded from it stay valid (they share its engine).
///
/// # Safety
/// `runtime` came from [`wasmtel_runtime_new`] and is not used afterwards; NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_runtime_free(runtime: *mut WasmtelRuntime) {
    if runtime.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: upheld by the caller.
        drop(unsafe { Box::from_raw(runtime) });
        LIVE_HANDLES.fetch_sub(1, Ordering::SeqCst);
    }));
}

/// Loads a component as plugin `name` with a `PluginConfig` JSON (`{"config": …,
/// "limits": …, "on_error": …, "grants": …}`). `reference` is a path, `file://`,
/// `oci://host/repo:tag[@sha256:…]`, a `sha256:` digest or a local store
/// `name:tag`; `registry_json` is a registry `Policy` (`{"store": …,
/// "require_signature": …, "trusted_keys": […], "lock_file": …, "offline": …}`)
/// or empty for the defaults. Runs the guest's `init`, so a configuration it
/// rejects fails here.
///
/// # Safety
/// Pointers point to the given lengths of readable bytes; `out`, `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_plugin_load(
    runtime: *const WasmtelRuntime,
    name: *const u8,
    name_len: usize,
    reference: *const u8,
    reference_len: usize,
    config_json: *const u8,
    config_len: usize,
    registry_json: *const u8,
    registry_len: usize,
    out: *mut *mut WasmtelPlugin,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if runtime.is_null() || out.is_null() {
            return invalid(error, "runtime or out is NULL");
        }
        // SAFETY: upheld by the caller for all four strings.
        let strings = unsafe {
            [
                text(name, name_len, "name"),
                text(reference, reference_len, "reference"),
                text(config_json, config_len, "plugin config"),
                text(registry_json, registry_len, "registry policy"),
            ]
        };
        let [name, reference, config, registry] = match strings {
            [Ok(a), Ok(b), Ok(c), Ok(d)] => [a, b, c, d],
            [Err(m), ..] | [_, Err(m), ..] | [_, _, Err(m), _] | [.., Err(m)] => return invalid(error, m),
        };
        let load_refused = |what: &str, detail: String| {
            fail(error, WasmtelErrorKind::Load, true, format!("component {name}: invalid {what}: {detail}"))
        };
        let config = match config {
            "" => PluginConfig::default(),
            json => match PluginConfig::from_json(json) {
                Ok(config) => config,
                Err(e) => return load_refused("plugin configuration", e.to_string()),
            },
        };
        let policy = match registry {
            "" => Policy::default(),
            json => match Policy::from_json(json) {
                Ok(policy) => policy,
                Err(e) => return load_refused("registry policy", e.to_string()),
            },
        };
        // SAFETY: `runtime` is a live handle (upheld by the caller).
        let runtime = unsafe { &(*runtime).0 };
        match load_plugin(runtime, name, reference, config, policy) {
            Ok(plugin) => {
                LIVE_HANDLES.fetch_add(1, Ordering::SeqCst);
                // SAFETY: `out` is non-null and writable.
                unsafe { *out = Box::into_raw(Box::new(WasmtelPlugin(plugin))) };
                WasmtelStatus::Ok
            }
            Err((kind, message)) => fail(error, kind, true, message),
        }
    })
}

/// Errors as the registry reports them to every edge ([`wasmtel_registry::RegistryError::report`]).
fn load_plugin(
    runtime: &Runtime,
    name: &str,
    reference: &str,
    config: PluginConfig,
    policy: Policy,
) -> Result<Plugin, (WasmtelErrorKind, String)> {
    wasmtel_registry::load_plugin(runtime, name, reference, config, &policy).map_err(|e| {
        let kind = match &e.kind {
            ErrorKind::Load(load) => load_error_kind(load),
            _ => WasmtelErrorKind::Registry,
        };
        (kind, e.report(name))
    })
}

/// Frees a plugin and its warm instances.
///
/// # Safety
/// `plugin` came from [`wasmtel_plugin_load`], no call on it is in flight, and
/// it is not used afterwards; NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_plugin_free(plugin: *mut WasmtelPlugin) {
    if plugin.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: upheld by the caller.
        drop(unsafe { Box::from_raw(plugin) });
        LIVE_HANDLES.fetch_sub(1, Ordering::SeqCst);
    }));
}

/// Runs one OTLP batch (`signal`: 0 traces, 1 metrics, 2 logs). A positive
/// `deadline_ns` bounds the batch when shorter than the plugin's timeout. Under
/// `on_error: pass | drop` sandbox failures come back as `Unchanged` /
/// `Dropped` with status OK.
///
/// # Safety
/// `input` points to `input_len` readable bytes for the duration of the call;
/// `output` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_plugin_process(
    plugin: *const WasmtelPlugin,
    signal: u32,
    input: *const u8,
    input_len: usize,
    deadline_ns: u64,
    output: *mut WasmtelOutput,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    // A chain of one: the same checks and the same call.
    let chain = [plugin];
    // SAFETY: `chain` holds the caller's one handle; the rest is upheld by the caller.
    unsafe { wasmtel_chain_process(chain.as_ptr(), 1, signal, input, input_len, deadline_ns, output, error) }
}

/// Runs one OTLP batch through `count` plugins in order, as consecutive
/// processors would, in one call (`Plugin::process_chain`): each one's
/// output is the next one's input, a drop ends the chain, `deadline_ns`
/// covers the whole chain. An error names the plugin that failed.
///
/// # Safety
/// `plugins` points to `count` live handles; `input` to `input_len` readable
/// bytes for the duration of the call; `output` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_chain_process(
    plugins: *const *const WasmtelPlugin,
    count: usize,
    signal: u32,
    input: *const u8,
    input_len: usize,
    deadline_ns: u64,
    output: *mut WasmtelOutput,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if plugins.is_null() || count == 0 || output.is_null() {
            return invalid(error, "plugins (at least one) or output is NULL");
        }
        let Some(signal) = signal_of(signal) else { return invalid(error, format!("unknown signal {signal}")) };
        // SAFETY: upheld by the caller.
        let Some(input) = (unsafe { bytes(input, input_len) }) else {
            return invalid(error, "input is NULL");
        };
        // SAFETY: `plugins` points to `count` handles (the caller's promise).
        let handles = unsafe { std::slice::from_raw_parts(plugins, count) };
        if handles.iter().any(|handle| handle.is_null()) {
            return invalid(error, "a plugin of the chain is NULL");
        }
        // SAFETY: each handle is live.
        let chain: Vec<&Plugin> = handles.iter().map(|&handle| unsafe { &(*handle).0 }).collect();
        let deadline = (deadline_ns > 0).then(|| Duration::from_nanos(deadline_ns));
        let result = match chain.as_slice() {
            [plugin] => plugin.process(signal, input, deadline),
            _ => Plugin::process_chain(&chain, signal, input, deadline, None).map(|processed| processed.outcome),
        };
        // SAFETY: `output` is non-null and writable.
        unsafe { put_outcome(result, output, error) }
    })
}

fn signal_of(signal: u32) -> Option<Signal> {
    Signal::from_code(signal)
}

/// Writes a batch's outcome to `output` (a `replaced` output handed over, to
/// be freed with [`wasmtel_bytes_free`]), or its failure to `error`.
///
/// # Safety
/// `output` is non-null and writable; `error` is writable or NULL.
unsafe fn put_outcome(
    result: Result<Outcome, wasmtel_runtime::ProcessError>,
    output: *mut WasmtelOutput,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    let written = match result {
        Ok(Outcome::Unchanged) => {
            WasmtelOutput { outcome: WasmtelOutcome::Unchanged, data: ptr::null_mut(), len: 0, capacity: 0 }
        }
        Ok(Outcome::Dropped) => {
            WasmtelOutput { outcome: WasmtelOutcome::Dropped, data: ptr::null_mut(), len: 0, capacity: 0 }
        }
        Ok(Outcome::Replaced(bytes)) => {
            let mut bytes = std::mem::ManuallyDrop::new(bytes);
            WasmtelOutput {
                outcome: WasmtelOutcome::Replaced,
                data: bytes.as_mut_ptr(),
                len: bytes.len(),
                capacity: bytes.capacity(),
            }
        }
        Err(e) => return fail(error, failure_kind(e.kind), e.is_permanent(), e.to_string()),
    };
    // SAFETY: upheld by the caller.
    unsafe { *output = written };
    WasmtelStatus::Ok
}

/// The plugin's metrics as JSON (a `MetricsSnapshot`); free with [`wasmtel_string_free`].
///
/// # Safety
/// `plugin` is a live handle; `out_json` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_plugin_metrics_json(
    plugin: *const WasmtelPlugin,
    out_json: *mut *mut c_char,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if plugin.is_null() || out_json.is_null() {
            return invalid(error, "plugin or out_json is NULL");
        }
        // SAFETY: `plugin` is a live handle.
        let snapshot = unsafe { &(*plugin).0 }.metrics();
        match serde_json::to_string(&snapshot).map(CString::new) {
            Ok(Ok(json)) => {
                // SAFETY: `out_json` is non-null and writable.
                unsafe { *out_json = json.into_raw() };
                WasmtelStatus::Ok
            }
            _ => fail(error, WasmtelErrorKind::Panic, true, "metrics are not serializable".into()),
        }
    })
}

/// Frees a string returned by this library (error messages, metrics JSON).
///
/// # Safety
/// `s` came from this library and is not used afterwards; NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: upheld by the caller.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Frees a `Replaced` output buffer.
///
/// # Safety
/// The three values are exactly those of one [`WasmtelOutput`], freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_bytes_free(data: *mut u8, len: usize, capacity: usize) {
    if !data.is_null() {
        // SAFETY: upheld by the caller: this is a leaked Vec<u8>.
        drop(unsafe { Vec::from_raw_parts(data, len, capacity) });
    }
}

/// Takes the queued log records of the runtime and its guests as a JSON
/// array of `{"level", "plugin", "stream", "target", "message"}` (plus one
/// warning record when some were dropped); free with [`wasmtel_string_free`].
///
/// # Safety
/// `out_json` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_logs_drain(out_json: *mut *mut c_char) -> WasmtelStatus {
    let drained = catch_unwind(|| {
        let records: Vec<LogRecord> = LOGS.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect();
        let mut json: Vec<serde_json::Value> = records
            .iter()
            .map(|record| {
                serde_json::json!({
                    "level": record.level_name(),
                    "plugin": record.plugin,
                    "stream": record.stream,
                    "target": record.target,
                    "message": record.message,
                })
            })
            .collect();
        let dropped = LOGS_DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            json.push(serde_json::json!({
                "level": "warn",
                "target": "wasmtel",
                "message": format!("{dropped} runtime log records dropped (the queue was full)"),
            }));
        }
        CString::new(serde_json::Value::Array(json).to_string()).ok()
    });
    match drained {
        Ok(Some(json)) if !out_json.is_null() => {
            // SAFETY: `out_json` is non-null and writable (upheld by the caller).
            unsafe { *out_json = json.into_raw() };
            WasmtelStatus::Ok
        }
        _ => WasmtelStatus::Error,
    }
}

/// Runtime and plugin handles currently alive (for leak tests).
#[unsafe(no_mangle)]
pub extern "C" fn wasmtel_live_handles() -> u64 {
    LIVE_HANDLES.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../include/wasmtel.h");

    #[test]
    fn checked_in_header_is_current() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/wasmtel.h"));
        assert!(
            generated == HEADER,
            "runtime/ffi/include/wasmtel.h is stale: run scripts/update-ffi-header.sh and commit it"
        );
    }

    fn empty_error() -> WasmtelError {
        WasmtelError { kind: WasmtelErrorKind::None, permanent: false, message: ptr::null_mut() }
    }

    fn message(error: &WasmtelError) -> String {
        // SAFETY: set by `fail` from a CString.
        unsafe { std::ffi::CStr::from_ptr(error.message) }.to_string_lossy().into_owned()
    }

    #[test]
    fn bad_arguments_are_errors_not_crashes() {
        let mut error = empty_error();
        let mut runtime = ptr::null_mut();
        let json = b"{\"cache_dir\": null, \"max_total_instances\": 4}";
        // SAFETY: valid pointers to locals.
        let status = unsafe { wasmtel_runtime_new(json.as_ptr(), json.len(), &mut runtime, &mut error) };
        assert_eq!(status, WasmtelStatus::Ok);
        let before = wasmtel_live_handles();
        assert!(before >= 1);

        let mut plugin = ptr::null_mut();
        let (name, path) = ("ghost", "/nonexistent/ghost.wasm");
        // SAFETY: valid pointers to locals.
        let status = unsafe {
            wasmtel_plugin_load(
                runtime,
                name.as_ptr(),
                name.len(),
                path.as_ptr(),
                path.len(),
                ptr::null(),
                0,
                ptr::null(),
                0,
                &mut plugin,
                &mut error,
            )
        };
        assert_eq!(status, WasmtelStatus::Error);
        assert_eq!(error.kind, WasmtelErrorKind::Load);
        assert!(message(&error).contains("component ghost: cannot read"), "{}", message(&error));
        // SAFETY: the message came from this library.
        unsafe { wasmtel_string_free(error.message) };

        // A registry policy with an unknown key, and a reference that does not parse.
        for (reference, policy, expected) in [
            ("ghost.wasm", r#"{"trusted": []}"#, "component ghost: invalid registry policy: unknown field `trusted`"),
            ("ftp://host/ghost", "", "component ghost: ftp://host/ghost: cannot parse reference: unsupported scheme"),
        ] {
            let mut error = empty_error();
            // SAFETY: valid pointers to locals.
            let status = unsafe {
                wasmtel_plugin_load(
                    runtime,
                    name.as_ptr(),
                    name.len(),
                    reference.as_ptr(),
                    reference.len(),
                    ptr::null(),
                    0,
                    policy.as_ptr(),
                    policy.len(),
                    &mut plugin,
                    &mut error,
                )
            };
            assert_eq!(status, WasmtelStatus::Error);
            assert!(message(&error).starts_with(expected), "{}", message(&error));
            // SAFETY: the message came from this library.
            unsafe { wasmtel_string_free(error.message) };
        }

        let mut error = empty_error();
        let mut output =
            WasmtelOutput { outcome: WasmtelOutcome::Unchanged, data: ptr::null_mut(), len: 0, capacity: 0 };
        // SAFETY: a NULL plugin is what is being tested.
        let status = unsafe { wasmtel_plugin_process(ptr::null(), 0, ptr::null(), 0, 0, &mut output, &mut error) };
        assert_eq!((status, error.kind), (WasmtelStatus::Error, WasmtelErrorKind::InvalidArgument));
        // SAFETY: as above.
        unsafe { wasmtel_string_free(error.message) };

        // SAFETY: `runtime` is live and not used again.
        unsafe { wasmtel_runtime_free(runtime) };
        assert_eq!(wasmtel_live_handles(), before - 1);
    }
}
