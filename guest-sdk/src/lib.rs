//! The wasmtel guest SDK: write an OpenTelemetry processor as a plain Rust
//! type, export it as a `wasmtel:plugin` component with one macro.
//!
//! ```
//! use wasmtel_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { min_severity: i32 }
//!
//! struct DropDebug { config: Config }
//!
//! impl Processor for DropDebug {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> { Ok(DropDebug { config }) }
//!     fn logs(&mut self, logs: &mut ExportLogsServiceRequest) -> Result<Action, ProcessError> {
//!         retain_log_records(logs, |_resource, record| record.severity_number >= self.config.min_severity)
//!     }
//! }
//!
//! wasmtel_sdk::export_processor!(DropDebug, signals: [logs], config_schema: "config.schema.json");
//! ```
//!
//! Everything but the export compiles natively too, so a processor's logic is
//! unit-tested with plain `cargo test` (see [`testing`]).

pub mod attributes;
pub mod edit;
pub mod host;
#[doc(hidden)]
pub mod manifest;
pub mod testing;
pub mod view;
mod walk;

pub use walk::*;

use prost::Message;
use serde::de::DeserializeOwned;

/// The OTLP data model (spans, log records, metrics, attributes, …).
pub use opentelemetry_proto::tonic as otlp;
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// The `wasmtel:plugin` WIT version this SDK builds against.
pub const WIT_VERSION: &str = "0.1.0";
/// This SDK's version, recorded in every component's manifest.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "processor-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_processor_plugin",
        default_bindings_module: "wasmtel_sdk::bindings",
    });
}

/// Which OTLP request a batch holds (the host's own type: one definition
/// for the runtime, the registry and guests).
pub use wasmtel_component::Signal;

/// What a raw processor did with a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forward the input as is; the host copies nothing back.
    Unchanged,
    /// Forward these OTLP bytes (same signal) instead.
    Replaced(Vec<u8>),
    /// Forward nothing.
    Dropped,
}

/// What a typed processor did with the decoded request it was handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing changed: no re-encoding, nothing copied back.
    Unchanged,
    /// The request was edited in place; the SDK re-encodes it (or reports
    /// `Dropped` when no resource is left).
    Modified,
    /// Drop the whole batch.
    Dropped,
}

/// A failure the processor reports on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessError {
    /// The same input will fail again: the collector must not retry it.
    Permanent(String),
    /// The failure may pass; the collector may retry.
    Retryable(String),
}

impl ProcessError {
    /// A [`ProcessError::Permanent`] with this message.
    pub fn permanent(message: impl Into<String>) -> Self {
        ProcessError::Permanent(message.into())
    }
    /// A [`ProcessError::Retryable`] with this message.
    pub fn retryable(message: impl Into<String>) -> Self {
        ProcessError::Retryable(message.into())
    }
    /// The message, without the permanent/retryable prefix that `Display` adds.
    pub fn message(&self) -> &str {
        match self {
            ProcessError::Permanent(m) | ProcessError::Retryable(m) => m,
        }
    }
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessError::Permanent(m) => write!(f, "permanent: {m}"),
            ProcessError::Retryable(m) => write!(f, "retryable: {m}"),
        }
    }
}

impl std::error::Error for ProcessError {}

