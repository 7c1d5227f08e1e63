//! The Rust components of a collector pipeline: the node factories compiled
//! in, their own config validation, and segments (Rust processors and
//! exporters run as one otap-dataflow pipeline, in this process).

use std::ffi::{CString, c_char};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use wasmtel_dataflow::segment::{self, NodeKind};
use wasmtel_dataflow::{EmbeddedError, Segment, SegmentError, SegmentSpec};

use crate::{LIVE_HANDLES, WasmtelError, WasmtelErrorKind, WasmtelStatus, fail, guard, invalid, signal_of, text};

/// Opaque segment handle: a running pipeline; safe to use from many threads at once.
pub struct WasmtelSegment(Segment);

/// Writes `json` to `out_json` (free with `wasmtel_string_free`).
fn put_json(out_json: *mut *mut c_char, json: String, error: *mut WasmtelError) -> WasmtelStatus {
    match CString::new(json) {
        Ok(json) => {
            // SAFETY: the callers check `out_json` is non-null; it is writable (their caller's promise).
            unsafe { *out_json = json.into_raw() };
            WasmtelStatus::Ok
        }
        Err(_) => fail(error, WasmtelErrorKind::Panic, true, "JSON with a NUL byte".into()),
    }
}

/// Every node type compiled in, as a JSON array of `{"kind", "type", "urn",
/// "empty_config_valid"}`; free with `wasmtel_string_free`.
///
/// # Safety
/// `out_json` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_factories_json(out_json: *mut *mut c_char, error: *mut WasmtelError) -> WasmtelStatus {
    guard(error, || {
        if out_json.is_null() {
            return invalid(error, "out_json is NULL");
        }
        match serde_json::to_string(&segment::factories()) {
            Ok(json) => put_json(out_json, json, error),
            Err(e) => fail(error, WasmtelErrorKind::Panic, true, e.to_string()),
        }
    })
}

/// Runs the node type's own config validation: `kind` is `receiver`,
/// `processor`, `exporter` or `extension`, `urn` the node type,
/// `config_json` its settings (empty: none). The error names the key.
///
/// # Safety
/// Pointers point to the given lengths of readable bytes; `error` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_node_validate(
    kind: *const u8,
    kind_len: usize,
    urn: *const u8,
    urn_len: usize,
    config_json: *const u8,
    config_len: usize,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        // SAFETY: upheld by the caller.
        let (kind, urn, config) = match unsafe {
            (text(kind, kind_len, "kind"), text(urn, urn_len, "urn"), text(config_json, config_len, "config"))
        } {
            (Ok(kind), Ok(urn), Ok(config)) => (kind, urn, config),
            (Err(m), _, _) | (_, Err(m), _) | (_, _, Err(m)) => return invalid(error, m),
        };
        let kind: NodeKind = match serde_json::from_value(serde_json::Value::String(kind.into())) {
            Ok(kind) => kind,
            Err(_) => return invalid(error, format!("unknown node kind {kind:?}")),
        };
        let config = match config {
            "" => serde_json::Value::Null,
            json => match serde_json::from_str(json) {
                Ok(config) => config,
                Err(e) => return invalid(error, format!("config is not JSON: {e}")),
            },
        };
        match segment::validate_node(kind, urn, &config) {
            Ok(()) => WasmtelStatus::Ok,
            Err(e) => fail(error, WasmtelErrorKind::Load, true, e.to_string()),
        }
    })
}

