//! Hostile guests: each failure gets a clear error naming the plugin and the
//! cause, the policy decides the batch's fate, and the same `Plugin` keeps
//! serving good batches afterwards.

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::time::Duration;

use bytesize::ByteSize;
use prost::Message;
use wasmtel_runtime::{ComponentSource, FailureKind, LoadError, OnError, Outcome, Plugin, PluginConfig, Signal};
use wasmtel_tests::{capture_logs, load, logs, runtime, span_named};

const HOSTILE: &str = "wasmtel-test-hostile";

fn hostile(on_error: OnError) -> (Plugin, tempfile::TempDir) {
    let (runtime, cache) = runtime();
    let mut config = PluginConfig { on_error: Some(on_error), ..PluginConfig::default() };
    // Generous: tests run in parallel on 2 cores, and a memory bomb must hit the cap, not the clock.
    config.limits.timeout = Duration::from_secs(1);
    config.limits.max_memory = ByteSize::mib(64);
    config.limits.max_output_bytes = ByteSize::mib(1);
    config.limits.max_instances = 2;
    (load(&runtime, HOSTILE, config).expect("hostile component loads"), cache)
}

/// A good batch still comes back unchanged from the same plugin.
fn assert_still_serves(plugin: &Plugin) {
    let outcome = plugin.process(Signal::Traces, &span_named("GET /checkout"), None).expect("good batch");
    assert_eq!(outcome, Outcome::Unchanged);
}

/// Runs a failing batch under `on_error: fail` and returns the error.
fn fail_with(trigger: &str) -> (wasmtel_runtime::ProcessError, Plugin, tempfile::TempDir) {
    let (plugin, cache) = hostile(OnError::Fail);
    let error = plugin.process(Signal::Traces, &span_named(trigger), None).expect_err(trigger);
    assert_eq!(error.plugin, HOSTILE, "error names the plugin: {error}");
    assert!(error.to_string().contains(HOSTILE), "{error}");
    assert_still_serves(&plugin);
    (error, plugin, cache)
}

#[test]
fn infinite_loop_is_interrupted_by_the_timeout() {
    let (error, plugin, _cache) = fail_with("loop");
    assert_eq!(error.kind, FailureKind::Timeout, "{error}");
    assert!(error.to_string().contains("time limit"), "{error}");
    let metrics = plugin.metrics();
    assert_eq!(metrics.error_count(FailureKind::Timeout), 1);
    assert_eq!(metrics.instances_discarded, 1);
    assert_eq!(metrics.policy_failed, 1);
}

#[test]
fn caller_deadline_shorter_than_the_limit_wins_and_is_never_forwarded() {
    // Even under `pass`: the caller gave up, so the batch is not the sandbox's to forward.
    let (plugin, _cache) = hostile(OnError::Pass);
    let started = std::time::Instant::now();
    let error = plugin.process(Signal::Traces, &span_named("loop"), Some(Duration::from_millis(20))).unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(250), "the 20 ms deadline bounded the call");
    assert_eq!(error.kind, FailureKind::DeadlineExceeded, "{error}");
    assert!(!error.is_permanent(), "the caller may retry: {error}");
    let expired = plugin.process(Signal::Traces, &span_named("GET /"), Some(Duration::ZERO)).unwrap_err();
    assert_eq!(expired.kind, FailureKind::DeadlineExceeded, "{expired}");
    let metrics = plugin.metrics();
    assert_eq!(metrics.policy_passed, 0, "on_error never saw it");
    assert_eq!(metrics.error_count(FailureKind::DeadlineExceeded), 2);
    assert_still_serves(&plugin);
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let (error, _plugin, _cache) = fail_with("memory-bomb");
    assert_eq!(error.kind, FailureKind::Memory, "{error}");
    assert!(error.to_string().contains("memory limit"), "{error}");
}

