//! Sustained throughput of `wasmtel serve`: OTLP/gRPC in → (wasm redact) →
//! Arrow IPC files, against the same pipeline without the wasm node (the
//! engine's ceiling on this machine), measured in the same run; the server's
//! peak RSS and CPU time for each.
//!
//! `scripts/build-components.sh && cargo bench -p wasmtel-cli --bench serve_throughput`
//! Knobs: WASMTEL_BENCH_SECS (15), WASMTEL_BENCH_WARMUP_SECS (3),
//! WASMTEL_BENCH_CONCURRENCY (8 concurrent exports), WASMTEL_BENCH_SPANS (100 per batch),
//! WASMTEL_BENCH_ONLY=buffer (only the Arrow IPC exporter's gathering against per-request writes),
//! WASMTEL_BENCH_WAIT_FOR_RESULT=false (the receiver answers on receipt, not once written).

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::trace::v1 as trace_pb;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};
use wasmtel_tests::{component, string_attr, traces};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A batch like a web service's: HTTP attributes, some of them personal data.
fn batch(spans: usize) -> ExportTraceServiceRequest {
    let attrs = |i: usize| -> Vec<KeyValue> {
        vec![
            string_attr("http.request.method", if i.is_multiple_of(3) { "POST" } else { "GET" }),
            string_attr("http.route", &format!("/api/v1/orders/{}", i % 17)),
            string_attr("url.full", &format!("https://shop.example.com/api/v1/orders/{i}?ref=mail")),
            string_attr("user.email", &format!("customer{i}@example.com")),
            string_attr("customer.phone", "+1 555 0100 200"),
            string_attr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
            string_attr("server.address", "orders-7f9c6d-abcde"),
            string_attr("note", &format!("order placed by customer{i}@example.com via web")),
        ]
    };
    let named: Vec<(String, Vec<KeyValue>)> =
        (0..spans).map(|i| (format!("GET /api/v1/orders/{}", i % 17), attrs(i))).collect();
    let borrowed: Vec<(&str, Vec<KeyValue>)> = named.iter().map(|(n, a)| (n.as_str(), a.clone())).collect();
    traces(&borrowed)
}

struct Run {
    name: &'static str,
    spans_per_s: f64,
    mb_per_s: f64,
    peak_rss_mb: f64,
    cpu_s: f64,
    elapsed_s: f64,
    errors: u64,
    /// Time in the guest per batch, from the node's metrics (µs).
    guest_us: Option<f64>,
    /// What the Arrow IPC exporter wrote over the whole run (warm-up included).
    written: Written,
}

/// The `wasmtel.exporter.arrow_ipc` totals of a run.
#[derive(Default)]
struct Written {
    record_batches: f64,
    acknowledged: f64,
    mib: f64,
    files: f64,
}

/// The wasm node under test: component, guest config, output form.
struct Wasm {
    component: &'static str,
    config: Value,
    output: &'static str,
}

fn spec(grpc: u16, admin: u16, data: &Path, wasm: Option<&Wasm>, buffer: &Value) -> Value {
    let mut nodes = json!({
        "otlp": { "type": "receiver:otlp", "config": { "protocols": { "grpc": {
            "listening_addr": format!("127.0.0.1:{grpc}"),
            "wait_for_result": std::env::var("WASMTEL_BENCH_WAIT_FOR_RESULT").as_deref() != Ok("false") } } } },
        "files": { "type": "urn:wasmtel:exporter:arrow_ipc", "config": {
            "directory": data, "max_file_bytes": "64MiB", "max_file_age": "10s", "retention": { "max_files": 2 },
            "buffer": buffer } },
    });
    let connections = match wasm {
        None => json!([{ "from": "otlp", "to": "files" }]),
        Some(wasm) => {
            nodes["redact"] = json!({ "type": "urn:wasmtel:processor:wasm", "config": {
                "component": component(wasm.component),
                "config": wasm.config,
                "output": wasm.output,
            }});
            json!([{ "from": "otlp", "to": "redact" }, { "from": "redact", "to": "files" }])
        }
    };
    json!({
        "version": "otel_dataflow/v1",
        "engine": { "http_admin": { "bind_address": format!("127.0.0.1:{admin}") } },
        "policies": { "resources": { "core_allocation": { "type": "core_count", "count": 1 } } },
        "groups": { "bench": { "pipelines": { "main": { "nodes": nodes, "connections": connections } } } },
    })
}

