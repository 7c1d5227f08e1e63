//! Per-plugin and per-runtime configuration, with the defaults operators get
//! when they say nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// How one plugin runs: the guest's own config plus the host's limits and policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    /// Passed to the guest's `init` as JSON; its schema is in the component's manifest.
    pub config: serde_json::Value,
    /// Resource limits of each instance and batch.
    pub limits: Limits,
    /// Unset: the default the component declares (its manifest's
    /// `failure_mode`: `fail` for fail-closed plugins such as `redact`, `pass`
    /// for fail-open ones); see [`crate::Plugin::on_error`].
    pub on_error: Option<OnError>,
    /// Capabilities beyond the hermetic sandbox (real clocks, randomness, environment); none by default.
    pub grants: Grants,
    /// When set, each batch that fails in the sandbox is written here for replay.
    pub quarantine_dir: Option<PathBuf>,
    /// Space this plugin's quarantined batches may take in `quarantine_dir`;
    /// past it, failing batches are counted but not written.
    pub quarantine_max_bytes: ByteSize,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            config: serde_json::Value::Null,
            limits: Limits::default(),
            on_error: None,
            grants: Grants::default(),
            quarantine_dir: None,
            quarantine_max_bytes: ByteSize::mib(64),
        }
    }
}

impl PluginConfig {
    /// Parses plugin settings from JSON; errors name the offending key path
    /// (e.g. `limits.max_memory: invalid value …`).
    pub fn from_json(json: &str) -> Result<PluginConfig, InvalidPluginConfig> {
        let deserializer = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(deserializer).map_err(InvalidPluginConfig::from)
    }

    /// As [`PluginConfig::from_json`], from an already parsed value (YAML files).
    pub fn from_value(value: serde_json::Value) -> Result<PluginConfig, InvalidPluginConfig> {
        serde_path_to_error::deserialize(value).map_err(InvalidPluginConfig::from)
    }
}

/// Plugin settings that do not parse, with the key path that broke.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct InvalidPluginConfig {
    /// Where in the settings, e.g. `limits.max_memory` (`.` for the top level).
    pub path: String,
    /// What serde found wrong there.
    pub source: serde_json::Error,
}

impl From<serde_path_to_error::Error<serde_json::Error>> for InvalidPluginConfig {
    fn from(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        InvalidPluginConfig { path: error.path().to_string(), source: error.into_inner() }
    }
}

/// Per-plugin resource limits; defaults: 128 MiB memory, 1 s per batch, 32 MiB output,
/// one warm instance per CPU (at least 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Cap on the guest's linear memory.
    pub max_memory: ByteSize,
    /// Wall-clock budget for one batch (enforced by epoch interruption).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest `replaced` output accepted from the guest (at most
    /// [`Limits::MAX_OUTPUT_BYTES`]).
    pub max_output_bytes: ByteSize,
    /// Warm instances kept for concurrent callers; more callers wait.
    pub max_instances: usize,
    /// Most nested messages (spans, records, points, attributes, values, …)
    /// a `replaced` output may hold, so a few bytes cannot make the next
    /// stage allocate gigabytes (an empty span is 2 bytes on the wire, far
    /// more decoded). Unset: 4 × the input's, plus 65536.
    pub max_output_elements: Option<u64>,
}

impl Limits {
    /// Upper bound of `max_output_bytes`: every caller's length type (Go's
    /// `int` on 32-bit hosts, protobuf's 2 GiB message limit) holds it.
    pub const MAX_OUTPUT_BYTES: u64 = 1 << 30;

    /// The most elements a `replaced` output of an input with
    /// `input_elements` may hold (see [`Limits::max_output_elements`]).
    pub fn output_elements_allowed(&self, input_elements: u64) -> u64 {
        self.max_output_elements.unwrap_or_else(|| input_elements.saturating_mul(4).saturating_add(1 << 16))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: ByteSize::mib(128),
            timeout: Duration::from_secs(1),
            max_output_bytes: ByteSize::mib(32),
            max_instances: std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
            max_output_elements: None,
        }
    }
}

/// What happens to a batch when the sandbox fails on it (trap, timeout,
/// memory cap, invalid or oversized output). Errors the guest returns on
/// purpose (`permanent` / `retryable`), backpressure and expired caller
/// deadlines always reach the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Forward the original batch unchanged (fail open).
    Pass,
    /// Count and discard the batch.
    Drop,
    /// Return the error to the caller (fail closed; the collector retries or refuses).
    Fail,
}

impl OnError {
    /// The `on_error` an operator gets without saying one: what the
    /// component's manifest declares it may do.
    pub fn by_default(mode: wasmtel_component::FailureMode) -> OnError {
        match mode {
            wasmtel_component::FailureMode::Closed => OnError::Fail,
            wasmtel_component::FailureMode::Open => OnError::Pass,
        }
    }
}

/// Capabilities beyond the hermetic default. Without a grant the guest sees a
/// clock frozen at the Unix epoch and a fixed-seed random source, so its output
/// is a pure function of its input and config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Real wall and monotonic clocks.
    pub clocks: bool,
    /// Real entropy for `wasi:random`.
    pub random: bool,
    /// Environment variables visible to the guest.
    pub env: BTreeMap<String, String>,
}

/// Process-wide settings of the runtime that hosts every plugin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Where precompiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Upper bound on instances alive at once across all plugins (pooling allocator slots).
    pub max_total_instances: u32,
    /// Writes `/tmp/perf-<pid>.map` so `perf` names the guests' compiled
    /// functions (wasmtime's `--profile perfmap`); off by default.
    pub perf_map: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { cache_dir: Some(default_home().join("cache")), max_total_instances: 256, perf_map: false }
    }
}

/// `$WASMTEL_HOME`, else `$XDG_CACHE_HOME/wasmtel`, else `~/.cache/wasmtel`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("WASMTEL_HOME") {
        return PathBuf::from(home);
    }
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("wasmtel");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("wasmtel"),
        None => std::env::temp_dir().join("wasmtel"),
    }
}
