//! `sample`: deterministic trace-id ratio sampling. The decision depends only
//! on the trace id (and seed), so every span and log of a trace gets the same
//! answer in any batch, on any instance, in any collector.

use wasmtel_sdk::prelude::*;
use wasmtel_sdk::view::{ViewError, retain_log_records, retain_spans};

/// The sampler's configuration (`config.schema.json`).
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Fraction of traces kept, 0.0 ..= 1.0.
    pub ratio: f64,
    /// 0: OpenTelemetry's consistent sampling (the trace id's low 56 bits are
    /// the randomness, as W3C random trace ids guarantee). Other values hash
    /// the trace id with the seed, for ids that are not random.
    #[serde(default)]
    pub seed: u64,
    /// Keep log records that carry no trace id.
    #[serde(default = "keep")]
    pub keep_logs_without_trace: bool,
}

fn keep() -> bool {
    true
}

/// 2^56: the randomness space of OpenTelemetry consistent probability sampling.
const RANDOMNESS: u64 = 1 << 56;

/// The `sample` processor: keeps spans and logs of a `ratio` of traces, chosen by trace id.
#[derive(Debug)]
pub struct Sample {
    /// Keep a trace when its randomness is at least this.
    threshold: u64,
    seed: u64,
    keep_logs_without_trace: bool,
}

impl Sample {
    /// Whether the trace with this id is kept.
    pub fn keeps(&self, trace_id: &[u8]) -> bool {
        self.randomness(trace_id) >= self.threshold
    }

    fn randomness(&self, trace_id: &[u8]) -> u64 {
        if self.seed == 0 {
            let mut low = [0u8; 8];
            let start = trace_id.len().saturating_sub(7);
            low[8 - (trace_id.len() - start)..].copy_from_slice(&trace_id[start..]);
            u64::from_be_bytes(low)
        } else {
            // FNV-1a over seed and id, folded to 56 bits.
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in self.seed.to_be_bytes().iter().chain(trace_id) {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
            (hash ^ (hash >> 56)) & (RANDOMNESS - 1)
        }
    }
}

impl Processor for Sample {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&config.ratio) {
            return Err(format!("ratio must be between 0 and 1, got {}", config.ratio));
        }
        let threshold = ((1.0 - config.ratio) * RANDOMNESS as f64).round() as u64;
        Ok(Sample { threshold, seed: config.seed, keep_logs_without_trace: config.keep_logs_without_trace })
    }

    /// Reads only the trace ids in place and removes what is sampled out
    /// (the SDK's zero-decode view and splice editor).
    fn process_raw(&mut self, signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        let (outcome, dropped, counter) = match signal {
            Signal::Traces => {
                let (outcome, dropped) =
                    retain_spans(&otlp, |_, span| Ok::<_, ViewError>(self.keeps(span.trace_id()?)))?;
                (outcome, dropped, "sampled_out_spans")
            }
            Signal::Logs => {
                let (outcome, dropped) = retain_log_records(&otlp, |_, record| {
                    let trace_id = record.trace_id()?;
                    // Empty or all-zero: the record was not emitted inside a trace.
                    Ok::<_, ViewError>(if trace_id.iter().all(|b| *b == 0) {
                        self.keep_logs_without_trace
                    } else {
                        self.keeps(trace_id)
                    })
                })?;
                (outcome, dropped, "sampled_out_log_records")
            }
            Signal::Metrics => return Ok(Outcome::Unchanged),
        };
        count(counter, dropped);
        Ok(outcome)
    }
}

fn count(counter: &str, dropped: u64) {
    if dropped > 0 {
        host::counter(counter, dropped);
    }
}

