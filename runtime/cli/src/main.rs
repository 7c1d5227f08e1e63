//! `wasmtel`: run and inspect processor components locally, before deploying them.
//!
//! Exit codes: 0 success; 1 the batch failed in the plugin; 2 bad usage, input
//! or configuration; 3 the component could not be loaded; 4 a registry was
//! unreachable or failed; 5 verification failed (digest, moved tag, signature).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wasmtel_runtime::inspect::Inspection;
use wasmtel_runtime::otlp::{count_items, json_to_protobuf, protobuf_to_json};
use wasmtel_runtime::{LoadError, OnError, Outcome, PluginConfig, Runtime, RuntimeConfig, Signal};

mod registry;

#[derive(Parser)]
#[command(
    name = "wasmtel",
    version,
    about = "Run, inspect, publish and pull sandboxed OpenTelemetry processor components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Do not use or fill the precompiled-component cache.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Write /tmp/perf-<pid>.map so `perf record` / `perf report` name guest functions.
    #[arg(long, global = true)]
    perf_map: bool,
    #[command(flatten)]
    registry: registry::RegistryOpts,
}

#[derive(Subcommand)]
enum Command {
    /// Run one OTLP batch through a component and print the result as OTLP/JSON.
    Run(RunArgs),
    /// Show a component's manifest, digest, imports, exports and grants.
    Inspect {
        /// A path, file://, oci://host/repo:tag[@sha256:…] (read from the registry without
        /// downloading the component), a store name:tag or a sha256: digest.
        component: String,
        /// Plugin settings whose `grants` to show (YAML or JSON).
        #[arg(long)]
        plugin_config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Registry(registry::Command),
    /// Serve plugins to a collector's `wasm` processors over a private unix socket
    /// (gRPC; the collector's subprocess mode starts this itself). Logs go to
    /// stderr as JSON lines.
    Bridge {
        /// The socket to listen on; its directory must be private (0700).
        #[arg(long)]
        socket: PathBuf,
        /// Exit when standard input closes (the parent keeps it open while alive).
        #[arg(long)]
        watch_stdin: bool,
        /// Instances alive at once across all plugins.
        #[arg(long, default_value_t = 256)]
        max_total_instances: u32,
        /// Inherited memfds (comma-separated descriptor numbers) that batches
        /// may travel in instead of the socket; the collector passes them.
        #[arg(long, value_delimiter = ',')]
        shared_slot_fds: Vec<i32>,
    },
    /// Write a new random bearer token (256 bits, hex) for `serve --admin-token-file`
    /// or a `token_authorizer`, to a new file only this user can read.
    Token {
        /// The file to create (an existing one is never overwritten).
        file: PathBuf,
    },
    /// Run otap-dataflow pipelines (OTLP/OTAP in, wasm processors, Arrow IPC files or
    /// OTLP/OTAP out) from an engine spec until SIGINT/SIGTERM drains them.
    Serve {
        /// Engine spec, YAML or JSON (`version: otel_dataflow/v1`); see examples/pipeline.yaml.
        #[arg(long)]
        config: PathBuf,
        /// Admin HTTP address, overriding `engine.http_admin.bind_address`.
        #[arg(long)]
        admin_bind: Option<String>,
        /// File with the bearer token that admin writes (shutdown, reconfigure) need;
        /// without it they are refused. Reads need no token.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Cores per pipeline, overriding the spec (0: all).
        #[arg(long)]
        cores: Option<usize>,
        /// Validate the spec and its components, then exit.
        #[arg(long)]
        check: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// A path, file://, oci://host/repo:tag[@sha256:…], a store name:tag or a sha256: digest.
    component: String,
    /// The guest's config: a YAML/JSON file or inline JSON.
    #[arg(long)]
    config: Option<String>,
    /// Host-side plugin settings (limits, on_error, grants, quarantine_dir) as YAML or JSON.
    #[arg(long)]
    plugin_config: Option<PathBuf>,
    #[arg(long, default_value = "traces")]
    signal: Signal,
    /// OTLP/JSON (`.json`) or OTLP/protobuf (any other extension) request.
    #[arg(long)]
    input: PathBuf,
    /// Write the output here as OTLP/protobuf instead of printing JSON.
    #[arg(long)]
    output_pb: Option<PathBuf>,
    #[arg(long, value_enum)]
    on_error: Option<OnErrorArg>,
    /// Per-batch time limit, e.g. `200ms`.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Print the plugin's metrics (JSON) to stderr after the run.
    #[arg(long)]
    metrics: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnErrorArg {
    Pass,
    Drop,
    Fail,
}

/// An error with the exit code it maps to.
struct Failure(u8, anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = if error.downcast_ref::<LoadError>().is_some() {
            3
        } else if error.downcast_ref::<wasmtel_runtime::ProcessError>().is_some() {
            1
        } else if let Some(error) = error.downcast_ref::<wasmtel_registry::RegistryError>() {
            registry::exit_code(error)
        } else {
            2
        };
        Failure(code, error)
    }
}

fn main() -> ExitCode {
    // `factories` and `validate-node`: the same answers as the bridge binary's.
    let all: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = wasmtel_bridge::node_tool(&all) {
        return code;
    }
    let cli = Cli::parse();
    // `serve` logs through the engine's own subscriber, installed by its
    // controller; `bridge` as JSON lines for the collector that started it.
    let filter = std::env::var("WASMTEL_LOG").unwrap_or_else(|_| "info".into());
    if matches!(cli.command, Command::Bridge { .. }) {
        wasmtel_bridge::log_to_stderr_as_json(&filter);
    } else if !matches!(cli.command, Command::Serve { .. }) {
        let filter = tracing_subscriber::EnvFilter::try_new(&filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Serve { config, admin_bind, admin_token_file, cores, check } = &cli.command {
        let options = wasmtel_dataflow::ServeOptions {
            config: config.clone(),
            admin_bind: admin_bind.clone(),
            cores: *cores,
            no_cache: cli.no_cache,
            admin_token_file: admin_token_file.clone(),
        };
        return serve(&options, *check);
    }
    if let Command::Token { file } = &cli.command {
        return write_new_token(file);
    }
    if let Command::Bridge { socket, watch_stdin, max_total_instances, shared_slot_fds } = &cli.command {
        let mut runtime = RuntimeConfig {
            max_total_instances: *max_total_instances,
            perf_map: cli.perf_map,
            ..RuntimeConfig::default()
        };
        if cli.no_cache {
            runtime.cache_dir = None;
        }
        let slots =
            wasmtel_bridge::shared_memory::Slots::inherited(shared_slot_fds).map_err(|e| Failure(2, e.into()))?;
        let options =
            wasmtel_bridge::BridgeOptions { socket: socket.clone(), runtime, watch_stdin: *watch_stdin, slots };
        return wasmtel_bridge::serve(options).map_err(|e| Failure(2, e.into()));
    }
    let mut runtime_config =
        RuntimeConfig { max_total_instances: 8, perf_map: cli.perf_map, ..RuntimeConfig::default() };
    if cli.no_cache {
        runtime_config.cache_dir = None;
    }
    let runtime = Runtime::new(runtime_config)?;
    match cli.command {
        Command::Serve { .. } | Command::Bridge { .. } | Command::Token { .. } => {
            unreachable!("handled above, before a local runtime is made")
        }
        Command::Registry(command) => Ok(registry::run(command, &cli.registry)?),
        Command::Run(args) => run_batch(&runtime, &cli.registry, args),
        Command::Inspect { component, plugin_config, json } => {
            let grants = match plugin_config {
                Some(path) => read_plugin_config(&path)?.grants,
                None => Default::default(),
            };
            if registry::is_oci(&component) {
                return Ok(registry::inspect_remote(&cli.registry, &component, json)?);
            }
            let (name, source) = registry::resolve_source(&cli.registry, &component)?;
            let loaded = runtime.load_component(&name, source)?;
            let inspection = Inspection::new(&loaded, &grants);
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                print_inspection(&inspection);
            }
            Ok(())
        }
    }
}

fn write_new_token(file: &Path) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let token = wasmtel_dataflow::new_token().map_err(|e| anyhow::anyhow!("no entropy for a token: {e}"))?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating {}", file.display()))?;
    writeln!(out, "{token}").with_context(|| format!("writing {}", file.display()))?;
    eprintln!("wrote a new token to {}", file.display());
    Ok(())
}

fn serve(options: &wasmtel_dataflow::ServeOptions, check: bool) -> Result<(), Failure> {
    if check {
        wasmtel_dataflow::serve::load(options)?;
        eprintln!("{}: ok", options.config.display());
        return Ok(());
    }
    Ok(wasmtel_dataflow::serve::run(options)?)
}

fn run_batch(runtime: &Runtime, registry_opts: &registry::RegistryOpts, args: RunArgs) -> Result<(), Failure> {
    let mut plugin_config = match &args.plugin_config {
        Some(path) => read_plugin_config(path)?,
        None => PluginConfig::default(),
    };
    if let Some(config) = &args.config {
        plugin_config.config = read_guest_config(config)?;
    }
    if let Some(on_error) = args.on_error {
        plugin_config.on_error = Some(match on_error {
            OnErrorArg::Pass => OnError::Pass,
            OnErrorArg::Drop => OnError::Drop,
            OnErrorArg::Fail => OnError::Fail,
        });
    }
    if let Some(timeout) = args.timeout {
        plugin_config.limits.timeout = timeout;
    }
    let input = read_input(&args.input, args.signal)?;
    let (name, source) = registry::resolve_source(registry_opts, &args.component)?;
    let plugin = runtime.load_plugin(&name, source, plugin_config)?;
    let processed = plugin.process_reporting(args.signal, &input, None, None);
    if args.metrics {
        eprintln!("{}", serde_json::to_string_pretty(&plugin.metrics())?);
    }
    let items_in = count_items(args.signal, &input)?;
    let processed = processed?;
    if let Some(rejected) = processed.rejected {
        // The client's fault, as OTLP's partial success reports it.
        eprintln!("partial success: {}", rejected.message());
    }
    let output = match processed.outcome {
        Outcome::Unchanged => {
            eprintln!("outcome: unchanged ({items_in} {})", args.signal.items());
            Some(input)
        }
        Outcome::Replaced(bytes) => {
            let items_out = count_items(args.signal, &bytes)?;
            eprintln!(
                "outcome: replaced ({items_in} -> {items_out} {}, {} -> {} bytes)",
                args.signal.items(),
                input.len(),
                bytes.len()
            );
            Some(bytes)
        }
        Outcome::Dropped => {
            eprintln!("outcome: dropped (all {items_in} {})", args.signal.items());
            None
        }
    };
    if let Some(output) = output {
        match &args.output_pb {
            Some(path) => std::fs::write(path, &output).with_context(|| format!("writing {}", path.display()))?,
            None => println!("{}", protobuf_to_json(args.signal, &output)?),
        }
    }
    Ok(())
}

fn read_input(path: &Path, signal: Signal) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading input {}", path.display()))?;
    let is_json = path.extension().is_some_and(|ext| ext == "json");
    if is_json {
        Ok(json_to_protobuf(signal, &bytes).with_context(|| format!("input {}", path.display()))?)
    } else {
        wasmtel_runtime::otlp::validate(signal, &bytes)
            .with_context(|| format!("input {} is not an OTLP/protobuf {signal} request", path.display()))?;
        Ok(bytes)
    }
}

/// YAML is a superset of JSON, so one parser reads both.
fn read_yaml_value(text: &str) -> Result<serde_json::Value> {
    Ok(serde_yaml::from_str(text)?)
}

fn read_guest_config(arg: &str) -> Result<serde_json::Value> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {arg}"))?;
        read_yaml_value(&text).with_context(|| format!("config {arg}"))
    } else {
        serde_json::from_str(arg).with_context(|| format!("--config {arg:?} is neither a file nor valid JSON"))
    }
}

