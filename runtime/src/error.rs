//! Typed errors: callers (the CLI, the Go bridge, the otap-dataflow node) match
//! on these to decide exit codes, retry semantics and nack reasons.

use std::fmt;

use crate::Signal;

/// Why a component could not be loaded. Every variant names the component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component file could not be opened or read, or is not a regular file.
    #[error("component {component}: cannot read {path}: {source}")]
    Read {
        /// The plugin's name.
        component: String,
        /// The file, as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly (no `\0asm` header, empty, unknown layer)
    /// or exceed [`MAX_COMPONENT_BYTES`](crate::MAX_COMPONENT_BYTES).
    #[error("component {component}: not a WebAssembly file ({detail})")]
    NotWasm {
        /// The plugin's name.
        component: String,
        /// What is wrong with the bytes (their start, or their size).
        detail: String,
    },
    /// The bytes are a core wasm module, not a component.
    #[error(
        "component {component}: is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The plugin's name.
        component: String,
    },
    /// The component does not compile, or its manifest section is malformed.
    #[error("component {component}: invalid component: {detail}")]
    Invalid {
        /// The plugin's name.
        component: String,
        /// The parser's or compiler's error.
        detail: String,
    },
    /// The component does not export `wasmtel:plugin/processor`.
    #[error("component {component}: does not export `wasmtel:plugin/processor`; its exports are: {exports}")]
    NotAPlugin {
        /// The plugin's name.
        component: String,
        /// Its exports, comma-separated (`(none)` when it has none).
        exports: String,
    },
    /// The processor export or a host import is of a `wasmtel:plugin` version
    /// this runtime does not implement (or is unversioned).
    #[error(
        "component {component}: built against wasmtel:plugin@{found}, but this runtime implements wasmtel:plugin@{supported}; rebuild it with a compatible SDK"
    )]
    IncompatibleWit {
        /// The plugin's name.
        component: String,
        /// The version the component uses, or `unversioned`.
        found: String,
        /// The version this runtime implements.
        supported: String,
    },
    /// The component imports something the sandbox does not provide
    /// (sockets, HTTP, an unknown interface, a non-interface import).
    #[error("component {component}: imports `{import}`, which the sandbox does not provide ({why})")]
    ForbiddenImport {
        /// The plugin's name.
        component: String,
        /// The import's name, e.g. `wasi:sockets/tcp@0.2.6`.
        import: String,
        /// Why it is refused.
        why: String,
    },
    /// The plugin settings are out of range (limits) or the guest config does
    /// not match the component's `config_schema`.
    #[error("component {component}: invalid plugin configuration: {detail}")]
    Config {
        /// The plugin's name.
        component: String,
        /// What is wrong, naming the key path.
        detail: String,
    },
    /// The guest's `init` returned an error for its configuration.
    #[error("component {component}: init rejected the configuration: {message}")]
    InitRejected {
        /// The plugin's name.
        component: String,
        /// The guest's message.
        message: String,
    },
    /// Linking against the host, instantiating or running `init` failed (e.g. a trap).
    #[error("component {component}: {context}: {detail}")]
    Instantiate {
        /// The plugin's name.
        component: String,
        /// The step that failed (`instantiation failed`, `init trapped`, …).
        context: &'static str,
        /// The error, with the trap explained.
        detail: String,
    },
    /// Every instance slot of the runtime (`max_total_instances`) is in use.
    #[error(
        "component {component}: the runtime has no free instance slot ({detail}); raise max_total_instances or lower limits.max_instances"
    )]
    NoInstanceSlot {
        /// The plugin's name.
        component: String,
        /// The allocator's error.
        detail: String,
    },
    /// The runtime itself failed: wasmtime refused its configuration or a helper thread could not start.
    #[error("wasmtel runtime: {0}")]
    Engine(String),
}

