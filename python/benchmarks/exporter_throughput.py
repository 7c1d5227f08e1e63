"""Spans/s through an OpenTelemetry SDK span exporter into redact, filter and
Arrow IPC files, two ways, in one run:

- ``embedded``: ``wasmtel.sdk.SpanExporter`` feeding an in-process pipeline;
- ``serve``: the SDK's OTLP/gRPC exporter to ``wasmtel serve`` on loopback
  running the same pipeline (its OTLP receiver waits for the result, so both
  ways acknowledge a batch once it is written).

The application's spans are recorded first (untimed: creating spans costs the
same either way); the timed part is what a ``BatchSpanProcessor`` does with
them: export batches of 512 one after another, waiting for each, then shut
the exporter down (everything written). Each trial runs in a fresh Python
process (its peak RSS is that process's alone); the modes alternate so that
machine noise hits both alike. Every trial checks that all spans arrived in
the files. Prints one JSON line per trial and a summary (median, range,
ratio). Used by scripts/bench-python.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = Path(os.environ.get("WASMTEL_COMPONENTS_DIR", REPO / "target" / "wasm32-wasip2" / "release"))


def processors() -> dict[str, Any]:
    return {
        "redact": {
            "type": "urn:wasmtel:processor:wasm",
            "config": {
                "component": str(COMPONENTS / "wasmtel_redact.wasm"),
                "config": {"keys": ["user.email"], "action": "mask", "mask": "****"},
            },
        },
        "filter": {
            "type": "urn:wasmtel:processor:wasm",
            "config": {
                "component": str(COMPONENTS / "wasmtel_filter.wasm"),
                "config": {"spans": {"names": ["GET /health"]}},
            },
        },
    }


def spec(out: Path, ingress: dict[str, Any], admin_port: int | None = None) -> dict[str, Any]:
    nodes = {"ingress": ingress, **processors()}
    nodes["files"] = {"type": "urn:wasmtel:exporter:arrow_ipc", "config": {"directory": str(out)}}
    names = list(nodes)
    result: dict[str, Any] = {
        "version": "otel_dataflow/v1",
        "policies": {"resources": {"core_allocation": {"type": "core_count", "count": 1}}},
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
    if admin_port is not None:
        result["engine"] = {"http_admin": {"bind_address": f"127.0.0.1:{admin_port}"}}
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def count_rows(out: Path) -> int:
    import pyarrow.ipc  # type: ignore[import-untyped]

    rows = 0
    for path in (out / "traces").glob("*.arrows"):
        with open(path, "rb") as source:
            rows += pyarrow.ipc.open_stream(source).read_all().num_rows
    return rows


class EncodeOnly:
    """The baseline: the SDK's OTLP encoding alone, as both exporters do it, sent nowhere."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace.export import SpanExportResult

        encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def trial(mode: str, spans: int, wasmtel_bin: str) -> dict[str, Any]:
    """One run of the application in this process."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "data"
        serve = None
        exporter: Any
        if mode == "encode-only":
            exporter = EncodeOnly()
        elif mode == "embedded":
            from wasmtel.sdk import SpanExporter

            exporter = SpanExporter(spec(out, {"type": "urn:wasmtel:receiver:embedded"}))
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )

            grpc = free_port()
            receiver = {
                "type": "receiver:otlp",
                "config": {"protocols": {"grpc": {"listening_addr": f"127.0.0.1:{grpc}", "wait_for_result": True}}},
            }
            config = Path(tmp) / "serve.json"
            config.write_text(json.dumps(spec(out, receiver, free_port())))
            serve = subprocess.Popen(
                [wasmtel_bin, "serve", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ, WASMTEL_HOME=str(Path(tmp) / "home")),
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", grpc), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or serve.poll() is not None:
                        raise RuntimeError("wasmtel serve did not start") from None
                    time.sleep(0.05)
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True)

        recorded = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        provider.add_span_processor(SimpleSpanProcessor(recorded))
        tracer = provider.get_tracer("bench")
        for n in range(spans):
            with tracer.start_as_current_span("GET /health" if n % 10 == 0 else f"order {n % 100}") as span:
                span.set_attribute("user.email", f"buyer{n}@example.com")
                span.set_attribute("order.id", n)
        finished = recorded.get_finished_spans()
        start = time.perf_counter()
        for first in range(0, len(finished), 512):
            if exporter.export(finished[first : first + 512]).name != "SUCCESS":
                raise RuntimeError(f"{mode}: an export failed")
        exporter.shutdown()
        elapsed = time.perf_counter() - start
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=60)
        expected = spans - (spans + 9) // 10
        written = expected if mode == "encode-only" else count_rows(out)
        if written != expected:
            raise RuntimeError(f"{mode}: {written} of {expected} spans written")
        return {
            "mode": mode,
            "spans": spans,
            "seconds": round(elapsed, 3),
            "spans_per_s": round(spans / elapsed),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=5, help="per mode")
    parser.add_argument("--wasmtel", default=str(REPO / "target" / "release" / "wasmtel"))
    parser.add_argument("--one", choices=["encode-only", "embedded", "serve"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(trial(args.one, args.spans, args.wasmtel)))
        return

    results: dict[str, list[dict[str, Any]]] = {"encode-only": [], "embedded": [], "serve": []}
    for _ in range(args.trials):
        for mode in results:
            run = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--spans", str(args.spans), "--wasmtel", args.wasmtel],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise SystemExit(f"{mode} trial failed:\n{run.stderr[-3000:]}")
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(json.dumps(result), flush=True)
            results[mode].append(result)
    summary: dict[str, Any] = {}
    for mode, runs in results.items():
        rates = sorted(r["spans_per_s"] for r in runs)
        summary[mode] = {
            "spans_per_s_median": statistics.median(rates),
            "spans_per_s_range": [rates[0], rates[-1]],
            "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in runs),
        }
    summary["ratio_embedded_to_serve"] = round(
        summary["embedded"]["spans_per_s_median"] / summary["serve"]["spans_per_s_median"], 2
    )
    print(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
