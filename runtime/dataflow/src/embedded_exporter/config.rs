//! The node's `config:`: which in-process channel it hands batches to.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmbeddedExporterConfig {
    /// The name an `EmbeddedPipeline` registered its egress under.
    pub(super) channel: String,
    /// Batches handed over and not answered yet, at most; then the node
    /// takes no more until one is answered (backpressure upstream).
    #[serde(default = "default_max_in_flight")]
    pub(super) max_in_flight: usize,
}

fn default_max_in_flight() -> usize {
    64
}
