//! Test guest that misbehaves on request, to prove the sandbox contains it.
//! The batch content picks the misbehaviour (a span name, log body or metric
//! name), so one loaded plugin can fail and then keep serving good batches.

#![allow(missing_docs, reason = "a test guest, not an API")]

use std::hint::black_box;

use wasmtel_sdk::prelude::*;
use wasmtel_sdk::{Outcome, decode};

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Makes `init` refuse the configuration with this message.
    #[serde(default)]
    pub reject: Option<String>,
    /// Makes `init` spin this many million loop turns: a slow start.
    #[serde(default)]
    pub init_spin: u64,
    /// Makes `init` refuse once the wall clock (granted) passes this Unix
    /// time in milliseconds: instances created later fail, as when the host
    /// runs out of a resource after load.
    #[serde(default)]
    pub reject_after_unix_ms: Option<u128>,
}

pub struct Hostile;

impl Processor for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        spin(config.init_spin);
        if let Some(limit) = config.reject_after_unix_ms {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            if now > limit {
                return Err(format!("no new instances after {limit} (now {now})"));
            }
        }
        match config.reject {
            Some(message) => Err(message),
            None => Ok(Hostile),
        }
    }

    fn process_raw(&mut self, signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        for trigger in triggers(signal, &otlp)? {
            if let Some(outcome) = misbehave(&trigger)? {
                return Ok(outcome);
            }
        }
        Ok(Outcome::Unchanged)
    }
}

/// Span names, log bodies or metric names of the batch.
fn triggers(signal: Signal, otlp: &[u8]) -> Result<Vec<String>, ProcessError> {
    Ok(match signal {
        Signal::Traces => decode::<ExportTraceServiceRequest>(signal, otlp)?
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|span| span.name)
            .collect(),
        Signal::Logs => decode::<ExportLogsServiceRequest>(signal, otlp)?
            .resource_logs
            .into_iter()
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .filter_map(|record| record.body.as_ref().and_then(string_value).map(str::to_string))
            .collect(),
        Signal::Metrics => decode::<ExportMetricsServiceRequest>(signal, otlp)?
            .resource_metrics
            .into_iter()
            .flat_map(|r| r.scope_metrics)
            .flat_map(|s| s.metrics)
            .map(|metric| metric.name)
            .collect(),
    })
}

