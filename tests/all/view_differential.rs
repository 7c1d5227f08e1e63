//! The components on the SDK's view and editor against the same logic on
//! decoded requests (each component's `decoded` module, the pre-view
//! implementation): on every shipped fixture and on generated requests of
//! all three signals, both give the same telemetry and the same outcome.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use prost::Message;
use wasmtel_runtime::Signal;
use wasmtel_runtime::otlp::json_to_protobuf;
use wasmtel_sdk::otlp::collector::logs::v1::ExportLogsServiceRequest;
use wasmtel_sdk::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use wasmtel_sdk::otlp::collector::trace::v1::ExportTraceServiceRequest;
use wasmtel_sdk::otlp::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value};
use wasmtel_sdk::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use wasmtel_sdk::otlp::metrics::v1::{
    Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data,
};
use wasmtel_sdk::otlp::resource::v1::Resource;
use wasmtel_sdk::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event, span::Link};
use wasmtel_sdk::{Outcome, Processor, testing};
use wasmtel_tests::workspace_root;

/// The decoded content of a request, comparable across encodings.
fn content(signal: Signal, bytes: &[u8]) -> String {
    match signal {
        Signal::Traces => format!("{:?}", ExportTraceServiceRequest::decode(bytes).unwrap()),
        Signal::Logs => format!("{:?}", ExportLogsServiceRequest::decode(bytes).unwrap()),
        Signal::Metrics => format!("{:?}", ExportMetricsServiceRequest::decode(bytes).unwrap()),
    }
}

/// A view-based processor and its decoded reference, built once from one config.
struct Pair<V, D> {
    config: serde_json::Value,
    view: V,
    decoded: D,
}

impl<V: Processor, D: Processor> Pair<V, D> {
    fn new(config: serde_json::Value) -> Self {
        let view = testing::new(&config.to_string()).unwrap();
        let decoded = testing::new(&config.to_string()).unwrap();
        Pair { config, view, decoded }
    }

    /// Runs both on one batch: the same outcome and the same telemetry;
    /// returns whether the batch was changed.
    fn check(&mut self, signal: Signal, input: &[u8]) -> bool {
        let by_view = testing::run(&mut self.view, signal, input).unwrap();
        let by_decoding = testing::run(&mut self.decoded, signal, input).unwrap();
        match (&by_view, &by_decoding) {
            (Outcome::Unchanged, Outcome::Unchanged) => false,
            (Outcome::Dropped, Outcome::Dropped) => true,
            (Outcome::Replaced(a), Outcome::Replaced(b)) => {
                assert_eq!(content(signal, a), content(signal, b), "{signal}: {}", self.config);
                true
            }
            _ => panic!("{signal}: view {by_view:?} vs decoded {by_decoding:?} with {}", self.config),
        }
    }
}

type RedactPair = Pair<wasmtel_redact::Redact, wasmtel_redact::decoded::Decoded>;
type FilterPair = Pair<wasmtel_filter::Filter, wasmtel_filter::decoded::Decoded>;

fn redact_configs() -> Vec<serde_json::Value> {
    ["mask", "hash", "remove"]
        .into_iter()
        .map(|action| {
            serde_json::json!({
                "keys": ["user.email", "customer.phone"],
                "key_patterns": ["(?i)authorization|card_number"],
                "value_patterns": [r"[\w.+-]+@[\w-]+\.[\w.]+", r"\b\d(?:[ -]?\d){12,18}\b"],
                "action": action,
                "log_bodies": true,
            })
        })
        .collect()
}

fn filter_configs() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({
            "spans": { "attributes": [{ "key": "http.route", "pattern": "^/(health|readyz)$" }], "names": ["GET /readyz"] },
            "logs": { "min_severity": 9, "body_patterns": ["^health"], "attributes": [{ "key": "n", "value": 3 }] },
            "data_points": { "attributes": [{ "key": "http.route", "value": "/health" }], "metric_names": ["drop.me"] },
        }),
        serde_json::json!({ "resource_attributes": [{ "key": "service.name", "value": "noisy" }] }),
    ]
}

/// Every config of both components on one batch: (runs that changed it, runs).
fn check_all(redacts: &mut [RedactPair], filters: &mut [FilterPair], signal: Signal, input: &[u8]) -> (usize, usize) {
    let changed = redacts.iter_mut().map(|p| usize::from(p.check(signal, input))).sum::<usize>()
        + filters.iter_mut().map(|p| usize::from(p.check(signal, input))).sum::<usize>();
    (changed, redacts.len() + filters.len())
}

fn pairs() -> (Vec<RedactPair>, Vec<FilterPair>) {
    (redact_configs().into_iter().map(Pair::new).collect(), filter_configs().into_iter().map(Pair::new).collect())
}

#[test]
fn every_shipped_fixture_gives_what_decoding_gives() {
    for signal in Signal::ALL {
        let json = std::fs::read(workspace_root().join(format!("examples/data/{signal}.json"))).unwrap();
        let input = json_to_protobuf(signal, &json).unwrap();
        let (mut redacts, mut filters) = pairs();
        let (changed, runs) = check_all(&mut redacts, &mut filters, signal, &input);
        assert!(changed > 0, "{signal}: the fixture exercises the edits ({changed} of {runs} changed it)");
    }
}