#[test]
fn stack_overflow_traps() {
    let (error, _plugin, _cache) = fail_with("stack-overflow");
    assert_eq!(error.kind, FailureKind::Trap, "{error}");
    assert!(error.message.contains("stack"), "{error}");
}

#[test]
fn panic_traps_and_reports_the_panic_message() {
    let (error, _plugin, _cache) = fail_with("panic");
    assert_eq!(error.kind, FailureKind::Trap, "{error}");
    assert!(error.message.contains("panicked"), "guest stderr is part of the error: {error}");
}

#[test]
fn garbage_output_is_refused() {
    let (error, _plugin, _cache) = fail_with("garbage");
    assert_eq!(error.kind, FailureKind::InvalidOutput, "{error}");
    assert!(error.message.contains("not an OTLP traces request"), "{error}");
}

#[test]
fn oversized_output_is_refused() {
    let (error, _plugin, _cache) = fail_with("oversized");
    assert!(
        matches!(error.kind, FailureKind::OutputTooLarge | FailureKind::Memory),
        "either the output cap or the memory cap stops it: {error}"
    );
}

#[test]
fn oversized_output_within_memory_hits_the_output_cap() {
    let (runtime, _cache) = runtime();
    let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
    config.limits.max_memory = ByteSize::mib(512);
    config.limits.max_output_bytes = ByteSize::mib(1);
    config.limits.timeout = Duration::from_secs(10);
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    let error = plugin.process(Signal::Traces, &span_named("oversized"), None).unwrap_err();
    assert_eq!(error.kind, FailureKind::OutputTooLarge, "{error}");
    assert!(error.message.contains("max_output_bytes"), "{error}");
    assert_still_serves(&plugin);
}

#[test]
fn guest_cannot_read_host_files() {
    let (plugin, _cache) = hostile(OnError::Fail);
    let result = plugin.process(Signal::Traces, &span_named("open-file"), None);
    let error = result.expect_err("no filesystem in the sandbox");
    assert_eq!(error.kind, FailureKind::GuestPermanent, "{error}");
    assert!(!error.message.contains("root:"), "host file content leaked: {error}");
    assert_still_serves(&plugin);
}

#[test]
fn guest_errors_keep_their_retry_semantics() {
    let (plugin, _cache) = hostile(OnError::Pass);
    let permanent = plugin.process(Signal::Traces, &span_named("permanent-error"), None).unwrap_err();
    assert_eq!(permanent.kind, FailureKind::GuestPermanent);
    assert!(permanent.is_permanent());
    let retryable = plugin.process(Signal::Traces, &span_named("retryable-error"), None).unwrap_err();
    assert_eq!(retryable.kind, FailureKind::GuestRetryable);
    assert!(!retryable.is_permanent());
    // Deliberate errors do not cost the instance.
    assert_eq!(plugin.metrics().instances_discarded, 0);
}

#[test]
fn on_error_pass_forwards_the_original_batch() {
    let (plugin, _cache) = hostile(OnError::Pass);
    for trigger in ["panic", "garbage", "loop"] {
        let outcome = plugin.process(Signal::Traces, &span_named(trigger), None).expect(trigger);
        assert_eq!(outcome, Outcome::Unchanged, "{trigger}");
    }
    let metrics = plugin.metrics();
    assert_eq!(metrics.policy_passed, 3);
    assert_eq!(metrics.errors_total(), 3);
    assert_still_serves(&plugin);
}

#[test]
fn on_error_drop_discards_and_counts() {
    let (plugin, _cache) = hostile(OnError::Drop);
    let outcome = plugin.process(Signal::Logs, &logs(&[("panic", vec![])]).encode_to_vec(), None).unwrap();
    assert_eq!(outcome, Outcome::Dropped);
    let metrics = plugin.metrics();
    assert_eq!(metrics.policy_dropped, 1);
    assert_eq!(metrics.error_count(FailureKind::Trap), 1);
}

