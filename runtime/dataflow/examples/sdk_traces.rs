//! The README's Rust SDK example: an application's spans through the
//! embedded pipeline of `examples/embedded.yaml` (redact, filter, Arrow IPC
//! files under `./wasmtel-data`). Run from the repository root after
//! `scripts/build.sh`: `target/debug/examples/sdk_traces`.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use wasmtel_dataflow::EmbeddedPipeline;
use wasmtel_dataflow::sdk::SpanExporter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // README example: begin
    let pipeline = Arc::new(EmbeddedPipeline::start_file("examples/embedded.yaml".as_ref())?);
    let provider = SdkTracerProvider::builder().with_batch_exporter(SpanExporter::new(pipeline.clone())).build();
    let mut span = provider.tracer("shop").start("checkout");
    span.set_attribute(KeyValue::new("user.email", "ann@example.com"));
    span.end();
    provider.shutdown()?;
    pipeline.close(Duration::from_secs(10))?; // written: ./wasmtel-data/traces/*.arrows, email masked
    // README example: end
    Ok(())
}
