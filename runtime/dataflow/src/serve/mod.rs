//! `wasmtel serve`: the otap-dataflow controller with the core nodes and
//! wasmtel's nodes, running an engine spec (`version: otel_dataflow/v1`).
//!
//! Before the spec reaches the engine, [`crate::spec::prepare`] makes
//! relative `component` paths absolute against the spec file's directory
//! (data directories stay relative to the working directory), pins registry
//! references, and reads `engine.custom.wasmtel.runtime`; `--admin-bind` and
//! `--cores` override the spec.
//!
//! When it runs:
//! - every receiver's `listening_addr` must be free: otap-dataflow binds
//!   them with `SO_REUSEPORT`, so a second serve on the same config would
//!   otherwise share the ports silently;
//! - the admin address is served by the [`admin_guard`]: the dashboard
//!   ([`crate::dashboard`]) and, behind it, the engine's own admin server,
//!   moved to an ephemeral loopback port.
//!
//! SIGINT/SIGTERM drain the pipelines (receivers stop, in-flight batches
//! finish, exporters flush and close their files) before the process exits;
//! a second signal exits at once.

pub mod admin_guard;

use std::path::{Path, PathBuf};

use otel_arrow_dfe_config::engine::OtelDataflowSpec;
use otel_arrow_dfe_controller::{BuildInfo, Controller, ControllerRunOptions};
use serde_json::Value;
use wasmtel_runtime::RuntimeConfig;

use crate::OTAP_PIPELINE_FACTORY;
use crate::dashboard::{PAGE_PATH, SERVE_BOARD};
use crate::spec::{SpecError, for_each_node};

/// Why `wasmtel serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The spec file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The spec file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The spec file cannot run.
    #[error("{path}: {source}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong with it.
        source: SpecError,
    },
    /// The engine failed while running.
    #[error("the pipelines failed: {0}")]
    Run(String),
    /// The admin guard could not start.
    #[error(transparent)]
    Admin(#[from] admin_guard::AdminGuardError),
    #[error(
        "{node}: {address} is already in use (another process listens there; otap-dataflow would share it through SO_REUSEPORT)"
    )]
    /// A receiver's address is taken by another process.
    AddressInUse {
        /// The receiver node.
        node: String,
        /// Its listening address.
        address: String,
    },
}

/// Command-line settings of `wasmtel serve`.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The engine spec (YAML or JSON).
    pub config: PathBuf,
    /// Overrides `engine.http_admin.bind_address`.
    pub admin_bind: Option<String>,
    /// Overrides every pipeline's core allocation with this many cores (0: all).
    pub cores: Option<usize>,
    /// Disables the precompiled-component cache.
    pub no_cache: bool,
    /// A file holding the bearer token admin writes (shutdown, reconfigure) need;
    /// without it they are refused.
    pub admin_token_file: Option<PathBuf>,
}

/// Reads, rewrites and validates the spec; returns it with the runtime settings.
pub fn load(options: &ServeOptions) -> Result<(OtelDataflowSpec, RuntimeConfig), ServeError> {
    let path = &options.config;
    let spec_error = |source: SpecError| ServeError::Spec { path: path.clone(), source };
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::Read { path: path.clone(), source })?;
    let mut spec: Value = serde_yaml::from_str(&text).map_err(|e| spec_error(SpecError::Yaml(e)))?;

    // A weak or unreadable token fails `--check` too, not only the start.
    if let Some(token_file) = &options.admin_token_file {
        admin_guard::read_token(token_file)?;
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut runtime = crate::spec::prepare(&mut spec, Some(&base)).map_err(spec_error)?;
    if options.no_cache {
        runtime.cache_dir = None;
    }

    crate::spec::post_to_board(&mut spec, SERVE_BOARD);
    let mut spec = crate::spec::to_engine_spec(&spec).map_err(spec_error)?;
    otel_arrow_dfe_controller::startup::apply_cli_overrides(&mut spec, options.cores, None, options.admin_bind.clone());
    // Validation loads every wasm node's plugin: the runtime takes its settings first.
    crate::shared_runtime::configure_runtime(runtime.clone());
    Controller::new(&OTAP_PIPELINE_FACTORY)
        .validate_engine_components(&spec)
        .map_err(|e| spec_error(SpecError::Nodes(e)))?;
    Ok((spec, runtime))
}

/// Runs the spec until a termination signal drains it.
pub fn run(options: &ServeOptions) -> Result<(), ServeError> {
    let (mut spec, _) = load(options)?;
    for (node, address) in receiver_addresses(&spec) {
        if let Err(error) = std::net::TcpListener::bind(&address)
            && error.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(ServeError::AddressInUse { node, address });
        }
    }
    let token = options.admin_token_file.as_deref().map(admin_guard::read_token).transpose()?;
    let http_admin = spec.engine.http_admin.get_or_insert_with(Default::default);
    let guard = admin_guard::start(&http_admin.bind_address, token, SERVE_BOARD, admin_guard::Behind::Engine)?;
    if let Some(engine) = guard.engine {
        http_admin.bind_address = engine.to_string();
    }
    tracing::info!(admin = %guard.public, dashboard = %format!("http://{}{PAGE_PATH}", guard.public), "admin API (guarded) listening");
    let run_options = ControllerRunOptions {
        build_info: BuildInfo {
            service_name: Some("wasmtel".into()),
            service_version: Some(env!("CARGO_PKG_VERSION").into()),
        },
        handle_os_signals: true,
        ..Default::default()
    };
    Controller::new(&OTAP_PIPELINE_FACTORY)
        .run_forever_with_options(spec, run_options)
        .map_err(|e| ServeError::Run(e.to_string()))
}

/// `(node, address)` of every `listening_addr` in a receiver's config.
fn receiver_addresses(spec: &OtelDataflowSpec) -> Vec<(String, String)> {
    fn collect(value: &Value, node: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("listening_addr", Value::String(address)) => out.push((node.to_string(), address.clone())),
                        _ => collect(value, node, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, node, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let Ok(mut json) = serde_json::to_value(spec) else { return out };
    for_each_node(&mut json, |_, node| {
        let is_receiver = node.get("type").and_then(Value::as_str).is_some_and(|t| t.contains("receiver"));
        if is_receiver && let Some(config) = node.get("config") {
            let name = node.get("type").and_then(Value::as_str).unwrap_or("receiver").to_string();
            collect(config, &name, &mut out);
        }
    });
    out
}
