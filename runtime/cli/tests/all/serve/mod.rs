//! `wasmtel serve` end to end: the real binary, OTLP over gRPC in, the Arrow
//! IPC files read back with `arrow`; forwarding to a second `wasmtel serve`
//! through retry and the circuit breaker while it is down and after it
//! returns; a graceful shutdown drains what is in flight.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::logs::v1 as logs_pb;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::logs::v1::logs_service_client::LogsServiceClient;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::metrics::v1 as metrics_pb;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::trace::v1 as trace_pb;
use otel_arrow_dfe_pdata::proto::opentelemetry::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};
use wasmtel_tests::hostile_otlp::Expect;
use wasmtel_tests::{component, gauge, logs, string_attr, traces};

#[path = "../../../../dataflow/tests/all/support/mod.rs"]
mod support;
use support::{map_values, read_signal, rows, strings};

mod dashboard;
mod tls;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A running `wasmtel serve`; killed if the test ends without stopping it.
struct Serve {
    child: Option<Child>,
    log: PathBuf,
    admin: u16,
}

impl Serve {
    fn start(dir: &Path, name: &str, spec: &Value, wait_port: u16) -> Serve {
        Serve::start_with(dir, name, spec, wait_port, &[])
    }

    fn start_with(dir: &Path, name: &str, spec: &Value, wait_port: u16, args: &[&str]) -> Serve {
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, serde_json::to_string_pretty(spec).unwrap()).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
            .args(["serve", "--config"])
            .arg(&config)
            .args(args)
            .env("WASMTEL_HOME", dir.join("home"))
            .stdout(Stdio::from(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("wasmtel serve starts");
        let admin = spec["engine"]["http_admin"]["bind_address"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("admin port");
        let mut serve = Serve { child: Some(child), log, admin };
        serve.wait_listening(wait_port);
        serve
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("wasmtel serve exited with {status} before listening:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "not listening on {port}:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits for the graceful drain to finish.
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "wasmtel serve exited with {status}:\n{}", self.logs());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("wasmtel serve did not stop after SIGTERM:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The current metric sets from the admin API.
    fn metrics(&self) -> Value {
        let path = "/api/v1/telemetry/metrics?format=json&keep_all_zeroes=true";
        let (_, body) = self.admin_request("GET", path, &[]).unwrap_or_default();
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// One HTTP/1.1 request to the admin address: (status, body).
    fn admin_request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.admin)).ok()?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n", self.admin);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Some((status, body.to_string()))
    }

    fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().ok().flatten().is_none())
    }

