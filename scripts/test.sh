#!/usr/bin/env bash
# The one test command (README and CI): installs what the tests need, then runs pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Python packages (quiet; a no-op when already installed).
python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# The MCP test's two virtualenvs (the app with gradio[mcp], which downgrades pydantic; the mcp
# client): built the first time (~1-2 min), then reused from ~/.cache (a no-op).
python scripts/mcp_env.py >/dev/null

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here), and a
# CJK font so the zh screenshots show Chinese instead of empty boxes.
if { [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "wenquanyi"; } && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi

# No telemetry or update checks from Gradio or huggingface_hub during tests.
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1

# Gates before the suite: a new lint or type finding fails the run (config in pyproject.toml).
python -m ruff check --quiet .
python -m mypy --no-error-summary

set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure.
if [ "$rc" -eq 5 ]; then echo "no tests collected"; exit 0; fi
exit "$rc"