/// A telemetry processor. Implement the signals you handle; the others
/// default to `Unchanged` (and the manifest's `signals` list lets the host
/// skip the call entirely).
pub trait Processor: Sized + 'static {
    /// The plugin's `config` from the operator, decoded from JSON. A missing
    /// config (`null`) is read as `{}`, so `#[serde(default)]` fields work.
    type Config: DeserializeOwned;

    /// Builds the processor once per instance; an `Err` refuses the
    /// configuration with a message the operator sees at load time.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Processes a decoded traces batch, editing it in place; called by the
    /// default [`process_raw`](Self::process_raw).
    fn traces(&mut self, _request: &mut ExportTraceServiceRequest) -> Result<Action, ProcessError> {
        Ok(Action::Unchanged)
    }

    /// Processes a decoded metrics batch, editing it in place; called by the
    /// default [`process_raw`](Self::process_raw).
    fn metrics(&mut self, _request: &mut ExportMetricsServiceRequest) -> Result<Action, ProcessError> {
        Ok(Action::Unchanged)
    }

    /// Processes a decoded logs batch, editing it in place; called by the
    /// default [`process_raw`](Self::process_raw).
    fn logs(&mut self, _request: &mut ExportLogsServiceRequest) -> Result<Action, ProcessError> {
        Ok(Action::Unchanged)
    }

    /// The raw entry point: decodes, dispatches to the typed methods and
    /// re-encodes only when they modified the request. Override it to work on
    /// bytes directly (a pass-through never needs to decode).
    fn process_raw(&mut self, signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        match signal {
            Signal::Traces => {
                let mut request = decode::<ExportTraceServiceRequest>(signal, &otlp)?;
                let action = self.traces(&mut request)?;
                Ok(finish(action, &request, request.resource_spans.is_empty()))
            }
            Signal::Metrics => {
                let mut request = decode::<ExportMetricsServiceRequest>(signal, &otlp)?;
                let action = self.metrics(&mut request)?;
                Ok(finish(action, &request, request.resource_metrics.is_empty()))
            }
            Signal::Logs => {
                let mut request = decode::<ExportLogsServiceRequest>(signal, &otlp)?;
                let action = self.logs(&mut request)?;
                Ok(finish(action, &request, request.resource_logs.is_empty()))
            }
        }
    }
}

/// Decodes an OTLP request; failure is a permanent error (the same bytes
/// will never decode).
pub fn decode<M: Message + Default>(signal: Signal, bytes: &[u8]) -> Result<M, ProcessError> {
    M::decode(bytes).map_err(|e| ProcessError::permanent(format!("input is not an OTLP {signal:?} request: {e}")))
}

/// Encodes an OTLP request (for processors that return `Outcome::Replaced` themselves).
pub fn encode<M: Message>(request: &M) -> Vec<u8> {
    request.encode_to_vec()
}

fn finish<M: Message>(action: Action, request: &M, empty: bool) -> Outcome {
    match action {
        Action::Unchanged => Outcome::Unchanged,
        Action::Dropped => Outcome::Dropped,
        Action::Modified if empty => Outcome::Dropped,
        Action::Modified => Outcome::Replaced(request.encode_to_vec()),
    }
}

/// Decodes the operator's config JSON the way `init` does.
pub fn parse_config<C: DeserializeOwned>(config_json: &str) -> Result<C, String> {
    let trimmed = config_json.trim();
    let json = if trimmed.is_empty() || trimmed == "null" { "{}" } else { trimmed };
    serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))
}

/// Commonly used names, for `use wasmtel_sdk::prelude::*`.
pub mod prelude {
    pub use crate::attributes::{AttributesExt, AttributesVecExt, IntoAnyValue, kv, string_value};
    pub use crate::otlp::common::v1::{AnyValue, KeyValue, any_value};
    pub use crate::view::{HasAttributes as _, View as _};
    pub use crate::walk::*;
    pub use crate::{
        Action, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Outcome,
        ProcessError, Processor, Signal, host,
    };
}

/// Glue the export macro expands to; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;

    use crate::bindings::exports::wasmtel::plugin::processor as wit;
    use crate::{Outcome, ProcessError, Processor, Signal, parse_config};

    pub use crate::bindings::__export_processor_plugin;

    /// The instance's processor: a component instance is single-threaded.
    pub struct Slot<P>(RefCell<Option<P>>);

    // SAFETY: wasm32 components are single-threaded; natively the slot is never used.
    #[allow(unsafe_code)]
    unsafe impl<P> Sync for Slot<P> {}

    impl<P: Processor> Default for Slot<P> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<P: Processor> Slot<P> {
        pub const fn new() -> Self {
            Slot(RefCell::new(None))
        }

        pub fn init(&self, config_json: &str) -> Result<(), String> {
            let processor = P::new(parse_config(config_json)?)?;
            *self.0.borrow_mut() = Some(processor);
            Ok(())
        }

        pub fn process(&self, signal: wit::Signal, otlp: Vec<u8>) -> Result<wit::Outcome, wit::ProcessError> {
            let mut slot = self.0.borrow_mut();
            let processor =
                slot.as_mut().ok_or_else(|| wit::ProcessError::Permanent("process called before init".to_string()))?;
            let signal = match signal {
                wit::Signal::Traces => Signal::Traces,
                wit::Signal::Metrics => Signal::Metrics,
                wit::Signal::Logs => Signal::Logs,
            };
            match processor.process_raw(signal, otlp) {
                Ok(Outcome::Unchanged) => Ok(wit::Outcome::Unchanged),
                Ok(Outcome::Replaced(bytes)) => Ok(wit::Outcome::Replaced(bytes)),
                Ok(Outcome::Dropped) => Ok(wit::Outcome::Dropped),
                Err(ProcessError::Permanent(m)) => Err(wit::ProcessError::Permanent(m)),
                Err(ProcessError::Retryable(m)) => Err(wit::ProcessError::Retryable(m)),
            }
        }
    }
}

