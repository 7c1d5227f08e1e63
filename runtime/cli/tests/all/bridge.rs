//! `wasmtel bridge` end to end: the real binary on a unix socket, driven as
//! the collector's subprocess mode drives it (the Go side has its own tests).

#![allow(clippy::unwrap_used, reason = "test and bench helpers: a panic is the failure report")]

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use tonic::Code;
use wasmtel_bridge::proto::{LoadRequest, ProcessRequest, REPLACED};
use wasmtel_bridge::shared_memory::{ABANDONED, BUSY, DONE, HEADER_LEN};
use wasmtel_bridge::{BridgeClient, FAILURE_KIND_TRAILER, HealthClient};
use wasmtel_tests::{component, span_named, string_attr, traces};

struct Bridge {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bridge {
    fn start() -> Bridge {
        Bridge::start_with(&[])
    }

    fn start_with(args: &[String]) -> Bridge {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.path().join("bridge.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
            .args(["bridge", "--watch-stdin", "--socket"])
            .arg(&socket)
            .args(args)
            .env("WASMTEL_HOME", dir.path().join("home"))
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wasmtel bridge starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the bridge never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bridge { child, socket, _dir: dir }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn channel(socket: &Path) -> tonic::transport::Channel {
    let socket = socket.to_path_buf();
    tonic::transport::Endpoint::from_static("http://bridge")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
        .expect("connects")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn load(name: &str, crate_name: &str, plugin_config: serde_json::Value) -> LoadRequest {
    LoadRequest {
        name: name.into(),
        reference: component(crate_name).display().to_string(),
        plugin_config_json: plugin_config.to_string(),
        registry_policy_json: String::new(),
    }
}

#[test]
fn plugins_load_once_and_batches_keep_their_outcomes_and_failure_codes() {
    let bridge = Bridge::start();
    runtime().block_on(async {
        let channel = channel(&bridge.socket).await;
        let health = HealthClient::new(channel.clone())
            .check(wasmtel_bridge::proto::HealthCheckRequest::default())
            .await
            .expect("health");
        assert_eq!(health.into_inner().status, wasmtel_bridge::proto::SERVING);

        let mut client = BridgeClient::new(channel);
        let redact = client
            .load(load("wasm/redact", "wasmtel-redact", serde_json::json!({"config": {"keys": ["user.email"]}})))
            .await
            .expect("redact loads")
            .into_inner()
            .plugin_id;
        let batch = traces(&[("GET /", vec![string_attr("user.email", "ada@example.com")])]).encode_to_vec();
        let response = client
            .process(ProcessRequest { plugin_id: redact, signal: 0, otlp: batch.into(), ..Default::default() })
            .await
            .expect("processed")
            .into_inner();
        assert_eq!(response.outcome, wasmtel_bridge::proto::REPLACED);
        assert!(!String::from_utf8_lossy(&response.otlp).contains("ada@example.com"));

        // A guest that loops, under a 100 ms client deadline: interrupted,
        // and the caller's deadline is what the failure says.
        let hostile = client
            .load(load(
                "wasm/hostile",
                "wasmtel-test-hostile",
                serde_json::json!({"on_error": "pass", "limits": {"timeout": "30s"}}),
            ))
            .await
            .expect("hostile loads")
            .into_inner()
            .plugin_id;
        let mut request = tonic::Request::new(ProcessRequest {
            plugin_id: hostile,
            signal: 0,
            otlp: span_named("loop").into(),
            ..Default::default()
        });
        request.set_timeout(Duration::from_millis(100));
        let status = client.process(request).await.expect_err("interrupted");
        // The client gives up at its deadline; the bridge must have too.
        assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
        let started = Instant::now();
        loop {
            let metrics = client
                .metrics(wasmtel_bridge::proto::MetricsRequest { plugin_id: hostile, segment_id: 0 })
                .await
                .expect("metrics")
                .into_inner();
            let metrics: serde_json::Value = serde_json::from_str(&metrics.json).unwrap();
            if metrics["errors"]["deadline_exceeded"] == 1 {
                assert_eq!(metrics["policy_passed"], 0, "a batch whose caller gave up is never passed");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "the loop was not interrupted: {metrics}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Permanent failures are FAILED_PRECONDITION, with the kind as a trailer.
        let mut request =
            ProcessRequest { plugin_id: hostile, signal: 0, otlp: span_named("garbage").into(), ..Default::default() };
        let fail = client
            .load(load("wasm/strict", "wasmtel-test-hostile", serde_json::json!({"on_error": "fail"})))
            .await
            .unwrap()
            .into_inner()
            .plugin_id;
        request.plugin_id = fail;
        let status = client.process(request).await.expect_err("invalid output");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(status.metadata().get(FAILURE_KIND_TRAILER).unwrap(), "invalid_output");
        assert!(status.message().contains("wasm/strict"), "{status:?}");

        // A component that cannot load is refused naming it and the cause.
        let status = client
            .load(LoadRequest {
                name: "wasm/ghost".into(),
                reference: "/nonexistent/ghost.wasm".into(),
                ..Default::default()
            })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("wasm/ghost") && status.message().contains("cannot read"), "{status:?}");
        let status =
            client.process(ProcessRequest { plugin_id: 999, ..Default::default() }).await.expect_err("unknown plugin");
        assert_eq!(status.code(), Code::NotFound);
    });
}

#[test]
fn the_bridge_exits_when_its_parent_closes_stdin() {
    let mut bridge = Bridge::start();
    drop(bridge.child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = bridge.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after its stdin closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!bridge.socket.exists(), "the socket is removed");
}

#[test]
fn a_socket_directory_others_can_enter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
        .args(["bridge", "--socket"])
        .arg(dir.path().join("bridge.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mode 0700"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A shared-memory slot as the collector makes one: an inheritable memfd
/// sealed against shrinking.
fn slot(size: u64, sealed: bool) -> std::fs::File {
    let memfd = memfd::MemfdOptions::new().allow_sealing(true).close_on_exec(false).create("slot").unwrap();
    memfd.as_file().set_len(size).unwrap();
    if sealed {
        memfd.add_seal(memfd::FileSeal::SealShrink).unwrap();
    }
    memfd.into_file()
}

/// A bridge given `N` sealed slots of `size` bytes, as the collector starts one.
fn bridge_with_slots<const N: usize>(size: u64) -> (Bridge, [std::fs::File; N]) {
    let slots = std::array::from_fn(|_| slot(size, true));
    let fds = slots.iter().map(|s| s.as_raw_fd().to_string()).collect::<Vec<_>>().join(",");
    (Bridge::start_with(&["--shared-slot-fds".into(), fds]), slots)
}

/// A batch of `input_len` bytes in slot `slot` (1-based) of `size` bytes, under `ticket`.
fn slot_request(plugin_id: u64, slot: u32, size: u64, ticket: u64, input_len: usize) -> ProcessRequest {
    ProcessRequest {
        plugin_id,
        signal: 0,
        slot,
        slot_size: size,
        slot_ticket: ticket,
        slot_input_len: input_len as u64,
        ..Default::default()
    }
}

fn put_batch(slot: &std::fs::File, state: u64, batch: &[u8]) {
    slot.write_all_at(&state.to_le_bytes(), 0).unwrap();
    slot.write_all_at(batch, HEADER_LEN as u64).unwrap();
}

fn state(slot: &std::fs::File) -> u64 {
    let mut word = [0u8; 8];
    slot.read_exact_at(&mut word, 0).unwrap();
    u64::from_le_bytes(word)
}

fn payload(slot: &std::fs::File, len: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; usize::try_from(len).unwrap()];
    slot.read_exact_at(&mut bytes, HEADER_LEN as u64).unwrap();
    bytes
}

#[test]
fn batches_travel_in_shared_memory_slots_and_an_abandoned_slot_is_never_written() {
    const SIZE: u64 = 1 << 16;
    let (bridge, slots) = bridge_with_slots::<2>(SIZE);
    runtime().block_on(async {
        let mut client = BridgeClient::new(channel(&bridge.socket).await);
        let redact = client
            .load(load(
                "wasm/redact",
                "wasmtel-redact",
                serde_json::json!({"config": {"keys": ["user.email"], "mask": "[a mask longer than the value]"}}),
            ))
            .await
            .unwrap()
            .into_inner()
            .plugin_id;
        let batch = traces(&[("GET /", vec![string_attr("user.email", "ada@example.com")])]).encode_to_vec();
        let in_slot = |slot: u32, size: u64, ticket: u64| slot_request(redact, slot, size, ticket, batch.len());
        let inline = client
            .process(ProcessRequest { plugin_id: redact, signal: 0, otlp: batch.clone().into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(inline.outcome, REPLACED);
        assert!(!inline.in_slot);

        // The second slot, ticket 7: the output comes back in the slot, the
        // same as inline, and the state says the bridge is done with ticket 7.
        put_batch(&slots[1], 7 << 2 | BUSY, &batch);
        let response = client.process(in_slot(2, SIZE, 7)).await.unwrap().into_inner();
        assert_eq!(response.outcome, REPLACED);
        assert!(response.in_slot && response.otlp.is_empty(), "{response:?}");
        assert_eq!(payload(&slots[1], response.slot_output_len), inline.otlp);
        assert_eq!(state(&slots[1]), 7 << 2 | DONE);

        // The caller gave up on ticket 8 (or the slot already carries ticket
        // 9): the bridge leaves the slot as it is.
        for slot_state in [8 << 2 | ABANDONED, 9 << 2 | BUSY] {
            put_batch(&slots[0], slot_state, &batch);
            let status = client.process(in_slot(1, SIZE, 8)).await.expect_err("abandoned");
            assert_eq!(status.code(), Code::Cancelled, "{status:?}");
            assert_eq!(state(&slots[0]), slot_state);
            assert_eq!(payload(&slots[0], batch.len() as u64), batch, "the slot's bytes are not touched");
        }

        // An output larger than the slot comes back inline.
        assert!(inline.otlp.len() > batch.len(), "the redacted batch is longer than the input");
        let small = (HEADER_LEN + inline.otlp.len() - 1) as u64;
        put_batch(&slots[0], 10 << 2 | BUSY, &batch);
        let response = client.process(in_slot(1, small, 10)).await.unwrap().into_inner();
        assert!(!response.in_slot);
        assert_eq!(response.otlp, inline.otlp);
        assert_eq!(state(&slots[0]), 10 << 2 | BUSY, "an output sent inline leaves the slot's state");

        // A looping guest in a slot: marking the call abandoned in the slot
        // (as the collector does when it gives up) interrupts it.
        let hostile = client
            .load(load("wasm/hostile", "wasmtel-test-hostile", serde_json::json!({"limits": {"timeout": "30s"}})))
            .await
            .unwrap()
            .into_inner()
            .plugin_id;
        let looping = span_named("loop");
        put_batch(&slots[1], 20 << 2 | BUSY, &looping);
        let request = slot_request(hostile, 2, SIZE, 20, looping.len());
        let started = Instant::now();
        let mut call_client = client.clone();
        let (result, ()) = tokio::join!(call_client.process(request), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            slots[1].write_all_at(&(20u64 << 2 | ABANDONED).to_le_bytes(), 0).unwrap();
        });
        let status = result.expect_err("interrupted");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "the loop ran on for {:?}", started.elapsed());

        // Requests that do not fit the slots are refused, as retryable
        // (INTERNAL): the collector's bookkeeping is wrong, not the batch.
        let mut beyond_input = in_slot(1, SIZE, 11);
        beyond_input.slot_input_len = SIZE;
        for (request, cause) in [
            (in_slot(3, SIZE, 11), "there are 2 slots"),
            (in_slot(1, SIZE * 2, 11), "beyond the file's"),
            (in_slot(1, 8, 11), "smaller than the header"),
            (beyond_input, "beyond the slot's"),
        ] {
            let status = client.process(request).await.expect_err(cause);
            assert_eq!(status.code(), Code::Internal, "{status:?}");
            assert!(status.message().contains(cause), "{status:?}");
        }
    });
}

/// A call's result, or a test failure when the bridge never answers (a
/// connection thread that died leaves the call waiting).
async fn answered<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), call).await.expect("the bridge answers within 30 s")
}

/// Slot batches run on their connection's own thread: a guest's WASI output
/// works there (it must not meet the connection's async runtime), and a
/// guest looping on one connection holds up no other connection's batch.
#[test]
fn each_connection_runs_its_slot_batches_on_its_own_thread() {
    const SIZE: u64 = 1 << 16;
    let (bridge, slots) = bridge_with_slots::<2>(SIZE);
    runtime().block_on(async {
        let mut looping_client = BridgeClient::new(channel(&bridge.socket).await);
        let mut other_client = BridgeClient::new(channel(&bridge.socket).await);
        let hostile = looping_client
            .load(load("wasm/hostile", "wasmtel-test-hostile", serde_json::json!({"limits": {"timeout": "30s"}})))
            .await
            .unwrap()
            .into_inner()
            .plugin_id;
        let in_slot = |slot: u32, ticket: u64, batch: &[u8]| slot_request(hostile, slot, SIZE, ticket, batch.len());

        // A guest that panics writes its message to stderr, then traps.
        let panicking = span_named("panic");
        put_batch(&slots[0], 1 << 2 | BUSY, &panicking);
        let status = answered(other_client.process(in_slot(1, 1, &panicking))).await.expect_err("trapped");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(status.metadata().get(FAILURE_KIND_TRAILER).unwrap(), "trap", "{status:?}");

        let looping = span_named("loop");
        put_batch(&slots[0], 2 << 2 | BUSY, &looping);
        let identity = span_named("GET /");
        put_batch(&slots[1], 3 << 2 | BUSY, &identity);
        let (looped, other) = tokio::join!(answered(looping_client.process(in_slot(1, 2, &looping))), async {
            // Sent while the first connection's guest loops.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let started = Instant::now();
            let response = answered(other_client.process(in_slot(2, 3, &identity))).await;
            let elapsed = started.elapsed();
            slots[0].write_all_at(&(2u64 << 2 | ABANDONED).to_le_bytes(), 0).unwrap();
            (response, elapsed)
        });
        let (response, elapsed) = other;
        assert_eq!(response.expect("served beside the loop").into_inner().outcome, wasmtel_bridge::proto::UNCHANGED);
        assert!(elapsed < Duration::from_secs(5), "the other connection waited {elapsed:?} for the loop");
        assert_eq!(looped.expect_err("interrupted").code(), Code::DeadlineExceeded);
    });
}

#[test]
fn a_slot_that_could_shrink_or_is_no_memfd_is_refused_at_start() {
    let unsealed = slot(4096, false);
    let plain = tempfile::tempfile().unwrap();
    for (fd, cause) in [(unsealed.as_raw_fd(), "not sealed against shrinking"), (plain.as_raw_fd(), "not a memfd")] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_wasmtel"))
            .args(["bridge", "--socket"])
            .arg(dir.path().join("bridge.sock"))
            .args(["--shared-slot-fds", &fd.to_string()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("descriptor {fd}")) && stderr.contains(cause), "{stderr}");
    }
}
