"""Smoke test of the batch benchmark (bench/batch.py), run tiny: it runs, its rows have sane figures and
no image is lost. Never asserts on timings or goals (wall-clock time is not a test)."""

from __future__ import annotations

import math

from bench import batch as bench_batch


def test_batch_bench_runs_tiny_with_sane_rows():
    rows = {r.name: r for r in bench_batch.run(quick=True, sizes=(3,), latency=0.2)}
    assert set(rows) == {"batch_3", "batch_3_429s", "batch_3_lost"}
    timing = rows["batch_3"]
    assert timing.unit == "s" and timing.status == "ok" and timing.reps == 1
    for value in (timing.ours, timing.baseline):
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    assert timing.extra["ideal_s"] == 2 * 0.2  # ceil(3 / 2) x 0.2 s
    assert rows["batch_3_lost"].ours == 0 and rows["batch_3_lost"].baseline == 0
    assert rows["batch_3_429s"].ours is not None and rows["batch_3_429s"].ours >= 0
