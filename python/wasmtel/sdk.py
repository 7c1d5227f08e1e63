"""OpenTelemetry SDK exporters that feed an embedded wasmtel pipeline.

One line of SDK setup puts sandboxed processors in front of the application's
telemetry::

    provider.add_span_processor(BatchSpanProcessor(SpanExporter("pipeline.yaml")))

Each exporter serialises the SDK's batch as OTLP and hands the bytes to a
:class:`wasmtel.Pipeline`: spans through the package's native encoder (the
message the official ``encode_spans`` builds, checked by the tests, without
Python protobuf objects), logs and metrics through the official encoders of
``opentelemetry-exporter-otlp-proto-common``.
Given a spec (a path or a dict), an exporter starts its own pipeline and shuts
it down with itself; given a ``Pipeline``, it shares it (the three exporters
of one application usually do) and leaves its shutdown to the owner.

Needs the ``sdk`` extra: ``pip install 'wasmtel[sdk]'``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter as _MetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter as _SpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from wasmtel import Pipeline, Signal, WasmtelError
from wasmtel._native import encode_spans

__all__ = ["LogExporter", "MetricExporter", "SpanExporter"]

_logger = logging.getLogger("wasmtel.sdk")

PipelineOrSpec = Union[Pipeline, str, "os.PathLike[str]", Mapping[str, Any]]


class _Feed:
    """The pipeline an exporter writes to, and whether the exporter owns it."""

    def __init__(self, target: PipelineOrSpec) -> None:
        self.owned = not isinstance(target, Pipeline)
        self.pipeline = target if isinstance(target, Pipeline) else Pipeline(target)
        self.shut_down = False

    def send(self, signal: Signal, otlp: bytes, items: int) -> bool:
        if self.shut_down:
            _logger.warning("wasmtel exporter is shut down: %d %s items not exported", items, signal)
            return False
        try:
            self.pipeline.export(signal, otlp)
            return True
        except (WasmtelError, ValueError) as error:
            _logger.warning("wasmtel pipeline did not take %d %s items: %s", items, signal, error)
            return False

    def flush(self, timeout_millis: float) -> bool:
        if self.shut_down or self.pipeline.closed:
            return True
        try:
            self.pipeline.flush(timeout_millis / 1000)
            return True
        except WasmtelError as error:
            _logger.warning("wasmtel flush: %s", error)
            return False

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        if self.shut_down:
            return
        self.shut_down = True
        if self.owned:
            self.pipeline.shutdown(timeout_millis / 1000)
        else:
            self.flush(timeout_millis)


class SpanExporter(_SpanExporter):
    """Exports the SDK's spans into a wasmtel pipeline (``traces``)."""

    def __init__(self, pipeline: PipelineOrSpec) -> None:
        self._feed = _Feed(pipeline)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline this exporter feeds."""
        return self._feed.pipeline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        sent = self._feed.send("traces", encode_spans(spans), len(spans))
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._feed.flush(timeout_millis)

    def shutdown(self) -> None:
        self._feed.shutdown()


class LogExporter(LogRecordExporter):
    """Exports the SDK's log records into a wasmtel pipeline (``logs``)."""

    def __init__(self, pipeline: PipelineOrSpec) -> None:
        self._feed = _Feed(pipeline)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline this exporter feeds."""
        return self._feed.pipeline

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        sent = self._feed.send("logs", encode_logs(batch).SerializeToString(), len(batch))
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._feed.flush(timeout_millis)

    def shutdown(self) -> None:
        self._feed.shutdown()


class MetricExporter(_MetricExporter):
    """Exports the SDK's metrics into a wasmtel pipeline (``metrics``); use
    it with a ``PeriodicExportingMetricReader``."""

    def __init__(self, pipeline: PipelineOrSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._feed = _Feed(pipeline)

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline this exporter feeds."""
        return self._feed.pipeline

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        points = sum(
            len(metric.data.data_points)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        sent = self._feed.send("metrics", encode_metrics(metrics_data).SerializeToString(), points)
        return MetricExportResult.SUCCESS if sent else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return self._feed.flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._feed.shutdown(timeout_millis)
