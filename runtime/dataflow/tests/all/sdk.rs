//! The Rust SDK exporters: an `opentelemetry_sdk` application whose spans,
//! logs and metrics go through redact and filter into Arrow IPC files.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use wasmtel_dataflow::EmbeddedPipeline;
use wasmtel_dataflow::sdk::{LogExporter, MetricExporter, SpanExporter};

use crate::embedded::spec;
use crate::support::{map_values, read_signal, strings};

#[test]
fn an_sdk_application_gets_redacted_filtered_arrow_files() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(EmbeddedPipeline::start(spec(dir.path())).expect("pipeline starts"));
    // The application: its providers (and the exporters in them) end with this block.
    {
        let resource = Resource::builder().with_service_name("shop").build();
        let tracer_provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(SpanExporter::new(pipeline.clone()))
            .build();
        let logger_provider = SdkLoggerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(LogExporter::new(pipeline.clone()))
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(PeriodicReader::builder(MetricExporter::new(pipeline.clone())).build())
            .build();

        let tracer = tracer_provider.tracer("shop");
        let logger = logger_provider.logger("shop");
        let orders = meter_provider.meter("shop").u64_counter("orders").build();
        let heap = meter_provider.meter("shop").i64_up_down_counter("debug.heap").build();
        for order in 0..300 {
            let email = format!("buyer{order}@example.com");
            let mut span = tracer.start(format!("order {order}"));
            span.set_attribute(KeyValue::new("user.email", email.clone()));
            span.end();
            tracer.start("GET /health").end();
            let mut record = logger.create_log_record();
            record.set_severity_number(Severity::Info);
            record.set_body(AnyValue::from(format!("order {order} placed by {email}")));
            logger.emit(record);
            orders.add(1, &[KeyValue::new("user.email", email)]);
            heap.add(1, &[]);
        }
        let mut health = logger.create_log_record();
        health.set_body(AnyValue::from("healthcheck ok"));
        logger.emit(health);

        // Shutting the providers down flushes what their batch processors hold.
        tracer_provider.shutdown().expect("traces flushed");
        logger_provider.shutdown().expect("logs flushed");
        meter_provider.shutdown().expect("metrics flushed");
    }
    let stats = pipeline.stats();
    assert_eq!((stats.refused, stats.in_flight), (0, 0), "{stats:?}");
    // The SDK's worker threads may still hold their exporters' handles.
    pipeline.close(Duration::from_secs(30)).expect("clean shutdown");

    let spans = read_signal(dir.path(), "traces");
    let mut names: Vec<String> = strings(&spans, "name").into_iter().flatten().collect();
    names.sort();
    let mut expected: Vec<String> = (0..300).map(|n| format!("order {n}")).collect();
    expected.sort();
    assert_eq!(names, expected, "every span but the filtered health checks");
    assert!(map_values(&spans, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
    assert!(map_values(&spans, "resource_attributes", "service.name").iter().all(|v| v.as_deref() == Some("shop")));

    let logs = read_signal(dir.path(), "logs");
    let mut bodies: Vec<String> = strings(&logs, "body").into_iter().flatten().collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..300).map(|n| format!("order {n} placed by ****")).collect();
    expected.sort();
    assert_eq!(bodies, expected);

    let points = read_signal(dir.path(), "metrics");
    let metric_names: std::collections::BTreeSet<_> = strings(&points, "metric_name").into_iter().flatten().collect();
    assert_eq!(metric_names.into_iter().collect::<Vec<_>>(), ["orders"], "debug.heap filtered");
    assert!(map_values(&points, "attributes", "user.email").iter().all(|v| v.as_deref() == Some("****")));
}

#[test]
fn a_refused_batch_is_an_export_error_naming_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path());
    let nodes = &mut spec["groups"]["app"]["pipelines"]["main"]["nodes"];
    nodes["filter"]["config"] =
        serde_json::json!({ "component": wasmtel_tests::component("wasmtel-test-hostile"), "on_error": "fail" });
    let pipeline = Arc::new(EmbeddedPipeline::start(spec).expect("pipeline starts"));
    let exporter = SpanExporter::new(pipeline.clone());
    let error = runtime().block_on(exporter.export(vec![finished_span("permanent-error")])).expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("permanent") && message.contains("hostile"), "{message}");
    exporter.shutdown().expect("flushes");
    assert!(exporter.shutdown().is_err(), "a second shutdown says so");
}

fn finished_span(name: &'static str) -> SpanData {
    let context = SpanContext::new(
        TraceId::from_bytes([1; 16]),
        SpanId::from_bytes([2; 8]),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    SpanData {
        span_context: context,
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("t").build(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// The README's Rust SDK example is `examples/sdk_traces.rs` line for line,
/// and it runs: from a folder that has the repository's `examples/`, the span
/// lands in `./wasmtel-data` with its email masked.
#[test]
fn the_readme_rust_example_is_the_example_and_it_runs() {
    let root = wasmtel_tests::workspace_root();
    let example = std::fs::read_to_string(root.join("runtime/dataflow/examples/sdk_traces.rs")).unwrap();
    let body: Vec<&str> = example
        .lines()
        .skip_while(|line| !line.contains("README example: begin"))
        .skip(1)
        .take_while(|line| !line.contains("README example: end"))
        .map(str::trim)
        .collect();
    assert!(body.len() >= 5, "markers missing in the example");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let readme_lines: Vec<&str> = readme.lines().map(str::trim).collect();
    assert!(
        readme_lines.windows(body.len()).any(|window| window == body.as_slice()),
        "README.md lacks the example's lines:\n{}",
        body.join("\n")
    );

    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/sdk_traces");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("examples"), dir.path().join("examples")).unwrap();
    let run = std::process::Command::new(&binary).current_dir(dir.path()).output().expect("the example runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let spans = read_signal(&dir.path().join("wasmtel-data"), "traces");
    assert_eq!(strings(&spans, "name"), [Some("checkout".to_string())]);
    assert_eq!(map_values(&spans, "attributes", "user.email"), [Some("****".to_string())]);
}
