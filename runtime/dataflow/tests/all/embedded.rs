//! The embedded API: a real otap-dataflow pipeline on its own thread, fed
//! OTLP bytes directly, running redact and filter components, writing Arrow
//! IPC files that are read back.

use std::time::Duration;

use prost::Message;
use serde_json::json;
use wasmtel_dataflow::{EmbeddedError, EmbeddedPipeline};
use wasmtel_runtime::Signal;
use wasmtel_tests::{component, gauge, logs, string_attr, traces};

use crate::support::{map_values, read_signal, rows, strings};

/// ingress → redact → filter → Arrow IPC files in `dir`.
pub(crate) fn spec(dir: &std::path::Path) -> serde_json::Value {
    json!({
        "version": "otel_dataflow/v1",
        "policies": { "resources": { "core_allocation": { "type": "core_count", "count": 1 } } },
        "groups": { "app": { "pipelines": { "main": {
            "nodes": {
                "ingress": { "type": "urn:wasmtel:receiver:embedded" },
                "redact": { "type": "urn:wasmtel:processor:wasm", "config": {
                    "component": component("wasmtel-redact"),
                    "config": { "keys": ["user.email"], "value_patterns": ["[\\w.+-]+@[\\w-]+\\.[\\w.]+"],
                                "action": "mask", "mask": "****", "log_bodies": true },
                    "output": "otlp",
                }},
                "filter": { "type": "urn:wasmtel:processor:wasm", "config": {
                    "component": component("wasmtel-filter"),
                    "config": { "spans": { "names": ["GET /health"] },
                                "logs": { "body_patterns": ["^healthcheck"] },
                                "data_points": { "metric_names": ["debug.heap"] } },
                }},
                "files": { "type": "urn:wasmtel:exporter:arrow_ipc", "config": { "directory": dir } },
            },
            "connections": [
                { "from": "ingress", "to": "redact" },
                { "from": "redact", "to": "filter" },
                { "from": "filter", "to": "files" },
            ],
        }}}},
    })
}

#[test]
fn embedded_pipeline_redacts_filters_and_writes_arrow_files() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = EmbeddedPipeline::start(spec(dir.path())).expect("pipeline starts");

    let email = string_attr("user.email", "ann@example.com");
    let spans = traces(&[("GET /a", vec![email.clone()]), ("GET /health", vec![])]).encode_to_vec();
    pipeline.export_traces(spans).expect("traces exported");
    let records = logs(&[("login by bob@example.com", vec![]), ("healthcheck ok", vec![])]).encode_to_vec();
    pipeline.export_logs(records).expect("logs exported");
    pipeline.export_metrics(gauge("http.requests", &[(3.0, vec![email.clone()])]).encode_to_vec()).expect("metrics");
    // A batch the filter drops entirely still completes successfully.
    pipeline.export_metrics(gauge("debug.heap", &[(1.0, vec![])]).encode_to_vec()).expect("dropped is accepted");
    // Fire-and-forget submissions are waited for by flush.
    for i in 0..20 {
        let batch = traces(&[(&format!("job {i}"), vec![email.clone()])]).encode_to_vec();
        pipeline.submit(Signal::Traces, batch.into()).expect("queued");
    }
    let stats = pipeline.flush(Duration::from_secs(30)).expect("flushed");
    assert_eq!((stats.accepted, stats.refused, stats.in_flight), (24, 0, 0));
    // Each wasm node's plugin metrics, read without an admin server.
    let plugins = pipeline.plugin_metrics();
    assert_eq!(plugins.keys().collect::<Vec<_>>(), ["filter", "redact"]);
    assert_eq!(plugins["redact"].calls, 24, "every batch entered redact");
    assert_eq!(plugins["redact"].replaced, 23, "all but the batch with nothing to mask");
    assert_eq!(plugins["filter"].calls, 24);
    assert_eq!(plugins["filter"].dropped, 1, "the debug.heap batch");

    let invalid = pipeline.export_traces(vec![0xff, 0xff, 0xff]);
    assert!(matches!(invalid, Err(EmbeddedError::InvalidInput { .. })), "{invalid:?}");

    let stats = pipeline.shutdown(Duration::from_secs(30)).expect("clean shutdown");
    assert_eq!(stats.accepted, 24);

    let spans = read_signal(dir.path(), "traces");
    assert_eq!(rows(&spans), 21);
    let names = strings(&spans, "name");
    assert!(names.contains(&Some("GET /a".into())));
    assert!(!names.contains(&Some("GET /health".into())), "filtered span written: {names:?}");
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
    assert_eq!(map_values(&spans, "resource_attributes", "service.name")[0].as_deref(), Some("checkout"));

    let records = read_signal(dir.path(), "logs");
    assert_eq!(strings(&records, "body"), [Some("login by ****".to_string())]);

    let points = read_signal(dir.path(), "metrics");
    assert_eq!(strings(&points, "metric_name"), [Some("http.requests".to_string())]);
    assert_eq!(map_values(&points, "attributes", "user.email"), [Some("****".to_string())]);
}

