//! `wasmtel-bridge`: the subprocess side of the collector's `wasm`
//! processor on its own, without the rest of the `wasmtel` command (the
//! otap-dataflow engine), so a collector can carry it. Same flags as
//! `wasmtel bridge`; a leading `bridge` argument is accepted and ignored, so
//! either binary runs as `<binary> bridge --socket PATH [--watch-stdin]`;
//! `factories` and `validate-node` answer a collector's Rust components.

use std::path::PathBuf;
use std::process::ExitCode;

use wasmtel_bridge::{BridgeOptions, shared_memory};
use wasmtel_runtime::RuntimeConfig;

const USAGE: &str = "usage: wasmtel-bridge [bridge] --socket PATH [--watch-stdin] [--max-total-instances N] [--no-cache] [--shared-slot-fds FD,...]
       wasmtel-bridge factories
       wasmtel-bridge validate-node KIND TYPE < settings.json";

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = wasmtel_bridge::node_tool(&all) {
        return code;
    }
    let mut socket = None;
    let mut watch_stdin = false;
    let mut runtime = RuntimeConfig::default();
    let mut slot_fds = Vec::new();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("bridge") {
        args.next();
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--socket" => socket = args.next().map(PathBuf::from),
            "--watch-stdin" => watch_stdin = true,
            "--no-cache" => runtime.cache_dir = None,
            "--shared-slot-fds" => match args.next().map(|list| shared_memory::parse_fds(&list)) {
                Some(Ok(fds)) => slot_fds = fds,
                Some(Err(error)) => {
                    eprintln!("error: --shared-slot-fds: {error}");
                    return usage();
                }
                None => return usage(),
            },
            "--max-total-instances" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => runtime.max_total_instances = n,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(socket) = socket else { return usage() };
    wasmtel_bridge::log_to_stderr_as_json(&std::env::var("WASMTEL_LOG").unwrap_or_else(|_| "info".into()));
    let slots = match shared_memory::Slots::inherited(&slot_fds) {
        Ok(slots) => slots,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    match wasmtel_bridge::serve(BridgeOptions { socket, runtime, watch_stdin, slots }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
