//! A running plugin: a pool of warm instances of one component, the limits and
//! the error policy around every batch.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{GuestError, GuestOutcome, GuestSignal, ProcessorPlugin};
use crate::host::{GuestReports, HostState};
use crate::metrics::{PluginMetrics, PolicyAction};
use crate::otlp::{self, Fixes};
use crate::runtime::{EPOCH_TICK, MAX_PLUGIN_MEMORY};
use crate::{
    FailureKind, FailureMode, Limits, LoadError, LoadedComponent, Manifest, MetricsSnapshot, OnError, PluginConfig,
    ProcessError, Runtime, Signal,
};

/// Instantiation and `init` may build regexes or tables; give them more room than a batch.
const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a running guest is checked for a cancelled caller.
pub const CANCEL_CHECK: Duration = Duration::from_millis(10);

/// Lets a caller give up on a batch while the guest runs (see
/// [`Plugin::process_cancellable`]). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Gives up on the batch, for this handle and all its clones; a running guest
    /// is stopped within [`CANCEL_CHECK`]. There is no undoing it.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called on this handle or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The trap a cancelled batch ends with.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the caller gave up on the batch")
    }
}

impl std::error::Error for Cancelled {}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward the input as it is (also the result of `on_error: pass`).
    Unchanged,
    /// Forward these OTLP bytes instead; already validated as the batch's signal.
    Replaced(Vec<u8>),
    /// Forward nothing (the guest filtered everything, or `on_error: drop`).
    Dropped,
}

/// A loaded plugin. Cheap to clone, `Send + Sync`: concurrent callers each get
/// their own warm instance, never a shared `Store`.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    name: Arc<str>,
    runtime: Runtime,
    component: LoadedComponent,
    config: PluginConfig,
    config_json: String,
    /// `config.on_error`, else the component's declared default.
    on_error: OnError,
    pool: InstancePool,
    metrics: PluginMetrics,
    reports: Arc<GuestReports>,
    quarantine_seq: AtomicU64,
    /// Bytes of this plugin's files in `quarantine_dir`; measured on first use.
    quarantine_used: Mutex<Option<u64>>,
}

struct Instance {
    store: Store<HostState>,
    bindings: ProcessorPlugin,
}

/// Idle instances plus a count of all live ones (idle and checked out).
struct InstancePool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<Instance>,
    /// Idle, checked out, and being created in the background.
    live: usize,
    /// Background instantiations that failed, and the last such failure, so
    /// callers waiting for an instance learn why none is coming.
    failed_instantiations: u64,
    last_instantiate_failure: Option<Failure>,
}

/// A failed batch before the policy decides its fate.
#[derive(Clone)]
struct Failure {
    kind: FailureKind,
    message: String,
}

