#!/usr/bin/env bash
# The test venv (target/python-venv) with the packages python/requirements-test.txt
# lists: the Python tests use it, and the Go end-to-end tests read Arrow files
# with its pyarrow. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r python/requirements-test.txt >&2
echo "$PWD/$venv/bin/python"