    /// A metric of a metric set, summed over the set's instances.
    fn metric(&self, set: &str, metric: &str) -> Option<f64> {
        let metrics = self.metrics();
        let sets = metrics["metric_sets"].as_array()?;
        let values: Vec<f64> = sets
            .iter()
            .filter(|s| s["name"] == set)
            .flat_map(|s| s["metrics"].as_array().cloned().unwrap_or_default())
            .filter(|m| m["name"] == metric)
            .filter_map(|m| m["value"].as_f64())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn engine(admin: u16) -> Value {
    json!({
        "http_admin": { "bind_address": format!("127.0.0.1:{admin}") },
        "telemetry": { "reporting_interval": "250ms" },
    })
}

fn one_core() -> Value {
    json!({ "resources": { "core_allocation": { "type": "core_count", "count": 1 } } })
}

/// A one-core `serve` spec with one pipeline whose nodes are connected in the order given.
fn chain(admin: u16, nodes: &[(&str, Value)]) -> Value {
    let connections: Vec<Value> = nodes.windows(2).map(|pair| json!({ "from": pair[0].0, "to": pair[1].0 })).collect();
    let nodes: serde_json::Map<String, Value> =
        nodes.iter().map(|(name, node)| (name.to_string(), node.clone())).collect();
    json!({
        "version": "otel_dataflow/v1",
        "engine": engine(admin),
        "policies": one_core(),
        "groups": { "default": { "pipelines": { "main": { "nodes": nodes, "connections": connections } } } },
    })
}

fn otlp_receiver(port: u16, wait_for_result: bool) -> Value {
    json!({ "type": "receiver:otlp", "config": { "protocols": { "grpc": {
        "listening_addr": format!("127.0.0.1:{port}"), "wait_for_result": wait_for_result,
    }}}})
}

fn arrow_files(dir: &Path) -> Value {
    json!({ "type": "urn:wasmtel:exporter:arrow_ipc", "config": {
        "directory": dir, "max_file_bytes": "4KiB", "max_file_age": "1m",
    }})
}

fn redact() -> Value {
    json!({ "type": "urn:wasmtel:processor:wasm", "config": {
        "component": component("wasmtel-redact"),
        "config": { "keys": ["user.email"], "value_patterns": ["[\\w.+-]+@[\\w-]+\\.[\\w.]+"],
                    "action": "mask", "mask": "****", "log_bodies": true },
        "output": "otlp",
    }})
}

fn filter() -> Value {
    json!({ "type": "urn:wasmtel:processor:wasm", "config": {
        "component": component("wasmtel-filter"),
        "config": { "spans": { "names": ["GET /health"] },
                    "logs": { "body_patterns": ["^healthcheck"] },
                    "data_points": { "metric_names": ["debug.heap"] } },
    }})
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Re-types an OTLP request for the engine crate's generated gRPC clients.
fn retype<T: Message + Default>(request: &impl Message) -> T {
    T::decode(request.encode_to_vec().as_slice()).expect("same protobuf")
}

async fn send_traces(port: u16, request: &ExportTraceServiceRequest) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{port}")).await.expect("connect");
    client.export(retype::<trace_pb::ExportTraceServiceRequest>(request)).await.map(|_| ())
}

fn spans(names: &[String]) -> ExportTraceServiceRequest {
    let email = string_attr("user.email", "ann@example.com");
    traces(&names.iter().map(|n| (n.as_str(), vec![email.clone()])).collect::<Vec<_>>())
}

#[test]
fn serve_redacts_and_filters_all_three_signals_into_arrow_files() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let out = dir.path().join("data");
    let spec = chain(
        admin,
        &[
            ("otlp", otlp_receiver(grpc, true)),
            ("redact", redact()),
            ("filter", filter()),
            ("files", arrow_files(&out)),
        ],
    );
    let serve = Serve::start(dir.path(), "serve", &spec, grpc);

    let email = string_attr("user.email", "ann@example.com");
    runtime().block_on(async {
        for batch in 0..10 {
            let names = vec![format!("GET /a/{batch}"), "GET /health".to_string(), format!("POST /b/{batch}")];
            send_traces(grpc, &spans(&names)).await.expect("traces accepted");
        }
        let mut logs_client = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await.unwrap();
        let records = logs(&[("login by bob@example.com", vec![email.clone()]), ("healthcheck ok", vec![])]);
        logs_client.export(retype::<logs_pb::ExportLogsServiceRequest>(&records)).await.expect("logs accepted");
        let mut metrics_client = MetricsServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await.unwrap();
        let points = gauge("http.requests", &[(3.0, vec![email.clone()]), (4.0, vec![])]);
        metrics_client.export(retype::<metrics_pb::ExportMetricsServiceRequest>(&points)).await.expect("metrics");
        let dropped = gauge("debug.heap", &[(1.0, vec![])]);
        metrics_client.export(retype::<metrics_pb::ExportMetricsServiceRequest>(&dropped)).await.expect("dropped ok");
    });
    // The plugin metrics under the names the Go processor uses: 13 batches
    // reached redact, and filter saw what redact passed on.
    let calls_reported = wait_for(Duration::from_secs(10), || {
        serve.metric("wasmtel.plugin", "wasmtel.plugin.calls").is_some_and(|calls| calls >= 13.0)
    });
    assert!(calls_reported, "wasmtel.plugin.calls: {:?}", serve.metric("wasmtel.plugin", "wasmtel.plugin.calls"));
    let outcomes = serve.metric("wasmtel.plugin.outcomes", "wasmtel.plugin.outcomes").unwrap_or_default();
    assert!(outcomes >= 13.0, "outcomes over every `outcome`: {outcomes}");
    let durations = serve.metrics()["metric_sets"].as_array().cloned().unwrap_or_default();
    let timed = durations
        .iter()
        .filter(|set| set["name"] == "wasmtel.plugin.duration")
        .flat_map(|set| set["metrics"].as_array().cloned().unwrap_or_default())
        .any(|metric| metric["value"]["count"].as_u64().is_some_and(|count| count > 0));
    assert!(timed, "no wasmtel.plugin.duration observations: {durations:?}");
    // The exporter's own metrics: 13 incoming batches reached it (the dropped one did not).
    let written = wait_for(Duration::from_secs(10), || {
        serve.metric("wasmtel.exporter.arrow_ipc", "acknowledged").is_some_and(|acked| acked >= 12.0)
    });
    assert!(written, "wasmtel.exporter.arrow_ipc: {:?}", serve.metric("wasmtel.exporter.arrow_ipc", "acknowledged"));
    let rows_written = serve.metric("wasmtel.exporter.arrow_ipc", "rows").unwrap_or_default();
    assert_eq!(rows_written, 23.0, "20 spans, 1 log record, 2 data points");
    serve.stop();

    let spans = read_signal(&out, "traces");
    assert_eq!(rows(&spans), 20, "10 batches × 2 spans kept");
    let names = strings(&spans, "name");
    assert!(!names.contains(&Some("GET /health".into())), "the filtered span was written");
    assert!(names.contains(&Some("GET /a/0".into())) && names.contains(&Some("POST /b/9".into())));
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
    let traces_dir = std::fs::read_dir(out.join("traces")).unwrap().count();
    assert!(traces_dir > 1, "4 KiB files rotate: {traces_dir} file(s)");

    let records = read_signal(&out, "logs");
    assert_eq!(strings(&records, "body"), [Some("login by ****".to_string())]);
    assert_eq!(map_values(&records, "attributes", "user.email"), [Some("****".to_string())]);

    let points = read_signal(&out, "metrics");
    assert_eq!(strings(&points, "metric_name"), [Some("http.requests".into()), Some("http.requests".into())]);
    assert_eq!(map_values(&points, "attributes", "user.email"), [Some("****".into()), None]);
    // Nothing was left half-written.
    for signal in ["traces", "logs", "metrics"] {
        for entry in std::fs::read_dir(out.join(signal)).unwrap().flatten() {
            assert!(entry.path().extension().is_some_and(|e| e == "arrows"), "{}", entry.path().display());
        }
    }
}

#[test]
fn sigterm_drains_batches_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let out = dir.path().join("data");
    // The receiver answers before the batch is processed, and each batch
    // spends 150 ms in a guest that loops until its time limit (then
    // `on_error: pass` forwards it): at SIGTERM most batches are in flight.
    let slow = json!({ "type": "urn:wasmtel:processor:wasm", "config": {
        "component": component("wasmtel-test-hostile"),
        "limits": { "timeout": "150ms" },
        "on_error": "pass",
    }});
    let spec = chain(admin, &[("otlp", otlp_receiver(grpc, false)), ("slow", slow), ("files", arrow_files(&out))]);
    let serve = Serve::start(dir.path(), "serve", &spec, grpc);
    let sent = runtime().block_on(async {
        let mut accepted = 0;
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await.unwrap();
        for batch in 0..12 {
            let mut names: Vec<String> = (0..20).map(|i| format!("span {batch}/{i}")).collect();
            names.push("loop".into());
            if client.export(retype::<trace_pb::ExportTraceServiceRequest>(&spans(&names))).await.is_ok() {
                accepted += names.len();
            }
        }
        accepted
    });
    assert_eq!(sent, 12 * 21);
    let written_at_sigterm = rows(&support::read_signal_live(&out, "traces"));
    assert!(written_at_sigterm < sent, "nothing was in flight at SIGTERM ({written_at_sigterm} of {sent} written)");
    serve.stop();
    assert_eq!(rows(&read_signal(&out, "traces")), sent, "every accepted span reached the files");
}