impl Plugin {
    pub(crate) fn start(
        runtime: Runtime,
        component: LoadedComponent,
        config: PluginConfig,
    ) -> Result<Plugin, LoadError> {
        let name = component.name.clone();
        let config_error = |detail: String| LoadError::Config { component: name.clone(), detail };
        let max_memory = config.limits.max_memory.as_u64();
        if max_memory == 0 || max_memory > MAX_PLUGIN_MEMORY {
            return Err(config_error(format!("limits.max_memory must be between 1 byte and 4 GiB, got {max_memory}")));
        }
        if config.limits.timeout.is_zero() {
            return Err(config_error("limits.timeout must be greater than zero".into()));
        }
        if config.limits.max_instances == 0 {
            return Err(config_error("limits.max_instances must be at least 1".into()));
        }
        let max_output = config.limits.max_output_bytes.as_u64();
        if max_output > Limits::MAX_OUTPUT_BYTES {
            return Err(config_error(format!(
                "limits.max_output_bytes must be at most {} bytes (1 GiB), got {max_output}",
                Limits::MAX_OUTPUT_BYTES
            )));
        }
        if let Some(dir) = &config.quarantine_dir {
            wasmtel_component::private_dir::ensure(dir).map_err(|e| config_error(format!("quarantine_dir: {e}")))?;
        }
        // The component's schema first: its errors name the key path, where
        // the guest's own init may only say that something is wrong.
        component.check_config(&config.config)?;
        let config_json = serde_json::to_string(&config.config).map_err(|e| config_error(e.to_string()))?;
        let failure_mode = Manifest::failure_mode_of(component.manifest.as_ref());
        let on_error = config.on_error.unwrap_or_else(|| OnError::by_default(failure_mode));
        if on_error == OnError::Pass && failure_mode == FailureMode::Closed {
            tracing::warn!(
                plugin = name.as_str(),
                "the component declares itself fail-closed, but on_error: pass is configured: a batch its sandbox \
                 fails on (trap, timeout, memory, bad output) is forwarded unprocessed, with whatever it was meant to hide"
            );
        }
        let plugin = Plugin {
            inner: Arc::new(PluginInner {
                name: Arc::from(name.as_str()),
                runtime,
                pool: InstancePool {
                    state: Mutex::new(PoolState {
                        idle: Vec::new(),
                        live: 0,
                        failed_instantiations: 0,
                        last_instantiate_failure: None,
                    }),
                    freed: Condvar::new(),
                    max: config.limits.max_instances,
                },
                component,
                config,
                config_json,
                on_error,
                metrics: PluginMetrics::default(),
                reports: Arc::new(GuestReports::new(Arc::from(name.as_str()))),
                quarantine_seq: AtomicU64::new(0),
                quarantine_used: Mutex::new(None),
            }),
        };
        // Fail at load, not on the first batch, when the guest rejects its config.
        let first = plugin.inner.instantiate()?;
        let mut state = plugin.inner.pool.lock();
        state.live = 1;
        state.idle.push(first);
        drop(state);
        Ok(plugin)
    }

    /// The name the plugin was loaded as.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The component the plugin runs.
    pub fn component(&self) -> &LoadedComponent {
        &self.inner.component
    }

    /// The settings the plugin was started with.
    pub fn config(&self) -> &PluginConfig {
        &self.inner.config
    }

    /// The policy in force: the configured `on_error`, else the component's
    /// declared default (fail closed unless it declares `failure_mode: open`).
    pub fn on_error(&self) -> OnError {
        self.inner.on_error
    }

    /// Runs one OTLP batch through the plugin. `deadline` is what the caller
    /// has left (e.g. the collector's context deadline); when it is shorter
    /// than `limits.timeout` and runs out, the batch ends as
    /// [`FailureKind::DeadlineExceeded`], never under `on_error`.
    ///
    /// Sandbox failures (trap, timeout, memory, invalid or oversized output)
    /// are resolved by `on_error`; errors the guest returns on purpose,
    /// backpressure ([`FailureKind::Busy`]), expired deadlines, and failures
    /// under `on_error: fail` come back as `Err`.
    pub fn process(&self, signal: Signal, input: &[u8], deadline: Option<Duration>) -> Result<Outcome, ProcessError> {
        self.process_cancellable(signal, input, deadline, None)
    }

    /// As [`Plugin::process`], and the caller may give up meanwhile: once
    /// `cancel` is cancelled the guest is stopped within
    /// [`CANCEL_CHECK`] and the batch ends as [`FailureKind::DeadlineExceeded`]
    /// (never forwarded).
    pub fn process_cancellable(
        &self,
        signal: Signal,
        input: &[u8],
        deadline: Option<Duration>,
        cancel: Option<&Cancel>,
    ) -> Result<Outcome, ProcessError> {
        self.process_reporting(signal, input, deadline, cancel).map(|processed| processed.outcome)
    }

