//! The `wasmtel` binary's tests, one test binary (one link): the CLI, the
//! registry commands, `wasmtel serve` and the collector bridge.

mod bridge;
mod cli;
mod registry;
mod serve;
