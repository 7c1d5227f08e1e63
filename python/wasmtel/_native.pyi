"""Type stubs of the native module (python/src/lib.rs); use the wrappers in ``wasmtel``."""

from collections.abc import Sequence
from typing import Any, Literal

class WasmtelError(Exception):
    """Base class of every wasmtel error."""

class ConfigError(WasmtelError):
    """A pipeline spec, plugin config or component that cannot be used."""

class RefusedError(WasmtelError):
    """The pipeline refused a batch."""

    reason: str
    permanent: bool

class PluginError(WasmtelError):
    """A plugin failed on a batch and its policy is ``fail``."""

    reason: str
    kind: str
    permanent: bool

class PipelineError(WasmtelError):
    """The pipeline is stopped, shutting down, timed out, or failed."""

Stats = tuple[int, int, int, int]

class NativePipeline:
    @staticmethod
    def start(text: str, base_dir: str | None = None) -> NativePipeline: ...
    @staticmethod
    def start_file(path: str) -> NativePipeline: ...
    def export(self, signal_name: str, data: bytes) -> None: ...
    def flush(self, timeout_seconds: float) -> Stats: ...
    def stats(self) -> Stats: ...
    def plugin_metrics(self) -> str: ...
    def shutdown(self, timeout_seconds: float) -> Stats | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def dashboard_address(self) -> str | None: ...

class NativePlugin:
    @staticmethod
    def load(component: str, name: str | None, settings: str, policy: str) -> NativePlugin: ...
    def process(
        self, signal_name: str, data: bytes, timeout_seconds: float | None = None
    ) -> tuple[Literal["unchanged", "replaced", "dropped"], bytes | None, tuple[int, str] | None]: ...
    @property
    def name(self) -> str: ...
    def metrics(self) -> str: ...

def encode_spans(spans: Sequence[Any]) -> bytes:
    """The SDK's ReadableSpans as OTLP ExportTraceServiceRequest bytes."""
