//! The Arrow IPC exporter's files: size and time rotation, retention, and
//! that every finished file is a complete stream.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::path::Path;
use std::time::Duration;

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