    /// As [`Plugin::process_cancellable`], and says what the host left out
    /// of the client's batch before the guest saw it (an OTLP partial
    /// success, for the entry points that can answer with one).
    pub fn process_reporting(
        &self,
        signal: Signal,
        input: &[u8],
        deadline: Option<Duration>,
        cancel: Option<&Cancel>,
    ) -> Result<Processed, ProcessError> {
        let inner = &*self.inner;
        inner.metrics.call(input.len());
        if let Some(manifest) = &inner.component.manifest
            && !manifest.handles(signal)
        {
            inner.metrics.skipped();
            return Ok(Processed { outcome: Outcome::Unchanged, rejected: None });
        }
        let budget = Budget::new(inner.config.limits.timeout, deadline);
        // What the host admits, decided once for every entry point and by
        // the same rule as a guest's output ([`Fixes::STRICT`]): bytes any
        // decoder can frame; strings that are not UTF-8 and values nested past
        // prost's limit are repaired, and items holding an ID of the wrong
        // length are left out (reported as rejected), so one bad value does
        // not cost the batch's other items and a guest that returns what it
        // was given always passes the output check.
        // The clean items it notes let the output check skip what the
        // guest copied unchanged.
        let (scan, known) = match otlp::scan_recording(signal, input) {
            Ok(scanned) => scanned,
            Err(error) => return Err(inner.invalid_input(signal, error)),
        };
        let repaired = match scan.strict_error() {
            None => None,
            Some(_) => match otlp::rewrite(signal, input, Fixes::STRICT) {
                Ok(repaired) => {
                    inner.metrics.input_repaired();
                    Some(repaired)
                }
                Err(error) => return Err(inner.invalid_input(signal, error)),
            },
        };
        let rejected = (scan.bad_id_items > 0).then(|| {
            inner.metrics.items_rejected(scan.bad_id_items);
            Rejected { items: scan.bad_id_items, signal }
        });
        let batch = repaired.as_deref().unwrap_or(input);
        // Known items are positions in `input`; a repaired batch has others,
        // and fewer elements when items were left out: the output limits
        // count what the guest is given.
        let (known, elements) = match &repaired {
            None => (known, scan.elements),
            Some(repaired) => match otlp::scan(signal, repaired) {
                Ok(rescan) => (otlp::KnownItems::none(), rescan.elements),
                Err(error) => return Err(inner.invalid_input(signal, error)),
            },
        };
        let result = self.inner.run(signal, batch, budget, elements, &known, cancel);
        inner.metrics.latency(budget.started.elapsed());
        let outcome = match result {
            Ok(outcome) => {
                match &outcome {
                    Outcome::Unchanged => inner.metrics.unchanged(),
                    Outcome::Replaced(bytes) => inner.metrics.replaced(bytes.len()),
                    Outcome::Dropped => inner.metrics.dropped(),
                }
                outcome
            }
            Err(failure) => inner.resolve(signal, input, failure)?,
        };
        let outcome = match (outcome, repaired) {
            (Outcome::Unchanged, Some(repaired)) => Outcome::Replaced(repaired),
            (outcome, _) => outcome,
        };
        Ok(Processed { outcome, rejected })
    }

    /// Runs a batch through `chain` in order, as consecutive processors of a
    /// pipeline would, in one call: each plugin's output is the next one's
    /// input, a drop ends the chain, and the caller's deadline covers the
    /// whole chain. Each plugin applies its own limits, `on_error` and
    /// metrics; an error names the plugin that failed. What admission left
    /// out of the client's batch is reported (the later plugins are given
    /// outputs that passed the same rule).
    pub fn process_chain(
        chain: &[&Plugin],
        signal: Signal,
        input: &[u8],
        deadline: Option<Duration>,
        cancel: Option<&Cancel>,
    ) -> Result<Processed, ProcessError> {
        let started = Instant::now();
        let mut current: Option<Vec<u8>> = None;
        let mut rejected = None;
        for plugin in chain {
            let left = deadline.map(|deadline| deadline.saturating_sub(started.elapsed()));
            let batch = current.as_deref().unwrap_or(input);
            let processed = plugin.process_reporting(signal, batch, left, cancel)?;
            // The first plugin that handles the signal admits the client's batch.
            rejected = rejected.or(processed.rejected);
            match processed.outcome {
                Outcome::Unchanged => {}
                Outcome::Replaced(bytes) => current = Some(bytes),
                Outcome::Dropped => return Ok(Processed { outcome: Outcome::Dropped, rejected }),
            }
        }
        let outcome = current.map_or(Outcome::Unchanged, Outcome::Replaced);
        Ok(Processed { outcome, rejected })
    }

