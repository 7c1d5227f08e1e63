//! Host-side bindings generated from `wit/`, the single source of the contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "processor-plugin",
});

pub use exports::wasmtel::plugin::processor::{Outcome as GuestOutcome, ProcessError as GuestError};
pub use wasmtel::plugin::types::{LogLevel, Signal as GuestSignal};
