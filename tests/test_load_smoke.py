"""The load-test command works end to end at a tiny scale (the full run is a separate command)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_load_command_small(tmp_path):
    out = tmp_path / "load.json"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "bench.load", "--users", "4", "--workers", "2", "--duration", "4",
                        "--latency", "0.1", "0.3", "--fault-rate", "0.2", "--json", str(out)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.loads(out.read_text())
    assert rep["calls"] > 0 and rep["succeeded"] > 0 and rep["unexpected_statuses"] == 0
    # with 20% injected faults a call may exhaust its retries: then it must say so, not crash
    assert all("retr" in msg for msg in rep["failures"]), rep["failures"]
    assert rep["lost_results"] == 0 and rep["tracebacks_in_app_log"] == 0
    assert rep["emulator_images"] == rep["stored_by_status"]["done"] == rep["stored_files_ok"]