#[test]
fn forwarding_survives_a_downstream_outage_through_the_circuit_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let (a_grpc, a_admin, b_grpc, b_admin) = (free_port(), free_port(), free_port(), free_port());
    let out = dir.path().join("b-data");
    let forwarder = chain(
        a_admin,
        &[
            ("otlp", otlp_receiver(a_grpc, false)),
            ("redact", redact()),
            (
                "retry",
                json!({ "type": "processor:retry", "config": {
                    "initial_interval": "200ms", "max_interval": "1s", "max_elapsed_time": "120s", "multiplier": 2.0 } }),
            ),
            (
                "breaker",
                json!({ "type": "urn:wasmtel:processor:circuit_breaker", "config": {
                    "failure_threshold": 3, "open_duration": "1s" } }),
            ),
            (
                "forward",
                json!({ "type": "exporter:otlp_grpc", "config": {
                    "grpc_endpoint": format!("http://127.0.0.1:{b_grpc}"), "connect_timeout": "500ms" } }),
            ),
        ],
    );
    let receiver = chain(b_admin, &[("otlp", otlp_receiver(b_grpc, true)), ("files", arrow_files(&out))]);

    let a = Serve::start(dir.path(), "a", &forwarder, a_grpc);
    let send = |from: usize, to: usize| {
        runtime().block_on(async {
            for batch in from..to {
                send_traces(a_grpc, &spans(&[format!("batch {batch}")])).await.expect("A accepts");
            }
        })
    };
    // B is down: exports fail, the breaker opens and A's retry keeps the batches.
    send(0, 5);
    let opened = wait_for(Duration::from_secs(60), || {
        a.metric("wasmtel.processor.circuit_breaker", "opened.total").is_some_and(|v| v >= 1.0)
    });
    assert!(opened, "the circuit never opened:\n{}", a.logs());
    // Open (1), or half-open (2) while a probe fails again; never closed while B is down.
    let state = a.metric("wasmtel.processor.circuit_breaker", "state");
    assert!(matches!(state, Some(s) if s == 1.0 || s == 2.0), "state {state:?} while B is down");
    // While B stays down, the half-open probe fails and the circuit reopens.
    let reopened = wait_for(Duration::from_secs(60), || {
        a.metric("wasmtel.processor.circuit_breaker", "opened.total").is_some_and(|v| v >= 2.0)
    });
    assert!(reopened, "a failed probe did not reopen the circuit:\n{}", a.logs());
    assert!(a.logs().contains("wasmtel.circuit_breaker.half_open"));

    // B comes back: the next probe succeeds and the circuit closes.
    let b = Serve::start(dir.path(), "b", &receiver, b_grpc);
    let closed = wait_for(Duration::from_secs(60), || {
        a.metric("wasmtel.processor.circuit_breaker", "closed.total").is_some_and(|v| v >= 1.0)
            && a.metric("wasmtel.processor.circuit_breaker", "state") == Some(0.0)
    });
    assert!(closed, "the circuit never closed:\n{}", a.logs());
    send(5, 10);

    // The retried batches and the new ones all reach B (its open file is
    // readable up to the last flushed batch) before A is stopped.
    let delivered = wait_for(Duration::from_secs(90), || batch_names(&out, true).len() == 10);
    assert!(delivered, "B has {:?}:\nA:\n{}", batch_names(&out, true), a.logs());
    a.stop();
    b.stop();
    let expected: std::collections::BTreeSet<String> = (0..10).map(|b| format!("batch {b}")).collect();
    assert_eq!(batch_names(&out, false), expected, "no batch lost across the outage");
    let spans = read_signal(&out, "traces");
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
}