    /// A snapshot of the plugin's counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        let live = self.inner.pool.lock().live;
        self.inner.metrics.snapshot(&self.inner.name, live, &self.inner.reports)
    }
}

impl PluginInner {
    fn instantiate(&self) -> Result<Instance, LoadError> {
        let limits = &self.config.limits;
        let state = HostState::new(&self.config.grants, limits.max_memory.as_u64() as usize, self.reports.clone());
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every few ticks: stop the guest if its time is up or its caller
        // gave up, else let it go on.
        store.epoch_deadline_callback(|store| {
            let state = store.data();
            if state.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                return Err(Cancelled.into());
            }
            let now = Instant::now();
            if now >= state.run_until {
                return Err(wasmtime::Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(epoch_ticks((state.run_until - now).min(CANCEL_CHECK))))
        });
        let init_time = limits.timeout.max(MIN_INIT_TIMEOUT);
        store.data_mut().run_until = Instant::now() + init_time;
        store.set_epoch_deadline(epoch_ticks(init_time.min(CANCEL_CHECK)));
        let failed = |context: &'static str, error: wasmtime::Error, store: &Store<HostState>| LoadError::Instantiate {
            component: self.name.to_string(),
            context,
            detail: explain_trap(&error, store),
        };
        let bindings = self.component.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
                LoadError::NoInstanceSlot { component: self.name.to_string(), detail: format!("{e:#}") }
            } else {
                failed("instantiation failed", e, &store)
            }
        })?;
        match bindings.wasmtel_plugin_processor().call_init(&mut store, &self.config_json) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(LoadError::InitRejected { component: self.name.to_string(), message }),
            Err(e) => return Err(failed("init trapped", e, &store)),
        }
        self.metrics.instances_created.fetch_add(1, Ordering::Relaxed);
        Ok(Instance { store, bindings })
    }

    /// Input no decoder can frame: refused before the guest sees it.
    fn invalid_input(&self, signal: Signal, error: otlp::InvalidOtlp) -> ProcessError {
        self.metrics.error(FailureKind::InvalidInput);
        let error = ProcessError {
            plugin: self.name.to_string(),
            signal,
            kind: FailureKind::InvalidInput,
            message: format!("the batch is not an OTLP {signal} request: {error}"),
        };
        tracing::debug!(plugin = &*self.name, "{error}");
        error
    }

    fn run(
        self: &Arc<Self>,
        signal: Signal,
        input: &[u8],
        budget: Budget,
        input_elements: u64,
        known: &otlp::KnownItems<'_>,
        cancel: Option<&Cancel>,
    ) -> Result<Outcome, Failure> {
        let expired = || Failure {
            kind: FailureKind::DeadlineExceeded,
            message: "the caller's deadline passed before the guest could start".into(),
        };
        if budget.deadline.is_some_and(|deadline| deadline.is_zero()) {
            return Err(expired());
        }
        let mut instance = self.checkout(budget)?;
        let (run_time, caller_bound) = budget.run_time();
        if run_time.is_zero() {
            self.release(instance);
            return Err(expired());
        }
        let store = &mut instance.store;
        // Nothing of an earlier batch may reach this one's errors.
        let state = store.data_mut();
        state.limiter.exceeded = None;
        state.stderr.take_recent();
        state.run_until = Instant::now() + run_time;
        state.cancel = cancel.cloned();
        store.set_epoch_deadline(epoch_ticks(run_time.min(CANCEL_CHECK)));
        let call = instance.bindings.wasmtel_plugin_processor().call_process(&mut *store, signal.into(), input);
        let result = match call {
            Err(error) => {
                Err(Failure { kind: classify(&error, store, caller_bound), message: explain_trap(&error, store) })
            }
            Ok(Err(GuestError::Permanent(message))) => Err(Failure { kind: FailureKind::GuestPermanent, message }),
            Ok(Err(GuestError::Retryable(message))) => Err(Failure { kind: FailureKind::GuestRetryable, message }),
            Ok(Ok(GuestOutcome::Unchanged)) => Ok(Outcome::Unchanged),
            Ok(Ok(GuestOutcome::Dropped)) => Ok(Outcome::Dropped),
            Ok(Ok(GuestOutcome::Replaced(bytes))) => {
                self.check_output(signal, bytes, input.len(), input_elements, known)
            }
        };
        self.metrics.guest_memory(store.data().limiter.total);
        match &result {
            // A guest's deliberate error leaves the instance sound; any other
            // failure may have left it inconsistent, so it is replaced.
            Err(failure) if failure.kind.poisons_instance() => self.discard(instance),
            _ => self.release(instance),
        }
        result
    }

    /// A `replaced` output goes on only if every consumer can decode it
    /// (the rule the input was admitted by: prost's, plus IDs of the right
    /// length as the collector requires) and it does not expand past what
    /// the limits allow. An output no larger than the admitted input is never
    /// too large: the limits bound what a guest adds, not what a client sent.
    fn check_output(
        &self,
        signal: Signal,
        bytes: Vec<u8>,
        input_len: usize,
        input_elements: u64,
        known: &otlp::KnownItems<'_>,
    ) -> Result<Outcome, Failure> {
        let limits = &self.config.limits;
        let max = limits.max_output_bytes.as_u64().max(input_len as u64);
        if bytes.len() as u64 > max {
            return Err(Failure {
                kind: FailureKind::OutputTooLarge,
                message: format!("guest returned {} bytes, more than limits.max_output_bytes ({max})", bytes.len()),
            });
        }
        let invalid = |error: otlp::InvalidOtlp| Failure {
            kind: FailureKind::InvalidOutput,
            message: format!("guest returned {} bytes that are not an OTLP {signal} request: {error}", bytes.len()),
        };
        let scan = otlp::scan_reusing(signal, &bytes, known).map_err(invalid)?;
        if let Some(error) = scan.strict_error() {
            return Err(invalid(error));
        }
        let allowed = limits.output_elements_allowed(input_elements).max(input_elements);
        if scan.elements > allowed {
            return Err(Failure {
                kind: FailureKind::OutputTooLarge,
                message: format!(
                    "guest returned {} bytes holding {} elements, more than the {allowed} allowed for an input of {input_elements} (limits.max_output_elements)",
                    bytes.len(),
                    scan.elements
                ),
            });
        }
        Ok(Outcome::Replaced(bytes))
    }

    /// Applies `on_error` to a failed batch; counts and logs every outcome.
    fn resolve(&self, signal: Signal, input: &[u8], failure: Failure) -> Result<Outcome, ProcessError> {
        self.metrics.error(failure.kind);
        let error =
            ProcessError { plugin: self.name.to_string(), signal, kind: failure.kind, message: failure.message };
        if !failure.kind.is_sandbox_failure() {
            tracing::debug!(plugin = &*self.name, "{error}");
            return Err(error);
        }
        self.quarantine(signal, input, &error);
        match self.on_error {
            OnError::Pass => {
                tracing::warn!(plugin = &*self.name, "{error}; forwarding the batch unchanged (on_error: pass)");
                self.metrics.policy(PolicyAction::Passed);
                Ok(Outcome::Unchanged)
            }
            OnError::Drop => {
                tracing::warn!(plugin = &*self.name, "{error}; dropping the batch (on_error: drop)");
                self.metrics.policy(PolicyAction::Dropped);
                Ok(Outcome::Dropped)
            }
            OnError::Fail => {
                tracing::warn!(plugin = &*self.name, "{error}; refusing the batch (on_error: fail)");
                self.metrics.policy(PolicyAction::Failed);
                Err(error)
            }
        }
    }

    /// Keeps the failing batch for replay, within `quarantine_max_bytes`; a
    /// write failure or a full quarantine is logged and counted, never fatal.
    fn quarantine(&self, signal: Signal, input: &[u8], error: &ProcessError) {
        let Some(dir) = &self.config.quarantine_dir else { return };
        let safe_name: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let note = error.to_string();
        let size = (input.len() + note.len()) as u64;
        {
            let mut used = self.quarantine_used.lock().unwrap_or_else(PoisonError::into_inner);
            // Measured once: what earlier runs of this plugin left there.
            let total = used.get_or_insert_with(|| quarantined_bytes(dir, &format!("{safe_name}-")));
            if *total + size > self.config.quarantine_max_bytes.as_u64() {
                self.metrics.quarantine_skipped();
                tracing::warn!(
                    plugin = &*self.name,
                    dir = %dir.display(),
                    "quarantine full ({} of quarantine_max_bytes {}): failed batch not kept",
                    *total,
                    self.config.quarantine_max_bytes
                );
                return;
            }
            *total += size;
        }
        let seq = self.quarantine_seq.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let stem = format!("{safe_name}-{millis}-{seq}-{signal}-{}", error.kind);
        match write_atomically(dir, &format!("{stem}.pb"), input)
            .and_then(|()| write_atomically(dir, &format!("{stem}.error.txt"), note.as_bytes()))
        {
            Ok(()) => self.metrics.quarantined(),
            Err(e) => {
                // Reserved above, never written: give the room back.
                let mut used = self.quarantine_used.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(total) = used.as_mut() {
                    *total = total.saturating_sub(size);
                }
                tracing::error!(plugin = &*self.name, dir = %dir.display(), "cannot quarantine failed batch: {e}")
            }
        }
    }

    /// Takes an idle instance, or waits for one within the batch's budget.
    /// New instances are created in the background, never on the caller's
    /// time: a slow `init` or a full runtime cannot stall a batch past its
    /// deadline, and running out of time here is backpressure
    /// ([`FailureKind::Busy`]), not a sandbox failure.
    fn checkout(self: &Arc<Self>, budget: Budget) -> Result<Instance, Failure> {
        let most = budget.deadline.unwrap_or(budget.limit);
        let give_up = budget.started + most;
        let mut state = self.pool.lock();
        let failures_seen = state.failed_instantiations;
        loop {
            if let Some(instance) = state.idle.pop() {
                return Ok(instance);
            }
            if state.failed_instantiations != failures_seen
                && let Some(failure) = &state.last_instantiate_failure
            {
                return Err(failure.clone());
            }
            if state.live < self.pool.max {
                state.live += 1;
                self.spawn_instantiate();
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(Failure {
                    kind: FailureKind::Busy,
                    message: format!(
                        "no free instance within {most:?} (limits.max_instances = {}); retry later",
                        self.pool.max
                    ),
                });
            }
            state = self.pool.freed.wait_timeout(state, give_up - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Creates one instance off the caller's thread; its slot is already
    /// counted in `live`.
    fn spawn_instantiate(self: &Arc<Self>) {
        let inner = self.clone();
        let spawned = thread::Builder::new().name("wasmtel-instantiate".into()).spawn(move || {
            let result = inner.instantiate();
            inner.instantiated(result);
        });
        if let Err(error) = spawned {
            self.instantiated(Err(LoadError::Engine(format!("cannot start an instantiation thread: {error}"))));
        }
    }

    fn instantiated(&self, result: Result<Instance, LoadError>) {
        let mut state = self.pool.lock();
        match result {
            Ok(instance) => state.idle.push(instance),
            Err(error) => {
                state.live -= 1;
                state.failed_instantiations += 1;
                let kind = match error {
                    LoadError::NoInstanceSlot { .. } => FailureKind::Busy,
                    _ => FailureKind::Instantiate,
                };
                state.last_instantiate_failure = Some(Failure { kind, message: error.to_string() });
            }
        }
        self.pool.freed.notify_all();
    }

    fn release(&self, instance: Instance) {
        self.pool.lock().idle.push(instance);
        self.pool.freed.notify_one();
    }

    /// Drops a failed instance and starts its replacement at once, so the
    /// next caller finds a warm one instead of paying for instantiation.
    fn discard(self: &Arc<Self>, instance: Instance) {
        drop(instance);
        self.metrics.instances_discarded.fetch_add(1, Ordering::Relaxed);
        self.spawn_instantiate();
    }
}

/// A batch's outcome, and what of the client's batch was left out before
/// the guest saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// What becomes of the batch.
    pub outcome: Outcome,
    /// Items the host left out at admission, if any.
    pub rejected: Option<Rejected>,
}

/// Client items left out at admission: they hold a trace or span ID of the
/// wrong length, which no decoder can read (the collector's pdata refuses the
/// whole request for one). The rest of the batch goes on: OTLP's partial
/// success (`rejected_spans`, `rejected_log_records`, `rejected_data_points`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// How many items were left out.
    pub items: u64,
    /// Their signal: what kind of item they are.
    pub signal: Signal,
}

