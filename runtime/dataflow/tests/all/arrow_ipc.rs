//! The Arrow IPC exporter's files: size and time rotation, retention, and
//! that every finished file is a complete stream.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::path::Path;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use prost::Message;
use serde_json::{Value, json};
use wasmtel_dataflow::EmbeddedPipeline;
use wasmtel_tests::{string_attr, traces};

use crate::support::{read_signal, rows, strings};

fn spec(dir: &Path, exporter: Value) -> Value {
    let mut config = json!({ "directory": dir });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), exporter.as_object()) {
        config.extend(extra.clone());
    }
    json!({
        "version": "otel_dataflow/v1",
        "policies": { "resources": { "core_allocation": { "type": "core_count", "count": 1 } } },
        "groups": { "app": { "pipelines": { "main": {
            "nodes": {
                "ingress": { "type": "urn:wasmtel:receiver:embedded" },
                "files": { "type": "urn:wasmtel:exporter:arrow_ipc", "config": config },
            },
            "connections": [{ "from": "ingress", "to": "files" }],
        }}}},
    })
}

fn batch(i: usize) -> Vec<u8> {
    let names: Vec<String> = (0..10).map(|j| format!("span {i}/{j}")).collect();
    traces(&names.iter().map(|n| (n.as_str(), vec![string_attr("k", "v")])).collect::<Vec<_>>()).encode_to_vec()
}

fn files(dir: &Path, signal: &str) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(signal))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().partition(|n| n.ends_with(".arrows"))
}

#[test]
fn files_rotate_by_size_and_every_row_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), json!({ "max_file_bytes": "2KiB" }))).unwrap();
    for i in 0..12 {
        pipeline.export_traces(batch(i)).unwrap();
    }
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    let (finished, partial) = files(dir.path(), "traces");
    assert!(partial.is_empty(), "shutdown finishes every file: {partial:?}");
    assert!(finished.len() >= 3, "2 KiB files rotate: {finished:?}");
    assert!(finished.iter().all(|n| n.starts_with("traces-0-")), "{finished:?}");
    let batches = read_signal(dir.path(), "traces");
    assert_eq!(rows(&batches), 120);
    // File-name order is write order.
    assert_eq!(strings(&batches, "name").first().cloned().flatten().as_deref(), Some("span 0/0"));
    assert_eq!(strings(&batches, "name").last().cloned().flatten().as_deref(), Some("span 11/9"));
}

#[test]
fn files_rotate_by_age_without_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = json!({ "max_file_age": "300ms", "check_interval": "50ms" });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), exporter)).unwrap();
    pipeline.export_traces(batch(0)).unwrap();
    let (finished, partial) = files(dir.path(), "traces");
    assert_eq!((finished.len(), partial.len()), (0, 1), "the open file is a .part");
    std::thread::sleep(Duration::from_millis(900));
    let (finished, partial) = files(dir.path(), "traces");
    assert_eq!((finished.len(), partial.len()), (1, 0), "aged out and finished by the timer");
    assert_eq!(rows(&read_signal(dir.path(), "traces")), 10, "readable before shutdown");
    pipeline.export_traces(batch(1)).unwrap();
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(files(dir.path(), "traces").0.len(), 2);
}

#[test]
fn retention_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = json!({ "max_file_bytes": "1B", "retention": { "max_files": 3 } });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), exporter)).unwrap();
    for i in 0..10 {
        pipeline.export_traces(batch(i)).unwrap();
    }
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    // One batch per file; only the last three survive.
    let (finished, _) = files(dir.path(), "traces");
    assert_eq!(finished.len(), 3, "{finished:?}");
    let names = strings(&read_signal(dir.path(), "traces"), "name");
    assert_eq!(names.first().cloned().flatten().as_deref(), Some("span 7/0"));
    assert_eq!(rows(&read_signal(dir.path(), "traces")), 30);
}

