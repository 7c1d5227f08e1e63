//! The registry commands end to end, against a real registry on loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../registry/tests/support/mod.rs"]
mod support;

use support::{TestRegistry, closed_port, component_path};

fn wasmtel(args: &[&str], home: &Path, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(args)
        .current_dir(cwd)
        .env("WASMTEL_HOME", home)
        .env("WASMTEL_LOG", "warn")
        .env("COSIGN_PASSWORD", "test-password")
        .output()
        .expect("wasmtel runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), text(&out.stderr));
    text(&out.stdout)
}

fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/traces.json")
}

#[test]
fn publish_sign_pull_lock_verify_and_run_by_reference() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let author = tempfile::tempdir().unwrap();
    let deployer = tempfile::tempdir().unwrap();
    let cwd = work.path();
    let identity = component_path("wasmtel_test_identity");
    let reference = registry.reference("plugins/identity:1.0.0");

    let public = ok(wasmtel(&["keygen"], author.path(), cwd));
    assert_eq!(public.trim(), "cosign.pub");
    assert!(std::fs::read_to_string(cwd.join("cosign.key")).unwrap().contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
    let again = wasmtel(&["keygen"], author.path(), cwd);
    assert_eq!(again.status.code(), Some(2), "keygen must not overwrite keys");

    let pinned =
        ok(wasmtel(&["push", identity.to_str().unwrap(), &reference, "--sign-key", "cosign.key"], author.path(), cwd));
    let pinned = pinned.trim();
    assert!(pinned.starts_with(&format!("{reference}@sha256:")), "{pinned}");

    let listing = ok(wasmtel(&["ls"], author.path(), cwd));
    assert!(listing.contains(&reference) && listing.contains("wasmtel-test-identity"), "{listing}");

    let inspect = ok(wasmtel(&["inspect", &reference], deployer.path(), cwd));
    assert!(inspect.contains("not downloaded"), "{inspect}");
    assert!(inspect.contains("wasmtel:plugin/processor@"), "{inspect}");
    assert!(inspect.contains(pinned.rsplit('@').next().unwrap()), "{inspect}");

    let verified = ok(wasmtel(&["verify", &reference, "--key", "cosign.pub"], deployer.path(), cwd));
    assert!(verified.contains("signed by cosign.pub"), "{verified}");

    let digest = ok(wasmtel(
        &["pull", &reference, "--lock", "wasmtel.lock", "--trusted-key", "cosign.pub", "--require-signature"],
        deployer.path(),
        cwd,
    ));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(cwd.join("wasmtel.lock")).unwrap()).unwrap();
    assert_eq!(lock["components"][&reference]["component"], digest.trim());

    let traces = traces();
    let run = wasmtel(
        &[
            "run",
            &reference,
            "--lock",
            "wasmtel.lock",
            "--require-signature",
            "--trusted-key",
            "cosign.pub",
            "--config",
            r#"{"mode":"replace"}"#,
            "--input",
            traces.to_str().unwrap(),
        ],
        deployer.path(),
        cwd,
    );
    let stdout = ok(run);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("OTLP/JSON output");
    assert!(json["resourceSpans"].is_array());

    // The tag moves: the lock refuses it (exit 5), --update accepts it.
    ok(wasmtel(&["push", component_path("wasmtel_redact").to_str().unwrap(), &reference], author.path(), cwd));
    let moved = wasmtel(&["pull", &reference, "--lock", "wasmtel.lock"], deployer.path(), cwd);
    assert_eq!(moved.status.code(), Some(5), "{}", text(&moved.stderr));
    assert!(text(&moved.stderr).contains("tag moved"), "{}", text(&moved.stderr));
    // The new manifest is not signed: refused under --require-signature.
    let unsigned =
        wasmtel(&["pull", &reference, "--require-signature", "--trusted-key", "cosign.pub"], deployer.path(), cwd);
    assert_eq!(unsigned.status.code(), Some(5), "{}", text(&unsigned.stderr));
    assert!(text(&unsigned.stderr).contains("signature required"), "{}", text(&unsigned.stderr));
    ok(wasmtel(&["pull", &reference, "--lock", "wasmtel.lock", "--update"], deployer.path(), cwd));

    // The pinned reference still runs with the registry gone.
    drop(registry);
    let offline = wasmtel(
        &["run", pinned, "--config", r#"{"mode":"drop"}"#, "--input", traces.to_str().unwrap()],
        deployer.path(),
        cwd,
    );
    assert!(offline.status.success(), "{}", text(&offline.stderr));
    assert!(text(&offline.stderr).contains("outcome: dropped"), "{}", text(&offline.stderr));
}

#[test]
fn registry_errors_have_their_own_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let cwd = home.path();
    let down = format!("oci://127.0.0.1:{}/plugins/x:1", closed_port());
    let out = wasmtel(&["pull", &down], home.path(), cwd);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&down) && text(&out.stderr).contains("unreachable"), "{}", text(&out.stderr));

    let out = wasmtel(&["pull", "oci://host/UPPER:1"], home.path(), cwd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("oci://host/UPPER:1: cannot parse reference"), "{}", text(&out.stderr));

    let out = wasmtel(&["run", "redact:missing", "--input", traces().to_str().unwrap()], home.path(), cwd);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("redact:missing: not in the local store"), "{}", text(&out.stderr));

    // Local names need no registry at all.
    let identity = component_path("wasmtel_test_identity");
    ok(wasmtel(&["push", identity.to_str().unwrap(), "identity:dev"], home.path(), cwd));
    let out = wasmtel(&["inspect", "identity:dev"], home.path(), cwd);
    assert!(text(&out.stdout).contains("wasmtel-test-identity"), "{}", text(&out.stderr));
}

#[test]
fn keygen_without_cosign_password_refuses_and_an_empty_one_warns() {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let keygen = |password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmtel"));
        command.arg("keygen").current_dir(cwd.path()).env("WASMTEL_HOME", home.path()).env_remove("COSIGN_PASSWORD");
        if let Some(password) = password {
            command.env("COSIGN_PASSWORD", password);
        }
        command.output().expect("wasmtel runs")
    };
    let unset = keygen(None);
    assert!(!unset.status.success());
    assert!(text(&unset.stderr).contains("COSIGN_PASSWORD is not set"), "{}", text(&unset.stderr));
    assert!(!cwd.path().join("cosign.key").exists(), "no key written");

    let empty = keygen(Some(""));
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert!(text(&empty.stderr).contains("EMPTY password"), "{}", text(&empty.stderr));
}
