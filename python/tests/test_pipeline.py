"""wasmtel.Pipeline: the embedded pipeline from Python."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import wasmtel
from conftest import attr, component, filter_node, logs, map_value, read_signal, redact_node, spec, traces


def test_redacts_filters_and_writes_arrow_files(redact_filter_spec: dict[str, Any], out_dir: Path) -> None:
    with wasmtel.Pipeline(redact_filter_spec) as pipeline:
        pipeline.export_traces(traces(("GET /a", [attr("user.email", "ann@example.com")]), ("GET /health", [])))
        pipeline.export_logs(logs("login by bob@example.com", "healthcheck ok"))
        stats = pipeline.flush()
        assert (stats.accepted, stats.refused, stats.in_flight) == (2, 0, 0)
        metrics = pipeline.metrics()
        assert sorted(metrics) == ["filter", "redact"]
        assert metrics["redact"]["calls"] == 2
        assert metrics["redact"]["replaced"] == 2
        assert metrics["filter"]["calls"] == 2
    assert pipeline.closed

    spans = read_signal(out_dir, "traces")
    assert [span["name"] for span in spans] == ["GET /a"]
    assert map_value(spans[0]["attributes"], "user.email") == "****"
    assert map_value(spans[0]["resource_attributes"], "service.name") == "checkout"
    records = read_signal(out_dir, "logs")
    assert [record["body"] for record in records] == ["login by ****"]


def test_starts_from_the_yaml_file_serve_reads(tmp_path: Path) -> None:
    # Relative component paths resolve against the spec file's folder, as in `wasmtel serve`.
    redact = Path(component("wasmtel-redact"))
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "redact.wasm").write_bytes(redact.read_bytes())
    node = redact_node()
    node["config"]["component"] = "plugins/redact.wasm"
    text = json.dumps(spec(tmp_path / "data", ("redact", node)))
    (tmp_path / "pipeline.yaml").write_text(text)
    with wasmtel.Pipeline(tmp_path / "pipeline.yaml") as pipeline:
        pipeline.export_traces(traces(("op", [attr("user.email", "eve@example.com")])))
    spans = read_signal(tmp_path / "data", "traces")
    assert map_value(spans[0]["attributes"], "user.email") == "****"


def test_a_bad_component_or_config_raises_at_construction(tmp_path: Path) -> None:
    missing = redact_node()
    missing["config"]["component"] = str(tmp_path / "missing.wasm")
    with pytest.raises(wasmtel.ConfigError, match="missing.wasm"):
        wasmtel.Pipeline(spec(tmp_path / "data", ("redact", missing)))

    wrong_config = filter_node()
    wrong_config["config"]["config"] = {"spans": {"names": "not a list"}}
    with pytest.raises(wasmtel.ConfigError, match="filter"):
        wasmtel.Pipeline(spec(tmp_path / "data", ("filter", wrong_config)))

    unknown_key = redact_node()
    unknown_key["config"]["limit"] = {"timeout": "1s"}
    with pytest.raises(wasmtel.ConfigError, match="limit"):
        wasmtel.Pipeline(spec(tmp_path / "data", ("redact", unknown_key)))

    no_ingress = spec(tmp_path / "data")
    del no_ingress["groups"]["app"]["pipelines"]["main"]["nodes"]["ingress"]
    no_ingress["groups"]["app"]["pipelines"]["main"]["connections"] = []
    with pytest.raises(wasmtel.ConfigError, match="embedded"):
        wasmtel.Pipeline(no_ingress)

    with pytest.raises(wasmtel.ConfigError, match="nowhere.yaml"):
        wasmtel.Pipeline(tmp_path / "nowhere.yaml")
    with pytest.raises(TypeError):
        wasmtel.Pipeline(42)  # type: ignore[arg-type]


def test_bad_input_and_use_after_shutdown_raise(redact_filter_spec: dict[str, Any]) -> None:
    pipeline = wasmtel.Pipeline(redact_filter_spec)
    with pytest.raises(ValueError, match="not an OTLP traces request"):
        pipeline.export_traces(b"\xff\xff\xff")
    with pytest.raises(ValueError, match="unknown signal"):
        pipeline.export("profiles", b"")  # type: ignore[arg-type]
    final = pipeline.shutdown()
    assert final is not None and final.in_flight == 0
    assert pipeline.shutdown() is None, "a second shutdown is a no-op"
    with pytest.raises(wasmtel.PipelineError, match="shutting down"):
        pipeline.export_traces(traces(("late", [])))


def test_a_failing_plugin_with_on_error_fail_refuses_the_batch(tmp_path: Path) -> None:
    hostile = {
        "type": "urn:wasmtel:processor:wasm",
        "config": {"component": component("wasmtel-test-hostile"), "on_error": "fail"},
    }
    with wasmtel.Pipeline(spec(tmp_path / "data", ("hostile", hostile))) as pipeline:
        with pytest.raises(wasmtel.RefusedError) as refused:
            pipeline.export_traces(traces(("permanent-error", [])))
        assert refused.value.permanent
        assert "hostile" in str(refused.value)
        pipeline.export_traces(traces(("fine", [])))
        errors = pipeline.metrics()["hostile"]["errors"]
        assert sum(errors.values()) == 1, errors


def test_threads_export_at_once_and_nothing_is_lost(tmp_path: Path) -> None:
    threads_count, batches_each = 8, 25
    out = tmp_path / "data"
    pipeline = wasmtel.Pipeline(spec(out, ("redact", redact_node()), cores=2))
    failures: list[BaseException] = []

    def export(thread: int) -> None:
        try:
            for batch in range(batches_each):
                email = attr("user.email", f"t{thread}b{batch}@example.com")
                pipeline.export_traces(traces((f"t{thread} b{batch}", [email])))
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    workers = [threading.Thread(target=export, args=(t,)) for t in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "an export is stuck"
    assert not failures, failures
    stats = pipeline.shutdown()
    assert stats is not None and stats.accepted == threads_count * batches_each

    spans = read_signal(out, "traces")
    names = {span["name"] for span in spans}
    assert names == {f"t{t} b{b}" for t in range(threads_count) for b in range(batches_each)}
    assert all(map_value(span["attributes"], "user.email") == "****" for span in spans)
    assert pipeline.closed


def test_the_gil_is_released_while_a_batch_runs(tmp_path: Path) -> None:
    slow = {"type": "urn:wasmtel:processor:wasm", "config": {"component": component("wasmtel-test-hostile")}}
    with wasmtel.Pipeline(spec(tmp_path / "data", ("slow", slow))) as pipeline:
        exported = threading.Event()
        ticks = 0

        def export() -> None:
            pipeline.export_traces(traces(("spin-300", [])))
            exported.set()

        worker = threading.Thread(target=export)
        worker.start()
        # Pure-Python work in this thread runs while the guest spins.
        while not exported.is_set():
            ticks += 1
            exported.wait(0.001)
        worker.join()
        assert ticks > 20, f"this thread ran {ticks} times while the batch ran"


def test_the_dashboard_serves_the_pipelines_status(redact_filter_spec: dict[str, Any]) -> None:
    import urllib.request

    with_dashboard = dict(redact_filter_spec)
    with_dashboard["engine"] = {"custom": {"wasmtel": {"dashboard": {"bind_address": "127.0.0.1:0"}}}}
    with wasmtel.Pipeline(with_dashboard) as pipeline:
        pipeline.export_traces(traces(("GET /a", [attr("user.email", "ann@example.com")])))
        url = pipeline.dashboard_url
        assert url is not None and url.endswith("/dashboard/")
        status_url = url.replace("/dashboard/", "/api/wasmtel/v1/status")
        with urllib.request.urlopen(status_url, timeout=10) as response:
            status = json.load(response)
        processors = status["pipelines"][0]["processors"]
        assert [p["node"] for p in processors] == ["redact", "filter"]
        assert processors[0]["metrics"]["calls"] == 1
    with wasmtel.Pipeline(redact_filter_spec) as without_dashboard:
        assert without_dashboard.dashboard_url is None