fn read_plugin_config(path: &Path) -> Result<PluginConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading plugin config {}", path.display()))?;
    let value = read_yaml_value(&text).with_context(|| format!("plugin config {}", path.display()))?;
    PluginConfig::from_value(value).map_err(|e| anyhow::anyhow!("plugin config {}: {e}", path.display()))
}

/// The plugin manifest's lines, shared by `inspect` of a file and of a registry reference.
fn print_manifest(manifest: Option<&wasmtel_runtime::Manifest>) {
    let Some(manifest) = manifest else {
        println!("manifest:    none (not built with wasmtel-sdk)");
        return;
    };
    println!("name:        {} {}", manifest.name, manifest.version);
    let signals: Vec<&str> = manifest.signals.iter().map(|s| s.as_str()).collect();
    println!("signals:     {}", if signals.is_empty() { "all".to_string() } else { signals.join(", ") });
    if let Some(sdk) = &manifest.sdk {
        println!("sdk:         {sdk}");
    }
    if let Some(schema) = &manifest.config_schema {
        println!("config schema:\n{}", serde_json::to_string_pretty(schema).unwrap_or_default());
    }
}

fn print_inspection(inspection: &Inspection) {
    println!("component:   {}", inspection.name);
    println!("digest:      {}", inspection.digest);
    println!("wit:         wasmtel:plugin@{}", inspection.wit_version);
    print_manifest(inspection.manifest.as_ref());
    println!("exports:");
    for export in &inspection.exports {
        println!("  {export}");
    }
    println!("imports:");
    for import in &inspection.imports {
        let note = if import.starts_with("wasi:") { "  (hermetic)" } else { "" };
        println!("  {import}{note}");
    }
    let grants = &inspection.grants;
    println!(
        "grants:      clocks={} random={} env={}",
        grants.clocks,
        grants.random,
        if grants.env.is_empty() {
            "none".to_string()
        } else {
            grants.env.keys().cloned().collect::<Vec<_>>().join(",")
        }
    );
}
