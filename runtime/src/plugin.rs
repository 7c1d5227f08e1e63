//! A running plugin: a pool of warm instances of one component, the limits and
//! the error policy around every batch.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::Store;

use crate::bindings::{GuestError, GuestOutcome, GuestSignal, ProcessorPlugin};
use crate::host::{GuestCounters, HostState};
use crate::metrics::{PluginMetrics, PolicyAction};
use crate::runtime::{EPOCH_TICK, MAX_PLUGIN_MEMORY};
use crate::{
    FailureKind, LoadError, LoadedComponent, MetricsSnapshot, OnError, PluginConfig, ProcessError, Runtime, Signal,
};

/// Instantiation and `init` may build regexes or tables; give them more room than a batch.
const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(10);

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
    pool: InstancePool,
    metrics: PluginMetrics,
    counters: Arc<GuestCounters>,
    quarantine_seq: AtomicU64,
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
    live: usize,
}

/// A failed batch before the policy decides its fate.
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
        let config_json = serde_json::to_string(&config.config).map_err(|e| config_error(e.to_string()))?;
        let plugin = Plugin {
            inner: Arc::new(PluginInner {
                name: Arc::from(name.as_str()),
                runtime,
                pool: InstancePool {
                    state: Mutex::new(PoolState { idle: Vec::new(), live: 0 }),
                    freed: Condvar::new(),
                    max: config.limits.max_instances,
                },
                component,
                config,
                config_json,
                metrics: PluginMetrics::default(),
                counters: Arc::default(),
                quarantine_seq: AtomicU64::new(0),
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

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn component(&self) -> &LoadedComponent {
        &self.inner.component
    }

    pub fn config(&self) -> &PluginConfig {
        &self.inner.config
    }

    /// Runs one OTLP batch through the plugin. `deadline`, when shorter than
    /// the configured timeout (e.g. the collector's context deadline), bounds it.
    ///
    /// Sandbox failures (trap, timeout, memory, invalid or oversized output)
    /// are resolved by `on_error`; errors the guest returns on purpose, and
    /// failures under `on_error: fail`, come back as `Err`.
    pub fn process(&self, signal: Signal, input: &[u8], deadline: Option<Duration>) -> Result<Outcome, ProcessError> {
        let inner = &*self.inner;
        inner.metrics.call(input.len());
        if let Some(manifest) = &inner.component.manifest {
            if !manifest.handles(signal) {
                inner.metrics.skipped();
                return Ok(Outcome::Unchanged);
            }
        }
        let timeout = deadline.map_or(inner.config.limits.timeout, |d| d.min(inner.config.limits.timeout));
        let started = Instant::now();
        let result = inner.run(signal, input, timeout);
        inner.metrics.latency(started.elapsed());
        match result {
            Ok(outcome) => {
                match &outcome {
                    Outcome::Unchanged => inner.metrics.unchanged(),
                    Outcome::Replaced(bytes) => inner.metrics.replaced(bytes.len()),
                    Outcome::Dropped => inner.metrics.dropped(),
                }
                Ok(outcome)
            }
            Err(failure) => inner.resolve(signal, input, failure),
        }
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let live = self.inner.pool.lock().live;
        self.inner.metrics.snapshot(&self.inner.name, live, self.inner.counters.snapshot())
    }
}

impl PluginInner {
    fn instantiate(&self) -> Result<Instance, LoadError> {
        let limits = &self.config.limits;
        let state = HostState::new(
            self.name.clone(),
            &self.config.grants,
            limits.max_memory.as_u64() as usize,
            self.counters.clone(),
        );
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(epoch_ticks(limits.timeout.max(MIN_INIT_TIMEOUT)));
        let failed = |context: &'static str, error: wasmtime::Error, store: &Store<HostState>| LoadError::Instantiate {
            component: self.name.to_string(),
            context,
            detail: explain_trap(&error, store),
        };
        let bindings =
            self.component.pre.instantiate(&mut store).map_err(|e| failed("instantiation failed", e, &store))?;
        match bindings.wasmtel_plugin_processor().call_init(&mut store, &self.config_json) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(LoadError::InitRejected { component: self.name.to_string(), message }),
            Err(e) => return Err(failed("init trapped", e, &store)),
        }
        self.metrics.instances_created.fetch_add(1, Ordering::Relaxed);
        Ok(Instance { store, bindings })
    }

    fn run(&self, signal: Signal, input: &[u8], timeout: Duration) -> Result<Outcome, Failure> {
        let mut instance = self.checkout(timeout)?;
        let store = &mut instance.store;
        store.data_mut().limiter.exceeded = None;
        store.set_epoch_deadline(epoch_ticks(timeout));
        let call = instance.bindings.wasmtel_plugin_processor().call_process(&mut *store, signal.into(), input);
        let result = match call {
            Err(error) => Err(Failure { kind: classify(&error, store), message: explain_trap(&error, store) }),
            Ok(Err(GuestError::Permanent(message))) => Err(Failure { kind: FailureKind::GuestPermanent, message }),
            Ok(Err(GuestError::Retryable(message))) => Err(Failure { kind: FailureKind::GuestRetryable, message }),
            Ok(Ok(GuestOutcome::Unchanged)) => Ok(Outcome::Unchanged),
            Ok(Ok(GuestOutcome::Dropped)) => Ok(Outcome::Dropped),
            Ok(Ok(GuestOutcome::Replaced(bytes))) => self.check_output(signal, bytes),
        };
        match &result {
            // A guest's deliberate error leaves the instance sound; any other
            // failure may have left it inconsistent, so it is replaced.
            Err(failure) if failure.kind.is_sandbox_failure() => self.discard(instance),
            _ => self.release(instance),
        }
        result
    }

    fn check_output(&self, signal: Signal, bytes: Vec<u8>) -> Result<Outcome, Failure> {
        let max = self.config.limits.max_output_bytes.as_u64();
        if bytes.len() as u64 > max {
            return Err(Failure {
                kind: FailureKind::OutputTooLarge,
                message: format!("guest returned {} bytes, more than limits.max_output_bytes ({max})", bytes.len()),
            });
        }
        match crate::otlp::validate(signal, &bytes) {
            Ok(()) => Ok(Outcome::Replaced(bytes)),
            Err(error) => Err(Failure {
                kind: FailureKind::InvalidOutput,
                message: format!("guest returned {} bytes that are not an OTLP {signal} request: {error}", bytes.len()),
            }),
        }
    }

    /// Applies `on_error` to a failed batch; counts and logs every outcome.
    fn resolve(&self, signal: Signal, input: &[u8], failure: Failure) -> Result<Outcome, ProcessError> {
        self.metrics.error(failure.kind);
        let error =
            ProcessError { plugin: self.name.to_string(), signal, kind: failure.kind, message: failure.message };
        if !failure.kind.is_sandbox_failure() {
            return Err(error);
        }
        self.quarantine(signal, input, &error);
        match self.config.on_error {
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
                self.metrics.policy(PolicyAction::Failed);
                Err(error)
            }
        }
    }

    /// Keeps the failing batch for replay; a write failure is logged, never fatal.
    fn quarantine(&self, signal: Signal, input: &[u8], error: &ProcessError) {
        let Some(dir) = &self.config.quarantine_dir else { return };
        let seq = self.quarantine_seq.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let safe_name: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let stem = format!("{safe_name}-{millis}-{seq}-{signal}-{}", error.kind);
        match write_atomically(dir, &format!("{stem}.pb"), input)
            .and_then(|()| write_atomically(dir, &format!("{stem}.error.txt"), error.to_string().as_bytes()))
        {
            Ok(()) => self.metrics.quarantined(),
            Err(e) => {
                tracing::error!(plugin = &*self.name, dir = %dir.display(), "cannot quarantine failed batch: {e}")
            }
        }
    }

    /// Takes an idle instance, creates one if under `max_instances`, or waits
    /// for one until `timeout`.
    fn checkout(&self, timeout: Duration) -> Result<Instance, Failure> {
        let give_up = Instant::now() + timeout;
        let mut state = self.pool.lock();
        loop {
            if let Some(instance) = state.idle.pop() {
                return Ok(instance);
            }
            if state.live < self.pool.max {
                state.live += 1;
                drop(state);
                return self.instantiate().map_err(|error| {
                    let mut state = self.pool.lock();
                    state.live -= 1;
                    self.pool.freed.notify_one();
                    Failure { kind: FailureKind::Instantiate, message: error.to_string() }
                });
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(Failure {
                    kind: FailureKind::Timeout,
                    message: format!("no free instance within {timeout:?} (limits.max_instances = {})", self.pool.max),
                });
            }
            state = self.pool.freed.wait_timeout(state, give_up - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn release(&self, instance: Instance) {
        self.pool.lock().idle.push(instance);
        self.pool.freed.notify_one();
    }

    fn discard(&self, instance: Instance) {
        drop(instance);
        self.metrics.instances_discarded.fetch_add(1, Ordering::Relaxed);
        self.pool.lock().live -= 1;
        self.pool.freed.notify_one();
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

fn classify(error: &wasmtime::Error, store: &Store<HostState>) -> FailureKind {
    if store.data().limiter.exceeded.is_some() {
        return FailureKind::Memory;
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
        _ => FailureKind::Trap,
    }
}

/// The trap, plus what the guest printed just before (a Rust panic message).
fn explain_trap(error: &wasmtime::Error, store: &Store<HostState>) -> String {
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "batch exceeded its time limit (guest interrupted)".to_string(),
        Some(wasmtime::Trap::StackOverflow) => "guest overflowed its stack".to_string(),
        Some(trap) => format!("guest trapped: {trap}"),
        None => format!("{error:#}"),
    };
    if let Some(requested) = store.data().limiter.exceeded {
        message = format!("guest exceeded its memory limit (asked to grow linear memory to {requested} bytes)");
    }
    let stderr = store.data().stderr.take_recent();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(&stderr.join(" | "));
    }
    message
}

fn write_atomically(dir: &Path, file_name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(dir.join(file_name)).map_err(|e| e.error)?;
    Ok(())
}
