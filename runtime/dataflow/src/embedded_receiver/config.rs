//! The node's `config:`: which in-process channel it serves.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmbeddedReceiverConfig {
    /// The name an `EmbeddedPipeline` registered its ingress under.
    pub(super) channel: String,
}