impl Rejected {
    /// The partial-success message, naming the items and the reason.
    pub fn message(&self) -> String {
        let what = match self.signal {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        };
        format!(
            "{} {what} left out: a trace ID not 16 bytes or a span ID not 8 bytes long (in the item, a link or an exemplar)",
            self.items
        )
    }
}

/// A batch's time. Waiting for an instance is bounded by the caller's
/// deadline (else `limits.timeout`) and is backpressure when it runs out;
/// the guest then runs for `limits.timeout`, or what is left of the caller's
/// deadline when that is shorter. The wait never eats the guest's own time,
/// so a batch that queued under load does not fail as if the guest were slow.
#[derive(Clone, Copy)]
struct Budget {
    started: Instant,
    limit: Duration,
    /// What the caller had left when the batch arrived.
    deadline: Option<Duration>,
}

impl Budget {
    fn new(limit: Duration, deadline: Option<Duration>) -> Budget {
        Budget { started: Instant::now(), limit, deadline }
    }

    /// How long the guest may run from now, and whether the caller's
    /// deadline (rather than `limits.timeout`) is what bounds it.
    fn run_time(&self) -> (Duration, bool) {
        match self.deadline {
            Some(deadline) => {
                let left = deadline.saturating_sub(self.started.elapsed());
                if left < self.limit { (left, true) } else { (self.limit, false) }
            }
            None => (self.limit, false),
        }
    }
}

