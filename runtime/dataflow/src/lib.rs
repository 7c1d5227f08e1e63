//! wasmtel on the otap-dataflow engine.
//!
//! - [`wasm_processor`]: `urn:wasmtel:processor:wasm`, a processor node that runs
//!   a sandboxed wasm component on every batch;
//! - [`arrow_ipc_exporter`]: `urn:wasmtel:exporter:arrow_ipc`, Arrow IPC stream
//!   files per signal with size/time rotation and retention;
//! - [`circuit_breaker`]: `urn:wasmtel:processor:circuit_breaker`, fails fast
//!   while a downstream exporter keeps refusing, so a retry processor backs off;
//! - [`dashboard`]: the operator's page and JSON status API, fed by the
//!   running nodes;
//! - [`embedded`]: an in-process pipeline that takes OTLP bytes directly;
//! - [`serve`]: the `wasmtel serve` service, with its guard in front of the
//!   engine's admin API;
//! - [`token_authorizer`]: `urn:wasmtel:extension:token_authorizer`, bearer
//!   tokens the engine's OTLP receiver admits;
//! - [`spec`]: the pipeline spec preparation `serve` and [`embedded`] share;
//! - [`shared_runtime`]: the one wasmtel runtime every wasm node of the process uses.
//!
//! Each node is a folder as in the engine's own crates: `mod.rs` (the node and
//! its factory), `config.rs`, `metrics.rs` and a README with its settings.
//!
//! Nodes register themselves in the engine's factory slices. A binary that
//! builds pipelines must link this crate (`use wasmtel_dataflow as _;`), and
//! the core nodes (this crate does that for `otel_arrow_dfe_core_nodes`).

pub mod arrow_ipc_exporter;
pub mod circuit_breaker;
pub mod dashboard;
pub mod embedded;
mod embedded_receiver;
pub mod sdk;
pub mod serve;
pub mod shared_runtime;
pub mod spec;
pub mod token_authorizer;
pub mod wasm_processor;

// Linking the core nodes registers their factories (receiver:otlp, exporter:otlp_grpc, …).
use otel_arrow_dfe_core_nodes as _;

/// The otap-dataflow pipeline factory with every linked node, ours included.
pub use otel_arrow_dfe_otap::OTAP_PIPELINE_FACTORY;

pub use arrow_ipc_exporter::ARROW_IPC_EXPORTER_URN;
pub use circuit_breaker::CIRCUIT_BREAKER_URN;
pub use embedded::{EmbeddedError, EmbeddedPipeline, EmbeddedStats};
pub use embedded_receiver::EMBEDDED_RECEIVER_URN;
pub use serve::{ServeError, ServeOptions};
pub use token_authorizer::TOKEN_AUTHORIZER_URN;
pub use wasm_processor::WASM_PROCESSOR_URN;

pub(crate) fn wasmtel_signal(signal: otel_arrow_dfe_config::SignalType) -> wasmtel_runtime::Signal {
    match signal {
        otel_arrow_dfe_config::SignalType::Traces => wasmtel_runtime::Signal::Traces,
        otel_arrow_dfe_config::SignalType::Metrics => wasmtel_runtime::Signal::Metrics,
        otel_arrow_dfe_config::SignalType::Logs => wasmtel_runtime::Signal::Logs,
    }
}

pub(crate) fn config_error(error: impl std::fmt::Display) -> otel_arrow_dfe_config::error::Error {
    otel_arrow_dfe_config::error::Error::InvalidUserConfig { error: error.to_string() }
}

/// Compares secrets (tokens) in time that depends on their length only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shortest bearer token accepted (admin token, receiver tokens): shorter ones are guessable.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

/// Whether `token` is one word of at least [`MIN_TOKEN_CHARS`] characters.
pub(crate) fn is_strong_token(token: &str) -> bool {
    token.chars().count() >= MIN_TOKEN_CHARS && !token.contains(char::is_whitespace)
}
