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
    /// `fsync` each batch before acknowledging it.
    #[serde(default)]
    pub sync: bool,
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
        if config.max_file_bytes.as_u64() == 0 || config.max_file_age.is_zero() || config.check_interval.is_zero() {
            return Err(config_error(format!(
                "{ARROW_IPC_EXPORTER_URN}: max_file_bytes, max_file_age and check_interval must be positive"
            )));
        }
        Ok(config)
    }

    pub(super) fn write_options(&self) -> Result<IpcWriteOptions, arrow_schema::ArrowError> {
        let compression = match self.compression {
            Compression::None => None,
            Compression::Zstd => Some(CompressionType::ZSTD),
        };
        IpcWriteOptions::default().try_with_compression(compression)
    }
}