/// Validates and starts a segment described by `spec_json` (a `SegmentSpec`:
/// `{"id", "processors": [{"id", "type", "config"}], "exporters": […]}`).
/// Its pipeline runs on threads of its own until [`wasmtel_segment_shutdown`].
///
/// # Safety
/// `spec_json` points to `spec_len` readable bytes; `out` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_start(
    spec_json: *const u8,
    spec_len: usize,
    out: *mut *mut WasmtelSegment,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if out.is_null() {
            return invalid(error, "out is NULL");
        }
        // SAFETY: upheld by the caller.
        let spec = match unsafe { text(spec_json, spec_len, "segment spec") }.map(SegmentSpec::from_json) {
            Ok(Ok(spec)) => spec,
            Ok(Err(e)) => return invalid(error, e.to_string()),
            Err(message) => return invalid(error, message),
        };
        match Segment::start(&spec) {
            Ok(segment) => {
                LIVE_HANDLES.fetch_add(1, Ordering::SeqCst);
                // SAFETY: `out` is non-null and writable.
                unsafe { *out = Box::into_raw(Box::new(WasmtelSegment(segment))) };
                WasmtelStatus::Ok
            }
            Err(e @ SegmentError::Start { .. }) => fail(error, WasmtelErrorKind::Instantiate, true, e.to_string()),
            Err(e) => fail(error, WasmtelErrorKind::Load, true, e.to_string()),
        }
    })
}

/// Hands one OTLP request to the segment and waits, at most `budget_ns`,
/// until every exporter has acknowledged it. A refusal keeps the exporter's
/// permanent/retryable; a full queue is `Busy`, no answer in time
/// `DeadlineExceeded` (both retryable).
///
/// # Safety
/// `segment` is live; `input` points to `input_len` readable bytes for the
/// duration of the call; `error` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_export(
    segment: *const WasmtelSegment,
    signal: u32,
    input: *const u8,
    input_len: usize,
    budget_ns: u64,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if segment.is_null() {
            return invalid(error, "segment is NULL");
        }
        let Some(signal) = signal_of(signal) else { return invalid(error, format!("unknown signal {signal}")) };
        // SAFETY: upheld by the caller.
        let Some(input) = (unsafe { crate::bytes(input, input_len) }) else {
            return invalid(error, "input is NULL");
        };
        // SAFETY: `segment` is live.
        let segment = unsafe { &(*segment).0 };
        // The engine keeps the bytes past this call (queues, retries): one copy.
        let budget = if budget_ns == 0 { Duration::from_secs(5) } else { Duration::from_nanos(budget_ns) };
        match segment.export(signal, Bytes::copy_from_slice(input), budget) {
            Ok(()) => WasmtelStatus::Ok,
            Err(e) => fail(error, export_error_kind(&e), e.is_permanent(), format!("{}: {e}", segment.id())),
        }
    })
}

/// The segment's metrics as a JSON `SegmentMetrics`: `plugins` (each wasm
/// processor's, component ID → `MetricsSnapshot`) and `nodes` (every
/// member's engine metrics); free with `wasmtel_string_free`.
///
/// # Safety
/// `segment` is live; `out_json` and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_metrics_json(
    segment: *const WasmtelSegment,
    out_json: *mut *mut c_char,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if segment.is_null() || out_json.is_null() {
            return invalid(error, "segment or out_json is NULL");
        }
        // SAFETY: `segment` is live.
        let segment = unsafe { &(*segment).0 };
        match serde_json::to_string(&segment.metrics()) {
            Ok(json) => put_json(out_json, json, error),
            Err(e) => fail(error, WasmtelErrorKind::Panic, true, e.to_string()),
        }
    })
}

/// Opaque handle of a batch a replying segment handed back: its bytes stay
/// valid until it is answered with `wasmtel_output_answer`, which frees it.
pub struct WasmtelOutput(wasmtel_dataflow::Output);

/// The next batch a segment started with `"reply": true` hands back, waiting
/// at most `timeout_ns`: `*out` is NULL when none came in that time. The
/// batch is `*out_len` OTLP bytes at `*out_otlp`, of signal `*out_signal`;
/// its `wasmtel_segment_export` returns once it is answered.
///
/// # Safety
/// `segment` is live; the out pointers and `error` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_next_output(
    segment: *const WasmtelSegment,
    timeout_ns: u64,
    out: *mut *mut WasmtelOutput,
    out_signal: *mut u32,
    out_otlp: *mut *const u8,
    out_len: *mut usize,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    guard(error, || {
        if segment.is_null() || out.is_null() || out_signal.is_null() || out_otlp.is_null() || out_len.is_null() {
            return invalid(error, "segment or an out pointer is NULL");
        }
        // SAFETY: `segment` is live.
        let segment = unsafe { &(*segment).0 };
        let output = segment.next_output(Duration::from_nanos(timeout_ns));
        // SAFETY: the out pointers are non-null and writable.
        unsafe {
            *out = std::ptr::null_mut();
            if let Some(output) = output {
                *out_signal = output.signal.code();
                *out_otlp = output.otlp.as_ptr();
                *out_len = output.otlp.len();
                LIVE_HANDLES.fetch_add(1, Ordering::SeqCst);
                *out = Box::into_raw(Box::new(WasmtelOutput(output)));
            }
        }
        WasmtelStatus::Ok
    })
}