/// The kinds of failure a batch can meet, as counted in plugin metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The guest trapped (panic, unreachable, stack overflow, out-of-bounds access).
    Trap,
    /// The batch exceeded its time budget.
    Timeout,
    /// The guest tried to grow its memory past the cap.
    Memory,
    /// The guest returned bytes that are not OTLP of the batch's signal.
    InvalidOutput,
    /// The guest returned more bytes than `max_output_bytes`.
    OutputTooLarge,
    /// The guest returned `permanent`: the same input will fail again.
    GuestPermanent,
    /// The guest returned `retryable`.
    GuestRetryable,
    /// No instance could be created for the batch (the host ran out of a
    /// resource, or a new instance's `init` failed): the batch never reached
    /// a guest, so it is retryable and outside `on_error`.
    Instantiate,
    /// No instance came free within the batch's deadline, or the runtime had
    /// no instance slot left: backpressure, not a sandbox failure.
    Busy,
    /// The caller's deadline (shorter than `limits.timeout`) expired while the
    /// guest ran: the caller has given up, so the batch is never forwarded.
    DeadlineExceeded,
    /// The input is not an OTLP request of its signal that any decoder could
    /// frame (truncated, bad lengths or wire types); it never reached the guest.
    InvalidInput,
}

impl FailureKind {
    /// Every kind, in declaration order (e.g. to pre-register one counter per kind).
    pub const ALL: [FailureKind; 11] = [
        FailureKind::Trap,
        FailureKind::Timeout,
        FailureKind::Memory,
        FailureKind::InvalidOutput,
        FailureKind::OutputTooLarge,
        FailureKind::GuestPermanent,
        FailureKind::GuestRetryable,
        FailureKind::Instantiate,
        FailureKind::Busy,
        FailureKind::DeadlineExceeded,
        FailureKind::InvalidInput,
    ];

    /// The snake_case name used in metrics, JSON and the bridge's failure-kind trailer.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::InvalidOutput => "invalid_output",
            FailureKind::OutputTooLarge => "output_too_large",
            FailureKind::GuestPermanent => "guest_permanent",
            FailureKind::GuestRetryable => "guest_retryable",
            FailureKind::Instantiate => "instantiate",
            FailureKind::Busy => "busy",
            FailureKind::DeadlineExceeded => "deadline_exceeded",
            FailureKind::InvalidInput => "invalid_input",
        }
    }

    /// Whether the same batch will fail the same way again; callers must not
    /// retry it (the collector's `consumererror.NewPermanent`).
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            FailureKind::GuestRetryable
                | FailureKind::Timeout
                | FailureKind::Instantiate
                | FailureKind::Busy
                | FailureKind::DeadlineExceeded
        )
    }

    /// Failures of the guest's sandbox while it ran this batch (trap,
    /// timeout, memory, invalid or oversized output); `on_error` applies to
    /// these only. Deliberate guest errors, backpressure, a host that could
    /// not make an instance, a caller that gave up and input no decoder can
    /// read always reach the caller: none of them can forward or drop a batch
    /// the guest did not finish.
    pub fn is_sandbox_failure(self) -> bool {
        !matches!(
            self,
            FailureKind::GuestPermanent
                | FailureKind::GuestRetryable
                | FailureKind::Busy
                | FailureKind::Instantiate
                | FailureKind::DeadlineExceeded
                | FailureKind::InvalidInput
        )
    }

    /// Whether the instance that ran the batch may be inconsistent and must
    /// be replaced (it was interrupted, trapped or returned garbage).
    pub fn poisons_instance(self) -> bool {
        !matches!(
            self,
            FailureKind::GuestPermanent
                | FailureKind::GuestRetryable
                | FailureKind::Busy
                | FailureKind::Instantiate
                | FailureKind::InvalidInput
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch the plugin could not process and the policy did not absorb.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {signal} batch failed ({kind}): {message}")]
pub struct ProcessError {
    /// The plugin's name.
    pub plugin: String,
    /// The batch's signal.
    pub signal: Signal,
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// What happened, for people.
    pub message: String,
}

impl ProcessError {
    /// Whether retrying the same batch is pointless (see [`FailureKind::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }
}