fn misbehave(trigger: &str) -> Result<Option<Outcome>, ProcessError> {
    match trigger {
        "loop" => {
            let mut spins = 0u64;
            loop {
                spins = black_box(spins.wrapping_add(1));
            }
        }
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                black_box(&hoard);
            }
        }
        // `spin-N`: about N million loop turns (milliseconds), then carry on:
        // a slow guest that finishes, for timeouts and backpressure.
        slow if slow.starts_with("spin-") => {
            spin(slow["spin-".len()..].parse().unwrap_or(1));
            Ok(None)
        }
        // `stderr-TEXT`: prints TEXT to stderr and carries on.
        print if print.starts_with("stderr-") => {
            eprintln!("{}", &print["stderr-".len()..]);
            Ok(None)
        }
        "stack-overflow" => Ok(Some(Outcome::Replaced(vec![recurse(0, u64::MAX) as u8]))),
        "panic" => panic!("hostile component panicked on purpose"),
        "garbage" => Ok(Some(Outcome::Replaced(vec![0xff; 64]))),
        // A valid request with nothing in it, as `replaced` rather than `dropped`.
        "empty-output" => Ok(Some(Outcome::Replaced(Vec::new()))),
        "oversized" => Ok(Some(Outcome::Replaced(oversized()))),
        "open-file" => match std::fs::read("/etc/passwd") {
            Ok(content) => Ok(Some(Outcome::Replaced(content))),
            Err(error) => Err(ProcessError::permanent(format!("cannot read /etc/passwd: {error}"))),
        },
        "report-env" => Err(ProcessError::retryable(report_env())),
        // Floods the host log: many lines, each trying to forge a host log
        // line and colour the terminal.
        "log-flood" => {
            for i in 0..LOG_FLOOD_LINES {
                wasmtel_sdk::host::warn(&format!(
                    "flood {i}\n2026-01-01T00:00:00Z ERROR forged host line \x1b[31mred\x1b[0m"
                ));
            }
            Ok(None)
        }
        "log-huge" => {
            wasmtel_sdk::host::info(&"x".repeat(HUGE_LINE_BYTES));
            eprintln!("{}", "y".repeat(HUGE_LINE_BYTES));
            Ok(None)
        }
        // Counters with huge names, then more counters than the host keeps.
        "counter-flood" => {
            for i in 0..64u64 {
                wasmtel_sdk::host::counter(&format!("{i}-{}", "n".repeat(1 << 20)), 1);
            }
            for i in 0..1000u64 {
                wasmtel_sdk::host::counter(&format!("c{i}"), 1);
            }
            Ok(None)
        }
        // Small on the wire, huge once decoded: `expand-N` returns N MiB of
        // empty spans (2 bytes each) in one ScopeSpans.
        expand if expand.starts_with("expand-") => {
            Ok(Some(Outcome::Replaced(empty_spans(expand["expand-".len()..].parse().unwrap_or(1) << 20))))
        }
        // Well-formed protobuf, but a 3-byte trace ID no OTLP consumer accepts.
        "short-trace-id" => Ok(Some(Outcome::Replaced(vec![0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3]))),
        "permanent-error" => Err(ProcessError::permanent("hostile: permanent error on purpose")),
        "retryable-error" => Err(ProcessError::retryable("hostile: retryable error on purpose")),
        _ => Ok(None),
    }
}

fn spin(millions: u64) {
    let mut spins = 0u64;
    for _ in 0..millions.saturating_mul(1_000_000) {
        spins = black_box(spins.wrapping_add(1));
    }
}

/// Unbounded recursion that the optimiser can neither unroll nor turn into a
/// loop (the result is mixed non-associatively after the call).
#[inline(never)]
fn recurse(depth: u64, stop: u64) -> u64 {
    if depth == black_box(stop) {
        return depth;
    }
    recurse(depth + 1, stop).rotate_left(7) ^ depth
}

/// Bytes of the `oversized` output: above the host's default `max_output_bytes`
/// (32 MiB) yet within its default `max_memory` (128 MiB), so under default
/// limits it is the output cap that refuses it.
pub const OVERSIZED_BYTES: usize = 64 << 20;

/// A valid traces request of 64 MiB (one resource whose `schema_url` is
/// `OVERSIZED_BYTES` long), written directly so the guest holds it only once.
fn oversized() -> Vec<u8> {
    let mut resource_spans = vec![0x1a]; // ResourceSpans.schema_url: field 3, length-delimited
    varint(&mut resource_spans, OVERSIZED_BYTES as u64);
    let resource_spans_len = resource_spans.len() + OVERSIZED_BYTES;
    let mut out = Vec::with_capacity(resource_spans_len + 16);
    out.push(0x0a); // ExportTraceServiceRequest.resource_spans: field 1, length-delimited
    varint(&mut out, resource_spans_len as u64);
    out.extend_from_slice(&resource_spans);
    out.resize(out.len() + OVERSIZED_BYTES, b'x');
    out
}

/// Lines `log-flood` sends: far more than the host lets through.
pub const LOG_FLOOD_LINES: usize = 20_000;
/// Bytes of each line `log-huge` logs and prints.
pub const HUGE_LINE_BYTES: usize = 8 << 20;

