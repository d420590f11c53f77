"""Smoke test of the benchmark command: it runs, and its JSON has sane figures.

Never asserts on timings or goals (wall-clock time is not a test): only that the figures
exist, are positive numbers, and that the table and JSON agree in shape.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXPECTED = {
    "single": "s", "single_nofsync": "s", "single_session": "s",
    "prepare_time": "s", "prepare_bytes": "bytes",
    "gallery_page": "s", "gallery_search": "s", "gallery_memory": "bytes",
}
FIELDS = {"name", "what", "unit", "ours", "baseline", "ratio", "ratio_kind", "goal", "met", "reps", "status",
          "samples", "extra"}


def positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_bench_writes_sane_json(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "BENCH_TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "single", "prepare", "gallery", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=230)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text(encoding="utf-8"))

    assert doc["meta"]["quick"] is True
    assert doc["meta"]["only"] == ["single", "prepare", "gallery"]
    rows = {r["name"]: r for r in doc["results"]}
    assert set(rows) == set(EXPECTED)
    for name, unit in EXPECTED.items():
        r = rows[name]
        assert set(r) >= FIELDS, (name, FIELDS - set(r))
        assert r["status"] == "ok", (name, r.get("note"))
        assert r["unit"] == unit
        assert positive(r["ours"]) and positive(r["baseline"]) and positive(r["ratio"]), r
        assert r["met"] in (True, False, None)
        assert r["reps"] >= 1
        for series in r["samples"].values():
            assert series and all(positive(x) for x in series), (name, series)
        if unit == "s":
            assert r["ours"] < 60 and r["baseline"] < 60, r  # seconds, not milliseconds or nanoseconds
    # Figures that carry a goal say so; reference rows do not claim one.
    for name in ("single", "prepare_time", "prepare_bytes", "gallery_page", "gallery_search", "gallery_memory"):
        assert rows[name]["goal"] and rows[name]["met"] in (True, False)
    assert rows["single_nofsync"]["met"] is None
    # The input really is the ~10 MB camera JPEG, and the gallery really holds 5,000 results.
    assert rows["prepare_bytes"]["extra"]["input_bytes"] > 5_000_000
    assert rows["gallery_page"]["extra"]["rows"] == 5000
    # The table printed to stdout names every figure.
    for name in EXPECTED:
        assert name in proc.stdout
    assert doc["table"].splitlines()[0].split()[:6] == ["name", "ours", "baseline", "ratio", "goal", "met"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_account_limit_bench_writes_sane_json(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "BENCH_TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--only", "account_limit", "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=230)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["name"]: r for r in json.loads(out.read_text(encoding="utf-8"))["results"]}
    times = {"limit_6", "limit_3x4"}
    counts = {"limit_6_429s": "429s", "limit_6_lost": "images", "limit_3x4_lost": "images", "limit_3x4_waited": "runs"}
    assert set(rows) == times | set(counts)
    for name in times:
        r = rows[name]
        assert r["status"] == "ok" and r["unit"] == "s" and positive(r["ours"]) and positive(r["baseline"]), r
        assert r["ours"] < 60 and r["baseline"] < 60 and r["reps"] >= 1
    assert rows["limit_6"]["extra"]["ideal_s"] == 3.0 and rows["limit_3x4"]["extra"]["ideal_s"] == 6.0
    for name, unit in counts.items():
        r = rows[name]
        assert r["status"] == "ok" and r["unit"] == unit and r["met"] in (True, False), r
        for side in ("ours", "baseline"):  # whole counts, not timings
            assert float(r[side]).is_integer() and r[side] >= 0, r
    assert rows["limit_6_429s"]["baseline"] >= 1  # the plain fan-out really meets the limit
    for name in (*times, *counts):
        assert name in proc.stdout
