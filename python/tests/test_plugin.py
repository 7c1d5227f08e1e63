"""wasmtel.Plugin: one component on one batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import wasmtel
from conftest import EMAIL_PATTERN, attr, component, traces


def test_outcomes_unchanged_replaced_and_dropped() -> None:
    redact = wasmtel.Plugin(component("wasmtel-redact"), {"keys": ["user.email"], "value_patterns": [EMAIL_PATTERN]})
    assert redact.name == "wasmtel_redact"
    clean = traces(("GET /a", [attr("http.method", "GET")]))
    assert redact.process("traces", clean) == wasmtel.Outcome("unchanged")
    assert redact.process("traces", clean).output(clean) == clean

    outcome = redact.process("traces", traces(("GET /a", [attr("user.email", "ann@example.com")])))
    assert outcome.kind == "replaced" and outcome.data is not None
    span = ExportTraceServiceRequest.FromString(outcome.data).resource_spans[0].scope_spans[0].spans[0]
    assert span.attributes[0].value.string_value == "****"

    health_filter = wasmtel.Plugin(component("wasmtel-filter"), {"spans": {"names": ["GET /health"]}}, name="hc")
    dropped = health_filter.process("traces", traces(("GET /health", [])))
    assert dropped == wasmtel.Outcome("dropped") and dropped.output(b"x") is None
    metrics = health_filter.metrics()
    assert (metrics["plugin"], metrics["calls"], metrics["dropped"]) == ("hc", 1, 1)


def test_failures_follow_the_error_policy() -> None:
    failing = wasmtel.Plugin(component("wasmtel-test-hostile"), on_error="fail")
    with pytest.raises(wasmtel.PluginError) as trapped:
        failing.process("traces", traces(("panic", [])))
    assert trapped.value.kind == "trap" and trapped.value.permanent
    assert "wasmtel_test_hostile" in str(trapped.value)

    with pytest.raises(wasmtel.PluginError) as past_deadline:
        failing.process("traces", traces(("loop", [])), timeout=0.2)
    assert past_deadline.value.kind == "deadline_exceeded", "the caller's deadline"
    limited = wasmtel.Plugin(component("wasmtel-test-hostile"), on_error="fail", limits={"timeout": "200ms"})
    with pytest.raises(wasmtel.PluginError) as timed_out:
        limited.process("traces", traces(("loop", [])))
    assert timed_out.value.kind == "timeout", "the plugin's own limit"

    # The plugin keeps serving after both.
    assert failing.process("traces", traces(("fine", []))).kind == "unchanged"

    passing = wasmtel.Plugin(component("wasmtel-test-hostile"), on_error="pass")
    assert passing.process("traces", traces(("panic", []))).kind == "unchanged"
    dropping = wasmtel.Plugin(component("wasmtel-test-hostile"), on_error="drop")
    assert dropping.process("traces", traces(("garbage", []))).kind == "dropped"
    errors = dropping.metrics()["errors"]
    assert errors["invalid_output"] == 1 and sum(errors.values()) == 1, errors


def test_bad_component_config_or_settings_raise_at_construction(tmp_path: Path) -> None:
    with pytest.raises(wasmtel.ConfigError, match="missing.wasm"):
        wasmtel.Plugin(tmp_path / "missing.wasm")
    (tmp_path / "junk.wasm").write_bytes(b"\0asm junk")
    with pytest.raises(wasmtel.ConfigError, match="junk"):
        wasmtel.Plugin(tmp_path / "junk.wasm")
    with pytest.raises(wasmtel.ConfigError, match="keys"):
        wasmtel.Plugin(component("wasmtel-redact"), {"keys": "user.email"})
    with pytest.raises(wasmtel.ConfigError, match="on_eror"):
        wasmtel.Plugin(component("wasmtel-redact"), on_eror="pass")
    with pytest.raises(wasmtel.ConfigError, match="rejected on purpose"):
        wasmtel.Plugin(component("wasmtel-test-hostile"), {"reject": "rejected on purpose"})
    with pytest.raises(wasmtel.ConfigError, match="registry"):
        wasmtel.Plugin(component("wasmtel-redact"), registry={"no_such_setting": True})


def test_invalid_input_is_a_permanent_error_not_a_crash() -> None:
    redact = wasmtel.Plugin(component("wasmtel-redact"), {"keys": ["user.email"]}, on_error="fail")
    with pytest.raises(wasmtel.PluginError) as invalid:
        redact.process("traces", b"\x0a\xff\xff\xff\xff")
    assert invalid.value.permanent
    with pytest.raises(ValueError, match="unknown signal"):
        redact.process("profiles", b"")  # type: ignore[arg-type]


def test_a_client_bad_id_costs_only_its_span_whatever_the_plugin() -> None:
    """A 24-byte trace ID is the client's fault: that span is left out and
    reported (OTLP partial success), the others go on, no guest is blamed."""
    email = [attr("user.email", "someone@example.com")]
    request = ExportTraceServiceRequest.FromString(traces(("first", email), ("bad-id", email), ("third", email)))
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes([0xAB] * 24)
    batch = request.SerializeToString()
    plugins = {
        "redact": wasmtel.Plugin(component("wasmtel-redact"), {"keys": ["user.email"]}),
        "filter": wasmtel.Plugin(component("wasmtel-filter"), {"spans": {"names": ["nothing matches"]}}),
        "identity": wasmtel.Plugin(component("wasmtel-test-identity"), {"mode": "replace"}),
    }
    for label, plugin in plugins.items():
        outcome = plugin.process("traces", batch)
        assert outcome.kind == "replaced" and outcome.data is not None, label
        assert (outcome.rejected_items, outcome.rejected_message.split(":")[0]) == (1, "1 spans left out"), label
        spans = ExportTraceServiceRequest.FromString(outcome.data).resource_spans[0].scope_spans[0].spans
        assert [span.name for span in spans] == ["first", "third"], label
        metrics = plugin.metrics()
        assert metrics["errors"]["invalid_output"] == 0 and metrics["items_rejected"] == 1, (label, metrics)