impl InstancePool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<Signal> for GuestSignal {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Traces => GuestSignal::Traces,
            Signal::Metrics => GuestSignal::Metrics,
            Signal::Logs => GuestSignal::Logs,
        }
    }
}

fn epoch_ticks(timeout: Duration) -> u64 {
    // +1: the current tick may be about to end.
    (timeout.as_nanos() / EPOCH_TICK.as_nanos()).min(u64::MAX as u128 - 1) as u64 + 1
}

fn classify(error: &wasmtime::Error, store: &Store<HostState>, caller_bound: bool) -> FailureKind {
    if store.data().limiter.exceeded.is_some() {
        return FailureKind::Memory;
    }
    if error.downcast_ref::<Cancelled>().is_some() {
        return FailureKind::DeadlineExceeded;
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) if caller_bound => FailureKind::DeadlineExceeded,
        Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
        _ => FailureKind::Trap,
    }
}

/// The trap, plus what the guest printed just before (a Rust panic message).
fn explain_trap(error: &wasmtime::Error, store: &Store<HostState>) -> String {
    if error.downcast_ref::<Cancelled>().is_some() {
        return "the caller gave up on the batch (guest interrupted)".to_string();
    }
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "batch exceeded its time limit (guest interrupted)".to_string(),
        Some(wasmtime::Trap::StackOverflow) => "guest overflowed its stack".to_string(),
        Some(trap) => format!("guest trapped: {trap}"),
        None => format!("{error:#}"),
    };
    if let Some(requested) = store.data().limiter.exceeded {
        message = format!("guest exceeded its memory limit (asked for {requested} bytes of linear memory in all)");
    }
    let stderr = store.data().stderr.take_recent();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(&stderr.join(" | "));
    }
    message
}

/// Bytes of the files in `dir` whose names start with `prefix`.
fn quarantined_bytes(dir: &Path, prefix: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// Writes `dir/file_name` whole or not at all (0600, via a temporary file),
/// in a directory only this user can change (checked at each write).
fn write_atomically(dir: &Path, file_name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    wasmtel_component::private_dir::ensure(dir)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(dir.join(file_name)).map_err(|e| e.error)?;
    Ok(())
}
