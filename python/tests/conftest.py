"""Shared fixtures: the built guest components, pipeline specs, OTLP
builders and a reader of the Arrow IPC files the pipeline writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.ipc  # type: ignore[import-untyped]
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

REPO = Path(__file__).resolve().parents[2]
EMAIL_PATTERN = r"[\w.+-]+@[\w-]+\.[\w.]+"


def component(crate: str) -> str:
    """The path of a guest component built by scripts/build-components.sh."""
    default = REPO / "target" / "wasm32-wasip2" / "release"
    path = Path(os.environ.get("WASMTEL_COMPONENTS_DIR", default)) / f"{crate.replace('-', '_')}.wasm"
    assert path.is_file(), f"{path} is missing: build the guests first with scripts/build-components.sh"
    return str(path)


def redact_node() -> dict[str, Any]:
    return {
        "type": "urn:wasmtel:processor:wasm",
        "config": {
            "component": component("wasmtel-redact"),
            "config": {
                "keys": ["user.email"],
                "value_patterns": [EMAIL_PATTERN],
                "action": "mask",
                "mask": "****",
                "log_bodies": True,
            },
        },
    }


def filter_node() -> dict[str, Any]:
    return {
        "type": "urn:wasmtel:processor:wasm",
        "config": {
            "component": component("wasmtel-filter"),
            "config": {
                "spans": {"names": ["GET /health"]},
                "logs": {"body_patterns": ["^healthcheck"]},
                "data_points": {"metric_names": ["debug.heap"]},
            },
        },
    }


def spec(out: Path, *processors: tuple[str, dict[str, Any]], cores: int = 1) -> dict[str, Any]:
    """An embedded pipeline: ingress → processors → Arrow IPC files in `out`."""
    nodes: dict[str, Any] = {"ingress": {"type": "urn:wasmtel:receiver:embedded"}}
    nodes.update(processors)
    nodes["files"] = {"type": "urn:wasmtel:exporter:arrow_ipc", "config": {"directory": str(out)}}
    names = list(nodes)
    return {
        "version": "otel_dataflow/v1",
        "policies": {"resources": {"core_allocation": {"type": "core_count", "count": cores}}},
        "groups": {
            "app": {
                "pipelines": {
                    "main": {
                        "nodes": nodes,
                        "connections": [{"from": a, "to": b} for a, b in zip(names, names[1:], strict=False)],
                    }
                }
            }
        },
    }


@pytest.fixture
def redact_filter_spec(tmp_path: Path) -> dict[str, Any]:
    return spec(tmp_path / "data", ("redact", redact_node()), ("filter", filter_node()))


def attr(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def traces(*spans: tuple[str, list[KeyValue]], service: str = "checkout") -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[attr("service.name", service)]),
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(name=name, trace_id=bytes([i + 1] * 16), span_id=bytes([i + 1] * 8), attributes=attrs)
                            for i, (name, attrs) in enumerate(spans)
                        ]
                    )
                ],
            )
        ]
    )
    encoded: bytes = request.SerializeToString()
    return encoded


def logs(*bodies: str) -> bytes:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(scope_logs=[ScopeLogs(log_records=[LogRecord(body=AnyValue(string_value=b)) for b in bodies])])
        ]
    )
    encoded: bytes = request.SerializeToString()
    return encoded


def read_signal(out: Path, signal: str) -> list[dict[str, Any]]:
    """The rows of every finished Arrow IPC stream file of `signal`."""
    tables = []
    for path in sorted((out / signal).glob("*.arrows")):
        with pa.OSFile(str(path)) as source:
            tables.append(pyarrow.ipc.open_stream(source).read_all())
    assert tables, f"no {signal} files in {out}"
    rows: list[dict[str, Any]] = pa.concat_tables(tables).to_pylist()
    return rows


def map_value(entries: list[tuple[str, Any]] | None, key: str) -> Any:
    """The value under `key` of an Arrow map cell (a list of pairs)."""
    return dict(entries or []).get(key)


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"
