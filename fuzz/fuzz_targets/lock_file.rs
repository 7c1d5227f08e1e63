//! `LockFile::load` must never panic on any file contents. The bytes are
//! written to one temporary file per process, overwritten each iteration.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasmtel_registry::LockFile;

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("wasmtel-fuzz-lock-{}.json", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(path(), data).expect("write the temporary lock file");
    if let Ok(lock) = LockFile::load(path()) {
        for key in lock.components.keys() {
            let _ = lock.manifest(key);
        }
    }
});
