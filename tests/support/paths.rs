//! Where the guest components built by `scripts/build-components.sh` live.
//! Shared by the tests and `runtime/benches` (included with `#[path]`).

use std::path::PathBuf;

/// Directory of the guest components built by `scripts/build-components.sh`.
pub fn components_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMTEL_COMPONENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("wasm32-wasip2/release")
}

/// Path of a built component; panics with the command to build it if missing.
pub fn component(crate_name: &str) -> PathBuf {
    let path = components_dir().join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} is missing: build the guests first with scripts/build-components.sh",
        path.display()
    );
    path
}

