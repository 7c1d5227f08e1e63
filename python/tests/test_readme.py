"""The README's Python example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import REPO, attr, map_value, read_signal, redact_node, spec, traces


def readme_example(marker: str, readme: Path = REPO / "README.md") -> str:
    lines = readme.read_text().splitlines()
    start = lines.index(f"<!-- README example: {marker} -->") + 2  # past the marker and the fence
    end = lines.index("```", start)
    return "\n".join(lines[start:end])


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    # A folder with the repository's examples/, so the example's relative paths hold.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    run = subprocess.run(
        [sys.executable, "-c", readme_example("python")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    spans = read_signal(tmp_path / "wasmtel-data", "traces")
    assert [span["name"] for span in spans] == ["checkout"]
    assert map_value(spans[0]["attributes"], "user.email") == "****"


def test_the_file_readers_in_the_exporter_readme_run(tmp_path: Path) -> None:
    import wasmtel

    with wasmtel.Pipeline(spec(tmp_path / "wasmtel-data", ("redact", redact_node()))) as pipeline:
        pipeline.export_traces(traces(("b", [attr("user.email", "bo@example.com")]), ("a", [])))
    readme = REPO / "runtime" / "dataflow" / "src" / "arrow_ipc_exporter" / "README.md"
    names: dict[str, Any] = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(readme_example("read files", readme), names)
    finally:
        os.chdir(cwd)
    assert len(names["starts"]) == 2
    assert sorted((name, email) for name, _, _, email in names["rows"]) == [("a", None), ("b", "****")]
    assert all(len(trace_id) == 32 for _, _, trace_id, _ in names["rows"]), "16-byte trace IDs in hex"