/// VmHWM (peak RSS) in MiB and user+system CPU seconds of a process.
fn process_stats(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field overall.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let clock_ticks = 100.0; // USER_HZ on Linux
    (hwm_kb / 1024.0, (ticks(11) + ticks(12)) / clock_ticks)
}

/// The admin API's metric sets (JSON).
fn admin_metrics(admin: u16) -> Option<Value> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", admin)).ok()?;
    // The admin guard of `serve` answers only requests addressed to it (Host with its port).
    let request = format!(
        "GET /api/v1/telemetry/metrics?format=json HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}

/// The metrics of every set named `set`.
fn metrics_of<'a>(body: &'a Value, set: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    body["metric_sets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |s| s["name"] == set)
        .flat_map(|s| s["metrics"].as_array().into_iter().flatten())
}

/// Mean time a batch spent in the plugin (`wasmtel.plugin.duration`, a
/// histogram per signal and outcome).
fn guest_us_per_batch(body: &Value) -> Option<f64> {
    let (mut seconds, mut batches) = (0.0, 0.0);
    for metric in metrics_of(body, "wasmtel.plugin.duration") {
        seconds += metric["value"]["sum"].as_f64().unwrap_or(0.0);
        batches += metric["value"]["count"].as_f64().unwrap_or(0.0);
    }
    (batches > 0.0).then(|| seconds / batches * 1e6)
}

fn written(body: &Value) -> Written {
    let total = |name: &str| {
        metrics_of(body, "wasmtel.exporter.arrow_ipc")
            .filter(|m| m["name"] == name)
            .map(|m| m["value"].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    Written {
        record_batches: total("batches"),
        acknowledged: total("acknowledged"),
        mib: total("bytes") / (1024.0 * 1024.0),
        files: total("files.finished"),
    }
}

fn run(
    name: &'static str,
    wasm: Option<&Wasm>,
    buffer: Value,
    request: &trace_pb::ExportTraceServiceRequest,
    spans: u64,
) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let (grpc, admin) = (free_port(), free_port());
    let config = dir.path().join("pipeline.yaml");
    std::fs::write(&config, spec(grpc, admin, &dir.path().join("data"), wasm, &buffer).to_string()).unwrap();
    let mut child: Child = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("serve.log")).unwrap()))
        .spawn()
        .expect("wasmtel serve");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(120), "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let secs = env_or("WASMTEL_BENCH_SECS", 15);
    let warmup = env_or("WASMTEL_BENCH_WARMUP_SECS", 3);
    let concurrency = env_or("WASMTEL_BENCH_CONCURRENCY", 8);
    let bytes_per_batch = request.encoded_len() as u64;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (batches, errors, elapsed, cpu_during) = rt.block_on(async {
        let client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await.expect("connect");
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (mut client, request) = (client.clone(), request.clone());
            let (measuring, stop, done, errors) = (measuring.clone(), stop.clone(), done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = client.export(request.clone()).await.is_ok();
                    if measuring.load(Ordering::Relaxed) {
                        if ok {
                            done.fetch_add(1, Ordering::Relaxed)
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed)
                        };
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        let cpu_before = process_stats(child.id()).1;
        measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        let cpu_during = process_stats(child.id()).1 - cpu_before;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed), elapsed, cpu_during)
    });
    let (peak_rss_mb, _) = process_stats(child.id());
    // Plugin totals are reported every telemetry interval (1 s by default).
    std::thread::sleep(Duration::from_millis(1500));
    let body = admin_metrics(admin).unwrap_or_default();
    let guest_us = wasm.and_then(|_| guest_us_per_batch(&body));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let elapsed_s = elapsed.as_secs_f64();
    Run {
        name,
        spans_per_s: (batches * spans) as f64 / elapsed_s,
        mb_per_s: (batches * bytes_per_batch) as f64 / elapsed_s / 1e6,
        peak_rss_mb,
        cpu_s: cpu_during,
        elapsed_s,
        errors,
        guest_us,
        written: written(&body),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let spans = env_or("WASMTEL_BENCH_SPANS", 100);
    let request: trace_pb::ExportTraceServiceRequest =
        trace_pb::ExportTraceServiceRequest::decode(batch(spans as usize).encode_to_vec().as_slice()).expect("retype");
    println!(
        "serve_throughput: {} spans/batch, {} B/batch OTLP, {} concurrent exports, 1 pipeline core, {} cpus",
        spans,
        request.encoded_len(),
        env_or("WASMTEL_BENCH_CONCURRENCY", 8),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let defaults = json!({});
    let buffer_runs = [
        run("ceiling, per-request writes (max_rows: 1)", None, json!({ "max_rows": 1 }), &request, spans),
        run("ceiling, gathered (buffer defaults)", None, defaults.clone(), &request, spans),
    ];
    if std::env::var("WASMTEL_BENCH_ONLY").as_deref() != Ok("buffer") {
        wasm_runs(&request, spans, buffer_runs[1].spans_per_s);
    }
    println!(
        "\n{:<44} {:>10} {:>7} {:>15} {:>14} {:>12} {:>8} {:>13}",
        "arrow_ipc writes",
        "spans/s",
        "ratio",
        "record batches",
        "incoming/batch",
        "written MiB",
        "files",
        "peak RSS MiB"
    );
    for r in &buffer_runs {
        let w = &r.written;
        println!(
            "{:<44} {:>10.0} {:>7.3} {:>15.0} {:>14.1} {:>12.0} {:>8.0} {:>13.1}",
            r.name,
            r.spans_per_s,
            r.spans_per_s / buffer_runs[0].spans_per_s,
            w.record_batches,
            w.acknowledged / w.record_batches.max(1.0),
            w.mib,
            w.files,
            r.peak_rss_mb
        );
    }
}

/// The wasm pipelines against the engine's ceiling (`ceiling`: spans/s of the gathered ceiling run).
fn wasm_runs(request: &trace_pb::ExportTraceServiceRequest, spans: u64, ceiling: f64) {
    let redact_full = json!({ "keys": ["user.email", "customer.phone"],
                              "value_patterns": ["[\\w.+-]+@[\\w-]+\\.[\\w.]+"], "action": "mask" });
    let redact_keys = json!({ "keys": ["user.email", "customer.phone"], "action": "mask" });
    let defaults = json!({});
    let runs = [
        run(
            "identity unchanged (output: otlp)",
            Some(&Wasm { component: "wasmtel-test-identity", config: json!({ "mode": "unchanged" }), output: "otlp" }),
            defaults.clone(),
            request,
            spans,
        ),
        run(
            "redact keys only (output: otlp)",
            Some(&Wasm { component: "wasmtel-redact", config: redact_keys, output: "otlp" }),
            defaults.clone(),
            request,
            spans,
        ),
        run(
            "redact keys + email pattern (output: otlp)",
            Some(&Wasm { component: "wasmtel-redact", config: redact_full.clone(), output: "otlp" }),
            defaults.clone(),
            request,
            spans,
        ),
        run(
            "redact keys + email pattern (output: otap)",
            Some(&Wasm { component: "wasmtel-redact", config: redact_full, output: "otap" }),
            defaults,
            request,
            spans,
        ),
    ];
    println!(
        "{:<44} {:>10} {:>8} {:>7} {:>13} {:>14} {:>15} {:>7}",
        "pipeline (otlp in -> [wasm] -> arrow_ipc)",
        "spans/s",
        "MB/s",
        "ratio",
        "peak RSS MiB",
        "server CPU s",
        "guest µs/batch",
        "errors"
    );
    for r in &runs {
        println!(
            "{:<44} {:>10.0} {:>8.2} {:>7.3} {:>13.1} {:>9.1}/{:<4.0} {:>15} {:>7}",
            r.name,
            r.spans_per_s,
            r.mb_per_s,
            r.spans_per_s / ceiling,
            r.peak_rss_mb,
            r.cpu_s,
            r.elapsed_s,
            r.guest_us.map_or("-".to_string(), |us| format!("{us:.0}")),
            r.errors
        );
    }
}
