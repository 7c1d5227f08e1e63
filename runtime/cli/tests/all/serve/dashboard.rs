//! The dashboard in a real browser: Debian's chromium, headless, driven by
//! playwright-core (`tests/dashboard/browser.mjs`, installed by
//! `scripts/setup-browser.sh`), watching one live page while load runs, a
//! guest traps, and the forwarding upstream stays down.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// The page in headless chromium; answers `figures` with the text of every
/// `[data-testid]` element.
struct Browser {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Browser {
    fn open(url: &str) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/dashboard/browser.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs tests/dashboard/browser.mjs (scripts/setup-browser.sh installs what it needs)");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser { child, input, output };
        assert_eq!(browser.line(), "ready", "chromium did not open {url}");
        browser
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn figures(&mut self) -> Value {
        writeln!(self.input, "figures").unwrap();
        serde_json::from_str(&self.line()).unwrap()
    }

    fn screenshot(&mut self, path: &Path) {
        writeln!(self.input, "shot {}", path.display()).unwrap();
        assert_eq!(self.line(), "ok");
    }

    /// Polls the page until `condition` holds on its figures; returns the last ones.
    fn wait(&mut self, what: &str, mut condition: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        eprintln!("dashboard test: waiting for {what}");
        loop {
            let figures = self.figures();
            if condition(&figures) {
                return figures;
            }
            assert!(Instant::now() < deadline, "the page never showed {what}: {figures:#}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "quit");
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A figure as a number (`1,234` → 1234).
fn count(figures: &Value, id: &str) -> u64 {
    figures[id].as_str().map(|s| s.replace(',', "")).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0) as u64
}

#[test]
fn the_dashboard_shows_live_calls_errors_breaker_files_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let (main_grpc, archive_grpc, down, admin) = (free_port(), free_port(), free_port(), free_port());
    let out = dir.path().join("files");
    let hostile = json!({ "type": "urn:wasmtel:processor:wasm", "config": {
        "component": component("wasmtel-test-hostile"), "on_error": "pass" } });
    let breaker = json!({ "type": "urn:wasmtel:processor:circuit_breaker", "config": {
        "failure_threshold": 3, "open_duration": "30s" } });
    let forward = json!({ "type": "exporter:otlp_grpc", "config": {
        "grpc_endpoint": format!("http://127.0.0.1:{down}"), "connect_timeout": "300ms" } });
    let mut spec = chain(
        admin,
        &[
            ("otlp", otlp_receiver(main_grpc, false)),
            ("redact", redact()),
            ("hostile", hostile),
            ("breaker", breaker),
            ("forward", forward),
        ],
    );
    let archive = chain(
        admin,
        &[("otlp", otlp_receiver(archive_grpc, false)), ("redact", redact()), ("files", arrow_files(&out))],
    );
    spec["groups"]["default"]["pipelines"]["archive"] = archive["groups"]["default"]["pipelines"]["main"].clone();
    let serve = Serve::start(dir.path(), "dashboard", &spec, archive_grpc);

    let mut browser = Browser::open(&format!("http://127.0.0.1:{admin}/dashboard/"));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            runtime().block_on(async {
                let hostile_value = string_attr("note", "<img src=x onerror=alert(1)>");
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let email = string_attr("user.email", "ann@example.com");
                    let batch = traces(&[(format!("checkout {sent}").as_str(), vec![email, hostile_value.clone()])]);
                    for port in [main_grpc, archive_grpc] {
                        send_traces(port, &batch).await.expect("accepted");
                    }
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                sent
            })
        })
    };

    let redact_calls = "calls:default/main/redact";
    let first = browser.wait("calls", |f| count(f, redact_calls) > 0);
    std::thread::sleep(Duration::from_secs(3));
    let later = browser.wait("calls rising", |f| count(f, redact_calls) > count(&first, redact_calls) + 10);
    assert!(count(&later, "batches_per_s:default/main") > 0, "throughput: {later:#}");

    // A trapping batch: counted as an error, passed on by on_error.
    runtime().block_on(send_traces(main_grpc, &traces(&[("panic", vec![])]))).expect("accepted");
    let trapped = browser.wait("the trap", |f| count(f, "errors:default/main/hostile") >= 1);
    assert!(trapped["on_error:default/main/hostile"].as_str().unwrap().contains("pass 1"), "{trapped:#}");

    // The upstream is down: the breaker opens.
    let open = browser.wait("the breaker open", |f| f["breaker:default/main/breaker"] == "open");
    assert!(count(&open, "rejected:default/main/breaker") > 0 || count(&open, "calls:default/main/redact") > 0);

    // Files and the newest records, redacted, with hostile text shown as text.
    let files = browser.wait("files", |f| {
        count(f, "files:default/archive/files/traces") >= 1 && count(f, "rows:default/archive/files/traces") >= 1
    });
    let records = files["record:default/archive/traces"].to_string();
    assert!(records.contains("****") && !records.contains("ann@example.com"), "{records}");
    assert!(records.contains("<img src=x onerror=alert(1)>"), "{records}");
    assert_eq!(files["injected"], 0, "telemetry became markup");
    assert_eq!(files["problems"], json!([]), "the page reported problems");
    assert_eq!(files["error"], "", "the page could not reach the API");

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    browser.screenshot(&screenshot);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "an empty screenshot");

    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);
    drop(browser);
    serve.stop();
}
