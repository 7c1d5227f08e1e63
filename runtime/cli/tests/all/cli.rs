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

/// A client's span with a 24-byte trace ID: only that span is left out and
/// reported as a partial success, whichever plugin runs; never the guest's fault.
#[test]
fn run_leaves_out_a_clients_bad_id_span_and_says_so() {
    use prost::Message;
    let home = tempfile::tempdir().unwrap();
    let email = || vec![wasmtel_tests::string_attr("user.email", "someone@example.com")];
    let mut request = wasmtel_tests::traces(&[("first", email()), ("bad-id", email()), ("third", email())]);
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![0xab; 24];
    let input = home.path().join("bad-id.pb");
    std::fs::write(&input, request.encode_to_vec()).unwrap();
    let redact = paths::component("wasmtel-redact");
    let filter = paths::component("wasmtel-filter");
    let identity = paths::component("wasmtel-test-identity");
    for (component, config) in [
        (&redact, r#"{"keys":["user.email"]}"#),
        (&filter, r#"{"spans":{"names":["nothing matches"]}}"#),
        (&identity, r#"{"mode":"unchanged"}"#),
    ] {
        let out = wasmtel(
            &["run", component.to_str().unwrap(), "--config", config, "--input", input.to_str().unwrap(), "--metrics"],
            home.path(),
        );
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", component.display());
        assert!(stderr.contains("partial success: 1 spans left out: a trace ID not 16 bytes"), "{stderr}");
        assert!(stderr.contains("\"invalid_output\": 0"), "not the guest's fault: {stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        let names: Vec<&str> = json["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|span| span["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["first", "third"], "{}", component.display());
    }
}

/// `pass` on a component that declares itself fail-closed is the operator's
/// right, but never a silent one: the start says what it costs.
#[test]
fn an_explicit_pass_on_a_fail_closed_component_is_warned_about_at_start() {
    let home = tempfile::tempdir().unwrap();
    let traces = sample("traces");
    let redact = paths::component("wasmtel-redact");
    let identity = paths::component("wasmtel-test-identity");
    let warned = |component: &PathBuf, config: &str, on_error: &str| {
        let out = wasmtel(
            &[
                "run",
                component.to_str().unwrap(),
                "--config",
                config,
                "--on-error",
                on_error,
                "--input",
                traces.to_str().unwrap(),
            ],
            home.path(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr).contains("declares itself fail-closed, but on_error: pass")
    };
    let redact_config = r#"{"keys":["user.email"]}"#;
    assert!(warned(&redact, redact_config, "pass"), "explicit pass on redact is warned about");
    assert!(!warned(&redact, redact_config, "fail"), "fail is the declared default");
    assert!(!warned(&redact, redact_config, "drop"), "drop forwards nothing");
    assert!(!warned(&identity, r#"{"mode":"unchanged"}"#, "pass"), "a fail-open component is not warned about");
}