wasmtel_sdk::export_processor!(Sample, signals: [traces, logs], config_schema: "config.schema.json", failure_mode: open);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use wasmtel_sdk::testing;

    fn sample(config: serde_json::Value) -> Sample {
        testing::new(&config.to_string()).unwrap()
    }

    /// Pseudo-random 16-byte ids, reproducible.
    fn trace_ids(n: usize) -> Vec<Vec<u8>> {
        let mut state: u64 = 42;
        (0..n)
            .map(|_| {
                (0..16)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (state >> 56) as u8
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn keeps_about_the_ratio() {
        for seed in [0u64, 7] {
            let s = sample(serde_json::json!({"ratio": 0.25, "seed": seed}));
            let kept = trace_ids(20_000).iter().filter(|id| s.keeps(id)).count();
            assert!((4_400..=5_600).contains(&kept), "seed {seed}: kept {kept} of 20000");
        }
    }

    #[test]
    fn extremes() {
        let ids = trace_ids(100);
        assert!(ids.iter().all(|id| sample(serde_json::json!({"ratio": 1.0})).keeps(id)));
        assert!(!ids.iter().any(|id| sample(serde_json::json!({"ratio": 0.0})).keeps(id)));
        assert!(testing::new::<Sample>(r#"{"ratio": 1.5}"#).unwrap_err().contains("between 0 and 1"));
        assert!(testing::new::<Sample>("{}").unwrap_err().contains("ratio"));
    }

    #[test]
    fn spans_and_logs_of_a_trace_get_the_same_decision() {
        let ids = trace_ids(200);
        let spans = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: ids
                        .iter()
                        .map(|id| Span { trace_id: id.clone(), name: "s".into(), ..Default::default() })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut logs_records: Vec<LogRecord> =
            ids.iter().map(|id| LogRecord { trace_id: id.clone(), ..Default::default() }).collect();
        logs_records.push(LogRecord::default());
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: logs_records, ..Default::default() }],
                ..Default::default()
            }],
        };
        // Two instances, as two collector replicas would have.
        let mut a = sample(serde_json::json!({"ratio": 0.5}));
        let mut b = sample(serde_json::json!({"ratio": 0.5}));
        let (_, kept_spans) = testing::run_typed(&mut a, Signal::Traces, &spans).unwrap();
        let (_, kept_logs) = testing::run_typed(&mut b, Signal::Logs, &logs).unwrap();
        let span_ids: Vec<Vec<u8>> =
            kept_spans.unwrap().resource_spans[0].scope_spans[0].spans.iter().map(|s| s.trace_id.clone()).collect();
        let log_records = &kept_logs.unwrap().resource_logs[0].scope_logs[0].log_records;
        let log_ids: Vec<Vec<u8>> =
            log_records.iter().filter(|r| !r.trace_id.is_empty()).map(|r| r.trace_id.clone()).collect();
        assert_eq!(span_ids, log_ids);
        assert!(!span_ids.is_empty() && span_ids.len() < ids.len());
        assert!(log_records.iter().any(|r| r.trace_id.is_empty()), "logs without a trace are kept by default");
    }

    fn logs_with(trace_ids: &[Vec<u8>]) -> ExportLogsServiceRequest {
        testing::logs(
            vec![],
            trace_ids.iter().map(|id| LogRecord { trace_id: id.clone(), ..Default::default() }).collect(),
        )
    }

    #[test]
    fn logs_without_a_trace_follow_the_config_and_zero_ids_count_as_none() {
        let no_trace = logs_with(&[vec![], vec![0; 16]]);
        let mut keep = sample(serde_json::json!({"ratio": 0.0}));
        assert_eq!(testing::run_typed(&mut keep, Signal::Logs, &no_trace).unwrap().0, Outcome::Unchanged);
        let mut drop = sample(serde_json::json!({"ratio": 1.0, "keep_logs_without_trace": false}));
        assert_eq!(testing::run_typed(&mut drop, Signal::Logs, &no_trace).unwrap().0, Outcome::Dropped);
    }

    #[test]
    fn decisions_are_stable_per_seed_and_differ_between_seeds() {
        let ids = trace_ids(2_000);
        let decisions = |seed: u64| -> Vec<bool> {
            let s = sample(serde_json::json!({"ratio": 0.5, "seed": seed}));
            ids.iter().map(|id| s.keeps(id)).collect()
        };
        assert_eq!(decisions(0), decisions(0));
        assert_eq!(decisions(9), decisions(9));
        let differing = decisions(0).iter().zip(decisions(9)).filter(|(a, b)| **a != *b).count();
        assert!(differing > 500, "a seed re-draws the sample: {differing} of 2000 differ");
    }

    #[test]
    fn otel_consistent_threshold_on_the_low_56_bits() {
        let s = sample(serde_json::json!({"ratio": 0.5}));
        let mut id = vec![0xff; 16];
        id[9..].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0]);
        assert!(s.keeps(&id), "randomness 2^55 is at the 50% threshold: kept");
        id[9..].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(!s.keeps(&id), "just below the threshold: dropped (the high 9 bytes don't count)");
    }

    #[test]
    fn counters_count_sampled_out_items() {
        let mut s = sample(serde_json::json!({"ratio": 0.0}));
        testing::run_typed(&mut s, Signal::Logs, &logs_with(&[vec![1; 16], vec![2; 16], vec![]])).unwrap();
        assert_eq!(wasmtel_sdk::host::counter_value("sampled_out_log_records"), 2);
    }
}
