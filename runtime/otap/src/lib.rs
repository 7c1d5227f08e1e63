//! OTLP ↔ OTAP conversion: what a plugin returns (OTLP protobuf) becomes
//! OTel-Arrow record batches for downstream otap-dataflow stages. Conversion
//! is done once, on the host, and only where a consumer wants OTAP.

use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_pdata::TryFromWithOptions;
pub use otel_arrow_dfe_pdata::proto::opentelemetry::arrow::v1::ArrowPayloadType;
pub use otel_arrow_dfe_pdata::{OtapArrowRecords, OtlpProtoBytes};
use wasmtel_runtime::{Signal, otlp};

/// Why a batch could not be converted between OTLP and OTAP.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// OTLP to OTAP failed: the bytes do not frame as the signal's request,
    /// the pre-conversion rewrite failed, or the otap-dataflow encoder
    /// returned an error or panicked.
    #[error("cannot convert OTLP {signal} to OTAP: {message}")]
    ToOtap {
        /// The batch's signal.
        signal: Signal,
        /// What went wrong.
        message: String,
    },
    /// More items than otap-dataflow 0.62 numbers correctly in one batch;
    /// the batch itself is fine (forward it as OTLP, or split it).
    #[error(
        "cannot convert OTLP {signal} to OTAP: {items} items in one batch, more than the {max} otap-dataflow 0.62 can number"
    )]
    TooManyItems {
        /// The batch's signal.
        signal: Signal,
        /// Items in the batch (log records).
        items: u64,
        /// The most a batch may hold ([`MAX_OTAP_LOG_ITEMS`]).
        max: u64,
    },
    /// otap-dataflow could not turn the record batches back into an OTLP request.
    #[error("cannot convert an OTAP {signal} batch to OTLP: {message}")]
    ToOtlp {
        /// The batch's signal.
        signal: Signal,
        /// The otap-dataflow error.
        message: String,
    },
}

/// Log records (and resources) per batch that otap-dataflow 0.62's logs
/// encoder numbers with unchecked `u16`s: past it, ids wrap (or panic).
pub const MAX_OTAP_LOG_ITEMS: u64 = u16::MAX as u64;

/// The otap-dataflow name of a signal.
pub fn signal_type(signal: Signal) -> SignalType {
    match signal {
        Signal::Traces => SignalType::Traces,
        Signal::Metrics => SignalType::Metrics,
        Signal::Logs => SignalType::Logs,
    }
}

/// The signal of an OTAP batch.
pub fn signal_of(records: &OtapArrowRecords) -> Signal {
    match records {
        OtapArrowRecords::Traces(_) => Signal::Traces,
        OtapArrowRecords::Metrics(_) => Signal::Metrics,
        OtapArrowRecords::Logs(_) => Signal::Logs,
    }
}

/// Wraps OTLP bytes as otap-dataflow pdata without converting them; `Bytes`
/// from a `Vec` takes ownership, so nothing is copied.
pub fn otlp_payload(signal: Signal, otlp: impl Into<Bytes>) -> OtlpProtoBytes {
    OtlpProtoBytes::new_from_bytes(signal_type(signal), otlp)
}

/// Converts an OTLP request (protobuf) into OTAP record batches, never
/// panicking on what a client or a guest sends: the bytes must frame as the
/// signal's request; shapes otap-dataflow 0.62 misreads or converts in
/// quadratic time are rewritten first ([`otlp::for_otap`]); batches past its
/// item numbering are refused ([`ConvertError::TooManyItems`]); and a panic in
/// the conversion is caught and returned as an error.
pub fn otlp_to_otap(signal: Signal, otlp: impl Into<Bytes>) -> Result<OtapArrowRecords, ConvertError> {
    let bytes: Bytes = otlp.into();
    let refused = |message: String| ConvertError::ToOtap { signal, message };
    let scan = otlp::scan(signal, &bytes).map_err(|e| refused(format!("not an OTLP request: {e}")))?;
    if signal == Signal::Logs && scan.items > MAX_OTAP_LOG_ITEMS {
        return Err(ConvertError::TooManyItems { signal, items: scan.items, max: MAX_OTAP_LOG_ITEMS });
    }
    let bytes = if scan.fit_for_otap() {
        bytes
    } else {
        Bytes::from(otlp::rewrite(signal, &bytes, otlp::Fixes::FOR_OTAP).map_err(|e| refused(e.to_string()))?)
    };
    let converted = std::panic::catch_unwind(AssertUnwindSafe(|| {
        OtapArrowRecords::try_from_with_default(otlp_payload(signal, bytes))
    }));
    match converted {
        Ok(Ok(records)) => Ok(records),
        Ok(Err(e)) => Err(refused(e.to_string())),
        Err(panic) => Err(refused(format!("the otap-dataflow encoder panicked: {}", panic_message(&*panic)))),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Converts OTAP record batches back into an OTLP request (protobuf).
pub fn otap_to_otlp(records: OtapArrowRecords) -> Result<(Signal, Bytes), ConvertError> {
    let signal = signal_of(&records);
    let otlp = OtlpProtoBytes::try_from_with_default(records)
        .map_err(|e| ConvertError::ToOtlp { signal, message: e.to_string() })?;
    Ok((signal, otlp.into_bytes()))
}

/// Telemetry items (spans, log records, data points) in an OTAP batch.
pub fn item_count(records: &OtapArrowRecords) -> usize {
    records.num_items()
}
