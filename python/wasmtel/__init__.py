"""Sandboxed (WebAssembly) telemetry processors, in-process.

``Pipeline`` runs an embedded otap-dataflow pipeline (the spec format
``wasmtel serve`` reads) fed OTLP bytes directly; ``Plugin`` runs one
component on one batch, for tests and notebooks. The OpenTelemetry SDK
exporters that feed a ``Pipeline`` are in :mod:`wasmtel.sdk`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from wasmtel._trust import check_native_module

check_native_module()

from wasmtel._native import (  # noqa: E402 (checked first, then loaded)
    ConfigError,
    NativePipeline,
    NativePlugin,
    PipelineError,
    PluginError,
    RefusedError,
    WasmtelError,
)

__all__ = [
    "ConfigError",
    "Outcome",
    "Pipeline",
    "PipelineError",
    "PipelineStats",
    "Plugin",
    "PluginError",
    "RefusedError",
    "Signal",
    "WasmtelError",
]

Signal = Literal["traces", "metrics", "logs"]

#: How long ``flush``, ``shutdown`` and leaving a ``with`` block wait by default (seconds).
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class PipelineStats:
    """Outcomes of the batches handed to a pipeline so far."""

    accepted: int
    """Batches acknowledged (exported, or dropped on purpose by a processor)."""
    refused: int
    """Batches a node refused (Nacked)."""
    stopped: int
    """Batches the pipeline stopped before they completed."""
    in_flight: int
    """Batches handed over and not answered yet."""


class Pipeline:
    """An embedded pipeline: OTLP bytes in, through sandboxed processors, out
    to the spec's exporters (Arrow IPC files, OTLP/OTAP upstreams).

    ``config`` is the spec ``wasmtel serve`` reads: a path to its YAML file
    (relative component paths resolve against the file's folder), or the same
    structure as a dict. It needs at least one ``urn:wasmtel:receiver:embedded``
    node: that is where the exported batches enter.

    Every component is resolved, compiled and initialised here; a bad spec,
    component or plugin config raises :class:`ConfigError` naming it.
    Exports block until the pipeline acknowledges the batch and release the
    GIL meanwhile; any number of threads may export at once.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | Mapping[str, Any],
        *,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(config, Mapping):
            text = json.dumps(config)
            base = os.fspath(base_dir) if base_dir is not None else None
            self._native = NativePipeline.start(text, base)
        elif isinstance(config, (str, os.PathLike)):
            self._native = NativePipeline.start_file(os.fspath(config))
        else:
            raise TypeError(f"config must be a spec file path or a dict, not {type(config).__name__}")

    @classmethod
    def from_yaml(cls, text: str, *, base_dir: str | os.PathLike[str] | None = None) -> Pipeline:
        """A pipeline from spec text in YAML (or JSON)."""
        pipeline = cls.__new__(cls)
        base = os.fspath(base_dir) if base_dir is not None else None
        pipeline._native = NativePipeline.start(text, base)
        return pipeline

    def export(self, signal: Signal, otlp: bytes) -> None:
        """Hands over an OTLP ``Export*ServiceRequest`` and waits until the
        pipeline acknowledges it. Raises :class:`RefusedError` if a node
        refused it, ``ValueError`` if the bytes are not such a request."""
        self._native.export(signal, otlp)

    def export_traces(self, otlp: bytes) -> None:
        """``export("traces", otlp)``: an ``ExportTraceServiceRequest``."""
        self._native.export("traces", otlp)

    def export_metrics(self, otlp: bytes) -> None:
        """``export("metrics", otlp)``: an ``ExportMetricsServiceRequest``."""
        self._native.export("metrics", otlp)

    def export_logs(self, otlp: bytes) -> None:
        """``export("logs", otlp)``: an ``ExportLogsServiceRequest``."""
        self._native.export("logs", otlp)

    def flush(self, timeout: float = DEFAULT_TIMEOUT) -> PipelineStats:
        """Waits until every batch handed over so far has completed."""
        return PipelineStats(*self._native.flush(timeout))

    def stats(self) -> PipelineStats:
        """Outcomes so far."""
        return PipelineStats(*self._native.stats())

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Each wasm node's plugin metrics by node name (all cores added up):
        ``calls``, ``unchanged``, ``replaced``, ``dropped``, ``errors`` by
        kind, ``policy_*`` actions, bytes, latency buckets, guest counters."""
        metrics: dict[str, dict[str, Any]] = json.loads(self._native.plugin_metrics())
        return metrics

    @property
    def dashboard_url(self) -> str | None:
        """The live dashboard's address (``http://host:port/dashboard/``), when
        the spec sets ``engine.custom.wasmtel.dashboard.bind_address``; its
        JSON is under ``/api/wasmtel/v1/status``."""
        address = self._native.dashboard_address
        return None if address is None else f"http://{address}/dashboard/"

    def shutdown(self, timeout: float = DEFAULT_TIMEOUT) -> PipelineStats | None:
        """Lets the batches in flight finish, writes what the exporters hold,
        and stops the pipeline. Later exports raise :class:`PipelineError`.
        Returns the final stats (None if it was already shut down)."""
        stats = self._native.shutdown(timeout)
        return PipelineStats(*stats) if stats is not None else None

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` has run."""
        return self._native.closed

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()


@dataclass(frozen=True)
class Outcome:
    """What a plugin did with a batch."""

    kind: Literal["unchanged", "replaced", "dropped"]
    """``unchanged``: forward the input; ``replaced``: forward ``data``; ``dropped``: forward nothing."""
    data: bytes | None = None
    """The new OTLP bytes, for ``replaced``."""
    rejected_items: int = 0
    """Client items (spans, log records, data points) the host left out before
    the guest saw them, as OTLP's partial success reports them: they hold a
    trace or span ID of the wrong length, which no decoder can read."""
    rejected_message: str = ""
    """Why, naming the items (empty when none were left out)."""

    def output(self, input: bytes) -> bytes | None:
        """The bytes to forward for ``input`` (None when dropped)."""
        if self.kind == "replaced":
            return self.data
        return input if self.kind == "unchanged" else None


class Plugin:
    """One component run outside any pipeline, under the same limits and
    error policy as in one.

    ``component`` is what a wasm node's ``component`` takes (a path,
    ``oci://…``, a ``sha256:`` digest, a store name); ``config`` is the
    plugin's own configuration; ``settings`` are the other keys of a wasm
    node's config (``limits``, ``on_error``, ``grants``, ``quarantine_dir``…);
    ``registry`` is the registry policy (store, signatures, lock file).
    """

    def __init__(
        self,
        component: str | os.PathLike[str],
        config: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        registry: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        plugin_settings = dict(settings)
        if config is not None:
            plugin_settings["config"] = config
        self._native = NativePlugin.load(
            os.fspath(component), name, json.dumps(plugin_settings), json.dumps(dict(registry or {}))
        )

    @property
    def name(self) -> str:
        """The plugin's name in errors, logs and metrics."""
        return self._native.name

    def process(self, signal: Signal, otlp: bytes, *, timeout: float | None = None) -> Outcome:
        """Runs one batch. A failure the policy turns into an error raises
        :class:`PluginError` (``kind``, ``permanent``); under ``on_error:
        pass`` or ``drop`` it comes back as ``unchanged`` or ``dropped``."""
        kind, data, rejected = self._native.process(signal, otlp, timeout)
        if rejected is None:
            return Outcome(kind, data)
        return Outcome(kind, data, rejected_items=rejected[0], rejected_message=rejected[1])

    def metrics(self) -> dict[str, Any]:
        """The plugin's metrics (as :meth:`Pipeline.metrics` gives per node)."""
        metrics: dict[str, Any] = json.loads(self._native.metrics())
        return metrics
