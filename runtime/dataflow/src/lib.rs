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
//! - [`segment`]: the Rust part of a Go collector pipeline (its Rust
//!   processors and exporters as one pipeline), and the node factory list
//!   and config validation the collector's Go factories call;
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
mod channels;
pub mod circuit_breaker;
pub mod dashboard;
pub mod embedded;
mod embedded_exporter;
mod embedded_receiver;
mod otlp_encoder;
pub mod sdk;
pub mod segment;
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
pub use embedded::{EmbeddedError, EmbeddedPipeline, EmbeddedStats, NodeMetric, NodeMetricKind};
pub use embedded_exporter::{EMBEDDED_EXPORTER_URN, Output, Refusal};
pub use embedded_receiver::EMBEDDED_RECEIVER_URN;
pub use segment::{Segment, SegmentError, SegmentMetrics, SegmentSpec};
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
pub(crate) const MIN_TOKEN_CHARS: usize = 24;

/// Least entropy a bearer token must show, by [`token_bits`].
pub(crate) const MIN_TOKEN_BITS: f64 = 64.0;

/// What a token must be, for error messages.
pub(crate) const TOKEN_RULE: &str = "one word of at least 24 characters that looks random (at least 64 bits by its \
     character statistics, not repeating itself; `wasmtel token FILE` writes one)";

/// Whether `token` is one word of at least [`MIN_TOKEN_CHARS`] characters
/// showing at least [`MIN_TOKEN_BITS`] of entropy.
pub(crate) fn is_strong_token(token: &str) -> bool {
    token.chars().count() >= MIN_TOKEN_CHARS
        && !token.contains(char::is_whitespace)
        && token_bits(token) >= MIN_TOKEN_BITS
        && !repeats_itself(token)
}

/// Whether most of `token` repeats an earlier part of it at some period
/// shorter than half its length (`passwordpassword…`, `Secret1Secret1…`):
/// then its length says little about how hard it is to guess. A heuristic,
/// as the whole check is: `wasmtel token` writes tokens that need none.
fn repeats_itself(token: &str) -> bool {
    let chars: Vec<char> = token.chars().collect();
    (1..chars.len() / 2).any(|period| {
        let same = (period..chars.len()).filter(|&i| chars[i] == chars[i - period]).count();
        same * 4 >= (chars.len() - period) * 3
    })
}

/// A rough estimate of a token's entropy from its statistics alone: its
/// length times the lower of two per-character Shannon entropies, of its
/// characters and of the steps between neighbours. Short repeats (`aaaa…`,
/// `abab…`) score low on the first, runs (`abcd…`, `0123…`) on the second; a
/// random token scores high on both. It knows no words or keyboard rows.
pub(crate) fn token_bits(token: &str) -> f64 {
    let chars: Vec<u32> = token.chars().map(u32::from).collect();
    let steps: Vec<i64> = chars.windows(2).map(|pair| i64::from(pair[1]) - i64::from(pair[0])).collect();
    let per_char = shannon(&chars).min(shannon(&steps));
    per_char * chars.len() as f64
}

fn shannon<T: Ord>(items: &[T]) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for item in items {
        *counts.entry(item).or_insert(0usize) += 1;
    }
    let total = items.len() as f64;
    counts.values().map(|&n| n as f64 / total).map(|p| -p * p.log2()).sum()
}

/// A new bearer token: 256 random bits as 64 hex digits.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn guessable_tokens_are_refused_and_random_ones_accepted() {
        for weak in [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababab",
            "abcdefghijklmnopqrstuvwxyzabcdef",
            "0123456789012345678901234567890123456789",
            "short-but-random-Xq9",
            "has a space in it and is long enough",
            "passwordpasswordpassword",
            "Password1Password1Password1",
        ] {
            assert!(!is_strong_token(weak), "{weak}: {} bits", token_bits(weak));
        }
        for _ in 0..200 {
            let token = new_token().unwrap();
            assert!(is_strong_token(&token), "{token}: {} bits", token_bits(&token));
        }
        // What operators write by hand from a password manager.
        assert!(is_strong_token("q7LrT2vXe9NwB4mZk1HsYc8P"), "{}", token_bits("q7LrT2vXe9NwB4mZk1HsYc8P"));
    }
}
