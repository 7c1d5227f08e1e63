//! Where the guest components built by `scripts/build-components.sh` live.
//! Shared by the tests and `runtime/benches` (included with `#[path]`).

use std::path::PathBuf;

/// Directory of the guest components built by `scripts/build-components.sh`.
pub fn components_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMTEL_COMPONENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = option_env!("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    target.join("wasm32-wasip2/release")
}

/// The directory holding `wit/`, found upward from the crate being built.
pub fn workspace_root() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .find(|dir| dir.join("wit").join("plugin.wit").is_file())
        .map(PathBuf::from)
        .unwrap_or(crate_dir)
}

/// Path of a built component; panics with the command to build it if missing.
pub fn component(crate_name: &str) -> PathBuf {
    let path = components_dir().join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.is_file(), "{} is missing: build the guests first with scripts/build-components.sh", path.display());
    path
}
