//! `wasmtel._native`: the Rust half of the `wasmtel` Python package. The
//! Python half (`python/wasmtel`) turns dicts into JSON and JSON back into
//! dicts, so this module speaks plain strings and bytes.
//!
//! Every call that runs a batch, starts or stops a pipeline, or loads a
//! component releases the GIL: other Python threads go on meanwhile, and
//! several threads may export into one pipeline at once.

mod encode;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use wasmtel_dataflow::{EmbeddedError, EmbeddedPipeline, EmbeddedStats};
use wasmtel_registry::Policy;
use wasmtel_runtime::{Outcome, Plugin, PluginConfig, ProcessError, Signal};

/// What `NativePlugin.process` returns: the outcome's kind, the replaced
/// bytes, and the client items left out at admission (count, message).
type ProcessResult<'py> = (&'static str, Option<Bound<'py, PyBytes>>, Option<(u64, String)>);

pyo3::create_exception!(_native, WasmtelError, PyException, "Base class of every wasmtel error.");
pyo3::create_exception!(
    _native,
    ConfigError,
    WasmtelError,
    "A pipeline spec, plugin config or component that cannot be used; raised at construction."
);
pyo3::create_exception!(
    _native,
    RefusedError,
    WasmtelError,
    "The pipeline refused a batch (a node Nacked it); `permanent` says whether retrying can help."
);
pyo3::create_exception!(
    _native,
    PluginError,
    WasmtelError,
    "A plugin failed on a batch (trap, timeout, memory, bad output...) and its policy is `fail`."
);
pyo3::create_exception!(
    _native,
    PipelineError,
    WasmtelError,
    "The pipeline is stopped, shutting down, timed out, or failed while running."
);

fn signal(name: &str) -> PyResult<Signal> {
    name.parse().map_err(|_| PyValueError::new_err(format!("unknown signal {name:?}: traces, metrics or logs")))
}

/// The exception for `error`, with the details Python code branches on as attributes.
fn embedded_error(py: Python<'_>, error: EmbeddedError) -> PyErr {
    let message = error.to_string();
    match error {
        EmbeddedError::Spec(_) | EmbeddedError::Start(_) | EmbeddedError::Read { .. } => ConfigError::new_err(message),
        EmbeddedError::InvalidInput { .. } => PyValueError::new_err(message),
        EmbeddedError::Refused { reason, permanent } => {
            with_attributes(py, RefusedError::new_err(message), reason, permanent)
        }
        _ => PipelineError::new_err(message),
    }
}

fn process_error(py: Python<'_>, error: ProcessError) -> PyErr {
    let (kind, permanent) = (error.kind.as_str(), error.is_permanent());
    let err = with_attributes(py, PluginError::new_err(error.to_string()), error.message, permanent);
    // Setting an attribute on a fresh exception instance cannot fail in practice;
    // if it did, the exception still carries the full message.
    let _ = err.value(py).setattr("kind", kind);
    err
}

fn with_attributes(py: Python<'_>, err: PyErr, reason: String, permanent: bool) -> PyErr {
    let value = err.value(py);
    let _ = value.setattr("reason", reason);
    let _ = value.setattr("permanent", permanent);
    err
}

fn stats_tuple(stats: EmbeddedStats) -> (u64, u64, u64, u64) {
    (stats.accepted, stats.refused, stats.stopped, stats.in_flight)
}

fn timeout(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|e| PyValueError::new_err(format!("timeout {seconds}: {e}")))
}

/// An embedded otap-dataflow pipeline (see `wasmtel.Pipeline`). Shared by
/// every thread that exports into it; `shutdown` refuses later exports and
/// lets the ones in progress finish.
#[pyclass(frozen, module = "wasmtel._native")]
struct NativePipeline {
    pipeline: EmbeddedPipeline,
}

#[pymethods]
impl NativePipeline {
    /// Starts a pipeline from a spec in JSON (or YAML) text; relative
    /// component paths resolve against `base_dir` (the working directory if None).
    #[staticmethod]
    #[pyo3(signature = (text, base_dir=None))]
    fn start(py: Python<'_>, text: &str, base_dir: Option<PathBuf>) -> PyResult<Self> {
        let pipeline = py
            .detach(|| match base_dir {
                Some(dir) => EmbeddedPipeline::start_in(text, &dir),
                None => EmbeddedPipeline::start_yaml(text),
            })
            .map_err(|e| embedded_error(py, e))?;
        Ok(NativePipeline { pipeline })
    }

