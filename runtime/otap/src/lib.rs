//! OTLP ↔ OTAP conversion: what a plugin returns (OTLP protobuf) becomes
//! OTel-Arrow record batches for downstream otap-dataflow stages. Conversion
//! is done once, on the host, and only where a consumer wants OTAP.

use bytes::Bytes;
use otel_arrow_dfe_config::SignalType;
use otel_arrow_dfe_pdata::TryFromWithOptions;
pub use otel_arrow_dfe_pdata::proto::opentelemetry::arrow::v1::ArrowPayloadType;
pub use otel_arrow_dfe_pdata::{OtapArrowRecords, OtlpProtoBytes};
use wasmtel_runtime::Signal;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot convert OTLP {signal} to OTAP: {message}")]
    ToOtap { signal: Signal, message: String },
    #[error("cannot convert an OTAP {signal} batch to OTLP: {message}")]
    ToOtlp { signal: Signal, message: String },
}

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

/// Converts an OTLP request (protobuf) into OTAP record batches.
pub fn otlp_to_otap(signal: Signal, otlp: impl Into<Bytes>) -> Result<OtapArrowRecords, ConvertError> {
    let bytes: Bytes = otlp.into();
    // The Arrow encoder reads OTLP through lazy views and trusts the framing;
    // prove the bytes are the signal's request first so garbage is an error.
    wasmtel_runtime::otlp::validate(signal, &bytes)
        .map_err(|e| ConvertError::ToOtap { signal, message: format!("not an OTLP request: {e}") })?;
    OtapArrowRecords::try_from_with_default(otlp_payload(signal, bytes))
        .map_err(|e| ConvertError::ToOtap { signal, message: e.to_string() })
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
