//! The node's `config:`: where files go, when they rotate, what is kept.

use std::path::PathBuf;
use std::time::Duration;

use arrow_ipc::CompressionType;
use arrow_ipc::writer::IpcWriteOptions;
use bytesize::ByteSize;
use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;

use super::ARROW_IPC_EXPORTER_URN;
use crate::config_error;

/// Node configuration (`config:` of a `urn:wasmtel:exporter:arrow_ipc` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrowIpcConfig {
    /// Root directory; created if missing. One sub-directory per signal.
    pub directory: PathBuf,
    /// Rotate once a file reaches this size (checked before each write, so a
    /// file may exceed it by one batch).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: ByteSize,
    /// Rotate files older than this.
    #[serde(default = "default_max_file_age", with = "humantime_serde")]
    pub max_file_age: Duration,
    /// How often age-based rotation and retention are checked.
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub check_interval: Duration,
    /// Which finished files to keep.
    #[serde(default)]
    pub retention: Retention,
    /// Arrow IPC body compression.
    #[serde(default)]
    pub compression: Compression,
    /// `fsync` each written record batch before acknowledging what it holds.
    #[serde(default)]
    pub sync: bool,
    /// How incoming batches are gathered into record batches.
    #[serde(default)]
    pub buffer: Buffer,
    /// Set by `wasmtel serve` and the embedded pipeline: the dashboard board
    /// each instance posts what it wrote to.
    #[serde(default)]
    pub status_board: Option<String>,
}

/// Gathering: the rows of several incoming batches go into one record batch,
/// written when a limit is reached; the incoming batches are acknowledged
/// once it is written (and synced, with `sync`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Buffer {
    /// Write once this many rows are gathered (per signal).
    pub max_rows: usize,
    /// Write once the gathered batches hold this many bytes of OTLP.
    pub max_bytes: ByteSize,
    /// Write rows gathered this long ago, however few.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Also write as soon as no further batch is waiting in the node's inbox
    /// (group commit): under load the queue fills and rows gather; a lone or
    /// sequential sender waits for no timer. `false` waits for a limit.
    pub when_idle: bool,
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer { max_rows: 8192, max_bytes: ByteSize::mib(8), flush_interval: Duration::from_secs(1), when_idle: true }
    }
}

/// Limits on finished files, per signal directory; the oldest go first.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Most finished files kept.
    pub max_files: Option<usize>,
    /// Finished files older than this are deleted.
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Most bytes of finished files kept.
    pub max_total_bytes: Option<ByteSize>,
}

/// Arrow IPC body compression of the record batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// Zstandard.
    Zstd,
}

fn default_max_file_bytes() -> ByteSize {
    ByteSize::mib(64)
}

fn default_max_file_age() -> Duration {
    Duration::from_secs(300)
}

fn default_check_interval() -> Duration {
    Duration::from_secs(1)
}

impl ArrowIpcConfig {
    /// Parses a node's `config:`; sizes, ages and the check interval must be positive.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_value(value.clone())
            .map_err(|e| config_error(format!("{ARROW_IPC_EXPORTER_URN}: {e}")))?;
        let buffer = &config.buffer;
        if config.max_file_bytes.as_u64() == 0
            || config.max_file_age.is_zero()
            || config.check_interval.is_zero()
            || buffer.max_rows == 0
            || buffer.max_bytes.as_u64() == 0
            || buffer.flush_interval.is_zero()
        {
            return Err(config_error(format!(
                "{ARROW_IPC_EXPORTER_URN}: max_file_bytes, max_file_age, check_interval and buffer.max_rows, \
                 max_bytes and flush_interval must be positive"
            )));
        }
        Ok(config)
    }

    /// How often the node wakes up: age rotation, retention, and rows that waited `flush_interval`.
    pub(super) fn tick_interval(&self) -> Duration {
        self.check_interval.min(self.buffer.flush_interval)
    }

    pub(super) fn write_options(&self) -> Result<IpcWriteOptions, arrow_schema::ArrowError> {
        let compression = match self.compression {
            Compression::None => None,
            Compression::Zstd => Some(CompressionType::ZSTD),
        };
        IpcWriteOptions::default().try_with_compression(compression)
    }
}