    /// Starts a pipeline from a spec file (the YAML `wasmtel serve` reads).
    #[staticmethod]
    fn start_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let pipeline = py.detach(|| EmbeddedPipeline::start_file(&path)).map_err(|e| embedded_error(py, e))?;
        Ok(NativePipeline { pipeline })
    }

    /// Hands an OTLP `Export*ServiceRequest` over and waits for its outcome.
    /// A `bytes` object is handed over without a copy (the pipeline keeps a
    /// reference to it while the batch is in flight).
    fn export(&self, py: Python<'_>, signal_name: &str, data: PyBackedBytes) -> PyResult<()> {
        let signal = signal(signal_name)?;
        py.detach(|| self.pipeline.export(signal, Bytes::from_owner(data))).map_err(|e| embedded_error(py, e))
    }

    /// Waits until every batch handed over so far has completed.
    fn flush(&self, py: Python<'_>, timeout_seconds: f64) -> PyResult<(u64, u64, u64, u64)> {
        let wait = timeout(timeout_seconds)?;
        py.detach(|| self.pipeline.flush(wait)).map(stats_tuple).map_err(|e| embedded_error(py, e))
    }

    /// (accepted, refused, stopped, in_flight) so far.
    fn stats(&self) -> (u64, u64, u64, u64) {
        stats_tuple(self.pipeline.stats())
    }

    /// Each wasm node's plugin metrics, as JSON.
    fn plugin_metrics(&self) -> PyResult<String> {
        serde_json::to_string(&self.pipeline.plugin_metrics()).map_err(|e| PipelineError::new_err(e.to_string()))
    }

    /// Finishes the batches in flight, stops the pipeline; later exports
    /// raise. Returns the final stats, or None if it was already shut down.
    fn shutdown(&self, py: Python<'_>, timeout_seconds: f64) -> PyResult<Option<(u64, u64, u64, u64)>> {
        let wait = timeout(timeout_seconds)?;
        if self.pipeline.is_closed() {
            return Ok(None);
        }
        py.detach(|| self.pipeline.close(wait)).map(|stats| Some(stats_tuple(stats))).map_err(|e| embedded_error(py, e))
    }

    /// Whether `shutdown` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.pipeline.is_closed()
    }

    /// `host:port` of the dashboard, when the spec sets
    /// `engine.custom.wasmtel.dashboard.bind_address`.
    #[getter]
    fn dashboard_address(&self) -> Option<String> {
        self.pipeline.dashboard_address().map(|address| address.to_string())
    }
}

/// One plugin, outside any pipeline (see `wasmtel.Plugin`).
#[pyclass(frozen, module = "wasmtel._native")]
struct NativePlugin {
    plugin: Plugin,
}

#[pymethods]
impl NativePlugin {
    /// Resolves `component` under the registry policy (JSON), loads it with
    /// the plugin settings (JSON, the keys of a wasm node's config) and runs `init`.
    #[staticmethod]
    fn load(py: Python<'_>, component: &str, name: Option<String>, settings: &str, policy: &str) -> PyResult<Self> {
        let config =
            PluginConfig::from_json(settings).map_err(|e| ConfigError::new_err(format!("{component}: {e}")))?;
        let policy =
            Policy::from_json(policy).map_err(|e| ConfigError::new_err(format!("{component}: registry: {e}")))?;
        let name = name.unwrap_or_else(|| wasmtel_registry::plugin_name(component));
        let plugin = py
            .detach(|| {
                let runtime = wasmtel_dataflow::shared_runtime::runtime().map_err(|e| e.to_string())?;
                wasmtel_registry::load_plugin(&runtime, &name, component, config, &policy).map_err(|e| e.to_string())
            })
            .map_err(ConfigError::new_err)?;
        Ok(NativePlugin { plugin })
    }

    /// Runs one batch: ("unchanged" | "dropped", None, rejected) or
    /// ("replaced", bytes, rejected), where rejected is (items, message) for
    /// client items left out at admission, else None. A failure under
    /// `on_error: fail` raises PluginError.
    #[pyo3(signature = (signal_name, data, timeout_seconds=None))]
    fn process<'py>(
        &self,
        py: Python<'py>,
        signal_name: &str,
        data: &[u8],
        timeout_seconds: Option<f64>,
    ) -> PyResult<ProcessResult<'py>> {
        let signal = signal(signal_name)?;
        let deadline = timeout_seconds.map(timeout).transpose()?;
        let processed = py
            .detach(|| self.plugin.process_reporting(signal, data, deadline, None))
            .map_err(|e| process_error(py, e))?;
        let rejected = processed.rejected.map(|rejected| (rejected.items, rejected.message()));
        Ok(match processed.outcome {
            Outcome::Unchanged => ("unchanged", None, rejected),
            Outcome::Dropped => ("dropped", None, rejected),
            Outcome::Replaced(bytes) => ("replaced", Some(PyBytes::new(py, &bytes)), rejected),
        })
    }

    /// The plugin's name (logs, errors, metrics).
    #[getter]
    fn name(&self) -> &str {
        self.plugin.name()
    }

    /// The plugin's metrics, as JSON.
    fn metrics(&self) -> PyResult<String> {
        serde_json::to_string(&self.plugin.metrics()).map_err(|e| PluginError::new_err(e.to_string()))
    }
}

/// A sequence of the SDK's `ReadableSpan`s as the bytes of an OTLP
/// `ExportTraceServiceRequest` (what `encode_spans(...).SerializeToString()`
/// of the official encoder gives, without building Python protobuf objects).
#[pyfunction]
fn encode_spans<'py>(py: Python<'py>, spans: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &encode::encode_spans(spans)?))
}

/// The module `wasmtel._native`.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<NativePipeline>()?;
    module.add_class::<NativePlugin>()?;
    module.add_function(wrap_pyfunction!(encode_spans, module)?)?;
    module.add("WasmtelError", py.get_type::<WasmtelError>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    module.add("RefusedError", py.get_type::<RefusedError>())?;
    module.add("PluginError", py.get_type::<PluginError>())?;
    module.add("PipelineError", py.get_type::<PipelineError>())?;
    Ok(())
}
