//! The `wasmtel` command as an author uses it: outputs, messages and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../../tests/support/paths.rs"]
mod paths;

fn sample(signal: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/data/{signal}.json"))
}

fn wasmtel(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(args)
        .env("WASMTEL_HOME", cache)
        .env("WASMTEL_LOG", "warn")
        .output()
        .expect("wasmtel runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_the_output_as_otlp_json_and_the_outcome() {
    let home = tempfile::tempdir().unwrap();
    let identity = paths::component("wasmtel-test-identity");
    let traces = sample("traces");
    let out = wasmtel(
        &[
            "run",
            identity.to_str().unwrap(),
            "--config",
            r#"{"mode":"replace"}"#,
            "--signal",
            "traces",
            "--input",
            traces.to_str().unwrap(),
        ],
        home.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("outcome: replaced (4 -> 4 spans"), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(json["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"], "5b8efff798038103d269b633813fc60c");

    let dropped = wasmtel(
        &["run", identity.to_str().unwrap(), "--config", r#"{"mode":"drop"}"#, "--input", traces.to_str().unwrap()],
        home.path(),
    );
    assert!(dropped.status.success());
    assert!(text(&dropped.stderr).contains("outcome: dropped (all 4 spans)"), "{}", text(&dropped.stderr));
    assert!(dropped.stdout.is_empty());
}

#[test]
fn inspect_shows_manifest_digest_and_imports() {
    let home = tempfile::tempdir().unwrap();
    let identity = paths::component("wasmtel-test-identity");
    let out = wasmtel(&["inspect", identity.to_str().unwrap(), "--json"], home.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(json["manifest"]["name"], "wasmtel-test-identity");
    assert_eq!(json["grants"]["clocks"], false);
    assert!(
        json["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasmtel:plugin/processor@0.1"))
    );

    let human = wasmtel(&["inspect", identity.to_str().unwrap()], home.path());
    assert!(text(&human.stdout).contains("digest:      sha256:"), "{}", text(&human.stdout));
}

#[test]
fn exit_codes_tell_load_usage_and_batch_failures_apart() {
    let home = tempfile::tempdir().unwrap();
    let traces = sample("traces");
    let not_wasm = home.path().join("notes.wasm");
    std::fs::write(&not_wasm, "definitely not wasm").unwrap();
    let out = wasmtel(&["run", not_wasm.to_str().unwrap(), "--input", traces.to_str().unwrap()], home.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("component notes: not a WebAssembly file"), "{}", text(&out.stderr));

    let identity = paths::component("wasmtel-test-identity");
    let out = wasmtel(
        &["run", identity.to_str().unwrap(), "--config", "{not json", "--input", traces.to_str().unwrap()],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("neither a file nor valid JSON"), "{}", text(&out.stderr));

    let hostile = paths::component("wasmtel-test-hostile");
    let panic_batch = home.path().join("panic.json");
    std::fs::write(
        &panic_batch,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"panic"}]}]}]}"#,
    )
    .unwrap();
    let out = wasmtel(
        &["run", hostile.to_str().unwrap(), "--on-error", "fail", "--input", panic_batch.to_str().unwrap()],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("plugin wasmtel_test_hostile: traces batch failed (trap)"),
        "{}",
        text(&out.stderr)
    );

    // The hostile guest declares no failure_mode: it fails closed by default.
    let out = wasmtel(&["run", hostile.to_str().unwrap(), "--input", panic_batch.to_str().unwrap()], home.path());
    assert_eq!(out.status.code(), Some(1), "on_error defaults to fail: {}", text(&out.stderr));
    let out = wasmtel(
        &["run", hostile.to_str().unwrap(), "--on-error", "pass", "--input", panic_batch.to_str().unwrap()],
        home.path(),
    );
    assert!(out.status.success(), "explicit pass: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("outcome: unchanged"), "{}", text(&out.stderr));
}
