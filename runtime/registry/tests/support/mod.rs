//! Test set-up shared by the registry tests, the CLI tests and the benchmark:
//! a real CNCF distribution registry (Debian's `docker-registry`) on a loopback
//! port with its own storage, started and stopped per test.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const INSTALL: &str = "scripts/setup-registry.sh (installs Debian's docker-registry and oras)";

pub struct TestRegistry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl TestRegistry {
    /// Starts `docker-registry serve` on a free loopback port and waits until `/v2/` answers.
    pub fn start() -> TestRegistry {
        let binary =
            which("docker-registry").unwrap_or_else(|| panic!("docker-registry is not installed; run {INSTALL}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = TestRegistry { addr, dir, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_status(&registry.addr, "/v2/") != Some(200) {
            if let Some(Ok(Some(status))) = registry.child.as_mut().map(Child::try_wait) {
                panic!("docker-registry exited with {status}: {}", registry.log());
            }
            assert!(Instant::now() < deadline, "docker-registry did not start: {}", registry.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `oci://127.0.0.1:<port>/<path>`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// Where the registry keeps a blob's bytes (to tamper with them).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.path().join("data/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// Stops the registry; references to it are then unreachable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    free_port()
}

fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1)?.parse().ok()
}

/// A server answering every request with HTTP 500, until dropped.
pub struct FailingServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl FailingServer {
    pub fn start() -> FailingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut buf = [0u8; 4096];
                        let _ = stream.read(&mut buf);
                        let body = "registry exploded";
                        let _ = write!(
                            stream,
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FailingServer { addr, stop }
    }
}

impl Drop for FailingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("Cargo.lock").is_file())
        .expect("workspace")
        .to_path_buf()
}

/// A component built by `scripts/build-components.sh`.
pub fn component_path(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing; run scripts/build-components.sh", path.display());
    path
}

/// A valid component of at least `size` bytes: `base` plus a custom section of filler.
pub fn padded_component(base: &[u8], size: usize) -> Vec<u8> {
    let name = b"wasmtel-bench-padding";
    let filler = size.saturating_sub(base.len() + name.len() + 16).max(1);
    let mut payload = leb128(name.len() as u64);
    payload.extend_from_slice(name);
    // Pseudo-random filler, so compression anywhere on the path cannot flatter the numbers.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    payload.extend((0..filler).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let mut out = base.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(payload.len() as u64));
    out.extend(payload);
    out
}

fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

pub fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// The `oras` binary: `$ORAS`, `PATH`, or where `go install` put it.
pub fn oras() -> PathBuf {
    if let Some(path) = std::env::var_os("ORAS") {
        return PathBuf::from(path);
    }
    if let Some(path) = which("oras") {
        return path;
    }
    let gopath = Command::new("go")
        .args(["env", "GOPATH"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    let candidate = gopath.map(|p| PathBuf::from(p).join("bin/oras"));
    match candidate {
        Some(path) if path.is_file() => path,
        _ => panic!("oras is not installed; run {INSTALL}"),
    }
}

/// Every file under `dir` (to check nothing half-written was left).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