#[test]
fn a_spec_without_an_embedded_receiver_is_refused() {
    let error = EmbeddedPipeline::start(json!({ "version": "otel_dataflow/v1", "groups": {} })).err().unwrap();
    assert!(error.to_string().contains("urn:wasmtel:receiver:embedded"), "{error}");
}

#[test]
fn a_bad_component_fails_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    spec["groups"]["app"]["pipelines"]["main"]["nodes"]["redact"]["config"]["component"] = json!("/nonexistent/r.wasm");
    let error = EmbeddedPipeline::start(spec).err().expect("start fails");
    assert!(error.to_string().contains("/nonexistent/r.wasm"), "{error}");
}

/// One HTTP/1.1 GET naming `host`: (status line, body).
fn http_get(address: std::net::SocketAddr, host: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the dashboard listens");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

#[test]
fn an_embedded_pipeline_serves_the_dashboard_when_its_spec_asks() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_dashboard = spec(dir.path());
    with_dashboard["engine"] = json!({ "custom": { "wasmtel": { "dashboard": { "bind_address": "127.0.0.1:0" } } } });
    let pipeline = EmbeddedPipeline::start(with_dashboard).expect("pipeline starts");
    let address = pipeline.dashboard_address().expect("a dashboard address");
    let email = string_attr("user.email", "ann@example.com");
    for i in 0..3 {
        pipeline.export_traces(traces(&[(&format!("job {i}"), vec![email.clone()])]).encode_to_vec()).unwrap();
    }

    let host = address.to_string();
    let (status_line, page) = http_get(address, &host, "/dashboard/");
    assert!(status_line.contains("200") && page.contains("dashboard.js"), "{status_line}");
    let (_, body) = http_get(address, &host, "/api/wasmtel/v1/status");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pipeline_status = &status["pipelines"][0];
    assert_eq!(pipeline_status["id"], "app/main");
    let nodes: Vec<_> = pipeline_status["processors"].as_array().unwrap().iter().map(|p| p["node"].clone()).collect();
    assert_eq!(nodes, [json!("redact"), json!("filter")], "flow order");
    assert_eq!(pipeline_status["processors"][0]["metrics"]["calls"], 3);
    let recent = &pipeline_status["recent"]["traces"];
    assert_eq!(recent["node"], "filter", "as they left the last processor");
    let records = recent["records"]["Ok"].to_string();
    // Kept at most once a second per signal: the first batch here.
    assert!(records.contains("job 0") && records.contains("****") && !records.contains("ann@"), "{records}");
    let files = &pipeline_status["exporters"][0]["signals"]["traces"];
    assert_eq!(files["rows_written"], 3, "{files}");
    // Only this address's own Host is answered (no DNS rebinding), and only reads.
    let (refused, _) = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(stream, "GET /api/wasmtel/v1/status HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        (response.lines().next().unwrap_or_default().to_string(), ())
    };
    assert!(refused.contains("403"), "{refused}");
    // The same status in-process.
    assert_eq!(pipeline.status().pipelines[0].processors.len(), 2);
    pipeline.shutdown(Duration::from_secs(30)).unwrap();

    // A dashboard address that cannot be served stops the start, naming it.
    let mut bad = spec(dir.path());
    bad["engine"] = json!({ "custom": { "wasmtel": { "dashboard": { "bind_address": "localhost:dashboard" } } } });
    let error = EmbeddedPipeline::start(bad).err().expect("start fails").to_string();
    assert!(error.contains("dashboard") && error.contains("localhost:dashboard"), "{error}");

    // Records are telemetry: a spec can keep them off the dashboard.
    let mut quiet = spec(dir.path());
    quiet["engine"] =
        json!({ "custom": { "wasmtel": { "dashboard": { "bind_address": "127.0.0.1:0", "records": false } } } });
    let pipeline = EmbeddedPipeline::start(quiet).expect("pipeline starts");
    pipeline.export_traces(traces(&[("job", vec![email.clone()])]).encode_to_vec()).unwrap();
    let status = pipeline.status();
    assert!(status.pipelines[0].recent.is_empty());
    assert_eq!(status.pipelines[0].processors[0].metrics.calls, 1);
    // Closed: its board is gone, and the dashboard still running shows nothing of it.
    pipeline.close(Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert!(pipeline.status().pipelines.is_empty());
}

#[test]
fn an_empty_replaced_output_is_never_the_dashboard_s_newest_batch() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({
        "version": "otel_dataflow/v1",
        "engine": { "custom": { "wasmtel": { "dashboard": { "bind_address": "127.0.0.1:0" } } } },
        "policies": { "resources": { "core_allocation": { "type": "core_count", "count": 1 } } },
        "groups": { "app": { "pipelines": { "main": {
            "nodes": {
                "ingress": { "type": "urn:wasmtel:receiver:embedded" },
                "hostile": { "type": "urn:wasmtel:processor:wasm", "config": {
                    "component": component("wasmtel-test-hostile"), "output": "otlp" } },
                "files": { "type": "urn:wasmtel:exporter:arrow_ipc", "config": { "directory": dir.path() } },
            },
            "connections": [ { "from": "ingress", "to": "hostile" }, { "from": "hostile", "to": "files" } ],
        }}}},
    });
    let pipeline = EmbeddedPipeline::start(spec).expect("pipeline starts");
    // Completes like a drop, and is not what the dashboard keeps: the batch
    // after it (within the dashboard's once-a-second sampling) is.
    pipeline.export_traces(wasmtel_tests::span_named("empty-output")).expect("accepted");
    pipeline.export_traces(traces(&[("job after the empty one", vec![])]).encode_to_vec()).unwrap();
    let status = pipeline.status();
    let recent = serde_json::to_value(&status.pipelines[0].recent).unwrap();
    let records = recent["traces"]["records"]["Ok"].to_string();
    assert!(records.contains("job after the empty one"), "{recent}");
    assert_eq!(status.pipelines[0].processors[0].metrics.calls, 2);
    pipeline.shutdown(Duration::from_secs(30)).unwrap();
}