/// Distinct span names in B's files (optionally including the file being written).
fn batch_names(out: &Path, with_open_file: bool) -> std::collections::BTreeSet<String> {
    let batches = if with_open_file { support::read_signal_live(out, "traces") } else { read_signal(out, "traces") };
    strings(&batches, "name").into_iter().flatten().collect()
}

#[test]
fn otap_out_of_one_serve_into_another() {
    let dir = tempfile::tempdir().unwrap();
    let (a_grpc, a_admin, b_otap, b_admin) = (free_port(), free_port(), free_port(), free_port());
    let out = dir.path().join("b-data");
    let mut redact_otap = redact();
    redact_otap["config"]["output"] = json!("otap");
    let a_spec = chain(
        a_admin,
        &[
            ("otlp", otlp_receiver(a_grpc, false)),
            ("redact", redact_otap),
            (
                "forward",
                json!({ "type": "exporter:otap", "config": { "grpc_endpoint": format!("http://127.0.0.1:{b_otap}") } }),
            ),
        ],
    );
    let b_spec = chain(
        b_admin,
        &[
            (
                "otap",
                json!({ "type": "receiver:otap", "config": {
                    "listening_addr": format!("127.0.0.1:{b_otap}"), "response_stream_channel_size": 64 } }),
            ),
            ("filter", filter()),
            ("files", arrow_files(&out)),
        ],
    );
    let b = Serve::start(dir.path(), "b", &b_spec, b_otap);
    let a = Serve::start(dir.path(), "a", &a_spec, a_grpc);
    runtime().block_on(async {
        for batch in 0..5 {
            let names = vec![format!("op {batch}"), "GET /health".to_string()];
            send_traces(a_grpc, &spans(&names)).await.expect("A accepts");
        }
    });
    let arrived = wait_for(Duration::from_secs(60), || batch_names(&out, true).len() == 5);
    assert!(arrived, "B has {:?}:\nA:\n{}\nB:\n{}", batch_names(&out, true), a.logs(), b.logs());
    a.stop();
    b.stop();
    let spans = read_signal(&out, "traces");
    let expected: std::collections::BTreeSet<String> = (0..5).map(|b| format!("op {b}")).collect();
    assert_eq!(batch_names(&out, false), expected, "OTAP carried every batch; the filter removed the health checks");
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
}

fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Sends request bytes as they are (no encoding on the client's side), so a
/// test can send what a client could: unknown fields, bad UTF-8, garbage.
async fn send_raw_traces(port: u16, request: Vec<u8>) -> Result<(), tonic::Status> {
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default)]
    struct Raw;
    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }
    impl Encoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }
    impl Decoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
            let mut out = vec![0; bytes::Buf::remaining(src)];
            bytes::Buf::copy_to_slice(src, &mut out);
            Ok(Some(out))
        }
    }

    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary(tonic::Request::new(request), path, Raw).await.map(|_| ())
}

#[test]
fn hostile_requests_neither_crash_nor_wedge_serve_nor_leak() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let out = dir.path().join("data");
    let mut fail_closed_redact = redact();
    fail_closed_redact["config"]["output"] = json!("otap");
    fail_closed_redact["config"]["limits"] = json!({ "max_memory": "4MiB", "timeout": "5s" });
    let spec = chain(
        admin,
        &[("otlp", otlp_receiver(grpc, true)), ("redact", fail_closed_redact), ("files", arrow_files(&out))],
    );
    let mut serve = Serve::start(dir.path(), "serve", &spec, grpc);

    // The cases the Go collector tests send too (tests/data/hostile-otlp.json).
    let hostile = wasmtel_tests::hostile_otlp::load();
    let mut expected_rows = 1; // the ordinary batch at the end
    runtime().block_on(async {
        for case in &hostile.cases {
            let request = case.request(&hostile.secret);
            for attempt in 0..case.times {
                let sent = send_raw_traces(grpc, request.clone()).await;
                let context = format!("{}, send {attempt}", case.name);
                match &case.expect {
                    Expect::Exported { count, .. } => {
                        sent.unwrap_or_else(|e| panic!("{context}: {e}"));
                        expected_rows += count;
                    }
                    Expect::Refused => {
                        let error = sent.expect_err(&context);
                        assert!(error.message().contains("not an OTLP traces request"), "{context}: {error}");
                    }
                    Expect::FailClosed { cause } => {
                        let error = sent.expect_err(&context);
                        assert!(error.message().contains(cause.as_str()), "{context}: {error}");
                    }
                }
            }
        }
        send_traces(grpc, &spans(&["ordinary".to_string()])).await.expect("still serving");
    });
    assert!(serve.is_running(), "serve survived:\n{}", serve.logs());
    assert!(!serve.logs().contains("recovery failed"), "{}", serve.logs());
    serve.stop();

    let spans = read_signal(&out, "traces");
    assert_eq!(rows(&spans), expected_rows);
    let names = strings(&spans, "name");
    assert!(names.contains(&Some("ordinary".to_string())));
    for case in &hostile.cases {
        match &case.expect {
            Expect::Exported { name, .. } => {
                assert!(names.contains(&Some(name.clone())), "{}: {name} was not written", case.name)
            }
            Expect::FailClosed { .. } | Expect::Refused => {}
        }
    }
    assert!(!names.contains(&Some("bomb".to_string())), "the batch its redactor failed on was refused");
    let secret = &hostile.secret;
    for file in std::fs::read_dir(out.join("traces")).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{}", file.path().display());
    }
}

/// A client's span with a 24-byte trace ID costs that span only: serve
/// accepts the request, writes the two good spans (redacted), and no guest
/// is blamed (the engine 0.62 receiver has no partial success to answer
/// with, so the node counts the span in `input.items_rejected`).
#[test]
fn a_client_bad_id_costs_only_its_span_in_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let out = dir.path().join("data");
    let spec = chain(admin, &[("otlp", otlp_receiver(grpc, true)), ("redact", redact()), ("files", arrow_files(&out))]);
    let serve = Serve::start(dir.path(), "serve", &spec, grpc);
    let email = || vec![string_attr("user.email", "ann@example.com")];
    let mut request = traces(&[("first", email()), ("bad-id", email()), ("third", email())]);
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![0xab; 24];
    runtime().block_on(async {
        send_raw_traces(grpc, request.encode_to_vec()).await.expect("accepted: the client's good spans go on");
    });
    let rejected = wait_for(Duration::from_secs(10), || {
        serve.metric("wasmtel.processor.wasm", "input.items_rejected") == Some(1.0)
    });
    assert!(rejected, "input.items_rejected: {:?}", serve.metric("wasmtel.processor.wasm", "input.items_rejected"));
    let log = dir.path().join("serve.log");
    serve.stop();
    let spans = read_signal(&out, "traces");
    assert_eq!(strings(&spans, "name"), [Some("first".to_string()), Some("third".to_string())]);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(!log.contains("invalid_output") && !log.contains("refusing"), "{log}");
}

