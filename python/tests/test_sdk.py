"""wasmtel.sdk: a real opentelemetry-sdk application exporting through
sandboxed processors into Arrow IPC files."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

import wasmtel
from conftest import component, map_value, read_signal, spec
from wasmtel.sdk import LogExporter, MetricExporter, SpanExporter


def test_an_sdk_application_gets_redacted_filtered_arrow_files(
    redact_filter_spec: dict[str, Any], out_dir: Path
) -> None:
    pipeline = wasmtel.Pipeline(redact_filter_spec)
    resource = Resource.create({"service.name": "shop"})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(SpanExporter(pipeline), max_export_batch_size=64))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(LogExporter(pipeline)))
    reader = PeriodicExportingMetricReader(MetricExporter(pipeline), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("shop")
    otel_logger = logger_provider.get_logger("shop")
    orders = meter_provider.get_meter("shop").create_counter("orders")
    heap = meter_provider.get_meter("shop").create_up_down_counter("debug.heap")

    for order in range(300):
        with tracer.start_as_current_span(f"order {order}") as span:
            span.set_attribute("user.email", f"buyer{order}@example.com")
            span.set_attribute("order.id", order)
            with tracer.start_as_current_span("GET /health"):
                pass
        otel_logger.emit(body=f"order {order} placed by buyer{order}@example.com", severity_number=SeverityNumber.INFO)
        orders.add(1, {"user.email": f"buyer{order}@example.com"})
        heap.add(1)
    otel_logger.emit(body="healthcheck ok", severity_number=SeverityNumber.INFO)

    # Shutdown flushes everything the SDK's batch processors still hold.
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
    stats = pipeline.shutdown()
    assert stats is not None and stats.refused == 0 and stats.in_flight == 0

    spans = read_signal(out_dir, "traces")
    assert sorted(span["name"] for span in spans) == sorted(f"order {n}" for n in range(300)), "health checks filtered"
    assert {map_value(span["attributes"], "user.email") for span in spans} == {"****"}
    assert {map_value(span["attributes"], "order.id") for span in spans} == {str(n) for n in range(300)}
    assert {map_value(span["resource_attributes"], "service.name") for span in spans} == {"shop"}

    bodies = [record["body"] for record in read_signal(out_dir, "logs")]
    assert sorted(bodies) == sorted(f"order {n} placed by ****" for n in range(300))

    points = read_signal(out_dir, "metrics")
    assert {point["metric_name"] for point in points} == {"orders"}, "debug.heap filtered"
    assert {map_value(point["attributes"], "user.email") for point in points} == {"****"}


def test_an_exporter_given_a_spec_owns_its_pipeline(redact_filter_spec: dict[str, Any], out_dir: Path) -> None:
    exporter = SpanExporter(redact_filter_spec)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    for n in range(50):
        with provider.get_tracer("t").start_as_current_span(f"job {n}") as span:
            span.set_attribute("user.email", "x@example.com")
    provider.shutdown()
    assert exporter.pipeline.closed, "the exporter shut its own pipeline down"
    assert len(read_signal(out_dir, "traces")) == 50


def test_a_refused_batch_is_a_failed_export_not_an_exception(tmp_path: Path, caplog: Any) -> None:
    hostile = {
        "type": "urn:wasmtel:processor:wasm",
        "config": {"component": component("wasmtel-test-hostile"), "on_error": "fail"},
    }
    with wasmtel.Pipeline(spec(tmp_path / "data", ("hostile", hostile))) as pipeline:
        exporter = SpanExporter(pipeline)
        span = TracerProvider().get_tracer("t").start_span("permanent-error")
        span.end()
        with caplog.at_level(logging.WARNING, logger="wasmtel.sdk"):
            assert exporter.export([span]) == SpanExportResult.FAILURE  # type: ignore[list-item]
        assert "permanent" in caplog.text and "hostile" in caplog.text
        exporter.shutdown()
        assert not pipeline.closed, "a shared pipeline stays up after its exporter shuts down"
        assert exporter.export([span]) == SpanExportResult.FAILURE, "a shut-down exporter exports nothing"  # type: ignore[list-item]
