"""The README's Python example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, map_value, read_signal


def readme_example() -> str:
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("<!-- README example: python -->") + 2  # past the marker and the fence
    end = lines.index("```", start)
    return "\n".join(lines[start:end])


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    # A folder with the repository's examples/, so the example's relative paths hold.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    run = subprocess.run(
        [sys.executable, "-c", readme_example()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    spans = read_signal(tmp_path / "wasmtel-data", "traces")
    assert [span["name"] for span in spans] == ["checkout"]
    assert map_value(spans[0]["attributes"], "user.email") == "****"
