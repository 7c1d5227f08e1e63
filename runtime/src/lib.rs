//! wasmtel host runtime: loads OpenTelemetry processor components
//! (`wasmtel:plugin` WIT world) into a hermetic wasmtime sandbox and runs OTLP
//! batches through them under per-plugin limits and an error policy.
//!
//! ```no_run
//! use wasmtel_runtime::{Runtime, PluginConfig, Signal, ComponentSource};
//! # fn main() -> anyhow::Result<()> {
//! let runtime = Runtime::new(Default::default())?;
//! let plugin = runtime.load_plugin(
//!     "redact",
//!     ComponentSource::Path("redact.wasm".into()),
//!     PluginConfig::default(),
//! )?;
//! let outcome = plugin.process(Signal::Traces, &[], None)?;
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
pub mod config;
mod error;
mod host;
pub mod inspect;
pub mod logging;
pub mod metrics;
pub mod otlp;
mod plugin;
mod runtime;

pub use config::{Grants, InvalidPluginConfig, Limits, OnError, PluginConfig, RuntimeConfig};
pub use error::{FailureKind, LoadError, ProcessError};
pub use metrics::MetricsSnapshot;
pub use otlp::Signal;
pub use plugin::{CANCEL_CHECK, Cancel, Outcome, Plugin, Processed, Rejected};
pub use runtime::{ComponentSource, LoadedComponent, MAX_COMPONENT_BYTES, Runtime, read_component_file};
pub use wasmtel_component::interfaces::WIT_VERSION;
pub use wasmtel_component::{FailureMode, Manifest};