/// A small deterministic generator (xorshift): requests with the values
/// the configs above look for, nested in arrays and key-value lists.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn value(&mut self, depth: u32) -> AnyValue {
        let text = ["ada@example.com", "/health", "/api", "4111 1111 1111 1111", "plain", "", "health ok"];
        let value = match self.below(if depth == 0 { 5 } else { 7 }) {
            0 | 1 => Some(Value::StringValue(self.pick(&text).to_string())),
            2 => Some(Value::IntValue(self.below(5) as i64)),
            3 => Some(Value::BoolValue(self.below(2) == 0)),
            4 => None,
            5 => Some(Value::ArrayValue(ArrayValue {
                values: (0..self.below(4)).map(|_| self.value(depth - 1)).collect(),
            })),
            _ => Some(Value::KvlistValue(KeyValueList { values: self.attributes(depth - 1) })),
        };
        AnyValue { value }
    }

    fn attributes(&mut self, depth: u32) -> Vec<KeyValue> {
        let keys = ["user.email", "http.route", "customer.phone", "Authorization", "msg", "n", "service.name"];
        (0..self.below(5))
            .map(|_| KeyValue {
                key: self.pick(&keys).to_string(),
                value: Some(self.value(depth)),
                ..Default::default()
            })
            .collect()
    }

    fn resource(&mut self) -> Option<Resource> {
        let mut attributes = self.attributes(1);
        attributes.push(KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(Value::StringValue(self.pick(&["noisy", "shop"]).into())) }),
            ..Default::default()
        });
        Some(Resource { attributes, ..Default::default() })
    }

    fn traces(&mut self) -> ExportTraceServiceRequest {
        let names = ["GET /readyz", "POST /api", "GET /health"];
        ExportTraceServiceRequest {
            resource_spans: (0..1 + self.below(3))
                .map(|_| ResourceSpans {
                    resource: self.resource(),
                    scope_spans: (0..1 + self.below(2))
                        .map(|_| ScopeSpans {
                            spans: (0..self.below(5))
                                .map(|_| Span {
                                    name: self.pick(&names).into(),
                                    trace_id: vec![self.below(256) as u8; 16],
                                    attributes: self.attributes(2),
                                    events: (0..self.below(2))
                                        .map(|_| Event {
                                            name: "e".into(),
                                            attributes: self.attributes(1),
                                            ..Default::default()
                                        })
                                        .collect(),
                                    links: (0..self.below(2))
                                        .map(|_| Link { attributes: self.attributes(1), ..Default::default() })
                                        .collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn logs(&mut self) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: (0..1 + self.below(3))
                .map(|_| ResourceLogs {
                    resource: self.resource(),
                    scope_logs: (0..1 + self.below(2))
                        .map(|_| ScopeLogs {
                            log_records: (0..self.below(5))
                                .map(|_| LogRecord {
                                    severity_number: self.below(18) as i32,
                                    body: Some(self.value(2)),
                                    attributes: self.attributes(2),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn metrics(&mut self) -> ExportMetricsServiceRequest {
        let point = |g: &mut Gen| NumberDataPoint {
            attributes: g.attributes(1),
            exemplars: vec![Exemplar { filtered_attributes: g.attributes(1), ..Default::default() }],
            ..Default::default()
        };
        let metric = |g: &mut Gen| {
            let data = match g.below(3) {
                0 => Data::Gauge(Gauge { data_points: (0..g.below(4)).map(|_| point(g)).collect() }),
                1 => Data::Sum(Sum { data_points: (0..g.below(4)).map(|_| point(g)).collect(), ..Default::default() }),
                _ => Data::Histogram(Histogram {
                    data_points: (0..g.below(3))
                        .map(|_| HistogramDataPoint { attributes: g.attributes(1), ..Default::default() })
                        .collect(),
                    ..Default::default()
                }),
            };
            Metric { name: g.pick(&["drop.me", "http.server.duration"]).into(), data: Some(data), ..Default::default() }
        };
        ExportMetricsServiceRequest {
            resource_metrics: (0..1 + self.below(3))
                .map(|_| ResourceMetrics {
                    resource: self.resource(),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: (0..self.below(4)).map(|_| metric(self)).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }
}

#[test]
fn generated_requests_of_every_signal_give_what_decoding_gives() {
    let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
    let (mut redacts, mut filters) = pairs();
    for signal in Signal::ALL {
        let (mut changed, mut runs) = (0, 0);
        for _ in 0..150 {
            let input = match signal {
                Signal::Traces => generator.traces().encode_to_vec(),
                Signal::Logs => generator.logs().encode_to_vec(),
                Signal::Metrics => generator.metrics().encode_to_vec(),
            };
            let (c, r) = check_all(&mut redacts, &mut filters, signal, &input);
            changed += c;
            runs += r;
        }
        // Most runs edit something: the comparison is not between two no-ops.
        assert!(changed * 2 > runs, "{signal}: {changed} of {runs} runs changed the batch");
    }
}
