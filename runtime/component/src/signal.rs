//! The three OTLP signals, named as configurations, manifests and the CLI
//! name them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One OTLP signal; its bytes are the matching `Export*ServiceRequest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Spans (`ExportTraceServiceRequest`).
    Traces,
    /// Metric data points (`ExportMetricsServiceRequest`).
    Metrics,
    /// Log records (`ExportLogsServiceRequest`).
    Logs,
}

impl Signal {
    /// Every signal, in this order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The number the C ABI and the bridge protocol carry (0 traces, 1 metrics, 2 logs).
    pub fn code(self) -> u32 {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }

    /// The signal of a [`Signal::code`].
    pub fn from_code(code: u32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The lowercase name used in configs, manifests and the CLI (`traces`, `metrics`, `logs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// What one item of the signal is called (for counts: "4 spans").
    pub fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal name that is none of traces, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?} (expected traces, metrics or logs)")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "traces" | "trace" | "spans" => Ok(Signal::Traces),
            "metrics" | "metric" => Ok(Signal::Metrics),
            "logs" | "log" => Ok(Signal::Logs),
            other => Err(UnknownSignal(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for signal in Signal::ALL {
            assert_eq!(signal.as_str().parse::<Signal>(), Ok(signal));
        }
        assert_eq!("Spans".parse::<Signal>(), Ok(Signal::Traces));
        assert_eq!("profiles".parse::<Signal>(), Err(UnknownSignal("profiles".into())));
    }
}