#[test]
fn retention_by_total_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = json!({ "max_file_bytes": "1B", "retention": { "max_total_bytes": "20KiB", "max_age": "1h" } });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), exporter)).unwrap();
    for i in 0..10 {
        pipeline.export_traces(batch(i)).unwrap();
    }
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    let total: u64 =
        std::fs::read_dir(dir.path().join("traces")).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    let kept = files(dir.path(), "traces").0.len();
    assert!(total <= 20 * 1024 && (1..10).contains(&kept), "{kept} files, {total} bytes kept");

    // Everything is older than a zero-length window: all finished files go.
    let dir = tempfile::tempdir().unwrap();
    let exporter = json!({ "max_file_bytes": "1B", "retention": { "max_age": "1ns" } });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), exporter)).unwrap();
    for i in 0..3 {
        pipeline.export_traces(batch(i)).unwrap();
    }
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(files(dir.path(), "traces").0.len(), 0);
}

#[test]
fn bad_exporter_config_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let error = EmbeddedPipeline::start(spec(dir.path(), json!({ "compression": "brotli" }))).err().unwrap();
    assert!(error.to_string().contains("brotli"), "{error}");
    let error = EmbeddedPipeline::start(spec(dir.path(), json!({ "max_file_age": "0s" }))).err().unwrap();
    assert!(error.to_string().contains("positive"), "{error}");
}

#[test]
fn zstd_compressed_files_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), json!({ "compression": "zstd" }))).unwrap();
    for i in 0..3 {
        pipeline.export_traces(batch(i)).unwrap();
    }
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(rows(&read_signal(dir.path(), "traces")), 30);
}