/// A traces request of about `bytes` bytes made of empty spans.
fn empty_spans(bytes: usize) -> Vec<u8> {
    let spans = bytes / 2;
    let mut scope_spans = Vec::with_capacity(spans * 2 + 16);
    scope_spans.push(0x12); // ResourceSpans.scope_spans: field 2
    varint(&mut scope_spans, (spans * 2) as u64);
    for _ in 0..spans {
        scope_spans.extend_from_slice(&[0x12, 0x00]); // ScopeSpans.spans: an empty span
    }
    let mut out = vec![0x0a]; // ExportTraceServiceRequest.resource_spans: field 1
    varint(&mut out, scope_spans.len() as u64);
    out.extend_from_slice(&scope_spans);
    out
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// What the sandbox lets the guest see of time, entropy and environment.
fn report_env() -> String {
    use std::hash::{BuildHasher, Hasher};
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(1);
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    format!("clock={clock} random={:016x} env=[{}]", hasher.finish(), env.join(","))
}

wasmtel_sdk::export_processor!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::testing;

    #[test]
    fn harmless_batches_pass_and_errors_are_typed() {
        assert_eq!(misbehave("GET /").unwrap(), None);
        assert_eq!(misbehave("garbage").unwrap(), Some(Outcome::Replaced(vec![0xff; 64])));
        assert!(matches!(misbehave("retryable-error"), Err(ProcessError::Retryable(_))));
        assert!(Hostile::new(Config { reject: Some("no".into()), ..Config::default() }).is_err());
    }

    #[test]
    fn expand_and_short_trace_id_decode_as_prost_sees_them() {
        let Some(Outcome::Replaced(bytes)) = misbehave("expand-1").unwrap() else { panic!("replaced") };
        let request = decode::<ExportTraceServiceRequest>(Signal::Traces, &bytes).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans.len(), 1 << 19);
        let Some(Outcome::Replaced(bytes)) = misbehave("short-trace-id").unwrap() else { panic!("replaced") };
        let request = decode::<ExportTraceServiceRequest>(Signal::Traces, &bytes).unwrap();
        assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].trace_id, [1, 2, 3]);
    }

    #[test]
    fn oversized_is_a_valid_traces_request_of_64_mib() {
        let Some(Outcome::Replaced(bytes)) = misbehave("oversized").unwrap() else { panic!("replaced") };
        assert!(bytes.len() > OVERSIZED_BYTES && bytes.len() < OVERSIZED_BYTES + 16);
        let request = decode::<ExportTraceServiceRequest>(Signal::Traces, &bytes).unwrap();
        assert_eq!(request.resource_spans[0].schema_url.len(), OVERSIZED_BYTES);
    }

    #[test]
    fn triggers_come_from_span_names_log_bodies_and_metric_names() {
        use wasmtel_sdk::testing::{gauge, log_record, span};
        let traces = wasmtel_sdk::encode(&testing::traces(vec![], vec![span("ok", vec![]), span("garbage", vec![])]));
        assert_eq!(triggers(Signal::Traces, &traces).unwrap(), ["ok", "garbage"]);
        let logs = wasmtel_sdk::encode(&testing::logs(vec![], vec![log_record(9, "panic", vec![])]));
        assert_eq!(triggers(Signal::Logs, &logs).unwrap(), ["panic"]);
        let metrics = wasmtel_sdk::encode(&testing::metrics(vec![], vec![gauge("loop", vec![])]));
        assert_eq!(triggers(Signal::Metrics, &metrics).unwrap(), ["loop"]);
        let mut hostile = Hostile;
        assert_eq!(hostile.process_raw(Signal::Traces, traces), Ok(Outcome::Replaced(vec![0xff; 64])));
        assert!(matches!(hostile.process_raw(Signal::Logs, vec![0xff; 3]), Err(ProcessError::Permanent(_))));
    }

    #[test]
    fn open_file_reports_the_io_error_natively_too() {
        // Natively /etc/passwd may exist; either way the answer is typed, never a panic.
        match misbehave("open-file") {
            Ok(Some(Outcome::Replaced(bytes))) => assert!(!bytes.is_empty()),
            Err(ProcessError::Permanent(message)) => assert!(message.starts_with("cannot read /etc/passwd")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