/// Answers a handed-back batch and frees it: `refused` 0 accepts it, 1
/// refuses it retryably, 2 permanently, with `reason` (`reason_len` bytes of
/// UTF-8) as the refusal's reason.
///
/// # Safety
/// `output` came from `wasmtel_segment_next_output` and is not used again;
/// `reason` points to `reason_len` readable bytes (or is NULL with 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_output_answer(
    output: *mut WasmtelOutput,
    refused: u32,
    reason: *const u8,
    reason_len: usize,
) {
    if output.is_null() {
        return;
    }
    LIVE_HANDLES.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: `output` came from `Box::into_raw` and is not used again.
    let output = unsafe { Box::from_raw(output) }.0;
    if refused == 0 {
        return output.accept();
    }
    // SAFETY: upheld by the caller.
    let reason = match unsafe { text(reason, reason_len, "reason") } {
        Ok(reason) => reason.to_string(),
        Err(_) => "the collector refused the batch".to_string(),
    };
    output.refuse(reason, refused == 2);
}

fn export_error_kind(error: &EmbeddedError) -> WasmtelErrorKind {
    match error {
        EmbeddedError::InvalidInput { .. } => WasmtelErrorKind::InvalidInput,
        EmbeddedError::Refused { .. } => WasmtelErrorKind::Refused,
        EmbeddedError::Backpressure { .. } => WasmtelErrorKind::Busy,
        EmbeddedError::NotAnswered { .. } => WasmtelErrorKind::DeadlineExceeded,
        _ => WasmtelErrorKind::Stopped,
    }
}

/// Stops taking batches, lets those in flight finish and the exporters flush
/// (within `timeout_ns`) and stops the pipeline, keeping the handle: a
/// replying segment's outputs can still be taken and answered meanwhile
/// (`wasmtel_segment_next_output` from another thread). An error says what
/// did not finish. Free the handle with `wasmtel_segment_shutdown` (quick
/// once closed).
///
/// # Safety
/// `segment` is live; `error` is writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_close(
    segment: *const WasmtelSegment,
    timeout_ns: u64,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    if segment.is_null() {
        return WasmtelStatus::Ok;
    }
    // SAFETY: `segment` is live.
    guard(error, || close(unsafe { &(*segment).0 }, timeout_ns, error))
}

fn close(segment: &Segment, timeout_ns: u64, error: *mut WasmtelError) -> WasmtelStatus {
    match segment.shutdown(Duration::from_nanos(timeout_ns.max(1))) {
        Ok(_) => WasmtelStatus::Ok,
        Err(e) => fail(error, WasmtelErrorKind::Stopped, false, format!("{}: {e}", segment.id())),
    }
}

/// Stops taking batches, lets those in flight finish and the exporters flush
/// (within `timeout_ns`), stops the pipeline and frees the handle, whatever
/// the outcome; an error says what did not finish.
///
/// # Safety
/// `segment` came from [`wasmtel_segment_start`] and is not used afterwards;
/// no export on it is running; `error` is writable or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wasmtel_segment_shutdown(
    segment: *mut WasmtelSegment,
    timeout_ns: u64,
    error: *mut WasmtelError,
) -> WasmtelStatus {
    if segment.is_null() {
        return WasmtelStatus::Ok;
    }
    guard(error, || {
        // SAFETY: upheld by the caller.
        let WasmtelSegment(segment) = *unsafe { Box::from_raw(segment) };
        LIVE_HANDLES.fetch_sub(1, Ordering::SeqCst);
        close(&segment, timeout_ns, error)
    })
}