#[test]
fn failing_batches_are_quarantined() {
    let (runtime, _cache) = runtime();
    let quarantine = tempfile::tempdir().unwrap();
    let config = PluginConfig {
        on_error: Some(OnError::Drop),
        quarantine_dir: Some(quarantine.path().to_path_buf()),
        ..PluginConfig::default()
    };
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    let batch = span_named("garbage");
    assert_eq!(plugin.process(Signal::Traces, &batch, None).unwrap(), Outcome::Dropped);
    let mut files: Vec<_> = std::fs::read_dir(quarantine.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let saved = files.iter().find(|p| p.extension().is_some_and(|e| e == "pb")).unwrap();
    assert_eq!(std::fs::read(saved).unwrap(), batch, "the quarantined batch is the input, byte for byte");
    let note = files.iter().find(|p| p.to_string_lossy().ends_with(".error.txt")).unwrap();
    assert!(std::fs::read_to_string(note).unwrap().contains("invalid_output"));
    assert_eq!(plugin.metrics().quarantined, 1);
}

#[test]
fn a_quarantine_directory_others_can_write_is_never_written() {
    use std::os::unix::fs::PermissionsExt;
    let (runtime, _cache) = runtime();
    let quarantine = tempfile::tempdir().unwrap();
    let config = PluginConfig {
        on_error: Some(OnError::Drop),
        quarantine_dir: Some(quarantine.path().to_path_buf()),
        ..PluginConfig::default()
    };
    let open = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(quarantine.path(), open.clone()).unwrap();
    let error = load(&runtime, HOSTILE, config.clone()).err().expect("refused at load");
    assert!(error.to_string().contains("quarantine_dir") && error.to_string().contains("has mode 777"), "{error}");
    // Private at load, loosened later: refused where it is written.
    std::fs::set_permissions(quarantine.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    std::fs::set_permissions(quarantine.path(), open).unwrap();
    // The policy still applies; only the copy on disk is refused.
    assert_eq!(plugin.process(Signal::Traces, &span_named("garbage"), None).unwrap(), Outcome::Dropped);
    assert_eq!(std::fs::read_dir(quarantine.path()).unwrap().count(), 0, "nothing written where others may write");
    assert_eq!(plugin.metrics().quarantined, 0);
}

/// A batch that never reached a guest (no instance could be made for it)
/// is the host's failure: retryable to the caller, never forwarded or
/// dropped by `on_error`, even `pass`.
#[test]
fn an_instantiation_failure_is_retryable_and_outside_on_error() {
    let (runtime, _cache) = runtime();
    // Compiled once first, so that the load below is only instantiation and init.
    load(&runtime, HOSTILE, PluginConfig::default()).unwrap();
    let until =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_millis(1500);
    let mut config = PluginConfig {
        on_error: Some(OnError::Pass),
        config: serde_json::json!({ "reject_after_unix_ms": until.as_millis() }),
        ..PluginConfig::default()
    };
    config.grants.clocks = true;
    config.limits.max_instances = 1;
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    std::thread::sleep(Duration::from_millis(1600));
    // The trap is the guest's, on this batch: `pass` forwards it, and the
    // instance is replaced, which now fails.
    assert_eq!(
        plugin.process(Signal::Logs, &logs(&[("panic", vec![])]).encode_to_vec(), None).unwrap(),
        Outcome::Unchanged
    );
    let error = plugin.process(Signal::Traces, &span_named("good"), Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(error.kind, FailureKind::Instantiate, "{error}");
    assert!(!error.is_permanent(), "{error}");
    assert!(error.to_string().contains("no new instances after"), "{error}");
    let metrics = plugin.metrics();
    assert_eq!(metrics.policy_passed, 1, "only the trap went through on_error");
    assert_eq!(metrics.error_count(FailureKind::Instantiate), 1);
}

#[test]
fn config_rejected_by_init_fails_the_load() {
    let (runtime, _cache) = runtime();
    let config = PluginConfig { config: serde_json::json!({"reject": "ratio must be below 1"}), ..Default::default() };
    let error = load(&runtime, HOSTILE, config).err().expect("init rejects");
    assert!(matches!(error, LoadError::InitRejected { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(HOSTILE) && text.contains("ratio must be below 1"), "{text}");
}

#[test]
fn socket_imports_are_refused_at_load() {
    let (runtime, _cache) = runtime();
    let error = load(&runtime, "wasmtel-test-socket", PluginConfig::default()).err().expect("refused");
    assert!(matches!(error, LoadError::ForbiddenImport { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("wasmtel-test-socket") && text.contains("wasi:sockets/"), "{text}");
}

#[test]
fn incompatible_wit_major_is_refused_naming_both_versions() {
    let (runtime, _cache) = runtime();
    let error = load(&runtime, "wasmtel-test-future-major", PluginConfig::default()).err().expect("refused");
    assert!(matches!(error, LoadError::IncompatibleWit { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("1.0.0") && text.contains(wasmtel_runtime::WIT_VERSION), "{text}");
}

#[test]
fn files_that_are_not_components_are_refused() {
    let (runtime, _cache) = runtime();
    let dir = tempfile::tempdir().unwrap();
    type Expected = fn(&LoadError) -> bool;
    let cases: [(&str, &[u8], Expected); 4] = [
        ("text", b"processors:\n  redact: {}\n", |e| matches!(e, LoadError::NotWasm { .. })),
        ("empty", b"", |e| matches!(e, LoadError::NotWasm { .. })),
        ("core-module", b"\0asm\x01\0\0\0", |e| matches!(e, LoadError::CoreModule { .. })),
        ("truncated", b"\0asm\x0d\0\x01\0\x07\xff", |e| matches!(e, LoadError::Invalid { .. })),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let error = runtime.load_component(name, ComponentSource::Path(path)).err().expect(name);
        assert!(expected(&error), "{name}: {error}");
        assert!(error.to_string().contains(name), "names the component: {error}");
    }
    // Special files are refused before reading: a FIFO would block, /dev/zero never ends.
    let fifo = dir.path().join("fifo.wasm");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for special in [fifo, std::path::PathBuf::from("/dev/zero")] {
        let error = runtime.load_component("special", ComponentSource::Path(special.clone())).err().unwrap();
        assert!(error.to_string().contains("not a regular file"), "{}: {error}", special.display());
    }
    let missing = runtime.load_component("ghost", ComponentSource::Path(dir.path().join("ghost.wasm"))).err().unwrap();
    assert!(matches!(missing, LoadError::Read { .. }) && missing.to_string().contains("ghost"), "{missing}");
}

#[test]
fn bad_plugin_limits_are_refused() {
    let (runtime, _cache) = runtime();
    let mut config = PluginConfig::default();
    config.limits.max_instances = 0;
    let error = load(&runtime, HOSTILE, config).err().unwrap();
    assert!(matches!(error, LoadError::Config { .. }) && error.to_string().contains("max_instances"), "{error}");
    // Unknown keys are a typo, not something to ignore.
    let parsed: Result<PluginConfig, _> = serde_json::from_value(serde_json::json!({"limts": {}}));
    assert!(parsed.unwrap_err().to_string().contains("limts"));
}

/// Time, entropy and environment as the guest sees them, from the hostile
/// component's `report-env` trigger (returned as a retryable error message).
fn guest_view(grants: wasmtel_runtime::Grants) -> String {
    let (runtime, _cache) = runtime();
    let plugin = load(&runtime, HOSTILE, PluginConfig { grants, ..Default::default() }).unwrap();
    plugin.process(Signal::Traces, &span_named("report-env"), None).unwrap_err().message
}

#[test]
fn guests_are_hermetic_unless_granted() {
    let hermetic = guest_view(Default::default());
    assert!(hermetic.starts_with("clock=0 "), "the clock is frozen at the epoch: {hermetic}");
    assert!(hermetic.ends_with("env=[]"), "no host environment: {hermetic}");
    assert_eq!(guest_view(Default::default()), hermetic, "without grants the guest is deterministic");

    let mut grants = wasmtel_runtime::Grants { clocks: true, random: true, ..Default::default() };
    grants.env.insert("REGION".into(), "eu-west-1".into());
    let granted = guest_view(grants.clone());
    let clock: u64 = granted.strip_prefix("clock=").and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(clock > 1_700_000_000, "a granted clock is real: {granted}");
    assert!(granted.ends_with("env=[REGION=eu-west-1]"), "{granted}");
    let random = |view: &str| view.split(' ').nth(1).unwrap().to_string();
    assert_ne!(random(&granted), random(&guest_view(grants)), "granted entropy differs between instances");
}

#[test]
fn guest_stderr_reaches_the_host_log_tagged_with_the_plugin() {
    let (plugin, _cache) = hostile(OnError::Pass);
    let log = capture_logs(|| {
        plugin.process(Signal::Traces, &span_named("panic"), None).unwrap();
    });
    let panic_line =
        log.lines().find(|line| line.contains("panicked")).unwrap_or_else(|| panic!("no guest panic in:\n{log}"));
    assert!(panic_line.contains(HOSTILE) && panic_line.contains("stderr"), "{panic_line}");
    assert!(log.contains("on_error: pass"), "the policy decision is logged too:\n{log}");
}

#[test]
fn a_guest_cannot_flood_or_forge_the_host_log() {
    let (plugin, _cache) = hostile(OnError::Fail);
    let started = std::time::Instant::now();
    let log = capture_logs(|| {
        assert_eq!(plugin.process(Signal::Traces, &span_named("log-flood"), None).unwrap(), Outcome::Unchanged);
    });
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("flood ")).collect();
    // The burst of 200 gets through, then 100 a second; the rest is counted, not logged.
    let allowed = 200 + (100.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(lines.len() <= allowed, "{} host log lines for a 20k-line flood (allowed {allowed})", lines.len());
    assert!(lines.iter().all(|line| !line.contains('\x1b')), "terminal escapes are escaped");
    assert!(
        lines.iter().all(|line| !line.starts_with("2026-01-01T00:00:00Z")),
        "a guest newline cannot start a host log line"
    );
    assert!(lines.iter().any(|line| line.contains("flood 0\\n2026")), "the newline is shown escaped:\n{log}");
    let suppressed = plugin.metrics().guest_log_lines_suppressed;
    assert_eq!(suppressed as usize + lines.len(), 20_000, "every line is logged or counted");
    // Once the budget refills, the next line reports what was suppressed.
    std::thread::sleep(Duration::from_millis(100));
    let log = capture_logs(|| {
        plugin.process(Signal::Traces, &span_named("stderr-after the flood"), None).unwrap();
    });
    assert!(log.contains("guest log lines suppressed"), "{log}");
}

#[test]
fn huge_guest_log_lines_are_cut() {
    let (runtime, _cache) = runtime();
    let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
    config.limits.max_memory = ByteSize::mib(128);
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    let log = capture_logs(|| {
        assert_eq!(plugin.process(Signal::Traces, &span_named("log-huge"), None).unwrap(), Outcome::Unchanged);
    });
    assert!(log.len() < 64 << 10, "two 8 MiB lines became {} bytes of host log", log.len());
    assert!(log.contains("more bytes]"), "the cut is visible:\n{}", &log[..log.len().min(500)]);
}

#[test]
fn guest_counters_are_bounded_in_name_and_number() {
    let (plugin, _cache) = hostile(OnError::Fail);
    plugin.process(Signal::Traces, &span_named("counter-flood"), None).unwrap();
    let metrics = plugin.metrics();
    assert!(metrics.guest_counters.len() <= 256, "{}", metrics.guest_counters.len());
    assert!(metrics.guest_counters.keys().all(|name| name.len() <= 128), "no megabyte names kept");
    assert_eq!(metrics.guest_counters_refused, 64 + 1000 - metrics.guest_counters.len() as u64);
}

#[test]
fn max_memory_bounds_all_of_a_components_memories_together() {
    use wasmtel_tests::crafted::multi_memory_plugin;
    let (runtime, _cache) = runtime();
    let with_cap = |mib| {
        let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
        config.limits.max_memory = ByteSize::mib(mib);
        config
    };
    // 1 MiB + 48 MiB: within 64 MiB, but not within 32 MiB though each memory is.
    let two = multi_memory_plugin(2, 768);
    let plugin = runtime.load_plugin("two-memories", ComponentSource::Bytes(two.clone()), with_cap(64)).unwrap();
    assert_still_serves(&plugin);
    let error = runtime.load_plugin("two-memories", ComponentSource::Bytes(two), with_cap(32)).err().unwrap();
    let text = error.to_string();
    assert!(text.contains("two-memories") && text.contains("memory limit"), "{text}");

    // Thirteen small memories: refused whatever the cap, naming the reason.
    let many = multi_memory_plugin(13, 1);
    let error = runtime.load_plugin("many-memories", ComponentSource::Bytes(many), with_cap(1024)).err().unwrap();
    let text = error.to_string();
    assert!(text.contains("many-memories") && text.contains("memor"), "{text}");
}

#[test]
fn output_that_expands_past_the_element_limit_is_refused() {
    // 4 MiB of empty spans: 2M elements from a one-span input.
    let (error, _plugin, _cache) = {
        let (runtime, cache) = runtime();
        let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
        config.limits.max_output_bytes = ByteSize::mib(8);
        config.limits.timeout = Duration::from_secs(5);
        let plugin = load(&runtime, HOSTILE, config).unwrap();
        let error = plugin.process(Signal::Traces, &span_named("expand-4"), None).unwrap_err();
        assert_still_serves(&plugin);
        (error, plugin, cache)
    };
    assert_eq!(error.kind, FailureKind::OutputTooLarge, "{error}");
    assert!(error.message.contains("max_output_elements"), "{error}");
    // An explicit limit lets a plugin that really enriches do so.
    let (runtime, _cache) = runtime();
    let mut config = PluginConfig { on_error: Some(OnError::Fail), ..PluginConfig::default() };
    config.limits.max_output_elements = Some(1 << 20);
    config.limits.timeout = Duration::from_secs(5);
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    assert!(matches!(plugin.process(Signal::Traces, &span_named("expand-1"), None), Ok(Outcome::Replaced(_))));
}

#[test]
fn output_with_ids_no_collector_accepts_is_refused() {
    let (error, _plugin, _cache) = fail_with("short-trace-id");
    assert_eq!(error.kind, FailureKind::InvalidOutput, "{error}");
    assert!(error.message.contains("trace ID"), "{error}");
}

#[test]
fn the_quarantine_stays_within_its_budget() {
    let (runtime, _cache) = runtime();
    let quarantine = tempfile::tempdir().unwrap();
    let config = PluginConfig {
        on_error: Some(OnError::Drop),
        quarantine_dir: Some(quarantine.path().to_path_buf()),
        quarantine_max_bytes: ByteSize::kib(2),
        ..PluginConfig::default()
    };
    let plugin = load(&runtime, HOSTILE, config).unwrap();
    for _ in 0..40 {
        assert_eq!(plugin.process(Signal::Traces, &span_named("garbage"), None).unwrap(), Outcome::Dropped);
    }
    let used: u64 = std::fs::read_dir(quarantine.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(used <= 2048, "{used} bytes quarantined");
    let metrics = plugin.metrics();
    assert!(metrics.quarantined >= 1 && metrics.quarantine_skipped >= 30, "{metrics:?}");
    assert_eq!(metrics.quarantined + metrics.quarantine_skipped, 40, "every failure is kept or counted");
}
