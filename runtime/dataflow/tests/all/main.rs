//! The otap-dataflow nodes and the embedded pipeline, one test binary (one
//! link): each node through the engine's test harness, and whole pipelines.

mod arrow_ipc;
mod circuit_breaker;
mod embedded;
mod harness;
mod sdk;
mod segment;
mod support;
mod wasm_node;
