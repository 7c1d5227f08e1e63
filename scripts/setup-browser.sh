#!/usr/bin/env bash
# Installs what the dashboard's browser test needs; idempotent.
#  - Debian's chromium (+ chromium-driver): the test drives it headless;
#    browser downloads are not used.
#  - playwright-core from npm, pinned by tests/dashboard/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v chromium >/dev/null; then
    echo "setup-browser: installing chromium (apt)"
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! command -v node >/dev/null; then
    echo "setup-browser: node not found; install Node.js (20 or newer) with npm" >&2
    exit 1
fi
if [ ! -d tests/dashboard/node_modules/playwright-core ]; then
    echo "setup-browser: npm ci (playwright-core)"
    (cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
