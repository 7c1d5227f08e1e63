//! The cross-crate tests, one binary (as wasmtime's `tests/all`): one link,
//! and `cargo test --test all <module>::` selects a group.

mod admission;
mod chain;
mod components;
mod fail_closed;
mod hostile;
mod otap_round_trip;
mod runtime;
mod view_differential;
