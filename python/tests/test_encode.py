"""The native span encoder writes what the official OTLP encoder writes."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from wasmtel._native import encode_spans as native_encode_spans


def recorded_spans() -> list[ReadableSpan]:
    """Spans with everything the encoder must carry: two resources, scopes
    with and without version, schema URL and attributes, every attribute
    type, events, links, a remote parent, trace state, status, kinds, and
    dropped counts."""
    recorded = InMemorySpanExporter()
    limits = SpanLimits(max_span_attributes=8, max_events=2, max_links=2)
    providers = [
        TracerProvider(resource=Resource.create({"service.name": name, "replica": n}), span_limits=limits)
        for n, name in enumerate(["shop", "billing"])
    ]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(recorded))
    remote_parent = SpanContext(
        trace_id=0x0123456789ABCDEF0123456789ABCDEF,
        span_id=0x1122334455667788,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
    )
    linked = SpanContext(trace_id=7, span_id=9, is_remote=False)
    attributes: dict[str, Any] = {
        "s": "text",
        "b": True,
        "i": -42,
        "f": 2.5,
        "ss": ["a", "b"],
        "bs": [True, False],
        "is": [1, 2, 3],
        "fs": [0.5],
    }
    for provider in providers:
        plain = provider.get_tracer("plain")
        scoped = provider.get_tracer(
            "scoped", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.21.0", attributes={"team": "core"}
        )
        for tracer in (plain, scoped):
            with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes=attributes) as root:
                root.add_event("started", {"step": 1})
                root.add_event("bare")
                root.set_status(Status(StatusCode.ERROR, "boom"))
                with tracer.start_as_current_span("child", kind=SpanKind.CLIENT, links=[Link(linked, {"why": "x"})]):
                    pass
            ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote_parent))
            with tracer.start_as_current_span("from remote", context=ctx, kind=SpanKind.CONSUMER) as span:
                span.set_status(Status(StatusCode.OK))
                for n in range(12):  # more than the limit: dropped_attributes_count
                    span.set_attribute(f"k{n}", n)
                for n in range(4):
                    span.add_event(f"e{n}")
    return list(recorded.get_finished_spans())


def test_native_encoding_equals_the_official_encoder() -> None:
    spans = recorded_spans()
    assert len(spans) == 12
    native = ExportTraceServiceRequest.FromString(native_encode_spans(spans))
    official = encode_spans(spans)
    assert native == official, f"native:\n{native}\nofficial:\n{official}"


def test_an_empty_batch_and_a_value_otlp_cannot_carry() -> None:
    assert ExportTraceServiceRequest.FromString(native_encode_spans([])) == encode_spans([])
    spans = recorded_spans()[:1]
    # Attributes the SDK would refuse, set behind its back: skipped, as the official encoder does.
    spans[0]._attributes = {"ok": "yes", "odd": object()}  # type: ignore[dict-item]
    native = ExportTraceServiceRequest.FromString(native_encode_spans(spans))
    assert [kv.key for kv in native.resource_spans[0].scope_spans[0].spans[0].attributes] == ["ok"]