/// Exports a [`Processor`] as the component's `wasmtel:plugin/processor` and
/// writes its manifest (name and version from Cargo, the signals it handles,
/// its config JSON Schema, WIT and SDK versions) into the `wasmtel-manifest`
/// custom section, which the host reads without running the guest.
///
/// ```text
/// wasmtel_sdk::export_processor!(Redact);
/// wasmtel_sdk::export_processor!(Redact, signals: [traces, logs]);
/// wasmtel_sdk::export_processor!(Redact, signals: [traces, logs], config_schema: "config.schema.json");
/// wasmtel_sdk::export_processor!(Sample, config_schema: "config.schema.json", failure_mode: open);
/// ```
/// `signals` defaults to all three; the host skips the call for signals not
/// listed. `config_schema` is a path relative to the crate's `Cargo.toml`;
/// the host validates every plugin config against it before `init`.
/// `failure_mode` decides the host's default `on_error`: `closed` (the
/// default: a batch the sandbox failed on is refused, so a redactor that
/// fails never forwards what it should hide) or `open` (forwarded unchanged:
/// for samplers and enrichers, whose failure leaks nothing).
/// Only wasm32 builds export anything, so several processors can be linked
/// into one native test or benchmark binary; `cargo test` also gets a test
/// checking that the manifest (with the schema file) is valid JSON.
#[macro_export]
macro_rules! export_processor {
    (
        $processor:ty
        $(, signals: [$($signal:ident),* $(,)?])?
        $(, config_schema: $schema:literal)?
        $(, failure_mode: $mode:ident)?
        $(,)?
    ) => {
        // Natively too: a type that is not a `Processor` fails `cargo test`, not only the wasm build.
        const _: () = {
            const fn assert_processor<P: $crate::Processor>() {}
            assert_processor::<$processor>()
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static SLOT: $crate::__private::Slot<$processor> = $crate::__private::Slot::new();

            struct Export;

            impl $crate::bindings::exports::wasmtel::plugin::processor::Guest for Export {
                fn init(config_json: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    SLOT.init(&config_json)
                }
                fn process(
                    signal: $crate::bindings::exports::wasmtel::plugin::processor::Signal,
                    otlp: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<
                    $crate::bindings::exports::wasmtel::plugin::processor::Outcome,
                    $crate::bindings::exports::wasmtel::plugin::processor::ProcessError,
                > {
                    SLOT.process(signal, otlp)
                }
            }

            $crate::__private::__export_processor_plugin!(Export with_types_in $crate::bindings);

            const SIGNALS: &[&str] = $crate::__signals!($([$($signal),*])?);
            const SCHEMA: &str = $crate::__schema!($($schema)?);
            const MODE: &str = $crate::__failure_mode!($($mode)?);
            const LEN: usize =
                $crate::manifest::len(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), MODE, SIGNALS, SCHEMA);
            #[used]
            #[unsafe(link_section = "wasmtel-manifest")]
            static MANIFEST: [u8; LEN] = $crate::manifest::bytes::<LEN>(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                MODE,
                SIGNALS,
                SCHEMA,
            );
        };

        #[cfg(test)]
        mod __wasmtel_manifest {
            #[test]
            fn wasmtel_manifest_is_valid_json() {
                const SIGNALS: &[&str] = $crate::__signals!($([$($signal),*])?);
                const SCHEMA: &str = $crate::__schema!($($schema)?);
                const MODE: &str = $crate::__failure_mode!($($mode)?);
                const LEN: usize =
                    $crate::manifest::len(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), MODE, SIGNALS, SCHEMA);
                const BYTES: [u8; LEN] = $crate::manifest::bytes::<LEN>(
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    MODE,
                    SIGNALS,
                    SCHEMA,
                );
                if let Err(error) = $crate::manifest::check(&BYTES) {
                    panic!("{error}");
                }
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __signals {
    () => {
        &["traces", "metrics", "logs"]
    };
    ([]) => {
        compile_error!("`signals: []` handles nothing; omit `signals` to handle all three")
    };
    ([$($signal:ident),+]) => {
        &[$($crate::__signal_name!($signal)),+]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __signal_name {
    (traces) => {
        "traces"
    };
    (metrics) => {
        "metrics"
    };
    (logs) => {
        "logs"
    };
    ($other:ident) => {
        compile_error!(concat!("unknown signal `", stringify!($other), "`: expected traces, metrics or logs"))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __failure_mode {
    () => {
        $crate::manifest::FAIL_CLOSED
    };
    (closed) => {
        $crate::manifest::FAIL_CLOSED
    };
    (open) => {
        $crate::manifest::FAIL_OPEN
    };
    ($other:ident) => {
        compile_error!(concat!("unknown failure_mode `", stringify!($other), "`: expected closed or open"))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __schema {
    () => {
        "null"
    };
    ($schema:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $schema))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::kv;
    use crate::testing::{self, span, traces};

    /// Edits spans per the config: `rename`, `clear` (Modified with nothing left) or nothing.
    struct Edit(String);

    impl Processor for Edit {
        type Config = String;

        fn new(mode: String) -> Result<Self, String> {
            Ok(Edit(mode))
        }

        fn traces(&mut self, request: &mut ExportTraceServiceRequest) -> Result<Action, ProcessError> {
            match self.0.as_str() {
                "rename" => {
                    request.resource_spans[0].scope_spans[0].spans[0].name = "renamed".into();
                    Ok(Action::Modified)
                }
                "clear" => {
                    request.resource_spans.clear();
                    Ok(Action::Modified)
                }
                "drop" => Ok(Action::Dropped),
                _ => Ok(Action::Unchanged),
            }
        }
    }

    fn edit(mode: &str) -> Edit {
        testing::new(&serde_json::Value::String(mode.into()).to_string()).unwrap()
    }

    #[test]
    fn actions_become_outcomes() {
        let input = traces(vec![kv("service.name", "s")], vec![span("a", vec![])]);
        let (outcome, out) = testing::run_typed(&mut edit("rename"), Signal::Traces, &input).unwrap();
        assert!(matches!(outcome, Outcome::Replaced(_)));
        assert_eq!(out.unwrap().resource_spans[0].scope_spans[0].spans[0].name, "renamed");
        assert_eq!(testing::run_typed(&mut edit("clear"), Signal::Traces, &input).unwrap().0, Outcome::Dropped);
        assert_eq!(testing::run_typed(&mut edit("drop"), Signal::Traces, &input).unwrap().0, Outcome::Dropped);
        assert_eq!(testing::run_typed(&mut edit("none"), Signal::Traces, &input).unwrap().0, Outcome::Unchanged);
    }

    #[test]
    fn unimplemented_signals_are_unchanged() {
        let logs = testing::logs(vec![], vec![testing::log_record(9, "x", vec![])]);
        assert_eq!(testing::run_typed(&mut edit("rename"), Signal::Logs, &logs).unwrap().0, Outcome::Unchanged);
    }

    #[test]
    fn undecodable_input_is_a_permanent_error_naming_the_signal() {
        let error = testing::run(&mut edit("none"), Signal::Metrics, &[0xff; 8]).unwrap_err();
        assert!(matches!(&error, ProcessError::Permanent(m) if m.contains("not an OTLP Metrics request")), "{error}");
        assert!(error.to_string().starts_with("permanent: "));
    }

    #[test]
    fn config_null_or_empty_reads_as_an_empty_object() {
        #[derive(serde::Deserialize, Debug)]
        struct C {
            #[serde(default)]
            n: u32,
        }
        assert_eq!(parse_config::<C>("null").unwrap().n, 0);
        assert_eq!(parse_config::<C>("  ").unwrap().n, 0);
        assert!(parse_config::<C>(r#"{"n": "x"}"#).unwrap_err().starts_with("invalid config: "));
    }
}