/// What the files promise to keep: IDs of any length as written (all-zero
/// ones too; only empty ones are null), timestamps as their raw nanoseconds
/// (`u64::MAX` and 0 included), and exemplars with their values, IDs and
/// filtered attributes.
#[test]
fn odd_ids_extreme_timestamps_and_exemplars_come_back_unchanged() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        exemplar, metric::Data, number_data_point,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

    let odd_trace = vec![1u8, 2, 3];
    let long_span = vec![9u8; 20];
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    Span {
                        name: "odd".into(),
                        trace_id: odd_trace.clone(),
                        span_id: long_span.clone(),
                        parent_span_id: vec![0; 8],
                        start_time_unix_nano: u64::MAX,
                        end_time_unix_nano: 1,
                        events: vec![
                            span::Event { time_unix_nano: u64::MAX - 1, name: "e1".into(), ..Default::default() },
                            span::Event { time_unix_nano: 0, name: "e2".into(), ..Default::default() },
                        ],
                        links: vec![span::Link { trace_id: vec![7; 5], span_id: vec![], ..Default::default() }],
                        ..Default::default()
                    },
                    Span { name: "unset".into(), ..Default::default() },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: u64::MAX,
                    observed_time_unix_nano: 0,
                    trace_id: vec![5; 17],
                    span_id: vec![6; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let exemplars = vec![
        Exemplar {
            time_unix_nano: u64::MAX,
            value: Some(exemplar::Value::AsDouble(2.5)),
            trace_id: vec![4; 16],
            span_id: vec![3; 3],
            filtered_attributes: vec![string_attr("user.id", "u1")],
        },
        Exemplar { time_unix_nano: 7, value: Some(exemplar::Value::AsInt(-3)), ..Default::default() },
    ];
    let metric = |name: &str, data| Metric { name: name.into(), data: Some(data), ..Default::default() };
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric(
                        "gauge",
                        Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                start_time_unix_nano: u64::MAX,
                                time_unix_nano: 0,
                                value: Some(number_data_point::Value::AsInt(1)),
                                exemplars: exemplars.clone(),
                                ..Default::default()
                            }],
                        }),
                    ),
                    metric(
                        "histogram",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                count: 1,
                                exemplars: exemplars[1..].to_vec(),
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };

    let dir = tempfile::tempdir().unwrap();
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), json!({}))).unwrap();
    pipeline.export_traces(spans.encode_to_vec()).unwrap();
    pipeline.export_logs(logs.encode_to_vec()).unwrap();
    pipeline.export_metrics(metrics.encode_to_vec()).unwrap();
    pipeline.shutdown(Duration::from_secs(30)).unwrap();

    let spans = read_signal(dir.path(), "traces");
    assert_eq!(ids(&spans, "trace_id"), [Some(odd_trace), None]);
    assert_eq!(ids(&spans, "span_id"), [Some(long_span), None]);
    assert_eq!(ids(&spans, "parent_span_id"), [Some(vec![0; 8]), None], "all-zero is written as is");
    assert_eq!(u64s(&spans, "start_time_unix_nano"), [u64::MAX, 0]);
    assert_eq!(u64s(&spans, "end_time_unix_nano"), [1, 0]);
    assert_eq!(
        list(&spans, "event_times_unix_nano", |a, i| a.as_primitive::<UInt64Type>().value(i)),
        [vec![u64::MAX - 1, 0], vec![]]
    );
    assert_eq!(list(&spans, "link_trace_ids", binary), [vec![Some(vec![7; 5])], vec![]]);
    assert_eq!(list(&spans, "link_span_ids", binary), [vec![None], vec![]]);

    let records = read_signal(dir.path(), "logs");
    assert_eq!(u64s(&records, "time_unix_nano"), [u64::MAX]);
    assert_eq!(u64s(&records, "observed_time_unix_nano"), [0]);
    assert_eq!(ids(&records, "trace_id"), [Some(vec![5; 17])]);
    assert_eq!(ids(&records, "span_id"), [Some(vec![6; 8])]);

    let points = read_signal(dir.path(), "metrics");
    assert_eq!(u64s(&points, "start_time_unix_nano"), [u64::MAX, 0]);
    assert_eq!(
        list(&points, "exemplar_times_unix_nano", |a, i| a.as_primitive::<UInt64Type>().value(i)),
        [vec![u64::MAX, 7], vec![7]]
    );
    let doubles =
        list(&points, "exemplar_values_double", |a, i| a.is_valid(i).then(|| a.as_primitive::<Float64Type>().value(i)));
    assert_eq!(doubles, [vec![Some(2.5), None], vec![None]]);
    let ints =
        list(&points, "exemplar_values_int", |a, i| a.is_valid(i).then(|| a.as_primitive::<Int64Type>().value(i)));
    assert_eq!(ints, [vec![None, Some(-3)], vec![Some(-3)]]);
    assert_eq!(list(&points, "exemplar_trace_ids", binary), [vec![Some(vec![4; 16]), None], vec![None]]);
    assert_eq!(list(&points, "exemplar_span_ids", binary), [vec![Some(vec![3; 3]), None], vec![None]]);
    let attributes = list(&points, "exemplar_filtered_attributes", |a, i| {
        let entries = a.as_map().value(i);
        let keys: Vec<String> = entries.column(0).as_string::<i32>().iter().flatten().map(String::from).collect();
        let values: Vec<String> = entries.column(1).as_string::<i32>().iter().flatten().map(String::from).collect();
        keys.into_iter().zip(values).collect::<Vec<_>>()
    });
    assert_eq!(attributes, [vec![vec![("user.id".to_string(), "u1".to_string())], vec![]], vec![vec![]]]);
}

fn u64s(batches: &[RecordBatch], column: &str) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| b.column_by_name(column).expect(column).as_primitive::<UInt64Type>().values().to_vec())
        .collect()
}

fn binary(array: &dyn Array, i: usize) -> Option<Vec<u8>> {
    array.is_valid(i).then(|| array.as_binary::<i32>().value(i).to_vec())
}

fn ids(batches: &[RecordBatch], column: &str) -> Vec<Option<Vec<u8>>> {
    batches
        .iter()
        .flat_map(|b| {
            let array = b.column_by_name(column).expect(column);
            (0..array.len()).map(|i| binary(array, i)).collect::<Vec<_>>()
        })
        .collect()
}

