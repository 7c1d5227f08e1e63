//! Test guest that misbehaves on request, to prove the sandbox contains it.
//! The batch content picks the misbehaviour (a span name, log body or metric
//! name), so one loaded plugin can fail and then keep serving good batches.

use std::hint::black_box;

use wasmtel_sdk::otlp::trace::v1::ResourceSpans;
use wasmtel_sdk::prelude::*;
use wasmtel_sdk::{Outcome, decode, encode};

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Makes `init` refuse the configuration with this message.
    #[serde(default)]
    pub reject: Option<String>,
}

pub struct Hostile;

impl Processor for Hostile {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
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
        "stack-overflow" => Ok(Some(Outcome::Replaced(vec![recurse(0, u64::MAX) as u8]))),
        "panic" => panic!("hostile component panicked on purpose"),
        "garbage" => Ok(Some(Outcome::Replaced(vec![0xff; 64]))),
        "oversized" => Ok(Some(Outcome::Replaced(oversized()))),
        "open-file" => match std::fs::read("/etc/passwd") {
            Ok(content) => Ok(Some(Outcome::Replaced(content))),
            Err(error) => Err(ProcessError::permanent(format!("cannot read /etc/passwd: {error}"))),
        },
        "report-env" => Err(ProcessError::retryable(report_env())),
        "permanent-error" => Err(ProcessError::permanent("hostile: permanent error on purpose")),
        "retryable-error" => Err(ProcessError::retryable("hostile: retryable error on purpose")),
        _ => Ok(None),
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

/// A valid traces request of 8 MiB.
fn oversized() -> Vec<u8> {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { schema_url: "x".repeat(8 << 20), ..Default::default() }],
    };
    encode(&request)
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

    #[test]
    fn harmless_batches_pass_and_errors_are_typed() {
        assert_eq!(misbehave("GET /").unwrap(), None);
        assert_eq!(misbehave("garbage").unwrap(), Some(Outcome::Replaced(vec![0xff; 64])));
        assert!(matches!(misbehave("retryable-error"), Err(ProcessError::Retryable(_))));
        assert!(Hostile::new(Config { reject: Some("no".into()) }).is_err());
    }
}