/// The engine's admin API (no authentication in 0.62: shut down, replace
/// pipelines) must not listen unless the spec asks for it.
#[test]
fn an_embedded_pipeline_opens_no_admin_port() {
    let listening = || -> std::collections::BTreeSet<String> {
        // The inodes of this process's sockets, then those of them in LISTEN state.
        let ours: std::collections::BTreeSet<String> = std::fs::read_dir("/proc/self/fd")
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .flat_map(|table| table.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // st 0A is LISTEN; field 9 the inode.
                (fields.get(3) == Some(&"0A") && fields.get(9).is_some_and(|inode| ours.contains(*inode)))
                    .then(|| fields[1].to_string())
            })
            .collect()
    };
    let before = listening();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = EmbeddedPipeline::start(spec(dir.path())).expect("pipeline starts");
    // The controller starts its admin server after the pipelines: watch for
    // a while. Other tests of this binary may open listeners meanwhile (the
    // dashboard): none of the new ones may answer as the engine's admin API.
    let watch_until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < watch_until {
        for local in listening().difference(&before) {
            let port = local.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok()).unwrap_or(0);
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if std::net::TcpStream::connect(address).is_ok() {
                let (status, body) = http_get(address, &address.to_string(), "/api/v1/groups/status");
                let head: String = body.chars().take(120).collect();
                assert!(!status.contains(" 200 "), "the engine's admin API answers on {address}: {head}");
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    pipeline.shutdown(Duration::from_secs(30)).expect("a clean shutdown, the missing admin server not an error");
}