/// Each row's list in `column`, its items read by `item`.
fn list<T>(batches: &[RecordBatch], column: &str, item: impl Fn(&dyn Array, usize) -> T) -> Vec<Vec<T>> {
    batches
        .iter()
        .flat_map(|b| {
            let lists = b.column_by_name(column).expect(column).as_list::<i32>();
            (0..lists.len())
                .map(|row| {
                    let values = lists.value(row);
                    (0..values.len()).map(|i| item(values.as_ref(), i)).collect()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn one_span(i: usize) -> bytes::Bytes {
    traces(&[(format!("span {i}").as_str(), vec![])]).encode_to_vec().into()
}

/// Without the idle flush, one-span requests gather up to `max_rows` or
/// `flush_interval`: far fewer record batches than requests, every row there
/// after the interval (in the file being written) and after shutdown.
#[test]
fn gathered_requests_become_few_record_batches_and_every_row_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = json!({ "buffer": { "max_rows": 100, "flush_interval": "300ms", "when_idle": false } });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), buffer)).unwrap();
    for i in 0..250 {
        pipeline.submit(wasmtel_runtime::Signal::Traces, one_span(i)).unwrap();
    }
    let stats = pipeline.flush(Duration::from_secs(30)).unwrap();
    assert_eq!((stats.accepted, stats.refused), (250, 0));
    // The last 50 rows were written by the interval, before shutdown.
    assert_eq!(rows(&crate::support::read_signal_live(dir.path(), "traces")), 250);
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    let batches = read_signal(dir.path(), "traces");
    assert_eq!(rows(&batches), 250);
    assert!(batches.len() <= 5, "250 requests in {} record batches", batches.len());
    let mut names: Vec<String> = strings(&batches, "name").into_iter().flatten().collect();
    names.sort();
    let mut expected: Vec<String> = (0..250).map(|i| format!("span {i}")).collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// A batch is acknowledged only once its rows are written: below the limits
/// nothing is acknowledged and nothing is in the file; the request that
/// reaches `max_rows` writes and acknowledges all of them.
#[test]
fn nothing_is_acknowledged_before_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = json!({ "buffer": { "max_rows": 5, "flush_interval": "1h", "when_idle": false } });
    let pipeline = EmbeddedPipeline::start(spec(dir.path(), buffer)).unwrap();
    for i in 0..4 {
        pipeline.submit(wasmtel_runtime::Signal::Traces, one_span(i)).unwrap();
    }
    let waiting = pipeline.flush(Duration::from_millis(500));
    assert!(matches!(waiting, Err(wasmtel_dataflow::EmbeddedError::Timeout { in_flight: 4, .. })), "{waiting:?}");
    assert_eq!(pipeline.stats().accepted, 0);
    assert_eq!(rows(&crate::support::read_signal_live(dir.path(), "traces")), 0, "nothing written yet");
    pipeline.submit(wasmtel_runtime::Signal::Traces, one_span(4)).unwrap();
    let stats = pipeline.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(stats.accepted, 5);
    assert_eq!(rows(&crate::support::read_signal_live(dir.path(), "traces")), 5);
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(read_signal(dir.path(), "traces").len(), 1, "one record batch");
}

/// With the idle flush (the default), a lone sequential sender is not held
/// for `flush_interval`: its batch is written once nothing else is waiting.
#[test]
fn a_lone_sender_does_not_wait_for_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = json!({ "buffer": { "flush_interval": "1h" } });
    let pipeline = std::sync::Arc::new(EmbeddedPipeline::start(spec(dir.path(), buffer)).unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    let sender = pipeline.clone();
    std::thread::spawn(move || {
        for i in 0..3 {
            sender.export(wasmtel_runtime::Signal::Traces, one_span(i)).unwrap();
        }
        done.send(()).unwrap();
    });
    // An hour's interval would hold the first export for an hour.
    finished.recv_timeout(Duration::from_secs(60)).expect("acknowledged without waiting for the interval");
    assert_eq!(rows(&crate::support::read_signal_live(dir.path(), "traces")), 3);
}
