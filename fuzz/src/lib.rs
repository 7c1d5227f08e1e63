//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use wasmtel_runtime::Signal;

/// The OTLP targets read their first byte as a header: its low 7 bits pick the
/// signal (`% 3`: 0 traces, 1 metrics, 2 logs), bit 7 is a per-target flag.
/// The rest is the request. Seeds start with 0, 1 or 2.
pub fn split_header(data: &[u8]) -> Option<(Signal, bool, &[u8])> {
    let (&header, rest) = data.split_first()?;
    let signal = match (header & 0x7f) % 3 {
        0 => Signal::Traces,
        1 => Signal::Metrics,
        _ => Signal::Logs,
    };
    Some((signal, header & 0x80 != 0, rest))
}

/// The header byte of `signal` (flag clear), as seed files start.
pub fn header_of(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

/// prost's full decode of the signal's `Export*ServiceRequest`.
pub fn prost_decode(signal: Signal, bytes: &[u8]) -> Result<(), prost::DecodeError> {
    match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(bytes).map(drop),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes).map(drop),
        Signal::Logs => ExportLogsServiceRequest::decode(bytes).map(drop),
    }
}

/// Hex of the first `limit` bytes, for panic messages.
pub fn hex_prefix(bytes: &[u8], limit: usize) -> String {
    let mut out: String = bytes.iter().take(limit).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > limit {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

/// With `WASMTEL_FUZZ_WRITE_SEEDS=<dir>` set, writes the repository's sample
/// data (examples/data/*.json, embedded at build time) as OTLP protobuf seeds
/// into `<dir>` (header byte + request) and exits. scripts/fuzz.sh runs one
/// OTLP target this way to build the OTLP corpora, so seeds always match the
/// samples and no binary seed is committed.
pub fn write_seeds_if_asked() {
    let Some(dir) = std::env::var_os("WASMTEL_FUZZ_WRITE_SEEDS") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create seed dir");
    let samples: [(Signal, &[u8]); 3] = [
        (Signal::Traces, include_bytes!("../../examples/data/traces.json")),
        (Signal::Metrics, include_bytes!("../../examples/data/metrics.json")),
        (Signal::Logs, include_bytes!("../../examples/data/logs.json")),
    ];
    for (signal, json) in samples {
        let proto = wasmtel_runtime::otlp::json_to_protobuf(signal, json).expect("sample data is OTLP/JSON");
        let mut seed = vec![header_of(signal)];
        seed.extend_from_slice(&proto);
        let path = dir.join(format!("sample-{signal}.pb"));
        std::fs::write(&path, &seed).expect("write seed");
        // The empty request of each signal is valid too.
        std::fs::write(dir.join(format!("empty-{signal}.pb")), [header_of(signal)]).expect("write seed");
        eprintln!("wrote {} ({} bytes)", path.display(), seed.len());
    }
    std::process::exit(0);
}

/// Whether two requests decode (with prost) to the same content, compared
/// re-encoded so that NaN values compare equal to themselves.
pub fn prost_eq(signal: Signal, a: &[u8], b: &[u8]) -> bool {
    fn eq<M: Message + Default>(a: &[u8], b: &[u8]) -> bool {
        matches!((M::decode(a), M::decode(b)), (Ok(a), Ok(b)) if a.encode_to_vec() == b.encode_to_vec())
    }
    match signal {
        Signal::Traces => eq::<ExportTraceServiceRequest>(a, b),
        Signal::Metrics => eq::<ExportMetricsServiceRequest>(a, b),
        Signal::Logs => eq::<ExportLogsServiceRequest>(a, b),
    }
}
