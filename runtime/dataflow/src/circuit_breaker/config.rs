//! The node's `config:`: when the circuit opens and how it probes.

use std::time::Duration;

use otel_arrow_dfe_config::error::Error as ConfigError;
use serde::Deserialize;

use super::CIRCUIT_BREAKER_URN;
use crate::config_error;

/// Node configuration (`config:` of a `urn:wasmtel:processor:circuit_breaker` node).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Consecutive retryable failures that open the circuit.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe is let through.
    #[serde(default = "default_open_duration", with = "humantime_serde")]
    pub open_duration: Duration,
    /// How long a probe may go unanswered before it counts as lost.
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// Count a downstream refusal of our credentials (gRPC `UNAUTHENTICATED`
    /// or `PERMISSION_DENIED`, which the engine's exporters report as
    /// permanent) as an endpoint failure, and pass it upstream as retryable:
    /// the batch is fine, the token or certificate is not, and the batch
    /// should wait for the fix rather than be dropped.
    #[serde(default = "default_true")]
    pub retry_credential_refusals: bool,
    /// Set by `wasmtel serve` and the embedded pipeline: the dashboard board
    /// each instance posts its state to.
    #[serde(default)]
    pub status_board: Option<String>,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: default_threshold(),
            open_duration: default_open_duration(),
            probe_timeout: default_probe_timeout(),
            retry_credential_refusals: true,
            status_board: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_threshold() -> u32 {
    5
}

fn default_open_duration() -> Duration {
    Duration::from_secs(5)
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(30)
}

impl CircuitBreakerConfig {
    pub(super) fn from_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Self =
            serde_json::from_value(value.clone()).map_err(|e| config_error(format!("{CIRCUIT_BREAKER_URN}: {e}")))?;
        if config.failure_threshold == 0 {
            return Err(config_error(format!("{CIRCUIT_BREAKER_URN}: failure_threshold must be at least 1")));
        }
        if config.probe_timeout.is_zero() {
            return Err(config_error(format!("{CIRCUIT_BREAKER_URN}: probe_timeout must be greater than zero")));
        }
        Ok(config)
    }
}