#[test]
fn admin_writes_need_the_token_and_foreign_pages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let token = dir.path().join("admin.token");
    let made = Command::new(env!("CARGO_BIN_EXE_wasmtel")).arg("token").arg(&token).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only the operator reads it");
    let again = Command::new(env!("CARGO_BIN_EXE_wasmtel")).arg("token").arg(&token).output().unwrap();
    assert!(!again.status.success(), "an existing token file is never overwritten");
    let secret = std::fs::read_to_string(&token).unwrap().trim().to_string();
    // A long but guessable token is refused before anything starts.
    let weak = dir.path().join("weak.token");
    std::fs::write(&weak, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n").unwrap();
    let spec = chain(
        admin,
        &[("otlp", otlp_receiver(grpc, true)), ("redact", redact()), ("files", arrow_files(&dir.path().join("data")))],
    );
    let config = dir.path().join("check.yaml");
    std::fs::write(&config, serde_json::to_string(&spec).unwrap()).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .arg("--admin-token-file")
        .arg(&weak)
        .env("WASMTEL_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success() && stderr.contains("weak.token") && stderr.contains("looks random"), "{stderr}");
    let mut serve =
        Serve::start_with(dir.path(), "serve", &spec, grpc, &["--admin-token-file", token.to_str().unwrap()]);
    let shutdown = "/api/v1/groups/shutdown";
    // What a web page the operator opens could send: refused, serve keeps running.
    for headers in [
        vec![("Origin", "https://evil.example"), ("Content-Type", "text/plain")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![],
        vec![("Authorization", "Bearer not-the-token")],
    ] {
        let (status, body) = serve.admin_request("POST", shutdown, &headers).expect("answered");
        assert_eq!(status, 403, "{headers:?}: {body}");
    }
    let (status, _) = serve.admin_request("GET", "/api/v1/telemetry/metrics?format=json", &[]).expect("answered");
    assert_eq!(status, 200, "reads need no token");
    std::thread::sleep(Duration::from_millis(300));
    assert!(serve.is_running(), "no refused request reached the engine:\n{}", serve.logs());
    let (status, body) =
        serve.admin_request("POST", shutdown, &[("Authorization", &format!("Bearer {secret}"))]).expect("answered");
    assert!((200..300).contains(&status), "the operator's shutdown is forwarded: {status} {body}");
}

#[test]
fn a_second_serve_on_the_same_receiver_ports_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, admin, admin_b) = (free_port(), free_port(), free_port());
    let spec =
        |admin| chain(admin, &[("otlp", otlp_receiver(grpc, true)), ("files", arrow_files(&dir.path().join("data")))]);
    let first = Serve::start(dir.path(), "first", &spec(admin), grpc);
    let config = dir.path().join("second.yaml");
    std::fs::write(&config, serde_json::to_string(&spec(admin_b)).unwrap()).unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("WASMTEL_HOME", dir.path().join("home"))
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{grpc} is already in use")), "{stderr}");
    first.stop();
}

#[test]
fn serve_check_loads_every_plugin_and_checks_its_config_schema() {
    let dir = tempfile::tempdir().unwrap();
    let check = |redact_config: Value| {
        let mut node = redact();
        node["config"]["config"] = redact_config;
        let spec = chain(
            free_port(),
            &[
                ("otlp", otlp_receiver(free_port(), true)),
                ("redact", node),
                ("files", arrow_files(&dir.path().join("data"))),
            ],
        );
        let config = dir.path().join("check.yaml");
        std::fs::write(&config, serde_json::to_string(&spec).unwrap()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_wasmtel"))
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .env("WASMTEL_HOME", dir.path().join("home"))
            .output()
            .expect("runs")
    };
    let bad = check(json!({ "keys": "user.email", "action": "mask" }));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a config the component's schema refuses must not pass --check");
    assert!(stderr.contains("config.keys") && stderr.contains("config_schema"), "{stderr}");
    let good = check(json!({ "keys": ["user.email"], "action": "mask" }));
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
}
